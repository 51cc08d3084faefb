/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger/classify.c: the runtime classifiers, on real stacks.
 *
 * The Node.js stacks were recorded with `braid record` from node 20.20.2
 * (/usr/bin/node, with --perf-basic-prof, or without it for the
 * anonymous JIT frames) running timers that call fib, crypto.pbkdf2Sync,
 * an allocation loop, new Function and gc(), fs.readFileSync, an HTTP
 * client/server and an idle setInterval. The CPython stacks come from
 * `braid record` of Debian's python3.11 (3.11.2-6+deb12u6) and pyenv's
 * 3.11.7 and 3.12.1, built without frame pointers, so their stacks are
 * broken; the complete ones were unwound by gdb from DWARF in
 * pyenv's 3.11.7 running hashlib.pbkdf2_hmac, gc.collect(), list.sort(key=)
 * and a threading.Thread, and are written as braid names them: one frame
 * per physical frame, named by the ELF symbol table, an unnamed one as its
 * module and offset, the stack ending where frame-pointer unwinding ends
 * (__libc_start_call_main, start_thread). Frames are leaf first, with the
 * kind, module and offset they had. A stack put together from real names
 * rather than recorded whole says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "merger/merger.h"

#ifndef BRAID_FIXTURES
#error "BRAID_FIXTURES must name ../shared/fixtures"
#endif

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* one frame initializer per macro, aligned */
/* clang-format off */
#define NODE	  "/usr/bin/node"
#define LIBC	  "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define LIBCRYPTO "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
#define LIBPY	  "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
#define HASHLIB	  "/root/.pyenv/versions/3.11.7/lib/python3.11/lib-dynload/_hashlib.cpython-311-x86_64-linux-gnu.so"

#define N(name)	      {FRAME_NATIVE, name, NODE, 0}
#define JS(name)      {FRAME_JIT, name, "[jit]", 0}
#define LIBC_FN(name) {FRAME_NATIVE, name, LIBC, 0}
#define LIBC_AT(off)  {FRAME_NATIVE, NULL, LIBC, off}
#define CRYPTO(name)  {FRAME_NATIVE, name, LIBCRYPTO, 0}
#define CRYPTO_AT(off) {FRAME_NATIVE, NULL, LIBCRYPTO, off}
#define PY(name)      {FRAME_NATIVE, name, LIBPY, 0}
#define UNKNOWN	      {FRAME_UNKNOWN, NULL, "[unknown]", 0}
/* clang-format on */

/* Node's main thread running a timer callback, from the JS entry down:
 * 10 frames, the root __libc_start_call_main (not in libc's .dynsym) */
#define NODE_TIMER_ROOT                                                                            \
	N("v8::internal::(anonymous namespace)::Invoke"), N("v8::internal::Execution::Call"),      \
		N("v8::Function::Call"), N("node::Environment::RunTimers"), N("uv__run_timers"),   \
		N("uv_run"), N("node::SpinEventLoopInternal"), N("node::NodeMainInstance::Run"),   \
		N("node::Start"), LIBC_AT(0x2724a)

/* CPython 3.11's main thread running a script, below the eval loop's
 * entry: 6 frames */
#define PY_MAIN_ROOT                                                                               \
	PY("run_mod"), PY("_PyRun_SimpleFileObject"), PY("_PyRun_AnyFileObject"),                  \
		PY("Py_RunMain"), PY("Py_BytesMain"), LIBC_AT(0x2724a)

/* ---- helpers ------------------------------------------------------------- */

static void expect_ebpf(enum runtime rt, const struct frame *f, size_t n, bool main,
			enum merger_category cat, size_t begin, size_t end, bool broken, int line)
{
	struct merger_class c;

	memset(&c, 0xa5, sizeof(c));
	merger__classify_ebpf(rt, f, n, main, &c);
	if (c.category != cat || c.region_begin != begin || c.region_end != end ||
	    c.broken != broken)
		fail_msg("line %d: got %s [%zu, %zu)%s, want %s [%zu, %zu)%s", line,
			 merger__category_name(c.category), c.region_begin, c.region_end,
			 c.broken ? " broken" : "", merger__category_name(cat), begin, end,
			 broken ? " broken" : "");
}

#define EXPECT(rt, frames, main, cat, begin, end, broken)                                          \
	expect_ebpf(rt, frames, LEN(frames), main, cat, begin, end, broken, __LINE__)

/* The frame a cut falls on, as a user reading the merged stack sees it. */
#define EXPECT_NAME(frames, i, want) assert_string_equal((frames)[i].name, want)

static enum merger_category sdk(enum runtime rt, const char *const *names, size_t n,
				size_t *ret_skip)
{
	*ret_skip = 0xdead;
	return merger__classify_sdk(rt, names, n, ret_skip);
}

#define EXPECT_SDK(rt, names, cat, skip)                                                           \
	do {                                                                                       \
		size_t skip_;                                                                      \
		assert_string_equal(merger__category_name(sdk(rt, names, LEN(names), &skip_)),     \
				    merger__category_name(cat));                                   \
		assert_int_equal(skip_, skip);                                                     \
	} while (0)

/* ---- Node.js stacks (leaf first) ------------------------------------------------ */

/* crypto.pbkdf2Sync from a timer: JS -> C++ API callback -> OpenSSL */
static const struct frame JS_CRYPTO[] = {
	N("EVP_DigestFinal_ex"),
	N("HMAC_Final"),
	N("kdf_pbkdf2_derive"),
	N("PKCS5_PBKDF2_HMAC"),
	N("node::crypto::PBKDF2Traits::DeriveBits"),
	N("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork"),
	N("node::crypto::CryptoJob<node::crypto::PBKDF2Traits>::Run"),
	N("v8::internal::FunctionCallbackArguments::Call"),
	N("v8::internal::(anonymous namespace)::HandleApiCallHelper<false>"),
	N("v8::internal::Builtin_HandleApiCall"),
	N("Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit"), /* 10 */
	JS("JS:^pbkdf2Sync node:internal/crypto/pbkdf2:62:20"),
	JS("JS:^ /tmp/cls/n2.js:9:19"),
	JS("JS:*phase /tmp/cls/n2.js:6:15"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 18 */
	NODE_TIMER_ROOT,
};

/* new Function(...)(3): JS -> C++ (CreateDynamicFunction) -> JS again */
static const struct frame JS_NESTED[] = {
	JS("JS:^ :1:1"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"),
	N("v8::internal::(anonymous namespace)::Invoke"),
	N("v8::internal::Execution::Call"),
	N("v8::internal::(anonymous namespace)::CreateDynamicFunction"),
	N("v8::internal::Builtin_FunctionConstructor"),
	N("Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit"),
	N("Builtins_JSBuiltinsConstructStub"),
	JS("JS:*compileMany /tmp/cls/n2.js:5:21"),
	JS("JS:*phase /tmp/cls/n2.js:6:15"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 15 */
	NODE_TIMER_ROOT,
};

/* node without --perf-basic-prof: JS code is anonymous memory */
static const struct frame JS_ANON_CRYPTO[] = {
	N("EVP_MD_CTX_copy_ex"),
	N("HMAC_CTX_copy"),
	N("kdf_pbkdf2_derive"),
	N("PKCS5_PBKDF2_HMAC"),
	N("node::crypto::PBKDF2Traits::DeriveBits"),
	N("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork"),
	N("node::crypto::CryptoJob<node::crypto::PBKDF2Traits>::Run"),
	N("Builtins_CallApiCallback"), /* 7 */
	JS(NULL),
	JS(NULL),
	JS(NULL),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 15 */
	NODE_TIMER_ROOT,
};

static const struct frame JS_ANON_LEAF[] = {
	JS(NULL),
	JS(NULL),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 6 */
	NODE_TIMER_ROOT,
};

/* fs.readFileSync from module code at start-up: libuv called from JS is
 * the suffix, not the idle loop */
static const struct frame JS_FS_SYNC[] = {
	LIBC_FN("read"),
	N("uv_fs_read"),
	N("node::fs::Read"),
	N("Builtins_CallApiCallback"), /* 3 */
	JS("JS:*readFileSync node:fs:441:22"),
	JS("JS:*readIt /tmp/cls/fs.js:3:16"),
	JS("JS:^ /tmp/cls/fs.js:1:1"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 14 */
	N("v8::internal::(anonymous namespace)::Invoke"),
	N("v8::internal::Execution::Call"),
	N("v8::Function::Call"),
	N("node::builtins::BuiltinLoader::CompileAndCall"),
	N("node::Realm::ExecuteBootstrapper"),
	N("node::StartExecution"),
	N("node::StartExecution"),
	N("node::LoadEnvironment"),
	N("node::NodeMainInstance::Run"),
	N("node::Start"),
	LIBC_AT(0x2724a),
};

/* a scavenge that an allocation in JS triggered */
static const struct frame GC_IN_JS[] = {
	N("v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>"),
	N("v8::internal::BodyDescriptorBase::IteratePointers<v8::internal::"
	  "IterateAndScavengePromotedObjectsVisitor>"),
	N("v8::internal::Scavenger::IterateAndScavengePromotedObject"),
	N("v8::internal::Scavenger::Process"),
	N("v8::internal::ScavengerCollector::JobTask::ProcessItems"),
	N("v8::platform::DefaultJobState::Join"),
	N("v8::platform::DefaultJobHandle::Join"),
	N("v8::internal::ScavengerCollector::CollectGarbage"),
	N("v8::internal::Heap::Scavenge"),
	N("v8::internal::Heap::PerformGarbageCollection"),
	N("v8::internal::Heap::CollectGarbage"),
	N("v8::internal::HeapAllocator::AllocateRawWithLightRetrySlowPath"),
	N("v8::internal::HeapAllocator::AllocateRawWithRetryOrFailSlowPath"),
	N("v8::internal::Factory::NewFillerObject"),
	N("v8::internal::Runtime_AllocateInYoungGeneration"),
	N("Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit"), /* 15 */
	JS("JS:*alloc /tmp/cls/n2.js:3:15"),
	JS("JS:*phase /tmp/cls/n2.js:6:15"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 22 */
	NODE_TIMER_ROOT,
};

/* V8's minor GC task, run by the loop outside JS */
static const struct frame GC_FROM_LOOP[] = {
	N("v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>"),
	N("v8::internal::BodyDescriptorBase::IteratePointers<v8::internal::ScavengeVisitor>"),
	N("v8::internal::Scavenger::Process"),
	N("v8::internal::ScavengerCollector::JobTask::ProcessItems"),
	N("v8::platform::DefaultJobState::Join"),
	N("v8::platform::DefaultJobHandle::Join"),
	N("v8::internal::ScavengerCollector::CollectGarbage"),
	N("v8::internal::Heap::Scavenge"),
	N("v8::internal::Heap::PerformGarbageCollection"),
	N("v8::internal::Heap::CollectGarbage"),
	N("v8::internal::MinorGCJob::Task::RunInternal"),
	N("node::PerIsolatePlatformData::RunForegroundTask"),
	N("node::PerIsolatePlatformData::FlushForegroundTasksInternal"),
	N("uv__async_io.part.0"),
	N("uv__io_poll"),
	N("uv_run"),
	N("node::SpinEventLoopInternal"),
	N("node::NodeMainInstance::Run"),
	N("node::Start"),
	LIBC_AT(0x2724a),
};

/* incremental marking, also a loop task */
static const struct frame MARKING_FROM_LOOP[] = {
	N("v8::internal::MarkCompactCollector::ProcessMarkingWorklist"),
	N("v8::internal::IncrementalMarking::Step"),
	N("v8::internal::IncrementalMarking::AdvanceAndFinalizeIfComplete"),
	N("v8::internal::IncrementalMarkingJob::Task::RunInternal"),
	N("node::PerIsolatePlatformData::RunForegroundTask"),
	N("node::PerIsolatePlatformData::FlushForegroundTasksInternal"),
	N("uv__async_io.part.0"),
	N("uv__io_poll"),
	N("uv_run"),
	N("node::SpinEventLoopInternal"),
	N("node::NodeMainInstance::Run"),
	N("node::Start"),
	LIBC_AT(0x2724a),
};

/* a baseline function tiering up: Turbofan's job set up on the main thread */
static const struct frame JIT_OPTIMIZE[] = {
	LIBC_AT(0x16e0ba),
	N("v8::internal::compiler::PipelineData::PipelineData"),
	N("v8::internal::compiler::PipelineCompilationJob::PipelineCompilationJob"),
	N("v8::internal::compiler::Pipeline::NewCompilationJob"),
	N("v8::internal::compiler::NewCompilationJob"),
	N("v8::internal::(anonymous namespace)::GetOrCompileOptimized"),
	N("v8::internal::Compiler::CompileOptimized"),
	N("v8::internal::Runtime_CompileOptimized"),
	N("Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit"), /* 8 */
	N("Builtins_BaselineOutOfLinePrologue"),
	JS("JS:^processTimers node:internal/timers:504:25"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 12 */
	NODE_TIMER_ROOT,
};

/* new Function(source): compiling the source */
static const struct frame JIT_EVAL[] = {
	N("v8::internal::Factory::JSFunctionBuilder::BuildRaw"),
	N("v8::internal::Factory::JSFunctionBuilder::Build"),
	N("v8::internal::Compiler::GetFunctionFromEval"),
	N("v8::internal::Compiler::GetFunctionFromValidatedString"),
	N("v8::internal::(anonymous namespace)::CreateDynamicFunction"),
	N("v8::internal::Builtin_FunctionConstructor"),
	N("Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit"), /* 6 */
	N("Builtins_JSBuiltinsConstructStub"),
	JS("JS:*compileMany /tmp/cls/n2.js:5:21"),
	JS("JS:*phase /tmp/cls/n2.js:6:15"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_InterpreterEntryTrampoline"),
	N("Builtins_JSEntryTrampoline"),
	N("Builtins_JSEntry"), /* 14 */
	NODE_TIMER_ROOT,
};

/* the main thread waiting for events (9 kernel frames below it, not user
 * frames): glibc's epoll_pwait keeps no frame pointer, unwinding ends */
static const struct frame IDLE_EPOLL[] = {
	LIBC_FN("epoll_pwait"),
};

static const struct frame IDLE_LOOP[] = {
	LIBC_FN("epoll_ctl"),
	N("uv__io_poll"),
	N("uv_run"),
	N("node::SpinEventLoopInternal"),
	N("node::NodeMainInstance::Run"),
	N("node::Start"),
	LIBC_AT(0x2724a),
};

/* other threads: a V8 platform worker scavenging, a libuv pool thread
 * running crypto.pbkdf2 (the async one), a Turbofan background compile */
static const struct frame GC_WORKER[] = {
	N("v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>"),
	N("v8::internal::Scavenger::ScavengePage"),
	N("v8::internal::ScavengerCollector::JobTask::ConcurrentScavengePages"),
	N("v8::internal::ScavengerCollector::JobTask::ProcessItems"),
	N("v8::internal::ScavengerCollector::JobTask::Run"),
	N("v8::platform::DefaultJobWorker::Run"),
	N("node::(anonymous namespace)::PlatformWorkerThread"),
	LIBC_AT(0x891f5),
};

static const struct frame POOL_CRYPTO[] = {
	N("sha256_block_data_order_shaext"),
	N("sha256_internal_final"),
	N("EVP_DigestFinal_ex"),
	N("HMAC_Final"),
	N("kdf_pbkdf2_derive"),
	N("PKCS5_PBKDF2_HMAC"),
	N("node::crypto::PBKDF2Traits::DeriveBits"),
	N("node::crypto::DeriveBitsJob<node::crypto::PBKDF2Traits>::DoThreadPoolWork"),
	N("node::ThreadPoolWork::ScheduleWork()::{lambda(uv_work_s*)#1}::_FUN"),
	N("worker"),
	LIBC_AT(0x891f5),
};

static const struct frame COMPILE_WORKER[] = {
	N("std::_Deque_base<v8::internal::compiler::RepresentationSelector::NodeState, "
	  "v8::internal::RecyclingZoneAllocator<v8::internal::compiler::RepresentationSelector::"
	  "NodeState> >::_M_initialize_map"),
	N("v8::internal::compiler::SimplifiedLowering::LowerAllNodes"),
	N("v8::internal::compiler::PipelineImpl::Run<v8::internal::compiler::"
	  "SimplifiedLoweringPhase, v8::internal::compiler::Linkage*&>"),
	N("v8::internal::compiler::PipelineImpl::OptimizeGraph"),
	N("v8::internal::compiler::PipelineCompilationJob::ExecuteJobImpl"),
	N("v8::internal::OptimizedCompilationJob::ExecuteJob"),
	N("v8::internal::OptimizingCompileDispatcher::CompileNext"),
	N("v8::internal::OptimizingCompileDispatcher::CompileTask::RunInternal"),
	N("node::(anonymous namespace)::PlatformWorkerThread"),
	LIBC_AT(0x891f5),
};

/* unwinding that ran into an address in no mapping (7 kernel frames below) */
static const struct frame NODE_BROKEN[] = {
	LIBC_FN("__write"),
	UNKNOWN,
};

/* ---- CPython stacks (leaf first) -------------------------------------------------- */

/* hashlib.pbkdf2_hmac from module code (gdb) */
static const struct frame PY_PBKDF2[] = {
	CRYPTO_AT(0x29c44f),
	CRYPTO("SHA256_Final"),
	CRYPTO_AT(0x306ffb),
	CRYPTO("EVP_DigestFinal_ex"),
	CRYPTO("HMAC_Final"),
	CRYPTO_AT(0x31e42a),
	CRYPTO_AT(0x2198f4),
	CRYPTO("PKCS5_PBKDF2_HMAC"),
	{FRAME_NATIVE, "pbkdf2_hmac", HASHLIB, 0},
	PY("_PyEval_EvalFrameDefault"), /* 9 */
	PY("PyEval_EvalCode"),		/* 10 */
	PY_MAIN_ROOT,
};

/* gc.collect() (gdb) */
static const struct frame PY_GC_COLLECT[] = {
	PY("dict_traverse"),		/* 0 */
	PY("gc_collect_main"),		/* 1 */
	PY("gc_collect"),		/* 2 */
	PY("_PyEval_EvalFrameDefault"), /* 3 */
	PY("PyEval_EvalCode"),		/* 4 */
	PY_MAIN_ROOT,			/* 5.. */
};

/* list.sort(key=keyf) calling back into Python (gdb) */
static const struct frame PY_SORT_KEY[] = {
	PY("_PyObject_Malloc"),
	PY("PyFloat_FromDouble"),
	PY("_PyEval_EvalFrameDefault"), /* 2: keyf */
	PY("_PyEval_Vector"),
	PY("PyObject_CallOneArg"),
	PY("list_sort_impl"),
	PY("list_sort"),
	PY("method_vectorcall_FASTCALL_KEYWORDS"),
	PY("PyObject_Vectorcall"),
	PY("_PyEval_EvalFrameDefault"), /* 9 */
	PY("PyEval_EvalCode"),		/* 10 */
	PY_MAIN_ROOT,
};

/* a threading.Thread in hashlib.pbkdf2_hmac (gdb; clone3 below start_thread
 * left out, as frame-pointer unwinding ends at start_thread) */
static const struct frame PY_THREAD[] = {
	CRYPTO("EVP_DigestUpdate"),
	CRYPTO("HMAC_Final"),
	CRYPTO_AT(0x31e42a),
	CRYPTO_AT(0x2198f4),
	CRYPTO("PKCS5_PBKDF2_HMAC"),
	{FRAME_NATIVE, "pbkdf2_hmac", HASHLIB, 0},
	PY("cfunction_vectorcall_FASTCALL_KEYWORDS"),
	PY("PyObject_Vectorcall"),
	PY("_PyEval_EvalFrameDefault"), /* 8 */
	PY("_PyEval_Vector"),
	PY("_PyEval_EvalFrameDefault"),
	PY("_PyEval_Vector"), /* 11 */
	PY("method_vectorcall"),
	PY("thread_run"),
	PY("pythread_wrapper"),
	LIBC_AT(0x891f5),
};

/* braid record of pyenv's 3.11.7 and 3.12.1, Debian's 3.11 */
static const struct frame PY_BROKEN_EVAL[] = {
	PY("_PyEval_EvalFrameDefault"),
	UNKNOWN,
	UNKNOWN,
};
static const struct frame PY_BROKEN_GC[] = {
	PY("gc_collect_main"),
	UNKNOWN,
};
static const struct frame PY_BROKEN_VISIT[] = {
	PY("visit_decref"),
	UNKNOWN,
};
static const struct frame PY_BROKEN_CRYPTO[] = {
	CRYPTO("EVP_MD_CTX_copy_ex"),
	UNKNOWN,
	UNKNOWN,
};
static const struct frame PY_BROKEN_DEBIAN[] = {
	{FRAME_NATIVE, NULL, "/usr/bin/python3.11", 0x50bc0e},
	UNKNOWN,
};
static const struct frame PY_GC_ALONE[] = {
	{FRAME_NATIVE, "gc_collect_main", "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0",
	 0},
};

/* ---- tests --------------------------------------------------------------------- */

static void test_category_names(void **state)
{
	(void)state;
	assert_string_equal(merger__category_name(MERGER_CAT_GUEST), "guest");
	assert_string_equal(merger__category_name(MERGER_CAT_GC), "gc");
	assert_string_equal(merger__category_name(MERGER_CAT_JIT), "jit");
	assert_string_equal(merger__category_name(MERGER_CAT_IDLE), "idle");
	assert_string_equal(merger__category_name(MERGER_CAT_NATIVE), "native");
	assert_string_equal(merger__category_name(MERGER_CAT_COUNT), "unknown");
	assert_string_equal(merger__category_name((enum merger_category)(MERGER_CAT_COUNT + 1)),
			    "unknown");
}

static void test_node_js_calls_crypto(void **state)
{
	(void)state;
	/* suffix: what JS called; region: CEntry up to the JS entry; prefix:
	 * node::Start ... Invoke */
	EXPECT(RUNTIME_NODE, JS_CRYPTO, true, MERGER_CAT_GUEST, 10, 19, false);
	EXPECT_NAME(JS_CRYPTO, 9, "v8::internal::Builtin_HandleApiCall");
	EXPECT_NAME(JS_CRYPTO, 10, "Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit");
	EXPECT_NAME(JS_CRYPTO, 18, "Builtins_JSEntry");
	EXPECT_NAME(JS_CRYPTO, 19, "v8::internal::(anonymous namespace)::Invoke");
	EXPECT(RUNTIME_NODE, JS_FS_SYNC, true, MERGER_CAT_GUEST, 3, 15, false);
}

static void test_node_nested_js(void **state)
{
	(void)state;
	/* the C++ between the two JS entries is inside the region */
	EXPECT(RUNTIME_NODE, JS_NESTED, true, MERGER_CAT_GUEST, 0, 16, false);
	EXPECT_NAME(JS_NESTED, 15, "Builtins_JSEntry");
}

static void test_node_anonymous_jit(void **state)
{
	struct frame f[LEN(JS_ANON_LEAF)];

	(void)state;
	EXPECT(RUNTIME_NODE, JS_ANON_CRYPTO, true, MERGER_CAT_GUEST, 7, 16, false);
	EXPECT_NAME(JS_ANON_CRYPTO, 7, "Builtins_CallApiCallback");
	EXPECT(RUNTIME_NODE, JS_ANON_LEAF, true, MERGER_CAT_GUEST, 0, 7, false);
	/* a JIT frame named "" is the same */
	memcpy(f, JS_ANON_LEAF, sizeof(f));
	f[0].name = "";
	f[1].name = "";
	EXPECT(RUNTIME_NODE, f, true, MERGER_CAT_GUEST, 0, 7, false);
}

static void test_node_gc(void **state)
{
	(void)state;
	/* inside JS: the suffix collects */
	EXPECT(RUNTIME_NODE, GC_IN_JS, true, MERGER_CAT_GC, 15, 23, false);
	EXPECT_NAME(GC_IN_JS, 15, "Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit");
	/* from the loop, without JS: an empty region at the root */
	EXPECT(RUNTIME_NODE, GC_FROM_LOOP, true, MERGER_CAT_GC, 20, 20, false);
	EXPECT(RUNTIME_NODE, MARKING_FROM_LOOP, true, MERGER_CAT_GC, 13, 13, false);
}

static void test_node_jit(void **state)
{
	(void)state;
	EXPECT(RUNTIME_NODE, JIT_OPTIMIZE, true, MERGER_CAT_JIT, 8, 13, false);
	EXPECT(RUNTIME_NODE, JIT_EVAL, true, MERGER_CAT_JIT, 6, 15, false);
}

static void test_node_idle(void **state)
{
	(void)state;
	EXPECT(RUNTIME_NODE, IDLE_EPOLL, true, MERGER_CAT_IDLE, 1, 1, false);
	EXPECT(RUNTIME_NODE, IDLE_LOOP, true, MERGER_CAT_IDLE, 7, 7, false);
}

static void test_node_other_threads(void **state)
{
	(void)state;
	/* only the main thread runs the JS the SDK sees: every other thread is
	 * its "Non JS threads activity", whatever it does */
	EXPECT(RUNTIME_NODE, GC_WORKER, false, MERGER_CAT_NATIVE, 8, 8, false);
	EXPECT(RUNTIME_NODE, POOL_CRYPTO, false, MERGER_CAT_NATIVE, 11, 11, false);
	EXPECT(RUNTIME_NODE, COMPILE_WORKER, false, MERGER_CAT_NATIVE, 10, 10, false);
	/* JS on a worker_threads thread too */
	EXPECT(RUNTIME_NODE, JS_CRYPTO, false, MERGER_CAT_NATIVE, 29, 29, false);
	EXPECT(RUNTIME_NODE, NODE_BROKEN, false, MERGER_CAT_NATIVE, 2, 2, true);
	/* the thread, not the frames, makes them native */
	EXPECT(RUNTIME_NODE, GC_WORKER, true, MERGER_CAT_GC, 8, 8, false);
}

static void test_node_broken(void **state)
{
	/* put together: epoll_pwait as recorded, over an unmapped address */
	static const struct frame broken_idle[] = {LIBC_FN("epoll_pwait"), UNKNOWN};
	/* put together: a scavenge over an unmapped address */
	static const struct frame broken_gc[] = {
		N("v8::internal::Scavenger::ScavengePage"),
		N("v8::internal::ScavengerCollector::JobTask::ConcurrentScavengePages"), UNKNOWN,
		UNKNOWN};
	/* put together: JS over an unmapped address, the leaf in OpenSSL */
	static const struct frame broken_js[] = {
		N("PKCS5_PBKDF2_HMAC"),
		N("node::crypto::PBKDF2Traits::DeriveBits"),
		N("Builtins_CallApiCallback"),
		JS(NULL),
		UNKNOWN,
		N("uv_run"),
		UNKNOWN,
	};

	/* the collector's placeholders for a user stack it could not read
	 * (collector/collect.c): the whole user stack is replaced */
	static const struct frame lost[] = {
		{FRAME_UNKNOWN, "[lost user stack]", "[unknown]", 0},
	};

	(void)state;
	EXPECT(RUNTIME_NODE, lost, true, MERGER_CAT_GUEST, 0, 1, true);
	EXPECT(RUNTIME_NODE, lost, false, MERGER_CAT_NATIVE, 1, 1, true);
	/* a good native leaf: kept as the suffix, the rest replaced */
	EXPECT(RUNTIME_NODE, NODE_BROKEN, true, MERGER_CAT_GUEST, 1, 2, true);
	EXPECT(RUNTIME_NODE, broken_idle, true, MERGER_CAT_IDLE, 1, 2, true);
	EXPECT(RUNTIME_NODE, broken_gc, true, MERGER_CAT_GC, 2, 4, true);
	/* the region starts at the leaf-most guest frame below the first
	 * unknown one and runs to the root, good frames rootward included */
	EXPECT(RUNTIME_NODE, broken_js, true, MERGER_CAT_GUEST, 2, 7, true);
}

static void test_kernel_only(void **state)
{
	static const struct frame none[1] = {UNKNOWN};

	(void)state;
	for (int rt = 0; rt < RUNTIME_COUNT; rt++) {
		expect_ebpf((enum runtime)rt, none, 0, true, MERGER_CAT_NATIVE, 0, 0, false,
			    __LINE__);
		expect_ebpf((enum runtime)rt, NULL, 0, false, MERGER_CAT_NATIVE, 0, 0, false,
			    __LINE__);
	}
	merger__classify_ebpf(RUNTIME_NODE, JS_CRYPTO, LEN(JS_CRYPTO), true, NULL);
}

static void test_python(void **state)
{
	(void)state;
	/* a C extension leaf: the suffix is hashlib and OpenSSL */
	EXPECT(RUNTIME_PYTHON, PY_PBKDF2, true, MERGER_CAT_GUEST, 9, 11, false);
	EXPECT_NAME(PY_PBKDF2, 8, "pbkdf2_hmac");
	EXPECT_NAME(PY_PBKDF2, 11, "run_mod");
	EXPECT(RUNTIME_PYTHON, PY_GC_COLLECT, true, MERGER_CAT_GC, 3, 5, false);
	/* Python -> C (list.sort) -> Python: one region */
	EXPECT(RUNTIME_PYTHON, PY_SORT_KEY, true, MERGER_CAT_GUEST, 2, 11, false);
	/* every Python thread runs Python */
	EXPECT(RUNTIME_PYTHON, PY_THREAD, false, MERGER_CAT_GUEST, 8, 12, false);
	EXPECT_NAME(PY_THREAD, 12, "method_vectorcall");
	/* the collector with no eval loop under it */
	EXPECT(RUNTIME_PYTHON, PY_GC_ALONE, true, MERGER_CAT_GC, 1, 1, false);
}

static void test_python_broken(void **state)
{
	(void)state;
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_EVAL, true, MERGER_CAT_GUEST, 0, 3, true);
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_GC, true, MERGER_CAT_GC, 1, 2, true);
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_VISIT, true, MERGER_CAT_GC, 1, 2, true);
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_CRYPTO, true, MERGER_CAT_GUEST, 1, 3, true);
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_CRYPTO, false, MERGER_CAT_GUEST, 1, 3, true);
	/* an unnamed frame of a stripped interpreter */
	EXPECT(RUNTIME_PYTHON, PY_BROKEN_DEBIAN, true, MERGER_CAT_GUEST, 1, 2, true);
}

static void test_python_names(void **state)
{
	/* names from nm of pyenv's libpython3.8 and 3.11 (GCC clones) and
	 * python -X perf's /tmp/perf-PID.map, in stacks put together */
	static const struct frame cold[] = {PY("_PyEval_EvalFrameDefault.cold"),
					    PY("PyEval_EvalCode"), PY("run_mod")};
	static const struct frame collect38[] = {PY("collect.constprop.0"),
						 PY("collect_with_callback"),
						 PY("_PyEval_EvalFrameDefault"), PY("run_mod")};
	static const struct frame not_clones[] = {PY("_PyEval_EvalFrameDefault.foo"),
						  PY("_PyEval_EvalFrameDefaultX"), PY("collector"),
						  PY("collect.1x"), PY("run_mod")};
	static const struct frame perf_trampoline[] = {
		PY("_PyObject_Malloc"),
		{FRAME_JIT, "py::derive:/tmp/cls/p2.py", "[jit]", 0},
		PY("_PyEval_EvalFrameDefault"),
		{FRAME_JIT, "py::<module>:/tmp/cls/p2.py", "[jit]", 0},
		PY("PyEval_EvalCode"),
		PY("run_mod")};

	(void)state;
	EXPECT(RUNTIME_PYTHON, cold, true, MERGER_CAT_GUEST, 0, 2, false);
	EXPECT(RUNTIME_PYTHON, collect38, true, MERGER_CAT_GC, 2, 3, false);
	EXPECT(RUNTIME_PYTHON, not_clones, true, MERGER_CAT_NATIVE, 5, 5, false);
	EXPECT(RUNTIME_PYTHON, perf_trampoline, true, MERGER_CAT_GUEST, 1, 5, false);
}

static void test_null_and_empty_names(void **state)
{
	static const struct frame odd[] = {
		{FRAME_NATIVE, NULL, NULL, 0x10},    /* 0 */
		{FRAME_NATIVE, "", "", 0},	     /* 1 */
		{FRAME_JIT, "", "[jit]", 0},	     /* 2 */
		{FRAME_NATIVE, NULL, LIBC, 0x2724a}, /* 3 */
		{FRAME_KERNEL, NULL, NULL, 0},	     /* 4: misplaced, still no crash */
		{FRAME_UNKNOWN, "", NULL, 0},	     /* 5 */
	};

	(void)state;
	EXPECT(RUNTIME_NODE, odd, true, MERGER_CAT_GUEST, 2, 6, true);
	EXPECT(RUNTIME_PYTHON, odd, true, MERGER_CAT_GUEST, 2, 6, true);
	expect_ebpf(RUNTIME_NODE, odd, 4, true, MERGER_CAT_GUEST, 2, 3, false, __LINE__);
	expect_ebpf(RUNTIME_PYTHON, odd, 2, true, MERGER_CAT_NATIVE, 2, 2, false, __LINE__);
	EXPECT(RUNTIME_UNKNOWN, odd, true, MERGER_CAT_NATIVE, 6, 6, true);
	assert_int_equal(merger__runtime_of_frames(odd, LEN(odd)), RUNTIME_UNKNOWN);
}

/* ---- HotSpot stacks (leaf first) ---------------------------------------------------- */

/* clang-format off */
#define LIBJVM "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"
#define JVM(name)  {FRAME_NATIVE, name, LIBJVM, 0}
#define JIT	   {FRAME_JIT, NULL, "[jit]", 0}
/* clang-format on */

/* As braid record sampled `java App.java` (OpenJDK 17, the source launcher
 * calling main by reflection): compiled Java, then Deflater's JNI method in
 * libzip and zlib; the interpreter and compiled code are anonymous memory
 * ([jit]), and so is the call stub JavaCalls::call_helper enters. */
static const struct frame JVM_DEFLATE[] = {
	{FRAME_NATIVE, NULL, "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0x5f7c},
	{FRAME_NATIVE, "deflate", "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0},
	{FRAME_NATIVE, "Java_java_util_zip_Deflater_deflateBytesBytes",
	 "/usr/lib/jvm/java-17-openjdk-amd64/lib/libzip.so", 0},
	JIT, /* 3: the region's leaf end */
	JIT,
	JVM("JavaCalls::call_helper"),
	{FRAME_NATIVE, "invoke", LIBJVM, 0},
	JVM("Reflection::invoke_method"),
	JVM("JVM_InvokeMethod"),
	JIT,
	JIT,
	JIT,
	JIT,
	JIT,
	JIT,
	JIT,
	JIT, /* 16: the region's root end */
	JVM("JavaCalls::call_helper"),
	JVM("jni_invoke_static"),
	JVM("jni_CallStaticVoidMethod"),
	{FRAME_NATIVE, "JavaMain", "/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so", 0},
	{FRAME_NATIVE, "ThreadJavaMain", "/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so", 0},
	LIBC_FN("start_thread"),
	LIBC_FN("__clone3"),
};

/* compiled code that keeps no frame pointer: the unwinder's one frame */
static const struct frame JVM_JIT_ONLY[] = {JIT};

/* a G1 worker thread, and G1 collecting inside a Java thread's allocation */
static const struct frame JVM_GC_WORKER[] = {
	JVM("G1ParEvacuateFollowersClosure::do_void"),
	JVM("G1EvacuateRegionsBaseTask::work"),
	JVM("GangWorker::loop"),
	JVM("Thread::call_run"),
	JVM("thread_native_entry"),
	LIBC_FN("start_thread"),
	LIBC_FN("__clone3"),
};
static const struct frame JVM_GC_IN_JAVA[] = {
	JVM("G1CollectedHeap::do_collection_pause_at_safepoint"),
	JVM("VM_G1CollectForAllocation::doit"),
	JVM("G1CollectedHeap::attempt_allocation_slow"),
	JVM("G1CollectedHeap::mem_allocate"),
	JVM("OptoRuntime::new_array_C"),
	JIT,
	JIT,
	JVM("JavaCalls::call_helper"),
};

/* C2 compiling a method in a compiler thread */
static const struct frame JVM_C2[] = {
	JVM("PhaseIdealLoop::build_and_optimize"),
	JVM("Compile::Optimize"),
	JVM("Compile::Compile"),
	JVM("C2Compiler::compile_method"),
	JVM("CompileBroker::invoke_compiler_on_method"),
	JVM("CompileBroker::compiler_thread_loop"),
	JVM("JavaThread::thread_main_inner"),
	JVM("Thread::call_run"),
	JVM("thread_native_entry"),
	LIBC_FN("start_thread"),
	LIBC_FN("__clone3"),
};

static void test_jvm(void **state)
{
	(void)state;
	/* Java from the call stub down to the JNI method: libjvm's prefix above,
	 * zlib below; the reflection frames between two Java parts are inside */
	EXPECT(RUNTIME_JVM, JVM_DEFLATE, false, MERGER_CAT_GUEST, 3, 17, false);
	EXPECT_NAME(JVM_DEFLATE, 2, "Java_java_util_zip_Deflater_deflateBytesBytes");
	EXPECT_NAME(JVM_DEFLATE, 17, "JavaCalls::call_helper");
	EXPECT(RUNTIME_JVM, JVM_JIT_ONLY, false, MERGER_CAT_GUEST, 0, 1, false);
	EXPECT(RUNTIME_JVM, JVM_GC_WORKER, false, MERGER_CAT_GC, 7, 7, false);
	/* GC leafward of Java: the region, with GC for its category */
	EXPECT(RUNTIME_JVM, JVM_GC_IN_JAVA, false, MERGER_CAT_GC, 5, 7, false);
	EXPECT(RUNTIME_JVM, JVM_C2, false, MERGER_CAT_JIT, 11, 11, false);
	assert_int_equal(merger__runtime_of_frames(JVM_DEFLATE, LEN(JVM_DEFLATE)), RUNTIME_JVM);
	assert_int_equal(merger__runtime_of_frames(JVM_C2, LEN(JVM_C2)), RUNTIME_JVM);
}

static void test_runtimes_without_rules(void **state)
{
	static const enum runtime none[] = {RUNTIME_UNKNOWN, RUNTIME_NATIVE, RUNTIME_GO,
					    RUNTIME_RUBY,    RUNTIME_DOTNET, RUNTIME_COUNT};
	static const char *const go[] = {"main.work", "main.main", "runtime.main"};
	size_t skip;

	(void)state;
	for (size_t i = 0; i < LEN(none); i++) {
		/* the whole stack is native: nothing to replace */
		EXPECT(none[i], JS_CRYPTO, true, MERGER_CAT_NATIVE, 29, 29, false);
		EXPECT(none[i], PY_PBKDF2, true, MERGER_CAT_NATIVE, 17, 17, false);
		EXPECT(none[i], PY_BROKEN_CRYPTO, true, MERGER_CAT_NATIVE, 3, 3, true);
		/* so the SDK's stacks are guest code, which no eBPF stack is */
		assert_int_equal(sdk(none[i], go, LEN(go), &skip), MERGER_CAT_GUEST);
		assert_int_equal(skip, 0);
	}
}

/* ---- SDK stacks ------------------------------------------------------------------- */

static void test_sdk_node(void **state)
{
	/* leaf first, system names as in the Node SDK 0.6.4 push (req2) */
	static const char *const non_js[] = {"Non JS threads activity", "Node.js"};
	static const char *const idle[] = {"(idle)"};
	static const char *const js[] = {"pbkdf2Sync", "hashPassword",	"handle",
					 "tick",       "listOnTimeout", "processTimers"};
	static const char *const js_anonymous[] = {"pbkdf2Sync",
						   "hashPassword",
						   "handle",
						   "tick",
						   "(anonymous:L#1:C#1)",
						   "Module._compile",
						   "Module._extensions..js",
						   "Module.load",
						   "Module._load",
						   "executeUserEntryPoint",
						   "(anonymous:L#1:C#1)"};
	/* what updateTimeProfile() makes of V8's "(garbage collector)" */
	static const char *const gc[] = {"Garbage Collection", "Node.js"};
	static const char *const v8_gc[] = {"(garbage collector)"};
	static const char *const program[] = {"(program)"};
	static const char *const root_only[] = {"Node.js"};
	static const char *const runtime_other[] = {"(something newer)", "Node.js"};
	static const char *const odd[] = {NULL, "", "handle"};
	size_t skip;

	(void)state;
	EXPECT_SDK(RUNTIME_NODE, non_js, MERGER_CAT_NATIVE, 1);
	EXPECT_SDK(RUNTIME_NODE, idle, MERGER_CAT_IDLE, 0);
	EXPECT_SDK(RUNTIME_NODE, js, MERGER_CAT_GUEST, 0);
	EXPECT_SDK(RUNTIME_NODE, js_anonymous, MERGER_CAT_GUEST, 0);
	EXPECT_SDK(RUNTIME_NODE, gc, MERGER_CAT_GC, 1);
	EXPECT_SDK(RUNTIME_NODE, v8_gc, MERGER_CAT_GC, 0);
	EXPECT_SDK(RUNTIME_NODE, program, MERGER_CAT_NATIVE, 0);
	EXPECT_SDK(RUNTIME_NODE, root_only, MERGER_CAT_NATIVE, 1);
	EXPECT_SDK(RUNTIME_NODE, runtime_other, MERGER_CAT_NATIVE, 1);
	EXPECT_SDK(RUNTIME_NODE, odd, MERGER_CAT_GUEST, 0);
	assert_int_equal(sdk(RUNTIME_NODE, NULL, 0, &skip), MERGER_CAT_NATIVE);
	assert_int_equal(skip, 0);
	assert_int_equal(sdk(RUNTIME_NODE, odd, 1, &skip), MERGER_CAT_GUEST);
	assert_int_equal(merger__classify_sdk(RUNTIME_NODE, gc, LEN(gc), NULL), MERGER_CAT_GC);
}

static void test_sdk_python(void **state)
{
	/* py-spy frames: the function names, "<module>" for module code */
	static const char *const py[] = {"derive", "handler", "<module>"};
	/* the Node SDK's pseudo-frames mean nothing to Python */
	static const char *const node_idle[] = {"(idle)"};
	static const char *const node_root[] = {"Non JS threads activity", "Node.js"};

	(void)state;
	EXPECT_SDK(RUNTIME_PYTHON, py, MERGER_CAT_GUEST, 0);
	EXPECT_SDK(RUNTIME_PYTHON, node_idle, MERGER_CAT_GUEST, 0);
	EXPECT_SDK(RUNTIME_PYTHON, node_root, MERGER_CAT_GUEST, 0);
}

/* The real push: every stack of the Node SDK 0.6.4 profile, by category,
 * weighed by its cpu values. */
static void test_sdk_node_fixture(void **state)
{
	struct profile *p = NULL;
	struct dynbuf raw;
	struct errbuf err;
	int64_t cpu[MERGER_CAT_COUNT] = {0};
	size_t skipped = 0;
	int t;

	(void)state;
	dynbuf__init(&raw, 0);
	if (util__read_file(BRAID_FIXTURES "/node-sdk-0.6.4/req2.pprof.gz", 1 << 20, &err, &raw) <
	    0)
		fail_msg("%s", err.msg);
	if (profile__from_pprof(raw.data, raw.len, NULL, &err, &p) < 0)
		fail_msg("%s", err.msg);
	t = profile__find_sample_type(p, "cpu");
	assert_true(t >= 0);
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		struct profile_sample s = profile__sample(p, i);
		const char *names[64];
		const uint32_t *locs;
		size_t depth = profile__stack(p, s.stack, &locs), skip;
		enum merger_category c;

		assert_true(depth <= LEN(names));
		for (size_t k = 0; k < depth; k++) {
			struct profile_location l;
			const struct profile_function *fn;

			assert_int_equal(profile__location(p, locs[k], &l), 0);
			assert_true(l.n_lines > 0);
			fn = profile__function(p, l.lines[l.n_lines - 1].function);
			assert_non_null(fn);
			/* as the splice names them: the system name, else the name */
			names[k] = profile__str(p, profile__strlen(p, fn->system_name)
							   ? fn->system_name
							   : fn->name);
		}
		c = merger__classify_sdk(RUNTIME_NODE, names, depth, &skip);
		cpu[c] += s.values[t];
		skipped += skip;
	}
	assert_int_equal(cpu[MERGER_CAT_NATIVE], 8733563); /* Node.js;Non JS threads activity */
	assert_int_equal(cpu[MERGER_CAT_IDLE], 156953008);
	assert_int_equal(cpu[MERGER_CAT_GUEST], 1338927913);
	assert_int_equal(cpu[MERGER_CAT_GC], 0);
	assert_int_equal(cpu[MERGER_CAT_JIT], 0);
	assert_int_equal(skipped, 1);
	profile__free(p);
	dynbuf__free(&raw);
}

/* ---- runtimes ------------------------------------------------------------------------ */

static void test_runtime_of_spy(void **state)
{
	(void)state;
	assert_int_equal(profile__runtime_of_spy("nodespy"), RUNTIME_NODE);
	assert_int_equal(profile__runtime_of_spy("pyspy"), RUNTIME_PYTHON);
	assert_int_equal(profile__runtime_of_spy("pyroscope-rs"), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy("gospy"), RUNTIME_GO);
	assert_int_equal(profile__runtime_of_spy("rbspy"), RUNTIME_RUBY);
	assert_int_equal(profile__runtime_of_spy("dotnetspy"), RUNTIME_DOTNET);
	assert_int_equal(profile__runtime_of_spy("javaspy"), RUNTIME_JVM);
	assert_int_equal(profile__runtime_of_spy("NodeSpy"), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy("nodespy "), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy("ebpfspy"), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy("unknown"), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy(""), RUNTIME_UNKNOWN);
	assert_int_equal(profile__runtime_of_spy(NULL), RUNTIME_UNKNOWN);
}

static void test_runtime_of_frames(void **state)
{
	/* put together: a Python process calling into an embedded V8 */
	static const struct frame py_v8[] = {N("Builtins_JSEntry"), PY("_PyEval_EvalFrameDefault"),
					     PY("Py_BytesMain")};
	static const struct frame debian[] = {
		{FRAME_NATIVE, "_PyEval_EvalFrameDefault", "/usr/bin/python3.11", 0},
		UNKNOWN,
		UNKNOWN};
	static const struct frame cold[] = {
		{FRAME_NATIVE, "_PyEval_EvalFrameDefault.cold", "/usr/bin/python3.11", 0}};
	static const struct frame libpython_only[] = {
		{FRAME_NATIVE, NULL, "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", 0x1234},
		UNKNOWN};
	static const struct frame trampoline[] = {
		{FRAME_JIT, "py::derive:/tmp/cls/p2.py", "[jit]", 0}, UNKNOWN};

	(void)state;
	assert_int_equal(merger__runtime_of_frames(JS_CRYPTO, LEN(JS_CRYPTO)), RUNTIME_NODE);
	assert_int_equal(merger__runtime_of_frames(POOL_CRYPTO, LEN(POOL_CRYPTO)), RUNTIME_NODE);
	assert_int_equal(merger__runtime_of_frames(GC_WORKER, LEN(GC_WORKER)), RUNTIME_NODE);
	assert_int_equal(merger__runtime_of_frames(JS_ANON_LEAF, 7), RUNTIME_NODE);
	assert_int_equal(merger__runtime_of_frames(PY_PBKDF2, LEN(PY_PBKDF2)), RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(PY_THREAD, LEN(PY_THREAD)), RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(py_v8, LEN(py_v8)), RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(debian, LEN(debian)), RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(cold, LEN(cold)), RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(libpython_only, LEN(libpython_only)),
			 RUNTIME_PYTHON);
	assert_int_equal(merger__runtime_of_frames(trampoline, LEN(trampoline)), RUNTIME_PYTHON);
	/* nothing that tells */
	assert_int_equal(merger__runtime_of_frames(PY_BROKEN_CRYPTO, LEN(PY_BROKEN_CRYPTO)),
			 RUNTIME_UNKNOWN);
	assert_int_equal(merger__runtime_of_frames(PY_BROKEN_DEBIAN, LEN(PY_BROKEN_DEBIAN)),
			 RUNTIME_UNKNOWN);
	assert_int_equal(merger__runtime_of_frames(IDLE_EPOLL, LEN(IDLE_EPOLL)), RUNTIME_UNKNOWN);
	assert_int_equal(merger__runtime_of_frames(JS_CRYPTO, 0), RUNTIME_UNKNOWN);
	assert_int_equal(merger__runtime_of_frames(NULL, 3), RUNTIME_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_category_names),
		cmocka_unit_test(test_node_js_calls_crypto),
		cmocka_unit_test(test_node_nested_js),
		cmocka_unit_test(test_node_anonymous_jit),
		cmocka_unit_test(test_node_gc),
		cmocka_unit_test(test_node_jit),
		cmocka_unit_test(test_node_idle),
		cmocka_unit_test(test_node_other_threads),
		cmocka_unit_test(test_node_broken),
		cmocka_unit_test(test_kernel_only),
		cmocka_unit_test(test_python),
		cmocka_unit_test(test_python_broken),
		cmocka_unit_test(test_python_names),
		cmocka_unit_test(test_null_and_empty_names),
		cmocka_unit_test(test_jvm),
		cmocka_unit_test(test_runtimes_without_rules),
		cmocka_unit_test(test_sdk_node),
		cmocka_unit_test(test_sdk_python),
		cmocka_unit_test(test_sdk_node_fixture),
		cmocka_unit_test(test_runtime_of_spy),
		cmocka_unit_test(test_runtime_of_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
