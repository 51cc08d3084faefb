/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Merge throughput: how fast the splice turns one process's window of eBPF
 * stacks and one SDK profile into merged samples.
 *
 * The window is synthetic and shaped like a busy Node.js process: 100,000
 * distinct eBPF stacks (the acceptance point's size), each a native prefix
 * (node's start-up and event loop, 12 frames), an interpreter region of 2-12
 * JIT and builtin frames, a native suffix of 0-8 frames drawn from 2,000
 * library functions and 0-6 kernel frames drawn from 500; 1 in 8 stacks is
 * from another thread (thread pool, GC helpers) and 1 in 20 is GC inside JS.
 * Counts are skewed the way sampled counts are: most stacks were sampled
 * once, a few many times (1 + a geometric tail, mean ~2). The SDK profile
 * has 2,000 JS stacks of depth 3-20 over 500 functions, weighed by cpu, plus
 * the Node SDK's pseudo-frames.
 *
 * Timed, best of ROUNDS rounds, each on a fresh output profile:
 *   copy    the same stacks into a profile with no SDK data (every stack
 *           keeps its frames): the floor any merge pays for building output;
 *   splice  merger__splice with the SDK profile;
 *   encode  the merged profile to gzipped pprof, as the merge loop queues it.
 * Printed: stacks/s and samples/s of each, the splice/copy ratio, and the
 * target (>= 1 M eBPF stack counts per second, stacks with their counts).
 *
 *   bench_merge [--quick] [--stacks N] [--rounds R]
 *
 * BENCH_QUICK=1 is --quick (10,000 stacks, 1 round): a smoke test. Exits 1
 * if a splice fails or loses a sample, never because of a figure.
 */
#include "merger/merger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TARGET_PER_S  1000000.0
#define N_LIB_FUNCS   2000
#define N_KERNEL_FUNC 500
#define N_JS_FUNCS    500
#define N_SDK_STACKS  2000
#define MAX_DEPTH     64
#define PID	      1000

static char lib_names[N_LIB_FUNCS][48], kernel_names[N_KERNEL_FUNC][48];
static char js_display[N_JS_FUNCS][64];

static const char *const prefix_names[] = {
	"__libc_start_call_main",
	"node::Start",
	"node::NodeMainInstance::Run",
	"node::SpinEventLoop",
	"uv_run",
	"uv__run_timers",
	"node::Environment::RunTimers",
	"v8::Function::Call",
	"v8::internal::Execution::Call",
	"v8::internal::(anonymous namespace)::Invoke",
	"Builtins_JSEntry",
	"Builtins_JSEntryTrampoline",
};
static const char *const builtin_names[] = {
	"Builtins_InterpreterEntryTrampoline",
	"Builtins_ArrayTimSort",
	"Builtins_CallFunction_ReceiverIsAny",
	"Builtins_StringAdd_CheckNone",
	"Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit",
};
static const char *const thread_names[] = {"clone3", "start_thread", "uv__thread_start",
					   "node::ThreadPoolWork::ScheduleWork"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct window {
	struct merger_ebpf_stack *stacks;
	struct frame *frames;
	size_t n, n_frames;
	int64_t samples;
};

static int make_window(size_t n, struct window *w)
{
	w->stacks = calloc(n, sizeof(*w->stacks));
	w->frames = calloc(n * MAX_DEPTH, sizeof(*w->frames));
	if (!w->stacks || !w->frames)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct frame *f = w->frames + w->n_frames;
		size_t nk = rnd(7), k = 0;
		bool other_thread = rnd(8) == 0, gc = rnd(20) == 0;
		int64_t count = 1;

		/* two kernel frames unique to the stack keep all n stacks distinct
		 * (frames are named, so their offset is 0, as the collector
		 * gives them) */
		f[k++] = (struct frame){FRAME_KERNEL, kernel_names[i % N_KERNEL_FUNC],
					"[kernel.kallsyms]", 0};
		f[k++] = (struct frame){FRAME_KERNEL,
					kernel_names[(i / N_KERNEL_FUNC) % N_KERNEL_FUNC],
					"[kernel.kallsyms]", 0};
		for (size_t j = 2; j < nk; j++)
			f[k++] = (struct frame){FRAME_KERNEL, kernel_names[rnd(N_KERNEL_FUNC)],
						"[kernel.kallsyms]", 0};
		if (gc) {
			f[k++] = (struct frame){FRAME_NATIVE,
						"v8::internal::ScavengerCollector::CollectGarbage",
						"/usr/bin/node", 0};
			f[k++] = (struct frame){FRAME_NATIVE, "v8::internal::Heap::CollectGarbage",
						"/usr/bin/node", 0};
		}
		for (size_t j = rnd(9); j > 0; j--)
			f[k++] = (struct frame){FRAME_NATIVE, lib_names[rnd(N_LIB_FUNCS)],
						"/usr/lib/x86_64-linux-gnu/libcrypto.so.3", 0};
		if (other_thread) {
			for (size_t j = 0; j < 4; j++)
				f[k++] = (struct frame){FRAME_NATIVE, thread_names[3 - j],
							"/usr/bin/node", 0};
		} else {
			for (size_t j = 2 + rnd(11); j > 0; j--)
				f[k++] =
					rnd(3) ? (struct frame){FRAME_JIT, NULL, "[jit]",
								0x1000 + rnd(64)}
					       : (struct frame){FRAME_NATIVE, builtin_names[rnd(5)],
								"/usr/bin/node", 0};
			for (size_t j = 0; j < 12; j++)
				f[k++] = (struct frame){FRAME_NATIVE, prefix_names[11 - j],
							"/usr/bin/node", 0};
		}
		while (rnd(2) && count < 64)
			count++;
		w->stacks[i] = (struct merger_ebpf_stack){
			.frames = f,
			.n_frames = k,
			.tid = other_thread ? PID + 1 + (int32_t)rnd(8) : PID,
			.count = count,
		};
		w->n_frames += k;
		w->samples += count;
	}
	w->n = n;
	return 0;
}

static int add_sdk_stack(struct profile *p, const char *const *names, size_t n, bool pseudo,
			 int64_t cpu)
{
	uint32_t locs[32], stack;
	int64_t values[3] = {1, 10000000, cpu};
	int r = 0;

	for (size_t k = 0; k < n && r == 0; k++) {
		struct profile_function fn = {0};
		struct profile_line line = {.line = 1};
		struct profile_location l = {.n_lines = 1, .lines = &line};

		r = profile__intern_cstr(p, names[k], &fn.name);
		if (r == 0)
			r = profile__intern_cstr(p, names[k], &fn.system_name);
		if (r == 0 && !pseudo)
			r = profile__intern_cstr(p, "/app/app.js", &fn.filename);
		if (r == 0)
			r = profile__add_function(p, &fn, &line.function);
		if (r == 0)
			r = profile__add_location(p, &l, &locs[n - 1 - k]);
	}
	if (r == 0)
		r = profile__add_stack(p, locs, n, &stack);
	if (r == 0)
		r = profile__add_sample(p, stack, 0, values);
	return r;
}

static struct profile *make_sdk(void)
{
	struct profile *p = profile__new();
	const char *names[32];
	int r;

	if (!p)
		return NULL;
	r = profile__add_sample_type(p, "samples", "count");
	if (r == 0)
		r = profile__add_sample_type(p, "wall", "nanoseconds");
	if (r == 0)
		r = profile__add_sample_type(p, "cpu", "nanoseconds");
	for (size_t i = 0; r == 0 && i < N_SDK_STACKS; i++) {
		size_t depth = 3 + rnd(18);

		for (size_t k = 0; k < depth; k++)
			names[k] = js_display[k == 0 ? 0 : rnd(N_JS_FUNCS)];
		/* a distinct leaf per stack */
		names[depth - 1] = js_display[i % N_JS_FUNCS];
		if (i >= N_JS_FUNCS)
			names[depth - 2] = js_display[(i / N_JS_FUNCS) % N_JS_FUNCS];
		r = add_sdk_stack(p, names, depth, false, 1000000 + rnd(50000000));
	}
	if (r == 0)
		r = add_sdk_stack(p, (const char *[]){"Node.js", "Non JS threads activity"}, 2,
				  true, 200000000);
	if (r == 0)
		r = add_sdk_stack(p, (const char *[]){"Node.js", "Garbage Collection"}, 2, true,
				  50000000);
	if (r == 0)
		r = add_sdk_stack(p, (const char *[]){"(idle)"}, 1, true, 10000000);
	if (r < 0) {
		profile__free(p);
		return NULL;
	}
	return p;
}

static int run(const struct window *w, const struct profile *sdk, double *ret_s,
	       struct profile **ret_out)
{
	struct merger_splice_input in = {
		.runtime = RUNTIME_NODE,
		.pid = PID,
		.stacks = w->stacks,
		.n_stacks = w->n,
		.sdk = sdk,
		.period = 10101010,
	};
	struct merger_splice_stats st;
	struct profile *out = merger__new_profile(in.period, 0, 0);
	int64_t total = 0;
	double t0;
	int r;

	if (!out)
		return -ENOMEM;
	t0 = now_s();
	r = merger__splice(&in, out, &st);
	*ret_s = now_s() - t0;
	if (r == 0)
		r = profile__totals(out, &total);
	if (r == 0 && (st.samples != w->samples || total != w->samples * in.period)) {
		fprintf(stderr, "bench_merge: %lld samples in, %lld out\n", (long long)w->samples,
			(long long)(total / in.period));
		r = -EPROTO;
	}
	if (r < 0 || !ret_out)
		profile__free(out);
	else
		*ret_out = out;
	return r;
}

int main(int argc, char **argv)
{
	const char *quick = getenv("BENCH_QUICK");
	size_t n = 100000, rounds = 5;
	double best_copy = 1e9, best_splice = 1e9, best_encode = 1e9;
	struct window w = {0};
	struct profile *sdk = NULL;
	struct utsname un;
	int status = 1;

	if (quick && quick[0] && strcmp(quick, "0") != 0) {
		n = 10000;
		rounds = 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			n = 10000;
			rounds = 1;
		} else if (strcmp(argv[i], "--stacks") == 0 && i + 1 < argc) {
			n = strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_merge [--quick] [--stacks N] [--rounds R]\n");
			return 2;
		}
	}
	if (!n || !rounds || n > (size_t)N_KERNEL_FUNC * N_KERNEL_FUNC) {
		fprintf(stderr, "bench_merge: --stacks from 1 to %d, --rounds from 1\n",
			N_KERNEL_FUNC * N_KERNEL_FUNC);
		return 2;
	}
	for (int i = 0; i < N_LIB_FUNCS; i++)
		snprintf(lib_names[i], sizeof(lib_names[i]), "libfunc_%04d", i);
	for (int i = 0; i < N_KERNEL_FUNC; i++)
		snprintf(kernel_names[i], sizeof(kernel_names[i]), "kernel_func_%03d", i);
	for (int i = 0; i < N_JS_FUNCS; i++) {
		snprintf(js_display[i], sizeof(js_display[i]), "./app.js:jsFunction%03d:%d", i,
			 i + 1);
	}
	sdk = make_sdk();
	if (!sdk || make_window(n, &w) < 0) {
		fprintf(stderr, "bench_merge: out of memory\n");
		goto cleanup;
	}
	uname(&un);
	printf("# machine: nproc=%ld %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), un.sysname,
	       un.release);
	printf("# window: %zu distinct eBPF stacks, %lld samples, %.1f frames per stack; "
	       "SDK: %zu stacks\n",
	       w.n, (long long)w.samples, (double)w.n_frames / (double)w.n, profile__n_stacks(sdk));
	for (size_t r = 0; r < rounds; r++) {
		struct profile *out = NULL;
		struct dynbuf buf;
		double t, t0;

		if (run(&w, NULL, &t, NULL) < 0)
			goto cleanup;
		if (t < best_copy)
			best_copy = t;
		if (run(&w, sdk, &t, &out) < 0)
			goto cleanup;
		if (t < best_splice)
			best_splice = t;
		dynbuf__init(&buf, 0);
		t0 = now_s();
		if (profile__to_pprof(out, true, &buf) < 0) {
			profile__free(out);
			goto cleanup;
		}
		t = now_s() - t0;
		if (t < best_encode)
			best_encode = t;
		if (r == 0)
			printf("# merged profile: %zu samples, %zu locations, %zu KiB gzipped\n",
			       profile__n_samples(out), profile__n_locations(out), buf.len >> 10);
		dynbuf__free(&buf);
		profile__free(out);
	}
	printf("%-8s %10s %14s %14s %10s\n", "phase", "ms", "stacks/s", "samples/s", "target");
	printf("%-8s %10.1f %14.0f %14.0f %10s\n", "copy", best_copy * 1e3, (double)w.n / best_copy,
	       (double)w.samples / best_copy, "-");
	printf("%-8s %10.1f %14.0f %14.0f %10s\n", "splice", best_splice * 1e3,
	       (double)w.n / best_splice, (double)w.samples / best_splice,
	       (double)w.n / best_splice >= TARGET_PER_S ? "ok" : "BELOW");
	printf("%-8s %10.1f %14.0f %14.0f %10s\n", "encode", best_encode * 1e3,
	       (double)w.n / best_encode, (double)w.samples / best_encode, "-");
	printf("# splice/copy time ratio %.2f; target: splice >= %.0f eBPF stacks (with their "
	       "counts) per second\n",
	       best_splice / best_copy, TARGET_PER_S);
	status = 0;
cleanup:
	free(w.stacks);
	free(w.frames);
	profile__free(sdk);
	return status;
}
