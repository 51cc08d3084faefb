#!/usr/bin/env bash
# braid merge on files, no root needed: a real `braid record` of a Node.js
# process (tests/data/node-record.pb.gz: JS, pbkdf2Sync, a sort, 3 s at 97
# Hz) spliced with the real Node SDK push of the fixtures. The merged
# profile: read by Go's pprof, cpu/nanoseconds with the recording's period,
# the recording's total to the nanosecond, stacks that read node's native
# prefix, the SDK's JS frames, then native and kernel frames; deterministic
# (the same bytes twice, and with the push given twice); folded output in
# samples; and every bad argument named.
. "$(dirname "$0")/lib.sh"

REC=$SRC_DIR/tests/data/node-record.pb.gz
SDK=$FIXTURES/node-sdk-0.6.4/req2.pprof.gz

# total NAME FILE: the cpu/nanoseconds total braid inspect prints
total() {
	"$BRAID" inspect "$2" | sed -n 's/^  cpu\/nanoseconds: .*(\([0-9]*\))$/\1/p'
}

# ---- the default run -------------------------------------------------------------
mkdir -p "$TMP/cwd"
(cd "$TMP/cwd" && "$BRAID" merge --ebpf "$REC" --sdk "$SDK" -v) 2>"$TMP/merge.err" ||
	fail "braid merge exited $?: $(cat "$TMP/merge.err")"
cat "$TMP/merge.err"
OUT=$TMP/cwd/braid-merged.pb.gz
[ -s "$OUT" ] || fail "braid merge wrote no braid-merged.pb.gz in the current directory"
grep -Eq '^braid: merge: pid [0-9]+ \(node\): [0-9]+ samples, [0-9]+ given SDK frames, [0-9]+ kept their eBPF frames$' \
	"$TMP/merge.err" || fail "the summary line is missing or malformed"
grep -Eq '^  guest +[0-9]+ +[0-9]+ +1338927913$' "$TMP/merge.err" ||
	fail "-v: the guest row does not show the push's 1338927913 ns of JS cpu"

# conservation: the merged total is the recording's, to the nanosecond
rec_total=$(total rec "$REC")
out_total=$(total out "$OUT")
[ -n "$rec_total" ] && [ "$rec_total" -gt 0 ] || fail "no total in the recording"
expect_eq "merged total (ns) = eBPF total" "$rec_total" "$out_total"

# Go's pprof reads it: type, period, and the SDK's functions are there
pprof -raw "$OUT" >"$TMP/out.raw" 2>"$TMP/out.rawerr" || fail "pprof -raw: $(cat "$TMP/out.rawerr")"
expect_contains "merged pprof sample type" "$TMP/out.raw" "cpu/nanoseconds"
expect_contains "merged pprof period" "$TMP/out.raw" "Period: 10309278"
expect_contains "an SDK function in the merged pprof" "$TMP/out.raw" "pbkdf2Sync"

# ---- the stacks, folded ------------------------------------------------------------
"$BRAID" merge --ebpf "$REC" --sdk "$SDK" -f folded --annotate -o "$TMP/m.folded" 2>/dev/null ||
	fail "braid merge -f folded exited $?"
# folded counts are samples: they add up to the total / period
samples=$(awk '{n += $NF} END {print n}' "$TMP/m.folded")
expect_eq "folded samples = total / period" "$((rec_total / 10309278))" "$samples"
# root to leaf: node's native prefix, the SDK's JS frames, native crypto
n=$(grep -c 'node::Start;.*v8::internal::(anonymous namespace)::Invoke;.*\./app2\.js:hashPassword:7;node:internal/crypto/pbkdf2:pbkdf2Sync:62;.*\(node::crypto::\|PBKDF2\|HMAC\|sha256\)' \
	"$TMP/m.folded" || true)
echo "# $n merged stacks read node's prefix, hashPassword, pbkdf2Sync, then native crypto"
[ "$n" -gt 0 ] || fail "no merged stack reads node::Start ... Invoke, the SDK's JS frames, then crypto"
# the interpreter region is gone from the main thread's stacks: no JIT frame
# under the JS frames, no Builtins_JSEntry
if grep -q 'app2\.js.*_\[j\]' "$TMP/m.folded"; then
	fail "a JIT frame is left leafward of the SDK's JS frames"
fi
if grep 'app2\.js' "$TMP/m.folded" | grep -q 'Builtins_JSEntry'; then
	fail "Builtins_JSEntry is left in a spliced stack"
fi
# other threads (libuv pool, V8 workers) sit under the SDK's pseudo-frame
grep -q '^:Non JS threads activity:0;' "$TMP/m.folded" ||
	fail "no stack under 'Non JS threads activity' (the other threads' CPU)"
grep -q ':Node.js:0' "$TMP/m.folded" && fail "the SDK's Node.js pseudo-root is in a merged stack"

# ---- deterministic ---------------------------------------------------------------------
"$BRAID" merge --ebpf "$REC" --sdk "$SDK" -o "$TMP/again.pb.gz" 2>/dev/null || fail "second run exited $?"
expect_same_file "the same inputs, twice" "$OUT" "$TMP/again.pb.gz"
# the push given twice doubles every weight: the same shares, the same bytes
"$BRAID" merge --ebpf "$REC" --sdk "$SDK" --sdk "$SDK" -o "$TMP/twice.pb.gz" 2>/dev/null ||
	fail "--sdk twice exited $?"
expect_same_file "--sdk given twice" "$OUT" "$TMP/twice.pb.gz"
# standard output, and the pid named
"$BRAID" merge --ebpf "$REC" --sdk "$SDK" --pid "$(sed -n 's/^braid: merge: pid \([0-9]*\) .*/\1/p' "$TMP/merge.err")" \
	-o - >"$TMP/stdout.pb.gz" 2>/dev/null || fail "-o - exited $?"
expect_same_file "-o - and --pid" "$OUT" "$TMP/stdout.pb.gz"

# ---- bad arguments: exit 2 (usage) or 1 (input), the reason named ------------------------
# expect_fail STATUS PATTERN ARGS...: braid merge ARGS exits STATUS, stderr matches PATTERN
expect_fail() {
	local want=$1 pattern=$2 status=0
	shift 2
	"$BRAID" merge "$@" -o "$TMP/bad.pb.gz" >/dev/null 2>"$TMP/bad.err" || status=$?
	expect_eq "exit status of braid merge $*" "$want" "$status"
	grep -q -- "$pattern" "$TMP/bad.err" || fail "braid merge $*: no '$pattern' in: $(cat "$TMP/bad.err")"
	[ -e "$TMP/bad.pb.gz" ] && fail "braid merge $* wrote its output anyway"
	return 0
}
expect_fail 2 "needs --ebpf FILE and --sdk FILE"
expect_fail 2 "needs --ebpf FILE and --sdk FILE" --ebpf "$REC"
expect_fail 2 "format takes pprof or folded, not 'svg'" --ebpf "$REC" --sdk "$SDK" -f svg
expect_fail 2 "runtime takes node, python, jvm or go, not 'ruby'" --ebpf "$REC" --sdk "$SDK" --runtime ruby
expect_fail 2 "pid takes a whole number" --ebpf "$REC" --sdk "$SDK" --pid abc
expect_fail 2 "unexpected argument 'extra'" --ebpf "$REC" --sdk "$SDK" extra
expect_fail 1 "has no samples of pid 1" --ebpf "$REC" --sdk "$SDK" --pid 1
expect_fail 1 "has no pid labels" --ebpf "$SDK" --sdk "$SDK"
expect_fail 1 "$TMP/missing.pb.gz" --ebpf "$REC" --sdk "$TMP/missing.pb.gz"
printf 'not a profile' >"$TMP/garbage.pb.gz"
expect_fail 1 "garbage.pb.gz" --ebpf "$TMP/garbage.pb.gz" --sdk "$SDK"
# a heap push has other sample types than a wall push
expect_fail 1 "has other sample types than" --ebpf "$REC" --sdk "$SDK" \
	--sdk "$FIXTURES/node-sdk-0.6.4/req3.pprof.gz"

finish
