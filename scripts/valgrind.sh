#!/usr/bin/env bash
# Runs the integration tests (tests/cli/*.sh, through ctest) with every braid
# they start under valgrind's memcheck, then reads every valgrind log: any
# error, or any definitely lost block, fails the run. docs/valgrind.md says
# what runs and what tests/valgrind.supp suppresses.
#   bash scripts/valgrind.sh                  # the tests below
#   bash scripts/valgrind.sh cli_ingest ...   # only these
# The build is a plain one (no sanitizer) in build-valgrind/ (BUILD_DIR sets
# another): -O1 -g with frame pointers. Root adds the eBPF tests. The logs
# stay in BUILD_DIR/valgrind-logs/, one per braid run, named after the test
# script, the process and the time. BRAID_SLOW (default 10) scales the
# tests' waits and time limits; VALGRIND_OPTS adds valgrind options (e.g.
# --track-fds=yes). The build's output is in BUILD_DIR/build.log.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build-valgrind}
LOGS=$BUILD_DIR/valgrind-logs

command -v valgrind >/dev/null || {
	echo "braid: valgrind is not installed (apt-get install valgrind)" >&2
	exit 1
}

# Left out: cli_bench and cli_bench_record (they measure braid's speed,
# which valgrind changes by design), cli_report_html (Chromium on the page
# of braid report, which cli_report runs under valgrind) and cli_faults (it
# times replies and holds a thousand sockets). cli_upstream starts no braid
# (it tests the fake Pyroscope): it shows 0 runs.
tests=(cli_convert cli_inspect cli_store cli_ingest cli_merge cli_report cli_errors cli_node_sdk
	cli_agent cli_upstream)
if [ "$(id -u)" -eq 0 ]; then
	tests+=(cli_record cli_unwind cli_merge_node cli_agent_node)
else
	echo "== not root: cli_record, cli_unwind, cli_merge_node and cli_agent_node (eBPF) are not run" >&2
fi
[ "$#" -gt 0 ] && tests=("$@")

echo "== build ($BUILD_DIR: Debug, -O1 -g, frame pointers)"
cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug \
	-DCMAKE_C_FLAGS_DEBUG="-O1 -g -fno-omit-frame-pointer" -DBRAID_CLI_TIMEOUT=5400 >/dev/null
if ! cmake --build "$BUILD_DIR" -j "$(nproc)" -- --no-print-directory >"$BUILD_DIR/build.log" 2>&1; then
	tail -40 "$BUILD_DIR/build.log" >&2
	exit 1
fi

rm -rf "$LOGS"
mkdir -p "$LOGS"
# record.sh runs braid as nobody once: its valgrind must write a log here too
chmod 1777 "$LOGS"

# --errors-for-leak-kinds=definite: a definite leak is an error (exit 99),
# possible and indirect ones are reported below, not failed on.
# (lib.sh splits BRAID_WRAPPER at spaces: no spaces in these paths)
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
	--errors-for-leak-kinds=definite "--show-leak-kinds=definite,indirect,possible"
	--track-origins=yes --num-callers=30 "--suppressions=$SRC_DIR/tests/valgrind.supp"
	"--log-file=$LOGS/%q{BRAID_CALL_ID}.log")
export BRAID_WRAPPER="${vg[*]}"
export BRAID_SLOW=${BRAID_SLOW:-10}

regex=$(
	IFS='|'
	echo "^(${tests[*]})\$"
)
echo "== ctest -R '$regex' with braid under valgrind (logs: $LOGS)"
ctest_rc=0
(cd "$BUILD_DIR" && ctest -R "$regex" --output-on-failure) || ctest_rc=$?

# figures LOG: "errors definite indirect possible complete crashed", bytes for
# the leaks. Errors are counted from their headers, so a log cut short by a
# SIGKILL (no summaries) still counts what it holds; a definite leak record
# is an error too (ERROR SUMMARY counts it), and is counted as a leak here.
figures() {
	awk '
		/^==[0-9]+== (Invalid (read|write|free|alignment|size)|Mismatched free|Conditional jump or move depends on uninitialised|Use of uninitialised value|Syscall param|Source and destination overlap|Argument .* of function .* has a fishy|Jump to the invalid address|Illegal memory pool|(Unaddressable|Uninitialised) byte\(s\) found|realloc\(\) with size 0)/ { errors++ }
		/^==[0-9]+== Process terminating with default action of signal (4|6|7|8|11) / { crashed = 1 }
		/^==[0-9]+== +definitely lost: / { gsub(/,/, "", $4); definite += $4 }
		/^==[0-9]+== +indirectly lost: / { gsub(/,/, "", $4); indirect += $4 }
		/^==[0-9]+== +possibly lost: / { gsub(/,/, "", $4); possible += $4 }
		/^==[0-9]+== ERROR SUMMARY: / { complete = 1; summary = $4 }
		END {
			# the summary counts definite leak records as errors too
			printf "%d %d %d %d %d %d %d\n", errors, definite, indirect, possible, complete, crashed, summary
		}' "$1"
}

echo
echo "== valgrind: per test, braid runs checked, errors, leaks (bytes)"
printf '%-16s %6s %6s %7s %10s %10s %10s\n' test runs killed errors definite indirect possible
bad=0
for t in "${tests[@]}"; do
	script=${t#cli_}
	runs=0 killed=0 errors=0 definite=0 indirect=0 possible=0
	for log in "$LOGS/$script".*.log; do
		[ -e "$log" ] || continue
		read -r e d i p complete crashed summary < <(figures "$log")
		runs=$((runs + 1))
		[ "$complete" -eq 1 ] || killed=$((killed + 1))
		errors=$((errors + e))
		definite=$((definite + d))
		indirect=$((indirect + i))
		possible=$((possible + p))
		if [ "$e" -gt 0 ] || [ "$d" -gt 0 ] || [ "$crashed" -eq 1 ] ||
			{ [ "$complete" -eq 1 ] && [ "$summary" -gt 0 ]; }; then
			bad=1
			echo "   $log: $e errors, $d bytes definitely lost$([ "$crashed" -eq 1 ] && echo ", crashed")" >&2
		fi
	done
	printf '%-16s %6d %6d %7d %10d %10d %10d\n' "$t" "$runs" "$killed" "$errors" "$definite" \
		"$indirect" "$possible"
done
echo "(killed: runs ended by SIGKILL on purpose, with no leak summary; their errors still count)"

if [ "$bad" -ne 0 ]; then
	echo "FAIL: valgrind found errors or definite leaks: the logs above" >&2
	exit 1
fi
if [ "$ctest_rc" -ne 0 ]; then
	echo "FAIL: ctest failed under valgrind" >&2
	exit 1
fi
echo "ok: no valgrind error and no definite leak"
