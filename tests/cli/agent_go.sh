#!/usr/bin/env bash
# The node agent end to end with the real Grafana Pyroscope Go SDK
# (github.com/grafana/pyroscope-go, pinned in go.mod): `braid agent` with eBPF
# sampling forwards to the strict fake Pyroscope (tests/e2e/upstream) while
# tests/e2e/go/app (two routes, each under pyroscope.TagWrapper: /login
# writes a file 64 bytes at a time, /page sorts) pushes to it. With a real
# Grafana Pyroscope (PYROSCOPE_BIN, or pyroscope on PATH) the fake passes
# every request on to it and the checks run on what Pyroscope stored too.
# Checked:
#   1. what the SDK sends, as stored: multipart /ingest with nanosecond
#      from/until, spy gospy, its CPU profile (process_cpu: samples/count and
#      cpu/nanoseconds, the routes as sample labels), memory and goroutine
#      (Pyroscope's names), each attributed to the app's PID;
#   2. the merge for Go is a match (docs/merger.md): the merged stacks are
#      eBPF's own, the kernel's write under main.writeAudit, and the SDK's
#      labels ride on them: >= 90 % of writeAudit's samples (and of the
#      kernel's write under it) carry route=/login, >= 90 % of renderPage's
#      route=/page;
#   3. totals: the app's merged and eBPF-only CPU equal the store's eBPF
#      samples of its process x period;
#   4. braid report says where the views disagree: most samples match an SDK
#      stack whole, the kernel's write is what only eBPF sees, shown by the
#      SDK under main.writeAudit;
#   5. the SDK's CPU leaves as process_cpu_sdk, so the app's process_cpu
#      without a braid label is the measured CPU once; with a real
#      Pyroscope, read back: that total, each route's series with its own
#      function and the kernel frames under it.
# Needs root and kernel BTF: exits 77 (a skip) with the reason otherwise.
# Environment: AGENT_RUN_SECONDS (the app's run, default 20).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
for tool in jq curl sqlite3 node npm; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done
GO_APP=$GOBIN_DIR/e2e-go-app
if [ ! -x "$GO_APP" ]; then
	echo "FAIL: $GO_APP is not built: run tests/cli/go-tools.sh (ctest -R go_tools)" >&2
	exit 1
fi
npm_modules # sets NPM_DIR: pprof-format reads the merged profiles (pprof_shares)

RUN_SECONDS=${AGENT_RUN_SECONDS:-20}
SERVICE=braid-e2e-go
T0=$(date +%s)

maybe_pyroscope "$TMP/pyroscope"
UPSTREAM_FORWARD_TO=${PYRO:+$PYRO_URL} start_upstream
GRACE=8
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --collect-interval 5s --grace "${GRACE}s" \
	--retry-max-backoff 2s

# ---- the app, pushing to the agent every 5 s ------------------------------------------------
rc=0
env PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" PYROSCOPE_APPLICATION_NAME="$SERVICE" UPLOAD_SECONDS=5 \
	RUN_SECONDS="$RUN_SECONDS" WORK_DIR="$TMP" "$GO_APP" >"$TMP/app.out" 2>"$TMP/app.err" || rc=$?
APP=$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$TMP/app.out")
if [ "$rc" -ne 0 ] || [ -z "$APP" ]; then
	fail "the Go app exited $rc: $(cat "$TMP/app.out" "$TMP/app.err")"
	finish
fi
drain_agent "$TMP/data" "$SERVICE" "$APP" "$GRACE"

# ---- 1: what the SDK sent ----------------------------------------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
jq -c --arg s "$SERVICE" '[.sdk_profiles[] | select(.service == $s)]' "$TMP/ls.json" >"$TMP/sdk.json"
names=$(jq -c 'group_by(.profile_name) | map({(.[0].profile_name): length}) | add // {}' "$TMP/sdk.json")
echo "# the SDK's pushes by __name__: $names"
# Pyroscope's names for them (its metricName: the config names the
# goroutine type "goroutine")
for n in process_cpu memory goroutine; do
	[ "$(jq --arg n "$n" '.[$n] // 0' <<<"$names")" -ge 2 ] || fail "fewer than 2 $n pushes stored: $names"
done
expect_eq "the pushes' spy, format and PID" "[[\"gospy\",\"pprof\",$APP]]" \
	"$(jq -c '[.[] | [.spy_name, .format, .pid]] | unique' "$TMP/sdk.json")"
# nanosecond from and until, 5 s apart (the app's upload rate)
jq -e '[.[] | select(.profile_name == "process_cpu") | .from_ns, .until_ns] | all(. > 1e18)' "$TMP/sdk.json" >/dev/null ||
	fail "the CPU pushes' from/until are not nanoseconds: $(jq -c '[.[] | [.from_ns, .until_ns]]' "$TMP/sdk.json")"
id=$(jq -r '[.[] | select(.profile_name == "process_cpu")][0].id' "$TMP/sdk.json")
"$BRAID" store export "$id" -o "$TMP/sdk-cpu.pb" --data-dir "$TMP/data"
cpu=$(pprof_shares --type cpu --label route=/login --stack 'main\.writeAudit' "$TMP/sdk-cpu.pb")
expect_eq "the SDK's CPU sample types" '"nanoseconds"' "$(jq .unit <<<"$cpu")"
[ "$(jq '.stacks[0].value' <<<"$cpu")" -gt 0 ] ||
	fail "the SDK's CPU profile has no writeAudit sample labelled route=/login: $(head -c 300 <<<"$cpu")"

# ---- 2: the merged stacks and their labels --------------------------------------------------------
upstream_get received >"$TMP/received.json"
expect_eq "profiles the strict upstream refused" 0 "$(upstream_get rejected | jq length)"
mapfile -t merged < <(jq -r --arg s "$SERVICE" '.[] | select(.labels.service_name == $s and .labels.braid_view == "merged") | .dump' "$TMP/received.json")
[ "${#merged[@]}" -gt 0 ] || fail "no merged profile of the app reached the upstream"
# labelled LABEL_ARGS... -- the value of the merged samples matching them
labelled() {
	pprof_shares --type cpu "$@" "${merged[@]}" | jq '.stacks[0].value'
}
# check_route WHERE ROUTE STACK...: >= 90 % of the samples through STACK carry ROUTE
check_route() {
	local where=$1 route=$2 all with
	shift 2
	all=$(labelled --stack "$(
		IFS=,
		echo "$*"
	)")
	with=$(labelled --label "route=$route" --stack "$(
		IFS=,
		echo "$*"
	)")
	echo "# $where: samples through $* with route=$route: $with of $all ns"
	awk -v a="$with" -v b="$all" 'BEGIN { exit !(b > 0 && a * 10 >= b * 9) }' ||
		fail "$where: fewer than 90 % of the samples through $* carry route=$route: $with of $all ns"
}
check_route "braid's merged profiles" /login '^main\.writeAudit$'
check_route "braid's merged profiles" /login '^main\.writeAudit$' '^(vfs_write|ksys_pwrite64|__x64_sys_pwrite64)$'
check_route "braid's merged profiles" /page '^main\.renderPage$'
# eBPF's frames, not the SDK's: the Go runtime's root, no inlined function
expect_eq "merged samples through the SDK's inlined TagWrapper" 0 "$(labelled --stack 'pyroscope-go\.TagWrapper')"
[ "$(labelled --stack '^runtime\.goexit')" -gt 0 ] || fail "no merged stack starts at eBPF's runtime.goexit"
grep -E '^braid_merger_samples_total' "$TMP/metrics" | sed 's/^/# /'

# ---- braid report: where the two views disagree ---------------------------------------------------
if "$BRAID" report --service "$SERVICE" --from 30m --data-dir "$TMP/data" -f json -o "$TMP/report.json" 2>"$TMP/report.err"; then
	R=$TMP/report.json
	echo "# braid report: Go stacks matched whole $(jq '.coverage.match.whole' "$R"), partly $(jq '.coverage.match.partial' "$R"), not at all $(jq '.coverage.match.none' "$R")"
	jq -e '.coverage.match.whole >= 0.5' "$R" >/dev/null ||
		fail "braid report: fewer than half of the app's eBPF samples match an SDK stack whole: $(jq -c .coverage.match "$R")"
	write=$(jq -c '[.blind_spots.ebpf_only[] | select(.name | test("^(vfs_write|ksys_pwrite64|__x64_sys_pwrite64|do_syscall_64)$"))][0]' "$R")
	if [ "$write" = null ]; then
		fail "braid report: the kernel's write is not among what only eBPF sees: $(jq -c '[.blind_spots.ebpf_only[].name]' "$R")"
	else
		echo "# braid report: only eBPF sees $(jq -r '"\(.name) (\(.share * 1000 | round / 10) % of eBPF CPU), shown by the SDK under \(.sdk_caller)"' <<<"$write")"
		expect_eq "braid report: the Go function the kernel's write is shown under" main.writeAudit "$(jq -r .sdk_caller <<<"$write")"
	fi
	expect_eq "braid report: Go's goroutine root among the blind spots" 0 \
		"$(jq '[.blind_spots.ebpf_only[] | select(.name | startswith("runtime.goexit"))] | length' "$R")"
else
	fail "braid report --service $SERVICE failed: $(cat "$TMP/report.err")"
fi

# ---- 3 and 4: totals, and the CPU once -------------------------------------------------------------
check_cpu_totals "$TMP/data" "$SERVICE" "$APP" "$TMP/received.json"
check_sdk_cpu_once "$SERVICE" "$TMP/received.json"

# ---- the same in the real Pyroscope ---------------------------------------------------------------
if [ -n "$PYRO" ]; then
	range="\"start\":$(((T0 - 600) * 1000)),\"end\":$((($(date +%s) + 600) * 1000))"
	expect_eq "requests the fake and Pyroscope judged apart" "[]" "$(upstream_get disagreements | jq -c '.[:3]')"
	check_pyroscope_totals "$SERVICE" "$range"
	check_sdk_cpu_once "$SERVICE" "$TMP/received.json" "$range"
	# the SDK's own types under the names Pyroscope gives a direct push
	names=$(pyro_query Series "{\"matchers\":[\"{service_name=\\\"$SERVICE\\\"}\"],\"labelNames\":[\"__name__\"],$range}" |
		jq -c '[.labelsSet[]?.labels[]?.value] | unique')
	expect_eq "Pyroscope's profile types of the app" '["goroutine","memory","process_cpu","process_cpu_sdk"]' "$names"
	# each route's merged series: its own function, with the kernel's frames
	for route in /login /page; do
		bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" \
			"{service_name=\"$SERVICE\",braid_view=\"merged\",route=\"$route\"}" \
			--minutes 30 --folded >"$TMP/pyro$(tr / _ <<<"$route").folded" 2>"$TMP/top.err" ||
			fail "scripts/pyroscope-top.sh --folded failed: $(cat "$TMP/top.err")"
	done
	login_write=$(folded_sum "$TMP/pyro_login.folded" 'main\.writeAudit;.*vfs_write')
	login_all=$(folded_sum "$TMP/pyro_login.folded" 'main\.writeAudit')
	page_render=$(folded_sum "$TMP/pyro_page.folded" 'main\.renderPage')
	page_write=$(folded_sum "$TMP/pyro_page.folded" 'main\.writeAudit')
	login_render=$(folded_sum "$TMP/pyro_login.folded" 'main\.renderPage')
	echo "# Pyroscope, route=/login: writeAudit $login_all (with the kernel's vfs_write below it: $login_write), renderPage $login_render;" \
		"route=/page: renderPage $page_render, writeAudit $page_write"
	[ "$login_write" -gt 0 ] || fail "Pyroscope's route=/login series has no kernel write under main.writeAudit"
	awk -v a="$login_all" -v b="$page_write" 'BEGIN { exit !(a > 0 && b * 9 <= a) }' ||
		fail "Pyroscope: fewer than 90 % of writeAudit's samples in route=/login ($login_all against $page_write)"
	awk -v a="$page_render" -v b="$login_render" 'BEGIN { exit !(a > 0 && b * 9 <= a) }' ||
		fail "Pyroscope: fewer than 90 % of renderPage's samples in route=/page ($page_render against $login_render)"
fi

finish
