/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the content caches. Stacks and frames are stored once, keyed by a
 * content hash. Each connection caches content -> id; a cleanup that
 * deletes stacks bumps meta.gc_generation, and a connection that sees a new
 * generation at the start of a write transaction forgets its caches.
 */
#include "store/store_int.h"

#include <stdint.h>
#include <stdlib.h>

/* A connection's content caches start over past this many entries (about
 * 3 MiB each with the index): what one busy second of stacks needs, and
 * no more for a connection that lives for months. */
#define CACHE_ENTRIES (1u << 16)

struct cache_key {
	const struct cache *c;
	uint64_t h1, h2;
};

static bool cache_eq(const void *ctx, uint32_t id)
{
	const struct cache_key *k = ctx;
	const struct cache_slot *e = &k->c->v[id - 1];

	return e->h1 == k->h1 && e->h2 == k->h2;
}

/* h1 is a content hash (or, for a memo, a row id): its low bits spread */
static uint32_t cache_hash(uint64_t h1)
{
	return (uint32_t)h1;
}

static void cache_clear(struct cache *c)
{
	c->n = 0;
	idtab__clear(&c->index);
}

void store_cache_free(struct cache *c)
{
	free(c->v);
	idtab__free(&c->index);
	c->v = NULL;
	c->n = c->cap = 0;
}

struct cache_slot *store_cache_find(struct cache *c, uint64_t h1, uint64_t h2)
{
	struct cache_key k = {c, h1, h2};
	size_t slot;
	uint32_t id = idtab__find(&c->index, cache_hash(h1), cache_eq, &k, &slot);

	return id ? &c->v[id - 1] : NULL;
}

/* Remembers (h1, h2) -> (id, aux); NULL when memory is short (the
 * connection caches are an optimisation and go without; a memo's caller
 * reports it). */
struct cache_slot *store_cache_put(struct cache *c, uint64_t h1, uint64_t h2, int64_t id,
				   int64_t aux)
{
	struct cache_key k = {c, h1, h2};
	struct cache_slot *e;
	size_t slot;
	uint32_t found;

	if (!c->grow && c->n >= CACHE_ENTRIES)
		cache_clear(c);
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		struct cache_slot *nv;

		if (c->n >= UINT32_MAX - 1 || ncap > SIZE_MAX / sizeof(*nv))
			return NULL;
		nv = realloc(c->v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		c->v = nv;
		c->cap = ncap;
	}
	if (idtab__reserve(&c->index) < 0)
		return NULL;
	found = idtab__find(&c->index, cache_hash(h1), cache_eq, &k, &slot);
	if (found) {
		e = &c->v[found - 1];
	} else {
		e = &c->v[c->n++];
		idtab__insert_at(&c->index, slot, cache_hash(h1), (uint32_t)c->n);
	}
	*e = (struct cache_slot){h1, h2, id, aux};
	return e;
}

void store_caches_forget(struct store *s)
{
	cache_clear(&s->frames);
	cache_clear(&s->stacks);
}

/* Inside a write transaction: forgets the content caches if a cleanup
 * removed stacks since they were filled. Only writers of buckets use the
 * caches, so only they pay for the look. */
int store_caches_check(struct store *s)
{
	int64_t gen;
	int r;

	gen = store_query_int(s, ST_GENERATION, &r);
	if (r < 0)
		return r;
	if (gen != s->generation) {
		store_caches_forget(s);
		s->generation = gen;
	}
	return 0;
}
