#!/usr/bin/env bash
# braid ingest over loopback, driven by curl: every fixture request replayed
# byte for byte, each body format, the push API, bad input with its status and
# message (and the next good request still answered), auth, the store full,
# Unix sockets and IPv6, the process attribution, /ready and /metrics.
. "$(dirname "$0")/lib.sh"
: "${PUSH_BODY:?}"

NODE=$FIXTURES/node-sdk-0.6.4
GO=$FIXTURES/go-runtime-pprof
DATA=$TMP/data
start_ingest "$DATA"
URL=$INGEST_URL

# post WHAT EXPECTED_STATUS PATH [curl args...]: the reply body goes to
# $TMP/reply, its headers to $TMP/headers
post() {
	local what=$1 want=$2 path=$3
	shift 3
	local got
	got=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' "$@" "$URL$path") || true
	if [ "$got" != "$want" ]; then
		fail "$what: expected HTTP $want, got $got: $(cat "$TMP/reply" 2>/dev/null)"
		return 1
	fi
}

# expect_error WHAT STATUS CODE MESSAGE_PART PATH [curl args]: a JSON error
expect_error() {
	local what=$1 status=$2 code=$3 msg=$4 path=$5
	shift 5
	post "$what" "$status" "$path" "$@" || return 0
	local c m
	c=$(jq -r .code "$TMP/reply" 2>/dev/null) || c="(not JSON: $(cat "$TMP/reply"))"
	m=$(jq -r .message "$TMP/reply" 2>/dev/null) || m=""
	expect_eq "$what: error code" "$code" "$c"
	case "$m" in
	*"$msg"*) ;;
	*) fail "$what: message [$m] lacks [$msg]" ;;
	esac
	# and the server still answers a good request
	post "$what: the next good request" 200 "$(cat "$NODE/req3.path")" "${GOOD_ARGS[@]}" \
		-H 'Content-Type: application/octet-stream' --data-binary @"$NODE/req3.pprof.gz"
}
# extra curl arguments the next good request needs (credentials)
GOOD_ARGS=()

count_profiles() {
	"$BRAID" store ls --json --limit 0 --data-dir "$1" | jq '.sdk_profiles | length'
}

# ---- the fixtures, byte for byte ------------------------------------------------
for req in req2 req3; do
	post "replay of $req" 200 "$(cat "$NODE/$req.path")" \
		-H 'Content-Type: application/octet-stream' -H 'User-Agent: pyroscope-nodejs/0.6.4' \
		--data-binary @"$NODE/$req.pprof.gz"
	[ -s "$TMP/reply" ] && fail "replay of $req: 200 with a body: $(cat "$TMP/reply")"
done
"$BRAID" store ls --json --data-dir "$DATA" >"$TMP/ls.json"
expect_eq "fixtures stored" "2" "$(jq '.sdk_profiles | length' "$TMP/ls.json")"
expect_eq "req2's service, __name__, region, rate, spy, range" \
	"checkout wall eu-1 17 nodespy 1795238876000000000 1795238878000000000" \
	"$(jq -r '.sdk_profiles[0] | "\(.service) \(.profile_name) \(.labels.region) \(.sample_rate) \(.spy_name) \(.from_ns) \(.until_ns)"' "$TMP/ls.json")"
expect_eq "req3 is the heap profile" "memory 100" \
	"$(jq -r '.sdk_profiles[1] | "\(.profile_name) \(.sample_rate)"' "$TMP/ls.json")"
expect_eq "req2 payload bytes as received" "$(stat -c %s "$NODE/req2.pprof.gz")" \
	"$(jq '.sdk_profiles[0].payload_bytes' "$TMP/ls.json")"
expect_eq "curl's push attributed by TCP peer" "tcp-peer" \
	"$(jq -r '.sdk_profiles[0].attribution' "$TMP/ls.json")"
# the stored payload is the request body, byte for byte
sqlite3 "$DATA/braid.db" "SELECT writefile('$TMP/stored.gz', payload) FROM sdk_profiles ORDER BY id LIMIT 1" >/dev/null
expect_same_file "stored payload of req2 and the request body" "$NODE/req2.pprof.gz" "$TMP/stored.gz"

# the attributed PID is curl's own: run one curl in the background and take $!
curl -s -o /dev/null -H 'Content-Type: application/octet-stream' \
	--data-binary @"$NODE/req3.pprof.gz" "$URL/ingest?name=attr-test&format=pprof&from=1700000000&until=1700000010" &
curl_pid=$!
wait "$curl_pid"
"$BRAID" store ls --json --service attr-test --data-dir "$DATA" >"$TMP/attr.json"
expect_eq "the host PID of the pushing process" "$curl_pid tcp-peer" \
	"$(jq -r '.sdk_profiles[0] | "\(.pid) \(.attribution)"' "$TMP/attr.json")"

# /pyroscope/ingest is the same endpoint
post "/pyroscope/ingest" 200 "/pyroscope/ingest?name=alias.cpu&format=pprof" \
	--data-binary @"$GO/cpu.pprof.gz"

# ---- the other formats ------------------------------------------------------------
# multipart as pyroscope-go sends it: from/until in ns, a sample_type_config
printf '{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}' >"$TMP/stc.json"
post "multipart (pyroscope-go)" 200 \
	"/ingest?name=goapp.inuse_space%7Benv%3Dprod%7D&from=1700000000123456789&until=1700000010123456789&spyName=gospy&sampleRate=100" \
	-F "profile=@$GO/heap.pprof.gz;type=application/octet-stream" \
	-F "sample_type_config=@$TMP/stc.json;type=application/json"
"$BRAID" store ls --json --service goapp --data-dir "$DATA" >"$TMP/mp.json"
expect_eq "multipart: service, __name__, env, spy" "goapp memory prod gospy" \
	"$(jq -r '.sdk_profiles[0] | "\(.service) \(.profile_name) \(.labels.env) \(.spy_name)"' "$TMP/mp.json")"
# jq reads numbers as doubles: the exact ns come from the database
expect_eq "multipart: the ns range, exactly" "1700000000123456789|1700000010123456789" \
	"$(sqlite3 "$DATA/braid.db" "SELECT from_ns, until_ns FROM sdk_profiles WHERE service = 'goapp'")"

# the real pyroscope-go v1.5.0's pushes, as captured (tests/data/go-sdk): its
# name carries __session_id__, its goroutine profile sampleRate=0 and a
# config naming the type "goroutine"; Pyroscope v2.2.1 took all three, and
# names them goroutine, process_cpu and memory
GOSDK=$SRC_DIR/tests/data/go-sdk
for k in goroutine cpu heap; do
	post "pyroscope-go v1.5.0's $k push" 200 "$(cat "$GOSDK/$k.path")" \
		-H "Content-Type: $(cat "$GOSDK/$k.content-type")" --data-binary @"$GOSDK/$k.body"
done
"$BRAID" store ls --json --service braid-e2e-go --limit 0 --data-dir "$DATA" >"$TMP/gosdk.json"
expect_eq "pyroscope-go: __name__, sampleRate, session of each push" \
	"goroutine 0 77e425ea48b3919f|memory 100 77e425ea48b3919f|process_cpu 100 77e425ea48b3919f" \
	"$(jq -r '[.sdk_profiles[] | "\(.profile_name) \(.sample_rate) \(.labels.__session_id__)"] | sort | join("|")' "$TMP/gosdk.json")"
printf 'main;work;fib 30\nmain;work;hash 12\nmain;idle 8\n' >"$TMP/folded.txt"
post "folded" 200 "/ingest?name=folded-app.cpu&from=1700000000&until=1700000010" \
	--data-binary @"$TMP/folded.txt"
printf 'main;work;fib\nmain;work;fib\nmain;idle\n' >"$TMP/lines.txt"
post "lines" 200 "/ingest?name=lines-app&format=lines&from=1700000000&until=1700000010" \
	--data-binary @"$TMP/lines.txt"
"$BRAID" store ls --json --limit 0 --data-dir "$DATA" >"$TMP/ls.json"
expect_eq "folded total" "folded process_cpu 50" \
	"$(jq -r '.sdk_profiles[] | select(.service == "folded-app") | "\(.format) \(.profile_name) \(.sample_types[0].total)"' "$TMP/ls.json")"
expect_eq "lines total" "lines 3" \
	"$(jq -r '.sdk_profiles[] | select(.service == "lines-app") | "\(.format) \(.sample_types[0].total)"' "$TMP/ls.json")"

# the push API: proto and JSON, gzip or not, several series with several samples
"$PUSH_BODY" -l __name__=process_cpu -l service_name=push-proto -l env=ci \
	-p "$GO/cpu.pprof.gz" -p "$NODE/req2.pprof.gz" \
	--series -l __name__=memory -l service_name=push-proto -p "$GO/heap.pprof.gz" >"$TMP/push.bin"
post "push proto" 200 /push.v1.PusherService/Push -H 'Content-Type: application/proto' \
	--data-binary @"$TMP/push.bin"
[ -s "$TMP/reply" ] && fail "push proto: 200 with a body: $(cat "$TMP/reply")"
"$PUSH_BODY" --json --gzip -l __name__=process_cpu -l service_name=push-json \
	-p "$GO/cpu.pprof.gz" >"$TMP/push.json.gz"
post "push JSON, gzipped" 200 /push.v1.PusherService/Push -H 'Content-Type: application/json' \
	-H 'Content-Encoding: gzip' --data-binary @"$TMP/push.json.gz"
expect_eq "push JSON reply" "{}" "$(cat "$TMP/reply")"
"$PUSH_BODY" -l __name__=process_cpu -l service_name=push-gz -p "$GO/cpu.pprof.gz" |
	gzip -c >"$TMP/push.bin.gz"
post "push proto, gzipped" 200 /push.v1.PusherService/Push \
	-H 'Content-Type: application/proto' -H 'Content-Encoding: gzip' --data-binary @"$TMP/push.bin.gz"
"$BRAID" store ls --json --limit 0 --data-dir "$DATA" >"$TMP/ls.json"
expect_eq "push proto: 3 profiles, 2 series" "process_cpu process_cpu memory" \
	"$(jq -r '[.sdk_profiles[] | select(.service == "push-proto") | .profile_name] | join(" ")' "$TMP/ls.json")"
expect_eq "push JSON stored" "1" \
	"$(jq '[.sdk_profiles[] | select(.service == "push-json")] | length' "$TMP/ls.json")"
expect_eq "gzipped push stored" "1" \
	"$(jq '[.sdk_profiles[] | select(.service == "push-gz")] | length' "$TMP/ls.json")"
# a gzipped legacy body (Content-Encoding) is inflated first
gzip -c "$TMP/folded.txt" >"$TMP/folded.gz"
post "legacy with Content-Encoding gzip" 200 "/ingest?name=gz-folded&from=1700000000&until=1700000010" \
	-H 'Content-Encoding: gzip' --data-binary @"$TMP/folded.gz"

# ---- bad input --------------------------------------------------------------------
before=$(count_profiles "$DATA")
expect_error "bad name" 400 invalid_argument "app name" "/ingest?name=bad%20app&format=pprof" \
	--data-binary @"$NODE/req3.pprof.gz"
expect_error "empty app name" 400 invalid_argument "empty" "/ingest?name=%7Bk%3Dv%7D&format=pprof" \
	--data-binary @"$NODE/req3.pprof.gz"
tags=$(for i in $(seq 1 31); do printf 'k%d%%3Dv,' "$i"; done)
expect_error "31 labels" 400 invalid_argument "too many labels" \
	"/ingest?name=app%7B${tags%,}%7D&format=pprof" --data-binary @"$NODE/req3.pprof.gz"
head -c 3000 /dev/urandom >"$TMP/garbage"
expect_error "garbage body" 422 invalid_argument "pprof" "/ingest?name=app&format=pprof" \
	--data-binary @"$TMP/garbage"
head -c 700 "$NODE/req2.pprof.gz" >"$TMP/truncated.gz"
expect_error "truncated gzip" 422 invalid_argument "gzip" "/ingest?name=app&format=pprof" \
	--data-binary @"$TMP/truncated.gz"
head -c 100000000 /dev/zero | gzip -c >"$TMP/bomb.gz"
expect_error "gzip bomb" 413 resource_exhausted "inflates to more than" \
	"/ingest?name=app&format=pprof" --data-binary @"$TMP/bomb.gz"
expect_error "unknown format" 422 invalid_argument "xyz" "/ingest?name=app&format=xyz" \
	--data-binary @"$TMP/folded.txt"
expect_error "jfr that is not a JFR" 422 invalid_argument "not a JFR recording" "/ingest?name=app&format=jfr" \
	--data-binary @"$TMP/folded.txt"
expect_error "GET on /ingest" 405 unimplemented "GET" "/ingest?name=app"
curl -s -o /dev/null -D "$TMP/headers" "$URL/ingest?name=app"
grep -qi '^Allow: POST' "$TMP/headers" || fail "405 without Allow: POST: $(cat "$TMP/headers")"
expect_error "push with text/plain" 415 invalid_argument "content type" \
	/push.v1.PusherService/Push -H 'Content-Type: text/plain' --data-binary @"$TMP/push.bin"
expect_error "push garbage" 422 invalid_argument "push request" /push.v1.PusherService/Push \
	-H 'Content-Type: application/proto' --data-binary @"$TMP/garbage"
expect_error "no such endpoint" 404 not_found "no such endpoint" /nope --data-binary x
expect_error "prev_profile" 400 invalid_argument "prev_profile" "/ingest?name=app.cpu" \
	-F "profile=@$GO/cpu.pprof.gz" -F "prev_profile=@$GO/cpu.pprof.gz"
after=$(count_profiles "$DATA")
# each expect_error also stored one good req3
expect_eq "profiles stored by the bad requests" "$((before + 13))" "$after"
stop_ingest

# body over the limit
start_ingest "$TMP/data-small" --max-body 64K
URL=$INGEST_URL
head -c 100000 /dev/urandom >"$TMP/big"
expect_error "body over the limit" 413 resource_exhausted "limit of 65536 bytes" \
	"/ingest?name=app&format=pprof" --data-binary @"$TMP/big"
# chunked, so the size is only known while reading
expect_error "chunked body over the limit" 413 resource_exhausted "limit of 65536 bytes" \
	"/ingest?name=app&format=pprof" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big"
stop_ingest

# ---- auth ----------------------------------------------------------------------------
start_ingest "$TMP/data-auth" --auth-token tok3n --basic-auth user:pa55
URL=$INGEST_URL
GOOD_ARGS=(-H 'Authorization: Bearer tok3n')
expect_error "no token" 401 unauthenticated "credentials" "$(cat "$NODE/req3.path")" \
	--data-binary @"$NODE/req3.pprof.gz"
expect_error "wrong token" 401 unauthenticated "credentials" "$(cat "$NODE/req3.path")" \
	-H 'Authorization: Bearer wrong' --data-binary @"$NODE/req3.pprof.gz"
post "right token" 200 "$(cat "$NODE/req3.path")" -H 'Authorization: Bearer tok3n' \
	--data-binary @"$NODE/req3.pprof.gz"
post "basic auth" 200 "$(cat "$NODE/req3.path")" -u user:pa55 --data-binary @"$NODE/req3.pprof.gz"
post "wrong basic auth" 401 "$(cat "$NODE/req3.path")" -u user:nope --data-binary @"$NODE/req3.pprof.gz"
post "tenant" 200 "/ingest?name=tenant-app&format=pprof" -H 'Authorization: Bearer tok3n' \
	-H 'X-Scope-OrgID: team-a' --data-binary @"$NODE/req3.pprof.gz"
post "bad tenant" 400 "/ingest?name=tenant-app&format=pprof" -H 'Authorization: Bearer tok3n' \
	-H 'X-Scope-OrgID: a/b' --data-binary @"$NODE/req3.pprof.gz"
post "/ready needs no credentials" 200 /ready
stop_ingest
GOOD_ARGS=()
"$BRAID" store ls --json --data-dir "$TMP/data-auth" >"$TMP/auth.json"
expect_eq "stored with credentials (3, and one after each 401)" "5" "$(jq '.sdk_profiles | length' "$TMP/auth.json")"
expect_eq "tenant kept" "team-a" \
	"$(jq -r '.sdk_profiles[] | select(.service == "tenant-app") | .tenant' "$TMP/auth.json")"

# a token from a file and from the environment
printf 'filetok\n' >"$TMP/token"
start_ingest "$TMP/data-auth2" --auth-token-file "$TMP/token"
URL=$INGEST_URL
post "token from a file" 200 "$(cat "$NODE/req3.path")" -H 'Authorization: Bearer filetok' \
	--data-binary @"$NODE/req3.pprof.gz"
stop_ingest
BRAID_AUTH_TOKEN=envtok start_ingest "$TMP/data-auth3"
URL=$INGEST_URL
post "token from BRAID_AUTH_TOKEN" 200 "$(cat "$NODE/req3.path")" -H 'Authorization: Bearer envtok' \
	--data-binary @"$NODE/req3.pprof.gz"
post "token from BRAID_AUTH_TOKEN, missing" 401 "$(cat "$NODE/req3.path")" \
	--data-binary @"$NODE/req3.pprof.gz"
stop_ingest

# a non-loopback address without auth is refused at start
if "$BRAID" ingest --listen 0.0.0.0:0 --data-dir "$TMP/data-open" 2>"$TMP/open.err"; then
	fail "braid ingest on 0.0.0.0 without auth started"
fi
expect_contains "refusal at start" "$TMP/open.err" "without authentication"
if "$BRAID" ingest --listen nonsense --data-dir "$TMP/data-open" 2>"$TMP/bad.err"; then
	fail "braid ingest with a bad address started"
fi
expect_contains "bad address" "$TMP/bad.err" "is not ADDR:PORT"

# ---- store full: 429 with Retry-After, and the server goes on -----------------------------
start_ingest "$TMP/data-full" --store-max-bytes 1M --retry-after 7
URL=$INGEST_URL
status=200
n=0
while [ "$status" = 200 ] && [ "$n" -lt 3000 ]; do
	# distinct folded bodies of ~20 KB each: the store holds a few dozen
	awk -v n="$n" 'BEGIN { srand(n); for (i = 0; i < 400; i++) printf "main;f%d_%d;g%d %d\n", n, i, rand() * 1e9, i + 1 }' >"$TMP/fill.txt"
	status=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' \
		--data-binary @"$TMP/fill.txt" "$URL/ingest?name=fill&from=1700000000&until=1700000010")
	n=$((n + 1))
done
expect_eq "status once the store is full" "429" "$status"
expect_eq "429 code" "resource_exhausted" "$(jq -r .code "$TMP/reply")"
expect_contains "429 message" "$TMP/reply" "store full"
grep -qi '^Retry-After: 7' "$TMP/headers" || fail "429 without Retry-After: 7: $(cat "$TMP/headers")"
post "/ready while full" 200 /ready
curl -s "$URL/metrics" >"$TMP/metrics-full.txt"
expect_contains "refusals counted" "$TMP/metrics-full.txt" 'braid_ingest_store_refusals_total{reason="full"} 1'
stop_ingest

# ---- Unix socket and IPv6 ---------------------------------------------------------------------
SOCK=$TMP/braid.sock
"$BRAID" ingest --listen "unix:$SOCK" --listen '[::1]:0' --data-dir "$TMP/data-unix" 2>"$TMP/unix.log" &
upid=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && grep -q '\[::1\]' "$TMP/unix.log" && break; sleep 0.05; done
v6=$(sed -n 's/^braid: ingest: listening on \(http:\/\/\[::1\]:[0-9]*\) .*/\1/p' "$TMP/unix.log")
curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'Content-Type: application/octet-stream' \
	--data-binary @"$NODE/req3.pprof.gz" "http://localhost/ingest?name=unix-app&format=pprof&from=1700000000" >"$TMP/code" &
cpid=$!
wait "$cpid"
expect_eq "push over a Unix socket" "200" "$(cat "$TMP/code")"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$NODE/req3.pprof.gz" \
	"$v6/ingest?name=v6-app&format=pprof")
expect_eq "push over IPv6" "200" "$code"
kill -TERM "$upid"
wait "$upid" || fail "braid ingest on a Unix socket exited with $?"
[ -e "$SOCK" ] && fail "the Unix socket file was left behind"
"$BRAID" store ls --json --data-dir "$TMP/data-unix" >"$TMP/unix.json"
expect_eq "Unix peer attribution" "$cpid unix-peer" \
	"$(jq -r '.sdk_profiles[] | select(.service == "unix-app") | "\(.pid) \(.attribution)"' "$TMP/unix.json")"
expect_eq "IPv6 loopback peer attribution" "tcp-peer" \
	"$(jq -r '.sdk_profiles[] | select(.service == "v6-app") | .attribution' "$TMP/unix.json")"

# ---- attribution without a loopback peer: the pid label, then the service env ----------------
host_ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
if [ -n "$host_ip" ]; then
	"$BRAID" ingest --listen "$host_ip:0" --auth-token t --data-dir "$TMP/data-remote" 2>"$TMP/remote.log" &
	INGEST_PID=$!
	INGEST_LOG=$TMP/remote.log
	for _ in $(seq 1 100); do grep -q listening "$TMP/remote.log" && break; sleep 0.05; done
	URL=$(sed -n 's/^braid: ingest: listening on \(http:\/\/[^ ]*\) .*/\1/p' "$TMP/remote.log")
	sleep 60 &
	sleeper=$!
	PYROSCOPE_APPLICATION_NAME=env-svc-$$ sleep 60 &
	env_sleeper=$!
	post "pid label" 200 "/ingest?name=label-app%7Bpid%3D$sleeper%7D&format=pprof" \
		-H 'Authorization: Bearer t' --data-binary @"$NODE/req3.pprof.gz"
	post "service env" 200 "/ingest?name=env-svc-$$&format=pprof" \
		-H 'Authorization: Bearer t' --data-binary @"$NODE/req3.pprof.gz"
	post "no attribution" 200 "/ingest?name=nobody-$$&format=pprof" \
		-H 'Authorization: Bearer t' --data-binary @"$NODE/req3.pprof.gz"
	stop_ingest
	kill "$sleeper" "$env_sleeper" 2>/dev/null || true
	"$BRAID" store ls --json --data-dir "$TMP/data-remote" >"$TMP/remote.json"
	expect_eq "pid label attribution" "$sleeper pid-label" \
		"$(jq -r '.sdk_profiles[] | select(.service == "label-app") | "\(.pid) \(.attribution)"' "$TMP/remote.json")"
	expect_eq "service env attribution" "$env_sleeper service-env" \
		"$(jq -r ".sdk_profiles[] | select(.service == \"env-svc-$$\") | \"\(.pid) \(.attribution)\"" "$TMP/remote.json")"
	expect_eq "no attribution" "null none" \
		"$(jq -r ".sdk_profiles[] | select(.service == \"nobody-$$\") | \"\(.pid) \(.attribution)\"" "$TMP/remote.json")"
else
	echo "skip: no non-loopback IPv4 address here for the pid-label and service-env cases" >&2
fi

# a pid label that contradicts the TCP peer is ignored and counted
start_ingest "$TMP/data-conflict"
URL=$INGEST_URL
post "contradicting pid label" 200 "/ingest?name=conflict-app%7Bpid%3D1%7D&format=pprof" \
	--data-binary @"$NODE/req3.pprof.gz"
curl -s "$URL/metrics" >"$TMP/metrics.txt"
post "/ready" 200 /ready
expect_eq "/ready body" "ready" "$(cat "$TMP/reply")"
stop_ingest
expect_contains "conflict counted" "$TMP/metrics.txt" "braid_ingest_pid_label_conflicts_total 1"
"$BRAID" store ls --json --data-dir "$TMP/data-conflict" >"$TMP/conflict.json"
expect_eq "the peer wins over the label" "tcp-peer" \
	"$(jq -r '.sdk_profiles[0].attribution' "$TMP/conflict.json")"
for m in 'braid_ingest_requests_total{endpoint="/ingest",status="200"} 1' \
	'braid_ingest_profiles_stored_total 1' 'braid_ingest_attributions_total{method="tcp-peer"} 1' \
	'braid_ingest_received_bytes_total{endpoint="/ingest"} 142' \
	'# TYPE braid_ingest_request_duration_seconds histogram' 'braid_store_used_bytes'; do
	expect_contains "metrics" "$TMP/metrics.txt" "$m"
done

# ---- SIGTERM under keep-alive load: every committed profile was answered 200 ----------------
if [ -n "${BENCH_INGEST:-}" ]; then
	start_ingest "$TMP/data-term"
	port=${INGEST_URL##*:}
	"$BENCH_INGEST" --port "$port" --seconds 4 --warmup 0 --connections 4 --json \
		>"$TMP/load.json" 2>"$TMP/load.err" &
	load=$!
	sleep 1.5
	stop_ingest
	wait "$load" || true # the requests refused at shutdown make it exit 1
	answered_ok=$(jq .ok "$TMP/load.json")
	stored=$("$BRAID" store stats --json --data-dir "$TMP/data-term" | jq .tables.sdk_profiles.rows)
	[ "$answered_ok" -gt 0 ] || fail "no push answered before SIGTERM: $(cat "$TMP/load.err")"
	expect_eq "profiles stored = pushes answered 200, across SIGTERM" "$answered_ok" "$stored"
	other=$(jq -r '.statuses | to_entries | map(select(.key != "200" and .key != "503")) | length' "$TMP/load.json")
	expect_eq "statuses other than 200 and 503 at shutdown" "0" "$other"
fi

finish
