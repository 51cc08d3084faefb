#!/usr/bin/env bash
# How braid agent's cost grows: its CPU a minute and its RSS against the
# number of processes on the host and of SDK apps pushing to it.
#
# Each case runs a fresh `braid agent` (eBPF at 97 Hz, forwarding to the fake
# Pyroscope, tests/e2e/upstream) beside its load for WARM seconds, then
# measures the agent's CPU (utime + stime, and its BPF programs' run time)
# over MEASURE seconds, and its RSS at the end:
#   procs-long N   N long-lived processes (bench_spinner long), together half
#                  a core: each burns 50,000/N us every 100 ms (N = 10, 100,
#                  1,000);
#   procs-short N  N short-lived programs started every 10 s (bench_spinner
#                  short: fork and exec), each living 0.5 s and burning 100
#                  us every 10 ms (N = 10, 100, 1,000: up to 100 new
#                  processes a second);
#   sdk N          N SDK apps, each a long-lived process (bench/peer/pusher.py)
#                  pushing the Node SDK's real push every 10 s under its own
#                  service (N = 1, 10, 50);
#   store H        the store holding H hours (0, 1, 24) as an agent leaves it
#                  (`bench_store --fill`: 10 SDK apps pushing every 10 s, merged
#                  and forwarded, and 100 eBPF bucket rows a second, emitted),
#                  under the sdk case's load of 10 apps; at 24 h, the default
#                  retention, the agent's maintenance deletes as it goes.
# Prints a table, then a line per kind with what the agent's CPU and RSS
# gained per process or per app between the smallest and largest case.
#
#   bash bench/growth.sh            # root, after a build
#   bash bench/growth.sh --quick    # WARM 10, MEASURE 20, the smallest and largest N
#
# Environment: BRAID, BUILD_DIR, WARM (30), MEASURE (60), KINDS (the cases,
# "procs-long procs-short sdk store"). Exits 77 (a skip)
# with the reason without root or kernel BTF.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
export BRAID=${BRAID:-$BUILD_DIR/braid} BUILD_DIR SRC_DIR
export FIXTURES=${FIXTURES:-$SRC_DIR/../shared/fixtures}
WARM=${WARM:-30} MEASURE=${MEASURE:-60} KINDS=${KINDS:-procs-long procs-short sdk store}
PROCS="10 100 1000" APPS="1 10 50" HOURS="0 1 24"
for a in "$@"; do
	case $a in
	--quick) WARM=10 MEASURE=20 PROCS="10 1000" APPS="1 50" HOURS="0 1" ;;
	*)
		echo "usage: bash bench/growth.sh [--quick]" >&2
		exit 2
		;;
	esac
done
export TMPDIR=${BENCH_DIR:-/var/tmp}
. "$SRC_DIR/tests/cli/lib.sh"
. "$SRC_DIR/bench/lib.sh"

require_sampler bench/growth.sh "eBPF sampling"
SPINNER=$BUILD_DIR/bench_spinner
[ -x "$SPINNER" ] || { echo "no $SPINNER: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
[ -x "$BUILD_DIR/bench_store" ] || { echo "no $BUILD_DIR/bench_store: build first" >&2; exit 1; }
PUSH=$FIXTURES/node-sdk-0.6.4/req2.pprof.gz
[ -r "$PUSH" ] || { echo "no $PUSH (../shared/fixtures)" >&2; exit 1; }
LOAD_PIDS=()
growth_cleanup() {
	for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	lib_cleanup
}
trap growth_cleanup EXIT

OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null
start_upstream

# sdk_apps N: N pushers, their pids added to LOAD_PIDS
sdk_apps() {
	local i
	for ((i = 0; i < $1; i++)); do
		python3 "$SRC_DIR/bench/peer/pusher.py" "$AGENT_URL" "growth-app-$i" 10 "$PUSH" \
			>>"$TMP/load.out" 2>&1 &
		LOAD_PIDS+=($!)
	done
}

# measure KIND N: starts the agent and the load, prints one row
measure() {
	local kind=$1 n=$2 c0 b0 c1 b1 rss
	if [ "$kind" = store ] && [ "$n" != 0 ]; then
		"$BUILD_DIR/bench_store" --fill "$TMP/data-$kind-$n" --hours "$n" --fixture "$PUSH"
	fi
	start_agent "$TMP/data-$kind-$n" --upstream "$UPSTREAM_URL"
	case $kind in
	procs-long)
		"$SPINNER" long "$n" $((50000 / n)) 100 >"$TMP/load.out" 2>&1 &
		LOAD_PIDS=($!)
		;;
	procs-short)
		"$SPINNER" short "$n" 100 500 >"$TMP/load.out" 2>&1 &
		LOAD_PIDS=($!)
		;;
	sdk)
		LOAD_PIDS=()
		sdk_apps "$n"
		;;
	store)
		LOAD_PIDS=()
		sdk_apps 10
		;;
	esac
	sleep "$WARM"
	c0=$(cpu_ms "$AGENT_PID") b0=$(($(bpf_ns "$AGENT_PID") / 1000000))
	sleep "$MEASURE"
	c1=$(cpu_ms "$AGENT_PID") b1=$(($(bpf_ns "$AGENT_PID") / 1000000))
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status")
	for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	LOAD_PIDS=()
	if grep -q "^growth-app-.*: " "$TMP/load.out" 2>/dev/null; then
		echo "FAIL: pushes not answered 200: $(grep -c . "$TMP/load.out") (first: $(head -1 "$TMP/load.out"))" >&2
		exit 1
	fi
	: >"$TMP/load.out"
	stop_agent
	rm -rf "$TMP/data-$kind-$n"
	awk -v k="$kind" -v n="$n" -v c="$((c1 - c0))" -v b="$((b1 - b0))" -v m="$MEASURE" -v r="$rss" \
		'BEGIN { printf "%-12s %6d %12.2f %12.2f %10.1f\n", k, n, c * 60 / m / 1000, b * 60 / m / 1000, r / 1024 }' |
		tee -a "$TMP/rows"
}

printf '%-12s %6s %12s %12s %10s\n' case n cpu_s_a_min bpf_s_a_min rss_mib
: >"$TMP/rows"
for kind in $KINDS; do
	case $kind in
	procs-long | procs-short) for n in $PROCS; do measure "$kind" "$n"; done ;;
	sdk) for n in $APPS; do measure sdk "$n"; done ;;
	store) for n in $HOURS; do measure store "$n"; done ;;
	*) echo "unknown case $kind (procs-long, procs-short, sdk, store)" >&2; exit 2 ;;
	esac
done
sysctl -q -w kernel.bpf_stats_enabled="$OLD_BPF_STATS" >/dev/null || true

# the growth per process (per app, per hour of store) between the smallest and the largest case
awk '{ k = $1; if (!(k in n0)) { n0[k] = $2; c0[k] = $3; r0[k] = $5 } n1[k] = $2; c1[k] = $3; r1[k] = $5 }
	END { for (k in n0) if (n1[k] > n0[k])
		printf "# %s: %d -> %d: CPU %+.3f s a minute per %s more, RSS %+.2f MiB per %s more\n",
			k, n0[k], n1[k], (c1[k] - c0[k]) * u(k) / (n1[k] - n0[k]), w(k),
			(r1[k] - r0[k]) * u(k) / (n1[k] - n0[k]), w(k) }
	function u(k) { return k == "store" ? 1 : 100 }
	function w(k) { return k == "store" ? "hour" : "100" }' \
	"$TMP/rows" | sort
