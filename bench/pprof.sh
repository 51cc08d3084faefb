#!/usr/bin/env bash
# pprof decode speed: braid's decoder against Go's profile.Parse
# (github.com/google/pprof, pinned in go.mod) on the same files, in the same
# run. Both peers decode from memory (gunzip + parse + build their model);
# rounds alternate between them and each peer's best round counts, so that
# noise from a shared machine hits both alike.
#
#   bash bench/pprof.sh            # from the repo root, after a build
#   BUILD_DIR=build ROUNDS=5 SECONDS_PER_RUN=1 bash bench/pprof.sh
#
# Files: a generated profile (120k samples, 25k locations, like a busy
# node's minute) and the real fixtures in ../shared/fixtures.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
FIXTURES=${FIXTURES:-$SRC_DIR/../shared/fixtures}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-1}
SAMPLES=${SAMPLES:-120000}
LOCATIONS=${LOCATIONS:-25000}
if [ -n "${BENCH_QUICK:-}" ]; then # a smoke run for the test suite
	ROUNDS=1 SECONDS_PER_RUN=0 SAMPLES=3000 LOCATIONS=800
fi
OUT=${BENCH_OUT:-$BUILD_DIR/bench-data}
BRAID_BENCH=${BENCH_DECODE:-$BUILD_DIR/bench_pprof_decode}
GOBIN_DIR=$BUILD_DIR/go-bin

[ -x "$BRAID_BENCH" ] || { echo "no $BRAID_BENCH: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
if [ ! -x "$GOBIN_DIR/decodebench" ] || [ ! -x "$GOBIN_DIR/genpprof" ]; then
	BUILD_DIR=$BUILD_DIR SRC_DIR=$SRC_DIR bash "$SRC_DIR/tests/cli/go-tools.sh" >/dev/null
fi
mkdir -p "$OUT"
gen="$OUT/generated.pb.gz"
if [ ! -s "$gen" ] || [ "$(cat "$gen.args" 2>/dev/null)" != "$SAMPLES $LOCATIONS" ]; then
	"$GOBIN_DIR/genpprof" -o "$gen" -samples "$SAMPLES" -locations "$LOCATIONS" -seed 1 >&2
	echo "$SAMPLES $LOCATIONS" >"$gen.args"
fi
files=("$gen" "$FIXTURES"/go-runtime-pprof/*.pprof.gz "$FIXTURES"/node-sdk-0.6.4/*.pprof.gz)

results="$OUT/results.txt"
: >"$results"
for ((r = 1; r <= ROUNDS; r++)); do
	echo "round $r/$ROUNDS" >&2
	"$BRAID_BENCH" -min-seconds "$SECONDS_PER_RUN" "${files[@]}" >>"$results"
	"$GOBIN_DIR/decodebench" -min-seconds "$SECONDS_PER_RUN" "${files[@]}" >>"$results"
done

echo "pprof decode: braid vs Go's profile.Parse, best of $ROUNDS alternating rounds"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(bash "$SRC_DIR/scripts/go.sh" env GOVERSION)"
awk '
function kv(k,   i, a) {
	for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] }
	return ""
}
{
	f = kv("file"); p = kv("peer"); m = kv("mb_s") + 0
	if (!(f in order)) { order[f] = ++n; names[n] = f }
	raw[f] = kv("raw_bytes")
	if (p == "go") { gosamples[f] = kv("samples") }
	if (m > best[p, f]) { best[p, f] = m; sps[p, f] = kv("samples_s") }
}
END {
	printf "%-16s %10s %8s %11s %11s %7s %14s %14s\n", "file", "raw_bytes", "samples",
		"braid_MB/s", "go_MB/s", "ratio", "braid_samp/s", "go_samp/s"
	for (i = 1; i <= n; i++) {
		f = names[i]
		# samples/s on the file'"'"'s own sample count for both peers
		bs = best["braid", f] * 1e6 / raw[f] * gosamples[f]
		printf "%-16s %10d %8d %11.2f %11.2f %6.2fx %14.0f %14.0f\n", f, raw[f], gosamples[f],
			best["braid", f], best["go", f], best["braid", f] / best["go", f], bs, sps["go", f]
	}
}' "$results"
