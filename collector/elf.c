/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/elf.c: the function symbols, PT_LOAD segments and build id of
 * one ELF file, read with libelf and copied out so that nothing refers to
 * the file afterwards. Every count and size a file declares is checked
 * against a cap before anything is allocated for it. Also what a stripped
 * file says about its missing symbols: its .gnu_debuglink (a separate debug
 * file's name and CRC) and its .gnu_debugdata (MiniDebugInfo: an
 * xz-compressed ELF file holding a .symtab), and the merge of those symbols
 * into the file's own.
 */
#include "collector/collector.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <lzma.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define ELF_MAX_SYMBOLS	   (4u << 20)	/* function symbols kept from one table */
#define ELF_MAX_NAME_BYTES (256u << 20) /* bytes of symbol names kept */
#define ELF_MAX_SEGMENTS   64u		/* PT_LOAD segments (a linker makes 2 to 5) */
#define ELF_MAX_PHDRS	   65536u	/* program headers looked at */
#define ELF_MAX_SECTIONS   65536u	/* section headers looked at */
#define ELF_MAX_MEMORY	   (256u << 20) /* bytes of an in-memory image */
#define ELF_MAX_BUILD_ID   64u		/* bytes of a build id (SHA-1 gives 20) */
/* liblzma's memory for one .gnu_debugdata: xz -9 needs 65 MiB to decode,
 * the default preset (what Fedora uses) 9 MiB */
#define ELF_MAX_LZMA_MEMORY (128u << 20)
#define ELF_LZMA_CHUNK	    (1u << 20) /* the first output buffer; it doubles */

struct elf_sym {
	uint64_t addr;
	uint32_t size; /* st_size, capped: no function is 4 GiB long */
	uint32_t name; /* offset in names */
};

struct elf_seg {
	uint64_t offset, vaddr, filesz;
};

struct collector_elf {
	struct elf_sym *syms; /* by address, one per address */
	size_t n_syms;
	char *names; /* NUL-terminated names, back to back */
	size_t names_len;
	struct elf_seg *segs;
	size_t n_segs;
	char build_id[ELF_MAX_BUILD_ID * 2 + 1]; /* "" if none */
	bool has_symtab;			 /* the symbols came from .symtab */
	char *debuglink;			 /* .gnu_debuglink's file name; NULL if none */
	uint32_t debuglink_crc;
	uint64_t debugdata_off, debugdata_size; /* .gnu_debugdata in the file; size 0: none */
};

/* A function symbol while the file is open: its name points into libelf's
 * view of the string table. */
struct elf_cand {
	uint64_t addr, size;
	const char *name;
	size_t len;
	uint32_t index; /* position in the table: the last tie-break */
	uint8_t rank;	/* GLOBAL 2, WEAK 1, LOCAL 0 */
};

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static bool elf_ok;

static void elf_init(void)
{
	elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

/* By address; at one address the preferred symbol first: GLOBAL over WEAK
 * over LOCAL (an alias a library exports names the function best), then
 * the one that says it is longer, then the first in the table. */
static int cand_cmp(const void *a, const void *b)
{
	const struct elf_cand *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static uint8_t bind_rank(unsigned char info)
{
	switch (GELF_ST_BIND(info)) {
	case STB_GLOBAL:
		return 2;
	case STB_WEAK:
	case STB_GNU_UNIQUE:
		return 1;
	default:
		return 0;
	}
}

/* Collects the function symbols of one symbol table section into *cands
 * (malloc'ed, *n_cands entries; the caller frees it). */
static int read_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *name,
		       struct errbuf *err, struct elf_cand **ret_cands, size_t *ret_n)
{
	struct elf_cand *cands = NULL;
	size_t entsize, count, i, n = 0, cap;
	Elf_Data *data;
	int r = 0;

	entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	data = elf_getdata(scn, NULL);
	if (!data || !entsize || !data->d_buf) {
		r = errbuf__set(err, -EBADMSG, "%s: unreadable symbol table: %s", name,
				elf_errmsg(-1));
		goto cleanup;
	}
	count = data->d_size / entsize;
	if (count > INT32_MAX)
		count = INT32_MAX; /* gelf_getsym takes an int */
	/* first pass: count, so the array is allocated once and bounded */
	for (i = 0; i < count; i++) {
		GElf_Sym sym;
		unsigned type;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type == STT_FUNC || type == STT_GNU_IFUNC) && sym.st_shndx != SHN_UNDEF &&
		    sym.st_value != 0 && sym.st_name != 0)
			n++;
	}
	if (n > ELF_MAX_SYMBOLS) {
		r = errbuf__set(err, -EFBIG, "%s: more than %u function symbols", name,
				ELF_MAX_SYMBOLS);
		goto cleanup;
	}
	if (n == 0)
		goto cleanup;
	cap = n;
	cands = malloc(cap * sizeof(*cands));
	if (!cands) {
		r = -ENOMEM;
		goto cleanup;
	}
	n = 0;
	for (i = 0; i < count && n < cap; i++) {
		GElf_Sym sym;
		const char *s;
		unsigned type;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value == 0 || sym.st_name == 0)
			continue;
		/* libelf checks that the string lies in the table, NUL-terminated */
		s = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!s || !*s)
			continue;
		cands[n].addr = sym.st_value;
		cands[n].size = sym.st_size;
		cands[n].name = s;
		/* .symtab keeps a versioned symbol's version in its name
		 * ("__libc_start_main@@GLIBC_2.34"); .dynsym keeps it apart */
		cands[n].len = strcspn(s, "@");
		if (cands[n].len == 0)
			continue;
		if (cands[n].len > COLLECTOR_MAX_SYMBOL_NAME)
			cands[n].len = COLLECTOR_MAX_SYMBOL_NAME;
		cands[n].index = (uint32_t)i;
		cands[n].rank = bind_rank(sym.st_info);
		n++;
	}
	*ret_cands = cands;
	*ret_n = n;
	cands = NULL;
cleanup:
	free(cands);
	return r;
}

/* Sorts and dedups the candidates and copies them (and their names) into e. */
static int keep_symbols(struct collector_elf *e, struct elf_cand *cands, size_t n, const char *name,
			struct errbuf *err)
{
	size_t i, kept = 0, bytes = 0, off = 0;

	if (n)
		qsort(cands, n, sizeof(*cands), cand_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && cands[i].addr == cands[i - 1].addr)
			continue;
		cands[kept++] = cands[i];
		bytes += cands[i].len + 1;
		if (bytes > ELF_MAX_NAME_BYTES)
			return errbuf__set(err, -EFBIG, "%s: more than %u bytes of symbol names",
					   name, ELF_MAX_NAME_BYTES);
	}
	if (!kept)
		return 0;
	e->syms = malloc(kept * sizeof(*e->syms));
	e->names = malloc(bytes);
	if (!e->syms || !e->names)
		return -ENOMEM;
	for (i = 0; i < kept; i++) {
		e->syms[i].addr = cands[i].addr;
		e->syms[i].size = cands[i].size > UINT32_MAX ? UINT32_MAX : (uint32_t)cands[i].size;
		e->syms[i].name = (uint32_t)off;
		memcpy(e->names + off, cands[i].name, cands[i].len);
		e->names[off + cands[i].len] = '\0';
		off += cands[i].len + 1;
	}
	e->n_syms = kept;
	e->names_len = bytes;
	return 0;
}

/* Looks for an NT_GNU_BUILD_ID note in a note section or segment's data and
 * writes it into e->build_id. */
static void find_build_id(struct collector_elf *e, Elf_Data *data)
{
	size_t off = 0, next;
	GElf_Nhdr nh;
	size_t name_off, desc_off;

	if (!data || !data->d_buf)
		return;
	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp((const char *)data->d_buf + name_off, "GNU", 4) == 0 &&
		    nh.n_descsz > 0 && nh.n_descsz <= ELF_MAX_BUILD_ID) {
			static const char hex[] = "0123456789abcdef";
			const unsigned char *d = (const unsigned char *)data->d_buf + desc_off;
			size_t i;

			for (i = 0; i < nh.n_descsz; i++) {
				e->build_id[2 * i] = hex[d[i] >> 4];
				e->build_id[2 * i + 1] = hex[d[i] & 15];
			}
			e->build_id[2 * i] = '\0';
			return;
		}
		off = next;
	}
}

/* Reads the segments (and build id notes) of the program headers. */
static int read_phdrs(Elf *elf, struct collector_elf *e, const char *name, struct errbuf *err)
{
	size_t n, i;

	if (elf_getphdrnum(elf, &n) < 0)
		return errbuf__set(err, -EBADMSG, "%s: bad program headers: %s", name,
				   elf_errmsg(-1));
	if (n > ELF_MAX_PHDRS)
		return errbuf__set(err, -EBADMSG, "%s: %zu program headers", name, n);
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return errbuf__set(err, -EBADMSG, "%s: bad program header %zu: %s", name, i,
					   elf_errmsg(-1));
		if (ph.p_type == PT_NOTE && !e->build_id[0] && ph.p_filesz > 0) {
			Elf_Type t = ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR;

			/* libelf refuses a chunk outside the file */
			find_build_id(
				e, elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, t));
		}
		if (ph.p_type != PT_LOAD || ph.p_filesz == 0)
			continue;
		if (ph.p_offset + ph.p_filesz < ph.p_offset ||
		    ph.p_vaddr + ph.p_filesz < ph.p_vaddr)
			return errbuf__set(err, -EBADMSG, "%s: segment %zu wraps around", name, i);
		if (e->n_segs == ELF_MAX_SEGMENTS)
			return errbuf__set(err, -EBADMSG, "%s: more than %u PT_LOAD segments", name,
					   ELF_MAX_SEGMENTS);
		e->segs[e->n_segs].offset = ph.p_offset;
		e->segs[e->n_segs].vaddr = ph.p_vaddr;
		e->segs[e->n_segs].filesz = ph.p_filesz;
		e->n_segs++;
	}
	return 0;
}

/* Reads a .gnu_debuglink section: the debug file's name (a plain file
 * name, NUL-terminated), padding to 4 bytes, then the CRC32 of the whole
 * debug file in the file's byte order. A malformed one is ignored: it only
 * costs the names it would have found. */
static int read_debuglink(struct collector_elf *e, Elf_Data *data, unsigned char byte_order)
{
	const unsigned char *d, *c;
	size_t len, at;

	if (!data || !data->d_buf)
		return 0;
	d = data->d_buf;
	len = strnlen((const char *)d, data->d_size);
	at = (len + 4) & ~(size_t)3;
	if (len == 0 || len > NAME_MAX || at + 4 > data->d_size || memchr(d, '/', len) ||
	    strcmp((const char *)d, ".") == 0 || strcmp((const char *)d, "..") == 0)
		return 0;
	c = d + at;
	if (byte_order == ELFDATA2MSB)
		e->debuglink_crc =
			(uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
	else
		e->debuglink_crc =
			(uint32_t)c[3] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
	e->debuglink = strndup((const char *)d, len);
	return e->debuglink ? 0 : -ENOMEM;
}

static int read_elf(Elf *elf, const char *name, struct errbuf *err, struct collector_elf **ret)
{
	struct collector_elf *e = NULL;
	struct elf_cand *cands = NULL;
	struct elf_seg *segs;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr symtab_sh = {0}, dynsym_sh = {0};
	size_t n_cands = 0, n_sections = 0, shstrndx = SIZE_MAX;
	GElf_Ehdr eh;
	int r;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		r = errbuf__set(err, -ENOEXEC, "%s: not an ELF file", name);
		goto cleanup;
	}
	e = calloc(1, sizeof(*e));
	if (e)
		e->segs = malloc(ELF_MAX_SEGMENTS * sizeof(*e->segs));
	if (!e || !e->segs) {
		r = -ENOMEM;
		goto cleanup;
	}
	r = read_phdrs(elf, e, name, err);
	if (r < 0)
		goto cleanup;
	if (elf_getshdrnum(elf, &n_sections) < 0)
		n_sections = 0; /* no usable section headers: no symbols */
	if (n_sections > ELF_MAX_SECTIONS) {
		r = errbuf__set(err, -EBADMSG, "%s: %zu sections", name, n_sections);
		goto cleanup;
	}
	if (n_sections && elf_getshdrstrndx(elf, &shstrndx) < 0)
		shstrndx = SIZE_MAX; /* sections without names: no debuglink, no debugdata */
	while (n_sections && (scn = elf_nextscn(elf, scn))) {
		const char *sname = NULL;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (shstrndx != SIZE_MAX && sh.sh_type == SHT_PROGBITS)
			sname = elf_strptr(elf, shstrndx, sh.sh_name);
		if (sname && strcmp(sname, ".gnu_debuglink") == 0 && !e->debuglink) {
			r = read_debuglink(e, elf_getdata(scn, NULL), eh.e_ident[EI_DATA]);
			if (r < 0)
				goto cleanup;
		} else if (sname && strcmp(sname, ".gnu_debugdata") == 0 && sh.sh_size > 0) {
			e->debugdata_off = sh.sh_offset;
			e->debugdata_size = sh.sh_size;
		} else if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = scn;
			symtab_sh = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
			dynsym = scn;
			dynsym_sh = sh;
		} else if (sh.sh_type == SHT_NOTE && !e->build_id[0]) {
			find_build_id(e, elf_getdata(scn, NULL));
		}
	}
	if (symtab) {
		r = read_symtab(elf, symtab, &symtab_sh, name, err, &cands, &n_cands);
		if (r < 0)
			goto cleanup;
		e->has_symtab = n_cands > 0;
	}
	/* .symtab is a superset of .dynsym; a stripped file has only the latter */
	if (!n_cands && dynsym) {
		r = read_symtab(elf, dynsym, &dynsym_sh, name, err, &cands, &n_cands);
		if (r < 0)
			goto cleanup;
	}
	r = keep_symbols(e, cands, n_cands, name, err);
	if (r < 0)
		goto cleanup;
	/* give back the room the segment cap reserved */
	segs = realloc(e->segs, (e->n_segs ? e->n_segs : 1) * sizeof(*segs));
	if (segs)
		e->segs = segs;
	*ret = e;
	e = NULL;
cleanup:
	free(cands);
	collector_elf__free(e);
	return r;
}

int collector_elf__read(int fd, const char *name, struct errbuf *err, struct collector_elf **ret)
{
	Elf *elf = NULL;
	struct stat st;
	int r;

	pthread_once(&elf_once, elf_init);
	if (!elf_ok)
		return errbuf__set(err, -EIO, "libelf: %s", elf_errmsg(-1));
	if (fstat(fd, &st) < 0)
		return errbuf__set(err, -errno, "%s: %s", name, strerror(errno));
	/* libelf reads anything it can't map whole into memory */
	if (!S_ISREG(st.st_mode))
		return errbuf__set(err, -ENOEXEC, "%s: not an ELF file (not a regular file)", name);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		r = errbuf__set(err, -ENOEXEC, "%s: not an ELF file: %s", name, elf_errmsg(-1));
		goto cleanup;
	}
	r = read_elf(elf, name, err, ret);
cleanup:
	elf_end(elf);
	return r;
}

/* Reads the ELF image in buf, which libelf may write to (it converts data
 * in place); buf stays the caller's. */
static int read_image(char *buf, size_t len, const char *name, struct errbuf *err,
		      struct collector_elf **ret)
{
	Elf *elf;
	int r;

	elf = elf_memory(buf, len);
	if (!elf)
		return errbuf__set(err, -ENOEXEC, "%s: not an ELF file: %s", name, elf_errmsg(-1));
	r = read_elf(elf, name, err, ret);
	elf_end(elf);
	return r;
}

int collector_elf__read_memory(const void *data, size_t len, const char *name, struct errbuf *err,
			       struct collector_elf **ret)
{
	char *copy = NULL;
	int r;

	pthread_once(&elf_once, elf_init);
	if (!elf_ok)
		return errbuf__set(err, -EIO, "libelf: %s", elf_errmsg(-1));
	if (len > ELF_MAX_MEMORY)
		return errbuf__set(err, -EFBIG, "%s: larger than %u bytes", name, ELF_MAX_MEMORY);
	/* libelf may convert data in place in an image it was given: work on a
	 * copy, so read-only memory (the vDSO) is never written */
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	r = read_image(copy, len, name, err, ret);
	free(copy);
	return r;
}

bool collector_elf__has_symtab(const struct collector_elf *e)
{
	return e->has_symtab;
}

const char *collector_elf__debuglink(const struct collector_elf *e, uint32_t *ret_crc)
{
	if (e->debuglink && ret_crc)
		*ret_crc = e->debuglink_crc;
	return e->debuglink;
}

int collector_elf__add_symbols(struct collector_elf *e, const struct collector_elf *from,
			       const char *name, struct errbuf *err)
{
	struct elf_sym *syms = NULL;
	char *names = NULL;
	size_t i = 0, j = 0, n = 0, bytes = 0, off = 0;
	int r = 0;

	/* first pass: how many symbols and name bytes the union holds */
	while (i < e->n_syms || j < from->n_syms) {
		if (j == from->n_syms || (i < e->n_syms && e->syms[i].addr <= from->syms[j].addr)) {
			if (j < from->n_syms && e->syms[i].addr == from->syms[j].addr)
				j++; /* e's own name wins */
			bytes += strlen(e->names + e->syms[i].name) + 1;
			i++;
		} else {
			bytes += strlen(from->names + from->syms[j].name) + 1;
			j++;
		}
		n++;
	}
	if (n > ELF_MAX_SYMBOLS)
		return errbuf__set(err, -EFBIG, "%s: more than %u function symbols", name,
				   ELF_MAX_SYMBOLS);
	if (bytes > ELF_MAX_NAME_BYTES)
		return errbuf__set(err, -EFBIG, "%s: more than %u bytes of symbol names", name,
				   ELF_MAX_NAME_BYTES);
	if (n == e->n_syms)
		return 0; /* nothing new */
	syms = malloc(n * sizeof(*syms));
	names = malloc(bytes);
	if (!syms || !names) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (i = j = n = 0; i < e->n_syms || j < from->n_syms; n++) {
		const struct elf_sym *src;
		const char *sname;
		size_t len;

		if (j == from->n_syms || (i < e->n_syms && e->syms[i].addr <= from->syms[j].addr)) {
			if (j < from->n_syms && e->syms[i].addr == from->syms[j].addr)
				j++;
			src = &e->syms[i++];
			sname = e->names + src->name;
		} else {
			src = &from->syms[j++];
			sname = from->names + src->name;
		}
		len = strlen(sname);
		syms[n] = *src;
		syms[n].name = (uint32_t)off;
		memcpy(names + off, sname, len + 1);
		off += len + 1;
	}
	free(e->syms);
	free(e->names);
	e->syms = syms;
	e->names = names;
	e->n_syms = n;
	e->names_len = bytes;
	syms = NULL;
	names = NULL;
cleanup:
	free(syms);
	free(names);
	return r;
}

/* Decompresses xz data in[0..in_len) into a malloc'ed buffer of at most
 * COLLECTOR_MAX_DEBUGDATA bytes (*ret, the caller frees it). */
static int xz_decompress(const uint8_t *in, size_t in_len, const char *name, struct errbuf *err,
			 uint8_t **ret, size_t *ret_len)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	uint8_t *out = NULL, *grown;
	size_t cap = 0;
	lzma_ret lr;
	int r = 0;

	lr = lzma_stream_decoder(&strm, ELF_MAX_LZMA_MEMORY, 0);
	if (lr != LZMA_OK) {
		r = errbuf__set(err, lr == LZMA_MEM_ERROR ? -ENOMEM : -EIO,
				"%s: .gnu_debugdata: liblzma can't start (error %d)", name,
				(int)lr);
		goto cleanup;
	}
	strm.next_in = in;
	strm.avail_in = in_len;
	for (;;) {
		if (strm.avail_out == 0) {
			/* one byte past the cap tells a full buffer from a bomb */
			size_t want = cap ? cap * 2 : ELF_LZMA_CHUNK;

			if (cap > COLLECTOR_MAX_DEBUGDATA) {
				r = errbuf__set(
					err, -EFBIG,
					"%s: .gnu_debugdata: more than %u bytes decompressed", name,
					COLLECTOR_MAX_DEBUGDATA);
				goto cleanup;
			}
			if (want > COLLECTOR_MAX_DEBUGDATA + 1)
				want = COLLECTOR_MAX_DEBUGDATA + 1;
			grown = realloc(out, want);
			if (!grown) {
				r = -ENOMEM;
				goto cleanup;
			}
			out = grown;
			strm.next_out = out + cap;
			strm.avail_out = want - cap;
			cap = want;
		}
		lr = lzma_code(&strm, LZMA_FINISH);
		if (lr == LZMA_STREAM_END)
			break;
		if (lr == LZMA_OK)
			continue;
		switch (lr) {
		case LZMA_MEM_ERROR:
			r = -ENOMEM;
			break;
		case LZMA_MEMLIMIT_ERROR:
			r = errbuf__set(
				err, -EFBIG,
				"%s: .gnu_debugdata: needs more than %u bytes to decompress", name,
				ELF_MAX_LZMA_MEMORY);
			break;
		case LZMA_BUF_ERROR:
			r = errbuf__set(err, -EBADMSG, "%s: .gnu_debugdata: truncated xz data",
					name);
			break;
		default:
			r = errbuf__set(err, -EBADMSG,
					"%s: .gnu_debugdata: corrupt xz data (liblzma error %d)",
					name, (int)lr);
			break;
		}
		goto cleanup;
	}
	if (strm.total_out > COLLECTOR_MAX_DEBUGDATA) {
		r = errbuf__set(err, -EFBIG, "%s: .gnu_debugdata: more than %u bytes decompressed",
				name, COLLECTOR_MAX_DEBUGDATA);
		goto cleanup;
	}
	*ret = out;
	*ret_len = (size_t)strm.total_out;
	out = NULL;
cleanup:
	lzma_end(&strm);
	free(out);
	return r;
}

int collector_elf__read_minidebuginfo(struct collector_elf *e, int fd, const char *name,
				      struct errbuf *err)
{
	struct collector_elf *mini = NULL;
	uint8_t *packed = NULL, *image = NULL;
	size_t have = 0, image_len = 0;
	char what[PATH_MAX];
	int r;

	if (e->debugdata_size == 0)
		return -ENOENT;
	if (e->debugdata_size > COLLECTOR_MAX_DEBUGDATA)
		return errbuf__set(err, -EFBIG, "%s: .gnu_debugdata: larger than %u bytes", name,
				   COLLECTOR_MAX_DEBUGDATA);
	packed = malloc((size_t)e->debugdata_size);
	if (!packed)
		return -ENOMEM;
	while (have < e->debugdata_size) {
		ssize_t n = pread(fd, packed + have, (size_t)e->debugdata_size - have,
				  (off_t)(e->debugdata_off + have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errbuf__set(err, -errno, "%s: .gnu_debugdata: %s", name,
					strerror(errno));
			goto cleanup;
		}
		if (n == 0) {
			r = errbuf__set(err, -EBADMSG,
					"%s: .gnu_debugdata lies past the file's end", name);
			goto cleanup;
		}
		have += (size_t)n;
	}
	r = xz_decompress(packed, have, name, err, &image, &image_len);
	if (r < 0)
		goto cleanup;
	/* the decompressed image is ours: libelf may work on it in place */
	snprintf(what, sizeof(what), "%s: .gnu_debugdata", name);
	r = read_image((char *)image, image_len, what, err, &mini);
	if (r < 0)
		goto cleanup;
	r = collector_elf__add_symbols(e, mini, what, err);
cleanup:
	collector_elf__free(mini);
	free(image);
	free(packed);
	return r;
}

void collector_elf__free(struct collector_elf *e)
{
	if (!e)
		return;
	free(e->syms);
	free(e->names);
	free(e->segs);
	free(e->debuglink);
	free(e);
}

int collector_elf__vaddr(const struct collector_elf *e, uint64_t file_offset, uint64_t *ret_vaddr)
{
	size_t i;

	for (i = 0; i < e->n_segs; i++) {
		const struct elf_seg *s = &e->segs[i];

		if (file_offset >= s->offset && file_offset - s->offset < s->filesz) {
			*ret_vaddr = file_offset - s->offset + s->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

/* The end of the segment holding vaddr, or UINT64_MAX if none does: how
 * far the last, zero-size symbol of a file reaches. */
static uint64_t segment_end(const struct collector_elf *e, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < e->n_segs; i++)
		if (vaddr >= e->segs[i].vaddr && vaddr - e->segs[i].vaddr < e->segs[i].filesz)
			return e->segs[i].vaddr + e->segs[i].filesz;
	return UINT64_MAX;
}

int collector_elf__lookup(const struct collector_elf *e, uint64_t vaddr, const char **ret_name,
			  uint64_t *ret_offset)
{
	size_t lo = 0, hi = e->n_syms;
	const struct elf_sym *s;

	/* the last symbol starting at or before vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	s = &e->syms[lo - 1];
	if (s->size) {
		if (vaddr - s->addr >= s->size)
			return -ENOENT;
	} else if (lo == e->n_syms && vaddr >= segment_end(e, s->addr)) {
		return -ENOENT;
	}
	*ret_name = e->names + s->name;
	*ret_offset = vaddr - s->addr;
	return 0;
}

const char *collector_elf__build_id(const struct collector_elf *e)
{
	return e->build_id[0] ? e->build_id : NULL;
}

size_t collector_elf__count(const struct collector_elf *e)
{
	return e->n_syms;
}

size_t collector_elf__bytes(const struct collector_elf *e)
{
	return sizeof(*e) + e->n_syms * sizeof(*e->syms) + e->names_len +
	       (e->n_segs ? e->n_segs : 1) * sizeof(*e->segs) +
	       (e->debuglink ? strlen(e->debuglink) + 1 : 0);
}
