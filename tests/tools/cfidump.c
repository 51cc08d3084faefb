/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfidump: prints the unwind rows collector/cfi.c builds from an ELF file,
 * one a line, for tests/cli/cfi.sh to compare with readelf:
 *   VADDR KIND CFA_OFFSET RBP_OFFSET      (hex vaddr, kind as "rsp", "plt", ...)
 * then "# " lines with the statistics. --time N builds the table N times and
 * prints the time per build and the table's bytes instead of the rows.
 *   cfidump [--time N] FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "collector/collector.h"
#include "util/util.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int build(const char *path, struct errbuf *err, struct collector_cfi **ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return errbuf__set(err, -errno, "%s: %s", path, strerror(errno));
	r = collector_cfi__read(fd, path, err, ret);
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	struct collector_cfi *t = NULL;
	struct collector_cfi_stats st;
	struct errbuf err = {{0}};
	const char *path;
	long times = 0;
	int r;

	if (argc == 4 && strcmp(argv[1], "--time") == 0) {
		times = strtol(argv[2], NULL, 10);
		path = argv[3];
		if (times < 1) {
			fprintf(stderr, "cfidump: --time needs a count of 1 or more\n");
			return 2;
		}
	} else if (argc == 2) {
		path = argv[1];
	} else {
		fprintf(stderr, "usage: cfidump [--time N] FILE\n");
		return 2;
	}
	if (times) {
		double t0 = now_s(), dt;
		struct rusage ru;

		for (long i = 0; i < times; i++) {
			collector_cfi__free(t);
			t = NULL;
			r = build(path, &err, &t);
			if (r < 0)
				goto fail;
		}
		dt = (now_s() - t0) / (double)times;
		if (getrusage(RUSAGE_SELF, &ru) < 0) {
			perror("cfidump: getrusage");
			collector_cfi__free(t);
			return 1;
		}
		collector_cfi__stats(t, &st);
		printf("%s: %.2f ms per build, %zu rows, %" PRIu64 " FDEs, %zu bytes, "
		       "max RSS %ld KiB\n",
		       path, dt * 1e3, collector_cfi__count(t), st.fdes, collector_cfi__bytes(t),
		       ru.ru_maxrss);
		collector_cfi__free(t);
		return 0;
	}
	r = build(path, &err, &t);
	if (r < 0)
		goto fail;
	{
		const struct collector_cfi_row *rows = collector_cfi__rows(t);
		size_t n = collector_cfi__count(t);

		for (size_t i = 0; i < n; i++)
			printf("%" PRIx64 " %s %d %d\n", rows[i].vaddr,
			       collector_cfi__kind_name(rows[i].kind), rows[i].cfa_offset,
			       rows[i].rbp_offset);
	}
	collector_cfi__stats(t, &st);
	printf("# cies %" PRIu64 " fdes %" PRIu64 " fdes_skipped %" PRIu64 " ranges %" PRIu64
	       " rows %zu bytes %zu\n",
	       st.cies, st.fdes, st.fdes_skipped, st.ranges, st.rows, collector_cfi__bytes(t));
	for (unsigned i = 0; i < COLLECTOR_CFI_REASONS; i++)
		printf("# none %s %" PRIu64 "\n", collector_cfi__reason_name(i), st.none[i]);
	collector_cfi__free(t);
	return 0;
fail:
	fprintf(stderr, "cfidump: %s (%s)\n", err.msg[0] ? err.msg : path, strerror(-r));
	collector_cfi__free(t);
	return 1;
}
