/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int errbuf__set(struct errbuf *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

/* ---- arena ------------------------------------------------------------- */

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	max_align_t data[];
};

#define ARENA_BLOCK_MIN (64u * 1024u)

void *arena__alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head;
	size_t need = (size + 15u) & ~(size_t)15u;
	size_t bsize;

	if (need < size)
		return NULL;
	if (a->limit && (need > a->limit || a->used > a->limit - need))
		return NULL;
	if (!b || b->size - b->used < need) {
		bsize = need > ARENA_BLOCK_MIN / 4 ? need : ARENA_BLOCK_MIN;
		/* Grow blocks with the arena so big decodes make few mallocs. */
		if (bsize == ARENA_BLOCK_MIN && a->used / 8 > bsize)
			bsize = a->used / 8 > (8u << 20) ? (8u << 20) : a->used / 8;
		b = malloc(sizeof(*b) + bsize);
		if (!b)
			return NULL;
		b->size = bsize;
		b->used = 0;
		if (a->head && need > ARENA_BLOCK_MIN / 4) {
			/* keep the current block as the bump target */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *p = (char *)b->data + b->used;
	b->used += need;
	a->used += need;
	return p;
}

char *arena__strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena__alloc(a, n + 1);

	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *arena__strdup(struct arena *a, const char *s)
{
	return s ? arena__strndup(a, s, strlen(s)) : NULL;
}

void arena__reset(struct arena *a)
{
	struct arena_block *b, *next;

	if (!a->head)
		return;
	for (b = a->head->next; b; b = next) {
		next = b->next;
		free(b);
	}
	a->head->next = NULL;
	a->head->used = 0;
	a->used = 0;
}

void arena__free(struct arena *a)
{
	struct arena_block *b, *next;

	if (!a)
		return;
	for (b = a->head; b; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
	a->used = 0;
}

/* ---- big buffers ------------------------------------------------------- */

#define HUGE_PAGE (2u << 20)

static size_t round_huge(size_t n)
{
	return (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

void *util__big_realloc(void *ptr, size_t old_cap, size_t new_cap)
{
	void *p;

	if (new_cap < UTIL_BIG_MIN) {
		if (old_cap >= UTIL_BIG_MIN)
			return NULL; /* buffers never shrink across the line */
		return realloc(ptr, new_cap);
	}
	if (new_cap > SIZE_MAX - HUGE_PAGE)
		return NULL;
	if (old_cap >= UTIL_BIG_MIN) {
		p = mremap(ptr, round_huge(old_cap), round_huge(new_cap), MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return NULL;
	} else {
		p = mmap(NULL, round_huge(new_cap), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		if (ptr) {
			memcpy(p, ptr, old_cap);
			free(ptr);
		}
	}
	/* advice only: without THP the mapping works the same */
	(void)madvise(p, round_huge(new_cap), MADV_HUGEPAGE);
	return p;
}

void util__big_free(void *ptr, size_t cap)
{
	if (!ptr)
		return;
	if (cap >= UTIL_BIG_MIN)
		munmap(ptr, round_huge(cap));
	else
		free(ptr);
}

/* ---- dynbuf ------------------------------------------------------------ */

void dynbuf__init(struct dynbuf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : SIZE_MAX - 1;
}

int dynbuf__reserve(struct dynbuf *b, size_t extra)
{
	size_t want, ncap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return -EFBIG;
	want = b->len + extra + 1; /* room for the trailing NUL */
	if (want <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = util__big_realloc(b->data, b->cap, ncap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int dynbuf__append(struct dynbuf *b, const void *data, size_t len)
{
	int r = dynbuf__reserve(b, len);

	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int dynbuf__putc(struct dynbuf *b, char c)
{
	if (b->len + 1 < b->cap) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return 0;
	}
	return dynbuf__append(b, &c, 1);
}

int dynbuf__printf(struct dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = dynbuf__reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at p (up to end), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates and past U+10FFFF are not UTF-8 */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

int dynbuf__json_str(struct dynbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end;
	int r;

	if (!s)
		return dynbuf__append(b, "null", 4);
	end = p + strlen(s);
	r = dynbuf__putc(b, '"');
	while (r >= 0 && p < end) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};

			r = dynbuf__append(b, e, 2);
			p++;
		} else if (*p < 0x20) {
			static const char short_esc[] = "btn\0fr";

			if (*p >= '\b' && *p <= '\r' && short_esc[*p - '\b']) {
				char e[2] = {'\\', short_esc[*p - '\b']};

				r = dynbuf__append(b, e, 2);
			} else {
				r = dynbuf__printf(b, "\\u%04x", *p);
			}
			p++;
		} else if ((n = utf8_len(p, end)) > 0) {
			r = dynbuf__append(b, p, n);
			p += n;
		} else {
			r = dynbuf__append(b, "\xef\xbf\xbd", 3);
			p++;
		}
	}
	if (r >= 0)
		r = dynbuf__putc(b, '"');
	return r;
}

int util__html_escape(struct dynbuf *b, const char *s)
{
	int r = 0;

	for (; s && *s && r >= 0; s++)
		r = *s == '<'	 ? dynbuf__printf(b, "&lt;")
		    : *s == '>'	 ? dynbuf__printf(b, "&gt;")
		    : *s == '&'	 ? dynbuf__printf(b, "&amp;")
		    : *s == '"'	 ? dynbuf__printf(b, "&quot;")
		    : *s == '\'' ? dynbuf__printf(b, "&#39;")
				 : dynbuf__putc(b, *s);
	return r;
}

void dynbuf__reset(struct dynbuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void dynbuf__free(struct dynbuf *b)
{
	if (!b)
		return;
	util__big_free(b->data, b->cap);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- hashing ----------------------------------------------------------- */

static uint64_t hash_seed;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_seed_init(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s))
		s = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&s;
	hash_seed = s | 1;
}

/* 64x64 -> 128-bit multiply folded to 64 bits: one multiply mixes 16 bytes
 * (the construction of wyhash and mum-hash). */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash_with(const void *data, size_t len, uint64_t seed)
{
	static const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL,
			      k2 = 0x8ebc6af09c88c6e3ULL;
	const unsigned char *p = data;
	uint64_t h, a, b;
	size_t n = len;

	h = seed ^ mum(len ^ k0, k1);
	while (n >= 16) {
		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		h = mum(a ^ k1 ^ h, b ^ k2);
		p += 16;
		n -= 16;
	}
	a = b = 0;
	if (n > 8) {
		memcpy(&a, p, 8);
		memcpy(&b, p + 8, n - 8);
	} else if (n) {
		memcpy(&a, p, n);
	}
	return mum(mum(a ^ k1 ^ h, b ^ k2 ^ n) ^ k0, len ^ k1);
}

uint64_t util__hash(const void *data, size_t len)
{
	pthread_once(&hash_once, hash_seed_init);
	return hash_with(data, len, hash_seed);
}

uint64_t util__hash_seeded(const void *data, size_t len, uint64_t seed)
{
	return hash_with(data, len, seed);
}

/* ---- idtab ------------------------------------------------------------- */

static int idtab_grow(struct idtab *t, size_t ncap)
{
	/* a fresh mapping is zeroed: big tables take huge pages, small calloc */
	struct idtab_slot *slots = ncap * sizeof(*slots) >= UTIL_BIG_MIN
					   ? util__big_realloc(NULL, 0, ncap * sizeof(*slots))
					   : calloc(ncap, sizeof(*slots));
	size_t i, j, mask = ncap - 1;

	if (!slots)
		return -ENOMEM;
	for (i = 0; t->mask && i <= t->mask; i++) {
		if (!t->slots[i].id)
			continue;
		for (j = t->slots[i].hash & mask; slots[j].id; j = (j + 1) & mask)
			;
		slots[j] = t->slots[i];
	}
	util__big_free(t->slots, t->mask ? (t->mask + 1) * sizeof(*slots) : 0);
	t->slots = slots;
	t->mask = mask;
	return 0;
}

int idtab__presize(struct idtab *t, size_t n)
{
	size_t cap = 64;

	while (cap * 3 < (n + 1) * 4) {
		if (cap > SIZE_MAX / 8)
			return -ENOMEM;
		cap *= 2;
	}
	if (t->mask && t->mask + 1 >= cap)
		return 0;
	return idtab_grow(t, cap);
}

int idtab__grow(struct idtab *t)
{
	size_t cap = t->mask ? t->mask + 1 : 0;

	if (cap > SIZE_MAX / 8)
		return -ENOMEM;
	return idtab_grow(t, cap ? cap * 2 : 64);
}

void idtab__remove_at(struct idtab *t, size_t slot)
{
	size_t i = slot, j, home;

	for (j = (i + 1) & t->mask; t->slots[j].id; j = (j + 1) & t->mask) {
		home = t->slots[j].hash & t->mask;
		/* an id whose home lies in (i, j] is still reachable: leave it */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i].id = 0;
	t->n--;
}

void idtab__clear(struct idtab *t)
{
	if (t->mask)
		memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
	t->n = 0;
}

void idtab__free(struct idtab *t)
{
	if (!t)
		return;
	util__big_free(t->slots, t->mask ? (t->mask + 1) * sizeof(*t->slots) : 0);
	memset(t, 0, sizeof(*t));
}

/* ---- ptrmap ------------------------------------------------------------ */

struct ptrkey {
	const struct ptrmap *m;
	uint64_t a, b;
};

static bool ptrmap_eq(const void *ctx, uint32_t id)
{
	const struct ptrkey *k = ctx;
	const struct ptrmap_entry *e = &k->m->v[id - 1];

	return e->a == k->a && e->b == k->b;
}

static uint32_t ptrmap_hash(uint64_t a, uint64_t b)
{
	return (uint32_t)util__hash_combine(util__hash_u64(a), b);
}

void *ptrmap__get(const struct ptrmap *m, uint64_t a, uint64_t b)
{
	struct ptrkey k = {m, a, b};
	size_t slot;
	uint32_t id = idtab__find(&m->index, ptrmap_hash(a, b), ptrmap_eq, &k, &slot);

	return id ? m->v[id - 1].val : NULL;
}

int ptrmap__put(struct ptrmap *m, uint64_t a, uint64_t b, void *val)
{
	struct ptrkey k = {m, a, b};
	uint32_t h = ptrmap_hash(a, b), id;
	size_t slot;
	int r;

	if (m->n >= UINT32_MAX - 1)
		return -ENOMEM;
	if ((r = idtab__reserve(&m->index)) < 0 ||
	    (r = util__grow((void **)&m->v, &m->cap, m->n + 1, sizeof(*m->v))) < 0)
		return r;
	id = idtab__find(&m->index, h, ptrmap_eq, &k, &slot);
	if (id) {
		m->v[id - 1].val = val;
		return 0;
	}
	m->v[m->n] = (struct ptrmap_entry){a, b, val};
	idtab__insert_at(&m->index, slot, h, (uint32_t)++m->n);
	return 0;
}

void ptrmap__del(struct ptrmap *m, uint64_t a, uint64_t b)
{
	struct ptrkey k = {m, a, b};
	struct idtab *t = &m->index;
	size_t slot, j;
	uint32_t id = idtab__find(t, ptrmap_hash(a, b), ptrmap_eq, &k, &slot), last;

	if (!id)
		return;
	idtab__remove_at(t, slot);
	last = (uint32_t)m->n--;
	if (id == last)
		return;
	/* the last entry fills the hole: its slot takes the hole's id */
	m->v[id - 1] = m->v[last - 1];
	j = ptrmap_hash(m->v[id - 1].a, m->v[id - 1].b) & t->mask;
	while (t->slots[j].id != last)
		j = (j + 1) & t->mask;
	t->slots[j].id = id;
}

size_t ptrmap__bytes(const struct ptrmap *m)
{
	return m->cap * sizeof(*m->v) +
	       (m->index.mask ? (m->index.mask + 1) * sizeof(*m->index.slots) : 0);
}

void ptrmap__free(struct ptrmap *m)
{
	if (!m)
		return;
	free(m->v);
	idtab__free(&m->index);
	memset(m, 0, sizeof(*m));
}

/* ---- strtab ------------------------------------------------------------ */

struct strkey {
	const struct strtab *t;
	const char *s;
	size_t len;
};

static bool strtab_eq(const void *ctx, uint32_t id)
{
	const struct strkey *k = ctx;

	return k->t->len[id] == k->len && memcmp(k->t->ptr[id], k->s, k->len) == 0;
}

int strtab__init(struct strtab *t)
{
	uint32_t id;

	memset(t, 0, sizeof(*t));
	return strtab__intern(t, "", 0, 0, &id);
}

bool strtab__lookup(const struct strtab *t, const char *s, size_t len, uint32_t *ret_id)
{
	struct strkey k = {t, s, len};
	size_t slot;
	uint32_t id;

	if (len == 0) {
		*ret_id = 0;
		return true;
	}
	id = idtab__find(&t->index, (uint32_t)util__hash(s, len), strtab_eq, &k, &slot);
	if (!id)
		return false;
	*ret_id = id;
	return true;
}

int strtab__reserve(struct strtab *t, size_t n)
{
	const char **np;
	uint32_t *nl;

	if (n <= t->cap)
		return idtab__presize(&t->index, n);
	if (n > SIZE_MAX / sizeof(*np))
		return -ENOMEM;
	np = realloc(t->ptr, n * sizeof(*np));
	if (!np)
		return -ENOMEM;
	t->ptr = np;
	nl = realloc(t->len, n * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	t->len = nl;
	t->cap = n;
	return idtab__presize(&t->index, n);
}

int strtab__intern(struct strtab *t, const char *s, size_t len, size_t max, uint32_t *ret_id)
{
	struct strkey k = {t, s, len};
	uint32_t h, id;
	size_t slot = 0;
	char *copy;
	int r;

	if (len == 0 && t->n > 0) {
		*ret_id = 0;
		return 0;
	}
	if (len > UINT32_MAX - 1)
		return -E2BIG;
	/* grown before the lookup: growing presizes the index, which may
	 * rehash it and move the slot the lookup gives for the insert */
	if (t->n == t->cap && (r = strtab__reserve(t, t->cap ? t->cap * 2 : 256)) < 0)
		return r;
	r = idtab__reserve(&t->index);
	if (r < 0)
		return r;
	h = (uint32_t)util__hash(s, len);
	if (t->n > 0) {
		id = idtab__find(&t->index, h, strtab_eq, &k, &slot);
		if (id) {
			*ret_id = id;
			return 0;
		}
	}
	if (max && t->n >= max)
		return -E2BIG;
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	copy = arena__alloc(&t->arena, len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, s, len);
	copy[len] = '\0';
	id = (uint32_t)t->n++;
	t->ptr[id] = copy;
	t->len[id] = (uint32_t)len;
	if (id > 0) /* the empty string is answered without the index */
		idtab__insert_at(&t->index, slot, h, id);
	*ret_id = id;
	return 0;
}

void strtab__free(struct strtab *t)
{
	if (!t)
		return;
	arena__free(&t->arena);
	free(t->ptr);
	free(t->len);
	idtab__free(&t->index);
	memset(t, 0, sizeof(*t));
}

/* ---- gzip -------------------------------------------------------------- */

/* One inflate state per thread, reset between streams: setting one up (and
 * its 32 KiB window) costs as much as inflating a small SDK push. Freed at
 * thread exit. */
static pthread_key_t inflater_key;
static pthread_once_t inflater_once = PTHREAD_ONCE_INIT;
static bool inflater_key_ok;

static void inflater_free(void *p)
{
	if (p) {
		inflateEnd(p);
		free(p);
	}
}

static void inflater_key_init(void)
{
	inflater_key_ok = pthread_key_create(&inflater_key, inflater_free) == 0;
}

static z_stream *inflater_get(void)
{
	z_stream *zs;

	pthread_once(&inflater_once, inflater_key_init);
	zs = inflater_key_ok ? pthread_getspecific(inflater_key) : NULL;
	if (zs)
		return inflateReset(zs) == Z_OK ? zs : NULL;
	zs = calloc(1, sizeof(*zs));
	if (!zs)
		return NULL;
	/* 16 + MAX_WBITS: gzip wrapper only, so a zlib or raw stream is refused */
	if (inflateInit2(zs, 16 + MAX_WBITS) != Z_OK) {
		free(zs);
		return NULL;
	}
	if (inflater_key_ok && pthread_setspecific(inflater_key, zs) == 0)
		return zs;
	inflater_free(zs);
	return NULL;
}

int util__gunzip(const void *data, size_t len, size_t max, struct errbuf *err, struct dynbuf *out)
{
	z_stream *zsp;
	size_t start = out->len;
	size_t saved_max = out->max;
	size_t limit;
	int zr, r = 0;

	if (!util__is_gzip(data, len))
		return errbuf__set(err, -EBADMSG, "not gzip data (no 1f 8b magic)");
	zsp = inflater_get();
	if (!zsp)
		return errbuf__set(err, -ENOMEM, "cannot initialise zlib");
	/* Let the buffer hold one byte past the cap: reaching it proves the bomb. */
	limit = max && max < saved_max - start ? max : saved_max - start;
	out->max = start + limit + 1 < saved_max ? start + limit + 1 : saved_max;
	zsp->next_in = (Bytef *)data;
	{
		/* The trailer's ISIZE (size mod 2^32 of the last member) is a good
		 * first guess for the common single-member stream; it is only a
		 * hint, the cap still holds. */
		const unsigned char *t = (const unsigned char *)data + len - 4;
		size_t isize = len >= 18 ? (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 |
						   (size_t)t[3] << 24
					 : 0;

		if (isize && isize <= limit && dynbuf__reserve(out, isize + 1) == -ENOMEM) {
			r = -ENOMEM;
			goto cleanup;
		}
	}
	for (;;) {
		size_t in_chunk = len > UINT_MAX ? UINT_MAX : len;
		size_t room;

		if (!out->data || out->cap - out->len - 1 == 0) {
			/* grow geometrically; near the cap, to exactly the cap */
			r = dynbuf__reserve(out,
					    out->len - start < 65536 ? 65536 : out->len - start);
			if (r == -EFBIG)
				r = dynbuf__reserve(out, out->max - out->len);
			if (r < 0)
				goto cleanup;
		}
		room = out->cap - out->len - 1;
		if (room > out->max - out->len)
			room = out->max - out->len;
		zsp->avail_in = (uInt)in_chunk;
		zsp->next_out = (Bytef *)out->data + out->len;
		zsp->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		room = zsp->avail_out;
		zr = inflate(zsp, Z_NO_FLUSH);
		out->len += room - zsp->avail_out;
		out->data[out->len] = '\0';
		len -= in_chunk - zsp->avail_in;
		if (out->len - start > limit) {
			r = errbuf__set(err, -EFBIG, "gzip data inflates to more than %zu bytes",
					limit);
			goto cleanup;
		}
		if (zr == Z_STREAM_END) {
			/* skip zero padding some writers append, then maybe another member */
			while (len && *zsp->next_in == 0) {
				zsp->next_in++;
				len--;
			}
			if (len == 0)
				break;
			if (!util__is_gzip(zsp->next_in, len)) {
				r = errbuf__set(err, -EBADMSG,
						"%zu bytes of garbage after the gzip stream", len);
				goto cleanup;
			}
			if (inflateReset(zsp) != Z_OK) {
				r = errbuf__set(err, -EBADMSG, "cannot restart zlib");
				goto cleanup;
			}
			continue;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			r = errbuf__set(err, -EBADMSG, "corrupt gzip data: %s",
					zsp->msg ? zsp->msg : "inflate failed");
			goto cleanup;
		}
		if (len == 0 && zsp->avail_out != 0) {
			r = errbuf__set(err, -EBADMSG, "truncated gzip data (stream ends early)");
			goto cleanup;
		}
	}
cleanup:
	out->max = saved_max;
	if (r < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return r;
}

int util__gzip(const void *data, size_t len, int level, struct dynbuf *out)
{
	z_stream zs;
	size_t start = out->len;
	int zr, r = 0;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)data;
	do {
		size_t in_chunk = len > UINT_MAX ? UINT_MAX : len;
		size_t room;

		zs.avail_in = (uInt)in_chunk;
		r = dynbuf__reserve(out, deflateBound(&zs, (uLong)in_chunk) + 64);
		if (r < 0)
			goto cleanup;
		room = out->cap - out->len - 1;
		zs.next_out = (Bytef *)out->data + out->len;
		zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		zr = deflate(&zs, len == in_chunk ? Z_FINISH : Z_NO_FLUSH);
		out->len += room - zs.avail_out;
		len -= in_chunk - zs.avail_in;
		if (zr == Z_STREAM_ERROR) {
			r = -EIO;
			goto cleanup;
		}
	} while (zr != Z_STREAM_END);
	out->data[out->len] = '\0';
cleanup:
	deflateEnd(&zs);
	if (r < 0)
		out->len = start;
	return r;
}

/* ---- files ------------------------------------------------------------- */

int util__read_file(const char *path, size_t max, struct errbuf *err, struct dynbuf *out)
{
	int fd = -1, r = 0;
	bool is_stdin = strcmp(path, "-") == 0;
	size_t start = out->len;

	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		errbuf__set(err, r, "cannot open %s: %s", path, strerror(-r));
		goto cleanup;
	}
	for (;;) {
		ssize_t n;

		r = dynbuf__reserve(out, 65536);
		if (r == -EFBIG && out->len - start < max)
			r = dynbuf__reserve(out, 1);
		if (r < 0 || out->len - start > max) {
			r = r == -ENOMEM ? r : -EFBIG;
			errbuf__set(err, r, "%s: larger than the %zu-byte limit", path, max);
			goto cleanup;
		}
		n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			errbuf__set(err, r, "cannot read %s: %s", path, strerror(-r));
			goto cleanup;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		if (out->len - start > max) {
			r = errbuf__set(err, -EFBIG, "%s: larger than the %zu-byte limit", path,
					max);
			goto cleanup;
		}
	}
	out->data[out->len] = '\0';
cleanup:
	if (fd >= 0 && !is_stdin)
		close(fd);
	if (r < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int util__write_file(const char *path, const void *data, size_t len, struct errbuf *err)
{
	char *tmp = NULL;
	int fd = -1, r;
	struct stat st;

	if (strcmp(path, "-") == 0) {
		r = write_all(STDOUT_FILENO, data, len);
		if (r < 0)
			errbuf__set(err, r, "cannot write to standard output: %s", strerror(-r));
		return r;
	}
	/* Devices and pipes (e.g. /dev/stdout) are written in place. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			errbuf__set(err, r, "cannot open %s: %s", path, strerror(-r));
			goto cleanup;
		}
		r = write_all(fd, data, len);
		if (r < 0)
			errbuf__set(err, r, "cannot write %s: %s", path, strerror(-r));
		goto cleanup;
	}
	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto cleanup;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		errbuf__set(err, r, "cannot create %s: %s", tmp, strerror(-r));
		goto cleanup;
	}
	r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(fd) < 0)
		r = -errno;
	fd = -1;
	if (r < 0) {
		errbuf__set(err, r, "cannot write %s: %s", tmp, strerror(-r));
		unlink(tmp);
		goto cleanup;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		errbuf__set(err, r, "cannot rename %s to %s: %s", tmp, path, strerror(-r));
		unlink(tmp);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(tmp);
	return r;
}

bool util__parse_hex64(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int d, digits = 0;

	for (; s < end && (d = util__hex_digit(*s)) >= 0; s++) {
		if (++digits > 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0)
		return false;
	*p = s;
	*ret = v;
	return true;
}

int util__grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t cap2 = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (cap2 < need) {
		if (cap2 > SIZE_MAX / 2 / size)
			return -ENOMEM;
		cap2 *= 2;
	}
	q = realloc(*p, cap2 * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = cap2;
	return 0;
}

int util__uuid4(char out[UTIL_UUID_LEN + 1])
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 1 (RFC 9562) */
	snprintf(out, UTIL_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

int util__parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
			return -EINVAL;
	}
	if (v > (UINT64_MAX >> shift))
		return -EINVAL;
	*ret = (uint64_t)v << shift;
	return 0;
}
