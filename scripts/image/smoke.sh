#!/usr/bin/env bash
# Smoke-test tidygate's container image: build it, start it against a
# PostgreSQL container on a private Docker network, probe /healthz and
# /readyz, make one chat call through the mock provider, stop the container
# with `docker stop`, and check that it exited 0 and that the call reached
# MLflow's trace_info table (the call log flushed on shutdown). Cleans up
# everything it started, also on failure.
#
# Usage: scripts/image/smoke.sh
#
# Needs a Docker engine (scripts/start-docker.sh), the local PostgreSQL image
# (scripts/pg-image/build.sh) and curl. No registry.
#
# Environment:
#   IMAGE       the image to test (default localhost/tidygate:latest)
#   PG_IMAGE    the PostgreSQL image (default localhost/tidygate-pg:15)
#   SMOKE_BUILD 1 (default): build the image first (make image, or
#               scripts/image/build.sh when the Makefile has no image target); 0: use IMAGE as it is
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
image=${IMAGE:-localhost/tidygate:latest}
pg_image=${PG_IMAGE:-localhost/tidygate-pg:15}
dev_key=tg-dev-local-only-0000000000000000
run_id=tidygate-smoke-$$
say() { printf 'smoke: %s\n' "$*" >&2; }
fail() {
	say "FAILED: $*"
	if [ -n "${gw:-}" ]; then
		say "--- tidygate container log ---"
		docker logs "$gw" 2>&1 | tail -n 40 >&2 || true
	fi
	exit 1
}

command -v curl >/dev/null || { say "curl is missing (apt-get install -y curl)"; exit 1; }
docker info >/dev/null 2>&1 || { say "no Docker engine answers (run scripts/start-docker.sh)"; exit 1; }
docker image inspect "$pg_image" >/dev/null 2>&1 ||
	{ say "no $pg_image (run scripts/pg-image/build.sh)"; exit 1; }

if [ "${SMOKE_BUILD:-1}" = 1 ]; then
	if make -n image >/dev/null 2>&1; then
		say "make image"
		make image >&2
	else
		say "scripts/image/build.sh (the Makefile has no image target)"
		scripts/image/build.sh
	fi
fi
docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image"

net=$run_id
pg=$run_id-pg
gw=
vol=$run_id-journal
secrets=$(mktemp -d "${TMPDIR:-/tmp}/$run_id.XXXXXX")
cleanup() {
	docker rm -f ${gw:+"$gw"} "$pg" >/dev/null 2>&1 || true
	docker volume rm "$vol" >/dev/null 2>&1 || true
	docker network rm "$net" >/dev/null 2>&1 || true
	rm -rf "$secrets"
}
trap cleanup EXIT

# Passwords travel in env files, never on a command line.
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
umask 077
printf 'POSTGRES_PASSWORD=%s\n' "$password" >"$secrets/pg.env"
printf 'DB_PASSWORD=%s\n' "$password" >"$secrets/tidygate.env"
umask 022

docker network create "$net" >/dev/null
docker volume create "$vol" >/dev/null
say "starting PostgreSQL ($pg_image) on network $net"
docker run -d --name "$pg" --network "$net" --network-alias postgres \
	--env-file "$secrets/pg.env" -e POSTGRES_DB=tidygate "$pg_image" >/dev/null
# The entrypoint's temporary server also answers on the socket; wait for TCP.
for _ in $(seq 60); do
	docker exec "$pg" pg_isready -q -h 127.0.0.1 -U postgres -d tidygate 2>/dev/null && break
	sleep 1
done
docker exec "$pg" pg_isready -h 127.0.0.1 -U postgres -d tidygate >/dev/null || fail "PostgreSQL did not become ready"

say "starting $image"
gw=$(docker run -d --name "$run_id-gw" --network "$net" -p 127.0.0.1::8080 -p 127.0.0.1::9090 \
	-e ADMIN_ADDR=0.0.0.0:9090 \
	--env-file "$secrets/tidygate.env" \
	-e DEPLOY_PROFILE=local -e MLFLOW_SCHEMA=create \
	-e DB_HOST=postgres -e DB_NAME=tidygate -e DB_USER=postgres -e DB_SSLMODE=disable \
	-e DB_REQUIRE_AT_START=false \
	-v "$vol:/var/lib/tidygate/journal" \
	"$image" serve --dev-key)
port=$(docker port "$gw" 8080/tcp | head -n1 | sed 's/.*://')
[ -n "$port" ] || fail "no published port"
base=http://127.0.0.1:$port
admin_port=$(docker port "$gw" 9090/tcp | head -n1 | sed 's/.*://')
[ -n "$admin_port" ] || fail "no published admin port"
admin=http://127.0.0.1:$admin_port

ready=
for _ in $(seq 60); do
	if [ "$(docker inspect -f '{{.State.Running}}' "$gw")" != true ]; then
		fail "the container exited early (code $(docker inspect -f '{{.State.ExitCode}}' "$gw"))"
	fi
	if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then ready=1; break; fi
	sleep 1
done
[ -n "$ready" ] || fail "/readyz did not answer 200 within 60s"
healthz=$(curl -fsS "$base/healthz") || fail "/healthz"
readyz=$(curl -fsS "$base/readyz") || fail "/readyz"
say "/healthz: $healthz"
say "/readyz: $readyz"

headers=$secrets/headers
body=$(curl -sS -D "$headers" -o - -w '\n%{http_code}' "$base/v1/chat/completions" \
	-H "Authorization: Bearer $dev_key" -H 'X-Audit-Reason: smoke' -H 'Content-Type: application/json' \
	-d '{"model":"mock-chat","messages":[{"role":"user","content":"hi"}]}')
code=${body##*$'\n'}
body=${body%$'\n'*}
[ "$code" = 200 ] || fail "chat call answered $code: $body"
grep -q '"choices"' <<<"$body" || fail "chat response has no choices: $body"
request_id=$(awk 'tolower($1) == "x-request-id:" { sub(/\r$/, "", $2); print $2 }' "$headers")
[ -n "$request_id" ] || fail "no X-Request-Id in the response"
say "chat call: 200, X-Request-Id $request_id"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/metrics")
[ "$code" = 404 ] || fail "/metrics on the API address answered $code, want 404"
curl -fsS "$admin/metrics" | grep -E '^tidygate_(calllog_journaled_total|pool_max_conns)' | sed 's/^/smoke: metric /' >&2 ||
	fail "/metrics"

say "docker stop (SIGTERM, up to 40s)"
docker stop -t 40 "$gw" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$gw")
[ "$code" = 0 ] || fail "tidygate exited $code after docker stop"
grep -q 'call log closed; every record delivered' <<<"$(docker logs "$gw" 2>&1)" || # whole, not piped: see pg-image/build.sh
	fail "the log does not say that the call log delivered every record"

traces=$(docker exec "$pg" psql -X -qAt -h 127.0.0.1 -U postgres -d tidygate \
	-c "SELECT count(*) FROM trace_info t JOIN trace_request_metadata m ON m.request_id = t.request_id
	    WHERE m.key = 'tidygate.request_id' AND m.value = '$request_id'" 2>&1 </dev/null) ||
	fail "query trace_info: $traces"
[ "$traces" = 1 ] || fail "trace_info holds $traces rows for $request_id, want 1"
say "exit code 0; call log flushed; trace_info holds the call ($request_id)"
say "PASSED"
