/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile/'s JFR reader on real recordings of the Pyroscope Java agent and
 * of the JDK (tests/data/jfr, README.md there says how each was made). The
 * figures asserted here come from the JDK's own reader (`jfr summary` and
 * `jfr print --json` on the same files), not from braid; that every stack
 * and label equals Pyroscope's converter is cli_jfr_reference's check
 * (tests/cli/jfr.sh). Malformed recordings: every truncation and byte flip
 * is an error with a message, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/jfr_int.h"
#include "profile/profile.h"

#ifndef TEST_DATA
#error "TEST_DATA must name tests/data"
#endif

static void read_data(const char *name, struct dynbuf *out)
{
	char path[512];
	struct errbuf err = {{0}};
	struct dynbuf raw;

	snprintf(path, sizeof(path), "%s/jfr/%s", TEST_DATA, name);
	dynbuf__init(&raw, 0);
	dynbuf__init(out, 0);
	if (util__read_file(path, 1 << 24, &err, &raw) < 0)
		fail_msg("%s", err.msg);
	if (util__gunzip(raw.data, raw.len, 1 << 26, &err, out) < 0)
		fail_msg("%s: %s", path, err.msg);
	dynbuf__free(&raw);
}

static struct profile_jfr *decode(const struct dynbuf *rec, const struct dynbuf *labels)
{
	struct profile_jfr_opts opts = {.sample_rate = 100,
					.time_nanos = 1796645640000000000,
					.duration_nanos = 2000000000};
	struct profile_jfr *j = NULL;
	struct errbuf err = {{0}};

	if (labels) {
		opts.labels = labels->data;
		opts.labels_len = labels->len;
	}
	if (profile__from_jfr(rec->data, rec->len, &opts, NULL, &err, &j) < 0)
		fail_msg("%s", err.msg);
	return j;
}

static void totals_of(const struct profile_jfr *j, const char *name, int64_t *t)
{
	const struct profile_jfr_entry *e = profile_jfr__find(j, name);

	if (!e)
		fail_msg("no profile %s", name);
	assert_int_equal(profile__totals(e->profile, t), 0);
}

/* The name of location id's function. */
static const char *fn_name(const struct profile *p, uint32_t loc, enum frame_kind *kind)
{
	struct profile_location l;

	assert_int_equal(profile__location(p, loc, &l), 0);
	assert_int_equal(l.n_lines, 1);
	*kind = l.kind;
	return profile__str(p, profile__function(p, l.lines[0].function)->name);
}

/* The agent's default recording: itimer CPU samples at 100 Hz. */
static void test_cpu_recording(void **state)
{
	struct dynbuf rec;
	struct profile_jfr *j;
	const struct profile *p;
	int64_t t[2];
	bool deflate_under_compress = false, kinds_seen[FRAME_KIND_COUNT] = {false};

	(void)state;
	read_data("cpu.jfr.gz", &rec);
	j = decode(&rec, NULL);
	/* 210 jdk.ExecutionSample, all STATE_DEFAULT (jfr print): 210 × 10 ms */
	assert_int_equal(j->n, 1);
	assert_string_equal(j->entries[0].name, "process_cpu:cpu");
	assert_string_equal(j->entries[0].metric, "process_cpu");
	assert_string_equal(j->jfr_event, "itimer");
	totals_of(j, "process_cpu", t);
	assert_int_equal(t[0], 210 * 10000000LL);
	p = j->entries[0].profile;
	assert_int_equal(profile__n_sample_types(p), 1);
	assert_string_equal(profile__str(p, profile__sample_type(p, 0).type), "cpu");
	assert_string_equal(profile__str(p, profile__period_type(p).type), "cpu");
	assert_int_equal(profile__period(p), 0); /* as Pyroscope leaves it */
	assert_int_equal(profile__time_nanos(p), 1796645640000000000);
	assert_int_equal(profile__duration_nanos(p), 2000000000);
	assert_int_equal(j->stats.unknown_stacks, 0);
	/* zlib's frames (async-profiler's native frames) leafward of the JNI
	 * method, Java frames above it, in one stack */
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		const uint32_t *locs;
		size_t n = profile__stack(p, profile__sample(p, i).stack, &locs);
		bool native_seen = false;

		for (size_t k = 0; k < n; k++) {
			enum frame_kind kind;
			const char *name = fn_name(p, locs[k], &kind);

			kinds_seen[kind] = true;
			if (kind == FRAME_NATIVE && strstr(name, "libz.so"))
				native_seen = true;
			if (native_seen && kind == FRAME_INTERPRETED &&
			    strcmp(name, "java/util/zip/Deflater.deflateBytesBytes") == 0)
				deflate_under_compress = true;
		}
	}
	assert_true(deflate_under_compress);
	assert_true(kinds_seen[FRAME_INTERPRETED]);
	assert_true(kinds_seen[FRAME_NATIVE]);
	profile_jfr__free(j);
	dynbuf__free(&rec);
}

/* Allocation, monitor and park events: counts and sums as the JDK reads them. */
static void test_alloc_lock_recording(void **state)
{
	struct dynbuf rec;
	struct profile_jfr *j;
	int64_t t[2];

	(void)state;
	read_data("alloc_lock.jfr.gz", &rec);
	j = decode(&rec, NULL);
	/* jfr summary: 2443 ObjectAllocationInNewTLAB, 73 JavaMonitorEnter,
	 * 163 ThreadPark, 205 ExecutionSample; jfr print: their tlabSize sum */
	totals_of(j, "memory:alloc_in_new_tlab_objects", t);
	assert_int_equal(t[0], 2443);
	assert_int_equal(t[1], 5123366928LL);
	totals_of(j, "mutex", t);
	assert_int_equal(t[0], 73);
	totals_of(j, "block", t);
	assert_int_equal(t[0], 163);
	totals_of(j, "process_cpu", t);
	assert_int_equal(t[0], 205 * 10000000LL);
	/* no allocation outside TLABs: one profile has the metric */
	assert_null(profile_jfr__find(j, "memory:alloc_outside_tlab_objects"));
	assert_ptr_equal(profile_jfr__find(j, "memory"),
			 profile_jfr__find(j, "memory:alloc_in_new_tlab_objects"));
	assert_null(profile_jfr__find(j, "wall"));
	profile_jfr__free(j);
	dynbuf__free(&rec);
}

/* The agent's context labels become sample labels; the same samples without
 * the labels part carry none. */
static void test_labels_part(void **state)
{
	struct dynbuf rec, labels;
	struct profile_jfr *with, *without;
	const struct profile *p;
	int64_t a[2], b[2];
	size_t labelled = 0;

	(void)state;
	read_data("labels.jfr.gz", &rec);
	dynbuf__init(&labels, 0);
	{
		char path[512];
		struct errbuf err = {{0}};

		snprintf(path, sizeof(path), "%s/jfr/labels.labels.gz", TEST_DATA);
		if (util__read_file(path, 1 << 24, &err, &labels) < 0)
			fail_msg("%s", err.msg);
	}
	with = decode(&rec, &labels);
	without = decode(&rec, NULL);
	totals_of(with, "process_cpu", a);
	totals_of(without, "process_cpu", b);
	assert_int_equal(a[0], b[0]);
	p = profile_jfr__find(with, "process_cpu")->profile;
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		const struct profile_label *ls;
		size_t n = profile__labels(p, profile__sample(p, i).labels, &ls);

		for (size_t k = 0; k < n; k++) {
			/* the app's keys: op, phase; values from its table */
			assert_true(profile__strlen(p, ls[k].key) > 0);
			assert_true(profile__strlen(p, ls[k].str) > 0);
			if (strcmp(profile__str(p, ls[k].key), "op") == 0)
				labelled++;
		}
	}
	assert_true(labelled > 0);
	p = profile_jfr__find(without, "process_cpu")->profile;
	for (size_t i = 0; i < profile__n_samples(p); i++)
		assert_int_equal(profile__sample(p, i).labels, 0);
	profile_jfr__free(with);
	profile_jfr__free(without);
	dynbuf__free(&rec);
	dynbuf__free(&labels);
}

/* A recording of the JDK's own Flight Recorder reads too. */
static void test_jdk_recording(void **state)
{
	struct dynbuf rec;
	struct profile_jfr *j;
	int64_t t[2];

	(void)state;
	read_data("jdk.jfr.gz", &rec);
	j = decode(&rec, NULL);
	/* the JDK's "Native" frames are Java methods declared native: Java frames */
	{
		const struct profile *p = profile_jfr__find(j, "process_cpu")->profile;

		for (uint32_t id = 1; id <= profile__n_locations(p); id++) {
			enum frame_kind kind;

			fn_name(p, id, &kind);
			assert_int_equal(kind, FRAME_INTERPRETED);
		}
	}
	/* jfr summary and print: 419 ExecutionSample (STATE_RUNNABLE), 2272
	 * allocations outside TLABs, 606 in new TLABs, 266 ThreadPark, 73
	 * JavaMonitorEnter of which one has no stack trace (null there too:
	 * dropped, as Pyroscope drops it) */
	totals_of(j, "process_cpu", t);
	assert_int_equal(t[0], 419 * 10000000LL);
	totals_of(j, "memory:alloc_outside_tlab_objects", t);
	assert_int_equal(t[0], 2272);
	totals_of(j, "memory:alloc_in_new_tlab_objects", t);
	assert_int_equal(t[0], 606);
	totals_of(j, "block", t);
	assert_int_equal(t[0], 266);
	totals_of(j, "mutex", t);
	assert_int_equal(t[0], 72);
	assert_int_equal(j->stats.unknown_stacks, 1);
	profile_jfr__free(j);
	dynbuf__free(&rec);
}

/* Every prefix of a recording, and every byte of its header and of a
 * stride of its body changed, is read or refused with a message. */
static void test_malformed(void **state)
{
	struct dynbuf rec;
	struct profile_jfr_opts opts = {.sample_rate = 100};
	struct errbuf err;
	unsigned char *copy;
	size_t refused = 0;

	(void)state;
	read_data("cpu.jfr.gz", &rec);
	copy = malloc(rec.len);
	assert_non_null(copy);
	for (size_t cut = 0; cut < rec.len; cut += cut < 256 ? 1 : 61) {
		struct profile_jfr *j = NULL;
		int r;

		memset(&err, 0, sizeof(err));
		r = profile__from_jfr(rec.data, cut, &opts, NULL, &err, &j);
		assert_true(r < 0);
		assert_null(j);
		assert_true(err.msg[0] != '\0');
		refused++;
	}
	for (size_t at = 0; at < rec.len; at += at < 68 ? 1 : 7) {
		struct profile_jfr *j = NULL;
		int r;

		memcpy(copy, rec.data, rec.len);
		copy[at] ^= (unsigned char)(0x5a + at);
		memset(&err, 0, sizeof(err));
		r = profile__from_jfr(copy, rec.len, &opts, NULL, &err, &j);
		if (r < 0) {
			assert_null(j);
			assert_true(err.msg[0] != '\0');
			assert_true(r == -EBADMSG || r == -E2BIG || r == -EOVERFLOW);
		} else {
			profile_jfr__free(j);
		}
	}
	/* messages a user can act on */
	memset(&err, 0, sizeof(err));
	assert_int_equal(profile__from_jfr("FLR\0", 4, &opts, NULL, &err, NULL), -EBADMSG);
	assert_non_null(strstr(err.msg, "not a recording"));
	memcpy(copy, rec.data, rec.len);
	copy[5] = 1; /* version 1.x */
	assert_int_equal(profile__from_jfr(copy, rec.len, &opts, NULL, &err, NULL), -EBADMSG);
	assert_non_null(strstr(err.msg, "version 1."));
	memcpy(copy, rec.data, rec.len);
	copy[67] &= 0xfe; /* integers not compressed */
	assert_int_equal(profile__from_jfr(copy, rec.len, &opts, NULL, &err, NULL), -EBADMSG);
	assert_non_null(strstr(err.msg, "uncompressed"));
	/* a labels part that is not one */
	opts.labels = "not a protobuf \xff\xff\xff";
	opts.labels_len = 18;
	assert_int_equal(profile__from_jfr(rec.data, rec.len, &opts, NULL, &err, NULL), -EBADMSG);
	assert_non_null(strstr(err.msg, "labels part"));
	assert_true(refused > 256);
	free(copy);
	dynbuf__free(&rec);
}

/* Caps: a recording over max_decompressed, and a stack over the depth cap. */
static void test_caps(void **state)
{
	struct dynbuf rec;
	struct profile_jfr_opts opts = {.sample_rate = 100};
	struct profile_limits lim;
	struct errbuf err = {{0}};
	struct profile_jfr *j = NULL;

	(void)state;
	read_data("cpu.jfr.gz", &rec);
	profile_limits__default(&lim);
	lim.max_decompressed = rec.len - 1;
	assert_int_equal(profile__from_jfr(rec.data, rec.len, &opts, &lim, &err, &j), -EFBIG);
	profile_limits__default(&lim);
	lim.max_stack_depth = 4;
	assert_int_equal(profile__from_jfr(rec.data, rec.len, &opts, &lim, &err, &j), -E2BIG);
	assert_non_null(strstr(err.msg, "over the cap of 4"));
	assert_null(j);
	dynbuf__free(&rec);
}

static void check_norm(const char *in, const char *want)
{
	struct arena a = {0};
	struct jfr_str ret;
	struct jfr_str s = {in, (uint32_t)strlen(in), 0};
	bool changed = jfr__normalize_symbol(s, &a, &ret);

	if (!want) {
		assert_false(changed);
	} else {
		assert_true(changed);
		assert_int_equal(ret.len, strlen(want));
		assert_memory_equal(ret.p, want, ret.len);
	}
	arena__free(&a);
}

/* Pyroscope's renaming of generated classes, rule by rule (its tests' and
 * docs' examples), and names it leaves alone. */
static void test_symbol_names(void **state)
{
	(void)state;
	check_norm("jdk/internal/reflect/GeneratedMethodAccessor31",
		   "jdk/internal/reflect/GeneratedMethodAccessor_");
	check_norm("jdk/internal/reflect/GeneratedMethodAccessor", NULL);
	check_norm("jdk/internal/reflect/GeneratedMethodAccessor3x", NULL);
	check_norm("org/example/rideshare/OrderService$$Lambda$669.0x0000000800fd7318",
		   "org/example/rideshare/OrderService$$Lambda_");
	check_norm("Fib$$Lambda.0x00007ffa600c4da0", "Fib$$Lambda_");
	check_norm("LabelsApp$$Lambda$14/0x0000000800c03000", "LabelsApp$$Lambda_");
	check_norm("Foo$$Lambda12", "Foo$$Lambda_");
	check_norm("Foo$$Lambda$12", NULL);	/* "$12" is neither alternative */
	check_norm("$$Lambda$12", NULL);	/* nothing before the mark */
	check_norm("Foo$$Lambda$12x", NULL);	/* not a number */
	check_norm("Foo$$Lambda.0xZZ", NULL);	/* not hex */
	check_norm("Foo$$Lambda.0x00AB", NULL); /* upper-case hex is not matched */
	check_norm("a\nb$$Lambda$1", NULL);	/* no line break in a match */
	check_norm("A$$Lambda$1.0x1$$Lambda$2.0x2", "A$$Lambda$1.0x1$$Lambda_");
	check_norm("libzstd-jni-1.5.1-16931311898282279136.so", "libzstd-jni-_.so");
	check_norm("/tmp/libzstd-jni-1.5.1-16931311898282279136.so (deleted)", "libzstd-jni-_.so");
	check_norm("./tmp/libzstd-jni-1.5-1.so", NULL);
	check_norm("./tmp/libamazonCorrettoCryptoProvider109b39cf33c563eb.so",
		   "libamazonCorrettoCryptoProvider_.so");
	check_norm("./tmp/amazonCorrettoCryptoProviderNativeLibraries.7382c2f79097f415/"
		   "libcrypto.so (deleted)",
		   "libamazonCorrettoCryptoProvider_.so");
	check_norm("libamazonCorrettoCryptoProvider109b39cf33c563e.so", NULL);
	check_norm("libasyncProfiler-linux-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so",
		   "libasyncProfiler-_.so");
	check_norm("/tmp/libasyncProfiler-linux-musl-x64-17b9a1d8156277a98ccc871afa9a8f69215f92.so",
		   "libasyncProfiler-_.so");
	check_norm("libasyncProfiler-linux-x64-0000.so", NULL);
	check_norm("com/x/Svc$$EnhancerBySpringCGLIB$$1a2b3c",
		   "com/x/Svc$$EnhancerBySpringCGLIB$$_");
	check_norm("java/lang/Thread", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_recording), cmocka_unit_test(test_alloc_lock_recording),
		cmocka_unit_test(test_labels_part),   cmocka_unit_test(test_jdk_recording),
		cmocka_unit_test(test_malformed),     cmocka_unit_test(test_caps),
		cmocka_unit_test(test_symbol_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
