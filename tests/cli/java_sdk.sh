#!/usr/bin/env bash
# The real Pyroscope Java agent (io.pyroscope:agent, tests/e2e/java/agent.txt,
# attached with -javaagent) pushing JFR to `braid agent --no-ebpf`, which
# forwards to the strict fake Pyroscope (tests/e2e/upstream), and through it
# to a real one when PYROSCOPE_BIN names one (docs/sdk-java.md):
#   - every push (POST /ingest?...&format=jfr, a multipart form) is answered
#     200, and stored as format jfr, attributed to the app's PID by its TCP
#     peer, with the agent's spyName, sampleRate, units and aggregation;
#   - the upstream receives each push's jfr field byte for byte (sha256 of
#     the field as stored against the one the fake received), with
#     braid_view=sdk in the name;
#   - with a real Pyroscope: it reads the JFR into process_cpu series of the
#     app (braid_view=sdk).
#
#   bash tests/cli/java_sdk.sh     # ~25 s; Maven Central the first time
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

for tool in java jq curl python3; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done
java_agent
SERVICE=braid-e2e-java
T0=$(date +%s)

maybe_pyroscope "$TMP/pyroscope"
UPSTREAM_FORWARD_TO=${PYRO:+$PYRO_URL} start_upstream
start_agent "$TMP/data" --no-ebpf --upstream "$UPSTREAM_URL" --retry-max-backoff 2s

rc=0
env PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" PYROSCOPE_APPLICATION_NAME="$SERVICE" \
	PYROSCOPE_UPLOAD_INTERVAL=5s PYROSCOPE_LOG_LEVEL=info RUN_SECONDS=$((12 * SLOW)) \
	java -javaagent:"$JAVA_AGENT" "$SRC_DIR/tests/e2e/java/App.java" >"$TMP/app.out" 2>"$TMP/app.err" || rc=$?
APP=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/app.out")
if [ "$rc" -ne 0 ] || [ -z "$APP" ]; then
	fail "the Java app exited $rc: $(cat "$TMP/app.out") $(tail -5 "$TMP/app.err")"
	finish
fi
# the agent's last push comes from its shutdown hook, before the JVM exits
curl -fsS "$AGENT_URL/metrics" >"$TMP/metrics"
ok=$(awk '$1 == "braid_ingest_requests_total{endpoint=\"/ingest\",status=\"200\"}" { print $2 }' "$TMP/metrics")
bad=$(grep -E '^braid_ingest_requests_total\{endpoint="/ingest",status="[^2]' "$TMP/metrics" || true)
echo "# /ingest: ${ok:-0} JFR pushes answered 200"
[ "${ok:-0}" -ge 2 ] || fail "${ok:-0} pushes answered 200, expected 2 or more (12 s, one every 5 s)"
[ -z "$bad" ] || fail "pushes not answered 200: $bad"
for _ in $(seq 1 $((30 * SLOW))); do
	[ "$("$BRAID" store stats --json --data-dir "$TMP/data" | jq '.tables.outbox.rows')" = 0 ] && break
	sleep 1
done
stop_agent

# ---- what braid stored ----------------------------------------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
jq --arg s "$SERVICE" '[.sdk_profiles[] | select(.service == $s)]' "$TMP/ls.json" >"$TMP/rows.json"
n=$(jq length "$TMP/rows.json")
[ "$n" -ge 2 ] || fail "$n JFR pushes stored, expected 2 or more"
first=$(jq '.[0]' "$TMP/rows.json")
echo "# $n pushes stored; the first: $(jq -c '{format, profile_name, spy_name, sample_rate, pid, attribution}' <<<"$first")"
expect_eq "format" jfr "$(jq -r '[.[].format] | unique | join(",")' "$TMP/rows.json")"
expect_eq "attributed to the app's PID by its TCP peer" "$APP tcp-peer" \
	"$(jq -r '[.[] | "\(.pid) \(.attribution)"] | unique | join(",")' "$TMP/rows.json")"
expect_eq "spy name" javaspy "$(jq -r .spy_name <<<"$first")"
expect_eq "sample rate" 100 "$(jq -r .sample_rate <<<"$first")"
expect_eq "units and aggregation" "samples sum" \
	"$(jq -r '[.[] | "\(.units) \(.aggregation)"] | unique | join(",")' "$TMP/rows.json")"
# queued for pass-through, and taken by the merger as the app's CPU
# profiles: without eBPF there is nothing to splice them with, so only the
# pass-through leaves (the upstream's views, below)
expect_eq "pass-through queued, read by the merger" "true true" \
	"$(jq -r '"\([.[].queued] | all) \([.[].merged] | any)"' "$TMP/rows.json")"

# each stored form's jfr field, by its sha256 (the form: ingest/jfr.c)
: >"$TMP/store-sha"
for id in $(jq -r '.[].id' "$TMP/rows.json"); do
	"$BRAID" store export "$id" -o "$TMP/form-$id" --data-dir "$TMP/data"
	python3 - "$TMP/form-$id" >>"$TMP/store-sha" <<'PY'
import hashlib, sys
body = open(sys.argv[1], "rb").read()
boundary = body.split(b"\r\n", 1)[0]
for part in body.split(boundary)[1:]:
    head, _, data = part.partition(b"\r\n\r\n")
    if b'name="jfr"' in head:
        print(hashlib.sha256(data[:-2]).hexdigest())
PY
done
sort -o "$TMP/store-sha" "$TMP/store-sha"
# braid reads a stored push (its form) as Pyroscope reads the recording
"$BRAID" inspect --top 3 "$TMP/form-$id" >"$TMP/inspect.txt" 2>&1 ||
	fail "braid inspect of a stored JFR push failed: $(cat "$TMP/inspect.txt")"
expect_contains "braid inspect of a stored JFR push" "$TMP/inspect.txt" "JFR profiles: process_cpu:cpu"
expect_contains "braid inspect of a stored JFR push" "$TMP/inspect.txt" "Sample types: cpu/nanoseconds"

# ---- what the upstream received ------------------------------------------------------------------
upstream_get received >"$TMP/received.json"
expect_eq "profiles the strict upstream refused" 0 "$(upstream_get rejected | jq length)"
jq -r --arg s "$SERVICE" '.[] | select(.labels.service_name == $s and .format == "jfr") | .sha256' \
	"$TMP/received.json" | sort >"$TMP/up-sha"
expect_same_file "the jfr fields as stored and as the upstream got them" "$TMP/store-sha" "$TMP/up-sha"
expect_eq "the view of the JFR pushes upstream" sdk \
	"$(jq -r --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s) | .labels.braid_view] | unique | join(",")' "$TMP/received.json")"
echo "# the upstream got $(wc -l <"$TMP/up-sha") jfr fields, $(jq -r --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s) | .bytes] | add' "$TMP/received.json") bytes, as stored"

# ---- a real Pyroscope reads them ---------------------------------------------------------------
if [ -n "$PYRO" ]; then
	range="\"start\":$(((T0 - 600) * 1000)),\"end\":$((($(date +%s) + 600) * 1000))"
	expect_eq "requests the fake and Pyroscope judged apart" "[]" "$(upstream_get disagreements | jq -c '.[:3]')"
	pyro_query Series "{\"matchers\":[\"{service_name=\\\"$SERVICE\\\"}\"],$range}" |
		jq -r '[.labelsSet[]? | [.labels[] | select(.name == "__profile_type__" or .name == "braid_view") | .value] | join(" ")] | unique | .[]' >"$TMP/series"
	echo "# Pyroscope's series of the app: $(tr '\n' ',' <"$TMP/series" | sed 's/,$//')"
	grep -q '^process_cpu:cpu:nanoseconds:cpu:nanoseconds sdk$' "$TMP/series" ||
		fail "Pyroscope has no process_cpu series of the app from its JFR: $(cat "$TMP/series")"
fi

finish
