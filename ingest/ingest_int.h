/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/ingest_int.h: what the files of ingest/ share and nothing outside
 * ingest/ (and its tests and fuzz harnesses) may use.
 */
#ifndef BRAID_INGEST_INT_H
#define BRAID_INGEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"

/* A client's bytes made printable for a message: at most QUOTE_MAX output
 * characters, non-printable bytes as \xNN, "..." when cut. */
#define QUOTE_MAX 64
struct quoted {
	char s[QUOTE_MAX + 8];
};

static inline bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline bool is_label_char(unsigned char c)
{
	return is_alnum(c) || c == '_' || c == '.';
}

/* The length of the well-formed UTF-8 sequence at p (n bytes available),
 * 0 if there is none: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
static inline size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

static inline bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
	}
	return true;
}

/* ---- strict JSON (RFC 8259) ----------------------------------------------- */

/* A cursor over a JSON text. The grammar is checked in full, values that
 * are not read included; nesting is capped at JSON_MAX_DEPTH so recursion
 * is bounded. Errors are -EBADMSG "<what>: <fault> at byte N". */
struct json {
	const unsigned char *s;
	size_t len;
	size_t pos;
	int depth;
	const char *what;
	struct errbuf *err;
};

#define JSON_KEY_MAX 32 /* longer member names are none we read */

/* ---- decode.c ------------------------------------------------------------ */

void effective_limits(const struct ingest_limits *in, struct ingest_limits *out);
const char *quote(struct quoted *q, const char *s, size_t len);
const char *quote_cstr(struct quoted *q, const char *s);
int32_t pid_of_labels(const struct store_label *l, size_t n);
bool media_type_is(const char *ct, const char *want);
const char *pstr(const struct profile *p, uint32_t id);
int decode_error(struct errbuf *err, int r, const struct errbuf *derr, const char *prefix,
		 enum profile_format fmt);
int profile_types(const struct profile *p, const char *prefix, struct arena *a, struct errbuf *err,
		  struct store_sample_type **ret, size_t *ret_n);

/* ---- json.c -------------------------------------------------------------- */

/* Skips white space; returns the next byte, -1 at the end. */
static inline int json_peek(struct json *j)
{
	while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
				   j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
		j->pos++;
	return j->pos < j->len ? j->s[j->pos] : -1;
}

int json_fail(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int json_string(struct json *j, char *out, size_t cap, size_t *ret_len);
int json_string_dup(struct json *j, struct arena *a, char **ret, size_t *ret_len);
int json_enter(struct json *j, char open);
int json_next(struct json *j, char close, size_t i);
int json_key(struct json *j, char *key, size_t cap, size_t *ret_len);
int json_key_dup(struct json *j, struct arena *a, char **ret, size_t *ret_len);
int json_skip(struct json *j);
int json_null(struct json *j);
int json_array_or_null(struct json *j, bool *ret_open);
int json_opt_string(struct json *j, struct arena *a, const char *field, char **ret,
		    size_t *ret_len);
int json_opt_bool(struct json *j, const char *field);
bool key_is(const char *key, size_t len, const char *name);

/* ---- base64.c ------------------------------------------------------------ */

bool base64_decode(unsigned char *buf, size_t n, size_t *ret_len);

#endif
