/* SPDX-License-Identifier: Apache-2.0 */
/* merger/: the splice (apportioning exact and deterministic, conservation,
 * categories, broken stacks, SDK pseudo-frames, SDK profiles without a cpu
 * type) and the merge loop over a real store (every eBPF sample leaves
 * exactly once: merged, eBPF-only; SDK profiles passed through; grace,
 * settle, late and unattributed SDK profiles; the final pass). The
 * classifiers themselves are tested in test_classify.c. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "merger/merger.h"

#define PID  4242
#define T0   1700000000ll
#define NS   1000000000ll
#define FREQ 100 /* period 10 ms */

#include "merger_stacks.h"

/* ---- reading results ---------------------------------------------------------------- */

/* The folded text of p (values as they are), annotated. */
static char *folded(const struct profile *p)
{
	struct dynbuf b;
	struct profile_folded_opts o = {.annotate = true};

	dynbuf__init(&b, 0);
	assert_int_equal(profile__to_folded(p, 0, &o, &b), 0);
	assert_int_equal(dynbuf__putc(&b, '\0'), 0);
	return b.data;
}

/* Sum of the values of folded lines containing every needle, in order. */
static int64_t sum_lines(const char *text, const char *const *needles, size_t n)
{
	int64_t sum = 0;
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n'), *sp, *at = line;
		char buf[8192];
		bool all = true;

		snprintf(buf, sizeof(buf), "%.*s", (int)(end ? end - line : (long)strlen(line)),
			 line);
		sp = strrchr(buf, ' ');
		assert_non_null(sp);
		at = buf;
		for (size_t i = 0; i < n && all; i++) {
			const char *hit = strstr(at, needles[i]);

			if (!hit || hit > sp)
				all = false;
			else
				at = hit + strlen(needles[i]);
		}
		if (all)
			sum += strtoll(sp + 1, NULL, 10);
		line = end ? end + 1 : NULL;
	}
	return sum;
}

#define SUM(text, ...)                                                                             \
	sum_lines(text, (const char *const[]){__VA_ARGS__},                                        \
		  sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static int64_t total_of(const struct profile *p)
{
	int64_t t = 0;

	assert_int_equal(profile__totals(p, &t), 0);
	return t;
}

/* ---- the splice --------------------------------------------------------------------- */

struct input {
	struct stk s[64];
	struct merger_ebpf_stack e[64];
	size_t n;
};

static void in_add(struct input *in, const char *spec, int32_t tid, int64_t count)
{
	struct stk *s = &in->s[in->n];

	stk_parse(s, spec);
	in->e[in->n] = (struct merger_ebpf_stack){
		.frames = s->f, .n_frames = s->n, .tid = tid, .count = count};
	in->n++;
}

/* The splice of in's stacks with sdk for a process running runtime; with
 * lines, reading the SDK's source lines as braid's own files. */
static struct profile *splice_with(struct input *in, const struct profile *sdk,
				   enum runtime runtime, bool lines, struct merger_splice_stats *st)
{
	struct profile *out = merger__new_profile(1, 0, 0);
	struct merger_splice_input mi = {
		.runtime = runtime,
		.pid = PID,
		.stacks = in->e,
		.n_stacks = in->n,
		.sdk = sdk,
		.period = 1, /* values are sample counts */
	};

	assert_non_null(out);
	if (lines)
		assert_int_equal(merger__source_new(0, &mi.source), 0);
	assert_int_equal(merger__splice(&mi, out, st), 0);
	merger__source_free(mi.source);
	return out;
}

static struct profile *splice_rt(struct input *in, const struct profile *sdk, enum runtime runtime,
				 struct merger_splice_stats *st)
{
	return splice_with(in, sdk, runtime, false, st);
}

static struct profile *splice(struct input *in, const struct profile *sdk,
			      struct merger_splice_stats *st)
{
	return splice_rt(in, sdk, RUNTIME_NODE, st);
}

/* Largest remainder, worked by hand: 10 samples, cpu weights 3:1 give
 * quotas 7.5 and 2.5, floors 7 and 2; the slot left goes to the tie's first
 * SDK stack. The merged stack reads prefix, SDK frames, suffix, kernel. */
static void test_apportion_exact(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;

	(void)state;
	memset(&in, 0, sizeof(in));
	in_add(&in, JS_CRYPTO, PID, 10);
	sdk_add(sdk, "main;handle;hashPassword;pbkdf2Sync", 9, 90, 3000);
	sdk_add(sdk, "main;handle;fib", 1, 10, 1000);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(total_of(out), 10);
	assert_int_equal(st.samples, 10);
	assert_int_equal(st.spliced, 10);
	assert_int_equal(SUM(text, "pbkdf2Sync"), 8);
	assert_int_equal(SUM(text, ":fib:"), 2);
	/* in order: node's native prefix, the JS frames, crypto, the kernel */
	assert_int_equal(SUM(text, "node::Start;", "Invoke;", "./app.js:main:1;",
			     "./app.js:hashPassword:1;", "./app.js:pbkdf2Sync:1;",
			     "v8::internal::Builtin_HandleApiCall;",
			     "node::crypto::PBKDF2Traits::DeriveBits;PKCS5_PBKDF2_HMAC;",
			     "asm_sysvec_apic_timer_interrupt_[k]"),
			 8);
	/* the interpreter region is gone: no JIT frame, no JSEntry */
	assert_null(strstr(text, "_[j]"));
	assert_null(strstr(text, "Builtins_JSEntry"));
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* The same inputs give the same bytes; and single-sample eBPF stacks are
 * interleaved over the SDK stacks by the stride schedule, not all given to
 * the heaviest one. */
static void test_apportion_deterministic(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *a, *b;
	struct dynbuf ea, eb;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	for (int i = 0; i < 40; i++) {
		char spec[1024];

		/* forty distinct stacks: a distinct kernel leaf each */
		snprintf(spec, sizeof(spec), "%s;k:kfunc%02d", JS_PURE, i);
		in_add(&in, spec, PID, 1);
	}
	sdk_add(sdk, "main;heavy", 30, 300, 30);
	sdk_add(sdk, "main;light", 10, 100, 10);
	a = splice(&in, sdk, NULL);
	b = splice(&in, sdk, NULL);
	dynbuf__init(&ea, 0);
	dynbuf__init(&eb, 0);
	assert_int_equal(profile__to_pprof(a, false, &ea), 0);
	assert_int_equal(profile__to_pprof(b, false, &eb), 0);
	assert_int_equal(ea.len, eb.len);
	assert_memory_equal(ea.data, eb.data, ea.len);
	text = folded(a);
	assert_int_equal(SUM(text, ":heavy:"), 30);
	assert_int_equal(SUM(text, ":light:"), 10);
	/* slots: heavy at (2j+1)/60, light at (2j+1)/20: heavy, heavy (1/20
	 * ties, heavy first), light, heavy, ... so the third stack is light's */
	assert_int_equal(SUM(text, ":heavy:", "kfunc00_[k]"), 1);
	assert_int_equal(SUM(text, ":heavy:", "kfunc01_[k]"), 1);
	assert_int_equal(SUM(text, ":light:", "kfunc02_[k]"), 1);
	/* every fourth stack, about, is light's: spread over the window */
	assert_int_equal(SUM(text, ":light:", "kfunc3"), 3);
	free(text);
	dynbuf__free(&ea);
	dynbuf__free(&eb);
	profile__free(a);
	profile__free(b);
	profile__free(sdk);
}

/* Without SDK data every stack keeps its eBPF frames, JIT frames included. */
static void test_no_sdk(void **state)
{
	static struct input in;
	struct merger_splice_stats st;
	struct profile *out;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, JS_CRYPTO, PID, 4);
	in_add(&in, WORKER, PID + 1, 3);
	out = splice(&in, NULL, &st);
	text = folded(out);
	assert_int_equal(total_of(out), 7);
	assert_int_equal(st.spliced, 0);
	assert_int_equal(st.kept[MERGER_CAT_GUEST], 4);
	assert_int_equal(st.kept[MERGER_CAT_NATIVE], 3);
	assert_int_equal(SUM(text, "Builtins_JSEntry;", "_[j];", "PKCS5_PBKDF2_HMAC;"), 4);
	assert_int_equal(SUM(text, "clone3;start_thread;"), 3);
	free(text);
	profile__free(out);
}

/* An SDK profile with samples and wall but no cpu type is weighed by its
 * samples (not its wall time). */
static void test_sdk_without_cpu(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(false), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, JS_PURE, PID, 12);
	/* by samples 3:1; by wall it would be 1:3 */
	sdk_add(sdk, "main;bySamples", 3, 10, 0);
	sdk_add(sdk, "main;byWall", 1, 30, 0);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.sdk_type, profile__find_sample_type(sdk, "samples"));
	assert_int_equal(SUM(text, ":bySamples:"), 9);
	assert_int_equal(SUM(text, ":byWall:"), 3);
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* Categories on both sides: a GC sample inside JS gets the SDK's GC frame,
 * a thread-pool sample the SDK's "Non JS threads activity" at its root, an
 * event-loop sample the SDK's (idle); JS never takes them. The "Node.js"
 * pseudo root is left out. */
static void test_categories_and_pseudo_frames(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, JS_PURE, PID, 20);
	in_add(&in, GC_IN_JS, PID, 5);
	in_add(&in, WORKER, PID + 7, 6);
	in_add(&in, IDLE, PID, 2);
	sdk_add(sdk, "main;fib", 10, 100, 500);
	sdk_add(sdk, "Node.js;Garbage Collection", 0, 0, 40);
	sdk_add(sdk, "Node.js;Non JS threads activity", 0, 0, 70);
	sdk_add(sdk, "(idle)", 3, 0, 20);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(total_of(out), 33);
	assert_int_equal(st.by_category[MERGER_CAT_GUEST], 20);
	assert_int_equal(st.by_category[MERGER_CAT_GC], 5);
	assert_int_equal(st.by_category[MERGER_CAT_NATIVE], 6);
	assert_int_equal(st.by_category[MERGER_CAT_IDLE], 2);
	assert_int_equal(st.spliced, 33);
	assert_int_equal(SUM(text, ":fib:"), 20);
	/* GC: the JS region became the SDK's GC frame; the GC frames stay */
	assert_int_equal(SUM(text, "Invoke;:Garbage Collection:0;",
			     "v8::internal::ScavengerCollector::CollectGarbage"),
			 5);
	/* the worker thread: the SDK's pseudo-frame above the whole stack */
	assert_int_equal(SUM(text, ":Non JS threads activity:0;clone3;start_thread;"), 6);
	assert_int_equal(SUM(text, ":(idle):0;__libc_start_main;", "do_epoll_wait_[k]"), 2);
	assert_null(strstr(text, ":Node.js:"));
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* A category the SDK has no weight in keeps its eBPF frames. */
static void test_category_without_sdk_weight(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, JS_PURE, PID, 3);
	in_add(&in, WORKER, PID + 1, 4);
	sdk_add(sdk, "main;fib", 1, 1, 1);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.spliced, 3);
	assert_int_equal(st.kept[MERGER_CAT_NATIVE], 4);
	assert_int_equal(SUM(text, "clone3;start_thread;uv__thread_start;worker;"), 4);
	assert_null(strstr(text, "Non JS threads"));
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* GC inside JS when the SDK has no GC weight (V8's profiler counts it to
 * the JS stack that allocated): shared among the JS stacks, the GC frames
 * kept leafward of them. */
static void test_gc_without_sdk_gc(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, GC_IN_JS, PID, 4);
	sdk_add(sdk, "main;allocate", 1, 1, 1);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.by_category[MERGER_CAT_GC], 4);
	assert_int_equal(st.to_guest, 4);
	assert_int_equal(st.spliced, 4);
	assert_int_equal(SUM(text, "Invoke;./app.js:main:1;./app.js:allocate:1;",
			     "v8::internal::Runtime_AllocateInYoungGeneration;",
			     "v8::internal::ScavengerCollector::CollectGarbage"),
			 4);
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* Native calls: V8 shows crypto's native `run` as a file-less leaf under
 * hashPassword. The eBPF stacks that went through V8's API call (JS_CRYPTO)
 * go to that SDK stack only, pure JS to the others; without SDK native
 * leaves they are shared by all guest stacks, as before. */
static void test_native_calls(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, JS_CRYPTO, PID, 6);
	in_add(&in, JS_PURE, PID, 10);
	/* the SDK's weights would give crypto 1/4 of the JS time, pureJs 3/4 */
	sdk_add(sdk, "main;handle;hashPassword;pbkdf2Sync;@run", 1, 1, 100);
	sdk_add(sdk, "main;handle;pureJs", 1, 1, 300);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.spliced, 16);
	assert_int_equal(SUM(text, "./app.js:hashPassword:1;./app.js:pbkdf2Sync:1;:run:0;",
			     "PKCS5_PBKDF2_HMAC"),
			 6);
	assert_int_equal(SUM(text, "./app.js:pureJs:1"), 10);
	assert_int_equal(SUM(text, "./app.js:pureJs:1;", "PKCS5_PBKDF2_HMAC"), 0);
	free(text);
	profile__free(out);

	/* the same without the native leaf: 16 samples shared 1:3 */
	profile__free(sdk);
	sdk = sdk_new(true);
	sdk_add(sdk, "main;handle;hashPassword;pbkdf2Sync", 1, 1, 100);
	sdk_add(sdk, "main;handle;pureJs", 1, 1, 300);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(SUM(text, "./app.js:hashPassword:1"), 4);
	assert_int_equal(SUM(text, "./app.js:pureJs:1"), 12);
	free(text);
	profile__free(out);

	/* only native-call weight in the SDK: pure JS samples go there too */
	profile__free(sdk);
	sdk = sdk_new(true);
	sdk_add(sdk, "main;handle;hashPassword;@run", 1, 1, 100);
	out = splice(&in, sdk, &st);
	assert_int_equal(st.spliced, 16);
	profile__free(out);
	profile__free(sdk);
}

/* Native calls by name (Node.js): V8's profiler names the native leaf after
 * the C++ callback JS called (":run:0" for CryptoJob<...>::Run,
 * ":writeFileUtf8:0" for node::fs::WriteFileUtf8), so each callback's eBPF
 * samples go to the SDK stacks ending in its name. The SDK weighs the two
 * leaves alike here; shared by weight, half of OpenSSL's samples would land
 * under writeAuditRecord, as bench/peer.sh found. */
static void test_node_api_calls(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in,
	       NODE_ROOT
	       ";j:;j:;n:Builtins_CallApiCallbackOptimizedNoProfiling;"
	       "n:v8::internal::InvokeFunctionCallback(v8::FunctionCallbackInfo<v8::Value> "
	       "const&);n:node::crypto::CryptoJob<node::crypto::PBKDF2Traits>::Run;"
	       "n:node::crypto::PBKDF2Traits::DeriveBits;n:PKCS5_PBKDF2_HMAC",
	       PID, 18);
	in_add(&in,
	       NODE_ROOT
	       ";j:;j:;n:Builtins_CallApiCallbackOptimizedNoProfiling;"
	       "n:v8::internal::InvokeFunctionCallback(v8::FunctionCallbackInfo<v8::Value> "
	       "const&);n:node::fs::WriteFileUtf8;n:uv_fs_write;n:__write;k:ksys_write",
	       PID, 2);
	in_add(&in, JS_PURE, PID, 10);
	sdk_add(sdk, "main;handle;hashPassword;pbkdf2Sync;@run", 1, 1, 100);
	sdk_add(sdk, "main;handle;writeAuditRecord;writeFileSync;@writeFileUtf8", 1, 1, 100);
	sdk_add(sdk, "main;handle;pureJs", 1, 1, 300);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.spliced, 30);
	assert_int_equal(st.native_call_samples, 20);
	assert_int_equal(SUM(text, "./app.js:hashPassword:1;./app.js:pbkdf2Sync:1;:run:0;",
			     "PKCS5_PBKDF2_HMAC"),
			 18);
	assert_int_equal(SUM(text, "./app.js:writeAuditRecord:1;", "PKCS5_PBKDF2_HMAC"), 0);
	assert_int_equal(SUM(text,
			     "./app.js:writeAuditRecord:1;./app.js:writeFileSync:1;"
			     ":writeFileUtf8:0;",
			     "ksys_write"),
			 2);
	assert_int_equal(SUM(text, "./app.js:pureJs:1"), 10);
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* The label set {thread_id: tp} (a string, as pyroscope-io writes it),
 * plus route when not NULL. */
static uint32_t thread_labels(struct profile *p, uint64_t tp, const char *route)
{
	struct profile_label l[2] = {{0}};
	char v[24];
	uint32_t set;

	snprintf(v, sizeof(v), "%llu", (unsigned long long)tp);
	assert_int_equal(profile__intern_cstr(p, "thread_id", &l[0].key), 0);
	assert_int_equal(profile__intern_cstr(p, v, &l[0].str), 0);
	if (route) {
		assert_int_equal(profile__intern_cstr(p, "route", &l[1].key), 0);
		assert_int_equal(profile__intern_cstr(p, route, &l[1].str), 0);
	}
	assert_int_equal(profile__add_labels(p, l, route ? 2 : 1, &set), 0);
	return set;
}

#define PY_ROOT	   "n:_start;n:Py_BytesMain;n:Py_RunMain;n:_PyEval_EvalFrameDefault"
#define PY_THREAD  "n:__clone3;n:start_thread;n:thread_run;n:_PyEval_EvalFrameDefault"
#define TP_MAIN	   0x7f0000001000ull
#define TP_HASHER  0x7f0000002000ull
#define TP_UNNAMED 0x7f0000003000ull /* a thread the SDK did not sample */
#define TP_GONE	   0x7f0000004000ull /* one eBPF did not */

/* Python threads: each thread's eBPF samples go to its own SDK stacks, by
 * the SDK's thread_id and the samples' thread pointer. Without them, the
 * hasher's OpenSSL time would be spread over the main thread's stacks too. */
static void test_python_threads(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, PY_THREAD ";n:pbkdf2_hmac;n:PKCS5_PBKDF2_HMAC", PID + 1, 30);
	in.e[in.n - 1].thread_pointer = TP_HASHER;
	in_add(&in, PY_ROOT ";n:PyObject_Str", PID, 60);
	in.e[in.n - 1].thread_pointer = TP_MAIN;
	in_add(&in, PY_THREAD, PID + 2, 5);
	in.e[in.n - 1].thread_pointer = TP_UNNAMED;
	/* the main thread weighs 6 times the hasher on the SDK side: shared by
	 * weight alone, 26 of the 30 OpenSSL samples would go to render_page */
	sdk_add_labelled(sdk, "main;render_page", 1, 1, 600, thread_labels(sdk, TP_MAIN, "/a"));
	sdk_add_labelled(sdk, "main;render_page", 1, 1, 100, thread_labels(sdk, TP_MAIN, "/b"));
	sdk_add_labelled(sdk, "hasher;hash_password", 1, 1, 100,
			 thread_labels(sdk, TP_HASHER, NULL));
	sdk_add_labelled(sdk, "poller;poll", 1, 1, 50, thread_labels(sdk, TP_GONE, NULL));
	out = splice_rt(&in, sdk, RUNTIME_PYTHON, &st);
	text = folded(out);
	assert_int_equal(st.samples, 95);
	assert_int_equal(st.spliced, 95);
	assert_int_equal(st.thread_groups, 2);
	assert_int_equal(st.thread_samples, 90);
	assert_int_equal(SUM(text, "./app.js:hash_password:1;", "PKCS5_PBKDF2_HMAC"), 30);
	assert_int_equal(SUM(text, "./app.js:render_page:1;", "PyObject_Str"), 60);
	assert_int_equal(SUM(text, "PKCS5_PBKDF2_HMAC"), 30);
	/* unmatched threads share among the unmatched SDK stacks */
	assert_int_equal(SUM(text, "./app.js:poll:1"), 5);
	assert_int_equal(total_of(out), 95);
	free(text);
	profile__free(out);

	/* the same SDK profile without a thread label: by weight alone */
	profile__free(sdk);
	sdk = sdk_new(true);
	sdk_add(sdk, "main;render_page", 1, 1, 700);
	sdk_add(sdk, "hasher;hash_password", 1, 1, 100);
	sdk_add(sdk, "poller;poll", 1, 1, 50);
	out = splice_rt(&in, sdk, RUNTIME_PYTHON, &st);
	text = folded(out);
	assert_int_equal(st.thread_groups, 0);
	assert_int_equal(st.thread_samples, 0);
	assert_int_equal(SUM(text, "./app.js:hash_password:1"), 11); /* 95 * 100 / 850 */
	assert_true(SUM(text, "./app.js:render_page:1;", "PKCS5_PBKDF2_HMAC") > 20);
	free(text);
	profile__free(out);

	/* a thread the SDK names whose every sample eBPF saw elsewhere: the
	 * hasher's samples go to the unmatched group, which has no weight
	 * either (all of the SDK's threads matched), and keep their frames */
	profile__free(sdk);
	sdk = sdk_new(true);
	sdk_add_labelled(sdk, "main;render_page", 1, 1, 700, thread_labels(sdk, TP_MAIN, NULL));
	out = splice_rt(&in, sdk, RUNTIME_PYTHON, &st);
	text = folded(out);
	assert_int_equal(st.thread_groups, 1);
	assert_int_equal(st.thread_samples, 60);
	assert_int_equal(st.spliced, 60);
	assert_int_equal(st.kept[MERGER_CAT_GUEST], 35);
	assert_int_equal(SUM(text, "./app.js:render_page:1;", "PKCS5_PBKDF2_HMAC"), 0);
	assert_int_equal(SUM(text, "thread_run;_PyEval_EvalFrameDefault;pbkdf2_hmac"), 30);
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* A py-spy-like SDK stack: "name:LINE;name:LINE" root first, in file path,
 * with cpu weight (and samples 1, wall = cpu) and label set `set`. */
static void sdk_add_py_set(struct profile *p, const char *path, const char *spec, int64_t cpu,
			   uint32_t set)
{
	uint32_t locs[32];
	size_t n = 0;
	int64_t values[3] = {1, cpu, cpu};
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		struct profile_function f = {0};
		struct profile_line line = {0};
		struct profile_location l = {.n_lines = 1, .lines = &line};
		char *colon = strchr(t, ':');

		assert_non_null(colon);
		*colon = '\0';
		assert_int_equal(profile__intern_cstr(p, t, &f.name), 0);
		assert_int_equal(profile__intern_cstr(p, path, &f.filename), 0);
		assert_int_equal(profile__add_function(p, &f, &line.function), 0);
		line.line = strtoll(colon + 1, NULL, 10);
		assert_int_equal(profile__add_location(p, &l, &locs[n++]), 0);
	}
	sdk_add_stack(p, locs, n, values, set);
}

static void sdk_add_py(struct profile *p, const char *path, const char *spec, int64_t cpu)
{
	sdk_add_py_set(p, path, spec, cpu, 0);
}

static struct profile *splice_py(struct input *in, const struct profile *sdk,
				 struct merger_splice_stats *st)
{
	return splice_with(in, sdk, RUNTIME_PYTHON, true, st);
}

/* Writes text as DIR/app.py in a new temporary directory: dir gets the
 * directory, path the file. */
static void py_file(char *dir, char *path, size_t size, const char *text)
{
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, size, "%s/app.py", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Native calls by name, within one thread: the SDK's lines say which Python
 * function calls os.pwrite and which hashlib.pbkdf2_hmac, and the eBPF
 * stacks below those C functions go to them alone; the rest of the thread's
 * samples go by weight to the other stacks. */
static void test_python_native_calls(void **state)
{
	static struct input in;
	char dir[] = "/tmp/braid-test-py.XXXXXX", path[64], *text;
	struct profile *sdk, *out;
	struct merger_splice_stats st;
	(void)state;

	py_file(dir, path, sizeof(path),
		"import hashlib, os\n"					    /* 1 */
		"def hash_password():\n"				    /* 2 */
		"    return hashlib.pbkdf2_hmac('sha256', b'p', b's', 9)\n" /* 3 */
		"def write_audit(fd):\n"				    /* 4 */
		"    os.pwrite(fd, b'x' * 64, 0)  # not write( here\n"	    /* 5 */
		"def render():\n"					    /* 6 */
		"    return sum(len(str(i)) for i in range(9))\n"	    /* 7 */
		"main()\n" /* 8 */);

	memset(&in, 0, sizeof(in));
	in_add(&in,
	       PY_ROOT ";n:cfunction_vectorcall_FASTCALL_KEYWORDS;n:pbkdf2_hmac;"
		       "n:pbkdf2_hmac_impl;n:PKCS5_PBKDF2_HMAC",
	       PID, 40);
	in_add(&in,
	       PY_ROOT ";n:cfunction_vectorcall_FASTCALL;n:os_pwrite;n:__libc_pwrite64;"
		       "k:entry_SYSCALL_64;k:vfs_write",
	       PID, 10);
	in_add(&in, PY_ROOT ";n:PyObject_Str;n:long_to_decimal_string", PID, 30);
	in_add(&in, PY_ROOT, PID, 20);
	sdk = sdk_new(true);
	/* by weight alone, each would get a third of every eBPF stack */
	sdk_add_py(sdk, path, "<module>:8;hash_password:3", 100);
	sdk_add_py(sdk, path, "<module>:8;write_audit:5", 100);
	sdk_add_py(sdk, path, "<module>:8;render:7", 100);
	out = splice_py(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.spliced, 100);
	assert_int_equal(st.native_calls, 3); /* pbkdf2_hmac, pwrite, str */
	assert_int_equal(st.native_call_samples, 80);
	assert_int_equal(SUM(text, "hash_password;", "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(SUM(text, "write_audit;", "vfs_write"), 10);
	assert_int_equal(SUM(text, "render;", "long_to_decimal_string"), 30);
	/* the pure interpreter's samples: the lines not in a native call
	 * would have none left, so every stack keeps sharing them */
	assert_int_equal(SUM(text, "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(total_of(out), 100);
	free(text);
	profile__free(out);

	/* a symbolic link to the file is not followed: the names come from a
	 * push, and braid reads as root */
	{
		char link[80];
		struct profile *sdk2 = sdk_new(true);

		snprintf(link, sizeof(link), "%s/link.py", dir);
		assert_int_equal(symlink(path, link), 0);
		sdk_add_py(sdk2, link, "<module>:8;hash_password:3", 100);
		sdk_add_py(sdk2, link, "<module>:8;write_audit:5", 100);
		sdk_add_py(sdk2, link, "<module>:8;render:7", 100);
		out = splice_py(&in, sdk2, &st);
		assert_int_equal(st.native_call_samples, 0);
		assert_int_equal(total_of(out), 100);
		profile__free(out);
		profile__free(sdk2);
		assert_int_equal(unlink(link), 0);
	}

	/* without the file: by weight, as before */
	assert_int_equal(unlink(path), 0);
	out = splice_py(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.native_call_samples, 0);
	assert_true(SUM(text, "render;", "PKCS5_PBKDF2_HMAC") > 10);
	assert_int_equal(total_of(out), 100);
	free(text);
	profile__free(out);
	profile__free(sdk);
	assert_int_equal(rmdir(dir), 0);
}

/* A broken stack (no frame pointers: unwinding ended in no mapping) keeps
 * its good leaf frames under the SDK's; the garbage above them goes. */
/* The value of out's samples whose label `key` is `value` (NULL: without
 * the key) and whose stack has a frame named `frame` (NULL: any). */
static int64_t sum_labelled(const struct profile *out, const char *key, const char *value,
			    const char *frame)
{
	int64_t sum = 0;

	for (size_t i = 0; i < profile__n_samples(out); i++) {
		struct profile_sample s = profile__sample(out, i);
		const struct profile_label *ls;
		const uint32_t *locs;
		size_t nl = profile__labels(out, s.labels, &ls), depth;
		const char *got = NULL;
		bool has = !frame;

		for (size_t k = 0; k < nl; k++)
			if (strcmp(profile__str(out, ls[k].key), key) == 0)
				got = profile__str(out, ls[k].str);
		if (value ? !got || strcmp(got, value) != 0 : got != NULL)
			continue;
		depth = profile__stack(out, s.stack, &locs);
		for (size_t k = 0; k < depth && !has; k++) {
			struct profile_location l;

			assert_int_equal(profile__location(out, locs[k], &l), 0);
			has = l.n_lines &&
			      strstr(profile__str(
					     out,
					     profile__function(out, l.lines[0].function)->name),
				     frame);
		}
		if (has)
			sum += s.values[0];
	}
	return sum;
}

/* A Python splice with the stacks remembered from earlier profiles
 * (reserve, NULL: none); *reserve_out (when not NULL) gets what the next
 * splice remembers. */
static struct profile *splice_remembering(struct input *in, const struct profile *sdk,
					  const struct profile *reserve,
					  struct profile **reserve_out,
					  struct merger_splice_stats *st)
{
	struct profile *out = merger__new_profile(1, 0, 0);
	struct merger_splice_input mi = {
		.runtime = RUNTIME_PYTHON,
		.pid = PID,
		.stacks = in->e,
		.n_stacks = in->n,
		.sdk = sdk,
		.period = 1,
		.reserve = reserve,
	};

	assert_non_null(out);
	if (reserve_out) {
		*reserve_out = profile__new();
		assert_non_null(*reserve_out);
		mi.reserve_out = *reserve_out;
	}
	assert_int_equal(merger__source_new(0, &mi.source), 0);
	assert_int_equal(merger__splice(&mi, out, st), 0);
	merger__source_free(mi.source);
	return out;
}

/* py-spy samples only the thread holding the GIL (the Python SDK's
 * gil_only), and pbkdf2_hmac releases it: a profile can lack every stack
 * that calls it while eBPF has samples in it. The stacks an earlier profile
 * showed calling it stand for it then, with their labels, on the thread
 * they name; a profile that has such a stack again uses its own. */
static void test_python_remembered(void **state)
{
	static struct input in;
	char dir[] = "/tmp/braid-test-py.XXXXXX", path[64], *text;
	struct profile *sdk, *out, *kept = NULL, *kept2 = NULL, *kept3 = NULL;
	struct merger_splice_stats st;
	(void)state;

	py_file(dir, path, sizeof(path),
		"import hashlib, os\n"					    /* 1 */
		"def hash_password():\n"				    /* 2 */
		"    return hashlib.pbkdf2_hmac('sha256', b'p', b's', 9)\n" /* 3 */
		"def render():\n"					    /* 4 */
		"    return sum(len(str(i)) for i in range(9))\n"	    /* 5 */
		"main()\n" /* 6 */);

	memset(&in, 0, sizeof(in));
	in_add(&in,
	       PY_THREAD ";n:cfunction_vectorcall_FASTCALL_KEYWORDS;n:pbkdf2_hmac;"
			 "n:pbkdf2_hmac_impl;n:PKCS5_PBKDF2_HMAC",
	       PID + 1, 40);
	in.e[in.n - 1].thread_pointer = TP_HASHER;
	in_add(&in, PY_ROOT ";n:PyObject_Str;n:long_to_decimal_string", PID, 30);
	in.e[in.n - 1].thread_pointer = TP_MAIN;
	in_add(&in, PY_ROOT, PID, 20);
	in.e[in.n - 1].thread_pointer = TP_MAIN;

	/* 1: the SDK caught the hasher in Python once */
	sdk = sdk_new(true);
	sdk_add_py_set(sdk, path, "<module>:6;render:5", 100, thread_labels(sdk, TP_MAIN, "/a"));
	sdk_add_py_set(sdk, path, "<thread>:6;hash_password:3", 1,
		       thread_labels(sdk, TP_HASHER, "/login"));
	out = splice_remembering(&in, sdk, NULL, &kept, &st);
	text = folded(out);
	assert_int_equal(SUM(text, "hash_password;", "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(st.remembered_samples, 0);
	assert_int_equal(profile__n_samples(kept), 2);
	free(text);
	profile__free(out);
	profile__free(sdk);

	/* 2: it did not: without what 1 showed, the hasher's samples keep
	 * their eBPF frames (no SDK stack of its thread, none unmatched) */
	sdk = sdk_new(true);
	sdk_add_py_set(sdk, path, "<module>:6;render:5", 100, thread_labels(sdk, TP_MAIN, "/a"));
	out = splice_remembering(&in, sdk, NULL, NULL, &st);
	text = folded(out);
	assert_int_equal(SUM(text, "hash_password;"), 0);
	assert_int_equal(st.kept[MERGER_CAT_GUEST], 40);
	free(text);
	profile__free(out);

	/* ... with it, they go to the remembered stack, its labels and not
	 * the mark; the main thread's samples stay with its own stacks */
	out = splice_remembering(&in, sdk, kept, &kept2, &st);
	text = folded(out);
	assert_int_equal(st.samples, 90);
	assert_int_equal(st.spliced, 90);
	assert_int_equal(st.remembered_samples, 40);
	assert_int_equal(SUM(text, "hash_password;", "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(SUM(text, "render"), 50);
	assert_int_equal(sum_labelled(out, "route", "/login", "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(sum_labelled(out, "braid.remembered", NULL, NULL), 90);
	assert_int_equal(total_of(out), 90);
	/* the remembered caller of pbkdf2_hmac stays, render is this one's */
	assert_int_equal(profile__n_samples(kept2), 2);
	free(text);
	profile__free(out);
	profile__free(sdk);

	/* 3: a profile with its own caller uses it, not the remembered one */
	sdk = sdk_new(true);
	sdk_add_py_set(sdk, path, "<module>:6;render:5", 100, thread_labels(sdk, TP_MAIN, "/a"));
	sdk_add_py_set(sdk, path, "<thread>:6;hash_password:3", 2,
		       thread_labels(sdk, TP_HASHER, "/signup"));
	out = splice_remembering(&in, sdk, kept2, &kept3, &st);
	assert_int_equal(st.remembered_samples, 0);
	assert_int_equal(sum_labelled(out, "route", "/signup", "PKCS5_PBKDF2_HMAC"), 40);
	assert_int_equal(sum_labelled(out, "route", "/login", NULL), 0);
	assert_int_equal(profile__n_samples(kept3), 2);
	profile__free(out);
	profile__free(sdk);

	/* a reserve of other sample types is left out */
	sdk = sdk_new(false);
	sdk_add_py(sdk, path, "<module>:6;render:5", 100);
	out = splice_remembering(&in, sdk, kept3, NULL, &st);
	assert_int_equal(st.remembered_samples, 0);
	assert_int_equal(total_of(out), 90);
	profile__free(out);
	profile__free(sdk);

	profile__free(kept);
	profile__free(kept2);
	profile__free(kept3);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Merged samples carry their SDK sample's labels (issue: dynamic tags on
 * merged stacks): two routes, one hashing (OpenSSL through V8's API call),
 * one pure JS, each wrapped in its own label by the SDK. Every OpenSSL sample
 * goes to the hashing route's stacks and carries its label; the pure JS
 * samples carry the other route's; a stack the SDK has under both routes
 * shares its samples between them by weight; nothing is lost. */
static void test_labels_on_merged(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	struct profile_label l = {0};
	uint32_t login, page, both_login, both_page;
	(void)state;

	assert_int_equal(profile__intern_cstr(sdk, "route", &l.key), 0);
	assert_int_equal(profile__intern_cstr(sdk, "/login", &l.str), 0);
	assert_int_equal(profile__add_labels(sdk, &l, 1, &login), 0);
	assert_int_equal(profile__intern_cstr(sdk, "/page", &l.str), 0);
	assert_int_equal(profile__add_labels(sdk, &l, 1, &page), 0);
	both_login = login;
	both_page = page;
	memset(&in, 0, sizeof(in));
	in_add(&in, JS_CRYPTO, PID, 60);
	in_add(&in, JS_PURE, PID, 40);
	sdk_add_labelled(sdk, "main;handle;hashPassword;pbkdf2Sync;@run", 1, 1, 300, login);
	sdk_add_labelled(sdk, "main;handle;pureJs", 1, 1, 200, page);
	/* the same JS stack under both routes, 1:3 */
	sdk_add_labelled(sdk, "main;handle;render", 1, 1, 50, both_login);
	sdk_add_labelled(sdk, "main;handle;render", 1, 1, 150, both_page);
	out = splice(&in, sdk, &st);
	assert_int_equal(total_of(out), 100);
	assert_int_equal(st.spliced, 100);
	/* OpenSSL: all of it under the hashing route */
	assert_int_equal(sum_labelled(out, "route", "/login", "PKCS5_PBKDF2_HMAC"), 60);
	assert_int_equal(sum_labelled(out, "route", "/page", "PKCS5_PBKDF2_HMAC"), 0);
	/* pure JS (40 samples by weight 200 : 50 : 150): pureJs 20, render 20
	 * split 5 : 15 by route */
	assert_int_equal(sum_labelled(out, "route", "/page", "pureJs"), 20);
	assert_int_equal(sum_labelled(out, "route", "/login", "render"), 5);
	assert_int_equal(sum_labelled(out, "route", "/page", "render"), 15);
	assert_int_equal(sum_labelled(out, "route", NULL, NULL), 0); /* every sample has one */
	profile__free(out);
	profile__free(sdk);
}

/* A Go-SDK-like sample: locations root first, "inner|outer" for a location
 * whose first function was inlined into the second (pprof's lines, the
 * inlined first); cpu weight w, label set ls. */
static void go_add(struct profile *p, const char *spec, int64_t w, uint32_t ls)
{
	uint32_t locs[64];
	size_t n = 0;
	int64_t values[3] = {w / 10, w, w};
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		struct profile_line lines[2] = {{0}};
		struct profile_location l = {.n_lines = 0, .lines = lines};
		char *bar = strchr(t, '|'), *names[2] = {t, bar ? bar + 1 : NULL};

		if (bar)
			*bar = '\0';
		for (int k = 0; k < 2 && names[k]; k++) {
			struct profile_function f = {0};

			assert_int_equal(profile__intern_cstr(p, names[k], &f.name), 0);
			assert_int_equal(profile__intern_cstr(p, names[k], &f.system_name), 0);
			assert_int_equal(profile__add_function(p, &f, &lines[k].function), 0);
			l.n_lines++;
		}
		assert_int_equal(profile__add_location(p, &l, &locs[n++]), 0);
	}
	sdk_add_stack(p, locs, n, values, ls);
}

/* Go: eBPF names Go's code itself, so nothing is spliced. Each eBPF stack
 * keeps every frame and takes the labels of the SDK stacks that agree with
 * it from the root: by the function each SDK location stands for (the one
 * others were inlined into), past eBPF's runtime.goexit root and Go's
 * ".abi0" names, down to where a frame-pointer unwind missed a frame; the
 * kernel's frames under a labelled function keep its label. */
static void test_go_match(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	struct profile_label l = {0};
	uint32_t login, page;
	(void)state;

	assert_int_equal(profile__intern_cstr(sdk, "route", &l.key), 0);
	assert_int_equal(profile__intern_cstr(sdk, "/login", &l.str), 0);
	assert_int_equal(profile__add_labels(sdk, &l, 1, &login), 0);
	assert_int_equal(profile__intern_cstr(sdk, "/page", &l.str), 0);
	assert_int_equal(profile__add_labels(sdk, &l, 1, &page), 0);
#define GO_MAIN "runtime.main;pyroscope-go.TagWrapper|main.main;runtime/pprof.Do"
	go_add(sdk,
	       GO_MAIN ";main.writeAudit;os.(*File).pwrite|os.(*File).WriteAt;syscall.Syscall6", 30,
	       login);
	go_add(sdk, GO_MAIN ";main.renderPage;slices.Sort|sort.Ints", 10, page);
	go_add(sdk, GO_MAIN ";main.shared", 10, login);
	go_add(sdk, GO_MAIN ";main.shared", 30, page);
	go_add(sdk, "runtime.gcBgMarkWorker", 5, 0);
	memset(&in, 0, sizeof(in));
#define GO_EBPF "n:runtime.goexit.abi0;n:runtime.main;n:main.main;n:runtime/pprof.Do"
	in_add(&in,
	       GO_EBPF ";n:main.writeAudit;n:os.(*File).WriteAt;n:syscall.Syscall6;"
		       "k:entry_SYSCALL_64;k:vfs_write",
	       PID, 20);
	/* the unwind missed WriteAt: the walk stops at writeAudit */
	in_add(&in, GO_EBPF ";n:main.writeAudit;n:syscall.Syscall6.abi0", PID, 4);
	in_add(&in, GO_EBPF ";n:main.renderPage;n:sort.Ints", PID, 8);
	in_add(&in, GO_EBPF ";n:main.shared", PID, 8);
	in_add(&in, "n:runtime.goexit.abi0;n:runtime.gcBgMarkWorker", PID, 3);
	in_add(&in, "n:start_thread;n:cgo_worker", PID + 1, 5);
	out = splice_rt(&in, sdk, RUNTIME_GO, &st);
	assert_int_equal(total_of(out), 48);
	assert_int_equal(st.samples, 48);
	assert_int_equal(st.match_exact, 20 + 8 + 8 + 3);
	assert_int_equal(st.match_partial, 4);
	assert_int_equal(st.match_none, 5);
	/* the kernel's write under writeAudit: all /login */
	assert_int_equal(sum_labelled(out, "route", "/login", "vfs_write"), 20);
	assert_int_equal(sum_labelled(out, "route", "/login", "main.writeAudit"), 24);
	assert_int_equal(sum_labelled(out, "route", "/page", "main.renderPage"), 8);
	/* a stack under both routes, 10 : 30 */
	assert_int_equal(sum_labelled(out, "route", "/login", "main.shared"), 2);
	assert_int_equal(sum_labelled(out, "route", "/page", "main.shared"), 6);
	/* GC and the cgo thread: no route */
	assert_int_equal(sum_labelled(out, "route", NULL, NULL), 8);
	/* eBPF's frames, not the SDK's */
	assert_int_equal(sum_labelled(out, "route", NULL, "runtime.goexit.abi0"), 3);
	assert_int_equal(sum_labelled(out, "route", "/login", "TagWrapper"), 0);
	assert_int_equal(sum_labelled(out, "route", "/login", "runtime.goexit.abi0"), 26);
	profile__free(out);
	/* deterministic: the same input, the same output */
	out = splice_rt(&in, sdk, RUNTIME_GO, &st);
	assert_int_equal(sum_labelled(out, "route", "/login", "main.shared"), 2);
	profile__free(out);
	/* without an SDK profile: every stack as it is */
	out = splice_rt(&in, NULL, RUNTIME_GO, &st);
	assert_int_equal(st.match_none, 48);
	assert_int_equal(sum_labelled(out, "route", NULL, NULL), 48);
	profile__free(out);
	profile__free(sdk);
}

/* The JVM: the Java agent's real recording (tests/data/jfr/cpu.jfr.gz,
 * LabelsApp: Deflater, a file write, sorting; async-profiler's stacks end in
 * the native function a sample was in) against eBPF stacks shaped as braid
 * record samples a JVM (tests/test_classify.c's). Checked: the Java frames
 * alone are spliced in, between libjvm's prefix and zlib's frames; zlib's
 * samples go to the stacks whose Java leaf is Deflater's JNI method (by its
 * JNI name) alone; the JFR's other threads (GC, compiler: native frames
 * only) take no eBPF sample, which keep their own frames. */
#define JVM_ROOT "n:__clone3;n:start_thread;n:ThreadJavaMain;n:JavaMain;n:JavaCalls::call_helper"

static void test_jvm_splice(void **state)
{
	static struct input in;
	struct profile_jfr_opts o = {.sample_rate = 100, .os_thread_labels = true};
	struct profile_jfr *j = NULL;
	struct profile *out;
	struct merger_splice_stats st;
	struct errbuf err = {{0}};
	struct dynbuf rec;
	char *text;
	(void)state;

	dynbuf__init(&rec, 0);
	assert_int_equal(util__read_file(TEST_DATA "/jfr/cpu.jfr.gz", 1 << 24, &err, &rec), 0);
	assert_int_equal(profile__from_jfr(rec.data, rec.len, &o, NULL, &err, &j), 0);
	memset(&in, 0, sizeof(in));
	in_add(&in,
	       JVM_ROOT ";j:;j:;j:;n:Java_java_util_zip_Deflater_deflateBytesBytes;n:deflate;"
			"n:adler32_z",
	       PID, 40);
	in_add(&in, "j:", PID, 30); /* compiled code, unwinding stopped in it */
	in_add(&in,
	       "n:__clone3;n:start_thread;n:thread_native_entry;n:GangWorker::loop;"
	       "n:G1ParEvacuateFollowersClosure::do_void",
	       PID + 1, 10);
	out = splice_rt(&in, profile_jfr__find(j, "process_cpu")->profile, RUNTIME_JVM, &st);
	text = folded(out);
	assert_int_equal(total_of(out), 80);
	assert_int_equal(st.spliced, 70);
	assert_int_equal(st.native_call_samples, 40);
	assert_true(st.sdk_native_only > 0); /* the GC and compiler threads' */
	/* zlib's samples: under Deflater's JNI method, its JNI function below */
	assert_int_equal(SUM(text, "JavaCalls::call_helper;", "LabelsApp.compress;",
			     "java/util/zip/Deflater.deflateBytesBytes;",
			     "Java_java_util_zip_Deflater_deflateBytesBytes;", "adler32_z"),
			 40);
	/* async-profiler's own native frames never come in */
	assert_int_equal(SUM(text, "libz.so.1.2.13"), 0);
	assert_int_equal(SUM(text, "libc.so.6."), 0);
	assert_int_equal(SUM(text, "libjvm.so."), 0);
	/* the GC thread keeps its frames */
	assert_int_equal(SUM(text, "GangWorker::loop;", "G1ParEvacuateFollowersClosure::do_void"),
			 10);
	/* braid's own thread label stays braid's */
	assert_int_equal(sum_labelled(out, "os_thread_id", NULL, NULL), 80);
	free(text);
	profile__free(out);
	profile_jfr__free(j);
	dynbuf__free(&rec);
}

static void test_broken_stack(void **state)
{
	static struct input in;
	struct profile *sdk = sdk_new(true), *out;
	struct merger_splice_stats st;
	char *text;
	(void)state;

	memset(&in, 0, sizeof(in));
	in_add(&in, BROKEN, PID, 5);
	sdk_add(sdk, "main;hashPassword", 1, 1, 1);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(st.broken, 5);
	assert_int_equal(SUM(text, "./app.js:main:1;./app.js:hashPassword:1;"
				   "PKCS5_PBKDF2_HMAC;sha256_block_data_order 5"),
			 5);
	assert_null(strstr(text, "[unknown]"));
	free(text);
	profile__free(out);
	profile__free(sdk);
}

/* Conservation on random inputs: every eBPF stack's samples come out, each
 * to the sample, whatever the SDK weights. */
static void test_conservation_random(void **state)
{
	static struct input in;
	static const char *const kinds[] = {JS_PURE, JS_CRYPTO, GC_IN_JS, IDLE, BROKEN};
	unsigned seed = 12345;
	(void)state;

	for (int round = 0; round < 20; round++) {
		struct profile *sdk = sdk_new(round % 2 == 0), *out;
		int64_t want[64] = {0}, total = 0;
		char *text;

		memset(&in, 0, sizeof(in));
		for (size_t i = 0; i < 40; i++) {
			char spec[1024];
			int64_t c = rand_r(&seed) % 50;

			snprintf(spec, sizeof(spec), "%s;k:uniq%02zu",
				 i % 7 == 6 ? WORKER : kinds[rand_r(&seed) % 5], i);
			in_add(&in, spec, i % 7 == 6 ? PID + 1 : PID, c);
			want[i] = c;
			total += c;
		}
		for (int k = 0; k < 1 + rand_r(&seed) % 12; k++) {
			char spec[64];

			snprintf(spec, sizeof(spec), "main;f%d", k);
			sdk_add(sdk, spec, rand_r(&seed) % 5, rand_r(&seed) % 1000,
				rand_r(&seed) % 100000);
		}
		if (rand_r(&seed) % 2)
			sdk_add(sdk, "Node.js;Non JS threads activity", 0, 0, 999);
		out = splice(&in, sdk, NULL);
		text = folded(out);
		assert_int_equal(total_of(out), total);
		for (size_t i = 0; i < in.n; i++) {
			char needle[32];

			snprintf(needle, sizeof(needle), "uniq%02zu_[k]", i);
			assert_int_equal(SUM(text, needle), want[i]);
		}
		free(text);
		profile__free(out);
		profile__free(sdk);
	}
}

/* The real Node SDK push (fixture): its (idle), Non JS threads and JS
 * stacks apportion a window of eBPF samples, totals conserved. */
static void test_real_sdk_fixture(void **state)
{
	static struct input in;
	struct profile *sdk = NULL, *out;
	struct merger_splice_stats st;
	struct dynbuf raw;
	struct errbuf err;
	char *text;
	(void)state;

	dynbuf__init(&raw, 0);
	assert_int_equal(util__read_file(BRAID_FIXTURES "/node-sdk-0.6.4/req2.pprof.gz", 1 << 20,
					 &err, &raw),
			 0);
	assert_int_equal(profile__from_pprof(raw.data, raw.len, NULL, &err, &sdk), 0);
	memset(&in, 0, sizeof(in));
	in_add(&in, JS_CRYPTO, PID, 600);
	in_add(&in, JS_PURE, PID, 400);
	in_add(&in, WORKER, PID + 3, 10);
	in_add(&in, IDLE, PID, 50);
	out = splice(&in, sdk, &st);
	text = folded(out);
	assert_int_equal(total_of(out), 1060);
	assert_int_equal(st.spliced, 1060);
	/* JS: the push's two pbkdf2Sync stacks have 822564120 of 1338927913 ns
	 * of JS cpu: quotas 583.68 and 30.66 of 1000, floors 613; its ten fib
	 * stacks floor to 382. Of the 5 slots left, the largest remainders
	 * are fib's .82 and .69, pbkdf2's .68 and .66, fib's .63. */
	assert_int_equal(SUM(text, "node:internal/crypto/pbkdf2:pbkdf2Sync:62"), 615);
	assert_int_equal(SUM(text, "./app2.js:fib:5"), 385);
	assert_int_equal(SUM(text, ":Non JS threads activity:0;clone3"), 10);
	assert_int_equal(SUM(text, ":(idle):0;__libc_start_main"), 50);
	free(text);
	dynbuf__free(&raw);
	profile__free(out);
	profile__free(sdk);
}

/* ---- the merge loop over a store ------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct fx {
	char dir[64];
	struct store *s;
	struct merger *m;
	int64_t node, other, heap_only; /* process ids */
	int64_t bucket_samples;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_options o = {.skip_check = true};
	struct merger_options mo = {.grace_s = 75, .collect_interval_s = 15, .freq = FREQ};
	struct errbuf err = {{0}};

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/braid-test-merger-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	o.data_dir = f->dir;
	if (store__open(&o, &err, &f->s) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	f->m = merger__new(f->s, &mo);
	if (!f->m)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	merger__free(f->m);
	store__close(f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int64_t put_process(struct fx *f, int32_t pid, const char *comm, const char *service,
			   enum runtime rt)
{
	struct store_process p = {
		.pid = pid,
		.start_time_ns = T0 * NS - 1000 * NS,
		.comm = comm,
		.service = service,
		.runtime = rt,
	};
	int64_t id;

	assert_int_equal(store__put_process(f->s, &p, T0 * NS, &id), 0);
	return id;
}

/* Buckets of a process for seconds [from, until): a JS stack (count 3) and a
 * worker-thread stack (count 1) each second. */
static void put_buckets(struct fx *f, int64_t process_id, int32_t pid, int64_t from, int64_t until)
{
	static struct stk js, worker;

	stk_parse(&js, JS_CRYPTO);
	stk_parse(&worker, WORKER);
	for (int64_t s = from; s < until; s++) {
		struct store_bucket b[2] = {
			{process_id, pid, s, js.f, js.n, 3, 0},
			{process_id, pid + 1, s, worker.f, worker.n, 1, 0},
		};
		size_t dropped = 1;

		assert_int_equal(store__put_buckets(f->s, b, 2, &dropped), 0);
		assert_int_equal(dropped, 0);
		f->bucket_samples += 4;
	}
}

static int64_t put_sdk(struct fx *f, int64_t process_id, const char *name, int64_t from_s,
		       int64_t until_s, bool heap)
{
	struct profile *p = sdk_new(true);
	struct dynbuf body;
	struct label labels[] = {
		{"__name__", name}, {"service_name", "checkout"}, {"region", "eu-1"}};
	struct store_sample_type types[] = {
		{"samples", "count", 4}, {"wall", "nanoseconds", 40}, {"cpu", "nanoseconds", 40}};
	struct store_sample_type heap_types[] = {{"objects", "count", 1}, {"space", "bytes", 100}};
	int64_t id;

	sdk_add(p, "main;handle;hashPassword", 3, 30, 30);
	sdk_add(p, "main;handle;fib", 1, 10, 10);
	sdk_add(p, "Node.js;Non JS threads activity", 0, 0, 10);
	dynbuf__init(&body, 0);
	assert_int_equal(profile__to_pprof(p, true, &body), 0);
	struct store_sdk_profile sp = {
		.received_ns = until_s * NS,
		.service = "checkout",
		.profile_name = name,
		.labels = labels,
		.n_labels = 3,
		.tenant = "team-a",
		.types = heap ? heap_types : types,
		.n_types = heap ? 2 : 3,
		.from_ns = from_s * NS,
		.until_ns = until_s * NS,
		.spy_name = "nodespy",
		.format = "pprof",
		.sample_rate = 100,
		.process_id = process_id,
		.attribution = process_id ? STORE_ATTR_PEER_TCP : STORE_ATTR_NONE,
		.payload = body.data,
		.payload_len = body.len,
	};
	assert_int_equal(store__put_sdk_profile(f->s, &sp, &id), 0);
	dynbuf__free(&body);
	profile__free(p);
	return id;
}

/* What the outbox holds, decoded. */
struct outbox_view {
	int64_t merged, ebpf, sdk;  /* items */
	int64_t merged_ns, ebpf_ns; /* their totals */
	int64_t spliced_fib_ns;	    /* merged samples under fib */
	int64_t ranges[64][3];	    /* ebpf/merged: process-less check: from, until */
	size_t n_ranges;
	bool labels_ok;
};

static const char *label_of(const struct store_outbox_item *it, const char *name)
{
	for (size_t i = 0; i < it->n_labels; i++)
		if (strcmp(it->labels[i].name, name) == 0)
			return it->labels[i].value;
	return NULL;
}

static int on_item(void *ctx, const struct store_outbox_item *it)
{
	struct outbox_view *v = ctx;
	struct profile *p = NULL;
	struct errbuf err;
	int64_t total = 0;
	const char *view = label_of(it, MERGER_VIEW_LABEL);

	assert_non_null(view);
	assert_string_equal(view, it->kind);
	if (strcmp(it->kind, "sdk") == 0) {
		v->sdk++;
		return 0;
	}
	assert_string_equal(label_of(it, "__name__"), "process_cpu");
	assert_int_equal(profile__from_pprof(it->payload, it->payload_len, NULL, &err, &p), 0);
	assert_int_equal(profile__totals(p, &total), 0);
	assert_int_equal(profile__period(p), NS / FREQ);
	assert_int_equal(profile__time_nanos(p), it->from_ns);
	if (strcmp(it->kind, "merged") == 0) {
		char *text = folded(p);

		v->merged++;
		v->merged_ns += total;
		v->spliced_fib_ns += SUM(text, ":fib:");
		assert_string_equal(label_of(it, "service_name"), "checkout");
		assert_string_equal(label_of(it, "region"), "eu-1");
		assert_string_equal(it->tenant, "team-a");
		free(text);
	} else {
		v->ebpf++;
		v->ebpf_ns += total;
	}
	if (v->n_ranges < 64) {
		v->ranges[v->n_ranges][0] = it->from_ns / NS;
		v->ranges[v->n_ranges][1] = it->until_ns / NS;
		v->ranges[v->n_ranges][2] = total;
		v->n_ranges++;
	}
	profile__free(p);
	return 0;
}

static void outbox(struct fx *f, struct outbox_view *v)
{
	memset(v, 0, sizeof(*v));
	assert_int_equal(store__outbox_list(f->s, 0, on_item, v), 0);
}

/* A process without SDK: eBPF-only profiles every collect interval, each
 * second once. */
static void test_loop_ebpf_only(void **state)
{
	struct fx *f = *state;
	struct merger_stats st;
	struct outbox_view v;
	int64_t id = put_process(f, 700, "nginx", NULL, RUNTIME_NATIVE);

	put_buckets(f, id, 700, T0, T0 + 30);
	/* seconds T0 .. T0+29 settled at T0+32: two 15-s profiles */
	assert_int_equal(merger__run(f->m, (T0 + 32) * NS, false, &st), 0);
	assert_int_equal(st.ebpf_profiles, 2);
	assert_int_equal(st.samples_ebpf, 120);
	outbox(f, &v);
	assert_int_equal(v.ebpf, 2);
	assert_int_equal(v.ebpf_ns, 120 * (NS / FREQ));
	/* nothing twice; new samples wait for the next collect interval */
	put_buckets(f, id, 700, T0 + 30, T0 + 40);
	assert_int_equal(merger__run(f->m, (T0 + 42) * NS, false, &st), 0);
	assert_int_equal(st.ebpf_profiles, 0);
	assert_int_equal(merger__run(f->m, (T0 + 48) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 40);
	outbox(f, &v);
	assert_int_equal(v.ebpf_ns, f->bucket_samples * (NS / FREQ));
}

/* An SDK process: seconds before the SDK range leave eBPF-only, the range
 * merged once settled, the rest after the grace period; the SDK profile is
 * passed through; every sample once. */
static void test_loop_merge(void **state)
{
	struct fx *f = *state;
	struct merger_stats st, tot;
	struct outbox_view v;
	int64_t id = put_process(f, PID, "node", "checkout", RUNTIME_NODE), sdk;

	put_buckets(f, id, PID, T0, T0 + 60);
	sdk = put_sdk(f, id, "wall", T0 + 10, T0 + 50, false);
	/* not settled: passed through only; the SDK process waits */
	assert_int_equal(merger__run(f->m, (T0 + 51) * NS, false, &st), 0);
	assert_int_equal(st.sdk_passed, 1);
	assert_int_equal(st.merged_profiles, 0);
	assert_int_equal(st.ebpf_profiles, 0);
	/* settled: [T0, T0+10) eBPF-only, then [T0+10, T0+50) merged */
	assert_int_equal(merger__run(f->m, (T0 + 52) * NS, false, &st), 0);
	assert_int_equal(st.sdk_passed, 0);
	assert_int_equal(st.merged_profiles, 1);
	assert_int_equal(st.samples_merged, 160);
	assert_int_equal(st.samples_spliced, 160);
	assert_int_equal(st.samples_ebpf, 40);
	outbox(f, &v);
	assert_int_equal(v.sdk, 1);
	assert_int_equal(v.merged, 1);
	assert_int_equal(v.merged_ns, 160 * (NS / FREQ));
	/* JS samples (3 a second) shared 3:1 between hashPassword and fib */
	assert_int_equal(v.spliced_fib_ns, 30 * (NS / FREQ));
	/* the SDK profile is merged now: a second pass does nothing */
	assert_int_equal(merger__run(f->m, (T0 + 53) * NS, false, &st), 0);
	assert_int_equal(st.samples_in, 0);
	/* [T0+50, T0+60) waits for SDK coverage: each second until it is
	 * 75 s (the grace period) old */
	assert_int_equal(merger__run(f->m, (T0 + 50 + 75) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 0);
	assert_int_equal(merger__run(f->m, (T0 + 55 + 75) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 20);
	assert_int_equal(merger__run(f->m, (T0 + 60 + 75) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 20);
	merger__stats(f->m, &tot);
	assert_int_equal(tot.samples_in, f->bucket_samples);
	assert_int_equal(tot.samples_merged + tot.samples_ebpf, f->bucket_samples);
	outbox(f, &v);
	assert_int_equal(v.merged_ns + v.ebpf_ns, f->bucket_samples * (NS / FREQ));
	/* no second emitted twice: the ranges tile [T0, T0+60) */
	for (size_t i = 0; i < v.n_ranges; i++)
		for (size_t j = i + 1; j < v.n_ranges; j++)
			assert_true(v.ranges[i][1] <= v.ranges[j][0] ||
				    v.ranges[j][1] <= v.ranges[i][0]);
	(void)sdk;
}

/* A process that pushes only heap profiles does not wait for CPU coverage;
 * its heap profile is passed through. */
static void test_loop_heap_only(void **state)
{
	struct fx *f = *state;
	struct merger_stats st;
	int64_t id = put_process(f, 900, "node", "heapy", RUNTIME_NODE);

	put_buckets(f, id, 900, T0, T0 + 10);
	put_sdk(f, id, "memory", T0, T0 + 10, true);
	assert_int_equal(merger__run(f->m, (T0 + 13) * NS, false, &st), 0);
	assert_int_equal(st.sdk_passed, 1);
	assert_int_equal(st.merged_profiles, 0);
	assert_int_equal(st.samples_ebpf, 40);
}

/* An SDK profile arriving after its range left eBPF-only is passed through
 * and counted late; nothing is emitted twice. An unattributed one is
 * passed through only. */
static void test_loop_late_and_unattributed(void **state)
{
	struct fx *f = *state;
	struct merger_stats st, tot;
	int64_t id = put_process(f, PID, "node", "checkout", RUNTIME_NODE);

	put_sdk(f, id, "wall", T0 - 100, T0 - 90, false); /* an SDK process */
	put_buckets(f, id, PID, T0, T0 + 10);
	assert_int_equal(merger__run(f->m, (T0 + 100) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 40);
	put_sdk(f, id, "wall", T0, T0 + 10, false);
	put_sdk(f, 0, "wall", T0, T0 + 10, false);
	assert_int_equal(merger__run(f->m, (T0 + 101) * NS, false, &st), 0);
	assert_int_equal(st.sdk_late, 1);
	assert_int_equal(st.sdk_unattributed, 1);
	assert_int_equal(st.sdk_passed, 2);
	assert_int_equal(st.samples_in, 0);
	merger__stats(f->m, &tot);
	assert_int_equal(tot.samples_in, f->bucket_samples);
}

struct sdk_names {
	char name[8][32]; /* each pass-through copy's __name__ */
	size_t n;
};

static int on_sdk_name(void *ctx, const struct store_outbox_item *it)
{
	struct sdk_names *v = ctx;

	if (strcmp(it->kind, "sdk") == 0 && v->n < 8)
		snprintf(v->name[v->n++], sizeof(v->name[0]), "%s", label_of(it, "__name__"));
	return 0;
}

static int count_name(const struct sdk_names *v, const char *name)
{
	int n = 0;

	for (size_t i = 0; i < v->n; i++)
		n += strcmp(v->name[i], name) == 0;
	return n;
}

/* With sdk_cpu_name, an SDK's process_cpu of a process braid samples leaves
 * under that name (its CPU is in the merged and eBPF-only process_cpu);
 * the same profile of no local process, and every other type, as pushed. */
static void test_loop_sdk_cpu_name(void **state)
{
	struct fx *f = *state;
	struct merger_options mo = {.grace_s = 75,
				    .collect_interval_s = 15,
				    .freq = FREQ,
				    .sdk_cpu_name = MERGER_DEFAULT_SDK_CPU_NAME};
	struct merger *m = merger__new(f->s, &mo);
	struct merger_stats st, tot;
	struct outbox_view v;
	struct sdk_names names = {0};
	int64_t id = put_process(f, PID, "python3", "checkout", RUNTIME_PYTHON);

	assert_non_null(m);
	assert_true(merger__valid_profile_name(MERGER_DEFAULT_SDK_CPU_NAME));
	assert_false(merger__valid_profile_name("process_cpu:sdk"));
	assert_false(merger__valid_profile_name("__name__"));
	assert_false(merger__valid_profile_name("1cpu"));
	assert_false(merger__valid_profile_name(""));
	put_buckets(f, id, PID, T0, T0 + 20);
	put_sdk(f, id, "process_cpu", T0, T0 + 20, false);
	put_sdk(f, 0, "process_cpu", T0, T0 + 20, false);
	put_sdk(f, id, "wall", T0 + 20, T0 + 30, false);
	put_sdk(f, id, "memory", T0, T0 + 20, true);
	assert_int_equal(merger__run(m, (T0 + 23) * NS, false, &st), 0);
	assert_int_equal(st.sdk_passed, 4);
	assert_int_equal(st.sdk_cpu_renamed, 1);
	assert_int_equal(st.merged_profiles, 1);
	assert_int_equal(store__outbox_list(f->s, 0, on_sdk_name, &names), 0);
	assert_int_equal(names.n, 4);
	assert_int_equal(count_name(&names, MERGER_DEFAULT_SDK_CPU_NAME), 1);
	assert_int_equal(count_name(&names, "process_cpu"), 1); /* the unattributed one */
	assert_int_equal(count_name(&names, "wall"), 1);
	assert_int_equal(count_name(&names, "memory"), 1);
	/* process_cpu is the measured CPU: every eBPF sample, once */
	outbox(f, &v);
	merger__stats(m, &tot);
	assert_int_equal(tot.samples_merged + tot.samples_ebpf, v.merged_ns / (NS / FREQ));
	assert_int_equal(v.merged_ns + v.ebpf_ns, f->bucket_samples * (NS / FREQ));
	merger__free(m);
}

struct jfr_items {
	size_t n, converted;
	char name[8][32];
	int64_t sdk[8]; /* each item's SDK profile */
	int64_t ids[8];
	int64_t cpu_ns; /* the process_cpu_sdk copy's total */
};

static int on_jfr_item(void *ctx, const struct store_outbox_item *it)
{
	struct jfr_items *v = ctx;
	struct profile *p = NULL;
	struct errbuf err;
	int64_t total = 0;

	if (strcmp(it->kind, "sdk") != 0 || v->n >= 8)
		return 0;
	snprintf(v->name[v->n], sizeof(v->name[0]), "%s", label_of(it, "__name__"));
	v->sdk[v->n] = it->sdk_profile_id;
	v->ids[v->n++] = it->id;
	assert_string_equal(label_of(it, "service_name"), "shop");
	if (!it->converted)
		return 0;
	v->converted++;
	/* the series labels Pyroscope gives a JFR push's profiles */
	assert_string_equal(label_of(it, "pyroscope_spy"), "javaspy");
	assert_string_equal(label_of(it, "jfr_event"), "itimer");
	/* pprof made here, with no os_thread_id of braid's own */
	assert_int_equal(profile__from_pprof(it->payload, it->payload_len, NULL, &err, &p), 0);
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		const struct profile_label *l;
		size_t n = profile__labels(p, profile__sample(p, i).labels, &l);

		for (size_t k = 0; k < n; k++)
			assert_string_not_equal(profile__str(p, l[k].key), "os_thread_id");
	}
	if (strcmp(label_of(it, "__name__"), MERGER_DEFAULT_SDK_CPU_NAME) == 0) {
		assert_int_equal(profile__totals(p, &total), 0);
		v->cpu_ns += total;
	}
	profile__free(p);
	return 0;
}

static int on_forwarded(void *ctx, const struct store_sdk_profile *p)
{
	*(bool *)ctx = p->forwarded;
	return 0;
}

/* A JFR push of a process braid samples leaves as its recording's profiles
 * in pprof, its process_cpu as sdk_cpu_name (the push itself would give
 * Pyroscope a second process_cpu); one braid can't read, as pushed. The
 * push is forwarded once its last copy is delivered. */
static void test_loop_jfr_copies(void **state)
{
	struct fx *f = *state;
	struct merger_options mo = {.grace_s = 75,
				    .collect_interval_s = 15,
				    .freq = FREQ,
				    .sdk_cpu_name = MERGER_DEFAULT_SDK_CPU_NAME};
	struct merger *m = merger__new(f->s, &mo);
	struct merger_stats st;
	struct jfr_items v = {0};
	struct dynbuf form;
	struct errbuf err;
	struct dynbuf rec;
	int64_t id = put_process(f, PID, "java", "shop", RUNTIME_JVM), sdk_id, bad_id;
	struct label labels[] = {{"__name__", "jfr"}, {"service_name", "shop"}};
	struct store_sdk_profile sp = {
		.received_ns = (T0 + 10) * NS,
		.service = "shop",
		.profile_name = "jfr",
		.labels = labels,
		.n_labels = 2,
		.from_ns = T0 * NS,
		.until_ns = (T0 + 10) * NS,
		.spy_name = "javaspy",
		.format = "jfr",
		.sample_rate = 100,
		.process_id = id,
		.attribution = STORE_ATTR_PEER_TCP,
	};
	static const char head[] =
		"--B\r\nContent-Disposition: form-data; name=\"jfr\"; "
		"filename=\"jfr\"\r\nContent-Type: application/octet-stream\r\n\r\n";
	static const char tail[] = "\r\n--B--\r\n";
	bool forwarded = false;

	assert_non_null(m);
	dynbuf__init(&rec, 0);
	assert_int_equal(util__read_file(TEST_DATA "/jfr/alloc_lock.jfr.gz", 1 << 24, &err, &rec),
			 0);
	dynbuf__init(&form, 0);
	assert_int_equal(dynbuf__append(&form, head, sizeof(head) - 1), 0);
	assert_int_equal(dynbuf__append(&form, rec.data, rec.len), 0);
	assert_int_equal(dynbuf__append(&form, tail, sizeof(tail) - 1), 0);
	sp.payload = form.data;
	sp.payload_len = form.len;
	assert_int_equal(store__put_sdk_profile(f->s, &sp, &sdk_id), 0);
	/* damaged: passed on as pushed, Pyroscope judges it */
	sp.payload = "--B\r\nnot a form";
	sp.payload_len = strlen(sp.payload);
	assert_int_equal(store__put_sdk_profile(f->s, &sp, &bad_id), 0);
	assert_int_equal(merger__run(m, (T0 + 1) * NS, false, &st), 0);
	assert_int_equal(st.sdk_cpu_renamed, 1);
	assert_int_equal(store__outbox_list(f->s, 0, on_jfr_item, &v), 0);
	/* alloc_lock.jfr: CPU, allocations, monitors and parks; and the
	 * damaged push as is */
	assert_int_equal(v.n, 5);
	assert_int_equal(v.converted, 4);
	assert_int_equal(st.sdk_passed, 5);
	{
		struct sdk_names names = {.n = v.n};

		memcpy(names.name, v.name, sizeof(names.name));
		assert_int_equal(count_name(&names, MERGER_DEFAULT_SDK_CPU_NAME), 1);
		assert_int_equal(count_name(&names, "memory"), 1);
		assert_int_equal(count_name(&names, "mutex"), 1);
		assert_int_equal(count_name(&names, "block"), 1);
		assert_int_equal(count_name(&names, "jfr"), 1);
		assert_int_equal(count_name(&names, "process_cpu"), 0);
	}
	/* the JDK's jfr tool: 205 ExecutionSample x 10 ms (test_jfr) */
	assert_int_equal(v.cpu_ns, 205 * 10000000LL);
	/* nothing queued twice */
	assert_int_equal(merger__run(m, (T0 + 2) * NS, false, &st), 0);
	assert_int_equal(st.sdk_passed, 0);
	/* the push counts as forwarded once its last copy is delivered */
	for (size_t i = 0, left = v.converted; i < v.n; i++) {
		if (v.sdk[i] != sdk_id)
			continue;
		assert_int_equal(store__outbox_done(f->s, v.ids[i]), 0);
		forwarded = false;
		assert_int_equal(store__get_sdk_profile(f->s, sdk_id, on_forwarded, &forwarded), 0);
		assert_int_equal(forwarded, --left == 0);
	}
	(void)bad_id;
	dynbuf__free(&form);
	dynbuf__free(&rec);
	merger__free(m);
}

/* The final pass: processes without SDK leave up to now without waiting for
 * the collect interval; an SDK process within its grace period keeps its
 * samples in the store. */
static void test_loop_final(void **state)
{
	struct fx *f = *state;
	struct merger_stats st;
	int64_t a = put_process(f, 700, "nginx", NULL, RUNTIME_NATIVE);
	int64_t b = put_process(f, PID, "node", "checkout", RUNTIME_NODE);

	put_sdk(f, b, "wall", T0 - 10, T0, false);
	put_buckets(f, a, 700, T0, T0 + 5);
	put_buckets(f, b, PID, T0, T0 + 5);
	assert_int_equal(merger__run(f->m, (T0 + 3) * NS, false, &st), 0);
	assert_int_equal(merger__run(f->m, (T0 + 5) * NS, true, &st), 0);
	/* a: the first pass (collect due) took [T0, T0+1); final the rest */
	assert_int_equal(st.samples_ebpf, 16);
	/* b's samples stay for the next start */
	assert_int_equal(merger__run(f->m, (T0 + 5 + 75) * NS, false, &st), 0);
	assert_int_equal(st.samples_ebpf, 20);
}

/* Every location merger__add_frame makes has a line or a non-zero address:
 * Pyroscope removes a location with neither, and every sample through it.
 * JIT code that no perf map names is "[jit]"; in a pprof round trip it is a
 * nameless JIT frame again, and an unnamed native frame keeps its offset. */
static void test_frames_pyroscope_keeps(void **state)
{
	const struct frame frames[] = {
		{FRAME_JIT, NULL, "[jit]", 0},
		{FRAME_JIT, "LazyCompile:*fib /app.js:3", "[jit]", 0},
		{FRAME_NATIVE, NULL, "/usr/lib/x86_64-linux-gnu/libssl.so.3", 0x1a2b0},
		{FRAME_NATIVE, NULL, "/usr/bin/stripped", 0},
		{FRAME_UNKNOWN, NULL, NULL, 0x7f0012},
		{FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", 0},
	};
	const size_t n = sizeof(frames) / sizeof(frames[0]);
	const char *want_name[] = {"[jit]",	"LazyCompile:*fib /app.js:3",
				   NULL,	"/usr/bin/stripped",
				   "[unknown]", "do_syscall_64"};
	struct profile *p = profile__new(), *back = NULL;
	uint32_t loc[6];
	struct dynbuf b;
	struct errbuf err = {0};
	int64_t one = 1;
	uint32_t stack;

	(void)state;
	assert_non_null(p);
	assert_int_equal(profile__add_sample_type(p, "cpu", "nanoseconds"), 0);
	for (size_t i = 0; i < n; i++) {
		struct profile_location l;

		assert_int_equal(merger__add_frame(p, &frames[i], &loc[i]), 0);
		assert_int_equal(profile__location(p, loc[i], &l), 0);
		assert_true(l.n_lines > 0 || l.address != 0);
		if (want_name[i]) {
			const struct profile_function *fn;

			assert_int_equal(l.n_lines, 1);
			fn = profile__function(p, l.lines[0].function);
			assert_non_null(fn);
			assert_string_equal(profile__str(p, fn->name), want_name[i]);
		} else {
			assert_int_equal(l.n_lines, 0);
			assert_int_equal(l.address, frames[i].offset);
		}
	}
	assert_int_equal(profile__add_stack(p, loc, n, &stack), 0);
	assert_int_equal(profile__add_sample(p, stack, 0, &one), 0);

	dynbuf__init(&b, 0);
	assert_int_equal(profile__to_pprof(p, false, &b), 0);
	assert_int_equal(profile__from_pprof(b.data, b.len, NULL, &err, &back), 0);
	/* read back as braid merge reads a recording: names as they were */
	for (size_t i = 0; i < n; i++) {
		const char *was = frames[i].kind == FRAME_UNKNOWN ? "[unknown]" : frames[i].name;
		struct frame f;

		assert_int_equal(merger__frame_of_location(back, loc[i], &f), 0);
		assert_int_equal(f.kind, frames[i].kind);
		assert_int_equal(f.offset, want_name[i] ? 0 : frames[i].offset);
		if (was)
			assert_string_equal(f.name, was);
		else
			assert_null(f.name);
	}
	dynbuf__free(&b);
	profile__free(back);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_pyroscope_keeps),
		cmocka_unit_test(test_apportion_exact),
		cmocka_unit_test(test_apportion_deterministic),
		cmocka_unit_test(test_no_sdk),
		cmocka_unit_test(test_sdk_without_cpu),
		cmocka_unit_test(test_categories_and_pseudo_frames),
		cmocka_unit_test(test_category_without_sdk_weight),
		cmocka_unit_test(test_gc_without_sdk_gc),
		cmocka_unit_test(test_native_calls),
		cmocka_unit_test(test_node_api_calls),
		cmocka_unit_test(test_python_threads),
		cmocka_unit_test(test_python_native_calls),
		cmocka_unit_test(test_python_remembered),
		cmocka_unit_test(test_labels_on_merged),
		cmocka_unit_test(test_jvm_splice),
		cmocka_unit_test(test_broken_stack),
		cmocka_unit_test(test_conservation_random),
		cmocka_unit_test(test_real_sdk_fixture),
		cmocka_unit_test(test_go_match),
		cmocka_unit_test_setup_teardown(test_loop_ebpf_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_heap_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_late_and_unattributed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_sdk_cpu_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_jfr_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_final, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
