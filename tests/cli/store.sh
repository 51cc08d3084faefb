# braid store: what a user sees of the buffer. A known set of rows (written
# by store_fill through the store's API, with the real Node SDK payload) must
# come out of `stats` and `ls` in text and JSON, the files must have the
# modes the docs promise, a body pushed to `braid ingest` must come out of
# `export` byte for byte, and bad stores and bad usage give clear errors.
. "$(dirname "$0")/lib.sh"
: "${STORE_FILL:?}"

D="$TMP/data"
NODE="$FIXTURES/node-sdk-0.6.4/req2.pprof.gz"
"$STORE_FILL" "$D" "$NODE"

# files: directory 0700, database 0600
expect_eq "data directory mode" 700 "$(stat -c %a "$D")"
expect_eq "database mode" 600 "$(stat -c %a "$D/braid.db")"

# ---- stats
"$BRAID" store stats --json --data-dir "$D" >"$TMP/stats.json"
jq -e . "$TMP/stats.json" >/dev/null || fail "stats --json is not JSON"
q() { jq -r "$1" "$TMP/stats.json"; }
expect_eq "stats schema" 6 "$(q .schema_version)"
expect_eq "stats path" "$D/braid.db" "$(q .path)"
expect_eq "stats sdk rows" 2 "$(q .tables.sdk_profiles.rows)"
expect_eq "stats process rows" 1 "$(q .tables.processes.rows)"
expect_eq "stats bucket rows" 3 "$(q .tables.ebpf_buckets.rows)"
expect_eq "stats stacks (deduplicated)" 2 "$(q .tables.stacks.rows)"
expect_eq "stats frames (deduplicated)" 2 "$(q .tables.frames.rows)"
expect_eq "stats eBPF samples" 97 "$(q .ebpf_samples)"
expect_eq "stats oldest bucket" "2023-11-14T22:13:21.000Z" "$(q .tables.ebpf_buckets.oldest)"
expect_eq "stats newest bucket" "2023-11-14T22:13:22.000Z" "$(q .tables.ebpf_buckets.newest)"
expect_eq "stats oldest SDK profile" "2023-11-14T22:14:21.000Z" "$(q .tables.sdk_profiles.oldest)"
expect_eq "stats outbox rows" 2 "$(q .tables.outbox.rows)"
expect_eq "stats dead letters" 1 "$(q .tables.dead_letters.rows)"
expect_eq "stats dead letter counter" 1 "$(q .counters.dead_letters)"
expect_eq "stats refusals" 0 "$(q .counters.sdk_profiles_refused_full)"
expect_eq "stats unqueued (both passed on)" 0 "$(q .sdk_profiles_unqueued)"
expect_eq "stats unforwarded" 2 "$(q .sdk_profiles_unforwarded)"
expect_eq "stats max bytes" 1073741824 "$(q .max_bytes)"
expect_eq "stats retention" 86400 "$(q .retention_seconds)"
[ "$(q .tables.sdk_profiles.bytes)" -gt 0 ] || fail "stats: no bytes for sdk_profiles"
[ "$(q .used_bytes)" -le "$(q .file_bytes)" ] || fail "stats: used bytes over the file size"

"$BRAID" store stats --data-dir "$D" >"$TMP/stats.txt"
expect_contains "stats text" "$TMP/stats.txt" "store       $D/braid.db (schema 6)"
expect_contains "stats text" "$TMP/stats.txt" "SDK profiles unqueued    0"
expect_contains "stats text" "$TMP/stats.txt" "retention   24h"
grep -Eq '^sdk_profiles +2 +[0-9.]+ (B|KiB) +2023-11-14T22:14:21.000Z +2023-11-14T22:14:22.000Z' \
	"$TMP/stats.txt" || fail "stats text: no sdk_profiles row: $(cat "$TMP/stats.txt")"
grep -Eq '^dead_letters +1 ' "$TMP/stats.txt" || fail "stats text: no dead_letters row"
grep -Eq '^ebpf_rows_dropped_full +0$' "$TMP/stats.txt" || fail "stats text: no drop counter"

# ---- ls: the SDK profile as stored, totals as braid decodes the payload
"$BRAID" store ls --json --data-dir "$D" >"$TMP/ls.json"
jq -e . "$TMP/ls.json" >/dev/null || fail "ls --json is not JSON"
l() { jq -r "$1" "$TMP/ls.json"; }
expect_eq "ls profiles" 2 "$(l '.sdk_profiles | length')"
expect_eq "ls service" shop-api "$(l '.sdk_profiles[0].service')"
expect_eq "ls labels" "prod" "$(l '.sdk_profiles[0].labels.env')"
expect_eq "ls tenant" team-a "$(l '.sdk_profiles[0].tenant')"
expect_eq "ls from" "2023-11-14T22:13:20.000Z" "$(l '.sdk_profiles[0].from')"
expect_eq "ls until" "2023-11-14T22:14:20.000Z" "$(l '.sdk_profiles[0].until')"
expect_eq "ls pid" 4242 "$(l '.sdk_profiles[0].pid')"
expect_eq "ls attribution" tcp-peer "$(l '.sdk_profiles[0].attribution')"
expect_eq "ls payload bytes" "$(stat -c %s "$NODE")" "$(l '.sdk_profiles[0].payload_bytes')"
"$BRAID" inspect "$NODE" >"$TMP/inspect.txt"
expect_eq "ls sample types" "samples/count, wall/nanoseconds, cpu/nanoseconds" \
	"$(l '[.sdk_profiles[0].sample_types[] | .type + "/" + .unit] | join(", ")')"
expect_contains "ls totals vs inspect" "$TMP/inspect.txt" \
	"samples/count: $(l '.sdk_profiles[0].sample_types[0].total')"
expect_contains "ls totals vs inspect" "$TMP/inspect.txt" \
	"($(l '.sdk_profiles[0].sample_types[2].total'))"
expect_eq "ls wall is CPU time, queued (outbox), not merged or forwarded" "true true false false" \
	"$(l '.sdk_profiles[0] | "\(.cpu_time) \(.queued) \(.merged) \(.forwarded)"')"
expect_eq "ls process_cpu is CPU time, queued (dead letter)" "true true" \
	"$(l '.sdk_profiles[1] | "\(.cpu_time) \(.queued)"')"
expect_eq "ls unattributed pid" null "$(l '.sdk_profiles[1].pid')"
expect_eq "ls unattributed" none "$(l '.sdk_profiles[1].attribution')"
expect_eq "ls outbox" "merged sdk" "$(l '[.outbox[].kind] | join(" ")')"
expect_eq "ls retrying item" "connect: Connection refused" "$(l '.outbox[1].last_error')"
expect_eq "ls retrying attempts" 1 "$(l '.outbox[1].attempts')"
expect_eq "ls pass-through payload" "$(stat -c %s "$NODE")" "$(l '.outbox[1].payload_bytes')"
expect_eq "ls dead status" 400 "$(l '.dead_letters[0].status')"
expect_eq "ls dead reason" 'invalid profile: "bad" sample type' "$(l '.dead_letters[0].reason')"

"$BRAID" store ls --service billing --json --data-dir "$D" >"$TMP/billing.json"
expect_eq "ls --service" billing "$(jq -r '[.sdk_profiles[].service] | join(" ")' "$TMP/billing.json")"
expect_eq "ls --service outbox" 0 "$(jq -r '.outbox | length' "$TMP/billing.json")"
expect_eq "ls --service dead" 1 "$(jq -r '.dead_letters | length' "$TMP/billing.json")"
"$BRAID" store ls --limit 1 --json --data-dir "$D" >"$TMP/one.json"
expect_eq "ls --limit" 1 "$(jq -r '.sdk_profiles | length' "$TMP/one.json")"

"$BRAID" store ls --data-dir "$D" >"$TMP/ls.txt"
grep -Eq '^1 +shop-api +wall +2023-11-14T22:13:20.000Z +2023-11-14T22:14:20.000Z +4242 +tcp-peer +yes +no +yes +no +samples/count=199,wall/nanoseconds=1796724000,cpu/nanoseconds=1504614484 service_name=shop-api,__name__=wall,env=prod team-a$' \
	"$TMP/ls.txt" || fail "ls text: profile row: $(cat "$TMP/ls.txt")"
expect_contains "ls text" "$TMP/ls.txt" "connect: Connection refused  [shop-api{sdk}]"

# ---- check and gc: the 2023 rows are past the 24 h retention, the outbox
# item and the dead letter written just now are not

"$BRAID" store check --data-dir "$D" >"$TMP/check.txt"
expect_eq "check" "$D/braid.db: ok" "$(cat "$TMP/check.txt")"
"$BRAID" store gc --data-dir "$D" >"$TMP/gc.txt"
expect_contains "gc" "$TMP/gc.txt" \
	"removed: 2 SDK profiles, 3 eBPF bucket rows, 1 outbox items, 0 dead letters (retention); 1 processes, 2 stacks, 2 frames (unused)"
"$BRAID" store stats --json --data-dir "$D" >"$TMP/stats.json"
expect_eq "after gc: SDK profiles" 0 "$(q .tables.sdk_profiles.rows)"
expect_eq "after gc: expired counter" 2 "$(q .counters.sdk_profiles_expired)"
expect_eq "after gc: unforwarded expired" 2 "$(q .counters.sdk_profiles_expired_unforwarded)"
expect_eq "after gc: unemitted samples expired" 97 "$(q .counters.ebpf_samples_expired_unemitted)"
expect_eq "after gc: outbox (the queued merged profile)" 1 "$(q .tables.outbox.rows)"
expect_eq "after gc: outbox expired with its SDK profile" 1 "$(q .counters.outbox_expired)"
expect_eq "after gc: processes" 0 "$(q .tables.processes.rows)"
expect_eq "after gc: stacks" 0 "$(q .tables.stacks.rows)"

# ---- export: a body pushed to braid ingest comes back byte for byte
NODE_DIR=$FIXTURES/node-sdk-0.6.4
LIVE=$TMP/live
start_ingest "$LIVE"
for req in req2 req3; do
	status=$(curl -s -o "$TMP/reply" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
		--data-binary @"$NODE_DIR/$req.pprof.gz" "$INGEST_URL$(cat "$NODE_DIR/$req.path")") || true
	expect_eq "push of $req" 200 "$status"
done
"$BRAID" store ls --json --data-dir "$LIVE" >"$TMP/live.json"
expect_eq "pushed profiles" 2 "$(jq '.sdk_profiles | length' "$TMP/live.json")"
expect_eq "req2 (wall) is CPU time, req3 (memory) is not" "wall true memory false" \
	"$(jq -r '[.sdk_profiles[] | "\(.profile_name) \(.cpu_time)"] | join(" ")' "$TMP/live.json")"
expect_eq "nothing queued yet" "false false" \
	"$(jq -r '[.sdk_profiles[].queued] | join(" ")' "$TMP/live.json")"
REQ2=$(jq '.sdk_profiles[0].id' "$TMP/live.json")
REQ3=$(jq '.sdk_profiles[1].id' "$TMP/live.json")
"$BRAID" store export "$REQ2" -o "$TMP/req2.out" --data-dir "$LIVE" ||
	fail "store export $REQ2 -o FILE failed"
cmp "$NODE_DIR/req2.pprof.gz" "$TMP/req2.out" || fail "export of req2 differs from the body posted"
"$BRAID" store export --data-dir "$LIVE" "$REQ3" -o - >"$TMP/req3.out" ||
	fail "store export $REQ3 -o - failed"
cmp "$NODE_DIR/req3.pprof.gz" "$TMP/req3.out" || fail "export of req3 differs from the body posted"
"$BRAID" store export "$REQ3" --data-dir "$LIVE" >"$TMP/req3.stdout" ||
	fail "store export $REQ3 (standard output) failed"
cmp "$NODE_DIR/req3.pprof.gz" "$TMP/req3.stdout" || fail "export to standard output differs"
stop_ingest

# ---- errors
run_fail() {
	local code=$1 text=$2 rc=0
	shift 2
	"$BRAID" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$code" ] || fail "braid $*: exit $rc, expected $code ($(cat "$TMP/err"))"
	expect_contains "braid $*" "$TMP/err" "$text"
}
run_fail 1 "no braid store at $TMP/none/braid.db (wrong --data-dir?)" store stats --data-dir "$TMP/none"
[ ! -e "$TMP/none" ] || fail "stats created a data directory"
run_fail 2 "unknown subcommand 'frob'" store frob
run_fail 2 "--json is an option of stats and ls" store check --json --data-dir "$D"
run_fail 2 "--limit takes a count, not 'x'" store ls --limit x
run_fail 2 "--service and --limit are options of ls" store stats --service x
run_fail 1 "braid: store export: no SDK profile 999" store export 999 -o "$TMP/none.out" --data-dir "$LIVE"
[ ! -e "$TMP/none.out" ] || fail "export of a missing profile wrote a file"
run_fail 2 "store export: no SDK profile ID given" store export --data-dir "$LIVE"
run_fail 2 "store export: more than one SDK profile ID given" store export 1 2 --data-dir "$LIVE"
run_fail 2 "store export: 'x1' is not an SDK profile ID" store export x1 --data-dir "$LIVE"
run_fail 2 "store ls: -o is an option of export" store ls -o f --data-dir "$LIVE"
if command -v script >/dev/null; then
	# standard output a terminal: a binary body is refused, nothing written
	script -qec "'$BRAID' store export $REQ2 --data-dir '$LIVE'" /dev/null >"$TMP/tty.out" 2>&1 &&
		fail "export of binary to a terminal succeeded"
	expect_contains "export to a terminal" "$TMP/tty.out" "refusing to write a binary pprof body to a terminal; use -o FILE"
fi
mkdir -p "$TMP/bad"
printf 'definitely not a database, just text' >"$TMP/bad/braid.db"
cp "$TMP/bad/braid.db" "$TMP/bad.orig"
run_fail 1 "$TMP/bad/braid.db" store stats --data-dir "$TMP/bad"
expect_contains "damaged store" "$TMP/err" "never recreates it"
run_fail 1 "never recreates it" store gc --data-dir "$TMP/bad"
expect_same_file "damaged store left alone" "$TMP/bad.orig" "$TMP/bad/braid.db"
"$BRAID" store --help >"$TMP/help.txt"
expect_contains "help" "$TMP/help.txt" "--data-dir DIR"
expect_contains "help" "$TMP/help.txt" "braid store export ID [-o FILE] [--data-dir DIR]"
finish
