/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/proc.c: process metadata, socket owners and service names, read
 * from procfs. Every read is capped; nothing outside proc_root is read.
 */
#define _GNU_SOURCE /* memrchr */
#include "collector/collector.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "util/util.h"

#define PROC_MAX_STAT	 4096u	     /* /proc/PID/stat: comm is at most 64 bytes (wq workers) */
#define PROC_MAX_STATUS	 (64u << 10) /* /proc/PID/status */
#define PROC_MAX_CGROUP	 (64u << 10) /* /proc/PID/cgroup: one line per v1 hierarchy */
#define PROC_MAX_SYSSTAT (16u << 20) /* /proc/stat: a line per CPU and a long intr line */
#define PROC_READ_CHUNK	 (64u << 10) /* bytes asked of one read() */
#define PROC_LINE_BUF	 (64u << 10) /* longest line the table scans look at */
#define NSEC_PER_SEC	 1000000000LL
#define DELETED_SUFFIX	 " (deleted)"

/* ---- reading --------------------------------------------------------- */

/* Maps an errno from opening or reading procfs to the codes collector.h
 * promises. ESRCH is what a read of an exited process's open file gives. */
static int proc_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ESRCH:
	case ENOTDIR:
		return -ENOENT;
	case EACCES:
	case EPERM:
		return -EACCES;
	case ENOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static ssize_t read_retry(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Opens proc_root as a directory stream: the caller closedir()s it. Every
 * other path is opened relative to it, so nothing outside proc_root is read. */
static int open_root(const char *proc_root, DIR **ret)
{
	int fd;
	DIR *d;

	fd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return proc_errno(errno);
	d = fdopendir(fd);
	if (!d) {
		int r = proc_errno(errno);

		close(fd);
		return r;
	}
	*ret = d;
	return 0;
}

/* Replaces out's content with at most max bytes of dirfd/path (always
 * NUL-terminated). procfs files report size 0, so this reads until EOF.
 * *ret_truncated (may be NULL) says whether the file went on past max. */
static int read_at(int dirfd, const char *path, size_t max, struct dynbuf *out, bool *ret_truncated)
{
	int fd = -1, r;
	bool truncated = false;

	dynbuf__reset(out);
	r = dynbuf__reserve(out, 0);
	if (r < 0)
		goto cleanup;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = proc_errno(errno);
		goto cleanup;
	}
	for (;;) {
		size_t room = max - out->len;
		ssize_t n;

		if (room == 0) {
			char c;

			n = read_retry(fd, &c, 1);
			truncated = n > 0;
			break;
		}
		if (room > PROC_READ_CHUNK)
			room = PROC_READ_CHUNK;
		r = dynbuf__reserve(out, room);
		if (r < 0)
			goto cleanup;
		n = read_retry(fd, out->data + out->len, room);
		if (n < 0) {
			r = proc_errno(errno);
			goto cleanup;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->data[out->len] = '\0';
	if (ret_truncated)
		*ret_truncated = truncated;
	r = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (r < 0)
		dynbuf__reset(out);
	return r;
}

/* Called for each line (without its '\n'): 0 goes on, anything else stops
 * the scan and is returned by for_each_line. */
typedef int (*line_fn)(const char *line, size_t len, void *ctx);

/* Streams dirfd/path through a fixed buffer, one pass over at most max
 * bytes, calling fn on each line. Returns fn's first non-zero answer, 0 at
 * EOF or at the cap (a line cut by the cap is dropped), or a negative errno.
 * A line longer than PROC_LINE_BUF is skipped: procfs tables don't have one. */
static int for_each_line(int dirfd, const char *path, size_t max, line_fn fn, void *ctx)
{
	char *buf = NULL;
	size_t have = 0, total = 0;
	bool skipping = false;
	int fd = -1, r = 0;

	buf = malloc(PROC_LINE_BUF);
	if (!buf) {
		r = -ENOMEM;
		goto cleanup;
	}
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = proc_errno(errno);
		goto cleanup;
	}
	while (total < max) {
		size_t want = PROC_LINE_BUF - have, start = 0;
		const char *nl;
		ssize_t n;

		if (want > max - total)
			want = max - total;
		n = read_retry(fd, buf + have, want);
		if (n < 0) {
			r = proc_errno(errno);
			goto cleanup;
		}
		if (n == 0) {
			if (have && !skipping)
				r = fn(buf, have, ctx);
			goto cleanup;
		}
		have += (size_t)n;
		total += (size_t)n;
		while ((nl = memchr(buf + start, '\n', have - start))) {
			size_t len = (size_t)(nl - (buf + start));

			if (!skipping)
				r = fn(buf + start, len, ctx);
			skipping = false;
			if (r)
				goto cleanup;
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have == PROC_LINE_BUF) {
			skipping = true;
			have = 0;
		}
	}
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* ---- parsing --------------------------------------------------------- */

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *skip_token(const char *p, const char *end)
{
	p = skip_blanks(p, end);
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	return p;
}

/* Parses a decimal number after blanks at *p and moves *p past it. False if
 * there is none, it overflows, or it runs into something but a blank. */
static bool parse_u64(const char **p, const char *end, uint64_t *ret)
{
	const char *s = skip_blanks(*p, end);
	uint64_t v = 0;

	if (s == end || !isdigit((unsigned char)*s))
		return false;
	for (; s < end && isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s < end && *s != ' ' && *s != '\t' && *s != '\n')
		return false;
	*p = s;
	*ret = v;
	return true;
}

/* The line of buf (NUL-terminated, len bytes) that starts with prefix, or
 * NULL; *ret_end receives the end of that line. */
static const char *find_line(const char *buf, size_t len, const char *prefix, const char **ret_end)
{
	const char *p = buf, *end = buf + len;
	size_t plen = strlen(prefix);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if ((size_t)(eol - p) >= plen && memcmp(p, prefix, plen) == 0) {
			*ret_end = eol;
			return p + plen;
		}
		p = eol + 1;
	}
	return NULL;
}

/* Parses /proc/PID/stat: comm and field 22 (starttime, in clock ticks since
 * boot). comm may hold spaces and ')' itself, so it runs from the first '('
 * to the LAST ')'; every field after it is a plain number or letter. */
static int parse_stat(const char *buf, size_t len, char comm[17], uint64_t *ret_starttime)
{
	const char *end = buf + len, *lp, *rp, *p;
	size_t clen;
	int field;

	lp = memchr(buf, '(', len);
	rp = memrchr(buf, ')', len);
	if (!lp || !rp || rp < lp)
		return -EIO;
	clen = (size_t)(rp - lp - 1);
	if (clen > 16)
		clen = 16;
	/* fields 3 (state) to 21, then starttime */
	p = rp + 1;
	for (field = 3; field < 22; field++) {
		const char *q = skip_blanks(p, end);

		if (q == end)
			return -EIO;
		p = skip_token(q, end);
	}
	if (!parse_u64(&p, end, ret_starttime))
		return -EIO;
	memcpy(comm, lp + 1, clen);
	comm[clen] = '\0';
	return 0;
}

/* ---- start time ------------------------------------------------------- */

/* btime of the host's /proc/stat, in seconds; 0 until read. The kernel
 * computes btime at each read as the wall clock minus the time since boot,
 * so it moves when the clock is stepped (NTP, a suspend): reading it once
 * keeps every start time this process computes the same. The first value
 * stored wins (compare-and-swap), so racing first readers agree too. */
static _Atomic int64_t host_btime;

static int btime_line(const char *line, size_t len, void *ctx)
{
	const char *p = line + 6, *end = line + len;
	uint64_t v;

	if (len < 6 || memcmp(line, "btime ", 6) != 0)
		return 0;
	if (!parse_u64(&p, end, &v) || v == 0 || v > INT64_MAX / NSEC_PER_SEC)
		return -EIO;
	*(int64_t *)ctx = (int64_t)v;
	return 1;
}

/* The boot time in seconds from proc_root/stat; cached for "/proc" only,
 * re-read for any other root (tests' fake trees). */
static int read_btime(int rootfd, const char *proc_root, int64_t *ret_s)
{
	bool host = strcmp(proc_root, COLLECTOR_PROC_ROOT) == 0;
	int64_t v = 0;
	int r;

	if (host) {
		v = atomic_load_explicit(&host_btime, memory_order_relaxed);
		if (v) {
			*ret_s = v;
			return 0;
		}
	}
	r = for_each_line(rootfd, "stat", PROC_MAX_SYSSTAT, btime_line, &v);
	if (r < 0)
		return r;
	if (r == 0)
		return -EIO;
	if (host) {
		int64_t expected = 0;

		/* the first reader's value wins, so every caller sees one btime */
		if (!atomic_compare_exchange_strong(&host_btime, &expected, v))
			v = expected;
	}
	*ret_s = v;
	return 0;
}

/* btime plus starttime in ns. USER_HZ is 100 on every Linux, but the ticks
 * are split into seconds and a remainder anyway so nothing can overflow. */
static int start_time_ns(int64_t btime_s, uint64_t ticks, int64_t *ret_ns)
{
	long hz = sysconf(_SC_CLK_TCK);
	int64_t since_boot, ns;

	if (hz <= 0)
		return -EIO;
	if (ticks / (uint64_t)hz > (uint64_t)(INT64_MAX / NSEC_PER_SEC))
		return -EIO;
	since_boot = (int64_t)(ticks / (uint64_t)hz) * NSEC_PER_SEC +
		     (int64_t)(ticks % (uint64_t)hz) * NSEC_PER_SEC / hz;
	if (__builtin_add_overflow(btime_s * NSEC_PER_SEC, since_boot, &ns))
		return -EIO;
	*ret_ns = ns;
	return 0;
}

/* The PID a proc_root entry's name spells, or 0 for the other entries
 * ("self", "sys", ...). */
static int32_t pid_of_name(const char *name)
{
	uint64_t v = 0;

	if (!*name)
		return 0;
	for (; *name; name++) {
		if (!isdigit((unsigned char)*name) || v > INT32_MAX)
			return 0;
		v = v * 10 + (uint64_t)(*name - '0');
	}
	return v <= INT32_MAX ? (int32_t)v : 0;
}

/* Opens proc_root/PID: the caller closes it. Files opened through this fd
 * all belong to one process even if the PID is reused meanwhile (a stale
 * directory answers ENOENT/ESRCH, never another process's data). */
static int open_pid_dir(int rootfd, int32_t pid, int *ret_fd)
{
	char name[16];
	int fd;

	if (pid <= 0)
		return -ENOENT;
	snprintf(name, sizeof(name), "%d", (int)pid);
	fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return proc_errno(errno);
	*ret_fd = fd;
	return 0;
}

/* Opens proc_root and its PID directory and reads the process's comm and
 * start time from stat: what every per-process read starts with. On success
 * the caller closes *ret_root and *ret_pidfd; on error nothing is left open. */
static int open_process(const char *proc_root, int32_t pid, struct dynbuf *buf, DIR **ret_root,
			int *ret_pidfd, char comm[17], int64_t *ret_start_ns, uint64_t *ret_ticks)
{
	DIR *root = NULL;
	int pidfd = -1, r;
	uint64_t ticks;
	int64_t btime;

	r = open_root(proc_root, &root);
	if (r < 0)
		goto cleanup;
	r = open_pid_dir(dirfd(root), pid, &pidfd);
	if (r < 0)
		goto cleanup;
	r = read_at(pidfd, "stat", PROC_MAX_STAT, buf, NULL);
	if (r < 0)
		goto cleanup;
	r = parse_stat(buf->data, buf->len, comm, &ticks);
	if (r < 0)
		goto cleanup;
	r = read_btime(dirfd(root), proc_root, &btime);
	if (r < 0)
		goto cleanup;
	r = start_time_ns(btime, ticks, ret_start_ns);
	if (r < 0)
		goto cleanup;
	if (ret_ticks)
		*ret_ticks = ticks;
	*ret_root = root;
	*ret_pidfd = pidfd;
	return 0;
cleanup:
	if (pidfd >= 0)
		close(pidfd);
	if (root)
		closedir(root);
	return r;
}

/* boot_ns in clock ticks, rounded down as the kernel's nsec_to_clock_t does
 * for /proc/PID/stat; 0 when the tick rate is unknown. */
static uint64_t ticks_of_boot_ns(uint64_t boot_ns)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0)
		return 0;
	return (uint64_t)((unsigned __int128)boot_ns * (uint64_t)hz / NSEC_PER_SEC);
}

bool collector__same_start(uint64_t start_ticks, uint64_t boot_ns)
{
	uint64_t ticks = ticks_of_boot_ns(boot_ns);

	if (!ticks)
		return true; /* can't tell */
	return ticks == start_ticks || ticks + 1 == start_ticks || ticks == start_ticks + 1;
}

bool collector__start_boot_range(uint64_t start_ticks, uint64_t *ret_min, uint64_t *ret_max)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || start_ticks == 0)
		return false;
	/* the boot_ns whose ticks_of_boot_ns lie in [start_ticks - 1, start_ticks + 1] */
	*ret_min = (uint64_t)((unsigned __int128)(start_ticks - 1) * NSEC_PER_SEC / (uint64_t)hz);
	*ret_max = (uint64_t)((unsigned __int128)(start_ticks + 2) * NSEC_PER_SEC / (uint64_t)hz +
			      (NSEC_PER_SEC % (uint64_t)hz != 0));
	return true;
}

int collector__start_time_of_boot(const char *proc_root, uint64_t boot_ns, int64_t *ret_ns)
{
	uint64_t ticks = ticks_of_boot_ns(boot_ns);
	DIR *root = NULL;
	int64_t btime;
	int r;

	if (!ticks)
		return -EINVAL;
	r = open_root(proc_root, &root);
	if (r < 0)
		goto cleanup;
	r = read_btime(dirfd(root), proc_root, &btime);
	if (r < 0)
		goto cleanup;
	r = start_time_ns(btime, ticks, ret_ns);
cleanup:
	if (root)
		closedir(root);
	return r;
}

int collector__start_time(const char *proc_root, int32_t pid, int64_t *ret_ns)
{
	uint64_t ticks;

	return collector__start_ticks(proc_root, pid, ret_ns, &ticks);
}

int collector__start_ticks(const char *proc_root, int32_t pid, int64_t *ret_ns, uint64_t *ret_ticks)
{
	char comm[17];
	struct dynbuf buf;
	DIR *root = NULL;
	int pidfd = -1, r;
	int64_t ns;
	uint64_t ticks;

	dynbuf__init(&buf, 0);
	r = open_process(proc_root, pid, &buf, &root, &pidfd, comm, &ns, &ticks);
	if (r < 0)
		goto cleanup;
	*ret_ns = ns;
	*ret_ticks = ticks;
cleanup:
	if (pidfd >= 0)
		close(pidfd);
	if (root)
		closedir(root);
	dynbuf__free(&buf);
	return r;
}

/* ---- environment ------------------------------------------------------ */

struct env_service {
	const char *pyro, *otel; /* values, not NUL-terminated; NULL if unset */
	size_t pyro_len, otel_len;
};

/* Finds the service variables in a NUL-separated environ block. The first
 * setting of a name wins, as with getenv(); an empty value counts as unset.
 * environ is the block the process started with: later setenv() calls in
 * the process don't show. If the block was cut at the cap, its last entry
 * may be cut too and is ignored. */
static void environ_scan(const char *env, size_t len, bool truncated, struct env_service *ret)
{
	static const char pyro[] = "PYROSCOPE_APPLICATION_NAME=";
	static const char otel[] = "OTEL_SERVICE_NAME=";
	const char *p = env, *end = env + len;
	bool seen_pyro = false, seen_otel = false;

	memset(ret, 0, sizeof(*ret));
	if (truncated) {
		const char *last = memrchr(env, '\0', len);

		end = last ? last : env;
	}
	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		const char *e = z ? z : end;
		size_t n = (size_t)(e - p);

		if (!seen_pyro && n >= sizeof(pyro) - 1 && memcmp(p, pyro, sizeof(pyro) - 1) == 0) {
			seen_pyro = true;
			ret->pyro = p + sizeof(pyro) - 1;
			ret->pyro_len = n - (sizeof(pyro) - 1);
		} else if (!seen_otel && n >= sizeof(otel) - 1 &&
			   memcmp(p, otel, sizeof(otel) - 1) == 0) {
			seen_otel = true;
			ret->otel = p + sizeof(otel) - 1;
			ret->otel_len = n - (sizeof(otel) - 1);
		}
		p = e + 1;
	}
	if (ret->pyro && !ret->pyro_len)
		ret->pyro = NULL;
	if (ret->otel && !ret->otel_len)
		ret->otel = NULL;
}

int collector__find_service(const char *proc_root, const char *service, int32_t *ret_pid)
{
	struct dynbuf buf;
	struct dirent *de;
	DIR *root = NULL;
	size_t slen;
	int32_t match = 0;
	int r;

	dynbuf__init(&buf, 0);
	if (!service || !*service) {
		r = -ENOENT;
		goto cleanup;
	}
	slen = strlen(service);
	r = open_root(proc_root, &root);
	if (r < 0)
		goto cleanup;
	for (;;) {
		struct env_service env;
		char path[32];
		bool truncated;
		int32_t pid;

		errno = 0;
		de = readdir(root);
		if (!de) {
			r = errno ? proc_errno(errno) : 0;
			if (r < 0)
				goto cleanup;
			break;
		}
		/* /proc lists thread-group leaders only: one entry a process */
		pid = pid_of_name(de->d_name);
		if (!pid)
			continue;
		snprintf(path, sizeof(path), "%d/environ", (int)pid);
		r = read_at(dirfd(root), path, COLLECTOR_MAX_ENVIRON, &buf, &truncated);
		if (r == -ENOMEM)
			goto cleanup;
		if (r < 0)
			continue; /* gone, or not ours to read */
		environ_scan(buf.data, buf.len, truncated, &env);
		if (!(env.pyro && env.pyro_len == slen && memcmp(env.pyro, service, slen) == 0) &&
		    !(env.otel && env.otel_len == slen && memcmp(env.otel, service, slen) == 0))
			continue;
		if (match) {
			r = -ENOTUNIQ;
			goto cleanup;
		}
		match = pid;
	}
	if (!match) {
		r = -ENOENT;
		goto cleanup;
	}
	*ret_pid = match;
	r = 0;
cleanup:
	if (root)
		closedir(root);
	dynbuf__free(&buf);
	return r;
}

/* ---- one process ------------------------------------------------------- */

/* The optional readers below leave their output NULL when /proc won't tell
 * and fail only with -ENOMEM. */

static int read_ns_pid(int pidfd, struct dynbuf *buf, int32_t *ns_pid)
{
	const char *p, *end;
	uint64_t v, last = 0;

	if (read_at(pidfd, "status", PROC_MAX_STATUS, buf, NULL) == -ENOMEM)
		return -ENOMEM;
	/* "NSpid:\t<in proc_root's namespace>\t...\t<innermost>" */
	p = find_line(buf->data, buf->len, "NSpid:", &end);
	if (!p)
		return 0;
	while (parse_u64(&p, end, &v))
		last = v;
	if (last > 0 && last <= INT32_MAX)
		*ns_pid = (int32_t)last;
	return 0;
}

/* exe keeps the kernel's text, " (deleted)" suffix included when the binary
 * was replaced or removed since exec: that is what a user wants to see, and
 * collector__runtime_of_exe ignores the suffix. */
static int read_exe(int pidfd, char **ret)
{
	char link[PATH_MAX];
	ssize_t n;

	n = readlinkat(pidfd, "exe", link, sizeof(link));
	if (n <= 0 || (size_t)n >= sizeof(link))
		return 0; /* kernel thread, no permission, or gone */
	*ret = strndup(link, (size_t)n);
	return *ret ? 0 : -ENOMEM;
}

static int read_cmdline(int pidfd, struct dynbuf *buf, char **ret)
{
	size_t len, i;

	if (read_at(pidfd, "cmdline", COLLECTOR_MAX_CMDLINE, buf, NULL) == -ENOMEM)
		return -ENOMEM;
	len = buf->len;
	while (len && buf->data[len - 1] == '\0')
		len--;
	if (!len)
		return 0; /* kernel thread or zombie */
	for (i = 0; i < len; i++)
		if (buf->data[i] == '\0')
			buf->data[i] = ' ';
	*ret = strndup(buf->data, len);
	return *ret ? 0 : -ENOMEM;
}

static int read_service(int pidfd, struct dynbuf *buf, char **ret)
{
	struct env_service env;
	bool truncated = false;
	int r;

	r = read_at(pidfd, "environ", COLLECTOR_MAX_ENVIRON, buf, &truncated);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;
	environ_scan(buf->data, buf->len, truncated, &env);
	if (env.pyro)
		*ret = strndup(env.pyro, env.pyro_len);
	else if (env.otel)
		*ret = strndup(env.otel, env.otel_len);
	else
		return 0;
	return *ret ? 0 : -ENOMEM;
}

static int read_container_id(int pidfd, struct dynbuf *buf, char **ret)
{
	char id[COLLECTOR_CONTAINER_ID_MAX + 1];
	const char *p, *end;

	if (read_at(pidfd, "cgroup", PROC_MAX_CGROUP, buf, NULL) == -ENOMEM)
		return -ENOMEM;
	p = buf->data;
	end = buf->data + buf->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if (collector__container_id(p, (size_t)(eol - p), id) == 0) {
			*ret = strdup(id);
			return *ret ? 0 : -ENOMEM;
		}
		p = eol + 1;
	}
	return 0;
}

int collector__proc_read(const char *proc_root, int32_t pid, struct collector_proc *ret)
{
	struct collector_proc p = {0};
	struct dynbuf buf;
	DIR *root = NULL;
	int pidfd = -1, r;

	memset(ret, 0, sizeof(*ret));
	dynbuf__init(&buf, 0);
	r = open_process(proc_root, pid, &buf, &root, &pidfd, p.comm, &p.start_time_ns,
			 &p.start_ticks);
	if (r < 0)
		goto cleanup;
	p.pid = pid;
	p.ns_pid = pid;
	r = read_ns_pid(pidfd, &buf, &p.ns_pid);
	if (r < 0)
		goto cleanup;
	r = read_exe(pidfd, &p.exe);
	if (r < 0)
		goto cleanup;
	r = read_cmdline(pidfd, &buf, &p.cmdline);
	if (r < 0)
		goto cleanup;
	r = read_service(pidfd, &buf, &p.service);
	if (r < 0)
		goto cleanup;
	r = read_container_id(pidfd, &buf, &p.container_id);
	if (r < 0)
		goto cleanup;
	p.runtime = collector__runtime_of_exe(p.exe);
	*ret = p;
	memset(&p, 0, sizeof(p));
cleanup:
	collector__proc_release(&p);
	if (pidfd >= 0)
		close(pidfd);
	if (root)
		closedir(root);
	dynbuf__free(&buf);
	return r;
}

void collector__proc_release(struct collector_proc *p)
{
	if (!p)
		return;
	free(p->exe);
	free(p->cmdline);
	free(p->service);
	free(p->container_id);
	memset(p, 0, sizeof(*p));
}

/* ---- sockets ---------------------------------------------------------- */

/* An address as /proc/net/tcp{,6} prints it: each 32-bit word of the
 * in-kernel address (network byte order in memory) printed with %08X as a
 * host-order number, so the words to compare are the address's bytes read
 * as host u32s; the port is printed in host order. */
struct tcp_addr {
	uint32_t w[4];
	uint16_t port;
	bool v4; /* an IPv4 address, or an IPv4-mapped IPv6 one (then in w[0]) */
};

static int tcp_addr_of(const struct sockaddr *sa, struct tcp_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(&ret->w[0], &in->sin_addr, 4);
		ret->port = ntohs(in->sin_port);
		ret->v4 = true;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		ret->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(&ret->w[0], &in6->sin6_addr.s6_addr[12], 4);
			ret->v4 = true;
		} else {
			memcpy(ret->w, &in6->sin6_addr, 16);
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* The words an IPv4 address has in tcp6, where an AF_INET6 socket talking
 * IPv4 shows it as ::ffff:a.b.c.d. */
static void tcp_addr_mapped(const struct tcp_addr *a, uint32_t w[4])
{
	static const unsigned char ffff[4] = {0, 0, 0xff, 0xff};

	w[0] = w[1] = 0;
	memcpy(&w[2], ffff, 4);
	w[3] = a->w[0];
}

struct tcp_query {
	uint32_t local[4], remote[4];
	uint16_t local_port, remote_port;
	size_t words; /* 1 in tcp, 4 in tcp6 */
	uint64_t inode;
};

/* Whether the "HEX:PORT" token at *p is the given address; moves *p past
 * it either way (a header line's words simply don't match). */
static bool tcp_token_is(const char **p, const char *end, const uint32_t *w, size_t words,
			 uint16_t port)
{
	const char *s = skip_blanks(*p, end);
	uint32_t v = 0;
	size_t i, nport = 0;

	*p = skip_token(s, end);
	if ((size_t)(*p - s) < words * 8 + 2)
		return false;
	for (i = 0; i < words * 8; i++) {
		int h = util__hex_digit(s[i]);

		if (h < 0)
			return false;
		v = v << 4 | (uint32_t)h;
		if (i % 8 == 7) {
			if (v != w[i / 8])
				return false;
			v = 0;
		}
	}
	if (s[i++] != ':')
		return false;
	for (; s + i < *p; i++, nport++) {
		int h = util__hex_digit(s[i]);

		if (h < 0 || nport == 4)
			return false;
		v = v << 4 | (uint32_t)h;
	}
	return v == port;
}

/* "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...": a line
 * with inode 0 (TIME_WAIT, or a socket being torn down) has no owner. */
static int tcp_line(const char *line, size_t len, void *ctx)
{
	struct tcp_query *q = ctx;
	const char *p = line, *end = line + len;
	uint64_t inode;
	int field;

	p = skip_token(p, end); /* "sl:" */
	if (!tcp_token_is(&p, end, q->local, q->words, q->local_port))
		return 0;
	if (!tcp_token_is(&p, end, q->remote, q->words, q->remote_port))
		return 0;
	for (field = 3; field < 9; field++)
		p = skip_token(p, end);
	if (!parse_u64(&p, end, &inode) || inode == 0)
		return 0;
	q->inode = inode;
	return 1;
}

/* 1 and q->inode if net/<table> has the connection, 0 if not (or if the
 * table does not exist: a kernel without IPv6), else a negative errno. */
static int tcp_search(int rootfd, const char *table, struct tcp_query *q)
{
	int r = for_each_line(rootfd, table, COLLECTOR_MAX_NET_TABLE, tcp_line, q);

	return r == -ENOENT ? 0 : r;
}

int collector__tcp_socket_inode(const char *proc_root, const struct sockaddr *local,
				const struct sockaddr *remote, uint64_t *ret_inode)
{
	struct tcp_addr l, rem;
	struct tcp_query q = {0};
	DIR *root = NULL;
	int r;

	r = tcp_addr_of(local, &l);
	if (r < 0)
		goto cleanup;
	r = tcp_addr_of(remote, &rem);
	if (r < 0)
		goto cleanup;
	r = -ENOENT;
	if (l.v4 != rem.v4)
		goto cleanup; /* no socket joins an IPv4 and a true IPv6 address */
	r = open_root(proc_root, &root);
	if (r < 0)
		goto cleanup;
	q.local_port = l.port;
	q.remote_port = rem.port;
	if (l.v4) {
		/* an AF_INET socket: plain IPv4 in tcp */
		q.words = 1;
		q.local[0] = l.w[0];
		q.remote[0] = rem.w[0];
		r = tcp_search(dirfd(root), "net/tcp", &q);
		if (r)
			goto cleanup;
		/* an AF_INET6 socket talking IPv4: v4-mapped in tcp6 */
		q.words = 4;
		tcp_addr_mapped(&l, q.local);
		tcp_addr_mapped(&rem, q.remote);
	} else {
		q.words = 4;
		memcpy(q.local, l.w, sizeof(q.local));
		memcpy(q.remote, rem.w, sizeof(q.remote));
	}
	r = tcp_search(dirfd(root), "net/tcp6", &q);
cleanup:
	if (root)
		closedir(root);
	if (r > 0) {
		*ret_inode = q.inode;
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	return r;
}

/* 1 if pid has an fd whose link reads exactly target ("socket:[INODE]"),
 * 0 if not or if the process is gone or not ours to look at. */
static int pid_has_socket(int rootfd, int32_t pid, const char *target, size_t target_len)
{
	char path[32], link[64];
	struct dirent *de;
	DIR *d = NULL;
	int fd = -1, r = 0;

	snprintf(path, sizeof(path), "%d/fd", (int)pid);
	fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		goto cleanup;
	d = fdopendir(fd);
	if (!d)
		goto cleanup;
	fd = -1; /* d owns it */
	/* a process that exits meanwhile just lists no more fds */
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link));
		if (n == (ssize_t)target_len && memcmp(link, target, target_len) == 0) {
			r = 1;
			break;
		}
	}
cleanup:
	if (r == 0 && !d && errno == ENOMEM)
		r = -ENOMEM;
	if (d)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return r;
}

/* The thread-group leader of pid (a hint may be a thread's id: /proc/TID
 * exists though /proc does not list it), or pid if status won't tell. */
static int32_t tgid_of(int rootfd, int32_t pid)
{
	struct dynbuf buf;
	const char *p, *end;
	char path[32];
	uint64_t v;
	int32_t tgid = pid;

	dynbuf__init(&buf, 0);
	snprintf(path, sizeof(path), "%d/status", (int)pid);
	if (read_at(rootfd, path, PROC_MAX_STATUS, &buf, NULL) < 0)
		goto cleanup;
	p = find_line(buf.data, buf.len, "Tgid:", &end);
	if (p && parse_u64(&p, end, &v) && v > 0 && v <= INT32_MAX)
		tgid = (int32_t)v;
cleanup:
	dynbuf__free(&buf);
	return tgid;
}

int collector__socket_owner(const char *proc_root, uint64_t inode, const int32_t *hints,
			    size_t n_hints, int32_t *ret_pid)
{
	char target[48];
	struct dirent *de;
	DIR *root = NULL;
	size_t tlen, i;
	int32_t owner = 0;
	int r;

	tlen = (size_t)snprintf(target, sizeof(target), "socket:[%llu]", (unsigned long long)inode);
	r = open_root(proc_root, &root);
	if (r < 0)
		goto cleanup;
	for (i = 0; i < n_hints && !owner; i++) {
		if (hints[i] <= 0)
			continue;
		r = pid_has_socket(dirfd(root), hints[i], target, tlen);
		if (r < 0)
			goto cleanup;
		if (r)
			owner = tgid_of(dirfd(root), hints[i]);
	}
	while (!owner) {
		bool hinted = false;
		int32_t pid;

		errno = 0;
		de = readdir(root);
		if (!de) {
			r = errno ? proc_errno(errno) : -ENOENT;
			goto cleanup;
		}
		pid = pid_of_name(de->d_name);
		if (!pid)
			continue;
		for (i = 0; i < n_hints && !hinted; i++)
			hinted = hints[i] == pid;
		if (hinted)
			continue; /* looked at already */
		r = pid_has_socket(dirfd(root), pid, target, tlen);
		if (r < 0)
			goto cleanup;
		if (r)
			owner = pid; /* listed, so a thread-group leader */
	}
	*ret_pid = owner;
	r = 0;
cleanup:
	if (root)
		closedir(root);
	return r;
}

/* ---- names ------------------------------------------------------------ */

/* The first run of exactly 64 hex digits in [p, end), or NULL. */
static const char *find_hex64(const char *p, const char *end)
{
	while (p < end) {
		const char *s;

		while (p < end && util__hex_digit(*p) < 0)
			p++;
		s = p;
		while (p < end && util__hex_digit(*p) >= 0)
			p++;
		if (p - s == COLLECTOR_CONTAINER_ID_MAX)
			return s;
	}
	return NULL;
}

/* The runtimes name their cgroups "<id>" (cgroup v1, cgroupfs driver) or
 * "<runtime>-<id>.scope" (systemd driver); systemd may nest further units
 * below (".../docker-<id>.scope/init.scope"), hence the last component that
 * holds an id. cri-o and podman give their monitor, conmon, a cgroup of its
 * own named "<runtime>-conmon-<id>.scope": that process is not in the
 * container. */
int collector__container_id(const char *cgroup_line, size_t len, char *ret)
{
	const char *end, *path, *c, *colon, *id = NULL, *comp = NULL;
	size_t i;

	if (!cgroup_line)
		return -ENOENT;
	c = memchr(cgroup_line, '\n', len);
	end = c ? c : cgroup_line + len;
	/* "hierarchy-ID:controllers:path"; the path is all that counts */
	path = cgroup_line;
	colon = memchr(path, ':', (size_t)(end - path));
	if (colon)
		colon = memchr(colon + 1, ':', (size_t)(end - colon - 1));
	if (colon)
		path = colon + 1;
	for (c = path; c < end;) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		const char *cend = slash ? slash : end;
		const char *found = find_hex64(c, cend);

		if (found) {
			id = found;
			comp = c;
		}
		if (!slash)
			break;
		c = slash + 1;
	}
	if (!id)
		return -ENOENT;
	if (id - comp >= 7 && memcmp(id - 7, "conmon-", 7) == 0)
		return -ENOENT;
	for (i = 0; i < COLLECTOR_CONTAINER_ID_MAX; i++)
		ret[i] = (char)tolower((unsigned char)id[i]);
	ret[i] = '\0';
	return 0;
}

enum runtime collector__runtime_of_exe(const char *exe)
{
	const char *base;
	size_t len, slen = sizeof(DELETED_SUFFIX) - 1;

	if (!exe)
		return RUNTIME_UNKNOWN;
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	len = strlen(base);
	/* the exe link of a replaced binary reads "<path> (deleted)" */
	if (len >= slen && memcmp(base + len - slen, DELETED_SUFFIX, slen) == 0)
		len -= slen;
	return profile__runtime_of_exe(base, len);
}

/* ---- this process's vDSO ------------------------------------------------ */

uint64_t collector__own_vdso(const void **ret_image)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	struct dynbuf buf;
	uint64_t len = 0;
	const char *p, *end;

	*ret_image = NULL;
	if (!base)
		return 0;
	dynbuf__init(&buf, 0);
	/* this process's maps, not proc_root's: the image is this process's */
	if (util__read_file("/proc/self/maps", COLLECTOR_MAX_MAPS, NULL, &buf) < 0)
		goto cleanup;
	for (p = buf.data, end = buf.data + buf.len; p < end && !len;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		unsigned long long start, stop;
		size_t n;

		if (!nl)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 6 && memcmp(nl - 6, "[vdso]", 6) == 0 &&
		    sscanf(p, "%llx-%llx", &start, &stop) == 2 && start == base && stop > start)
			len = stop - start;
		p = nl + 1;
	}
	if (len)
		*ret_image = (const void *)base;
cleanup:
	dynbuf__free(&buf);
	return len;
}
