/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pprof codec. Decoding runs in four steps:
 *   1. gunzip (detected by magic) under max_decompressed;
 *   2. a cheap walk over the top-level fields that validates them and counts
 *      the repeated ones, so that count caps hold before anything is
 *      allocated; a second pass records where each element sits;
 *   3. protobuf-c unpacks the header fields as a small Profile, then each
 *      string, mapping, function, location and sample on its own, into an
 *      arena emptied between elements and capped at max_decode_memory;
 *   4. each element goes into the model as it is unpacked, in dependency
 *      order, with every reference checked.
 * protobuf-c says only "failed" about a malformed message, so when an
 * unpack fails, a walk driven by protobuf-c's own descriptors finds and
 * names the fault (path, byte offset, what is wrong).
 */
#include "profile.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Profile PbProfile;
typedef Perftools__Profiles__Sample PbSample;
typedef Perftools__Profiles__Label PbLabel;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Line PbLine;
typedef Perftools__Profiles__Function PbFunction;
typedef Perftools__Profiles__ValueType PbValueType;

/* ---- wire walking ------------------------------------------------------ */

/* Reads a varint at *pos; 0 on success, -1 truncated, -2 malformed
 * (more than 10 bytes or bits past 64). */
static int read_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *ret)
{
	uint64_t v = 0;
	size_t p = *pos;

	for (unsigned shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (p >= len)
			return -1;
		b = d[p++];
		if (shift == 63 && b > 1)
			return -2;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pos = p;
			*ret = v;
			return 0;
		}
	}
	return -2;
}

static const char *wire_type_name(unsigned wt)
{
	static const char *const names[] = {"varint",	   "64-bit",	 "length-delimited",
					    "group start", "group end",	 "32-bit",
					    "invalid (6)", "invalid (7)"};
	return names[wt & 7];
}

/* The wire types protobuf accepts for a declared field type (bit mask). */
static unsigned allowed_wire_types(const ProtobufCFieldDescriptor *f)
{
	unsigned packed = f->label == PROTOBUF_C_LABEL_REPEATED ? 1u << 2 : 0;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_BOOL:
	case PROTOBUF_C_TYPE_ENUM:
		return 1u << 0 | packed;
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 1u << 1 | packed;
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return 1u << 5 | packed;
	default:
		return 1u << 2;
	}
}

struct walk {
	const uint8_t *base; /* start of the buffer, for offsets */
	struct errbuf *err;
	char path[256];	   /* where the walk started, e.g. "Profile.sample[3]" */
	unsigned depth;	   /* levels to descend into embedded messages; 0 = top only */
	size_t counts[16]; /* top-level occurrences per field number < 16 */
	/* the field being read at each level, turned into a path on failure */
	struct {
		const ProtobufCFieldDescriptor *f;
		uint64_t number;
		size_t index;
	} at[65];
	unsigned level;
};

static int walk_fail(struct walk *w, const uint8_t *at, const char *what)
{
	char path[512];
	size_t n = (size_t)snprintf(path, sizeof(path), "%s", w->path);

	for (unsigned i = 0; i <= w->level && n < sizeof(path); i++) {
		if (!w->at[i].f && !w->at[i].number)
			break;
		if (w->at[i].f)
			n += (size_t)snprintf(
				path + n, sizeof(path) - n,
				w->at[i].f->label == PROTOBUF_C_LABEL_REPEATED ? ".%s[%zu]" : ".%s",
				w->at[i].f->name, w->at[i].index);
		else
			n += (size_t)snprintf(path + n, sizeof(path) - n, ".<field %" PRIu64 ">",
					      w->at[i].number);
	}
	return errbuf__set(w->err, -EBADMSG, "malformed pprof: %s at byte %zu (in %s)", what,
			   (size_t)(at - w->base), path);
}

/* Walks one message of type desc over d[0, len). Recurses into embedded
 * messages while level < w->depth; counts top-level fields. Returns 0 or
 * -EBADMSG with the fault described in w->err. */
static int walk_message(struct walk *w, const ProtobufCMessageDescriptor *desc, const uint8_t *d,
			size_t len, unsigned level)
{
	size_t pos = 0;
	size_t index[16] = {0};
	int r = 0;

	w->level = level;
	w->at[level].f = NULL;
	w->at[level].number = 0;
	while (pos < len) {
		const ProtobufCFieldDescriptor *f;
		size_t start = pos;
		uint64_t tag, v, n;
		unsigned wt;
		int vr;

		w->level = level;
		w->at[level].f = NULL;
		w->at[level].number = 0;
		vr = read_varint(d, len, &pos, &tag);
		if (vr < 0)
			return walk_fail(w, d + start,
					 vr == -1
						 ? "truncated message (field tag runs past the end)"
						 : "bad varint in a field tag");
		wt = tag & 7;
		if ((tag >> 3) == 0 || (tag >> 3) > 536870911u)
			return walk_fail(w, d + start, "invalid field number 0");
		f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
		w->at[level].f = f;
		w->at[level].number = tag >> 3;
		if (f) {
			w->at[level].index = f->id < 16 ? index[f->id]++ : 0;
			if (!(allowed_wire_types(f) & (1u << wt))) {
				char what[160];

				snprintf(what, sizeof(what),
					 "wire type %s where the field needs %s",
					 wire_type_name(wt),
					 wire_type_name(__builtin_ctz(allowed_wire_types(f))));
				return walk_fail(w, d + start, what);
			}
		}
		if (level == 0 && (tag >> 3) < 16)
			w->counts[tag >> 3]++;
		switch (wt) {
		case 0:
			vr = read_varint(d, len, &pos, &v);
			if (vr < 0)
				return walk_fail(
					w, d + pos,
					vr == -1 ? "truncated message (varint runs past the end)"
						 : "bad varint (more than 10 bytes)");
			break;
		case 1:
		case 5:
			n = wt == 1 ? 8 : 4;
			if (len - pos < n)
				return walk_fail(
					w, d + pos,
					"truncated message (fixed-size value runs past the end)");
			pos += n;
			break;
		case 2:
			vr = read_varint(d, len, &pos, &n);
			if (vr < 0)
				return walk_fail(
					w, d + pos,
					vr == -1 ? "truncated message (length runs past the end)"
						 : "bad varint in a length");
			if (n > len - pos) {
				char what[160];

				snprintf(what, sizeof(what),
					 "truncated message (%" PRIu64 " bytes declared, %zu left)",
					 n, len - pos);
				return walk_fail(w, d + start, what);
			}
			if (f && level < w->depth && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				r = walk_message(w, f->descriptor, d + pos, (size_t)n, level + 1);
				if (r < 0)
					return r;
				w->level = level;
			} else if (f && level < w->depth && f->type != PROTOBUF_C_TYPE_STRING &&
				   f->type != PROTOBUF_C_TYPE_BYTES) {
				/* a packed run of scalars */
				size_t q = pos, end = pos + (size_t)n;

				while (q < end) {
					if (allowed_wire_types(f) & 1u) {
						vr = read_varint(d, end, &q, &v);
						if (vr < 0)
							return walk_fail(
								w, d + q,
								vr == -1
									? "truncated packed varints"
									: "bad varint in a packed "
									  "field");
					} else {
						size_t sz = (allowed_wire_types(f) & 2u) ? 8 : 4;

						if (end - q < sz)
							return walk_fail(w, d + q,
									 "packed fixed-size values "
									 "do not fill the field");
						q += sz;
					}
				}
			}
			pos += (size_t)n;
			break;
		default:
			return walk_fail(w, d + start,
					 wt == 3 || wt == 4
						 ? "groups (wire types 3, 4) are not part of pprof"
						 : "invalid wire type");
		}
	}
	return 0;
}

/* ---- the decoder's arena allocator ------------------------------------- */

struct pb_arena {
	struct arena arena;
	bool over_limit;
};

static void *pb_alloc(void *data, size_t size)
{
	struct pb_arena *a = data;
	void *p = arena__alloc(&a->arena, size);

	if (!p && a->arena.limit && a->arena.used + size > a->arena.limit)
		a->over_limit = true;
	return p;
}

static void pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* everything goes at once with the arena */
}

/* ---- id lookup --------------------------------------------------------- */

/* Maps the ids a pprof file uses (any non-zero uint64) to model ids. The
 * usual dense ids 1..n use a direct table; others go to a hash index. */
struct idmap {
	const char *what;
	uint32_t *direct; /* indexed by file id; 0 = absent */
	uint64_t direct_n;
	struct idpair {
		uint64_t file_id;
		uint32_t model_id;
	} * pairs;
	size_t n_pairs, cap_pairs;
	struct idtab index; /* ids are pairs index + 1 */
};

struct idpair_key {
	const struct idmap *m;
	uint64_t file_id;
};

static bool idpair_eq(const void *ctx, uint32_t id)
{
	const struct idpair_key *k = ctx;

	return k->m->pairs[id - 1].file_id == k->file_id;
}

static int idmap_init(struct idmap *m, const char *what, size_t expected)
{
	memset(m, 0, sizeof(*m));
	m->what = what;
	m->direct_n = 2 * (uint64_t)expected + 1024;
	m->direct = calloc(m->direct_n, sizeof(*m->direct));
	return m->direct ? 0 : -ENOMEM;
}

static uint32_t idmap_get_sparse(const struct idmap *m, uint64_t id)
{
	struct idpair_key k = {m, id};
	size_t slot;
	uint32_t pi;

	pi = idtab__find(&m->index, (uint32_t)util__hash_u64(id), idpair_eq, &k, &slot);
	return pi ? m->pairs[pi - 1].model_id : 0;
}

/* The model id of file id `id`, or 0 when the file has no such id. */
static inline uint32_t idmap_get(const struct idmap *m, uint64_t id)
{
	return id < m->direct_n ? m->direct[id] : idmap_get_sparse(m, id);
}

static int idmap_put(struct idmap *m, uint64_t id, uint32_t model_id, size_t i, struct errbuf *err)
{
	struct idpair_key k = {m, id};
	uint32_t h = (uint32_t)util__hash_u64(id);
	size_t slot;
	int r;

	if (id == 0)
		return errbuf__set(err, -EBADMSG, "malformed pprof: %s[%zu] has id 0", m->what, i);
	if (idmap_get(m, id))
		return errbuf__set(err, -EBADMSG,
				   "malformed pprof: %s[%zu]: duplicate %s id %" PRIu64, m->what, i,
				   m->what, id);
	if (id < m->direct_n) {
		m->direct[id] = model_id;
		return 0;
	}
	if (m->n_pairs == m->cap_pairs) {
		size_t ncap = m->cap_pairs ? m->cap_pairs * 2 : 64;
		struct idpair *np = realloc(m->pairs, ncap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		m->pairs = np;
		m->cap_pairs = ncap;
	}
	r = idtab__reserve(&m->index);
	if (r < 0)
		return r;
	idtab__find(&m->index, h, idpair_eq, &k, &slot);
	m->pairs[m->n_pairs++] = (struct idpair){id, model_id};
	idtab__insert_at(&m->index, slot, h, (uint32_t)m->n_pairs);
	return 0;
}

static void idmap_free(struct idmap *m)
{
	free(m->direct);
	free(m->pairs);
	idtab__free(&m->index);
}

/* ---- building the model ------------------------------------------------ */

/* Where each top-level repeated element sits in the buffer. */
struct elems {
	size_t *off;
	size_t *len;
	size_t n;
};

enum { F_SAMPLE_TYPE = 1, F_SAMPLE, F_MAPPING, F_LOCATION, F_FUNCTION, F_STRING };

struct builder {
	struct profile *p;
	const struct profile_limits *lim;
	struct errbuf *err;
	const uint8_t *buf;
	struct elems el[F_STRING + 1]; /* F_SAMPLE .. F_STRING */
	uint32_t *str;		       /* string index -> model string id */
	size_t n_str;
	struct idmap mappings, functions, locations;
	uint8_t *mapping_kind; /* by model mapping id */
	struct pb_arena pa;
	ProtobufCAllocator alloc;
	struct walk *w;
};

/* Unpacks element i of top-level field f with protobuf-c, into an arena
 * emptied first. On failure, finds and reports what is wrong with it. */
static void *unpack_elem(struct builder *b, const ProtobufCMessageDescriptor *desc, int f,
			 const char *name, size_t i, int *ret_err)
{
	const uint8_t *d = b->buf + b->el[f].off[i];
	size_t len = b->el[f].len[i];
	ProtobufCMessage *m;

	arena__reset(&b->pa.arena);
	m = protobuf_c_message_unpack(desc, &b->alloc, len, d);
	if (m)
		return m;
	b->w->depth = 64;
	memset(b->w->counts, 0, sizeof(b->w->counts));
	snprintf(b->w->path, sizeof(b->w->path), "Profile.%s[%zu]", name, i);
	b->w->base = b->buf;
	*ret_err = walk_message(b->w, desc, d, len, 0);
	if (*ret_err < 0)
		return NULL;
	if (b->pa.over_limit)
		*ret_err = errbuf__set(b->err, -E2BIG,
				       "Profile.%s[%zu] needs more than %zu bytes of memory to "
				       "decode (max_decode_memory)",
				       name, i, b->lim->max_decode_memory);
	else
		*ret_err = errbuf__set(
			b->err, -EBADMSG,
			"malformed pprof: the protobuf decoder rejected Profile.%s[%zu]", name, i);
	return NULL;
}

/* Resolves a string index of field `field` in what[i] (i == SIZE_MAX: not
 * an array) to a model string id. */
static int bstr(struct builder *b, int64_t idx, const char *what, size_t i, const char *field,
		uint32_t *ret)
{
	char where[96];

	if (idx >= 0 && (uint64_t)idx < b->n_str) {
		*ret = b->str[idx];
		return 0;
	}
	if (i == SIZE_MAX)
		snprintf(where, sizeof(where), "%s%s%s", what, *field ? "." : "", field);
	else
		snprintf(where, sizeof(where), "%s[%zu]%s%s", what, i, *field ? "." : "", field);
	return errbuf__set(b->err, -EBADMSG,
			   "malformed pprof: %s: string index %" PRId64
			   " out of range (the string table has %zu entries)",
			   where, idx, b->n_str);
}

static int build_strings(struct builder *b)
{
	const struct elems *e = &b->el[F_STRING];
	int r;

	b->n_str = e->n;
	if (e->n == 0)
		return errbuf__set(b->err, -EBADMSG, "malformed pprof: the string table is empty");
	if (e->len[0] != 0)
		return errbuf__set(b->err, -EBADMSG,
				   "malformed pprof: string_table[0] must be empty, found \"%.*s\"",
				   (int)(e->len[0] > 40 ? 40 : e->len[0]),
				   (const char *)b->buf + e->off[0]);
	b->str = malloc(e->n * sizeof(*b->str));
	if (!b->str)
		return -ENOMEM;
	/* a string's bytes are the field's payload: nothing to unpack */
	for (size_t i = 0; i < e->n; i++) {
		r = profile__intern(b->p, (const char *)b->buf + e->off[i], e->len[i], &b->str[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int build_header(struct builder *b, const PbProfile *pb)
{
	struct profile_meta meta = {0};
	uint32_t t, u;
	int r;

	for (size_t i = 0; i < pb->n_sample_type; i++) {
		if ((r = bstr(b, pb->sample_type[i]->type, "sample_type", i, "type", &t)) < 0 ||
		    (r = bstr(b, pb->sample_type[i]->unit, "sample_type", i, "unit", &u)) < 0)
			return r;
		r = profile__add_sample_type(b->p, profile__str(b->p, t), profile__str(b->p, u));
		if (r < 0)
			return r;
	}
	if (pb->period_type) {
		if ((r = bstr(b, pb->period_type->type, "period_type", SIZE_MAX, "type", &t)) < 0 ||
		    (r = bstr(b, pb->period_type->unit, "period_type", SIZE_MAX, "unit", &u)) < 0)
			return r;
		r = profile__set_period(b->p, profile__str(b->p, t), profile__str(b->p, u),
					pb->period);
	} else {
		r = profile__set_period(b->p, "", "", pb->period);
	}
	if (r < 0)
		return r;
	/* braid adds the two (the union of time ranges in profile__merge, the
	 * end of a recording in reports): a range that starts before 1970,
	 * runs backwards or ends past int64 would overflow there. */
	if (pb->time_nanos < 0 || pb->duration_nanos < 0 ||
	    pb->duration_nanos > INT64_MAX - pb->time_nanos)
		return errbuf__set(
			b->err, -EBADMSG,
			"malformed pprof: time_nanos %" PRId64 " and duration_nanos %" PRId64
			" are not a time range (negative, or their sum overflows 64 bits)",
			pb->time_nanos, pb->duration_nanos);
	profile__set_time(b->p, pb->time_nanos, pb->duration_nanos);
	if ((r = bstr(b, pb->default_sample_type, "default_sample_type", SIZE_MAX, "",
		      &meta.default_sample_type)) < 0 ||
	    (r = bstr(b, pb->drop_frames, "drop_frames", SIZE_MAX, "", &meta.drop_frames)) < 0 ||
	    (r = bstr(b, pb->keep_frames, "keep_frames", SIZE_MAX, "", &meta.keep_frames)) < 0 ||
	    (r = bstr(b, pb->doc_url, "doc_url", SIZE_MAX, "", &meta.doc_url)) < 0)
		return r;
	profile__set_meta(b->p, &meta);
	for (size_t i = 0; i < pb->n_comment; i++) {
		if ((r = bstr(b, pb->comment[i], "comment", i, "", &t)) < 0 ||
		    (r = profile__add_comment(b->p, t)) < 0)
			return r;
	}
	return 0;
}

static int build_mappings(struct builder *b)
{
	size_t n = b->el[F_MAPPING].n;
	int r = 0;

	b->mapping_kind = calloc(n + 1, 1);
	if (!b->mapping_kind)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const PbMapping *pm = unpack_elem(b, &perftools__profiles__mapping__descriptor,
						  F_MAPPING, "mapping", i, &r);
		struct profile_mapping m = {0};
		uint32_t id;

		if (!pm)
			return r;
		m.start = pm->memory_start;
		m.limit = pm->memory_limit;
		m.offset = pm->file_offset;
		m.flags = (pm->has_functions ? PROFILE_MAPPING_HAS_FUNCTIONS : 0) |
			  (pm->has_filenames ? PROFILE_MAPPING_HAS_FILENAMES : 0) |
			  (pm->has_line_numbers ? PROFILE_MAPPING_HAS_LINE_NUMBERS : 0) |
			  (pm->has_inline_frames ? PROFILE_MAPPING_HAS_INLINE : 0);
		if ((r = bstr(b, pm->filename, "mapping", i, "filename", &m.filename)) < 0 ||
		    (r = bstr(b, pm->build_id, "mapping", i, "build_id", &m.build_id)) < 0 ||
		    (r = profile__add_mapping(b->p, &m, &id)) < 0 ||
		    (r = idmap_put(&b->mappings, pm->id, id, i, b->err)) < 0)
			return r;
		/* model ids are dense, so never above the file's mapping count */
		b->mapping_kind[id] =
			(uint8_t)profile__kind_of_mapping(profile__str(b->p, m.filename));
	}
	return 0;
}

static int build_functions(struct builder *b)
{
	int r = 0;

	for (size_t i = 0; i < b->el[F_FUNCTION].n; i++) {
		const PbFunction *pf = unpack_elem(b, &perftools__profiles__function__descriptor,
						   F_FUNCTION, "function", i, &r);
		struct profile_function f = {0};
		uint32_t id;

		if (!pf)
			return r;
		f.start_line = pf->start_line;
		if ((r = bstr(b, pf->name, "function", i, "name", &f.name)) < 0 ||
		    (r = bstr(b, pf->system_name, "function", i, "system_name", &f.system_name)) <
			    0 ||
		    (r = bstr(b, pf->filename, "function", i, "filename", &f.filename)) < 0 ||
		    (r = profile__add_function(b->p, &f, &id)) < 0 ||
		    (r = idmap_put(&b->functions, pf->id, id, i, b->err)) < 0)
			return r;
	}
	return 0;
}

static int build_locations(struct builder *b)
{
	struct profile_line *lines = NULL;
	size_t lines_cap = 0;
	int r = 0;

	for (size_t i = 0; i < b->el[F_LOCATION].n; i++) {
		const PbLocation *pl = unpack_elem(b, &perftools__profiles__location__descriptor,
						   F_LOCATION, "location", i, &r);
		struct profile_location l = {0};
		uint32_t id;

		if (!pl)
			goto cleanup;
		l.address = pl->address;
		l.is_folded = pl->is_folded;
		if (pl->mapping_id) {
			l.mapping = idmap_get(&b->mappings, pl->mapping_id);
			if (!l.mapping) {
				r = errbuf__set(b->err, -EBADMSG,
						"malformed pprof: location[%zu] (id %" PRIu64
						") refers to mapping id %" PRIu64
						", which does not exist",
						i, pl->id, pl->mapping_id);
				goto cleanup;
			}
			l.kind = (enum frame_kind)b->mapping_kind[l.mapping];
		}
		if (pl->n_line > lines_cap) {
			struct profile_line *nl = realloc(lines, pl->n_line * sizeof(*nl));

			if (!nl) {
				r = -ENOMEM;
				goto cleanup;
			}
			lines = nl;
			lines_cap = pl->n_line;
		}
		for (size_t j = 0; j < pl->n_line; j++) {
			const PbLine *ln = pl->line[j];
			uint32_t fid = idmap_get(&b->functions, ln->function_id);

			if (!fid) {
				r = errbuf__set(b->err, -EBADMSG,
						"malformed pprof: location[%zu] (id %" PRIu64
						") line %zu refers to function id %" PRIu64
						", which does not exist",
						i, pl->id, j, ln->function_id);
				goto cleanup;
			}
			lines[j] = (struct profile_line){fid, ln->line, ln->column};
		}
		l.n_lines = (uint32_t)pl->n_line;
		l.lines = lines;
		if ((r = profile__add_location(b->p, &l, &id)) < 0 ||
		    (r = idmap_put(&b->locations, pl->id, id, i, b->err)) < 0)
			goto cleanup;
	}
cleanup:
	free(lines);
	return r;
}

/* A sample unpacked and checked, waiting to be added: its locations, values
 * and labels are copied out of the arena that the next unpack empties. */
struct pending {
	size_t index;
	uint32_t *locs;
	size_t n_locs;
	uint32_t hash;
	int64_t *values;
	struct profile_label *labels;
	size_t n_labels;
};

static int commit_sample(struct builder *b, const struct pending *s)
{
	uint32_t stack, lset;
	int r;

	if ((r = profile__add_stack_hashed(b->p, s->locs, s->n_locs, s->hash, &stack)) < 0 ||
	    (r = profile__add_labels(b->p, s->labels, s->n_labels, &lset)) < 0)
		return r;
	r = profile__add_sample(b->p, stack, lset, s->values);
	if (r == -EOVERFLOW)
		r = errbuf__set(b->err, -EBADMSG,
				"malformed pprof: sample[%zu]: values overflow 64 bits when summed",
				s->index);
	return r;
}

/* Samples are added one behind the one being unpacked: the stack index
 * slot of sample i is prefetched when it is unpacked and probed only after
 * sample i+1 has been unpacked, which hides the cache miss. */
static int build_samples(struct builder *b)
{
	size_t nt = profile__n_sample_types(b->p);
	size_t depth = b->lim->max_stack_depth ? b->lim->max_stack_depth : 1;
	size_t nlab = b->lim->max_labels ? b->lim->max_labels : 1;
	struct pending slot[2] = {{0}}, *cur, *prev = NULL;
	int r = 0;

	for (int k = 0; k < 2; k++) {
		slot[k].locs = malloc(depth * sizeof(uint32_t));
		slot[k].values = malloc((nt ? nt : 1) * sizeof(int64_t));
		slot[k].labels = malloc(nlab * sizeof(struct profile_label));
		if (!slot[k].locs || !slot[k].values || !slot[k].labels) {
			r = -ENOMEM;
			goto cleanup;
		}
	}
	for (size_t i = 0; i < b->el[F_SAMPLE].n; i++) {
		const PbSample *ps = unpack_elem(b, &perftools__profiles__sample__descriptor,
						 F_SAMPLE, "sample", i, &r);

		if (!ps)
			goto cleanup;
		if (ps->n_value != nt) {
			r = errbuf__set(b->err, -EBADMSG,
					"malformed pprof: sample[%zu] has %zu values but the "
					"profile has %zu sample types",
					i, ps->n_value, nt);
			goto cleanup;
		}
		if (ps->n_location_id > b->lim->max_stack_depth) {
			r = errbuf__set(
				b->err, -E2BIG,
				"sample[%zu] has %zu frames, over the stack depth limit of %zu", i,
				ps->n_location_id, b->lim->max_stack_depth);
			goto cleanup;
		}
		if (ps->n_label > b->lim->max_labels) {
			r = errbuf__set(b->err, -E2BIG,
					"sample[%zu] has %zu labels, over the limit of %zu", i,
					ps->n_label, b->lim->max_labels);
			goto cleanup;
		}
		cur = prev == &slot[0] ? &slot[1] : &slot[0];
		cur->index = i;
		for (size_t j = 0; j < ps->n_location_id; j++) {
			cur->locs[j] = idmap_get(&b->locations, ps->location_id[j]);
			if (!cur->locs[j]) {
				r = errbuf__set(b->err, -EBADMSG,
						"malformed pprof: sample[%zu] refers to location "
						"id %" PRIu64 ", which does not exist",
						i, ps->location_id[j]);
				goto cleanup;
			}
		}
		cur->n_locs = ps->n_location_id;
		for (size_t j = 0; j < ps->n_label; j++) {
			const PbLabel *pl = ps->label[j];
			struct profile_label *l = &cur->labels[j];

			l->num = pl->num;
			if ((r = bstr(b, pl->key, "sample", i, "label.key", &l->key)) < 0 ||
			    (r = bstr(b, pl->str, "sample", i, "label.str", &l->str)) < 0 ||
			    (r = bstr(b, pl->num_unit, "sample", i, "label.num_unit",
				      &l->num_unit)) < 0)
				goto cleanup;
		}
		cur->n_labels = ps->n_label;
		if (nt)
			memcpy(cur->values, ps->value, nt * sizeof(int64_t));
		cur->hash = profile__stack_hash(b->p, cur->locs, cur->n_locs);
		if (prev && (r = commit_sample(b, prev)) < 0)
			goto cleanup;
		prev = cur;
	}
	if (prev)
		r = commit_sample(b, prev);
cleanup:
	for (int k = 0; k < 2; k++) {
		free(slot[k].locs);
		free(slot[k].values);
		free(slot[k].labels);
	}
	return r;
}

static int check_caps(const struct walk *w, const struct profile_limits *lim, struct errbuf *err)
{
	static const struct {
		unsigned field;
		const char *what;
		size_t offset;
	} caps[] = {
		{F_SAMPLE, "samples", offsetof(struct profile_limits, max_samples)},
		{F_MAPPING, "mappings", offsetof(struct profile_limits, max_mappings)},
		{F_LOCATION, "locations", offsetof(struct profile_limits, max_locations)},
		{F_FUNCTION, "functions", offsetof(struct profile_limits, max_functions)},
		{F_STRING, "strings", offsetof(struct profile_limits, max_strings)},
		{F_SAMPLE_TYPE, "sample types", offsetof(struct profile_limits, max_sample_types)},
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(caps); i++) {
		size_t cap = *(const size_t *)((const char *)lim + caps[i].offset);

		if (w->counts[caps[i].field] > cap)
			return errbuf__set(err, -E2BIG, "profile has %zu %s, over the limit of %zu",
					   w->counts[caps[i].field], caps[i].what, cap);
	}
	return 0;
}

/* Second pass over the top level (the first one validated and counted):
 * records where each sample, mapping, location, function and string sits,
 * and copies every other field into `header`, which protobuf-c then
 * unpacks as a small Profile. */
static int split_top_level(struct builder *b, const struct walk *w, size_t len,
			   struct dynbuf *header)
{
	size_t pos = 0;
	int r;

	for (int f = F_SAMPLE; f <= F_STRING; f++) {
		size_t n = w->counts[f] ? w->counts[f] : 1;

		b->el[f].off = malloc(n * sizeof(size_t));
		b->el[f].len = malloc(n * sizeof(size_t));
		if (!b->el[f].off || !b->el[f].len)
			return -ENOMEM;
	}
	while (pos < len) {
		size_t start = pos;
		uint64_t tag, v;
		unsigned f;

		/* already validated by walk_message: these reads cannot fail */
		read_varint(b->buf, len, &pos, &tag);
		f = (unsigned)(tag >> 3);
		switch (tag & 7) {
		case 0:
			read_varint(b->buf, len, &pos, &v);
			break;
		case 1:
			pos += 8;
			break;
		case 5:
			pos += 4;
			break;
		case 2:
			read_varint(b->buf, len, &pos, &v);
			if (f >= F_SAMPLE && f <= F_STRING) {
				struct elems *e = &b->el[f];

				e->off[e->n] = pos;
				e->len[e->n] = (size_t)v;
				e->n++;
				pos += (size_t)v;
				continue;
			}
			pos += (size_t)v;
			break;
		}
		r = dynbuf__append(header, b->buf + start, pos - start);
		if (r < 0)
			return r;
	}
	return 0;
}

int profile__from_pprof(const void *data, size_t len, const struct profile_limits *lim,
			struct errbuf *err, struct profile **ret_profile)
{
	struct profile_limits deflim;
	struct dynbuf raw, header;
	struct walk w = {0};
	struct builder b = {0};
	PbProfile *pb = NULL;
	int r;

	dynbuf__init(&raw, 0);
	dynbuf__init(&header, 0);
	if (!lim) {
		profile_limits__default(&deflim);
		lim = &deflim;
	}
	b.buf = data;
	if (len == 0) {
		r = errbuf__set(err, -EBADMSG, "empty input: not a pprof profile");
		goto cleanup;
	}
	if (util__is_gzip(data, len)) {
		r = util__gunzip(data, len, lim->max_decompressed, err, &raw);
		if (r < 0)
			goto cleanup;
		b.buf = (const uint8_t *)raw.data;
		len = raw.len;
	} else if (len > lim->max_decompressed) {
		r = errbuf__set(err, -EFBIG, "profile of %zu bytes is over the limit of %zu bytes",
				len, lim->max_decompressed);
		goto cleanup;
	}

	w.base = b.buf;
	w.err = err;
	snprintf(w.path, sizeof(w.path), "Profile");
	r = walk_message(&w, &perftools__profiles__profile__descriptor, b.buf, len, 0);
	if (r < 0)
		goto cleanup;
	r = check_caps(&w, lim, err);
	if (r < 0)
		goto cleanup;

	b.lim = lim;
	b.err = err;
	b.w = &w;
	b.pa.arena.limit = lim->max_decode_memory;
	b.alloc = (ProtobufCAllocator){pb_alloc, pb_free, &b.pa};
	b.p = profile__new();
	if (!b.p) {
		r = -ENOMEM;
		goto cleanup;
	}
	if ((r = split_top_level(&b, &w, len, &header)) < 0)
		goto cleanup;
	pb = perftools__profiles__profile__unpack(&b.alloc, header.len,
						  (const uint8_t *)header.data);
	if (!pb) {
		/* fields 1 and 7-15; the offsets below are within the header copy */
		w.depth = 64;
		w.base = (const uint8_t *)header.data;
		snprintf(w.path, sizeof(w.path), "Profile");
		r = walk_message(&w, &perftools__profiles__profile__descriptor,
				 (const uint8_t *)header.data, header.len, 0);
		if (r == 0)
			r = errbuf__set(err, -EBADMSG,
					"malformed pprof: the protobuf decoder rejected the "
					"profile's header fields");
		goto cleanup;
	}
	w.base = b.buf;
	if ((r = idmap_init(&b.mappings, "mapping", b.el[F_MAPPING].n)) < 0 ||
	    (r = idmap_init(&b.functions, "function", b.el[F_FUNCTION].n)) < 0 ||
	    (r = idmap_init(&b.locations, "location", b.el[F_LOCATION].n)) < 0)
		goto cleanup;
	{
		/* Size the model once. A sample's frames are at most its bytes
		 * (each location id is a varint of at least one byte). */
		size_t frames = 0;

		for (size_t i = 0; i < b.el[F_SAMPLE].n; i++)
			frames += b.el[F_SAMPLE].len[i];
		if (frames > b.el[F_SAMPLE].n * lim->max_stack_depth)
			frames = b.el[F_SAMPLE].n * lim->max_stack_depth;
		r = profile__reserve(b.p, b.el[F_STRING].n, b.el[F_FUNCTION].n, b.el[F_LOCATION].n,
				     b.el[F_SAMPLE].n, frames);
		if (r < 0)
			goto cleanup;
	}
	/* strings first, then each table before the ones that refer to it */
	if ((r = build_strings(&b)) < 0 || (r = build_header(&b, pb)) < 0 ||
	    (r = build_mappings(&b)) < 0 || (r = build_functions(&b)) < 0 ||
	    (r = build_locations(&b)) < 0 || (r = build_samples(&b)) < 0)
		goto cleanup;
	*ret_profile = b.p;
	b.p = NULL;
cleanup:
	profile__free(b.p);
	free(b.str);
	free(b.mapping_kind);
	for (int f = F_SAMPLE; f <= F_STRING; f++) {
		free(b.el[f].off);
		free(b.el[f].len);
	}
	idmap_free(&b.mappings);
	idmap_free(&b.functions);
	idmap_free(&b.locations);
	arena__free(&b.pa.arena);
	dynbuf__free(&header);
	dynbuf__free(&raw);
	if (r == -ENOMEM)
		errbuf__set(err, r, "out of memory while decoding the profile");
	return r;
}

/* ---- encoding ---------------------------------------------------------- */

int profile__to_pprof(const struct profile *p, bool gzip, struct dynbuf *out)
{
	struct arena a = {0};
	PbProfile pb = PERFTOOLS__PROFILES__PROFILE__INIT;
	size_t ns = profile__n_strings(p), nt = profile__n_sample_types(p);
	size_t nm = profile__n_mappings(p), nl = profile__n_locations(p);
	size_t nf = profile__n_functions(p), nsamp = profile__n_samples(p);
	uint32_t pseudo[FRAME_KIND_COUNT] = {0}; /* pseudo mapping id per kind */
	uint8_t *mkind = NULL;
	struct profile_meta meta = profile__meta(p);
	const uint32_t *comments;
	size_t ncomments = profile__comments(p, &comments);
	struct dynbuf raw;
	int r = 0;

#define NEW(type, n) ((type *)arena__alloc(&a, ((n) ? (n) : 1) * sizeof(type)))
	dynbuf__init(&raw, 0);
	/* strings: the model's table, plus pseudo mapping names appended */
	pb.string_table = NEW(ProtobufCBinaryData, ns + FRAME_KIND_COUNT);
	pb.sample_type = NEW(PbValueType *, nt);
	pb.mapping = NEW(PbMapping *, nm + FRAME_KIND_COUNT);
	pb.location = NEW(PbLocation *, nl);
	pb.function = NEW(PbFunction *, nf);
	pb.sample = NEW(PbSample *, nsamp);
	pb.comment = NEW(int64_t, ncomments);
	mkind = calloc(nm + 1, 1);
	if (!pb.string_table || !pb.sample_type || !pb.mapping || !pb.location || !pb.function ||
	    !pb.sample || !pb.comment || !mkind) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < ns; i++) {
		pb.string_table[i].data = (uint8_t *)profile__str(p, (uint32_t)i);
		pb.string_table[i].len = profile__strlen(p, (uint32_t)i);
	}
	pb.n_string_table = ns;
	for (size_t i = 0; i < nt; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);
		PbValueType *v = NEW(PbValueType, 1);

		if (!v) {
			r = -ENOMEM;
			goto cleanup;
		}
		perftools__profiles__value_type__init(v);
		v->type = vt.type;
		v->unit = vt.unit;
		pb.sample_type[i] = v;
	}
	pb.n_sample_type = nt;
	{
		struct profile_value_type pt = profile__period_type(p);

		if (pt.type || pt.unit) {
			pb.period_type = NEW(PbValueType, 1);
			if (!pb.period_type) {
				r = -ENOMEM;
				goto cleanup;
			}
			perftools__profiles__value_type__init(pb.period_type);
			pb.period_type->type = pt.type;
			pb.period_type->unit = pt.unit;
		}
	}
	pb.period = profile__period(p);
	pb.time_nanos = profile__time_nanos(p);
	pb.duration_nanos = profile__duration_nanos(p);
	pb.default_sample_type = meta.default_sample_type;
	pb.drop_frames = meta.drop_frames;
	pb.keep_frames = meta.keep_frames;
	pb.doc_url = meta.doc_url;
	for (size_t i = 0; i < ncomments; i++)
		pb.comment[i] = comments[i];
	pb.n_comment = ncomments;

	for (size_t i = 1; i <= nm; i++) {
		const struct profile_mapping *m = profile__mapping(p, (uint32_t)i);
		PbMapping *pm = NEW(PbMapping, 1);

		if (!pm) {
			r = -ENOMEM;
			goto cleanup;
		}
		perftools__profiles__mapping__init(pm);
		pm->id = i;
		pm->memory_start = m->start;
		pm->memory_limit = m->limit;
		pm->file_offset = m->offset;
		pm->filename = m->filename;
		pm->build_id = m->build_id;
		pm->has_functions = !!(m->flags & PROFILE_MAPPING_HAS_FUNCTIONS);
		pm->has_filenames = !!(m->flags & PROFILE_MAPPING_HAS_FILENAMES);
		pm->has_line_numbers = !!(m->flags & PROFILE_MAPPING_HAS_LINE_NUMBERS);
		pm->has_inline_frames = !!(m->flags & PROFILE_MAPPING_HAS_INLINE);
		pb.mapping[i - 1] = pm;
		mkind[i] = (uint8_t)profile__kind_of_mapping(profile__str(p, m->filename));
	}
	pb.n_mapping = nm;

	for (size_t i = 1; i <= nf; i++) {
		const struct profile_function *f = profile__function(p, (uint32_t)i);
		PbFunction *pf = NEW(PbFunction, 1);

		if (!pf) {
			r = -ENOMEM;
			goto cleanup;
		}
		perftools__profiles__function__init(pf);
		pf->id = i;
		pf->name = f->name;
		pf->system_name = f->system_name;
		pf->filename = f->filename;
		pf->start_line = f->start_line;
		pb.function[i - 1] = pf;
	}
	pb.n_function = nf;

	for (size_t i = 1; i <= nl; i++) {
		struct profile_location l;
		PbLocation *pl = NEW(PbLocation, 1);
		PbLine *lines;

		profile__location(p, (uint32_t)i, &l);
		lines = NEW(PbLine, l.n_lines);
		if (!pl || !lines) {
			r = -ENOMEM;
			goto cleanup;
		}
		perftools__profiles__location__init(pl);
		pl->line = NEW(PbLine *, l.n_lines);
		if (!pl->line) {
			r = -ENOMEM;
			goto cleanup;
		}
		pl->id = i;
		pl->address = l.address;
		pl->is_folded = l.is_folded;
		pl->mapping_id = l.mapping;
		if (l.kind != (l.mapping ? mkind[l.mapping] : FRAME_UNKNOWN)) {
			/* the kind travels as a pseudo mapping named after it */
			if (l.kind == FRAME_UNKNOWN) {
				pl->mapping_id = 0;
			} else {
				if (!pseudo[l.kind]) {
					PbMapping *pm = NEW(PbMapping, 1);
					const char *name = profile__kind_mapping(l.kind);

					if (!pm) {
						r = -ENOMEM;
						goto cleanup;
					}
					perftools__profiles__mapping__init(pm);
					pm->id = ++pb.n_mapping;
					pm->has_functions = true;
					pb.string_table[pb.n_string_table].data = (uint8_t *)name;
					pb.string_table[pb.n_string_table].len = strlen(name);
					pm->filename = (int64_t)pb.n_string_table++;
					pb.mapping[pm->id - 1] = pm;
					pseudo[l.kind] = (uint32_t)pm->id;
				}
				pl->mapping_id = pseudo[l.kind];
			}
		}
		for (uint32_t j = 0; j < l.n_lines; j++) {
			perftools__profiles__line__init(&lines[j]);
			lines[j].function_id = l.lines[j].function;
			lines[j].line = l.lines[j].line;
			lines[j].column = l.lines[j].column;
			pl->line[j] = &lines[j];
		}
		pl->n_line = l.n_lines;
		pb.location[i - 1] = pl;
	}
	pb.n_location = nl;

	for (size_t i = 0; i < nsamp; i++) {
		struct profile_sample s = profile__sample(p, i);
		const uint32_t *locs;
		const struct profile_label *labels;
		size_t depth = profile__stack(p, s.stack, &locs);
		size_t nlab = profile__labels(p, s.labels, &labels);
		PbSample *ps = NEW(PbSample, 1);
		PbLabel *pls = NEW(PbLabel, nlab);

		if (!ps || !pls) {
			r = -ENOMEM;
			goto cleanup;
		}
		perftools__profiles__sample__init(ps);
		ps->location_id = NEW(uint64_t, depth);
		ps->label = NEW(PbLabel *, nlab);
		if (!ps->location_id || !ps->label) {
			r = -ENOMEM;
			goto cleanup;
		}
		for (size_t j = 0; j < depth; j++)
			ps->location_id[j] = locs[j];
		ps->n_location_id = depth;
		ps->value = (int64_t *)s.values;
		ps->n_value = nt;
		for (size_t j = 0; j < nlab; j++) {
			perftools__profiles__label__init(&pls[j]);
			pls[j].key = labels[j].key;
			pls[j].str = labels[j].str;
			pls[j].num = labels[j].num;
			pls[j].num_unit = labels[j].num_unit;
			ps->label[j] = &pls[j];
		}
		ps->n_label = nlab;
		pb.sample[i] = ps;
	}
	pb.n_sample = nsamp;
#undef NEW

	{
		size_t size = perftools__profiles__profile__get_packed_size(&pb);
		struct dynbuf *dst = gzip ? &raw : out;

		r = dynbuf__reserve(dst, size);
		if (r < 0)
			goto cleanup;
		perftools__profiles__profile__pack(&pb, (uint8_t *)dst->data + dst->len);
		dst->len += size;
		dst->data[dst->len] = '\0';
		if (gzip)
			r = util__gzip(raw.data, raw.len, 6, out);
	}
cleanup:
	free(mkind);
	arena__free(&a);
	dynbuf__free(&raw);
	return r;
}
