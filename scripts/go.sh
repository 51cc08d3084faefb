#!/usr/bin/env bash
# Runs the machine's Go toolchain (Go 1.26 or later; Debian 12's golang-go is
# too old and is not used) on the repository's Go module (go.mod at the root:
# the Go side of the tests and benchmarks), pinned and cached:
#   - GOFLAGS=-mod=readonly: versions come from go.mod and go.sum only;
#   - GOTOOLCHAIN=local: the installed toolchain, never a downloaded one;
#   - GOMODCACHE and GOCACHE under ~/.cache/braid/go (BRAID_CACHE moves it), so
#     a second run downloads and recompiles nothing.
# Usage: bash scripts/go.sh build -o OUT ./tests/tools/pprofdump
#        bash scripts/go.sh version
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)

# The first of PATH's go and /usr/local/go's that is 1.26 or later.
go_bin=
for candidate in "$(command -v go || true)" /usr/local/go/bin/go; do
	[ -n "$candidate" ] && [ -x "$candidate" ] || continue
	v=$(GOTOOLCHAIN=local "$candidate" env GOVERSION 2>/dev/null || true)
	major_minor=$(echo "$v" | sed -n 's/^go\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
	read -r major minor <<<"${major_minor:-0 0}"
	if [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 26 ]; }; then
		go_bin=$candidate
		break
	fi
done
if [ -z "$go_bin" ]; then
	echo "braid: no Go 1.26 or later as 'go' on PATH or in /usr/local/go (the tests' Go module needs it)" >&2
	exit 1
fi

cache=${BRAID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOTOOLCHAIN=local GOWORK=off \
	GO111MODULE=on GOFLAGS="-mod=readonly -buildvcs=false"
unset GOPATH
cd "$SRC_DIR"
exec "$go_bin" "$@"
