/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/unwind.c against real BPF maps and real processes (root; exits
 * 77, "skipped", with the reason elsewhere): the maps it fills are the ones
 * bpf/profile.bpf.c reads, created here with the same types and sizes but
 * a rows array sized to make room scarce.
 *
 * - A process's entry lists its executable mappings with rules, sorted,
 *   the vDSO's too (its rules read from braid's own).
 * - A process gone before its files could be opened doesn't cost the next
 *   process mapping them their rules.
 * - A file no process maps any more is unloaded to make room for a new
 *   one, least recently used first; a file a live process maps never is,
 *   unless the process was not sampled for a minute: then its entry is
 *   taken back (emptied, so that its next sample asks for it again).
 * - After many loads and unloads of files of different sizes, the rows in
 *   use are exactly the loaded files' rows, and every page entry points
 *   inside the array.
 */
#define _GNU_SOURCE
#include "collector/collector.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profile.h"

#define SKIP	  77
#define PYTHON	  "/usr/bin/python3.11"
#define SLEEP	  "/usr/bin/sleep"
#define MAX_PAGES (1u << 14)
#define MAX_PROCS 64
#define WAIT_MS	  5000
#define CHURN	  12

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

struct maps {
	struct collector_unwind_maps m;
};

static int create_maps(uint32_t max_rows, struct maps *ret)
{
	LIBBPF_OPTS(bpf_map_create_opts, nopre, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, mmapable, .map_flags = BPF_F_MMAPABLE);

	ret->m = (struct collector_unwind_maps){.max_rows = max_rows, .max_pages = MAX_PAGES};
	ret->m.rows_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "unwind_rows", sizeof(uint32_t),
					sizeof(struct braid_unwind_row), max_rows, &mmapable);
	ret->m.pages_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_pages",
					 sizeof(struct braid_unwind_page_key),
					 sizeof(struct braid_unwind_page), MAX_PAGES, &nopre);
	ret->m.procs_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_procs", sizeof(uint32_t),
					 sizeof(struct braid_unwind_proc), MAX_PROCS, &nopre);
	if (ret->m.rows_fd < 0 || ret->m.pages_fd < 0 || ret->m.procs_fd < 0)
		return -errno;
	ret->m.rows = mmap(NULL, (size_t)max_rows * sizeof(struct braid_unwind_row),
			   PROT_READ | PROT_WRITE, MAP_SHARED, ret->m.rows_fd, 0);
	if (ret->m.rows == MAP_FAILED) {
		ret->m.rows = NULL;
		return -errno;
	}
	return 0;
}

static void close_maps(struct maps *m)
{
	if (m->m.rows)
		munmap(m->m.rows, (size_t)m->m.max_rows * sizeof(struct braid_unwind_row));
	m->m.rows = NULL;
	close(m->m.rows_fd);
	close(m->m.pages_fd);
	close(m->m.procs_fd);
}

/* Starts argv and waits until it runs argv[0] with libc mapped. */
static pid_t spawn(char *const argv[])
{
	pid_t pid = fork();
	char path[64], buf[1 << 16];

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	for (int ms = 0; ms < WAIT_MS; ms += 10) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, "libc.so.6") && strstr(buf, argv[0]))
				return pid;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* The start of pid's first executable mapping of a file whose path ends
 * in name; 0 if none. */
static uint64_t exec_mapping(pid_t pid, const char *name)
{
	char path[64], line[4096];
	unsigned long long start = 0, s, e;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!start && fgets(line, sizeof(line), f)) {
		char perms[8];
		size_t len = strcspn(line, "\n"), nl = strlen(name);

		line[len] = '\0';
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) == 3 && strchr(perms, 'x') &&
		    len >= nl && strcmp(line + len - nl, name) == 0)
			start = s;
	}
	fclose(f);
	return start;
}

/* Whether pid's entry has a mapping starting at start. */
static bool entry_has(const struct maps *m, pid_t pid, uint64_t start, uint32_t *ret_n)
{
	struct braid_unwind_proc p;
	uint32_t key = (uint32_t)pid;

	*ret_n = 0;
	if (bpf_map_lookup_elem(m->m.procs_fd, &key, &p) < 0)
		return false;
	*ret_n = p.n;
	for (uint32_t i = 1; i < p.n; i++)
		CHECK(p.m[i - 1].end <= p.m[i].start, "pid %d: mappings %u and %u not sorted",
		      (int)pid, i - 1, i);
	for (uint32_t i = 0; i < p.n; i++)
		if (p.m[i].start == start)
			return true;
	return false;
}

/* Copies the file at from to to; false on error. */
static bool copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	FILE *in = fopen(from, "re"), *out = in ? fopen(to, "we") : NULL;
	size_t n;
	bool ok = in && out;

	while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		ok = fwrite(buf, 1, n, out) == n;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		ok = false;
	return ok;
}

/* A /proc of two processes: FAKE, whose maps and stat are py's but whose
 * files can't be opened (a process gone meanwhile), and py itself. Adding
 * FAKE first must not keep py from its rules. */
static void gone_first(pid_t py)
{
	char root[] = "/tmp/braid-unwind-XXXXXX", path[256], target[64];
	const int32_t fake = 4000000; /* above any pid_max */
	struct collector_unwind *u = NULL;
	struct collector_unwind_stats st;
	struct maps m = {{-1, -1, -1, 0, 0, NULL}};
	uint32_t n;

	if (!mkdtemp(root)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/stat", root);
	CHECK(symlink("/proc/stat", path) == 0, "%s", path);
	snprintf(path, sizeof(path), "%s/%d", root, (int)py);
	snprintf(target, sizeof(target), "/proc/%d", (int)py);
	CHECK(symlink(target, path) == 0, "%s", path);
	snprintf(path, sizeof(path), "%s/%d", root, fake);
	CHECK(mkdir(path, 0700) == 0, "%s", path);
	snprintf(path, sizeof(path), "%s/%d/maps", root, fake);
	snprintf(target, sizeof(target), "/proc/%d/maps", (int)py);
	CHECK(copy_file(target, path), "%s", path);
	snprintf(path, sizeof(path), "%s/%d/stat", root, fake);
	snprintf(target, sizeof(target), "/proc/%d/stat", (int)py);
	CHECK(copy_file(target, path), "%s", path);

	CHECK(create_maps(1u << 22, &m) == 0, "maps");
	CHECK(collector_unwind__new(&m.m, root, &u) == 0, "collector_unwind__new");
	CHECK(collector_unwind__add_process(u, fake) == 0, "add the process gone");
	collector_unwind__stats(u, &st);
	CHECK(st.files_unopened >= 2 && st.files_unreadable == 0,
	      "the process gone: %" PRIu64 " files not opened, %" PRIu64 " unreadable",
	      st.files_unopened, st.files_unreadable);
	CHECK(collector_unwind__add_process(u, py) == 0, "add python3.11");
	collector_unwind__stats(u, &st);
	CHECK(entry_has(&m, py, exec_mapping(py, "/python3.11"), &n) &&
		      entry_has(&m, py, exec_mapping(py, "/libc.so.6"), &n),
	      "python3.11 gets the rules of the files the process gone couldn't open");
	printf("# a process gone first: %" PRIu64 " files not opened; then python3.11: %" PRIu64
	       " files loaded, %u mappings\n",
	       st.files_unopened, st.files_loaded, n);
	collector_unwind__free(u);
	close_maps(&m);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	CHECK(system(path) == 0, "%s", path);
}

/* Makes pid's entry look not sampled for seconds. */
static void make_idle(const struct maps *m, pid_t pid, unsigned seconds)
{
	struct braid_unwind_proc p;
	uint32_t key = (uint32_t)pid;

	CHECK(bpf_map_lookup_elem(m->m.procs_fd, &key, &p) == 0, "pid %d has no entry", (int)pid);
	p.last_ns -= (uint64_t)seconds * 1000000000ull;
	CHECK(bpf_map_update_elem(m->m.procs_fd, &key, &p, BPF_EXIST) == 0, "pid %d's entry",
	      (int)pid);
}

/* The rows a file takes in the maps: its table plus the leading NONE row. */
static uint32_t file_rows(const char *path)
{
	struct collector_cfi *t = NULL;
	struct errbuf err;
	uint32_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (collector_cfi__read(fd, path, &err, &t) == 0 && collector_cfi__count(t) > 0)
		n = (uint32_t)collector_cfi__count(t) + 1;
	collector_cfi__free(t);
	close(fd);
	return n;
}

/* Every page entry points inside the rows array. */
static void check_pages(const struct maps *m, uint32_t max_rows)
{
	struct braid_unwind_page_key k, next;
	struct braid_unwind_page pg;
	void *prev = NULL;
	uint64_t n = 0;

	while (bpf_map_get_next_key(m->m.pages_fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(m->m.pages_fd, &k, &pg) < 0)
			continue;
		n++;
		CHECK(pg.count > 0 && (uint64_t)pg.first + pg.count <= max_rows,
		      "page %" PRIx64 " of file %" PRIx64 ": rows [%u, +%u) past %u",
		      (uint64_t)k.page, (uint64_t)k.file_id, pg.first, pg.count, max_rows);
	}
	CHECK(n > 0, "no page entries");
}

int main(void)
{
	/* a program that maps nothing python3.11 doesn't but itself, whatever
	 * the build (a sanitizer's build of an in-tree one maps its runtime) */
	const char *chain = SLEEP;
	char *py_argv[] = {PYTHON, "-c", "import time; time.sleep(60)", NULL};
	char *chain_argv[] = {(char *)chain, "600", NULL};
	struct collector_unwind *u = NULL;
	struct collector_unwind_stats st;
	struct maps m = {{-1, -1, -1, 0, 0, NULL}};
	uint32_t py_rows, chain_rows, max_rows, n;
	pid_t py = -1, ch = -1;
	uint64_t chain_start;

	if (geteuid() != 0) {
		fprintf(stderr, "skip: BPF maps need root (CAP_BPF)\n");
		return SKIP;
	}
	if (access(chain, X_OK) != 0 || access(PYTHON, X_OK) != 0) {
		fprintf(stderr, "skip: needs %s and %s\n", chain, PYTHON);
		return SKIP;
	}

	/* 1. How many rows python3.11 needs, with room to spare. */
	if (create_maps(1u << 22, &m) < 0) {
		fprintf(stderr, "skip: can't create BPF maps: %s\n", strerror(errno));
		return SKIP;
	}
	py = spawn(py_argv);
	CHECK(py > 0, "python3.11 didn't start");
	if (py <= 0)
		goto out;
	CHECK(collector_unwind__new(&m.m, NULL, &u) == 0, "collector_unwind__new");
	CHECK(collector_unwind__add_process(u, py) == 0, "add python3.11");
	collector_unwind__stats(u, &st);
	py_rows = (uint32_t)st.rows;
	CHECK(entry_has(&m, py, exec_mapping(py, "/python3.11"), &n), "python3.11's own mapping");
	CHECK(entry_has(&m, py, exec_mapping(py, "[vdso]"), &n), "python3.11's vDSO");
	printf("# python3.11: %u rows, %" PRIu64 " files loaded, %u mappings\n", py_rows,
	       st.files_loaded, n);
	CHECK(st.files_loaded >= 2 && py_rows > 50000, "python3.11: %" PRIu64 " files, %u rows",
	      st.files_loaded, py_rows);
	collector_unwind__free(u);
	u = NULL;
	close_maps(&m);

	/* 1b. A process gone before its files were opened doesn't cost them
	 * their rules: the next process mapping them gets them. */
	gone_first(py);

	/* 2. Room for python3.11 and one row short of sleep's own file:
	 * sleep's libc and ld.so are python's already. */
	chain_rows = file_rows(chain);
	CHECK(chain_rows > 0, "%s has no rules", chain);
	max_rows = py_rows + chain_rows - 1;
	if (create_maps(max_rows, &m) < 0 || collector_unwind__new(&m.m, NULL, &u) < 0) {
		CHECK(0, "maps of %u rows", max_rows);
		goto out;
	}
	CHECK(collector_unwind__add_process(u, py) == 0, "add python3.11");
	ch = spawn(chain_argv);
	CHECK(ch > 0, "sleep didn't start");
	if (ch <= 0)
		goto out;
	chain_start = exec_mapping(ch, "/sleep");
	CHECK(collector_unwind__add_process(u, ch) == 0, "add sleep");
	collector_unwind__stats(u, &st);
	CHECK(!entry_has(&m, ch, chain_start, &n) && n >= 2,
	      "python3.11 alive: sleep's file has no room, its libc and ld.so are there "
	      "(%u mappings)",
	      n);
	CHECK(st.files_no_room == 1 && st.files_evicted == 0,
	      "a file in use is never unloaded: %" PRIu64 " without room, %" PRIu64 " unloaded",
	      st.files_no_room, st.files_evicted);
	CHECK(entry_has(&m, py, exec_mapping(py, "/python3.11"), &n), "python3.11 keeps its rules");

	/* 3. python3.11 not sampled for two minutes (the program stamps
	 * last_ns): its entry is taken back when room is needed, and its files
	 * make room for sleep's. */
	make_idle(&m, py, 120);
	CHECK(collector_unwind__add_process(u, ch) == 0, "add sleep again");
	collector_unwind__stats(u, &st);
	CHECK(entry_has(&m, ch, chain_start, &n), "sleep's file loaded once python3.11 idled");
	CHECK(st.procs_idle == 1, "%" PRIu64 " idle entries taken back", st.procs_idle);
	CHECK(!entry_has(&m, py, exec_mapping(py, "/python3.11"), &n) && n == 0,
	      "python3.11's entry kept with no mappings (%u): its next sample asks again", n);
	collector_unwind__remove_process(u, py);
	reap(py);
	py = -1;
	CHECK(entry_has(&m, ch, exec_mapping(ch, "/libc.so.6"), &n),
	      "libc, which sleep maps, stays");
	CHECK(st.files_evicted >= 1 && st.rows <= max_rows,
	      "%" PRIu64 " files unloaded, %" PRIu64 " rows of %u", st.files_evicted, st.rows,
	      max_rows);
	printf("# max %u rows: sleep loaded after python3.11 idled and %" PRIu64
	       " files unloaded; %" PRIu64 " rows in use\n",
	       max_rows, st.files_evicted, st.rows);

	/* 4. Churn: python3.11 comes and goes; sleep stays whole; the rows
	 * in use never pass the array and each page stays inside it. */
	for (int i = 0; i < CHURN; i++) {
		py = spawn(py_argv);
		CHECK(py > 0, "python3.11 didn't start (round %d)", i);
		if (py <= 0)
			break;
		CHECK(collector_unwind__add_process(u, py) == 0, "add python3.11 (round %d)", i);
		collector_unwind__stats(u, &st);
		CHECK(st.rows <= max_rows, "round %d: %" PRIu64 " rows of %u", i, st.rows,
		      max_rows);
		CHECK(entry_has(&m, ch, chain_start, &n), "round %d: sleep keeps its rules", i);
		collector_unwind__remove_process(u, py);
		reap(py);
		py = -1;
	}
	check_pages(&m, max_rows);
	collector_unwind__stats(u, &st);
	printf("# %d rounds: %" PRIu64 " files unloaded, %" PRIu64 " without room, %" PRIu64
	       " rows, %" PRIu64 " pages, %" PRIu64 " bytes in user space\n",
	       CHURN, st.files_evicted, st.files_no_room, st.rows, st.pages, st.user_bytes);
	collector_unwind__remove_process(u, ch);
	collector_unwind__stats(u, &st);
	CHECK(st.files_loaded > 0, "files stay loaded (unused) until room is needed");
out:
	reap(py);
	reap(ch);
	collector_unwind__free(u);
	close_maps(&m);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
