#!/usr/bin/env bash
# How right the splice is for Java: the CPU shares of a Java app's methods in
# `braid merge`'s output and in the Java agent's profile alone, against a
# truth that eBPF alone gives when the JVM keeps frame pointers and writes a
# perf map.
#
# The app is tests/e2e/java/App.java (compress: Deflater, zlib through JNI;
# writeLog: a file write; sortWork: Java alone) with the real Java agent
# (tests/e2e/java/agent.txt) pushing JFR to `braid ingest` every 5 s. The JVM
# runs with -XX:+PreserveFramePointer, so that eBPF unwinds through compiled
# Java, and -XX:-Inline, so that every Java method the agent names is a
# compiled method the perf map names too (a perf map names an inlining
# method only). Per round, once the JIT has settled, `jcmd PID
# Compiler.perfmap` writes /tmp/perf-PID.map, `braid record --pid` samples the
# app at 97 Hz for DURATION seconds (the map written again 2 s before the
# end), and `braid merge` splices the agent's pushes of that span into the
# recording. bench/java/accuracy.py counts each sample for its leaf-most
# Java method in the three views:
#   truth   the recording alone, its frames named from the perf map;
#   merged  braid merge's output;
#   sdk     the agent's profiles alone (naive per-PID scaling gives the same
#           shares);
# and prints the total variation distance (TVD) of merged and sdk from the
# truth. Target: merged TVD <= 0.05; baseline: the SDK alone.
#
#   bash bench/java_accuracy.sh            # from the repo root, after a build; as root
#   bash bench/java_accuracy.sh --quick    # one round, shorter
#   bash bench/java_accuracy.sh --json     # the figures as JSON on stdout
#
# Environment: BRAID (default build/braid), ROUNDS (3), RUN_SECONDS (the
# app's run, default 80: recorded from its 20th second for RUN_SECONDS - 25),
# BENCH_DIR (default /var/tmp), KEEP=1 (keep the files).
# Exits 77 when not root, without kernel BTF or with a braid built without
# its sampler; 1 when a step fails; never because a target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-80}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
WARM=20
json=
for arg in "$@"; do
	case $arg in
	--quick) ROUNDS=1 RUN_SECONDS=32 WARM=15 ;;
	--json) json=1 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bash bench/java_accuracy.sh [--quick] [--json]" >&2
		exit 2
		;;
	esac
done
DURATION=$((RUN_SECONDS - WARM - 5))

. "$SRC_DIR/bench/lib.sh"
require_sampler bench/java_accuracy.sh "braid record of a JVM"
for tool in java jcmd jq curl python3; do
	command -v "$tool" >/dev/null || { echo "bench/java_accuracy.sh needs $tool (scripts/deps.sh)" >&2; exit 1; }
done
# the agent's jar, pinned and cached as the tests get it
JAVA_AGENT=$(bash "$SRC_DIR/tests/tools/java_agent.sh")

mkdir -p "$BENCH_DIR"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench-java.XXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then
		echo "# files kept in $RUN" >&2
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT

# wait_line FILE REGEX PID: until FILE has a line matching REGEX (60 s at most)
wait_line() {
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# round N: one run; its figures go to $RUN/N/figures.json
round() {
	local dir=$RUN/$1 ingest_pid url app_pid app rc=0 rec_pid t0 t1 sdk=() merge_args=()
	mkdir -p "$dir"
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/ingest.err" &
	ingest_pid=$!
	PIDS+=("$ingest_pid")
	wait_line "$dir/ingest.err" 'listening on' "$ingest_pid" ||
		{ echo "braid ingest did not start: $(cat "$dir/ingest.err")" >&2; return 1; }
	url=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$dir/ingest.err" | head -1)
	env PYROSCOPE_SERVER_ADDRESS="$url" PYROSCOPE_APPLICATION_NAME="braid-bench-java" \
		PYROSCOPE_UPLOAD_INTERVAL=5s RUN_SECONDS="$RUN_SECONDS" \
		java -XX:+PreserveFramePointer -XX:-Inline -javaagent:"$JAVA_AGENT" \
		"$SRC_DIR/tests/e2e/java/App.java" >"$dir/app.out" 2>"$dir/app.err" &
	app_pid=$!
	PIDS+=("$app_pid")
	wait_line "$dir/app.out" '^pid ' "$app_pid" || { echo "the app did not start: $(cat "$dir/app.err")" >&2; return 1; }
	app=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$dir/app.out")
	sleep "$WARM" # the JIT settles
	jcmd "$app" Compiler.perfmap >"$dir/perfmap.out" 2>&1 ||
		{ echo "jcmd $app Compiler.perfmap failed: $(cat "$dir/perfmap.out")" >&2; return 1; }
	t0=$(date +%s%N)
	"$BRAID" record --pid "$app" --duration "$DURATION" -o "$dir/rec.pb.gz" 2>"$dir/rec.err" &
	rec_pid=$!
	sleep $((DURATION - 2))
	jcmd "$app" Compiler.perfmap >>"$dir/perfmap.out" 2>&1 || true
	wait "$rec_pid" || { echo "braid record failed: $(cat "$dir/rec.err")" >&2; return 1; }
	t1=$(date +%s%N)
	wait "$app_pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "the app exited $rc: $(tail -5 "$dir/app.err")" >&2; return 1; }
	sleep 1 # its last push
	kill -TERM "$ingest_pid" 2>/dev/null || true
	wait "$ingest_pid" || { echo "braid ingest failed: $(cat "$dir/ingest.err")" >&2; return 1; }

	# the agent's pushes of the recorded span: those whose middle lies in it
	"$BRAID" store ls --json --limit 0 --data-dir "$dir/data" >"$dir/ls.json"
	: >"$dir/sdk.folded"
	for id in $(jq -r --arg pid "$app" --argjson t0 "$t0" --argjson t1 "$t1" '.sdk_profiles[]
		| select((.pid | tostring) == $pid and .format == "jfr")
		| select(((.from_ns + .until_ns) / 2) as $m | $m >= $t0 and $m < $t1) | .id' "$dir/ls.json"); do
		"$BRAID" store export "$id" -o "$dir/sdk-$id.form" --data-dir "$dir/data"
		"$BRAID" convert "$dir/sdk-$id.form" --to folded >>"$dir/sdk.folded"
		sdk+=("$dir/sdk-$id.form")
	done
	[ "${#sdk[@]}" -gt 0 ] || { echo "no push of pid $app covers the recording" >&2; return 1; }
	for f in "${sdk[@]}"; do
		merge_args+=(--sdk "$f")
	done
	"$BRAID" merge --ebpf "$dir/rec.pb.gz" --pid "$app" "${merge_args[@]}" -o "$dir/merged.pb.gz" \
		2>"$dir/merge.err" || { echo "braid merge failed: $(cat "$dir/merge.err")" >&2; return 1; }
	"$BRAID" convert "$dir/rec.pb.gz" --to folded >"$dir/truth.folded"
	"$BRAID" convert "$dir/merged.pb.gz" --to folded >"$dir/merged.folded"
	python3 "$SRC_DIR/bench/java/accuracy.py" --truth "$dir/truth.folded" --merged "$dir/merged.folded" \
		--sdk "$dir/sdk.folded" >"$dir/acc.json"
	jq --argjson round "$1" --argjson pid "$app" --argjson pushes "${#sdk[@]}" \
		--arg java "$(java -version 2>&1 | head -1)" --arg merge "$(tr '\n' ' ' <"$dir/merge.err")" \
		'{round: $round, java: $java, pid: $pid, pushes: $pushes, merge: $merge} + .' "$dir/acc.json" >"$dir/figures.json"
}

# print_round FILE
print_round() {
	jq -r '"round \(.round): \(.java), \(.pushes) pushes; merged TVD \(.tvd_merged), SDK alone \(.tvd_sdk); truth \(.truth_ns / 1e9 * 10 | round / 10) s of Java CPU (\(.truth_interpreted * 1000 | round / 10) % interpreted)",
		(.methods[] | "  \(.method)\ttruth \(.truth * 1000 | round / 10) %\tmerged \(.merged * 1000 | round / 10) %\tsdk \(.sdk * 1000 | round / 10) %")' "$1"
}

if [ -n "$json" ]; then
	exec 3>&2
else
	exec 3>&1
fi
files=()
for ((r = 1; r <= ROUNDS; r++)); do
	echo "# round $r/$ROUNDS ($RUN_SECONDS s)" >&2
	round "$r"
	print_round "$RUN/$r/figures.json" >&3
	files+=("$RUN/$r/figures.json")
done
if [ -n "$json" ]; then
	jq -s '{rounds: ., median_tvd_merged: ([.[].tvd_merged] | sort | .[length / 2 | floor]),
		median_tvd_sdk: ([.[].tvd_sdk] | sort | .[length / 2 | floor])}' "${files[@]}"
else
	jq -rs '"median over \(length) rounds: merged TVD \([.[].tvd_merged] | sort | .[length / 2 | floor]), SDK alone \([.[].tvd_sdk] | sort | .[length / 2 | floor]) (target: merged <= 0.05)"' "${files[@]}"
fi
