/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cfi: unwind rules (collector_cfi__parse) from an .eh_frame or
 * .debug_frame section. The first byte chooses: bit 0 set, the rest is
 * .debug_frame (bit 1 set too: a Go binary's, COLLECTOR_CFI_GO); clear,
 * .eh_frame loaded at 0x1000. A refusal must be
 * -EBADMSG, -E2BIG or -EFBIG with a message; a table must be sorted with no
 * two neighbours alike, end with NONE, and find each row at its own vaddr.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, size_t i)
{
	fprintf(stderr, "fuzz_cfi: %s (row %zu)\n", what, i);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collector_cfi *t = NULL;
	const struct collector_cfi_row *rows;
	struct collector_cfi_stats st;
	struct errbuf err;
	bool debug, go;
	uint8_t *sec;
	size_t n;
	int r;

	if (size < 1)
		return 0;
	debug = data[0] & 1;
	go = data[0] & 2;
	/* a copy of exactly the section's size, so that ASan sees any read past it */
	n = size - 1;
	sec = malloc(n ? n : 1);
	if (!sec)
		abort();
	memcpy(sec, data + 1, n);
	memset(err.msg, 'X', sizeof(err.msg));
	r = debug ? collector_cfi__parse(NULL, 0, 0, sec, n, go ? COLLECTOR_CFI_GO : 0, "fuzz",
					 &err, &t)
		  : collector_cfi__parse(sec, n, 0x1000, NULL, 0, 0, "fuzz", &err, &t);
	if (r < 0) {
		if (r != -EBADMSG && r != -E2BIG && r != -EFBIG && r != -ENOMEM)
			fail("an unexpected error", (size_t)-r);
		if (r != -ENOMEM && (!memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0]))
			fail("an error without a message", 0);
		if (t)
			fail("a table on error", 0);
		goto cleanup;
	}
	rows = collector_cfi__rows(t);
	n = collector_cfi__count(t);
	collector_cfi__stats(t, &st);
	if (st.rows != n || (n && rows[n - 1].kind != COLLECTOR_CFI_NONE))
		fail("the last row is not NONE, or the count is off", n);
	for (size_t i = 0; i < n; i++) {
		if (rows[i].kind > COLLECTOR_CFI_STOP)
			fail("an unknown kind", i);
		if (collector_cfi__find(t, rows[i].vaddr) != &rows[i])
			fail("a row's own vaddr does not find it", i);
		if (i && rows[i].vaddr <= rows[i - 1].vaddr)
			fail("rows out of order", i);
		if (i && rows[i].kind == rows[i - 1].kind &&
		    rows[i].cfa_offset == rows[i - 1].cfa_offset &&
		    rows[i].rbp_offset == rows[i - 1].rbp_offset)
			fail("two neighbours alike", i);
	}
	if (n && rows[0].vaddr && collector_cfi__find(t, rows[0].vaddr - 1))
		fail("an address before the first row finds one", 0);
cleanup:
	collector_cfi__free(t);
	free(sec);
	return 0;
}
