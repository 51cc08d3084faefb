/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest/base64.c: base64 decoding, for the bytes fields of proto3 JSON
 * (the push API's rawProfile).
 */
#include "ingest/ingest_int.h"

#include <errno.h>

int ingest__base64_decode(unsigned char *buf, size_t n, size_t *ret_len)
{
	size_t out = 0, pad = 0, i;
	unsigned acc = 0, bits = 0;
	int alphabet = 0; /* 1 standard, 2 URL-safe */

	while (n > 0 && buf[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if ((pad && (n + pad) % 4) || n % 4 == 1)
		return -EBADMSG;
	for (i = 0; i < n; i++) {
		unsigned char c = buf[i];
		unsigned v;
		int alpha = 0;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+' || c == '/') {
			v = c == '+' ? 62 : 63;
			alpha = 1;
		} else if (c == '-' || c == '_') {
			v = c == '-' ? 62 : 63;
			alpha = 2;
		} else
			return -EBADMSG;
		if (alpha) {
			if (alphabet && alphabet != alpha)
				return -EBADMSG;
			alphabet = alpha;
		}
		acc = (acc << 6 | v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[out++] = (unsigned char)(acc >> bits);
		}
	}
	*ret_len = out;
	return 0;
}
