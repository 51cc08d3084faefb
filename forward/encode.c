/* SPDX-License-Identifier: Apache-2.0 */
/* forward/: what goes on the wire, pure functions of the items (no I/O). */
#define _GNU_SOURCE
#include "forward.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "push.pb-c.h"

const char *forward__api_name(enum forward_api api)
{
	return api == FORWARD_API_INGEST ? "ingest" : "push";
}

/* ---- labels ------------------------------------------------------------------ */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

/* A label name Pyroscope accepts, in the arena; NULL on ENOMEM. */
static char *clean_name(const char *name, struct arena *a)
{
	size_t len = strnlen(name, FORWARD_MAX_LABEL_NAME - 1);
	bool digit = name[0] >= '0' && name[0] <= '9';
	char *out = arena__alloc(a, len + 2);
	size_t j = 0;

	if (!out)
		return NULL;
	if (digit || len == 0)
		out[j++] = '_';
	for (size_t i = 0; i < len; i++)
		out[j++] = name_char(name[i]) ? name[i] : '_';
	out[j] = '\0';
	return out;
}

/* The order labels are kept in when there are too many: the profile kind,
 * the service and the view first, then the rest as given. */
static int label_rank(const char *name)
{
	if (strcmp(name, "__name__") == 0)
		return 0;
	if (strcmp(name, "service_name") == 0)
		return 1;
	if (strcmp(name, "braid_view") == 0)
		return 2;
	return 3;
}

int forward__labels(const struct label *in, size_t n, struct arena *a, struct label **ret_labels,
		    size_t *ret_n, size_t *ret_dropped)
{
	struct label *out = NULL;
	size_t kept = 0, dropped = 0;

	out = arena__alloc(a, (n ? n : 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (int rank = 0; rank <= 3; rank++) {
		for (size_t i = 0; i < n; i++) {
			const char *name = in[i].name ? in[i].name : "";
			const char *value = in[i].value ? in[i].value : "";
			char *clean;
			bool dup = false;

			if (label_rank(name) != rank)
				continue;
			/* Pyroscope drops __ labels, but for __session_id__ */
			if (name[0] == '_' && name[1] == '_' && rank != 0 &&
			    strcmp(name, FORWARD_SESSION_LABEL) != 0) {
				dropped++;
				continue;
			}
			clean = clean_name(name, a);
			if (!clean)
				return -ENOMEM;
			for (size_t j = 0; j < kept && !dup; j++)
				dup = strcmp(out[j].name, clean) == 0;
			if (dup || kept == FORWARD_MAX_LABELS) {
				dropped++;
				continue;
			}
			if (strlen(value) > FORWARD_MAX_LABEL_VALUE) {
				char *cut = arena__alloc(a, FORWARD_MAX_LABEL_VALUE + 1);
				size_t len = FORWARD_MAX_LABEL_VALUE;

				if (!cut)
					return -ENOMEM;
				/* never cut a UTF-8 sequence in two */
				while (len > 0 && ((unsigned char)value[len] & 0xc0) == 0x80)
					len--;
				memcpy(cut, value, len);
				cut[len] = '\0';
				value = cut;
			}
			out[kept].name = clean;
			out[kept].value = value;
			kept++;
		}
	}
	*ret_labels = out;
	*ret_n = kept;
	if (ret_dropped)
		*ret_dropped = dropped;
	return 0;
}

/* ---- the push request --------------------------------------------------------- */

int forward__encode_push(const struct store_outbox_item *const *items, size_t n, struct dynbuf *out)
{
	Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
	Push__V1__RawProfileSeries *series = NULL, **series_ptrs = NULL;
	Push__V1__RawSample *samples = NULL, **sample_ptrs = NULL;
	Push__V1__LabelPair *pairs = NULL, **pair_ptrs = NULL;
	struct dynbuf *gz = NULL;
	struct arena a = {0};
	size_t total_labels = 0, size;
	int r = 0;

	dynbuf__reset(out);
	series = calloc(n ? n : 1, sizeof(*series));
	series_ptrs = calloc(n ? n : 1, sizeof(*series_ptrs));
	samples = calloc(n ? n : 1, sizeof(*samples));
	sample_ptrs = calloc(n ? n : 1, sizeof(*sample_ptrs));
	gz = calloc(n ? n : 1, sizeof(*gz));
	pairs = calloc(n * FORWARD_MAX_LABELS + 1, sizeof(*pairs));
	pair_ptrs = calloc(n * FORWARD_MAX_LABELS + 1, sizeof(*pair_ptrs));
	if (!series || !series_ptrs || !samples || !sample_ptrs || !gz || !pairs || !pair_ptrs) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_outbox_item *it = items[i];
		struct label *labels;
		size_t n_labels;

		dynbuf__init(&gz[i], 0);
		r = forward__labels(it->labels, it->n_labels, &a, &labels, &n_labels, NULL);
		if (r < 0)
			goto cleanup;
		push__v1__raw_profile_series__init(&series[i]);
		series[i].labels = &pair_ptrs[total_labels];
		for (size_t j = 0; j < n_labels; j++) {
			Push__V1__LabelPair *p = &pairs[total_labels];

			push__v1__label_pair__init(p);
			/* protobuf-c's strings are not const, but are only read here */
			p->name = (char *)labels[j].name;
			p->value = (char *)labels[j].value;
			pair_ptrs[total_labels++] = p;
		}
		series[i].n_labels = n_labels;
		push__v1__raw_sample__init(&samples[i]);
		if (it->payload && !util__is_gzip(it->payload, it->payload_len)) {
			r = util__gzip(it->payload, it->payload_len, 6, &gz[i]);
			if (r < 0)
				goto cleanup;
			samples[i].raw_profile.data = (uint8_t *)gz[i].data;
			samples[i].raw_profile.len = gz[i].len;
		} else {
			samples[i].raw_profile.data = (uint8_t *)it->payload;
			samples[i].raw_profile.len = it->payload ? it->payload_len : 0;
		}
		samples[i].id = (char *)(it->raw_id ? it->raw_id : "");
		sample_ptrs[i] = &samples[i];
		series[i].samples = &sample_ptrs[i];
		series[i].n_samples = 1;
		series_ptrs[i] = &series[i];
	}
	req.series = series_ptrs;
	req.n_series = n;
	size = push__v1__push_request__get_packed_size(&req);
	r = dynbuf__reserve(out, size);
	if (r < 0)
		goto cleanup;
	out->len = push__v1__push_request__pack(&req, (uint8_t *)out->data);
cleanup:
	if (gz)
		for (size_t i = 0; i < n; i++)
			dynbuf__free(&gz[i]);
	free(gz);
	free(series);
	free(series_ptrs);
	free(samples);
	free(sample_ptrs);
	free(pairs);
	free(pair_ptrs);
	arena__free(&a);
	return r;
}

/* ---- the legacy name ------------------------------------------------------------- */

static int put_clean(struct dynbuf *out, const char *s, bool app)
{
	int r = 0;

	for (; *s && r == 0; s++) {
		char c = *s;

		if (app)
			c = name_char(c) || c == '/' || c == '-' ? c : '_';
		else if (c == ',' || c == '}' || c == '{' || c == '=')
			c = '_';
		r = dynbuf__putc(out, c);
	}
	return r;
}

int forward__legacy_name(const struct label *labels, size_t n, struct dynbuf *out)
{
	const char *service = "unknown_service";
	bool first = true;
	int r;

	for (size_t i = 0; i < n; i++)
		if (labels[i].name && strcmp(labels[i].name, "service_name") == 0 &&
		    labels[i].value && labels[i].value[0])
			service = labels[i].value;
	r = put_clean(out, service, true);
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *name = labels[i].name ? labels[i].name : "";

		if (strcmp(name, "service_name") == 0 || strcmp(name, "__name__") == 0 || !name[0])
			continue;
		r = dynbuf__putc(out, first ? '{' : ',');
		first = false;
		if (r == 0)
			r = put_clean(out, name, false);
		if (r == 0)
			r = dynbuf__putc(out, '=');
		if (r == 0)
			r = put_clean(out, labels[i].value ? labels[i].value : "", false);
	}
	if (r == 0 && !first)
		r = dynbuf__putc(out, '}');
	return r;
}

/* ---- replies, retries --------------------------------------------------------------- */

enum forward_outcome forward__outcome(long status)
{
	if (status >= 200 && status < 300)
		return FORWARD_DELIVERED;
	/* no reply, a server error, or "slow down": the profile is fine */
	if (status == 0 || status >= 500 || status == 408 || status == 429)
		return FORWARD_RETRY;
	/* another 4xx: this request will never be taken (a 3xx too: braid does
	 * not follow redirects with a profile in the body) */
	return FORWARD_REFUSED;
}

int64_t forward__retry_after_ms(const char *value, int64_t now_ns)
{
	const char *p = value;
	int64_t ms;

	if (!value)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		char *end;
		unsigned long long s = strtoull(p, &end, 10);

		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end)
			return -1;
		ms = s > FORWARD_MAX_RETRY_AFTER_MS / 1000 ? FORWARD_MAX_RETRY_AFTER_MS
							   : (int64_t)s * 1000;
	} else {
		/* an HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT" */
		time_t t = curl_getdate(p, NULL);

		if (t < 0)
			return -1;
		ms = (int64_t)t * 1000 - now_ns / 1000000;
		if (ms < 0)
			ms = 0;
		if (ms > FORWARD_MAX_RETRY_AFTER_MS)
			ms = FORWARD_MAX_RETRY_AFTER_MS;
	}
	return ms;
}

int64_t forward__backoff_ms(int64_t attempts, int64_t min_ms, int64_t max_ms, uint64_t random)
{
	int64_t d = min_ms > 0 ? min_ms : 1, half;

	for (int64_t i = 1; i < attempts && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : 2 * d;
	if (d > max_ms)
		d = max_ms;
	half = d / 2;
	return d - half + (half > 0 ? (int64_t)(random % (uint64_t)(half + 1)) : 0);
}
