/* SPDX-License-Identifier: Apache-2.0 */
/* forward/: the wire (labels, the push request as protobuf-c reads it back,
 * the legacy name), what a reply means (status, Retry-After, backoff), and
 * delivery from a real store to a scripted HTTP server on loopback
 * (libmicrohttpd): batches, tenants, credentials, retries with their
 * schedule, a refused batch split down to the one bad item, the legacy API,
 * an upstream that is not there, and the flush at stop. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "forward/forward.h"
#include "push.pb-c.h"

#define NS 1000000000ll

/* ---- pure parts ---------------------------------------------------------------- */

static const char *label_value(const struct label *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0)
			return l[i].value;
	return NULL;
}

static void test_labels(void **state)
{
	struct label in[] = {
		{"region", "eu-1"},	     {"otel.scope.name", "nodejs"},
		{"bad-name/x", "v"},	     {"9lives", "cat"},
		{"__session_id__", "s"},     {"service_name", "checkout"},
		{"region", "us-2"}, /* a repeat: the first wins */
		{"__name__", "process_cpu"}, {"", "empty"},
	};
	struct label many[40], *out;
	char names[40][16], *long_value;
	struct arena a = {0};
	size_t n, dropped;

	(void)state;
	assert_int_equal(forward__labels(in, 9, &a, &out, &n, &dropped), 0);
	/* the kind and the service first, then the rest in order */
	assert_int_equal(n, 8);
	assert_int_equal(dropped, 1);
	assert_string_equal(out[0].name, "__name__");
	assert_string_equal(out[1].name, "service_name");
	assert_string_equal(out[2].name, "region");
	assert_string_equal(out[2].value, "eu-1");
	assert_string_equal(out[3].name, "otel.scope.name");
	assert_string_equal(out[4].name, "bad_name_x");
	assert_string_equal(out[5].name, "_9lives");
	/* the one __ label Pyroscope keeps */
	assert_string_equal(label_value(out, n, "__session_id__"), "s");
	assert_string_equal(out[6].name, "__session_id__");
	assert_string_equal(out[7].name, "_");

	/* at most 30: the view survives however many tags come before it */
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "tag%02d", i);
		many[i] = (struct label){names[i], "x"};
	}
	many[35] = (struct label){"braid_view", "merged"};
	many[36] = (struct label){"service_name", "svc"};
	many[37] = (struct label){"__name__", "process_cpu"};
	long_value = malloc(5000);
	assert_non_null(long_value);
	memset(long_value, 'v', 4999);
	long_value[4999] = '\0';
	many[0].value = long_value;
	assert_int_equal(forward__labels(many, 40, &a, &out, &n, &dropped), 0);
	assert_int_equal(n, FORWARD_MAX_LABELS);
	assert_int_equal(dropped, 10);
	assert_string_equal(out[2].name, "braid_view");
	assert_string_equal(out[3].name, "tag00");
	assert_int_equal(strlen(out[3].value), FORWARD_MAX_LABEL_VALUE);
	free(long_value);
	arena__free(&a);
}

static void test_legacy_name(void **state)
{
	struct label l[] = {
		{"__name__", "process_cpu"}, {"service_name", "shop api"}, {"region", "eu,1"},
		{"braid_view", "merged"},    {"odd}key", "a=b{c}"},
	};
	struct dynbuf b;

	(void)state;
	dynbuf__init(&b, 0);
	assert_int_equal(forward__legacy_name(l, 5, &b), 0);
	assert_string_equal(b.data, "shop_api{region=eu_1,braid_view=merged,odd_key=a_b_c_}");
	dynbuf__reset(&b);
	assert_int_equal(forward__legacy_name(l, 1, &b), 0);
	assert_string_equal(b.data, "unknown_service");
	dynbuf__free(&b);
}

static void test_encode_push(void **state)
{
	struct label la[] = {{"__name__", "process_cpu"},
			     {"service_name", "a"},
			     {"braid_view", "merged"},
			     {"__x__", "dropped"}};
	struct label lb[] = {{"service_name", "b"}, {"__name__", "wall"}};
	static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 'x', 'y'};
	struct store_outbox_item a = {.labels = la,
				      .n_labels = 4,
				      .payload = gz,
				      .payload_len = sizeof(gz),
				      .raw_id = "id-a"};
	struct store_outbox_item b = {.labels = lb,
				      .n_labels = 2,
				      .payload = "not gzip",
				      .payload_len = 8,
				      .raw_id = "id-b"};
	const struct store_outbox_item *items[] = {&a, &b};
	Push__V1__PushRequest *req;
	struct dynbuf out, plain;
	struct errbuf err = {{0}};

	(void)state;
	dynbuf__init(&out, 0);
	dynbuf__init(&plain, 0);
	assert_int_equal(forward__encode_push(items, 2, &out), 0);
	req = push__v1__push_request__unpack(NULL, out.len, (const uint8_t *)out.data);
	assert_non_null(req);
	assert_int_equal(req->n_series, 2);
	assert_int_equal(req->series[0]->n_labels, 3);
	assert_string_equal(req->series[0]->labels[0]->name, "__name__");
	assert_string_equal(req->series[0]->labels[0]->value, "process_cpu");
	assert_string_equal(req->series[0]->labels[2]->name, "braid_view");
	assert_int_equal(req->series[0]->n_samples, 1);
	assert_string_equal(req->series[0]->samples[0]->id, "id-a");
	/* gzipped already: the bytes as they are */
	assert_int_equal(req->series[0]->samples[0]->raw_profile.len, sizeof(gz));
	assert_memory_equal(req->series[0]->samples[0]->raw_profile.data, gz, sizeof(gz));
	/* not gzipped: gzipped here, the same bytes inside */
	assert_string_equal(req->series[1]->samples[0]->id, "id-b");
	assert_true(util__is_gzip(req->series[1]->samples[0]->raw_profile.data,
				  req->series[1]->samples[0]->raw_profile.len));
	assert_int_equal(util__gunzip(req->series[1]->samples[0]->raw_profile.data,
				      req->series[1]->samples[0]->raw_profile.len, 1 << 20, &err,
				      &plain),
			 0);
	assert_int_equal(plain.len, 8);
	assert_memory_equal(plain.data, "not gzip", 8);
	push__v1__push_request__free_unpacked(req, NULL);
	dynbuf__free(&out);
	dynbuf__free(&plain);
}

static void test_outcome_and_backoff(void **state)
{
	int64_t now = 1700000000 * NS;

	(void)state;
	assert_int_equal(forward__outcome(200), FORWARD_DELIVERED);
	assert_int_equal(forward__outcome(204), FORWARD_DELIVERED);
	assert_int_equal(forward__outcome(0), FORWARD_RETRY);
	assert_int_equal(forward__outcome(408), FORWARD_RETRY);
	assert_int_equal(forward__outcome(429), FORWARD_RETRY);
	assert_int_equal(forward__outcome(500), FORWARD_RETRY);
	assert_int_equal(forward__outcome(503), FORWARD_RETRY);
	assert_int_equal(forward__outcome(400), FORWARD_REFUSED);
	assert_int_equal(forward__outcome(401), FORWARD_REFUSED);
	assert_int_equal(forward__outcome(413), FORWARD_REFUSED);
	assert_int_equal(forward__outcome(301), FORWARD_REFUSED);

	assert_int_equal(forward__retry_after_ms("3", now), 3000);
	assert_int_equal(forward__retry_after_ms(" 120 ", now), 120000);
	assert_int_equal(forward__retry_after_ms("99999999", now), FORWARD_MAX_RETRY_AFTER_MS);
	assert_int_equal(forward__retry_after_ms(NULL, now), -1);
	assert_int_equal(forward__retry_after_ms("soon", now), -1);
	assert_int_equal(forward__retry_after_ms("3s", now), -1);
	/* an HTTP date 90 s after now; one in the past means now */
	assert_int_equal(forward__retry_after_ms("Tue, 14 Nov 2023 22:14:50 GMT", now), 90000);
	assert_int_equal(forward__retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);

	/* min * 2^(n-1), capped, in the upper half */
	for (uint64_t rnd = 0; rnd < 2000; rnd += 37) {
		int64_t d1 = forward__backoff_ms(1, 1000, 60000, rnd);
		int64_t d3 = forward__backoff_ms(3, 1000, 60000, rnd);
		int64_t d20 = forward__backoff_ms(20, 1000, 60000, rnd);
		int64_t huge = forward__backoff_ms(INT64_MAX, 1000, 60000, rnd);

		assert_true(d1 >= 500 && d1 <= 1000);
		assert_true(d3 >= 2000 && d3 <= 4000);
		assert_true(d20 >= 30000 && d20 <= 60000);
		assert_true(huge >= 30000 && huge <= 60000);
	}
	/* and it does spread */
	assert_int_not_equal(forward__backoff_ms(5, 1000, 60000, 1),
			     forward__backoff_ms(5, 1000, 60000, 4001));
}

static void test_options(void **state)
{
	const char *bad_header[] = {"NoColon"};
	const char *crlf_header[] = {"X-A: 1\r\nX-B: 2"};
	struct forward_options o = {.url = "http://pyroscope:4040"};
	struct errbuf err = {{0}};

	(void)state;
	assert_int_equal(forward__check_options(&o, &err), 0);
	o.url = "pyroscope:4040";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "http:// or https://"));
	o.url = "https://";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	o.url = "http://x/ingest?name=a";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	o.url = "https://profiles.example.com/pyroscope/";
	o.headers = bad_header;
	o.n_headers = 1;
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NoColon"));
	o.headers = crlf_header;
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	o.n_headers = 0;
	o.basic_auth = "nocolon";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	o.basic_auth = "u:p";
	o.bearer_token = "t";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	o.bearer_token = NULL;
	o.cert_file = "c.pem";
	assert_int_equal(forward__check_options(&o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "key"));
}

/* ---- a scripted upstream ------------------------------------------------------------- */

#define MAX_REQS 64

struct req {
	char path[64];
	char query[1024];
	char ctype[64], tenant[64], auth[256], custom[64];
	unsigned char *body;
	size_t len;
	int64_t t_ns;
};

/* The reply to a request: status, a Retry-After (NULL: none), a body. */
struct reply {
	int status;
	const char *retry_after;
	const char *body;
};
typedef struct reply (*script_fn)(const struct req *rq, int n);

static struct server {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t lock;
	struct req reqs[MAX_REQS];
	int n;
	script_fn script;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct body_acc {
	unsigned char *data;
	size_t len;
};

static const char *hdr(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

	return v ? v : "";
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct req *rq = cls;
	size_t len = strlen(rq->query);

	(void)kind;
	snprintf(rq->query + len, sizeof(rq->query) - len, "%s%s=%s", len ? "&" : "", key,
		 value ? value : "");
	return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **con_cls)
{
	struct body_acc *acc = *con_cls;
	struct MHD_Response *resp;
	struct reply rep = {200, NULL, ""};
	struct req *rq;
	enum MHD_Result ret;
	struct timespec ts;

	(void)cls;
	(void)method;
	(void)version;
	if (!acc) {
		acc = calloc(1, sizeof(*acc));
		*con_cls = acc;
		return acc ? MHD_YES : MHD_NO;
	}
	if (*size) {
		acc->data = realloc(acc->data, acc->len + *size);
		assert_non_null(acc->data);
		memcpy(acc->data + acc->len, data, *size);
		acc->len += *size;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&srv.lock);
	assert_true(srv.n < MAX_REQS);
	rq = &srv.reqs[srv.n];
	memset(rq, 0, sizeof(*rq));
	snprintf(rq->path, sizeof(rq->path), "%s", url);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, rq);
	snprintf(rq->ctype, sizeof(rq->ctype), "%s", hdr(c, "Content-Type"));
	snprintf(rq->tenant, sizeof(rq->tenant), "%s", hdr(c, "X-Scope-OrgID"));
	snprintf(rq->auth, sizeof(rq->auth), "%s", hdr(c, "Authorization"));
	snprintf(rq->custom, sizeof(rq->custom), "%s", hdr(c, "X-Custom"));
	rq->body = acc->data;
	rq->len = acc->len;
	acc->data = NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	rq->t_ns = (int64_t)ts.tv_sec * NS + ts.tv_nsec;
	srv.n++;
	if (srv.script)
		rep = srv.script(rq, srv.n);
	pthread_mutex_unlock(&srv.lock);
	resp = MHD_create_response_from_buffer(strlen(rep.body), (void *)rep.body,
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (rep.retry_after)
		MHD_add_response_header(resp, "Retry-After", rep.retry_after);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, (unsigned)rep.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void done_cb(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct body_acc *acc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (acc) {
		free(acc->data);
		free(acc);
	}
	*con_cls = NULL;
}

static char *read_text(const char *path)
{
	struct dynbuf b;
	struct errbuf err = {{0}};

	dynbuf__init(&b, 1 << 20);
	if (util__read_file(path, 1 << 20, &err, &b) < 0)
		fail_msg("%s", err.msg);
	return b.data;
}

/* tls: HTTPS with the test certificate (tests/data/tls: self-signed, for
 * 127.0.0.1, valid until 2126). */
static void server_start_opts(script_fn script, bool tls)
{
	const union MHD_DaemonInfo *info;
	char *cert = NULL, *key = NULL;

	srv.script = script;
	if (tls) {
		cert = read_text(TEST_DATA "/tls/cert.pem");
		key = read_text(TEST_DATA "/tls/key.pem");
		srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
						 MHD_USE_TLS,
					 0, NULL, NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED,
					 done_cb, NULL, MHD_OPTION_HTTPS_MEM_CERT, cert,
					 MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
	} else {
		srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
					 NULL, NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED,
					 done_cb, NULL, MHD_OPTION_END);
	}
	free(cert);
	free(key);
	assert_non_null(srv.d);
	info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	srv.port = info->port;
}

static void server_start(script_fn script)
{
	server_start_opts(script, false);
}

static void server_stop(void)
{
	if (srv.d)
		MHD_stop_daemon(srv.d);
	srv.d = NULL;
	for (int i = 0; i < srv.n; i++)
		free(srv.reqs[i].body);
	srv.n = 0;
}

/* ---- a store with items -------------------------------------------------------------- */

struct fx {
	bool https;
	char dir[64];
	struct store *s;
	struct forwarder *f;
	char url[64];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_options o = {.skip_check = true};
	struct errbuf err = {{0}};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/braid-test-forward.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	o.data_dir = f->dir;
	assert_int_equal(store__open(&o, &err, &f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	server_stop();
	forward__free(f->f);
	store__close(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int64_t add_item(struct fx *f, const char *service, const char *tenant, const char *payload)
{
	struct label labels[] = {
		{"__name__", "process_cpu"}, {"service_name", service}, {"braid_view", "ebpf"}};
	char series[96];
	struct store_outbox_item it = {.series = series,
				       .tenant = tenant,
				       .kind = "ebpf",
				       .labels = labels,
				       .n_labels = 3,
				       .from_ns = 1700000000 * NS,
				       .until_ns = 1700000015 * NS,
				       .payload = payload,
				       .payload_len = strlen(payload)};
	int64_t id;

	snprintf(series, sizeof(series), "{__name__=process_cpu,service_name=%s}", service);
	assert_int_equal(store__outbox_add(f->s, &it, &id), 0);
	return id;
}

static void new_forwarder(struct fx *f, struct forward_options *o)
{
	struct errbuf err = {{0}};

	snprintf(f->url, sizeof(f->url), "%s://127.0.0.1:%u/", f->https ? "https" : "http",
		 srv.port);
	o->url = f->url;
	o->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 1000;
	o->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 8000;
	forward__free(f->f);
	f->f = NULL;
	assert_int_equal(forward__new(o, f->s, &err, &f->f), 0);
}

struct items {
	int n;
	int64_t ids[16], attempts[16], next[16];
	char error[16][256];
	char raw_id[16][40];
};

static int got_item(void *ctx, const struct store_outbox_item *it)
{
	struct items *g = ctx;

	if (g->n < 16) {
		g->ids[g->n] = it->id;
		g->attempts[g->n] = it->attempts;
		g->next[g->n] = it->next_attempt_ns;
		snprintf(g->error[g->n], sizeof(g->error[0]), "%s",
			 it->last_error ? it->last_error : "");
		snprintf(g->raw_id[g->n], sizeof(g->raw_id[0]), "%s", it->raw_id);
	}
	g->n++;
	return 0;
}

static struct items outbox(struct fx *f)
{
	struct items g = {0};

	assert_int_equal(store__outbox_list(f->s, 0, got_item, &g), 0);
	return g;
}

static int64_t now(void)
{
	return store__now_ns();
}

/* ---- delivery ------------------------------------------------------------------------- */

static struct reply ok_script(const struct req *rq, int n)
{
	(void)rq;
	(void)n;
	return (struct reply){200, NULL, ""};
}

static void test_push_batch(void **state)
{
	struct fx *f = *state;
	const char *headers[] = {"X-Custom: yes"};
	struct forward_options o = {
		.tenant = "team-a", .bearer_token = "s3cret", .headers = headers, .n_headers = 1};
	struct forward_stats st;
	struct items before;
	Push__V1__PushRequest *req;

	add_item(f, "a", NULL, "A1");
	add_item(f, "b", NULL, "B1");
	add_item(f, "a", NULL, "A2");
	before = outbox(f);
	server_start(ok_script);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.delivered, 3);
	assert_int_equal(st.requests, 1);
	assert_int_equal(outbox(f).n, 0);

	/* one request, the push API, its headers */
	assert_int_equal(srv.n, 1);
	assert_string_equal(srv.reqs[0].path, "/push.v1.PusherService/Push");
	assert_string_equal(srv.reqs[0].ctype, "application/proto");
	assert_string_equal(srv.reqs[0].tenant, "team-a");
	assert_string_equal(srv.reqs[0].auth, "Bearer s3cret");
	assert_string_equal(srv.reqs[0].custom, "yes");
	req = push__v1__push_request__unpack(NULL, srv.reqs[0].len, srv.reqs[0].body);
	assert_non_null(req);
	assert_int_equal(req->n_series, 3);
	/* in outbox order, with the IDs the store gave */
	for (int i = 0; i < 3; i++)
		assert_string_equal(req->series[i]->samples[0]->id, before.raw_id[i]);
	assert_string_equal(req->series[1]->labels[1]->value, "b");
	push__v1__push_request__free_unpacked(req, NULL);
}

static struct reply unavailable_once(const struct req *rq, int n)
{
	(void)rq;
	return n == 1 ? (struct reply){503, NULL,
				       "{\"code\":\"unavailable\",\"message\":\"ingester "
				       "ring not ready\"}"}
		      : (struct reply){200, NULL, ""};
}

static void test_retry_then_delivered(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 2000, .backoff_max_ms = 2000};
	struct forward_stats st;
	struct items g;
	int64_t t0 = now(), backoff_until;
	char first_id[40];

	add_item(f, "a", NULL, "A1");
	server_start(unavailable_once);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, t0, false, 0, &st), 0);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.status_5xx, 1);
	assert_true(st.backoff_until_ns >= t0 + 1000 * 1000000ll);
	backoff_until = st.backoff_until_ns;
	g = outbox(f);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.attempts[0], 1);
	assert_non_null(strstr(g.error[0], "HTTP 503"));
	assert_non_null(strstr(g.error[0], "ingester ring not ready"));
	/* 1 to 2 s later (2000 ms, equal jitter) */
	assert_true(g.next[0] >= t0 + 1000 * 1000000ll && g.next[0] <= now() + 2000 * 1000000ll);
	snprintf(first_id, sizeof(first_id), "%s", g.raw_id[0]);

	/* before then: the upstream is left alone */
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.requests, 0);
	assert_int_equal(srv.n, 1);
	/* after (the item's time, and the upstream's): delivered, with the same ID */
	assert_int_equal(forward__run(f->f, g.next[0] > backoff_until ? g.next[0] : backoff_until,
				      false, 0, &st),
			 0);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(srv.n, 2);
	{
		Push__V1__PushRequest *a =
			push__v1__push_request__unpack(NULL, srv.reqs[0].len, srv.reqs[0].body);
		Push__V1__PushRequest *b =
			push__v1__push_request__unpack(NULL, srv.reqs[1].len, srv.reqs[1].body);

		assert_non_null(a);
		assert_non_null(b);
		assert_string_equal(a->series[0]->samples[0]->id, first_id);
		assert_string_equal(b->series[0]->samples[0]->id, first_id);
		push__v1__push_request__free_unpacked(a, NULL);
		push__v1__push_request__free_unpacked(b, NULL);
	}
	assert_int_equal(outbox(f).n, 0);
}

static struct reply slow_down(const struct req *rq, int n)
{
	(void)rq;
	(void)n;
	return (struct reply){429, "7",
			      "{\"code\":\"resource_exhausted\",\"message\":\"rate limited\"}"};
}

static void test_retry_after(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {0};
	struct forward_stats st;
	struct items g;
	int64_t t0 = now();

	add_item(f, "a", NULL, "A1");
	add_item(f, "b", NULL, "B1");
	server_start(slow_down);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, t0, false, 0, &st), 0);
	assert_int_equal(st.status_429, 1);
	assert_int_equal(st.retries, 2);
	g = outbox(f);
	assert_int_equal(g.n, 2);
	/* Retry-After: 7, not the 1 s backoff */
	for (int i = 0; i < 2; i++)
		assert_true(g.next[i] >= t0 + 7 * NS && g.next[i] <= now() + 7 * NS);
	assert_true(st.backoff_until_ns >= t0 + 7 * NS);
	assert_non_null(strstr(forward__errmsg(f->f), "rate limited"));
	assert_int_equal(forward__run(f->f, t0 + 6 * NS, false, 0, &st), 0);
	assert_int_equal(st.requests, 0);
}

/* Whether a push request holds a label of that value: 1 or 0, -1 if it is
 * not a push request. */
static int request_holds(const struct req *rq, const char *value)
{
	Push__V1__PushRequest *req = push__v1__push_request__unpack(NULL, rq->len, rq->body);
	int found = 0;

	if (!req)
		return -1;
	for (size_t i = 0; i < req->n_series; i++)
		for (size_t j = 0; j < req->series[i]->n_labels; j++)
			found |= strcmp(req->series[i]->labels[j]->value, value) == 0;
	push__v1__push_request__free_unpacked(req, NULL);
	return found;
}

/* Refuses any request holding service_name "bad", as Pyroscope refuses a
 * whole request for one invalid profile. */
static struct reply refuse_bad(const struct req *rq, int n)
{
	int bad = request_holds(rq, "bad");

	(void)n;
	if (bad < 0)
		return (struct reply){400, NULL, "{\"code\":\"invalid_argument\"}"};
	return bad ? (struct reply){400, NULL,
				    "{\"code\":\"invalid_argument\",\"message\":\"profile too "
				    "old\"}"}
		   : (struct reply){200, NULL, ""};
}

struct dead {
	int n;
	int status;
	char reason[256];
	char raw_id[40];
};

static int got_dead(void *ctx, const struct store_dead_letter *d)
{
	struct dead *g = ctx;

	g->n++;
	g->status = d->status;
	snprintf(g->reason, sizeof(g->reason), "%s", d->reason);
	snprintf(g->raw_id, sizeof(g->raw_id), "%s", d->item->raw_id);
	return 0;
}

static void test_refused_split(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {0};
	struct forward_stats st;
	struct dead d = {0};

	add_item(f, "a", NULL, "A1");
	add_item(f, "bad", NULL, "X1");
	add_item(f, "c", NULL, "C1");
	server_start(refuse_bad);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	/* the batch, then each alone: two delivered, one dead letter */
	assert_int_equal(srv.n, 4);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.dead_letters, 1);
	assert_int_equal(st.splits, 1);
	assert_int_equal(outbox(f).n, 0);
	assert_int_equal(store__dead_letters(f->s, 0, got_dead, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.status, 400);
	assert_string_equal(d.reason, "HTTP 400: profile too old");
}

/* Answers 500 to any push holding service_name "poison", as Pyroscope
 * answers a push with a profile it can't decode. */
static struct reply fail_poison(const struct req *rq, int n)
{
	int poison = request_holds(rq, "poison");

	(void)n;
	if (poison < 0)
		return (struct reply){400, NULL, "{\"code\":\"invalid_argument\"}"};
	return poison ? (struct reply){500, NULL,
				       "{\"code\":\"unknown\",\"message\":\"failed to parse "
				       "profile\"}"}
		      : (struct reply){200, NULL, ""};
}

static struct reply all_down(const struct req *rq, int n)
{
	(void)rq;
	(void)n;
	return (struct reply){503, NULL, "{\"code\":\"unavailable\",\"message\":\"down\"}"};
}

/* The services of the request i received, joined by commas. */
static void req_services(int i, char *buf, size_t size)
{
	Push__V1__PushRequest *req =
		push__v1__push_request__unpack(NULL, srv.reqs[i].len, srv.reqs[i].body);
	size_t len = 0;

	assert_non_null(req);
	buf[0] = '\0';
	for (size_t k = 0; k < req->n_series; k++)
		for (size_t j = 0; j < req->series[k]->n_labels; j++)
			if (strcmp(req->series[k]->labels[j]->name, "service_name") == 0)
				len += (size_t)snprintf(buf + len, size - len, "%s%s",
							len ? "," : "",
							req->series[k]->labels[j]->value);
	push__v1__push_request__free_unpacked(req, NULL);
}

/* The server received n requests, request i of the services sent[i]. */
static void assert_requests(const char *const *sent, int n)
{
	char services[128];

	assert_int_equal(srv.n, n);
	for (int i = 0; i < n; i++) {
		req_services(i, services, sizeof(services));
		assert_string_equal(services, sent[i]);
	}
}

static void test_poison_split(void **state)
{
	static const char *const sent[] = {"a,poison,c", "a,poison,c", "a,poison,c",
					   "a",		 "poison",     "c"};
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 1000, .backoff_max_ms = 1000};
	struct forward_stats st;
	struct items g;
	struct dead d = {0};
	int64_t t = now();

	add_item(f, "a", NULL, "A1");
	add_item(f, "poison", NULL, "P1");
	add_item(f, "c", NULL, "C1");
	server_start(fail_poison);
	new_forwarder(f, &o);
	/* twice: a 500 may be the server's passing trouble; the batch waits */
	for (int pass = 0; pass < 2; pass++, t += 10 * NS) {
		assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
		assert_int_equal(st.delivered, 0);
		assert_int_equal(st.retries, 3);
		assert_int_equal(st.splits, 0);
	}
	/* the third time each goes alone, in order: a and c go, the poison waits */
	assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.splits, 1);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.status_5xx, 2);
	assert_non_null(strstr(forward__errmsg(f->f), "failed to parse profile"));
	assert_requests(sent, 6);
	g = outbox(f);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.attempts[0], 3);
	assert_non_null(strstr(g.error[0], "HTTP 500"));

	/* while the upstream takes the others, the poison fails alone until its
	 * tenth time: then it is a dead letter, with the server's message */
	for (int attempts = 4; attempts <= FORWARD_POISON_AFTER; attempts++) {
		t += 10 * NS;
		add_item(f, "d", NULL, "D1");
		assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
		assert_int_equal(st.delivered, 1);
		assert_int_equal(st.dead_letters, attempts == FORWARD_POISON_AFTER);
		assert_int_equal(outbox(f).n, attempts < FORWARD_POISON_AFTER);
	}
	assert_int_equal(store__dead_letters(f->s, 0, got_dead, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.status, 500);
	assert_non_null(strstr(d.reason, "failed to parse profile"));
	assert_non_null(strstr(d.reason, "failed 10 times"));
}

/* The later items of a failing item's series wait behind it, in order. */
static void test_poison_series_order(void **state)
{
	static const char *const sent[] = {"poison,poison,c", "poison,poison,c", "poison,poison,c",
					   "poison", "c"};
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 1000, .backoff_max_ms = 1000};
	struct forward_stats st;
	int64_t t = now();
	struct items g;

	add_item(f, "poison", NULL, "P1");
	add_item(f, "poison", NULL, "P2");
	add_item(f, "c", NULL, "C1");
	server_start(fail_poison);
	new_forwarder(f, &o);
	for (int pass = 0; pass < 3; pass++, t += 10 * NS)
		assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
	assert_int_equal(st.delivered, 1);
	assert_requests(sent, 5);
	g = outbox(f);
	assert_int_equal(g.n, 2);
}

static struct reply all_500(const struct req *rq, int n)
{
	(void)rq;
	(void)n;
	return (struct reply){500, NULL, "{\"code\":\"internal\",\"message\":\"broken\"}"};
}

/* A server that fails everything with 500 gets the items apart, but none is
 * given up: nothing shows that one item is to blame. Two failures alone end
 * a pass. */
static void test_all_500_kept(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 1000, .backoff_max_ms = 1000};
	struct forward_stats st;
	struct items g;
	int64_t t = now();

	add_item(f, "a", NULL, "A1");
	add_item(f, "b", NULL, "B1");
	add_item(f, "c", NULL, "C1");
	server_start(all_500);
	new_forwarder(f, &o);
	for (int pass = 0; pass < FORWARD_POISON_AFTER + 3; pass++, t += 10 * NS) {
		assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
		assert_int_equal(st.dead_letters, 0);
		assert_int_equal(st.delivered, 0);
		/* the batch; from the third pass, then a and b alone, not c */
		assert_int_equal(st.requests, pass < FORWARD_SPLIT_AFTER ? 1 : 3);
	}
	g = outbox(f);
	assert_int_equal(g.n, 3);
	assert_true(g.attempts[0] >= FORWARD_POISON_AFTER + 3);
}

/* An outage (503) keeps a batch together: splitting would only add requests. */
static void test_outage_no_split(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 1000, .backoff_max_ms = 1000};
	struct forward_stats st;
	int64_t t = now();

	add_item(f, "a", NULL, "A1");
	add_item(f, "b", NULL, "B1");
	server_start(all_down);
	new_forwarder(f, &o);
	for (int pass = 0; pass < 4; pass++, t += 10 * NS) {
		assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
		assert_int_equal(st.requests, 1);
		assert_int_equal(st.splits, 0);
		assert_int_equal(st.retries, 2);
	}
	assert_int_equal(srv.n, 4);
	assert_int_equal(outbox(f).n, 2);
}

static void test_tenants_apart(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.tenant = "default-tenant"};
	struct forward_stats st;

	add_item(f, "a", "t1", "A1");
	add_item(f, "b", NULL, "B1");
	add_item(f, "a", "t1", "A2");
	add_item(f, "c", "t2", "C1");
	server_start(ok_script);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.delivered, 4);
	/* one request per tenant; the configured one for items without */
	assert_int_equal(srv.n, 3);
	assert_string_equal(srv.reqs[0].tenant, "t1");
	assert_string_equal(srv.reqs[1].tenant, "default-tenant");
	assert_string_equal(srv.reqs[2].tenant, "t2");
	{
		Push__V1__PushRequest *r =
			push__v1__push_request__unpack(NULL, srv.reqs[0].len, srv.reqs[0].body);

		assert_non_null(r);
		assert_int_equal(r->n_series, 2);
		push__v1__push_request__free_unpacked(r, NULL);
	}
}

static void test_legacy_api(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.api = FORWARD_API_INGEST, .basic_auth = "user:pass"};
	struct forward_stats st;

	add_item(f, "shop", NULL, "A1");
	add_item(f, "shop", NULL, "A2");
	server_start(ok_script);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.delivered, 2);
	/* one request per item, in order */
	assert_int_equal(srv.n, 2);
	assert_string_equal(srv.reqs[0].path, "/ingest");
	assert_string_equal(srv.reqs[0].query,
			    "name=shop{braid_view=ebpf}&from=1700000000000000000"
			    "&until=1700000015000000000&format=pprof&spyName=braid");
	assert_string_equal(srv.reqs[0].ctype, "application/octet-stream");
	assert_string_equal(srv.reqs[0].auth, "Basic dXNlcjpwYXNz");
	assert_int_equal(srv.reqs[0].len, 2);
	assert_memory_equal(srv.reqs[0].body, "A1", 2);
	assert_memory_equal(srv.reqs[1].body, "A2", 2);
}

static void test_sdk_text_goes_legacy(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {0};
	struct label labels[] = {
		{"service_name", "old-sdk"}, {"__name__", "process_cpu"}, {"braid_view", "sdk"}};
	struct store_sdk_profile p = {.received_ns = now(),
				      .service = "old-sdk",
				      .profile_name = "process_cpu",
				      .labels = labels,
				      .n_labels = 2,
				      .from_ns = 1700000000 * NS,
				      .until_ns = 1700000010 * NS,
				      .spy_name = "rbspy",
				      .format = "folded",
				      .sample_rate = 100,
				      .units = "samples",
				      .aggregation = "sum",
				      .payload = "main;work 7\n",
				      .payload_len = 12};
	struct store_outbox_item it = {.series = "{old-sdk}",
				       .kind = "sdk",
				       .labels = labels,
				       .n_labels = 3,
				       .from_ns = p.from_ns,
				       .until_ns = p.until_ns};
	struct forward_stats st;
	int64_t sdk;

	assert_int_equal(store__put_sdk_profile(f->s, &p, &sdk), 0);
	it.sdk_profile_id = sdk;
	assert_int_equal(store__outbox_add(f->s, &it, NULL), 0);
	add_item(f, "a", NULL, "A1");
	server_start(ok_script);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(srv.n, 2);
	/* the folded profile as the SDK pushed it, through /ingest */
	assert_string_equal(srv.reqs[0].path, "/ingest");
	assert_string_equal(srv.reqs[0].query,
			    "name=old-sdk{braid_view=sdk}&from=1700000000000000000"
			    "&until=1700000010000000000&format=folded&sampleRate=100"
			    "&spyName=rbspy&units=samples&aggregationType=sum");
	assert_int_equal(srv.reqs[0].len, 12);
	assert_memory_equal(srv.reqs[0].body, "main;work 7\n", 12);
	assert_string_equal(srv.reqs[1].path, "/push.v1.PusherService/Push");
}

static void test_upstream_absent(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 500, .backoff_max_ms = 4000};
	struct forward_stats st;
	struct items g;
	int64_t t;

	add_item(f, "a", NULL, "A1");
	server_start(ok_script);
	new_forwarder(f, &o);
	server_stop(); /* the port is closed: connection refused */
	t = now();
	assert_int_equal(forward__run(f->f, t, false, 0, &st), 0);
	assert_int_equal(st.net_errors, 1);
	assert_int_equal(st.retries, 1);
	g = outbox(f);
	assert_int_equal(g.attempts[0], 1);
	assert_non_null(strstr(g.error[0], "no reply from http://127.0.0.1:"));
	/* each failure in a row backs off further (global backoff) */
	for (int i = 0; i < 4; i++) {
		t = st.backoff_until_ns;
		assert_int_equal(forward__run(f->f, t, true, 0, &st), 0);
	}
	assert_true(st.backoff_until_ns - now() >= 2000 * 1000000ll - 200 * 1000000ll);
	g = outbox(f);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.attempts[0], 5);
}

static void test_flush_ignores_backoff(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 60000, .backoff_max_ms = 60000};
	struct forward_stats st;
	int64_t deadline;

	add_item(f, "a", NULL, "A1");
	server_start(unavailable_once);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), false, 0, &st), 0);
	assert_int_equal(st.retries, 1);
	/* stopping: one more try now, within the deadline */
	deadline = now() + 5 * NS;
	assert_int_equal(forward__run(f->f, now(), true, deadline, &st), 0);
	assert_int_equal(st.delivered, 1);
	assert_true(now() < deadline);
	assert_int_equal(outbox(f).n, 0);
}

static void test_tls(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.backoff_min_ms = 1, .backoff_max_ms = 1};
	struct forward_stats st;
	struct items g;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		skip(); /* a libmicrohttpd without TLS */
	add_item(f, "a", NULL, "A1");
	server_start_opts(ok_script, true);
	f->https = true;
	/* a certificate nobody vouches for: no delivery, and the reason */
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), true, 0, &st), 0);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(st.net_errors, 1);
	g = outbox(f);
	assert_int_equal(g.n, 1);
	if (!strstr(g.error[0], "certificate"))
		fail_msg("the error does not name the certificate: %s", g.error[0]);
	assert_int_equal(srv.n, 0);
	/* trusted through the CA file */
	o.ca_file = TEST_DATA "/tls/cert.pem";
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), true, 0, &st), 0);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(srv.n, 1);
	/* or not verified, when asked */
	add_item(f, "b", NULL, "B1");
	o.ca_file = NULL;
	o.insecure = true;
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, now(), true, 0, &st), 0);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(srv.n, 2);
}

/* The first reply comes after 1.5 s: past the forwarder's 500 ms. */
static struct reply slow_once(const struct req *rq, int n)
{
	(void)rq;
	if (n == 1)
		usleep(1500 * 1000);
	return (struct reply){200, NULL, ""};
}

static void test_timeout(void **state)
{
	struct fx *f = *state;
	struct forward_options o = {.timeout_ms = 500, .backoff_min_ms = 1, .backoff_max_ms = 1};
	struct forward_stats st;
	struct items g;
	int64_t t0 = now();

	add_item(f, "a", NULL, "A1");
	server_start(slow_once);
	new_forwarder(f, &o);
	assert_int_equal(forward__run(f->f, t0, false, 0, &st), 0);
	assert_true(now() - t0 < 1400 * 1000000ll); /* it did not wait for the reply */
	assert_int_equal(st.net_errors, 1);
	g = outbox(f);
	if (!strstr(g.error[0], "imed out"))
		fail_msg("the error does not say it timed out: %s", g.error[0]);
	usleep(1200 * 1000); /* the slow reply is over */
	assert_int_equal(forward__run(f->f, now(), true, 0, &st), 0);
	assert_int_equal(st.delivered, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_legacy_name),
		cmocka_unit_test(test_encode_push),
		cmocka_unit_test(test_outcome_and_backoff),
		cmocka_unit_test(test_options),
		cmocka_unit_test_setup_teardown(test_push_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_series_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_no_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_500_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenants_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdk_text_goes_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_ignores_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
