/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector: braid's view of the host — process metadata read from /proc and
 * (with the eBPF collector) the CPU stacks of every process. The only module
 * that reads /proc.
 *
 * This part answers "which process is that?": a process's metadata (the same
 * start time everywhere in braid, so a host PID and its start time name one
 * process across ingest, collector and store), the owner of a loopback TCP
 * socket, and the process that declares a service name in its environment.
 *
 * Every function takes the procfs root ("/proc"; tests pass another) and
 * returns 0 or a negative errno:
 *   -ENOENT  no such process / socket / match (a process that exited)
 *   -EACCES  /proc would not tell (permissions)
 *   -ENOTUNIQ  several processes match (collector__find_service)
 *   -ENOMEM, -EIO
 */
#ifndef BRAID_COLLECTOR_H
#define BRAID_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "store/store.h"

#define COLLECTOR_PROC_ROOT	   "/proc"
#define COLLECTOR_MAX_ENVIRON	   (1u << 20)  /* bytes of /proc/PID/environ read */
#define COLLECTOR_MAX_NET_TABLE	   (64u << 20) /* bytes of /proc/net/tcp{,6} read */
#define COLLECTOR_CONTAINER_ID_MAX 64	       /* hex digits of a container id */

/* What /proc says about one process. The strings belong to the struct: free
 * them with collector__proc_release (which accepts a zeroed struct). */
struct collector_proc {
	int32_t pid;
	int32_t ns_pid; /* its PID in its innermost PID namespace (NSpid); == pid on the host */
	int64_t start_time_ns; /* see collector__start_time */
	char comm[17];
	char *exe; /* the exe link's target; NULL if unreadable (kernel thread, no permission) */
	char *cmdline; /* argv joined with spaces, at most STORE_MAX_CMDLINE bytes; NULL if empty */
	char *service; /* PYROSCOPE_APPLICATION_NAME, else OTEL_SERVICE_NAME, from its environment
			*/
	char *container_id; /* from its cgroup path (collector__container_id); NULL if none */
	enum store_runtime
		runtime; /* from exe's name: node, python, ruby, java, dotnet, else native */
};

/* Reads /proc/PID/{stat,status,exe,cmdline,environ,cgroup}. Only stat is
 * required (-ENOENT if the process is gone); the rest is left NULL when it
 * can't be read. On error *ret is left zeroed. */
int collector__proc_read(const char *proc_root, int32_t pid, struct collector_proc *ret);
void collector__proc_release(struct collector_proc *p);

/* A process's start time in wall-clock ns since the epoch: the boot time
 * (proc_root/stat's btime, whole seconds, read once and cached) plus
 * /proc/PID/stat's starttime in clock ticks. Every part of braid computes it
 * this way, so (pid, start_time_ns) names the same process everywhere. */
int collector__start_time(const char *proc_root, int32_t pid, int64_t *ret_ns);

/* Finds, in proc_root/net/tcp and tcp6, the socket whose local address is
 * `local` and whose remote address is `remote` (AF_INET or AF_INET6;
 * IPv4-mapped IPv6 addresses match their IPv4 form in either table) and
 * returns its inode. For a connection braid accepted, pass the client's
 * address as `local` and braid's as `remote`: that is the client's socket.
 * The tables are read in one pass each, comparing the local address first. */
int collector__tcp_socket_inode(const char *proc_root, const struct sockaddr *local,
				const struct sockaddr *remote, uint64_t *ret_inode);

/* Finds the process holding socket `inode` open: first among the n_hints
 * PIDs in hints (processes that pushed before: an SDK reconnects from the
 * same process, so this is usually the only scan), then in every process.
 * Returns the thread-group leader's PID. */
int collector__socket_owner(const char *proc_root, uint64_t inode, const int32_t *hints,
			    size_t n_hints, int32_t *ret_pid);

/* Finds the one process whose environment sets PYROSCOPE_APPLICATION_NAME
 * or OTEL_SERVICE_NAME to `service` (either variable: an SDK may push under
 * either name). -ENOENT if none, -ENOTUNIQ if several
 * (the push can't be told apart). Reads every process's environ: callers
 * cache the answer. */
int collector__find_service(const char *proc_root, const char *service, int32_t *ret_pid);

/* The container id in one line of /proc/PID/cgroup (v1 or v2), for the
 * docker ("/docker/ID", "docker-ID.scope"), containerd ("cri-containerd-ID
 * .scope", ".../ID"), cri-o ("crio-ID.scope") and podman ("libpod-ID.scope")
 * forms: the last path component holding 64 hex digits, written lowercase to
 * ret (at least COLLECTOR_CONTAINER_ID_MAX + 1 bytes). -ENOENT if the line
 * names no container, or only a container's monitor ("crio-conmon-ID"). */
int collector__container_id(const char *cgroup_line, size_t len, char *ret);

/* The runtime an executable's path implies: "node"/"nodejs" -> node,
 * "python*" -> python, "ruby*" -> ruby, "java" -> jvm, "dotnet" -> dotnet,
 * anything else native; NULL -> unknown. */
enum store_runtime collector__runtime_of_exe(const char *exe);

#endif
