/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_multipart: multipart/form-data bodies on POST /ingest, through the
 * real server. braid reads multipart with libmicrohttpd's post processor,
 * which needs a live MHD connection, so the harness runs one braid ingest
 * server (ingest__start) for the whole process: on a Unix socket in a
 * temporary directory (under /dev/shm when it can, a tmpfs), with its store
 * beside it. Each input is one request on a fresh connection:
 *
 *   the input's first line   the Content-Type's parameters after
 *                            "multipart/form-data" (e.g. "; boundary=X");
 *                            control bytes become spaces, but a first
 *                            byte 0x01 says: gzip the body and send it
 *                            with Content-Encoding: gzip
 *   the rest                 the body
 *
 * The server takes bodies of at most 8 KiB: a gzipped body inflates past
 * that, so the cap on the multipart `profile` field (the body cap) is
 * reachable too.
 * The reply must be a 200 or a 4xx (a body braid refuses), never a 5xx or
 * nothing, and the server must still answer GET /ready after it.
 *
 * libmicrohttpd itself is Debian's build, without coverage: the fuzzer is
 * guided by braid's code only (multipart_field, the caps, the decoders).
 * Leaks: the server frees a connection on its own thread, just after the
 * reply is read, so libFuzzer's per-input count of mallocs and frees may
 * see the frees one input late; LeakSanitizer's check at exit (after
 * ingest__stop) sees everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ingest/ingest.h"

/* libFuzzer calls these once at start and for each input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLY  (64u << 10)
#define IO_TIMEOUT 5 /* seconds: a server that does not answer is a hang */

static struct ingest *server;
static char dir[64];
static char sock_path[128];
/* Replies by status, printed at exit: how many inputs reached the store. */
static unsigned long replies[6]; /* 200, 400, 413, 422, 429, other */

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_multipart: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void stop_server(void)
{
	fprintf(stderr,
		"fuzz_multipart: replies: %lu 200, %lu 400, %lu 413, %lu 422, %lu 429, %lu other\n",
		replies[0], replies[1], replies[2], replies[3], replies[4], replies[5]);
	ingest__stop(server);
	server = NULL;
	if (dir[0])
		nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ingest_options o = {0};
	char listen[sizeof(sock_path) + 8], data_dir[sizeof(dir) + 8];
	const char *addr = listen;
	struct errbuf err;

	snprintf(dir, sizeof(dir), "%s/braid-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		fail("mkdtemp", strerror(errno));
	snprintf(sock_path, sizeof(sock_path), "%s/ingest.sock", dir);
	snprintf(listen, sizeof(listen), "unix:%s", sock_path);
	snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
	o.listen = &addr;
	o.n_listen = 1;
	o.threads = 1;
	o.timeout_s = 2 * IO_TIMEOUT;
	o.max_body = 8u << 10;
	ingest_limits__default(&o.limits);
	o.limits.max_decompressed = 1u << 20;
	o.limits.profile.max_decode_memory = 64u << 20;
	o.limits.profile.max_samples = 20000;
	o.limits.profile.max_locations = 20000;
	o.limits.profile.max_functions = 20000;
	o.limits.profile.max_strings = 20000;
	o.store.data_dir = data_dir;
	o.store.max_bytes = 64u << 20;
	o.store.skip_check = true;
	if (ingest__start(&o, &err, &server) < 0) {
		nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
		fail("ingest__start", err.msg);
	}
	atexit(stop_server);
	return 0;
}

/* Sends one request on a fresh connection and returns the reply's status;
 * the reply (NUL-terminated) is left in reply. */
static int request(const char *head, size_t head_len, const void *body, size_t body_len,
		   char *reply, size_t cap)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT};
	size_t got = 0;
	int fd, status = 0;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket", strerror(errno));
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", sock_path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0)
		fail("connect", strerror(errno));
	for (int part = 0; part < 2; part++) {
		const char *p = part ? body : head;
		size_t n = part ? body_len : head_len;

		while (n) {
			ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EPIPE)
				break; /* the server replied early and closed: read it */
			if (w < 0)
				fail("send", strerror(errno));
			p += w;
			n -= (size_t)w;
		}
	}
	for (;;) {
		ssize_t r = recv(fd, reply + got, cap - 1 - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			fail("no reply within the timeout", NULL);
		if (r < 0 && errno == ECONNRESET)
			break;
		if (r < 0)
			fail("recv", strerror(errno));
		if (r == 0 || got + (size_t)r == cap - 1) {
			got += (size_t)r;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	reply[got] = '\0';
	if (strncmp(reply, "HTTP/1.", 7) == 0 && got > 12)
		status = atoi(reply + 9);
	return status;
}

/* The index of a status in replies[]. */
static size_t reply_slot(int status)
{
	switch (status) {
	case 200:
		return 0;
	case 400:
		return 1;
	case 413:
		return 2;
	case 422:
		return 3;
	case 429:
		return 4;
	default:
		return 5;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char ready[] =
		"GET /ready HTTP/1.1\r\nHost: braid\r\nConnection: close\r\n\r\n";
	bool gzip = size && data[0] == 0x01;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t params_len = nl ? (size_t)(nl - data) : size;
	const uint8_t *body = nl ? nl + 1 : data + size;
	size_t body_len = (size_t)(data + size - body);
	char *params, *head, *reply;
	struct dynbuf gz;
	int head_len, status;

	params = malloc(params_len + 1);
	reply = malloc(MAX_REPLY);
	if (!params || !reply)
		abort();
	for (size_t i = gzip; i < params_len; i++)
		params[i - gzip] = data[i] < 0x20 || data[i] == 0x7f ? ' ' : (char)data[i];
	params[params_len - (params_len ? gzip : 0)] = '\0';
	dynbuf__init(&gz, 0);
	if (gzip) {
		if (util__gzip(body, body_len, 1, &gz) < 0)
			abort();
		body = (const uint8_t *)gz.data;
		body_len = gz.len;
	}
	head_len = asprintf(&head,
			    "POST /ingest?name=fuzz.cpu%%7Benv%%3Dfuzz%%7D HTTP/1.1\r\n"
			    "Host: braid\r\n"
			    "Content-Type: multipart/form-data%s\r\n"
			    "%s"
			    "Content-Length: %zu\r\n"
			    "Connection: close\r\n\r\n",
			    params, gzip ? "Content-Encoding: gzip\r\n" : "", body_len);
	if (head_len < 0)
		abort();

	status = request(head, (size_t)head_len, body, body_len, reply, MAX_REPLY);
	replies[reply_slot(status)]++;
	/* 200 stored; 4xx refused with the fault named; 429 the store full */
	if (status != 200 && status != 400 && status != 413 && status != 422 && status != 429)
		fail("a reply that is neither 200 nor a client error", reply);
	if (status != 200 && !strstr(reply, "{\"code\":\""))
		fail("an error without its JSON body", reply);
	if (request(ready, sizeof(ready) - 1, "", 0, reply, MAX_REPLY) != 200)
		fail("the server does not answer /ready after the request", reply);
	free(params);
	free(head);
	free(reply);
	dynbuf__free(&gz);
	return 0;
}
