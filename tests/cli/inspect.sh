# braid inspect against `go tool pprof -top` on the real fixtures: the same
# functions in the same order with the same flat and cumulative shares, and
# the same total.
. "$(dirname "$0")/lib.sh"

cpu="$FIXTURES/go-runtime-pprof/cpu.pprof.gz"

# The acceptance figure: crypto/sha256.block is the top flat function at 72%.
"$BRAID" inspect "$cpu" >"$TMP/inspect.txt"
top=$(sed -n '/flat%/{n;p;q}' "$TMP/inspect.txt" | awk '{print $NF, $2}')
expect_eq "top flat function of cpu.pprof.gz" "crypto/sha256.block 72.00%" "$top"
braid_total=$(sed -n 's/.* of \(.*\) total$/\1/p' "$TMP/inspect.txt")
go_total=$(pprof -top "$cpu" 2>/dev/null | sed -n 's/.*% of \(.*\) total$/\1/p')
expect_eq "total of cpu.pprof.gz (braid vs pprof -top)" "$go_total" "$braid_total"
expect_contains "summary" "$TMP/inspect.txt" "Sample types: samples/count, cpu/nanoseconds (default)"
expect_contains "summary" "$TMP/inspect.txt" "Period: 10000000 cpu/nanoseconds (100 Hz)"
expect_contains "summary" "$TMP/inspect.txt" "Time: 2026-11-21T05:28:14.424530868Z"
expect_contains "summary" "$TMP/inspect.txt" "samples/count: 200"
expect_contains "summary" "$TMP/inspect.txt" "cpu/nanoseconds: 2s (2000000000)"

# Every fixture: name, flat%, cum% of each row as Go prints them (Go marks
# inlined copies "(inline)"; braid counts a function once).
for f in $(fixtures); do
	name=$(basename "$f")
	"$BRAID" inspect --top 0 "$f" | sed -n '/flat%/,$p' | sed 1d |
		awk '{n=$6; for (i=7;i<=NF;i++) n=n" "$i; print n "|" $2 "|" $5}' >"$TMP/$name.braid"
	pprof -top -nodecount=100000 "$f" 2>/dev/null | sed -n '1,/flat%/d;p' |
		sed 's/ (inline)$//' |
		awk '{n=$6; for (i=7;i<=NF;i++) n=n" "$i; print n "|" $2 "|" $5}' >"$TMP/$name.go"
	[ -s "$TMP/$name.go" ] || fail "$name: pprof -top printed no table"
	expect_same_file "$name: top table (function|flat%|cum%), go vs braid" "$TMP/$name.go" "$TMP/$name.braid"
done

# --sample-type picks another column; an unknown one is an error
"$BRAID" inspect --sample-type samples "$cpu" >"$TMP/samples.txt"
expect_contains "--sample-type samples" "$TMP/samples.txt" "by flat samples/count, of 200 total"
if "$BRAID" inspect --sample-type nope "$cpu" >/dev/null 2>"$TMP/err.txt"; then
	fail "unknown sample type accepted"
fi
expect_contains "unknown sample type" "$TMP/err.txt" "no sample type 'nope'"
finish
