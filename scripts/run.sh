#!/usr/bin/env bash
# Installs the dependencies, builds braid and runs it with its defaults.
#   bash scripts/run.sh [braid arguments]
# With no arguments it starts the node agent with its defaults (`braid agent`:
# eBPF sampling, SDK pushes on 127.0.0.1:4040, profiles kept in the store; as
# root). Any arguments go to braid instead, e.g.
#   bash scripts/run.sh agent --upstream http://pyroscope:4040
#   bash scripts/run.sh inspect profile.pb.gz
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
bash "$SRC_DIR/scripts/deps.sh"
BUILD_DIR=$SRC_DIR/build bash "$SRC_DIR/scripts/build.sh"
[ $# -gt 0 ] || set -- agent
exec "$SRC_DIR/build/braid" "$@"
