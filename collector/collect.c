/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector: the sampler's drains, symbolized, with each process's
 * metadata, as rows of (process, thread, second, stack, count).
 *
 * Process metadata is read the first time a PID shows up in a drain and
 * kept while the PID keeps showing up. Every COLLECTOR_RECHECK_DRAINS drains
 * the start time of the processes just seen is read again: a PID that names
 * a new process (reused) is read afresh and its symbols forgotten. A process
 * that execs is announced again (the sampler forgets it at the exec): its
 * metadata and mappings are read again then, while they are there.
 */
#include "collector/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROC_BUCKETS	   1024
#define RECHECK_DRAINS	   10  /* drains between start-time checks */
#define FORGET_DRAINS	   120 /* a process unseen this long is forgotten */
#define MAX_FRAMES	   (2 * COLLECTOR_MAX_DEPTH + 2)
#define SHORT_CONTAINER_ID 12 /* as `docker ps` shows it */
#define MAPS_READ_MAX	   (4u << 20)

struct proc_entry {
	struct proc_entry *next;
	struct collector_proc info;
	char *service;	       /* resolved: see resolve_service */
	int64_t seen_drain;    /* last drain that had its samples */
	int64_t checked_drain; /* last drain that checked its start time */
	uint64_t boot_start;   /* the kernel's start of the process (samples'), 0 unknown */
};

struct collector {
	char *proc_root;
	struct collector_sampler *sampler;
	struct collector_symbolizer *symbols;
	struct proc_entry *procs[PROC_BUCKETS];
	size_t n_procs;
	int64_t drain; /* drains so far */
	struct frame frames[MAX_FRAMES];
	uint64_t rows, seen, unreadable, reused, stack_lost, prefetched, refreshed;
	bool no_user;
};

struct drain_ctx {
	struct collector *c;
	int64_t second;
	collector_row_fn fn;
	void *ctx;
};

static void proc_entry_free(struct proc_entry *e)
{
	if (!e)
		return;
	collector__proc_release(&e->info);
	free(e->service);
	free(e);
}

static int resolve_service(struct proc_entry *e)
{
	const char *s = e->info.comm;
	size_t len = strlen(s);

	if (e->info.service && *e->info.service) {
		s = e->info.service;
		len = strnlen(s, COLLECTOR_MAX_SERVICE);
	} else if (e->info.container_id) {
		s = e->info.container_id;
		len = strnlen(s, SHORT_CONTAINER_ID);
	}
	e->service = strndup(s, len);
	return e->service ? 0 : -ENOMEM;
}

/* Reads a new process's metadata; a process gone already keeps its PID and
 * the comm its samples gave (start time 0: unknown), or, announced without a
 * sample (comm ""), is not kept: -ENOENT. boot_start is the sample's start of
 * the process (0: unknown): when /proc shows another start, the PID names a
 * later process already, and the sample's process is gone. A process gone
 * gets its start time from boot_start when known. */
static int proc_entry_new(struct collector *c, int32_t pid, uint64_t boot_start, const char *comm,
			  struct proc_entry **ret)
{
	struct proc_entry *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	r = collector__proc_read(c->proc_root, pid, &e->info);
	if (r == -ENOMEM) {
		free(e);
		return r;
	}
	if (r == 0 && boot_start && !collector__same_start(e->info.start_ticks, boot_start)) {
		collector__proc_release(&e->info);
		r = -ENOENT;
	}
	if (r < 0 && !*comm) {
		/* announced, and gone already: its samples will say who it was */
		free(e);
		return -ENOENT;
	}
	if (r < 0) {
		memset(&e->info, 0, sizeof(e->info));
		e->info.pid = pid;
		e->info.ns_pid = pid;
		snprintf(e->info.comm, sizeof(e->info.comm), "%s", comm);
		e->info.runtime = RUNTIME_UNKNOWN;
		/* its start, from its samples, keeps it apart from a later
		 * process on its PID */
		if (boot_start && collector__start_time_of_boot(c->proc_root, boot_start,
								&e->info.start_time_ns) < 0)
			e->info.start_time_ns = 0;
		c->unreadable++;
	} else if (e->info.runtime == RUNTIME_NATIVE) {
		e->info.runtime = collector__runtime(c->proc_root, pid, e->info.exe);
	}
	r = resolve_service(e);
	if (r < 0) {
		proc_entry_free(e);
		return r;
	}
	e->checked_drain = c->drain;
	c->seen++;
	*ret = e;
	return 0;
}

/* Unlinks the process at *link and forgets it everywhere: its metadata and,
 * unless another process on its PID is still known (a reused PID), its
 * symbols and the sampler's note that it was announced. */
static void drop_proc(struct collector *c, struct proc_entry **link)
{
	struct proc_entry *e = *link, *o;
	int32_t pid = e->info.pid;

	*link = e->next;
	proc_entry_free(e);
	c->n_procs--;
	for (o = c->procs[(uint32_t)pid % PROC_BUCKETS]; o && o->info.pid != pid; o = o->next)
		;
	if (!o) {
		collector_symbolizer__forget(c->symbols, pid);
		collector_sampler__forget(c->sampler, pid);
	}
}

/* Whether e is the process a sample of kernel start boot_start (0: unknown)
 * belongs to. An entry made without a start (announced) is matched by its
 * /proc start. */
static bool entry_matches(const struct proc_entry *e, uint64_t boot_start)
{
	if (!boot_start)
		return true;
	if (e->boot_start)
		return e->boot_start == boot_start;
	return !e->info.start_ticks || collector__same_start(e->info.start_ticks, boot_start);
}

/* The entry of pid, made (its /proc read) when missing. boot_start is the
 * sample's process start (0: unknown). A PID's processes each have an entry:
 * a sample of a later start than the PID's entries is a new process on a
 * reused PID, told at once (the PID's cached symbols are forgotten), and a
 * late sample of an earlier process, in the same drain, keeps to its own
 * entry; entries no longer seen are pruned. Without a start the newest entry
 * is taken, and its start time in /proc is checked every RECHECK_DRAINS
 * drains. */
static int lookup_proc(struct collector *c, int32_t pid, uint64_t boot_start, const char *comm,
		       struct proc_entry **ret)
{
	struct proc_entry **pp = &c->procs[(uint32_t)pid % PROC_BUCKETS], **link, **found = NULL;
	struct proc_entry *e = NULL;
	bool later = false; /* the PID names a later process than its entries */
	int r;

	for (link = pp; *link; link = &(*link)->next) {
		e = *link;
		if (e->info.pid != pid)
			continue;
		if (!entry_matches(e, boot_start)) {
			later = later || boot_start > e->boot_start;
			continue;
		}
		if (!found || e->boot_start > (*found)->boot_start)
			found = link;
	}
	e = found ? *found : NULL;
	if (e && e->info.start_time_ns && e->checked_drain + RECHECK_DRAINS <= c->drain) {
		int64_t start;

		e->checked_drain = c->drain;
		r = collector__start_time(c->proc_root, pid, &start);
		if (r == 0 && start != e->info.start_time_ns) {
			/* the PID names another process now */
			drop_proc(c, found);
			later = true;
			e = NULL;
		}
	}
	if (!e && later) {
		/* its cached symbols are the earlier process's */
		collector_symbolizer__forget(c->symbols, pid);
		collector_sampler__forget(c->sampler, pid);
		c->reused++;
	}
	if (!e) {
		r = proc_entry_new(c, pid, boot_start, comm, &e);
		if (r < 0)
			return r;
		e->next = *pp;
		*pp = e;
		c->n_procs++;
	}
	if (boot_start && !e->boot_start)
		e->boot_start = boot_start;
	e->seen_drain = c->drain;
	*ret = e;
	return 0;
}

/* Forgets processes that no drain has seen for FORGET_DRAINS drains. */
static void prune_procs(struct collector *c)
{
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		struct proc_entry **pp = &c->procs[b];

		while (*pp) {
			struct proc_entry *e = *pp;

			if (e->seen_drain + FORGET_DRAINS > c->drain)
				pp = &e->next;
			else
				drop_proc(c, pp);
		}
	}
}

static void lost_frame(struct frame *f, const char *name)
{
	f->kind = FRAME_UNKNOWN;
	f->name = name;
	f->module = COLLECTOR_UNKNOWN_MODULE;
	f->offset = 0;
}

static int on_sample(void *ctx, const struct collector_sample *s)
{
	struct drain_ctx *d = ctx;
	struct collector *c = d->c;
	struct collector_row row;
	struct proc_entry *e;
	size_t n = 0;
	int r;

	r = lookup_proc(c, s->pid, s->start, s->comm, &e);
	if (r < 0)
		return r;
	if (s->kstack_lost || s->ustack_lost)
		c->stack_lost += s->count;
	if (s->n_kips) {
		collector_symbolizer__kernel(c->symbols, s->kips, s->n_kips, c->frames);
		n = s->n_kips;
	}
	if (s->kstack_lost)
		lost_frame(&c->frames[n++], "[lost kernel stack]");
	if (s->n_uips) {
		/* -ENOENT: the process is gone; its frames are marked unknown */
		collector_symbolizer__user(c->symbols, s->pid, s->uips, s->n_uips, c->frames + n);
	}
	row.n_kernel = n;
	n += s->n_uips;
	if (s->ustack_lost)
		lost_frame(&c->frames[n++], "[lost user stack]");
	if (n == 0)
		/* a sample in user space with user stacks off, or a thread
		 * with no stack to show */
		lost_frame(&c->frames[n++], c->no_user ? "[user space]" : "[no stack]");

	row.process = &e->info;
	row.service = e->service;
	row.tid = s->tid;
	row.thread_pointer = s->thread_pointer;
	row.thread_comm = s->comm;
	row.second = d->second;
	row.frames = c->frames;
	row.n_frames = n;
	row.count = (int64_t)s->count;
	c->rows++;
	return d->fn(d->ctx, &row);
}

int collector__open(const struct collector_options *o, struct errbuf *err, struct collector **ret)
{
	struct collector_symbolizer_options so = o->symbols;
	struct collector *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->proc_root = strdup(o->proc_root ? o->proc_root : COLLECTOR_PROC_ROOT);
	if (!c->proc_root) {
		r = -ENOMEM;
		goto cleanup;
	}
	c->no_user = o->sampler.no_user;
	so.proc_root = c->proc_root;
	so.no_kernel = so.no_kernel || o->sampler.no_kernel;
	/* the symbolizer first: it fails for want of kallsyms access before
	 * anything is attached */
	r = collector_symbolizer__new(&so, err, &c->symbols);
	if (r < 0)
		goto cleanup;
	r = collector_sampler__open(&o->sampler, err, &c->sampler);
	if (r < 0)
		goto cleanup;
	*ret = c;
	c = NULL;
cleanup:
	collector__close(c);
	return r;
}

void collector__close(struct collector *c)
{
	if (!c)
		return;
	collector_sampler__close(c->sampler);
	collector_symbolizer__free(c->symbols);
	for (size_t b = 0; b < PROC_BUCKETS; b++) {
		while (c->procs[b]) {
			struct proc_entry *e = c->procs[b];

			c->procs[b] = e->next;
			proc_entry_free(e);
		}
	}
	free(c->proc_root);
	free(c);
}

int collector__drain(struct collector *c, int64_t second, collector_row_fn fn, void *ctx)
{
	struct drain_ctx d = {.c = c, .second = second, .fn = fn, .ctx = ctx};
	int r;

	c->drain++;
	r = collector_sampler__drain(c->sampler, on_sample, &d);
	/* strings handed to fn are no longer in use: the symbolizer may evict */
	collector_symbolizer__trim(c->symbols);
	prune_procs(c);
	return r;
}

int collector__fd(const struct collector *c)
{
	return collector_sampler__new_pids_fd(c->sampler);
}

/* Reads e's metadata again: a process announced again has exec'd another
 * program (or the kernel had forgotten it), so its comm, exe, command line,
 * runtime and service may be new. A process gone, or another one on the PID
 * by now, leaves e as it is. */
static int proc_entry_refresh(struct collector *c, struct proc_entry *e)
{
	struct collector_proc info;
	char *old_service = e->service;
	int r;

	r = collector__proc_read(c->proc_root, e->info.pid, &info);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;
	if (e->info.start_time_ns && info.start_time_ns != e->info.start_time_ns) {
		collector__proc_release(&info);
		return 0;
	}
	if (info.runtime == RUNTIME_NATIVE)
		info.runtime = collector__runtime(c->proc_root, info.pid, info.exe);
	collector__proc_release(&e->info);
	e->info = info;
	r = resolve_service(e);
	if (r < 0) {
		e->service = old_service;
		return r;
	}
	free(old_service);
	c->refreshed++;
	return 0;
}

static int on_new_pid(void *ctx, int32_t pid)
{
	struct collector *c = ctx;
	struct proc_entry *e;
	uint64_t seen = c->seen;
	int r;

	/* the metadata now, while /proc/PID is there */
	r = lookup_proc(c, pid, 0, "", &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (c->seen == seen) {
		/* known already: announced again after an exec */
		r = proc_entry_refresh(c, e);
		if (r < 0)
			return r;
	}
	/* the mappings read before are another program's, or none yet */
	collector_symbolizer__forget(c->symbols, pid);
	if (collector_symbolizer__prefetch(c->symbols, pid) == 0)
		c->prefetched++;
	return 0;
}

int collector__poll(struct collector *c)
{
	return collector_sampler__new_pids(c->sampler, on_new_pid, c);
}

void collector__stop(struct collector *c)
{
	collector_sampler__stop(c->sampler);
}

int collector__stats(const struct collector *c, struct collector_stats *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	r = collector_sampler__stats(c->sampler, &ret->sampler);
	if (r < 0)
		return r;
	collector_symbolizer__stats(c->symbols, &ret->symbols);
	ret->rows = c->rows;
	ret->processes_seen = c->seen;
	ret->processes_unreadable = c->unreadable;
	ret->processes_reused = c->reused;
	ret->processes_prefetched = c->prefetched;
	ret->processes_refreshed = c->refreshed;
	ret->samples_stack_lost = c->stack_lost;
	ret->processes = c->n_procs;
	return 0;
}

unsigned collector__freq(const struct collector *c)
{
	return collector_sampler__freq(c->sampler);
}

/* ---- runtime detection ----------------------------------------------------- */

/* A library that embeds a runtime into a native executable (uwsgi, a
 * Node embedder, a JNI launcher), by a mapped file's base name. */
static enum runtime runtime_of_maps(const char *proc_root, int32_t pid)
{
	char path[4096];
	struct dynbuf maps;
	struct errbuf err;
	enum runtime rt = RUNTIME_NATIVE;
	const char *p, *end;

	snprintf(path, sizeof(path), "%s/%d/maps", proc_root, pid);
	dynbuf__init(&maps, 0);
	if (util__read_file(path, MAPS_READ_MAX, &err, &maps) < 0)
		goto cleanup;
	for (p = maps.data, end = maps.data + maps.len; p < end && rt == RUNTIME_NATIVE;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *base;

		if (!nl)
			nl = end;
		for (base = nl; base > p && base[-1] != '/'; base--)
			;
		if (base > p) { /* a path */
			enum runtime lib = profile__runtime_of_library(base, (size_t)(nl - base));

			if (lib != RUNTIME_UNKNOWN)
				rt = lib;
		}
		p = nl + 1;
	}
cleanup:
	dynbuf__free(&maps);
	return rt;
}

/* Go's linker marks every binary with a .note.go.buildid section (and
 * .go.buildinfo since Go 1.13). */
static bool is_go_binary(const char *proc_root, int32_t pid)
{
	char path[4096];
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	bool go = false;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/exe", proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (elf_version(EV_CURRENT) == EV_NONE)
		goto cleanup;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx) != 0)
		goto cleanup;
	while (!go && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			break;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		go = name &&
		     (strcmp(name, ".note.go.buildid") == 0 || strcmp(name, ".go.buildinfo") == 0);
	}
cleanup:
	elf_end(elf);
	close(fd);
	return go;
}

enum runtime collector__runtime(const char *proc_root, int32_t pid, const char *exe)
{
	enum runtime rt = collector__runtime_of_exe(exe);

	if (rt != RUNTIME_NATIVE)
		return rt;
	rt = runtime_of_maps(proc_root, pid);
	if (rt != RUNTIME_NATIVE)
		return rt;
	return is_go_binary(proc_root, pid) ? RUNTIME_GO : RUNTIME_NATIVE;
}

const char *collector_unwind__end_name(enum collector_unwind_end e)
{
	static const char *const names[COLLECTOR_UNWIND_END_COUNT] = {
		[COLLECTOR_UNWIND_END_ROOT] = "root",	[COLLECTOR_UNWIND_END_NO_RULE] = "no_rule",
		[COLLECTOR_UNWIND_END_FAULT] = "fault", [COLLECTOR_UNWIND_END_BAD_CFA] = "bad_cfa",
		[COLLECTOR_UNWIND_END_DEPTH] = "depth",
	};

	return (unsigned)e < COLLECTOR_UNWIND_END_COUNT ? names[e] : NULL;
}

static const char *const unwind_modes[] = {
	[COLLECTOR_UNWIND_CFI] = "cfi",
	[COLLECTOR_UNWIND_FP] = "fp",
	[COLLECTOR_UNWIND_CFI_LOOP] = "cfi-loop",
};

int collector_unwind__mode_parse(const char *s, enum collector_unwind_mode *ret)
{
	for (size_t i = 0; i < sizeof(unwind_modes) / sizeof(unwind_modes[0]); i++) {
		if (s && strcmp(s, unwind_modes[i]) == 0) {
			*ret = (enum collector_unwind_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *collector_unwind__mode_name(enum collector_unwind_mode m)
{
	return (unsigned)m < sizeof(unwind_modes) / sizeof(unwind_modes[0]) ? unwind_modes[m] : "?";
}
