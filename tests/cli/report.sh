#!/usr/bin/env bash
# braid report from files: a real `braid record` of node (tests/data) and the
# real SDK's push, as JSON, Markdown and HTML. Checked: the eBPF view is the
# recording's process exactly (samples, CPU), the merged view keeps it, the
# crypto work is native time only eBPF sees and shows under hashPassword in
# the SDK's view, the SDK's JS functions are what eBPF sees only as JIT code,
# the files' clock skew is warned about, the formats carry the same numbers;
# then the store side against `braid agent --no-ebpf` (the live page too), and
# every bad argument with its message and status.
. "$(dirname "$0")/lib.sh"

REC=$SRC_DIR/tests/data/node-record.pb.gz
PUSH=$FIXTURES/node-sdk-0.6.4/req2.pprof.gz

"$BRAID" report --ebpf "$REC" --sdk "$PUSH" -o "$TMP/r.json" 2>"$TMP/err"
expect_contains "where it wrote" "$TMP/err" "braid: report: wrote $TMP/r.json"
J=$TMP/r.json
q() { jq -r "$1" "$J"; }
expect_eq "schema" "braid-report/1" "$(q .schema)"
expect_eq "runtime" node "$(q .runtime)"
# the recording's node process, as Go's pprof would count it: 286 samples
pid=$(q .pid)
expect_eq "the process" 28674 "$pid"
expect_eq "eBPF samples" 286 "$(q .views.ebpf.samples)"
expect_eq "merged CPU = eBPF CPU" "$(q .views.ebpf.value)" "$(q .views.merged.value)"
expect_eq "eBPF frequency" 97 "$(q .views.ebpf.frequency_hz)"
expect_eq "the SDK's profiles" 1 "$(q .views.sdk.profiles)"
expect_eq "the SDK's weight" "cpu nanoseconds" "$(q '.views.sdk.sample_type + " " + .views.sdk.unit')"
# leaf shares add up
expect_eq "eBPF shares sum to 1" 1 "$(q '[.summary.ebpf_shares[]] | add * 1000 | round / 1000')"
# the two files were recorded at different times: said so
expect_eq "warnings" clock_skew "$(q '[.warnings[].code] | join(",")')"
# the crypto work: native, eBPF's alone, shown by the SDK under hashPassword
crypto=$(jq -c '[.blind_spots.ebpf_only[] | select(.name | test("PKCS5|pbkdf2|sha256|HMAC"; "i"))][0]' "$J")
[ "$crypto" != null ] || fail "no crypto function among the functions only eBPF sees: $(q '[.blind_spots.ebpf_only[].name] | join(", ")')"
expect_eq "the crypto function's kind" native "$(jq -r .kind <<<"$crypto")"
case "$(jq -r .sdk_caller <<<"$crypto")" in
*hashPassword*) ;;
*) fail "the crypto work is not shown under hashPassword in the SDK's view: $crypto" ;;
esac
# ... and the JS functions eBPF sees only as JIT code
js=$(jq -c '[.blind_spots.sdk_only[] | select(.name | test("hashPassword"))][0]' "$J")
[ "$js" != null ] || fail "hashPassword is not among the functions only the SDK sees"
case "$(jq -r .ebpf_sees <<<"$js")" in
*"anonymous JIT code"*) ;;
*) fail "how eBPF sees JS functions: $(jq -r .ebpf_sees <<<"$js")" ;;
esac
# the flame graphs: every view's root holds the view's value
# (flat: [parent, name, kind, value] in preorder, the root first)
expect_eq "the eBPF graph's root" "$(q .views.ebpf.value)" "$(q '.flamegraphs.ebpf.nodes[0][3]')"
expect_eq "the merged graph's root" "$(q .views.merged.value)" "$(q '.flamegraphs.merged.nodes[0][3]')"
expect_eq "the SDK graph's root" "$(q .views.sdk.value)" "$(q '.flamegraphs.sdk.nodes[0][3]')"
expect_eq "parents come before their children" true \
	"$(q '[.flamegraphs[] | .nodes | to_entries[] | select(.key > 0) | .value[0] < .key and .value[0] >= 0] | all')"
expect_eq "children never outweigh their parent" true \
	"$(q '[.flamegraphs[] | .nodes as $n | [range(1; $n | length)] | group_by($n[.][0])[]
		| (map($n[.][3]) | add) <= $n[$n[.[0]][0]][3]] | all')"

# the same numbers in Markdown, and the page in HTML
"$BRAID" report --ebpf "$REC" --sdk "$PUSH" -f md -o - >"$TMP/r.md" 2>/dev/null
expect_contains "Markdown: the title" "$TMP/r.md" "# pid 28674 (node)"
expect_contains "Markdown: eBPF samples" "$TMP/r.md" "| samples | 286 | $(q .views.sdk.samples) | 286 |"
expect_contains "Markdown: the crypto row" "$TMP/r.md" \
	"| $(jq -r .name <<<"$crypto") | native | $(jq -r '.share * 1000 | round / 10' <<<"$crypto") % | $(jq -r .sdk_caller <<<"$crypto")"
expect_contains "Markdown: the warning" "$TMP/r.md" "- **clock_skew**:"
"$BRAID" report --ebpf "$REC" --sdk "$PUSH" -o "$TMP/r.html" 2>/dev/null
expect_contains "HTML: the data" "$TMP/r.html" '"schema":"braid-report/1"'
expect_eq "HTML: one page, no fetch" 0 "$(grep -cE 'src="https?:|href="https?:' "$TMP/r.html" || true)"
# the format from -o's extension; the default file name
(cd "$TMP" && "$BRAID" report --ebpf "$REC" --sdk "$PUSH" 2>/dev/null)
[ -s "$TMP/braid-report.html" ] || fail "no braid-report.html by default"
"$BRAID" report --ebpf "$REC" --sdk "$PUSH" -o "$TMP/x.md" 2>/dev/null
head -c1 "$TMP/x.md" | grep -q '#' || fail "-o x.md did not write Markdown"

# ---- bad arguments -----------------------------------------------------------------
bad() {
	local what=$1 want_rc=$2 want=$3
	shift 3
	local rc=0
	"$BRAID" report "$@" -o "$TMP/bad.out" >/dev/null 2>"$TMP/bad.err" || rc=$?
	expect_eq "$what: exit status" "$want_rc" "$rc"
	expect_contains "$what: message" "$TMP/bad.err" "$want"
}
bad "nothing named" 2 "name what to report" --format json
bad "files without --sdk" 2 "give both --ebpf FILE and --sdk FILE" --ebpf "$REC"
bad "files and the store" 2 "not with --ebpf/--sdk files" --ebpf "$REC" --sdk "$PUSH" --service x
bad "a bad format" 2 "--format takes html, md or json, not 'pdf'" --service x -f pdf
bad "a bad time" 2 "--from takes a time" --service x --from yesterday
bad "an empty range" 2 "--from is not before --until" --service x --from 1h --until 2h
bad "a pid the recording lacks" 1 "has no samples of pid 1" --ebpf "$REC" --sdk "$PUSH" --pid 1
bad "not a recording" 1 "has no pid labels" --ebpf "$PUSH" --sdk "$PUSH"
bad "a missing store" 1 "braid.db" --service x --data-dir "$TMP/nowhere"

# ---- the store, and the live page of `braid agent --no-ebpf` -------------------------------
start_agent "$TMP/store" --no-ebpf
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$PUSH" \
	"$AGENT_URL/ingest?format=pprof&name=checkout%7Bregion%3Deu-1%7D&spyName=nodespy")
expect_eq "a push to the agent" 200 "$code"
curl -fsS "$AGENT_URL/" >"$TMP/index.html"
expect_contains "GET / lists the service" "$TMP/index.html" '<a href="/report?service=checkout&amp;from=15m">checkout</a>'
code=$(curl -s -o "$TMP/live.json" -w '%{http_code}' "$AGENT_URL/report?service=checkout&format=json")
expect_eq "GET /report?format=json" 200 "$code"
expect_eq "the live report's schema" braid-report/1 "$(jq -r .schema "$TMP/live.json")"
# no eBPF here; the push (no from/until: received now) is its SDK view
expect_eq "the live report's warnings" no_ebpf "$(jq -r '[.warnings[].code] | join(",")' "$TMP/live.json")"
expect_eq "the live report's SDK profiles" 1 "$(jq -r .views.sdk.profiles "$TMP/live.json")"
code=$(curl -s -o "$TMP/live.html" -w '%{http_code}' "$AGENT_URL/report?service=checkout")
expect_eq "GET /report (HTML)" 200 "$code"
expect_contains "the live page is the report" "$TMP/live.html" '"schema":"braid-report/1"'
code=$(curl -s -o "$TMP/live.err" -w '%{http_code}' "$AGENT_URL/report?service=nosuch")
expect_eq "GET /report of an unknown service" 404 "$code"
expect_contains "its message" "$TMP/live.err" "no process of service 'nosuch' was seen in that range"
code=$(curl -s -o "$TMP/live.err" -w '%{http_code}' "$AGENT_URL/report?pid=x")
expect_eq "GET /report?pid=x" 400 "$code"
code=$(curl -s -o "$TMP/live.err" -w '%{http_code}' "$AGENT_URL/report?service=checkout&from=soon")
expect_eq "GET /report?from=soon" 400 "$code"
stop_agent
# and the command, from the same store
"$BRAID" report --service checkout --data-dir "$TMP/store" -f json -o "$TMP/s.json" 2>/dev/null ||
	fail "braid report --service from the store failed"
expect_eq "from the store: the title" "checkout (pid" "$(jq -r '.title[0:13]' "$TMP/s.json")"
expect_eq "from the store: the push" 1 "$(jq -r .views.sdk.profiles "$TMP/s.json")"
# a range that ends before the process was seen: nothing to report
bad "a range before the data" 1 "no process of service 'checkout' was seen in that range" \
	--service checkout --data-dir "$TMP/store" --from 1700000000 --until 1700000600
finish
