/* SPDX-License-Identifier: Apache-2.0 */
/* merger/: reports. The eBPF view of a process against its SDK's view and
 * the merged view: where the CPU goes by what runs the leaf (kernel,
 * runtime internals, native libraries, guest code), the functions only one
 * view sees, how much of the eBPF view the splice could merge and why not
 * the rest, warnings, and a flame graph per view plus a diff graph. Written
 * as JSON (the data), Markdown, or HTML (merger/report.html with the JSON
 * inside). See docs/report.md. */
#define _GNU_SOURCE
#include "merger.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPORT_SCHEMA	   "braid-report/1"
#define REPORT_MAX_NODES   30000  /* per flame graph in the output */
#define REPORT_MIN_NODE	   0.0002 /* of the graph's total: smaller nodes are left out */
#define REPORT_TOP	   30
#define REPORT_BLIND	   20
#define REPORT_MAX_NAME	   (16u << 10) /* bytes of a name kept */
#define REPORT_MAX_NAMES   (1u << 22)  /* distinct names */
#define REPORT_PLACEHOLDER "/*BRAID_REPORT_JSON*/"
#define SKEW_WARN_NS	   (2ll * 1000000000)

/* merger/report.html, embedded by the build (cmake/embed.cmake) */
extern const char merger_report_html[];
extern const unsigned long merger_report_html_len;

enum view { V_EBPF, V_SDK, V_MERGED, V_COUNT };
static const char *const view_names[V_COUNT] = {"ebpf", "sdk", "merged"};

static const char *const leaf_names[MERGER_LEAF_COUNT] = {
	"kernel", "gc", "jit_compiler", "interpreter", "native", "guest", "idle", "unknown",
};

const char *merger__leaf_class_name(enum merger_leaf_class c)
{
	return c < MERGER_LEAF_COUNT ? leaf_names[c] : "?";
}

/* ---- flame graph trees ------------------------------------------------------------ */

struct node {
	uint32_t name; /* in the report's strtab */
	uint8_t kind;  /* 'r', 'k', 'n', 'j', 'i', 'u' */
	int64_t value;
	uint32_t parent, first, next; /* 0: none (node 0 is the root) */
};

struct tree {
	struct node *nodes;
	size_t n, cap;
	struct idtab index; /* (parent, name, kind) -> node + 1; the root is not in it */
};

/* Everything a function's name gathers, over the three views. */
struct fn {
	double cum[V_COUNT], self[V_COUNT]; /* values */
	double hidden;			    /* eBPF: where the SDK cannot see it */
	double depth;			    /* eBPF: sum of position (root first) * value */
	uint8_t kind;
	uint32_t module; /* strtab id, 0 none */
	bool pseudo;	 /* an SDK pseudo-frame ("Node.js", "(idle)"...) */
};

struct warning {
	const char *code;
	char *message;
};

struct blind {
	uint32_t name;
	double value;
	uint32_t caller; /* ebpf_only: the SDK frame it runs under, most often */
	double caller_share;
};

struct merger_report {
	struct merger_report_input in;
	char *title, *source, *service;
	struct strtab names;
	struct fn *fns; /* by name id */
	size_t cap_fns;
	uint32_t *stamp; /* by name id: the last stack that counted it */
	size_t cap_stamp;
	uint32_t stack_no;
	struct tree trees[V_COUNT];
	struct profile *merged;
	struct merger_report_numbers num;
	double view_value[V_COUNT];
	int64_t sdk_total_samples;
	const char *sdk_type, *sdk_unit;
	int64_t uncovered_kept[MERGER_CAT_COUNT];
	int64_t broken, to_guest;
	struct warning warnings[8];
	size_t n_warnings;
	struct blind ebpf_only[REPORT_BLIND], sdk_only[REPORT_BLIND];
	size_t n_ebpf_only, n_sdk_only;
	uint32_t top[REPORT_TOP];
	size_t n_top;
	enum runtime runtime;
};

static uint8_t kind_char(enum frame_kind k)
{
	switch (k) {
	case FRAME_KERNEL:
		return 'k';
	case FRAME_NATIVE:
		return 'n';
	case FRAME_JIT:
		return 'j';
	case FRAME_INTERPRETED:
		return 'i';
	default:
		return 'u';
	}
}

static int intern(struct merger_report *r, const char *s, uint32_t *ret)
{
	size_t len = strnlen(s, REPORT_MAX_NAME);
	int rc = strtab__intern(&r->names, s, len, REPORT_MAX_NAMES, ret);

	if (rc < 0)
		return rc;
	/* every name has its (zeroed) entry: modules too, so that loops over
	 * the names may index fns */
	if (*ret + 1 > r->cap_fns) {
		size_t old = r->cap_fns;

		rc = util__grow((void **)&r->fns, &r->cap_fns, *ret + 1, sizeof(*r->fns));
		if (rc == 0)
			memset(r->fns + old, 0, (r->cap_fns - old) * sizeof(*r->fns));
	}
	if (rc == 0 && *ret + 1 > r->cap_stamp) {
		size_t old = r->cap_stamp;

		rc = util__grow((void **)&r->stamp, &r->cap_stamp, *ret + 1, sizeof(*r->stamp));
		if (rc == 0)
			memset(r->stamp + old, 0, (r->cap_stamp - old) * sizeof(*r->stamp));
	}
	return rc;
}

static uint32_t node_hash(uint32_t parent, uint32_t name, uint8_t kind)
{
	return (uint32_t)util__hash_combine(util__hash_u64(((uint64_t)parent << 32) | name), kind);
}

struct node_key {
	const struct node *nodes;
	uint32_t parent, name;
	uint8_t kind;
};

static bool node_eq(const void *ctx, uint32_t id)
{
	const struct node_key *k = ctx;
	const struct node *x = &k->nodes[id - 1];

	return x->parent == k->parent && x->name == k->name && x->kind == k->kind;
}

static int tree_init(struct tree *t, uint32_t root_name)
{
	int rc = util__grow((void **)&t->nodes, &t->cap, 1, sizeof(*t->nodes));

	if (rc < 0)
		return rc;
	t->nodes[0] = (struct node){.name = root_name, .kind = 'r'};
	t->n = 1;
	return idtab__presize(&t->index, 512);
}

/* The child of parent for (name, kind), made when missing. */
static int tree_child(struct tree *t, uint32_t parent, uint32_t name, uint8_t kind, uint32_t *ret)
{
	struct node_key k = {t->nodes, parent, name, kind};
	uint32_t h = node_hash(parent, name, kind), id;
	size_t s;
	int rc;

	if ((rc = idtab__reserve(&t->index)) < 0)
		return rc;
	id = idtab__find(&t->index, h, node_eq, &k, &s);
	if (id) {
		*ret = id - 1;
		return 0;
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	rc = util__grow((void **)&t->nodes, &t->cap, t->n + 1, sizeof(*t->nodes));
	if (rc < 0)
		return rc;
	t->nodes[t->n] = (struct node){
		.name = name, .kind = kind, .parent = parent, .next = t->nodes[parent].first};
	t->nodes[parent].first = (uint32_t)t->n;
	idtab__insert_at(&t->index, s, h, (uint32_t)t->n + 1);
	*ret = (uint32_t)t->n++;
	return 0;
}

static void tree_free(struct tree *t)
{
	free(t->nodes);
	idtab__free(&t->index);
}

/* One stack into a view: frames root first as (name id, kind); counts each
 * function once per stack for its cumulative share. */
static int add_stack(struct merger_report *r, enum view v, const uint32_t *names,
		     const uint8_t *kinds, size_t n, double value)
{
	struct tree *t = &r->trees[v];
	uint32_t at = 0;
	int rc;

	t->nodes[0].value += (int64_t)value;
	r->view_value[v] += value;
	r->stack_no++;
	for (size_t i = 0; i < n; i++) {
		rc = tree_child(t, at, names[i], kinds[i], &at);
		if (rc < 0)
			return rc;
		t->nodes[at].value += (int64_t)value;
		if (r->stamp[names[i]] != r->stack_no) {
			r->stamp[names[i]] = r->stack_no;
			r->fns[names[i]].cum[v] += value;
		}
		if (!r->fns[names[i]].kind || r->fns[names[i]].kind == 'u')
			r->fns[names[i]].kind = kinds[i];
	}
	if (n)
		r->fns[names[n - 1]].self[v] += value;
	return 0;
}

/* A frame's display name: its function, else its module and offset. */
static int frame_name(struct merger_report *r, const struct frame *f, uint32_t *ret)
{
	char buf[256];

	if (f->name && f->name[0])
		return intern(r, f->name, ret);
	if (f->kind == FRAME_JIT)
		return intern(r, "[jit]", ret);
	if (f->kind == FRAME_UNKNOWN || !f->module)
		return intern(r, "[unknown]", ret);
	snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, f->module, f->offset);
	return intern(r, buf, ret);
}

/* Room for n frames in the scratch arrays. */
static int scratch(uint32_t **names, uint8_t **kinds, size_t *cap, size_t n)
{
	size_t old = *cap;
	uint8_t *k;
	int rc;

	if (n <= old)
		return 0;
	rc = util__grow((void **)names, cap, n, sizeof(**names));
	if (rc < 0)
		return rc;
	k = realloc(*kinds, *cap);
	if (!k) {
		*cap = old;
		return -ENOMEM;
	}
	*kinds = k;
	return 0;
}

/* ---- the eBPF view --------------------------------------------------------------- */

static enum merger_leaf_class leaf_class(const struct merger_ebpf_stack *s, size_t nk,
					 const struct merger_class *c)
{
	const struct frame *leaf;

	if (nk)
		return MERGER_LEAF_KERNEL;
	if (s->n_frames == 0 || s->frames[0].kind == FRAME_UNKNOWN)
		return MERGER_LEAF_UNKNOWN;
	leaf = &s->frames[0];
	switch (c->category) {
	case MERGER_CAT_GC:
		return MERGER_LEAF_GC;
	case MERGER_CAT_JIT:
		return MERGER_LEAF_JIT_COMPILER;
	case MERGER_CAT_IDLE:
		return MERGER_LEAF_IDLE;
	case MERGER_CAT_GUEST:
		if (c->region_begin > 0 || c->region_begin == c->region_end)
			return MERGER_LEAF_NATIVE; /* called from guest code */
		return leaf->kind == FRAME_JIT ? MERGER_LEAF_GUEST : MERGER_LEAF_INTERPRETER;
	default:
		return MERGER_LEAF_NATIVE;
	}
}

static int add_ebpf_stack(struct merger_report *r, const struct merger_report_part *p,
			  const struct merger_ebpf_stack *s, uint32_t *names, uint8_t *kinds)
{
	struct merger_class c;
	size_t nk = 0, n = s->n_frames;
	double value = (double)s->count * (double)r->in.period;
	bool region;
	int rc;

	while (nk < n && s->frames[nk].kind == FRAME_KERNEL)
		nk++;
	merger__classify_ebpf(p->runtime, s->frames + nk, n - nk, s->tid == p->pid, &c);
	r->num.ebpf_category[c.category] += (double)s->count;
	r->num.leaf_share[leaf_class(s, nk, &c)] += (double)s->count;
	r->num.ebpf_samples += s->count;
	/* root first */
	for (size_t i = 0; i < n; i++) {
		const struct frame *f = &s->frames[n - 1 - i];

		rc = frame_name(r, f, &names[i]);
		if (rc < 0)
			return rc;
		kinds[i] = kind_char(f->kind);
	}
	rc = add_stack(r, V_EBPF, names, kinds, n, value);
	if (rc < 0)
		return rc;
	/* what the SDK cannot see: the kernel, and the native code below guest
	 * code (or all of a stack without guest code); not the prefix above */
	region = c.region_begin < c.region_end;
	r->stack_no++;
	for (size_t i = 0; i < n; i++) {
		size_t leafward = n - 1 - i; /* index from the leaf */
		uint32_t id = names[i];

		if (leafward >= nk && region && leafward - nk >= c.region_begin)
			continue;
		if (s->frames[leafward].name == NULL || !s->frames[leafward].name[0])
			continue;
		if (r->stamp[id] != r->stack_no) {
			r->stamp[id] = r->stack_no;
			r->fns[id].hidden += value;
			r->fns[id].depth += (double)i * value;
			if (!r->fns[id].module && s->frames[leafward].module) {
				uint32_t module;

				/* intern() may move fns: the entry is found again after */
				rc = intern(r, s->frames[leafward].module, &module);
				if (rc < 0)
					return rc;
				r->fns[id].module = module;
			}
		}
	}
	return 0;
}

/* ---- the SDK and merged views ------------------------------------------------------- */

static bool sdk_pseudo(const char *name)
{
	static const char *const pseudo[] = {
		"Node.js",
		"(root)",
		"(idle)",
		"(program)",
		"(garbage collector)",
		"Garbage Collection",
		"Non JS threads activity",
		"TimeProfiler",
		"<module>",
	};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(pseudo); i++)
		if (strcmp(name, pseudo[i]) == 0)
			return true;
	return false;
}

/* The system name ("fib") of a location's function, NULL if none. */
static const char *system_name(const struct profile *p, uint32_t loc)
{
	struct profile_location l;
	const struct profile_function *fn;

	if (profile__location(p, loc, &l) < 0 || !l.n_lines)
		return NULL;
	fn = profile__function(p, l.lines[l.n_lines - 1].function);
	if (!fn || !fn->system_name)
		return NULL;
	return profile__str(p, fn->system_name);
}

/* Adds a profile's samples (type `type`) to view v. SDK frames are
 * interpreted ('i') unless they are pseudo-frames ('r'); merged frames
 * keep their kinds. */
static int add_profile(struct merger_report *r, enum view v, const struct profile *p, int type,
		       enum runtime runtime, uint32_t **names, uint8_t **kinds, size_t *cap)
{
	size_t n_samples = profile__n_samples(p);
	const char *sys_names[PROFILE_DEFAULT_MAX_STACK_DEPTH];
	int rc;

	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(p, i);
		const uint32_t *locs;
		size_t n = profile__stack(p, s.stack, &locs);
		int64_t value = s.values[type];

		if (value <= 0)
			continue;
		rc = scratch(names, kinds, cap, n);
		if (rc < 0)
			return rc;
		for (size_t k = 0; k < n; k++) {
			struct frame f;
			uint32_t id;

			rc = merger__frame_of_location(p, locs[n - 1 - k], &f);
			if (rc < 0)
				return rc;
			rc = frame_name(r, &f, &id);
			if (rc < 0)
				return rc;
			(*names)[k] = id;
			if (v == V_SDK) {
				const char *sys = system_name(p, locs[n - 1 - k]);
				bool ps = sdk_pseudo(sys ? sys : strtab__get(&r->names, id));

				(*kinds)[k] = ps ? 'r' : 'i';
				r->fns[id].pseudo |= ps;
				if (k < UTIL_ARRAY_SIZE(sys_names))
					sys_names[k] = sys ? sys : strtab__get(&r->names, id);
			} else {
				(*kinds)[k] = kind_char(f.kind);
			}
		}
		if (v == V_SDK) {
			const char *leafward[UTIL_ARRAY_SIZE(sys_names)];
			size_t m = n < UTIL_ARRAY_SIZE(leafward) ? n : UTIL_ARRAY_SIZE(leafward);
			size_t skip;

			/* the classifier reads names leaf first, as the SDK's system
			 * names ("fib", "(idle)"), not its display names */
			for (size_t k = 0; k < m; k++)
				leafward[k] = sys_names[m - 1 - k];
			r->num.sdk_category[merger__classify_sdk(runtime, leafward, m, &skip)] +=
				(double)value;
			r->num.sdk_value += value;
			r->sdk_total_samples++;
		}
		rc = add_stack(r, v, *names, *kinds, n, (double)value);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- blind spots, top functions ------------------------------------------------------- */

static int cmp_desc(double a, double b)
{
	return (a < b) - (a > b);
}

static int by_hidden(const void *a, const void *b, void *ctx)
{
	const struct fn *f = ((const struct merger_report *)ctx)->fns;

	return cmp_desc(f[*(const uint32_t *)a].hidden, f[*(const uint32_t *)b].hidden);
}

static int by_sdk_cum(const void *a, const void *b, void *ctx)
{
	const struct fn *f = ((const struct merger_report *)ctx)->fns;

	return cmp_desc(f[*(const uint32_t *)a].cum[V_SDK], f[*(const uint32_t *)b].cum[V_SDK]);
}

static double share_of(const struct merger_report *r, enum view v, double value)
{
	return r->view_value[v] > 0 ? value / r->view_value[v] : 0;
}

static double top_key(const struct merger_report *r, uint32_t id)
{
	double k = 0;

	for (int v = 0; v < V_COUNT; v++) {
		double s = share_of(r, (enum view)v, r->fns[id].self[v]);

		if (s > k)
			k = s;
	}
	return k;
}

static int by_top(const void *a, const void *b, void *ctx)
{
	return cmp_desc(top_key(ctx, *(const uint32_t *)a), top_key(ctx, *(const uint32_t *)b));
}

/* Whether a Go function is the program's rather than the standard
 * library's: package main, or a package whose path starts with a domain
 * (github.com/...); the standard library's first path element has no dot. */
static bool go_user_function(const char *name)
{
	size_t first = strcspn(name, "/.");

	return strncmp(name, "main.", 5) == 0 ||
	       (name[first] == '.' && strchr(name + first + 1, '/') != NULL);
}

/* The SDK frame each blind eBPF function runs under most in the merged
 * view: its nearest interpreted ancestor with a source file (":run:0" is
 * V8's name for the native call itself), application code before the
 * runtime's own JS ("node:internal/..."). One walk per sample, leaf first,
 * with each location's name and eligibility worked out once. */
static int find_callers(struct merger_report *r)
{
	enum { NOT = 0, USER, RUNTIME };
	size_t n_samples = profile__n_samples(r->merged);
	size_t n_locs = profile__n_locations(r->merged), n_names = r->names.n;
	double *by[REPORT_BLIND] = {0};
	uint32_t *loc_name = calloc(n_locs + 1, sizeof(*loc_name));
	uint8_t *loc_caller = calloc(n_locs + 1, 1);
	int8_t *blind_of = malloc(n_names + 1);
	int rc = 0;

	if (!loc_name || !loc_caller || !blind_of) {
		rc = -ENOMEM;
		goto cleanup;
	}
	memset(blind_of, -1, n_names + 1);
	for (size_t b = 0; b < r->n_ebpf_only; b++) {
		blind_of[r->ebpf_only[b].name] = (int8_t)b;
		by[b] = calloc(n_names + 1, sizeof(double));
		if (!by[b]) {
			rc = -ENOMEM;
			goto cleanup;
		}
	}
	for (uint32_t id = 1; id <= n_locs; id++) {
		struct frame f;
		uint32_t name;

		if (merger__frame_of_location(r->merged, id, &f) < 0 || !f.name ||
		    !strtab__lookup(&r->names, f.name, strlen(f.name), &name))
			continue;
		loc_name[id] = name;
		if (f.kind == FRAME_INTERPRETED && f.name[0] != ':' && !r->fns[name].pseudo)
			loc_caller[id] = strncmp(f.name, "node:", 5) == 0 ? RUNTIME : USER;
		/* Go: eBPF's own frames, those the SDK shows too; the program's
		 * before the standard library's */
		else if (r->runtime == RUNTIME_GO && f.kind != FRAME_KERNEL &&
			 r->fns[name].cum[V_SDK] > 0)
			loc_caller[id] = go_user_function(f.name) ? USER : RUNTIME;
	}
	for (size_t i = 0; i < n_samples && r->n_ebpf_only; i++) {
		struct profile_sample s = profile__sample(r->merged, i);
		const uint32_t *locs;
		size_t n = profile__stack(r->merged, s.stack, &locs);
		uint32_t found = 0, fallback[REPORT_BLIND] = {0}; /* bit b: b seen, no caller yet */
		size_t pending[REPORT_BLIND], n_pending = 0;

		for (size_t k = 0; k < n; k++) {
			uint32_t loc = locs[k], name = loc <= n_locs ? loc_name[loc] : 0;
			int8_t b = name ? blind_of[name] : -1;

			if (b >= 0 && !(found & (1u << b))) {
				found |= 1u << b;
				pending[n_pending++] = (size_t)b;
			}
			if (!n_pending || loc > n_locs || !loc_caller[loc])
				continue;
			for (size_t j = 0; j < n_pending; j++)
				if (!fallback[pending[j]] || loc_caller[loc] == USER)
					fallback[pending[j]] = name;
			if (loc_caller[loc] == USER)
				n_pending = 0; /* their caller is settled */
		}
		for (size_t b = 0; b < r->n_ebpf_only; b++)
			if (fallback[b])
				by[b][fallback[b]] += (double)s.values[0];
	}
	for (size_t b = 0; b < r->n_ebpf_only; b++) {
		double best = 0, sum = r->fns[r->ebpf_only[b].name].cum[V_MERGED];

		for (size_t id = 1; id < n_names; id++)
			if (by[b][id] > best) {
				best = by[b][id];
				r->ebpf_only[b].caller = (uint32_t)id;
			}
		r->ebpf_only[b].caller_share = sum > 0 ? best / sum : 0;
	}
cleanup:
	for (size_t b = 0; b < REPORT_BLIND; b++)
		free(by[b]);
	free(loc_name);
	free(loc_caller);
	free(blind_of);
	return rc;
}

/* The root frame of every goroutine's stack, which eBPF shows and Go's
 * profiler leaves out: nothing the SDK misses. */
static bool go_root_frame(const char *name)
{
	return name && strncmp(name, "runtime.goexit", 14) == 0;
}

static int rank(struct merger_report *r)
{
	size_t n_names = r->names.n, n = 0;
	uint32_t *ids = malloc((n_names + 1) * sizeof(*ids));
	int rc = 0;

	if (!ids)
		return -ENOMEM;
	/* only eBPF sees: named, absent from the SDK view, where the SDK can't look */
	n = 0;
	for (uint32_t id = 1; id < n_names; id++)
		if (r->fns[id].hidden > 0 && r->fns[id].cum[V_SDK] == 0 &&
		    share_of(r, V_EBPF, r->fns[id].hidden) >= 0.001 &&
		    !(r->runtime == RUNTIME_GO && go_root_frame(strtab__get(&r->names, id))))
			ids[n++] = id;
	qsort_r(ids, n, sizeof(*ids), by_hidden, r);
	/* a call chain (V8's API call, node's binding, OpenSSL's entry) has one
	 * share all along: it is listed once, by its leafmost function on
	 * average, the one that says what the time was spent on */
	for (size_t i = 0; i < n && r->n_ebpf_only < REPORT_BLIND;) {
		size_t j = i, best = i;

		while (j < n && fabs(r->fns[ids[j]].hidden - r->fns[ids[i]].hidden) <
					(double)r->in.period / 2) {
			if (r->fns[ids[j]].depth / r->fns[ids[j]].hidden >
			    r->fns[ids[best]].depth / r->fns[ids[best]].hidden)
				best = j;
			j++;
		}
		r->ebpf_only[r->n_ebpf_only++] =
			(struct blind){.name = ids[best], .value = r->fns[ids[best]].hidden};
		i = j;
	}
	/* only the SDK sees: its functions eBPF never names */
	n = 0;
	for (uint32_t id = 1; id < n_names; id++)
		if (r->fns[id].cum[V_SDK] > 0 && r->fns[id].cum[V_EBPF] == 0 &&
		    !r->fns[id].pseudo && share_of(r, V_SDK, r->fns[id].cum[V_SDK]) >= 0.001)
			ids[n++] = id;
	qsort_r(ids, n, sizeof(*ids), by_sdk_cum, r);
	for (size_t i = 0; i < n && r->n_sdk_only < REPORT_BLIND; i++)
		r->sdk_only[r->n_sdk_only++] =
			(struct blind){.name = ids[i], .value = r->fns[ids[i]].cum[V_SDK]};
	/* the top functions: by their largest self share in any view */
	n = 0;
	for (uint32_t id = 1; id < n_names; id++)
		if (top_key(r, id) > 0 && !r->fns[id].pseudo)
			ids[n++] = id;
	qsort_r(ids, n, sizeof(*ids), by_top, r);
	for (size_t i = 0; i < n && r->n_top < REPORT_TOP; i++)
		r->top[r->n_top++] = ids[i];
	free(ids);
	if (rc == 0)
		rc = find_callers(r);
	return rc;
}

/* ---- warnings ----------------------------------------------------------------------- */

static int warn(struct merger_report *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int warn(struct merger_report *r, const char *code, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	int n;

	if (r->n_warnings == UTIL_ARRAY_SIZE(r->warnings))
		return 0;
	va_start(ap, fmt);
	n = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	r->warnings[r->n_warnings++] = (struct warning){code, m};
	return 0;
}

static int find_warnings(struct merger_report *r)
{
	const struct merger_report_input *in = &r->in;
	double hz = in->period > 0 ? 1e9 / (double)in->period : 0;
	int rc = 0;

	if (!r->num.ebpf_samples)
		rc = warn(r, "no_ebpf",
			  "No eBPF samples in this range: the agent may run without eBPF sampling "
			  "(--no-ebpf), or the process did not run on a CPU.");
	if (rc == 0 && !r->sdk_total_samples)
		rc = warn(r, "no_sdk",
			  "No SDK profile covers this range: the merged view is the eBPF view, and "
			  "guest functions stay unnamed.");
	if (rc == 0 && in->sdk_sample_rate > 0 && hz > 0 &&
	    (in->sdk_sample_rate > 2 * hz || 2 * in->sdk_sample_rate < hz))
		rc = warn(r, "sample_rate",
			  "The SDK sampled at %" PRId64
			  " Hz and eBPF at %.0f Hz: the splice shares "
			  "eBPF samples by the SDK's weights, which are %s than the eBPF view.",
			  in->sdk_sample_rate, hz,
			  (double)in->sdk_sample_rate < hz ? "coarser" : "finer");
	if (rc == 0 && in->sdk_from_ns && in->sdk_until_ns && in->ebpf_from_ns &&
	    in->ebpf_until_ns) {
		int64_t lo =
			in->sdk_from_ns > in->ebpf_from_ns ? in->sdk_from_ns : in->ebpf_from_ns;
		int64_t hi =
			in->sdk_until_ns < in->ebpf_until_ns ? in->sdk_until_ns : in->ebpf_until_ns;
		int64_t early = in->ebpf_from_ns - in->sdk_from_ns;
		int64_t late = in->sdk_until_ns - in->ebpf_until_ns;

		if (hi <= lo)
			rc = warn(r, "clock_skew",
				  "The SDK profiles' range and the eBPF samples' range do not "
				  "overlap (%.1f s apart): the clocks may be skewed, or the SDK "
				  "profiled another time than the recording.",
				  (double)(lo - hi) / 1e9);
		else if (early > SKEW_WARN_NS || late > SKEW_WARN_NS)
			rc = warn(
				r, "clock_skew",
				"The SDK profiles reach %.1f s %s the eBPF samples: the clocks may "
				"be skewed, or eBPF samples are missing there.",
				(double)(early > late ? early : late) / 1e9,
				early > late ? "before" : "past");
	}
	if (rc == 0 && in->sdk_unattributed)
		rc = warn(r, "unattributed",
			  "%zu SDK profile%s of this service could not be attributed to a process "
			  "(no loopback peer, pid label or unique service name): %s not "
			  "merged.",
			  in->sdk_unattributed, in->sdk_unattributed == 1 ? "" : "s",
			  in->sdk_unattributed == 1 ? "it is" : "they are");
	if (rc == 0 && r->num.sdk_cpu && r->num.ebpf_value > 0 && r->num.sdk_value > 0) {
		double ratio = (double)r->num.sdk_value / (double)r->num.ebpf_value;

		if (ratio > 2 || ratio < 0.5)
			rc = warn(r, "cpu_mismatch",
				  "The SDK counted %.2fx the CPU time eBPF saw for the same range: "
				  "the push may belong to another process, or cover other time.",
				  ratio);
	}
	r->num.n_warnings = r->n_warnings;
	return rc;
}

/* ---- computing --------------------------------------------------------------------- */

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = -ENOMEM;
	return d;
}

static int compute(struct merger_report *r, const struct merger_report_input *in)
{
	uint32_t *names = NULL, root;
	uint8_t *kinds = NULL;
	size_t cap = 0;
	int rc;

	rc = intern(r, "all", &root);
	for (int v = 0; rc == 0 && v < V_COUNT; v++)
		rc = tree_init(&r->trees[v], root);
	if (rc < 0)
		return rc;
	r->merged = merger__new_profile(in->period, in->from_ns, in->until_ns);
	if (!r->merged)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_parts; i++) {
		const struct merger_report_part *p = &in->parts[i];
		const struct merger_ebpf_stack *sets[2] = {p->stacks, p->uncovered};
		size_t ns[2] = {p->n_stacks, p->n_uncovered};
		struct merger_splice_stats st;

		if (merger__can_splice(p->runtime) || r->runtime == RUNTIME_UNKNOWN)
			r->runtime = p->runtime;
		for (int k = 0; k < 2; k++)
			for (size_t j = 0; j < ns[k]; j++) {
				const struct merger_ebpf_stack *s = &sets[k][j];

				rc = scratch(&names, &kinds, &cap, s->n_frames);
				if (rc == 0)
					rc = add_ebpf_stack(r, p, s, names, kinds);
				if (rc < 0)
					goto cleanup;
			}
		/* the merged view: the covered stacks spliced, the rest as they are */
		rc = merger__splice(&(struct merger_splice_input){.runtime = p->runtime,
								  .pid = p->pid,
								  .stacks = p->stacks,
								  .n_stacks = p->n_stacks,
								  .sdk = p->sdk,
								  .period = in->period},
				    r->merged, &st);
		if (rc < 0)
			goto cleanup;
		r->num.spliced += st.spliced;
		r->num.match_exact += st.match_exact;
		r->num.match_partial += st.match_partial;
		r->num.match_none += p->sdk ? st.match_none : 0;
		r->broken += st.broken;
		r->to_guest += st.to_guest;
		for (int c = 0; c < MERGER_CAT_COUNT; c++) {
			if (p->sdk)
				r->num.kept[c] += st.kept[c];
			else
				r->num.no_sdk += st.kept[c];
		}
		rc = merger__splice(&(struct merger_splice_input){.runtime = p->runtime,
								  .pid = p->pid,
								  .stacks = p->uncovered,
								  .n_stacks = p->n_uncovered,
								  .period = in->period},
				    r->merged, &st);
		if (rc < 0)
			goto cleanup;
		r->num.uncovered += st.samples;
		if (p->sdk) {
			int type = merger__sdk_weight_type(p->sdk);
			struct profile_value_type vt;
			uint32_t id;

			if (type < 0)
				continue;
			vt = profile__sample_type(p->sdk, (size_t)type);
			/* the report outlives the SDK profile: its own copies */
			rc = intern(r,
				    profile__str(p->sdk, vt.type) ? profile__str(p->sdk, vt.type)
								  : "",
				    &id);
			r->sdk_type = rc < 0 ? NULL : strtab__get(&r->names, id);
			if (rc == 0)
				rc = intern(r,
					    profile__str(p->sdk, vt.unit)
						    ? profile__str(p->sdk, vt.unit)
						    : "",
					    &id);
			if (rc < 0)
				goto cleanup;
			r->sdk_unit = strtab__get(&r->names, id);
			r->num.sdk_cpu = strcmp(r->sdk_unit, "nanoseconds") == 0 &&
					 strcmp(r->sdk_type, "cpu") == 0;
			rc = add_profile(r, V_SDK, p->sdk, type, p->runtime, &names, &kinds, &cap);
			if (rc < 0)
				goto cleanup;
		}
	}
	rc = add_profile(r, V_MERGED, r->merged, 0, r->runtime, &names, &kinds, &cap);
	if (rc < 0)
		goto cleanup;
	r->num.ebpf_value = r->num.ebpf_samples * in->period;
	r->view_value[V_EBPF] = (double)r->num.ebpf_value;
	r->num.sdk_samples = r->sdk_total_samples;
	r->num.merged_value = (int64_t)r->view_value[V_MERGED];
	r->num.merged_samples = in->period > 0 ? r->num.merged_value / in->period : 0;
	for (int k = 0; k < MERGER_LEAF_COUNT; k++)
		r->num.leaf_share[k] = r->num.ebpf_samples
					       ? r->num.leaf_share[k] / (double)r->num.ebpf_samples
					       : 0;
	for (int c = 0; c < MERGER_CAT_COUNT; c++) {
		r->num.ebpf_category[c] =
			r->num.ebpf_samples ? r->num.ebpf_category[c] / (double)r->num.ebpf_samples
					    : 0;
		r->num.sdk_category[c] =
			r->num.sdk_value ? r->num.sdk_category[c] / (double)r->num.sdk_value : 0;
	}
	rc = rank(r);
	if (rc == 0)
		rc = find_warnings(r);
cleanup:
	free(names);
	free(kinds);
	return rc;
}

int merger__report_new(const struct merger_report_input *in, struct merger_report **ret)
{
	struct merger_report *r = calloc(1, sizeof(*r));
	int rc = 0;

	if (!r)
		return -ENOMEM;
	r->in = *in;
	r->title = dup_or_null(in->title, &rc);
	r->source = dup_or_null(in->source, &rc);
	r->service = dup_or_null(in->service, &rc);
	r->in.title = r->title;
	r->in.source = r->source;
	r->in.service = r->service;
	r->in.parts = NULL; /* read by compute only */
	r->in.n_parts = 0;
	if (!r->in.generated_ns)
		r->in.generated_ns = store__now_ns();
	if (rc == 0)
		rc = strtab__init(&r->names);
	if (rc == 0)
		rc = compute(r, in);
	if (rc < 0) {
		merger__report_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

int64_t merger__sample_rate_of(const struct profile *p)
{
	const char *unit = profile__str(p, profile__period_type(p).unit);

	if (profile__period(p) <= 0 || !unit || strcmp(unit, "nanoseconds") != 0)
		return 0;
	return 1000000000 / profile__period(p);
}

void merger__report_free(struct merger_report *r)
{
	if (!r)
		return;
	for (int v = 0; v < V_COUNT; v++)
		tree_free(&r->trees[v]);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i].message);
	profile__free(r->merged);
	strtab__free(&r->names);
	free(r->fns);
	free(r->stamp);
	free(r->title);
	free(r->source);
	free(r->service);
	free(r);
}

void merger__report_numbers(const struct merger_report *r, struct merger_report_numbers *ret)
{
	*ret = r->num;
}

double merger__report_function_share(const struct merger_report *r, const char *view,
				     const char *name)
{
	uint32_t id;

	for (int v = 0; v < V_COUNT; v++)
		if (strcmp(view, view_names[v]) == 0 &&
		    strtab__lookup(&r->names, name, strlen(name), &id))
			return share_of(r, (enum view)v, r->fns[id].cum[v]);
	return 0;
}

const char *merger__report_warning(const struct merger_report *r, size_t i)
{
	return i < r->n_warnings ? r->warnings[i].code : NULL;
}

/* ---- JSON ----------------------------------------------------------------------- */

static int json_time(struct dynbuf *b, int64_t ns)
{
	char buf[40];
	struct tm tm;
	time_t t = (time_t)(ns / 1000000000);

	if (!ns || !gmtime_r(&t, &tm))
		return dynbuf__printf(b, "null");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return dynbuf__printf(b, "\"%s\"", buf);
}

static int plain_time(struct dynbuf *b, int64_t ns)
{
	char buf[40];
	struct tm tm;
	time_t t = (time_t)(ns / 1000000000);

	if (!gmtime_r(&t, &tm))
		return dynbuf__printf(b, "?");
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	return dynbuf__printf(b, "%s", buf);
}

/* A share with enough digits to tell 0.01 % apart. */
static int json_share(struct dynbuf *b, double x)
{
	if (!isfinite(x))
		return dynbuf__printf(b, "null");
	return dynbuf__printf(b, "%.6g", x);
}

static int json_view_shares(struct dynbuf *b, const struct merger_report *r, uint32_t id,
			    enum view v)
{
	int rc;

	if (r->fns[id].cum[v] == 0 && r->fns[id].self[v] == 0)
		return dynbuf__printf(b, "null");
	rc = dynbuf__printf(b, "{\"self\":");
	rc = rc < 0 ? rc : json_share(b, share_of(r, v, r->fns[id].self[v]));
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"total\":");
	rc = rc < 0 ? rc : json_share(b, share_of(r, v, r->fns[id].cum[v]));
	return rc < 0 ? rc : dynbuf__putc(b, '}');
}

static const char *kind_word(uint8_t k)
{
	switch (k) {
	case 'k':
		return "kernel";
	case 'n':
		return "native";
	case 'j':
		return "jit";
	case 'i':
		return "interpreted";
	case 'r':
		return "pseudo";
	default:
		return "unknown";
	}
}

/* The smallest node value kept so that a graph has at most REPORT_MAX_NODES
 * nodes (and none under REPORT_MIN_NODE of its total). */
static int64_t tree_cut(const struct tree *t)
{
	int64_t total = t->nodes[0].value, cut = (int64_t)((double)total * REPORT_MIN_NODE);
	size_t kept;

	if (cut < 1)
		cut = 1;
	for (;;) {
		kept = 0;
		for (size_t i = 0; i < t->n; i++)
			kept += t->nodes[i].value >= cut;
		if (kept <= REPORT_MAX_NODES)
			return cut;
		cut *= 2;
	}
}

/* A graph as flat arrays (any depth parses with any JSON tool; nested
 * objects would go a few hundred levels deep): "names" once each, "nodes"
 * in preorder as [parent, name, kind, value] (diff: + d, e, s), the root
 * first with parent -1. Nodes under the cut are left out with what is
 * under them. */
static int json_tree_flat(struct dynbuf *b, const struct merger_report *r, const struct tree *t,
			  bool diff)
{
	int64_t cut = tree_cut(t);
	uint32_t *order = NULL, *stack = NULL, *out_index = NULL, *name_index = NULL;
	size_t n_order = 0, n_stack = 0, n_names = 0;
	int rc = 0;

	order = malloc(t->n * sizeof(*order));
	stack = malloc(t->n * sizeof(*stack));
	out_index = malloc(t->n * sizeof(*out_index));
	name_index = calloc(r->names.n + 1, sizeof(*name_index)); /* name id -> index + 1 */
	if (!order || !stack || !out_index || !name_index) {
		rc = -ENOMEM;
		goto cleanup;
	}
	/* preorder, children in the order they were first seen */
	stack[n_stack++] = 0;
	while (n_stack) {
		uint32_t at = stack[--n_stack], kids = 0;

		out_index[at] = (uint32_t)n_order;
		order[n_order++] = at;
		for (uint32_t c = t->nodes[at].first; c; c = t->nodes[c].next)
			if (t->nodes[c].value >= cut)
				stack[n_stack + kids++] = c;
		/* reversed onto the stack: the first child comes out first */
		for (uint32_t k = 0; k < kids / 2; k++) {
			uint32_t x = stack[n_stack + k];

			stack[n_stack + k] = stack[n_stack + kids - 1 - k];
			stack[n_stack + kids - 1 - k] = x;
		}
		n_stack += kids;
	}
	rc = dynbuf__printf(b, "{\"names\":[");
	for (size_t i = 0; rc >= 0 && i < n_order; i++) {
		uint32_t name = t->nodes[order[i]].name;

		if (name_index[name])
			continue;
		name_index[name] = (uint32_t)++n_names;
		rc = dynbuf__printf(b, n_names > 1 ? "," : "");
		rc = rc < 0 ? rc : dynbuf__json_str(b, strtab__get(&r->names, name));
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "],\"nodes\":[");
	for (size_t i = 0; rc >= 0 && i < n_order; i++) {
		const struct node *x = &t->nodes[order[i]];

		rc = dynbuf__printf(b, "%s[%ld,%u,\"%c\",%" PRId64, i ? "," : "",
				    i ? (long)out_index[x->parent] : -1L, name_index[x->name] - 1,
				    x->kind, x->value);
		if (rc >= 0 && diff) {
			double e = i ? share_of(r, V_EBPF, r->fns[x->name].cum[V_EBPF]) : 0;
			double sh = i ? share_of(r, V_SDK, r->fns[x->name].cum[V_SDK]) : 0;

			rc = dynbuf__putc(b, ',');
			rc = rc < 0 ? rc : json_share(b, e - sh);
			rc = rc < 0 ? rc : dynbuf__putc(b, ',');
			rc = rc < 0 ? rc : json_share(b, e);
			rc = rc < 0 ? rc : dynbuf__putc(b, ',');
			rc = rc < 0 ? rc : json_share(b, sh);
		}
		rc = rc < 0 ? rc : dynbuf__putc(b, ']');
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "]}");
cleanup:
	free(order);
	free(stack);
	free(out_index);
	free(name_index);
	return rc < 0 ? rc : 0;
}

static int json_tree(struct dynbuf *b, const struct merger_report *r, enum view v, bool diff)
{
	if (v == V_SDK && !r->sdk_total_samples)
		return dynbuf__printf(b, "null");
	return json_tree_flat(b, r, &r->trees[v], diff);
}

static const char *reason_text(enum runtime rt, enum merger_category c)
{
	if (rt == RUNTIME_GO)
		return "Go code no SDK stack agrees with from the root (a thread the SDK does "
		       "not see, or a stack unwound short of its root)";
	switch (c) {
	case MERGER_CAT_GUEST:
		return "guest code, but the SDK profile has no guest stacks to share it with";
	case MERGER_CAT_GC:
		return "garbage collection: the SDK profile has no GC stacks";
	case MERGER_CAT_JIT:
		return "JIT compilation: the SDK profile has no compiler stacks";
	case MERGER_CAT_IDLE:
		return "the event loop waiting: the SDK profile has no idle stacks";
	default:
		return "other native work (other threads, start-up): the SDK profile has no "
		       "stacks of this kind";
	}
}

static int json_reason(struct dynbuf *b, const struct merger_report *r, bool *first,
		       const char *reason, const char *category, int64_t samples, const char *text)
{
	int rc;

	if (!samples)
		return 0;
	rc = dynbuf__printf(b, "%s{\"reason\":\"%s\",\"category\":", *first ? "" : ",", reason);
	*first = false;
	rc = rc < 0 ? rc : dynbuf__json_str(b, category);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"share\":");
	rc = rc < 0 ? rc
		    : json_share(b, r->num.ebpf_samples
					    ? (double)samples / (double)r->num.ebpf_samples
					    : 0);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"samples\":%" PRId64 ",\"text\":", samples);
	rc = rc < 0 ? rc : dynbuf__json_str(b, text);
	return rc < 0 ? rc : dynbuf__putc(b, '}');
}

static const char *ebpf_sees(enum runtime rt)
{
	switch (rt) {
	case RUNTIME_NODE:
		return "anonymous JIT code and V8 builtins (no function names without "
		       "--perf-basic-prof)";
	case RUNTIME_PYTHON:
		return "the interpreter's eval loop (_PyEval_EvalFrameDefault)";
	default:
		return "native frames of the runtime";
	}
}

static int json_body(const struct merger_report *r, struct dynbuf *b)
{
	const struct merger_report_numbers *n = &r->num;
	double secs =
		r->in.until_ns > r->in.from_ns ? (double)(r->in.until_ns - r->in.from_ns) / 1e9 : 0;
	bool first;
	int rc;

	rc = dynbuf__printf(b, "{\"schema\":\"" REPORT_SCHEMA "\",\"title\":");
	rc = rc < 0 ? rc : dynbuf__json_str(b, r->in.title ? r->in.title : "braid report");
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"generated\":");
	rc = rc < 0 ? rc : json_time(b, r->in.generated_ns);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"source\":");
	rc = rc < 0 ? rc : dynbuf__json_str(b, r->in.source);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"service\":");
	rc = rc < 0 ? rc : dynbuf__json_str(b, r->in.service);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"pid\":");
	rc = rc < 0	     ? rc
	     : r->in.pid > 0 ? dynbuf__printf(b, "%d", r->in.pid)
			     : dynbuf__printf(b, "null");
	rc = rc < 0 ? rc
		    : dynbuf__printf(b, ",\"runtime\":\"%s\",\"range\":{\"from\":",
				     profile__runtime_name(r->runtime));
	rc = rc < 0 ? rc : json_time(b, r->in.from_ns);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"until\":");
	rc = rc < 0 ? rc : json_time(b, r->in.until_ns);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"seconds\":%.3f}", secs);
	/* views */
	rc = rc < 0 ? rc
		    : dynbuf__printf(
			      b,
			      ",\"views\":{\"ebpf\":{\"samples\":%" PRId64 ",\"value\":%" PRId64
			      ",\"unit\":\"nanoseconds\",\"frequency_hz\":%.3g,\"period_ns\":"
			      "%" PRId64 "},\"sdk\":",
			      n->ebpf_samples, n->ebpf_value,
			      r->in.period > 0 ? 1e9 / (double)r->in.period : 0, r->in.period);
	if (rc == 0 && r->sdk_total_samples) {
		rc = dynbuf__printf(b,
				    "{\"profiles\":%zu,\"samples\":%" PRId64 ",\"value\":%" PRId64
				    ",\"unit\":",
				    r->in.sdk_profiles, n->sdk_samples, n->sdk_value);
		rc = rc < 0 ? rc : dynbuf__json_str(b, r->sdk_unit);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"sample_type\":");
		rc = rc < 0 ? rc : dynbuf__json_str(b, r->sdk_type);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"sample_rate_hz\":");
		rc = rc < 0 ? rc
		     : r->in.sdk_sample_rate > 0
			     ? dynbuf__printf(b, "%" PRId64, r->in.sdk_sample_rate)
			     : dynbuf__printf(b, "null");
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"from\":");
		rc = rc < 0 ? rc : json_time(b, r->in.sdk_from_ns);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"until\":");
		rc = rc < 0 ? rc : json_time(b, r->in.sdk_until_ns);
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	} else if (rc == 0) {
		rc = dynbuf__printf(b, "null");
	}
	rc = rc < 0 ? rc
		    : dynbuf__printf(b,
				     ",\"merged\":{\"samples\":%" PRId64 ",\"value\":%" PRId64
				     ",\"unit\":\"nanoseconds\"}}",
				     n->merged_samples, n->merged_value);
	/* summary */
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"summary\":{\"sdk_to_ebpf\":");
	rc = rc < 0 ? rc
	     : n->sdk_cpu && n->ebpf_value
		     ? json_share(b, (double)n->sdk_value / (double)n->ebpf_value)
		     : dynbuf__printf(b, "null");
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"ebpf_shares\":{");
	for (int k = 0; rc == 0 && k < MERGER_LEAF_COUNT; k++) {
		rc = dynbuf__printf(b, "%s\"%s\":", k ? "," : "", leaf_names[k]);
		rc = rc < 0 ? rc : json_share(b, n->leaf_share[k]);
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "},\"runtime_internals\":");
	rc = rc < 0 ? rc
		    : json_share(b, n->leaf_share[MERGER_LEAF_GC] +
					    n->leaf_share[MERGER_LEAF_JIT_COMPILER] +
					    n->leaf_share[MERGER_LEAF_INTERPRETER]);
	rc = rc < 0 ? rc : dynbuf__printf(b, "},\"categories\":[");
	for (int c = 0; rc == 0 && c < MERGER_CAT_COUNT; c++) {
		rc = dynbuf__printf(b, "%s{\"category\":\"%s\",\"ebpf\":", c ? "," : "",
				    merger__category_name((enum merger_category)c));
		rc = rc < 0 ? rc : json_share(b, n->ebpf_category[c]);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"sdk\":");
		rc = rc < 0		    ? rc
		     : r->sdk_total_samples ? json_share(b, n->sdk_category[c])
					    : dynbuf__printf(b, "null");
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	}
	/* coverage */
	rc = rc < 0 ? rc : dynbuf__printf(b, "],\"coverage\":{\"merged\":");
	rc = rc < 0 ? rc
		    : json_share(b, n->ebpf_samples
					    ? (double)(n->ebpf_samples - n->uncovered - n->no_sdk) /
						      (double)n->ebpf_samples
					    : 0);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"spliced\":");
	rc = rc < 0 ? rc
		    : json_share(b, n->ebpf_samples ? (double)n->spliced / (double)n->ebpf_samples
						    : 0);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"ebpf_only\":");
	rc = rc < 0 ? rc
		    : json_share(b, n->ebpf_samples
					    ? 1 - (double)n->spliced / (double)n->ebpf_samples
					    : 0);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"reasons\":[");
	first = true;
	rc = rc < 0 ? rc
		    : json_reason(b, r, &first, "uncovered", NULL, n->uncovered,
				  "seconds no SDK profile covers");
	rc = rc < 0 ? rc
		    : json_reason(b, r, &first, "no_sdk", NULL, n->no_sdk,
				  "processes without SDK data");
	for (int c = 0; rc == 0 && c < MERGER_CAT_COUNT; c++)
		rc = json_reason(b, r, &first, "no_sdk_weight",
				 merger__category_name((enum merger_category)c), n->kept[c],
				 reason_text(r->runtime, (enum merger_category)c));
	rc = rc < 0 ? rc
		    : dynbuf__printf(b, "],\"broken\":%" PRId64 ",\"gc_jit_to_guest\":%" PRId64,
				     r->broken, r->to_guest);
	/* Go: matched, not spliced (docs/merger.md, "Go: the match") */
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"match\":");
	if (rc == 0 && r->runtime == RUNTIME_GO) {
		int64_t all = n->match_exact + n->match_partial + n->match_none;

		rc = dynbuf__printf(b, "{\"whole\":");
		rc = rc < 0 ? rc : json_share(b, all ? (double)n->match_exact / (double)all : 0);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"partial\":");
		rc = rc < 0 ? rc : json_share(b, all ? (double)n->match_partial / (double)all : 0);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"none\":");
		rc = rc < 0 ? rc : json_share(b, all ? (double)n->match_none / (double)all : 0);
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	} else if (rc == 0) {
		rc = dynbuf__printf(b, "null");
	}
	rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	/* top */
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"top\":[");
	for (size_t i = 0; rc == 0 && i < r->n_top; i++) {
		uint32_t id = r->top[i];

		rc = dynbuf__printf(b, "%s{\"name\":", i ? "," : "");
		rc = rc < 0 ? rc : dynbuf__json_str(b, strtab__get(&r->names, id));
		rc = rc < 0 ? rc
			    : dynbuf__printf(b, ",\"kind\":\"%s\",\"module\":",
					     kind_word(r->fns[id].kind));
		rc = rc < 0 ? rc
			    : dynbuf__json_str(b, r->fns[id].module ? strtab__get(&r->names,
										  r->fns[id].module)
								    : NULL);
		for (int v = 0; rc == 0 && v < V_COUNT; v++) {
			rc = dynbuf__printf(b, ",\"%s\":", view_names[v]);
			rc = rc < 0 ? rc : json_view_shares(b, r, id, (enum view)v);
		}
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	}
	/* blind spots */
	rc = rc < 0 ? rc : dynbuf__printf(b, "],\"blind_spots\":{\"ebpf_only\":[");
	for (size_t i = 0; rc == 0 && i < r->n_ebpf_only; i++) {
		const struct blind *x = &r->ebpf_only[i];

		rc = dynbuf__printf(b, "%s{\"name\":", i ? "," : "");
		rc = rc < 0 ? rc : dynbuf__json_str(b, strtab__get(&r->names, x->name));
		rc = rc < 0 ? rc
			    : dynbuf__printf(b, ",\"kind\":\"%s\",\"module\":",
					     kind_word(r->fns[x->name].kind));
		rc = rc < 0 ? rc
			    : dynbuf__json_str(
				      b, r->fns[x->name].module
						 ? strtab__get(&r->names, r->fns[x->name].module)
						 : NULL);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"share\":");
		rc = rc < 0 ? rc : json_share(b, share_of(r, V_EBPF, x->value));
		rc = rc < 0 ? rc
			    : dynbuf__printf(b, ",\"samples\":%" PRId64 ",\"sdk_caller\":",
					     r->in.period
						     ? (int64_t)(x->value / (double)r->in.period)
						     : 0);
		rc = rc < 0 ? rc
			    : dynbuf__json_str(b, x->caller ? strtab__get(&r->names, x->caller)
							    : NULL);
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"sdk_caller_share\":");
		rc = rc < 0 ? rc : json_share(b, x->caller_share);
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "],\"sdk_only\":[");
	for (size_t i = 0; rc == 0 && i < r->n_sdk_only; i++) {
		const struct blind *x = &r->sdk_only[i];

		rc = dynbuf__printf(b, "%s{\"name\":", i ? "," : "");
		rc = rc < 0 ? rc : dynbuf__json_str(b, strtab__get(&r->names, x->name));
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"share\":");
		rc = rc < 0 ? rc : json_share(b, share_of(r, V_SDK, x->value));
		rc = rc < 0 ? rc
			    : dynbuf__printf(
				      b, ",\"samples\":%" PRId64 ",\"ebpf_sees\":",
				      (int64_t)llround(x->value / (r->num.sdk_cpu && r->in.period
									   ? (double)r->in.period
									   : 1.0)));
		rc = rc < 0 ? rc : dynbuf__json_str(b, ebpf_sees(r->runtime));
		rc = rc < 0 ? rc : dynbuf__printf(b, ",\"ebpf_share\":");
		rc = rc < 0 ? rc : json_share(b, n->ebpf_category[MERGER_CAT_GUEST]);
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "]},\"warnings\":[");
	for (size_t i = 0; rc == 0 && i < r->n_warnings; i++) {
		rc = dynbuf__printf(b, "%s{\"code\":\"%s\",\"message\":", i ? "," : "",
				    r->warnings[i].code);
		rc = rc < 0 ? rc : dynbuf__json_str(b, r->warnings[i].message);
		rc = rc < 0 ? rc : dynbuf__putc(b, '}');
	}
	rc = rc < 0 ? rc : dynbuf__printf(b, "],\"flamegraphs\":{\"ebpf\":");
	rc = rc < 0 ? rc : json_tree(b, r, V_EBPF, false);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"sdk\":");
	rc = rc < 0 ? rc : json_tree(b, r, V_SDK, false);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"merged\":");
	rc = rc < 0 ? rc : json_tree(b, r, V_MERGED, false);
	rc = rc < 0 ? rc : dynbuf__printf(b, ",\"diff\":");
	rc = rc < 0 ? rc : json_tree(b, r, V_MERGED, true);
	return rc < 0 ? rc : dynbuf__printf(b, "}}");
}

int merger__report_json(const struct merger_report *r, struct dynbuf *out)
{
	int rc = json_body(r, out);

	return rc < 0 ? rc : dynbuf__putc(out, '\n');
}

/* ---- HTML ----------------------------------------------------------------------- */

int merger__report_html(const struct merger_report *r, struct dynbuf *out)
{
	const char *tpl = merger_report_html, *at = strstr(tpl, REPORT_PLACEHOLDER);
	struct dynbuf json;
	int rc;

	if (!at)
		return -EPROTO; /* the build embedded a template without its placeholder */
	dynbuf__init(&json, 0);
	rc = json_body(r, &json);
	rc = rc < 0 ? rc : dynbuf__append(out, tpl, (size_t)(at - tpl));
	/* '<' only occurs inside JSON strings: escaped, no "</script>" can
	 * close the element early */
	for (size_t i = 0; rc == 0 && i < json.len; i++)
		rc = json.data[i] == '<' ? dynbuf__append(out, "\\u003c", 6)
					 : dynbuf__putc(out, json.data[i]);
	rc = rc < 0 ? rc
		    : dynbuf__append(out, at + strlen(REPORT_PLACEHOLDER),
				     merger_report_html_len -
					     (size_t)(at + strlen(REPORT_PLACEHOLDER) - tpl));
	dynbuf__free(&json);
	return rc;
}

/* ---- Markdown ------------------------------------------------------------------- */

/* A cell: '|' and line breaks would break the table. */
static int md_cell(struct dynbuf *b, const char *s)
{
	int rc = 0;

	for (; s && *s && rc == 0; s++)
		rc = *s == '|'			? dynbuf__append(b, "\\|", 2)
		     : *s == '\n' || *s == '\r' ? dynbuf__putc(b, ' ')
						: dynbuf__putc(b, *s);
	return rc;
}

static int md_pct(struct dynbuf *b, double x)
{
	return dynbuf__printf(b, "%.1f %%", 100 * x);
}

static int md_shares(struct dynbuf *b, const struct merger_report *r, uint32_t id, enum view v)
{
	if (r->fns[id].cum[v] == 0 && r->fns[id].self[v] == 0)
		return dynbuf__printf(b, " — | — |");
	return dynbuf__printf(b, " %.1f %% | %.1f %% |", 100 * share_of(r, v, r->fns[id].self[v]),
			      100 * share_of(r, v, r->fns[id].cum[v]));
}

int merger__report_markdown(const struct merger_report *r, struct dynbuf *b)
{
	const struct merger_report_numbers *n = &r->num;
	double internals = n->leaf_share[MERGER_LEAF_GC] + n->leaf_share[MERGER_LEAF_JIT_COMPILER] +
			   n->leaf_share[MERGER_LEAF_INTERPRETER];
	int rc;

	rc = dynbuf__printf(b, "# ");
	rc = rc < 0 ? rc : md_cell(b, r->in.title ? r->in.title : "braid report");
	rc = rc < 0 ? rc : dynbuf__printf(b, "\n\nThe eBPF view against the SDK's view. Source: ");
	rc = rc < 0 ? rc : md_cell(b, r->in.source ? r->in.source : "-");
	rc = rc < 0 ? rc : dynbuf__printf(b, "; runtime %s.\n", profile__runtime_name(r->runtime));
	if (rc == 0 && r->in.from_ns && r->in.until_ns) {
		rc = dynbuf__printf(b, "Range: ");
		rc = rc < 0 ? rc : plain_time(b, r->in.from_ns);
		rc = rc < 0 ? rc : dynbuf__printf(b, " to ");
		rc = rc < 0 ? rc : plain_time(b, r->in.until_ns);
		rc = rc < 0 ? rc
			    : dynbuf__printf(b, " (%.1f s).\n",
					     (double)(r->in.until_ns - r->in.from_ns) / 1e9);
	}
	if (rc == 0 && r->n_warnings) {
		rc = dynbuf__printf(b, "\n## Warnings\n\n");
		for (size_t i = 0; rc == 0 && i < r->n_warnings; i++) {
			rc = dynbuf__printf(b, "- **%s**: ", r->warnings[i].code);
			rc = rc < 0 ? rc : md_cell(b, r->warnings[i].message);
			rc = rc < 0 ? rc : dynbuf__putc(b, '\n');
		}
	}
	rc = rc < 0 ? rc
		    : dynbuf__printf(
			      b,
			      "\n## Summary\n\n| | eBPF | SDK | merged |\n|---|---|---|---|\n"
			      "| samples | %" PRId64 " | %" PRId64 " | %" PRId64 " |\n",
			      n->ebpf_samples, n->sdk_samples, n->merged_samples);
	rc = rc < 0 ? rc : dynbuf__printf(b, "| CPU | %.3f s | ", (double)n->ebpf_value / 1e9);
	rc = rc < 0 ? rc
	     : n->sdk_cpu
		     ? dynbuf__printf(b, "%.3f s (%.2fx) | ", (double)n->sdk_value / 1e9,
				      n->ebpf_value ? (double)n->sdk_value / (double)n->ebpf_value
						    : 0)
		     : dynbuf__printf(b, "%s | ", r->sdk_total_samples ? "not CPU time" : "—");
	rc = rc < 0 ? rc : dynbuf__printf(b, "%.3f s |\n", (double)n->merged_value / 1e9);
	rc = rc < 0 ? rc
		    : dynbuf__printf(b, "| rate | %.0f Hz | ",
				     r->in.period ? 1e9 / (double)r->in.period : 0);
	rc = rc < 0 ? rc
	     : r->in.sdk_sample_rate > 0
		     ? dynbuf__printf(b, "%" PRId64 " Hz |  |\n", r->in.sdk_sample_rate)
		     : dynbuf__printf(b, "— |  |\n");
	rc = rc < 0 ? rc
		    : dynbuf__printf(
			      b,
			      "\nWhere the eBPF CPU goes, by the leaf frame: kernel "
			      "%.1f %%, runtime internals %.1f %% (GC %.1f %%, JIT "
			      "compiler %.1f %%, interpreter %.1f %%), native libraries "
			      "%.1f %%, guest code %.1f %%, idle %.1f %%, unknown %.1f %%.\n",
			      100 * n->leaf_share[MERGER_LEAF_KERNEL], 100 * internals,
			      100 * n->leaf_share[MERGER_LEAF_GC],
			      100 * n->leaf_share[MERGER_LEAF_JIT_COMPILER],
			      100 * n->leaf_share[MERGER_LEAF_INTERPRETER],
			      100 * n->leaf_share[MERGER_LEAF_NATIVE],
			      100 * n->leaf_share[MERGER_LEAF_GUEST],
			      100 * n->leaf_share[MERGER_LEAF_IDLE],
			      100 * n->leaf_share[MERGER_LEAF_UNKNOWN]);
	rc = rc < 0 ? rc
		    : dynbuf__printf(
			      b, "\n## Categories\n\n| category | eBPF | SDK |\n|---|---|---|\n");
	for (int c = 0; rc == 0 && c < MERGER_CAT_COUNT; c++) {
		rc = dynbuf__printf(b, "| %s | ", merger__category_name((enum merger_category)c));
		rc = rc < 0 ? rc : md_pct(b, n->ebpf_category[c]);
		rc = rc < 0 ? rc : dynbuf__printf(b, " | ");
		rc = rc < 0		    ? rc
		     : r->sdk_total_samples ? md_pct(b, n->sdk_category[c])
					    : dynbuf__printf(b, "—");
		rc = rc < 0 ? rc : dynbuf__printf(b, " |\n");
	}
	if (rc == 0 && r->runtime == RUNTIME_GO) {
		int64_t all = n->match_exact + n->match_partial + n->match_none;

		rc = dynbuf__printf(
			b,
			"\n## Match\n\nGo is matched, not spliced: eBPF names Go's code itself, "
			"and "
			"each eBPF stack takes the labels of the SDK stacks that agree with it "
			"from "
			"the root. Of the eBPF samples the SDK covers, %.1f %% agree with an SDK "
			"stack "
			"root to leaf, %.1f %% down to some frame (the kernel's, cgo's or a frame "
			"the unwinding missed below it), %.1f %% not at all.\n",
			all ? 100.0 * (double)n->match_exact / (double)all : 0,
			all ? 100.0 * (double)n->match_partial / (double)all : 0,
			all ? 100.0 * (double)n->match_none / (double)all : 0);
	}
	rc = rc < 0 ? rc
		    : dynbuf__printf(
			      b,
			      "\n## Splice coverage\n\n%.1f %% of the eBPF samples were given "
			      "SDK %s; %.1f %% kept their eBPF frames alone:\n\n",
			      n->ebpf_samples ? 100.0 * (double)n->spliced / (double)n->ebpf_samples
					      : 0,
			      r->runtime == RUNTIME_GO ? "labels" : "frames",
			      n->ebpf_samples
				      ? 100.0 - 100.0 * (double)n->spliced / (double)n->ebpf_samples
				      : 0);
	if (rc == 0 && n->uncovered)
		rc = dynbuf__printf(b, "- %" PRId64 " samples: seconds no SDK profile covers\n",
				    n->uncovered);
	if (rc == 0 && n->no_sdk)
		rc = dynbuf__printf(b, "- %" PRId64 " samples: processes without SDK data\n",
				    n->no_sdk);
	for (int c = 0; rc == 0 && c < MERGER_CAT_COUNT; c++)
		if (n->kept[c])
			rc = dynbuf__printf(b, "- %" PRId64 " samples: %s\n", n->kept[c],
					    reason_text(r->runtime, (enum merger_category)c));
	rc = rc < 0 ? rc
		    : dynbuf__printf(b, "\n## Top functions\n\n| function | kind | eBPF self | "
					"eBPF total | SDK self | SDK total | merged self | merged "
					"total |\n|---|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; rc == 0 && i < r->n_top; i++) {
		uint32_t id = r->top[i];

		rc = dynbuf__printf(b, "| ");
		rc = rc < 0 ? rc : md_cell(b, strtab__get(&r->names, id));
		rc = rc < 0 ? rc : dynbuf__printf(b, " | %s |", kind_word(r->fns[id].kind));
		for (int v = 0; rc == 0 && v < V_COUNT; v++)
			rc = md_shares(b, r, id, (enum view)v);
		rc = rc < 0 ? rc : dynbuf__putc(b, '\n');
	}
	rc = rc < 0 ? rc
		    : dynbuf__printf(b,
				     "\n## Blind spots\n\n### Only eBPF sees\n\nNative, "
				     "kernel and runtime code the SDK cannot see, and the SDK "
				     "function it shows that time as:\n\n| function | kind | "
				     "share of eBPF CPU | in the SDK's view, under |\n|---|---|---|"
				     "---|\n");
	for (size_t i = 0; rc == 0 && i < r->n_ebpf_only; i++) {
		const struct blind *x = &r->ebpf_only[i];

		rc = dynbuf__printf(b, "| ");
		rc = rc < 0 ? rc : md_cell(b, strtab__get(&r->names, x->name));
		rc = rc < 0 ? rc : dynbuf__printf(b, " | %s | ", kind_word(r->fns[x->name].kind));
		rc = rc < 0 ? rc : md_pct(b, share_of(r, V_EBPF, x->value));
		rc = rc < 0 ? rc : dynbuf__printf(b, " | ");
		if (rc == 0 && x->caller) {
			rc = md_cell(b, strtab__get(&r->names, x->caller));
			rc = rc < 0 ? rc : dynbuf__printf(b, " (%.0f %%)", 100 * x->caller_share);
		} else if (rc == 0) {
			rc = dynbuf__printf(b, "—");
		}
		rc = rc < 0 ? rc : dynbuf__printf(b, " |\n");
	}
	rc = rc < 0 ? rc
		    : dynbuf__printf(b,
				     "\n### Only the SDK sees\n\nGuest functions the eBPF "
				     "view shows only as %s (%.1f %% of its CPU):\n\n| function "
				     "| share of SDK |\n|---|---|\n",
				     ebpf_sees(r->runtime),
				     100 * n->ebpf_category[MERGER_CAT_GUEST]);
	for (size_t i = 0; rc == 0 && i < r->n_sdk_only; i++) {
		rc = dynbuf__printf(b, "| ");
		rc = rc < 0 ? rc : md_cell(b, strtab__get(&r->names, r->sdk_only[i].name));
		rc = rc < 0 ? rc : dynbuf__printf(b, " | ");
		rc = rc < 0 ? rc : md_pct(b, share_of(r, V_SDK, r->sdk_only[i].value));
		rc = rc < 0 ? rc : dynbuf__printf(b, " |\n");
	}
	return rc < 0 ? rc
		      : dynbuf__printf(b, "\nFlame graphs of the three views and their "
					  "difference: `braid report --format html`.\n");
}

/* ---- the format, by name ---------------------------------------------------------- */

int merger__report_format_parse(const char *s, struct errbuf *err, enum merger_report_format *ret)
{
	if (!strcmp(s, "html"))
		*ret = MERGER_REPORT_HTML;
	else if (!strcmp(s, "md") || !strcmp(s, "markdown"))
		*ret = MERGER_REPORT_MD;
	else if (!strcmp(s, "json"))
		*ret = MERGER_REPORT_JSON;
	else
		return errbuf__set(err, -EINVAL, "takes html, md or json, not '%s'", s);
	return 0;
}

int merger__report_write(const struct merger_report *r, enum merger_report_format f,
			 struct dynbuf *out, const char **ret_type)
{
	int rc;

	switch (f) {
	case MERGER_REPORT_MD:
		rc = merger__report_markdown(r, out);
		if (rc == 0 && ret_type)
			*ret_type = "text/markdown; charset=utf-8";
		return rc;
	case MERGER_REPORT_JSON:
		rc = merger__report_json(r, out);
		if (rc == 0 && ret_type)
			*ret_type = "application/json";
		return rc;
	default:
		rc = merger__report_html(r, out);
		if (rc == 0 && ret_type)
			*ret_type = "text/html; charset=utf-8";
		return rc;
	}
}
