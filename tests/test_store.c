/* SPDX-License-Identifier: Apache-2.0 */
/* store/: file safety, round trips of every kind of row, deduplication,
 * the merger's queries, the outbox's order, the size bound and retention.
 * The crash and concurrency tests are programs of their own
 * (store_crash.c, store_concurrency.c). */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define T0 1700000000ll /* a second in the past, for bucket times */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct fx {
	char dir[64];
	char data_dir[96];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct store_options o = {0};
	struct errbuf err = {{0}};

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/braid-test-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* a data directory that does not exist yet: the store creates it */
	snprintf(f->data_dir, sizeof(f->data_dir), "%s/data", f->dir);
	o.data_dir = f->data_dir;
	if (store__open(&o, &err, &f->s) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store__close(f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct store *reopen(struct fx *f, const struct store_options *extra)
{
	struct store_options o = extra ? *extra : (struct store_options){0};
	struct errbuf err = {{0}};
	struct store *s = NULL;

	o.data_dir = f->data_dir;
	if (store__open(&o, &err, &s) < 0)
		fail_msg("reopen: %s", err.msg);
	return s;
}

/* ---- file safety ------------------------------------------------------------ */

static void test_open_modes(void **state)
{
	struct fx *f = *state;
	char path[160];
	struct stat sb;
	int64_t id;

	assert_int_equal(stat(f->data_dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/braid.db", f->data_dir);
	assert_string_equal(store__path(f->s), path);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* a write creates the WAL: SQLite gives it the database's mode */
	assert_int_equal(store__put_process(f->s, &(struct store_process){.pid = 1}, 1, &id), 0);
	snprintf(path, sizeof(path), "%s/braid.db-wal", f->data_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_open_refuses_garbage(void **state)
{
	struct fx *f = *state;
	struct store_options o = {.data_dir = f->dir};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	char path[160], buf[64];
	int fd;

	/* not a database: an error naming the path; the file is left alone */
	snprintf(path, sizeof(path), "%s/braid.db", f->dir);
	write_file(path, "this is not a database, it is some other file\n", 46);
	assert_true(store__open(&o, &err, &s) < 0);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "never recreates"));
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 46);
	close(fd);
	assert_memory_equal(buf, "this is not a database", 22);

	/* read-only on a missing store: no file appears */
	o.data_dir = "/tmp/braid-no-such-dir-for-test";
	o.read_only = true;
	assert_int_equal(store__open(&o, &err, &s), -ENOENT);
	assert_non_null(
		strstr(err.msg, "no braid store at /tmp/braid-no-such-dir-for-test/braid.db"));
	assert_int_equal(access("/tmp/braid-no-such-dir-for-test", F_OK), -1);

	/* a bound too small to be useful */
	o = (struct store_options){.data_dir = f->dir, .max_bytes = 1000};
	assert_int_equal(store__open(&o, &err, &s), -EINVAL);
	assert_non_null(strstr(err.msg, "at least 1 MiB"));
}

static void test_open_refuses_damage(void **state)
{
	struct fx *f = *state;
	struct errbuf err = {{0}};
	struct store_options o = {.data_dir = f->data_dir};
	struct store *s = NULL;
	char path[160];
	struct stat sb;
	char *data;
	int fd;

	/* fill a few pages, close cleanly (checkpointed into the main file) */
	for (int i = 1; i <= 300; i++) {
		int64_t id;
		struct store_process p = {
			.pid = i, .start_time_ns = i, .cmdline = "x x x x x x x x"};

		assert_int_equal(store__put_process(f->s, &p, 1, &id), 0);
	}
	store__close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/braid.db", f->data_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size >= 4 * 4096);
	/* scribble over the third page: a b-tree page of the schema */
	data = malloc(4096);
	assert_non_null(data);
	memset(data, 0x5a, 4096);
	fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, data, 4096, 2 * 4096), 4096);
	close(fd);
	free(data);
	assert_int_equal(store__open(&o, &err, &s), -EIO);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "damaged"));
	/* still the same size: never recreated */
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size >= 4 * 4096);
	f->s = NULL;
	/* teardown closes NULL */
}

static void test_schema_versions(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	struct errbuf err = {{0}};
	struct store_options o = {.data_dir = f->dir};
	struct store *s = NULL;
	char path[160];
	char cmd[512];

	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.schema_version, STORE_SCHEMA_VERSION);

	/* a database from a newer braid is refused, not downgraded */
	snprintf(path, sizeof(path), "%s/braid.db", f->dir);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 %s 'PRAGMA application_id = %d; PRAGMA user_version = 99; "
		 "CREATE TABLE future(x);'",
		 path, 0x62726164);
	if (system(cmd) != 0)
		skip();
	assert_int_equal(store__open(&o, &err, &s), -EPROTO);
	assert_non_null(strstr(err.msg, "schema version 99"));

	/* somebody else's SQLite database */
	unlink(path);
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 %s 'CREATE TABLE notes(x); INSERT INTO notes VALUES (1);'", path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store__open(&o, &err, &s), -EINVAL);
	assert_non_null(strstr(err.msg, "not braid's"));

	/* an empty file (created, then killed before the schema) is migrated */
	unlink(path);
	write_file(path, "", 0);
	assert_int_equal(store__open(&o, &err, &s), 0);
	assert_int_equal(store__stats(s, false, &st), 0);
	assert_int_equal(st.schema_version, STORE_SCHEMA_VERSION);
	store__close(s);
}

/* X'..' of NUL-terminated strings laid end to end: a label or sample type
 * list as the store keeps it. */
static void blob_literal(char *out, size_t size, const char *const *parts, size_t n)
{
	size_t k = (size_t)snprintf(out, size, "X'");

	for (size_t i = 0; i < n; i++)
		for (const char *c = parts[i];; c++) {
			k += (size_t)snprintf(out + k, size - k, "%02x", (unsigned char)*c);
			if (!*c)
				break;
		}
	snprintf(out + k, size - k, "'");
}

/* ---- SDK profiles --------------------------------------------------------------- */

struct got_sdk {
	int n;
	int64_t id;
	char service[64], name[64], tenant[64], spy[64], format[16], labels[512], types[256];
	int64_t from, until, rate, process_id;
	enum store_attribution attribution;
	unsigned char payload[4096];
	size_t payload_len;
	bool merged, forwarded, cpu_time, queued;
	int64_t ids[16]; /* of every profile seen, in order */
};

static int got_sdk(void *ctx, const struct store_sdk_profile *p)
{
	struct got_sdk *g = ctx;
	size_t n = 0;

	if (g->n < 16)
		g->ids[g->n] = p->id;
	g->n++;
	g->id = p->id;
	snprintf(g->service, sizeof(g->service), "%s", p->service);
	snprintf(g->name, sizeof(g->name), "%s", p->profile_name ? p->profile_name : "(null)");
	snprintf(g->tenant, sizeof(g->tenant), "%s", p->tenant ? p->tenant : "(null)");
	snprintf(g->spy, sizeof(g->spy), "%s", p->spy_name);
	snprintf(g->format, sizeof(g->format), "%s", p->format);
	g->labels[0] = g->types[0] = '\0';
	for (size_t i = 0; i < p->n_labels; i++)
		n += (size_t)snprintf(g->labels + n, sizeof(g->labels) - n, "%s=%s;",
				      p->labels[i].name, p->labels[i].value);
	n = 0;
	for (size_t i = 0; i < p->n_types; i++)
		n += (size_t)snprintf(g->types + n, sizeof(g->types) - n, "%s/%s=%lld;",
				      p->types[i].type, p->types[i].unit,
				      (long long)p->types[i].total);
	g->from = p->from_ns;
	g->until = p->until_ns;
	g->rate = p->sample_rate;
	g->process_id = p->process_id;
	g->attribution = p->attribution;
	g->merged = p->merged;
	g->forwarded = p->forwarded;
	g->cpu_time = p->cpu_time;
	g->queued = p->queued;
	g->payload_len = p->payload_len;
	if (p->payload && p->payload_len <= sizeof(g->payload))
		memcpy(g->payload, p->payload, p->payload_len);
	return 0;
}

static void read_fixture(const char *name, struct dynbuf *out)
{
	char path[512];
	struct errbuf err;

	snprintf(path, sizeof(path), "%s/%s", BRAID_FIXTURES, name);
	dynbuf__init(out, 0);
	if (util__read_file(path, 1 << 20, &err, out) < 0)
		fail_msg("%s", err.msg);
}

static const struct label node_labels[] = {
	{"service_name", "shop-api"},
	{"__name__", "wall"},
	{"env", "prod, eu {x=y}"},
	{"note", "caf\xc3\xa9 \"quoted\""},
};

static const struct store_sample_type node_types[] = {
	{"samples", "count", 1234},
	{"wall", "nanoseconds", 12340000000},
	{"cpu", "nanoseconds", 987654321},
};

static struct store_sdk_profile node_profile(const struct dynbuf *payload, int64_t process_id)
{
	return (struct store_sdk_profile){
		.received_ns = store__now_ns(),
		.service = "shop-api",
		.profile_name = "wall",
		.labels = node_labels,
		.n_labels = 4,
		.tenant = "team-a",
		.types = node_types,
		.n_types = 3,
		.from_ns = 1700000000000000000,
		.until_ns = 1700000060000000000,
		.spy_name = "nodespy",
		.format = "pprof",
		.sample_rate = 100,
		.process_id = process_id,
		.attribution = process_id ? STORE_ATTR_PEER_TCP : STORE_ATTR_NONE,
		.payload = payload->data,
		.payload_len = payload->len,
	};
}

static void test_sdk_round_trip(void **state)
{
	struct fx *f = *state;
	struct dynbuf fixture;
	struct store_process proc = {.pid = 4242,
				     .start_time_ns = 1699999990000000000,
				     .comm = "node",
				     .service = "shop-api",
				     .runtime = RUNTIME_NODE};
	struct store_sdk_profile p;
	struct got_sdk g = {0};
	int64_t pid_row, id1, id2;
	const char *text = "main;work;fib 12\nmain;idle 3\n";

	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &fixture);
	assert_int_equal(fixture.len, 1318);
	assert_int_equal(store__put_process(f->s, &proc, store__now_ns(), &pid_row), 0);
	p = node_profile(&fixture, pid_row);
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id1), 0);

	/* a folded body (not gzip): compressed on disk, given back as received */
	p.format = "folded";
	p.payload = text;
	p.payload_len = strlen(text);
	p.tenant = NULL;
	p.process_id = 0;
	p.attribution = STORE_ATTR_NONE;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id2), 0);
	assert_true(id2 > id1);

	/* read through a fresh connection: what was committed, not a cache */
	store__close(f->s);
	f->s = reopen(f, NULL);
	assert_int_equal(store__get_sdk_profile(f->s, id1, got_sdk, &g), 0);
	assert_string_equal(g.service, "shop-api");
	assert_string_equal(g.name, "wall");
	assert_string_equal(g.tenant, "team-a");
	assert_string_equal(g.spy, "nodespy");
	assert_string_equal(g.format, "pprof");
	assert_string_equal(g.labels, "service_name=shop-api;__name__=wall;env=prod, eu {x=y};"
				      "note=caf\xc3\xa9 \"quoted\";");
	assert_string_equal(g.types, "samples/count=1234;wall/nanoseconds=12340000000;"
				     "cpu/nanoseconds=987654321;");
	assert_int_equal(g.from, 1700000000000000000);
	assert_int_equal(g.until, 1700000060000000000);
	assert_int_equal(g.rate, 100);
	assert_int_equal(g.process_id, pid_row);
	assert_int_equal(g.attribution, STORE_ATTR_PEER_TCP);
	assert_int_equal(g.payload_len, fixture.len);
	assert_memory_equal(g.payload, fixture.data, fixture.len);
	assert_false(g.merged);

	assert_int_equal(store__get_sdk_profile(f->s, id2, got_sdk, &g), 0);
	assert_string_equal(g.format, "folded");
	assert_string_equal(g.tenant, "(null)");
	assert_int_equal(g.attribution, STORE_ATTR_NONE);
	assert_int_equal(g.payload_len, strlen(text));
	assert_memory_equal(g.payload, text, strlen(text));

	/* queries: by process and range, unmerged only */
	g.n = 0;
	assert_int_equal(
		store__sdk_profiles(f->s,
				    &(struct store_sdk_query){.process_id = pid_row,
							      .from_ns = 1700000030000000000,
							      .until_ns = 1700000031000000000},
				    got_sdk, &g),
		0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id, id1);
	g.n = 0;
	assert_int_equal(
		store__sdk_profiles(f->s,
				    &(struct store_sdk_query){.from_ns = 1700000060000000000,
							      .until_ns = 1700000070000000000},
				    got_sdk, &g),
		0);
	assert_int_equal(g.n, 0); /* until is exclusive */
	assert_int_equal(store__sdk_mark_merged(f->s, id1), 0);
	g.n = 0;
	assert_int_equal(store__sdk_profiles(f->s, &(struct store_sdk_query){.unmerged_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.id, id2);
	assert_int_equal(store__sdk_mark_merged(f->s, 999999), -ENOENT);
	assert_int_equal(store__get_sdk_profile(f->s, 999999, got_sdk, &g), -ENOENT);
	assert_non_null(strstr(store__errmsg(f->s), "no SDK profile 999999"));
	dynbuf__free(&fixture);
}

static void test_sdk_caps(void **state)
{
	struct fx *f = *state;
	struct label many[STORE_MAX_LABELS + 1];
	struct dynbuf fixture;
	struct store_sdk_profile p;
	struct store_stats st;
	char *long_value;
	int64_t id;

	read_fixture("node-sdk-0.6.4/req3.pprof.gz", &fixture);
	p = node_profile(&fixture, 0);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(many); i++)
		many[i] = (struct label){"k", "v"};
	p.labels = many;
	p.n_labels = UTIL_ARRAY_SIZE(many);
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), -EINVAL);
	assert_non_null(strstr(store__errmsg(f->s), "65 labels: at most 64"));

	long_value = malloc(STORE_MAX_LABEL_VALUE + 2);
	assert_non_null(long_value);
	memset(long_value, 'v', STORE_MAX_LABEL_VALUE + 1);
	long_value[STORE_MAX_LABEL_VALUE + 1] = '\0';
	many[0].value = long_value;
	p.n_labels = 1;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), -EINVAL);
	assert_non_null(strstr(store__errmsg(f->s), "label value is longer than 2048 bytes"));
	free(long_value);

	p = node_profile(&fixture, 0);
	p.until_ns = p.from_ns - 1;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), -EINVAL);
	p = node_profile(&fixture, 0);
	p.service = NULL;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), -EINVAL);
	p = node_profile(&fixture, 0);
	p.attribution = STORE_ATTR_PEER_UNIX; /* without a process */
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), -EINVAL);
	/* nothing of the refused calls was stored */
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_SDK_PROFILES].rows, 0);
	dynbuf__free(&fixture);
}

/* Whether a profile is CPU or wall time: worked out on put from its sample
 * types and __name__, whatever the caller says. */
static void test_sdk_cpu_time(void **state)
{
	struct fx *f = *state;
	static const struct store_sample_type memory_types[] = {
		{"inuse_objects", "count", 12},
		{"inuse_space", "bytes", 4096},
	};
	static const struct store_sample_type samples[] = {{"samples", "count", 7}};
	static const struct store_sample_type goroutines[] = {{"goroutine", "count", 40}};
	const char *folded = "main;work 7\n";
	struct dynbuf fixture, text = {.data = (char *)folded, .len = strlen(folded)};
	struct store_sdk_profile p;
	struct got_sdk g = {0};
	struct store_stats st;
	int64_t proc, wall, mem, cpu, gor, oid;

	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &fixture);
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 31, .start_time_ns = 31},
					    1, &proc),
			 0);
	/* Node's wall profile: samples/count, wall/nanoseconds, cpu/nanoseconds */
	p = node_profile(&fixture, proc);
	assert_int_equal(store__put_sdk_profile(f->s, &p, &wall), 0);
	/* its heap profile; what the caller claims is ignored */
	p = node_profile(&fixture, proc);
	p.profile_name = "memory";
	p.types = memory_types;
	p.n_types = 2;
	p.cpu_time = true;
	p.queued = true;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &mem), 0);
	/* a folded push of app.cpu: __name__ process_cpu, samples/count */
	p = node_profile(&text, 0);
	p.format = "folded";
	p.profile_name = "process_cpu";
	p.types = samples;
	p.n_types = 1;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &cpu), 0);
	/* goroutines: neither */
	p.profile_name = "goroutine";
	p.types = goroutines;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &gor), 0);

	assert_int_equal(store__get_sdk_profile(f->s, wall, got_sdk, &g), 0);
	assert_true(g.cpu_time);
	assert_false(g.queued);
	assert_int_equal(store__get_sdk_profile(f->s, mem, got_sdk, &g), 0);
	assert_false(g.cpu_time);
	assert_false(g.queued);
	assert_int_equal(store__get_sdk_profile(f->s, cpu, got_sdk, &g), 0);
	assert_true(g.cpu_time);
	assert_int_equal(store__get_sdk_profile(f->s, gor, got_sdk, &g), 0);
	assert_false(g.cpu_time);

	/* the merger's query: unmerged CPU profiles of a process in a range */
	g = (struct got_sdk){0};
	assert_int_equal(
		store__sdk_profiles(f->s,
				    &(struct store_sdk_query){.process_id = proc,
							      .from_ns = 1700000010000000000,
							      .until_ns = 1700000020000000000,
							      .unmerged_only = true,
							      .cpu_time_only = true},
				    got_sdk, &g),
		0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ids[0], wall);
	g = (struct got_sdk){0};
	assert_int_equal(store__sdk_profiles(f->s, &(struct store_sdk_query){.cpu_time_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ids[0], wall);
	assert_int_equal(g.ids[1], cpu);

	/* queueing a pass-through marks its profile; the rest stay unqueued */
	g = (struct got_sdk){0};
	assert_int_equal(store__sdk_profiles(f->s, &(struct store_sdk_query){.unqueued_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(store__outbox_add(f->s,
					   &(struct store_outbox_item){.series = "shop-api{wall}",
								       .kind = "sdk",
								       .sdk_profile_id = wall},
					   &oid),
			 0);
	assert_int_equal(store__get_sdk_profile(f->s, wall, got_sdk, &g), 0);
	assert_true(g.queued);
	assert_false(g.forwarded);
	g = (struct got_sdk){0};
	assert_int_equal(store__sdk_profiles(f->s, &(struct store_sdk_query){.unqueued_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.ids[0], mem);
	assert_int_equal(g.ids[1], cpu);
	assert_int_equal(g.ids[2], gor);
	g = (struct got_sdk){0};
	assert_int_equal(store__sdk_profiles(f->s,
					     &(struct store_sdk_query){.unqueued_only = true,
								       .cpu_time_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ids[0], cpu);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.sdk_unqueued, 3);

	/* a pass-through of no profile: -ENOENT and nothing written, inside
	 * a transaction too (where it undoes only itself) */
	assert_int_equal(store__outbox_add(f->s,
					   &(struct store_outbox_item){.series = "x{sdk}",
								       .kind = "sdk",
								       .sdk_profile_id = 999999},
					   &oid),
			 -ENOENT);
	assert_non_null(strstr(store__errmsg(f->s), "no SDK profile 999999"));
	assert_int_equal(store__begin(f->s), 0);
	assert_int_equal(store__outbox_add(f->s,
					   &(struct store_outbox_item){.series = "x{sdk}",
								       .kind = "sdk",
								       .sdk_profile_id = 999999},
					   &oid),
			 -ENOENT);
	assert_int_equal(store__outbox_add(f->s,
					   &(struct store_outbox_item){.series = "x{sdk}",
								       .kind = "sdk",
								       .sdk_profile_id = cpu},
					   &oid),
			 0);
	assert_int_equal(store__commit(f->s), 0);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_OUTBOX].rows, 2);
	assert_int_equal(st.sdk_unqueued, 2);
	dynbuf__free(&fixture);
}

/* A version 1 store (the 0 -> 1 step alone, rows written by SQL as braid 1
 * wrote them) opened by this braid: cpu_time and queued are filled in. */
struct got_items {
	int n;
	int64_t ids[16];
	char payload[16][32];
	int64_t attempts[16];
	char raw_id[16][40];
};

/* A version-4 UUID in lowercase, as util__uuid4 writes and the 2 -> 3
 * migration backfills. */
static bool is_uuid4(const char *s)
{
	if (!s || strlen(s) != UTIL_UUID_LEN || s[14] != '4' || !strchr("89ab", s[19]))
		return false;
	for (int i = 0; i < UTIL_UUID_LEN; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
							    : !strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static int got_item(void *ctx, const struct store_outbox_item *it)
{
	struct got_items *g = ctx;

	if (g->n < 16) {
		g->ids[g->n] = it->id;
		g->attempts[g->n] = it->attempts;
		snprintf(g->payload[g->n], sizeof(g->payload[0]), "%.*s", (int)it->payload_len,
			 it->payload ? (const char *)it->payload : "");
		snprintf(g->raw_id[g->n], sizeof(g->raw_id[0]), "%s",
			 it->raw_id ? it->raw_id : "(null)");
	}
	g->n++;
	return 0;
}

struct got_uncovered {
	int n;
	int64_t process_id[4], first[4], last[4], samples[4], sdk[4];
};

static int got_uncovered(void *ctx, const struct store_uncovered *u)
{
	struct got_uncovered *g = ctx;

	if (g->n < 4) {
		g->process_id[g->n] = u->process->id;
		g->first[g->n] = u->first_s;
		g->last[g->n] = u->last_s;
		g->samples[g->n] = u->samples;
		g->sdk[g->n] = u->sdk_profiles;
	}
	g->n++;
	return 0;
}

static void test_migrate_v1(void **state)
{
	static const char *const wall_types[] = {"samples", "count",	   "1",
						 "wall",    "nanoseconds", "5"};
	static const char *const heap_types[] = {"inuse_space", "bytes", "4096"};
	static const char *const cpu_types[] = {"samples", "count", "1", "cpu", "nanoseconds", "9"};
	static const char *const alloc_types[] = {"alloc_objects", "count", "3"};
	static const char *const mutex_types[] = {"contentions", "count",	"2",
						  "delay",	 "nanoseconds", "8"};
	static const struct {
		const char *name;
		const char *const *types;
		size_t n_types;
		int forwarded;
		bool cpu_time, queued;
	} rows[] = {
		{"'wall'", wall_types, 6, 0, true, false},    /* 1: wall, waiting */
		{"'memory'", heap_types, 3, 0, false, false}, /* 2: heap, waiting */
		{"NULL", cpu_types, 6, 1, true, true},	      /* 3: forwarded; cpu type */
		{"'memory'", alloc_types, 3, 0, false, true}, /* 4: in the outbox */
		{"'mutex'", mutex_types, 6, 0, false, true},  /* 5: a dead letter */
	};
	struct fx *f = *state;
	struct store_options o = {.data_dir = f->dir, .migrate_to = 1};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct store_stats st;
	struct got_sdk g = {0};
	struct dynbuf fixture;
	struct store_sdk_profile p;
	char path[160], cmd[256], types[512], msg[128];
	FILE *sql;
	int64_t id;

	if (system("sqlite3 -version >/dev/null 2>&1") != 0)
		skip();
	assert_int_equal(store__open(&o, &err, &s), 0);
	store__close(s);
	snprintf(path, sizeof(path), "%s/braid.db", f->dir);
	snprintf(cmd, sizeof(cmd), "sqlite3 -bail %s >/dev/null", path);
	sql = popen(cmd, "w");
	assert_non_null(sql);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rows); i++) {
		blob_literal(types, sizeof(types), rows[i].types, rows[i].n_types);
		fprintf(sql,
			"INSERT INTO sdk_profiles(id, received_ns, service, profile_name, labels, "
			"tenant, sample_types, from_ns, until_ns, spy_name, format, sample_rate, "
			"units, aggregation, process_id, attribution, payload, payload_gzipped, "
			"payload_len, merged, forwarded) VALUES (%zu, 1, 'app', %s, X'', NULL, %s, "
			"0, 10000000000, 'nodespy', 'pprof', 100, NULL, NULL, NULL, 'none', X'50', "
			"0, 1, 0, %d);\n",
			i + 1, rows[i].name, types, rows[i].forwarded);
	}
	fprintf(sql,
		"INSERT INTO outbox(created_ns, series, kind, labels, from_ns, until_ns, "
		"sdk_profile_id, next_attempt_ns) VALUES (1, 'app{memory}', 'sdk', X'', 0, "
		"10000000000, 4, 0);\n"
		"INSERT INTO dead_letters(outbox_id, created_ns, died_ns, series, kind, labels, "
		"from_ns, until_ns, sdk_profile_id, attempts, status, reason) VALUES (9, 1, 2, "
		"'app{mutex}', 'sdk', X'', 0, 10000000000, 5, 1, 400, 'bad');\n"
		/* a process with eBPF buckets at seconds 100 and 105 */
		"INSERT INTO processes(id, pid, start_time_ns, comm, runtime, first_seen_ns, "
		"last_seen_ns) VALUES (1, 42, 1, 'app', 'native', 1, 1);\n"
		"INSERT INTO stacks(id, hash, frames, last_used_s) VALUES (1, 7, X'01', 105);\n"
		"INSERT INTO ebpf_buckets VALUES (1, 100, 42, 1, 3), (1, 105, 42, 1, 4);\n");
	assert_int_equal(pclose(sql), 0);

	/* read-only, it stays as it is: an error saying so */
	o = (struct store_options){.data_dir = f->dir, .read_only = true};
	assert_int_equal(store__open(&o, &err, &s), -EROFS);
	snprintf(msg, sizeof(msg), "schema version 1 and needs migrating to %d",
		 STORE_SCHEMA_VERSION);
	assert_non_null(strstr(err.msg, msg));

	o.read_only = false;
	assert_int_equal(store__open(&o, &err, &s), 0);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rows); i++) {
		assert_int_equal(store__get_sdk_profile(s, (int64_t)i + 1, got_sdk, &g), 0);
		if (g.cpu_time != rows[i].cpu_time || g.queued != rows[i].queued)
			fail_msg("row %zu: cpu_time %d queued %d", i + 1, g.cpu_time, g.queued);
		assert_int_equal(g.payload_len, 1);
		assert_memory_equal(g.payload, "P", 1);
	}
	g = (struct got_sdk){0};
	assert_int_equal(store__sdk_profiles(s, &(struct store_sdk_query){.unqueued_only = true},
					     got_sdk, &g),
			 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ids[0], 1);
	assert_int_equal(g.ids[1], 2);
	assert_int_equal(store__stats(s, false, &st), 0);
	assert_int_equal(st.sdk_unqueued, 2);
	/* and it takes this braid's rows */
	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &fixture);
	p = node_profile(&fixture, 0);
	assert_int_equal(store__put_sdk_profile(s, &p, &id), 0);
	assert_int_equal(store__get_sdk_profile(s, id, got_sdk, &g), 0);
	assert_true(g.cpu_time);
	store__close(s);
	dynbuf__free(&fixture);

	/* migrated once: read-only opens now work */
	o.read_only = true;
	assert_int_equal(store__open(&o, &err, &s), 0);
	store__close(s);
	snprintf(cmd, sizeof(cmd), "test \"$(sqlite3 %s 'PRAGMA user_version')\" = %d", path,
		 STORE_SCHEMA_VERSION);
	assert_int_equal(system(cmd), 0);
	/* 2 -> 3: the item queued before has a UUID now, the dead letter none */
	o.read_only = false;
	assert_int_equal(store__open(&o, &err, &s), 0);
	{
		struct got_items gi = {0};

		assert_int_equal(store__outbox_list(s, 0, got_item, &gi), 0);
		assert_int_equal(gi.n, 1);
		if (!is_uuid4(gi.raw_id[0]))
			fail_msg("a migrated item's ID %s is not a version-4 UUID", gi.raw_id[0]);
	}
	/* 3 -> 4: the process's last eBPF second is known, so its buckets
	 * are still found */
	{
		struct got_uncovered gu = {0};

		assert_int_equal(store__uncovered(s, 200, got_uncovered, &gu), 0);
		assert_int_equal(gu.n, 1);
		assert_int_equal(gu.process_id[0], 1);
		assert_int_equal(gu.first[0], 100);
		assert_int_equal(gu.last[0], 105);
		assert_int_equal(gu.samples[0], 7);
	}
	store__close(s);
}

/* ---- processes ------------------------------------------------------------------ */

static void test_processes(void **state)
{
	struct fx *f = *state;
	struct store_process p = {.pid = 77,
				  .start_time_ns = 5000,
				  .comm = "python3",
				  .exe = "/usr/bin/python3.11",
				  .cmdline = "python3 app.py",
				  .runtime = RUNTIME_PYTHON};
	struct store_process got;
	int64_t a, b, c, found;

	assert_int_equal(store__put_process(f->s, &p, 100, &a), 0);
	/* seen again, knowing only the service now: the rest is kept */
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 77,
								    .start_time_ns = 5000,
								    .service = "billing"},
					    200, &b),
			 0);
	assert_int_equal(a, b);
	/* the PID reused by a later process: another row */
	p.start_time_ns = 9000;
	p.comm = "bash";
	p.runtime = RUNTIME_NATIVE;
	assert_int_equal(store__put_process(f->s, &p, 300, &c), 0);
	assert_int_not_equal(a, c);

	assert_int_equal(store__get_process(f->s, a, &got), 0);
	assert_int_equal(got.pid, 77);
	assert_string_equal(got.comm, "python3");
	assert_string_equal(got.exe, "/usr/bin/python3.11");
	assert_string_equal(got.cmdline, "python3 app.py");
	assert_string_equal(got.service, "billing");
	assert_null(got.container_id);
	assert_int_equal(got.runtime, RUNTIME_PYTHON);
	assert_int_equal(got.first_seen_ns, 100);
	assert_int_equal(got.last_seen_ns, 200);
	assert_int_equal(store__find_process(f->s, 77, 9000, &found), 0);
	assert_int_equal(found, c);
	assert_int_equal(store__find_process(f->s, 77, 1, &found), -ENOENT);
	assert_int_equal(store__put_process(f->s, &(struct store_process){.pid = 0}, 1, &a),
			 -EINVAL);
}

/* ---- eBPF buckets ---------------------------------------------------------------- */

static const struct frame stack_a[] = {
	{FRAME_KERNEL, "copy_user_enhanced_fast_string", "[kernel.kallsyms]", 0},
	{FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", 0},
	{FRAME_NATIVE, "__libc_write", "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x10e2a0},
	{FRAME_JIT, NULL, "[jit]", 0x7f00aa},
	{FRAME_NATIVE, "main", "/usr/bin/node", 0x1000},
};
static const struct frame stack_b[] = {
	{FRAME_NATIVE, "sha256_block_data_order_avx2", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
	 0x2000},
	{FRAME_NATIVE, "main", "/usr/bin/node", 0x1000},
};

struct got_buckets {
	int n;
	int64_t total;
	char text[4096];
	size_t len;
};

static int got_bucket(void *ctx, const struct store_bucket *b)
{
	struct got_buckets *g = ctx;

	g->n++;
	g->total += b->count;
	g->len += (size_t)snprintf(g->text + g->len, sizeof(g->text) - g->len,
				   "%lld/%d/%lld/%llx:", (long long)b->second, b->tid,
				   (long long)b->count, (unsigned long long)b->thread_pointer);
	for (size_t i = 0; i < b->n_frames; i++)
		g->len += (size_t)snprintf(g->text + g->len, sizeof(g->text) - g->len,
					   "%s%d:%s:%s:%llx", i ? "," : "", b->frames[i].kind,
					   b->frames[i].name, b->frames[i].module,
					   (unsigned long long)b->frames[i].offset);
	g->len += (size_t)snprintf(g->text + g->len, sizeof(g->text) - g->len, "\n");
	return 0;
}

/* store__row_stats counts a table of more than 100,000 rows once a minute
 * (count(*) walks a whole index: docs/store.md, "Statistics"); store__stats
 * always counts. A small table is counted every time. */
static void test_row_stats_large(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	struct store_bucket *rows = calloc(1000, sizeof(*rows));
	int64_t p1;

	assert_non_null(rows);
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 10, .start_time_ns = 1},
					    1, &p1),
			 0);
	for (int64_t sec = 0; sec < 101; sec++) {
		for (size_t i = 0; i < 1000; i++)
			rows[i] = (struct store_bucket){
				p1, (int32_t)(100 + i), T0 + sec, stack_a, 5, 1, 0};
		assert_int_equal(store__put_buckets(f->s, rows, 1000, NULL), 0);
	}
	assert_int_equal(store__row_stats(f->s, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].rows, 101000);
	assert_int_equal(st.tables[STORE_TABLE_PROCESSES].rows, 1);
	assert_int_equal(store__put_buckets(f->s, rows, 1, NULL), 0); /* adds to a bucket */
	rows[0].second = T0 + 200;
	assert_int_equal(store__put_buckets(f->s, rows, 1, NULL), 0); /* a new one */
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 11, .start_time_ns = 1},
					    1, &p1),
			 0);
	assert_int_equal(store__row_stats(f->s, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].rows, 101000); /* the last count */
	assert_int_equal(st.tables[STORE_TABLE_PROCESSES].rows, 2);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].rows, 101001);
	free(rows);
}

static void test_buckets(void **state)
{
	struct fx *f = *state;
	struct store_stats st;
	struct got_buckets g = {0};
	int64_t p1, p2;
	size_t dropped = 99;

	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 10, .start_time_ns = 1},
					    1, &p1),
			 0);
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 11, .start_time_ns = 1},
					    1, &p2),
			 0);
	{
		const struct store_bucket rows[] = {
			{p1, 10, T0, stack_a, 5, 3, 0x7f0000001000},
			{p1, 11, T0, stack_b, 2, 1, 0x7f0000002000},
			{p1, 10, T0 + 1, stack_a, 5, 2, 0x7f0000001000},
			{p2, 20, T0, stack_a, 5, 7, 0},
			{p1, 10, T0 + 2, stack_b, 0, 1, 0}, /* an empty stack is a stack */
		};

		assert_int_equal(store__put_buckets(f->s, rows, UTIL_ARRAY_SIZE(rows), &dropped),
				 0);
		assert_int_equal(dropped, 0);
	}
	/* the same bucket again (a second split over two drains) adds up */
	{
		const struct store_bucket again = {p1, 10, T0, stack_a, 5, 4, 0x7f0000001000};

		assert_int_equal(store__put_buckets(f->s, &again, 1, NULL), 0);
	}
	assert_int_equal(store__buckets(f->s, p1, T0, T0 + 2, got_bucket, &g), 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.total, 7 + 1 + 2);
	assert_string_equal(
		g.text,
		"1700000000/10/7/7f0000001000:2:copy_user_enhanced_fast_string:[kernel.kallsyms]:0,"
		"2:do_syscall_64:[kernel.kallsyms]:0,1:__libc_write:/usr/lib/x86_64-linux-gnu/"
		"libc.so.6:10e2a0,3::[jit]:7f00aa,1:main:/usr/bin/node:1000\n"
		"1700000000/11/1/7f0000002000:1:sha256_block_data_order_avx2:/usr/lib/"
		"x86_64-linux-gnu/"
		"libcrypto.so.3:2000,1:main:/usr/bin/node:1000\n"
		"1700000001/10/2/7f0000001000:2:copy_user_enhanced_fast_string:[kernel.kallsyms]:0,"
		"2:do_syscall_64:[kernel.kallsyms]:0,1:__libc_write:/usr/lib/x86_64-linux-gnu/"
		"libc.so.6:10e2a0,3::[jit]:7f00aa,1:main:/usr/bin/node:1000\n");
	/* stored once: 3 distinct stacks (a, b, empty), 6 distinct frames */
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].rows, 5);
	assert_int_equal(st.tables[STORE_TABLE_STACKS].rows, 3);
	assert_int_equal(st.tables[STORE_TABLE_FRAMES].rows, 6);
	assert_int_equal(st.ebpf_samples, 7 + 1 + 2 + 7 + 1);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].oldest_ns, T0 * 1000000000);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].newest_ns, (T0 + 2) * 1000000000);

	/* another connection deduplicates against what this one stored */
	{
		struct store *s2 = reopen(f, NULL);
		const struct store_bucket row = {p2, 21, T0 + 5, stack_b, 2, 1, 0};

		assert_int_equal(store__put_buckets(s2, &row, 1, NULL), 0);
		assert_int_equal(store__stats(s2, false, &st), 0);
		assert_int_equal(st.tables[STORE_TABLE_STACKS].rows, 3);
		store__close(s2);
	}
	/* bad rows are refused whole */
	{
		const struct store_bucket bad[] = {{p1, 1, T0 + 9, stack_a, 5, 1, 0},
						   {p1, 1, T0 + 9, stack_a, 5, 0, 0}};

		const struct frame odd[] = {{FRAME_KIND_COUNT, "x", "y", 0}};
		const struct store_bucket bad2[] = {{p1, 1, T0 + 9, stack_a, 5, 1, 0},
						    {p1, 1, T0 + 9, odd, 1, 1, 0}};

		assert_int_equal(store__put_buckets(f->s, bad, 2, NULL), -EINVAL);
		assert_non_null(strstr(store__errmsg(f->s), "bucket row 1 has a count of 0"));
		/* found while writing: the first row is undone with the call */
		assert_int_equal(store__put_buckets(f->s, bad2, 2, NULL), -EINVAL);
		assert_non_null(strstr(store__errmsg(f->s), "frame 0 has an unknown kind 5"));
		g = (struct got_buckets){0};
		assert_int_equal(store__buckets(f->s, p1, T0 + 9, T0 + 10, got_bucket, &g), 0);
		assert_int_equal(g.n, 0);
	}
}

static void test_uncovered(void **state)
{
	struct fx *f = *state;
	struct got_uncovered g = {0};
	struct dynbuf fixture;
	struct store_sdk_profile p;
	int64_t node, batch, id;
	struct store_bucket rows[20];

	assert_int_equal(
		store__put_process(f->s, &(struct store_process){.pid = 1000, .start_time_ns = 1},
				   1, &node),
		0);
	assert_int_equal(
		store__put_process(f->s, &(struct store_process){.pid = 2000, .start_time_ns = 1},
				   1, &batch),
		0);
	for (int i = 0; i < 10; i++) {
		rows[2 * i] = (struct store_bucket){node, 1000, T0 + i, stack_a, 5, 1, 0};
		rows[2 * i + 1] = (struct store_bucket){batch, 2000, T0 + i, stack_b, 2, 2, 0};
	}
	assert_int_equal(store__put_buckets(f->s, rows, 20, NULL), 0);
	/* the node process pushed a profile covering seconds 0..4 */
	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &fixture);
	p = node_profile(&fixture, node);
	p.from_ns = T0 * 1000000000;
	p.until_ns = (T0 + 5) * 1000000000;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), 0);

	assert_int_equal(store__uncovered(f->s, T0 + 8, got_uncovered, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.process_id[0], node);
	assert_int_equal(g.first[0], T0 + 5);
	assert_int_equal(g.last[0], T0 + 7);
	assert_int_equal(g.samples[0], 3);
	assert_int_equal(g.sdk[0], 1);
	assert_int_equal(g.process_id[1], batch);
	assert_int_equal(g.first[1], T0);
	assert_int_equal(g.last[1], T0 + 7);
	assert_int_equal(g.samples[1], 16);
	assert_int_equal(g.sdk[1], 0);

	/* emitted up to T0 + 6: only seconds 6..7 remain; never backwards */
	assert_int_equal(store__mark_emitted(f->s, batch, T0 + 6), 0);
	assert_int_equal(store__mark_emitted(f->s, batch, T0 + 2), 0);
	g = (struct got_uncovered){0};
	assert_int_equal(store__uncovered(f->s, T0 + 8, got_uncovered, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.first[1], T0 + 6);
	assert_int_equal(g.samples[1], 4);
	assert_int_equal(store__mark_emitted(f->s, 12345, T0), -ENOENT);

	/* emitted past its last bucket, a process is not visited any more
	 * (processes_ebpf_pending), until a bucket comes past its watermark */
	assert_int_equal(store__mark_emitted(f->s, batch, T0 + 10), 0);
	g = (struct got_uncovered){0};
	assert_int_equal(store__uncovered(f->s, T0 + 20, got_uncovered, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.process_id[0], node);
	rows[0] = (struct store_bucket){batch, 2000, T0 + 12, stack_b, 2, 5, 0};
	assert_int_equal(store__put_buckets(f->s, rows, 1, NULL), 0);
	g = (struct got_uncovered){0};
	assert_int_equal(store__uncovered(f->s, T0 + 20, got_uncovered, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.process_id[1], batch);
	assert_int_equal(g.first[1], T0 + 12);
	assert_int_equal(g.samples[1], 5);
	dynbuf__free(&fixture);
}

/* Only CPU and wall profiles cover seconds: a process that pushes only heap
 * profiles has its samples emitted as an SDK-less process's would be. */
static void test_uncovered_cpu_only(void **state)
{
	struct fx *f = *state;
	static const struct store_sample_type heap_types[] = {{"inuse_space", "bytes", 1}};
	struct got_uncovered g = {0};
	struct dynbuf fixture;
	struct store_sdk_profile p;
	int64_t node, heap, id;
	struct store_bucket rows[20];

	assert_int_equal(
		store__put_process(f->s, &(struct store_process){.pid = 1000, .start_time_ns = 1},
				   1, &node),
		0);
	assert_int_equal(
		store__put_process(f->s, &(struct store_process){.pid = 3000, .start_time_ns = 1},
				   1, &heap),
		0);
	for (int i = 0; i < 10; i++) {
		rows[2 * i] = (struct store_bucket){node, 1000, T0 + i, stack_a, 5, 1, 0};
		rows[2 * i + 1] = (struct store_bucket){heap, 3000, T0 + i, stack_b, 2, 2, 0};
	}
	assert_int_equal(store__put_buckets(f->s, rows, 20, NULL), 0);
	read_fixture("node-sdk-0.6.4/req3.pprof.gz", &fixture);
	/* the heap-only process's memory profiles cover every second */
	p = node_profile(&fixture, heap);
	p.profile_name = "memory";
	p.types = heap_types;
	p.n_types = 1;
	p.from_ns = T0 * 1000000000;
	p.until_ns = (T0 + 10) * 1000000000;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), 0);
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), 0);
	/* the node process: a wall profile over seconds 0..4, a heap one over
	 * 5..9 */
	p = node_profile(&fixture, node);
	p.from_ns = T0 * 1000000000;
	p.until_ns = (T0 + 5) * 1000000000;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), 0);
	p.profile_name = "memory";
	p.types = heap_types;
	p.n_types = 1;
	p.from_ns = (T0 + 5) * 1000000000;
	p.until_ns = (T0 + 10) * 1000000000;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &id), 0);

	assert_int_equal(store__uncovered(f->s, T0 + 8, got_uncovered, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.process_id[0], node);
	assert_int_equal(g.first[0], T0 + 5);
	assert_int_equal(g.last[0], T0 + 7);
	assert_int_equal(g.samples[0], 3);
	assert_int_equal(g.sdk[0], 1); /* the wall profile only */
	assert_int_equal(g.process_id[1], heap);
	assert_int_equal(g.first[1], T0);
	assert_int_equal(g.last[1], T0 + 7);
	assert_int_equal(g.samples[1], 16);
	assert_int_equal(g.sdk[1], 0); /* like a process without an SDK */
	dynbuf__free(&fixture);
}

/* ---- outbox ------------------------------------------------------------------------- */

static int got_dead(void *ctx, const struct store_dead_letter *d)
{
	assert_int_equal(d->status, 400);
	assert_string_equal(d->reason, "invalid profile: bad sample type");
	return got_item(ctx, d->item);
}

static void test_outbox(void **state)
{
	struct fx *f = *state;
	struct label labels[] = {{"service_name", "a"}, {"__name__", "process_cpu"}};
	struct store_outbox_item it = {.series = "a{cpu}",
				       .kind = "merged",
				       .labels = labels,
				       .n_labels = 2,
				       .payload = "A1",
				       .payload_len = 2};
	struct got_items g = {0};
	struct store_stats st;
	const char *text = "main;x 1\n";
	struct store_sdk_profile sp;
	struct dynbuf body = {.data = (char *)text, .len = 9};
	int64_t a1, a2, b1, d1, s1, sdk;

	assert_int_equal(store__outbox_add(f->s, &it, &a1), 0);
	it.payload = "A2";
	assert_int_equal(store__outbox_add(f->s, &it, &a2), 0);
	it.series = "b{cpu}";
	it.payload = "B1";
	assert_int_equal(store__outbox_add(f->s, &it, &b1), 0);
	/* an SDK profile sent on unchanged: no copy, its payload read back */
	sp = node_profile(&body, 0);
	sp.format = "folded";
	assert_int_equal(store__put_sdk_profile(f->s, &sp, &sdk), 0);
	it = (struct store_outbox_item){.series = "c{wall}", .kind = "sdk", .sdk_profile_id = sdk};
	assert_int_equal(store__outbox_add(f->s, &it, &s1), 0);
	it.sdk_profile_id = 0;
	assert_int_equal(store__outbox_add(f->s, &it, NULL), -EINVAL); /* neither */
	it.sdk_profile_id = sdk + 1000;
	assert_int_equal(store__outbox_add(f->s, &it, NULL), -ENOENT); /* no such profile */
	it.sdk_profile_id = sdk;

	assert_int_equal(store__outbox_due(f->s, 10, 0, 0, got_item, &g), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.payload[0], "A1");
	assert_string_equal(g.payload[1], "A2");
	assert_string_equal(g.payload[2], "B1");
	assert_string_equal(g.payload[3], "main;x 1\n");
	/* each item has an ID of its own, a UUID that stays as it is */
	for (int i = 0; i < 4; i++) {
		if (!is_uuid4(g.raw_id[i]))
			fail_msg("item %d: ID %s is not a version-4 UUID", i, g.raw_id[i]);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(g.raw_id[i], g.raw_id[j]);
	}
	{
		char a2_id[40];

		snprintf(a2_id, sizeof(a2_id), "%s", g.raw_id[1]);
		/* an ID given is kept */
		it = (struct store_outbox_item){.series = "d{cpu}",
						.kind = "merged",
						.payload = "D1",
						.payload_len = 2,
						.raw_id = "given-id"};
		assert_int_equal(store__outbox_add(f->s, &it, &d1), 0);
		g = (struct got_items){0};
		assert_int_equal(store__outbox_due(f->s, 10, 0, 0, got_item, &g), 0);
		assert_int_equal(g.n, 5);
		assert_string_equal(g.raw_id[1], a2_id);
		assert_string_equal(g.raw_id[4], "given-id");
		assert_int_equal(store__outbox_done(f->s, d1), 0);
	}

	/* A1 fails and waits until t=100: A2 must wait behind it, B1 need not */
	assert_int_equal(store__outbox_retry(f->s, a1, 100, "503 Service Unavailable"), 0);
	g = (struct got_items){0};
	assert_int_equal(store__outbox_due(f->s, 50, 0, 0, got_item, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ids[0], b1);
	assert_int_equal(g.ids[1], s1);
	g = (struct got_items){0};
	assert_int_equal(store__outbox_due(f->s, 100, 0, 0, got_item, &g), 0);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.ids[0], a1);
	assert_int_equal(g.attempts[0], 1);
	/* batches are capped by items and by bytes (the first always goes) */
	g = (struct got_items){0};
	assert_int_equal(store__outbox_due(f->s, 100, 2, 0, got_item, &g), 0);
	assert_int_equal(g.n, 2);
	g = (struct got_items){0};
	assert_int_equal(store__outbox_due(f->s, 100, 0, 3, got_item, &g), 0);
	assert_int_equal(g.n, 1);

	/* delivered: gone; the SDK profile is marked forwarded */
	assert_int_equal(store__outbox_done(f->s, a1), 0);
	assert_int_equal(store__outbox_done(f->s, s1), 0);
	assert_int_equal(store__outbox_done(f->s, s1), -ENOENT);
	{
		struct got_sdk gs = {0};

		assert_int_equal(store__get_sdk_profile(f->s, sdk, got_sdk, &gs), 0);
		assert_true(gs.forwarded);
	}
	/* refused for good: a dead letter with the status and reason */
	assert_int_equal(store__outbox_dead(f->s, a2, 400, "invalid profile: bad sample type"), 0);
	g = (struct got_items){0};
	assert_int_equal(store__dead_letters(f->s, 0, got_dead, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.payload[0], "A2");
	assert_int_equal(g.attempts[0], 1);
	assert_true(is_uuid4(g.raw_id[0])); /* it keeps its ID */
	g = (struct got_items){0};
	assert_int_equal(store__outbox_list(f->s, 0, got_item, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ids[0], b1);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.counters[STORE_CTR_DEAD_LETTERS], 1);
	assert_int_equal(st.tables[STORE_TABLE_OUTBOX].rows, 1);
	assert_int_equal(st.tables[STORE_TABLE_DEAD_LETTERS].rows, 1);
}

/* ---- transactions ------------------------------------------------------------------ */

static void test_user_transaction(void **state)
{
	struct fx *f = *state;
	struct store_outbox_item it = {
		.series = "s", .kind = "merged", .payload = "P", .payload_len = 1};
	struct store_stats st;
	int64_t proc, id;

	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 5, .start_time_ns = 5},
					    1, &proc),
			 0);
	assert_int_equal(store__begin(f->s), 0);
	assert_int_equal(store__begin(f->s), -EINVAL);
	assert_int_equal(store__outbox_add(f->s, &it, &id), 0);
	assert_int_equal(store__mark_emitted(f->s, proc, T0), 0);
	/* a failing call inside undoes only itself */
	assert_int_equal(store__mark_emitted(f->s, 999, T0), -ENOENT);
	store__rollback(f->s);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.tables[STORE_TABLE_OUTBOX].rows, 0);

	assert_int_equal(store__begin(f->s), 0);
	assert_int_equal(store__outbox_add(f->s, &it, &id), 0);
	assert_int_equal(store__mark_emitted(f->s, 999, T0), -ENOENT);
	assert_int_equal(store__mark_emitted(f->s, proc, T0), 0);
	assert_int_equal(store__commit(f->s), 0);
	assert_int_equal(store__commit(f->s), -EINVAL);
	{
		struct store *s2 = reopen(f, NULL);
		struct store_process p;

		assert_int_equal(store__stats(s2, false, &st), 0);
		assert_int_equal(st.tables[STORE_TABLE_OUTBOX].rows, 1);
		assert_int_equal(store__get_process(s2, proc, &p), 0);
		assert_int_equal(p.ebpf_emitted_s, T0);
		store__close(s2);
	}
}

/* ---- bounds ---------------------------------------------------------------------------- */

struct seconds {
	int64_t min, max;
	int64_t rows, samples;
};

static int got_second(void *ctx, const struct store_bucket *b)
{
	struct seconds *s = ctx;

	if (!s->rows || b->second < s->min)
		s->min = b->second;
	if (b->second > s->max)
		s->max = b->second;
	s->rows++;
	s->samples += b->count;
	return 0;
}

static void test_bound(void **state)
{
	struct fx *f = *state;
	struct store_options o = {.max_bytes = 2u << 20};
	struct store *s = reopen(f, &o);
	struct store_stats st;
	struct dynbuf fixture;
	struct store_sdk_profile p;
	int64_t proc, rows = 0, samples = 0, acked = 0, refused = 0, second = T0;
	int64_t *ids;
	struct frame frames[3] = {{FRAME_KERNEL, "k", "[kernel.kallsyms]", 0},
				  {FRAME_NATIVE, "n", "/bin/x", 0},
				  {FRAME_NATIVE, NULL, "/bin/x", 0}};
	struct store_bucket batch[200];
	size_t dropped;
	int r;

	read_fixture("node-sdk-0.6.4/req2.pprof.gz", &fixture);
	assert_int_equal(store__put_process(s,
					    &(struct store_process){.pid = 9, .start_time_ns = 9},
					    1, &proc),
			 0);
	/* fill about two thirds of the bound with eBPF buckets, one second per
	 * drain, 200 rows each */
	for (;;) {
		assert_int_equal(store__stats(s, false, &st), 0);
		if (st.used_bytes > (2u << 20) * 2 / 3)
			break;
		for (int i = 0; i < 200; i++) {
			/* the store copies what it keeps: these are reused */
			static struct frame fr[200][3];

			memcpy(fr[i], frames, sizeof(frames));
			fr[i][2].offset = (uint64_t)(second * 1000 + i) % 5000; /* many stacks */
			batch[i] = (struct store_bucket){proc, i, second, fr[i], 3, 1 + i % 3, 0};
			samples += batch[i].count;
		}
		assert_int_equal(store__put_buckets(s, batch, 200, &dropped), 0);
		assert_int_equal(dropped, 0);
		rows += 200;
		second++;
	}
	/* now SDK profiles until the store refuses one */
	ids = calloc(4096, sizeof(*ids));
	assert_non_null(ids);
	p = node_profile(&fixture, 0);
	for (;;) {
		r = store__put_sdk_profile(s, &p, &ids[acked]);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		acked++;
		assert_true(acked < 4096);
	}
	refused++;
	assert_non_null(strstr(store__errmsg(s), "store full: SDK profile refused"));
	/* a second refusal is counted too */
	assert_int_equal(store__put_sdk_profile(s, &p, &ids[acked]), -ENOSPC);
	refused++;

	/* every eBPF bucket went first, oldest first; none of what was acked */
	assert_int_equal(store__stats(s, false, &st), 0);
	assert_true(st.used_bytes <= (2u << 20));
	assert_int_equal(st.counters[STORE_CTR_SDK_REFUSED_FULL], refused);
	assert_int_equal(st.tables[STORE_TABLE_SDK_PROFILES].rows, acked);
	assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_DROPPED] +
				 st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
			 rows);
	assert_int_equal(st.counters[STORE_CTR_EBPF_SAMPLES_DROPPED] + st.ebpf_samples, samples);
	assert_int_equal(st.tables[STORE_TABLE_EBPF_BUCKETS].rows, 0);
	assert_true(acked > 600); /* 2 MiB of 1.3 KB profiles, minus overheads */
	for (int64_t i = 0; i < acked; i++) {
		struct got_sdk g = {0};

		assert_int_equal(store__get_sdk_profile(s, ids[i], got_sdk, &g), 0);
		assert_memory_equal(g.payload, fixture.data, fixture.len);
	}

	/* forwarded profiles make room; one still queued for sending does not */
	{
		struct store_outbox_item it = {
			.series = "x", .kind = "sdk", .sdk_profile_id = ids[0]};
		int64_t oid, id;

		/* the outbox may use the last 1/32 of the bound: SDK profiles
		 * can still be queued and delivered when intake is full */
		for (int i = 1; i <= 10; i++) {
			int64_t o2;

			it.sdk_profile_id = ids[i];
			assert_int_equal(store__outbox_add(s, &it, &o2), 0);
			assert_int_equal(store__outbox_done(s, o2), 0);
		}
		it.sdk_profile_id = ids[0];
		r = store__outbox_add(s, &it, &oid);
		assert_int_equal(r, 0);
		assert_int_equal(store__put_sdk_profile(s, &p, &id), 0);
		assert_int_equal(store__stats(s, false, &st), 0);
		assert_true(st.counters[STORE_CTR_SDK_PRUNED] >= 1);
		{
			struct got_sdk g = {0};

			assert_int_equal(store__get_sdk_profile(s, ids[0], got_sdk, &g), 0);
		}
	}

	/* eBPF buckets of a new drain while full: dropped and counted, no error */
	{
		struct store_bucket b = {proc, 1, second + 10, frames, 3, 5, 0};
		int64_t before;

		assert_int_equal(store__stats(s, false, &st), 0);
		before = st.counters[STORE_CTR_EBPF_ROWS_REFUSED];
		/* fill the last bytes with profiles */
		while (store__put_sdk_profile(s, &p, &ids[0]) == 0)
			;
		assert_int_equal(store__put_buckets(s, &b, 1, &dropped), 0);
		assert_int_equal(dropped, 1);
		assert_int_equal(store__stats(s, false, &st), 0);
		assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_REFUSED], before + 1);
		assert_int_equal(st.counters[STORE_CTR_EBPF_SAMPLES_REFUSED], 5);
	}
	free(ids);
	store__close(s);
	dynbuf__free(&fixture);
}

/* Oldest first: a bound that buckets alone overflow keeps the newest ones. */
static void test_bound_oldest_first(void **state)
{
	struct fx *f = *state;
	struct store_options o = {.max_bytes = 1u << 20};
	struct store *s = reopen(f, &o);
	struct store_stats st;
	struct seconds sec = {0};
	static struct frame fr[100][2];
	struct store_bucket batch[100];
	int64_t proc, rows = 0, samples = 0, second;
	size_t dropped;

	assert_int_equal(store__put_process(s,
					    &(struct store_process){.pid = 3, .start_time_ns = 3},
					    1, &proc),
			 0);
	for (second = T0; second < T0 + 600; second++) {
		for (int i = 0; i < 100; i++) {
			fr[i][0] = (struct frame){FRAME_KERNEL, "k", "[kernel.kallsyms]", 0};
			fr[i][1] = (struct frame){FRAME_NATIVE, "f", "/bin/y", (uint64_t)i};
			batch[i] = (struct store_bucket){proc, i, second, fr[i], 2, 2, 0};
		}
		assert_int_equal(store__put_buckets(s, batch, 100, &dropped), 0);
		assert_int_equal(dropped, 0);
		rows += 100;
		samples += 200;
	}
	assert_int_equal(store__stats(s, false, &st), 0);
	assert_true(st.used_bytes <= (1u << 20));
	assert_true(st.counters[STORE_CTR_EBPF_ROWS_DROPPED] > 0);
	assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_DROPPED] +
				 st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
			 rows);
	assert_int_equal(st.counters[STORE_CTR_EBPF_SAMPLES_DROPPED] + st.ebpf_samples, samples);
	assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_REFUSED], 0);
	/* what is left is one unbroken run ending at the newest second */
	assert_int_equal(store__buckets(s, proc, 0, INT64_MAX, got_second, &sec), 0);
	assert_int_equal(sec.max, T0 + 599);
	assert_int_equal(sec.rows, (sec.max - sec.min + 1) * 100);
	assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_DROPPED], (sec.min - T0) * 100);
	store__close(s);
}

/* ---- retention and cleanup ------------------------------------------------------------ */

static void test_retention(void **state)
{
	struct fx *f = *state;
	struct store_maintenance m;
	struct store_stats st;
	struct dynbuf fixture;
	struct store_sdk_profile p;
	struct got_buckets g = {0};
	struct store *other;
	int64_t proc, old_id, new_id, oid;
	int64_t now = (T0 + 100000) * 1000000000;
	const int64_t day = STORE_DEFAULT_RETENTION;

	read_fixture("node-sdk-0.6.4/req3.pprof.gz", &fixture);
	assert_int_equal(store__put_process(f->s,
					    &(struct store_process){.pid = 8, .start_time_ns = 8},
					    now - 2 * day, &proc),
			 0);
	p = node_profile(&fixture, 0);
	p.received_ns = now - day - 1;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &old_id), 0);
	p.received_ns = now - day + 1000000000;
	assert_int_equal(store__put_sdk_profile(f->s, &p, &new_id), 0);
	assert_int_equal(store__outbox_add(f->s,
					   &(struct store_outbox_item){.series = "s",
								       .kind = "sdk",
								       .sdk_profile_id = old_id},
					   &oid),
			 0);
	{
		/* buckets a day and a half old (stack_b only there) and fresh ones */
		const struct store_bucket rows[] = {
			{proc, 1, now / 1000000000 - day / 1000000000 - 3600, stack_b, 2, 4, 0},
			{proc, 1, now / 1000000000 - 10, stack_a, 5, 6, 0},
		};

		assert_int_equal(store__put_buckets(f->s, rows, 2, NULL), 0);
	}
	/* another connection has stack_b cached; the cleanup runs on this one */
	other = reopen(f, NULL);
	{
		const struct store_bucket warm = {
			proc, 2, now / 1000000000 - day / 1000000000 - 3600, stack_b, 2, 1, 0};

		assert_int_equal(store__put_buckets(other, &warm, 1, NULL), 0);
	}
	assert_int_equal(store__maintain(f->s, now, &m), 0);
	assert_int_equal(m.sdk_expired, 1);
	assert_int_equal(m.outbox_expired, 1);
	assert_int_equal(m.ebpf_rows_expired, 2);
	assert_int_equal(m.stacks_removed, 1);	  /* stack_b */
	assert_int_equal(m.frames_removed, 1);	  /* sha256_block_data_order_avx2 */
	assert_int_equal(m.processes_removed, 0); /* it still has fresh buckets */
	assert_int_equal(store__stats(f->s, false, &st), 0);
	assert_int_equal(st.counters[STORE_CTR_SDK_EXPIRED], 1);
	assert_int_equal(st.counters[STORE_CTR_SDK_EXPIRED_UNFORWARDED], 1);
	assert_int_equal(st.counters[STORE_CTR_OUTBOX_EXPIRED], 1);
	assert_int_equal(st.counters[STORE_CTR_EBPF_ROWS_EXPIRED], 2);
	assert_int_equal(st.counters[STORE_CTR_EBPF_SAMPLES_EXPIRED_UNEMITTED], 5);
	assert_int_equal(st.tables[STORE_TABLE_SDK_PROFILES].rows, 1);
	assert_int_equal(st.tables[STORE_TABLE_STACKS].rows, 1);
	{
		struct got_sdk gs = {0};

		assert_int_equal(store__get_sdk_profile(f->s, new_id, got_sdk, &gs), 0);
		assert_int_equal(store__get_sdk_profile(f->s, old_id, got_sdk, &gs), -ENOENT);
	}
	/* the other connection's cached stack id is gone: it must store the
	 * stack anew rather than point at a deleted row */
	{
		const struct store_bucket again = {proc, 3, now / 1000000000 - 5, stack_b, 2, 9, 0};

		assert_int_equal(store__put_buckets(other, &again, 1, NULL), 0);
	}
	assert_int_equal(store__buckets(f->s, proc, now / 1000000000 - 5, now / 1000000000 - 4,
					got_bucket, &g),
			 0);
	assert_int_equal(g.n, 1);
	assert_non_null(strstr(g.text, "sha256_block_data_order_avx2"));
	store__close(other);

	/* a year later everything goes, the process too */
	assert_int_equal(store__maintain(f->s, now + 365 * day, &m), 0);
	assert_int_equal(store__stats(f->s, false, &st), 0);
	for (int t = 0; t < STORE_TABLE_COUNT; t++)
		assert_int_equal(st.tables[t].rows, 0);
	dynbuf__free(&fixture);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct store_options o = {.read_only = true};
	struct store *ro = reopen(f, &o);
	struct store_stats st;
	int64_t id;

	assert_int_equal(store__put_process(ro, &(struct store_process){.pid = 1}, 1, &id), -EROFS);
	assert_int_equal(store__stats(ro, true, &st), 0);
	assert_true(st.tables[STORE_TABLE_PROCESSES].bytes > 0);
	store__close(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdk_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdk_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdk_cpu_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_stats_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncovered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncovered_cpu_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
