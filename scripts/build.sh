#!/usr/bin/env bash
# Configures and builds braid in BUILD_DIR (default: build/).
#   scripts/build.sh [extra cmake options]
# With CI=true warnings are errors.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$SRC_DIR" -B "$BUILD_DIR" -DBRAID_WERROR="$werror" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" -- --no-print-directory >/dev/null
