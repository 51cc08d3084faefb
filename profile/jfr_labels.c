/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Pyroscope Java agent's context labels: the `labels` part of its JFR
 * push, a gzipped protobuf (profile/jfr_labels.proto). A sample's contextId
 * names a context; a context maps label key ids to value ids; the strings
 * map ids to text. Decoded once per recording into two indexes.
 */
#include "jfr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jfr_labels.pb-c.h"

/* Caps of the part (it comes from the client): contexts and label pairs. */
#define JFR_LABELS_MAX_CONTEXTS 1000000u
#define JFR_LABELS_MAX_PAIRS	(4u << 20)

struct jfr_labels {
	struct jfr_map contexts; /* context id → 1 + index into ctx */
	struct jfr_map strings;	 /* string id → 1 + index into str */
	struct {
		size_t first, n; /* first: index into pairs; n labels, two ids each */
	} * ctx;
	size_t n_ctx;
	int64_t *pairs;
	size_t n_pairs;
	struct {
		const char *p;
		size_t len;
	} * str;
	size_t n_str;
	struct arena text; /* the strings' bytes */
};

struct pb_arena {
	struct arena arena;
	bool over;
};

static void *pb_alloc(void *data, size_t size)
{
	struct pb_arena *a = data;
	void *p = arena__alloc(&a->arena, size);

	if (!p)
		a->over = true;
	return p;
}

static void pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* the arena goes all at once */
}

void jfr_labels__free(struct jfr_labels *l)
{
	if (!l)
		return;
	jfr_map__free(&l->contexts);
	jfr_map__free(&l->strings);
	free(l->ctx);
	free(l->pairs);
	free(l->str);
	arena__free(&l->text);
	free(l);
}

int jfr_labels__decode(const void *data, size_t len, const struct profile_limits *lim,
		       struct errbuf *err, struct jfr_labels **ret)
{
	struct pb_arena pa = {{0}, false};
	ProtobufCAllocator alloc = {pb_alloc, pb_free, &pa};
	Braid__Jfr__LabelsSnapshot *snap = NULL;
	struct jfr_labels *l = calloc(1, sizeof(*l));
	struct dynbuf raw;
	size_t pairs = 0;
	int r = 0;

	dynbuf__init(&raw, 0);
	if (!l)
		return -ENOMEM;
	if (!data || !len)
		goto done;
	if (util__is_gzip(data, len)) {
		struct errbuf gerr = {{0}};

		r = util__gunzip(data, len, lim->max_decompressed, &gerr, &raw);
		if (r < 0) {
			r = errbuf__set(err, r == -EFBIG ? -EFBIG : -EBADMSG, "the labels part: %s",
					gerr.msg);
			goto cleanup;
		}
		data = raw.data;
		len = raw.len;
	}
	pa.arena.limit = lim->max_decode_memory;
	snap = braid__jfr__labels_snapshot__unpack(&alloc, len, data);
	if (!snap) {
		r = pa.over ? errbuf__set(err, -E2BIG,
					  "the labels part needs over %zu bytes to decode "
					  "(max_decode_memory)",
					  lim->max_decode_memory)
			    : errbuf__set(err, -EBADMSG,
					  "the labels part is not a LabelsSnapshot protobuf "
					  "(%zu bytes)",
					  len);
		goto cleanup;
	}
	if (snap->n_contexts > JFR_LABELS_MAX_CONTEXTS || snap->n_strings > lim->max_strings) {
		r = errbuf__set(err, -E2BIG,
				"the labels part has %zu contexts and %zu strings: over the caps "
				"of %u and %zu",
				snap->n_contexts, snap->n_strings, JFR_LABELS_MAX_CONTEXTS,
				lim->max_strings);
		goto cleanup;
	}
	for (size_t i = 0; i < snap->n_contexts; i++)
		if (snap->contexts[i]->value)
			pairs += snap->contexts[i]->value->n_labels;
	if (pairs > JFR_LABELS_MAX_PAIRS) {
		r = errbuf__set(err, -E2BIG, "the labels part has %zu labels: over the cap of %u",
				pairs, JFR_LABELS_MAX_PAIRS);
		goto cleanup;
	}
	l->ctx = calloc(snap->n_contexts ? snap->n_contexts : 1, sizeof(*l->ctx));
	l->pairs = calloc(pairs ? pairs * 2 : 1, sizeof(*l->pairs));
	l->str = calloc(snap->n_strings ? snap->n_strings : 1, sizeof(*l->str));
	if (!l->ctx || !l->pairs || !l->str) {
		r = -ENOMEM;
		goto cleanup;
	}
	/* a map key given twice keeps its last value, as protobuf maps do */
	for (size_t i = 0; i < snap->n_contexts; i++) {
		const Braid__Jfr__LabelsSnapshot__ContextsEntry *e = snap->contexts[i];
		size_t first = l->n_pairs;

		for (size_t j = 0; e->value && j < e->value->n_labels; j++) {
			l->pairs[l->n_pairs++] = e->value->labels[j]->key;
			l->pairs[l->n_pairs++] = e->value->labels[j]->value;
		}
		l->ctx[l->n_ctx].first = first;
		l->ctx[l->n_ctx].n = (l->n_pairs - first) / 2;
		r = jfr_map__put(&l->contexts, (uint64_t)e->key, (uint32_t)++l->n_ctx);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < snap->n_strings; i++) {
		const Braid__Jfr__LabelsSnapshot__StringsEntry *e = snap->strings[i];
		size_t n = e->value ? strlen(e->value) : 0;
		char *copy = arena__strndup(&l->text, e->value ? e->value : "", n);

		if (!copy) {
			r = -ENOMEM;
			goto cleanup;
		}
		l->str[l->n_str].p = copy;
		l->str[l->n_str].len = n;
		r = jfr_map__put(&l->strings, (uint64_t)e->key, (uint32_t)++l->n_str);
		if (r < 0)
			goto cleanup;
	}
done:
	*ret = l;
	l = NULL;
	r = 0;
cleanup:
	if (r == -ENOMEM)
		r = errbuf__set(err, r, "out of memory");
	jfr_labels__free(l);
	arena__free(&pa.arena);
	dynbuf__free(&raw);
	return r;
}

size_t jfr_labels__context(const struct jfr_labels *l, int64_t id, const int64_t **ret_pairs)
{
	uint32_t i = l ? jfr_map__get(&l->contexts, (uint64_t)id) : 0;

	if (!i)
		return 0;
	*ret_pairs = l->pairs + l->ctx[i - 1].first;
	return l->ctx[i - 1].n;
}

const char *jfr_labels__string(const struct jfr_labels *l, int64_t id, size_t *ret_len)
{
	uint32_t i = l ? jfr_map__get(&l->strings, (uint64_t)id) : 0;

	if (!i) {
		*ret_len = 0;
		return "";
	}
	*ret_len = l->str[i - 1].len;
	return l->str[i - 1].p;
}
