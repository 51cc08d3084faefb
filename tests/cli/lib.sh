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

# start_ingest DATA_DIR [braid ingest options...]: starts `braid ingest` on a
# free loopback port and waits for it to listen. Sets INGEST_PID, INGEST_URL
# and INGEST_LOG. A trap stops it when the test exits.
start_ingest() {
	local dir=$1
	shift
	INGEST_LOG=$(mktemp "$TMP/ingest-log.XXXXXX")
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir" "$@" 2>"$INGEST_LOG" &
	INGEST_PID=$!
	trap 'stop_ingest; rm -rf "$TMP"' EXIT
	for _ in $(seq 1 200); do
		INGEST_URL=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$INGEST_LOG" | head -1)
		[ -n "$INGEST_URL" ] && return 0
		if ! kill -0 "$INGEST_PID" 2>/dev/null; then
			echo "FAIL: braid ingest exited at start:" >&2
			cat "$INGEST_LOG" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "FAIL: braid ingest did not listen within 10 s:" >&2
	cat "$INGEST_LOG" >&2
	exit 1
}

# stop_ingest: SIGTERM, and the exit status must be 0.
stop_ingest() {
	[ -n "${INGEST_PID:-}" ] || return 0
	local pid=$INGEST_PID status=0
	INGEST_PID=
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		fail "braid ingest exited with status $status on SIGTERM:"
		cat "$INGEST_LOG" >&2
	fi
}
