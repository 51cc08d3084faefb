/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store under SIGKILL. A child process writes SDK profiles and eBPF
 * buckets in a loop and prints the id of each after its commit returns; the
 * parent kills it at a random moment, 50 times over one data directory.
 * After each kill the database must open (with its quick_check), pass a full
 * integrity_check, and hold every record the child printed with identical
 * content, in this round and in every earlier one. Records the child had
 * not printed may be there or not, but never in part.
 *
 *   test_store_crash                                  the test
 *   test_store_crash --child DIR ROUND SEED BASE_S    the writer it runs
 *
 * Environment: STORE_CRASH_SEED=N replays a run's contents and kill times
 * (as far as timing allows), STORE_CRASH_ROUNDS=N changes the number of
 * rounds, STORE_TEST_KEEP=1 keeps the data directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define NS	       1000000000ll
#define DEFAULT_ROUNDS 50
#define KILL_MIN_MS    20
#define KILL_MAX_MS    300
#define FIXTURE	       BRAID_FIXTURES "/node-sdk-0.6.4/req2.pprof.gz"
#define FIXTURE_MAX    (1 << 20)
#define GEN_MAX_LABELS 8
#define GEN_MAX_TYPES  3
#define GEN_MAX_ROWS   10
#define GEN_MIN_DEPTH  3
#define GEN_MAX_DEPTH  30
#define POOL_GROUPS    16
#define POOL_N	       (POOL_GROUPS * 3)
#define ERRMSG_MAX     640

static const char *g_dir;      /* the data directory, removed on exit */
static bool g_keep;	       /* STORE_TEST_KEEP: leave it for inspection */
static uint64_t g_master_seed; /* printed with every failure */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "store_crash: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Removes the data directory and everything in it (braid.db, -wal, -shm). */
static void cleanup_dir(void)
{
	if (!g_dir)
		return;
	if (g_keep) {
		fprintf(stderr, "store_crash: keeping %s\n", g_dir);
		return;
	}
	nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_dir = NULL;
}

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "store_crash: FAIL (seed %" PRIu64 "): ", g_master_seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g_dir && !g_keep)
		fprintf(stderr,
			"store_crash: rerun with STORE_CRASH_SEED=%" PRIu64
			" STORE_TEST_KEEP=1 to replay and keep the database\n",
			g_master_seed);
	cleanup_dir();
	exit(1);
}

/* ---- deterministic contents -------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return splitmix(s) % n;
}

/* What a round's child writes depends on these alone (and on the id of its
 * process, which the child prints). */
struct round {
	int index;
	uint64_t seed;
	int64_t base_s;				 /* seconds: eBPF batch seq is at base_s + seq */
	int64_t process_id;			 /* 0 until the child printed it */
	uint32_t n_ebpf;			 /* printed batches: seqs 0 .. n_ebpf - 1 */
	int64_t ebpf_rows, ebpf_samples;	 /* in those batches, once verified */
	int64_t inflight_rows, inflight_samples; /* in the batch after them, if there */
};

struct fixture {
	struct dynbuf gz;  /* req2.pprof.gz as the Node SDK sent it */
	struct dynbuf raw; /* the pprof inside it */
};

static void fixture__load(struct fixture *fx)
{
	struct errbuf err = {{0}};
	int r;

	dynbuf__init(&fx->gz, FIXTURE_MAX);
	dynbuf__init(&fx->raw, 16 * FIXTURE_MAX);
	r = util__read_file(FIXTURE, FIXTURE_MAX, &err, &fx->gz);
	if (r < 0)
		fail("reading the fixture: %s", err.msg);
	if (fx->gz.len != 1318 || !util__is_gzip(fx->gz.data, fx->gz.len))
		fail("%s: expected 1318 bytes of gzip, got %zu bytes", FIXTURE, fx->gz.len);
	r = util__gunzip(fx->gz.data, fx->gz.len, 16 * FIXTURE_MAX, &err, &fx->raw);
	if (r < 0)
		fail("inflating the fixture: %s", err.msg);
}

static void fixture__free(struct fixture *fx)
{
	dynbuf__free(&fx->gz);
	dynbuf__free(&fx->raw);
}

static const char *const services[] = {"checkout", "api gateway", "svc=ütf8-ñ", "{billing}"};
static const char *const profile_names[] = {"process_cpu", "wall", "memory"};
static const struct label odd_labels[] = {
	{"env", "prod"},
	{"region", "eu west=1"},
	{"route", "/api/{id}/items?x=1&y=2"},
	{"note", "ünïcødé ✓ 日本語"},
	{"quote", "a\"b,c} d\\e\tf"},
	{"k8s.pod", "web-7d9f {0}"},
};
static const struct store_sample_type type_defs[GEN_MAX_TYPES] = {
	{"cpu", "nanoseconds", 0},
	{"samples", "count", 0},
	{"alloc_space", "bytes", 0},
};

struct sdk_gen {
	struct store_sdk_profile p;
	struct label labels[GEN_MAX_LABELS];
	struct store_sample_type types[GEN_MAX_TYPES];
	char tenant[32], seqval[16], podval[48];
	struct dynbuf payload;
};

/* The SDK profile number seq of round r. The payload (if with_payload) is
 * the fixture as is, the fixture behind a prefix (not gzip: the store
 * compresses it), its inflated pprof, or that repeated behind a prefix. */
static void gen_sdk(const struct round *r, const struct fixture *fx, uint32_t seq,
		    bool with_payload, struct sdk_gen *g)
{
	uint64_t s = r->seed ^ util__hash_u64(0x5d4b000000ull + seq);
	struct store_sdk_profile *p = &g->p;
	size_t n = 0, i, k, first, count, reps;
	char prefix[64];
	int plen, rc = 0;

	memset(p, 0, sizeof(*p));
	p->service = services[rnd(&s, UTIL_ARRAY_SIZE(services))];
	p->profile_name = profile_names[seq % UTIL_ARRAY_SIZE(profile_names)];
	p->received_ns = r->base_s * NS + (int64_t)seq * 1000003 + 17;
	p->from_ns = r->base_s * NS + (int64_t)seq * NS;
	p->until_ns = p->from_ns + 10 * NS;

	g->labels[n++] = (struct label){"service_name", p->service};
	first = rnd(&s, UTIL_ARRAY_SIZE(odd_labels));
	count = 1 + rnd(&s, UTIL_ARRAY_SIZE(odd_labels) - 1);
	for (k = 0; k < count; k++)
		g->labels[n++] = odd_labels[(first + k) % UTIL_ARRAY_SIZE(odd_labels)];
	snprintf(g->seqval, sizeof(g->seqval), "%" PRIu32, seq);
	g->labels[n++] = (struct label){"seq", g->seqval};
	if (rnd(&s, 2)) {
		snprintf(g->podval, sizeof(g->podval), "pod-%08" PRIx64 " ñ=%d", splitmix(&s),
			 r->index);
		g->labels[n++] = (struct label){"pod", g->podval};
	}
	p->labels = g->labels;
	p->n_labels = n;

	if (seq % 3 == 0) {
		snprintf(g->tenant, sizeof(g->tenant), "tenant-%02d", r->index);
		p->tenant = g->tenant;
	}
	p->n_types = 1 + rnd(&s, GEN_MAX_TYPES);
	for (i = 0; i < p->n_types; i++) {
		g->types[i] = type_defs[i];
		g->types[i].total = (int64_t)(splitmix(&s) >> (20 + i * 8));
	}
	p->types = g->types;
	p->spy_name = seq % 4 == 3 ? NULL : seq % 2 ? "nodespy" : "pyroscope-nodejs 0.6.4";
	p->format = "pprof";
	p->sample_rate = seq % 5 == 0 ? 0 : 100;
	if (seq % 6 == 1) {
		p->units = "samples";
		p->aggregation = seq % 12 == 1 ? "sum" : "average";
	}
	if (r->process_id && seq % 2 == 0) {
		p->process_id = r->process_id;
		p->attribution = (enum store_attribution)(1 + (seq / 2) % (STORE_ATTR_COUNT - 1));
	}

	dynbuf__init(&g->payload, 0);
	if (!with_payload)
		return;
	plen = snprintf(prefix, sizeof(prefix), "braid-crash round %d seq %" PRIu32 "\n", r->index,
			seq);
	reps = 1 + rnd(&s, 3);
	switch (seq % 4) {
	case 0:
		rc = dynbuf__append(&g->payload, fx->gz.data, fx->gz.len);
		break;
	case 1:
		rc = dynbuf__append(&g->payload, prefix, (size_t)plen);
		if (!rc)
			rc = dynbuf__append(&g->payload, fx->gz.data, fx->gz.len);
		break;
	case 2:
		rc = dynbuf__append(&g->payload, fx->raw.data, fx->raw.len);
		break;
	default:
		rc = dynbuf__append(&g->payload, prefix, (size_t)plen);
		for (k = 0; !rc && k < reps; k++)
			rc = dynbuf__append(&g->payload, fx->raw.data, fx->raw.len);
		break;
	}
	if (rc)
		fail("building a payload: %s", strerror(-rc));
	p->payload = g->payload.data;
	p->payload_len = g->payload.len;
}

static void sdk_gen__free(struct sdk_gen *g)
{
	dynbuf__free(&g->payload);
}

/* Frames shared by every stack: the same name at another offset, the same
 * name and offset in another module, the same in all but kind, so that
 * deduplication by all four fields is exercised. */
static struct frame pool[POOL_N + 1];

static void pool__init(void)
{
	static const char *const kernel[8] = {"entry_SYSCALL_64_after_hwframe",
					      "do_syscall_64",
					      "__x64_sys_epoll_wait",
					      "do_epoll_wait",
					      "ep_poll",
					      "schedule_hrtimeout_range",
					      "__schedule",
					      "finish_task_switch.isra.0"};
	static const char *const native[8] = {
		"uv_run",
		"uv__io_poll",
		"node::SpinEventLoop(node::Environment*)",
		"",
		"epoll_wait",
		"__libc_start_main",
		"std::vector<int, std::allocator<int> >::push_back(int const&)",
		"start_thread"};
	static const char *const jit[8] = {
		"processTicksAndRejections node:internal/process/task_queues:67",
		"JS:~handler /app/server.js:12",
		"LazyCompile:*emit node:events:460",
		"Builtin:InterpreterEntryTrampoline",
		"JS:*ünïcode /app/ü.js:1",
		"Stub:CEntry",
		"JS:~<anonymous> /app/a b.js:3",
		"RegExp:[a-z]+=\\{"};
	size_t i;

	for (i = 0; i < POOL_N; i++) {
		size_t g = i / 3, h = g % 8;
		struct frame *f = &pool[i];

		switch (i % 3) {
		case 0:
			/* a kernel address: above INT64_MAX as an unsigned offset */
			*f = (struct frame){FRAME_KERNEL, kernel[h], "[kernel.kallsyms]",
					    0xffffffff81000000ull + h * 0x1000 + (g / 8) * 0x10};
			break;
		case 1:
			*f = (struct frame){FRAME_NATIVE, native[h],
					    g < 8 ? "/usr/bin/node"
						  : "/usr/lib/x86_64-linux-gnu/libc.so.6",
					    0x1000 + h * 0x40};
			break;
		default:
			*f = (struct frame){g < 8 ? FRAME_JIT : FRAME_NATIVE, jit[h],
					    "/tmp/perf-4242.map", 0x3a000000 + h * 8};
			break;
		}
	}
	/* offset 0: function-level */
	pool[POOL_N] =
		(struct frame){FRAME_JIT, "JS:~main /app/server.js:1", "/tmp/perf-4242.map", 0};
}

struct ebpf_gen {
	int64_t second;
	size_t n;
	struct store_bucket rows[GEN_MAX_ROWS];
	struct frame frames[GEN_MAX_ROWS][GEN_MAX_DEPTH];
	char names[GEN_MAX_ROWS][64];
	/* what the store must hold: rows with the same thread and stack summed */
	size_t n_exp;
	struct store_bucket exp[GEN_MAX_ROWS];
};

static int32_t round_pid(const struct round *r)
{
	return 40000 + r->index * 16;
}

static bool str_eq_unknown(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool frames_eq(const struct frame *a, size_t na, const struct frame *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (a[i].kind != b[i].kind || a[i].offset != b[i].offset ||
		    !str_eq_unknown(a[i].name, b[i].name) ||
		    !str_eq_unknown(a[i].module, b[i].module))
			return false;
	return true;
}

/* The eBPF batch number seq of round r: 1-10 rows of 4 threads, stacks of
 * 3-30 frames, some sharing thread and stack with the row before. */
static void gen_ebpf(const struct round *r, uint32_t seq, struct ebpf_gen *e)
{
	uint64_t s = r->seed ^ util__hash_u64(0xeb0f000000ull + seq);
	size_t j, k, d;

	e->second = r->base_s + seq;
	e->n = 1 + rnd(&s, GEN_MAX_ROWS);
	for (j = 0; j < e->n; j++) {
		struct store_bucket *b = &e->rows[j];

		b->process_id = r->process_id;
		b->second = e->second;
		b->count = 1 + (int64_t)rnd(&s, 1000);
		if (j > 0 && rnd(&s, 6) == 0) {
			b->tid = e->rows[j - 1].tid;
			b->frames = e->rows[j - 1].frames;
			b->n_frames = e->rows[j - 1].n_frames;
			continue;
		}
		b->tid = round_pid(r) + (int32_t)rnd(&s, 4);
		d = GEN_MIN_DEPTH + rnd(&s, GEN_MAX_DEPTH - GEN_MIN_DEPTH + 1);
		for (k = 0; k < d; k++)
			e->frames[j][k] = pool[rnd(&s, POOL_N + 1)];
		if (rnd(&s, 4) == 0) {
			snprintf(e->names[j], sizeof(e->names[j]),
				 "JS:anon r%d s%" PRIu32 " #%zu {ü}", r->index, seq, j);
			e->frames[j][0] =
				(struct frame){FRAME_JIT, e->names[j], "/tmp/perf-4242.map",
					       0x7f0000000000ull + seq * 64 + j};
		}
		b->frames = e->frames[j];
		b->n_frames = d;
	}

	e->n_exp = 0;
	for (j = 0; j < e->n; j++) {
		const struct store_bucket *b = &e->rows[j];

		for (k = 0; k < e->n_exp; k++)
			if (e->exp[k].tid == b->tid &&
			    frames_eq(e->exp[k].frames, e->exp[k].n_frames, b->frames, b->n_frames))
				break;
		if (k < e->n_exp)
			e->exp[k].count += b->count;
		else
			e->exp[e->n_exp++] = *b;
	}
}

struct proc_gen {
	struct store_process p;
	int64_t seen_ns;
	char service[32], container[80];
};

static void gen_process(const struct round *r, struct proc_gen *g)
{
	uint64_t s = r->seed ^ 0x9e0c;

	memset(&g->p, 0, sizeof(g->p));
	g->p.pid = round_pid(r);
	g->p.start_time_ns = r->base_s * NS - (int64_t)(r->index + 1) * 7 * NS - 123;
	g->p.comm = "node";
	g->p.exe = "/usr/bin/node";
	g->p.cmdline = "node /app/server.js --name=ü {x} --port 8080";
	snprintf(g->service, sizeof(g->service), "checkout-%d", r->index);
	g->p.service = g->service;
	snprintf(g->container, sizeof(g->container),
		 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, splitmix(&s),
		 splitmix(&s), splitmix(&s), splitmix(&s));
	g->p.container_id = g->container;
	g->p.runtime = RUNTIME_NODE;
	g->seen_ns = r->base_s * NS + r->index;
}

/* ---- the child ------------------------------------------------------------ */

static void write_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One write(2) per line, only after the store call returned: the parent
 * sees exactly the records whose commit returned (minus a last one). */
static void write_line(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	size_t off = 0, len;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		fail("child: line too long");
	len = (size_t)n;
	while (off < len) {
		ssize_t w = write(STDOUT_FILENO, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail("child: write to stdout: %s", strerror(errno));
		off += (size_t)w;
	}
}

static int child_main(char **argv)
{
	struct store_options o = {.data_dir = argv[2], .skip_check = true};
	struct round r = {0};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct fixture fx;
	struct proc_gen pg;
	struct sdk_gen *g;
	struct ebpf_gen *e;
	uint32_t seq;
	int rc;

	r.index = atoi(argv[3]);
	r.seed = strtoull(argv[4], NULL, 10);
	r.base_s = strtoll(argv[5], NULL, 10);
	g_master_seed = r.seed;
	g = calloc(1, sizeof(*g));
	e = calloc(1, sizeof(*e));
	if (!g || !e)
		fail("child: out of memory");
	fixture__load(&fx);
	pool__init();

	rc = store__open(&o, &err, &s);
	if (rc)
		fail("child round %d: store__open: %s (%s)", r.index, err.msg, strerror(-rc));
	gen_process(&r, &pg);
	rc = store__put_process(s, &pg.p, pg.seen_ns, &r.process_id);
	if (rc)
		fail("child round %d: store__put_process: %s (%s)", r.index, store__errmsg(s),
		     strerror(-rc));
	write_line("proc %" PRId64 "\n", r.process_id);

	for (seq = 0;; seq++) {
		int64_t id = 0;
		size_t dropped = 1;

		gen_sdk(&r, &fx, seq, true, g);
		rc = store__put_sdk_profile(s, &g->p, &id);
		if (rc)
			fail("child round %d: store__put_sdk_profile seq %" PRIu32 ": %s (%s)",
			     r.index, seq, store__errmsg(s), strerror(-rc));
		sdk_gen__free(g);
		write_line("sdk %" PRId64 " %" PRIu32 "\n", id, seq);

		gen_ebpf(&r, seq, e);
		rc = store__put_buckets(s, e->rows, e->n, &dropped);
		if (rc)
			fail("child round %d: store__put_buckets seq %" PRIu32 ": %s (%s)", r.index,
			     seq, store__errmsg(s), strerror(-rc));
		if (dropped)
			fail("child round %d: store__put_buckets seq %" PRIu32
			     ": %zu rows dropped in a store far from full",
			     r.index, seq, dropped);
		write_line("ebpf %" PRIu32 "\n", seq);
	}
}

/* ---- the parent: running and killing a child ----------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(int fd, struct dynbuf *out, bool *eof)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			fail("reading the child's output: %s", strerror(errno));
		if (n == 0) {
			*eof = true;
			return;
		}
		if (dynbuf__append(out, buf, (size_t)n))
			fail("the child's output: out of memory");
	}
}

/* Runs the child of round r for kill_ms, SIGKILLs it and returns all it
 * printed in out. */
static void run_child(const struct round *r, int kill_ms, struct dynbuf *out)
{
	char a_round[16], a_seed[32], a_base[32];
	char *argv[] = {
		"test_store_crash", "--child", (char *)g_dir, a_round, a_seed, a_base, NULL};
	int fds[2], status;
	bool eof = false;
	int64_t deadline;
	pid_t pid;

	snprintf(a_round, sizeof(a_round), "%d", r->index);
	snprintf(a_seed, sizeof(a_seed), "%" PRIu64, r->seed);
	snprintf(a_base, sizeof(a_base), "%" PRId64, r->base_s);
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		fail("pipe2: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		/* dup2 clears close-on-exec on the copy; the child blocks on
		 * a full pipe rather than losing a line */
		if (dup2(fds[1], STDOUT_FILENO) < 0 ||
		    fcntl(STDOUT_FILENO, F_SETFL, 0) < 0) /* blocking */
			_exit(126);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(fds[1]);

	deadline = mono_ms() + kill_ms;
	for (;;) {
		int64_t left = deadline - mono_ms();
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};

		if (left <= 0 || eof)
			break;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		drain(fds[0], out, &eof);
	}
	if (kill(pid, SIGKILL) < 0)
		fail("kill: %s", strerror(errno));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	if (fcntl(fds[0], F_SETFL, 0) < 0)
		fail("fcntl: %s", strerror(errno));
	while (!eof)
		drain(fds[0], out, &eof);
	close(fds[0]);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		if (WIFEXITED(status))
			fail("round %d: the child exited with status %d before it was killed "
			     "(its message is above)",
			     r->index, WEXITSTATUS(status));
		fail("round %d: the child died of signal %d, not SIGKILL", r->index,
		     WTERMSIG(status));
	}
}

/* ---- the parent: checking --------------------------------------------------- */

struct sdk_rec {
	int64_t id;
	int round;
	uint32_t seq;
};

struct state {
	struct round *rounds;
	int n_rounds;
	struct sdk_rec *recs;
	size_t n_recs, cap_recs;
	struct fixture fx;
	struct sdk_gen gen;
	struct ebpf_gen ebpf;
	int64_t verified; /* ids and batches checked, over all rounds */
};

/* Parses the complete lines of a child's output into st (the last line,
 * cut by the kill, does not count). */
static void parse_output(struct state *st, struct round *r, const struct dynbuf *out)
{
	const char *p = out->data, *end = out->data + out->len;
	uint32_t next_sdk = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[128];
		int64_t id;
		uint32_t seq;
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - p);
		if (len >= sizeof(line))
			fail("round %d: a line of %zu bytes from the child", r->index, len);
		memcpy(line, p, len);
		line[len] = 0;
		p = nl + 1;

		if (sscanf(line, "proc %" SCNd64, &id) == 1 && !r->process_id) {
			r->process_id = id;
		} else if (sscanf(line, "sdk %" SCNd64 " %" SCNu32, &id, &seq) == 2 &&
			   r->process_id && seq == next_sdk && r->n_ebpf == seq) {
			if (st->n_recs == st->cap_recs) {
				size_t cap = st->cap_recs ? 2 * st->cap_recs : 1024;
				struct sdk_rec *n = realloc(st->recs, cap * sizeof(*n));

				if (!n)
					fail("out of memory");
				st->recs = n;
				st->cap_recs = cap;
			}
			st->recs[st->n_recs++] = (struct sdk_rec){id, r->index, seq};
			next_sdk++;
		} else if (sscanf(line, "ebpf %" SCNu32, &seq) == 1 && seq == r->n_ebpf &&
			   next_sdk == seq + 1) {
			r->n_ebpf++;
		} else {
			fail("round %d: unexpected line from the child: '%s'", r->index, line);
		}
	}
}

struct sdk_check {
	const struct store_sdk_profile *exp;
	bool with_payload;
	int calls;
	char err[ERRMSG_MAX];
};

static bool nstr_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

#define MISMATCH(c, ...)                                                                           \
	do {                                                                                       \
		if (!(c)->err[0])                                                                  \
			snprintf((c)->err, sizeof((c)->err), __VA_ARGS__);                         \
		return 0;                                                                          \
	} while (0)

#define CHECK_I64(c, field, want, got)                                                             \
	do {                                                                                       \
		if ((int64_t)(want) != (int64_t)(got))                                             \
			MISMATCH(c, "field %s: expected %" PRId64 ", got %" PRId64, field,         \
				 (int64_t)(want), (int64_t)(got));                                 \
	} while (0)

#define CHECK_STR(c, field, want, got)                                                             \
	do {                                                                                       \
		if (!nstr_eq(want, got))                                                           \
			MISMATCH(c, "field %s: expected %s%s%s, got %s%s%s", field,                \
				 (want) ? "'" : "", (want) ? (want) : "NULL", (want) ? "'" : "",   \
				 (got) ? "'" : "", (got) ? (got) : "NULL", (got) ? "'" : "");      \
	} while (0)

static int check_sdk(void *ctx, const struct store_sdk_profile *p)
{
	struct sdk_check *c = ctx;
	const struct store_sdk_profile *e = c->exp;
	char field[64];
	size_t i;

	if (c->calls++)
		MISMATCH(c, "the callback ran more than once for one id");
	CHECK_I64(c, "id", e->id, p->id);
	CHECK_I64(c, "received_ns", e->received_ns, p->received_ns);
	CHECK_STR(c, "service", e->service, p->service);
	CHECK_STR(c, "profile_name", e->profile_name, p->profile_name);
	CHECK_I64(c, "n_labels", e->n_labels, p->n_labels);
	for (i = 0; i < e->n_labels; i++) {
		snprintf(field, sizeof(field), "labels[%zu].name", i);
		CHECK_STR(c, field, e->labels[i].name, p->labels[i].name);
		snprintf(field, sizeof(field), "labels[%zu].value", i);
		CHECK_STR(c, field, e->labels[i].value, p->labels[i].value);
	}
	CHECK_STR(c, "tenant", e->tenant, p->tenant);
	CHECK_I64(c, "n_types", e->n_types, p->n_types);
	for (i = 0; i < e->n_types; i++) {
		snprintf(field, sizeof(field), "types[%zu].type", i);
		CHECK_STR(c, field, e->types[i].type, p->types[i].type);
		snprintf(field, sizeof(field), "types[%zu].unit", i);
		CHECK_STR(c, field, e->types[i].unit, p->types[i].unit);
		snprintf(field, sizeof(field), "types[%zu].total", i);
		CHECK_I64(c, field, e->types[i].total, p->types[i].total);
	}
	CHECK_I64(c, "from_ns", e->from_ns, p->from_ns);
	CHECK_I64(c, "until_ns", e->until_ns, p->until_ns);
	CHECK_STR(c, "spy_name", e->spy_name ? e->spy_name : "unknown", p->spy_name);
	CHECK_STR(c, "format", e->format, p->format);
	CHECK_I64(c, "sample_rate", e->sample_rate, p->sample_rate);
	CHECK_STR(c, "units", e->units, p->units);
	CHECK_STR(c, "aggregation", e->aggregation, p->aggregation);
	CHECK_I64(c, "process_id", e->process_id, p->process_id);
	CHECK_I64(c, "attribution", e->attribution, p->attribution);
	CHECK_I64(c, "merged", 0, p->merged);
	CHECK_I64(c, "forwarded", 0, p->forwarded);
	if (!c->with_payload) {
		if (p->payload)
			MISMATCH(c,
				 "field payload: expected NULL (with_payload false), got "
				 "%zu bytes",
				 p->payload_len);
		return 0;
	}
	CHECK_I64(c, "payload_len", e->payload_len, p->payload_len);
	if (!p->payload || memcmp(e->payload, p->payload, e->payload_len) != 0) {
		const unsigned char *a = e->payload, *b = p->payload;

		for (i = 0; b && i < e->payload_len && a[i] == b[i]; i++)
			;
		MISMATCH(c, "field payload: %zu bytes differ from byte %zu on (%s)", e->payload_len,
			 i,
			 util__is_gzip(a, e->payload_len) ? "gzip as sent" : "sent uncompressed");
	}
	return 0;
}

static void sdk_fail(const struct round *r, const struct sdk_rec *rec, const char *what)
{
	fail("round %d (seed %" PRIu64 ") sdk id %" PRId64 " seq %" PRIu32 ": %s", r->index,
	     r->seed, rec->id, rec->seq, what);
}

/* Reads the record back with store__get_sdk_profile and compares every
 * field and the payload's bytes. */
static void verify_sdk(struct state *st, struct store *s, const struct sdk_rec *rec)
{
	const struct round *r = &st->rounds[rec->round];
	struct sdk_check c;
	int rc;

	/* not zeroed as a whole: this runs for every id, every round */
	c.exp = &st->gen.p;
	c.with_payload = true;
	c.calls = 0;
	c.err[0] = 0;
	gen_sdk(r, &st->fx, rec->seq, true, &st->gen);
	st->gen.p.id = rec->id;
	rc = store__get_sdk_profile(s, rec->id, check_sdk, &c);
	sdk_gen__free(&st->gen);
	if (rc)
		sdk_fail(r, rec, rc == -ENOENT ? "missing (-ENOENT)" : store__errmsg(s));
	if (!c.calls)
		sdk_fail(r, rec, "store__get_sdk_profile returned 0 without calling back");
	if (c.err[0])
		sdk_fail(r, rec, c.err);
	st->verified++;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct sdk_rec *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

struct list_check {
	struct state *st;
	struct sdk_rec *sorted; /* st->recs by id */
	bool *seen;
	int64_t rows;
	const struct sdk_rec *bad;
	char err[ERRMSG_MAX + 64];
};

/* One row of the listing of every profile: if the child printed its id,
 * its fields (all but the payload) must be the record's. */
static int check_listed(void *ctx, const struct store_sdk_profile *p)
{
	struct list_check *l = ctx;
	struct state *st = l->st;
	struct sdk_rec key = {.id = p->id}, *rec;
	struct sdk_check c;

	l->rows++;
	rec = bsearch(&key, l->sorted, st->n_recs, sizeof(key), cmp_rec);
	if (!rec || l->err[0])
		return 0;
	if (l->seen[rec - l->sorted]) {
		snprintf(l->err, sizeof(l->err), "listed twice");
		l->bad = rec;
		return 0;
	}
	l->seen[rec - l->sorted] = true;
	c.exp = &st->gen.p;
	c.with_payload = false;
	c.calls = 0;
	c.err[0] = 0;
	gen_sdk(&st->rounds[rec->round], &st->fx, rec->seq, false, &st->gen);
	st->gen.p.id = rec->id;
	check_sdk(&c, p);
	sdk_gen__free(&st->gen);
	if (c.err[0]) {
		snprintf(l->err, sizeof(l->err), "in the listing: %s", c.err);
		l->bad = rec;
	}
	return 0;
}

/* Every printed id of every round, through store__sdk_profiles (no
 * payloads: those are compared once per id by verify_sdk). Returns the
 * number of rows in the table. */
static int64_t verify_listing(struct state *st, struct store *s)
{
	struct store_sdk_query q = {0};
	struct list_check l = {.st = st};
	size_t i;
	int rc;

	l.seen = calloc(st->n_recs + 1, sizeof(*l.seen));
	l.sorted = malloc((st->n_recs + 1) * sizeof(*l.sorted));
	if (!l.seen || !l.sorted)
		fail("out of memory");
	if (st->n_recs)
		memcpy(l.sorted, st->recs, st->n_recs * sizeof(*l.sorted));
	qsort(l.sorted, st->n_recs, sizeof(*l.sorted), cmp_rec);
	for (i = 1; i < st->n_recs; i++)
		if (l.sorted[i].id == l.sorted[i - 1].id)
			sdk_fail(&st->rounds[l.sorted[i].round], &l.sorted[i],
				 "the same id was returned by two calls of store__put_sdk_profile");
	rc = store__sdk_profiles(s, &q, check_listed, &l);
	if (rc)
		fail("store__sdk_profiles: %s (%s)", store__errmsg(s), strerror(-rc));
	if (l.err[0])
		sdk_fail(&st->rounds[l.bad->round], l.bad, l.err);
	for (i = 0; i < st->n_recs; i++)
		if (!l.seen[i])
			sdk_fail(&st->rounds[l.sorted[i].round], &l.sorted[i],
				 "missing from store__sdk_profiles' listing");
	free(l.seen);
	free(l.sorted);
	return l.rows;
}

/* A round's batches read back in one store__buckets call (rows come by
 * second, then tid), each compared with its batch regenerated. */
struct bucket_check {
	struct state *st;
	struct round *r;
	int64_t seq;	  /* the batch being compared, -1 before the first row */
	int64_t next_seq; /* the batches before it are done */
	bool matched[GEN_MAX_ROWS];
	int64_t err_seq;
	char err[ERRMSG_MAX];
};

static void __attribute__((format(printf, 2, 3)))
bucket_err(struct bucket_check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0])
		return;
	c->err_seq = c->seq;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Where b differs from the expected row most like it, for the message. */
static void describe_unmatched(struct bucket_check *c, const struct store_bucket *b)
{
	const struct ebpf_gen *e = &c->st->ebpf;
	const struct store_bucket *best = NULL;
	size_t best_k = 0, j, k;

	for (j = 0; j < e->n_exp; j++) {
		const struct store_bucket *x = &e->exp[j];

		if (x->tid != b->tid || c->matched[j])
			continue;
		for (k = 0; k < x->n_frames && k < b->n_frames; k++)
			if (!frames_eq(&x->frames[k], 1, &b->frames[k], 1))
				break;
		if (!best || k > best_k) {
			best = x;
			best_k = k;
		}
	}
	if (!best) {
		bucket_err(c, "unexpected row tid %" PRId32 " (%zu frames, count %" PRId64 ")",
			   b->tid, b->n_frames, b->count);
	} else if (best_k == best->n_frames || best_k == b->n_frames) {
		bucket_err(c, "row tid %" PRId32 ": field n_frames: expected %zu, got %zu", b->tid,
			   best->n_frames, b->n_frames);
	} else {
		const struct frame *x = &best->frames[best_k], *y = &b->frames[best_k];

		bucket_err(c,
			   "row tid %" PRId32 " frame %zu: expected {kind %d, name '%s', module "
			   "'%s', offset %#" PRIx64 "}, got {kind %d, name '%s', module '%s', "
			   "offset %#" PRIx64 "}",
			   b->tid, best_k, x->kind, x->name ? x->name : "(null)",
			   x->module ? x->module : "(null)", x->offset, y->kind,
			   y->name ? y->name : "(null)", y->module ? y->module : "(null)",
			   y->offset);
	}
}

static int64_t exp_samples(const struct ebpf_gen *e)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; i < e->n_exp; i++)
		n += e->exp[i].count;
	return n;
}

/* The batch c->seq had rows: all of them must be there, whether printed
 * or in flight at the kill. */
static void finish_batch(struct bucket_check *c)
{
	const struct ebpf_gen *e = &c->st->ebpf;
	struct round *r = c->r;
	size_t j;

	for (j = 0; j < e->n_exp; j++)
		if (!c->matched[j])
			bucket_err(c, "missing row tid %" PRId32 " (%zu frames, count %" PRId64 ")",
				   e->exp[j].tid, e->exp[j].n_frames, e->exp[j].count);
	if (c->seq < r->n_ebpf) {
		r->ebpf_rows += (int64_t)e->n_exp;
		r->ebpf_samples += exp_samples(e);
		c->st->verified++;
	} else {
		r->inflight_rows = (int64_t)e->n_exp;
		r->inflight_samples = exp_samples(e);
	}
	c->next_seq = c->seq + 1;
}

static int check_bucket(void *ctx, const struct store_bucket *b)
{
	struct bucket_check *c = ctx;
	const struct ebpf_gen *e = &c->st->ebpf;
	struct round *r = c->r;
	int64_t seq = b->second - r->base_s;
	size_t j;

	if (c->err[0])
		return 0;
	if (b->process_id != r->process_id) {
		bucket_err(c, "a row of process %" PRId64 " in the answer for process %" PRId64,
			   b->process_id, r->process_id);
		return 0;
	}
	if (seq != c->seq) {
		if (seq < c->seq || seq < 0 || seq > (int64_t)r->n_ebpf + 1) {
			bucket_err(c,
				   "a row of second %" PRId64 " (not by second, or out of range)",
				   b->second);
			return 0;
		}
		if (c->seq >= 0)
			finish_batch(c);
		if (c->next_seq < seq && c->next_seq < r->n_ebpf) {
			c->seq = c->next_seq;
			bucket_err(c, "missing: no row at all");
			return 0;
		}
		c->seq = seq;
		if (seq > r->n_ebpf) {
			bucket_err(c, "rows of a batch the child never started");
			return 0;
		}
		gen_ebpf(r, (uint32_t)seq, &c->st->ebpf);
		memset(c->matched, 0, sizeof(c->matched));
	}
	for (j = 0; j < e->n_exp; j++) {
		const struct store_bucket *x = &e->exp[j];

		if (!c->matched[j] && x->tid == b->tid &&
		    frames_eq(x->frames, x->n_frames, b->frames, b->n_frames))
			break;
	}
	if (j == e->n_exp) {
		describe_unmatched(c, b);
		return 0;
	}
	c->matched[j] = true;
	if (b->count != e->exp[j].count)
		bucket_err(c,
			   "row tid %" PRId32 " (%zu frames): field count: expected %" PRId64
			   ", got %" PRId64,
			   b->tid, b->n_frames, e->exp[j].count, b->count);
	return 0;
}

/* Round r's batches, row by row: every printed batch exactly, the batch in
 * flight at the kill whole or not at all, nothing after it. */
static void verify_round_ebpf(struct state *st, struct store *s, struct round *r)
{
	struct bucket_check c = {.st = st, .r = r, .seq = -1};
	int rc;

	r->ebpf_rows = r->ebpf_samples = 0;
	r->inflight_rows = r->inflight_samples = 0;
	rc = store__buckets(s, r->process_id, r->base_s, r->base_s + r->n_ebpf + 2, check_bucket,
			    &c);
	if (rc)
		fail("round %d (seed %" PRIu64 "): store__buckets: %s (%s)", r->index, r->seed,
		     store__errmsg(s), strerror(-rc));
	if (!c.err[0] && c.seq >= 0)
		finish_batch(&c);
	if (!c.err[0] && c.next_seq < r->n_ebpf) {
		c.seq = c.next_seq;
		bucket_err(&c, "missing: no row at all");
	}
	if (c.err[0])
		fail("round %d (seed %" PRIu64 ") ebpf seq %" PRId64 " (process %" PRId64
		     ", second %" PRId64 ")%s: %s",
		     r->index, r->seed, c.err_seq, r->process_id, r->base_s + c.err_seq,
		     c.err_seq >= r->n_ebpf ? ", a batch the child had not printed" : "", c.err);
}

struct bucket_sum {
	size_t rows;
	int64_t samples;
};

static int sum_bucket(void *ctx, const struct store_bucket *b)
{
	struct bucket_sum *sum = ctx;

	sum->rows++;
	sum->samples += b->count;
	return 0;
}

struct proc_check {
	const struct proc_gen *g;
	char err[ERRMSG_MAX];
};

static int check_process(struct proc_check *c, const struct store_process *p)
{
	const struct proc_gen *g = c->g;

	CHECK_I64(c, "pid", g->p.pid, p->pid);
	CHECK_I64(c, "start_time_ns", g->p.start_time_ns, p->start_time_ns);
	CHECK_STR(c, "comm", g->p.comm, p->comm);
	CHECK_STR(c, "exe", g->p.exe, p->exe);
	CHECK_STR(c, "cmdline", g->p.cmdline, p->cmdline);
	CHECK_STR(c, "service", g->p.service, p->service);
	CHECK_STR(c, "container_id", g->p.container_id, p->container_id);
	CHECK_I64(c, "runtime", g->p.runtime, p->runtime);
	CHECK_I64(c, "first_seen_ns", g->seen_ns, p->first_seen_ns);
	CHECK_I64(c, "last_seen_ns", g->seen_ns, p->last_seen_ns);
	return 0;
}

static void verify_process(struct store *s, const struct round *r)
{
	struct store_process p;
	struct proc_gen g;
	struct proc_check c = {.g = &g};
	int64_t found = 0;
	int rc;

	gen_process(r, &g);
	rc = store__get_process(s, r->process_id, &p);
	if (rc)
		fail("round %d (seed %" PRIu64 ") process id %" PRId64
		     ": store__get_process: %s (%s)",
		     r->index, r->seed, r->process_id, store__errmsg(s), strerror(-rc));
	if (p.id != r->process_id)
		fail("round %d process id %" PRId64 ": field id: got %" PRId64, r->index,
		     r->process_id, p.id);
	check_process(&c, &p);
	if (c.err[0])
		fail("round %d (seed %" PRIu64 ") process id %" PRId64 ": %s", r->index, r->seed,
		     r->process_id, c.err);
	rc = store__find_process(s, g.p.pid, g.p.start_time_ns, &found);
	if (rc || found != r->process_id)
		fail("round %d process id %" PRId64 ": store__find_process gave %d, id %" PRId64,
		     r->index, r->process_id, rc, found);
}

/* An earlier round's batches, summed in one read. */
static void verify_round_sums(struct store *s, const struct round *r)
{
	struct bucket_sum sum = {0};
	int rc;

	rc = store__buckets(s, r->process_id, r->base_s, r->base_s + r->n_ebpf, sum_bucket, &sum);
	if (rc)
		fail("round %d: store__buckets: %s (%s)", r->index, store__errmsg(s),
		     strerror(-rc));
	if ((int64_t)sum.rows != r->ebpf_rows || sum.samples != r->ebpf_samples)
		fail("round %d (seed %" PRIu64 ") process %" PRId64 ", %" PRIu32
		     " batches printed: expected %" PRId64 " rows of %" PRId64
		     " samples, found %zu rows of %" PRId64,
		     r->index, r->seed, r->process_id, r->n_ebpf, r->ebpf_rows, r->ebpf_samples,
		     sum.rows, sum.samples);
}

/* After the kill of round `cur`: the new round's records one by one (all
 * rounds' if `full`); for the earlier rounds every SDK id through the
 * listing, the table totals, and every tenth round each round's sums. */
static void verify_round(struct state *st, struct store *s, int cur, size_t first_rec, bool full)
{
	struct store_stats stats;
	int64_t listed, unprinted_max = 0, rows = 0, samples = 0;
	size_t i;
	int k, rc;

	for (k = 0; k <= cur; k++) {
		struct round *r = &st->rounds[k];

		if (!r->process_id)
			continue;
		unprinted_max++;
		verify_process(s, r);
		if (k == cur || full)
			verify_round_ebpf(st, s, r);
		else if (cur % 10 == 9)
			verify_round_sums(s, r);
		rows += r->ebpf_rows + r->inflight_rows;
		samples += r->ebpf_samples + r->inflight_samples;
	}

	for (i = full ? 0 : first_rec; i < st->n_recs; i++)
		verify_sdk(st, s, &st->recs[i]);
	listed = verify_listing(st, s);

	rc = store__stats(s, false, &stats);
	if (rc)
		fail("store__stats: %s (%s)", store__errmsg(s), strerror(-rc));
	/* a child may have committed one profile it did not live to print */
	if (stats.tables[STORE_TABLE_SDK_PROFILES].rows != listed || listed < (int64_t)st->n_recs ||
	    listed > (int64_t)st->n_recs + unprinted_max)
		fail("after round %d: %" PRId64 " SDK profiles in stats, %" PRId64
		     " listed, %zu printed by the children (at most %" PRId64 " more may be there)",
		     cur, stats.tables[STORE_TABLE_SDK_PROFILES].rows, listed, st->n_recs,
		     unprinted_max);
	if (stats.tables[STORE_TABLE_EBPF_BUCKETS].rows != rows || stats.ebpf_samples != samples)
		fail("after round %d: stats count %" PRId64 " bucket rows of %" PRId64
		     " samples, the batches found so far hold %" PRId64 " rows of %" PRId64,
		     cur, stats.tables[STORE_TABLE_EBPF_BUCKETS].rows, stats.ebpf_samples, rows,
		     samples);
	for (k = 0; k < STORE_CTR_COUNT; k++)
		if (stats.counters[k])
			fail("after round %d: counter %s is %" PRId64 ", expected 0", cur,
			     store__counter_name((enum store_counter)k), stats.counters[k]);
}

static void open_and_verify(struct state *st, int cur, size_t first_rec, bool full)
{
	struct store_options o = {.data_dir = g_dir};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	int rc;

	rc = store__open(&o, &err, &s); /* runs quick_check */
	if (rc)
		fail("after round %d: store__open: %s (%s)", cur, err.msg, strerror(-rc));
	rc = store__check(s, true, &err);
	if (rc)
		fail("after round %d: integrity_check: %s (%s)", cur, err.msg, strerror(-rc));
	verify_round(st, s, cur, first_rec, full);
	store__close(s);
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
		fprintf(stderr, "store_crash: %s=%s is not a number\n", name, v);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	static char dir[4096];
	struct state *st;
	const char *tmp = getenv("TMPDIR");
	int64_t started = mono_ms(), base_s = (int64_t)time(NULL) - 7200;
	int n_rounds, k, written_rounds = 0;
	uint64_t rng;
	struct timespec now;

	if (argc == 6 && strcmp(argv[1], "--child") == 0)
		return child_main(argv);
	if (argc != 1) {
		fprintf(stderr, "usage: %s\n", argv[0]);
		return 2;
	}

	clock_gettime(CLOCK_REALTIME, &now);
	g_master_seed = env_u64("STORE_CRASH_SEED", ((uint64_t)now.tv_sec * 1000000007u) ^
							    (uint64_t)now.tv_nsec ^
							    ((uint64_t)getpid() << 32));
	n_rounds = (int)env_u64("STORE_CRASH_ROUNDS", DEFAULT_ROUNDS);
	g_keep = env_u64("STORE_TEST_KEEP", 0) != 0;
	rng = g_master_seed;
	printf("store_crash: seed %" PRIu64 " (STORE_CRASH_SEED=%" PRIu64
	       " replays it), %d rounds\n",
	       g_master_seed, g_master_seed, n_rounds);
	fflush(stdout);

	snprintf(dir, sizeof(dir), "%s/braid-store-crash-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		fail("mkdtemp %s: %s", dir, strerror(errno));
	g_dir = dir;

	st = calloc(1, sizeof(*st));
	if (!st)
		fail("out of memory");
	st->rounds = calloc((size_t)n_rounds + 1, sizeof(*st->rounds));
	if (!st->rounds)
		fail("out of memory");
	fixture__load(&st->fx);
	pool__init();

	for (k = 0; k < n_rounds; k++) {
		struct round *r = &st->rounds[k];
		int kill_ms = KILL_MIN_MS + (int)rnd(&rng, KILL_MAX_MS - KILL_MIN_MS + 1);
		size_t first_rec = st->n_recs;
		struct dynbuf out;
		int64_t t;

		r->index = k;
		r->seed = splitmix(&rng);
		r->base_s = base_s;
		dynbuf__init(&out, 0);
		run_child(r, kill_ms, &out);
		parse_output(st, r, &out);
		dynbuf__free(&out);
		st->n_rounds = k + 1;
		written_rounds += st->n_recs > first_rec;
		t = mono_ms();
		open_and_verify(st, k, first_rec, false);
		if (getenv("STORE_TEST_VERBOSE"))
			printf("round %d: killed after %d ms, %zu profiles and %" PRIu32
			       " batches printed, verified in %" PRId64 " ms\n",
			       k, kill_ms, st->n_recs - first_rec, r->n_ebpf, mono_ms() - t);
	}
	/* once more, everything in full */
	if (n_rounds > 0)
		open_and_verify(st, n_rounds - 1, 0, true);

	if (n_rounds > 0 && written_rounds == 0)
		fail("no child wrote anything in %d rounds: the test tested nothing", n_rounds);
	{
		int64_t batches = 0;

		for (k = 0; k < n_rounds; k++)
			batches += st->rounds[k].n_ebpf;
		printf("store_crash: OK: %d rounds (%d with records printed), %zu SDK profiles and "
		       "%" PRId64 " eBPF batches printed, %" PRId64
		       " id/batch verifications, %.1f s\n",
		       n_rounds, written_rounds, st->n_recs, batches, st->verified,
		       (double)(mono_ms() - started) / 1000);
	}
	fixture__free(&st->fx);
	free(st->recs);
	free(st->rounds);
	free(st);
	cleanup_dir();
	return 0;
}
