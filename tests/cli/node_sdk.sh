#!/usr/bin/env bash
# End to end with the real SDK: a Node.js app using @pyroscope/nodejs (from
# npm, cached between runs) pushes to `braid ingest`, which must store what a
# Pyroscope server would: service name, tags, the wall profile with its
# samples/wall/cpu types and the heap profile, non-zero totals, and the host
# PID of the Node process, found from the TCP peer (the app gives no pid tag).
# Then the same with a bearer token and a tenant: the SDK's credentials pass,
# and a wrong token is refused.
. "$(dirname "$0")/lib.sh"

APP_DIR="$SRC_DIR/tests/e2e/node"
for tool in node npm jq; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

npm_modules # sets NPM_DIR
sdk_version=$(jq -r .version "$NPM_DIR/node_modules/@pyroscope/nodejs/package.json")
expect_eq "SDK version" "0.6.4" "$sdk_version"

# run_app OUT [VAR=VALUE...]: runs the app against INGEST_URL; OUT gets its pid
run_app() {
	local out=$1
	shift
	env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$INGEST_URL" \
		RUN_SECONDS=7 "$@" node "$APP_DIR/app.js" >"$out" 2>"$out.err" || {
		fail "the Node app failed:"
		cat "$out" "$out.err" >&2
	}
}

# ---- 1: no auth, attribution by TCP peer ------------------------------------
DATA=$TMP/data
start_ingest "$DATA"
run_app "$TMP/app.out" APP_NAME=braid-e2e-node
stop_ingest
app_pid=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$TMP/app.out")
[ -n "$app_pid" ] || fail "the app did not print its pid"

"$BRAID" store ls --json --limit 0 --data-dir "$DATA" >"$TMP/ls.json"
jq -c '.sdk_profiles[] | {service, profile_name, pid, attribution, spy_name, format,
	sample_rate, labels, types: [.sample_types[] | "\(.type)/\(.unit)=\(.total)"]}' \
	"$TMP/ls.json" >"$TMP/profiles.txt"

wall=$(jq '[.sdk_profiles[] | select(.profile_name == "wall")] | length' "$TMP/ls.json")
heap=$(jq '[.sdk_profiles[] | select(.profile_name == "memory")] | length' "$TMP/ls.json")
[ "$wall" -ge 2 ] || fail "expected at least 2 wall profiles in 7 s at a 2 s flush, got $wall: $(cat "$TMP/profiles.txt")"
[ "$heap" -ge 1 ] || fail "expected heap profiles, got $heap: $(cat "$TMP/profiles.txt")"

# every profile: the service, the tags, the Node SDK's spy, the app's host PID
bad=$(jq -r --arg pid "$app_pid" '.sdk_profiles[] |
	select(.service != "braid-e2e-node" or .labels.service_name != "braid-e2e-node"
	or .labels.region != "test-1" or .labels.team != "braid"
	or .spy_name != "nodespy" or .format != "pprof"
	or (.pid | tostring) != $pid or .attribution != "tcp-peer") | .id' "$TMP/ls.json")
[ -z "$bad" ] || fail "profiles $bad lack the service, tags, spy or the TCP-peer PID $app_pid: $(cat "$TMP/profiles.txt")"

# the wall profiles: samples/count, wall/nanoseconds and cpu/nanoseconds, with
# wall and cpu time summed over them clearly non-zero
types=$(jq -r '[.sdk_profiles[] | select(.profile_name == "wall") | .sample_types[] |
	"\(.type)/\(.unit)"] | unique | join(",")' "$TMP/ls.json")
expect_eq "wall profile sample types" "cpu/nanoseconds,samples/count,wall/nanoseconds" "$types"
wall_ns=$(jq '[.sdk_profiles[] | select(.profile_name == "wall") | .sample_types[] |
	select(.type == "wall") | .total] | add' "$TMP/ls.json")
cpu_ns=$(jq '[.sdk_profiles[] | select(.profile_name == "wall") | .sample_types[] |
	select(.type == "cpu") | .total] | add' "$TMP/ls.json")
[ "$wall_ns" -gt 1000000000 ] || fail "wall time over the run is $wall_ns ns, expected > 1 s"
[ "$cpu_ns" -gt 500000000 ] || fail "CPU time over the run is $cpu_ns ns, expected > 0.5 s of a busy app"
heap_types=$(jq -r '[.sdk_profiles[] | select(.profile_name == "memory") | .sample_types[] |
	select(.total > 0) | "\(.type)/\(.unit)"] | unique | join(",")' "$TMP/ls.json")
expect_eq "heap profile sample types with non-zero totals" "inuse_objects/count,inuse_space/bytes" "$heap_types"
# the process row: the node binary, its command line
"$BRAID" store stats --json --data-dir "$DATA" >"$TMP/stats.json"
procs=$(jq '.tables.processes.rows' "$TMP/stats.json")
expect_eq "processes stored" "1" "$procs"

# ---- 2: a bearer token and a tenant -------------------------------------------
DATA2=$TMP/data2
start_ingest "$DATA2" --auth-token s3cret-token
run_app "$TMP/app2.out" APP_NAME=braid-e2e-auth AUTH_TOKEN=s3cret-token TENANT_ID=team-a
stop_ingest
"$BRAID" store ls --json --limit 0 --data-dir "$DATA2" >"$TMP/ls2.json"
n=$(jq '[.sdk_profiles[] | select(.service == "braid-e2e-auth" and .tenant == "team-a")] | length' "$TMP/ls2.json")
[ "$n" -ge 2 ] || fail "with a token and a tenant: expected the app's profiles under tenant team-a, got $n"

DATA3=$TMP/data3
start_ingest "$DATA3" --auth-token s3cret-token
run_app "$TMP/app3.out" APP_NAME=braid-e2e-wrong AUTH_TOKEN=wrong-token RUN_SECONDS=3
curl -s "$INGEST_URL/metrics" >"$TMP/metrics3.txt"
stop_ingest
"$BRAID" store ls --json --limit 0 --data-dir "$DATA3" >"$TMP/ls3.json"
n=$(jq '.sdk_profiles | length' "$TMP/ls3.json")
expect_eq "profiles stored with a wrong token" "0" "$n"
expect_contains "401s counted" "$TMP/metrics3.txt" 'braid_ingest_requests_total{endpoint="/ingest",status="401"}'

finish
