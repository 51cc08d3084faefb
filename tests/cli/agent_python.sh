#!/usr/bin/env bash
# The node agent end to end with the real Python SDK (pyroscope-io 1.4.0,
# tests/e2e/python/requirements.txt): `braid agent` with eBPF sampling
# forwards to the strict fake Pyroscope (tests/e2e/upstream) while
# tests/e2e/python/app.py (MODE=threads: a hasher thread in hash_password, the
# main thread in render_report and write_audit) pushes to it. With a real
# Grafana Pyroscope (PYROSCOPE_BIN, or pyroscope on PATH) the fake passes
# every request on to it and the checks below run on what Pyroscope stored
# too, read back through its query API. Checked:
#   1. threads: the SDK's thread_id labels are the app's threading.get_ident(),
#      and the eBPF samples of the app's threads carry the same values (their
#      thread pointer): the merger shares each thread's samples among its own
#      SDK stacks (braid_merger_samples_total{outcome="by_thread"});
#   2. the merged process_cpu profiles' stacks, root first: python's native
#      prefix, the app's Python functions, then _hashlib's and OpenSSL's
#      frames (>= 90 % of the OpenSSL samples under hash_password), and for
#      write_audit, os.pwrite's frames (>= 90 % of them under write_audit,
#      though the main thread runs render_report too) and the kernel's write;
#   3. totals: the app's merged and eBPF-only CPU, as sent and as Pyroscope
#      returns it, equal the store's eBPF samples of its process x period;
#   4. the SDK's own profiles passed through byte for byte (braid_view=sdk),
#      its process_cpu as process_cpu_sdk, so that the app's process_cpu
#      without a braid label is the measured CPU once (in Pyroscope: merged +
#      eBPF-only, and process_cpu_sdk what the SDK pushed);
#   5. braid report on the store: OpenSSL among what only eBPF sees, shown by
#      the SDK under hash_password; the app's Python functions among what only
#      the SDK sees, which eBPF sees as the eval loop.
# Needs root and kernel BTF: exits 77 (a skip) with the reason otherwise.
# Environment: AGENT_RUN_SECONDS (the app's run, default 20).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
for tool in jq curl sqlite3 python3; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done
py_sdk

RUN_SECONDS=${AGENT_RUN_SECONDS:-20}
SERVICE=braid-e2e-python
ORDER=$SRC_DIR/tests/tools/stack_order.py
T0=$(date +%s)

maybe_pyroscope "$TMP/pyroscope"
UPSTREAM_FORWARD_TO=${PYRO:+$PYRO_URL} start_upstream
GRACE=8
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --collect-interval 5s --grace "${GRACE}s" \
	--retry-max-backoff 2s

# ---- the app, pushing to the agent every 5 s ------------------------------------------------
rc=0
env PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" PYROSCOPE_APPLICATION_NAME="$SERVICE" MODE=threads \
	GIL_ONLY=0 UPLOAD_INTERVAL=5 RUN_SECONDS="$RUN_SECONDS" \
	"$PY_SDK" "$SRC_DIR/tests/e2e/python/app.py" >"$TMP/app.out" 2>"$TMP/app.err" || rc=$?
APP=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/app.out")
if [ "$rc" -ne 0 ] || [ -z "$APP" ]; then
	fail "the Python app exited $rc: $(cat "$TMP/app.out" "$TMP/app.err")"
	finish
fi
# every sampled second of the app leaves (merged or, past the grace period,
# eBPF-only), and its profiles leave the outbox
drain_agent "$TMP/data" "$SERVICE" "$APP" "$GRACE"

# ---- 1: threads ---------------------------------------------------------------------------------
sed -n 's/^thread \([^ ]*\) \([0-9][0-9]*\)$/\1 \2/p' "$TMP/app.out" | sort >"$TMP/threads"
expect_eq "threads the app announced" "MainThread hasher" "$(cut -d' ' -f1 "$TMP/threads" | tr '\n' ' ' | sed 's/ $//')"
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
: >"$TMP/sdk-threads"
: >"$TMP/store-sha"
for id in $(jq -r --arg s "$SERVICE" '.sdk_profiles[] | select(.service == $s) | .id' "$TMP/ls.json"); do
	"$BRAID" store export "$id" -o "$TMP/sdk-$id.pb" --data-dir "$TMP/data"
	# the pprof inside the push, gzipped or not (the fake hashes it inflated)
	if [ "$(head -c2 "$TMP/sdk-$id.pb" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
		gzip -dc <"$TMP/sdk-$id.pb" | sha256sum | cut -d' ' -f1 >>"$TMP/store-sha"
	else
		sha256sum <"$TMP/sdk-$id.pb" | cut -d' ' -f1 >>"$TMP/store-sha"
	fi
	pprof -raw "$TMP/sdk-$id.pb" 2>/dev/null |
		sed -n 's/.* thread_id:\[\([0-9]*\)\] thread_name:\[\([^]]*\)\].*/\2 \1/p' >>"$TMP/sdk-threads"
done
sort -u -o "$TMP/sdk-threads" "$TMP/sdk-threads"
expect_same_file "the SDK's thread_id labels against the app's threading.get_ident()" "$TMP/threads" "$TMP/sdk-threads"
sqlite3 "file:$TMP/data/braid.db?mode=ro" "SELECT DISTINCT b.thread_pointer FROM ebpf_buckets b
	JOIN processes p ON p.id = b.process_id WHERE p.pid = $APP AND b.thread_pointer != 0" | sort >"$TMP/ebpf-tps"
for tp in $(cut -d' ' -f2 "$TMP/threads"); do
	grep -qx "$tp" "$TMP/ebpf-tps" || fail "no eBPF sample of the app carries thread pointer $tp: $(tr '\n' ' ' <"$TMP/ebpf-tps")"
done
by_thread=$(awk '$1 == "braid_merger_samples_total{outcome=\"by_thread\"}" { print $2 }' "$TMP/metrics")
spliced=$(awk '$1 == "braid_merger_samples_total{outcome=\"spliced\"}" { print $2 }' "$TMP/metrics")
echo "# threads: $(tr '\n' ',' <"$TMP/threads" | sed 's/,$//'); $by_thread of $spliced spliced samples by their own thread"
[ "${by_thread:-0}" -gt 0 ] || fail "no sample was shared by its own thread's SDK stacks"

# ---- 2: the merged stacks -------------------------------------------------------------------------
upstream_get received >"$TMP/received.json"
expect_eq "profiles the strict upstream refused" 0 "$(upstream_get rejected | jq length)"
jq -r --arg s "$SERVICE" '.[] | select(.labels.service_name == $s and .labels.braid_view == "merged") | .dump' \
	"$TMP/received.json" >"$TMP/merged.list"
[ -s "$TMP/merged.list" ] || fail "no merged profile of $SERVICE reached the upstream"
: >"$TMP/merged.folded"
while read -r f; do
	"$BRAID" convert "$f" --to folded --annotate >>"$TMP/merged.folded" || fail "braid convert $f failed"
done <"$TMP/merged.list"
# check_stacks WHERE FOLDED: the order of frames in the merged stacks
check_stacks() {
	local where=$1 folded=$2 j
	j=$(python3 "$ORDER" "$folded" --has '^PKCS5_PBKDF2_HMAC$' \
		--order '^(Py_BytesMain|start_thread|pythread_wrapper|thread_run)$' --order '^hash_password$' \
		--order '^(pbkdf2_hmac|_hashlib_pbkdf2_hmac)' --order '^PKCS5_PBKDF2_HMAC$')
	echo "# $where: OpenSSL samples in order (python's native prefix; hash_password; _hashlib; PKCS5): $(jq -r '"\(.ordered) of \(.has)"' <<<"$j")"
	echo "#   e.g. $(jq -r .example <<<"$j" | cut -c1-300)"
	if [ "$(jq '.has > 0 and .ordered * 10 >= .has * 9' <<<"$j")" != true ]; then
		fail "$where: fewer than 90 % of the OpenSSL samples are under hash_password, in order: $j"
		# what the unwinder said, and how the merger split the app's samples
		grep -E '^braid_(collector_unwind_ends_total|collector_unwind_files_total|merger_samples_total)' \
			"$TMP/metrics" | sed 's/^/#   /' >&2
	fi
	j=$(python3 "$ORDER" "$folded" --has '^PKCS5_PBKDF2_HMAC$' --order '^render_report$')
	[ "$(jq '.ordered * 10 < .has' <<<"$j")" = true ] ||
		fail "$where: 10 % or more of the OpenSSL samples are under render_report: $j"
	# within the main thread: os.pwrite's samples under write_audit, whose
	# line calls it by name (docs/merger.md, "Native calls (Python)")
	j=$(python3 "$ORDER" "$folded" --has '^os_pwrite' --order '^write_audit$' --order '^os_pwrite')
	echo "# $where: os.pwrite samples under write_audit: $(jq -r '"\(.ordered) of \(.has)"' <<<"$j")"
	[ "$(jq '.has > 0 and .ordered * 10 >= .has * 9' <<<"$j")" = true ] ||
		fail "$where: fewer than 90 % of os.pwrite's samples are under write_audit: $j"
	j=$(python3 "$ORDER" "$folded" --has '_\[k\]$' \
		--order '^Py_BytesMain$' --order '^write_audit$' --order '^(os_pwrite|__libc_pwrite|__pwrite)' \
		--order '^(entry_SYSCALL_64[a-z_]*|do_syscall_64)_\[k\]$' --order '^(__x64_sys_pwrite64|ksys_pwrite64|vfs_write)_\[k\]$')
	echo "# $where: kernel write samples in order (Py_BytesMain; write_audit; pwrite; syscall; vfs_write): $(jq -r .ordered <<<"$j")"
	[ "$(jq .ordered <<<"$j")" -gt 0 ] || fail "$where: no stack holds write_audit, pwrite and the kernel's write in order: $j"
}
check_stacks "braid's merged profiles" "$TMP/merged.folded"

# ---- 3: totals -------------------------------------------------------------------------------------
check_cpu_totals "$TMP/data" "$SERVICE" "$APP" "$TMP/received.json"

# ---- 4: the SDK's profiles, as pushed ------------------------------------------------------------
jq -r --arg s "$SERVICE" '.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk") | .sha256' \
	"$TMP/received.json" | sort >"$TMP/up-sha"
sort -o "$TMP/store-sha" "$TMP/store-sha"
expect_same_file "the SDK's profiles as pushed (store) and as the upstream got them" "$TMP/store-sha" "$TMP/up-sha"
# its process_cpu as process_cpu_sdk: the app's process_cpu is the measured CPU, once
check_sdk_cpu_once "$SERVICE" "$TMP/received.json"

# ---- 5: braid report, from the store the agent left ---------------------------------------------
if "$BRAID" report --service "$SERVICE" --from 30m --data-dir "$TMP/data" -f json -o "$TMP/report.json" 2>"$TMP/report.err"; then
	R=$TMP/report.json
	crypto=$(jq -c '[.blind_spots.ebpf_only[] | select(.name | test("^(PKCS5_PBKDF2_HMAC|pbkdf2_hmac)$"))][0]' "$R")
	if [ "$crypto" = null ]; then
		fail "braid report: no OpenSSL function among those only eBPF sees: $(jq -c '[.blind_spots.ebpf_only[].name]' "$R")"
	else
		echo "# braid report: only eBPF sees $(jq -r '"\(.name) (\(.share * 1000 | round / 10) % of eBPF CPU), shown by the SDK under \(.sdk_caller)"' <<<"$crypto")"
		expect_eq "braid report: the SDK function OpenSSL's time is shown under" hash_password "$(jq -r .sdk_caller <<<"$crypto")"
	fi
	py=$(jq -c '[.blind_spots.sdk_only[] | select(.name | test("^(hash_password|render_report|write_audit)$"))]' "$R")
	[ "$(jq length <<<"$py")" -ge 2 ] ||
		fail "braid report: the app's Python functions are not among those only the SDK sees: $(jq -c '[.blind_spots.sdk_only[].name]' "$R")"
	echo "# braid report: only the SDK sees $(jq -r '[.[].name] | join(", ")' <<<"$py"); eBPF sees them as $(jq -r '.[0].ebpf_sees' <<<"$py")"
	expect_contains "braid report: eBPF sees Python as the eval loop" "$R" '_PyEval_EvalFrameDefault'
else
	fail "braid report --service $SERVICE failed: $(cat "$TMP/report.err")"
fi

# ---- the same in the real Pyroscope -------------------------------------------------------------
if [ -n "$PYRO" ]; then
	range="\"start\":$(((T0 - 600) * 1000)),\"end\":$((($(date +%s) + 600) * 1000))"
	expect_eq "requests the fake and Pyroscope judged apart" "[]" "$(upstream_get disagreements | jq -c '.[:3]')"
	bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" "{service_name=\"$SERVICE\",braid_view=\"merged\"}" \
		--minutes 30 --folded >"$TMP/pyro.folded" 2>"$TMP/top.err" ||
		fail "scripts/pyroscope-top.sh --folded failed: $(cat "$TMP/top.err")"
	# Pyroscope keeps no frame kinds: kernel frames by name
	sed -E 's/(^|;)(entry_SYSCALL_64[a-z_]*|do_syscall_64|__x64_sys_pwrite64|ksys_pwrite64|vfs_write)(;| )/\1\2_[k]\3/g; s/(^|;)(entry_SYSCALL_64[a-z_]*|do_syscall_64|__x64_sys_pwrite64|ksys_pwrite64|vfs_write)(;| )/\1\2_[k]\3/g' \
		"$TMP/pyro.folded" >"$TMP/pyro-k.folded"
	check_stacks "Pyroscope's merged profile" "$TMP/pyro-k.folded"
	check_pyroscope_totals "$SERVICE" "$range"
	check_sdk_cpu_once "$SERVICE" "$TMP/received.json" "$range"
fi

finish
