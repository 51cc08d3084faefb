/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ingest server: libmicrohttpd daemons (one per listen address, each
 * with a pool of threads on epoll, so a slow client only ever holds a socket,
 * never a thread), request bodies gathered under a cap, the decoders in
 * decode.c, the attribution of a push to a host process, the commit to the
 * store, and the reply. Nothing is answered 200 before the store committed.
 */
#define _GNU_SOURCE
#include "ingest.h"

#include "collector/collector.h"

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

#define LISTEN_BACKLOG	     1024
#define CONN_MEMORY_LIMIT    (128u << 10) /* per connection: the request line and headers */
#define POST_BUFFER	     (64u << 10)  /* the multipart parser's line buffer */
#define MAX_TENANT	     150	  /* Pyroscope's limit on a tenant id */
#define RECENT_PIDS	     64		  /* PIDs that pushed lately: first to scan */
#define SERVICE_CACHE	     64
#define SERVICE_CACHE_TTL_NS (60ll * 1000000000)
#define MAX_CREDENTIAL	     1024
#define STOP_GRACE_MS	     5000

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

#define N_STATUS INGEST_N_STATUS
static const int tracked_status[N_STATUS - 1] = {200, 400, 401, 404, 405, 413,
						 415, 422, 429, 500, 503};

static const char *const decode_reason_names[INGEST_DR_COUNT] = {
	"invalid",     "too_large", "content_type", "unsupported_format",
	"undecodable", "gzip",	    "multipart",
};

#define N_BUCKETS INGEST_N_BUCKETS
static const double latency_buckets[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						  0.05,	  0.1,	 0.25,	 0.5,	1,    2.5};

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

static void ctr_add(atomic_uint_fast64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static uint64_t ctr_get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(tracked_status); i++)
		if (tracked_status[i] == status)
			return i;
	return N_STATUS - 1;
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

/* ---- per connection and per request ------------------------------------------ */

/* Who is at the other end of a connection, found once per connection. */
struct conn_ctx {
	bool resolved;
	bool found;
	enum store_attribution how; /* STORE_ATTR_PEER_TCP or _PEER_UNIX when found */
	struct collector_proc proc;
};

struct request {
	enum ingest_endpoint ep;
	struct timespec start;
	bool counted_body;
	int early_status; /* a reply decided before the body was read (0: none) */
	char early_msg[256];
	struct dynbuf body;
	bool body_too_large;
	/* multipart fields */
	struct dynbuf mp_profile, mp_config;
	bool mp_has_profile, mp_has_config, mp_prev_profile;
	bool mp_too_large;
};

static void request_free(struct request *r)
{
	if (!r)
		return;
	dynbuf__free(&r->body);
	dynbuf__free(&r->mp_profile);
	dynbuf__free(&r->mp_config);
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

/* ---- addresses ------------------------------------------------------------------------ */

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return sa->sa_family == AF_UNIX;
}

static void format_address(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, size, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
	}
}

/* Parses "ADDR:PORT", "[V6]:PORT" or "unix:PATH" into *ss. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *ret_len,
			struct errbuf *err)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs, *he;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		size_t n = strlen(spec + 5);

		if (!n || n >= sizeof(un->sun_path))
			return errbuf__set(err, -EINVAL,
					   "listen address '%s': a Unix socket path must have 1 to "
					   "%zu bytes",
					   spec, sizeof(un->sun_path) - 1);
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, spec + 5, n + 1);
		*ret_len = (socklen_t)sizeof(*un);
		return 0;
	}
	if (spec[0] == '[') {
		hs = spec + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			goto bad;
		colon = he + 1;
	} else {
		hs = spec;
		colon = strrchr(spec, ':');
		if (!colon)
			goto bad;
		he = colon;
		if (memchr(hs, ':', (size_t)(he - hs)))
			goto bad; /* an IPv6 address needs brackets */
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs)
		goto bad;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535)
		goto bad;
	if (spec[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*in6);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;

		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
			goto bad;
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*in4);
	}
	return 0;
bad:
	return errbuf__set(err, -EINVAL,
			   "listen address '%s' is not ADDR:PORT, [IPV6]:PORT or unix:PATH "
			   "(e.g. 127.0.0.1:4040, [::1]:4040, unix:/run/braid.sock)",
			   spec);
}

/* A Unix socket file left by a process that is gone is removed; one that a
 * live server answers on is not. */
static int clear_stale_socket(const char *path, struct errbuf *err)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r = 0;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return errbuf__set(err, -EEXIST,
				   "listen address unix:%s: the file exists and is "
				   "not a socket",
				   path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf__set(err, -errno, "socket: %s", strerror(errno));
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0)
		r = errbuf__set(err, -EADDRINUSE,
				"listen address unix:%s: another server "
				"answers there",
				path);
	else if (unlink(path) < 0 && errno != ENOENT)
		r = errbuf__set(err, -errno, "cannot remove the stale socket %s: %s", path,
				strerror(errno));
	close(fd);
	return r;
}

/* Binds and listens on one address; fills l. */
static int open_listener(const char *spec, bool have_auth, struct listener *l, struct errbuf *err)
{
	struct sockaddr_storage ss, bound;
	socklen_t len = 0, blen = sizeof(bound);
	int fd = -1, one = 1, r;

	r = parse_listen(spec, &ss, &len, err);
	if (r < 0)
		return r;
	if (!have_auth && !is_loopback((struct sockaddr *)&ss))
		return errbuf__set(
			err, -EPERM,
			"listening on %s without authentication would accept profiles "
			"from anyone who can reach it: give --auth-token or --basic-auth, "
			"or listen on a loopback address or a Unix socket",
			spec);
	if (ss.ss_family == AF_UNIX) {
		r = clear_stale_socket(((struct sockaddr_un *)&ss)->sun_path, err);
		if (r < 0)
			return r;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = errbuf__set(err, -errno, "socket for %s: %s", spec, strerror(errno));
		goto cleanup;
	}
	if (ss.ss_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		r = errbuf__set(err, -errno, "setsockopt on %s: %s", spec, strerror(errno));
		goto cleanup;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		r = errbuf__set(err, -errno, "cannot listen on %s: %s%s", spec, strerror(errno),
				errno == EADDRINUSE ? " (is another braid or Pyroscope running?)"
						    : "");
		goto cleanup;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = errbuf__set(err, -errno, "listen on %s: %s", spec, strerror(errno));
		goto cleanup;
	}
	if (ss.ss_family == AF_UNIX) {
		snprintf(l->unix_path, sizeof(l->unix_path), "%s",
			 ((struct sockaddr_un *)&ss)->sun_path);
		format_address((struct sockaddr *)&ss, l->address, sizeof(l->address));
	} else {
		if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) {
			r = errbuf__set(err, -errno, "getsockname: %s", strerror(errno));
			goto cleanup;
		}
		format_address((struct sockaddr *)&bound, l->address, sizeof(l->address));
	}
	l->fd = fd;
	fd = -1;
	r = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- attribution ------------------------------------------------------------------------ */

static void remember_pid(struct ingest *in, int32_t pid)
{
	pthread_mutex_lock(&in->cache_lock);
	for (size_t i = 0; i < in->n_recent; i++)
		if (in->recent[i] == pid)
			goto out;
	in->recent[in->recent_next] = pid;
	in->recent_next = (in->recent_next + 1) % RECENT_PIDS;
	if (in->n_recent < RECENT_PIDS)
		in->n_recent++;
out:
	pthread_mutex_unlock(&in->cache_lock);
}

/* Finds the process at the other end of the connection: SO_PEERCRED for a
 * Unix socket; for loopback TCP, the client's socket in /proc/net/tcp{,6}
 * and the process holding it. Done once per connection. */
static void resolve_peer(struct ingest *in, struct MHD_Connection *c, struct conn_ctx *cc)
{
	const union MHD_ConnectionInfo *ci;
	struct sockaddr_storage self, peer;
	socklen_t slen = sizeof(self), plen = sizeof(peer);
	int32_t pid = 0, hints[RECENT_PIDS];
	size_t n_hints;
	uint64_t inode;
	int fd;

	cc->resolved = true;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	fd = ci->connect_fd;
	if (getsockname(fd, (struct sockaddr *)&self, &slen) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return;
	if (self.ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.pid <= 0)
			return;
		pid = cred.pid;
		cc->how = STORE_ATTR_PEER_UNIX;
	} else {
		if (!is_loopback((struct sockaddr *)&peer))
			return; /* another host: its processes are not ours to find */
		if (collector__tcp_socket_inode(in->proc_root, (struct sockaddr *)&peer,
						(struct sockaddr *)&self, &inode) < 0)
			return;
		pthread_mutex_lock(&in->cache_lock);
		n_hints = in->n_recent;
		memcpy(hints, in->recent, n_hints * sizeof(hints[0]));
		pthread_mutex_unlock(&in->cache_lock);
		if (collector__socket_owner(in->proc_root, inode, hints, n_hints, &pid) < 0)
			return;
		cc->how = STORE_ATTR_PEER_TCP;
	}
	if (collector__proc_read(in->proc_root, pid, &cc->proc) < 0)
		return;
	cc->found = true;
	remember_pid(in, pid);
}

/* The cache entry of a service; cache_lock held. NULL if none. */
static struct service_entry *service_entry(struct ingest *in, const char *service)
{
	for (size_t i = 0; i < in->n_services; i++)
		if (strcmp(in->services[i].service, service) == 0)
			return &in->services[i];
	return NULL;
}

/* The process whose environment names `service`, from a cache refreshed
 * every SERVICE_CACHE_TTL_NS (a scan reads every process's environ). */
static int32_t service_pid(struct ingest *in, const char *service, int64_t now)
{
	struct service_entry *e = NULL;
	int32_t pid = 0;
	int r;

	pthread_mutex_lock(&in->cache_lock);
	e = service_entry(in, service);
	if (e && now - e->checked_ns < SERVICE_CACHE_TTL_NS) {
		pid = e->pid;
		pthread_mutex_unlock(&in->cache_lock);
		return pid;
	}
	pthread_mutex_unlock(&in->cache_lock);

	r = collector__find_service(in->proc_root, service, &pid);
	if (r == -ENOTUNIQ)
		ctr_add(&in->m.service_ambiguous, 1);
	if (r < 0)
		pid = 0;

	/* looked up again: another thread may have added it meanwhile */
	pthread_mutex_lock(&in->cache_lock);
	e = service_entry(in, service);
	if (!e) {
		char *copy = strdup(service);

		if (copy) {
			/* a full cache replaces its oldest entry */
			size_t slot = in->n_services;

			if (slot == SERVICE_CACHE) {
				slot = 0;
				for (size_t i = 1; i < SERVICE_CACHE; i++)
					if (in->services[i].checked_ns <
					    in->services[slot].checked_ns)
						slot = i;
				free(in->services[slot].service);
			} else {
				in->n_services++;
			}
			e = &in->services[slot];
			e->service = copy;
		}
	}
	if (e) {
		e->pid = pid;
		e->checked_ns = now;
	}
	pthread_mutex_unlock(&in->cache_lock);
	return pid;
}

/* The process a profile came from, in order of trust: the connection's
 * peer, the pid label, the service name in a process environment. A pid
 * label that names another process than the peer is ignored and counted
 * (a containerised SDK reports its namespace PID: that one agrees). Fills
 * *proc (caller releases it unless it is the connection's) and returns the
 * method; STORE_ATTR_NONE when nothing matched. */
static enum store_attribution attribute(struct ingest *in, struct conn_ctx *cc,
					const struct ingest_profile *p, int64_t now,
					struct collector_proc *proc, bool *ret_owned)
{
	int32_t pid;

	*ret_owned = false;
	if (cc->found) {
		if (p->pid_label && p->pid_label != cc->proc.pid && p->pid_label != cc->proc.ns_pid)
			ctr_add(&in->m.pid_label_conflicts, 1);
		*proc = cc->proc;
		return cc->how;
	}
	if (p->pid_label && collector__proc_read(in->proc_root, p->pid_label, proc) == 0) {
		*ret_owned = true;
		return STORE_ATTR_PID_LABEL;
	}
	pid = service_pid(in, p->sdk.service, now);
	if (pid && collector__proc_read(in->proc_root, pid, proc) == 0) {
		*ret_owned = true;
		return STORE_ATTR_SERVICE_ENV;
	}
	return STORE_ATTR_NONE;
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
		how[i] = attribute(in, cc, p, now, &proc, &owned);
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
	if (strcmp(key, "profile") == 0) {
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

		/* Pyroscope looks at multipart only when no format says otherwise. */
		if (is_multipart(ctype) && (!known_format || strcmp(fmt, "pprof") == 0)) {
			struct MHD_PostProcessor *pp;
			enum MHD_Result ok;

			dynbuf__init(&rq->mp_profile, in->opts.max_body);
			dynbuf__init(&rq->mp_config, INGEST_MAX_SAMPLE_TYPE_CONFIG);
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
				r = errbuf__set(&err, -EFBIG,
						"a multipart field is over its cap (profile: %zu "
						"bytes, sample_type_config: %u bytes)",
						in->opts.max_body, INGEST_MAX_SAMPLE_TYPE_CONFIG);
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
		resolve_peer(in, c, cc);
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
		r = store__stats(s, false, &st);
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
		r = open_listener(listen[i], in->auth_token || in->basic_user, &in->listeners[i],
				  err);
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
