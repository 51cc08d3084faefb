// Command jfrref is the reference for braid's JFR reader: it converts a JFR
// recording the way Grafana Pyroscope does (github.com/grafana/jfr-parser's
// pprof.ParseJFR, the version go.mod pins, called as Pyroscope v2.2.1's
// pkg/og/convert/jfr does: always with a LabelsSnapshot, empty when the push
// has no labels field) and prints or compares the result in a canonical form.
//
// Usage:
//
//	jfrref dump [flags] FILE                       every profile, canonical text
//	jfrref names [flags] FILE                      the NAMEs of the profiles, one a line
//	jfrref compare [flags] [-all] FILE NAME=PPROF...
//	                                               braid's pprof files against the reference
//	jfrref pprof [NAME=]PPROF...                   canonical text of pprof files (braid's)
//
// Flags (dump, names, compare):
//
//	-rate N          the push's sampleRate (100): CPU and wall values are
//	                 events x 1e9/N ns
//	-from S -until S the push's from and until (Unix seconds): time_nanos and
//	                 duration_nanos; 0 and 0 (the default) give 0 and 0
//	-labels FILE     the push's labels field (LabelsSnapshot protobuf)
//	-query FILE      the push's query string (tests/data/jfr/NAME.query): its
//	                 sampleRate, from and until, unless given as flags
//	-write-ref DIR   also writes each reference profile, as Pyroscope gets
//	                 it, to DIR/NAME.pb.gz
//
// FILE and the labels file may be gzipped (Pyroscope inflates both). A
// profile's NAME is its metric and first sample type, e.g. process_cpu:cpu,
// wall:wall, memory:alloc_in_new_tlab_objects,
// memory:alloc_outside_tlab_objects, mutex:contentions (JavaMonitorEnter),
// block:contentions (ThreadPark), memory:live, memory:alloc_sample_objects,
// memory:malloc_objects.
//
// The canonical text of a profile is a header
//
//	# NAME types=T1/U1,T2/U2 period=PT/PU:P time=T duration=D jfr_event=E
//
// then one line per distinct (labels, stack), sorted bytewise,
//
//	{K=V,K2=V2} ROOT;...;LEAF V1,V2
//
// labels sorted by key, each frame its function's name and ":LINE" (the
// location's line; every line of a location, the inlined ones first), values
// summed over samples with the same labels and stack; and a last line
// "total V1,V2". compare checks, for each NAME given, the sample types (in
// order), the period type and period, time_nanos, duration_nanos and that
// map; it prints "NAME: N stacks, total V1,V2, equal" or the first 20
// differences. It exits 1 on a difference, a NAME the reference lacks, a
// pprof file it cannot read, or (with -all) a reference profile whose NAME was
// not given; 2 on a usage error or a JFR file the reference cannot convert.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	jfrpprof "github.com/grafana/jfr-parser/pprof"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "jfrref: "+format+"\n", args...)
	os.Exit(2)
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: jfrref dump [flags] FILE
       jfrref names [flags] FILE
       jfrref compare [flags] [-all] FILE NAME=PPROF...
       jfrref pprof [NAME=]PPROF...
flags: -rate N (100) -from S -until S (0) -labels FILE -query FILE -write-ref DIR
`)
	os.Exit(2)
}

// inflate returns data gunzipped when it starts with gzip's magic, as
// Pyroscope's decompress does (all members of a multi-member stream).
func inflate(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

func readInflated(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	data, err = inflate(data)
	if err != nil {
		die("%s: gunzip: %v", path, err)
	}
	return data
}

// options are the push's parameters ParseJFR takes.
type options struct {
	rate, from, until int64
	labels            string
	query             string
	writeRef          string
	all               bool
}

func newFlagSet(name string, o *options, compare bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	fs.Usage = usage
	fs.Int64Var(&o.rate, "rate", 100, "the push's sampleRate")
	fs.Int64Var(&o.from, "from", 0, "the push's from, Unix seconds")
	fs.Int64Var(&o.until, "until", 0, "the push's until, Unix seconds")
	fs.StringVar(&o.labels, "labels", "", "the push's labels field")
	fs.StringVar(&o.query, "query", "", "the push's query string (sampleRate, from, until)")
	fs.StringVar(&o.writeRef, "write-ref", "", "write each reference profile to `DIR`/NAME.pb.gz")
	if compare {
		fs.BoolVar(&o.all, "all", false, "fail if the reference has a profile not given")
	}
	return fs
}

// parseArgs parses flags wherever they are among the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) []string {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			usage()
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// applyQuery takes sampleRate, from and until from -query's file for those
// not set as flags.
func applyQuery(fs *flag.FlagSet, o *options) {
	if o.query == "" {
		return
	}
	data, err := os.ReadFile(o.query)
	if err != nil {
		die("%v", err)
	}
	q, err := url.ParseQuery(strings.TrimSpace(string(data)))
	if err != nil {
		die("%s: %v", o.query, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, p := range []struct {
		flag, key string
		dst       *int64
	}{{"rate", "sampleRate", &o.rate}, {"from", "from", &o.from}, {"until", "until", &o.until}} {
		v := q.Get(p.key)
		if set[p.flag] || v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			die("%s: %s=%q: %v", o.query, p.key, v, err)
		}
		*p.dst = n
	}
}

// refProfile is one profile of the reference, as google/pprof reads it back.
type refProfile struct {
	name string
	raw  []byte // the profile as Pyroscope gets it (profilev1, marshalled)
	p    *profile.Profile
}

// reference runs ParseJFR on FILE as Pyroscope does and returns its profiles
// sorted by NAME, and the JFR event setting it reports.
func reference(file string, o *options) ([]refProfile, string) {
	body := readInflated(file)
	labels := new(jfrpprof.LabelsSnapshot)
	if o.labels != "" {
		if data := readInflated(o.labels); len(data) > 0 {
			if err := labels.UnmarshalVT(data); err != nil {
				die("%s: labels: %v", o.labels, err)
			}
		}
	}
	pi := &jfrpprof.ParseInput{SampleRate: o.rate}
	pi.StartTime = time.Unix(o.from, 0)
	pi.EndTime = time.Unix(o.until, 0)
	res, err := jfrpprof.ParseJFR(body, pi, labels)
	if err != nil {
		die("%s: ParseJFR: %v", file, err)
	}
	var out []refProfile
	seen := map[string]bool{}
	for _, rp := range res.Profiles {
		raw, err := rp.Profile.MarshalVT()
		if err != nil {
			die("%s: %s: marshal: %v", file, rp.Metric, err)
		}
		p, err := profile.ParseData(raw)
		if err != nil {
			die("%s: %s: reading the reference's pprof back: %v", file, rp.Metric, err)
		}
		name := rp.Metric + ":"
		if len(p.SampleType) > 0 {
			name += p.SampleType[0].Type
		}
		if seen[name] {
			die("%s: two reference profiles named %s", file, name)
		}
		seen[name] = true
		out = append(out, refProfile{name: name, raw: raw, p: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if o.writeRef != "" {
		if err := os.MkdirAll(o.writeRef, 0o755); err != nil {
			die("%v", err)
		}
		for _, rp := range out {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if _, err := zw.Write(rp.raw); err != nil {
				die("%v", err)
			}
			if err := zw.Close(); err != nil {
				die("%v", err)
			}
			path := filepath.Join(o.writeRef, rp.name+".pb.gz")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				die("%v", err)
			}
		}
	}
	return out, res.JFREvent
}

// canonical is a profile's comparable content.
type canonical struct {
	types    string // t1/u1,t2/u2
	period   string // pt/pu:p
	time     int64
	duration int64
	stacks   map[string][]int64 // "{labels} stack" -> summed values
}

var frameEscaper = strings.NewReplacer(`\`, `\\`, ";", `\;`, "\n", `\n`)
var labelEscaper = strings.NewReplacer(`\`, `\\`, ",", `\,`, "=", `\=`, "}", `\}`, "\n", `\n`)

func canonicalize(p *profile.Profile) *canonical {
	c := &canonical{time: p.TimeNanos, duration: p.DurationNanos, stacks: map[string][]int64{}}
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	c.types = strings.Join(types, ",")
	if p.PeriodType != nil {
		c.period = p.PeriodType.Type + "/" + p.PeriodType.Unit
	} else {
		c.period = "/"
	}
	c.period += ":" + strconv.FormatInt(p.Period, 10)

	frames := map[*profile.Location]string{}
	for _, s := range p.Sample {
		var labels []string
		for k, vs := range s.Label {
			for _, v := range vs {
				labels = append(labels, labelEscaper.Replace(k)+"="+labelEscaper.Replace(v))
			}
		}
		for k, ns := range s.NumLabel {
			for i, n := range ns {
				l := labelEscaper.Replace(k) + "=#" + strconv.FormatInt(n, 10)
				if units := s.NumUnit[k]; i < len(units) && units[i] != "" {
					l += labelEscaper.Replace(units[i])
				}
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		var stack []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			loc := s.Location[i]
			f, ok := frames[loc]
			if !ok {
				f = locationFrames(loc)
				frames[loc] = f
			}
			stack = append(stack, f)
		}
		key := "{" + strings.Join(labels, ",") + "} " + strings.Join(stack, ";")
		v := c.stacks[key]
		if v == nil {
			v = make([]int64, len(s.Value))
			c.stacks[key] = v
		}
		for i := range s.Value {
			if i < len(v) {
				v[i] += s.Value[i]
			}
		}
	}
	return c
}

// locationFrames is a location's frames, outermost first.
func locationFrames(loc *profile.Location) string {
	if len(loc.Line) == 0 {
		return "0x" + strconv.FormatUint(loc.Address, 16) + ":0"
	}
	var out []string
	for i := len(loc.Line) - 1; i >= 0; i-- {
		name := ""
		if f := loc.Line[i].Function; f != nil {
			name = f.Name
		}
		out = append(out, frameEscaper.Replace(name)+":"+strconv.FormatInt(loc.Line[i].Line, 10))
	}
	return strings.Join(out, ";")
}

func formatValues(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

func (c *canonical) keys() []string {
	keys := make([]string, 0, len(c.stacks))
	for k := range c.stacks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *canonical) total() []int64 {
	var t []int64
	for _, v := range c.stacks {
		for len(t) < len(v) {
			t = append(t, 0)
		}
		for i, x := range v {
			t[i] += x
		}
	}
	return t
}

func (c *canonical) write(w io.Writer, name, jfrEvent string, withEvent bool) {
	fmt.Fprintf(w, "# %s types=%s period=%s time=%d duration=%d", name, c.types, c.period, c.time, c.duration)
	if withEvent {
		fmt.Fprintf(w, " jfr_event=%s", jfrEvent)
	}
	fmt.Fprintln(w)
	for _, k := range c.keys() {
		fmt.Fprintf(w, "%s %s\n", k, formatValues(c.stacks[k]))
	}
	fmt.Fprintf(w, "total %s\n", formatValues(c.total()))
}

// diff returns the differences of braid's profile B from the reference R,
// at most max of them, and how many there are.
func diff(r, b *canonical, max int) ([]string, int) {
	var out []string
	n := 0
	add := func(format string, args ...interface{}) {
		n++
		if len(out) < max {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	if r.types != b.types {
		add("sample types: reference %s, braid %s", r.types, b.types)
	}
	if r.period != b.period {
		add("period: reference %s, braid %s", r.period, b.period)
	}
	if r.time != b.time {
		add("time_nanos: reference %d, braid %d", r.time, b.time)
	}
	if r.duration != b.duration {
		add("duration_nanos: reference %d, braid %d", r.duration, b.duration)
	}
	keys := map[string]bool{}
	for k := range r.stacks {
		keys[k] = true
	}
	for k := range b.stacks {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		rv, inR := r.stacks[k]
		bv, inB := b.stacks[k]
		switch {
		case !inB:
			add("%s: reference %s, braid (none)", k, formatValues(rv))
		case !inR:
			add("%s: reference (none), braid %s", k, formatValues(bv))
		case formatValues(rv) != formatValues(bv):
			add("%s: reference %s, braid %s", k, formatValues(rv), formatValues(bv))
		}
	}
	return out, n
}

func readPprof(path string) (*profile.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return profile.Parse(f) // gzipped or not
}

func cmdDump(args []string) {
	var o options
	fs := newFlagSet("dump", &o, false)
	pos := parseArgs(fs, args)
	if len(pos) != 1 {
		usage()
	}
	applyQuery(fs, &o)
	profiles, event := reference(pos[0], &o)
	for _, rp := range profiles {
		canonicalize(rp.p).write(os.Stdout, rp.name, event, true)
	}
}

func cmdNames(args []string) {
	var o options
	fs := newFlagSet("names", &o, false)
	pos := parseArgs(fs, args)
	if len(pos) != 1 {
		usage()
	}
	applyQuery(fs, &o)
	profiles, _ := reference(pos[0], &o)
	for _, rp := range profiles {
		fmt.Println(rp.name)
	}
}

func cmdCompare(args []string) {
	var o options
	fs := newFlagSet("compare", &o, true)
	pos := parseArgs(fs, args)
	if len(pos) < 2 {
		usage()
	}
	applyQuery(fs, &o)
	type given struct{ name, path string }
	var gs []given
	for _, a := range pos[1:] {
		name, path, ok := strings.Cut(a, "=")
		if !ok || name == "" || path == "" {
			die("%q: expected NAME=PPROF", a)
		}
		gs = append(gs, given{name, path})
	}
	profiles, _ := reference(pos[0], &o)
	ref := map[string]*profile.Profile{}
	for _, rp := range profiles {
		ref[rp.name] = rp.p
	}
	failed := false
	seen := map[string]bool{}
	for _, g := range gs {
		seen[g.name] = true
		rp, ok := ref[g.name]
		if !ok {
			var names []string
			for _, p := range profiles {
				names = append(names, p.name)
			}
			fmt.Printf("%s: not in the reference (it has %s)\n", g.name, strings.Join(names, " "))
			failed = true
			continue
		}
		bp, err := readPprof(g.path)
		if err != nil {
			fmt.Printf("%s: %s: %v\n", g.name, g.path, err)
			failed = true
			continue
		}
		r, b := canonicalize(rp), canonicalize(bp)
		diffs, n := diff(r, b, 20)
		if n == 0 {
			fmt.Printf("%s: %d stacks, total %s, equal\n", g.name, len(r.stacks), formatValues(r.total()))
			continue
		}
		failed = true
		fmt.Printf("%s: %d differences (reference %d stacks, total %s; braid %d stacks, total %s)\n",
			g.name, n, len(r.stacks), formatValues(r.total()), len(b.stacks), formatValues(b.total()))
		for _, d := range diffs {
			fmt.Printf("  %s\n", d)
		}
		if n > len(diffs) {
			fmt.Printf("  ... and %d more\n", n-len(diffs))
		}
	}
	if o.all {
		for _, rp := range profiles {
			if !seen[rp.name] {
				c := canonicalize(rp.p)
				fmt.Printf("%s: in the reference (%d stacks, total %s), not given\n",
					rp.name, len(c.stacks), formatValues(c.total()))
				failed = true
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

func cmdPprof(args []string) {
	if len(args) == 0 {
		usage()
	}
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok {
			name, path = filepath.Base(a), a
			for _, ext := range []string{".gz", ".pb", ".pprof"} {
				name = strings.TrimSuffix(name, ext)
			}
		}
		p, err := readPprof(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "jfrref: %s: %v\n", path, err)
			os.Exit(1)
		}
		canonicalize(p).write(os.Stdout, name, "", false)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "dump":
		cmdDump(os.Args[2:])
	case "names":
		cmdNames(os.Args[2:])
	case "compare":
		cmdCompare(os.Args[2:])
	case "pprof":
		cmdPprof(os.Args[2:])
	default:
		usage()
	}
}
