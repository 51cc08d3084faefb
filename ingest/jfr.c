/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: JFR pushes, kept for pass-through. The Pyroscope Java agent sends
 * `POST /ingest?...&format=jfr` as multipart/form-data with a `jfr` part
 * (a gzipped JFR recording) and, when the app set context labels, a
 * `labels` part (docs/sdk-java.md). braid does not read JFR yet: it checks
 * that the `jfr` part is one (gzip or not, the inflated data starts with a
 * JFR chunk header whose size fits), and keeps both parts, byte for byte, in
 * a multipart form of its own that the forwarder sends on unchanged
 * (docs/ingest.md, "JFR"). The form's first line is "--BOUNDARY".
 */
#define _GNU_SOURCE /* memmem */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define JFR_MAGIC	 "FLR\0"
#define JFR_HEADER_BYTES 68 /* magic, version, chunk size, ... (JDK 11+) */

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Checks that data (gzipped or not) is a JFR recording. */
static int check_jfr(const void *data, size_t len, size_t max_inflated, struct errbuf *err)
{
	struct dynbuf raw;
	const unsigned char *p = data;
	size_t n = len;
	uint64_t chunk;
	int r = 0;

	dynbuf__init(&raw, max_inflated);
	if (util__is_gzip(data, len)) {
		struct errbuf gerr = {{0}};

		r = util__gunzip(data, len, max_inflated, &gerr, &raw);
		if (r < 0) {
			r = errbuf__set(err, r == -EFBIG ? -EFBIG : -EBADMSG, "the jfr part: %s",
					gerr.msg);
			goto cleanup;
		}
		p = (const unsigned char *)raw.data;
		n = raw.len;
	}
	if (n < JFR_HEADER_BYTES || memcmp(p, JFR_MAGIC, 4) != 0) {
		r = errbuf__set(err, -EBADMSG,
				"the jfr part is not a JFR recording (it does not start with a "
				"chunk header, magic \"FLR\\0\")");
		goto cleanup;
	}
	/* major version (2 bytes, big-endian) 1 or 2; the chunk's size */
	chunk = be64(p + 8);
	if ((p[4] != 0 || (p[5] != 1 && p[5] != 2)) || chunk < JFR_HEADER_BYTES || chunk > n) {
		r = errbuf__set(err, -EBADMSG,
				"the jfr part's first chunk header is not valid (version %u.%u, "
				"chunk of %" PRIu64 " bytes in %zu)",
				(unsigned)(p[4] << 8 | p[5]), (unsigned)(p[6] << 8 | p[7]), chunk,
				n);
		goto cleanup;
	}
cleanup:
	dynbuf__free(&raw);
	return r;
}

/* Appends one part of the form. */
static int put_part(struct dynbuf *out, const char *boundary, const char *name, const void *data,
		    size_t len)
{
	int r = dynbuf__printf(out,
			       "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
			       "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
			       boundary, name, name);

	if (r == 0)
		r = dynbuf__append(out, data, len);
	if (r == 0)
		r = dynbuf__append(out, "\r\n", 2);
	return r;
}

static bool contains(const void *hay, size_t n, const char *needle)
{
	return n && memmem(hay, n, needle, strlen(needle)) != NULL;
}

int ingest_jfr__form(const struct ingest_body *b, size_t max_inflated, struct arena *a,
		     struct errbuf *err, const void **ret, size_t *ret_len)
{
	struct dynbuf out;
	char boundary[64];
	void *copy;
	int r;

	*ret = NULL;
	*ret_len = 0;
	if (b->multipart && !b->data)
		return errbuf__set(err, -EINVAL, "multipart form has no 'jfr' field");
	if (!b->data || !b->len)
		return errbuf__set(err, -EBADMSG, "empty body: expected a JFR recording");
	if (b->len + b->jfr_labels_len > STORE_MAX_PAYLOAD - 4096)
		return errbuf__set(err, -EFBIG, "a JFR push of %zu bytes is over the %u MiB cap",
				   b->len + b->jfr_labels_len, STORE_MAX_PAYLOAD >> 20);
	r = check_jfr(b->data, b->len, max_inflated, err);
	if (r < 0)
		return r;
	/* a boundary that neither part contains */
	for (unsigned k = 0;; k++) {
		snprintf(boundary, sizeof(boundary), "braid-jfr-%08x", k * 2654435761u);
		if (!contains(b->data, b->len, boundary) &&
		    !contains(b->jfr_labels, b->jfr_labels_len, boundary))
			break;
		if (k == 64)
			return errbuf__set(err, -EBADMSG,
					   "the JFR push holds every boundary tried");
	}
	dynbuf__init(&out, 0);
	r = put_part(&out, boundary, "jfr", b->data, b->len);
	if (r == 0 && b->jfr_labels)
		r = put_part(&out, boundary, "labels", b->jfr_labels, b->jfr_labels_len);
	if (r == 0)
		r = dynbuf__printf(&out, "--%s--\r\n", boundary);
	copy = r == 0 ? arena__alloc(a, out.len) : NULL;
	if (r == 0 && !copy)
		r = -ENOMEM;
	if (r == 0) {
		memcpy(copy, out.data, out.len);
		*ret = copy;
		*ret_len = out.len;
	}
	dynbuf__free(&out);
	return r < 0 ? errbuf__set(err, r, "out of memory") : 0;
}
