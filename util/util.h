/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util: the small pieces every braid module shares — a bump arena, a growable
 * byte buffer with a hard cap (like curl's dynbuf), a seeded hash, the one
 * hash table (idtab: an open addressing index of 32-bit ids, and ptrmap, the
 * pointers by a two-word key that sit on one), a string interner with stable
 * pointers, gzip in and out, capped file I/O, HTML escaping and size parsing.
 *
 * Conventions: functions return 0 or a negative errno; constructors return
 * NULL; destructors accept NULL. Where a caller may want to know *why* an
 * input was refused, the function takes a `struct errbuf *` (may be NULL) and
 * leaves a one-line message there.
 */
#ifndef BRAID_UTIL_H
#define BRAID_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal. */
#define UTIL_STR_(x) #x
#define UTIL_STR(x)  UTIL_STR_(x)

/* ---- error messages ---------------------------------------------------- */

struct errbuf {
	char msg[512];
};

/* Writes a message into e (if e is not NULL) and returns err, so that a
 * caller can write `return errbuf__set(e, -EBADMSG, "...")`. */
int errbuf__set(struct errbuf *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- arena ------------------------------------------------------------- */

/* A bump allocator: many small allocations, freed all at once. `limit` caps
 * the bytes handed out (0 = no cap); past it arena__alloc returns NULL. */
struct arena {
	struct arena_block *head;
	size_t used;
	size_t limit;
};

void *arena__alloc(struct arena *a, size_t size);
/* A copy of the n bytes at s, NUL-terminated, in the arena; NULL when the
 * arena can't hold it. */
char *arena__strndup(struct arena *a, const char *s, size_t n);
/* A copy of string s in the arena; NULL for NULL, or when the arena can't
 * hold it (tell them apart by s). */
char *arena__strdup(struct arena *a, const char *s);
/* Forgets every allocation but keeps the first block for reuse. */
void arena__reset(struct arena *a);
void arena__free(struct arena *a);

/* ---- growing arrays ---------------------------------------------------- */

/* Makes the array *p of *cap elements of `size` bytes hold at least `need`,
 * doubling from 16; -ENOMEM (and *p, *cap unchanged) when it can't. */
int util__grow(void **p, size_t *cap, size_t need, size_t size);

/* ---- big buffers ------------------------------------------------------- */

/* realloc for buffers that may grow large: from UTIL_BIG_MIN bytes on, the
 * memory is mapped directly and marked for transparent huge pages, so that
 * a decode that fills tens of MiB takes a few hundred page faults instead
 * of thousands. The caller passes the old capacity (0 for NULL) and frees
 * with util__big_free and the same capacity. */
#define UTIL_BIG_MIN (4u << 20)
void *util__big_realloc(void *ptr, size_t old_cap, size_t new_cap);
void util__big_free(void *ptr, size_t cap);

/* ---- dynbuf ------------------------------------------------------------ */

/* A growable byte buffer that never grows past `max` bytes (0 = SIZE_MAX).
 * The data is always followed by a NUL byte that len does not count. */
struct dynbuf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void dynbuf__init(struct dynbuf *b, size_t max);
/* -ENOMEM, or -EFBIG when the result would exceed b->max. */
int dynbuf__reserve(struct dynbuf *b, size_t extra);
int dynbuf__append(struct dynbuf *b, const void *data, size_t len);
int dynbuf__putc(struct dynbuf *b, char c);
int dynbuf__printf(struct dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dynbuf__reset(struct dynbuf *b);
/* Appends s as a JSON string literal (quoted, escaped per RFC 8259; bytes
 * that are not UTF-8 become U+FFFD). s may be NULL: appends null. */
int dynbuf__json_str(struct dynbuf *b, const char *s);
/* Appends s as HTML text, also fit for a quoted attribute value: < > & " '
 * become entities. s may be NULL: appends nothing. */
int util__html_escape(struct dynbuf *b, const char *s);
void dynbuf__free(struct dynbuf *b);

/* ---- hashing ----------------------------------------------------------- */

/* A fast 64-bit hash, seeded once per process from getrandom() so that
 * inputs a client controls can't be chosen to collide. Only indexes use it:
 * nothing braid outputs depends on hash order. */
uint64_t util__hash(const void *data, size_t len);
/* The same function with a given seed: for hashes that are stored and must
 * be the same in every process (content keys on disk). */
uint64_t util__hash_seeded(const void *data, size_t len, uint64_t seed);
/* A fixed mix of one 64-bit value (for ids and offsets, not client bytes). */
static inline uint64_t util__hash_u64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}
static inline uint64_t util__hash_combine(uint64_t h, uint64_t v)
{
	return util__hash_u64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

/* ---- idtab: an index of ids by content ---------------------------------- */

/* Open addressing table of non-zero uint32 ids, each stored with its hash.
 * The caller owns the objects; the table answers "which id has this
 * content?" through an equality callback. */
struct idtab {
	struct idtab_slot {
		uint32_t id; /* 0 = empty */
		uint32_t hash;
	} * slots;   /* side by side: one cache miss per probe */
	size_t mask; /* capacity - 1, capacity a power of two; 0 when empty */
	size_t n;
};

typedef bool (*idtab_eq_fn)(const void *ctx, uint32_t id);

int idtab__grow(struct idtab *t);
/* Sizes the table for n ids without further growth. */
int idtab__presize(struct idtab *t, size_t n);

/* Makes room for one more id (call before idtab__find when you may insert).
 * Inline, with idtab__find, so that the equality callback inlines too: these
 * are the hottest loops of decoding. */
static inline int idtab__reserve(struct idtab *t)
{
	size_t cap = t->mask ? t->mask + 1 : 0;

	/* keep the load factor under 3/4 */
	if ((t->n + 1) * 4 <= cap * 3)
		return 0;
	return idtab__grow(t);
}

/* Returns the id whose hash is `hash` and for which eq(ctx, id) holds, or 0;
 * *ret_slot receives where such an id would be inserted. */
static inline uint32_t idtab__find(const struct idtab *t, uint32_t hash, idtab_eq_fn eq,
				   const void *ctx, size_t *ret_slot)
{
	size_t j;

	if (!t->mask) {
		*ret_slot = 0;
		return 0;
	}
	for (j = hash & t->mask; t->slots[j].id; j = (j + 1) & t->mask)
		if (t->slots[j].hash == hash && eq(ctx, t->slots[j].id))
			break;
	*ret_slot = j;
	return t->slots[j].id;
}

/* Inserts at a slot returned by idtab__find since the last reserve. */
static inline void idtab__insert_at(struct idtab *t, size_t slot, uint32_t hash, uint32_t id)
{
	t->slots[slot].id = id;
	t->slots[slot].hash = hash;
	t->n++;
}

/* Removes the id at a slot idtab__find returned it at. The ids that probed
 * past it shift back, so there are no tombstones and lookups stay as short
 * after many removals as after none. */
void idtab__remove_at(struct idtab *t, size_t slot);
/* Forgets every id, keeping the room: for an index rebuilt each round. */
void idtab__clear(struct idtab *t);
void idtab__free(struct idtab *t);

/* ---- ptrmap: pointers by a two-word key ---------------------------------- */

/* For a table whose objects are not in an array of its own: a (device,
 * inode), a pid, an address maps to a non-NULL pointer the caller owns.
 * The entries are kept dense in v[0, n), in no set order (a removal moves
 * the last one into the hole), so a loop over them is a loop over v; an
 * idtab indexes them, with ids = positions + 1. */
struct ptrmap {
	struct ptrmap_entry {
		uint64_t a, b;
		void *val;
	} * v;
	size_t n, cap;
	struct idtab index;
};

/* The value under (a, b), or NULL. */
void *ptrmap__get(const struct ptrmap *m, uint64_t a, uint64_t b);
/* Sets (a, b) to val (not NULL), replacing a value it had; -ENOMEM. */
int ptrmap__put(struct ptrmap *m, uint64_t a, uint64_t b, void *val);
/* Removes (a, b) if it is there. */
void ptrmap__del(struct ptrmap *m, uint64_t a, uint64_t b);
/* The memory it holds, for caches that count theirs. */
size_t ptrmap__bytes(const struct ptrmap *m);
void ptrmap__free(struct ptrmap *m);

/* ---- strtab: interned strings ------------------------------------------ */

/* Id 0 is always the empty string. Pointers returned by strtab__get stay
 * valid until strtab__free. Strings may contain NUL bytes; each is stored
 * followed by a NUL. */
struct strtab {
	struct arena arena;
	const char **ptr;
	uint32_t *len;
	size_t n;
	size_t cap;
	struct idtab index;
};

int strtab__init(struct strtab *t);
/* Room for n strings in all, without regrowing. */
int strtab__reserve(struct strtab *t, size_t n);
/* -E2BIG when the table already holds `max` strings (0 = no cap). */
int strtab__intern(struct strtab *t, const char *s, size_t len, size_t max, uint32_t *ret_id);
/* Returns the id of s if interned, else 0 and false. */
bool strtab__lookup(const struct strtab *t, const char *s, size_t len, uint32_t *ret_id);
static inline const char *strtab__get(const struct strtab *t, uint32_t id)
{
	return id < t->n ? t->ptr[id] : NULL;
}
static inline size_t strtab__len(const struct strtab *t, uint32_t id)
{
	return id < t->n ? t->len[id] : 0;
}
void strtab__free(struct strtab *t);

/* ---- gzip -------------------------------------------------------------- */

static inline bool util__is_gzip(const void *data, size_t len)
{
	const unsigned char *p = data;
	return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Inflates a gzip stream (concatenated members too) and appends it to out.
 * -EFBIG with a message when the output would exceed `max` bytes (the
 * gzip-bomb cap), -EBADMSG for a corrupt or truncated stream. */
int util__gunzip(const void *data, size_t len, size_t max, struct errbuf *err, struct dynbuf *out);
/* Appends the gzip (RFC 1952) of data to out, at zlib `level` (-1 default). */
int util__gzip(const void *data, size_t len, int level, struct dynbuf *out);

/* ---- hex ------------------------------------------------------------------ */

/* The value of hex digit c (either case), or -1. */
static inline int util__hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the hex digits at *p (not past end) as a number and moves *p past
 * them. False, with *p unmoved, when there is none or more than 16. */
bool util__parse_hex64(const char **p, const char *end, uint64_t *ret);

/* ---- files ------------------------------------------------------------- */

/* Reads a whole file ("-" = stdin) into out, refusing files over `max`
 * bytes with -EFBIG. */
int util__read_file(const char *path, size_t max, struct errbuf *err, struct dynbuf *out);
/* A random (version 4) UUID in lowercase hex with dashes, from getrandom(2):
 * UTIL_UUID_LEN characters and a NUL into out. 0 or a negative errno. */
#define UTIL_UUID_LEN 36
int util__uuid4(char out[UTIL_UUID_LEN + 1]);

/* Writes data to path ("-" = stdout). A regular file is written to a
 * temporary name beside it, fsync'ed and renamed, so readers never see half
 * a file. */
int util__write_file(const char *path, const void *data, size_t len, struct errbuf *err);

/* A size: digits with an optional K, M or G (also KiB/KB...: powers of
 * 1024), "32M", "1GiB", "4096"; -EINVAL for anything else or past
 * UINT64_MAX. */
int util__parse_size(const char *s, uint64_t *ret);

#endif
