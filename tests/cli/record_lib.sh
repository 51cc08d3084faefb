# shellcheck shell=bash
# Shared by the tests of `braid record` (tests/cli/record.sh, unwind.sh), after
# lib.sh: workloads and recordings in the background. Every process started
# goes into PIDS, which the test's cleanup kills.

PIDS=() # every background process, stopped at exit

# start_workload NAME COMMAND...: runs it in the background (stdout in
# $TMP/NAME.out) and waits for its "pid N" line. Sets WL_PID.
start_workload() {
	local name=$1 pid i
	shift
	# made here: the background job opens it some time after the fork
	: >"$TMP/$name.out"
	# in $TMP: node with --perf-basic-prof leaves an isolate-*-v8.log behind
	(cd "$TMP" && exec "$@") >>"$TMP/$name.out" 2>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	for ((i = 0; i < 200; i++)); do
		WL_PID=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/$name.out")
		if [ -n "$WL_PID" ]; then
			[ "$WL_PID" = "$pid" ] || fail "$name: says it is pid $WL_PID, started as $pid"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: workload $name did not start: $(cat "$TMP/$name.err")" >&2
	exit 1
}

stop_workload() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# record NAME OPTIONS...: braid record OPTIONS in the background, stderr in
# $TMP/NAME.err, at most 60 s (times SLOW). Sets REC_PID for record_wait.
record() {
	local name=$1
	shift
	timeout -k 5 $((60 * SLOW)) "$BRAID" record "$@" 2>"$TMP/$name.err" &
	REC_PID=$!
	PIDS+=("$REC_PID")
}

# record_wait NAME PID: braid record exited 0 and printed its summary line
# ("N samples ... wrote FILE"). Returns 1 if not.
record_wait() {
	local name=$1 rc=0
	wait "$2" || rc=$?
	if [ "$rc" -eq 124 ]; then
		fail "$name: braid record had not exited after $((60 * SLOW)) s: $(cat "$TMP/$name.err")"
		return 1
	elif [ "$rc" -ne 0 ]; then
		fail "$name: braid record exited $rc: $(cat "$TMP/$name.err")"
		return 1
	fi
	if ! grep -Eq '[0-9]+ samples.*wrote' "$TMP/$name.err"; then
		fail "$name: no summary line (N samples ... wrote FILE) on stderr: $(cat "$TMP/$name.err")"
		return 1
	fi
}

# folded_check FILE WHAT: every line of a folded file is "comm;frames... N",
# and there is one at least
folded_check() {
	local bad
	bad=$(grep -Evc '^[^;]+(;[^;]+)* [1-9][0-9]*$' "$1" || true)
	[ "$bad" -eq 0 ] || fail "$2: $bad malformed folded lines: $(grep -Ev '^[^;]+(;[^;]+)* [1-9][0-9]*$' "$1" | head -3)"
	[ -s "$1" ] || fail "$2: empty folded output"
}
