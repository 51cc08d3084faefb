# Builds the Go side of the tests and benchmarks from the repository's Go
# module (go.mod, go.sum: Google's pprof at a pinned version) through
# scripts/go.sh, which caches modules and builds under ~/.cache/braid/go:
# pprofdump, jfrref (Pyroscope's JFR converter: the reference for braid's
# JFR reader), genpprof, decodebench, jfrbench, e2e-go-app (cli_agent_go's app,
# with the Pyroscope Go SDK), and pprof itself (the tool that
# `go tool pprof` runs, at the module's version) for the tests' -top and -raw
# checks.
set -euo pipefail
: "${BUILD_DIR:?}" "${SRC_DIR:?}"
mkdir -p "$BUILD_DIR/go-bin"
for tool in tests/tools/pprofdump tests/tools/jfrref bench/go/genpprof bench/go/decodebench \
	bench/go/jfrbench; do
	bash "$SRC_DIR/scripts/go.sh" build -o "$BUILD_DIR/go-bin/$(basename "$tool")" "./$tool"
done
# the Go app of cli_agent_go, with the real Pyroscope Go SDK
bash "$SRC_DIR/scripts/go.sh" build -o "$BUILD_DIR/go-bin/e2e-go-app" ./tests/e2e/go/app
bash "$SRC_DIR/scripts/go.sh" build -o "$BUILD_DIR/go-bin/pprof" github.com/google/pprof
echo "built: $(ls "$BUILD_DIR/go-bin" | tr '\n' ' ')"
