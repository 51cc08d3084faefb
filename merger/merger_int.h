/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: what its files share and nobody else needs.
 */
#ifndef BRAID_MERGER_INT_H
#define BRAID_MERGER_INT_H

#include "merger/merger.h"

/* The SDK sample label that names a thread the way the eBPF samples'
 * thread_pointer does (pthread_self()), for runtimes whose SDK has one
 * (pyroscope-io's thread_id); NULL else. classify.c keeps it with the
 * runtime's other rules. */
const char *merger_sdk_thread_label(enum runtime runtime);
/* Whether the runtime's SDK stacks end at the guest line that called into
 * native code (py-spy's), so that the line's text says what it called. */
bool merger_sdk_line_calls(enum runtime runtime);
/* The SDK's file-less native leaves name the C++ callback guest code called
 * (Node.js): the splice's native-call pool is split by those names. */
bool merger_sdk_api_calls(enum runtime runtime);
/* Whether the SDK's thread label is the OS thread id (the eBPF samples'
 * tid) rather than pthread_self() (their thread_pointer). */
bool merger_sdk_thread_is_tid(enum runtime runtime);
/* Whether the SDK's stacks hold native frames leafward of the guest ones
 * (async-profiler's, in the Java agent's JFR): the splice takes the guest
 * frames alone, leaves out stacks without any, and keys the native call by
 * the first native frame's function. */
bool merger_sdk_native_leaf(enum runtime runtime);

/* The label braid's reading of a JFR push gives each sample: its thread's OS
 * id (profile__from_jfr's os_thread_labels), for the thread groups; no SDK
 * sends it, and merged samples don't carry it. */
#define MERGER_OS_THREAD_LABEL "os_thread_id"

/* The label that marks a remembered SDK sample (merger_splice_input's
 * reserve) in the splice's copy of the SDK profile; merged samples don't
 * carry it. A dot: no Pyroscope label name has one. */
#define MERGER_RESERVE_LABEL "braid.remembered"
/* SDK stacks remembered a process */
#define MERGER_MAX_REMEMBERED 64

/* ---- SDK stacks and labels in the output (splice.c) --------------------------- */

/* The function an SDK location stands for: its outermost line's (the one
 * the others were inlined into), by system name, else name; NULL if none. */
const char *merger__sdk_function_name(const struct profile *sdk, uint32_t id);
/* The label set, in out, of merged samples from SDK label set `set`: the
 * labels of out's base_set and the SDK sample's, but for braid's own thread
 * label (os_thread_id, from reading a JFR). The SDK's labels are what eBPF
 * can't know: the route, the span, the tenant a sample ran for. */
int merger__out_labels(struct profile *out, uint32_t base_set, const struct profile *sdk,
		       uint32_t set, uint32_t *ret);

/* Adds count samples of the stack locs[0..n) (leaf first) with label set
 * labels to out, each worth period: the splice's and the match's output.
 * -EOVERFLOW if count x period does not fit. */
int merger__emit(struct profile *out, const uint32_t *locs, size_t n, int64_t count, int64_t period,
		 uint32_t labels);

/* ---- the match (match.c) ------------------------------------------------------ */

/* merger__splice for runtimes whose code eBPF names itself (Go): every eBPF
 * stack keeps its frames, and its samples are shared among the label sets
 * of the SDK stacks that agree with it from the root (match.c's top). */
int merger__match(const struct merger_splice_input *in, struct profile *out,
		  struct merger_splice_stats *ret);

/* ---- sharing samples by weight (apportion.c) --------------------------------- */

/* n entries with weights share `slots` samples: Hamilton quotas, handed out
 * in a stride schedule (the file's top says how). */
struct merger_apportion {
	int64_t *quota, *given;
	size_t *heap; /* entries with slots left, by next slot position */
	size_t n, n_heap;
};

/* Weights >= 0; with no weight or no slot, nothing to hand out (n_heap 0).
 * -EINVAL for a negative weight or slot count, -ENOMEM. */
int merger_apportion__init(struct merger_apportion *ap, const int64_t *weights, size_t n,
			   int64_t slots);
/* The entry (index into weights) that owns the next slot; -EPROTO when every
 * slot was handed out. */
int merger_apportion__next(struct merger_apportion *ap, size_t *ret);
void merger_apportion__free(struct merger_apportion *ap);

/* ---- stored SDK profiles (sdk_decode.c) -------------------------------------- */

/* An SDK profile as stored, decoded: pprof or folded by its format, a JFR
 * push as its recording's process_cpu profile (at the push's rate, with its
 * labels part, each sample labelled os_thread_id). lim NULL: the defaults.
 * A negative errno with the message in err. */
int merger_sdk__decode(const struct store_sdk_profile *p, const struct profile_limits *lim,
		       struct errbuf *err, struct profile **ret);

/* A JFR push's recording as pprof, one profile a kind of event, as
 * Pyroscope's converter makes of the push (no os_thread_id), to forward in
 * the push's place. */
struct merger_sdk_copy {
	const char *metric;  /* __name__: process_cpu, wall, memory, mutex, block */
	struct dynbuf pprof; /* gzipped */
};

struct merger_sdk_copies {
	struct merger_sdk_copy *c;
	size_t n;
	char jfr_event[64]; /* the recording's "event" setting, "" if none */
};

/* *ret is the caller's to free (merger_sdk__copies_free) also on failure;
 * a negative errno with the message in err. */
int merger_sdk__jfr_copies(const struct store_sdk_profile *p, const struct profile_limits *lim,
			   struct errbuf *err, struct merger_sdk_copies *ret);
void merger_sdk__copies_free(struct merger_sdk_copies *c);

/* ---- thread groups (threads.c) ------------------------------------------- */

/* The threads both views name. Group 0 holds what only one side names (or
 * neither): SDK samples of a thread eBPF did not sample, eBPF stacks of a
 * thread the SDK did not sample (a thread it does not profile, one it
 * skipped), and everything when the SDK or the architecture names no
 * threads. Groups 1..n are the threads both name, one each. */
struct merger_threads;

/* From one process's eBPF stacks and an SDK profile (NULL: none) whose
 * sample type `type` weighs its stacks: samples of weight <= 0 name no
 * thread. -ENOMEM. */
int merger_threads__new(enum runtime runtime, const struct merger_ebpf_stack *stacks,
			size_t n_stacks, const struct profile *sdk, int type,
			struct merger_threads **ret);
void merger_threads__free(struct merger_threads *t);
/* 1 + the threads both views name. */
size_t merger_threads__n_groups(const struct merger_threads *t);
/* The group of eBPF stack i (an index into the stacks given to _new). */
uint32_t merger_threads__ebpf_group(const struct merger_threads *t, size_t i);
/* The group of an SDK sample, by its label set. */
uint32_t merger_threads__sdk_group(const struct merger_threads *t, uint32_t label_set);

/* ---- native calls by name (calls.c) ---------------------------------------- */

/* Which native function an SDK stack's line calls, by name. */
#define MERGER_MAX_NATIVE_CALLS 32 /* keys: distinct native functions matched */
struct merger_calls;
int merger_calls__new(struct merger_calls **ret);
void merger_calls__free(struct merger_calls *c);
/* The names a line of Python calls ("name(" and "x.name(", 3 characters or
 * more, outside strings and comments) as a list id (0: none). -ENOMEM. */
int merger_calls__add_line(struct merger_calls *c, const char *line, uint32_t *ret);
/* A list of the native functions an SDK stack shows it called (the Java
 * method's JNI function, "Java_java_util_zip_Deflater_deflateBytesBytes",
 * and the native leaf), names of 3 to 63 characters (others left out); 0
 * when none is. -ENOMEM. */
int merger_calls__add_names(struct merger_calls *c, const char *const *names, const size_t *lens,
			    size_t n, uint32_t *ret);
/* The key of the first native function, from the interpreter region
 * leafward, whose name stands for a name some line calls ("os_pwrite" and
 * "os_pwrite_impl" for "pwrite"; "builtin_len" for "len"; "PyObject_Str"
 * for "str"), a new key when first seen; -1 none. user: an eBPF stack's
 * user frames, leaf first; region_begin: where its region starts. */
int merger_calls__key_of_stack(struct merger_calls *c, const struct frame *user,
			       size_t region_begin);
size_t merger_calls__n_keys(const struct merger_calls *c);
/* Whether line list `list` calls key's name. */
bool merger_calls__calls(const struct merger_calls *c, uint32_t list, int key);
const char *merger_calls__key_name(const struct merger_calls *c, int key);
/* The distinct names lines call so far; marks[] below has one byte each. */
size_t merger_calls__n_names(const struct merger_calls *c);
/* Sets marks[n] for every name n of list `list`. */
void merger_calls__mark(const struct merger_calls *c, uint32_t list, uint8_t *marks);
/* Whether every name of list `list` is marked (an empty list: true). */
bool merger_calls__all_marked(const struct merger_calls *c, uint32_t list, const uint8_t *marks);

/* ---- remembered SDK stacks per process (reserves.c) ------------------------ */

struct merger_reserves;
int merger_reserves__new(struct merger_reserves **ret);
void merger_reserves__free(struct merger_reserves *rs);
/* Process process_id's remembered stacks, NULL when it has none renewed in
 * the last 15 minutes (now_s: the time of the profile being merged). */
const struct profile *merger_reserves__get(const struct merger_reserves *rs, int64_t process_id,
					   int64_t now_s);
/* Takes p (NULL or empty: forgets the process) as process_id's reserve,
 * replacing the one before; drops the least recently renewed one beyond
 * 256 processes, and those not renewed for 15 minutes. */
void merger_reserves__put(struct merger_reserves *rs, int64_t process_id, struct profile *p,
			  int64_t now_s);

/* ---- source lines (source.c) --------------------------------------------- */

/* The text of line `line` (from 1) of `filename`, without its line break,
 * valid until the next call; NULL when the file is not a readable regular
 * *.py file of at most 1 MiB (8 MiB and 64 files a source), or has no such
 * line. */
const char *merger_source__line(struct merger_source *s, const char *filename, int64_t line);

#endif
