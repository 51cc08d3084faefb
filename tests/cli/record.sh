#!/usr/bin/env bash
# braid record end to end, on workloads whose profile is known in advance
# (tests/workloads): cpu_split's 70/30 split between two functions, every
# sample labelled with its pid, tid, comm and runtime, the pprof header as Go's pprof reads
# it, the kernel's write path under a syscall loop, JIT frames of Node from
# its perf map, the whole system at once, --no-kernel and --no-user, the
# folded format, stdout and the default file name, SIGINT and SIGTERM, and
# bad arguments. Needs root and kernel BTF: exits 77 (a skip) with the
# reason otherwise.
#
#   bash tests/cli/record.sh           # the checks above (~30 s)
#   bash tests/cli/record.sh --bench   # bench/record.sh --quick prints its figures
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/record_lib.sh"
: "${SRC_DIR:?}" "${WORKLOAD_CPU_SPLIT:?}" "${WORKLOAD_SYSCALL_LOOP:?}" "${WORKLOAD_HOT_JS:?}"

require_ebpf

# ---- the benchmark, once and small: its figures are there, never judged ----------------
if [ "${1:-}" = --bench ]; then
	rc=0
	BENCH_DIR=$TMP bash "$SRC_DIR/bench/record.sh" --quick --json >"$TMP/bench.json" \
		2>"$TMP/bench.err" || rc=$?
	cat "$TMP/bench.err" >&2
	if [ "$rc" -eq 77 ]; then
		exit 77
	fi
	expect_eq "bench/record.sh --quick --json: exit status" 0 "$rc"
	cat "$TMP/bench.json"
	jq -e . "$TMP/bench.json" >/dev/null 2>&1 || fail "bench/record.sh --json printed no JSON"
	for f in '.modes.none.wall_s' '.modes.none.cpu_s' '.modes.braid.wall_s' \
		'.modes.braid.slowdown_pct' '.modes.braid.profiler_cpu_pct' \
		'.modes.braid.profiler_rss_mib' '.modes.braid.samples' '.modes.perf.wall_s' \
		'.modes.perf.slowdown_pct' '.modes.perf.profiler_cpu_pct' '.modes.perf.profiler_rss_mib'; do
		jq -e "$f | type == \"number\"" "$TMP/bench.json" >/dev/null 2>&1 ||
			fail "bench/record.sh --json: $f is not a number"
	done
	jq -e '.modes.none.wall_s > 0 and .modes.braid.wall_s > 0 and .modes.braid.profiler_rss_mib > 0
		and .modes.braid.samples > 0' "$TMP/bench.json" >/dev/null 2>&1 ||
		fail "bench/record.sh --json: a time, braid's RSS or its sample count is not > 0"
	for t in braid_cpu braid_slowdown braid_rss; do
		jq -e ".targets.$t.met | type == \"boolean\"" "$TMP/bench.json" >/dev/null 2>&1 ||
			fail "bench/record.sh --json: targets.$t.met is not true or false"
	done
	finish
	exit 0
fi

PERIOD=10309278 # 1e9 / 97 Hz, the default
NODE_MAP=
CGROUP=
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -n "$NODE_MAP" ]; then
		rm -f "$NODE_MAP"
	fi
	if [ -n "$CGROUP" ]; then
		rmdir "$CGROUP" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# summary_samples NAME: N of the summary line
summary_samples() {
	sed -n 's/.*[^0-9]\([0-9][0-9]*\) samples.*wrote.*/\1/p' "$TMP/$1.err" | tail -1
}

# raw NAME: `go tool pprof -raw` of $TMP/NAME.pb.gz into $TMP/NAME.raw.
# -symbolize=none: the names must be braid's own, not ones Go's pprof finds
# in the binaries on this machine.
raw() {
	if ! pprof -symbolize=none -raw "$TMP/$1.pb.gz" >"$TMP/$1.raw" 2>"$TMP/$1.raw.err"; then
		fail "$1: pprof -raw could not read $1.pb.gz: $(cat "$TMP/$1.raw.err")"
		: >"$TMP/$1.raw"
		return 1
	fi
}

# raw_samples NAME: the number of samples in $TMP/NAME.raw (sum of values / period)
raw_samples() {
	awk -v period="$PERIOD" '/^Samples:/ { s = 1; getline; next } /^Locations/ { s = 0 }
		s && $1 ~ /^[0-9]+:$/ { v = $1; sub(/:$/, "", v); t += v }
		END { printf "%.0f\n", int(t / period) }' "$TMP/$1.raw"
}

# raw_pids NAME: the distinct pid labels of the samples, sorted (numeric
# labels print on one line, by name: pid:[P] thread_pointer:[X] tid:[T])
raw_pids() {
	sed -n 's/^ *pid:\[\([0-9]*\)\]\( thread_pointer:\[[0-9]*\]\)\? tid:\[[0-9]*\]$/\1/p' "$TMP/$1.raw" | sort -un
}
# raw_tids NAME: the distinct tid labels of the samples, sorted
raw_tids() {
	sed -n 's/^ *pid:\[[0-9]*\]\( thread_pointer:\[[0-9]*\]\)\? tid:\[\([0-9]*\)\]$/\2/p' "$TMP/$1.raw" | sort -un
}
# raw_thread_pointers NAME: "tid thread_pointer" of the samples, distinct
raw_thread_pointers() {
	sed -n 's/^ *pid:\[[0-9]*\] thread_pointer:\[\([0-9]*\)\] tid:\[\([0-9]*\)\]$/\2 \1/p' "$TMP/$1.raw" | sort -u
}

# raw_mapping NAME REGEX: the mapping file of each location whose (first)
# function name matches REGEX, one a line
raw_mapping() {
	awk -v pat="$2" '/^Locations/ { s = "loc"; next } /^Mappings/ { s = "map"; next }
		s == "loc" && $1 ~ /^[0-9]+:$/ {
			rest = $0; m = "none"
			if ($3 ~ /^M=/) { m = substr($3, 3); sub(/^ *[0-9]+: [^ ]+ M=[0-9]+ /, "", rest) }
			else sub(/^ *[0-9]+: [^ ]+ /, "", rest)
			if (rest ~ pat) want[m] = 1
		}
		s == "map" && $1 ~ /^[0-9]+:$/ { id = $1; sub(/:$/, "", id); file[id] = $3 }
		END { for (m in want) print (m in file) ? file[m] : "(no mapping)" }' "$TMP/$1.raw" | sort -u
}

# top NAME: `go tool pprof -top` in ns, every node, into $TMP/NAME.top
top() {
	if ! pprof -symbolize=none -top -unit=ns -nodecount=1000000 -nodefraction=0 \
		-edgefraction=0 "$TMP/$1.pb.gz" >"$TMP/$1.top" 2>"$TMP/$1.top.err"; then
		fail "$1: pprof -top exited non-zero: $(cat "$TMP/$1.top.err")"
		: >"$TMP/$1.top"
		return 1
	fi
}

# top_cum NAME FUNCTION: FUNCTION's cumulative ns in $TMP/NAME.top (0 if absent)
top_cum() {
	awk -v fn="$2" '$6 == fn { v = $4; sub(/ns$/, "", v); t += v } END { printf "%.0f\n", t }' \
		"$TMP/$1.top"
}

# folded_total FILE: the sum of the counts of a folded file
folded_total() {
	awk '{ t += $NF } END { printf "%.0f\n", t }' "$1"
}


# folded_leafward FILE A B: the count of stacks with a frame matching A and,
# leafward of it, one matching B (both regexes on whole frame names)
folded_leafward() {
	awk -v a="^($2)\$" -v b="^($3)\$" '{
		line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";"); seen = 0
		for (i = 2; i <= n; i++) {
			if (f[i] ~ a) seen = 1
			else if (seen && f[i] ~ b) { t += $NF; break }
		}
	} END { printf "%.0f\n", t }' "$1"
}

# folded_frames FILE REGEX: the count of stacks with a frame (not the comm) matching REGEX
folded_frames() {
	awk -v a="^($2)\$" '{
		line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";")
		for (i = 2; i <= n; i++) if (f[i] ~ a) { t += $NF; break }
	} END { printf "%.0f\n", t }' "$1"
}

# folded_not_kernel FILE: the count of stacks with a frame (not the comm)
# that is not suffixed _[k]
folded_not_kernel() {
	awk '{
		line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";")
		for (i = 2; i <= n; i++)
			if (substr(f[i], length(f[i]) - 3) != "_[k]" && f[i] != "[user space]") { t += $NF; break }
	} END { printf "%.0f\n", t }' "$1"
}

# ---- --help names every option ---------------------------------------------------------
rc=0
"$BRAID" record --help >"$TMP/help.txt" 2>&1 || rc=$?
expect_eq "braid record --help: exit status" 0 "$rc"
for opt in --duration --pid --cgroup --freq --no-kernel --no-user --format -o; do
	expect_contains "braid record --help" "$TMP/help.txt" "$opt"
done

# ---- cpu_split alone, 3 s: the split, the count, the labels, the header ----------------
start_workload cpu "$WORKLOAD_CPU_SPLIT" --seconds $((10 * SLOW))
CPU=$WL_PID
record cpu --duration 3 --pid "$CPU" -o "$TMP/cpu.pb.gz"
record_wait cpu "$REC_PID" || true
stop_workload "$CPU"
if [ -s "$TMP/cpu.pb.gz" ]; then
	top cpu || true
	hot=$(top_cum cpu braid_work_hot)
	cold=$(top_cum cpu braid_work_cold)
	grep -q ' braid_work_hot$' "$TMP/cpu.top" || fail "pprof -top lists no braid_work_hot: $(head -20 "$TMP/cpu.top")"
	grep -q ' braid_work_cold$' "$TMP/cpu.top" || fail "pprof -top lists no braid_work_cold: $(head -20 "$TMP/cpu.top")"
	if [ "$((hot + cold))" -gt 0 ]; then
		share=$(awk -v h="$hot" -v c="$cold" 'BEGIN { printf "%.1f", 100 * h / (h + c) }')
		echo "# cpu_split: braid_work_hot ${share} % of hot + cold ($hot ns, $cold ns)"
		awk -v s="$share" 'BEGIN { exit !(s >= 60 && s <= 80) }' ||
			fail "braid_work_hot's share is $share %, expected 70 ± 10 % (cold: $(awk -v s="$share" 'BEGIN { print 100 - s }') %)"
	fi
	raw cpu || true
	grep -qx 'PeriodType: cpu nanoseconds' "$TMP/cpu.raw" ||
		fail "period type is not cpu nanoseconds: $(head -3 "$TMP/cpu.raw")"
	grep -qx "Period: $PERIOD" "$TMP/cpu.raw" ||
		fail "period is not 1e9/97 = $PERIOD: $(grep '^Period:' "$TMP/cpu.raw")"
	types=$(sed -n '/^Samples:/{n;p;q}' "$TMP/cpu.raw" | sed 's/\[dflt\]//; s/ *$//')
	expect_eq "sample types" "cpu/nanoseconds" "$types"
	n=$(raw_samples cpu)
	echo "# cpu_split: $n samples in 3 s at 97 Hz (291 at most)"
	if ! under_wrapper "cpu_split's least sample count: braid under it takes CPU from the workload"; then
		[ "$n" -ge 200 ] || fail "only $n samples of cpu_split in 3 s at 97 Hz, expected >= 200 of 291"
	fi
	[ "$n" -le 300 ] || fail "$n samples of one thread in 3 s at 97 Hz, more than 291 (+3 %)"
	expect_eq "samples in the summary line and in the file" "$n" "$(summary_samples cpu)"
	notmult=$(awk -v p="$PERIOD" '/^Samples:/ { s = 1; getline; next } /^Locations/ { s = 0 }
		s && $1 ~ /^[0-9]+:$/ { v = $1; sub(/:$/, "", v); if (v % p) n++ } END { print n + 0 }' "$TMP/cpu.raw")
	expect_eq "sample values that are not a multiple of the period" 0 "$notmult"
	expect_eq "pid labels of the samples (--pid $CPU)" "$CPU" "$(raw_pids cpu | tr '\n' ' ' | sed 's/ $//')"
	nsamples=$(awk '/^Samples:/ { s = 1; getline; next } /^Locations/ { s = 0 } s && $1 ~ /^[0-9]+:$/ { n++ } END { print n + 0 }' "$TMP/cpu.raw")
	# string labels print on one line (comm:[x] pid:[y] if pid were one), numbers on their own
	expect_eq "samples with numeric pid and tid labels" "$nsamples" "$(grep -Ec '^ *pid:\[[0-9]+\]( thread_pointer:\[[0-9]+\])? tid:\[[0-9]+\]$' "$TMP/cpu.raw" || true)"
	expect_eq "samples with comm label cpu_split and runtime native" "$nsamples" \
		"$(grep -Ec '^ *comm:\[cpu_split\] runtime:\[native\]$' "$TMP/cpu.raw" || true)"
	expect_eq "the mapping of braid_work_hot" "$(readlink -f "$WORKLOAD_CPU_SPLIT")" \
		"$(raw_mapping cpu '^braid_work_hot( |$)')"
else
	fail "braid record wrote no $TMP/cpu.pb.gz"
fi

# ---- cpu_split in 2 threads, 2 s: --pid takes the whole process ------------------------
# One thread gives at most 194 samples in 2 s at 97 Hz: more come from the
# second thread, and each is labelled with the process's pid and its own tid.
start_workload threads "$WORKLOAD_CPU_SPLIT" --seconds $((10 * SLOW)) --threads 2
THR=$WL_PID
record threads --duration 2 --pid "$THR" -o "$TMP/threads.pb.gz"
if record_wait threads "$REC_PID"; then
	raw threads || true
	n=$(raw_samples threads)
	echo "# cpu_split, 2 threads: $n samples in 2 s at 97 Hz (194 per thread at most)"
	if ! under_wrapper "the 2-thread sample count: braid under it takes CPU from the threads on this machine's $(nproc) CPUs"; then
		[ "$n" -gt 213 ] || fail "cpu_split in 2 threads: $n samples in 2 s, not more than one thread gives (194, +10 %)"
	fi
	expect_eq "pid labels of a 2-thread process's samples" "$THR" "$(raw_pids threads | tr '\n' ' ' | sed 's/ $//')"
	# and the tid label tells the threads apart: the main thread's is the pid
	tids=$(raw_tids threads | tr '\n' ' ' | sed 's/ $//')
	case " $tids " in
	*" $THR "*) ;;
	*) fail "tid labels of a 2-thread process ($tids) lack the main thread's ($THR)" ;;
	esac
	[ "$(raw_tids threads | wc -l)" -ge 2 ] || fail "tid labels of a 2-thread process: only $tids"
	# x86-64: each thread's pthread_self() (its fs base), one per thread and
	# distinct; cli_python_sdk checks them against the Python SDK's thread ids
	if [ "$(uname -m)" = x86_64 ]; then
		tps=$(raw_thread_pointers threads)
		echo "# tid and thread pointer: $(echo "$tps" | tr '\n' ',' | sed 's/,$//')"
		expect_eq "threads with a thread pointer" "$(raw_tids threads | wc -l)" "$(echo "$tps" | awk 'NF == 2' | cut -d' ' -f1 | sort -u | wc -l)"
		expect_eq "threads with one thread pointer each, distinct" "$(echo "$tps" | wc -l)" "$(echo "$tps" | cut -d' ' -f2 | sort -u | wc -l)"
	fi
fi
stop_workload "$THR"

# ---- syscall_loop and cpu_split side by side, 2 s: kernel frames, --no-kernel, ---------
# ---- without frame pointers: user stacks unwound with the rules of .eh_frame ----------
# cfi_chain (main -> outer -> middle -> inner, -O2 -fomit-frame-pointer): a
# frame-pointer walk stops after inner. Debian's CPython and OpenSSL are built
# the same way: PBKDF2 in libcrypto must show the interpreter and Py_BytesMain
# rootward. 95 % each: a sample taken before a library's rules are loaded
# is a frame-pointer walk.
CFI_CHAIN_BIN=${WORKLOAD_CFI_CHAIN:-$BUILD_DIR/tests/workloads/cfi_chain}
PYTHON=/usr/bin/python3.11
[ -x "$CFI_CHAIN_BIN" ] || fail "no cfi_chain workload at $CFI_CHAIN_BIN (build tests/workloads)"
[ -x "$PYTHON" ] || fail "no $PYTHON: scripts/deps.sh installs python3.11"
if [ -x "$CFI_CHAIN_BIN" ] && [ -x "$PYTHON" ]; then
	"$CFI_CHAIN_BIN" 1000000000000 >/dev/null 2>&1 &
	CHAIN=$!
	PIDS+=("$CHAIN")
	# hashlib (and with it libcrypto) is imported once braid record has
	# loaded the process's rules: its libraries' rules come when the
	# program first meets an address in none of them (BRAID_PID_REFRESH)
	cat >"$TMP/pbkdf2.py" <<'PY'
import os, time
print("pid", os.getpid(), flush=True)
time.sleep(1)
import hashlib
while True:
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 20000)
PY
	start_workload pbkdf2 "$PYTHON" "$TMP/pbkdf2.py"
	PBKDF2=$WL_PID
	record chain --duration 3 --pid "$CHAIN" --format folded -o "$TMP/chain.folded"
	r_chain=$REC_PID
	# 6 s: about 5 s of PBKDF2, of which the first 0.1 to 0.2 s (0.2 with
	# ASan) go before libcrypto's rules are in
	record pbkdf2 --duration 6 --pid "$PBKDF2" --format folded -o "$TMP/pbkdf2.folded"
	r_pbkdf2=$REC_PID
	if record_wait chain "$r_chain"; then
		folded_check "$TMP/chain.folded" "cfi_chain, folded"
		leaf=$(awk '{ line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";")
			if (f[n] == "inner") t += $NF } END { printf "%.0f\n", t }' "$TMP/chain.folded")
		full=$(grep -E ';main;outer;middle;inner [0-9]+$' "$TMP/chain.folded" | folded_total /dev/stdin)
		echo "# cfi_chain: $full of $leaf samples in inner show middle, outer and main rootward"
		[ "$leaf" -gt 0 ] || fail "cfi_chain: no sample in inner: $(sort -t' ' -k2 -nr "$TMP/chain.folded" | head -5)"
		[ "$leaf" -gt 0 ] && [ "$((100 * full))" -ge "$((95 * leaf))" ] ||
			fail "cfi_chain: only $full of $leaf samples in inner unwound to main;outer;middle: $(sort -t' ' -k2 -nr "$TMP/chain.folded" | head -5)"
	fi
	if record_wait pbkdf2 "$r_pbkdf2"; then
		folded_check "$TMP/pbkdf2.folded" "python3.11 pbkdf2, folded"
		read -r tot main ssl ssl_eval < <(awk '{ t += $NF
			if ($0 ~ /;Py_BytesMain;/) m += $NF
			if ($0 ~ /;(PKCS5_PBKDF2_HMAC|libcrypto[^;]*)(;| )/) {
				s += $NF
				if ($0 ~ /;_PyEval_EvalFrameDefault;(.*;)?(PKCS5_PBKDF2_HMAC|libcrypto[^;]*)(;| )/) e += $NF
			} } END { printf "%.0f %.0f %.0f %.0f\n", t, m, s, e }' "$TMP/pbkdf2.folded")
		echo "# python3.11 pbkdf2: $main of $tot samples reach Py_BytesMain; $ssl_eval of $ssl in OpenSSL have _PyEval_EvalFrameDefault rootward"
		[ "$tot" -gt 0 ] && [ "$ssl" -gt 0 ] ||
			fail "python3.11: $tot samples, $ssl in OpenSSL: $(sort -t' ' -k2 -nr "$TMP/pbkdf2.folded" | head -3)"
		if ! under_wrapper "python3.11's shares: braid under it loads libcrypto's rules" \
			"seconds after the import"; then
			[ "$((100 * main))" -ge "$((95 * tot))" ] ||
				fail "python3.11: only $main of $tot samples reach Py_BytesMain: $(sort -t' ' -k2 -nr "$TMP/pbkdf2.folded" | head -3)"
			[ "$((100 * ssl_eval))" -ge "$((95 * ssl))" ] ||
				fail "python3.11: only $ssl_eval of $ssl OpenSSL samples have _PyEval_EvalFrameDefault rootward: $(sort -t' ' -k2 -nr "$TMP/pbkdf2.folded" | head -3)"
		fi
	fi
	stop_workload "$CHAIN"
	stop_workload "$PBKDF2"
fi

# ---- --no-user, system-wide, --cgroup, --freq, stdout and the default file name --------
start_workload sys "$WORKLOAD_SYSCALL_LOOP" --seconds $((10 * SLOW))
SYS=$WL_PID
start_workload cpu2 "$WORKLOAD_CPU_SPLIT" --seconds $((10 * SLOW))
CPU2=$WL_PID
# cpu_split alone in a cgroup of its own, where a cgroup v2 hierarchy is mounted
cg_root=$(findmnt -t cgroup2 -n -o TARGET 2>/dev/null | head -1 || true)
r_cgroup=
if [ -n "$cg_root" ] && mkdir "$cg_root/braid-test-$$" 2>/dev/null; then
	CGROUP=$cg_root/braid-test-$$
	if echo "$CPU2" >"$CGROUP/cgroup.procs"; then
		record cgroup --duration 1 --cgroup "$CGROUP" -o "$TMP/cgroup.pb.gz"
		r_cgroup=$REC_PID
	else
		echo "skip: cannot move a process into $CGROUP: --cgroup is not tested" >&2
	fi
else
	echo "skip: no writable cgroup v2 hierarchy: --cgroup is not tested" >&2
fi
record sys --duration 2 --pid "$SYS" --format folded -o "$TMP/sys.folded"
r_sys=$REC_PID
record syspb --duration 2 --pid "$SYS" -o "$TMP/syspb.pb.gz"
r_syspb=$REC_PID
record nokernel --duration 2 --pid "$SYS" --pid "$CPU2" --no-kernel --format folded -o "$TMP/nokernel.folded"
r_nokernel=$REC_PID
record nouser --duration 2 --pid "$SYS" --pid "$CPU2" --no-user --format folded -o "$TMP/nouser.folded"
r_nouser=$REC_PID
record all --duration 1 -o "$TMP/all.pb.gz"
r_all=$REC_PID
timeout -k 5 $((60 * SLOW)) "$BRAID" record --duration 1 --pid "$CPU2" --freq 49 -o - >"$TMP/f49.pb.gz" 2>"$TMP/f49.err" &
r_f49=$!
PIDS+=("$r_f49")
mkdir "$TMP/cwd"
(cd "$TMP/cwd" && exec timeout -k 5 $((60 * SLOW)) "$BRAID" record --duration 1 --pid "$CPU2") 2>"$TMP/default.err" &
r_default=$!
PIDS+=("$r_default")

if record_wait sys "$r_sys"; then
	folded_check "$TMP/sys.folded" "syscall_loop, folded"
	n=$(folded_total "$TMP/sys.folded")
	expect_eq "syscall_loop: samples in the summary line and the folded counts" "$n" "$(summary_samples sys)"
	expect_eq "syscall_loop: comms (--pid $SYS)" "syscall_loop" "$(cut -d';' -f1 "$TMP/sys.folded" | sed 's/ [0-9]*$//' | sort -u | tr '\n' ' ' | sed 's/ $//')"
	k=$(folded_leafward "$TMP/sys.folded" braid_syscall_loop '.*sys_write_\[k\]')
	echo "# syscall_loop: $k of $n samples with braid_syscall_loop and a sys_write kernel frame leafward of it"
	[ "$k" -gt 0 ] || fail "no stack with braid_syscall_loop and, leafward, a *sys_write_[k] frame: $(sort -t' ' -k2 -nr "$TMP/sys.folded" | head -5)"
fi
if record_wait syspb "$r_syspb"; then
	raw syspb || true
	expect_eq "the mapping of the kernel's write path" "[kernel.kallsyms]" \
		"$(raw_mapping syspb '^(ksys_write|vfs_write|__x64_sys_write)( |$)')"
	expect_eq "the mapping of braid_syscall_loop" "$(readlink -f "$WORKLOAD_SYSCALL_LOOP")" \
		"$(raw_mapping syspb '^braid_syscall_loop( |$)')"
fi
if record_wait nokernel "$r_nokernel"; then
	folded_check "$TMP/nokernel.folded" "--no-kernel"
	k=$(grep -c '_\[k\]' "$TMP/nokernel.folded" || true)
	expect_eq "--no-kernel: stacks with kernel frames" 0 "$k"
	[ "$(folded_frames "$TMP/nokernel.folded" braid_work_hot)" -gt 0 ] ||
		fail "--no-kernel: no braid_work_hot: $(head -5 "$TMP/nokernel.folded")"
	[ "$(folded_frames "$TMP/nokernel.folded" braid_syscall_loop)" -gt 0 ] ||
		fail "--no-kernel: no braid_syscall_loop: $(head -5 "$TMP/nokernel.folded")"
fi
if record_wait nouser "$r_nouser"; then
	folded_check "$TMP/nouser.folded" "--no-user"
	u=$(folded_not_kernel "$TMP/nouser.folded")
	expect_eq "--no-user: stacks with a frame not suffixed _[k]" 0 "$u"
	w=$(folded_frames "$TMP/nouser.folded" 'braid_.*')
	expect_eq "--no-user: stacks naming braid_work_* or braid_syscall_loop" 0 "$w"
	[ "$(folded_frames "$TMP/nouser.folded" '.*sys_write_\[k\]')" -gt 0 ] ||
		fail "--no-user: no *sys_write_[k] frame from syscall_loop: $(head -5 "$TMP/nouser.folded")"
	# time in user space shows as one [user space] frame under the comm
	grep -Eq '^cpu_split;\[user space\] [0-9]+$' "$TMP/nouser.folded" ||
		fail "--no-user: no cpu_split;[user space] stack for its user-space work: $(head -5 "$TMP/nouser.folded")"
fi
if record_wait all "$r_all"; then
	raw all || true
	pids=$(raw_pids all)
	echo "# system-wide, 1 s: samples from $(echo "$pids" | grep -c .) processes"
	[ "$(echo "$pids" | grep -c .)" -ge 2 ] || fail "system-wide: samples from fewer than 2 processes: $pids"
	for p in "$SYS" "$CPU2"; do
		echo "$pids" | grep -qx "$p" || fail "system-wide: no sample of the running workload $p"
	done
	pprof -symbolize=none -top "$TMP/all.pb.gz" >/dev/null 2>"$TMP/all.top.err" ||
		fail "system-wide: pprof -top failed: $(cat "$TMP/all.top.err")"
fi
if record_wait f49 "$r_f49"; then
	raw f49 || true
	grep -qx "Period: 20408163" "$TMP/f49.raw" ||
		fail "--freq 49 -o -: period is not 1e9/49 = 20408163: $(grep '^Period:' "$TMP/f49.raw")"
fi
if record_wait default "$r_default"; then
	if [ -s "$TMP/cwd/braid-record.pb.gz" ]; then
		pprof -symbolize=none -top "$TMP/cwd/braid-record.pb.gz" >/dev/null 2>&1 ||
			fail "the default output file does not decode"
	else
		fail "no -o: no braid-record.pb.gz in the working directory: $(ls "$TMP/cwd")"
	fi
	expect_contains "no -o: the summary names the file" "$TMP/default.err" "braid-record.pb.gz"
fi
if [ -n "$r_cgroup" ] && record_wait cgroup "$r_cgroup"; then
	raw cgroup || true
	expect_eq "pid labels of the samples (--cgroup holding $CPU2 alone)" "$CPU2" \
		"$(raw_pids cgroup | tr '\n' ' ' | sed 's/ $//')"
	[ "$(raw_samples cgroup)" -gt 0 ] || fail "--cgroup: no samples"
fi
stop_workload "$SYS"
stop_workload "$CPU2"
if [ -n "$CGROUP" ]; then
	rmdir "$CGROUP" || fail "could not remove $CGROUP"
	CGROUP=
fi

# ---- short-lived processes: named although they exit before the drain ------------------
# Ten cpu_split runs of 0.25 s each, one after the other, during 3 s of
# system-wide recording: each lives and dies between two drains, so its
# mappings are read only because the BPF program announced it at its first
# sample. Their samples must be named, not [unknown].
record short --duration 3 --format folded -o "$TMP/short.folded"
r_short=$REC_PID
sleep 0.5 # the program is attached
if [ "$SLOW" -gt 1 ]; then
	# under BRAID_WRAPPER the load alone takes seconds: wait for it
	for _ in $(seq 1 $((200 * SLOW))); do
		grep -q 'sampling' "$TMP/short.err" && break
		sleep 0.05
	done
fi
for _ in $(seq 10); do
	"$WORKLOAD_CPU_SPLIT" --seconds 0.25 >/dev/null
done
if record_wait short "$r_short"; then
	n=$(awk '$0 ~ /^cpu_split;/ { t += $NF } END { printf "%.0f\n", t }' "$TMP/short.folded")
	named=$(grep '^cpu_split;' "$TMP/short.folded" | folded_frames /dev/stdin 'braid_work_(hot|cold)')
	echo "# short-lived cpu_split runs: $named of $n samples named braid_work_*"
	if ! under_wrapper "the short-lived processes' counts and names: braid under it takes" \
		"CPU from them and reads their mappings only after they have exited"; then
		[ "$n" -ge 100 ] || fail "short-lived processes: only $n samples of cpu_split in 10 x 0.25 s"
		[ "$((named * 10))" -ge "$((n * 9))" ] ||
			fail "short-lived processes: $named of $n samples named (expected 90 % or more): $(grep '^cpu_split;' "$TMP/short.folded" | sort -t' ' -k2 -nr | head -3)"
	fi
fi

# ---- a process that execs: its new program's mappings are read ---------------------------
# bash spins 0.3 s (sampled, so announced, and its maps read), sleeps past
# the next drain, then execs cpu_split for 0.3 s, which exits before the
# drain after. Its samples are named only if the exec made braid read the
# maps again while they were there (a shell's `exec` of the real program is
# how containers start). Samples taken before an exec but drained after it
# would be the new program's: the sleep keeps them apart.
if ! under_wrapper "a process that execs: braid under it reads maps after the program exited"; then
	record exec --duration 4 --format folded -o "$TMP/exec.folded"
	r_exec=$REC_PID
	sleep 0.5 # the program is attached
	# start just after a second begins: each program ends in its second
	while [ "$((10#${EPOCHREALTIME#*.}))" -gt 50000 ]; do sleep 0.01; done
	bash -c 'end=$((${EPOCHREALTIME/./} + 300000))
		while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do :; done
		sleep 0.75
		exec "$0" --seconds 0.3 >/dev/null' "$WORKLOAD_CPU_SPLIT"
	if record_wait exec "$r_exec"; then
		n=$(awk '$0 ~ /^cpu_split;/ { t += $NF } END { printf "%.0f\n", t }' "$TMP/exec.folded")
		named=$({ grep '^cpu_split;' "$TMP/exec.folded" || true; } | folded_frames /dev/stdin 'braid_work_(hot|cold)')
		echo "# exec: $named of $n samples of the exec'd cpu_split named braid_work_*"
		[ "$n" -ge 10 ] || fail "exec: only $n samples of cpu_split in 0.3 s at 97 Hz"
		[ "$((named * 10))" -ge "$((n * 9))" ] ||
			fail "exec: $named of $n samples of the exec'd program named (expected 90 % or more): $(sort -t' ' -k2 -nr "$TMP/exec.folded" | head -3)"
	fi
fi

# ---- Node with --perf-basic-prof: JIT frames named from /tmp/perf-PID.map --------------
if command -v node >/dev/null; then
	# V8 inlines braidJsHot into braidJsOuter (on-stack replacement) some
	# seconds into the run: braid under BRAID_WRAPPER starts sampling later
	node_flags=()
	[ "$SLOW" -gt 1 ] && node_flags=(--no-turbo-inlining)
	start_workload node node --perf-basic-prof "${node_flags[@]}" "$WORKLOAD_HOT_JS" $((10 * SLOW))
	NODE=$WL_PID
	NODE_MAP=/tmp/perf-$NODE.map
	sleep 0.5 # V8 compiles braidJsHot in its first calls
	record node --duration 2 --pid "$NODE" --format folded -o "$TMP/node.folded"
	r_node=$REC_PID
	record nodepb --duration 2 --pid "$NODE" -o "$TMP/nodepb.pb.gz"
	r_nodepb=$REC_PID
	if record_wait node "$r_node"; then
		folded_check "$TMP/node.folded" "node, folded"
		n=$(folded_total "$TMP/node.folded")
		j=$(folded_frames "$TMP/node.folded" '.*braidJsHot.*_\[j\]')
		echo "# node: $j of $n samples in a JIT frame braidJsHot"
		if [ "$j" -eq 0 ] || [ "$((j * 2))" -lt "$n" ]; then
			fail "node: $j of $n samples in a braidJsHot_[j] frame, expected most: $(sort -t' ' -k2 -nr "$TMP/node.folded" | head -3)"
		fi
	fi
	if record_wait nodepb "$r_nodepb"; then
		raw nodepb || true
		expect_eq "the mapping of braidJsHot" "[jit]" "$(raw_mapping nodepb 'braidJsHot')"
	fi
	stop_workload "$NODE"
	rm -f "$NODE_MAP"
	NODE_MAP=
else
	echo "skip: node not found: JIT frames from a perf map are not tested" >&2
fi

# ---- SIGINT and SIGTERM end a recording without --duration normally --------------------
start_workload sig "$WORKLOAD_CPU_SPLIT" --seconds $((10 * SLOW))
SIG=$WL_PID
# timeout sends the signal after 3 s and, with --preserve-status, exits with
# braid's status; it also gives braid default dispositions, as a terminal's
# Ctrl-C finds them (a shell's background job ignores SIGINT).
declare -A r_sig
for s in INT TERM; do
	timeout --preserve-status -k $((15 * SLOW)) -s "$s" $((3 * SLOW)) "$BRAID" record --pid "$SIG" \
		-o "$TMP/sig$s.pb.gz" 2>"$TMP/sig$s.err" &
	r_sig[$s]=$!
	PIDS+=("$!")
done
for s in INT TERM; do
	if record_wait "sig$s" "${r_sig[$s]}"; then
		raw "sig$s" || true
		n=$(raw_samples "sig$s")
		[ "$n" -gt 0 ] || fail "SIG$s: no sample in ~3 s"
		expect_eq "SIG$s: samples in the summary line and in the file" "$n" "$(summary_samples "sig$s")"
	fi
done
stop_workload "$SIG"

# ---- bad arguments: exit 2, a message naming the option, no file ------------------------
sleep 0 &
gone=$!
wait "$gone"
# bad_arg OPTION ARGS...: braid record ARGS exits 2 and names OPTION
bad_arg() {
	local opt=$1 rc=0
	shift
	rm -f "$TMP/bad.pb.gz"
	timeout -k 5 $((30 * SLOW)) "$BRAID" record "$@" -o "$TMP/bad.pb.gz" >"$TMP/bad.out" 2>"$TMP/bad.err" || rc=$?
	if [ "$rc" -ne 2 ]; then
		fail "braid record $*: exit $rc, expected 2: $(cat "$TMP/bad.err")"
	fi
	grep -qF -- "$opt" "$TMP/bad.err" || fail "braid record $*: the message does not name $opt: $(cat "$TMP/bad.err")"
	[ ! -e "$TMP/bad.pb.gz" ] || fail "braid record $*: wrote a file"
}
bad_arg --freq --freq 0 --duration 1
bad_arg --freq --freq 100000 --duration 1
bad_arg --freq --freq abc --duration 1
bad_arg --duration --duration -1
bad_arg --duration --duration x
bad_arg --pid --pid abc --duration 1
bad_arg --pid --pid "$gone" --duration 1
bad_arg --format --format bogus --duration 1
bad_arg --bogus --bogus --duration 1

# ---- without privileges: exit 1 and say what is missing --------------------------------
if command -v setpriv >/dev/null &&
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BRAID" --help >/dev/null 2>&1; then
	rc=0
	timeout -k 5 $((30 * SLOW)) setpriv --reuid=65534 --regid=65534 --clear-groups "$BRAID" record --duration 1 \
		-o - >/dev/null 2>"$TMP/nopriv.err" || rc=$?
	expect_eq "braid record as nobody: exit status ($(cat "$TMP/nopriv.err"))" 1 "$rc"
	grep -Eqi 'root|CAP_BPF|CAP_PERFMON|privilege|permission' "$TMP/nopriv.err" ||
		fail "braid record as nobody: the message does not say what is missing: $(cat "$TMP/nopriv.err")"
else
	echo "skip: cannot run $BRAID as nobody here: the unprivileged case is not tested" >&2
fi

finish
