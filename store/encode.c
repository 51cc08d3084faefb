/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: how labels and sample types are stored, and the length caps on
 * the strings a client controls.
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Labels and sample types are stored as a blob of NUL-terminated strings
 * (name, value, name, value, ...): compact, and NUL cannot occur in them. */
static int put_strings(struct dynbuf *b, const char *s)
{
	return dynbuf__append(b, s ? s : "", strlen(s ? s : "") + 1);
}

int store_check_string(struct store *s, const char *what, const char *v, size_t max)
{
	if (v && strlen(v) > max)
		return store_fail(s, -EINVAL, "%s is longer than %zu bytes", what, max);
	return 0;
}

int store_encode_labels(struct store *s, const struct label *labels, size_t n, struct dynbuf *out)
{
	int r = 0;

	dynbuf__reset(out);
	if (n > STORE_MAX_LABELS)
		return store_fail(s, -EINVAL, "%zu labels: at most %d", n, STORE_MAX_LABELS);
	if (n && !labels)
		return store_fail(s, -EINVAL, "labels missing");
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!labels[i].name || !labels[i].name[0])
			return store_fail(s, -EINVAL, "label %zu has no name", i);
		r = store_check_string(s, "a label name", labels[i].name, STORE_MAX_LABEL_NAME);
		if (r >= 0)
			r = store_check_string(s, "a label value", labels[i].value,
					       STORE_MAX_LABEL_VALUE);
		if (r >= 0)
			r = put_strings(out, labels[i].name);
		if (r >= 0)
			r = put_strings(out, labels[i].value);
	}
	return r;
}

/* Splits a NUL-string blob into up to `max` pointers (into the blob, which
 * must stay alive); returns how many, or -EBADMSG if it is not one. */
int store_split_strings(const void *blob, size_t len, const char **out, size_t max)
{
	const char *p = blob, *end = p + len;
	size_t n = 0;

	if (len && end[-1] != '\0')
		return -EBADMSG;
	while (p < end) {
		if (n == max)
			return -EBADMSG;
		out[n++] = p;
		p += strlen(p) + 1;
	}
	return (int)n;
}

/* Decodes a label blob into arena-held labels. */
int store_decode_labels(struct store *s, sqlite3_stmt *q, int col, const struct label **ret_labels,
			size_t *ret_n)
{
	const char *parts[2 * STORE_MAX_LABELS];
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	const void *blob = sqlite3_column_blob(q, col);
	char *copy = arena__strndup(&s->read_arena, blob, len);
	struct label *labels;
	int n;

	if (!copy)
		return store_fail(s, -ENOMEM, "out of memory reading labels");
	n = store_split_strings(copy, len, parts, UTIL_ARRAY_SIZE(parts));
	if (n < 0 || n % 2)
		return store_fail(s, -EIO, "damaged label list in the database (%s)", s->path);
	labels = arena__alloc(&s->read_arena, sizeof(*labels) * (size_t)(n / 2 + 1));
	if (!labels)
		return store_fail(s, -ENOMEM, "out of memory reading labels");
	for (int i = 0; i < n / 2; i++)
		labels[i] = (struct label){parts[2 * i], parts[2 * i + 1]};
	*ret_labels = labels;
	*ret_n = (size_t)n / 2;
	return 0;
}

/* Sample types: type, unit and total (decimal) per entry. */
int store_encode_types(struct store *s, const struct store_sample_type *types, size_t n,
		       struct dynbuf *out)
{
	int r = 0;

	dynbuf__reset(out);
	if (n > STORE_MAX_SAMPLE_TYPES)
		return store_fail(s, -EINVAL, "%zu sample types: at most %d", n,
				  STORE_MAX_SAMPLE_TYPES);
	if (n && !types)
		return store_fail(s, -EINVAL, "sample types missing");
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!types[i].type || !types[i].type[0])
			return store_fail(s, -EINVAL, "sample type %zu has no name", i);
		r = store_check_string(s, "a sample type", types[i].type, STORE_MAX_STRING);
		if (r >= 0)
			r = store_check_string(s, "a sample unit", types[i].unit, STORE_MAX_STRING);
		if (r >= 0)
			r = put_strings(out, types[i].type);
		if (r >= 0)
			r = put_strings(out, types[i].unit);
		if (r >= 0)
			r = dynbuf__printf(out, "%" PRId64, types[i].total);
		if (r >= 0)
			r = dynbuf__putc(out, '\0');
	}
	return r;
}

int store_decode_types(struct store *s, sqlite3_stmt *q, int col,
		       const struct store_sample_type **ret_types, size_t *ret_n)
{
	const char *parts[3 * STORE_MAX_SAMPLE_TYPES];
	size_t len = (size_t)sqlite3_column_bytes(q, col);
	char *copy = arena__strndup(&s->read_arena, sqlite3_column_blob(q, col), len);
	struct store_sample_type *types;
	int n;

	if (!copy)
		return store_fail(s, -ENOMEM, "out of memory reading sample types");
	n = store_split_strings(copy, len, parts, UTIL_ARRAY_SIZE(parts));
	if (n < 0 || n % 3)
		return store_fail(s, -EIO, "damaged sample type list in the database (%s)",
				  s->path);
	types = arena__alloc(&s->read_arena, sizeof(*types) * (size_t)(n / 3 + 1));
	if (!types)
		return store_fail(s, -ENOMEM, "out of memory reading sample types");
	for (int i = 0; i < n / 3; i++)
		types[i] = (struct store_sample_type){parts[3 * i], parts[3 * i + 1],
						      strtoll(parts[3 * i + 2], NULL, 10)};
	*ret_types = types;
	*ret_n = (size_t)n / 3;
	return 0;
}
