#!/usr/bin/env bash
# Runs Grafana Pyroscope (v2, single binary) in the foreground on this machine
# only, for trying braid with a real Pyroscope and for the tests that read
# back what braid delivered:
#   bash scripts/pyroscope.sh PORT DIR [extra pyroscope flags...]
# - HTTP (ingest, query API, /ready) on 127.0.0.1:PORT; its gRPC, gossip and
#   raft ports on free loopback ports; nothing listens on another address;
# - every file under DIR (filesystem storage, the metastore's raft log);
# - usage statistics, self-profiling, tracing and debuginfod lookups off:
#   nothing is sent off the machine.
# The binary is $PYROSCOPE_BIN, else `pyroscope` on PATH: Grafana's release
# (its archive or .deb) or a build of github.com/grafana/pyroscope's
# cmd/pyroscope, v2.0 or later. braid does not build or download it.
# `GET http://127.0.0.1:PORT/ready` answers 200 once it takes profiles.
set -euo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
	echo "usage: bash scripts/pyroscope.sh PORT DIR [pyroscope flags...]" >&2
	exit 2
fi
port=$1
dir=$2
shift 2

bin=${PYROSCOPE_BIN:-$(command -v pyroscope || true)}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "braid: no Grafana Pyroscope binary: set PYROSCOPE_BIN to one (v2.0 or later), or put pyroscope on PATH" >&2
	exit 1
fi
version=$("$bin" -version 2>/dev/null | sed -n 's/^pyroscope, version v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -1)
if [ -z "$version" ]; then
	echo "braid: $bin does not say it is Grafana Pyroscope (pyroscope -version)" >&2
	exit 1
fi
if [ "${version%%.*}" -lt 2 ]; then
	echo "braid: $bin is Pyroscope $version; scripts/pyroscope.sh runs v2.0 or later" >&2
	exit 1
fi

mkdir -p "$dir/tmp"
dir=$(cd "$dir" && pwd)

# free_port: a loopback TCP port nobody listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc=$(free_port)
gossip=$(free_port)
raft=$(free_port)

# Relative paths that a default still names land in DIR.
cd "$dir"
exec "$bin" \
	-target=all -architecture.storage=v2 \
	-server.http-listen-address=127.0.0.1 -server.http-listen-port="$port" \
	-server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$grpc" \
	-memberlist.bind-addr=127.0.0.1 -memberlist.bind-port="$gossip" \
	-memberlist.advertise-addr=127.0.0.1 -memberlist.advertise-port="$gossip" \
	-metastore.address="127.0.0.1:$grpc" \
	-query-backend.address="127.0.0.1:$grpc" \
	-metastore.raft.bind-address="127.0.0.1:$raft" \
	-metastore.raft.advertise-address="127.0.0.1:$raft" \
	-metastore.raft.server-id="127.0.0.1:$raft" \
	-metastore.raft.dir="$dir/metastore/raft" \
	-metastore.raft.snapshots-dir="$dir/metastore/raft" \
	-metastore.data-dir="$dir/metastore/data" \
	-storage.backend=filesystem -storage.filesystem.dir="$dir/shared" \
	-segment-writer.lifecycler.addr=127.0.0.1 \
	-distributor.ring.instance-addr=127.0.0.1 \
	-overrides-exporter.ring.instance-addr=127.0.0.1 \
	-query-frontend.instance-addr=127.0.0.1 \
	-compaction-worker.temp-dir="$dir/tmp" \
	-usage-stats.enabled=false \
	-self-profiling.disable-push=true \
	-tracing.enabled=false \
	-symbolizer.debuginfod-url=http://127.0.0.1:1 \
	-config.show_banner=false \
	-segment-writer.min-ready-duration=0s -metastore.min-ready-duration=0s \
	"$@"
