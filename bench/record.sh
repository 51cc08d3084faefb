#!/usr/bin/env bash
# What `braid record` costs the machine it profiles, next to `perf record`:
# a fixed CPU-bound job (tests/workloads/cpu_split --units N, sized to take
# ~5 s alone) is timed with no profiler, under `braid record --freq 97` of
# every CPU, and under `perf record -F 97 -a -g`, the three alternating, for
# ROUNDS rounds; the figures are medians. For each profiler: the job's
# slowdown (wall time, and its own CPU time, which includes the sampling
# interrupts and the eBPF program run on its CPU); the profiler's own CPU
# while it samples (its threads' run time, from schedstat, over the job's
# run, in % of one core); its peak RSS and CPU over its whole life (GNU
# time's %M, %U + %S: start-up and the final write included).
# Each profiler is started first and the job only once it has a perf event
# open on every CPU (then 0.5 s more), so start-up is not in the slowdown.
#
#   bash bench/record.sh            # from the repo root, after a build; as root
#   bash bench/record.sh --quick    # one round of ~1.5 s: a smoke test
#   bash bench/record.sh --json     # the figures as JSON on stdout, no table
#
# Environment: BRAID (default build/braid), WORKLOAD_CPU_SPLIT (default
# build/tests/workloads/cpu_split, else built here with the same flags),
# ROUNDS (default 5), WORK_SECONDS (default 5), UNITS (the job's size;
# default: calibrated to WORK_SECONDS), FREQ (default 97), BENCH_DIR (where
# the profiles go, default /var/tmp), QUICK=1 or BENCH_QUICK=1 (as --quick).
# Targets: braid's CPU <= 0.5 % of one core, braid's slowdown < perf's, its
# peak RSS <= 40 MiB. Exits 77 when not root or without kernel BTF, 1 when a
# profiler fails (non-zero exit, no samples); never because a target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
ROUNDS=${ROUNDS:-5}
WORK_SECONDS=${WORK_SECONDS:-5}
FREQ=${FREQ:-97}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
TARGET_CPU_PCT=0.5
TARGET_RSS_MIB=40

quick=${QUICK:-${BENCH_QUICK:-}}
[ "$quick" = 0 ] && quick=
json=
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	--json) json=1 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bash bench/record.sh [--quick] [--json]" >&2
		exit 2
		;;
	esac
done
if [ -n "$quick" ]; then
	ROUNDS=1 WORK_SECONDS=1.5
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "skip: bench/record.sh needs root (braid record and perf record -a sample every CPU)" >&2
	exit 77
fi
if [ ! -r /sys/kernel/btf/vmlinux ]; then
	echo "skip: no kernel BTF (/sys/kernel/btf/vmlinux): braid record cannot run here" >&2
	exit 77
fi
[ -x "$BRAID" ] || { echo "no $BRAID: build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
for tool in perf jq /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench/record.sh needs $tool (scripts/deps.sh)" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench-record.XXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT

WORKLOAD=${WORKLOAD_CPU_SPLIT:-$BUILD_DIR/tests/workloads/cpu_split}
if [ ! -x "$WORKLOAD" ]; then
	# the flags of tests/workloads/CMakeLists.txt
	WORKLOAD=$RUN/cpu_split
	"${CC:-cc}" -O2 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-inline \
		-o "$WORKLOAD" "$SRC_DIR/tests/workloads/cpu_split.c"
fi

# run_job: runs the job once; prints "WALL_S CPU_S" (its own measure)
run_job() {
	local out
	out=$("$WORKLOAD" --units "$UNITS") || { echo "cpu_split failed" >&2; return 1; }
	echo "$out" | sed -n 's/^done units=[0-9]* elapsed_s=\([0-9.]*\) cpu_s=\([0-9.]*\)$/\1 \2/p'
}

if [ -z "${UNITS:-}" ]; then
	rate=$("$WORKLOAD" --seconds 1 | sed -n 's/^done units=\([0-9]*\) elapsed_s=\([0-9.]*\) .*/\1 \2/p' |
		awk '{ printf "%d", $1 / $2 }')
	UNITS=$(awk -v r="$rate" -v s="$WORK_SECONDS" 'BEGIN { u = int(r * s / 10) * 10; print (u < 10 ? 10 : u) }')
fi

# cpu_ns PID: the run time of all PID's threads, in ns
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# perf_fds PID: how many perf events PID holds open
perf_fds() {
	local n=0 fd
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:[perf_event]" ] && n=$((n + 1))
	done
	echo "$n"
}

now_ns() {
	date +%s%N
}

# run_profiled MODE ROUND COMMAND...: starts the profiler under GNU time,
# waits for it to sample, runs the job, reads the profiler's CPU and RSS,
# stops it with SIGINT. Appends "WALL CPU PROF_CPU_PCT RSS_KIB LIFE_CPU_S
# SAMPLES" to $RUN/MODE.rows.
run_profiled() {
	local mode=$1 round=$2 tpid ppid="" i job c0 c1 t0 t1 rc=0 hwm life rss samples
	shift 2
	/usr/bin/time -f '%e %U %S %M' -o "$RUN/$mode.time" "$@" 2>"$RUN/$mode.err" &
	tpid=$!
	PIDS+=("$tpid")
	for ((i = 0; i < 400; i++)); do
		ppid=$(awk '{ print $1 }' /proc/"$tpid"/task/"$tpid"/children 2>/dev/null || true)
		if [ -n "$ppid" ] && [ "$(perf_fds "$ppid")" -ge "$(nproc)" ]; then
			break
		fi
		if ! kill -0 "$tpid" 2>/dev/null; then
			echo "$mode exited at start: $(cat "$RUN/$mode.err")" >&2
			return 1
		fi
		sleep 0.05
	done
	if [ -z "$ppid" ] || [ "$(perf_fds "$ppid")" -lt "$(nproc)" ]; then
		echo "# $mode: no perf event on every CPU after 20 s: timing it anyway" >&2
	fi
	sleep 0.5
	c0=$(cpu_ns "$ppid")
	t0=$(now_ns)
	job=$(run_job)
	t1=$(now_ns)
	c1=$(cpu_ns "$ppid")
	hwm=$(sed -n 's/^VmHWM: *\([0-9]*\) kB$/\1/p' /proc/"$ppid"/status 2>/dev/null || true)
	kill -INT "$ppid"
	wait "$tpid" || rc=$?
	# perf record ends itself with the signal it got: 128 + 2 is its success
	if [ "$rc" -ne 0 ] && ! { [ "$mode" = perf ] && [ "$rc" -eq 130 ]; }; then
		echo "$mode exited $rc after SIGINT (round $round): $(cat "$RUN/$mode.err")" >&2
		return 1
	fi
	# the last line: GNU time puts "Command exited with ..." before it
	read -r _ ut st rss <<<"$(tail -1 "$RUN/$mode.time")"
	life=$(awk -v u="$ut" -v s="$st" 'BEGIN { printf "%.2f", u + s }')
	if [ -n "$hwm" ] && [ "$hwm" -gt "$rss" ]; then
		rss=$hwm
	fi
	case $mode in
	braid) samples=$(sed -n 's/.*[^0-9]\([0-9][0-9]*\) samples.*wrote.*/\1/p' "$RUN/$mode.err" | tail -1) ;;
	perf) samples=$(sed -n 's/.*(\([0-9][0-9]*\) samples).*/\1/p' "$RUN/$mode.err" | tail -1) ;;
	esac
	if [ -z "$samples" ] || [ "$samples" -eq 0 ]; then
		echo "$mode: no samples (round $round): $(cat "$RUN/$mode.err")" >&2
		return 1
	fi
	echo "$job $(awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.4f", 100 * (c1 - c0) / (t1 - t0) }') $rss $life $samples" >>"$RUN/$mode.rows"
}

run_mode() {
	local mode=$1 round=$2
	case $mode in
	none)
		local job
		job=$(run_job)
		echo "$job - - - -" >>"$RUN/none.rows"
		;;
	braid) run_profiled braid "$round" "$BRAID" record --freq "$FREQ" -o "$RUN/braid.pb.gz" ;;
	perf) run_profiled perf "$round" perf record -F "$FREQ" -a -g -o "$RUN/perf.data" ;;
	esac
}

loadavg=$(cut -d' ' -f1-3 /proc/loadavg) # other work skews the slowdowns: shown with them
modes=(none braid perf)
: >"$RUN/none.rows"
: >"$RUN/braid.rows"
: >"$RUN/perf.rows"
for ((r = 0; r < ROUNDS; r++)); do
	# a different order each round: drift in the machine's speed is shared
	for ((m = 0; m < 3; m++)); do
		mode=${modes[$(((r + m) % 3))]}
		run_mode "$mode" "$((r + 1))" || exit 1
		# each run as it ends: wall_s cpu_s prof_cpu_% rss_KiB life_cpu_s samples
		echo "# round $((r + 1)) $mode: $(tail -1 "$RUN/$mode.rows")" >&2
	done
	rm -f "$RUN/braid.pb.gz" "$RUN/perf.data"
done

# median FILE COLUMN
median() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0 || v[1] == "-") print "null"; else if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# max FILE COLUMN
max() {
	awk -v c="$2" 'NR == 1 || $c > m { m = $c } END { print m }' "$1"
}

base_wall=$(median "$RUN/none.rows" 1)
base_cpu=$(median "$RUN/none.rows" 2)
# how far apart the runs without a profiler are: slowdowns below it are noise
spread=$(awk -v m="$base_wall" 'NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 }
	END { if (NR < 2) print "null"; else printf "%.2f\n", 100 * (hi - lo) / m }' "$RUN/none.rows")
figures() {
	local mode=$1 wall cpu
	wall=$(median "$RUN/$mode.rows" 1)
	cpu=$(median "$RUN/$mode.rows" 2)
	jq -n --argjson wall "$wall" --argjson cpu "$cpu" --argjson bw "$base_wall" --argjson bc "$base_cpu" \
		--argjson pcpu "$(median "$RUN/$mode.rows" 3)" --argjson rss "$(max "$RUN/$mode.rows" 4)" \
		--argjson life "$(median "$RUN/$mode.rows" 5)" --argjson samples "$(median "$RUN/$mode.rows" 6)" \
		'{wall_s: $wall, cpu_s: $cpu,
		  slowdown_pct: (100 * ($wall / $bw - 1) * 100 | round / 100),
		  cpu_slowdown_pct: (100 * ($cpu / $bc - 1) * 100 | round / 100),
		  profiler_cpu_pct: ($pcpu * 1000 | round / 1000),
		  profiler_rss_mib: ($rss / 1024 * 10 | round / 10),
		  profiler_life_cpu_s: $life, samples: $samples}'
}
jq -n --argjson units "$UNITS" --argjson freq "$FREQ" --argjson rounds "$ROUNDS" \
	--argjson cores "$(nproc)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
	--arg kernel "$(uname -r)" --arg loadavg "$loadavg" --arg braid_cmd "braid record --freq $FREQ" \
	--arg perf_cmd "perf record -F $FREQ -a -g" \
	--argjson none "{\"wall_s\": $base_wall, \"cpu_s\": $base_cpu, \"spread_pct\": $spread}" \
	--argjson braid "$(figures braid)" --argjson perf "$(figures perf)" \
	--argjson tcpu "$TARGET_CPU_PCT" --argjson trss "$TARGET_RSS_MIB" \
	'{workload: {command: "cpu_split --units \($units)", units: $units}, freq_hz: $freq,
	  rounds: $rounds, machine: {cores: $cores, cpu: $cpu, kernel: $kernel, loadavg_before: $loadavg},
	  commands: {braid: $braid_cmd, perf: $perf_cmd},
	  modes: {none: $none, braid: $braid, perf: $perf},
	  targets: {
	    braid_cpu: {max_pct: $tcpu, value: $braid.profiler_cpu_pct, met: ($braid.profiler_cpu_pct <= $tcpu)},
	    braid_slowdown: {perf_pct: $perf.slowdown_pct, value: $braid.slowdown_pct,
	                     met: ($braid.slowdown_pct < $perf.slowdown_pct)},
	    braid_rss: {max_mib: $trss, value: $braid.profiler_rss_mib, met: ($braid.profiler_rss_mib <= $trss)}}}' \
	>"$RUN/figures.json"

if [ -n "$json" ]; then
	cat "$RUN/figures.json"
	exit 0
fi
jf() {
	jq -r "$1" "$RUN/figures.json"
}
echo "braid record vs perf record: $(jf .workload.command) ($(jf .modes.none.wall_s) s alone)" \
	"at $FREQ Hz on every CPU, $ROUNDS round(s), medians"
echo "machine: $(jf .machine.cores) cores, $(jf .machine.cpu), kernel $(jf .machine.kernel);" \
	"load average before: $(jf .machine.loadavg_before)"
printf '%-6s %7s %7s %10s %14s %11s %13s %16s %8s\n' mode wall_s cpu_s slowdown_% cpu_slowdown_% \
	prof_cpu_% prof_rss_MiB prof_life_cpu_s samples
printf '%-6s %7s %7s %10s %14s %11s %13s %16s %8s\n' none "$base_wall" "$base_cpu" - - - - - -
for mode in braid perf; do
	read -r -a row <<<"$(jf ".modes.$mode | [.wall_s, .cpu_s, .slowdown_pct, .cpu_slowdown_pct,
		.profiler_cpu_pct, .profiler_rss_mib, .profiler_life_cpu_s, .samples] | map(tostring) | join(\" \")")"
	printf '%-6s %7s %7s %10s %14s %11s %13s %16s %8s\n' "$mode" "${row[@]}"
done
met() {
	if [ "$(jf "$1")" = true ]; then echo met; else echo "not met"; fi
}
echo "commands: $(jf .commands.braid); $(jf .commands.perf)"
if [ "$spread" != null ]; then
	echo "noise: the runs without a profiler lie $spread % apart (max - min over median)"
fi
echo "target braid CPU <= $TARGET_CPU_PCT % of one core: $(met .targets.braid_cpu.met)" \
	"($(jf .targets.braid_cpu.value) %)"
echo "target braid slowdown < perf's: $(met .targets.braid_slowdown.met)" \
	"($(jf .targets.braid_slowdown.value) % vs $(jf .targets.braid_slowdown.perf_pct) %)"
echo "target braid peak RSS <= $TARGET_RSS_MIB MiB: $(met .targets.braid_rss.met)" \
	"($(jf .targets.braid_rss.value) MiB)"
