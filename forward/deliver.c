/* SPDX-License-Identifier: Apache-2.0 */
/* forward/: delivery of the outbox over libcurl. */
#define _GNU_SOURCE
#include "forward.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PUSH_PATH   "/push.v1.PusherService/Push"
#define INGEST_PATH "/ingest"

/* An item copied out of the store (its strings and payload in the batch
 * arena), with what the legacy API needs of an SDK profile. */
struct item {
	struct store_outbox_item it;
	const char *format; /* "pprof", "folded", "lines", "jfr"; SDK items: as pushed */
	const char *spy_name, *units, *aggregation;
	int64_t sample_rate;
};

struct forwarder {
	struct forward_options o; /* strings owned (strdup), headers too */
	char **own_headers;
	struct store *s;
	CURL *curl;
	char *base; /* the URL without a trailing '/' */
	struct dynbuf body, reply, url, ctype;
	char retry_after[128];
	char curl_err[CURL_ERROR_SIZE];
	struct arena arena; /* the batch's copies */
	struct item *batch;
	size_t n_batch, cap_batch, batch_bytes;
	const char **skipped; /* series passed over in this batch (another tenant) */
	size_t n_skipped, cap_skipped;
	bool batch_full;
	int64_t failures;	/* upstream failures in a row */
	long last_status;	/* of the last request: 0 for none */
	int64_t last_judged_ns; /* when the upstream last took or refused an item */
	uint64_t rng;
	struct forward_stats total, *pass;
	atomic_bool interrupted, stopping;
	char errmsg[1024];
};

enum step { STEP_ON, STEP_STOP };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void set_err(struct forwarder *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_err(struct forwarder *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
	va_end(ap);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: jitter only, never security */
static uint64_t next_random(struct forwarder *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545f4914f6cdd1dull;
}

/* ---- options ---------------------------------------------------------------------- */

static bool has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n");
}

int forward__check_options(const struct forward_options *o, struct errbuf *err)
{
	const char *url = o->url, *host;

	if (!url || !url[0])
		return errbuf__set(err, -EINVAL, "no upstream URL given");
	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return errbuf__set(err, -EINVAL,
				   "the upstream URL '%s' must start with http:// or https://",
				   url);
	if (!host[0] || host[0] == '/' || host[0] == ':')
		return errbuf__set(err, -EINVAL, "the upstream URL '%s' names no host", url);
	if (strpbrk(url, " \t\r\n?#"))
		return errbuf__set(err, -EINVAL,
				   "the upstream URL '%s' has a space, a query or a fragment: give "
				   "the server's base URL",
				   url);
	if (has_crlf(o->tenant) || has_crlf(o->bearer_token) || has_crlf(o->basic_auth) ||
	    has_crlf(o->user_agent))
		return errbuf__set(err, -EINVAL,
				   "a line break in an upstream credential or tenant");
	if (o->basic_auth && !strchr(o->basic_auth, ':'))
		return errbuf__set(err, -EINVAL, "the upstream basic auth must be USER:PASSWORD");
	if (o->bearer_token && o->basic_auth)
		return errbuf__set(err, -EINVAL,
				   "give the upstream a bearer token or basic auth, not both");
	if (o->n_headers > FORWARD_MAX_HEADERS)
		return errbuf__set(err, -EINVAL, "more than %d upstream headers",
				   FORWARD_MAX_HEADERS);
	for (size_t i = 0; i < o->n_headers; i++) {
		const char *h = o->headers[i], *colon = h ? strchr(h, ':') : NULL;

		if (!colon || colon == h || has_crlf(h))
			return errbuf__set(err, -EINVAL,
					   "the upstream header '%s' is not \"Name: value\"",
					   h ? h : "");
		for (const char *p = h; p < colon; p++)
			if (*p <= ' ' || *p >= 127)
				return errbuf__set(err, -EINVAL,
						   "the upstream header '%s' has a bad name", h);
	}
	if (!o->cert_file != !o->key_file)
		return errbuf__set(err, -EINVAL,
				   "a client certificate needs both its certificate and its key");
	if (o->api != FORWARD_API_PUSH && o->api != FORWARD_API_INGEST)
		return errbuf__set(err, -EINVAL, "unknown upstream API");
	return 0;
}

static int dup_opt(const char **dst, const char *src)
{
	if (!src) {
		*dst = NULL;
		return 0;
	}
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int forward__new(const struct forward_options *o, struct store *s, struct errbuf *err,
		 struct forwarder **ret)
{
	struct forwarder *f = NULL;
	size_t len;
	int r;

	r = forward__check_options(o, err);
	if (r < 0)
		return r;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return errbuf__set(err, -EIO, "libcurl did not initialise: %s",
				   curl_easy_strerror(curl_init_rc));
	f = calloc(1, sizeof(*f));
	if (!f)
		return errbuf__set(err, -ENOMEM, "out of memory");
	f->s = s;
	f->o = *o;
	f->o.headers = NULL;
	r = dup_opt(&f->o.url, o->url);
	r = r < 0 ? r : dup_opt(&f->o.tenant, o->tenant);
	r = r < 0 ? r : dup_opt(&f->o.bearer_token, o->bearer_token);
	r = r < 0 ? r : dup_opt(&f->o.basic_auth, o->basic_auth);
	r = r < 0 ? r : dup_opt(&f->o.ca_file, o->ca_file);
	r = r < 0 ? r : dup_opt(&f->o.cert_file, o->cert_file);
	r = r < 0 ? r : dup_opt(&f->o.key_file, o->key_file);
	r = r < 0 ? r : dup_opt(&f->o.user_agent, o->user_agent ? o->user_agent : "braid");
	if (r == 0 && o->n_headers) {
		f->own_headers = calloc(o->n_headers, sizeof(*f->own_headers));
		if (!f->own_headers)
			r = -ENOMEM;
		for (size_t i = 0; r == 0 && i < o->n_headers; i++)
			if (!(f->own_headers[i] = strdup(o->headers[i])))
				r = -ENOMEM;
		f->o.headers = (const char *const *)f->own_headers;
	}
	if (r == 0 && !(f->base = strdup(o->url)))
		r = -ENOMEM;
	if (r < 0) {
		forward__free(f);
		return errbuf__set(err, r, "out of memory");
	}
	len = strlen(f->base);
	while (len > 0 && f->base[len - 1] == '/')
		f->base[--len] = '\0';
	if (!f->o.timeout_ms)
		f->o.timeout_ms = FORWARD_DEFAULT_TIMEOUT_MS;
	if (!f->o.connect_timeout_ms)
		f->o.connect_timeout_ms = FORWARD_DEFAULT_CONNECT_TIMEOUT_MS;
	if (!f->o.max_request_bytes)
		f->o.max_request_bytes = FORWARD_DEFAULT_MAX_REQUEST_BYTES;
	if (f->o.backoff_min_ms <= 0)
		f->o.backoff_min_ms = FORWARD_DEFAULT_BACKOFF_MIN_MS;
	if (f->o.backoff_max_ms <= 0)
		f->o.backoff_max_ms = FORWARD_DEFAULT_BACKOFF_MAX_MS;
	if (f->o.backoff_max_ms < f->o.backoff_min_ms)
		f->o.backoff_max_ms = f->o.backoff_min_ms;
	dynbuf__init(&f->body, 0);
	dynbuf__init(&f->reply, FORWARD_MAX_REPLY_BYTES);
	dynbuf__init(&f->url, 0);
	dynbuf__init(&f->ctype, 0);
	if (getrandom(&f->rng, sizeof(f->rng), GRND_NONBLOCK) != sizeof(f->rng) || !f->rng)
		f->rng = (uint64_t)now_ns() | 1;
	f->curl = curl_easy_init();
	if (!f->curl) {
		forward__free(f);
		return errbuf__set(err, -ENOMEM, "libcurl: no easy handle");
	}
	*ret = f;
	return 0;
}

void forward__free(struct forwarder *f)
{
	if (!f)
		return;
	if (f->curl)
		curl_easy_cleanup(f->curl);
	free((char *)f->o.url);
	free((char *)f->o.tenant);
	free((char *)f->o.bearer_token);
	free((char *)f->o.basic_auth);
	free((char *)f->o.ca_file);
	free((char *)f->o.cert_file);
	free((char *)f->o.key_file);
	free((char *)f->o.user_agent);
	if (f->own_headers)
		for (size_t i = 0; i < f->o.n_headers; i++)
			free(f->own_headers[i]);
	free(f->own_headers);
	free(f->base);
	dynbuf__free(&f->body);
	dynbuf__free(&f->reply);
	dynbuf__free(&f->url);
	dynbuf__free(&f->ctype);
	arena__free(&f->arena);
	free(f->batch);
	free(f->skipped);
	free(f);
}

void forward__stats(const struct forwarder *f, struct forward_stats *ret)
{
	*ret = f->total;
}

const char *forward__errmsg(const struct forwarder *f)
{
	return f->errmsg;
}

/* ---- the batch -------------------------------------------------------------------- */

static const char *tenant_of(const struct forwarder *f, const struct store_outbox_item *it)
{
	return it->tenant && it->tenant[0] ? it->tenant : f->o.tenant;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* store__outbox_due's callback: copies the item into the batch. One
 * request has one tenant (X-Scope-OrgID): an item of another tenant is
 * passed over, and so is every later item of its series, which must not
 * overtake it. */
static int collect(void *ctx, const struct store_outbox_item *it)
{
	struct forwarder *f = ctx;
	struct item *c;
	struct label *labels;
	int r;

	for (size_t i = 0; i < f->n_skipped; i++)
		if (strcmp(f->skipped[i], it->series) == 0)
			return 0;
	if (f->n_batch && !same_str(tenant_of(f, it), tenant_of(f, &f->batch[0].it))) {
		r = util__grow((void **)&f->skipped, &f->cap_skipped, f->n_skipped + 1,
			       sizeof(*f->skipped));
		if (r < 0)
			return r;
		if (!(f->skipped[f->n_skipped] = arena__strdup(&f->arena, it->series)))
			return -ENOMEM;
		f->n_skipped++;
		return 0;
	}
	r = util__grow((void **)&f->batch, &f->cap_batch, f->n_batch + 1, sizeof(*f->batch));
	if (r < 0)
		return r;
	c = &f->batch[f->n_batch];
	*c = (struct item){.it = *it};
	labels = arena__alloc(&f->arena, (it->n_labels ? it->n_labels : 1) * sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	for (size_t i = 0; i < it->n_labels; i++) {
		labels[i].name = arena__strdup(&f->arena, it->labels[i].name);
		labels[i].value = arena__strdup(&f->arena, it->labels[i].value);
		if ((it->labels[i].name && !labels[i].name) ||
		    (it->labels[i].value && !labels[i].value))
			return -ENOMEM;
	}
	c->it.labels = labels;
	c->it.series = arena__strdup(&f->arena, it->series);
	c->it.tenant = arena__strdup(&f->arena, it->tenant);
	c->it.kind = arena__strdup(&f->arena, it->kind);
	c->it.raw_id = arena__strdup(&f->arena, it->raw_id);
	c->it.last_error = NULL;
	c->format = "pprof";
	if (!c->it.series || !c->it.kind || (it->tenant && !c->it.tenant) ||
	    (it->raw_id && !c->it.raw_id))
		return -ENOMEM;
	if (it->payload && it->payload_len) {
		void *p = arena__alloc(&f->arena, it->payload_len);

		if (!p)
			return -ENOMEM;
		memcpy(p, it->payload, it->payload_len);
		c->it.payload = p;
	} else {
		c->it.payload = NULL;
		c->it.payload_len = 0;
	}
	f->n_batch++;
	f->batch_bytes += c->it.payload_len;
	return 0;
}

/* store__get_sdk_profile's callback: what the legacy API replays. */
static int sdk_meta(void *ctx, const struct store_sdk_profile *p)
{
	struct item *c = ((void **)ctx)[0];
	struct arena *a = ((void **)ctx)[1];

	c->format = arena__strdup(a, p->format ? p->format : "pprof");
	c->spy_name = arena__strdup(a, p->spy_name);
	c->units = arena__strdup(a, p->units);
	c->aggregation = arena__strdup(a, p->aggregation);
	c->sample_rate = p->sample_rate;
	return c->format ? 0 : -ENOMEM;
}

/* Reads the next batch of due items. */
static int read_batch(struct forwarder *f, int64_t due_ns)
{
	size_t max_items = f->o.api == FORWARD_API_INGEST ? 1 : FORWARD_MAX_BATCH_ITEMS;
	int r;

	arena__reset(&f->arena);
	f->n_batch = 0;
	f->batch_bytes = 0;
	f->n_skipped = 0;
	r = store__outbox_due(f->s, due_ns, max_items, f->o.max_request_bytes, collect, f);
	if (r < 0) {
		set_err(f, "reading the outbox: %s", store__errmsg(f->s));
		return r;
	}
	for (size_t i = 0; i < f->n_batch; i++) {
		struct item *c = &f->batch[i];
		void *ctx[2] = {c, &f->arena};

		if (c->it.sdk_profile_id <= 0 || c->it.converted)
			continue; /* pprof, made here */
		r = store__get_sdk_profile(f->s, c->it.sdk_profile_id, sdk_meta, ctx);
		if (r == -ENOENT) {
			c->it.payload = NULL; /* expired meanwhile */
			c->it.payload_len = 0;
			r = 0;
		}
		if (r < 0) {
			set_err(f, "reading SDK profile %" PRId64 ": %s", c->it.sdk_profile_id,
				store__errmsg(f->s));
			return r;
		}
	}
	return 0;
}

/* ---- one HTTP request --------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct dynbuf *b = ctx;
	size_t len = size * n, room = b->max > b->len + 1 ? b->max - b->len - 1 : 0;

	/* keep the start of the reply for messages, swallow the rest */
	if (room)
		dynbuf__append(b, data, len < room ? len : room);
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct forwarder *f = ctx;
	size_t len = size * n;

	if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
		size_t vlen = len - 12;

		if (vlen >= sizeof(f->retry_after))
			vlen = sizeof(f->retry_after) - 1;
		memcpy(f->retry_after, data + 12, vlen);
		f->retry_after[vlen] = '\0';
		f->retry_after[strcspn(f->retry_after, "\r\n")] = '\0';
	}
	return len;
}

/* The reply's message: Connect's and Pyroscope's JSON {"code", "message"},
 * else the body's first line, printable and bounded. */
static void reply_message(const struct dynbuf *b, char *out, size_t size)
{
	const char *s = b->data ? b->data : "", *m = strstr(s, "\"message\"");
	size_t j = 0;

	if (m && (m = strchr(m + 9, '"'))) {
		for (m++; *m && *m != '"' && j + 1 < size; m++) {
			if (*m == '\\' && m[1])
				m++;
			out[j++] = (unsigned char)*m < ' ' ? ' ' : *m;
		}
	} else {
		for (; *s && *s != '\n' && j + 1 < size; s++)
			out[j++] = (unsigned char)*s < ' ' ? ' ' : *s;
	}
	out[j] = '\0';
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct forwarder *f = ctx;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&f->interrupted) ? 1 : 0;
}

void forward__interrupt(struct forwarder *f)
{
	atomic_store(&f->interrupted, true);
}

void forward__stop_soon(struct forwarder *f)
{
	atomic_store(&f->stopping, true);
}

/* Sends body to url with content type ct and the items' tenant; *ret_status
 * gets the HTTP status, 0 when no reply came (f->curl_err says why). */
static int http_post(struct forwarder *f, const char *url, const char *ct, const char *tenant,
		     int64_t deadline_ns, long *ret_status)
{
	struct curl_slist *h = NULL, *n;
	char line[FORWARD_MAX_SECRET + 64];
	long timeout = (long)f->o.timeout_ms;
	CURLcode rc;
	int r = 0;

	if (deadline_ns) {
		int64_t left = (deadline_ns - now_ns()) / 1000000;

		if (left < timeout)
			timeout = left > 100 ? (long)left : 100;
	}
	snprintf(line, sizeof(line), "Content-Type: %s", ct);
	h = curl_slist_append(h, line);
	/* no "Expect: 100-continue" round trip before the body */
	if (h && (n = curl_slist_append(h, "Expect:")))
		h = n;
	if (h && tenant) {
		snprintf(line, sizeof(line), "X-Scope-OrgID: %s", tenant);
		n = curl_slist_append(h, line);
		h = n ? n : NULL;
	}
	if (h && f->o.bearer_token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", f->o.bearer_token);
		n = curl_slist_append(h, line);
		h = n ? n : NULL;
	}
	for (size_t i = 0; h && i < f->o.n_headers; i++) {
		n = curl_slist_append(h, f->o.headers[i]);
		h = n ? n : NULL;
	}
	if (!h) {
		set_err(f, "out of memory");
		return -ENOMEM;
	}
	curl_easy_reset(f->curl);
	dynbuf__reset(&f->reply);
	f->retry_after[0] = '\0';
	f->curl_err[0] = '\0';
	curl_easy_setopt(f->curl, CURLOPT_URL, url);
	curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, f->body.data ? f->body.data : "");
	curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body.len);
	curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(f->curl, CURLOPT_USERAGENT, f->o.user_agent);
	curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(f->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)f->o.connect_timeout_ms < timeout ? (long)f->o.connect_timeout_ms
								 : timeout);
	curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, &f->reply);
	curl_easy_setopt(f->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(f->curl, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, f->curl_err);
	curl_easy_setopt(f->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(f->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(f->curl, CURLOPT_XFERINFODATA, f);
	if (f->o.basic_auth) {
		curl_easy_setopt(f->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(f->curl, CURLOPT_USERPWD, f->o.basic_auth);
	}
	if (f->o.ca_file)
		curl_easy_setopt(f->curl, CURLOPT_CAINFO, f->o.ca_file);
	if (f->o.cert_file) {
		curl_easy_setopt(f->curl, CURLOPT_SSLCERT, f->o.cert_file);
		curl_easy_setopt(f->curl, CURLOPT_SSLKEY, f->o.key_file);
	}
	if (f->o.insecure) {
		curl_easy_setopt(f->curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(f->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	rc = curl_easy_perform(f->curl);
	*ret_status = 0;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, ret_status);
	} else {
		if (!f->curl_err[0])
			snprintf(f->curl_err, sizeof(f->curl_err), "%s", curl_easy_strerror(rc));
		if (rc == CURLE_OUT_OF_MEMORY)
			r = -ENOMEM;
	}
	f->pass->requests++;
	curl_slist_free_all(h);
	return r;
}

/* ---- outcomes ---------------------------------------------------------------------- */

static int mark_delivered(struct forwarder *f, struct item *const *items, size_t n)
{
	int r = store__begin(f->s);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = store__outbox_done(f->s, items[i]->it.id);
	if (r == 0)
		r = store__commit(f->s);
	if (r < 0) {
		set_err(f,
			"the upstream took %zu profiles, but the store did not record it: %s "
			"(they will be sent again, with the same IDs)",
			n, store__errmsg(f->s));
		store__rollback(f->s);
		return r;
	}
	f->pass->delivered += (int64_t)n;
	for (size_t i = 0; i < n; i++)
		f->pass->delivered_bytes += (int64_t)items[i]->it.payload_len;
	f->pass->last_delivered_ns = now_ns();
	f->last_judged_ns = f->pass->last_delivered_ns;
	f->failures = 0;
	return 0;
}

/* The upstream could not take the items now: each waits (Retry-After, or
 * its own backoff) and so does the whole upstream. */
static int schedule_retry(struct forwarder *f, struct item *const *items, size_t n, const char *why)
{
	int64_t now = now_ns();
	int64_t ra = forward__retry_after_ms(f->retry_after[0] ? f->retry_after : NULL, now);
	int64_t global;
	int r = store__begin(f->s);

	for (size_t i = 0; r == 0 && i < n; i++) {
		int64_t d = ra >= 0 ? ra
				    : forward__backoff_ms(items[i]->it.attempts + 1,
							  f->o.backoff_min_ms, f->o.backoff_max_ms,
							  next_random(f));

		r = store__outbox_retry(f->s, items[i]->it.id, now + d * 1000000, why);
	}
	if (r == 0)
		r = store__commit(f->s);
	if (r < 0) {
		set_err(f, "scheduling a retry: %s", store__errmsg(f->s));
		store__rollback(f->s);
		return r;
	}
	f->failures++;
	global = ra >= 0 ? ra
			 : forward__backoff_ms(f->failures, f->o.backoff_min_ms,
					       f->o.backoff_max_ms, next_random(f));
	f->pass->backoff_until_ns = now + global * 1000000;
	f->pass->retries += (int64_t)n;
	f->pass->last_failed_ns = now;
	set_err(f, "%s (next try in %.1f s)", why, (double)global / 1000);
	return 0;
}

static int mark_dead(struct forwarder *f, struct item *c, int status, const char *why)
{
	int r = store__outbox_dead(f->s, c->it.id, status, why);

	if (r < 0) {
		set_err(f, "moving item %" PRId64 " to the dead letters: %s", c->it.id,
			store__errmsg(f->s));
		return r;
	}
	f->pass->dead_letters++;
	set_err(f, "a %s profile of series %s was refused: %s", c->it.kind, c->it.series, why);
	return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

static int build_legacy_url(struct forwarder *f, const struct item *c)
{
	const char *spy = c->spy_name ? c->spy_name : "braid";
	char *esc = NULL;
	struct dynbuf name;
	int r;

	dynbuf__init(&name, 0);
	dynbuf__reset(&f->url);
	r = forward__legacy_name(c->it.labels, c->it.n_labels, &name);
	if (r == 0 && !(esc = curl_easy_escape(f->curl, name.data ? name.data : "", 0)))
		r = -ENOMEM;
	if (r == 0)
		r = dynbuf__printf(&f->url,
				   "%s" INGEST_PATH "?name=%s&from=%" PRId64 "&until=%" PRId64
				   "&format=%s",
				   f->base, esc, c->it.from_ns, c->it.until_ns, c->format);
	curl_free(esc);
	esc = NULL;
	if (r == 0 && c->sample_rate > 0)
		r = dynbuf__printf(&f->url, "&sampleRate=%" PRId64, c->sample_rate);
	if (r == 0 && (esc = curl_easy_escape(f->curl, spy, 0)))
		r = dynbuf__printf(&f->url, "&spyName=%s", esc);
	else if (r == 0)
		r = -ENOMEM;
	curl_free(esc);
	esc = NULL;
	if (r == 0 && c->units && (esc = curl_easy_escape(f->curl, c->units, 0)))
		r = dynbuf__printf(&f->url, "&units=%s", esc);
	curl_free(esc);
	esc = NULL;
	if (r == 0 && c->aggregation && (esc = curl_easy_escape(f->curl, c->aggregation, 0)))
		r = dynbuf__printf(&f->url, "&aggregationType=%s", esc);
	curl_free(esc);
	dynbuf__free(&name);
	return r;
}

/* The Content-Type of an item sent alone to /ingest: a JFR push is the
 * multipart form ingest kept, whose first line is "--BOUNDARY"
 * (ingest/jfr.c). */
static const char *legacy_content_type(struct forwarder *f, const struct item *c)
{
	const char *p = c->it.payload, *eol;

	if (strcmp(c->format, "pprof") == 0)
		return "application/octet-stream";
	if (strcmp(c->format, "jfr") != 0)
		return "text/plain";
	eol = c->it.payload_len > 2 ? memchr(p, '\r', c->it.payload_len) : NULL;
	dynbuf__reset(&f->ctype);
	if (!eol || p[0] != '-' || p[1] != '-' || eol - p > 200 ||
	    dynbuf__printf(&f->ctype, "multipart/form-data; boundary=%.*s", (int)(eol - p - 2),
			   p + 2) < 0)
		return "multipart/form-data"; /* Pyroscope refuses it: a dead letter says so */
	return f->ctype.data;
}

/* Sends items (all of one tenant) in one request: the push API, or, for
 * one item, the legacy API when configured or when the item is an SDK
 * profile in a text format (the push API takes pprof only). */
static int send_items(struct forwarder *f, struct item *const *items, size_t n, bool legacy,
		      int64_t deadline_ns, long *ret_status)
{
	const char *tenant = tenant_of(f, &items[0]->it);
	int r;

	if (legacy) {
		const struct item *c = items[0];

		r = build_legacy_url(f, c);
		dynbuf__reset(&f->body);
		if (r == 0)
			r = dynbuf__append(&f->body, c->it.payload, c->it.payload_len);
		if (r < 0) {
			set_err(f, "building a request: %s", strerror(-r));
			return r;
		}
		return http_post(f, f->url.data, legacy_content_type(f, c), tenant, deadline_ns,
				 ret_status);
	} else {
		const struct store_outbox_item *its[FORWARD_MAX_BATCH_ITEMS];

		for (size_t i = 0; i < n; i++)
			its[i] = &items[i]->it;
		r = forward__encode_push(its, n, &f->body);
		dynbuf__reset(&f->url);
		if (r == 0)
			r = dynbuf__printf(&f->url, "%s" PUSH_PATH, f->base);
		if (r < 0) {
			set_err(f, "encoding a push request: %s", strerror(-r));
			return r;
		}
		return http_post(f, f->url.data, "application/proto", tenant, deadline_ns,
				 ret_status);
	}
}

/* Whether a 5xx may be an item's doing: the server failed on what it was
 * given (Pyroscope answers 500 to a profile it can't decode), not for want
 * of a gateway, of capacity or of time (502, 503, 504). */
static bool item_5xx(long status)
{
	return status >= 500 && status != 502 && status != 503 && status != 504;
}

/* Whether the items of a request that failed so are better sent apart: one
 * of them failed before too (a one-off error keeps them together). */
static bool split_on_5xx(struct item *const *items, size_t n, long status)
{
	if (n < 2 || !item_5xx(status))
		return false;
	for (size_t i = 0; i < n; i++)
		if (items[i]->it.attempts >= FORWARD_SPLIT_AFTER)
			return true;
	return false;
}

static int deliver(struct forwarder *f, struct item *const *items, size_t n, bool legacy,
		   int64_t deadline_ns, enum step *ret_step);

/* Whether the upstream took or refused for good another item lately (within
 * FORWARD_JUDGED_WINDOW_MS or the longest backoff): it is up and judging
 * what it gets, so an item that keeps failing alone with a 5xx is that
 * item's doing. */
static bool upstream_judges(const struct forwarder *f)
{
	int64_t window_ms = f->o.backoff_max_ms > FORWARD_JUDGED_WINDOW_MS
				    ? (int64_t)f->o.backoff_max_ms
				    : FORWARD_JUDGED_WINDOW_MS;

	return f->last_judged_ns && now_ns() - f->last_judged_ns <= window_ms * 1000000;
}

static bool same_series(const struct item *a, const struct item *b)
{
	return strcmp(a->it.series, b->it.series) == 0 && same_str(a->it.tenant, b->it.tenant);
}

/* Sends items one by one, in order. One that fails alone with a 5xx that
 * may be its own doing waits for its retry while the others go on, but for
 * the later items of its series, which wait behind it; the pass ends after
 * them. A second such failure, or any other (no reply, 429, 502-504), ends
 * it at once. */
static int deliver_apart(struct forwarder *f, struct item *const *items, size_t n, bool legacy,
			 int64_t deadline_ns, enum step *ret_step)
{
	struct item *failed = NULL;
	int r = 0;

	f->pass->splits++;
	*ret_step = STEP_ON;
	for (size_t i = 0; i < n && r == 0 && *ret_step == STEP_ON; i++) {
		if (failed && same_series(items[i], failed))
			continue; /* due again once the failed one has gone */
		r = deliver(f, &items[i], 1, legacy, deadline_ns, ret_step);
		if (r < 0 || *ret_step == STEP_ON || atomic_load(&f->interrupted))
			continue;
		if (!failed && item_5xx(f->last_status)) {
			failed = items[i];
			*ret_step = STEP_ON;
		}
	}
	if (failed)
		*ret_step = STEP_STOP; /* the batch is done; the upstream's backoff holds */
	return r;
}

/* Delivers items in one request and records the outcome. A refused request
 * of several items is split, and so is one that failed again with a 5xx
 * that one item may cause; STEP_STOP when the upstream must be left alone
 * (a retry was scheduled). */
static int deliver(struct forwarder *f, struct item *const *items, size_t n, bool legacy,
		   int64_t deadline_ns, enum step *ret_step)
{
	char why[768], msg[512];
	long status;
	int r;

	*ret_step = STEP_ON;
	f->last_status = 0;
	r = send_items(f, items, n, legacy, deadline_ns, &status);
	if (r < 0)
		return r;
	f->last_status = status;
	if (atomic_load(&f->interrupted)) {
		*ret_step = STEP_STOP; /* stopping: not the upstream's failure */
		return 0;
	}
	switch (forward__outcome(status)) {
	case FORWARD_DELIVERED:
		return mark_delivered(f, items, n);
	case FORWARD_RETRY:
		f->pass->requests_failed++;
		if (status == 0) {
			f->pass->net_errors++;
			snprintf(why, sizeof(why), "no reply from %s: %s", f->base, f->curl_err);
		} else {
			if (status == 429)
				f->pass->status_429++;
			else if (status >= 500)
				f->pass->status_5xx++;
			else
				f->pass->status_4xx++;
			reply_message(&f->reply, msg, sizeof(msg));
			snprintf(why, sizeof(why), "HTTP %ld from %s: %s", status, f->base, msg);
		}
		if (split_on_5xx(items, n, status))
			/* one item may poison the rest: each alone, and only
			 * the ones that fail wait */
			return deliver_apart(f, items, n, legacy, deadline_ns, ret_step);
		if (n == 1 && item_5xx(status) && upstream_judges(f) &&
		    items[0]->it.attempts + 1 >= FORWARD_POISON_AFTER) {
			/* the upstream is up and judges others: this one it
			 * can't take, and it holds up its series */
			size_t len = strlen(why);

			snprintf(why + len, sizeof(why) - len,
				 " (failed %" PRId64 " times, the last alone while the upstream "
				 "answered for other profiles)",
				 items[0]->it.attempts + 1);
			return mark_dead(f, items[0], (int)status, why);
		}
		*ret_step = STEP_STOP;
		return schedule_retry(f, items, n, why);
	case FORWARD_REFUSED:
		break;
	}
	f->pass->requests_failed++;
	f->pass->status_4xx++;
	if (n > 1)
		/* find the one the upstream refuses; the others go */
		return deliver_apart(f, items, n, legacy, deadline_ns, ret_step);
	reply_message(&f->reply, msg, sizeof(msg));
	snprintf(why, sizeof(why), "HTTP %ld: %s", status, msg[0] ? msg : "(no message)");
	f->last_judged_ns = now_ns();
	return mark_dead(f, items[0], (int)status, why);
}

static void add_stats(struct forward_stats *t, const struct forward_stats *p)
{
	t->passes += p->passes;
	t->requests += p->requests;
	t->requests_failed += p->requests_failed;
	t->delivered += p->delivered;
	t->delivered_bytes += p->delivered_bytes;
	t->retries += p->retries;
	t->dead_letters += p->dead_letters;
	t->net_errors += p->net_errors;
	t->status_429 += p->status_429;
	t->status_4xx += p->status_4xx;
	t->status_5xx += p->status_5xx;
	t->splits += p->splits;
	t->labels_dropped += p->labels_dropped;
	if (p->last_delivered_ns)
		t->last_delivered_ns = p->last_delivered_ns;
	if (p->last_failed_ns)
		t->last_failed_ns = p->last_failed_ns;
	if (p->backoff_until_ns)
		t->backoff_until_ns = p->backoff_until_ns;
}

/* Delivers the batch read: pprof items together, text SDK profiles (and
 * everything, with the legacy API) one by one. */
static int deliver_batch(struct forwarder *f, int64_t deadline_ns, enum step *ret_step)
{
	struct item *group[FORWARD_MAX_BATCH_ITEMS];
	size_t n = 0;
	int r = 0;

	*ret_step = STEP_ON;
	for (size_t i = 0; i < f->n_batch && r == 0 && *ret_step == STEP_ON; i++) {
		struct item *c = &f->batch[i];
		size_t dropped = 0;
		struct label *l;
		size_t nl;

		if (!c->it.payload) {
			r = mark_dead(f, c, 0,
				      "nothing to send: the SDK profile it passes on was removed "
				      "(retention or room) before it could be sent");
			continue;
		}
		if (forward__labels(c->it.labels, c->it.n_labels, &f->arena, &l, &nl, &dropped) ==
		    0)
			f->pass->labels_dropped += (int64_t)dropped;
		if (f->o.api == FORWARD_API_INGEST || strcmp(c->format, "pprof") != 0)
			r = deliver(f, &c, 1, true, deadline_ns, ret_step);
		else
			group[n++] = c;
	}
	if (r == 0 && *ret_step == STEP_ON && n)
		r = deliver(f, group, n, false, deadline_ns, ret_step);
	return r;
}

int forward__run(struct forwarder *f, int64_t now, bool flush, int64_t deadline_ns,
		 struct forward_stats *ret)
{
	struct forward_stats pass = {.passes = 1};
	int r = 0;

	f->pass = &pass;
	if (flush) {
		atomic_store(&f->interrupted, false);
		atomic_store(&f->stopping, false);
	}
	if (!flush && now < f->total.backoff_until_ns)
		goto out; /* the upstream failed lately: leave it alone */
	for (;;) {
		enum step step;

		if ((deadline_ns && now_ns() >= deadline_ns) || atomic_load(&f->interrupted) ||
		    (!flush && atomic_load(&f->stopping)))
			break;
		r = read_batch(f, flush ? INT64_MAX : now);
		if (r < 0 || f->n_batch == 0)
			break;
		r = deliver_batch(f, deadline_ns, &step);
		if (r < 0 || step == STEP_STOP)
			break;
	}
out:
	arena__reset(&f->arena);
	f->n_batch = 0;
	add_stats(&f->total, &pass);
	f->pass = NULL;
	if (ret)
		*ret = pass;
	return r;
}
