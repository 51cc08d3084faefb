// Command jfrbench measures how fast Grafana's JFR converter
// (github.com/grafana/jfr-parser's pprof.ParseJFR, the version go.mod pins,
// which Pyroscope runs on every JFR push) turns JFR recordings into pprof
// profiles; it is the speed peer for braid's C JFR reader.
//
// Usage: jfrbench [-rate 100] [-labels FILE] [-seconds 3] FILE...
//
// Each FILE (gzipped or not, like -labels's) is inflated in memory first, not
// timed, then converted over and over for at least -seconds, as Pyroscope
// does: with a LabelsSnapshot (-labels's, or an empty one), the labels
// unmarshalled once. Prints one line per file:
//
//	peer=go file=BASENAME iters=I seconds=S bytes=B ns_per_op=X mb_s=Y
//
// B is the inflated JFR's size and MB 1e6 of those bytes (the fields
// bench_jfr_decode prints, for bench/jfr.sh).
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	jfrpprof "github.com/grafana/jfr-parser/pprof"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "jfrbench: "+format+"\n", args...)
	os.Exit(1)
}

// readInflated returns FILE's bytes, gunzipped when they start with gzip's
// magic.
func readInflated(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		die("%s: %v", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		die("%s: gunzip: %v", path, err)
	}
	return out
}

func main() {
	rate := flag.Int64("rate", 100, "the push's sampleRate")
	labelsFile := flag.String("labels", "", "the push's labels field (LabelsSnapshot protobuf), for every FILE")
	seconds := flag.Float64("seconds", 3, "minimum timed duration per file, in seconds")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: jfrbench [-rate 100] [-labels FILE] [-seconds 3] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *seconds < 0 || *rate < 0 {
		flag.Usage()
		os.Exit(1)
	}

	labels := new(jfrpprof.LabelsSnapshot)
	if *labelsFile != "" {
		if err := labels.UnmarshalVT(readInflated(*labelsFile)); err != nil {
			die("%s: %v", *labelsFile, err)
		}
	}
	// Pyroscope's times come from the push's from and until; any fixed pair
	// costs the same.
	pi := &jfrpprof.ParseInput{
		StartTime:  time.Unix(0, 0),
		EndTime:    time.Unix(10, 0),
		SampleRate: *rate,
	}

	for _, file := range flag.Args() {
		body := readInflated(file)
		// Warm-up conversion, which also checks that the file converts.
		if _, err := jfrpprof.ParseJFR(body, pi, labels); err != nil {
			die("%s: %v", file, err)
		}
		runtime.GC()

		min := time.Duration(*seconds * float64(time.Second))
		n := 0
		start := time.Now()
		var elapsed time.Duration
		for n < 1 || elapsed < min {
			if _, err := jfrpprof.ParseJFR(body, pi, labels); err != nil {
				die("%s: %v", file, err)
			}
			n++
			elapsed = time.Since(start)
		}
		nsPerOp := float64(elapsed.Nanoseconds()) / float64(n)
		fmt.Printf("peer=go file=%s iters=%d seconds=%.6f bytes=%d ns_per_op=%.0f mb_s=%.2f\n",
			filepath.Base(file), n, elapsed.Seconds(), len(body), nsPerOp,
			float64(len(body))/nsPerOp*1e3)
	}
}
