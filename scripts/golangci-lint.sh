#!/usr/bin/env bash
# Print the path of a golangci-lint of the wanted version, installing it into
# the repository's bin/ with `go install` when none is found.
#
#   "$(scripts/golangci-lint.sh v2.15.0)" run ./...
#
# Looked for, in order: bin/golangci-lint, golangci-lint on PATH,
# $(go env GOPATH)/bin/golangci-lint.
set -euo pipefail

want=${1:-v2.15.0}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gobin=$(go env GOPATH)/bin

version_of() { "$1" version 2>/dev/null | sed -nE 's/.*version v?([0-9]+\.[0-9]+\.[0-9]+).*/\1/p'; }

for c in "$root/bin/golangci-lint" "$(command -v golangci-lint 2>/dev/null || true)" "$gobin/golangci-lint"; do
	if [ -n "$c" ] && [ -x "$c" ] && [ "$(version_of "$c")" = "${want#v}" ]; then
		printf '%s\n' "$c"
		exit 0
	fi
done

printf 'golangci-lint %s not found; installing into %s/bin\n' "$want" "$root" >&2
GOBIN="$root/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$want" >&2
printf '%s\n' "$root/bin/golangci-lint"
