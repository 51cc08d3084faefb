/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JFR reader's private header: what profile/jfr_read.c (the file format:
 * chunk headers, metadata, constant pools, field values), profile/jfr_symbols.c
 * (Pyroscope's renaming of generated classes), profile/jfr_labels.c (the
 * Pyroscope agent's `labels` part) and profile/jfr.c (events into profiles)
 * share. Nothing here leaves profile/.
 *
 * The format, as the JDK writes it (jdk.jfr.internal) and async-profiler
 * copies it (docs/jfr.md):
 *   - a recording is a sequence of chunks, each self-contained: a 68-byte
 *     big-endian header ("FLR\0", version 2.x, size, offsets of the newest
 *     constant pool event and of the metadata event, times, features), then
 *     events;
 *   - every event is "size, type id, fields", integers as LEB128 varints
 *     (the header's feature bit 0; braid reads no other encoding);
 *   - the metadata event (type 0) describes every type: its fields, their
 *     types, whether a field is an array and whether its value is a key
 *     into a constant pool;
 *   - constant pool events (type 1) chain backwards from the header's offset
 *     and hold the pools: stack traces, methods, classes, symbols, threads...
 */
#ifndef BRAID_PROFILE_JFR_INT_H
#define BRAID_PROFILE_JFR_INT_H

#include "profile.h"

#define JFR_HEADER_BYTES 68
/* Caps of the format's own (the profile_limits cap the output). */
#define JFR_MAX_CHUNKS	       4096u
#define JFR_MAX_CLASSES	       65536u	   /* types in one chunk's metadata */
#define JFR_MAX_TYPE_ID	       1048576u	   /* type ids index a table */
#define JFR_MAX_FIELDS	       1048576u	   /* fields of all types */
#define JFR_MAX_META_STRINGS   1048576u	   /* the metadata's string table */
#define JFR_MAX_DEPTH	       32	   /* nesting: metadata elements, struct fields */
#define JFR_MAX_POOL_EVENTS    65536u	   /* constant pool events in one chunk */
#define JFR_MAX_POOL_ENTRIES   (16u << 20) /* constants of one kind kept in one chunk */
#define JFR_MAX_FRAMES	       (64u << 20) /* stack frames kept in one chunk */
#define JFR_MAX_STACK_FRAMES   65536u	   /* frames in one stack trace */
#define JFR_MAX_CONVERTED_TEXT (64u << 20) /* bytes of strings re-encoded to UTF-8 */

/* A string: bytes in the recording or in the chunk's arena, or (p NULL,
 * ref non-zero) a key into the java.lang.String pool, resolved on use. */
struct jfr_str {
	const char *p;
	uint32_t len;
	uint32_t ref; /* 1 + index into the chunk's string references; 0: none */
};

/* What a field's type is read as. */
enum jfr_prim {
	JFR_STRUCT = 0, /* the type's own fields, in order */
	JFR_BOOLEAN,
	JFR_BYTE,
	JFR_CHAR,
	JFR_SHORT,
	JFR_INT,
	JFR_LONG,
	JFR_FLOAT,
	JFR_DOUBLE,
	JFR_STRING,
};

/* How a field's value is read, decided once per chunk. */
enum jfr_op {
	JFR_OP_OTHER = 0, /* by its type (read_field) */
	JFR_OP_VARINT,	  /* an integer or a constant key */
	JFR_OP_BYTE,	  /* a boolean or a byte */
};

struct jfr_field {
	struct jfr_str name;
	uint64_t type; /* type id */
	int32_t cls;   /* index of the type in the chunk's classes */
	bool cpool;    /* the value is a constant pool key (a varint) */
	bool array;    /* a varint count, then the values */
	uint8_t op;    /* enum jfr_op */
};

struct jfr_class {
	uint64_t id;
	struct jfr_str name;
	uint32_t field0, n_fields; /* in the chunk's fields */
	enum jfr_prim prim;
	uint32_t min_size; /* the fewest bytes a value takes (0: none) */
	uint8_t sizing;	   /* 0 not yet, 1 being computed, 2 done */
};

/* The constant pools braid keeps (the others are read past). */
enum jfr_pool_kind {
	JFR_POOL_STRING = 0, /* java.lang.String: s */
	JFR_POOL_SYMBOL,     /* jdk.types.Symbol: s */
	JFR_POOL_CLASS,	     /* java.lang.Class: a = its name's symbol key */
	JFR_POOL_METHOD,     /* jdk.types.Method: a = class key, b = name symbol key */
	JFR_POOL_STACK,	     /* jdk.types.StackTrace: a = first frame, b = frames | truncated<<63 */
	JFR_POOL_FRAMETYPE,  /* jdk.types.FrameType: s = description */
	JFR_POOL_THREADSTATE, /* jdk.types.ThreadState: s = name */
	JFR_POOL_THREAD,      /* java.lang.Thread: a = OS thread id, b = Java thread id, s = name */
	JFR_POOL_COUNT
};

#define JFR_STACK_TRUNCATED (1ull << 63)

struct jfr_entry {
	uint64_t key;
	uint64_t a, b;
	struct jfr_str s;
};

/* A u64 → u32 index (keys of constants, of caches): small dense keys in a
 * direct table, the others by open addressing. */
struct jfr_map {
	uint64_t *keys;
	uint32_t *vals; /* 0: empty slot */
	size_t mask, n;
	uint32_t *dense; /* by key, 0: not there */
	size_t n_dense, n_dense_used;
};
int jfr_map__put(struct jfr_map *m, uint64_t key, uint32_t val);
/* The value under key, 0 if none. */
uint32_t jfr_map__get(const struct jfr_map *m, uint64_t key);
void jfr_map__clear(struct jfr_map *m);
void jfr_map__free(struct jfr_map *m);

struct jfr_pool {
	struct jfr_entry *v;
	size_t n, cap;
	struct jfr_map index; /* key → 1 + position in v (a redefinition wins) */
};

struct jfr_frame {
	uint64_t method;
	uint64_t type; /* frame type key */
	uint32_t line; /* as written: an int, -1 is 0xffffffff */
};

/* How to read one type's values: which field goes to which slot. */
struct jfr_binding {
	int32_t cls; /* -1: the type is not in this chunk */
	uint32_t n_fields;
	int8_t *slot; /* per field: a slot, or -1 to read past it */
};

/* One chunk's dictionary: its metadata and constant pools. Zeroed, then
 * jfr_chunk__open per chunk (it resets what the previous chunk left). */
struct jfr_chunk {
	const uint8_t *base;	    /* the recording (offsets in messages count from it) */
	const uint8_t *start, *end; /* this chunk */
	const uint8_t *events;	    /* the first event, after the header */
	int64_t start_nanos, duration_nanos, start_ticks, ticks_per_second;
	struct errbuf *err;
	struct arena arena;   /* metadata strings, converted strings */
	size_t converted;     /* bytes of text converted into the arena */
	struct jfr_str *mstr; /* the metadata's string table */
	size_t n_mstr, cap_mstr;
	struct jfr_class *classes;
	size_t n_classes, cap_classes;
	struct jfr_field *fields;
	size_t n_fields, cap_fields;
	int32_t *by_id; /* class index + 1 by type id, 0: none */
	size_t n_by_id;
	int32_t pool_class[JFR_POOL_COUNT]; /* class index of each kept pool, -1 */
	struct jfr_pool pools[JFR_POOL_COUNT];
	uint64_t *str_refs; /* java.lang.String keys that strings refer to */
	size_t n_str_refs, cap_str_refs;
	struct jfr_frame *frames;
	size_t n_frames, cap_frames;
	struct jfr_binding frame_binding; /* jdk.types.StackFrame's */
	bool pools_read;		  /* string keys resolve at once, not on use */
};

/* Reads the chunk at base + off (of len bytes in all): its header, metadata
 * and constant pools. -EBADMSG with a message naming the offset when the
 * chunk is malformed, -E2BIG over a cap, -ENOMEM. */
int jfr_chunk__open(struct jfr_chunk *c, const uint8_t *base, size_t len, size_t off,
		    struct errbuf *err);
void jfr_chunk__free(struct jfr_chunk *c);

/* The class index of type name, or -1. */
int32_t jfr_chunk__class(const struct jfr_chunk *c, const char *name);
/* The class index of a type id, or -1. */
static inline int32_t jfr_chunk__class_of(const struct jfr_chunk *c, uint64_t id)
{
	return id < c->n_by_id ? c->by_id[id] - 1 : -1;
}
/* The pool entry under key, or NULL. */
const struct jfr_entry *jfr_chunk__lookup(const struct jfr_chunk *c, enum jfr_pool_kind k,
					  uint64_t key);
/* A string with its reference, if any, resolved ("" if it is not defined). */
struct jfr_str jfr_chunk__str(const struct jfr_chunk *c, struct jfr_str s);

/* ---- reading an event's fields by name ------------------------------------ */

/* What a wanted field must be to be read (as Pyroscope's parser binds them:
 * a field of another type is read past, not misread). */
enum jfr_want_kind {
	JFR_WANT_LONG,	 /* long, not a constant */
	JFR_WANT_INT,	 /* int, not a constant */
	JFR_WANT_STRING, /* java.lang.String, inline */
	JFR_WANT_POOL,	 /* a key into pool `pool` */
};

struct jfr_want {
	const char *name;
	enum jfr_want_kind kind;
	enum jfr_pool_kind pool;
};

#define JFR_MAX_WANTS 16

union jfr_value {
	uint64_t u;
	struct jfr_str s;
};

/* Binds type `name`'s fields to the wants (slot i receives want i). The
 * binding lives in the chunk's arena: until the next jfr_chunk__open. */
int jfr_chunk__bind(struct jfr_chunk *c, const char *name, const struct jfr_want *wants, size_t n,
		    struct jfr_binding *ret);

/* Reads the event body [p, end) as the bound type: slots not read are 0. */
int jfr_chunk__read(struct jfr_chunk *c, const struct jfr_binding *b, const uint8_t *p,
		    const uint8_t *end, union jfr_value *slots);

/* Reads the next event at *pos (in [c->events, c->end)): its type and its
 * body, and moves *pos past it. 0 and *ret_type = UINT64_MAX at the chunk's
 * end. */
int jfr_chunk__next(const struct jfr_chunk *c, const uint8_t **pos, uint64_t *ret_type,
		    const uint8_t **ret_body, const uint8_t **ret_end);

/* ---- Pyroscope's names for generated classes (jfr_symbols.c) -------------- */

/* Pyroscope folds the names the JVM generates per class or per process
 * (lambdas, reflection accessors, CGLIB proxies, libraries extracted under
 * /tmp) into one name each. If s needs it, writes the new name into a (in
 * the arena) and returns true. */
bool jfr__normalize_symbol(struct jfr_str s, struct arena *a, struct jfr_str *ret);

/* ---- the agent's context labels (jfr_labels.c) ---------------------------- */

struct jfr_labels;
/* Decodes the Pyroscope agent's `labels` part (gzipped or not): contexts
 * (an id → label key and value string ids) and strings. NULL data gives an
 * empty snapshot. */
int jfr_labels__decode(const void *data, size_t len, const struct profile_limits *lim,
		       struct errbuf *err, struct jfr_labels **ret);
void jfr_labels__free(struct jfr_labels *l);
/* The labels of context id: n pairs of string ids into *ret (valid until
 * free); 0 if the context is not in the snapshot. */
size_t jfr_labels__context(const struct jfr_labels *l, int64_t id, const int64_t **ret_pairs);
/* The string of id, "" if none. */
const char *jfr_labels__string(const struct jfr_labels *l, int64_t id, size_t *ret_len);

#endif
