/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ingest harnesses (fuzz_legacy, fuzz_push) check on a decoded
 * profile: ingest/ promises that nothing it decodes is refused by the store
 * afterwards (which would be a server error instead of a 4xx naming the
 * fault), so each profile must pass store__put_sdk_profile's checks, redone
 * here without a database.
 */
#ifndef BRAID_FUZZ_INGEST_CHECK_H
#define BRAID_FUZZ_INGEST_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

static void ingest_check_fail(const char *what, const char *s)
{
	fprintf(stderr, "fuzz: a decoded profile the store would refuse: %s '%.200s'\n", what,
		s ? s : "(null)");
	abort();
}

static void ingest_check_string(const char *what, const char *s, size_t max, bool required)
{
	if (required && (!s || !*s))
		ingest_check_fail(what, "(empty)");
	if (s && strlen(s) > max)
		ingest_check_fail(what, s);
}

static void ingest_check_storable(const struct ingest_profile *ip)
{
	const struct store_sdk_profile *p = &ip->sdk;

	ingest_check_string("service", p->service, STORE_MAX_STRING, true);
	ingest_check_string("format", p->format, STORE_MAX_STRING, true);
	ingest_check_string("profile name", p->profile_name, STORE_MAX_STRING, false);
	ingest_check_string("spy name", p->spy_name, STORE_MAX_STRING, false);
	ingest_check_string("units", p->units, STORE_MAX_STRING, false);
	ingest_check_string("aggregation", p->aggregation, STORE_MAX_STRING, false);
	if (!p->payload || !p->payload_len || p->payload_len > STORE_MAX_PAYLOAD)
		ingest_check_fail("payload", "(empty or too large)");
	if (p->until_ns < p->from_ns)
		ingest_check_fail("time range", "(until before from)");
	if (p->n_labels > STORE_MAX_LABELS || (p->n_labels && !p->labels))
		ingest_check_fail("labels", "(too many or missing)");
	for (size_t i = 0; i < p->n_labels; i++) {
		ingest_check_string("label name", p->labels[i].name, STORE_MAX_LABEL_NAME, true);
		ingest_check_string("label value", p->labels[i].value, STORE_MAX_LABEL_VALUE,
				    false);
	}
	if (p->n_types > STORE_MAX_SAMPLE_TYPES || (p->n_types && !p->types))
		ingest_check_fail("sample types", "(too many or missing)");
	for (size_t i = 0; i < p->n_types; i++) {
		ingest_check_string("sample type", p->types[i].type, STORE_MAX_STRING, true);
		ingest_check_string("sample unit", p->types[i].unit, STORE_MAX_STRING, false);
	}
}

/* Every error leaves a message: the reply names the fault. The harness
 * fills err.msg with 'X' (no NUL) before the call. */
static void ingest_check_error(int r, const struct errbuf *err)
{
	if (r >= 0)
		return;
	if (!memchr(err->msg, '\0', sizeof(err->msg)) || !err->msg[0])
		ingest_check_fail("an error without a message", NULL);
	if (ingest__http_status(r) >= 500 && r != -ENOMEM) {
		fprintf(stderr, "fuzz: error %d is a %d: %s\n", r, ingest__http_status(r),
			err->msg);
		abort();
	}
}

#endif
