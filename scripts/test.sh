#!/usr/bin/env bash
# Installs the dependencies, builds braid and runs the whole test suite:
# first the normal build, then the same tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (leaks included), then a smoke run of every
# fuzzer (60 s each, scripts/fuzz.sh). Any failure fails the run.
#   bash scripts/test.sh                # all three
#   bash scripts/test.sh --no-sanitize  # skip the ASan+UBSan build
#   bash scripts/test.sh --no-fuzz      # skip the fuzz smoke run
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
fuzz=1
for arg in "$@"; do
	case "$arg" in
	--no-sanitize) sanitize=0 ;;
	--no-fuzz) fuzz=0 ;;
	*)
		echo "usage: bash scripts/test.sh [--no-sanitize] [--no-fuzz]" >&2
		exit 2
		;;
	esac
done

bash "$SRC_DIR/scripts/deps.sh"
if [ ! -d "$SRC_DIR/../shared/fixtures" ]; then
	echo "braid: ../shared/fixtures not found beside the repository; the tests read real payloads from it" >&2
	exit 1
fi

echo "== build (RelWithDebInfo)"
BUILD_DIR=$SRC_DIR/build bash "$SRC_DIR/scripts/build.sh"
echo "== tests"
(cd "$SRC_DIR/build" && ctest --output-on-failure --timeout 900)

if [ "$sanitize" -eq 1 ]; then
	echo "== build (ASan + UBSan)"
	BUILD_DIR=$SRC_DIR/build-asan bash "$SRC_DIR/scripts/build.sh" -DBRAID_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug
	echo "== tests under ASan + UBSan"
	(cd "$SRC_DIR/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 900)
fi

if [ "$fuzz" -eq 1 ]; then
	echo "== fuzz smoke run (60 s per target)"
	bash "$SRC_DIR/scripts/fuzz.sh" --seconds 60
fi
