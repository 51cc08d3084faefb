#!/usr/bin/env bash
# How right the splice is: the CPU shares of a Node.js app's functions in
# `braid merge`'s output, against a ground truth, and against the SDK's own
# profile alone (the naive answer, no eBPF).
#
# The app is tests/e2e/node/merge_app.js: handleRequest calls pureJsWork
# (pure JS, ~40 %), hashPassword (crypto.pbkdf2Sync: OpenSSL under JS,
# ~35 %) and sortBig (Array.prototype.sort with a JS comparator, ~25 %). It
# runs under `node --perf-basic-prof --interpreted-frames-native-stack`, so V8
# writes /tmp/perf-PID.map and every JS frame, interpreted ones included, has
# a named address of its own: eBPF alone then names the whole stack. Its SDK
# (@pyroscope/nodejs, the wall profiler with CPU time) pushes to `braid
# ingest` while `braid record` samples the whole system. Per round:
#   truth   the app's eBPF samples in the recording (its pid label), JIT
#           frames named from the perf map ("JS:*pureJsWork /path:l:c",
#           "JS:~x", "LazyCompile:*x": the name after the marker counts);
#   merged  `braid merge` of the same recording with the app's wall profiles
#           as the SDK pushed them (`braid store export`): the SDK's frames
#           replace the interpreter region (the JIT frames the perf map
#           named), the eBPF counts are kept;
#   naive   the SDK profiles alone: shares of their cpu sample type over all
#           their stacks (the SDK's stacks scaled to the eBPF total of the
#           process, with no splice).
# For each of pureJsWork, hashPassword and sortBig: its inclusive share of
# the process's CPU (a sample counts once if any frame names the function),
# and a fourth bucket "rest" = 1 - their sum (handleRequest's own time,
# writeLog, GC, start-up, the SDK, other threads). The distance between two
# such distributions p, q is the total variation distance,
# TVD = 0.5 * sum |p - q| over the four buckets: the largest difference in
# the share any set of buckets gets. Target: merged TVD <= 0.10.
# Also shown, not judged: how much of the app's OpenSSL PBKDF2 time sits
# under hashPassword (all of it, in truth: the native suffix below the
# right JS frame is what only a splice can give), and what limits the truth
# itself: main-thread samples whose stack does not reach node::Start (frame
# pointers end in glibc and OpenSSL, built without them), samples that name
# a function without handleRequest above it (a perf-map name gone stale: V8
# reuses code addresses), and samples in V8's embedded interpreter
# trampoline (a function interpreted after a deoptimization, which the perf
# map cannot name).
#
#   bash bench/merge_accuracy.sh            # from the repo root, after a build; as root
#   bash bench/merge_accuracy.sh --quick    # one round of 8 s: a smoke test
#   bash bench/merge_accuracy.sh --json     # the figures as JSON on stdout (each
#                                           # round's table goes to stderr)
#
# Environment: BRAID (default build/braid), ROUNDS (default 3: each round's
# table, then the medians), RUN_SECONDS (the app's run, default 20),
# FLUSH_INTERVAL_MS (the SDK's, default 5000), BENCH_DIR (where the files go,
# default /var/tmp), KEEP=1 (keep them), BRAID_NPM_CACHE (as the tests),
# QUICK=1 or BENCH_QUICK=1 (as --quick).
# Exits 77 when not root, without kernel BTF or with a braid built without
# its sampler; 1 when a step fails (braid, the app, no SDK profile); never
# because the target was missed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
BRAID=${BRAID:-$BUILD_DIR/braid}
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-20}
FLUSH_INTERVAL_MS=${FLUSH_INTERVAL_MS:-5000}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
APP_DIR=$SRC_DIR/tests/e2e/node
TARGET_TVD=0.10
FUNCS=(pureJsWork hashPassword sortBig)

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
		echo "usage: bash bench/merge_accuracy.sh [--quick] [--json]" >&2
		exit 2
		;;
	esac
done
if [ -n "$quick" ]; then
	ROUNDS=1 RUN_SECONDS=8
fi

. "$SRC_DIR/bench/lib.sh"
require_sampler bench/merge_accuracy.sh "braid record samples every CPU"
for tool in node npm jq; do
	command -v "$tool" >/dev/null || { echo "bench/merge_accuracy.sh needs $tool (scripts/deps.sh)" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
RUN=$(mktemp -d "$BENCH_DIR/braid-bench-merge.XXXX")
PIDS=()
APP_PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for p in "${APP_PIDS[@]}"; do
		rm -f "/tmp/perf-$p.map"
	done
	if [ -n "${KEEP:-}" ]; then
		echo "# files kept in $RUN" >&2
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT

# @pyroscope/nodejs (and pprof-format with it): npm ci into the tests' cache,
# keyed by the lock file
lock_hash=$(sha256sum "$APP_DIR/package-lock.json" | cut -c1-16)
NPM_DIR=${BRAID_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid/e2e-node}/$lock_hash
if [ ! -f "$NPM_DIR/node_modules/@pyroscope/nodejs/package.json" ]; then
	mkdir -p "$NPM_DIR"
	cp "$APP_DIR/package.json" "$APP_DIR/package-lock.json" "$NPM_DIR/"
	ok=0
	for attempt in 1 2 3; do
		if (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >"$RUN/npm.log" 2>&1); then
			ok=1
			break
		fi
		sleep $((attempt * 5))
	done
	if [ "$ok" -ne 1 ]; then
		echo "npm ci of @pyroscope/nodejs failed:" >&2
		tail -20 "$RUN/npm.log" >&2
		exit 1
	fi
fi

# shares OPTIONS... FILE...: tests/e2e/node/pprof_shares.js, JSON on stdout
shares() {
	NODE_PATH="$NPM_DIR/node_modules" node "$APP_DIR/pprof_shares.js" "$@"
}

# wait_line FILE TEXT PID: until FILE holds TEXT (20 s at most, or PID exits)
wait_line() {
	local i
	for ((i = 0; i < 400; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# round N: one run of the app under ingest and record; its figures go to
# $RUN/rN/figures.json
round() {
	local n=$1 dir=$RUN/r$1 ingest_pid rec_pid url app rc=0 ids id func_args=() sdk=() stack_args=()
	mkdir -p "$dir"
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$dir/ingest.err" &
	ingest_pid=$!
	PIDS+=("$ingest_pid")
	wait_line "$dir/ingest.err" 'listening on' "$ingest_pid" ||
		{ echo "braid ingest did not start: $(cat "$dir/ingest.err")" >&2; return 1; }
	url=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$dir/ingest.err" | head -1)
	# SIGTERM ends it; timeout guards against a hang
	timeout -k 10 $((RUN_SECONDS + 180)) "$BRAID" record -o "$dir/rec.pb.gz" 2>"$dir/rec.err" &
	rec_pid=$!
	PIDS+=("$rec_pid")
	wait_line "$dir/rec.err" 'sampling' "$rec_pid" ||
		{ echo "braid record did not start: $(cat "$dir/rec.err")" >&2; return 1; }
	sleep 0.5 # attached on every CPU

	# in $dir: --perf-basic-prof also writes an isolate-*-v8.log where it runs
	(cd "$dir" && exec env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$url" \
		APP_NAME=braid-merge-bench RUN_SECONDS="$RUN_SECONDS" FLUSH_INTERVAL_MS="$FLUSH_INTERVAL_MS" \
		node --perf-basic-prof --interpreted-frames-native-stack "$APP_DIR/merge_app.js") \
		>"$dir/app.out" 2>"$dir/app.err" || rc=$?
	app=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$dir/app.out")
	[ -n "$app" ] && APP_PIDS+=("$app")
	sleep 0.3 # the last samples are drained
	kill -TERM "$rec_pid" 2>/dev/null || true
	wait "$rec_pid" || { echo "braid record failed: $(cat "$dir/rec.err")" >&2; return 1; }
	kill -TERM "$ingest_pid" 2>/dev/null || true
	wait "$ingest_pid" || { echo "braid ingest failed: $(cat "$dir/ingest.err")" >&2; return 1; }
	if [ "$rc" -ne 0 ] || [ -z "$app" ]; then
		echo "the app failed ($rc): $(cat "$dir/app.out" "$dir/app.err")" >&2
		return 1
	fi
	if [ -n "${KEEP:-}" ]; then
		mv "/tmp/perf-$app.map" "$dir/perf.map" 2>/dev/null || true
	else
		rm -f "/tmp/perf-$app.map"
	fi

	"$BRAID" store ls --json --limit 0 --data-dir "$dir/data" >"$dir/ls.json"
	ids=$(jq -r --arg pid "$app" '.sdk_profiles[] |
		select(.profile_name == "wall" and (.pid | tostring) == $pid) | .id' "$dir/ls.json")
	[ -n "$ids" ] || { echo "no wall profile of pid $app in the store" >&2; return 1; }
	for id in $ids; do
		"$BRAID" store export "$id" -o "$dir/sdk-$id.pb.gz" --data-dir "$dir/data"
		sdk+=("$dir/sdk-$id.pb.gz")
	done
	local merge_args=()
	for f in "${sdk[@]}"; do
		merge_args+=(--sdk "$f")
	done
	"$BRAID" merge --ebpf "$dir/rec.pb.gz" "${merge_args[@]}" --pid "$app" -v \
		-o "$dir/merged.pb.gz" 2>"$dir/merge.err" ||
		{ echo "braid merge failed: $(cat "$dir/merge.err")" >&2; return 1; }

	for f in "${FUNCS[@]}"; do
		func_args+=(--func "$f")
		# the function with and without handleRequest rootward of it
		stack_args+=(--stack "(^|[:*~^ ])$f([: ]|\$)" --stack "(^|[:*~^ ])handleRequest([: ]|\$),(^|[:*~^ ])$f([: ]|\$)")
	done
	stack_args+=(--stack '^PKCS5_PBKDF2_HMAC$' --stack '(^|[:*~^ ])hashPassword([: ]|$),^PKCS5_PBKDF2_HMAC$'
		--stack '^Builtins_InterpreterEntryTrampoline$')
	shares --pid "$app" "${func_args[@]}" "${stack_args[@]}" "$dir/rec.pb.gz" >"$dir/truth.json"
	shares --pid "$app" "${func_args[@]}" "${stack_args[@]}" "$dir/merged.pb.gz" >"$dir/merged.json"
	shares --type cpu "${func_args[@]}" "${sdk[@]}" >"$dir/naive.json"
	shares --pid "$app" --label "tid=$app" --stack '^node::Start$' "$dir/rec.pb.gz" >"$dir/main.json"

	jq -n --slurpfile t "$dir/truth.json" --slurpfile m "$dir/merged.json" \
		--slurpfile s "$dir/naive.json" --slurpfile main "$dir/main.json" \
		--arg funcs "${FUNCS[*]}" --argjson pid "$app" --argjson n "$n" \
		--arg merge "$(head -1 "$dir/merge.err" | sed 's/^braid: merge: //')" '
		($funcs | split(" ")) as $fs
		| def dist($x): [$fs[] as $f | $x.funcs[$f].share] | . + [1 - add];
		  def tvd($p; $q): [range(0; $p | length) as $i | ($p[$i] - $q[$i]) | fabs] | add / 2;
		  def pct($a; $b): if $b > 0 then 100 * $a / $b else null end;
		$t[0] as $t | $m[0] as $m | $s[0] as $s | $main[0] as $main | (2 * ($fs | length)) as $k
		| (dist($t)) as $pt | (dist($m)) as $pm | (dist($s)) as $ps
		| {round: $n, pid: $pid, samples: ($t.total / $t.period | round), merge: $merge,
		   buckets: ($fs + ["rest"]), truth: $pt, merged: $pm, naive: $ps,
		   tvd_merged: tvd($pt; $pm), tvd_naive: tvd($pt; $ps),
		   pbkdf2_under_hash_pct: {truth: pct($t.stacks[$k + 1].value; $t.stacks[$k].value),
		                           merged: pct($m.stacks[$k + 1].value; $m.stacks[$k].value)},
		   main_unrooted_pct: pct($main.total - $main.stacks[0].value; $main.total),
		   truth_unnamed_interpreted_pct: pct($t.stacks[$k + 2].value; $t.total),
		   truth_without_handler_pct: pct([range(0; $fs | length) as $i
			| $t.stacks[2 * $i].value - $t.stacks[2 * $i + 1].value] | add; $t.total)}' \
		>"$dir/figures.json"
}

# print_round FILE: one round's table
print_round() {
	local f=$1
	jq -r '"round \(.round): pid \(.pid), \(.samples) eBPF samples; braid merge: \(.merge)",
		(["function", "truth", "merged", "naive"] | @tsv),
		(range(0; .buckets | length) as $i
		 | [.buckets[$i], (.truth[$i], .merged[$i], .naive[$i] | . * 1000 | round / 1000 | tostring)] | @tsv)' "$f" |
		awk -F'\t' '{ if (NR == 1) print; else printf "  %-14s %7s %7s %7s\n", $1, $2, $3, $4 }'
	jq -r --argjson target "$TARGET_TVD" '
		def r3: . * 1000 | round / 1000;
		def r1: if . == null then "-" else . * 10 | round / 10 | tostring end;
		"  tvd merged \(.tvd_merged | r3)  target<=\($target) \(if .tvd_merged <= $target then "ok" else "ABOVE" end)",
		"  tvd naive \(.tvd_naive | r3)",
		"  PKCS5_PBKDF2_HMAC under hashPassword: truth \(.pbkdf2_under_hash_pct.truth | r1) %, merged \(.pbkdf2_under_hash_pct.merged | r1) %",
		"  truth limits: \(.main_unrooted_pct | r1) % of main-thread samples do not reach node::Start;" +
		" \(.truth_without_handler_pct | r1) % name a function without handleRequest above it;" +
		" \(.truth_unnamed_interpreted_pct | r1) % run in V8'"'"'s own interpreter trampoline (unnamed)"' "$f"
}

# the tables go to stdout, or to stderr with --json (stdout is then the JSON)
if [ -n "$json" ]; then
	exec 3>&2
else
	exec 3>&1
fi
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
echo "braid merge accuracy: tests/e2e/node/merge_app.js for $RUN_SECONDS s under" \
	"node --perf-basic-prof --interpreted-frames-native-stack, $ROUNDS round(s)" >&3
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
	"kernel $(uname -r), node $(node --version); load average before: $loadavg" >&3
for ((r = 1; r <= ROUNDS; r++)); do
	round "$r" || exit 1
	print_round "$RUN/r$r/figures.json" >&3
done

if [ -n "$json" ]; then
	# every round's figures, and the median of each over the rounds
	jq -s --argjson target "$TARGET_TVD" --argjson secs "$RUN_SECONDS" --argjson cores "$(nproc)" \
		--arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
		--arg kernel "$(uname -r)" --arg node "$(node --version)" --arg loadavg "$loadavg" '
		def median: map(select(. != null)) | sort
			| if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
			  else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		. as $rs
		| ($rs | map(.tvd_merged) | median) as $tvd
		| {app: "tests/e2e/node/merge_app.js", run_seconds: $secs, rounds: ($rs | length),
		   machine: {cores: $cores, cpu: $cpu, kernel: $kernel, node: $node, loadavg_before: $loadavg},
		   buckets: $rs[0].buckets,
		   median: {truth: [range(0; $rs[0].buckets | length) as $i | $rs | map(.truth[$i]) | median],
		            merged: [range(0; $rs[0].buckets | length) as $i | $rs | map(.merged[$i]) | median],
		            naive: [range(0; $rs[0].buckets | length) as $i | $rs | map(.naive[$i]) | median],
		            tvd_merged: $tvd, tvd_naive: ($rs | map(.tvd_naive) | median),
		            pbkdf2_under_hash_pct: {truth: ($rs | map(.pbkdf2_under_hash_pct.truth) | median),
		                                    merged: ($rs | map(.pbkdf2_under_hash_pct.merged) | median)}},
		   target: {tvd_merged_max: $target, value: $tvd, met: ($tvd <= $target)},
		   round_figures: $rs}' "$RUN"/r*/figures.json
	exit 0
fi

if [ "$ROUNDS" -gt 1 ]; then
	jq -s -r --argjson target "$TARGET_TVD" '
		def median: sort | if length % 2 == 1 then .[length / 2 | floor]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		def r3: . * 1000 | round / 1000;
		. as $rs
		| "median of \($rs | length) rounds",
		  "  function         truth  merged   naive",
		  (range(0; $rs[0].buckets | length) as $i
		   | "  \($rs[0].buckets[$i] + "              " | .[0:14]) \([$rs[].truth[$i]] | median | r3 | tostring | "       " + . | .[-7:]) \([$rs[].merged[$i]] | median | r3 | tostring | "       " + . | .[-7:]) \([$rs[].naive[$i]] | median | r3 | tostring | "       " + . | .[-7:])"),
		  "tvd merged \([$rs[].tvd_merged] | median | r3)  target<=\($target) \(if ([$rs[].tvd_merged] | median) <= $target then "ok" else "ABOVE" end)   (rounds: \([$rs[].tvd_merged | r3 | tostring] | join(" ")))",
		  "tvd naive \([$rs[].tvd_naive] | median | r3)   (rounds: \([$rs[].tvd_naive | r3 | tostring] | join(" ")))"' \
		"$RUN"/r*/figures.json
else
	jq -r --argjson target "$TARGET_TVD" 'def r3: . * 1000 | round / 1000;
		"tvd merged \(.tvd_merged | r3)  target<=\($target) \(if .tvd_merged <= $target then "ok" else "ABOVE" end)",
		"tvd naive \(.tvd_naive | r3)"' "$RUN/r1/figures.json"
fi
