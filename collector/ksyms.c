/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/ksyms.c: the kernel's text symbols from /proc/kallsyms, sorted
 * once and searched by address. A kernel has some 120,000 of them, so each
 * takes 16 bytes plus its name in one blob.
 */
#include "collector/collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define KSYMS_MAX_MODULES 65536u /* module names ("[mod]") told apart */
#define KSYMS_RANK_SHIFT  24	 /* rank lives above the module index while sorting */

struct ksym {
	uint64_t addr;
	uint32_t name;	 /* offset in names */
	uint32_t module; /* 0: the kernel, else 1 + index in modules */
};

struct collector_ksyms {
	struct ksym *syms; /* by address, one per address */
	size_t n;
	char *names; /* symbol names and "[mod]" names, NUL-terminated */
	size_t names_len;
	uint32_t *modules; /* offsets in names */
	size_t n_modules;
};

/* At one address: a global symbol over a weak one over a local one, then
 * the first listed (names are appended in file order). */
static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	uint32_t rx = x->module >> KSYMS_RANK_SHIFT, ry = y->module >> KSYMS_RANK_SHIFT;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (rx != ry)
		return rx > ry ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

static int add_name(struct dynbuf *names, const char *s, size_t len, uint32_t *ret_off)
{
	size_t off = names->len;
	int r;

	if (len > COLLECTOR_MAX_SYMBOL_NAME)
		len = COLLECTOR_MAX_SYMBOL_NAME;
	if (off + len + 1 > UINT32_MAX)
		return -EFBIG;
	r = dynbuf__append(names, s, len);
	if (r == 0)
		r = dynbuf__putc(names, '\0');
	if (r < 0)
		return r;
	*ret_off = (uint32_t)off;
	return 0;
}

static bool module_is(const struct collector_ksyms *k, const struct dynbuf *names, size_t i,
		      const char *name, size_t len)
{
	const char *m = names->data + k->modules[i];

	return strlen(m) == len && memcmp(m, name, len) == 0;
}

/* The index (1-based) of module "[name]", added if new. A module's lines
 * come together, so the one before is tried first. */
static int module_index(struct collector_ksyms *k, struct dynbuf *names, const char *name,
			size_t len, uint32_t *last, uint32_t *ret)
{
	uint32_t *mods, off;
	size_t i;
	int r;

	if (*last && module_is(k, names, *last - 1, name, len)) {
		*ret = *last;
		return 0;
	}
	for (i = 0; i < k->n_modules; i++) {
		if (module_is(k, names, i, name, len)) {
			*last = *ret = (uint32_t)(i + 1);
			return 0;
		}
	}
	if (k->n_modules == KSYMS_MAX_MODULES)
		return -E2BIG;
	mods = realloc(k->modules, (k->n_modules + 1) * sizeof(*mods));
	if (!mods)
		return -ENOMEM;
	k->modules = mods;
	r = add_name(names, name, len, &off);
	if (r < 0)
		return r;
	k->modules[k->n_modules++] = off;
	*last = *ret = (uint32_t)k->n_modules;
	return 0;
}

/* A message for a cap that a line went past (r from add_name or
 * module_index). */
static int cap_error(struct errbuf *err, int r, size_t line_no)
{
	if (r == -ENOMEM)
		return r;
	return errbuf__set(err, r, "kallsyms line %zu: more names or modules than braid keeps",
			   line_no);
}

int collector_ksyms__parse(const char *text, size_t len, struct errbuf *err,
			   struct collector_ksyms **ret)
{
	struct collector_ksyms *k = NULL;
	const char *p = text, *end = text + len;
	struct dynbuf names;
	size_t lines = 0, line_no = 0, i, kept;
	uint32_t last_module = 0;
	bool any_address = false;
	int r;

	dynbuf__init(&names, 0);
	k = calloc(1, sizeof(*k));
	if (!k) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	k->syms = malloc((lines + 1) * sizeof(*k->syms));
	if (!k->syms) {
		r = -ENOMEM;
		goto cleanup;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *q = p, *name, *tab;
		struct ksym *s = &k->syms[k->n];
		uint64_t addr = 0;
		char type;

		line_no++;
		p = eol + 1;
		if (q == eol)
			continue;
		/* "ADDR T name" at the least */
		if (!util__parse_hex64(&q, eol, &addr) || eol - q < 4 || q[0] != ' ' ||
		    q[2] != ' ') {
			r = errbuf__set(err, -EBADMSG,
					"kallsyms line %zu: not \"ADDRESS TYPE NAME\"", line_no);
			goto cleanup;
		}
		/* Names are kept NUL-terminated: a NUL inside one would cut it
		 * (a module "[foo\0]" would not end in ']' and would not match
		 * its other lines). kallsyms is text, so such a line is bad. */
		if (memchr(q, '\0', (size_t)(eol - q))) {
			r = errbuf__set(err, -EBADMSG, "kallsyms line %zu: a NUL byte", line_no);
			goto cleanup;
		}
		type = q[1];
		name = q + 3;
		any_address |= addr != 0;
		/* text only; a zero address names nothing (and means hidden) */
		if ((type != 't' && type != 'T' && type != 'w' && type != 'W') || addr == 0)
			continue;
		tab = memchr(name, '\t', (size_t)(eol - name));
		if (tab == name) {
			r = errbuf__set(err, -EBADMSG, "kallsyms line %zu: no name", line_no);
			goto cleanup;
		}
		s->addr = addr;
		s->module = 0;
		r = add_name(&names, name, (size_t)((tab ? tab : eol) - name), &s->name);
		if (r < 0) {
			r = cap_error(err, r, line_no);
			goto cleanup;
		}
		if (tab) {
			const char *mod = tab + 1;

			if (eol - mod < 3 || mod[0] != '[' || eol[-1] != ']') {
				r = errbuf__set(
					err, -EBADMSG,
					"kallsyms line %zu: a module name is not \"[name]\"",
					line_no);
				goto cleanup;
			}
			/* add_name cuts names at the cap: a module's would lose its
			 * ']' and never match its other lines. The kernel's module
			 * names have at most 55 bytes. */
			if (eol - mod > COLLECTOR_MAX_SYMBOL_NAME) {
				r = errbuf__set(err, -EBADMSG,
						"kallsyms line %zu: a module name over %d bytes",
						line_no, COLLECTOR_MAX_SYMBOL_NAME);
				goto cleanup;
			}
			r = module_index(k, &names, mod, (size_t)(eol - mod), &last_module,
					 &s->module);
			if (r < 0) {
				r = cap_error(err, r, line_no);
				goto cleanup;
			}
		}
		s->module |= (uint32_t)(type == 'T'   ? 3
					: type == 'W' ? 2
					: type == 't' ? 1
						      : 0)
			     << KSYMS_RANK_SHIFT;
		k->n++;
	}
	if (line_no > 0 && !any_address) {
		r = errbuf__set(
			err, -EACCES,
			"kallsyms addresses are hidden (kernel.kptr_restrict): run as root");
		goto cleanup;
	}
	qsort(k->syms, k->n, sizeof(*k->syms), ksym_cmp);
	for (i = 0, kept = 0; i < k->n; i++) {
		if (kept && k->syms[kept - 1].addr == k->syms[i].addr)
			continue;
		k->syms[kept] = k->syms[i];
		k->syms[kept].module &= (1u << KSYMS_RANK_SHIFT) - 1;
		kept++;
	}
	k->n = kept;
	/* give back what the line count and the blob's doubling reserved */
	if (k->n) {
		struct ksym *syms = realloc(k->syms, k->n * sizeof(*syms));

		if (syms)
			k->syms = syms;
	}
	/* a copy of the exact size: a dynbuf's memory may be mapped directly */
	k->names = malloc(names.len + 1);
	if (!k->names) {
		r = -ENOMEM;
		goto cleanup;
	}
	if (names.len)
		memcpy(k->names, names.data, names.len);
	k->names[names.len] = '\0';
	k->names_len = names.len;
	*ret = k;
	k = NULL;
	r = 0;
cleanup:
	dynbuf__free(&names);
	collector_ksyms__free(k);
	return r;
}

int collector_ksyms__load(const char *path, struct errbuf *err, struct collector_ksyms **ret)
{
	struct dynbuf buf;
	int r;

	dynbuf__init(&buf, 0);
	r = util__read_file(path, COLLECTOR_MAX_KALLSYMS, err, &buf);
	if (r == 0)
		r = collector_ksyms__parse(buf.data, buf.len, err, ret);
	dynbuf__free(&buf);
	return r;
}

void collector_ksyms__free(struct collector_ksyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->names);
	free(k->modules);
	free(k);
}

size_t collector_ksyms__count(const struct collector_ksyms *k)
{
	return k->n;
}

int collector_ksyms__lookup(const struct collector_ksyms *k, uint64_t addr, const char **ret_name,
			    const char **ret_module, uint64_t *ret_offset)
{
	size_t lo = 0, hi = k->n;
	const struct ksym *s;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	s = &k->syms[lo - 1];
	/* the last symbol of the kernel or of a module: its size is unknown,
	 * so what lies far past it (a gap before the modules, a module's data)
	 * is no function of it */
	if ((lo == k->n || k->syms[lo].module != s->module) &&
	    addr - s->addr > COLLECTOR_KSYM_MAX_SIZE)
		return -ENOENT;
	*ret_name = k->names + s->name;
	*ret_module = s->module ? k->names + k->modules[s->module - 1] : COLLECTOR_KERNEL_MODULE;
	*ret_offset = addr - s->addr;
	return 0;
}
