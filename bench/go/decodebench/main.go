// Command decodebench measures how fast Go's github.com/google/pprof/profile
// parses pprof files; it is the speed peer for braid's C decoder benchmark.
//
// Usage: decodebench [-n ITERS] [-min-seconds 1.0] FILE...
//
// Prints one line per file:
//
//	peer=go file=BASENAME iters=N seconds=S bytes=B raw_bytes=R samples=K mb_s=X samples_s=Y
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

	"github.com/google/pprof/profile"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "decodebench: "+format+"\n", args...)
	os.Exit(1)
}

func rawSize(data []byte) (int64, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return int64(len(data)), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, zr)
}

func main() {
	iters := flag.Int("n", 1, "minimum number of timed iterations")
	minSeconds := flag.Float64("min-seconds", 1.0, "minimum timed duration per file, in seconds")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: decodebench [-n ITERS] [-min-seconds 1.0] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *iters < 1 || *minSeconds < 0 {
		flag.Usage()
		os.Exit(1)
	}

	for _, file := range flag.Args() {
		data, err := os.ReadFile(file)
		if err != nil {
			die("%v", err)
		}
		raw, err := rawSize(data)
		if err != nil {
			die("%s: decompressing: %v", file, err)
		}
		// Warm-up parse, which also gives the sample count.
		p, err := profile.Parse(bytes.NewReader(data))
		if err != nil {
			die("%s: %v", file, err)
		}
		samples := len(p.Sample)
		p = nil
		runtime.GC()

		min := time.Duration(*minSeconds * float64(time.Second))
		n := 0
		start := time.Now()
		var elapsed time.Duration
		for n < *iters || elapsed < min {
			if _, err := profile.Parse(bytes.NewReader(data)); err != nil {
				die("%s: %v", file, err)
			}
			n++
			elapsed = time.Since(start)
		}
		secs := elapsed.Seconds()
		fmt.Printf("peer=go file=%s iters=%d seconds=%.6f bytes=%d raw_bytes=%d samples=%d mb_s=%.2f samples_s=%d\n",
			filepath.Base(file), n, secs, len(data), raw, samples,
			float64(raw)*float64(n)/secs/1e6, int64(float64(samples)*float64(n)/secs))
	}
}
