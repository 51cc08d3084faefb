/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the SQLite buffer. The schema and the reasons behind it are in
 * docs/store.md. This file holds the connection: opening and checking the
 * file, the statement cache, errors and transactions. The rows live in one
 * file each (process.c, sdk.c, bucket.c, outbox.c), the schema in schema.c,
 * the bound, the counters and the cleanup in maintain.c; store_int.h is
 * what they share.
 *
 * - WAL mode, one connection per thread, statements prepared once per
 *   connection and reused. Writes run in BEGIN IMMEDIATE transactions, so
 *   writers queue on the busy handler instead of failing on a stale snapshot.
 */
#include "store/store_int.h"

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

const char *const store_stmt_sql[ST_COUNT] = {
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
	[ST_BUCKET_UPSERT] = "INSERT INTO ebpf_buckets(process_id, second, tid, stack_id, count, "
			     "thread_pointer) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
			     "ON CONFLICT DO UPDATE SET count = count + excluded.count, "
			     "thread_pointer = excluded.thread_pointer",
	[ST_BUCKET_LAST] =
		"UPDATE processes SET ebpf_last_s = ?2 WHERE id = ?1 AND ebpf_last_s < ?2",
	[ST_BUCKETS_RANGE] =
		"SELECT tid, second, stack_id, count, thread_pointer FROM ebpf_buckets "
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
		"EXISTS (SELECT 1 FROM sdk_profiles s WHERE s.process_id = p.id "
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
	/* once its last copy is delivered (a JFR push's profiles are several) */
	[ST_OUTBOX_FORWARDED] = "UPDATE sdk_profiles SET forwarded = 1 WHERE id = ?1 AND NOT "
				"EXISTS (SELECT 1 FROM outbox WHERE sdk_profile_id = ?1)",
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

int store_fail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* Records SQLite's complaint about `what` and returns the errno for rc. */
int store_db_fail(struct store *s, int rc, const char *what)
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
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
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
int store_run(struct store *s, sqlite3_stmt *q, const char *what)
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
int store_step_row(struct store *s, sqlite3_stmt *q, const char *what)
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

int64_t store_query_int(struct store *s, enum stmt_id id, int *ret_err)
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

/* A bind fails when the statement and the call disagree (SQLITE_RANGE, a
 * parameter it does not have; SQLITE_MISUSE), when a value is over SQLite's
 * length limit (SQLITE_TOOBIG) or when a copy finds no memory. A value over
 * the limit is the caller's: -EINVAL, as for any cap. The first two are the
 * store's own mistake: -EIO, as for any failure of the database, rather than
 * -EINVAL, which would blame the caller's argument (ingest answers it with
 * 400). Records a message naming the parameter and the statement. */
int store_bind_fail(struct store *s, sqlite3_stmt *q, int i, int rc)
{
	const char *sql = sqlite3_sql(q);
	int err;

	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		err = -ENOMEM;
		break;
	case SQLITE_TOOBIG:
		err = -EINVAL;
		break;
	default:
		err = -EIO;
		break;
	}
	if (!sql)
		sql = "";
	return store_fail(s, err, "binding parameter %d of \"%.60s%s\": %s (%s)", i, sql,
			  strlen(sql) > 60 ? "..." : "", sqlite3_errstr(rc), s->path);
}

const char *store_col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

const char *store_arena_text(struct store *s, sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	if (!t)
		return NULL;
	return arena__strndup(&s->read_arena, (const char *)t,
			      (size_t)sqlite3_column_bytes(q, col));
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
void store_tx_unlock(struct store *s)
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
int store_begin_immediate(struct store *s)
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
int store_op_begin(struct store *s)
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

/* Ends the call's transaction: commits (or releases the savepoint) when r is
 * 0, else rolls back and forgets the caches, which may hold ids of rows that
 * no longer exist. Returns r, or the commit's error. */
int store_op_end(struct store *s, int r)
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

int store_exec_sql(struct store *s, const char *sql, const char *what)
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
int store_scalar(struct store *s, const char *sql, int64_t param, int64_t *ret)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	int r = 0;

	if (rc == SQLITE_OK && sqlite3_bind_parameter_count(q))
		r = store_bind_int64(s, q, 1, param);
	if (rc == SQLITE_OK && r >= 0) {
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW)
			*ret = sqlite3_column_type(q, 0) == SQLITE_FLOAT
				       ? (int64_t)sqlite3_column_double(q, 0)
				       : sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	if (r < 0)
		return r;
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
