// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * braid's CPU sampler: attached to the cpu-clock software event of every
 * online CPU, it counts (process, thread, comm, kernel stack, user stack)
 * in a hash map, in the kernel: nothing wakes user space per sample.
 *
 * Stacks are stored in a hash map keyed by a 64-bit hash of their
 * addresses rather than in a BPF_MAP_TYPE_STACK_TRACE: a stack-trace map
 * drops a stack whenever two stacks fall in one of its buckets (-EEXIST),
 * so it has to be many times larger than what it holds; a hash map keyed
 * by the content's hash only drops stacks when it is full.
 *
 * Draining: the maps come in two generations. The program counts into
 * generation `epoch & 1`; user space moves `epoch` on, waits until no
 * program that may have read the old value is still running (the per-CPU
 * `inflight` sequence: odd while a program runs), then reads and clears the
 * old generation at leisure. A sample is thus counted in exactly one
 * generation, and every generation is read exactly once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "profile.h"

#define PF_KTHREAD 0x00200000 /* include/linux/sched.h: a kernel thread */

/* Set by user space between open and load. */
const volatile bool sample_kernel = true;
const volatile bool sample_user = true;
const volatile bool include_idle = false;
const volatile bool filter_pids = false;
const volatile bool filter_cgroup = false;

/* Written by user space (mmapped .bss) to switch generations. */
__u32 epoch = 0;

/* Per CPU: a sample adds to its own CPU's slot, so no two CPUs ever write
 * one cache line (an atomic add on a shared value cost more than the rest
 * of the program together). User space sums the slots. */
struct counts_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* sized by user space before load */
	__type(key, struct braid_key);
	__type(value, __u64);
};
struct stacks_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct braid_stack);
};

struct counts_map counts0 SEC(".maps");
struct counts_map counts1 SEC(".maps");
struct stacks_map stacks0 SEC(".maps");
struct stacks_map stacks1 SEC(".maps");

/* Processes to keep when filter_pids is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

/* The cgroup to keep (with its descendants) when filter_cgroup is set. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BRAID_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Per CPU: incremented when a program starts and when it ends. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inflight SEC(".maps");

/* Processes already announced to user space (see announce and braid_exec). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} known SEC(".maps");

/* The PIDs of processes sampled for the first time: user space reads their
 * mappings at once, before a short-lived process exits and takes them along. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} new_pids SEC(".maps");

/* Per-CPU scratch space for a stack: too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct braid_stack);
} scratch SEC(".maps");

static __always_inline void stat_add(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);

	if (v)
		*v += 1; /* per CPU, and programs on one CPU don't nest */
}

/* A 64-bit hash of the first n addresses (never 0: 0 means "no stack"). */
static __always_inline __u64 stack_hash(const struct braid_stack *st, __u32 n)
{
	__u64 h = 0x9e3779b97f4a7c15ULL ^ n;

	for (__u32 i = 0; i < BRAID_MAX_STACK_DEPTH; i++) {
		if (i >= n)
			break;
		h ^= st->ips[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h ? h : 1;
}

/* Stores the current kernel or user stack in `stacks`; returns its hash, 0
 * when there is none, or sets *lost when it could not be stored. */
static __always_inline __u64 store_stack(struct bpf_perf_event_data *ctx, void *stacks, bool user,
					 __u32 *lost)
{
	__u32 zero = 0;
	struct braid_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	long len, r;
	__u32 n;
	__u64 h;

	if (!st)
		return 0;
	/* bpf_get_stack zero-fills the buffer past the frames it writes */
	len = bpf_get_stack(ctx, st, sizeof(*st), user ? BPF_F_USER_STACK : 0);
	if (len < 0) {
		stat_add(user ? BRAID_STAT_USTACK_FAULT : BRAID_STAT_KSTACK_FAULT);
		*lost = 1;
		return 0;
	}
	n = (__u32)len / sizeof(__u64);
	if (n == 0)
		return 0;
	if (n >= BRAID_MAX_STACK_DEPTH)
		stat_add(user ? BRAID_STAT_USTACK_TRUNCATED : BRAID_STAT_KSTACK_TRUNCATED);
	h = stack_hash(st, n);
	r = bpf_map_update_elem(stacks, &h, st, BPF_NOEXIST);
	if (r == 0 || r == -17 /* -EEXIST: this stack is stored already */)
		return h;
	stat_add((r == -7 /* -E2BIG */ || r == -12 /* -ENOMEM */) ? BRAID_STAT_STACK_FULL
								  : BRAID_STAT_STACK_OTHER);
	*lost = 1;
	return 0;
}

/* Tells user space the first time a process is sampled. A lost event (a
 * full ring, or the LRU forgetting a process) only costs a later read. */
static __always_inline void announce(__u32 pid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known, &pid))
		return;
	if (bpf_map_update_elem(&known, &pid, &one, BPF_NOEXIST) == 0 &&
	    bpf_ringbuf_output(&new_pids, &pid, sizeof(pid), 0) < 0)
		stat_add(BRAID_STAT_ANNOUNCE_LOST);
}

/* Whether the sample interrupted user mode: then there is no kernel stack
 * to walk. */
static __always_inline bool in_user_mode(struct bpf_perf_event_data *ctx)
{
#if defined(__TARGET_ARCH_x86)
	/* the context is read in whole 8-byte words: cs and its padding */
	return (*(volatile __u64 *)&ctx->regs.cs & 3) == 3;
#elif defined(__TARGET_ARCH_arm64)
	return (*(volatile __u64 *)&ctx->regs.pstate & 0xf) == 0; /* PSR_MODE_EL0t */
#else
	return false; /* walk it: an empty kernel stack costs a little more */
#endif
}

static __always_inline void count(struct bpf_perf_event_data *ctx, void *counts, void *stacks,
				  __u32 pid, __u32 tid, bool kthread, __u64 start)
{
	struct braid_key key;
	__u32 lost = 0;
	__u64 one = 1, *v;
	long r;

	__builtin_memset(&key, 0, sizeof(key));
	key.pid = pid;
	key.tid = tid;
	key.start = start;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	if (sample_kernel && !in_user_mode(ctx)) {
		key.kstack = store_stack(ctx, stacks, false, &lost);
		if (lost)
			key.flags |= BRAID_KEY_KSTACK_LOST;
	}
	if (sample_user && !kthread) {
		lost = 0;
		key.ustack = store_stack(ctx, stacks, true, &lost);
		if (lost)
			key.flags |= BRAID_KEY_USTACK_LOST;
	}
	v = bpf_map_lookup_elem(counts, &key);
	if (v) {
		*v += 1; /* this CPU's slot; programs don't nest on a CPU */
	} else {
		/* a key new in this generation: the process may be new too */
		if (!kthread && sample_user)
			announce(pid);
		r = bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST);
		if (r == -17) { /* added meanwhile (by another CPU) */
			v = bpf_map_lookup_elem(counts, &key);
			if (v)
				*v += 1;
			else
				r = -12;
		}
		if (r && r != -17) {
			stat_add(BRAID_STAT_LOST_FULL);
			return;
		}
	}
	stat_add(BRAID_STAT_SAMPLES);
}

SEC("perf_event")
int braid_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0, e;
	struct task_struct *task;
	__u64 *seq;
	bool kthread;
	__u64 start;

	if (pid == 0 && !include_idle) {
		stat_add(BRAID_STAT_FILTERED);
		return 0;
	}
	if (filter_pids && !bpf_map_lookup_elem(&pids, &pid)) {
		stat_add(BRAID_STAT_FILTERED);
		return 0;
	}
	if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup, 0) != 1) {
		stat_add(BRAID_STAT_FILTERED);
		return 0;
	}
	task = (struct task_struct *)bpf_get_current_task();
	kthread = BPF_CORE_READ(task, flags) & PF_KTHREAD;
	start = BPF_CORE_READ(task, group_leader, start_boottime);

	seq = bpf_map_lookup_elem(&inflight, &zero);
	if (!seq)
		return 0;
	/* An atomic add is a full barrier: the epoch is read after user space
	 * can see this program running (see the header comment). */
	__sync_fetch_and_add(seq, 1);
	e = *(volatile __u32 *)&epoch;
	if (e & 1)
		count(ctx, &counts1, &stacks1, pid, tid, kthread, start);
	else
		count(ctx, &counts0, &stacks0, pid, tid, kthread, start);
	__sync_fetch_and_add(seq, 1);
	return 0;
}

/* A process that execs runs another program under its PID: its mappings are
 * new. Forgetting that it was announced makes its next sample announce it
 * again, so user space reads the new program's mappings and names while
 * they are there, even if it exits before the next drain. The tracepoint
 * fires once the new image and its interpreter are mapped. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(braid_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_delete_elem(&known, &pid) == 0)
		stat_add(BRAID_STAT_EXEC);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
