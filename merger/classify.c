/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: the runtime classifiers. One row of `rules` per runtime says which
 * frames execute guest code, which mark garbage collection, JIT compiling and
 * the idle event loop, and what the runtime's SDK pseudo-frames mean; the
 * functions below only read the table. The names were seen in real stacks
 * (tests/test_classify.c has them) or found in the runtimes' symbol tables
 * and sources, some for versions other than the ones recorded (V8's
 * ScavengeJob, MinorMarkSweepCollector, maglev; CPython 3.8's collect):
 * docs/classifiers.md says where each rule comes from, and how to add a
 * runtime.
 */
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "merger/merger_int.h"

/* Function names: `exact` ones are compared without GCC's clone suffixes
 * (".constprop.0", ".isra.0", ".part.0", ".cold", ...), `prefix` ones
 * against the start of the name. Both lists end with NULL; either may be
 * NULL. */
#define MAX_PREFIXES 128 /* per set */

struct name_set {
	const char *const *exact;
	const char *const *prefix;
	/* filled once (index_set): the first bytes of all of them, and the
	 * prefixes grouped by first byte, with the bytes each group shares */
	uint64_t first[4];
	const char *by_first[MAX_PREFIXES];
	uint8_t group_start[256], group_n[256], group_shared[256];
};

/* A pseudo-frame an SDK puts in its stacks instead of guest code. */
struct sdk_pseudo {
	const char *name; /* matched exactly */
	enum merger_category category;
};

struct runtime_rules {
	enum runtime runtime;
	/* frames that execute guest code (FRAME_INTERPRETED frames always do) */
	struct name_set guest;
	bool jit_is_guest;     /* every FRAME_JIT frame is guest code */
	bool main_thread_only; /* only the main thread runs guest code */
	struct name_set gc;    /* collecting garbage */
	struct name_set jit;   /* compiling guest code */
	struct name_set idle;  /* the event loop, outside guest code */
	/* SDK side: pseudo-frames (a NULL name ends the list; NULL: none) and
	 * the root-most pseudo-frames to leave out of a splice */
	const struct sdk_pseudo *sdk_pseudo;
	const char *const *sdk_root_skip;
	/* the SDK's sample label naming a thread by its pthread_self(), as the
	 * eBPF samples' thread_pointer does (docs/threads.md); NULL: none */
	const char *sdk_thread_label;
	/* the SDK's leaf frame is the guest line that called native code */
	bool sdk_line_calls;
	/* the SDK label is the OS thread id (the eBPF samples' tid), not
	 * pthread_self() */
	bool sdk_thread_is_tid;
	/* the SDK's stacks hold native frames leafward of the guest ones
	 * (async-profiler's): the splice takes the guest frames alone, leaves
	 * out stacks without any (other threads: eBPF sees them whole), and the
	 * first native frame names the native call (calls.c) */
	bool sdk_native_leaf;
	/* the SDK names a native function guest code called as a file-less
	 * leaf after the C++ callback behind it (V8's profiler: ":run:0" for
	 * CryptoJob<...>::Run, ":writeFileUtf8:0" for node::fs::WriteFileUtf8):
	 * those leaves are call names (calls.c) */
	bool sdk_api_calls;
	/* eBPF frames that tell a process runs this runtime: names, and
	 * prefixes of a module's base name */
	struct name_set ident;
	const char *const *ident_module;
};

/* ---- Node.js / V8 ------------------------------------------------------- */

static const char *const node_guest_prefix[] = {"Builtins_", NULL};

static const char *const node_gc_prefix[] = {
	"v8::internal::Heap::CollectGarbage",
	"v8::internal::Heap::CollectAllGarbage",
	"v8::internal::Heap::CollectAllAvailableGarbage",
	"v8::internal::Heap::PreciseCollectAllGarbage",
	"v8::internal::Heap::HandleGCRequest",
	"v8::internal::Heap::PerformGarbageCollection",
	"v8::internal::Heap::Scavenge",
	"v8::internal::Heap::MarkCompact",
	"v8::internal::Heap::MinorMarkSweep",
	"v8::internal::Heap::EnsureSweepingCompleted",
	"v8::internal::Heap::CompleteSweeping",
	"v8::internal::Heap::StartIncrementalMarking",
	"v8::internal::Heap::FinalizeIncrementalMarking",
	"v8::internal::MarkCompactCollector",
	"v8::internal::MinorMarkCompactCollector",
	"v8::internal::MinorMarkSweepCollector",
	"v8::internal::ScavengerCollector",
	"v8::internal::Scavenger",
	"v8::internal::ScavengeJob",
	"v8::internal::MinorGCJob",
	"v8::internal::IncrementalMarking", /* also IncrementalMarkingJob */
	"v8::internal::ConcurrentMarking",
	"v8::internal::MarkingVisitor",
	"v8::internal::MainMarkingVisitor",
	"v8::internal::Sweeper",
	"v8::internal::Evacuator",
	"v8::internal::PageEvacuationJob",
	"v8::internal::PointersUpdatingJob",
	"v8::internal::MemoryReducer",
	"v8::internal::GCTracer",
	/* cppgc (Oilpan): collection only; cppgc::internal::ObjectAllocator
	 * is allocation */
	"cppgc::internal::Sweeper",
	"cppgc::internal::Marker", /* also MarkerBase */
	"cppgc::internal::ConcurrentMarker",
	"cppgc::internal::MarkingVisitor",
	"cppgc::internal::Compactor",
	"cppgc::internal::Heap::CollectGarbage",
	"cppgc::internal::Heap::StartGarbageCollection",
	"cppgc::internal::Heap::FinalizeGarbageCollection",
	NULL,
};

static const char *const node_jit_prefix[] = {
	"v8::internal::Compiler::",
	"v8::internal::compiler::",
	"v8::internal::maglev::",
	"v8::internal::baseline::",
	"v8::internal::OptimizingCompileDispatcher",
	"v8::internal::OptimizedCompilationJob",
	"v8::internal::UnoptimizedCompilationJob",
	"v8::internal::interpreter::BytecodeGenerator",
	"v8::internal::interpreter::BytecodeArrayBuilder",
	"v8::internal::interpreter::BytecodeArrayWriter",
	"v8::internal::Parser::",
	"v8::internal::ParserBase<",
	"v8::internal::PreParser::",
	"v8::internal::Scanner::",
	"v8::internal::parsing::",
	"v8::internal::Runtime_Compile", /* Lazy, Optimized, Baseline, ...OSR */
	NULL,
};

/* libuv's loop (uv_run, uv__io_poll, uv__run_timers, ...) and the epoll
 * wrapper it waits in: glibc's epoll_pwait keeps no frame pointer, so a
 * waiting main thread's stack is that one frame. */
static const char *const node_idle_exact[] = {"epoll_wait", "epoll_pwait", "epoll_pwait2", NULL};
static const char *const node_idle_prefix[] = {"uv_", NULL};

/* @datadog/pprof's profile-serializer.js (updateTimeProfile): "(program)"
 * is dropped, "(idle)" kept when it has labels, "(garbage collector)"
 * renamed "Garbage Collection" and put with "Non JS threads activity"
 * (the CPU of every other thread) under a root "Node.js". */
static const struct sdk_pseudo node_sdk_pseudo[] = {
	{"(idle)", MERGER_CAT_IDLE},
	{"Garbage Collection", MERGER_CAT_GC},
	{"(garbage collector)", MERGER_CAT_GC},
	{"Non JS threads activity", MERGER_CAT_NATIVE},
	{"(program)", MERGER_CAT_NATIVE},
	{NULL, MERGER_CAT_NATIVE},
};
static const char *const node_sdk_root_skip[] = {"Node.js", NULL};

static const char *const node_ident_prefix[] = {"Builtins_", "v8::", "node::", NULL};

/* ---- CPython -------------------------------------------------------------- */

static const char *const python_guest_exact[] = {
	"_PyEval_EvalFrameDefault",
	"_PyEval_EvalFrame",
	"PyEval_EvalFrameEx",
	"PyEval_EvalFrame",
	"_PyEval_Vector",
	"PyEval_EvalCode",
	"PyEval_EvalCodeEx",
	"_PyEval_EvalCodeWithName",
	"_PyFunction_Vectorcall",
	"function_code_fastcall",
	NULL,
};

/* Modules/gcmodule.c (gc_free_threading.c): the collector and the visit
 * callbacks only it passes to tp_traverse. Not _PyObject_GC_Link,
 * _PyObject_GC_New, PyObject_GC_Del: allocation and deallocation. */
static const char *const python_gc_exact[] = {
	"collect",		 /* 3.8, 3.9 */
	"collect_with_callback", /* 3.8, 3.9 */
	"collect_generations",	 /* 3.8, 3.9 */
	"gc_collect",		 /* gc.collect() */
	"_Py_RunGC",		 /* 3.12+: the eval breaker's collection */
	"visit_decref",
	"visit_reachable",
	"visit_move",
	"delete_garbage",
	"finalize_garbage",
	"handle_weakrefs",
	NULL,
};
static const char *const python_gc_prefix[] = {
	"gc_collect_", /* _main, _with_callback, _generations, _impl, _young, ... */
	"PyGC_Collect",
	"_PyGC_Collect", /* also _PyGC_CollectNoFail, _PyGC_CollectIfEnabled */
	NULL,
};

/* python -X perf (3.12+) names its trampolines "py::QUALNAME:FILE" */
static const char *const python_ident_prefix[] = {"py::", NULL};
static const char *const python_ident_module[] = {"libpython", NULL};

/* ---- HotSpot (the JVM) ------------------------------------------------------ */

/* The interpreter, the call stubs and compiled code all run from the code
 * cache, anonymous memory: FRAME_JIT frames (named from a perf map when the
 * JVM writes one). JavaCalls::call_helper, the native entry into Java, stays
 * in the native prefix; JNI functions (Java_*) and the runtime's calls
 * (OptoRuntime::new_array_C, SharedRuntime::*) are the native suffix.
 * Collectors: G1, Parallel, Serial, ZGC, Shenandoah, and the worker threads
 * and VM operations that run them; not the allocation paths
 * (G1CollectedHeap::mem_allocate), which are the caller's. */
static const char *const jvm_gc_prefix[] = {
	"G1CollectedHeap::do_collection_pause",
	"G1CollectedHeap::collect",
	"G1CollectedHeap::do_full_collection",
	"G1YoungCollector",
	"G1FullCollector",
	"G1FullGC",
	"G1ConcurrentMark",
	"G1CM",
	"G1ParScanThreadState",
	"G1ParEvacuateFollowersClosure",
	"G1ParCopy",
	"G1ScanEvacuatedObjClosure",
	"G1EvacuateRegions",
	"G1RemSet",
	"G1ScanHRForRegionClosure",
	"G1ConcurrentRefine",
	"G1PrimaryConcurrentRefineThread",
	"G1ServiceThread",
	"G1BatchedTask",
	"G1PostEvacuateCollectionSet",
	"G1MergeHeapRootsTask",
	"G1RebuildRemSetTask",
	"G1ClearCardTableTask",
	"G1RootProcessor",
	"G1Uncommit",
	"G1STWRefProcTaskProxy",
	"GangWorker::",
	"AbstractGangWorker::",
	"WorkerThread::",
	"WorkGang::",
	"WorkerThreads::",
	"ConcurrentGCThread::",
	"VM_G1",
	"VM_CollectForAllocation",
	"VM_GC_Operation",
	"VM_GenCollect",
	"VM_ParallelGC",
	"ParallelScavengeHeap::collect",
	"PSScavenge",
	"PSParallelCompact",
	"PSPromotionManager",
	"PSRootsClosure",
	"ScavengeRootsTask",
	"StealTask",
	"SerialHeap::",
	"GenCollectedHeap::do_collection",
	"GenCollectedHeap::collect",
	"DefNewGeneration::collect",
	"TenuredGeneration::collect",
	"GenMarkSweep",
	"MarkSweep::",
	"ZDriver",
	"ZMark",
	"ZRelocate",
	"ZHeap::",
	"ZWorkers",
	"ZDirector",
	"ShenandoahHeap::",
	"ShenandoahControlThread",
	"ShenandoahConcurrent",
	"ShenandoahMark",
	"ShenandoahEvac",
	"ShenandoahUpdate",
	"ReferenceProcessor::",
	"WeakProcessor::",
	NULL,
};

/* C2 (Compile, the Phase* passes, Matcher), C1 (Compilation, LinearScan,
 * GraphBuilder, LIR), and the broker and ci* interface they share. */
static const char *const jvm_jit_prefix[] = {
	"CompileBroker::",
	"C2Compiler::",
	"Compile::",
	"Compiler::compile_method",
	"Compilation::",
	"Parse::",
	"GraphKit::",
	"LibraryCallKit::",
	"CallGenerator",
	"InlineTree::",
	"Phase",
	"IdealLoopTree::",
	"SuperWord::",
	"Matcher::",
	"ConnectionGraph::",
	"LinearScan",
	"LIR_",
	"LIRGenerator::",
	"GraphBuilder::",
	"Optimizer::",
	"Canonicalizer::",
	"ciEnv::",
	"ciMethod::",
	"ciTypeFlow::",
	"ciBytecodeStream::",
	"CompilerThread::",
	NULL,
};

static const char *const jvm_ident_prefix[] = {"JavaCalls::", "JVM_", "jni_", "JavaThread::", NULL};
static const char *const jvm_ident_module[] = {"libjvm", NULL};

static struct runtime_rules rules[] = {
	{
		.runtime = RUNTIME_NODE,
		.guest = {.prefix = node_guest_prefix},
		.jit_is_guest = true,
		/* the SDK profiles the main isolate only; other threads'
		 * CPU is its "Non JS threads activity" */
		.main_thread_only = true,
		.gc = {.prefix = node_gc_prefix},
		.jit = {.prefix = node_jit_prefix},
		.idle = {.exact = node_idle_exact, .prefix = node_idle_prefix},
		.sdk_pseudo = node_sdk_pseudo,
		.sdk_root_skip = node_sdk_root_skip,
		.sdk_api_calls = true,
		.ident = {.prefix = node_ident_prefix},
	},
	{
		.runtime = RUNTIME_PYTHON,
		.guest = {.exact = python_guest_exact},
		.jit_is_guest = true, /* -X perf trampolines, 3.13's JIT */
		.gc = {.exact = python_gc_exact, .prefix = python_gc_prefix},
		/* pyroscope-io's report_thread_id: py-spy's thread id, which is
		 * threading.get_ident(), pthread_self() */
		.sdk_thread_label = "thread_id",
		/* py-spy's leaf: the line of the last instruction, the call */
		.sdk_line_calls = true,
		.ident = {.exact = python_guest_exact, .prefix = python_ident_prefix},
		.ident_module = python_ident_module,
	},
	{
		.runtime = RUNTIME_JVM,
		.jit_is_guest = true, /* the interpreter, stubs and compiled code */
		.gc = {.prefix = jvm_gc_prefix},
		.jit = {.prefix = jvm_jit_prefix},
		/* braid's reading of the agent's JFR labels each sample with its
		 * thread's OS id (profile__from_jfr, os_thread_labels) */
		.sdk_thread_label = MERGER_OS_THREAD_LABEL,
		.sdk_thread_is_tid = true,
		.sdk_native_leaf = true,
		.ident = {.prefix = jvm_ident_prefix},
		.ident_module = jvm_ident_module,
	},
};

static void index_set(struct name_set *set)
{
	size_t n = 0;

	for (const char *const *p = set->exact; p && *p; p++)
		set->first[(unsigned char)**p >> 6] |= 1ull << ((unsigned char)**p & 63);
	for (const char *const *p = set->prefix; p && *p; p++)
		set->first[(unsigned char)**p >> 6] |= 1ull << ((unsigned char)**p & 63);
	for (unsigned c = 1; c < 256; c++) {
		size_t shared = 0;

		set->group_start[c] = (uint8_t)n;
		for (const char *const *p = set->prefix; p && *p; p++) {
			if ((unsigned char)**p != c)
				continue;
			assert(n < MAX_PREFIXES);
			if (set->group_n[c] == 0) {
				shared = strlen(*p);
			} else {
				const char *g = set->by_first[set->group_start[c]];
				size_t k = 0;

				while (k < shared && g[k] == (*p)[k])
					k++;
				shared = k;
			}
			set->by_first[n++] = *p;
			set->group_n[c]++;
		}
		set->group_shared[c] = (uint8_t)(shared < 255 ? shared : 255);
	}
}

static void rules_init(void)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rules); i++) {
		index_set(&rules[i].guest);
		index_set(&rules[i].gc);
		index_set(&rules[i].jit);
		index_set(&rules[i].idle);
		index_set(&rules[i].ident);
	}
}

static pthread_once_t rules_once = PTHREAD_ONCE_INIT;

static const struct runtime_rules *rules_of(enum runtime runtime)
{
	pthread_once(&rules_once, rules_init);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rules); i++)
		if (rules[i].runtime == runtime)
			return &rules[i];
	return NULL;
}

/* ---- names ------------------------------------------------------------------ */

/* One dot-separated part of a GCC clone suffix: a number or a clone kind. */
static bool clone_part(const char *s, size_t len)
{
	static const char *const kinds[] = {"constprop", "isra",       "part", "cold",
					    "lto_priv",	 "localalias", "llvm", "clone"};
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == len)
		return true;
	for (i = 0; i < UTIL_ARRAY_SIZE(kinds); i++)
		if (strlen(kinds[i]) == len && memcmp(s, kinds[i], len) == 0)
			return true;
	return false;
}

/* The length of name without a GCC clone suffix ("gc_collect_main.isra.0"
 * -> "gc_collect_main"): the suffix starts at the first dot and is all
 * clone parts, else the whole name counts. */
static size_t base_len(const char *name)
{
	const char *dot = strchr(name, '.'), *p;

	if (!dot || dot == name)
		return strlen(name);
	for (p = dot; *p == '.';) {
		const char *end = strchr(p + 1, '.');
		size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

		if (!clone_part(p + 1, len))
			return strlen(name);
		p += len + 1;
	}
	return (size_t)(dot - name);
}

static bool in_list(const char *const *list, const char *s, size_t len)
{
	for (; list && *list; list++)
		if (strlen(*list) == len && memcmp(*list, s, len) == 0)
			return true;
	return false;
}

/* Inline rather than strncmp(name, prefix, strlen(prefix)): every frame of
 * every stack is checked against dozens of prefixes, and nearly all differ
 * at the first few bytes. */
static inline bool has_prefix(const char *name, const char *prefix)
{
	while (*prefix)
		if (*name++ != *prefix++)
			return false;
	return true;
}

/* The lists after name_in's first-byte test. */
static bool name_in_lists(const struct name_set *set, const char *name)
{
	unsigned char c = (unsigned char)*name;
	const char *const *g;
	size_t shared;

	if (set->exact && in_list(set->exact, name, base_len(name)))
		return true;
	if (!set->group_n[c])
		return false;
	/* the prefixes of a first byte mostly share their start
	 * ("v8::internal::"), compared once */
	g = set->by_first + set->group_start[c];
	shared = set->group_shared[c];
	if (strncmp(name, g[0], shared) != 0)
		return false;
	for (size_t i = 0; i < set->group_n[c]; i++)
		if (has_prefix(name + shared, g[i] + shared))
			return true;
	return false;
}

/* Every frame of every stack comes here, several times, and most frames are
 * in no list: one bit test, inlined, says so. */
static inline __attribute__((always_inline)) bool name_in(const struct name_set *set,
							  const char *name)
{
	unsigned char c;

	if (!name || !*name)
		return false;
	c = (unsigned char)*name;
	if (!(set->first[c >> 6] & (1ull << (c & 63))))
		return false;
	return name_in_lists(set, name);
}

/* ---- classifiers -------------------------------------------------------------- */

const char *merger__category_name(enum merger_category c)
{
	static const char *const names[MERGER_CAT_COUNT] = {
		[MERGER_CAT_GUEST] = "guest",	[MERGER_CAT_GC] = "gc",
		[MERGER_CAT_JIT] = "jit",	[MERGER_CAT_IDLE] = "idle",
		[MERGER_CAT_NATIVE] = "native",
	};

	if ((unsigned)c >= MERGER_CAT_COUNT)
		return "unknown";
	return names[c];
}

static bool is_guest(const struct runtime_rules *r, const struct frame *f)
{
	if (f->kind == FRAME_INTERPRETED)
		return true;
	if (f->kind == FRAME_JIT && r->jit_is_guest)
		return true;
	return name_in(&r->guest, f->name);
}

static bool any_in(const struct name_set *set, const struct frame *f, size_t end)
{
	for (size_t i = 0; i < end; i++)
		if (name_in(set, f[i].name))
			return true;
	return false;
}

/* The category of a stack whose frames [0, end) are outside guest code (the
 * native suffix, or every good frame of a stack without guest frames): GC
 * before JIT (a compile that collects garbage is collecting), then the idle
 * loop where `idle` (no guest frame at all), else `other`. */
static enum merger_category outside_category(const struct runtime_rules *r, const struct frame *f,
					     size_t end, bool idle, enum merger_category other)
{
	if (any_in(&r->gc, f, end))
		return MERGER_CAT_GC;
	if (any_in(&r->jit, f, end))
		return MERGER_CAT_JIT;
	if (idle && any_in(&r->idle, f, end))
		return MERGER_CAT_IDLE;
	return other;
}

void merger__classify_ebpf(enum runtime runtime, const struct frame *user_frames, size_t n_user,
			   bool main_thread, struct merger_class *ret)
{
	const struct runtime_rules *r = rules_of(runtime);
	const struct frame *f = user_frames;
	struct merger_class c = {
		.category = MERGER_CAT_NATIVE, .region_begin = n_user, .region_end = n_user};
	size_t i, good = n_user, leaf = n_user, root = n_user;

	if (!ret)
		return;
	if (n_user == 0 || !f) {
		*ret = (struct merger_class){.category = MERGER_CAT_NATIVE};
		return;
	}
	/* unwinding that stopped at an address in no mapping: what lies
	 * rootward of the first such frame is unreliable */
	c.broken = f[n_user - 1].kind == FRAME_UNKNOWN;
	if (!r || (r->main_thread_only && !main_thread)) {
		*ret = c;
		return;
	}
	if (c.broken)
		for (good = 0; good < n_user && f[good].kind != FRAME_UNKNOWN; good++)
			;
	for (i = 0; i < good; i++) {
		if (!is_guest(r, &f[i]))
			continue;
		if (leaf == n_user)
			leaf = i;
		root = i;
	}
	if (c.broken) {
		c.region_begin = leaf < good ? leaf : good;
		c.region_end = n_user;
		c.category =
			outside_category(r, f, c.region_begin, leaf == n_user, MERGER_CAT_GUEST);
	} else if (leaf < n_user) {
		c.region_begin = leaf;
		c.region_end = root + 1;
		c.category = outside_category(r, f, leaf, false, MERGER_CAT_GUEST);
	} else {
		c.category = outside_category(r, f, n_user, true, MERGER_CAT_NATIVE);
	}
	*ret = c;
}

enum merger_category merger__classify_sdk(enum runtime runtime, const char *const *names, size_t n,
					  size_t *ret_root_skip)
{
	const struct runtime_rules *r = rules_of(runtime);
	enum merger_category c = MERGER_CAT_GUEST;
	size_t skip = 0, i;

	if (!names)
		n = 0;
	if (r && n && names[n - 1] && in_list(r->sdk_root_skip, names[n - 1], strlen(names[n - 1])))
		skip = 1;
	if (ret_root_skip)
		*ret_root_skip = skip;
	if (n == skip)
		return MERGER_CAT_NATIVE; /* nothing but the runtime's root */
	if (!r || !r->sdk_pseudo)
		return MERGER_CAT_GUEST;
	/* what the SDK groups under its runtime root is runtime activity */
	if (skip)
		c = MERGER_CAT_NATIVE;
	for (i = n - skip; i-- > 0;) {
		const struct sdk_pseudo *p;

		if (!names[i])
			continue;
		for (p = r->sdk_pseudo; p->name; p++)
			if (strcmp(names[i], p->name) == 0)
				return p->category;
	}
	return c;
}

const char *merger_sdk_thread_label(enum runtime runtime)
{
	const struct runtime_rules *r = rules_of(runtime);

	return r ? r->sdk_thread_label : NULL;
}

bool merger_sdk_thread_is_tid(enum runtime runtime)
{
	const struct runtime_rules *r = rules_of(runtime);

	return r && r->sdk_thread_is_tid;
}

bool merger_sdk_native_leaf(enum runtime runtime)
{
	const struct runtime_rules *r = rules_of(runtime);

	return r && r->sdk_native_leaf;
}

bool merger_sdk_api_calls(enum runtime runtime)
{
	const struct runtime_rules *r = rules_of(runtime);

	return r && r->sdk_api_calls;
}

bool merger_sdk_line_calls(enum runtime runtime)
{
	const struct runtime_rules *r = rules_of(runtime);

	return r && r->sdk_line_calls;
}

bool merger__can_merge(enum runtime r)
{
	return r == RUNTIME_GO || merger__can_splice(r);
}

bool merger__can_splice(enum runtime r)
{
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(rules); k++)
		if (rules[k].runtime == r)
			return true;
	return false;
}

static bool module_in(const char *const *prefixes, const char *module)
{
	const char *base;

	if (!prefixes || !module)
		return false;
	base = strrchr(module, '/');
	base = base ? base + 1 : module;
	for (; *prefixes; prefixes++)
		if (strncmp(base, *prefixes, strlen(*prefixes)) == 0)
			return true;
	return false;
}

enum runtime merger__runtime_of_frames(const struct frame *frames, size_t n)
{
	pthread_once(&rules_once, rules_init);
	/* from the root: the runtime that started the process wins over one
	 * it embeds further up the stack */
	for (size_t i = n; frames && i-- > 0;) {
		for (size_t k = 0; k < UTIL_ARRAY_SIZE(rules); k++) {
			if (name_in(&rules[k].ident, frames[i].name) ||
			    module_in(rules[k].ident_module, frames[i].module))
				return rules[k].runtime;
		}
	}
	return RUNTIME_UNKNOWN;
}
