/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: braid's Pyroscope-compatible HTTP endpoint, the one the language
 * SDKs push to unchanged (see ../shared/DESIGN.md, "The wire protocols").
 *
 *   POST /ingest, /pyroscope/ingest      the legacy API: pprof, multipart,
 *                                        folded, lines
 *   POST /push.v1.PusherService/Push     the push API (Connect unary):
 *                                        application/proto or application/json
 *   GET  /ready                          health
 *   GET  /metrics                        Prometheus metrics, written by the
 *                                        caller (ingest_options.metrics)
 *                                        from ingest__counters
 *   GET  /, /report                      the agent's live page, when it
 *                                        serves one (ingest_options.page)
 *
 * A push is decoded (to validate it and to read its sample types and
 * totals), attributed to the host process that sent it, committed to the
 * store, and only then answered 200. The payload is stored as received.
 *
 * Two layers: the decoders below are pure functions of a request's parts
 * (no I/O, all memory from an arena), so they can be tested and fuzzed on
 * their own; the server (libmicrohttpd) gathers those parts, attributes,
 * stores and replies.
 *
 * Errors are negative errnos that map to HTTP statuses (ingest__http_status):
 *   -EINVAL          400 invalid_argument (bad name, labels, time, request)
 *   -EACCES          401 unauthenticated
 *   -EFBIG, -E2BIG   413 (body, decompressed size or a count over its cap)
 *   -EPROTONOSUPPORT 415 (content type the push endpoint does not speak)
 *   -EBADMSG         422 (undecodable body)
 *   -ENOTSUP         422 (a format braid does not read yet: jfr, trie, ...)
 *   -ENOSPC          429 (store full; the reply carries Retry-After)
 *   -EBUSY, -EIO     503 (store unavailable)
 *   anything else    500
 */
#ifndef BRAID_INGEST_H
#define BRAID_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "store/store.h"
#include "util/util.h"

#define INGEST_DEFAULT_LISTEN		"127.0.0.1:4040" /* the SDKs' default server address */
#define INGEST_DEFAULT_MAX_BODY		(32u << 20)	 /* bytes of a request body */
#define INGEST_DEFAULT_MAX_DECOMPRESSED (64u << 20)	 /* bytes after gunzip */
#define INGEST_DEFAULT_MAX_CONNECTIONS	4096
#define INGEST_DEFAULT_TIMEOUT_S	60 /* idle seconds before a connection is closed */
#define INGEST_DEFAULT_RETRY_AFTER_S	30 /* Retry-After on 429 */
#define INGEST_MAX_LISTEN		64 /* listen addresses */

/* Pyroscope's limits on a series: labels (service_name and __name__
 * included), label name and value bytes. */
#define INGEST_MAX_LABELS      30
#define INGEST_MAX_LABEL_NAME  1024
#define INGEST_MAX_LABEL_VALUE 2048
/* The one __ label Pyroscope keeps from a push (the Go SDK sends it on
 * every push, an id of the process's session); braid keeps it too. */
#define INGEST_SESSION_LABEL "__session_id__"
#define INGEST_MAX_APP_NAME  1024
/* Caps on one push request. */
#define INGEST_MAX_SERIES	      1024	  /* series in one request */
#define INGEST_MAX_SAMPLES	      4096	  /* raw profiles in one request, all series */
#define INGEST_MAX_SAMPLE_TYPE_CONFIG (64u << 10) /* bytes of a multipart sample_type_config */
#define INGEST_MAX_JFR_LABELS	      (4u << 20)  /* bytes of a JFR push's labels field */

struct ingest_limits {
	size_t max_decompressed; /* bytes of a body or raw profile after gunzip */
	size_t max_labels;	 /* per series, service_name and __name__ included */
	size_t max_series;
	size_t max_samples;
	struct profile_limits profile; /* for decoding each profile */
};
/* Fills *lim with the defaults above. */
void ingest_limits__default(struct ingest_limits *lim);

/* The HTTP status for a negative errno from this module or the store, and
 * the Connect code its JSON error carries ("invalid_argument", ...). */
int ingest__http_status(int err);
const char *ingest__error_code(int status);

/* ---- decoding ------------------------------------------------------------ */

/* The legacy `name`: "app.suffix{k=v,k2=v2}". The app name is
 * [A-Za-z0-9_./-]+ and non-empty; label keys [A-Za-z0-9_.]+; values any
 * bytes but ',' and '}' (spaces around keys and values are trimmed). */
struct ingest_name {
	const char *app;     /* as given, e.g. "checkout.cpu" */
	const char *service; /* a service_name tag's value, else the app without a known
			      * profile-type suffix: "checkout" */
	const char
		*profile_name; /* __name__ the suffix implies ("process_cpu", ...), NULL if none */
	const char *sample_type; /* the suffix's sample type ("cpu", "inuse_space", ...), NULL */
	const char *sample_unit; /* its unit ("samples", "bytes", ...), NULL */
	struct label *tags;	 /* the labels in braces, in order, but service_name */
	size_t n_tags;
};
/* Parses and validates a name; every string in ret is allocated from a.
 * -EINVAL with a message naming the fault: empty app name, a bad character
 * (quoted, with its offset), a missing '}', a key without '=', a duplicate
 * key, more than max_labels - 2 tags, a key or value over its cap. */
int ingest__parse_name(const char *name, size_t max_labels, struct arena *a, struct errbuf *err,
		       struct ingest_name *ret);

/* A legacy `from`/`until`: all digits, by digit count 19 = ns, 16 = µs,
 * 13 = ms, otherwise seconds. NULL or "" gives now_ns. -EINVAL otherwise. */
int ingest__parse_time(const char *s, int64_t now_ns, int64_t *ret_ns);

/* A point in time: RFC 3339 ("2026-11-21T10:00:00Z", "+02:00" offsets,
 * fractions dropped), Unix time in digits (ingest's units by digit count),
 * "now", or a duration ago ("15m", "2h", "90s", "1d"); wall-clock ns in
 * *ret. -EINVAL otherwise. The agent's live /report and braid report take their window in it. */
int ingest__parse_when(const char *s, int64_t now, int64_t *ret);

/* One profile ready for the store: everything in sdk but received_ns,
 * tenant, process_id and attribution, which the server fills. Strings,
 * labels and types live in the arena; payload points into the request
 * (the body, or the multipart field, or the push request's raw_profile),
 * exactly as received. */
struct ingest_profile {
	struct store_sdk_profile sdk;
	int32_t pid_label; /* the value of a "pid" label, 0 if none or not a PID */
};

/* The parts of a legacy /ingest request. Query values are URL-decoded
 * strings, NULL when absent. */
struct ingest_query {
	const char *name, *from, *until, *format, *sample_rate, *spy_name, *units, *aggregation;
};
struct ingest_body {
	const char *content_type; /* the header, NULL if none */
	const void *data;	  /* the body; for multipart the `profile` field (format=jfr:
				   * the `jfr` field) */
	size_t len;
	const void *jfr_labels; /* format=jfr: the multipart `labels` field, NULL if none */
	size_t jfr_labels_len;
	bool multipart;			/* the server split a multipart/form-data body */
	const char *sample_type_config; /* multipart field (JSON), NULL if none */
	size_t sample_type_config_len;
	bool prev_profile; /* multipart had a prev_profile field: refused */
};

/* Decodes a legacy ingest. The body format comes from `format`, then the
 * content type (Pyroscope's order): pprof (raw, gzip by magic), multipart,
 * lines, folded (the default); trie, tree and speedscope are -ENOTSUP
 * naming the format. A jfr push (the `jfr` field and the optional `labels`
 * field of a multipart form, or the whole body) is checked to be a JFR
 * recording and kept for pass-through as a multipart form of braid's
 * (format "jfr", profile name "jfr", no sample types). service_name and __name__ are derived as
 * Pyroscope does: the name's suffix if it is a known profile type, else the pprof's sample types
 * (wall, process_cpu, memory, mutex, block, goroutines). */
int ingest__decode_legacy(const struct ingest_query *q, const struct ingest_body *b, int64_t now_ns,
			  const struct ingest_limits *lim, struct arena *a, struct errbuf *err,
			  struct ingest_profile *ret);

/* Decodes a push request body (already inflated if Content-Encoding was
 * gzip): content type "application/proto" (also application/protobuf,
 * application/x-protobuf) or "application/json" (proto3 JSON: base64
 * rawProfile/raw_profile). One profile per raw sample of every series; each
 * series needs a __name__ label (service_name defaults to
 * "unknown_service"), labels are checked against the caps, "__"-prefixed
 * labels other than __name__ are dropped. *ret_profiles is an array of
 * *ret_n elements in the arena. -EPROTONOSUPPORT for another content type. */
int ingest__decode_push(const char *content_type, const void *body, size_t len, int64_t now_ns,
			const struct ingest_limits *lim, struct arena *a, struct errbuf *err,
			struct ingest_profile **ret_profiles, size_t *ret_n);

/* ---- the server ---------------------------------------------------------- */

struct ingest;

/* A request for the live page: its path and query arguments (URL-decoded,
 * NULL when absent). */
struct ingest_page {
	const char *path; /* "/" or "/report" */
	const char *service, *pid, *from, *until, *format;
};
/* Renders a page into out and returns its HTTP status (200, or 4xx/5xx with
 * a plain-text message in out); *ret_type gets the content type. s is the
 * request thread's store connection. */
typedef int (*ingest_page_fn)(void *ctx, struct store *s, const struct ingest_page *req,
			      struct dynbuf *out, const char **ret_type);
/* Writes /metrics into out: 0, or a negative errno (the reply is 500). st
 * is the store's statistics, read for this scrape; NULL when the store did
 * not answer. */
typedef int (*ingest_metrics_fn)(void *ctx, struct ingest *in, const struct store_stats *st,
				 struct dynbuf *out);

struct ingest_options {
	/* Addresses to listen on: "ADDR:PORT", "[V6ADDR]:PORT", "unix:PATH";
	 * port 0 picks a free port (see ingest__address). NULL/0: the default. */
	const char *const *listen;
	size_t n_listen;
	unsigned threads;	     /* request threads; 0: the number of CPUs, at least 2 */
	unsigned max_connections;    /* 0: INGEST_DEFAULT_MAX_CONNECTIONS */
	unsigned timeout_s;	     /* idle connection timeout; 0: INGEST_DEFAULT_TIMEOUT_S */
	size_t max_body;	     /* 0: INGEST_DEFAULT_MAX_BODY */
	struct ingest_limits limits; /* zeroed: the defaults */
	unsigned retry_after_s;	     /* 0: INGEST_DEFAULT_RETRY_AFTER_S */
	/* Credentials an ingest request must carry (either one will do); both
	 * NULL: none. A listen address that is not loopback or a Unix socket
	 * is refused without them. */
	const char *auth_token;	    /* "Authorization: Bearer TOKEN" */
	const char *basic_auth;	    /* "user:password" for "Authorization: Basic ..." */
	struct store_options store; /* how request threads open the store */
	const char *proc_root;	    /* NULL: "/proc" */
	/* GET /metrics: writes the Prometheus text (ingest__counters, the
	 * store's, the other stages'). NULL: /metrics is 404. */
	ingest_metrics_fn metrics;
	void *metrics_ctx;
	/* GET / and GET /report; NULL: they are 404. They need the ingest
	 * credentials when some are set. */
	ingest_page_fn page;
	void *page_ctx;
};

/* Checks the options, binds every address and starts serving. On failure
 * returns a negative errno with a message in err (a bad address, a port in
 * use, a remote address without auth, a store that does not open). */
int ingest__start(const struct ingest_options *opts, struct errbuf *err, struct ingest **ret);
/* Stops accepting, lets requests in progress finish, frees everything. */
void ingest__stop(struct ingest *in);

/* The i-th bound address ("127.0.0.1:4040", "[::1]:4040", "unix:/run/x"),
 * NULL past the last one. */
const char *ingest__address(const struct ingest *in, size_t i);

/* ---- the counters, for /metrics ----------------------------------------- */

/* The endpoints requests are counted by. */
enum ingest_endpoint {
	INGEST_EP_INGEST,
	INGEST_EP_PYROSCOPE_INGEST,
	INGEST_EP_PUSH, /* the three above are the ingest endpoints */
	INGEST_EP_READY,
	INGEST_EP_METRICS,
	INGEST_EP_INDEX,
	INGEST_EP_REPORT,
	INGEST_EP_OTHER,
	INGEST_EP_COUNT
};
/* Why a request's content was refused. */
enum ingest_decode_reason {
	INGEST_DR_INVALID,	/* 400: name, labels, time, parameters */
	INGEST_DR_TOO_LARGE,	/* 413: body, inflated size or a count cap */
	INGEST_DR_CONTENT_TYPE, /* 415 */
	INGEST_DR_UNSUPPORTED,	/* 422: a format braid does not read yet */
	INGEST_DR_UNDECODABLE,	/* 422: the body does not decode */
	INGEST_DR_GZIP,		/* 422: Content-Encoding gzip that does not inflate */
	INGEST_DR_MULTIPART,	/* 422: a multipart body that does not parse */
	INGEST_DR_COUNT
};
#define INGEST_N_STATUS	 12 /* statuses counted apart; the last: any other */
#define INGEST_N_BUCKETS 12 /* request duration buckets, +Inf aside */

/* The path an endpoint is counted as ("/ingest", ..., "other"), a decode
 * reason's name ("invalid", ...), the i-th counted status (0: "other") and
 * the i-th duration bucket's upper bound in seconds. */
const char *ingest__endpoint_name(enum ingest_endpoint e);
const char *ingest__decode_reason_name(enum ingest_decode_reason d);
int ingest__counted_status(size_t i);
double ingest__duration_bucket(size_t i);

/* What the server counted since it started. */
struct ingest_counters {
	uint64_t requests[INGEST_EP_COUNT][INGEST_N_STATUS];
	uint64_t bytes_in[INGEST_EP_COUNT];
	uint64_t decode_errors[INGEST_DR_COUNT];
	uint64_t profiles_stored;
	uint64_t attribution[STORE_ATTR_COUNT];
	uint64_t pid_label_conflicts, service_ambiguous;
	uint64_t store_full, store_unavailable, store_errors;
	uint64_t auth_failures;
	uint64_t connections_total;
	int64_t connections_open;
	/* ingest requests by duration: bucket i counts those in
	 * (bucket i-1, bucket i]; the last one, those past every bucket */
	uint64_t duration[INGEST_N_BUCKETS + 1];
	uint64_t duration_sum_us, duration_count;
};
/* A snapshot of the counters (each read on its own, not all at once). */
void ingest__counters(struct ingest *in, struct ingest_counters *ret);

#endif
