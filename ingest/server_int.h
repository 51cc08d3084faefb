/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ingest server's files share (server.c, listen.c, attribute.c):
 * the server's state, its counters and the connection's peer. Only they
 * include it; the decoders have ingest_int.h.
 */
#ifndef BRAID_INGEST_SERVER_INT_H
#define BRAID_INGEST_SERVER_INT_H

#include "collector/collector.h"
#include "ingest/ingest.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define RECENT_PIDS	     64 /* PIDs that pushed lately: first to scan */
#define SERVICE_CACHE	     64
#define SERVICE_CACHE_TTL_NS (60ll * 1000000000)
#define N_STATUS	     INGEST_N_STATUS
#define N_BUCKETS	     INGEST_N_BUCKETS

/* ---- the counters ------------------------------------------------------------ */

struct metrics {
	atomic_uint_fast64_t requests[INGEST_EP_COUNT][N_STATUS];
	atomic_uint_fast64_t bytes_in[INGEST_EP_COUNT];
	atomic_uint_fast64_t decode_errors[INGEST_DR_COUNT];
	atomic_uint_fast64_t profiles_stored;
	atomic_uint_fast64_t attribution[STORE_ATTR_COUNT];
	atomic_uint_fast64_t pid_label_conflicts;
	atomic_uint_fast64_t service_ambiguous;
	atomic_uint_fast64_t store_full, store_unavailable, store_errors;
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t connections_total;
	atomic_int_fast64_t connections_open;
	atomic_int_fast64_t requests_in_flight;
	atomic_bool stopping; /* ingest__stop began: no new request is taken */
	/* duration of ingest requests (the three ingest endpoints) */
	atomic_uint_fast64_t latency[N_BUCKETS + 1];
	atomic_uint_fast64_t latency_sum_us, latency_count;
};

static inline void ctr_add(atomic_uint_fast64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t ctr_get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- the server's state ------------------------------------------------------ */

struct listener {
	int fd;
	struct MHD_Daemon *daemon;
	char address[128 + sizeof(((struct sockaddr_un *)0)->sun_path)];
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* to unlink at stop */
};

struct service_entry {
	char *service;
	int32_t pid; /* 0: none or ambiguous */
	int64_t checked_ns;
};

struct ingest {
	struct ingest_options opts;
	struct ingest_limits limits;
	char *proc_root;
	char *auth_token;
	char *basic_user, *basic_pass;
	struct listener listeners[INGEST_MAX_LISTEN];
	size_t n_listeners;
	struct metrics m;

	/* Store connections: one per request in flight, reused. */
	pthread_mutex_t pool_lock;
	struct store **pool;
	size_t n_pool, pool_cap;

	/* Attribution caches. */
	pthread_mutex_t cache_lock;
	int32_t recent[RECENT_PIDS];
	size_t n_recent, recent_next;
	struct service_entry services[SERVICE_CACHE];
	size_t n_services;
};

/* Who is at the other end of a connection, found once per connection. */
struct conn_ctx {
	bool resolved;
	bool found;
	enum store_attribution how; /* STORE_ATTR_PEER_TCP or _PEER_UNIX when found */
	struct collector_proc proc;
};

/* ---- listen.c: the addresses ------------------------------------------------- */

/* A loopback address (127/8, ::1, a v4-mapped 127/8) or a Unix socket. */
bool ingest__is_loopback(const struct sockaddr *sa);
/* Binds and listens on one address ("ADDR:PORT", "[V6]:PORT" or
 * "unix:PATH"); fills l's fd, address and unix_path. An address that is not
 * loopback is refused (-EPERM) unless have_auth. A Unix socket file that a
 * gone server left is replaced; one a live server answers on is -EADDRINUSE. */
int ingest__open_listener(const char *spec, bool have_auth, struct listener *l, struct errbuf *err);

/* ---- attribute.c: the process a push came from --------------------------------- */

/* Finds the process at the other end of the connection, once per
 * connection: fills cc (cc->found when there is one). */
void ingest__resolve_peer(struct ingest *in, struct MHD_Connection *c, struct conn_ctx *cc);
/* The process a profile came from, in order of trust: the connection's
 * peer, the pid label, the service name in a process environment. A pid
 * label that names another process than the peer is ignored and counted
 * (a containerised SDK reports its namespace PID: that one agrees). Fills
 * *proc (caller releases it when *ret_owned) and returns the method;
 * STORE_ATTR_NONE when nothing matched. */
enum store_attribution ingest__attribute(struct ingest *in, struct conn_ctx *cc,
					 const struct ingest_profile *p, int64_t now,
					 struct collector_proc *proc, bool *ret_owned);

#endif
