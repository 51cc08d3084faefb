/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector/cfi.c: compact x86-64 unwind rules from an ELF file's .eh_frame
 * and .debug_frame. Each FDE's CFA program is run once, and at every address
 * where the rule changes we keep only what the BPF unwinder can follow: the
 * CFA as rsp or rbp plus an offset, where rbp was saved, and the few special
 * cases (PLT stubs, signal frames, the thread's root). The result is one
 * sorted table of rows per file, as the OpenTelemetry eBPF profiler's stack
 * deltas are. Everything the sections declare (lengths, pointers, counts,
 * nesting) is checked against the section's end or a cap before use.
 */
#include "collector/collector.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

#define CFI_MAX_MEMORY (256u << 20) /* bytes of an in-memory ELF image */
#define CFI_MAX_AUG    64u	    /* bytes of an augmentation string */

/* DWARF register numbers of x86-64 (the psABI's table). */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA	16

/* Pointer encodings (LSB 10.6, "DWARF Exception Header Encoding"). */
#define PE_OMIT	    0xff
#define PE_FORMAT   0x0f
#define PE_APP	    0x70
#define PE_INDIRECT 0x80
#define PE_ABSPTR   0x00
#define PE_ULEB	    0x01
#define PE_UDATA2   0x02
#define PE_UDATA4   0x03
#define PE_UDATA8   0x04
#define PE_SLEB	    0x09
#define PE_SDATA2   0x0a
#define PE_SDATA4   0x0b
#define PE_SDATA8   0x0c
#define PE_PCREL    0x10

struct collector_cfi {
	struct collector_cfi_row *rows;
	size_t n_rows;
	struct collector_cfi_stats stats;
};

/* How one register is recovered, as far as the BPF side cares. */
enum rule {
	RULE_SAME = 0, /* unchanged, or never mentioned, or undefined (for rbp) */
	RULE_OFFSET,   /* saved at CFA + off */
	RULE_UNDEF,    /* DW_CFA_undefined (for the return address: the root) */
	RULE_BAD,      /* in a register, by an expression, CFA + off as a value */
};

enum cfa_expr { CFA_NO_EXPR = 0, CFA_PLT, CFA_OTHER_EXPR };

struct cfi_state {
	uint64_t cfa_reg;
	int64_t cfa_off;
	uint8_t cfa_expr; /* enum cfa_expr */
	uint8_t rbp, ra, rsp;
	int64_t rbp_off, ra_off;
};

struct cfi_cie {
	size_t off; /* in the section */
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	uint8_t fde_enc; /* pointer encoding of the FDEs' addresses */
	bool has_z, signal;
	bool usable; /* FDE addresses can be read */
	const uint8_t *insns, *insns_end;
	struct cfi_state init; /* after the initial instructions */
	bool bad_insn;	       /* the initial instructions hold one this reader does not know */
};

/* One range an FDE gave, before the table is built. */
struct cfi_range {
	uint64_t start, end;
	uint32_t seq; /* order of appearance: the first FDE wins an overlap */
	int32_t cfa_off, rbp_off;
	uint8_t kind, prio; /* prio 0: .eh_frame, 1: .debug_frame */
};

struct cfi_ctx {
	const char *name, *section;
	const uint8_t *base;
	size_t len;
	uint64_t addr; /* where the section is loaded */
	bool debug;    /* .debug_frame: other CIE ids, absolute CIE pointers */
	bool go;       /* COLLECTOR_CFI_GO */
	struct errbuf *err;
	struct cfi_range *ranges;
	size_t n_ranges, cap_ranges;
	struct collector_cfi_stats *stats;
	struct cfi_cie cie; /* the last CIE read: FDEs mostly share one */
	bool have_cie;
};

/* A reader over [p, end); fails on reading past end. */
struct cur {
	const uint8_t *p, *end;
};

static pthread_once_t cfi_once = PTHREAD_ONCE_INIT;
static bool cfi_elf_ok;

static void cfi_init(void)
{
	cfi_elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

static int truncated(const struct cfi_ctx *x, const uint8_t *at, const char *what)
{
	return errbuf__set(x->err, -EBADMSG, "%s: %s at offset 0x%zx: %s", x->name, x->section,
			   (size_t)(at - x->base), what);
}

static bool rd_bytes(struct cur *c, void *v, size_t n)
{
	if ((size_t)(c->end - c->p) < n)
		return false;
	memcpy(v, c->p, n);
	c->p += n;
	return true;
}

static bool rd_u8(struct cur *c, uint8_t *v)
{
	return rd_bytes(c, v, 1);
}

/* Little-endian: x86-64 only. */
static bool rd_uint(struct cur *c, size_t n, uint64_t *v)
{
	uint8_t b[8];
	uint64_t x = 0;

	if (!rd_bytes(c, b, n))
		return false;
	while (n--)
		x = x << 8 | b[n];
	*v = x;
	return true;
}

static bool rd_uleb(struct cur *c, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (!rd_u8(c, &b))
			return false;
		if (shift < 64)
			x |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (shift > 70)
			return false; /* longer than any 64-bit value needs */
	} while (b & 0x80);
	*v = x;
	return true;
}

static bool rd_sleb(struct cur *c, int64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (!rd_u8(c, &b))
			return false;
		if (shift < 64)
			x |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (shift > 70)
			return false;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		x |= ~(uint64_t)0 << shift;
	*v = (int64_t)x;
	return true;
}

/* Reads a pointer of encoding enc. Only the format is followed when
 * apply is false (a length, or a pointer whose value does not matter);
 * returns 0, -1 on truncation, -2 for a format this reader can't size. */
static int rd_pointer(const struct cfi_ctx *x, struct cur *c, uint8_t enc, bool apply,
		      uint64_t *ret)
{
	uint64_t field = x->addr + (uint64_t)(c->p - x->base), v = 0;
	int64_t s;
	bool ok;

	switch (enc & PE_FORMAT) {
	case PE_ABSPTR:
	case PE_UDATA8:
		ok = rd_uint(c, 8, &v);
		break;
	case PE_ULEB:
		ok = rd_uleb(c, &v);
		break;
	case PE_UDATA2:
		ok = rd_uint(c, 2, &v);
		break;
	case PE_UDATA4:
		ok = rd_uint(c, 4, &v);
		break;
	case PE_SLEB:
		ok = rd_sleb(c, &s);
		v = (uint64_t)s;
		break;
	case PE_SDATA2:
		ok = rd_uint(c, 2, &v);
		v = (uint64_t)(int64_t)(int16_t)v;
		break;
	case PE_SDATA4:
		ok = rd_uint(c, 4, &v);
		v = (uint64_t)(int64_t)(int32_t)v;
		break;
	case PE_SDATA8:
		ok = rd_uint(c, 8, &v);
		break;
	default:
		return -2;
	}
	if (!ok)
		return -1;
	if (apply && (enc & PE_APP) == PE_PCREL)
		v += field;
	*ret = v;
	return 0;
}

/* Whether FDE addresses of this encoding can be computed from the section
 * alone: absolute or pc-relative, not through memory (indirect). */
static bool followable(uint8_t enc)
{
	return !(enc & PE_INDIRECT) && ((enc & PE_APP) == 0 || (enc & PE_APP) == PE_PCREL);
}

/* Reads the header of the entry at off: its length and where it ends, and
 * its CIE id / CIE pointer (and where that field sits). */
static int rd_entry(const struct cfi_ctx *x, size_t off, size_t *ret_end, uint64_t *ret_id,
		    size_t *ret_id_off, size_t *ret_id_size, const uint8_t **ret_body)
{
	struct cur c = {x->base + off, x->base + x->len};
	uint64_t len, id;
	size_t id_size = 4;

	if (!rd_uint(&c, 4, &len))
		return truncated(x, c.p, "truncated entry length");
	if (len == 0xffffffff) {
		if (!rd_uint(&c, 8, &len))
			return truncated(x, c.p, "truncated 64-bit entry length");
		id_size = 8;
	}
	if (len == 0) {
		*ret_end = (size_t)(c.p - x->base);
		*ret_body = NULL;
		return 0;
	}
	if (len > (uint64_t)(c.end - c.p))
		return truncated(x, x->base + off, "entry length past the section's end");
	if (len < id_size)
		return truncated(x, x->base + off, "entry too short for its CIE id");
	*ret_end = (size_t)(c.p - x->base) + (size_t)len;
	*ret_id_off = (size_t)(c.p - x->base);
	(void)rd_uint(&c, id_size, &id);
	*ret_id = id;
	*ret_id_size = id_size;
	*ret_body = c.p;
	return 0;
}

static bool is_cie_id(const struct cfi_ctx *x, uint64_t id, size_t id_size)
{
	if (!x->debug)
		return id == 0;
	return id_size == 8 ? id == UINT64_MAX : id == 0xffffffff;
}

/* The DW_OP sequence GCC and binutils emit for .plt entries: CFA = rsp + 8,
 * plus 8 once the entry's push has run (the push ends at byte 11 of a
 * 16-byte entry): breg7 8; breg16 0; lit15; and; lit11; ge; lit3; shl; plus */
static const uint8_t plt_expr[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a,
				   0x3b, 0x2a, 0x33, 0x24, 0x22};

static int push_range(struct cfi_ctx *x, uint64_t start, uint64_t end, uint8_t kind,
		      int32_t cfa_off, int32_t rbp_off, unsigned reason)
{
	struct cfi_range *r;

	if (start >= end)
		return 0;
	if (x->n_ranges == x->cap_ranges) {
		size_t cap = x->cap_ranges ? x->cap_ranges * 2 : 1024;

		if (x->n_ranges >= COLLECTOR_CFI_MAX_ROWS)
			return errbuf__set(x->err, -E2BIG, "%s: more than %u unwind ranges",
					   x->name, COLLECTOR_CFI_MAX_ROWS);
		if (cap > COLLECTOR_CFI_MAX_ROWS)
			cap = COLLECTOR_CFI_MAX_ROWS;
		r = realloc(x->ranges, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		x->ranges = r;
		x->cap_ranges = cap;
	}
	r = &x->ranges[x->n_ranges];
	r->start = start;
	r->end = end;
	r->seq = (uint32_t)x->n_ranges;
	r->kind = kind;
	r->cfa_off = cfa_off;
	r->rbp_off = rbp_off;
	r->prio = x->debug;
	x->n_ranges++;
	x->stats->ranges++;
	if (kind == COLLECTOR_CFI_NONE)
		x->stats->none[reason]++;
	return 0;
}

/* The row of a state, or NONE and why. */
static uint8_t classify(const struct cfi_cie *cie, const struct cfi_state *s, bool bad_insn,
			int32_t *ret_cfa, int32_t *ret_rbp, unsigned *ret_reason)
{
	*ret_cfa = 0;
	*ret_rbp = 0;
	if (bad_insn) {
		*ret_reason = COLLECTOR_CFI_BAD_INSTRUCTION;
		return COLLECTOR_CFI_NONE;
	}
	if (s->ra == RULE_UNDEF) {
		*ret_cfa = s->cfa_expr == CFA_NO_EXPR && s->cfa_off == (int32_t)s->cfa_off
				   ? (int32_t)s->cfa_off
				   : 0;
		return COLLECTOR_CFI_STOP;
	}
	if (s->cfa_expr == CFA_OTHER_EXPR) {
		*ret_reason = COLLECTOR_CFI_CFA_EXPRESSION;
		return COLLECTOR_CFI_NONE;
	}
	if (s->cfa_expr == CFA_NO_EXPR && s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP) {
		*ret_reason = COLLECTOR_CFI_CFA_REGISTER;
		return COLLECTOR_CFI_NONE;
	}
	if (cie->ra_reg != REG_RA || s->ra != RULE_OFFSET || s->ra_off != -8) {
		*ret_reason = cie->ra_reg != REG_RA ? COLLECTOR_CFI_BAD_CIE : COLLECTOR_CFI_RA_RULE;
		return COLLECTOR_CFI_NONE;
	}
	if (s->rsp != RULE_SAME) {
		*ret_reason = COLLECTOR_CFI_RSP_RULE;
		return COLLECTOR_CFI_NONE;
	}
	if (s->rbp == RULE_BAD) {
		*ret_reason = COLLECTOR_CFI_RBP_RULE;
		return COLLECTOR_CFI_NONE;
	}
	if ((s->cfa_expr == CFA_NO_EXPR && s->cfa_off != (int32_t)s->cfa_off) ||
	    (s->rbp == RULE_OFFSET && (s->rbp_off != (int32_t)s->rbp_off || s->rbp_off == 0))) {
		*ret_reason = COLLECTOR_CFI_OFFSET_RANGE;
		return COLLECTOR_CFI_NONE;
	}
	*ret_rbp = s->rbp == RULE_OFFSET ? (int32_t)s->rbp_off : 0;
	if (s->cfa_expr == CFA_PLT) {
		*ret_cfa = 8;
		return COLLECTOR_CFI_PLT;
	}
	*ret_cfa = (int32_t)s->cfa_off;
	return s->cfa_reg == REG_RSP ? COLLECTOR_CFI_RSP : COLLECTOR_CFI_RBP;
}

/* a * b, or INT64_MIN (which no 32-bit offset matches: NONE) when it
 * overflows: a factored offset comes from the file. */
static int64_t scale(int64_t a, int64_t b)
{
	int64_t v;

	return __builtin_mul_overflow(a, b, &v) ? INT64_MIN : v;
}

/* The same for an unsigned factored offset (negated for
 * DW_CFA_GNU_negative_offset_extended). */
static int64_t scale_u(uint64_t u, int64_t b, bool negate)
{
	if (u > INT64_MAX)
		return INT64_MIN;
	return scale(negate ? -(int64_t)u : (int64_t)u, b);
}

/* Sets the rule of a register the BPF side follows; others are ignored. */
static void set_rule(struct cfi_state *s, uint64_t reg, uint8_t rule, int64_t off)
{
	switch (reg) {
	case REG_RBP:
		s->rbp = rule == RULE_UNDEF ? RULE_SAME : rule;
		s->rbp_off = off;
		break;
	case REG_RA:
		s->ra = rule == RULE_SAME ? RULE_BAD : rule;
		s->ra_off = off;
		break;
	case REG_RSP:
		/* rsp is the CFA by definition: saying so is harmless */
		s->rsp = rule == RULE_UNDEF ? RULE_SAME : rule;
		break;
	default:
		break;
	}
}

static void restore_rule(struct cfi_state *s, const struct cfi_state *init, uint64_t reg)
{
	switch (reg) {
	case REG_RBP:
		s->rbp = init->rbp;
		s->rbp_off = init->rbp_off;
		break;
	case REG_RA:
		s->ra = init->ra;
		s->ra_off = init->ra_off;
		break;
	case REG_RSP:
		s->rsp = init->rsp;
		break;
	default:
		break;
	}
}

/* Emits the range [*loc, to) with the current state and moves *loc. */
static int emit(struct cfi_ctx *x, const struct cfi_cie *cie, const struct cfi_state *s,
		bool bad_insn, uint64_t *loc, uint64_t to)
{
	int32_t cfa, rbp;
	unsigned reason = 0;
	uint8_t kind;
	int r;

	if (to <= *loc)
		return 0;
	kind = cie->signal ? COLLECTOR_CFI_SIGNAL : classify(cie, s, bad_insn, &cfa, &rbp, &reason);
	if (kind == COLLECTOR_CFI_SIGNAL || kind == COLLECTOR_CFI_NONE)
		cfa = rbp = 0;
	r = push_range(x, *loc, to, kind, cfa, rbp, reason);
	*loc = to;
	return r;
}

/* Runs the CFA instructions [p, end) from state *s. For an FDE (fde_end
 * non-zero) it emits a range at every advance, from *loc up to fde_end;
 * for a CIE's initial instructions it only computes the state. An
 * instruction this reader does not know sets *bad_insn and stops the
 * program there (its length is unknown). */
static int run(struct cfi_ctx *x, const struct cfi_cie *cie, const uint8_t *p, const uint8_t *end,
	       struct cfi_state *s, uint64_t *loc, uint64_t fde_end, bool *bad_insn)
{
	struct cfi_state stack[COLLECTOR_CFI_MAX_DEPTH];
	struct cur c = {p, end};
	size_t depth = 0, n = 0;
	bool is_fde = fde_end != 0;
	int r;

	while (c.p < c.end) {
		const uint8_t *at = c.p;
		uint64_t reg = 0, u = 0, delta = 0;
		int64_t sv = 0;
		uint8_t op = 0;
		bool ok = true, advance = false;

		if (++n > COLLECTOR_CFI_MAX_INSNS)
			return errbuf__set(x->err, -EBADMSG,
					   "%s: %s at offset 0x%zx: more than %u instructions",
					   x->name, x->section, (size_t)(at - x->base),
					   COLLECTOR_CFI_MAX_INSNS);
		(void)rd_u8(&c, &op);
		switch (op >> 6) {
		case 1: /* DW_CFA_advance_loc */
			delta = op & 0x3f;
			advance = true;
			break;
		case 2: /* DW_CFA_offset */
			ok = rd_uleb(&c, &u);
			set_rule(s, op & 0x3f, RULE_OFFSET, scale_u(u, cie->data_align, false));
			break;
		case 3: /* DW_CFA_restore */
			restore_rule(s, &cie->init, op & 0x3f);
			break;
		default:
			switch (op) {
			case 0x00: /* DW_CFA_nop */
				break;
			case 0x01: /* DW_CFA_set_loc */
				r = rd_pointer(x, &c, cie->fde_enc, true, &u);
				ok = r == 0;
				if (r == -2) {
					*bad_insn = true;
					return 0;
				}
				if (ok && is_fde) {
					if (u < *loc)
						return errbuf__set(x->err, -EBADMSG,
								   "%s: %s at offset 0x%zx: "
								   "DW_CFA_set_loc backwards",
								   x->name, x->section,
								   (size_t)(at - x->base));
					delta = u - *loc;
					advance = true;
				}
				break;
			case 0x02: /* DW_CFA_advance_loc1 */
				ok = rd_uint(&c, 1, &delta);
				advance = true;
				break;
			case 0x03: /* DW_CFA_advance_loc2 */
				ok = rd_uint(&c, 2, &delta);
				advance = true;
				break;
			case 0x04: /* DW_CFA_advance_loc4 */
				ok = rd_uint(&c, 4, &delta);
				advance = true;
				break;
			case 0x1d: /* DW_CFA_MIPS_advance_loc8 */
				ok = rd_uint(&c, 8, &delta);
				advance = true;
				break;
			case 0x05: /* DW_CFA_offset_extended */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u);
				set_rule(s, reg, RULE_OFFSET, scale_u(u, cie->data_align, false));
				break;
			case 0x11: /* DW_CFA_offset_extended_sf */
				ok = rd_uleb(&c, &reg) && rd_sleb(&c, &sv);
				set_rule(s, reg, RULE_OFFSET, scale(sv, cie->data_align));
				break;
			case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u);
				set_rule(s, reg, RULE_OFFSET, scale_u(u, cie->data_align, true));
				break;
			case 0x06: /* DW_CFA_restore_extended */
				ok = rd_uleb(&c, &reg);
				restore_rule(s, &cie->init, reg);
				break;
			case 0x07: /* DW_CFA_undefined */
				ok = rd_uleb(&c, &reg);
				set_rule(s, reg, RULE_UNDEF, 0);
				break;
			case 0x08: /* DW_CFA_same_value */
				ok = rd_uleb(&c, &reg);
				set_rule(s, reg, RULE_SAME, 0);
				break;
			case 0x09: /* DW_CFA_register */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u);
				set_rule(s, reg, RULE_BAD, 0);
				break;
			case 0x14: /* DW_CFA_val_offset */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u);
				set_rule(s, reg, RULE_BAD, 0);
				break;
			case 0x15: /* DW_CFA_val_offset_sf */
				ok = rd_uleb(&c, &reg) && rd_sleb(&c, &sv);
				set_rule(s, reg, RULE_BAD, 0);
				break;
			case 0x0a: /* DW_CFA_remember_state */
				if (depth == COLLECTOR_CFI_MAX_DEPTH)
					return errbuf__set(x->err, -EBADMSG,
							   "%s: %s at offset 0x%zx: "
							   "DW_CFA_remember_state deeper than %u",
							   x->name, x->section,
							   (size_t)(at - x->base),
							   COLLECTOR_CFI_MAX_DEPTH);
				stack[depth++] = *s;
				break;
			case 0x0b: /* DW_CFA_restore_state */
				if (depth == 0)
					return errbuf__set(
						x->err, -EBADMSG,
						"%s: %s at offset 0x%zx: "
						"DW_CFA_restore_state without a remembered "
						"state",
						x->name, x->section, (size_t)(at - x->base));
				*s = stack[--depth];
				break;
			case 0x0c: /* DW_CFA_def_cfa */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u);
				s->cfa_reg = reg;
				s->cfa_off = u > INT64_MAX ? INT64_MIN : (int64_t)u;
				s->cfa_expr = CFA_NO_EXPR;
				break;
			case 0x12: /* DW_CFA_def_cfa_sf */
				ok = rd_uleb(&c, &reg) && rd_sleb(&c, &sv);
				s->cfa_reg = reg;
				s->cfa_off = scale(sv, cie->data_align);
				s->cfa_expr = CFA_NO_EXPR;
				break;
			case 0x0d: /* DW_CFA_def_cfa_register */
				ok = rd_uleb(&c, &reg);
				s->cfa_reg = reg;
				s->cfa_expr = CFA_NO_EXPR;
				break;
			case 0x0e: /* DW_CFA_def_cfa_offset */
				ok = rd_uleb(&c, &u);
				s->cfa_off = u > INT64_MAX ? INT64_MIN : (int64_t)u;
				break;
			case 0x13: /* DW_CFA_def_cfa_offset_sf */
				ok = rd_sleb(&c, &sv);
				s->cfa_off = scale(sv, cie->data_align);
				break;
			case 0x0f: /* DW_CFA_def_cfa_expression */
				ok = rd_uleb(&c, &u) && u <= (uint64_t)(c.end - c.p);
				if (ok) {
					s->cfa_expr =
						u == sizeof(plt_expr) && !memcmp(c.p, plt_expr,
										 sizeof(plt_expr))
							? CFA_PLT
							: CFA_OTHER_EXPR;
					c.p += u;
				}
				break;
			case 0x10: /* DW_CFA_expression */
			case 0x16: /* DW_CFA_val_expression */
				ok = rd_uleb(&c, &reg) && rd_uleb(&c, &u) &&
				     u <= (uint64_t)(c.end - c.p);
				if (ok) {
					set_rule(s, reg, RULE_BAD, 0);
					c.p += u;
				}
				break;
			case 0x2e: /* DW_CFA_GNU_args_size: only matters to exceptions */
				ok = rd_uleb(&c, &u);
				break;
			default:
				*bad_insn = true;
				if (is_fde)
					return emit(x, cie, s, true, loc, fde_end);
				return 0;
			}
		}
		if (!ok)
			return truncated(x, at, "truncated CFA instruction");
		if (advance && is_fde) {
			uint64_t to;

			/* set_loc gives the distance in bytes, the others in units */
			if (op != 0x01 && cie->code_align > 1)
				delta = delta > UINT64_MAX / cie->code_align
						? UINT64_MAX
						: delta * cie->code_align;
			to = delta > fde_end - *loc ? fde_end : *loc + delta;
			r = emit(x, cie, s, *bad_insn, loc, to);
			if (r < 0)
				return r;
			if (*loc >= fde_end)
				return 0; /* the rest applies past the function */
		}
	}
	if (is_fde)
		return emit(x, cie, s, *bad_insn, loc, fde_end);
	return 0;
}

/* Reads the CIE at off into x->cie (unless it is there already). */
static int read_cie(struct cfi_ctx *x, size_t off)
{
	struct cfi_cie *cie = &x->cie;
	const uint8_t *body;
	size_t end, id_off, id_size;
	uint64_t id, u;
	uint8_t version, b;
	char aug[CFI_MAX_AUG];
	size_t n_aug = 0;
	struct cur c;
	uint64_t loc = 0;
	int r;

	if (x->have_cie && cie->off == off)
		return 0;
	x->have_cie = false;
	r = rd_entry(x, off, &end, &id, &id_off, &id_size, &body);
	if (r < 0)
		return r;
	if (!body || !is_cie_id(x, id, id_size))
		return truncated(x, x->base + off, "an FDE's CIE pointer names no CIE");
	memset(cie, 0, sizeof(*cie));
	cie->off = off;
	cie->usable = true;
	c.p = body;
	c.end = x->base + end;
	if (!rd_u8(&c, &version))
		return truncated(x, c.p, "truncated CIE");
	if (version != 1 && version != 3 && version != 4)
		return truncated(x, c.p - 1, "CIE version not 1, 3 or 4");
	for (;;) {
		if (!rd_u8(&c, &b))
			return truncated(x, c.p, "CIE augmentation string not terminated");
		if (!b)
			break;
		if (n_aug == sizeof(aug) - 1)
			return truncated(x, c.p, "CIE augmentation string too long");
		aug[n_aug++] = (char)b;
	}
	aug[n_aug] = '\0';
	if (version == 4) {
		uint8_t addr_size, seg_size;

		if (!rd_u8(&c, &addr_size) || !rd_u8(&c, &seg_size))
			return truncated(x, c.p, "truncated CIE");
		if (addr_size != 8 || seg_size != 0)
			return truncated(x, c.p - 2,
					 "CIE address size not 8 or a segment selector");
	}
	if (!rd_uleb(&c, &cie->code_align) || !rd_sleb(&c, &cie->data_align))
		return truncated(x, c.p, "truncated CIE");
	if (version == 1) {
		if (!rd_u8(&c, &b))
			return truncated(x, c.p, "truncated CIE");
		cie->ra_reg = b;
	} else if (!rd_uleb(&c, &cie->ra_reg)) {
		return truncated(x, c.p, "truncated CIE");
	}
	/* GCC, clang and binutils say 1 and -8 on x86-64; Go's linker says -4
	 * (its offsets are then twice as many factors): the instructions scale
	 * by whatever the CIE says. Zero makes every advance or offset zero. */
	if (cie->code_align == 0 || cie->data_align == 0)
		cie->usable = false;
	cie->fde_enc = PE_ABSPTR;
	if (aug[0] == 'z') {
		uint64_t aug_len;
		const uint8_t *aug_end;

		cie->has_z = true;
		if (!rd_uleb(&c, &aug_len) || aug_len > (uint64_t)(c.end - c.p))
			return truncated(x, c.p, "CIE augmentation data past the entry's end");
		aug_end = c.p + aug_len;
		for (size_t i = 1; i < n_aug; i++) {
			struct cur a = {c.p, aug_end};
			uint8_t enc;

			if (aug[i] == 'S') {
				cie->signal = true;
				continue;
			}
			if (aug[i] != 'R' && aug[i] != 'P' && aug[i] != 'L')
				break; /* unknown: the length skips what is left */
			if (!rd_u8(&a, &enc))
				return truncated(x, a.p, "truncated CIE augmentation data");
			if (aug[i] == 'R')
				cie->fde_enc = enc;
			if (aug[i] == 'P') {
				/* the personality routine's address: only its size matters */
				r = rd_pointer(x, &a, enc, false, &u);
				if (r == -1)
					return truncated(x, a.p, "truncated personality pointer");
				if (r == -2)
					break;
			}
			c.p = a.p;
		}
		c.p = aug_end;
	} else if (n_aug) {
		/* no length to skip an augmentation this reader does not know by */
		cie->usable = false;
	}
	if (cie->fde_enc != PE_OMIT && !followable(cie->fde_enc))
		cie->usable = false;
	cie->insns = c.p;
	cie->insns_end = c.end;
	/* the initial state: nothing known until the instructions say it */
	cie->init.cfa_reg = UINT64_MAX;
	r = run(x, cie, cie->insns, cie->insns_end, &cie->init, &loc, 0, &cie->bad_insn);
	if (r < 0)
		return r;
	x->have_cie = true;
	return 0;
}

/* Reads the FDE whose body (after the CIE pointer) is [p, end) and emits
 * its ranges. */
/* A Go function's ranges, x->ranges[first ..): when its CFA ever goes past
 * rsp+8 it sets up a frame, and with it a frame pointer, which the unwinder
 * follows without a rule (COLLECTOR_CFI_GO). Only in the prologue, before
 * rbp is pushed and set, does that lose the caller of a sample's leaf. */
static void go_frame(struct cfi_ctx *x, size_t first)
{
	bool framed = false;

	for (size_t i = first; i < x->n_ranges && !framed; i++)
		framed = x->ranges[i].kind == COLLECTOR_CFI_RBP ||
			 (x->ranges[i].kind == COLLECTOR_CFI_RSP && x->ranges[i].cfa_off > 8);
	for (size_t i = first; framed && i < x->n_ranges; i++) {
		struct cfi_range *r = &x->ranges[i];

		if (r->kind != COLLECTOR_CFI_RSP && r->kind != COLLECTOR_CFI_RBP)
			continue;
		r->kind = COLLECTOR_CFI_NONE;
		r->cfa_off = r->rbp_off = 0;
		x->stats->none[COLLECTOR_CFI_GO_FRAME]++;
	}
}

static int read_fde(struct cfi_ctx *x, const uint8_t *p, const uint8_t *end)
{
	const struct cfi_cie *cie = &x->cie;
	struct cfi_state s = cie->init;
	struct cur c = {p, end};
	uint64_t start, range, aug_len, loc;
	uint8_t enc = cie->fde_enc == PE_OMIT ? PE_ABSPTR : cie->fde_enc;
	bool bad_insn = cie->bad_insn;
	size_t first;
	int r;

	if (!cie->usable) {
		x->stats->fdes_skipped++;
		return 0;
	}
	r = rd_pointer(x, &c, enc, true, &start);
	if (r == 0)
		r = rd_pointer(x, &c, enc & PE_FORMAT, false, &range);
	if (r == -1)
		return truncated(x, c.p, "truncated FDE address range");
	if (r == -2)
		return truncated(x, p, "FDE address in an unknown pointer format");
	if (cie->has_z) {
		if (!rd_uleb(&c, &aug_len) || aug_len > (uint64_t)(c.end - c.p))
			return truncated(x, c.p, "FDE augmentation data past the entry's end");
		c.p += aug_len;
	}
	/* a linker leaves discarded functions' FDEs at address 0 (or -1); an
	 * empty or wrapping range covers nothing */
	if (start == 0 || range == 0 || start + range < start) {
		x->stats->fdes_skipped++;
		return 0;
	}
	loc = start;
	first = x->n_ranges;
	r = run(x, cie, c.p, c.end, &s, &loc, start + range, &bad_insn);
	if (r == 0 && x->go && x->debug)
		go_frame(x, first);
	return r;
}

/* Walks one section's entries. */
static int read_section(struct cfi_ctx *x)
{
	size_t off = 0;
	int r;

	while (off < x->len) {
		const uint8_t *body;
		size_t end, id_off, id_size, cie_off;
		uint64_t id;

		r = rd_entry(x, off, &end, &id, &id_off, &id_size, &body);
		if (r < 0)
			return r;
		if (!body) {
			/* a zero length ends .eh_frame (crtend's terminator) */
			if (!x->debug)
				return 0;
			off = end;
			continue;
		}
		if (is_cie_id(x, id, id_size)) {
			/* read now, so that a malformed CIE is found even if no
			 * FDE uses it, and cached for the FDEs that follow */
			r = read_cie(x, off);
			if (r < 0)
				return r;
			x->stats->cies++;
			off = end;
			continue;
		}
		if (x->stats->fdes >= COLLECTOR_CFI_MAX_FDES)
			return errbuf__set(x->err, -E2BIG, "%s: more than %u FDEs", x->name,
					   COLLECTOR_CFI_MAX_FDES);
		x->stats->fdes++;
		/* .eh_frame: back from the pointer's own place; .debug_frame:
		 * from the section's start */
		if (x->debug) {
			cie_off = (size_t)id;
			if (id >= x->len)
				return truncated(x, x->base + id_off,
						 "an FDE's CIE pointer is past "
						 "the section's end");
		} else {
			if (id > id_off)
				return truncated(x, x->base + id_off,
						 "an FDE's CIE pointer is before "
						 "the section's start");
			cie_off = id_off - (size_t)id;
		}
		r = read_cie(x, cie_off);
		if (r < 0)
			return r;
		r = read_fde(x, body, x->base + end);
		if (r < 0)
			return r;
		off = end;
	}
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct cfi_range *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Drops the overlapping parts of sorted ranges: the earlier range keeps
 * an address. Returns the new count. */
static size_t clip(struct cfi_range *r, size_t n)
{
	size_t i, k = 0;
	uint64_t hw = 0;

	for (i = 0; i < n; i++) {
		if (k && r[i].start < hw)
			r[i].start = hw;
		if (r[i].start >= r[i].end)
			continue;
		hw = r[i].end;
		r[k++] = r[i];
	}
	return k;
}

/* Appends row (kind, cfa, rbp) at vaddr unless it repeats the last one
 * (vaddrs only grow: the ranges are disjoint and not empty). */
static int add_row(struct collector_cfi *t, size_t cap, uint64_t vaddr, uint8_t kind, int32_t cfa,
		   int32_t rbp, const char *name, struct errbuf *err)
{
	const struct collector_cfi_row *last = t->n_rows ? &t->rows[t->n_rows - 1] : NULL;

	if (last && last->kind == kind && last->cfa_offset == cfa && last->rbp_offset == rbp)
		return 0;
	if (t->n_rows == cap)
		return errbuf__set(err, -E2BIG, "%s: more than %u unwind rows", name,
				   COLLECTOR_CFI_MAX_ROWS);
	t->rows[t->n_rows].vaddr = vaddr;
	t->rows[t->n_rows].kind = kind;
	t->rows[t->n_rows].cfa_offset = cfa;
	t->rows[t->n_rows].rbp_offset = rbp;
	t->n_rows++;
	return 0;
}

/* Builds t's rows from the ranges: .eh_frame's first, then .debug_frame's
 * where .eh_frame says nothing, and NONE between them and after them. */
static int build(struct collector_cfi *t, struct cfi_range *r, size_t n, const char *name,
		 struct errbuf *err)
{
	struct cfi_range *pieces = NULL, *eh = r, *db;
	size_t n_eh0 = 0, n_eh, n_db, n_pieces = 0, i, j = 0, k, cap;
	uint64_t prev_end = 0;
	int ret = 0;

	if (n)
		qsort(r, n, sizeof(*r), range_cmp);
	while (n_eh0 < n && r[n_eh0].prio == 0)
		n_eh0++;
	db = r ? r + n_eh0 : NULL; /* no ranges: r is NULL, and NULL + 0 is undefined */
	n_eh = clip(eh, n_eh0);
	n_db = clip(db, n - n_eh0);
	/* .debug_frame's ranges minus .eh_frame's: a piece ends at its range's
	 * end or at an eh range's start, so there are at most n_db + n_eh */
	pieces = malloc((n_db + n_eh + 1) * sizeof(*pieces));
	if (!pieces) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < n_db; i++) {
		uint64_t a = db[i].start, b = db[i].end;

		while (j < n_eh && eh[j].end <= a)
			j++;
		for (k = j; a < b;) {
			uint64_t lim;

			if (k < n_eh && eh[k].start <= a) {
				if (eh[k].end > a)
					a = eh[k].end;
				k++;
				continue;
			}
			lim = k < n_eh && eh[k].start < b ? eh[k].start : b;
			pieces[n_pieces] = db[i];
			pieces[n_pieces].start = a;
			pieces[n_pieces].end = lim;
			n_pieces++;
			a = lim;
		}
	}
	/* each range, and a NONE row before each gap and after the last */
	cap = 2 * (n_eh + n_pieces) + 1;
	if (cap > COLLECTOR_CFI_MAX_ROWS)
		cap = COLLECTOR_CFI_MAX_ROWS;
	t->rows = malloc(cap * sizeof(*t->rows));
	if (!t->rows) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (i = 0, j = 0; i < n_eh || j < n_pieces;) {
		const struct cfi_range *x;
		size_t before = t->n_rows;

		if (j == n_pieces || (i < n_eh && eh[i].start < pieces[j].start))
			x = &eh[i++];
		else
			x = &pieces[j++];
		if (t->n_rows && x->start > prev_end) {
			ret = add_row(t, cap, prev_end, COLLECTOR_CFI_NONE, 0, 0, name, err);
			if (ret < 0)
				goto cleanup;
			t->stats.none[COLLECTOR_CFI_NO_FDE] += t->n_rows - before;
		}
		ret = add_row(t, cap, x->start, x->kind, x->cfa_off, x->rbp_off, name, err);
		if (ret < 0)
			goto cleanup;
		prev_end = x->end;
	}
	if (t->n_rows) {
		size_t before = t->n_rows;

		ret = add_row(t, cap, prev_end, COLLECTOR_CFI_NONE, 0, 0, name, err);
		if (ret < 0)
			goto cleanup;
		t->stats.none[COLLECTOR_CFI_NO_FDE] += t->n_rows - before;
	}
	t->stats.rows = t->n_rows;
	if (t->n_rows < cap) {
		struct collector_cfi_row *rows =
			realloc(t->rows, (t->n_rows ? t->n_rows : 1) * sizeof(*rows));

		if (rows)
			t->rows = rows;
	}
cleanup:
	free(pieces);
	return ret;
}

int collector_cfi__parse(const void *eh_frame, size_t eh_len, uint64_t eh_addr,
			 const void *debug_frame, size_t debug_len, unsigned flags,
			 const char *name, struct errbuf *err, struct collector_cfi **ret)
{
	struct collector_cfi *t = NULL;
	struct cfi_ctx x = {0};
	int r;

	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto cleanup;
	}
	x.name = name;
	x.err = err;
	x.stats = &t->stats;
	x.go = flags & COLLECTOR_CFI_GO;
	if (eh_len > COLLECTOR_CFI_MAX_SECTION || debug_len > COLLECTOR_CFI_MAX_SECTION) {
		r = errbuf__set(err, -EFBIG, "%s: %s larger than %u bytes", name,
				eh_len > COLLECTOR_CFI_MAX_SECTION ? ".eh_frame" : ".debug_frame",
				COLLECTOR_CFI_MAX_SECTION);
		goto cleanup;
	}
	if (eh_frame && eh_len) {
		x.section = ".eh_frame";
		x.base = eh_frame;
		x.len = eh_len;
		x.addr = eh_addr;
		x.debug = false;
		x.have_cie = false;
		r = read_section(&x);
		if (r < 0)
			goto cleanup;
	}
	if (debug_frame && debug_len) {
		x.section = ".debug_frame";
		x.base = debug_frame;
		x.len = debug_len;
		x.addr = 0;
		x.debug = true;
		x.have_cie = false;
		r = read_section(&x);
		if (r < 0)
			goto cleanup;
	}
	r = build(t, x.ranges, x.n_ranges, name, err);
	if (r < 0)
		goto cleanup;
	*ret = t;
	t = NULL;
cleanup:
	free(x.ranges);
	collector_cfi__free(t);
	return r;
}

/* The bytes of section scn, decompressed if need be, checked against the
 * cap. NULL data (and 0) for a section without bytes in the file. */
static int section_bytes(Elf_Scn *scn, const GElf_Shdr *sh, const char *name, const char *sec,
			 struct errbuf *err, Elf_Data **ret)
{
	Elf_Data *d;

	*ret = NULL;
	if (sh->sh_type == SHT_NOBITS || sh->sh_size == 0)
		return 0; /* a separate debug file keeps .eh_frame's header only */
	if (sh->sh_flags & SHF_COMPRESSED) {
		GElf_Chdr ch;

		if (!gelf_getchdr(scn, &ch))
			return errbuf__set(err, -EBADMSG, "%s: %s: bad compression header: %s",
					   name, sec, elf_errmsg(-1));
		if (ch.ch_size > COLLECTOR_CFI_MAX_SECTION)
			return errbuf__set(err, -EFBIG, "%s: %s larger than %u bytes", name, sec,
					   COLLECTOR_CFI_MAX_SECTION);
		if (elf_compress(scn, 0, 0) < 0)
			return errbuf__set(err, -EBADMSG, "%s: %s: can't decompress: %s", name, sec,
					   elf_errmsg(-1));
		d = elf_getdata(scn, NULL);
	} else {
		if (sh->sh_size > COLLECTOR_CFI_MAX_SECTION)
			return errbuf__set(err, -EFBIG, "%s: %s larger than %u bytes", name, sec,
					   COLLECTOR_CFI_MAX_SECTION);
		d = elf_rawdata(scn, NULL);
	}
	if (!d || (!d->d_buf && d->d_size))
		return errbuf__set(err, -EBADMSG, "%s: %s: unreadable: %s", name, sec,
				   elf_errmsg(-1));
	*ret = d;
	return 0;
}

static int read_elf(Elf *elf, const char *name, struct errbuf *err, struct collector_cfi **ret)
{
	Elf_Scn *scn = NULL, *eh = NULL, *dbg = NULL;
	GElf_Shdr eh_sh = {0}, dbg_sh = {0};
	Elf_Data *eh_data = NULL, *dbg_data = NULL;
	size_t shstrndx, n_sections = 0, i = 0;
	unsigned flags = 0;
	GElf_Ehdr ehdr;
	int r;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr))
		return errbuf__set(err, -ENOEXEC, "%s: not an ELF file", name);
	if (ehdr.e_machine != EM_X86_64 || gelf_getclass(elf) != ELFCLASS64 ||
	    ehdr.e_ident[EI_DATA] != ELFDATA2LSB)
		return errbuf__set(err, -ENOTSUP, "%s: not an x86-64 file (machine %u)", name,
				   (unsigned)ehdr.e_machine);
	if (elf_getshdrnum(elf, &n_sections) < 0 || elf_getshdrstrndx(elf, &shstrndx) < 0)
		n_sections = 0; /* no usable section headers: no sections to read */
	while (n_sections && (scn = elf_nextscn(elf, scn)) && i++ < n_sections) {
		GElf_Shdr sh;
		const char *sname;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sname = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!sname)
			continue;
		if (!eh && strcmp(sname, ".eh_frame") == 0) {
			eh = scn;
			eh_sh = sh;
		} else if (!dbg && strcmp(sname, ".debug_frame") == 0) {
			dbg = scn;
			dbg_sh = sh;
		} else if (strcmp(sname, ".gopclntab") == 0 ||
			   strcmp(sname, ".go.buildinfo") == 0) {
			flags |= COLLECTOR_CFI_GO;
		}
	}
	if (eh) {
		r = section_bytes(eh, &eh_sh, name, ".eh_frame", err, &eh_data);
		if (r < 0)
			return r;
	}
	if (dbg) {
		r = section_bytes(dbg, &dbg_sh, name, ".debug_frame", err, &dbg_data);
		if (r < 0)
			return r;
	}
	return collector_cfi__parse(eh_data ? eh_data->d_buf : NULL, eh_data ? eh_data->d_size : 0,
				    eh_sh.sh_addr, dbg_data ? dbg_data->d_buf : NULL,
				    dbg_data ? dbg_data->d_size : 0, flags, name, err, ret);
}

int collector_cfi__read(int fd, const char *name, struct errbuf *err, struct collector_cfi **ret)
{
	Elf *elf = NULL;
	struct stat st;
	int r;

	pthread_once(&cfi_once, cfi_init);
	if (!cfi_elf_ok)
		return errbuf__set(err, -EIO, "libelf: %s", elf_errmsg(-1));
	if (fstat(fd, &st) < 0)
		return errbuf__set(err, -errno, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return errbuf__set(err, -ENOEXEC, "%s: not an ELF file (not a regular file)", name);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		r = errbuf__set(err, -ENOEXEC, "%s: not an ELF file: %s", name, elf_errmsg(-1));
		goto cleanup;
	}
	r = read_elf(elf, name, err, ret);
cleanup:
	elf_end(elf);
	return r;
}

int collector_cfi__read_memory(const void *data, size_t len, const char *name, struct errbuf *err,
			       struct collector_cfi **ret)
{
	Elf *elf = NULL;
	char *copy = NULL;
	int r;

	pthread_once(&cfi_once, cfi_init);
	if (!cfi_elf_ok)
		return errbuf__set(err, -EIO, "libelf: %s", elf_errmsg(-1));
	if (len > CFI_MAX_MEMORY)
		return errbuf__set(err, -EFBIG, "%s: larger than %u bytes", name, CFI_MAX_MEMORY);
	/* libelf may convert (or decompress) in place: work on a copy, so that
	 * read-only memory (the vDSO) is never written */
	copy = malloc(len ? len : 1);
	if (!copy) {
		r = -ENOMEM;
		goto cleanup;
	}
	memcpy(copy, data, len);
	elf = elf_memory(copy, len);
	if (!elf) {
		r = errbuf__set(err, -ENOEXEC, "%s: not an ELF file: %s", name, elf_errmsg(-1));
		goto cleanup;
	}
	r = read_elf(elf, name, err, ret);
cleanup:
	elf_end(elf);
	free(copy);
	return r;
}

void collector_cfi__free(struct collector_cfi *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t);
}

const struct collector_cfi_row *collector_cfi__find(const struct collector_cfi *t, uint64_t vaddr)
{
	size_t lo = 0, hi = t->n_rows;

	/* the first row past vaddr; the one before it holds vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->rows[mid].vaddr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &t->rows[lo - 1] : NULL;
}

const struct collector_cfi_row *collector_cfi__rows(const struct collector_cfi *t)
{
	return t->rows;
}

size_t collector_cfi__count(const struct collector_cfi *t)
{
	return t->n_rows;
}

size_t collector_cfi__bytes(const struct collector_cfi *t)
{
	return sizeof(*t) + t->n_rows * sizeof(*t->rows);
}

void collector_cfi__stats(const struct collector_cfi *t, struct collector_cfi_stats *ret)
{
	*ret = t->stats;
}

const char *collector_cfi__kind_name(unsigned kind)
{
	static const char *const names[] = {"none", "rsp", "rbp", "plt", "signal", "stop"};

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

const char *collector_cfi__reason_name(unsigned reason)
{
	static const char *const names[COLLECTOR_CFI_REASONS] = {
		"no-fde",   "cfa-register", "cfa-expression",  "rbp-rule",     "ra-rule",
		"rsp-rule", "bad-cie",	    "bad-instruction", "offset-range", "go-frame",
	};

	return reason < COLLECTOR_CFI_REASONS ? names[reason] : "?";
}
