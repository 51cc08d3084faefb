/* SPDX-License-Identifier: Apache-2.0 */
/* braid record: a one-shot capture of every CPU's stacks with eBPF, like
 * `perf record -a -g` or bcc's `profile`, written as pprof or folded. */
#define _GNU_SOURCE
#include "cmd.h"
#include "collector/collector.h"
#include "merger/merger.h"
#include "profile/profile.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_OUTPUT	 "braid-record.pb.gz"
#define MAX_DURATION_S	 (7 * 24 * 3600.0)
#define MAX_OUTPUT_BYTES (1u << 30)

struct config {
	double duration_s; /* 0: until SIGINT/SIGTERM */
	int32_t pids[COLLECTOR_MAX_PIDS];
	size_t n_pids;
	const char *cgroup;
	unsigned freq;
	bool no_kernel, no_user, include_idle, verbose;
	enum collector_unwind_mode unwind;
	uint64_t unwind_bytes;
	const char *output;
	bool folded;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid record [--duration S] [--pid P]... [--freq HZ] [OPTIONS]\n"
		"\n"
		"Samples the CPU stacks of every process (kernel and native user frames) with\n"
		"eBPF on every online CPU, like `perf record -a -g`, and writes them as one\n"
		"profile: pprof (sample type cpu/nanoseconds, period 1e9/HZ, labels pid, tid,\n"
		"comm and runtime on every sample; `braid merge` reads it) or folded stacks.\n"
		"Runs for --duration, or until SIGINT or SIGTERM; either way the file is\n"
		"written. Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF\n"
		"(Linux 5.8 or later).\n"
		"\n"
		"Options:\n"
		"  -d, --duration S       record for S seconds (decimals allowed; default: until\n"
		"                         SIGINT/SIGTERM)\n"
		"  -p, --pid P            only process P (host PID, all its threads); repeat for\n"
		"                         several (at most %u)\n"
		"      --cgroup DIR       only processes in cgroup v2 directory DIR and below\n"
		"                         (e.g. /sys/fs/cgroup/system.slice/foo.service)\n"
		"  -F, --freq HZ          samples per second per CPU (default %u, at most %u)\n"
		"      --no-kernel        leave out kernel frames\n"
		"      --no-user          leave out user frames (user time shows as [user space])\n"
		"      --include-idle     count the idle task (pid 0) too\n"
		"      --unwind MODE      how user stacks unwind: cfi (default: each file's\n"
		"                         .eh_frame rules, frame pointers where it has none),\n"
		"                         fp (frame pointers only), cfi-loop (cfi as kernels\n"
		"                         before 5.17 run it, to test that path)\n"
		"      --unwind-memory SIZE  kernel memory for the rules (default 16MiB, from\n"
		"                         1MiB to 1GiB); past it, the rules of files no process\n"
		"                         maps are unloaded, least recently used first\n"
		"  -o, --output FILE      where to write (default " DEFAULT_OUTPUT "; - = stdout)\n"
		"  -f, --format FMT       pprof (gzipped, default) or folded "
		"(\"comm;root;...;leaf\n"
		"                         N\" per line, N samples; kernel frames end in _[k],\n"
		"                         JIT frames in _[j])\n"
		"  -v, --verbose          libbpf's messages and the collector's counters (how\n"
		"                         stacks unwound and why they ended)\n"
		"  -h, --help             show this help\n"
		"\n"
		"Frames: kernel functions from /proc/kallsyms in mapping [kernel.kallsyms]; "
		"native\n"
		"functions from each ELF file's .symtab or .dynsym, C++ names demangled; JIT code\n"
		"named by /tmp/perf-PID.map (node --perf-basic-prof, python -X perf) in mapping\n"
		"[jit]; also separate debug files (build id, .gnu_debuglink) and MiniDebugInfo.\n"
		"What can't be named is kept as module+offset. User stacks unwind with each\n"
		"file's .eh_frame (or .debug_frame) rules in the kernel, frame pointers where a\n"
		"file has none (JIT code, the vDSO). docs/unwind.md.\n",
		COLLECTOR_MAX_PIDS, COLLECTOR_DEFAULT_FREQ, COLLECTOR_MAX_FREQ);
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{"duration", required_argument, NULL, 'd'},
		{"pid", required_argument, NULL, 'p'},
		{"cgroup", required_argument, NULL, 'c'},
		{"freq", required_argument, NULL, 'F'},
		{"no-kernel", no_argument, NULL, 'K'},
		{"no-user", no_argument, NULL, 'U'},
		{"include-idle", no_argument, NULL, 'I'},
		{"unwind", required_argument, NULL, 'u'},
		{"unwind-memory", required_argument, NULL, 'M'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:p:F:o:f:vh", opts, NULL)) != -1) {
		char *end;
		unsigned pid;

		switch (c) {
		case 'd':
			errno = 0;
			cfg->duration_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(cfg->duration_s) ||
			    cfg->duration_s <= 0 || cfg->duration_s > MAX_DURATION_S) {
				cmd_error("record: --duration takes seconds above 0 and at most "
					  "%.0f, not \"%s\"",
					  MAX_DURATION_S, optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			if (cfg->n_pids == COLLECTOR_MAX_PIDS) {
				cmd_error("record: --pid given more than %u times",
					  COLLECTOR_MAX_PIDS);
				return -EINVAL;
			}
			if (cmd_parse_uint("record", "--pid", optarg, 1, INT32_MAX, &pid) < 0)
				return -EINVAL;
			cfg->pids[cfg->n_pids++] = (int32_t)pid;
			break;
		case 'c':
			cfg->cgroup = optarg;
			break;
		case 'F':
			if (cmd_parse_uint("record", "--freq", optarg, 1, COLLECTOR_MAX_FREQ,
					   &cfg->freq) < 0)
				return -EINVAL;
			break;
		case 'K':
			cfg->no_kernel = true;
			break;
		case 'U':
			cfg->no_user = true;
			break;
		case 'I':
			cfg->include_idle = true;
			break;
		case 'u':
			if (collector_unwind__mode_parse(optarg, &cfg->unwind) < 0) {
				cmd_error("record: --unwind takes cfi, fp or cfi-loop, not \"%s\"",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'M':
			if (util__parse_size(optarg, &cfg->unwind_bytes) < 0 ||
			    cfg->unwind_bytes < COLLECTOR_UNWIND_MIN_BYTES ||
			    cfg->unwind_bytes > COLLECTOR_UNWIND_MAX_BYTES) {
				cmd_error("record: --unwind-memory takes a size from 1MiB to 1GiB "
					  "(e.g. 64MiB), not \"%s\"",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'o':
			cfg->output = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "pprof") == 0) {
				cfg->folded = false;
			} else if (strcmp(optarg, "folded") == 0 ||
				   strcmp(optarg, "collapsed") == 0) {
				cfg->folded = true;
			} else {
				cmd_error("record: --format takes pprof or folded, not \"%s\"",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		cmd_error("record: unexpected argument \"%s\"", argv[optind]);
		return -EINVAL;
	}
	if (cfg->no_kernel && cfg->no_user) {
		cmd_error("record: --no-kernel and --no-user leave nothing to record");
		return -EINVAL;
	}
	return 0;
}

/* ---- building the profile -------------------------------------------------- */

struct builder {
	struct profile *p;
	bool folded;
	int64_t period;
	uint32_t pid_key, tid_key, comm_key, runtime_key, tp_key;
	int64_t samples;
	int32_t *pids; /* distinct pids seen, for the summary */
	size_t n_pids, cap_pids;
	uint32_t locs[2 * COLLECTOR_MAX_DEPTH + 8];
};

static int add_pid(struct builder *b, int32_t pid)
{
	/* rows of one process come together within a drain: checking the
	 * last few catches most repeats; duplicates are removed at the end */
	for (size_t i = b->n_pids; i > 0 && i + 8 > b->n_pids; i--)
		if (b->pids[i - 1] == pid)
			return 0;
	if (b->n_pids == b->cap_pids) {
		size_t cap = b->cap_pids ? 2 * b->cap_pids : 64;
		int32_t *n = realloc(b->pids, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->pids = n;
		b->cap_pids = cap;
	}
	b->pids[b->n_pids++] = pid;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static size_t distinct_pids(struct builder *b)
{
	size_t n = 0;

	if (b->n_pids == 0)
		return 0;
	qsort(b->pids, b->n_pids, sizeof(*b->pids), cmp_pid);
	for (size_t i = 0; i < b->n_pids; i++)
		if (i == 0 || b->pids[i] != b->pids[i - 1])
			n++;
	return n;
}

static int on_row(void *ctx, const struct collector_row *row)
{
	struct builder *b = ctx;
	struct profile_label labels[5] = {{0}};
	uint32_t stack, label_set;
	size_t n = 0, n_labels = 4;
	int64_t value;
	int r;

	for (size_t i = 0; i < row->n_frames; i++) {
		r = merger__add_frame(b->p, &row->frames[i], &b->locs[n++]);
		if (r < 0)
			return r;
	}
	if (b->folded) {
		/* folded stacks carry no labels: the process is the root frame */
		struct frame root = {.kind = FRAME_UNKNOWN, .name = row->process->comm};

		r = merger__add_frame(b->p, &root, &b->locs[n++]);
		if (r < 0)
			return r;
	}
	r = profile__add_stack(b->p, b->locs, n, &stack);
	if (r < 0)
		return r;
	labels[0].key = b->pid_key;
	labels[0].num = row->process->pid;
	labels[1].key = b->tid_key;
	labels[1].num = row->tid;
	labels[2].key = b->comm_key;
	r = profile__intern_cstr(b->p, row->process->comm, &labels[2].str);
	if (r < 0)
		return r;
	labels[3].key = b->runtime_key;
	r = profile__intern_cstr(b->p, profile__runtime_name(row->process->runtime),
				 &labels[3].str);
	if (r < 0)
		return r;
	if (row->thread_pointer && row->thread_pointer <= INT64_MAX) {
		/* what an SDK's thread labels name (docs/threads.md) */
		labels[4].key = b->tp_key;
		labels[4].num = (int64_t)row->thread_pointer;
		n_labels = 5;
	}
	r = profile__add_labels(b->p, labels, n_labels, &label_set);
	if (r < 0)
		return r;
	value = b->folded ? row->count : row->count * b->period;
	r = profile__add_sample(b->p, stack, label_set, &value);
	if (r < 0)
		return r;
	b->samples += row->count;
	return add_pid(b, row->process->pid);
}

static int builder_init(struct builder *b, const struct config *cfg, unsigned freq)
{
	int r;

	b->p = profile__new();
	if (!b->p)
		return -ENOMEM;
	b->folded = cfg->folded;
	b->period = 1000000000LL / freq;
	r = b->folded ? profile__add_sample_type(b->p, "samples", "count")
		      : profile__add_sample_type(b->p, "cpu", "nanoseconds");
	if (r == 0)
		r = profile__set_period(b->p, "cpu", "nanoseconds", b->period);
	if (r == 0)
		r = profile__intern_cstr(b->p, "pid", &b->pid_key);
	if (r == 0)
		r = profile__intern_cstr(b->p, "tid", &b->tid_key);
	if (r == 0)
		r = profile__intern_cstr(b->p, "comm", &b->comm_key);
	if (r == 0)
		r = profile__intern_cstr(b->p, "runtime", &b->runtime_key);
	if (r == 0)
		r = profile__intern_cstr(b->p, "thread_pointer", &b->tp_key);
	return r;
}

/* Fails before any sampling when the output can't be written: the file is
 * written beside itself and renamed, so its directory must take a file. */
static int check_output(const char *path)
{
	char *dir = NULL;
	const char *slash;
	int r = 0;

	if (strcmp(path, "-") == 0)
		return 0;
	slash = strrchr(path, '/');
	dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	if (access(dir, W_OK | X_OK) < 0) {
		r = -errno;
		cmd_error("record: -o %s: can't write in %s: %s", path, dir, strerror(errno));
	}
	free(dir);
	return r;
}

/* ---- the recording loop ------------------------------------------------------ */

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* How user stacks unwound, why they ended, and what the rules take. */
static void print_unwind_stats(const struct collector_sampler_stats *s)
{
	const struct collector_unwind_stats *u = &s->unwind;

	fprintf(stderr,
		"braid: record: user stacks: %" PRIu64 " unwound with .eh_frame rules (%" PRIu64
		" frames of them by frame pointers, %" PRIu64 " signal frames), %" PRIu64
		" by frame pointers alone (%" PRIu64 " of a reused PID's earlier process), %" PRIu64
		" without user registers\n"
		"braid: record: unwound stacks ended:",
		s->unwind_stacks, s->unwind_fp_steps, s->unwind_signal, s->ustack_fp,
		s->unwind_stale, s->unwind_no_regs);
	for (int i = 0; i < COLLECTOR_UNWIND_END_COUNT; i++)
		fprintf(stderr, "%s %" PRIu64 " %s", i ? "," : "", s->unwind_end[i],
			collector_unwind__end_name((enum collector_unwind_end)i));
	fprintf(stderr,
		"\nbraid: record: unwind rules: %" PRIu64 " files seen, %" PRIu64
		" loaded, %" PRIu64 " unreadable, %" PRIu64 " not opened (process gone), %" PRIu64
		" without room, %" PRIu64 " unloaded; %" PRIu64 " rows, %" PRIu64 " pages, %" PRIu64
		" processes (%" PRIu64 " mappings past the cap, %" PRIu64
		" taken back idle), %" PRIu64 " read again, %" PRIu64 " waiting, %" PRIu64
		" not queued; %" PRIu64 " bytes in kernel maps, %" PRIu64 " in user space\n"
		"braid: record: eBPF: %" PRIu64 " bytes of maps; program %" PRIu64 " ns in %" PRIu64
		" runs%s\n",
		u->files, u->files_loaded, u->files_unreadable, u->files_unopened, u->files_no_room,
		u->files_evicted, u->rows, u->pages, u->procs_added, u->mappings_dropped,
		u->procs_idle, s->unwind_refreshes, u->requests_queued, u->requests_dropped,
		u->map_bytes, u->user_bytes, s->map_bytes, s->prog_run_ns, s->prog_runs,
		s->prog_runs ? "" : " (kernel.bpf_stats_enabled is 0)");
}

static void print_stats(const struct collector *c, int64_t samples)
{
	struct collector_stats st;

	if (collector__stats(c, &st) < 0)
		return;
	fprintf(stderr,
		"braid: record: kernel: %" PRIu64 " samples counted, %" PRIu64 " filtered, %" PRIu64
		" lost (map full), %u CPUs, %zu stacks per generation\n"
		"braid: record: stacks not stored: %" PRIu64 " kernel faults, %" PRIu64
		" user faults, %" PRIu64 " map full, %" PRIu64 " other; truncated: %" PRIu64
		" kernel, %" PRIu64 " user\n"
		"braid: record: drains: %" PRIu64 ", %" PRIu64 " samples read, %" PRId64
		" written, %" PRIu64 " wait timeouts\n"
		"braid: record: processes: %" PRIu64 " seen, %" PRIu64
		" exited before read, %" PRIu64 " PIDs reused, %" PRIu64
		" read when first sampled, %" PRIu64 " read again after an exec\n"
		"braid: record: symbols: %" PRIu64 " frames, %" PRIu64 " unnamed, %" PRIu64
		" unmapped; %" PRIu64 " ELF files read (%zu bytes cached, %" PRIu64
		" evicted, %" PRIu64 " unreadable), %" PRIu64 " perf map reads, %" PRIu64
		" processes lost\n",
		st.sampler.samples, st.sampler.filtered, st.sampler.lost_full, st.sampler.cpus,
		st.sampler.max_stacks, st.sampler.kstack_fault, st.sampler.ustack_fault,
		st.sampler.stack_full, st.sampler.stack_other, st.sampler.kstack_truncated,
		st.sampler.ustack_truncated, st.sampler.drains, st.sampler.drained, samples,
		st.sampler.drain_wait_timeouts, st.processes_seen, st.processes_unreadable,
		st.processes_reused, st.processes_prefetched, st.processes_refreshed,
		st.symbols.frames, st.symbols.frames_unnamed, st.symbols.frames_unmapped,
		st.symbols.elf_loaded, st.symbols.cache_bytes, st.symbols.elf_evicted,
		st.symbols.elf_errors, st.symbols.perfmap_loads, st.symbols.processes_lost);
	print_unwind_stats(&st.sampler);
}

/* Waits for the next wall-clock second (or the end, or a signal) while
 * reading the processes the collector announces, then drains. */
static int record(const struct config *cfg, struct collector *c, struct builder *b,
		  int64_t *ret_elapsed_ns)
{
	int64_t start = realtime_ns(), end = 0;
	struct epoll_event ev = {.events = EPOLLIN};
	sigset_t set;
	int sfd = -1, efd = -1, r = 0;

	if (cfg->duration_s > 0)
		end = start + (int64_t)(cfg->duration_s * 1e9);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || efd < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = sfd;
	if (epoll_ctl(efd, EPOLL_CTL_ADD, sfd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = collector__fd(c);
	if (epoll_ctl(efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	for (bool stop = false; !stop;) {
		int64_t now = realtime_ns();
		/* drain just after each wall-clock second ends, so a drain's
		 * samples are that second's */
		int64_t next = (now / 1000000000 + 1) * 1000000000;
		int64_t wake = end && end < next ? end : next, second;

		while (!stop && (now = realtime_ns()) < wake) {
			struct epoll_event got[2];
			int n = epoll_wait(efd, got, 2, (int)((wake - now + 999999) / 1000000));

			if (n < 0 && errno != EINTR) {
				r = -errno;
				goto cleanup;
			}
			for (int i = 0; i < n; i++) {
				if (got[i].data.fd == sfd) {
					stop = true;
				} else {
					r = collector__poll(c);
					if (r < 0)
						goto cleanup;
				}
			}
		}
		now = realtime_ns();
		if (end && now >= end)
			stop = true;
		/* the second the samples were taken in: the one that just
		 * ended, or (stopping mid-second) the current one */
		second = (now - (stop ? 0 : 1000000)) / 1000000000;
		if (stop)
			collector__stop(c); /* the last drain gets every sample */
		r = collector__drain(c, second, on_row, b);
		if (r < 0)
			goto cleanup;
	}
cleanup:
	*ret_elapsed_ns = realtime_ns() - start;
	profile__set_time(b->p, start, *ret_elapsed_ns);
	if (efd >= 0)
		close(efd);
	if (sfd >= 0)
		close(sfd);
	return r;
}

int cmd_record(int argc, char **argv)
{
	struct config cfg = {.freq = COLLECTOR_DEFAULT_FREQ, .output = DEFAULT_OUTPUT};
	struct collector_options co = {0};
	struct collector *c = NULL;
	struct builder b = {0};
	struct errbuf err = {{0}};
	struct dynbuf out;
	struct collector_stats st;
	sigset_t set;
	int64_t elapsed = 0;
	uint64_t lost = 0, stacks_lost = 0;
	int r, status = 1;

	dynbuf__init(&out, MAX_OUTPUT_BYTES);
	if (parse_args(argc, argv, &cfg) < 0) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	co.sampler.freq = cfg.freq;
	co.sampler.no_kernel = cfg.no_kernel;
	co.sampler.no_user = cfg.no_user;
	co.sampler.include_idle = cfg.include_idle;
	co.sampler.unwind = cfg.unwind;
	co.sampler.unwind_bytes = cfg.unwind_bytes;
	co.sampler.pids = cfg.pids;
	co.sampler.n_pids = cfg.n_pids;
	co.sampler.cgroup = cfg.cgroup;
	co.sampler.verbose = cfg.verbose;
	co.symbols.no_kernel = cfg.no_kernel;

	/* blocked, so that they arrive through the signalfd (and before any
	 * thread starts, so that every thread blocks them) */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	r = check_output(cfg.output);
	if (r < 0)
		goto cleanup;
	r = collector__open(&co, &err, &c);
	if (r < 0) {
		if (r == -ESRCH) {
			/* a --pid that names no process */
			cmd_error("record: --pid: %s", err.msg);
			status = EXIT_USAGE;
		} else {
			cmd_error("record: %s", err.msg);
		}
		goto cleanup;
	}
	r = builder_init(&b, &cfg, collector__freq(c));
	if (r < 0) {
		cmd_error("record: %s", strerror(-r));
		goto cleanup;
	}
	if (collector__stats(c, &st) == 0) {
		char until[64];

		if (cfg.duration_s > 0)
			snprintf(until, sizeof(until), "for %g s", cfg.duration_s);
		else
			snprintf(until, sizeof(until), "until Ctrl-C or SIGTERM");
		fprintf(stderr, "braid: record: sampling %u CPUs at %u Hz %s\n", st.sampler.cpus,
			collector__freq(c), until);
	}
	r = record(&cfg, c, &b, &elapsed);
	if (r < 0) {
		cmd_error("record: %s", strerror(-r));
		goto cleanup;
	}
	r = cfg.folded ? profile__to_folded(b.p, 0, &(struct profile_folded_opts){.annotate = true},
					    &out)
		       : profile__to_pprof(b.p, true, &out);
	if (r < 0) {
		cmd_error("record: encoding the profile: %s", strerror(-r));
		goto cleanup;
	}
	r = util__write_file(cfg.output, out.data, out.len, &err);
	if (r < 0) {
		cmd_error("record: %s", err.msg);
		goto cleanup;
	}
	if (collector__stats(c, &st) == 0) {
		lost = st.sampler.lost_full + st.sampler.lost_drain;
		stacks_lost = st.samples_stack_lost;
	}
	fprintf(stderr,
		"braid: record: %" PRId64 " samples from %zu processes in %.1f s (%" PRIu64
		" lost), wrote %s\n",
		b.samples, distinct_pids(&b), (double)elapsed / 1e9, lost,
		strcmp(cfg.output, "-") == 0 ? "stdout" : cfg.output);
	if (stacks_lost && !cfg.verbose)
		fprintf(stderr,
			"braid: record: %" PRIu64 " samples lost a stack the kernel could not "
			"store, shown as [lost kernel/user stack] (-v tells why)\n",
			stacks_lost);
	if (cfg.verbose)
		print_stats(c, b.samples);
	status = 0;
cleanup:
	collector__close(c);
	profile__free(b.p);
	free(b.pids);
	dynbuf__free(&out);
	return status;
}
