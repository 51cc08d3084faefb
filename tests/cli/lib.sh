# Shared by the integration tests: assertions that print what differed.
set -euo pipefail

: "${BRAID:?}" "${BUILD_DIR:?}" "${FIXTURES:?}"
GOBIN_DIR="$BUILD_DIR/go-bin"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/braid-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILED=0

fail() {
	echo "FAIL: $*" >&2
	FAILED=1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" != "$3" ]; then
		fail "$1: expected [$2], got [$3]"
	fi
}

# expect_same_file WHAT A B: files identical, else show the diff
expect_same_file() {
	if ! cmp -s "$2" "$3"; then
		fail "$1 differ:"
		diff -u "$2" "$3" | head -40 >&2 || true
	fi
}

# expect_contains WHAT FILE TEXT
expect_contains() {
	if ! grep -qF -- "$3" "$2"; then
		fail "$1: [$3] not found in:"
		head -40 "$2" >&2
	fi
}

fixtures() {
	ls "$FIXTURES"/*/*.pprof.gz
}

finish() {
	if [ "$FAILED" -ne 0 ]; then
		exit 1
	fi
	echo "ok"
}
