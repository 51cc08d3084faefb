#!/usr/bin/env bash
# braid agent as a sidecar (--no-ebpf: no root needed) against the strict
# fake Pyroscope (tests/e2e/upstream), which decodes every profile with npm's
# pprof-format:
#   - the configuration: flags over BRAID_* over the config file, errors;
#   - SDK pushes reach the upstream unchanged (bytes, types, totals), with the
#     tenant, the credentials, the extra header and a stable UUID;
#   - the upstream down for 30 s, then up: every profile delivered, a resend
#     carries the same ID;
#   - 429 with Retry-After: the next try waits that long;
#   - SIGTERM: exit 0 within 10 s with the outbox flushed;
#   - kill -9 with the upstream down, restart: everything acknowledged arrives;
#   - a profile the upstream refuses (400: too old) becomes a dead letter with
#     the reason, the one beside it goes;
#   - the legacy /ingest API with basic auth.
. "$(dirname "$0")/lib.sh"
: "${PUSH_BODY:?}"

for tool in node npm jq curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 77
	fi
done

NODE=$FIXTURES/node-sdk-0.6.4
GO=$FIXTURES/go-runtime-pprof
REQ2_QUERY='format=pprof&from=1795238876&until=1795238878&spyName=nodespy&sampleRate=17'


# push_node TAGS [FILE]: the Node SDK's wall profile (or FILE) pushed to the
# agent by the legacy API, named checkout{TAGS}; must be acknowledged 200.
push_node() {
	local tags=$1 file=${2:-$NODE/req2.pprof.gz} code
	code=$(curl -s -o "$TMP/push-reply" -w '%{http_code}' --data-binary "@$file" \
		-H 'Content-Type: application/octet-stream' \
		"$AGENT_URL/ingest?$REQ2_QUERY&name=checkout%7B$tags%7D") || true
	if [ "$code" != 200 ]; then
		fail "push checkout{$tags}: HTTP $code: $(cat "$TMP/push-reply")"
	fi
}

# wait_received JQ_FILTER COUNT SECONDS: waits until the fake has accepted at
# least COUNT profiles matching the filter (over .[]); 1 if it never does.
# SECONDS times SLOW.
wait_received() {
	local filter=$1 want=$2 secs=$(($3 * SLOW)) n=0
	for _ in $(seq 1 $((secs * 10))); do
		n=$(upstream_get received | jq "[.[] | select($filter)] | length")
		[ "$n" -ge "$want" ] && return 0
		sleep 0.1
	done
	echo "waited $secs s for $want profiles matching $filter, got $n" >&2
	return 1
}

# metric NAME{LABELS}: its value in the agent's /metrics
metric() {
	curl -fsS "$AGENT_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

sha_of_gz() {
	gzip -dc "$1" | sha256sum | cut -d' ' -f1
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- 1. configuration: flags, then BRAID_*, then the file, then defaults -------------
CONF=$TMP/agent.conf
cat >"$CONF" <<'EOF'
# a comment, then a blank line

freq = 50
upstream = http://127.0.0.1:9 # the discard port
upstream-header = X-A: 1
upstream-header = "X-B: two # not a comment"
upstream-token = s3cret-token
EOF
"$BRAID" agent --config "$CONF" --print-config >"$TMP/pc1"
expect_contains "freq from the file" "$TMP/pc1" "freq                       = 50"
expect_contains "the file's line" "$TMP/pc1" "# config file: $CONF:3"
expect_contains "a repeated option" "$TMP/pc1" "X-B: two # not a comment"
expect_contains "a secret is not printed" "$TMP/pc1" "<secret, 12 bytes>"
grep -q s3cret "$TMP/pc1" && fail "--print-config shows the upstream token"
BRAID_FREQ=60 BRAID_CONFIG=$CONF "$BRAID" agent --print-config >"$TMP/pc2"
expect_contains "the environment over the file" "$TMP/pc2" "freq                       = 60"
expect_contains "the environment named" "$TMP/pc2" "# environment: BRAID_FREQ"
BRAID_FREQ=60 "$BRAID" agent --config "$CONF" --freq 70 --print-config >"$TMP/pc3"
expect_contains "a flag over both" "$TMP/pc3" "freq                       = 70                             # flag: --freq"
BRAID_LISTEN='127.0.0.1:1,127.0.0.1:2' "$BRAID" agent --print-config >"$TMP/pc4"
expect_eq "BRAID_LISTEN splits at commas" 2 "$(grep -c '^listen ' "$TMP/pc4")"
expect_contains "defaults" "$TMP/pc4" "flush-timeout              = 5s                             # default"

# mistakes: exit 2, the source named
bad_config() {
	local what=$1 want=$2
	shift 2
	local rc=0
	"$@" >/dev/null 2>"$TMP/bad.err" || rc=$?
	expect_eq "$what: exit status" 2 "$rc"
	expect_contains "$what: message" "$TMP/bad.err" "$want"
}
printf 'freq = 50\nfrequency = 3\n' >"$TMP/bad.conf"
bad_config "an unknown key" "$TMP/bad.conf:2: unknown option \"frequency\"" \
	"$BRAID" agent --config "$TMP/bad.conf" --print-config
bad_config "a bad value from the environment" "BRAID_FREQ (--freq)" \
	env BRAID_FREQ=fast "$BRAID" agent --print-config
bad_config "a bad duration" "--flush-timeout takes a duration" \
	"$BRAID" agent --flush-timeout 5x --print-config
bad_config "a tenant without an upstream" "--tenant) is set, but --upstream is not" \
	env BRAID_TENANT=t "$BRAID" agent --print-config
bad_config "an upstream without a scheme" "must start with http:// or https://" \
	"$BRAID" agent --upstream pyroscope:4040 --print-config
bad_config "a missing config file" "agent.missing" \
	"$BRAID" agent --config "$TMP/agent.missing" --print-config

# ---- 2. SDK profiles reach the upstream unchanged ------------------------------------------
start_upstream --reject-older-than 0 --bearer up-token --require-tenant
start_agent "$TMP/d1" --no-ebpf --upstream "$UPSTREAM_URL" --tenant team-a --upstream-token up-token \
	--upstream-header 'X-Braid-Test: yes' --retry-max-backoff 3s
# the first exactly as the SDK sent it (fixtures/.../req2.path)
code=$(curl -s -o "$TMP/push-reply" -w '%{http_code}' --data-binary "@$NODE/req2.pprof.gz" \
	-H 'Content-Type: application/octet-stream' "$AGENT_URL$(cat "$NODE/req2.path")") || true
expect_eq "the SDK's request replayed to the agent" 200 "$code"
push_node "region=eu-1" "$NODE/req3.pprof.gz"
"$PUSH_BODY" -l __name__=process_cpu -l service_name=gosvc -l env=ci -p "$GO/cpu.pprof.gz" \
	>"$TMP/push.bin"
code=$(curl -s -o "$TMP/push-reply" -w '%{http_code}' --data-binary "@$TMP/push.bin" \
	-H 'Content-Type: application/proto' "$AGENT_URL/push.v1.PusherService/Push") || true
expect_eq "a push API request to the agent" 200 "$code"
if wait_received 'true' 3 15; then
	upstream_get received >"$TMP/r2.json"
	upstream_get requests >"$TMP/q2.json"
	jq -e '[.[] | .api] | all(. == "push")' "$TMP/r2.json" >/dev/null ||
		fail "the push API was not used: $(jq -c '[.[] | .api]' "$TMP/r2.json")"
	jq -e '[.[] | .tenant] | all(. == "team-a")' "$TMP/r2.json" >/dev/null ||
		fail "X-Scope-OrgID is not team-a: $(jq -c '[.[] | .tenant]' "$TMP/r2.json")"
	jq -e '[.[] | .headers["x-braid-test"]] | all(. == "yes")' "$TMP/r2.json" >/dev/null ||
		fail "the extra header did not arrive"
	jq -e '[.[] | .labels.braid_view] | all(. == "sdk")' "$TMP/r2.json" >/dev/null ||
		fail "SDK profiles lack braid_view=sdk: $(jq -c '[.[] | .labels]' "$TMP/r2.json")"
	for id in $(jq -r '.[] | .id' "$TMP/r2.json"); do
		[[ $id =~ $UUID_RE ]] || fail "RawSample.ID [$id] is not a version-4 UUID"
	done
	# the bytes as the SDK pushed them (the fake hashes the gunzipped pprof)
	wall=$(jq -c '[.[] | select(.labels.service_name == "checkout" and
		(.sample_types | map(.[0]) | index("wall")))][0]' "$TMP/r2.json")
	expect_eq "the wall profile's bytes" "$(sha_of_gz "$NODE/req2.pprof.gz")" \
		"$(jq -r .sha256 <<<"$wall")"
	expect_eq "the wall profile's tags" "eu-1" "$(jq -r .labels.region <<<"$wall")"
	expect_eq "the wall profile's otel tags" "com.grafana.pyroscope/nodejs" \
		"$(jq -r '.labels["otel.scope.name"]' <<<"$wall")"
	jq -e '.totals | all(. > 0)' <<<"$wall" >/dev/null || fail "zero totals: $wall"
	heap=$(jq -c '[.[] | select(.labels.service_name == "checkout" and
		(.sample_types | map(.[0]) | index("inuse_space")))][0]' "$TMP/r2.json")
	expect_eq "the heap profile's bytes" "$(sha_of_gz "$NODE/req3.pprof.gz")" \
		"$(jq -r .sha256 <<<"$heap")"
	gosvc=$(jq -c '[.[] | select(.labels.service_name == "gosvc")][0]' "$TMP/r2.json")
	expect_eq "the Go profile's bytes" "$(sha_of_gz "$GO/cpu.pprof.gz")" \
		"$(jq -r .sha256 <<<"$gosvc")"
	expect_eq "the Go profile's labels" "process_cpu ci sdk" \
		"$(jq -r '[.labels.__name__, .labels.env, .labels.braid_view] | join(" ")' <<<"$gosvc")"
else
	fail "the SDK profiles did not reach the upstream: $(upstream_get received | jq -c length)"
	cat "$AGENT_LOG" >&2
fi

# ---- 3. the upstream down for 30 s, then up ------------------------------------------------
upstream_post 'down?seconds=30' >/dev/null
t_down=$(date +%s)
for n in 1 2 3 4 5 6; do
	push_node "region=eu-1,n=$n"
	sleep 4
done
if wait_received '.labels.n != null' 6 45; then
	t_all=$(date +%s)
	upstream_get received >"$TMP/r3.json"
	for n in 1 2 3 4 5 6; do
		got=$(jq --arg n "$n" '[.[] | select(.labels.n == $n)]' "$TMP/r3.json")
		expect_eq "profile n=$n delivered" 1 "$(jq '[.[].id] | unique | length' <<<"$got")"
		expect_eq "profile n=$n's bytes" "$(sha_of_gz "$NODE/req2.pprof.gz")" \
			"$(jq -r '.[0].sha256' <<<"$got")"
	done
	echo "# the upstream was down 30 s; all 6 profiles delivered $((t_all - t_down)) s after it went down"
	[ $((t_all - t_down)) -le $((30 + 10 * SLOW)) ] ||
		fail "delivery took $((t_all - t_down)) s after a 30 s outage (retry-max-backoff 3s; at most $((30 + 10 * SLOW)) s)"
else
	fail "profiles pushed while the upstream was down were not all delivered: $(upstream_get received | jq -c '[.[] | .labels.n]')"
	cat "$AGENT_LOG" >&2
fi
failed_requests=$(metric 'braid_forward_requests_total{reply="none"}')
[ "${failed_requests:-0}" -gt 0 ] || fail "no failed request counted while the upstream was down"
grep -q "braid: agent: upstream: no reply from $UPSTREAM_URL" "$AGENT_LOG" ||
	fail "the agent did not log the outage: $(cat "$AGENT_LOG")"

# ---- 4. 429 with Retry-After -------------------------------------------------------------
upstream_post reset >/dev/null
upstream_post fail '{"status": 429, "count": 1, "headers": {"Retry-After": "3"}, "message": "slow down"}' >/dev/null
push_node "n=7"
if wait_received '.labels.n == "7"' 1 15; then
	upstream_get requests >"$TMP/q4.json"
	t429=$(jq '[.[] | select(.status == 429)][0].t_ms' "$TMP/q4.json")
	tok=$(jq '[.[] | select(.status == 200)][0].t_ms' "$TMP/q4.json")
	wait_ms=$((tok - t429))
	echo "# 429 with Retry-After: 3; the next try came $wait_ms ms later"
	[ "$wait_ms" -ge 3000 ] || fail "the retry after a 429 with Retry-After: 3 came after $wait_ms ms"
	[ "$wait_ms" -le $((3000 + 2500 * SLOW)) ] ||
		fail "the retry after a 429 with Retry-After: 3 came only after $wait_ms ms (at most $((3000 + 2500 * SLOW)))"
else
	fail "the profile refused with 429 was never delivered"
fi

# ---- 5. SIGTERM flushes the outbox -----------------------------------------------------
upstream_post reset >/dev/null
for n in 8 9 10; do
	push_node "n=$n"
done
stop_agent
echo "# SIGTERM right after 3 pushes: exit 0 after $STOP_MS ms"
upstream_get received >"$TMP/r5.json"
expect_eq "profiles flushed at SIGTERM" "10 8 9" \
	"$(jq -r '[.[] | .labels.n] | unique | join(" ")' "$TMP/r5.json")"
expect_eq "each with one ID" 3 "$(jq '[.[] | .id] | unique | length' "$TMP/r5.json")"
expect_eq "the outbox after the flush" 0 \
	"$("$BRAID" store stats --json --data-dir "$TMP/d1" | jq '.tables.outbox.rows')"
expect_contains "the stop summary" "$AGENT_LOG" "braid: agent: stopped:"

# ---- 6. kill -9 with the upstream down, then restart ---------------------------------------
upstream_post reset >/dev/null
upstream_post down >/dev/null
start_agent "$TMP/d1" --no-ebpf --upstream "$UPSTREAM_URL" --tenant team-a --upstream-token up-token \
	--retry-max-backoff 2s
for n in 11 12 13 14 15; do
	push_node "n=$n" # acknowledged: 200
done
sleep $((2 * SLOW)) # the merger queues them; the forwarder fails on them
kill_agent
upstream_post up >/dev/null
start_agent "$TMP/d1" --no-ebpf --upstream "$UPSTREAM_URL" --tenant team-a --upstream-token up-token \
	--retry-max-backoff 2s
if wait_received '.labels.n != null' 5 20; then
	upstream_get received >"$TMP/r6.json"
	expect_eq "every profile acknowledged before kill -9 delivered after the restart" \
		"11 12 13 14 15" "$(jq -r '[.[] | .labels.n] | unique | sort_by(tonumber) | join(" ")' "$TMP/r6.json")"
	expect_eq "none twice with different IDs" 5 "$(jq '[.[] | .id] | unique | length' "$TMP/r6.json")"
else
	fail "after kill -9 and a restart, not every acknowledged profile arrived: $(upstream_get received | jq -c '[.[] | .labels.n]')"
	cat "$AGENT_LOG" >&2
fi
stop_agent

# ---- 7. refused for good: a dead letter with the reason ----------------------------------------
# A real Pyroscope refuses profiles older than an hour; the fixture is.
start_upstream
printf 'main;handle;work 7\nmain;idle 3\n' | "$BRAID" convert - --to pprof -o "$TMP/fresh.pb.gz"
start_agent "$TMP/d7" --no-ebpf --upstream "$UPSTREAM_URL"
push_node "n=old"
push_node "n=fresh" "$TMP/fresh.pb.gz"
if wait_received '.labels.n == "fresh"' 1 15; then
	for _ in $(seq 1 $((50 * SLOW))); do
		dead=$("$BRAID" store ls --json --data-dir "$TMP/d7" | jq '.dead_letters')
		[ "$(jq length <<<"$dead")" -ge 1 ] && break
		sleep 0.1
	done
	expect_eq "dead letters" 1 "$(jq length <<<"$dead")"
	expect_eq "the dead letter's status" 400 "$(jq '.[0].status' <<<"$dead")"
	case "$(jq -r '.[0].reason' <<<"$dead")" in
	*"outside of ingestion window"*) ;;
	*) fail "the dead letter's reason does not say why: $(jq -r '.[0].reason' <<<"$dead")" ;;
	esac
	expect_eq "the dead letter is the old profile" "n=old" \
		"$(jq -r '"n=" + .[0].labels.n' <<<"$dead")"
	expect_eq "dead letters in /metrics" 1 "$(metric 'braid_forward_profiles_total{outcome="dead_letter"}')"
	expect_eq "the outbox" 0 "$("$BRAID" store stats --json --data-dir "$TMP/d7" | jq '.tables.outbox.rows')"
else
	fail "the fresh profile beside a refused one was not delivered"
	cat "$AGENT_LOG" >&2
fi
stop_agent

# ---- 8. the legacy /ingest API, basic auth ----------------------------------------------
start_upstream --reject-older-than 0 --basic-auth 'braid:pa ss'
printf 'braid:pa ss\n' >"$TMP/basic"
start_agent "$TMP/d8" --no-ebpf --upstream "$UPSTREAM_URL" --upstream-api ingest \
	--upstream-basic-auth-file "$TMP/basic"
push_node "region=eu-1"
if wait_received 'true' 1 15; then
	rec=$(upstream_get received | jq -c '.[0]')
	expect_eq "the legacy API" ingest "$(jq -r .api <<<"$rec")"
	expect_eq "its service" checkout "$(jq -r .labels.service_name <<<"$rec")"
	expect_eq "its view tag" sdk "$(jq -r .labels.braid_view <<<"$rec")"
	expect_eq "its spy, as the SDK pushed it" nodespy "$(jq -r .query.spyName <<<"$rec")"
	expect_eq "its bytes" "$(sha_of_gz "$NODE/req2.pprof.gz")" "$(jq -r .sha256 <<<"$rec")"
else
	fail "the legacy API did not deliver: $(upstream_get requests | jq -c .)"
	cat "$AGENT_LOG" >&2
fi
stop_agent

finish
