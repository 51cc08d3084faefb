/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_name: the legacy /ingest query's `name` (ingest__parse_name) and
 * `from`/`until` (ingest__parse_time). The input is split at its first NUL
 * or newline: the name before it, the time after it (up to the next NUL).
 * What a name parses to is checked against the documented grammar.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *s)
{
	fprintf(stderr, "fuzz_name: %s: '%s'\n", what, s ? s : "(null)");
	abort();
}

static bool app_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '/' || c == '-';
}

static bool key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

static void check_name(const char *text, const struct ingest_name *n, size_t max_labels)
{
	if (!n->app || !*n->app || !n->service || !*n->service)
		fail("an empty app or service name", n->app);
	for (const char *s = n->app; *s; s++)
		if (!app_char((unsigned char)*s))
			fail("a bad character in an app name", n->app);
	/* the app name less its suffix, or a service_name tag's value */
	if (strncmp(n->app, n->service, strlen(n->service)) != 0 && !strstr(text, "service_name"))
		fail("the service is neither a prefix of the app name nor a tag's", n->service);
	if ((n->profile_name == NULL) != (n->sample_type == NULL) ||
	    (n->sample_type == NULL) != (n->sample_unit == NULL))
		fail("a profile type only in part", n->app);
	if (n->n_tags + 2 > (max_labels > 2 ? max_labels : 2))
		fail("more tags than max_labels allows", n->app);
	for (size_t i = 0; i < n->n_tags; i++) {
		const struct label *t = &n->tags[i];

		if (!t->name || !*t->name || !t->value || !*t->value)
			fail("a tag with an empty key or value", t->name);
		for (const char *s = t->name; *s; s++)
			if (!key_char((unsigned char)*s))
				fail("a bad character in a tag key", t->name);
		/* service_name names the service instead of staying a tag */
		if (strcmp(t->name, "service_name") == 0 ||
		    (strncmp(t->name, "__", 2) == 0 && strcmp(t->name, INGEST_SESSION_LABEL) != 0))
			fail("a reserved tag key", t->name);
		if (strchr(t->value, ',') || strchr(t->value, '}'))
			fail("a tag value holds ',' or '}'", t->value);
		for (size_t k = 0; k < i; k++)
			if (strcmp(n->tags[k].name, t->name) == 0)
				fail("a duplicate tag key", t->name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_labels[] = {INGEST_MAX_LABELS, 3, 0};
	size_t cut = 0;
	char *name, *time;
	int64_t ns = -1;

	while (cut < size && data[cut] != '\0' && data[cut] != '\n')
		cut++;
	name = strndup((const char *)data, cut);
	time = cut < size ? strndup((const char *)data + cut + 1, size - cut - 1) : NULL;
	if (!name || (cut < size && !time))
		abort();

	for (size_t i = 0; i < sizeof(max_labels) / sizeof(max_labels[0]); i++) {
		struct arena a = {0};
		struct ingest_name n;
		struct errbuf err;

		a.limit = 16u << 20;
		/* no NUL: an error that leaves no message shows */
		memset(err.msg, 'X', sizeof(err.msg));
		if (ingest__parse_name(name, max_labels[i], &a, &err, &n) == 0)
			check_name(name, &n, max_labels[i]);
		else if (!memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0])
			fail("an error without a message", name);
		arena__free(&a);
	}

	if (ingest__parse_time(time, 42, &ns) == 0) {
		if (!time || !*time ? ns != 42 : ns < 0)
			fail("a time out of range", time);
	} else if (!time || !*time) {
		fail("no time is not now", time);
	}
	free(name);
	free(time);
	return 0;
}
