/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the SQLite buffer. The schema and the reasons behind it are in
 * docs/store.md; in short:
 *
 * - WAL mode, one connection per thread, statements prepared once per
 *   connection and reused. Writes run in BEGIN IMMEDIATE transactions, so
 *   writers queue on the busy handler instead of failing on a stale snapshot.
 * - Stacks and frames are stored once, keyed by a content hash that is
 *   checked against the content on lookup (so a collision only costs a probe).
 *   Each connection caches content -> id; a cleanup that deletes stacks bumps
 *   meta.gc_generation, and a connection that sees a new generation at the
 *   start of a write transaction forgets its caches.
 * - A stack's last_used_s is kept within STACK_TOUCH_S of the newest bucket
 *   that uses it, so a stack whose last_used_s + STACK_TOUCH_S is older than
 *   the oldest bucket has no bucket left and can go, without an index from
 *   buckets to stacks.
 * - The size bound counts the pages that hold data ((page_count -
 *   freelist_count) * page_size) and is checked inside the write transaction,
 *   before the row goes in; max_page_count is a hard ceiling a little above.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* "brad" in the database header: tells braid's file from any other SQLite
 * database that happens to sit at the path. */
#define STORE_APPLICATION_ID 0x62726164

/* A stack's last_used_s is refreshed when it is used this much later. */
#define STACK_TOUCH_S 60

/* Rows removed per transaction by the cleanup, so writers never wait long. */
#define CLEANUP_CHUNK 5000

/* Per-connection content caches (entries, a power of two). */
#define CACHE_SLOTS (1u << 17)

/* Two seeds: the first hash is the key on disk, the pair keys the caches. */
#define HASH_SEED_1 0x8f1bbcdcca62c1d6ULL
#define HASH_SEED_2 0x5a827999ed9eba1ULL

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_PAGE_COUNT,
	ST_FREELIST_COUNT,
	ST_GENERATION,
	ST_COUNTER_ADD,
	ST_PROCESS_UPSERT,
	ST_PROCESS_GET,
	ST_PROCESS_FIND,
	ST_SDK_INSERT,
	ST_SDK_GET,
	ST_SDK_MARK_MERGED,
	ST_SDK_MARK_QUEUED,
	ST_FRAME_FIND,
	ST_FRAME_INSERT,
	ST_FRAME_GET,
	ST_STACK_FIND,
	ST_STACK_INSERT,
	ST_STACK_TOUCH,
	ST_STACK_GET,
	ST_BUCKET_UPSERT,
	ST_BUCKET_LAST,
	ST_BUCKETS_RANGE,
	ST_OLDEST_SECOND,
	ST_SECOND_TOTALS,
	ST_SECOND_DELETE,
	ST_PRUNE_FORWARDED,
	ST_UNCOVERED,
	ST_MARK_EMITTED,
	ST_OUTBOX_INSERT,
	ST_OUTBOX_DUE,
	ST_OUTBOX_GET_SDK,
	ST_OUTBOX_DONE,
	ST_OUTBOX_FORWARDED,
	ST_OUTBOX_RETRY,
	ST_OUTBOX_TO_DEAD,
	ST_OUTBOX_DELETE,
	ST_OUTBOX_LIST,
	ST_DEAD_LIST,
	ST_COUNT
};

static const char *const store_stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT op",
	[ST_RELEASE] = "RELEASE op",
	[ST_ROLLBACK_TO] = "ROLLBACK TO op",
	[ST_PAGE_COUNT] = "PRAGMA page_count",
	[ST_FREELIST_COUNT] = "PRAGMA freelist_count",
	[ST_GENERATION] = "SELECT value FROM meta WHERE key = 'gc_generation'",
	[ST_COUNTER_ADD] = "INSERT INTO counters(name, value) VALUES (?1, ?2) "
			   "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
	[ST_PROCESS_UPSERT] =
		"INSERT INTO processes(pid, start_time_ns, comm, exe, cmdline, service, "
		"container_id, runtime, first_seen_ns, last_seen_ns) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) "
		"ON CONFLICT(pid, start_time_ns) DO UPDATE SET "
		"comm = coalesce(excluded.comm, comm), exe = coalesce(excluded.exe, exe), "
		"cmdline = coalesce(excluded.cmdline, cmdline), "
		"service = coalesce(excluded.service, service), "
		"container_id = coalesce(excluded.container_id, container_id), "
		"runtime = CASE excluded.runtime WHEN 'unknown' THEN runtime ELSE excluded.runtime "
		"END, "
		"last_seen_ns = max(last_seen_ns, excluded.last_seen_ns), "
		"first_seen_ns = min(first_seen_ns, excluded.first_seen_ns) "
		"RETURNING id",
	[ST_PROCESS_GET] = "SELECT id, pid, start_time_ns, comm, exe, cmdline, service, "
			   "container_id, runtime, first_seen_ns, last_seen_ns, ebpf_emitted_s "
			   "FROM processes WHERE id = ?1",
	[ST_PROCESS_FIND] = "SELECT id FROM processes WHERE pid = ?1 AND start_time_ns = ?2",
	[ST_SDK_INSERT] =
		"INSERT INTO sdk_profiles(received_ns, service, profile_name, labels, tenant, "
		"sample_types, from_ns, until_ns, spy_name, format, sample_rate, units, "
		"aggregation, process_id, attribution, payload, payload_gzipped, payload_len, "
		"cpu_time) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
		"?17, ?18, ?19)",
	[ST_SDK_GET] = "SELECT id, received_ns, service, profile_name, labels, tenant, "
		       "sample_types, from_ns, until_ns, spy_name, format, sample_rate, units, "
		       "aggregation, process_id, attribution, payload, payload_gzipped, "
		       "payload_len, merged, forwarded, cpu_time, queued FROM sdk_profiles "
		       "WHERE id = ?1",
	[ST_SDK_MARK_MERGED] = "UPDATE sdk_profiles SET merged = 1 WHERE id = ?1",
	[ST_SDK_MARK_QUEUED] = "UPDATE sdk_profiles SET queued = 1 WHERE id = ?1",
	[ST_FRAME_FIND] = "SELECT id, kind, name, module, offset FROM frames WHERE hash = ?1",
	[ST_FRAME_INSERT] = "INSERT INTO frames(hash, kind, name, module, offset) "
			    "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_FRAME_GET] = "SELECT kind, name, module, offset FROM frames WHERE id = ?1",
	[ST_STACK_FIND] = "SELECT id, frames, last_used_s FROM stacks WHERE hash = ?1",
	[ST_STACK_INSERT] = "INSERT INTO stacks(hash, frames, last_used_s) VALUES (?1, ?2, ?3)",
	[ST_STACK_TOUCH] = "UPDATE stacks SET last_used_s = max(last_used_s, ?2) WHERE id = ?1",
	[ST_STACK_GET] = "SELECT frames FROM stacks WHERE id = ?1",
	[ST_BUCKET_UPSERT] = "INSERT INTO ebpf_buckets(process_id, second, tid, stack_id, count) "
			     "VALUES (?1, ?2, ?3, ?4, ?5) "
			     "ON CONFLICT DO UPDATE SET count = count + excluded.count",
	[ST_BUCKET_LAST] =
		"UPDATE processes SET ebpf_last_s = ?2 WHERE id = ?1 AND ebpf_last_s < ?2",
	[ST_BUCKETS_RANGE] = "SELECT tid, second, stack_id, count FROM ebpf_buckets "
			     "WHERE process_id = ?1 AND second >= ?2 AND second < ?3 "
			     "ORDER BY second, tid, stack_id",
	[ST_OLDEST_SECOND] = "SELECT min(second) FROM ebpf_buckets",
	[ST_SECOND_TOTALS] = "SELECT count(*), total(count) FROM ebpf_buckets WHERE second = ?1",
	[ST_SECOND_DELETE] = "DELETE FROM ebpf_buckets WHERE second = ?1",
	/* forwarded SDK profiles no pending outbox item still needs */
	[ST_PRUNE_FORWARDED] =
		"DELETE FROM sdk_profiles WHERE id IN (SELECT id FROM sdk_profiles s "
		"WHERE forwarded = 1 AND NOT EXISTS (SELECT 1 FROM outbox o "
		"WHERE o.sdk_profile_id = s.id) ORDER BY received_ns LIMIT ?1)",
	/* only CPU and wall profiles cover a second: a process that pushes
	 * only heap profiles must not hold its samples back for ever */
	/* Processes first (CROSS JOIN keeps that order), each read from its
	 * watermark by the buckets' primary key: left to itself, SQLite read
	 * every bucket ever stored through the `second` index, a pass that
	 * grew with the store (93 ms at 153k buckets and 14k processes, 18 ms
	 * this way, sqlite3's own startup included). */
	[ST_UNCOVERED] =
		"SELECT p.id, min(b.second), max(b.second), count(*), total(b.count), "
		"(SELECT count(*) FROM sdk_profiles s WHERE s.process_id = p.id "
		"AND s.cpu_time = 1) "
		"FROM processes p CROSS JOIN ebpf_buckets b "
		"ON b.process_id = p.id AND b.second >= p.ebpf_emitted_s AND b.second < ?1 "
		"WHERE p.ebpf_last_s >= p.ebpf_emitted_s AND NOT EXISTS (SELECT 1 FROM "
		"sdk_profiles s WHERE s.process_id = p.id "
		"AND s.from_ns < (b.second + 1) * 1000000000 AND s.until_ns > b.second * "
		"1000000000 AND s.cpu_time = 1) "
		"GROUP BY p.id ORDER BY p.id",
	[ST_MARK_EMITTED] = "UPDATE processes SET ebpf_emitted_s = max(ebpf_emitted_s, ?2) "
			    "WHERE id = ?1",
	[ST_OUTBOX_INSERT] = "INSERT INTO outbox(created_ns, series, tenant, kind, labels, "
			     "from_ns, until_ns, payload, sdk_profile_id, next_attempt_ns, raw_id) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_OUTBOX_DUE] = "SELECT id, series, tenant, kind, labels, from_ns, until_ns, payload, "
			  "sdk_profile_id, created_ns, attempts, next_attempt_ns, last_error, "
			  "raw_id FROM outbox o "
			  "WHERE next_attempt_ns <= ?1 AND NOT EXISTS (SELECT 1 FROM outbox e "
			  "WHERE e.series = o.series AND e.id < o.id AND e.next_attempt_ns > ?1) "
			  "ORDER BY id",
	[ST_OUTBOX_GET_SDK] = "SELECT payload, payload_gzipped, payload_len FROM sdk_profiles "
			      "WHERE id = ?1",
	[ST_OUTBOX_DONE] = "DELETE FROM outbox WHERE id = ?1 RETURNING sdk_profile_id",
	[ST_OUTBOX_FORWARDED] = "UPDATE sdk_profiles SET forwarded = 1 WHERE id = ?1",
	[ST_OUTBOX_RETRY] = "UPDATE outbox SET attempts = attempts + 1, next_attempt_ns = ?2, "
			    "last_error = ?3 WHERE id = ?1",
	[ST_OUTBOX_TO_DEAD] =
		"INSERT INTO dead_letters(outbox_id, created_ns, died_ns, series, "
		"tenant, kind, labels, from_ns, until_ns, payload, sdk_profile_id, "
		"attempts, last_error, status, reason, raw_id) "
		"SELECT id, created_ns, ?2, series, tenant, kind, labels, from_ns, "
		"until_ns, payload, sdk_profile_id, attempts + 1, last_error, ?3, ?4, "
		"raw_id "
		"FROM outbox WHERE id = ?1",
	[ST_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ?1",
	[ST_OUTBOX_LIST] = "SELECT id, series, tenant, kind, labels, from_ns, until_ns, payload, "
			   "sdk_profile_id, created_ns, attempts, next_attempt_ns, last_error, "
			   "raw_id FROM outbox ORDER BY id LIMIT ?1",
	[ST_DEAD_LIST] = "SELECT id, series, tenant, kind, labels, from_ns, until_ns, payload, "
			 "sdk_profile_id, created_ns, attempts, 0, last_error, raw_id, died_ns, "
			 "status, reason FROM dead_letters ORDER BY id LIMIT ?1",
};

/* The schema, one script per version: migrations[i] takes a database from
 * user_version i to i + 1. Never edit a released step; add one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES ('gc_generation', 0);"
	"CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE processes("
	" id INTEGER PRIMARY KEY,"
	" pid INTEGER NOT NULL,"
	" start_time_ns INTEGER NOT NULL,"
	" comm TEXT, exe TEXT, cmdline TEXT, service TEXT, container_id TEXT,"
	" runtime TEXT NOT NULL,"
	" first_seen_ns INTEGER NOT NULL,"
	" last_seen_ns INTEGER NOT NULL,"
	" ebpf_emitted_s INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(pid, start_time_ns));"
	"CREATE TABLE sdk_profiles("
	" id INTEGER PRIMARY KEY,"
	" received_ns INTEGER NOT NULL,"
	" service TEXT NOT NULL,"
	" profile_name TEXT,"
	" labels BLOB NOT NULL,"
	" tenant TEXT,"
	" sample_types BLOB NOT NULL,"
	" from_ns INTEGER NOT NULL,"
	" until_ns INTEGER NOT NULL,"
	" spy_name TEXT NOT NULL,"
	" format TEXT NOT NULL,"
	" sample_rate INTEGER NOT NULL,"
	" units TEXT,"
	" aggregation TEXT,"
	" process_id INTEGER,"
	" attribution TEXT NOT NULL,"
	" payload BLOB NOT NULL,"
	" payload_gzipped INTEGER NOT NULL,"
	" payload_len INTEGER NOT NULL,"
	" merged INTEGER NOT NULL DEFAULT 0,"
	" forwarded INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX sdk_profiles_process ON sdk_profiles(process_id, from_ns);"
	"CREATE INDEX sdk_profiles_received ON sdk_profiles(received_ns);"
	"CREATE TABLE frames("
	" id INTEGER PRIMARY KEY,"
	" hash INTEGER NOT NULL,"
	" kind INTEGER NOT NULL,"
	" name TEXT NOT NULL,"
	" module TEXT NOT NULL,"
	" offset INTEGER NOT NULL);"
	"CREATE INDEX frames_hash ON frames(hash);"
	"CREATE TABLE stacks("
	" id INTEGER PRIMARY KEY,"
	" hash INTEGER NOT NULL,"
	" frames BLOB NOT NULL,"
	" last_used_s INTEGER NOT NULL);"
	"CREATE INDEX stacks_hash ON stacks(hash);"
	"CREATE TABLE ebpf_buckets("
	" process_id INTEGER NOT NULL,"
	" second INTEGER NOT NULL,"
	" tid INTEGER NOT NULL,"
	" stack_id INTEGER NOT NULL,"
	" count INTEGER NOT NULL,"
	" PRIMARY KEY(process_id, second, tid, stack_id)) WITHOUT ROWID;"
	"CREATE INDEX ebpf_buckets_second ON ebpf_buckets(second);"
	"CREATE TABLE outbox("
	" id INTEGER PRIMARY KEY,"
	" created_ns INTEGER NOT NULL,"
	" series TEXT NOT NULL,"
	" tenant TEXT,"
	" kind TEXT NOT NULL,"
	" labels BLOB NOT NULL,"
	" from_ns INTEGER NOT NULL,"
	" until_ns INTEGER NOT NULL,"
	" payload BLOB,"
	" sdk_profile_id INTEGER,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt_ns INTEGER NOT NULL,"
	" last_error TEXT);"
	"CREATE INDEX outbox_series ON outbox(series, id);"
	"CREATE INDEX outbox_next ON outbox(next_attempt_ns);"
	"CREATE INDEX outbox_sdk ON outbox(sdk_profile_id) WHERE sdk_profile_id IS NOT NULL;"
	"CREATE TABLE dead_letters("
	" id INTEGER PRIMARY KEY,"
	" outbox_id INTEGER NOT NULL,"
	" created_ns INTEGER NOT NULL,"
	" died_ns INTEGER NOT NULL,"
	" series TEXT NOT NULL,"
	" tenant TEXT,"
	" kind TEXT NOT NULL,"
	" labels BLOB NOT NULL,"
	" from_ns INTEGER NOT NULL,"
	" until_ns INTEGER NOT NULL,"
	" payload BLOB,"
	" sdk_profile_id INTEGER,"
	" attempts INTEGER NOT NULL,"
	" last_error TEXT,"
	" status INTEGER NOT NULL,"
	" reason TEXT NOT NULL);"
	"CREATE INDEX dead_letters_died ON dead_letters(died_ns);",
	/* 1 -> 2: the merger's two facts per SDK profile. braid_cpu_time() is
	 * store.c's rule (cpu_time_rule), registered by store_migrate() for as long
	 * as this step exists: the sample types are a NUL-string blob that SQL
	 * cannot split sanely. Only rows that change are written: an old row
	 * given a value is rewritten whole, payload included. */
	"ALTER TABLE sdk_profiles ADD COLUMN cpu_time INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE sdk_profiles ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;"
	"UPDATE sdk_profiles SET cpu_time = 1 WHERE braid_cpu_time(profile_name, sample_types);"
	"UPDATE sdk_profiles SET queued = 1 WHERE forwarded = 1"
	" OR id IN (SELECT sdk_profile_id FROM outbox WHERE sdk_profile_id IS NOT NULL)"
	" OR id IN (SELECT sdk_profile_id FROM dead_letters WHERE sdk_profile_id IS NOT NULL);"
	"CREATE INDEX sdk_profiles_unqueued ON sdk_profiles(id) WHERE queued = 0;",
	/* 2 -> 3: a stable ID per queued profile (the push API's RawSample.ID),
	 * so that a resend is recognisable upstream. Row ids are reused once
	 * the newest row is deleted: a random UUID is not. Rows queued before
	 * get theirs here, in UUID form (version 4, variant 1). */
	"ALTER TABLE outbox ADD COLUMN raw_id TEXT;"
	"ALTER TABLE dead_letters ADD COLUMN raw_id TEXT;"
	"UPDATE outbox SET raw_id = lower(hex(randomblob(16)));"
	"UPDATE outbox SET raw_id = substr(raw_id, 1, 8) || '-' || substr(raw_id, 9, 4) || '-4' ||"
	" substr(raw_id, 14, 3) || '-8' || substr(raw_id, 18, 3) || '-' || substr(raw_id, 21, 12);",
	/* 3 -> 4: the last second of each process's eBPF buckets (-1: none),
	 * kept by store__put_buckets, and a partial index of the processes
	 * with buckets at or past their watermark: store__uncovered visits
	 * those, not every process ever seen (a host that starts many
	 * short-lived processes keeps thousands of rows until retention). */
	"ALTER TABLE processes ADD COLUMN ebpf_last_s INTEGER NOT NULL DEFAULT -1;"
	"UPDATE processes SET ebpf_last_s ="
	" (SELECT max(b.second) FROM ebpf_buckets b WHERE b.process_id = processes.id)"
	" WHERE EXISTS (SELECT 1 FROM ebpf_buckets b WHERE b.process_id = processes.id);"
	"CREATE INDEX processes_ebpf_pending ON processes(id) WHERE ebpf_last_s >= ebpf_emitted_s;",
};
_Static_assert(UTIL_ARRAY_SIZE(migrations) == STORE_SCHEMA_VERSION,
	       "one migration step per schema version");

/* content -> id; h1 == 0 marks an empty slot */
struct cache_slot {
	uint64_t h1, h2;
	int64_t id;
	int64_t aux; /* stacks: last_used_s as stored */
};

/* A connection's caches have CACHE_SLOTS slots and start over when half
 * full; a read's memo (grow = true) starts small and doubles instead. */
struct cache {
	struct cache_slot *slots;
	size_t n, cap;
	bool grow;
};

struct store {
	sqlite3 *db;
	char *path;
	uint64_t max_bytes;
	int64_t retention_ns;
	int64_t page_size;
	bool read_only;
	struct write_lock *lock; /* shared by this process's connections to the file */
	bool locked;		 /* this connection holds it */
	bool user_tx;		 /* inside store__begin */
	bool tx_aborted;	 /* SQLite rolled the user's transaction back */
	int64_t generation;
	sqlite3_stmt *stmt[ST_COUNT];
	struct cache frames, stacks;
	struct dynbuf buf1, buf2, buf3; /* scratch */
	struct arena read_arena;	/* strings handed to callbacks */
	struct arena proc_arena;	/* strings of store__get_process */
	char errmsg[512];
};

static const char *const counter_names[STORE_CTR_COUNT] = {
	[STORE_CTR_SDK_REFUSED_FULL] = "sdk_profiles_refused_full",
	[STORE_CTR_SDK_EXPIRED] = "sdk_profiles_expired",
	[STORE_CTR_SDK_EXPIRED_UNFORWARDED] = "sdk_profiles_expired_unforwarded",
	[STORE_CTR_SDK_PRUNED] = "sdk_profiles_pruned_forwarded",
	[STORE_CTR_EBPF_ROWS_DROPPED] = "ebpf_rows_dropped_full",
	[STORE_CTR_EBPF_SAMPLES_DROPPED] = "ebpf_samples_dropped_full",
	[STORE_CTR_EBPF_ROWS_REFUSED] = "ebpf_rows_refused_full",
	[STORE_CTR_EBPF_SAMPLES_REFUSED] = "ebpf_samples_refused_full",
	[STORE_CTR_EBPF_ROWS_EXPIRED] = "ebpf_rows_expired",
	[STORE_CTR_EBPF_SAMPLES_EXPIRED_UNEMITTED] = "ebpf_samples_expired_unemitted",
	[STORE_CTR_OUTBOX_REFUSED_FULL] = "outbox_refused_full",
	[STORE_CTR_OUTBOX_EXPIRED] = "outbox_expired",
	[STORE_CTR_DEAD_LETTERS] = "dead_letters",
	[STORE_CTR_DEAD_EXPIRED] = "dead_letters_expired",
	[STORE_CTR_PROCESSES_EXPIRED] = "processes_expired",
};

static const char *const table_names[STORE_TABLE_COUNT] = {
	[STORE_TABLE_PROCESSES] = "processes",
	[STORE_TABLE_SDK_PROFILES] = "sdk_profiles",
	[STORE_TABLE_EBPF_BUCKETS] = "ebpf_buckets",
	[STORE_TABLE_STACKS] = "stacks",
	[STORE_TABLE_FRAMES] = "frames",
	[STORE_TABLE_OUTBOX] = "outbox",
	[STORE_TABLE_DEAD_LETTERS] = "dead_letters",
};

static const char *const runtime_names[STORE_RUNTIME_COUNT] = {
	[STORE_RUNTIME_UNKNOWN] = "unknown", [STORE_RUNTIME_NATIVE] = "native",
	[STORE_RUNTIME_NODE] = "node",	     [STORE_RUNTIME_PYTHON] = "python",
	[STORE_RUNTIME_RUBY] = "ruby",	     [STORE_RUNTIME_JVM] = "jvm",
	[STORE_RUNTIME_GO] = "go",	     [STORE_RUNTIME_DOTNET] = "dotnet",
};

static const char *const attribution_names[STORE_ATTR_COUNT] = {
	[STORE_ATTR_NONE] = "none",
	[STORE_ATTR_PEER_TCP] = "tcp-peer",
	[STORE_ATTR_PEER_UNIX] = "unix-peer",
	[STORE_ATTR_PID_LABEL] = "pid-label",
	[STORE_ATTR_SERVICE_ENV] = "service-env",
};

const char *store__counter_name(enum store_counter c)
{
	return (unsigned)c < STORE_CTR_COUNT ? counter_names[c] : "?";
}

const char *store__table_name(enum store_table t)
{
	return (unsigned)t < STORE_TABLE_COUNT ? table_names[t] : "?";
}

const char *store__runtime_name(enum store_runtime r)
{
	return (unsigned)r < STORE_RUNTIME_COUNT ? runtime_names[r] : "unknown";
}

const char *store__attribution_name(enum store_attribution a)
{
	return (unsigned)a < STORE_ATTR_COUNT ? attribution_names[a] : "none";
}

enum store_runtime store__runtime_parse(const char *name)
{
	for (int i = 0; name && i < STORE_RUNTIME_COUNT; i++)
		if (strcmp(name, runtime_names[i]) == 0)
			return (enum store_runtime)i;
	return STORE_RUNTIME_UNKNOWN;
}

static enum store_attribution attribution_parse(const char *name)
{
	for (int i = 0; name && i < STORE_ATTR_COUNT; i++)
		if (strcmp(name, attribution_names[i]) == 0)
			return (enum store_attribution)i;
	return STORE_ATTR_NONE;
}

int64_t store__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *store__default_data_dir(void)
{
	return geteuid() == 0 ? STORE_DEFAULT_DATA_DIR : STORE_USER_DATA_DIR;
}

const char *store__errmsg(const struct store *s)
{
	return s ? s->errmsg : "";
}

const char *store__path(const struct store *s)
{
	return s ? s->path : "";
}

/* ---- errors ---------------------------------------------------------------- */

static int errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CONSTRAINT:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
	case SQLITE_MISMATCH:
		return -EINVAL;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

static int store_fail(struct store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int store_fail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* Records SQLite's complaint about `what` and returns the errno for rc. */
static int store_db_fail(struct store *s, int rc, const char *what)
{
	int err = errno_of(rc);

	if (!err)
		err = -EIO;
	if (err == -EBUSY)
		return store_fail(s, err,
				  "%s: the database stayed locked by another writer for %d ms (%s)",
				  what, STORE_BUSY_TIMEOUT_MS, s->path);
	if (err == -ENOSPC) {
		struct statvfs fs;

		/* the disk, not braid's bound: say so, the operator's fix differs */
		if (statvfs(s->path, &fs) == 0 &&
		    (uint64_t)fs.f_bavail * fs.f_frsize < 2 * (uint64_t)s->page_size + (1u << 20))
			return store_fail(
				s, err,
				"%s: the filesystem holding %s is full (%" PRIu64 " KiB free)",
				what, s->path, (uint64_t)fs.f_bavail * fs.f_frsize / 1024);
		return store_fail(s, err, "%s: the store is full (%s)", what, s->path);
	}
	return store_fail(s, err, "%s: %s (%s)", what, sqlite3_errmsg(s->db), s->path);
}

/* ---- statements ------------------------------------------------------------- */

/* The statement `id`, prepared on first use and reset for reuse; NULL (with
 * the error in s) if it cannot be prepared. */
static sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *q = s->stmt[id];
	int rc;

	if (q) {
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
		return q;
	}
	rc = sqlite3_prepare_v3(s->db, store_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q, NULL);
	if (rc != SQLITE_OK) {
		store_db_fail(s, rc, "preparing a statement");
		return NULL;
	}
	s->stmt[id] = q;
	return q;
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int store_run(struct store *s, sqlite3_stmt *q, const char *what)
{
	int rc;

	if (!q)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		;
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : store_db_fail(s, rc, what);
}

/* Steps a statement expected to give one row; -ENOENT if it gives none. The
 * caller reads the columns, then resets. */
static int store_step_row(struct store *s, sqlite3_stmt *q, const char *what)
{
	int rc;

	if (!q)
		return -EIO;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		return 0;
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return store_db_fail(s, rc, what);
}

static int64_t store_query_int(struct store *s, enum stmt_id id, int *ret_err)
{
	sqlite3_stmt *q = store_stmt(s, id);
	int64_t v;
	int r = store_step_row(s, q, "reading the database");

	if (r < 0) {
		*ret_err = r == -ENOENT ? 0 : r;
		return 0;
	}
	v = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	*ret_err = 0;
	return v;
}

static int store_bind_text(sqlite3_stmt *q, int i, const char *v)
{
	return v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

static const char *store_col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

/* ---- caches ------------------------------------------------------------------ */

static void cache_clear(struct cache *c)
{
	if (c->slots && c->n)
		memset(c->slots, 0, c->cap * sizeof(*c->slots));
	c->n = 0;
}

static void store_cache_free(struct cache *c)
{
	free(c->slots);
	c->slots = NULL;
	c->n = c->cap = 0;
}

static struct cache_slot *store_cache_find(struct cache *c, uint64_t h1, uint64_t h2)
{
	size_t j, mask = c->cap - 1;

	if (!c->slots)
		return NULL;
	for (j = h1 & mask; c->slots[j].h1; j = (j + 1) & mask)
		if (c->slots[j].h1 == h1 && c->slots[j].h2 == h2)
			return &c->slots[j];
	return NULL;
}

static void cache_insert(struct cache_slot *slots, size_t cap, const struct cache_slot *e)
{
	size_t j;

	for (j = e->h1 & (cap - 1); slots[j].h1; j = (j + 1) & (cap - 1))
		;
	slots[j] = *e;
}

/* Remembers h -> id; NULL when memory is short (the connection caches are
 * an optimisation and go without; a memo's caller reports it). */
static struct cache_slot *store_cache_put(struct cache *c, uint64_t h1, uint64_t h2, int64_t id,
					  int64_t aux)
{
	struct cache_slot e = {h1 ? h1 : 1, h2, id, aux};

	if (!c->slots) {
		size_t cap = c->grow ? 1024 : CACHE_SLOTS;

		c->slots = calloc(cap, sizeof(*c->slots));
		if (!c->slots)
			return NULL;
		c->cap = cap;
	}
	if (c->n >= c->cap / 2) {
		if (!c->grow) {
			cache_clear(c);
		} else {
			struct cache_slot *ns = calloc(c->cap * 2, sizeof(*ns));

			if (!ns)
				return NULL;
			for (size_t i = 0; i < c->cap; i++)
				if (c->slots[i].h1)
					cache_insert(ns, c->cap * 2, &c->slots[i]);
			free(c->slots);
			c->slots = ns;
			c->cap *= 2;
		}
	}
	cache_insert(c->slots, c->cap, &e);
	c->n++;
	return store_cache_find(c, e.h1, h2);
}

static void store_caches_forget(struct store *s)
{
	cache_clear(&s->frames);
	cache_clear(&s->stacks);
}

/* ---- the in-process write lock ---------------------------------------------------- */

/* SQLite's busy handler polls with growing sleeps, so among writers of one
 * process the one that just committed nearly always wins again and the
 * others starve (one of two threads got 1 commit in 170 in a benchmark).
 * Writers of one process therefore queue on a mutex per database file
 * before BEGIN IMMEDIATE; the busy handler is left for other processes. */
struct write_lock {
	struct write_lock *next;
	pthread_mutex_t mu;
	dev_t dev;
	ino_t ino;
	int refs;
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct write_lock *locks;

static struct write_lock *write_lock_get(dev_t dev, ino_t ino)
{
	struct write_lock *l;

	pthread_mutex_lock(&locks_mu);
	for (l = locks; l; l = l->next)
		if (l->dev == dev && l->ino == ino)
			break;
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (l) {
			pthread_mutex_init(&l->mu, NULL);
			l->dev = dev;
			l->ino = ino;
			l->next = locks;
			locks = l;
		}
	}
	if (l)
		l->refs++;
	pthread_mutex_unlock(&locks_mu);
	return l;
}

static void write_lock_put(struct write_lock *l)
{
	struct write_lock **pp;

	if (!l)
		return;
	pthread_mutex_lock(&locks_mu);
	if (--l->refs == 0) {
		for (pp = &locks; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
		pthread_mutex_destroy(&l->mu);
		free(l);
	}
	pthread_mutex_unlock(&locks_mu);
}

static void tx_lock(struct store *s)
{
	if (s->lock && !s->locked) {
		pthread_mutex_lock(&s->lock->mu);
		s->locked = true;
	}
}

/* Called wherever an outer transaction ends (commit or rollback). */
static void store_tx_unlock(struct store *s)
{
	if (s->locked) {
		s->locked = false;
		pthread_mutex_unlock(&s->lock->mu);
	}
}

/* ---- transactions -------------------------------------------------------------- */

/* BEGIN IMMEDIATE, retried until the busy timeout has passed in all: the
 * busy handler already waits, but SQLite may still give BUSY at once when
 * waiting could deadlock (another connection's recovery of the WAL). */
static int store_begin_immediate(struct store *s)
{
	int64_t deadline = store__now_ns() + (int64_t)STORE_BUSY_TIMEOUT_MS * 1000000;
	sqlite3_stmt *q = store_stmt(s, ST_BEGIN);
	int rc;

	if (!q)
		return -EIO;
	tx_lock(s);
	for (;;) {
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc == SQLITE_DONE)
			return 0;
		if ((rc & 0xff) != SQLITE_BUSY || store__now_ns() > deadline) {
			store_tx_unlock(s);
			return store_db_fail(s, rc, "starting a transaction");
		}
		usleep(1000);
	}
}

/* Starts the write transaction of one call: BEGIN IMMEDIATE, or inside the
 * user's transaction a savepoint, so a failed call undoes only itself. */
static int store_op_begin(struct store *s)
{
	int r;

	if (s->read_only)
		return store_fail(s, -EROFS, "the store was opened read-only (%s)", s->path);
	if (s->user_tx) {
		if (s->tx_aborted)
			return store_fail(s, -EIO,
					  "the transaction was rolled back after an error (%s)",
					  s->path);
		r = store_run(s, store_stmt(s, ST_SAVEPOINT), "starting a savepoint");
	} else {
		r = store_begin_immediate(s);
	}
	return r < 0 ? r : 0;
}

/* Inside a write transaction: forgets the content caches if a cleanup
 * removed stacks since they were filled. Only writers of buckets use the
 * caches, so only they pay for the look. */
static int store_caches_check(struct store *s)
{
	int64_t gen;
	int r;

	gen = store_query_int(s, ST_GENERATION, &r);
	if (r < 0)
		return r;
	if (gen != s->generation) {
		store_caches_forget(s);
		s->generation = gen;
	}
	return 0;
}

/* Ends the call's transaction: commits (or releases the savepoint) when r is
 * 0, else rolls back and forgets the caches, which may hold ids of rows that
 * no longer exist. Returns r, or the commit's error. */
static int store_op_end(struct store *s, int r)
{
	char msg[sizeof(s->errmsg)];
	int c;

	if (r >= 0) {
		if (s->user_tx) {
			c = store_run(s, store_stmt(s, ST_RELEASE), "releasing a savepoint");
		} else {
			c = store_run(s, store_stmt(s, ST_COMMIT), "committing");
			if (c >= 0)
				store_tx_unlock(s);
		}
		if (c >= 0)
			return r;
		r = c;
	}
	memcpy(msg, s->errmsg, sizeof(msg));
	store_caches_forget(s);
	if (sqlite3_get_autocommit(s->db)) {
		/* SQLite already rolled everything back (SQLITE_FULL, IOERR) */
		if (s->user_tx)
			s->tx_aborted = true;
	} else if (s->user_tx) {
		store_run(s, store_stmt(s, ST_ROLLBACK_TO), "rolling back");
		store_run(s, store_stmt(s, ST_RELEASE), "releasing a savepoint");
	} else {
		store_run(s, store_stmt(s, ST_ROLLBACK), "rolling back");
	}
	if (!s->user_tx)
		store_tx_unlock(s);
	memcpy(s->errmsg, msg, sizeof(msg));
	return r;
}

int store__begin(struct store *s)
{
	int r;

	if (s->user_tx)
		return store_fail(s, -EINVAL, "a transaction is already open");
	if (s->read_only)
		return store_fail(s, -EROFS, "the store was opened read-only (%s)", s->path);
	r = store_begin_immediate(s);
	if (r < 0)
		return r;
	s->user_tx = true;
	s->tx_aborted = false;
	return 0;
}

int store__commit(struct store *s)
{
	int r;

	if (!s->user_tx)
		return store_fail(s, -EINVAL, "no transaction is open");
	s->user_tx = false;
	if (s->tx_aborted) {
		s->tx_aborted = false;
		store_tx_unlock(s);
		return store_fail(s, -EIO, "the transaction was rolled back after an error (%s)",
				  s->path);
	}
	r = store_run(s, store_stmt(s, ST_COMMIT), "committing");
	if (r < 0) {
		store_caches_forget(s);
		if (!sqlite3_get_autocommit(s->db))
			store_run(s, store_stmt(s, ST_ROLLBACK), "rolling back");
	}
	store_tx_unlock(s);
	return r;
}

void store__rollback(struct store *s)
{
	if (!s || !s->user_tx)
		return;
	s->user_tx = false;
	s->tx_aborted = false;
	store_caches_forget(s);
	if (!sqlite3_get_autocommit(s->db))
		store_run(s, store_stmt(s, ST_ROLLBACK), "rolling back");
	store_tx_unlock(s);
}

static int store_counter_add(struct store *s, enum store_counter c, int64_t n)
{
	sqlite3_stmt *q = store_stmt(s, ST_COUNTER_ADD);

	if (!n)
		return 0;
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, counter_names[c], -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, n);
	return store_run(s, q, "counting");
}

/* Adds to counters in a transaction of their own (after a refusal rolled
 * the call back). Counting is best effort: its failure is not the call's. */
static void store_counters_add_alone(struct store *s, const enum store_counter *c, const int64_t *n,
				     size_t k)
{
	char msg[sizeof(s->errmsg)];
	int r;

	memcpy(msg, s->errmsg, sizeof(msg));
	r = store_op_begin(s);
	for (size_t i = 0; r >= 0 && i < k; i++)
		r = store_counter_add(s, c[i], n[i]);
	if (r >= 0 || s->user_tx || !sqlite3_get_autocommit(s->db))
		store_op_end(s, r);
	memcpy(s->errmsg, msg, sizeof(msg));
}

/* ---- size bound ------------------------------------------------------------------ */

static int used_bytes(struct store *s, uint64_t *ret)
{
	int64_t pages, free_pages;
	int r;

	pages = store_query_int(s, ST_PAGE_COUNT, &r);
	if (r < 0)
		return r;
	free_pages = store_query_int(s, ST_FREELIST_COUNT, &r);
	if (r < 0)
		return r;
	*ret = (uint64_t)(pages - free_pages) * (uint64_t)s->page_size;
	return 0;
}

/* Drops the oldest second of buckets (if older than before_s). */
static int drop_oldest_second(struct store *s, int64_t before_s, bool *ret_dropped)
{
	sqlite3_stmt *q = store_stmt(s, ST_OLDEST_SECOND);
	int64_t second, rows, samples;
	int r;

	*ret_dropped = false;
	r = store_step_row(s, q, "finding the oldest eBPF bucket");
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (sqlite3_column_type(q, 0) == SQLITE_NULL) {
		sqlite3_reset(q);
		return 0;
	}
	second = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (second >= before_s)
		return 0;
	q = store_stmt(s, ST_SECOND_TOTALS);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, second);
	r = store_step_row(s, q, "counting eBPF buckets");
	if (r < 0)
		return r;
	rows = sqlite3_column_int64(q, 0);
	samples = (int64_t)sqlite3_column_double(q, 1);
	sqlite3_reset(q);
	q = store_stmt(s, ST_SECOND_DELETE);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, second);
	r = store_run(s, q, "dropping eBPF buckets");
	if (r < 0)
		return r;
	r = store_counter_add(s, STORE_CTR_EBPF_ROWS_DROPPED, rows);
	if (r >= 0)
		r = store_counter_add(s, STORE_CTR_EBPF_SAMPLES_DROPPED, samples);
	if (r < 0)
		return r;
	*ret_dropped = true;
	return 0;
}

/* The share of the bound that only the outbox may use: with the store full
 * of SDK profiles, the merger and forwarder can still queue and deliver
 * them, and delivered ones then make room. */
static uint64_t store_intake_limit(const struct store *s)
{
	return s->max_bytes - s->max_bytes / 32;
}

/* Makes room for `need` more bytes under `limit`, inside the caller's
 * write transaction: drops the oldest eBPF buckets (those before before_s)
 * one second at a time, then forwarded SDK profiles when allow_prune.
 * *ret_ok says whether the room is there. */
static int store_make_room(struct store *s, uint64_t need, uint64_t limit, int64_t before_s,
			   bool allow_prune, bool *ret_ok)
{
	uint64_t used;
	bool dropped;
	int r;

	*ret_ok = false;
	for (;;) {
		r = used_bytes(s, &used);
		if (r < 0)
			return r;
		if (used + need <= limit) {
			*ret_ok = true;
			return 0;
		}
		r = drop_oldest_second(s, before_s, &dropped);
		if (r < 0)
			return r;
		if (dropped)
			continue;
		if (!allow_prune)
			return 0;
		{
			sqlite3_stmt *q = store_stmt(s, ST_PRUNE_FORWARDED);
			int n;

			if (!q)
				return -EIO;
			sqlite3_bind_int64(q, 1, 64);
			r = store_run(s, q, "removing forwarded SDK profiles");
			if (r < 0)
				return r;
			n = sqlite3_changes(s->db);
			if (!n)
				return 0;
			r = store_counter_add(s, STORE_CTR_SDK_PRUNED, n);
			if (r < 0)
				return r;
		}
	}
}

static int store_full_error(struct store *s, const char *what)
{
	uint64_t used = 0;

	used_bytes(s, &used);
	return store_fail(s, -ENOSPC,
			  "store full: %s refused; %.1f of %.1f MiB hold data not yet forwarded or "
			  "expired (%s)",
			  what, used / 1048576.0, s->max_bytes / 1048576.0, s->path);
}

/* ---- value encodings -------------------------------------------------------------- */

/* Labels and sample types are stored as a blob of NUL-terminated strings
 * (name, value, name, value, ...): compact, and NUL cannot occur in them. */
static int put_strings(struct dynbuf *b, const char *s)
{
	return dynbuf__append(b, s ? s : "", strlen(s ? s : "") + 1);
}

static int store_check_string(struct store *s, const char *what, const char *v, size_t max)
{
	if (v && strlen(v) > max)
		return store_fail(s, -EINVAL, "%s is longer than %zu bytes", what, max);
	return 0;
}

static int store_encode_labels(struct store *s, const struct store_label *labels, size_t n,
			       struct dynbuf *out)
{
	int r = 0;

	dynbuf__reset(out);
	if (n > STORE_MAX_LABELS)
		return store_fail(s, -EINVAL, "%zu labels: at most %d", n, STORE_MAX_LABELS);
	if (n && !labels)
		return store_fail(s, -EINVAL, "labels missing");
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!labels[i].name || !labels[i].name[0])
			return store_fail(s, -EINVAL, "label %zu has no name", i);
		r = store_check_string(s, "a label name", labels[i].name, STORE_MAX_LABEL_NAME);
		if (r >= 0)
			r = store_check_string(s, "a label value", labels[i].value,
					       STORE_MAX_LABEL_VALUE);
		if (r >= 0)
			r = put_strings(out, labels[i].name);
		if (r >= 0)
			r = put_strings(out, labels[i].value);
	}
	return r;
}

/* Splits a NUL-string blob into up to `max` pointers (into the blob, which
 * must stay alive); returns how many, or -EBADMSG if it is not one. */
static int store_split_strings(const void *blob, size_t len, const char **out, size_t max)
{
	const char *p = blob, *end = p + len;
	size_t n = 0;

	if (len && end[-1] != '\0')
		return -EBADMSG;
	while (p < end) {
		if (n == max)
			return -EBADMSG;
		out[n++] = p;
		p += strlen(p) + 1;
	}
	return (int)n;
}

/* Decodes a label blob into arena-held labels. */
static int store_decode_labels(struct store *s, sqlite3_stmt *q, int col,
			       const struct store_label **ret_labels, size_t *ret_n)
{
	const char *parts[2 * STORE_MAX_LABELS];
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	const void *blob = sqlite3_column_blob(q, col);
	char *copy = arena__strndup(&s->read_arena, blob, len);
	struct store_label *labels;
	int n;

	if (!copy)
		return store_fail(s, -ENOMEM, "out of memory reading labels");
	n = store_split_strings(copy, len, parts, UTIL_ARRAY_SIZE(parts));
	if (n < 0 || n % 2)
		return store_fail(s, -EIO, "damaged label list in the database (%s)", s->path);
	labels = arena__alloc(&s->read_arena, sizeof(*labels) * (size_t)(n / 2 + 1));
	if (!labels)
		return store_fail(s, -ENOMEM, "out of memory reading labels");
	for (int i = 0; i < n / 2; i++)
		labels[i] = (struct store_label){parts[2 * i], parts[2 * i + 1]};
	*ret_labels = labels;
	*ret_n = (size_t)n / 2;
	return 0;
}

/* Sample types: type, unit and total (decimal) per entry. */
static int store_encode_types(struct store *s, const struct store_sample_type *types, size_t n,
			      struct dynbuf *out)
{
	int r = 0;

	dynbuf__reset(out);
	if (n > STORE_MAX_SAMPLE_TYPES)
		return store_fail(s, -EINVAL, "%zu sample types: at most %d", n,
				  STORE_MAX_SAMPLE_TYPES);
	if (n && !types)
		return store_fail(s, -EINVAL, "sample types missing");
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!types[i].type || !types[i].type[0])
			return store_fail(s, -EINVAL, "sample type %zu has no name", i);
		r = store_check_string(s, "a sample type", types[i].type, STORE_MAX_STRING);
		if (r >= 0)
			r = store_check_string(s, "a sample unit", types[i].unit, STORE_MAX_STRING);
		if (r >= 0)
			r = put_strings(out, types[i].type);
		if (r >= 0)
			r = put_strings(out, types[i].unit);
		if (r >= 0)
			r = dynbuf__printf(out, "%" PRId64, types[i].total);
		if (r >= 0)
			r = dynbuf__putc(out, '\0');
	}
	return r;
}

static int store_decode_types(struct store *s, sqlite3_stmt *q, int col,
			      const struct store_sample_type **ret_types, size_t *ret_n)
{
	const char *parts[3 * STORE_MAX_SAMPLE_TYPES];
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	char *copy = arena__strndup(&s->read_arena, sqlite3_column_blob(q, col), len);
	struct store_sample_type *types;
	int n;

	if (!copy)
		return store_fail(s, -ENOMEM, "out of memory reading sample types");
	n = store_split_strings(copy, len, parts, UTIL_ARRAY_SIZE(parts));
	if (n < 0 || n % 3)
		return store_fail(s, -EIO, "damaged sample type list in the database (%s)",
				  s->path);
	types = arena__alloc(&s->read_arena, sizeof(*types) * (size_t)(n / 3 + 1));
	if (!types)
		return store_fail(s, -ENOMEM, "out of memory reading sample types");
	for (int i = 0; i < n / 3; i++)
		types[i] = (struct store_sample_type){parts[3 * i], parts[3 * i + 1],
						      strtoll(parts[3 * i + 2], NULL, 10)};
	*ret_types = types;
	*ret_n = (size_t)n / 3;
	return 0;
}

/* Whether a profile describes CPU or wall time, which the merger can splice
 * eBPF stacks into (as opposed to memory, allocations, locks, goroutines):
 * a sample type named "cpu" or "wall" (any unit), or a __name__ of
 * process_cpu, cpu, wall or itimer. The one statement of the rule: puts and
 * the 1 -> 2 migration's backfill both come here. */
static bool cpu_time_rule(const char *profile_name, const struct store_sample_type *types, size_t n)
{
	static const char *const names[] = {"process_cpu", "cpu", "wall", "itimer"};

	for (size_t i = 0; profile_name && i < UTIL_ARRAY_SIZE(names); i++)
		if (strcmp(profile_name, names[i]) == 0)
			return true;
	for (size_t i = 0; i < n; i++)
		if (types[i].type &&
		    (strcmp(types[i].type, "cpu") == 0 || strcmp(types[i].type, "wall") == 0))
			return true;
	return false;
}

/* SQL braid_cpu_time(profile_name, sample_types): cpu_time_rule on a row as
 * stored, for the migration. A damaged type list counts as no types: a
 * migration that stopped on one odd row would leave the store unopenable. */
static void store_sql_cpu_time(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *parts[3 * STORE_MAX_SAMPLE_TYPES];
	struct store_sample_type types[STORE_MAX_SAMPLE_TYPES];
	const char *name;
	const void *blob;
	size_t len;
	int n;

	(void)argc;
	name = (const char *)sqlite3_value_text(argv[0]);
	blob = sqlite3_value_blob(argv[1]);
	len = (size_t)sqlite3_value_bytes(argv[1]);
	n = blob ? store_split_strings(blob, len, parts, UTIL_ARRAY_SIZE(parts)) : 0;
	if (n < 0 || n % 3)
		n = 0;
	for (int i = 0; i < n / 3; i++)
		types[i] = (struct store_sample_type){.type = parts[3 * i]};
	sqlite3_result_int(ctx, cpu_time_rule(name, types, (size_t)n / 3));
}

static const char *store_arena_text(struct store *s, sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	if (!t)
		return NULL;
	return arena__strndup(&s->read_arena, (const char *)t,
			      (size_t)sqlite3_column_bytes(q, col));
}

/* ---- open ---------------------------------------------------------------------- */

static int mkdir_p(const char *dir, struct errbuf *err)
{
	char path[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return errbuf__set(err, -ENAMETOOLONG, "bad data directory '%s'", dir);
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return errbuf__set(err, -errno, "cannot create the data directory %s: %s",
					   path, strerror(errno));
		*p = c;
		if (!c)
			break;
	}
	if (stat(dir, &st) < 0)
		return errbuf__set(err, -errno, "cannot use the data directory %s: %s", dir,
				   strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errbuf__set(err, -ENOTDIR, "the data directory %s is not a directory", dir);
	return 0;
}

static int store_exec_sql(struct store *s, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	int r = 0;

	if (rc != SQLITE_OK) {
		r = errno_of(rc);
		store_fail(s, r ? r : -EIO, "%s: %s (%s)", what, msg ? msg : sqlite3_errstr(rc),
			   s->path);
		r = r ? r : -EIO;
	}
	sqlite3_free(msg);
	return r;
}

/* One integer from a query (bound to `param` if it takes one): -ENOENT,
 * without a message, when it gives no row. */
static int store_scalar(struct store *s, const char *sql, int64_t param, int64_t *ret)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);

	if (rc == SQLITE_OK) {
		if (sqlite3_bind_parameter_count(q))
			sqlite3_bind_int64(q, 1, param);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW)
			*ret = sqlite3_column_type(q, 0) == SQLITE_FLOAT
				       ? (int64_t)sqlite3_column_double(q, 0)
				       : sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_db_fail(s, rc, "reading the database");
}

/* PRAGMA quick_check / integrity_check: "ok", or the first complaints. */
static int run_check(struct store *s, bool full)
{
	sqlite3_stmt *q = NULL;
	char msg[384] = "";
	size_t len = 0;
	bool ok = false;
	int rc;

	rc = sqlite3_prepare_v2(s->db,
				full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)", -1,
				&q, NULL);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *line = store_col_text(q, 0);

		if (line && strcmp(line, "ok") == 0) {
			ok = true;
			continue;
		}
		if (line && len + 3 < sizeof(msg))
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s",
						len ? "; " : "", line);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_fail(s, -EIO,
				  "the database %s is damaged or not a database (%s); braid never "
				  "recreates it: move it aside to start afresh",
				  s->path, sqlite3_errstr(rc));
	if (!ok)
		return store_fail(
			s, -EIO,
			"the database %s is damaged (%s); braid never recreates it: move it "
			"aside to start afresh",
			s->path, msg);
	return 0;
}

int store__check(struct store *s, bool full, struct errbuf *err)
{
	int r = run_check(s, full);

	if (r < 0)
		errbuf__set(err, r, "%s", s->errmsg);
	return r;
}

/* Brings the schema to `target` (STORE_SCHEMA_VERSION but in tests), one
 * step per transaction. */
static int store_migrate(struct store *s, int target)
{
	int64_t app_id, version, objects;
	int r;

	r = store_scalar(s, "PRAGMA application_id", 0, &app_id);
	if (r >= 0)
		r = store_scalar(s, "PRAGMA user_version", 0, &version);
	if (r >= 0)
		r = store_scalar(s, "SELECT count(*) FROM sqlite_schema", 0, &objects);
	if (r < 0)
		return store_fail(
			s, r,
			"cannot read %s: %s; braid never recreates it: move it aside to start "
			"afresh",
			s->path, sqlite3_errmsg(s->db));
	if (app_id != STORE_APPLICATION_ID && (app_id != 0 || objects != 0))
		return store_fail(s, -EINVAL, "%s is a SQLite database but not braid's", s->path);
	if (version > STORE_SCHEMA_VERSION)
		return store_fail(s, -EPROTO,
				  "%s has schema version %" PRId64
				  ", newer than this braid knows (%d): use a newer braid",
				  s->path, version, STORE_SCHEMA_VERSION);
	if (version >= target)
		return 0;
	if (s->read_only)
		return store_fail(s, -EROFS,
				  "%s has schema version %" PRId64
				  " and needs migrating to %d: open it once read-write",
				  s->path, version, target);
	/* the steps' scripts may call it (1 -> 2); direct SQL only, never
	 * from the schema, so the file stays readable without braid */
	r = sqlite3_create_function_v2(s->db, "braid_cpu_time", 2,
				       SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, NULL,
				       store_sql_cpu_time, NULL, NULL, NULL);
	if (r != SQLITE_OK)
		return store_db_fail(s, r, "migrating the schema");
	for (int64_t v = version; v < target; v++) {
		char tail[96];

		r = store_begin_immediate(s);
		if (r < 0)
			return r;
		/* another process may have migrated while we waited */
		r = store_scalar(s, "PRAGMA user_version", 0, &version);
		if (r >= 0 && version > v) {
			r = store_exec_sql(s, "COMMIT", "committing");
			store_tx_unlock(s);
			v = version - 1;
			if (r < 0)
				return r;
			continue;
		}
		if (r >= 0)
			r = store_exec_sql(s, migrations[v], "migrating the schema");
		snprintf(tail, sizeof(tail),
			 "PRAGMA application_id = %d; PRAGMA user_version = %" PRId64,
			 STORE_APPLICATION_ID, v + 1);
		if (r >= 0)
			r = store_exec_sql(s, tail, "migrating the schema");
		if (r >= 0)
			r = store_exec_sql(s, "COMMIT", "committing the migration");
		if (r < 0 && !sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		store_tx_unlock(s);
		if (r < 0)
			return r;
	}
	return 0;
}

static int configure(struct store *s, const struct store_options *opts)
{
	char sql[256];
	int64_t v;
	int r;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	if (!s->read_only) {
		/* WAL: readers never block the writer; the mode is stored in the file */
		sqlite3_stmt *q = NULL;
		int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
		const char *mode = NULL;

		if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
			mode = store_col_text(q, 0);
		if (!mode || strcmp(mode, "wal") != 0) {
			r = store_fail(
				s, -EIO,
				"cannot open %s: %s; braid never recreates it: move it aside to "
				"start afresh",
				s->path,
				rc == SQLITE_ROW ? "WAL mode refused" : sqlite3_errstr(rc));
			sqlite3_finalize(q);
			return r;
		}
		sqlite3_finalize(q);
	}
	snprintf(sql, sizeof(sql),
		 "PRAGMA synchronous = %s; PRAGMA secure_delete = OFF; PRAGMA temp_store = MEMORY;"
		 "PRAGMA cache_size = -%u; PRAGMA journal_size_limit = 67108864;",
		 opts->sync == STORE_SYNC_FULL ? "FULL" : "NORMAL",
		 opts->cache_kib ? opts->cache_kib : STORE_DEFAULT_CACHE_KIB);
	r = store_exec_sql(s, sql, "configuring the connection");
	if (r < 0)
		return store_fail(
			s, r,
			"cannot open %s: %s; braid never recreates it: move it aside to start "
			"afresh",
			s->path, sqlite3_errmsg(s->db));
	r = store_scalar(s, "PRAGMA page_size", 0, &v);
	if (r < 0)
		return r;
	s->page_size = v > 0 ? v : 4096;
	if (!s->read_only) {
		/* a hard ceiling a little above the bound: the bound is enforced
		 * before writing, this only catches an estimate gone wrong */
		uint64_t pages = s->max_bytes / (uint64_t)s->page_size;

		pages += pages / 16 + 256;
		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %" PRIu64, pages);
		r = store_exec_sql(s, sql, "configuring the connection");
	}
	return r;
}

/* A writer records the bounds it enforces, so that a reader (`braid store
 * stats` beside the agent) shows them rather than its own defaults. */
static int bounds_meta(struct store *s, const struct store_options *opts)
{
	char sql[256];
	int64_t v;

	if (!s->read_only) {
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO meta(key, value) VALUES ('max_bytes', %" PRIu64
			 "), ('retention_ns', %" PRId64 ")",
			 s->max_bytes, s->retention_ns);
		return store_exec_sql(s, sql, "recording the bounds");
	}
	if (!opts->max_bytes &&
	    store_scalar(s, "SELECT value FROM meta WHERE key = 'max_bytes'", 0, &v) >= 0 && v > 0)
		s->max_bytes = (uint64_t)v;
	if (!opts->retention_ns &&
	    store_scalar(s, "SELECT value FROM meta WHERE key = 'retention_ns'", 0, &v) >= 0 &&
	    v > 0)
		s->retention_ns = v;
	return 0;
}

int store__open(const struct store_options *opts, struct errbuf *err, struct store **ret_store)
{
	struct store_options defaults = {0};
	struct store *s = NULL;
	const char *dir;
	struct stat sb;
	size_t len;
	int fd, r, rc;

	if (!opts)
		opts = &defaults;
	dir = opts->data_dir && opts->data_dir[0] ? opts->data_dir : store__default_data_dir();
	if (opts->max_bytes && opts->max_bytes < STORE_MIN_MAX_BYTES)
		return errbuf__set(err, -EINVAL, "the store's size bound must be at least %u MiB",
				   (unsigned)(STORE_MIN_MAX_BYTES >> 20));
	if (opts->retention_ns < 0)
		return errbuf__set(err, -EINVAL, "the retention must be positive");
	s = calloc(1, sizeof(*s));
	if (!s)
		return errbuf__set(err, -ENOMEM, "out of memory");
	s->max_bytes = opts->max_bytes ? opts->max_bytes : STORE_DEFAULT_MAX_BYTES;
	s->retention_ns = opts->retention_ns ? opts->retention_ns : STORE_DEFAULT_RETENTION;
	s->read_only = opts->read_only;
	s->generation = -1;
	dynbuf__init(&s->buf1, 0);
	dynbuf__init(&s->buf2, 0);
	dynbuf__init(&s->buf3, 0);
	s->read_arena.limit = 0;
	len = strlen(dir) + sizeof("/" STORE_DB_NAME);
	s->path = malloc(len);
	if (!s->path) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	snprintf(s->path, len, "%s/%s", dir, STORE_DB_NAME);

	if (!s->read_only) {
		r = mkdir_p(dir, err);
		if (r < 0)
			goto cleanup;
		/* created here, 0600, before SQLite sees it: SQLite gives its WAL
		 * and shm files the database file's mode */
		fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			close(fd);
		} else if (errno != EEXIST) {
			r = errbuf__set(err, -errno, "cannot create %s: %s", s->path,
					strerror(errno));
			goto cleanup;
		}
	}
	if (stat(s->path, &sb) < 0) {
		if (errno == ENOENT)
			r = errbuf__set(err, -ENOENT, "no braid store at %s (wrong --data-dir?)",
					s->path);
		else
			r = errbuf__set(err, -errno, "cannot open %s: %s", s->path,
					strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = errbuf__set(err, -EINVAL, "%s is not a regular file", s->path);
		goto cleanup;
	}
	if (!s->read_only) {
		s->lock = write_lock_get(sb.st_dev, sb.st_ino);
		if (!s->lock) {
			r = errbuf__set(err, -ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	/* no SQLITE_OPEN_CREATE: a database that vanished is an error, never
	 * silently replaced by an empty one */
	rc = sqlite3_open_v2(s->path, &s->db,
			     (s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = errbuf__set(err, errno_of(rc) ? errno_of(rc) : -EIO, "cannot open %s: %s",
				s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto cleanup;
	}
	r = configure(s, opts);
	if (r >= 0 && !opts->skip_check)
		r = run_check(s, false);
	if (r >= 0)
		r = store_migrate(s, opts->migrate_to > 0 && opts->migrate_to < STORE_SCHEMA_VERSION
					     ? opts->migrate_to
					     : STORE_SCHEMA_VERSION);
	if (r >= 0)
		r = bounds_meta(s, opts);
	if (r < 0) {
		errbuf__set(err, r, "%s", s->errmsg);
		goto cleanup;
	}
	*ret_store = s;
	s = NULL;
	r = 0;
cleanup:
	store__close(s);
	return r;
}

void store__close(struct store *s)
{
	if (!s)
		return;
	if (s->user_tx)
		store__rollback(s);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	store_tx_unlock(s);
	write_lock_put(s->lock);
	store_cache_free(&s->frames);
	store_cache_free(&s->stacks);
	dynbuf__free(&s->buf1);
	dynbuf__free(&s->buf2);
	dynbuf__free(&s->buf3);
	arena__free(&s->read_arena);
	arena__free(&s->proc_arena);
	free(s->path);
	free(s);
}

/* ---- processes ------------------------------------------------------------------- */

int store__put_process(struct store *s, const struct store_process *p, int64_t seen_ns,
		       int64_t *ret_id)
{
	sqlite3_stmt *q;
	int64_t id = 0;
	int r;

	if (!p || p->pid <= 0)
		return store_fail(s, -EINVAL, "a process needs a PID");
	if ((r = store_check_string(s, "comm", p->comm, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "exe", p->exe, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "cmdline", p->cmdline, STORE_MAX_CMDLINE)) < 0 ||
	    (r = store_check_string(s, "service", p->service, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "container id", p->container_id, STORE_MAX_STRING)) < 0)
		return r;
	r = store_op_begin(s);
	if (r < 0)
		return r;
	q = store_stmt(s, ST_PROCESS_UPSERT);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int(q, 1, p->pid);
	sqlite3_bind_int64(q, 2, p->start_time_ns);
	store_bind_text(q, 3, p->comm);
	store_bind_text(q, 4, p->exe);
	store_bind_text(q, 5, p->cmdline);
	store_bind_text(q, 6, p->service);
	store_bind_text(q, 7, p->container_id);
	sqlite3_bind_text(q, 8, store__runtime_name(p->runtime), -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 9, seen_ns);
	r = store_step_row(s, q, "storing a process");
	if (r < 0)
		goto cleanup;
	id = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
cleanup:
	r = store_op_end(s, r);
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

static const char *proc_text(struct store *s, sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return t ? arena__strndup(&s->proc_arena, (const char *)t,
				  (size_t)sqlite3_column_bytes(q, col))
		 : NULL;
}

static void read_process(struct store *s, sqlite3_stmt *q, int c, struct store_process *p)
{
	*p = (struct store_process){
		.id = sqlite3_column_int64(q, c + 0),
		.pid = sqlite3_column_int(q, c + 1),
		.start_time_ns = sqlite3_column_int64(q, c + 2),
		.comm = proc_text(s, q, c + 3),
		.exe = proc_text(s, q, c + 4),
		.cmdline = proc_text(s, q, c + 5),
		.service = proc_text(s, q, c + 6),
		.container_id = proc_text(s, q, c + 7),
		.runtime = store__runtime_parse(store_col_text(q, c + 8)),
		.first_seen_ns = sqlite3_column_int64(q, c + 9),
		.last_seen_ns = sqlite3_column_int64(q, c + 10),
		.ebpf_emitted_s = sqlite3_column_int64(q, c + 11),
	};
}

int store__get_process(struct store *s, int64_t id, struct store_process *ret)
{
	sqlite3_stmt *q = store_stmt(s, ST_PROCESS_GET);
	int r;

	if (!q)
		return -EIO;
	/* its own arena: callers read processes while holding other rows */
	arena__reset(&s->proc_arena);
	sqlite3_bind_int64(q, 1, id);
	r = store_step_row(s, q, "reading a process");
	if (r == -ENOENT)
		return store_fail(s, r, "no process %" PRId64, id);
	if (r < 0)
		return r;
	read_process(s, q, 0, ret);
	sqlite3_reset(q);
	return 0;
}

int store__processes(struct store *s, const struct store_process_query *q, store_process_fn fn,
		     void *ctx)
{
	static const char sql[] =
		"SELECT id, pid, start_time_ns, comm, exe, cmdline, service, container_id, "
		"runtime, "
		"first_seen_ns, last_seen_ns, ebpf_emitted_s FROM processes "
		"WHERE (?1 IS NULL OR service = ?1 OR (service IS NULL AND comm = ?1)) "
		"AND (?2 = 0 OR pid = ?2) AND (?3 = 0 OR last_seen_ns >= ?3) "
		"AND (?4 = 0 OR first_seen_ns < ?4) ORDER BY first_seen_ns, id LIMIT ?5";
	sqlite3_stmt *st_ = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st_, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "listing processes");
	store_bind_text(st_, 1, q->service);
	sqlite3_bind_int(st_, 2, q->pid);
	sqlite3_bind_int64(st_, 3, q->from_ns);
	sqlite3_bind_int64(st_, 4, q->until_ns);
	sqlite3_bind_int64(st_, 5, q->limit ? (int64_t)q->limit : -1);
	while ((rc = sqlite3_step(st_)) == SQLITE_ROW) {
		struct store_process p;

		arena__reset(&s->proc_arena);
		read_process(s, st_, 0, &p);
		r = fn(ctx, &p);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing processes");
	sqlite3_finalize(st_);
	return r;
}

int store__services(struct store *s, int64_t since_ns, store_service_fn fn, void *ctx)
{
	/* one row per name: processes seen since, their bucket samples since,
	 * and SDK profiles received since under that service name */
	static const char sql[] =
		"WITH p AS (SELECT id, coalesce(service, comm, 'unknown_service') AS name, "
		"last_seen_ns FROM processes WHERE last_seen_ns >= ?1), "
		"e AS (SELECT p.name, count(DISTINCT p.id) AS procs, max(p.last_seen_ns) AS seen, "
		"coalesce((SELECT sum(b.count) FROM ebpf_buckets b JOIN p p2 ON b.process_id = "
		"p2.id "
		"WHERE p2.name = p.name AND b.second >= ?1 / 1000000000), 0) AS samples "
		"FROM p GROUP BY p.name), "
		"k AS (SELECT service AS name, count(*) AS n, max(received_ns) AS seen "
		"FROM sdk_profiles WHERE received_ns >= ?1 GROUP BY service) "
		"SELECT name, sum(procs), sum(samples), sum(n), max(seen) FROM ("
		"SELECT name, procs, samples, 0 AS n, seen FROM e UNION ALL "
		"SELECT name, 0, 0, n, seen FROM k) GROUP BY name "
		"ORDER BY sum(samples) + sum(n) DESC, name LIMIT 1000";
	sqlite3_stmt *st_ = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st_, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "listing services");
	sqlite3_bind_int64(st_, 1, since_ns);
	while ((rc = sqlite3_step(st_)) == SQLITE_ROW) {
		struct store_service sv = {
			.name = (const char *)sqlite3_column_text(st_, 0),
			.processes = sqlite3_column_int64(st_, 1),
			.ebpf_samples = sqlite3_column_int64(st_, 2),
			.sdk_profiles = sqlite3_column_int64(st_, 3),
			.last_seen_ns = sqlite3_column_int64(st_, 4),
		};

		if (!sv.name)
			continue;
		r = fn(ctx, &sv);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing services");
	sqlite3_finalize(st_);
	return r;
}

int store__find_process(struct store *s, int32_t pid, int64_t start_time_ns, int64_t *ret_id)
{
	sqlite3_stmt *q = store_stmt(s, ST_PROCESS_FIND);
	int r;

	if (!q)
		return -EIO;
	sqlite3_bind_int(q, 1, pid);
	sqlite3_bind_int64(q, 2, start_time_ns);
	r = store_step_row(s, q, "finding a process");
	if (r == -ENOENT)
		return store_fail(s, r, "no process with PID %d started at %" PRId64, pid,
				  start_time_ns);
	if (r < 0)
		return r;
	*ret_id = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return 0;
}

/* ---- SDK profiles ---------------------------------------------------------------- */

int store__put_sdk_profile(struct store *s, const struct store_sdk_profile *p, int64_t *ret_id)
{
	const void *payload;
	size_t payload_len;
	bool gzipped = false, ok;
	sqlite3_stmt *q;
	uint64_t need;
	int64_t id = 0;
	int r;

	if (!p || !p->service || !p->service[0])
		return store_fail(s, -EINVAL, "an SDK profile needs a service name");
	if (!p->format || !p->format[0])
		return store_fail(s, -EINVAL, "an SDK profile needs its format");
	if (!p->payload || !p->payload_len)
		return store_fail(s, -EINVAL, "an SDK profile needs a payload");
	if (p->payload_len > STORE_MAX_PAYLOAD)
		return store_fail(s, -EINVAL, "a payload of %zu bytes is over the %u MiB cap",
				  p->payload_len, STORE_MAX_PAYLOAD >> 20);
	if (p->until_ns < p->from_ns)
		return store_fail(s, -EINVAL,
				  "an SDK profile ends (%" PRId64 ") before it starts (%" PRId64
				  ")",
				  p->until_ns, p->from_ns);
	if ((unsigned)p->attribution >= STORE_ATTR_COUNT ||
	    (p->attribution != STORE_ATTR_NONE) != (p->process_id > 0))
		return store_fail(s, -EINVAL,
				  "an attribution needs a process, and a process an attribution");
	if ((r = store_check_string(s, "the service name", p->service, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the profile name", p->profile_name, STORE_MAX_STRING)) <
		    0 ||
	    (r = store_check_string(s, "the tenant", p->tenant, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the spy name", p->spy_name, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the format", p->format, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the units", p->units, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the aggregation", p->aggregation, STORE_MAX_STRING)) < 0)
		return r;
	r = store_encode_labels(s, p->labels, p->n_labels, &s->buf1);
	if (r >= 0)
		r = store_encode_types(s, p->types, p->n_types, &s->buf2);
	if (r < 0)
		return r == -ENOMEM ? store_fail(s, r, "out of memory") : r;
	payload = p->payload;
	payload_len = p->payload_len;
	if (!util__is_gzip(payload, payload_len)) {
		dynbuf__reset(&s->buf3);
		r = util__gzip(payload, payload_len, 1, &s->buf3);
		if (r < 0)
			return store_fail(s, r, "cannot compress the payload: %s", strerror(-r));
		payload = s->buf3.data;
		payload_len = s->buf3.len;
		gzipped = true;
	}
	/* the row, its index entries and a page split's worth of slack */
	need = payload_len + s->buf1.len + s->buf2.len + strlen(p->service) + 256 +
	       2 * (uint64_t)s->page_size;

	r = store_op_begin(s);
	if (r < 0)
		return r;
	r = store_make_room(s, need, store_intake_limit(s), INT64_MAX, true, &ok);
	if (r < 0)
		goto cleanup;
	if (!ok) {
		/* what was dropped stays dropped: a refused client retries, and
		 * each retry must not redo (and undo) the same work */
		r = store_counter_add(s, STORE_CTR_SDK_REFUSED_FULL, 1);
		r = store_op_end(s, r);
		return r < 0 ? r : store_full_error(s, "SDK profile");
	}
	q = store_stmt(s, ST_SDK_INSERT);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, p->received_ns ? p->received_ns : store__now_ns());
	store_bind_text(q, 2, p->service);
	store_bind_text(q, 3, p->profile_name);
	sqlite3_bind_blob(q, 4, s->buf1.data ? s->buf1.data : "", (int)s->buf1.len, SQLITE_STATIC);
	store_bind_text(q, 5, p->tenant);
	sqlite3_bind_blob(q, 6, s->buf2.data ? s->buf2.data : "", (int)s->buf2.len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, p->from_ns);
	sqlite3_bind_int64(q, 8, p->until_ns);
	store_bind_text(q, 9, p->spy_name ? p->spy_name : "unknown");
	store_bind_text(q, 10, p->format);
	sqlite3_bind_int64(q, 11, p->sample_rate);
	store_bind_text(q, 12, p->units);
	store_bind_text(q, 13, p->aggregation);
	if (p->process_id > 0)
		sqlite3_bind_int64(q, 14, p->process_id);
	sqlite3_bind_text(q, 15, store__attribution_name(p->attribution), -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 16, payload, (int)payload_len, SQLITE_STATIC);
	sqlite3_bind_int(q, 17, gzipped);
	sqlite3_bind_int64(q, 18, (int64_t)p->payload_len);
	sqlite3_bind_int(q, 19, cpu_time_rule(p->profile_name, p->types, p->n_types));
	r = store_run(s, q, "storing an SDK profile");
	if (r == -ENOSPC)
		r = store_full_error(s, "SDK profile");
	if (r >= 0)
		id = sqlite3_last_insert_rowid(s->db);
cleanup:
	r = store_op_end(s, r);
	if (r == -ENOSPC) {
		enum store_counter c = STORE_CTR_SDK_REFUSED_FULL;
		int64_t one = 1;

		store_counters_add_alone(s, &c, &one, 1);
	}
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

/* Points *ret at a payload column as received: inflated into s->buf3 when
 * braid compressed it. */
static int store_read_payload(struct store *s, sqlite3_stmt *q, int col, bool gzipped,
			      size_t orig_len, const void **ret, size_t *ret_len)
{
	const void *blob = sqlite3_column_blob(q, col);
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	struct errbuf e;
	int r;

	if (!gzipped) {
		*ret = blob;
		*ret_len = len;
		return 0;
	}
	dynbuf__reset(&s->buf3);
	r = util__gunzip(blob, len, orig_len, &e, &s->buf3);
	if (r < 0 || s->buf3.len != orig_len)
		return store_fail(s, -EIO,
				  "a stored payload does not inflate to its %zu bytes (%s)",
				  orig_len, s->path);
	*ret = s->buf3.data;
	*ret_len = s->buf3.len;
	return 0;
}

/* Reads the columns of ST_SDK_GET's shape (the listing query shares them). */
static int read_sdk(struct store *s, sqlite3_stmt *q, bool with_payload,
		    struct store_sdk_profile *p)
{
	int r;

	arena__reset(&s->read_arena);
	*p = (struct store_sdk_profile){
		.id = sqlite3_column_int64(q, 0),
		.received_ns = sqlite3_column_int64(q, 1),
		.service = store_arena_text(s, q, 2),
		.profile_name = store_arena_text(s, q, 3),
		.tenant = store_arena_text(s, q, 5),
		.from_ns = sqlite3_column_int64(q, 7),
		.until_ns = sqlite3_column_int64(q, 8),
		.spy_name = store_arena_text(s, q, 9),
		.format = store_arena_text(s, q, 10),
		.sample_rate = sqlite3_column_int64(q, 11),
		.units = store_arena_text(s, q, 12),
		.aggregation = store_arena_text(s, q, 13),
		.process_id = sqlite3_column_int64(q, 14),
		.attribution = attribution_parse(store_col_text(q, 15)),
		.payload_len = (size_t)sqlite3_column_int64(q, 18),
		.merged = sqlite3_column_int(q, 19) != 0,
		.forwarded = sqlite3_column_int(q, 20) != 0,
		.cpu_time = sqlite3_column_int(q, 21) != 0,
		.queued = sqlite3_column_int(q, 22) != 0,
	};
	r = store_decode_labels(s, q, 4, &p->labels, &p->n_labels);
	if (r >= 0)
		r = store_decode_types(s, q, 6, &p->types, &p->n_types);
	if (r >= 0 && with_payload)
		r = store_read_payload(s, q, 16, sqlite3_column_int(q, 17) != 0, p->payload_len,
				       &p->payload, &p->payload_len);
	return r;
}

int store__get_sdk_profile(struct store *s, int64_t id, store_sdk_fn fn, void *ctx)
{
	struct store_sdk_profile p;
	sqlite3_stmt *q = store_stmt(s, ST_SDK_GET);
	int r;

	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	r = store_step_row(s, q, "reading an SDK profile");
	if (r == -ENOENT)
		return store_fail(s, r, "no SDK profile %" PRId64, id);
	if (r < 0)
		return r;
	r = read_sdk(s, q, true, &p);
	if (r >= 0)
		r = fn(ctx, &p);
	sqlite3_reset(q);
	return r;
}

int store__sdk_profiles(struct store *s, const struct store_sdk_query *qy, store_sdk_fn fn,
			void *ctx)
{
	struct store_sdk_query all = {0};
	struct store_sdk_profile p;
	sqlite3_stmt *q = NULL;
	char sql[1024];
	int rc, r = 0;

	if (!qy)
		qy = &all;
	/* the query varies with the filters: prepared per call, which is cheap
	 * next to reading the rows. Only the filters asked for are written
	 * out, so the planner sees plain terms: process_id = ?1 AND from_ns <
	 * ?4 takes sdk_profiles_process, a lone queued = 0 the partial index
	 * sdk_profiles_unqueued (a term hidden in an OR takes neither). */
	snprintf(sql, sizeof(sql),
		 "SELECT id, received_ns, service, profile_name, labels, tenant, sample_types, "
		 "from_ns, until_ns, spy_name, format, sample_rate, units, aggregation, "
		 "process_id, attribution, %s, payload_gzipped, payload_len, merged, forwarded, "
		 "cpu_time, queued FROM sdk_profiles WHERE 1%s%s%s%s%s%s "
		 "ORDER BY from_ns, id LIMIT ?5",
		 qy->with_payload ? "payload" : "NULL",
		 qy->process_id ? " AND process_id = ?1" : "",
		 qy->service ? " AND service = ?2" : "",
		 qy->from_ns || qy->until_ns ? " AND from_ns < ?4 AND until_ns > ?3" : "",
		 qy->unmerged_only ? " AND merged = 0" : "",
		 qy->cpu_time_only ? " AND cpu_time = 1" : "",
		 qy->unqueued_only ? " AND queued = 0" : "");
	rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "listing SDK profiles");
	/* numbered parameters: those the text leaves out exist unused */
	sqlite3_bind_int64(q, 1, qy->process_id);
	store_bind_text(q, 2, qy->service);
	sqlite3_bind_int64(q, 3, qy->from_ns);
	sqlite3_bind_int64(q, 4, qy->until_ns);
	sqlite3_bind_int64(q, 5, qy->limit ? (int64_t)qy->limit : -1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		r = read_sdk(s, q, qy->with_payload, &p);
		if (r >= 0)
			r = fn(ctx, &p);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing SDK profiles");
	sqlite3_finalize(q);
	return r;
}

int store__sdk_mark_merged(struct store *s, int64_t id)
{
	sqlite3_stmt *q;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	q = store_stmt(s, ST_SDK_MARK_MERGED);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, id);
	r = store_run(s, q, "marking an SDK profile merged");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no SDK profile %" PRId64, id);
cleanup:
	return store_op_end(s, r);
}

/* ---- stacks and frames ------------------------------------------------------------- */

static int check_depth(struct store *s, const struct store_frame *f, size_t n)
{
	if (n > STORE_MAX_STACK_DEPTH)
		return store_fail(s, -EINVAL, "a stack of %zu frames: at most %d", n,
				  STORE_MAX_STACK_DEPTH);
	if (n && !f)
		return store_fail(s, -EINVAL, "frames missing");
	return 0;
}

/* Appends the frame's key bytes to b: kind, offset (little-endian), name
 * NUL, module NUL. The frame's own key and a stack's cache key (all its
 * frames' keys end to end) are both made of these. Checks the frame here,
 * where the lengths are known anyway: a bad frame fails the call, whose
 * transaction then keeps nothing. `i` names the frame in the message. */
static int frame_key_append(struct store *s, struct dynbuf *b, const struct store_frame *f,
			    size_t i)
{
	const char *name = f->name ? f->name : "", *module = f->module ? f->module : "";
	size_t nl = strlen(name) + 1, ml = strlen(module) + 1;
	unsigned char *p;
	int r;

	if ((unsigned)f->kind >= FRAME_KIND_COUNT)
		return store_fail(s, -EINVAL, "frame %zu has an unknown kind %d", i, f->kind);
	if (nl > STORE_MAX_FRAME_NAME + 1 || ml > STORE_MAX_FRAME_NAME + 1)
		return store_fail(s, -EINVAL, "frame %zu has a name over %d bytes", i,
				  STORE_MAX_FRAME_NAME);
	/* one reserve and plain copies: this runs for every frame of a drain */
	r = dynbuf__reserve(b, 9 + nl + ml);
	if (r < 0)
		return store_fail(s, r, "out of memory");
	p = (unsigned char *)b->data + b->len;
	p[0] = (unsigned char)f->kind;
	for (int k = 0; k < 8; k++)
		p[1 + k] = (unsigned char)(f->offset >> (8 * k));
	memcpy(p + 9, name, nl);
	memcpy(p + 9 + nl, module, ml);
	b->len += 9 + nl + ml;
	b->data[b->len] = '\0'; /* dynbuf's promise */
	return 0;
}

static int frame_id(struct store *s, const struct store_frame *f, size_t i, int64_t *ret_id)
{
	const char *name = f->name ? f->name : "", *module = f->module ? f->module : "";
	struct cache_slot *c;
	uint64_t h1, h2;
	sqlite3_stmt *q;
	int rc, r;

	dynbuf__reset(&s->buf2);
	r = frame_key_append(s, &s->buf2, f, i);
	if (r < 0)
		return r;
	h1 = util__hash_seeded(s->buf2.data, s->buf2.len, HASH_SEED_1);
	h2 = util__hash_seeded(s->buf2.data, s->buf2.len, HASH_SEED_2);
	c = store_cache_find(&s->frames, h1, h2);
	if (c) {
		*ret_id = c->id;
		return 0;
	}
	q = store_stmt(s, ST_FRAME_FIND);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)h1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *n2 = store_col_text(q, 2), *m2 = store_col_text(q, 3);

		if (sqlite3_column_int(q, 1) == (int)f->kind &&
		    (uint64_t)sqlite3_column_int64(q, 4) == f->offset && n2 &&
		    strcmp(n2, name) == 0 && m2 && strcmp(m2, module) == 0) {
			*ret_id = sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
			store_cache_put(&s->frames, h1, h2, *ret_id, 0);
			return 0;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return store_db_fail(s, rc, "finding a frame");
	q = store_stmt(s, ST_FRAME_INSERT);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)h1);
	sqlite3_bind_int(q, 2, (int)f->kind);
	sqlite3_bind_text(q, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, module, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (int64_t)f->offset);
	r = store_run(s, q, "storing a frame");
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(s->db);
	store_cache_put(&s->frames, h1, h2, *ret_id, 0);
	return 0;
}

static int put_varint(struct dynbuf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return dynbuf__append(b, tmp, n);
}

/* Decodes a stack blob into frame ids; returns the count or -EBADMSG. */
static int store_get_varints(const unsigned char *p, size_t len, int64_t *out, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		uint64_t v = 0;
		int shift = 0;

		for (;;) {
			if (i >= len || shift > 63)
				return -EBADMSG;
			v |= (uint64_t)(p[i] & 0x7f) << shift;
			shift += 7;
			if (!(p[i++] & 0x80))
				break;
		}
		if (n == max)
			return -EBADMSG;
		out[n++] = (int64_t)v;
	}
	return (int)n;
}

/* The content key of a stack for the connection's cache: two independent
 * 64-bit hashes of all its frames' fields laid end to end, so that a cached
 * stack is found without resolving its frames one by one (the frames are
 * what costs). One long buffer hashes faster than many short strings. */
static int stack_key(struct store *s, const struct store_frame *f, size_t n, uint64_t *ret1,
		     uint64_t *ret2)
{
	struct dynbuf *b = &s->buf2;
	int r;

	dynbuf__reset(b);
	for (size_t i = 0; i < n; i++) {
		r = frame_key_append(s, b, &f[i], i);
		if (r < 0)
			return r;
	}
	*ret1 = util__hash_seeded(b->data ? b->data : "", b->len, HASH_SEED_1);
	*ret2 = util__hash_seeded(b->data ? b->data : "", b->len, HASH_SEED_2);
	if (!*ret1)
		*ret1 = 1;
	return 0;
}

/* Keeps the stack's last_used_s within STACK_TOUCH_S of `second`. */
static int stack_touch(struct store *s, int64_t id, int64_t *last, int64_t second)
{
	sqlite3_stmt *q;
	int r;

	if (*last + STACK_TOUCH_S > second)
		return 0;
	q = store_stmt(s, ST_STACK_TOUCH);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, second);
	r = store_run(s, q, "updating a stack");
	if (r >= 0)
		*last = second;
	return r;
}

/* The stack's id, stored (with its frames) if new. */
static int stack_id(struct store *s, const struct store_frame *frames, size_t n, int64_t second,
		    int64_t *ret_id)
{
	struct cache_slot *c;
	uint64_t k1 = 0, k2 = 0, h;
	sqlite3_stmt *q;
	int64_t fid = 0, id = 0, last = 0;
	int rc, r;

	r = stack_key(s, frames, n, &k1, &k2);
	if (r < 0)
		return r;
	c = store_cache_find(&s->stacks, k1, k2);
	if (c) {
		r = stack_touch(s, c->id, &c->aux, second);
		if (r >= 0)
			*ret_id = c->id;
		return r;
	}
	/* on disk a stack is its frame ids; its key there is their hash */
	dynbuf__reset(&s->buf1);
	for (size_t i = 0; i < n; i++) {
		r = frame_id(s, &frames[i], i, &fid);
		if (r < 0)
			return r;
		r = put_varint(&s->buf1, (uint64_t)fid);
		if (r < 0)
			return store_fail(s, r, "out of memory");
	}
	h = util__hash_seeded(s->buf1.data ? s->buf1.data : "", s->buf1.len, HASH_SEED_1);
	q = store_stmt(s, ST_STACK_FIND);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)h);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(q, 1) == s->buf1.len &&
		    (!s->buf1.len ||
		     memcmp(sqlite3_column_blob(q, 1), s->buf1.data, s->buf1.len) == 0)) {
			id = sqlite3_column_int64(q, 0);
			last = sqlite3_column_int64(q, 2);
			break;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_db_fail(s, rc, "finding a stack");
	if (id) {
		r = stack_touch(s, id, &last, second);
		if (r < 0)
			return r;
	} else {
		q = store_stmt(s, ST_STACK_INSERT);
		if (!q)
			return -EIO;
		sqlite3_bind_int64(q, 1, (int64_t)h);
		sqlite3_bind_blob(q, 2, s->buf1.data ? s->buf1.data : "", (int)s->buf1.len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, second);
		r = store_run(s, q, "storing a stack");
		if (r < 0)
			return r;
		id = sqlite3_last_insert_rowid(s->db);
		last = second;
	}
	store_cache_put(&s->stacks, k1, k2, id, last);
	*ret_id = id;
	return 0;
}

/* ---- eBPF buckets ---------------------------------------------------------------------- */

struct process_second {
	int64_t process_id, second;
};

static int by_process(const void *a, const void *b)
{
	const struct process_second *x = a, *y = b;

	return x->process_id < y->process_id ? -1 : x->process_id > y->process_id;
}

/* Raises each process's ebpf_last_s to the last second of its rows: one
 * UPDATE per process, however many rows it has. */
static int note_last_seconds(struct store *s, const struct store_bucket *rows, size_t n)
{
	struct process_second *ps = malloc(n * sizeof(*ps));
	sqlite3_stmt *q;
	int r = 0;

	if (!ps)
		return store_fail(s, -ENOMEM, "out of memory noting the last eBPF seconds");
	for (size_t i = 0; i < n; i++)
		ps[i] = (struct process_second){rows[i].process_id, rows[i].second};
	qsort(ps, n, sizeof(*ps), by_process);
	for (size_t i = 0; i < n && r >= 0;) {
		int64_t last = ps[i].second;
		size_t j = i + 1;

		for (; j < n && ps[j].process_id == ps[i].process_id; j++)
			if (ps[j].second > last)
				last = ps[j].second;
		q = store_stmt(s, ST_BUCKET_LAST);
		if (!q) {
			r = -EIO;
			break;
		}
		sqlite3_bind_int64(q, 1, ps[i].process_id);
		sqlite3_bind_int64(q, 2, last);
		r = store_run(s, q, "noting the last eBPF second of a process");
		i = j;
	}
	free(ps);
	return r;
}

int store__put_buckets(struct store *s, const struct store_bucket *rows, size_t n,
		       size_t *ret_dropped)
{
	int64_t min_second = INT64_MAX, samples = 0, sid = 0;
	uint64_t need = 0;
	sqlite3_stmt *q;
	bool ok;
	int r;

	if (n && !rows)
		return store_fail(s, -EINVAL, "bucket rows missing");
	for (size_t i = 0; i < n; i++) {
		if (rows[i].process_id <= 0)
			return store_fail(s, -EINVAL, "bucket row %zu has no process", i);
		if (rows[i].count <= 0)
			return store_fail(s, -EINVAL, "bucket row %zu has a count of %" PRId64, i,
					  rows[i].count);
		r = check_depth(s, rows[i].frames, rows[i].n_frames);
		if (r < 0)
			return r;
		if (rows[i].second < min_second)
			min_second = rows[i].second;
		if (__builtin_add_overflow(samples, rows[i].count, &samples))
			return store_fail(s, -EINVAL, "bucket counts overflow");
		/* a row and its index entry; stacks mostly exist already */
		need += 64 + 4 * rows[i].n_frames;
	}
	if (ret_dropped)
		*ret_dropped = 0;
	if (!n)
		return 0;
	r = store_op_begin(s);
	if (r < 0)
		return r;
	r = store_caches_check(s);
	if (r < 0)
		goto cleanup;
	/* only buckets older than this drain make room for it */
	r = store_make_room(s, need + 2 * (uint64_t)s->page_size, store_intake_limit(s), min_second,
			    false, &ok);
	if (r < 0)
		goto cleanup;
	if (!ok) {
		/* keep what was dropped; count these rows as refused */
		r = store_counter_add(s, STORE_CTR_EBPF_ROWS_REFUSED, (int64_t)n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_EBPF_SAMPLES_REFUSED, samples);
		r = store_op_end(s, r);
		if (r >= 0 && ret_dropped)
			*ret_dropped = n;
		return r;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = stack_id(s, rows[i].frames, rows[i].n_frames, rows[i].second, &sid);
		if (r < 0)
			break;
		q = store_stmt(s, ST_BUCKET_UPSERT);
		if (!q) {
			r = -EIO;
			break;
		}
		sqlite3_bind_int64(q, 1, rows[i].process_id);
		sqlite3_bind_int64(q, 2, rows[i].second);
		sqlite3_bind_int(q, 3, rows[i].tid);
		sqlite3_bind_int64(q, 4, sid);
		sqlite3_bind_int64(q, 5, rows[i].count);
		r = store_run(s, q, "storing eBPF buckets");
	}
	if (r >= 0)
		r = note_last_seconds(s, rows, n);
cleanup:
	r = store_op_end(s, r);
	if (r == -ENOSPC) {
		enum store_counter c[2] = {STORE_CTR_EBPF_ROWS_REFUSED,
					   STORE_CTR_EBPF_SAMPLES_REFUSED};
		int64_t v[2] = {(int64_t)n, samples};

		store_counters_add_alone(s, c, v, 2);
		if (ret_dropped)
			*ret_dropped = n;
		return 0;
	}
	return r;
}

/* Frames of one read, by id, their strings in the read arena. */
struct frame_memo {
	struct cache ids; /* frame id -> index in `frames` */
	struct store_frame *frames;
	size_t n, cap;
};

static int memo_frame(struct store *s, struct frame_memo *m, int64_t id,
		      const struct store_frame **ret)
{
	struct cache_slot *c = store_cache_find(&m->ids, (uint64_t)id, 0);
	sqlite3_stmt *q;
	int r;

	if (c) {
		*ret = &m->frames[c->aux];
		return 0;
	}
	if (m->n == m->cap) {
		size_t ncap = m->cap ? 2 * m->cap : 256;
		struct store_frame *nf = realloc(m->frames, ncap * sizeof(*nf));

		if (!nf)
			return store_fail(s, -ENOMEM, "out of memory");
		m->frames = nf;
		m->cap = ncap;
	}
	q = store_stmt(s, ST_FRAME_GET);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	r = store_step_row(s, q, "reading a frame");
	if (r == -ENOENT)
		return store_fail(s, -EIO, "stack refers to a missing frame %" PRId64 " (%s)", id,
				  s->path);
	if (r < 0)
		return r;
	m->frames[m->n] = (struct store_frame){
		.kind = (enum frame_kind)sqlite3_column_int(q, 0),
		.name = store_arena_text(s, q, 1),
		.module = store_arena_text(s, q, 2),
		.offset = (uint64_t)sqlite3_column_int64(q, 3),
	};
	sqlite3_reset(q);
	if (!m->frames[m->n].name || !m->frames[m->n].module)
		return store_fail(s, -ENOMEM, "out of memory");
	if (!store_cache_put(&m->ids, (uint64_t)id, 0, id, (int64_t)m->n))
		return store_fail(s, -ENOMEM, "out of memory");
	*ret = &m->frames[m->n++];
	return 0;
}

int store__buckets(struct store *s, int64_t process_id, int64_t from_s, int64_t until_s,
		   store_bucket_fn fn, void *ctx)
{
	struct frame_memo memo = {.ids = {.grow = true}};
	struct store_frame *frames = NULL;
	int64_t ids[STORE_MAX_STACK_DEPTH];
	int64_t last_stack = -1;
	sqlite3_stmt *q = NULL, *sq;
	size_t depth = 0;
	int rc, r = 0;

	arena__reset(&s->read_arena);
	frames = malloc(sizeof(*frames) * STORE_MAX_STACK_DEPTH);
	if (!frames)
		return store_fail(s, -ENOMEM, "out of memory");
	/* a statement of its own: callbacks may call back into the store */
	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_BUCKETS_RANGE], -1, &q, NULL);
	if (rc != SQLITE_OK) {
		r = store_db_fail(s, rc, "reading eBPF buckets");
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, process_id);
	sqlite3_bind_int64(q, 2, from_s);
	sqlite3_bind_int64(q, 3, until_s);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t sid = sqlite3_column_int64(q, 2);
		struct store_bucket b;

		if (sid != last_stack) {
			int n;

			sq = store_stmt(s, ST_STACK_GET);
			if (!sq) {
				r = -EIO;
				break;
			}
			sqlite3_bind_int64(sq, 1, sid);
			r = store_step_row(s, sq, "reading a stack");
			if (r < 0) {
				if (r == -ENOENT)
					r = store_fail(s, -EIO,
						       "bucket refers to a missing stack %" PRId64
						       " (%s)",
						       sid, s->path);
				break;
			}
			n = store_get_varints(sqlite3_column_blob(sq, 0),
					      (size_t)sqlite3_column_bytes(sq, 0), ids,
					      UTIL_ARRAY_SIZE(ids));
			sqlite3_reset(sq);
			if (n < 0) {
				r = store_fail(s, -EIO, "damaged stack %" PRId64 " (%s)", sid,
					       s->path);
				break;
			}
			for (int i = 0; i < n && r >= 0; i++) {
				const struct store_frame *f = NULL;

				r = memo_frame(s, &memo, ids[i], &f);
				if (r >= 0)
					frames[i] = *f;
			}
			if (r < 0)
				break;
			depth = (size_t)n;
			last_stack = sid;
		}
		b = (struct store_bucket){
			.process_id = process_id,
			.tid = sqlite3_column_int(q, 0),
			.second = sqlite3_column_int64(q, 1),
			.frames = frames,
			.n_frames = depth,
			.count = sqlite3_column_int64(q, 3),
		};
		r = fn(ctx, &b);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "reading eBPF buckets");
cleanup:
	sqlite3_finalize(q);
	store_cache_free(&memo.ids);
	free(memo.frames);
	free(frames);
	return r;
}

int store__uncovered(struct store *s, int64_t before_s, store_uncovered_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;

	/* own statement: the callback may call back into the store */
	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_UNCOVERED], -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "finding uncovered eBPF samples");
	sqlite3_bind_int64(q, 1, before_s);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_process p;
		struct store_uncovered u = {
			.process = &p,
			.first_s = sqlite3_column_int64(q, 1),
			.last_s = sqlite3_column_int64(q, 2),
			.rows = sqlite3_column_int64(q, 3),
			.samples = (int64_t)sqlite3_column_double(q, 4),
			.sdk_profiles = sqlite3_column_int64(q, 5),
		};

		r = store__get_process(s, sqlite3_column_int64(q, 0), &p);
		if (r >= 0)
			r = fn(ctx, &u);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "finding uncovered eBPF samples");
	sqlite3_finalize(q);
	return r;
}

int store__mark_emitted(struct store *s, int64_t process_id, int64_t until_s)
{
	sqlite3_stmt *q;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	q = store_stmt(s, ST_MARK_EMITTED);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, process_id);
	sqlite3_bind_int64(q, 2, until_s);
	r = store_run(s, q, "moving the emitted watermark");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no process %" PRId64, process_id);
cleanup:
	return store_op_end(s, r);
}

/* ---- outbox ------------------------------------------------------------------------------ */

int store__outbox_add(struct store *s, const struct store_outbox_item *it, int64_t *ret_id)
{
	sqlite3_stmt *q;
	uint64_t need;
	int64_t id = 0;
	char raw_id[UTIL_UUID_LEN + 1];
	bool ok;
	int r;

	if (!it || !it->series || !it->series[0] || !it->kind || !it->kind[0])
		return store_fail(s, -EINVAL, "an outbox item needs a series and a kind");
	if (it->raw_id && strlen(it->raw_id) > STORE_MAX_STRING)
		return store_fail(s, -EINVAL, "an outbox item's ID over %d bytes",
				  STORE_MAX_STRING);
	if (!it->raw_id && (r = util__uuid4(raw_id)) < 0)
		return store_fail(s, r, "no random bytes for an outbox item's ID: %s",
				  strerror(-r));
	if (!!it->payload == (it->sdk_profile_id > 0))
		return store_fail(s, -EINVAL,
				  "an outbox item carries a payload or an SDK profile id");
	if (it->payload && (!it->payload_len || it->payload_len > STORE_MAX_PAYLOAD))
		return store_fail(s, -EINVAL, "an outbox payload of %zu bytes (cap %u MiB)",
				  it->payload_len, STORE_MAX_PAYLOAD >> 20);
	if ((r = store_check_string(s, "the series", it->series, STORE_MAX_CMDLINE)) < 0 ||
	    (r = store_check_string(s, "the tenant", it->tenant, STORE_MAX_STRING)) < 0 ||
	    (r = store_check_string(s, "the kind", it->kind, STORE_MAX_STRING)) < 0)
		return r;
	r = store_encode_labels(s, it->labels, it->n_labels, &s->buf1);
	if (r < 0)
		return r;
	need = it->payload_len + s->buf1.len + strlen(it->series) + 256 +
	       2 * (uint64_t)s->page_size;
	r = store_op_begin(s);
	if (r < 0)
		return r;
	r = store_make_room(s, need, s->max_bytes, INT64_MAX, true, &ok);
	if (r < 0)
		goto cleanup;
	if (!ok) {
		r = store_counter_add(s, STORE_CTR_OUTBOX_REFUSED_FULL, 1);
		r = store_op_end(s, r);
		return r < 0 ? r : store_full_error(s, "outbox item");
	}
	if (it->sdk_profile_id > 0) {
		/* after make_room, which may prune forwarded profiles: the one
		 * queued here must still be there */
		q = store_stmt(s, ST_SDK_MARK_QUEUED);
		if (!q) {
			r = -EIO;
			goto cleanup;
		}
		sqlite3_bind_int64(q, 1, it->sdk_profile_id);
		r = store_run(s, q, "marking an SDK profile queued");
		if (r >= 0 && sqlite3_changes(s->db) == 0)
			r = store_fail(s, -ENOENT, "no SDK profile %" PRId64, it->sdk_profile_id);
		if (r < 0)
			goto cleanup;
	}
	q = store_stmt(s, ST_OUTBOX_INSERT);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, it->created_ns ? it->created_ns : store__now_ns());
	store_bind_text(q, 2, it->series);
	store_bind_text(q, 3, it->tenant);
	store_bind_text(q, 4, it->kind);
	sqlite3_bind_blob(q, 5, s->buf1.data ? s->buf1.data : "", (int)s->buf1.len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, it->from_ns);
	sqlite3_bind_int64(q, 7, it->until_ns);
	if (it->payload)
		sqlite3_bind_blob(q, 8, it->payload, (int)it->payload_len, SQLITE_STATIC);
	if (it->sdk_profile_id > 0)
		sqlite3_bind_int64(q, 9, it->sdk_profile_id);
	sqlite3_bind_int64(q, 10, it->next_attempt_ns);
	if (it->raw_id)
		store_bind_text(q, 11, it->raw_id);
	else
		sqlite3_bind_text(q, 11, raw_id, -1, SQLITE_TRANSIENT);
	r = store_run(s, q, "queueing a profile for the upstream");
	if (r == -ENOSPC)
		r = store_full_error(s, "outbox item");
	if (r >= 0)
		id = sqlite3_last_insert_rowid(s->db);
cleanup:
	r = store_op_end(s, r);
	if (r == -ENOSPC) {
		enum store_counter c = STORE_CTR_OUTBOX_REFUSED_FULL;
		int64_t one = 1;

		store_counters_add_alone(s, &c, &one, 1);
	}
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

/* Reads an outbox-shaped row (ST_OUTBOX_DUE's columns); an SDK pass-through
 * gets its profile's payload as received. */
static int read_outbox(struct store *s, sqlite3_stmt *q, struct store_outbox_item *it)
{
	int r;

	arena__reset(&s->read_arena);
	*it = (struct store_outbox_item){
		.id = sqlite3_column_int64(q, 0),
		.series = store_arena_text(s, q, 1),
		.tenant = store_arena_text(s, q, 2),
		.kind = store_arena_text(s, q, 3),
		.from_ns = sqlite3_column_int64(q, 5),
		.until_ns = sqlite3_column_int64(q, 6),
		.payload = sqlite3_column_blob(q, 7),
		.payload_len = (size_t)sqlite3_column_bytes(q, 7),
		.sdk_profile_id = sqlite3_column_int64(q, 8),
		.created_ns = sqlite3_column_int64(q, 9),
		.attempts = sqlite3_column_int64(q, 10),
		.next_attempt_ns = sqlite3_column_int64(q, 11),
		.last_error = store_arena_text(s, q, 12),
		.raw_id = store_arena_text(s, q, 13),
	};
	r = store_decode_labels(s, q, 4, &it->labels, &it->n_labels);
	if (r < 0 || it->sdk_profile_id <= 0)
		return r;
	{
		sqlite3_stmt *p = store_stmt(s, ST_OUTBOX_GET_SDK);
		const void *data;
		size_t len;

		if (!p)
			return -EIO;
		sqlite3_bind_int64(p, 1, it->sdk_profile_id);
		r = store_step_row(s, p, "reading an SDK profile");
		if (r == -ENOENT) /* it expired: nothing to send */
			return 0;
		if (r < 0)
			return r;
		r = store_read_payload(s, p, 0, sqlite3_column_int(p, 1) != 0,
				       (size_t)sqlite3_column_int64(p, 2), &data, &len);
		if (r >= 0 && data == sqlite3_column_blob(p, 0)) {
			/* the blob dies with the reset: keep a copy */
			dynbuf__reset(&s->buf3);
			if (dynbuf__append(&s->buf3, data, len) < 0)
				r = store_fail(s, -ENOMEM, "out of memory");
			data = s->buf3.data;
		}
		sqlite3_reset(p);
		if (r >= 0) {
			it->payload = data;
			it->payload_len = len;
		}
	}
	return r;
}

int store__outbox_due(struct store *s, int64_t now_ns, size_t max_items, size_t max_bytes,
		      store_outbox_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	size_t items = 0, bytes = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_OUTBOX_DUE], -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "reading the outbox");
	sqlite3_bind_int64(q, 1, now_ns);
	while ((max_items == 0 || items < max_items) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_outbox_item it;

		r = read_outbox(s, q, &it);
		if (r < 0)
			break;
		if (items && max_bytes && bytes + it.payload_len > max_bytes)
			break;
		bytes += it.payload_len;
		items++;
		r = fn(ctx, &it);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_db_fail(s, rc, "reading the outbox");
	sqlite3_finalize(q);
	return r;
}

static int outbox_change(struct store *s, enum stmt_id id, int64_t item, int64_t a,
			 const char *text)
{
	sqlite3_stmt *q;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	q = store_stmt(s, id);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, item);
	sqlite3_bind_int64(q, 2, a);
	store_bind_text(q, 3, text);
	r = store_run(s, q, "updating the outbox");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no outbox item %" PRId64, item);
cleanup:
	return store_op_end(s, r);
}

int store__outbox_done(struct store *s, int64_t id)
{
	sqlite3_stmt *q;
	int64_t sdk = 0;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	q = store_stmt(s, ST_OUTBOX_DONE);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, id);
	r = store_step_row(s, q, "removing a delivered item");
	if (r == -ENOENT) {
		r = store_fail(s, r, "no outbox item %" PRId64, id);
		goto cleanup;
	}
	if (r < 0)
		goto cleanup;
	sdk = sqlite3_column_int64(q, 0);
	r = store_run(s, q, "removing a delivered item");
	if (r >= 0 && sdk > 0) {
		q = store_stmt(s, ST_OUTBOX_FORWARDED);
		if (!q) {
			r = -EIO;
			goto cleanup;
		}
		sqlite3_bind_int64(q, 1, sdk);
		r = store_run(s, q, "marking an SDK profile forwarded");
	}
cleanup:
	return store_op_end(s, r);
}

int store__outbox_retry(struct store *s, int64_t id, int64_t next_attempt_ns, const char *error)
{
	char msg[1024];

	/* errors come from the network: keep them bounded */
	snprintf(msg, sizeof(msg), "%s", error ? error : "");
	return outbox_change(s, ST_OUTBOX_RETRY, id, next_attempt_ns, error ? msg : NULL);
}

int store__outbox_dead(struct store *s, int64_t id, int status, const char *reason)
{
	char msg[2048];
	sqlite3_stmt *q;
	int r;

	snprintf(msg, sizeof(msg), "%s", reason && reason[0] ? reason : "no reason given");
	r = store_op_begin(s);
	if (r < 0)
		return r;
	q = store_stmt(s, ST_OUTBOX_TO_DEAD);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, store__now_ns());
	sqlite3_bind_int(q, 3, status);
	sqlite3_bind_text(q, 4, msg, -1, SQLITE_TRANSIENT);
	r = store_run(s, q, "moving an item to the dead letters");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no outbox item %" PRId64, id);
	if (r >= 0) {
		q = store_stmt(s, ST_OUTBOX_DELETE);
		if (!q)
			r = -EIO;
		else
			sqlite3_bind_int64(q, 1, id);
		if (r >= 0)
			r = store_run(s, q, "moving an item to the dead letters");
	}
	if (r >= 0)
		r = store_counter_add(s, STORE_CTR_DEAD_LETTERS, 1);
cleanup:
	return store_op_end(s, r);
}

int store__outbox_list(struct store *s, size_t limit, store_outbox_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_OUTBOX_LIST], -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "listing the outbox");
	sqlite3_bind_int64(q, 1, limit ? (int64_t)limit : -1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_outbox_item it;

		r = read_outbox(s, q, &it);
		if (r >= 0)
			r = fn(ctx, &it);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing the outbox");
	sqlite3_finalize(q);
	return r;
}

int store__dead_letters(struct store *s, size_t limit, store_dead_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_DEAD_LIST], -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "listing the dead letters");
	sqlite3_bind_int64(q, 1, limit ? (int64_t)limit : -1);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_outbox_item it;
		struct store_dead_letter d;

		r = read_outbox(s, q, &it);
		if (r < 0)
			break;
		d = (struct store_dead_letter){
			.id = it.id,
			.item = &it,
			.died_ns = sqlite3_column_int64(q, 14),
			.status = sqlite3_column_int(q, 15),
			.reason = store_arena_text(s, q, 16),
		};
		r = fn(ctx, &d);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing the dead letters");
	sqlite3_finalize(q);
	return r;
}

/* ---- stats ---------------------------------------------------------------------------- */

static uint64_t file_size(const char *path, const char *suffix)
{
	char p[PATH_MAX];
	struct stat sb;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int stats_locked(struct store *s, bool detailed, struct store_stats *st_out)
{
	static const char *const time_sql[STORE_TABLE_COUNT][2] = {
		[STORE_TABLE_PROCESSES] = {"SELECT min(first_seen_ns) FROM processes",
					   "SELECT max(last_seen_ns) FROM processes"},
		[STORE_TABLE_SDK_PROFILES] = {"SELECT min(received_ns) FROM sdk_profiles",
					      "SELECT max(received_ns) FROM sdk_profiles"},
		[STORE_TABLE_EBPF_BUCKETS] = {"SELECT min(second) * 1000000000 FROM ebpf_buckets",
					      "SELECT max(second) * 1000000000 FROM ebpf_buckets"},
		[STORE_TABLE_OUTBOX] = {"SELECT min(created_ns) FROM outbox",
					"SELECT max(created_ns) FROM outbox"},
		[STORE_TABLE_DEAD_LETTERS] = {"SELECT min(died_ns) FROM dead_letters",
					      "SELECT max(died_ns) FROM dead_letters"},
	};
	struct store_stats r0 = {0};
	sqlite3_stmt *q = NULL;
	char sql[128];
	int rc, r;

	r0.schema_version = STORE_SCHEMA_VERSION;
	r0.max_bytes = s->max_bytes;
	r0.retention_ns = s->retention_ns;
	r = used_bytes(s, &r0.used_bytes);
	if (r < 0)
		return r;
	r0.file_bytes = file_size(s->path, "");
	r0.wal_bytes = file_size(s->path, "-wal");
	for (int t = 0; t < STORE_TABLE_COUNT; t++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table_names[t]);
		r = store_scalar(s, sql, 0, &r0.tables[t].rows);
		for (int k = 0; r >= 0 && k < 2 && time_sql[t][0]; k++)
			r = store_scalar(s, time_sql[t][k], 0,
					 k ? &r0.tables[t].newest_ns : &r0.tables[t].oldest_ns);
		if (r < 0)
			return r;
	}
	if ((r = store_scalar(s, "SELECT total(count) FROM ebpf_buckets", 0, &r0.ebpf_samples)) <
		    0 ||
	    (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE merged = 0", 0,
			      &r0.sdk_unmerged)) < 0 ||
	    (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE forwarded = 0", 0,
			      &r0.sdk_unforwarded)) < 0 ||
	    (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE queued = 0", 0,
			      &r0.sdk_unqueued)) < 0 ||
	    (r = store_scalar(s, "SELECT count(*) FROM outbox WHERE next_attempt_ns <= ?1",
			      store__now_ns(), &r0.outbox_due)) < 0)
		return r;
	rc = sqlite3_prepare_v2(s->db, "SELECT name, value FROM counters", -1, &q, NULL);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW)
		for (int c = 0; c < STORE_CTR_COUNT; c++)
			if (strcmp(store_col_text(q, 0) ? store_col_text(q, 0) : "",
				   counter_names[c]) == 0)
				r0.counters[c] = sqlite3_column_int64(q, 1);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_db_fail(s, rc, "reading the counters");
	if (detailed) {
		/* dbstat walks every page: only for `braid store stats` */
		rc = sqlite3_prepare_v2(
			s->db,
			"SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
			"JOIN sqlite_schema m ON m.name = d.name GROUP BY m.tbl_name",
			-1, &q, NULL);
		while ((rc == SQLITE_OK || rc == SQLITE_ROW) &&
		       (rc = sqlite3_step(q)) == SQLITE_ROW)
			for (int t = 0; t < STORE_TABLE_COUNT; t++)
				if (strcmp(store_col_text(q, 0) ? store_col_text(q, 0) : "",
					   table_names[t]) == 0)
					r0.tables[t].bytes = sqlite3_column_int64(q, 1);
		sqlite3_finalize(q);
		if (rc != SQLITE_DONE)
			return store_db_fail(s, rc, "measuring the tables");
	}
	*st_out = r0;
	return 0;
}

int store__stats(struct store *s, bool detailed, struct store_stats *ret)
{
	bool own = !s->user_tx;
	int r;

	/* one read transaction: the figures are one snapshot */
	if (own && (r = store_exec_sql(s, "BEGIN", "reading statistics")) < 0)
		return r;
	r = stats_locked(s, detailed, ret);
	if (own)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (r >= 0)
		ret->memory_bytes = (uint64_t)sqlite3_memory_used();
	return r;
}

/* ---- cleanup ------------------------------------------------------------------------------- */

/* Runs one DELETE (or any write) with an int64 parameter in a transaction of
 * its own, returning the number of rows changed in *ret_n. */
static int write_one(struct store *s, const char *sql, int64_t param, int64_t *ret_n)
{
	sqlite3_stmt *q = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "cleaning up");
	if (sqlite3_bind_parameter_count(q))
		sqlite3_bind_int64(q, 1, param);
	r = store_run(s, q, "cleaning up");
	if (r >= 0 && ret_n)
		*ret_n = sqlite3_changes(s->db);
	sqlite3_finalize(q);
	return r;
}

/* SDK profiles received before cutoff, a chunk per transaction, with the
 * outbox items that would have sent them on. */
static int expire_sdk(struct store *s, int64_t cutoff_ns, struct store_maintenance *m)
{
	int64_t n, forwarded, outbox;
	int r;

	do {
		r = store_op_begin(s);
		if (r < 0)
			return r;
		n = forwarded = outbox = 0;
		r = store_scalar(
			s,
			"SELECT count(*) FROM (SELECT 1 FROM sdk_profiles WHERE received_ns < ?1 "
			"ORDER BY received_ns LIMIT " UTIL_STR(CLEANUP_CHUNK) ")",
			cutoff_ns, &n);
		if (r >= 0 && n)
			r = store_scalar(
				s,
				"SELECT total(forwarded) FROM (SELECT forwarded FROM sdk_profiles "
				"WHERE received_ns < ?1 ORDER BY received_ns LIMIT " UTIL_STR(
					CLEANUP_CHUNK) ")",
				cutoff_ns, &forwarded);
		if (r >= 0 && n)
			r = write_one(s,
				      "DELETE FROM outbox WHERE sdk_profile_id IN (SELECT id FROM "
				      "sdk_profiles WHERE received_ns < ?1 ORDER BY received_ns "
				      "LIMIT " UTIL_STR(CLEANUP_CHUNK) ")",
				      cutoff_ns, &outbox);
		if (r >= 0 && n)
			r = write_one(
				s,
				"DELETE FROM sdk_profiles WHERE id IN (SELECT id FROM sdk_profiles "
				"WHERE received_ns < ?1 ORDER BY received_ns LIMIT " UTIL_STR(
					CLEANUP_CHUNK) ")",
				cutoff_ns, NULL);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_SDK_EXPIRED, n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_SDK_EXPIRED_UNFORWARDED, n - forwarded);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_OUTBOX_EXPIRED, outbox);
		r = store_op_end(s, r);
		if (r < 0)
			return r;
		m->sdk_expired += n;
		m->outbox_expired += outbox;
	} while (n == CLEANUP_CHUNK);
	return 0;
}

/* Buckets before cutoff_s, a minute of them per transaction. */
static int expire_buckets(struct store *s, int64_t cutoff_s, struct store_maintenance *m)
{
	for (;;) {
		int64_t oldest = INT64_MAX, upto, rows = 0, unemitted = 0;
		int r;

		r = store_scalar(
			s, "SELECT coalesce(min(second), 9223372036854775807) FROM ebpf_buckets", 0,
			&oldest);
		if (r < 0)
			return r;
		if (oldest >= cutoff_s)
			return 0;
		upto = oldest + 60 < cutoff_s ? oldest + 60 : cutoff_s;
		r = store_op_begin(s);
		if (r < 0)
			return r;
		r = store_scalar(s, "SELECT count(*) FROM ebpf_buckets WHERE second < ?1", upto,
				 &rows);
		if (r >= 0)
			r = store_scalar(
				s,
				"SELECT total(b.count) FROM ebpf_buckets b JOIN processes p "
				"ON p.id = b.process_id WHERE b.second < ?1 "
				"AND b.second >= p.ebpf_emitted_s",
				upto, &unemitted);
		if (r >= 0)
			r = write_one(s, "DELETE FROM ebpf_buckets WHERE second < ?1", upto, NULL);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_EBPF_ROWS_EXPIRED, rows);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_EBPF_SAMPLES_EXPIRED_UNEMITTED,
					      unemitted);
		r = store_op_end(s, r);
		if (r < 0)
			return r;
		m->ebpf_rows_expired += rows;
	}
}

/* Stacks no bucket can use any more (see the top of the file), then the
 * frames no stack uses. One write transaction: a writer must not reuse a
 * cached id between the check and the delete; the generation bump makes
 * every connection forget its caches before its next write. */
static int collect_stacks(struct store *s, struct store_maintenance *m)
{
	int64_t oldest = 0, stacks = 0, frames = 0, max_frame = 0;
	uint8_t *used = NULL;
	sqlite3_stmt *q = NULL;
	int64_t ids[STORE_MAX_STACK_DEPTH];
	int rc, r;

	r = store_op_begin(s);
	if (r < 0)
		return r;
	r = store_scalar(s, "SELECT coalesce(min(second), 9223372036854775807) FROM ebpf_buckets",
			 0, &oldest);
	if (r >= 0)
		r = write_one(
			s, "DELETE FROM stacks WHERE last_used_s < ?1 - " UTIL_STR(STACK_TOUCH_S),
			oldest, &stacks);
	if (r < 0 || !stacks)
		goto cleanup;
	r = write_one(s, "UPDATE meta SET value = value + 1 WHERE key = 'gc_generation'", 0, NULL);
	if (r >= 0)
		r = store_scalar(s, "SELECT coalesce(max(id), 0) FROM frames", 0, &max_frame);
	if (r < 0)
		goto cleanup;
	used = calloc((size_t)max_frame / 8 + 1, 1);
	if (!used) {
		r = store_fail(s, -ENOMEM, "out of memory collecting frames");
		goto cleanup;
	}
	rc = sqlite3_prepare_v2(s->db, "SELECT frames FROM stacks", -1, &q, NULL);
	while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int n = store_get_varints(sqlite3_column_blob(q, 0),
					  (size_t)sqlite3_column_bytes(q, 0), ids,
					  UTIL_ARRAY_SIZE(ids));

		for (int i = 0; i < n; i++)
			if (ids[i] > 0 && ids[i] <= max_frame)
				used[ids[i] / 8] |= (uint8_t)(1u << (ids[i] % 8));
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc != SQLITE_DONE) {
		r = store_db_fail(s, rc, "collecting frames");
		goto cleanup;
	}
	{
		sqlite3_stmt *del = NULL;

		rc = sqlite3_prepare_v2(s->db, "SELECT id FROM frames", -1, &q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(s->db, "DELETE FROM frames WHERE id = ?1", -1, &del,
						NULL);
		while ((rc == SQLITE_OK || rc == SQLITE_ROW) &&
		       (rc = sqlite3_step(q)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(q, 0);

			if (id > 0 && id <= max_frame && (used[id / 8] & (1u << (id % 8))))
				continue;
			sqlite3_bind_int64(del, 1, id);
			rc = sqlite3_step(del);
			sqlite3_reset(del);
			if (rc != SQLITE_DONE)
				break;
			rc = SQLITE_OK;
			frames++;
		}
		sqlite3_finalize(del);
		if (rc != SQLITE_DONE)
			r = store_db_fail(s, rc, "collecting frames");
	}
cleanup:
	sqlite3_finalize(q);
	free(used);
	r = store_op_end(s, r);
	if (r >= 0) {
		m->stacks_removed += stacks;
		m->frames_removed += frames;
	}
	return r;
}

int store__maintain(struct store *s, int64_t now_ns, struct store_maintenance *ret)
{
	struct store_maintenance m = {0};
	int64_t cutoff_ns = now_ns - s->retention_ns, n = 0;
	bool ok;
	int r;

	if (s->read_only)
		return store_fail(s, -EROFS, "the store was opened read-only (%s)", s->path);
	if (s->user_tx)
		return store_fail(s, -EINVAL, "cleanup cannot run inside a transaction");
	r = expire_sdk(s, cutoff_ns, &m);
	if (r >= 0)
		r = expire_buckets(s, cutoff_ns / 1000000000, &m);
	if (r >= 0) {
		r = store_op_begin(s);
		if (r >= 0)
			r = write_one(s, "DELETE FROM outbox WHERE created_ns < ?1", cutoff_ns, &n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_OUTBOX_EXPIRED, n);
		m.outbox_expired += n;
		n = 0;
		if (r >= 0)
			r = write_one(s, "DELETE FROM dead_letters WHERE died_ns < ?1", cutoff_ns,
				      &n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_DEAD_EXPIRED, n);
		m.dead_expired += n;
		n = 0;
		if (r >= 0)
			r = write_one(s,
				      "DELETE FROM processes WHERE last_seen_ns < ?1 "
				      "AND NOT EXISTS (SELECT 1 FROM ebpf_buckets b WHERE "
				      "b.process_id = processes.id) "
				      "AND NOT EXISTS (SELECT 1 FROM sdk_profiles p WHERE "
				      "p.process_id = processes.id)",
				      cutoff_ns, &n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_PROCESSES_EXPIRED, n);
		m.processes_removed += n;
		/* a bound lowered since the data went in: shed old buckets */
		if (r >= 0)
			r = store_make_room(s, 0, store_intake_limit(s), INT64_MAX, false, &ok);
		r = store_op_end(s, r);
	}
	if (r >= 0)
		r = collect_stacks(s, &m);
	if (r >= 0)
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (r >= 0 && ret)
		*ret = m;
	return r;
}
