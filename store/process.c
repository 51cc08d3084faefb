/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the processes table (a host PID with its start time) and the
 * services the processes make up.
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

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
	if ((r = store_bind_int(s, q, 1, p->pid)) < 0 ||
	    (r = store_bind_int64(s, q, 2, p->start_time_ns)) < 0 ||
	    (r = store_bind_text(s, q, 3, p->comm)) < 0 ||
	    (r = store_bind_text(s, q, 4, p->exe)) < 0 ||
	    (r = store_bind_text(s, q, 5, p->cmdline)) < 0 ||
	    (r = store_bind_text(s, q, 6, p->service)) < 0 ||
	    (r = store_bind_text(s, q, 7, p->container_id)) < 0 ||
	    (r = store_bind_text(s, q, 8, profile__runtime_name(p->runtime))) < 0 ||
	    (r = store_bind_int64(s, q, 9, seen_ns)) < 0)
		goto cleanup;
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
		.runtime = profile__runtime_parse(store_col_text(q, c + 8)),
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
	r = store_bind_int64(s, q, 1, id);
	if (r < 0)
		return r;
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
	if ((r = store_bind_text(s, st_, 1, q->service)) < 0 ||
	    (r = store_bind_int(s, st_, 2, q->pid)) < 0 ||
	    (r = store_bind_int64(s, st_, 3, q->from_ns)) < 0 ||
	    (r = store_bind_int64(s, st_, 4, q->until_ns)) < 0 ||
	    (r = store_bind_int64(s, st_, 5, q->limit ? (int64_t)q->limit : -1)) < 0)
		goto cleanup;
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
cleanup:
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
	r = store_bind_int64(s, st_, 1, since_ns);
	if (r < 0)
		goto cleanup;
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
cleanup:
	sqlite3_finalize(st_);
	return r;
}

int store__find_process(struct store *s, int32_t pid, int64_t start_time_ns, int64_t *ret_id)
{
	sqlite3_stmt *q = store_stmt(s, ST_PROCESS_FIND);
	int r;

	if (!q)
		return -EIO;
	if ((r = store_bind_int(s, q, 1, pid)) < 0 ||
	    (r = store_bind_int64(s, q, 2, start_time_ns)) < 0)
		return r;
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
