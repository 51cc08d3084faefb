// Command pprofdump prints a canonical, diff-friendly dump of a pprof file.
// It is an independent decoder (built on github.com/google/pprof/profile)
// used by braid's tests to cross-check the C pprof decoder.
//
// Usage:
//
//	pprofdump FILE              header, totals and one "stack V1 V2 ... NAME" line per folded stack
//	pprofdump -folded TYPE FILE collapsed "NAME VALUE" lines for one sample type (TYPE or TYPE/UNIT)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pprofdump: "+format+"\n", args...)
	os.Exit(1)
}

var frameReplacer = strings.NewReplacer(";", "_", "\n", "_", "\r", "_")

// frameNames returns the frame names of one location, outermost caller first.
func frameNames(loc *profile.Location, out []string) []string {
	if len(loc.Line) == 0 {
		var name string
		if m := loc.Mapping; m != nil && m.File != "" {
			base := m.File
			if i := strings.LastIndexByte(base, '/'); i >= 0 {
				base = base[i+1:]
			}
			name = base + "+0x" + strconv.FormatUint(loc.Address-m.Start+m.Offset, 16)
		} else {
			name = "0x" + strconv.FormatUint(loc.Address, 16)
		}
		return append(out, frameReplacer.Replace(name))
	}
	for i := len(loc.Line) - 1; i >= 0; i-- {
		name := ""
		if f := loc.Line[i].Function; f != nil {
			name = f.Name
		}
		if name == "" {
			name = "??"
		}
		out = append(out, frameReplacer.Replace(name))
	}
	return out
}

// foldedName returns the root-to-leaf ";"-joined stack of a sample.
func foldedName(s *profile.Sample, cache map[*profile.Location][]string) string {
	var frames []string
	for i := len(s.Location) - 1; i >= 0; i-- {
		loc := s.Location[i]
		names, ok := cache[loc]
		if !ok {
			names = frameNames(loc, nil)
			cache[loc] = names
		}
		frames = append(frames, names...)
	}
	return strings.Join(frames, ";")
}

func main() {
	folded := flag.String("folded", "", "print collapsed stacks for sample type `TYPE` (type or type/unit)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: pprofdump [-folded TYPE] FILE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(1)
	}
	file := flag.Arg(0)

	f, err := os.Open(file)
	if err != nil {
		die("%v", err)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		die("%s: %v", file, err)
	}

	col := -1
	if *folded != "" {
		for i, st := range p.SampleType {
			if *folded == st.Type || *folded == st.Type+"/"+st.Unit {
				col = i
				break
			}
		}
		if col < 0 {
			var have []string
			for _, st := range p.SampleType {
				have = append(have, st.Type+"/"+st.Unit)
			}
			die("%s: no sample type matches %q (have: %s)", file, *folded, strings.Join(have, " "))
		}
	}

	nvals := len(p.SampleType)
	sums := make(map[string][]int64)
	totals := make([]int64, nvals)
	cache := make(map[*profile.Location][]string)
	for _, s := range p.Sample {
		name := foldedName(s, cache)
		acc, ok := sums[name]
		if !ok {
			acc = make([]int64, nvals)
			sums[name] = acc
		}
		for i, v := range s.Value {
			acc[i] += v
			totals[i] += v
		}
	}
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)

	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	if col >= 0 {
		for _, name := range names {
			if v := sums[name][col]; v != 0 {
				fmt.Fprintf(w, "%s %d\n", name, v)
			}
		}
	} else {
		types := make([]string, nvals)
		for i, st := range p.SampleType {
			types[i] = st.Type + "/" + st.Unit
		}
		period := "/"
		if p.PeriodType != nil {
			period = p.PeriodType.Type + "/" + p.PeriodType.Unit
		}
		fmt.Fprintf(w, "sample_types: %s\n", strings.Join(types, " "))
		fmt.Fprintf(w, "period_type: %s\n", period)
		fmt.Fprintf(w, "period: %d\n", p.Period)
		fmt.Fprintf(w, "time_nanos: %d\n", p.TimeNanos)
		fmt.Fprintf(w, "duration_nanos: %d\n", p.DurationNanos)
		fmt.Fprintf(w, "default_sample_type: %s\n", p.DefaultSampleType)
		fmt.Fprintf(w, "samples: %d\n", len(p.Sample))
		fmt.Fprintf(w, "totals:%s\n", joinInts(totals))
		for _, name := range names {
			fmt.Fprintf(w, "stack%s %s\n", joinInts(sums[name]), name)
		}
	}
	if err := w.Flush(); err != nil {
		die("writing output: %v", err)
	}
}

// joinInts renders values as " V1 V2 ..." (each preceded by a space).
func joinInts(vs []int64) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(v, 10))
	}
	return b.String()
}
