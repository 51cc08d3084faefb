#!/usr/bin/env bash
# braid agent end to end with a real Grafana Pyroscope upstream: `braid agent`
# with eBPF sampling delivers to Pyroscope (scripts/pyroscope.sh, v2, on
# loopback) while the example app (examples/node-app, the real
# @pyroscope/nodejs SDK) pushes to the agent, and what Pyroscope stored is
# read back through its query API:
#   1. LabelValues and Series list the three views (braid_view merged, ebpf,
#      sdk), the app's series with the SDK's tags, and eBPF-only series of
#      other processes;
#   2. the merged process_cpu profile (SelectMergeProfile) has the app's
#      JavaScript functions in the same stacks as OpenSSL's, and in the same
#      stacks as kernel frames; by route (the SDK's wrapWithLabels), >= 90 %
#      of OpenSSL's merged CPU is in the route=/login series and >= 90 % of
#      renderReport's in route=/report;
#   3. totals: what Pyroscope returns for each view of the app (merged, and
#      eBPF-only for its last seconds, which no SDK profile covers) equals
#      what braid sent, to the nanosecond, and that equals the eBPF samples
#      the store holds of its process; the SDK's wall and CPU time come back
#      as pushed; no sample of braid's is one that Pyroscope drops;
#   4. nothing refused: no dead letter, no retry, and the strict fake in
#      front of Pyroscope (tests/e2e/upstream, --forward-to: it passes every
#      request on and answers with Pyroscope's reply) judged every request as
#      Pyroscope did.
# Needs root, kernel BTF and a Grafana Pyroscope binary (PYROSCOPE_BIN, or
# pyroscope on PATH): exits 77 (a skip) with the reason otherwise.
# Environment: AGENT_RUN_SECONDS (the app's run, default 20),
# AGENT_UPSTREAM_API (push, the default, or ingest: braid's --upstream-api).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
require_pyroscope
for tool in node npm jq curl sqlite3 python3; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

RUN_SECONDS=${AGENT_RUN_SECONDS:-20}
API=${AGENT_UPSTREAM_API:-push}
SERVICE=braid-e2e-pyroscope-$API
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds

T0=$(date +%s)
start_pyroscope "$TMP/pyroscope"
echo "# Pyroscope $("${PYROSCOPE_BIN:-pyroscope}" -version 2>/dev/null | sed -n 's/^pyroscope, version \([^ ]*\).*/\1/p') ready at $PYRO_URL in $(($(date +%s) - T0)) s"
start_upstream --forward-to "$PYRO_URL"
GRACE=8
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --upstream-api "$API" --collect-interval 5s \
	--grace "${GRACE}s" --retry-max-backoff 2s
run_node_app "$SERVICE" "$RUN_SECONDS"
# Once the grace period is over, the app's last seconds, which no SDK profile
# covers, go as eBPF-only profiles: wait for the merger's watermark to pass
# the app's last sampled second, so that every view of it is sent.
emitted=$(wait_emitted "$TMP/data" "$APP" $(((GRACE + 20) * SLOW)))
expect_eq "every sampled second of the app emitted within $((GRACE + 20)) s of its exit" 1 "$emitted"
# Pyroscope v2 answers a request once its segment is written (up to 0.5 s):
# through /ingest, one profile a request, the outbox takes a while to drain,
# and on a busy machine other processes' profiles keep coming. Wait for the
# app's, so that what Pyroscope stored of it is all that braid sent.
queued=
for _ in $(seq 1 $((120 * SLOW))); do
	queued=$(outbox_of "$TMP/data" "$SERVICE")
	[ "$queued" = 0 ] && break
	sleep 1
done
expect_eq "the app's profiles still in the outbox after $((120 * SLOW)) s" 0 "$queued"
stop_agent # the final pass, and the outbox flushed

# ---- 4: nothing refused ----------------------------------------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
expect_eq "the app's profiles in the outbox after SIGTERM" 0 "$(outbox_of "$TMP/data" "$SERVICE")"
expect_eq "dead letters (profiles Pyroscope refused)" "[]" \
	"$(jq -c '[.dead_letters[] | {status, reason}] | .[:5]' "$TMP/ls.json")"
upstream_get requests >"$TMP/requests.json"
# (a request still in flight when the stop's flush ran out has no reply: its
# profiles wait in the store for the next start)
expect_eq "Pyroscope's replies to braid's requests" "200" \
	"$(jq -r '[.[] | select(.status != null) | .status] | unique | map(tostring) | join(",")' "$TMP/requests.json")"
jq -r '.[] | select(.status != 200) | "#   \(.status) \(.path): \(.message)"' "$TMP/requests.json" | head -5 >&2
expect_eq "requests the fake and Pyroscope judged apart" "[]" "$(upstream_get disagreements | jq -c '.[:3]')"
upstream_get received >"$TMP/received.json"
# samples that Pyroscope drops from braid's own profiles, which the fake
# predicts from what its sanitizeProfile removes: none
expect_eq "braid's profiles with samples Pyroscope drops" "[]" \
	"$(jq -c '[.[] | select(.labels.braid_view != "sdk" and (.dropped_samples // 0) > 0)
		| {view: .labels.braid_view, service: .labels.service_name, warnings}] | .[:3]' "$TMP/received.json")"
echo "# braid sent $(jq length "$TMP/received.json") profiles in $(jq length "$TMP/requests.json") requests," \
	"all taken by Pyroscope: $(jq -r 'group_by(.labels.braid_view) | map("\(.[0].labels.braid_view) \(length)") | join(", ")' "$TMP/received.json")"

# ---- 1: the series Pyroscope lists ----------------------------------------------------------
START_MS=$(((T0 - 600) * 1000))
END_MS=$((($(date +%s) + 600) * 1000))
range="\"start\":$START_MS,\"end\":$END_MS"
views=$(pyro_query LabelValues "{\"name\":\"braid_view\",$range}" | jq -c '.names // [] | sort')
expect_eq "braid_view values in Pyroscope" '["ebpf","merged","sdk"]' "$views"
# (/ingest adds pyroscope_spy, the request's spyName: left out here)
pyro_query Series "{\"matchers\":[\"{service_name=\\\"$SERVICE\\\"}\"],$range}" |
	jq -c '[.labelsSet[]? | [.labels[] | select(.name == "__profile_type__" or
		(.name | startswith("__") or . == "pyroscope_spy" | not)) | "\(.name)=\(.value)"] | sort | join(" ")] | sort' \
		>"$TMP/series.json"
echo "# the app's series in Pyroscope:"
jq -r '.[] | "#   \(.)"' "$TMP/series.json"
for want in "__profile_type__=$CPU braid_view=merged example=node-app service_name=$SERVICE version=1.0.0" \
	"__profile_type__=$CPU braid_view=merged example=node-app route=/login service_name=$SERVICE version=1.0.0" \
	"__profile_type__=$CPU braid_view=merged example=node-app route=/report service_name=$SERVICE version=1.0.0" \
	"__profile_type__=wall:wall:nanoseconds:wall:nanoseconds braid_view=sdk example=node-app service_name=$SERVICE version=1.0.0" \
	"__profile_type__=wall:cpu:nanoseconds:wall:nanoseconds braid_view=sdk example=node-app service_name=$SERVICE version=1.0.0" \
	"__profile_type__=memory:inuse_space:bytes:inuse_space:bytes braid_view=sdk example=node-app service_name=$SERVICE version=1.0.0"; do
	jq -e --arg w "$want" 'index($w) != null' "$TMP/series.json" >/dev/null ||
		fail "Pyroscope lists no series [$want]"
done
others=$(pyro_query Series "{\"matchers\":[\"{braid_view=\\\"ebpf\\\",service_name!=\\\"$SERVICE\\\"}\"],$range}" |
	jq '[.labelsSet[]? | .labels[] | select(.name == "service_name") | .value] | unique | length')
[ "$others" -ge 1 ] || fail "Pyroscope lists no eBPF-only series of another process"
echo "# eBPF-only series of $others other services"

# total VIEW [TYPE]: the sum of SelectMergeProfile's values for the app's VIEW
# (a braid_view matcher value, =~ regex allowed as "~merged|ebpf")
total() {
	local view=$1 type=${2:-$CPU} m
	case "$view" in "~"*) m="braid_view=~\\\"${view#\~}\\\"" ;; *) m="braid_view=\\\"$view\\\"" ;; esac
	pyro_query SelectMergeProfile "{\"profileTypeID\":\"$type\",\"labelSelector\":\"{service_name=\\\"$SERVICE\\\",$m}\",$range}" |
		jq -r '[.sample[]?.value[0] | tonumber] | add // 0'
}

# ---- 2: the merged profile's stacks --------------------------------------------------------
# (scripts/pyroscope-top.sh --folded: SelectMergeProfile as folded stacks)
bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" "{service_name=\"$SERVICE\",braid_view=\"merged\"}" \
	--minutes 30 --folded >"$TMP/merged.folded" 2>"$TMP/top.err" ||
	fail "scripts/pyroscope-top.sh --folded failed: $(cat "$TMP/top.err")"
js='examples/node-app/app.js:(hashPassword|handleRequest|renderReport|writeAuditRecord|tick):'
ssl=$(grep -E "$js" "$TMP/merged.folded" | grep -cE ';(PKCS5_PBKDF2_HMAC|HMAC_[A-Za-z_]+|EVP_[A-Za-z_]+|sha256_[a-z_]+)(;| )' || true)
kernel=$(grep -E "$js" "$TMP/merged.folded" | grep -cE ';(entry_SYSCALL_64[a-z_]*|do_syscall_64);' || true)
echo "# Pyroscope's merged profile of the app: $(wc -l <"$TMP/merged.folded") stacks; $ssl with its JS and" \
	"OpenSSL, $kernel with its JS and the kernel"
[ "$ssl" -gt 0 ] || fail "no stack of Pyroscope's merged profile has the app's JS and OpenSSL: $(head -c 1500 "$TMP/merged.folded")"
[ "$kernel" -gt 0 ] || fail "no stack of Pyroscope's merged profile has the app's JS and kernel frames"
grep -E "$js" "$TMP/merged.folded" | grep -E ';PKCS5_PBKDF2_HMAC' | sort -t' ' -k2 -n | tail -1 |
	sed 's/^/#   e.g. /' | cut -c1-400
# the routes (the app's Pyroscope.wrapWithLabels): each route's merged series
# holds its own work, OpenSSL's under /login, renderReport's under /report
for route in /login /report; do
	bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" \
		"{service_name=\"$SERVICE\",braid_view=\"merged\",route=\"$route\"}" \
		--minutes 30 --folded >"$TMP/route$(tr / _ <<<"$route").folded" 2>"$TMP/top.err" ||
		fail "scripts/pyroscope-top.sh --folded (route=$route) failed: $(cat "$TMP/top.err")"
done
ssl_all=$(folded_sum "$TMP/merged.folded" ';PKCS5_PBKDF2_HMAC(;| )')
ssl_login=$(folded_sum "$TMP/route_login.folded" ';PKCS5_PBKDF2_HMAC(;| )')
js_all=$(folded_sum "$TMP/merged.folded" ':renderReport:')
js_report=$(folded_sum "$TMP/route_report.folded" ':renderReport:')
echo "# Pyroscope, by route: OpenSSL's merged CPU under route=/login $ssl_login of $ssl_all ns;" \
	"renderReport's under route=/report $js_report of $js_all ns"
awk -v a="$ssl_login" -v b="$ssl_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
	fail "Pyroscope: fewer than 90 % of OpenSSL's merged CPU in the route=/login series: $ssl_login of $ssl_all ns"
awk -v a="$js_report" -v b="$js_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
	fail "Pyroscope: fewer than 90 % of renderReport's merged CPU in the route=/report series: $js_report of $js_all ns"
# the README's command: the top functions, as braid inspect prints them
if bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" "{service_name=\"$SERVICE\"}" --minutes 30 --top 5 \
	>"$TMP/top.txt" 2>"$TMP/top.err"; then
	expect_contains "scripts/pyroscope-top.sh: the table" "$TMP/top.txt" "by flat cpu/nanoseconds"
	grep -qE ' (sha256_block_data_order[a-z_]*|PKCS5_PBKDF2_HMAC|[a-z_]*sha256[a-z_]*)$' "$TMP/top.txt" ||
		fail "scripts/pyroscope-top.sh: no hashing among the top 5: $(cat "$TMP/top.txt")"
	sed -n '/^Top/,$p' "$TMP/top.txt" | sed 's/^/# /'
else
	fail "scripts/pyroscope-top.sh failed: $(cat "$TMP/top.err")"
fi

# ---- 3: totals, to the nanosecond ----------------------------------------------------------
# what braid sent, as the fake decoded it on the way
sent() {
	jq --arg s "$SERVICE" --arg v "$1" '[.[] | select(.labels.service_name == $s and .labels.braid_view == $v)
		| .totals[0] | tonumber] | add // 0' "$TMP/received.json"
}
merged_total=$(total merged)
ebpf_total=$(total ebpf)
expect_eq "the app's merged CPU (ns): Pyroscope's total against what braid sent" "$(sent merged)" "$merged_total"
expect_eq "the app's ebpf CPU (ns): Pyroscope's total against what braid sent" "$(sent ebpf)" "$ebpf_total"
period=$(jq -r --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "merged") | .period] | unique | join(",")' "$TMP/received.json")
[[ $period =~ ^[0-9]+$ ]] || fail "the merged profiles' period is not one number: [$period]"
# the eBPF samples of the app's process that the merger has emitted (seconds
# below its watermark), and those it has not: none, once it was waited for
store_samples=$(sqlite3 "file:$TMP/data/braid.db?mode=ro" "SELECT coalesce(sum(b.count), 0) FROM ebpf_buckets b
	JOIN processes p ON p.id = b.process_id WHERE p.pid = $APP AND b.second < p.ebpf_emitted_s")
left=$(sqlite3 "file:$TMP/data/braid.db?mode=ro" "SELECT coalesce(sum(b.count), 0) FROM ebpf_buckets b
	JOIN processes p ON p.id = b.process_id WHERE p.pid = $APP AND b.second >= p.ebpf_emitted_s")
both=$(total "~merged|ebpf")
expect_eq "the app's CPU in Pyroscope (merged + eBPF-only, ns) against the store's emitted samples x period" \
	"$((store_samples * ${period:-0}))" "$both"
echo "# the app's CPU: $store_samples eBPF samples x $period ns = $both ns in Pyroscope" \
	"(merged $merged_total, eBPF-only $ebpf_total)"
expect_eq "the app's samples not sent (after the merger's watermark)" 0 "$left"
[ "$ebpf_total" -gt 0 ] || fail "no eBPF-only CPU of the app: its last seconds, past the grace period, should be"
# the SDK's own profiles, passed through: Pyroscope's wall and CPU time of the
# SDK view equal the pushes' (the fake decoded each as it went by)
for t in wall cpu; do
	pushed=$(jq --arg s "$SERVICE" --arg t "$t" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk")
		| (.sample_types | map(.[0]) | index($t)) as $i | select($i != null) | .totals[$i] | tonumber] | add // 0' "$TMP/received.json")
	[ "$pushed" -gt 0 ] || fail "the SDK pushed no $t time"
	expect_eq "the SDK's $t time (ns): Pyroscope's total against the pushes" "$pushed" \
		"$(total sdk "wall:$t:nanoseconds:wall:nanoseconds")"
done

finish
