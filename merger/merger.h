/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: correlates eBPF samples with SDK profiles by process and time, and
 * splices the SDK's interpreted-language frames into the eBPF stacks.
 *
 * Three layers, each usable alone:
 *   - classifiers: per runtime, which frames of a symbolized eBPF stack are
 *     the interpreter region, and which category (guest code, GC, JIT, idle,
 *     other native) an eBPF or SDK stack belongs to;
 *   - the splice: one process's eBPF stacks + one SDK profile -> merged
 *     samples in a profile, totals conserved to the sample;
 *   - the merge loop: reads the store, emits merged, eBPF-only and
 *     pass-through profiles to the outbox, every eBPF sample exactly once.
 * See docs/merger.md.
 */
#ifndef BRAID_MERGER_H
#define BRAID_MERGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "store/store.h"
#include "util/util.h"

/* ---- classifiers --------------------------------------------------------- */

/* What a thread was doing, as both views can tell it. */
enum merger_category {
	MERGER_CAT_GUEST = 0, /* running guest code (JS, Python) and what it calls */
	MERGER_CAT_GC,	      /* garbage collection */
	MERGER_CAT_JIT,	      /* compiling guest code */
	MERGER_CAT_IDLE,      /* the event loop waiting or turning over */
	MERGER_CAT_NATIVE,    /* other native work: other threads, start-up, ... */
	MERGER_CAT_COUNT
};
/* "guest", "gc", "jit", "idle", "native". */
const char *merger__category_name(enum merger_category c);

/* How an eBPF stack's user frames (leaf first, user_frames[0] the leaf) are
 * cut:
 *   [0, region_begin)            the native suffix (what guest code called)
 *   [region_begin, region_end)   the interpreter region (replaced by SDK frames)
 *   [region_end, n_user)         the native prefix (the process's entry)
 * A stack without guest frames has an empty region at the root
 * (region_begin == region_end == n_user): SDK frames spliced into it (the
 * SDK's pseudo-frames: "Non JS threads activity", "(idle)", ...) go at the
 * root, above the whole eBPF stack. For a broken stack (unwinding stopped at
 * an address in no mapping) region_end == n_user: what lies rootward of the
 * good leaf frames is unreliable and is replaced too. */
struct merger_class {
	enum merger_category category;
	size_t region_begin, region_end;
	bool broken;
};

/* Classifies the user frames (leaf first) of one eBPF stack of a thread of a
 * process running `runtime`; main_thread: tid == pid. Runtimes without a
 * classifier give MERGER_CAT_NATIVE with an empty region at n_user (the
 * whole stack is native). Never fails. */
void merger__classify_ebpf(enum runtime runtime, const struct frame *user_frames, size_t n_user,
			   bool main_thread, struct merger_class *ret);

/* Classifies one SDK stack, given its function names leaf first (the
 * function's system_name when set, else its name; NULL or "" for a location
 * without a function). *ret_root_skip gets how many root-most frames are
 * runtime pseudo-frames to leave out of a splice (the Node SDK's "Node.js"
 * root). Never fails. */
enum merger_category merger__classify_sdk(enum runtime runtime, const char *const *names, size_t n,
					  size_t *ret_root_skip);

/* True for the runtimes the splice has a classifier for: a row of
 * merger/classify.c's rules (node, python, jvm). */
bool merger__can_splice(enum runtime r);
/* True for the runtimes merger__splice merges: those it splices, and Go,
 * which it matches (eBPF names Go's code itself). */
bool merger__can_merge(enum runtime r);

/* The runtime a process's eBPF frames imply, for files that do not say it:
 * V8 frames (Builtins_*, v8::) -> NODE, the CPython eval loop -> PYTHON, else
 * RUNTIME_UNKNOWN. frames: leaf first (kernel frames name no runtime). */
enum runtime merger__runtime_of_frames(const struct frame *frames, size_t n);

/* ---- frames in a profile ------------------------------------------------- */

/* Adds (or finds) the location for one symbolized frame: its module as the
 * mapping's file name, its name as a function ("[unknown]" for an address in
 * no mapping), else the offset as the address; the frame's kind is kept. A
 * frame with neither a name nor an offset (JIT code no perf map names) is
 * named after its module ("[jit]"), since Pyroscope drops every sample
 * through a location with neither a line nor an address. */
int merger__add_frame(struct profile *p, const struct frame *f, uint32_t *ret_location);

/* The frame a location of p stands for (the reverse of merger__add_frame):
 * the pointers point into p. -ENOENT for a bad id. */
int merger__frame_of_location(const struct profile *p, uint32_t location, struct frame *ret);

/* ---- the splice ---------------------------------------------------------- */

/* One eBPF stack of a process, with the samples it got. */
struct merger_ebpf_stack {
	const struct frame *frames; /* leaf first: kernel frames (FRAME_KERNEL), then user */
	size_t n_frames;
	int32_t tid;
	uint64_t thread_pointer; /* pthread_self() of the thread, 0: unknown (docs/threads.md) */
	int64_t count;
};

/* The source lines of the files an SDK's frames name (source.c): the Python
 * files under process pid's root and working directory (pid <= 0, or a
 * process gone: this process's). The splice reads the line each SDK stack ends on to tell
 * which stacks called which native function (docs/merger.md). */
struct merger_source;
int merger__source_new(int32_t pid, struct merger_source **ret);
void merger__source_free(struct merger_source *s);

struct merger_splice_input {
	enum runtime runtime;
	int32_t pid; /* host PID: the main thread's tid */
	const struct merger_ebpf_stack *stacks;
	size_t n_stacks;
	const struct profile *sdk;    /* NULL: no SDK data, every stack keeps its frames */
	int64_t period;		      /* ns per eBPF sample: values are count * period */
	uint32_t labels;	      /* label set id in `out` for every sample, 0 = none */
	struct merger_source *source; /* NULL: no source lines read */
	/* Python: SDK samples of the process's earlier profiles whose line calls
	 * native code by name. A native call eBPF saw that none of this
	 * profile's SDK stacks makes is shared among the remembered stacks that
	 * make it (py-spy skips threads without the GIL, as the Python SDK asks,
	 * so a profile can lack every caller of a call that releases it).
	 * NULL: none. */
	const struct profile *reserve;
	/* not NULL (an empty profile): the splice leaves there the reserve for
	 * the process's next profile (docs/merger.md, "Native calls (Python)") */
	struct profile *reserve_out;
};

struct merger_splice_stats {
	int64_t samples;		       /* eBPF samples in (= samples out) */
	int64_t spliced;		       /* samples given SDK frames */
	int64_t by_category[MERGER_CAT_COUNT]; /* eBPF samples per category */
	int64_t kept[MERGER_CAT_COUNT];	       /* ... left with eBPF frames: no SDK weight
						* (by the category they were shared in) */
	int64_t broken;			       /* samples of broken stacks */
	int64_t to_guest; /* GC or JIT samples inside guest code that the SDK has no
			   * category for: shared among its guest stacks */
	double sdk_weight[MERGER_CAT_COUNT]; /* SDK weight per category */
	int sdk_type;			     /* SDK sample type index used, -1 none */
	/* threads both views name (the SDK's thread label, the eBPF samples'
	 * thread pointer: docs/threads.md), and the eBPF samples shared among
	 * their own thread's SDK stacks */
	int64_t thread_groups;
	int64_t thread_samples;
	/* native functions an SDK stack's line calls by name, and the eBPF
	 * samples in them shared among those stacks only */
	int64_t native_calls;
	int64_t native_call_samples;
	/* ... of which shared among stacks remembered from earlier profiles */
	int64_t remembered_samples;
	/* SDK weight of stacks without guest frames, left out: another
	 * thread's native frames (the Java agent's GC and compiler threads),
	 * which eBPF sees whole */
	double sdk_native_only;
	/* Go (a match, not a splice): eBPF samples whose stack agrees with an
	 * SDK stack from the root to its leaf (exact), down to some frame
	 * (partial: the SDK's labels all the same), or not at all (none:
	 * no label) */
	int64_t match_exact, match_partial, match_none;
};

/* The SDK sample type whose values weigh SDK stacks: "cpu" when present,
 * else "samples", else "wall", else the default type. -ENOENT if the profile
 * has no sample type. */
int merger__sdk_weight_type(const struct profile *sdk);

/* Adds the merged samples of one process to `out`, whose single sample type
 * is cpu/nanoseconds. Each eBPF stack's count is shared among the SDK stacks
 * of its category in proportion to their weight: each SDK stack gets its
 * largest-remainder quota of the category's eBPF samples, and the slots are
 * interleaved across the eBPF stacks in input order (a stride schedule), so
 * every eBPF stack is shared in proportion too. Exact and deterministic:
 * every eBPF sample is emitted once, with value period. A merged stack is,
 * root first: native prefix + SDK frames + native suffix + kernel frames.
 * GC and JIT stacks inside guest code whose category has no SDK weight are
 * shared among the guest stacks (V8's profiler and py-spy count that time
 * to the guest code); other stacks of a category with no SDK weight keep
 * their eBPF frames.
 * On error `out` may hold part of the samples; ret may be NULL. */
int merger__splice(const struct merger_splice_input *in, struct profile *out,
		   struct merger_splice_stats *ret);

/* A new output profile: sample type and period type cpu/nanoseconds, period
 * `period`, time [from_ns, until_ns) (0, 0: none). NULL on ENOMEM. */
struct profile *merger__new_profile(int64_t period, int64_t from_ns, int64_t until_ns);

/* ---- recordings: `braid record`'s pprof, per process ------------------- */

/* One process's eBPF stacks in a recording. */
struct merger_process {
	int32_t pid;
	enum runtime runtime; /* its runtime label, else told from its frames */
	const struct merger_ebpf_stack *stacks;
	size_t n_stacks;
	int64_t samples;
};

struct merger_recording;

/* Splits a `braid record` profile (pid, tid and runtime labels on every
 * sample; a cpu/nanoseconds type with a period, or samples/count) into
 * stacks per process, frames made once per location so that equal frames
 * share their strings. Takes p (freed with the recording, or on error).
 * -EINVAL for a profile that is not a recording; the message in err reads
 * after the file's name ("has no pid labels: ..."). */
int merger__recording_new(struct profile *p, struct errbuf *err, struct merger_recording **ret);
void merger__recording_free(struct merger_recording *r);
size_t merger__recording_n_processes(const struct merger_recording *r);
const struct merger_process *merger__recording_process(const struct merger_recording *r, size_t i);
/* The process of pid, NULL if the recording has none of its samples. */
const struct merger_process *merger__recording_find(const struct merger_recording *r, int32_t pid);
/* The process an SDK profiled: pid's, or (pid 0) the only one whose
 * runtime the splice knows. NULL with a message in err (reading after the
 * file's name) when there is no such process, or several. */
const struct merger_process *merger__recording_pick(const struct merger_recording *r, int32_t pid,
						    struct errbuf *err);
int64_t merger__recording_period(const struct merger_recording *r);
const struct profile *merger__recording_profile(const struct merger_recording *r);
/* Overrides a process's runtime (braid merge --runtime). */
void merger__recording_set_runtime(struct merger_recording *r, int32_t pid, enum runtime runtime);

/* ---- reports: the eBPF view against the SDK view --------------------------- */

/* One process's data for a report. */
struct merger_report_part {
	int32_t pid;
	enum runtime runtime;
	/* eBPF stacks of seconds an SDK profile covers (spliced), and of seconds
	 * none covers (kept as they are: "uncovered") */
	const struct merger_ebpf_stack *stacks;
	size_t n_stacks;
	const struct merger_ebpf_stack *uncovered;
	size_t n_uncovered;
	const struct profile *sdk; /* the process's CPU SDK profiles summed; NULL: none */
};

struct merger_report_input {
	const char *title;	   /* e.g. "checkout (pid 4242)" */
	const char *source;	   /* "store /var/lib/braid/braid.db", "files: a, b" */
	const char *service;	   /* NULL: unknown */
	int32_t pid;		   /* 0: several or unknown */
	int64_t from_ns, until_ns; /* the range asked for or covered; 0: unknown */
	int64_t period;		   /* ns per eBPF sample */
	const struct merger_report_part *parts;
	size_t n_parts;
	size_t sdk_profiles;		     /* SDK profiles read */
	int64_t sdk_from_ns, sdk_until_ns;   /* their range; 0: unknown */
	int64_t sdk_sample_rate;	     /* Hz; 0: unknown */
	int64_t ebpf_from_ns, ebpf_until_ns; /* the eBPF samples' range; 0: unknown */
	size_t sdk_unattributed; /* SDK profiles of the service attributed to no process */
	int64_t generated_ns;	 /* when; 0: now */
};

/* The numbers, for callers and tests (the outputs carry more: trees, tops,
 * blind spots). Shares are fractions of the view's total. */
enum merger_leaf_class {
	MERGER_LEAF_KERNEL = 0,	  /* the leaf frame is kernel code */
	MERGER_LEAF_GC,		  /* the runtime's garbage collector */
	MERGER_LEAF_JIT_COMPILER, /* the runtime compiling guest code */
	MERGER_LEAF_INTERPRETER,  /* the runtime's interpreter and builtins */
	MERGER_LEAF_NATIVE,	  /* native libraries and the executable */
	MERGER_LEAF_GUEST,	  /* guest code itself (JIT code) */
	MERGER_LEAF_IDLE,	  /* the event loop waiting */
	MERGER_LEAF_UNKNOWN,	  /* an address in no mapping */
	MERGER_LEAF_COUNT
};
/* "kernel", "gc", "jit_compiler", "interpreter", "native", "guest", "idle",
 * "unknown". */
const char *merger__leaf_class_name(enum merger_leaf_class c);

struct merger_report_numbers {
	int64_t ebpf_samples, ebpf_value; /* value: samples * period (ns) */
	int64_t sdk_samples, sdk_value;	  /* in the SDK's weight type */
	bool sdk_cpu;			  /* the SDK's weight is CPU time in ns */
	int64_t merged_samples, merged_value;
	double leaf_share[MERGER_LEAF_COUNT]; /* of eBPF samples */
	double ebpf_category[MERGER_CAT_COUNT], sdk_category[MERGER_CAT_COUNT];
	int64_t spliced, uncovered, no_sdk; /* eBPF samples */
	int64_t kept[MERGER_CAT_COUNT];	    /* covered, but kept their eBPF frames */
	/* Go (matched, not spliced; spliced counts the matched): eBPF samples
	 * whose stack agrees with an SDK stack whole, to some frame, or not */
	int64_t match_exact, match_partial, match_none;
	size_t n_warnings;
};

struct merger_report;

/* Computes a report: the merged view (the splice of each part), the
 * numbers, the trees. NULL on ENOMEM. */
int merger__report_new(const struct merger_report_input *in, struct merger_report **ret);
void merger__report_free(struct merger_report *r);
void merger__report_numbers(const struct merger_report *r, struct merger_report_numbers *ret);
/* The share (cumulative: of the samples whose stack holds it) of a function
 * by name in a view ("ebpf", "sdk", "merged"); 0 if the view never has it. */
double merger__report_function_share(const struct merger_report *r, const char *view,
				     const char *name);
/* The i-th warning's code ("no_ebpf", "no_sdk", "sample_rate",
 * "clock_skew", "unattributed", "cpu_mismatch"), NULL past the last. */
const char *merger__report_warning(const struct merger_report *r, size_t i);

/* A profile's sampling rate in Hz from its period (in nanoseconds), 0 if
 * it has none. The Node SDK's sampleRate query parameter is not its rate:
 * the pprof's period is. */
int64_t merger__sample_rate_of(const struct profile *p);

/* What to report from the store. */
struct merger_report_query {
	const char *service;	   /* the processes of this service (or comm)... */
	int32_t pid;		   /* ... or with this PID (0: any); one of the two */
	int64_t from_ns, until_ns; /* 0: unbounded */
	unsigned freq;		   /* the agent's sampling frequency; 0: 97 Hz */
};

/* Reads the processes q names (at most 256), their eBPF buckets and CPU SDK
 * profiles in the range, and computes their report: buckets of seconds an
 * SDK profile covers are spliced, the others stay eBPF-only. -ENOENT with a
 * message in err when no such process was seen in the range. */
int merger__report_from_store(struct store *s, const struct merger_report_query *q,
			      struct errbuf *err, struct merger_report **ret);

/* The report as JSON (schema braid-report/1, docs/report.md), Markdown or
 * one self-contained HTML page; appended to out. */
int merger__report_json(const struct merger_report *r, struct dynbuf *out);
int merger__report_markdown(const struct merger_report *r, struct dynbuf *out);
int merger__report_html(const struct merger_report *r, struct dynbuf *out);

enum merger_report_format {
	MERGER_REPORT_HTML,
	MERGER_REPORT_MD,
	MERGER_REPORT_JSON,
};
/* Parses a format's name: "html", "md" (or "markdown") or "json"; -EINVAL
 * otherwise, with "takes html, md or json, not 'S'" in err for the caller
 * to prefix with the option's name. */
int merger__report_format_parse(const char *s, struct errbuf *err, enum merger_report_format *ret);
/* Appends the report in format f to out; *ret_type (may be NULL) gets the
 * format's content type ("text/html; charset=utf-8", ...). */
int merger__report_write(const struct merger_report *r, enum merger_report_format f,
			 struct dynbuf *out, const char **ret_type);

/* ---- the merge loop ------------------------------------------------------ */

#define MERGER_DEFAULT_GRACE_S		  75 /* the Node SDK pushes every 60 s */
#define MERGER_DEFAULT_COLLECT_INTERVAL_S 15
#define MERGER_DEFAULT_SETTLE_S		  2 /* buckets of a second are stored within it */
#define MERGER_VIEW_LABEL		  "braid_view"
/* The profile type an SDK's own CPU profile leaves under when braid merges
 * its process: the merged and eBPF-only profiles are the process's
 * process_cpu, so a query without braid_view counts its CPU once. */
#define MERGER_DEFAULT_SDK_CPU_NAME "process_cpu_sdk"
#define MERGER_MAX_PROFILE_NAME	    64

struct merger_options {
	int64_t grace_s;	    /* wait this long for SDK coverage; 0 = default */
	int64_t collect_interval_s; /* eBPF-only profiles at most this often; 0 = default */
	int64_t settle_s;	    /* 0 = default */
	unsigned freq;		    /* eBPF sampling frequency, Hz (the period) */
	/* NULL: SDK profiles leave with the __name__ they were pushed with.
	 * Else the __name__ that replaces process_cpu on the pass-through copy
	 * of an SDK profile whose process eBPF samples (attributed to a local
	 * process) and whose format can be renamed (pprof). Only the push API
	 * takes it: the legacy /ingest names a profile by its sample types. */
	const char *sdk_cpu_name;
};

/* Whether s can be a __name__ braid gives: [A-Za-z_][A-Za-z0-9_]*, at most
 * MERGER_MAX_PROFILE_NAME bytes, not starting with "__". */
bool merger__valid_profile_name(const char *s);

struct merger;

/* A merger on a store connection it uses but does not own. NULL on ENOMEM. */
struct merger *merger__new(struct store *s, const struct merger_options *opts);
void merger__free(struct merger *m);

/* Everything one pass did (and, for merger__stats, all passes). */
struct merger_stats {
	int64_t passes;
	int64_t merged_profiles, ebpf_profiles, sdk_passed; /* outbox items queued */
	int64_t samples_in;				    /* eBPF samples read from buckets */
	int64_t samples_merged;				    /* ... emitted in merged profiles */
	int64_t samples_spliced;			    /* ... of which given SDK frames */
	int64_t samples_by_thread;    /* ... of which by their own thread's SDK stacks */
	int64_t samples_native_calls; /* ... of which by the SDK lines calling their
				       * native function by name */
	int64_t samples_remembered;   /* ... of which by such lines remembered from
				       * the process's earlier profiles */
	int64_t samples_ebpf;	      /* ... emitted in eBPF-only profiles */
	int64_t sdk_late;	      /* SDK profiles whose range was already emitted */
	int64_t sdk_unusable;	      /* CPU SDK profiles that failed to decode */
	int64_t sdk_unattributed;     /* CPU SDK profiles of no known process: passed only */
	int64_t sdk_cpu_renamed;      /* SDK profiles passed on as sdk_cpu_name */
};

/* One pass at now_ns:
 *  1. every SDK profile not yet queued goes to the outbox unchanged;
 *  2. every CPU SDK profile (see store) whose range ended settle_s ago is
 *     spliced with its process's buckets from the watermark to its end;
 *  3. samples that no SDK profile covers leave as eBPF-only profiles: for a
 *     process that has pushed SDK profiles once they are grace_s old, for
 *     others once collect_interval_s has passed since the last emission.
 * final: the agent is stopping; emit what is ready without waiting for the
 * collect interval (processes waiting for SDK coverage keep waiting: their
 * buckets stay in the store for the next start).
 * Each emission is one transaction: outbox item + watermark + merged mark.
 * ret (may be NULL) gets what this pass did. */
int merger__run(struct merger *m, int64_t now_ns, bool final, struct merger_stats *ret);

/* Totals over every pass. */
void merger__stats(const struct merger *m, struct merger_stats *ret);
/* The message of the last failed call ("" if none). */
const char *merger__errmsg(const struct merger *m);

#endif
