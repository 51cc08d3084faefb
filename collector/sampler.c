/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The eBPF CPU sampler: loads bpf/profile.bpf.c through its libbpf
 * skeleton, attaches it to a cpu-clock perf event on every online CPU and
 * drains its maps. The only file of braid that touches BPF maps.
 *
 * Drain protocol (see the comment in profile.bpf.c): the program counts into
 * generation `epoch & 1`. A drain moves `epoch` on, waits until every CPU's
 * `inflight` sequence shows that no program that may have read the old
 * epoch is still running, then reads and deletes the old generation with
 * batch operations (one or a few syscalls per map, not one per entry).
 */
#include "collector/collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profile.h"
#include "profile.skel.h"

#define SAMPLER_BTF_PATH    "/sys/kernel/btf/vmlinux"
#define SAMPLER_ONLINE_PATH "/sys/devices/system/cpu/online"
#define SAMPLER_MIN_ENTRIES 1024u
#define SAMPLER_MAX_ENTRIES (1u << 20)
#define SAMPLER_WAIT_NS	    1000000000LL /* give up waiting for a running program */
#define SAMPLER_MAX_CPUS    8192
/* Count entries read per batch. A batch must hold a whole hash bucket, and
 * buckets (as many as entries, rounded up to a power of two) hold a few. */
#define SAMPLER_COUNTS_CHUNK 512u
/* Stacks read per batch (1 KiB each): they are kept compactly after. */
#define SAMPLER_STACKS_CHUNK 256u

struct collector_sampler {
	struct braid_profile_bpf *skel;
	struct bpf_link **links;
	struct bpf_link *exec_link; /* braid_exec on sched_process_exec */
	int *perf_fds;		    /* -1, or an event not yet handed to its link */
	unsigned n_cpus;	    /* online CPUs attached */
	int n_possible;		    /* per-CPU map values come for every possible CPU */
	unsigned freq;
	uint32_t counts_entries, stacks_entries;
	/* batch buffers: a chunk of the counts, a chunk of the stacks */
	struct braid_key *keys;
	uint64_t *values;
	uint64_t *stack_keys;
	struct braid_stack *stacks;
	/* a generation's stacks, packed: each its key, its depth and only its
	 * frames, not 127 slots */
	uint64_t *pool;
	size_t pool_len, pool_cap;
	struct idtab index;	  /* the stacks by key; ids = their place in the pool + 1 */
	uint64_t *percpu;	  /* n_possible values */
	uint64_t *inflight_seen;  /* n_possible values: wait_inflight's snapshot */
	struct ring_buffer *ring; /* new_pids */
	/* the rules of .eh_frame in the maps, loaded by a thread of its own */
	struct collector_unwind_loader *unwind;
	struct bpf_program *prog; /* braid_sample or braid_sample_bounded */
	void *rows;		  /* unwind_rows, mapped */
	size_t rows_len;
	collector_pid_fn pid_fn; /* set during collector_sampler__new_pids */
	void *pid_ctx;
	int pid_ret;
	uint64_t announced;
	uint64_t drained, drains, wait_timeouts, lost_drain;
};

static bool libbpf_verbose;

static int on_new_pid(void *ctx, void *data, size_t size)
{
	struct collector_sampler *s = ctx;
	uint32_t pid;

	if (size < sizeof(pid) || !s->pid_fn || s->pid_ret)
		return 0;
	memcpy(&pid, data, sizeof(pid));
	if (pid & BRAID_PID_REFRESH) {
		/* an address in none of its mappings with rules: a library
		 * loaded since; the rest of it is as it was */
		s->pid_ret = collector_unwind_loader__add(s->unwind,
							  (int32_t)(pid & ~BRAID_PID_REFRESH));
		return 0;
	}
	s->announced++;
	/* its rules on the loader's thread; its mappings for the names here,
	 * now, before a short-lived process exits */
	s->pid_ret = collector_unwind_loader__add(s->unwind, (int32_t)pid);
	if (s->pid_ret)
		return 0;
	s->pid_ret = s->pid_fn(s->pid_ctx, (int32_t)pid);
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static uint32_t roundup_pow2(uint64_t v)
{
	uint32_t r = SAMPLER_MIN_ENTRIES;

	while (r < v && r < SAMPLER_MAX_ENTRIES)
		r <<= 1;
	return r;
}

/* Parses a CPU list ("0-3,5,7-8") into ret (a bitmap of n bits). Returns
 * the number of CPUs set or a negative errno. */
static int parse_cpu_list(const char *s, bool *ret, unsigned n)
{
	unsigned count = 0;

	while (*s && *s != '\n') {
		char *end;
		unsigned long a, b;

		errno = 0;
		a = strtoul(s, &end, 10);
		if (end == s || errno)
			return -EINVAL;
		b = a;
		s = end;
		if (*s == '-') {
			s++;
			b = strtoul(s, &end, 10);
			if (end == s || errno || b < a)
				return -EINVAL;
			s = end;
		}
		if (b >= n)
			return -E2BIG;
		for (unsigned long c = a; c <= b; c++) {
			if (!ret[c])
				count++;
			ret[c] = true;
		}
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return (int)count;
}

static int online_cpus(bool *ret, unsigned n, struct errbuf *err)
{
	char buf[4096];
	ssize_t len;
	int fd, r;

	fd = open(SAMPLER_ONLINE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errbuf__set(err, -errno, "%s: %s", SAMPLER_ONLINE_PATH, strerror(errno));
	len = read(fd, buf, sizeof(buf) - 1);
	r = len < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return errbuf__set(err, r, "%s: %s", SAMPLER_ONLINE_PATH, strerror(-r));
	buf[len] = '\0';
	r = parse_cpu_list(buf, ret, n);
	if (r <= 0)
		return errbuf__set(err, r < 0 ? r : -ENOENT, "%s: can't read the CPU list \"%.*s\"",
				   SAMPLER_ONLINE_PATH, (int)strcspn(buf, "\n"), buf);
	return r;
}

static int perf_event_open_cpu(unsigned cpu, unsigned freq)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = 1;
	attr.sample_freq = freq;
	return (int)syscall(SYS_perf_event_open, &attr, -1, (int)cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* The message for a failure to load or attach, by errno. */
static int load_error(struct errbuf *err, int r, const char *what)
{
	/* as root, -EACCES from a load is the verifier refusing the program */
	if ((r == -EPERM || r == -EACCES) && geteuid() == 0)
		return errbuf__set(err, r,
				   "%s: the kernel refused it (%s): its verifier log is printed "
				   "with -v",
				   what, strerror(-r));
	if (r == -EPERM || r == -EACCES)
		return errbuf__set(
			err, r,
			"%s: permission denied: eBPF sampling needs root, or CAP_BPF and "
			"CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)",
			what);
	return errbuf__set(err, r, "%s: %s", what, strerror(-r));
}

static int check_pids(const struct collector_sampler_options *o, struct errbuf *err)
{
	for (size_t i = 0; i < o->n_pids; i++) {
		char path[64];

		if (o->pids[i] <= 0)
			return errbuf__set(err, -EINVAL, "pid %d: not a process id", o->pids[i]);
		snprintf(path, sizeof(path), COLLECTOR_PROC_ROOT "/%d", o->pids[i]);
		if (access(path, F_OK) != 0)
			return errbuf__set(err, -ESRCH, "pid %d: no such process", o->pids[i]);
	}
	return 0;
}

static int alloc_buffers(struct collector_sampler *s)
{
	s->keys = calloc(SAMPLER_COUNTS_CHUNK, sizeof(*s->keys));
	/* the counts map is per CPU: one value per possible CPU per entry */
	s->values =
		calloc((size_t)SAMPLER_COUNTS_CHUNK * (size_t)s->n_possible, sizeof(*s->values));
	s->stack_keys = calloc(SAMPLER_STACKS_CHUNK, sizeof(*s->stack_keys));
	/* calloc as the others: valgrind (3.19) does not know the batch
	 * lookup that fills these, and would take every drained stack for
	 * uninitialised memory */
	s->stacks = calloc(SAMPLER_STACKS_CHUNK, sizeof(*s->stacks));
	s->percpu = calloc((size_t)s->n_possible, sizeof(*s->percpu));
	s->inflight_seen = calloc((size_t)s->n_possible, sizeof(*s->inflight_seen));
	if (!s->keys || !s->values || !s->stack_keys || !s->stacks || !s->percpu ||
	    !s->inflight_seen)
		return -ENOMEM;
	/* room for a whole map: a drain never grows it */
	return idtab__presize(&s->index, s->stacks_entries);
}

int collector_sampler__open(const struct collector_sampler_options *o, struct errbuf *err,
			    struct collector_sampler **ret)
{
	struct collector_sampler *s = NULL;
	bool *online = NULL;
	unsigned interval = o->drain_interval_s ? o->drain_interval_s : 1;
	uint64_t per_interval;
	uint32_t unwind_rows = 1, unwind_pages = 1, unwind_procs = 1; /* unwinding off */
	int cgroup_fd = -1, r, n_online;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->freq = o->freq ? o->freq : COLLECTOR_DEFAULT_FREQ;
	if (s->freq > COLLECTOR_MAX_FREQ) {
		r = errbuf__set(err, -EINVAL, "frequency %u Hz: at most %u", s->freq,
				COLLECTOR_MAX_FREQ);
		goto cleanup;
	}
	if (o->n_pids > COLLECTOR_MAX_PIDS) {
		r = errbuf__set(err, -E2BIG, "%zu pids: at most %u", o->n_pids, COLLECTOR_MAX_PIDS);
		goto cleanup;
	}
	if (o->no_kernel && o->no_user) {
		r = errbuf__set(err, -EINVAL, "nothing to sample: both kernel and user stacks off");
		goto cleanup;
	}
	r = check_pids(o, err);
	if (r < 0)
		goto cleanup;
	if (access(SAMPLER_BTF_PATH, R_OK) != 0) {
		r = errbuf__set(err, -ENOENT,
				"%s: %s: eBPF sampling needs a kernel with BTF "
				"(CONFIG_DEBUG_INFO_BTF, Linux 5.8 or later)",
				SAMPLER_BTF_PATH, strerror(errno));
		goto cleanup;
	}
	s->n_possible = libbpf_num_possible_cpus();
	if (s->n_possible <= 0 || s->n_possible > SAMPLER_MAX_CPUS) {
		r = errbuf__set(err, s->n_possible < 0 ? s->n_possible : -EINVAL,
				"can't count the possible CPUs");
		goto cleanup;
	}
	online = calloc((size_t)s->n_possible, sizeof(*online));
	if (!online) {
		r = -ENOMEM;
		goto cleanup;
	}
	n_online = online_cpus(online, (unsigned)s->n_possible, err);
	if (n_online < 0) {
		r = n_online;
		goto cleanup;
	}
	if (o->cgroup) {
		cgroup_fd = open(o->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgroup_fd < 0) {
			r = errbuf__set(err, -errno, "cgroup %s: %s", o->cgroup, strerror(errno));
			goto cleanup;
		}
	}

	/* A generation holds at most the samples of one interval (twice that,
	 * for a drain that comes late), and each sample at most two stacks. */
	per_interval = (uint64_t)s->freq * (unsigned)n_online * interval;
	s->counts_entries = roundup_pow2(per_interval * 2);
	s->stacks_entries =
		o->max_stacks ? roundup_pow2(o->max_stacks) : roundup_pow2(per_interval * 4);

	libbpf_verbose = o->verbose;
	libbpf_set_print(libbpf_print);
	s->skel = braid_profile_bpf__open();
	if (!s->skel) {
		r = load_error(err, -errno, "opening the eBPF program");
		goto cleanup;
	}
	s->skel->rodata->sample_kernel = !o->no_kernel;
	s->skel->rodata->sample_user = !o->no_user;
	s->skel->rodata->include_idle = o->include_idle;
	s->skel->rodata->filter_pids = o->n_pids > 0;
	s->skel->rodata->filter_cgroup = o->cgroup != NULL;
	s->skel->rodata->unwind_enabled = o->unwind != COLLECTOR_UNWIND_FP && !o->no_user;
	/* the program that walks with bpf_loop where the kernel has it (5.17);
	 * the bounded loop's otherwise, and for --unwind cfi-loop */
	s->prog = s->skel->progs.braid_sample;
	if (o->unwind == COLLECTOR_UNWIND_CFI_LOOP ||
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_loop, NULL) != 1)
		s->prog = s->skel->progs.braid_sample_bounded;
	if ((r = bpf_program__set_autoload(s->skel->progs.braid_sample,
					   s->prog == s->skel->progs.braid_sample)) < 0 ||
	    (r = bpf_program__set_autoload(s->skel->progs.braid_sample_bounded,
					   s->prog == s->skel->progs.braid_sample_bounded)) < 0) {
		r = load_error(err, r, "choosing the eBPF program");
		goto cleanup;
	}
	if (s->skel->rodata->unwind_enabled) {
		uint64_t bytes = o->unwind_bytes ? o->unwind_bytes : COLLECTOR_UNWIND_DEFAULT_BYTES;

		if (bytes < COLLECTOR_UNWIND_MIN_BYTES || bytes > COLLECTOR_UNWIND_MAX_BYTES) {
			r = errbuf__set(err, -EINVAL,
					"unwind tables of %" PRIu64 " bytes: from %u to %u bytes",
					bytes, COLLECTOR_UNWIND_MIN_BYTES,
					COLLECTOR_UNWIND_MAX_BYTES);
			goto cleanup;
		}
		unwind_rows = (uint32_t)(bytes / sizeof(struct braid_unwind_row));
		unwind_pages = unwind_rows / 32;
		unwind_procs = COLLECTOR_UNWIND_MAX_PROCS;
	}
	if ((r = bpf_map__set_max_entries(s->skel->maps.counts0, s->counts_entries)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.counts1, s->counts_entries)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.stacks0, s->stacks_entries)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.stacks1, s->stacks_entries)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.pids,
					  o->n_pids ? (uint32_t)o->n_pids : 1)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.unwind_rows, unwind_rows)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.unwind_pages, unwind_pages)) < 0 ||
	    (r = bpf_map__set_max_entries(s->skel->maps.unwind_procs, unwind_procs)) < 0) {
		r = load_error(err, r, "sizing the eBPF maps");
		goto cleanup;
	}
	r = braid_profile_bpf__load(s->skel);
	if (r < 0) {
		r = load_error(err, r, "loading the eBPF program");
		goto cleanup;
	}
	for (size_t i = 0; i < o->n_pids; i++) {
		uint32_t pid = (uint32_t)o->pids[i];
		uint8_t one = 1;

		r = bpf_map__update_elem(s->skel->maps.pids, &pid, sizeof(pid), &one, sizeof(one),
					 BPF_ANY);
		if (r < 0) {
			r = load_error(err, r, "filling the pid filter");
			goto cleanup;
		}
	}
	if (cgroup_fd >= 0) {
		uint32_t zero = 0, fd = (uint32_t)cgroup_fd;

		r = bpf_map__update_elem(s->skel->maps.cgroup, &zero, sizeof(zero), &fd, sizeof(fd),
					 BPF_ANY);
		if (r < 0) {
			r = errbuf__set(err, r, "cgroup %s: %s (a cgroup v2 directory is needed)",
					o->cgroup, strerror(-r));
			goto cleanup;
		}
	}
	r = alloc_buffers(s);
	if (r < 0)
		goto cleanup;
	if (s->skel->rodata->unwind_enabled) {
		struct collector_unwind_maps um = {
			.rows_fd = bpf_map__fd(s->skel->maps.unwind_rows),
			.pages_fd = bpf_map__fd(s->skel->maps.unwind_pages),
			.procs_fd = bpf_map__fd(s->skel->maps.unwind_procs),
			.max_rows = unwind_rows,
			.max_pages = unwind_pages,
		};
		struct collector_unwind *u = NULL;

		s->rows_len = (size_t)unwind_rows * sizeof(struct braid_unwind_row);
		s->rows =
			mmap(NULL, s->rows_len, PROT_READ | PROT_WRITE, MAP_SHARED, um.rows_fd, 0);
		if (s->rows == MAP_FAILED) {
			s->rows = NULL;
			r = load_error(err, -errno, "mapping the unwind rows");
			goto cleanup;
		}
		um.rows = s->rows;
		r = collector_unwind__new(&um, COLLECTOR_PROC_ROOT, &u);
		/* the processes asked for get their rules before their first
		 * sample, here, before the loader's thread takes over */
		for (size_t i = 0; r == 0 && i < o->n_pids; i++)
			r = collector_unwind__add_process(u, o->pids[i]);
		if (r == 0)
			r = collector_unwind_loader__new(u, &s->unwind);
		if (r < 0) {
			collector_unwind__free(u);
			goto cleanup;
		}
	}
	s->ring = ring_buffer__new(bpf_map__fd(s->skel->maps.new_pids), on_new_pid, s, NULL);
	if (!s->ring) {
		r = load_error(err, -errno, "opening the new-process ring buffer");
		goto cleanup;
	}

	/* before the samples: an exec is never missed by a process sampled */
	s->exec_link = bpf_program__attach(s->skel->progs.braid_exec);
	if (!s->exec_link) {
		r = load_error(err, -errno, "attaching the eBPF program to sched_process_exec");
		goto cleanup;
	}
	s->links = calloc((size_t)s->n_possible, sizeof(*s->links));
	s->perf_fds = calloc((size_t)s->n_possible, sizeof(*s->perf_fds));
	if (!s->links || !s->perf_fds) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (int cpu = 0; cpu < s->n_possible; cpu++)
		s->perf_fds[cpu] = -1;
	for (int cpu = 0; cpu < s->n_possible; cpu++) {
		int fd;

		if (!online[cpu])
			continue;
		fd = perf_event_open_cpu((unsigned)cpu, s->freq);
		if (fd < 0) {
			if (errno == ENODEV) /* went offline since we read the list */
				continue;
			r = load_error(err, -errno, "perf_event_open(cpu-clock)");
			goto cleanup;
		}
		s->perf_fds[cpu] = fd;
		s->links[cpu] = bpf_program__attach_perf_event(s->prog, fd);
		if (!s->links[cpu]) {
			r = load_error(err, -errno, "attaching the eBPF program");
			goto cleanup;
		}
		s->perf_fds[cpu] = -1; /* the link owns it now: destroying it closes it */
		s->n_cpus++;
	}
	if (s->n_cpus == 0) {
		r = errbuf__set(err, -ENODEV, "no online CPU to sample");
		goto cleanup;
	}
	*ret = s;
	s = NULL;
	r = 0;
cleanup:
	if (cgroup_fd >= 0)
		close(cgroup_fd); /* the map holds its own reference */
	free(online);
	collector_sampler__close(s);
	return r;
}

void collector_sampler__stop(struct collector_sampler *s)
{
	if (!s)
		return;
	bpf_link__destroy(s->exec_link);
	s->exec_link = NULL;
	if (s->links)
		for (int cpu = 0; cpu < s->n_possible; cpu++) {
			bpf_link__destroy(s->links[cpu]);
			s->links[cpu] = NULL;
		}
	if (s->perf_fds)
		for (int cpu = 0; cpu < s->n_possible; cpu++)
			if (s->perf_fds[cpu] >= 0) {
				close(s->perf_fds[cpu]);
				s->perf_fds[cpu] = -1;
			}
}

void collector_sampler__close(struct collector_sampler *s)
{
	if (!s)
		return;
	collector_sampler__stop(s);
	ring_buffer__free(s->ring);
	/* its thread writes to the maps: stopped before they go */
	collector_unwind_loader__free(s->unwind);
	if (s->rows)
		munmap(s->rows, s->rows_len);
	braid_profile_bpf__destroy(s->skel);
	free(s->links);
	free(s->perf_fds);
	free(s->keys);
	free(s->values);
	free(s->stack_keys);
	free(s->stacks);
	free(s->pool);
	idtab__free(&s->index);
	free(s->percpu);
	free(s->inflight_seen);
	free(s);
}

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads a per-CPU u64 map entry into s->percpu. */
static int read_percpu(struct collector_sampler *s, const struct bpf_map *map, uint32_t key)
{
	return bpf_map__lookup_elem(map, &key, sizeof(key), s->percpu,
				    (size_t)s->n_possible * sizeof(uint64_t), 0);
}

/* Waits until no program that may have read the old epoch is still
 * running: a CPU whose sequence is odd is inside the program; once its
 * sequence moves, that run is over (and later runs read the new epoch). */
static int wait_inflight(struct collector_sampler *s)
{
	uint64_t *seen = s->inflight_seen;
	int64_t deadline = monotonic_ns() + SAMPLER_WAIT_NS;
	int r;

	r = read_percpu(s, s->skel->maps.inflight, 0);
	if (r < 0)
		return r;
	memcpy(seen, s->percpu, (size_t)s->n_possible * sizeof(*seen));
	for (;;) {
		bool busy = false;

		for (int cpu = 0; cpu < s->n_possible; cpu++)
			if ((seen[cpu] & 1) && s->percpu[cpu] == seen[cpu])
				busy = true;
		if (!busy)
			break;
		if (monotonic_ns() > deadline) {
			s->wait_timeouts++;
			break;
		}
		usleep(20);
		r = read_percpu(s, s->skel->maps.inflight, 0);
		if (r < 0)
			break;
	}
	return r < 0 ? r : 0;
}

/* A walk that reads and deletes a hash map's entries, in batches. */
struct batch {
	const struct bpf_map *map;
	uint64_t in, out;
	bool started, done;
};

/* Reads and deletes up to max entries into keys and values; *ret_n gets
 * how many. Sets b->done when the map is empty. */
static int batch_next(struct batch *b, void *keys, void *values, uint32_t max, uint32_t *ret_n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t n = max;
	int r;

	*ret_n = 0;
	if (b->done)
		return 0;
	r = bpf_map_lookup_and_delete_batch(bpf_map__fd(b->map), b->started ? &b->in : NULL,
					    &b->out, keys, values, &n, &opts);
	if (r < 0 && errno != ENOENT)
		return -errno; /* ENOSPC: a bucket holds more than max entries */
	b->started = true;
	b->in = b->out;
	b->done = r < 0; /* ENOENT: the map is now empty */
	*ret_n = n;
	return 0;
}

/* A stack in the pool is its key, its depth and its frames: a lookup
 * finds the key beside the frames it goes on to read, one cache miss. */
#define STACK_HEADER 2

struct stack_key {
	const uint64_t *pool;
	uint64_t key;
};

static bool stack_eq(const void *ctx, uint32_t id)
{
	const struct stack_key *k = ctx;

	return k->pool[id - 1] == k->key;
}

/* Keeps a chunk of drained stacks: their frames packed in the pool, their
 * place in the index. */
static int keep_stacks(struct collector_sampler *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct braid_stack *st = &s->stacks[i];
		struct stack_key k = {s->pool, s->stack_keys[i]};
		uint32_t h = (uint32_t)util__hash_u64(k.key);
		size_t depth = 0, slot, need;
		int r;

		if ((r = idtab__reserve(&s->index)) < 0)
			return r;
		/* a map's keys are distinct; were one drained twice, its first
		 * copy would stand */
		if (idtab__find(&s->index, h, stack_eq, &k, &slot))
			continue;

		while (depth < BRAID_MAX_STACK_DEPTH && st->ips[depth])
			depth++;
		need = s->pool_len + STACK_HEADER + depth;
		if (s->pool_len >= UINT32_MAX)
			return -EOVERFLOW; /* its place would not make an id */
		if (need > s->pool_cap) {
			size_t cap = s->pool_cap ? 2 * s->pool_cap : 4096;
			uint64_t *p;

			while (cap < need)
				cap *= 2;
			p = realloc(s->pool, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			s->pool = p;
			s->pool_cap = cap;
		}
		s->pool[s->pool_len] = k.key;
		s->pool[s->pool_len + 1] = depth;
		memcpy(s->pool + s->pool_len + STACK_HEADER, st->ips, depth * sizeof(*s->pool));
		idtab__insert_at(&s->index, slot, h, (uint32_t)s->pool_len + 1);
		s->pool_len = need;
	}
	return 0;
}

/* Reads and deletes every stack of a generation, in chunks, into the pool. */
static int drain_stacks(struct collector_sampler *s, const struct bpf_map *map)
{
	struct batch b = {.map = map};
	uint32_t total = 0;

	s->pool_len = 0;
	idtab__clear(&s->index);
	while (!b.done) {
		uint32_t n;
		int r = batch_next(&b, s->stack_keys, s->stacks, SAMPLER_STACKS_CHUNK, &n);

		if (r < 0)
			return r;
		/* never more than the map holds: the index has room for that */
		if (n > s->stacks_entries - total)
			return -EOVERFLOW;
		total += n;
		r = keep_stacks(s, n);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The stack stored under hash h, and its depth; NULL if absent. Valid
 * until the next drain. */
static const uint64_t *find_stack(const struct collector_sampler *s, uint64_t h, size_t *ret_n)
{
	struct stack_key k = {s->pool, h};
	size_t slot;
	uint32_t id = idtab__find(&s->index, (uint32_t)util__hash_u64(h), stack_eq, &k, &slot);
	const uint64_t *p;

	if (!id)
		return NULL;
	p = s->pool + id - 1;
	*ret_n = p[1];
	return p + STACK_HEADER;
}

/* Hands on one drained count entry. */
static int pass_sample(struct collector_sampler *s, const struct braid_key *k,
		       const uint64_t *values, collector_sample_fn fn, void *ctx)
{
	struct collector_sample smp;

	memset(&smp, 0, sizeof(smp));
	for (int cpu = 0; cpu < s->n_possible; cpu++)
		smp.count += values[cpu];
	smp.pid = (int32_t)k->pid;
	smp.tid = (int32_t)k->tid;
	smp.start = k->start;
	smp.thread_pointer = k->tp;
	memcpy(smp.comm, k->comm, sizeof(smp.comm));
	smp.comm[sizeof(smp.comm) - 1] = '\0';
	smp.kstack_lost = k->flags & BRAID_KEY_KSTACK_LOST;
	smp.ustack_lost = k->flags & BRAID_KEY_USTACK_LOST;
	if (k->kstack) {
		smp.kips = find_stack(s, k->kstack, &smp.n_kips);
		if (!smp.kips)
			smp.kstack_lost = true;
	}
	if (k->ustack) {
		smp.uips = find_stack(s, k->ustack, &smp.n_uips);
		if (!smp.uips)
			smp.ustack_lost = true;
	}
	s->drained += smp.count;
	return fn(ctx, &smp);
}

int collector_sampler__drain(struct collector_sampler *s, collector_sample_fn fn, void *ctx)
{
	uint32_t old = __atomic_load_n(&s->skel->bss->epoch, __ATOMIC_RELAXED);
	const struct bpf_map *stacks;
	struct batch counts = {0};
	int r, ret = 0;

	/* seq_cst: the store is ordered before the reads of `inflight` */
	__atomic_store_n(&s->skel->bss->epoch, old + 1, __ATOMIC_SEQ_CST);
	r = wait_inflight(s);
	if (r < 0)
		return r;
	counts.map = (old & 1) ? s->skel->maps.counts1 : s->skel->maps.counts0;
	stacks = (old & 1) ? s->skel->maps.stacks1 : s->skel->maps.stacks0;
	/* every stack first: the counts refer to them */
	r = drain_stacks(s, stacks);
	if (r < 0)
		return r;
	s->drains++;

	/* the counts a chunk at a time: their per-CPU values take
	 * entries x CPUs x 8 bytes, too much to hold at once on a big host */
	while (!counts.done) {
		uint32_t n;

		r = batch_next(&counts, s->keys, s->values, SAMPLER_COUNTS_CHUNK, &n);
		if (r < 0)
			return r;
		for (uint32_t i = 0; i < n; i++) {
			const uint64_t *values = s->values + (size_t)i * (size_t)s->n_possible;

			if (ret) {
				for (int cpu = 0; cpu < s->n_possible; cpu++)
					s->lost_drain += values[cpu];
				continue;
			}
			ret = pass_sample(s, &s->keys[i], values, fn, ctx);
		}
	}
	return ret;
}

_Static_assert((int)COLLECTOR_UNWIND_END_COUNT == (int)BRAID_UNWIND_END_COUNT &&
		       (int)COLLECTOR_UNWIND_END_ROOT == (int)BRAID_UNWIND_END_ROOT &&
		       (int)COLLECTOR_UNWIND_END_NO_RULE == (int)BRAID_UNWIND_END_NO_RULE &&
		       (int)COLLECTOR_UNWIND_END_FAULT == (int)BRAID_UNWIND_END_FAULT &&
		       (int)COLLECTOR_UNWIND_END_BAD_CFA == (int)BRAID_UNWIND_END_BAD_CFA &&
		       (int)COLLECTOR_UNWIND_END_DEPTH == (int)BRAID_UNWIND_END_DEPTH,
	       "collector_unwind_end follows braid_unwind_end");

/* The sampling program's run time and runs, as the kernel counts them
 * while kernel.bpf_stats_enabled is 1 (both 0 else). */
static void prog_run_time(const struct collector_sampler *s, struct collector_sampler_stats *ret)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(s->prog), &info, &len) < 0)
		return;
	ret->prog_run_ns = info.run_time_ns;
	ret->prog_runs = info.run_cnt;
}

/* The kernel memory of a map: the `memlock:` line of its fd's
 * /proc/self/fdinfo (what the kernel charges for it); 0 if unknown. */
static uint64_t map_memlock(const struct bpf_map *m)
{
	char path[64], buf[1024];
	unsigned long long v = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", bpf_map__fd(m));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "memlock:");
	if (!p || sscanf(p + strlen("memlock:"), "%llu", &v) != 1)
		return 0;
	return v;
}

static uint64_t maps_memlock(const struct collector_sampler *s)
{
	const struct bpf_map *m;
	uint64_t sum = 0;

	bpf_object__for_each_map(m, s->skel->obj)
	{
		sum += map_memlock(m);
	}
	return sum;
}

int collector_sampler__stats(const struct collector_sampler *cs,
			     struct collector_sampler_stats *ret)
{
	struct collector_sampler *s = (struct collector_sampler *)cs;
	uint64_t sums[BRAID_STAT_COUNT];

	for (uint32_t i = 0; i < BRAID_STAT_COUNT; i++) {
		int r = read_percpu(s, s->skel->maps.stats, i);

		if (r < 0)
			return r;
		sums[i] = 0;
		for (int cpu = 0; cpu < s->n_possible; cpu++)
			sums[i] += s->percpu[cpu];
	}
	memset(ret, 0, sizeof(*ret));
	ret->samples = sums[BRAID_STAT_SAMPLES];
	ret->filtered = sums[BRAID_STAT_FILTERED];
	ret->lost_full = sums[BRAID_STAT_LOST_FULL];
	ret->kstack_fault = sums[BRAID_STAT_KSTACK_FAULT];
	ret->ustack_fault = sums[BRAID_STAT_USTACK_FAULT];
	ret->stack_full = sums[BRAID_STAT_STACK_FULL];
	ret->stack_other = sums[BRAID_STAT_STACK_OTHER];
	ret->kstack_truncated = sums[BRAID_STAT_KSTACK_TRUNCATED];
	ret->ustack_truncated = sums[BRAID_STAT_USTACK_TRUNCATED];
	ret->announce_lost = sums[BRAID_STAT_ANNOUNCE_LOST];
	ret->announced = s->announced;
	ret->execs = sums[BRAID_STAT_EXEC];
	ret->drained = s->drained;
	ret->drains = s->drains;
	ret->drain_wait_timeouts = s->wait_timeouts;
	ret->lost_drain = s->lost_drain;
	ret->cpus = s->n_cpus;
	ret->max_stacks = s->stacks_entries;
	ret->unwind_stacks = sums[BRAID_STAT_UNWIND_CFI];
	ret->unwind_fp_steps = sums[BRAID_STAT_UNWIND_FP_STEPS];
	ret->unwind_no_regs = sums[BRAID_STAT_UNWIND_NO_REGS];
	ret->unwind_signal = sums[BRAID_STAT_UNWIND_SIGNAL];
	ret->unwind_refreshes = sums[BRAID_STAT_UNWIND_REFRESH];
	for (uint32_t i = 0; i < COLLECTOR_UNWIND_END_COUNT; i++)
		ret->unwind_end[i] = sums[BRAID_STAT_UNWIND_END + i];
	ret->ustack_fp = sums[BRAID_STAT_USTACK_FP];
	ret->unwind_stale = sums[BRAID_STAT_UNWIND_STALE];
	collector_unwind_loader__stats(s->unwind, &ret->unwind);
	if (s->unwind)
		ret->unwind.map_bytes = map_memlock(s->skel->maps.unwind_rows) +
					map_memlock(s->skel->maps.unwind_pages) +
					map_memlock(s->skel->maps.unwind_procs);
	prog_run_time(s, ret);
	ret->map_bytes = maps_memlock(s);
	return 0;
}

unsigned collector_sampler__freq(const struct collector_sampler *s)
{
	return s->freq;
}

int collector_sampler__new_pids_fd(const struct collector_sampler *s)
{
	return ring_buffer__epoll_fd(s->ring);
}

int collector_sampler__new_pids(struct collector_sampler *s, collector_pid_fn fn, void *ctx)
{
	int r;

	s->pid_fn = fn;
	s->pid_ctx = ctx;
	s->pid_ret = 0;
	r = ring_buffer__consume(s->ring);
	s->pid_fn = NULL;
	s->pid_ctx = NULL;
	if (r < 0)
		return r;
	return s->pid_ret;
}

void collector_sampler__forget(struct collector_sampler *s, int32_t pid)
{
	uint32_t key = (uint32_t)pid;

	/* -ENOENT (the LRU dropped it already) is as good */
	bpf_map__delete_elem(s->skel->maps.known, &key, sizeof(key), 0);
	if (collector_unwind_loader__remove(s->unwind, pid) < 0)
		return; /* -ENOMEM: the next request says it */
}
