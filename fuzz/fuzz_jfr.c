/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jfr: the JFR reader (profile/jfr*.c). An input that starts with the
 * JFR magic is a recording; any other is a 2-byte little-endian length, the
 * Java agent's `labels` part of that length, then the recording.
 *
 * Checked: an error comes with a message and no profiles; on success every
 * profile has Pyroscope's sample types for its name, no stack deeper than
 * the cap and no more samples than it, totals that fit in 64 bits, and an
 * encoding to pprof that decodes to the same totals.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_limits.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_jfr: %s: %s\n", what, detail ? detail : "");
	abort();
}

static void check_profile(const struct profile_jfr_entry *e, const struct profile_limits *lim)
{
	const struct profile *p = e->profile;
	int64_t ta[PROFILE_MAX_SAMPLE_TYPES], tb[PROFILE_MAX_SAMPLE_TYPES];
	struct profile_limits relim;
	struct profile *q = NULL;
	struct errbuf err = {{0}};
	struct dynbuf enc;
	size_t nt = profile__n_sample_types(p);
	const char *colon = strchr(e->name, ':');
	int r;

	if (!colon || strncmp(e->name, e->metric, (size_t)(colon - e->name)) != 0 || nt < 1 ||
	    nt > 2 || strcmp(profile__str(p, profile__sample_type(p, 0).type), colon + 1) != 0)
		fail("a profile's name is not its metric and first sample type", e->name);
	if (profile__n_samples(p) > lim->max_samples)
		fail("more samples than the cap", e->name);
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		const uint32_t *locs;

		if (profile__stack(p, profile__sample(p, i).stack, &locs) > lim->max_stack_depth)
			fail("a stack deeper than the cap", e->name);
	}
	if (profile__totals(p, ta) < 0)
		return; /* values a recording gives may sum past 64 bits */
	dynbuf__init(&enc, 0);
	if (profile__to_pprof(p, false, &enc) < 0)
		fail("a decoded profile does not encode", e->name);
	profile_limits__default(&relim);
	r = profile__from_pprof(enc.data, enc.len, &relim, &err, &q);
	if (r < 0)
		fail("the encoding of a decoded profile does not decode", err.msg);
	if (profile__totals(q, tb) < 0 || memcmp(ta, tb, nt * sizeof(ta[0])) != 0)
		fail("the pprof round trip changed the totals", e->name);
	profile__free(q);
	dynbuf__free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile_jfr_opts opts = {.sample_rate = 100, .time_nanos = 1, .duration_nanos = 1};
	struct profile_limits lim;
	struct profile_jfr *j = NULL;
	struct errbuf err;
	int r;

	if (size >= 4 && memcmp(data, "FLR\0", 4) != 0) {
		size_t n = (size_t)data[0] | (size_t)data[1] << 8;

		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		opts.labels = data;
		opts.labels_len = n;
		data += n;
		size -= n;
	}
	fuzz_profile_limits(&lim);
	lim.max_decompressed = 1u << 20;
	memset(&err, 0, sizeof(err));
	r = profile__from_jfr(data, size, &opts, &lim, &err, &j);
	if (r > 0 || (r < 0 && j))
		fail("an error and a result, or a positive value", err.msg);
	if (r < 0) {
		if (!err.msg[0])
			fail("an error without a message", NULL);
		return 0;
	}
	for (size_t i = 0; i < j->n; i++)
		check_profile(&j->entries[i], &lim);
	profile_jfr__free(j);
	return 0;
}
