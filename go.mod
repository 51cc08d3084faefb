// The Go side of braid's tests and benchmarks (never of braid itself, which
// is C): tests/tools/pprofdump, bench/go/genpprof and bench/go/decodebench,
// built against Google's pprof package. Build through scripts/go.sh, which
// keeps the module and build caches under ~/.cache/braid/go.
module braid.test

go 1.26.0

require github.com/google/pprof v0.0.0-20261105003125-4bf881d7fb0b

require (
	github.com/chzyer/readline v1.5.1 // indirect
	github.com/ianlancetaylor/demangle v0.0.0-20250417193237-f615e6bd150b // indirect
	golang.org/x/sys v0.32.0 // indirect
)

tool github.com/google/pprof
