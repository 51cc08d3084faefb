/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/decode.c: the pure half of ingest. Turns the parts of a legacy
 * /ingest request or the body of a push request into ingest_profiles ready
 * for the store: validated names and labels, sample types with totals, time
 * range, and the payload exactly as received. No I/O, no global state: every
 * output lives in the caller's arena, scratch memory is freed before return,
 * so the server calls these from many threads at once.
 *
 * Every count and size a client controls is capped (struct ingest_limits,
 * the INGEST_* caps), and a refusal names the field, the offending value
 * (quoted, truncated) and the cap.
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "push.pb-c.h"

#define DEFAULT_SAMPLE_RATE 100
#define MAX_SAMPLE_RATE	    1000000000
#define PID_MAX		    4194304 /* the kernel's PID_MAX_LIMIT (2^22) */
#define JSON_MAX_DEPTH	    32
/* Labels a push series may carry before the drops (empty values and
 * "__"-prefixed names): Pyroscope counts after dropping, so a few more are
 * fine, but reading an unbounded number only to drop them is not. */
#define RAW_LABELS_FACTOR 4

/* ---- limits and statuses ------------------------------------------------- */

void ingest_limits__default(struct ingest_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_decompressed = INGEST_DEFAULT_MAX_DECOMPRESSED;
	lim->max_labels = INGEST_MAX_LABELS;
	lim->max_series = INGEST_MAX_SERIES;
	lim->max_samples = INGEST_MAX_SAMPLES;
	profile_limits__default(&lim->profile);
	lim->profile.max_decompressed = INGEST_DEFAULT_MAX_DECOMPRESSED;
}

/* The limits a decode runs under: the caller's, with every zero field (a
 * zeroed struct, as ingest_options allows) taken from the defaults. Labels
 * are clamped to what the store accepts, so that nothing decoded here is
 * refused by the store later as a server error. */
static void effective_limits(const struct ingest_limits *in, struct ingest_limits *out)
{
	ingest_limits__default(out);
	if (!in)
		return;
#define TAKE(f)                                                                                    \
	do {                                                                                       \
		if (in->f)                                                                         \
			out->f = in->f;                                                            \
	} while (0)
	TAKE(max_decompressed);
	TAKE(max_labels);
	TAKE(max_series);
	TAKE(max_samples);
	TAKE(profile.max_decode_memory);
	TAKE(profile.max_samples);
	TAKE(profile.max_locations);
	TAKE(profile.max_functions);
	TAKE(profile.max_mappings);
	TAKE(profile.max_strings);
	TAKE(profile.max_stack_depth);
	TAKE(profile.max_labels);
	TAKE(profile.max_sample_types);
	TAKE(profile.max_line_length);
#undef TAKE
	if (out->max_labels > STORE_MAX_LABELS)
		out->max_labels = STORE_MAX_LABELS;
	/* one cap on inflated bytes, whichever layer inflates */
	out->profile.max_decompressed = out->max_decompressed;
}

int ingest__http_status(int err)
{
	switch (err) {
	case 0:
		return 200;
	case -EINVAL:
		return 400;
	case -EACCES:
		return 401;
	case -ENOENT:
		return 404;
	case -EFBIG:
	case -E2BIG:
		return 413;
	case -EPROTONOSUPPORT:
		return 415;
	case -EBADMSG:
	case -ENOTSUP: /* the same value as -EOPNOTSUPP on Linux */
		return 422;
	case -ENOSPC:
		return 429;
	case -EBUSY:
	case -EIO:
	case -EAGAIN:
		return 503;
	default:
		return 500;
	}
}

const char *ingest__error_code(int status)
{
	switch (status) {
	case 400:
	case 415:
	case 422:
		return "invalid_argument";
	case 401:
		return "unauthenticated";
	case 404:
		return "not_found";
	case 405:
		return "unimplemented";
	case 413:
	case 429:
		return "resource_exhausted";
	case 503:
		return "unavailable";
	default:
		return "internal";
	}
}

/* ---- small helpers ------------------------------------------------------- */

/* A client's bytes made printable for a message: at most QUOTE_MAX output
 * characters, non-printable bytes as \xNN, "..." when cut. */
#define QUOTE_MAX 64
struct quoted {
	char s[QUOTE_MAX + 8];
};

static const char *quote(struct quoted *q, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
			if (o + 1 > QUOTE_MAX)
				break;
			q->s[o++] = (char)c;
		} else {
			if (o + 4 > QUOTE_MAX)
				break;
			q->s[o++] = '\\';
			q->s[o++] = 'x';
			q->s[o++] = hex[c >> 4];
			q->s[o++] = hex[c & 15];
		}
	}
	if (i < len) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o] = '\0';
	return q->s;
}

static const char *quote_cstr(struct quoted *q, const char *s)
{
	return quote(q, s, strlen(s));
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_app_char(unsigned char c)
{
	return is_alnum(c) || c == '_' || c == '.' || c == '/' || c == '-';
}

static bool is_label_char(unsigned char c)
{
	return is_alnum(c) || c == '_' || c == '.';
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The length of the well-formed UTF-8 sequence at p (n bytes available),
 * 0 if there is none: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
	}
	return true;
}

/* A "pid" label's value as a PID: decimal 1..PID_MAX, else 0. */
static int32_t parse_pid(const char *s)
{
	int64_t v = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
		if (v > PID_MAX)
			return 0;
	}
	return (int32_t)v;
}

static int32_t pid_of_labels(const struct store_label *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "pid") == 0)
			return parse_pid(l[i].value);
	return 0;
}

/* The media type of a Content-Type header: trimmed, parameters dropped. */
static bool media_type_is(const char *ct, const char *want)
{
	const char *end;
	size_t n;

	if (!ct)
		return false;
	while (is_space((unsigned char)*ct))
		ct++;
	end = strchr(ct, ';');
	n = end ? (size_t)(end - ct) : strlen(ct);
	while (n && is_space((unsigned char)ct[n - 1]))
		n--;
	return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* ---- the legacy name ----------------------------------------------------- */

/* Pyroscope's legacy profile types: the app name suffix that names one, the
 * __name__ it implies, and the sample type and unit of a folded body. */
static const struct suffix {
	const char *suffix, *name, *type, *unit;
} suffixes[] = {
	{"cpu", "process_cpu", "cpu", "samples"},
	{"itimer", "process_cpu", "cpu", "samples"},
	{"wall", "wall", "wall", "samples"},
	{"inuse_objects", "memory", "inuse_objects", "objects"},
	{"inuse_space", "memory", "inuse_space", "bytes"},
	{"alloc_objects", "memory", "alloc_objects", "objects"},
	{"alloc_space", "memory", "alloc_space", "bytes"},
	{"alloc_in_new_tlab_objects", "memory", "alloc_in_new_tlab_objects", "objects"},
	{"alloc_in_new_tlab_bytes", "memory", "alloc_in_new_tlab_bytes", "bytes"},
	{"alloc_outside_tlab_objects", "memory", "alloc_outside_tlab_objects", "objects"},
	{"alloc_outside_tlab_bytes", "memory", "alloc_outside_tlab_bytes", "bytes"},
	{"goroutines", "goroutines", "goroutines", "goroutines"},
	{"mutex_count", "mutex", "mutex_count", "lock_samples"},
	{"mutex_duration", "mutex", "mutex_duration", "lock_nanoseconds"},
	{"block_count", "block", "block_count", "block_samples"},
	{"block_duration", "block", "block_duration", "block_nanoseconds"},
	{"lock_count", "mutex", "lock_count", "lock_samples"},
	{"lock_duration", "mutex", "lock_duration", "lock_nanoseconds"},
};

static const struct suffix *find_suffix(const char *s, size_t n)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(suffixes); i++)
		if (strlen(suffixes[i].suffix) == n && memcmp(suffixes[i].suffix, s, n) == 0)
			return &suffixes[i];
	return NULL;
}

/* Checks one "key=value" tag of a name (spaces already trimmed) and, unless
 * its value is empty (Pyroscope drops those), appends it to tags. Past
 * max_tags it only counts. */
static int name_tag(const char *name, const char *ks, size_t klen, const char *vs, size_t vlen,
		    struct arena *a, struct errbuf *err, struct store_label *tags, size_t max_tags,
		    size_t *n_kept, size_t *n_total)
{
	struct quoted q1, q2;
	size_t i;

	if (!klen)
		return errbuf__set(err, -EINVAL, "tag '=%s' in name '%s' has an empty key",
				   quote(&q1, vs, vlen), quote_cstr(&q2, name));
	if (klen > INGEST_MAX_LABEL_NAME)
		return errbuf__set(err, -EINVAL, "tag key '%s' is %zu bytes, at most %d",
				   quote(&q1, ks, klen), klen, INGEST_MAX_LABEL_NAME);
	for (i = 0; i < klen; i++)
		if (!is_label_char((unsigned char)ks[i]))
			return errbuf__set(
				err, -EINVAL,
				"bad character '%s' at offset %zu of name '%s': tag keys "
				"are made of A-Z a-z 0-9 _ .",
				quote(&q1, ks + i, 1), (size_t)(ks + i - name),
				quote_cstr(&q2, name));
	if (vlen > INGEST_MAX_LABEL_VALUE)
		return errbuf__set(err, -EINVAL, "tag '%s' has a value of %zu bytes, at most %d",
				   quote(&q1, ks, klen), vlen, INGEST_MAX_LABEL_VALUE);
	if (memchr(vs, '}', vlen))
		return errbuf__set(err, -EINVAL,
				   "bad character '}' at offset %zu of name '%s': tag values "
				   "cannot hold ',' or '}'",
				   (size_t)((const char *)memchr(vs, '}', vlen) - name),
				   quote_cstr(&q2, name));
	if ((klen == 12 && memcmp(ks, "service_name", 12) == 0) ||
	    (klen >= 2 && ks[0] == '_' && ks[1] == '_'))
		return errbuf__set(err, -EINVAL,
				   "tag '%s' is reserved: braid sets service_name and __name__ "
				   "from the app name, and drops other __ labels",
				   quote(&q1, ks, klen));
	if (!utf8_valid(vs, vlen))
		return errbuf__set(err, -EINVAL, "tag '%s' has a value that is not UTF-8: '%s'",
				   quote(&q1, ks, klen), quote(&q2, vs, vlen));
	if (!vlen)
		return 0;
	if (++*n_total > max_tags)
		return 0;
	for (i = 0; i < *n_kept; i++)
		if (strlen(tags[i].name) == klen && memcmp(tags[i].name, ks, klen) == 0)
			return errbuf__set(err, -EINVAL, "duplicate tag '%s' in name '%s'",
					   quote(&q1, ks, klen), quote_cstr(&q2, name));
	tags[*n_kept].name = arena__strndup(a, ks, klen);
	tags[*n_kept].value = arena__strndup(a, vs, vlen);
	if (!tags[*n_kept].name || !tags[*n_kept].value)
		return errbuf__set(err, -ENOMEM, "out of memory");
	++*n_kept;
	return 0;
}

int ingest__parse_name(const char *name, size_t max_labels, struct arena *a, struct errbuf *err,
		       struct ingest_name *ret)
{
	struct ingest_name n = {0};
	struct store_label *tags = NULL;
	const struct suffix *sfx = NULL;
	struct quoted q1, q2;
	const char *brace, *dot, *p, *stop;
	size_t len, app_len, max_tags, n_items = 1, n_kept = 0, n_total = 0, i;
	int r = 0;

	if (!name)
		name = "";
	len = strlen(name);
	brace = memchr(name, '{', len);
	app_len = brace ? (size_t)(brace - name) : len;
	max_tags = max_labels > 2 ? max_labels - 2 : 0;
	if (!app_len) {
		r = errbuf__set(err, -EINVAL,
				"app name is empty in name '%s' (expected APP{k=v,...})",
				quote_cstr(&q1, name));
		goto cleanup;
	}
	if (app_len > INGEST_MAX_APP_NAME) {
		r = errbuf__set(err, -EINVAL, "app name '%s' is %zu bytes, at most %d",
				quote(&q1, name, app_len), app_len, INGEST_MAX_APP_NAME);
		goto cleanup;
	}
	for (i = 0; i < app_len; i++)
		if (!is_app_char((unsigned char)name[i])) {
			r = errbuf__set(err, -EINVAL,
					"bad character '%s' at offset %zu of app name '%s': app "
					"names are made of A-Z a-z 0-9 _ . / -",
					quote(&q1, name + i, 1), i, quote(&q2, name, app_len));
			goto cleanup;
		}
	n.app = arena__strndup(a, name, app_len);
	if (!n.app) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}

	if (brace) {
		if (name[len - 1] != '}' || len - app_len < 2) {
			r = errbuf__set(err, -EINVAL,
					"name '%s' has a '{' but does not end with '}'",
					quote_cstr(&q1, name));
			goto cleanup;
		}
		stop = name + len - 1;
		for (p = brace + 1; p < stop; p++)
			n_items += *p == ',';
		if (n_items > max_tags)
			n_items = max_tags;
		tags = arena__alloc(a, (n_items ? n_items : 1) * sizeof(*tags));
		if (!tags) {
			r = errbuf__set(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
		for (p = brace + 1; p <= stop;) {
			const char *comma = memchr(p, ',', (size_t)(stop - p));
			const char *end = comma ? comma : stop, *ks = p, *ke, *vs, *ve, *eq;

			while (ks < end && is_space((unsigned char)*ks))
				ks++;
			if (ks < end) {
				eq = memchr(ks, '=', (size_t)(end - ks));
				if (!eq) {
					r = errbuf__set(
						err, -EINVAL,
						"tag '%s' in name '%s' has no '=' (tags are "
						"key=value)",
						quote(&q1, ks, (size_t)(end - ks)),
						quote_cstr(&q2, name));
					goto cleanup;
				}
				for (ke = eq; ke > ks && is_space((unsigned char)ke[-1]); ke--)
					;
				for (vs = eq + 1; vs < end && is_space((unsigned char)*vs); vs++)
					;
				for (ve = end; ve > vs && is_space((unsigned char)ve[-1]); ve--)
					;
				r = name_tag(name, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs), a,
					     err, tags, max_tags, &n_kept, &n_total);
				if (r < 0)
					goto cleanup;
			}
			if (!comma)
				break;
			p = comma + 1;
		}
		if (n_total > max_tags) {
			r = errbuf__set(
				err, -EINVAL,
				"too many labels: %zu, at most %zu per series (service_name "
				"and __name__ included)",
				n_total + 2, max_labels);
			goto cleanup;
		}
	}

	/* The suffix is what follows the app name's last '.'. */
	for (dot = NULL, i = app_len; i > 0 && !dot; i--)
		if (name[i - 1] == '.')
			dot = name + i - 1;
	if (dot)
		sfx = find_suffix(dot + 1, app_len - (size_t)(dot + 1 - name));
	if (sfx && dot == name) {
		r = errbuf__set(err, -EINVAL,
				"app name '%s' is only a profile type: name the service",
				quote(&q1, name, app_len));
		goto cleanup;
	}
	n.service = sfx ? arena__strndup(a, name, (size_t)(dot - name)) : n.app;
	if (!n.service) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	if (sfx) {
		n.profile_name = sfx->name;
		n.sample_type = sfx->type;
		n.sample_unit = sfx->unit;
	}
	n.tags = tags;
	n.n_tags = n_kept;
	*ret = n;
cleanup:
	return r;
}

/* ---- times ---------------------------------------------------------------- */

int ingest__parse_time(const char *s, int64_t now_ns, int64_t *ret_ns)
{
	uint64_t v = 0, mul;
	size_t n;

	if (!s || !*s) {
		*ret_ns = now_ns;
		return 0;
	}
	for (n = 0; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9')
			return -EINVAL;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[n] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[n] - '0');
	}
	switch (n) {
	case 19:
		mul = 1;
		break;
	case 16:
		mul = 1000;
		break;
	case 13:
		mul = 1000000;
		break;
	default:
		mul = 1000000000;
	}
	if (v > (uint64_t)INT64_MAX / mul)
		return -EINVAL;
	*ret_ns = (int64_t)(v * mul);
	return 0;
}

/* ---- strict JSON (RFC 8259) ----------------------------------------------- */

/* A cursor over a JSON text. The grammar is checked in full, values that
 * are not read included; nesting is capped at JSON_MAX_DEPTH so recursion
 * is bounded. Errors are -EBADMSG "<what>: <fault> at byte N". */
struct json {
	const unsigned char *s;
	size_t len;
	size_t pos;
	int depth;
	const char *what;
	struct errbuf *err;
};

static int json_fail(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int json_fail(struct json *j, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errbuf__set(j->err, -EBADMSG, "%s: %s at byte %zu", j->what, msg, j->pos);
}

/* Skips white space; returns the next byte, -1 at the end. */
static int json_peek(struct json *j)
{
	while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
				   j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
		j->pos++;
	return j->pos < j->len ? j->s[j->pos] : -1;
}

static int hex4(const unsigned char *p, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

/* Reads the \u escape at j->pos (and its low surrogate) into *ret_cp. */
static int json_u_escape(struct json *j, unsigned *ret_cp)
{
	const unsigned char *p = j->s + j->pos;
	unsigned hi, lo;

	if (j->len - j->pos < 6 || hex4(p + 2, &hi) < 0)
		return json_fail(j, "bad \\u escape");
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return json_fail(j, "lone low surrogate \\u%04x", hi);
	if (hi < 0xd800 || hi > 0xdbff) {
		j->pos += 6;
		*ret_cp = hi;
		return 0;
	}
	if (j->len - j->pos < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) < 0 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return json_fail(j, "high surrogate \\u%04x without its low surrogate", hi);
	j->pos += 12;
	*ret_cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static size_t utf8_put(unsigned cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Reads the string at j->pos, decoding escapes to UTF-8 into out (at most
 * cap bytes; out NULL only validates). *ret_len gets the decoded length,
 * which may exceed cap; it never exceeds the string's raw length. */
static int json_string(struct json *j, char *out, size_t cap, size_t *ret_len)
{
	unsigned char u[4];
	size_t n = 0, k;
	unsigned cp = 0;
	int r;

	if (json_peek(j) != '"')
		return json_fail(j, "expected a string");
	j->pos++;
	for (;;) {
		unsigned char c;

		if (j->pos >= j->len)
			return json_fail(j, "unterminated string");
		c = j->s[j->pos];
		if (c == '"') {
			j->pos++;
			break;
		}
		if (c < 0x20)
			return json_fail(j, "control character 0x%02x in a string", c);
		if (c == '\\') {
			if (j->pos + 1 >= j->len)
				return json_fail(j, "unterminated string");
			switch (j->s[j->pos + 1]) {
			case '"':
			case '\\':
			case '/':
				u[0] = j->s[j->pos + 1];
				break;
			case 'b':
				u[0] = '\b';
				break;
			case 'f':
				u[0] = '\f';
				break;
			case 'n':
				u[0] = '\n';
				break;
			case 'r':
				u[0] = '\r';
				break;
			case 't':
				u[0] = '\t';
				break;
			case 'u':
				r = json_u_escape(j, &cp);
				if (r < 0)
					return r;
				k = utf8_put(cp, u);
				goto put;
			default:
				return json_fail(j, "bad escape '\\%c'",
						 j->s[j->pos + 1] >= 0x20 && j->s[j->pos + 1] < 0x7f
							 ? j->s[j->pos + 1]
							 : '?');
			}
			j->pos += 2;
			k = 1;
		} else {
			k = utf8_seq(j->s + j->pos, j->len - j->pos);
			if (!k)
				return json_fail(j, "invalid UTF-8 in a string");
			memcpy(u, j->s + j->pos, k);
			j->pos += k;
		}
	put:
		for (size_t i = 0; i < k; i++, n++)
			if (out && n < cap)
				out[n] = (char)u[i];
	}
	*ret_len = n;
	return 0;
}

/* Reads a string into the arena, NUL-terminated. */
static int json_string_dup(struct json *j, struct arena *a, char **ret, size_t *ret_len)
{
	size_t raw, i;
	char *buf;
	int r;

	if (json_peek(j) != '"')
		return json_fail(j, "expected a string");
	/* the raw length bounds the decoded one */
	for (i = j->pos + 1; i < j->len && j->s[i] != '"'; i++)
		if (j->s[i] == '\\')
			i++;
	raw = i - j->pos;
	buf = arena__alloc(a, raw + 1);
	if (!buf)
		return errbuf__set(j->err, -ENOMEM, "out of memory");
	r = json_string(j, buf, raw, ret_len);
	if (r < 0)
		return r;
	buf[*ret_len] = '\0';
	*ret = buf;
	return 0;
}

static int json_number(struct json *j)
{
	size_t p = j->pos;
	const unsigned char *s = j->s;

#define DIGIT(i) ((i) < j->len && s[i] >= '0' && s[i] <= '9')
	if (p < j->len && s[p] == '-')
		p++;
	if (p < j->len && s[p] == '0')
		p++;
	else if (DIGIT(p))
		while (DIGIT(p))
			p++;
	else
		goto bad;
	if (p < j->len && s[p] == '.') {
		p++;
		if (!DIGIT(p))
			goto bad;
		while (DIGIT(p))
			p++;
	}
	if (p < j->len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < j->len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (!DIGIT(p))
			goto bad;
		while (DIGIT(p))
			p++;
	}
#undef DIGIT
	j->pos = p;
	return 0;
bad:
	j->pos = p;
	return json_fail(j, "bad number");
}

static int json_literal(struct json *j, const char *lit)
{
	size_t n = strlen(lit);

	if (j->len - j->pos < n || memcmp(j->s + j->pos, lit, n) != 0)
		return json_fail(j, "unexpected character '%c'",
				 j->s[j->pos] >= 0x20 && j->s[j->pos] < 0x7f ? j->s[j->pos] : '?');
	j->pos += n;
	return 0;
}

/* Enters the object or array that starts at j->pos. */
static int json_enter(struct json *j, char open)
{
	if (json_peek(j) != open)
		return json_fail(j, open == '{' ? "expected an object" : "expected an array");
	if (++j->depth > JSON_MAX_DEPTH)
		return json_fail(j, "nested deeper than %d levels", JSON_MAX_DEPTH);
	j->pos++;
	return 0;
}

/* Moves to element i (counting from 0) of the object or array entered:
 * 1 when there is one, 0 after the closing bracket (the level is left). */
static int json_next(struct json *j, char close, size_t i)
{
	int c = json_peek(j);

	if (c == close) {
		j->pos++;
		j->depth--;
		return 0;
	}
	if (i > 0) {
		if (c != ',')
			return json_fail(j, "expected ',' or '%c'", close);
		j->pos++;
	}
	return 1;
}

/* Reads a member name and its ':'. The name is decoded into key (cut at
 * cap bytes; key may be NULL), *ret_len gets its full length. */
static int json_key(struct json *j, char *key, size_t cap, size_t *ret_len)
{
	int r;

	if (json_peek(j) != '"')
		return json_fail(j, "expected a member name");
	r = json_string(j, key, cap, ret_len);
	if (r < 0)
		return r;
	if (json_peek(j) != ':')
		return json_fail(j, "expected ':'");
	j->pos++;
	return 0;
}

/* The same with the name whole, in the arena. */
static int json_key_dup(struct json *j, struct arena *a, char **ret, size_t *ret_len)
{
	int r;

	if (json_peek(j) != '"')
		return json_fail(j, "expected a member name");
	r = json_string_dup(j, a, ret, ret_len);
	if (r < 0)
		return r;
	if (json_peek(j) != ':')
		return json_fail(j, "expected ':'");
	j->pos++;
	return 0;
}

/* Checks any value and steps over it. */
static int json_skip(struct json *j)
{
	int c = json_peek(j), r;
	char close = c == '{' ? '}' : ']';
	size_t n, i;

	switch (c) {
	case '{':
	case '[':
		r = json_enter(j, (char)c);
		for (i = 0; r == 0; i++) {
			r = json_next(j, close, i);
			if (r <= 0)
				break;
			if (close == '}') {
				r = json_key(j, NULL, 0, &n);
				if (r < 0)
					break;
			}
			r = json_skip(j);
		}
		return r;
	case '"':
		return json_string(j, NULL, 0, &n);
	case 't':
		return json_literal(j, "true");
	case 'f':
		return json_literal(j, "false");
	case 'n':
		return json_literal(j, "null");
	case -1:
		return json_fail(j, "unexpected end of input");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return json_number(j);
		return json_fail(j, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
	}
}

/* Reads a null if there is one: 1, else 0 (nothing read). */
static int json_null(struct json *j)
{
	int r;

	if (json_peek(j) != 'n')
		return 0;
	r = json_literal(j, "null");
	return r < 0 ? r : 1;
}

/* Enters an array member, or reads a null in its place (proto3 JSON's
 * empty repeated field): *ret_open tells whether there are elements to walk
 * with json_next. */
static int json_array_or_null(struct json *j, bool *ret_open)
{
	int r = json_null(j);

	*ret_open = false;
	if (r)
		return r < 0 ? r : 0;
	r = json_enter(j, '[');
	*ret_open = r == 0;
	return r;
}

/* A string member or null (*ret NULL), in the arena. */
static int json_opt_string(struct json *j, struct arena *a, const char *field, char **ret,
			   size_t *ret_len)
{
	int r = json_null(j);

	*ret = NULL;
	*ret_len = 0;
	if (r)
		return r < 0 ? r : 0;
	if (json_peek(j) != '"')
		return json_fail(j, "%s must be a string", field);
	return json_string_dup(j, a, ret, ret_len);
}

static int json_opt_bool(struct json *j, const char *field)
{
	int c = json_peek(j);

	if (c == 't')
		return json_literal(j, "true");
	if (c == 'f')
		return json_literal(j, "false");
	if (c == 'n')
		return json_literal(j, "null");
	return json_fail(j, "%s must be true or false", field);
}

static bool key_is(const char *key, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(key, name, len) == 0;
}

#define JSON_KEY_MAX 32 /* longer member names are none we read */

/* ---- sample_type_config ---------------------------------------------------- */

/* Validates a multipart sample_type_config (a JSON object mapping a sample
 * type to {"units", "aggregation", "display-name", "sampled",
 * "cumulative"}) and returns in *ret_agg the aggregation it gives for the
 * sample type `want` (NULL if none). Pyroscope uses the rest to relabel the
 * profiles it converts; braid stores the pprof as received, so the rest is
 * only validated. Unknown members are ignored, as Go's encoding/json does. */
static int sample_type_config(const char *data, size_t len, const char *want, struct arena *a,
			      struct errbuf *err, const char **ret_agg)
{
	struct json j = {(const unsigned char *)data, len, 0, 0, "sample_type_config", err};
	const char *agg = NULL;
	char key[JSON_KEY_MAX], *type, *s;
	size_t i, k, klen, tlen, slen;
	struct quoted q, q2;
	bool match;
	int r;

	if (len > INGEST_MAX_SAMPLE_TYPE_CONFIG)
		return errbuf__set(err, -EFBIG, "sample_type_config is %zu bytes, at most %u", len,
				   INGEST_MAX_SAMPLE_TYPE_CONFIG);
	r = json_null(&j);
	if (r == 0)
		r = json_enter(&j, '{');
	else if (r > 0)
		r = 1; /* null: no entries */
	for (i = 0; r == 0; i++) {
		r = json_next(&j, '}', i);
		if (r <= 0)
			break;
		r = json_key_dup(&j, a, &type, &tlen);
		if (r < 0)
			break;
		match = want && tlen == strlen(want) && memcmp(type, want, tlen) == 0;
		r = json_null(&j);
		if (r) {
			r = r < 0 ? r : 0;
			continue;
		}
		if (json_peek(&j) != '{')
			return json_fail(&j, "the entry for '%s' must be an object",
					 quote(&q, type, tlen));
		r = json_enter(&j, '{');
		for (k = 0; r == 0; k++) {
			r = json_next(&j, '}', k);
			if (r <= 0)
				break;
			r = json_key(&j, key, sizeof(key), &klen);
			if (r < 0)
				break;
			if (key_is(key, klen, "units")) {
				r = json_opt_string(&j, a, "units", &s, &slen);
			} else if (key_is(key, klen, "display-name")) {
				r = json_opt_string(&j, a, "display-name", &s, &slen);
			} else if (key_is(key, klen, "aggregation")) {
				r = json_opt_string(&j, a, "aggregation", &s, &slen);
				if (r == 0 && s && strcmp(s, "sum") != 0 &&
				    strcmp(s, "average") != 0)
					return errbuf__set(err, -EBADMSG,
							   "sample_type_config: the aggregation of "
							   "'%s' is '%s', not sum or average",
							   quote(&q, type, tlen),
							   quote_cstr(&q2, s));
				if (r == 0 && s && match)
					agg = s;
			} else if (key_is(key, klen, "sampled")) {
				r = json_opt_bool(&j, "sampled");
			} else if (key_is(key, klen, "cumulative")) {
				r = json_opt_bool(&j, "cumulative");
			} else {
				r = json_skip(&j);
			}
		}
	}
	if (r < 0)
		return r;
	if (json_peek(&j) != -1)
		return json_fail(&j, "unexpected data after the JSON value");
	*ret_agg = agg;
	return 0;
}

/* ---- profiles --------------------------------------------------------------- */

static const char *pstr(const struct profile *p, uint32_t id)
{
	const char *s = profile__str(p, id);

	return s ? s : "";
}

/* A decoder's error as the request's: sizes and counts over a cap keep
 * their errno (413), anything malformed is -EBADMSG (422). */
static int decode_error(struct errbuf *err, int r, const struct errbuf *derr, const char *prefix,
			enum profile_format fmt)
{
	switch (r) {
	case -EFBIG:
	case -E2BIG:
		return errbuf__set(err, r, "%s%s", prefix, derr->msg);
	case -ENOMEM:
		return errbuf__set(err, r, "%sout of memory decoding the profile", prefix);
	default:
		return errbuf__set(err, -EBADMSG, "%sundecodable %s: %s", prefix,
				   fmt == PROFILE_FORMAT_PPROF	 ? "pprof"
				   : fmt == PROFILE_FORMAT_LINES ? "lines profile"
								 : "folded profile",
				   derr->msg);
	}
}

/* The profile's sample types with their totals, in the arena. */
static int profile_types(const struct profile *p, const char *prefix, struct arena *a,
			 struct errbuf *err, struct store_sample_type **ret, size_t *ret_n)
{
	size_t n = profile__n_sample_types(p);
	int64_t totals[PROFILE_MAX_SAMPLE_TYPES];
	struct store_sample_type *types;
	int r;

	if (!n)
		return errbuf__set(err, -EBADMSG, "%sthe profile has no sample types", prefix);
	if (n > STORE_MAX_SAMPLE_TYPES)
		return errbuf__set(err, -E2BIG, "%sthe profile has %zu sample types, at most %d",
				   prefix, n, STORE_MAX_SAMPLE_TYPES);
	r = profile__totals(p, totals);
	if (r == -EOVERFLOW)
		return errbuf__set(err, -EBADMSG,
				   "%sthe total of a sample type does not fit in 64 bits", prefix);
	if (r < 0)
		return errbuf__set(err, r, "%scannot sum the profile's samples", prefix);
	types = arena__alloc(a, n * sizeof(*types));
	if (!types)
		return errbuf__set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);
		size_t tl = profile__strlen(p, vt.type), ul = profile__strlen(p, vt.unit);

		if (!tl)
			return errbuf__set(err, -EBADMSG, "%ssample type %zu has no name", prefix,
					   i);
		if (tl > STORE_MAX_STRING || ul > STORE_MAX_STRING)
			return errbuf__set(err, -EBADMSG,
					   "%ssample type %zu has a name or unit over %d bytes",
					   prefix, i, STORE_MAX_STRING);
		types[i].type = arena__strndup(a, pstr(p, vt.type), tl);
		types[i].unit = arena__strndup(a, pstr(p, vt.unit), ul);
		types[i].total = totals[i];
		if (!types[i].type || !types[i].unit)
			return errbuf__set(err, -ENOMEM, "out of memory");
	}
	*ret = types;
	*ret_n = n;
	return 0;
}

static bool has_type(const struct profile *p, const char *name)
{
	for (size_t i = 0; i < profile__n_sample_types(p); i++)
		if (strcmp(pstr(p, profile__sample_type(p, i).type), name) == 0)
			return true;
	return false;
}

/* Pyroscope's __name__ for a legacy profile whose app name has no known
 * suffix, from its sample types; else the default sample type's name. */
static const char *profile_name_of(const struct profile *p)
{
	static const char *const memory[] = {"inuse_space",   "inuse_objects", "alloc_space",
					     "alloc_objects", "space",	       "objects"};
	int d;

	if (has_type(p, "wall"))
		return "wall";
	if (has_type(p, "cpu") || has_type(p, "samples"))
		return "process_cpu";
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(memory); i++)
		if (has_type(p, memory[i]))
			return "memory";
	if (has_type(p, "goroutine") || has_type(p, "goroutines"))
		return "goroutines";
	if (has_type(p, "contentions") || has_type(p, "delay"))
		return "mutex";
	d = profile__default_sample_type(p);
	return d < 0 ? "" : pstr(p, profile__sample_type(p, (size_t)d).type);
}

/* ---- the legacy /ingest --------------------------------------------------- */

static const char *const unsupported_formats[] = {"jfr", "trie", "tree", "speedscope"};

/* The body's format: the `format` parameter, then the content type. */
static int legacy_format(const struct ingest_query *q, const struct ingest_body *b,
			 struct errbuf *err, enum profile_format *ret)
{
	struct quoted qq;

	if (q->format && *q->format) {
		if (strcmp(q->format, "pprof") == 0)
			*ret = PROFILE_FORMAT_PPROF;
		else if (strcmp(q->format, "folded") == 0 || strcmp(q->format, "collapsed") == 0)
			*ret = PROFILE_FORMAT_FOLDED;
		else if (strcmp(q->format, "lines") == 0)
			*ret = PROFILE_FORMAT_LINES;
		else {
			for (size_t i = 0; i < UTIL_ARRAY_SIZE(unsupported_formats); i++)
				if (strcmp(q->format, unsupported_formats[i]) == 0)
					return errbuf__set(
						err, -ENOTSUP,
						"format '%s' is not supported yet (braid "
						"reads pprof, folded and lines)",
						q->format);
			return errbuf__set(
				err, -ENOTSUP,
				"unknown format '%s' (braid reads pprof, folded and lines)",
				quote_cstr(&qq, q->format));
		}
		return 0;
	}
	if (media_type_is(b->content_type, "binary/octet-stream+trie") ||
	    media_type_is(b->content_type, "binary/octet-stream+tree"))
		return errbuf__set(
			err, -ENOTSUP,
			"format '%s' (Content-Type %s) is not supported yet (braid reads "
			"pprof, folded and lines)",
			media_type_is(b->content_type, "binary/octet-stream+trie") ? "trie"
										   : "tree",
			quote_cstr(&qq, b->content_type));
	if (media_type_is(b->content_type, "binary/octet-stream+lines"))
		*ret = PROFILE_FORMAT_LINES;
	else if (b->multipart)
		*ret = PROFILE_FORMAT_PPROF;
	else
		*ret = PROFILE_FORMAT_FOLDED;
	return 0;
}

/* Whether a body is binary (pprof, gzip), not folded text. */
static bool looks_binary(const void *data, size_t len)
{
	const unsigned char *d = data;

	for (size_t i = 0; i < len && i < 64; i++)
		if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' && d[i] != '\r')
			return true;
	return false;
}

/* A legacy free-form string (spyName, units): capped, UTF-8; "" is absent. */
static int legacy_string(const char *field, const char *v, struct arena *a, struct errbuf *err,
			 const char **ret)
{
	struct quoted q;
	size_t n;

	*ret = NULL;
	if (!v || !*v)
		return 0;
	n = strlen(v);
	if (n > STORE_MAX_STRING)
		return errbuf__set(err, -EINVAL, "%s '%s' is %zu bytes, at most %d", field,
				   quote(&q, v, n), n, STORE_MAX_STRING);
	if (!utf8_valid(v, n))
		return errbuf__set(err, -EINVAL, "%s '%s' is not UTF-8", field, quote(&q, v, n));
	*ret = arena__strndup(a, v, n);
	return *ret ? 0 : errbuf__set(err, -ENOMEM, "out of memory");
}

int ingest__decode_legacy(const struct ingest_query *q, const struct ingest_body *b, int64_t now_ns,
			  const struct ingest_limits *lim_in, struct arena *a, struct errbuf *err,
			  struct ingest_profile *ret)
{
	struct store_sdk_profile sdk = {0};
	struct profile_folded_opts fo = {0};
	struct errbuf derr = {{0}};
	struct ingest_limits lim;
	struct ingest_name nm;
	struct store_sample_type *types;
	struct store_label *labels;
	struct profile *p = NULL;
	enum profile_format fmt = PROFILE_FORMAT_FOLDED;
	const char *agg = NULL, *cfg_agg = NULL, *pname;
	struct quoted q1;
	size_t n_types, i;
	int r;

	effective_limits(lim_in, &lim);
	if (!q->name) {
		r = errbuf__set(err, -EINVAL,
				"missing name: the query needs name=APP{key=value,...}");
		goto cleanup;
	}
	r = ingest__parse_name(q->name, lim.max_labels, a, err, &nm);
	if (r < 0)
		goto cleanup;
	if (ingest__parse_time(q->from, now_ns, &sdk.from_ns) < 0) {
		r = errbuf__set(
			err, -EINVAL,
			"bad from '%s': expected a Unix time in s, ms, us or ns (all digits)",
			quote_cstr(&q1, q->from));
		goto cleanup;
	}
	if (ingest__parse_time(q->until, now_ns, &sdk.until_ns) < 0) {
		r = errbuf__set(
			err, -EINVAL,
			"bad until '%s': expected a Unix time in s, ms, us or ns (all digits)",
			quote_cstr(&q1, q->until));
		goto cleanup;
	}
	if (sdk.until_ns < sdk.from_ns) {
		r = errbuf__set(err, -EINVAL,
				"until (%" PRId64 " ns) is before from (%" PRId64 " ns)",
				sdk.until_ns, sdk.from_ns);
		goto cleanup;
	}
	sdk.sample_rate = DEFAULT_SAMPLE_RATE;
	if (q->sample_rate && *q->sample_rate) {
		int64_t v = 0;

		for (i = 0; q->sample_rate[i] && v <= MAX_SAMPLE_RATE; i++) {
			if (q->sample_rate[i] < '0' || q->sample_rate[i] > '9') {
				v = -1;
				break;
			}
			v = v * 10 + (q->sample_rate[i] - '0');
		}
		if (v < 1 || v > MAX_SAMPLE_RATE) {
			r = errbuf__set(err, -EINVAL,
					"bad sampleRate '%s': expected a whole number of Hz from 1 "
					"to %d",
					quote_cstr(&q1, q->sample_rate), MAX_SAMPLE_RATE);
			goto cleanup;
		}
		sdk.sample_rate = v;
	}
	r = legacy_string("spyName", q->spy_name, a, err, &sdk.spy_name);
	if (r < 0)
		goto cleanup;
	r = legacy_string("units", q->units, a, err, &sdk.units);
	if (r < 0)
		goto cleanup;
	if (q->aggregation && *q->aggregation) {
		if (strcmp(q->aggregation, "sum") == 0)
			agg = "sum";
		else if (strcmp(q->aggregation, "average") == 0)
			agg = "average";
		else {
			r = errbuf__set(err, -EINVAL,
					"bad aggregationType '%s': expected sum or average",
					quote_cstr(&q1, q->aggregation));
			goto cleanup;
		}
	}
	r = legacy_format(q, b, err, &fmt);
	if (r < 0)
		goto cleanup;
	if (b->multipart && b->prev_profile) {
		r = errbuf__set(err, -EINVAL,
				"prev_profile is not supported (Pyroscope refuses it too): send "
				"cumulative profiles as deltas in 'profile'");
		goto cleanup;
	}
	if (b->multipart && !b->data) {
		r = errbuf__set(err, -EINVAL, "multipart form has no 'profile' field");
		goto cleanup;
	}
	if (!b->data || !b->len) {
		r = errbuf__set(err, -EBADMSG, "empty body: expected a %s profile",
				profile__format_name(fmt));
		goto cleanup;
	}
	if (b->len > STORE_MAX_PAYLOAD) {
		r = errbuf__set(err, -EFBIG, "a profile of %zu bytes is over the %u MiB cap",
				b->len, STORE_MAX_PAYLOAD >> 20);
		goto cleanup;
	}

	fo.type = nm.sample_type ? nm.sample_type : "cpu";
	fo.unit = nm.sample_unit ? nm.sample_unit : "samples";
	r = profile__decode(b->data, b->len, fmt, &fo, &lim.profile, &derr, &p, NULL);
	if (r < 0) {
		r = decode_error(err, r, &derr, "", fmt);
		if (r == -EBADMSG && fmt == PROFILE_FORMAT_FOLDED && !(q->format && *q->format) &&
		    looks_binary(b->data, b->len)) {
			struct errbuf e = *err;

			r = errbuf__set(err, r,
					"%s (a binary body without format=pprof is read as folded "
					"text)",
					e.msg);
		}
		goto cleanup;
	}
	r = profile_types(p, "", a, err, &types, &n_types);
	if (r < 0)
		goto cleanup;
	if (b->sample_type_config && b->sample_type_config_len) {
		int d = profile__default_sample_type(p);

		r = sample_type_config(b->sample_type_config, b->sample_type_config_len,
				       d < 0 ? NULL : types[d].type, a, err, &cfg_agg);
		if (r < 0)
			goto cleanup;
		if (!agg)
			agg = cfg_agg;
	}

	pname = nm.profile_name ? nm.profile_name : profile_name_of(p);
	if (!*pname || strlen(pname) > INGEST_MAX_LABEL_VALUE) {
		r = errbuf__set(err, -EBADMSG,
				"cannot name the profile type from its sample types ('%s'): give "
				"the app name a suffix such as .cpu",
				quote_cstr(&q1, pname));
		goto cleanup;
	}
	pname = arena__strndup(a, pname, strlen(pname));
	labels = arena__alloc(a, (2 + nm.n_tags) * sizeof(*labels));
	if (!pname || !labels) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	labels[0] = (struct store_label){"__name__", pname};
	labels[1] = (struct store_label){"service_name", nm.service};
	for (i = 0; i < nm.n_tags; i++)
		labels[2 + i] = nm.tags[i];

	sdk.service = nm.service;
	sdk.profile_name = pname;
	sdk.labels = labels;
	sdk.n_labels = 2 + nm.n_tags;
	sdk.types = types;
	sdk.n_types = n_types;
	sdk.format = profile__format_name(fmt);
	sdk.aggregation = agg;
	sdk.payload = b->data;
	sdk.payload_len = b->len;
	ret->sdk = sdk;
	ret->pid_label = pid_of_labels(nm.tags, nm.n_tags);
cleanup:
	profile__free(p);
	return r;
}

/* ---- the push API ---------------------------------------------------------- */

/* A push request reduced to what braid reads, whichever encoding it came
 * in: strings NUL-terminated, all in the arena. */
struct raw_sample {
	const void *data;
	size_t len;
};

struct raw_series {
	const struct store_label *labels;
	size_t n_labels;
	const struct raw_sample *samples;
	size_t n_samples;
};

struct push_req {
	const struct raw_series *series;
	size_t n_series;
};

static size_t raw_labels_max(const struct ingest_limits *lim)
{
	return lim->max_labels * RAW_LABELS_FACTOR;
}

static int too_many_series(struct errbuf *err, size_t n, const struct ingest_limits *lim)
{
	return errbuf__set(err, -E2BIG, "push request has %zu series, at most %zu", n,
			   lim->max_series);
}

static int too_many_samples(struct errbuf *err, size_t n, const struct ingest_limits *lim)
{
	return errbuf__set(err, -E2BIG, "push request has %zu samples, at most %zu", n,
			   lim->max_samples);
}

static int too_many_raw_labels(struct errbuf *err, size_t si, const struct ingest_limits *lim)
{
	return errbuf__set(err, -EINVAL,
			   "series %zu has more than %zu labels (at most %zu are kept, "
			   "service_name and __name__ included)",
			   si, raw_labels_max(lim), lim->max_labels);
}

/* protobuf-c allocates from the arena, under a cap of its own. */
struct pb_ctx {
	struct arena *a;
	size_t used, cap;
	bool over, nomem;
};

static void *pb_alloc(void *data, size_t size)
{
	struct pb_ctx *c = data;
	void *p;

	if (size > c->cap - c->used) {
		c->over = true;
		return NULL;
	}
	p = arena__alloc(c->a, size);
	if (!p)
		c->nomem = true;
	else
		c->used += size;
	return p;
}

static void pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* the arena goes all at once */
}

static size_t sat_add(size_t x, size_t y)
{
	return x > SIZE_MAX - y ? SIZE_MAX : x + y;
}

static size_t sat_mul(size_t x, size_t y)
{
	return y && x > SIZE_MAX / y ? SIZE_MAX : x * y;
}

/*
 * What protobuf-c may allocate to unpack a request of len bytes that is
 * within our caps: the copies of its strings and bytes (at most len) and
 * their NULs (one per field, at most len again), plus one struct and array
 * slot per message, at most PB_MSG_BYTES (RawSample is the biggest: 48 bytes
 * and an 8-byte pointer), for max_series series of raw_labels_max labels and
 * max_samples samples, and 64 KiB for a few unknown fields. A request
 * needing more breaks a cap anyway: refusing it here stops a body of tiny
 * messages (2 bytes on the wire, ~60 in memory) from multiplying its size
 * thirtyfold before the caps are checked. With the defaults this is 2 × len
 * + ~8 MiB; len itself is at most max_decompressed (the server inflates
 * under it), so the bound is 2 × max_decompressed plus that constant.
 */
#define PB_MSG_BYTES 64

static size_t pb_cap(size_t len, const struct ingest_limits *lim)
{
	size_t msgs = sat_mul(lim->max_series, sat_add(raw_labels_max(lim), 1));

	msgs = sat_add(msgs, sat_add(lim->max_samples, 1));
	return sat_add(sat_add(sat_mul(len, 2), 64u << 10), sat_mul(msgs, PB_MSG_BYTES));
}

static int push_from_proto(const void *body, size_t len, const struct ingest_limits *lim,
			   struct arena *a, struct errbuf *err, struct push_req *ret)
{
	struct pb_ctx ctx = {a, 0, pb_cap(len, lim), false, false};
	ProtobufCAllocator alloc = {pb_alloc, pb_free, &ctx};
	Push__V1__PushRequest *req;
	struct raw_series *series = NULL;
	size_t total = 0, i, k;

	req = push__v1__push_request__unpack(&alloc, len, body);
	if (!req) {
		if (ctx.over)
			return errbuf__set(
				err, -E2BIG,
				"push request of %zu bytes needs over %zu bytes to decode: "
				"it has more series, labels or samples than braid takes "
				"(%zu series, %zu samples)",
				len, ctx.cap, lim->max_series, lim->max_samples);
		if (ctx.nomem)
			return errbuf__set(err, -ENOMEM, "out of memory");
		return errbuf__set(err, -EBADMSG,
				   "undecodable push request: %zu bytes that are not a "
				   "push.v1.PushRequest protobuf",
				   len);
	}
	if (req->n_series > lim->max_series)
		return too_many_series(err, req->n_series, lim);
	for (i = 0; i < req->n_series; i++)
		total += req->series[i]->n_samples;
	if (total > lim->max_samples)
		return too_many_samples(err, total, lim);
	if (req->n_series) {
		series = arena__alloc(a, req->n_series * sizeof(*series));
		if (!series)
			return errbuf__set(err, -ENOMEM, "out of memory");
	}
	for (i = 0; i < req->n_series; i++) {
		const Push__V1__RawProfileSeries *s = req->series[i];
		struct store_label *labels = NULL;
		struct raw_sample *samples = NULL;

		if (s->n_labels > raw_labels_max(lim))
			return too_many_raw_labels(err, i, lim);
		if (s->n_labels)
			labels = arena__alloc(a, s->n_labels * sizeof(*labels));
		if (s->n_samples)
			samples = arena__alloc(a, s->n_samples * sizeof(*samples));
		if ((s->n_labels && !labels) || (s->n_samples && !samples))
			return errbuf__set(err, -ENOMEM, "out of memory");
		for (k = 0; k < s->n_labels; k++) {
			labels[k].name = s->labels[k]->name ? s->labels[k]->name : "";
			labels[k].value = s->labels[k]->value ? s->labels[k]->value : "";
		}
		for (k = 0; k < s->n_samples; k++) {
			samples[k].data = s->samples[k]->raw_profile.data;
			samples[k].len = s->samples[k]->raw_profile.len;
		}
		series[i] = (struct raw_series){labels, s->n_labels, samples, s->n_samples};
	}
	ret->series = series;
	ret->n_series = req->n_series;
	return 0;
}

/* Decodes base64 in place: the standard or the URL-safe alphabet (not
 * both), padding optional but right when present, nothing else (no white
 * space), as proto3 JSON's bytes. */
static bool base64_decode(unsigned char *buf, size_t n, size_t *ret_len)
{
	size_t out = 0, pad = 0, i;
	unsigned acc = 0, bits = 0;
	int alphabet = 0; /* 1 standard, 2 URL-safe */

	while (n > 0 && buf[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if ((pad && (n + pad) % 4) || n % 4 == 1)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = buf[i];
		unsigned v;
		int alpha = 0;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+' || c == '/') {
			v = c == '+' ? 62 : 63;
			alpha = 1;
		} else if (c == '-' || c == '_') {
			v = c == '-' ? 62 : 63;
			alpha = 2;
		} else
			return false;
		if (alpha) {
			if (alphabet && alphabet != alpha)
				return false;
			alphabet = alpha;
		}
		acc = (acc << 6 | v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[out++] = (unsigned char)(acc >> bits);
		}
	}
	*ret_len = out;
	return true;
}

/* The JSON encoding's reader: scratch arrays (malloc'ed, freed at the end)
 * gather a series' labels and samples, then move to the arena. */
struct push_json {
	struct json j;
	struct arena *a;
	const struct ingest_limits *lim;
	struct dynbuf series, labels, samples;
	size_t n_series, n_samples; /* every one seen, stored or not */
};

static int pj_label(struct push_json *pj, struct store_label *ret)
{
	struct json *j = &pj->j;
	char key[JSON_KEY_MAX], *s;
	size_t i, klen, slen;
	bool seen_name = false, seen_value = false;
	int r;

	ret->name = "";
	ret->value = "";
	r = json_enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = json_next(j, '}', i);
		if (r <= 0)
			break;
		r = json_key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (key_is(key, klen, "name") || key_is(key, klen, "value")) {
			bool is_name = key[0] == 'n';
			bool *seen = is_name ? &seen_name : &seen_value;

			if (*seen)
				return json_fail(j, "duplicate field '%s'",
						 is_name ? "name" : "value");
			*seen = true;
			r = json_opt_string(j, pj->a, is_name ? "name" : "value", &s, &slen);
			if (r == 0 && s && strlen(s) != slen)
				return json_fail(j, "a label %s holds a NUL character",
						 is_name ? "name" : "value");
			if (r == 0 && s) {
				if (is_name)
					ret->name = s;
				else
					ret->value = s;
			}
		} else {
			r = json_skip(j);
		}
	}
	return r;
}

static int pj_sample(struct push_json *pj, size_t si, size_t k, struct raw_sample *ret)
{
	struct json *j = &pj->j;
	char key[JSON_KEY_MAX], *s;
	size_t i, klen, slen;
	bool seen_raw = false, seen_id = false;
	int r;

	ret->data = NULL;
	ret->len = 0;
	r = json_enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = json_next(j, '}', i);
		if (r <= 0)
			break;
		r = json_key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (key_is(key, klen, "rawProfile") || key_is(key, klen, "raw_profile")) {
			if (seen_raw)
				return json_fail(j, "duplicate field 'rawProfile'");
			seen_raw = true;
			r = json_opt_string(j, pj->a, "rawProfile", &s, &slen);
			if (r == 0 && s) {
				if (!base64_decode((unsigned char *)s, slen, &ret->len))
					return errbuf__set(
						j->err, -EBADMSG,
						"series %zu sample %zu: rawProfile is not base64 "
						"(standard or URL-safe alphabet, no white space), "
						"before byte %zu",
						si, k, j->pos);
				ret->data = s;
			}
		} else if (key_is(key, klen, "ID") || key_is(key, klen, "id")) {
			if (seen_id)
				return json_fail(j, "duplicate field 'ID'");
			seen_id = true;
			r = json_null(j);
			if (r == 0) {
				if (json_peek(j) != '"')
					return json_fail(j, "ID must be a string");
				r = json_string(j, NULL, 0, &slen);
			} else if (r > 0)
				r = 0;
		} else {
			r = json_skip(j);
		}
	}
	return r;
}

/* Reads series si; only counts its samples unless `keep`. */
static int pj_series(struct push_json *pj, size_t si, bool keep)
{
	struct json *j = &pj->j;
	char key[JSON_KEY_MAX];
	struct raw_series s = {0};
	struct store_label l;
	struct raw_sample sm;
	bool seen_labels = false, seen_samples = false, open;
	size_t i, k, klen;
	void *p;
	int r;

	if (!keep)
		return json_skip(j);
	dynbuf__reset(&pj->labels);
	dynbuf__reset(&pj->samples);
	r = json_enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = json_next(j, '}', i);
		if (r <= 0)
			break;
		r = json_key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (key_is(key, klen, "labels")) {
			if (seen_labels)
				return json_fail(j, "duplicate field 'labels'");
			seen_labels = true;
			r = json_array_or_null(j, &open);
			for (k = 0; r == 0 && open; k++) {
				r = json_next(j, ']', k);
				if (r <= 0)
					break;
				if (s.n_labels >= raw_labels_max(pj->lim))
					return too_many_raw_labels(j->err, si, pj->lim);
				r = pj_label(pj, &l);
				if (r == 0 && dynbuf__append(&pj->labels, &l, sizeof(l)) < 0)
					return errbuf__set(j->err, -ENOMEM, "out of memory");
				if (r == 0)
					s.n_labels++;
			}
		} else if (key_is(key, klen, "samples")) {
			if (seen_samples)
				return json_fail(j, "duplicate field 'samples'");
			seen_samples = true;
			r = json_array_or_null(j, &open);
			for (k = 0; r == 0 && open; k++) {
				r = json_next(j, ']', k);
				if (r <= 0)
					break;
				if (pj->n_samples++ >= pj->lim->max_samples) {
					r = json_skip(j);
					continue;
				}
				r = pj_sample(pj, si, k, &sm);
				if (r == 0 && dynbuf__append(&pj->samples, &sm, sizeof(sm)) < 0)
					return errbuf__set(j->err, -ENOMEM, "out of memory");
				if (r == 0)
					s.n_samples++;
			}
		} else {
			r = json_skip(j);
		}
	}
	if (r < 0)
		return r;
	if (s.n_labels) {
		p = arena__alloc(pj->a, pj->labels.len);
		if (!p)
			return errbuf__set(j->err, -ENOMEM, "out of memory");
		s.labels = memcpy(p, pj->labels.data, pj->labels.len);
	}
	if (s.n_samples) {
		p = arena__alloc(pj->a, pj->samples.len);
		if (!p)
			return errbuf__set(j->err, -ENOMEM, "out of memory");
		s.samples = memcpy(p, pj->samples.data, pj->samples.len);
	}
	r = dynbuf__append(&pj->series, &s, sizeof(s));
	return r < 0 ? errbuf__set(j->err, -ENOMEM, "out of memory") : 0;
}

static int push_from_json(const void *body, size_t len, const struct ingest_limits *lim,
			  struct arena *a, struct errbuf *err, struct push_req *ret)
{
	struct push_json pj = {
		.j = {body, len, 0, 0, "invalid JSON push request", err},
		.a = a,
		.lim = lim,
	};
	struct raw_series *series = NULL;
	char key[JSON_KEY_MAX];
	bool seen_series = false, open;
	size_t i, k, klen;
	int r;

	dynbuf__init(&pj.series, 0);
	dynbuf__init(&pj.labels, 0);
	dynbuf__init(&pj.samples, 0);
	r = json_enter(&pj.j, '{');
	for (i = 0; r == 0; i++) {
		r = json_next(&pj.j, '}', i);
		if (r <= 0)
			break;
		r = json_key(&pj.j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (!key_is(key, klen, "series")) {
			r = json_skip(&pj.j);
			continue;
		}
		if (seen_series) {
			r = json_fail(&pj.j, "duplicate field 'series'");
			break;
		}
		seen_series = true;
		r = json_array_or_null(&pj.j, &open);
		for (k = 0; r == 0 && open; k++) {
			r = json_next(&pj.j, ']', k);
			if (r <= 0)
				break;
			r = pj_series(&pj, pj.n_series, pj.n_series < lim->max_series);
			pj.n_series++;
		}
	}
	if (r < 0)
		goto cleanup;
	if (json_peek(&pj.j) != -1) {
		r = json_fail(&pj.j, "unexpected data after the JSON value");
		goto cleanup;
	}
	if (pj.n_series > lim->max_series) {
		r = too_many_series(err, pj.n_series, lim);
		goto cleanup;
	}
	if (pj.n_samples > lim->max_samples) {
		r = too_many_samples(err, pj.n_samples, lim);
		goto cleanup;
	}
	if (pj.series.len) {
		series = arena__alloc(a, pj.series.len);
		if (!series) {
			r = errbuf__set(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
		memcpy(series, pj.series.data, pj.series.len);
	}
	ret->series = series;
	ret->n_series = pj.n_series;
cleanup:
	dynbuf__free(&pj.series);
	dynbuf__free(&pj.labels);
	dynbuf__free(&pj.samples);
	return r;
}

/*
 * A series' labels as Pyroscope's distributor takes them: names non-empty
 * [A-Za-z0-9_.]+, names and values within their caps, "__"-prefixed names
 * other than __name__ and empty values dropped, no duplicates, a __name__,
 * service_name defaulting to "unknown_service", at most max_labels in all.
 * *ret (arena) keeps the request's order, service_name appended if added.
 */
static int push_labels(const struct raw_series *s, size_t si, const struct ingest_limits *lim,
		       struct arena *a, struct errbuf *err, struct store_label **ret, size_t *ret_n)
{
	struct store_label *kept;
	struct quoted q1, q2;
	size_t n = 0, total = 0, i, k;
	bool has_name = false, has_service = false;

	kept = arena__alloc(a, lim->max_labels * sizeof(*kept));
	if (!kept)
		return errbuf__set(err, -ENOMEM, "out of memory");
	for (i = 0; i < s->n_labels; i++) {
		const char *ln = s->labels[i].name, *lv = s->labels[i].value;
		size_t nl = strlen(ln), vl = strlen(lv);

		if (!nl)
			return errbuf__set(err, -EINVAL, "series %zu: label %zu has an empty name",
					   si, i);
		if (nl > INGEST_MAX_LABEL_NAME)
			return errbuf__set(err, -EINVAL,
					   "series %zu: label name '%s' is %zu bytes, at most %d",
					   si, quote(&q1, ln, nl), nl, INGEST_MAX_LABEL_NAME);
		for (k = 0; k < nl; k++)
			if (!is_label_char((unsigned char)ln[k]))
				return errbuf__set(err, -EINVAL,
						   "series %zu: bad character '%s' at offset %zu "
						   "of label name '%s': label names are made of "
						   "A-Z a-z 0-9 _ .",
						   si, quote(&q1, ln + k, 1), k,
						   quote(&q2, ln, nl));
		if (vl > INGEST_MAX_LABEL_VALUE)
			return errbuf__set(err, -EINVAL,
					   "series %zu: label '%s' has a value of %zu bytes, at "
					   "most %d",
					   si, quote(&q1, ln, nl), vl, INGEST_MAX_LABEL_VALUE);
		if (!utf8_valid(lv, vl))
			return errbuf__set(err, -EINVAL,
					   "series %zu: label '%s' has a value that is not UTF-8: "
					   "'%s'",
					   si, quote(&q1, ln, nl), quote(&q2, lv, vl));
		/* Pyroscope drops these */
		if (nl >= 2 && ln[0] == '_' && ln[1] == '_' && strcmp(ln, "__name__") != 0)
			continue;
		if (!vl)
			continue;
		has_name |= strcmp(ln, "__name__") == 0;
		has_service |= strcmp(ln, "service_name") == 0;
		if (++total > lim->max_labels)
			continue; /* over the cap: only counted */
		for (k = 0; k < n; k++)
			if (strcmp(kept[k].name, ln) == 0)
				return errbuf__set(err, -EINVAL, "series %zu: duplicate label '%s'",
						   si, quote(&q1, ln, nl));
		kept[n++] = s->labels[i];
	}
	if (!has_name)
		return errbuf__set(err, -EINVAL,
				   "series %zu has no __name__ label (the profile type, e.g. "
				   "process_cpu)",
				   si);
	if (total + !has_service > lim->max_labels)
		return errbuf__set(err, -EINVAL,
				   "series %zu has %zu labels, at most %zu (service_name and "
				   "__name__ included)",
				   si, total + !has_service, lim->max_labels);
	if (!has_service)
		kept[n++] = (struct store_label){"service_name", "unknown_service"};
	*ret = kept;
	*ret_n = n;
	return 0;
}

static const char *label_value(const struct store_label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0)
			return l[i].value;
	return NULL;
}

/* Decodes raw sample k of series si into ret: types and totals, time
 * range, sample rate, and the raw profile as the payload. */
static int push_profile(const struct raw_sample *sm, size_t si, size_t k, int64_t now_ns,
			const struct ingest_limits *lim, struct arena *a, struct errbuf *err,
			struct store_sdk_profile *ret)
{
	struct errbuf derr = {{0}};
	struct store_sample_type *types;
	struct profile *p = NULL;
	struct profile_value_type pt;
	int64_t t, d, period;
	char prefix[64];
	int r;

	snprintf(prefix, sizeof(prefix), "series %zu sample %zu: ", si, k);
	if (sm->len > STORE_MAX_PAYLOAD) {
		r = errbuf__set(err, -EFBIG, "%sa raw profile of %zu bytes is over the %u MiB cap",
				prefix, sm->len, STORE_MAX_PAYLOAD >> 20);
		goto cleanup;
	}
	r = profile__decode(sm->data, sm->len, PROFILE_FORMAT_PPROF, NULL, &lim->profile, &derr, &p,
			    NULL);
	if (r < 0) {
		r = decode_error(err, r, &derr, prefix, PROFILE_FORMAT_PPROF);
		goto cleanup;
	}
	r = profile_types(p, prefix, a, err, &types, &ret->n_types);
	if (r < 0)
		goto cleanup;
	ret->types = types;
	/* the decoder refused negative ranges; a missing time_nanos is now */
	t = profile__time_nanos(p);
	d = profile__duration_nanos(p);
	ret->from_ns = t ? t : now_ns;
	if (d > INT64_MAX - ret->from_ns) {
		r = errbuf__set(err, -EBADMSG,
				"%stime_nanos + duration_nanos (%" PRId64 " + %" PRId64
				") overflows 64 bits",
				prefix, ret->from_ns, d);
		goto cleanup;
	}
	ret->until_ns = ret->from_ns + d;
	pt = profile__period_type(p);
	period = profile__period(p);
	ret->sample_rate = 0;
	if (period > 0 && strcmp(pstr(p, pt.type), "cpu") == 0 &&
	    strcmp(pstr(p, pt.unit), "nanoseconds") == 0)
		ret->sample_rate = (1000000000 + period / 2) / period;
	ret->format = "pprof";
	ret->payload = sm->data;
	ret->payload_len = sm->len;
cleanup:
	profile__free(p);
	return r;
}

static int push_profiles(const struct push_req *req, int64_t now_ns,
			 const struct ingest_limits *lim, struct arena *a, struct errbuf *err,
			 struct ingest_profile **ret, size_t *ret_n)
{
	struct ingest_profile *out = NULL;
	size_t total = 0, n = 0, si, k;
	int r;

	for (si = 0; si < req->n_series; si++)
		total += req->series[si].n_samples;
	if (total) {
		out = arena__alloc(a, total * sizeof(*out));
		if (!out)
			return errbuf__set(err, -ENOMEM, "out of memory");
	}
	for (si = 0; si < req->n_series; si++) {
		const struct raw_series *s = &req->series[si];
		struct store_label *labels = NULL;
		size_t n_labels = 0;
		int32_t pid;

		if (!s->n_samples)
			continue; /* contributes nothing */
		r = push_labels(s, si, lim, a, err, &labels, &n_labels);
		if (r < 0)
			return r;
		pid = pid_of_labels(labels, n_labels);
		for (k = 0; k < s->n_samples; k++, n++) {
			memset(&out[n], 0, sizeof(out[n]));
			r = push_profile(&s->samples[k], si, k, now_ns, lim, a, err, &out[n].sdk);
			if (r < 0)
				return r;
			out[n].sdk.service = label_value(labels, n_labels, "service_name");
			out[n].sdk.profile_name = label_value(labels, n_labels, "__name__");
			out[n].sdk.labels = labels;
			out[n].sdk.n_labels = n_labels;
			out[n].pid_label = pid;
		}
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

int ingest__decode_push(const char *content_type, const void *body, size_t len, int64_t now_ns,
			const struct ingest_limits *lim_in, struct arena *a, struct errbuf *err,
			struct ingest_profile **ret_profiles, size_t *ret_n)
{
	struct push_req req = {0};
	struct ingest_limits lim;
	struct quoted q;
	int r;

	effective_limits(lim_in, &lim);
	if (!content_type)
		return errbuf__set(err, -EPROTONOSUPPORT,
				   "no content type (the push API takes application/proto or "
				   "application/json)");
	if (media_type_is(content_type, "application/proto") ||
	    media_type_is(content_type, "application/protobuf") ||
	    media_type_is(content_type, "application/x-protobuf"))
		r = push_from_proto(body, len, &lim, a, err, &req);
	else if (media_type_is(content_type, "application/json"))
		r = push_from_json(body, len, &lim, a, err, &req);
	else
		return errbuf__set(err, -EPROTONOSUPPORT,
				   "unsupported content type '%s' (the push API takes "
				   "application/proto or application/json)",
				   quote_cstr(&q, content_type));
	if (r < 0)
		return r;
	return push_profiles(&req, now_ns, &lim, a, err, ret_profiles, ret_n);
}
