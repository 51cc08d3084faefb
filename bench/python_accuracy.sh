#!/usr/bin/env bash
# How right the splice is for Python: the CPU shares of a Python app's
# functions in `braid merge`'s output, against the ground truth of
# `py-spy record --native` on the same process at the same time (its stacks
# interleave Python and native frames exactly, per sample), and against the
# SDK's own profile.
#
# The app is tests/e2e/python/app.py with the real SDK (pyroscope-io 1.4.0,
# report_thread_id, a push every 5 s to `braid ingest`):
#   threads  a hasher thread in hash_password (hashlib.pbkdf2_hmac: OpenSSL,
#            the GIL released) beside the main thread in render_report (pure
#            Python) and write_audit (os.pwrite: the kernel's write);
#   mixed    the main thread alone calls the three in turn.
# Per round (a Python, a mode, the SDK's gil_only), for DURATION seconds while
# the app runs, `braid record --pid` and `py-spy record --native --pid` sample
# it side by side at 97 Hz; then `braid merge` splices the SDK's profiles of
# that span into the recording. bench/python/accuracy.py computes:
#   - the inclusive shares of hash_password, render_report, write_audit and
#     "rest" in the truth, in braid's merged profile, and in the SDK's
#     profile alone (naive per-PID scaling of the SDK's stacks to the eBPF
#     total gives the same shares), and the TVD of each against the truth.
#     Target: merged TVD <= 0.05;
#   - the share of the OpenSSL samples (PKCS5_PBKDF2_HMAC) with hash_password
#     rootward, and of libc's pwrite's with write_audit rootward, in the truth,
#     merged, and naive (every eBPF sample shared by the SDK's weights alone).
#     Target: >= 90 % of OpenSSL's under hash_password.
# The truth's samples of a thread waiting for the GIL (off CPU) are dropped,
# and so are braid's samples of the SDK's own threads (Rust).
# py-spy samples runnable threads too and stops the process for each sample,
# so its split of samples between threads is not their split of CPU: the
# truth weighs each thread's stacks (py-spy --threads) by the thread's CPU
# time over the span (/proc/PID/task/TID/stat); py-spy's own split is shown
# beside it.
# Pythons: pyenv's 3.11 (python3.11 on PATH) and Debian's /usr/bin/python3.11,
# each with the SDK in a venv under ~/.cache/braid/bench-python.
#
#   bash bench/python_accuracy.sh            # from the repo root, after a build; as root
#   bash bench/python_accuracy.sh --quick    # one round (pyenv, threads, gil_only=False), 10 s
#   bash bench/python_accuracy.sh --json     # the figures as JSON on stdout
#
# Environment: BRAID (default build/braid), RUN_SECONDS (the app's run,
# default 24; sampled from its 3rd second for RUN_SECONDS - 6), BENCH_DIR
# (default /var/tmp), KEEP=1 (keep the files), PYTHONS ("pyenv debian"),
# SCENARIOS ("threads:0 threads:1 mixed:0": mode:GIL_ONLY).
# Exits 77 when not root, without kernel BTF or with a braid built without
# its sampler; 1 when a step fails; never because a target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
RUN_SECONDS=${RUN_SECONDS:-24}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
PYTHONS=${PYTHONS:-pyenv debian}
SCENARIOS=${SCENARIOS:-threads:0 threads:1 mixed:0}
APP=$SRC_DIR/tests/e2e/python/app.py
SDK_REQ=$SRC_DIR/tests/e2e/python/requirements.txt
SPY_REQ=$SRC_DIR/bench/python/requirements.txt
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/braid/bench-python

json=
for arg in "$@"; do
	case $arg in
	--quick) PYTHONS=pyenv SCENARIOS=threads:0 RUN_SECONDS=16 ;;
	--json) json=1 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: bash bench/python_accuracy.sh [--quick] [--json]" >&2
		exit 2
		;;
	esac
done
DURATION=$((RUN_SECONDS - 6))

. "$SRC_DIR/bench/lib.sh"
require_sampler bench/python_accuracy.sh "braid record, py-spy --pid"
command -v jq >/dev/null || { echo "bench/python_accuracy.sh needs jq (scripts/deps.sh)" >&2; exit 1; }

mkdir -p "$BENCH_DIR" "$CACHE"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench-python.XXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then
		echo "# files kept in $RUN" >&2
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT

# venv NAME PYTHON: a venv of PYTHON with the SDK and py-spy, pinned by hash;
# its python's path on stdout
venv() {
	local name=$1 py=$2 hash dir
	hash=$(cat "$SDK_REQ" "$SPY_REQ" | sha256sum | cut -c1-16)
	dir=$CACHE/$name-$hash
	if [ ! -x "$dir/venv/bin/py-spy" ] || ! "$dir/venv/bin/python" -c 'import pyroscope' 2>/dev/null; then
		rm -rf "$dir"
		mkdir -p "$dir"
		"$py" -m venv "$dir/venv" >"$RUN/venv-$name.log" 2>&1 &&
			"$dir/venv/bin/pip" install --quiet --require-hashes --no-deps --cache-dir "$CACHE/pip" \
				-r "$SDK_REQ" -r "$SPY_REQ" >>"$RUN/venv-$name.log" 2>&1 || {
			echo "installing the SDK and py-spy into a venv of $py failed:" >&2
			tail -20 "$RUN/venv-$name.log" >&2
			exit 1
		}
	fi
	echo "$dir/venv/bin/python"
}

python_of() {
	case $1 in
	pyenv) command -v python3.11 ;;
	debian) echo /usr/bin/python3.11 ;;
	*) echo "unknown Python '$1' (pyenv, debian)" >&2; return 1 ;;
	esac
}

# thread_cpu PID: "TID TICKS" per thread (utime + stime), sorted by TID
thread_cpu() {
	local t
	for t in /proc/"$1"/task/*; do
		awk -v t="${t##*/}" '{ print t, $14 + $15 }' "$t/stat" 2>/dev/null || true
	done | sort
}

# wait_line FILE REGEX PID: until FILE has a line matching REGEX (20 s at most)
wait_line() {
	local i
	for ((i = 0; i < 400; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# round NAME PYTHON MODE GIL_ONLY: one run; its figures go to $RUN/NAME/figures.json
round() {
	local name=$1 which=$2 mode=$3 gil=$4 dir=$RUN/$1 py ingest_pid url app_pid app rc=0
	local rec_pid spy_pid t0 t1 sdk=() merge_args=()
	mkdir -p "$dir"
	py=$(venv "$which" "$(python_of "$which")")
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/ingest.err" &
	ingest_pid=$!
	PIDS+=("$ingest_pid")
	wait_line "$dir/ingest.err" 'listening on' "$ingest_pid" ||
		{ echo "braid ingest did not start: $(cat "$dir/ingest.err")" >&2; return 1; }
	url=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$dir/ingest.err" | head -1)
	env PYROSCOPE_SERVER_ADDRESS="$url" PYROSCOPE_APPLICATION_NAME="braid-bench-$name" MODE="$mode" \
		GIL_ONLY="$gil" UPLOAD_INTERVAL=5 RUN_SECONDS="$RUN_SECONDS" "$py" "$APP" \
		>"$dir/app.out" 2>"$dir/app.err" &
	app_pid=$!
	PIDS+=("$app_pid")
	wait_line "$dir/app.out" '^pid ' "$app_pid" || { echo "the app did not start: $(cat "$dir/app.err")" >&2; return 1; }
	app=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$dir/app.out")
	sleep 3 # past the SDK's start
	thread_cpu "$app" >"$dir/cpu0"
	t0=$(date +%s%N)
	"$BRAID" record --pid "$app" --duration "$DURATION" -o "$dir/rec.pb.gz" 2>"$dir/rec.err" &
	rec_pid=$!
	"$(dirname "$py")/py-spy" record --native --threads --pid "$app" --rate 97 --duration "$DURATION" \
		--format raw -o "$dir/truth.txt" >"$dir/spy.out" 2>&1 &
	spy_pid=$!
	wait "$rec_pid" || { echo "braid record failed: $(cat "$dir/rec.err")" >&2; return 1; }
	wait "$spy_pid" || { echo "py-spy record failed: $(cat "$dir/spy.out")" >&2; return 1; }
	thread_cpu "$app" >"$dir/cpu1"
	t1=$(date +%s%N)
	join "$dir/cpu0" "$dir/cpu1" | awk '{ print $1, $3 - $2 }' >"$dir/thread-cpu"
	wait "$app_pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "the app exited $rc: $(cat "$dir/app.err")" >&2; return 1; }
	sleep 1 # its last push
	kill -TERM "$ingest_pid" 2>/dev/null || true
	wait "$ingest_pid" || { echo "braid ingest failed: $(cat "$dir/ingest.err")" >&2; return 1; }

	# the SDK's profiles of the recorded span: those whose middle lies in it
	"$BRAID" store ls --json --limit 0 --data-dir "$dir/data" >"$dir/ls.json"
	: >"$dir/sdk.folded"
	for id in $(jq -r --arg pid "$app" --argjson t0 "$t0" --argjson t1 "$t1" '.sdk_profiles[]
		| select((.pid | tostring) == $pid and .cpu_time)
		| select(((.from_ns + .until_ns) / 2) as $m | $m >= $t0 and $m < $t1) | .id' "$dir/ls.json"); do
		"$BRAID" store export "$id" -o "$dir/sdk-$id.pb" --data-dir "$dir/data"
		"$BRAID" convert "$dir/sdk-$id.pb" --to folded --sample-type cpu >>"$dir/sdk.folded"
		sdk+=("$dir/sdk-$id.pb")
	done
	[ "${#sdk[@]}" -gt 0 ] || { echo "no SDK profile of pid $app covers the recording" >&2; return 1; }
	for f in "${sdk[@]}"; do
		merge_args+=(--sdk "$f")
	done
	"$BRAID" merge --ebpf "$dir/rec.pb.gz" "${merge_args[@]}" --pid "$app" -o "$dir/merged.pb.gz" \
		2>"$dir/merge.err" || { echo "braid merge failed: $(cat "$dir/merge.err")" >&2; return 1; }
	"$BRAID" convert "$dir/merged.pb.gz" --to folded --annotate -o "$dir/merged.folded"
	python3 "$SRC_DIR/bench/python/accuracy.py" --truth "$dir/truth.txt" --merged "$dir/merged.folded" \
		--sdk "$dir/sdk.folded" --func hash_password --func render_report --func write_audit \
		--under 'hash_password=^PKCS5_PBKDF2_HMAC$' --under 'write_audit=^(__libc_pwrite|pwrite64|__pwrite64|pwrite)$' \
		--thread-cpu "$dir/thread-cpu" >"$dir/acc.json"
	jq --arg name "$name" --arg python "$("$py" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_config_var("BINDIR"))')" \
		--arg mode "$mode" --argjson gil "$gil" --argjson pid "$app" --argjson sdk "${#sdk[@]}" \
		--arg merge "$(grep -m2 '^braid: merge:' "$dir/merge.err" | sed 's/^braid: merge: //' | paste -sd ';')" \
		'{name: $name, python: $python, mode: $mode, gil_only: ($gil == 1), pid: $pid,
		  sdk_profiles: $sdk, merge: $merge} + .' "$dir/acc.json" >"$dir/figures.json"
}

# print_round FILE
print_round() {
	jq -r 'def r3: if . == null then "-" else . * 1000 | round / 1000 | tostring end;
		def pct: if . == null then "-" else . * 1000 | round / 10 | tostring + " %" end;
		"\(.name): python \(.python), mode \(.mode), gil_only=\(.gil_only), pid \(.pid), \(.sdk_profiles) SDK profiles",
		"  braid merge: \(.merge)",
		"  samples: truth \(.truth.samples) (\(.truth.off_cpu_dropped) off-CPU dropped), merged \(.merged.samples) (\(.merged.other_threads_dropped) of other threads dropped), SDK weight \(.sdk.samples)",
		"  function          truth  merged     sdk  py-spy split",
		(range(0; .buckets | length) as $i
		 | "  \(.buckets[$i] + "                " | .[0:15]) \(.truth.shares[$i] | r3 | "       " + . | .[-7:]) \(.merged.shares[$i] | r3 | "       " + . | .[-7:]) \(.sdk.shares[$i] | r3 | "       " + . | .[-7:]) \(.truth_samples.shares[$i] | r3 | "            " + . | .[-12:])"),
		"  TVD merged \(.tvd.merged | r3) (target <= 0.05: \(if .tvd.merged <= 0.05 then "met" else "NOT met" end)), SDK alone / naive \(.tvd.sdk | r3); merged against py-spy split \(.tvd.merged_vs_truth_samples | r3)",
		(.under | to_entries[] | "  \(.key): truth \(.value.truth | pct), merged \(.value.merged | pct), naive \(.value.naive | pct)")' "$1"
}

if [ -n "$json" ]; then
	exec 3>&2
else
	exec 3>&1
fi
echo "braid merge accuracy for Python: tests/e2e/python/app.py for $RUN_SECONDS s, sampled for $DURATION s" \
	"by braid record and py-spy --native at 97 Hz" >&3
echo "machine: $(nproc) cores, kernel $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&3
names=()
for which in $PYTHONS; do
	for sc in $SCENARIOS; do
		name=$which-${sc%%:*}-gil${sc##*:}
		round "$name" "$which" "${sc%%:*}" "${sc##*:}" || exit 1
		print_round "$RUN/$name/figures.json" >&3
		names+=("$RUN/$name/figures.json")
	done
done
if [ -n "$json" ]; then
	jq -s '.' "${names[@]}"
fi
