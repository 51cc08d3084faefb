# Shared by the integration tests: assertions that print what differed.
set -euo pipefail

: "${BRAID:?}" "${BUILD_DIR:?}" "${FIXTURES:?}"
GOBIN_DIR="$BUILD_DIR/go-bin"

# pprof ARGS...: Google's pprof, the tool `go tool pprof` runs, at the version
# go.mod pins, built by tests/cli/go-tools.sh (ctest's go_tools, the fixture
# "go" of every test that calls it).
pprof() {
	if [ ! -x "$GOBIN_DIR/pprof" ]; then
		echo "FAIL: $GOBIN_DIR/pprof is not built: run tests/cli/go-tools.sh (ctest -R go_tools)" >&2
		return 127
	fi
	"$GOBIN_DIR/pprof" "$@"
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/braid-test.XXXXXX")
FAILED=0

# BRAID_WRAPPER: a command every braid invocation runs under, e.g.
# scripts/valgrind.sh's `valgrind --tool=memcheck ...`. $BRAID becomes a
# script that execs it, so "$BRAID" ... & still leaves braid's PID (the
# wrapper's, as valgrind runs braid in its own process) in $!, and kill -TERM
# reaches braid. The script exports BRAID_CALL_ID (test.pid.ns, unique within
# a run) for valgrind's --log-file=DIR/%q{BRAID_CALL_ID}.log. SLOW (default
# 10 under a wrapper, else 1; BRAID_SLOW sets it) scales the waits and time
# limits of the tests, never what they check.
SLOW=1
if [ -n "${BRAID_WRAPPER:-}" ]; then
	SLOW=${BRAID_SLOW:-10}
	BRAID_BIN=$BRAID
	BRAID=$TMP/braid
	{
		echo '#!/bin/sh'
		echo "BRAID_CALL_ID=$(basename "$0" .sh).\$\$.\$(date +%s%N)"
		echo 'export BRAID_CALL_ID'
		echo "exec $BRAID_WRAPPER '$BRAID_BIN' \"\$@\""
	} >"$BRAID"
	chmod 755 "$BRAID"
	# record.sh runs braid as nobody too
	chmod 711 "$TMP"
fi

# under_wrapper WHAT: true (and says that WHAT is skipped) when braid runs
# under BRAID_WRAPPER, for the few checks that hold only at braid's own speed.
under_wrapper() {
	[ -n "${BRAID_WRAPPER:-}" ] || return 1
	echo "skip under BRAID_WRAPPER ($(echo "$BRAID_WRAPPER" | cut -d' ' -f1)): $*" >&2
}

# lib_cleanup: at exit, stops whatever the helpers below started (they leave
# the trap alone), then removes $TMP. A test that sets its own trap calls it.
lib_cleanup() {
	[ -z "${NODE_APP_PID:-}" ] || kill -KILL "$NODE_APP_PID" 2>/dev/null || true
	kill_agent
	stop_ingest
	stop_upstream
	stop_pyroscope
	rm -rf "$TMP"
}
trap lib_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	FAILED=1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" != "$3" ]; then
		fail "$1: expected [$2], got [$3]"
	fi
}

# expect_same_file WHAT A B: files identical, else show the diff
expect_same_file() {
	if ! cmp -s "$2" "$3"; then
		fail "$1 differ:"
		diff -u "$2" "$3" | head -40 >&2 || true
	fi
}

# expect_contains WHAT FILE TEXT
expect_contains() {
	if ! grep -qF -- "$3" "$2"; then
		fail "$1: [$3] not found in:"
		head -40 "$2" >&2
	fi
}

fixtures() {
	ls "$FIXTURES"/*/*.pprof.gz
}

finish() {
	if [ "$FAILED" -ne 0 ]; then
		exit 1
	fi
	echo "ok"
}

# start_ingest DATA_DIR [braid ingest options...]: starts `braid ingest` on a
# free loopback port and waits for it to listen. Sets INGEST_PID, INGEST_URL
# and INGEST_LOG. lib_cleanup stops it when the test exits.
start_ingest() {
	local dir=$1
	shift
	INGEST_LOG=$(mktemp "$TMP/ingest-log.XXXXXX")
	"$BRAID" ingest --listen 127.0.0.1:0 --data-dir "$dir" "$@" 2>"$INGEST_LOG" &
	INGEST_PID=$!
	for _ in $(seq 1 $((200 * SLOW))); do
		INGEST_URL=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$INGEST_LOG" | head -1)
		[ -n "$INGEST_URL" ] && return 0
		if ! kill -0 "$INGEST_PID" 2>/dev/null; then
			echo "FAIL: braid ingest exited at start:" >&2
			cat "$INGEST_LOG" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "FAIL: braid ingest did not listen within $((10 * SLOW)) s:" >&2
	cat "$INGEST_LOG" >&2
	exit 1
}

# stop_ingest: SIGTERM, and the exit status must be 0.
stop_ingest() {
	[ -n "${INGEST_PID:-}" ] || return 0
	local pid=$INGEST_PID status=0
	INGEST_PID=
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		fail "braid ingest exited with status $status on SIGTERM:"
		cat "$INGEST_LOG" >&2
	fi
}

# npm_modules [APP_DIR PACKAGE]: npm ci of a Node.js app's dependencies into a
# cache keyed by its lock file, so there is one download per lock change.
# APP_DIR defaults to tests/e2e/node (@pyroscope/nodejs, and pprof-format
# with it), PACKAGE (one of its dependencies, the sign of a complete install)
# to @pyroscope/nodejs; tests/e2e/report's is playwright-core. Sets NPM_DIR
# (its node_modules is what NODE_PATH wants). Tests running at once share the
# cache: a lock makes one of them install.
npm_modules() {
	: "${SRC_DIR:?}"
	local app=${1:-$SRC_DIR/tests/e2e/node} pkg=${2:-@pyroscope/nodejs} lock_hash rc=0
	lock_hash=$(sha256sum "$app/package-lock.json" | cut -c1-16)
	NPM_DIR=${BRAID_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid/e2e-$(basename "$app")}/$lock_hash
	[ -f "$NPM_DIR/node_modules/$pkg/package.json" ] && return 0
	mkdir -p "$NPM_DIR"
	(
		if command -v flock >/dev/null; then flock 9; fi
		[ -f "$NPM_DIR/node_modules/$pkg/package.json" ] && exit 0
		cp "$app/package.json" "$app/package-lock.json" "$NPM_DIR/"
		for attempt in 1 2 3; do
			if (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1); then
				exit 0
			fi
			[ "$attempt" -lt 3 ] && sleep $((attempt * 5))
		done
		exit 1
	) 9>"$NPM_DIR.lock" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: npm ci of ${app#"$SRC_DIR"/} ($pkg) into $NPM_DIR failed 3 times:" >&2
		tail -20 "$TMP/npm.log" >&2 2>/dev/null || true
		exit 1
	fi
}

# py_sdk: a venv with the real Python SDK (tests/e2e/python/requirements.txt:
# pyroscope-io, pinned by version and hash) under ~/.cache/braid/e2e-python/,
# made once per requirements file. Sets PY_SDK (its python). Python 3.11:
# the wheel's.
py_sdk() {
	: "${SRC_DIR:?}"
	local req=$SRC_DIR/tests/e2e/python/requirements.txt hash rc=0 py
	hash=$(sha256sum "$req" | cut -c1-16)
	PY_SDK_DIR=${BRAID_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid/e2e-python}/$hash
	PY_SDK=$PY_SDK_DIR/venv/bin/python
	[ -x "$PY_SDK" ] && "$PY_SDK" -c 'import pyroscope' 2>/dev/null && return 0
	py=$(command -v python3.11 || true)
	[ -n "$py" ] || { echo "FAIL: no python3.11 for the Python SDK's venv (scripts/deps.sh)" >&2; exit 1; }
	mkdir -p "$PY_SDK_DIR"
	(
		if command -v flock >/dev/null; then flock 9; fi
		[ -x "$PY_SDK" ] && "$PY_SDK" -c 'import pyroscope' 2>/dev/null && exit 0
		rm -rf "$PY_SDK_DIR/venv"
		"$py" -m venv "$PY_SDK_DIR/venv" >"$TMP/pip.log" 2>&1 || exit 1
		for attempt in 1 2 3; do
			if "$PY_SDK_DIR/venv/bin/pip" install --quiet --require-hashes --no-deps \
				--cache-dir "$PY_SDK_DIR/pip-cache" -r "$req" >>"$TMP/pip.log" 2>&1; then
				exit 0
			fi
			[ "$attempt" -lt 3 ] && sleep $((attempt * 5))
		done
		exit 1
	) 9>"$PY_SDK_DIR.lock" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: installing ${req#"$SRC_DIR"/} into $PY_SDK_DIR failed:" >&2
		tail -20 "$TMP/pip.log" >&2 2>/dev/null || true
		exit 1
	fi
}

# java_agent: the Pyroscope Java agent's jar (tests/tools/java_agent.sh: from
# Maven Central once, checked against its pinned sha256). Sets JAVA_AGENT to
# its path; exits 1 when it can't be had.
java_agent() {
	: "${SRC_DIR:?}"
	JAVA_AGENT=$(bash "$SRC_DIR/tests/tools/java_agent.sh") || exit 1
}

# start_upstream [fake options...]: starts the fake Pyroscope
# (tests/e2e/upstream/fake_pyroscope.js) on free loopback ports and waits for
# it. Sets UPSTREAM_URL (its data port: push and ingest), UPSTREAM_ADMIN (its
# admin port), UPSTREAM_PID and UPSTREAM_DIR (under $TMP: stderr, the
# received.jsonl log, dump/ with each accepted profile). One at a time: a
# running one is stopped first. Stopped at exit. With UPSTREAM_FORWARD_TO=URL
# (a real Pyroscope), it passes every request on to it (--forward-to).
start_upstream() {
	: "${SRC_DIR:?}"
	stop_upstream
	npm_modules "$SRC_DIR/tests/e2e/node" @pyroscope/nodejs
	UPSTREAM_DIR=$(mktemp -d "$TMP/upstream.XXXXXX")
	NODE_PATH="$NPM_DIR/node_modules" node "$SRC_DIR/tests/e2e/upstream/fake_pyroscope.js" \
		--host 127.0.0.1 --port 0 --admin-port 0 --exit-with-parent --dump-dir "$UPSTREAM_DIR/dump" \
		--log "$UPSTREAM_DIR/received.jsonl" ${UPSTREAM_FORWARD_TO:+--forward-to "$UPSTREAM_FORWARD_TO"} \
		"$@" >"$UPSTREAM_DIR/stdout" 2>"$UPSTREAM_DIR/stderr" &
	UPSTREAM_PID=$!
	local line
	for _ in $(seq 1 200); do
		line=$(grep -m1 '^fake-pyroscope listening ' "$UPSTREAM_DIR/stdout" 2>/dev/null || true)
		if [ -n "$line" ]; then
			UPSTREAM_URL=$(echo "$line" | cut -d' ' -f3)
			UPSTREAM_ADMIN=$(echo "$line" | cut -d' ' -f5)
			return 0
		fi
		if ! kill -0 "$UPSTREAM_PID" 2>/dev/null; then
			echo "FAIL: the fake Pyroscope exited at start:" >&2
			cat "$UPSTREAM_DIR/stdout" "$UPSTREAM_DIR/stderr" >&2
			UPSTREAM_PID=
			exit 1
		fi
		sleep 0.05
	done
	echo "FAIL: the fake Pyroscope did not listen within 10 s:" >&2
	cat "$UPSTREAM_DIR/stderr" >&2
	exit 1
}

# stop_upstream: SIGTERM, and the exit status must be 0.
stop_upstream() {
	[ -n "${UPSTREAM_PID:-}" ] || return 0
	local pid=$UPSTREAM_PID status=0
	UPSTREAM_PID=
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		fail "the fake Pyroscope exited with status $status on SIGTERM:"
		cat "$UPSTREAM_DIR/stderr" >&2
	fi
}

# upstream_get PATH: GET from the fake's admin port (PATH: /admin/received,
# or just received); the JSON on stdout, curl's status as the return.
upstream_get() {
	local p=$1
	[ "${p#/}" != "$p" ] || p=/admin/$p
	curl -fsS "$UPSTREAM_ADMIN$p"
}

# upstream_post PATH [JSON]: POST to the fake's admin port, as upstream_get.
upstream_post() {
	local p=$1
	[ "${p#/}" != "$p" ] || p=/admin/$p
	curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "${2:-}" "$UPSTREAM_ADMIN$p"
}

# require_ebpf: exits 77 (a skip), with the reason, unless braid can sample
# here: root, kernel BTF, and a braid built with its eBPF sampler.
require_ebpf() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "skip: eBPF sampling needs root (CAP_BPF and CAP_PERFMON): run as root"
		exit 77
	fi
	if [ ! -r /sys/kernel/btf/vmlinux ]; then
		echo "skip: no kernel BTF (/sys/kernel/btf/vmlinux): the sampler needs a kernel built with CONFIG_DEBUG_INFO_BTF"
		exit 77
	fi
	# a braid built where there was no kernel BTF has no sampler, and says so
	if "$BRAID" record --duration 0.1 -o /dev/null 2>"$TMP/probe.err" </dev/null; then :; fi
	if grep -q "built without its eBPF sampler" "$TMP/probe.err"; then
		echo "skip: $(sed 's/^braid: record: //' "$TMP/probe.err")"
		exit 77
	fi
}

# start_agent DATA_DIR [braid agent options...]: starts `braid agent` on a
# free loopback port and waits until it listens (and, with eBPF, samples).
# Sets AGENT_PID, AGENT_URL and AGENT_LOG; lib_cleanup kills it at exit.
start_agent() {
	local dir=$1
	shift
	AGENT_LOG=$(mktemp "$TMP/agent-log.XXXXXX")
	"$BRAID" agent --listen 127.0.0.1:0 --data-dir "$dir" "$@" 2>"$AGENT_LOG" &
	AGENT_PID=$!
	for _ in $(seq 1 $((200 * SLOW))); do
		AGENT_URL=$(sed -n 's/^braid: agent: listening on \(http:\/\/.*\)$/\1/p' "$AGENT_LOG" | head -1)
		if [ -n "$AGENT_URL" ] && grep -qE 'sampling|no eBPF sampling' "$AGENT_LOG"; then
			return 0
		fi
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			echo "FAIL: braid agent exited at start:" >&2
			cat "$AGENT_LOG" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "FAIL: braid agent did not start within $((10 * SLOW)) s:" >&2
	cat "$AGENT_LOG" >&2
	exit 1
}

# stop_agent: SIGTERM; the exit status must be 0 and come within 10 s
# (times SLOW). Sets STOP_MS.
stop_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	local pid=$AGENT_PID status=0 t0
	AGENT_PID=
	t0=$(date +%s%N)
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || status=$?
	STOP_MS=$((($(date +%s%N) - t0) / 1000000))
	if [ "$status" -ne 0 ]; then
		fail "braid agent exited with status $status on SIGTERM:"
		cat "$AGENT_LOG" >&2
	fi
	if [ "$STOP_MS" -ge $((10000 * SLOW)) ]; then
		fail "braid agent took $STOP_MS ms to stop on SIGTERM (at most $((10 * SLOW)) s)"
	fi
}

# kill_agent: SIGKILL, quietly (a crash, on purpose or at exit).
kill_agent() {
	[ -n "${AGENT_PID:-}" ] || return 0
	{
		kill -KILL "$AGENT_PID"
		wait "$AGENT_PID"
	} 2>/dev/null || true
	AGENT_PID=
}

# require_pyroscope: exits 77 (a skip), with the reason, unless a Grafana
# Pyroscope binary (v2) is at hand for scripts/pyroscope.sh: $PYROSCOPE_BIN,
# else `pyroscope` on PATH.
require_pyroscope() {
	local bin=${PYROSCOPE_BIN:-$(command -v pyroscope || true)}
	if [ -z "$bin" ] || [ ! -x "$bin" ]; then
		echo "skip: no Grafana Pyroscope binary: set PYROSCOPE_BIN to one (v2.0 or later) or put pyroscope on PATH"
		exit 77
	fi
}

# start_pyroscope DIR: runs a real Grafana Pyroscope (scripts/pyroscope.sh) on a
# free loopback port with its data in DIR, and waits until /ready answers 200
# (60 s at most). Sets PYRO_URL, PYRO_PID and PYRO_LOG; lib_cleanup stops it.
start_pyroscope() {
	: "${SRC_DIR:?}"
	local dir=$1 port code=
	mkdir -p "$dir"
	PYRO_LOG=$dir.log
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	bash "$SRC_DIR/scripts/pyroscope.sh" "$port" "$dir" >"$PYRO_LOG" 2>&1 &
	PYRO_PID=$!
	PYRO_URL=http://127.0.0.1:$port
	for _ in $(seq 1 $((600 * SLOW))); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$PYRO_URL/ready" || true)
		[ "$code" = 200 ] && return 0
		if ! kill -0 "$PYRO_PID" 2>/dev/null; then
			echo "FAIL: Pyroscope exited at start:" >&2
			tail -20 "$PYRO_LOG" >&2
			PYRO_PID=
			exit 1
		fi
		sleep 0.1
	done
	echo "FAIL: Pyroscope's /ready did not answer 200 within $((60 * SLOW)) s (last: $code):" >&2
	tail -20 "$PYRO_LOG" >&2
	exit 1
}

# wait_emitted DATA_DIR PID SECONDS: until the merger's watermark of process
# PID passed its last sampled second in the agent's store (every view of it
# was queued), SECONDS at most; prints 1 when it did, else what it saw.
wait_emitted() {
	local e=
	for _ in $(seq 1 "$3"); do
		e=$(sqlite3 "file:$1/braid.db?mode=ro" "SELECT p.ebpf_emitted_s > max(b.second) FROM processes p
			JOIN ebpf_buckets b ON b.process_id = p.id WHERE p.pid = $2 GROUP BY p.id" 2>/dev/null || true)
		[ "$e" = 1 ] && break
		sleep 1
	done
	echo "$e"
}

# outbox_of DATA_DIR SERVICE: the outbox items of SERVICE's series in the
# agent's store.
outbox_of() {
	sqlite3 "file:$1/braid.db?mode=ro" "SELECT count(*) FROM outbox
		WHERE series LIKE '%service_name=$2,%' OR series LIKE '%service_name=$2}'" 2>/dev/null || true
}

# drain_agent DATA_DIR SERVICE PID GRACE: waits until every sampled second of
# process PID was emitted (merged or, past the grace period, eBPF-only) and
# SERVICE's profiles left the outbox, keeps the agent's metrics in
# $TMP/metrics, and stops the agent.
drain_agent() {
	local emitted queued=
	emitted=$(wait_emitted "$1" "$3" $((($4 + 20) * SLOW)))
	expect_eq "every sampled second of the app emitted within $(($4 + 20)) s of its exit" 1 "$emitted"
	for _ in $(seq 1 $((60 * SLOW))); do
		queued=$(outbox_of "$1" "$2")
		[ "$queued" = 0 ] && break
		sleep 1
	done
	expect_eq "the app's profiles still in the outbox" 0 "$queued"
	curl -fsS "$AGENT_URL/metrics" >"$TMP/metrics"
	stop_agent
}

# check_cpu_totals DATA_DIR SERVICE PID RECEIVED_JSON: the CPU of process
# PID sent (SERVICE's merged + eBPF-only profiles the fake received) equals
# the store's eBPF samples of it x the period. Sets MERGED_SENT, EBPF_SENT.
check_cpu_totals() {
	local period samples
	period=$(jq -r --arg s "$2" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "merged") | .period] | unique | join(",")' "$4")
	[[ $period =~ ^[0-9]+$ ]] || fail "the merged profiles' period is not one number: [$period]"
	samples=$(sqlite3 "file:$1/braid.db?mode=ro" "SELECT coalesce(sum(b.count), 0) FROM ebpf_buckets b
		JOIN processes p ON p.id = b.process_id WHERE p.pid = $3 AND b.second < p.ebpf_emitted_s")
	MERGED_SENT=$(cpu_sent "$2" merged "$4")
	EBPF_SENT=$(cpu_sent "$2" ebpf "$4")
	expect_eq "the app's CPU sent (merged + eBPF-only, ns) against the store's samples x period" \
		"$((samples * ${period:-0}))" "$((MERGED_SENT + EBPF_SENT))"
	echo "# the app's CPU: $samples eBPF samples x $period ns; merged $MERGED_SENT ns, eBPF-only $EBPF_SENT ns"
}

# cpu_sent SERVICE VIEW RECEIVED_JSON: the ns of SERVICE's VIEW profiles the fake received
cpu_sent() {
	jq --arg s "$1" --arg v "$2" '[.[] | select(.labels.service_name == $s and .labels.braid_view == $v)
		| .totals[0] | tonumber] | add // 0' "$3"
}

# check_pyroscope_totals SERVICE RANGE: Pyroscope's merged and eBPF-only CPU
# of SERVICE over RANGE (a Connect JSON "start":..,"end":.. pair) against
# MERGED_SENT and EBPF_SENT (check_cpu_totals).
check_pyroscope_totals() {
	local v total
	for v in merged ebpf; do
		total=$(pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"{service_name=\\\"$1\\\",braid_view=\\\"$v\\\"}\",$2}" |
			jq -r '[.sample[]?.value[0] | tonumber] | add // 0')
		if [ $v = merged ]; then
			expect_eq "the app's merged CPU (ns): Pyroscope's total against what braid sent" "$MERGED_SENT" "$total"
		else
			expect_eq "the app's eBPF-only CPU (ns): Pyroscope's total against what braid sent" "$EBPF_SENT" "$total"
		fi
	done
}

# pprof_shares ARGS...: tests/e2e/node/pprof_shares.js, npm's pprof-format
# reading pprof files (JSON on stdout); NPM_DIR from npm_modules
pprof_shares() {
	NODE_PATH="$NPM_DIR/node_modules" node "$SRC_DIR/tests/e2e/node/pprof_shares.js" "$@"
}

# folded_sum FILE REGEX: the sum of the counts of FILE's folded stacks that
# match REGEX (awk's)
folded_sum() {
	awk -v re="$2" '$0 ~ re { t += $NF } END { printf "%.0f\n", t }' "$1"
}

# check_sdk_cpu_once SERVICE RECEIVED_JSON [RANGE]: the SDK's own process_cpu
# pushes left as process_cpu_sdk (--sdk-cpu-name's default), none as
# process_cpu, so a query of SERVICE's process_cpu without braid_view counts
# its CPU once: with a real Pyroscope (PYRO and RANGE), that query's total
# equals MERGED_SENT + EBPF_SENT (check_cpu_totals), and process_cpu_sdk
# holds what the SDK pushed. Sets SDK_CPU_SENT.
check_sdk_cpu_once() {
	local names total t
	names=$(jq -c --arg s "$1" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk")
		| .labels.__name__] | group_by(.) | map({(.[0]): length}) | add // {}' "$2")
	echo "# the SDK's own profiles by __name__: $names"
	[ "$(jq '.process_cpu_sdk // 0' <<<"$names")" -gt 0 ] ||
		fail "no SDK process_cpu profile left as process_cpu_sdk: $names"
	expect_eq "SDK profiles left as process_cpu beside the merged view" 0 "$(jq '.process_cpu // 0' <<<"$names")"
	t=$(jq -r --arg s "$1" '[.[] | select(.labels.service_name == $s and .labels.__name__ == "process_cpu_sdk")
		| .sample_types | map(.[0] + ":" + .[1]) | join(",")] | unique | join(" ")' "$2")
	echo "# their sample types: $t"
	SDK_CPU_SENT=$(jq --arg s "$1" '[.[] | select(.labels.service_name == $s and .labels.__name__ == "process_cpu_sdk")
		| (.sample_types | map(.[0]) | index("cpu")) as $i | select($i != null) | .totals[$i] | tonumber] | add // 0' "$2")
	[ -n "$PYRO" ] && [ -n "${3:-}" ] || return 0
	total=$(pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"{service_name=\\\"$1\\\"}\",$3}" |
		jq -r '[.sample[]?.value[0] | tonumber] | add // 0')
	echo "# Pyroscope: process_cpu{service_name=\"$1\"} = $total ns (merged $MERGED_SENT + eBPF-only $EBPF_SENT; the SDK's own $SDK_CPU_SENT)"
	expect_eq "Pyroscope's process_cpu of the app without a braid label (ns), against merged + eBPF-only" \
		"$((MERGED_SENT + EBPF_SENT))" "$total"
	total=$(pyro_query SelectMergeProfile "{\"profileTypeID\":\"process_cpu_sdk:cpu:nanoseconds:cpu:nanoseconds\",\"labelSelector\":\"{service_name=\\\"$1\\\"}\",$3}" |
		jq -r '[.sample[]?.value[0] | tonumber] | add // 0')
	expect_eq "Pyroscope's process_cpu_sdk of the app (ns), against the SDK's pushes" "$SDK_CPU_SENT" "$total"
}

# maybe_pyroscope DIR: starts a real Pyroscope (start_pyroscope DIR) when one
# is at hand (PYROSCOPE_BIN, or pyroscope on PATH), and says so. Sets PYRO to
# 1 then, else to "".
maybe_pyroscope() {
	PYRO=
	if [ -n "${PYROSCOPE_BIN:-}" ] || command -v pyroscope >/dev/null; then
		start_pyroscope "$1"
		PYRO=1
		echo "# a real Pyroscope at $PYRO_URL: the fake passes every request on to it"
	else
		echo "# no Grafana Pyroscope binary (PYROSCOPE_BIN): checked on what the strict fake received"
	fi
}

# stop_pyroscope: SIGTERM, then SIGKILL after 30 s (its shutdown waits on its
# rings and raft).
stop_pyroscope() {
	[ -n "${PYRO_PID:-}" ] || return 0
	local pid=$PYRO_PID
	PYRO_PID=
	stop_pid "$pid" 30
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL when PID is still there after
# SECONDS; reaps it (a child of this shell).
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# pyro_query METHOD JSON: a Connect JSON call to Pyroscope's querier
# (/querier.v1.QuerierService/METHOD); the reply on stdout. A reply other than
# 200 fails the test with Pyroscope's message.
pyro_query() {
	local out code
	out=$(mktemp "$TMP/pyro-query.XXXXXX")
	code=$(curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$2" "$PYRO_URL/querier.v1.QuerierService/$1" || true)
	if [ "$code" != 200 ]; then
		fail "Pyroscope's $1 answered $code: $(head -c 400 "$out") (request: $2)"
		echo '{}'
		return 1
	fi
	cat "$out"
}

# run_node_app SERVICE SECONDS: runs the example app (examples/node-app, the
# real @pyroscope/nodejs SDK from npm) to its end, pushing to $AGENT_URL
# every 5 s as SERVICE. Sets APP to its PID; its output is in $TMP/app.out
# and $TMP/app.err. lib_cleanup kills it if the test ends first.
run_node_app() {
	: "${SRC_DIR:?}" "${AGENT_URL:?}"
	local rc=0
	npm_modules
	env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" \
		PYROSCOPE_APPLICATION_NAME="$1" PORT=0 RUN_SECONDS="$2" FLUSH_INTERVAL_MS=5000 \
		node "$SRC_DIR/examples/node-app/app.js" >"$TMP/app.out" 2>"$TMP/app.err" &
	NODE_APP_PID=$!
	wait "$NODE_APP_PID" || rc=$?
	NODE_APP_PID=
	APP=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/app.out" | head -1)
	if [ "$rc" -ne 0 ] || [ -z "$APP" ]; then
		echo "FAIL: the Node app exited $rc: $(cat "$TMP/app.out" "$TMP/app.err")" >&2
		exit 1
	fi
}
