/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/push.c: the push API's decoder (ingest__decode_push), for
 * /push.v1.PusherService/Push: a push.v1.PushRequest in protobuf or in
 * proto3 JSON is read into one form (struct push_req), whose series' labels
 * are then checked as Pyroscope's distributor does and whose raw profiles
 * are decoded one by one.
 */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "push.pb-c.h"

/* Labels a push series may carry before the drops (empty values and
 * "__"-prefixed names): Pyroscope counts after dropping, so a few more are
 * fine, but reading an unbounded number only to drop them is not. */
#define RAW_LABELS_FACTOR 4

/* ---- the request, whichever its encoding ---------------------------------- */

/* A push request reduced to what braid reads, whichever encoding it came
 * in: strings NUL-terminated, all in the arena. */
struct raw_sample {
	const void *data;
	size_t len;
};

struct raw_series {
	const struct label *labels;
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

/* ---- protobuf --------------------------------------------------------------- */

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
		struct label *labels = NULL;
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

/* ---- proto3 JSON ----------------------------------------------------------- */

/* The JSON encoding's reader: scratch arrays (malloc'ed, freed at the end)
 * gather a series' labels and samples, then move to the arena. */
struct push_json {
	struct ingest_json j;
	struct arena *a;
	const struct ingest_limits *lim;
	struct dynbuf series, labels, samples;
	size_t n_series, n_samples; /* every one seen, stored or not */
};

static int pj_label(struct push_json *pj, struct label *ret)
{
	struct ingest_json *j = &pj->j;
	char key[INGEST_JSON_KEY_MAX], *s;
	size_t i, klen, slen;
	bool seen_name = false, seen_value = false;
	int r;

	ret->name = "";
	ret->value = "";
	r = ingest_json__enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = ingest_json__next(j, '}', i);
		if (r <= 0)
			break;
		r = ingest_json__key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (ingest_json__key_is(key, klen, "name") ||
		    ingest_json__key_is(key, klen, "value")) {
			bool is_name = key[0] == 'n';
			bool *seen = is_name ? &seen_name : &seen_value;

			if (*seen)
				return ingest_json__fail(j, "duplicate field '%s'",
							 is_name ? "name" : "value");
			*seen = true;
			r = ingest_json__opt_string(j, pj->a, is_name ? "name" : "value", &s,
						    &slen);
			if (r == 0 && s && strlen(s) != slen)
				return ingest_json__fail(j, "a label %s holds a NUL character",
							 is_name ? "name" : "value");
			if (r == 0 && s) {
				if (is_name)
					ret->name = s;
				else
					ret->value = s;
			}
		} else {
			r = ingest_json__skip(j);
		}
	}
	return r;
}

static int pj_sample(struct push_json *pj, size_t si, size_t k, struct raw_sample *ret)
{
	struct ingest_json *j = &pj->j;
	char key[INGEST_JSON_KEY_MAX], *s;
	size_t i, klen, slen;
	bool seen_raw = false, seen_id = false;
	int r;

	ret->data = NULL;
	ret->len = 0;
	r = ingest_json__enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = ingest_json__next(j, '}', i);
		if (r <= 0)
			break;
		r = ingest_json__key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (ingest_json__key_is(key, klen, "rawProfile") ||
		    ingest_json__key_is(key, klen, "raw_profile")) {
			if (seen_raw)
				return ingest_json__fail(j, "duplicate field 'rawProfile'");
			seen_raw = true;
			r = ingest_json__opt_string(j, pj->a, "rawProfile", &s, &slen);
			if (r == 0 && s) {
				if (ingest__base64_decode((unsigned char *)s, slen, &ret->len) < 0)
					return errbuf__set(
						j->err, -EBADMSG,
						"series %zu sample %zu: rawProfile is not base64 "
						"(standard or URL-safe alphabet, no white space), "
						"before byte %zu",
						si, k, j->pos);
				ret->data = s;
			}
		} else if (ingest_json__key_is(key, klen, "ID") ||
			   ingest_json__key_is(key, klen, "id")) {
			if (seen_id)
				return ingest_json__fail(j, "duplicate field 'ID'");
			seen_id = true;
			r = ingest_json__null(j);
			if (r == 0) {
				if (ingest_json__peek(j) != '"')
					return ingest_json__fail(j, "ID must be a string");
				r = ingest_json__string(j, NULL, 0, &slen);
			} else if (r > 0)
				r = 0;
		} else {
			r = ingest_json__skip(j);
		}
	}
	return r;
}

/* Reads series si; only counts its samples unless `keep`. */
static int pj_series(struct push_json *pj, size_t si, bool keep)
{
	struct ingest_json *j = &pj->j;
	char key[INGEST_JSON_KEY_MAX];
	struct raw_series s = {0};
	struct label l;
	struct raw_sample sm;
	bool seen_labels = false, seen_samples = false, open;
	size_t i, k, klen;
	void *p;
	int r;

	if (!keep)
		return ingest_json__skip(j);
	dynbuf__reset(&pj->labels);
	dynbuf__reset(&pj->samples);
	r = ingest_json__enter(j, '{');
	for (i = 0; r == 0; i++) {
		r = ingest_json__next(j, '}', i);
		if (r <= 0)
			break;
		r = ingest_json__key(j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (ingest_json__key_is(key, klen, "labels")) {
			if (seen_labels)
				return ingest_json__fail(j, "duplicate field 'labels'");
			seen_labels = true;
			r = ingest_json__array_or_null(j, &open);
			for (k = 0; r == 0 && open; k++) {
				r = ingest_json__next(j, ']', k);
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
		} else if (ingest_json__key_is(key, klen, "samples")) {
			if (seen_samples)
				return ingest_json__fail(j, "duplicate field 'samples'");
			seen_samples = true;
			r = ingest_json__array_or_null(j, &open);
			for (k = 0; r == 0 && open; k++) {
				r = ingest_json__next(j, ']', k);
				if (r <= 0)
					break;
				if (pj->n_samples++ >= pj->lim->max_samples) {
					r = ingest_json__skip(j);
					continue;
				}
				r = pj_sample(pj, si, k, &sm);
				if (r == 0 && dynbuf__append(&pj->samples, &sm, sizeof(sm)) < 0)
					return errbuf__set(j->err, -ENOMEM, "out of memory");
				if (r == 0)
					s.n_samples++;
			}
		} else {
			r = ingest_json__skip(j);
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
	struct push_json pj = {.a = a, .lim = lim};
	struct raw_series *series = NULL;
	char key[INGEST_JSON_KEY_MAX];
	bool seen_series = false, open;
	size_t i, k, klen;
	int r;

	ingest_json__init(&pj.j, body, len, "invalid JSON push request", err);
	dynbuf__init(&pj.series, 0);
	dynbuf__init(&pj.labels, 0);
	dynbuf__init(&pj.samples, 0);
	r = ingest_json__enter(&pj.j, '{');
	for (i = 0; r == 0; i++) {
		r = ingest_json__next(&pj.j, '}', i);
		if (r <= 0)
			break;
		r = ingest_json__key(&pj.j, key, sizeof(key), &klen);
		if (r < 0)
			break;
		if (!ingest_json__key_is(key, klen, "series")) {
			r = ingest_json__skip(&pj.j);
			continue;
		}
		if (seen_series) {
			r = ingest_json__fail(&pj.j, "duplicate field 'series'");
			break;
		}
		seen_series = true;
		r = ingest_json__array_or_null(&pj.j, &open);
		for (k = 0; r == 0 && open; k++) {
			r = ingest_json__next(&pj.j, ']', k);
			if (r <= 0)
				break;
			r = pj_series(&pj, pj.n_series, pj.n_series < lim->max_series);
			pj.n_series++;
		}
	}
	if (r < 0)
		goto cleanup;
	if (ingest_json__peek(&pj.j) != -1) {
		r = ingest_json__fail(&pj.j, "unexpected data after the JSON value");
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

/* ---- series and profiles ------------------------------------------------- */

/*
 * A series' labels as Pyroscope's distributor takes them: names non-empty
 * [A-Za-z0-9_.]+, names and values within their caps, "__"-prefixed names
 * other than __name__ and empty values dropped, no duplicates, a __name__,
 * service_name defaulting to "unknown_service", at most max_labels in all.
 * *ret (arena) keeps the request's order, service_name appended if added.
 */
static int push_labels(const struct raw_series *s, size_t si, const struct ingest_limits *lim,
		       struct arena *a, struct errbuf *err, struct label **ret, size_t *ret_n)
{
	struct label *kept;
	struct ingest_quoted q1, q2;
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
					   si, ingest__quote(&q1, ln, nl), nl,
					   INGEST_MAX_LABEL_NAME);
		for (k = 0; k < nl; k++)
			if (!ingest__is_label_char((unsigned char)ln[k]))
				return errbuf__set(err, -EINVAL,
						   "series %zu: bad character '%s' at offset %zu "
						   "of label name '%s': label names are made of "
						   "A-Z a-z 0-9 _ .",
						   si, ingest__quote(&q1, ln + k, 1), k,
						   ingest__quote(&q2, ln, nl));
		if (vl > INGEST_MAX_LABEL_VALUE)
			return errbuf__set(err, -EINVAL,
					   "series %zu: label '%s' has a value of %zu bytes, at "
					   "most %d",
					   si, ingest__quote(&q1, ln, nl), vl,
					   INGEST_MAX_LABEL_VALUE);
		if (!ingest__utf8_valid(lv, vl))
			return errbuf__set(err, -EINVAL,
					   "series %zu: label '%s' has a value that is not UTF-8: "
					   "'%s'",
					   si, ingest__quote(&q1, ln, nl),
					   ingest__quote(&q2, lv, vl));
		/* Pyroscope drops these, but for __session_id__ */
		if (nl >= 2 && ln[0] == '_' && ln[1] == '_' && strcmp(ln, "__name__") != 0 &&
		    strcmp(ln, INGEST_SESSION_LABEL) != 0)
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
						   si, ingest__quote(&q1, ln, nl));
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
		kept[n++] = (struct label){"service_name", "unknown_service"};
	*ret = kept;
	*ret_n = n;
	return 0;
}

static const char *label_value(const struct label *l, size_t n, const char *name)
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
		r = ingest__decode_error(err, r, &derr, prefix, PROFILE_FORMAT_PPROF);
		goto cleanup;
	}
	r = ingest__profile_types(p, prefix, a, err, &types, &ret->n_types);
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
	if (period > 0 && strcmp(ingest__profile_str(p, pt.type), "cpu") == 0 &&
	    strcmp(ingest__profile_str(p, pt.unit), "nanoseconds") == 0)
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
		struct label *labels = NULL;
		size_t n_labels = 0;
		int32_t pid;

		if (!s->n_samples)
			continue; /* contributes nothing */
		r = push_labels(s, si, lim, a, err, &labels, &n_labels);
		if (r < 0)
			return r;
		pid = ingest__pid_of_labels(labels, n_labels);
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
	struct ingest_quoted q;
	int r;

	ingest_limits__effective(lim_in, &lim);
	if (!content_type)
		return errbuf__set(err, -EPROTONOSUPPORT,
				   "no content type (the push API takes application/proto or "
				   "application/json)");
	if (ingest__media_type_is(content_type, "application/proto") ||
	    ingest__media_type_is(content_type, "application/protobuf") ||
	    ingest__media_type_is(content_type, "application/x-protobuf"))
		r = push_from_proto(body, len, &lim, a, err, &req);
	else if (ingest__media_type_is(content_type, "application/json"))
		r = push_from_json(body, len, &lim, a, err, &req);
	else
		return errbuf__set(err, -EPROTONOSUPPORT,
				   "unsupported content type '%s' (the push API takes "
				   "application/proto or application/json)",
				   ingest__quote_cstr(&q, content_type));
	if (r < 0)
		return r;
	return push_profiles(&req, now_ns, &lim, a, err, ret_profiles, ret_n);
}
