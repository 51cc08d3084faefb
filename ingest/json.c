/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/json.c: a strict JSON reader (RFC 8259) for the decoders: the
 * push API's proto3 JSON and the multipart sample_type_config. It reads
 * what a decoder walks to and checks the rest; see ingest_int.h for the
 * contract.
 */
#include "ingest/ingest_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ingest_json__init(struct ingest_json *j, const void *s, size_t len, const char *what,
		       struct errbuf *err)
{
	*j = (struct ingest_json){.s = s, .len = len, .what = what, .err = err};
}

int ingest_json__fail(struct ingest_json *j, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errbuf__set(j->err, -EBADMSG, "%s: %s at byte %zu", j->what, msg, j->pos);
}

static int hex4(const unsigned char *p, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

/* Reads the \u escape at j->pos (and its low surrogate) into *ret_cp. */
static int json_u_escape(struct ingest_json *j, unsigned *ret_cp)
{
	const unsigned char *p = j->s + j->pos;
	unsigned hi, lo;

	if (j->len - j->pos < 6 || hex4(p + 2, &hi) < 0)
		return ingest_json__fail(j, "bad \\u escape");
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return ingest_json__fail(j, "lone low surrogate \\u%04x", hi);
	if (hi < 0xd800 || hi > 0xdbff) {
		j->pos += 6;
		*ret_cp = hi;
		return 0;
	}
	if (j->len - j->pos < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) < 0 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return ingest_json__fail(j, "high surrogate \\u%04x without its low surrogate", hi);
	j->pos += 12;
	*ret_cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static size_t utf8_put(unsigned cp, unsigned char *o)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

int ingest_json__string(struct ingest_json *j, char *out, size_t cap, size_t *ret_len)
{
	unsigned char u[4];
	size_t n = 0, k;
	unsigned cp = 0;
	int r;

	if (ingest_json__peek(j) != '"')
		return ingest_json__fail(j, "expected a string");
	j->pos++;
	for (;;) {
		unsigned char c;

		if (j->pos >= j->len)
			return ingest_json__fail(j, "unterminated string");
		c = j->s[j->pos];
		if (c == '"') {
			j->pos++;
			break;
		}
		if (c < 0x20)
			return ingest_json__fail(j, "control character 0x%02x in a string", c);
		if (c == '\\') {
			if (j->pos + 1 >= j->len)
				return ingest_json__fail(j, "unterminated string");
			switch (j->s[j->pos + 1]) {
			case '"':
			case '\\':
			case '/':
				u[0] = j->s[j->pos + 1];
				break;
			case 'b':
				u[0] = '\b';
				break;
			case 'f':
				u[0] = '\f';
				break;
			case 'n':
				u[0] = '\n';
				break;
			case 'r':
				u[0] = '\r';
				break;
			case 't':
				u[0] = '\t';
				break;
			case 'u':
				r = json_u_escape(j, &cp);
				if (r < 0)
					return r;
				k = utf8_put(cp, u);
				goto put;
			default:
				return ingest_json__fail(j, "bad escape '\\%c'",
							 j->s[j->pos + 1] >= 0x20 &&
									 j->s[j->pos + 1] < 0x7f
								 ? j->s[j->pos + 1]
								 : '?');
			}
			j->pos += 2;
			k = 1;
		} else {
			k = ingest__utf8_seq(j->s + j->pos, j->len - j->pos);
			if (!k)
				return ingest_json__fail(j, "invalid UTF-8 in a string");
			memcpy(u, j->s + j->pos, k);
			j->pos += k;
		}
	put:
		for (size_t i = 0; i < k; i++, n++)
			if (out && n < cap)
				out[n] = (char)u[i];
	}
	*ret_len = n;
	return 0;
}

int ingest_json__string_dup(struct ingest_json *j, struct arena *a, char **ret, size_t *ret_len)
{
	size_t raw, i;
	char *buf;
	int r;

	if (ingest_json__peek(j) != '"')
		return ingest_json__fail(j, "expected a string");
	/* the raw length bounds the decoded one */
	for (i = j->pos + 1; i < j->len && j->s[i] != '"'; i++)
		if (j->s[i] == '\\')
			i++;
	raw = i - j->pos;
	buf = arena__alloc(a, raw + 1);
	if (!buf)
		return errbuf__set(j->err, -ENOMEM, "out of memory");
	r = ingest_json__string(j, buf, raw, ret_len);
	if (r < 0)
		return r;
	buf[*ret_len] = '\0';
	*ret = buf;
	return 0;
}

static int json_number(struct ingest_json *j)
{
	size_t p = j->pos;
	const unsigned char *s = j->s;

#define DIGIT(i) ((i) < j->len && s[i] >= '0' && s[i] <= '9')
	if (p < j->len && s[p] == '-')
		p++;
	if (p < j->len && s[p] == '0')
		p++;
	else if (DIGIT(p))
		while (DIGIT(p))
			p++;
	else
		goto bad;
	if (p < j->len && s[p] == '.') {
		p++;
		if (!DIGIT(p))
			goto bad;
		while (DIGIT(p))
			p++;
	}
	if (p < j->len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < j->len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (!DIGIT(p))
			goto bad;
		while (DIGIT(p))
			p++;
	}
#undef DIGIT
	j->pos = p;
	return 0;
bad:
	j->pos = p;
	return ingest_json__fail(j, "bad number");
}

static int json_literal(struct ingest_json *j, const char *lit)
{
	size_t n = strlen(lit);

	if (j->len - j->pos < n || memcmp(j->s + j->pos, lit, n) != 0)
		return ingest_json__fail(j, "unexpected character '%c'",
					 j->s[j->pos] >= 0x20 && j->s[j->pos] < 0x7f ? j->s[j->pos]
										     : '?');
	j->pos += n;
	return 0;
}

int ingest_json__enter(struct ingest_json *j, char open)
{
	if (ingest_json__peek(j) != open)
		return ingest_json__fail(j,
					 open == '{' ? "expected an object" : "expected an array");
	if (++j->depth > INGEST_JSON_MAX_DEPTH)
		return ingest_json__fail(j, "nested deeper than %d levels", INGEST_JSON_MAX_DEPTH);
	j->pos++;
	return 0;
}

int ingest_json__next(struct ingest_json *j, char close, size_t i)
{
	int c = ingest_json__peek(j);

	if (c == close) {
		j->pos++;
		j->depth--;
		return 0;
	}
	if (i > 0) {
		if (c != ',')
			return ingest_json__fail(j, "expected ',' or '%c'", close);
		j->pos++;
	}
	return 1;
}

int ingest_json__key(struct ingest_json *j, char *key, size_t cap, size_t *ret_len)
{
	int r;

	if (ingest_json__peek(j) != '"')
		return ingest_json__fail(j, "expected a member name");
	r = ingest_json__string(j, key, cap, ret_len);
	if (r < 0)
		return r;
	if (ingest_json__peek(j) != ':')
		return ingest_json__fail(j, "expected ':'");
	j->pos++;
	return 0;
}

int ingest_json__key_dup(struct ingest_json *j, struct arena *a, char **ret, size_t *ret_len)
{
	int r;

	if (ingest_json__peek(j) != '"')
		return ingest_json__fail(j, "expected a member name");
	r = ingest_json__string_dup(j, a, ret, ret_len);
	if (r < 0)
		return r;
	if (ingest_json__peek(j) != ':')
		return ingest_json__fail(j, "expected ':'");
	j->pos++;
	return 0;
}

int ingest_json__skip(struct ingest_json *j)
{
	int c = ingest_json__peek(j), r;
	char close = c == '{' ? '}' : ']';
	size_t n, i;

	switch (c) {
	case '{':
	case '[':
		r = ingest_json__enter(j, (char)c);
		for (i = 0; r == 0; i++) {
			r = ingest_json__next(j, close, i);
			if (r <= 0)
				break;
			if (close == '}') {
				r = ingest_json__key(j, NULL, 0, &n);
				if (r < 0)
					break;
			}
			r = ingest_json__skip(j);
		}
		return r;
	case '"':
		return ingest_json__string(j, NULL, 0, &n);
	case 't':
		return json_literal(j, "true");
	case 'f':
		return json_literal(j, "false");
	case 'n':
		return json_literal(j, "null");
	case -1:
		return ingest_json__fail(j, "unexpected end of input");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return json_number(j);
		return ingest_json__fail(j, "unexpected character '%c'",
					 c >= 0x20 && c < 0x7f ? c : '?');
	}
}

int ingest_json__null(struct ingest_json *j)
{
	int r;

	if (ingest_json__peek(j) != 'n')
		return 0;
	r = json_literal(j, "null");
	return r < 0 ? r : 1;
}

int ingest_json__array_or_null(struct ingest_json *j, bool *ret_open)
{
	int r = ingest_json__null(j);

	*ret_open = false;
	if (r)
		return r < 0 ? r : 0;
	r = ingest_json__enter(j, '[');
	*ret_open = r == 0;
	return r;
}

int ingest_json__opt_string(struct ingest_json *j, struct arena *a, const char *field, char **ret,
			    size_t *ret_len)
{
	int r = ingest_json__null(j);

	*ret = NULL;
	*ret_len = 0;
	if (r)
		return r < 0 ? r : 0;
	if (ingest_json__peek(j) != '"')
		return ingest_json__fail(j, "%s must be a string", field);
	return ingest_json__string_dup(j, a, ret, ret_len);
}

int ingest_json__opt_bool(struct ingest_json *j, const char *field)
{
	int c = ingest_json__peek(j);

	if (c == 't')
		return json_literal(j, "true");
	if (c == 'f')
		return json_literal(j, "false");
	if (c == 'n')
		return json_literal(j, "null");
	return ingest_json__fail(j, "%s must be true or false", field);
}
