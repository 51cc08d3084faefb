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
/* unwind user stacks with the rules of unwind_procs (else frame pointers only) */
const volatile bool unwind_enabled = true;
/* at most one BRAID_PID_REFRESH a process in this time */
const volatile __u64 unwind_refresh_ns = 1000000000ULL;

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

/* ---- user stacks from the rules of .eh_frame (collector/unwind.c fills these) ---- */

/* Every loaded file's rows, a run each: sized by user space before load,
 * written by it through a mapping of the array. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct braid_unwind_row);
} unwind_rows SEC(".maps");

/* (file, 64 KiB page) -> its run of rows. Written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct braid_unwind_page_key);
	__type(value, struct braid_unwind_page);
} unwind_pages SEC(".maps");

/* pid -> its executable mappings; a process without an entry keeps the
 * frame-pointer walk of bpf_get_stack. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct braid_unwind_proc);
} unwind_procs SEC(".maps");

/* pid -> when it was last asked to be read again (BRAID_PID_REFRESH). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} unwind_refresh SEC(".maps");

/* The registers between two frames: bpf_loop's callback keeps them here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct braid_unwind_state);
} unwind_state SEC(".maps");

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

#if defined(__TARGET_ARCH_x86)
/* The executable mapping of p holding ip; NULL if none.
 *
 * Both searches go by halving steps from a constant, unrolled, and compare
 * only with bounds read from maps: a search that carries lo and hi lets
 * the verifier decide some of its branches from their ranges, which makes
 * them precise, and then no two paths through it are alike: the states
 * multiplied (490,000 instructions processed, 1.9 s to load). */
static __always_inline const struct braid_unwind_mapping *
find_mapping(const struct braid_unwind_proc *p, __u64 ip)
{
	const struct braid_unwind_mapping *m;
	__u32 n = p->n, base = 0, j;

	/* base: how many mappings start at or before ip */
#pragma unroll
	for (__u32 step = BRAID_UNWIND_MAX_MAPPINGS; step; step >>= 1) {
		j = base + step;
		if (j <= n && p->m[(j - 1) & (BRAID_UNWIND_MAX_MAPPINGS - 1)].start <= ip)
			base = j;
	}
	if (base == 0)
		return NULL;
	m = &p->m[(base - 1) & (BRAID_UNWIND_MAX_MAPPINGS - 1)];
	return ip < m->end ? m : NULL;
}

/* The row of file_id that holds vaddr; NULL if the file has none there. */
static __always_inline const struct braid_unwind_row *find_row(__u64 file_id, __u64 vaddr)
{
	struct braid_unwind_page_key key = {.file_id = file_id,
					    .page = vaddr >> BRAID_UNWIND_PAGE_SHIFT};
	const struct braid_unwind_page *pg = bpf_map_lookup_elem(&unwind_pages, &key);
	const struct braid_unwind_row *r;
	__u32 base = 0, j, idx, first, count;
	__u16 a = (__u16)vaddr;

	if (!pg)
		return NULL;
	first = pg->first;
	count = pg->count;
	/* base: the last row of the run starting at or before a; the run's
	 * first row holds the page's first byte and is never compared */
#pragma unroll
	for (__u32 step = 1u << (BRAID_UNWIND_ROW_STEPS - 1); step; step >>= 1) {
		j = base + step;
		if (j < count) {
			idx = first + j;
			r = bpf_map_lookup_elem(&unwind_rows, &idx);
			if (!r)
				return NULL;
			if (r->vaddr_lo <= a)
				base = j;
		}
	}
	idx = first + base;
	return bpf_map_lookup_elem(&unwind_rows, &idx);
}

/* Ends the stack for reason (enum braid_unwind_end); returns 1. */
static __always_inline int unwind_end(struct braid_unwind_state *s, __u32 reason)
{
	s->done = 1;
	s->end = reason;
	return 1;
}

/* Goes on with the caller at ra, or ends the stack at its root (ra 0). */
static __always_inline int unwind_next(struct braid_unwind_state *s, __u64 ra)
{
	s->ip = ra;
	return ra ? 0 : unwind_end(s, BRAID_UNWIND_END_ROOT);
}

/* One frame: records s->ip, then finds the caller's registers. Returns 1
 * once the stack ended (s->end says why).
 *
 * A global function: the verifier checks it once, on its own, rather than
 * from each place bpf_loop's callback is reached (unwind_user is inlined
 * in each generation's copy of count) with every state the caller may be
 * in. Inlined, it took 1.9 s to load (with the searches' old shape). */
__noinline int braid_unwind_frame(void)
{
	__u32 zero = 0, n;
	struct braid_unwind_state *s = bpf_map_lookup_elem(&unwind_state, &zero);
	struct braid_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	const struct braid_unwind_mapping *m;
	const struct braid_unwind_row *row = NULL;
	const struct braid_unwind_proc *p;
	__u64 ip, lookup_ip, cfa, ra = 0, bp, sp;
	__u8 kind = BRAID_UNWIND_NONE;

	if (!s || !st || s->done)
		return 1;
	n = s->n;
	ip = s->ip;
	if (n >= BRAID_MAX_STACK_DEPTH)
		return unwind_end(s, BRAID_UNWIND_END_DEPTH);
	if (!ip)
		return unwind_end(s, BRAID_UNWIND_END_ROOT);
	st->ips[n] = ip;
	s->n = n + 1;
	p = bpf_map_lookup_elem(&unwind_procs, &s->pid);
	if (!p) /* the process's entry went meanwhile */
		return unwind_end(s, BRAID_UNWIND_END_NO_RULE);
	/* a caller's ip is a return address: the call is the byte before it,
	 * and may be a function's last instruction (a noreturn call) */
	lookup_ip = n && !s->exact ? ip - 1 : ip;
	s->exact = 0;
	m = find_mapping(p, lookup_ip);
	if (!m)
		s->unmapped = 1;
	if (m && m->file_id)
		row = find_row(m->file_id, lookup_ip - m->bias);
	if (row)
		kind = row->kind;
	switch (kind) {
	case BRAID_UNWIND_RSP:
		cfa = s->sp + (__s64)row->cfa_offset;
		break;
	case BRAID_UNWIND_RBP:
		cfa = s->bp + (__s64)row->cfa_offset;
		break;
	case BRAID_UNWIND_PLT:
		cfa = s->sp + 8 + ((ip & 15) >= 11 ? 8 : 0);
		break;
	case BRAID_UNWIND_STOP:
		return unwind_end(s, BRAID_UNWIND_END_ROOT);
	case BRAID_UNWIND_SIGNAL:
		/* __restore_rt: rsp is at the ucontext the kernel pushed (its
		 * return address, popped); the interrupted registers are in its
		 * uc_mcontext (struct sigcontext at +40: rbp at +120, rsp at
		 * +160, rip at +168) */
		sp = s->sp;
		if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(sp + 168)) ||
		    bpf_probe_read_user(&s->bp, sizeof(s->bp), (void *)(sp + 120)) ||
		    bpf_probe_read_user(&s->sp, sizeof(s->sp), (void *)(sp + 160)))
			return unwind_end(s, BRAID_UNWIND_END_FAULT);
		stat_add(BRAID_STAT_UNWIND_SIGNAL);
		/* the interrupted instruction itself, not a return address */
		s->exact = 1;
		return unwind_next(s, ra);
	default:
		/* no rule (JIT code, a gap, a file without rules): frame
		 * pointers, as bpf_get_stack would */
		bp = s->bp;
		if (!bp || bp < s->sp)
			return unwind_end(s, BRAID_UNWIND_END_NO_RULE);
		if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(bp + 8)) ||
		    bpf_probe_read_user(&s->bp, sizeof(s->bp), (void *)bp))
			return unwind_end(s, BRAID_UNWIND_END_FAULT);
		stat_add(BRAID_STAT_UNWIND_FP_STEPS);
		s->sp = bp + 16;
		return unwind_next(s, ra);
	}
	/* the caller's stack is above the callee's: anything else is a wrong
	 * rule or a corrupt stack, and would loop */
	if (cfa <= s->sp)
		return unwind_end(s, BRAID_UNWIND_END_BAD_CFA);
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8)))
		return unwind_end(s, BRAID_UNWIND_END_FAULT);
	if (row->rbp_offset8 &&
	    bpf_probe_read_user(&s->bp, sizeof(s->bp), (void *)(cfa + 8 * (__s64)row->rbp_offset8)))
		return unwind_end(s, BRAID_UNWIND_END_FAULT);
	s->sp = cfa;
	return unwind_next(s, ra);
}

static long unwind_step(__u64 i, void *ctx)
{
	return braid_unwind_frame() & 1; /* the verifier wants 0 or 1 */
}

/* Asks user space to read pid's mappings again, at most once per
 * unwind_refresh_ns: a library loaded after the process was announced
 * (Python's _hashlib and libcrypto are dlopen'ed at import) has no rules
 * until then. JIT code asks too, and costs a read of
 * /proc/PID/maps each time. */
static __always_inline void request_refresh(__u32 pid)
{
	__u64 now = bpf_ktime_get_ns(), *last = bpf_map_lookup_elem(&unwind_refresh, &pid);
	__u32 msg = pid | BRAID_PID_REFRESH;

	if (last && now - *last < unwind_refresh_ns)
		return;
	bpf_map_update_elem(&unwind_refresh, &pid, &now, BPF_ANY);
	if (bpf_ringbuf_output(&new_pids, &msg, sizeof(msg), 0) < 0)
		stat_add(BRAID_STAT_ANNOUNCE_LOST);
	else
		stat_add(BRAID_STAT_UNWIND_REFRESH);
}

/* Unwinds the current user stack into st with the rules of unwind_procs;
 * returns the number of frames, or -1 when it can't (unwinding off, no
 * entry for the process, no user registers): then bpf_get_stack walks
 * frame pointers as before. */
static __always_inline long unwind_user(struct bpf_perf_event_data *ctx, struct braid_stack *st,
					__u32 pid, __u64 start, bool loop)
{
	struct braid_unwind_proc *p;
	struct braid_unwind_state *s;
	__u32 zero = 0;
	__u64 now;

	if (!unwind_enabled)
		return -1;
	p = bpf_map_lookup_elem(&unwind_procs, &pid);
	if (!p)
		return -1;
	if (start < p->start_min || start >= p->start_max) {
		/* the PID names another process than the entry's */
		stat_add(BRAID_STAT_UNWIND_STALE);
		request_refresh(pid);
		return -1;
	}
	if (p->n == 0) {
		/* taken back while the process was idle: ask for it again */
		request_refresh(pid);
		return -1;
	}
	/* when it last ran: user space takes back the entries of processes
	 * idle for long when their files' room is needed */
	now = bpf_ktime_get_ns();
	if (now - p->last_ns > 1000000000ULL)
		p->last_ns = now;
	s = bpf_map_lookup_elem(&unwind_state, &zero);
	if (!s)
		return -1;
	if (in_user_mode(ctx)) {
		s->ip = ctx->regs.ip;
		s->sp = ctx->regs.sp;
		s->bp = ctx->regs.bp;
	} else if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		/* in the kernel: the user registers saved at its entry */
		struct pt_regs *regs =
			(struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		s->ip = BPF_CORE_READ(regs, ip);
		s->sp = BPF_CORE_READ(regs, sp);
		s->bp = BPF_CORE_READ(regs, bp);
	} else {
		stat_add(BRAID_STAT_UNWIND_NO_REGS);
		return -1;
	}
	s->n = 0;
	s->done = 0;
	s->pid = pid;
	s->unmapped = 0;
	s->exact = 0;
	s->end = BRAID_UNWIND_END_ROOT;
	__builtin_memset(st, 0, sizeof(*st));
	if (loop) {
		bpf_loop(BRAID_MAX_STACK_DEPTH, unwind_step, NULL, 0);
	} else {
		/* Linux 5.3's bounded loops: the verifier walks all 127
		 * iterations, each a call of the global function, checked once */
		for (__u32 i = 0; i < BRAID_MAX_STACK_DEPTH; i++)
			if (braid_unwind_frame())
				break;
	}
	stat_add(BRAID_STAT_UNWIND_CFI);
	if (s->unmapped)
		request_refresh(pid);
	if (!s->done) {
		/* every step went on: more frames than kept */
		stat_add(BRAID_STAT_UNWIND_END + BRAID_UNWIND_END_DEPTH);
		return BRAID_MAX_STACK_DEPTH + 1; /* counted as truncated */
	}
	stat_add(BRAID_STAT_UNWIND_END + (s->end < BRAID_UNWIND_END_COUNT ? s->end : 0));
	return s->n;
}
#else
static __always_inline long unwind_user(struct bpf_perf_event_data *ctx, struct braid_stack *st,
					__u32 pid, __u64 start, bool loop)
{
	return -1;
}
#endif

/* Stores the current kernel or user stack in `stacks`; returns its hash, 0
 * when there is none, or sets *lost when it could not be stored. A user
 * stack is unwound with the rules of .eh_frame when user space loaded them
 * for the process (unwind_user), else by frame pointers (bpf_get_stack). */
static __always_inline __u64 store_stack(struct bpf_perf_event_data *ctx, void *stacks, bool user,
					 __u32 pid, __u64 start, bool loop, __u32 *lost)
{
	__u32 zero = 0;
	struct braid_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	long len, r;
	__u32 n;
	__u64 h;

	if (!st)
		return 0;
	len = user ? unwind_user(ctx, st, pid, start, loop) : -1;
	if (len < 0) {
		/* bpf_get_stack zero-fills the buffer past the frames it writes */
		len = bpf_get_stack(ctx, st, sizeof(*st), user ? BPF_F_USER_STACK : 0);
		if (user)
			stat_add(BRAID_STAT_USTACK_FP);
		if (len < 0) {
			stat_add(user ? BRAID_STAT_USTACK_FAULT : BRAID_STAT_KSTACK_FAULT);
			*lost = 1;
			return 0;
		}
		/* a full buffer: the stack may go on */
		len = len / sizeof(__u64) + (len >= sizeof(*st));
	}
	if (len == 0)
		return 0;
	n = len > BRAID_MAX_STACK_DEPTH ? BRAID_MAX_STACK_DEPTH : (__u32)len;
	if (len > BRAID_MAX_STACK_DEPTH)
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

/* The thread pointer of a user thread (braid_key.tp): set by clone's
 * CLONE_SETTLS or arch_prctl(ARCH_SET_FS), both of which store it in
 * thread.fsbase; constant for the thread's life under glibc and musl. */
static __always_inline __u64 thread_pointer(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(task, thread.fsbase);
#else
	return 0;
#endif
}

static __always_inline void count(struct bpf_perf_event_data *ctx, void *counts, void *stacks,
				  __u32 pid, __u32 tid, bool kthread, __u64 start, __u64 tp,
				  bool loop)
{
	struct braid_key key;
	__u32 lost = 0;
	__u64 one = 1, *v;
	long r;

	__builtin_memset(&key, 0, sizeof(key));
	key.pid = pid;
	key.tid = tid;
	key.start = start;
	key.tp = tp;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	if (sample_kernel && !in_user_mode(ctx)) {
		key.kstack = store_stack(ctx, stacks, false, pid, start, loop, &lost);
		if (lost)
			key.flags |= BRAID_KEY_KSTACK_LOST;
	}
	if (sample_user && !kthread) {
		lost = 0;
		key.ustack = store_stack(ctx, stacks, true, pid, start, loop, &lost);
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

/* One sample; loop: walk user stacks with bpf_loop (Linux 5.17), else with
 * a bounded loop. Two programs, one of which user space loads: a program
 * that names bpf_loop's callback at all (a BPF_PSEUDO_FUNC load, Linux
 * 5.13) is refused by older kernels even where that code is dead. */
static __always_inline int sample(struct bpf_perf_event_data *ctx, bool loop)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0, e;
	struct task_struct *task;
	__u64 *seq;
	bool kthread;
	__u64 start, tp;

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
	tp = kthread ? 0 : thread_pointer(task);

	seq = bpf_map_lookup_elem(&inflight, &zero);
	if (!seq)
		return 0;
	/* An atomic add is a full barrier: the epoch is read after user space
	 * can see this program running (see the header comment). */
	__sync_fetch_and_add(seq, 1);
	e = *(volatile __u32 *)&epoch;
	if (e & 1)
		count(ctx, &counts1, &stacks1, pid, tid, kthread, start, tp, loop);
	else
		count(ctx, &counts0, &stacks0, pid, tid, kthread, start, tp, loop);
	__sync_fetch_and_add(seq, 1);
	return 0;
}

SEC("perf_event")
int braid_sample(struct bpf_perf_event_data *ctx)
{
	return sample(ctx, true);
}

SEC("perf_event")
int braid_sample_bounded(struct bpf_perf_event_data *ctx)
{
	return sample(ctx, false);
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
