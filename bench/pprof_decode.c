/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decode speed of braid's pprof decoder, the same measurement that
 * bench/go/decodebench makes of Go's profile.Parse: each file is read once,
 * then decoded (gunzip + protobuf + model) repeatedly.
 *
 *   bench_pprof_decode [-n ITERS] [-min-seconds S] FILE...
 *
 * Prints one line per file:
 *   peer=braid file=F iters=N seconds=S bytes=B raw_bytes=R samples=K mb_s=X samples_s=Y
 * mb_s counts decompressed bytes; samples are the profile's distinct samples.
 */
#include "profile/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_file(const char *path, long iters, double min_seconds)
{
	struct dynbuf data, raw;
	struct errbuf err = {{0}};
	struct profile *p = NULL;
	size_t samples, raw_len;
	const char *base = strrchr(path, '/');
	double t0, secs;
	long n = 0;
	int r;

	dynbuf__init(&data, 0);
	dynbuf__init(&raw, 0);
	r = util__read_file(path, 1u << 30, &err, &data);
	if (r < 0)
		goto fail;
	raw_len = data.len;
	if (util__is_gzip(data.data, data.len)) {
		r = util__gunzip(data.data, data.len, 1u << 30, &err, &raw);
		if (r < 0)
			goto fail;
		raw_len = raw.len;
	}
	/* warm-up, and the sample count */
	r = profile__from_pprof(data.data, data.len, NULL, &err, &p);
	if (r < 0)
		goto fail;
	samples = profile__n_samples(p);
	profile__free(p);
	t0 = now();
	do {
		r = profile__from_pprof(data.data, data.len, NULL, &err, &p);
		if (r < 0)
			goto fail;
		profile__free(p);
		n++;
		secs = now() - t0;
	} while (n < iters || secs < min_seconds);
	printf("peer=braid file=%s iters=%ld seconds=%.6f bytes=%zu raw_bytes=%zu samples=%zu "
	       "mb_s=%.2f samples_s=%.0f\n",
	       base ? base + 1 : path, n, secs, data.len, raw_len, samples,
	       (double)raw_len * (double)n / secs / 1e6, (double)samples * (double)n / secs);
	dynbuf__free(&data);
	dynbuf__free(&raw);
	return 0;
fail:
	fprintf(stderr, "bench_pprof_decode: %s: %s\n", path, err.msg[0] ? err.msg : strerror(-r));
	dynbuf__free(&data);
	dynbuf__free(&raw);
	return 1;
}

int main(int argc, char **argv)
{
	long iters = 1;
	double min_seconds = 1.0;
	int i = 1, status = 0;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			iters = atol(argv[++i]);
		else if (strcmp(argv[i], "-min-seconds") == 0 && i + 1 < argc)
			min_seconds = atof(argv[++i]);
		else {
			fprintf(stderr,
				"usage: bench_pprof_decode [-n ITERS] [-min-seconds S] FILE...\n");
			return 2;
		}
	}
	if (i == argc) {
		fprintf(stderr, "usage: bench_pprof_decode [-n ITERS] [-min-seconds S] FILE...\n");
		return 2;
	}
	for (; i < argc; i++)
		status |= bench_file(argv[i], iters, min_seconds);
	return status;
}
