/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/unwind.c against real BPF maps and real processes (root; exits
 * 77, "skipped", with the reason elsewhere): the maps it fills are the ones
 * bpf/profile.bpf.c reads, created here with the same types and sizes but
 * a rows array sized to make room scarce.
 *
 * - A process's entry lists its executable mappings with rules, sorted,
 *   the vDSO's too (its rules read from braid's own).
 * - A file no process maps any more is unloaded to make room for a new
 *   one, least recently used first; a file a live process maps never is.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profile.h"

#define SKIP	  77
#define PYTHON	  "/usr/bin/python3.11"
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

	ret->m = (struct collector_unwind_maps){.max_rows = max_rows, .max_pages = MAX_PAGES};
	ret->m.rows_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "unwind_rows", sizeof(uint32_t),
					sizeof(struct braid_unwind_row), max_rows, NULL);
	ret->m.pages_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_pages",
					 sizeof(struct braid_unwind_page_key),
					 sizeof(struct braid_unwind_page), MAX_PAGES, &nopre);
	ret->m.procs_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_procs", sizeof(uint32_t),
					 sizeof(struct braid_unwind_proc), MAX_PROCS, &nopre);
	if (ret->m.rows_fd < 0 || ret->m.pages_fd < 0 || ret->m.procs_fd < 0)
		return -errno;
	return 0;
}

static void close_maps(struct maps *m)
{
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
	const char *chain = getenv("WORKLOAD_CFI_CHAIN");
	char *py_argv[] = {PYTHON, "-c", "import time; time.sleep(60)", NULL};
	char *chain_argv[] = {(char *)chain, "1000000000000", NULL};
	struct collector_unwind *u = NULL;
	struct collector_unwind_stats st;
	struct maps m = {{-1, -1, -1, 0, 0}};
	uint32_t py_rows, chain_rows, max_rows, n;
	pid_t py = -1, ch = -1;
	uint64_t chain_start;

	if (geteuid() != 0) {
		fprintf(stderr, "skip: BPF maps need root (CAP_BPF)\n");
		return SKIP;
	}
	if (!chain || access(chain, X_OK) != 0 || access(PYTHON, X_OK) != 0) {
		fprintf(stderr, "skip: needs WORKLOAD_CFI_CHAIN and %s\n", PYTHON);
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

	/* 2. Room for python3.11 and one row short of cfi_chain's own file:
	 * cfi_chain's libc and ld.so are python's already. */
	chain_rows = file_rows(chain);
	CHECK(chain_rows > 0, "%s has no rules", chain);
	max_rows = py_rows + chain_rows - 1;
	if (create_maps(max_rows, &m) < 0 || collector_unwind__new(&m.m, NULL, &u) < 0) {
		CHECK(0, "maps of %u rows", max_rows);
		goto out;
	}
	CHECK(collector_unwind__add_process(u, py) == 0, "add python3.11");
	ch = spawn(chain_argv);
	CHECK(ch > 0, "cfi_chain didn't start");
	if (ch <= 0)
		goto out;
	chain_start = exec_mapping(ch, "/cfi_chain");
	CHECK(collector_unwind__add_process(u, ch) == 0, "add cfi_chain");
	collector_unwind__stats(u, &st);
	CHECK(!entry_has(&m, ch, chain_start, &n) && n >= 2,
	      "python3.11 alive: cfi_chain's file has no room, its libc and ld.so are there "
	      "(%u mappings)",
	      n);
	CHECK(st.files_no_room == 1 && st.files_evicted == 0,
	      "a file in use is never unloaded: %" PRIu64 " without room, %" PRIu64 " unloaded",
	      st.files_no_room, st.files_evicted);
	CHECK(entry_has(&m, py, exec_mapping(py, "/python3.11"), &n), "python3.11 keeps its rules");

	/* 3. python3.11 gone: its own files make room for cfi_chain's. */
	collector_unwind__remove_process(u, py);
	reap(py);
	py = -1;
	CHECK(collector_unwind__add_process(u, ch) == 0, "add cfi_chain again");
	collector_unwind__stats(u, &st);
	CHECK(entry_has(&m, ch, chain_start, &n), "cfi_chain's file loaded once python3.11 left");
	CHECK(entry_has(&m, ch, exec_mapping(ch, "/libc.so.6"), &n),
	      "libc, which cfi_chain maps, stays");
	CHECK(st.files_evicted >= 1 && st.rows <= max_rows,
	      "%" PRIu64 " files unloaded, %" PRIu64 " rows of %u", st.files_evicted, st.rows,
	      max_rows);
	printf("# max %u rows: cfi_chain loaded after %" PRIu64 " files unloaded; %" PRIu64
	       " rows in use\n",
	       max_rows, st.files_evicted, st.rows);

	/* 4. Churn: python3.11 comes and goes; cfi_chain stays whole; the rows
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
		CHECK(entry_has(&m, ch, chain_start, &n), "round %d: cfi_chain keeps its rules", i);
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
