#!/usr/bin/env bash
# What `braid record` costs the machine it profiles, next to `perf record`:
# a fixed CPU-bound job, sized to take ~5 s alone, is timed with no profiler
# and under four profilers of every CPU at 97 Hz, the five alternating (in a
# different order each round) for ROUNDS rounds; the figures are medians.
#
#   none        the job alone
#   braid       braid record --freq 97 -v (user stacks unwound with each
#               file's .eh_frame rules in the kernel: --unwind cfi)
#   braid-fp    braid record --freq 97 -v --unwind fp (frame pointers only)
#   perf        perf record -F 97 -a -g (frame pointers)
#   perf-dwarf  perf record -F 97 -a --call-graph dwarf (8192 bytes of
#               stack copied per sample, unwound later by perf report)
#
# The job (--workload, default pbkdf2) is code built without frame pointers,
# so that unwinding by .eh_frame matters: Debian's python3.11 calling
# hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 10000) N times (CPython and
# OpenSSL, a deep native stack). cpu_split (tests/workloads, built with frame
# pointers) is the other choice.
#
# For each profiler: the job's slowdown (wall time, and its own CPU time,
# which includes the sampling interrupts, the eBPF program and perf's stack
# copies run on its CPU); the profiler's own CPU while it samples (its
# threads' run time, from schedstat, over the job's run, in % of one core);
# its peak RSS and CPU over its whole life (GNU time's %M, %U + %S: start-up
# and the final write included); what it wrote per second of its life.
# For braid also the eBPF program's run time, which the kernel charges to the
# sampled tasks, not to braid (kernel.bpf_stats_enabled is set to 1 for the
# run and restored at exit): bpf_cpu_% is the program's run time over braid's
# whole life (braid -v prints it at exit), in % of one core; bpf_job_% is the
# same over the job's run only (read from braid's prog fds in /proc); total_%
# is prof_cpu_% + bpf_cpu_%. The *_2nd_% figures are the same over the
# second half of the job's run (from WORK_SECONDS / 2 in), once braid has
# loaded the unwind rules of the files it met first. And the memory of the
# unwind rules: files loaded (of those seen), rows, bytes in kernel maps and
# in user space, and the bytes of all braid's BPF maps.
# Each profiler is started first and the job only once it has a perf event
# open on every CPU (then 0.5 s more), so start-up is not in the slowdown.
#
#   bash bench/record.sh            # from the repo root, after a build; as root
#   bash bench/record.sh --quick    # one round of ~1.5 s: a smoke test
#   bash bench/record.sh --json     # the figures as JSON on stdout, no table
#   bash bench/record.sh --workload cpu_split
#
# Environment: BRAID (default build/braid), WORKLOAD (pbkdf2 or cpu_split, as
# --workload), PYTHON (default /usr/bin/python3.11), WORKLOAD_CPU_SPLIT
# (default build/tests/workloads/cpu_split, else built here with the same
# flags), ROUNDS (default 5), WORK_SECONDS (default 5), UNITS (the job's
# size; default: calibrated to WORK_SECONDS), FREQ (default 97), BENCH_DIR
# (where the profiles go, default /var/tmp), QUICK=1 or BENCH_QUICK=1 (as
# --quick).
# Targets: braid's CPU while sampling, its eBPF program's included, <= 0.5 %
# of one core; its slowdown < perf -g's (perf dwarf's shown beside it); its
# peak RSS <= 64 MiB; its unwind rules (kernel maps + user space) <= 64 MiB.
# Exits 77 when not root or without kernel BTF, 1 when a profiler fails
# (non-zero exit, no samples, no eBPF figures); never because a target was
# missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
# bpf_ns (and the others' helpers)
. "$SRC_DIR/bench/lib.sh"
PYTHON=${PYTHON:-/usr/bin/python3.11}
ROUNDS=${ROUNDS:-5}
WORK_SECONDS=${WORK_SECONDS:-5}
FREQ=${FREQ:-97}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
TARGET_CPU_PCT=0.5
TARGET_RSS_MIB=64
TARGET_UNWIND_MIB=64
PBKDF2_ITERATIONS=10000 # per unit: ~8 ms on this machine's cores

quick=${QUICK:-${BENCH_QUICK:-}}
[ "$quick" = 0 ] && quick=
json=
workload=${WORKLOAD:-pbkdf2}
usage() {
	echo "usage: bash bench/record.sh [--quick] [--json] [--workload pbkdf2|cpu_split]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--json) json=1 ;;
	--workload)
		[ $# -ge 2 ] || usage
		workload=$2
		shift
		;;
	--workload=*) workload=${1#--workload=} ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) usage ;;
	esac
	shift
done
case $workload in
pbkdf2 | cpu_split) ;;
*) usage ;;
esac
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
for tool in perf jq /usr/bin/time sysctl; do
	command -v "$tool" >/dev/null || { echo "bench/record.sh needs $tool (scripts/deps.sh)" >&2; exit 1; }
done
if [ "$workload" = pbkdf2 ] && [ ! -x "$PYTHON" ]; then
	echo "bench/record.sh --workload pbkdf2 needs $PYTHON (apt-get install python3.11)" >&2
	exit 1
fi

mkdir -p "$BENCH_DIR"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench-record.XXXX")
PIDS=()
old_bpf_stats=
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -n "$old_bpf_stats" ]; then
		sysctl -q -w kernel.bpf_stats_enabled="$old_bpf_stats" >/dev/null 2>&1 || true
	fi
	rm -rf "$RUN"
}
trap cleanup EXIT

# the eBPF program's run time is counted only while this is 1 (it costs two
# clock reads a run, for every BPF program on the machine)
old_bpf_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null

# JOB: the job's command; it takes --units N or --seconds S and ends with
# "done units=N elapsed_s=S cpu_s=S", its own wall and CPU time
case $workload in
cpu_split)
	cpu_split=${WORKLOAD_CPU_SPLIT:-$BUILD_DIR/tests/workloads/cpu_split}
	if [ ! -x "$cpu_split" ]; then
		# the flags of tests/workloads/CMakeLists.txt
		cpu_split=$RUN/cpu_split
		"${CC:-cc}" -O2 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-inline \
			-o "$cpu_split" "$SRC_DIR/tests/workloads/cpu_split.c"
	fi
	JOB=("$cpu_split")
	job_text=cpu_split
	;;
pbkdf2)
	cat >"$RUN/pbkdf2.py" <<'EOF'
# N calls of hashlib.pbkdf2_hmac (CPython -> OpenSSL's libcrypto, no frame
# pointers in either on Debian): --units N or --seconds S, --iterations I
import hashlib
import sys
import time

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
iterations = int(args.get("--iterations", "10000"))


def unit():
    hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", iterations)


unit()  # OpenSSL's provider and the digest are set up at the first call
t0, c0 = time.monotonic(), time.process_time()
done = 0
if "--units" in args:
    for _ in range(int(args["--units"])):
        unit()
    done = int(args["--units"])
else:
    seconds = float(args["--seconds"])
    while time.monotonic() - t0 < seconds:
        unit()
        done += 1
print(f"done units={done} elapsed_s={time.monotonic() - t0:.3f} "
      f"cpu_s={time.process_time() - c0:.3f}", flush=True)
EOF
	JOB=("$PYTHON" "$RUN/pbkdf2.py" --iterations "$PBKDF2_ITERATIONS")
	job_text="$(basename "$PYTHON") pbkdf2.py --iterations $PBKDF2_ITERATIONS"
	;;
esac

# run_job [PID]: runs the job once; prints "WALL_S CPU_S" (its own measure).
# With a profiler's PID, writes "NS CPU_NS BPF_NS" (the time, and its CPU and
# BPF time) to $RUN/mid half WORK_SECONDS into the job, if it still runs.
run_job() {
	local jpid spid rc=0
	rm -f "$RUN/mid"
	"${JOB[@]}" --units "$UNITS" >"$RUN/job.out" &
	jpid=$!
	if [ -n "${1:-}" ]; then
		sleep "$(awk -v s="$WORK_SECONDS" 'BEGIN { print s / 2 }')" &
		spid=$!
		wait -n "$jpid" "$spid" || true
		if kill -0 "$jpid" 2>/dev/null; then
			echo "$(now_ns) $(cpu_ns "$1") $(bpf_ns "$1")" >"$RUN/mid"
		else
			kill "$spid" 2>/dev/null || true
		fi
		wait "$spid" 2>/dev/null || true
	fi
	wait "$jpid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "the job ($job_text) exited $rc: $(cat "$RUN/job.out")" >&2
		return 1
	fi
	sed -n 's/^done units=[0-9]* elapsed_s=\([0-9.]*\) cpu_s=\([0-9.]*\)$/\1 \2/p' "$RUN/job.out"
}

if [ -z "${UNITS:-}" ]; then
	rate=$("${JOB[@]}" --seconds 1 | sed -n 's/^done units=\([0-9]*\) elapsed_s=\([0-9.]*\) .*/\1 \2/p' |
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

# the columns of $RUN/MODE.rows, one line a run; "-" where a mode has none
# (*_half_pct: over the second half of the job's run, from $RUN/mid on)
COLS=(wall_s cpu_s prof_cpu_pct rss_kib life_cpu_s samples life_wall_s out_bytes
	prof_half_pct bpf_ns bpf_runs bpf_cpu_pct bpf_job_pct bpf_half_pct map_bytes
	files_seen files_loaded files_no_room unwind_rows unwind_kernel_bytes unwind_user_bytes)
# col NAME: its column number in the rows
col() {
	local i
	for i in "${!COLS[@]}"; do
		[ "${COLS[$i]}" = "$1" ] && { echo $((i + 1)); return; }
	done
	echo "no column $1" >&2
	return 1
}

# run_profiled MODE ROUND COMMAND...: starts the profiler under GNU time,
# waits for it to sample, runs the job, reads the profiler's CPU, RSS and
# BPF time, stops it with SIGINT. Appends a line of COLS to $RUN/MODE.rows.
run_profiled() {
	local mode=$1 round=$2 tpid ppid="" i job c0 c1 b0 b1 t0 t1 tm=- cm=- bm=- rc=0 hwm life wall rss
	local samples out bpf ebpf rules prof_half=-
	shift 2
	# the columns from bpf_ns on: none for perf
	bpf=$(printf ' -%.0s' $(seq "$(col bpf_ns)" ${#COLS[@]}))
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
	b0=$(bpf_ns "$ppid")
	t0=$(now_ns)
	job=$(run_job "$ppid") || return 1
	t1=$(now_ns)
	c1=$(cpu_ns "$ppid")
	b1=$(bpf_ns "$ppid")
	if [ -s "$RUN/mid" ]; then
		read -r tm cm bm <"$RUN/mid"
		prof_half=$(awk -v c0="$cm" -v c1="$c1" -v t0="$tm" -v t1="$t1" \
			'BEGIN { printf "%.4f", 100 * (c1 - c0) / (t1 - t0) }')
	fi
	hwm=$(sed -n 's/^VmHWM: *\([0-9]*\) kB$/\1/p' /proc/"$ppid"/status 2>/dev/null || true)
	kill -INT "$ppid"
	wait "$tpid" || rc=$?
	# perf record ends itself with the signal it got: 128 + 2 is its success
	if [ "$rc" -ne 0 ] && ! { [ "${mode#perf}" != "$mode" ] && [ "$rc" -eq 130 ]; }; then
		echo "$mode exited $rc after SIGINT (round $round): $(cat "$RUN/$mode.err")" >&2
		return 1
	fi
	# the last line: GNU time puts "Command exited with ..." before it
	read -r wall ut st rss <<<"$(tail -1 "$RUN/$mode.time")"
	life=$(awk -v u="$ut" -v s="$st" 'BEGIN { printf "%.2f", u + s }')
	if [ -n "$hwm" ] && [ "$hwm" -gt "$rss" ]; then
		rss=$hwm
	fi
	case $mode in
	braid*)
		out=$RUN/$mode.pb.gz
		samples=$(sed -n 's/.*[^0-9]\([0-9][0-9]*\) samples.*wrote.*/\1/p' "$RUN/$mode.err" | tail -1)
		# braid: record: eBPF: B bytes of maps; program N ns in M runs
		ebpf=$(sed -n 's/^braid: record: eBPF: \([0-9]*\) bytes of maps; program \([0-9]*\) ns in \([0-9]*\) runs.*/\2 \3 \1/p' \
			"$RUN/$mode.err" | tail -1)
		# braid: record: unwind rules: F files seen, L loaded, X unreadable, O not opened (process gone),
		# R without room, ...; R rows, ...; K bytes in kernel maps, U in user space
		rules=$(sed -n 's/^braid: record: unwind rules: \([0-9]*\) files seen, \([0-9]*\) loaded, [0-9]* unreadable, [0-9]* not opened (process gone), \([0-9]*\) without room, [^;]*; \([0-9]*\) rows, .*; \([0-9]*\) bytes in kernel maps, \([0-9]*\) in user space$/\1 \2 \3 \4 \5 \6/p' \
			"$RUN/$mode.err" | tail -1)
		if [ -z "$ebpf" ] || [ -z "$rules" ]; then
			echo "$mode: no eBPF or unwind rules line in braid -v's output (round $round): $(tail -3 "$RUN/$mode.err")" >&2
			return 1
		fi
		read -r bns bruns bmaps <<<"$ebpf"
		if [ "$bruns" -eq 0 ]; then
			echo "$mode: braid counted no eBPF program run: is kernel.bpf_stats_enabled 1? (round $round)" >&2
			return 1
		fi
		bpf=" $bns $bruns $(awk -v n="$bns" -v w="$wall" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" \
			-v bm="$bm" -v tm="$tm" 'BEGIN { printf "%.4f %.4f %s", (w > 0 ? 100 * n / (w * 1e9) : 0),
				100 * (b1 - b0) / (t1 - t0), (tm == "-" ? "-" : sprintf("%.4f", 100 * (b1 - bm) / (t1 - tm))) }') $bmaps $rules"
		;;
	perf*)
		out=$RUN/$mode.data
		samples=$(sed -n 's/.*(\([0-9][0-9]*\) samples).*/\1/p' "$RUN/$mode.err" | tail -1)
		;;
	esac
	if [ -z "$samples" ] || [ "$samples" -eq 0 ]; then
		echo "$mode: no samples (round $round): $(cat "$RUN/$mode.err")" >&2
		return 1
	fi
	echo "$job $(awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.4f", 100 * (c1 - c0) / (t1 - t0) }') $rss $life $samples $wall" \
		"$(stat -c %s "$out") $prof_half$bpf" >>"$RUN/$mode.rows"
	rm -f "$out"
}

run_mode() {
	local mode=$1 round=$2
	case $mode in
	none)
		local job
		job=$(run_job) || return 1
		echo "$job$(printf ' -%.0s' $(seq 3 ${#COLS[@]}))" >>"$RUN/none.rows"
		;;
	braid) run_profiled "$mode" "$round" "$BRAID" record --freq "$FREQ" -v -o "$RUN/$mode.pb.gz" ;;
	braid-fp) run_profiled "$mode" "$round" "$BRAID" record --freq "$FREQ" -v --unwind fp -o "$RUN/$mode.pb.gz" ;;
	perf) run_profiled "$mode" "$round" perf record -F "$FREQ" -a -g -o "$RUN/$mode.data" ;;
	perf-dwarf) run_profiled "$mode" "$round" perf record -F "$FREQ" -a --call-graph dwarf -o "$RUN/$mode.data" ;;
	esac
}

loadavg=$(cut -d' ' -f1-3 /proc/loadavg) # other work skews the slowdowns: shown with them
modes=(none braid braid-fp perf perf-dwarf)
for mode in "${modes[@]}"; do
	: >"$RUN/$mode.rows"
done
for ((r = 0; r < ROUNDS; r++)); do
	# a different order each round: drift in the machine's speed is shared
	for ((m = 0; m < ${#modes[@]}; m++)); do
		mode=${modes[$(((r + m) % ${#modes[@]}))]}
		run_mode "$mode" "$((r + 1))" || exit 1
		# each run as it ends
		echo "# round $((r + 1)) $mode: $(tail -1 "$RUN/$mode.rows" | tr ' ' '\n' |
			paste -d= <(printf '%s\n' "${COLS[@]}") - | grep -v '=-$' | tr '\n' ' ')" >&2
	done
done
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

# median MODE COLUMN_NAME: of the runs that have the figure; null if none has
median() {
	awk -v c="$(col "$2")" '$c != "-" { print $c }' "$RUN/$1.rows" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# max MODE COLUMN_NAME
max() {
	awk -v c="$(col "$2")" '$c == "-" { none = 1 } NR == 1 || $c > m { m = $c }
		END { print (NR == 0 || none) ? "null" : m }' "$RUN/$1.rows"
}

base_wall=$(median none wall_s)
base_cpu=$(median none cpu_s)
# how far apart the runs without a profiler are: slowdowns below it are noise
spread=$(awk -v m="$base_wall" 'NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 }
	END { if (NR < 2) print "null"; else printf "%.2f\n", 100 * (hi - lo) / m }' "$RUN/none.rows")
# figures MODE: its medians as JSON (the memory figures: the largest run's)
figures() {
	local mode=$1 args=() c
	for c in wall_s cpu_s prof_cpu_pct life_cpu_s samples life_wall_s out_bytes prof_half_pct bpf_ns \
		bpf_runs bpf_cpu_pct bpf_job_pct bpf_half_pct files_seen files_loaded files_no_room unwind_rows; do
		args+=(--argjson "$c" "$(median "$mode" "$c")")
	done
	for c in rss_kib map_bytes unwind_kernel_bytes unwind_user_bytes; do
		args+=(--argjson "$c" "$(max "$mode" "$c")")
	done
	jq -n --argjson bw "$base_wall" --argjson bc "$base_cpu" "${args[@]}" '
		def r(n): if . == null then null else (. * n | round / n) end;
		def mib: if . == null then null else (. / 1048576 | r(100)) end;
		{wall_s: $wall_s, cpu_s: $cpu_s,
		 slowdown_pct: (100 * ($wall_s / $bw - 1) | r(100)),
		 cpu_slowdown_pct: (100 * ($cpu_s / $bc - 1) | r(100)),
		 profiler_cpu_pct: ($prof_cpu_pct | r(1000)),
		 profiler_cpu_2nd_half_pct: ($prof_half_pct | r(1000)),
		 profiler_rss_mib: ($rss_kib / 1024 | r(10)),
		 profiler_life_cpu_s: $life_cpu_s, profiler_life_wall_s: $life_wall_s, samples: $samples,
		 output_kib_per_s: ($out_bytes / $life_wall_s / 1024 | r(10))}
		+ if $bpf_ns == null then {} else
		{bpf_run_ns: $bpf_ns, bpf_runs: $bpf_runs,
		 bpf_ns_per_run: ($bpf_ns / $bpf_runs | round),
		 bpf_cpu_pct: ($bpf_cpu_pct | r(1000)), bpf_job_cpu_pct: ($bpf_job_pct | r(1000)),
		 total_cpu_pct: ($prof_cpu_pct + $bpf_cpu_pct | r(1000)),
		 total_job_cpu_pct: ($prof_cpu_pct + $bpf_job_pct | r(1000)),
		 bpf_cpu_2nd_half_pct: ($bpf_half_pct | r(1000)),
		 total_cpu_2nd_half_pct: (if $prof_half_pct == null or $bpf_half_pct == null then null
		                          else $prof_half_pct + $bpf_half_pct | r(1000) end),
		 unwind_files_seen: $files_seen, unwind_files_loaded: $files_loaded,
		 unwind_files_no_room: $files_no_room, unwind_rows: $unwind_rows,
		 unwind_kernel_bytes: $unwind_kernel_bytes, unwind_user_bytes: $unwind_user_bytes,
		 unwind_mib: (($unwind_kernel_bytes + $unwind_user_bytes) | mib),
		 bpf_maps_bytes: $map_bytes, bpf_maps_mib: ($map_bytes | mib)} end'
}
jq -n --argjson units "$UNITS" --arg job "$job_text" --arg workload "$workload" \
	--argjson freq "$FREQ" --argjson rounds "$ROUNDS" \
	--argjson cores "$(nproc)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
	--arg kernel "$(uname -r)" --arg loadavg "$loadavg" --arg loadavg_after "$loadavg_after" \
	--arg braid_cmd "braid record --freq $FREQ -v" --arg braid_fp_cmd "braid record --freq $FREQ -v --unwind fp" \
	--arg perf_cmd "perf record -F $FREQ -a -g" --arg perf_dwarf_cmd "perf record -F $FREQ -a --call-graph dwarf" \
	--argjson none "{\"wall_s\": $base_wall, \"cpu_s\": $base_cpu, \"spread_pct\": $spread}" \
	--argjson braid "$(figures braid)" --argjson braid_fp "$(figures braid-fp)" \
	--argjson perf "$(figures perf)" --argjson perf_dwarf "$(figures perf-dwarf)" \
	--argjson tcpu "$TARGET_CPU_PCT" --argjson trss "$TARGET_RSS_MIB" --argjson tunwind "$TARGET_UNWIND_MIB" \
	'{workload: {name: $workload, command: "\($job) --units \($units)", units: $units}, freq_hz: $freq,
	  rounds: $rounds,
	  machine: {cores: $cores, cpu: $cpu, kernel: $kernel, loadavg_before: $loadavg, loadavg_after: $loadavg_after},
	  commands: {braid: $braid_cmd, braid_fp: $braid_fp_cmd, perf: $perf_cmd, perf_dwarf: $perf_dwarf_cmd},
	  modes: {none: $none, braid: $braid, braid_fp: $braid_fp, perf: $perf, perf_dwarf: $perf_dwarf},
	  targets: {
	    braid_cpu: {max_pct: $tcpu, value: $braid.total_cpu_pct, process_pct: $braid.profiler_cpu_pct,
	                bpf_pct: $braid.bpf_cpu_pct, job_only_value: $braid.total_job_cpu_pct,
	                second_half_value: $braid.total_cpu_2nd_half_pct,
	                met: ($braid.total_cpu_pct <= $tcpu)},
	    braid_slowdown: {perf_pct: $perf.slowdown_pct, perf_dwarf_pct: $perf_dwarf.slowdown_pct,
	                     value: $braid.slowdown_pct, met: ($braid.slowdown_pct < $perf.slowdown_pct)},
	    braid_rss: {max_mib: $trss, value: $braid.profiler_rss_mib, met: ($braid.profiler_rss_mib <= $trss)},
	    braid_unwind_memory: {max_mib: $tunwind, value: $braid.unwind_mib,
	                          files_loaded: $braid.unwind_files_loaded,
	                          met: ($braid.unwind_mib <= $tunwind)}}}' \
	>"$RUN/figures.json"

if [ -n "$json" ]; then
	cat "$RUN/figures.json"
	exit 0
fi
jf() {
	jq -r "$1" "$RUN/figures.json"
}
# table FORMAT FIELDS...: one row a mode, its JSON fields (null: -)
table() {
	local fmt=$1 mode key
	shift
	for mode in "${modes[@]}"; do
		key=${mode//-/_}
		[ "$mode" = none ] && [ "$1" != wall_s ] && continue
		# shellcheck disable=SC2046,SC2059 # a word a field; the format is the caller's
		printf "$fmt" "$mode" $(jq -r --arg m "$key" '.modes[$m] as $o
			| $ARGS.positional | map($o[.] // "-" | tostring) | join(" ")' "$RUN/figures.json" --args "$@")
	done
}
echo "braid record vs perf record: $(jf .workload.command) ($(jf .modes.none.wall_s) s alone)" \
	"at $FREQ Hz on every CPU, $ROUNDS round(s), medians"
echo "machine: $(jf .machine.cores) cores, $(jf .machine.cpu), kernel $(jf .machine.kernel);" \
	"load average before: $(jf .machine.loadavg_before), after: $(jf .machine.loadavg_after)"
f='%-10s %7s %7s %10s %14s %11s %10s %8s %8s %11s %8s\n'
# shellcheck disable=SC2059 # the format is f
printf "$f" mode wall_s cpu_s slowdown_% cpu_slowdown_% prof_cpu_% bpf_cpu_% total_% rss_MiB \
	life_cpu_s samples
table "$f" wall_s cpu_s slowdown_pct cpu_slowdown_pct profiler_cpu_pct bpf_cpu_pct total_cpu_pct \
	profiler_rss_mib profiler_life_cpu_s samples
echo
f='%-10s %10s %11s %10s %12s %11s %10s %11s\n'
# shellcheck disable=SC2059 # the format is f
printf "$f" mode bpf_job_% total_job_% prof_2nd_% bpf_2nd_half_% total_2nd_% bpf_ns/run out_KiB/s
table "$f" bpf_job_cpu_pct total_job_cpu_pct profiler_cpu_2nd_half_pct bpf_cpu_2nd_half_pct \
	total_cpu_2nd_half_pct bpf_ns_per_run output_kib_per_s
echo
f='%-10s %13s %11s %14s %9s %11s %9s\n'
# shellcheck disable=SC2059 # the format is f
printf "$f" mode files_loaded files_seen files_no_room rows unwind_MiB maps_MiB
table "$f" unwind_files_loaded unwind_files_seen unwind_files_no_room unwind_rows unwind_mib bpf_maps_mib
met() {
	if [ "$(jf "$1")" = true ]; then echo met; else echo "not met"; fi
}
echo "commands: $(jf '.commands | [.[]] | join("; ")')"
echo "prof_cpu_%: the profiler's threads over the job's run, in % of one core; bpf_cpu_%:" \
	"braid's eBPF program over braid's whole life (charged to the sampled tasks, not to braid);" \
	"total_% = prof_cpu_% + bpf_cpu_%; *_job_%: with the eBPF time of the job's run alone;" \
	"*_2nd_%: over the second half of the job's run; unwind_MiB: kernel maps + user space"
if [ "$spread" != null ]; then
	echo "noise: the runs without a profiler lie $spread % apart (max - min over median)"
fi
echo "target braid CPU while sampling, eBPF included, <= $TARGET_CPU_PCT % of one core:" \
	"$(met .targets.braid_cpu.met) ($(jf .targets.braid_cpu.value) % = $(jf .targets.braid_cpu.process_pct)" \
	"+ $(jf .targets.braid_cpu.bpf_pct); with the eBPF time of the job's run alone:" \
	"$(jf .targets.braid_cpu.job_only_value) %; over the second half of the job's run:" \
	"$(jf .targets.braid_cpu.second_half_value) %)"
echo "target braid slowdown < perf -g's: $(met .targets.braid_slowdown.met)" \
	"($(jf .targets.braid_slowdown.value) % vs $(jf .targets.braid_slowdown.perf_pct) %;" \
	"perf --call-graph dwarf: $(jf .targets.braid_slowdown.perf_dwarf_pct) %)"
echo "target braid peak RSS <= $TARGET_RSS_MIB MiB: $(met .targets.braid_rss.met)" \
	"($(jf .targets.braid_rss.value) MiB)"
echo "target braid unwind rules <= $TARGET_UNWIND_MIB MiB: $(met .targets.braid_unwind_memory.met)" \
	"($(jf .targets.braid_unwind_memory.value) MiB, $(jf .targets.braid_unwind_memory.files_loaded) files)"
