/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the addresses it listens on. "ADDR:PORT", "[V6]:PORT" and
 * "unix:PATH" parsed, bound and listened on; loopback told apart, since
 * anything else needs authentication.
 */
#include "ingest/server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

bool ingest__is_loopback(const struct sockaddr *sa)
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

int ingest__open_listener(const char *spec, bool have_auth, struct listener *l, struct errbuf *err)
{
	struct sockaddr_storage ss, bound;
	socklen_t len = 0, blen = sizeof(bound);
	int fd = -1, one = 1, r;

	r = parse_listen(spec, &ss, &len, err);
	if (r < 0)
		return r;
	if (!have_auth && !ingest__is_loopback((struct sockaddr *)&ss))
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
