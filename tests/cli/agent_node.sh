#!/usr/bin/env bash
# The whole node agent end to end: `braid agent` with eBPF sampling and
# --upstream pointing at the strict fake Pyroscope (tests/e2e/upstream,
# default checks: profiles must be recent, valid and labelled), while the
# example app (examples/node-app, the real @pyroscope/nodejs SDK from npm)
# pushes to the agent with its defaults but the address. Checked on what the
# upstream received, each profile decoded by npm's pprof-format:
#   1. merged process_cpu profiles of the app's service (braid_view=merged,
#      cpu/nanoseconds), with the SDK's JavaScript functions and kernel
#      frames in the same profile;
#   1b. the app's routes (Pyroscope.wrapWithLabels): >= 90 % of OpenSSL's
#      merged CPU carries route=/login, >= 90 % of renderReport's route=/report;
#   2. eBPF-only process_cpu profiles of other processes (braid_view=ebpf);
#   3. the SDK's own wall and heap profiles, byte for byte as the SDK pushed
#      them (the store's copies), with braid_view=sdk;
#   no sample of braid's own profiles is one that Pyroscope drops on ingestion
#   (a location with neither a line nor an address, say);
#   4. SIGTERM: exit 0 within 10 s, the outbox empty;
#   5. every thread of the agent runs with the capabilities it keeps only,
#      and /metrics counts each stage;
#   6. the live page (GET /, GET /report) and `braid report` from the store:
#      the crypto work is native time only eBPF sees, shown under hashPassword
#      in the SDK's view, and the app's JS functions are what eBPF sees only as
#      JIT code.
# Needs root and kernel BTF: exits 77 (a skip) with the reason otherwise.
# Environment: AGENT_RUN_SECONDS (the app's run, default 20).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
for tool in node npm jq curl; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

RUN_SECONDS=${AGENT_RUN_SECONDS:-20}
SERVICE=braid-e2e-agent

start_upstream # strict: profiles older than 1 h or newer than 10 min are refused
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --collect-interval 5s --grace 15s \
	--retry-max-backoff 2s
AGENT_T0=$(date +%s)
# ---- 5 first: capabilities, on every thread ----------------------------------------------
want=$(sed -n 's/^braid: agent: capabilities kept: 0x\([0-9a-f]*\)$/\1/p' "$AGENT_LOG")
# CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19), CAP_PERFMON (38), CAP_BPF (39)
expect_eq "the capabilities the agent keeps" c000080004 "$want"
for status in /proc/"$AGENT_PID"/task/*/status; do
	eff=$(awk '/^CapEff:/ { print $2 }' "$status" | sed 's/^0*//')
	expect_eq "CapEff of thread $(basename "$(dirname "$status")")" "$want" "$eff"
done

# ---- the app, pushing to the agent ----------------------------------------------------------
run_node_app "$SERVICE" "$RUN_SECONDS"
sleep $((3 * SLOW)) # the app's last samples are drained and its last push merged
curl -fsS "$AGENT_URL/metrics" >"$TMP/metrics"

# ---- 6: the live page and its report of the app -------------------------------------------
curl -fsS "$AGENT_URL/" >"$TMP/index.html" || fail "GET / failed"
expect_contains "GET / lists the app's service" "$TMP/index.html" ">$SERVICE</a>"
code=$(curl -s -o "$TMP/live.json" -w '%{http_code}' "$AGENT_URL/report?service=$SERVICE&from=5m&format=json")
expect_eq "GET /report?format=json" 200 "$code"
if [ "$code" = 200 ]; then
	L=$TMP/live.json
	echo "# the live report: $(jq -r '.views.ebpf.samples' "$L") eBPF samples, $(jq -r '.views.sdk.profiles' "$L")" \
		"SDK profiles, spliced $(jq -r '.coverage.spliced * 1000 | round / 10' "$L") %," \
		"warnings: $(jq -r '[.warnings[].code] | join(",")' "$L")"
	# the crypto work: native time only eBPF sees, under hashPassword in the SDK's view
	crypto=$(jq -c '[.blind_spots.ebpf_only[] | select(.name | test("PKCS5|pbkdf2|sha256|HMAC"; "i"))][0]' "$L")
	if [ "$crypto" = null ]; then
		fail "the live report names no crypto function among those only eBPF sees: $(jq -c '[.blind_spots.ebpf_only[] | {name, sdk_caller}]' "$L")"
	else
		echo "# only eBPF sees: $(jq -r '"\(.name) (\(.kind), \(.share * 1000 | round / 10) % of eBPF CPU), shown by the SDK under \(.sdk_caller) (\(.sdk_caller_share * 100 | round) %)"' <<<"$crypto")"
		case "$(jq -r .sdk_caller <<<"$crypto")" in
		*hashPassword*) ;;
		*) fail "the crypto work is not shown under hashPassword: $crypto" ;;
		esac
	fi
	# the JS functions eBPF sees only as JIT code
	js=$(jq -c '[.blind_spots.sdk_only[] | select(.name | test("hashPassword|renderReport|countPrimes"))]' "$L")
	[ "$(jq length <<<"$js")" -ge 2 ] ||
		fail "the live report lacks the app's JS functions among those only the SDK sees: $(jq -c '[.blind_spots.sdk_only[].name]' "$L")"
	echo "# only the SDK sees: $(jq -r '[.[] | .name] | join(", ")' <<<"$js"); eBPF sees them as $(jq -r '.[0].ebpf_sees' <<<"$js")"
	expect_eq "eBPF's JS is JIT code" true "$(jq '[.[].ebpf_sees | test("anonymous JIT code")] | all' <<<"$js")"
	expect_eq "the kernel's share is counted" true "$(jq '.summary.ebpf_shares.kernel > 0' "$L")"
fi
code=$(curl -s -o "$TMP/live.html" -w '%{http_code}' "$AGENT_URL/report?service=$SERVICE&from=5m")
expect_eq "GET /report (HTML)" 200 "$code"
expect_contains "the live page carries the report" "$TMP/live.html" '"schema":"braid-report/1"' 

# ---- 4: SIGTERM ------------------------------------------------------------------------------
# the agent's own CPU over the run, for the record (not judged here: bench/)
read -r -a st <"/proc/$AGENT_PID/stat"
ticks=$((st[13] + st[14]))
hz=$(getconf CLK_TCK)
up=$(($(date +%s) - AGENT_T0))
echo "# braid agent used $(awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s of CPU in $up s" \
	"($(awk -v t="$ticks" -v hz="$hz" -v up="$up" 'BEGIN { printf "%.1f", 100 * t / hz / up }') % of one core), RSS $(awk '/^VmRSS/ { print $2, $3 }' "/proc/$AGENT_PID/status")"
stop_agent
stop_ms=$STOP_MS
expect_eq "the outbox after SIGTERM" 0 \
	"$("$BRAID" store stats --json --data-dir "$TMP/data" | jq '.tables.outbox.rows')"
echo "# app pid $APP ran $RUN_SECONDS s; the agent stopped in $stop_ms ms"
sed 's/^/# /' "$AGENT_LOG" | grep -E 'stopped|outbox' || true

upstream_get received >"$TMP/received.json"
upstream_get rejected >"$TMP/rejected.json"
expect_eq "profiles the strict upstream refused" 0 "$(jq length "$TMP/rejected.json")"
[ "$(jq length "$TMP/rejected.json")" -eq 0 ] || jq -c '.[] | {status, message}' "$TMP/rejected.json" | head -5 >&2
# samples that Pyroscope would drop from braid's own profiles (the fake says
# what its sanitizeProfile removes): none
dropped=$(jq -c '[.[] | select(.labels.braid_view != "sdk" and (.dropped_samples // 0) > 0)
	| {view: .labels.braid_view, service: .labels.service_name, warnings}]' "$TMP/received.json")
expect_eq "braid's profiles with samples Pyroscope drops" "[]" "$(jq -c '.[:3]' <<<"$dropped")"
echo "# the upstream took $(jq length "$TMP/received.json") profiles:" \
	"$(jq -r 'group_by(.labels.braid_view) | map("\(.[0].labels.braid_view) \(length)") | join(", ")' "$TMP/received.json")"

# ---- 1: merged profiles of the app ---------------------------------------------------------
jq --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "merged")]' \
	"$TMP/received.json" >"$TMP/merged.json"
n_merged=$(jq length "$TMP/merged.json")
[ "$n_merged" -ge 1 ] || fail "no merged profile of $SERVICE reached the upstream"
if [ "$n_merged" -ge 1 ]; then
	expect_eq "merged profiles' __name__" process_cpu \
		"$(jq -r '[.[] | .labels.__name__] | unique | join(",")' "$TMP/merged.json")"
	expect_eq "merged profiles' sample types" '[["cpu","nanoseconds"]]' \
		"$(jq -c '[.[] | .sample_types] | unique | .[0]' "$TMP/merged.json")"
	expect_eq "merged profiles' period type" '["cpu","nanoseconds"]' \
		"$(jq -c '[.[] | .period_type] | unique | .[0]' "$TMP/merged.json")"
	jq -e 'all(.[]; .totals[0] > 0 and .totals[0] % .period == 0)' "$TMP/merged.json" >/dev/null ||
		fail "a merged profile's total is not a positive multiple of its period: $(jq -c '[.[] | {totals, period}]' "$TMP/merged.json")"
	# JS (the SDK's names) and the kernel in the same profiles
	js=$(jq '[.[] | .functions[] | select(test("hashPassword|handleRequest|renderReport"))] | length' "$TMP/merged.json")
	kernel=$(jq '[.[] | .functions[] | select(test("^(entry_SYSCALL_64|do_syscall_64|__x64_sys_|ksys_write|vfs_write)"))] | length' "$TMP/merged.json")
	[ "$js" -gt 0 ] || fail "the merged profiles name none of the app's JS functions: $(jq -c '[.[] | .functions[]] | unique | .[:40]' "$TMP/merged.json")"
	[ "$kernel" -gt 0 ] || fail "the merged profiles have no kernel frames"
	both=$(jq '[.[] | select((.functions | map(select(test("hashPassword|handleRequest"))) | length) > 0
		and (.functions | map(select(test("^(entry_SYSCALL_64|do_syscall_64)"))) | length) > 0)] | length' "$TMP/merged.json")
	[ "$both" -gt 0 ] || fail "no merged profile holds both JS and kernel frames"
	echo "# $n_merged merged profiles of $SERVICE; $both hold both JS and kernel frames"
fi

# ---- 1b: the routes' labels on the merged samples ------------------------------------------
# the app runs /login (OpenSSL, the kernel) and /report (JS only) under the
# SDK's route label; pprof_shares.js (npm's pprof-format) reads the merged
# profiles the upstream got
mapfile -t dumps < <(jq -r '.[] | .dump' "$TMP/merged.json")
routed() {
	pprof_shares --type cpu "$@" "${dumps[@]}" | jq '.stacks[0].value'
}
if [ "${#dumps[@]}" -gt 0 ]; then
	ssl_all=$(routed --stack '^PKCS5_PBKDF2_HMAC$')
	ssl_login=$(routed --label route=/login --stack '^PKCS5_PBKDF2_HMAC$')
	js_all=$(routed --stack 'renderReport')
	js_report=$(routed --label route=/report --stack 'renderReport')
	echo "# routes: OpenSSL's merged CPU with route=/login $ssl_login of $ssl_all ns;" \
		"renderReport's with route=/report $js_report of $js_all ns"
	awk -v a="$ssl_login" -v b="$ssl_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
		fail "fewer than 90 % of OpenSSL's merged CPU carries route=/login: $ssl_login of $ssl_all ns"
	awk -v a="$js_report" -v b="$js_all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
		fail "fewer than 90 % of renderReport's merged CPU carries route=/report: $js_report of $js_all ns"
fi

# ---- 2: eBPF-only profiles of other processes -------------------------------------------------
others=$(jq --arg s "$SERVICE" '[.[] | select(.labels.braid_view == "ebpf" and .labels.service_name != $s)]' "$TMP/received.json")
n_others=$(jq length <<<"$others")
[ "$n_others" -ge 1 ] || fail "no eBPF-only profile of another process reached the upstream"
echo "# $n_others eBPF-only profiles of other processes: $(jq -r '[.[] | .labels.service_name] | unique | .[:8] | join(" ")' <<<"$others")"
jq -e 'all(.[]; .labels.__name__ == "process_cpu" and .sample_types == [["cpu","nanoseconds"]])' <<<"$others" >/dev/null ||
	fail "eBPF-only profiles with another name or type: $(jq -c '[.[] | {n: .labels.__name__, t: .sample_types}] | unique' <<<"$others")"

# ---- 3: the SDK's own profiles, unchanged --------------------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
: >"$TMP/store-sha"
for id in $(jq -r --arg s "$SERVICE" '.sdk_profiles[] | select(.service == $s) | .id' "$TMP/ls.json"); do
	"$BRAID" store export "$id" -o "$TMP/sdk-$id.pb.gz" --data-dir "$TMP/data"
	gzip -dc "$TMP/sdk-$id.pb.gz" | sha256sum | cut -d' ' -f1 >>"$TMP/store-sha"
done
jq -r --arg s "$SERVICE" '.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk") | .sha256' \
	"$TMP/received.json" | sort >"$TMP/up-sha"
sort -o "$TMP/store-sha" "$TMP/store-sha"
expect_same_file "the SDK's profiles as pushed (store) and as the upstream got them" \
	"$TMP/store-sha" "$TMP/up-sha"
kinds=$(jq -r --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk")
	| .sample_types | map(.[0]) | if index("wall") then "wall" elif index("inuse_space") then "heap" else "other" end] | unique | join(" ")' "$TMP/received.json")
expect_eq "the SDK's profile kinds passed through" "heap wall" "$kinds"
echo "# $(wc -l <"$TMP/up-sha") SDK profiles passed through unchanged"

# ---- 6 again: braid report, from the store the agent left ----------------------------------
if "$BRAID" report --service "$SERVICE" --from 10m --data-dir "$TMP/data" -f md -o "$TMP/report.md" 2>"$TMP/report.err"; then
	expect_contains "braid report from the store: only eBPF sees" "$TMP/report.md" "### Only eBPF sees"
	expect_contains "braid report from the store: the app" "$TMP/report.md" "# $SERVICE (pid $APP)"
else
	fail "braid report --service $SERVICE failed: $(cat "$TMP/report.err")"
fi

# ---- 5: /metrics counted each stage ------------------------------------------------------------
m() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/metrics"; }
grep -E '^braid_collector_(user_stacks|unwind_)' "$TMP/metrics" | sed 's/^/# /'
for k in 'braid_collector_samples_total{state="stored"}' 'braid_merger_profiles_total{view="merged"}' \
	'braid_merger_profiles_total{view="ebpf"}' 'braid_merger_profiles_total{view="sdk"}' \
	'braid_merger_samples_total{outcome="spliced"}' 'braid_forward_profiles_total{outcome="delivered"}' \
	'braid_ingest_profiles_stored_total' 'braid_collector_user_stacks_total{unwind="cfi"}' \
	'braid_collector_unwind_ends_total{reason="root"}' 'braid_collector_unwind_files' \
	'braid_collector_unwind_rows' 'braid_collector_unwind_bytes{where="kernel"}' \
	'braid_collector_bpf_map_bytes'; do
	v=$(m "$k")
	[ "${v:-0}" != 0 ] || fail "/metrics: $k is ${v:-missing}"
done
expect_eq "/metrics: dead letters" 0 "$(m 'braid_forward_profiles_total{outcome="dead_letter"}')"

finish
