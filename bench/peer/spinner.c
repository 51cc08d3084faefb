/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_spinner: many processes that each use a little CPU, for
 * bench/growth.sh's question "how does the agent's cost grow with the
 * number of processes".
 *
 *   bench_spinner long N BURN_US PERIOD_MS
 *       N long-lived children, each burning BURN_US microseconds of CPU in
 *       spin_work() every PERIOD_MS milliseconds, until SIGTERM or SIGINT.
 *   bench_spinner short N BURN_US LIFE_MS
 *       short-lived children: N started every 10 s, evenly spaced, each a
 *       new program (this file, exec'd), burning BURN_US every 10 ms for
 *       LIFE_MS, then exiting; until SIGTERM or SIGINT.
 *
 * Prints "started N" once the long-lived children run, and "spawned N" at
 * the end. Exits 0, or 1 on a failed fork or exec (the reason on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ll + ts.tv_nsec / 1000;
}

__attribute__((noinline)) static unsigned long spin_work(long burn_us)
{
	long long end = now_us() + burn_us;
	unsigned long x = 1;

	while (now_us() < end)
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005ul + 1442695040888963407ul;
	return x;
}

static void nap_us(long long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int child_loop(long burn_us, long period_ms, long life_ms)
{
	long long end = life_ms > 0 ? now_us() + life_ms * 1000ll : 0;
	volatile unsigned long sink = 0;

	while (!stop && (!end || now_us() < end)) {
		sink += spin_work(burn_us);
		nap_us(period_ms * 1000ll);
	}
	return 0;
}

static long arg_long(const char *s, const char *what)
{
	char *e;
	long v = strtol(s, &e, 10);

	if (*s == '\0' || *e != '\0' || v < 0) {
		fprintf(stderr, "bench_spinner: %s: not a count: %s\n", what, s);
		exit(2);
	}
	return v;
}

static int run_long(long n, long burn_us, long period_ms)
{
	pid_t *kids = calloc((size_t)n + 1, sizeof(*kids));
	long started = 0;
	int rc = 0;

	if (!kids) {
		fprintf(stderr, "bench_spinner: out of memory\n");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		pid_t p = fork();

		if (p < 0) {
			fprintf(stderr, "bench_spinner: fork: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		if (p == 0) {
			/* spread the bursts over the period */
			nap_us((period_ms * 1000ll * i) / (n ? n : 1));
			_exit(child_loop(burn_us, period_ms, 0));
		}
		kids[started++] = p;
	}
	printf("started %ld\n", started);
	fflush(stdout);
	while (!stop && rc == 0)
		pause();
	for (long i = 0; i < started; i++)
		kill(kids[i], SIGTERM);
	for (long i = 0; i < started; i++)
		waitpid(kids[i], NULL, 0);
	free(kids);
	return rc;
}

static int run_short(const char *self, long n, long burn_us, long life_ms)
{
	long long gap = n ? 10000000ll / n : 10000000ll, next = now_us();
	char burn[32], life[32];
	long spawned = 0;
	int rc = 0;

	snprintf(burn, sizeof(burn), "%ld", burn_us);
	snprintf(life, sizeof(life), "%ld", life_ms);
	while (!stop) {
		pid_t p;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		p = fork();
		if (p < 0) {
			fprintf(stderr, "bench_spinner: fork: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		if (p == 0) {
			execl(self, self, "child", burn, life, (char *)NULL);
			fprintf(stderr, "bench_spinner: exec %s: %s\n", self, strerror(errno));
			_exit(127);
		}
		spawned++;
		next += gap;
		if (next > now_us())
			nap_us(next - now_us());
	}
	while (wait(NULL) > 0)
		;
	printf("spawned %ld\n", spawned);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
		fprintf(stderr, "bench_spinner: sigaction: %s\n", strerror(errno));
		return 1;
	}
	if (argc == 4 && strcmp(argv[1], "child") == 0)
		return child_loop(arg_long(argv[2], "BURN_US"), 10, arg_long(argv[3], "LIFE_MS"));
	if (argc == 5 && strcmp(argv[1], "long") == 0)
		return run_long(arg_long(argv[2], "N"), arg_long(argv[3], "BURN_US"),
				arg_long(argv[4], "PERIOD_MS"));
	if (argc == 5 && strcmp(argv[1], "short") == 0)
		return run_short("/proc/self/exe", arg_long(argv[2], "N"),
				 arg_long(argv[3], "BURN_US"), arg_long(argv[4], "LIFE_MS"));
	fprintf(stderr, "usage: bench_spinner long N BURN_US PERIOD_MS\n"
			"       bench_spinner short N BURN_US LIFE_MS\n");
	return 2;
}
