#!/usr/bin/env bash
# The Pyroscope Java agent's jar, for the tests and benchmarks: its Maven
# coordinates and sha256 are in tests/e2e/java/agent.txt. Downloaded once
# from Maven Central into ~/.cache/braid/e2e-java (BRAID_JAVA_CACHE
# overrides) and checked; prints its path. Exits 1, saying why, when it
# can't be had or its sha256 differs. Needs curl.
#   JAVA_AGENT=$(bash tests/tools/java_agent.sh)
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)

pin=$(grep -v '^#' "$SRC_DIR/tests/e2e/java/agent.txt" | head -1)
read -r ga version sum <<<"$pin"
dir=${BRAID_JAVA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid/e2e-java}/$version
jar=$dir/${ga#*:}-$version.jar
if [ -f "$jar" ] && [ "$(sha256sum "$jar" | cut -d' ' -f1)" = "$sum" ]; then
	echo "$jar"
	exit 0
fi
mkdir -p "$dir"
url=https://repo1.maven.org/maven2/$(echo "${ga%%:*}" | tr . /)/${ga#*:}/$version/${ga#*:}-$version.jar
for attempt in 1 2 3; do
	if curl -fsSL --retry 2 -o "$jar.tmp" "$url"; then
		break
	fi
	[ "$attempt" -lt 3 ] && sleep $((attempt * 5))
done
got=$(sha256sum "$jar.tmp" 2>/dev/null | cut -d' ' -f1 || true)
if [ "$got" != "$sum" ]; then
	rm -f "$jar.tmp"
	echo "FAIL: $url: sha256 ${got:-(no file)}, expected $sum (tests/e2e/java/agent.txt)" >&2
	exit 1
fi
mv "$jar.tmp" "$jar"
echo "$jar"
