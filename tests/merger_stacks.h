/* SPDX-License-Identifier: Apache-2.0 */
/* Stacks and SDK profiles for the merger's tests (test_merger.c,
 * test_report.c): eBPF stacks written as "K:name;K:name" root first, real
 * shapes of node's stacks recorded here, and Node-SDK-like profiles. Static
 * functions: each test program includes it once, after cmocka. */
#ifndef BRAID_TESTS_MERGER_STACKS_H
#define BRAID_TESTS_MERGER_STACKS_H

#include <stdio.h>
#include <string.h>

#include "merger/merger.h"

/* ---- building stacks ------------------------------------------------------- */

/* Frames from "K:name;K:name;..." root first, K one of n (native), k
 * (kernel), j (JIT, name may be empty), u (an address in no mapping). */
struct stk {
	struct frame f[64];
	size_t n;
	char names[64][96];
};

static inline void stk_parse(struct stk *s, const char *spec)
{
	struct frame tmp[64];
	size_t n = 0;
	const char *p = spec;

	memset(s, 0, sizeof(*s));
	while (*p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char kind = p[0];

		assert_true(len >= 2 && p[1] == ':' && n < 64);
		snprintf(s->names[n], sizeof(s->names[n]), "%.*s", (int)(len - 2), p + 2);
		tmp[n] = (struct frame){.name = s->names[n]};
		switch (kind) {
		case 'k':
			tmp[n].kind = FRAME_KERNEL;
			tmp[n].module = "[kernel.kallsyms]";
			break;
		case 'j':
			tmp[n].kind = FRAME_JIT;
			tmp[n].module = "[jit]";
			tmp[n].offset = 0x1000 + n;
			break;
		case 'u':
			tmp[n].kind = FRAME_UNKNOWN;
			tmp[n].module = "[unknown]";
			tmp[n].name = NULL;
			break;
		default:
			tmp[n].kind = FRAME_NATIVE;
			tmp[n].module = "/usr/bin/node";
			break;
		}
		if (tmp[n].name && !tmp[n].name[0])
			tmp[n].name = NULL;
		n++;
		p += len;
		if (*p == ';')
			p++;
	}
	/* leaf first */
	for (size_t i = 0; i < n; i++)
		s->f[i] = tmp[n - 1 - i];
	s->n = n;
}

#define NODE_ROOT                                                                                  \
	"n:__libc_start_main;n:node::Start;n:node::NodeMainInstance::Run;n:node::SpinEventLoop;"   \
	"n:uv_run;n:uv__run_timers;n:node::Environment::RunTimers;n:v8::Function::Call;"           \
	"n:v8::internal::Execution::Call;n:v8::internal::(anonymous namespace)::Invoke;"           \
	"n:Builtins_JSEntry;n:Builtins_JSEntryTrampoline"

/* JS calling crypto, with the kernel sampled */
static const char *const JS_CRYPTO __attribute__((unused)) =
	NODE_ROOT ";j:;n:Builtins_InterpreterEntryTrampoline;j:;"
		  "n:Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit;"
		  "n:v8::internal::Builtin_HandleApiCall;"
		  "n:node::crypto::PBKDF2Traits::DeriveBits;"
		  "n:PKCS5_PBKDF2_HMAC;k:asm_sysvec_apic_timer_interrupt";
static const char *const JS_PURE __attribute__((unused)) = NODE_ROOT ";j:;j:;j:";
static const char *const GC_IN_JS __attribute__((unused)) =
	NODE_ROOT ";j:;n:Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit;"
		  "n:v8::internal::Runtime_AllocateInYoungGeneration;"
		  "n:v8::internal::Heap::CollectGarbage;n:v8::internal::ScavengerCollector::"
		  "CollectGarbage";
static const char *const WORKER __attribute__((unused)) =
	"n:clone3;n:start_thread;n:uv__thread_start;n:worker;"
	"n:node::crypto::PBKDF2Traits::DeriveBits;n:PKCS5_PBKDF2_HMAC";
static const char *const IDLE __attribute__((unused)) =
	"n:__libc_start_main;n:node::Start;n:node::SpinEventLoop;"
	"n:uv_run;n:uv__io_poll;n:epoll_wait;k:do_epoll_wait";
static const char *const BROKEN __attribute__((unused)) =
	"u:;u:;n:PKCS5_PBKDF2_HMAC;n:sha256_block_data_order";

/* ---- building SDK profiles ---------------------------------------------------- */

/* A Node-SDK-like profile: samples/count, wall/nanoseconds and, with cpu,
 * cpu/nanoseconds. Stacks root first, names as "name" (system name = name,
 * display name "./app.js:name:1"); pseudo-frames ("Node.js", "(idle)") and
 * native functions ("@run") have no file: display name ":name:0". */
static inline struct profile *sdk_new(bool cpu)
{
	struct profile *p = profile__new();

	assert_non_null(p);
	assert_int_equal(profile__add_sample_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_sample_type(p, "wall", "nanoseconds"), 0);
	if (cpu)
		assert_int_equal(profile__add_sample_type(p, "cpu", "nanoseconds"), 0);
	assert_int_equal(profile__set_period(p, "wall", "nanoseconds", 10000000), 0);
	return p;
}

/* Adds a sample of locations locs[0..n) given root first (reversed in
 * place: pprof's are leaf first), with values and a label set (0: none). */
static inline void sdk_add_stack(struct profile *p, uint32_t *locs, size_t n, const int64_t *values,
				 uint32_t label_set)
{
	uint32_t stack;

	for (size_t i = 0; i < n / 2; i++) {
		uint32_t t = locs[i];

		locs[i] = locs[n - 1 - i];
		locs[n - 1 - i] = t;
	}
	assert_int_equal(profile__add_stack(p, locs, n, &stack), 0);
	assert_int_equal(profile__add_sample(p, stack, label_set, values), 0);
}

/* sdk_add with a label set (0: none) on the sample. */
static inline void sdk_add_labelled(struct profile *p, const char *spec, int64_t samples,
				    int64_t wall, int64_t cpu, uint32_t label_set)
{
	uint32_t locs[64];
	size_t n = 0;
	int64_t values[3] = {samples, wall, cpu};
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		struct profile_function f = {0};
		struct profile_line line = {0};
		struct profile_location l = {.n_lines = 1, .lines = &line};
		char disp[160];
		/* "@run": a native function V8 shows under its JS caller, ":run:0" */
		bool native = t[0] == '@';
		bool pseudo = t[0] == '(' || strcmp(t, "Node.js") == 0 || strchr(t, ' ');

		if (native)
			t++;
		snprintf(disp, sizeof(disp), pseudo || native ? ":%s:0" : "./app.js:%s:1", t);
		assert_int_equal(profile__intern_cstr(p, disp, &f.name), 0);
		assert_int_equal(profile__intern_cstr(p, t, &f.system_name), 0);
		assert_int_equal(
			profile__intern_cstr(p, pseudo || native ? "" : "/app/app.js", &f.filename),
			0);
		assert_int_equal(profile__add_function(p, &f, &line.function), 0);
		line.line = 1;
		assert_int_equal(profile__add_location(p, &l, &locs[n++]), 0);
	}
	sdk_add_stack(p, locs, n, values, label_set);
}

static inline void sdk_add(struct profile *p, const char *spec, int64_t samples, int64_t wall,
			   int64_t cpu)
{
	sdk_add_labelled(p, spec, samples, wall, cpu, 0);
}

#endif
