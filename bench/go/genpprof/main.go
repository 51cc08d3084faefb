// Command genpprof generates a large, realistic, deterministic pprof CPU
// profile (gzipped) for braid's decoder benchmarks. The output depends only
// on the flags, so the same -seed always yields the same file.
//
// Usage: genpprof -o OUT.pb.gz [-samples 120000] [-locations 25000] [-seed 1]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

const (
	period       = 10101010
	numFunctions = 6000
	numRootPaths = 2000
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "genpprof: "+format+"\n", args...)
	os.Exit(1)
}

// Function name flavours; each mapping produces one flavour.
const (
	flavC = iota
	flavCXX
	flavGo
	flavJS
	flavKernel
)

type mappingSpec struct {
	file, buildID string
	start, size   uint64
	offset        uint64
	flavour       int
	weight        int // relative share of functions
}

var mappingSpecs = []mappingSpec{
	{"/usr/bin/node", "3f2a9c1e7b4d5a6f8e9d0c1b2a3f4e5d6c7b8a90", 0x55d4c2a00000, 0x4800000, 0x1000, flavCXX, 30},
	{"/usr/lib/x86_64-linux-gnu/libc.so.6", "c047672cae7964324658491e7dee26748ae5d2f8", 0x7f3a1c228000, 0x195000, 0x28000, flavC, 6},
	{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30", "e37fe1a879783838de78cbc8c80621fa685d58a2", 0x7f3a1c4b0000, 0x115000, 0x9a000, flavCXX, 6},
	{"/usr/lib/x86_64-linux-gnu/libm.so.6", "", 0x7f3a1c11a000, 0x7f000, 0xe000, flavC, 2},
	{"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "1a6c6e2b0f0b6e1d37b9b6a0a0e2c4d9b2f87c11", 0x7f3a1bc9e000, 0x2c9000, 0x9e000, flavC, 6},
	{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "", 0x7f3a1bf8c000, 0x6a000, 0x22000, flavC, 2},
	{"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "", 0x7f3a1c6f4000, 0x14000, 0x3000, flavC, 1},
	{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "", 0x7f3a1c75c000, 0x25000, 0x1000, flavC, 1},
	{"/opt/app/bin/checkout-sidecar", "go-buildid-Xk3f9PqZ2mNn7Lr1Tb8w/aq0Yv1c2d3e4f5g6h7i8", 0x400000, 0x9b0000, 0x0, flavGo, 18},
	{"/tmp/perf-41872.map", "", 0x2e9c0a400000, 0x3f00000, 0x0, flavJS, 22},
	{"[vdso]", "", 0x7ffd6c3f1000, 0x2000, 0x0, flavC, 1},
	{"[kernel.kallsyms]", "", 0xffffffff81000000, 0x1400000, 0x0, flavKernel, 5},
}

var (
	cxxNamespaces = []string{"v8::internal", "v8", "node", "node::crypto", "node::fs", "node::http2", "v8::internal::compiler", "v8::internal::wasm", "v8::base", "std", "std::__detail", "icu_72", "uv", "node::worker", "v8::internal::interpreter", "cppgc::internal"}
	cxxClasses    = []string{"Heap", "Isolate", "Builtins", "Runtime", "Compiler", "Parser", "Scavenger", "MarkCompactCollector", "ConcurrentMarking", "Factory", "JSObject", "Map", "String", "HashTable", "Environment", "StreamBase", "TCPWrap", "Hash", "CipherBase", "Deserializer", "BytecodeGenerator", "PipelineImpl", "InstructionSelector", "GlobalHandles", "MemoryAllocator", "basic_string<char, std::char_traits<char>, std::allocator<char> >", "vector<unsigned char, std::allocator<unsigned char> >", "unordered_map<int, v8::internal::Handle<v8::internal::Object> >", "Platform", "TaskRunner", "Sweeper", "Utf8Decoder"}
	cxxMethods    = []string{"CollectGarbage", "AllocateRaw", "Invoke", "Call", "New", "Run", "RunMicrotasks", "ScavengePage", "ProcessMarkingWorklist", "Visit", "Lookup", "Insert", "Rehash", "Flatten", "WriteUtf8", "DoWrite", "OnStreamRead", "Update", "Digest", "Compile", "ParseProgram", "GenerateBytecode", "Execute", "PerformSweep", "ExpandTo", "operator()", "operator=", "_M_realloc_insert", "_M_mutate", "reserve", "PostTask", "Decode", "RunTask", "Evacuate", "IterateRoots", "TryAllocate", "FinalizeJob"}
	cxxArgs       = []string{"", "", "", "()", "(v8::internal::AllocationType)", "(int, v8::internal::Handle<v8::internal::Object>)", "(v8::FunctionCallbackInfo<v8::Value> const&)", "(unsigned long)", "(char const*, unsigned long)", "(v8::internal::Isolate*, v8::internal::Handle<v8::internal::JSFunction>, v8::internal::Handle<v8::internal::Object>, int, v8::internal::Handle<v8::internal::Object>*)", " const"}
	cFuncs        = []string{"malloc", "free", "calloc", "realloc", "memcpy", "memmove", "memset", "__memcpy_avx_unaligned_erms", "__memset_avx2_unaligned_erms", "__strlen_avx2", "__memcmp_avx2_movbe", "pthread_mutex_lock", "pthread_mutex_unlock", "pthread_cond_wait", "__pthread_cond_timedwait", "epoll_wait", "read", "write", "__libc_recv", "__libc_send", "clock_gettime", "__vdso_clock_gettime", "_int_malloc", "_int_free", "malloc_consolidate", "start_thread", "clone3", "__libc_start_main", "__libc_start_call_main", "exp", "log", "pow", "__sin_fma", "SHA256_Update", "sha256_block_data_order_avx2", "EVP_DigestUpdate", "EVP_CipherUpdate", "aesni_gcm_encrypt", "ossl_gcm_gmult_avx", "BN_mod_exp_mont_consttime", "bn_mul_mont", "SSL_read", "SSL_write", "ssl3_read_bytes", "tls_write_records", "deflate", "inflate", "deflate_slow", "longest_match", "crc32_z", "adler32_z", "_dl_runtime_resolve_xsavec", "_dl_fixup", "_dl_lookup_symbol_x", "do_lookup_x"}
	cSuffixes     = []string{"", "", "", "_internal", "_impl", "_slow", "_fast", "_avx2", "_sse4_1", ".part.0", ".constprop.0", ".isra.0"}
	goPackages    = []string{"runtime", "net/http", "net", "encoding/json", "crypto/sha256", "crypto/tls", "crypto/aes", "crypto/internal/nistec", "bufio", "bytes", "strings", "sync", "time", "context", "compress/gzip", "compress/flate", "sort", "reflect", "fmt", "os", "io", "internal/poll", "syscall", "main", "github.com/grafana/pyroscope-go/godeltaprof/internal/pprof", "google.golang.org/grpc/internal/transport", "google.golang.org/protobuf/internal/impl", "github.com/prometheus/client_golang/prometheus", "go.opentelemetry.io/otel/sdk/trace", "github.com/checkout/sidecar/internal/cart", "github.com/checkout/sidecar/internal/pricing"}
	goTypes       = []string{"", "", "(*Server)", "(*conn)", "(*Decoder)", "(*Encoder)", "(*digest)", "(*Conn)", "(*Reader)", "(*Writer)", "(*Mutex)", "(*Pool)", "(*Map)", "(*http2Server)", "(*loopyWriter)", "(*Registry)", "(*span)", "(*pollDesc)", "(*mheap)", "(*gcWork)", "(*mspan)", "Value", "(*cartService)", "(*ruleEngine)"}
	goFuncs       = []string{"ServeHTTP", "serve", "Read", "Write", "Flush", "Encode", "Decode", "Unmarshal", "Marshal", "block", "Sum256", "Lock", "Unlock", "Get", "Put", "Load", "Store", "mallocgc", "gcDrain", "scanobject", "findObject", "greyobject", "markBits", "schedule", "findRunnable", "netpoll", "park_m", "mcall", "goexit", "systemstack", "memmove", "memclrNoHeapPointers", "futex", "notesleep", "newobject", "growslice", "mapaccess2_faststr", "mapassign_faststr", "handleRequest", "computePrice", "applyDiscounts", "validate", "processFrame", "handleStream", "run", "Collect", "End", "literalStore", "stateInString", "sendmsg", "recvmsg"}
	goClosures    = []string{"", "", "", "", ".func1", ".func2", ".func1.1", ".gowrap1"}
	jsFiles       = []string{"./app.js", "./server.js", "./src/routes/checkout.js", "./src/services/cart.js", "./src/services/pricing.js", "./src/lib/db.js", "./node_modules/express/lib/router/index.js", "./node_modules/express/lib/router/layer.js", "./node_modules/express/lib/router/route.js", "./node_modules/body-parser/lib/types/json.js", "./node_modules/pg/lib/client.js", "./node_modules/pg-protocol/dist/parser.js", "./node_modules/lodash/lodash.js", "./node_modules/@opentelemetry/sdk-trace-base/build/src/Span.js", "./node_modules/@pyroscope/nodejs/dist/cjs/index.js", "node:internal/timers", "node:internal/process/task_queues", "node:internal/streams/readable", "node:internal/streams/writable", "node:net", "node:_http_server", "node:_http_common", "node:events", "node:internal/crypto/pbkdf2", "node:internal/modules/cjs/loader"}
	jsFuncs       = []string{"handle", "next", "handle_request", "dispatch", "process_params", "parse", "jsonParser", "query", "handleDataRowMessage", "parseMessage", "emit", "listOnTimeout", "processTimers", "processTicksAndRejections", "onStreamRead", "readableAddChunk", "writeOrBuffer", "parserOnIncoming", "parserOnHeadersComplete", "computeTotals", "applyCoupon", "priceLineItems", "fib", "hashPassword", "serialize", "cloneDeep", "baseClone", "(anonymous)", "(anonymous:L#1:C#1)", "end", "setAttribute", "Module._compile", "Module._load", "pbkdf2Sync", "tick", "render", "toJSON", "validateOrder", "formatMoney"}
	kernelFuncs   = []string{"entry_SYSCALL_64_after_hwframe", "do_syscall_64", "__x64_sys_futex", "do_futex", "futex_wait", "__x64_sys_epoll_wait", "do_epoll_wait", "ep_poll", "schedule", "__schedule", "finish_task_switch.isra.0", "__x64_sys_read", "ksys_read", "vfs_read", "__x64_sys_write", "ksys_write", "vfs_write", "sock_write_iter", "tcp_sendmsg", "tcp_sendmsg_locked", "tcp_recvmsg", "__tcp_transmit_skb", "ip_finish_output2", "__dev_queue_xmit", "asm_exc_page_fault", "exc_page_fault", "do_user_addr_fault", "handle_mm_fault", "__handle_mm_fault", "clear_page_erms", "copy_user_enhanced_fast_string", "asm_sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "__sysvec_apic_timer_interrupt", "hrtimer_interrupt", "__irq_exit_rcu", "__do_softirq", "net_rx_action", "ret_from_fork", "syscall_exit_to_user_mode"}
	threadNames   = []string{"node", "libuv-worker", "V8 DefaultWorke", "checkout-sidecar", "http-server"}
	pids          = []int64{41872, 41901, 42017}
)

func pick(r *rand.Rand, s []string) string { return s[r.Intn(len(s))] }

func funcName(r *rand.Rand, flav int) (name, file string) {
	switch flav {
	case flavCXX:
		ns, cls, m := pick(r, cxxNamespaces), pick(r, cxxClasses), pick(r, cxxMethods)
		name = ns + "::" + cls + "::" + m + pick(r, cxxArgs)
		if r.Intn(8) == 0 {
			name = ns + "::(anonymous namespace)::" + m + "Impl" + pick(r, cxxArgs)
		}
		file = "../deps/v8/src/" + strings.ToLower(strings.Split(cls, "<")[0]) + ".cc"
		if strings.HasPrefix(ns, "node") {
			file = "../src/" + strings.ToLower(strings.Split(cls, "<")[0]) + ".cc"
		} else if strings.HasPrefix(ns, "std") {
			file = "/usr/include/c++/12/bits/stl_" + strings.ToLower(strings.SplitN(cls, "<", 2)[0]) + ".h"
		}
	case flavC:
		name = pick(r, cFuncs) + pick(r, cSuffixes)
		file = "./" + strings.TrimLeft(strings.SplitN(name, ".", 2)[0], "_") + ".c"
	case flavGo:
		pkg, typ, fn := pick(r, goPackages), pick(r, goTypes), pick(r, goFuncs)
		name = pkg + "."
		if typ != "" {
			name += typ + "."
		}
		name += fn + pick(r, goClosures)
		base := pkg[strings.LastIndexByte(pkg, '/')+1:]
		if strings.Contains(pkg, ".") {
			file = "/root/go/pkg/mod/" + pkg + "/" + base + ".go"
		} else {
			file = "/usr/local/go/src/" + pkg + "/" + base + ".go"
		}
	case flavJS:
		f, fn := pick(r, jsFiles), pick(r, jsFuncs)
		name = f + ":" + fn + ":" + strconv.Itoa(1+r.Intn(900))
		file = f
	case flavKernel:
		name = pick(r, kernelFuncs)
		if r.Intn(3) == 0 {
			name += pick(r, cSuffixes)
		}
		file = ""
	}
	return name, file
}

func main() {
	out := flag.String("o", "", "output `file` (gzipped pprof)")
	nSamples := flag.Int("samples", 120000, "number of samples")
	nLocations := flag.Int("locations", 25000, "number of locations")
	seed := flag.Int64("seed", 1, "random seed")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: genpprof -o OUT.pb.gz [-samples N] [-locations N] [-seed N]")
		os.Exit(1)
	}
	if *nSamples < 1 || *nLocations < 1 {
		die("-samples and -locations must be positive")
	}
	r := rand.New(rand.NewSource(*seed))

	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     1795238894000000000,
		DurationNanos: 60e9,
	}

	// Mappings, with a weighted table for assigning functions to them.
	var mapWeights []int
	for i, ms := range mappingSpecs {
		p.Mapping = append(p.Mapping, &profile.Mapping{
			ID: uint64(i + 1), Start: ms.start, Limit: ms.start + ms.size, Offset: ms.offset,
			File: ms.file, BuildID: ms.buildID,
			HasFunctions: true, HasFilenames: ms.flavour != flavKernel, HasLineNumbers: ms.flavour != flavKernel,
			HasInlineFrames: ms.flavour == flavCXX || ms.flavour == flavGo,
		})
		for j := 0; j < ms.weight; j++ {
			mapWeights = append(mapWeights, i)
		}
	}

	// Functions: unique names, each living in one mapping at one address.
	type fnInfo struct {
		fn    *profile.Function
		m     int
		start uint64
	}
	var fns []fnInfo
	byMapping := make([][]int, len(mappingSpecs))
	seen := make(map[string]bool)
	for len(fns) < numFunctions {
		mi := mapWeights[r.Intn(len(mapWeights))]
		ms := mappingSpecs[mi]
		name, file := funcName(r, ms.flavour)
		if seen[name] {
			// Real profiles have many near-duplicates (clones, closures).
			name += ".cold"
			if seen[name] {
				continue
			}
		}
		seen[name] = true
		f := &profile.Function{ID: uint64(len(fns) + 1), Name: name, SystemName: name, Filename: file, StartLine: int64(1 + r.Intn(3000))}
		if ms.flavour == flavKernel {
			f.StartLine = 0
		}
		p.Function = append(p.Function, f)
		start := ms.start + uint64(r.Int63n(int64(ms.size-0x400)))&^0xf
		byMapping[mi] = append(byMapping[mi], len(fns))
		fns = append(fns, fnInfo{f, mi, start})
	}

	// Locations: a PC inside a function, ~15% with inlined callers.
	for i := 0; i < *nLocations; i++ {
		fi := fns[r.Intn(len(fns))]
		if i < len(fns) {
			fi = fns[i] // every function gets at least one location
		}
		loc := &profile.Location{
			ID:      uint64(i + 1),
			Mapping: p.Mapping[fi.m],
			Address: fi.start + uint64(r.Intn(0x400)),
		}
		line := func(f *profile.Function) profile.Line {
			if f.StartLine == 0 {
				return profile.Line{Function: f}
			}
			return profile.Line{Function: f, Line: f.StartLine + int64(r.Intn(200))}
		}
		loc.Line = append(loc.Line, line(fi.fn))
		if r.Intn(100) < 15 {
			same := byMapping[fi.m]
			for k := 1 + r.Intn(2); k > 0; k-- {
				loc.Line = append(loc.Line, line(fns[same[r.Intn(len(same))]].fn))
			}
		}
		p.Location = append(p.Location, loc)
	}

	// Root paths (root first) sharing prefixes with each other, like a call tree.
	nloc := len(p.Location)
	hot := rand.NewZipf(r, 1.1, 8, uint64(nloc-1))
	randLoc := func() *profile.Location {
		if r.Intn(2) == 0 {
			return p.Location[hot.Uint64()]
		}
		return p.Location[r.Intn(nloc)]
	}
	roots := make([][]*profile.Location, 0, numRootPaths)
	for i := 0; i < numRootPaths; i++ {
		n := 4 + r.Intn(21)
		var path []*profile.Location
		if i > 0 {
			parent := roots[r.Intn(i)]
			k := r.Intn(len(parent) + 1)
			if k > n {
				k = n
			}
			path = append(path, parent[:k]...)
		}
		for len(path) < n {
			path = append(path, p.Location[r.Intn(nloc)])
		}
		roots = append(roots, path)
	}
	rootPick := rand.NewZipf(r, 1.05, 4, uint64(numRootPaths-1))

	// Each location calls a few preferred callees, so extensions below the
	// root paths also form a call tree instead of pure noise.
	const nCallees = 4
	callees := make([]*profile.Location, nloc*nCallees)
	for i := range callees {
		callees[i] = randLoc()
	}
	calleeWeights := []int{0, 0, 0, 0, 0, 1, 1, 1, 2, 3}
	next := func(cur *profile.Location) *profile.Location {
		if r.Intn(100) < 15 {
			return randLoc()
		}
		return callees[int(cur.ID-1)*nCallees+calleeWeights[r.Intn(len(calleeWeights))]]
	}

	// Samples: root path + random extension, stored leaf first.
	stack := make([]*profile.Location, 0, 64)
	for i := 0; i < *nSamples; i++ {
		depth := 8 + r.Intn(57)
		root := roots[rootPick.Uint64()]
		stack = stack[:0]
		for j := 0; j < len(root) && j < depth; j++ {
			stack = append(stack, root[j])
		}
		for len(stack) < depth {
			stack = append(stack, next(stack[len(stack)-1]))
		}
		locs := make([]*profile.Location, depth)
		for j := range stack {
			locs[depth-1-j] = stack[j]
		}
		n := int64(1)
		if r.Intn(10) >= 6 {
			n = 1 + r.Int63n(50)
		}
		s := &profile.Sample{
			Location: locs,
			Value:    []int64{n, n * period},
			NumLabel: map[string][]int64{"pid": {pids[r.Intn(len(pids))]}},
		}
		if r.Intn(10) < 3 {
			s.Label = map[string][]string{"thread_name": {pick(r, threadNames)}}
		}
		p.Sample = append(p.Sample, s)
	}

	if err := p.CheckValid(); err != nil {
		die("generated profile is invalid: %v", err)
	}
	var gz, raw bytes.Buffer
	if err := p.Write(&gz); err != nil {
		die("encoding profile: %v", err)
	}
	if err := p.WriteUncompressed(&raw); err != nil {
		die("encoding profile: %v", err)
	}
	if err := os.WriteFile(*out, gz.Bytes(), 0o644); err != nil {
		die("%v", err)
	}
	fmt.Printf("genpprof: wrote %s samples=%d locations=%d functions=%d mappings=%d bytes=%d raw_bytes=%d\n",
		*out, len(p.Sample), len(p.Location), len(p.Function), len(p.Mapping), gz.Len(), raw.Len())
}
