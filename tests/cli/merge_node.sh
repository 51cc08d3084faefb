#!/usr/bin/env bash
# The splice end to end, on a real Node.js app profiled by the real
# @pyroscope/nodejs SDK (from npm, cached between runs, as in node_sdk.sh):
# `braid ingest` receives the SDK's pushes while `braid record` samples the
# whole system; the app runs without --perf-basic-prof, so eBPF alone cannot
# name its JavaScript, and every JS name in the merged profile comes from the
# SDK. The app (tests/e2e/node/merge_app.js) serves "requests": handleRequest
# calls pureJsWork (pure JS), hashPassword (crypto.pbkdf2Sync: OpenSSL under
# JS), sortBig (Array.prototype.sort with a JS comparator) and writeLog (a
# 1 MiB write(2): kernel frames under JS). Its wall
# profiles are found in the store by the app's pid, exported as pushed, and
# `braid merge` splices them into the app's eBPF stacks. Checked:
#   1. Go's pprof reads the merged profile; its sample type is cpu/nanoseconds;
#   2. stacks run, root to leaf, from node's native entry (node::Start) through
#      the SDK's handleRequest and hashPassword to OpenSSL's PBKDF2 (native
#      frames only eBPF sees), and some end in kernel frames (_[k] in the
#      annotated folded output) below the spliced frames;
#   3. pureJsWork and sortBig are JS frames from the SDK too, each with a
#      clear share of the process;
#   4. the merged profile's CPU is exactly the eBPF CPU of the app's pid in
#      the recording (both decoded with pprof-format, not braid);
#   5. the SDK's labels on merged samples: the app runs hashPassword under
#      Pyroscope.wrapWithLabels({route: '/login'}) and pureJsWork and sortBig
#      under route=/page; >= 90 % of OpenSSL's samples carry route=/login,
#      >= 90 % of pureJsWork's carry route=/page.
# Needs root and kernel BTF: exits 77 (a skip) with the reason otherwise.
# Environment: MERGE_RUN_SECONDS (the app's run, default 12).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
for tool in node npm jq go; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

APP_DIR="$SRC_DIR/tests/e2e/node"
RUN_SECONDS=${MERGE_RUN_SECONDS:-12}

npm_modules # sets NPM_DIR (the same cache as node_sdk.sh)
if [ ! -f "$NPM_DIR/node_modules/pprof-format/package.json" ]; then
	echo "FAIL: pprof-format (a dependency of @datadog/pprof) is not in $NPM_DIR/node_modules" >&2
	exit 1
fi

PIDS=() # background processes, stopped at exit
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	stop_ingest
	rm -rf "$TMP"
}

# folded_total FILE: the sum of the counts of a folded file
folded_total() {
	awk '{ t += $NF } END { printf "%.0f\n", t }' "$1"
}
# folded_top FILE: its line with the largest count
folded_top() {
	awk '$NF > max { max = $NF; top = $0 } END { print top }' "$1"
}
# pct X: X (a fraction) in per cent, one decimal
pct() {
	awk -v x="$1" 'BEGIN { printf "%.1f", 100 * x }'
}

# ---- record the whole system while the app runs and pushes to braid ingest -------------
start_ingest "$TMP/data"
trap cleanup EXIT # instead of lib.sh's: it stops braid ingest and removes $TMP too
# SIGTERM ends the recording (a background job of a script ignores SIGINT);
# timeout is only a guard against a hang
timeout -k 10 $((RUN_SECONDS + 120 * SLOW)) "$BRAID" record -o "$TMP/rec.pb.gz" 2>"$TMP/rec.err" &
REC_PID=$!
PIDS+=("$REC_PID")
for _ in $(seq 1 $((200 * SLOW))); do
	grep -q 'sampling' "$TMP/rec.err" && break
	kill -0 "$REC_PID" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q 'sampling' "$TMP/rec.err"; then
	echo "FAIL: braid record did not start sampling: $(cat "$TMP/rec.err")" >&2
	exit 1
fi
sleep 0.5 # the programs are attached on every CPU

rc=0
env NODE_PATH="$NPM_DIR/node_modules" PYROSCOPE_SERVER_ADDRESS="$INGEST_URL" \
	APP_NAME=braid-merge-e2e RUN_SECONDS="$RUN_SECONDS" FLUSH_INTERVAL_MS=4000 ROUTES=1 \
	node "$APP_DIR/merge_app.js" >"$TMP/app.out" 2>"$TMP/app.err" || rc=$?
sleep 0.3 # the app's last samples are drained
kill -TERM "$REC_PID" 2>/dev/null || true
rec_rc=0
wait "$REC_PID" || rec_rc=$?
stop_ingest
if [ "$rc" -ne 0 ]; then
	echo "FAIL: the Node app exited $rc: $(cat "$TMP/app.out" "$TMP/app.err")" >&2
	exit 1
fi
if [ "$rec_rc" -ne 0 ] || [ ! -s "$TMP/rec.pb.gz" ]; then
	echo "FAIL: braid record exited $rec_rc on SIGTERM, or wrote no file: $(cat "$TMP/rec.err")" >&2
	exit 1
fi
APP=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/app.out")
[ -n "$APP" ] || { echo "FAIL: the app did not print its pid: $(cat "$TMP/app.out")" >&2; exit 1; }
echo "# app pid $APP: $(sed -n 's/^requests //p' "$TMP/app.out") requests in $RUN_SECONDS s;" \
	"its own timing (ms): $(sed -n 's/^time //p' "$TMP/app.out" | tr '\n' ' ')"
echo "# braid record: $(grep 'samples' "$TMP/rec.err" | sed 's/^braid: record: //')"

# ---- the app's wall profiles, exported as pushed -----------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
mapfile -t ids < <(jq -r --arg pid "$APP" '.sdk_profiles[] |
	select(.profile_name == "wall" and (.pid | tostring) == $pid) | .id' "$TMP/ls.json")
if [ "${#ids[@]}" -lt 2 ]; then
	echo "FAIL: expected the app's wall profiles (>= 2 in $RUN_SECONDS s at a 4 s flush) attributed to" \
		"pid $APP in the store, found ${#ids[@]}: $(jq -c '[.sdk_profiles[] | {id, profile_name, pid, attribution}]' "$TMP/ls.json")" >&2
	exit 1
fi
sdk_args=()
for id in "${ids[@]}"; do
	if ! "$BRAID" store export "$id" -o "$TMP/sdk-$id.pb.gz" --data-dir "$TMP/data" 2>"$TMP/export.err"; then
		echo "FAIL: braid store export $id: $(cat "$TMP/export.err")" >&2
		exit 1
	fi
	sdk_args+=(--sdk "$TMP/sdk-$id.pb.gz")
done
echo "# ${#ids[@]} wall profiles of pid $APP pushed by the SDK: ids ${ids[*]}"

# ---- braid merge -------------------------------------------------------------------------
if ! "$BRAID" merge --ebpf "$TMP/rec.pb.gz" "${sdk_args[@]}" --pid "$APP" -v \
	-o "$TMP/merged.pb.gz" 2>"$TMP/merge.err"; then
	echo "FAIL: braid merge failed: $(cat "$TMP/merge.err")" >&2
	exit 1
fi
sed 's/^/# /' "$TMP/merge.err"
if ! "$BRAID" merge --ebpf "$TMP/rec.pb.gz" "${sdk_args[@]}" --pid "$APP" -f folded --annotate \
	-o "$TMP/merged.folded" 2>"$TMP/merge-folded.err"; then
	echo "FAIL: braid merge -f folded --annotate failed: $(cat "$TMP/merge-folded.err")" >&2
	exit 1
fi

# ---- 1: Go's pprof reads it: cpu/nanoseconds -------------------------------------------------
if pprof -symbolize=none -raw "$TMP/merged.pb.gz" >"$TMP/merged.raw" 2>"$TMP/raw.err"; then
	types=$(sed -n '/^Samples:/{n;p;q}' "$TMP/merged.raw" | sed 's/\[dflt\]//; s/ *$//')
	expect_eq "the merged profile's sample types (pprof -raw)" "cpu/nanoseconds" "$types"
	grep -qx 'PeriodType: cpu nanoseconds' "$TMP/merged.raw" ||
		fail "the merged profile's period type is not cpu nanoseconds: $(head -3 "$TMP/merged.raw")"
else
	fail "pprof -raw cannot read the merged profile: $(cat "$TMP/raw.err")"
fi

# ---- 4 first: totals conserved, as pprof-format reads both files ----------------------------
JS='merge_app[.]js:'
pprof_shares --type cpu --pid "$APP" "$TMP/rec.pb.gz" >"$TMP/rec.json"
pprof_shares --type cpu --pid "$APP" --top 15 \
	--func handleRequest --func pureJsWork --func hashPassword --func sortBig \
	--stack "^node::(Start|NodeMainInstance::Run)\$,${JS}handleRequest:,${JS}hashPassword:,^(node::crypto::|PKCS5_PBKDF2_HMAC\$)" \
	--stack "^node::(Start|NodeMainInstance::Run)\$,${JS}handleRequest:,${JS}pureJsWork:" \
	--stack "^node::(Start|NodeMainInstance::Run)\$,${JS}handleRequest:,${JS}sortBig:" \
	--stack "${JS}hashPassword:,^PKCS5_PBKDF2_HMAC\$" --stack "${JS}pureJsWork:,^PKCS5_PBKDF2_HMAC\$" \
	--stack "${JS}sortBig:,^PKCS5_PBKDF2_HMAC\$" \
	"$TMP/merged.pb.gz" >"$TMP/merged.json"
ebpf_total=$(jq .total "$TMP/rec.json")
merged_total=$(jq .total "$TMP/merged.json")
period=$(jq .period "$TMP/rec.json")
samples=$((ebpf_total / period))
echo "# CPU of pid $APP: eBPF $ebpf_total ns ($samples samples), merged $merged_total ns"
[ "$samples" -ge 100 ] || fail "only $samples eBPF samples of the app in $RUN_SECONDS s: was it starved of CPU?"
expect_eq "the merged profile's CPU (ns) against the eBPF CPU of pid $APP" "$ebpf_total" "$merged_total"

# ---- 2: node's entry -> handleRequest -> hashPassword -> OpenSSL ---------------------------
for f in handleRequest pureJsWork hashPassword sortBig; do
	echo "# $f: $(pct "$(jq ".funcs.$f.share" "$TMP/merged.json")") % of the app's CPU in the merged profile" \
		"(frames in mappings $(jq -c ".funcs.$f.mappings" "$TMP/merged.json"))"
done
crypto=$(jq '.stacks[0].value' "$TMP/merged.json")
echo "# node::Start ... handleRequest ... hashPassword ... PBKDF2 (native): $((crypto / period)) samples," \
	"e.g. $(jq -r '.stacks[0].example' "$TMP/merged.json")"
[ "$crypto" -gt 0 ] || fail "no merged stack runs node::Start -> handleRequest -> hashPassword (SDK) ->" \
	"node::crypto::/PKCS5_PBKDF2_HMAC (eBPF); the largest: $(jq -c '.top' "$TMP/merged.json")"
# where the SDK's frames are: JS frames, the interpreted kind (mapping [interpreted])
for f in handleRequest pureJsWork hashPassword sortBig; do
	expect_eq "mappings of the frames naming $f" '["[interpreted]"]' "$(jq -c ".funcs.$f.mappings" "$TMP/merged.json")"
done

# kernel frames leafward of the spliced ones: folded lines with a JS frame of
# the app and, after it, a frame ending _[k]
awk -v js="$JS" '{ line = $0; sub(/ [0-9]+$/, "", line); n = split(line, f, ";"); seen = 0
	for (i = 1; i <= n; i++) { if (f[i] ~ js) seen = 1; else if (seen && f[i] ~ /_\[k\]$/) { print; break } } }' \
	"$TMP/merged.folded" >"$TMP/kernel-js.folded"
kjs=$(folded_total "$TMP/kernel-js.folded")
kall=$(grep '_\[k\] [0-9]*$' "$TMP/merged.folded" | folded_total /dev/stdin)
echo "# kernel frames: $kall samples end in the kernel, $kjs of them below the app's JS frames," \
	"e.g. $(folded_top "$TMP/kernel-js.folded" | sed 's/.*;\([^;]*merge_app[.]js:\)/...;\1/')"
[ "$kjs" -gt 0 ] || fail "no merged stack has kernel frames (_[k]) below the app's JS frames;" \
	"the largest stack ending in the kernel: $(grep '_\[k\] [0-9]*$' "$TMP/merged.folded" | folded_top /dev/stdin)"

# not judged, for the reader: the splice shares each eBPF stack among the SDK
# stacks of its category in proportion to their weight, whatever their
# frames, so OpenSSL's frames (eBPF) go under each JS function (SDK) in
# proportion to its share, not under hashPassword alone
echo "# PKCS5_PBKDF2_HMAC (eBPF) under hashPassword $(($(jq '.stacks[3].value' "$TMP/merged.json") / period))," \
	"pureJsWork $(($(jq '.stacks[4].value' "$TMP/merged.json") / period))," \
	"sortBig $(($(jq '.stacks[5].value' "$TMP/merged.json") / period)) samples (SDK frames)"

# ---- 3: pureJsWork and sortBig are JS frames, each a clear share --------------------------
i=0
for f in pureJsWork sortBig; do
	i=$((i + 1))
	v=$(jq ".stacks[$i].value" "$TMP/merged.json")
	echo "# node::Start ... handleRequest ... $f: $((v / period)) samples"
	# the app spends ~40 % in pureJsWork and ~25 % in sortBig
	awk -v v="$v" -v t="$merged_total" 'BEGIN { exit !(t > 0 && v / t >= 0.10) }' ||
		fail "$f under handleRequest has $(awk -v v="$v" -v t="$merged_total" 'BEGIN { printf "%.1f", t ? 100 * v / t : 0 }') %" \
			"of the app's CPU in the merged profile, expected >= 10 % (the app gives it ~25-40 %)"
done
v=$(jq '.funcs.hashPassword.value' "$TMP/merged.json")
awk -v v="$v" -v t="$merged_total" 'BEGIN { exit !(t > 0 && v / t >= 0.10) }' ||
	fail "hashPassword has $(pct "$(jq .funcs.hashPassword.share "$TMP/merged.json")") % of the app's CPU" \
		"in the merged profile, expected >= 10 % (the app gives it ~35 %)"

# ---- 5: the SDK's labels on the merged samples -------------------------------------------------
# share LABEL_ARGS... -- STACK_ARGS: the value of the merged samples matching both
labelled() {
	pprof_shares --type cpu --pid "$APP" "$@" "$TMP/merged.pb.gz" | jq '.stacks[0].value'
}
ssl_all=$(labelled --stack '^PKCS5_PBKDF2_HMAC$')
ssl_login=$(labelled --label route=/login --stack '^PKCS5_PBKDF2_HMAC$')
js_all=$(labelled --stack "${JS}pureJsWork:")
js_page=$(labelled --label route=/page --stack "${JS}pureJsWork:")
echo "# labels: OpenSSL samples with route=/login $((ssl_login / period)) of $((ssl_all / period));" \
	"pureJsWork samples with route=/page $((js_page / period)) of $((js_all / period))"
awk -v a="$ssl_login" -v b="$ssl_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
	fail "fewer than 90 % of OpenSSL's merged samples carry the hashing route's label: $ssl_login of $ssl_all ns"
awk -v a="$js_page" -v b="$js_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
	fail "fewer than 90 % of pureJsWork's merged samples carry its route's label: $js_page of $js_all ns"

finish
