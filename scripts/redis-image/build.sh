#!/usr/bin/env bash
# Build localhost/tidygate-redis:7, a Redis image FROM scratch made of the
# host's Debian redis-server binary and the shared libraries it needs, for
# machines with a Docker engine but no container registry, the way
# scripts/pg-image/build.sh builds the PostgreSQL image.
#
# Usage: scripts/redis-image/build.sh [--force]
#
# Idempotent: the image carries a label with a hash of this directory's files
# and of the host package versions it is made of; when an image with that
# label exists, nothing is done. --force (or REDIS_IMAGE_FORCE=1) rebuilds.
#
# Needs root (to install missing packages and read every library), a running
# Docker engine (scripts/start-docker.sh) and the Debian package
# redis-server, installed with apt-get when missing. The image has no shell:
# tests wait for its "Ready to accept connections" log line.
#
# Environment:
#   REDIS_IMAGE  image name (default localhost/tidygate-redis:7)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/scratch-image.sh
. "$here/../lib/scratch-image.sh"
image=${REDIS_IMAGE:-localhost/tidygate-redis:7}
label=org.tidygate.redis-image.hash
force=${REDIS_IMAGE_FORCE:-0}
[ "${1:-}" = "--force" ] && force=1

say() { printf 'redis-image: %s\n' "$*" >&2; }
start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }'; }

# --- host packages -----------------------------------------------------------
if [ ! -x /usr/bin/redis-server ]; then
	if [ "$(id -u)" -ne 0 ]; then
		say "missing package redis-server and not root to install it"
		exit 1
	fi
	say "installing redis-server"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends redis-server >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends redis-server >/dev/null; }
fi
major=$(/usr/bin/redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
case "$image" in
*:"$major") ;;
*) say "note: $image is built from redis-server $major" ;;
esac

# --- up to date? -------------------------------------------------------------
pkgs=$(dpkg-query -W -f '${Package}=${Version}\n' redis-server redis-tools libc6 2>/dev/null | sort || true)
hash=$( { cat "$here/build.sh" "$here/Dockerfile" "$here/../lib/scratch-image.sh"; printf '%s\n' "$pkgs"; } | sha256sum | cut -c1-16)

if image_is_current "$image" "$label" "$hash" "$force"; then
	exit 0
fi

# --- root filesystem ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tidygate-redis-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/usr/{bin,lib,lib64} "$root"/{etc,tmp,data}
# Merged /usr, as on the host.
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"
# redis-server resolves the binary it runs as (redis-check-rdb and
# redis-check-aof are the same binary): the server is all it needs.
cp -L /usr/bin/redis-server "$root/usr/bin/redis-server"

copy_shared_libs "$root" /usr/bin/redis-server

# The user the server runs as (uid/gid 999, as in the official image).
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
redis:x:999:999:Redis:/data:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
redis:x:999:
GROUP
chown 999:999 "$root/data"

# Smoke test in a chroot: the binary must find all its libraries.
if ! chroot "$root" /usr/bin/redis-server --version >/dev/null; then
	say "the root filesystem is incomplete (redis-server failed in a chroot)"
	exit 1
fi

# --- image -------------------------------------------------------------------
build_scratch_image "$work" "$root" "$here/Dockerfile" "$image" "$label" "$hash" "$pkgs"
