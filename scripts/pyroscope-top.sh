#!/usr/bin/env bash
# What a Grafana Pyroscope stored, read back through its query API
# (SelectMergeProfile, as Connect JSON): the top functions of a merged
# profile, as `braid inspect` prints them, or its folded stacks.
#   bash scripts/pyroscope-top.sh URL [SELECTOR] [--type T] [--minutes N] [--top N] [--folded]
#     URL       the Pyroscope, e.g. http://127.0.0.1:4041
#     SELECTOR  its label selector (default '{braid_view="merged"}')
#     --type    the profile type (default process_cpu:cpu:nanoseconds:cpu:nanoseconds)
#     --minutes the last N minutes (default 10; Pyroscope allows at most a day)
#     --top     rows of the table (default 20)
#     --folded  print "root;...;leaf VALUE" lines instead of the table
# Needs curl and jq; the table needs braid ($BRAID, else build/braid, else on PATH).
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	echo "usage: bash scripts/pyroscope-top.sh URL [SELECTOR] [--type T] [--minutes N] [--top N] [--folded]" >&2
	exit 2
}
url= selector='{braid_view="merged"}' type=process_cpu:cpu:nanoseconds:cpu:nanoseconds
minutes=10 top=20 folded=0 positional=0
while [ $# -gt 0 ]; do
	case "$1" in
	--type) [ $# -ge 2 ] || usage; type=$2; shift ;;
	--minutes) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || usage; minutes=$2; shift ;;
	--top) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage; top=$2; shift ;;
	--folded) folded=1 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*)
		positional=$((positional + 1))
		case $positional in 1) url=${1%/} ;; 2) selector=$1 ;; *) usage ;; esac
		;;
	esac
	shift
done
[ -n "$url" ] || usage
for tool in curl jq; do
	command -v "$tool" >/dev/null || { echo "braid: $tool is not installed" >&2; exit 1; }
done

now=$(date +%s)
request=$(jq -cn --arg t "$type" --arg s "$selector" --argjson start $(((now - minutes * 60) * 1000)) \
	--argjson until $((now * 1000)) '{profileTypeID: $t, labelSelector: $s, "start": $start, "end": $until}')
reply=$(mktemp)
trap 'rm -f "$reply"' EXIT
code=$(curl -sS -o "$reply" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$request" \
	"$url/querier.v1.QuerierService/SelectMergeProfile") || {
	echo "braid: $url did not answer" >&2
	exit 1
}
if [ "$code" != 200 ]; then
	echo "braid: Pyroscope answered $code: $(jq -r '.message // empty' "$reply" 2>/dev/null || head -c 300 "$reply")" >&2
	exit 1
fi

# The profile in protobuf's JSON form (int64s as strings, empty fields left
# out) as folded stacks of its first sample type; a location without lines
# (an address only) reads "[address N]".
to_folded() {
	jq -r '
	.stringTable as $s
	| (reduce (.function // [])[] as $f ({}; .[$f.id] = $s[($f.name // "0") | tonumber])) as $fn
	| (reduce (.location // [])[] as $l ({}; .[$l.id] =
		(if ($l.line // []) == [] then ["[address \($l.address // "0")]"]
		 else [($l.line // [])[] | $fn[.functionId // "0"] // "?"] end))) as $loc
	| (.sample // [])[]
	| ([(.locationId // []) | reverse | .[] | ($loc[.] // ["?"]) | reverse | .[]] | join(";"))
	  + " " + ((.value // ["0"])[0])' "$reply"
}

if [ "$folded" -eq 1 ]; then
	to_folded
	exit 0
fi
if [ "$(jq '(.sample // []) | length' "$reply")" -eq 0 ]; then
	echo "braid: Pyroscope has no $type profile for $selector in the last $minutes minutes" >&2
	exit 1
fi
braid=${BRAID:-}
[ -n "$braid" ] || { [ -x "$SRC_DIR/build/braid" ] && braid=$SRC_DIR/build/braid; } || true
[ -n "$braid" ] || braid=$(command -v braid || true)
[ -n "$braid" ] || { echo "braid: no braid binary: build it (bash scripts/build.sh) or set BRAID" >&2; exit 1; }
sample_type=$(jq -r '.stringTable as $s | .sampleType[0] | "\($s[(.type // "0") | tonumber])/\($s[(.unit // "0") | tonumber])"' "$reply")
to_folded | "$braid" convert - --from folded --to pprof --sample-type "$sample_type" -o - |
	"$braid" inspect - --top "$top"
