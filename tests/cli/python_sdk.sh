#!/usr/bin/env bash
# The real Python SDK (pyroscope-io 1.4.0, tests/e2e/python/requirements.txt)
# pushing to `braid ingest` unchanged (docs/sdk-python.md):
#   - two apps at once, each attributed to its own host PID;
#   - each push stored whole: the push API's series labels, the CPU flag, and
#     the pprof inside with the SDK's sample labels (pid, route, thread_id,
#     thread_name);
#   - every request answered 200;
#   - multiprocessing: a pool of 2 spawned workers, each configuring the SDK,
#     gives profiles attributed to each worker's own PID (its TCP peer), whose
#     samples carry that PID.
#
#   bash tests/cli/python_sdk.sh     # ~20 s; PyPI the first time
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

py_sdk
start_ingest "$TMP/data"

# run_app NAME SERVICE: the app in the background, its output in $TMP/NAME.out.
# GIL_ONLY=0: with the SDK's default (only the thread holding the GIL) a 2 s
# window of hashing threads may hold no sample, and the SDK sends nothing for
# it (docs/sdk-python.md); every window of its 12 s then has samples.
run_app() {
	env PYROSCOPE_SERVER_ADDRESS="$INGEST_URL" PYROSCOPE_APPLICATION_NAME="$2" GIL_ONLY=0 \
		RUN_SECONDS=$((12 * SLOW)) "$PY_SDK" "$SRC_DIR/tests/e2e/python/app.py" \
		>"$TMP/$1.out" 2>"$TMP/$1.err" &
}
run_app a braid-py-a
A_JOB=$!
run_app b braid-py-b
B_JOB=$!
env PYROSCOPE_SERVER_ADDRESS="$INGEST_URL" PYROSCOPE_APPLICATION_NAME=braid-py-workers GIL_ONLY=0 \
	MODE=workers UPLOAD_INTERVAL=5 RUN_SECONDS=$((8 * SLOW)) "$PY_SDK" "$SRC_DIR/tests/e2e/python/app.py" \
	>"$TMP/w.out" 2>"$TMP/w.err" &
W_JOB=$!
rc_a=0 rc_b=0 rc_w=0
wait "$A_JOB" || rc_a=$?
wait "$B_JOB" || rc_b=$?
wait "$W_JOB" || rc_w=$?
[ "$rc_w" -eq 0 ] || fail "the multiprocessing app exited $rc_w: $(cat "$TMP/w.err")"
[ "$rc_a" -eq 0 ] || fail "app a exited $rc_a: $(cat "$TMP/a.err")"
[ "$rc_b" -eq 0 ] || fail "app b exited $rc_b: $(cat "$TMP/b.err")"
PID_A=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/a.out")
PID_B=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/b.out")
if [ -z "$PID_A" ] || [ -z "$PID_B" ]; then
	fail "the apps printed no pid: $(cat "$TMP/a.out" "$TMP/b.out")"
	finish
fi

curl -fsS "$INGEST_URL/metrics" >"$TMP/metrics"
ok=$(awk '$1 == "braid_ingest_requests_total{endpoint=\"/push.v1.PusherService/Push\",status=\"200\"}" { print $2 }' "$TMP/metrics")
bad=$(grep -E '^braid_ingest_requests_total\{endpoint="/push.v1.PusherService/Push",status="[^2]' "$TMP/metrics" || true)
echo "# the push API: ${ok:-0} requests answered 200"
# each app pushes every 10 s and once more at shutdown (the workers' app:
# each worker every 5 s)
[ "${ok:-0}" -ge 4 ] || fail "${ok:-0} pushes answered 200, expected 4 or more (2 apps x 2)"
[ -z "$bad" ] || fail "pushes not answered 200: $bad"
stop_ingest

"$BRAID" store ls --json --data-dir "$TMP/data" >"$TMP/ls.json" || fail "braid store ls failed"
for app in a b; do
	svc=braid-py-$app
	pid=$PID_A
	[ "$app" = b ] && pid=$PID_B
	n=$(jq --arg s "$svc" '[.sdk_profiles[] | select(.service == $s)] | length' "$TMP/ls.json")
	wrong=$(jq --arg s "$svc" --argjson p "$pid" '[.sdk_profiles[] | select(.service == $s and .pid != $p)] | length' "$TMP/ls.json")
	echo "# $svc (pid $pid): $n profiles stored, $wrong attributed to another pid"
	[ "$n" -ge 2 ] || fail "$svc: $n profiles stored, expected 2 or more"
	expect_eq "$svc: profiles attributed to another pid" 0 "$wrong"
	first=$(jq --arg s "$svc" '[.sdk_profiles[] | select(.service == $s)][0]' "$TMP/ls.json")
	expect_eq "$svc: profile name" process_cpu "$(echo "$first" | jq -r .profile_name)"
	expect_eq "$svc: CPU time" true "$(echo "$first" | jq -r .cpu_time)"
	expect_eq "$svc: sample type" cpu/nanoseconds "$(echo "$first" | jq -r '.sample_types[0] | "\(.type)/\(.unit)"')"
	expect_eq "$svc: service_name label" "$svc" "$(echo "$first" | jq -r '.labels.service_name')"
	expect_eq "$svc: the SDK's tag" test "$(echo "$first" | jq -r '.labels.region')"
	expect_eq "$svc: runtime label" cpython "$(echo "$first" | jq -r '.labels["process.runtime.name"]')"
	id=$(echo "$first" | jq -r .id)
	"$BRAID" store export "$id" --data-dir "$TMP/data" -o "$TMP/$app.pb" || fail "$svc: braid store export $id failed"
	pprof -raw "$TMP/$app.pb" >"$TMP/$app.raw" 2>"$TMP/$app.raw.err" || fail "$svc: pprof can't read the stored profile: $(cat "$TMP/$app.raw.err")"
	# every sample carries the SDK's pid, route, thread_id and thread_name
	samples=$(awk '/^Samples:/ { s = 1; getline; next } /^Locations/ { s = 0 } s && $1 ~ /^[0-9]+:$/ { n++ } END { print n + 0 }' "$TMP/$app.raw")
	labelled=$(grep -Ec "^ +pid:\[$pid\] route:\[/(login|other)\] thread_id:\[[0-9]+\] thread_name:\[(MainThread|worker-1)\]$" "$TMP/$app.raw" || true)
	echo "# $svc: profile $id, $samples samples, $labelled with pid, route, thread_id and thread_name"
	[ "$samples" -gt 0 ] || fail "$svc: no sample in the stored profile"
	expect_eq "$svc: samples with the SDK's labels" "$samples" "$labelled"
done

# ---- multiprocessing: each worker its own PID, with its own pushes ----------------------------
WORKERS=$(sed -n 's/^worker \([0-9][0-9]*\)$/\1/p' "$TMP/w.out" | sort -n | tr '\n' ' ' | sed 's/ $//')
echo "# multiprocessing workers: $WORKERS ($(sed -n 's/^jobs ran in //p' "$TMP/w.out") ran the jobs)"
[ "$(echo "$WORKERS" | wc -w)" -eq 2 ] || fail "the pool announced $(echo "$WORKERS" | wc -w) workers, not 2: $(cat "$TMP/w.out")"
for w in $WORKERS; do
	ids=$(jq -r --argjson p "$w" '[.sdk_profiles[] | select(.service == "braid-py-workers" and .pid == $p) | .id] | join(" ")' "$TMP/ls.json")
	how=$(jq -r --argjson p "$w" '[.sdk_profiles[] | select(.service == "braid-py-workers" and .pid == $p) | .attribution] | unique | join(",")' "$TMP/ls.json")
	echo "# worker $w: profiles $ids, attributed by $how"
	[ -n "$ids" ] || { fail "no profile attributed to worker $w"; continue; }
	expect_eq "worker $w: attribution" tcp-peer "$how"
	id=${ids%% *}
	"$BRAID" store export "$id" --data-dir "$TMP/data" -o "$TMP/w$w.pb" || fail "braid store export $id failed"
	expect_eq "worker $w: the pid labels of its samples" "$w" \
		"$(pprof -raw "$TMP/w$w.pb" 2>/dev/null | sed -n 's/.*pid:\[\([0-9]*\)\].*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//')"
done

finish
