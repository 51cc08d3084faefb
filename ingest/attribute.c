/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: the host process a push came from. The connection's peer (the
 * Unix socket's credentials, or the loopback TCP socket's owner), else the
 * push's pid label, else the process whose environment declares the
 * push's service; with the caches that keep each lookup cheap.
 */
#define _GNU_SOURCE /* struct ucred */
#include "ingest/server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* SO_PEERCRED for a Unix socket; for loopback TCP, the client's socket in
 * /proc/net/tcp{,6} and the process holding it. */
void ingest__resolve_peer(struct ingest *in, struct MHD_Connection *c, struct conn_ctx *cc)
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
		if (!ingest__is_loopback((struct sockaddr *)&peer))
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

enum store_attribution ingest__attribute(struct ingest *in, struct conn_ctx *cc,
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
