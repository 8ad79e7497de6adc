# Shared by the scripts that build test images FROM scratch out of the host's
# Debian binaries (scripts/pg-image, scripts/redis-image). Source it; it
# defines functions only. The caller defines say and elapsed.

# copy_shared_libs ROOT FILE...: copies every shared library the ELF files
# need, and the dynamic loader, into ROOT at the path ldd names (resolved
# through the merged-/usr links).
copy_shared_libs() {
	local root=$1
	shift
	local libs lib dir
	mapfile -t libs < <(
		for f in "$@"; do
			ldd "$f" 2>/dev/null || true
		done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
	)
	for lib in "${libs[@]}"; do
		dir=$(readlink -f "$(dirname "$lib")")
		mkdir -p "$root$dir"
		[ -e "$root$dir/$(basename "$lib")" ] || cp -L "$lib" "$root$dir/"
	done
	if [ ! -e "$root/usr/lib64/ld-linux-x86-64.so.2" ]; then
		cp -L /lib64/ld-linux-x86-64.so.2 "$root/usr/lib64/"
	fi
}

# build_scratch_image WORK ROOT DOCKERFILE IMAGE LABEL HASH PKGS: packs ROOT
# into WORK/context/rootfs.tar beside DOCKERFILE and builds IMAGE with the
# legacy builder (it needs no frontend image), labelled LABEL=HASH and
# LABEL's .packages sibling=PKGS; older images with LABEL are pruned.
build_scratch_image() {
	local work=$1 root=$2 dockerfile=$3 image=$4 label=$5 hash=$6 pkgs=$7
	local ctx=$work/context
	mkdir -p "$ctx"
	tar --numeric-owner -C "$root" -cf "$ctx/rootfs.tar" .
	cp "$dockerfile" "$ctx/Dockerfile"
	say "root filesystem ready: $(du -sh "$ctx/rootfs.tar" | cut -f1) ($(elapsed)); building $image"
	DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -q --label "$label=$hash" \
		--label "${label%.hash}.packages=$(printf '%s' "$pkgs" | tr '\n' ' ')" \
		-t "$image" "$ctx" >/dev/null 2>"$work/build.err" || { cat "$work/build.err" >&2; return 1; }
	# Old images of the same name are left dangling; remove them.
	docker image prune -f --filter "label=$label" >/dev/null 2>&1 || true
	say "built $image ($label=$hash) in $(elapsed)"
}

# image_is_current IMAGE LABEL HASH FORCE: fails the script when no Docker
# engine answers; succeeds (having said so) when IMAGE carries LABEL=HASH
# and FORCE is not 1, so that the caller can stop there.
image_is_current() {
	local image=$1 label=$2 hash=$3 force=$4 have
	if ! docker info >/dev/null 2>&1; then
		say "no Docker engine answers (run scripts/start-docker.sh first)"
		exit 1
	fi
	[ "$force" != 1 ] || return 1
	have=$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
	[ "$have" = "$hash" ] || return 1
	say "$image is up to date ($label=$hash)"
}
