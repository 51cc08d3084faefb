# Builds the Go side of the tests and benchmarks in GOPATH mode, against
# Debian's golang-github-google-pprof-dev (no module proxy is needed).
set -euo pipefail
: "${BUILD_DIR:?}" "${SRC_DIR:?}"
if ! command -v go >/dev/null; then
	echo "go not found: run scripts/deps.sh (Debian's golang-go)" >&2
	exit 1
fi
if [ ! -d /usr/share/gocode/src/github.com/google/pprof/profile ]; then
	echo "github.com/google/pprof not found: run scripts/deps.sh (golang-github-google-pprof-dev)" >&2
	exit 1
fi
export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$BUILD_DIR/go-cache" GOFLAGS=
mkdir -p "$BUILD_DIR/go-bin"
for tool in tests/tools/pprofdump bench/go/genpprof bench/go/decodebench; do
	go build -o "$BUILD_DIR/go-bin/$(basename "$tool")" "$SRC_DIR/$tool/main.go"
done
echo "built: $(ls "$BUILD_DIR/go-bin" | tr '\n' ' ')"
