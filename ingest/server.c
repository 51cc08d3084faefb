/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ingest server: libmicrohttpd daemons (one per listen address, each
 * with a pool of threads on epoll, so a slow client only ever holds a socket,
 * never a thread; the addresses are listen.c's), request bodies gathered
 * under a cap, the decoders (legacy.c, push.c), the attribution of a push to
 * a host process (attribute.c), the commit to the store, and the reply.
 * Nothing is answered 200 before the store committed.
 */
#define _GNU_SOURCE
#include "ingest/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONN_MEMORY_LIMIT (128u << 10) /* per connection: the request line and headers */
#define POST_BUFFER	  (64u << 10)  /* the multipart parser's line buffer */
#define MAX_TENANT	  150	       /* Pyroscope's limit on a tenant id */
#define MAX_CREDENTIAL	  1024
#define STOP_GRACE_MS	  5000

/* ---- metrics --------------------------------------------------------------- */

static const char *const endpoint_paths[INGEST_EP_COUNT] = {
	"/ingest",
	"/pyroscope/ingest",
	"/push.v1.PusherService/Push",
	"/ready",
	"/metrics",
	"/",
	"/report",
	"other",
};

static const int tracked_status[N_STATUS - 1] = {200, 400, 401, 404, 405, 413,
						 415, 422, 429, 500, 503};

static const char *const decode_reason_names[INGEST_DR_COUNT] = {
	"invalid",     "too_large", "content_type", "unsupported_format",
	"undecodable", "gzip",	    "multipart",
};

static const double latency_buckets[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						  0.05,	  0.1,	 0.25,	 0.5,	1,    2.5};

static size_t status_index(int status)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tracked_status); i++)
		if (tracked_status[i] == status)
			return i;
	return N_STATUS - 1;
}

struct request {
	enum ingest_endpoint ep;
	struct timespec start;
	bool counted_body;
	int early_status; /* a reply decided before the body was read (0: none) */
	char early_msg[256];
	struct dynbuf body;
	bool body_too_large;
	/* multipart fields */
	struct dynbuf mp_profile, mp_config, mp_labels;
	bool mp_has_profile, mp_has_config, mp_prev_profile, mp_has_labels;
	bool mp_jfr; /* format=jfr: the fields are `jfr` and `labels` */
	bool mp_too_large;
};

static void request_free(struct request *r)
{
	if (!r)
		return;
	dynbuf__free(&r->body);
	dynbuf__free(&r->mp_profile);
	dynbuf__free(&r->mp_config);
	dynbuf__free(&r->mp_labels);
	free(r);
}

/* ---- store pool ---------------------------------------------------------------- */

/* Takes an idle store connection or opens one; -errno with a message. */
static int pool_take(struct ingest *in, struct errbuf *err, struct store **ret)
{
	struct store *s = NULL;
	int r;

	pthread_mutex_lock(&in->pool_lock);
	if (in->n_pool)
		s = in->pool[--in->n_pool];
	pthread_mutex_unlock(&in->pool_lock);
	if (s) {
		*ret = s;
		return 0;
	}
	r = store__open(&in->opts.store, err, &s);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

/* Returns a connection to the pool; a connection whose last call failed with
 * an I/O error is closed instead, so the next request opens a fresh one. */
static void pool_give(struct ingest *in, struct store *s, bool broken)
{
	if (!s)
		return;
	if (!broken) {
		pthread_mutex_lock(&in->pool_lock);
		if (in->n_pool < in->pool_cap) {
			in->pool[in->n_pool++] = s;
			s = NULL;
		}
		pthread_mutex_unlock(&in->pool_lock);
	}
	store__close(s);
}

/* ---- replies ---------------------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *c, int status, const char *ctype,
			     const void *body, size_t len, const char *hname, const char *hvalue)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (hname)
		MHD_add_response_header(resp, hname, hvalue);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void count_request(struct ingest *in, struct request *rq, int status)
{
	ctr_add(&in->m.requests[rq->ep][status_index(status)], 1);
	if (rq->ep <= INGEST_EP_PUSH) {
		struct timespec now;
		double secs;
		size_t b = 0;

		clock_gettime(CLOCK_MONOTONIC, &now);
		secs = (double)(now.tv_sec - rq->start.tv_sec) +
		       (double)(now.tv_nsec - rq->start.tv_nsec) / 1e9;
		while (b < N_BUCKETS && secs > latency_buckets[b])
			b++;
		ctr_add(&in->m.latency[b], 1);
		ctr_add(&in->m.latency_sum_us, (uint64_t)(secs * 1e6));
		ctr_add(&in->m.latency_count, 1);
	}
}

/* A JSON error {"code","message"}, as Pyroscope and Connect give them. */
static enum MHD_Result reply_error(struct ingest *in, struct MHD_Connection *c, struct request *rq,
				   int status, const char *msg)
{
	struct dynbuf b;
	enum MHD_Result ret = MHD_NO;
	const char *hname = NULL;
	char hvalue[32] = "";

	dynbuf__init(&b, 64 << 10);
	if (dynbuf__printf(&b, "{\"code\":\"%s\",\"message\":", ingest__error_code(status)) < 0 ||
	    dynbuf__json_str(&b, msg) < 0 || dynbuf__printf(&b, "}\n") < 0)
		goto cleanup;
	if (status == 429) {
		hname = "Retry-After";
		snprintf(hvalue, sizeof(hvalue), "%u", in->opts.retry_after_s);
	} else if (status == 405) {
		hname = "Allow";
		snprintf(hvalue, sizeof(hvalue), "%s",
			 rq->ep > INGEST_EP_PUSH ? "GET, HEAD" : "POST");
	} else if (status == 401) {
		hname = "WWW-Authenticate";
		snprintf(hvalue, sizeof(hvalue), "%s",
			 in->auth_token ? "Bearer realm=\"braid\"" : "Basic realm=\"braid\"");
	}
	if (status == 503 && atomic_load(&in->m.stopping)) {
		hname = "Connection";
		snprintf(hvalue, sizeof(hvalue), "close");
	}
	ret = queue(c, status, "application/json", b.data, b.len, hname, hvalue);
	count_request(in, rq, status);
cleanup:
	dynbuf__free(&b);
	return ret;
}

/* ---- storing ------------------------------------------------------------------------------ */

/* Attributes and commits every profile of one request in one transaction:
 * all of them or none. */
static int store_profiles(struct ingest *in, struct conn_ctx *cc, struct ingest_profile *ps,
			  size_t n, const char *tenant, struct errbuf *err)
{
	struct store *s = NULL;
	int64_t now = store__now_ns();
	enum store_attribution how[INGEST_MAX_SAMPLES];

	bool began = false;
	int r;

	if (n > UTIL_ARRAY_SIZE(how))
		return errbuf__set(err, -E2BIG, "too many profiles in one request");
	r = pool_take(in, err, &s);
	if (r < 0)
		return r;
	r = store__begin(s);
	if (r < 0)
		goto store_error;
	began = true;
	for (size_t i = 0; i < n; i++) {
		struct ingest_profile *p = &ps[i];
		struct collector_proc proc = {0};
		bool owned = false;
		int64_t process_id = 0;

		r = 0;
		how[i] = ingest__attribute(in, cc, p, now, &proc, &owned);
		if (how[i] != STORE_ATTR_NONE) {
			struct store_process sp = {
				.pid = proc.pid,
				.start_time_ns = proc.start_time_ns,
				.comm = proc.comm[0] ? proc.comm : NULL,
				.exe = proc.exe,
				.cmdline = proc.cmdline,
				/* the process's own declaration, else what it pushes as */
				.service = proc.service ? proc.service : p->sdk.service,
				.container_id = proc.container_id,
				.runtime = proc.runtime,
			};

			r = store__put_process(s, &sp, now, &process_id);
		}
		if (owned)
			collector__proc_release(&proc);
		if (r < 0)
			goto store_error;
		p->sdk.received_ns = now;
		p->sdk.tenant = tenant;
		p->sdk.process_id = process_id;
		p->sdk.attribution = how[i];
		r = store__put_sdk_profile(s, &p->sdk, NULL);
		if (r < 0)
			goto store_error;
	}
	r = store__commit(s);
	if (r < 0)
		goto store_error;
	began = false;
	for (size_t i = 0; i < n; i++)
		ctr_add(&in->m.attribution[how[i]], 1);
	ctr_add(&in->m.profiles_stored, n);
	pool_give(in, s, false);
	return 0;

store_error:
	errbuf__set(err, r, "%s", store__errmsg(s));
	if (began)
		store__rollback(s);
	if (r == -ENOSPC)
		ctr_add(&in->m.store_full, 1);
	else if (r == -EBUSY || r == -EIO)
		ctr_add(&in->m.store_unavailable, 1);
	else
		ctr_add(&in->m.store_errors, 1);
	pool_give(in, s, r == -EIO);
	return r;
}

/* ---- request handling ------------------------------------------------------------------------ */

static enum ingest_endpoint endpoint_of(const char *url)
{
	for (int e = 0; e < INGEST_EP_OTHER; e++)
		if (strcmp(url, endpoint_paths[e]) == 0)
			return (enum ingest_endpoint)e;
	return INGEST_EP_OTHER;
}

/* Constant-time comparison: a token is not guessed byte by byte. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static bool authorized(struct ingest *in, struct MHD_Connection *c)
{
	const char *h;
	bool ok = false;

	if (!in->auth_token && !in->basic_user)
		return true;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h)
		return false;
	if (in->auth_token && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		ok = same_secret(h, in->auth_token);
	}
	if (!ok && in->basic_user) {
		char *pass = NULL;
		char *user = MHD_basic_auth_get_username_password(c, &pass);

		if (user && pass) {
			/* both compared, whatever the first gives */
			bool user_ok = same_secret(user, in->basic_user);
			bool pass_ok = same_secret(pass, in->basic_pass);

			ok = user_ok && pass_ok;
		}
		if (user)
			MHD_free(user);
		if (pass)
			MHD_free(pass);
	}
	return ok;
}

/* Collects the multipart fields braid reads; refuses none (decode decides). */
static enum MHD_Result multipart_field(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *filename, const char *content_type,
				       const char *transfer_encoding, const char *data,
				       uint64_t off, size_t size)
{
	struct request *rq = cls;
	struct dynbuf *b = NULL;

	if (!key)
		return MHD_YES;
	if (rq->mp_jfr) {
		if (strcmp(key, "jfr") == 0) {
			b = &rq->mp_profile;
			rq->mp_has_profile = true;
		} else if (strcmp(key, "labels") == 0) {
			b = &rq->mp_labels;
			rq->mp_has_labels = true;
		}
	} else if (strcmp(key, "profile") == 0) {
		b = &rq->mp_profile;
		rq->mp_has_profile = true;
	} else if (strcmp(key, "sample_type_config") == 0) {
		b = &rq->mp_config;
		rq->mp_has_config = true;
	} else if (strcmp(key, "prev_profile") == 0) {
		rq->mp_prev_profile = true;
	}
	if (b && size && dynbuf__append(b, data, size) < 0) {
		rq->mp_too_large = true;
		return MHD_NO;
	}
	return MHD_YES;
}

static bool is_multipart(const char *ctype)
{
	return ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0;
}

static enum ingest_decode_reason reason_of(int r)
{
	switch (r) {
	case -EINVAL:
		return INGEST_DR_INVALID;
	case -EFBIG:
	case -E2BIG:
		return INGEST_DR_TOO_LARGE;
	case -EPROTONOSUPPORT:
		return INGEST_DR_CONTENT_TYPE;
	case -ENOTSUP:
		return INGEST_DR_UNSUPPORTED;
	default:
		return INGEST_DR_UNDECODABLE;
	}
}

/* A tenant id as Pyroscope accepts them: at most 150 bytes of
 * [A-Za-z0-9!-_.*'()]. */
static bool valid_tenant(const char *t)
{
	size_t n = strlen(t);

	if (!n || n > MAX_TENANT || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'("
			    ")",
			    t[i]))
			return false;
	return true;
}

/* Everything after the body arrived: inflate, decode, attribute, store,
 * reply. */
static enum MHD_Result handle_ingest(struct ingest *in, struct MHD_Connection *c,
				     struct request *rq)
{
	struct errbuf err = {{0}};
	struct arena arena = {0};
	struct dynbuf inflated;
	struct ingest_profile *profiles = NULL, one;
	size_t n = 0;
	const char *ctype, *cenc, *tenant;
	const void *data = rq->body.data;
	size_t len = rq->body.len;
	int64_t now = store__now_ns();
	struct conn_ctx *cc = NULL;
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result ret;
	int r, status;

	dynbuf__init(&inflated, 0);
	arena.limit = (size_t)1 << 30;
	if (!data)
		data = "";
	ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	cenc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
	tenant = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Scope-OrgID");
	if (tenant && !valid_tenant(tenant)) {
		r = errbuf__set(&err, -EINVAL,
				"X-Scope-OrgID is not a valid tenant id (at most %d bytes of "
				"letters, digits and !-_.*'())",
				MAX_TENANT);
		goto decode_error;
	}
	if (cenc && *cenc && strcasecmp(cenc, "identity") != 0) {
		if (strcasecmp(cenc, "gzip") != 0) {
			r = errbuf__set(&err, -EPROTONOSUPPORT,
					"unsupported Content-Encoding '%.64s' (braid takes gzip)",
					cenc);
			goto decode_error;
		}
		r = util__gunzip(data, len, in->limits.max_decompressed, &err, &inflated);
		if (r < 0) {
			if (r == -EBADMSG)
				ctr_add(&in->m.decode_errors[INGEST_DR_GZIP], 1);
			else
				ctr_add(&in->m.decode_errors[reason_of(r)], 1);
			status = ingest__http_status(r);
			ret = reply_error(in, c, rq, status, err.msg);
			goto cleanup;
		}
		data = inflated.data;
		len = inflated.len;
	}

	if (rq->ep == INGEST_EP_PUSH) {
		r = ingest__decode_push(ctype, data, len, now, &in->limits, &arena, &err, &profiles,
					&n);
		if (r < 0)
			goto decode_error;
	} else {
		struct ingest_query q = {
			.name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name"),
			.from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from"),
			.until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until"),
			.format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format"),
			.sample_rate =
				MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sampleRate"),
			.spy_name =
				MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "spyName"),
			.units = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "units"),
			.aggregation = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
								   "aggregationType"),
		};
		struct ingest_body b = {.content_type = ctype, .data = data, .len = len};
		const char *fmt = q.format;
		bool known_format = fmt && *fmt;

		/* Pyroscope looks at multipart only when no format says otherwise
		 * (the Java agent's jfr is a form too) */
		if (is_multipart(ctype) &&
		    (!known_format || strcmp(fmt, "pprof") == 0 || strcmp(fmt, "jfr") == 0)) {
			struct MHD_PostProcessor *pp;
			enum MHD_Result ok;

			rq->mp_jfr = known_format && strcmp(fmt, "jfr") == 0;
			dynbuf__init(&rq->mp_profile, in->opts.max_body);
			dynbuf__init(&rq->mp_config, INGEST_MAX_SAMPLE_TYPE_CONFIG);
			dynbuf__init(&rq->mp_labels, INGEST_MAX_JFR_LABELS);
			pp = MHD_create_post_processor(c, POST_BUFFER, multipart_field, rq);
			if (!pp) {
				r = errbuf__set(&err, -EBADMSG,
						"malformed multipart body: the Content-Type has no "
						"boundary");
				ctr_add(&in->m.decode_errors[INGEST_DR_MULTIPART], 1);
				ret = reply_error(in, c, rq, 422, err.msg);
				goto cleanup;
			}
			ok = MHD_post_process(pp, data, len);
			if (MHD_destroy_post_processor(pp) != MHD_YES)
				ok = MHD_NO;
			if (rq->mp_too_large) {
				r = errbuf__set(
					&err, -EFBIG,
					"a multipart field is over its cap (profile and jfr: "
					"%zu bytes, sample_type_config: %u bytes, labels: %u "
					"bytes)",
					in->opts.max_body, INGEST_MAX_SAMPLE_TYPE_CONFIG,
					INGEST_MAX_JFR_LABELS);
				goto decode_error;
			}
			if (ok != MHD_YES) {
				errbuf__set(&err, -EBADMSG,
					    "malformed multipart body (it does not parse as "
					    "multipart/form-data)");
				ctr_add(&in->m.decode_errors[INGEST_DR_MULTIPART], 1);
				ret = reply_error(in, c, rq, 422, err.msg);
				goto cleanup;
			}
			b.multipart = true;
			b.data = rq->mp_has_profile
					 ? (rq->mp_profile.data ? rq->mp_profile.data : "")
					 : NULL;
			b.len = rq->mp_profile.len;
			if (rq->mp_has_config) {
				b.sample_type_config = rq->mp_config.data ? rq->mp_config.data : "";
				b.sample_type_config_len = rq->mp_config.len;
			}
			b.prev_profile = rq->mp_prev_profile;
			if (rq->mp_has_labels) {
				b.jfr_labels = rq->mp_labels.data ? rq->mp_labels.data : "";
				b.jfr_labels_len = rq->mp_labels.len;
			}
		}
		r = ingest__decode_legacy(&q, &b, now, &in->limits, &arena, &err, &one);
		if (r < 0)
			goto decode_error;
		profiles = &one;
		n = 1;
	}

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	cc = ci ? ci->socket_context : NULL;
	if (cc && !cc->resolved)
		ingest__resolve_peer(in, c, cc);
	if (!cc) {
		static struct conn_ctx none = {.resolved = true};

		cc = &none;
	}
	r = n ? store_profiles(in, cc, profiles, n, tenant, &err) : 0;
	if (r < 0) {
		struct errbuf why = err;

		status = ingest__http_status(r);
		if (status == 429 && strstr(why.msg, "filesystem"))
			errbuf__set(&err, r,
				    "%s; braid keeps what it stored and takes profiles again once "
				    "space is freed there",
				    why.msg);
		else if (status == 429)
			errbuf__set(&err, r,
				    "%s; braid keeps what it stored and takes profiles again once "
				    "the forwarder has made room",
				    why.msg);
		else if (status == 503)
			errbuf__set(&err, r, "store unavailable: %s", why.msg);
		ret = reply_error(in, c, rq, status, err.msg);
		goto cleanup;
	}
	if (rq->ep == INGEST_EP_PUSH) {
		bool json = ctype && strncasecmp(ctype, "application/json", 16) == 0;

		ret = json ? queue(c, 200, "application/json", "{}", 2, NULL, NULL)
			   : queue(c, 200, "application/proto", "", 0, NULL, NULL);
	} else {
		ret = queue(c, 200, NULL, "", 0, NULL, NULL);
	}
	count_request(in, rq, 200);
	goto cleanup;

decode_error:
	ctr_add(&in->m.decode_errors[reason_of(r)], 1);
	ret = reply_error(in, c, rq, ingest__http_status(r), err.msg);
cleanup:
	dynbuf__free(&inflated);
	arena__free(&arena);
	return ret;
}

static enum MHD_Result handle_ready(struct ingest *in, struct MHD_Connection *c, struct request *rq)
{
	struct errbuf err = {{0}};
	struct store *s = NULL;
	int r = pool_take(in, &err, &s);

	if (r < 0)
		return reply_error(in, c, rq, 503, err.msg);
	pool_give(in, s, false);
	count_request(in, rq, 200);
	return queue(c, 200, "text/plain; charset=utf-8", "ready\n", 6, NULL, NULL);
}

static enum MHD_Result handle_metrics(struct ingest *in, struct MHD_Connection *c,
				      struct request *rq)
{
	struct store_stats st;
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct dynbuf b;
	enum MHD_Result ret;
	bool have_st = false;
	int r;

	/* the store's size and what it refused or dropped, when it answers */
	if (pool_take(in, &err, &s) == 0) {
		r = store__row_stats(s, &st);
		pool_give(in, s, r == -EIO);
		have_st = r == 0;
	}
	dynbuf__init(&b, 16u << 20);
	/* count this scrape first, so that it shows in its own output */
	count_request(in, rq, 200);
	if (in->opts.metrics(in->opts.metrics_ctx, in, have_st ? &st : NULL, &b) < 0) {
		dynbuf__free(&b);
		return reply_error(in, c, rq, 500, "cannot render the metrics");
	}
	ret = queue(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL, NULL);
	dynbuf__free(&b);
	return ret;
}

static enum MHD_Result handle_page(struct ingest *in, struct MHD_Connection *c, struct request *rq)
{
	struct ingest_page pg = {
		.path = endpoint_paths[rq->ep],
		.service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service"),
		.pid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pid"),
		.from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from"),
		.until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until"),
		.format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format"),
	};
	const char *type = "text/plain; charset=utf-8";
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct dynbuf b;
	enum MHD_Result ret;
	int status, r;

	r = pool_take(in, &err, &s);
	if (r < 0)
		return reply_error(in, c, rq, 503, err.msg);
	dynbuf__init(&b, 256u << 20);
	status = in->opts.page(in->opts.page_ctx, s, &pg, &b, &type);
	pool_give(in, s, status >= 500);
	count_request(in, rq, status);
	ret = queue(c, status, type, b.data ? b.data : "", b.len, NULL, NULL);
	dynbuf__free(&b);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct ingest *in = cls;
	struct request *rq = *req_cls;

	if (!rq) {
		const char *cl;
		bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
		bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
			   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		atomic_fetch_add(&in->m.requests_in_flight, 1);
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		rq->ep = endpoint_of(url);
		if (((rq->ep == INGEST_EP_INDEX || rq->ep == INGEST_EP_REPORT) && !in->opts.page) ||
		    (rq->ep == INGEST_EP_METRICS && !in->opts.metrics))
			rq->ep = INGEST_EP_OTHER;
		dynbuf__init(&rq->body, in->opts.max_body);
		if (atomic_load(&in->m.stopping)) {
			/* A request that arrives on a kept-alive connection after
			 * SIGTERM is refused before anything is committed, so that
			 * the requests in progress drain: the SDK sends it again
			 * to the next server. */
			rq->early_status = 503;
			snprintf(rq->early_msg, sizeof(rq->early_msg),
				 "braid is shutting down; send this again in a moment");
		} else if (rq->ep == INGEST_EP_OTHER) {
			rq->early_status = 404;
			snprintf(rq->early_msg, sizeof(rq->early_msg),
				 "no such endpoint: %.128s (braid serves /ingest, "
				 "/pyroscope/ingest, /push.v1.PusherService/Push, /ready%s%s)",
				 url, in->opts.metrics ? ", /metrics" : "",
				 in->opts.page ? ", / and /report" : "");
		} else if (rq->ep <= INGEST_EP_PUSH ? !post : !get) {
			rq->early_status = 405;
			snprintf(rq->early_msg, sizeof(rq->early_msg),
				 "%.16s is not allowed on %s (use %s)", method,
				 endpoint_paths[rq->ep], rq->ep <= INGEST_EP_PUSH ? "POST" : "GET");
		} else if ((rq->ep <= INGEST_EP_PUSH || rq->ep == INGEST_EP_INDEX ||
			    rq->ep == INGEST_EP_REPORT) &&
			   !authorized(in, c)) {
			ctr_add(&in->m.auth_failures, 1);
			rq->early_status = 401;
			snprintf(rq->early_msg, sizeof(rq->early_msg),
				 "missing or wrong credentials (this braid needs %s)",
				 in->auth_token && in->basic_user ? "a bearer token or basic auth"
				 : in->auth_token		  ? "a bearer token"
								  : "basic auth");
		} else if (rq->ep <= INGEST_EP_PUSH &&
			   (cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH)) &&
			   strtoull(cl, NULL, 10) > in->opts.max_body) {
			rq->early_status = 413;
			ctr_add(&in->m.decode_errors[INGEST_DR_TOO_LARGE], 1);
			snprintf(rq->early_msg, sizeof(rq->early_msg),
				 "request body of %.24s bytes is over the limit of %zu bytes", cl,
				 in->opts.max_body);
		}
		/* An early reply is sent now: MHD then closes the connection
		 * instead of reading a body nobody wants. */
		if (rq->early_status)
			return reply_error(in, c, rq, rq->early_status, rq->early_msg);
		return MHD_YES;
	}
	if (rq->early_status) {
		/* The reply went out on the first call. libmicrohttpd may still
		 * read the body and call again: nothing of this request is
		 * processed (a refused push must never be committed). */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (!rq->counted_body)
			rq->counted_body = true;
		ctr_add(&in->m.bytes_in[rq->ep], n);
		if (!rq->body_too_large && dynbuf__append(&rq->body, upload_data, n) < 0)
			rq->body_too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->body_too_large) {
		char msg[128];

		ctr_add(&in->m.decode_errors[INGEST_DR_TOO_LARGE], 1);
		snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes",
			 in->opts.max_body);
		return reply_error(in, c, rq, 413, msg);
	}
	switch (rq->ep) {
	case INGEST_EP_READY:
		return handle_ready(in, c, rq);
	case INGEST_EP_METRICS:
		return handle_metrics(in, c, rq);
	case INGEST_EP_INDEX:
	case INGEST_EP_REPORT:
		return handle_page(in, c, rq);
	default:
		return handle_ingest(in, c, rq);
	}
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ingest *in = cls;

	if (*req_cls)
		atomic_fetch_sub(&in->m.requests_in_flight, 1);
	request_free(*req_cls);
	*req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct ingest *in = cls;
	struct conn_ctx *cc = *socket_ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ctr_add(&in->m.connections_total, 1);
		atomic_fetch_add_explicit(&in->m.connections_open, 1, memory_order_relaxed);
		*socket_ctx = calloc(1, sizeof(struct conn_ctx));
		return;
	}
	atomic_fetch_sub_explicit(&in->m.connections_open, 1, memory_order_relaxed);
	if (cc) {
		collector__proc_release(&cc->proc);
		free(cc);
	}
	*socket_ctx = NULL;
}

/* ---- the counters -----------------------------------------------------------------------------
 */

const char *ingest__endpoint_name(enum ingest_endpoint e)
{
	return e < INGEST_EP_COUNT ? endpoint_paths[e] : "other";
}

const char *ingest__decode_reason_name(enum ingest_decode_reason d)
{
	return d < INGEST_DR_COUNT ? decode_reason_names[d] : "";
}

int ingest__counted_status(size_t i)
{
	return i < N_STATUS - 1 ? tracked_status[i] : 0;
}

double ingest__duration_bucket(size_t i)
{
	return i < N_BUCKETS ? latency_buckets[i] : 0;
}

void ingest__counters(struct ingest *in, struct ingest_counters *ret)
{
	struct metrics *m = &in->m;

	*ret = (struct ingest_counters){0};
	for (int e = 0; e < INGEST_EP_COUNT; e++) {
		for (size_t i = 0; i < N_STATUS; i++)
			ret->requests[e][i] = ctr_get(&m->requests[e][i]);
		ret->bytes_in[e] = ctr_get(&m->bytes_in[e]);
	}
	for (int d = 0; d < INGEST_DR_COUNT; d++)
		ret->decode_errors[d] = ctr_get(&m->decode_errors[d]);
	ret->profiles_stored = ctr_get(&m->profiles_stored);
	for (int a = 0; a < STORE_ATTR_COUNT; a++)
		ret->attribution[a] = ctr_get(&m->attribution[a]);
	ret->pid_label_conflicts = ctr_get(&m->pid_label_conflicts);
	ret->service_ambiguous = ctr_get(&m->service_ambiguous);
	ret->store_full = ctr_get(&m->store_full);
	ret->store_unavailable = ctr_get(&m->store_unavailable);
	ret->store_errors = ctr_get(&m->store_errors);
	ret->auth_failures = ctr_get(&m->auth_failures);
	ret->connections_total = ctr_get(&m->connections_total);
	ret->connections_open = atomic_load(&m->connections_open);
	for (size_t i = 0; i <= N_BUCKETS; i++)
		ret->duration[i] = ctr_get(&m->latency[i]);
	ret->duration_sum_us = ctr_get(&m->latency_sum_us);
	ret->duration_count = ctr_get(&m->latency_count);
}

/* ---- start and stop ----------------------------------------------------------------------------
 */

static int split_basic(struct ingest *in, const char *spec, struct errbuf *err)
{
	const char *colon = strchr(spec, ':');

	if (!colon || colon == spec || !colon[1])
		return errbuf__set(err, -EINVAL,
				   "basic auth must be USER:PASSWORD, both non-empty");
	if (strlen(spec) > MAX_CREDENTIAL)
		return errbuf__set(err, -EINVAL, "basic auth is longer than %d bytes",
				   MAX_CREDENTIAL);
	in->basic_user = strndup(spec, (size_t)(colon - spec));
	in->basic_pass = strdup(colon + 1);
	if (!in->basic_user || !in->basic_pass)
		return errbuf__set(err, -ENOMEM, "out of memory");
	return 0;
}

int ingest__start(const struct ingest_options *opts, struct errbuf *err, struct ingest **ret)
{
	static const char *const default_listen[] = {INGEST_DEFAULT_LISTEN};
	const char *const *listen = opts->listen;
	size_t n_listen = opts->n_listen;
	struct ingest *in = NULL;
	long ncpu;
	int r;

	in = calloc(1, sizeof(*in));
	if (!in)
		return errbuf__set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&in->pool_lock, NULL);
	pthread_mutex_init(&in->cache_lock, NULL);
	for (size_t i = 0; i < INGEST_MAX_LISTEN; i++)
		in->listeners[i].fd = -1;
	in->opts = *opts;
	in->opts.listen = NULL;
	in->opts.n_listen = 0;
	if (!listen || !n_listen) {
		listen = default_listen;
		n_listen = 1;
	}
	if (n_listen > INGEST_MAX_LISTEN) {
		r = errbuf__set(err, -EINVAL, "at most %d listen addresses", INGEST_MAX_LISTEN);
		goto cleanup;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!in->opts.threads)
		in->opts.threads = ncpu > 2 ? (unsigned)ncpu : 2;
	if (!in->opts.max_connections)
		in->opts.max_connections = INGEST_DEFAULT_MAX_CONNECTIONS;
	if (!in->opts.timeout_s)
		in->opts.timeout_s = INGEST_DEFAULT_TIMEOUT_S;
	if (!in->opts.max_body)
		in->opts.max_body = INGEST_DEFAULT_MAX_BODY;
	if (!in->opts.retry_after_s)
		in->opts.retry_after_s = INGEST_DEFAULT_RETRY_AFTER_S;
	ingest_limits__default(&in->limits);
	if (opts->limits.max_decompressed)
		in->limits = opts->limits;
	in->proc_root = strdup(opts->proc_root ? opts->proc_root : COLLECTOR_PROC_ROOT);
	if (!in->proc_root) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	in->opts.proc_root = in->proc_root;
	in->opts.auth_token = NULL;
	in->opts.basic_auth = NULL;
	if (opts->auth_token && *opts->auth_token) {
		if (strlen(opts->auth_token) > MAX_CREDENTIAL) {
			r = errbuf__set(err, -EINVAL, "the auth token is longer than %d bytes",
					MAX_CREDENTIAL);
			goto cleanup;
		}
		in->auth_token = strdup(opts->auth_token);
		if (!in->auth_token) {
			r = errbuf__set(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	if (opts->basic_auth && *opts->basic_auth) {
		r = split_basic(in, opts->basic_auth, err);
		if (r < 0)
			goto cleanup;
	}
	/* one idle store connection per request thread of every daemon */
	in->pool_cap = (size_t)in->opts.threads * n_listen + 2;
	in->pool = calloc(in->pool_cap, sizeof(*in->pool));
	if (!in->pool) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	{
		/* Open the store once now: a store that does not open is an error
		 * at start, not a 503 on every push. */
		struct store *s = NULL;

		r = pool_take(in, err, &s);
		if (r < 0)
			goto cleanup;
		pool_give(in, s, false);
	}
	for (size_t i = 0; i < n_listen; i++) {
		r = ingest__open_listener(listen[i], in->auth_token || in->basic_user,
					  &in->listeners[i], err);
		if (r < 0)
			goto cleanup;
		in->n_listeners++;
	}
	for (size_t i = 0; i < in->n_listeners; i++) {
		struct listener *l = &in->listeners[i];

		l->daemon = MHD_start_daemon(
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL,
			NULL, on_request, in, MHD_OPTION_LISTEN_SOCKET, l->fd,
			MHD_OPTION_THREAD_POOL_SIZE, in->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
			in->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, in->opts.timeout_s,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
			MHD_OPTION_NOTIFY_COMPLETED, on_completed, in, MHD_OPTION_NOTIFY_CONNECTION,
			on_connection, in, MHD_OPTION_END);
		if (!l->daemon) {
			r = errbuf__set(err, -EIO,
					"cannot start the HTTP server on %s (libmicrohttpd refused "
					"its options)",
					l->address);
			goto cleanup;
		}
		l->fd = -1; /* the daemon's now, until it is quiesced */
	}
	*ret = in;
	return 0;
cleanup:
	ingest__stop(in);
	return r;
}

void ingest__stop(struct ingest *in)
{
	if (!in)
		return;
	/* Stop accepting on every address and refuse new requests on open
	 * connections (503, Connection: close), then give the requests in
	 * progress up to STOP_GRACE_MS to be answered (a store commit that is
	 * not answered makes the SDK send the profile again), then close. A
	 * quiesced daemon hands its listening socket back; it is closed after
	 * the daemon stopped, as libmicrohttpd asks. */
	atomic_store(&in->m.stopping, true);
	for (size_t i = 0; i < INGEST_MAX_LISTEN; i++) {
		struct listener *l = &in->listeners[i];

		if (l->daemon) {
			MHD_socket fd = MHD_quiesce_daemon(l->daemon);

			if (fd != MHD_INVALID_SOCKET)
				l->fd = fd;
		}
	}
	for (int waited = 0; waited < STOP_GRACE_MS && atomic_load(&in->m.requests_in_flight) > 0;
	     waited += 10) {
		struct timespec ts = {0, 10 * 1000000};

		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < INGEST_MAX_LISTEN; i++) {
		struct listener *l = &in->listeners[i];

		if (l->daemon)
			MHD_stop_daemon(l->daemon);
		if (l->fd >= 0)
			close(l->fd);
		if (l->unix_path[0])
			unlink(l->unix_path);
	}
	for (size_t i = 0; i < in->n_pool; i++)
		store__close(in->pool[i]);
	free(in->pool);
	for (size_t i = 0; i < in->n_services; i++)
		free(in->services[i].service);
	pthread_mutex_destroy(&in->pool_lock);
	pthread_mutex_destroy(&in->cache_lock);
	free(in->proc_root);
	free(in->auth_token);
	free(in->basic_user);
	free(in->basic_pass);
	free(in);
}

const char *ingest__address(const struct ingest *in, size_t i)
{
	return in && i < in->n_listeners ? in->listeners[i].address : NULL;
}
