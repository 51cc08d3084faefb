/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The form a JFR push comes in: multipart/form-data with a `jfr` part (the
 * recording, gzipped) and, with context labels, a `labels` part, as the
 * Java agent sends it and as braid stores it (ingest/jfr.c writes the form
 * whose first line is "--BOUNDARY"). Pyroscope reads the same two fields.
 */
#define _GNU_SOURCE /* memmem */
#include "jfr_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define MAX_PARTS    16
#define MAX_BOUNDARY 200 /* RFC 2046: 70; the agent's are UUIDs */

/* The value of name="..." in a part's headers [h, end). */
static bool part_name(const char *h, const char *end, const char **ret, size_t *ret_len)
{
	const char *p = memmem(h, (size_t)(end - h), "name=\"", 6), *q;

	/* "name=" not "filename=" */
	while (p && p > h && (p[-1] != ' ' && p[-1] != ';'))
		p = memmem(p + 6, (size_t)(end - p - 6), "name=\"", 6);
	if (!p)
		return false;
	p += 6;
	q = memchr(p, '"', (size_t)(end - p));
	if (!q)
		return false;
	*ret = p;
	*ret_len = (size_t)(q - p);
	return true;
}

int profile__jfr_form_parts(const void *form, size_t len, struct profile_jfr_parts *ret,
			    struct errbuf *err)
{
	const char *d = form, *end = d + len, *eol, *p;
	char delim[MAX_BOUNDARY + 8];
	size_t blen, dlen;

	memset(ret, 0, sizeof(*ret));
	if (len < 4 || d[0] != '-' || d[1] != '-' || !(eol = memmem(d, len, "\r\n", 2)))
		return errbuf__set(err, -EBADMSG,
				   "a JFR push's form does not start with a boundary");
	blen = (size_t)(eol - d - 2);
	if (blen == 0 || blen > MAX_BOUNDARY)
		return errbuf__set(err, -EBADMSG, "a JFR push's form has a boundary of %zu bytes",
				   blen);
	/* every later boundary follows a line break */
	memcpy(delim, "\r\n--", 4);
	memcpy(delim + 4, d + 2, blen);
	dlen = blen + 4;
	p = eol + 2;
	for (int n = 0;; n++) {
		const char *hend, *body, *next, *name;
		size_t name_len;

		if (n == MAX_PARTS)
			return errbuf__set(err, -E2BIG, "a JFR push's form has over %d parts",
					   MAX_PARTS);
		hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hend)
			return errbuf__set(err, -EBADMSG,
					   "a JFR push's form part has no end of headers");
		body = hend + 4;
		next = memmem(body, (size_t)(end - body), delim, dlen);
		if (!next)
			return errbuf__set(err, -EBADMSG, "a JFR push's form part has no end");
		if (part_name(p, hend, &name, &name_len)) {
			if (name_len == 3 && memcmp(name, "jfr", 3) == 0) {
				ret->jfr = body;
				ret->jfr_len = (size_t)(next - body);
			} else if (name_len == 6 && memcmp(name, "labels", 6) == 0) {
				ret->labels = body;
				ret->labels_len = (size_t)(next - body);
			}
		}
		p = next + dlen;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break; /* the closing boundary */
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return errbuf__set(err, -EBADMSG,
					   "a JFR push's form has a malformed boundary");
		p += 2;
	}
	if (!ret->jfr)
		return errbuf__set(err, -EBADMSG, "a JFR push's form has no 'jfr' part");
	return 0;
}
