#!/usr/bin/env bash
# Run a command (normally `go test …`) with a PostgreSQL for internal/pgtest,
# then remove the test containers the command leaked.
#
#   scripts/with-test-db.sh go test -race -tags integration -count=1 ./...
#
# Where the database comes from, in order:
#   1. TEST_DATABASE_URL, if set: used as is, no containers.
#   2. Docker (started with scripts/start-docker.sh if needed) and a container
#      per test binary from TEST_PG_IMAGE; when TEST_PG_IMAGE is unset or is
#      the local image, that image is built first (scripts/pg-image/build.sh,
#      a no-op when up to date).
#   3. Outside CI, when Docker is unusable (not root, no engine, build failed):
#      the local server, TEST_DATABASE_URL=$LOCAL_DATABASE_URL
#      (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
#      With CI=true this is an error instead: CI tests against containers.
#
# Redis (for internal/redistest) comes from TEST_REDIS_URL, if set, else
# from containers of TEST_REDIS_IMAGE; when that is unset or is the local
# image localhost/tidygate-redis:7, the image is built first
# (scripts/redis-image/build.sh, a no-op when up to date). Without Docker
# the Redis tests skip (with CI=true they fail).
#
# Chromium (for integration/console_test.go) is Debian's `chromium` on PATH;
# without it that test skips (with CI=true it fails), and this script says so
# before the tests start. .ci/run installs it.
#
# Containers are labelled with TIDYGATE_TEST_RUN (set here if unset); the
# sweep removes this run's containers only, or every testcontainers container
# when SWEEP_ALL_TESTCONTAINERS=1 (as .ci/run does).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
local_image=localhost/tidygate-pg:15
local_dsn=${LOCAL_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

say() { printf '==> %s\n' "$*" >&2; }
redact() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

# testcontainers compares the string: exactly "true" disables Ryuk, whose
# image cannot be pulled without a registry.
export TESTCONTAINERS_RYUK_DISABLED=${TESTCONTAINERS_RYUK_DISABLED:-true}
export TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}
export TIDYGATE_TEST_RUN=${TIDYGATE_TEST_RUN:-run-$(date +%Y%m%d%H%M%S)-$$}

use_local_server() {
	local reason=$1
	if [ "${CI:-}" = "true" ]; then
		say "CI=true and $reason: refusing to fall back to the local server (CI tests against containers)"
		exit 1
	fi
	if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -d "$local_dsn"; then
		say "$reason, and the local server $(redact "$local_dsn") does not answer either: integration tests will be SKIPPED"
	else
		say "$reason: using the local server, TEST_DATABASE_URL=$(redact "$local_dsn")"
	fi
	export TEST_DATABASE_URL=$local_dsn
}

if [ -n "${TEST_DATABASE_URL:-}" ]; then
	say "PostgreSQL: TEST_DATABASE_URL=$(redact "$TEST_DATABASE_URL") (no containers)"
elif ! "$here/start-docker.sh"; then
	use_local_server "Docker is unusable"
elif [ -n "${TEST_PG_IMAGE:-}" ] && [ "$TEST_PG_IMAGE" != "$local_image" ]; then
	say "PostgreSQL: containers from TEST_PG_IMAGE=$TEST_PG_IMAGE"
elif PG_IMAGE=$local_image "$here/pg-image/build.sh"; then
	export TEST_PG_IMAGE=$local_image
	say "PostgreSQL: containers from TEST_PG_IMAGE=$TEST_PG_IMAGE (Ryuk disabled, host $TESTCONTAINERS_HOST_OVERRIDE)"
elif [ "${CI:-}" != "true" ] && docker image inspect "$local_image" >/dev/null 2>&1; then
	export TEST_PG_IMAGE=$local_image
	say "could not rebuild $local_image; using the existing one"
else
	use_local_server "the image $local_image could not be built"
fi

local_redis_image=localhost/tidygate-redis:7
if [ -n "${TEST_REDIS_URL:-}" ]; then
	say "Redis: TEST_REDIS_URL=$(redact "$TEST_REDIS_URL") (no containers)"
elif [ -n "${TEST_REDIS_IMAGE:-}" ] && [ "$TEST_REDIS_IMAGE" != "$local_redis_image" ]; then
	say "Redis: containers from TEST_REDIS_IMAGE=$TEST_REDIS_IMAGE"
elif docker info >/dev/null 2>&1 && REDIS_IMAGE=$local_redis_image "$here/redis-image/build.sh"; then
	export TEST_REDIS_IMAGE=$local_redis_image
	say "Redis: containers from TEST_REDIS_IMAGE=$TEST_REDIS_IMAGE"
else
	say "Redis: no image could be built: the Redis tests will skip (fail with CI=true)"
fi

if command -v chromium >/dev/null 2>&1; then
	say "Chromium: $(command -v chromium), for the console's browser test"
else
	say "Chromium: NOT INSTALLED: the console's browser test will SKIP (fail with CI=true); as root: apt-get install -y chromium fonts-liberation"
fi

sweep() {
	docker info >/dev/null 2>&1 || return 0
	local filter="label=org.tidygate.test-run=$TIDYGATE_TEST_RUN"
	[ "${SWEEP_ALL_TESTCONTAINERS:-0}" = 1 ] && filter=label=org.testcontainers=true
	local ids
	ids=$(docker ps -aq --filter "$filter")
	if [ -n "$ids" ]; then
		say "removing $(wc -w <<<"$ids") leaked test container(s) ($filter)"
		# shellcheck disable=SC2086
		docker rm -f $ids >/dev/null || true
	fi
}
trap sweep EXIT

say "running: $*"
set +e
"$@"
rc=$?
set -e
exit "$rc"
