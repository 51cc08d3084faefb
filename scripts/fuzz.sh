#!/usr/bin/env bash
# Builds braid's libFuzzer harnesses (fuzz/) in build-fuzz/ with clang and
# runs each for N seconds, one after the other (see docs/fuzzing.md).
#   bash scripts/fuzz.sh [--seconds N] [TARGET...]     # default: 60 s, every target
# Each target starts from a scratch copy of fuzz/corpus/TARGET (what it finds
# stays in build-fuzz/run/, never in the repository) with fuzz/dict/TARGET.dict.
# A crash, leak, timeout or out-of-memory fails the run; its input is kept in
# build-fuzz/crashes/TARGET/ and its path printed.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=$SRC_DIR/build-fuzz
ALL_TARGETS=(pprof folded name legacy push multipart perfmap kallsyms cfi calls jfr)

usage() {
	echo "usage: bash scripts/fuzz.sh [--seconds N] [TARGET...]" >&2
	echo "targets: ${ALL_TARGETS[*]}" >&2
	exit 2
}

# The largest input libFuzzer makes for each target: room for the seeds and
# for growth, small enough that one input runs in milliseconds.
max_len() {
	case "$1" in
	pprof | legacy | push) echo 65536 ;;
	jfr) echo 131072 ;;
	multipart) echo 32768 ;;
	folded | perfmap | kallsyms | cfi) echo 16384 ;;
	name | calls) echo 4096 ;;
	esac
}

seconds=60
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds)
		[ $# -ge 2 ] || usage
		seconds=$2
		shift 2
		;;
	--seconds=*)
		seconds=${1#--seconds=}
		shift
		;;
	-h | --help) usage ;;
	-*) usage ;;
	*)
		targets+=("${1#fuzz_}")
		shift
		;;
	esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || usage
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
	[ -n "$(max_len "$t")" ] || {
		echo "fuzz: unknown target '$t'" >&2
		usage
	}
done

# clang and libFuzzer's runtime (Debian's libclang-rt-N-dev) come with the
# rest of braid's dependencies
bash "$SRC_DIR/scripts/deps.sh"
CC=${CC:-clang}
command -v "$CC" >/dev/null || {
	echo "fuzz: $CC not found: the harnesses need clang with libFuzzer (Debian: clang)" >&2
	exit 1
}
fuzzer_rt=$("$CC" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a
[ -f "$fuzzer_rt" ] || {
	echo "fuzz: $fuzzer_rt is missing: install libFuzzer's runtime for $CC" \
		"(Debian: libclang-rt-$("$CC" -dumpversion | cut -d. -f1)-dev)" >&2
	exit 1
}

echo "== build ($BUILD_DIR, $CC, BRAID_FUZZ=ON)"
mkdir -p "$BUILD_DIR"
# with CI=true warnings are errors, as in scripts/build.sh (clang warns of
# things gcc does not)
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
if ! { cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DCMAKE_C_COMPILER="$CC" -DBRAID_FUZZ=ON \
	-DBRAID_TESTS=OFF -DBRAID_WERROR="$werror" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$BUILD_DIR" -j "$(nproc)" --target braid_fuzzers -- --no-print-directory; } \
	>"$BUILD_DIR/build.log" 2>&1; then
	cat "$BUILD_DIR/build.log" >&2
	echo "fuzz: the build failed (its log: $BUILD_DIR/build.log)" >&2
	exit 1
fi

# UBSan reports abort (the libraries are built with -fno-sanitize-recover);
# leaks are checked after every input that allocated more than it freed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for t in "${targets[@]}"; do
	bin=$BUILD_DIR/fuzz/fuzz_$t
	run=$BUILD_DIR/run/$t
	crashes=$BUILD_DIR/crashes/$t
	log=$BUILD_DIR/run/$t.log
	dict=$SRC_DIR/fuzz/dict/$t.dict
	rm -rf "$run" "$crashes"
	mkdir -p "$run/corpus" "$crashes"
	cp -R "$SRC_DIR/fuzz/corpus/$t/." "$run/corpus/"
	args=(-max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/")
	[ -f "$dict" ] && args+=(-dict="$dict")
	echo "== fuzz_$t: $seconds s"
	rc=0
	start=$SECONDS
	(cd "$run" && "$bin" "${args[@]}" "$run/corpus") >"$log" 2>&1 || rc=$?
	took=$((SECONDS - start))
	# libFuzzer's final stats (-print_final_stats=1), printed on a crash too
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	execs=${execs:-0}
	per_s=${per_s:-0}
	found=$(find "$crashes" -type f | sort)
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		failed+=("$t")
		echo "fuzz_$t FAILED (exit $rc); its log: $log" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz[_:]|.*runtime error)' "$log" | head -20 >&2 || true
		for f in $found; do
			echo "  input kept: $f (replay: $bin $f)" >&2
		done
		[ -n "$found" ] || echo "  no input was written (a leak at exit?): see the log" >&2
		summary+=("$(printf '%-16s %6s %12s %10s   %s' "fuzz_$t" "$took" "$execs" "$per_s" \
			"FAILED: $(echo "$found" | grep -c . || true) input(s) in $crashes")")
	else
		summary+=("$(printf '%-16s %6s %12s %10s   %s' "fuzz_$t" "$took" "$execs" "$per_s" "0")")
	fi
done

echo
printf '%-16s %6s %12s %10s   %s\n' target seconds executions exec/s crashes
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
	exit 1
fi
