/* SPDX-License-Identifier: Apache-2.0 */
/* merger/report.c: the numbers of a report on inputs small enough to work
 * out by hand (where the CPU goes by leaf, categories, splice coverage and
 * its reasons, function shares per view, blind spots, warnings), and what
 * the JSON, Markdown and HTML outputs carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merger_stacks.h"

#define PID    4242
#define PERIOD 10000000ll /* 100 Hz */
#define NS     1000000000ll
#define T0     1700000000ll

/* JS calling crypto, without the timer interrupt: the leaf is OpenSSL */
static const char *const JS_CRYPTO_USER =
	NODE_ROOT ";j:;n:Builtins_InterpreterEntryTrampoline;j:;"
		  "n:Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit;"
		  "n:v8::internal::Builtin_HandleApiCall;"
		  "n:node::crypto::PBKDF2Traits::DeriveBits;n:PKCS5_PBKDF2_HMAC";

struct stacks {
	struct stk s[16];
	struct merger_ebpf_stack e[16];
	size_t n;
};

static void push(struct stacks *st, const char *spec, int32_t tid, int64_t count)
{
	assert_true(st->n < 16);
	stk_parse(&st->s[st->n], spec);
	st->e[st->n] = (struct merger_ebpf_stack){
		.frames = st->s[st->n].f, .n_frames = st->s[st->n].n, .tid = tid, .count = count};
	st->n++;
}

static bool near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

#define assert_near(a, b)                                                                          \
	do {                                                                                       \
		double a_ = (a), b_ = (b);                                                         \
		if (!near(a_, b_))                                                                 \
			fail_msg("%s = %.9f, expected %.9f", #a, a_, b_);                          \
	} while (0)

static struct merger_report *report(const struct merger_report_part *parts, size_t n,
				    struct merger_report_input *in)
{
	struct merger_report *r = NULL;

	in->parts = parts;
	in->n_parts = n;
	in->period = PERIOD;
	in->generated_ns = T0 * NS;
	assert_int_equal(merger__report_new(in, &r), 0);
	return r;
}

/* ---- a native process, no SDK --------------------------------------------------------- */

static void test_native_only(void **state)
{
	struct stacks *st = calloc(1, sizeof(*st));
	struct merger_report_input in = {.title = "native", .pid = PID};
	struct merger_report_numbers n;
	struct merger_report *r;

	(void)state;
	assert_non_null(st);
	push(st, "n:main;n:work", PID, 6);
	push(st, "n:main;n:write_loop;k:do_syscall_64;k:ksys_write", PID, 3);
	push(st, "n:main;u:", PID, 1);
	r = report(
		&(struct merger_report_part){
			.pid = PID, .runtime = RUNTIME_NATIVE, .stacks = st->e, .n_stacks = st->n},
		1, &in);
	merger__report_numbers(r, &n);
	assert_int_equal(n.ebpf_samples, 10);
	assert_int_equal(n.ebpf_value, 10 * PERIOD);
	assert_int_equal(n.merged_samples, 10);
	assert_int_equal(n.sdk_samples, 0);
	assert_near(n.leaf_share[MERGER_LEAF_NATIVE], 0.6);
	assert_near(n.leaf_share[MERGER_LEAF_KERNEL], 0.3);
	assert_near(n.leaf_share[MERGER_LEAF_UNKNOWN], 0.1);
	assert_near(n.leaf_share[MERGER_LEAF_GUEST], 0);
	/* nothing to splice with: every sample "no SDK" */
	assert_int_equal(n.spliced, 0);
	assert_int_equal(n.no_sdk, 10);
	assert_near(merger__report_function_share(r, "ebpf", "main"), 1.0);
	assert_near(merger__report_function_share(r, "ebpf", "work"), 0.6);
	assert_near(merger__report_function_share(r, "ebpf", "ksys_write"), 0.3);
	assert_near(merger__report_function_share(r, "merged", "ksys_write"), 0.3);
	assert_near(merger__report_function_share(r, "sdk", "work"), 0);
	assert_string_equal(merger__report_warning(r, 0), "no_sdk");
	assert_null(merger__report_warning(r, 1));
	merger__report_free(r);
	free(st);
}

/* ---- node with its SDK -------------------------------------------------------------- */

/* 10 eBPF samples of the main thread: 2 crypto under JS with a kernel leaf,
 * 2 crypto with OpenSSL's leaf, 4 pure JS, 2 GC inside JS. The SDK saw
 * 100 ms of CPU: hashPassword 30, pureJs 50, the garbage collector 20. */
static struct profile *node_sdk(int64_t hash_cpu, int64_t pure_cpu, int64_t gc_cpu)
{
	struct profile *sdk = sdk_new(true);

	sdk_add(sdk, "main;handle;hashPassword", hash_cpu / PERIOD, hash_cpu, hash_cpu);
	sdk_add(sdk, "main;handle;pureJs", pure_cpu / PERIOD, pure_cpu, pure_cpu);
	sdk_add(sdk, "Node.js;(garbage collector)", gc_cpu / PERIOD, gc_cpu, gc_cpu);
	return sdk;
}

static void node_stacks(struct stacks *st)
{
	push(st, JS_CRYPTO, PID, 2);
	push(st, JS_CRYPTO_USER, PID, 2);
	push(st, JS_PURE, PID, 4);
	push(st, GC_IN_JS, PID, 2);
}

static void test_node_with_sdk(void **state)
{
	struct stacks *st = calloc(1, sizeof(*st));
	struct profile *sdk = node_sdk(30000000, 50000000, 20000000);
	struct merger_report_input in = {
		.title = "node", .pid = PID, .sdk_profiles = 1, .sdk_sample_rate = 100};
	struct merger_report_numbers n;
	struct merger_report *r;
	struct dynbuf json, md;

	(void)state;
	assert_non_null(st);
	node_stacks(st);
	r = report(&(struct merger_report_part){.pid = PID,
						.runtime = RUNTIME_NODE,
						.stacks = st->e,
						.n_stacks = st->n,
						.sdk = sdk},
		   1, &in);
	/* the report keeps nothing of its inputs */
	profile__free(sdk);
	sdk = NULL;
	merger__report_numbers(r, &n);
	/* where eBPF's CPU goes, by the leaf */
	assert_int_equal(n.ebpf_samples, 10);
	assert_near(n.leaf_share[MERGER_LEAF_KERNEL], 0.2);
	assert_near(n.leaf_share[MERGER_LEAF_NATIVE], 0.2);
	assert_near(n.leaf_share[MERGER_LEAF_GUEST], 0.4);
	assert_near(n.leaf_share[MERGER_LEAF_GC], 0.2);
	/* what both views can tell: 80 % guest code, 20 % GC, in each */
	assert_near(n.ebpf_category[MERGER_CAT_GUEST], 0.8);
	assert_near(n.ebpf_category[MERGER_CAT_GC], 0.2);
	assert_near(n.sdk_category[MERGER_CAT_GUEST], 0.8);
	assert_near(n.sdk_category[MERGER_CAT_GC], 0.2);
	/* the SDK's CPU is eBPF's: 100 ms each */
	assert_true(n.sdk_cpu);
	assert_int_equal(n.sdk_value, 100000000);
	assert_int_equal(n.ebpf_value, 100000000);
	/* every sample spliced: 8 guest samples shared 3:5, 2 GC */
	assert_int_equal(n.spliced, 10);
	assert_int_equal(n.uncovered + n.no_sdk, 0);
	assert_near(merger__report_function_share(r, "merged", "./app.js:hashPassword:1"), 0.3);
	assert_near(merger__report_function_share(r, "merged", "./app.js:pureJs:1"), 0.5);
	assert_near(merger__report_function_share(r, "sdk", "./app.js:pureJs:1"), 0.5);
	assert_near(merger__report_function_share(r, "sdk", "./app.js:handle:1"), 0.8);
	assert_near(merger__report_function_share(r, "ebpf", "./app.js:pureJs:1"), 0);
	assert_near(merger__report_function_share(r, "ebpf", "PKCS5_PBKDF2_HMAC"), 0.4);
	assert_near(merger__report_function_share(r, "merged", "PKCS5_PBKDF2_HMAC"), 0.4);
	assert_near(merger__report_function_share(r, "sdk", "PKCS5_PBKDF2_HMAC"), 0);
	/* no warning: same rate, same CPU */
	assert_null(merger__report_warning(r, 0));

	/* the outputs carry those numbers */
	dynbuf__init(&json, 0);
	dynbuf__init(&md, 0);
	assert_int_equal(merger__report_json(r, &json), 0);
	assert_int_equal(dynbuf__putc(&json, '\0'), 0);
	assert_non_null(strstr(json.data, "\"schema\":\"braid-report/1\""));
	assert_non_null(strstr(json.data, "\"ebpf_shares\":{\"kernel\":0.2,\"gc\":0.2,"
					  "\"jit_compiler\":0,\"interpreter\":0,\"native\":0.2,"
					  "\"guest\":0.4,"));
	assert_non_null(strstr(json.data, "\"sdk_to_ebpf\":1,"));
	assert_non_null(strstr(json.data, "\"coverage\":{\"merged\":1,\"spliced\":1,"
					  "\"ebpf_only\":0,\"reasons\":[]"));
	/* blind spots: OpenSSL is eBPF's alone, under hashPassword or pureJs in
	 * the SDK's view; pureJs and handle are the SDK's alone */
	{
		const char *b = strstr(json.data, "\"ebpf_only\":[");
		const char *crypto = b ? strstr(b, "{\"name\":\"PKCS5_PBKDF2_HMAC\"") : NULL;
		const char *sdk_only = strstr(json.data, "\"sdk_only\":[");

		assert_non_null(crypto);
		assert_non_null(strstr(crypto, "\"share\":0.4,"));
		assert_true(strstr(crypto, "\"sdk_caller\":\"./app.js:hashPassword:1\"") ==
				    strstr(crypto, "\"sdk_caller\"") ||
			    strstr(crypto, "\"sdk_caller\":\"./app.js:pureJs:1\"") ==
				    strstr(crypto, "\"sdk_caller\""));
		assert_non_null(sdk_only);
		assert_non_null(strstr(sdk_only, "{\"name\":\"./app.js:handle:1\",\"share\":0.8"));
		assert_non_null(strstr(sdk_only, "{\"name\":\"./app.js:pureJs:1\",\"share\":0.5"));
		/* the SDK's pseudo-frames are no blind spot */
		{
			const char *end = strstr(sdk_only, "\"warnings\"");
			const char *pseudo = strstr(sdk_only, "Node.js");

			assert_non_null(end);
			assert_true(!pseudo || pseudo > end);
		}
	}
	/* the trees, flat: the eBPF view's root holds its whole value */
	assert_non_null(strstr(json.data, "\"flamegraphs\":{\"ebpf\":{\"names\":[\"all\","));
	assert_non_null(strstr(json.data, "\"nodes\":[[-1,0,\"r\",100000000],"));
	/* the diff tree (the last) says pureJs is the SDK's: d = 0 - 0.5 */
	{
		const char *diff = strstr(json.data, "\"diff\":{\"names\":[");

		assert_non_null(diff);
		assert_non_null(strstr(diff, "\"./app.js:pureJs:1\""));
		assert_non_null(strstr(diff, ",\"i\",50000000,-0.5,0,0.5]"));
	}

	assert_int_equal(merger__report_markdown(r, &md), 0);
	assert_int_equal(dynbuf__putc(&md, '\0'), 0);
	assert_non_null(strstr(md.data, "# node\n"));
	assert_non_null(strstr(md.data, "kernel 20.0 %, runtime internals 20.0 % (GC 20.0 %"));
	assert_non_null(strstr(md.data, "| PKCS5_PBKDF2_HMAC | native | 40.0 % |"));
	assert_non_null(strstr(md.data, "| ./app.js:pureJs:1 | 50.0 % |"));
	assert_non_null(strstr(md.data, "| guest | 80.0 % | 80.0 % |"));
	dynbuf__free(&json);
	dynbuf__free(&md);
	merger__report_free(r);
	profile__free(sdk);
	free(st);
}

/* ---- uncovered seconds, and every warning --------------------------------------------- */

static void test_coverage_and_warnings(void **state)
{
	struct stacks *st = calloc(1, sizeof(*st)), *un = calloc(1, sizeof(*un));
	struct profile *sdk = node_sdk(0, 300000000, 0);
	struct merger_report_input in = {
		.pid = PID,
		.sdk_profiles = 1,
		.sdk_sample_rate = 19, /* vs 100 Hz */
		.sdk_from_ns = T0 * NS,
		.sdk_until_ns = (T0 + 10) * NS,
		.ebpf_from_ns = (T0 + 20) * NS, /* no overlap */
		.ebpf_until_ns = (T0 + 30) * NS,
		.sdk_unattributed = 2,
	};
	struct merger_report_numbers n;
	struct merger_report *r;
	struct dynbuf json;

	(void)state;
	assert_non_null(st);
	assert_non_null(un);
	push(st, JS_PURE, PID, 3);
	push(un, JS_PURE, PID, 2);
	push(un, IDLE, PID, 1);
	r = report(&(struct merger_report_part){.pid = PID,
						.runtime = RUNTIME_NODE,
						.stacks = st->e,
						.n_stacks = st->n,
						.uncovered = un->e,
						.n_uncovered = un->n,
						.sdk = sdk},
		   1, &in);
	merger__report_numbers(r, &n);
	assert_int_equal(n.ebpf_samples, 6);
	assert_int_equal(n.spliced, 3);
	assert_int_equal(n.uncovered, 3);
	assert_int_equal(n.merged_samples, 6);
	assert_near(n.leaf_share[MERGER_LEAF_IDLE] + n.leaf_share[MERGER_LEAF_KERNEL], 1.0 / 6);
	/* the SDK's 300 ms against eBPF's 60 ms */
	assert_string_equal(merger__report_warning(r, 0), "sample_rate");
	assert_string_equal(merger__report_warning(r, 1), "clock_skew");
	assert_string_equal(merger__report_warning(r, 2), "unattributed");
	assert_string_equal(merger__report_warning(r, 3), "cpu_mismatch");
	assert_null(merger__report_warning(r, 4));
	dynbuf__init(&json, 0);
	assert_int_equal(merger__report_json(r, &json), 0);
	assert_int_equal(dynbuf__putc(&json, '\0'), 0);
	assert_non_null(strstr(json.data,
			       "\"coverage\":{\"merged\":0.5,\"spliced\":0.5,"
			       "\"ebpf_only\":0.5,\"reasons\":[{\"reason\":\"uncovered\","
			       "\"category\":null,\"share\":0.5,\"samples\":3,"));
	assert_non_null(strstr(json.data, "do not overlap (10.0 s apart)"));
	assert_non_null(
		strstr(json.data, "2 SDK profiles of this service could not be attributed"));
	assert_non_null(strstr(json.data, "\"sdk_to_ebpf\":5,"));
	dynbuf__free(&json);
	merger__report_free(r);
	profile__free(sdk);
	free(st);
	free(un);
}

/* ---- the HTML page ----------------------------------------------------------------- */

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_html(void **state)
{
	struct stacks *st = calloc(1, sizeof(*st));
	struct merger_report_input in = {.title = "</script><b>x</b>", .pid = PID};
	struct merger_report *r;
	struct dynbuf html, json;
	extern const char merger_report_html[];

	(void)state;
	assert_non_null(st);
	push(st, "n:main;n:</script><script>alert(1)</script>", PID, 5);
	r = report(
		&(struct merger_report_part){
			.pid = PID, .runtime = RUNTIME_NATIVE, .stacks = st->e, .n_stacks = st->n},
		1, &in);
	dynbuf__init(&html, 0);
	dynbuf__init(&json, 0);
	assert_int_equal(merger__report_html(r, &html), 0);
	assert_int_equal(dynbuf__putc(&html, '\0'), 0);
	assert_int_equal(merger__report_json(r, &json), 0);
	/* the data went in, and no name can close its script element */
	assert_null(strstr(html.data, "/*BRAID_REPORT_JSON*/"));
	assert_non_null(strstr(html.data, "\"schema\":\"braid-report/1\""));
	assert_non_null(strstr(html.data, "\\u003c/script>\\u003cscript>alert(1)"));
	assert_int_equal(count(html.data, "</script>"), count(merger_report_html, "</script>"));
	/* self-contained: nothing fetched */
	assert_null(strstr(html.data, "src=\"http"));
	assert_null(strstr(html.data, "href=\"http"));
	dynbuf__free(&html);
	dynbuf__free(&json);
	merger__report_free(r);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_only),
		cmocka_unit_test(test_node_with_sdk),
		cmocka_unit_test(test_coverage_and_warnings),
		cmocka_unit_test(test_html),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
