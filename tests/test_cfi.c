/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/cfi.c: unwind rules from hand-built .eh_frame and .debug_frame
 * sections (each instruction form, the pointer encodings, both CIE id
 * styles and versions 1, 3 and 4), malformed sections (-EBADMSG with the
 * section and offset), and a real file read by fd and from memory.
 * tests/cli/cfi.sh checks real files against readelf.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "collector/collector.h"
#include "util/util.h"

#define EH_ADDR 0x2000ull   /* where the hand-built .eh_frame is "loaded" */
#define S	0x401000ull /* the first function's address */

struct sec {
	uint8_t b[8192];
	size_t n;
};

static void put(struct sec *s, const void *p, size_t n)
{
	assert_true(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void u8(struct sec *s, uint8_t v)
{
	put(s, &v, 1);
}

static void u32(struct sec *s, uint32_t v)
{
	put(s, &v, 4); /* x86-64: little-endian */
}

static void u64(struct sec *s, uint64_t v)
{
	put(s, &v, 8);
}

/* Starts an entry: returns where its 32-bit (or 64-bit) length goes. */
static size_t begin(struct sec *s, bool dwarf64)
{
	size_t at;

	if (dwarf64)
		u32(s, 0xffffffff);
	at = s->n;
	if (dwarf64)
		u64(s, 0);
	else
		u32(s, 0);
	return at;
}

/* Pads the entry to 8 bytes with DW_CFA_nop and writes its length. */
static void end(struct sec *s, size_t at, bool dwarf64)
{
	size_t hdr = dwarf64 ? 8 : 4;

	while ((s->n - at - hdr) % 8)
		u8(s, 0);
	if (dwarf64) {
		uint64_t len = s->n - at - 8;

		memcpy(s->b + at, &len, 8);
	} else {
		uint32_t len = (uint32_t)(s->n - at - 4);

		memcpy(s->b + at, &len, 4);
	}
}

/* An .eh_frame CIE "zR" (or "zRS"): pc-relative sdata4 addresses, return
 * address in r16 at cfa-8, CFA rsp+8. Returns its offset. */
static size_t eh_cie(struct sec *s, bool signal)
{
	size_t off = s->n, at = begin(s, false);
	static const uint8_t init[] = {0x0c, 0x07, 0x08, 0x90, 0x01};

	u32(s, 0); /* CIE id */
	u8(s, 1);  /* version */
	put(s, signal ? "zRS" : "zR", signal ? 4 : 3);
	u8(s, 1);    /* code alignment */
	u8(s, 0x78); /* data alignment -8 */
	u8(s, 16);   /* return address column */
	u8(s, 1);    /* augmentation data length */
	u8(s, 0x1b); /* DW_EH_PE_pcrel | DW_EH_PE_sdata4 */
	put(s, init, sizeof(init));
	end(s, at, false);
	return off;
}

/* Starts an .eh_frame FDE of cie for [pc, pc + len): its instructions
 * follow; returns where its length goes. */
static size_t eh_fde(struct sec *s, size_t cie, uint64_t pc, uint32_t len)
{
	size_t at = begin(s, false);

	u32(s, (uint32_t)(s->n - cie));
	u32(s, (uint32_t)(int32_t)(int64_t)(pc - (EH_ADDR + s->n)));
	u32(s, len);
	u8(s, 0); /* augmentation data length */
	return at;
}

static const uint8_t plt_expr[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a,
				   0x3b, 0x2a, 0x33, 0x24, 0x22};

/* The instruction forms of one FDE at S, and what each range gives. */
static void build_eh(struct sec *s)
{
	static const uint8_t a[] = {
		0x41, 0x0e, 0x10, 0x86, 0x02,	    /* +1: RSP 16, rbp at -16 */
		0x02, 0x03, 0x0d, 0x06,		    /* +4: CFA from rbp */
		0x03, 0x10, 0x00, 0x0a,		    /* +0x14: remember */
		0x0c, 0x07, 0x08, 0xc6,		    /* def_cfa rsp 8, restore rbp */
		0x04, 0x04, 0x00, 0x00, 0x00,	    /* +0x18 */
		0x0b, 0x2e, 0x10,		    /* restore_state, args_size */
		0x44, 0x12, 0x07, 0x7d,		    /* +0x1c: def_cfa_sf rsp 24 */
		0x11, 0x06, 0x03,		    /* offset_extended_sf rbp -24 */
		0x42, 0x13, 0x7b, 0x08, 0x06,	    /* +0x1e: cfa 40, rbp same */
		0x42, 0x05, 0x06, 0x04,		    /* +0x20: offset_extended rbp -32 */
		0x42, 0x06, 0x06,		    /* +0x22: restore_extended rbp */
		0x42, 0x09, 0x06, 0x03,		    /* +0x24: rbp in rbx */
		0x42, 0x07, 0x06,		    /* +0x26: rbp undefined */
		0x42, 0x10, 0x06, 0x02, 0x76, 0x00, /* +0x28: rbp by expression */
		0x42, 0x06, 0x06, 0x07, 0x10,	    /* +0x2a: restore rbp, rip undefined */
		0x42, 0x06, 0x10, 0x0f, 0x0b,	    /* +0x2c: restore rip, the PLT expr */
	};
	static const uint8_t b[] = {
		0x42, 0x0f, 0x02, 0x77, 0x08, /* +0x2e: another CFA expression */
		0x42, 0x0c, 0x0a, 0x08,	      /* +0x30: CFA from r10 */
		0x42, 0x0c, 0x07, 0x08,	      /* +0x32: back to rsp 8 ... */
		0x16, 0x10, 0x02, 0x77, 0x00, /* ... rip by val_expression */
		0x42, 0x06, 0x10,	      /* +0x34: restore rip ... */
		0x14, 0x06, 0x02,	      /* ... rbp val_offset */
		0x42, 0x06, 0x06,	      /* +0x36: restore rbp ... */
		0x2f, 0x06, 0x02,	      /* ... GNU_negative_offset_extended: +16 */
		0x42, 0x00,		      /* +0x38: nop */
		0x1d, 8,    0,	  0,	0,    0, 0, 0, 0, /* MIPS_advance_loc8 8: +0x40 */
		0x06, 0x06,				  /* restore rbp */
	};
	size_t cie = eh_cie(s, false), sig, at;

	at = eh_fde(s, cie, S, 0x100);
	put(s, a, sizeof(a));
	put(s, plt_expr, sizeof(plt_expr));
	put(s, b, sizeof(b));
	u8(s, 0x01); /* DW_CFA_set_loc S+0x48, pc-relative sdata4 */
	u32(s, (uint32_t)(int32_t)(int64_t)(S + 0x48 - (EH_ADDR + s->n)));
	u8(s, 0x0e); /* def_cfa_offset 32 */
	u8(s, 0x20);
	end(s, at, false);

	/* an instruction this reader does not know (DW_CFA_GNU_window_save) */
	at = eh_fde(s, cie, S + 0x200, 0x10);
	u8(s, 0x41);
	u8(s, 0x2d);
	end(s, at, false);

	/* a signal frame */
	sig = eh_cie(s, true);
	at = eh_fde(s, sig, S + 0x300, 8);
	end(s, at, false);
	u32(s, 0); /* the terminator */
}

/* .debug_frame: CIE versions 1 (32-bit), 3 (32-bit) and 4 (64-bit DWARF),
 * absolute addresses, CIE pointers from the section's start. */
static void build_debug(struct sec *s)
{
	for (int v = 0; v < 3; v++) {
		bool d64 = v == 2;
		uint8_t version = v == 0 ? 1 : v == 1 ? 3 : 4;
		size_t cie = s->n, at = begin(s, d64);

		if (d64)
			u64(s, UINT64_MAX);
		else
			u32(s, 0xffffffff);
		u8(s, version);
		u8(s, 0); /* augmentation "" */
		if (version == 4) {
			u8(s, 8); /* address size */
			u8(s, 0); /* segment selector size */
		}
		u8(s, 1);
		u8(s, 0x78);
		u8(s, 16); /* one byte in version 1, a ULEB128 after */
		u8(s, 0x0c);
		u8(s, 0x07);
		u8(s, 0x08);
		u8(s, 0x90);
		u8(s, 0x01);
		end(s, at, d64);

		at = begin(s, d64);
		if (d64)
			u64(s, cie);
		else
			u32(s, (uint32_t)cie);
		switch (v) {
		case 0: /* its own function: +1 RSP 16 */
			u64(s, S + 0x400);
			u64(s, 0x10);
			break;
		case 1: /* under .eh_frame's first FDE: ignored there */
			u64(s, S);
			u64(s, 0x10);
			break;
		default: /* starts inside .eh_frame's FDE, ends past it */
			u64(s, S + 0xf0);
			u64(s, 0x18);
			break;
		}
		u8(s, 0x41);
		u8(s, 0x0e);
		u8(s, v == 2 ? 0x30 : 0x10);
		end(s, at, d64);
	}
}

static void expect_row(const struct collector_cfi *t, uint64_t a, uint8_t kind, int32_t cfa,
		       int32_t rbp)
{
	const struct collector_cfi_row *r = collector_cfi__find(t, a);

	assert_non_null(r);
	if (r->kind != kind || (kind != COLLECTOR_CFI_NONE && kind != COLLECTOR_CFI_SIGNAL &&
				(r->cfa_offset != cfa || r->rbp_offset != rbp)))
		fail_msg("at 0x%llx: %s %d %d, expected %s %d %d", (unsigned long long)a,
			 collector_cfi__kind_name(r->kind), r->cfa_offset, r->rbp_offset,
			 collector_cfi__kind_name(kind), cfa, rbp);
}

static void test_instruction_forms(void **state)
{
	static struct sec eh, dbg;
	struct collector_cfi *t = NULL;
	struct collector_cfi_stats st;
	struct errbuf err = {{0}};
	const struct collector_cfi_row *rows;
	size_t n;

	(void)state;
	memset(&eh, 0, sizeof(eh));
	memset(&dbg, 0, sizeof(dbg));
	build_eh(&eh);
	build_debug(&dbg);
	assert_int_equal(
		collector_cfi__parse(eh.b, eh.n, EH_ADDR, dbg.b, dbg.n, 0, "hand", &err, &t), 0);
	assert_null(collector_cfi__find(t, S - 1));
	expect_row(t, S, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 1, COLLECTOR_CFI_RSP, 16, -16);
	expect_row(t, S + 4, COLLECTOR_CFI_RBP, 16, -16);
	expect_row(t, S + 0x13, COLLECTOR_CFI_RBP, 16, -16);
	expect_row(t, S + 0x14, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 0x18, COLLECTOR_CFI_RBP, 16, -16);
	expect_row(t, S + 0x1c, COLLECTOR_CFI_RSP, 24, -24);
	expect_row(t, S + 0x1e, COLLECTOR_CFI_RSP, 40, 0);
	expect_row(t, S + 0x20, COLLECTOR_CFI_RSP, 40, -32);
	expect_row(t, S + 0x22, COLLECTOR_CFI_RSP, 40, 0);
	expect_row(t, S + 0x24, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x26, COLLECTOR_CFI_RSP, 40, 0);
	expect_row(t, S + 0x28, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x2a, COLLECTOR_CFI_STOP, 40, 0);
	expect_row(t, S + 0x2c, COLLECTOR_CFI_PLT, 8, 0);
	expect_row(t, S + 0x2e, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x30, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x32, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x34, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x36, COLLECTOR_CFI_RSP, 8, 16);
	expect_row(t, S + 0x3f, COLLECTOR_CFI_RSP, 8, 16);
	expect_row(t, S + 0x40, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 0x48, COLLECTOR_CFI_RSP, 32, 0);
	expect_row(t, S + 0xff, COLLECTOR_CFI_RSP, 32, 0);
	/* .debug_frame's third FDE, where .eh_frame's first has ended */
	expect_row(t, S + 0x100, COLLECTOR_CFI_RSP, 48, 0);
	expect_row(t, S + 0x108, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x200, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 0x201, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x300, COLLECTOR_CFI_SIGNAL, 0, 0);
	expect_row(t, S + 0x308, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, S + 0x400, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 0x401, COLLECTOR_CFI_RSP, 16, 0);
	expect_row(t, S + 0x410, COLLECTOR_CFI_NONE, 0, 0);
	expect_row(t, UINT64_MAX, COLLECTOR_CFI_NONE, 0, 0);

	/* sorted, no two neighbours alike, NONE last */
	rows = collector_cfi__rows(t);
	n = collector_cfi__count(t);
	assert_true(n > 2);
	for (size_t i = 1; i < n; i++) {
		assert_true(rows[i].vaddr > rows[i - 1].vaddr);
		assert_false(rows[i].kind == rows[i - 1].kind &&
			     rows[i].cfa_offset == rows[i - 1].cfa_offset &&
			     rows[i].rbp_offset == rows[i - 1].rbp_offset);
	}
	assert_int_equal(rows[n - 1].kind, COLLECTOR_CFI_NONE);

	collector_cfi__stats(t, &st);
	assert_int_equal(st.fdes, 6);
	assert_int_equal(st.rows, n);
	assert_int_equal(st.none[COLLECTOR_CFI_RBP_RULE], 3);
	assert_int_equal(st.none[COLLECTOR_CFI_CFA_EXPRESSION], 1);
	assert_int_equal(st.none[COLLECTOR_CFI_CFA_REGISTER], 1);
	assert_int_equal(st.none[COLLECTOR_CFI_RA_RULE], 1);
	assert_int_equal(st.none[COLLECTOR_CFI_BAD_INSTRUCTION], 1);
	assert_true(st.none[COLLECTOR_CFI_NO_FDE] >= 3);
	assert_true(collector_cfi__bytes(t) >= n * sizeof(*rows));
	collector_cfi__free(t);
	collector_cfi__free(NULL);
}

/* parse SEC as .eh_frame: -EBADMSG with a message naming the section,
 * the offset and `what`. */
static void expect_bad(const struct sec *s, const char *what)
{
	struct collector_cfi *t = NULL;
	struct errbuf err = {{0}};
	int r = collector_cfi__parse(s->b, s->n, EH_ADDR, NULL, 0, 0, "bad", &err, &t);

	if (r != -EBADMSG || !strstr(err.msg, "bad: .eh_frame at offset 0x") ||
	    !strstr(err.msg, what))
		fail_msg("%d [%s], expected -EBADMSG and [%s]", r, err.msg, what);
	assert_null(t);
}

/* Go's linker: .debug_frame only, CIE version 3 without augmentation, a
 * data alignment of -4, so every offset is twice as many factors. */
static void test_go_data_alignment(void **state)
{
	static struct sec dbg;
	static const uint8_t init[] = {0x0c, 0x07, 0x08,  /* def_cfa rsp 8 */
				       0x05, 0x10, 0x02}; /* offset_extended rip 2 * -4 */
	static const uint8_t insns[] = {
		0x13, 0x7c,	  /* def_cfa_offset_sf -4 * -4 = 16 */
		0x45, 0x13, 0x78, /* +5: def_cfa_offset_sf -8 * -4 = 32 */
		0x05, 0x06, 0x06, /* offset_extended rbp 6 * -4 = -24 */
		0x4b, 0x13, 0x7e, /* +0x10: def_cfa_offset_sf 8 */
		0xc6,		  /* restore rbp */
	};
	struct collector_cfi *t = NULL;
	struct errbuf err = {{0}};
	size_t at;

	(void)state;
	memset(&dbg, 0, sizeof(dbg));
	at = begin(&dbg, false);
	u32(&dbg, 0xffffffff); /* .debug_frame's CIE id */
	u8(&dbg, 3);	       /* version */
	u8(&dbg, 0);	       /* no augmentation */
	u8(&dbg, 1);	       /* code alignment */
	u8(&dbg, 0x7c);	       /* data alignment -4 */
	u8(&dbg, 16);	       /* return address column (uleb in version 3) */
	put(&dbg, init, sizeof(init));
	end(&dbg, at, false);
	at = begin(&dbg, false);
	u32(&dbg, 0); /* the CIE at offset 0 */
	u64(&dbg, S);
	u64(&dbg, 0x20);
	put(&dbg, insns, sizeof(insns));
	end(&dbg, at, false);
	/* a frameless function (a leaf): CFA rsp+8 throughout */
	at = begin(&dbg, false);
	u32(&dbg, 0);
	u64(&dbg, S + 0x40);
	u64(&dbg, 0x10);
	end(&dbg, at, false);
	assert_int_equal(collector_cfi__parse(NULL, 0, 0, dbg.b, dbg.n, 0, "go", &err, &t), 0);
	expect_row(t, S, COLLECTOR_CFI_RSP, 16, 0);
	expect_row(t, S + 5, COLLECTOR_CFI_RSP, 32, -24);
	expect_row(t, S + 0x10, COLLECTOR_CFI_RSP, 8, 0);
	expect_row(t, S + 0x40, COLLECTOR_CFI_RSP, 8, 0);
	collector_cfi__free(t);
	t = NULL;

	/* as a Go binary's: the function with a frame is left to its frame
	 * pointer, the leaf keeps its rule */
	{
		struct collector_cfi_stats st;

		assert_int_equal(collector_cfi__parse(NULL, 0, 0, dbg.b, dbg.n, COLLECTOR_CFI_GO,
						      "go", &err, &t),
				 0);
		expect_row(t, S, COLLECTOR_CFI_NONE, 0, 0);
		expect_row(t, S + 0x1f, COLLECTOR_CFI_NONE, 0, 0);
		expect_row(t, S + 0x40, COLLECTOR_CFI_RSP, 8, 0);
		expect_row(t, S + 0x50, COLLECTOR_CFI_NONE, 0, 0);
		collector_cfi__stats(t, &st);
		assert_int_equal(st.none[COLLECTOR_CFI_GO_FRAME], 3);
		collector_cfi__free(t);
	}
}

static void test_malformed(void **state)
{
	static struct sec s, ok;
	size_t cie, at;

	(void)state;
	memset(&ok, 0, sizeof(ok));
	build_eh(&ok);

	/* a CIE cut short: its length runs past the section's end */
	s = ok;
	s.n = 10;
	expect_bad(&s, "entry length past the section's end");
	/* a length that can't be */
	s = ok;
	memcpy(s.b, &(uint32_t){0xfffffff0}, 4);
	expect_bad(&s, "entry length past the section's end");
	/* a CIE whose own length stops inside it */
	memset(&s, 0, sizeof(s));
	u32(&s, 7);
	u32(&s, 0);
	u8(&s, 1);
	put(&s, "zR", 2);
	expect_bad(&s, "CIE augmentation string not terminated");
	memset(&s, 0, sizeof(s));
	u32(&s, 7);
	u32(&s, 0);
	u8(&s, 1);
	put(&s, "\0\1", 2);
	expect_bad(&s, "truncated CIE");
	/* an FDE whose CIE pointer names an FDE, or lands before the section */
	memset(&s, 0, sizeof(s));
	cie = eh_cie(&s, false);
	at = eh_fde(&s, cie, S, 16);
	end(&s, at, false);
	at = eh_fde(&s, at, S + 16, 16); /* names the FDE before */
	end(&s, at, false);
	expect_bad(&s, "an FDE's CIE pointer names no CIE");
	memset(&s, 0, sizeof(s));
	at = begin(&s, false);
	u32(&s, 0x100);
	u64(&s, 0);
	end(&s, at, false);
	expect_bad(&s, "before the section's start");
	/* remember_state 17 deep */
	memset(&s, 0, sizeof(s));
	cie = eh_cie(&s, false);
	at = eh_fde(&s, cie, S, 16);
	for (int i = 0; i < COLLECTOR_CFI_MAX_DEPTH + 1; i++)
		u8(&s, 0x0a);
	end(&s, at, false);
	expect_bad(&s, "DW_CFA_remember_state deeper than 16");
	/* ... and exactly 16 is fine */
	{
		struct collector_cfi *t = NULL;

		memset(&s, 0, sizeof(s));
		cie = eh_cie(&s, false);
		at = eh_fde(&s, cie, S, 16);
		for (int i = 0; i < COLLECTOR_CFI_MAX_DEPTH; i++)
			u8(&s, 0x0a);
		end(&s, at, false);
		assert_int_equal(
			collector_cfi__parse(s.b, s.n, EH_ADDR, NULL, 0, 0, "ok", NULL, &t), 0);
		expect_row(t, S, COLLECTOR_CFI_RSP, 8, 0);
		collector_cfi__free(t);
	}
	/* restore_state with nothing remembered */
	memset(&s, 0, sizeof(s));
	cie = eh_cie(&s, false);
	at = eh_fde(&s, cie, S, 16);
	u8(&s, 0x0b);
	end(&s, at, false);
	expect_bad(&s, "without a remembered state");
	/* an instruction cut by the FDE's end (def_cfa without its offset) */
	memset(&s, 0, sizeof(s));
	cie = eh_cie(&s, false);
	at = begin(&s, false);
	u32(&s, (uint32_t)(s.n - cie));
	u32(&s, 0);
	u32(&s, 16);
	u8(&s, 0);
	u8(&s, 0x0c);
	u8(&s, 0x07);
	memcpy(s.b + at, &(uint32_t){(uint32_t)(s.n - at - 4)}, 4);
	expect_bad(&s, "truncated CFA instruction");
	/* a CIE version no producer writes */
	s = ok;
	s.b[8] = 2;
	expect_bad(&s, "CIE version not 1, 3 or 4");
}

/* A real file: by fd and from memory, the same table, with rows. */
static void test_real_file(void **state)
{
	static const char *const path = "/lib/x86_64-linux-gnu/libc.so.6";
	struct collector_cfi *a = NULL, *b = NULL;
	struct errbuf err = {{0}};
	struct stat st;
	char *data;
	int fd;

	(void)state;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(collector_cfi__read(fd, path, &err, &a), 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size);
	assert_non_null(data);
	assert_int_equal(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	assert_int_equal(collector_cfi__read_memory(data, (size_t)st.st_size, path, &err, &b), 0);
	assert_true(collector_cfi__count(a) > 1000);
	assert_int_equal(collector_cfi__count(a), collector_cfi__count(b));
	assert_memory_equal(collector_cfi__rows(a), collector_cfi__rows(b),
			    collector_cfi__count(a) * sizeof(struct collector_cfi_row));
	/* not an ELF file */
	{
		struct collector_cfi *c = NULL;

		assert_int_equal(collector_cfi__read_memory("hello", 5, "text", &err, &c),
				 -ENOEXEC);
		assert_null(c);
	}
	assert_non_null(strstr(err.msg, "text: not an ELF file"));
	free(data);
	collector_cfi__free(a);
	collector_cfi__free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instruction_forms),
		cmocka_unit_test(test_go_data_alignment),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_real_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
