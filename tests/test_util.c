/* SPDX-License-Identifier: Apache-2.0 */
/* util/: buffers with caps, gzip (bombs, garbage, truncation), interning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static void test_dynbuf_cap(void **state)
{
	struct dynbuf b;

	(void)state;
	dynbuf__init(&b, 10);
	assert_int_equal(dynbuf__append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "0123456789");
	/* one byte over the cap is refused and leaves the buffer as it was */
	assert_int_equal(dynbuf__append(&b, "x", 1), -EFBIG);
	assert_int_equal(b.len, 10);
	assert_int_equal(dynbuf__printf(&b, "%d", 1), -EFBIG);
	dynbuf__reset(&b);
	assert_int_equal(dynbuf__printf(&b, "%s=%d", "a", 42), 0);
	assert_string_equal(b.data, "a=42");
	dynbuf__free(&b);
	dynbuf__free(&b); /* twice is fine */
}

static void test_big_buffers(void **state)
{
	struct dynbuf b;
	size_t big = UTIL_BIG_MIN + 12345;

	(void)state;
	/* growing across the mmap threshold keeps the content */
	dynbuf__init(&b, 0);
	for (size_t i = 0; i < big / 8; i++)
		assert_int_equal(dynbuf__append(&b, "abcdefgh", 8), 0);
	assert_true(b.cap >= UTIL_BIG_MIN);
	for (size_t i = 0; i < b.len; i += 4099)
		assert_int_equal(b.data[i], "abcdefgh"[i % 8]);
	assert_int_equal(b.data[b.len], '\0');
	dynbuf__free(&b);
}

static void gzip_string(const char *s, size_t len, struct dynbuf *out)
{
	dynbuf__init(out, 0);
	assert_int_equal(util__gzip(s, len, 6, out), 0);
	assert_true(util__is_gzip(out->data, out->len));
}

static void test_gzip_round_trip(void **state)
{
	struct dynbuf z, raw;
	struct errbuf err = {{0}};
	const char *text = "root;caller;leaf 12\nroot;other 3\n";

	(void)state;
	gzip_string(text, strlen(text), &z);
	dynbuf__init(&raw, 0);
	assert_int_equal(util__gunzip(z.data, z.len, 1 << 20, &err, &raw), 0);
	assert_int_equal(raw.len, strlen(text));
	assert_memory_equal(raw.data, text, raw.len);

	/* two concatenated members inflate to both texts (gzip -c a b) */
	{
		struct dynbuf two;

		dynbuf__init(&two, 0);
		assert_int_equal(dynbuf__append(&two, z.data, z.len), 0);
		assert_int_equal(dynbuf__append(&two, z.data, z.len), 0);
		dynbuf__reset(&raw);
		assert_int_equal(util__gunzip(two.data, two.len, 1 << 20, &err, &raw), 0);
		assert_int_equal(raw.len, 2 * strlen(text));
		dynbuf__free(&two);
	}

	/* the cap is inclusive: exactly the size passes, one byte less fails */
	dynbuf__reset(&raw);
	assert_int_equal(util__gunzip(z.data, z.len, strlen(text), &err, &raw), 0);
	dynbuf__reset(&raw);
	assert_int_equal(util__gunzip(z.data, z.len, strlen(text) - 1, &err, &raw), -EFBIG);
	assert_int_equal(raw.len, 0);
	dynbuf__free(&z);
	dynbuf__free(&raw);
}

static void test_gunzip_bad_input(void **state)
{
	struct dynbuf z, raw;
	struct errbuf err = {{0}};
	char *text = malloc(100000);
	unsigned char garbage[64];

	(void)state;
	for (size_t i = 0; i < 100000; i++)
		text[i] = (char)('a' + (i * 7919) % 26);
	gzip_string(text, 100000, &z);
	dynbuf__init(&raw, 0);

	/* truncated: the stream ends before its end marker */
	assert_int_equal(util__gunzip(z.data, z.len / 2, 1 << 20, &err, &raw), -EBADMSG);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(raw.len, 0);

	/* garbage after a valid magic */
	memset(garbage, 0xa5, sizeof(garbage));
	garbage[0] = 0x1f;
	garbage[1] = 0x8b;
	garbage[2] = 8;
	garbage[3] = 0;
	assert_int_equal(util__gunzip(garbage, sizeof(garbage), 1 << 20, &err, &raw), -EBADMSG);
	assert_non_null(strstr(err.msg, "gzip"));

	/* no magic at all */
	assert_int_equal(util__gunzip("hello", 5, 1 << 20, &err, &raw), -EBADMSG);
	assert_non_null(strstr(err.msg, "not gzip"));

	/* trailing bytes that are not another member */
	{
		struct dynbuf t;

		dynbuf__init(&t, 0);
		assert_int_equal(dynbuf__append(&t, z.data, z.len), 0);
		assert_int_equal(dynbuf__append(&t, "junk", 4), 0);
		assert_int_equal(util__gunzip(t.data, t.len, 1 << 20, &err, &raw), -EBADMSG);
		assert_non_null(strstr(err.msg, "garbage after"));
		dynbuf__free(&t);
	}
	free(text);
	dynbuf__free(&z);
	dynbuf__free(&raw);
}

static void test_gunzip_bomb(void **state)
{
	struct dynbuf z, raw;
	struct errbuf err = {{0}};
	size_t n = 200u << 20; /* 200 MiB of zeros: ~200 KiB compressed */
	char *zeros = calloc(1, n);

	(void)state;
	assert_non_null(zeros);
	gzip_string(zeros, n, &z);
	free(zeros);
	assert_true(z.len < 1u << 20);
	dynbuf__init(&raw, 0);
	assert_int_equal(util__gunzip(z.data, z.len, 64u << 20, &err, &raw), -EFBIG);
	assert_non_null(strstr(err.msg, "more than 67108864 bytes"));
	/* it stopped at the cap: nothing kept, nothing allocated past it */
	assert_int_equal(raw.len, 0);
	assert_true(raw.cap <= (64u << 20) + 2);
	dynbuf__free(&z);
	dynbuf__free(&raw);
}

static void test_strtab(void **state)
{
	struct strtab t;
	uint32_t a, b, c, d, e;
	const char *pa;
	size_t n_before;

	(void)state;
	assert_int_equal(strtab__init(&t), 0);
	assert_int_equal(strtab__intern(&t, "", 0, 0, &e), 0);
	assert_int_equal(e, 0);
	assert_int_equal(strtab__intern(&t, "fib", 3, 0, &a), 0);
	pa = strtab__get(&t, a);
	/* NUL inside a string is part of it */
	assert_int_equal(strtab__intern(&t, "f\0b", 3, 0, &b), 0);
	assert_int_not_equal(a, b);
	assert_int_equal(strtab__len(&t, b), 3);
	for (int i = 0; i < 10000; i++) {
		char s[32];
		int n = snprintf(s, sizeof(s), "fn%d", i);

		assert_int_equal(strtab__intern(&t, s, (size_t)n, 0, &c), 0);
	}
	/* interning again returns the same id, and pointers stay valid */
	assert_int_equal(strtab__intern(&t, "fib", 3, 0, &c), 0);
	assert_int_equal(c, a);
	assert_ptr_equal(strtab__get(&t, a), pa);
	assert_true(strtab__lookup(&t, "fn9999", 6, &c));
	assert_false(strtab__lookup(&t, "fn10000", 7, &c));
	/* the cap on the number of strings */
	assert_int_equal(strtab__intern(&t, "new one", 7, t.n, &c), -E2BIG);
	strtab__free(&t);
	strtab__free(&t);

	/* every string is found as soon as it is added, those that make the
	 * table grow included: fuzz_pprof found one that was added twice (the
	 * growth rehashed the index under the slot found for it). Which
	 * string that hits depends on its hash: 16 tables, 5 growths each. */
	for (int k = 0; k < 16; k++) {
		assert_int_equal(strtab__init(&t), 0);
		for (int i = 0; i < 5000; i++) {
			char s[32];
			int n = snprintf(s, sizeof(s), "%c.fn%d", 'a' + k, i);

			assert_int_equal(strtab__intern(&t, s, (size_t)n, 0, &c), 0);
			assert_true(strtab__lookup(&t, s, (size_t)n, &d));
			assert_int_equal(d, c);
		}
		n_before = t.n;
		for (int i = 0; i < 5000; i++) {
			char s[32];
			int n = snprintf(s, sizeof(s), "%c.fn%d", 'a' + k, i);

			assert_int_equal(strtab__intern(&t, s, (size_t)n, 0, &d), 0);
			assert_string_equal(strtab__get(&t, d), s);
		}
		assert_int_equal(t.n, n_before);
		strtab__free(&t);
	}
}

static void test_files(void **state)
{
	char dir[] = "/tmp/braid-test-XXXXXX";
	char path[256];
	struct dynbuf b;
	struct errbuf err = {{0}};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.txt", dir);
	assert_int_equal(util__write_file(path, "hello\n", 6, &err), 0);
	dynbuf__init(&b, 0);
	assert_int_equal(util__read_file(path, 100, &err, &b), 0);
	assert_string_equal(b.data, "hello\n");
	dynbuf__reset(&b);
	/* over the size cap: refused with a message naming the file */
	assert_int_equal(util__read_file(path, 5, &err, &b), -EFBIG);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(util__read_file("/nonexistent/x", 100, &err, &b), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/x"));
	/* a directory that doesn't exist: the error names the temporary file */
	assert_true(util__write_file("/nonexistent/dir/f", "x", 1, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/dir/f"));
	unlink(path);
	rmdir(dir);
	dynbuf__free(&b);
}

static void test_json_str(void **state)
{
	struct dynbuf b;

	(void)state;
	dynbuf__init(&b, 0);
	assert_int_equal(dynbuf__json_str(&b, "a\"b\\c\n\t\x01 caf\xc3\xa9 \xff end"), 0);
	/* escapes per RFC 8259; a byte that is not UTF-8 becomes U+FFFD */
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001 caf\xc3\xa9 \xef\xbf\xbd end\"");
	dynbuf__reset(&b);
	assert_int_equal(dynbuf__json_str(&b, NULL), 0);
	assert_string_equal(b.data, "null");
	dynbuf__reset(&b);
	/* an overlong encoding and a lone surrogate are not UTF-8 either */
	assert_int_equal(dynbuf__json_str(&b, "\xc0\xaf\xed\xa0\x80"), 0);
	assert_string_equal(b.data,
			    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	dynbuf__free(&b);
}

static void test_hash_seeded_is_stable(void **state)
{
	(void)state;
	/* the store keeps these hashes on disk: they must never change */
	assert_int_equal(util__hash_seeded("main;fib", 8, 0x8f1bbcdcca62c1d6ULL),
			 0xe52b00a8575e61b6ULL);
	assert_int_not_equal(util__hash_seeded("main;fib", 8, 1),
			     util__hash_seeded("main;fib", 8, 2));
}

/* util__grow: doubles from 16, keeps the contents, refuses an overflowing
 * size without touching the array. */
/* A map under a workload of puts, replacements and removals agrees with a
 * plain array of the same keys at every step: removals shift probes back
 * and move the last entry, and neither may lose a key. */
static void test_ptrmap(void **state)
{
	enum { KEYS = 3000, STEPS = 40000 };
	static char vals[KEYS];
	static bool in[KEYS];
	struct ptrmap m = {0};
	size_t n = 0, i, k;
	uint64_t x = 12345;

	(void)state;
	memset(in, 0, sizeof(in));
	assert_null(ptrmap__get(&m, 1, 2));
	ptrmap__del(&m, 1, 2); /* absent, empty: nothing */
	for (i = 0; i < STEPS; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		k = (x >> 33) % KEYS;
		/* keys that differ in one word only, so b matters too */
		if ((x >> 20) % 3) {
			assert_int_equal(ptrmap__put(&m, k / 7, k % 7, &vals[k]), 0);
			n += !in[k];
			in[k] = true;
		} else {
			ptrmap__del(&m, k / 7, k % 7);
			n -= in[k];
			in[k] = false;
		}
		assert_int_equal(m.n, n);
		if (i % 997 == 0 || i == STEPS - 1)
			for (k = 0; k < KEYS; k++)
				assert_ptr_equal(ptrmap__get(&m, k / 7, k % 7),
						 in[k] ? &vals[k] : NULL);
	}
	/* a put replaces; the entries are dense and each is there once */
	assert_int_equal(ptrmap__put(&m, 0, 0, &vals[1]), 0);
	assert_ptr_equal(ptrmap__get(&m, 0, 0), &vals[1]);
	assert_int_equal(m.n, n + !in[0]);
	for (i = 0; i < m.n; i++)
		assert_ptr_equal(ptrmap__get(&m, m.v[i].a, m.v[i].b), m.v[i].val);
	assert_true(ptrmap__bytes(&m) >= m.n * sizeof(*m.v));
	/* removing every key leaves it empty */
	for (k = 0; k < KEYS; k++)
		ptrmap__del(&m, k / 7, k % 7);
	assert_int_equal(m.n, 0);
	assert_int_equal(m.index.n, 0);
	ptrmap__free(&m);
	ptrmap__free(&m); /* twice is fine */
	ptrmap__free(NULL);
}

static bool id_is(const void *ctx, uint32_t id)
{
	return *(const uint32_t *)ctx == id;
}

/* A cleared index finds nothing and keeps its room for the next round. */
static void test_idtab_clear(void **state)
{
	struct idtab t = {0};
	size_t slot, mask;
	uint32_t id;

	(void)state;
	idtab__clear(&t); /* empty: nothing */
	assert_int_equal(idtab__presize(&t, 100), 0);
	mask = t.mask;
	for (id = 1; id <= 100; id++) {
		assert_int_equal(idtab__reserve(&t), 0);
		assert_int_equal(idtab__find(&t, id * 7919u, id_is, &id, &slot), 0);
		idtab__insert_at(&t, slot, id * 7919u, id);
	}
	id = 42;
	assert_int_equal(idtab__find(&t, id * 7919u, id_is, &id, &slot), 42);
	idtab__clear(&t);
	assert_int_equal(t.n, 0);
	assert_int_equal(t.mask, mask);
	assert_int_equal(idtab__find(&t, id * 7919u, id_is, &id, &slot), 0);
	idtab__free(&t);
}

static void test_grow(void **state)
{
	int *a = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(util__grow((void **)&a, &cap, 1, sizeof(*a)), 0);
	assert_int_equal(cap, 16);
	for (int i = 0; i < 16; i++)
		a[i] = i;
	assert_int_equal(util__grow((void **)&a, &cap, 17, sizeof(*a)), 0);
	assert_int_equal(cap, 32);
	assert_int_equal(util__grow((void **)&a, &cap, 20, sizeof(*a)), 0);
	assert_int_equal(cap, 32);
	for (int i = 0; i < 16; i++)
		assert_int_equal(a[i], i);
	assert_int_equal(util__grow((void **)&a, &cap, SIZE_MAX / 2, sizeof(*a)), -ENOMEM);
	assert_int_equal(cap, 32);
	assert_int_equal(a[15], 15);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynbuf_cap),
		cmocka_unit_test(test_big_buffers),
		cmocka_unit_test(test_gzip_round_trip),
		cmocka_unit_test(test_gunzip_bad_input),
		cmocka_unit_test(test_gunzip_bomb),
		cmocka_unit_test(test_strtab),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_json_str),
		cmocka_unit_test(test_hash_seeded_is_stable),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_ptrmap),
		cmocka_unit_test(test_idtab_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
