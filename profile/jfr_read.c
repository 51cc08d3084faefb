/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JFR file format: a chunk's header, its metadata (the types and their
 * fields), its constant pools, and the values of fields, read by type
 * (profile/jfr_int.h has the layout; docs/jfr.md what was verified). Nothing
 * here knows what an event means: profile/jfr.c does.
 *
 * Every count and length read from the recording is checked against the
 * bytes left before it is used, and every table has a cap, so a malformed
 * recording is an error with its offset, never a crash or a large allocation.
 */
#include "jfr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Slot number that stands for "the frames of a stack trace". */
#define SLOT_FRAMES 100

/* ---- the u64 → u32 index ------------------------------------------------- */

static int map_grow(struct jfr_map *m)
{
	size_t cap = m->mask ? (m->mask + 1) * 2 : 64;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	uint32_t *vals = calloc(cap, sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; m->mask && i <= m->mask; i++) {
		size_t j;

		if (!m->vals[i])
			continue;
		for (j = util__hash_u64(m->keys[i]) & (cap - 1); vals[j]; j = (j + 1) & (cap - 1))
			;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->mask = cap - 1;
	return 0;
}

/* Keys below this go to a direct table when they are dense enough (the
 * constant keys async-profiler and the JDK write mostly count from 1). */
#define DENSE_MAX (1u << 22)

static int dense_put(struct jfr_map *m, uint64_t key, uint32_t val)
{
	if (key >= m->n_dense) {
		size_t n = m->n_dense ? m->n_dense : 1024;
		uint32_t *d;

		while (n <= key)
			n *= 2;
		d = realloc(m->dense, n * sizeof(*d));
		if (!d)
			return -ENOMEM;
		memset(d + m->n_dense, 0, (n - m->n_dense) * sizeof(*d));
		m->dense = d;
		m->n_dense = n;
	}
	m->dense[key] = val;
	return 0;
}

int jfr_map__put(struct jfr_map *m, uint64_t key, uint32_t val)
{
	size_t j;

	if (key < m->n_dense || (key < DENSE_MAX && key < 4 * (m->n + m->n_dense_used) + 4096)) {
		m->n_dense_used++;
		return dense_put(m, key, val);
	}

	if ((m->n + 1) * 4 > (m->mask ? m->mask + 1 : 0) * 3) {
		int r = map_grow(m);

		if (r < 0)
			return r;
	}
	for (j = util__hash_u64(key) & m->mask; m->vals[j]; j = (j + 1) & m->mask)
		if (m->keys[j] == key) {
			m->vals[j] = val;
			return 0;
		}
	m->keys[j] = key;
	m->vals[j] = val;
	m->n++;
	return 0;
}

uint32_t jfr_map__get(const struct jfr_map *m, uint64_t key)
{
	if (key < m->n_dense && m->dense[key])
		return m->dense[key];
	if (!m->mask)
		return 0;
	for (size_t j = util__hash_u64(key) & m->mask; m->vals[j]; j = (j + 1) & m->mask)
		if (m->keys[j] == key)
			return m->vals[j];
	return 0;
}

void jfr_map__clear(struct jfr_map *m)
{
	if (m->mask)
		memset(m->vals, 0, (m->mask + 1) * sizeof(*m->vals));
	if (m->n_dense)
		memset(m->dense, 0, m->n_dense * sizeof(*m->dense));
	m->n = m->n_dense_used = 0;
}

void jfr_map__free(struct jfr_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->dense);
	memset(m, 0, sizeof(*m));
}

/* ---- primitives ------------------------------------------------------------ */

static int bad(const struct jfr_chunk *c, const uint8_t *at, const char *what)
{
	return errbuf__set(c->err, -EBADMSG, "JFR: %s at offset %zu", what, (size_t)(at - c->base));
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* A LEB128 varint of up to 9 bytes (the ninth holds 8 bits), as JFR writes
 * every integer. */
static inline int rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		uint8_t b;

		if (p >= end)
			return -EBADMSG;
		b = *p++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*pp = p;
			*ret = v;
			return 0;
		}
	}
	if (p >= end)
		return -EBADMSG;
	v |= (uint64_t)*p++ << 56;
	*pp = p;
	*ret = v;
	return 0;
}

/* A count of things of at least min_size bytes each: it can't exceed the
 * bytes left. */
static inline int rd_count(const uint8_t **pp, const uint8_t *end, uint32_t min_size, uint64_t *ret)
{
	int r = rd_varint(pp, end, ret);

	if (r < 0)
		return r;
	if (min_size && *ret > (uint64_t)(end - *pp) / min_size)
		return -EBADMSG;
	return 0;
}

static bool str_eq(struct jfr_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Appends code point cp as UTF-8 (U+FFFD for a surrogate or past U+10FFFF,
 * as Go's string([]rune) does). */
static size_t put_utf8(uint8_t *o, uint64_t cp)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Room for n bytes of converted text in the chunk's arena. */
static uint8_t *text_room(struct jfr_chunk *c, size_t n)
{
	if (n > JFR_MAX_CONVERTED_TEXT - c->converted)
		return NULL;
	c->converted += n;
	return arena__alloc(&c->arena, n ? n : 1);
}

/* A string value: its encoding byte, then nothing (null, empty), a key into
 * the String pool, UTF-8 bytes, UTF-16 code units as varints, or Latin-1
 * bytes. ret NULL reads past it. Before the pools are read, a key is kept
 * to be resolved on use; after, it is resolved at once. */
static int rd_string(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end, bool resolve,
		     struct jfr_str *ret)
{
	const uint8_t *p = *pp;
	uint64_t n;
	uint8_t *o;
	size_t len = 0;
	int r;

	if (p >= end)
		return -EBADMSG;
	switch (*p++) {
	case 0: /* null */
	case 1: /* "" */
		if (ret)
			*ret = (struct jfr_str){"", 0, 0};
		break;
	case 2: /* a constant of the java.lang.String pool */
		r = rd_varint(&p, end, &n);
		if (r < 0)
			return r;
		if (!ret)
			break;
		if (resolve) {
			const struct jfr_entry *e = jfr_chunk__lookup(c, JFR_POOL_STRING, n);

			*ret = e ? e->s : (struct jfr_str){"", 0, 0};
			if (ret->ref)
				*ret = (struct jfr_str){"", 0, 0};
			break;
		}
		if (c->n_str_refs >= JFR_MAX_POOL_ENTRIES)
			return -E2BIG;
		if (util__grow((void **)&c->str_refs, &c->cap_str_refs, c->n_str_refs + 1,
			       sizeof(*c->str_refs)) < 0)
			return -ENOMEM;
		c->str_refs[c->n_str_refs++] = n;
		*ret = (struct jfr_str){NULL, 0, (uint32_t)c->n_str_refs};
		break;
	case 3: /* UTF-8 */
		r = rd_count(&p, end, 1, &n);
		if (r < 0)
			return r;
		if (n > UINT32_MAX)
			return -EBADMSG;
		if (ret)
			*ret = (struct jfr_str){(const char *)p, (uint32_t)n, 0};
		p += n;
		break;
	case 4: /* UTF-16 code units, a varint each */
		r = rd_count(&p, end, 1, &n);
		if (r < 0)
			return r;
		o = ret ? text_room(c, n * 4) : NULL;
		if (ret && !o)
			return -E2BIG;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t u;

			r = rd_varint(&p, end, &u);
			if (r < 0)
				return r;
			if (o)
				len += put_utf8(o + len, u);
		}
		if (ret)
			*ret = (struct jfr_str){(const char *)o, (uint32_t)len, 0};
		break;
	case 5: /* Latin-1 */
		r = rd_count(&p, end, 1, &n);
		if (r < 0)
			return r;
		o = ret ? text_room(c, n * 2) : NULL;
		if (ret && !o)
			return -E2BIG;
		for (uint64_t i = 0; o && i < n; i++)
			len += put_utf8(o + len, p[i]);
		if (ret)
			*ret = (struct jfr_str){(const char *)o, (uint32_t)len, 0};
		p += n;
		break;
	default:
		return -EBADMSG;
	}
	*pp = p;
	return 0;
}

struct jfr_str jfr_chunk__str(const struct jfr_chunk *c, struct jfr_str s)
{
	const struct jfr_entry *e;

	if (!s.ref)
		return s.p ? s : (struct jfr_str){"", 0, 0};
	e = s.ref <= c->n_str_refs ? jfr_chunk__lookup(c, JFR_POOL_STRING, c->str_refs[s.ref - 1])
				   : NULL;
	if (!e || e->s.ref || !e->s.p)
		return (struct jfr_str){"", 0, 0};
	return e->s;
}

/* ---- metadata ------------------------------------------------------------- */

enum role { ROLE_TOP, ROLE_ROOT, ROLE_METADATA, ROLE_CLASS, ROLE_FIELD, ROLE_SKIP };

static const struct {
	const char *name;
	enum jfr_prim prim;
} prims[] = {
	{"boolean", JFR_BOOLEAN}, {"byte", JFR_BYTE},	  {"char", JFR_CHAR},
	{"short", JFR_SHORT},	  {"int", JFR_INT},	  {"long", JFR_LONG},
	{"float", JFR_FLOAT},	  {"double", JFR_DOUBLE}, {"java.lang.String", JFR_STRING},
};

static const char *const pool_names[JFR_POOL_COUNT] = {
	[JFR_POOL_STRING] = "java.lang.String",
	[JFR_POOL_SYMBOL] = "jdk.types.Symbol",
	[JFR_POOL_CLASS] = "java.lang.Class",
	[JFR_POOL_METHOD] = "jdk.types.Method",
	[JFR_POOL_STACK] = "jdk.types.StackTrace",
	[JFR_POOL_FRAMETYPE] = "jdk.types.FrameType",
	[JFR_POOL_THREADSTATE] = "jdk.types.ThreadState",
	[JFR_POOL_THREAD] = "java.lang.Thread",
};

/* A decimal attribute value (a type id). */
static bool parse_id(struct jfr_str s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s.p || !s.len || s.len > 19)
		return false;
	for (uint32_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	*ret = v;
	return true;
}

/* One element of the metadata tree (name, attributes, children), read as
 * `role` says: classes under the metadata element, fields under classes,
 * the rest read past. */
static int read_element(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end,
			enum role parent, int depth)
{
	struct jfr_str attr_name = {0}, attr_class = {0}, attr_cpool = {0}, attr_dim = {0},
		       attr_id = {0};
	enum role role = ROLE_SKIP;
	uint64_t name, n_attrs, n_children;
	const uint8_t *at = *pp;
	int r;

	if (depth > JFR_MAX_DEPTH)
		return bad(c, at, "the metadata nests too deep");
	r = rd_varint(pp, end, &name);
	if (r == 0 && name >= c->n_mstr)
		r = -EBADMSG;
	if (r == 0)
		r = rd_count(pp, end, 2, &n_attrs);
	if (r < 0)
		return bad(c, at, "a malformed metadata element");
	if (parent == ROLE_TOP)
		role = ROLE_ROOT;
	else if (parent == ROLE_ROOT && str_eq(c->mstr[name], "metadata"))
		role = ROLE_METADATA;
	else if (parent == ROLE_METADATA && str_eq(c->mstr[name], "class"))
		role = ROLE_CLASS;
	else if (parent == ROLE_CLASS && str_eq(c->mstr[name], "field"))
		role = ROLE_FIELD;
	for (uint64_t i = 0; i < n_attrs; i++) {
		uint64_t k, v;

		if (rd_varint(pp, end, &k) < 0 || rd_varint(pp, end, &v) < 0 || k >= c->n_mstr ||
		    v >= c->n_mstr)
			return bad(c, at, "a malformed metadata attribute");
		if (str_eq(c->mstr[k], "name"))
			attr_name = c->mstr[v];
		else if (str_eq(c->mstr[k], "class"))
			attr_class = c->mstr[v];
		else if (str_eq(c->mstr[k], "constantPool"))
			attr_cpool = c->mstr[v];
		else if (str_eq(c->mstr[k], "dimension"))
			attr_dim = c->mstr[v];
		else if (str_eq(c->mstr[k], "id"))
			attr_id = c->mstr[v];
	}
	if (rd_count(pp, end, 3, &n_children) < 0)
		return bad(c, at, "a malformed metadata element");
	if (role == ROLE_CLASS) {
		struct jfr_class *k;

		if (c->n_classes >= JFR_MAX_CLASSES)
			return errbuf__set(c->err, -E2BIG, "JFR: over %u types in a chunk",
					   JFR_MAX_CLASSES);
		if (util__grow((void **)&c->classes, &c->cap_classes, c->n_classes + 1,
			       sizeof(*c->classes)) < 0)
			return -ENOMEM;
		k = &c->classes[c->n_classes];
		memset(k, 0, sizeof(*k));
		if (!parse_id(attr_id, &k->id) || !attr_name.p)
			return bad(c, at, "a type without a name or a numeric id");
		k->name = attr_name;
		k->field0 = (uint32_t)c->n_fields;
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(prims); i++)
			if (str_eq(attr_name, prims[i].name))
				k->prim = prims[i].prim;
	} else if (role == ROLE_FIELD) {
		struct jfr_field *f;

		if (c->n_fields >= JFR_MAX_FIELDS)
			return errbuf__set(c->err, -E2BIG, "JFR: over %u fields in a chunk",
					   JFR_MAX_FIELDS);
		if (util__grow((void **)&c->fields, &c->cap_fields, c->n_fields + 1,
			       sizeof(*c->fields)) < 0)
			return -ENOMEM;
		f = &c->fields[c->n_fields++];
		memset(f, 0, sizeof(*f));
		f->name = attr_name;
		f->cls = -1;
		if (!attr_name.p || !parse_id(attr_class, &f->type))
			return bad(c, at, "a field without a name or a numeric type");
		f->cpool = str_eq(attr_cpool, "true");
		if (attr_dim.p && attr_dim.len) {
			if (!str_eq(attr_dim, "1"))
				return bad(c, at, "a field of more than one dimension");
			f->array = true;
		}
	}
	for (uint64_t i = 0; i < n_children; i++) {
		r = read_element(c, pp, end, role, depth + 1);
		if (r < 0)
			return r;
	}
	if (role == ROLE_CLASS) {
		struct jfr_class *k = &c->classes[c->n_classes++];

		k->n_fields = (uint32_t)(c->n_fields - k->field0);
	}
	return 0;
}

/* The fewest bytes a value of class i takes, to bound array counts: an
 * array of n values needs n * min_size bytes, and an array of values of no
 * bytes is not looped over. A type that holds itself (not through an array
 * or a constant) is malformed. */
static int size_class(struct jfr_chunk *c, int32_t i, int depth)
{
	struct jfr_class *k = &c->classes[i];
	uint64_t sum = 0;

	if (k->sizing == 2)
		return 0;
	if (k->sizing == 1 || depth > JFR_MAX_DEPTH)
		return errbuf__set(c->err, -EBADMSG, "JFR: type %.*s holds itself",
				   (int)k->name.len, k->name.p);
	k->sizing = 1;
	switch (k->prim) {
	case JFR_FLOAT:
		sum = 4;
		break;
	case JFR_DOUBLE:
		sum = 8;
		break;
	case JFR_STRUCT:
		for (uint32_t j = 0; j < k->n_fields; j++) {
			struct jfr_field *f = &c->fields[k->field0 + j];
			int r;

			if (f->cpool || f->array || f->cls < 0) {
				sum += 1;
				continue;
			}
			r = size_class(c, f->cls, depth + 1);
			if (r < 0)
				return r;
			k = &c->classes[i];
			sum += c->classes[f->cls].min_size;
		}
		break;
	default:
		sum = 1;
	}
	k->min_size = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
	k->sizing = 2;
	return 0;
}

static int read_metadata(struct jfr_chunk *c, const uint8_t *at)
{
	const uint8_t *p = at, *end;
	uint64_t size, type, v, n;
	uint64_t max_id = 0;
	int r;

	if (rd_varint(&p, c->end, &size) < 0 || size == 0 || size > (uint64_t)(c->end - at))
		return bad(c, at, "the metadata event's size is not valid");
	end = at + size;
	if (rd_varint(&p, end, &type) < 0 || type != 0)
		return bad(c, at, "the header's metadata offset does not point at metadata");
	/* start, duration, metadata id */
	for (int i = 0; i < 3; i++)
		if (rd_varint(&p, end, &v) < 0)
			return bad(c, p, "a truncated metadata event");
	if (rd_count(&p, end, 1, &n) < 0)
		return bad(c, p, "a malformed metadata string table");
	if (n > JFR_MAX_META_STRINGS)
		return errbuf__set(c->err, -E2BIG, "JFR: over %u metadata strings",
				   JFR_MAX_META_STRINGS);
	if (util__grow((void **)&c->mstr, &c->cap_mstr, n ? n : 1, sizeof(*c->mstr)) < 0)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		r = rd_string(c, &p, end, false, &c->mstr[i]);
		if (r == -E2BIG)
			return errbuf__set(c->err, r, "JFR: over %u bytes of converted strings",
					   JFR_MAX_CONVERTED_TEXT);
		if (r < 0 || c->mstr[i].ref)
			return bad(c, p, "a malformed metadata string");
	}
	c->n_mstr = n;
	r = read_element(c, &p, end, ROLE_TOP, 0);
	if (r < 0)
		return r;
	/* resolve type ids */
	for (size_t i = 0; i < c->n_classes; i++) {
		if (c->classes[i].id >= JFR_MAX_TYPE_ID)
			return errbuf__set(c->err, -E2BIG, "JFR: type id %llu is over %u",
					   (unsigned long long)c->classes[i].id, JFR_MAX_TYPE_ID);
		if (c->classes[i].id > max_id)
			max_id = c->classes[i].id;
	}
	if (util__grow((void **)&c->by_id, &c->n_by_id, max_id + 1, sizeof(*c->by_id)) < 0)
		return -ENOMEM;
	memset(c->by_id, 0, c->n_by_id * sizeof(*c->by_id));
	for (size_t i = 0; i < c->n_classes; i++)
		c->by_id[c->classes[i].id] = (int32_t)i + 1;
	for (size_t i = 0; i < c->n_fields; i++) {
		struct jfr_field *f = &c->fields[i];
		enum jfr_prim prim;

		f->cls = jfr_chunk__class_of(c, f->type);
		prim = f->cls >= 0 ? c->classes[f->cls].prim : JFR_STRUCT;
		f->op = JFR_OP_OTHER;
		if (!f->array && (f->cpool || prim == JFR_CHAR || prim == JFR_SHORT ||
				  prim == JFR_INT || prim == JFR_LONG))
			f->op = JFR_OP_VARINT;
		else if (!f->array && (prim == JFR_BOOLEAN || prim == JFR_BYTE))
			f->op = JFR_OP_BYTE;
	}
	for (size_t i = 0; i < c->n_classes; i++) {
		r = size_class(c, (int32_t)i, 0);
		if (r < 0)
			return r;
	}
	for (int k = 0; k < JFR_POOL_COUNT; k++)
		c->pool_class[k] = jfr_chunk__class(c, pool_names[k]);
	return 0;
}

int32_t jfr_chunk__class(const struct jfr_chunk *c, const char *name)
{
	/* the last of a name wins, as the last of an id does */
	for (size_t i = c->n_classes; i-- > 0;)
		if (str_eq(c->classes[i].name, name))
			return jfr_chunk__class_of(c, c->classes[i].id) == (int32_t)i ? (int32_t)i
										      : -1;
	return -1;
}

/* ---- values ----------------------------------------------------------------- */

static int read_struct(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end, int32_t cls,
		       const struct jfr_binding *b, union jfr_value *slots, int depth);
static int read_frames(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end,
		       const struct jfr_field *f, uint64_t *ret_first, uint64_t *ret_n);

/* One value of class cls (a constant key if cpool): into out, or read past
 * when out is NULL. */
static int read_one(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end, int32_t cls,
		    bool cpool, union jfr_value *out, int depth)
{
	uint64_t v = 0;
	int r;

	if (cpool) {
		r = rd_varint(pp, end, &v);
		if (r == 0 && out)
			out->u = v;
		return r;
	}
	if (cls < 0)
		return -ENOENT;
	switch (c->classes[cls].prim) {
	case JFR_BOOLEAN:
	case JFR_BYTE:
		if (*pp >= end)
			return -EBADMSG;
		v = **pp;
		(*pp)++;
		break;
	case JFR_CHAR:
	case JFR_SHORT:
	case JFR_INT:
	case JFR_LONG:
		r = rd_varint(pp, end, &v);
		if (r < 0)
			return r;
		break;
	case JFR_FLOAT:
	case JFR_DOUBLE: {
		size_t n = c->classes[cls].prim == JFR_FLOAT ? 4 : 8;

		if ((size_t)(end - *pp) < n)
			return -EBADMSG;
		*pp += n;
		return 0;
	}
	case JFR_STRING:
		return rd_string(c, pp, end, c->pools_read, out ? &out->s : NULL);
	case JFR_STRUCT:
		if (depth > JFR_MAX_DEPTH)
			return -ELOOP;
		return read_struct(c, pp, end, cls, NULL, NULL, depth + 1);
	}
	if (out)
		out->u = v;
	return 0;
}

static int read_field(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end,
		      const struct jfr_field *f, union jfr_value *out, int depth)
{
	uint64_t n;
	int r;

	if (!f->array)
		return read_one(c, pp, end, f->cls, f->cpool, out, depth);
	if (f->cls < 0 && !f->cpool)
		return -ENOENT;
	r = rd_count(pp, end, f->cpool ? 1 : c->classes[f->cls].min_size, &n);
	if (r < 0)
		return r;
	if (!f->cpool && c->classes[f->cls].min_size == 0)
		return 0; /* values of no bytes: nothing to read */
	for (uint64_t i = 0; i < n; i++) {
		r = read_one(c, pp, end, f->cls, f->cpool, NULL, depth);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_struct(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end, int32_t cls,
		       const struct jfr_binding *b, union jfr_value *slots, int depth)
{
	const struct jfr_class *k = &c->classes[cls];
	uint32_t field0 = k->field0, n_fields = k->n_fields;

	for (uint32_t i = 0; i < n_fields; i++) {
		const struct jfr_field *f = &c->fields[field0 + i];
		int slot = b ? b->slot[i] : -1;
		uint64_t v;
		int r;

		/* the common cases inline: integers and constant keys, bytes */
		if (f->op == JFR_OP_VARINT) {
			if (rd_varint(pp, end, &v) < 0)
				return -EBADMSG;
			if (slot >= 0)
				slots[slot].u = v;
			continue;
		}
		if (f->op == JFR_OP_BYTE) {
			if (*pp >= end)
				return -EBADMSG;
			if (slot >= 0)
				slots[slot].u = **pp;
			(*pp)++;
			continue;
		}
		if (slot == SLOT_FRAMES)
			r = read_frames(c, pp, end, f, &slots[0].u, &slots[1].u);
		else
			r = read_field(c, pp, end, f, slot >= 0 ? &slots[slot] : NULL, depth);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- bindings --------------------------------------------------------------- */

static bool field_fits(const struct jfr_chunk *c, const struct jfr_field *f,
		       const struct jfr_want *w)
{
	if (f->array)
		return false;
	switch (w->kind) {
	case JFR_WANT_POOL:
		return f->cpool && f->cls >= 0 && f->cls == c->pool_class[w->pool];
	case JFR_WANT_LONG:
		return !f->cpool && f->cls >= 0 && c->classes[f->cls].prim == JFR_LONG;
	case JFR_WANT_INT:
		return !f->cpool && f->cls >= 0 && c->classes[f->cls].prim == JFR_INT;
	case JFR_WANT_STRING:
		return !f->cpool && f->cls >= 0 && c->classes[f->cls].prim == JFR_STRING;
	}
	return false;
}

static int bind_class(struct jfr_chunk *c, int32_t cls, const struct jfr_want *wants, size_t n,
		      struct jfr_binding *ret)
{
	const struct jfr_class *k;

	*ret = (struct jfr_binding){.cls = cls};
	if (cls < 0)
		return 0;
	k = &c->classes[cls];
	ret->n_fields = k->n_fields;
	ret->slot = arena__alloc(&c->arena, k->n_fields ? k->n_fields : 1);
	if (!ret->slot)
		return -ENOMEM;
	for (uint32_t i = 0; i < k->n_fields; i++) {
		const struct jfr_field *f = &c->fields[k->field0 + i];

		ret->slot[i] = -1;
		for (size_t j = 0; j < n && j < JFR_MAX_WANTS; j++)
			if (str_eq(f->name, wants[j].name) && field_fits(c, f, &wants[j])) {
				ret->slot[i] = (int8_t)j;
				break;
			}
	}
	return 0;
}

int jfr_chunk__bind(struct jfr_chunk *c, const char *name, const struct jfr_want *wants, size_t n,
		    struct jfr_binding *ret)
{
	return bind_class(c, jfr_chunk__class(c, name), wants, n, ret);
}

int jfr_chunk__read(struct jfr_chunk *c, const struct jfr_binding *b, const uint8_t *p,
		    const uint8_t *end, union jfr_value *slots)
{
	int r;

	memset(slots, 0, JFR_MAX_WANTS * sizeof(*slots));
	r = read_struct(c, &p, end, b->cls, b, slots, 0);
	if (r == -E2BIG)
		return errbuf__set(c->err, r, "JFR: over %u bytes of converted strings",
				   JFR_MAX_CONVERTED_TEXT);
	if (r == -ENOMEM)
		return r;
	return r < 0 ? bad(c, p, "a malformed or truncated event") : 0;
}

/* ---- constant pools --------------------------------------------------------- */

/* How each kept pool's entries are read (bound per chunk; the frames of
 * stack traces by c->frame_binding). */
struct pool_reader {
	struct jfr_binding b[JFR_POOL_COUNT];
};

static const struct jfr_want symbol_wants[] = {{"string", JFR_WANT_STRING, 0}};
static const struct jfr_want class_wants[] = {{"name", JFR_WANT_POOL, JFR_POOL_SYMBOL}};
static const struct jfr_want method_wants[] = {
	{"type", JFR_WANT_POOL, JFR_POOL_CLASS},
	{"name", JFR_WANT_POOL, JFR_POOL_SYMBOL},
};
static const struct jfr_want description_wants[] = {{"description", JFR_WANT_STRING, 0}};
static const struct jfr_want state_wants[] = {{"name", JFR_WANT_STRING, 0}};
static const struct jfr_want thread_wants[] = {
	{"osThreadId", JFR_WANT_LONG, 0},
	{"javaThreadId", JFR_WANT_LONG, 0},
	{"javaName", JFR_WANT_STRING, 0},
	{"osName", JFR_WANT_STRING, 0},
};
static const struct jfr_want frame_wants[] = {
	{"method", JFR_WANT_POOL, JFR_POOL_METHOD},
	{"lineNumber", JFR_WANT_INT, 0},
	{"type", JFR_WANT_POOL, JFR_POOL_FRAMETYPE},
};

static int bind_pools(struct jfr_chunk *c, struct pool_reader *pr)
{
	static const struct {
		const struct jfr_want *w;
		size_t n;
	} wants[JFR_POOL_COUNT] = {
		[JFR_POOL_SYMBOL] = {symbol_wants, UTIL_ARRAY_SIZE(symbol_wants)},
		[JFR_POOL_CLASS] = {class_wants, UTIL_ARRAY_SIZE(class_wants)},
		[JFR_POOL_METHOD] = {method_wants, UTIL_ARRAY_SIZE(method_wants)},
		[JFR_POOL_FRAMETYPE] = {description_wants, UTIL_ARRAY_SIZE(description_wants)},
		[JFR_POOL_THREADSTATE] = {state_wants, UTIL_ARRAY_SIZE(state_wants)},
		[JFR_POOL_THREAD] = {thread_wants, UTIL_ARRAY_SIZE(thread_wants)},
	};
	int32_t frame_cls = jfr_chunk__class(c, "jdk.types.StackFrame");
	int r;

	for (int k = 0; k < JFR_POOL_COUNT; k++) {
		r = bind_class(c, c->pool_class[k], wants[k].w, wants[k].n, &pr->b[k]);
		if (r < 0)
			return r;
	}
	r = bind_class(c, frame_cls, frame_wants, UTIL_ARRAY_SIZE(frame_wants), &c->frame_binding);
	if (r < 0)
		return r;
	/* a stack trace: "truncated" into slot 2, its frames kept apart */
	if (pr->b[JFR_POOL_STACK].cls >= 0) {
		const struct jfr_class *k = &c->classes[pr->b[JFR_POOL_STACK].cls];

		for (uint32_t i = 0; i < k->n_fields; i++) {
			const struct jfr_field *f = &c->fields[k->field0 + i];

			if (str_eq(f->name, "frames") && f->array && !f->cpool && frame_cls >= 0 &&
			    f->cls == frame_cls)
				pr->b[JFR_POOL_STACK].slot[i] = SLOT_FRAMES;
			else if (str_eq(f->name, "truncated") && !f->array && !f->cpool &&
				 f->cls >= 0 && c->classes[f->cls].prim == JFR_BOOLEAN)
				pr->b[JFR_POOL_STACK].slot[i] = 2;
		}
	}
	return 0;
}

static int read_frames(struct jfr_chunk *c, const uint8_t **pp, const uint8_t *end,
		       const struct jfr_field *f, uint64_t *ret_first, uint64_t *ret_n)
{
	const struct jfr_binding *fb = &c->frame_binding;
	uint64_t n;
	int r = rd_count(pp, end, c->classes[f->cls].min_size, &n);

	if (r < 0)
		return r;
	if (n > JFR_MAX_STACK_FRAMES)
		return -E2BIG;
	if (n > JFR_MAX_FRAMES - c->n_frames)
		return -E2BIG;
	if (util__grow((void **)&c->frames, &c->cap_frames, c->n_frames + n, sizeof(*c->frames)) <
	    0)
		return -ENOMEM;
	*ret_first = c->n_frames;
	*ret_n = n;
	for (uint64_t i = 0; i < n; i++) {
		union jfr_value s[3] = {{0}};
		struct jfr_frame *fr;

		r = read_struct(c, pp, end, f->cls, fb, s, 1);
		if (r < 0)
			return r;
		fr = &c->frames[c->n_frames++];
		fr->method = s[0].u;
		fr->line = (uint32_t)s[1].u;
		fr->type = s[2].u;
	}
	return 0;
}

static int pool_add(struct jfr_chunk *c, enum jfr_pool_kind k, const struct jfr_entry *e)
{
	struct jfr_pool *pl = &c->pools[k];
	int r;

	if (pl->n >= JFR_MAX_POOL_ENTRIES)
		return -E2BIG;
	if (util__grow((void **)&pl->v, &pl->cap, pl->n + 1, sizeof(*pl->v)) < 0)
		return -ENOMEM;
	pl->v[pl->n] = *e;
	r = jfr_map__put(&pl->index, e->key, (uint32_t)pl->n + 1);
	if (r < 0)
		return r;
	pl->n++;
	return 0;
}

const struct jfr_entry *jfr_chunk__lookup(const struct jfr_chunk *c, enum jfr_pool_kind k,
					  uint64_t key)
{
	uint32_t i = jfr_map__get(&c->pools[k].index, key);

	return i ? &c->pools[k].v[i - 1] : NULL;
}

/* One pool's entries: key, then a value of its type. */
static int read_pool(struct jfr_chunk *c, const struct pool_reader *pr, const uint8_t **pp,
		     const uint8_t *end, int32_t cls, uint64_t count)
{
	int kind = -1;

	for (int k = 0; k < JFR_POOL_COUNT; k++)
		if (c->pool_class[k] == cls)
			kind = k;
	for (uint64_t i = 0; i < count; i++) {
		union jfr_value s[JFR_MAX_WANTS];
		struct jfr_entry e = {0};
		int r = rd_varint(pp, end, &e.key);

		if (r < 0)
			return r;
		if (kind < 0) {
			r = read_one(c, pp, end, cls, false, NULL, 0);
			if (r < 0)
				return r;
			continue;
		}
		memset(s, 0, sizeof(s));
		if (kind == JFR_POOL_STRING)
			r = read_one(c, pp, end, cls, false, &s[0], 0);
		else
			r = read_struct(c, pp, end, cls, &pr->b[kind], s, 0);
		if (r < 0)
			return r;
		switch (kind) {
		case JFR_POOL_STRING:
		case JFR_POOL_SYMBOL:
		case JFR_POOL_FRAMETYPE:
		case JFR_POOL_THREADSTATE:
			e.s = s[0].s;
			break;
		case JFR_POOL_CLASS:
			e.a = s[0].u;
			break;
		case JFR_POOL_METHOD:
			e.a = s[0].u;
			e.b = s[1].u;
			break;
		case JFR_POOL_STACK:
			e.a = s[0].u;
			e.b = s[1].u | (s[2].u ? JFR_STACK_TRUNCATED : 0);
			break;
		case JFR_POOL_THREAD:
			e.a = s[0].u;
			e.b = s[1].u;
			e.s = s[2].s.p || s[2].s.ref ? s[2].s : s[3].s;
			break;
		}
		r = pool_add(c, (enum jfr_pool_kind)kind, &e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The constant pool events, newest first (the header points at the newest,
 * each at the one before by a negative delta). A key defined twice keeps
 * the definition read last, the oldest, as Pyroscope's parser does. */
static int read_pools(struct jfr_chunk *c, const uint8_t *at)
{
	struct pool_reader pr;
	unsigned n_events = 0;
	int r = bind_pools(c, &pr);

	if (r < 0)
		return r;
	for (;;) {
		const uint8_t *p = at, *end;
		uint64_t size, type, v, n_pools, delta;

		if (++n_events > JFR_MAX_POOL_EVENTS) {
			return errbuf__set(c->err, -E2BIG,
					   "JFR: over %u constant pool events in a chunk",
					   JFR_MAX_POOL_EVENTS);
		}
		if (rd_varint(&p, c->end, &size) < 0 || size == 0 ||
		    size > (uint64_t)(c->end - at)) {
			return bad(c, at, "a constant pool event's size is not valid");
		}
		end = at + size;
		r = rd_varint(&p, end, &type);
		if (r == 0 && type != 1)
			r = -EBADMSG;
		for (int i = 0; r == 0 && i < 2; i++) /* start, duration */
			r = rd_varint(&p, end, &v);
		if (r == 0)
			r = rd_varint(&p, end, &delta);
		if (r == 0)
			r = rd_varint(&p, end, &v); /* flush */
		if (r == 0)
			r = rd_count(&p, end, 2, &n_pools);
		if (r < 0)
			return bad(c, at, "not a constant pool event where one should be");
		for (uint64_t i = 0; i < n_pools; i++) {
			const uint8_t *pool_at = p;
			uint64_t count;
			int32_t cls;

			r = rd_varint(&p, end, &type);
			cls = r == 0 ? jfr_chunk__class_of(c, type) : -1;
			if (r == 0 && cls < 0)
				return bad(c, pool_at,
					   "a constant pool of a type the metadata lacks");
			if (r == 0)
				r = rd_count(&p, end, 1, &count);
			if (r == 0)
				r = read_pool(c, &pr, &p, end, cls, count);
			if (r == -E2BIG)
				return errbuf__set(
					c->err, r,
					"JFR: a constant pool is over a cap (%u constants "
					"of a kind, %u frames, %u frames a stack, %u bytes "
					"of converted strings)",
					JFR_MAX_POOL_ENTRIES, JFR_MAX_FRAMES, JFR_MAX_STACK_FRAMES,
					JFR_MAX_CONVERTED_TEXT);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				return bad(c, pool_at, "a malformed constant pool");
		}
		if (delta == 0)
			break;
		/* strictly backwards, and not into the header */
		if ((int64_t)delta >= 0 || (uint64_t)(at - (c->start + JFR_HEADER_BYTES)) < -delta)
			return bad(c, at, "a constant pool event points outside its chunk");
		at -= -delta;
	}
	return 0;
}

/* Pyroscope renames generated classes in every symbol of a chunk. */
static int normalize_symbols(struct jfr_chunk *c)
{
	struct jfr_pool *pl = &c->pools[JFR_POOL_SYMBOL];

	for (size_t i = 0; i < pl->n; i++) {
		struct jfr_str s = jfr_chunk__str(c, pl->v[i].s), ns;

		if (jfr__normalize_symbol(s, &c->arena, &ns)) {
			if (!ns.p)
				return -ENOMEM;
			pl->v[i].s = ns;
		}
	}
	return 0;
}

/* ---- chunks ------------------------------------------------------------------ */

static void chunk_reset(struct jfr_chunk *c)
{
	arena__reset(&c->arena);
	c->converted = 0;
	c->n_mstr = c->n_classes = c->n_fields = c->n_str_refs = c->n_frames = 0;
	c->events = NULL;
	c->pools_read = false;
	c->frame_binding = (struct jfr_binding){.cls = -1};
	for (int k = 0; k < JFR_POOL_COUNT; k++) {
		c->pools[k].n = 0;
		jfr_map__clear(&c->pools[k].index);
		c->pool_class[k] = -1;
	}
}

int jfr_chunk__open(struct jfr_chunk *c, const uint8_t *base, size_t len, size_t off,
		    struct errbuf *err)
{
	const uint8_t *h = base + off;
	uint64_t size, cp_off, meta_off;
	uint32_t features;
	int r;

	chunk_reset(c);
	c->base = base;
	c->err = err;
	if (len - off < JFR_HEADER_BYTES || memcmp(h, "FLR\0", 4) != 0)
		return errbuf__set(err, -EBADMSG,
				   "JFR: no chunk header at offset %zu (magic \"FLR\\0\")", off);
	if (h[4] != 0 || h[5] != 2)
		return errbuf__set(err, -EBADMSG,
				   "JFR: chunk at offset %zu has version %u.%u; braid reads 2.x",
				   off, (unsigned)(h[4] << 8 | h[5]), (unsigned)(h[6] << 8 | h[7]));
	size = be64(h + 8);
	cp_off = be64(h + 16);
	meta_off = be64(h + 24);
	c->start_nanos = (int64_t)be64(h + 32);
	c->duration_nanos = (int64_t)be64(h + 40);
	c->start_ticks = (int64_t)be64(h + 48);
	c->ticks_per_second = (int64_t)be64(h + 56);
	features = (uint32_t)h[64] << 24 | (uint32_t)h[65] << 16 | (uint32_t)h[66] << 8 | h[67];
	if (size < JFR_HEADER_BYTES || size > len - off)
		return errbuf__set(err, -EBADMSG,
				   "JFR: chunk at offset %zu says it has %llu bytes, %zu are left",
				   off, (unsigned long long)size, len - off);
	if (cp_off < JFR_HEADER_BYTES || cp_off >= size || meta_off < JFR_HEADER_BYTES ||
	    meta_off >= size)
		return errbuf__set(
			err, -EBADMSG,
			"JFR: chunk at offset %zu has its constant pool (%llu) or metadata "
			"(%llu) outside it",
			off, (unsigned long long)cp_off, (unsigned long long)meta_off);
	if (!(features & 1))
		return errbuf__set(err, -EBADMSG,
				   "JFR: chunk at offset %zu writes integers uncompressed, which "
				   "braid does not read",
				   off);
	c->start = h;
	c->end = h + size;
	r = read_metadata(c, h + meta_off);
	if (r < 0)
		return r;
	r = read_pools(c, h + cp_off);
	if (r < 0)
		return r;
	c->pools_read = true;
	c->events = h + JFR_HEADER_BYTES;
	return normalize_symbols(c);
}

int jfr_chunk__next(const struct jfr_chunk *c, const uint8_t **pos, uint64_t *ret_type,
		    const uint8_t **ret_body, const uint8_t **ret_end)
{
	const uint8_t *at = *pos, *p = at;
	uint64_t size, type;

	if (at >= c->end) {
		*ret_type = UINT64_MAX;
		return 0;
	}
	if (rd_varint(&p, c->end, &size) < 0 || size == 0 || size > (uint64_t)(c->end - at))
		return bad(c, at, "an event's size is not valid");
	if (rd_varint(&p, at + size, &type) < 0)
		return bad(c, at, "a truncated event");
	*ret_type = type;
	*ret_body = p;
	*ret_end = at + size;
	*pos = at + size;
	return 0;
}

void jfr_chunk__free(struct jfr_chunk *c)
{
	if (!c)
		return;
	arena__free(&c->arena);
	free(c->mstr);
	free(c->classes);
	free(c->fields);
	free(c->by_id);
	free(c->str_refs);
	free(c->frames);
	for (int k = 0; k < JFR_POOL_COUNT; k++) {
		free(c->pools[k].v);
		jfr_map__free(&c->pools[k].index);
	}
	memset(c, 0, sizeof(*c));
}
