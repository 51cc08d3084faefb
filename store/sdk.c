/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: SDK profiles, kept as received (gzipped), with what the merger and
 * the forwarder need to know of each: labels, sample types, the process it
 * was attributed to, and the cpu_time, merged, queued and forwarded flags.
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const attribution_names[STORE_ATTR_COUNT] = {
	[STORE_ATTR_NONE] = "none",
	[STORE_ATTR_PEER_TCP] = "tcp-peer",
	[STORE_ATTR_PEER_UNIX] = "unix-peer",
	[STORE_ATTR_PID_LABEL] = "pid-label",
	[STORE_ATTR_SERVICE_ENV] = "service-env",
};

const char *store__attribution_name(enum store_attribution a)
{
	return (unsigned)a < STORE_ATTR_COUNT ? attribution_names[a] : "none";
}

static enum store_attribution attribution_parse(const char *name)
{
	for (int i = 0; name && i < STORE_ATTR_COUNT; i++)
		if (strcmp(name, attribution_names[i]) == 0)
			return (enum store_attribution)i;
	return STORE_ATTR_NONE;
}

/* Whether a profile describes CPU or wall time, which the merger can splice
 * eBPF stacks into (as opposed to memory, allocations, locks, goroutines):
 * a sample type named "cpu" or "wall" (any unit), or a __name__ of
 * process_cpu, cpu, wall or itimer. The one statement of the rule: puts and
 * the 1 -> 2 migration's backfill both come here. */
static bool cpu_time_rule(const char *profile_name, const struct store_sample_type *types, size_t n)
{
	/* "jfr": the Java agent's push, a recording whose CPU samples (itimer,
	 * cpu or wall events) the merger reads (profile__from_jfr) */
	static const char *const names[] = {"process_cpu", "cpu", "wall", "itimer", "jfr"};

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
void store_sql_cpu_time(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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

int store__put_sdk_profile(struct store *s, const struct store_sdk_profile *p, int64_t *ret_id)
{
	const void *payload;
	size_t payload_len;
	bool gzipped = false, ok, cpu_time;
	int64_t received_ns;
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
	received_ns = p->received_ns ? p->received_ns : store__now_ns();
	cpu_time = cpu_time_rule(p->profile_name, p->types, p->n_types);
	/* process_id (14) stays NULL when the profile is not attributed */
	if ((r = store_bind_int64(s, q, 1, received_ns)) < 0 ||
	    (r = store_bind_text(s, q, 2, p->service)) < 0 ||
	    (r = store_bind_text(s, q, 3, p->profile_name)) < 0 ||
	    (r = store_bind_blob(s, q, 4, s->buf1.data ? s->buf1.data : "", s->buf1.len)) < 0 ||
	    (r = store_bind_text(s, q, 5, p->tenant)) < 0 ||
	    (r = store_bind_blob(s, q, 6, s->buf2.data ? s->buf2.data : "", s->buf2.len)) < 0 ||
	    (r = store_bind_int64(s, q, 7, p->from_ns)) < 0 ||
	    (r = store_bind_int64(s, q, 8, p->until_ns)) < 0 ||
	    (r = store_bind_text(s, q, 9, p->spy_name ? p->spy_name : "unknown")) < 0 ||
	    (r = store_bind_text(s, q, 10, p->format)) < 0 ||
	    (r = store_bind_int64(s, q, 11, p->sample_rate)) < 0 ||
	    (r = store_bind_text(s, q, 12, p->units)) < 0 ||
	    (r = store_bind_text(s, q, 13, p->aggregation)) < 0 ||
	    (p->process_id > 0 && (r = store_bind_int64(s, q, 14, p->process_id)) < 0) ||
	    (r = store_bind_text(s, q, 15, store__attribution_name(p->attribution))) < 0 ||
	    (r = store_bind_blob(s, q, 16, payload, payload_len)) < 0 ||
	    (r = store_bind_int(s, q, 17, gzipped)) < 0 ||
	    (r = store_bind_int64(s, q, 18, (int64_t)p->payload_len)) < 0 ||
	    (r = store_bind_int(s, q, 19, cpu_time)) < 0)
		goto cleanup;
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
int store_read_payload(struct store *s, sqlite3_stmt *q, int col, bool gzipped, size_t orig_len,
		       const void **ret, size_t *ret_len)
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
	r = store_bind_int64(s, q, 1, id);
	if (r < 0)
		return r;
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
	 * sdk_profiles_unqueued (a term hidden in an OR takes neither). The
	 * merger's question, unmerged CPU profiles, names its partial index:
	 * the planner, with no statistics, would rather walk every CPU profile
	 * of sdk_profiles_cover and read each row's merged, past its payload. */
	snprintf(sql, sizeof(sql),
		 "SELECT id, received_ns, service, profile_name, labels, tenant, sample_types, "
		 "from_ns, until_ns, spy_name, format, sample_rate, units, aggregation, "
		 "process_id, attribution, %s, payload_gzipped, payload_len, merged, forwarded, "
		 "cpu_time, queued FROM sdk_profiles%s WHERE 1%s%s%s%s%s%s "
		 "ORDER BY from_ns, id LIMIT ?5",
		 qy->with_payload ? "payload" : "NULL",
		 qy->unmerged_only && qy->cpu_time_only ? " INDEXED BY sdk_profiles_unmerged" : "",
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
	if ((r = store_bind_int64(s, q, 1, qy->process_id)) < 0 ||
	    (r = store_bind_text(s, q, 2, qy->service)) < 0 ||
	    (r = store_bind_int64(s, q, 3, qy->from_ns)) < 0 ||
	    (r = store_bind_int64(s, q, 4, qy->until_ns)) < 0 ||
	    (r = store_bind_int64(s, q, 5, qy->limit ? (int64_t)qy->limit : -1)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		r = read_sdk(s, q, qy->with_payload, &p);
		if (r >= 0)
			r = fn(ctx, &p);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "listing SDK profiles");
cleanup:
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
	r = store_bind_int64(s, q, 1, id);
	if (r >= 0)
		r = store_run(s, q, "marking an SDK profile merged");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no SDK profile %" PRId64, id);
cleanup:
	return store_op_end(s, r);
}
