# The decode benchmark runs end to end (tiny sizes, one round): it must keep
# working, its figures are for bench/pprof.sh, not for a test to judge.
. "$(dirname "$0")/lib.sh"
BENCH_QUICK=1 BENCH_OUT="$TMP" bash "$SRC_DIR/bench/pprof.sh" >"$TMP/bench.txt"
cat "$TMP/bench.txt"
expect_contains "bench table" "$TMP/bench.txt" "cpu.pprof.gz"
expect_contains "bench table" "$TMP/bench.txt" "generated.pb.gz"
grep -Eq 'generated\.pb\.gz +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x' "$TMP/bench.txt" ||
	fail "bench table row for the generated file is malformed"
finish
