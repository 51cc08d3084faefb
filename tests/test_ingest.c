/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/'s decoders: the legacy name and times, the legacy /ingest bodies
 * (the real Node SDK and Go runtime/pprof captures, multipart, folded and
 * lines), the push API in protobuf and JSON, every refusal with its status
 * and the message a user needs, and the status/code table.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "push.pb-c.h"

#ifndef BRAID_FIXTURES
#error "BRAID_FIXTURES must name ../shared/fixtures"
#endif

#define NODE_DIR BRAID_FIXTURES "/node-sdk-0.6.4/"
#define GO_DIR	 BRAID_FIXTURES "/go-runtime-pprof/"
#define NOW_NS	 ((int64_t)1700000000 * 1000000000)
#define SEC	 ((int64_t)1000000000)

/* ---- helpers ----------------------------------------------------------- */

static void slurp(const char *path, struct dynbuf *out)
{
	struct errbuf err;

	dynbuf__init(out, 0);
	if (util__read_file(path, 64u << 20, &err, out) < 0)
		fail_msg("%s", err.msg);
}

static char *url_decode(const char *s, size_t n)
{
	char *d = malloc(n + 1), *o = d;

	assert_non_null(d);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char hex[3] = {s[i + 1], s[i + 2], 0};

			*o++ = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return d;
}

/* A request path's query, URL-decoded, as the server hands it over. */
struct query {
	struct ingest_query q;
	char *vals[16];
	size_t n;
};

static void parse_query(const char *path, struct query *ret)
{
	const char *p = strchr(path, '?');

	memset(ret, 0, sizeof(*ret));
	assert_non_null(p);
	for (p++; *p && *p != '\n';) {
		size_t n = strcspn(p, "&\n");
		const char *eq = memchr(p, '=', n);
		char *key, *val;

		assert_non_null(eq);
		key = url_decode(p, (size_t)(eq - p));
		val = url_decode(eq + 1, n - (size_t)(eq + 1 - p));
		assert_true(ret->n < 16);
		ret->vals[ret->n++] = val;
		if (strcmp(key, "name") == 0)
			ret->q.name = val;
		else if (strcmp(key, "from") == 0)
			ret->q.from = val;
		else if (strcmp(key, "until") == 0)
			ret->q.until = val;
		else if (strcmp(key, "format") == 0)
			ret->q.format = val;
		else if (strcmp(key, "sampleRate") == 0)
			ret->q.sample_rate = val;
		else if (strcmp(key, "spyName") == 0)
			ret->q.spy_name = val;
		else if (strcmp(key, "units") == 0)
			ret->q.units = val;
		else if (strcmp(key, "aggregationType") == 0)
			ret->q.aggregation = val;
		free(key);
		p += n;
		if (*p == '&')
			p++;
	}
}

static void free_query(struct query *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->vals[i]);
}

static const char *label(const struct store_sdk_profile *sdk, const char *name)
{
	for (size_t i = 0; i < sdk->n_labels; i++)
		if (strcmp(sdk->labels[i].name, name) == 0)
			return sdk->labels[i].value;
	return NULL;
}

/* The sample types and totals, computed independently of ingest/. */
static void assert_types_of(const struct store_sdk_profile *sdk, const void *data, size_t len,
			    enum profile_format fmt, const struct profile_folded_opts *fo)
{
	struct profile *p = NULL;
	struct errbuf err;
	int64_t totals[PROFILE_MAX_SAMPLE_TYPES];
	size_t n;

	assert_int_equal(profile__decode(data, len, fmt, fo, NULL, &err, &p, NULL), 0);
	n = profile__n_sample_types(p);
	assert_int_equal(sdk->n_types, n);
	assert_int_equal(profile__totals(p, totals), 0);
	for (size_t i = 0; i < n; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);

		assert_string_equal(sdk->types[i].type, profile__str(p, vt.type));
		assert_string_equal(sdk->types[i].unit, profile__str(p, vt.unit));
		assert_true(sdk->types[i].total == totals[i]);
	}
	profile__free(p);
}

static void assert_type(const struct store_sdk_profile *sdk, size_t i, const char *type,
			const char *unit, int64_t total)
{
	assert_true(i < sdk->n_types);
	assert_string_equal(sdk->types[i].type, type);
	assert_string_equal(sdk->types[i].unit, unit);
	if (total >= 0)
		assert_true(sdk->types[i].total == total);
}

static void assert_msg_has(const struct errbuf *err, const char *want)
{
	if (!strstr(err->msg, want))
		fail_msg("message '%s' lacks '%s'", err->msg, want);
}

/* ---- status table -------------------------------------------------------- */

static void test_status_table(void **state)
{
	static const struct {
		int err, status;
		const char *code;
	} t[] = {
		{-EINVAL, 400, "invalid_argument"},
		{-EACCES, 401, "unauthenticated"},
		{-ENOENT, 404, "not_found"},
		{-EFBIG, 413, "resource_exhausted"},
		{-E2BIG, 413, "resource_exhausted"},
		{-EPROTONOSUPPORT, 415, "invalid_argument"},
		{-EBADMSG, 422, "invalid_argument"},
		{-ENOTSUP, 422, "invalid_argument"},
		{-EOPNOTSUPP, 422, "invalid_argument"},
		{-ENOSPC, 429, "resource_exhausted"},
		{-EBUSY, 503, "unavailable"},
		{-EIO, 503, "unavailable"},
		{-EAGAIN, 503, "unavailable"},
		{-ENOMEM, 500, "internal"},
		{-EPERM, 500, "internal"},
	};
	struct ingest_limits lim;

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		assert_int_equal(ingest__http_status(t[i].err), t[i].status);
		assert_string_equal(ingest__error_code(t[i].status), t[i].code);
	}
	assert_string_equal(ingest__error_code(405), "unimplemented");
	assert_string_equal(ingest__error_code(500), "internal");

	ingest_limits__default(&lim);
	assert_int_equal(lim.max_labels, 30);
	assert_int_equal(lim.max_series, INGEST_MAX_SERIES);
	assert_int_equal(lim.max_samples, INGEST_MAX_SAMPLES);
	assert_int_equal(lim.max_decompressed, INGEST_DEFAULT_MAX_DECOMPRESSED);
	assert_int_equal(lim.profile.max_samples, PROFILE_DEFAULT_MAX_SAMPLES);
}

/* ---- the legacy name ------------------------------------------------------- */

static int parse_name(const char *name, size_t max_labels, struct arena *a, struct errbuf *err,
		      struct ingest_name *ret)
{
	return ingest__parse_name(name, max_labels, a, err, ret);
}

static void test_name_fixture(void **state)
{
	struct arena a = {0};
	struct errbuf err;
	struct ingest_name n;
	struct query q;
	struct dynbuf path;

	(void)state;
	slurp(NODE_DIR "req2.path", &path);
	parse_query(path.data, &q);
	assert_int_equal(parse_name(q.q.name, 30, &a, &err, &n), 0);
	assert_string_equal(n.app, "checkout");
	assert_string_equal(n.service, "checkout");
	assert_null(n.profile_name);
	assert_null(n.sample_type);
	assert_int_equal(n.n_tags, 5);
	assert_string_equal(n.tags[0].name, "otel.scope.name");
	assert_string_equal(n.tags[0].value, "com.grafana.pyroscope/nodejs");
	assert_string_equal(n.tags[1].name, "otel.scope.version");
	assert_string_equal(n.tags[1].value, "0.6.4");
	assert_string_equal(n.tags[2].name, "process.runtime.name");
	assert_string_equal(n.tags[3].name, "process.runtime.version");
	assert_string_equal(n.tags[3].value, "20.20.2");
	assert_string_equal(n.tags[4].name, "region");
	assert_string_equal(n.tags[4].value, "eu-1");
	free_query(&q);
	dynbuf__free(&path);
	arena__free(&a);
}

static void test_name_suffixes(void **state)
{
	static const struct {
		const char *name, *service, *profile, *type, *unit;
	} t[] = {
		{"app.cpu", "app", "process_cpu", "cpu", "samples"},
		{"app.itimer", "app", "process_cpu", "cpu", "samples"},
		{"app.wall", "app", "wall", "wall", "samples"},
		{"my.app.inuse_space", "my.app", "memory", "inuse_space", "bytes"},
		{"my.app.alloc_objects{a=b}", "my.app", "memory", "alloc_objects", "objects"},
		{"j.alloc_in_new_tlab_bytes", "j", "memory", "alloc_in_new_tlab_bytes", "bytes"},
		{"go/svc.goroutines", "go/svc", "goroutines", "goroutines", "goroutines"},
		{"a.mutex_duration", "a", "mutex", "mutex_duration", "lock_nanoseconds"},
		{"a.block_count", "a", "block", "block_count", "block_samples"},
		{"a.lock_count", "a", "mutex", "lock_count", "lock_samples"},
		{"app.unknownsuffix", "app.unknownsuffix", NULL, NULL, NULL},
		{"app", "app", NULL, NULL, NULL},
		{"cpu", "cpu", NULL, NULL, NULL},
	};
	struct arena a = {0};
	struct errbuf err;
	struct ingest_name n;

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		assert_int_equal(parse_name(t[i].name, 30, &a, &err, &n), 0);
		assert_string_equal(n.service, t[i].service);
		if (t[i].profile) {
			assert_string_equal(n.profile_name, t[i].profile);
			assert_string_equal(n.sample_type, t[i].type);
			assert_string_equal(n.sample_unit, t[i].unit);
		} else {
			assert_null(n.profile_name);
			assert_null(n.sample_type);
			assert_null(n.sample_unit);
		}
	}

	/* spaces around keys and values go; empty values are dropped */
	assert_int_equal(parse_name("app.cpu{ a = 1 ,b=two words , c= }", 30, &a, &err, &n), 0);
	assert_string_equal(n.app, "app.cpu");
	assert_int_equal(n.n_tags, 2);
	assert_string_equal(n.tags[0].name, "a");
	assert_string_equal(n.tags[0].value, "1");
	assert_string_equal(n.tags[1].name, "b");
	assert_string_equal(n.tags[1].value, "two words");
	assert_int_equal(parse_name("app{}", 30, &a, &err, &n), 0);
	assert_int_equal(n.n_tags, 0);
	assert_string_equal(n.service, "app");
	/* as Pyroscope: the Go SDK's __session_id__ is kept, other __ tags go
	 * (pyroscope-go v1.5.0's name, as captured) */
	assert_int_equal(parse_name("braid-e2e-go{__session_id__=77e425ea48b3919f,__meta=x,"
				    "otel.scope.name=com.grafana.pyroscope/go,version=1.0.0}",
				    30, &a, &err, &n),
			 0);
	assert_int_equal(n.n_tags, 3);
	assert_string_equal(n.tags[0].name, "__session_id__");
	assert_string_equal(n.tags[0].value, "77e425ea48b3919f");
	assert_string_equal(n.tags[1].name, "otel.scope.name");
	assert_string_equal(n.tags[2].name, "version");
	/* a service_name tag names the service, as in Pyroscope */
	assert_int_equal(parse_name("app.cpu{region=eu,service_name=checkout}", 30, &a, &err, &n),
			 0);
	assert_string_equal(n.service, "checkout");
	assert_string_equal(n.app, "app.cpu");
	assert_string_equal(n.profile_name, "process_cpu");
	assert_int_equal(n.n_tags, 1);
	assert_string_equal(n.tags[0].name, "region");
	arena__free(&a);
}

static char *tags_name(size_t n_tags)
{
	struct dynbuf b;

	dynbuf__init(&b, 0);
	assert_int_equal(dynbuf__printf(&b, "app{"), 0);
	for (size_t i = 0; i < n_tags; i++)
		assert_int_equal(dynbuf__printf(&b, "%sk%zu=v", i ? "," : "", i), 0);
	assert_int_equal(dynbuf__putc(&b, '}'), 0);
	return b.data;
}

static void test_name_errors(void **state)
{
	static const struct {
		const char *name, *msg;
	} t[] = {
		{"{a=b}", "app name is empty"},
		{"", "app name is empty"},
		{"ap p", "bad character ' ' at offset 2 of app name 'ap p'"},
		{"app}", "bad character '}' at offset 3"},
		{"app{", "has a '{' but does not end with '}'"},
		{"app{a=b}x", "does not end with '}'"},
		{"app{a}", "tag 'a' in name 'app{a}' has no '='"},
		{"app{=v}", "empty key"},
		{"app{a-b=1}", "bad character '-' at offset 5 of name 'app{a-b=1}'"},
		{"app{a=1,a=2}", "duplicate tag 'a'"},
		{"app{__name__=x}", "tag '__name__' is reserved"},
		{".cpu", "only a profile type"},
	};
	struct arena a = {0};
	struct errbuf err;
	struct ingest_name n;
	struct dynbuf big;
	char *s;

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		assert_int_equal(parse_name(t[i].name, 30, &a, &err, &n), -EINVAL);
		assert_msg_has(&err, t[i].msg);
	}
	assert_int_equal(ingest__http_status(-EINVAL), 400);

	/* 28 tags + service_name + __name__ = 30: fine; 29 are too many */
	s = tags_name(28);
	assert_int_equal(parse_name(s, 30, &a, &err, &n), 0);
	assert_int_equal(n.n_tags, 28);
	assert_string_equal(n.tags[27].name, "k27");
	free(s);
	s = tags_name(29);
	assert_int_equal(parse_name(s, 30, &a, &err, &n), -EINVAL);
	assert_string_equal(err.msg, "too many labels: 31, at most 30 per series (service_name "
				     "and __name__ included)");
	free(s);

	/* a key over 1024 bytes, a value over 2048, an app name over 1024 */
	dynbuf__init(&big, 0);
	assert_int_equal(dynbuf__printf(&big, "app{%01025d=v}", 0), 0);
	assert_int_equal(parse_name(big.data, 30, &a, &err, &n), -EINVAL);
	assert_msg_has(&err, "is 1025 bytes, at most 1024");
	dynbuf__reset(&big);
	assert_int_equal(dynbuf__printf(&big, "app{k=%01024d}", 0), 0);
	assert_int_equal(parse_name(big.data, 30, &a, &err, &n), 0);
	dynbuf__reset(&big);
	assert_int_equal(dynbuf__printf(&big, "app{k=%02049d}", 0), 0);
	assert_int_equal(parse_name(big.data, 30, &a, &err, &n), -EINVAL);
	assert_msg_has(&err, "tag 'k' has a value of 2049 bytes, at most 2048");
	/* the offending value is quoted, cut short */
	dynbuf__reset(&big);
	assert_int_equal(dynbuf__printf(&big, "%01025d", 7), 0);
	assert_int_equal(parse_name(big.data, 30, &a, &err, &n), -EINVAL);
	assert_msg_has(&err, "is 1025 bytes, at most 1024");
	assert_true(strlen(err.msg) < 200);
	assert_non_null(strstr(err.msg, "..."));
	dynbuf__free(&big);
	arena__free(&a);
}

/* ---- times ------------------------------------------------------------------- */

static void test_parse_time(void **state)
{
	const char *same[] = {"1795238876", "1795238876000", "1795238876000000",
			      "1795238876000000000"};
	int64_t t;

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(same); i++) {
		assert_int_equal(ingest__parse_time(same[i], NOW_NS, &t), 0);
		assert_true(t == 1795238876 * SEC);
	}
	assert_int_equal(ingest__parse_time(NULL, NOW_NS, &t), 0);
	assert_true(t == NOW_NS);
	assert_int_equal(ingest__parse_time("", NOW_NS, &t), 0);
	assert_true(t == NOW_NS);
	assert_int_equal(ingest__parse_time("0", NOW_NS, &t), 0);
	assert_true(t == 0);
	assert_int_equal(ingest__parse_time("12a", NOW_NS, &t), -EINVAL);
	assert_int_equal(ingest__parse_time("-5", NOW_NS, &t), -EINVAL);
	assert_int_equal(ingest__parse_time(" 5", NOW_NS, &t), -EINVAL);
	/* 11 digits of seconds is past 2262 in ns; 20 digits overflow outright */
	assert_int_equal(ingest__parse_time("99999999999", NOW_NS, &t), -EINVAL);
	assert_int_equal(ingest__parse_time("99999999999999999999", NOW_NS, &t), -EINVAL);
	assert_int_equal(ingest__parse_time("9223372036854775808", NOW_NS, &t), -EINVAL);
	assert_int_equal(ingest__parse_time("9223372036854775807", NOW_NS, &t), 0);
	assert_true(t == INT64_MAX);
}

/* ---- legacy /ingest ------------------------------------------------------------ */

static int legacy(const struct ingest_query *q, const struct ingest_body *b,
		  const struct ingest_limits *lim, struct arena *a, struct errbuf *err,
		  struct ingest_profile *ret)
{
	struct ingest_limits def;

	if (!lim) {
		ingest_limits__default(&def);
		lim = &def;
	}
	memset(ret, 0x5a, sizeof(*ret));
	return ingest__decode_legacy(q, b, NOW_NS, lim, a, err, ret);
}

static void test_legacy_node_wall(void **state)
{
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile r;
	struct dynbuf path, body;
	struct query q;
	struct ingest_body b = {.content_type = "application/octet-stream"};
	const struct store_sdk_profile *s = &r.sdk;

	(void)state;
	slurp(NODE_DIR "req2.path", &path);
	slurp(NODE_DIR "req2.pprof.gz", &body);
	parse_query(path.data, &q);
	b.data = body.data;
	b.len = body.len;
	assert_int_equal(legacy(&q.q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(s->service, "checkout");
	assert_string_equal(s->profile_name, "wall");
	assert_int_equal(s->n_labels, 7);
	assert_string_equal(s->labels[0].name, "__name__");
	assert_string_equal(s->labels[0].value, "wall");
	assert_string_equal(s->labels[1].name, "service_name");
	assert_string_equal(s->labels[1].value, "checkout");
	assert_string_equal(label(s, "region"), "eu-1");
	assert_string_equal(label(s, "otel.scope.name"), "com.grafana.pyroscope/nodejs");
	assert_string_equal(label(s, "otel.scope.version"), "0.6.4");
	assert_string_equal(label(s, "process.runtime.name"), "nodejs");
	assert_string_equal(label(s, "process.runtime.version"), "20.20.2");
	assert_int_equal(s->n_types, 3);
	assert_type(s, 0, "samples", "count", -1);
	assert_type(s, 1, "wall", "nanoseconds", -1);
	assert_type(s, 2, "cpu", "nanoseconds", -1);
	assert_types_of(s, body.data, body.len, PROFILE_FORMAT_PPROF, NULL);
	assert_true(s->types[0].total > 0);
	assert_true(s->from_ns == 1795238876 * SEC);
	assert_true(s->until_ns == 1795238878 * SEC);
	assert_string_equal(s->spy_name, "nodespy");
	assert_string_equal(s->format, "pprof");
	assert_int_equal(s->sample_rate, 17);
	assert_null(s->units);
	assert_null(s->aggregation);
	assert_ptr_equal(s->payload, body.data);
	assert_int_equal(s->payload_len, body.len);
	assert_int_equal(r.pid_label, 0);
	free_query(&q);
	dynbuf__free(&path);
	dynbuf__free(&body);
	arena__free(&a);
}

static void test_legacy_node_heap(void **state)
{
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile r;
	struct dynbuf path, body;
	struct query q;
	struct ingest_body b = {.content_type = "application/octet-stream"};

	(void)state;
	slurp(NODE_DIR "req3.path", &path);
	slurp(NODE_DIR "req3.pprof.gz", &body);
	parse_query(path.data, &q);
	b.data = body.data;
	b.len = body.len;
	assert_int_equal(legacy(&q.q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.service, "checkout");
	assert_string_equal(r.sdk.profile_name, "memory");
	assert_string_equal(label(&r.sdk, "__name__"), "memory");
	assert_string_equal(label(&r.sdk, "region"), "eu-1");
	assert_types_of(&r.sdk, body.data, body.len, PROFILE_FORMAT_PPROF, NULL);
	assert_int_equal(r.sdk.sample_rate, 100);
	assert_true(r.sdk.from_ns == 1795238876 * SEC);
	assert_true(r.sdk.until_ns == 1795238878 * SEC);
	assert_ptr_equal(r.sdk.payload, body.data);
	free_query(&q);
	dynbuf__free(&path);
	dynbuf__free(&body);
	arena__free(&a);
}

static const char go_config[] =
	"{\"cpu\": {\"units\": \"nanoseconds\", \"aggregation\": \"average\", "
	"\"display-name\": \"cpu_ns\", \"sampled\": true, \"cumulative\": false, \"x\": [1]},\n"
	" \"samples\": {\"units\": \"samples\", \"aggregation\": \"sum\"},\n"
	" \"inuse_space\": {\"units\": \"bytes\", \"aggregation\": \"average\"},\n"
	" \"alloc_space\": null}";

/* pyroscope-go: multipart with the pprof in `profile`, from/until in ns. */
static void test_legacy_go_multipart(void **state)
{
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile r;
	struct dynbuf cpu, heap;
	struct ingest_query q = {.name = "app.cpu{env=prod,pid=4242}",
				 .from = "1795238876000000000",
				 .until = "1795238886000000000",
				 .spy_name = "gospy",
				 .sample_rate = "100"};
	struct ingest_body b = {.content_type = "multipart/form-data; boundary=xyz",
				.multipart = true,
				.sample_type_config = go_config,
				.sample_type_config_len = sizeof(go_config) - 1};

	(void)state;
	slurp(GO_DIR "cpu.pprof.gz", &cpu);
	slurp(GO_DIR "heap.pprof.gz", &heap);
	b.data = cpu.data;
	b.len = cpu.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.service, "app");
	assert_string_equal(r.sdk.profile_name, "process_cpu");
	assert_int_equal(r.sdk.n_labels, 4);
	assert_string_equal(r.sdk.labels[2].name, "env");
	assert_string_equal(r.sdk.labels[3].name, "pid");
	assert_int_equal(r.pid_label, 4242);
	assert_types_of(&r.sdk, cpu.data, cpu.len, PROFILE_FORMAT_PPROF, NULL);
	assert_type(&r.sdk, 0, "samples", "count", -1);
	assert_type(&r.sdk, 1, "cpu", "nanoseconds", -1);
	assert_true(r.sdk.from_ns == 1795238876 * SEC);
	assert_true(r.sdk.until_ns == 1795238886 * SEC);
	assert_string_equal(r.sdk.format, "pprof");
	/* the default sample type (cpu) has aggregation average in the config */
	assert_string_equal(r.sdk.aggregation, "average");
	assert_ptr_equal(r.sdk.payload, cpu.data);
	/* the query's aggregationType wins */
	q.aggregation = "sum";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.aggregation, "sum");

	/* heap without a suffix: __name__ from the sample types */
	q = (struct ingest_query){.name = "app{env=prod}",
				  .from = "1795238876000000000",
				  .until = "1795238886000000000"};
	b.data = heap.data;
	b.len = heap.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.service, "app");
	assert_string_equal(r.sdk.profile_name, "memory");
	assert_string_equal(label(&r.sdk, "__name__"), "memory");
	assert_types_of(&r.sdk, heap.data, heap.len, PROFILE_FORMAT_PPROF, NULL);
	assert_int_equal(r.sdk.n_types, 4);
	assert_type(&r.sdk, 3, "inuse_space", "bytes", -1);
	assert_string_equal(r.sdk.aggregation, "average");
	assert_int_equal(r.sdk.sample_rate, 100);
	assert_null(r.sdk.spy_name);

	/* multipart refusals */
	b.prev_profile = true;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_msg_has(&err, "prev_profile is not supported (Pyroscope refuses it too)");
	b.prev_profile = false;
	b.data = NULL;
	b.len = 0;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_string_equal(err.msg, "multipart form has no 'profile' field");
	b.data = heap.data;
	b.len = heap.len;
	b.sample_type_config = "{\"cpu\": {\"units\": 5}}";
	b.sample_type_config_len = strlen(b.sample_type_config);
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_string_equal(err.msg, "sample_type_config: units must be a string at byte 18");
	b.sample_type_config = "{\"cpu\": {\"aggregation\": \"max\"}}";
	b.sample_type_config_len = strlen(b.sample_type_config);
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "'max', not sum or average");
	b.sample_type_config = "{\"cpu\": {}";
	b.sample_type_config_len = strlen(b.sample_type_config);
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_string_equal(err.msg, "sample_type_config: expected ',' or '}' at byte 10");
	assert_int_equal(ingest__http_status(-EBADMSG), 422);
	dynbuf__free(&cpu);
	dynbuf__free(&heap);
	arena__free(&a);
}

static void test_legacy_folded_and_lines(void **state)
{
	static const char folded[] = "main;work;leaf 3\nmain;work 2\n\nmain;idle 5\n";
	static const char lines[] = "main;work\nmain;work\nmain;idle\n";
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile r;
	struct dynbuf gz;
	struct ingest_query q = {.name = "app{region=eu}",
				 .from = "1700000000",
				 .until = "1700000010",
				 .units = "samples"};
	struct ingest_body b = {.data = folded, .len = sizeof(folded) - 1};

	(void)state;
	/* the default format: folded, typed cpu/samples */
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.format, "folded");
	assert_string_equal(r.sdk.profile_name, "process_cpu");
	assert_int_equal(r.sdk.n_types, 1);
	assert_type(&r.sdk, 0, "cpu", "samples", 10);
	assert_string_equal(r.sdk.units, "samples");
	assert_ptr_equal(r.sdk.payload, folded);

	/* a suffix names the sample type */
	q.name = "app.alloc_space";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.profile_name, "memory");
	assert_type(&r.sdk, 0, "alloc_space", "bytes", 10);
	q.name = "app{region=eu}";

	/* gzipped folded: inflated for decoding, stored as received */
	dynbuf__init(&gz, 0);
	assert_int_equal(util__gzip(folded, sizeof(folded) - 1, -1, &gz), 0);
	b.data = gz.data;
	b.len = gz.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_type(&r.sdk, 0, "cpu", "samples", 10);
	assert_ptr_equal(r.sdk.payload, gz.data);
	assert_int_equal(r.sdk.payload_len, gz.len);

	/* format=collapsed is folded */
	q.format = "collapsed";
	b.data = folded;
	b.len = sizeof(folded) - 1;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.format, "folded");

	/* lines, by format and by content type: weight 1 per line */
	q.format = "lines";
	b.data = lines;
	b.len = sizeof(lines) - 1;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.format, "lines");
	assert_type(&r.sdk, 0, "cpu", "samples", 3);
	q.format = NULL;
	b.content_type = "binary/octet-stream+lines";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.format, "lines");
	assert_type(&r.sdk, 0, "cpu", "samples", 3);

	/* a bad folded line */
	b.content_type = NULL;
	b.data = "a;b 1\na;b x\n";
	b.len = strlen(b.data);
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "undecodable folded profile: ");
	dynbuf__free(&gz);
	arena__free(&a);
}

static void test_legacy_errors(void **state)
{
	static const char garbage[] = "\x08\x96\x01\x12\xff\xff\xff\x7f not a profile";
	struct ingest_limits lim;
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile r;
	struct dynbuf cpu, bomb;
	char *zeros;
	struct ingest_query q = {.name = "app.cpu", .format = "pprof"};
	struct ingest_body b = {.data = garbage, .len = sizeof(garbage) - 1};

	(void)state;
	slurp(GO_DIR "cpu.pprof.gz", &cpu);
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "undecodable pprof: ");
	assert_int_equal(ingest__http_status(-EBADMSG), 422);

	/* pprof without format=pprof is read as folded text, and says so */
	q.format = NULL;
	b.data = cpu.data;
	b.len = cpu.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "undecodable folded profile: ");
	assert_msg_has(&err, "(a binary body without format=pprof is read as folded text)");
	q.format = "pprof";

	/* the real capture cut in half: a truncated gzip stream */
	b.data = cpu.data;
	b.len = cpu.len / 2;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "undecodable pprof: ");

	/* gzip bombs: 100 MiB of zeros against the default 64 MiB cap, 8 MiB
	 * against a 1 MiB cap */
	zeros = calloc(100u << 20, 1);
	assert_non_null(zeros);
	dynbuf__init(&bomb, 0);
	assert_int_equal(util__gzip(zeros, 100u << 20, 1, &bomb), 0);
	b.data = bomb.data;
	b.len = bomb.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EFBIG);
	assert_int_equal(ingest__http_status(-EFBIG), 413);
	dynbuf__reset(&bomb);
	assert_int_equal(util__gzip(zeros, 8u << 20, -1, &bomb), 0);
	free(zeros);
	ingest_limits__default(&lim);
	lim.max_decompressed = 1u << 20;
	b.data = bomb.data;
	b.len = bomb.len;
	assert_int_equal(legacy(&q, &b, &lim, &a, &err, &r), -EFBIG);
	dynbuf__free(&bomb);

	/* formats braid does not read */
	b.data = cpu.data;
	b.len = cpu.len;
	q.format = "xyz";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -ENOTSUP);
	assert_string_equal(err.msg, "unknown format 'xyz' (braid reads pprof, folded and lines)");
	assert_int_equal(ingest__http_status(-ENOTSUP), 422);
	q.format = "jfr"; /* a pprof is no JFR */
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "the jfr part is not a JFR recording");
	assert_int_equal(ingest__http_status(-EBADMSG), 422);
	q.format = "speedscope";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -ENOTSUP);
	q.format = NULL;
	b.content_type = "binary/octet-stream+trie";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -ENOTSUP);
	assert_msg_has(&err, "format 'trie'");
	b.content_type = NULL;
	q.format = "pprof";

	/* query refusals: 400 */
	q.aggregation = "max";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_string_equal(err.msg, "bad aggregationType 'max': expected sum or average");
	q.aggregation = "average";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.aggregation, "average");
	q.from = "1700000010";
	q.until = "1700000000";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_msg_has(&err, "is before from");
	q.until = "yesterday";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_msg_has(&err, "bad until 'yesterday'");
	q.from = q.until = NULL;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_true(r.sdk.from_ns == NOW_NS && r.sdk.until_ns == NOW_NS);
	/* 0, as Pyroscope takes it (the Go SDK's goroutine profile) */
	q.sample_rate = "0";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_int_equal(r.sdk.sample_rate, 0);
	q.sample_rate = "1000000001";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_msg_has(&err, "bad sampleRate '1000000001'");
	q.sample_rate = "-1";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	q.sample_rate = "99x";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	q.sample_rate = "1000000000";
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_int_equal(r.sdk.sample_rate, 1000000000);
	q.sample_rate = NULL;
	q.name = NULL;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_msg_has(&err, "missing name");
	q.name = "app.cpu";

	/* an empty body */
	b.len = 0;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "empty body");
	dynbuf__free(&cpu);
	arena__free(&a);
}

/* A JFR push: checked to be a recording, kept as a multipart form of braid's
 * with the jfr field (and the labels field) byte for byte. */
static void test_legacy_jfr(void **state)
{
	struct ingest_query q = {.name = "shop{env=prod}",
				 .from = "1700000000",
				 .until = "1700000010",
				 .format = "jfr",
				 .spy_name = "javaspy",
				 .sample_rate = "100",
				 .units = "samples",
				 .aggregation = "sum"};
	unsigned char jfr[128] = "FLR";
	struct ingest_body b = {.data = jfr, .len = sizeof(jfr), .multipart = true};
	struct ingest_profile r;
	struct errbuf err = {{0}};
	struct dynbuf gz;
	struct arena a = {0};
	const char *form;
	(void)state;

	dynbuf__init(&gz, 0);
	/* version 2.0, a chunk of the whole 128 bytes */
	jfr[5] = 2;
	jfr[15] = sizeof(jfr);
	b.jfr_labels = "\n\002"
		       "ab";
	b.jfr_labels_len = 4;
	assert_int_equal(util__gzip(jfr, sizeof(jfr), 1, &gz), 0);
	b.data = gz.data;
	b.len = gz.len;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_string_equal(r.sdk.format, "jfr");
	assert_string_equal(r.sdk.profile_name, "jfr");
	assert_string_equal(r.sdk.service, "shop");
	assert_string_equal(r.sdk.spy_name, "javaspy");
	assert_int_equal(r.sdk.n_types, 0);
	assert_int_equal(r.sdk.n_labels, 3);
	assert_string_equal(r.sdk.labels[0].value, "jfr");
	form = r.sdk.payload;
	assert_memory_equal(form, "--braid-jfr-", 12);
	assert_non_null(memmem(form, r.sdk.payload_len, gz.data, gz.len));
	assert_non_null(memmem(form, r.sdk.payload_len, "name=\"labels\"", 13));
	assert_non_null(memmem(form, r.sdk.payload_len,
			       "\n\002"
			       "ab\r\n--braid-jfr-",
			       18));
	/* raw, without labels */
	b.data = jfr;
	b.len = sizeof(jfr);
	b.jfr_labels = NULL;
	b.jfr_labels_len = 0;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), 0);
	assert_null(memmem(r.sdk.payload, r.sdk.payload_len, "name=\"labels\"", 13));
	/* a chunk that claims more than there is */
	jfr[15] = 0;
	jfr[14] = 1;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "first chunk header is not valid");
	/* a form without its jfr field */
	b.data = NULL;
	b.len = 0;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EINVAL);
	assert_string_equal(err.msg, "multipart form has no 'jfr' field");
	/* broken gzip */
	b.data = gz.data;
	b.len = gz.len - 9;
	assert_int_equal(legacy(&q, &b, NULL, &a, &err, &r), -EBADMSG);
	assert_msg_has(&err, "the jfr part:");
	dynbuf__free(&gz);
	arena__free(&a);
}

/* ---- the push API ------------------------------------------------------------- */

struct fixture {
	struct dynbuf go_cpu, go_heap, node_wall, node_heap;
};

static void load_fixtures(struct fixture *f)
{
	slurp(GO_DIR "cpu.pprof.gz", &f->go_cpu);
	slurp(GO_DIR "heap.pprof.gz", &f->go_heap);
	slurp(NODE_DIR "req2.pprof.gz", &f->node_wall);
	slurp(NODE_DIR "req3.pprof.gz", &f->node_heap);
}

static void free_fixtures(struct fixture *f)
{
	dynbuf__free(&f->go_cpu);
	dynbuf__free(&f->go_heap);
	dynbuf__free(&f->node_wall);
	dynbuf__free(&f->node_heap);
}

/* A push request built with the generated protobuf-c code. */
#define MAXL 40
#define MAXS 8
struct pb_series {
	Push__V1__RawProfileSeries s;
	Push__V1__LabelPair l[MAXL], *lp[MAXL];
	Push__V1__RawSample m[MAXS], *mp[MAXS];
};

static void pb_label(struct pb_series *s, const char *name, const char *value)
{
	size_t i = s->s.n_labels++;

	assert_true(i < MAXL);
	s->l[i] = (Push__V1__LabelPair)PUSH__V1__LABEL_PAIR__INIT;
	s->l[i].name = (char *)name;
	s->l[i].value = (char *)value;
	s->lp[i] = &s->l[i];
	s->s.labels = s->lp;
}

static void pb_sample(struct pb_series *s, const struct dynbuf *data, const char *id)
{
	size_t i = s->s.n_samples++;

	assert_true(i < MAXS);
	s->m[i] = (Push__V1__RawSample)PUSH__V1__RAW_SAMPLE__INIT;
	s->m[i].raw_profile.data = (uint8_t *)data->data;
	s->m[i].raw_profile.len = data->len;
	s->m[i].id = (char *)id;
	s->mp[i] = &s->m[i];
	s->s.samples = s->mp;
}

static void pb_init(struct pb_series *s)
{
	memset(s, 0, sizeof(*s));
	s->s = (Push__V1__RawProfileSeries)PUSH__V1__RAW_PROFILE_SERIES__INIT;
}

static void pb_pack(struct pb_series *series, size_t n, struct dynbuf *out)
{
	Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
	Push__V1__RawProfileSeries *sp[8];
	size_t len;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		sp[i] = &series[i].s;
	req.n_series = n;
	req.series = sp;
	len = push__v1__push_request__get_packed_size(&req);
	dynbuf__init(out, 0);
	assert_int_equal(dynbuf__reserve(out, len), 0);
	out->len = push__v1__push_request__pack(&req, (uint8_t *)out->data);
	assert_int_equal(out->len, len);
}

static int push(const char *ct, const void *body, size_t len, const struct ingest_limits *lim,
		struct arena *a, struct errbuf *err, struct ingest_profile **ret, size_t *ret_n)
{
	struct ingest_limits def;

	if (!lim) {
		ingest_limits__default(&def);
		lim = &def;
	}
	return ingest__decode_push(ct, body, len, NOW_NS, lim, a, err, ret, ret_n);
}

/* What the reference request below must decode to. */
static void assert_reference(const struct ingest_profile *p, size_t n, const struct fixture *f,
			     bool copied)
{
	const struct dynbuf *want[4] = {&f->go_cpu, &f->node_wall, &f->go_heap, &f->node_heap};
	const struct store_sdk_profile *s;

	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		s = &p[i].sdk;
		assert_types_of(s, want[i]->data, want[i]->len, PROFILE_FORMAT_PPROF, NULL);
		assert_int_equal(s->payload_len, want[i]->len);
		assert_memory_equal(s->payload, want[i]->data, want[i]->len);
		if (copied)
			assert_ptr_not_equal(s->payload, want[i]->data);
		assert_string_equal(s->format, "pprof");
		assert_null(s->spy_name);
		assert_true(s->from_ns > 0 && s->until_ns >= s->from_ns);
	}
	/* series 0: labels in push order, __ labels (but __session_id__, as
	 * Pyroscope) and empty values dropped */
	for (size_t i = 0; i < 2; i++) {
		s = &p[i].sdk;
		assert_string_equal(s->service, "checkout");
		assert_string_equal(s->profile_name, "process_cpu");
		assert_int_equal(s->n_labels, 5);
		assert_string_equal(s->labels[0].name, "__name__");
		assert_string_equal(s->labels[1].name, "service_name");
		assert_string_equal(s->labels[2].name, "__session_id__");
		assert_string_equal(s->labels[3].name, "region");
		assert_string_equal(s->labels[3].value, "eu-1 \xc3\xa9\xf0\x9f\x98\x80");
		assert_string_equal(s->labels[4].name, "pid");
		assert_int_equal(p[i].pid_label, 1234);
	}
	/* Go's CPU profile: period 10 ms of cpu/nanoseconds = 100 Hz */
	assert_int_equal(p[0].sdk.sample_rate, 100);
	/* series 1 has no service_name: unknown_service, appended */
	for (size_t i = 2; i < 4; i++) {
		s = &p[i].sdk;
		assert_string_equal(s->service, "unknown_service");
		assert_string_equal(s->profile_name, "memory");
		assert_int_equal(s->n_labels, 3);
		assert_string_equal(s->labels[0].name, "env");
		assert_string_equal(s->labels[1].name, "__name__");
		assert_string_equal(s->labels[2].name, "service_name");
		assert_string_equal(s->labels[2].value, "unknown_service");
		assert_int_equal(p[i].pid_label, 0);
		assert_int_equal(s->sample_rate, 0);
	}
}

static void reference_proto(const struct fixture *f, struct pb_series s[3], struct dynbuf *out)
{
	pb_init(&s[0]);
	pb_label(&s[0], "__name__", "process_cpu");
	pb_label(&s[0], "service_name", "checkout");
	pb_label(&s[0], "__session_id__", "x");
	pb_label(&s[0], "region", "eu-1 \xc3\xa9\xf0\x9f\x98\x80");
	pb_label(&s[0], "empty", "");
	pb_label(&s[0], "pid", "1234");
	pb_sample(&s[0], &f->go_cpu, "a");
	pb_sample(&s[0], &f->node_wall, "");
	pb_init(&s[1]);
	/* no samples: contributes nothing, its labels are not looked at */
	pb_label(&s[1], "bad name", "x");
	pb_init(&s[2]);
	pb_label(&s[2], "env", "prod");
	pb_label(&s[2], "__name__", "memory");
	pb_sample(&s[2], &f->go_heap, "");
	pb_sample(&s[2], &f->node_heap, "");
	pb_pack(s, 3, out);
}

static void test_push_proto(void **state)
{
	struct fixture f;
	struct pb_series s[3];
	struct arena a = {0};
	struct errbuf err;
	struct dynbuf body;
	struct ingest_profile *p;
	size_t n;

	(void)state;
	load_fixtures(&f);
	reference_proto(&f, s, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n), 0);
	assert_reference(p, n, &f, true);
	/* the other names of protobuf, parameters and case ignored */
	assert_int_equal(push("Application/X-Protobuf; charset=utf-8", body.data, body.len, NULL,
			      &a, &err, &p, &n),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(push("application/protobuf", body.data, body.len, NULL, &a, &err, &p, &n),
			 0);
	assert_int_equal(n, 4);

	/* an empty request is fine: nothing to store */
	assert_int_equal(push("application/proto", "", 0, NULL, &a, &err, &p, &n), 0);
	assert_int_equal(n, 0);

	/* truncated: 422 */
	assert_int_equal(
		push("application/proto", body.data, body.len - 100, NULL, &a, &err, &p, &n),
		-EBADMSG);
	assert_msg_has(&err, "undecodable push request");

	/* content types the push API does not speak: 415 */
	assert_int_equal(push("text/plain", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EPROTONOSUPPORT);
	assert_string_equal(err.msg, "unsupported content type 'text/plain' (the push API takes "
				     "application/proto or application/json)");
	assert_int_equal(ingest__http_status(-EPROTONOSUPPORT), 415);
	assert_int_equal(push(NULL, body.data, body.len, NULL, &a, &err, &p, &n), -EPROTONOSUPPORT);
	dynbuf__free(&body);
	free_fixtures(&f);
	arena__free(&a);
}

static void b64(struct dynbuf *out, const void *data, size_t len, bool url)
{
	const char *tab = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *d = data;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < len ? (uint32_t)d[i + 1] << 8 : 0) |
			     (i + 2 < len ? d[i + 2] : 0);

		assert_int_equal(dynbuf__putc(out, tab[v >> 18 & 63]), 0);
		assert_int_equal(dynbuf__putc(out, tab[v >> 12 & 63]), 0);
		if (i + 1 < len)
			assert_int_equal(dynbuf__putc(out, tab[v >> 6 & 63]), 0);
		else if (!url)
			assert_int_equal(dynbuf__putc(out, '='), 0);
		if (i + 2 < len)
			assert_int_equal(dynbuf__putc(out, tab[v & 63]), 0);
		else if (!url)
			assert_int_equal(dynbuf__putc(out, '='), 0);
	}
}

/* The reference request in proto3 JSON, written the ways clients do:
 * camelCase and proto field names, both base64 alphabets, escapes, unknown
 * fields, nulls. */
static void reference_json(const struct fixture *f, struct dynbuf *o)
{
	dynbuf__init(o, 0);
	assert_int_equal(dynbuf__printf(o, "{\"series\": [\n {\"labels\": ["
					   "{\"name\": \"__name__\", \"value\": \"process_cpu\"},"
					   "{\"name\": \"service_name\", \"value\": \"checkout\"},"
					   "{\"name\": \"__session_id__\", \"value\": \"x\"},"
					   "{\"name\": \"region\", \"value\": "
					   "\"eu-1 \\u00e9\\ud83d\\ude00\", \"extra\": {}},"
					   "{\"name\": \"empty\"},"
					   "{\"value\": \"1234\", \"name\": \"pid\"}],\n"
					   "  \"samples\": [{\"rawProfile\": \""),
			 0);
	b64(o, f->go_cpu.data, f->go_cpu.len, false);
	assert_int_equal(dynbuf__printf(o, "\", \"ID\": \"a\"}, {\"raw_profile\": \""), 0);
	b64(o, f->node_wall.data, f->node_wall.len, true);
	assert_int_equal(dynbuf__printf(o,
					"\", \"id\": null}]},\n"
					" {\"labels\": [{\"name\": \"bad name\", \"value\": "
					"\"x\"}], \"samples\": []},\n"
					" {\"unknown\": [1, -2.5e+3, true, false, null, \"s\\n\"],"
					" \"labels\": [{\"name\": \"env\", \"value\": \"prod\"},"
					"{\"name\": \"__name__\", \"value\": \"memory\"}],"
					" \"samples\": [{\"rawProfile\": \""),
			 0);
	b64(o, f->go_heap.data, f->go_heap.len, false);
	assert_int_equal(dynbuf__printf(o, "\"}, {\"rawProfile\": \""), 0);
	b64(o, f->node_heap.data, f->node_heap.len, false);
	assert_int_equal(dynbuf__printf(o, "\"}]}\n], \"other\": {\"a\": [[]]}}\r\n"), 0);
}

static void test_push_json(void **state)
{
	struct fixture f;
	struct arena a = {0};
	struct errbuf err;
	struct dynbuf body;
	struct ingest_profile *p;
	size_t n;

	(void)state;
	load_fixtures(&f);
	reference_json(&f, &body);
	if (push("application/json; charset=utf-8", body.data, body.len, NULL, &a, &err, &p, &n))
		fail_msg("%s", err.msg);
	assert_reference(p, n, &f, true);
	assert_int_equal(push("application/json", "{}", 2, NULL, &a, &err, &p, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
		push("application/json", " {\"series\": null} ", 18, NULL, &a, &err, &p, &n), 0);
	assert_int_equal(n, 0);
	/* null for a series' labels or samples, as for any repeated field */
	{
		const char *nulls = "{\"series\": [{\"labels\": null, \"samples\": null}, "
				    "{\"samples\": null, \"labels\": null}]}";

		if (push("application/json", nulls, strlen(nulls), NULL, &a, &err, &p, &n))
			fail_msg("%s", err.msg);
		assert_int_equal(n, 0);
	}
	dynbuf__free(&body);
	free_fixtures(&f);
	arena__free(&a);
}

/* Bodies the JSON reader refuses, with the byte it stopped at. */
static void test_push_json_errors(void **state)
{
	static const struct {
		const char *body, *msg;
	} t[] = {
		{"", "invalid JSON push request: expected an object at byte 0"},
		{"[]", "expected an object at byte 0"},
		{"{\"series\":[}", "invalid JSON push request: expected an object at byte 11"},
		{"{\"a\":[1,]}", "unexpected character ']' at byte 8"},
		{"{\"series\":[],}", "expected a member name at byte 13"},
		{"{\"series\":[]} x", "unexpected data after the JSON value at byte 14"},
		{"{\"a\":01}", "expected ',' or '}' at byte 6"},
		{"{\"a\":1.}", "bad number at byte 7"},
		{"{\"a\":-}", "bad number at byte 6"},
		{"{\"a\":tru}", "unexpected character 't' at byte 5"},
		{"{\"a\":\"\\ud800\"}", "high surrogate \\ud800 without its low surrogate"},
		{"{\"a\":\"\\udc00\"}", "lone low surrogate"},
		{"{\"a\":\"\\x\"}", "bad escape '\\x' at byte 6"},
		{"{\"a\":\"\x01\"}", "control character 0x01 in a string at byte 6"},
		{"{\"a\":\"\xc3\x28\"}", "invalid UTF-8 in a string at byte 6"},
		{"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
		{"{\"a\":\"abc", "unterminated string"},
		{"{\"a\" 1}", "expected ':' at byte 5"},
		{"{\"series\":[],\"series\":[]}", "duplicate field 'series'"},
		{"{\"series\":{}}", "expected an array at byte 10"},
		{"{\"series\":[{\"labels\":[{\"name\":5}]}]}", "name must be a string at byte 30"},
		{"{\"series\":[{\"samples\":[{\"rawProfile\":\"AAA A\"}]}]}",
		 "series 0 sample 0: rawProfile is not base64"},
		{"{\"series\":[{\"samples\":[{\"rawProfile\":\"AA+_\"}]}]}", "is not base64"},
		{"{\"series\":[{\"samples\":[{\"rawProfile\":\"A\"}]}]}", "is not base64"},
		{"{\"series\":[{\"samples\":[{\"rawProfile\":\"AA=A\"}]}]}", "is not base64"},
		{"{\"series\":[{\"samples\":[{\"rawProfile\":\"AAA==\"}]}]}", "is not base64"},
		{"{\"series\":[{\"labels\":[{\"name\":\"a\\u0000b\",\"value\":\"1\"}]}]}",
		 "holds a NUL character"},
	};
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile *p;
	struct dynbuf deep;
	size_t n;

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		int r = push("application/json", t[i].body, strlen(t[i].body), NULL, &a, &err, &p,
			     &n);

		if (r != -EBADMSG)
			fail_msg("body %zu '%s': %d (%s)", i, t[i].body, r, r ? err.msg : "");
		assert_msg_has(&err, t[i].msg);
	}

	/* 32 levels of nesting are fine, 33 are not */
	dynbuf__init(&deep, 0);
	assert_int_equal(dynbuf__printf(&deep, "{\"x\":%.31s1%.31s}",
					"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
					"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
			 0);
	assert_int_equal(push("application/json", deep.data, deep.len, NULL, &a, &err, &p, &n), 0);
	dynbuf__reset(&deep);
	assert_int_equal(dynbuf__printf(&deep, "{\"x\":%.32s1%.32s}",
					"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
					"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
			 0);
	assert_int_equal(push("application/json", deep.data, deep.len, NULL, &a, &err, &p, &n),
			 -EBADMSG);
	assert_msg_has(&err, "nested deeper than 32 levels at byte 36");
	dynbuf__free(&deep);
	arena__free(&a);
}

/* Label and cap refusals, the same through both encodings. */
static void test_push_refusals(void **state)
{
	struct fixture f;
	struct pb_series s[4];
	struct ingest_limits lim;
	struct arena a = {0};
	struct errbuf err;
	struct dynbuf body, js;
	struct ingest_profile *p;
	char names[32][8];
	size_t n;

	(void)state;
	load_fixtures(&f);

	/* no __name__: 400 */
	pb_init(&s[0]);
	pb_label(&s[0], "service_name", "svc");
	pb_sample(&s[0], &f.go_cpu, "");
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_string_equal(err.msg, "series 0 has no __name__ label (the profile type, e.g. "
				     "process_cpu)");
	dynbuf__free(&body);

	/* 30 labels are fine, 31 are not */
	pb_label(&s[0], "__name__", "process_cpu");
	for (size_t i = 0; i < 28; i++) {
		snprintf(names[i], sizeof(names[i]), "l%zu", i);
		pb_label(&s[0], names[i], "v");
	}
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n), 0);
	assert_int_equal(p[0].sdk.n_labels, 30);
	dynbuf__free(&body);
	pb_label(&s[0], "l28", "v");
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_string_equal(err.msg, "series 0 has 31 labels, at most 30 (service_name and "
				     "__name__ included)");
	dynbuf__free(&body);

	/* a bad name, a duplicate, a value over its cap */
	pb_init(&s[0]);
	pb_label(&s[0], "__name__", "process_cpu");
	pb_label(&s[0], "a-b", "1");
	pb_sample(&s[0], &f.go_cpu, "");
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_msg_has(&err, "series 0: bad character '-' at offset 1 of label name 'a-b'");
	dynbuf__free(&body);
	s[0].l[1].name = "__name__";
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_string_equal(err.msg, "series 0: duplicate label '__name__'");
	dynbuf__free(&body);
	s[0].l[1].name = "";
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_string_equal(err.msg, "series 0: label 1 has an empty name");
	dynbuf__free(&body);

	/* an undecodable sample names its series and sample: 422 */
	pb_init(&s[0]);
	pb_label(&s[0], "__name__", "process_cpu");
	pb_sample(&s[0], &f.go_cpu, "");
	js = f.go_heap;
	js.len /= 2;
	pb_sample(&s[0], &js, "");
	pb_pack(s, 1, &body);
	assert_int_equal(push("application/proto", body.data, body.len, NULL, &a, &err, &p, &n),
			 -EBADMSG);
	assert_msg_has(&err, "series 0 sample 1: undecodable pprof: ");
	dynbuf__free(&body);

	/* over max_series and max_samples: 413, in both encodings */
	ingest_limits__default(&lim);
	lim.max_series = 2;
	lim.max_samples = 3;
	for (size_t i = 0; i < 3; i++) {
		pb_init(&s[i]);
		pb_label(&s[i], "__name__", "process_cpu");
		pb_sample(&s[i], &f.go_cpu, "");
	}
	pb_pack(s, 3, &body);
	assert_int_equal(push("application/proto", body.data, body.len, &lim, &a, &err, &p, &n),
			 -E2BIG);
	assert_string_equal(err.msg, "push request has 3 series, at most 2");
	assert_int_equal(ingest__http_status(-E2BIG), 413);
	dynbuf__free(&body);
	pb_sample(&s[0], &f.go_cpu, "");
	pb_sample(&s[1], &f.go_cpu, "");
	pb_pack(s, 2, &body);
	assert_int_equal(push("application/proto", body.data, body.len, &lim, &a, &err, &p, &n),
			 -E2BIG);
	assert_string_equal(err.msg, "push request has 4 samples, at most 3");
	dynbuf__free(&body);
	dynbuf__init(&js, 0);
	assert_int_equal(dynbuf__printf(&js, "{\"series\":[{},{},{\"labels\":[]}]}"), 0);
	assert_int_equal(push("application/json", js.data, js.len, &lim, &a, &err, &p, &n), -E2BIG);
	assert_string_equal(err.msg, "push request has 3 series, at most 2");
	dynbuf__reset(&js);
	assert_int_equal(dynbuf__printf(&js, "{\"series\":[{\"samples\":[{},{},{},{}]}]}"), 0);
	assert_int_equal(push("application/json", js.data, js.len, &lim, &a, &err, &p, &n), -E2BIG);
	assert_string_equal(err.msg, "push request has 4 samples, at most 3");

	/* JSON: the same label rules */
	dynbuf__reset(&js);
	assert_int_equal(dynbuf__printf(&js, "{\"series\":[{\"labels\":[{\"name\":\"service_name\","
					     "\"value\":\"s\"}],\"samples\":[{\"rawProfile\":\""),
			 0);
	b64(&js, f.go_cpu.data, f.go_cpu.len, false);
	assert_int_equal(dynbuf__printf(&js, "\"}]}]}"), 0);
	assert_int_equal(push("application/json", js.data, js.len, NULL, &a, &err, &p, &n),
			 -EINVAL);
	assert_msg_has(&err, "series 0 has no __name__ label");
	dynbuf__free(&js);
	free_fixtures(&f);
	arena__free(&a);
}

/* A body of tiny messages may not make the decoder allocate thirty times
 * its size: the request is refused as over the caps. */
static void test_push_proto_amplification(void **state)
{
	struct ingest_limits lim;
	struct arena a = {0};
	struct errbuf err;
	struct ingest_profile *p;
	size_t n, k = 2u << 20, len = 0, l = 2 * k;
	unsigned char *body = malloc(2 * k + 16);

	(void)state;
	assert_non_null(body);
	/* one series (0a LEN) holding k empty labels (0a 00 each) */
	body[len++] = 0x0a;
	for (; l >= 0x80; l >>= 7)
		body[len++] = (unsigned char)(0x80 | (l & 0x7f));
	body[len++] = (unsigned char)l;
	for (size_t i = 0; i < k; i++) {
		body[len++] = 0x0a;
		body[len++] = 0x00;
	}
	ingest_limits__default(&lim);
	assert_int_equal(push("application/proto", body, len, &lim, &a, &err, &p, &n), -E2BIG);
	assert_msg_has(&err, "needs over");
	assert_true(a.used < (32u << 20));
	free(body);
	arena__free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_name_fixture),
		cmocka_unit_test(test_name_suffixes),
		cmocka_unit_test(test_name_errors),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_legacy_jfr),
		cmocka_unit_test(test_legacy_node_wall),
		cmocka_unit_test(test_legacy_node_heap),
		cmocka_unit_test(test_legacy_go_multipart),
		cmocka_unit_test(test_legacy_folded_and_lines),
		cmocka_unit_test(test_legacy_errors),
		cmocka_unit_test(test_push_proto),
		cmocka_unit_test(test_push_json),
		cmocka_unit_test(test_push_json_errors),
		cmocka_unit_test(test_push_refusals),
		cmocka_unit_test(test_push_proto_amplification),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
