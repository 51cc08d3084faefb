#!/usr/bin/env bash
# Every benchmark of braid in one go, and one table of its figures beside its
# peers', each pair measured side by side in the same run:
#
#   pprof decode    bench/pprof.sh: braid's decoder vs Go's profile.Parse
#   JFR decode      bench/jfr.sh: braid's JFR reader vs Pyroscope's converter
#                   (jfr-parser's pprof.ParseJFR)
#   store           build/bench_store: SDK profiles committed/s, bucket rows/s
#   ingest          bench/ingest.sh: committed requests/s, p50/p99 latency
#   record          bench/record.sh: a workload's slowdown, the profiler's CPU
#                   (its eBPF program's too) and RSS, the unwind rules' memory,
#                   braid record (--unwind cfi and fp) vs perf record -a -g and
#                   --call-graph dwarf (root)
#   merge           build/bench_merge: the splice vs a plain copy of the stacks
#   unwind tables   build/bench_unwind_tables: the unwind rules of every file
#                   this machine's processes map, MiB and build time (root)
#   merge accuracy  bench/merge_accuracy.sh: TVD of the merged profile and of
#                   the SDK alone from the eBPF truth (root)
#   python accuracy bench/python_accuracy.sh: TVD of the merged Python profile
#                   against py-spy --native, and OpenSSL under its caller (root)
#   java accuracy   bench/java_accuracy.sh: per-method TVD of the merged Java
#                   profile against eBPF with frame pointers and a perf map (root)
#   peer            bench/peer.sh: braid agent beside the OpenTelemetry eBPF
#                   profiler, both sending to a real Pyroscope: CPU, RSS +
#                   maps, and the TVD of what each sees (root, and a Pyroscope
#                   binary in PYROSCOPE_BIN: skipped without; ~25 minutes)
#   soak            bench/soak.sh: the agent for 30 minutes (root; only with
#                   --soak)
#
# Each row: benchmark, metric, braid, peer, ratio (braid / peer), target,
# verdict (ok, BELOW or ABOVE the target, "-" without one), and the command
# that reproduces it on its own. Without root the rows of record.sh,
# merge_accuracy.sh, python_accuracy.sh and soak.sh are skipped with the
# reason.
#
#   bash bench/run.sh                    # from anywhere; ~10 minutes (+25 with the peer)
#   bash bench/run.sh --quick            # each benchmark's smoke run (~30 s)
#   bash bench/run.sh --json out.json    # the table as JSON too
#
# Options: --quick (every benchmark in its quick mode), --json FILE, --soak
# (include bench/soak.sh: MINUTES, default 30; 2 with --quick), --build
# (run scripts/build.sh first even if build/ exists; it runs anyway when
# build/ or a benchmark binary is missing). Environment: BUILD_DIR (default
# build/), and what each benchmark reads (ROUNDS, FREQ, BENCH_DIR, ...:
# see each script's header; ROUNDS reaches all three that read it).
# Each benchmark's own output goes to BUILD_DIR/bench-run/NAME.{out,err}.
# Exits 1 when a benchmark fails to run (or the build fails), 2 on a bad
# option; never because a target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
case $BUILD_DIR in
/*) ;;
*) BUILD_DIR=$PWD/$BUILD_DIR ;; # the benchmarks run from the repo root
esac
export BUILD_DIR

quick=${QUICK:-${BENCH_QUICK:-}}
[ "$quick" = 0 ] && quick=
json_out=
soak=
force_build=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--soak) soak=1 ;;
	--build) force_build=1 ;;
	--json)
		[ $# -ge 2 ] || { echo "bench/run.sh: --json wants a file" >&2; exit 2; }
		json_out=$2
		shift
		;;
	--json=*) json_out=${1#--json=} ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bash bench/run.sh [--quick] [--json FILE] [--soak] [--build]" >&2
		exit 2
		;;
	esac
	shift
done
# the JSON file is written after the benchmarks have changed directory
if [ -n "$json_out" ]; then
	case $json_out in
	/*) ;;
	*) json_out=$PWD/$json_out ;;
	esac
	: >"$json_out" || exit 2
fi
command -v jq >/dev/null || { echo "bench/run.sh needs jq (scripts/deps.sh)" >&2; exit 1; }
cd "$SRC_DIR"
# the benchmarks' own quick switches come from run.sh only
unset QUICK BENCH_QUICK

# paths as a person at the repo root types them
rel() {
	case $1 in
	"$SRC_DIR"/*) echo "${1#"$SRC_DIR"/}" ;;
	*) echo "$1" ;;
	esac
}
B=$(rel "$BUILD_DIR")

note() {
	echo "# run.sh: $*" >&2
}

# commas 120000: 120,000
commas() {
	echo "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'
}

# ---- build -------------------------------------------------------------------
need_build=$force_build
[ -d "$BUILD_DIR" ] || need_build=1
for bin in braid bench_pprof_decode bench_jfr_decode bench_store bench_ingest_load bench_merge \
	bench_unwind_tables; do
	[ -x "$BUILD_DIR/$bin" ] || need_build=1
done
if [ -n "$need_build" ]; then
	note "building in $B (scripts/build.sh)"
	bash scripts/build.sh || { echo "bench/run.sh: the build failed" >&2; exit 1; }
else
	# what braid and the benchmark programs are built from (not tests/, fuzz/)
	newer=$(find "$SRC_DIR" \( -path "$SRC_DIR/build*" -o -path "$SRC_DIR/tests" -o -path "$SRC_DIR/fuzz" \
		-o -path "$SRC_DIR/examples" -o -name node_modules -o -name '.*' \) -prune -o \
		\( -name '*.c' -o -name '*.h' -o -name CMakeLists.txt \) -newer "$BUILD_DIR/braid" -print \
		2>/dev/null | head -1)
	[ -z "$newer" ] || note "sources are newer than $B/braid (e.g. $(rel "$newer")): --build rebuilds"
fi

# ---- the machine ---------------------------------------------------------------
cc_path=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
m_cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
m_cores=$(nproc)
m_mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
m_kernel="$(uname -s) $(uname -r) $(uname -m)"
m_os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)
m_os=${m_os:-unknown}
[ -r /etc/debian_version ] && m_os="$m_os, debian_version $(cat /etc/debian_version)"
m_cc=$("${cc_path:-cc}" --version 2>/dev/null | head -1 || echo unknown)
m_build=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
m_go=$(bash "$SRC_DIR/scripts/go.sh" env GOVERSION 2>/dev/null || true)
m_node=$(node --version 2>/dev/null || true)
m_perf=$(perf --version 2>/dev/null || true)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

LOG=$BUILD_DIR/bench-run
rm -rf "$LOG"
mkdir -p "$LOG"
ROWS=$LOG/rows.tsv
: >"$ROWS"
: >"$LOG/runs.tsv"
status=0

# row BENCH METRIC BRAID PEER PEER_NAME TARGET_KIND TARGET_VALUE TARGET_TEXT COMMAND
# appends one figure. BRAID and PEER are plain numbers or empty; the ratio is
# BRAID / PEER when both are positive (or BRAID is 0). TARGET_KIND: min (BRAID
# >= value), max (BRAID <= value), lt (BRAID < value), ratio_min (ratio >=
# value), ratio_max (ratio <= value), lt_peer (BRAID < PEER), none.
row() {
	local v
	v=$(awk -v b="$3" -v p="$4" -v k="$6" -v t="$7" 'BEGIN {
		r = (b != "" && p != "" && p + 0 > 0 && b + 0 >= 0) ? sprintf("%.6g", b / p) : ""
		if (b == "") v = "-"
		else if (k == "min") v = (b + 0 >= t + 0) ? "ok" : "BELOW"
		else if (k == "max") v = (b + 0 <= t + 0) ? "ok" : "ABOVE"
		else if (k == "lt") v = (b + 0 < t + 0) ? "ok" : "ABOVE"
		else if (k == "ratio_min") v = (r == "") ? "-" : (r + 0 >= t + 0) ? "ok" : "BELOW"
		else if (k == "ratio_max") v = (r == "") ? "-" : (r + 0 <= t + 0) ? "ok" : "ABOVE"
		else if (k == "lt_peer") v = (p == "") ? "-" : (b + 0 < p + 0) ? "ok" : "ABOVE"
		else v = "-"
		printf "%s\t%s", r, v
	}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${v%%$'\t'*}" \
		"$8" "${v#*$'\t'}" "$9" >>"$ROWS"
}

# jq_value FILE EXPR: EXPR of the JSON in FILE as text, "" for null (row's
# "no figure")
jq_value() {
	jq -r "$2 | if . == null then \"\" else tostring end" "$1"
}

# skip_row BENCH REASON COMMAND / fail_row BENCH WHAT COMMAND
skip_row() {
	printf '%s\tskipped: %s\t\t\t\t\t\tskip\t%s\n' "$1" "$2" "$3" >>"$ROWS"
}
fail_row() {
	printf '%s\tfailed: %s\t\t\t\t\t\tFAIL\t%s\n' "$1" "$2" "$3" >>"$ROWS"
}

# run NAME COMMAND...: runs one benchmark, its output to $LOG/NAME.out and
# .err; returns its exit status. The load average before it is kept.
run() {
	local name=$1 rc=0 t0 load
	shift
	load=$(cut -d' ' -f1 /proc/loadavg)
	note "$name: $* (load $load)"
	t0=$(date +%s)
	"$@" >"$LOG/$name.out" 2>"$LOG/$name.err" </dev/null || rc=$?
	printf '%s\t%s\t%s\t%s\n' "$name" "$load" "$(($(date +%s) - t0))" "$rc" >>"$LOG/runs.tsv"
	note "$name: exit $rc after $(($(date +%s) - t0)) s"
	return "$rc"
}

# failed NAME RC COMMAND [BENCH]: the row of a benchmark that did not run
# through: a skip (77, with its reason) or a failure
failed() {
	local name=$1 rc=$2 cmd=$3 bench=${4:-$1} why
	if [ "$rc" -eq 77 ]; then
		why=$(cat "$LOG/$name.out" "$LOG/$name.err" | sed -n 's/^skip: //p' | head -1)
		skip_row "$bench" "${why:-exit 77}" "$cmd"
	else
		fail_row "$bench" "exit $rc, see $(rel "$LOG/$name").err" "$cmd"
		status=1
		tail -5 "$LOG/$name.err" | sed "s/^/# $name: /" >&2
	fi
}

is_root=
[ "$(id -u)" -eq 0 ] && is_root=1

# ---- pprof decode --------------------------------------------------------------
if [ -n "$quick" ]; then
	cmd="BENCH_QUICK=1 bash bench/pprof.sh"
	rc=0; run pprof env BENCH_QUICK=1 bash bench/pprof.sh || rc=$?
else
	cmd="bash bench/pprof.sh"
	rc=0; run pprof bash bench/pprof.sh || rc=$?
fi
if [ "$rc" -eq 0 ]; then
	# file raw_bytes samples braid_MB/s go_MB/s ratio braid_samp/s go_samp/s
	read -r g_samples g_bmb g_gmb g_bsps g_gsps f_n f_bmb f_gmb <<<"$(awk '
		NF == 8 && $1 ~ /\.gz$/ && $4 + 0 > 0 && $5 + 0 > 0 {
			if ($1 == "generated.pb.gz") { print_g = $3 " " $4 " " $5 " " $7 " " $8; next }
			n++; raw += $2; tb += $2 / $4; tg += $2 / $5
		}
		END { printf "%s %d %s %s\n", print_g == "" ? "- - - - -" : print_g, n,
			n ? raw / tb : "-", n ? raw / tg : "-" }' "$LOG/pprof.out")"
	if [ "$g_bmb" = - ]; then
		fail_row pprof "no row for generated.pb.gz in $(rel "$LOG/pprof").out" "$cmd"
		status=1
	else
		gs=$(commas "$g_samples")
		row "pprof decode" "MB/s, generated profile ($gs samples)" "$g_bmb" "$g_gmb" "Go" \
			ratio_min 3 "≥ 3×" "$cmd"
		row "pprof decode" "samples/s, generated profile" "$g_bsps" "$g_gsps" "Go" \
			ratio_min 3 "≥ 3×" "$cmd"
		if [ "$f_n" -gt 0 ]; then
			row "pprof decode" "MB/s, the $f_n fixtures together" "$f_bmb" "$f_gmb" "Go" \
				ratio_min 3 "≥ 3×" "$cmd"
		fi
	fi
else
	failed pprof "$rc" "$cmd" "pprof decode"
fi

# ---- JFR decode ----------------------------------------------------------------
if [ -n "$quick" ]; then
	cmd="BENCH_QUICK=1 bash bench/jfr.sh"
	rc=0; run jfr env BENCH_QUICK=1 bash bench/jfr.sh || rc=$?
else
	cmd="bash bench/jfr.sh"
	rc=0; run jfr bash bench/jfr.sh || rc=$?
fi
if [ "$rc" -eq 0 ]; then
	# file bytes braid_MB/s go_MB/s ratio
	read -r j_n j_bmb j_gmb m_bmb m_gmb <<<"$(awk '
		NF == 5 && $3 + 0 > 0 && $4 + 0 > 0 {
			if ($1 == "fixtures-together") { t = $3 " " $4; next }
			if ($1 == "all-chunks.jfr") { a = $3 " " $4; next }
			n++
		}
		END { printf "%d %s %s\n", n, t == "" ? "- -" : t, a == "" ? "- -" : a }' "$LOG/jfr.out")"
	if [ "$j_bmb" = - ]; then
		fail_row jfr "no fixtures-together row in $(rel "$LOG/jfr").out" "$cmd"
		status=1
	else
		row "JFR decode" "MB/s, the $j_n recordings one by one" "$j_bmb" "$j_gmb" \
			"Pyroscope's converter" ratio_min 2 "≥ 2×" "$cmd"
		[ "$m_bmb" = - ] || row "JFR decode" "MB/s, all in one multi-chunk recording" "$m_bmb" \
			"$m_gmb" "Pyroscope's converter" ratio_min 2 "≥ 2×" "$cmd"
	fi
else
	failed jfr "$rc" "$cmd" "JFR decode"
fi

# ---- store ---------------------------------------------------------------------
cmd="$B/bench_store${quick:+ --quick}"
rc=0; run store "$BUILD_DIR/bench_store" ${quick:+--quick} || rc=$?
if [ "$rc" -eq 0 ]; then
	# figure sync=MODE value target verdict
	fig() {
		awk -v f="$1" -v s="sync=$2" '$1 == f && $2 == s { print $3; exit }' "$LOG/store.out"
	}
	# store_rows FIGURE METRIC MIN TARGET: its rows at both sync modes
	store_rows() {
		local sync label
		for sync in normal full; do
			label=$sync
			[ "$sync" = normal ] && label="normal, the default"
			row store "$2, sync=$label" "$(fig "$1" $sync)" "" "" min "$3" "$4" "$cmd"
		done
	}
	store_rows sdk_profiles_per_s "SDK profiles committed/s" 5000 "≥ 5,000/s"
	store_rows ebpf_rows_per_s "eBPF bucket rows/s" 200000 "≥ 200,000/s"
else
	failed store "$rc" "$cmd"
fi

# ---- ingest --------------------------------------------------------------------
cmd="bash bench/ingest.sh${quick:+ --quick}"
rc=0; run ingest bash bench/ingest.sh ${quick:+--quick} || rc=$?
if [ "$rc" -eq 0 ]; then
	# connections req/s p50_ms p99_ms p99.9_ms 200s stored errors target
	n=0
	while read -r conns rate p50 p99 _; do
		n=$((n + 1))
		row ingest "committed requests/s, $conns connection(s)" "$rate" "" "" min 5000 "≥ 5,000/s" "$cmd"
		row ingest "p50 latency, ms, $conns connection(s)" "$p50" "" "" none "" "—" "$cmd"
		row ingest "p99 latency, ms, $conns connection(s)" "$p99" "" "" lt 5 "< 5 ms" "$cmd"
	done < <(awk '$1 ~ /^[0-9]+$/ && NF >= 9' "$LOG/ingest.out")
	if [ "$n" -eq 0 ]; then
		fail_row ingest "no figure row in $(rel "$LOG/ingest").out" "$cmd"
		status=1
	fi
else
	failed ingest "$rc" "$cmd"
fi

# ---- record --------------------------------------------------------------------
cmd="bash bench/record.sh${quick:+ --quick}"
if [ -z "$is_root" ]; then
	skip_row record "needs root (braid record and perf record -a sample every CPU)" "$cmd"
else
	rc=0; run record bash bench/record.sh --json ${quick:+--quick} || rc=$?
	if [ "$rc" -eq 0 ]; then
		R=$LOG/record.out
		j() { jq_value "$R" "$1"; }
		freq=$(j .freq_hz)
		wl=$(j .workload.name)
		row record "workload ($wl) slowdown, wall %, $freq Hz" "$(j .modes.braid.slowdown_pct)" \
			"$(j .modes.perf.slowdown_pct)" perf lt_peer "" "< perf's" "$cmd"
		row record "workload slowdown, wall %, against perf --call-graph dwarf" \
			"$(j .modes.braid.slowdown_pct)" "$(j .modes.perf_dwarf.slowdown_pct)" "perf dwarf" \
			none "" "—" "$cmd"
		row record "workload slowdown, wall %, braid --unwind fp" "$(j .modes.braid_fp.slowdown_pct)" \
			"$(j .modes.perf.slowdown_pct)" perf none "" "—" "$cmd"
		row record "workload slowdown, its CPU time %" "$(j .modes.braid.cpu_slowdown_pct)" \
			"$(j .modes.perf.cpu_slowdown_pct)" perf none "" "—" "$cmd"
		row record "workload slowdown, its CPU time %, against perf --call-graph dwarf" \
			"$(j .modes.braid.cpu_slowdown_pct)" "$(j .modes.perf_dwarf.cpu_slowdown_pct)" "perf dwarf" \
			none "" "—" "$cmd"
		row record "profiler CPU while sampling, % of a core" "$(j .modes.braid.profiler_cpu_pct)" \
			"$(j .modes.perf.profiler_cpu_pct)" perf max 0.5 "≤ 0.5 %" "$cmd"
		row record "profiler CPU while sampling, % of a core, against perf --call-graph dwarf" \
			"$(j .modes.braid.profiler_cpu_pct)" "$(j .modes.perf_dwarf.profiler_cpu_pct)" "perf dwarf" \
			none "" "—" "$cmd"
		row record "eBPF program CPU over braid's life, % of a core" "$(j .modes.braid.bpf_cpu_pct)" \
			"$(j .modes.braid_fp.bpf_cpu_pct)" "--unwind fp" none "" "—" "$cmd"
		row record "profiler CPU while sampling with its eBPF program's, % of a core" \
			"$(j .modes.braid.total_cpu_pct)" "$(j .modes.braid_fp.total_cpu_pct)" "--unwind fp" \
			max 0.5 "≤ 0.5 %" "$cmd"
		row record "profiler CPU over its life, s" "$(j .modes.braid.profiler_life_cpu_s)" \
			"$(j .modes.perf.profiler_life_cpu_s)" perf none "" "—" "$cmd"
		row record "profiler peak RSS, MiB" "$(j .modes.braid.profiler_rss_mib)" \
			"$(j .modes.perf.profiler_rss_mib)" perf max 64 "≤ 64 MiB" "$cmd"
		row record "unwind rules, kernel maps + user space, MiB ($(j .modes.braid.unwind_files_loaded) files)" \
			"$(j .modes.braid.unwind_mib)" "" "" max 64 "≤ 64 MiB" "$cmd"
		row record "eBPF maps, all, MiB" "$(j .modes.braid.bpf_maps_mib)" "$(j .modes.braid_fp.bpf_maps_mib)" \
			"--unwind fp" none "" "—" "$cmd"
		row record "profile written, KiB/s" "$(j .modes.braid.output_kib_per_s)" \
			"$(j .modes.perf.output_kib_per_s)" perf none "" "—" "$cmd"
		row record "profile written, KiB/s, against perf --call-graph dwarf" \
			"$(j .modes.braid.output_kib_per_s)" "$(j .modes.perf_dwarf.output_kib_per_s)" "perf dwarf" \
			none "" "—" "$cmd"
	else
		failed record "$rc" "$cmd"
	fi
fi

# ---- merge ---------------------------------------------------------------------
cmd="$B/bench_merge${quick:+ --quick}"
rc=0; run merge "$BUILD_DIR/bench_merge" ${quick:+--quick} || rc=$?
if [ "$rc" -eq 0 ]; then
	# phase ms stacks/s samples/s target
	ph() {
		awk -v p="$1" -v c="$2" '$1 == p && NF == 5 { print $c; exit }' "$LOG/merge.out"
	}
	stacks=$(sed -n 's/^# window: \([0-9]*\) distinct eBPF stacks.*/\1/p' "$LOG/merge.out")
	stacks=$(commas "$stacks")
	row merge "splice, eBPF stacks/s ($stacks stacks)" "$(ph splice 3)" "$(ph copy 3)" "plain copy" \
		min 1000000 "≥ 1,000,000/s" "$cmd"
	row merge "splice, samples/s" "$(ph splice 4)" "$(ph copy 4)" "plain copy" none "" "—" "$cmd"
	row merge "encode to gzipped pprof, stacks/s" "$(ph encode 3)" "" "" none "" "—" "$cmd"
else
	failed merge "$rc" "$cmd"
fi

# ---- unwind tables -------------------------------------------------------------
# The unwind rules (collector/cfi.c) of every file this machine's processes
# map executable, each file once: what the tables weigh in user space and
# what building them all costs. Other users' files are closed to a user.
cmd="$B/bench_unwind_tables"
if [ -z "$is_root" ]; then
	skip_row "unwind tables" "needs root (every process's files)" "$cmd"
else
	rc=0; run unwind "$BUILD_DIR/bench_unwind_tables" || rc=$?
	if [ "$rc" -eq 0 ]; then
		uw() { awk -v k="$1" '$1 == k { print $2; exit }' "$LOG/unwind.out"; }
		row "unwind tables" "MiB of rules, this machine ($(uw files) files of $(uw processes) processes)" \
			"$(uw table_mib)" "" "" max 64 "≤ 64 MiB" "$cmd"
		row "unwind tables" "seconds to build them all" "$(uw build_seconds)" "" "" none "" "—" "$cmd"
		if [ -n "$(uw kernel_maps_mib)" ]; then
			# what braid's sampler holds for them all: the maps as it sizes them
			row "unwind tables" "MiB in braid's BPF maps and unwind.c for every process ($(uw unwind_files_loaded) files, $(uw unwind_rows_mib) MiB of rows used)" \
				"$(awk -v k="$(uw kernel_maps_mib)" -v u="$(uw unwind_user_mib)" 'BEGIN { printf "%.1f", k + u }')" \
				"" "" max 64 "≤ 64 MiB" "$cmd"
		fi
	else
		failed unwind "$rc" "$cmd" "unwind tables"
	fi
fi

# ---- merge accuracy ------------------------------------------------------------
cmd="bash bench/merge_accuracy.sh${quick:+ --quick}"
if [ -z "$is_root" ]; then
	skip_row "merge accuracy" "needs root (braid record samples every CPU)" "$cmd"
else
	rc=0; run accuracy bash bench/merge_accuracy.sh --json ${quick:+--quick} || rc=$?
	if [ "$rc" -eq 0 ]; then
		A=$LOG/accuracy.out
		j() { jq_value "$A" "$1"; }
		nr=$(j .rounds)
		what="median of $nr rounds"
		[ "$nr" = 1 ] && what="1 round"
		row "merge accuracy" "TVD from the eBPF truth ($what)" "$(j .median.tvd_merged)" \
			"$(j .median.tvd_naive)" "SDK alone" max 0.10 "≤ 0.10" "$cmd"
		row "merge accuracy" "PKCS5_PBKDF2_HMAC under hashPassword, %" \
			"$(j .median.pbkdf2_under_hash_pct.merged)" "$(j .median.pbkdf2_under_hash_pct.truth)" \
			"truth" none "" "—" "$cmd"
	else
		failed accuracy "$rc" "$cmd" "merge accuracy"
	fi
fi

# ---- Python merge accuracy -------------------------------------------------------
cmd="bash bench/python_accuracy.sh${quick:+ --quick}"
if [ -z "$is_root" ]; then
	skip_row "python accuracy" "needs root (braid record, py-spy --pid)" "$cmd"
else
	rc=0; run pyaccuracy bash bench/python_accuracy.sh --json ${quick:+--quick} || rc=$?
	if [ "$rc" -eq 0 ]; then
		A=$LOG/pyaccuracy.out
		pj() { jq_value "$A" "$1"; }
		nr=$(pj length)
		row "python accuracy" "TVD from py-spy --native, the worst of $nr rounds" \
			"$(pj '[.[].tvd.merged] | max | . * 1000 | round / 1000')" \
			"$(pj '[.[].tvd.sdk] | max | . * 1000 | round / 1000')" "SDK alone" max 0.05 "≤ 0.05" "$cmd"
		row "python accuracy" "PKCS5_PBKDF2_HMAC under hash_password, %, the worst round" \
			"$(pj '[.[].under["hash_password=^PKCS5_PBKDF2_HMAC$"].merged] | min * 1000 | round / 10')" \
			"$(pj '[.[].under["hash_password=^PKCS5_PBKDF2_HMAC$"].naive] | max * 1000 | round / 10')" \
			"naive, best round" min 90 "≥ 90 %" "$cmd"
	else
		failed pyaccuracy "$rc" "$cmd" "python accuracy"
	fi
fi

# ---- java accuracy ---------------------------------------------------------------
cmd="bash bench/java_accuracy.sh${quick:+ --quick}"
if [ -z "$is_root" ]; then
	skip_row "java accuracy" "needs root (braid record of a JVM)" "$cmd"
else
	rc=0; run javaaccuracy bash bench/java_accuracy.sh --json ${quick:+--quick} || rc=$?
	if [ "$rc" -eq 0 ]; then
		A=$LOG/javaaccuracy.out
		jj() { jq_value "$A" "$1"; }
		nr=$(jj '.rounds | length')
		row "java accuracy" "per-method TVD from eBPF with frame pointers and a perf map, the worst of $nr rounds" \
			"$(jj '[.rounds[].tvd_merged] | max | . * 1000 | round / 1000')" \
			"$(jj '[.rounds[].tvd_sdk] | max | . * 1000 | round / 1000')" "SDK alone" max 0.05 "≤ 0.05" "$cmd"
	else
		failed javaaccuracy "$rc" "$cmd" "java accuracy"
	fi
fi

# ---- beside the OTel eBPF profiler -----------------------------------------------
cmd="PYROSCOPE_BIN=... bash bench/peer.sh${quick:+ --quick}"
if [ -z "$is_root" ]; then
	skip_row peer "needs root (both agents sample every CPU)" "$cmd"
elif [ -z "${PYROSCOPE_BIN:-}" ] && ! command -v pyroscope >/dev/null; then
	skip_row peer "no Grafana Pyroscope binary: set PYROSCOPE_BIN (docs/peer.md)" "$cmd"
else
	rc=0; run peer bash bench/peer.sh --json ${quick:+--quick} || rc=$?
	if [ "$rc" -eq 0 ]; then
		A=$LOG/peer.out
		pe() { jq_value "$A" "$1"; }
		for hz in $(pe '.cost | keys[]'); do
			h=".cost[\"$hz\"].setups"
			row peer "total CPU (process + BPF) in the window, ms, $hz Hz" \
				"$(pe "$h.braid.braid.total_cpu_ms")" "$(pe "$h.otel.otel.total_cpu_ms")" \
				"OTel profiler" ratio_max 1 "≤ 1×" "$cmd"
			row peer "RSS + BPF maps, MiB, $hz Hz" \
				"$(pe "$h.braid.braid.memory_kib / 1024 | . * 10 | round / 10")" \
				"$(pe "$h.otel.otel.memory_kib / 1024 | . * 10 | round / 10")" \
				"OTel profiler" ratio_max 0.5 "≤ 0.5×" "$cmd"
		done
		for app in node python; do
			s=".seen[] | select(.app == \"$app\") | .sources"
			row peer "$app: TVD of the function shares from the truth" \
				"$(pe "$s.braid.tvd | . * 1000 | round / 1000")" \
				"$(pe "$s.otel.tvd | . * 1000 | round / 1000")" "OTel profiler" lt_peer "" \
				"< OTel's" "$cmd"
		done
	else
		failed peer "$rc" "$cmd"
	fi
fi

# ---- soak ----------------------------------------------------------------------
soak_minutes=${MINUTES:-30}
[ -n "$quick" ] && soak_minutes=2 # minute 1 -> 2: one step of growth
cmd="MINUTES=$soak_minutes bash bench/soak.sh"
[ "$soak_minutes" = 30 ] && cmd="bash bench/soak.sh"
if [ -z "$soak" ]; then
	skip_row soak "$soak_minutes min of the agent: bench/run.sh --soak includes it" "$cmd"
elif [ -z "$is_root" ]; then
	skip_row soak "needs root (braid agent samples every CPU)" "$cmd"
else
	rc=0; run soak env MINUTES="$soak_minutes" bash bench/soak.sh || rc=$?
	# its last line is the JSON of the figures, whether its checks passed
	# or not (it exits 1 when one failed: the rows then say which)
	if tail -1 "$LOG/soak.out" | jq -e .rss_kib >/dev/null 2>&1; then
		read -r g_other g_half f_grow r1 acc <<<"$(tail -1 "$LOG/soak.out" | jq -r '
			def pct(a; b): 100 * (b - a) / a | . * 100 | round / 100;
			(.minutes >= 6 | if . then 4 else 0 end) as $b | (.minutes / 2 | floor) as $h
			| (.fds[$b:$h + 1] | max) as $fmax
			| [pct(.rss_kib[$b] - .sqlite_kib[$b]; .rss_kib[-1] - .sqlite_kib[-1]),
			   pct(.rss_kib[$h]; .rss_kib[-1]), .fds[-1] - $fmax,
			   (.rss_kib[-1] / 1024 | . * 10 | round / 10),
			   (if .synthetic_ok == .synthetic_stored and .synthetic_stored + .app_stored == .upstream_sdk
			       and .outbox == 0 and .dead_letters == 0 then 0 else 1 end)]
			| map(tostring) | join(" ")')"
		row soak "agent RSS without SQLite's heap, growth from minute 5, %" "$g_other" "" "" \
			max 10 "≤ 10 %" "$cmd"
		row soak "agent RSS growth over the second half, %" "$g_half" "" "" max 5 "≤ 5 %" "$cmd"
		row soak "agent open fds growth over the second half" "$f_grow" "" "" max 0 "≤ 0" "$cmd"
		row soak "agent RSS at the end, MiB" "$r1" "" "" none "" "—" "$cmd"
		row soak "profiles not accounted for (0: every 200 stored and forwarded)" "$acc" "" "" \
			max 0 "0" "$cmd"
	else
		failed soak "$rc" "$cmd"
	fi
fi

# ---- the table -----------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "braid benchmarks$([ -n "$quick" ] && echo " (--quick: smoke runs, not figures to quote)"), $started"
echo "machine: $m_cpu, $m_cores cores, $m_mem; $m_kernel; $m_os; $m_cc${m_build:+ ($m_build)}"
echo "load average: $load_start at the start, $load_end at the end; before each:" \
	"$(awk -F'\t' '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$LOG/runs.tsv")"
echo
# bench metric braid peer peer_name ratio target verdict command; bytes, not
# characters, under LC_ALL=C: the widths count UTF-8 continuation bytes out
LC_ALL=C awk -F'\t' '
function num(x,   a, s, i, neg) {
	if (x == "") return "—"
	a = x + 0; neg = a < 0; if (neg) a = -a
	if (a >= 1000) {
		s = sprintf("%.0f", a); i = length(s) - 3
		while (i > 0) { s = substr(s, 1, i) "," substr(s, i + 1); i -= 3 }
	} else if (a >= 10) s = sprintf("%.1f", a)
	else if (a >= 1) s = sprintf("%.2f", a)
	else if (a == 0) s = "0"
	else s = sprintf("%.3f", a)
	return (neg ? "-" : "") s
}
{
	n++
	c[n, 1] = $1; c[n, 2] = $2; c[n, 3] = num($3)
	c[n, 4] = $4 == "" ? "—" : num($4) " (" $5 ")"
	c[n, 5] = $6 == "" ? "—" : sprintf("%.2f×", $6)
	c[n, 6] = $7; c[n, 7] = $8; c[n, 8] = $9
	if ($8 == "skip" || $8 == "FAIL") { c[n, 3] = c[n, 4] = c[n, 5] = c[n, 6] = "" }
}
END {
	split("benchmark metric braid peer ratio target verdict command", h, " ")
	for (k = 1; k <= 8; k++) { c[0, k] = h[k] }
	for (i = 0; i <= n; i++) for (k = 1; k <= 8; k++) {
		# display width: count UTF-8 characters, not bytes
		l = length(c[i, k]); t = c[i, k]; l -= gsub(/[\200-\277]/, "", t)
		if (l > w[k]) w[k] = l
		len[i, k] = l
	}
	for (i = 0; i <= n; i++) {
		line = ""
		for (k = 1; k <= 8; k++) {
			pad = sprintf("%" (w[k] - len[i, k]) "s", "")
			# figures right-aligned, text left-aligned
			cell = (i > 0 && k >= 3 && k <= 5) ? pad c[i, k] : c[i, k] (k < 8 ? pad : "")
			line = line (k > 1 ? "  " : "") cell
		}
		print line
	}
}' "$ROWS"
echo
if awk -F'\t' '$1 == "record" && $4 != ""' "$ROWS" | grep -q .; then
	spread=$(jq -r '.modes.none.spread_pct // empty' "$LOG/record.out")
	if [ -n "$spread" ]; then
		echo "record: the runs without a profiler lie $spread % apart (max - min over median);" \
			"slowdowns smaller than that are noise."
	else
		echo "record: one run without a profiler: no measure of the noise (bench/record.sh says how far apart several lie)."
	fi
fi
echo "ratio = braid / peer. Each benchmark's own output: $(rel "$LOG")/"

# ---- JSON ----------------------------------------------------------------------
if [ -n "$json_out" ]; then
	jq -R -s --arg started "$started" --argjson quick "$([ -n "$quick" ] && echo true || echo false)" \
		--arg cpu "$m_cpu" --argjson cores "$m_cores" --arg mem "$m_mem" --arg kernel "$m_kernel" \
		--arg os "$m_os" --arg cc "$m_cc" --arg build "$m_build" --arg go "$m_go" --arg node "$m_node" \
		--arg perf "$m_perf" --arg load_start "$load_start" --arg load_end "$load_end" \
		--arg logs "$(rel "$LOG")" --rawfile runs "$LOG/runs.tsv" '
		def n: if . == "" then null else tonumber end;
		def lines: split("\n") | map(select(length > 0) | split("\t"));
		{started: $started, quick: $quick,
		 machine: {cpu: $cpu, cores: $cores, memory: $mem, kernel: $kernel, os: $os, compiler: $cc,
		           build_type: $build, go: $go, node: $node, perf: $perf},
		 loadavg: {start: $load_start, end: $load_end,
		           before: ($runs | lines | map({benchmark: .[0], load1: (.[1] | n),
		                                        seconds: (.[2] | n), exit: (.[3] | n)}))},
		 logs: $logs,
		 rows: (lines | map({benchmark: .[0], metric: .[1], braid: (.[2] | n), peer: (.[3] | n),
		                     peer_name: (if .[4] == "" then null else .[4] end),
		                     ratio: (.[5] | n), target: (if .[6] == "" or .[6] == "—" then null else .[6] end),
		                     verdict: .[7], command: .[8]}))}' "$ROWS" >"$json_out"
	echo "JSON: $json_out"
fi
exit "$status"
