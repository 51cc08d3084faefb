#!/usr/bin/env bash
# braid agent under faults:
#   1. the store's filesystem fills up (a small tmpfs; root): pushes get a
#      clear 429/503, nothing crashes, pushes succeed again once space
#      returns, and every push answered 200 is in the store;
#   2. an upstream that answers only after 10 s: pushes are still answered
#      at once, eBPF collection keeps going (root), SIGTERM still stops the
#      agent within 10 s;
#   3. 1,000 idle connections to the ingest port: a real SDK push (the
#      example app, @pyroscope/nodejs) still gets through;
#   4. processes that exit while being sampled, and a PID reused by another
#      process (root): the agent keeps both apart and does not stop.
# Parts that need root say so and are skipped without it.
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

for tool in node npm curl jq; do
	command -v "$tool" >/dev/null || {
		echo "SKIP: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 77
	}
done
ROOT=0
[ "$(id -u)" -eq 0 ] && ROOT=1
PUSH=$FIXTURES/node-sdk-0.6.4/req2.pprof.gz
MOUNTED=
cleanup_faults() {
	kill_agent
	[ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
	lib_cleanup
}
trap cleanup_faults EXIT

# push N: one SDK push named checkout{n=N}; prints the HTTP status
push() {
	curl -s -o "$TMP/push.out" -w '%{http_code}' --max-time 20 --data-binary "@$PUSH" \
		"$AGENT_URL/ingest?format=pprof&name=checkout%7Bn%3D$1%7D&spyName=nodespy" || echo 000
}

# ---- 1. the store's filesystem fills up ----------------------------------------------
if [ "$ROOT" -eq 1 ]; then
	SMALL=$TMP/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=6m tmpfs "$SMALL"
	MOUNTED=$SMALL
	start_agent "$SMALL/data" --no-ebpf
	# most of the space taken by something else, as on a shared disk
	dd if=/dev/zero of="$SMALL/filler" bs=1M count=4 status=none 2>/dev/null || true
	ok=0 full=0 other=0 last=""
	for n in $(seq 1 600); do
		code=$(push "$n")
		case "$code" in
		200) ok=$((ok + 1)) ;;
		429 | 503)
			full=$((full + 1))
			last=$(cat "$TMP/push.out")
			[ "$full" -ge 20 ] && break
			;;
		*) other=$((other + 1)) last="$code $(cat "$TMP/push.out")" ;;
		esac
	done
	echo "# a 6 MiB filesystem: $ok pushes stored, then $full refused ($last)"
	[ "$full" -gt 0 ] || fail "the full filesystem never refused a push"
	expect_eq "replies other than 200, 429 and 503 on a full filesystem" 0 "$other"
	kill -0 "$AGENT_PID" 2>/dev/null || fail "braid agent died when the filesystem filled: $(tail -5 "$AGENT_LOG")"
	case "$last" in
	*'"message"'*"filesystem holding"*"is full"*) ;;
	*) fail "the refusal does not say the filesystem is full: $last" ;;
	esac
	code=$(curl -s -o /dev/null -w '%{http_code}' "$AGENT_URL/ready")
	echo "# /ready on a full filesystem: $code"
	# space returns: pushes are taken again
	rm -f "$SMALL/filler"
	back=0
	for n in $(seq 1000 1020); do
		[ "$(push "$n")" = 200 ] && back=$((back + 1))
	done
	[ "$back" -gt 0 ] || fail "pushes still refused once space returned: $(cat "$TMP/push.out")"
	echo "# space back: $back of 21 pushes stored"
	stop_agent
	# every push answered 200 is there
	stored=$("$BRAID" store ls --json --limit 0 --data-dir "$SMALL/data" | jq '.sdk_profiles | length')
	expect_eq "pushes answered 200 that the store holds" "$((ok + back))" "$stored"
	umount "$SMALL" && MOUNTED=
else
	echo "# skip 1 (full filesystem): mounting a small tmpfs needs root"
fi

# ---- 2. an upstream that answers after 10 s -----------------------------------------
start_upstream --reject-older-than 0
upstream_post fail '{"delay_ms": 10000, "count": 1000}' >/dev/null
ebpf_args=(--no-ebpf)
if [ "$ROOT" -eq 1 ] && [ -r /sys/kernel/btf/vmlinux ]; then
	ebpf_args=(--collect-interval 2s)
fi
start_agent "$TMP/slow" "${ebpf_args[@]}" --upstream "$UPSTREAM_URL" --upstream-timeout 60s
samples() {
	curl -fsS "$AGENT_URL/metrics" | awk '$1 == "braid_collector_samples_total{state=\"stored\"}" { print $2 }'
}
s0=$(samples)
worst=0
for n in $(seq 1 10); do
	t0=$(date +%s%N)
	code=$(push "slow$n")
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -gt "$worst" ] && worst=$ms
	expect_eq "push $n with the upstream hanging" 200 "$code"
	sleep 0.5
done
echo "# the upstream answering after 10 s: 10 pushes answered, the slowest in $worst ms"
[ "$worst" -lt 2000 ] || fail "a push took $worst ms while the upstream hung"
requests=$(upstream_get requests | jq length)
[ "$requests" -ge 1 ] || fail "the forwarder never reached the hanging upstream"
if [ "${ebpf_args[0]}" != --no-ebpf ]; then
	s1=$(samples)
	echo "# eBPF samples stored meanwhile: $((s1 - s0))"
	[ "$((s1 - s0))" -gt 0 ] || fail "eBPF collection stalled while the upstream hung"
fi
stop_agent
echo "# SIGTERM with a request hanging: stopped in $STOP_MS ms"
stop_upstream

# ---- 3. 1,000 idle connections -------------------------------------------------------
start_agent "$TMP/idle" --no-ebpf
port=${AGENT_URL##*:}
node - "$port" 1000 >"$TMP/idle.out" 2>&1 <<'JS' &
// holds N connections open, idle, until stdin closes or 60 s pass
const net = require('net');
const [port, n] = [Number(process.argv[2]), Number(process.argv[3])];
let open = 0, failed = 0;
for (let i = 0; i < n; i++) {
  const s = net.connect(port, '127.0.0.1', () => { open++; if (open + failed === n) console.log(`open ${open} failed ${failed}`); });
  s.on('error', () => { failed++; if (open + failed === n) console.log(`open ${open} failed ${failed}`); });
}
setTimeout(() => process.exit(0), 60000);
JS
IDLE_PID=$!
for _ in $(seq 1 100); do
	grep -q '^open' "$TMP/idle.out" && break
	sleep 0.1
done
echo "# idle connections: $(cat "$TMP/idle.out")"
npm_modules
APP_OUT=$TMP/app.out
if env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" \
	PYROSCOPE_APPLICATION_NAME=idle-check PORT=0 RUN_SECONDS=4 FLUSH_INTERVAL_MS=1000 \
	timeout 60 node "$SRC_DIR/examples/node-app/app.js" >"$APP_OUT" 2>&1; then
	got=$("$BRAID" store ls --json --limit 0 --data-dir "$TMP/idle" 2>/dev/null |
		jq '[.sdk_profiles[] | select(.service == "idle-check")] | length')
	echo "# with 1,000 idle connections open, the SDK's pushes stored: $got"
	[ "$got" -ge 1 ] || fail "no SDK push got through 1,000 idle connections"
else
	fail "the example app failed: $(tail -5 "$APP_OUT")"
fi
kill "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true
stop_agent

# ---- 4. short-lived processes and a reused PID ----------------------------------------
if [ "$ROOT" -eq 1 ] && [ -r /sys/kernel/btf/vmlinux ] && [ -w /proc/sys/kernel/ns_last_pid ]; then
	start_agent "$TMP/pids" --collect-interval 2s
	# 300 processes that burn a few ms and exit, some while their first
	# samples are read
	kids=()
	for _ in $(seq 1 300); do
		(
			i=0
			while [ $i -lt 3000 ]; do i=$((i + 1)); done
		) &
		kids+=($!)
	done
	wait "${kids[@]}" # not a bare wait: the agent is a job too
	# a PID reused: a process runs, exits, and the next one gets its PID
	bash -c 'i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done' &
	first=$!
	wait "$first"
	reused=0
	for _ in 1 2 3 4 5; do
		echo $((first - 1)) >/proc/sys/kernel/ns_last_pid
		bash -c 'i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done' &
		second=$!
		wait "$second"
		[ "$second" = "$first" ] && reused=1 && break
	done
	sleep 3
	kill -0 "$AGENT_PID" 2>/dev/null || fail "braid agent died among short-lived processes"
	stop_agent
	if [ "$reused" -eq 1 ]; then
		rows=$(sqlite3 "$TMP/pids/braid.db" "SELECT count(*) FROM processes WHERE pid = $first")
		echo "# pid $first was used twice: $rows process rows"
		[ "$rows" -ge 2 ] || fail "the reused PID $first was taken for one process ($rows rows)"
	else
		echo "# the PID could not be reused here (another process took it): that check is skipped"
	fi
else
	echo "# skip 4 (short-lived processes, PID reuse): needs root, kernel BTF and ns_last_pid"
fi
finish
