/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile: braid's in-memory profile model and its codecs (pprof, folded).
 *
 * A profile holds interned strings, functions, mappings, locations (each with
 * a frame kind), hash-consed stacks and label sets, and samples. Everything
 * is deduplicated by content: adding an identical function, location, stack
 * or label set returns the id it already has, and adding a sample whose
 * (stack, label set) exists sums the values into it. Ids are dense, 1-based
 * and assigned in insertion order (0 means "none"; string 0 is ""), so
 * iteration order — and every output — is deterministic.
 *
 * Pointers returned by the getters stay valid until the next call that adds
 * to the same kind of object (strings: until profile__free).
 */
#ifndef BRAID_PROFILE_H
#define BRAID_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct profile;

/* What executed a frame. It travels through pprof as the location's
 * mapping: see profile__kind_of_mapping. */
enum frame_kind {
	FRAME_UNKNOWN = 0,
	FRAME_NATIVE,	   /* machine code from an ELF file */
	FRAME_KERNEL,	   /* kernel text */
	FRAME_JIT,	   /* code generated at run time (V8, perf maps) */
	FRAME_INTERPRETED, /* a guest-language frame (JavaScript, Python, ...) */
	FRAME_KIND_COUNT
};

const char *profile__kind_name(enum frame_kind kind);
/* The kind a pprof mapping's file name implies: "[kernel.kallsyms]" (or any
 * "[kernel..." / "[vmlinux..."), "[jit]" or "/tmp/perf-N.map", "[interpreted]",
 * "[native]" or a path / "[vdso]" for native, anything else unknown. */
enum frame_kind profile__kind_of_mapping(const char *filename);
/* The pseudo mapping file name the pprof encoder uses for a kind. */
const char *profile__kind_mapping(enum frame_kind kind);

/* ---- the vocabulary the modules share ------------------------------------ */

/* What executes code in a process: the runtime a classifier will know.
 * profile/runtime.c holds every name that tells one (docs/classifiers.md:
 * adding a runtime). */
enum runtime {
	RUNTIME_UNKNOWN = 0,
	RUNTIME_NATIVE,
	RUNTIME_NODE,
	RUNTIME_PYTHON,
	RUNTIME_RUBY,
	RUNTIME_JVM,
	RUNTIME_GO,
	RUNTIME_DOTNET,
	RUNTIME_COUNT
};
/* "unknown", "native", "node", "python", "ruby", "jvm", "go", "dotnet": the
 * names the store keeps and the reports print. */
const char *profile__runtime_name(enum runtime r);
/* The runtime a name of profile__runtime_name's stands for, else UNKNOWN. */
enum runtime profile__runtime_parse(const char *name);
/* The runtime a Pyroscope SDK's spy name stands for ("nodespy", "pyspy",
 * "gospy", "rbspy", "dotnetspy", "javaspy"; case-sensitive), else UNKNOWN. */
enum runtime profile__runtime_of_spy(const char *spy_name);
/* The runtime an executable's base name (len bytes, no directory) runs
 * ("node", "python3.11", "java", ...), else NATIVE. */
enum runtime profile__runtime_of_exe(const char *base, size_t len);
/* The runtime a mapped library embeds into a native program, by the base
 * name of its file ("libpython3.11.so.1.0", "libjvm.so", ...), else UNKNOWN. */
enum runtime profile__runtime_of_library(const char *base, size_t len);

/* A label of a profile or a push, as text. */
struct label {
	const char *name;
	const char *value;
};

/* One frame of a symbolized stack, as the collector makes it, the store
 * keeps it (deduplicated by all four fields: a collector that wants
 * function-level frames passes offset 0) and the merger reads it. */
struct frame {
	enum frame_kind kind;
	const char *name;   /* function, NULL or "" if unknown */
	const char *module; /* ELF path, "[kernel.kallsyms]", perf map, ... */
	uint64_t offset;    /* module offset or address */
};

/* Caps on what a decoder accepts; every input a client controls is bounded.
 * Exceeding one is an error that names it, never an unbounded allocation. */
struct profile_limits {
	size_t max_decompressed;  /* bytes of pprof after gunzip */
	size_t max_decode_memory; /* bytes the protobuf decoder may allocate */
	size_t max_samples;	  /* sample entries */
	size_t max_locations;
	size_t max_functions;
	size_t max_mappings;
	size_t max_strings;
	size_t max_stack_depth;	 /* locations in one sample (frames in a folded line) */
	size_t max_labels;	 /* labels on one sample */
	size_t max_sample_types; /* values per sample */
	size_t max_line_length;	 /* bytes in one folded line */
};

#define PROFILE_DEFAULT_MAX_DECOMPRESSED  (64u << 20)
#define PROFILE_DEFAULT_MAX_DECODE_MEMORY (768u << 20)
#define PROFILE_DEFAULT_MAX_SAMPLES	  2000000u
#define PROFILE_DEFAULT_MAX_LOCATIONS	  1000000u
#define PROFILE_DEFAULT_MAX_FUNCTIONS	  1000000u
#define PROFILE_DEFAULT_MAX_MAPPINGS	  65536u
#define PROFILE_DEFAULT_MAX_STRINGS	  2000000u
#define PROFILE_DEFAULT_MAX_STACK_DEPTH	  1024u
#define PROFILE_DEFAULT_MAX_LABELS	  64u
#define PROFILE_DEFAULT_MAX_SAMPLE_TYPES  16u
#define PROFILE_DEFAULT_MAX_LINE_LENGTH	  (1u << 20)

/* Fills *lim with the defaults above. */
void profile_limits__default(struct profile_limits *lim);

struct profile_value_type {
	uint32_t type; /* string ids */
	uint32_t unit;
};

struct profile_function {
	uint32_t name;	      /* display name, e.g. "./app.js:fib:5" */
	uint32_t system_name; /* e.g. the mangled or bare name "fib" */
	uint32_t filename;
	int64_t start_line;
};

#define PROFILE_MAPPING_HAS_FUNCTIONS	 0x1
#define PROFILE_MAPPING_HAS_FILENAMES	 0x2
#define PROFILE_MAPPING_HAS_LINE_NUMBERS 0x4
#define PROFILE_MAPPING_HAS_INLINE	 0x8

struct profile_mapping {
	uint64_t start;
	uint64_t limit;
	uint64_t offset;
	uint32_t filename;
	uint32_t build_id;
	uint32_t flags; /* PROFILE_MAPPING_HAS_* */
};

struct profile_line {
	uint32_t function; /* function id, non-zero */
	int64_t line;
	int64_t column;
};

/* lines[0] is the innermost (leaf-most) inlined frame, the last line the
 * function the code belongs to. A location may have no lines (unsymbolized). */
struct profile_location {
	uint32_t mapping; /* mapping id or 0 */
	uint64_t address;
	enum frame_kind kind;
	bool is_folded;
	uint32_t n_lines;
	const struct profile_line *lines;
};

struct profile_label {
	uint32_t key; /* string ids; a label has either str or num */
	uint32_t str;
	int64_t num;
	uint32_t num_unit;
};

struct profile_sample {
	uint32_t stack;	 /* stack id */
	uint32_t labels; /* label set id, 0 = none */
	const int64_t *values;
};

/* ---- construction ------------------------------------------------------ */

struct profile *profile__new(void);
void profile__free(struct profile *p);

/* Sizes the tables for the given numbers of strings, functions, locations,
 * stacks (and samples) and total stack frames, so that a decoder that knows
 * them up front fills the profile without regrowing or rehashing. A hint:
 * more may be added afterwards. */
int profile__reserve(struct profile *p, size_t strings, size_t functions, size_t locations,
		     size_t samples, size_t frames);

/* Interns a string (may contain NUL bytes). -E2BIG past UINT32_MAX strings. */
int profile__intern(struct profile *p, const char *s, size_t len, uint32_t *ret_id);
int profile__intern_cstr(struct profile *p, const char *s, uint32_t *ret_id);
const char *profile__str(const struct profile *p, uint32_t id); /* NULL if out of range */
size_t profile__strlen(const struct profile *p, uint32_t id);
size_t profile__n_strings(const struct profile *p);
/* The id of string s if the profile holds it, else 0. */
uint32_t profile__find_string(const struct profile *p, const char *s);

/* Sample types can only be added while the profile has no samples; at most
 * PROFILE_MAX_SAMPLE_TYPES. */
#define PROFILE_MAX_SAMPLE_TYPES 64
int profile__add_sample_type(struct profile *p, const char *type, const char *unit);
size_t profile__n_sample_types(const struct profile *p);
struct profile_value_type profile__sample_type(const struct profile *p, size_t i);
/* Index of the sample type named "type" or "type/unit", or -ENOENT. */
int profile__find_sample_type(const struct profile *p, const char *spec);
/* The index pprof tools show by default: default_sample_type if set, else
 * the last sample type. -ENOENT when there are none. */
int profile__default_sample_type(const struct profile *p);

int profile__set_period(struct profile *p, const char *type, const char *unit, int64_t period);
struct profile_value_type profile__period_type(const struct profile *p);
int64_t profile__period(const struct profile *p);
/* time_nanos and duration_nanos are not negative and their sum fits in
 * int64 (the pprof decoder refuses other ranges): callers add them. */
void profile__set_time(struct profile *p, int64_t time_nanos, int64_t duration_nanos);
int64_t profile__time_nanos(const struct profile *p);
int64_t profile__duration_nanos(const struct profile *p);

/* The pprof fields that braid only carries through (string ids). */
struct profile_meta {
	uint32_t default_sample_type;
	uint32_t drop_frames;
	uint32_t keep_frames;
	uint32_t doc_url;
};
struct profile_meta profile__meta(const struct profile *p);
void profile__set_meta(struct profile *p, const struct profile_meta *m);
int profile__add_comment(struct profile *p, uint32_t str);
size_t profile__comments(const struct profile *p, const uint32_t **ret_comments);

/* Functions, mappings and locations are deduplicated by content. */
int profile__add_function(struct profile *p, const struct profile_function *f, uint32_t *ret_id);
int profile__add_mapping(struct profile *p, const struct profile_mapping *m, uint32_t *ret_id);
int profile__add_location(struct profile *p, const struct profile_location *l, uint32_t *ret_id);
size_t profile__n_functions(const struct profile *p);
size_t profile__n_mappings(const struct profile *p);
size_t profile__n_locations(const struct profile *p);
const struct profile_function *profile__function(const struct profile *p, uint32_t id);
const struct profile_mapping *profile__mapping(const struct profile *p, uint32_t id);
/* Fills *ret with location id; -ENOENT if there is none. */
int profile__location(const struct profile *p, uint32_t id, struct profile_location *ret);

/* Stacks: location ids, leaf first. Hash-consed: the same sequence always
 * gives the same id. An empty stack is allowed. */
int profile__add_stack(struct profile *p, const uint32_t *locations, size_t n, uint32_t *ret_id);
/* The same in two steps, for decoders that add many stacks: the first
 * computes the stack's hash and starts loading the index slot it will probe;
 * the second adds the stack. Work done between them hides the cache miss. */
uint32_t profile__stack_hash(const struct profile *p, const uint32_t *locations, size_t n);
int profile__add_stack_hashed(struct profile *p, const uint32_t *locations, size_t n, uint32_t hash,
			      uint32_t *ret_id);
size_t profile__n_stacks(const struct profile *p);
/* Returns the depth and points *ret_locations at the ids (leaf first). */
size_t profile__stack(const struct profile *p, uint32_t id, const uint32_t **ret_locations);

/* Label sets: canonicalised (sorted by key, then value) and hash-consed; the
 * empty set is id 0. */
int profile__add_labels(struct profile *p, const struct profile_label *labels, size_t n,
			uint32_t *ret_id);
size_t profile__labels(const struct profile *p, uint32_t id,
		       const struct profile_label **ret_labels);

/* Adds values (one per sample type) to the sample (stack, labels), creating
 * it if needed. -EOVERFLOW if a sum would overflow int64 (nothing changed). */
int profile__add_sample(struct profile *p, uint32_t stack, uint32_t labels, const int64_t *values);
size_t profile__n_samples(const struct profile *p);
/* Samples in insertion order, i in [0, n_samples). */
struct profile_sample profile__sample(const struct profile *p, size_t i);

/* ---- operations -------------------------------------------------------- */

/* Sums each sample type over all samples into ret_totals (n_sample_types
 * values). -EOVERFLOW if a total does not fit in int64. */
int profile__totals(const struct profile *p, int64_t *ret_totals);

/* Adds every sample of src into dst (values summed per identical stack and
 * labels). The sample types must match by name and unit, in order; a dst
 * with no sample types and no samples takes src's. dst's period type and
 * period are kept (taken from src if unset); the time range becomes the
 * union of both. -EINVAL on mismatched types (dst unchanged). */
int profile__merge(struct profile *dst, const struct profile *src);

/* Adds samples samples[0 .. n) of src (indexes, as profile__sample's;
 * samples NULL: every one) into dst as profile__merge does, each with the string label label_key =
 * label_value added when label_key is not NULL (src's own label of that key
 * left out). The time range of dst is kept. -EINVAL for an index out of
 * range or mismatched types. */
int profile__copy_samples(struct profile *dst, const struct profile *src, const size_t *samples,
			  size_t n, const char *label_key, const char *label_value);

/* Multiplies every value of sample type i by ratios[i], rounding to the
 * nearest integer. -EINVAL for a ratio that is negative or not finite,
 * -EOVERFLOW if a result leaves int64 (dst unchanged in both cases). */
int profile__scale(struct profile *p, const double *ratios);

/* ---- function totals (as `go tool pprof -top`) ------------------------- */

struct profile_top_entry {
	uint32_t name; /* function name string id */
	int64_t flat;  /* value where the function is the leaf frame */
	int64_t cum;   /* value of stacks containing the function (once per stack) */
};

/* Computes flat and cumulative values per function name for sample type
 * `type_index`, sorted by flat descending, then name (pprof's -top order).
 * Inlined frames count as their own function; functions whose flat and
 * cum are both zero are left out. *ret_entries is malloc'ed;
 * the caller frees it. */
int profile__top(const struct profile *p, size_t type_index, struct profile_top_entry **ret_entries,
		 size_t *ret_n);

/* ---- pprof codec ------------------------------------------------------- */

/* Decodes a pprof (gzip detected by its 1f 8b magic; packed and unpacked
 * repeated fields both accepted). Every reference is checked. lim may be NULL
 * for the defaults. On error returns a negative errno (-EBADMSG malformed,
 * -EFBIG over the size cap, -E2BIG over a count cap, -ENOMEM) with a message
 * in err; on success *ret_profile is a new profile the caller frees. */
int profile__from_pprof(const void *data, size_t len, const struct profile_limits *lim,
			struct errbuf *err, struct profile **ret_profile);

/* Appends the pprof encoding of p to out, gzipped when `gzip` is true.
 * Locations whose kind differs from what their mapping implies are given a
 * pseudo mapping for their kind, so the kind survives the round trip. */
int profile__to_pprof(const struct profile *p, bool gzip, struct dynbuf *out);

/* ---- folded codec ------------------------------------------------------ */

struct profile_folded_opts {
	bool lines;	  /* Pyroscope "lines": one "a;b;c" per line, weight 1 */
	const char *type; /* sample type of a decoded profile; NULL = "samples" */
	const char *unit; /* NULL = "count" */
	bool annotate;	  /* on encode, suffix kernel frames "_[k]" and JIT "_[j]" */
};

/* Decodes Brendan Gregg's collapsed format ("a;b;c 12" per line, the count
 * after the last space; frames root first) or, with opts->lines, Pyroscope's
 * lines format. Blank lines are skipped; "_[k]" and "_[j]" suffixes set the
 * frame kind. A bad line is -EBADMSG with its line number in err. */
int profile__from_folded(const char *data, size_t len, const struct profile_folded_opts *opts,
			 const struct profile_limits *lim, struct errbuf *err,
			 struct profile **ret_profile);

/* Appends the collapsed form of sample type `type_index` to out: one line
 * per distinct stack name (values summed), sorted bytewise, zero lines left
 * out. A frame is its function name ("??" if empty); a location without lines
 * is "file+0xOFF" or "0xADDR". ';' and line breaks inside a name become '_'. */
int profile__to_folded(const struct profile *p, size_t type_index,
		       const struct profile_folded_opts *opts, struct dynbuf *out);

/* ---- any format -------------------------------------------------------- */

enum profile_format {
	PROFILE_FORMAT_AUTO = 0,
	PROFILE_FORMAT_PPROF,
	PROFILE_FORMAT_FOLDED,
	PROFILE_FORMAT_LINES,
	PROFILE_FORMAT_JFR, /* a recording: see profile__from_jfr */
};

/* "auto", "pprof", "folded" (also "collapsed"), "lines", "jfr"; -EINVAL otherwise. */
int profile__parse_format(const char *name, enum profile_format *ret_format);
const char *profile__format_name(enum profile_format format);

/* Decodes data in `format`; AUTO tells pprof from folded text by content
 * (text has no NUL or control bytes other than tab and line breaks in its
 * first 64 KiB). Gzipped input of either kind is inflated first, under
 * lim->max_decompressed. opts applies to folded/lines (may be NULL). A JFR
 * recording (AUTO knows it by its magic) gives the profile profile__from_jfr
 * makes of it at 100 Hz (the Java agent's rate) named "process_cpu", else its
 * first; profile__from_jfr gives them all.
 * *ret_format (may be NULL) receives the format that was decoded. */
int profile__decode(const void *data, size_t len, enum profile_format format,
		    const struct profile_folded_opts *opts, const struct profile_limits *lim,
		    struct errbuf *err, struct profile **ret_profile,
		    enum profile_format *ret_format);

/* ---- JFR reader -------------------------------------------------------- */

/* What a JFR push says beside its recording, as Pyroscope's converter takes
 * it (docs/jfr.md). */
struct profile_jfr_opts {
	int64_t sample_rate;	/* Hz: a CPU or wall sample weighs 1e9 / rate ns (0: 0) */
	int64_t time_nanos;	/* the push's from */
	int64_t duration_nanos; /* until - from */
	const void *labels;	/* the push's `labels` part (gzip detected), NULL if none */
	size_t labels_len;
	/* also label each sample "os_thread_id": its thread's OS id (the
	 * merger's, to match eBPF threads; Pyroscope has no such label) */
	bool os_thread_labels;
};

struct profile_jfr_entry {
	const char *name;   /* "process_cpu:cpu", "wall:wall", "memory:alloc_in_new_tlab_objects",
			     * "memory:alloc_outside_tlab_objects", "mutex:contentions",
			     * "block:contentions", "memory:live", "memory:alloc_sample_objects",
			     * "memory:malloc_objects": the metric and the first sample type */
	const char *metric; /* Pyroscope's __name__: process_cpu, wall, memory, mutex, block */
	struct profile *profile;
};

struct profile_jfr_stats {
	uint64_t chunks;
	uint64_t events;	 /* events of the kinds read */
	uint64_t unknown_stacks; /* samples whose stack trace no pool defines (dropped) */
	uint64_t frames_unknown; /* frames whose method or class no pool defines (dropped) */
};

struct profile_jfr {
	size_t n;
	struct profile_jfr_entry *entries; /* in the order of the names above */
	char jfr_event[64];		   /* the recording's "event" setting, "" if none */
	struct profile_jfr_stats stats;
};

/* Reads a JFR recording (gzipped or not: inflated under lim->max_decompressed),
 * as the Pyroscope Java agent pushes it, into one profile per kind of event.
 * Each is what Pyroscope's converter makes of the same recording: its sample
 * types, period type, frame names ("class.method", leaf first, with line
 * numbers), labels (the agent's context labels, profile_id, span_name,
 * trace_id) and values. Frames carry their JFR frame type as kind (Java:
 * interpreted; native and C++: native; kernel). lim may be NULL for the
 * defaults. -EBADMSG with the offset on a malformed recording, -EFBIG or
 * -E2BIG over a cap, -ENOMEM; on success *ret is the caller's to free. */
int profile__from_jfr(const void *data, size_t len, const struct profile_jfr_opts *opts,
		      const struct profile_limits *lim, struct errbuf *err,
		      struct profile_jfr **ret);
void profile_jfr__free(struct profile_jfr *j);
/* The parts of a JFR push's multipart form whose first line is its
 * boundary ("--BOUNDARY", as the agent sends it and braid stores it):
 * pointers into form. -EBADMSG (message in err) without a `jfr` part. */
struct profile_jfr_parts {
	const void *jfr;
	size_t jfr_len;
	const void *labels; /* NULL: none */
	size_t labels_len;
};
int profile__jfr_form_parts(const void *form, size_t len, struct profile_jfr_parts *ret,
			    struct errbuf *err);

/* Whether data (not gzipped) starts as a JFR recording does. */
bool profile__is_jfr(const void *data, size_t len);
/* The entry of that name, or of that metric if one entry alone has it. */
const struct profile_jfr_entry *profile_jfr__find(const struct profile_jfr *j, const char *name);
/* Takes entry e's profile out of j (the caller frees it; j's entry has
 * none after). */
struct profile *profile_jfr__take(struct profile_jfr *j, const struct profile_jfr_entry *e);

#endif
