/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_kallsyms: /proc/kallsyms text (collector_ksyms__parse) and lookups
 * around every symbol's address. A hit must be consistent (the symbol's own
 * start finds it at offset 0), and, for inputs of a few lines, no symbol of
 * the input may start between the one found and the address; an address
 * within COLLECTOR_KSYM_MAX_SIZE of a symbol must find one. Each line parsed
 * alone tells where its symbol starts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/collector.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REF_LINES 64

struct sym {
	uint64_t addr; /* as this harness reads the line */
	bool known;    /* the line holds a text symbol that starts at addr */
};

static void fail(const char *what, uint64_t addr)
{
	fprintf(stderr, "fuzz_kallsyms: %s at 0x%llx\n", what, (unsigned long long)addr);
	abort();
}

static void check(const struct collector_ksyms *k, const struct sym *syms, size_t n, bool complete,
		  uint64_t addr)
{
	const char *name = NULL, *mod = NULL, *name2 = NULL, *mod2 = NULL;
	uint64_t off = 0, off2 = 0, start, best = 0;
	bool have_best = false;
	int r;

	for (size_t i = 0; i < n; i++)
		if (syms[i].known && syms[i].addr <= addr && (!have_best || syms[i].addr > best)) {
			best = syms[i].addr;
			have_best = true;
		}
	r = collector_ksyms__lookup(k, addr, &name, &mod, &off);
	if (r < 0) {
		if (r != -ENOENT)
			fail("a lookup failed otherwise than -ENOENT", addr);
		if (complete && have_best && addr - best <= COLLECTOR_KSYM_MAX_SIZE)
			fail("a lookup missed the symbol just before", addr);
		return;
	}
	if (!name || !mod || off > addr || strlen(name) > COLLECTOR_MAX_SYMBOL_NAME)
		fail("a lookup returned a bad name, module or offset", addr);
	if (strcmp(mod, COLLECTOR_KERNEL_MODULE) != 0 &&
	    (mod[0] != '[' || mod[strlen(mod) - 1] != ']'))
		fail("a module that is not \"[name]\"", addr);
	start = addr - off;
	if (collector_ksyms__lookup(k, start, &name2, &mod2, &off2) < 0 || name2 != name ||
	    mod2 != mod || off2 != 0)
		fail("a symbol's own start does not find it", start);
	if (have_best && best > start)
		fail("a lookup skipped a closer symbol", addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t fixed[] = {0, 1, 0xffffffff81000000, UINT64_MAX};
	struct sym syms[MAX_REF_LINES] = {{0}};
	struct collector_ksyms *k = NULL;
	const char *p, *end;
	struct errbuf err;
	size_t n = 0;
	bool complete = true;
	char *text;
	int r;

	text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	memset(err.msg, 'X', sizeof(err.msg));
	r = collector_ksyms__parse(text, size, &err, &k);
	if (r < 0) {
		if (r != -EBADMSG && r != -EACCES && r != -E2BIG && r != -EFBIG && r != -ENOMEM)
			fail("an unexpected error", (uint64_t)-r);
		if (r != -ENOMEM && (!memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0]))
			fail("an error without a message", (uint64_t)-r);
		goto cleanup;
	}

	/* each line alone: where its symbol starts, if it has one */
	for (p = text, end = text + size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct collector_ksyms *one = NULL;
		const char *name, *mod;
		uint64_t off;
		char buf[64];
		size_t len = (size_t)(eol - p);

		if (len && n == MAX_REF_LINES) {
			complete = false;
			break;
		}
		if (len) {
			struct sym *s = &syms[n++];

			memcpy(buf, p, len < sizeof(buf) - 1 ? len : sizeof(buf) - 1);
			buf[len < sizeof(buf) - 1 ? len : sizeof(buf) - 1] = '\0';
			s->addr = strtoull(buf, NULL, 16);
			if (collector_ksyms__parse(p, len, NULL, &one) == 0 &&
			    collector_ksyms__count(one) == 1) {
				s->known = collector_ksyms__lookup(one, s->addr, &name, &mod,
								   &off) == 0 &&
					   off == 0;
				complete &= s->known;
			}
			collector_ksyms__free(one);
		}
		p = eol + 1;
	}

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check(k, syms, n, complete, fixed[i]);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = syms[i].addr;

		check(k, syms, n, complete, a - 1);
		check(k, syms, n, complete, a);
		check(k, syms, n, complete, a + 1);
		check(k, syms, n, complete, a + COLLECTOR_KSYM_MAX_SIZE);
		check(k, syms, n, complete, a + COLLECTOR_KSYM_MAX_SIZE + 1);
	}
cleanup:
	collector_ksyms__free(k);
	free(text);
	return 0;
}
