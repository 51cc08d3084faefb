// The Go app of braid's end-to-end tests, with the real Grafana Pyroscope Go
// SDK (github.com/grafana/pyroscope-go, pinned in go.mod): two routes, each
// run under its own pyroscope.TagWrapper labels, so the SDK's CPU profile
// carries route=/login on one and route=/page on the other.
//
//   - /login (writeAudit): syscall-heavy, small pwrite(2)s to a file, so eBPF
//     sees the kernel's write under the Go function;
//   - /page (renderPage): pure Go (sorting), no system calls.
//
// Environment: PYROSCOPE_SERVER_ADDRESS (default http://localhost:4040),
// PYROSCOPE_APPLICATION_NAME (default braid-e2e-go), RUN_SECONDS (default 20),
// UPLOAD_SECONDS (the SDK's upload rate, default 5), WORK_DIR (where the
// audit file goes, default the temporary directory).
// It prints "ready <pid>" when the SDK has started, and "done" at the end.
package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/grafana/pyroscope-go"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envSeconds(name string, def int) time.Duration {
	n, err := strconv.Atoi(envOr(name, strconv.Itoa(def)))
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "%s: not a positive number of seconds\n", name)
		os.Exit(2)
	}
	return time.Duration(n) * time.Second
}

// writeAudit writes 64-byte records one pwrite(2) at a time: the time is in
// the kernel, below this function.
//
//go:noinline
func writeAudit(f *os.File, until time.Time) {
	rec := make([]byte, 64)
	for i := 0; time.Now().Before(until); i++ {
		rec[0] = byte(i)
		if _, err := f.WriteAt(rec, int64(i%1024)*64); err != nil {
			fmt.Fprintf(os.Stderr, "write: %v\n", err)
			os.Exit(1)
		}
	}
}

// renderPage sorts: Go code only.
//
//go:noinline
func renderPage(r *rand.Rand, until time.Time) int {
	n := 0
	buf := make([]int, 4096)
	for time.Now().Before(until) {
		for i := range buf {
			buf[i] = r.Int()
		}
		sort.Ints(buf)
		n += buf[0] & 1
	}
	return n
}

func main() {
	name := envOr("PYROSCOPE_APPLICATION_NAME", "braid-e2e-go")
	run := envSeconds("RUN_SECONDS", 20)
	upload := envSeconds("UPLOAD_SECONDS", 5)
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: name,
		ServerAddress:   envOr("PYROSCOPE_SERVER_ADDRESS", "http://localhost:4040"),
		Tags:            map[string]string{"version": "1.0.0"},
		UploadRate:      upload,
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU,
			pyroscope.ProfileAllocObjects,
			pyroscope.ProfileAllocSpace,
			pyroscope.ProfileInuseObjects,
			pyroscope.ProfileInuseSpace,
			pyroscope.ProfileGoroutines,
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pyroscope.Start: %v\n", err)
		os.Exit(1)
	}
	f, err := os.CreateTemp(envOr("WORK_DIR", os.TempDir()), "braid-e2e-go-audit-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "audit file: %v\n", err)
		os.Exit(1)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	fmt.Printf("ready %d\n", os.Getpid())
	end := time.Now().Add(run)
	r := rand.New(rand.NewSource(1))
	sink := 0
	// one route after the other, 100 ms each, on the main goroutine
	for time.Now().Before(end) {
		pyroscope.TagWrapper(context.Background(), pyroscope.Labels("route", "/login"),
			func(context.Context) { writeAudit(f, time.Now().Add(100*time.Millisecond)) })
		pyroscope.TagWrapper(context.Background(), pyroscope.Labels("route", "/page"),
			func(context.Context) { sink += renderPage(r, time.Now().Add(100*time.Millisecond)) })
	}
	f.Close()
	// the last upload: Stop flushes what the profilers hold
	if err := p.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pyroscope.Stop: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("done %d\n", sink&1)
}
