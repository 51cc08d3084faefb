# What a user sees on bad input or bad usage: a message naming the problem
# and the file, exit 1 (bad input) or 2 (bad usage), and never a crash.
. "$(dirname "$0")/lib.sh"

# run_fail CODE TEXT ARGS...: braid ARGS exits CODE and says TEXT on stderr
run_fail() {
	local code=$1 text=$2 rc=0
	shift 2
	"$BRAID" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	if [ "$rc" -ne "$code" ]; then
		fail "braid $*: exit $rc, expected $code ($(cat "$TMP/err"))"
	fi
	expect_contains "braid $*" "$TMP/err" "$text"
}

run_fail 2 "unknown command 'frobnicate'" frobnicate
run_fail 2 "no input file given" convert
run_fail 2 "--to takes pprof or folded, not 'svg'" convert --to svg x
run_fail 2 "no file given" inspect
run_fail 2 "--top takes a number >= 0, not 'x'" inspect --top x f
run_fail 1 "cannot open /nonexistent.pb.gz: No such file or directory" inspect /nonexistent.pb.gz

printf 'main;fib 3\nmain;sort\n' >"$TMP/bad.folded"
run_fail 1 "$TMP/bad.folded: line 2: no count" convert "$TMP/bad.folded" -o "$TMP/o.pb.gz"
[ ! -e "$TMP/o.pb.gz" ] || fail "an output file was written for bad input"

# a pprof cut short, and gzip garbage
head -c 2000 "$FIXTURES/go-runtime-pprof/cpu.pprof.gz" >"$TMP/cut.pb.gz"
run_fail 1 "truncated gzip data" inspect "$TMP/cut.pb.gz"
gzip -dc "$FIXTURES/go-runtime-pprof/cpu.pprof.gz" | head -c 5000 >"$TMP/cut.pb"
run_fail 1 "malformed pprof: truncated message" inspect --from pprof "$TMP/cut.pb"
printf '\037\213\010\000\000\000\000\000\000\003this is not deflate data' >"$TMP/garbage.gz"
run_fail 1 "corrupt gzip data" inspect "$TMP/garbage.gz"

# a gzip bomb: 100 MiB of zeros, refused at the 64 MiB cap
head -c $((100 << 20)) /dev/zero | gzip -1 >"$TMP/bomb.pb.gz"
run_fail 1 "inflates to more than 67108864 bytes" inspect "$TMP/bomb.pb.gz"

# help for every command, and the version
for c in "" convert inspect; do
	"$BRAID" $c --help >"$TMP/help" || fail "braid $c --help failed"
	expect_contains "braid $c --help" "$TMP/help" "Usage: braid"
done
"$BRAID" --version | grep -q '^braid [0-9]' || fail "braid --version"
finish
