/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_legacy: the legacy /ingest decoder (ingest__decode_legacy) with every
 * part of a request taken from the input, so that the fuzzer reaches each
 * body format, the name and time rules, sample_type_config and the
 * multipart flags. The input is NUL-separated fields:
 *
 *   name \0 from \0 until \0 format \0 sampleRate \0 spyName \0 units \0
 *   aggregationType \0 Content-Type \0 FLAGS sample_type_config \0 body
 *
 * An empty field is absent (NULL); the body is everything after the tenth
 * NUL (NULs included). FLAGS is one byte:
 *   bit 0  the server split a multipart body (b.multipart)
 *   bit 1  ... and it had a prev_profile field
 *   bit 2  the rest of the field is the multipart sample_type_config
 *   bit 3  gzip the body first (util__gzip)
 *   bit 4  no `profile` field (b.data NULL)
 * A profile that decodes must be one the store accepts; its payload is the
 * body as received, or for format=jfr a form of braid's own whose jfr part
 * holds the body byte for byte (ingest/jfr.c).
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "fuzz_limits.h"
#include "ingest_check.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_FIELDS 10 /* before the body */

static void fuzz_limits(struct ingest_limits *lim)
{
	ingest_limits__default(lim);
	fuzz_profile_limits(&lim->profile);
	lim->max_decompressed = 1u << 20;
	lim->profile.max_line_length = 64u << 10;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *field[N_FIELDS] = {0};
	const char *body = NULL;
	size_t body_len = 0, pos = 0, nf = 0;
	struct ingest_limits lim;
	struct ingest_query q;
	struct ingest_body b = {0};
	struct ingest_profile ret;
	struct arena a = {0};
	struct errbuf err;
	struct dynbuf gz;
	unsigned flags = 0;
	int r;

	/* a copy with a NUL after it: every field is a C string */
	copy = malloc(size + 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	copy[size] = '\0';
	while (nf < N_FIELDS && pos <= size) {
		size_t n = strlen(copy + pos);

		field[nf++] = n ? copy + pos : NULL;
		pos += n + 1;
	}
	if (nf == N_FIELDS && pos <= size) {
		body = copy + pos;
		body_len = size - pos;
	}
	if (field[9]) {
		flags = (unsigned char)field[9][0];
		if ((flags & 4) && field[9][1]) {
			b.sample_type_config = field[9] + 1;
			b.sample_type_config_len = strlen(field[9] + 1);
		}
	}
	q = (struct ingest_query){
		.name = field[0],
		.from = field[1],
		.until = field[2],
		.format = field[3],
		.sample_rate = field[4],
		.spy_name = field[5],
		.units = field[6],
		.aggregation = field[7],
	};
	dynbuf__init(&gz, 0);
	if ((flags & 8) && body) {
		if (util__gzip(body, body_len, 1, &gz) < 0)
			abort();
		body = gz.data;
		body_len = gz.len;
	}
	b.content_type = field[8];
	b.data = flags & 16 ? NULL : body;
	b.len = flags & 16 ? 0 : body_len;
	b.multipart = flags & 1;
	b.prev_profile = flags & 2;

	fuzz_limits(&lim);
	a.limit = 256u << 20;
	memset(err.msg, 'X', sizeof(err.msg));
	r = ingest__decode_legacy(&q, &b, 1700000000000000000, &lim, &a, &err, &ret);
	ingest_check_error(r, &err);
	if (r == 0) {
		ingest_check_storable(&ret);
		if (strcmp(ret.sdk.format, "jfr") == 0) {
			if (ret.sdk.payload_len < 2 || memcmp(ret.sdk.payload, "--", 2) != 0 ||
			    !memmem(ret.sdk.payload, ret.sdk.payload_len, b.data, b.len))
				ingest_check_fail("the JFR form does not hold the body as received",
						  NULL);
		} else if (ret.sdk.payload != b.data || ret.sdk.payload_len != b.len) {
			ingest_check_fail("the payload is not the body as received", NULL);
		}
		if (ret.sdk.n_labels < 2 || strcmp(ret.sdk.labels[0].name, "__name__") != 0 ||
		    strcmp(ret.sdk.labels[1].name, "service_name") != 0)
			ingest_check_fail("__name__ and service_name lead the labels", NULL);
	}
	arena__free(&a);
	dynbuf__free(&gz);
	free(copy);
	return 0;
}
