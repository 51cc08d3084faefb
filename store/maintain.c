/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the size bound, the counters of what was dropped, statistics, and
 * the periodic cleanup (retention, unused stacks and frames).
 *
 * - A stack's last_used_s is kept within STACK_TOUCH_S of the newest bucket
 *   that uses it, so a stack whose last_used_s + STACK_TOUCH_S is older than
 *   the oldest bucket has no bucket left and can go, without an index from
 *   buckets to stacks.
 * - The size bound counts the pages that hold data ((page_count -
 *   freelist_count) * page_size) and is checked inside the write transaction,
 *   before the row goes in; max_page_count is a hard ceiling a little above.
 */
#include "store/store_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Rows removed per transaction by the cleanup, so writers never wait long. */
#define CLEANUP_CHUNK 5000

/* ---- counters -------------------------------------------------------------- */

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

const char *store__counter_name(enum store_counter c)
{
	return (unsigned)c < STORE_CTR_COUNT ? counter_names[c] : "?";
}

const char *store__table_name(enum store_table t)
{
	return (unsigned)t < STORE_TABLE_COUNT ? table_names[t] : "?";
}

int store_counter_add(struct store *s, enum store_counter c, int64_t n)
{
	sqlite3_stmt *q = store_stmt(s, ST_COUNTER_ADD);
	int r;

	if (!n)
		return 0;
	if (!q)
		return -EIO;
	if ((r = store_bind_text(s, q, 1, counter_names[c])) < 0 ||
	    (r = store_bind_int64(s, q, 2, n)) < 0)
		return r;
	return store_run(s, q, "counting");
}

/* Adds to counters in a transaction of their own (after a refusal rolled
 * the call back). Counting is best effort: its failure is not the call's. */
void store_counters_add_alone(struct store *s, const enum store_counter *c, const int64_t *n,
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
	r = store_bind_int64(s, q, 1, second);
	if (r >= 0)
		r = store_step_row(s, q, "counting eBPF buckets");
	if (r < 0)
		return r;
	rows = sqlite3_column_int64(q, 0);
	samples = (int64_t)sqlite3_column_double(q, 1);
	sqlite3_reset(q);
	q = store_stmt(s, ST_SECOND_DELETE);
	if (!q)
		return -EIO;
	r = store_bind_int64(s, q, 1, second);
	if (r >= 0)
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
uint64_t store_intake_limit(const struct store *s)
{
	return s->max_bytes - s->max_bytes / 32;
}

/* Makes room for `need` more bytes under `limit`, inside the caller's
 * write transaction: drops the oldest eBPF buckets (those before before_s)
 * one second at a time, then forwarded SDK profiles when allow_prune.
 * *ret_ok says whether the room is there. */
int store_make_room(struct store *s, uint64_t need, uint64_t limit, int64_t before_s,
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
			r = store_bind_int64(s, q, 1, 64);
			if (r >= 0)
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

int store_full_error(struct store *s, const char *what)
{
	uint64_t used = 0;

	used_bytes(s, &used);
	return store_fail(s, -ENOSPC,
			  "store full: %s refused; %.1f of %.1f MiB hold data not yet forwarded or "
			  "expired (%s)",
			  what, used / 1048576.0, s->max_bytes / 1048576.0, s->path);
}

/* ---- stats ---------------------------------------------------------------------------- */

static uint64_t file_size(const char *path, const char *suffix)
{
	char p[PATH_MAX];
	struct stat sb;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* store__row_stats counts a table of more than ROWS_RECOUNT_MIN rows again
 * once ROWS_RECOUNT_NS have passed; in between it gives the last count */
#define ROWS_RECOUNT_MIN 100000
#define ROWS_RECOUNT_NS	 (60 * 1000000000ll)

/* depth: 0 rows and the cheap figures (metrics), 1 all but the bytes per
 * table, 2 those too */
static int stats_locked(struct store *s, int depth, struct store_stats *st_out)
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
	int64_t now = store__now_ns();
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
		/* count(*) walks a whole index: 0.06 s for the 8.6 million buckets
		 * of 24 hours (bench/growth.sh, store), which the agent's gauges
		 * would pay every 5 s */
		if (depth == 0 && s->rows_counted[t] > ROWS_RECOUNT_MIN &&
		    now - s->rows_counted_ns[t] < ROWS_RECOUNT_NS) {
			r0.tables[t].rows = s->rows_counted[t];
			r = 0;
		} else {
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table_names[t]);
			r = store_scalar(s, sql, 0, &r0.tables[t].rows);
			s->rows_counted[t] = r < 0 ? 0 : r0.tables[t].rows;
			s->rows_counted_ns[t] = now;
		}
		for (int k = 0; r >= 0 && depth > 0 && k < 2 && time_sql[t][0]; k++)
			r = store_scalar(s, time_sql[t][k], 0,
					 k ? &r0.tables[t].newest_ns : &r0.tables[t].oldest_ns);
		if (r < 0)
			return r;
	}
	/* what reads every row of a table: not for metrics, every few seconds */
	if (depth > 0 &&
	    ((r = store_scalar(s, "SELECT total(count) FROM ebpf_buckets", 0, &r0.ebpf_samples)) <
		     0 ||
	     (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE merged = 0", 0,
			       &r0.sdk_unmerged)) < 0 ||
	     (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE forwarded = 0", 0,
			       &r0.sdk_unforwarded)) < 0 ||
	     (r = store_scalar(s, "SELECT count(*) FROM sdk_profiles WHERE queued = 0", 0,
			       &r0.sdk_unqueued)) < 0))
		return r;
	if ((r = store_scalar(s, "SELECT count(*) FROM outbox WHERE next_attempt_ns <= ?1", now,
			      &r0.outbox_due)) < 0)
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
	if (depth > 1) {
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

static int stats(struct store *s, int depth, struct store_stats *ret)
{
	bool own = !s->user_tx;
	int r;

	/* one read transaction: the figures are one snapshot */
	if (own && (r = store_exec_sql(s, "BEGIN", "reading statistics")) < 0)
		return r;
	r = stats_locked(s, depth, ret);
	if (own) {
		int c = store_exec_sql(s, "COMMIT", "ending the statistics read");

		r = r < 0 ? r : c;
	}
	if (r >= 0)
		ret->memory_bytes = (uint64_t)sqlite3_memory_used();
	return r;
}

int store__stats(struct store *s, bool detailed, struct store_stats *ret)
{
	return stats(s, detailed ? 2 : 1, ret);
}

int store__row_stats(struct store *s, struct store_stats *ret)
{
	return stats(s, 0, ret);
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
	r = sqlite3_bind_parameter_count(q) ? store_bind_int64(s, q, 1, param) : 0;
	if (r >= 0)
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
			r = store_bind_int64(s, del, 1, id);
			if (r < 0)
				break;
			rc = sqlite3_step(del);
			sqlite3_reset(del);
			if (rc != SQLITE_DONE)
				break;
			rc = SQLITE_OK;
			frames++;
		}
		sqlite3_finalize(del);
		if (r >= 0 && rc != SQLITE_DONE)
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
	if (r >= 0) {
		/* PASSIVE waits for nobody: busy means another connection is
		 * checkpointing already, which does the same work */
		int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						   NULL);

		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			r = store_db_fail(s, rc, "checkpointing the WAL");
	}
	if (r >= 0 && ret)
		*ret = m;
	return r;
}
