/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the outbox of profiles waiting for the upstream, delivered in
 * order per series, and the dead letters it refused for good.
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int store__outbox_add(struct store *s, const struct store_outbox_item *it, int64_t *ret_id)
{
	sqlite3_stmt *q;
	uint64_t need;
	int64_t id = 0, created_ns;
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
	if (!it->payload && it->sdk_profile_id <= 0)
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
		r = store_bind_int64(s, q, 1, it->sdk_profile_id);
		if (r >= 0)
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
	/* the payload (8), the SDK profile (9) or both (a conversion of it);
	 * raw_id (11) is the caller's, else the new one on this stack frame
	 * (copied) */
	created_ns = it->created_ns ? it->created_ns : store__now_ns();
	if ((r = store_bind_int64(s, q, 1, created_ns)) < 0 ||
	    (r = store_bind_text(s, q, 2, it->series)) < 0 ||
	    (r = store_bind_text(s, q, 3, it->tenant)) < 0 ||
	    (r = store_bind_text(s, q, 4, it->kind)) < 0 ||
	    (r = store_bind_blob(s, q, 5, s->buf1.data ? s->buf1.data : "", s->buf1.len)) < 0 ||
	    (r = store_bind_int64(s, q, 6, it->from_ns)) < 0 ||
	    (r = store_bind_int64(s, q, 7, it->until_ns)) < 0 ||
	    (it->payload && (r = store_bind_blob(s, q, 8, it->payload, it->payload_len)) < 0) ||
	    (it->sdk_profile_id > 0 && (r = store_bind_int64(s, q, 9, it->sdk_profile_id)) < 0) ||
	    (r = store_bind_int64(s, q, 10, it->next_attempt_ns)) < 0 ||
	    (r = it->raw_id ? store_bind_text(s, q, 11, it->raw_id)
			    : store_bind_text_copy(s, q, 11, raw_id)) < 0)
		goto cleanup;
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
 * without a payload of its own gets its profile's payload as received. */
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
	if (sqlite3_column_type(q, 7) != SQLITE_NULL) {
		it->converted = true;
		return r;
	}
	{
		sqlite3_stmt *p = store_stmt(s, ST_OUTBOX_GET_SDK);
		const void *data;
		size_t len;

		if (!p)
			return -EIO;
		r = store_bind_int64(s, p, 1, it->sdk_profile_id);
		if (r < 0)
			return r;
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
	r = store_bind_int64(s, q, 1, now_ns);
	if (r < 0)
		goto cleanup;
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
cleanup:
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
	if ((r = store_bind_int64(s, q, 1, item)) < 0 || (r = store_bind_int64(s, q, 2, a)) < 0 ||
	    (r = store_bind_text(s, q, 3, text)) < 0)
		goto cleanup;
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
	r = store_bind_int64(s, q, 1, id);
	if (r < 0)
		goto cleanup;
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
		r = store_bind_int64(s, q, 1, sdk);
		if (r >= 0)
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
	if ((r = store_bind_int64(s, q, 1, id)) < 0 ||
	    (r = store_bind_int64(s, q, 2, store__now_ns())) < 0 ||
	    (r = store_bind_int(s, q, 3, status)) < 0 ||
	    (r = store_bind_text_copy(s, q, 4, msg)) < 0)
		goto cleanup;
	r = store_run(s, q, "moving an item to the dead letters");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no outbox item %" PRId64, id);
	if (r >= 0) {
		q = store_stmt(s, ST_OUTBOX_DELETE);
		r = q ? store_bind_int64(s, q, 1, id) : -EIO;
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
	r = store_bind_int64(s, q, 1, limit ? (int64_t)limit : -1);
	if (r < 0)
		goto cleanup;
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
cleanup:
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
	r = store_bind_int64(s, q, 1, limit ? (int64_t)limit : -1);
	if (r < 0)
		goto cleanup;
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
cleanup:
	sqlite3_finalize(q);
	return r;
}
