/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Folded (collapsed) stacks, as written by Brendan Gregg's stackcollapse
 * scripts and read by flamegraph.pl and Pyroscope: "root;caller;leaf 12"
 * per line, the count after the last space. Pyroscope's "lines" format is
 * the same without counts, each line weighing 1.
 */
#define _GNU_SOURCE /* memrchr, qsort_r */
#include "profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Parses a non-negative decimal count; false if it isn't one or overflows. */
static bool parse_count(const char *s, size_t len, int64_t *ret)
{
	int64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
			return false;
	}
	*ret = v;
	return true;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* Adds one frame name as a function and location; returns the location id. */
static int add_frame(struct profile *p, const char *name, size_t len, uint32_t *ret_loc)
{
	struct profile_function f = {0};
	struct profile_line line = {0};
	struct profile_location l = {0};
	int r;

	/* stackcollapse's annotations for kernel and JIT frames */
	if (has_suffix(name, len, "_[k]")) {
		l.kind = FRAME_KERNEL;
		len -= 4;
	} else if (has_suffix(name, len, "_[j]")) {
		l.kind = FRAME_JIT;
		len -= 4;
	}
	r = profile__intern(p, name, len, &f.name);
	if (r < 0)
		return r;
	r = profile__add_function(p, &f, &line.function);
	if (r < 0)
		return r;
	l.n_lines = 1;
	l.lines = &line;
	return profile__add_location(p, &l, ret_loc);
}

int profile__from_folded(const char *data, size_t len, const struct profile_folded_opts *opts,
			 const struct profile_limits *lim, struct errbuf *err,
			 struct profile **ret_profile)
{
	struct profile_limits deflim;
	struct profile *p = NULL;
	uint32_t *locs = NULL, stack;
	size_t lineno = 0, pos = 0;
	bool lines_fmt = opts && opts->lines;
	int r;

	if (!lim) {
		profile_limits__default(&deflim);
		lim = &deflim;
	}
	p = profile__new();
	locs = malloc((lim->max_stack_depth ? lim->max_stack_depth : 1) * sizeof(*locs));
	if (!p || !locs) {
		r = -ENOMEM;
		goto cleanup;
	}
	r = profile__add_sample_type(p, opts && opts->type ? opts->type : "samples",
				     opts && opts->unit ? opts->unit : "count");
	if (r < 0)
		goto cleanup;
	while (pos < len) {
		const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos, stack_len, depth = 0;
		int64_t count = 1;

		pos += llen + (nl ? 1 : 0);
		lineno++;
		if (llen && line[llen - 1] == '\r')
			llen--;
		if (llen > lim->max_line_length) {
			r = errbuf__set(err, -E2BIG,
					"line %zu: %zu bytes long, over the limit of %zu bytes",
					lineno, llen, lim->max_line_length);
			goto cleanup;
		}
		if (llen == 0)
			continue;
		stack_len = llen;
		if (!lines_fmt) {
			const char *sp = memrchr(line, ' ', llen);

			if (!sp) {
				r = errbuf__set(
					err, -EBADMSG,
					"line %zu: no count (expected \"frame;frame;... COUNT\")",
					lineno);
				goto cleanup;
			}
			stack_len = (size_t)(sp - line);
			if (!parse_count(sp + 1, llen - stack_len - 1, &count)) {
				r = errbuf__set(
					err, -EBADMSG,
					"line %zu: count \"%.*s\" is not a non-negative integer",
					lineno,
					(int)(llen - stack_len - 1 > 40 ? 40
									: llen - stack_len - 1),
					sp + 1);
				goto cleanup;
			}
		}
		/* frames come root first; the model wants the leaf first */
		for (size_t start = 0; start <= stack_len;) {
			const char *semi = memchr(line + start, ';', stack_len - start);
			size_t flen = semi ? (size_t)(semi - (line + start)) : stack_len - start;

			if (flen == 0) {
				r = errbuf__set(err, -EBADMSG,
						"line %zu: empty frame name (frame %zu)", lineno,
						depth + 1);
				goto cleanup;
			}
			if (depth == lim->max_stack_depth) {
				r = errbuf__set(
					err, -E2BIG,
					"line %zu: more than %zu frames (the stack depth limit)",
					lineno, lim->max_stack_depth);
				goto cleanup;
			}
			r = add_frame(p, line + start, flen, &locs[depth++]);
			if (r < 0)
				goto cleanup;
			start += flen + 1;
		}
		for (size_t i = 0; i < depth / 2; i++) {
			uint32_t t = locs[i];

			locs[i] = locs[depth - 1 - i];
			locs[depth - 1 - i] = t;
		}
		r = profile__add_stack(p, locs, depth, &stack);
		if (r < 0)
			goto cleanup;
		r = profile__add_sample(p, stack, 0, &count);
		if (r == 0 && profile__n_samples(p) > lim->max_samples) {
			r = errbuf__set(
				err, -E2BIG,
				"line %zu: more than %zu distinct stacks (the sample limit)",
				lineno, lim->max_samples);
			goto cleanup;
		}
		if (r == -EOVERFLOW) {
			r = errbuf__set(err, -EBADMSG,
					"line %zu: the counts of this stack overflow 64 bits",
					lineno);
			goto cleanup;
		}
		if (r < 0)
			goto cleanup;
	}
	*ret_profile = p;
	p = NULL;
	r = 0;
cleanup:
	profile__free(p);
	free(locs);
	if (r == -ENOMEM)
		errbuf__set(err, r, "out of memory while reading folded stacks");
	return r;
}

/* Appends a frame name with ';' and line breaks replaced. */
static int append_name(struct dynbuf *b, const char *s, size_t len)
{
	size_t start = b->len;
	int r;

	if (len == 0)
		return dynbuf__append(b, "??", 2);
	r = dynbuf__append(b, s, len);
	if (r < 0)
		return r;
	for (size_t i = start; i < b->len; i++)
		if (b->data[i] == ';' || b->data[i] == '\n' || b->data[i] == '\r')
			b->data[i] = '_';
	return 0;
}

/* Appends the frames of one location, outermost inlined function first. */
static int append_location(const struct profile *p, uint32_t id, bool annotate, struct dynbuf *b)
{
	struct profile_location l;
	int r;

	r = profile__location(p, id, &l);
	if (r < 0)
		return r;
	if (l.n_lines == 0) {
		const struct profile_mapping *m = l.mapping ? profile__mapping(p, l.mapping) : NULL;
		const char *file = m ? profile__str(p, m->filename) : "";

		if (*file) {
			const char *base = strrchr(file, '/');

			base = base ? base + 1 : file;
			r = append_name(b, base, strlen(base));
			if (r == 0)
				r = dynbuf__printf(b, "+0x%" PRIx64,
						   l.address - m->start + m->offset);
		} else {
			r = dynbuf__printf(b, "0x%" PRIx64, l.address);
		}
		if (r < 0)
			return r;
	}
	for (uint32_t k = l.n_lines; k-- > 0;) {
		const struct profile_function *f = profile__function(p, l.lines[k].function);

		if (k + 1 < l.n_lines && (r = dynbuf__putc(b, ';')) < 0)
			return r;
		r = append_name(b, profile__str(p, f->name), profile__strlen(p, f->name));
		if (r < 0)
			return r;
		if (annotate && (l.kind == FRAME_KERNEL || l.kind == FRAME_JIT)) {
			r = dynbuf__append(b, l.kind == FRAME_KERNEL ? "_[k]" : "_[j]", 4);
			if (r < 0)
				return r;
		}
	}
	if (l.n_lines == 0 && annotate && (l.kind == FRAME_KERNEL || l.kind == FRAME_JIT))
		return dynbuf__append(b, l.kind == FRAME_KERNEL ? "_[k]" : "_[j]", 4);
	return 0;
}

static int line_cmp(const void *a, const void *b, void *ctx)
{
	const struct strtab *t = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	size_t lx = strtab__len(t, x), ly = strtab__len(t, y);
	int c = memcmp(strtab__get(t, x), strtab__get(t, y), lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

int profile__to_folded(const struct profile *p, size_t type_index,
		       const struct profile_folded_opts *opts, struct dynbuf *out)
{
	struct strtab lines;
	struct dynbuf line;
	int64_t *sums = NULL;
	uint32_t *order = NULL;
	size_t cap = 0, n = 0, nt = profile__n_sample_types(p);
	bool annotate = opts && opts->annotate;
	int r;

	if (type_index >= nt)
		return -EINVAL;
	dynbuf__init(&line, 0);
	r = strtab__init(&lines);
	if (r < 0)
		return r;
	for (size_t i = 0; i < profile__n_samples(p); i++) {
		struct profile_sample s = profile__sample(p, i);
		const uint32_t *locs;
		size_t depth = profile__stack(p, s.stack, &locs);
		uint32_t id;

		dynbuf__reset(&line);
		for (size_t j = depth; j-- > 0;) {
			if (j + 1 < depth && (r = dynbuf__putc(&line, ';')) < 0)
				goto cleanup;
			if ((r = append_location(p, locs[j], annotate, &line)) < 0)
				goto cleanup;
		}
		if (depth == 0 && (r = dynbuf__append(&line, "??", 2)) < 0)
			goto cleanup;
		r = strtab__intern(&lines, line.data, line.len, 0, &id);
		if (r < 0)
			goto cleanup;
		if (id >= cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			int64_t *ns;

			while (ncap <= id)
				ncap *= 2;
			ns = realloc(sums, ncap * sizeof(*ns));
			if (!ns) {
				r = -ENOMEM;
				goto cleanup;
			}
			memset(ns + cap, 0, (ncap - cap) * sizeof(*ns));
			sums = ns;
			cap = ncap;
		}
		if (__builtin_add_overflow(sums[id], s.values[type_index], &sums[id])) {
			r = -EOVERFLOW;
			goto cleanup;
		}
	}
	order = malloc((lines.n ? lines.n : 1) * sizeof(*order));
	if (!order) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (uint32_t id = 1; id < lines.n; id++)
		if (sums[id] != 0)
			order[n++] = id;
	qsort_r(order, n, sizeof(*order), line_cmp, &lines);
	for (size_t i = 0; i < n; i++) {
		if ((r = dynbuf__append(out, strtab__get(&lines, order[i]),
					strtab__len(&lines, order[i]))) < 0 ||
		    (r = dynbuf__printf(out, " %" PRId64 "\n", sums[order[i]])) < 0)
			goto cleanup;
	}
cleanup:
	strtab__free(&lines);
	dynbuf__free(&line);
	free(sums);
	free(order);
	return r;
}
