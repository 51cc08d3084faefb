#!/usr/bin/env bash
# Captures the JFR fixtures of tests/data/jfr (README.md there) from the real
# Pyroscope Java agent (io.pyroscope:agent, pinned in tests/e2e/java/agent.txt)
# attached to tests/e2e/java/LabelsApp.java, pushing every UPLOAD_INTERVAL to
# a plain HTTP server (tests/tools/jfr_capture.py) that records each push.
# For each fixture NAME it keeps one push, the smallest but the first (the
# JVM's start, heavy with class loading) that holds the events NAME is for:
#   NAME.jfr.gz     the push's `jfr` part, byte for byte (gzipped by the agent)
#   NAME.labels.gz  its `labels` part (gzipped protobuf), when there is one
#   NAME.query      its query string (name=...&from=...&until=...&sampleRate=...)
# and prints `jfr summary` of it. Fixtures:
#   cpu         defaults (itimer), LABELS=0
#   wall        PYROSCOPE_PROFILER_EVENT=wall, LABELS=0
#   alloc_lock  PYROSCOPE_PROFILER_ALLOC=2m PYROSCOPE_PROFILER_LOCK=1ms, LABELS=0
#   labels      as alloc_lock, and the app's context labels (LABELS=1)
#   wall_mixed  wall, alloc and lock events and context labels together
#   jdk         PYROSCOPE_PROFILER_TYPE=JFR: the JDK's own Flight Recorder,
#               not async-profiler, LABELS=0
#
#   bash tests/tools/jfr_capture.sh [-o DIR] [-k RAWDIR | -r RAWDIR] [-p NAME=N]... [NAME...]
# -o: where the fixtures go (tests/data/jfr); -k: keep every push under
# RAWDIR/NAME/push; -r: run nothing, pick again from the pushes an earlier -k
# kept; -p: keep push N (1, 2, ...) of NAME, not the smallest; NAMEs: a
# subset. UPLOAD_INTERVAL (2s) and RUN_SECONDS (9) set the windows. Needs java
# (17 or later: jfr, the single-file source launcher), python3, and the
# agent's jar (downloaded once from Maven Central into ~/.cache/braid/e2e-java,
# by tests/tools/java_agent.sh).
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$SRC_DIR/tests/data/jfr
KEEP=
REUSE=
declare -A PICK=()
while getopts o:k:r:p:h opt; do
	case $opt in
	o) OUT=$OPTARG ;;
	k) KEEP=$OPTARG ;;
	r) REUSE=$OPTARG ;;
	p) PICK[${OPTARG%%=*}]=$(printf %03d "${OPTARG#*=}") ;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
ALL=(cpu wall alloc_lock labels wall_mixed jdk)
if [ $# -gt 0 ]; then NAMES=("$@"); else NAMES=("${ALL[@]}"); fi
UPLOAD_INTERVAL=${UPLOAD_INTERVAL:-2s}
RUN_SECONDS=${RUN_SECONDS:-9}

for tool in java python3 gzip sha256sum curl; do
	command -v "$tool" >/dev/null || {
		echo "jfr_capture: $tool is not installed" >&2
		exit 1
	}
done
JFR=$(dirname "$(readlink -f "$(command -v java)")")/jfr
[ -x "$JFR" ] || JFR=$(command -v jfr) || {
	echo "jfr_capture: no jfr tool next to java or on PATH" >&2
	exit 1
}

# the agent's jar, pinned and cached as the tests get it
AGENT=$(bash "$SRC_DIR/tests/tools/java_agent.sh")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jfr-capture.XXXXXX")
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# settings NAME: the fixture's environment (KEY=VALUE words) and, after a
# "|", the event types a push must hold (jfr summary counts > 0); "labels"
# there asks for a labels part.
settings() {
	case $1 in
	cpu) echo "LABELS=0 | jdk.ExecutionSample" ;;
	wall) echo "LABELS=0 PYROSCOPE_PROFILER_EVENT=wall | profiler.WallClockSample" ;;
	alloc_lock) echo "LABELS=0 PYROSCOPE_PROFILER_ALLOC=2m PYROSCOPE_PROFILER_LOCK=1ms |" \
		"jdk.ExecutionSample jdk.ObjectAllocationInNewTLAB jdk.JavaMonitorEnter jdk.ThreadPark" ;;
	labels) echo "LABELS=1 PYROSCOPE_PROFILER_ALLOC=2m PYROSCOPE_PROFILER_LOCK=1ms |" \
		"jdk.ExecutionSample jdk.ObjectAllocationInNewTLAB jdk.JavaMonitorEnter jdk.ThreadPark labels" ;;
	wall_mixed) echo "LABELS=1 PYROSCOPE_PROFILER_EVENT=wall PYROSCOPE_PROFILER_ALLOC=2m PYROSCOPE_PROFILER_LOCK=1ms |" \
		"profiler.WallClockSample jdk.ObjectAllocationInNewTLAB jdk.JavaMonitorEnter jdk.ThreadPark labels" ;;
	jdk) echo "LABELS=0 PYROSCOPE_PROFILER_TYPE=JFR |" \
		"jdk.ExecutionSample jdk.ObjectAllocationInNewTLAB jdk.ObjectAllocationOutsideTLAB jdk.JavaMonitorEnter jdk.ThreadPark" ;;
	*)
		echo "jfr_capture: unknown fixture $1 (${ALL[*]})" >&2
		return 1
		;;
	esac
}

# count FILE.jfr TYPE: TYPE's event count in `jfr summary`
count() {
	"$JFR" summary "$1" | awk -v t="$2" '$1 == t { print $2; found = 1 } END { if (!found) print 0 }'
}

# run NAME DIR: runs the app under the agent with NAME's settings, every push
# recorded under DIR/push
run() {
	local name=$1 dir=$2 spec envs port app_rc
	spec=$(settings "$name")
	envs=${spec%%|*}
	mkdir -p "$dir"
	python3 "$SRC_DIR/tests/tools/jfr_capture.py" "$dir/push" >"$dir/server.out" 2>"$dir/server.err" &
	SERVER_PID=$!
	port=
	for _ in $(seq 1 50); do
		port=$(sed -n 's/^port //p' "$dir/server.out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || {
		echo "jfr_capture: the capture server did not start: $(cat "$dir/server.err")" >&2
		return 1
	}
	echo "# $name: $envs PYROSCOPE_UPLOAD_INTERVAL=$UPLOAD_INTERVAL RUN_SECONDS=$RUN_SECONDS" >&2
	app_rc=0
	# shellcheck disable=SC2086 # $envs: KEY=VALUE words
	env PYROSCOPE_SERVER_ADDRESS="http://127.0.0.1:$port" PYROSCOPE_APPLICATION_NAME="braid-jfr-$name" \
		PYROSCOPE_UPLOAD_INTERVAL="$UPLOAD_INTERVAL" PYROSCOPE_LOG_LEVEL=info RUN_SECONDS="$RUN_SECONDS" $envs \
		java -javaagent:"$AGENT" -cp "$AGENT" "$SRC_DIR/tests/e2e/java/LabelsApp.java" \
		>"$dir/app.out" 2>"$dir/app.err" || app_rc=$?
	kill "$SERVER_PID"
	wait "$SERVER_PID" || true
	SERVER_PID=
	if [ "$app_rc" -ne 0 ]; then
		echo "jfr_capture: $name: the app exited $app_rc: $(tail -5 "$dir/app.err")" >&2
		return 1
	fi
	[ -z "$KEEP" ] || { mkdir -p "$KEEP/$name" && cp -r "$dir/." "$KEEP/$name/"; }
}

# pick NAME DIR: copies into $OUT the push of DIR/push that NAME keeps: the
# smallest but the first that holds NAME's events (or -p's)
pick() {
	local name=$1 dir=$2 spec needs push jfr best best_size size n ok need
	spec=$(settings "$name")
	needs=${spec#*|}
	best=''
	best_size=0
	for push in "$dir"/push/*.query; do
		push=${push%.query}
		n=$(basename "$push")
		if [ "$n" = 001 ] || ! [ -f "$push.part.jfr" ]; then continue; fi
		if [ -n "${PICK[$name]:-}" ] && [ "$n" != "${PICK[$name]}" ]; then continue; fi
		jfr=$TMP/$name.$n.jfr
		gzip -dcf "$push.part.jfr" >"$jfr"
		ok=1
		for need in $needs; do
			if [ "$need" = labels ]; then
				[ -f "$push.part.labels" ] || ok=
			elif [ "$(count "$jfr" "$need")" -eq 0 ]; then
				ok=
			fi
		done
		size=$(($(stat -c %s "$push.part.jfr") + $(stat -c %s "$push.part.labels" 2>/dev/null || echo 0)))
		echo "#   push $n: $size bytes, $(tr '\n' ' ' <"$push.parts")${ok:+(has$needs)}" >&2
		if [ -n "$ok" ] && { [ -z "$best" ] || [ "$size" -lt "$best_size" ]; }; then
			best=$push best_size=$size
		fi
	done
	if [ -z "$best" ]; then
		echo "jfr_capture: $name: no push ${PICK[$name]:-but the first} holds$needs" >&2
		return 1
	fi
	mkdir -p "$OUT"
	cp "$best.part.jfr" "$OUT/$name.jfr.gz"
	rm -f "$OUT/$name.labels.gz"
	[ ! -f "$best.part.labels" ] || cp "$best.part.labels" "$OUT/$name.labels.gz"
	cp "$best.query" "$OUT/$name.query"
	echo "## $name: push $(basename "$best") of $(find "$dir/push" -name '*.query' | wc -l)," \
		"jfr $(stat -c %s "$OUT/$name.jfr.gz") bytes ($(gzip -dcf "$best.part.jfr" | wc -c) inflated)," \
		"labels $(stat -c %s "$OUT/$name.labels.gz" 2>/dev/null || echo none); query $(cat "$best.query")"
	"$JFR" summary "$TMP/$name.$(basename "$best").jfr" | awk '$1 ~ /\./ && $2 ~ /^[0-9]+$/ && $2 > 0 { print "  " $1, $2 }'
}

for name in "${NAMES[@]}"; do
	settings "$name" >/dev/null
	if [ -n "$REUSE" ]; then
		pick "$name" "$REUSE/$name"
	else
		run "$name" "$TMP/$name"
		pick "$name" "$TMP/$name"
	fi
done
