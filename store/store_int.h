/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_int.h: what the store's own files share, and nothing outside store/
 * includes: the connection (struct store) and its statements, errors,
 * transactions, caches, bound and value encodings. store/store.h stays the
 * module's whole contract.
 *
 * These functions follow store.h's rules: 0 or a negative errno, with the
 * message left in s->errmsg.
 */
#ifndef BRAID_STORE_INT_H
#define BRAID_STORE_INT_H

#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A stack's last_used_s is refreshed when it is used this much later. */
#define STACK_TOUCH_S 60

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

/* content (two 64-bit hashes) -> id */
struct cache_slot {
	uint64_t h1, h2;
	int64_t id;
	int64_t aux; /* stacks: last_used_s as stored */
};

/* The entries, dense, indexed by util's idtab (ids = positions + 1). A
 * connection's caches start over at CACHE_ENTRIES entries; a read's memo
 * (grow = true) keeps growing. */
struct cache {
	struct cache_slot *v;
	size_t n, cap;
	struct idtab index;
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
	/* store__row_stats's last count of each table, and when (a large
	 * table is counted once a minute: maintain.c) */
	int64_t rows_counted[STORE_TABLE_COUNT], rows_counted_ns[STORE_TABLE_COUNT];
	char errmsg[512];
};

/* ---- store.c: errors, statements, transactions ---------------------------- */

/* Writes the message into s->errmsg and returns err. */
int store_fail(struct store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int store_db_fail(struct store *s, int rc, const char *what);

extern const char *const store_stmt_sql[ST_COUNT];
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
int store_run(struct store *s, sqlite3_stmt *q, const char *what);
int store_step_row(struct store *s, sqlite3_stmt *q, const char *what);
int64_t store_query_int(struct store *s, enum stmt_id id, int *ret_err);
const char *store_col_text(sqlite3_stmt *q, int i);
/* A text column copied into s->read_arena; NULL for NULL. */
const char *store_arena_text(struct store *s, sqlite3_stmt *q, int col);
int store_exec_sql(struct store *s, const char *sql, const char *what);

/* Binds parameter i of q: 0, or a negative errno with the message in s
 * (store_bind_fail). Inline, as the bucket inserts bind five values a row:
 * the check costs a compare. Text and blobs are bound SQLITE_STATIC (no
 * copy): the caller keeps them alive until the statement has run, except
 * through store_bind_text_copy. NULL text binds NULL. */
int store_bind_fail(struct store *s, sqlite3_stmt *q, int i, int rc);

static inline int store_bind_int64(struct store *s, sqlite3_stmt *q, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(q, i, v);

	return rc == SQLITE_OK ? 0 : store_bind_fail(s, q, i, rc);
}

static inline int store_bind_int(struct store *s, sqlite3_stmt *q, int i, int v)
{
	int rc = sqlite3_bind_int(q, i, v);

	return rc == SQLITE_OK ? 0 : store_bind_fail(s, q, i, rc);
}

static inline int store_bind_text(struct store *s, sqlite3_stmt *q, int i, const char *v)
{
	int rc = v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);

	return rc == SQLITE_OK ? 0 : store_bind_fail(s, q, i, rc);
}

/* For text that dies before the statement is done with it (a local buffer):
 * SQLite copies it. */
static inline int store_bind_text_copy(struct store *s, sqlite3_stmt *q, int i, const char *v)
{
	int rc = sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);

	return rc == SQLITE_OK ? 0 : store_bind_fail(s, q, i, rc);
}

/* len over INT_MAX is refused here (SQLite takes an int), never truncated. */
static inline int store_bind_blob(struct store *s, sqlite3_stmt *q, int i, const void *v,
				  size_t len)
{
	int rc =
		len > INT_MAX ? SQLITE_TOOBIG : sqlite3_bind_blob(q, i, v, (int)len, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : store_bind_fail(s, q, i, rc);
}
int store_scalar(struct store *s, const char *sql, int64_t param, int64_t *ret);

int store_begin_immediate(struct store *s);
void store_tx_unlock(struct store *s);
int store_op_begin(struct store *s);
int store_op_end(struct store *s, int r);

/* ---- schema.c ---------------------------------------------------------------- */

int store_migrate(struct store *s, int target);

/* ---- cache.c ----------------------------------------------------------------- */

void store_cache_free(struct cache *c);
/* The entry of (h1, h2), or NULL. The pointer is good until the next put. */
struct cache_slot *store_cache_find(struct cache *c, uint64_t h1, uint64_t h2);
struct cache_slot *store_cache_put(struct cache *c, uint64_t h1, uint64_t h2, int64_t id,
				   int64_t aux);
void store_caches_forget(struct store *s);
int store_caches_check(struct store *s);

/* ---- encode.c ---------------------------------------------------------------- */

int store_check_string(struct store *s, const char *what, const char *v, size_t max);
int store_encode_labels(struct store *s, const struct label *labels, size_t n, struct dynbuf *out);
int store_split_strings(const void *blob, size_t len, const char **out, size_t max);
int store_decode_labels(struct store *s, sqlite3_stmt *q, int col, const struct label **ret_labels,
			size_t *ret_n);
int store_encode_types(struct store *s, const struct store_sample_type *types, size_t n,
		       struct dynbuf *out);
int store_decode_types(struct store *s, sqlite3_stmt *q, int col,
		       const struct store_sample_type **ret_types, size_t *ret_n);

/* ---- sdk.c, bucket.c --------------------------------------------------------- */

void store_sql_cpu_time(sqlite3_context *ctx, int argc, sqlite3_value **argv);
int store_read_payload(struct store *s, sqlite3_stmt *q, int col, bool gzipped, size_t orig_len,
		       const void **ret, size_t *ret_len);
int store_get_varints(const unsigned char *p, size_t len, int64_t *out, size_t max);

/* ---- maintain.c: counters and the size bound --------------------------------- */

int store_counter_add(struct store *s, enum store_counter c, int64_t n);
void store_counters_add_alone(struct store *s, const enum store_counter *c, const int64_t *n,
			      size_t k);
uint64_t store_intake_limit(const struct store *s);
int store_make_room(struct store *s, uint64_t need, uint64_t limit, int64_t before_s,
		    bool allow_prune, bool *ret_ok);
int store_full_error(struct store *s, const char *what);

#endif
