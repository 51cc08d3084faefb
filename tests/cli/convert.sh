# braid convert on the real fixtures, checked with Go's own parser
# (tests/tools/pprofdump): pprof -> folded matches Go's folding of the same
# file; pprof -> pprof keeps sample types, period, time, duration, totals
# and every stack; folded -> pprof -> folded keeps every stack's value.
. "$(dirname "$0")/lib.sh"
dump="$GOBIN_DIR/pprofdump"

for f in $(fixtures); do
	name=$(basename "$f" .pprof.gz)
	types=$("$dump" "$f" | sed -n 's/^sample_types: //p')

	# pprof -> model -> pprof: Go reads back the same profile
	"$BRAID" convert "$f" -o "$TMP/$name.out.pb.gz"
	"$dump" "$f" >"$TMP/$name.orig.dump"
	"$dump" "$TMP/$name.out.pb.gz" >"$TMP/$name.rt.dump"
	expect_same_file "$name: pprof round trip (Go's view)" "$TMP/$name.orig.dump" "$TMP/$name.rt.dump"
	# and uncompressed
	"$BRAID" convert --to pprof --no-gzip "$f" -o "$TMP/$name.raw.pb"
	if [ "$(head -c2 "$TMP/$name.raw.pb" | od -An -tx1 | tr -d ' ')" = "1f8b" ]; then
		fail "$name: --no-gzip wrote gzip"
	fi
	"$dump" "$TMP/$name.raw.pb" >"$TMP/$name.raw.dump"
	expect_same_file "$name: uncompressed pprof (Go's view)" "$TMP/$name.orig.dump" "$TMP/$name.raw.dump"

	for t in $types; do
		tn=${t%%/*}
		# pprof -> folded equals Go's folding
		"$BRAID" convert "$f" --to folded --sample-type "$t" -o "$TMP/$name.$tn.folded"
		"$dump" -folded "$t" "$f" >"$TMP/$name.$tn.go.folded"
		expect_same_file "$name: folded $t (go vs braid)" "$TMP/$name.$tn.go.folded" "$TMP/$name.$tn.folded"
		# folded -> pprof -> (Go) folded: every stack keeps its value
		"$BRAID" convert "$TMP/$name.$tn.folded" --sample-type "$t" -o "$TMP/$name.$tn.pb.gz"
		"$dump" -folded "$t" "$TMP/$name.$tn.pb.gz" >"$TMP/$name.$tn.back.folded"
		expect_same_file "$name: folded $t -> pprof -> folded" "$TMP/$name.$tn.folded" "$TMP/$name.$tn.back.folded"
		# totals, folded side
		sum_a=$(awk '{s+=$NF} END {printf "%.0f", s}' "$TMP/$name.$tn.go.folded")
		sum_b=$(awk '{s+=$NF} END {printf "%.0f", s}' "$TMP/$name.$tn.back.folded")
		expect_eq "$name: $t total after folded round trip" "$sum_a" "$sum_b"
	done
done

# Go's cpu profile, total per the acceptance figure
expect_contains "cpu totals" "$TMP/cpu.orig.dump" "totals: 200 2000000000"

# default --to is the other format; -o's extension decides otherwise
cpu="$FIXTURES/go-runtime-pprof/cpu.pprof.gz"
"$BRAID" convert "$cpu" >"$TMP/default.folded"
"$dump" -folded cpu "$cpu" >"$TMP/default.go.folded"
expect_same_file "default output: folded of the default sample type" "$TMP/default.go.folded" "$TMP/default.folded"
"$BRAID" convert "$TMP/default.folded" -o "$TMP/x.folded"
expect_same_file "folded -> .folded by extension" "$TMP/default.folded" "$TMP/x.folded"
"$BRAID" convert - --to pprof -o "$TMP/stdin.pb.gz" <"$TMP/default.folded"
"$dump" "$TMP/stdin.pb.gz" | grep -q '^sample_types: samples/count$' ||
	fail "folded from stdin: expected sample type samples/count"

# Pyroscope's lines format
printf 'a;b;c\na;b\na;b;c\n' | "$BRAID" convert - --from lines --to folded >"$TMP/lines.folded"
printf 'a;b 1\na;b;c 2\n' >"$TMP/lines.expected"
expect_same_file "lines format" "$TMP/lines.expected" "$TMP/lines.folded"
finish
