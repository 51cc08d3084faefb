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
	/* the thread's thread pointer: on x86-64 its fs base, which glibc and
	 * musl make pthread_self(), the id the Python SDK labels threads with;
	 * 0 for kernel threads and on other architectures (docs/threads.md) */
	__u64 tp;
};

/* A stored stack: return addresses, leaf first, zero-filled past the end. */
struct braid_stack {
	__u64 ips[BRAID_MAX_STACK_DEPTH];
};

/* ---- unwinding user stacks with the rules of .eh_frame (collector/unwind.c) ----
 *
 * One table of rows for every file loaded (ELF files keyed by a 64-bit id
 * from their device and inode), all appended to the `unwind_rows` array; a
 * hash of 64 KiB pages of a file's addresses gives the rows that start in
 * each page, so the program's binary search spans one page's rows; and per
 * process, its executable mappings, sorted, to turn an address into a file
 * and a file address. docs/unwind.md, "In the kernel". */
#define BRAID_UNWIND_PAGE_SHIFT	  16
#define BRAID_UNWIND_MAX_MAPPINGS 128 /* executable file mappings of one process */
/* binary-search steps: a page holds at most 65,536 row starts + the row
 * holding its first byte; the mappings at most 128 */
#define BRAID_UNWIND_ROW_STEPS	   17
#define BRAID_UNWIND_MAPPING_STEPS 8

/* braid_unwind_row.kind: enum collector_cfi_kind's values */
enum braid_unwind_kind {
	BRAID_UNWIND_NONE = 0, /* no rule: a frame-pointer step */
	BRAID_UNWIND_RSP,      /* CFA = rsp + cfa_offset */
	BRAID_UNWIND_RBP,      /* CFA = rbp + cfa_offset */
	BRAID_UNWIND_PLT,      /* CFA = rsp + 8, + 8 when (ip & 15) >= 11 */
	BRAID_UNWIND_SIGNAL,   /* a signal frame: the registers are in the ucontext at rsp */
	BRAID_UNWIND_STOP,     /* the thread's root */
};

/* One rule, 8 bytes. Only the low 16 bits of its start address are kept:
 * every row compared in a page's search starts inside that page (the first
 * row of a page's run, which may start before it, is never compared). */
struct braid_unwind_row {
	__u16 vaddr_lo;
	__u8 kind;
	__s8 rbp_offset8; /* caller's rbp at CFA + 8 * rbp_offset8; 0: unchanged */
	__s32 cfa_offset;
};

struct braid_unwind_page_key {
	__u64 file_id;
	__u64 page; /* file vaddr >> BRAID_UNWIND_PAGE_SHIFT */
};

/* The rows of one page: unwind_rows[first, first + count); the first holds
 * the page's first byte. */
struct braid_unwind_page {
	__u32 first;
	__u32 count;
};

/* An executable mapping [start, end) of a file: file vaddr = ip - bias. */
struct braid_unwind_mapping {
	__u64 start, end;
	__u64 bias;
	__u64 file_id; /* 0: no rules (frame pointers) */
};

struct braid_unwind_proc {
	/* mappings, sorted by start, not overlapping; 0: the entry was taken
	 * back from an idle process (its files made room for others): a sample
	 * asks for it again with a BRAID_PID_REFRESH */
	__u32 n;
	__u32 pad;
	__u64 last_ns; /* bpf_ktime_get_ns of its last sample, to the second */
	/* the process these mappings are of: its start_boottime (braid_key.start)
	 * lies in [start_min, start_max); another process on a reused PID gets
	 * frame pointers and a BRAID_PID_REFRESH until user space catches up */
	__u64 start_min, start_max;
	struct braid_unwind_mapping m[BRAID_UNWIND_MAX_MAPPINGS];
};

/* The unwinder's registers between frames (a per-CPU array slot). */
struct braid_unwind_state {
	__u64 ip, sp, bp;
	__u32 n;    /* frames written */
	__u32 done; /* the stack ended */
	__u32 pid;
	__u32 unmapped; /* an ip in no mapping with rules: maybe a library loaded since */
	__u32 exact;	/* ip is where a signal interrupted, not a return address */
	__u32 end;	/* why the stack ended: enum braid_unwind_end */
};

/* Why an unwound user stack ended. */
enum braid_unwind_end {
	BRAID_UNWIND_END_ROOT = 0, /* the thread's root: a STOP rule, or a return address 0 */
	BRAID_UNWIND_END_NO_RULE,  /* a frame without a rule whose frame-pointer step failed
				    * (rbp 0 or below rsp): the end of frame-pointer code too */
	BRAID_UNWIND_END_FAULT,	   /* a read of the user stack failed */
	BRAID_UNWIND_END_BAD_CFA,  /* a rule gave a CFA not above rsp: a wrong rule or a
				    * corrupt stack */
	BRAID_UNWIND_END_DEPTH,	   /* BRAID_MAX_STACK_DEPTH frames and more to go */
	BRAID_UNWIND_END_COUNT
};

/* On the new_pids ring: "read this process's mappings again" (an address in
 * none of its mappings with rules: a library dlopen'ed since), not a new
 * process. PIDs are below 2^22. */
#define BRAID_PID_REFRESH 0x80000000u

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
	BRAID_STAT_UNWIND_CFI,	     /* user stacks unwound with the rules (unwind_procs) */
	BRAID_STAT_UNWIND_FP_STEPS,  /* ... frames of them stepped by frame pointers (no rule) */
	BRAID_STAT_UNWIND_NO_REGS,   /* ... not: no user registers (bpf_get_stack instead) */
	BRAID_STAT_UNWIND_SIGNAL,    /* ... signal frames stepped through */
	BRAID_STAT_UNWIND_REFRESH,   /* processes asked to be read again (BRAID_PID_REFRESH) */
	BRAID_STAT_USTACK_FP,	     /* user stacks walked by frame pointers (bpf_get_stack) */
	BRAID_STAT_UNWIND_STALE, /* ... of them: the entry was an earlier process's (PID reused) */
	/* unwound stacks by how they ended: BRAID_STAT_UNWIND_END + enum braid_unwind_end */
	BRAID_STAT_UNWIND_END,
	BRAID_STAT_COUNT = BRAID_STAT_UNWIND_END + BRAID_UNWIND_END_COUNT
};

#endif
