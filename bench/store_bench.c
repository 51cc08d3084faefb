/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write speed of the store, the two figures of its acceptance point:
 *
 *   1. SDK profiles committed per second by 2 threads, each with its own
 *      connection, each profile the real Node SDK push (1.3 KB gzipped
 *      pprof) with the labels and sample types the SDK sends;
 *   2. eBPF bucket rows per second, one thread, in drains of 2,000 rows
 *      (one second of ~50 processes x ~8 threads) over ~5,000 distinct
 *      stacks of 10-40 kernel, native and JIT frames.
 *
 * Each figure is taken at sync=normal and sync=full, each in a fresh
 * database under a temporary directory (by default under /var/tmp, a real
 * disk, not tmpfs), removed after its phase; the file system is synced
 * before each phase so that no phase pays for another's writeback.
 *
 *   bench_store [--quick] [--dir DIR] [--seconds S] [--fixture FILE]
 *               [--only sdk|ebpf] [--keep]
 *
 * BENCH_QUICK=1 in the environment is --quick: ~0.3 s per phase, a smoke
 * test. Prints the machine, then one row per figure:
 *   NAME  sync=normal|full  VALUE  target>=N|target=none  ok|BELOW|-
 * The 2 SDK threads' commit counts are printed too: a writer starved by
 * SQLite's busy handler shows there. Exits 1 when a store call fails or the
 * store loses or invents rows (2 on a bad option), never because a target
 * was missed: the figures are for a person to read.
 */
#define _GNU_SOURCE /* nftw */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_REL	  "shared/fixtures/node-sdk-0.6.4/req2.pprof.gz"
#define SDK_THREADS	  2
#define SDK_WARMUP	  20 /* untimed puts per thread: statements prepared, pages cached */
#define TARGET_SDK_PER_S  5000
#define TARGET_ROWS_PER_S 200000

#define N_PROCS		  50
#define TIDS_PER_PROC	  8
#define STACKS_PER_PROC	  100 /* 5,000 stacks in all */
#define ROWS_PER_BATCH	  2000
#define N_TEMPLATES	  64 /* distinct drains, reused with a new second each */
#define MIN_DEPTH	  10
#define MAX_DEPTH	  40
#define JS_FUNCS_PER_PROC 200
#define MAX_FIXTURE	  (1u << 20)

_Static_assert(SDK_THREADS == 2, "the report names the commits of two threads");

static struct config {
	bool quick;
	bool keep;
	bool no_sdk, no_ebpf; /* --only */
	const char *dir;      /* parent of the run directory */
	const char *fixture;  /* NULL: searched for */
	double seconds;
	const char *fill; /* --fill DATA_DIR: the store to fill */
	double hours;	  /* --hours H of it */
} cfg = {
	.dir = "/var/tmp",
	.seconds = 5.0,
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* snprintf for paths: -ENAMETOOLONG instead of a truncated path. */
static int path_fmt(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int path_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static const char *sync_name(enum store_sync sync)
{
	return sync == STORE_SYNC_FULL ? "full" : "normal";
}

/* ---- latencies --------------------------------------------------------- */

struct lat {
	int64_t *ns;
	size_t n, cap;
};

static int lat__add(struct lat *l, int64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		int64_t *p = realloc(l->ns, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->ns = p;
		l->cap = cap;
	}
	l->ns[l->n++] = ns;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of the sorted latencies, in ns. */
static int64_t lat__quantile(const struct lat *l, double q)
{
	size_t i;

	if (!l->n)
		return 0;
	i = (size_t)(q * (double)l->n);
	return l->ns[i < l->n ? i : l->n - 1];
}

/* ---- output ------------------------------------------------------------- */

static void row(const char *name, enum store_sync sync, double value, int64_t target)
{
	char tgt[32];

	if (target > 0)
		snprintf(tgt, sizeof(tgt), "target>=%lld", (long long)target);
	else
		snprintf(tgt, sizeof(tgt), "target=none");
	printf("%-22s sync=%-6s %12.*f  %-16s %s\n", name, sync_name(sync), value < 100 ? 2 : 0,
	       value, tgt,
	       target <= 0		 ? "-"
	       : value >= (double)target ? "ok"
					 : "BELOW");
	fflush(stdout);
}

/* The file system holding path, from the mount with the longest matching
 * mount point: "ext4 /dev/vda on /". */
static void describe_fs(const char *path, char *out, size_t size)
{
	char real[PATH_MAX], line[4096], best_mnt[PATH_MAX] = "", best[512] = "unknown";
	size_t best_len = 0;
	FILE *f;

	if (!realpath(path, real) || !(f = fopen("/proc/self/mountinfo", "re"))) {
		snprintf(out, size, "unknown");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], type[128], src[256];
		const char *sep = strstr(line, " - ");
		size_t len;

		/* id parent major:minor root mountpoint options... - type source opts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%127s %255s", type, src) != 2)
			continue;
		len = strlen(mnt);
		if (strncmp(real, mnt, len) != 0 ||
		    (len > 1 && real[len] != '/' && real[len] != '\0'))
			continue;
		/* >=: a later mount on the same point hides the earlier one */
		if (len >= best_len) {
			best_len = len;
			snprintf(best_mnt, sizeof(best_mnt), "%s", mnt);
			snprintf(best, sizeof(best), "%s %s", type, src);
		}
	}
	fclose(f);
	snprintf(out, size, "%s on %s", best, best_mnt[0] ? best_mnt : "?");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "bench_store: removing %s: %s\n", path, strerror(errno));
	return 0;
}

/* Removes a phase's database (unless --keep): the dirty pages of an
 * unlinked file are dropped, not written back while the next phase runs. */
static void remove_phase_dir(const char *dir)
{
	if (!cfg.keep)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes back what earlier phases (or anything else) left dirty on the
 * file system, so that a phase's figures are its own. */
static void settle(const char *run_dir)
{
	int fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (syncfs(fd) < 0)
		fprintf(stderr, "bench_store: syncfs %s: %s\n", run_dir, strerror(errno));
	close(fd);
}

/* ---- the SDK fixture ---------------------------------------------------- */

struct fixture {
	char path[PATH_MAX];
	struct dynbuf data;
	struct profile *prof; /* decoded once: sample types and totals */
	struct store_sample_type types[STORE_MAX_SAMPLE_TYPES];
	size_t n_types;
};

static bool file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

/* --fixture, else $BRAID_FIXTURES/..., else ../shared/... from the cwd (the
 * repository root), else from the executable's folder (build/). */
static int fixture__find(char *out, size_t size)
{
	const char *env = getenv("BRAID_FIXTURES");
	char exe[PATH_MAX];
	ssize_t n;

	if (cfg.fixture) {
		if (path_fmt(out, size, "%s", cfg.fixture) < 0)
			return -ENAMETOOLONG;
		return file_exists(out) ? 0 : -ENOENT;
	}
	if (env) {
		if (path_fmt(out, size, "%s/%s", env,
			     &FIXTURE_REL[sizeof("shared/fixtures/") - 1]) == 0 &&
		    file_exists(out))
			return 0;
	}
	if (path_fmt(out, size, "../%s", FIXTURE_REL) == 0 && file_exists(out))
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (path_fmt(out, size, "%s/../../%s", exe, FIXTURE_REL) == 0 && file_exists(out))
			return 0;
	}
	return -ENOENT;
}

static int fixture__load(struct fixture *fx)
{
	struct errbuf err = {{0}};
	int64_t totals[STORE_MAX_SAMPLE_TYPES];
	size_t i;
	int r;

	dynbuf__init(&fx->data, MAX_FIXTURE);
	r = fixture__find(fx->path, sizeof(fx->path));
	if (r < 0) {
		fprintf(stderr, "bench_store: no fixture %s (give --fixture FILE)\n", FIXTURE_REL);
		return r;
	}
	r = util__read_file(fx->path, MAX_FIXTURE, &err, &fx->data);
	if (r < 0)
		goto fail;
	r = profile__from_pprof(fx->data.data, fx->data.len, NULL, &err, &fx->prof);
	if (r < 0)
		goto fail;
	fx->n_types = profile__n_sample_types(fx->prof);
	if (fx->n_types > STORE_MAX_SAMPLE_TYPES) {
		r = errbuf__set(&err, -E2BIG, "%zu sample types", fx->n_types);
		goto fail;
	}
	r = profile__totals(fx->prof, totals);
	if (r < 0)
		goto fail;
	for (i = 0; i < fx->n_types; i++) {
		struct profile_value_type vt = profile__sample_type(fx->prof, i);

		fx->types[i].type = profile__str(fx->prof, vt.type);
		fx->types[i].unit = profile__str(fx->prof, vt.unit);
		fx->types[i].total = totals[i];
	}
	return 0;
fail:
	fprintf(stderr, "bench_store: %s: %s\n", fx->path, err.msg[0] ? err.msg : strerror(-r));
	return r;
}

static void fixture__free(struct fixture *fx)
{
	dynbuf__free(&fx->data);
	profile__free(fx->prof);
}

/* ---- phase 1: SDK profiles ---------------------------------------------- */

/* What the Node SDK 0.6.4 pushes besides the body (see req2.path). */
static const struct label sdk_labels[] = {
	{"service_name", "bench-app"},		{"otel.scope.name", "com.grafana.pyroscope/nodejs"},
	{"otel.scope.version", "0.6.4"},	{"process.runtime.name", "nodejs"},
	{"process.runtime.version", "20.20.2"}, {"region", "eu-1"},
};

struct sdk_shared {
	const char *data_dir;
	enum store_sync sync;
	const struct fixture *fx;
	int64_t process_id;
	pthread_barrier_t start;
	atomic_bool stop; /* set by a thread that failed */
};

struct sdk_thread {
	pthread_t thread;
	struct sdk_shared *sh;
	struct lat lat;
	int64_t t_start, t_end;
	int64_t last_id;
	size_t n_put; /* warm-up included */
	int rc;
	char msg[640];
};

static void sdk_fill(const struct sdk_shared *sh, struct store_sdk_profile *p)
{
	int64_t now = store__now_ns();

	memset(p, 0, sizeof(*p));
	p->received_ns = now;
	p->service = "bench-app";
	p->profile_name = "wall";
	p->labels = sdk_labels;
	p->n_labels = UTIL_ARRAY_SIZE(sdk_labels);
	p->types = sh->fx->types;
	p->n_types = sh->fx->n_types;
	p->from_ns = now / 1000000000 * 1000000000 - 60ll * 1000000000;
	p->until_ns = p->from_ns + 60ll * 1000000000;
	p->spy_name = "nodespy";
	p->format = "pprof";
	p->sample_rate = 100;
	p->process_id = sh->process_id;
	p->attribution = STORE_ATTR_PEER_TCP;
	p->payload = sh->fx->data.data;
	p->payload_len = sh->fx->data.len;
}

static void *sdk_worker(void *arg)
{
	struct sdk_thread *t = arg;
	struct sdk_shared *sh = t->sh;
	struct store_options opts = {
		.data_dir = sh->data_dir, .sync = sh->sync, .skip_check = true};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct store_sdk_profile p;
	int64_t deadline, t0;
	int r, i;

	r = store__open(&opts, &err, &s);
	if (r < 0) {
		snprintf(t->msg, sizeof(t->msg), "store__open: %s", err.msg);
		goto out;
	}
	for (i = 0; i < SDK_WARMUP; i++) {
		sdk_fill(sh, &p);
		r = store__put_sdk_profile(s, &p, &t->last_id);
		if (r < 0)
			goto store_failed;
		t->n_put++;
	}
	pthread_barrier_wait(&sh->start);
	t->t_start = mono_ns();
	deadline = t->t_start + (int64_t)(cfg.seconds * 1e9);
	do {
		sdk_fill(sh, &p);
		t0 = mono_ns();
		r = store__put_sdk_profile(s, &p, &t->last_id);
		t->t_end = mono_ns();
		if (r < 0)
			goto store_failed;
		t->n_put++;
		r = lat__add(&t->lat, t->t_end - t0);
		if (r < 0) {
			snprintf(t->msg, sizeof(t->msg), "out of memory");
			goto out;
		}
	} while (t->t_end < deadline && !atomic_load(&sh->stop));
	r = 0;
	goto out;
store_failed:
	snprintf(t->msg, sizeof(t->msg), "store__put_sdk_profile: %s (%s)", store__errmsg(s),
		 strerror(-r));
out:
	if (r < 0) {
		atomic_store(&sh->stop, true);
		/* the other thread may still be waiting to start */
		if (!t->t_start)
			pthread_barrier_wait(&sh->start);
	}
	t->rc = r;
	store__close(s);
	return NULL;
}

struct payload_check {
	const struct fixture *fx;
	bool same;
};

static int check_payload(void *ctx, const struct store_sdk_profile *p)
{
	struct payload_check *c = ctx;

	c->same = p->payload_len == c->fx->data.len &&
		  memcmp(p->payload, c->fx->data.data, p->payload_len) == 0;
	return 0;
}

/* 2 threads putting profiles for cfg.seconds into a fresh database in
 * run_dir/NAME; prints the figures. Returns 0 or a negative errno. */
static int bench_sdk(const char *run_dir, enum store_sync sync, const struct fixture *fx)
{
	char dir[PATH_MAX];
	struct store_options opts = {.data_dir = dir, .sync = sync, .skip_check = true};
	struct store_process proc = {
		.pid = 4242,
		.start_time_ns = store__now_ns() - 3600ll * 1000000000,
		.comm = "node",
		.exe = "/usr/bin/node",
		.cmdline = "node /app/app2.js",
		.service = "bench-app",
		.runtime = RUNTIME_NODE,
	};
	struct sdk_shared sh = {.data_dir = dir, .sync = sync, .fx = fx};
	struct sdk_thread th[SDK_THREADS];
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct store_stats st;
	struct payload_check pc = {.fx = fx};
	struct lat all = {0};
	int64_t t_start = INT64_MAX, t_end = 0;
	size_t n_put = 0, timed = 0, i;
	int started = 0, r;
	double secs;

	memset(th, 0, sizeof(th));
	r = path_fmt(dir, sizeof(dir), "%s/sdk-%s", run_dir, sync_name(sync));
	if (r < 0)
		return r;
	r = store__open(&opts, &err, &s);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__open: %s\n", err.msg);
		return r;
	}
	r = store__put_process(s, &proc, store__now_ns(), &sh.process_id);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__put_process: %s\n", store__errmsg(s));
		goto out;
	}
	atomic_init(&sh.stop, false);
	pthread_barrier_init(&sh.start, NULL, SDK_THREADS);
	for (i = 0; i < SDK_THREADS; i++) {
		th[i].sh = &sh;
		r = -pthread_create(&th[i].thread, NULL, sdk_worker, &th[i]);
		if (r < 0) {
			fprintf(stderr, "bench_store: pthread_create: %s\n", strerror(-r));
			/* a lone thread would wait at the barrier for ever */
			atomic_store(&sh.stop, true);
			if (started)
				pthread_barrier_wait(&sh.start);
			break;
		}
		started++;
	}
	for (i = 0; i < (size_t)started; i++)
		pthread_join(th[i].thread, NULL);
	pthread_barrier_destroy(&sh.start);
	if (r < 0)
		goto out;
	for (i = 0; i < SDK_THREADS; i++) {
		if (th[i].rc < 0) {
			fprintf(stderr, "bench_store: sdk thread %zu: %s\n", i, th[i].msg);
			r = th[i].rc;
		}
		n_put += th[i].n_put;
		timed += th[i].lat.n;
		if (th[i].t_start < t_start)
			t_start = th[i].t_start;
		if (th[i].t_end > t_end)
			t_end = th[i].t_end;
	}
	if (r < 0)
		goto out;

	all.ns = malloc((timed ? timed : 1) * sizeof(*all.ns));
	if (!all.ns) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < SDK_THREADS; i++) {
		memcpy(all.ns + all.n, th[i].lat.ns, th[i].lat.n * sizeof(*all.ns));
		all.n += th[i].lat.n;
	}
	qsort(all.ns, all.n, sizeof(*all.ns), cmp_i64);
	secs = (double)(t_end - t_start) / 1e9;

	/* Every acknowledged profile is there, once, with its bytes. */
	r = store__stats(s, false, &st);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__stats: %s\n", store__errmsg(s));
		goto out;
	}
	if (st.tables[STORE_TABLE_SDK_PROFILES].rows != (int64_t)n_put) {
		fprintf(stderr, "bench_store: %zu profiles committed, the store holds %lld\n",
			n_put, (long long)st.tables[STORE_TABLE_SDK_PROFILES].rows);
		r = -EIO;
		goto out;
	}
	r = store__get_sdk_profile(s, th[0].last_id, check_payload, &pc);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__get_sdk_profile: %s\n", store__errmsg(s));
		goto out;
	}
	if (!pc.same) {
		fprintf(stderr, "bench_store: profile %lld: payload differs from the fixture\n",
			(long long)th[0].last_id);
		r = -EIO;
		goto out;
	}
	printf("# sdk sync=%s: %zu profiles in %.2f s by %d threads (%zu + %zu); db %.1f MiB, "
	       "wal %.1f MiB\n",
	       sync_name(sync), timed, secs, SDK_THREADS, th[0].lat.n, th[1].lat.n,
	       (double)st.file_bytes / 1048576.0, (double)st.wal_bytes / 1048576.0);
	row("sdk_profiles_per_s", sync, (double)timed / secs, TARGET_SDK_PER_S);
	row("sdk_commit_p50_us", sync, (double)lat__quantile(&all, 0.50) / 1e3, 0);
	row("sdk_commit_p99_us", sync, (double)lat__quantile(&all, 0.99) / 1e3, 0);
	row("sdk_commit_max_us", sync, (double)all.ns[all.n ? all.n - 1 : 0] / 1e3, 0);
out:
	for (i = 0; i < SDK_THREADS; i++)
		free(th[i].lat.ns);
	free(all.ns);
	store__close(s);
	remove_phase_dir(dir);
	return r;
}

/* ---- phase 2: eBPF buckets ---------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: deterministic, so every run stores the same stacks */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

#define KSYMS	  "[kernel.kallsyms]"
#define LIBC	  "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define LIBCRYPT  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
#define LIBZ	  "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"
#define LIBSTDCXX "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"
#define NODE	  "/usr/bin/node"

/* Leaf-most kernel paths a profiled Node process spends time in, leaf first. */
static const char *const kpath_syscall_read[] = {
	"copy_user_enhanced_fast_string",
	"_copy_to_iter",
	"skb_copy_datagram_iter",
	"tcp_recvmsg_locked",
	"tcp_recvmsg",
	"inet_recvmsg",
	"sock_read_iter",
	"vfs_read",
	"ksys_read",
	"__x64_sys_read",
	"do_syscall_64",
	"entry_SYSCALL_64_after_hwframe",
};
static const char *const kpath_syscall_write[] = {
	"__dev_queue_xmit",   "ip_finish_output2",
	"__ip_queue_xmit",    "__tcp_transmit_skb",
	"tcp_write_xmit",     "__tcp_push_pending_frames",
	"tcp_sendmsg_locked", "tcp_sendmsg",
	"sock_write_iter",    "vfs_write",
	"ksys_write",	      "__x64_sys_write",
	"do_syscall_64",      "entry_SYSCALL_64_after_hwframe",
};
static const char *const kpath_epoll[] = {
	"finish_task_switch.isra.0",	  "__schedule",	   "schedule",
	"schedule_hrtimeout_range_clock", "ep_poll",	   "do_epoll_wait",
	"__x64_sys_epoll_wait",		  "do_syscall_64", "entry_SYSCALL_64_after_hwframe",
};
static const char *const kpath_fault[] = {
	"clear_page_erms",    "get_page_from_freelist", "__alloc_pages",      "alloc_pages_mpol",
	"vma_alloc_folio",    "do_anonymous_page",	"__handle_mm_fault",  "handle_mm_fault",
	"do_user_addr_fault", "exc_page_fault",		"asm_exc_page_fault",
};
static const char *const kpath_futex[] = {
	"finish_task_switch.isra.0", "__schedule",    "schedule",
	"futex_wait_queue",	     "futex_wait",    "do_futex",
	"__x64_sys_futex",	     "do_syscall_64", "entry_SYSCALL_64_after_hwframe",
};
static const char *const kpath_timer[] = {
	"update_process_times",
	"tick_nohz_handler",
	"__hrtimer_run_queues",
	"hrtimer_interrupt",
	"__sysvec_apic_timer_interrupt",
	"sysvec_apic_timer_interrupt",
	"asm_sysvec_apic_timer_interrupt",
};

struct kpath {
	const char *const *names;
	size_t n;
	const char *libc_fn; /* the libc wrapper above it, NULL for none */
};

static const struct kpath kpaths[] = {
	{kpath_syscall_read, UTIL_ARRAY_SIZE(kpath_syscall_read), "read"},
	{kpath_syscall_write, UTIL_ARRAY_SIZE(kpath_syscall_write), "__libc_write"},
	{kpath_epoll, UTIL_ARRAY_SIZE(kpath_epoll), "epoll_wait"},
	{kpath_fault, UTIL_ARRAY_SIZE(kpath_fault), "__memmove_avx_unaligned_erms"},
	{kpath_futex, UTIL_ARRAY_SIZE(kpath_futex), "__futex_abstimed_wait_common"},
	{kpath_timer, UTIL_ARRAY_SIZE(kpath_timer), NULL},
};

/* Native leaves under JavaScript: crypto, compression, allocation. */
static const struct {
	const char *module, *name;
} native_leaves[] = {
	{LIBCRYPT, "sha256_block_data_order_avx2"},
	{LIBCRYPT, "SHA256_Update"},
	{LIBCRYPT, "HMAC_Update"},
	{LIBCRYPT, "PKCS5_PBKDF2_HMAC"},
	{LIBZ, "inflate_fast"},
	{LIBZ, "inflate"},
	{LIBZ, "deflate_slow"},
	{LIBC, "__memmove_avx_unaligned_erms"},
	{LIBC, "malloc"},
	{LIBC, "_int_malloc"},
	{LIBC, "_int_free"},
	{LIBSTDCXX, "operator new(unsigned long)"},
	{NODE, "node::crypto::PBKDF2Traits::DeriveBits"},
	{NODE, "node::fs::Read"},
	{NODE, "node::StreamBase::WriteBuffer"},
	{NODE, "v8::internal::Runtime_StringCharCodeAt"},
	{NODE, "Builtins_StringPrototypeIndexOf"},
	{NODE, "Builtins_ArrayPrototypePush"},
	{NODE, "Builtins_JsonParse"},
	{NODE, "v8::internal::JsonParser<unsigned char>::ParseJsonValue"},
};

/* Outermost frames of the main thread and of a V8 platform worker, root
 * last (they are appended after the rest). */
static const char *const main_root[] = {
	"uv__io_poll", "uv_run", "node::SpinEventLoop",	   "node::NodeMainInstance::Run",
	"node::Start", "main",	 "__libc_start_call_main", "__libc_start_main_impl",
	"_start",
};
static const char *const main_to_js[] = {
	"Builtins_JSEntryTrampoline",
	"Builtins_JSEntry",
	"v8::internal::Execution::Call",
	"v8::Function::Call",
	"node::InternalCallbackScope::Close",
	"node::MakeCallback",
	"uv__stream_io",
};
static const char *const worker_root[] = {
	"node::WorkerThreadsTaskRunner::DelayedTaskScheduler::Start",
	"node::(anonymous namespace)::PlatformWorkerThread",
	"start_thread",
	"clone3",
};
static const char *const gc_natives[] = {
	"v8::internal::Scavenger::ScavengePage",
	"v8::internal::Scavenger::Process",
	"v8::internal::ScavengerCollector::JobTask::ProcessItems",
	"v8::internal::ScavengerCollector::JobTask::Run",
	"v8::internal::MarkCompactCollector::MarkLiveObjects",
	"v8::internal::ConcurrentMarking::RunMajor",
	"v8::internal::ConcurrentMarking::JobTaskMajor::Run",
	"v8::internal::MarkingVisitorBase::VisitPointers",
	"v8::internal::Sweeper::SweeperJob::Run",
	"v8::internal::Sweeper::RawSweep",
	"v8::platform::DefaultJobWorker::Run",
	"node::PerIsolatePlatformData::RunForegroundTask",
	"node::(anonymous namespace)::PlatformWorkerThread",
	"v8::internal::Heap::CollectGarbage",
	"v8::internal::Heap::PerformGarbageCollection",
	"v8::internal::Compiler::Compile",
	"v8::internal::OptimizingCompileDispatcher::CompileTask::RunInternal",
	"v8::internal::compiler::PipelineImpl::OptimizeGraph",
	"v8::internal::compiler::Schedule::AddNode",
	"v8::internal::compiler::GraphReducer::ReduceNode",
};

static const char *const js_verbs[] = {
	"handle", "parse", "validate", "compute", "render",   "fetch", "serialize", "resolve",
	"load",	  "build", "encode",   "decode",  "dispatch", "emit",  "transform", "merge",
};
static const char *const js_nouns[] = {
	"Request", "Order", "Cart",	"Session", "Token", "Totals", "Invoice", "Header",
	"Payload", "Route", "Template", "Query",   "Row",   "Event",  "Price",	 "User",
};
static const char *const js_files[] = {
	"/app/src/routes/orders.js",
	"/app/src/routes/cart.js",
	"/app/src/lib/db.js",
	"/app/src/lib/auth.js",
	"/app/node_modules/express/lib/router/index.js",
	"/app/node_modules/express/lib/router/layer.js",
	"node:internal/process/task_queues",
	"node:internal/crypto/pbkdf2",
	"node:events",
	"node:internal/streams/readable",
	"/app/node_modules/pg/lib/client.js",
	"/app/src/app.js",
};

struct pool {
	struct arena strings;
	struct frame **stacks; /* [N_PROCS * STACKS_PER_PROC], leaf first */
	size_t *depth;
	/* per process: its JIT frames (module /tmp/perf-PID.map) */
	struct frame js[N_PROCS][JS_FUNCS_PER_PROC];
	int64_t process_ids[N_PROCS];
	int32_t pids[N_PROCS];
	size_t frames_total;
};

static const char *pool__strdup(struct pool *pl, const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = arena__alloc(&pl->strings, len);

	if (p)
		memcpy(p, s, len);
	return p;
}

/* A stable pseudo offset for (module, name): the function's place in its
 * file, plus one of a few call sites inside it. */
static uint64_t frame_offset(const char *module, const char *name, bool kernel)
{
	uint64_t h = util__hash_seeded(name, strlen(name), 42) ^
		     util__hash_seeded(module, strlen(module), 7);
	uint64_t site = rnd_below(3) * 0x1b;

	if (kernel)
		return 0xffffffff81000000ull + (h % 0x1000000) / 16 * 16 + site;
	return 0x20000 + (h % 0x2000000) / 16 * 16 + site;
}

static struct frame native_frame(const char *module, const char *name, bool kernel)
{
	struct frame f = {
		.kind = kernel ? FRAME_KERNEL : FRAME_NATIVE,
		.name = name,
		.module = module,
		.offset = frame_offset(module, name, kernel),
	};
	return f;
}

/* Builds one stack, leaf first, of a depth drawn in [MIN_DEPTH, MAX_DEPTH]:
 * an optional kernel path and libc wrapper or native leaf, then the middle
 * (JIT frames of the process, or V8 natives on a worker), then the root. */
static int pool__make_stack(struct pool *pl, size_t proc, struct frame *out, size_t *ret_depth)
{
	struct frame leaf[32], root[32];
	size_t n_leaf = 0, n_root = 0, depth = MIN_DEPTH + rnd_below(MAX_DEPTH - MIN_DEPTH + 1);
	bool worker = rnd_below(4) == 0;
	size_t i, k, n = 0;

	if (rnd_below(10) < 4) {
		const struct kpath *kp = &kpaths[rnd_below(UTIL_ARRAY_SIZE(kpaths))];

		/* a sample may land anywhere along the path, not only its leaf */
		for (i = rnd_below(3); i < kp->n; i++)
			leaf[n_leaf++] = native_frame(KSYMS, kp->names[i], true);
		if (kp->libc_fn)
			leaf[n_leaf++] = native_frame(LIBC, kp->libc_fn, false);
	} else if (!worker && rnd_below(3) == 0) {
		k = rnd_below(UTIL_ARRAY_SIZE(native_leaves));
		leaf[n_leaf++] =
			native_frame(native_leaves[k].module, native_leaves[k].name, false);
	}
	if (worker) {
		for (i = 0; i < UTIL_ARRAY_SIZE(worker_root); i++)
			root[n_root++] = native_frame(i < 2 ? NODE : LIBC, worker_root[i], false);
	} else {
		for (i = 0; i < UTIL_ARRAY_SIZE(main_to_js); i++)
			root[n_root++] = native_frame(NODE, main_to_js[i], false);
		for (i = 0; i < UTIL_ARRAY_SIZE(main_root); i++)
			root[n_root++] =
				native_frame(i >= 6 && i <= 7 ? LIBC : NODE, main_root[i], false);
	}
	/* keep inside the depth: drop leaf frames first if the two parts are long */
	while (n_leaf + n_root > depth && n_leaf)
		n_leaf--;
	while (n_leaf + n_root > depth)
		n_root--;
	for (i = 0; i < n_leaf; i++)
		out[n++] = leaf[i];
	while (n + n_root < depth) {
		if (worker)
			out[n++] = native_frame(
				NODE, gc_natives[rnd_below(UTIL_ARRAY_SIZE(gc_natives))], false);
		else
			out[n++] = pl->js[proc][rnd_below(JS_FUNCS_PER_PROC)];
	}
	for (i = 0; i < n_root; i++)
		out[n++] = root[i];
	*ret_depth = n;
	return 0;
}

static int pool__init(struct pool *pl)
{
	char name[256], module[64];
	size_t p, i, s;
	int r;

	memset(pl, 0, sizeof(*pl));
	pl->stacks = calloc(N_PROCS * STACKS_PER_PROC, sizeof(*pl->stacks));
	pl->depth = calloc(N_PROCS * STACKS_PER_PROC, sizeof(*pl->depth));
	if (!pl->stacks || !pl->depth)
		return -ENOMEM;
	for (p = 0; p < N_PROCS; p++) {
		const char *mod;

		pl->pids[p] = (int32_t)(2000 + p * 37);
		snprintf(module, sizeof(module), "/tmp/perf-%d.map", pl->pids[p]);
		mod = pool__strdup(pl, module);
		if (!mod)
			return -ENOMEM;
		for (i = 0; i < JS_FUNCS_PER_PROC; i++) {
			const char *file = js_files[rnd_below(UTIL_ARRAY_SIZE(js_files))];

			snprintf(name, sizeof(name), "JS:%s%s%s %s:%zu", rnd_below(3) ? "*" : "~",
				 js_verbs[rnd_below(UTIL_ARRAY_SIZE(js_verbs))],
				 js_nouns[rnd_below(UTIL_ARRAY_SIZE(js_nouns))], file,
				 1 + rnd_below(400));
			pl->js[p][i].kind = FRAME_JIT;
			pl->js[p][i].name = pool__strdup(pl, name);
			pl->js[p][i].module = mod;
			/* V8 code space: function-level addresses */
			pl->js[p][i].offset =
				0x3a2c00000000ull + (uint64_t)i * 0x1c40 + p * 0x100000;
			if (!pl->js[p][i].name)
				return -ENOMEM;
		}
		for (s = 0; s < STACKS_PER_PROC; s++) {
			size_t idx = p * STACKS_PER_PROC + s;

			pl->stacks[idx] = malloc(MAX_DEPTH * sizeof(struct frame));
			if (!pl->stacks[idx])
				return -ENOMEM;
			r = pool__make_stack(pl, p, pl->stacks[idx], &pl->depth[idx]);
			if (r < 0)
				return r;
			pl->frames_total += pl->depth[idx];
		}
	}
	return 0;
}

static void pool__free(struct pool *pl)
{
	size_t i;

	if (pl->stacks)
		for (i = 0; i < N_PROCS * STACKS_PER_PROC; i++)
			free(pl->stacks[i]);
	free(pl->stacks);
	free(pl->depth);
	arena__free(&pl->strings);
}

/* Drains: ROWS_PER_BATCH rows spread over every process and thread, each
 * row a different stack of its process (a drain of the kernel's counts map
 * has one row per key) and a count of samples (at ~100 Hz a thread has at
 * most 100 per second). The second is set per call. Every phase gets the
 * same drains. */
static int make_templates(const struct pool *pl, struct store_bucket **ret)
{
	struct store_bucket *rows = calloc((size_t)N_TEMPLATES * ROWS_PER_BATCH, sizeof(*rows));
	size_t first[N_PROCS * TIDS_PER_PROC];
	size_t b, i;

	if (!rows)
		return -ENOMEM;
	rng_state = 0x5eed;
	for (b = 0; b < N_TEMPLATES; b++) {
		for (i = 0; i < UTIL_ARRAY_SIZE(first); i++)
			first[i] = rnd_below(STACKS_PER_PROC);
		for (i = 0; i < ROWS_PER_BATCH; i++) {
			struct store_bucket *r = &rows[b * ROWS_PER_BATCH + i];
			size_t thread = i % UTIL_ARRAY_SIZE(first);
			size_t p = thread / TIDS_PER_PROC;
			/* the thread's j-th row: distinct stacks for j < 100 / gcd(7, 100) */
			size_t j = i / UTIL_ARRAY_SIZE(first);
			size_t s = p * STACKS_PER_PROC + (first[thread] + j * 7) % STACKS_PER_PROC;

			r->process_id = pl->process_ids[p];
			r->tid = pl->pids[p] + (int32_t)(thread % TIDS_PER_PROC);
			r->frames = pl->stacks[s];
			r->n_frames = pl->depth[s];
			r->count = 1 + (int64_t)rnd_below(19);
		}
	}
	*ret = rows;
	return 0;
}

/* One thread putting drains for cfg.seconds into a fresh database in
 * run_dir/NAME; prints the figures. Returns 0 or a negative errno. */
static int bench_buckets(const char *run_dir, enum store_sync sync, struct pool *pl)
{
	char dir[PATH_MAX];
	struct store_options opts = {.data_dir = dir, .sync = sync, .skip_check = true};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct store_bucket *tmpl = NULL;
	struct store_stats st;
	struct lat lat = {0};
	int64_t base_s = store__now_ns() / 1000000000 - 7200, t_start, t0, t1, deadline;
	int64_t samples = 0, samples_timed = 0;
	size_t rows = 0, rows_timed = 0, dropped_total = 0, batch = 0, i, p;
	int r;
	double secs;

	r = path_fmt(dir, sizeof(dir), "%s/ebpf-%s", run_dir, sync_name(sync));
	if (r < 0)
		return r;
	r = store__open(&opts, &err, &s);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__open: %s\n", err.msg);
		return r;
	}
	for (p = 0; p < N_PROCS; p++) {
		struct store_process proc = {
			.pid = pl->pids[p],
			.start_time_ns = (base_s - 86000 + (int64_t)p) * 1000000000,
			.comm = "node",
			.exe = "/usr/bin/node",
			.cmdline = "node /app/src/app.js",
			.runtime = RUNTIME_NODE,
		};

		r = store__put_process(s, &proc, store__now_ns(), &pl->process_ids[p]);
		if (r < 0) {
			fprintf(stderr, "bench_store: store__put_process: %s\n", store__errmsg(s));
			goto out;
		}
	}
	r = make_templates(pl, &tmpl);
	if (r < 0) {
		fprintf(stderr, "bench_store: out of memory\n");
		goto out;
	}

	/* one untimed drain: statements prepared, the first frames known */
	t_start = 0;
	deadline = 0;
	for (;;) {
		struct store_bucket *b = tmpl + (batch % N_TEMPLATES) * ROWS_PER_BATCH;
		int64_t n_samples = 0;
		size_t dropped = 0;

		for (i = 0; i < ROWS_PER_BATCH; i++) {
			b[i].second = base_s + (int64_t)batch;
			n_samples += b[i].count;
		}
		t0 = mono_ns();
		r = store__put_buckets(s, b, ROWS_PER_BATCH, &dropped);
		t1 = mono_ns();
		if (r < 0) {
			fprintf(stderr, "bench_store: store__put_buckets: %s (%s)\n",
				store__errmsg(s), strerror(-r));
			goto out;
		}
		batch++;
		rows += ROWS_PER_BATCH;
		samples += n_samples;
		dropped_total += dropped;
		if (!t_start) {
			t_start = mono_ns();
			deadline = t_start + (int64_t)(cfg.seconds * 1e9);
			continue;
		}
		rows_timed += ROWS_PER_BATCH;
		samples_timed += n_samples;
		r = lat__add(&lat, t1 - t0);
		if (r < 0) {
			fprintf(stderr, "bench_store: out of memory\n");
			goto out;
		}
		if (t1 >= deadline)
			break;
	}
	secs = (double)(t1 - t_start) / 1e9;
	qsort(lat.ns, lat.n, sizeof(*lat.ns), cmp_i64);

	/* Samples are conserved and every row (a distinct key) is a bucket, unless
	 * the store says it dropped some. */
	r = store__stats(s, false, &st);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__stats: %s\n", store__errmsg(s));
		goto out;
	}
	if (dropped_total) {
		printf("# ebpf sync=%s: the store dropped %zu rows (full?)\n", sync_name(sync),
		       dropped_total);
	} else if (st.ebpf_samples != samples ||
		   st.tables[STORE_TABLE_EBPF_BUCKETS].rows != (int64_t)rows) {
		fprintf(stderr,
			"bench_store: %zu rows of %lld samples put, the store holds %lld rows "
			"of %lld samples\n",
			rows, (long long)samples,
			(long long)st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
			(long long)st.ebpf_samples);
		r = -EIO;
		goto out;
	}
	printf("# ebpf sync=%s: %zu drains of %d rows in %.2f s; %lld buckets, %lld stacks, "
	       "%lld frames stored; db %.1f MiB, wal %.1f MiB\n",
	       sync_name(sync), lat.n, ROWS_PER_BATCH, secs,
	       (long long)st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
	       (long long)st.tables[STORE_TABLE_STACKS].rows,
	       (long long)st.tables[STORE_TABLE_FRAMES].rows, (double)st.file_bytes / 1048576.0,
	       (double)st.wal_bytes / 1048576.0);
	row("ebpf_rows_per_s", sync, (double)rows_timed / secs, TARGET_ROWS_PER_S);
	row("ebpf_samples_per_s", sync, (double)samples_timed / secs, 0);
	row("ebpf_drain_p50_ms", sync, (double)lat__quantile(&lat, 0.50) / 1e6, 0);
	row("ebpf_drain_p99_ms", sync, (double)lat__quantile(&lat, 0.99) / 1e6, 0);
out:
	free(lat.ns);
	free(tmpl);
	store__close(s);
	remove_phase_dir(dir);
	return r;
}

/* ---- --fill: a store as an agent leaves it after H hours ------------------- */

#define FILL_APPS	     10 /* SDK apps, a push each every 10 s */
#define FILL_PUSH_S	     10
#define FILL_ROWS_PER_S	     100 /* eBPF bucket rows a second */
#define FILL_SECONDS_PER_TXN 60

/* H hours ending now, as the agent leaves them: FILL_APPS processes whose
 * SDK profiles (the fixture) are merged and forwarded, and FILL_ROWS_PER_S
 * bucket rows a second over the stack pool's processes, emitted. Writes a
 * minute a transaction. */
static int fill_store(const struct fixture *fx, struct pool *pl)
{
	struct store_options opts = {.data_dir = cfg.fill, .skip_check = true};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct store_bucket *tmpl = NULL;
	struct store_stats st;
	int64_t now_s = store__now_ns() / 1000000000, secs = (int64_t)(cfg.hours * 3600);
	int64_t first_s = now_s - secs, app_ids[FILL_APPS], t0 = mono_ns();
	size_t n_sdk = 0, n_rows = 0, p;
	int r;

	r = store__open(&opts, &err, &s);
	if (r < 0) {
		fprintf(stderr, "bench_store: store__open %s: %s\n", cfg.fill, err.msg);
		return r;
	}
	for (p = 0; p < FILL_APPS + N_PROCS; p++) {
		bool app = p < FILL_APPS;
		struct store_process proc = {
			.pid = app ? (int32_t)(900 + p) : pl->pids[p - FILL_APPS],
			.start_time_ns = (first_s - 60 - (int64_t)p) * 1000000000,
			.comm = "node",
			.exe = "/usr/bin/node",
			.cmdline = "node /app/src/app.js",
			.service = app ? "bench-app" : NULL,
			.runtime = RUNTIME_NODE,
		};

		r = store__put_process(s, &proc, now_s * 1000000000,
				       app ? &app_ids[p] : &pl->process_ids[p - FILL_APPS]);
		if (r < 0)
			goto store_failed;
	}
	r = make_templates(pl, &tmpl);
	if (r < 0)
		goto out;
	for (int64_t t = first_s; t < now_s; t += FILL_SECONDS_PER_TXN) {
		r = store__begin(s);
		for (int64_t sec = t; r == 0 && sec < t + FILL_SECONDS_PER_TXN && sec < now_s;
		     sec++) {
			struct store_bucket *b =
				tmpl + (size_t)(sec % N_TEMPLATES) * ROWS_PER_BATCH;
			size_t dropped = 0;

			for (size_t i = 0; i < FILL_ROWS_PER_S; i++)
				b[i].second = sec;
			r = store__put_buckets(s, b, FILL_ROWS_PER_S, &dropped);
			n_rows += FILL_ROWS_PER_S - dropped;
			for (size_t a = 0; r == 0 && a < FILL_APPS && sec % FILL_PUSH_S == 0; a++) {
				struct sdk_shared sh = {.fx = fx, .process_id = app_ids[a]};
				struct store_sdk_profile sp;
				struct store_outbox_item it = {
					.series = "bench-app",
					.kind = "sdk",
					.labels = sdk_labels,
					.n_labels = UTIL_ARRAY_SIZE(sdk_labels),
				};
				int64_t id, item;

				sdk_fill(&sh, &sp);
				sp.received_ns = sec * 1000000000;
				sp.from_ns = (sec - FILL_PUSH_S) * 1000000000;
				sp.until_ns = sec * 1000000000;
				r = store__put_sdk_profile(s, &sp, &id);
				if (r == 0)
					r = store__sdk_mark_merged(s, id);
				it.sdk_profile_id = id;
				it.from_ns = sp.from_ns;
				it.until_ns = sp.until_ns;
				if (r == 0)
					r = store__outbox_add(s, &it, &item);
				if (r == 0)
					r = store__outbox_done(s, item);
				n_sdk++;
			}
		}
		for (p = 0; r == 0 && p < N_PROCS; p++)
			r = store__mark_emitted(s, pl->process_ids[p], t + FILL_SECONDS_PER_TXN);
		for (p = 0; r == 0 && p < FILL_APPS; p++)
			r = store__mark_emitted(s, app_ids[p], t + FILL_SECONDS_PER_TXN);
		if (r == 0)
			r = store__commit(s);
		else
			store__rollback(s);
		if (r < 0)
			goto store_failed;
	}
	r = store__row_stats(s, &st);
	if (r < 0)
		goto store_failed;
	printf("# filled %s with %.1f h in %.1f s: %zu SDK profiles, %zu bucket rows; "
	       "%lld buckets, %lld SDK profiles stored; db %.1f MiB, wal %.1f MiB\n",
	       cfg.fill, cfg.hours, (double)(mono_ns() - t0) / 1e9, n_sdk, n_rows,
	       (long long)st.tables[STORE_TABLE_EBPF_BUCKETS].rows,
	       (long long)st.tables[STORE_TABLE_SDK_PROFILES].rows,
	       (double)st.file_bytes / 1048576.0, (double)st.wal_bytes / 1048576.0);
	goto out;
store_failed:
	fprintf(stderr, "bench_store: filling %s: %s (%s)\n", cfg.fill, store__errmsg(s),
		strerror(-r));
out:
	free(tmpl);
	store__close(s);
	return r;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_store [--quick] [--dir DIR] [--seconds S] [--fixture FILE] "
		   "[--only sdk|ebpf] [--keep]\n"
		   "       bench_store --fill DATA_DIR --hours H [--fixture FILE]\n"
		   "  --dir DIR      parent of the run's data directory (default /var/tmp)\n"
		   "  --seconds S    length of each timed phase (default 5; --quick 0.3)\n"
		   "  --fixture FILE the SDK payload (default: the Node SDK fixture)\n"
		   "  --only PHASE   run only the SDK or only the eBPF phase (for profiling)\n"
		   "  --keep         leave the databases in place\n"
		   "  --fill DATA_DIR --hours H\n"
		   "                 no figures: fill the store at DATA_DIR with H hours (at most\n"
		   "                 48) ending now, as an agent leaves them: 10 SDK apps pushing\n"
		   "                 every 10 s (merged, forwarded) and 100 eBPF bucket rows a\n"
		   "                 second (emitted)\n"
		   "  BENCH_QUICK=1  as --quick\n");
}

/* Option opt's value s, a number in (0, max], into *ret; false (with a
 * message) for anything else. */
static bool interval_arg(const char *opt, const char *s, double max, double *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || !(v > 0 && v <= max)) {
		fprintf(stderr, "bench_store: %s wants (0, %g]\n", opt, max);
		return false;
	}
	*ret = v;
	return true;
}

int main(int argc, char **argv)
{
	static const enum store_sync syncs[] = {STORE_SYNC_NORMAL, STORE_SYNC_FULL};
	const char *quick = getenv("BENCH_QUICK");
	char run_dir[PATH_MAX], fs[1024];
	struct fixture fx = {0};
	struct pool *pl = NULL;
	struct utsname un;
	bool seconds_given = false, made_dir = false, made_run = false;
	double mean_depth;
	size_t i;
	int r = 0, status = 1;

	cfg.quick = quick && quick[0] && strcmp(quick, "0") != 0;
	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			cfg.quick = true;
		} else if (strcmp(argv[i], "--keep") == 0) {
			cfg.keep = true;
		} else if (strcmp(argv[i], "--dir") == 0 && i + 1 < (size_t)argc) {
			cfg.dir = argv[++i];
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < (size_t)argc) {
			i++;
			if (strcmp(argv[i], "sdk") == 0) {
				cfg.no_ebpf = true;
			} else if (strcmp(argv[i], "ebpf") == 0) {
				cfg.no_sdk = true;
			} else {
				usage(stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--fill") == 0 && i + 1 < (size_t)argc) {
			cfg.fill = argv[++i];
		} else if (strcmp(argv[i], "--hours") == 0 && i + 1 < (size_t)argc) {
			if (!interval_arg("--hours", argv[++i], 48, &cfg.hours))
				return 2;
		} else if (strcmp(argv[i], "--fixture") == 0 && i + 1 < (size_t)argc) {
			cfg.fixture = argv[++i];
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < (size_t)argc) {
			if (!interval_arg("--seconds", argv[++i], 3600, &cfg.seconds))
				return 2;
			seconds_given = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (cfg.quick && !seconds_given)
		cfg.seconds = 0.3;

	if (fixture__load(&fx) < 0)
		goto out;
	if (cfg.fill) {
		if (!(cfg.hours > 0)) {
			usage(stderr);
			status = 2;
			goto out;
		}
		pl = malloc(sizeof(*pl));
		if (!pl || pool__init(pl) < 0) {
			fprintf(stderr, "bench_store: building the stack pool: out of memory\n");
			goto out;
		}
		status = fill_store(&fx, pl) < 0 ? 1 : 0;
		goto out;
	}
	if (mkdir(cfg.dir, 0700) == 0)
		made_dir = true;
	else if (errno != EEXIST) {
		fprintf(stderr, "bench_store: mkdir %s: %s\n", cfg.dir, strerror(errno));
		goto out;
	}
	if (path_fmt(run_dir, sizeof(run_dir), "%s/braid-store-bench.XXXXXX", cfg.dir) < 0 ||
	    !mkdtemp(run_dir)) {
		fprintf(stderr, "bench_store: mkdtemp %s: %s\n", run_dir, strerror(errno));
		goto out;
	}
	made_run = true;

	if (uname(&un) < 0)
		snprintf(un.release, sizeof(un.release), "?");
	describe_fs(run_dir, fs, sizeof(fs));
	printf("# machine: nproc=%ld kernel=%s %s\n", sysconf(_SC_NPROCESSORS_ONLN), un.release,
	       un.machine);
	printf("# dir: %s (%s)\n", run_dir, fs);
	printf("# sdk: %d threads x %.1f s, payload %s (%zu bytes), %zu labels, %zu sample types\n",
	       SDK_THREADS, cfg.seconds, fx.path, fx.data.len, UTIL_ARRAY_SIZE(sdk_labels),
	       fx.n_types);

	/* The stack pool is built before any timing starts. */
	pl = malloc(sizeof(*pl));
	if (!pl || pool__init(pl) < 0) {
		fprintf(stderr, "bench_store: building the stack pool: out of memory\n");
		goto out;
	}
	mean_depth = (double)pl->frames_total / (N_PROCS * STACKS_PER_PROC);
	printf("# ebpf: 1 thread x %.1f s, drains of %d rows, %d processes x %d threads, %d "
	       "stacks of %d-%d frames (mean %.1f)\n",
	       cfg.seconds, ROWS_PER_BATCH, N_PROCS, TIDS_PER_PROC, N_PROCS * STACKS_PER_PROC,
	       MIN_DEPTH, MAX_DEPTH, mean_depth);
	printf("%-22s %-11s %12s  %-16s %s\n", "figure", "sync", "value", "target", "verdict");
	fflush(stdout);

	for (i = 0; i < UTIL_ARRAY_SIZE(syncs) && r == 0 && !cfg.no_sdk; i++) {
		settle(run_dir);
		r = bench_sdk(run_dir, syncs[i], &fx);
	}
	for (i = 0; i < UTIL_ARRAY_SIZE(syncs) && r == 0 && !cfg.no_ebpf; i++) {
		settle(run_dir);
		r = bench_buckets(run_dir, syncs[i], pl);
	}
	if (r == 0)
		status = 0;
out:
	if (made_run && !cfg.keep)
		nftw(run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else if (made_run)
		printf("# kept %s\n", run_dir);
	if (made_dir && !cfg.keep)
		rmdir(cfg.dir);
	if (pl)
		pool__free(pl);
	free(pl);
	fixture__free(&fx);
	return status;
}
