#!/usr/bin/env bash
# Speed of `braid ingest`: the Node SDK's push (its exact request path and
# 1.3 KB gzipped pprof body) posted over loopback keep-alive connections by
# bench_ingest_load, one request in flight per connection. The server answers
# 200 only once the profile is committed, so the figures are committed
# requests per second and the latency of each request, send to response.
# Each row gets a fresh server and a fresh store on a real disk (/var/tmp,
# not tmpfs); after it the server is stopped with SIGTERM and the store must
# hold exactly as many SDK profiles as the client got 200s.
#
#   bash bench/ingest.sh                   # from the repo root, after a build
#   CONNECTIONS_LIST="1 2 4 8" SECONDS_PER_RUN=10 bash bench/ingest.sh
#   bash bench/ingest.sh --quick           # 2 s, one row: a smoke test
#
# Environment: BRAID (default build/braid), BENCH_INGEST (default
# build/bench_ingest_load), SECONDS_PER_RUN (or SECONDS; default 10),
# WARMUP (default 1), CONNECTIONS (default 2), CONNECTIONS_LIST (default
# $CONNECTIONS; one row each), SERVER_ARGS (more options for braid ingest,
# e.g. "--threads 4 --sync full"), BENCH_DIR (parent of the stores, default
# /var/tmp), FIXTURES, QUICK=1 or BENCH_QUICK=1 (as --quick).
# A row of more than ~1 minute fills the store's default 1 GiB (~2 KiB a
# push) and gets 429s: give SERVER_ARGS="--store-max-bytes 8G".
# Exits 1 when the server or the client fails, or the store's count differs
# from the client's; never because a target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
BENCH_INGEST=${BENCH_INGEST:-$BUILD_DIR/bench_ingest_load}
# SECONDS is bash's own clock: only a value from the environment counts.
RUN_SECONDS=${SECONDS_PER_RUN:-$(printenv SECONDS || echo 10)}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-2}
CONNECTIONS_LIST=${CONNECTIONS_LIST:-$CONNECTIONS}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
TARGET_REQ_S=5000
TARGET_P99_MS=5

quick=${QUICK:-${BENCH_QUICK:-}}
[ "$quick" = 0 ] && quick=
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bash bench/ingest.sh [--quick]" >&2
		exit 2
		;;
	esac
done
if [ -n "$quick" ]; then
	RUN_SECONDS=2 WARMUP=0.5 CONNECTIONS_LIST=$CONNECTIONS
fi

for tool in "$BRAID" "$BENCH_INGEST"; do
	[ -x "$tool" ] || { echo "no $tool: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench/ingest.sh needs jq (scripts/deps.sh)" >&2; exit 1; }
client_args=()
[ -n "${FIXTURES:-}" ] && client_args+=(--fixtures "$FIXTURES")
read -r -a server_args <<<"${SERVER_ARGS:-}"

mkdir -p "$BENCH_DIR"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench.XXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$RUN"
}
trap cleanup EXIT
fs=$(findmnt -n -o FSTYPE,SOURCE -T "$RUN" 2>/dev/null | tr -s ' ' || echo unknown)
case $fs in
tmpfs* | ramfs*) echo "# warning: $BENCH_DIR is $fs, not a disk: commits cost less than they will" >&2 ;;
esac

# start_server DIR: braid ingest on a free loopback port; sets server_pid and
# port once the listening line is out.
start_server() {
	local dir=$1 i
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir" "${server_args[@]}" \
		2>"$dir.log" &
	server_pid=$!
	port=
	for ((i = 0; i < 200; i++)); do
		port=$(sed -n 's|^braid: ingest: listening on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' \
			"$dir.log" | head -1)
		[ -n "$port" ] && return 0
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid" || true
			server_pid=
			echo "braid ingest exited before listening:" >&2
			cat "$dir.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "braid ingest did not print its address in 10 s:" >&2
	cat "$dir.log" >&2
	return 1
}

# stop_server DIR: SIGTERM, and braid ingest must exit 0.
stop_server() {
	local rc=0
	kill -TERM "$server_pid"
	wait "$server_pid" || rc=$?
	server_pid=
	if [ "$rc" -ne 0 ]; then
		echo "braid ingest exited $rc on SIGTERM:" >&2
		cat "$1.log" >&2
		return 1
	fi
}

status=0
all_met=1
missed=()
rows=()
body_bytes=
for conns in $CONNECTIONS_LIST; do
	dir=$RUN/c$conns
	mkdir "$dir"
	start_server "$dir" || exit 1
	client_rc=0
	"$BENCH_INGEST" --port "$port" --connections "$conns" --seconds "$RUN_SECONDS" \
		--warmup "$WARMUP" --json "${client_args[@]}" >"$dir.json" 2>"$dir.err" || client_rc=$?
	stop_server "$dir" || status=1
	# what the server said besides its start and stop lines
	grep -Ev '^braid: ingest: (listening on|stopping$)' "$dir.log" | sed "s/^/# server: /" >&2 || true
	if [ -s "$dir.err" ]; then
		sed "s/^/# client: /" "$dir.err" >&2
	fi
	if [ "$client_rc" -ne 0 ] || [ ! -s "$dir.json" ]; then
		echo "bench_ingest_load exited $client_rc with $conns connections" >&2
		status=1
		[ -s "$dir.json" ] || continue
	fi
	stored=$("$BRAID" store stats --json --data-dir "$dir" | jq '.tables.sdk_profiles.rows')
	read -r ok rate p50 p99 p999 errs body_bytes <<<"$(jq -r '[.ok, .requests_per_s,
		.latency_ms.p50, .latency_ms.p99, .latency_ms.p999, .not_ok + .unanswered,
		.body_bytes] | map(tostring) | join(" ")' "$dir.json")"
	if [ "$stored" = "$ok" ]; then
		check=match
	else
		check=MISMATCH
		status=1
	fi
	echo "# $conns connection(s): $ok answered 200, $stored SDK profiles stored: $check"
	if awk -v r="$rate" -v p="$p99" -v tr=$TARGET_REQ_S -v tp=$TARGET_P99_MS \
		'BEGIN { exit !(r >= tr && p < tp) }'; then
		met=met
	else
		met="not met"
		all_met=0
		missed+=("$conns")
	fi
	rows+=("$(printf '%-11s %9.0f %8.3f %8.3f %9.3f %9s %9s %6s  %s' "$conns" "$rate" "$p50" \
		"$p99" "$p999" "$ok" "$stored" "$errs" "$met")")
	rm -rf "$dir"
done

echo "braid ingest: the Node SDK push (${body_bytes:-?} bytes) over loopback keep-alive," \
	"${RUN_SECONDS} s per row after ${WARMUP} s warm-up${SERVER_ARGS:+, braid ingest $SERVER_ARGS}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
	"store under $BENCH_DIR ($fs)"
printf '%-11s %9s %8s %8s %9s %9s %9s %6s  %s\n' connections req/s p50_ms p99_ms p99.9_ms \
	200s stored errors target
for r in "${rows[@]}"; do
	echo "$r"
done
if [ "${#rows[@]}" -eq 0 ]; then
	echo "no row: every run failed" >&2
	exit 1
fi
if [ "$all_met" = 1 ]; then
	echo "target ≥ $TARGET_REQ_S req/s, p99 < $TARGET_P99_MS ms: met"
else
	echo "target ≥ $TARGET_REQ_S req/s, p99 < $TARGET_P99_MS ms: not met (at ${missed[*]} connections)"
fi
exit "$status"
