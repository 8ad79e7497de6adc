#!/usr/bin/env bash
# Build localhost/tidygate-pg:15, a PostgreSQL 15 image FROM scratch made of the
# host's Debian PostgreSQL 15 binaries, for machines with a Docker engine but
# no container registry (see docs/DESIGN-NOTES.md §5).
#
# Usage: scripts/pg-image/build.sh [--force]
#
# Idempotent: the image carries a label with a hash of this directory's files
# and of the host package versions it is made of; when an image with that
# label exists, nothing is done. --force (or PG_IMAGE_FORCE=1) rebuilds.
#
# Needs root (to read and chown everything and to install missing packages),
# a running Docker engine (scripts/start-docker.sh) and Debian packages
# postgresql-15, busybox-static, util-linux (setpriv) and bash; missing
# packages are installed with apt-get.
#
# Environment:
#   PG_IMAGE  image name (default localhost/tidygate-pg:15)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/scratch-image.sh
. "$here/../lib/scratch-image.sh"
image=${PG_IMAGE:-localhost/tidygate-pg:15}
label=org.tidygate.pg-image.hash
pgver=15
pgroot=/usr/lib/postgresql/$pgver
force=${PG_IMAGE_FORCE:-0}
[ "${1:-}" = "--force" ] && force=1

say() { printf 'pg-image: %s\n' "$*" >&2; }
start=$(date +%s.%N)
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }'; }

# --- host packages -----------------------------------------------------------
need=()
[ -x "$pgroot/bin/postgres" ] && [ -x "$pgroot/bin/psql" ] || need+=("postgresql-$pgver" "postgresql-client-$pgver")
[ -x /usr/bin/busybox ] || need+=(busybox-static)
[ -x /usr/bin/setpriv ] || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		say "missing packages ${need[*]} and not root to install them"
		exit 1
	fi
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
# The list is read whole before grep looks at it: with pipefail, grep -q
# ending the pipe at its first match can fail the pipeline when busybox is
# still writing (SIGPIPE), and a full busybox looked like a missing one.
applets=$(/usr/bin/busybox --list 2>&1) || true
if ! grep -qx sh <<<"$applets"; then
	say "/usr/bin/busybox is not a full busybox (install busybox-static); busybox --list said: ${applets:0:200}"
	exit 1
fi

# --- up to date? -------------------------------------------------------------
pkgs=$(dpkg-query -W -f '${Package}=${Version}\n' "postgresql-$pgver" "postgresql-client-$pgver" \
	busybox-static util-linux bash libc6 2>/dev/null | sort || true)
hash=$( { cat "$here/build.sh" "$here/Dockerfile" "$here/docker-entrypoint.sh" "$here/../lib/scratch-image.sh"; printf '%s\n' "$pkgs"; } |
	sha256sum | cut -c1-16)

if image_is_current "$image" "$label" "$hash" "$force"; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	say "building the root filesystem needs root (uid 999 ownership, reading every library)"
	exit 1
fi

# --- root filesystem ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tidygate-pg-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/usr/{bin,sbin,lib,lib64,local/bin,share} "$root"/{etc,tmp,run,var/lib} \
	"$root/usr/lib/postgresql" "$root/usr/share/postgresql" "$root/usr/lib/locale"
# Merged /usr, as on the host.
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"

# PostgreSQL, without the LLVM JIT.
cp -a "$pgroot" "$root/usr/lib/postgresql/"
rm -rf "$root$pgroot/lib/llvmjit.so" "$root$pgroot/lib/llvmjit_types.bc" "$root$pgroot/lib/bitcode"
cp -a "/usr/share/postgresql/$pgver" "$root/usr/share/postgresql/"
rm -rf "$root/usr/share/postgresql/$pgver/man"
cp -a /usr/share/zoneinfo "$root/usr/share/"
cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"

# Tools: busybox applets, plus the real setpriv (busybox's applet lacks
# --init-groups) and bash (testcontainers' WithSSLCert wraps the entrypoint in
# a bash script).
cp /usr/bin/busybox /usr/bin/setpriv /usr/bin/bash "$root/usr/bin/"
applets=(sh ash cat awk grep egrep fgrep nc mkdir chmod chown chgrp id mktemp rm rmdir ls env sleep
	gunzip gzip zcat xzcat unxz printf echo sed head tail cp mv ln touch test "[" tr cut wc sort uniq
	find xargs basename dirname readlink realpath ps kill pidof true false hostname date du df tar
	stat tee which whoami expr seq timeout usleep less more vi diff md5sum sha256sum uname nproc
	free top netstat)
for a in "${applets[@]}"; do
	[ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done
install -m 0755 "$here/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"

# Every shared library the ELF files need, and the dynamic loader.
mapfile -t elves < <(
	find "$root$pgroot/bin" "$root$pgroot/lib" -type f \( -perm -u+x -o -name '*.so' \)
	printf '%s\n' "$root/usr/bin/setpriv" "$root/usr/bin/bash"
)
copy_shared_libs "$root" "${elves[@]}"

# Users, groups and data directories (postgres is uid/gid 999, as in the
# official image).
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
nogroup:x:65534:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
mkdir -p "$root/root" "$root/var/lib/postgresql/data" "$root/run/postgresql" "$root/docker-entrypoint-initdb.d"
chown -R 999:999 "$root/var/lib/postgresql" "$root/run/postgresql"
chmod 0700 "$root/var/lib/postgresql/data"
chmod 3775 "$root/run/postgresql"
chmod 0755 "$root/docker-entrypoint-initdb.d"

# Smoke test in a chroot: the binaries must find all their libraries.
if ! chroot "$root" /usr/lib/postgresql/$pgver/bin/postgres --version >/dev/null ||
	! chroot "$root" /usr/lib/postgresql/$pgver/bin/psql --version >/dev/null ||
	! chroot "$root" /usr/bin/setpriv --version >/dev/null ||
	! chroot "$root" /bin/sh -c 'cat /etc/passwd | awk "{ print \$1 }" | grep -q postgres'; then
	say "the root filesystem is incomplete (a binary failed in a chroot)"
	exit 1
fi

# --- image -------------------------------------------------------------------
build_scratch_image "$work" "$root" "$here/Dockerfile" "$image" "$label" "$hash" "$pkgs"
