/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/symbolize.c: sampled addresses to frames. Kernel addresses go
 * through kallsyms; user addresses through the process's executable
 * mappings (PROC_ROOT/PID/maps, cached per process) to the ELF file they
 * map (cached by device and inode and shared by build id, bounded in bytes)
 * or, for anonymous memory, to the process's perf map. Also C++ and legacy
 * Rust demangling, through libstdc++'s __cxa_demangle. A stripped file's
 * missing symbols come from its separate debug file (by build id, then by
 * .gnu_debuglink) or else from its MiniDebugInfo.
 *
 * Lifetimes: every string handed out in a frame stays valid until the next
 * trim. So nothing is freed between trims: maps that are re-read, perf
 * maps that are replaced and processes that are forgotten wait on lists
 * that the next trim frees, and ELF entries are only evicted there.
 */
#define _GNU_SOURCE /* memrchr */
#include "collector/collector.h"

#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#include "util/util.h"

/* libstdc++'s demangler (the C++ ABI's): declared here so that braid stays
 * a C program that only links libstdc++. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define SYM_MAX_STATUS	  (64u << 10) /* bytes of /proc/PID/status read */
#define SYM_MAX_VDSO	  (1u << 20)  /* bytes of a vDSO image */
#define SYM_POOL_MIN	  4096u	      /* first chunk of demangled names */
#define SYM_POOL_MAX	  (64u << 10) /* chunks grow up to this */
#define SYM_DELETED	  " (deleted)"
#define SYM_RUST_HASH_LEN 19	      /* "::h" and 16 hex digits */
#define TRIM_ALIVE_CHECKS 64	      /* processes checked for exit per trim */
#define SYM_CRC_CHUNK	  (64u << 10) /* bytes read at a time for a CRC32 */

/* ---- demangling --------------------------------------------------------- */

/* Cuts a legacy Rust symbol's hash ("::h0123456789abcdef"), the mark that
 * tells it from a C++ name. */
static bool strip_rust_hash(char *s)
{
	size_t len = strlen(s), i;
	char *h;

	if (len <= SYM_RUST_HASH_LEN)
		return false;
	h = s + len - SYM_RUST_HASH_LEN;
	if (memcmp(h, "::h", 3) != 0)
		return false;
	for (i = 3; i < SYM_RUST_HASH_LEN; i++)
		if (!isxdigit((unsigned char)h[i]))
			return false;
	*h = '\0';
	return true;
}

/* Decodes legacy Rust's escapes in place ("$LT$" '<', "$u20$" ' ', ".."
 * "::", a component's leading "_$" '$'), as rustc-demangle does. The
 * result is never longer. */
static void rust_unescape(char *s)
{
	static const struct {
		const char *esc;
		char c;
	} table[] = {
		{"$SP$", '@'}, {"$BP$", '*'}, {"$RF$", '&'}, {"$LT$", '<'},
		{"$GT$", '>'}, {"$LP$", '('}, {"$RP$", ')'}, {"$C$", ','},
	};
	char *r = s, *w = s;
	bool component = true;

	while (*r) {
		size_t i;

		if (component && r[0] == '_' && r[1] == '$')
			r++;
		component = false;
		if ((r[0] == '.' && r[1] == '.') || (r[0] == ':' && r[1] == ':')) {
			*w++ = ':';
			*w++ = ':';
			r += 2;
			component = true;
			continue;
		}
		if (*r == '$') {
			for (i = 0; i < UTIL_ARRAY_SIZE(table); i++) {
				size_t n = strlen(table[i].esc);

				if (strncmp(r, table[i].esc, n) == 0) {
					*w++ = table[i].c;
					r += n;
					break;
				}
			}
			if (i < UTIL_ARRAY_SIZE(table))
				continue;
			/* "$uXX$": a character by its hex code */
			if (r[1] == 'u' && isxdigit((unsigned char)r[2]) &&
			    isxdigit((unsigned char)r[3]) && r[4] == '$') {
				char hex[3] = {r[2], r[3], '\0'};
				long c = strtol(hex, NULL, 16);

				if (c >= 0x20 && c < 0x7f) {
					*w++ = (char)c;
					r += 5;
					continue;
				}
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* The length of s without GCC's clone suffixes (" [clone .cold]") and a
 * member function's qualifiers (" const", " &&", ...). */
static size_t trim_qualifiers(const char *s, size_t len)
{
	static const char *const quals[] = {
		" const", " volatile", " restrict", " noexcept", " transaction_safe", " &&", " &"};
	static const char clone[] = " [clone ";
	bool again = true;
	size_t i;

	while (again) {
		again = false;
		if (len && s[len - 1] == ']') {
			for (i = len - 1; i > 0; i--)
				if (s[i] == ' ' && len - i > sizeof(clone) - 1 &&
				    memcmp(s + i, clone, sizeof(clone) - 1) == 0)
					break;
			if (i > 0) {
				len = i;
				again = true;
				continue;
			}
		}
		for (i = 0; i < UTIL_ARRAY_SIZE(quals); i++) {
			if (has_suffix(s, len, quals[i])) {
				len -= strlen(quals[i]);
				again = true;
				break;
			}
		}
	}
	return len;
}

/* Drops a template function's return type ("void foo<int>" -> "foo<int>"):
 * what follows the last blank outside brackets, up to an operator's name
 * (after "operator" a blank or '<' is part of the name). */
static void strip_return_type(char *s, size_t len)
{
	size_t i, cut = 0;
	int depth = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (depth == 0 && c == 'o' && strncmp(s + i, "operator", 8) == 0 &&
		    (i == 0 || s[i - 1] == ':' || s[i - 1] == ' ') &&
		    !isalnum((unsigned char)s[i + 8]) && s[i + 8] != '_')
			break;
		if (c == '(' || c == '<' || c == '[' || c == '{')
			depth++;
		else if ((c == ')' || c == '>' || c == ']' || c == '}') && depth > 0)
			depth--;
		else if (c == ' ' && depth == 0)
			cut = i + 1;
	}
	if (cut)
		memmove(s, s + cut, len - cut + 1);
}

/* Cuts a demangled C++ function name to its qualified name: trailing
 * qualifiers and clone suffixes, then the parameter list (the parenthesis
 * matching the final one, counted backwards so that "operator()" and
 * "(anonymous namespace)" stay whole), then a return type. */
static void strip_params(char *s)
{
	size_t len = trim_qualifiers(s, strlen(s)), i;
	int depth = 0;

	if (!len || s[len - 1] != ')')
		return;
	for (i = len; i > 0; i--) {
		if (s[i - 1] == ')')
			depth++;
		else if (s[i - 1] == '(' && --depth == 0)
			break;
	}
	if (i <= 1)
		return; /* unbalanced, or nothing before the list */
	len = i - 1;
	s[len] = '\0';
	strip_return_type(s, len);
}

char *collector__demangle(const char *name, bool params)
{
	char *d;
	int status = 0;

	if (!name || name[0] != '_' || name[1] != 'Z')
		return NULL;
	d = __cxa_demangle(name, NULL, NULL, &status);
	if (!d || status != 0 || !*d) {
		free(d);
		return NULL;
	}
	if (strip_rust_hash(d))
		rust_unescape(d);
	else if (!params)
		strip_params(d);
	return d;
}

/* ---- state ------------------------------------------------------------------ */

enum map_kind {
	MAP_FILE,
	MAP_MEMFD,  /* "/memfd:NAME": a file if it is ELF, else JIT code */
	MAP_ANON,   /* anonymous memory: JIT code */
	MAP_VDSO,   /* "[vdso]" */
	MAP_PSEUDO, /* "[vsyscall]" and other "[...]" names */
};

enum map_state { MAP_UNRESOLVED, MAP_RESOLVED, MAP_FAILED };

/* Where an ELF file's names came from (collector_symbolizer_stats). */
enum sym_source {
	SYM_SOURCE_SYMTAB,
	SYM_SOURCE_DYNSYM,
	SYM_SOURCE_BUILD_ID,
	SYM_SOURCE_DEBUGLINK,
	SYM_SOURCE_MINIDEBUGINFO,
};

/* One executable mapping. */
struct sym_map {
	uint64_t start, end, pgoff, dev, ino;
	const char *path; /* as maps shows it, without " (deleted)" */
	struct sym_elf *elf;
	uint8_t kind, state;
	bool deleted;
};

/* One read of PROC_ROOT/PID/maps. */
struct sym_maps {
	struct sym_maps *next; /* on the list the next trim frees */
	struct sym_map *v;     /* by start */
	size_t n;
	char *paths;
};

struct sym_proc {
	int32_t pid, nspid;
	int64_t start_ns;      /* 0 if unknown */
	int64_t uid;	       /* effective uid, -1 if unknown */
	struct sym_maps *maps; /* NULL: maps could not be read */
	uint64_t maps_epoch;   /* the trim epoch of the last read */
	bool lost;	       /* counted in processes_lost */
	struct collector_perfmap *pm;
	uint64_t pm_off;       /* bytes of the perf map read */
	uint64_t pm_epoch;     /* the trim epoch of the last read */
	struct sym_proc *next; /* on the list the next trim frees */
};

/* Demangled names, packed in chunks that never move. */
struct pool_chunk {
	struct pool_chunk *next;
	size_t used, size;
	char data[];
};

/* One ELF file, for every process that maps it. */
struct sym_elf {
	struct collector_elf *elf; /* NULL: could not be read (forgotten at trim) */
	int32_t pid;		   /* the process it was read for */
	uint64_t used;		   /* tick of its last use */
	struct ptrmap names;	   /* raw name (pointer) -> demangled name */
	struct pool_chunk *pool;
	size_t pool_bytes;
	size_t bytes; /* what it holds, as counted in cache_bytes */
	bool doomed;  /* evicted by the trim under way */
};

struct collector_symbolizer {
	char *proc_root;
	size_t max_bytes;
	bool demangle_params;
	struct collector_ksyms *ksyms;
	struct ptrmap procs; /* pid -> sym_proc */
	struct sym_proc *dead;
	struct sym_maps *old_maps;
	struct collector_perfmap **old_pms;
	size_t n_old_pms, cap_old_pms;
	struct sym_elf **elfs;
	size_t n_elfs, cap_elfs;
	struct ptrmap by_file;	   /* (dev, inode) -> sym_elf */
	struct ptrmap by_build_id; /* (hash, length) -> sym_elf */
	struct sym_elf vdso;	   /* this process's vDSO: the same for all */
	uint64_t vdso_len;	   /* the length of its mapping */
	bool vdso_tried;
	uint64_t epoch, tick;
	size_t alive_cursor; /* where the next trim's liveness checks start */
	struct collector_symbolizer_stats stats;
};

static void frame_set(struct frame *f, enum frame_kind kind, const char *module, const char *name,
		      uint64_t offset)
{
	f->kind = kind;
	f->module = module;
	f->name = name;
	f->offset = offset;
}

/* Formats a path under proc_root; -ENAMETOOLONG if it does not fit. */
static int proc_path(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int proc_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- ELF entries ---------------------------------------------------------- */

static size_t entry_bytes(const struct sym_elf *e)
{
	return sizeof(*e) + (e->elf ? collector_elf__bytes(e->elf) : 0) + ptrmap__bytes(&e->names) +
	       e->pool_bytes;
}

static void entry_account(struct collector_symbolizer *s, struct sym_elf *e)
{
	size_t b = entry_bytes(e);

	s->stats.cache_bytes = s->stats.cache_bytes - e->bytes + b;
	e->bytes = b;
}

static void entry_release(struct sym_elf *e)
{
	struct pool_chunk *c, *next;

	for (c = e->pool; c; c = next) {
		next = c->next;
		free(c);
	}
	ptrmap__free(&e->names);
	collector_elf__free(e->elf);
}

static char *pool_copy(struct sym_elf *e, const char *s, size_t len)
{
	struct pool_chunk *c = e->pool;
	char *p;

	if (!c || c->size - c->used < len + 1) {
		size_t size = c ? c->size * 2 : SYM_POOL_MIN;

		if (size > SYM_POOL_MAX)
			size = SYM_POOL_MAX;
		if (size < len + 1)
			size = len + 1;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = e->pool;
		e->pool = c;
		e->pool_bytes += sizeof(*c) + size;
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

/* The frame name of a symbol of e: demangled once, then from the cache.
 * Falls back to the raw name (not mangled, can't be demangled, no memory). */
static const char *entry_name(struct collector_symbolizer *s, struct sym_elf *e, const char *raw)
{
	const char *name;
	char *d;

	if (raw[0] != '_' || raw[1] != 'Z')
		return raw;
	name = ptrmap__get(&e->names, (uintptr_t)raw, 0);
	if (name)
		return name;
	name = raw;
	d = collector__demangle(raw, s->demangle_params);
	if (d) {
		char *copy = pool_copy(e, d, strnlen(d, COLLECTOR_MAX_SYMBOL_NAME));

		if (copy)
			name = copy;
		free(d);
	}
	/* a failure only costs a second demangling */
	ptrmap__put(&e->names, (uintptr_t)raw, 0, (char *)name);
	if (e != &s->vdso)
		entry_account(s, e);
	return name;
}

static struct sym_elf *entry_new(struct collector_symbolizer *s, struct collector_elf *elf,
				 int32_t pid)
{
	struct sym_elf *e;

	if (s->n_elfs == s->cap_elfs) {
		size_t cap = s->cap_elfs ? s->cap_elfs * 2 : 16;
		struct sym_elf **v = realloc(s->elfs, cap * sizeof(*v));

		if (!v)
			return NULL;
		s->elfs = v;
		s->cap_elfs = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->elf = elf;
	e->pid = pid;
	e->used = ++s->tick;
	s->elfs[s->n_elfs++] = e;
	entry_account(s, e);
	return e;
}

static uint64_t build_id_key(const char *bid)
{
	return util__hash(bid, strlen(bid));
}

static struct sym_elf *find_build_id(const struct collector_symbolizer *s, const char *bid)
{
	struct sym_elf *e = ptrmap__get(&s->by_build_id, build_id_key(bid), strlen(bid));

	if (!e || !e->elf || strcmp(collector_elf__build_id(e->elf), bid) != 0)
		return NULL;
	return e;
}

/* Opens the file a mapping maps: through map_files (root only; works for
 * deleted files and in other mount namespaces) or else through the
 * process's root. The file must be the mapped one: a regular file with
 * the mapping's inode (and, when found by path, device: map_files is the
 * mapping's own file, and btrfs shows another device in maps than in
 * fstat). O_NONBLOCK: a FIFO a container put in the path can't hang us. */
static int open_mapped(const struct collector_symbolizer *s, const struct sym_proc *p,
		       const struct sym_map *m)
{
	char path[PATH_MAX];
	bool by_path = false;
	struct stat st;
	int fd = -1;

	if (proc_path(path, sizeof(path), "%s/%d/map_files/%" PRIx64 "-%" PRIx64, s->proc_root,
		      (int)p->pid, m->start, m->end) == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && m->kind == MAP_FILE && !m->deleted &&
	    proc_path(path, sizeof(path), "%s/%d/root%s", s->proc_root, (int)p->pid, m->path) ==
		    0) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		by_path = true;
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != m->ino ||
	    (by_path && (uint64_t)st.st_dev != m->dev)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Opens a file under the process's root (as the mapped file is opened by
 * path: a container's debug files are its own), a regular file only. */
static int open_in_root(const struct collector_symbolizer *s, const struct sym_proc *p,
			const char *path)
{
	char full[PATH_MAX];
	struct stat st;
	int fd;

	if (proc_path(full, sizeof(full), "%s/%d/root%s", s->proc_root, (int)p->pid, path) < 0)
		return -ENAMETOOLONG;
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* The CRC32 of a whole file (what .gnu_debuglink records), for files of
 * at most COLLECTOR_MAX_DEBUG_FILE bytes. */
static int file_crc32(int fd, uint32_t *ret)
{
	unsigned char *buf;
	uLong crc = crc32(0L, Z_NULL, 0);
	uint64_t total = 0;
	int r = 0;

	buf = malloc(SYM_CRC_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pread(fd, buf, SYM_CRC_CHUNK, (off_t)total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > COLLECTOR_MAX_DEBUG_FILE) {
			r = -EFBIG;
			break;
		}
		crc = crc32(crc, buf, (uInt)n);
	}
	free(buf);
	if (r == 0)
		*ret = (uint32_t)crc;
	return r;
}

/* Adds the symbols of the debug file at path (in p's root) to elf, if it
 * is elf's: its build id, when both have one, is elf's, and, when want_crc
 * is set (found through .gnu_debuglink), its CRC32 is crc. 0 when symbols
 * were added, -ENOENT when there is no such file, else an error (counted). */
static int debug_file_add(struct collector_symbolizer *s, const struct sym_proc *p,
			  struct collector_elf *elf, const char *path, bool want_crc, uint32_t crc)
{
	struct collector_elf *dbg = NULL;
	const char *bid = collector_elf__build_id(elf), *dbid;
	uint32_t got = 0;
	int fd, r;

	fd = open_in_root(s, p, path);
	if (fd < 0)
		return -ENOENT;
	if (want_crc) {
		r = file_crc32(fd, &got);
		if (r < 0) {
			s->stats.debug_errors++;
			goto cleanup;
		}
		if (got != crc) {
			s->stats.debug_rejected++;
			r = -ESTALE;
			goto cleanup;
		}
	}
	r = collector_elf__read(fd, path, NULL, &dbg);
	if (r < 0) {
		s->stats.debug_errors++;
		goto cleanup;
	}
	dbid = collector_elf__build_id(dbg);
	if (bid && dbid && strcmp(bid, dbid) != 0) {
		s->stats.debug_rejected++;
		r = -ESTALE;
		goto cleanup;
	}
	if (collector_elf__count(dbg) == 0) {
		r = -ENOENT; /* a debug file without a .symtab names nothing */
		goto cleanup;
	}
	r = collector_elf__add_symbols(elf, dbg, path, NULL);
	if (r < 0)
		s->stats.debug_errors++;
cleanup:
	collector_elf__free(dbg);
	close(fd);
	return r;
}

/* Looks for the symbols a stripped file lacks, first found first used:
 * the debug file named by its build id, then the one .gnu_debuglink names
 * (beside the file, in .debug/ beside it, under DEBUG_ROOT + its folder),
 * then its own .gnu_debugdata. Returns where its names come from. */
static enum sym_source debug_symbols(struct collector_symbolizer *s, const struct sym_proc *p,
				     const struct sym_map *m, struct collector_elf *elf, int fd)
{
	char path[PATH_MAX];
	const char *bid = collector_elf__build_id(elf), *link, *slash;
	uint32_t crc = 0;
	int r;

	if (bid && strlen(bid) > 2 &&
	    proc_path(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", COLLECTOR_DEBUG_ROOT, bid,
		      bid + 2) == 0 &&
	    debug_file_add(s, p, elf, path, false, 0) == 0)
		return SYM_SOURCE_BUILD_ID;
	link = collector_elf__debuglink(elf, &crc);
	/* the folder of a file that is there by its path (no memfd) */
	slash = m->kind == MAP_FILE && m->path[0] == '/' ? strrchr(m->path, '/') : NULL;
	if (link && slash) {
		int dir = (int)(slash - m->path);

		for (int i = 0; i < 3; i++) {
			const char *root = i == 2 ? COLLECTOR_DEBUG_ROOT : "";
			const char *sub = i == 1 ? "/.debug" : "";

			if (proc_path(path, sizeof(path), "%s%.*s%s/%s", root, dir, m->path, sub,
				      link) == 0 &&
			    debug_file_add(s, p, elf, path, true, crc) == 0)
				return SYM_SOURCE_DEBUGLINK;
		}
	}
	r = collector_elf__read_minidebuginfo(elf, fd, m->path, NULL);
	if (r == 0)
		return SYM_SOURCE_MINIDEBUGINFO;
	if (r != -ENOENT)
		s->stats.debug_errors++;
	return SYM_SOURCE_DYNSYM;
}

static void count_source(struct collector_symbolizer *s, enum sym_source src)
{
	switch (src) {
	case SYM_SOURCE_SYMTAB:
		s->stats.names_symtab++;
		break;
	case SYM_SOURCE_DYNSYM:
		s->stats.names_dynsym++;
		break;
	case SYM_SOURCE_BUILD_ID:
		s->stats.names_build_id++;
		break;
	case SYM_SOURCE_DEBUGLINK:
		s->stats.names_debuglink++;
		break;
	case SYM_SOURCE_MINIDEBUGINFO:
		s->stats.names_minidebuginfo++;
		break;
	}
}

/* Reads the ELF file of mapping m for process p into a new entry (or finds
 * the entry of the same build id), with the debug symbols it lacks. Returns
 * an entry, one with no ELF if the file is no ELF file, or NULL if the file
 * could not be opened. */
static struct sym_elf *entry_load(struct collector_symbolizer *s, const struct sym_proc *p,
				  const struct sym_map *m)
{
	struct collector_elf *elf = NULL;
	enum sym_source src = SYM_SOURCE_SYMTAB;
	struct sym_elf *e;
	const char *bid;
	int fd, r;

	fd = open_mapped(s, p, m);
	if (fd < 0) {
		s->stats.elf_errors++;
		return NULL; /* this process's problem, maybe: don't cache by file */
	}
	r = collector_elf__read(fd, m->path, NULL, &elf);
	if (r < 0) {
		close(fd);
		s->stats.elf_errors++;
		/* the file's problem: remember it until trim */
		e = entry_new(s, NULL, p->pid);
		if (e && ptrmap__put(&s->by_file, m->dev, m->ino, e) < 0)
			return NULL;
		return e;
	}
	s->stats.elf_loaded++;
	bid = collector_elf__build_id(elf);
	e = bid ? find_build_id(s, bid) : NULL;
	if (e) {
		/* the same binary under another device and inode (another
		 * container's copy): keep one, with the debug symbols it got */
		close(fd);
		collector_elf__free(elf);
		if (ptrmap__put(&s->by_file, m->dev, m->ino, e) < 0)
			return NULL;
		return e;
	}
	if (!collector_elf__has_symtab(elf))
		src = debug_symbols(s, p, m, elf, fd);
	close(fd);
	count_source(s, src);
	bid = collector_elf__build_id(elf);
	e = entry_new(s, elf, p->pid);
	if (!e) {
		collector_elf__free(elf);
		return NULL;
	}
	if (ptrmap__put(&s->by_file, m->dev, m->ino, e) < 0)
		return NULL; /* it stays in elfs: trim frees it */
	if (bid)
		ptrmap__put(&s->by_build_id, build_id_key(bid), strlen(bid), e);
	return e;
}

/* The entry of mapping m, or NULL if its file can't be read. */
static struct sym_elf *map_entry(struct collector_symbolizer *s, const struct sym_proc *p,
				 struct sym_map *m)
{
	struct sym_elf *e;

	if (m->state == MAP_RESOLVED)
		return m->elf;
	if (m->state == MAP_FAILED)
		return NULL;
	e = ptrmap__get(&s->by_file, m->dev, m->ino);
	if (!e)
		e = entry_load(s, p, m);
	if (!e || !e->elf) {
		m->state = MAP_FAILED;
		return NULL;
	}
	m->state = MAP_RESOLVED;
	m->elf = e;
	return e;
}

/* ---- processes ---------------------------------------------------------- */

static void maps_free(struct sym_maps *m)
{
	if (!m)
		return;
	free(m->v);
	free(m->paths);
	free(m);
}

static void proc_free(struct sym_proc *p)
{
	if (!p)
		return;
	maps_free(p->maps);
	collector_perfmap__free(p->pm);
	free(p);
}

/* A hex number at *p followed by `stop`; *p moves past both. */
static bool parse_hex(const char **p, const char *end, char stop, uint64_t *ret)
{
	const char *s = *p;

	if (!util__parse_hex64(&s, end, ret) || s == end || *s != stop)
		return false;
	*p = s + 1;
	return true;
}

/* Parses one maps line "start-end perms offset major:minor inode   path";
 * false for a line that is malformed or not executable. */
static bool parse_maps_line(const char *p, const char *eol, struct sym_map *m,
			    const char **ret_path, size_t *ret_len)
{
	uint64_t major, minor, ino = 0;
	const char *perms;

	if (!parse_hex(&p, eol, '-', &m->start) || !parse_hex(&p, eol, ' ', &m->end) ||
	    m->end <= m->start || eol - p < 5 || p[4] != ' ')
		return false;
	perms = p;
	p += 5;
	if (!parse_hex(&p, eol, ' ', &m->pgoff) || !parse_hex(&p, eol, ':', &major) ||
	    !parse_hex(&p, eol, ' ', &minor) || major > UINT32_MAX || minor > UINT32_MAX)
		return false;
	for (; p < eol && isdigit((unsigned char)*p); p++) {
		if (ino > (UINT64_MAX - 9) / 10)
			return false;
		ino = ino * 10 + (uint64_t)(*p - '0');
	}
	if (perms[2] != 'x')
		return false;
	m->dev = makedev((unsigned)major, (unsigned)minor);
	m->ino = ino;
	while (p < eol && *p == ' ')
		p++;
	*ret_path = p;
	*ret_len = (size_t)(eol - p);
	return true;
}

static enum map_kind kind_of_path(const char *path, size_t len)
{
	if (len == 0 || (len >= 6 && memcmp(path, "[anon:", 6) == 0) ||
	    (len >= 11 && memcmp(path, "[anon_shmem", 11) == 0) ||
	    (len >= 6 && memcmp(path, "//anon", 6) == 0) ||
	    (len >= 14 && memcmp(path, "/anon_hugepage", 14) == 0))
		return MAP_ANON;
	if (len == 6 && memcmp(path, "[vdso]", 6) == 0)
		return MAP_VDSO;
	if (path[0] == '[')
		return MAP_PSEUDO;
	if (len >= 7 && memcmp(path, "/memfd:", 7) == 0)
		return MAP_MEMFD;
	return MAP_FILE;
}

static int map_cmp(const void *a, const void *b)
{
	const struct sym_map *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Parses maps text into its executable mappings (paths copied). */
static int parse_maps(const char *text, size_t len, struct sym_maps **ret)
{
	const char *p, *end = text + len;
	struct sym_maps *m = NULL;
	size_t n = 0, path_bytes = 0, off = 0, i;
	int r = 0;

	/* first pass: count, so that paths go in one block that never moves */
	for (p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end, *path;
		struct sym_map tmp;
		size_t plen;

		if (parse_maps_line(p, eol, &tmp, &path, &plen)) {
			n++;
			path_bytes += plen + 1;
		}
		p = eol + 1;
	}
	m = calloc(1, sizeof(*m));
	if (m) {
		m->v = calloc(n ? n : 1, sizeof(*m->v));
		m->paths = malloc(path_bytes ? path_bytes : 1);
	}
	if (!m || !m->v || !m->paths) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (p = text; p < end && m->n < n;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end, *path;
		struct sym_map *v = &m->v[m->n];
		size_t plen, dlen = sizeof(SYM_DELETED) - 1;

		if (parse_maps_line(p, eol, v, &path, &plen)) {
			memcpy(m->paths + off, path, plen);
			if (plen > dlen && memcmp(path + plen - dlen, SYM_DELETED, dlen) == 0) {
				v->deleted = true;
				m->paths[off + plen - dlen] = '\0';
			}
			m->paths[off + plen] = '\0';
			v->path = m->paths + off;
			v->kind = (uint8_t)kind_of_path(path, plen);
			off += plen + 1;
			m->n++;
		}
		p = eol + 1;
	}
	/* the kernel lists mappings by address, without overlaps: a file
	 * that breaks this (not the kernel's) is refused */
	qsort(m->v, m->n, sizeof(*m->v), map_cmp);
	for (i = 1; i < m->n; i++) {
		if (m->v[i].start < m->v[i - 1].end) {
			r = -EBADMSG;
			goto cleanup;
		}
	}
	*ret = m;
	m = NULL;
cleanup:
	maps_free(m);
	return r;
}

static struct sym_map *find_map(const struct sym_maps *maps, uint64_t addr)
{
	size_t lo = 0, hi = maps ? maps->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (maps->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= maps->v[lo - 1].end)
		return NULL;
	return &maps->v[lo - 1];
}

/* (Re)reads p's maps. The maps read before wait for the next trim: their
 * paths may be in frames handed out. On error p keeps what it had. */
static int proc_read_maps(struct collector_symbolizer *s, struct sym_proc *p)
{
	struct sym_maps *maps = NULL;
	char path[PATH_MAX];
	struct dynbuf buf;
	int r;

	dynbuf__init(&buf, 0);
	p->maps_epoch = s->epoch;
	r = proc_path(path, sizeof(path), "%s/%d/maps", s->proc_root, (int)p->pid);
	if (r < 0)
		goto cleanup;
	r = util__read_file(path, COLLECTOR_MAX_MAPS, NULL, &buf);
	if (r < 0)
		goto cleanup;
	r = parse_maps(buf.data, buf.len, &maps);
	if (r < 0)
		goto cleanup;
	if (p->maps) {
		p->maps->next = s->old_maps;
		s->old_maps = p->maps;
	}
	p->maps = maps;
cleanup:
	dynbuf__free(&buf);
	return r;
}

/* The last field of a status line ("NSpid:\t1234\t1": the innermost), or
 * the field-th. */
static bool status_field(const char *text, const char *key, int field, int64_t *ret)
{
	const char *line = strstr(text, key), *p, *eol;
	int64_t v = -1;
	int i = 0;

	if (!line || (line != text && line[-1] != '\n'))
		return false;
	p = line + strlen(key);
	eol = strchr(p, '\n');
	if (!eol)
		eol = p + strlen(p);
	while (p < eol) {
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p == eol)
			break;
		v = 0;
		for (; p < eol && isdigit((unsigned char)*p); p++)
			if (v < INT32_MAX)
				v = v * 10 + (*p - '0');
		if (p < eol && *p != ' ' && *p != '\t')
			return false;
		if (++i == field)
			break;
	}
	if (v < 0 || v > INT32_MAX)
		return false;
	*ret = v;
	return true;
}

/* The process's PID in its own namespace (its perf map is named by it) and
 * effective uid (who may write its perf map). */
static void proc_read_status(const struct collector_symbolizer *s, struct sym_proc *p)
{
	char path[PATH_MAX];
	struct dynbuf buf;
	int64_t v;

	dynbuf__init(&buf, 0);
	if (proc_path(path, sizeof(path), "%s/%d/status", s->proc_root, (int)p->pid) < 0 ||
	    util__read_file(path, SYM_MAX_STATUS, NULL, &buf) < 0)
		goto cleanup;
	if (status_field(buf.data, "NSpid:", 0, &v) && v > 0)
		p->nspid = (int32_t)v;
	if (status_field(buf.data, "Uid:", 2, &v))
		p->uid = v;
cleanup:
	dynbuf__free(&buf);
}

/* The process's state, made on first sight: -ENOMEM, else 0 with *ret set
 * (its maps NULL if they could not be read). */
static int proc_get(struct collector_symbolizer *s, int32_t pid, struct sym_proc **ret)
{
	struct sym_proc *p = ptrmap__get(&s->procs, (uint64_t)(uint32_t)pid, 0);

	if (p) {
		*ret = p;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = p->nspid = pid;
	p->uid = -1;
	if (collector__start_time(s->proc_root, pid, &p->start_ns) < 0)
		p->start_ns = 0;
	proc_read_status(s, p);
	if (ptrmap__put(&s->procs, (uint64_t)(uint32_t)pid, 0, p) < 0) {
		free(p);
		return -ENOMEM;
	}
	if (proc_read_maps(s, p) == -ENOMEM)
		return -ENOMEM;
	*ret = p;
	return 0;
}

/* ---- the vDSO ---------------------------------------------------------- */

/* The size of the ELF image at base: the end of its headers, segments and
 * section headers. The vDSO is one such image, mapped whole. */
static size_t image_size(const unsigned char *base)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
	const ElfW(Phdr) * ph;
	size_t size, i;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_phentsize != sizeof(*ph) ||
	    eh->e_phoff + (size_t)eh->e_phnum * sizeof(*ph) > 4096)
		return 0;
	size = eh->e_phoff + (size_t)eh->e_phnum * sizeof(*ph);
	if (eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize > size)
		size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_offset + ph[i].p_filesz > size)
			size = ph[i].p_offset + ph[i].p_filesz;
	return size <= SYM_MAX_VDSO ? size : 0;
}

/* This process's vDSO: the kernel maps the same image into every process
 * of an ABI, so its symbols name every process's [vdso] addresses. Only
 * what lies inside the mapping is read. */
static struct sym_elf *vdso_entry(struct collector_symbolizer *s)
{
	const void *base;
	size_t size;

	if (!s->vdso_tried) {
		s->vdso_tried = true;
		s->vdso_len = collector__own_vdso(&base);
		size = s->vdso_len >= 4096 ? image_size((const unsigned char *)base) : 0;
		if (size && size <= s->vdso_len &&
		    collector_elf__read_memory(base, size, "[vdso]", NULL, &s->vdso.elf) < 0)
			s->vdso.elf = NULL;
	}
	return s->vdso.elf ? &s->vdso : NULL;
}

/* ---- perf maps ---------------------------------------------------------- */

/* Reads what was appended to p's perf map since the last read, whole lines
 * only (the JIT may be writing the last one). A map that shrank was
 * rewritten: it is read again from the start. */
static void perfmap_refresh(struct collector_symbolizer *s, struct sym_proc *p)
{
	char path[PATH_MAX], *buf = NULL;
	size_t want, have = 0, whole;
	const char *nl;
	struct stat st;
	int fd = -1, r;

	if (proc_path(path, sizeof(path), "%s/%d/root/tmp/perf-%d.map", s->proc_root, (int)p->pid,
		      (int)p->nspid) < 0)
		goto cleanup;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto cleanup;
	/* as perf does: only the process's owner (or root) writes its map */
	if (p->uid >= 0 && st.st_uid != 0 && (int64_t)st.st_uid != p->uid)
		goto cleanup;
	if (p->pm && (uint64_t)st.st_size < p->pm_off) {
		if (s->n_old_pms == s->cap_old_pms) {
			size_t cap = s->cap_old_pms ? s->cap_old_pms * 2 : 8;
			struct collector_perfmap **v = realloc(s->old_pms, cap * sizeof(*v));

			if (!v)
				goto cleanup;
			s->old_pms = v;
			s->cap_old_pms = cap;
		}
		s->old_pms[s->n_old_pms++] = p->pm;
		p->pm = NULL;
		p->pm_off = 0;
	}
	if ((uint64_t)st.st_size <= p->pm_off)
		goto cleanup;
	want = (uint64_t)st.st_size - p->pm_off > COLLECTOR_MAX_PERF_MAP
		       ? COLLECTOR_MAX_PERF_MAP
		       : (size_t)((uint64_t)st.st_size - p->pm_off);
	buf = malloc(want);
	if (!buf)
		goto cleanup;
	while (have < want) {
		ssize_t n = pread(fd, buf + have, want - have, (off_t)(p->pm_off + have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	nl = have ? memrchr(buf, '\n', have) : NULL;
	whole = nl ? (size_t)(nl - buf) + 1 : 0;
	/* a line longer than the cap can never be read whole: skip it */
	if (!whole && have == COLLECTOR_MAX_PERF_MAP)
		whole = have;
	if (!whole)
		goto cleanup;
	if (!p->pm)
		r = collector_perfmap__parse(buf, whole, &p->pm);
	else
		r = collector_perfmap__append(p->pm, buf, whole);
	/* past a cap the rest is skipped rather than read again and again */
	if (r == 0 || r == -EFBIG)
		p->pm_off += whole;
	s->stats.perfmap_loads++;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
}

static void jit_frame(struct collector_symbolizer *s, struct sym_proc *p, uint64_t ip,
		      struct frame *f)
{
	const char *name = NULL;
	uint64_t off;

	/* Read what the JIT appended once per drain, found or not: V8 reuses
	 * code addresses, and an older entry that still covers the address
	 * would otherwise hide the newer one for good. */
	if (p->pm_epoch != s->epoch) {
		p->pm_epoch = s->epoch;
		perfmap_refresh(s, p);
	}
	if (!p->pm || collector_perfmap__lookup(p->pm, ip, &name, &off) < 0)
		name = NULL;
	frame_set(f, FRAME_JIT, COLLECTOR_JIT_MODULE, name, 0);
}

/* ---- frames ------------------------------------------------------------------ */

/* One user address of p (whose maps were read). */
static void user_frame(struct collector_symbolizer *s, struct sym_proc *p, uint64_t ip,
		       struct frame *f)
{
	struct sym_map *m = find_map(p->maps, ip);
	struct sym_elf *e = NULL;
	uint64_t file_off, vaddr, off;
	const char *raw;

	if (!m && p->maps_epoch != s->epoch) {
		/* new since the last read (a library loaded since)? once per trim */
		proc_read_maps(s, p);
		m = find_map(p->maps, ip);
	}
	if (!m) {
		frame_set(f, FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
		s->stats.frames_unmapped++;
		return;
	}
	switch (m->kind) {
	case MAP_ANON:
		jit_frame(s, p, ip, f);
		return;
	case MAP_PSEUDO:
		frame_set(f, FRAME_NATIVE, m->path, NULL, ip - m->start);
		return;
	case MAP_VDSO:
		e = vdso_entry(s);
		/* a process of another ABI (32-bit) maps another image */
		if (e && m->end - m->start != s->vdso_len)
			e = NULL;
		break;
	default:
		e = map_entry(s, p, m);
		if (!e && m->kind == MAP_MEMFD) {
			jit_frame(s, p, ip, f); /* a JIT's double mapping */
			return;
		}
		break;
	}
	file_off = ip - m->start + m->pgoff;
	if (!e) {
		frame_set(f, FRAME_NATIVE, m->path, NULL, file_off);
		return;
	}
	e->used = ++s->tick;
	if (e != &s->vdso && e->pid != p->pid)
		s->stats.elf_shared++;
	if (collector_elf__vaddr(e->elf, file_off, &vaddr) < 0)
		frame_set(f, FRAME_NATIVE, m->path, NULL, file_off);
	else if (collector_elf__lookup(e->elf, vaddr, &raw, &off) < 0)
		frame_set(f, FRAME_NATIVE, m->path, NULL, vaddr);
	else
		frame_set(f, FRAME_NATIVE, m->path, entry_name(s, e, raw), 0);
}

int collector_symbolizer__user(struct collector_symbolizer *s, int32_t pid, const uint64_t *ips,
			       size_t n, struct frame *ret_frames)
{
	struct sym_proc *p = NULL;
	size_t i;
	int r;

	s->stats.frames += n;
	r = proc_get(s, pid, &p);
	if (r == 0 && !p->maps && p->maps_epoch != s->epoch)
		proc_read_maps(s, p);
	if (r == 0 && !p->maps) {
		if (!p->lost)
			s->stats.processes_lost++;
		p->lost = true;
		r = -ENOENT;
	}
	if (r < 0) {
		for (i = 0; i < n; i++)
			frame_set(&ret_frames[i], FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, NULL, 0);
		s->stats.frames_unmapped += n;
		return r;
	}
	for (i = 0; i < n; i++) {
		user_frame(s, p, ips[i], &ret_frames[i]);
		if (!ret_frames[i].name && ret_frames[i].kind != FRAME_UNKNOWN)
			s->stats.frames_unnamed++;
	}
	return 0;
}

int collector_symbolizer__prefetch(struct collector_symbolizer *s, int32_t pid)
{
	struct sym_proc *p = NULL;
	int r;

	r = proc_get(s, pid, &p);
	if (r < 0)
		return r;
	if (!p->maps)
		return -ENOENT;
	/* the files too: once the process is gone, map_files/ and root/ are */
	for (size_t i = 0; i < p->maps->n; i++) {
		struct sym_map *m = &p->maps->v[i];

		if (m->kind == MAP_FILE || m->kind == MAP_MEMFD)
			map_entry(s, p, m);
	}
	return 0;
}

void collector_symbolizer__kernel(struct collector_symbolizer *s, const uint64_t *ips, size_t n,
				  struct frame *ret_frames)
{
	size_t i;

	s->stats.frames += n;
	for (i = 0; i < n; i++) {
		const char *name, *module;
		uint64_t off;

		if (s->ksyms &&
		    collector_ksyms__lookup(s->ksyms, ips[i], &name, &module, &off) == 0) {
			frame_set(&ret_frames[i], FRAME_KERNEL, module, name, 0);
		} else {
			frame_set(&ret_frames[i], FRAME_KERNEL, COLLECTOR_KERNEL_MODULE, NULL,
				  ips[i]);
			s->stats.frames_unnamed++;
		}
	}
}

/* ---- the symbolizer ------------------------------------------------------------ */

int collector_symbolizer__new(const struct collector_symbolizer_options *o, struct errbuf *err,
			      struct collector_symbolizer **ret)
{
	static const struct collector_symbolizer_options defaults = {0};
	struct collector_symbolizer *s;
	char path[PATH_MAX];
	int r = 0;

	if (!o)
		o = &defaults;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->proc_root = strdup(o->proc_root ? o->proc_root : COLLECTOR_PROC_ROOT);
	if (!s->proc_root) {
		r = -ENOMEM;
		goto cleanup;
	}
	s->max_bytes = o->max_cache_bytes ? o->max_cache_bytes : COLLECTOR_DEFAULT_SYMBOL_CACHE;
	s->demangle_params = o->demangle_params;
	s->epoch = 1;
	if (!o->no_kernel) {
		const char *kallsyms = o->kallsyms;

		if (!kallsyms) {
			r = proc_path(path, sizeof(path), "%s/kallsyms", s->proc_root);
			if (r < 0) {
				errbuf__set(err, r, "%s/kallsyms: path too long", s->proc_root);
				goto cleanup;
			}
			kallsyms = path;
		}
		r = collector_ksyms__load(kallsyms, err, &s->ksyms);
		if (r < 0)
			goto cleanup;
	}
	*ret = s;
	s = NULL;
cleanup:
	collector_symbolizer__free(s);
	return r;
}

static void free_retired(struct collector_symbolizer *s)
{
	size_t i;

	while (s->dead) {
		struct sym_proc *p = s->dead;

		s->dead = p->next;
		proc_free(p);
	}
	while (s->old_maps) {
		struct sym_maps *m = s->old_maps;

		s->old_maps = m->next;
		maps_free(m);
	}
	for (i = 0; i < s->n_old_pms; i++)
		collector_perfmap__free(s->old_pms[i]);
	s->n_old_pms = 0;
}

void collector_symbolizer__free(struct collector_symbolizer *s)
{
	size_t i;

	if (!s)
		return;
	free_retired(s);
	for (i = 0; i < s->procs.n; i++)
		proc_free(s->procs.v[i].val);
	ptrmap__free(&s->procs);
	for (i = 0; i < s->n_elfs; i++) {
		entry_release(s->elfs[i]);
		free(s->elfs[i]);
	}
	free(s->elfs);
	entry_release(&s->vdso);
	ptrmap__free(&s->by_file);
	ptrmap__free(&s->by_build_id);
	free(s->old_pms);
	collector_ksyms__free(s->ksyms);
	free(s->proc_root);
	free(s);
}

void collector_symbolizer__forget(struct collector_symbolizer *s, int32_t pid)
{
	struct sym_proc *p = ptrmap__get(&s->procs, (uint64_t)(uint32_t)pid, 0);

	if (!p)
		return;
	ptrmap__del(&s->procs, (uint64_t)(uint32_t)pid, 0);
	p->next = s->dead;
	s->dead = p;
}

/* Whether p is still the process that runs under its PID. */
static bool proc_alive(const struct collector_symbolizer *s, const struct sym_proc *p)
{
	int64_t ns;
	int r = collector__start_time(s->proc_root, p->pid, &ns);

	if (r == -ENOENT)
		return false;
	if (r < 0)
		return p->start_ns != 0; /* can't tell: keep what we know */
	return ns == p->start_ns;
}

static int by_use(const void *a, const void *b)
{
	const struct sym_elf *x = *(struct sym_elf *const *)a, *y = *(struct sym_elf *const *)b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* Rebuilds a key table without the doomed entries' keys. */
static void rekey(struct ptrmap *m)
{
	struct ptrmap fresh = {0};
	size_t i;

	for (i = 0; i < m->n; i++) {
		struct sym_elf *e = m->v[i].val;

		if (!e->doomed && ptrmap__put(&fresh, m->v[i].a, m->v[i].b, e) < 0) {
			/* no memory: an empty table only costs reloads */
			ptrmap__free(&fresh);
			break;
		}
	}
	ptrmap__free(m);
	*m = fresh;
}

void collector_symbolizer__trim(struct collector_symbolizer *s)
{
	struct sym_proc *gone = NULL;
	size_t i, j, kept;
	bool doomed = false;

	free_retired(s);
	s->epoch++;

	/* processes that exited, or whose PID was reused: at most
	 * TRIM_ALIVE_CHECKS per trim, round robin, so that a host with
	 * thousands of processes doesn't cost thousands of reads a second */
	if (s->procs.n) {
		for (i = 0; i < s->procs.n && i < TRIM_ALIVE_CHECKS; i++) {
			struct sym_proc *p = s->procs.v[(s->alive_cursor + i) % s->procs.n].val;

			if (!proc_alive(s, p)) {
				p->next = gone;
				gone = p;
			}
		}
		s->alive_cursor = (s->alive_cursor + i) % s->procs.n;
	}
	while (gone) {
		struct sym_proc *p = gone;

		gone = p->next;
		ptrmap__del(&s->procs, (uint64_t)(uint32_t)p->pid, 0);
		proc_free(p);
	}

	/* files that failed are tried again; then the least recently used
	 * entries go until the rest fits */
	if (s->n_elfs)
		qsort(s->elfs, s->n_elfs, sizeof(*s->elfs), by_use);
	for (i = 0; i < s->n_elfs; i++) {
		struct sym_elf *e = s->elfs[i];

		if (!e->elf) {
			e->doomed = doomed = true;
			s->stats.cache_bytes -= e->bytes;
		}
	}
	for (i = 0; i < s->n_elfs && s->stats.cache_bytes > s->max_bytes; i++) {
		struct sym_elf *e = s->elfs[i];

		if (e->doomed)
			continue;
		e->doomed = doomed = true;
		s->stats.cache_bytes -= e->bytes;
		s->stats.elf_evicted++;
	}

	/* mappings forget their failures and their doomed entries */
	for (i = 0; i < s->procs.n; i++) {
		struct sym_proc *p = s->procs.v[i].val;

		for (j = 0; p->maps && j < p->maps->n; j++) {
			struct sym_map *m = &p->maps->v[j];

			if (m->state == MAP_FAILED || (m->elf && m->elf->doomed)) {
				m->state = MAP_UNRESOLVED;
				m->elf = NULL;
			}
		}
	}
	if (!doomed)
		return;
	rekey(&s->by_file);
	rekey(&s->by_build_id);
	for (i = 0, kept = 0; i < s->n_elfs; i++) {
		struct sym_elf *e = s->elfs[i];

		if (e->doomed) {
			entry_release(e);
			free(e);
		} else {
			s->elfs[kept++] = e;
		}
	}
	s->n_elfs = kept;
}

void collector_symbolizer__stats(const struct collector_symbolizer *s,
				 struct collector_symbolizer_stats *ret)
{
	*ret = s->stats;
	ret->processes = s->procs.n;
}
