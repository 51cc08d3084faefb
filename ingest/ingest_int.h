/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/ingest_int.h: what the files of ingest/ share with one another. Code
 * outside ingest/ uses ingest/ingest.h; only this module's tests and fuzz
 * harnesses may include this header too.
 *
 * The decoders are the pure half of ingest: they turn the parts of a request
 * into ingest_profiles ready for the store (validated names and labels,
 * sample types with totals, time range, the payload exactly as received).
 * No I/O, no global state: every output lives in the caller's arena and
 * scratch memory is freed before return, so the server calls them from many
 * threads at once. Every count and size a client controls is capped (struct
 * ingest_limits, the INGEST_* caps), and a refusal names the field, the
 * offending value (quoted, truncated) and the cap.
 *
 *   decode.c   limits, HTTP statuses, quoting, the legacy name and times,
 *              the pid label, media types, a decoded profile's sample types
 *   legacy.c   the legacy /ingest decoder (ingest__decode_legacy), with the
 *              multipart sample_type_config
 *   push.c     the push API's decoder (ingest__decode_push): protobuf and
 *              proto3 JSON
 *   json.c     a strict JSON reader (RFC 8259)
 *   base64.c   base64 as proto3 JSON writes bytes
 *
 * The helpers that run once per byte are static inline here, so that a
 * decoder calling them from another file pays no call for each byte.
 */
#ifndef BRAID_INGEST_INT_H
#define BRAID_INGEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/ingest.h"

/* ---- decode.c: shared by the decoders ------------------------------------ */

/* Fills *out with the limits a decode runs under: in's, with every zero
 * field (a zeroed struct, as ingest_options allows; in may be NULL) taken
 * from the defaults. max_labels is clamped to STORE_MAX_LABELS so that
 * nothing decoded is refused by the store later as a server error, and the
 * profile decoder gets max_decompressed as its own cap on inflated bytes. */
void ingest_limits__effective(const struct ingest_limits *in, struct ingest_limits *out);

/* A client's bytes made printable for a message: at most INGEST_QUOTE_MAX
 * output characters, then "..." when cut. */
#define INGEST_QUOTE_MAX 64
struct ingest_quoted {
	char s[INGEST_QUOTE_MAX + 8];
};
/* Writes the len bytes at s into q, NUL-terminated: printable ASCII as
 * itself, other bytes and '\\' and '\'' as \xNN. Returns q->s, which lives
 * as long as q; one ingest_quoted per value quoted in the same message. */
const char *ingest__quote(struct ingest_quoted *q, const char *s, size_t len);
/* The same for a NUL-terminated s. */
const char *ingest__quote_cstr(struct ingest_quoted *q, const char *s);

/* Label keys (legacy tags and push labels alike) are [A-Za-z0-9_.]+. */
static inline bool ingest__is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline bool ingest__is_label_char(unsigned char c)
{
	return ingest__is_alnum(c) || c == '_' || c == '.';
}

/* The length of the well-formed UTF-8 sequence at p (n bytes available, at
 * least 1), 0 if there is none: no overlong forms, no surrogates, nothing
 * past U+10FFFF. */
static inline size_t ingest__utf8_seq(const unsigned char *p, size_t n)
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

/* Whether the n bytes at s are well-formed UTF-8 (NULs included). */
static inline bool ingest__utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, k; i < n; i += k) {
		k = ingest__utf8_seq(p + i, n - i);
		if (!k)
			return false;
	}
	return true;
}

/* The value of the first "pid" label among the n at l as a PID: decimal,
 * 1 to the kernel's PID_MAX_LIMIT; 0 when there is none or it is not one. */
int32_t ingest__pid_of_labels(const struct label *l, size_t n);

/* Whether the Content-Type header ct (NULL: none) has the media type want:
 * compared without case, white space trimmed, parameters dropped. */
bool ingest__media_type_is(const char *ct, const char *want);

/* String id of a decoded profile; "" (never NULL) for an id it lacks. */
const char *ingest__profile_str(const struct profile *p, uint32_t id);

/* Turns the error r of profile__decode (its message in derr) into the
 * request's, in err, and returns it: sizes and counts over a cap keep their
 * errno (-EFBIG, -E2BIG: 413), -ENOMEM stays, anything else is -EBADMSG
 * (422) "undecodable <fmt>: ...". prefix ("" or, say, "series 0 sample 1: ")
 * heads the message. */
int ingest__decode_error(struct errbuf *err, int r, const struct errbuf *derr, const char *prefix,
			 enum profile_format fmt);

/* The sample types of p with their totals: *ret is an array of *ret_n in
 * the arena, strings copied there too. -EBADMSG when p has no sample types,
 * one without a name, a name or unit over STORE_MAX_STRING, or a total
 * that overflows 64 bits; -E2BIG over STORE_MAX_SAMPLE_TYPES; -ENOMEM; or
 * profile__totals' error. The message in err starts with prefix. */
int ingest__profile_types(const struct profile *p, const char *prefix, struct arena *a,
			  struct errbuf *err, struct store_sample_type **ret, size_t *ret_n);

/* ---- json.c: a strict JSON reader ----------------------------------------- */

/*
 * A cursor over a JSON text (RFC 8259), read by walking it: the caller
 * enters objects and arrays, steps from element to element, reads the
 * members it wants and skips the rest. The grammar is checked in full,
 * values that are not read included; nesting is capped at
 * INGEST_JSON_MAX_DEPTH so the recursion in skipping is bounded. The text
 * needs no NUL and is never written.
 *
 * Every function but peek returns 0 (or 1 where said) or a negative errno
 * with a message in err: -EBADMSG "<what>: <fault> at byte N" for bad JSON,
 * -ENOMEM when the arena runs out. After an error the cursor is of no
 * further use.
 *
 * Walking an object:
 *
 *	r = ingest_json__enter(j, '{');
 *	for (i = 0; r == 0; i++) {
 *		r = ingest_json__next(j, '}', i);
 *		if (r <= 0)
 *			break;		// 0: the object is over
 *		r = ingest_json__key(j, key, sizeof(key), &klen);
 *		if (r == 0)
 *			r = ingest_json__key_is(key, klen, "x") ? read_x(j)
 *								 : ingest_json__skip(j);
 *	}
 *
 * and at the end, ingest_json__peek(j) == -1 checks that nothing follows.
 */
#define INGEST_JSON_MAX_DEPTH 32
#define INGEST_JSON_KEY_MAX   32 /* a key buffer for the member names a decoder compares */

struct ingest_json {
	const unsigned char *s;
	size_t len;
	size_t pos; /* the byte the next read starts at */
	int depth;
	const char *what; /* heads every message: "invalid JSON push request" */
	struct errbuf *err;
};

/* Starts a cursor at the first of the len bytes at s. */
void ingest_json__init(struct ingest_json *j, const void *s, size_t len, const char *what,
		       struct errbuf *err);

/* Skips white space; returns the next byte without reading it, -1 at the
 * end of the text. Called before every token, hence inline. */
static inline int ingest_json__peek(struct ingest_json *j)
{
	while (j->pos < j->len && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
				   j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
		j->pos++;
	return j->pos < j->len ? j->s[j->pos] : -1;
}

/* Sets err to -EBADMSG "<what>: <fmt...> at byte <pos>" and returns
 * -EBADMSG: a decoder's own complaint about a value it read (a wrong type,
 * a duplicate member), placed like the reader's. */
int ingest_json__fail(struct ingest_json *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Enters the object (open '{') or array ('[') that comes next; -EBADMSG if
 * something else comes, or past INGEST_JSON_MAX_DEPTH levels. */
int ingest_json__enter(struct ingest_json *j, char open);

/* Moves to element i (counting from 0) of the object or array entered,
 * whose closing bracket is close: 1 when there is one (for an object, its
 * member name comes next), 0 after the closing bracket (the level is left),
 * -EBADMSG when neither a ',' nor close follows element i - 1. */
int ingest_json__next(struct ingest_json *j, char close, size_t i);

/* Reads a member name and its ':'. The name is decoded into key, cut at
 * cap bytes (no NUL added; key may be NULL), and *ret_len gets its whole
 * length, which may exceed cap. */
int ingest_json__key(struct ingest_json *j, char *key, size_t cap, size_t *ret_len);

/* The same with the whole name, NUL-terminated, in the arena. */
int ingest_json__key_dup(struct ingest_json *j, struct arena *a, char **ret, size_t *ret_len);

/* Whether the member name read into key with ingest_json__key (len its
 * whole length) is name. name must be shorter than key's buffer. Called
 * for each member a decoder walks, hence inline. */
static inline bool ingest_json__key_is(const char *key, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(key, name, len) == 0;
}

/* Reads the string that comes next, escapes decoded to UTF-8, into out (at
 * most cap bytes, no NUL added; out NULL only checks it). *ret_len gets the
 * decoded length, which may exceed cap but never the string's raw length.
 * -EBADMSG for anything but a string, a bad escape, a control character,
 * invalid UTF-8 or a lone surrogate. */
int ingest_json__string(struct ingest_json *j, char *out, size_t cap, size_t *ret_len);

/* The same, NUL-terminated, in the arena. The string may hold a NUL (from
 * \u0000): compare strlen(*ret) with *ret_len where that matters. */
int ingest_json__string_dup(struct ingest_json *j, struct arena *a, char **ret, size_t *ret_len);

/* Checks the value that comes next, whatever it is, and steps over it. */
int ingest_json__skip(struct ingest_json *j);

/* Reads a null if one comes next: 1; 0 when the next value is something
 * else (nothing is read). */
int ingest_json__null(struct ingest_json *j);

/* Enters an array, or reads a null in its place (proto3 JSON's empty
 * repeated field): *ret_open tells whether there are elements to walk with
 * ingest_json__next. */
int ingest_json__array_or_null(struct ingest_json *j, bool *ret_open);

/* A string or null (*ret NULL, *ret_len 0) as with ingest_json__string_dup;
 * anything else is -EBADMSG "<field> must be a string". */
int ingest_json__opt_string(struct ingest_json *j, struct arena *a, const char *field, char **ret,
			    size_t *ret_len);

/* Checks that true, false or null comes next and reads it (its value is
 * not returned); anything else is -EBADMSG "<field> must be true or
 * false". */
int ingest_json__opt_bool(struct ingest_json *j, const char *field);

/* ---- base64.c ------------------------------------------------------------- */

/* Decodes the n bytes of base64 at buf in place: the standard or the
 * URL-safe alphabet (not both), padding optional but right when present,
 * nothing else (no white space), as proto3 JSON writes bytes. 0 with the
 * decoded length in *ret_len (at most n * 3 / 4); -EBADMSG otherwise, and
 * then buf may be partly overwritten. */
int ingest__base64_decode(unsigned char *buf, size_t n, size_t *ret_len);

/* ---- JFR pushes (jfr.c) --------------------------------------------------- */

/* Checks that b's JFR (gzipped or not, inflated within max_inflated) is a
 * JFR recording and returns, in the arena, the multipart form braid keeps
 * and forwards: the `jfr` part and, when b has one, the `labels` part, each
 * byte for byte, under a boundary neither contains; the form's first line
 * is "--BOUNDARY". -EINVAL/-EBADMSG/-EFBIG with a message. */
int ingest_jfr__form(const struct ingest_body *b, size_t max_inflated, struct arena *a,
		     struct errbuf *err, const void **ret, size_t *ret_len);

#endif
