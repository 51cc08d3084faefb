/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: braid's durable buffer, one SQLite database (WAL mode) between
 * receiving and forwarding. The only module that speaks SQL.
 *
 * It holds the process table, the SDK profiles as received, eBPF samples in
 * per-second buckets (stacks and frames stored once, deduplicated by
 * content), the outbox of profiles waiting for the upstream, and dead
 * letters. See docs/store.md for the schema and the bounds.
 *
 * A `struct store` is one connection: open one per thread and never share
 * it. Connections of one process, or of several (`braid store stats` beside
 * a running agent), may use the same database at once: writers take turns
 * (BEGIN IMMEDIATE behind a busy timeout), readers never wait. No function
 * returns SQLITE_BUSY to its caller: after STORE_BUSY_TIMEOUT_MS of waiting
 * it gives -EBUSY.
 *
 * Every function returns 0 or a negative errno and leaves a message in the
 * handle (store__errmsg) or in `err`:
 *   -ENOSPC  the store is full (ingest answers 429): nothing was written
 *   -EBUSY   another writer held the database past the busy timeout
 *   -EIO     the database could not be read or written
 *   -EINVAL  a bad argument (a cap exceeded, a missing field)
 *   -ENOENT  no such row
 *   -ENOMEM
 * Writes are atomic: on error nothing of the call is kept.
 */
#ifndef BRAID_STORE_H
#define BRAID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/util.h"

struct store;

#define STORE_SCHEMA_VERSION	6
#define STORE_DB_NAME		"braid.db"
#define STORE_DEFAULT_MAX_BYTES (1ull << 30)		   /* 1 GiB */
#define STORE_DEFAULT_RETENTION (24ll * 3600 * 1000000000) /* 24 h in ns */
#define STORE_MIN_MAX_BYTES	(1ull << 20)		   /* the smallest bound accepted */
#define STORE_BUSY_TIMEOUT_MS	10000
#define STORE_DEFAULT_CACHE_KIB 16384		 /* a connection's page cache */
#define STORE_DEFAULT_DATA_DIR	"/var/lib/braid" /* for root */
#define STORE_USER_DATA_DIR	"./braid-data"	 /* for anyone else */

/* Caps on what a client controls, checked before anything is written. */
#define STORE_MAX_LABELS       64
#define STORE_MAX_LABEL_NAME   1024
#define STORE_MAX_LABEL_VALUE  2048
#define STORE_MAX_SAMPLE_TYPES 16
#define STORE_MAX_STRING       4096	  /* service, tenant, spy, format, comm, ... */
#define STORE_MAX_CMDLINE      (64 << 10) /* bytes of a process command line */
#define STORE_MAX_PAYLOAD      (64u << 20)
#define STORE_MAX_STACK_DEPTH  PROFILE_DEFAULT_MAX_STACK_DEPTH
#define STORE_MAX_FRAME_NAME   (16 << 10)

enum store_sync {
	/* fsync at WAL checkpoints only: a commit survives braid being killed
	 * (the kernel holds the written WAL), not a power cut. */
	STORE_SYNC_NORMAL = 0,
	/* fsync the WAL at every commit: a commit also survives a power cut. */
	STORE_SYNC_FULL,
};

struct store_options {
	const char *data_dir; /* NULL: store__default_data_dir() */
	uint64_t max_bytes;   /* bound on the data in the database; 0 = default */
	int64_t retention_ns; /* age past which rows are removed; 0 = default */
	enum store_sync sync;
	bool read_only;	 /* never writes, never creates: for looking inside */
	bool skip_check; /* skip PRAGMA quick_check at open (tests, benchmarks) */
	/* Tests of the migrations only: migrate no further than this version
	 * (a new file gets that old schema). 0: STORE_SCHEMA_VERSION. A store
	 * left at an old version is for raw SQL only: the calls below expect
	 * the current schema. */
	int migrate_to;
	/* SQLite's page cache of this connection, KiB; 0: STORE_DEFAULT_CACHE_KIB.
	 * A process with many connections (the agent) keeps each small: the
	 * caches fill as the database grows and stay that size. */
	unsigned cache_kib;
};

/* "/var/lib/braid" when running as root, else "./braid-data". */
const char *store__default_data_dir(void);

/* Opens (creating when missing, unless read_only) DATA_DIR/braid.db: the
 * directory is created 0700 and the file 0600; an existing file is checked
 * (PRAGMA quick_check, its application id and schema version) and migrated
 * forward, never recreated. On failure returns a negative errno with a
 * message naming the path in err. The caller closes the handle. */
int store__open(const struct store_options *opts, struct errbuf *err, struct store **ret_store);
void store__close(struct store *s);

/* Runs PRAGMA integrity_check (full = true) or quick_check; -EIO with
 * SQLite's first complaints in err when the database is damaged. */
int store__check(struct store *s, bool full, struct errbuf *err);

/* The message of the last failed call on this handle ("" if none). */
const char *store__errmsg(const struct store *s);
/* The database file's path. */
const char *store__path(const struct store *s);

/* Groups several writes into one transaction (the merger: outbox rows,
 * merged marks and the emitted watermark together). Calls made inside
 * join it; store__rollback undoes them all. Not nestable. */
int store__begin(struct store *s);
int store__commit(struct store *s);
void store__rollback(struct store *s);

/* ---- processes ---------------------------------------------------------- */

/* A process is a host PID together with its start time (so a reused PID is
 * another process). start_time_ns is wall-clock ns since the epoch (boot time
 * plus /proc/PID/stat's starttime), so it is unique across reboots too. */
struct store_process {
	int64_t id; /* the store's id (filled by reads) */
	int32_t pid;
	int64_t start_time_ns;
	const char *comm, *exe, *cmdline; /* NULL: unknown (an update keeps the old) */
	const char *service, *container_id;
	enum runtime runtime;
	int64_t first_seen_ns, last_seen_ns;
	int64_t ebpf_emitted_s; /* the merger's watermark: buckets before it were emitted */
};

/* Inserts the process or, if (pid, start_time_ns) is known, updates its
 * last_seen (to seen_ns) and every field given (non-NULL, non-unknown).
 * *ret_id gets its id. */
int store__put_process(struct store *s, const struct store_process *p, int64_t seen_ns,
		       int64_t *ret_id);
/* Reads a process by id; its strings stay valid until the next call on s. */
int store__get_process(struct store *s, int64_t id, struct store_process *ret);
/* Finds the id of (pid, start_time_ns); -ENOENT if unknown. */
int store__find_process(struct store *s, int32_t pid, int64_t start_time_ns, int64_t *ret_id);

struct store_process_query {
	const char *service;	   /* its service, or (no service) its comm; NULL: any */
	int32_t pid;		   /* 0: any */
	int64_t from_ns, until_ns; /* seen at some time in [from, until); 0, 0: any */
	size_t limit;		   /* 0: no limit */
};
typedef int (*store_process_fn)(void *ctx, const struct store_process *p);
/* Processes matching q, by first_seen_ns then id; strings valid during the
 * call only. */
int store__processes(struct store *s, const struct store_process_query *q, store_process_fn fn,
		     void *ctx);

/* A service with data: its processes' service (or comm when they declare
 * none), with what the store holds of it. */
struct store_service {
	const char *name;
	int64_t processes;
	int64_t ebpf_samples; /* in buckets at or after since */
	int64_t sdk_profiles; /* received at or after since */
	int64_t last_seen_ns;
};
typedef int (*store_service_fn)(void *ctx, const struct store_service *sv);
/* Services with eBPF samples or SDK profiles since since_ns, busiest first. */
int store__services(struct store *s, int64_t since_ns, store_service_fn fn, void *ctx);

/* ---- SDK profiles ------------------------------------------------------- */

/* How a push was attributed to a process, in order of trust. */
enum store_attribution {
	STORE_ATTR_NONE = 0,
	STORE_ATTR_PEER_TCP,	/* loopback TCP peer -> socket inode -> PID */
	STORE_ATTR_PEER_UNIX,	/* SO_PEERCRED of a Unix-socket peer */
	STORE_ATTR_PID_LABEL,	/* the push's pid label */
	STORE_ATTR_SERVICE_ENV, /* service name matched in a process's environment */
	STORE_ATTR_COUNT
};
const char *store__attribution_name(enum store_attribution a);

struct store_sample_type {
	const char *type; /* e.g. "cpu" */
	const char *unit; /* e.g. "nanoseconds" */
	int64_t total;	  /* sum over the profile's samples */
};

struct store_sdk_profile {
	int64_t id;		    /* filled by reads */
	int64_t received_ns;	    /* wall clock at receipt */
	const char *service;	    /* service_name ("unknown_service" if the push had none) */
	const char *profile_name;   /* __name__: "process_cpu", "wall", "memory", ... */
	const struct label *labels; /* every series label, in push order */
	size_t n_labels;
	const char *tenant; /* X-Scope-OrgID, NULL if none */
	const struct store_sample_type *types;
	size_t n_types;
	int64_t from_ns, until_ns;
	const char *spy_name;	 /* NULL: "unknown" */
	const char *format;	 /* "pprof", "folded", "lines" */
	int64_t sample_rate;	 /* Hz, 0 unknown */
	const char *units;	 /* legacy ingest's units, NULL if none */
	const char *aggregation; /* "sum" / "average", NULL if none */
	int64_t process_id;	 /* 0: not attributed */
	enum store_attribution attribution;
	/* The body exactly as received. Stored gzipped: a body that is not
	 * gzip already is compressed here and inflated again by reads. */
	const void *payload;
	size_t payload_len;
	bool merged;	/* reads: the merger has used it */
	bool forwarded; /* reads: its pass-through copy reached the upstream */
	/* reads: it describes CPU or wall time, so the merger can splice eBPF
	 * stacks into it (not memory, allocations, locks, goroutines...): a
	 * sample type named "cpu" or "wall", or a profile_name of process_cpu,
	 * cpu, wall or itimer. A put works it out from types and profile_name
	 * and ignores this field. */
	bool cpu_time;
	/* reads: its pass-through copy is in the outbox (or was: forwarded,
	 * or a dead letter). A put stores false; store__outbox_add of an item
	 * with its sdk_profile_id sets it. */
	bool queued;
};

/* Commits the profile, cpu_time worked out and queued false; returns only
 * once the row is durable (at the handle's sync level), so the caller may
 * acknowledge it. -ENOSPC when the store is full even after dropping the
 * oldest eBPF buckets: nothing is written and the refusal is counted.
 * *ret_id gets the new row's id. */
int store__put_sdk_profile(struct store *s, const struct store_sdk_profile *p, int64_t *ret_id);

/* Called once per profile; every pointer in p is valid only during the call
 * (payload: the bytes as received). A non-zero return stops the walk and is
 * returned. */
typedef int (*store_sdk_fn)(void *ctx, const struct store_sdk_profile *p);

/* Reads one profile. */
int store__get_sdk_profile(struct store *s, int64_t id, store_sdk_fn fn, void *ctx);

struct store_sdk_query {
	int64_t process_id;	   /* 0: any */
	const char *service;	   /* NULL: any */
	int64_t from_ns, until_ns; /* profiles overlapping [from, until); 0, 0: any */
	bool unmerged_only;
	bool cpu_time_only; /* only CPU and wall profiles (cpu_time) */
	bool unqueued_only; /* only profiles whose pass-through is not queued */
	bool with_payload;  /* false: p->payload is NULL (cheaper for listings) */
	size_t limit;	    /* 0: no limit */
};
/* Profiles matching q, by from_ns then id. */
int store__sdk_profiles(struct store *s, const struct store_sdk_query *q, store_sdk_fn fn,
			void *ctx);
/* Marks a profile as used by the merger. */
int store__sdk_mark_merged(struct store *s, int64_t id);

/* ---- eBPF buckets --------------------------------------------------------- */

/* Samples of one (process, thread, second, stack). */
struct store_bucket {
	int64_t process_id;
	int32_t tid;
	int64_t second;		    /* unix time, s */
	const struct frame *frames; /* leaf first */
	size_t n_frames;
	int64_t count;
	uint64_t thread_pointer; /* pthread_self() of the thread, 0: unknown */
};

/* Adds the rows of one drain in one transaction; rows for a bucket that
 * already exists add to its count. When the store is full the oldest
 * buckets are dropped to make room (and counted); if that is not enough,
 * these rows are dropped and counted and the call still returns 0 with
 * *ret_dropped (may be NULL) set to the number of rows not stored. */
int store__put_buckets(struct store *s, const struct store_bucket *rows, size_t n,
		       size_t *ret_dropped);

/* Called per bucket (frames valid only during the call). */
typedef int (*store_bucket_fn)(void *ctx, const struct store_bucket *b);
/* Buckets of a process with from_s <= second < until_s, by second, tid. */
int store__buckets(struct store *s, int64_t process_id, int64_t from_s, int64_t until_s,
		   store_bucket_fn fn, void *ctx);

/* A process whose eBPF samples wait to be emitted without SDK coverage. */
struct store_uncovered {
	const struct store_process *process;
	int64_t first_s, last_s; /* uncovered seconds in [watermark, before_s) */
	int64_t rows, samples;
	int64_t sdk_profiles; /* 1: a CPU SDK profile was attributed to it, else 0 */
};
typedef int (*store_uncovered_fn)(void *ctx, const struct store_uncovered *u);
/* Processes with buckets at or past their watermark and before before_s in
 * seconds that no CPU SDK profile (cpu_time) attributed to the process
 * covers: a process that pushes only heap profiles has its samples emitted
 * as if it had no SDK, rather than waiting for CPU coverage that never
 * comes. */
int store__uncovered(struct store *s, int64_t before_s, store_uncovered_fn fn, void *ctx);
/* Moves a process's watermark forward to until_s (never backward). */
int store__mark_emitted(struct store *s, int64_t process_id, int64_t until_s);

/* ---- outbox and dead letters ---------------------------------------------- */

struct store_outbox_item {
	int64_t id;	    /* filled by reads */
	const char *series; /* ordering key: one series is delivered in order */
	const char *tenant; /* NULL: none */
	const char *kind;   /* "merged", "ebpf", "sdk" */
	const struct label *labels;
	size_t n_labels;
	int64_t from_ns, until_ns;
	/* The profile to deliver (gzipped pprof), or, for an SDK profile sent
	 * on unchanged, sdk_profile_id and no payload (reads fill the SDK
	 * profile's payload as received). Both: a profile made from SDK
	 * profile sdk_profile_id (one of a JFR push's), queued in its place. */
	const void *payload;
	size_t payload_len;
	int64_t sdk_profile_id;
	bool converted; /* reads: both, so the payload is pprof */
	int64_t created_ns;
	int64_t attempts;
	int64_t next_attempt_ns;
	const char *last_error; /* NULL if none */
	/* The item's stable ID (the push API's RawSample.ID): a resend carries
	 * the same one. NULL on add: a new random UUID (version 4). */
	const char *raw_id;
};

/* Queues an item. One that passes SDK profile sdk_profile_id on marks that
 * profile queued in the same transaction: -ENOENT, and nothing written, if
 * there is no such profile. The profile is marked forwarded once the last
 * item of it is delivered. */
int store__outbox_add(struct store *s, const struct store_outbox_item *item, int64_t *ret_id);

typedef int (*store_outbox_fn)(void *ctx, const struct store_outbox_item *item);
/* Items due at now_ns, oldest first, at most max_items and (past the first)
 * max_bytes of payload. An item is due when its next attempt time has come
 * and no earlier item of its series is waiting: a series goes in order. */
int store__outbox_due(struct store *s, int64_t now_ns, size_t max_items, size_t max_bytes,
		      store_outbox_fn fn, void *ctx);
/* Delivered: removes the item (an SDK pass-through marks its profile
 * forwarded). */
int store__outbox_done(struct store *s, int64_t id);
/* Failed, to retry at next_attempt_ns: counts the attempt, keeps the error. */
int store__outbox_retry(struct store *s, int64_t id, int64_t next_attempt_ns, const char *error);
/* Failed for good: moves the item to the dead letters with the upstream's
 * status (0 if none) and the reason. */
int store__outbox_dead(struct store *s, int64_t id, int status, const char *reason);

/* Every outbox item (all = false: at most `limit`, oldest first). */
int store__outbox_list(struct store *s, size_t limit, store_outbox_fn fn, void *ctx);
struct store_dead_letter {
	int64_t id;
	const struct store_outbox_item *item; /* as it was when it died */
	int64_t died_ns;
	int status;
	const char *reason;
};
typedef int (*store_dead_fn)(void *ctx, const struct store_dead_letter *d);
int store__dead_letters(struct store *s, size_t limit, store_dead_fn fn, void *ctx);

/* ---- bounds, cleanup and counters ------------------------------------------ */

/* Everything dropped, refused or expired, since the store was created. */
enum store_counter {
	STORE_CTR_SDK_REFUSED_FULL,	   /* SDK profiles refused: store full (429) */
	STORE_CTR_SDK_EXPIRED,		   /* SDK profiles removed by retention */
	STORE_CTR_SDK_EXPIRED_UNFORWARDED, /* ... of which not yet forwarded */
	STORE_CTR_SDK_PRUNED,		   /* forwarded SDK profiles removed for room */
	STORE_CTR_EBPF_ROWS_DROPPED,	   /* stored buckets dropped for room */
	STORE_CTR_EBPF_SAMPLES_DROPPED,
	STORE_CTR_EBPF_ROWS_REFUSED, /* incoming buckets not stored: full */
	STORE_CTR_EBPF_SAMPLES_REFUSED,
	STORE_CTR_EBPF_ROWS_EXPIRED,		  /* buckets removed by retention */
	STORE_CTR_EBPF_SAMPLES_EXPIRED_UNEMITTED, /* ... never emitted */
	STORE_CTR_OUTBOX_REFUSED_FULL,		  /* outbox items refused: store full */
	STORE_CTR_OUTBOX_EXPIRED,		  /* outbox items removed by retention, unsent */
	STORE_CTR_DEAD_LETTERS,			  /* items moved to the dead letters */
	STORE_CTR_DEAD_EXPIRED,			  /* dead letters removed by retention */
	STORE_CTR_PROCESSES_EXPIRED,
	STORE_CTR_COUNT
};
/* The counter's name in stats and metrics, e.g. "sdk_profiles_refused_full". */
const char *store__counter_name(enum store_counter c);

enum store_table {
	STORE_TABLE_PROCESSES,
	STORE_TABLE_SDK_PROFILES,
	STORE_TABLE_EBPF_BUCKETS,
	STORE_TABLE_STACKS,
	STORE_TABLE_FRAMES,
	STORE_TABLE_OUTBOX,
	STORE_TABLE_DEAD_LETTERS,
	STORE_TABLE_COUNT
};
const char *store__table_name(enum store_table t);

struct store_table_stats {
	int64_t rows;
	int64_t bytes;		      /* pages of the table and its indexes (detailed only) */
	int64_t oldest_ns, newest_ns; /* 0 when empty or timeless */
};

struct store_stats {
	int schema_version;
	uint64_t max_bytes;
	int64_t retention_ns;
	uint64_t used_bytes; /* pages holding data */
	uint64_t file_bytes; /* the database file */
	uint64_t wal_bytes;  /* its write-ahead log */
	struct store_table_stats tables[STORE_TABLE_COUNT];
	int64_t counters[STORE_CTR_COUNT];
	int64_t ebpf_samples; /* sum of bucket counts */
	int64_t sdk_unmerged, sdk_unforwarded;
	int64_t sdk_unqueued;  /* SDK profiles whose pass-through is not queued */
	int64_t outbox_due;    /* items whose next attempt has come */
	uint64_t memory_bytes; /* SQLite's heap in this process, every connection's caches */
};

/* Fills *ret. `detailed` adds bytes per table, which reads every page (for
 * `braid store stats`). Without it, ebpf_samples and sdk_unforwarded still
 * read a whole table: not for a loop. */
int store__stats(struct store *s, bool detailed, struct store_stats *ret);

/* The cheap figures (for metrics, every few seconds): the rows per table,
 * the counters, the files' sizes, outbox_due and memory_bytes; the rest of
 * *ret is 0. The rows of a table walk its smallest index, so a table that
 * had more than 100,000 rows at this connection's last count is counted
 * again once a minute, its last count given in between. */
int store__row_stats(struct store *s, struct store_stats *ret);

/* What one cleanup pass removed. */
struct store_maintenance {
	int64_t sdk_expired, ebpf_rows_expired, outbox_expired, dead_expired;
	int64_t processes_removed, stacks_removed, frames_removed;
};

/* The periodic cleanup: removes what aged past retention (at now_ns),
 * bucket-less stacks and frames and forgotten processes, in short
 * transactions that never hold writers up long; then checkpoints the WAL.
 * ret may be NULL. */
int store__maintain(struct store *s, int64_t now_ns, struct store_maintenance *ret);

/* The wall clock in ns (CLOCK_REALTIME). */
int64_t store__now_ns(void);

#endif
