#!/usr/bin/env bash
# A soak of braid agent: the example Node app (the real @pyroscope/nodejs
# SDK) and synthetic pushes (the Node SDK's real push, 5 a second) for
# MINUTES minutes under `braid agent` with eBPF sampling, forwarding to the
# fake Pyroscope (tests/e2e/upstream). Each minute it prints the agent's RSS,
# open fds, threads, CPU used and store size; at the end it accounts for
# every profile:
#   - every push the agent answered 200 (the app's and the synthetic ones)
#     is in the store;
#   - every SDK profile in the store reached the upstream (braid_view=sdk);
#   - after SIGTERM the outbox is empty and no profile became a dead letter.
# "Flat" is judged after warm-up: the first five minutes fill the caches
# and the WAL, and SQLite's page caches (4 MiB per store connection, their
# sum in /metrics' braid_store_memory_bytes) fill as the database grows, and
# a busy minute may open one more ingest connection (up to its pool's cap).
# So: RSS without SQLite's heap may not grow by more than 10 % from minute 5
# to the end, nor RSS by more than 5 % over the second half; open fds may
# not grow over the second half; the agent's CPU a minute may not move by
# more than 15 % from minute 5 to the end (the median of the last five
# minutes against that of minutes 5-9). Each minute's CPU is also shown per
# thread (ingest: the HTTP server's threads; main: the agent's loop, the
# store's statistics and cleanup). Prints a JSON line of the figures last.
#
#   bash bench/soak.sh                 # 30 minutes, as root, after a build
#   MINUTES=3 bash bench/soak.sh       # a short one
#
# Environment: BRAID (default build/braid), MINUTES (30), PUSHES_PER_S (5),
# BENCH_DIR (default /var/tmp), BRAID_NPM_CACHE (as the tests).
# Exits 77 when not root or without kernel BTF, 1 when a check fails.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
export BRAID=${BRAID:-$BUILD_DIR/braid} BUILD_DIR SRC_DIR
export FIXTURES=${FIXTURES:-$SRC_DIR/../shared/fixtures}
MINUTES=${MINUTES:-30}
PUSHES_PER_S=${PUSHES_PER_S:-5}
export TMPDIR=${BENCH_DIR:-/var/tmp}
. "$SRC_DIR/tests/cli/lib.sh"

require_ebpf
PUSH=$FIXTURES/node-sdk-0.6.4/req2.pprof.gz
SERVICE=braid-soak

start_upstream --reject-older-than 0
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --retry-max-backoff 5s
npm_modules
env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" \
	PYROSCOPE_APPLICATION_NAME="$SERVICE" PORT=0 RUN_SECONDS=$((MINUTES * 60)) \
	FLUSH_INTERVAL_MS=10000 LOAD=50 node "$SRC_DIR/examples/node-app/app.js" \
	>"$TMP/app.out" 2>&1 &
APP_PID=$!
# the synthetic pushes: count the 200s
(
	ok=0 bad=0 end=$(($(date +%s) + MINUTES * 60))
	while [ "$(date +%s)" -lt "$end" ]; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --data-binary "@$PUSH" \
			"$AGENT_URL/ingest?format=pprof&name=synthetic%7Bsoak%3D1%7D&spyName=nodespy") || code=000
		if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
		echo "$ok $bad" >"$TMP/pushes"
		sleep "$(awk -v r="$PUSHES_PER_S" 'BEGIN { printf "%.3f", 1 / r }')"
	done
) &
PUSHER=$!

clk=$(getconf CLK_TCK)
printf '%-6s %10s %10s %6s %8s %10s %8s %12s %10s  %s\n' minute rss_kib sqlite_kib fds threads cpu_s \
	cpu_min_s store_kib pushes_ok "CPU s a minute per thread"
rss=() fds=() sqlite=() cpu_min=()
declare -A thread_prev=()
# thread_cpu: sets threads_cpu to "name=s" for each thread's CPU since the
# last call (its comm; the agent names its threads). Not in a subshell: it
# keeps each thread's last figure in thread_prev.
thread_cpu() {
	local t name ticks out=() st
	for t in /proc/"$AGENT_PID"/task/*; do
		read -r -a st <"$t/stat" 2>/dev/null || continue
		name=$(cat "$t/comm" 2>/dev/null) || continue
		ticks=$((st[13] + st[14]))
		out+=("$name=$(awk -v d="$((ticks - ${thread_prev[${t##*/}]:-0}))" -v hz="$clk" 'BEGIN { printf "%.2f", d / hz }')")
		thread_prev[${t##*/}]=$ticks
	done
	threads_cpu="${out[*]}"
}
prev_cpu=0
for m in $(seq 1 "$MINUTES"); do
	sleep 60
	kill -0 "$AGENT_PID" 2>/dev/null || {
		echo "FAIL: braid agent died at minute $m: $(tail -5 "$AGENT_LOG")" >&2
		exit 1
	}
	r=$(awk '/^VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")
	f=$(find "/proc/$AGENT_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	t=$(awk '/^Threads/ { print $2 }' "/proc/$AGENT_PID/status")
	read -r -a st <"/proc/$AGENT_PID/stat"
	cpu=$(awk -v t="$((st[13] + st[14]))" -v hz="$clk" 'BEGIN { printf "%.1f", t / hz }')
	cm=$(awk -v t="$((st[13] + st[14] - prev_cpu))" -v hz="$clk" 'BEGIN { printf "%.2f", t / hz }')
	prev_cpu=$((st[13] + st[14]))
	thread_cpu
	db=$(($(stat -c %s "$TMP/data/braid.db") / 1024))
	sq=$(curl -s --max-time 10 "$AGENT_URL/metrics" |
		awk '$1 == "braid_store_memory_bytes" { printf "%d", $2 / 1024 }')
	rss+=("$r")
	fds+=("$f")
	sqlite+=("${sq:-0}")
	cpu_min+=("$cm")
	printf '%-6s %10s %10s %6s %8s %10s %8s %12s %10s  %s\n' "$m" "$r" "${sq:-?}" "$f" "$t" "$cpu" \
		"$cm" "$db" "$(cut -d' ' -f1 "$TMP/pushes" 2>/dev/null || echo 0)" "$threads_cpu"
done
wait "$APP_PID" || echo "# the app exited non-zero: $(tail -3 "$TMP/app.out")"
wait "$PUSHER" || true
sleep 15 # the app's last push merged and forwarded
stop_agent
read -r pushes_ok pushes_bad <"$TMP/pushes"

"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
stored_synthetic=$(jq '[.sdk_profiles[] | select(.service == "synthetic")] | length' "$TMP/ls.json")
stored_app=$(jq --arg s "$SERVICE" '[.sdk_profiles[] | select(.service == $s)] | length' "$TMP/ls.json")
outbox=$(jq '.outbox | length' "$TMP/ls.json")
dead=$(jq '.dead_letters | length' "$TMP/ls.json")
upstream_get received >"$TMP/received.json"
sent_sdk=$(jq '[.[] | select(.labels.braid_view == "sdk")] | length' "$TMP/received.json")
sent_merged=$(jq '[.[] | select(.labels.braid_view == "merged")] | length' "$TMP/received.json")
sent_ebpf=$(jq '[.[] | select(.labels.braid_view == "ebpf")] | length' "$TMP/received.json")
unique_ids=$(jq '[.[] | .id] | unique | length' "$TMP/received.json")
all=$(jq length "$TMP/received.json")

echo "# pushes answered 200: $pushes_ok synthetic ($pushes_bad refused); in the store: $stored_synthetic synthetic, $stored_app from the app"
echo "# the upstream took $all profiles ($unique_ids IDs): $sent_sdk SDK, $sent_merged merged, $sent_ebpf eBPF-only; outbox $outbox, dead letters $dead"
failed=0
check() {
	if [ "$2" != "$3" ]; then
		echo "FAIL: $1: expected $2, got $3" >&2
		failed=1
	fi
}
check "synthetic pushes answered 200 that the store holds" "$pushes_ok" "$stored_synthetic"
check "SDK profiles in the store that reached the upstream" "$((stored_synthetic + stored_app))" "$sent_sdk"
check "the outbox after SIGTERM" 0 "$outbox"
check "dead letters" 0 "$dead"
# flat, after warm-up (see the top)
last=$((MINUTES - 1))
base=$((MINUTES >= 6 ? 4 : 0))
half=$((MINUTES / 2))
r0=${rss[$base]} r1=${rss[$last]} rh=${rss[$half]} f1=${fds[$last]}
o0=$((rss[base] - sqlite[base])) o1=$((rss[last] - sqlite[last]))
fmax=0
for ((i = base; i <= half; i++)); do
	if [ "${fds[$i]}" -gt "$fmax" ]; then fmax=${fds[$i]}; fi
done
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * (b - a) / a }'; }
g_other=$(pct "$o0" "$o1") g_half=$(pct "$rh" "$r1")
echo "# RSS minute $((base + 1)) -> $MINUTES: $r0 -> $r1 KiB ($(pct "$r0" "$r1") %);" \
	"without SQLite's heap $o0 -> $o1 KiB (${g_other} %);" \
	"minute $((half + 1)) -> $MINUTES: $rh -> $r1 KiB (${g_half} %)"
echo "# fds: at most $fmax in minutes $((base + 1))-$((half + 1)), $f1 at the end"
awk -v g="$g_other" 'BEGIN { exit !(g <= 10) }' || {
	echo "FAIL: RSS without SQLite's heap grew by $g_other % after warm-up" >&2
	failed=1
}
awk -v g="$g_half" 'BEGIN { exit !(g <= 5) }' || {
	echo "FAIL: RSS grew by $g_half % over the second half" >&2
	failed=1
}
# the CPU a minute: minutes 5-9 against the last five
if [ "$MINUTES" -ge 10 ]; then
	c_early=$(printf '%s\n' "${cpu_min[@]:4:5}" | sort -g | sed -n 3p)
	c_late=$(printf '%s\n' "${cpu_min[@]:$((MINUTES - 5)):5}" | sort -g | sed -n 3p)
	g_cpu=$(pct "$c_early" "$c_late")
	echo "# the agent's CPU a minute (median): minutes 5-9 $c_early s, minutes $((MINUTES - 4))-$MINUTES $c_late s (${g_cpu} %)"
	awk -v g="$g_cpu" 'BEGIN { exit !(g <= 15 && g >= -15) }' || {
		echo "FAIL: the agent's CPU a minute moved by $g_cpu % after warm-up (at most 15 %)" >&2
		failed=1
	}
fi
[ "$f1" -le "$fmax" ] || {
	echo "FAIL: open fds grew from $fmax to $f1 over the second half" >&2
	failed=1
}
jq -cn --argjson minutes "$MINUTES" --argjson rss "$(printf '%s\n' "${rss[@]}" | jq -s .)" \
	--argjson fds "$(printf '%s\n' "${fds[@]}" | jq -s .)" --argjson ok "$pushes_ok" \
	--argjson sqlite "$(printf '%s\n' "${sqlite[@]}" | jq -s .)" \
	--argjson stored "$stored_synthetic" --argjson app "$stored_app" --argjson sdk "$sent_sdk" \
	--argjson merged "$sent_merged" --argjson ebpf "$sent_ebpf" --argjson outbox "$outbox" \
	--argjson dead "$dead" --argjson cpu "$(printf '%s\n' "${cpu_min[@]}" | jq -s .)" \
	'{minutes: $minutes, rss_kib: $rss, sqlite_kib: $sqlite, fds: $fds, cpu_s_per_minute: $cpu,
	  synthetic_ok: $ok, synthetic_stored: $stored,
	  app_stored: $app, upstream_sdk: $sdk, upstream_merged: $merged, upstream_ebpf: $ebpf,
	  outbox: $outbox, dead_letters: $dead}'
exit "$failed"
