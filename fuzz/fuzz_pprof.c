/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pprof: the pprof decoder (profile__from_pprof, and profile__decode
 * with format detection), then the round trip of what it accepts: the
 * profile is encoded again (profile__to_pprof), decoded again, and both
 * decodes must hold the same sample types, samples and totals. The folded
 * encoder and `braid inspect`'s top table run on it too, and a merge into
 * an empty profile must keep it whole.
 *
 * Input: one flags byte, then the payload.
 *   bit 0  gzip the payload first (util__gzip), so that mutations reach the
 *          decoder through gunzip as well as raw
 *   bit 1  profile__decode (AUTO: pprof or folded by content) instead of
 *          profile__from_pprof
 *   bit 2  gzip the re-encoding
 *   bit 3  annotate the folded output
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_limits.h"
#include "profile/profile.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_limits(struct profile_limits *lim)
{
	fuzz_profile_limits(lim);
	lim->max_decompressed = 1u << 20;
	lim->max_labels = 8;
	lim->max_sample_types = 4;
	lim->max_line_length = 64u << 10;
}

static void fail(const char *what, int a, int b)
{
	fprintf(stderr, "fuzz_pprof: %s (%d, %d)\n", what, a, b);
	abort();
}

/* What must survive an encode and a decode. */
static void check_same(const struct profile *a, const struct profile *b, bool time_range)
{
	size_t nt = profile__n_sample_types(a);
	int64_t ta[PROFILE_MAX_SAMPLE_TYPES], tb[PROFILE_MAX_SAMPLE_TYPES];
	int ra, rb;

	if (profile__n_sample_types(b) != nt)
		fail("round trip changed the number of sample types", (int)nt,
		     (int)profile__n_sample_types(b));
	if (profile__n_samples(a) != profile__n_samples(b))
		fail("round trip changed the number of samples", (int)profile__n_samples(a),
		     (int)profile__n_samples(b));
	for (size_t i = 0; i < nt; i++) {
		struct profile_value_type x = profile__sample_type(a, i);
		struct profile_value_type y = profile__sample_type(b, i);

		if (strcmp(profile__str(a, x.type), profile__str(b, y.type)) != 0 ||
		    strcmp(profile__str(a, x.unit), profile__str(b, y.unit)) != 0)
			fail("round trip changed a sample type", (int)i, 0);
	}
	ra = profile__totals(a, ta);
	rb = profile__totals(b, tb);
	if (ra != rb)
		fail("round trip changed whether the totals overflow", ra, rb);
	if (ra == 0 && memcmp(ta, tb, nt * sizeof(ta[0])) != 0)
		fail("round trip changed the totals", 0, 0);
	if (profile__period(a) != profile__period(b))
		fail("round trip changed the period", 0, 0);
	if (time_range && (profile__time_nanos(a) != profile__time_nanos(b) ||
			   profile__duration_nanos(a) != profile__duration_nanos(b)))
		fail("round trip changed the time range", 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile_limits lim, relim;
	struct profile *p = NULL, *q = NULL;
	struct errbuf err;
	struct dynbuf in, enc, folded;
	uint8_t flags;
	int r;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	fuzz_limits(&lim);
	dynbuf__init(&in, 0);
	dynbuf__init(&enc, 0);
	dynbuf__init(&folded, 0);
	if (flags & 1) {
		if (util__gzip(data, size, 1, &in) < 0)
			abort();
		data = (const uint8_t *)in.data;
		size = in.len;
	}
	if (flags & 2)
		r = profile__decode(data, size, PROFILE_FORMAT_AUTO, NULL, &lim, &err, &p, NULL);
	else
		r = profile__from_pprof(data, size, &lim, &err, &p);
	if (r > 0 || (r < 0 && p))
		fail("decode returned an error and a profile, or a positive value", r, 0);
	if (r < 0)
		goto cleanup;

	r = profile__to_pprof(p, flags & 4, &enc);
	if (r < 0)
		fail("a decoded profile does not encode", r, 0);
	/* The encoding may be larger than the input (pseudo mappings, packed
	 * fields written whole): decode it under the default caps. */
	profile_limits__default(&relim);
	r = profile__from_pprof(enc.data, enc.len, &relim, &err, &q);
	if (r < 0) {
		fprintf(stderr, "fuzz_pprof: re-decode: %s\n", err.msg);
		fail("the encoding of a decoded profile does not decode", r, 0);
	}
	check_same(p, q, true);

	profile__free(q);
	q = profile__new();
	if (!q)
		abort();
	r = profile__merge(q, p);
	if (r < 0)
		fail("a merge into an empty profile failed", r, 0);
	/* a merge takes a time range only from a profile with a time: a
	 * duration without one (time_nanos 0, unset) is not a range */
	check_same(p, q, profile__time_nanos(p) != 0);

	if (profile__n_sample_types(p)) {
		struct profile_folded_opts fo = {.annotate = flags & 8};
		struct profile_top_entry *top = NULL;
		int d = profile__default_sample_type(p);
		size_t n_top = 0;

		r = profile__to_folded(p, d < 0 ? 0 : (size_t)d, &fo, &folded);
		/* two stacks may fold to the same line and overflow its sum */
		if (r < 0 && r != -EOVERFLOW)
			fail("to_folded failed", r, 0);
		r = profile__top(p, d < 0 ? 0 : (size_t)d, &top, &n_top);
		if (r < 0 && r != -EOVERFLOW)
			fail("top failed", r, 0);
		free(top);
	}
cleanup:
	profile__free(p);
	profile__free(q);
	dynbuf__free(&in);
	dynbuf__free(&enc);
	dynbuf__free(&folded);
	return 0;
}
