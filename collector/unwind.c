/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unwind rules in the kernel: for each process announced, the rules of
 * every executable file it maps (collector/cfi.c) go into the BPF maps the
 * sampling program unwinds user stacks with (bpf/profile.h, "unwinding user
 * stacks"), once per file whatever the number of processes mapping it.
 *
 * The rows of each file take a run of one array (first fit among the free
 * runs); a page index ((file, vaddr >> 16) -> run of rows) bounds the
 * program's binary search to one page's rows; and each process gets its
 * sorted executable mappings with the bias that turns an address into the
 * file's own. Each file counts the processes whose entry names it; when a
 * file's rows don't fit, the files no process names are unloaded, least
 * recently named first, until they do, and if need be the entries of
 * processes not sampled for a minute are taken back first. A file that
 * still doesn't fit (or whose rules can't be read) gets no rules: the
 * program walks frame pointers there. The vDSO's rules come from braid's
 * own image. docs/unwind.md, "In the kernel".
 */
#include "collector/collector.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profile.h"

#define UNWIND_MAPS_READ_MAX (4u << 20) /* bytes of /proc/PID/maps */
#define UNWIND_MAX_SEGMENTS  16		/* PT_LOAD segments kept per file */
#define UNWIND_PAGE	     (1ull << BRAID_UNWIND_PAGE_SHIFT)
#define UNWIND_MAX_VDSO	     (1u << 20) /* bytes of the vDSO's mapping */
/* a process not sampled for this long gives its entry back when room is needed */
#define UNWIND_IDLE_NS (60ull * 1000000000ull)

struct unwind_segment {
	uint64_t offset, vaddr, filesz;
	bool exec;
};

/* A file seen: loaded (its rules in the maps) or not (frame pointers). */
struct unwind_file {
	uint64_t id;
	bool has_rules;
	bool unreadable;	/* not opened, not ELF, malformed rules: not tried again */
	uint64_t no_room_at;	/* u->room_events when its rules last didn't fit */
	uint32_t first, n_rows; /* its rows: unwind_rows[first, first + n_rows) */
	uint32_t n_pages;
	struct braid_unwind_page_key *page_keys; /* its entries in unwind_pages */
	uint32_t users;				 /* process entries naming it */
	uint64_t last_used;			 /* u->tick when last named */
	size_t n_segments;
	struct unwind_segment segments[UNWIND_MAX_SEGMENTS];
};

/* The files a process's entry names, each once. */
struct unwind_proc_files {
	uint32_t n;
	uint64_t ids[BRAID_UNWIND_MAX_MAPPINGS];
};

/* A free run of unwind_rows. */
struct unwind_extent {
	uint32_t first, count;
};

struct collector_unwind {
	struct collector_unwind_maps maps;
	char *proc_root;
	struct unwind_file *files; /* sorted by id */
	size_t n_files, cap_files;
	struct unwind_extent *free; /* sorted by first, none adjacent */
	size_t n_free, cap_free;
	uint32_t n_rows;  /* rows in use in unwind_rows */
	uint32_t n_pages; /* entries in unwind_pages */
	uint64_t tick;	  /* one per process added */
	/* files unloaded or left unused so far: a file that didn't fit is
	 * tried again once room may be made */
	uint64_t room_events;
	struct ptrmap procs; /* pid -> struct unwind_proc_files */
	uint64_t vdso_len;   /* the vDSO's mapping length; 0: its rules aren't loaded */
	struct collector_unwind_stats stats;
};

static int load_vdso(struct collector_unwind *u);

int collector_unwind__new(const struct collector_unwind_maps *maps, const char *proc_root,
			  struct collector_unwind **ret)
{
	struct collector_unwind *u;

	if (!maps->rows)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->maps = *maps;
	u->proc_root = strdup(proc_root ? proc_root : COLLECTOR_PROC_ROOT);
	u->free = calloc(1, sizeof(*u->free));
	if (!u->proc_root || !u->free) {
		collector_unwind__free(u);
		return -ENOMEM;
	}
	u->free[0] = (struct unwind_extent){0, maps->max_rows};
	u->n_free = u->cap_free = 1;
	if (load_vdso(u) < 0) {
		collector_unwind__free(u);
		return -ENOMEM;
	}
	*ret = u;
	return 0;
}

void collector_unwind__free(struct collector_unwind *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_files; i++)
		free(u->files[i].page_keys);
	for (size_t i = 0; i < u->procs.n; i++)
		free(u->procs.v[i].val);
	ptrmap__free(&u->procs);
	free(u->proc_root);
	free(u->files);
	free(u->free);
	free(u);
}

/* ---- the free runs of unwind_rows ---------------------------------------- */

/* Takes n rows, first fit; false when no free run is long enough. */
static bool rows_alloc(struct collector_unwind *u, uint32_t n, uint32_t *ret)
{
	for (size_t i = 0; i < u->n_free; i++) {
		struct unwind_extent *e = &u->free[i];

		if (e->count < n)
			continue;
		*ret = e->first;
		e->first += n;
		e->count -= n;
		if (e->count == 0) {
			memmove(e, e + 1, (u->n_free - i - 1) * sizeof(*e));
			u->n_free--;
		}
		u->n_rows += n;
		return true;
	}
	return false;
}

/* Gives rows [first, first + n) back, joining its neighbours. */
static int rows_release(struct collector_unwind *u, uint32_t first, uint32_t n)
{
	size_t at = 0;

	while (at < u->n_free && u->free[at].first < first)
		at++;
	u->n_rows -= n;
	if (at > 0 && u->free[at - 1].first + u->free[at - 1].count == first) {
		u->free[at - 1].count += n;
		if (at < u->n_free && first + n == u->free[at].first) {
			u->free[at - 1].count += u->free[at].count;
			memmove(&u->free[at], &u->free[at + 1],
				(u->n_free - at - 1) * sizeof(*u->free));
			u->n_free--;
		}
		return 0;
	}
	if (at < u->n_free && first + n == u->free[at].first) {
		u->free[at].first = first;
		u->free[at].count += n;
		return 0;
	}
	if (u->n_free == u->cap_free) {
		size_t c = 2 * u->cap_free;
		struct unwind_extent *p = realloc(u->free, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		u->free = p;
		u->cap_free = c;
	}
	memmove(&u->free[at + 1], &u->free[at], (u->n_free - at) * sizeof(*u->free));
	u->free[at] = (struct unwind_extent){first, n};
	u->n_free++;
	return 0;
}

/* Takes f's rules out of the maps: its pages first, so that the program
 * stops reaching its rows before they are given to another file (a search
 * already past the page lookup may read the new rows: one sample unwound
 * wrong at worst). */
static int unload_file(struct collector_unwind *u, struct unwind_file *f)
{
	int r;

	for (uint32_t i = 0; i < f->n_pages; i++)
		bpf_map_delete_elem(u->maps.pages_fd, &f->page_keys[i]); /* -ENOENT is as good */
	u->n_pages -= f->n_pages;
	r = rows_release(u, f->first, f->n_rows);
	free(f->page_keys);
	f->page_keys = NULL;
	f->n_pages = 0;
	f->n_rows = 0;
	f->has_rules = false;
	u->room_events++;
	u->stats.files_evicted++;
	u->stats.files_loaded--;
	return r;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns's clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void use_files(struct collector_unwind *u, const struct unwind_proc_files *pf, int d);

/* Takes back the entries of the processes not sampled for UNWIND_IDLE_NS
 * (the program stamps last_ns): their files no longer count as named, and
 * may be unloaded. An entry taken back keeps its start and has no mappings,
 * so that the process's next sample asks for it again. Returns how many. */
static int take_back_idle(struct collector_unwind *u)
{
	struct braid_unwind_proc *p = malloc(sizeof(*p));
	uint64_t now = monotonic_ns();
	int n = 0;

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < u->procs.n;) {
		uint32_t pid = (uint32_t)u->procs.v[i].a;
		struct unwind_proc_files *pf = u->procs.v[i].val;

		if (bpf_map_lookup_elem(u->maps.procs_fd, &pid, p) < 0 || p->last_ns > now ||
		    now - p->last_ns < UNWIND_IDLE_NS) {
			i++;
			continue;
		}
		p->n = 0;
		if (bpf_map_update_elem(u->maps.procs_fd, &pid, p, BPF_EXIST) < 0) {
			i++;
			continue;
		}
		ptrmap__del(&u->procs, pid, 0); /* the last entry moves to i */
		use_files(u, pf, -1);
		free(pf);
		u->stats.procs_idle++;
		n++;
	}
	free(p);
	return n;
}

/* Unloads the loaded file that no process names and that was named
 * longest ago, other than keep; false when there is none. */
static int evict_one(struct collector_unwind *u, const struct unwind_file *keep)
{
	struct unwind_file *victim = NULL;

	for (size_t i = 0; i < u->n_files; i++) {
		struct unwind_file *f = &u->files[i];

		if (f != keep && f->has_rules && f->users == 0 &&
		    (!victim || f->last_used < victim->last_used))
			victim = f;
	}
	if (!victim)
		return 0;
	return unload_file(u, victim) < 0 ? -ENOMEM : 1;
}

/* A file's id: its device and inode, mixed (splitmix64's finalizer); never
 * 0, which the program reads as "no rules". */
static uint64_t file_id(uint64_t dev, uint64_t ino)
{
	uint64_t h = dev * 0x9e3779b97f4a7c15ULL ^ ino;

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

/* The vDSO's id: no file has inode 0. */
#define VDSO_ID file_id(0, 0)

/* The file of id, or where it goes (*ret_at) when absent. */
static struct unwind_file *find_file(struct collector_unwind *u, uint64_t id, size_t *ret_at)
{
	size_t lo = 0, hi = u->n_files;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (u->files[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_at = lo;
	return lo < u->n_files && u->files[lo].id == id ? &u->files[lo] : NULL;
}

/* Reads the PT_LOAD segments of fd (or of image[0, len)) into f. */
static int read_segments(int fd, void *image, size_t len, struct unwind_file *f)
{
	Elf *elf = NULL;
	size_t n;
	int r = -ENOEXEC;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	/* an image is the caller's copy: libelf may convert it in place */
	elf = image ? elf_memory((char *)image, len) : elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &n) != 0)
		goto cleanup;
	for (size_t i = 0; i < n && f->n_segments < UNWIND_MAX_SEGMENTS; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			goto cleanup;
		if (ph.p_type != PT_LOAD)
			continue;
		f->segments[f->n_segments++] = (struct unwind_segment){
			.offset = ph.p_offset,
			.vaddr = ph.p_vaddr,
			.filesz = ph.p_filesz,
			.exec = ph.p_flags & PF_X,
		};
	}
	r = 0;
cleanup:
	elf_end(elf);
	return r;
}

/* Writes rows[0, n) at unwind_rows[first, first + n), through the array's
 * mapping: an update a row at a time (or a batch of them) costs a system
 * call's copy and checks per row, a third of the loader's time. The
 * program reaches the rows only once their pages are written, after this
 * (a system call: a full barrier). */
static void put_rows(struct collector_unwind *u, uint32_t first,
		     const struct braid_unwind_row *rows, uint32_t n)
{
	memcpy((struct braid_unwind_row *)u->maps.rows + first, rows, (size_t)n * sizeof(*rows));
}

/* Packs a table's rows (with a NONE row first at the page start of the
 * first, so that every page from there holds a row at its first byte).
 * Returns the number of rows; *ret is freed by the caller. */
static int pack_rows(struct collector_unwind *u, const struct collector_cfi *t,
		     struct braid_unwind_row **ret, uint64_t **ret_vaddrs)
{
	const struct collector_cfi_row *rows = collector_cfi__rows(t);
	size_t n = collector_cfi__count(t);
	struct braid_unwind_row *out;
	uint64_t *vaddrs;

	if (n == 0)
		return 0;
	out = calloc(n + 1, sizeof(*out));
	vaddrs = calloc(n + 1, sizeof(*vaddrs));
	if (!out || !vaddrs) {
		free(out);
		free(vaddrs);
		return -ENOMEM;
	}
	vaddrs[0] = rows[0].vaddr & ~(UNWIND_PAGE - 1);
	out[0].kind = BRAID_UNWIND_NONE;
	for (size_t i = 0; i < n; i++) {
		struct braid_unwind_row *o = &out[i + 1];
		int32_t rbp = rows[i].rbp_offset;

		vaddrs[i + 1] = rows[i].vaddr;
		o->vaddr_lo = (uint16_t)rows[i].vaddr;
		o->kind = rows[i].kind;
		o->cfa_offset = rows[i].cfa_offset;
		/* rbp is saved in an 8-byte slot: its offset is a multiple of 8 */
		if (rbp % 8 != 0 || rbp / 8 < INT8_MIN || rbp / 8 > INT8_MAX) {
			o->kind = BRAID_UNWIND_NONE;
			u->stats.rows_unfit++;
		} else {
			o->rbp_offset8 = (int8_t)(rbp / 8);
		}
	}
	*ret = out;
	*ret_vaddrs = vaddrs;
	return (int)(n + 1);
}

/* The page runs of n rows (vaddrs sorted, the first at a page start):
 * each page from the first row's to the last row's that holds a rule.
 * Returns the number of pages, -E2BIG past max (a hostile file's one rule
 * may span terabytes); *ret_keys and *ret_pages are the caller's. */
static int make_pages(uint64_t fid, const struct braid_unwind_row *rows, const uint64_t *vaddrs,
		      size_t n, uint32_t first, size_t max, struct braid_unwind_page_key **ret_keys,
		      struct braid_unwind_page **ret_pages)
{
	struct braid_unwind_page_key *keys = NULL;
	struct braid_unwind_page *pages = NULL;
	size_t n_pages = 0, cap = 0, i = 0;
	uint64_t page = vaddrs[0] >> BRAID_UNWIND_PAGE_SHIFT;
	uint64_t last = vaddrs[n - 1] >> BRAID_UNWIND_PAGE_SHIFT;

	while (page <= last) {
		uint64_t base = page << BRAID_UNWIND_PAGE_SHIFT;
		size_t j;

		while (i + 1 < n && vaddrs[i + 1] <= base)
			i++;
		for (j = i; j + 1 < n && vaddrs[j + 1] < base + UNWIND_PAGE; j++)
			;
		if (j > i || rows[i].kind != BRAID_UNWIND_NONE) {
			if (n_pages >= max) {
				free(keys);
				free(pages);
				return -E2BIG;
			}
			if (n_pages == cap) {
				size_t c = cap ? 2 * cap : 64;
				void *k = realloc(keys, c * sizeof(*keys));

				if (k)
					keys = k;
				k = k ? realloc(pages, c * sizeof(*pages)) : NULL;
				if (!k) {
					free(keys);
					free(pages);
					return -ENOMEM;
				}
				pages = k;
				cap = c;
			}
			keys[n_pages] = (struct braid_unwind_page_key){fid, page};
			pages[n_pages] = (struct braid_unwind_page){(uint32_t)(first + i),
								    (uint32_t)(j - i + 1)};
			n_pages++;
			page++;
		} else if (i + 1 < n) {
			/* a gap without rules: on to the page of the next row */
			page = vaddrs[i + 1] >> BRAID_UNWIND_PAGE_SHIFT;
		} else {
			break;
		}
	}
	*ret_keys = keys;
	*ret_pages = pages;
	return (int)n_pages;
}

/* Puts the rules t of f in the maps, if they fit, unloading files no
 * process names to make room; f->has_rules says whether they went in. */
static int load_rules(struct collector_unwind *u, const struct collector_cfi *t,
		      struct unwind_file *f)
{
	struct braid_unwind_row *rows = NULL;
	struct braid_unwind_page_key *keys = NULL;
	struct braid_unwind_page *pages = NULL;
	uint64_t *vaddrs = NULL;
	uint32_t first = 0;
	int n, n_pages = 0, r, done = 0;
	bool have_rows = false, took_back = false;

	n = pack_rows(u, t, &rows, &vaddrs);
	if (n <= 0) {
		f->unreadable = n == 0; /* no rules at all: nothing to try again */
		r = n;
		goto cleanup;
	}
	n_pages = make_pages(f->id, rows, vaddrs, (size_t)n, 0, u->maps.max_pages, &keys, &pages);
	if (n_pages < 0 && n_pages != -E2BIG) {
		r = n_pages;
		goto cleanup;
	}
	if (n_pages < 0 || (uint32_t)n > u->maps.max_rows) {
		/* more than the maps hold even empty */
		u->stats.files_no_room++;
		f->unreadable = true;
		r = 0;
		goto cleanup;
	}
	/* room, if need be by unloading what no process names */
	while (u->n_pages + (uint32_t)n_pages > u->maps.max_pages ||
	       !(have_rows = rows_alloc(u, (uint32_t)n, &first))) {
		r = evict_one(u, f);
		if (r == 0 && !took_back) {
			/* nothing unused: free what idle processes name, once */
			took_back = true;
			r = take_back_idle(u);
			if (r > 0)
				continue;
		}
		if (r <= 0) {
			u->stats.files_no_room++;
			f->no_room_at = u->room_events;
			goto cleanup;
		}
	}
	for (int i = 0; i < n_pages; i++)
		pages[i].first += first;
	put_rows(u, first, rows, (uint32_t)n);
	r = 0;
	for (; r == 0 && done < n_pages; done++)
		if (bpf_map_update_elem(u->maps.pages_fd, &keys[done], &pages[done], BPF_ANY) < 0)
			r = -errno;
	if (r < 0) {
		/* a map that refuses an entry costs this file its rules */
		for (int i = 0; i < done; i++)
			bpf_map_delete_elem(u->maps.pages_fd, &keys[i]);
		u->stats.files_no_room++;
		f->no_room_at = u->room_events;
		goto cleanup;
	}
	have_rows = false;
	f->first = first;
	f->n_rows = (uint32_t)n;
	f->n_pages = (uint32_t)n_pages;
	f->page_keys = keys;
	keys = NULL;
	f->has_rules = true;
	u->n_pages += (uint32_t)n_pages;
	u->stats.files_loaded++;
	r = 0;
cleanup:
	if (have_rows && rows_release(u, first, (uint32_t)n) < 0)
		r = -ENOMEM;
	free(rows);
	free(vaddrs);
	free(keys);
	free(pages);
	return r == -ENOMEM ? r : 0;
}

/* Forgets the files no process names and that have no rules in the maps,
 * to make room in u->files. */
static void forget_unused_files(struct collector_unwind *u)
{
	size_t k = 0;

	for (size_t i = 0; i < u->n_files; i++) {
		if (u->files[i].users == 0 && !u->files[i].has_rules)
			continue; /* no page_keys: nothing to free */
		u->files[k++] = u->files[i];
	}
	u->n_files = k;
}

/* A new entry for the file of id in u->files (pointers into it move); NULL
 * when the table is full of files in use. */
static int new_file(struct collector_unwind *u, uint64_t id, struct unwind_file **ret)
{
	struct unwind_file *f;
	size_t at;

	*ret = NULL;
	if (u->n_files >= COLLECTOR_UNWIND_MAX_FILES)
		forget_unused_files(u);
	if (u->n_files >= COLLECTOR_UNWIND_MAX_FILES) {
		u->stats.files_no_room++;
		return 0;
	}
	if (u->n_files == u->cap_files) {
		size_t c = u->cap_files ? 2 * u->cap_files : 64;
		struct unwind_file *p = realloc(u->files, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		u->files = p;
		u->cap_files = c;
	}
	find_file(u, id, &at);
	memmove(&u->files[at + 1], &u->files[at], (u->n_files - at) * sizeof(*u->files));
	u->n_files++;
	f = &u->files[at];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->no_room_at = UINT64_MAX;
	*ret = f;
	return 0;
}

/* The file of a mapping, read and loaded the first time it is seen, and
 * again when it was unloaded or didn't fit and room was made since. */
static int get_file(struct collector_unwind *u, int32_t pid, uint64_t start, uint64_t end,
		    uint64_t dev, uint64_t ino, const char *path, struct unwind_file **ret)
{
	uint64_t id = file_id(dev, ino);
	struct collector_cfi *t = NULL;
	struct unwind_file *f;
	struct errbuf err;
	char name[4096 + 64];
	size_t at;
	int fd, r;

	f = find_file(u, id, &at);
	if (f && !f->has_rules && !f->unreadable && f->no_room_at == u->room_events) {
		/* it didn't fit and no file went unused since: unless processes
		 * went idle meanwhile, it won't fit now */
		r = take_back_idle(u);
		if (r < 0)
			return r;
	}
	if (f && (f->has_rules || f->unreadable || f->no_room_at == u->room_events)) {
		*ret = f;
		return 0;
	}
	if (!f) {
		r = new_file(u, id, &f);
		if (r < 0 || !f) {
			*ret = NULL;
			return r;
		}
	}
	f->n_segments = 0;

	/* map_files reaches deleted files and other mount namespaces' (it
	 * needs CAP_SYS_ADMIN); the root link does without */
	snprintf(name, sizeof(name), "%s/%d/map_files/%" PRIx64 "-%" PRIx64, u->proc_root, pid,
		 start, end);
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(name, sizeof(name), "%s/%d/root%s", u->proc_root, pid, path);
		fd = open(name, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		/* the process went (a short-lived one often has by now), or
		 * this one can't be opened: the next process mapping the file
		 * tries again; only what the file holds marks it unreadable */
		u->stats.files_unopened++;
		*ret = f;
		return 0;
	}
	r = read_segments(fd, NULL, 0, f);
	if (r == 0)
		r = collector_cfi__read(fd, path, &err, &t);
	if (r == 0) {
		r = load_rules(u, t, f);
	} else if (r != -ENOMEM) {
		u->stats.files_unreadable++;
		f->unreadable = true;
		r = 0;
	}
	collector_cfi__free(t);
	close(fd);
	*ret = f;
	return r;
}

/* The bias of a mapping of file offset pgoff at start: vaddr = ip - bias,
 * through the executable PT_LOAD segment its file range overlaps. */
static bool mapping_bias(const struct unwind_file *f, uint64_t start, uint64_t end, uint64_t pgoff,
			 uint64_t *ret)
{
	const struct unwind_segment *best = NULL;

	for (size_t i = 0; i < f->n_segments; i++) {
		const struct unwind_segment *s = &f->segments[i];

		if (s->offset + s->filesz <= pgoff || s->offset >= pgoff + (end - start))
			continue;
		if (!best || (s->exec && !best->exec))
			best = s;
	}
	if (!best)
		return false;
	/* collector_elf__vaddr: vaddr = (ip - start + pgoff) - p_offset + p_vaddr */
	*ret = start - pgoff + best->offset - best->vaddr;
	return true;
}

/* The vDSO's rules: the kernel maps one image into every 64-bit process,
 * so this process's own, read from memory, serves them all. Loaded first
 * and never unloaded (it counts as in use). No vDSO, or one without rules,
 * leaves its frames to frame pointers, as before. */
static int load_vdso(struct collector_unwind *u)
{
	const void *base;
	uint64_t len = collector__own_vdso(&base);
	struct collector_cfi *t = NULL;
	struct unwind_file *f = NULL;
	struct errbuf err;
	void *copy;
	int r;

	if (!len || len > UNWIND_MAX_VDSO)
		return 0;
	r = new_file(u, VDSO_ID, &f);
	if (r < 0 || !f)
		return r;
	/* libelf may convert an image in place: never the vDSO itself */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, base, len);
	r = read_segments(-1, copy, len, f);
	free(copy);
	if (r == 0)
		r = collector_cfi__read_memory(base, len, "[vdso]", &err, &t);
	if (r == 0)
		r = load_rules(u, t, f);
	collector_cfi__free(t);
	if (r == -ENOMEM)
		return r;
	if (f->has_rules) {
		f->users = 1;
		u->vdso_len = len;
	} else {
		f->unreadable = true;
	}
	return 0;
}

/* Counts a process's entry naming the files of ids, or no longer (d = -1). */
static void use_files(struct collector_unwind *u, const struct unwind_proc_files *pf, int d)
{
	for (uint32_t i = 0; pf && i < pf->n; i++) {
		size_t at;
		struct unwind_file *f = find_file(u, pf->ids[i], &at);

		if (!f)
			continue;
		if (d > 0) {
			f->users++;
			f->last_used = u->tick;
		} else if (f->users > 0 && --f->users == 0) {
			u->room_events++;
		}
	}
}

/* Adds id to pf once, counting its use at once: a file this process maps
 * is not unloaded to make room for the next one it maps. */
static void add_file(struct collector_unwind *u, struct unwind_proc_files *pf, uint64_t id)
{
	struct unwind_proc_files one = {.n = 1, .ids = {id}};

	for (uint32_t i = 0; i < pf->n; i++)
		if (pf->ids[i] == id)
			return;
	pf->ids[pf->n++] = id;
	use_files(u, &one, 1);
}

int collector_unwind__add_process(struct collector_unwind *u, int32_t pid)
{
	struct braid_unwind_proc *proc = NULL;
	struct unwind_proc_files *files = NULL, *old;
	struct dynbuf maps;
	struct errbuf err;
	char path[256];
	uint32_t key = (uint32_t)pid;
	const char *p, *end;
	int64_t start_ns;
	uint64_t ticks, smin, smax;
	int r;

	if (!u)
		return 0;
	dynbuf__init(&maps, 0);
	u->tick++;
	/* the process these mappings are of: read before them, so that a PID
	 * reused in between gives mappings the program won't use */
	r = collector__start_ticks(u->proc_root, pid, &start_ns, &ticks);
	if (r < 0) {
		r = r == -ENOMEM ? r : 0; /* gone already */
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s/%d/maps", u->proc_root, pid);
	r = util__read_file(path, UNWIND_MAPS_READ_MAX, &err, &maps);
	if (r < 0) {
		r = r == -ENOMEM ? r : 0; /* gone already */
		goto cleanup;
	}
	proc = calloc(1, sizeof(*proc));
	files = calloc(1, sizeof(*files));
	if (!proc || !files) {
		r = -ENOMEM;
		goto cleanup;
	}
	if (collector__start_boot_range(ticks, &smin, &smax)) {
		proc->start_min = smin;
		proc->start_max = smax;
	} else {
		proc->start_max = UINT64_MAX; /* can't tell: any */
	}
	proc->last_ns = monotonic_ns(); /* not idle before its time */
	for (p = maps.data, end = maps.data + maps.len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[4096 + 128], perms[8], *file;
		unsigned long long start, stop, off, ino;
		unsigned maj, min;
		struct unwind_file *f;
		uint64_t bias;
		bool vdso;
		int at = 0;

		if (!nl)
			nl = end;
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		p = nl + 1;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &stop, perms, &off,
			   &maj, &min, &ino, &at) < 7 ||
		    at == 0 || !strchr(perms, 'x'))
			continue;
		file = line + at;
		vdso = ino == 0 && strcmp(file, "[vdso]") == 0;
		/* a 32-bit process's vDSO is another image */
		if ((ino == 0 || file[0] != '/') && !(vdso && stop - start == u->vdso_len))
			continue;
		if (proc->n >= BRAID_UNWIND_MAX_MAPPINGS) {
			u->stats.mappings_dropped++;
			continue;
		}
		if (vdso) {
			size_t where;

			f = find_file(u, VDSO_ID, &where);
		} else {
			r = get_file(u, pid, start, stop, makedev(maj, min), ino, file, &f);
			if (r < 0)
				goto cleanup;
		}
		if (!f || !f->has_rules || !mapping_bias(f, start, stop, off, &bias))
			continue;
		proc->m[proc->n++] = (struct braid_unwind_mapping){start, stop, bias, f->id};
		add_file(u, files, f->id);
	}
	/* /proc/PID/maps is sorted by address, as the program's search needs */
	if (proc->n == 0) {
		/* nothing to unwind with: frame pointers, as before */
		collector_unwind__remove_process(u, pid);
		r = 0;
		goto cleanup;
	}
	if (bpf_map_update_elem(u->maps.procs_fd, &key, proc, BPF_ANY) < 0) {
		u->stats.procs_no_room++;
		collector_unwind__remove_process(u, pid);
		r = 0;
		goto cleanup;
	}
	old = ptrmap__get(&u->procs, key, 0);
	r = ptrmap__put(&u->procs, key, 0, files);
	if (r < 0) {
		/* the entry stays, its files uncounted: they may be unloaded */
		goto cleanup;
	}
	files = NULL;
	use_files(u, old, -1);
	free(old);
	u->stats.procs_added++;
	r = 0;
cleanup:
	use_files(u, files, -1); /* not kept */
	free(files);
	free(proc);
	dynbuf__free(&maps);
	return r;
}

void collector_unwind__remove_process(struct collector_unwind *u, int32_t pid)
{
	uint32_t key = (uint32_t)pid;
	struct unwind_proc_files *pf;

	if (!u)
		return;
	bpf_map_delete_elem(u->maps.procs_fd, &key); /* -ENOENT is as good */
	pf = ptrmap__get(&u->procs, key, 0);
	if (!pf)
		return;
	ptrmap__del(&u->procs, key, 0);
	use_files(u, pf, -1);
	free(pf);
}

void collector_unwind__stats(const struct collector_unwind *u, struct collector_unwind_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!u)
		return;
	*ret = u->stats;
	ret->files = u->n_files;
	ret->rows = u->n_rows;
	ret->pages = u->n_pages;
	ret->user_bytes = sizeof(*u) + u->cap_files * sizeof(*u->files) +
			  u->cap_free * sizeof(*u->free) + ptrmap__bytes(&u->procs) +
			  u->procs.n * sizeof(struct unwind_proc_files);
	for (size_t i = 0; i < u->n_files; i++)
		ret->user_bytes += u->files[i].n_pages * sizeof(*u->files[i].page_keys);
}
