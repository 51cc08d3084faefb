#!/usr/bin/env bash
# JFR decode speed: braid's JFR reader against Pyroscope's own converter
# (github.com/grafana/jfr-parser's pprof.ParseJFR, pinned in go.mod: what
# Pyroscope runs on every Java agent push) on the same recordings, in the
# same run. Both peers start from the inflated recording in memory and end
# with a profile per kind of event (chunks, metadata, constant pools, events,
# the profiles built; the labels part decoded where a recording has one).
# Rounds alternate between them and each peer's best round counts, so that
# noise from a shared machine hits both alike.
#
#   bash bench/jfr.sh              # from the repo root, after a build
#   BUILD_DIR=build ROUNDS=5 SECONDS_PER_RUN=1 bash bench/jfr.sh
#
# Files: the real recordings of tests/data/jfr (one 2 s push of the Java
# agent each, and one of the JDK's recorder), and all of them in one
# multi-chunk recording.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in
/*) ;;
*) BUILD_DIR=$PWD/$BUILD_DIR ;;
esac
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-1}
if [ -n "${BENCH_QUICK:-}" ]; then # a smoke run for the test suite
	ROUNDS=1 SECONDS_PER_RUN=0
fi
OUT=${BENCH_OUT:-$BUILD_DIR/bench-data}
BRAID_BENCH=${BENCH_JFR:-$BUILD_DIR/bench_jfr_decode}
GOBIN_DIR=$BUILD_DIR/go-bin
DATA=$SRC_DIR/tests/data/jfr

[ -x "$BRAID_BENCH" ] || { echo "no $BRAID_BENCH: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
if [ ! -x "$GOBIN_DIR/jfrbench" ]; then
	env BUILD_DIR="$BUILD_DIR" SRC_DIR="$SRC_DIR" bash "$SRC_DIR/tests/cli/go-tools.sh" >/dev/null
fi
mkdir -p "$OUT"
all="$OUT/all-chunks.jfr"
: >"$all"
for f in "$DATA"/*.jfr.gz; do
	zcat "$f" >>"$all"
done

results="$OUT/jfr-results.txt"
: >"$results"
# bench FILE: one run of each peer on FILE, with its labels part if it has one
bench() {
	local opt=()
	[ -f "${1%.jfr.gz}.labels.gz" ] && opt=(-labels "${1%.jfr.gz}.labels.gz")
	"$BRAID_BENCH" -min-seconds "$SECONDS_PER_RUN" "${opt[@]}" "$1" >>"$results"
	"$GOBIN_DIR/jfrbench" -seconds "$SECONDS_PER_RUN" "${opt[@]}" "$1" >>"$results"
}
for ((r = 1; r <= ROUNDS; r++)); do
	echo "round $r/$ROUNDS" >&2
	for f in "$DATA"/*.jfr.gz "$all"; do
		bench "$f"
	done
done

echo "JFR decode: braid vs Pyroscope's converter (jfr-parser's pprof.ParseJFR), best of $ROUNDS alternating rounds"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(bash "$SRC_DIR/scripts/go.sh" env GOVERSION)"
awk '
function kv(k,   i, a) {
	for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
	return ""
}
{
	f = kv("file"); p = kv("peer"); m = kv("mb_s") + 0
	if (!(f in order)) { order[f] = ++n; names[n] = f }
	bytes[f] = kv("bytes")
	if (m > best[p, f]) best[p, f] = m
}
END {
	printf "%-18s %10s %11s %11s %7s\n", "file", "bytes", "braid_MB/s", "go_MB/s", "ratio"
	for (i = 1; i <= n; i++) {
		f = names[i]
		printf "%-18s %10d %11.2f %11.2f %6.2fx\n", f, bytes[f], best["braid", f], best["go", f],
			(best["go", f] > 0 ? best["braid", f] / best["go", f] : 0)
		if (f != "all-chunks.jfr") { tb += bytes[f] / best["braid", f]; tg += bytes[f] / best["go", f]; tot += bytes[f] }
	}
	if (tot > 0)
		printf "%-18s %10d %11.2f %11.2f %6.2fx\n", "fixtures-together", tot, tot / tb, tot / tg, tg / tb
}' "$results"
