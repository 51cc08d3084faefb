/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/perfmap.c: perf maps, the symbol files JITs write
 * (/tmp/perf-PID.map). Entries are kept in the order they were written;
 * after each parse or append they are flattened into disjoint segments,
 * each naming the entry written last among those covering it, so that a
 * lookup is one binary search.
 */
#define _GNU_SOURCE /* qsort_r */
#include "collector/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define PERFMAP_MAX_ENTRIES (16u << 20)		   /* entries of one map */
#define PERFMAP_MAX_NAMES   COLLECTOR_MAX_PERF_MAP /* bytes of names of one map */
#define PERFMAP_CHUNK	    (64u << 10)		   /* names are packed in chunks this big */
#define PERFMAP_NONE	    UINT32_MAX		   /* a segment no entry covers */

struct pm_entry {
	uint64_t start, end;
	const char *name;
};

/* A segment runs from its start to the next segment's start. */
struct pm_seg {
	uint64_t start;
	uint32_t entry; /* index in entries (its sequence number), or PERFMAP_NONE */
};

/* Names never move once written: a name handed out stays valid as the map
 * grows. */
struct pm_chunk {
	struct pm_chunk *next;
	size_t used, size;
	char data[];
};

struct collector_perfmap {
	struct pm_entry *entries; /* in the order written */
	size_t n, cap;
	struct pm_seg *segs; /* by start; the last one is PERFMAP_NONE */
	size_t n_segs;
	struct pm_chunk *chunks;
	size_t name_bytes;
	size_t skipped;
};

static char *store_name(struct collector_perfmap *m, const char *s, size_t len)
{
	struct pm_chunk *c = m->chunks;
	char *p;

	if (!c || c->size - c->used < len + 1) {
		size_t size = len + 1 > PERFMAP_CHUNK ? len + 1 : PERFMAP_CHUNK;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = m->chunks;
		m->chunks = c;
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	m->name_bytes += len + 1;
	return p;
}

/* Parses a hex number (with or without 0x) at *p, followed by a blank. */
static bool parse_hex(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!util__parse_hex64(&s, end, ret) || s == end || (*s != ' ' && *s != '\t'))
		return false;
	*p = s;
	return true;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Adds one line (without its '\n'); a malformed one is counted. */
static int add_line(struct collector_perfmap *m, const char *p, const char *eol)
{
	uint64_t start, size;
	size_t len;
	char *name;

	if (eol > p && eol[-1] == '\r')
		eol--;
	p = skip_blanks(p, eol);
	if (!parse_hex(&p, eol, &start))
		goto skip;
	p = skip_blanks(p, eol);
	if (!parse_hex(&p, eol, &size))
		goto skip;
	p = skip_blanks(p, eol);
	if (p == eol || size == 0 || start + size < start)
		goto skip;
	len = (size_t)(eol - p);
	if (len > COLLECTOR_MAX_SYMBOL_NAME)
		len = COLLECTOR_MAX_SYMBOL_NAME;
	if (m->n == PERFMAP_MAX_ENTRIES || m->name_bytes + len + 1 > PERFMAP_MAX_NAMES)
		return -EFBIG;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct pm_entry *e = realloc(m->entries, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		m->entries = e;
		m->cap = cap;
	}
	name = store_name(m, p, len);
	if (!name)
		return -ENOMEM;
	m->entries[m->n].start = start;
	m->entries[m->n].end = start + size;
	m->entries[m->n].name = name;
	m->n++;
	return 0;
skip:
	m->skipped++;
	return 0;
}

/* ---- flattening --------------------------------------------------------- */

struct flatten {
	const struct pm_entry *entries;
	uint32_t *heap; /* max-heap of live entries by index: the newest on top */
	size_t n_heap;
};

static void heap_push(struct flatten *f, uint32_t v)
{
	size_t i = f->n_heap++;

	while (i > 0 && f->heap[(i - 1) / 2] < v) {
		f->heap[i] = f->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	f->heap[i] = v;
}

static void heap_pop(struct flatten *f)
{
	uint32_t v = f->heap[--f->n_heap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= f->n_heap)
			break;
		if (c + 1 < f->n_heap && f->heap[c + 1] > f->heap[c])
			c++;
		if (f->heap[c] <= v)
			break;
		f->heap[i] = f->heap[c];
		i = c;
	}
	if (f->n_heap)
		f->heap[i] = v;
}

static int by_start(const void *a, const void *b, void *ctx)
{
	const struct pm_entry *entries = ctx;
	uint64_t x = entries[*(const uint32_t *)a].start;
	uint64_t y = entries[*(const uint32_t *)b].start;

	return x < y ? -1 : x > y;
}

static void add_seg(struct pm_seg *segs, size_t *n, uint64_t start, uint32_t entry)
{
	if (*n && segs[*n - 1].entry == entry)
		return;
	if (*n && segs[*n - 1].start == start) {
		/* an empty segment: replace it (and merge with the one before) */
		(*n)--;
		if (*n && segs[*n - 1].entry == entry)
			return;
	}
	segs[*n].start = start;
	segs[*n].entry = entry;
	(*n)++;
}

/* Rebuilds segs from entries: a sweep over the starts in address order,
 * with a heap of the entries covering the current address whose top is the
 * one written last. Entries that ended are dropped from the top lazily:
 * only the top's end can change which entry wins. O(n log n). */
static int flatten(struct collector_perfmap *m)
{
	struct flatten f = {.entries = m->entries};
	uint32_t *order = NULL;
	struct pm_seg *segs = NULL;
	size_t i, n_segs = 0;
	uint64_t cur = 0;
	int r = 0;

	order = malloc((m->n ? m->n : 1) * sizeof(*order));
	f.heap = malloc((m->n ? m->n : 1) * sizeof(*f.heap));
	segs = malloc((2 * m->n + 1) * sizeof(*segs));
	if (!order || !f.heap || !segs) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < m->n; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, m->n, sizeof(*order), by_start, m->entries);
	i = 0;
	while (i < m->n || f.n_heap) {
		uint64_t next;

		/* drop the entries that ended at or before cur */
		while (f.n_heap && m->entries[f.heap[0]].end <= cur)
			heap_pop(&f);
		if (!f.n_heap) {
			if (i == m->n)
				break;
			/* a gap until the next start */
			add_seg(segs, &n_segs, cur, PERFMAP_NONE);
			cur = m->entries[order[i]].start;
		}
		while (i < m->n && m->entries[order[i]].start <= cur)
			heap_push(&f, order[i++]);
		while (f.n_heap && m->entries[f.heap[0]].end <= cur)
			heap_pop(&f);
		if (!f.n_heap)
			continue;
		add_seg(segs, &n_segs, cur, f.heap[0]);
		/* the winner holds until it ends or a newer entry starts */
		next = m->entries[f.heap[0]].end;
		if (i < m->n && m->entries[order[i]].start < next)
			next = m->entries[order[i]].start;
		cur = next;
	}
	add_seg(segs, &n_segs, cur, PERFMAP_NONE);
	free(m->segs);
	m->segs = segs;
	m->n_segs = n_segs;
	segs = NULL;
cleanup:
	free(order);
	free(f.heap);
	free(segs);
	return r;
}

/* ---- the API ------------------------------------------------------------ */

int collector_perfmap__append(struct collector_perfmap *m, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t before = m->n;
	int r = 0;

	while (p < end && r == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if (eol > p)
			r = add_line(m, p, eol);
		p = eol + 1;
	}
	/* what was added before an error stays: the map remains usable */
	if (m->n != before) {
		int f = flatten(m);

		if (f < 0) {
			m->n = before; /* their names stay in the chunks until free */
			return f;
		}
	}
	return r;
}

int collector_perfmap__parse(const char *text, size_t len, struct collector_perfmap **ret)
{
	struct collector_perfmap *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	r = flatten(m);
	if (r == 0)
		r = collector_perfmap__append(m, text, len);
	if (r < 0) {
		collector_perfmap__free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void collector_perfmap__free(struct collector_perfmap *m)
{
	struct pm_chunk *c, *next;

	if (!m)
		return;
	for (c = m->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(m->entries);
	free(m->segs);
	free(m);
}

size_t collector_perfmap__count(const struct collector_perfmap *m)
{
	return m->n;
}

size_t collector_perfmap__skipped(const struct collector_perfmap *m)
{
	return m->skipped;
}

int collector_perfmap__lookup(const struct collector_perfmap *m, uint64_t addr,
			      const char **ret_name, uint64_t *ret_offset)
{
	size_t lo = 0, hi = m->n_segs;
	const struct pm_seg *s;
	const struct pm_entry *e;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->segs[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	s = &m->segs[lo - 1];
	if (s->entry == PERFMAP_NONE)
		return -ENOENT;
	e = &m->entries[s->entry];
	*ret_name = e->name;
	*ret_offset = addr - e->start;
	return 0;
}
