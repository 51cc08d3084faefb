/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_push: the push API's decoder (ingest__decode_push): a
 * push.v1.PushRequest in protobuf or in proto3 JSON, and every raw pprof in
 * it. The first input byte picks the content type (bit 0: JSON, bit 1: one
 * of the other spellings); the rest is the body. Every profile it returns
 * must be one the store accepts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "fuzz_limits.h"
#include "ingest_check.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_limits(struct ingest_limits *lim)
{
	ingest_limits__default(lim);
	fuzz_profile_limits(&lim->profile);
	lim->max_decompressed = 1u << 20;
	lim->max_series = 64;
	lim->max_samples = 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[4] = {
		"application/proto",
		"application/json",
		"application/x-protobuf",
		"Application/JSON; charset=utf-8",
	};
	struct ingest_limits lim;
	struct ingest_profile *ps = NULL;
	struct arena a = {0};
	struct errbuf err;
	size_t n = 0;
	void *body;
	int r;

	if (size < 1)
		return 0;
	/* the body alone in its own allocation: a read past it is caught */
	body = malloc(size - 1 ? size - 1 : 1);
	if (!body)
		abort();
	memcpy(body, data + 1, size - 1);
	fuzz_limits(&lim);
	a.limit = 256u << 20;
	memset(err.msg, 'X', sizeof(err.msg));
	r = ingest__decode_push(types[data[0] & 3], body, size - 1, 1700000000000000000, &lim, &a,
				&err, &ps, &n);
	ingest_check_error(r, &err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct store_sdk_profile *p = &ps[i].sdk;
		bool has_name = false;

		ingest_check_storable(&ps[i]);
		if (n > lim.max_samples)
			ingest_check_fail("more profiles than max_samples", NULL);
		if (p->n_labels > lim.max_labels)
			ingest_check_fail("more labels than max_labels", p->service);
		for (size_t k = 0; k < p->n_labels; k++)
			has_name |= strcmp(p->labels[k].name, "__name__") == 0;
		if (!has_name || !p->profile_name)
			ingest_check_fail("a series without __name__", p->service);
	}
	arena__free(&a);
	free(body);
	return 0;
}
