/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A load generator for `braid ingest`, the figures of its acceptance point:
 * committed pushes per second and their latency, on loopback, with the real
 * Node SDK push (the request path and query it sends, its 1.3 KB gzipped
 * pprof body).
 *
 * N connections, one thread each, keep-alive, one request in flight per
 * connection (a closed loop: send, read the whole response, send again).
 * The server answers 200 only once the profile is committed, so every 200
 * is a committed profile. A warm-up (not counted) comes first; then every
 * response that completes inside the measured window counts: its latency,
 * from before the send to the end of the response, goes into a histogram
 * of 1 us buckets up to 100 ms, 1 ms buckets up to 10 s, and one above.
 *
 *   bench_ingest_load --url http://HOST:PORT | --port P
 *                     [--path-file F] [--body F] [--fixtures DIR]
 *                     [--connections N] [--seconds S] [--warmup S]
 *                     [--content-type T] [--json]
 *
 * Prints the machine and the load, then one row per figure:
 *   NAME  conns=N  VALUE  target>=N|target<N|target=none  ok|BELOW|ABOVE|-
 * or, with --json, one JSON object. Exits 1 when a request is answered
 * with anything but 200, goes unanswered (the connection closed or reset
 * under it, 10 s of silence) or a socket call fails; 2 on a bad option;
 * never because a target was missed: the figures are for a person to read.
 */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef BRAID_FIXTURES
#define BRAID_FIXTURES "../shared/fixtures"
#endif
#define FIXTURE_PATH_REL "node-sdk-0.6.4/req2.path"
#define FIXTURE_BODY_REL "node-sdk-0.6.4/req2.pprof.gz"

#define TARGET_REQ_PER_S 5000
#define TARGET_P99_MS	 5

#define MAX_CONNECTIONS	  128
#define MAX_SECONDS	  3600
#define MAX_PATH_LINE	  8192	      /* the request target, one line */
#define MAX_BODY	  (32u << 20) /* braid ingest's default --max-body */
#define MAX_CONTENT_TYPE  256
#define RBUF_SIZE	  (16u << 10) /* a response line or header must fit */
#define MAX_HEADER_BYTES  (64u << 10) /* a response's status line and headers */
#define MAX_RESPONSE_BODY (16u << 20) /* what is read of a response body */
#define IO_TIMEOUT_MS	  10000	      /* silence on a socket after which a request is lost */
#define MAX_LOST_IN_A_ROW 100	      /* a connection gives up after this many */
#define SNIPPET		  160	      /* bytes kept of the first non-200 body */

/* Latency histogram: 1 us buckets below 100 ms, 1 ms buckets from 100 ms to
 * 10 s, then one bucket for the rest. */
#define HIST_FINE    100000
#define HIST_COARSE  9900
#define HIST_BUCKETS (HIST_FINE + HIST_COARSE + 1)

static struct config {
	char host[256];
	char port[16];
	bool have_target;
	const char *fixtures;
	const char *path_file; /* NULL: the fixture */
	const char *body_file; /* NULL: the fixture */
	const char *content_type;
	unsigned connections;
	double seconds, warmup;
	bool json;
} cfg = {
	.host = "127.0.0.1",
	.content_type = "application/octet-stream",
	.connections = 2,
	.seconds = 10.0,
	.warmup = 1.0,
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- latencies ------------------------------------------------------------ */

struct hist {
	uint32_t *b; /* HIST_BUCKETS counts */
	uint64_t n;
	int64_t max_ns;
};

static size_t hist_bucket(int64_t ns)
{
	int64_t us = ns / 1000, ms = ns / 1000000;

	if (us < HIST_FINE)
		return (size_t)(us < 0 ? 0 : us);
	if (ms < (HIST_FINE + HIST_COARSE * 1000) / 1000)
		return HIST_FINE + (size_t)(ms - HIST_FINE / 1000);
	return HIST_BUCKETS - 1;
}

/* The largest latency a bucket holds, in ns (INT64_MAX for the last). */
static int64_t hist_upper_ns(size_t i)
{
	if (i < HIST_FINE)
		return (int64_t)(i + 1) * 1000;
	if (i < HIST_FINE + HIST_COARSE)
		return ((int64_t)(i - HIST_FINE) + HIST_FINE / 1000 + 1) * 1000000;
	return INT64_MAX;
}

static void hist__add(struct hist *h, int64_t ns)
{
	h->b[hist_bucket(ns)]++;
	h->n++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

/* The q-quantile (nearest rank) of a merged histogram, in ns: the upper
 * edge of its bucket, no more than the largest latency seen. */
static int64_t hist_quantile(const uint64_t *b, uint64_t n, int64_t max_ns, double q)
{
	uint64_t rank, seen = 0;
	size_t i;

	if (!n)
		return 0;
	rank = (uint64_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += b[i];
		if (seen >= rank)
			return hist_upper_ns(i) < max_ns ? hist_upper_ns(i) : max_ns;
	}
	return max_ns;
}

/* ---- one connection ---------------------------------------------------------- */

struct conn {
	int fd;
	size_t start, end; /* unread bytes: buf[start, end) */
	char buf[RBUF_SIZE];
};

/* What a response said, and the first bytes of its body. */
struct response {
	int status;
	bool close; /* the server closes the connection after it */
	uint64_t body_len;
	size_t header_bytes;
	char snippet[SNIPPET + 1];
	size_t snippet_len;
};

static void conn__close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->start = c->end = 0;
}

/* Connects c to ai. TCP_NODELAY: a request or response is one write,
 * Nagle would only hold back the last segment of a large one. Returns 0 or
 * a negative errno, and the failing call in *ret_what. */
static int conn__open(struct conn *c, const struct addrinfo *ai, const char **ret_what)
{
	struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
	int one = 1, fd, r;

	c->start = c->end = 0;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*ret_what = "socket";
		return -errno;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		*ret_what = "setsockopt TCP_NODELAY";
		goto fail;
	}
	/* a server that stops reading must not block a send for ever */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		*ret_what = "setsockopt SO_SNDTIMEO";
		goto fail;
	}
	while ((r = connect(fd, ai->ai_addr, ai->ai_addrlen)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		*ret_what = "connect";
		goto fail;
	}
	c->fd = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

static int conn__send_all(struct conn *c, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into c->buf. Returns the count, 0 at end of stream,
 * -E2BIG when the buffer is full of unread bytes, -ETIMEDOUT after
 * IO_TIMEOUT_MS of silence, or a negative errno. */
static int conn__fill(struct conn *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;
	int r;

	if (c->start == c->end) {
		c->start = c->end = 0;
	} else if (c->end == sizeof(c->buf)) {
		if (!c->start)
			return -E2BIG;
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	for (;;) {
		r = poll(&pfd, 1, IO_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, c->buf + c->end, sizeof(c->buf) - c->end, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c->end += (size_t)n;
		return (int)n;
	}
}

/* The next line of the response, without its CR LF, NUL-terminated in
 * c->buf (valid until the next read). An end of stream is -EPIPE. */
static int conn__line(struct conn *c, char **ret_line, size_t *ret_len)
{
	char *nl;
	size_t len;
	int r;

	while (!(nl = memchr(c->buf + c->start, '\n', c->end - c->start))) {
		r = conn__fill(c);
		if (r == 0)
			return -EPIPE;
		if (r < 0)
			return r;
	}
	len = (size_t)(nl - (c->buf + c->start));
	*ret_line = c->buf + c->start;
	c->start += len + 1;
	if (len && (*ret_line)[len - 1] == '\r')
		len--;
	(*ret_line)[len] = '\0';
	*ret_len = len;
	return 0;
}

/* Consumes n body bytes (all of them to the end of the stream if
 * until_eof), keeping the first SNIPPET in rsp. */
static int conn__skip(struct conn *c, uint64_t n, bool until_eof, struct response *rsp)
{
	int r;

	while (n || until_eof) {
		size_t avail = c->end - c->start, take;

		if (!avail) {
			r = conn__fill(c);
			if (r == 0 && until_eof)
				return 0;
			if (r == 0)
				return -EPIPE;
			if (r < 0)
				return r;
			continue;
		}
		take = until_eof || avail < n ? avail : (size_t)n;
		if (rsp->body_len + take > MAX_RESPONSE_BODY)
			return -EFBIG;
		if (rsp->snippet_len < SNIPPET) {
			size_t k = SNIPPET - rsp->snippet_len < take ? SNIPPET - rsp->snippet_len
								     : take;

			size_t j;

			/* printable: it goes into a one-line message */
			for (j = 0; j < k; j++) {
				char ch = c->buf[c->start + j];

				rsp->snippet[rsp->snippet_len + j] =
					(unsigned char)ch < ' ' || ch == 0x7f ? ' ' : ch;
			}
			rsp->snippet_len += k;
			rsp->snippet[rsp->snippet_len] = '\0';
		}
		c->start += take;
		rsp->body_len += take;
		if (!until_eof)
			n -= take;
	}
	return 0;
}

/* A decimal or hexadecimal count with nothing after it but what `rest`
 * allows; -EBADMSG otherwise. */
static int parse_count(const char *s, int base, const char *rest, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!((base == 10 && *s >= '0' && *s <= '9') ||
	      (base == 16 && isxdigit((unsigned char)*s))))
		return -EBADMSG;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno)
		return -EBADMSG;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end && !strchr(rest, *end))
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* Does a comma-separated header value hold `token` (case-insensitive)? */
static bool has_token(const char *value, const char *token)
{
	size_t len = strlen(token);
	const char *p = value;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, len) == 0 &&
		    (p[len] == '\0' || p[len] == ',' || p[len] == ' ' || p[len] == '\t' ||
		     p[len] == ';'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

static int read_chunked(struct conn *c, struct response *rsp)
{
	char *line;
	size_t len;
	uint64_t size;
	int r;

	for (;;) {
		r = conn__line(c, &line, &len);
		if (r < 0)
			return r;
		r = parse_count(line, 16, ";", &size);
		if (r < 0)
			return r;
		if (size > MAX_RESPONSE_BODY)
			return -EFBIG;
		if (!size)
			break;
		r = conn__skip(c, size, false, rsp);
		if (r < 0)
			return r;
		r = conn__line(c, &line, &len); /* the CR LF after the data */
		if (r < 0)
			return r;
		if (len)
			return -EBADMSG;
	}
	/* trailers, up to an empty line */
	do {
		r = conn__line(c, &line, &len);
		if (r < 0)
			return r;
		rsp->header_bytes += len + 2;
		if (rsp->header_bytes > MAX_HEADER_BYTES)
			return -E2BIG;
	} while (len);
	return 0;
}

/* Reads one whole response to a POST: its status line, headers and body
 * (by Content-Length, chunked, or to the end of the stream), skipping
 * interim 1xx responses. Returns 0 or a negative errno (-EBADMSG: not
 * HTTP; -EPIPE: the stream ended before the response did). */
static int read_response(struct conn *c, struct response *rsp)
{
	char *line;
	size_t len;
	int r;

	memset(rsp, 0, sizeof(*rsp));
	for (;;) {
		uint64_t content_length = 0;
		bool have_length = false, chunked = false, http10, keep_alive = false;

		r = conn__line(c, &line, &len);
		if (r < 0)
			return r;
		rsp->header_bytes += len + 2;
		/* "HTTP/1.1 200 OK" */
		if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 ||
		    (line[7] != '0' && line[7] != '1') || line[8] != ' ' || line[9] < '1' ||
		    line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
		    line[11] > '9' || (len > 12 && line[12] != ' '))
			return -EBADMSG;
		http10 = line[7] == '0';
		rsp->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
		for (;;) {
			char *colon, *value, *end;

			r = conn__line(c, &line, &len);
			if (r < 0)
				return r;
			rsp->header_bytes += len + 2;
			if (rsp->header_bytes > MAX_HEADER_BYTES)
				return -E2BIG;
			if (!len)
				break;
			colon = memchr(line, ':', len);
			if (!colon || colon == line)
				return -EBADMSG;
			*colon = '\0';
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			end = line + len;
			while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
				*--end = '\0';
			if (strcasecmp(line, "Content-Length") == 0) {
				uint64_t v;

				r = parse_count(value, 10, "", &v);
				if (r < 0 || (have_length && v != content_length))
					return -EBADMSG;
				content_length = v;
				have_length = true;
			} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
				chunked = has_token(value, "chunked");
			} else if (strcasecmp(line, "Connection") == 0) {
				if (has_token(value, "close"))
					rsp->close = true;
				if (has_token(value, "keep-alive"))
					keep_alive = true;
			}
		}
		if (http10 && !keep_alive)
			rsp->close = true;
		if (rsp->status == 101)
			return -EBADMSG; /* no upgrade was asked for */
		if (rsp->status < 200)
			continue;
		if (rsp->status == 204 || rsp->status == 304)
			return 0;
		if (chunked)
			return read_chunked(c, rsp);
		if (have_length) {
			if (content_length > MAX_RESPONSE_BODY)
				return -EFBIG;
			return conn__skip(c, content_length, false, rsp);
		}
		rsp->close = true;
		return conn__skip(c, 0, true, rsp);
	}
}

/* ---- the workers ------------------------------------------------------------ */

struct shared {
	const struct addrinfo *ai;
	const char *req;
	size_t req_len;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready;	   /* workers connected (or failed), under lock */
	bool go;	   /* under lock */
	int64_t t_measure; /* written before go */
	_Atomic int64_t deadline;
	atomic_bool stop;
};

struct worker {
	pthread_t thread;
	struct shared *sh;
	struct conn *conn;
	struct hist hist; /* responses completed in the measured window */
	uint64_t sent, ok, ok_measured, answered;
	uint64_t lost, reconnects;
	uint64_t status[600];
	int first_bad_status;
	char first_bad_body[SNIPPET + 1];
	char first_lost[200];
	int rc; /* a failure that stopped the worker */
	char msg[256];
};

static void worker__ready(struct worker *w)
{
	struct shared *sh = w->sh;

	pthread_mutex_lock(&sh->lock);
	sh->ready++;
	pthread_cond_broadcast(&sh->cond);
	while (!sh->go)
		pthread_cond_wait(&sh->cond, &sh->lock);
	pthread_mutex_unlock(&sh->lock);
}

static const char *errno_name(int r)
{
	switch (r) {
	case -EBADMSG:
		return "not an HTTP/1.x response";
	case -EPIPE:
		return "the server closed the connection";
	case -ETIMEDOUT:
		return "no progress for " UTIL_STR(IO_TIMEOUT_MS) " ms";
	case -E2BIG:
		return "response headers too long";
	case -EFBIG:
		return "response body too long";
	default:
		return strerror(-r);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct conn *c = w->conn;
	struct response rsp;
	const char *what = "";
	unsigned lost_in_a_row = 0;
	int64_t t0, t1;
	int r;

	r = conn__open(c, sh->ai, &what);
	if (r < 0) {
		snprintf(w->msg, sizeof(w->msg), "%s: %s", what, strerror(-r));
		w->rc = r;
		atomic_store(&sh->stop, true);
	}
	worker__ready(w);
	if (w->rc < 0)
		return NULL;
	while (!atomic_load(&sh->stop)) {
		t0 = mono_ns();
		if (t0 >= atomic_load(&sh->deadline))
			break;
		if (c->fd < 0) {
			r = conn__open(c, sh->ai, &what);
			if (r < 0) {
				snprintf(w->msg, sizeof(w->msg), "reconnecting: %s: %s", what,
					 strerror(-r));
				w->rc = r;
				break;
			}
			w->reconnects++;
		}
		w->sent++;
		r = conn__send_all(c, sh->req, sh->req_len);
		what = "sending";
		if (r == 0) {
			r = read_response(c, &rsp);
			what = "reading the response";
		}
		t1 = mono_ns();
		if (r < 0) {
			/* The request may or may not have been committed: it is lost
			 * to the client, as it would be to an SDK. */
			w->lost++;
			if (!w->first_lost[0])
				snprintf(w->first_lost, sizeof(w->first_lost),
					 "its request %" PRIu64 ", %s: %s", w->sent, what,
					 errno_name(r));
			conn__close(c);
			if (++lost_in_a_row >= MAX_LOST_IN_A_ROW) {
				snprintf(w->msg, sizeof(w->msg),
					 "%u requests in a row went unanswered; giving up",
					 lost_in_a_row);
				w->rc = r;
				break;
			}
			continue;
		}
		lost_in_a_row = 0;
		w->answered++;
		w->status[rsp.status]++;
		if (rsp.status == 200) {
			w->ok++;
		} else if (!w->first_bad_status) {
			w->first_bad_status = rsp.status;
			memcpy(w->first_bad_body, rsp.snippet, rsp.snippet_len + 1);
		}
		if (t1 >= sh->t_measure && t1 < atomic_load(&sh->deadline)) {
			hist__add(&w->hist, t1 - t0);
			if (rsp.status == 200)
				w->ok_measured++;
		}
		if (rsp.close)
			conn__close(c);
	}
	conn__close(c);
	return NULL;
}

/* ---- inputs --------------------------------------------------------------- */

/* "http://HOST:PORT" or "http://[V6]:PORT", an optional "/" after it. */
static int parse_url(const char *url)
{
	const char *p = url, *host, *host_end, *port;
	size_t hlen, plen;

	if (strncmp(p, "http://", 7) != 0)
		return -EINVAL;
	p += 7;
	if (*p == '[') {
		host = ++p;
		host_end = strchr(p, ']');
		if (!host_end)
			return -EINVAL;
		p = host_end + 1;
	} else {
		host = p;
		p += strcspn(p, ":/");
		host_end = p;
	}
	hlen = (size_t)(host_end - host);
	if (!hlen || hlen >= sizeof(cfg.host))
		return -EINVAL;
	if (*p == ':') {
		port = ++p;
		plen = strspn(p, "0123456789");
		p += plen;
	} else {
		port = "80";
		plen = 2;
	}
	if (!plen || plen >= sizeof(cfg.port) || (*p && strcmp(p, "/") != 0))
		return -EINVAL;
	memcpy(cfg.host, host, hlen);
	cfg.host[hlen] = '\0';
	memcpy(cfg.port, port, plen);
	cfg.port[plen] = '\0';
	return 0;
}

static int fixture_path(char *out, size_t size, const char *rel)
{
	const char *dir = cfg.fixtures ? cfg.fixtures : getenv("BRAID_FIXTURES");
	int n;

	if (!dir || !dir[0])
		dir = BRAID_FIXTURES;
	n = snprintf(out, size, "%s/%s", dir, rel);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The request target: the first line of the file, which must be an
 * origin-form target ("/ingest?...") with no bytes a request line can't
 * carry. */
static int load_target(const char *path, struct dynbuf *out)
{
	struct errbuf err = {{0}};
	size_t len, i;
	int r;

	r = util__read_file(path, MAX_PATH_LINE, &err, out);
	if (r < 0) {
		fprintf(stderr, "bench_ingest_load: %s\n", err.msg);
		return r;
	}
	len = out->data ? strcspn(out->data, "\r\n") : 0;
	if (len) {
		out->data[len] = '\0';
		out->len = len;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)out->data[i] <= ' ' || out->data[i] == 0x7f)
			break;
	if (!len || out->data[0] != '/' || i < len) {
		fprintf(stderr,
			"bench_ingest_load: %s: the first line is not a request target "
			"(\"/ingest?...\", no spaces)\n",
			path);
		return -EINVAL;
	}
	return 0;
}

/* The whole request, written once and sent as it is every time: what the
 * SDK's HTTP client sends, minus headers the server doesn't read. */
static int build_request(const struct dynbuf *target, const struct dynbuf *body, struct dynbuf *out)
{
	bool v6 = strchr(cfg.host, ':') != NULL;
	int r;

	r = dynbuf__printf(out,
			   "POST %s HTTP/1.1\r\n"
			   "Host: %s%s%s:%s\r\n"
			   "User-Agent: braid-bench-ingest-load\r\n"
			   "Accept: */*\r\n"
			   "Content-Type: %s\r\n"
			   "Content-Length: %zu\r\n"
			   "Connection: keep-alive\r\n"
			   "\r\n",
			   target->data, v6 ? "[" : "", cfg.host, v6 ? "]" : "", cfg.port,
			   cfg.content_type, body->len);
	return r < 0 ? r : dynbuf__append(out, body->data, body->len);
}

static int parse_seconds(const char *opt, const char *s, double min, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= min && v <= MAX_SECONDS)) {
		fprintf(stderr, "bench_ingest_load: %s wants a number of seconds in [%g, %d]\n",
			opt, min, MAX_SECONDS);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* ---- output --------------------------------------------------------------- */

struct totals {
	uint64_t sent, answered, ok, ok_measured, lost, reconnects, not_ok;
	uint64_t status[600];
	uint64_t *b; /* merged histogram */
	uint64_t n;
	int64_t max_ns;
	double secs;
	double rate, p50, p90, p99, p999, max; /* req/s, ms */
};

static void row(const char *name, double value, int decimals, const char *target,
		const char *verdict)
{
	printf("%-18s conns=%-4u %12.*f  %-12s %s\n", name, cfg.connections, decimals, value,
	       target, verdict);
}

static void print_text(const struct totals *t, const struct worker *w, size_t target_len,
		       const char *target, size_t body_len)
{
	struct utsname un;
	unsigned i;

	if (uname(&un) < 0)
		snprintf(un.release, sizeof(un.release), "?");
	printf("# machine: nproc=%ld kernel=%s %s\n", sysconf(_SC_NPROCESSORS_ONLN), un.release,
	       un.machine);
	printf("# server: http://%s%s%s:%s, POST %.60s%s (%zu bytes), %s body %zu bytes\n",
	       strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "",
	       cfg.port, target, target_len > 60 ? "..." : "", target_len, cfg.content_type,
	       body_len);
	printf("# load: %u connection%s, keep-alive, one request in flight each; %.1f s warm-up, "
	       "%.2f s measured\n",
	       cfg.connections, cfg.connections == 1 ? "" : "s", cfg.warmup, t->secs);
	printf("# requests: %" PRIu64 " sent, %" PRIu64 " answered 200, %" PRIu64
	       " answered otherwise, %" PRIu64 " unanswered, %" PRIu64 " reconnects\n",
	       t->sent, t->ok, t->not_ok, t->lost, t->reconnects);
	printf("# measured: %" PRIu64 " responses, %" PRIu64 " of them 200; per connection:", t->n,
	       t->ok_measured);
	for (i = 0; i < cfg.connections; i++)
		printf(" %" PRIu64, w[i].ok_measured);
	printf("\n");
	printf("%-18s %-10s %12s  %-12s %s\n", "figure", "conns", "value", "target", "verdict");
	row("requests_per_s", t->rate, 0, "target>=" UTIL_STR(TARGET_REQ_PER_S),
	    t->rate >= TARGET_REQ_PER_S ? "ok" : "BELOW");
	row("latency_p50_ms", t->p50, 3, "target=none", "-");
	row("latency_p90_ms", t->p90, 3, "target=none", "-");
	row("latency_p99_ms", t->p99, 3, "target<" UTIL_STR(TARGET_P99_MS),
	    t->n && t->p99 < TARGET_P99_MS ? "ok" : "ABOVE");
	row("latency_p999_ms", t->p999, 3, "target=none", "-");
	row("latency_max_ms", t->max, 3, "target=none", "-");
}

/* One JSON object on one line. */
static int print_json(const struct totals *t, const struct worker *w, const char *target,
		      size_t body_len)
{
	struct dynbuf b;
	char url[320];
	unsigned i;
	bool first = true;
	int r;

	dynbuf__init(&b, 0);
	snprintf(url, sizeof(url), "http://%s%s%s:%s", strchr(cfg.host, ':') ? "[" : "", cfg.host,
		 strchr(cfg.host, ':') ? "]" : "", cfg.port);
	r = dynbuf__printf(&b, "{\"url\":");
	r = r < 0 ? r : dynbuf__json_str(&b, url);
	r = r < 0 ? r : dynbuf__printf(&b, ",\"path\":");
	r = r < 0 ? r : dynbuf__json_str(&b, target);
	r = r < 0 ? r : dynbuf__printf(&b, ",\"content_type\":");
	r = r < 0 ? r : dynbuf__json_str(&b, cfg.content_type);
	r = r < 0 ? r
		  : dynbuf__printf(
			    &b,
			    ",\"body_bytes\":%zu,\"connections\":%u,\"warmup_s\":%.3f,"
			    "\"seconds\":%.3f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
			    ",\"ok\":%" PRIu64 ",\"not_ok\":%" PRIu64 ",\"unanswered\":%" PRIu64
			    ",\"reconnects\":%" PRIu64 ",\"measured\":%" PRIu64
			    ",\"ok_measured\":%" PRIu64 ",\"statuses\":{",
			    body_len, cfg.connections, cfg.warmup, t->secs, t->sent, t->answered,
			    t->ok, t->not_ok, t->lost, t->reconnects, t->n, t->ok_measured);
	for (i = 0; r >= 0 && i < UTIL_ARRAY_SIZE(t->status); i++) {
		if (!t->status[i])
			continue;
		r = dynbuf__printf(&b, "%s\"%u\":%" PRIu64, first ? "" : ",", i, t->status[i]);
		first = false;
	}
	r = r < 0 ? r : dynbuf__printf(&b, "},\"ok_measured_per_connection\":[");
	for (i = 0; r >= 0 && i < cfg.connections; i++)
		r = dynbuf__printf(&b, "%s%" PRIu64, i ? "," : "", w[i].ok_measured);
	r = r < 0 ? r
		  : dynbuf__printf(&b,
				   "],\"requests_per_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,"
				   "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
				   "\"target\":{\"requests_per_s\":%d,\"p99_ms_below\":%d,"
				   "\"met\":%s}}\n",
				   t->rate, t->p50, t->p90, t->p99, t->p999, t->max,
				   TARGET_REQ_PER_S, TARGET_P99_MS,
				   t->rate >= TARGET_REQ_PER_S && t->n && t->p99 < TARGET_P99_MS
					   ? "true"
					   : "false");
	if (r >= 0)
		fputs(b.data, stdout);
	dynbuf__free(&b);
	return r;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_ingest_load --url http://HOST:PORT | --port P [OPTIONS]\n"
		"  --url URL           the server (http://HOST:PORT)\n"
		"  --port P            the server at 127.0.0.1:P\n"
		"  --path-file F       the request target, one line (default: the Node SDK\n"
		"                      fixture " FIXTURE_PATH_REL ")\n"
		"  --body F            the request body (default " FIXTURE_BODY_REL ")\n"
		"  --fixtures DIR      where the fixtures are (default $BRAID_FIXTURES, else\n"
		"                      " BRAID_FIXTURES ")\n"
		"  --connections N     connections, one thread each (default 2, at most %d)\n"
		"  --seconds S         the measured time (default 10)\n"
		"  --warmup S          time before it, not counted (default 1)\n"
		"  --content-type T    (default application/octet-stream)\n"
		"  --json              print one JSON object instead of the table\n",
		MAX_CONNECTIONS);
}

/* Reads the options into cfg. Returns 0, 1 after --help, or -EINVAL
 * (the message printed). */
static int parse_args(int argc, char **argv)
{
	static const char *const needs_value[] = {
		"--url",     "--port",	 "--path-file",	   "--body",	    "--fixtures",
		"--seconds", "--warmup", "--content-type", "--connections",
	};
	char *end;
	unsigned long n;
	size_t k;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		for (k = 0; k < UTIL_ARRAY_SIZE(needs_value); k++)
			if (strcmp(a, needs_value[k]) == 0)
				break;
		if (k < UTIL_ARRAY_SIZE(needs_value)) {
			if (i + 1 >= argc) {
				fprintf(stderr, "bench_ingest_load: %s needs a value\n", a);
				return -EINVAL;
			}
			v = argv[++i];
		}
		if (strcmp(a, "--url") == 0) {
			if (parse_url(v) < 0) {
				fprintf(stderr,
					"bench_ingest_load: --url wants http://HOST:PORT, not "
					"'%s'\n",
					v);
				return -EINVAL;
			}
			cfg.have_target = true;
		} else if (strcmp(a, "--port") == 0) {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (end == v || *end || errno || *v == '-' || n < 1 || n > 65535) {
				fprintf(stderr, "bench_ingest_load: --port wants 1 to 65535\n");
				return -EINVAL;
			}
			snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
			snprintf(cfg.port, sizeof(cfg.port), "%lu", n);
			cfg.have_target = true;
		} else if (strcmp(a, "--path-file") == 0) {
			cfg.path_file = v;
		} else if (strcmp(a, "--body") == 0) {
			cfg.body_file = v;
		} else if (strcmp(a, "--fixtures") == 0) {
			cfg.fixtures = v;
		} else if (strcmp(a, "--content-type") == 0) {
			if (!v[0] || strlen(v) > MAX_CONTENT_TYPE || strpbrk(v, "\r\n")) {
				fprintf(stderr, "bench_ingest_load: --content-type: a bad value\n");
				return -EINVAL;
			}
			cfg.content_type = v;
		} else if (strcmp(a, "--connections") == 0) {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (end == v || *end || errno || *v == '-' || n < 1 ||
			    n > MAX_CONNECTIONS) {
				fprintf(stderr, "bench_ingest_load: --connections wants 1 to %d\n",
					MAX_CONNECTIONS);
				return -EINVAL;
			}
			cfg.connections = (unsigned)n;
		} else if (strcmp(a, "--seconds") == 0) {
			if (parse_seconds(a, v, 0.01, &cfg.seconds) < 0)
				return -EINVAL;
		} else if (strcmp(a, "--warmup") == 0) {
			if (parse_seconds(a, v, 0, &cfg.warmup) < 0)
				return -EINVAL;
		} else if (strcmp(a, "--json") == 0) {
			cfg.json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!cfg.have_target) {
		fprintf(stderr, "bench_ingest_load: give --url http://HOST:PORT or --port P\n");
		return -EINVAL;
	}
	return 0;
}

/* The request target and body, from the options or the fixtures, and the
 * request made of them. Returns 0 or a negative errno (the message
 * printed). */
static int load_request(struct dynbuf *target, struct dynbuf *body, struct dynbuf *req)
{
	char path_buf[4096], body_buf[4096];
	struct errbuf err = {{0}};
	int r;

	if (!cfg.path_file) {
		r = fixture_path(path_buf, sizeof(path_buf), FIXTURE_PATH_REL);
		if (r < 0)
			goto too_long;
		cfg.path_file = path_buf;
	}
	if (!cfg.body_file) {
		r = fixture_path(body_buf, sizeof(body_buf), FIXTURE_BODY_REL);
		if (r < 0)
			goto too_long;
		cfg.body_file = body_buf;
	}
	r = load_target(cfg.path_file, target);
	if (r < 0)
		goto out;
	r = util__read_file(cfg.body_file, MAX_BODY, &err, body);
	if (r < 0) {
		fprintf(stderr, "bench_ingest_load: %s\n", err.msg);
		goto out;
	}
	r = build_request(target, body, req);
	if (r < 0)
		fprintf(stderr, "bench_ingest_load: out of memory\n");
	goto out;
too_long:
	fprintf(stderr, "bench_ingest_load: the fixtures' path is too long\n");
out:
	/* the buffers are gone after return */
	if (cfg.path_file == path_buf)
		cfg.path_file = NULL;
	if (cfg.body_file == body_buf)
		cfg.body_file = NULL;
	return r;
}

/* Runs the workers: all connect, then warm up and measure together until
 * the deadline (or SIGINT/SIGTERM). Returns 0, or -EAGAIN when not every
 * worker could be started (the message printed). */
static int run_workers(struct shared *sh, struct worker *w)
{
	struct sigaction sa = {.sa_handler = on_signal};
	unsigned started = 0, i;
	sigset_t sigs;
	int r = 0;

	/* Only this thread takes SIGINT and SIGTERM: the workers inherit the
	 * mask, and their socket calls never see EINTR from them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	for (i = 0; i < cfg.connections; i++) {
		r = -pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
		if (r < 0) {
			fprintf(stderr, "bench_ingest_load: pthread_create: %s\n", strerror(-r));
			atomic_store(&sh->stop, true);
			r = -EAGAIN;
			break;
		}
		started++;
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		fprintf(stderr, "bench_ingest_load: sigaction: %s (runs to the end)\n",
			strerror(errno));
	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);

	/* Every worker connected (or failed): the clock starts. */
	pthread_mutex_lock(&sh->lock);
	while (sh->ready < started)
		pthread_cond_wait(&sh->cond, &sh->lock);
	sh->t_measure = mono_ns() + (int64_t)(cfg.warmup * 1e9);
	atomic_store(&sh->deadline, sh->t_measure + (int64_t)(cfg.seconds * 1e9));
	sh->go = true;
	pthread_cond_broadcast(&sh->cond);
	pthread_mutex_unlock(&sh->lock);

	while (!atomic_load(&sh->stop) && !interrupted && mono_ns() < atomic_load(&sh->deadline)) {
		struct timespec tick = {0, 20 * 1000000};

		nanosleep(&tick, NULL); /* EINTR: the loop looks again */
	}
	if (interrupted) {
		int64_t now = mono_ns();

		/* figures up to now; none if the warm-up was not over */
		atomic_store(&sh->deadline, now > sh->t_measure ? now : sh->t_measure);
		fprintf(stderr, "bench_ingest_load: interrupted\n");
	}
	for (i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	return r;
}

static void totals__sum(struct totals *t, const struct shared *sh, const struct worker *w)
{
	unsigned i;
	size_t k;

	t->secs = (double)(atomic_load(&sh->deadline) - sh->t_measure) / 1e9;
	for (i = 0; i < cfg.connections; i++) {
		const struct worker *x = &w[i];

		t->sent += x->sent;
		t->answered += x->answered;
		t->ok += x->ok;
		t->ok_measured += x->ok_measured;
		t->lost += x->lost;
		t->reconnects += x->reconnects;
		for (k = 0; k < UTIL_ARRAY_SIZE(t->status); k++)
			t->status[k] += x->status[k];
		for (k = 0; k < HIST_BUCKETS; k++)
			t->b[k] += x->hist.b[k];
		t->n += x->hist.n;
		if (x->hist.max_ns > t->max_ns)
			t->max_ns = x->hist.max_ns;
	}
	t->not_ok = t->answered - t->ok;
	t->rate = t->secs > 0 ? (double)t->ok_measured / t->secs : 0;
	t->p50 = (double)hist_quantile(t->b, t->n, t->max_ns, 0.50) / 1e6;
	t->p90 = (double)hist_quantile(t->b, t->n, t->max_ns, 0.90) / 1e6;
	t->p99 = (double)hist_quantile(t->b, t->n, t->max_ns, 0.99) / 1e6;
	t->p999 = (double)hist_quantile(t->b, t->n, t->max_ns, 0.999) / 1e6;
	t->max = (double)t->max_ns / 1e6;
}

/* Says on stderr what went wrong; true if anything did. */
static bool report_problems(const struct totals *t, const struct worker *w)
{
	bool bad = false;
	unsigned i;
	size_t k;

	for (k = 0; k < UTIL_ARRAY_SIZE(t->status); k++) {
		if (!t->status[k] || k == 200)
			continue;
		fprintf(stderr, "bench_ingest_load: %" PRIu64 " responses with status %zu\n",
			t->status[k], k);
		bad = true;
	}
	for (i = 0; i < cfg.connections; i++) {
		if (w[i].first_bad_status)
			fprintf(stderr,
				"bench_ingest_load: connection %u: first non-200: %d \"%s\"\n", i,
				w[i].first_bad_status, w[i].first_bad_body);
		if (w[i].lost)
			fprintf(stderr,
				"bench_ingest_load: connection %u: %" PRIu64
				" requests unanswered; first: %s\n",
				i, w[i].lost, w[i].first_lost);
		if (w[i].rc < 0)
			fprintf(stderr, "bench_ingest_load: connection %u: %s\n", i, w[i].msg);
		if (w[i].lost || w[i].rc < 0)
			bad = true;
	}
	return bad || interrupted;
}

int main(int argc, char **argv)
{
	struct dynbuf target, body, req;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct shared sh = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct worker *w = NULL;
	struct totals t = {0};
	unsigned i;
	int r, status = 1;

	dynbuf__init(&target, MAX_PATH_LINE + 1);
	dynbuf__init(&body, MAX_BODY);
	dynbuf__init(&req, 0);
	r = parse_args(argc, argv);
	if (r != 0) {
		status = r > 0 ? 0 : 2;
		goto out;
	}
	if (load_request(&target, &body, &req) < 0)
		goto out;
	r = getaddrinfo(cfg.host, cfg.port, &hints, &ai);
	if (r) {
		fprintf(stderr, "bench_ingest_load: %s:%s: %s\n", cfg.host, cfg.port,
			r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		ai = NULL;
		goto out;
	}

	w = calloc(cfg.connections, sizeof(*w));
	t.b = calloc(HIST_BUCKETS, sizeof(*t.b));
	if (!w || !t.b)
		goto oom;
	for (i = 0; i < cfg.connections; i++) {
		w[i].sh = &sh;
		w[i].conn = malloc(sizeof(*w[i].conn));
		w[i].hist.b = calloc(HIST_BUCKETS, sizeof(*w[i].hist.b));
		if (!w[i].conn || !w[i].hist.b)
			goto oom;
		w[i].conn->fd = -1;
	}
	sh.ai = ai;
	sh.req = req.data;
	sh.req_len = req.len;
	atomic_init(&sh.stop, false);
	atomic_init(&sh.deadline, INT64_MAX);

	if (run_workers(&sh, w) < 0)
		goto out;
	totals__sum(&t, &sh, w);
	if (!t.sent) {
		/* nothing to show: the reasons follow */
	} else if (cfg.json) {
		if (print_json(&t, w, target.data, body.len) < 0)
			goto oom;
	} else {
		print_text(&t, w, target.len, target.data, body.len);
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "bench_ingest_load: writing the results: %s\n", strerror(errno));
		goto out;
	}
	/* the figures above stand either way */
	status = report_problems(&t, w) ? 1 : 0;
	goto out;
oom:
	fprintf(stderr, "bench_ingest_load: out of memory\n");
out:
	if (w)
		for (i = 0; i < cfg.connections; i++) {
			free(w[i].conn);
			free(w[i].hist.b);
		}
	free(w);
	free(t.b);
	if (ai)
		freeaddrinfo(ai);
	dynbuf__free(&target);
	dynbuf__free(&body);
	dynbuf__free(&req);
	return status;
}
