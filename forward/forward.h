/* SPDX-License-Identifier: Apache-2.0 */
/*
 * forward: braid's Pyroscope client, the only module that speaks HTTP to the
 * upstream. It delivers the store's outbox (merged, eBPF-only and SDK
 * pass-through profiles) and removes an item only once the upstream said
 * 2xx. See docs/forward.md.
 *
 *   push API (default)  POST {url}/push.v1.PusherService/Push, a
 *                       push.v1.PushRequest in application/proto: one series
 *                       per item, its pprof gzipped, its stable ID (the
 *                       store's raw_id) as RawSample.ID, several items per
 *                       request up to a size cap
 *   legacy ingest       POST {url}/ingest?name=...&format=pprof, one item per
 *                       request (the way the SDKs push)
 *
 * What a reply means:
 *   2xx                          delivered: the items leave the outbox
 *   no reply (connect, timeout,
 *   TLS...), 5xx, 408, 429       retried with exponential backoff and jitter;
 *                                a Retry-After (seconds or an HTTP date) is
 *                                honoured; the pass stops (the upstream is
 *                                down or busy: no point hammering it)
 *   any other 4xx                refused for good: a request of several items
 *                                is split and each item sent alone, so that
 *                                only the one the upstream refuses becomes a
 *                                dead letter, with the status and the reply
 * A series' items go in order (the store hands them out so).
 */
#ifndef BRAID_FORWARD_H
#define BRAID_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

#define FORWARD_DEFAULT_TIMEOUT_MS	   30000
#define FORWARD_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define FORWARD_DEFAULT_MAX_REQUEST_BYTES  (1u << 20) /* profiles' bytes in one push request */
#define FORWARD_MAX_BATCH_ITEMS		   64	      /* items in one push request */
#define FORWARD_DEFAULT_BACKOFF_MIN_MS	   1000
#define FORWARD_DEFAULT_BACKOFF_MAX_MS	   300000
#define FORWARD_MAX_RETRY_AFTER_MS	   3600000    /* a longer Retry-After is cut to this */
#define FORWARD_MAX_REPLY_BYTES		   (64 << 10) /* of a reply body, kept for messages */
#define FORWARD_MAX_HEADERS		   64	      /* --upstream-header */
#define FORWARD_MAX_SECRET		   4096
/* Pyroscope's limits on a series (see DESIGN.md): labels beyond are left
 * out, __name__, service_name and braid_view first kept. */
#define FORWARD_MAX_LABELS	30
#define FORWARD_SESSION_LABEL	"__session_id__" /* the one __ label kept, but __name__ */
#define FORWARD_MAX_LABEL_NAME	1024
#define FORWARD_MAX_LABEL_VALUE 2048
/* A push that fails with a 5xx other than 502, 503 or 504 is split, each item
 * sent alone, once one of its items has failed this many times before; an
 * item that fails so alone for the tenth time, while the upstream took or
 * refused others within the last 5 minutes (or the longest backoff, if
 * longer), becomes a dead letter: it would hold up its series. */
#define FORWARD_SPLIT_AFTER	 2
#define FORWARD_POISON_AFTER	 10
#define FORWARD_JUDGED_WINDOW_MS 300000

enum forward_api {
	FORWARD_API_PUSH = 0,
	FORWARD_API_INGEST,
};
const char *forward__api_name(enum forward_api api);

struct forward_options {
	/* The upstream's base URL: http[s]://host[:port][/prefix], e.g.
	 * "http://pyroscope:4040" or "https://profiles-prod-001.grafana.net". */
	const char *url;
	enum forward_api api;
	const char *tenant;	    /* X-Scope-OrgID when an item has none; NULL: none */
	const char *bearer_token;   /* "Authorization: Bearer T"; NULL: none */
	const char *basic_auth;	    /* "user:password"; NULL: none */
	const char *const *headers; /* "Name: value" sent with every request */
	size_t n_headers;
	const char *ca_file;			/* trust these CAs (PEM); NULL: the system's */
	const char *cert_file, *key_file;	/* a client certificate (mutual TLS) */
	bool insecure;				/* skip TLS verification: only when asked */
	unsigned timeout_ms;			/* a whole request; 0: the default */
	unsigned connect_timeout_ms;		/* 0: the default */
	size_t max_request_bytes;		/* 0: the default; an item larger goes alone */
	int64_t backoff_min_ms, backoff_max_ms; /* 0: the defaults */
	const char *user_agent;			/* NULL: "braid" */
};

/* Checks the options (a URL with a scheme and a host, header syntax, no
 * CR/LF in any value, both or neither of cert and key); -EINVAL with a
 * message in err. */
int forward__check_options(const struct forward_options *o, struct errbuf *err);

/* ---- the parts, pure functions (tested on their own) ----------------------- */

/* The labels an item goes upstream with: names made valid for Pyroscope
 * (a character outside [A-Za-z0-9_.] becomes '_', a leading digit gets a
 * '_' before it), "__"-prefixed labels other than __name__ and
 * __session_id__ left out (the upstream drops them), a repeated name left out (the first wins),
 * values cut to FORWARD_MAX_LABEL_VALUE bytes, at most FORWARD_MAX_LABELS labels. *ret_labels is an
 * array of *ret_n in the arena; *ret_dropped (may be NULL) counts the labels left out. */
int forward__labels(const struct label *in, size_t n, struct arena *a, struct label **ret_labels,
		    size_t *ret_n, size_t *ret_dropped);

/* Encodes a push.v1.PushRequest of n items (one series each, labels through
 * forward__labels, raw_profile the payload, gzipped here if it is not, ID
 * the item's raw_id) into out (reset first). */
int forward__encode_push(const struct store_outbox_item *const *items, size_t n,
			 struct dynbuf *out);

/* The legacy name "app{k=v,...}" of a label set: app is service_name
 * ("unknown_service" if none; a character outside [A-Za-z0-9_./-] becomes
 * '_'), the tags are the other labels but __name__ (',', '}', '{' and '='
 * in names and values become '_'). Appended to out. */
int forward__legacy_name(const struct label *labels, size_t n, struct dynbuf *out);

enum forward_outcome {
	FORWARD_DELIVERED, /* 2xx */
	FORWARD_RETRY,	   /* try again later */
	FORWARD_REFUSED,   /* refused for good */
};
/* What an HTTP status means (0: no reply at all). */
enum forward_outcome forward__outcome(long status);

/* Retry-After's value (delay-seconds or an HTTP date) as a delay in ms from
 * now_ns, at most FORWARD_MAX_RETRY_AFTER_MS; -1 when absent or unreadable. */
int64_t forward__retry_after_ms(const char *value, int64_t now_ns);

/* The delay before attempt number `attempts` + 1 (attempts >= 1 failed so
 * far): min * 2^(attempts-1), capped at max, then "equal jitter": a
 * uniformly random point of its upper half, from `random`. */
int64_t forward__backoff_ms(int64_t attempts, int64_t min_ms, int64_t max_ms, uint64_t random);

/* ---- delivery ------------------------------------------------------------------ */

struct forwarder;

/* Everything delivery did, since the forwarder started (forward__stats) or
 * in one pass (forward__run). */
struct forward_stats {
	int64_t passes;
	int64_t requests;			    /* HTTP requests sent (or tried) */
	int64_t requests_failed;		    /* ... without a 2xx */
	int64_t delivered;			    /* outbox items the upstream took */
	int64_t delivered_bytes;		    /* their profiles' bytes */
	int64_t retries;			    /* items put back for a later attempt */
	int64_t dead_letters;			    /* items refused for good */
	int64_t net_errors;			    /* requests without a reply */
	int64_t status_429, status_4xx, status_5xx; /* replies by status (4xx: not 429) */
	int64_t splits; /* requests resent item by item: refused, or failed again (5xx) */
	int64_t labels_dropped;
	int64_t last_delivered_ns, last_failed_ns; /* wall clock, 0: never */
	int64_t backoff_until_ns;		   /* the upstream is left alone until then */
};

/* A forwarder on a store connection it uses but does not own. -EINVAL for
 * bad options, -ENOMEM; a message in err. */
int forward__new(const struct forward_options *o, struct store *s, struct errbuf *err,
		 struct forwarder **ret);
void forward__free(struct forwarder *f);

/* One delivery pass at now_ns: sends the items due until none is left, the
 * upstream fails (retry), or deadline_ns (0: none) passes. flush: every
 * waiting item is due now, backoff or not (the last pass at stop, one try
 * each). ret (may be NULL) gets what the pass did. Returns 0, or a negative
 * errno when the store failed (the message in forward__errmsg): an upstream
 * failure is not an error of the pass. */
int forward__run(struct forwarder *f, int64_t now_ns, bool flush, int64_t deadline_ns,
		 struct forward_stats *ret);

/* Makes the pass in progress end after its current request, from any
 * thread (the agent stopping: a request the upstream is taking finishes,
 * so that its items are not sent twice); the next flush pass clears it. */
void forward__stop_soon(struct forwarder *f);

/* Ends a request in progress and the pass it is in, now, from any thread
 * (the agent stopping): the items stay in the outbox untouched, no attempt
 * counted; passes end at once until a flush pass (which clears it). */
void forward__interrupt(struct forwarder *f);

/* Totals over every pass. */
void forward__stats(const struct forwarder *f, struct forward_stats *ret);
/* The last upstream or store error ("" if none). */
const char *forward__errmsg(const struct forwarder *f);

#endif
