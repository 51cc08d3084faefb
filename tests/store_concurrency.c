/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store under concurrent use: 4 writer threads and 1 reader, each with
 * its own handle on one database, for 5 s (STORE_TEST_SECONDS overrides).
 * Writers alternate SDK profiles and eBPF bucket batches, with a process and
 * an outbox item now and then; no call may fail (in particular none may
 * surface SQLITE_BUSY as -EBUSY). The reader's stats, listings and bucket
 * reads never fail, never go backwards and always include every write that
 * had returned before the read began. At the end the table counts and
 * sample sums are exactly what the writers wrote, with nothing dropped.
 *
 * STORE_TEST_KEEP=1 keeps the data directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define NS		1000000000ll
#define WRITERS		4
#define DEFAULT_SECONDS 5
#define FIXTURE		BRAID_FIXTURES "/node-sdk-0.6.4/req2.pprof.gz"
#define FIXTURE_MAX	(1 << 20)
#define PLAIN_PREFIX	"braid-concurrency: not gzip\n"
#define MAX_ROWS	6
#define MIN_DEPTH	3
#define MAX_DEPTH	20
#define POOL_N		24
#define ROW_TID_BLOCK	16 /* tids of one batch: pid + (iter % 4) * 16 + row */
#define PROCESS_EVERY	16
#define OUTBOX_EVERY	8
#define READER_LIMIT	25
#define ERRMSG_MAX	1024

static const char *g_dir;
static bool g_keep;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "store_concurrency: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void cleanup_dir(void)
{
	if (!g_dir)
		return;
	if (g_keep) {
		fprintf(stderr, "store_concurrency: keeping %s\n", g_dir);
		return;
	}
	nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_dir = NULL;
}

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "store_concurrency: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup_dir();
	exit(1);
}

struct writer {
	int idx;
	pthread_t thread;
	int32_t pid;
	/* what returned 0, counted by the thread, read after the join */
	int64_t sdk_puts, bucket_calls, bucket_rows, samples, processes, outbox;
	int64_t last_sdk_id;
	/* the same, published for the reader after each call returned */
	_Atomic int64_t pub_process_id, pub_sdk, pub_samples;
};

struct reader {
	pthread_t thread;
	int64_t loops, stats_calls, sdk_listed, bucket_rows_read;
};

static struct {
	atomic_int stop;
	atomic_int failed;
	pthread_mutex_t err_lock;
	char err[ERRMSG_MAX];
	pthread_barrier_t start;
	int64_t base_s;
	struct dynbuf gz, plain; /* the two payloads: the fixture, and it behind a prefix */
	struct writer w[WRITERS];
	struct reader r;
	/* totals of the writes that have returned 0 */
	_Atomic int64_t c_sdk, c_rows, c_samples, c_outbox, c_processes;
} T;

static void __attribute__((format(printf, 1, 2))) thread_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&T.err_lock);
	if (!T.err[0]) {
		va_start(ap, fmt);
		vsnprintf(T.err, sizeof(T.err), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&T.err_lock);
	atomic_store(&T.failed, 1);
	atomic_store(&T.stop, 1);
}

static struct store *thread_open(const char *who)
{
	struct store_options o = {.data_dir = g_dir};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	int rc;

	rc = store__open(&o, &err, &s);
	if (rc) {
		thread_fail("%s: store__open: %s (%s)", who, err.msg, strerror(-rc));
		return NULL;
	}
	return s;
}

static struct frame pool[POOL_N];

static void pool__init(void)
{
	static const char *const names[8] = {"do_syscall_64",
					     "uv_run",
					     "JS:~handler /app/a.js:1",
					     "",
					     "ep_poll",
					     "node::Start(int, char**)",
					     "LazyCompile:*emit node:events:460",
					     "JS:*ü {x}=1"};
	static const char *const modules[3] = {"[kernel.kallsyms]", "/usr/bin/node",
					       "/tmp/perf-77.map"};
	static const enum frame_kind kinds[3] = {FRAME_KERNEL, FRAME_NATIVE, FRAME_JIT};
	size_t i;

	for (i = 0; i < POOL_N; i++)
		pool[i] = (struct frame){kinds[i % 3], names[i % 8], modules[i % 3],
					 i % 3 == 0 ? 0xffffffff81000000ull + i * 0x100
						    : 0x1000 + (i / 8) * 0x40};
}

static uint64_t mix(uint64_t x)
{
	return util__hash_u64(x + 0x9e3779b97f4a7c15ull);
}

static int put_process(struct store *s, struct writer *w, int n, int64_t *ret_id)
{
	char service[32], cmdline[64];
	struct store_process p = {
		.pid = w->pid + n,
		.start_time_ns = T.base_s * NS - (int64_t)(w->idx + 1) * NS + n,
		.comm = "node",
		.exe = "/usr/bin/node",
		.cmdline = cmdline,
		.service = service,
		.runtime = RUNTIME_NODE,
	};

	snprintf(service, sizeof(service), "writer-%d", w->idx);
	snprintf(cmdline, sizeof(cmdline), "node /app/w%d.js --n=%d", w->idx, n);
	return store__put_process(s, &p, store__now_ns(), ret_id);
}

static int put_sdk(struct store *s, struct writer *w, int64_t iter, int64_t process_id,
		   int64_t *ret_id)
{
	char seq[24], service[32];
	struct label labels[] = {{"service_name", service}, {"region", "eu west=1"}, {"seq", seq}};
	struct store_sample_type types[] = {{"cpu", "nanoseconds", 1000000 + iter},
					    {"samples", "count", 100 + iter}};
	const struct dynbuf *payload = iter % 2 ? &T.plain : &T.gz;
	struct store_sdk_profile p = {
		.received_ns = store__now_ns(),
		.service = service,
		.profile_name = "process_cpu",
		.labels = labels,
		.n_labels = UTIL_ARRAY_SIZE(labels),
		.tenant = iter % 3 ? NULL : "tenant-a",
		.types = types,
		.n_types = 1 + (size_t)(iter % 2),
		.from_ns = (T.base_s + iter) * NS,
		.until_ns = (T.base_s + iter + 10) * NS,
		.spy_name = "nodespy",
		.format = "pprof",
		.sample_rate = 100,
		.process_id = process_id,
		.attribution = STORE_ATTR_PEER_TCP,
		.payload = payload->data,
		.payload_len = payload->len,
	};

	snprintf(service, sizeof(service), "writer-%d", w->idx);
	snprintf(seq, sizeof(seq), "%" PRId64, iter);
	return store__put_sdk_profile(s, &p, ret_id);
}

/* One batch: rows with distinct tids (so every row is a bucket of its
 * own), stacks from the shared pool. */
static int put_batch(struct store *s, struct writer *w, int64_t iter, int64_t process_id,
		     size_t *ret_rows, int64_t *ret_samples)
{
	struct frame frames[MAX_ROWS][MAX_DEPTH];
	struct store_bucket rows[MAX_ROWS];
	uint64_t h = mix(((uint64_t)w->idx << 40) ^ (uint64_t)iter);
	size_t n = 1 + h % MAX_ROWS, j, k, dropped = 1;
	int64_t samples = 0;
	int rc;

	for (j = 0; j < n; j++) {
		size_t depth = MIN_DEPTH + (h >> 8) % (MAX_DEPTH - MIN_DEPTH + 1);

		for (k = 0; k < depth; k++)
			frames[j][k] = pool[mix(h + j * 131 + k) % POOL_N];
		rows[j] = (struct store_bucket){
			.process_id = process_id,
			.tid = w->pid + (int32_t)((iter % 4) * ROW_TID_BLOCK + (int64_t)j),
			.second = T.base_s + iter / 4,
			.frames = frames[j],
			.n_frames = depth,
			.count = 1 + (int64_t)((h >> (j * 4)) % 97),
		};
		samples += rows[j].count;
		h = mix(h);
	}
	rc = store__put_buckets(s, rows, n, &dropped);
	if (rc)
		return rc;
	if (dropped) {
		thread_fail("writer %d: store__put_buckets dropped %zu of %zu rows in a store far "
			    "from full",
			    w->idx, dropped, n);
		return -ENOSPC;
	}
	*ret_rows = n;
	*ret_samples = samples;
	return 0;
}

static int add_outbox(struct store *s, struct writer *w, int64_t iter)
{
	char series[32];
	struct label labels[] = {{"service_name", "checkout"}, {"env", "prod {1}"}};
	bool sdk = (iter / OUTBOX_EVERY) % 2;
	struct store_outbox_item it = {
		.series = series,
		.tenant = sdk ? NULL : "tenant-a",
		.kind = sdk ? "sdk" : "merged",
		.labels = labels,
		.n_labels = UTIL_ARRAY_SIZE(labels),
		.from_ns = (T.base_s + iter) * NS,
		.until_ns = (T.base_s + iter + 10) * NS,
		.payload = sdk ? NULL : T.gz.data,
		.payload_len = sdk ? 0 : T.gz.len,
		.sdk_profile_id = sdk ? w->last_sdk_id : 0,
		.created_ns = store__now_ns(),
		.next_attempt_ns = store__now_ns(),
	};
	int64_t id = 0;

	snprintf(series, sizeof(series), "writer-%d/process_cpu", w->idx);
	return store__outbox_add(s, &it, &id);
}

#define WRITE_OR_FAIL(call, what)                                                                  \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_) {                                                                         \
			thread_fail("writer %d, iteration %" PRId64 ": %s: %d (%s): %s", w->idx,   \
				    iter, what, rc_, strerror(-rc_), store__errmsg(s));            \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct store *s;
	int64_t iter = -1, process_id = 0;

	pthread_barrier_wait(&T.start);
	s = thread_open("writer");
	if (!s)
		return NULL;
	WRITE_OR_FAIL(put_process(s, w, 0, &process_id), "store__put_process");
	w->processes++;
	atomic_fetch_add(&T.c_processes, 1);
	atomic_store(&w->pub_process_id, process_id);

	for (iter = 0; !atomic_load(&T.stop); iter++) {
		size_t rows = 0;
		int64_t samples = 0, id = 0;

		WRITE_OR_FAIL(put_sdk(s, w, iter, process_id, &id), "store__put_sdk_profile");
		w->sdk_puts++;
		w->last_sdk_id = id;
		atomic_store(&w->pub_sdk, w->sdk_puts);
		atomic_fetch_add(&T.c_sdk, 1);

		WRITE_OR_FAIL(put_batch(s, w, iter, process_id, &rows, &samples),
			      "store__put_buckets");
		w->bucket_calls++;
		w->bucket_rows += (int64_t)rows;
		w->samples += samples;
		atomic_store(&w->pub_samples, w->samples);
		atomic_fetch_add(&T.c_rows, (int64_t)rows);
		atomic_fetch_add(&T.c_samples, samples);

		if (iter % PROCESS_EVERY == PROCESS_EVERY - 1) {
			int64_t other = 0;

			WRITE_OR_FAIL(put_process(s, w, 1 + (int)(iter / PROCESS_EVERY), &other),
				      "store__put_process");
			w->processes++;
			atomic_fetch_add(&T.c_processes, 1);
		}
		if (iter % OUTBOX_EVERY == OUTBOX_EVERY - 1) {
			WRITE_OR_FAIL(add_outbox(s, w, iter), "store__outbox_add");
			w->outbox++;
			atomic_fetch_add(&T.c_outbox, 1);
		}
	}
out:
	store__close(s);
	return NULL;
}

struct listing {
	int64_t n;
	int64_t last_from, last_id;
	bool with_payload;
	char err[ERRMSG_MAX];
};

static int on_listed(void *ctx, const struct store_sdk_profile *p)
{
	struct listing *l = ctx;

	if (l->err[0])
		return 0;
	if (l->n &&
	    (p->from_ns < l->last_from || (p->from_ns == l->last_from && p->id <= l->last_id)))
		snprintf(l->err, sizeof(l->err),
			 "profile %" PRId64 " (from %" PRId64 ") after %" PRId64 " (from %" PRId64
			 "): not by from_ns then id",
			 p->id, p->from_ns, l->last_id, l->last_from);
	else if (l->with_payload && !((p->payload_len == T.gz.len && p->payload &&
				       memcmp(p->payload, T.gz.data, T.gz.len) == 0) ||
				      (p->payload_len == T.plain.len && p->payload &&
				       memcmp(p->payload, T.plain.data, T.plain.len) == 0)))
		snprintf(l->err, sizeof(l->err),
			 "profile %" PRId64 ": payload of %zu bytes is neither payload written",
			 p->id, p->payload_len);
	else if (!l->with_payload && p->payload)
		snprintf(l->err, sizeof(l->err),
			 "profile %" PRId64 ": a payload though with_payload is false", p->id);
	l->n++;
	l->last_from = p->from_ns;
	l->last_id = p->id;
	return 0;
}

struct bucket_sum {
	int64_t process_id, rows, samples;
	char err[ERRMSG_MAX];
};

static int on_bucket(void *ctx, const struct store_bucket *b)
{
	struct bucket_sum *sum = ctx;

	if (!sum->err[0] && (b->process_id != sum->process_id || b->n_frames < MIN_DEPTH ||
			     b->n_frames > MAX_DEPTH || b->count < 1))
		snprintf(sum->err, sizeof(sum->err),
			 "bucket of process %" PRId64 " (asked for %" PRId64
			 "), %zu frames, count %" PRId64,
			 b->process_id, sum->process_id, b->n_frames, b->count);
	sum->rows++;
	sum->samples += b->count;
	return 0;
}

#define READ_OR_FAIL(call, what)                                                                   \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		if (rc_) {                                                                         \
			thread_fail("reader, loop %" PRId64 ": %s: %d (%s): %s", r->loops, what,   \
				    rc_, strerror(-rc_), store__errmsg(s));                        \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

#define NOT_BELOW(what, got, floor)                                                                \
	do {                                                                                       \
		if ((got) < (floor)) {                                                             \
			thread_fail("reader, loop %" PRId64 ": %s went from at least %" PRId64     \
				    " to %" PRId64,                                                \
				    r->loops, what, (int64_t)(floor), (int64_t)(got));             \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

/* Reads while the writers write: every answer includes every write that had
 * returned before the read began, and nothing goes backwards. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct store_stats prev = {0}, st;
	int64_t prev_samples[WRITERS] = {0}, prev_sdk[WRITERS] = {0};
	struct store *s;

	pthread_barrier_wait(&T.start);
	s = thread_open("reader");
	if (!s)
		return NULL;
	for (; !atomic_load(&T.stop); r->loops++) {
		int64_t sdk = atomic_load(&T.c_sdk), rows = atomic_load(&T.c_rows);
		int64_t samples = atomic_load(&T.c_samples), outbox = atomic_load(&T.c_outbox);
		int64_t procs = atomic_load(&T.c_processes);
		int wi = (int)(r->loops % WRITERS), k;
		struct writer *w = &T.w[wi];
		int64_t pid = atomic_load(&w->pub_process_id);
		int64_t w_samples = atomic_load(&w->pub_samples), w_sdk = atomic_load(&w->pub_sdk);
		struct store_sdk_query q = {.limit = READER_LIMIT, .with_payload = r->loops % 2};
		struct listing l = {.with_payload = q.with_payload};
		struct bucket_sum sum = {.process_id = pid};

		READ_OR_FAIL(store__stats(s, false, &st), "store__stats");
		r->stats_calls++;
		NOT_BELOW("sdk_profiles rows", st.tables[STORE_TABLE_SDK_PROFILES].rows,
			  prev.tables[STORE_TABLE_SDK_PROFILES].rows);
		NOT_BELOW("sdk_profiles rows (vs. puts returned)",
			  st.tables[STORE_TABLE_SDK_PROFILES].rows, sdk);
		NOT_BELOW("ebpf_buckets rows", st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
			  prev.tables[STORE_TABLE_EBPF_BUCKETS].rows);
		NOT_BELOW("ebpf_buckets rows (vs. rows put)",
			  st.tables[STORE_TABLE_EBPF_BUCKETS].rows, rows);
		NOT_BELOW("ebpf_samples", st.ebpf_samples, prev.ebpf_samples);
		NOT_BELOW("ebpf_samples (vs. samples put)", st.ebpf_samples, samples);
		NOT_BELOW("outbox rows", st.tables[STORE_TABLE_OUTBOX].rows,
			  prev.tables[STORE_TABLE_OUTBOX].rows);
		NOT_BELOW("outbox rows (vs. items added)", st.tables[STORE_TABLE_OUTBOX].rows,
			  outbox);
		NOT_BELOW("processes rows", st.tables[STORE_TABLE_PROCESSES].rows,
			  prev.tables[STORE_TABLE_PROCESSES].rows);
		NOT_BELOW("processes rows (vs. processes put)",
			  st.tables[STORE_TABLE_PROCESSES].rows, procs);
		for (k = 0; k < STORE_CTR_COUNT; k++)
			if (st.counters[k]) {
				thread_fail("reader: counter %s is %" PRId64 ", expected 0",
					    store__counter_name((enum store_counter)k),
					    st.counters[k]);
				goto out;
			}
		prev = st;

		/* the latest writes of one writer, or of all */
		if (r->loops % 3 == 0)
			q.process_id = pid;
		if (r->loops % 5 == 0)
			q.unmerged_only = true;
		READ_OR_FAIL(store__sdk_profiles(s, &q, on_listed, &l), "store__sdk_profiles");
		if (l.err[0]) {
			thread_fail("reader: store__sdk_profiles: %s", l.err);
			goto out;
		}
		if (l.n > READER_LIMIT || (l.n < READER_LIMIT && l.n < sdk && !q.process_id)) {
			thread_fail("reader: store__sdk_profiles with limit %d gave %" PRId64
				    " profiles of at least %" PRId64,
				    READER_LIMIT, l.n, sdk);
			goto out;
		}
		r->sdk_listed += l.n;

		if (!pid)
			continue;
		READ_OR_FAIL(
			store__buckets(s, pid, T.base_s, T.base_s + (1 << 30), on_bucket, &sum),
			"store__buckets");
		if (sum.err[0]) {
			thread_fail("reader: store__buckets: %s", sum.err);
			goto out;
		}
		NOT_BELOW("a writer's bucket samples", sum.samples, prev_samples[wi]);
		NOT_BELOW("a writer's bucket samples (vs. samples put)", sum.samples, w_samples);
		prev_samples[wi] = sum.samples;
		r->bucket_rows_read += sum.rows;

		/* every profile of one writer, now and then */
		if (r->loops % 16 == 0) {
			struct store_sdk_query all = {.process_id = pid};
			struct listing la = {0};

			READ_OR_FAIL(store__sdk_profiles(s, &all, on_listed, &la),
				     "store__sdk_profiles");
			if (la.err[0]) {
				thread_fail("reader: store__sdk_profiles: %s", la.err);
				goto out;
			}
			NOT_BELOW("a writer's SDK profiles", la.n, prev_sdk[wi]);
			NOT_BELOW("a writer's SDK profiles (vs. puts returned)", la.n, w_sdk);
			prev_sdk[wi] = la.n;
			r->sdk_listed += la.n;
		}
	}
out:
	store__close(s);
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	uint64_t x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end) {
		fprintf(stderr, "store_concurrency: %s=%s is not a number\n", name, v);
		exit(2);
	}
	return x;
}

static void load_payloads(void)
{
	struct errbuf err = {{0}};
	int rc;

	dynbuf__init(&T.gz, FIXTURE_MAX);
	dynbuf__init(&T.plain, FIXTURE_MAX);
	rc = util__read_file(FIXTURE, FIXTURE_MAX, &err, &T.gz);
	if (rc)
		fail("reading the fixture: %s", err.msg);
	if (!util__is_gzip(T.gz.data, T.gz.len))
		fail("%s is not gzip", FIXTURE);
	rc = dynbuf__append(&T.plain, PLAIN_PREFIX, strlen(PLAIN_PREFIX));
	if (!rc)
		rc = dynbuf__append(&T.plain, T.gz.data, T.gz.len);
	if (rc)
		fail("out of memory");
}

#define EXPECT_EQ(what, got, want)                                                                 \
	do {                                                                                       \
		if ((int64_t)(got) != (int64_t)(want))                                             \
			fail("after the run: %s is %" PRId64 ", expected %" PRId64, what,          \
			     (int64_t)(got), (int64_t)(want));                                     \
	} while (0)

/* With a fresh handle: the tables hold exactly what the writers wrote. */
static void check_totals(void)
{
	struct store_options o = {.data_dir = g_dir};
	struct errbuf err = {{0}};
	struct store_stats st;
	struct store *s = NULL;
	int64_t sdk = 0, rows = 0, samples = 0, outbox = 0, procs = 0;
	int i, rc;

	rc = store__open(&o, &err, &s);
	if (rc)
		fail("store__open: %s (%s)", err.msg, strerror(-rc));
	rc = store__check(s, true, &err);
	if (rc)
		fail("integrity_check: %s (%s)", err.msg, strerror(-rc));
	rc = store__stats(s, true, &st);
	if (rc)
		fail("store__stats: %s (%s)", store__errmsg(s), strerror(-rc));

	for (i = 0; i < WRITERS; i++) {
		struct writer *w = &T.w[i];
		int64_t pid = atomic_load(&w->pub_process_id);
		struct bucket_sum sum = {.process_id = pid};
		struct store_sdk_query q = {.process_id = pid};
		struct listing l = {0};

		sdk += w->sdk_puts;
		rows += w->bucket_rows;
		samples += w->samples;
		outbox += w->outbox;
		procs += w->processes;
		rc = store__buckets(s, pid, T.base_s, T.base_s + (1 << 30), on_bucket, &sum);
		if (rc || sum.err[0])
			fail("writer %d: store__buckets: %s", i, rc ? store__errmsg(s) : sum.err);
		if (sum.rows != w->bucket_rows || sum.samples != w->samples)
			fail("writer %d: %" PRId64 " bucket rows of %" PRId64
			     " samples read back, %" PRId64 " rows of %" PRId64 " samples written",
			     i, sum.rows, sum.samples, w->bucket_rows, w->samples);
		rc = store__sdk_profiles(s, &q, on_listed, &l);
		if (rc || l.err[0])
			fail("writer %d: store__sdk_profiles: %s", i,
			     rc ? store__errmsg(s) : l.err);
		if (l.n != w->sdk_puts)
			fail("writer %d: %" PRId64 " SDK profiles read back, %" PRId64 " written",
			     i, l.n, w->sdk_puts);
	}
	EXPECT_EQ("sdk_profiles rows", st.tables[STORE_TABLE_SDK_PROFILES].rows, sdk);
	EXPECT_EQ("sdk_unmerged", st.sdk_unmerged, sdk);
	EXPECT_EQ("ebpf_buckets rows", st.tables[STORE_TABLE_EBPF_BUCKETS].rows, rows);
	EXPECT_EQ("ebpf_samples", st.ebpf_samples, samples);
	EXPECT_EQ("outbox rows", st.tables[STORE_TABLE_OUTBOX].rows, outbox);
	EXPECT_EQ("outbox_due", st.outbox_due, outbox);
	EXPECT_EQ("processes rows", st.tables[STORE_TABLE_PROCESSES].rows, procs);
	EXPECT_EQ("dead_letters rows", st.tables[STORE_TABLE_DEAD_LETTERS].rows, 0);
	for (i = 0; i < STORE_CTR_COUNT; i++)
		if (st.counters[i])
			fail("after the run: counter %s is %" PRId64 ", expected 0",
			     store__counter_name((enum store_counter)i), st.counters[i]);
	printf("store_concurrency: database %.1f MiB (+ %.1f MiB WAL), %" PRId64 " stacks, %" PRId64
	       " frames\n",
	       (double)st.file_bytes / (1 << 20), (double)st.wal_bytes / (1 << 20),
	       st.tables[STORE_TABLE_STACKS].rows, st.tables[STORE_TABLE_FRAMES].rows);
	store__close(s);
}

int main(void)
{
	static char dir[4096];
	const char *tmp = getenv("TMPDIR");
	uint64_t seconds = env_u64("STORE_TEST_SECONDS", DEFAULT_SECONDS);
	struct store_options o = {.data_dir = dir};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct timespec t0, t1;
	int64_t sdk = 0, batches = 0;
	int i, rc;

	g_keep = env_u64("STORE_TEST_KEEP", 0) != 0;
	snprintf(dir, sizeof(dir), "%s/braid-store-conc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		fail("mkdtemp %s: %s", dir, strerror(errno));
	g_dir = dir;
	load_payloads();
	pool__init();
	T.base_s = (int64_t)time(NULL) - 6 * 3600;
	pthread_mutex_init(&T.err_lock, NULL);
	pthread_barrier_init(&T.start, NULL, WRITERS + 1);

	/* the database exists before the threads open it */
	rc = store__open(&o, &err, &s);
	if (rc)
		fail("store__open: %s (%s)", err.msg, strerror(-rc));
	store__close(s);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < WRITERS; i++) {
		T.w[i].idx = i;
		T.w[i].pid = 100000 * (i + 1);
		if (pthread_create(&T.w[i].thread, NULL, writer_main, &T.w[i]))
			fail("pthread_create failed");
	}
	/* the reader passes the barrier with the writers: it reads from the
	 * first write on */
	if (pthread_create(&T.r.thread, NULL, reader_main, &T.r))
		fail("pthread_create failed");
	for (i = 0; i < (int)seconds * 10 && !atomic_load(&T.stop); i++)
		usleep(100000);
	atomic_store(&T.stop, 1);
	for (i = 0; i < WRITERS; i++)
		pthread_join(T.w[i].thread, NULL);
	pthread_join(T.r.thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (atomic_load(&T.failed))
		fail("%s", T.err);

	for (i = 0; i < WRITERS; i++) {
		struct writer *w = &T.w[i];

		printf("store_concurrency: writer %d: %" PRId64 " SDK profiles, %" PRId64
		       " batches (%" PRId64 " rows, %" PRId64 " samples), %" PRId64
		       " processes, %" PRId64 " outbox items\n",
		       i, w->sdk_puts, w->bucket_calls, w->bucket_rows, w->samples, w->processes,
		       w->outbox);
		sdk += w->sdk_puts;
		batches += w->bucket_calls;
		if (!w->sdk_puts || !w->bucket_calls)
			fail("writer %d wrote nothing in %" PRIu64 " s", i, seconds);
	}
	printf("store_concurrency: reader: %" PRId64 " loops, %" PRId64 " stats, %" PRId64
	       " profiles listed, %" PRId64 " bucket rows read\n",
	       T.r.loops, T.r.stats_calls, T.r.sdk_listed, T.r.bucket_rows_read);
	if (!T.r.loops)
		fail("the reader read nothing in %" PRIu64 " s", seconds);
	check_totals();
	printf("store_concurrency: OK: %d writers and 1 reader for %.1f s, %" PRId64
	       " SDK profiles and %" PRId64 " bucket batches, no call failed\n",
	       WRITERS, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, sdk,
	       batches);
	pthread_barrier_destroy(&T.start);
	pthread_mutex_destroy(&T.err_lock);
	dynbuf__free(&T.gz);
	dynbuf__free(&T.plain);
	cleanup_dir();
	return 0;
}
