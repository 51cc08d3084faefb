/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decode speed of braid's JFR reader, the same measurement that
 * bench/go/jfrbench makes of Pyroscope's converter (github.com/grafana/
 * jfr-parser's pprof.ParseJFR): each recording is read and inflated once,
 * then turned into profiles repeatedly (chunks, metadata, constant pools,
 * events, and the profiles built).
 *
 *   bench_jfr_decode [-n ITERS] [-min-seconds S] [-rate HZ] [-labels FILE] FILE...
 *
 * Prints one line per file:
 *   peer=braid file=F iters=N seconds=S bytes=B profiles=P samples=K mb_s=X
 * bytes and mb_s count the inflated recording; samples are the distinct
 * samples of all its profiles. -labels gives every recording that `labels`
 * part (as bench/go/jfrbench does), read once.
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

static int bench_file(const char *path, long iters, double min_seconds, long rate,
		      const struct dynbuf *labels)
{
	struct profile_jfr_opts opts = {.sample_rate = rate,
					.labels = labels->len ? labels->data : NULL,
					.labels_len = labels->len};
	struct dynbuf data, raw;
	struct errbuf err = {{0}};
	struct profile_jfr *j = NULL;
	const struct dynbuf *in = &data;
	const char *base = strrchr(path, '/');
	size_t samples = 0, profiles;
	double t0, secs;
	long n = 0;
	int r;

	dynbuf__init(&data, 0);
	dynbuf__init(&raw, 0);
	r = util__read_file(path, 1u << 30, &err, &data);
	if (r < 0)
		goto fail;
	if (util__is_gzip(data.data, data.len)) {
		r = util__gunzip(data.data, data.len, 1u << 30, &err, &raw);
		if (r < 0)
			goto fail;
		in = &raw;
	}
	/* warm-up, and what the recording holds */
	r = profile__from_jfr(in->data, in->len, &opts, NULL, &err, &j);
	if (r < 0)
		goto fail;
	profiles = j->n;
	for (size_t i = 0; i < j->n; i++)
		samples += profile__n_samples(j->entries[i].profile);
	profile_jfr__free(j);
	t0 = now();
	do {
		r = profile__from_jfr(in->data, in->len, &opts, NULL, &err, &j);
		if (r < 0)
			goto fail;
		profile_jfr__free(j);
		n++;
		secs = now() - t0;
	} while (n < iters || secs < min_seconds);
	printf("peer=braid file=%s iters=%ld seconds=%.6f bytes=%zu ns_per_op=%.0f profiles=%zu "
	       "samples=%zu mb_s=%.2f\n",
	       base ? base + 1 : path, n, secs, in->len, secs * 1e9 / (double)n, profiles, samples,
	       (double)in->len * (double)n / secs / 1e6);
	dynbuf__free(&data);
	dynbuf__free(&raw);
	return 0;
fail:
	fprintf(stderr, "bench_jfr_decode: %s: %s\n", path, err.msg[0] ? err.msg : strerror(-r));
	dynbuf__free(&data);
	dynbuf__free(&raw);
	return 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_jfr_decode [-n ITERS] [-min-seconds S] [-rate HZ] [-labels FILE] "
		"FILE...\n");
	return 2;
}

int main(int argc, char **argv)
{
	long iters = 1, rate = 100;
	double min_seconds = 1.0;
	struct dynbuf labels;
	struct errbuf err = {{0}};
	int i = 1, status = 0;

	dynbuf__init(&labels, 0);

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			iters = atol(argv[++i]);
		else if (strcmp(argv[i], "-min-seconds") == 0 && i + 1 < argc)
			min_seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "-rate") == 0 && i + 1 < argc)
			rate = atol(argv[++i]);
		else if (strcmp(argv[i], "-labels") == 0 && i + 1 < argc) {
			if (util__read_file(argv[++i], 1u << 26, &err, &labels) < 0) {
				fprintf(stderr, "bench_jfr_decode: %s\n", err.msg);
				return 1;
			}
		} else
			return usage();
	}
	if (i == argc) {
		dynbuf__free(&labels);
		return usage();
	}
	for (; i < argc; i++)
		status |= bench_file(argv[i], iters, min_seconds, rate, &labels);
	dynbuf__free(&labels);
	return status;
}
