/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/legacy.c: the legacy /ingest decoder (ingest__decode_legacy), the
 * API most SDKs push to: the query's name, times, rate and strings, a body
 * in pprof, folded or lines by `format` and Content-Type, and a multipart
 * form's sample_type_config. The server splits a multipart body into its
 * fields before this decoder sees it.
 */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define DEFAULT_SAMPLE_RATE 100
#define MAX_SAMPLE_RATE	    1000000000

/* ---- sample_type_config ---------------------------------------------------- */

/* A sample type's display name, from a sample_type_config. */
struct display_name {
	const char *type, *name;
};

#define MAX_DISPLAY_NAMES 64

/* The display names a config gives (the profile type's name comes from
 * them, as Pyroscope names it), or NULL: no config. */
struct display_names {
	struct display_name d[MAX_DISPLAY_NAMES];
	size_t n;
};

/* Validates a multipart sample_type_config (a JSON object mapping a sample
 * type to {"units", "aggregation", "display-name", "sampled",
 * "cumulative"}), returns in *ret_agg the aggregation it gives for the
 * sample type `want` (NULL if none) and in *ret_names the display names
 * (the first MAX_DISPLAY_NAMES). Pyroscope uses the rest to relabel the
 * profiles it converts; braid stores the pprof as received, so the rest is
 * only validated. Unknown members are ignored, as Go's encoding/json does. */
static int sample_type_config(const char *data, size_t len, const char *want, struct arena *a,
			      struct errbuf *err, const char **ret_agg,
			      struct display_names *ret_names)
{
	struct ingest_json j;
	const char *agg = NULL;
	char key[INGEST_JSON_KEY_MAX], *type, *s;
	size_t i, k, klen, tlen, slen;
	struct ingest_quoted q, q2;
	bool match;
	int r;

	if (len > INGEST_MAX_SAMPLE_TYPE_CONFIG)
		return errbuf__set(err, -EFBIG, "sample_type_config is %zu bytes, at most %u", len,
				   INGEST_MAX_SAMPLE_TYPE_CONFIG);
	ingest_json__init(&j, data, len, "sample_type_config", err);
	r = ingest_json__null(&j);
	if (r == 0)
		r = ingest_json__enter(&j, '{');
	else if (r > 0)
		r = 1; /* null: no entries */
	for (i = 0; r == 0; i++) {
		r = ingest_json__next(&j, '}', i);
		if (r <= 0)
			break;
		r = ingest_json__key_dup(&j, a, &type, &tlen);
		if (r < 0)
			break;
		match = want && tlen == strlen(want) && memcmp(type, want, tlen) == 0;
		r = ingest_json__null(&j);
		if (r) {
			r = r < 0 ? r : 0;
			continue;
		}
		if (ingest_json__peek(&j) != '{')
			return ingest_json__fail(&j, "the entry for '%s' must be an object",
						 ingest__quote(&q, type, tlen));
		r = ingest_json__enter(&j, '{');
		for (k = 0; r == 0; k++) {
			r = ingest_json__next(&j, '}', k);
			if (r <= 0)
				break;
			r = ingest_json__key(&j, key, sizeof(key), &klen);
			if (r < 0)
				break;
			if (ingest_json__key_is(key, klen, "units")) {
				r = ingest_json__opt_string(&j, a, "units", &s, &slen);
			} else if (ingest_json__key_is(key, klen, "display-name")) {
				r = ingest_json__opt_string(&j, a, "display-name", &s, &slen);
				if (r == 0 && s && *s && ret_names->n < MAX_DISPLAY_NAMES)
					ret_names->d[ret_names->n++] =
						(struct display_name){type, s};
			} else if (ingest_json__key_is(key, klen, "aggregation")) {
				r = ingest_json__opt_string(&j, a, "aggregation", &s, &slen);
				if (r == 0 && s && strcmp(s, "sum") != 0 &&
				    strcmp(s, "average") != 0)
					return errbuf__set(err, -EBADMSG,
							   "sample_type_config: the aggregation of "
							   "'%s' is '%s', not sum or average",
							   ingest__quote(&q, type, tlen),
							   ingest__quote_cstr(&q2, s));
				if (r == 0 && s && match)
					agg = s;
			} else if (ingest_json__key_is(key, klen, "sampled")) {
				r = ingest_json__opt_bool(&j, "sampled");
			} else if (ingest_json__key_is(key, klen, "cumulative")) {
				r = ingest_json__opt_bool(&j, "cumulative");
			} else {
				r = ingest_json__skip(&j);
			}
		}
	}
	if (r < 0)
		return r;
	if (ingest_json__peek(&j) != -1)
		return ingest_json__fail(&j, "unexpected data after the JSON value");
	*ret_agg = agg;
	return 0;
}

/* ---- the profile type ------------------------------------------------------- */

/* Pyroscope's display name of a sample type: the push's sample_type_config
 * when it has one (cfg), else Pyroscope's defaults for Go's types. */
static const char *display_of(const char *type, const struct display_names *cfg)
{
	static const struct display_name defaults[] = {{"samples", "cpu"},
						       {"goroutine", "goroutines"},
						       {"contentions", "mutex_count"},
						       {"delay", "mutex_duration"}};

	if (cfg) {
		for (size_t i = 0; i < cfg->n; i++)
			if (strcmp(cfg->d[i].type, type) == 0)
				return cfg->d[i].name;
		return type;
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(defaults); i++)
		if (strcmp(defaults[i].type, type) == 0)
			return defaults[i].name;
	return type;
}

/* Pyroscope's __name__ for a pprof profile whose app name has no known
 * suffix (its RawProfile.metricName): "wall" if a sample type is wall;
 * else by the first display name that holds cpu, alloc_ or inuse_ (or is
 * space or objects), mutex_, block_ or goroutines; else the last display
 * name. The Go SDK's goroutine profile, whose config names it "goroutine",
 * is "goroutine" so. */
static const char *profile_name_of(const struct profile *p, const struct display_names *cfg)
{
	size_t n = profile__n_sample_types(p);
	const char *st = "";

	for (size_t i = 0; i < n; i++)
		if (strcmp(ingest__profile_str(p, profile__sample_type(p, i).type), "wall") == 0)
			return "wall";
	for (size_t i = 0; i < n; i++) {
		st = display_of(ingest__profile_str(p, profile__sample_type(p, i).type), cfg);
		if (strstr(st, "cpu"))
			return "process_cpu";
		if (strstr(st, "alloc_") || strstr(st, "inuse_") || strcmp(st, "space") == 0 ||
		    strcmp(st, "objects") == 0)
			return "memory";
		if (strstr(st, "mutex_"))
			return "mutex";
		if (strstr(st, "block_"))
			return "block";
		if (strstr(st, "goroutines"))
			return "goroutines";
	}
	return st;
}

/* ---- the legacy /ingest --------------------------------------------------- */

static const char *const unsupported_formats[] = {"trie", "tree", "speedscope"};

/* The body's format: the `format` parameter, then the content type. */
static int legacy_format(const struct ingest_query *q, const struct ingest_body *b,
			 struct errbuf *err, enum profile_format *ret)
{
	struct ingest_quoted qq;

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
				ingest__quote_cstr(&qq, q->format));
		}
		return 0;
	}
	if (ingest__media_type_is(b->content_type, "binary/octet-stream+trie") ||
	    ingest__media_type_is(b->content_type, "binary/octet-stream+tree"))
		return errbuf__set(
			err, -ENOTSUP,
			"format '%s' (Content-Type %s) is not supported yet (braid reads "
			"pprof, folded and lines)",
			ingest__media_type_is(b->content_type, "binary/octet-stream+trie") ? "trie"
											   : "tree",
			ingest__quote_cstr(&qq, b->content_type));
	if (ingest__media_type_is(b->content_type, "binary/octet-stream+lines"))
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
	struct ingest_quoted q;
	size_t n;

	*ret = NULL;
	if (!v || !*v)
		return 0;
	n = strlen(v);
	if (n > STORE_MAX_STRING)
		return errbuf__set(err, -EINVAL, "%s '%s' is %zu bytes, at most %d", field,
				   ingest__quote(&q, v, n), n, STORE_MAX_STRING);
	if (!ingest__utf8_valid(v, n))
		return errbuf__set(err, -EINVAL, "%s '%s' is not UTF-8", field,
				   ingest__quote(&q, v, n));
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
	struct label *labels;
	struct profile *p = NULL;
	enum profile_format fmt = PROFILE_FORMAT_FOLDED;
	const char *agg = NULL, *cfg_agg = NULL, *pname;
	struct display_names names = {0};
	bool have_cfg = false;
	struct ingest_quoted q1;
	size_t n_types, i;
	int r;

	ingest_limits__effective(lim_in, &lim);
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
			ingest__quote_cstr(&q1, q->from));
		goto cleanup;
	}
	if (ingest__parse_time(q->until, now_ns, &sdk.until_ns) < 0) {
		r = errbuf__set(
			err, -EINVAL,
			"bad until '%s': expected a Unix time in s, ms, us or ns (all digits)",
			ingest__quote_cstr(&q1, q->until));
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
		/* 0 as Pyroscope takes it: the Go SDK's goroutine profile says
		 * it is not sampled */
		if (v < 0 || v > MAX_SAMPLE_RATE) {
			r = errbuf__set(err, -EINVAL,
					"bad sampleRate '%s': expected a whole number of Hz from 0 "
					"to %d",
					ingest__quote_cstr(&q1, q->sample_rate), MAX_SAMPLE_RATE);
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
					ingest__quote_cstr(&q1, q->aggregation));
			goto cleanup;
		}
	}
	if (q->format && strcmp(q->format, "jfr") == 0) {
		/* kept as sent, for pass-through: braid does not read JFR yet */
		r = ingest_jfr__form(b, lim.max_decompressed, a, err, &sdk.payload,
				     &sdk.payload_len);
		if (r < 0)
			goto cleanup;
		labels = arena__alloc(a, (2 + nm.n_tags) * sizeof(*labels));
		if (!labels) {
			r = errbuf__set(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
		labels[0] = (struct label){"__name__", "jfr"};
		labels[1] = (struct label){"service_name", nm.service};
		for (i = 0; i < nm.n_tags; i++)
			labels[2 + i] = nm.tags[i];
		sdk.service = nm.service;
		sdk.profile_name = "jfr";
		sdk.labels = labels;
		sdk.n_labels = 2 + nm.n_tags;
		sdk.format = "jfr";
		sdk.aggregation = agg;
		ret->sdk = sdk;
		ret->pid_label = ingest__pid_of_labels(nm.tags, nm.n_tags);
		goto cleanup;
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
		r = ingest__decode_error(err, r, &derr, "", fmt);
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
	r = ingest__profile_types(p, "", a, err, &types, &n_types);
	if (r < 0)
		goto cleanup;
	if (b->sample_type_config && b->sample_type_config_len) {
		int d = profile__default_sample_type(p);

		have_cfg = true;
		r = sample_type_config(b->sample_type_config, b->sample_type_config_len,
				       d < 0 ? NULL : types[d].type, a, err, &cfg_agg, &names);
		if (r < 0)
			goto cleanup;
		if (!agg)
			agg = cfg_agg;
	}

	pname = nm.profile_name ? nm.profile_name : profile_name_of(p, have_cfg ? &names : NULL);
	if (!*pname || strlen(pname) > INGEST_MAX_LABEL_VALUE) {
		r = errbuf__set(err, -EBADMSG,
				"cannot name the profile type from its sample types ('%s'): give "
				"the app name a suffix such as .cpu",
				ingest__quote_cstr(&q1, pname));
		goto cleanup;
	}
	pname = arena__strndup(a, pname, strlen(pname));
	labels = arena__alloc(a, (2 + nm.n_tags) * sizeof(*labels));
	if (!pname || !labels) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	labels[0] = (struct label){"__name__", pname};
	labels[1] = (struct label){"service_name", nm.service};
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
	ret->pid_label = ingest__pid_of_labels(nm.tags, nm.n_tags);
cleanup:
	profile__free(p);
	return r;
}
