/* SPDX-License-Identifier: Apache-2.0 */
/* collector/: /proc read live (this process, children it forks, loopback TCP
 * connections between them) and from a fake procfs tree built in a temporary
 * folder, for the parsing edge cases the live kernel won't produce on cue. */
#define _GNU_SOURCE /* accept4, pipe2, nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	assert_int_equal(p.runtime, STORE_RUNTIME_NATIVE);
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
	assert_int_equal(p.runtime, STORE_RUNTIME_NATIVE);
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
	memset(env, 'a', STORE_MAX_CMDLINE + 1000);
	env[STORE_MAX_CMDLINE + 1000] = '\0';
	fake_put(root, "600/cmdline", env, STORE_MAX_CMDLINE + 1001);
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
	assert_int_equal(p.runtime, STORE_RUNTIME_PYTHON);
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
	assert_int_equal(p.runtime, STORE_RUNTIME_UNKNOWN);
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
	assert_int_equal(strlen(p.cmdline), STORE_MAX_CMDLINE);
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

static void test_runtime_of_exe(void **state)
{
	static const struct {
		const char *exe;
		enum store_runtime runtime;
	} cases[] = {
		{"/usr/bin/node", STORE_RUNTIME_NODE},
		{"/usr/local/bin/nodejs", STORE_RUNTIME_NODE},
		{"/usr/bin/node (deleted)", STORE_RUNTIME_NODE},
		{"node", STORE_RUNTIME_NODE},
		{"/usr/bin/python3.11", STORE_RUNTIME_PYTHON},
		{"/usr/bin/python3", STORE_RUNTIME_PYTHON},
		{"/usr/bin/python", STORE_RUNTIME_PYTHON},
		{"/usr/bin/ruby3.1", STORE_RUNTIME_RUBY},
		{"/usr/bin/ruby", STORE_RUNTIME_RUBY},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", STORE_RUNTIME_JVM},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java (deleted)", STORE_RUNTIME_JVM},
		{"/usr/share/dotnet/dotnet", STORE_RUNTIME_DOTNET},
		{"/usr/bin/sleep", STORE_RUNTIME_NATIVE},
		{"/usr/bin/nodex", STORE_RUNTIME_NATIVE},
		{"/usr/bin/javac", STORE_RUNTIME_NATIVE},
		{"/opt/node/bin/app", STORE_RUNTIME_NATIVE},
		{"/usr/bin/pyth", STORE_RUNTIME_NATIVE},
		{"", STORE_RUNTIME_NATIVE},
	};
	size_t i;

	(void)state;
	assert_int_equal(collector__runtime_of_exe(NULL), STORE_RUNTIME_UNKNOWN);
	for (i = 0; i < UTIL_ARRAY_SIZE(cases); i++)
		if (collector__runtime_of_exe(cases[i].exe) != cases[i].runtime)
			fail_msg("%s: %d, want %d", cases[i].exe,
				 collector__runtime_of_exe(cases[i].exe), cases[i].runtime);
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
	};

	(void)argc;
	test_argv0 = argv[0];
	return cmocka_run_group_tests(tests, NULL, reap_all);
}
