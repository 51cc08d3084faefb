# The decode benchmark runs end to end (tiny sizes, one round): it must keep
# working, its figures are for bench/pprof.sh, not for a test to judge.
. "$(dirname "$0")/lib.sh"
BENCH_QUICK=1 BENCH_OUT="$TMP" bash "$SRC_DIR/bench/pprof.sh" >"$TMP/bench.txt"
cat "$TMP/bench.txt"
expect_contains "bench table" "$TMP/bench.txt" "cpu.pprof.gz"
expect_contains "bench table" "$TMP/bench.txt" "generated.pb.gz"
grep -Eq 'generated\.pb\.gz +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x' "$TMP/bench.txt" ||
	fail "bench table row for the generated file is malformed"
# The JFR decode benchmark too, on the real recordings.
BENCH_QUICK=1 BENCH_OUT="$TMP" bash "$SRC_DIR/bench/jfr.sh" >"$TMP/jfr-bench.txt"
cat "$TMP/jfr-bench.txt"
for f in cpu.jfr.gz labels.jfr.gz all-chunks.jfr fixtures-together; do
	grep -Eq "^$f +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x" "$TMP/jfr-bench.txt" ||
		fail "JFR bench table: no well-formed row for $f"
done
# The store benchmark runs end to end (~0.3 s per phase): every figure row is
# well-formed; the figures themselves are for a person to read.
sqlite3 --version 2>/dev/null | sed 's/^/# sqlite3 /' || true
BENCH_QUICK=1 "$BENCH_STORE" --dir "$TMP/store-bench" \
	--fixture "$FIXTURES/node-sdk-0.6.4/req2.pprof.gz" >"$TMP/store-bench.txt" ||
	fail "bench_store exited $?"
cat "$TMP/store-bench.txt"
expect_contains "store bench machine line" "$TMP/store-bench.txt" "# machine: nproc="
for fig in sdk_profiles_per_s sdk_commit_p50_us sdk_commit_p99_us ebpf_rows_per_s \
	ebpf_samples_per_s ebpf_drain_p99_ms; do
	for sync in normal full; do
		grep -Eq "^$fig +sync=$sync +[0-9]+(\.[0-9]+)? +target(>=[0-9]+|=none) +(ok|BELOW|-)\$" \
			"$TMP/store-bench.txt" || fail "store bench row $fig sync=$sync is missing or malformed"
	done
done
if grep -Ev '^(#|figure )' "$TMP/store-bench.txt" |
	grep -Evq '^[a-z0-9_]+ +sync=(normal|full) +[0-9]+(\.[0-9]+)? +target(>=[0-9]+|=none) +(ok|BELOW|-)$'; then
	fail "store bench printed a malformed row"
fi
if [ -n "$(ls -A "$TMP/store-bench" 2>/dev/null)" ]; then
	fail "bench_store left files in $TMP/store-bench"
fi
# The merge benchmark runs end to end (10,000 stacks, one round): every phase
# prints a well-formed row; it exits 1 if a splice loses a sample.
if [ -n "${BENCH_MERGE:-}" ]; then
	BENCH_QUICK=1 "$BENCH_MERGE" >"$TMP/merge-bench.txt" || fail "bench_merge exited $?"
	cat "$TMP/merge-bench.txt"
	for phase in copy splice encode; do
		grep -Eq "^$phase +[0-9.]+ +[0-9]+ +[0-9]+ +(ok|BELOW|-)\$" "$TMP/merge-bench.txt" ||
			fail "merge bench row $phase is missing or malformed"
	done
fi
# The unwind tables' benchmark reads the rules of every executable file the
# processes it can see map: at least its own, each file once, none refused.
if [ -n "${BENCH_UNWIND:-}" ]; then
	"$BENCH_UNWIND" >"$TMP/unwind-bench.txt" || fail "bench_unwind_tables exited $?"
	cat "$TMP/unwind-bench.txt"
	uw() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/unwind-bench.txt"; }
	for k in processes executable_mappings files files_with_rules files_failed rows table_bytes \
		table_mib build_seconds peak_rss_mib; do
		grep -Eq "^$k [0-9]+(\.[0-9]+)?\$" "$TMP/unwind-bench.txt" ||
			fail "unwind bench line $k is missing or malformed"
	done
	[ "$(uw files_with_rules)" -ge 1 ] || fail "unwind bench: no file with rules (its own has some)"
	[ "$(uw files)" -le "$(uw executable_mappings)" ] ||
		fail "unwind bench: more files than executable mappings: a file was read twice"
	# a 32-bit program's files are refused (-ENOTSUP): say so, don't fail
	if [ "$(uw files_failed)" -gt 0 ]; then
		echo "# unwind bench: $(uw files_failed) files refused:"
		"$BENCH_UNWIND" -v 2>&1 >/dev/null | grep -v ' rows ' | sed 's/^/#   /' || true
	fi
fi
# The ingest benchmark runs end to end (2 s, 2 connections) against a real
# braid ingest: the run succeeds and every acknowledged push is in the store;
# the figures are for bench/ingest.sh to show, not for a test to judge.
if [ -n "${BENCH_INGEST:-}" ]; then
	BENCH_DIR="$TMP/ingest-bench" bash "$SRC_DIR/bench/ingest.sh" --quick \
		>"$TMP/ingest-bench.txt" || fail "bench/ingest.sh --quick exited $?"
	cat "$TMP/ingest-bench.txt"
	grep -Eq '^# 2 connection\(s\): ([1-9][0-9]*) answered 200, \1 SDK profiles stored: match$' \
		"$TMP/ingest-bench.txt" || fail "ingest bench: acknowledged and stored counts differ"
	grep -Eq '^2 +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[1-9][0-9]* +[1-9][0-9]* +0  (met|not met)$' \
		"$TMP/ingest-bench.txt" || fail "ingest bench row is missing or malformed"
	if [ -n "$(ls -A "$TMP/ingest-bench" 2>/dev/null)" ]; then
		fail "bench/ingest.sh left files in $TMP/ingest-bench"
	fi
fi
finish
