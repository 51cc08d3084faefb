/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon: its stage threads, the main loop, the order it stops in
 * (docs/agent.md, "Stopping") and the capabilities it drops. See agent.h. */
#define _GNU_SOURCE
#include "agent/agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAINTAIN_EVERY_S 60
/* each connection's SQLite page cache: the agent has one per stage and per
 * ingest thread, and their caches fill as the store grows; 4 MiB each keeps
 * the agent's memory flat once they are full (16 MiB each grew it by
 * ~100 MiB over the first half hour of a soak) */
#define AGENT_STORE_CACHE_KIB 4096
#define STORE_STATS_EVERY_S   5
#define ERROR_LOG_EVERY_NS    (60ll * 1000000000) /* a failing stage logs once a minute */

/* the collector thread writes what the collector read of a process */
_Static_assert(COLLECTOR_MAX_CMDLINE <= STORE_MAX_CMDLINE, "a command line the store refuses");
_Static_assert(COLLECTOR_MAX_SERVICE <= STORE_MAX_STRING, "a service name the store refuses");

#ifndef BRAID_VERSION
#define BRAID_VERSION "dev"
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

void agent__log(const struct agent *a, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "braid: %s: %s\n", a->cfg->name, msg);
}

/* ---- capabilities ----------------------------------------------------------------------- */

static uint64_t cap_bit(int cap)
{
	return 1ull << cap;
}

/* What the agent keeps after start-up (docs/agent.md): reading the BPF maps
 * (CAP_BPF: kernels before 6.5 check it on every bpf() call) and the perf
 * events, other processes' /proc files (maps, environ, fds, root) and their
 * files. Binding a port below 1024 was done already. */
static uint64_t caps_to_keep(const struct agent_config *cfg)
{
	uint64_t keep = cap_bit(CAP_SYS_PTRACE) | cap_bit(CAP_DAC_READ_SEARCH);

	if (cfg->with_collector)
		keep |= cap_bit(CAP_BPF) | cap_bit(CAP_PERFMON);
	return keep;
}

/* Drops every capability but `keep` from this thread's effective,
 * permitted and inheritable sets, from the ambient set and (when it can)
 * from the bounding set, before any other thread exists: threads inherit
 * them. */
static int drop_caps(uint64_t keep, uint64_t *ret_kept)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	uint64_t eff, perm;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	perm = (uint64_t)data[0].permitted | (uint64_t)data[1].permitted << 32;
	if (!perm) {
		*ret_kept = 0;
		return 0; /* nothing to drop */
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (eff & cap_bit(CAP_SETPCAP))
		for (int cap = 0; cap < 64; cap++)
			if (!(keep & cap_bit(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
				prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	eff &= keep;
	perm &= keep;
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	/* no exec gains privileges back */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	*ret_kept = eff;
	return 0;
}

static void set_fatal(struct agent *a, int r)
{
	pthread_mutex_lock(&a->lock);
	if (!a->fatal)
		a->fatal = r;
	pthread_mutex_unlock(&a->lock);
}

/* Logs a stage's failure at most once a minute (a store that stays full
 * would fill the log otherwise). */
static void log_limited(struct agent *a, int64_t *last, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_limited(struct agent *a, int64_t *last, const char *fmt, ...)
{
	int64_t now = now_ns();
	char msg[1024];
	va_list ap;

	if (*last && now - *last < ERROR_LOG_EVERY_NS)
		return;
	*last = now;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	agent__log(a, "%s", msg);
}

/* -- the collector thread -- */

/* A drain's rows, copied: the collector's strings live only during its
 * callback, and the rows are written after the drain in one short
 * transaction (not during it: symbolization may take a while, and the
 * ingest threads write too). */
struct drain {
	struct arena arena;
	struct store_bucket *rows;
	size_t n, cap;
	struct store_process *procs; /* distinct processes of the drain */
	size_t n_procs, cap_procs;
	size_t *row_proc; /* rows[i]'s index in procs */
	size_t cap_row_proc;
	int64_t samples;
};

static int on_row(void *ctx, const struct collector_row *row)
{
	struct drain *d = ctx;
	const struct collector_proc *p = row->process;
	struct frame *frames;
	size_t pi = d->n_procs;
	int r;

	/* rows of one process come together */
	if (d->n_procs && d->procs[d->n_procs - 1].pid == p->pid &&
	    d->procs[d->n_procs - 1].start_time_ns == p->start_time_ns) {
		pi = d->n_procs - 1;
	} else {
		for (size_t i = 0; i < d->n_procs; i++)
			if (d->procs[i].pid == p->pid &&
			    d->procs[i].start_time_ns == p->start_time_ns) {
				pi = i;
				break;
			}
	}
	if (pi == d->n_procs) {
		struct store_process *sp;

		r = util__grow((void **)&d->procs, &d->cap_procs, d->n_procs + 1,
			       sizeof(*d->procs));
		if (r < 0)
			return r;
		sp = &d->procs[d->n_procs];
		/* the service only when the process declares one: the collector's
		 * fallback (container, comm) must not overwrite what an SDK gave */
		*sp = (struct store_process){
			.pid = p->pid,
			.start_time_ns = p->start_time_ns,
			.comm = arena__strdup(&d->arena, p->comm[0] ? p->comm : row->thread_comm),
			.exe = arena__strdup(&d->arena, p->exe),
			.cmdline = arena__strdup(&d->arena, p->cmdline),
			.service = arena__strdup(&d->arena, p->service),
			.container_id = arena__strdup(&d->arena, p->container_id),
			.runtime = p->runtime,
		};
		if (!sp->comm || (p->exe && !sp->exe) || (p->cmdline && !sp->cmdline) ||
		    (p->service && !sp->service) || (p->container_id && !sp->container_id))
			return -ENOMEM;
		d->n_procs++;
	}
	r = util__grow((void **)&d->rows, &d->cap, d->n + 1, sizeof(*d->rows));
	if (r == 0)
		r = util__grow((void **)&d->row_proc, &d->cap_row_proc, d->n + 1,
			       sizeof(*d->row_proc));
	if (r < 0)
		return r;
	frames = arena__alloc(&d->arena, (row->n_frames ? row->n_frames : 1) * sizeof(*frames));
	if (!frames)
		return -ENOMEM;
	for (size_t i = 0; i < row->n_frames; i++) {
		frames[i] = row->frames[i];
		frames[i].name = arena__strdup(&d->arena, row->frames[i].name);
		frames[i].module = arena__strdup(&d->arena, row->frames[i].module);
		if ((row->frames[i].name && !frames[i].name) ||
		    (row->frames[i].module && !frames[i].module))
			return -ENOMEM;
	}
	d->rows[d->n] = (struct store_bucket){.tid = row->tid,
					      .thread_pointer = row->thread_pointer,
					      .second = row->second,
					      .frames = frames,
					      .n_frames = row->n_frames,
					      .count = row->count};
	d->row_proc[d->n] = pi;
	d->n++;
	d->samples += row->count;
	return 0;
}

/* Writes a drain: its processes and its rows in one transaction. */
static int write_drain(struct agent *a, struct store *s, struct drain *d, int64_t *last_log)
{
	int64_t *ids = NULL, now = now_ns();
	size_t dropped = 0;
	int r;

	if (!d->n)
		return 0;
	ids = calloc(d->n_procs, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	r = store__begin(s);
	for (size_t i = 0; r == 0 && i < d->n_procs; i++)
		r = store__put_process(s, &d->procs[i], now, &ids[i]);
	for (size_t i = 0; r == 0 && i < d->n; i++)
		d->rows[i].process_id = ids[d->row_proc[i]];
	if (r == 0)
		r = store__put_buckets(s, d->rows, d->n, &dropped);
	if (r == 0)
		r = store__commit(s);
	if (r < 0) {
		log_limited(a, last_log, "storing %zu eBPF rows (%" PRId64 " samples) failed: %s",
			    d->n, d->samples, store__errmsg(s));
		store__rollback(s);
	}
	pthread_mutex_lock(&a->lock);
	if (r < 0) {
		a->store_errors++;
		a->rows_refused += (int64_t)d->n;
		a->samples_refused += d->samples;
	} else {
		a->rows_stored += (int64_t)(d->n - dropped);
		a->samples_stored += d->samples; /* refused ones are the store's counters */
		a->rows_refused += (int64_t)dropped;
	}
	pthread_mutex_unlock(&a->lock);
	free(ids);
	return 0;
}

/* A name for the calling thread, as top -H, perf and /proc/PID/task/TID/comm
 * show it (15 characters at most). Only a label: a failure changes nothing
 * else. */
static void name_thread(const char *name)
{
	(void)pthread_setname_np(pthread_self(), name);
}

static void *collector_main(void *arg)
{
	struct agent *a = arg;
	struct store *s = NULL;
	struct errbuf err = {{0}};
	struct epoll_event ev = {.events = EPOLLIN};
	struct drain d = {0};
	int64_t last_log = 0;
	int efd = -1, r;

	name_thread("braid-collect");
	r = store__open(&a->so, &err, &s);
	if (r < 0) {
		agent__log(a, "collector: %s", err.msg);
		goto cleanup;
	}
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = a->stop_efd;
	if (epoll_ctl(efd, EPOLL_CTL_ADD, a->stop_efd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = collector__fd(a->col);
	if (epoll_ctl(efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	for (bool stop = false; !stop;) {
		int64_t now = now_ns();
		/* drain just after each wall-clock second ends, as braid record */
		int64_t next = (now / 1000000000 + 1) * 1000000000 + 5000000, second;

		while (!stop && (now = now_ns()) < next) {
			struct epoll_event got[2];
			int n = epoll_wait(efd, got, 2, (int)((next - now + 999999) / 1000000));

			if (n < 0 && errno != EINTR) {
				r = -errno;
				goto cleanup;
			}
			for (int i = 0; i < n; i++) {
				if (got[i].data.fd == a->stop_efd) {
					stop = true;
				} else if ((r = collector__poll(a->col)) < 0) {
					log_limited(a, &last_log,
						    "collector: reading new processes: %s",
						    strerror(-r));
				}
			}
		}
		now = now_ns();
		second = (now - (stop ? 0 : 1000000000 / 2)) / 1000000000;
		if (stop)
			collector__stop(a->col); /* the last drain gets every sample */
		arena__reset(&d.arena);
		d.n = d.n_procs = 0;
		d.samples = 0;
		r = collector__drain(a->col, second, on_row, &d);
		if (r < 0) {
			agent__log(a, "collector: draining the samples: %s", strerror(-r));
			goto cleanup;
		}
		r = write_drain(a, s, &d, &last_log);
		if (r < 0)
			goto cleanup;
		pthread_mutex_lock(&a->lock);
		a->have_col = collector__stats(a->col, &a->col_st) == 0;
		pthread_mutex_unlock(&a->lock);
	}
	r = 0;
cleanup:
	if (r < 0)
		set_fatal(a, r);
	if (efd >= 0)
		close(efd);
	arena__free(&d.arena);
	free(d.rows);
	free(d.procs);
	free(d.row_proc);
	store__close(s);
	return NULL;
}

/* -- the merger thread -- */

/* Waits up to one second, or until *flag; returns *flag. */
static bool wait_tick(struct agent *a, const bool *flag)
{
	struct timespec ts;
	bool v;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&a->lock);
	if (!*flag)
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	v = *flag;
	pthread_mutex_unlock(&a->lock);
	return v;
}

static void add_merger_stats(struct merger_stats *t, const struct merger_stats *p)
{
	t->passes += p->passes;
	t->merged_profiles += p->merged_profiles;
	t->ebpf_profiles += p->ebpf_profiles;
	t->sdk_passed += p->sdk_passed;
	t->samples_in += p->samples_in;
	t->samples_merged += p->samples_merged;
	t->samples_spliced += p->samples_spliced;
	t->samples_by_thread += p->samples_by_thread;
	t->samples_native_calls += p->samples_native_calls;
	t->samples_remembered += p->samples_remembered;
	t->samples_ebpf += p->samples_ebpf;
	t->sdk_late += p->sdk_late;
	t->sdk_unusable += p->sdk_unusable;
	t->sdk_unattributed += p->sdk_unattributed;
	t->sdk_cpu_renamed += p->sdk_cpu_renamed;
}

/* The merger's sdk_cpu_name: only where braid measures the CPU itself (eBPF)
 * and the upstream takes a __name__ (the push API). */
static const char *sdk_cpu_name(const struct agent_config *cfg, bool sampling)
{
	const char *n = cfg->sdk_cpu_name;

	if (!sampling || cfg->api != FORWARD_API_PUSH || !n || strcmp(n, "process_cpu") == 0)
		return NULL;
	return n;
}

static void *merger_main(void *arg)
{
	struct agent *a = arg;
	struct merger_options mo = {.grace_s = a->cfg->grace_s,
				    .collect_interval_s = a->cfg->collect_interval_s,
				    .freq = a->col ? collector__freq(a->col) : a->cfg->freq,
				    .sdk_cpu_name = sdk_cpu_name(a->cfg, a->col != NULL)};
	struct store *s = NULL;
	struct merger *m = NULL;
	struct errbuf err = {{0}};
	int64_t last_log = 0;
	int r;

	name_thread("braid-merge");
	r = store__open(&a->so, &err, &s);
	if (r < 0) {
		agent__log(a, "merger: %s", err.msg);
		set_fatal(a, r);
		return NULL;
	}
	m = merger__new(s, &mo);
	if (!m) {
		agent__log(a, "merger: out of memory");
		set_fatal(a, -ENOMEM);
		store__close(s);
		return NULL;
	}
	for (;;) {
		bool stop = wait_tick(a, &a->stop_merger);
		struct merger_stats st = {0};

		/* stopping: the collector has written its last drain; what is
		 * ready leaves now */
		r = merger__run(m, now_ns(), stop, &st);
		pthread_mutex_lock(&a->lock);
		add_merger_stats(&a->merger_st, &st);
		if (r < 0)
			a->merger_errors++;
		if (st.merged_profiles || st.ebpf_profiles || st.sdk_passed)
			pthread_cond_broadcast(&a->cond); /* the forwarder has work */
		pthread_mutex_unlock(&a->lock);
		if (r < 0)
			log_limited(a, &last_log, "merger: %s", merger__errmsg(m));
		if (stop)
			break;
	}
	merger__free(m);
	store__close(s);
	return NULL;
}

/* -- the forwarder thread -- */

static void *forward_main(void *arg)
{
	struct agent *a = arg;
	struct forward_stats st;
	int64_t last_log = 0, deadline;
	char last_err[1024] = "";
	int r;

	name_thread("braid-forward");
	for (;;) {
		bool stop = wait_tick(a, &a->stop_forward);

		if (stop)
			break;
		r = forward__run(a->fwd, now_ns(), false, 0, &st);
		pthread_mutex_lock(&a->lock);
		a->fwd_st = (struct forward_stats){0};
		forward__stats(a->fwd, &a->fwd_st);
		if (r < 0)
			a->forward_errors++;
		pthread_mutex_unlock(&a->lock);
		if (r < 0 || st.retries || st.dead_letters) {
			/* the same failure repeated is logged once a minute */
			if (strcmp(last_err, forward__errmsg(a->fwd)) != 0)
				last_log = 0;
			snprintf(last_err, sizeof(last_err), "%s", forward__errmsg(a->fwd));
			log_limited(a, &last_log, "upstream: %s", last_err);
		}
	}
	pthread_mutex_lock(&a->lock);
	deadline = a->flush_deadline_ns;
	pthread_mutex_unlock(&a->lock);
	r = forward__run(a->fwd, now_ns(), true, deadline, &st);
	if (r < 0 || st.retries)
		agent__log(a, "upstream: flushing: %s", forward__errmsg(a->fwd));
	pthread_mutex_lock(&a->lock);
	forward__stats(a->fwd, &a->fwd_st);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- main ------------------------------------------------------------------------------ */

static void log_summary(struct agent *a, const char *when)
{
	struct forward_stats f;
	struct merger_stats m;
	int64_t samples;

	pthread_mutex_lock(&a->lock);
	f = a->fwd_st;
	m = a->merger_st;
	samples = a->samples_stored;
	pthread_mutex_unlock(&a->lock);
	fprintf(stderr,
		"braid: %s: %s: %" PRId64 " eBPF samples stored; queued %" PRId64
		" merged, %" PRId64 " eBPF-only, %" PRId64 " SDK profiles",
		a->cfg->name, when, samples, m.merged_profiles, m.ebpf_profiles, m.sdk_passed);
	if (a->cfg->upstream)
		fprintf(stderr,
			"; upstream took %" PRId64 " (%" PRId64 " retries, %" PRId64
			" dead letters)",
			f.delivered, f.retries, f.dead_letters);
	fprintf(stderr, "\n");
}

static bool low_port(const struct agent_config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const char *colon = strrchr(cfg->listen[i], ':');

		if (strncmp(cfg->listen[i], "unix:", 5) != 0 && colon && atoi(colon + 1) > 0 &&
		    atoi(colon + 1) < 1024)
			return true;
	}
	return false;
}

/* Lets the process hold `want` sockets besides its files (soft limit, up to
 * the hard one); a warning when it cannot. */
static void raise_fd_limit(const struct agent *a, unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want + 64)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want + 64
			      ? (rlim_t)want + 64
			      : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		agent__log(a, "cannot raise the open-file limit to %u: %s", want + 64,
			   strerror(errno));
}

/* Logs a failure of agent__run and keeps the first one's message in err. */
static void run_error(const struct agent *a, struct errbuf *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void run_error(const struct agent *a, struct errbuf *err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	agent__log(a, "%s", msg);
	if (err && !err->msg[0])
		errbuf__set(err, 0, "%.*s", (int)sizeof(err->msg) - 1, msg);
}

/* What start-up says: where ingest listens, and what runs. `braid ingest`
 * names the store on each address's line, as it always did (scripts read
 * these lines). */
static void log_start(const struct agent *a, struct ingest *in, struct store *maint, uint64_t kept)
{
	const struct agent_config *cfg = a->cfg;

	for (size_t i = 0; ingest__address(in, i); i++) {
		const char *addr = ingest__address(in, i);

		if (cfg->with_merger)
			agent__log(a, "listening on %s%s",
				   strncmp(addr, "unix:", 5) == 0 ? "" : "http://", addr);
		else
			agent__log(a, "listening on %s%s (store %s)",
				   strncmp(addr, "unix:", 5) == 0 ? "" : "http://", addr,
				   store__path(maint));
	}
	if (a->col) {
		struct collector_stats cs;

		if (collector__stats(a->col, &cs) == 0)
			agent__log(a, "sampling %u CPUs at %u Hz", cs.sampler.cpus,
				   collector__freq(a->col));
	} else if (cfg->with_merger) {
		agent__log(a, "no eBPF sampling (--no-ebpf): SDK profiles only");
	}
	if (cfg->upstream)
		agent__log(a, "sending to %s (%s API)", cfg->upstream, forward__api_name(cfg->api));
	else if (cfg->with_merger)
		agent__log(a, "no --upstream: profiles stay in the store %s for braid report",
			   store__path(maint));
	if (!cfg->keep_caps)
		agent__log(a, "capabilities kept: %#" PRIx64, kept);
	fflush(stderr);
}

/* agent__stop's target: the thread in agent__run, which takes SIGTERM in
 * sigtimedwait. */
static pthread_t run_thread;
static atomic_bool running;

void agent__stop(void)
{
	if (atomic_load(&running))
		pthread_kill(run_thread, SIGTERM);
}

int agent__run(const struct agent_config *cfg, struct errbuf *err)
{
	struct agent a = {.cfg = cfg,
			  .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER,
			  .stop_efd = -1};
	struct ingest_options io = {0};
	struct collector_options co = {0};
	struct ingest *in = NULL;
	struct store *maint = NULL, *fwd_store = NULL;
	struct errbuf e = {{0}};
	pthread_t t_col, t_merge, t_fwd;
	bool col_started = false, merge_started = false, fwd_started = false;
	int64_t last_maintain, last_stats = 0, last_summary, stop_start = 0;
	uint64_t kept = 0;
	sigset_t sigs;
	int r, status = -EINVAL;

	if (err)
		err->msg[0] = '\0';
	a.so = (struct store_options){.data_dir = cfg->data_dir,
				      .max_bytes = cfg->store_max_bytes,
				      .retention_ns = cfg->retention_s * 1000000000,
				      .sync = cfg->sync,
				      .cache_kib = AGENT_STORE_CACHE_KIB};

	/* every thread inherits this mask: only this one takes the signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	run_thread = pthread_self();
	atomic_store(&running, true);
	raise_fd_limit(&a, cfg->max_connections ? cfg->max_connections
						: INGEST_DEFAULT_MAX_CONNECTIONS);

	/* the store first: it is created (or migrated) once, before any thread */
	r = store__open(&a.so, &e, &maint);
	if (r < 0) {
		run_error(&a, err, "%s", e.msg);
		goto cleanup;
	}
	if (cfg->with_collector) {
		co.sampler.freq = cfg->freq;
		co.sampler.no_kernel = cfg->no_kernel;
		co.sampler.unwind = cfg->unwind;
		co.sampler.unwind_bytes = cfg->unwind_bytes;
		co.sampler.cgroup = cfg->cgroup;
		co.sampler.verbose = cfg->verbose;
		co.symbols.no_kernel = cfg->no_kernel;
		r = collector__open(&co, &e, &a.col);
		if (r < 0) {
			run_error(&a, err, "%s", e.msg);
			agent__log(&a,
				   "eBPF sampling needs root (or CAP_BPF, CAP_PERFMON, "
				   "CAP_SYSLOG) and a kernel with BTF; --no-ebpf runs without it");
			goto cleanup;
		}
		a.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (a.stop_efd < 0) {
			r = -errno;
			run_error(&a, err, "eventfd: %s", strerror(errno));
			goto cleanup;
		}
	}
	if (cfg->upstream) {
		struct forward_options fo = {
			.url = cfg->upstream,
			.api = cfg->api,
			.tenant = cfg->tenant,
			.bearer_token = cfg->upstream_token,
			.basic_auth = cfg->upstream_basic_auth,
			.headers = cfg->headers,
			.n_headers = cfg->n_headers,
			.ca_file = cfg->ca,
			.cert_file = cfg->cert,
			.key_file = cfg->key,
			.insecure = cfg->insecure,
			.timeout_ms = (unsigned)(cfg->upstream_timeout_s * 1000),
			.max_request_bytes = cfg->batch_max_bytes,
			.backoff_max_ms = cfg->retry_max_backoff_s * 1000,
			.user_agent = "braid-agent/" BRAID_VERSION,
		};

		r = store__open(&a.so, &e, &fwd_store);
		if (r == 0)
			r = forward__new(&fo, fwd_store, &e, &a.fwd);
		if (r < 0) {
			run_error(&a, err, "%s", e.msg);
			goto cleanup;
		}
	}
	/* before any thread exists (capabilities are per thread, inherited) */
	if (!cfg->keep_caps) {
		uint64_t keep = caps_to_keep(cfg);

		if (low_port(cfg))
			keep |= cap_bit(CAP_NET_BIND_SERVICE);
		r = drop_caps(keep, &kept);
		if (r < 0) {
			run_error(&a, err, "dropping capabilities: %s", strerror(-r));
			goto cleanup;
		}
	}

	io.listen = cfg->listen;
	io.n_listen = cfg->n_listen;
	io.threads = cfg->threads;
	io.max_connections = cfg->max_connections;
	io.timeout_s = cfg->timeout_s;
	io.max_body = cfg->max_body;
	io.retry_after_s = cfg->retry_after_s;
	io.auth_token = cfg->auth_token;
	io.basic_auth = cfg->basic_auth;
	io.store = a.so;
	io.metrics = agent__metrics;
	io.metrics_ctx = &a;
	if (cfg->with_merger) {
		io.page = agent__page;
		io.page_ctx = &a;
	}
	r = ingest__start(&io, &e, &in);
	if (r < 0) {
		run_error(&a, err, "%s", e.msg);
		goto cleanup;
	}
	if (a.col) {
		r = -pthread_create(&t_col, NULL, collector_main, &a);
		if (r < 0) {
			run_error(&a, err, "starting the collector: %s", strerror(-r));
			goto stop;
		}
		col_started = true;
	}
	if (cfg->with_merger) {
		r = -pthread_create(&t_merge, NULL, merger_main, &a);
		if (r < 0) {
			run_error(&a, err, "starting the merger: %s", strerror(-r));
			goto stop;
		}
		merge_started = true;
	}
	if (a.fwd) {
		r = -pthread_create(&t_fwd, NULL, forward_main, &a);
		if (r < 0) {
			run_error(&a, err, "starting the forwarder: %s", strerror(-r));
			goto stop;
		}
		fwd_started = true;
	}
	log_start(&a, in, maint, kept);

	last_maintain = last_summary = now_ns();
	for (;;) {
		struct timespec tick = {1, 0};
		int sig = sigtimedwait(&sigs, NULL, &tick);
		int64_t now = now_ns();
		int fatal;

		if (sig == SIGINT || sig == SIGTERM)
			break;
		pthread_mutex_lock(&a.lock);
		fatal = a.fatal;
		pthread_mutex_unlock(&a.lock);
		if (fatal) {
			r = fatal;
			run_error(&a, err, "a stage failed (%s): stopping", strerror(-fatal));
			goto stop;
		}
		/* the store's sizes for /metrics; `braid ingest` never showed
		 * them (its store has no outbox to watch) */
		if (cfg->with_merger && now - last_stats >= STORE_STATS_EVERY_S * 1000000000ll) {
			struct store_stats ss;

			last_stats = now;
			if (store__row_stats(maint, &ss) == 0) {
				pthread_mutex_lock(&a.lock);
				a.store_st = ss;
				a.have_store = true;
				pthread_mutex_unlock(&a.lock);
			}
		}
		if (now - last_maintain >= MAINTAIN_EVERY_S * 1000000000ll) {
			last_maintain = now;
			if (store__maintain(maint, now, NULL) < 0)
				agent__log(&a, "store cleanup failed: %s", store__errmsg(maint));
			/* Hand the heap's free pages back to the kernel: a burst (a
			 * big window, a report, a backlog to send) leaves free
			 * memory in glibc's per-thread arenas, which an agent that
			 * runs for months would otherwise keep as RSS. */
			malloc_trim(0);
		}
		if (cfg->verbose && now - last_summary >= 60 * 1000000000ll) {
			last_summary = now;
			log_summary(&a, "last minute's totals");
		}
	}
	agent__log(&a, "stopping");
	fflush(stderr);
	r = 0;
stop:
	status = r;
	stop_start = now_ns();
	/* 1. no new pushes (requests in progress finish and are stored) */
	ingest__stop(in);
	in = NULL;
	/* 2. the last eBPF window */
	if (col_started) {
		uint64_t one = 1;

		if (write(a.stop_efd, &one, sizeof(one)) < 0)
			agent__log(&a, "waking the collector: %s", strerror(errno));
		pthread_join(t_col, NULL);
	}
	/* 3. the final merge pass */
	if (merge_started) {
		pthread_mutex_lock(&a.lock);
		a.stop_merger = true;
		pthread_cond_broadcast(&a.cond);
		pthread_mutex_unlock(&a.lock);
		pthread_join(t_merge, NULL);
	}
	/* 4. the outbox, for what is left of --flush-timeout */
	if (fwd_started) {
		struct timespec until;
		int64_t deadline = stop_start + cfg->flush_timeout_s * 1000000000;

		pthread_mutex_lock(&a.lock);
		a.flush_deadline_ns = deadline;
		a.stop_forward = true;
		pthread_cond_broadcast(&a.cond);
		pthread_mutex_unlock(&a.lock);
		/* the request in progress may finish (its items are then not sent
		 * twice), the pass stops after it; one hanging past the deadline
		 * is cut */
		forward__stop_soon(a.fwd);
		until.tv_sec = deadline / 1000000000;
		until.tv_nsec = deadline % 1000000000;
		if (pthread_timedjoin_np(t_fwd, NULL, &until) != 0) {
			forward__interrupt(a.fwd);
			pthread_join(t_fwd, NULL);
		}
	}
	if (a.fatal && status == 0) {
		status = a.fatal;
		if (err && !err->msg[0])
			snprintf(err->msg, sizeof(err->msg), "a stage failed (%s)",
				 strerror(-a.fatal));
	}
	if (cfg->with_merger)
		log_summary(&a, "stopped");
	if (cfg->upstream) {
		struct store_stats ss;

		if (store__row_stats(maint, &ss) == 0 && ss.tables[STORE_TABLE_OUTBOX].rows)
			agent__log(&a,
				   "%" PRId64 " profiles wait in the store's outbox: they are sent "
				   "at the next start",
				   ss.tables[STORE_TABLE_OUTBOX].rows);
	}
cleanup:
	if (status == -EINVAL && r < 0)
		status = r;
	ingest__stop(in);
	forward__free(a.fwd);
	store__close(fwd_store);
	collector__close(a.col);
	if (a.stop_efd >= 0)
		close(a.stop_efd);
	store__close(maint);
	atomic_store(&running, false);
	return status;
}
