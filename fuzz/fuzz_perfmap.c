/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_perfmap: perf maps (/tmp/perf-PID.map). The input after its first
 * byte is cut in two where that byte says: the first piece is parsed
 * (collector_perfmap__parse), the second appended (collector_perfmap__append,
 * as the symbolizer does with what a JIT wrote since the last read), and a
 * few addresses are looked up: around each line's start and end, and some
 * fixed ones.
 *
 * The lookups are checked against a reference built from the module's own
 * line parser but none of its flattening: each line parsed alone into a map
 * of its own; an address belongs to the last line (in file order) whose
 * map holds it. Counts of entries and skipped lines must agree too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REF_LINES 64 /* inputs with more lines are only looked up, not checked */

struct line_map {
	struct collector_perfmap *m;
	uint64_t start, size; /* as this harness reads them: only to pick addresses */
};

static void fail(const char *what, uint64_t addr)
{
	fprintf(stderr, "fuzz_perfmap: %s at 0x%llx\n", what, (unsigned long long)addr);
	abort();
}

/* A loose reading of "START SIZE": enough to aim lookups near entries. */
static void guess_range(const char *s, size_t len, uint64_t *start, uint64_t *size)
{
	char buf[80], *end;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*start = strtoull(buf, &end, 16);
	*size = strtoull(end, NULL, 16);
}

/* Splits one piece into lines as collector_perfmap__append does and parses
 * each alone. Returns false when there are too many lines to check. */
static bool split_lines(const char *text, size_t len, struct line_map *lines, size_t *n)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if (eol > p) {
			struct line_map *l = &lines[*n];
			char *copy;

			if (*n == MAX_REF_LINES)
				return false;
			copy = malloc((size_t)(eol - p));
			if (!copy)
				abort();
			memcpy(copy, p, (size_t)(eol - p));
			if (collector_perfmap__parse(copy, (size_t)(eol - p), &l->m) < 0)
				abort();
			guess_range(copy, (size_t)(eol - p), &l->start, &l->size);
			free(copy);
			(*n)++;
		}
		p = eol + 1;
	}
	return true;
}

static void check(const struct collector_perfmap *m, const struct line_map *lines, size_t n,
		  bool have_ref, uint64_t addr)
{
	const char *name = NULL, *want_name = NULL;
	uint64_t off = 0, want_off = 0;
	int r, want = -2;

	r = collector_perfmap__lookup(m, addr, &name, &off);
	if (r == 0 && (!name || strlen(name) > COLLECTOR_MAX_SYMBOL_NAME || off > addr))
		fail("a lookup returned a bad name or offset", addr);
	if (!have_ref)
		return;
	for (size_t i = n; i-- > 0 && want == -2;)
		if (collector_perfmap__lookup(lines[i].m, addr, &want_name, &want_off) == 0)
			want = 0;
	if ((r == 0) != (want == 0))
		fail(r == 0 ? "a lookup found an entry no line covers"
			    : "a lookup missed the entry a line covers",
		     addr);
	if (r == 0 && (strcmp(name, want_name) != 0 || off != want_off))
		fail("a lookup found another entry than the last line covering it", addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t fixed[] = {0, 1, 0x7f0000001000, 0x7f0000001040, UINT64_MAX};
	struct line_map lines[MAX_REF_LINES] = {{0}};
	struct collector_perfmap *m = NULL;
	size_t cut, n = 0, count = 0, skipped = 0;
	char *a, *b;
	bool have_ref;
	int r;

	if (size < 1)
		return 0;
	cut = (size - 1) * data[0] / 255;
	/* each piece in its own allocation: a read past either is caught */
	a = malloc(cut ? cut : 1);
	b = malloc(size - 1 - cut ? size - 1 - cut : 1);
	if (!a || !b)
		abort();
	memcpy(a, data + 1, cut);
	memcpy(b, data + 1 + cut, size - 1 - cut);

	r = collector_perfmap__parse(a, cut, &m);
	if (r < 0)
		goto cleanup;
	r = collector_perfmap__append(m, b, size - 1 - cut);
	if (r < 0)
		goto cleanup;

	have_ref = split_lines(a, cut, lines, &n) && split_lines(b, size - 1 - cut, lines, &n);
	if (have_ref) {
		for (size_t i = 0; i < n; i++) {
			count += collector_perfmap__count(lines[i].m);
			skipped += collector_perfmap__skipped(lines[i].m);
		}
		if (count != collector_perfmap__count(m) ||
		    skipped != collector_perfmap__skipped(m))
			fail("entries or skipped lines counted otherwise than line by line", 0);
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check(m, lines, n, have_ref, fixed[i]);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = lines[i].start, e = s + lines[i].size;

		check(m, lines, n, have_ref, s - 1);
		check(m, lines, n, have_ref, s);
		check(m, lines, n, have_ref, s + lines[i].size / 2);
		check(m, lines, n, have_ref, e - 1);
		check(m, lines, n, have_ref, e);
	}
cleanup:
	for (size_t i = 0; i < n; i++)
		collector_perfmap__free(lines[i].m);
	collector_perfmap__free(m);
	free(a);
	free(b);
	return 0;
}
