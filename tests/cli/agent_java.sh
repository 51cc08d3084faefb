#!/usr/bin/env bash
# The node agent end to end with the real Pyroscope Java agent
# (io.pyroscope:agent, tests/e2e/java/agent.txt): `braid agent` with eBPF
# sampling forwards to the strict fake Pyroscope (tests/e2e/upstream) while
# tests/e2e/java/App.java (compress: java.util.zip.Deflater, zlib through
# JNI; writeLog: a file write; sortWork: Java alone) pushes JFR to it. With a
# real Grafana Pyroscope (PYROSCOPE_BIN, or pyroscope on PATH) the fake passes
# every request on to it and the checks run on what Pyroscope stored too.
# Checked:
#   1. the merger reads each push's recording (docs/jfr.md) and shares each
#      Java thread's eBPF samples among that thread's JFR stacks (the OS
#      thread ids match: braid_merger_samples_total{outcome="by_thread"});
#   2. the merged process_cpu stacks, root first: the JVM's native prefix,
#      App.compress, Deflater's Java frames, its JNI function and zlib's
#      deflate (>= 90 % of deflate's samples in that order); App.writeLog,
#      FileOutputStream's JNI function and the kernel's write (>= 90 % of
#      the JNI function's samples under writeLog, kernel frames below);
#   3. totals: the app's merged and eBPF-only CPU, as sent and as Pyroscope
#      returns it, equal the store's eBPF samples of its process x period;
#   4. the JFR pushes (braid_view=sdk): each leaves as its recording's
#      profiles in pprof, its CPU as process_cpu_sdk, so that the app's
#      process_cpu without a braid label is the measured CPU once (with a
#      real Pyroscope: merged + eBPF-only; process_cpu_sdk what the agent
#      recorded);
#   5. braid report on the store: the file write's native or kernel frames
#      among what only eBPF sees, under FileOutputStream.writeBytes; the app's
#      Java methods among what only the SDK sees.
# Needs root and kernel BTF: exits 77 (a skip) with the reason otherwise.
# Environment: AGENT_RUN_SECONDS (the app's run, default 20).
. "$(dirname "$0")/lib.sh"
: "${SRC_DIR:?}"

require_ebpf
for tool in java jq curl sqlite3 python3; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/deps.sh installs it)" >&2
		exit 1
	}
done
java_agent

RUN_SECONDS=${AGENT_RUN_SECONDS:-20}
SERVICE=braid-e2e-java
ORDER=$SRC_DIR/tests/tools/stack_order.py
T0=$(date +%s)

maybe_pyroscope "$TMP/pyroscope"
UPSTREAM_FORWARD_TO=${PYRO:+$PYRO_URL} start_upstream
GRACE=8
start_agent "$TMP/data" --upstream "$UPSTREAM_URL" --collect-interval 5s --grace "${GRACE}s" \
	--retry-max-backoff 2s

# ---- the app, pushing to the agent every 5 s ----------------------------------------------------
rc=0
env PYROSCOPE_SERVER_ADDRESS="$AGENT_URL" PYROSCOPE_APPLICATION_NAME="$SERVICE" \
	PYROSCOPE_UPLOAD_INTERVAL=5s PYROSCOPE_LOG_LEVEL=info RUN_SECONDS="$RUN_SECONDS" \
	java -javaagent:"$JAVA_AGENT" "$SRC_DIR/tests/e2e/java/App.java" >"$TMP/app.out" 2>"$TMP/app.err" || rc=$?
APP=$(sed -n 's/^pid \([0-9][0-9]*\)$/\1/p' "$TMP/app.out")
if [ "$rc" -ne 0 ] || [ -z "$APP" ]; then
	fail "the Java app exited $rc: $(cat "$TMP/app.out") $(tail -5 "$TMP/app.err")"
	finish
fi
drain_agent "$TMP/data" "$SERVICE" "$APP" "$GRACE"

# ---- 1: the recordings read, by thread -----------------------------------------------------------
metric() {
	awk -v m="braid_merger_samples_total{outcome=\"$1\"}" '$1 == m { print $2 }' "$TMP/metrics"
}
unusable=$(awk '$1 == "braid_merger_sdk_profiles_total{outcome=\"unusable\"}" { print $2 }' "$TMP/metrics")
expect_eq "JFR pushes the merger could not read" 0 "${unusable:-0}"
echo "# merger: $(metric spliced) samples spliced, $(metric by_thread) by their own thread, $(metric native_call) by the native call"
[ "$(metric by_thread)" -gt 0 ] 2>/dev/null || fail "no sample was shared by its own thread's JFR stacks"

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
check_stacks() {
	local where=$1 folded=$2 j
	j=$(python3 "$ORDER" "$folded" --has '^deflate$' --order '^App\.compress$' \
		--order '^java/util/zip/Deflater\.deflate' \
		--order '^Java_java_util_zip_Deflater_deflateBytesBytes$' --order '^deflate$')
	echo "# $where: zlib's deflate samples in order (App.compress; Deflater; its JNI function; deflate): $(jq -r '"\(.ordered) of \(.has)"' <<<"$j")"
	echo "#   e.g. $(jq -r .example <<<"$j" | cut -c1-400)"
	[ "$(jq '.has > 0 and .ordered * 10 >= .has * 9' <<<"$j")" = true ] ||
		fail "$where: fewer than 90 % of deflate's samples are under App.compress and Deflater, in order: $j"
	# where eBPF's unwinding went through the compiled Java frames, the
	# JVM's native prefix is above them (compiled code keeps no frame
	# pointer: other stacks stop in it, and start at the Java frames)
	j=$(python3 "$ORDER" "$folded" --has '^deflate$' \
		--order '^(start_thread|JavaMain|ThreadJavaMain)$' --order '^JavaCalls::call_helper$' \
		--order '^App\.compress$' --order '^Java_java_util_zip_Deflater_deflateBytesBytes$')
	echo "# $where: of them under the JVM's native prefix (thread start; JavaCalls::call_helper): $(jq -r .ordered <<<"$j")"
	[ "$(jq '.ordered > 0' <<<"$j")" = true ] ||
		fail "$where: no deflate stack has the JVM's native prefix above App.compress: $j"
	j=$(python3 "$ORDER" "$folded" --has '^Java_java_io_FileOutputStream_writeBytes$' \
		--order '^App\.writeLog$' --order '^java/io/FileOutputStream\.write' \
		--order '^Java_java_io_FileOutputStream_writeBytes$')
	echo "# $where: FileOutputStream.writeBytes's samples under App.writeLog: $(jq -r '"\(.ordered) of \(.has)"' <<<"$j")"
	[ "$(jq '.has > 0 and .ordered * 10 >= .has * 9' <<<"$j")" = true ] ||
		fail "$where: fewer than 90 % of the file write's samples are under App.writeLog: $j"
	j=$(python3 "$ORDER" "$folded" --has '_\[k\]$' --order '^App\.writeLog$' \
		--order '^Java_java_io_FileOutputStream_writeBytes$' \
		--order '^(entry_SYSCALL_64[a-z_]*|do_syscall_64)_\[k\]$' --order '^(__x64_sys_write|ksys_write|vfs_write)_\[k\]$')
	echo "# $where: kernel write samples in order (App.writeLog; writeBytes; syscall; vfs_write): $(jq -r .ordered <<<"$j")"
	[ "$(jq .ordered <<<"$j")" -gt 0 ] || fail "$where: no stack holds App.writeLog, writeBytes and the kernel's write in order: $j"
}
check_stacks "braid's merged profiles" "$TMP/merged.folded"

# ---- 3: totals -------------------------------------------------------------------------------------
check_cpu_totals "$TMP/data" "$SERVICE" "$APP" "$TMP/received.json"

# ---- 4: the JFR pushes, as their recordings' profiles -------------------------------------------
"$BRAID" store ls --json --limit 0 --data-dir "$TMP/data" >"$TMP/ls.json"
n_sdk=$(jq --arg s "$SERVICE" '[.sdk_profiles[] | select(.service == $s and .format == "jfr")] | length' "$TMP/ls.json")
n_up=$(jq --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s and .labels.braid_view == "sdk" and .format == "jfr")] | length' "$TMP/received.json")
n_cpu=$(jq --arg s "$SERVICE" '[.[] | select(.labels.service_name == $s and .labels.__name__ == "process_cpu_sdk"
	and .labels.jfr_event == "itimer" and .labels.pyroscope_spy == "javaspy")] | length' "$TMP/received.json")
expect_eq "JFR pushes passed on as pushed (braid reads them all)" 0 "$n_up"
expect_eq "the pushes' CPU profiles as process_cpu_sdk (upstream against store)" "$n_sdk" "$n_cpu"
[ "$n_sdk" -ge 2 ] || fail "$n_sdk JFR pushes stored, expected 2 or more"
check_sdk_cpu_once "$SERVICE" "$TMP/received.json"

# ---- 5: braid report, from the store the agent left ----------------------------------------------
if "$BRAID" report --service "$SERVICE" --from 30m --data-dir "$TMP/data" -f json -o "$TMP/report.json" 2>"$TMP/report.err"; then
	R=$TMP/report.json
	# the write path below the JNI method: libjava's writeBytes, libc's write,
	# the kernel's; the report lists its 20 largest blind spots, and which of
	# these is among them depends on what else the JVM's threads ran
	write=$(jq -c '[.blind_spots.ebpf_only[] | select(.name | test("^(writeBytes|handleWrite|__libc_write|write|ksys_write|vfs_write)$"))][0]' "$R")
	if [ "$write" = null ]; then
		fail "braid report: no function of the file write is among what only eBPF sees: $(jq -c '[.blind_spots.ebpf_only[].name]' "$R")"
	else
		echo "# braid report: only eBPF sees $(jq -r '"\(.name) (\(.share * 1000 | round / 10) % of eBPF CPU), shown by the SDK under \(.sdk_caller)"' <<<"$write")"
		expect_eq "braid report: the SDK function the file write is shown under" \
			java/io/FileOutputStream.writeBytes "$(jq -r .sdk_caller <<<"$write")"
	fi
	java=$(jq -c '[.blind_spots.sdk_only[] | select(.name | test("^App\\.(compress|writeLog|sortWork)$"))]' "$R")
	[ "$(jq length <<<"$java")" -ge 2 ] ||
		fail "braid report: the app's Java methods are not among those only the SDK sees: $(jq -c '[.blind_spots.sdk_only[].name]' "$R")"
	echo "# braid report: only the SDK sees $(jq -r '[.[].name] | join(", ")' <<<"$java"); eBPF sees them as $(jq -r '.[0].ebpf_sees' <<<"$java")"
else
	fail "braid report --service $SERVICE failed: $(cat "$TMP/report.err")"
fi

# ---- the same in the real Pyroscope ---------------------------------------------------------------
if [ -n "$PYRO" ]; then
	range="\"start\":$(((T0 - 600) * 1000)),\"end\":$((($(date +%s) + 600) * 1000))"
	expect_eq "requests the fake and Pyroscope judged apart" "[]" "$(upstream_get disagreements | jq -c '.[:3]')"
	views=$(pyro_query Series "{\"matchers\":[\"{service_name=\\\"$SERVICE\\\"}\"],\"labelNames\":[\"braid_view\",\"__name__\"],$range}" |
		jq -r '[.labelsSet[]?.labels | map(.value) | join(":")] | unique | join(",")')
	echo "# Pyroscope's series of the app (braid_view:__name__): $views"
	for v in sdk:process_cpu_sdk merged:process_cpu; do
		case ",$views," in *",$v,"* | *",${v#*:}:${v%%:*},"*) ;; *) fail "Pyroscope has no $v series of the app: $views" ;; esac
	done
	bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" "{service_name=\"$SERVICE\",braid_view=\"merged\"}" \
		--minutes 30 --folded >"$TMP/pyro.folded" 2>"$TMP/top.err" ||
		fail "scripts/pyroscope-top.sh --folded failed: $(cat "$TMP/top.err")"
	sed -E 's/(^|;)(entry_SYSCALL_64[a-z_]*|do_syscall_64|__x64_sys_write|ksys_write|vfs_write)(;| )/\1\2_[k]\3/g; s/(^|;)(entry_SYSCALL_64[a-z_]*|do_syscall_64|__x64_sys_write|ksys_write|vfs_write)(;| )/\1\2_[k]\3/g' \
		"$TMP/pyro.folded" >"$TMP/pyro-k.folded"
	check_stacks "Pyroscope's merged profile" "$TMP/pyro-k.folded"
	check_pyroscope_totals "$SERVICE" "$range"
	check_sdk_cpu_once "$SERVICE" "$TMP/received.json" "$range"
fi

finish
