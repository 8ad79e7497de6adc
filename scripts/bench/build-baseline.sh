#!/usr/bin/env bash
# Builds tidygate as it was at a git revision into OUT, from a temporary
# worktree: make bench measures the build before issue 16's work in the
# same run as today's, so that the throughput target compares two builds on
# the same machine at the same time rather than with a figure recorded on
# another day.
#
# usage: scripts/bench/build-baseline.sh REVISION OUT
set -euo pipefail
rev=$1
out=$(realpath -m "$2")
if ! git rev-parse --verify -q "$rev^{commit}" >/dev/null; then
	echo "bench: the baseline revision $rev is not in this clone's history (a shallow clone?); the throughput target falls back to -baseline-rps" >&2
	exit 1
fi
dir=$(mktemp -d)
trap 'git worktree remove --force "$dir" >/dev/null 2>&1 || rm -rf "$dir"' EXIT
git worktree add -q --detach "$dir" "$rev"
mkdir -p "$(dirname "$out")"
(cd "$dir" && go build -o "$out" ./cmd/app)
echo "bench: built the baseline revision $rev into $out" >&2
