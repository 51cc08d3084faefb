#!/usr/bin/env bash
# The fake Pyroscope (tests/e2e/upstream/fake_pyroscope.js) on its own, so
# that the forwarder's tests can trust what it accepts and refuses:
#   1. a push of two series (proto) is accepted: both records have their
#      labels, IDs, sample types and totals, the totals as Go's pprof reads
#      the same files; a gzipped JSON push too;
#   2. the Node SDK's real legacy request (req2) is accepted with
#      service_name=checkout and its tags, and is the same profile as its
#      push copy (sha256, totals, the dumped pprof is the file gunzipped);
#   3. what Pyroscope refuses is refused, with its status and message: labels
#      (service_name, __name__, duplicates, names), content type, garbage
#      profiles, malformed pprof (built with pprof-format), the ingestion
#      window, a bad legacy name; one bad series refuses the whole request;
#      random bytes never get anything but a 4xx;
#   4. auth: bearer and basic credentials, the tenant header;
#   5. the admin API: down/up (connections refused, then served), a 429 rule
#      with Retry-After once, a delay rule, and the request log of it all;
#   6. --forward-to, with a second fake behind: requests pass on, the reply
#      (status, message, Retry-After) is the one behind, the requests judged
#      apart are listed, a server that is down makes a 502.
# Skips (77) without node or npm.
. "$(dirname "$0")/lib.sh"
: "${PUSH_BODY:?}" "${SRC_DIR:?}"

for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed (scripts/deps.sh installs it): the fake Pyroscope runs on Node.js" >&2
		exit 77
	fi
done
for tool in jq curl; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

GO=$FIXTURES/go-runtime-pprof
NODE=$FIXTURES/node-sdk-0.6.4
PUSH=/push.v1.PusherService/Push
UUID1=0b8e5bb4-5d8f-4c59-9f0e-0d5c8b3b1a01
UUID2=0b8e5bb4-5d8f-4c59-9f0e-0d5c8b3b1a02
STATUSES=() # what each request to the data port was answered, for the request log

# post WHAT STATUS PATH [curl options...]: a request to the data port; the
# reply in $TMP/reply, its headers in $TMP/reply.h
post() {
	local what=$1 want=$2 path=$3 got
	shift 3
	got=$(curl -sS -o "$TMP/reply" -D "$TMP/reply.h" -w '%{http_code}' "$@" "$UPSTREAM_URL$path" 2>"$TMP/curl.err") ||
		got="curl failed: $(cat "$TMP/curl.err")"
	STATUSES+=("$want")
	expect_eq "$what: status (reply $(head -c 300 "$TMP/reply" 2>/dev/null))" "$want" "$got"
}
# push WHAT STATUS FILE [curl options...]: a proto push of FILE
push() {
	local what=$1 want=$2 file=$3
	shift 3
	post "$what" "$want" "$PUSH" -H 'Content-Type: application/proto' --data-binary @"$file" "$@"
}
# refused WHAT STATUS TEXT FILE [push_body options...]: FILE is built by
# $PUSH_BODY with the options; its push must get STATUS and a message with TEXT
refused() {
	local what=$1 want=$2 text=$3 file=$4
	shift 4
	"$PUSH_BODY" "$@" >"$file"
	push "$what" "$want" "$file"
	[ -z "$text" ] || expect_contains "$what: message" "$TMP/reply" "$text"
}
# fields N JQ-PATHS FILE: the fields of record N of FILE, space-separated
fields() {
	jq -r ".[$1] | [$2] | map(if type == \"array\" then map(if type == \"array\" then join(\"/\") else tostring end) | join(\",\") else tostring end) | join(\" \")" "$3"
}
# go_totals FILE: each sample type's total as Go's pprof reads the profile
go_totals() {
	pprof -raw "$1" 2>/dev/null | awk '
		/^Samples:/ { getline; s = 1; next }
		/^[A-Z]/ { s = 0 }
		s && /:/ { sub(/:.*/, ""); for (i = 1; i <= NF; i++) t[i] += $i; n = NF }
		END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), t[i]; print "" }'
}
# check_request_log: /admin/requests has each request of STATUSES, in order
check_request_log() {
	upstream_get requests >"$TMP/requests.json"
	expect_eq "the request log's statuses" "${STATUSES[*]}" "$(jq -r '[.[].status] | join(" ")' "$TMP/requests.json")"
	expect_eq "the request log's numbers" "$(seq -s ' ' 1 ${#STATUSES[@]})" \
		"$(jq -r '[.[].request] | join(" ")' "$TMP/requests.json")"
	local rej
	rej=$(printf '%s\n' "${STATUSES[@]}" | grep -vc '^200$' || true)
	expect_eq "rejected requests recorded" "$rej" "$(upstream_get rejected | jq length)"
	expect_eq "lines of the fake's --log" "$(($(upstream_get received | jq length) + rej))" \
		"$(wc -l <"$UPSTREAM_DIR/received.jsonl")"
}

# ---- 1: a push of two series ----------------------------------------------------------------
# the fixtures carry their capture time: no window while they are replayed
start_upstream --reject-older-than 0 --reject-newer-than 0
"$PUSH_BODY" -l __name__=process_cpu -l service_name=shop -l env=ci --id "$UUID1" -p "$GO/cpu.pprof.gz" \
	--series -l __name__=wall -l service_name=shop -l region=eu-1 --id "$UUID2" -p "$NODE/req2.pprof.gz" \
	>"$TMP/two.bin"
push "two series" 200 "$TMP/two.bin" -H 'User-Agent: braid-test/1'
[ -s "$TMP/reply" ] && fail "push: 200 with a body: $(cat "$TMP/reply")"
grep -qi '^content-type: application/proto' "$TMP/reply.h" || fail "push: the reply is not application/proto: $(cat "$TMP/reply.h")"
upstream_get received >"$TMP/rcv.json"
expect_eq "records of the two-series push" "2" "$(jq length "$TMP/rcv.json")"
expect_eq "first record" "1 push 1 shop process_cpu ci $UUID1 samples/count,cpu/nanoseconds true braid-test/1" \
	"$(fields 0 '.seq, .api, .request, .labels.service_name, .labels.__name__, .labels.env, .id,
		.sample_types, .gzipped, .user_agent' "$TMP/rcv.json")"
expect_eq "second record" "2 push shop wall eu-1 $UUID2 samples/count,wall/nanoseconds,cpu/nanoseconds wall,nanoseconds 14" \
	"$(fields 1 '.seq, .api, .labels.service_name, .labels.__name__, .labels.region, .id,
		.sample_types, .period_type, .n_samples' "$TMP/rcv.json")"
cpu_totals=$(jq -r '.[0].totals | join(",")' "$TMP/rcv.json")
wall_totals=$(jq -r '.[1].totals | join(",")' "$TMP/rcv.json")
expect_eq "Go CPU profile totals, against pprof -raw" "$(go_totals "$GO/cpu.pprof.gz")" "$cpu_totals"
expect_eq "Node wall profile totals, against pprof -raw" "$(go_totals "$NODE/req2.pprof.gz")" "$wall_totals"
case "$cpu_totals,$wall_totals" in *,0,* | 0,* | *,0) fail "a zero total: cpu $cpu_totals, wall $wall_totals" ;; esac
# each dumped profile is the fixture gunzipped
gunzip -c "$GO/cpu.pprof.gz" >"$TMP/cpu.pb"
expect_same_file "the dumped Go profile and the fixture" "$TMP/cpu.pb" "$(jq -r '.[0].dump' "$TMP/rcv.json")"

"$PUSH_BODY" --json --gzip -l __name__=process_cpu -l service_name=shop-json -p "$GO/cpu.pprof.gz" >"$TMP/push.json.gz"
post "gzipped JSON push" 200 "$PUSH" -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' \
	--data-binary @"$TMP/push.json.gz"
expect_eq "JSON push reply" "{}" "$(cat "$TMP/reply")"
expect_eq "JSON push totals" "$cpu_totals" "$(upstream_get 'received?since=2' | jq -r '.[0].totals | join(",")')"

# ---- 2: the Node SDK's legacy request ----------------------------------------------------------
post "legacy pprof (req2)" 200 "$(cat "$NODE/req2.path")" -H 'Content-Type: application/octet-stream' \
	--data-binary @"$NODE/req2.pprof.gz"
[ -s "$TMP/reply" ] && fail "legacy: 200 with a body: $(cat "$TMP/reply")"
upstream_get 'received?api=ingest' >"$TMP/ing.json"
expect_eq "legacy record" "checkout eu-1 0.6.4 nodejs com.grafana.pyroscope/nodejs null nodespy pprof 17 1795238876 true" \
	"$(fields 0 '.labels.service_name, .labels.region, .labels["otel.scope.version"],
		.labels["process.runtime.name"], .labels["otel.scope.name"], .labels.__name__, .query.spyName,
		.query.format, .query.sampleRate, .query.from, .gzipped' "$TMP/ing.json")"
expect_eq "legacy and push copies of req2: totals" "$wall_totals" "$(jq -r '.[0].totals | join(",")' "$TMP/ing.json")"
expect_eq "legacy and push copies of req2: sha256" "$(jq -r '.[1].sha256' "$TMP/rcv.json")" "$(jq -r '.[0].sha256' "$TMP/ing.json")"
expect_eq "req2's sha256" "$(gunzip -c "$NODE/req2.pprof.gz" | sha256sum | cut -d' ' -f1)" "$(jq -r '.[0].sha256' "$TMP/ing.json")"
# the SDK's functions go by their display names (./app2.js:hashPassword:7)
jq -e '.[0].functions | (map(select(. == "hashPassword")) | length == 0) and
	(map(select(test("hashPassword"))) | length > 0)' "$TMP/ing.json" >/dev/null ||
	fail "legacy record: no function named after hashPassword: $(jq -c '.[0].functions' "$TMP/ing.json")"

printf 'main;work;fib 30\nmain;idle 8\n' >"$TMP/folded.txt"
post "legacy folded" 200 "/ingest?name=folded-app.cpu%7Benv%3Dci%7D&from=$(date +%s)&until=$(($(date +%s) + 10))" \
	--data-binary @"$TMP/folded.txt"
expect_eq "legacy folded record" "folded-app process_cpu ci 38 2" \
	"$(upstream_get 'received?api=ingest' | jq -r '.[1] | "\(.labels.service_name) \(.labels.__name__) \(.labels.env) \(.totals[0]) \(.n_samples)"')"

# ---- 3: refusals ---------------------------------------------------------------------------------
CPU=(-p "$GO/cpu.pprof.gz")
# Pyroscope v2 names a series without service_name unknown_service, and takes
# any non-empty UTF-8 __name__
refused "no service_name: taken as unknown_service" 200 "" "$TMP/r1.bin" -l __name__=process_cpu -l nosvc=1 "${CPU[@]}"
expect_eq "the series without service_name" unknown_service \
	"$(upstream_get received | jq -r '[.[] | select(.labels.nosvc == "1") | .labels.service_name] | join(",")')"
refused "an empty __name__" 400 "invalid metric name" "$TMP/r2.bin" -l __name__= -l service_name=shop "${CPU[@]}"
refused "duplicate label" 400 "has duplicate label name: 'env'" "$TMP/r3.bin" \
	-l __name__=process_cpu -l service_name=shop -l env=a -l env=b "${CPU[@]}"
refused "bad label name" 400 "invalid label name '9lives'" "$TMP/r4.bin" \
	-l __name__=process_cpu -l service_name=shop -l 9lives=x "${CPU[@]}"
refused "a label value not UTF-8" 400 "invalid label value" "$TMP/r4u.bin" \
	-l __name__=process_cpu -l service_name=shop -l "bytes=$(printf 'a\377b')" "${CPU[@]}"
refused "no labels" 400 "invalid labels '{service_name=\\\"unknown_service\\\"}' with error: invalid metric name" \
	"$TMP/r5.bin" "${CPU[@]}"
refused "a series without samples" 400 "no profiles received" "$TMP/r6.bin" -l __name__=process_cpu -l service_name=shop
head -c 3000 /dev/zero | tr '\0' a >"$TMP/long.txt"
refused "a label value over 2048 bytes" 400 "has label value too long" "$TMP/r7.bin" \
	-l __name__=process_cpu -l service_name=shop -l "long=$(cat "$TMP/long.txt")" "${CPU[@]}"
printf 'this is not a profile' >"$TMP/garbage"
# an undecodable profile: a 500 from Pyroscope v2 (code unknown), not a 400
refused "garbage raw_profile" 500 "failed to parse the profile" "$TMP/r8.bin" \
	-l __name__=process_cpu -l service_name=shop -p "$TMP/garbage"
gzip -c "$TMP/garbage" | head -c 20 >"$TMP/garbage.gz"
refused "truncated gzip raw_profile" 500 "failed to decompress" "$TMP/r9.bin" \
	-l __name__=process_cpu -l service_name=shop -p "$TMP/garbage.gz"
# one bad series refuses the request: its good series is not kept
refused "a good and a bad series" 400 "has duplicate label name" "$TMP/r10.bin" \
	-l __name__=process_cpu -l service_name=kept-not "${CPU[@]}" \
	--series -l __name__=wall -l service_name=kept-not -l env=a -l env=b "${CPU[@]}"
expect_eq "profiles kept from refused requests" "0" \
	"$(upstream_get received | jq '[.[] | select(.labels.service_name == "kept-not")] | length')"
post "wrong content type" 415 "$PUSH" -H 'Content-Type: text/plain' --data-binary @"$TMP/two.bin"
push "bad gzip request" 400 "$TMP/two.bin" -H 'Content-Encoding: gzip'
expect_contains "bad gzip request: message" "$TMP/reply" "get decompressor: gzip"
post "GET on push" 405 "$PUSH"
post "unknown path" 404 /api/v1/push -H 'Content-Type: application/proto' --data-binary @"$TMP/two.bin"
post "legacy: bad name" 400 "/ingest?name=bad%20app&format=pprof" --data-binary @"$NODE/req2.pprof.gz"
expect_contains "legacy: bad name: message" "$TMP/reply" "invalid app name"
post "legacy: undecodable pprof" 422 "/ingest?name=app&format=pprof" --data-binary @"$TMP/garbage"
post "legacy: prev_profile" 422 "/ingest?name=app" -F "profile=@$NODE/req2.pprof.gz" -F "prev_profile=@$NODE/req2.pprof.gz"
post "legacy: not folded" 422 "/ingest?name=app" --data-binary 'no count here'

# malformed pprof and the ingestion window, with profiles pprof-format writes
cat >"$TMP/mkprof.js" <<'EOF'
// mkprof.js OUT AGE_SECONDS VARIANT: a one-sample CPU profile taken AGE_SECONDS ago
const fs = require('fs');
const { Profile, ValueType, Sample, Location, Line, Function: Fn, StringTable } = require('pprof-format');
const [out, age, v] = process.argv.slice(2);
const st = new StringTable();
const fn = new Fn({ id: 1, name: st.dedup('main'), systemName: st.dedup('main'), filename: st.dedup('main.go') });
const p = new Profile({
	sampleType: [new ValueType({ type: st.dedup(v === 'dash' ? 'cpu-time' : 'cpu'), unit: st.dedup('nanoseconds') })],
	sample: [new Sample({ locationId: [v === 'noloc' ? 99 : 1], value: v === 'values' ? [1, 2] : [10000000] })],
	location: [new Location({ id: v === 'loc0' ? 0 : 1, line: [new Line({ functionId: 1, line: 3 })] })],
	function: [fn],
	periodType: new ValueType({ type: st.dedup('cpu'), unit: st.dedup('nanoseconds') }),
	period: 10000000,
	timeNanos: BigInt(Date.now() - Number(age) * 1000) * 1000000n,
	stringTable: st,
});
fs.writeFileSync(out, p.encode());
EOF
mkprof() {
	NODE_PATH="$NPM_DIR/node_modules" node "$TMP/mkprof.js" "$@"
}
for v in ok dash values loc0 noloc; do
	mkprof "$TMP/$v.pb" 10 "$v"
done
mkprof "$TMP/old.pb" 7200 ok
mkprof "$TMP/new.pb" -3600 ok
# the defaults: older than 1 h or newer than 10 min is refused
upstream_post config '{"reject_older_than": 3600, "reject_newer_than": 600}' >/dev/null
S=(-l __name__=process_cpu -l service_name=made)
refused "a profile of now" 200 "" "$TMP/p1.bin" "${S[@]}" -p "$TMP/ok.pb"
refused "a profile 2 h old" 400 "is outside of ingestion window" "$TMP/p2.bin" "${S[@]}" -p "$TMP/old.pb"
refused "a profile 1 h ahead" 400 "is outside of ingestion window" "$TMP/p3.bin" "${S[@]}" -p "$TMP/new.pb"
refused "a sample type with -" 400 "sample type contains -" "$TMP/p4.bin" "${S[@]}" -p "$TMP/dash.pb"
refused "2 values for 1 type" 400 "sample value length mismatch" "$TMP/p5.bin" "${S[@]}" -p "$TMP/values.pb"
refused "location id 0" 400 "location id is 0" "$TMP/p6.bin" "${S[@]}" -p "$TMP/loc0.pb"
# a sample through a location that does not exist: taken, the sample dropped
refused "a missing location: taken" 200 "" "$TMP/p7.bin" -l __name__=process_cpu -l service_name=noloc -p "$TMP/noloc.pb"
expect_eq "the sample through a missing location: dropped (dropped_samples, kept_totals)" "1 0" \
	"$(upstream_get received | jq -r '[.[] | select(.labels.service_name == "noloc")][0] | "\(.dropped_samples) \(.kept_totals[0])"')"
upstream_post config '{"max_samples": 100, "reject_older_than": 0, "reject_newer_than": 0}' >/dev/null
refused "over --max-samples" 400 "exceeds the samples count limit" "$TMP/p8.bin" "${S[@]}" "${CPU[@]}"
upstream_post config '{"max_samples": 16000}' >/dev/null

# random bytes, as a request and as a profile: a 4xx, never a crash
for i in 1 2 3 4 5 6 7 8; do
	head -c $((i * 97)) /dev/urandom >"$TMP/rand"
	got=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/proto' \
		--data-binary @"$TMP/rand" "$UPSTREAM_URL$PUSH" 2>&1) || got="curl failed: $got"
	STATUSES+=("$got")
	case "$got" in 4??) ;; *) fail "random request $i: $got, expected a 4xx" ;; esac
	"$PUSH_BODY" "${S[@]}" -p "$TMP/rand" >"$TMP/rand.bin"
	push "random profile $i" 500 "$TMP/rand.bin"
done
kill -0 "$UPSTREAM_PID" 2>/dev/null || fail "the fake died of random input: $(cat "$UPSTREAM_DIR/stderr")"

# ---- 5: the admin API ------------------------------------------------------------------------------
upstream_post down >/dev/null
if curl -sS -o /dev/null -H 'Content-Type: application/proto' --data-binary @"$TMP/p1.bin" \
	"$UPSTREAM_URL$PUSH" 2>"$TMP/down.err"; then
	fail "the data port answered while down"
else
	expect_contains "a push while down" "$TMP/down.err" "Failed to connect"
fi
expect_eq "stats while down" "false" "$(upstream_get stats | jq .up)"
upstream_post up >/dev/null
push "a push after /admin/up" 200 "$TMP/p1.bin"
# down for 1 s: refused now, served again by itself
upstream_post 'down?seconds=1' >/dev/null
curl -sS -o /dev/null "$UPSTREAM_URL$PUSH" 2>/dev/null && fail "the data port answered during down?seconds=1"
for _ in $(seq 1 50); do
	[ "$(upstream_get stats | jq .up)" = true ] && break
	sleep 0.1
done
push "a push after down?seconds=1" 200 "$TMP/p1.bin"

upstream_post fail '{"status": 429, "count": 1, "headers": {"Retry-After": "3"}, "message": "slow down"}' >/dev/null
push "a push under a 429 rule" 429 "$TMP/p1.bin"
grep -qi '^retry-after: 3' "$TMP/reply.h" || fail "429: no Retry-After: 3 header: $(cat "$TMP/reply.h")"
expect_eq "429 reply" '{"code":"resource_exhausted","message":"slow down"}' "$(cat "$TMP/reply")"
push "the push after it" 200 "$TMP/p1.bin"
grep -qi '^retry-after' "$TMP/reply.h" && fail "Retry-After once only: $(cat "$TMP/reply.h")"
# rules queue up in order, each for its count
upstream_post fail '[{"status": 503, "count": 2}, {"status": 500, "message": "boom"}]' >/dev/null
push "queued rule 1 of 3" 503 "$TMP/p1.bin"
push "queued rule 2 of 3" 503 "$TMP/p1.bin"
expect_contains "a 503 rule: code" "$TMP/reply" '"code":"unavailable"'
push "queued rule 3 of 3" 500 "$TMP/p1.bin"
expect_eq "a 500 rule" '{"code":"internal","message":"boom"}' "$(cat "$TMP/reply")"
push "after the queued rules" 200 "$TMP/p1.bin"
# down destroys open connections: a reply held back by a delay never comes
upstream_post fail '{"delay_ms": 3000}' >/dev/null
curl -sS -o /dev/null -H 'Content-Type: application/proto' --data-binary @"$TMP/p1.bin" \
	"$UPSTREAM_URL$PUSH" 2>"$TMP/cut.err" &
cut_pid=$!
STATUSES+=(200) # accepted at once: only its reply is late
for _ in $(seq 1 100); do
	[ "$(upstream_get stats | jq .requests)" -eq ${#STATUSES[@]} ] && break
	sleep 0.02
done
upstream_post down >/dev/null
if wait "$cut_pid"; then
	fail "a connection open at /admin/down got its reply"
fi
upstream_post up >/dev/null
upstream_post fail '{"delay_ms": 600}' >/dev/null
t0=$(date +%s%N)
push "a delayed push" 200 "$TMP/p1.bin"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 550 ] || fail "a delay_ms 600 rule: the reply came after $ms ms"

check_request_log
jq -e '[.[] | select(.status == 429)][0] | .injected and .series == 0' "$TMP/requests.json" >/dev/null ||
	fail "the 429 is not marked injected in the request log: $(jq -c '[.[] | select(.status == 429)]' "$TMP/requests.json")"
expect_eq "IDs in the request log" "$UUID1 $UUID2" "$(jq -r '.[0].ids | join(" ")' "$TMP/requests.json")"
upstream_post reset >/dev/null
expect_eq "after /admin/reset" "0 0 0" "$(upstream_get stats | jq -r '"\(.requests) \(.accepted_profiles) \(.rejected)"')"
stop_upstream

# ---- 4: credentials and the tenant (options on the command line) ------------------------------------
STATUSES=()
start_upstream --reject-older-than 0 --reject-newer-than 0 --bearer s3cret --require-tenant
push "no credentials" 401 "$TMP/p1.bin" -H 'X-Scope-OrgID: team-a'
expect_contains "no credentials: code" "$TMP/reply" '"code":"unauthenticated"'
push "a wrong bearer token" 401 "$TMP/p1.bin" -H 'Authorization: Bearer wrong' -H 'X-Scope-OrgID: team-a'
push "no tenant" 401 "$TMP/p1.bin" -H 'Authorization: Bearer s3cret'
expect_contains "no tenant: message" "$TMP/reply" "no org id"
push "token and tenant" 200 "$TMP/p1.bin" -H 'Authorization: Bearer s3cret' -H 'X-Scope-OrgID: team-a'
post "legacy without a tenant" 401 "$(cat "$NODE/req2.path")" -H 'Authorization: Bearer s3cret' \
	--data-binary @"$NODE/req2.pprof.gz"
upstream_post config '{"basic_auth": "user:pw"}' >/dev/null
push "basic credentials" 200 "$TMP/p1.bin" -u user:pw -H 'X-Scope-OrgID: team-b'
push "wrong basic credentials" 401 "$TMP/p1.bin" -u user:nope -H 'X-Scope-OrgID: team-b'
expect_eq "tenants of the accepted" "team-a team-b" "$(upstream_get received | jq -r '[.[].tenant] | join(" ")')"
expect_eq "the token reached the record" "Bearer s3cret" "$(upstream_get received | jq -r '.[0].headers.authorization')"
check_request_log
expect_eq "authorization_present in the request log" "false true true true true true true" \
	"$(jq -r '[.[].authorization_present] | map(tostring) | join(" ")' "$TMP/requests.json")"
stop_upstream

# ---- 6: in front of another server (--forward-to) ----------------------------------------------------
# A second fake stands for the real server (window off); the first, with the
# default 1 h window, passes each request on to it and answers with its reply.
STATUSES=()
start_upstream --reject-older-than 0 --reject-newer-than 0
REAL_URL=$UPSTREAM_URL REAL_ADMIN=$UPSTREAM_ADMIN REAL_PID=$UPSTREAM_PID
UPSTREAM_PID= # kept running: start_upstream would stop it
stop_real() {
	[ -n "${REAL_PID:-}" ] || return 0
	kill -TERM "$REAL_PID" 2>/dev/null || true
	wait "$REAL_PID" 2>/dev/null || true
	REAL_PID=
}
trap 'stop_real; lib_cleanup' EXIT
start_upstream --forward-to "$REAL_URL"
real() { curl -fsS "$REAL_ADMIN/admin/$1"; }
push "forwarded: a profile of now" 200 "$TMP/p1.bin"
# the fixture is days old: refused in front (1 h window), taken behind
post "forwarded: the Node SDK's legacy request" 200 "$(cat "$NODE/req2.path")" --data-binary @"$NODE/req2.pprof.gz"
expect_eq "records, in front and behind" "1 2" "$(upstream_get received | jq length) $(real received | jq length)"
expect_eq "the legacy request's labels behind" "checkout" "$(real received | jq -r '.[1].labels.service_name')"
expect_eq "forward_to in the stats" "$REAL_URL" "$(upstream_get stats | jq -r .forward_to)"
curl -fsS -X POST -H 'Content-Type: application/json' \
	--data-binary '{"status": 503, "headers": {"Retry-After": "7"}, "message": "behind: down for now"}' \
	"$REAL_ADMIN/admin/fail" >/dev/null
push "forwarded: the server behind answers 503" 503 "$TMP/p1.bin"
expect_contains "its message" "$TMP/reply" "behind: down for now"
grep -qi '^retry-after: 7' "$TMP/reply.h" || fail "the 503's Retry-After did not come through: $(cat "$TMP/reply.h")"
push "forwarded: too old here, taken behind" 200 "$TMP/p2.bin"
expect_eq "judged apart: fake and real statuses" "400 200,200 503,400 200" \
	"$(upstream_get disagreements | jq -r 'map("\(.fake_status) \(.real_status)") | join(",")')"
expect_eq "records in front (only what both took)" 1 "$(upstream_get received | jq length)"
curl -fsS -X POST "$REAL_ADMIN/admin/down" >/dev/null
push "forwarded: nobody behind" 502 "$TMP/p1.bin"
expect_contains "a 502's message" "$TMP/reply" "did not answer"
stop_upstream
stop_real

finish
