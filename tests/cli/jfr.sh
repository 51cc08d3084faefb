# braid's JFR reader against Pyroscope's own converter (github.com/grafana/
# jfr-parser's pprof.ParseJFR, the version Pyroscope v2.2.1 runs, through
# tests/tools/jfrref) on the real recordings in tests/data/jfr: for every
# recording, every profile the converter makes is one braid makes too, with
# the same sample types, period, time, and the same stacks (frame names and
# line numbers), labels and values; and braid makes no profile it does not.
. "$(dirname "$0")/lib.sh"

jfrref() {
	[ -x "$GOBIN_DIR/jfrref" ] || {
		echo "FAIL: $GOBIN_DIR/jfrref is not built: run tests/cli/go-tools.sh (ctest -R go_tools)" >&2
		return 127
	}
	"$GOBIN_DIR/jfrref" "$@"
}

data=$SRC_DIR/tests/data/jfr
n_profiles=0
for rec in "$data"/*.jfr.gz; do
	name=$(basename "$rec" .jfr.gz)
	labels=()
	[ -f "$data/$name.labels.gz" ] && labels=(-labels "$data/$name.labels.gz")
	braid_labels=()
	[ -f "$data/$name.labels.gz" ] && braid_labels=(--jfr-labels "$data/$name.labels.gz")
	if ! jfrref names -rate 100 "${labels[@]}" "$rec" >"$TMP/$name.names" ||
		[ ! -s "$TMP/$name.names" ]; then
		fail "$name: the reference converter made no profile"
		continue
	fi
	# what braid says the recording holds
	"$BRAID" inspect --top 0 "${braid_labels[@]}" "$rec" >"$TMP/$name.inspect"
	got=$(sed -n 's/^JFR profiles: //p' "$TMP/$name.inspect" | tr -d ' ' | tr ',' '\n' | sort)
	expect_eq "$name: the profiles braid makes" "$(sort "$TMP/$name.names")" "$got"
	pairs=()
	while read -r p; do
		out="$TMP/$name.$(echo "$p" | tr ':' '_').pb.gz"
		"$BRAID" convert --jfr-profile "$p" --sample-rate 100 "${braid_labels[@]}" \
			"$rec" -o "$out"
		pairs+=("$p=$out")
		n_profiles=$((n_profiles + 1))
	done <"$TMP/$name.names"
	jfrref compare -all -rate 100 "${labels[@]}" "$rec" "${pairs[@]}" >"$TMP/$name.compare" 2>&1 ||
		fail "$name: braid differs from Pyroscope's converter: $(head -30 "$TMP/$name.compare")"
	echo "$name: $(tr '\n' ' ' <"$TMP/$name.compare")"
done
[ "$n_profiles" -ge 15 ] || fail "only $n_profiles profiles compared"

# Without the labels part, the same recording's samples carry no context
# labels in either converter.
jfrref compare -all -rate 100 "$data/labels.jfr.gz" \
	"process_cpu:cpu=$("$BRAID" convert --jfr-profile process_cpu:cpu "$data/labels.jfr.gz" \
		-o "$TMP/nolabels.pb.gz" && echo "$TMP/nolabels.pb.gz")" \
	"memory:alloc_in_new_tlab_objects=$("$BRAID" convert --jfr-profile memory:alloc_in_new_tlab_objects \
		"$data/labels.jfr.gz" -o "$TMP/nolabels2.pb.gz" && echo "$TMP/nolabels2.pb.gz")" \
	"mutex:contentions=$("$BRAID" convert --jfr-profile mutex "$data/labels.jfr.gz" \
		-o "$TMP/nolabels3.pb.gz" && echo "$TMP/nolabels3.pb.gz")" \
	"block:contentions=$("$BRAID" convert --jfr-profile block "$data/labels.jfr.gz" \
		-o "$TMP/nolabels4.pb.gz" && echo "$TMP/nolabels4.pb.gz")" >"$TMP/nolabels.compare" 2>&1 ||
	fail "labels.jfr.gz without its labels part: $(head -20 "$TMP/nolabels.compare")"

# A profile the recording lacks is an error naming the ones it has.
if "$BRAID" convert --jfr-profile wall "$data/cpu.jfr.gz" -o "$TMP/x.pb.gz" 2>"$TMP/err.txt"; then
	fail "a profile the recording lacks was converted"
fi
expect_contains "missing profile" "$TMP/err.txt" "has no profile 'wall' (it has: process_cpu:cpu)"
# A truncated recording is refused with the offset.
zcat "$data/cpu.jfr.gz" | head -c 20000 >"$TMP/cut.jfr"
if "$BRAID" inspect --from jfr "$TMP/cut.jfr" >/dev/null 2>"$TMP/err.txt"; then
	fail "a truncated recording was read"
fi
expect_contains "truncated recording" "$TMP/err.txt" "JFR: chunk at offset 0 says it has 24550 bytes, 20000 are left"
echo "$n_profiles profiles of $(ls "$data"/*.jfr.gz | wc -l) recordings compared with Pyroscope's converter's"

# With a real Pyroscope at hand (PYROSCOPE_BIN): each recording pushed to
# it as the Java agent pushes (multipart /ingest, format=jfr), and every
# profile type read back (SelectMergeProfile) holds the same folded stacks
# and totals as braid's profile of that type.
maybe_pyroscope "$TMP/pyroscope"
if [ -n "$PYRO" ]; then
	now=$(date +%s)
	for rec in "$data"/*.jfr.gz; do
		name=$(basename "$rec" .jfr.gz)
		svc=braid-jfr-$name
		form=(-F "jfr=@$rec;filename=jfr")
		[ -f "$data/$name.labels.gz" ] && form+=(-F "labels=@$data/$name.labels.gz;filename=labels")
		code=$(curl -s -o "$TMP/$name.push" -w '%{http_code}' "${form[@]}" \
			"$PYRO_URL/ingest?name=$svc&units=samples&aggregationType=sum&from=$((now - 2))&until=$now&spyName=javaspy&sampleRate=100&format=jfr")
		expect_eq "$name: Pyroscope's answer to the push" 200 "$code"
	done
	sleep 2
	n_read=0
	for rec in "$data"/*.jfr.gz; do
		name=$(basename "$rec" .jfr.gz)
		braid_labels=()
		[ -f "$data/$name.labels.gz" ] && braid_labels=(--jfr-labels "$data/$name.labels.gz")
		while read -r p; do
			case $p in
			process_cpu:cpu) type=process_cpu:cpu:nanoseconds:cpu:nanoseconds ;;
			wall:wall) type=wall:wall:nanoseconds:wall:nanoseconds ;;
			mutex:contentions) type=mutex:contentions:count:mutex:count ;;
			block:contentions) type=block:contentions:count:block:count ;;
			memory:alloc_in_new_tlab_objects) type=memory:alloc_in_new_tlab_objects:count:space:bytes ;;
			memory:alloc_outside_tlab_objects) type=memory:alloc_outside_tlab_objects:count:space:bytes ;;
			*) continue ;;
			esac
			"$BRAID" convert --jfr-profile "$p" "${braid_labels[@]}" --to folded \
				--sample-type "$(echo "$type" | cut -d: -f2)" "$rec" |
				awk '{v=$NF; $NF=""; s[$0]+=v} END {for (k in s) print k s[k]}' | sort >"$TMP/$name.$p.braid"
			for _ in $(seq 1 20); do
				bash "$SRC_DIR/scripts/pyroscope-top.sh" "$PYRO_URL" "{service_name=\"braid-jfr-$name\"}" \
					--type "$type" --folded 2>/dev/null |
					awk '{v=$NF; $NF=""; s[$0]+=v} END {for (k in s) print k s[k]}' | sort >"$TMP/$name.$p.pyro" || true
				[ -s "$TMP/$name.$p.pyro" ] && break
				sleep 1
			done
			expect_same_file "$name $p: folded stacks, braid vs what Pyroscope stored" \
				"$TMP/$name.$p.braid" "$TMP/$name.$p.pyro"
			n_read=$((n_read + 1))
		done <"$TMP/$name.names"
	done
	echo "$n_read profiles read back from Pyroscope, each equal to braid's"
fi
finish
