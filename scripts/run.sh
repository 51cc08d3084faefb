#!/usr/bin/env bash
# Installs the dependencies, builds braid and runs it with its defaults.
#   bash scripts/run.sh [braid arguments]
# With no arguments braid prints its commands; give any command to run it,
# e.g. bash scripts/run.sh inspect profile.pb.gz
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
bash "$SRC_DIR/scripts/deps.sh"
BUILD_DIR=$SRC_DIR/build bash "$SRC_DIR/scripts/build.sh"
exec "$SRC_DIR/build/braid" "$@"
