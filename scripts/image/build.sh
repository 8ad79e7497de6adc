#!/usr/bin/env bash
# Build tidygate's container image with no registry: a static binary and a
# root filesystem tarball made on the host, added to a FROM scratch image
# (see the Dockerfile at the repository root).
#
# Usage: scripts/image/build.sh          (make image runs it)
#
# The root filesystem (ownership set in the tarball, so root is not needed):
#   /usr/local/bin/tidygate             CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" ./cmd/app
#   /etc/ssl/certs/ca-certificates.crt  from the host (Debian package ca-certificates)
#   /etc/passwd, /etc/group             root and tidygate (uid/gid 65532, no shell, no login)
#   /var/lib/tidygate/journal           uid/gid 65532, mode 0700 (the call-log journal)
#   /tmp                                mode 1777
#
# Environment:
#   IMAGE     image name and tag (default localhost/tidygate:latest); also
#             tagged localhost/tidygate:<git short hash> when the name is the default
#   GO        the go command (default go)
#   CA_BUNDLE the CA bundle to copy (default /etc/ssl/certs/ca-certificates.crt)
#   BINARY    where to leave the static binary too (default bin/tidygate-linux-amd64-static;
#             empty: only inside the image)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
image=${IMAGE:-localhost/tidygate:latest}
go_cmd=${GO:-go}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
uid=65532
say() { printf 'image: %s\n' "$*" >&2; }

command -v docker >/dev/null || { say "no docker client (apt-get install -y docker.io)"; exit 1; }
docker info >/dev/null 2>&1 || { say "no Docker engine answers (run scripts/start-docker.sh)"; exit 1; }
if [ ! -s "$ca" ]; then
	say "no CA bundle at $ca (apt-get install -y ca-certificates)"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tidygate-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/var/lib/tidygate/journal" "$root/tmp"

# --- the binary ----------------------------------------------------------------
goarch=$($go_cmd env GOARCH)
say "building the static binary (linux/$goarch)"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $go_cmd build -trimpath -ldflags "-s -w" \
	-o "$root/usr/local/bin/tidygate" ./cmd/app
if command -v file >/dev/null && ! file "$root/usr/local/bin/tidygate" | grep -q 'statically linked'; then
	say "the binary is not statically linked"
	exit 1
fi
binary=${BINARY-bin/tidygate-linux-$goarch-static}
if [ -n "$binary" ]; then
	mkdir -p "$(dirname "$binary")"
	cp "$root/usr/local/bin/tidygate" "$binary"
fi

# --- the rest of the root filesystem ---------------------------------------------
cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
cat >"$root/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
tidygate:x:$uid:$uid:tidygate:/var/lib/tidygate:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<GROUP
root:x:0:
tidygate:x:$uid:
nogroup:x:65534:
GROUP
chmod 0755 "$root/usr/local/bin/tidygate"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$root/var/lib/tidygate"
chmod 0700 "$root/var/lib/tidygate/journal"
chmod 1777 "$root/tmp"

# Ownership lives in the tarball: root for everything, 65532 for the journal
# directory and its parent (the working directory). GNU tar, fixed mtimes
# and order, so the same inputs give the same layer.
mtime=@$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar_opts=(--sort=name --mtime="$mtime" --numeric-owner --format=gnu -C "$root")
tar -cf "$work/rootfs.tar" "${tar_opts[@]}" --owner=0 --group=0 \
	--no-recursion ./etc ./etc/ssl ./etc/ssl/certs ./usr ./usr/local ./usr/local/bin ./var ./var/lib ./tmp \
	--recursion ./etc/passwd ./etc/group ./etc/ssl/certs/ca-certificates.crt ./usr/local/bin/tidygate
tar -cf "$work/tidygate.tar" "${tar_opts[@]}" --owner=$uid --group=$uid \
	./var/lib/tidygate
tar -Af "$work/rootfs.tar" "$work/tidygate.tar"
rm -f "$work/tidygate.tar"
cp Dockerfile "$work/Dockerfile"

# --- the image -------------------------------------------------------------------
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo -dirty || true)
tags=(-t "$image")
if [ -z "${IMAGE:-}" ] && [ -z "$dirty" ]; then
	tags+=(-t "localhost/tidygate:$rev$dirty")
fi
say "docker build ${tags[*]} (FROM scratch, $(du -h "$work/rootfs.tar" | cut -f1) root filesystem)"
DOCKER_BUILDKIT=0 docker build -q "${tags[@]}" \
	--label org.opencontainers.image.title=tidygate \
	--label org.opencontainers.image.source=https://github.com/tidygate/tidygate \
	--label "org.opencontainers.image.revision=$rev$dirty" \
	"$work" >/dev/null
docker image ls "${image%:*}" --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' | sed 's/^/image: /' >&2
