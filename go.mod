// The Go side of braid's tests and benchmarks (never of braid itself, which
// is C): tests/tools/pprofdump, bench/go/genpprof and bench/go/decodebench,
// built against Google's pprof package; tests/tools/jfrref and
// bench/go/jfrbench, against Grafana's JFR converter (jfr-parser, the one
// Pyroscope runs); tests/e2e/go/app, with the real Pyroscope Go SDK
// (pyroscope-go). Build through scripts/go.sh, which keeps the module and
// build caches under ~/.cache/braid/go.
module braid.test

go 1.26.0

require (
	github.com/google/pprof v0.0.0-20261105003125-4bf881d7fb0b
	github.com/grafana/jfr-parser v0.18.0
)

require (
	github.com/chzyer/readline v1.5.1 // indirect
	github.com/google/gnostic v0.7.1 // indirect
	github.com/google/gnostic-models v0.7.0 // indirect
	github.com/grafana/pyroscope-go v1.5.0 // indirect
	github.com/grafana/pyroscope-go/godeltaprof v0.1.12 // indirect
	github.com/grafana/pyroscope/api v1.5.0 // indirect
	github.com/ianlancetaylor/demangle v0.0.0-20250417193237-f615e6bd150b // indirect
	github.com/klauspost/compress v1.20.2 // indirect
	github.com/planetscale/vtprotobuf v0.6.1-0.20250313105119-ba97887b0a25 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
	golang.org/x/sys v0.42.0 // indirect
	golang.org/x/text v0.37.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

tool github.com/google/pprof
