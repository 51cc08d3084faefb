/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Types shared by the CPU sampling program (profile.bpf.c) and the collector
 * that loads it (collector/sampler.c). Fixed-width kernel types only: this
 * header is compiled for the BPF target (with vmlinux.h) and for user space
 * (with linux/types.h).
 */
#ifndef BRAID_BPF_PROFILE_H
#define BRAID_BPF_PROFILE_H

/* Frames kept per stack: perf's default (kernel.perf_event_max_stack). */
#define BRAID_MAX_STACK_DEPTH 127

/* The two generations of maps: the program counts into counts[epoch & 1]
 * while user space drains the other one. */
#define BRAID_EPOCHS 2

/* braid_key.flags */
#define BRAID_KEY_KSTACK_LOST 0x1 /* the kernel stack could not be stored */
#define BRAID_KEY_USTACK_LOST 0x2 /* the user stack could not be stored */

/* One counted sample: who ran, and which stacks (by their hash in the
 * epoch's stacks map; 0 = no such stack). The padding is zeroed: the key is
 * hashed as bytes. */
struct braid_key {
	__u32 pid; /* thread group id: the process */
	__u32 tid;
	__u64 kstack;
	__u64 ustack;
	__u32 flags;
	char comm[16];
	__u32 pad;
	/* when the process started (its thread group leader's start_boottime,
	 * ns since boot): a PID reused by another process gives another key,
	 * and user space sees the change with the very first sample */
	__u64 start;
};

/* A stored stack: return addresses, leaf first, zero-filled past the end. */
struct braid_stack {
	__u64 ips[BRAID_MAX_STACK_DEPTH];
};

/* Per-CPU counters, indexes of the stats map. */
enum braid_stat {
	BRAID_STAT_SAMPLES = 0,	 /* samples counted */
	BRAID_STAT_FILTERED,	 /* samples skipped by the pid or cgroup filter, or idle */
	BRAID_STAT_LOST_FULL,	 /* samples lost: the counts map was full */
	BRAID_STAT_KSTACK_FAULT, /* bpf_get_stack failed (-EFAULT, ...) for the kernel stack */
	BRAID_STAT_USTACK_FAULT, /* ... for the user stack */
	BRAID_STAT_STACK_FULL,	 /* a stack not stored: the stacks map was full (-E2BIG/-ENOMEM) */
	BRAID_STAT_STACK_OTHER,	 /* a stack not stored for another reason */
	BRAID_STAT_KSTACK_TRUNCATED, /* a kernel stack deeper than BRAID_MAX_STACK_DEPTH */
	BRAID_STAT_USTACK_TRUNCATED, /* a user stack deeper than BRAID_MAX_STACK_DEPTH */
	BRAID_STAT_ANNOUNCE_LOST,    /* a new process not announced: the ring was full */
	BRAID_STAT_EXEC,	     /* an announced process exec'd: announced again */
	BRAID_STAT_COUNT
};

#endif
