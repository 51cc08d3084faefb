/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The names Pyroscope gives generated classes. Its JFR converter rewrites
 * every symbol of a recording before it names frames, so that a class the
 * JVM generates anew per run (a lambda, a reflection accessor, a CGLIB
 * proxy) or a library extracted under /tmp with a random name gives one
 * frame name, not one per process:
 *
 *   jdk/internal/reflect/GeneratedMethodAccessor31     → ...GeneratedMethodAccessor_
 *   a/B$$Lambda$669.0x0000000800fd7318, B$$Lambda.0x7f → a/B$$Lambda_, B$$Lambda_
 *   x$$EnhancerBySpringCGLIB$$1a2b                     → x$$EnhancerBySpringCGLIB$$_
 *   /tmp/libzstd-jni-1.5.1-1693...so                   → libzstd-jni-_.so
 *   /tmp/libamazonCorrettoCryptoProvider109b39cf33c563eb.so → libamazonCorrettoCryptoProvider_.so
 *   libasyncProfiler-linux-x64-17b9a1d8...so           → libasyncProfiler-_.so
 *
 * Each rule is one of the converter's regular expressions (docs/jfr.md), matched
 * here by hand and in the same order, so that braid's frame names are the
 * ones Pyroscope shows for the same recording.
 */
#define _GNU_SOURCE /* memmem */
#include "jfr_int.h"

#include <string.h>

struct cur {
	const char *p, *end;
};

static bool eat(struct cur *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_hex(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f');
}

/* One or more characters of a class; false if none. */
static bool eat_run(struct cur *c, bool (*cls)(char))
{
	const char *s = c->p;

	while (c->p < c->end && cls(*c->p))
		c->p++;
	return c->p > s;
}

static bool all(const char *p, const char *end, bool (*cls)(char))
{
	if (p >= end)
		return false;
	for (; p < end; p++)
		if (!cls(*p))
			return false;
	return true;
}

/* (\.?/tmp/)? */
static void eat_tmp(struct cur *c)
{
	if (!eat(c, "./tmp/"))
		eat(c, "/tmp/");
}

/* (\.so)( \(deleted\))?$ */
static bool eat_so_end(struct cur *c)
{
	if (!eat(c, ".so"))
		return false;
	eat(c, " (deleted)");
	return c->p == c->end;
}

/* ^(jdk/internal/reflect/GeneratedMethodAccessor)(\d+)$ */
static size_t accessor(const char *s, size_t n)
{
	static const char prefix[] = "jdk/internal/reflect/GeneratedMethodAccessor";
	size_t k = sizeof(prefix) - 1;

	return n > k && memcmp(s, prefix, k) == 0 && all(s + k, s + n, is_digit) ? k : 0;
}

/* The suffix after "$$Lambda": \$?\d*[./](0x)?[\da-f]+ or \d+ */
static bool lambda_suffix(const char *p, const char *end)
{
	struct cur c = {p, end};

	if (all(p, end, is_digit))
		return true;
	eat(&c, "$");
	while (c.p < c.end && is_digit(*c.p))
		c.p++;
	if (c.p >= c.end || (*c.p != '.' && *c.p != '/'))
		return false;
	c.p++;
	if (c.end - c.p > 2 && c.p[0] == '0' && c.p[1] == 'x' && all(c.p + 2, c.end, is_hex))
		return true;
	return all(c.p, c.end, is_hex);
}

/* ^(.+MARK)(suffix)$ with .+ as long as it can be: the last MARK after the
 * first character whose suffix matches. Returns the length kept. */
static size_t last_mark(const char *s, size_t n, const char *mark,
			bool (*suffix)(const char *, const char *))
{
	size_t m = strlen(mark);

	if (memchr(s, '\n', n)) /* `.` matches no line break */
		return 0;
	for (size_t i = n >= m ? n - m + 1 : 0; i-- > 1;)
		if (memcmp(s + i, mark, m) == 0 && suffix(s + i + m, s + n))
			return i + m;
	return 0;
}

static bool any_suffix(const char *p, const char *end)
{
	(void)p;
	(void)end;
	return true;
}

/* ^(\.?/tmp/)?(libzstd-jni-\d+\.\d+\.\d+-)(\d+)(\.so)( \(deleted\))?$ */
static bool zstd(const char *s, size_t n)
{
	struct cur c = {s, s + n};

	eat_tmp(&c);
	return eat(&c, "libzstd-jni-") && eat_run(&c, is_digit) && eat(&c, ".") &&
	       eat_run(&c, is_digit) && eat(&c, ".") && eat_run(&c, is_digit) && eat(&c, "-") &&
	       eat_run(&c, is_digit) && eat_so_end(&c);
}

/* ^(\.?/tmp/)?(lib)?(amazonCorrettoCryptoProvider)(NativeLibraries\.)?([0-9a-f]{16})
 *  (/libcrypto|/libamazonCorrettoCryptoProvider)?(\.so)( \(deleted\))?$ */
static bool corretto(const char *s, size_t n)
{
	struct cur c = {s, s + n};

	eat_tmp(&c);
	eat(&c, "lib");
	if (!eat(&c, "amazonCorrettoCryptoProvider"))
		return false;
	eat(&c, "NativeLibraries.");
	for (int i = 0; i < 16; i++, c.p++)
		if (c.p >= c.end || !is_hex(*c.p))
			return false;
	if (!eat(&c, "/libcrypto"))
		eat(&c, "/libamazonCorrettoCryptoProvider");
	return eat_so_end(&c);
}

/* ^(\.?/tmp/)?(libasyncProfiler)-(linux-arm64|linux-musl-x64|linux-x64|macos)-
 *  (17b9a1d8156277a98ccc871afa9a8f69215f92)(\.so)( \(deleted\))?$ */
static bool async_profiler(const char *s, size_t n)
{
	struct cur c = {s, s + n};

	eat_tmp(&c);
	if (!eat(&c, "libasyncProfiler-"))
		return false;
	if (!eat(&c, "linux-arm64") && !eat(&c, "linux-musl-x64") && !eat(&c, "linux-x64") &&
	    !eat(&c, "macos"))
		return false;
	return eat(&c, "-17b9a1d8156277a98ccc871afa9a8f69215f92") && eat_so_end(&c);
}

/* The current name: the input, or text in the arena after a rule. */
struct name {
	const char *p;
	size_t len;
	bool changed;
	bool failed;
};

static void set(struct name *nm, struct arena *a, const char *keep, size_t keep_len,
		const char *tail)
{
	size_t t = strlen(tail);
	char *o = arena__alloc(a, keep_len + t + 1);

	if (!o) {
		nm->failed = true;
		return;
	}
	memcpy(o, keep, keep_len);
	memcpy(o + keep_len, tail, t + 1);
	nm->p = o;
	nm->len = keep_len + t;
	nm->changed = true;
}

bool jfr__normalize_symbol(struct jfr_str s, struct arena *a, struct jfr_str *ret)
{
	struct name nm = {s.p, s.len, false, false};
	size_t k;

	if (!s.p || s.len < 8)
		return false;
	/* what every rule needs: a '$', the accessors' package, or a library's
	 * ".so" or ".so (deleted)" at the end */
	if (!memchr(s.p, '$', s.len) && s.p[0] != 'j' && memcmp(s.p + s.len - 3, ".so", 3) != 0 &&
	    (s.len < 13 || memcmp(s.p + s.len - 13, ".so (deleted)", 13) != 0))
		return false;
	k = accessor(nm.p, nm.len);
	if (k)
		set(&nm, a, nm.p, k, "_");
	if (!nm.failed && memmem(nm.p, nm.len, "$$Lambda", 8)) {
		k = last_mark(nm.p, nm.len, "$$Lambda", lambda_suffix);
		if (k)
			set(&nm, a, nm.p, k, "_");
	}
	if (!nm.failed && memmem(nm.p, nm.len, "libzstd-jni-", 12) && zstd(nm.p, nm.len))
		set(&nm, a, "", 0, "libzstd-jni-_.so");
	if (!nm.failed && memmem(nm.p, nm.len, "amazonCorrettoCryptoProvider", 28) &&
	    corretto(nm.p, nm.len))
		set(&nm, a, "", 0, "libamazonCorrettoCryptoProvider_.so");
	if (!nm.failed && memmem(nm.p, nm.len, "libasyncProfiler-", 17) &&
	    async_profiler(nm.p, nm.len))
		set(&nm, a, "", 0, "libasyncProfiler-_.so");
	if (!nm.failed && memmem(nm.p, nm.len, "$$EnhancerBySpringCGLIB$$", 25)) {
		k = last_mark(nm.p, nm.len, "$$EnhancerBySpringCGLIB$$", any_suffix);
		if (k)
			set(&nm, a, nm.p, k, "_");
	}
	if (nm.failed) {
		*ret = (struct jfr_str){NULL, 0, 0};
		return true;
	}
	if (!nm.changed)
		return false;
	*ret = (struct jfr_str){nm.p, (uint32_t)nm.len, 0};
	return true;
}
