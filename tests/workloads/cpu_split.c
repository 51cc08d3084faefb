/* SPDX-License-Identifier: Apache-2.0 */
/* cpu_split: a CPU-bound workload whose profile is known in advance. Each
 * round does 7k units of work in braid_work_hot and 3k in braid_work_cold,
 * the same integer hash loop in both, so a sampling profiler must attribute
 * ~70 % and ~30 % of the process's CPU to them. k (1 to 8) is drawn anew each
 * round from a fixed sequence: rounds of one length would beat against the
 * sampling period (a round of 2.6 ms is within 1 % of a quarter of 97 Hz's
 * 10.3 ms here), so that samples land at nearly the same point of successive
 * rounds and the measured split strays far more than sampling alone makes
 * it. Built with frame pointers
 * (the eBPF unwinder walks them) and without inlining or cloning, so both
 * functions keep their own frames and names.
 *
 *   cpu_split --seconds S   rounds until S seconds have passed (checked each round)
 *   cpu_split --units N     N units of work (N/10 rounds, at least one), for benchmarks
 *   ... --threads T         T threads (default 1) each doing the above: the units
 *                           are then T * N, and "done" counts them all
 *
 * Prints "pid N" at start (flushed: the tests read it from a pipe), and at the
 * end "done units=N elapsed_s=S cpu_s=S". Exits 2 on bad arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Iterations of the hash loop per unit: ~0.2 ms on a 3 GHz core. */
#define UNIT_ITERS  100000
#define HOT_UNITS   7
#define COLD_UNITS  3
#define ROUND_UNITS (HOT_UNITS + COLD_UNITS)
#define MAX_THREADS 64
#define MAX_SCALE   8 /* k of a round: 1 to this */

/* noipa: no inlining, no cloning (a ".constprop.0" suffix would change the
 * symbol name) and no interprocedural assumptions. */
#ifdef __clang__
#define WORKLOAD_FN __attribute__((noinline, used))
#else
#define WORKLOAD_FN __attribute__((noipa, used))
#endif

/* volatile: the compiler can neither precompute the hash from a known seed
 * nor drop a loop whose result it can prove unused. */
static volatile uint64_t work_seed = 0x9e3779b97f4a7c15ull;
static volatile uint64_t work_sink;

uint64_t braid_work_hot(unsigned k);
uint64_t braid_work_cold(unsigned k);

/* The shared loop body. always_inline holds under -fno-inline: it lands in
 * each caller, so the sampled instruction is in braid_work_hot/_cold.
 * The seed goes through a stack slot because GCC 12 builds no frame for a
 * leaf function that uses no stack, -mno-omit-leaf-frame-pointer or not: the
 * unwinder would then skip the caller (main) of the sampled function. */
static inline __attribute__((always_inline)) uint64_t work_units(unsigned units)
{
	volatile uint64_t seed = work_seed;
	uint64_t x = seed;
	long n = (long)units * UNIT_ITERS;

	for (long i = 0; i < n; i++) {
		x ^= x >> 33;
		x *= 0xff51afd7ed558ccdull;
		x ^= x >> 29;
		x += (uint64_t)i;
	}
	work_sink = x;
	return x;
}

WORKLOAD_FN uint64_t braid_work_hot(unsigned k)
{
	return work_units(HOT_UNITS * k);
}

WORKLOAD_FN uint64_t braid_work_cold(unsigned k)
{
	return work_units(COLD_UNITS * k);
}

static double now_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: cpu_split (--seconds S | --units N) [--threads T]\n");
	return 2;
}

/* What one thread does: rounds of hot + cold until the deadline, or `rounds`
 * rounds. */
struct worker {
	pthread_t thread;
	double deadline;
	unsigned long long rounds;
	unsigned long long done; /* units */
	uint64_t seed;		 /* the thread's index: its k sequence */
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t rng = 0x2545f4914f6cdd1dull + w->seed * 0x9e3779b97f4a7c15ull;

	for (;;) {
		unsigned k;

		if (w->rounds ? w->done / ROUND_UNITS >= w->rounds
			      : now_s(CLOCK_MONOTONIC) >= w->deadline)
			break;
		/* xorshift64: the same k sequence every run */
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		k = 1 + (unsigned)(rng % MAX_SCALE);
		if (w->rounds && k > w->rounds - w->done / ROUND_UNITS)
			k = (unsigned)(w->rounds - w->done / ROUND_UNITS);
		braid_work_hot(k);
		braid_work_cold(k);
		w->done += (unsigned long long)ROUND_UNITS * k;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS] = {{0}};
	double seconds = 0, start;
	unsigned long long units = 0, rounds = 0, done = 0;
	unsigned long threads = 1;
	int have_work = 0;
	char *end;

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage();
		errno = 0;
		if (strcmp(argv[i], "--seconds") == 0 && !have_work) {
			seconds = strtod(argv[i + 1], &end);
			if (errno || *end || end == argv[i + 1] || !(seconds > 0))
				return usage();
			have_work = 1;
		} else if (strcmp(argv[i], "--units") == 0 && !have_work) {
			units = strtoull(argv[i + 1], &end, 10);
			if (errno || *end || end == argv[i + 1] || units == 0 ||
			    argv[i + 1][0] == '-')
				return usage();
			rounds = units / ROUND_UNITS ? units / ROUND_UNITS : 1;
			have_work = 1;
		} else if (strcmp(argv[i], "--threads") == 0) {
			threads = strtoul(argv[i + 1], &end, 10);
			if (errno || *end || end == argv[i + 1] || threads == 0 ||
			    threads > MAX_THREADS)
				return usage();
		} else {
			return usage();
		}
	}
	if (!have_work)
		return usage();

	printf("pid %ld\n", (long)getpid());
	fflush(stdout);
	start = now_s(CLOCK_MONOTONIC);
	for (unsigned long i = 0; i < threads; i++) {
		workers[i].deadline = start + seconds;
		workers[i].rounds = rounds;
		workers[i].seed = i;
	}
	/* the main thread is the first worker; the others are threads of the
	 * same process */
	for (unsigned long i = 1; i < threads; i++) {
		int r = pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]);

		if (r) {
			fprintf(stderr, "cpu_split: pthread_create: %s\n", strerror(r));
			return 1;
		}
	}
	worker_run(&workers[0]);
	done = workers[0].done;
	for (unsigned long i = 1; i < threads; i++) {
		pthread_join(workers[i].thread, NULL);
		done += workers[i].done;
	}
	printf("done units=%llu elapsed_s=%.3f cpu_s=%.3f\n", done, now_s(CLOCK_MONOTONIC) - start,
	       now_s(CLOCK_PROCESS_CPUTIME_ID));
	return fflush(stdout) == 0 ? 0 : 1;
}
