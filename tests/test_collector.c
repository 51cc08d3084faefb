/* SPDX-License-Identifier: Apache-2.0 */
/* collector/: /proc read live (this process, children it forks, loopback TCP
 * connections between them) and from a fake procfs tree built in a temporary
 * folder, for the parsing edge cases the live kernel won't produce on cue. */
#define _GNU_SOURCE /* accept4, pipe2, nftw, memmem, memfd_create */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <zlib.h>

#include "collector/collector.h"
#include "util/util.h"

static const char *test_argv0;

/* ---- children ----------------------------------------------------------- */

/* Every child a test forks, so that a failed assertion leaves no process
 * behind: the group teardown kills and reaps what is left. */
static pid_t children[16];
static size_t n_children;

static void child_track(pid_t pid)
{
	assert_true(n_children < UTIL_ARRAY_SIZE(children));
	children[n_children++] = pid;
}

/* Kills and reaps one child; afterwards its PID is gone from /proc. */
static void child_reap(pid_t pid)
{
	int status;
	size_t i;

	for (i = 0; i < n_children; i++)
		if (children[i] == pid)
			children[i] = children[--n_children];
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
}

static int reap_all(void **state)
{
	(void)state;
	while (n_children) {
		pid_t pid = children[--n_children];

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return 0;
}

/* Forks and execs `/bin/sleep 30` with only the two service variables (and
 * PATH) in its environment; returns once the exec has happened, so its
 * /proc entries show sleep and not this program. */
static pid_t spawn_sleep(const char *pyro, const char *otel)
{
	char env_pyro[128], env_otel[128];
	char *argv[] = {"/bin/sleep", "30", NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", env_pyro, env_otel, NULL};
	int fds[2], err = 0;
	ssize_t n;
	pid_t pid;

	snprintf(env_pyro, sizeof(env_pyro), "PYROSCOPE_APPLICATION_NAME=%s", pyro);
	snprintf(env_otel, sizeof(env_otel), "OTEL_SERVICE_NAME=%s", otel);
	/* the write end closes at exec: EOF on the read end means "exec'd" */
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execve(argv[0], argv, envp);
		err = errno;
		if (write(fds[1], &err, sizeof(err)) < 0)
			_exit(126);
		_exit(127);
	}
	child_track(pid);
	close(fds[1]);
	do
		n = read(fds[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	assert_int_equal(n, 0);
	return pid;
}

static void random_name(char *buf, size_t size, const char *prefix)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, size, "%s-%d-%ld", prefix, (int)getpid(), (long)ts.tv_nsec);
}

static void assert_zeroed(const struct collector_proc *p)
{
	struct collector_proc zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(p, &zero, sizeof(zero));
}

/* ---- this process --------------------------------------------------------- */

static void test_proc_self(void **state)
{
	struct collector_proc p, again;
	char exe[PATH_MAX], comm[32] = "";
	const char *want_service;
	struct timespec now;
	int64_t ns, now_ns;
	ssize_t n;
	FILE *f;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	f = fopen("/proc/self/comm", "re");
	assert_non_null(f);
	assert_non_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';

	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, getpid(), &p), 0);
	assert_int_equal(p.pid, getpid());
	assert_int_equal(p.ns_pid, getpid());
	assert_string_equal(p.comm, comm);
	assert_string_equal(p.comm, "test_collector");
	assert_non_null(p.exe);
	assert_string_equal(p.exe, exe);
	assert_non_null(p.cmdline);
	assert_true(strncmp(p.cmdline, test_argv0, strlen(test_argv0)) == 0);
	assert_int_equal(p.runtime, RUNTIME_NATIVE);
	want_service = getenv("PYROSCOPE_APPLICATION_NAME");
	if (!want_service || !*want_service)
		want_service = getenv("OTEL_SERVICE_NAME");
	if (want_service && *want_service)
		assert_string_equal(p.service, want_service);
	else
		assert_null(p.service);
	if (p.container_id) {
		assert_int_equal(strlen(p.container_id), COLLECTOR_CONTAINER_ID_MAX);
		assert_int_equal(strspn(p.container_id, "0123456789abcdef"),
				 COLLECTOR_CONTAINER_ID_MAX);
	}

	/* the same process has the same start time, however it is asked */
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, getpid(), &again), 0);
	assert_int_equal(again.start_time_ns, p.start_time_ns);
	assert_int_equal(collector__start_time(COLLECTOR_PROC_ROOT, getpid(), &ns), 0);
	assert_int_equal(ns, p.start_time_ns);
	/* and it is a wall-clock time a moment ago (btime is whole seconds) */
	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	assert_true(p.start_time_ns <= now_ns + 2000000000LL);
	assert_true(p.start_time_ns >= now_ns - 600 * 1000000000LL);

	collector__proc_release(&p);
	assert_zeroed(&p);
	collector__proc_release(&p); /* twice is fine */
	collector__proc_release(&again);
	collector__proc_release(NULL);
}

/* ---- forked children -------------------------------------------------------- */

static void test_children(void **state)
{
	char name[64], otel[64], otel_only[64], unknown[64], sleep_path[PATH_MAX];
	struct collector_proc p;
	pid_t a, b, c;
	int32_t pid;
	int64_t ns;

	(void)state;
	random_name(name, sizeof(name), "braid-test");
	random_name(otel, sizeof(otel), "braid-otel");
	random_name(otel_only, sizeof(otel_only), "braid-otel-only");
	random_name(unknown, sizeof(unknown), "braid-nobody");
	assert_non_null(realpath("/bin/sleep", sleep_path));

	a = spawn_sleep(name, otel);
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, a, &p), 0);
	assert_int_equal(p.pid, a);
	assert_int_equal(p.ns_pid, a);
	assert_string_equal(p.comm, "sleep");
	assert_string_equal(p.exe, sleep_path);
	assert_string_equal(p.cmdline, "/bin/sleep 30");
	/* PYROSCOPE_APPLICATION_NAME wins over OTEL_SERVICE_NAME */
	assert_string_equal(p.service, name);
	assert_int_equal(p.runtime, RUNTIME_NATIVE);
	assert_int_equal(collector__start_time(COLLECTOR_PROC_ROOT, a, &ns), 0);
	assert_int_equal(ns, p.start_time_ns);
	collector__proc_release(&p);

	/* either variable names the process */
	pid = 0;
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, name, &pid), 0);
	assert_int_equal(pid, a);
	pid = 0;
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, otel, &pid), 0);
	assert_int_equal(pid, a);
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, unknown, &pid), -ENOENT);
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, "", &pid), -ENOENT);

	/* an empty PYROSCOPE_APPLICATION_NAME is no name: OTEL's counts */
	b = spawn_sleep("", otel_only);
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, b, &p), 0);
	assert_string_equal(p.service, otel_only);
	collector__proc_release(&p);
	pid = 0;
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, otel_only, &pid), 0);
	assert_int_equal(pid, b);

	/* two processes with one name can't be told apart */
	c = spawn_sleep(name, "braid-test-other");
	pid = 0;
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, name, &pid), -ENOTUNIQ);
	assert_int_equal(pid, 0);
	child_reap(c);
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, name, &pid), 0);
	assert_int_equal(pid, a);

	/* a process that exited is gone, and *ret is left zeroed */
	child_reap(a);
	child_reap(b);
	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, a, &p), -ENOENT);
	assert_zeroed(&p);
	assert_int_equal(collector__start_time(COLLECTOR_PROC_ROOT, a, &ns), -ENOENT);
	assert_int_equal(collector__find_service(COLLECTOR_PROC_ROOT, name, &pid), -ENOENT);
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, 0, &p), -ENOENT);
	assert_int_equal(collector__proc_read(COLLECTOR_PROC_ROOT, -1, &p), -ENOENT);
	assert_int_equal(collector__proc_read("/nonexistent-proc", getpid(), &p), -ENOENT);
}

/* ---- loopback TCP ----------------------------------------------------------- */

struct conn {
	pid_t child;
	int lfd, afd;
	struct sockaddr_storage client, server; /* as the accepted socket sees them */
};

static socklen_t make_addr(int family, const char *text, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
		return sizeof(*in);
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
	return sizeof(*in6);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Listens on laddr (an ephemeral port), forks a child that connects to caddr
 * on that port and then waits to be killed, and accepts its connection.
 * False if this host has no such address (no IPv6). */
static bool conn_open(int lfamily, const char *laddr, bool v6only, int cfamily, const char *caddr,
		      struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct pollfd pfd;
	int v6 = v6only;

	memset(c, 0, sizeof(*c));
	c->afd = -1;
	c->lfd = socket(lfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 && errno == EAFNOSUPPORT)
		return false;
	assert_true(c->lfd >= 0);
	if (lfamily == AF_INET6)
		assert_int_equal(setsockopt(c->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)), 0);
	len = make_addr(lfamily, laddr, 0, &ss);
	if (bind(c->lfd, (struct sockaddr *)&ss, len) < 0) {
		assert_int_equal(errno, EADDRNOTAVAIL);
		close(c->lfd);
		return false;
	}
	assert_int_equal(listen(c->lfd, 4), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&ss, &len), 0);
	len = make_addr(cfamily, caddr, port_of(&ss), &ss);

	c->child = fork();
	assert_true(c->child >= 0);
	if (c->child == 0) {
		int s = socket(cfamily, SOCK_STREAM, 0);

		close(c->lfd);
		if (s < 0 || connect(s, (struct sockaddr *)&ss, len) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	child_track(c->child);
	pfd.fd = c->lfd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	c->afd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(c->afd >= 0);
	len = sizeof(c->client);
	assert_int_equal(getpeername(c->afd, (struct sockaddr *)&c->client, &len), 0);
	len = sizeof(c->server);
	assert_int_equal(getsockname(c->afd, (struct sockaddr *)&c->server, &len), 0);
	return true;
}

/* Finds both ends of the connection and their owners; returns the inode of
 * the child's socket. */
static uint64_t check_conn(const struct conn *c, const struct sockaddr *client,
			   const struct sockaddr *server)
{
	int32_t hints[] = {0, -1, INT32_MAX, getpid(), 1, c->child};
	uint64_t child_ino = 0, own_ino = 0;
	int32_t owner;
	struct stat st;

	/* the client's socket: the child's */
	assert_int_equal(
		collector__tcp_socket_inode(COLLECTOR_PROC_ROOT, client, server, &child_ino), 0);
	owner = 0;
	assert_int_equal(collector__socket_owner(COLLECTOR_PROC_ROOT, child_ino, NULL, 0, &owner),
			 0);
	assert_int_equal(owner, c->child);
	owner = 0;
	assert_int_equal(collector__socket_owner(COLLECTOR_PROC_ROOT, child_ino, hints,
						 UTIL_ARRAY_SIZE(hints), &owner),
			 0);
	assert_int_equal(owner, c->child);

	/* the accepted socket: ours, and the inode fstat gives */
	assert_int_equal(collector__tcp_socket_inode(COLLECTOR_PROC_ROOT, server, client, &own_ino),
			 0);
	assert_int_equal(fstat(c->afd, &st), 0);
	assert_int_equal(own_ino, st.st_ino);
	assert_int_not_equal(own_ino, child_ino);
	owner = 0;
	assert_int_equal(collector__socket_owner(COLLECTOR_PROC_ROOT, own_ino, NULL, 0, &owner), 0);
	assert_int_equal(owner, getpid());
	return child_ino;
}

/* Kills the child: its socket, orphaned, keeps its addresses in the table
 * for a while but loses its inode, so it no longer counts. */
static void conn_close(struct conn *c)
{
	uint64_t inode;

	child_reap(c->child);
	assert_int_equal(collector__tcp_socket_inode(COLLECTOR_PROC_ROOT,
						     (struct sockaddr *)&c->client,
						     (struct sockaddr *)&c->server, &inode),
			 -ENOENT);
	close(c->afd);
	close(c->lfd);
}

static void test_tcp_ipv4(void **state)
{
	struct conn c;

	(void)state;
	assert_true(conn_open(AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1", &c));
	assert_int_equal(c.client.ss_family, AF_INET);
	check_conn(&c, (struct sockaddr *)&c.client, (struct sockaddr *)&c.server);
	conn_close(&c);
}

static void test_tcp_ipv6(void **state)
{
	struct conn c;

	(void)state;
	if (!conn_open(AF_INET6, "::1", true, AF_INET6, "::1", &c))
		skip();
	assert_int_equal(c.client.ss_family, AF_INET6);
	check_conn(&c, (struct sockaddr *)&c.client, (struct sockaddr *)&c.server);
	conn_close(&c);
}

/* A dual-stack listener reached over IPv4: the accepted socket is AF_INET6
 * and shows v4-mapped addresses (in tcp6), while the child's AF_INET socket
 * is plain IPv4 (in tcp). Either form finds either socket. */
static void test_tcp_dual_stack(void **state)
{
	struct sockaddr_storage client4, server4;
	uint64_t child_ino, inode;
	struct stat st;
	struct conn c;

	(void)state;
	if (!conn_open(AF_INET6, "::", false, AF_INET, "127.0.0.1", &c))
		skip();
	assert_int_equal(c.client.ss_family, AF_INET6);
	assert_true(IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&c.client)->sin6_addr));
	child_ino = check_conn(&c, (struct sockaddr *)&c.client, (struct sockaddr *)&c.server);

	make_addr(AF_INET, "127.0.0.1", port_of(&c.client), &client4);
	make_addr(AF_INET, "127.0.0.1", port_of(&c.server), &server4);
	assert_int_equal(collector__tcp_socket_inode(COLLECTOR_PROC_ROOT,
						     (struct sockaddr *)&client4,
						     (struct sockaddr *)&server4, &inode),
			 0);
	assert_int_equal(inode, child_ino);
	assert_int_equal(collector__tcp_socket_inode(COLLECTOR_PROC_ROOT,
						     (struct sockaddr *)&server4,
						     (struct sockaddr *)&client4, &inode),
			 0);
	assert_int_equal(fstat(c.afd, &st), 0);
	assert_int_equal(inode, st.st_ino);
	conn_close(&c);
}

/* ---- a fake procfs ------------------------------------------------------------ */

#define FAKE_BTIME 1700000000LL
#define ID64	   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID64_UPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

/* The hex words below are what a little-endian kernel prints. */
static const char fake_tcp[] =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
	"timeout inode\n"
	/* 127.0.0.1:4040 listening */
	"   0: 0100007F:0FC8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0    "
	"    0 11111 1 0000000000000000 100 0 0 10 0\n"
	/* 10.0.0.1:1234 -> 10.0.0.2:80 in TIME_WAIT: no inode */
	"   1: 0100000A:04D2 0200000A:0050 06 00000000:00000000 03:00000F9F 00000000     0    "
	"    0 0 3 0000000000000000\n"
	/* 127.0.0.1:40000 -> 127.0.0.1:4041: the same local address, another peer */
	"   2: 0100007F:9C40 0100007F:0FC9 01 00000000:00000000 00:00000000 00000000  1000    "
	"    0 222 1 0000000000000000 20 4 30 10 -1\n"
	/* 127.0.0.1:40000 -> 127.0.0.1:4040, in lower case */
	"   3: 0100007f:9c40 0100007f:0fc8 01 00000000:00000000 00:00000000 00000000  1000    "
	"    0 123 1 0000000000000000 20 4 30 10 -1\n";

static const char fake_tcp6[] =
	"  sl  local_address                         remote_address                        st "
	"tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	/* ::ffff:192.168.1.5:5000 -> ::ffff:192.168.1.6:6000 */
	"   0: 0000000000000000FFFF00000501A8C0:1388 0000000000000000FFFF00000601A8C0:1770 01 "
	"00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 0 10 "
	"-1\n"
	/* [::1]:8080 -> [::1]:50000 */
	"   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 "
	"00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 20 4 0 10 "
	"-1\n"
	/* ::192.168.1.5:5001 -> ::192.168.1.6:6001: v4-compatible, not v4-mapped */
	"   2: 0000000000000000000000000501A8C0:1389 0000000000000000000000000601A8C0:1771 01 "
	"00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 0 10 "
	"-1\n"
	/* ::ffff:10.0.0.1:1234 -> ::ffff:10.0.0.2:80 in TIME_WAIT */
	"   3: 0000000000000000FFFF00000100000A:04D2 0000000000000000FFFF00000200000A:0050 06 "
	"00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000\n";

static char *fake_path(const char *root, const char *rel)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return path;
}

/* Creates root/rel's folders. */
static void fake_mkdirs(const char *root, const char *rel)
{
	char path[PATH_MAX], *slash;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0755) < 0)
			assert_int_equal(errno, EEXIST);
		*slash = '/';
	}
}

static void fake_put(const char *root, const char *rel, const void *data, size_t len)
{
	int fd;

	fake_mkdirs(root, rel);
	fd = open(fake_path(root, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A string literal with NULs inside, without the one C adds. */
#define FAKE_PUT_LIT(root, rel, lit) fake_put(root, rel, lit, sizeof(lit) - 1)

static void fake_put_str(const char *root, const char *rel, const char *s)
{
	fake_put(root, rel, s, strlen(s));
}

static void fake_link(const char *root, const char *rel, const char *target)
{
	fake_mkdirs(root, rel);
	assert_int_equal(symlink(target, fake_path(root, rel)), 0);
}

static void fake_stat(const char *root, int pid, const char *comm, unsigned long long starttime)
{
	char rel[32], line[512];

	snprintf(rel, sizeof(rel), "%d/stat", pid);
	snprintf(line, sizeof(line),
		 "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %llu 1000000 100 "
		 "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		 pid, comm, pid, pid, starttime);
	fake_put_str(root, rel, line);
}

static int fake_setup(void **state)
{
	char tmpl[] = "/tmp/braid-collector-XXXXXX", *root, *env;
	size_t n = 0;

	assert_non_null(mkdtemp(tmpl));
	root = strdup(tmpl);
	assert_non_null(root);
	*state = root;

	fake_put_str(root, "stat",
		     "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 12345 0 0 0\n"
		     "ctxt 999\nbtime 1700000000\nprocesses 42\n");
	fake_put_str(root, "net/tcp", fake_tcp);
	fake_put_str(root, "net/tcp6", fake_tcp6);
	/* entries that are not processes */
	fake_link(root, "self", "100");
	assert_int_equal(mkdir(fake_path(root, "sys"), 0755), 0);
	fake_link(root, "12abc/fd/1", "socket:[4242]");

	/* 100: everything there is, and a comm with spaces and ')' */
	fake_stat(root, 100, "a b) c", 12345);
	fake_put_str(root, "100/status",
		     "Name:\ta b) c\nTgid:\t100\nPid:\t100\nPPid:\t1\nNSpid:\t100\t7\n");
	FAKE_PUT_LIT(root, "100/cmdline", "prog\0--flag\0x y\0\0");
	FAKE_PUT_LIT(root, "100/environ",
		     "FOO=1\0PYROSCOPE_APPLICATION_NAME=\0OTEL_SERVICE_NAME=svc-a\0");
	fake_put_str(root, "100/cgroup",
		     "12:pids:/\n0::/system.slice/docker-" ID64_UPPER ".scope\n");
	fake_link(root, "100/exe", "/usr/bin/python3.11 (deleted)");
	fake_link(root, "100/fd/0", "/dev/null");
	fake_link(root, "100/fd/3", "socket:[123]");
	fake_link(root, "100/fd/4", "pipe:[555]");

	/* 200: a long comm, no status, exe or cmdline, a repeated variable */
	fake_stat(root, 200, "averyveryverylongname", 250);
	FAKE_PUT_LIT(root, "200/environ",
		     "PYROSCOPE_APPLICATION_NAME=svc-b\0OTEL_SERVICE_NAME=svc-a\0"
		     "PYROSCOPE_APPLICATION_NAME=later\0");
	fake_put_str(root, "200/cgroup", "0::/\n");
	fake_link(root, "200/fd/5", "socket:[1234]");
	fake_link(root, "200/fd/6", "socket:[456]");

	/* 300: stat only */
	fake_stat(root, 300, "x", 1);
	/* 400: an environment but no stat */
	FAKE_PUT_LIT(root, "400/environ", "OTEL_SERVICE_NAME=svc-c\0");

	/* 500: the cap cuts the environment inside PYROSCOPE_APPLICATION_NAME's
	 * value: the cut "svc" is no name */
	fake_stat(root, 500, "big-env", 2);
	env = malloc(COLLECTOR_MAX_ENVIRON + 64);
	assert_non_null(env);
	memcpy(env, "A=", 2);
	memset(env + 2, 'x', COLLECTOR_MAX_ENVIRON - 33);
	n = COLLECTOR_MAX_ENVIRON - 31;
	env[n++] = '\0';
	memcpy(env + n, "PYROSCOPE_APPLICATION_NAME=svc-far-away", 40); /* with its NUL */
	n += 40;
	fake_put(root, "500/environ", env, n);

	/* 600: a command line over the cap */
	fake_stat(root, 600, "long-args", 3);
	memset(env, 'a', COLLECTOR_MAX_CMDLINE + 1000);
	env[COLLECTOR_MAX_CMDLINE + 1000] = '\0';
	fake_put(root, "600/cmdline", env, COLLECTOR_MAX_CMDLINE + 1001);
	free(env);

	/* 700: a thread of 100 (listed here, unlike in /proc) */
	fake_stat(root, 700, "worker", 12346);
	fake_put_str(root, "700/status", "Name:\tworker\nTgid:\t100\nPid:\t700\n");
	fake_link(root, "700/fd/9", "socket:[31337]");

	/* 800: a stat that is not one */
	fake_put_str(root, "800/stat", "800 no parens here\n");

	/* a root whose stat has no btime */
	fake_put_str(root, "noboot/stat", "cpu  1 2 3\n");
	fake_put_str(root, "noboot/1/stat",
		     "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 100 1\n");
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int fake_teardown(void **state)
{
	char *root = *state;

	if (root)
		assert_int_equal(nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(root);
	return 0;
}

static void test_fake_proc_read(void **state)
{
	const char *root = *state;
	struct collector_proc p;
	long hz = sysconf(_SC_CLK_TCK);
	int64_t ns;

	assert_int_equal(collector__proc_read(root, 100, &p), 0);
	assert_int_equal(p.pid, 100);
	assert_int_equal(p.ns_pid, 7);
	assert_string_equal(p.comm, "a b) c");
	assert_int_equal(p.start_time_ns, FAKE_BTIME * 1000000000 + 12345 * (1000000000 / hz));
	assert_string_equal(p.exe, "/usr/bin/python3.11 (deleted)");
	assert_int_equal(p.runtime, RUNTIME_PYTHON);
	assert_string_equal(p.cmdline, "prog --flag x y");
	assert_string_equal(p.service, "svc-a");
	assert_string_equal(p.container_id, ID64);
	collector__proc_release(&p);
	assert_int_equal(collector__start_time(root, 100, &ns), 0);
	assert_int_equal(ns, FAKE_BTIME * 1000000000 + 12345 * (1000000000 / hz));

	assert_int_equal(collector__proc_read(root, 200, &p), 0);
	assert_int_equal(p.ns_pid, 200);
	assert_string_equal(p.comm, "averyveryverylon");
	assert_int_equal(p.start_time_ns, FAKE_BTIME * 1000000000 + 250 * (1000000000 / hz));
	assert_null(p.exe);
	assert_int_equal(p.runtime, RUNTIME_UNKNOWN);
	assert_null(p.cmdline);
	assert_string_equal(p.service, "svc-b"); /* the first setting, as getenv */
	assert_null(p.container_id);
	collector__proc_release(&p);

	assert_int_equal(collector__proc_read(root, 300, &p), 0);
	assert_string_equal(p.comm, "x");
	assert_null(p.exe);
	assert_null(p.cmdline);
	assert_null(p.service);
	assert_null(p.container_id);
	collector__proc_release(&p);

	assert_int_equal(collector__proc_read(root, 500, &p), 0);
	assert_null(p.service);
	collector__proc_release(&p);

	assert_int_equal(collector__proc_read(root, 600, &p), 0);
	assert_non_null(p.cmdline);
	assert_int_equal(strlen(p.cmdline), COLLECTOR_MAX_CMDLINE);
	collector__proc_release(&p);

	/* stat is required; a broken one is -EIO; so is a missing btime */
	assert_int_equal(collector__proc_read(root, 400, &p), -ENOENT);
	assert_int_equal(collector__proc_read(root, 900, &p), -ENOENT);
	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(collector__proc_read(root, 800, &p), -EIO);
	assert_zeroed(&p);
	assert_int_equal(collector__start_time(root, 800, &ns), -EIO);
	assert_int_equal(collector__start_time(fake_path(root, "noboot"), 1, &ns), -EIO);
}

static void test_fake_find_service(void **state)
{
	const char *root = *state;
	int32_t pid = 0;

	assert_int_equal(collector__find_service(root, "svc-b", &pid), 0);
	assert_int_equal(pid, 200);
	assert_int_equal(collector__find_service(root, "svc-c", &pid), 0);
	assert_int_equal(pid, 400);
	/* 100's OTEL_SERVICE_NAME and 200's */
	assert_int_equal(collector__find_service(root, "svc-a", &pid), -ENOTUNIQ);
	/* a later setting of a name is not the one */
	assert_int_equal(collector__find_service(root, "later", &pid), -ENOENT);
	/* past the cap, or cut by it */
	assert_int_equal(collector__find_service(root, "svc-far-away", &pid), -ENOENT);
	assert_int_equal(collector__find_service(root, "svc", &pid), -ENOENT);
	assert_int_equal(collector__find_service(root, "nope", &pid), -ENOENT);
	assert_int_equal(collector__find_service("/nonexistent-proc", "svc-b", &pid), -ENOENT);
}

/* 0 and the inode, or the error. */
static int64_t fake_inode(const char *root, int lfamily, const char *local, uint16_t lport,
			  int rfamily, const char *remote, uint16_t rport)
{
	struct sockaddr_storage l, r;
	uint64_t inode = 0;
	int rc;

	make_addr(lfamily, local, lport, &l);
	make_addr(rfamily, remote, rport, &r);
	rc = collector__tcp_socket_inode(root, (struct sockaddr *)&l, (struct sockaddr *)&r,
					 &inode);
	return rc < 0 ? rc : (int64_t)inode;
}

static void test_fake_tcp(void **state)
{
	const char *root = *state;
	struct sockaddr_storage l;
	uint64_t inode;

	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		skip(); /* the tables above are as a little-endian kernel prints them */
	assert_int_equal(fake_inode(root, AF_INET, "127.0.0.1", 40000, AF_INET, "127.0.0.1", 4040),
			 123);
	assert_int_equal(fake_inode(root, AF_INET, "127.0.0.1", 40000, AF_INET, "127.0.0.1", 4041),
			 222);
	assert_int_equal(fake_inode(root, AF_INET, "127.0.0.1", 4040, AF_INET, "0.0.0.0", 0),
			 11111);
	assert_int_equal(fake_inode(root, AF_INET, "127.0.0.1", 40000, AF_INET, "127.0.0.1", 4042),
			 -ENOENT);
	/* a v4-mapped query finds the plain IPv4 socket */
	assert_int_equal(fake_inode(root, AF_INET6, "::ffff:127.0.0.1", 40000, AF_INET6,
				    "::ffff:127.0.0.1", 4040),
			 123);
	/* TIME_WAIT has no inode, in either table */
	assert_int_equal(fake_inode(root, AF_INET, "10.0.0.1", 1234, AF_INET, "10.0.0.2", 80),
			 -ENOENT);
	/* an IPv4 pair found v4-mapped in tcp6, asked either way */
	assert_int_equal(
		fake_inode(root, AF_INET, "192.168.1.5", 5000, AF_INET, "192.168.1.6", 6000), 777);
	assert_int_equal(fake_inode(root, AF_INET6, "::ffff:192.168.1.5", 5000, AF_INET,
				    "192.168.1.6", 6000),
			 777);
	assert_int_equal(
		fake_inode(root, AF_INET, "192.168.1.6", 6000, AF_INET, "192.168.1.5", 5000),
		-ENOENT);
	assert_int_equal(fake_inode(root, AF_INET6, "::1", 8080, AF_INET6, "::1", 50000), 888);
	assert_int_equal(fake_inode(root, AF_INET6, "::1", 8080, AF_INET6, "::1", 50001), -ENOENT);
	/* a v4-compatible address is not the IPv4 one */
	assert_int_equal(
		fake_inode(root, AF_INET, "192.168.1.5", 5001, AF_INET, "192.168.1.6", 6001),
		-ENOENT);
	assert_int_equal(
		fake_inode(root, AF_INET6, "::192.168.1.5", 5001, AF_INET6, "::192.168.1.6", 6001),
		999);
	/* no socket joins IPv4 and IPv6 */
	assert_int_equal(fake_inode(root, AF_INET, "127.0.0.1", 8080, AF_INET6, "::1", 50000),
			 -ENOENT);
	memset(&l, 0, sizeof(l));
	l.ss_family = AF_UNIX;
	assert_int_equal(collector__tcp_socket_inode(root, (struct sockaddr *)&l,
						     (struct sockaddr *)&l, &inode),
			 -EAFNOSUPPORT);
	assert_int_equal(fake_inode("/nonexistent-proc", AF_INET, "127.0.0.1", 40000, AF_INET,
				    "127.0.0.1", 4040),
			 -ENOENT);
	/* a root without tables has no sockets */
	assert_int_equal(fake_inode(fake_path(root, "noboot"), AF_INET, "127.0.0.1", 40000, AF_INET,
				    "127.0.0.1", 4040),
			 -ENOENT);
}

static void test_fake_socket_owner(void **state)
{
	const char *root = *state;
	int32_t miss[] = {300, 999, -5, 0, 200};
	int32_t hit[] = {300, 100};
	int32_t thread[] = {700};
	int32_t pid;

	pid = 0;
	assert_int_equal(collector__socket_owner(root, 123, NULL, 0, &pid), 0);
	assert_int_equal(pid, 100);
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 123, hit, UTIL_ARRAY_SIZE(hit), &pid), 0);
	assert_int_equal(pid, 100);
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 123, miss, UTIL_ARRAY_SIZE(miss), &pid), 0);
	assert_int_equal(pid, 100);
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 456, NULL, 0, &pid), 0);
	assert_int_equal(pid, 200);
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 1234, hit, UTIL_ARRAY_SIZE(hit), &pid), 0);
	assert_int_equal(pid, 200);
	/* a thread's id as a hint gives its process */
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 31337, thread, 1, &pid), 0);
	assert_int_equal(pid, 100);
	/* a prefix of an inode, a pipe, a non-process entry: no owner */
	pid = 0;
	assert_int_equal(collector__socket_owner(root, 12, NULL, 0, &pid), -ENOENT);
	assert_int_equal(collector__socket_owner(root, 555, NULL, 0, &pid), -ENOENT);
	assert_int_equal(collector__socket_owner(root, 4242, NULL, 0, &pid), -ENOENT);
	assert_int_equal(pid, 0);
	assert_int_equal(collector__socket_owner("/nonexistent-proc", 123, NULL, 0, &pid), -ENOENT);
}

/* ---- tables ------------------------------------------------------------------ */

static void test_container_id(void **state)
{
	static const struct {
		const char *line;
		const char *id; /* NULL: -ENOENT */
	} cases[] = {
		{"12:pids:/docker/" ID64, ID64},
		{"12:pids:/docker/" ID64 "\n", ID64},
		{"11:memory:/kubepods/burstable/pod6f1c8e2a-1b2c-4d5e-8f90-123456789abc/" ID64,
		 ID64},
		{"0::/system.slice/docker-" ID64 ".scope", ID64},
		{"0::/system.slice/docker-" ID64_UPPER ".scope", ID64},
		{"0::/system.slice/docker-" ID64 ".scope/init.scope", ID64},
		{"0::/kubepods.slice/kubepods-burstable.slice/"
		 "kubepods-burstable-pod6f1c8e2a_1b2c_4d5e_8f90_123456789abc.slice/"
		 "cri-containerd-" ID64 ".scope",
		 ID64},
		{"0::/kubepods.slice/kubepods-besteffort.slice/"
		 "kubepods-besteffort-pod6f1c8e2a_1b2c_4d5e_8f90_123456789abc.slice/crio-" ID64
		 ".scope",
		 ID64},
		{"0::/machine.slice/libpod-" ID64 ".scope", ID64},
		/* docker in docker: the innermost */
		{"1:name=systemd:/docker/"
		 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210/docker/" ID64,
		 ID64},
		/* conmon, the monitor, is not in the container */
		{"0::/kubepods.slice/kubepods-besteffort.slice/"
		 "kubepods-besteffort-pod6f1c8e2a_1b2c_4d5e_8f90_123456789abc.slice/"
		 "crio-conmon-" ID64 ".scope",
		 NULL},
		{"0::/machine.slice/libpod-conmon-" ID64 ".scope", NULL},
		{"0::/user.slice/user-0.slice/session-1.scope", NULL},
		{"0::/", NULL},
		{"", NULL},
		{"4:memory:/process_api/c362c6d125b87309140b31de602922e7", NULL},
		{"0::/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		 NULL},
		{"0::/docker/" ID64 "0", NULL},
		{"0::/docker/0123456789abcdef0123456789abcdeg0123456789abcdef0123456789abcdef",
		 NULL},
	};
	char id[COLLECTOR_CONTAINER_ID_MAX + 1];
	char line[256];
	size_t i;

	(void)state;
	for (i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		int r = collector__container_id(cases[i].line, strlen(cases[i].line), id);

		if (!cases[i].id) {
			if (r != -ENOENT)
				fail_msg("case %zu: %s: %d", i, cases[i].line, r);
			continue;
		}
		if (r != 0)
			fail_msg("case %zu: %s: %d", i, cases[i].line, r);
		assert_string_equal(id, cases[i].id);
	}
	/* only len bytes count: the line need not end with a NUL */
	snprintf(line, sizeof(line), "0::/docker/%sffff", ID64);
	assert_int_equal(collector__container_id(line, strlen(line) - 4, id), 0);
	assert_string_equal(id, ID64);
	assert_int_equal(collector__container_id(line, strlen(line) - 5, id), -ENOENT);
	/* and the first line is all that counts */
	snprintf(line, sizeof(line), "0::/\n0::/docker/%s", ID64);
	assert_int_equal(collector__container_id(line, strlen(line), id), -ENOENT);
}

/* The runtime from what a process maps (a native executable embedding a
 * runtime) and from Go's build id note, in a fake /proc. */
static void test_runtime_detection(void **state)
{
	const char *root = *state;
	const char *maps_py = "55d0c0000000-55d0c0001000 r-xp 00000000 08:01 11 /usr/bin/uwsgi\n"
			      "7f0000000000-7f0000100000 r-xp 00000000 08:01 12 "
			      "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n";
	const char *maps_node = "55d0c0000000-55d0c0001000 r-xp 00000000 08:01 11 /opt/app/server\n"
				"7f0000000000-7f0000100000 r-xp 00000000 08:01 13 "
				"/usr/lib/libnode.so.108\n";
	const char *maps_plain =
		"55d0c0000000-55d0c0001000 r-xp 00000000 08:01 11 /opt/app/server\n"
		"7f0000000000-7f0000100000 r-xp 00000000 08:01 14 "
		"/usr/lib/x86_64-linux-gnu/libc.so.6\n";

	fake_put_str(root, "901/maps", maps_py);
	fake_put_str(root, "902/maps", maps_node);
	fake_put_str(root, "903/maps", maps_plain);
	fake_link(root, "903/exe", SYMTARGET_GO);
	fake_put_str(root, "904/maps", maps_plain);
	fake_link(root, "904/exe", SYMTARGET_PIE);

	assert_int_equal(collector__runtime(root, 901, "/usr/bin/uwsgi"), RUNTIME_PYTHON);
	assert_int_equal(collector__runtime(root, 902, "/opt/app/server"), RUNTIME_NODE);
	assert_int_equal(collector__runtime(root, 903, "/opt/app/server"), RUNTIME_GO);
	assert_int_equal(collector__runtime(root, 904, "/opt/app/server"), RUNTIME_NATIVE);
	/* the exe's name decides first; no exe: unknown */
	assert_int_equal(collector__runtime(root, 903, "/usr/bin/node"), RUNTIME_NODE);
	assert_int_equal(collector__runtime(root, 903, NULL), RUNTIME_UNKNOWN);
	/* a process gone: what the name says */
	assert_int_equal(collector__runtime(root, 999, "/opt/app/server"), RUNTIME_NATIVE);
}

static void test_runtime_of_exe(void **state)
{
	static const struct {
		const char *exe;
		enum runtime runtime;
	} cases[] = {
		{"/usr/bin/node", RUNTIME_NODE},
		{"/usr/local/bin/nodejs", RUNTIME_NODE},
		{"/usr/bin/node (deleted)", RUNTIME_NODE},
		{"node", RUNTIME_NODE},
		{"/usr/bin/python3.11", RUNTIME_PYTHON},
		{"/usr/bin/python3", RUNTIME_PYTHON},
		{"/usr/bin/python", RUNTIME_PYTHON},
		{"/usr/bin/ruby3.1", RUNTIME_RUBY},
		{"/usr/bin/ruby", RUNTIME_RUBY},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", RUNTIME_JVM},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java (deleted)", RUNTIME_JVM},
		{"/usr/share/dotnet/dotnet", RUNTIME_DOTNET},
		{"/usr/bin/sleep", RUNTIME_NATIVE},
		{"/usr/bin/nodex", RUNTIME_NATIVE},
		{"/usr/bin/javac", RUNTIME_NATIVE},
		{"/opt/node/bin/app", RUNTIME_NATIVE},
		{"/usr/bin/pyth", RUNTIME_NATIVE},
		{"", RUNTIME_NATIVE},
	};
	size_t i;

	(void)state;
	assert_int_equal(collector__runtime_of_exe(NULL), RUNTIME_UNKNOWN);
	for (i = 0; i < UTIL_ARRAY_SIZE(cases); i++)
		if (collector__runtime_of_exe(cases[i].exe) != cases[i].runtime)
			fail_msg("%s: %d, want %d", cases[i].exe,
				 collector__runtime_of_exe(cases[i].exe), cases[i].runtime);
}

/* ---- symbolization: kallsyms ---------------------------------------------------- */

static const char ksyms_text[] = "ffffffff81000000 T _stext\n"
				 "ffffffff81000000 T _text\n"
				 "ffffffff81000100 t local_fn\n"
				 "ffffffff81000200 W weak_fn\n"
				 "ffffffff81000300 w weak_local\n"
				 "ffffffff81000400 D some_data\n"
				 "ffffffff81000500 b bss_thing\n"
				 "ffffffff81000600 r rodata_thing\n"
				 "ffffffff81000700 T last_kernel_fn\n"
				 "ffffffff810006f0 t aaa_local\n"
				 "ffffffff810006f0 T zzz_global\n"
				 "ffffffffc0a01000 t foo_init\t[foo]\n"
				 "ffffffffc0a01100 T foo_exported\t[foo]\n"
				 "ffffffffc0c00000 t bar_fn\t[bar]\n"
				 "ffffffffc0a01200 t foo_late\t[foo]"; /* no final newline */

/* Looks addr up and checks the answer; name NULL: -ENOENT. */
static void check_ksym(const struct collector_ksyms *k, uint64_t addr, const char *name,
		       const char *module, uint64_t offset)
{
	const char *n = NULL, *m = NULL;
	uint64_t off = 0;
	int r = collector_ksyms__lookup(k, addr, &n, &m, &off);

	if (!name) {
		if (r != -ENOENT)
			fail_msg("%#" PRIx64 ": %d (%s), want -ENOENT", addr, r, r == 0 ? n : "");
		return;
	}
	if (r != 0)
		fail_msg("%#" PRIx64 ": %d, want %s", addr, r, name);
	assert_string_equal(n, name);
	assert_string_equal(m, module);
	assert_int_equal(off, offset);
}

static void test_ksyms_parse(void **state)
{
	static const char hidden[] = "0000000000000000 T _stext\n"
				     "0000000000000000 D data\n"
				     "0000000000000000 t foo\t[foo]\n";
	const uint64_t max = COLLECTOR_KSYM_MAX_SIZE;
	struct collector_ksyms *k = NULL;
	const char *n1, *n2, *m1, *m2;
	struct errbuf err = {""};
	uint64_t off;

	(void)state;
	assert_int_equal(collector_ksyms__parse(ksyms_text, strlen(ksyms_text), &err, &k), 0);
	/* _text is an alias of _stext; d, D, b, r are no text */
	assert_int_equal(collector_ksyms__count(k), 10);
	check_ksym(k, 0xffffffff81000000, "_stext", COLLECTOR_KERNEL_MODULE, 0);
	check_ksym(k, 0xffffffff81000050, "_stext", COLLECTOR_KERNEL_MODULE, 0x50);
	check_ksym(k, 0xffffffff81000100, "local_fn", COLLECTOR_KERNEL_MODULE, 0);
	check_ksym(k, 0xffffffff810001ff, "local_fn", COLLECTOR_KERNEL_MODULE, 0xff);
	check_ksym(k, 0xffffffff81000250, "weak_fn", COLLECTOR_KERNEL_MODULE, 0x50);
	check_ksym(k, 0xffffffff81000350, "weak_local", COLLECTOR_KERNEL_MODULE, 0x50);
	/* the data symbols name nothing: the text symbol before them holds */
	check_ksym(k, 0xffffffff81000450, "weak_local", COLLECTOR_KERNEL_MODULE, 0x150);
	check_ksym(k, 0xffffffff81000600, "weak_local", COLLECTOR_KERNEL_MODULE, 0x300);
	/* at one address the global symbol wins over the local one */
	check_ksym(k, 0xffffffff810006f4, "zzz_global", COLLECTOR_KERNEL_MODULE, 4);
	check_ksym(k, 0xffffffff81000700 + 0x1000, "last_kernel_fn", COLLECTOR_KERNEL_MODULE,
		   0x1000);
	check_ksym(k, 0xffffffff81000700 + max, "last_kernel_fn", COLLECTOR_KERNEL_MODULE, max);
	/* between the kernel's last symbol and the modules, and before all */
	check_ksym(k, 0xffffffff81000700 + max + 1, NULL, NULL, 0);
	check_ksym(k, 0xffffffffc0000000, NULL, NULL, 0);
	check_ksym(k, 0xffffffff80ffffff, NULL, NULL, 0);
	check_ksym(k, 0, NULL, NULL, 0);
	check_ksym(k, 0xffffffffc0a01010, "foo_init", "[foo]", 0x10);
	check_ksym(k, 0xffffffffc0a01100, "foo_exported", "[foo]", 0);
	check_ksym(k, 0xffffffffc0a01250, "foo_late", "[foo]", 0x50);
	check_ksym(k, 0xffffffffc0a01200 + max + 1, NULL, NULL, 0);
	check_ksym(k, 0xffffffffc0c00010, "bar_fn", "[bar]", 0x10);
	check_ksym(k, 0xffffffffc0c00000 + max, "bar_fn", "[bar]", max);
	check_ksym(k, 0xffffffffc0c00000 + max + 1, NULL, NULL, 0);
	check_ksym(k, UINT64_MAX, NULL, NULL, 0);
	/* one string per module */
	assert_int_equal(collector_ksyms__lookup(k, 0xffffffffc0a01000, &n1, &m1, &off), 0);
	assert_int_equal(collector_ksyms__lookup(k, 0xffffffffc0a01200, &n2, &m2, &off), 0);
	assert_ptr_equal(m1, m2);
	collector_ksyms__free(k);
	collector_ksyms__free(NULL);

	/* empty: no symbols, no error */
	k = NULL;
	assert_int_equal(collector_ksyms__parse("", 0, &err, &k), 0);
	assert_int_equal(collector_ksyms__count(k), 0);
	check_ksym(k, 0xffffffff81000000, NULL, NULL, 0);
	collector_ksyms__free(k);

	/* what an unprivileged reader sees under kptr_restrict */
	k = NULL;
	assert_int_equal(collector_ksyms__parse(hidden, strlen(hidden), &err, &k), -EACCES);
	assert_null(k);
	assert_string_equal(err.msg,
			    "kallsyms addresses are hidden (kernel.kptr_restrict): run as root");

	/* malformed lines, by number */
	assert_int_equal(collector_ksyms__parse("ffffffff81000000 T a\nnot a line\n", 32, &err, &k),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_int_equal(collector_ksyms__parse("ffffffff81000000 T a\tfoo]\n", 26, &err, &k),
			 -EBADMSG);
	assert_non_null(strstr(err.msg, "line 1"));
	assert_int_equal(collector_ksyms__parse("ffffffff81000000T a\n", 20, &err, &k), -EBADMSG);
	assert_int_equal(collector_ksyms__parse("fffffffff81000000 T a\n", 22, &err, &k), -EBADMSG);
	assert_null(k);
}

/* Inputs fuzz_kallsyms found (tests/data/fuzz-regressions/, see
 * docs/fuzzing.md): each is refused with the line and the fault. */
static void test_ksyms_fuzz_regressions(void **state)
{
	static const struct {
		const char *file;
		const char *msg;
	} t[] = {
		/* a NUL inside a module name cut it: "[" came back as the module */
		{"kallsyms-module-nul", "kallsyms line 1: a NUL byte"},
		/* a module name over the name cap lost its ']' when cut */
		{"kallsyms-module-too-long", "kallsyms line 1: a module name over 4096 bytes"},
	};

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(t); i++) {
		struct collector_ksyms *k = NULL;
		struct errbuf err = {""};
		struct dynbuf text;
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", BRAID_FUZZ_REGRESSIONS, t[i].file);
		dynbuf__init(&text, 0);
		assert_int_equal(util__read_file(path, 1u << 20, &err, &text), 0);
		assert_int_equal(collector_ksyms__parse(text.data, text.len, &err, &k), -EBADMSG);
		assert_null(k);
		assert_string_equal(err.msg, t[i].msg);
		dynbuf__free(&text);
	}
}

/* The live kallsyms, when this user may see its addresses: a symbol alone
 * at its address is found by it. */
static void test_ksyms_proc(void **state)
{
	struct collector_ksyms *k = NULL;
	struct errbuf err = {""};
	struct dynbuf text;
	const char *p, *end, *name, *module, *want = NULL;
	char want_name[256] = "";
	uint64_t want_addr = 0, off;
	size_t line = 0;
	int r;

	(void)state;
	r = collector_ksyms__load("/proc/kallsyms", &err, &k);
	if (r == -EACCES || r == -ENOENT) {
		print_message("skipped: %s\n", err.msg);
		skip();
	}
	assert_int_equal(r, 0);
	assert_true(collector_ksyms__count(k) > 1000);

	/* a kernel text symbol some way in whose address no other text
	 * symbol shares */
	dynbuf__init(&text, 0);
	assert_int_equal(util__read_file("/proc/kallsyms", COLLECTOR_MAX_KALLSYMS, NULL, &text), 0);
	end = text.data + text.len;
	for (p = text.data; p < end && !want; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		unsigned long long addr;
		char type, nm[256];

		if (line > 5000 && sscanf(p, "%llx %c %255s", &addr, &type, nm) == 3 &&
		    type == 'T' && nl && nl[-1] != ']') {
			char key[32];
			size_t n = (size_t)snprintf(key, sizeof(key), "\n%016llx ", addr);
			const char *first = memmem(text.data, text.len, key, n);

			/* no other line, of any type, at this address */
			if (first && !memmem(first + 1, (size_t)(end - first - 1), key, n)) {
				want_addr = addr;
				snprintf(want_name, sizeof(want_name), "%s", nm);
				want = want_name;
			}
		}
		p = nl ? nl + 1 : end;
	}
	dynbuf__free(&text);
	assert_non_null(want);
	assert_int_equal(collector_ksyms__lookup(k, want_addr, &name, &module, &off), 0);
	assert_string_equal(name, want);
	assert_string_equal(module, COLLECTOR_KERNEL_MODULE);
	assert_int_equal(off, 0);
	collector_ksyms__free(k);
}

/* ---- symbolization: programs to look at ------------------------------------------ */

#define TARGET_MAX_FUNCS 8

/* A running symtarget program and the addresses it printed. */
struct target {
	pid_t pid;
	int in; /* its stdin: closing it ends it */
	size_t n;
	struct {
		char name[64];
		uint64_t addr;
	} funcs[TARGET_MAX_FUNCS];
};

static void target_start(const char *path, struct target *t)
{
	char buf[2048] = "", *line, *nl;
	int in[2], out[2];
	size_t have = 0;

	memset(t, 0, sizeof(*t));
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		char *argv[] = {(char *)path, NULL};

		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
			_exit(126);
		execv(path, argv);
		_exit(127);
	}
	child_track(t->pid);
	close(in[0]);
	close(out[1]);
	t->in = in[1];
	while (!strstr(buf, "ready\n")) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 20000), 1);
		n = read(out[0], buf + have, sizeof(buf) - 1 - have);
		assert_true(n > 0);
		have += (size_t)n;
		buf[have] = '\0';
	}
	close(out[0]);
	for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
		void *addr;

		*nl = '\0';
		if (strcmp(line, "ready") == 0)
			break;
		assert_true(t->n < TARGET_MAX_FUNCS);
		assert_int_equal(sscanf(line, "%63s %p", t->funcs[t->n].name, &addr), 2);
		t->funcs[t->n++].addr = (uint64_t)(uintptr_t)addr;
	}
}

static uint64_t target_addr(const struct target *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->funcs[i].name, name) == 0)
			return t->funcs[i].addr;
	fail_msg("%s: not printed", name);
	return 0;
}

/* Closes its stdin: it exits 0. */
static void target_stop(struct target *t)
{
	int status;
	size_t i;

	close(t->in);
	assert_int_equal(waitpid(t->pid, &status, 0), t->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (i = 0; i < n_children; i++)
		if (children[i] == t->pid)
			children[i] = children[--n_children];
}

/* The mapping of pid holding addr, from its maps: start and file offset. */
static void mapping_of(pid_t pid, uint64_t addr, uint64_t *ret_start, uint64_t *ret_pgoff)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, pgoff;

		if (sscanf(line, "%llx-%llx %*s %llx", &start, &end, &pgoff) == 3 &&
		    addr >= start && addr < end) {
			*ret_start = start;
			*ret_pgoff = pgoff;
			found = true;
		}
	}
	fclose(f);
	assert_true(found);
}

/* The lowest address pid maps file_path at: a PIE's load bias. */
static uint64_t load_base(pid_t pid, const char *file_path)
{
	char path[64], line[4096];
	uint64_t base = UINT64_MAX;
	size_t plen = strlen(file_path);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start;
		size_t len = strcspn(line, "\n");

		if (len >= plen && memcmp(line + len - plen, file_path, plen) == 0 &&
		    sscanf(line, "%llx-", &start) == 1 && start < base)
			base = start;
	}
	fclose(f);
	assert_true(base != UINT64_MAX);
	return base;
}

/* Whether an ELF file has a section of type `type`, read by hand. */
static bool elf_has_section(const char *path, uint32_t type)
{
	struct dynbuf b;
	const Elf64_Ehdr *eh;
	bool found = false;
	size_t i;

	dynbuf__init(&b, 0);
	assert_int_equal(util__read_file(path, 1u << 30, NULL, &b), 0);
	assert_true(b.len >= sizeof(*eh));
	eh = (const Elf64_Ehdr *)b.data;
	assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh->e_ident[EI_CLASS], ELFCLASS64);
	assert_true(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) <= b.len);
	for (i = 0; i < eh->e_shnum; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, b.data + eh->e_shoff + i * sizeof(sh), sizeof(sh));
		found |= sh.sh_type == type;
	}
	dynbuf__free(&b);
	return found;
}

static void assert_frame(const struct frame *f, enum frame_kind kind, const char *module,
			 const char *name, uint64_t offset)
{
	if (f->kind != kind)
		fail_msg("kind %d (%s %s), want %d", f->kind, f->module, f->name ? f->name : "-",
			 kind);
	assert_non_null(f->module);
	assert_string_equal(f->module, module);
	if (name) {
		if (!f->name)
			fail_msg("%s: no name, want %s (offset %#" PRIx64 ")", f->module, name,
				 f->offset);
		assert_string_equal(f->name, name);
	} else if (f->name) {
		fail_msg("%s: named %s, want none", f->module, f->name);
	}
	assert_int_equal(f->offset, offset);
}

static struct collector_symbolizer *symbolizer_new(size_t max_bytes)
{
	struct collector_symbolizer_options o = {.no_kernel = true, .max_cache_bytes = max_bytes};
	struct collector_symbolizer *s = NULL;
	struct errbuf err = {""};

	assert_int_equal(collector_symbolizer__new(&o, &err, &s), 0);
	assert_non_null(s);
	return s;
}

/* ---- symbolization: ELF files ----------------------------------------------------- */

/* Reads path and checks that its function `name`, at run time at addr in
 * the running t, is found through its file offset. */
static void check_elf_file(const char *path, const struct target *t, const char *name,
			   bool stripped)
{
	struct collector_elf *e = NULL;
	struct errbuf err = {""};
	const char *bid, *found;
	uint64_t addr = target_addr(t, name), start = 0, pgoff = 0, vaddr, off;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, path, &err, &e), 0);
	close(fd); /* nothing refers to it any more */
	assert_true(collector_elf__count(e) > 2);
	assert_true(collector_elf__bytes(e) > collector_elf__count(e) * 8);
	/* gcc on Debian links with --build-id (SHA-1) */
	bid = collector_elf__build_id(e);
	assert_non_null(bid);
	assert_int_equal(strlen(bid), 40);
	assert_int_equal(strspn(bid, "0123456789abcdef"), 40);

	mapping_of(t->pid, addr, &start, &pgoff);
	assert_int_equal(collector_elf__vaddr(e, addr - start + pgoff, &vaddr), 0);
	if (strstr(path, "nopie"))
		assert_int_equal(vaddr, addr); /* an ET_EXEC runs at its link addresses */
	else
		assert_int_equal(vaddr, addr - load_base(t->pid, path));
	assert_int_equal(collector_elf__lookup(e, vaddr, &found, &off), 0);
	assert_string_equal(found, name);
	assert_int_equal(off, 0);
	assert_int_equal(collector_elf__lookup(e, vaddr + 5, &found, &off), 0);
	assert_string_equal(found, name);
	assert_int_equal(off, 5);
	assert_int_equal(collector_elf__lookup(e, 0, &found, &off), -ENOENT);
	assert_int_equal(collector_elf__lookup(e, UINT64_MAX, &found, &off), -ENOENT);
	assert_int_equal(collector_elf__vaddr(e, UINT64_MAX - 1, &vaddr), -ENOENT);
	if (stripped && strcmp(name, "braid_sym_alpha") == 0) {
		/* the static function is in .symtab only */
		addr = target_addr(t, "braid_sym_gamma");
		assert_int_equal(collector_elf__vaddr(e, addr - start + pgoff, &vaddr), 0);
		assert_int_equal(collector_elf__lookup(e, vaddr + 4, &found, &off), -ENOENT);
	}
	collector_elf__free(e);
}

static void test_elf_files(void **state)
{
	struct target t;

	(void)state;
	collector_elf__free(NULL);
	target_start(SYMTARGET_PIE, &t);
	check_elf_file(SYMTARGET_PIE, &t, "braid_sym_alpha", false);
	check_elf_file(SYMTARGET_PIE, &t, "braid_sym_gamma", false);
	target_stop(&t);

	target_start(SYMTARGET_NOPIE, &t);
	check_elf_file(SYMTARGET_NOPIE, &t, "braid_sym_beta", false);
	check_elf_file(SYMTARGET_NOPIE, &t, "braid_sym_gamma", false);
	target_stop(&t);

	/* stripped: no .symtab, the exported functions from .dynsym */
	assert_true(elf_has_section(SYMTARGET_PIE, SHT_SYMTAB));
	assert_false(elf_has_section(SYMTARGET_STRIPPED, SHT_SYMTAB));
	assert_true(elf_has_section(SYMTARGET_STRIPPED, SHT_DYNSYM));
	target_start(SYMTARGET_STRIPPED, &t);
	check_elf_file(SYMTARGET_STRIPPED, &t, "braid_sym_alpha", true);
	target_stop(&t);

	target_start(SYMTARGET_LIB, &t);
	check_elf_file(SYMLIB, &t, "braid_lib_delta", false);
	target_stop(&t);
}

/* Bytes that are no ELF file, cut short, or corrupted at random: an error
 * or a usable result, never a crash (the ASan build watches the reads). */
static void test_elf_hostile(void **state)
{
	char path[] = "/tmp/braid-elf-XXXXXX";
	struct collector_elf *e = NULL;
	struct errbuf err = {""};
	struct dynbuf good;
	uint64_t seed = 0x9e3779b97f4a7c15ULL, v;
	const char *name;
	char *bad;
	int fd, i, j, r;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
	assert_int_equal(collector_elf__read(fd, "script", &err, &e), -ENOEXEC);
	assert_non_null(strstr(err.msg, "script: not an ELF file"));
	assert_null(e);
	close(fd);
	fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(collector_elf__read(fd, "/tmp", &err, &e), -ENOEXEC);
	close(fd);
	assert_int_equal(collector_elf__read_memory("\177ELF", 4, "tiny", &err, &e), -ENOEXEC);

	dynbuf__init(&good, 0);
	assert_int_equal(util__read_file(SYMTARGET_PIE, 64u << 20, NULL, &good), 0);
	bad = malloc(good.len);
	assert_non_null(bad);
	/* the ELF header alone: its program headers lie past the end */
	r = collector_elf__read_memory(good.data, 64, "header", &err, &e);
	assert_true(r < 0 && r != -ENOMEM);
	assert_null(e);
	for (i = 0; i < 400; i++) {
		memcpy(bad, good.data, good.len);
		for (j = 0; j < 8; j++) {
			size_t at;

			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			v = seed >> 16;
			/* the headers, or the section headers and tables at the end */
			at = j % 2 ? v % 256
				   : good.len - 1 - v % (good.len < 8192 ? good.len : 8192);
			bad[at] = (char)(v >> 24);
		}
		e = NULL;
		r = collector_elf__read_memory(bad, good.len, "corrupt", &err, &e);
		assert_true(r == 0 || (r < 0 && r != -ENOMEM));
		if (r == 0) {
			uint64_t off;

			for (v = 0; v < 0x10000; v += 0x101)
				(void)collector_elf__lookup(e, v, &name, &off);
			(void)collector_elf__vaddr(e, 0x1000, &off);
			collector_elf__free(e);
		}
	}
	free(bad);
	dynbuf__free(&good);
	unlink(path);
}

/* ---- symbolization: processes --------------------------------------------------- */

static void check_target(struct collector_symbolizer *s, const char *path, bool stripped)
{
	struct collector_symbolizer_stats st;
	struct frame f[6];
	uint64_t ips[6];
	char module[PATH_MAX];
	struct target t;

	assert_non_null(realpath(path, module));
	target_start(path, &t);
	ips[0] = target_addr(&t, "braid_sym_alpha") + 4;
	ips[1] = target_addr(&t, "braid_sym_beta") + 1;
	ips[2] = target_addr(&t, "braid_sym_gamma") + 4;
	ips[3] = target_addr(&t, "braid_sym_alpha");
	ips[4] = 0x10; /* below every mapping */
	ips[5] = strstr(path, "symtarget_lib") ? target_addr(&t, "braid_lib_delta") + 4 : ips[0];
	memset(f, 0, sizeof(f));
	assert_int_equal(collector_symbolizer__user(s, t.pid, ips, 6, f), 0);
	assert_frame(&f[0], FRAME_NATIVE, module, "braid_sym_alpha", 0);
	assert_frame(&f[1], FRAME_NATIVE, module, "braid_sym_beta", 0);
	if (stripped)
		/* in .symtab only: the module and its ELF address */
		assert_frame(&f[2], FRAME_NATIVE, module, NULL, ips[2] - load_base(t.pid, module));
	else
		assert_frame(&f[2], FRAME_NATIVE, module, "braid_sym_gamma", 0);
	assert_frame(&f[3], FRAME_NATIVE, module, "braid_sym_alpha", 0);
	assert_frame(&f[4], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
	if (strstr(path, "symtarget_lib")) {
		char lib[PATH_MAX];

		assert_non_null(realpath(SYMLIB, lib));
		assert_frame(&f[5], FRAME_NATIVE, lib, "braid_lib_delta", 0);
	}
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes_lost, 0);
	assert_int_equal(st.elf_errors, 0);
	target_stop(&t);
}

static void test_symbolize_programs(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s;

	(void)state;
	s = symbolizer_new(0);
	check_target(s, SYMTARGET_PIE, false);
	check_target(s, SYMTARGET_NOPIE, false);
	check_target(s, SYMTARGET_STRIPPED, true);
	check_target(s, SYMTARGET_LIB, false);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.frames, 24);
	assert_int_equal(st.frames_unmapped, 4);
	assert_int_equal(st.frames_unnamed, 1); /* the stripped static function */
	/* the four programs and the library, each read once */
	assert_int_equal(st.elf_loaded, 5);
	assert_int_equal(st.elf_shared, 0);
	assert_int_equal(st.processes, 4);
	assert_true(st.cache_bytes > 0);
	/* they exited: trim forgets them */
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 0);
	collector_symbolizer__free(s);
	collector_symbolizer__free(NULL);
}

/* Two processes of one binary: one ELF entry. */
static void test_symbolize_shared(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s;
	struct frame f[2];
	struct target a, b;
	uint64_t ips[2];

	(void)state;
	s = symbolizer_new(0);
	target_start(SYMTARGET_PIE, &a);
	target_start(SYMTARGET_PIE, &b);
	ips[0] = target_addr(&a, "braid_sym_alpha") + 2;
	ips[1] = target_addr(&a, "braid_sym_beta") + 2;
	assert_int_equal(collector_symbolizer__user(s, a.pid, ips, 2, f), 0);
	assert_string_equal(f[0].name, "braid_sym_alpha");
	ips[0] = target_addr(&b, "braid_sym_alpha") + 2;
	ips[1] = target_addr(&b, "braid_sym_gamma") + 2;
	assert_int_equal(collector_symbolizer__user(s, b.pid, ips, 2, f), 0);
	assert_string_equal(f[0].name, "braid_sym_alpha");
	assert_string_equal(f[1].name, "braid_sym_gamma");
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_loaded, 1);
	assert_int_equal(st.elf_shared, 2);
	assert_int_equal(st.processes, 2);

	/* forget() takes effect at once; a (still running) process
	 * symbolized again is read afresh */
	collector_symbolizer__forget(s, b.pid);
	collector_symbolizer__forget(s, 999999999); /* unknown: nothing */
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 1);
	assert_string_equal(f[1].name, "braid_sym_gamma"); /* valid until trim */
	assert_int_equal(collector_symbolizer__user(s, b.pid, ips, 2, f), 0);
	assert_string_equal(f[1].name, "braid_sym_gamma");
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 2); /* both still run */
	assert_int_equal(st.elf_loaded, 1);
	target_stop(&a);
	target_stop(&b);
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 0);
	collector_symbolizer__free(s);
}

/* The cache bound: least recently used entries go at trim, and come back
 * when needed. */
static void test_symbolize_evict(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s;
	struct target a, b;
	struct frame f;
	uint64_t ia, ib;
	size_t bytes_a, bytes_ab;

	(void)state;
	target_start(SYMTARGET_PIE, &a);
	target_start(SYMTARGET_NOPIE, &b);
	ia = target_addr(&a, "braid_sym_alpha") + 1;
	ib = target_addr(&b, "braid_sym_beta") + 1;

	/* how big the two entries are */
	s = symbolizer_new(0);
	assert_int_equal(collector_symbolizer__user(s, a.pid, &ia, 1, &f), 0);
	collector_symbolizer__stats(s, &st);
	bytes_a = st.cache_bytes;
	assert_int_equal(collector_symbolizer__user(s, b.pid, &ib, 1, &f), 0);
	collector_symbolizer__stats(s, &st);
	bytes_ab = st.cache_bytes;
	assert_true(bytes_a > 0 && bytes_ab > bytes_a);
	collector_symbolizer__trim(s); /* under the default bound: nothing goes */
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_evicted, 0);
	assert_int_equal(st.cache_bytes, bytes_ab);
	collector_symbolizer__free(s);

	/* room for either, not both */
	s = symbolizer_new(bytes_ab - 1);
	assert_int_equal(collector_symbolizer__user(s, a.pid, &ia, 1, &f), 0);
	assert_int_equal(collector_symbolizer__user(s, b.pid, &ib, 1, &f), 0);
	assert_int_equal(collector_symbolizer__user(s, a.pid, &ia, 1, &f), 0);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.cache_bytes, bytes_ab); /* over the bound until trim */
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_evicted, 1);
	assert_int_equal(st.cache_bytes, bytes_a); /* b's was used least recently */
	assert_int_equal(collector_symbolizer__user(s, a.pid, &ia, 1, &f), 0);
	assert_string_equal(f.name, "braid_sym_alpha");
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_loaded, 2);
	assert_int_equal(collector_symbolizer__user(s, b.pid, &ib, 1, &f), 0);
	assert_string_equal(f.name, "braid_sym_beta");
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_loaded, 3); /* read again */
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_evicted, 2);
	assert_int_equal(st.cache_bytes, bytes_ab - bytes_a); /* now a's was */
	collector_symbolizer__free(s);

	/* a bound nothing fits in */
	s = symbolizer_new(1);
	assert_int_equal(collector_symbolizer__user(s, a.pid, &ia, 1, &f), 0);
	assert_int_equal(collector_symbolizer__user(s, b.pid, &ib, 1, &f), 0);
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.elf_evicted, 2);
	assert_int_equal(st.cache_bytes, 0);
	assert_int_equal(collector_symbolizer__user(s, b.pid, &ib, 1, &f), 0);
	assert_frame(&f, FRAME_NATIVE, f.module, "braid_sym_beta", 0);
	collector_symbolizer__free(s);
	target_stop(&a);
	target_stop(&b);
}

/* The vDSO, named from this process's own copy. */
static void test_symbolize_vdso(void **state)
{
	static const char *const names[] = {"__vdso_clock_gettime", "__kernel_clock_gettime"};
	struct collector_symbolizer *s;
	struct frame f;
	const char *name = NULL;
	void *h, *sym = NULL;
	uint64_t ip;
	size_t i;

	(void)state;
	h = dlopen("linux-vdso.so.1", RTLD_NOLOAD | RTLD_LAZY);
	if (!h)
		skip();
	for (i = 0; i < UTIL_ARRAY_SIZE(names) && !sym; i++) {
		sym = dlsym(h, names[i]);
		name = names[i];
	}
	if (!sym)
		skip();
	ip = (uint64_t)(uintptr_t)sym + 3;
	s = symbolizer_new(0);
	assert_int_equal(collector_symbolizer__user(s, getpid(), &ip, 1, &f), 0);
	assert_frame(&f, FRAME_NATIVE, "[vdso]", name, 0);
	collector_symbolizer__free(s);
}

/* A process whose maps can't be read: unknown frames, counted once. */
static void test_symbolize_lost(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s;
	struct frame f[2];
	uint64_t ips[2] = {0x400000, 0x7f0000000000};
	pid_t pid;

	(void)state;
	pid = spawn_sleep("x", "y");
	child_reap(pid);
	s = symbolizer_new(0);
	memset(f, 0xa5, sizeof(f));
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 2, f), -ENOENT);
	assert_frame(&f[0], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
	assert_frame(&f[1], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 1, f), -ENOENT);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes_lost, 1);
	assert_int_equal(st.frames, 3);
	assert_int_equal(st.frames_unmapped, 3);
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 0);
	collector_symbolizer__free(s);
}

/* ---- symbolization: JIT code --------------------------------------------------- */

static void perfmap_write(const char *path, const char *mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void perfmap_write(const char *path, const char *mode, const char *fmt, ...)
{
	va_list ap;
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(f), 0);
}

/* A child with anonymous executable memory and a memfd mapped executable
 * (not ELF), described by a perf map in /tmp. */
static void test_symbolize_jit(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s;
	struct frame f[4];
	uint64_t page, mfd, ips[4];
	char path[64];
	int fds[2], go[2];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t addrs[2];
		void *p =
			mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int m = memfd_create("braid-jit", MFD_CLOEXEC);
		void *q;
		char c;

		if (p == MAP_FAILED || m < 0 || ftruncate(m, 4096) < 0)
			_exit(1);
		q = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, m, 0);
		if (q == MAP_FAILED)
			_exit(1);
		addrs[0] = (uint64_t)(uintptr_t)p;
		addrs[1] = (uint64_t)(uintptr_t)q;
		if (write(fds[1], addrs, sizeof(addrs)) != sizeof(addrs))
			_exit(1);
		while (read(go[0], &c, 1) > 0)
			;
		_exit(0);
	}
	child_track(pid);
	close(fds[1]);
	close(go[0]);
	{
		uint64_t addrs[2];

		assert_int_equal(read(fds[0], addrs, sizeof(addrs)), sizeof(addrs));
		page = addrs[0];
		mfd = addrs[1];
	}
	close(fds[0]);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)pid);
	perfmap_write(path, "w", "%" PRIx64 " 40 braid_jit_fn one\n0x%" PRIx64 " 0x10 memfd_fn\n",
		      page, mfd);

	s = symbolizer_new(0);
	ips[0] = page + 8;
	ips[1] = page + 0x100;
	ips[2] = page + 4096 + 8;
	ips[3] = mfd + 4;
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 4, f), 0);
	assert_frame(&f[0], FRAME_JIT, COLLECTOR_JIT_MODULE, "braid_jit_fn one", 0);
	assert_frame(&f[1], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	assert_frame(&f[2], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	/* a memfd that is no ELF file is a JIT's */
	assert_frame(&f[3], FRAME_JIT, COLLECTOR_JIT_MODULE, "memfd_fn", 0);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.perfmap_loads, 1);
	assert_int_equal(st.frames_unnamed, 2);

	/* appended lines are read on a miss, once between trims */
	perfmap_write(path, "a", "%" PRIx64 " 20 later_fn\n", page + 0x100);
	ips[0] = page + 0x108;
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 1, f), 0);
	assert_frame(&f[0], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	collector_symbolizer__trim(s);
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 1, f), 0);
	assert_frame(&f[0], FRAME_JIT, COLLECTOR_JIT_MODULE, "later_fn", 0);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.perfmap_loads, 2);

	/* code moved (V8 reuses addresses): the entry written last wins where
	 * they overlap, and it is read at the drain's first JIT frame even
	 * though the older entry still covers the address (a hit) */
	perfmap_write(path, "a", "%" PRIx64 " 10 newer_fn\n", page);
	collector_symbolizer__trim(s);
	ips[0] = page + 4;
	ips[1] = page + 0x800; /* a miss */
	ips[2] = page + 4;
	ips[3] = page + 0x18;
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 4, f), 0);
	assert_frame(&f[0], FRAME_JIT, COLLECTOR_JIT_MODULE, "newer_fn", 0);
	assert_frame(&f[1], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	assert_frame(&f[2], FRAME_JIT, COLLECTOR_JIT_MODULE, "newer_fn", 0);
	assert_frame(&f[3], FRAME_JIT, COLLECTOR_JIT_MODULE, "braid_jit_fn one", 0);

	/* a map rewritten shorter is read again from its start */
	perfmap_write(path, "w", "%" PRIx64 " 8 rewritten\n", page);
	collector_symbolizer__trim(s);
	ips[0] = page + 0x900; /* a miss */
	ips[1] = page + 4;
	ips[2] = page + 0x108;
	assert_int_equal(collector_symbolizer__user(s, pid, ips, 3, f), 0);
	assert_frame(&f[1], FRAME_JIT, COLLECTOR_JIT_MODULE, "rewritten", 0);
	assert_frame(&f[2], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.perfmap_loads, 4);
	assert_int_equal(st.frames_unmapped, 0);
	assert_int_equal(st.elf_loaded, 0);
	collector_symbolizer__free(s);

	assert_int_equal(unlink(path), 0);
	child_reap(pid);
	close(go[1]);
}

/* ---- symbolization: perf maps --------------------------------------------------- */

static void check_pm(const struct collector_perfmap *m, uint64_t addr, const char *name,
		     uint64_t offset)
{
	const char *n = NULL;
	uint64_t off = 0;
	int r = collector_perfmap__lookup(m, addr, &n, &off);

	if (!name) {
		if (r != -ENOENT)
			fail_msg("%#" PRIx64 ": %d (%s), want -ENOENT", addr, r, r == 0 ? n : "");
		return;
	}
	if (r != 0)
		fail_msg("%#" PRIx64 ": %d, want %s", addr, r, name);
	assert_string_equal(n, name);
	assert_int_equal(off, offset);
}

static void test_perfmap(void **state)
{
	static const char text[] = "1000 100 first\n"
				   "0x2000 0x100 with spaces in  name\r\n"
				   "garbage line\n"
				   "3000 zz bad_size\n"
				   "\n"
				   "1080 10 overlay\n"
				   "4000 0 zero_size\n"
				   "5000 100\n"
				   "1000 20 newer_start\n"
				   "ffffffffffffff00 1000 wraps\n"
				   "12345678901234567 10 too_long\n"
				   "6000 100 last_no_newline";
	struct collector_perfmap *m = NULL;
	const char *before, *after;
	char *line;
	uint64_t off;

	(void)state;
	assert_int_equal(collector_perfmap__parse(text, strlen(text), &m), 0);
	assert_int_equal(collector_perfmap__count(m), 5);
	assert_int_equal(collector_perfmap__skipped(m), 6);
	check_pm(m, 0xfff, NULL, 0);
	check_pm(m, 0x1000, "newer_start", 0);
	check_pm(m, 0x101f, "newer_start", 0x1f);
	check_pm(m, 0x1020, "first", 0x20);
	check_pm(m, 0x107f, "first", 0x7f);
	check_pm(m, 0x1085, "overlay", 5);
	check_pm(m, 0x1090, "first", 0x90);
	check_pm(m, 0x10ff, "first", 0xff);
	check_pm(m, 0x1100, NULL, 0);
	check_pm(m, 0x2010, "with spaces in  name", 0x10);
	check_pm(m, 0x3000, NULL, 0);
	check_pm(m, 0x5000, NULL, 0);
	check_pm(m, 0x6050, "last_no_newline", 0x50);
	check_pm(m, 0x6100, NULL, 0);
	check_pm(m, UINT64_MAX, NULL, 0);

	/* appending keeps the names handed out */
	assert_int_equal(collector_perfmap__lookup(m, 0x1020, &before, &off), 0);
	assert_int_equal(collector_perfmap__append(m, "1010 8 appended\n7000 10 seven\nbad\n", 34),
			 0);
	assert_int_equal(collector_perfmap__count(m), 7);
	assert_int_equal(collector_perfmap__skipped(m), 7);
	assert_int_equal(collector_perfmap__lookup(m, 0x1020, &after, &off), 0);
	assert_ptr_equal(before, after);
	check_pm(m, 0x1009, "newer_start", 9);
	check_pm(m, 0x1012, "appended", 2);
	check_pm(m, 0x1018, "newer_start", 0x18);
	check_pm(m, 0x7000, "seven", 0);

	/* a long name is cut */
	line = malloc(COLLECTOR_MAX_SYMBOL_NAME + 100);
	assert_non_null(line);
	memcpy(line, "8000 10 ", 8);
	memset(line + 8, 'n', COLLECTOR_MAX_SYMBOL_NAME + 50);
	assert_int_equal(collector_perfmap__append(m, line, COLLECTOR_MAX_SYMBOL_NAME + 58), 0);
	assert_int_equal(collector_perfmap__lookup(m, 0x8000, &after, &off), 0);
	assert_int_equal(strlen(after), COLLECTOR_MAX_SYMBOL_NAME);
	free(line);
	collector_perfmap__free(m);
	collector_perfmap__free(NULL);

	m = NULL;
	assert_int_equal(collector_perfmap__parse("", 0, &m), 0);
	assert_int_equal(collector_perfmap__count(m), 0);
	check_pm(m, 0x1000, NULL, 0);
	collector_perfmap__free(m);
}

/* Random overlapping entries, in batches, against a brute-force answer:
 * the entry written last among those holding the address. */
static void test_perfmap_random(void **state)
{
	enum { N = 3000, BATCH = 500, SPACE = 0x8000 };
	struct collector_perfmap *m = NULL;
	uint64_t starts[N], ends[N], seed = 42;
	struct dynbuf text;
	size_t n = 0, i, k;
	char name[32];

	(void)state;
	dynbuf__init(&text, 0);
	assert_int_equal(collector_perfmap__parse("", 0, &m), 0);
	while (n < N) {
		dynbuf__reset(&text);
		for (i = 0; i < BATCH; i++, n++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			starts[n] = 0x100000 + (seed >> 33) % SPACE;
			ends[n] = starts[n] + 1 + (seed >> 20) % (i % 7 ? 0x40 : 0x800);
			assert_int_equal(dynbuf__printf(&text, "%" PRIx64 " %" PRIx64 " fn%zu\n",
							starts[n], ends[n] - starts[n], n),
					 0);
		}
		assert_int_equal(collector_perfmap__append(m, text.data, text.len), 0);
		for (k = 0; k < 4000; k++) {
			uint64_t addr = 0x100000 - 0x10 + (k * 7919) % (SPACE + 0x900);
			const char *want = NULL;
			size_t j;

			for (j = n; j > 0 && !want; j--)
				if (addr >= starts[j - 1] && addr < ends[j - 1]) {
					snprintf(name, sizeof(name), "fn%zu", j - 1);
					want = name;
				}
			check_pm(m, addr, want, want ? addr - starts[j] : 0);
		}
	}
	assert_int_equal(collector_perfmap__count(m), N);
	collector_perfmap__free(m);
	dynbuf__free(&text);
}

/* ---- symbolization: demangling ------------------------------------------------- */

static void test_demangle(void **state)
{
	static const struct {
		const char *mangled, *name, *full; /* NULL: not demangled */
	} cases[] = {
		{"_ZN4node6crypto12PBKDF2Traits10DeriveBitsEPNS_11EnvironmentERKNS0_"
		 "12PBKDF2ConfigEPNS0_10ByteSourceE",
		 "node::crypto::PBKDF2Traits::DeriveBits",
		 "node::crypto::PBKDF2Traits::DeriveBits(node::Environment*, "
		 "node::crypto::PBKDF2Config const&, node::crypto::ByteSource*)"},
		{"_ZNK3foo3barEv", "foo::bar", "foo::bar() const"},
		{"_ZNKR3Foo3barEv", "Foo::bar", "Foo::bar() const &"},
		{"_ZNKO3Foo3barEv", "Foo::bar", "Foo::bar() const &&"},
		{"_ZNK3FooclEv", "Foo::operator()", "Foo::operator()() const"},
		{"_ZZ4mainENKUliE_clEi", "main::{lambda(int)#1}::operator()",
		 "main::{lambda(int)#1}::operator()(int) const"},
		{"_ZN12_GLOBAL__N_11fEi", "(anonymous namespace)::f",
		 "(anonymous namespace)::f(int)"},
		{"_ZN3FoocvbEv", "Foo::operator bool", "Foo::operator bool()"},
		{"_ZlsRSoRK3Foo", "operator<<", "operator<<(std::ostream&, Foo const&)"},
		{"_ZN3FoolsERi", "Foo::operator<<", "Foo::operator<<(int&)"},
		{"_ZdlPv", "operator delete", "operator delete(void*)"},
		{"_ZN3FooD2Ev", "Foo::~Foo", "Foo::~Foo()"},
		/* a template function's return type goes too */
		{"_Z3fooIiEvT_", "foo<int>", "void foo<int>(int)"},
		{"_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_cxx17__normal_"
		 "iteratorIPiS1_EEDpOT_",
		 "std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>",
		 "void std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>"
		 "(__gnu_cxx::__normal_iterator<int*, std::vector<int, std::allocator<int> > >, "
		 "int const&)"},
		/* GCC's clones are the function they were cloned from */
		{"_Z3foov.cold", "foo", "foo() [clone .cold]"},
		{"_ZN3Foo3barEv.constprop.0.cold", "Foo::bar",
		 "Foo::bar() [clone .constprop.0] [clone .cold]"},
		/* legacy Rust: no hash, escapes decoded */
		{"_ZN4core3ptr13drop_in_place17h0123456789abcdefE", "core::ptr::drop_in_place",
		 "core::ptr::drop_in_place"},
		{"_ZN70_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..drop..Drop$GT$"
		 "4drop17h0123456789abcdefE",
		 "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop",
		 "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop"},
		{"main", NULL, NULL},
		{"__Z3foov", NULL, NULL},
		{"_Zxx", NULL, NULL},
		{"_Z", NULL, NULL},
		{"", NULL, NULL},
		{"_ZN3Foo3bazEvDx", NULL, NULL},
	};
	size_t i;

	(void)state;
	assert_null(collector__demangle(NULL, false));
	for (i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		char *name = collector__demangle(cases[i].mangled, false);
		char *full = collector__demangle(cases[i].mangled, true);

		if (!cases[i].name) {
			if (name || full)
				fail_msg("%s: demangled to %s", cases[i].mangled,
					 name ? name : full);
			continue;
		}
		if (!name || strcmp(name, cases[i].name) != 0)
			fail_msg("%s: \"%s\", want \"%s\"", cases[i].mangled,
				 name ? name : "(null)", cases[i].name);
		if (!full || strcmp(full, cases[i].full) != 0)
			fail_msg("%s: \"%s\", want \"%s\"", cases[i].mangled,
				 full ? full : "(null)", cases[i].full);
		free(name);
		free(full);
	}
}

/* ---- symbolization: a procfs of our own ------------------------------------------- */

static int symfake_setup(void **state)
{
	char tmpl[] = "/tmp/braid-symbols-XXXXXX", *root;

	assert_non_null(mkdtemp(tmpl));
	root = strdup(tmpl);
	assert_non_null(root);
	*state = root;
	fake_put_str(root, "stat", "cpu  1 2 3\nbtime 1700000000\n");
	return 0;
}

/* Copies a file into the fake tree. */
static void fake_copy(const char *root, const char *rel, const char *from)
{
	struct dynbuf b;

	dynbuf__init(&b, 0);
	assert_int_equal(util__read_file(from, 64u << 20, NULL, &b), 0);
	fake_put(root, rel, b.data, b.len);
	dynbuf__free(&b);
}

/* Process 4242 of a container: its root is a folder of the fake tree with
 * the binary at /bin/app and its perf map under its own PID (9). */
static void test_symbolize_fake_root(void **state)
{
	const char *root = *state;
	struct collector_symbolizer_options o = {.proc_root = root, .no_kernel = true};
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s = NULL;
	struct errbuf err = {""};
	struct frame f[8];
	char maps[2048];
	uint64_t ips[8], alpha, beta;
	struct target t;
	struct stat sb;
	unsigned maj, min;

	/* a non-PIE runs at its link addresses: the copy's are the same */
	target_start(SYMTARGET_NOPIE, &t);
	alpha = target_addr(&t, "braid_sym_alpha");
	beta = target_addr(&t, "braid_sym_beta");
	target_stop(&t);
	fake_copy(root, "4242/root/bin/app", SYMTARGET_NOPIE);
	assert_int_equal(stat(fake_path(root, "4242/root/bin/app"), &sb), 0);
	maj = major(sb.st_dev);
	min = minor(sb.st_dev);
	snprintf(maps, sizeof(maps),
		 "00400000-00500000 r-xp 00000000 %02x:%02x %llu          /bin/app\n"
		 "00600000-00601000 r-xp 00000000 %02x:%02x 999999999 /bin/app\n"
		 "00700000-00701000 rw-p 00000000 00:00 0\n"
		 "00800000-00801000 r-xp 00000000 00:00 0\n"
		 "00900000-00901000 r-xp 00000000 00:00 0 [anon:v8]\n"
		 "00a00000-00a01000 r-xp 00001000 %02x:%02x %llu /bin/app (deleted)\n"
		 "00a01000-00a02000 r-xp 00001000 %02x:%02x %llu /bin/app\n"
		 "this line is no mapping\n"
		 "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n",
		 maj, min, (unsigned long long)sb.st_ino, maj, min, maj, min,
		 (unsigned long long)sb.st_ino + 1000000, maj + 1, min,
		 (unsigned long long)sb.st_ino);
	fake_put_str(root, "4242/maps", maps);
	fake_stat(root, 4242, "app", 500);
	{
		char status[256];

		snprintf(status, sizeof(status),
			 "Name:\tapp\nUid:\t%u\t%u\t%u\t%u\nNSpid:\t4242\t9\n", getuid(), geteuid(),
			 geteuid(), geteuid());
		fake_put_str(root, "4242/status", status);
	}
	fake_put_str(root, "4242/root/tmp/perf-9.map", "800000 20 fake_jit\n");
	fake_put_str(root, "4242/root/tmp/perf-4242.map", "800000 20 wrong_pid\n");

	assert_int_equal(collector_symbolizer__new(&o, &err, &s), 0);
	ips[0] = alpha + 4;
	ips[1] = 0x600010;	     /* another inode: not this file */
	ips[2] = 0x700010;	     /* not executable */
	ips[3] = 0x800010;	     /* anonymous, in the perf map */
	ips[4] = 0x900010;	     /* anonymous, not in it */
	ips[5] = 0xa00010;	     /* deleted (another file): no map_files to open it by */
	ips[6] = 0xa01010;	     /* another device */
	ips[7] = 0xffffffffff600400; /* [vsyscall] */
	assert_int_equal(collector_symbolizer__user(s, 4242, ips, 8, f), 0);
	assert_frame(&f[0], FRAME_NATIVE, "/bin/app", "braid_sym_alpha", 0);
	assert_frame(&f[1], FRAME_NATIVE, "/bin/app", NULL, 0x10);
	assert_frame(&f[2], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
	assert_frame(&f[3], FRAME_JIT, COLLECTOR_JIT_MODULE, "fake_jit", 0);
	assert_frame(&f[4], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	assert_frame(&f[5], FRAME_NATIVE, "/bin/app", NULL, 0x1010);
	assert_frame(&f[6], FRAME_NATIVE, "/bin/app", NULL, 0x1010);
	assert_frame(&f[7], FRAME_NATIVE, "[vsyscall]", NULL, 0x400);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.frames, 8);
	assert_int_equal(st.frames_unmapped, 1);
	assert_int_equal(st.frames_unnamed, 5);
	assert_int_equal(st.elf_loaded, 1);
	assert_int_equal(st.elf_errors, 3);
	assert_int_equal(st.processes, 1);

	/* a mapping added since: seen after a trim (maps are read once
	 * between trims); failures are tried again after one too */
	ips[0] = 0xb00010;
	ips[1] = beta;
	strcat(maps, "00b00000-00b01000 r-xp 00000000 00:00 0\n");
	fake_put_str(root, "4242/maps", maps);
	assert_int_equal(collector_symbolizer__user(s, 4242, ips, 2, f), 0);
	assert_frame(&f[0], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
	assert_frame(&f[1], FRAME_NATIVE, "/bin/app", "braid_sym_beta", 0);
	collector_symbolizer__trim(s);
	ips[2] = 0x600010;
	assert_int_equal(collector_symbolizer__user(s, 4242, ips, 3, f), 0);
	assert_frame(&f[0], FRAME_JIT, COLLECTOR_JIT_MODULE, NULL, 0);
	assert_frame(&f[1], FRAME_NATIVE, "/bin/app", "braid_sym_beta", 0);
	assert_frame(&f[2], FRAME_NATIVE, "/bin/app", NULL, 0x10);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 1);
	assert_int_equal(st.elf_loaded, 1);
	assert_int_equal(st.elf_errors, 4);

	/* the PID now names another process: forgotten at trim */
	fake_stat(root, 4242, "app", 501);
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 0);
	/* and one that is gone */
	assert_int_equal(collector_symbolizer__user(s, 4242, ips, 1, f), 0);
	assert_int_equal(unlink(fake_path(root, "4242/stat")), 0);
	collector_symbolizer__trim(s);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 0);
	assert_int_equal(st.processes_lost, 0);
	collector_symbolizer__free(s);
}

/* ---- symbolization: debug symbols ------------------------------------------------- */

/* The CRC32 of a whole file, by zlib. */
static uint32_t crc_of(const char *path)
{
	struct dynbuf b;
	uint32_t crc;

	dynbuf__init(&b, 0);
	assert_int_equal(util__read_file(path, 1u << 30, NULL, &b), 0);
	crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const unsigned char *)b.data, (uInt)b.len);
	dynbuf__free(&b);
	return crc;
}

/* Runs the symtarget at path, names alpha and gamma (static, in no .dynsym)
 * through a new symbolizer, checks them against want_alpha and want_gamma
 * (NULL: unnamed) and returns the symbolizer's stats. */
static void run_debug_target(const char *path, const char *want_alpha, const char *want_gamma,
			     struct collector_symbolizer_stats *ret)
{
	struct collector_symbolizer *s = symbolizer_new(0);
	char module[PATH_MAX];
	struct target t;
	struct frame f[2];
	uint64_t ips[2];

	assert_non_null(realpath(path, module));
	target_start(path, &t);
	ips[0] = target_addr(&t, "braid_sym_alpha") + 4;
	ips[1] = target_addr(&t, "braid_sym_gamma") + 4;
	assert_int_equal(collector_symbolizer__user(s, t.pid, ips, 2, f), 0);
	assert_frame(&f[0], FRAME_NATIVE, module, want_alpha,
		     want_alpha ? 0 : ips[0] - load_base(t.pid, module));
	assert_frame(&f[1], FRAME_NATIVE, module, want_gamma,
		     want_gamma ? 0 : ips[1] - load_base(t.pid, module));
	collector_symbolizer__stats(s, ret);
	assert_int_equal(ret->elf_loaded, 1);
	assert_int_equal(ret->elf_errors, 0);
	target_stop(&t);
	collector_symbolizer__free(s);
}

/* A PIE stripped with strip --strip-all (no function in its .dynsym) and
 * named through .gnu_debuglink: beside it, in .debug/, not with a wrong
 * CRC. */
static void test_symbolize_debuglink(void **state)
{
	static const char *const good[] = {SYMTARGET_DEBUGFILES "/beside/symtarget_dl",
					   SYMTARGET_DEBUGFILES "/sub/symtarget_dl"};
	const char *bad = SYMTARGET_DEBUGFILES "/badcrc/symtarget_dl";
	struct collector_symbolizer_stats st;
	struct collector_elf *e = NULL;
	struct errbuf err = {""};
	const char *link;
	uint32_t crc = 0;
	int fd;

	(void)state;
	/* what the section says: the file's name and the CRC zlib computes */
	fd = open(good[0], O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, good[0], &err, &e), 0);
	close(fd);
	assert_false(collector_elf__has_symtab(e));
	link = collector_elf__debuglink(e, &crc);
	assert_non_null(link);
	assert_string_equal(link, "symtarget_dl.debug");
	assert_int_equal(crc, crc_of(SYMTARGET_DEBUGFILES "/beside/symtarget_dl.debug"));
	assert_int_equal(crc, crc_of(SYMTARGET_DEBUGFILES "/sub/.debug/symtarget_dl.debug"));
	assert_int_not_equal(crc, crc_of(SYMTARGET_DEBUGFILES "/badcrc/symtarget_dl.debug"));
	collector_elf__free(e);

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(good); i++) {
		run_debug_target(good[i], "braid_sym_alpha", "braid_sym_gamma", &st);
		assert_int_equal(st.names_debuglink, 1);
		assert_int_equal(st.names_dynsym + st.names_symtab + st.names_build_id, 0);
		assert_int_equal(st.debug_rejected + st.debug_errors, 0);
		assert_int_equal(st.frames_unnamed, 0);
	}
	/* the wrong CRC: rejected, and nothing names the functions */
	run_debug_target(bad, NULL, NULL, &st);
	assert_int_equal(st.debug_rejected, 1);
	assert_int_equal(st.names_debuglink, 0);
	assert_int_equal(st.names_dynsym, 1);
	assert_int_equal(st.frames_unnamed, 2);
}

/* The vaddr of function `name` in an ELF file's .symtab, read with libelf
 * (not braid's reader); 0 if absent. */
static uint64_t symtab_vaddr(const char *path, const char *name)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	uint64_t found = 0;
	int fd;

	assert_true(elf_version(EV_CURRENT) != EV_NONE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	while (!found && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		assert_non_null(d);
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *s;

			if (!gelf_getsym(d, (int)i, &sym))
				break;
			s = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (s && strcmp(s, name) == 0 && GELF_ST_TYPE(sym.st_info) == STT_FUNC) {
				found = sym.st_value;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}

struct libc_info {
	char path[PATH_MAX];
	uint64_t base;
};

static int find_libc(struct dl_phdr_info *info, size_t size, void *data)
{
	struct libc_info *li = data;

	(void)size;
	if (info->dlpi_name && strstr(info->dlpi_name, "/libc.so.6")) {
		snprintf(li->path, sizeof(li->path), "%s", info->dlpi_name);
		li->base = info->dlpi_addr;
		return 1;
	}
	return 0;
}

/* This process's libc, stripped to .dynsym by Debian: __libc_start_call_main
 * (static) is named only through libc6-dbg's debug file, found by build id. */
static void test_symbolize_libc_debug(void **state)
{
	struct collector_symbolizer_stats st;
	struct collector_elf *plain = NULL, *dbg = NULL;
	struct collector_symbolizer *s;
	struct libc_info li = {"", 0};
	struct errbuf err = {""};
	char module[PATH_MAX], debug[PATH_MAX];
	const char *bid, *name = NULL;
	uint64_t vaddr, off, ips[2];
	struct frame f[2];
	size_t merged_bytes, n_plain;
	int fd;

	(void)state;
	assert_int_equal(dl_iterate_phdr(find_libc, &li), 1);
	assert_non_null(realpath(li.path, module));
	fd = open(module, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, module, &err, &plain), 0);
	close(fd);
	if (collector_elf__has_symtab(plain))
		fail_msg("%s has a .symtab: not Debian's stripped libc", module);
	bid = collector_elf__build_id(plain);
	assert_non_null(bid);
	snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2);
	if (access(debug, R_OK) != 0)
		fail_msg("%s: %s; install libc6-dbg (scripts/deps.sh)", debug, strerror(errno));
	vaddr = symtab_vaddr(debug, "__libc_start_call_main");
	if (!vaddr)
		fail_msg("%s: no __libc_start_call_main in its .symtab", debug);

	/* without the debug file: unnamed, or named after another function */
	if (collector_elf__lookup(plain, vaddr + 4, &name, &off) == 0)
		assert_string_not_equal(name, "__libc_start_call_main");

	/* through the symbolizer, in this very process */
	s = symbolizer_new(0);
	ips[0] = li.base + vaddr + 4;
	ips[1] = (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "__libc_start_main");
	assert_true(ips[1] != 0);
	assert_int_equal(collector_symbolizer__user(s, getpid(), ips, 2, f), 0);
	assert_frame(&f[0], FRAME_NATIVE, module, "__libc_start_call_main", 0);
	/* where both have a name, .dynsym's (unversioned, exported) wins over
	 * the debug file's __libc_start_main_impl or "...@@GLIBC_2.34" */
	assert_frame(&f[1], FRAME_NATIVE, module, "__libc_start_main", 0);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.names_build_id, 1);
	assert_int_equal(st.names_dynsym + st.names_debuglink + st.names_minidebuginfo, 0);

	/* the cache counts the debug symbols too */
	fd = open(debug, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, debug, &err, &dbg), 0);
	close(fd);
	assert_string_equal(collector_elf__build_id(dbg), bid);
	assert_true(collector_elf__count(dbg) > collector_elf__count(plain));
	merged_bytes = collector_elf__bytes(plain);
	n_plain = collector_elf__count(plain);
	assert_int_equal(collector_elf__add_symbols(plain, dbg, debug, &err), 0);
	assert_true(collector_elf__bytes(plain) > merged_bytes);
	merged_bytes = collector_elf__bytes(plain);
	assert_true(st.cache_bytes >= merged_bytes);
	assert_int_equal(collector_elf__lookup(plain, vaddr + 4, &name, &off), 0);
	assert_string_equal(name, "__libc_start_call_main");
	assert_int_equal(off, 4);
	printf("libc: %zu function symbols in .dynsym, %zu in %s, %zu merged; entry %zu bytes\n",
	       n_plain, collector_elf__count(dbg), debug, collector_elf__count(plain),
	       st.cache_bytes);
	collector_elf__free(dbg);
	collector_elf__free(plain);
	collector_symbolizer__free(s);
}

/* MiniDebugInfo as Fedora makes it: .dynsym names the exported functions,
 * .gnu_debugdata the static one. Cut short, or a bomb: an error with a
 * message, the .dynsym names still there. */
static void test_symbolize_minidebuginfo(void **state)
{
	const char *mini = SYMTARGET_DEBUGFILES "/mini/symtarget_mini";
	const char *trunc = SYMTARGET_DEBUGFILES "/mini/symtarget_mini_trunc";
	const char *bomb = SYMTARGET_DEBUGFILES "/mini/symtarget_mini_bomb";
	struct collector_symbolizer_stats st;
	struct collector_elf *e = NULL;
	struct errbuf err = {""};
	char module[PATH_MAX];
	const char *name;
	uint64_t vaddr, off;
	struct target t;
	size_t before;
	int fd, r;

	(void)state;
	assert_false(elf_has_section(mini, SHT_SYMTAB));
	run_debug_target(mini, "braid_sym_alpha", "braid_sym_gamma", &st);
	assert_int_equal(st.names_minidebuginfo, 1);
	assert_int_equal(st.names_dynsym + st.debug_errors, 0);

	/* the same by hand: before and after the .gnu_debugdata is read */
	assert_non_null(realpath(mini, module));
	target_start(mini, &t);
	vaddr = target_addr(&t, "braid_sym_gamma") - load_base(t.pid, module);
	target_stop(&t);
	fd = open(mini, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, mini, &err, &e), 0);
	before = collector_elf__count(e);
	assert_int_equal(collector_elf__lookup(e, vaddr + 2, &name, &off), -ENOENT);
	assert_int_equal(collector_elf__read_minidebuginfo(e, fd, mini, &err), 0);
	close(fd);
	assert_true(collector_elf__count(e) > before);
	assert_int_equal(collector_elf__lookup(e, vaddr + 2, &name, &off), 0);
	assert_string_equal(name, "braid_sym_gamma");
	assert_int_equal(off, 2);
	collector_elf__free(e);

	/* no .gnu_debugdata at all */
	e = NULL;
	fd = open(SYMTARGET_STRIPPED, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(collector_elf__read(fd, "stripped", &err, &e), 0);
	assert_int_equal(collector_elf__read_minidebuginfo(e, fd, "stripped", &err), -ENOENT);
	close(fd);
	collector_elf__free(e);

	/* cut in half; 65 MiB of zeros: errors that say why */
	for (int i = 0; i < 2; i++) {
		const char *path = i ? bomb : trunc;

		e = NULL;
		err.msg[0] = '\0';
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(collector_elf__read(fd, path, &err, &e), 0);
		before = collector_elf__count(e);
		r = collector_elf__read_minidebuginfo(e, fd, path, &err);
		close(fd);
		printf("%s\n", err.msg);
		if (i) {
			assert_int_equal(r, -EFBIG);
			assert_non_null(
				strstr(err.msg, ".gnu_debugdata: more than 67108864 bytes"));
		} else {
			assert_int_equal(r, -EBADMSG);
			assert_non_null(strstr(err.msg, ".gnu_debugdata: truncated xz data"));
		}
		assert_int_equal(collector_elf__count(e), before); /* untouched */
		collector_elf__free(e);

		run_debug_target(path, "braid_sym_alpha", NULL, &st);
		assert_int_equal(st.debug_errors, 1);
		assert_int_equal(st.names_dynsym, 1);
		assert_int_equal(st.names_minidebuginfo, 0);
	}
}

/* Kernel frames through the symbolizer, from a kallsyms file of our own. */
static void test_symbolize_kernel(void **state)
{
	const char *root = *state;
	struct collector_symbolizer_options o = {.proc_root = root};
	struct collector_symbolizer_stats st;
	struct collector_symbolizer *s = NULL;
	struct errbuf err = {""};
	uint64_t ips[3] = {0xffffffff81000104, 0xffffffffc0a01010, 0xffffffff90000000};
	struct frame f[3];

	/* PROC_ROOT/kallsyms by default: there is none */
	assert_int_equal(collector_symbolizer__new(&o, &err, &s), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err.msg, "kallsyms"));
	fake_put_str(root, "hidden", "0000000000000000 T _stext\n");
	o.kallsyms = fake_path(root, "hidden");
	assert_int_equal(collector_symbolizer__new(&o, &err, &s), -EACCES);
	assert_non_null(strstr(err.msg, "kptr_restrict"));

	fake_put_str(root, "kallsyms", ksyms_text);
	o.kallsyms = NULL;
	assert_int_equal(collector_symbolizer__new(&o, &err, &s), 0);
	collector_symbolizer__kernel(s, ips, 3, f);
	assert_frame(&f[0], FRAME_KERNEL, COLLECTOR_KERNEL_MODULE, "local_fn", 0);
	assert_frame(&f[1], FRAME_KERNEL, "[foo]", "foo_init", 0);
	assert_frame(&f[2], FRAME_KERNEL, COLLECTOR_KERNEL_MODULE, NULL, 0xffffffff90000000);
	collector_symbolizer__stats(s, &st);
	assert_int_equal(st.frames, 3);
	assert_int_equal(st.frames_unnamed, 1);
	collector_symbolizer__free(s);

	/* no_kernel: every kernel frame keeps its address */
	o.no_kernel = true;
	assert_int_equal(collector_symbolizer__new(&o, &err, &s), 0);
	collector_symbolizer__kernel(s, ips, 1, f);
	assert_frame(&f[0], FRAME_KERNEL, COLLECTOR_KERNEL_MODULE, NULL, 0xffffffff81000104);
	collector_symbolizer__free(s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_self),
		cmocka_unit_test_teardown(test_children, reap_all),
		cmocka_unit_test_teardown(test_tcp_ipv4, reap_all),
		cmocka_unit_test_teardown(test_tcp_ipv6, reap_all),
		cmocka_unit_test_teardown(test_tcp_dual_stack, reap_all),
		cmocka_unit_test_setup_teardown(test_fake_proc_read, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_find_service, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_tcp, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_fake_socket_owner, fake_setup, fake_teardown),
		cmocka_unit_test(test_container_id),
		cmocka_unit_test(test_runtime_of_exe),
		cmocka_unit_test_setup_teardown(test_runtime_detection, fake_setup, fake_teardown),
		cmocka_unit_test(test_ksyms_parse),
		cmocka_unit_test(test_ksyms_fuzz_regressions),
		cmocka_unit_test(test_ksyms_proc),
		cmocka_unit_test_teardown(test_elf_files, reap_all),
		cmocka_unit_test(test_elf_hostile),
		cmocka_unit_test(test_perfmap),
		cmocka_unit_test(test_perfmap_random),
		cmocka_unit_test(test_demangle),
		cmocka_unit_test_teardown(test_symbolize_programs, reap_all),
		cmocka_unit_test_teardown(test_symbolize_shared, reap_all),
		cmocka_unit_test_teardown(test_symbolize_evict, reap_all),
		cmocka_unit_test(test_symbolize_vdso),
		cmocka_unit_test_teardown(test_symbolize_lost, reap_all),
		cmocka_unit_test_teardown(test_symbolize_jit, reap_all),
		cmocka_unit_test_setup_teardown(test_symbolize_fake_root, symfake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_symbolize_kernel, symfake_setup,
						fake_teardown),
		cmocka_unit_test_teardown(test_symbolize_debuglink, reap_all),
		cmocka_unit_test(test_symbolize_libc_debug),
		cmocka_unit_test_teardown(test_symbolize_minidebuginfo, reap_all),
	};

	(void)argc;
	test_argv0 = argv[0];
	return cmocka_run_group_tests(tests, NULL, reap_all);
}
