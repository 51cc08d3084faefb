/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The eBPF sampler against the kernel (root and BTF; exits 77, "skipped",
 * with the reason elsewhere): every sample the program counts is read by
 * exactly one drain, even with drains racing the program every millisecond
 * on busy CPUs at a high frequency; filters keep what they should.
 */
#define _GNU_SOURCE
#include "collector/collector.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SKIP 77

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

struct tally {
	uint64_t samples;
	uint64_t entries;
	uint64_t other_pid; /* samples of a pid outside the filter */
	int32_t only_pid;   /* 0: any */
	uint64_t with_user, with_kernel;
	uint64_t drain_entries, max_drain_entries; /* entries in one drain */
	uint64_t stack_lost;
	/* varied: user stacks that read leafN, descend, ... (as they must),
	 * and the depths seen */
	uint64_t leaf_in_range, spinner_samples;
	bool depth_seen[COLLECTOR_MAX_DEPTH + 1];
	const pid_t *spinners;
};

static unsigned func_of(uint64_t ip);

static int on_sample(void *ctx, const struct collector_sample *s)
{
	struct tally *t = ctx;

	t->samples += s->count;
	t->entries++;
	if (++t->drain_entries > t->max_drain_entries)
		t->max_drain_entries = t->drain_entries;
	if (t->only_pid && s->pid != t->only_pid)
		t->other_pid += s->count;
	if (s->n_uips)
		t->with_user += s->count;
	if (s->n_kips)
		t->with_kernel += s->count;
	if (s->kstack_lost || s->ustack_lost)
		t->stack_lost += s->count;
	if (t->spinners && (s->pid == t->spinners[0] || s->pid == t->spinners[1]) && s->n_uips) {
		t->spinner_samples += s->count;
		if (s->n_uips >= 2 && func_of(s->uips[0]) < 5 && func_of(s->uips[1]) == 5)
			t->leaf_in_range += s->count;
		t->depth_seen[s->n_uips] = true;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Five leaves, so that (leaf, depth) gives 5 x 120 different stacks. */
#define LEAF(n)                                                                                    \
	static __attribute__((noinline)) uint64_t leaf##n(uint64_t x)                              \
	{                                                                                          \
		volatile uint64_t y = x + n;                                                       \
		for (int i = 0; i < 20000; i++)                                                    \
			y = y * 6364136223846793005ULL + 1;                                        \
		return y;                                                                          \
	}
LEAF(0)
LEAF(1)
LEAF(2)
LEAF(3)
LEAF(4)
static uint64_t (*const leaves[])(uint64_t) = {leaf0, leaf1, leaf2, leaf3, leaf4};

/* Recurses `depth` frames deep (this file is built with frame pointers, and
 * stacks are cut at 127 frames: depths stay below), then runs a leaf. */
static __attribute__((noinline)) uint64_t descend(unsigned depth, unsigned leaf, uint64_t x)
{
	volatile uint64_t y = x;

	if (depth == 0)
		return leaves[leaf](y);
	x = descend(depth - 1, leaf, y);
	/* no tail-recursion tricks: each level keeps its frame */
	__asm__ volatile("" : "+r"(x));
	return x + y;
}

/* Which of leaf0..leaf4 (0-4) or descend (5) holds a return address: the
 * nearest start below it, within 512 bytes; 6 for none. The children are
 * forks: this file's code is at the same addresses in them. */
static unsigned func_of(uint64_t ip)
{
	const uintptr_t starts[] = {(uintptr_t)leaf0, (uintptr_t)leaf1, (uintptr_t)leaf2,
				    (uintptr_t)leaf3, (uintptr_t)leaf4, (uintptr_t)descend};
	unsigned best = 6;

	for (unsigned i = 0; i < 6; i++)
		if (starts[i] <= ip && ip - starts[i] < 512 &&
		    (best == 6 || starts[i] > starts[best]))
			best = i;
	return best;
}

/* Children that spin until killed: one per CPU. `varied`: through hundreds
 * of different stacks, so that a generation holds more count entries than
 * one batch of the drain reads. */
static int spawn_spinners(pid_t *pids, int n, bool varied)
{
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return -errno;
		if (pids[i] == 0) {
			volatile uint64_t x = 0;

			for (unsigned d = 0;; d = (d + 1) % 600)
				x = varied ? descend(d % 120, d / 120, x)
					   : x * 6364136223846793005ULL + 1;
		}
	}
	return 0;
}

static void kill_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
}

/* Drains every millisecond for `seconds` at `freq` Hz, then stops and
 * drains the rest: what the drains read must equal what the kernel counted. */
static void test_conservation(unsigned freq, double seconds, bool rapid, bool varied)
{
	struct collector_sampler_options o = {.freq = freq};
	struct collector_sampler_stats st;
	struct collector_sampler *s = NULL;
	struct errbuf err = {{0}};
	struct tally t = {0};
	pid_t spin[2] = {0, 0};
	double end;
	int r;

	r = collector_sampler__open(&o, &err, &s);
	CHECK(r == 0, "open: %s", err.msg);
	if (r < 0)
		return;
	CHECK(spawn_spinners(spin, 2, varied) == 0, "fork");
	if (varied)
		t.spinners = spin;
	end = now_s() + seconds;
	while (now_s() < end) {
		t.drain_entries = 0;
		r = collector_sampler__drain(s, on_sample, &t);
		CHECK(r == 0, "drain: %d", r);
		usleep(rapid ? 1000 : 1000000);
	}
	kill_all(spin, 2);
	collector_sampler__stop(s);
	r = collector_sampler__drain(s, on_sample, &t);
	CHECK(r == 0, "last drain: %d", r);
	CHECK(collector_sampler__stats(s, &st) == 0, "stats");
	printf("freq %u Hz, %.1f s, %s stacks, drains %" PRIu64 ": kernel counted %" PRIu64
	       ", drains read %" PRIu64 " (%" PRIu64 " entries), lost %" PRIu64
	       " (map full), wait timeouts %" PRIu64 "\n",
	       freq, seconds, varied ? "varied" : "few", st.drains, st.samples, t.samples,
	       t.entries, st.lost_full, st.drain_wait_timeouts);
	CHECK(st.samples == t.samples, "counted %" PRIu64 " != read %" PRIu64, st.samples,
	      t.samples);
	CHECK(st.drained == t.samples, "drained stat %" PRIu64 " != read %" PRIu64, st.drained,
	      t.samples);
	CHECK(st.lost_full == 0, "%" PRIu64 " samples lost to a full map", st.lost_full);
	CHECK(st.drain_wait_timeouts == 0, "drain wait timed out");
	/* two spinning CPUs at freq Hz: most of 2 * freq * seconds */
	CHECK(t.samples > (uint64_t)(freq * seconds), "only %" PRIu64 " samples", t.samples);
	CHECK(t.with_user > t.samples / 2, "%" PRIu64 " of %" PRIu64 " samples with user stacks",
	      t.with_user, t.samples);
	CHECK(t.stack_lost == 0, "%" PRIu64 " samples with a stack not found", t.stack_lost);
	if (varied) {
		size_t depths = 0;

		for (size_t i = 0; i <= COLLECTOR_MAX_DEPTH; i++)
			depths += t.depth_seen[i];
		printf("varied: %" PRIu64 " of %" PRIu64 " spinner samples with stacks "
		       "leafN <- descend <- ..., %zu stack depths\n",
		       t.leaf_in_range, t.spinner_samples, depths);
		CHECK(t.max_drain_entries > 512,
		      "at most %" PRIu64 " entries in a drain: the batches were not exercised",
		      t.max_drain_entries);
		/* stacks drained in several chunks come back whole and right */
		CHECK(t.leaf_in_range * 10 >= t.spinner_samples * 9,
		      "%" PRIu64 " of %" PRIu64 " stacks read leafN <- descend", t.leaf_in_range,
		      t.spinner_samples);
		CHECK(depths >= 60, "only %zu different stack depths", depths);
	}
	/* a drain after everything was read finds nothing */
	memset(&t, 0, sizeof(t));
	CHECK(collector_sampler__drain(s, on_sample, &t) == 0 && t.samples == 0,
	      "a drain after the last read %" PRIu64, t.samples);
	collector_sampler__close(s);
}

static void test_pid_filter(void)
{
	pid_t spin[2] = {0, 0};
	struct collector_sampler *s = NULL;
	struct collector_sampler_stats st;
	struct errbuf err = {{0}};
	struct tally t = {0};
	int32_t pid;
	int r;

	CHECK(spawn_spinners(spin, 2, false) == 0, "fork");
	pid = spin[0];
	{
		struct collector_sampler_options o = {.pids = &pid, .n_pids = 1};

		r = collector_sampler__open(&o, &err, &s);
	}
	CHECK(r == 0, "open with a pid filter: %s", err.msg);
	if (r == 0) {
		t.only_pid = pid;
		sleep(2);
		collector_sampler__stop(s);
		CHECK(collector_sampler__drain(s, on_sample, &t) == 0, "drain");
		CHECK(collector_sampler__stats(s, &st) == 0, "stats");
		printf("pid filter: %" PRIu64 " samples of pid %d, %" PRIu64 " of others, %" PRIu64
		       " filtered\n",
		       t.samples, pid, t.other_pid, st.filtered);
		/* 2 s of a spinning process, sharing a busy machine */
		CHECK(t.samples >= COLLECTOR_DEFAULT_FREQ / 4, "only %" PRIu64 " samples of pid %d",
		      t.samples, pid);
		CHECK(t.other_pid == 0, "%" PRIu64 " samples of other processes", t.other_pid);
		CHECK(st.filtered > 0, "nothing filtered while another process spun");
		/* the pid asked for got the unwind rules of its files before
		 * sampling began (this binary and libc at least), and its user
		 * stacks were unwound with them */
		printf("unwind: %" PRIu64 " files loaded (%" PRIu64 " rows, %" PRIu64
		       " pages), %" PRIu64 " unreadable, %" PRIu64 " without room; %" PRIu64
		       " stacks unwound with the rules, %" PRIu64 " frame-pointer steps\n",
		       st.unwind.files_loaded, st.unwind.rows, st.unwind.pages,
		       st.unwind.files_unreadable, st.unwind.files_no_room, st.unwind_stacks,
		       st.unwind_fp_steps);
		CHECK(st.unwind.files_loaded >= 2, "%" PRIu64 " files' rules loaded",
		      st.unwind.files_loaded);
		CHECK(st.unwind.procs_added == 1, "%" PRIu64 " processes given rules",
		      st.unwind.procs_added);
		CHECK(st.unwind.rows > 0 && st.unwind.pages > 0,
		      "%" PRIu64 " rows, %" PRIu64 " pages", st.unwind.rows, st.unwind.pages);
		CHECK(st.unwind_stacks >= t.samples / 2,
		      "%" PRIu64 " stacks unwound with the rules of %" PRIu64 " samples",
		      st.unwind_stacks, t.samples);
		collector_sampler__close(s);
	}
	kill_all(spin, 2);

	/* a pid that does not exist is refused, with its number in the message */
	{
		int32_t none = 0x3ffffff0;
		struct collector_sampler_options o = {.pids = &none, .n_pids = 1};

		s = NULL;
		r = collector_sampler__open(&o, &err, &s);
		CHECK(r == -ESRCH && strstr(err.msg, "1073741808"), "missing pid: %d %s", r,
		      err.msg);
		collector_sampler__close(s);
	}
}

int main(void)
{
	if (geteuid() != 0) {
		printf("skip: the eBPF sampler needs root (CAP_BPF and CAP_PERFMON)\n");
		return SKIP;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		printf("skip: no kernel BTF at /sys/kernel/btf/vmlinux\n");
		return SKIP;
	}
	{
		struct collector_sampler_options o = {0};
		struct collector_sampler *s = NULL;
		struct errbuf err = {{0}};

		if (collector_sampler__open(&o, &err, &s) == -EOPNOTSUPP) {
			printf("skip: %s\n", err.msg);
			return SKIP;
		}
		collector_sampler__close(s);
	}
	test_conservation(COLLECTOR_DEFAULT_FREQ, 2.0, false, false);
	test_conservation(2000, 3.0, true, false);
	/* a generation of more than a batch: > 512 count entries per drain */
	test_conservation(2000, 3.0, false, true);
	test_pid_filter();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
