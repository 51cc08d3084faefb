/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/decode.c: what the legacy and the push decoders share: the
 * limits a decode runs under, the HTTP status of each error, quoting a
 * client's bytes for a message, the legacy `name` and `from`/`until`, the
 * pid label, media types, and a decoded profile's sample types. The
 * decoders themselves are legacy.c and push.c; ingest_int.h says what
 * holds for them all.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "ingest/ingest_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <strings.h>

#define PID_MAX 4194304 /* the kernel's PID_MAX_LIMIT (2^22) */

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

void ingest_limits__effective(const struct ingest_limits *in, struct ingest_limits *out)
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

/* ---- messages, labels, media types -------------------------------------- */

const char *ingest__quote(struct ingest_quoted *q, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
			if (o + 1 > INGEST_QUOTE_MAX)
				break;
			q->s[o++] = (char)c;
		} else {
			if (o + 4 > INGEST_QUOTE_MAX)
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

const char *ingest__quote_cstr(struct ingest_quoted *q, const char *s)
{
	return ingest__quote(q, s, strlen(s));
}

static bool is_app_char(unsigned char c)
{
	return ingest__is_alnum(c) || c == '_' || c == '.' || c == '/' || c == '-';
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t';
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

int32_t ingest__pid_of_labels(const struct label *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "pid") == 0)
			return parse_pid(l[i].value);
	return 0;
}

bool ingest__media_type_is(const char *ct, const char *want)
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
		    struct arena *a, struct errbuf *err, struct label *tags, size_t max_tags,
		    size_t *n_kept, size_t *n_total)
{
	struct ingest_quoted q1, q2;
	size_t i;

	if (!klen)
		return errbuf__set(err, -EINVAL, "tag '=%s' in name '%s' has an empty key",
				   ingest__quote(&q1, vs, vlen), ingest__quote_cstr(&q2, name));
	if (klen > INGEST_MAX_LABEL_NAME)
		return errbuf__set(err, -EINVAL, "tag key '%s' is %zu bytes, at most %d",
				   ingest__quote(&q1, ks, klen), klen, INGEST_MAX_LABEL_NAME);
	for (i = 0; i < klen; i++)
		if (!ingest__is_label_char((unsigned char)ks[i]))
			return errbuf__set(
				err, -EINVAL,
				"bad character '%s' at offset %zu of name '%s': tag keys "
				"are made of A-Z a-z 0-9 _ .",
				ingest__quote(&q1, ks + i, 1), (size_t)(ks + i - name),
				ingest__quote_cstr(&q2, name));
	if (vlen > INGEST_MAX_LABEL_VALUE)
		return errbuf__set(err, -EINVAL, "tag '%s' has a value of %zu bytes, at most %d",
				   ingest__quote(&q1, ks, klen), vlen, INGEST_MAX_LABEL_VALUE);
	if (memchr(vs, '}', vlen))
		return errbuf__set(err, -EINVAL,
				   "bad character '}' at offset %zu of name '%s': tag values "
				   "cannot hold ',' or '}'",
				   (size_t)((const char *)memchr(vs, '}', vlen) - name),
				   ingest__quote_cstr(&q2, name));
	if (klen == 8 && memcmp(ks, "__name__", 8) == 0)
		return errbuf__set(err, -EINVAL,
				   "tag '%s' is reserved: braid sets __name__ from the app name "
				   "and the profile",
				   ingest__quote(&q1, ks, klen));
	/* as Pyroscope: __session_id__ (the Go SDK's, on every push) is kept,
	 * other __ tags are dropped */
	if (klen >= 2 && ks[0] == '_' && ks[1] == '_' &&
	    !(klen == sizeof(INGEST_SESSION_LABEL) - 1 &&
	      memcmp(ks, INGEST_SESSION_LABEL, klen) == 0))
		return 0;
	if (!ingest__utf8_valid(vs, vlen))
		return errbuf__set(err, -EINVAL, "tag '%s' has a value that is not UTF-8: '%s'",
				   ingest__quote(&q1, ks, klen), ingest__quote(&q2, vs, vlen));
	if (!vlen)
		return 0;
	if (++*n_total > max_tags)
		return 0;
	for (i = 0; i < *n_kept; i++)
		if (strlen(tags[i].name) == klen && memcmp(tags[i].name, ks, klen) == 0)
			return errbuf__set(err, -EINVAL, "duplicate tag '%s' in name '%s'",
					   ingest__quote(&q1, ks, klen),
					   ingest__quote_cstr(&q2, name));
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
	struct label *tags = NULL;
	const struct suffix *sfx = NULL;
	struct ingest_quoted q1, q2;
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
				ingest__quote_cstr(&q1, name));
		goto cleanup;
	}
	if (app_len > INGEST_MAX_APP_NAME) {
		r = errbuf__set(err, -EINVAL, "app name '%s' is %zu bytes, at most %d",
				ingest__quote(&q1, name, app_len), app_len, INGEST_MAX_APP_NAME);
		goto cleanup;
	}
	for (i = 0; i < app_len; i++)
		if (!is_app_char((unsigned char)name[i])) {
			r = errbuf__set(err, -EINVAL,
					"bad character '%s' at offset %zu of app name '%s': app "
					"names are made of A-Z a-z 0-9 _ . / -",
					ingest__quote(&q1, name + i, 1), i,
					ingest__quote(&q2, name, app_len));
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
					ingest__quote_cstr(&q1, name));
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
						ingest__quote(&q1, ks, (size_t)(end - ks)),
						ingest__quote_cstr(&q2, name));
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
				ingest__quote(&q1, name, app_len));
		goto cleanup;
	}
	n.service = sfx ? arena__strndup(a, name, (size_t)(dot - name)) : n.app;
	if (!n.service) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	/* a service_name tag names the service, as in Pyroscope: it is the
	 * series' service_name, not a second one */
	for (i = 0; i < n_kept; i++)
		if (strcmp(tags[i].name, "service_name") == 0) {
			n.service = tags[i].value;
			memmove(&tags[i], &tags[i + 1], (n_kept - i - 1) * sizeof(*tags));
			n_kept--;
			break;
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

/* "2026-11-21T10:00:00Z" (or +hh:mm), digits (ingest's units), "now", or a
 * duration ago ("15m", "2h", "90s", "1d"). */
int ingest__parse_when(const char *s, int64_t now, int64_t *ret)
{
	struct tm tm = {0};
	const char *end;
	char *e;

	if (!strcmp(s, "now")) {
		*ret = now;
		return 0;
	}
	if (ingest__parse_time(s, now, ret) == 0)
		return 0;
	if (isdigit((unsigned char)s[0])) {
		unsigned long long v = strtoull(s, &e, 10);
		int64_t mul = !strcmp(e, "s")	? 1
			      : !strcmp(e, "m") ? 60
			      : !strcmp(e, "h") ? 3600
			      : !strcmp(e, "d") ? 86400
						: 0;

		if (mul && v <= 3650ull * 86400 / (unsigned long long)mul) {
			*ret = now - (int64_t)v * mul * 1000000000;
			return 0;
		}
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end) {
		int64_t off = 0;

		if (*end == '.') /* fractions of a second are dropped */
			while (isdigit((unsigned char)*++end))
				;
		if (*end == '+' || *end == '-') {
			int hh, mm;

			if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(end) != 6)
				goto bad;
			off = (hh * 3600 + mm * 60) * (*end == '+' ? 1 : -1);
		} else if (strcmp(end, "Z") != 0 && *end) {
			goto bad;
		}
		*ret = ((int64_t)timegm(&tm) - off) * 1000000000;
		return 0;
	}
bad:
	return -EINVAL;
}

/* ---- profiles --------------------------------------------------------------- */

const char *ingest__profile_str(const struct profile *p, uint32_t id)
{
	const char *s = profile__str(p, id);

	return s ? s : "";
}

int ingest__decode_error(struct errbuf *err, int r, const struct errbuf *derr, const char *prefix,
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

int ingest__profile_types(const struct profile *p, const char *prefix, struct arena *a,
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
		types[i].type = arena__strndup(a, ingest__profile_str(p, vt.type), tl);
		types[i].unit = arena__strndup(a, ingest__profile_str(p, vt.unit), ul);
		types[i].total = totals[i];
		if (!types[i].type || !types[i].unit)
			return errbuf__set(err, -ENOMEM, "out of memory");
	}
	*ret = types;
	*ret_n = n;
	return 0;
}
