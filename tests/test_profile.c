/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile/: the model (dedup, hash-consed stacks, merge, scale, totals, top),
 * the folded and pprof codecs, the real fixtures' figures (as Go's
 * profile.Parse reads them: see tests/tools/pprofdump), and malformed input,
 * each refused with the message a user needs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile.h"

#ifndef BRAID_FIXTURES
#error "BRAID_FIXTURES must name ../shared/fixtures"
#endif

/* ---- helpers ----------------------------------------------------------- */

static uint32_t S(struct profile *p, const char *s)
{
	uint32_t id;

	assert_int_equal(profile__intern_cstr(p, s, &id), 0);
	return id;
}

/* A location with one line calling a function named `name`. */
static uint32_t loc(struct profile *p, const char *name, enum frame_kind kind)
{
	struct profile_function f = {.name = S(p, name)};
	struct profile_line line = {0};
	struct profile_location l = {.kind = kind, .n_lines = 1, .lines = &line};
	uint32_t id;

	assert_int_equal(profile__add_function(p, &f, &line.function), 0);
	assert_int_equal(profile__add_location(p, &l, &id), 0);
	return id;
}

/* Adds a sample for a stack given root first as "a;b;c". */
static void add(struct profile *p, const char *stack, int64_t v0, int64_t v1)
{
	uint32_t locs[64], tmp[64], sid;
	size_t n = 0;
	char *copy = strdup(stack), *save = NULL;
	int64_t values[2] = {v0, v1};

	for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save))
		tmp[n++] = loc(p, t, FRAME_NATIVE);
	for (size_t i = 0; i < n; i++)
		locs[i] = tmp[n - 1 - i];
	free(copy);
	assert_int_equal(profile__add_stack(p, locs, n, &sid), 0);
	assert_int_equal(profile__add_sample(p, sid, 0, values), 0);
}

static struct profile *cpu_profile(void)
{
	struct profile *p = profile__new();

	assert_non_null(p);
	assert_int_equal(profile__add_sample_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_sample_type(p, "cpu", "nanoseconds"), 0);
	assert_int_equal(profile__set_period(p, "cpu", "nanoseconds", 10000000), 0);
	return p;
}

static void folded(const struct profile *p, size_t ti, bool annotate, struct dynbuf *out)
{
	struct profile_folded_opts o = {.annotate = annotate};

	dynbuf__init(out, 0);
	assert_int_equal(profile__to_folded(p, ti, &o, out), 0);
}

static void read_fixture(const char *name, struct dynbuf *out)
{
	char path[512];
	struct errbuf err = {{0}};

	snprintf(path, sizeof(path), "%s/%s", BRAID_FIXTURES, name);
	dynbuf__init(out, 0);
	if (util__read_file(path, 1 << 24, &err, out) < 0)
		fail_msg("%s", err.msg);
}

/* ---- a minimal protobuf writer for hand-made (and broken) pprofs ------- */

static void pb_varint(struct dynbuf *b, uint64_t v)
{
	do {
		unsigned char c = v & 0x7f;

		v >>= 7;
		if (v)
			c |= 0x80;
		assert_int_equal(dynbuf__putc(b, (char)c), 0);
	} while (v);
}

static void pb_uint(struct dynbuf *b, unsigned field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3);
	pb_varint(b, v);
}

static void pb_bytes(struct dynbuf *b, unsigned field, const void *d, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, n);
	assert_int_equal(dynbuf__append(b, d, n), 0);
}

static void pb_msg(struct dynbuf *b, unsigned field, struct dynbuf *m)
{
	pb_bytes(b, field, m->data, m->len);
	dynbuf__free(m);
	dynbuf__init(m, 0);
}

struct fake {
	/* what to break */
	uint64_t sample_location; /* location id the sample refers to */
	uint64_t line_function;	  /* function id location 2's line refers to */
	uint64_t type_string;	  /* string index of sample_type.type */
	const char *string0;	  /* string_table[0] */
	bool unpacked;		  /* write repeated scalars unpacked */
};

/* Strings: "" samples count main fib. Functions 1 main, 2 fib. Locations 1
 * (main) and 2 (fib). One sample: fib <- main, value 7. */
static void fake_pprof(const struct fake *f, struct dynbuf *out)
{
	static const char *const strings[] = {"", "samples", "count", "main", "fib"};
	struct dynbuf m, sub;

	dynbuf__init(out, 0);
	dynbuf__init(&m, 0);
	dynbuf__init(&sub, 0);
	pb_uint(&m, 1, f->type_string);
	pb_uint(&m, 2, 2);
	pb_msg(out, 1, &m); /* sample_type */
	if (f->unpacked) {
		pb_uint(&m, 1, f->sample_location);
		pb_uint(&m, 1, 1);
		pb_uint(&m, 2, 7);
	} else {
		pb_varint(&sub, f->sample_location);
		pb_varint(&sub, 1);
		pb_msg(&m, 1, &sub);
		pb_varint(&sub, 7);
		pb_msg(&m, 2, &sub);
	}
	pb_msg(out, 2, &m); /* sample */
	for (unsigned i = 1; i <= 2; i++) {
		pb_uint(&m, 1, i);
		pb_uint(&sub, 1, i == 2 ? f->line_function : 1);
		pb_uint(&sub, 2, 10 * i);
		pb_msg(&m, 4, &sub); /* line */
		pb_msg(out, 4, &m);  /* location */
	}
	for (unsigned i = 1; i <= 2; i++) {
		pb_uint(&m, 1, i);
		pb_uint(&m, 2, i + 2);
		pb_msg(out, 5, &m); /* function */
	}
	pb_bytes(out, 6, f->string0, strlen(f->string0));
	for (size_t i = 1; i < 5; i++)
		pb_bytes(out, 6, strings[i], strlen(strings[i]));
	dynbuf__free(&m);
	dynbuf__free(&sub);
}

static const struct fake good = {
	.sample_location = 2, .line_function = 2, .type_string = 1, .string0 = ""};

static int decode(const struct dynbuf *b, struct errbuf *err, struct profile **ret)
{
	memset(err, 0, sizeof(*err));
	return profile__from_pprof(b->data, b->len, NULL, err, ret);
}

/* ---- the model --------------------------------------------------------- */

static void test_dedup_and_hash_consing(void **state)
{
	struct profile *p = cpu_profile();
	uint32_t a = loc(p, "main", FRAME_NATIVE), b = loc(p, "fib", FRAME_NATIVE);
	uint32_t k = loc(p, "main", FRAME_KERNEL);
	uint32_t s1, s2, s3, stack[2] = {b, a}, other[2] = {a, b};

	(void)state;
	/* same content, same id; a different kind is a different location */
	assert_int_equal(loc(p, "main", FRAME_NATIVE), a);
	assert_int_not_equal(k, a);
	assert_int_equal(profile__n_functions(p), 2);
	assert_int_equal(profile__n_locations(p), 3);
	assert_int_equal(profile__add_stack(p, stack, 2, &s1), 0);
	assert_int_equal(profile__add_stack(p, stack, 2, &s2), 0);
	assert_int_equal(profile__add_stack(p, other, 2, &s3), 0);
	assert_int_equal(s1, s2);
	assert_int_not_equal(s1, s3);
	assert_int_equal(profile__n_stacks(p), 2);
	/* a stack may not name a location that doesn't exist */
	stack[0] = 99;
	assert_int_equal(profile__add_stack(p, stack, 2, &s2), -EINVAL);
	profile__free(p);
}

static void test_samples_sum_per_stack_and_labels(void **state)
{
	struct profile *p = cpu_profile();
	struct profile_label l1[2], l2[2];
	uint32_t st, set1, set2, locs[1];
	int64_t v[2] = {1, 10}, totals[2];

	(void)state;
	locs[0] = loc(p, "fib", FRAME_NATIVE);
	assert_int_equal(profile__add_stack(p, locs, 1, &st), 0);
	l1[0] = (struct profile_label){.key = S(p, "thread"), .str = S(p, "main")};
	l1[1] = (struct profile_label){.key = S(p, "pid"), .num = 42};
	/* the same labels in another order are the same set */
	l2[0] = l1[1];
	l2[1] = l1[0];
	assert_int_equal(profile__add_labels(p, l1, 2, &set1), 0);
	assert_int_equal(profile__add_labels(p, l2, 2, &set2), 0);
	assert_int_equal(set1, set2);
	assert_int_equal(profile__add_sample(p, st, set1, v), 0);
	assert_int_equal(profile__add_sample(p, st, set2, v), 0);
	assert_int_equal(profile__add_sample(p, st, 0, v), 0);
	assert_int_equal(profile__n_samples(p), 2);
	assert_int_equal(profile__sample(p, 0).values[1], 20);
	assert_int_equal(profile__sample(p, 1).values[1], 10);
	assert_int_equal(profile__totals(p, totals), 0);
	assert_int_equal(totals[0], 3);
	assert_int_equal(totals[1], 30);
	/* overflow is refused and changes nothing */
	v[1] = INT64_MAX;
	assert_int_equal(profile__add_sample(p, st, 0, v), -EOVERFLOW);
	assert_int_equal(profile__sample(p, 1).values[1], 10);
	/* no sample types may be added once there are samples */
	assert_int_equal(profile__add_sample_type(p, "x", "y"), -EBUSY);
	profile__free(p);
}

static void test_merge(void **state)
{
	struct profile *a = cpu_profile(), *b = cpu_profile(), *c = profile__new();
	struct dynbuf out;
	int64_t t[2];

	(void)state;
	add(a, "main;fib", 1, 10);
	add(a, "main;sort", 2, 20);
	add(b, "main;fib", 4, 40);
	add(b, "main;hash", 8, 80);
	profile__set_time(a, 1000, 500);
	profile__set_time(b, 1200, 800);
	assert_int_equal(profile__merge(a, b), 0);
	folded(a, 1, false, &out);
	assert_string_equal(out.data, "main;fib 50\nmain;hash 80\nmain;sort 20\n");
	dynbuf__free(&out);
	assert_int_equal(profile__totals(a, t), 0);
	assert_int_equal(t[0], 15);
	assert_int_equal(t[1], 150);
	/* time range: the union */
	assert_int_equal(profile__time_nanos(a), 1000);
	assert_int_equal(profile__duration_nanos(a), 1000);
	/* different sample types don't merge */
	assert_int_equal(profile__add_sample_type(c, "wall", "nanoseconds"), 0);
	assert_int_equal(profile__merge(c, a), -EINVAL);
	profile__free(c);
	/* an empty profile takes the types of what is merged into it */
	c = profile__new();
	assert_int_equal(profile__merge(c, a), 0);
	assert_int_equal(profile__n_sample_types(c), 2);
	assert_int_equal(profile__period(c), 10000000);
	assert_int_equal(profile__totals(c, t), 0);
	assert_int_equal(t[1], 150);
	profile__free(a);
	profile__free(b);
	profile__free(c);
}

/* Some samples of one profile into another, with a label added (the
 * source's own label of that key replaced); the time range stays. */
static void test_copy_samples(void **state)
{
	struct profile *a = cpu_profile(), *b = profile__new();
	struct profile_label l = {0};
	const struct profile_label *got;
	size_t which[3] = {2, 0, 3}, bad = 4;
	int64_t v[2] = {8, 80};
	uint32_t set;
	struct dynbuf out;

	(void)state;
	add(a, "main;fib", 1, 10);
	add(a, "main;sort", 2, 20);
	add(a, "main;hash", 4, 40);
	assert_int_equal(profile__intern_cstr(a, "mark", &l.key), 0);
	assert_int_equal(profile__intern_cstr(a, "old", &l.str), 0);
	assert_int_equal(profile__add_labels(a, &l, 1, &set), 0);
	/* sample 3: main;hash again, labelled mark=old */
	assert_int_equal(profile__add_sample(a, profile__sample(a, 2).stack, set, v), 0);
	profile__set_time(a, 1000, 500);
	assert_non_null(b);
	assert_int_equal(profile__copy_samples(b, a, which, 3, "mark", "new"), 0);
	folded(b, 1, false, &out);
	assert_string_equal(out.data, "main;fib 10\nmain;hash 120\n");
	dynbuf__free(&out);
	assert_int_equal(profile__time_nanos(b), 0);
	for (size_t i = 0; i < profile__n_samples(b); i++) {
		struct profile_sample smp = profile__sample(b, i);

		assert_int_equal(profile__labels(b, smp.labels, &got), 1);
		assert_string_equal(profile__str(b, got[0].key), "mark");
		assert_string_equal(profile__str(b, got[0].str), "new");
	}
	/* NULL: every sample, labels as they are; an index out of range */
	assert_int_equal(profile__copy_samples(b, a, NULL, 0, NULL, NULL), 0);
	assert_int_equal(profile__n_samples(b), 6);
	assert_int_equal(profile__copy_samples(b, a, &bad, 1, NULL, NULL), -EINVAL);
	profile__free(a);
	profile__free(b);
}

static void test_scale(void **state)
{
	struct profile *p = cpu_profile();
	double r[2] = {1.0, 0.5}, bad[2] = {1.0, 1.0 / 0.0}, huge[2] = {1e30, 1.0};
	int64_t t[2];

	(void)state;
	add(p, "main;fib", 3, 7);
	add(p, "main;sort", 1, 10);
	assert_int_equal(profile__scale(p, r), 0);
	assert_int_equal(profile__totals(p, t), 0);
	assert_int_equal(t[0], 4);
	assert_int_equal(t[1], 4 + 5); /* 3.5 rounds to 4 */
	assert_int_equal(profile__scale(p, bad), -EINVAL);
	assert_int_equal(profile__scale(p, huge), -EOVERFLOW);
	assert_int_equal(profile__totals(p, t), 0);
	assert_int_equal(t[0], 4); /* unchanged by the failures */
	profile__free(p);
}

static void test_top(void **state)
{
	struct profile *p = cpu_profile();
	struct profile_top_entry *e;
	size_t n;

	(void)state;
	add(p, "main;fib;fib;fib", 1, 60);
	add(p, "main;sort", 1, 30);
	add(p, "main", 1, 10);
	assert_int_equal(profile__top(p, 1, &e, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(profile__str(p, e[0].name), "fib");
	assert_int_equal(e[0].flat, 60);
	assert_int_equal(e[0].cum, 60); /* recursion counts once */
	assert_string_equal(profile__str(p, e[1].name), "sort");
	assert_string_equal(profile__str(p, e[2].name), "main");
	assert_int_equal(e[2].flat, 10);
	assert_int_equal(e[2].cum, 100);
	free(e);
	profile__free(p);
}

/* ---- folded ------------------------------------------------------------ */

static void test_folded_read_write(void **state)
{
	const char *in =
		"main;fib;fib 3\r\n\nmain;sort 2\nmain;fib;fib 4\nmain;irq_[k];do_irq_[k] 1\n"
		"main;LazyCompile:*fib_[j] 5\n";
	struct profile_folded_opts o = {.type = "cpu", .unit = "nanoseconds"};
	struct profile *p = NULL;
	struct errbuf err = {{0}};
	struct dynbuf out;
	struct profile_location l;
	int64_t t[1];

	(void)state;
	assert_int_equal(profile__from_folded(in, strlen(in), &o, NULL, &err, &p), 0);
	assert_int_equal(profile__n_sample_types(p), 1);
	assert_string_equal(profile__str(p, profile__sample_type(p, 0).type), "cpu");
	assert_int_equal(profile__n_samples(p), 4); /* the two fib lines are one stack */
	assert_int_equal(profile__totals(p, t), 0);
	assert_int_equal(t[0], 15);
	/* annotations became frame kinds and left the names */
	assert_int_equal(profile__location(p, profile__n_locations(p), &l), 0);
	assert_int_equal(l.kind, FRAME_JIT);
	folded(p, 0, false, &out);
	assert_string_equal(out.data, "main;LazyCompile:*fib 5\nmain;fib;fib 7\nmain;irq;do_irq 1\n"
				      "main;sort 2\n");
	dynbuf__free(&out);
	folded(p, 0, true, &out);
	assert_non_null(strstr(out.data, "main;irq_[k];do_irq_[k] 1\n"));
	assert_non_null(strstr(out.data, "main;LazyCompile:*fib_[j] 5\n"));
	dynbuf__free(&out);
	profile__free(p);
}

static void test_folded_lines_format(void **state)
{
	const char *in = "a;b;c\na;b\na;b;c\n";
	struct profile_folded_opts o = {.lines = true};
	struct profile *p = NULL;
	struct errbuf err = {{0}};
	struct dynbuf out;

	(void)state;
	assert_int_equal(profile__from_folded(in, strlen(in), &o, NULL, &err, &p), 0);
	folded(p, 0, false, &out);
	assert_string_equal(out.data, "a;b 1\na;b;c 2\n");
	assert_string_equal(profile__str(p, profile__sample_type(p, 0).type), "samples");
	dynbuf__free(&out);
	profile__free(p);
}

static void expect_folded_error(const char *in, int code, const char *msg)
{
	struct profile *p = NULL;
	struct errbuf err = {{0}};
	struct profile_limits lim;

	profile_limits__default(&lim);
	lim.max_stack_depth = 4;
	lim.max_samples = 3;
	assert_int_equal(profile__from_folded(in, strlen(in), NULL, &lim, &err, &p), code);
	assert_null(p);
	if (!strstr(err.msg, msg))
		fail_msg("expected \"%s\" in \"%s\"", msg, err.msg);
}

static void test_folded_errors(void **state)
{
	(void)state;
	expect_folded_error("a;b 1\na;b;c\n", -EBADMSG,
			    "line 2: no count (expected \"frame;frame;... COUNT\")");
	expect_folded_error("a;b 1\n\na;b x\n", -EBADMSG, "line 3: count \"x\" is not");
	expect_folded_error("a;b -3\n", -EBADMSG, "line 1: count \"-3\" is not a non-negative");
	expect_folded_error("a;b 99999999999999999999\n", -EBADMSG, "line 1: count");
	expect_folded_error("a;;b 1\n", -EBADMSG, "line 1: empty frame name (frame 2)");
	expect_folded_error(" 1\n", -EBADMSG, "line 1: empty frame name");
	expect_folded_error("a;b;c;d;e 1\n", -E2BIG, "line 1: more than 4 frames");
	expect_folded_error("a 1\nb 1\nc 1\nd 1\n", -E2BIG, "line 4: more than 3 distinct stacks");
	expect_folded_error("a 9223372036854775807\na 1\n", -EBADMSG, "line 2: the counts");
}

/* ---- pprof ------------------------------------------------------------- */

static void test_pprof_round_trip_model(void **state)
{
	struct profile *p = cpu_profile(), *q = NULL;
	struct profile_mapping m = {.start = 0x400000, .limit = 0x500000};
	struct profile_label lab = {0};
	struct profile_location l = {0}, got;
	struct profile_meta meta = {0};
	struct dynbuf enc, f1, f2;
	struct errbuf err = {{0}};
	uint32_t ids[6], st, lset, mid;
	int64_t v[2] = {3, 30};

	(void)state;
	profile__set_time(p, 1795238894424530868, 2113381901);
	meta.default_sample_type = S(p, "cpu");
	profile__set_meta(p, &meta);
	assert_int_equal(profile__add_comment(p, S(p, "made by a test")), 0);
	m.filename = S(p, "/usr/bin/node");
	m.build_id = S(p, "abc123");
	m.flags = PROFILE_MAPPING_HAS_FUNCTIONS;
	assert_int_equal(profile__add_mapping(p, &m, &mid), 0);
	/* one location of every kind; native in a real file, an unsymbolized one */
	ids[0] = loc(p, "do_syscall_64", FRAME_KERNEL);
	ids[1] = loc(p, "write", FRAME_NATIVE);
	ids[2] = loc(p, "LazyCompile:*fib", FRAME_JIT);
	ids[3] = loc(p, "./app.js:fib:5", FRAME_INTERPRETED);
	l.mapping = mid;
	l.address = 0x401234;
	l.kind = FRAME_NATIVE;
	assert_int_equal(profile__add_location(p, &l, &ids[4]), 0);
	ids[5] = loc(p, "Node.js", FRAME_UNKNOWN);
	assert_int_equal(profile__add_stack(p, ids, 6, &st), 0);
	lab.key = S(p, "pid");
	lab.num = 4242;
	lab.num_unit = S(p, "pid");
	assert_int_equal(profile__add_labels(p, &lab, 1, &lset), 0);
	assert_int_equal(profile__add_sample(p, st, lset, v), 0);

	dynbuf__init(&enc, 0);
	assert_int_equal(profile__to_pprof(p, true, &enc), 0);
	assert_true(util__is_gzip(enc.data, enc.len));
	assert_int_equal(profile__from_pprof(enc.data, enc.len, NULL, &err, &q), 0);
	assert_int_equal(profile__time_nanos(q), 1795238894424530868);
	assert_int_equal(profile__duration_nanos(q), 2113381901);
	assert_int_equal(profile__period(q), 10000000);
	assert_string_equal(profile__str(q, profile__period_type(q).unit), "nanoseconds");
	assert_int_equal(profile__default_sample_type(q), 1);
	{
		const uint32_t *c;

		assert_int_equal(profile__comments(q, &c), 1);
		assert_string_equal(profile__str(q, c[0]), "made by a test");
	}
	/* every frame kind survived, and the real mapping too */
	{
		const uint32_t *locs;
		static const enum frame_kind kinds[6] = {FRAME_KERNEL, FRAME_NATIVE,
							 FRAME_JIT,    FRAME_INTERPRETED,
							 FRAME_NATIVE, FRAME_UNKNOWN};

		assert_int_equal(profile__n_samples(q), 1);
		assert_int_equal(profile__stack(q, profile__sample(q, 0).stack, &locs), 6);
		for (int i = 0; i < 6; i++) {
			assert_int_equal(profile__location(q, locs[i], &got), 0);
			assert_int_equal(got.kind, kinds[i]);
		}
		assert_int_equal(profile__location(q, locs[4], &got), 0);
		assert_int_equal(got.address, 0x401234);
		assert_string_equal(profile__str(q, profile__mapping(q, got.mapping)->filename),
				    "/usr/bin/node");
		assert_string_equal(profile__str(q, profile__mapping(q, got.mapping)->build_id),
				    "abc123");
	}
	{
		const struct profile_label *ql;

		assert_int_equal(profile__labels(q, profile__sample(q, 0).labels, &ql), 1);
		assert_string_equal(profile__str(q, ql[0].key), "pid");
		assert_int_equal(ql[0].num, 4242);
		/* a decoded profile's strings are found by content */
		assert_int_equal(profile__find_string(q, "pid"), ql[0].key);
		assert_int_equal(profile__find_string(q, "no such string"), 0);
		assert_int_equal(profile__find_string(q, NULL), 0);
	}
	folded(p, 1, true, &f1);
	folded(q, 1, true, &f2);
	assert_string_equal(f1.data, f2.data);
	assert_string_equal(f1.data,
			    "Node.js;node+0x1234;./app.js:fib:5;LazyCompile:*fib_[j];write;"
			    "do_syscall_64_[k] 30\n");
	dynbuf__free(&enc);
	dynbuf__free(&f1);
	dynbuf__free(&f2);
	profile__free(p);
	profile__free(q);
}

static void test_pprof_packed_and_unpacked(void **state)
{
	struct fake f = good;
	struct dynbuf b, out;
	struct errbuf err;
	struct profile *p = NULL;

	(void)state;
	for (int unpacked = 0; unpacked <= 1; unpacked++) {
		f.unpacked = unpacked;
		fake_pprof(&f, &b);
		assert_int_equal(decode(&b, &err, &p), 0);
		folded(p, 0, false, &out);
		assert_string_equal(out.data, "main;fib 7\n");
		dynbuf__free(&out);
		dynbuf__free(&b);
		profile__free(p);
		p = NULL;
	}
}

static void expect_pprof_error(const struct dynbuf *b, int code, const char *msg)
{
	struct errbuf err;
	struct profile *p = NULL;

	assert_int_equal(decode(b, &err, &p), code);
	assert_null(p);
	if (!strstr(err.msg, msg))
		fail_msg("expected \"%s\" in \"%s\"", msg, err.msg);
}

static void test_pprof_malformed(void **state)
{
	struct fake f;
	struct dynbuf b, z;

	(void)state;
	/* truncated message: the last string's bytes are cut */
	fake_pprof(&good, &b);
	b.len -= 2;
	expect_pprof_error(&b, -EBADMSG, "truncated message (3 bytes declared, 1 left)");
	expect_pprof_error(&b, -EBADMSG, "Profile.string_table[4]");
	dynbuf__free(&b);

	/* bad varint: eleven continuation bytes in the sample's location ids */
	dynbuf__init(&b, 0);
	pb_varint(&b, 2 << 3 | 2);
	pb_varint(&b, 13);
	pb_varint(&b, 1 << 3 | 2);
	pb_varint(&b, 11);
	for (int i = 0; i < 11; i++)
		dynbuf__putc(&b, (char)0xff);
	pb_bytes(&b, 6, "", 0);
	expect_pprof_error(&b, -EBADMSG, "bad varint in a packed field");
	expect_pprof_error(&b, -EBADMSG, "Profile.sample[0].location_id");
	dynbuf__free(&b);

	/* dangling location id */
	f = good;
	f.sample_location = 9;
	fake_pprof(&f, &b);
	expect_pprof_error(&b, -EBADMSG, "sample[0] refers to location id 9, which does not exist");
	dynbuf__free(&b);

	/* dangling function id */
	f = good;
	f.line_function = 77;
	fake_pprof(&f, &b);
	expect_pprof_error(&b, -EBADMSG, "location[1] (id 2) line 0 refers to function id 77");
	dynbuf__free(&b);

	/* string index out of range */
	f = good;
	f.type_string = 55;
	fake_pprof(&f, &b);
	expect_pprof_error(&b, -EBADMSG,
			   "sample_type[0].type: string index 55 out of range (the string table "
			   "has 5 entries)");
	dynbuf__free(&b);

	/* non-empty string 0 */
	f = good;
	f.string0 = "oops";
	fake_pprof(&f, &b);
	expect_pprof_error(&b, -EBADMSG, "string_table[0] must be empty, found \"oops\"");
	dynbuf__free(&b);

	/* gzip garbage: a gzip header followed by nonsense */
	dynbuf__init(&z, 0);
	dynbuf__append(&z, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage", 33);
	expect_pprof_error(&z, -EBADMSG, "gzip");
	dynbuf__free(&z);

	/* a good profile in a gzip stream cut short */
	fake_pprof(&good, &b);
	dynbuf__init(&z, 0);
	assert_int_equal(util__gzip(b.data, b.len, 9, &z), 0);
	z.len -= 6;
	expect_pprof_error(&z, -EBADMSG, "truncated gzip data");
	dynbuf__free(&z);
	dynbuf__free(&b);

	/* wrong wire type, field 0, a group, an empty file */
	dynbuf__init(&b, 0);
	pb_uint(&b, 2, 5); /* sample as a varint */
	expect_pprof_error(&b, -EBADMSG, "wire type varint where the field needs length-delimited");
	dynbuf__reset(&b);
	pb_uint(&b, 0, 1);
	expect_pprof_error(&b, -EBADMSG, "invalid field number 0");
	dynbuf__reset(&b);
	pb_varint(&b, 7 << 3 | 3);
	expect_pprof_error(&b, -EBADMSG,
			   "wire type group start where the field needs varint at byte 0 (in "
			   "Profile.drop_frames)");
	dynbuf__reset(&b);
	pb_varint(&b, 99 << 3 | 3);
	expect_pprof_error(&b, -EBADMSG, "groups (wire types 3, 4) are not part of pprof");
	dynbuf__reset(&b);
	expect_pprof_error(&b, -EBADMSG, "empty input");
	dynbuf__free(&b);

	/* duplicate ids; a sample with the wrong number of values */
	dynbuf__init(&b, 0);
	{
		struct dynbuf m;

		dynbuf__init(&m, 0);
		pb_uint(&m, 1, 3);
		pb_msg(&b, 5, &m);
		pb_uint(&m, 1, 3);
		pb_msg(&b, 5, &m);
		pb_bytes(&b, 6, "", 0);
		expect_pprof_error(&b, -EBADMSG, "function[1]: duplicate function id 3");
		dynbuf__reset(&b);
		pb_uint(&m, 2, 5);
		pb_msg(&b, 2, &m);
		pb_bytes(&b, 6, "", 0);
		expect_pprof_error(&b, -EBADMSG,
				   "sample[0] has 1 values but the profile has 0 sample types");
		dynbuf__free(&m);
	}
	dynbuf__free(&b);
}

/* Inputs fuzz_pprof led to (tests/data/fuzz-regressions/, see
 * docs/fuzzing.md): each is refused with the fault named. */
static void test_pprof_fuzz_regressions(void **state)
{
	static const struct {
		const char *file;
		const char *msg;
	} t[] = {
		/* time_nanos + duration_nanos past int64: profile__merge added
		 * them (signed overflow) for the union of time ranges */
		{"pprof-time-overflow",
		 "malformed pprof: time_nanos 9223372036854775803 and duration_nanos 100 are not "
		 "a time range (negative, or their sum overflows 64 bits)"},
		{"pprof-time-negative",
		 "malformed pprof: time_nanos -9223372036854775803 and duration_nanos -100 are "
		 "not a time range (negative, or their sum overflows 64 bits)"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		struct errbuf err = {""};
		struct profile *p = NULL;
		struct dynbuf b;
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", BRAID_FUZZ_REGRESSIONS, t[i].file);
		dynbuf__init(&b, 0);
		assert_int_equal(util__read_file(path, 1u << 20, &err, &b), 0);
		assert_int_equal(profile__from_pprof(b.data, b.len, NULL, &err, &p), -EBADMSG);
		assert_null(p);
		assert_string_equal(err.msg, t[i].msg);
		dynbuf__free(&b);
	}
}

/* fuzz_pprof: folded stacks whose model held one string twice (the string
 * table's growth rehashed its index under the slot found for the string
 * being added), so two stacks that are the same were two samples, and a
 * round trip through pprof, which joined them, changed the sample count. */
static void test_folded_fuzz_regression(void **state)
{
	struct errbuf err = {""};
	struct profile *p = NULL, *q = NULL;
	struct dynbuf b, enc;
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/folded-strtab-growth", BRAID_FUZZ_REGRESSIONS);
	dynbuf__init(&b, 0);
	dynbuf__init(&enc, 0);
	assert_int_equal(util__read_file(path, 1u << 20, &err, &b), 0);
	assert_int_equal(profile__from_folded(b.data, b.len, NULL, NULL, &err, &p), 0);
	assert_int_equal(profile__to_pprof(p, false, &enc), 0);
	assert_int_equal(profile__from_pprof(enc.data, enc.len, NULL, &err, &q), 0);
	assert_int_equal(profile__n_samples(q), profile__n_samples(p));
	profile__free(p);
	profile__free(q);
	dynbuf__free(&b);
	dynbuf__free(&enc);
}

static void test_pprof_gzip_bomb(void **state)
{
	size_t n = 100u << 20; /* 100 MiB inflated, over the 64 MiB default */
	char *zeros = calloc(1, n);
	struct dynbuf z;

	(void)state;
	assert_non_null(zeros);
	dynbuf__init(&z, 0);
	assert_int_equal(util__gzip(zeros, n, 9, &z), 0);
	free(zeros);
	expect_pprof_error(&z, -EFBIG, "gzip data inflates to more than 67108864 bytes");
	dynbuf__free(&z);
}

static void test_pprof_count_caps(void **state)
{
	struct profile_limits lim;
	struct errbuf err = {{0}};
	struct profile *p = NULL;
	struct dynbuf b;

	(void)state;
	fake_pprof(&good, &b);
	profile_limits__default(&lim);
	lim.max_strings = 4;
	assert_int_equal(profile__from_pprof(b.data, b.len, &lim, &err, &p), -E2BIG);
	assert_non_null(strstr(err.msg, "profile has 5 strings, over the limit of 4"));
	profile_limits__default(&lim);
	lim.max_locations = 1;
	assert_int_equal(profile__from_pprof(b.data, b.len, &lim, &err, &p), -E2BIG);
	assert_non_null(strstr(err.msg, "2 locations, over the limit of 1"));
	profile_limits__default(&lim);
	lim.max_stack_depth = 1;
	assert_int_equal(profile__from_pprof(b.data, b.len, &lim, &err, &p), -E2BIG);
	assert_non_null(strstr(err.msg, "sample[0] has 2 frames, over the stack depth limit of 1"));
	profile_limits__default(&lim);
	lim.max_decompressed = 10;
	assert_int_equal(profile__from_pprof(b.data, b.len, &lim, &err, &p), -EFBIG);
	assert_non_null(strstr(err.msg, "over the limit of 10 bytes"));
	assert_null(p);
	dynbuf__free(&b);
}

/* ---- the real fixtures ------------------------------------------------- */

struct fixture_figures {
	const char *file;
	const char *types[4];
	int64_t totals[4];
	int64_t period, time_nanos, duration_nanos;
};

/* As Go's profile.Parse reads them (tests/tools/pprofdump). */
static const struct fixture_figures fixtures[] = {
	{"go-runtime-pprof/cpu.pprof.gz",
	 {"samples/count", "cpu/nanoseconds"},
	 {200, 2000000000},
	 10000000,
	 1795238894424530868,
	 2113381901},
	{"go-runtime-pprof/heap.pprof.gz",
	 {"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"},
	 {7891, 49011880, 6721, 1048832},
	 524288,
	 1795238896539199220,
	 0},
	{"node-sdk-0.6.4/req2.pprof.gz",
	 {"samples/count", "wall/nanoseconds", "cpu/nanoseconds"},
	 {199, 1796724000, 1504614484},
	 10326000,
	 1795238878412999936,
	 2054957000},
	{"node-sdk-0.6.4/req3.pprof.gz",
	 {"inuse_objects/count", "inuse_space/bytes"},
	 {1, 1989100},
	 524288,
	 1795238878416000000,
	 0},
};

static void check_figures(const struct profile *p, const struct fixture_figures *f)
{
	int64_t t[PROFILE_MAX_SAMPLE_TYPES];
	size_t nt = 0;

	while (nt < 4 && f->types[nt])
		nt++;
	assert_int_equal(profile__n_sample_types(p), nt);
	for (size_t i = 0; i < nt; i++) {
		char spec[64];
		struct profile_value_type vt = profile__sample_type(p, i);

		snprintf(spec, sizeof(spec), "%s/%s", profile__str(p, vt.type),
			 profile__str(p, vt.unit));
		assert_string_equal(spec, f->types[i]);
	}
	assert_int_equal(profile__totals(p, t), 0);
	for (size_t i = 0; i < nt; i++)
		assert_int_equal(t[i], f->totals[i]);
	assert_int_equal(profile__period(p), f->period);
	assert_int_equal(profile__time_nanos(p), f->time_nanos);
	assert_int_equal(profile__duration_nanos(p), f->duration_nanos);
}

static void test_fixtures_decode_and_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		struct dynbuf data, enc, f1, f2;
		struct errbuf err = {{0}};
		struct profile *p = NULL, *q = NULL;

		read_fixture(fixtures[i].file, &data);
		if (profile__from_pprof(data.data, data.len, NULL, &err, &p) < 0)
			fail_msg("%s: %s", fixtures[i].file, err.msg);
		check_figures(p, &fixtures[i]);
		/* pprof -> model -> pprof -> model keeps everything */
		dynbuf__init(&enc, 0);
		assert_int_equal(profile__to_pprof(p, false, &enc), 0);
		if (profile__from_pprof(enc.data, enc.len, NULL, &err, &q) < 0)
			fail_msg("%s re-encoded: %s", fixtures[i].file, err.msg);
		check_figures(q, &fixtures[i]);
		assert_int_equal(profile__n_samples(q), profile__n_samples(p));
		for (size_t ti = 0; ti < profile__n_sample_types(p); ti++) {
			folded(p, ti, true, &f1);
			folded(q, ti, true, &f2);
			assert_string_equal(f1.data, f2.data);
			dynbuf__free(&f1);
			dynbuf__free(&f2);
		}
		/* folded -> model -> folded, per sample type, keeps every stack */
		for (size_t ti = 0; ti < profile__n_sample_types(p); ti++) {
			struct profile *r = NULL;

			folded(p, ti, false, &f1);
			if (profile__from_folded(f1.data, f1.len, NULL, NULL, &err, &r) < 0)
				fail_msg("%s folded: %s", fixtures[i].file, err.msg);
			folded(r, 0, false, &f2);
			assert_string_equal(f1.data, f2.data);
			dynbuf__free(&f1);
			dynbuf__free(&f2);
			profile__free(r);
		}
		dynbuf__free(&data);
		dynbuf__free(&enc);
		profile__free(p);
		profile__free(q);
	}
}

static void test_fixture_go_cpu_top(void **state)
{
	struct dynbuf data;
	struct errbuf err = {{0}};
	struct profile *p = NULL;
	struct profile_top_entry *e;
	size_t n;
	int ti;

	(void)state;
	read_fixture("go-runtime-pprof/cpu.pprof.gz", &data);
	assert_int_equal(profile__decode(data.data, data.len, PROFILE_FORMAT_AUTO, NULL, NULL, &err,
					 &p, NULL),
			 0);
	ti = profile__default_sample_type(p);
	assert_int_equal(ti, 1);
	assert_int_equal(profile__top(p, (size_t)ti, &e, &n), 0);
	assert_string_equal(profile__str(p, e[0].name), "crypto/sha256.block");
	assert_int_equal(e[0].flat, 1440000000); /* 72% of 2s */
	free(e);
	dynbuf__free(&data);
	profile__free(p);
}

static void test_fixture_node_sdk(void **state)
{
	struct dynbuf data, out;
	struct errbuf err = {{0}};
	struct profile *p = NULL;

	(void)state;
	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &data);
	assert_int_equal(profile__from_pprof(data.data, data.len, NULL, &err, &p), 0);
	/* the SDK's display names, rooted at "Node.js" in the cpu view */
	folded(p, 2, false, &out);
	assert_non_null(strstr(out.data, ":Node.js:0;:Non JS threads activity:0 8733563\n"));
	assert_non_null(strstr(out.data, ":(idle):0 156953008\n"));
	assert_non_null(strstr(out.data, "./app2.js:tick:9;./app2.js:handle:8;"
					 "./app2.js:hashPassword:7;"
					 "node:internal/crypto/pbkdf2:pbkdf2Sync:62 781509215\n"));
	dynbuf__free(&out);
	/* the bare name travels as system_name */
	{
		bool found = false;

		for (uint32_t i = 1; i <= profile__n_functions(p); i++) {
			const struct profile_function *f = profile__function(p, i);

			if (strcmp(profile__str(p, f->name), "./app2.js:fib:5") == 0) {
				assert_string_equal(profile__str(p, f->system_name), "fib");
				assert_string_equal(profile__str(p, f->filename),
						    "/tmp/nodesdk/app2.js");
				found = true;
			}
		}
		assert_true(found);
	}
	dynbuf__free(&data);
	profile__free(p);
}

static void test_decode_detects_format(void **state)
{
	const char *text = "a;b 2\n";
	struct dynbuf z;
	struct errbuf err = {{0}};
	struct profile *p = NULL;
	enum profile_format f;

	(void)state;
	assert_int_equal(
		profile__decode(text, strlen(text), PROFILE_FORMAT_AUTO, NULL, NULL, &err, &p, &f),
		0);
	assert_int_equal(f, PROFILE_FORMAT_FOLDED);
	profile__free(p);
	/* gzipped folded text */
	dynbuf__init(&z, 0);
	assert_int_equal(util__gzip(text, strlen(text), 6, &z), 0);
	assert_int_equal(
		profile__decode(z.data, z.len, PROFILE_FORMAT_AUTO, NULL, NULL, &err, &p, &f), 0);
	assert_int_equal(f, PROFILE_FORMAT_FOLDED);
	profile__free(p);
	dynbuf__free(&z);
	assert_int_equal(profile__parse_format("collapsed", &f), 0);
	assert_int_equal(f, PROFILE_FORMAT_FOLDED);
	assert_int_equal(profile__parse_format("jfr", &f), 0);
	assert_int_equal(f, PROFILE_FORMAT_JFR);
	assert_int_equal(profile__parse_format("trie", &f), -EINVAL);
}

static void test_kind_of_mapping(void **state)
{
	(void)state;
	assert_int_equal(profile__kind_of_mapping("[kernel.kallsyms]"), FRAME_KERNEL);
	assert_int_equal(profile__kind_of_mapping("/tmp/perf-1234.map"), FRAME_JIT);
	assert_int_equal(profile__kind_of_mapping("[jit]"), FRAME_JIT);
	assert_int_equal(profile__kind_of_mapping("/usr/lib/x86_64-linux-gnu/libc.so.6"),
			 FRAME_NATIVE);
	assert_int_equal(profile__kind_of_mapping("[vdso]"), FRAME_NATIVE);
	assert_int_equal(profile__kind_of_mapping("[interpreted]"), FRAME_INTERPRETED);
	assert_int_equal(profile__kind_of_mapping(""), FRAME_UNKNOWN);
	assert_int_equal(profile__kind_of_mapping("[heap]"), FRAME_UNKNOWN);
	for (int k = 0; k < FRAME_KIND_COUNT; k++)
		if (k != FRAME_UNKNOWN)
			assert_int_equal(profile__kind_of_mapping(profile__kind_mapping(k)), k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup_and_hash_consing),
		cmocka_unit_test(test_samples_sum_per_stack_and_labels),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_copy_samples),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_folded_read_write),
		cmocka_unit_test(test_folded_lines_format),
		cmocka_unit_test(test_folded_errors),
		cmocka_unit_test(test_pprof_round_trip_model),
		cmocka_unit_test(test_pprof_packed_and_unpacked),
		cmocka_unit_test(test_pprof_malformed),
		cmocka_unit_test(test_pprof_gzip_bomb),
		cmocka_unit_test(test_pprof_fuzz_regressions),
		cmocka_unit_test(test_folded_fuzz_regression),
		cmocka_unit_test(test_pprof_count_caps),
		cmocka_unit_test(test_fixtures_decode_and_round_trip),
		cmocka_unit_test(test_fixture_go_cpu_top),
		cmocka_unit_test(test_fixture_node_sdk),
		cmocka_unit_test(test_decode_detects_format),
		cmocka_unit_test(test_kind_of_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
