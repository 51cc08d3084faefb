/* SPDX-License-Identifier: Apache-2.0 */
/* The profile model: interned, deduplicated, insertion-ordered tables. */
#define _GNU_SOURCE /* qsort_r */
#include "profile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A growable array of fixed-size records; element 0 is reserved where ids
 * are 1-based. */
struct vec {
	void *data;
	size_t n;
	size_t cap;
};

static int vec_grow(struct vec *v, size_t elem, size_t extra)
{
	size_t ncap;
	void *p;

	if (extra > SIZE_MAX / elem - v->n)
		return -ENOMEM;
	ncap = v->cap ? v->cap : 16;
	while (ncap < v->n + extra)
		ncap *= 2;
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = util__big_realloc(v->data, v->cap * elem, ncap * elem);
	if (!p)
		return -ENOMEM;
	v->data = p;
	v->cap = ncap;
	return 0;
}

static void vec_free(struct vec *v, size_t elem)
{
	util__big_free(v->data, v->cap * elem);
	v->data = NULL;
	v->n = v->cap = 0;
}

static inline int vec_reserve(struct vec *v, size_t elem, size_t extra)
{
	return extra <= v->cap - v->n ? 0 : vec_grow(v, elem, extra);
}

#define VEC_AT(v, type, i) (((type *)(v).data)[i])

struct loc_rec {
	uint64_t address;
	uint32_t mapping;
	uint32_t line_off;
	uint32_t n_lines;
	uint8_t kind;
	uint8_t is_folded;
};

struct span {
	uint32_t off;
	uint32_t n;
};

struct sample_rec {
	uint32_t stack;
	uint32_t labels;
};

struct profile {
	struct strtab strings;
	struct vec sample_types; /* struct profile_value_type */
	struct profile_value_type period_type;
	int64_t period;
	int64_t time_nanos;
	int64_t duration_nanos;
	struct profile_meta meta;
	struct vec comments; /* uint32_t */

	struct vec functions; /* struct profile_function, [0] unused */
	struct idtab function_index;
	struct vec mappings; /* struct profile_mapping, [0] unused */
	struct idtab mapping_index;
	struct vec locations; /* struct loc_rec, [0] unused */
	struct vec lines;     /* struct profile_line */
	struct idtab location_index;
	struct vec stacks;     /* struct span into stack_locs, [0] unused */
	struct vec stack_locs; /* uint32_t */
	struct idtab stack_index;
	struct vec labelsets; /* struct span into labels, [0] = empty set */
	struct vec labels;    /* struct profile_label */
	struct idtab labelset_index;
	struct vec samples; /* struct sample_rec */
	struct vec values;  /* int64_t, n_sample_types per sample */
	/* samples of a stack, chained: by stack id the first sample's index
	 * + 1, by sample the next one's; nearly every stack has one sample */
	struct vec stack_first; /* uint32_t */
	struct vec sample_next; /* uint32_t */
};

static const char *const kind_names[FRAME_KIND_COUNT] = {
	[FRAME_UNKNOWN] = "unknown", [FRAME_NATIVE] = "native",		  [FRAME_KERNEL] = "kernel",
	[FRAME_JIT] = "jit",	     [FRAME_INTERPRETED] = "interpreted",
};

static const char *const kind_mappings[FRAME_KIND_COUNT] = {
	[FRAME_UNKNOWN] = "",
	[FRAME_NATIVE] = "[native]",
	[FRAME_KERNEL] = "[kernel.kallsyms]",
	[FRAME_JIT] = "[jit]",
	[FRAME_INTERPRETED] = "[interpreted]",
};

const char *profile__kind_name(enum frame_kind kind)
{
	return (unsigned)kind < FRAME_KIND_COUNT ? kind_names[kind] : "invalid";
}

const char *profile__kind_mapping(enum frame_kind kind)
{
	return (unsigned)kind < FRAME_KIND_COUNT ? kind_mappings[kind] : "";
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum frame_kind profile__kind_of_mapping(const char *f)
{
	size_t len;

	if (!f || !*f)
		return FRAME_UNKNOWN;
	if (has_prefix(f, "[kernel") || has_prefix(f, "[vmlinux"))
		return FRAME_KERNEL;
	if (strcmp(f, "[jit]") == 0)
		return FRAME_JIT;
	len = strlen(f);
	/* perf's JIT symbol files: /tmp/perf-PID.map */
	if (has_prefix(f, "/tmp/perf-") && len > 14 && strcmp(f + len - 4, ".map") == 0)
		return FRAME_JIT;
	if (strcmp(f, "[interpreted]") == 0)
		return FRAME_INTERPRETED;
	if (strcmp(f, "[native]") == 0 || strcmp(f, "[vdso]") == 0 || strcmp(f, "[vsyscall]") == 0)
		return FRAME_NATIVE;
	if (f[0] == '[')
		return FRAME_UNKNOWN;
	return FRAME_NATIVE;
}

void profile_limits__default(struct profile_limits *lim)
{
	lim->max_decompressed = PROFILE_DEFAULT_MAX_DECOMPRESSED;
	lim->max_decode_memory = PROFILE_DEFAULT_MAX_DECODE_MEMORY;
	lim->max_samples = PROFILE_DEFAULT_MAX_SAMPLES;
	lim->max_locations = PROFILE_DEFAULT_MAX_LOCATIONS;
	lim->max_functions = PROFILE_DEFAULT_MAX_FUNCTIONS;
	lim->max_mappings = PROFILE_DEFAULT_MAX_MAPPINGS;
	lim->max_strings = PROFILE_DEFAULT_MAX_STRINGS;
	lim->max_stack_depth = PROFILE_DEFAULT_MAX_STACK_DEPTH;
	lim->max_labels = PROFILE_DEFAULT_MAX_LABELS;
	lim->max_sample_types = PROFILE_DEFAULT_MAX_SAMPLE_TYPES;
	lim->max_line_length = PROFILE_DEFAULT_MAX_LINE_LENGTH;
}

/* ---- lifetime ---------------------------------------------------------- */

struct profile *profile__new(void)
{
	struct profile *p = calloc(1, sizeof(*p));
	struct span empty = {0, 0};

	if (!p)
		return NULL;
	if (strtab__init(&p->strings) < 0)
		goto fail;
	/* id 0 is "none" in every table; the empty label set is id 0 */
	if (vec_reserve(&p->functions, sizeof(struct profile_function), 1) < 0 ||
	    vec_reserve(&p->mappings, sizeof(struct profile_mapping), 1) < 0 ||
	    vec_reserve(&p->locations, sizeof(struct loc_rec), 1) < 0 ||
	    vec_reserve(&p->stacks, sizeof(struct span), 1) < 0 ||
	    vec_reserve(&p->labelsets, sizeof(struct span), 1) < 0)
		goto fail;
	memset(p->functions.data, 0, sizeof(struct profile_function));
	memset(p->mappings.data, 0, sizeof(struct profile_mapping));
	memset(p->locations.data, 0, sizeof(struct loc_rec));
	VEC_AT(p->stacks, struct span, 0) = empty;
	VEC_AT(p->labelsets, struct span, 0) = empty;
	p->functions.n = p->mappings.n = p->locations.n = 1;
	p->stacks.n = p->labelsets.n = 1;
	return p;
fail:
	profile__free(p);
	return NULL;
}

void profile__free(struct profile *p)
{
	if (!p)
		return;
	strtab__free(&p->strings);
	vec_free(&p->sample_types, sizeof(struct profile_value_type));
	vec_free(&p->comments, sizeof(uint32_t));
	vec_free(&p->functions, sizeof(struct profile_function));
	idtab__free(&p->function_index);
	vec_free(&p->mappings, sizeof(struct profile_mapping));
	idtab__free(&p->mapping_index);
	vec_free(&p->locations, sizeof(struct loc_rec));
	vec_free(&p->lines, sizeof(struct profile_line));
	idtab__free(&p->location_index);
	vec_free(&p->stacks, sizeof(struct span));
	vec_free(&p->stack_locs, sizeof(uint32_t));
	idtab__free(&p->stack_index);
	vec_free(&p->labelsets, sizeof(struct span));
	vec_free(&p->labels, sizeof(struct profile_label));
	idtab__free(&p->labelset_index);
	vec_free(&p->samples, sizeof(struct sample_rec));
	vec_free(&p->values, sizeof(int64_t));
	vec_free(&p->stack_first, sizeof(uint32_t));
	vec_free(&p->sample_next, sizeof(uint32_t));
	free(p);
}

int profile__reserve(struct profile *p, size_t strings, size_t functions, size_t locations,
		     size_t samples, size_t frames)
{
	size_t nt = p->sample_types.n ? p->sample_types.n : 1;
	int r;

	if ((r = strtab__reserve(&p->strings, strings + 1)) < 0 ||
	    (r = vec_reserve(&p->functions, sizeof(struct profile_function), functions)) < 0 ||
	    (r = idtab__presize(&p->function_index, functions)) < 0 ||
	    (r = vec_reserve(&p->locations, sizeof(struct loc_rec), locations)) < 0 ||
	    (r = vec_reserve(&p->lines, sizeof(struct profile_line), locations)) < 0 ||
	    (r = idtab__presize(&p->location_index, locations)) < 0 ||
	    (r = vec_reserve(&p->stacks, sizeof(struct span), samples)) < 0 ||
	    (r = vec_reserve(&p->stack_locs, sizeof(uint32_t), frames)) < 0 ||
	    (r = idtab__presize(&p->stack_index, samples)) < 0 ||
	    (r = vec_reserve(&p->samples, sizeof(struct sample_rec), samples)) < 0 ||
	    (r = vec_reserve(&p->values, sizeof(int64_t), samples * nt)) < 0 ||
	    (r = vec_reserve(&p->stack_first, sizeof(uint32_t), samples + 1)) < 0 ||
	    (r = vec_reserve(&p->sample_next, sizeof(uint32_t), samples)) < 0)
		return r;
	return 0;
}

/* ---- strings and header fields ----------------------------------------- */

int profile__intern(struct profile *p, const char *s, size_t len, uint32_t *ret_id)
{
	return strtab__intern(&p->strings, s, len, 0, ret_id);
}

int profile__intern_cstr(struct profile *p, const char *s, uint32_t *ret_id)
{
	return profile__intern(p, s ? s : "", s ? strlen(s) : 0, ret_id);
}

const char *profile__str(const struct profile *p, uint32_t id)
{
	return strtab__get(&p->strings, id);
}

size_t profile__strlen(const struct profile *p, uint32_t id)
{
	return strtab__len(&p->strings, id);
}

uint32_t profile__find_string(const struct profile *p, const char *s)
{
	uint32_t id = 0;

	return s && strtab__lookup(&p->strings, s, strlen(s), &id) ? id : 0;
}

size_t profile__n_strings(const struct profile *p)
{
	return p->strings.n;
}

int profile__add_sample_type(struct profile *p, const char *type, const char *unit)
{
	struct profile_value_type vt;
	int r;

	if (p->samples.n > 0)
		return -EBUSY;
	if (p->sample_types.n >= PROFILE_MAX_SAMPLE_TYPES)
		return -E2BIG;
	r = profile__intern_cstr(p, type, &vt.type);
	if (r < 0)
		return r;
	r = profile__intern_cstr(p, unit, &vt.unit);
	if (r < 0)
		return r;
	r = vec_reserve(&p->sample_types, sizeof(vt), 1);
	if (r < 0)
		return r;
	VEC_AT(p->sample_types, struct profile_value_type, p->sample_types.n++) = vt;
	return 0;
}

size_t profile__n_sample_types(const struct profile *p)
{
	return p->sample_types.n;
}

struct profile_value_type profile__sample_type(const struct profile *p, size_t i)
{
	struct profile_value_type none = {0, 0};

	return i < p->sample_types.n ? VEC_AT(p->sample_types, struct profile_value_type, i) : none;
}

int profile__find_sample_type(const struct profile *p, const char *spec)
{
	const char *slash = strchr(spec, '/');
	size_t tlen = slash ? (size_t)(slash - spec) : strlen(spec);

	for (size_t i = 0; i < p->sample_types.n; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);
		const char *t = profile__str(p, vt.type);

		if (strlen(t) != tlen || memcmp(t, spec, tlen) != 0)
			continue;
		if (slash && strcmp(profile__str(p, vt.unit), slash + 1) != 0)
			continue;
		return (int)i;
	}
	return -ENOENT;
}

int profile__default_sample_type(const struct profile *p)
{
	if (p->sample_types.n == 0)
		return -ENOENT;
	if (p->meta.default_sample_type) {
		int i = profile__find_sample_type(p, profile__str(p, p->meta.default_sample_type));
		if (i >= 0)
			return i;
	}
	return (int)p->sample_types.n - 1;
}

int profile__set_period(struct profile *p, const char *type, const char *unit, int64_t period)
{
	struct profile_value_type vt;
	int r;

	r = profile__intern_cstr(p, type, &vt.type);
	if (r < 0)
		return r;
	r = profile__intern_cstr(p, unit, &vt.unit);
	if (r < 0)
		return r;
	p->period_type = vt;
	p->period = period;
	return 0;
}

struct profile_value_type profile__period_type(const struct profile *p)
{
	return p->period_type;
}

int64_t profile__period(const struct profile *p)
{
	return p->period;
}

void profile__set_time(struct profile *p, int64_t time_nanos, int64_t duration_nanos)
{
	p->time_nanos = time_nanos;
	p->duration_nanos = duration_nanos;
}

int64_t profile__time_nanos(const struct profile *p)
{
	return p->time_nanos;
}

int64_t profile__duration_nanos(const struct profile *p)
{
	return p->duration_nanos;
}

struct profile_meta profile__meta(const struct profile *p)
{
	return p->meta;
}

void profile__set_meta(struct profile *p, const struct profile_meta *m)
{
	p->meta = *m;
}

int profile__add_comment(struct profile *p, uint32_t str)
{
	int r = vec_reserve(&p->comments, sizeof(uint32_t), 1);

	if (r < 0)
		return r;
	VEC_AT(p->comments, uint32_t, p->comments.n++) = str;
	return 0;
}

size_t profile__comments(const struct profile *p, const uint32_t **ret_comments)
{
	*ret_comments = p->comments.data;
	return p->comments.n;
}

/* ---- functions and mappings -------------------------------------------- */

struct rec_key {
	const struct profile *p;
	const void *rec;
};

static bool function_eq(const void *ctx, uint32_t id)
{
	const struct rec_key *k = ctx;
	const struct profile_function *a = k->rec;
	const struct profile_function *b = &VEC_AT(k->p->functions, struct profile_function, id);

	return a->name == b->name && a->system_name == b->system_name &&
	       a->filename == b->filename && a->start_line == b->start_line;
}

static bool mapping_eq(const void *ctx, uint32_t id)
{
	const struct rec_key *k = ctx;
	const struct profile_mapping *a = k->rec;
	const struct profile_mapping *b = &VEC_AT(k->p->mappings, struct profile_mapping, id);

	return a->start == b->start && a->limit == b->limit && a->offset == b->offset &&
	       a->filename == b->filename && a->build_id == b->build_id && a->flags == b->flags;
}

/* Finds rec in (v, index) by content, or appends a copy; ids are 1-based
 * indexes into v. The shared path of functions and mappings. */
static int intern_record(struct profile *p, struct vec *v, struct idtab *index, size_t elem,
			 const void *rec, uint32_t hash, idtab_eq_fn eq, uint32_t *ret_id)
{
	struct rec_key k = {p, rec};
	size_t slot;
	uint32_t id;
	int r;

	r = idtab__reserve(index);
	if (r < 0)
		return r;
	id = idtab__find(index, hash, eq, &k, &slot);
	if (!id) {
		if (v->n >= UINT32_MAX)
			return -E2BIG;
		r = vec_reserve(v, elem, 1);
		if (r < 0)
			return r;
		memcpy((char *)v->data + v->n * elem, rec, elem);
		id = (uint32_t)v->n++;
		idtab__insert_at(index, slot, hash, id);
	}
	*ret_id = id;
	return 0;
}

int profile__add_function(struct profile *p, const struct profile_function *f, uint32_t *ret_id)
{
	struct profile_function rec = *f;
	uint64_t h;

	if (f->name >= p->strings.n || f->system_name >= p->strings.n ||
	    f->filename >= p->strings.n)
		return -EINVAL;
	h = util__hash_combine(f->name, ((uint64_t)f->system_name << 32) | f->filename);
	h = util__hash_combine(h, (uint64_t)f->start_line);
	return intern_record(p, &p->functions, &p->function_index, sizeof(rec), &rec, (uint32_t)h,
			     function_eq, ret_id);
}

int profile__add_mapping(struct profile *p, const struct profile_mapping *m, uint32_t *ret_id)
{
	struct profile_mapping rec = *m;
	uint64_t h;

	if (m->filename >= p->strings.n || m->build_id >= p->strings.n)
		return -EINVAL;
	h = util__hash_combine(m->start, m->limit);
	h = util__hash_combine(h, m->offset);
	h = util__hash_combine(h, ((uint64_t)m->filename << 32) | m->build_id);
	h = util__hash_combine(h, m->flags);
	return intern_record(p, &p->mappings, &p->mapping_index, sizeof(rec), &rec, (uint32_t)h,
			     mapping_eq, ret_id);
}

size_t profile__n_functions(const struct profile *p)
{
	return p->functions.n - 1;
}

size_t profile__n_mappings(const struct profile *p)
{
	return p->mappings.n - 1;
}

const struct profile_function *profile__function(const struct profile *p, uint32_t id)
{
	return id && id < p->functions.n ? &VEC_AT(p->functions, struct profile_function, id)
					 : NULL;
}

const struct profile_mapping *profile__mapping(const struct profile *p, uint32_t id)
{
	return id && id < p->mappings.n ? &VEC_AT(p->mappings, struct profile_mapping, id) : NULL;
}

/* ---- locations --------------------------------------------------------- */

static bool location_eq(const void *ctx, uint32_t id)
{
	const struct rec_key *k = ctx;
	const struct profile_location *a = k->rec;
	const struct loc_rec *b = &VEC_AT(k->p->locations, struct loc_rec, id);
	const struct profile_line *bl = &VEC_AT(k->p->lines, struct profile_line, b->line_off);

	if (a->address != b->address || a->mapping != b->mapping || a->kind != b->kind ||
	    a->is_folded != b->is_folded || a->n_lines != b->n_lines)
		return false;
	for (uint32_t i = 0; i < a->n_lines; i++)
		if (a->lines[i].function != bl[i].function || a->lines[i].line != bl[i].line ||
		    a->lines[i].column != bl[i].column)
			return false;
	return true;
}

int profile__add_location(struct profile *p, const struct profile_location *l, uint32_t *ret_id)
{
	struct rec_key k = {p, l};
	struct loc_rec rec;
	uint64_t h;
	size_t slot;
	uint32_t id;
	int r;

	if ((l->mapping && l->mapping >= p->mappings.n) || (unsigned)l->kind >= FRAME_KIND_COUNT ||
	    (l->n_lines && !l->lines))
		return -EINVAL;
	h = util__hash_combine(l->address, ((uint64_t)l->mapping << 8) | (l->kind << 1) |
						   (l->is_folded ? 1 : 0));
	for (uint32_t i = 0; i < l->n_lines; i++) {
		if (!l->lines[i].function || l->lines[i].function >= p->functions.n)
			return -EINVAL;
		h = util__hash_combine(h, l->lines[i].function);
		h = util__hash_combine(h, (uint64_t)l->lines[i].line ^
						  ((uint64_t)l->lines[i].column << 40));
	}
	r = idtab__reserve(&p->location_index);
	if (r < 0)
		return r;
	id = idtab__find(&p->location_index, (uint32_t)h, location_eq, &k, &slot);
	if (id) {
		*ret_id = id;
		return 0;
	}
	if (p->locations.n >= UINT32_MAX || p->lines.n > UINT32_MAX - l->n_lines)
		return -E2BIG;
	r = vec_reserve(&p->locations, sizeof(rec), 1);
	if (r < 0)
		return r;
	r = vec_reserve(&p->lines, sizeof(struct profile_line), l->n_lines);
	if (r < 0)
		return r;
	rec.address = l->address;
	rec.mapping = l->mapping;
	rec.line_off = (uint32_t)p->lines.n;
	rec.n_lines = l->n_lines;
	rec.kind = (uint8_t)l->kind;
	rec.is_folded = l->is_folded;
	if (l->n_lines)
		memcpy(&VEC_AT(p->lines, struct profile_line, p->lines.n), l->lines,
		       l->n_lines * sizeof(struct profile_line));
	p->lines.n += l->n_lines;
	id = (uint32_t)p->locations.n++;
	VEC_AT(p->locations, struct loc_rec, id) = rec;
	idtab__insert_at(&p->location_index, slot, (uint32_t)h, id);
	*ret_id = id;
	return 0;
}

size_t profile__n_locations(const struct profile *p)
{
	return p->locations.n - 1;
}

int profile__location(const struct profile *p, uint32_t id, struct profile_location *ret)
{
	const struct loc_rec *rec;

	if (!id || id >= p->locations.n)
		return -ENOENT;
	rec = &VEC_AT(p->locations, struct loc_rec, id);
	ret->mapping = rec->mapping;
	ret->address = rec->address;
	ret->kind = (enum frame_kind)rec->kind;
	ret->is_folded = rec->is_folded;
	ret->n_lines = rec->n_lines;
	ret->lines = rec->n_lines ? &VEC_AT(p->lines, struct profile_line, rec->line_off) : NULL;
	return 0;
}

/* ---- stacks and label sets --------------------------------------------- */

struct span_key {
	const struct vec *spans;
	const struct vec *pool;
	size_t elem;
	const void *items;
	size_t n;
};

static bool span_eq(const void *ctx, uint32_t id)
{
	const struct span_key *k = ctx;
	const struct span *s = &VEC_AT(*k->spans, struct span, id);

	return s->n == k->n &&
	       (k->n == 0 || memcmp((const char *)k->pool->data + (size_t)s->off * k->elem,
				    k->items, k->n * k->elem) == 0);
}

/* Hash-conses an array of items, whose hash is h, into (spans, pool): equal
 * arrays share one id. The shared path of stacks and label sets. */
static int intern_span(struct vec *spans, struct vec *pool, struct idtab *index, size_t elem,
		       const void *items, size_t n, uint32_t h, uint32_t *ret_id)
{
	struct span_key k = {spans, pool, elem, items, n};
	struct span s;
	uint32_t id;
	size_t slot;
	int r;

	r = idtab__reserve(index);
	if (r < 0)
		return r;
	id = idtab__find(index, h, span_eq, &k, &slot);
	if (id) {
		*ret_id = id;
		return 0;
	}
	if (spans->n >= UINT32_MAX || n > UINT32_MAX || pool->n > UINT32_MAX - n)
		return -E2BIG;
	r = vec_reserve(spans, sizeof(s), 1);
	if (r < 0)
		return r;
	r = vec_reserve(pool, elem, n);
	if (r < 0)
		return r;
	s.off = (uint32_t)pool->n;
	s.n = (uint32_t)n;
	if (n)
		memcpy((char *)pool->data + pool->n * elem, items, n * elem);
	pool->n += n;
	id = (uint32_t)spans->n++;
	VEC_AT(*spans, struct span, id) = s;
	idtab__insert_at(index, slot, h, id);
	*ret_id = id;
	return 0;
}

uint32_t profile__stack_hash(const struct profile *p, const uint32_t *locations, size_t n)
{
	uint32_t h = (uint32_t)util__hash(locations, n * sizeof(uint32_t));

	if (p->stack_index.mask)
		__builtin_prefetch(&p->stack_index.slots[h & p->stack_index.mask]);
	return h;
}

int profile__add_stack_hashed(struct profile *p, const uint32_t *locations, size_t n, uint32_t hash,
			      uint32_t *ret_id)
{
	for (size_t i = 0; i < n; i++)
		if (!locations[i] || locations[i] >= p->locations.n)
			return -EINVAL;
	return intern_span(&p->stacks, &p->stack_locs, &p->stack_index, sizeof(uint32_t), locations,
			   n, hash, ret_id);
}

int profile__add_stack(struct profile *p, const uint32_t *locations, size_t n, uint32_t *ret_id)
{
	return profile__add_stack_hashed(p, locations, n, profile__stack_hash(p, locations, n),
					 ret_id);
}

size_t profile__n_stacks(const struct profile *p)
{
	return p->stacks.n - 1;
}

size_t profile__stack(const struct profile *p, uint32_t id, const uint32_t **ret_locations)
{
	const struct span *s;

	if (!id || id >= p->stacks.n) {
		*ret_locations = NULL;
		return 0;
	}
	s = &VEC_AT(p->stacks, struct span, id);
	*ret_locations = s->n ? &VEC_AT(p->stack_locs, uint32_t, s->off) : NULL;
	return s->n;
}

static int label_cmp(const void *a, const void *b)
{
	const struct profile_label *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->str != y->str)
		return x->str < y->str ? -1 : 1;
	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	if (x->num_unit != y->num_unit)
		return x->num_unit < y->num_unit ? -1 : 1;
	return 0;
}

int profile__add_labels(struct profile *p, const struct profile_label *labels, size_t n,
			uint32_t *ret_id)
{
	struct profile_label stackbuf[16] = {{0}}, *sorted = stackbuf;
	int r;

	if (n == 0) {
		*ret_id = 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (labels[i].key >= p->strings.n || labels[i].str >= p->strings.n ||
		    labels[i].num_unit >= p->strings.n)
			return -EINVAL;
	if (n > UTIL_ARRAY_SIZE(stackbuf)) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
	}
	/* zero the padding so that hashing and memcmp see only the fields */
	memset(sorted, 0, n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		sorted[i].key = labels[i].key;
		sorted[i].str = labels[i].str;
		sorted[i].num = labels[i].num;
		sorted[i].num_unit = labels[i].num_unit;
	}
	/* label sets are small: insertion sort beats qsort's call overhead */
	for (size_t i = 1; i < n; i++) {
		struct profile_label x = sorted[i];
		size_t j = i;

		for (; j > 0 && label_cmp(&sorted[j - 1], &x) > 0; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = x;
	}
	r = intern_span(&p->labelsets, &p->labels, &p->labelset_index, sizeof(struct profile_label),
			sorted, n, (uint32_t)util__hash(sorted, n * sizeof(*sorted)), ret_id);
	if (sorted != stackbuf)
		free(sorted);
	return r;
}

size_t profile__labels(const struct profile *p, uint32_t id,
		       const struct profile_label **ret_labels)
{
	const struct span *s;

	if (id >= p->labelsets.n) {
		*ret_labels = NULL;
		return 0;
	}
	s = &VEC_AT(p->labelsets, struct span, id);
	*ret_labels = s->n ? &VEC_AT(p->labels, struct profile_label, s->off) : NULL;
	return s->n;
}

/* ---- samples ----------------------------------------------------------- */

int profile__add_sample(struct profile *p, uint32_t stack, uint32_t labels, const int64_t *values)
{
	size_t nt = p->sample_types.n;
	uint32_t idx1;
	int64_t *dst, sums[PROFILE_MAX_SAMPLE_TYPES];
	int r;

	if (!stack || stack >= p->stacks.n || labels >= p->labelsets.n)
		return -EINVAL;
	if (stack >= p->stack_first.n) {
		/* cover every stack there is, and the ones its capacity allows */
		size_t grow = (p->stacks.cap > p->stacks.n ? p->stacks.cap : p->stacks.n) -
			      p->stack_first.n;

		r = vec_reserve(&p->stack_first, sizeof(uint32_t), grow);
		if (r < 0)
			return r;
		memset(&VEC_AT(p->stack_first, uint32_t, p->stack_first.n), 0,
		       grow * sizeof(uint32_t));
		p->stack_first.n += grow;
	}
	for (idx1 = VEC_AT(p->stack_first, uint32_t, stack); idx1;
	     idx1 = VEC_AT(p->sample_next, uint32_t, idx1 - 1)) {
		if (VEC_AT(p->samples, struct sample_rec, idx1 - 1).labels != labels)
			continue;
		dst = &VEC_AT(p->values, int64_t, (size_t)(idx1 - 1) * nt);
		for (size_t i = 0; i < nt; i++)
			if (__builtin_add_overflow(dst[i], values[i], &sums[i]))
				return -EOVERFLOW;
		memcpy(dst, sums, nt * sizeof(*dst));
		return 0;
	}
	if (p->samples.n >= UINT32_MAX - 1)
		return -E2BIG;
	if ((r = vec_reserve(&p->samples, sizeof(struct sample_rec), 1)) < 0 ||
	    (r = vec_reserve(&p->sample_next, sizeof(uint32_t), 1)) < 0 ||
	    (r = vec_reserve(&p->values, sizeof(int64_t), nt)) < 0)
		return r;
	if (nt)
		memcpy(&VEC_AT(p->values, int64_t, p->values.n), values, nt * sizeof(int64_t));
	p->values.n += nt;
	VEC_AT(p->samples, struct sample_rec, p->samples.n) = (struct sample_rec){stack, labels};
	/* push on the stack's chain */
	VEC_AT(p->sample_next, uint32_t, p->samples.n) = VEC_AT(p->stack_first, uint32_t, stack);
	p->sample_next.n++;
	p->samples.n++;
	VEC_AT(p->stack_first, uint32_t, stack) = (uint32_t)p->samples.n;
	return 0;
}

size_t profile__n_samples(const struct profile *p)
{
	return p->samples.n;
}

struct profile_sample profile__sample(const struct profile *p, size_t i)
{
	struct profile_sample s = {0, 0, NULL};
	const struct sample_rec *rec;

	if (i >= p->samples.n)
		return s;
	rec = &VEC_AT(p->samples, struct sample_rec, i);
	s.stack = rec->stack;
	s.labels = rec->labels;
	s.values = &VEC_AT(p->values, int64_t, i * p->sample_types.n);
	return s;
}

/* ---- operations -------------------------------------------------------- */

int profile__totals(const struct profile *p, int64_t *ret_totals)
{
	size_t nt = p->sample_types.n;
	int64_t t[PROFILE_MAX_SAMPLE_TYPES] = {0};
	const int64_t *v = p->values.data;

	for (size_t i = 0; i < p->samples.n; i++)
		for (size_t j = 0; j < nt; j++)
			if (__builtin_add_overflow(t[j], v[i * nt + j], &t[j]))
				return -EOVERFLOW;
	memcpy(ret_totals, t, nt * sizeof(*t));
	return 0;
}

static int types_match(const struct profile *dst, const struct profile *src)
{
	if (dst->sample_types.n != src->sample_types.n)
		return -EINVAL;
	for (size_t i = 0; i < dst->sample_types.n; i++) {
		struct profile_value_type a = profile__sample_type(dst, i);
		struct profile_value_type b = profile__sample_type(src, i);

		if (strcmp(profile__str(dst, a.type), profile__str(src, b.type)) != 0 ||
		    strcmp(profile__str(dst, a.unit), profile__str(src, b.unit)) != 0)
			return -EINVAL;
	}
	return 0;
}

/* Re-interns src's objects into dst. Every map is indexed by src id and
 * gives the dst id; unused ids stay 0. */
struct remap {
	uint32_t *str, *fn, *map, *loc, *stack, *lset;
};

static int remap_str(struct profile *dst, const struct profile *src, struct remap *m, uint32_t id,
		     uint32_t *ret)
{
	int r;

	if (id == 0) {
		*ret = 0;
		return 0;
	}
	if (!m->str[id]) {
		r = profile__intern(dst, profile__str(src, id), profile__strlen(src, id),
				    &m->str[id]);
		if (r < 0)
			return r;
	}
	*ret = m->str[id];
	return 0;
}

static int remap_location(struct profile *dst, const struct profile *src, struct remap *m,
			  uint32_t id, struct vec *scratch)
{
	struct profile_location l;
	struct profile_line *lines;
	int r;

	if (m->loc[id])
		return 0;
	r = profile__location(src, id, &l);
	if (r < 0)
		return r;
	if (l.mapping && !m->map[l.mapping]) {
		struct profile_mapping mm = *profile__mapping(src, l.mapping);

		if ((r = remap_str(dst, src, m, mm.filename, &mm.filename)) < 0 ||
		    (r = remap_str(dst, src, m, mm.build_id, &mm.build_id)) < 0 ||
		    (r = profile__add_mapping(dst, &mm, &m->map[l.mapping])) < 0)
			return r;
	}
	scratch->n = 0;
	r = vec_reserve(scratch, sizeof(*lines), l.n_lines);
	if (r < 0)
		return r;
	lines = scratch->data;
	for (uint32_t i = 0; i < l.n_lines; i++) {
		uint32_t fid = l.lines[i].function;

		if (!m->fn[fid]) {
			struct profile_function f = *profile__function(src, fid);

			if ((r = remap_str(dst, src, m, f.name, &f.name)) < 0 ||
			    (r = remap_str(dst, src, m, f.system_name, &f.system_name)) < 0 ||
			    (r = remap_str(dst, src, m, f.filename, &f.filename)) < 0 ||
			    (r = profile__add_function(dst, &f, &m->fn[fid])) < 0)
				return r;
		}
		lines[i] = l.lines[i];
		lines[i].function = m->fn[fid];
	}
	l.mapping = l.mapping ? m->map[l.mapping] : 0;
	l.lines = lines;
	return profile__add_location(dst, &l, &m->loc[id]);
}

/* Adds src's samples which[0 .. n) (which NULL: every sample) into dst, each
 * with the string label key=value added when key is not NULL (and src's
 * label of that key left out); dst takes src's sample types when it has
 * none and no samples, and its period type and period when unset. */
static int merge_samples(struct profile *dst, const struct profile *src, const size_t *which,
			 size_t n_which, const char *key, const char *value)
{
	struct remap m = {0};
	struct vec scratch = {0}, ids = {0}, lbl = {0};
	uint32_t add_key = 0, add_value = 0;
	size_t n_samples = which ? n_which : src->samples.n;
	int r = 0;

	if (dst->sample_types.n == 0 && dst->samples.n == 0) {
		for (size_t i = 0; i < src->sample_types.n; i++) {
			struct profile_value_type vt = profile__sample_type(src, i);

			r = profile__add_sample_type(dst, profile__str(src, vt.type),
						     profile__str(src, vt.unit));
			if (r < 0)
				return r;
		}
	}
	r = types_match(dst, src);
	if (r < 0)
		return r;
	m.str = calloc(src->strings.n, sizeof(uint32_t));
	m.fn = calloc(src->functions.n, sizeof(uint32_t));
	m.map = calloc(src->mappings.n, sizeof(uint32_t));
	m.loc = calloc(src->locations.n, sizeof(uint32_t));
	m.stack = calloc(src->stacks.n, sizeof(uint32_t));
	m.lset = calloc(src->labelsets.n, sizeof(uint32_t));
	if (!m.str || !m.fn || !m.map || !m.loc || !m.stack || !m.lset) {
		r = -ENOMEM;
		goto cleanup;
	}
	if (key) {
		r = profile__intern_cstr(dst, key, &add_key);
		if (r == 0)
			r = profile__intern_cstr(dst, value ? value : "", &add_value);
		if (r < 0)
			goto cleanup;
	}
	for (size_t w = 0; w < n_samples; w++) {
		size_t i = which ? which[w] : w;
		struct profile_sample s;

		if (i >= src->samples.n) {
			r = -EINVAL;
			goto cleanup;
		}
		s = profile__sample(src, i);
		if (!m.stack[s.stack]) {
			const uint32_t *locs;
			size_t n = profile__stack(src, s.stack, &locs);

			ids.n = 0;
			if ((r = vec_reserve(&ids, sizeof(uint32_t), n)) < 0)
				goto cleanup;
			for (size_t j = 0; j < n; j++) {
				if ((r = remap_location(dst, src, &m, locs[j], &scratch)) < 0)
					goto cleanup;
				VEC_AT(ids, uint32_t, j) = m.loc[locs[j]];
			}
			r = profile__add_stack(dst, ids.data, n, &m.stack[s.stack]);
			if (r < 0)
				goto cleanup;
		}
		if ((s.labels || key) && !m.lset[s.labels]) {
			const struct profile_label *l = NULL;
			size_t n = s.labels ? profile__labels(src, s.labels, &l) : 0, k = 0;
			struct profile_label *out;

			lbl.n = 0;
			if ((r = vec_reserve(&lbl, sizeof(*out), n + 1)) < 0)
				goto cleanup;
			out = lbl.data;
			for (size_t j = 0; j < n; j++) {
				if (key && strcmp(profile__str(src, l[j].key), key) == 0)
					continue;
				out[k] = l[j];
				if ((r = remap_str(dst, src, &m, l[j].key, &out[k].key)) < 0 ||
				    (r = remap_str(dst, src, &m, l[j].str, &out[k].str)) < 0 ||
				    (r = remap_str(dst, src, &m, l[j].num_unit, &out[k].num_unit)) <
					    0)
					goto cleanup;
				k++;
			}
			if (key)
				out[k++] = (struct profile_label){.key = add_key, .str = add_value};
			if ((r = profile__add_labels(dst, out, k, &m.lset[s.labels])) < 0)
				goto cleanup;
		}
		r = profile__add_sample(dst, m.stack[s.stack], m.lset[s.labels], s.values);
		if (r < 0)
			goto cleanup;
	}
	if (!dst->period_type.type && src->period_type.type) {
		r = profile__set_period(dst, profile__str(src, src->period_type.type),
					profile__str(src, src->period_type.unit), src->period);
		if (r < 0)
			goto cleanup;
	} else if (!dst->period) {
		dst->period = src->period;
	}
cleanup:
	free(m.str);
	free(m.fn);
	free(m.map);
	free(m.loc);
	free(m.stack);
	free(m.lset);
	vec_free(&scratch, sizeof(struct profile_line));
	vec_free(&ids, sizeof(uint32_t));
	vec_free(&lbl, sizeof(struct profile_label));
	return r;
}

int profile__copy_samples(struct profile *dst, const struct profile *src, const size_t *samples,
			  size_t n, const char *label_key, const char *label_value)
{
	if (!dst || !src)
		return -EINVAL;
	return merge_samples(dst, src, samples, samples ? n : 0, label_key, label_value);
}

int profile__merge(struct profile *dst, const struct profile *src)
{
	int64_t end_dst, end_src;
	int r = merge_samples(dst, src, NULL, 0, NULL, NULL);

	if (r < 0)
		return r;
	if (src->time_nanos) {
		/* the union of [time, time + duration] of both */
		end_src = src->time_nanos + src->duration_nanos;
		end_dst = dst->time_nanos + dst->duration_nanos;
		if (!dst->time_nanos || src->time_nanos < dst->time_nanos)
			dst->time_nanos = src->time_nanos;
		if (!end_dst || end_src > end_dst)
			end_dst = end_src;
		dst->duration_nanos = end_dst - dst->time_nanos;
	}
	return 0;
}

int profile__scale(struct profile *p, const double *ratios)
{
	size_t nt = p->sample_types.n;
	int64_t *v = p->values.data;

	for (size_t j = 0; j < nt; j++)
		if (!isfinite(ratios[j]))
			return -EINVAL;
	/* check first, so that a failure leaves the profile unchanged */
	for (size_t i = 0; i < p->samples.n; i++)
		for (size_t j = 0; j < nt; j++) {
			double x = round((double)v[i * nt + j] * ratios[j]);
			if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
				return -EOVERFLOW;
		}
	for (size_t i = 0; i < p->samples.n; i++)
		for (size_t j = 0; j < nt; j++)
			v[i * nt + j] = (int64_t)round((double)v[i * nt + j] * ratios[j]);
	return 0;
}

/* ---- top --------------------------------------------------------------- */

static int top_cmp(const void *a, const void *b, void *ctx)
{
	const struct profile_top_entry *x = a, *y = b;
	const struct profile *p = ctx;

	/* pprof's -top order: flat descending, then name */
	if (x->flat != y->flat)
		return x->flat > y->flat ? -1 : 1;
	return strcmp(profile__str(p, x->name), profile__str(p, y->name));
}

int profile__top(const struct profile *p, size_t type_index, struct profile_top_entry **ret_entries,
		 size_t *ret_n)
{
	size_t nt = p->sample_types.n, ns = p->strings.n, n = 0;
	int64_t *flat = NULL, *cum = NULL;
	uint32_t *seen = NULL; /* per name: last sample index + 1 that counted it */
	struct profile_top_entry *out = NULL;
	int r = 0;

	if (type_index >= nt)
		return -EINVAL;
	flat = calloc(ns, sizeof(*flat));
	cum = calloc(ns, sizeof(*cum));
	seen = calloc(ns, sizeof(*seen));
	if (!flat || !cum || !seen) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < p->samples.n; i++) {
		struct profile_sample s = profile__sample(p, i);
		int64_t v = s.values[type_index];
		const uint32_t *locs;
		size_t depth = profile__stack(p, s.stack, &locs);
		bool leaf = true;

		for (size_t j = 0; j < depth; j++) {
			const struct loc_rec *l = &VEC_AT(p->locations, struct loc_rec, locs[j]);

			for (uint32_t k = 0; k < l->n_lines; k++) {
				uint32_t fid =
					VEC_AT(p->lines, struct profile_line, l->line_off + k)
						.function;
				uint32_t name =
					VEC_AT(p->functions, struct profile_function, fid).name;

				if (leaf && __builtin_add_overflow(flat[name], v, &flat[name])) {
					r = -EOVERFLOW;
					goto cleanup;
				}
				leaf = false;
				if (seen[name] == i + 1)
					continue;
				seen[name] = (uint32_t)(i + 1);
				if (__builtin_add_overflow(cum[name], v, &cum[name])) {
					r = -EOVERFLOW;
					goto cleanup;
				}
			}
		}
	}
	/* as pprof, leave out functions whose value is zero for this type */
	for (size_t i = 0; i < ns; i++)
		if (seen[i] && (flat[i] || cum[i]))
			n++;
	out = malloc((n ? n : 1) * sizeof(*out));
	if (!out) {
		r = -ENOMEM;
		goto cleanup;
	}
	n = 0;
	for (size_t i = 0; i < ns; i++)
		if (seen[i] && (flat[i] || cum[i]))
			out[n++] = (struct profile_top_entry){(uint32_t)i, flat[i], cum[i]};
	qsort_r(out, n, sizeof(*out), top_cmp, (void *)p);
	*ret_entries = out;
	*ret_n = n;
	out = NULL;
cleanup:
	free(flat);
	free(cum);
	free(seen);
	free(out);
	return r;
}
