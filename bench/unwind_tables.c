/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How much the unwind rules of this machine's processes weigh: every
 * executable file mapped by any process (each file once, by device and
 * inode, as the tables are shared), read with collector_cfi__read. Prints
 * the processes and files seen, the files with rules, the rows, the memory
 * of the tables in user space, the time to build them all, and the peak
 * RSS, one "name value" line each, for bench/run.sh.
 *
 * Then, as root in a build with the eBPF sampler, what braid's sampler
 * would hold for all of them: BPF maps created as it sizes them by default
 * (COLLECTOR_UNWIND_DEFAULT_BYTES of rows), every process added with
 * collector_unwind__add_process, and the kernel memory of the maps (their
 * memlock) and unwind.c's own, the "kernel_" and "unwind_" lines.
 *
 *   bench_unwind_tables [--proc DIR] [-v]
 *
 * Run as root to see every process's files (others' /proc/PID/map_files
 * and roots are closed to a user). -v lists each file.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector/collector.h"
#include "util/util.h"

#ifdef BENCH_WITH_BPF
#include <bpf/bpf.h>

#include "bpf/profile.h"
#endif

#define MAX_FILES 65536

struct seen {
	dev_t dev;
	ino_t ino;
};

struct totals {
	size_t processes, mappings, files, with_rules, failed;
	uint64_t rows, bytes, none_rows;
	double seconds;
	struct seen *seen;
	size_t n_seen;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool seen_before(struct totals *t, const struct stat *st)
{
	for (size_t i = 0; i < t->n_seen; i++)
		if (t->seen[i].dev == st->st_dev && t->seen[i].ino == st->st_ino)
			return true;
	return false;
}

/* Reads one file's rules, once per (device, inode). */
static int measure_file(struct totals *t, const char *proc, const char *pid, const char *path,
			bool verbose)
{
	struct collector_cfi *cfi = NULL;
	struct collector_cfi_stats cs;
	struct errbuf err;
	struct stat st;
	char full[4096 + 64];
	double start;
	int fd, r;

	snprintf(full, sizeof(full), "%s/%s/root%s", proc, pid, path);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone, deleted, or not ours to read */
	if (fstat(fd, &st) < 0 || seen_before(t, &st) || t->n_seen == MAX_FILES) {
		close(fd);
		return 0;
	}
	t->seen[t->n_seen++] = (struct seen){st.st_dev, st.st_ino};
	t->files++;
	start = now_s();
	r = collector_cfi__read(fd, path, &err, &cfi);
	t->seconds += now_s() - start;
	close(fd);
	if (r < 0) {
		t->failed++;
		if (verbose)
			fprintf(stderr, "%s: %s\n", path, err.msg);
		return 0;
	}
	collector_cfi__stats(cfi, &cs);
	if (cs.rows > 1) /* more than the closing NONE row */
		t->with_rules++;
	t->rows += cs.rows;
	t->none_rows += cs.none[COLLECTOR_CFI_NO_FDE];
	t->bytes += collector_cfi__bytes(cfi);
	if (verbose)
		fprintf(stderr, "%-70s %8zu rows %10zu bytes\n", path, cs.rows,
			collector_cfi__bytes(cfi));
	collector_cfi__free(cfi);
	return 0;
}

/* The executable mappings of one process that name a file. */
static int measure_process(struct totals *t, const char *proc, const char *pid, bool verbose)
{
	char path[512], line[4096 + 256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/maps", proc, pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	t->processes++;
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "", file[4096] = "";
		int n = sscanf(line, "%*s %7s %*s %*s %*s %4095[^\n]", perms, file);

		if (n < 2 || perms[2] != 'x' || file[0] != '/')
			continue;
		t->mappings++;
		measure_file(t, proc, pid, file, verbose);
	}
	fclose(f);
	return 0;
}

#ifdef BENCH_WITH_BPF
/* The memlock of the map fd: what the kernel charges for it. */
static uint64_t memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Every process of proc added to maps sized as the sampler sizes them. */
static int measure_maps(const char *proc)
{
	LIBBPF_OPTS(bpf_map_create_opts, nopre, .map_flags = BPF_F_NO_PREALLOC);
	uint32_t rows = COLLECTOR_UNWIND_DEFAULT_BYTES / sizeof(struct braid_unwind_row);
	struct collector_unwind_maps m = {.max_rows = rows, .max_pages = rows / 32};
	struct collector_unwind *u = NULL;
	struct collector_unwind_stats st;
	struct dirent *de;
	size_t processes = 0;
	double start;
	int r = 0;
	DIR *d;

	LIBBPF_OPTS(bpf_map_create_opts, mmapable, .map_flags = BPF_F_MMAPABLE);

	m.rows_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "unwind_rows", sizeof(uint32_t),
				   sizeof(struct braid_unwind_row), m.max_rows, &mmapable);
	m.pages_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_pages",
				    sizeof(struct braid_unwind_page_key),
				    sizeof(struct braid_unwind_page), m.max_pages, &nopre);
	m.procs_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_procs", sizeof(uint32_t),
				    sizeof(struct braid_unwind_proc), COLLECTOR_UNWIND_MAX_PROCS,
				    &nopre);
	if (m.rows_fd < 0 || m.pages_fd < 0 || m.procs_fd < 0) {
		fprintf(stderr, "bench_unwind_tables: creating BPF maps: %s\n", strerror(errno));
		r = -errno;
		goto cleanup;
	}
	m.rows = mmap(NULL, (size_t)m.max_rows * sizeof(struct braid_unwind_row),
		      PROT_READ | PROT_WRITE, MAP_SHARED, m.rows_fd, 0);
	if (m.rows == MAP_FAILED) {
		m.rows = NULL;
		r = -errno;
		goto cleanup;
	}
	r = collector_unwind__new(&m, proc, &u);
	d = r < 0 ? NULL : opendir(proc);
	if (!d) {
		r = r < 0 ? r : -errno;
		goto cleanup;
	}
	start = now_s();
	while (r >= 0 && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		r = collector_unwind__add_process(u, (int32_t)atoi(de->d_name));
		processes++;
	}
	closedir(d);
	if (r < 0)
		goto cleanup;
	collector_unwind__stats(u, &st);
	printf("unwind_load_seconds %.3f\n", now_s() - start);
	printf("unwind_processes %zu\n", processes);
	printf("unwind_process_entries %" PRIu64 "\n", st.procs_added);
	printf("unwind_files_loaded %" PRIu64 "\n", st.files_loaded);
	printf("unwind_files_no_room %" PRIu64 "\n", st.files_no_room);
	printf("unwind_files_unreadable %" PRIu64 "\n", st.files_unreadable);
	printf("unwind_mappings_past_cap %" PRIu64 "\n", st.mappings_dropped);
	printf("unwind_rows %" PRIu64 "\n", st.rows);
	printf("unwind_pages %" PRIu64 "\n", st.pages);
	printf("unwind_rows_mib %.1f\n",
	       (double)st.rows * sizeof(struct braid_unwind_row) / (1 << 20));
	printf("unwind_user_mib %.2f\n", (double)st.user_bytes / (1 << 20));
	printf("kernel_rows_map_mib %.1f\n", (double)memlock(m.rows_fd) / (1 << 20));
	printf("kernel_pages_map_mib %.2f\n", (double)memlock(m.pages_fd) / (1 << 20));
	printf("kernel_procs_map_mib %.2f\n", (double)memlock(m.procs_fd) / (1 << 20));
	printf("kernel_maps_mib %.1f\n",
	       (double)(memlock(m.rows_fd) + memlock(m.pages_fd) + memlock(m.procs_fd)) /
		       (1 << 20));
cleanup:
	collector_unwind__free(u);
	if (m.rows)
		munmap(m.rows, (size_t)m.max_rows * sizeof(struct braid_unwind_row));
	if (m.rows_fd >= 0)
		close(m.rows_fd);
	if (m.pages_fd >= 0)
		close(m.pages_fd);
	if (m.procs_fd >= 0)
		close(m.procs_fd);
	return r;
}
#endif

int main(int argc, char **argv)
{
	const char *proc = "/proc";
	struct totals t = {0};
	struct rusage ru;
	struct dirent *de;
	bool verbose = false;
	DIR *d;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = true;
		} else if (!strcmp(argv[i], "--proc") && i + 1 < argc) {
			proc = argv[++i];
		} else {
			fprintf(stderr, "usage: bench_unwind_tables [--proc DIR] [-v]\n");
			return 2;
		}
	}
	t.seen = calloc(MAX_FILES, sizeof(*t.seen));
	if (!t.seen) {
		fprintf(stderr, "bench_unwind_tables: out of memory\n");
		return 1;
	}
	d = opendir(proc);
	if (!d) {
		fprintf(stderr, "bench_unwind_tables: %s: %s\n", proc, strerror(errno));
		free(t.seen);
		return 1;
	}
	while ((de = readdir(d)) != NULL)
		if (isdigit((unsigned char)de->d_name[0]))
			measure_process(&t, proc, de->d_name, verbose);
	closedir(d);
	free(t.seen);
	if (getrusage(RUSAGE_SELF, &ru) < 0) {
		fprintf(stderr, "bench_unwind_tables: getrusage: %s\n", strerror(errno));
		return 1;
	}
	printf("processes %zu\n", t.processes);
	printf("executable_mappings %zu\n", t.mappings);
	printf("files %zu\n", t.files);
	printf("files_with_rules %zu\n", t.with_rules);
	printf("files_failed %zu\n", t.failed);
	printf("rows %" PRIu64 "\n", t.rows);
	printf("table_bytes %" PRIu64 "\n", t.bytes);
	printf("table_mib %.1f\n", (double)t.bytes / (1 << 20));
	printf("build_seconds %.3f\n", t.seconds);
	printf("peak_rss_mib %.1f\n", (double)ru.ru_maxrss / 1024);
#ifdef BENCH_WITH_BPF
	if (geteuid() == 0 && measure_maps(proc) < 0)
		return 1;
#endif
	return 0;
}
