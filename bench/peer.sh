#!/usr/bin/env bash
# braid beside the profiler users would otherwise pick: the OpenTelemetry eBPF
# profiler (go.opentelemetry.io/ebpf-profiler, pinned in bench/peer/go.mod;
# the engine of Grafana Alloy's pyroscope.ebpf and of Parca Agent), both
# sending to the same real Grafana Pyroscope. docs/peer.md says what it takes
# to run the peer here and what was found.
#
# The cost. The same fixed workloads under four set-ups, at 19 Hz and 97 Hz:
#   none   no profiler;
#   braid  `braid agent --freq HZ --upstream PYROSCOPE`;
#   otel   the OTel profiler, -samples-per-second HZ, OTLP to Pyroscope;
#   both   the two at once.
# The workloads: the example Node app (examples/node-app, the real
# @pyroscope/nodejs SDK, 100 requests/s), the Python app (tests/e2e/python,
# the real pyroscope-io SDK, MODE=mixed: one busy thread), a C program built
# without frame pointers (cfi_chain), and 200 idle processes. The SDKs push
# to braid when braid runs, else straight to Pyroscope, as they would.
# A round: the set-up's agents start, then the apps; after WARMUP seconds the
# window opens, cfi_chain runs RUNS times its fixed work (10,000,000
# iterations), and the window closes. Rounds alternate the set-ups (their
# order turns each round) and repeat ROUNDS times; each figure is the median
# over rounds. Per agent, over the window:
#   cpu_ms       its process's CPU (utime + stime of every thread);
#   bpf_ms       its BPF programs' run time (run_time_ns of the programs it
#                holds, kernel.bpf_stats_enabled set to 1 for the run);
#   rss_kib      its RSS at the window's end;
#   maps_kib     the kernel memory of the BPF maps it holds (memlock);
#   memory_kib   rss + maps, less the maps' pages it has mapped (counted in
#                both: braid's ring buffer);
#   samples      what it delivered over its life in the round (start to
#                stop): Pyroscope's process_cpu total (braid: braid_view
#                merged and ebpf; the peer: __otel__) at the period of HZ;
#   samples_per_cpu_s  those samples / its CPU over its life (process and
#                BPF programs), start-up included.
# Per workload: cfi_chain's wall time (slowdown: against the median of the
# rounds without a profiler), and the CPU the two apps used in the window.
# With "both", each agent's own figures are still its own.
#
# What each sees. One more round, both agents at 97 Hz for SEEN seconds, node
# under --perf-basic-prof, with the truths recorded beside them: `perf record
# -g` of node (frame pointers; its JIT frames named from /tmp/perf-PID.map)
# and `py-spy record --native` of python. From Pyroscope, over the window:
# braid's merged series of each app (by service_name) and the OTel
# profiler's series of each executable (it unwinds V8 and CPython in the
# kernel). bench/peer/seen.py gives per source the CPU shares of the apps'
# functions, the TVD of each against its truth, the share of stacks that
# reach the thread root and the share of frames named.
#
#   PYROSCOPE_BIN=/path/to/pyroscope bash bench/peer.sh           # root, after a build
#   PYROSCOPE_BIN=... bash bench/peer.sh --quick    # one round, 19 Hz, 2 runs
#   PYROSCOPE_BIN=... bash bench/peer.sh --json     # the figures as JSON on stdout
#
# Environment: BRAID, BUILD_DIR, ROUNDS (3), RUNS (8), WARMUP (10), RATES
# ("19 97"), SEEN (60: seconds of the "what each sees" round; 0 skips it),
# OUT (where the rounds' figures and the folded stacks are kept; default
# /var/tmp/braid-peer-DATE), PEER (a built OTel profiler; else built once into
# ~/.cache/braid/peer/). Exits 77 (a skip) with the reason without root,
# kernel BTF or a Pyroscope binary.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
export BRAID=${BRAID:-$BUILD_DIR/braid} BUILD_DIR SRC_DIR
export FIXTURES=${FIXTURES:-$SRC_DIR/../shared/fixtures}
OUT=${OUT:-${BENCH_DIR:-/var/tmp}/braid-peer-$(date +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3} RUNS=${RUNS:-8} WARMUP=${WARMUP:-10} RATES=${RATES:-19 97}
JSON=
for a in "$@"; do
	case $a in
	--quick) ROUNDS=1 RUNS=2 RATES=19 ;;
	--json) JSON=1 ;;
	*)
		echo "usage: bash bench/peer.sh [--quick] [--json]" >&2
		exit 2
		;;
	esac
done
export TMPDIR=${BENCH_DIR:-/var/tmp}
. "$SRC_DIR/tests/cli/lib.sh"
. "$SRC_DIR/bench/lib.sh"

require_sampler bench/peer.sh "eBPF, for braid and for the OTel profiler"
require_pyroscope
NO_MEMLOCK=$BUILD_DIR/bench_no_memlock
CFI_CHAIN=$BUILD_DIR/tests/workloads/cfi_chain
for f in "$NO_MEMLOCK" "$CFI_CHAIN"; do
	[ -x "$f" ] || { echo "no $f: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
done
for t in jq curl node; do
	command -v "$t" >/dev/null || { echo "bench/peer.sh needs $t (scripts/deps.sh)" >&2; exit 1; }
done

# the peer, built once per bench/peer/go.sum
PEER_VERSION=$(awk '$1 == "go.opentelemetry.io/ebpf-profiler" { print $2 }' "$SRC_DIR/bench/peer/go.mod")
if [ -z "${PEER:-}" ]; then
	PEER=${XDG_CACHE_HOME:-$HOME/.cache}/braid/peer/ebpf-profiler-$PEER_VERSION-$(sha256sum "$SRC_DIR/bench/peer/go.sum" | cut -c1-12)
	if [ ! -x "$PEER" ]; then
		mkdir -p "$(dirname "$PEER")"
		echo "# building the OTel eBPF profiler $PEER_VERSION (a few minutes the first time)" >&2
		bash "$SRC_DIR/scripts/go.sh" -C "$SRC_DIR/bench/peer" build -o "$PEER.tmp" \
			go.opentelemetry.io/ebpf-profiler >"$TMP/peer-build.log" 2>&1 || {
			echo "building the OTel eBPF profiler failed:" >&2
			tail -20 "$TMP/peer-build.log" >&2
			exit 1
		}
		mv "$PEER.tmp" "$PEER"
	fi
fi

# its scheduler monitor attaches through tracefs (docs/peer.md)
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing || {
		echo "bench/peer.sh: tracefs is not mounted and mounting it failed: the OTel profiler needs it" >&2
		exit 1
	}
	echo "# mounted tracefs on /sys/kernel/tracing (the OTel profiler's scheduler monitor needs it)" >&2
fi

OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
IDLE_PIDS=() APP_PIDS=() PEER_PID=
bench_cleanup() {
	[ -z "$PEER_PID" ] || kill -KILL "$PEER_PID" 2>/dev/null || true
	for p in "${APP_PIDS[@]}" "${IDLE_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	sysctl -q -w kernel.bpf_stats_enabled="$OLD_BPF_STATS" >/dev/null 2>&1 || true
	lib_cleanup
}
trap bench_cleanup EXIT
sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null

npm_modules
# the Python app's venv: the SDK and py-spy (bench/python_accuracy.sh's pins)
SDK_REQ=$SRC_DIR/tests/e2e/python/requirements.txt SPY_REQ=$SRC_DIR/bench/python/requirements.txt
PY_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/braid/peer/python-$(cat "$SDK_REQ" "$SPY_REQ" | sha256sum | cut -c1-16)
PY_SDK=$PY_DIR/venv/bin/python PY_SPY=$PY_DIR/venv/bin/py-spy
if [ ! -x "$PY_SPY" ] || ! "$PY_SDK" -c 'import pyroscope' 2>/dev/null; then
	rm -rf "$PY_DIR"
	mkdir -p "$PY_DIR"
	python3.11 -m venv "$PY_DIR/venv" >"$TMP/venv.log" 2>&1 &&
		"$PY_DIR/venv/bin/pip" install --quiet --require-hashes --no-deps --cache-dir "$PY_DIR/pip" \
			-r "$SDK_REQ" -r "$SPY_REQ" >>"$TMP/venv.log" 2>&1 || {
		echo "installing the Python SDK and py-spy into $PY_DIR failed:" >&2
		tail -20 "$TMP/venv.log" >&2
		exit 1
	}
fi
start_pyroscope "$TMP/pyroscope"
PYRO_ADDR=${PYRO_URL#http://}

# ---- what a process costs ----------------------------------------------------------

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# mapped_maps_kib PID: the resident pages of the BPF maps PID maps into its
# memory (a ring buffer, mmapable arrays): RSS counts them, and so does the
# maps' memlock
mapped_maps_kib() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 == "anon_inode:bpf-map") } m && /^Rss:/ { t += $2 }
		END { print t + 0 }' "/proc/$1/smaps"
}

# ---- the set-ups ---------------------------------------------------------------------

start_peer() {
	PEER_LOG=$TMP/peer-$1.log
	"$NO_MEMLOCK" "$PEER" -collection-agent "$PYRO_ADDR" -disable-tls -samples-per-second "$2" \
		-reporter-interval 5s >"$PEER_LOG" 2>&1 &
	PEER_PID=$!
	for _ in $(seq 1 600); do
		grep -q "Attached sched monitor" "$PEER_LOG" && return 0
		kill -0 "$PEER_PID" 2>/dev/null || {
			echo "the OTel profiler exited at start:" >&2
			tail -20 "$PEER_LOG" >&2
			exit 1
		}
		sleep 0.1
	done
	echo "the OTel profiler did not attach within 60 s:" >&2
	tail -20 "$PEER_LOG" >&2
	exit 1
}

stop_peer() {
	[ -n "$PEER_PID" ] || return 0
	stop_pid "$PEER_PID" 15
	PEER_PID=
}

# start_apps TARGET [NODE_FLAGS...]: the Node and Python apps, their SDKs
# pushing to TARGET; APP_PIDS=(node python)
start_apps() {
	local target=$1
	shift
	# from $TMP: what node writes to its working directory stays there
	(cd "$TMP" && exec env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$target" \
		PYROSCOPE_APPLICATION_NAME=peer-node PORT=0 LOAD=100 FLUSH_INTERVAL_MS=10000 \
		node "$@" "$SRC_DIR/examples/node-app/app.js") >"$TMP/node.out" 2>&1 &
	APP_PIDS=($!)
	env PYROSCOPE_SERVER_ADDRESS="$target" PYROSCOPE_APPLICATION_NAME=peer-python MODE=mixed \
		RUN_SECONDS=3600 UPLOAD_INTERVAL=10 "$PY_SDK" "$SRC_DIR/tests/e2e/python/app.py" \
		>"$TMP/python.out" 2>&1 &
	APP_PIDS+=($!)
}

stop_apps() {
	for p in "${APP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${APP_PIDS[@]}"; do stop_pid "$p" 5; done
	APP_PIDS=()
}

# the 200 idle processes, for the whole run
for _ in $(seq 1 200); do
	sleep 86400 &
	IDLE_PIDS+=($!)
	disown $! # killed at the end without a word from bash
done

# round SETUP HZ N: one round; appends a line of figures to $TMP/rows
round() {
	local setup=$1 hz=$2 n=$3 target=$PYRO_URL braid_pid="" peer_pid="" t0 t1 w0 w1 i l0 l1
	local -A c0=() c1=() b0=() b1=()
	l0=$(date +%s%3N)
	case $setup in braid | both)
		start_agent "$TMP/data-$n" --freq "$hz" --upstream "$PYRO_URL" --grace 20s \
			--collect-interval 5s
		braid_pid=$AGENT_PID target=$AGENT_URL
		;;
	esac
	case $setup in otel | both)
		start_peer "$n" "$hz"
		peer_pid=$PEER_PID
		;;
	esac
	start_apps "$target"
	sleep "$WARMUP"
	for p in $braid_pid $peer_pid "${APP_PIDS[@]}"; do c0[$p]=$(cpu_ms "$p") b0[$p]=$(bpf_ns "$p"); done
	t0=$(date +%s%3N)
	w0=$(date +%s%N)
	for ((i = 0; i < RUNS; i++)); do "$CFI_CHAIN" 10000000 >/dev/null; done
	w1=$(date +%s%N)
	t1=$(date +%s%3N)
	for p in $braid_pid $peer_pid "${APP_PIDS[@]}"; do c1[$p]=$(cpu_ms "$p") b1[$p]=$(bpf_ns "$p"); done
	local line="$setup $hz $n $t0 $t1 $(((w1 - w0) / 1000000))"
	line+=" $((c1[${APP_PIDS[0]}] - c0[${APP_PIDS[0]}])) $((c1[${APP_PIDS[1]}] - c0[${APP_PIDS[1]}]))"
	stop_apps
	# each agent's figures: over the window, then over its life (for the
	# samples it delivered, which Pyroscope dates by their profiles)
	for p in "$braid_pid" "$peer_pid"; do
		if [ -n "$p" ]; then
			line+=" $((c1[$p] - c0[$p])) $(((b1[$p] - b0[$p]) / 1000000)) $(rss_kib "$p") $(maps_kib "$p") $(mapped_maps_kib "$p")"
			line+=" $(cpu_ms "$p") $(($(bpf_ns "$p") / 1000000))"
		else
			line+=" - - - - - - -"
		fi
	done
	[ -z "$peer_pid" ] || stop_peer
	[ -z "$braid_pid" ] || stop_agent
	l1=$(date +%s%3N)
	echo "$line $l0 $l1" >>"$TMP/rows"
	echo "# round $n: $line $l0 $l1" >&2
	sleep 3 # apart from the next round's profiles in Pyroscope
}

# ---- the rounds ----------------------------------------------------------------------

SETUPS=(none braid otel both)
: >"$TMP/rows"
n=0
for hz in $RATES; do
	for ((r = 0; r < ROUNDS; r++)); do
		for ((k = 0; k < ${#SETUPS[@]}; k++)); do
			n=$((n + 1))
			round "${SETUPS[$(((k + r) % ${#SETUPS[@]}))]}" "$hz" "$n"
		done
	done
done

# ---- what each delivered, read back from Pyroscope -------------------------------------

sleep 5
# delivered SELECTOR T0 T1 HZ: Pyroscope's process_cpu total under SELECTOR
# over [T0, T1] (ms), in samples at HZ
delivered() {
	local ns
	ns=$(pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"$1\",\"start\":$2,\"end\":$3}" |
		jq -r '[.sample[]?.value[0] | tonumber] | add // 0')
	awk -v ns="$ns" -v hz="$4" 'BEGIN { printf "%.0f\n", ns * hz / 1e9 }'
}
: >"$TMP/rows2"
while read -r -a f; do
	setup=${f[0]} hz=${f[1]} l0=${f[-2]} l1=${f[-1]} bs=- os=-
	case $setup in braid | both) bs=$(delivered '{braid_view=~\"merged|ebpf\"}' "$l0" "$l1" "$hz") ;; esac
	case $setup in otel | both) os=$(delivered '{__otel__=\"true\"}' "$l0" "$l1" "$hz") ;; esac
	echo "${f[*]} $bs $os" >>"$TMP/rows2"
done <"$TMP/rows"

# ---- what each sees ------------------------------------------------------------------
# Both agents at 97 Hz, the apps as above but node under --perf-basic-prof,
# for SEEN seconds, with the truths beside them: perf record -g on node (its
# JIT frames named from /tmp/perf-PID.map) and py-spy record --native on
# python. Then the window's series from Pyroscope: braid's merged ones (by
# service) and the OTel profiler's (by executable).

seen() {
	local t0 t1 node py spy_rc=0 perf_rc=0
	start_agent "$TMP/data-seen" --freq 97 --upstream "$PYRO_URL" --grace 20s --collect-interval 5s
	start_peer seen 97
	start_apps "$AGENT_URL" --perf-basic-prof --interpreted-frames-native-stack
	node=${APP_PIDS[0]} py=${APP_PIDS[1]}
	sleep "$WARMUP"
	t0=$(date +%s%3N)
	perf record -q -F 97 -g -p "$node" -o "$TMP/node.perf" -- sleep "$SEEN" >"$TMP/perf.log" 2>&1 &
	local perf_pid=$!
	"$PY_SPY" record --native -r 97 -p "$py" -d "$SEEN" --format raw -o "$TMP/python.truth" \
		>"$TMP/py-spy.log" 2>&1 || spy_rc=$?
	wait "$perf_pid" || perf_rc=$?
	t1=$(date +%s%3N)
	stop_apps
	sleep 6 # the OTel profiler reports every 5 s
	stop_peer
	stop_agent
	[ "$perf_rc" = 0 ] || { echo "perf record failed: $(tail -5 "$TMP/perf.log")" >&2; exit 1; }
	[ "$spy_rc" = 0 ] || { echo "py-spy failed: $(tail -5 "$TMP/py-spy.log")" >&2; exit 1; }
	perf script -i "$TMP/node.perf" -F ip,sym,dso 2>/dev/null >"$TMP/node.script"
	# V8 reuses code addresses: its perf map's last entry for an address wins
	python3 "$SRC_DIR/bench/peer/seen.py" fold-perf "$TMP/node.script" "/tmp/perf-$node.map" \
		>"$TMP/node.truth"
	rm -f "/tmp/perf-$node.map"
	# an app that barely ran (it happens: node once served nothing for the
	# whole window) voids the round rather than giving shares of nothing
	local app n
	for app in node python; do
		n=$(awk '{ s += $NF } END { print s + 0 }' "$TMP/$app.truth")
		if [ "$n" -lt $((SEEN * 97 / 4)) ]; then
			echo "bench/peer.sh: the $app app barely ran: $n samples in its truth over $SEEN s (see $app.out in $OUT); run again" >&2
			mkdir -p "$OUT" && cp "$TMP/$app.out" "$OUT/" 2>/dev/null || true
			exit 1
		fi
	done
	sleep 5
	# the OTel profiler's series is the whole host's (docs/peer.md: Pyroscope
	# keeps none of its process attributes): each app's stacks are those that
	# run through the app's program or its libpython
	local sel files
	sel='{__otel__=\"true\"}'
	pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"$sel\",\"start\":$t0,\"end\":$t1}" >"$TMP/otel.json"
	for app in node python; do
		sel="{service_name=\\\"peer-$app\\\",braid_view=\\\"merged\\\"}"
		pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"$sel\",\"start\":$t0,\"end\":$t1}" >"$TMP/$app.braid.json"
		python3 "$SRC_DIR/bench/peer/seen.py" fold-pprof "$TMP/$app.braid.json" >"$TMP/$app.braid"
		case $app in
		node) files=node ;;
		python) files="python3.11 libpython3.11.so.1.0" ;;
		esac
		# shellcheck disable=SC2086 # the file names, one word each
		python3 "$SRC_DIR/bench/peer/seen.py" fold-pprof "$TMP/otel.json" $files >"$TMP/$app.otel"
		python3 "$SRC_DIR/bench/peer/seen.py" "$app" "$TMP/$app.truth" "$TMP/$app.braid" \
			"$TMP/$app.otel" ${JSON:+--json} >"$TMP/seen-$app.out"
	done
}
SEEN=${SEEN:-60}
[ "$SEEN" = 0 ] || seen

# ---- the tables ----------------------------------------------------------------------

# what the figures came from, kept: the rounds' lines and each source's
# folded stacks
mkdir -p "$OUT"
cp "$TMP/rows2" "$OUT/rounds.txt"
for f in "$TMP"/node.* "$TMP"/python.* "$TMP"/seen-*.out "$TMP"/peer-*.log; do
	case $f in *.perf | *.json) ;; *) [ ! -f "$f" ] || cp "$f" "$OUT/" ;; esac
done
echo "# the rounds and the folded stacks are in $OUT" >&2

if [ -n "$JSON" ]; then
	jq -n --argjson cost "$(python3 "$SRC_DIR/bench/peer/cost.py" "$TMP/rows2" --json)" \
		--slurpfile seen <(cat "$TMP"/seen-*.out 2>/dev/null) '{cost: $cost, seen: $seen}'
else
	python3 "$SRC_DIR/bench/peer/cost.py" "$TMP/rows2"
	cat "$TMP"/seen-*.out 2>/dev/null || true
fi
