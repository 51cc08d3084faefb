/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the content caches. Stacks and frames are stored once, keyed by a
 * content hash. Each connection caches content -> id; a cleanup that
 * deletes stacks bumps meta.gc_generation, and a connection that sees a new
 * generation at the start of a write transaction forgets its caches.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* Per-connection content caches (entries, a power of two). */
#define CACHE_SLOTS (1u << 17)

static void cache_clear(struct cache *c)
{
	if (c->slots && c->n)
		memset(c->slots, 0, c->cap * sizeof(*c->slots));
	c->n = 0;
}

void store_cache_free(struct cache *c)
{
	free(c->slots);
	c->slots = NULL;
	c->n = c->cap = 0;
}

struct cache_slot *store_cache_find(struct cache *c, uint64_t h1, uint64_t h2)
{
	size_t j, mask = c->cap - 1;

	if (!c->slots)
		return NULL;
	for (j = h1 & mask; c->slots[j].h1; j = (j + 1) & mask)
		if (c->slots[j].h1 == h1 && c->slots[j].h2 == h2)
			return &c->slots[j];
	return NULL;
}

static void cache_insert(struct cache_slot *slots, size_t cap, const struct cache_slot *e)
{
	size_t j;

	for (j = e->h1 & (cap - 1); slots[j].h1; j = (j + 1) & (cap - 1))
		;
	slots[j] = *e;
}

/* Remembers h -> id; NULL when memory is short (the connection caches are
 * an optimisation and go without; a memo's caller reports it). */
struct cache_slot *store_cache_put(struct cache *c, uint64_t h1, uint64_t h2, int64_t id,
				   int64_t aux)
{
	struct cache_slot e = {h1 ? h1 : 1, h2, id, aux};

	if (!c->slots) {
		size_t cap = c->grow ? 1024 : CACHE_SLOTS;

		c->slots = calloc(cap, sizeof(*c->slots));
		if (!c->slots)
			return NULL;
		c->cap = cap;
	}
	if (c->n >= c->cap / 2) {
		if (!c->grow) {
			cache_clear(c);
		} else {
			struct cache_slot *ns = calloc(c->cap * 2, sizeof(*ns));

			if (!ns)
				return NULL;
			for (size_t i = 0; i < c->cap; i++)
				if (c->slots[i].h1)
					cache_insert(ns, c->cap * 2, &c->slots[i]);
			free(c->slots);
			c->slots = ns;
			c->cap *= 2;
		}
	}
	cache_insert(c->slots, c->cap, &e);
	c->n++;
	return store_cache_find(c, e.h1, h2);
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
