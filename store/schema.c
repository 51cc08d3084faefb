/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: the schema, one migration step per version (docs/store.md,
 * "Migrations"), and the code that runs them at open.
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>

/* "brad" in the database header: tells braid's file from any other SQLite
 * database that happens to sit at the path. */
#define STORE_APPLICATION_ID 0x62726164

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
	 * sdk.c's rule (cpu_time_rule), registered by store_migrate() for as long
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
	/* 4 -> 5: each bucket's thread pointer (pthread_self() on x86-64, 0:
	 * unknown), which the merger matches against an SDK's thread labels
	 * (docs/threads.md). Constant for a thread's life, so not in the key:
	 * the last drain's wins. */
	"ALTER TABLE ebpf_buckets ADD COLUMN thread_pointer INTEGER NOT NULL DEFAULT 0;",
	/* 5 -> 6: the merger's two questions about SDK profiles, answered from
	 * indexes. merged, cpu_time and the coverage columns sit after the
	 * payload, or are tested row by row: without these, each pass read
	 * every SDK profile's overflow pages (the unmerged ones) and every
	 * earlier profile of a process for each of its pending buckets (the
	 * coverage), a pass that grew with the store; the 30-minute soak's
	 * CPU a minute rose from 1.7 s to 3.0 s. */
	"CREATE INDEX sdk_profiles_unmerged ON sdk_profiles(process_id, from_ns)"
	" WHERE merged = 0 AND cpu_time = 1;"
	"CREATE INDEX sdk_profiles_cover ON sdk_profiles(process_id, until_ns, from_ns)"
	" WHERE cpu_time = 1;",
};
_Static_assert(UTIL_ARRAY_SIZE(migrations) == STORE_SCHEMA_VERSION,
	       "one migration step per schema version");

/* Brings the schema to `target` (STORE_SCHEMA_VERSION but in tests), one
 * step per transaction. */
int store_migrate(struct store *s, int target)
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
