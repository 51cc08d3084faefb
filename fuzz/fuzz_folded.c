/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_folded: the folded-stacks decoder (profile__from_folded) on the same
 * input as collapsed stacks and as Pyroscope's lines, then the encoder
 * (profile__to_folded, plain and annotated) on what it accepts, and the
 * round trip: the folded text braid writes decodes again to the same total.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_limits.h"
#include "profile/profile.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* max_decode_memory and max_mappings, which the shared caps also set, are
 * the pprof decoder's: folded text uses neither. */
static void fuzz_limits(struct profile_limits *lim)
{
	fuzz_profile_limits(lim);
	lim->max_decompressed = 1u << 20;
	lim->max_line_length = 16u << 10;
}

static void fail(const char *what, int a)
{
	fprintf(stderr, "fuzz_folded: %s (%d)\n", what, a);
	abort();
}

/* Encodes p and decodes the result: the total must not change. */
static void round_trip(const struct profile *p, bool annotate)
{
	struct profile_folded_opts fo = {.annotate = annotate};
	struct profile *q = NULL;
	struct profile_limits lim;
	struct errbuf err;
	struct dynbuf out;
	int64_t a, b;
	int r;

	dynbuf__init(&out, 0);
	r = profile__to_folded(p, 0, &fo, &out);
	/* two stacks that differ only in their frames' kinds fold to the same
	 * line without annotations, and their sum may overflow */
	if (r == -EOVERFLOW)
		goto cleanup;
	if (r < 0)
		fail("to_folded failed", r);
	if (profile__totals(p, &a) < 0)
		goto cleanup;
	/* lines-format input grows a " 1" per line: no line cap on the way back */
	profile_limits__default(&lim);
	r = profile__from_folded(out.data, out.len, NULL, &lim, &err, &q);
	if (r < 0) {
		fprintf(stderr, "fuzz_folded: re-decode: %s\n", err.msg);
		fail("braid's own folded output does not decode", r);
	}
	if (profile__totals(q, &b) < 0 || a != b)
		fail("the round trip changed the total", 0);
cleanup:
	profile__free(q);
	dynbuf__free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile_limits lim;

	fuzz_limits(&lim);
	for (int lines = 0; lines < 2; lines++) {
		struct profile_folded_opts fo = {.lines = lines};
		struct profile *p = NULL;
		struct errbuf err;
		int r;

		r = profile__from_folded((const char *)data, size, &fo, &lim, &err, &p);
		if (r > 0 || (r < 0 && p))
			fail("from_folded returned an error and a profile, or a positive value", r);
		if (r < 0)
			continue;
		if (profile__n_sample_types(p) != 1)
			fail("a folded profile has one sample type", 0);
		round_trip(p, false);
		round_trip(p, true);
		profile__free(p);
	}
	return 0;
}
