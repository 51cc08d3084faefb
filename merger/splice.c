/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: the splice. One process's eBPF stacks and one SDK profile become
 * merged samples: each eBPF stack keeps its native prefix, native suffix and
 * kernel frames, and its interpreter region is replaced by the frames of the
 * SDK stacks of the same category, shared in proportion to their weight.
 *
 * The sharing is an exact integer apportionment. Per category, the N eBPF
 * samples are dealt to the SDK stacks by largest remainder (Hamilton): stack
 * i gets floor(N w_i / W) slots, and the slots left go to the largest
 * remainders (ties: the SDK stack seen first). The slots are then laid out in
 * a stride schedule (stack i's j-th slot sits at (2j + 1) / (2 a_i) of the
 * way) and the eBPF stacks take them in input order, so every eBPF stack, not
 * only the whole category, is shared in proportion. Apportioning each eBPF
 * stack alone would hand every single-sample stack to the heaviest SDK stack.
 *
 * Native calls (Node.js): V8's profiler shows a native function that JS
 * called through the API (crypto's job `run`, most bindings) as a file-less
 * leaf frame (":run:0") under its JS caller. Guest time splits in two pools
 * then: eBPF stacks whose native suffix went through V8's API call
 * (Builtin_HandleApiCall, FunctionCallbackArguments::Call) are shared among
 * the SDK stacks ending in such a leaf, the rest among the other guest
 * stacks; a pool without weight on the SDK side lends the other one its
 * samples. Without it the crypto work under hashPassword is spread over
 * every JS function by its JS weight.
 *
 * Threads: where the SDK labels its samples with the threads the eBPF samples
 * name too (threads.c), every category and pool is kept per thread, and a
 * thread's eBPF samples are shared among its own SDK stacks; a pool that
 * thread's SDK stacks leave empty falls back to the unmatched group's.
 *
 * Remembered stacks (Python): the merge loop passes the stacks earlier
 * profiles of the process showed calling native code by name (reserves.c);
 * they join a copy of the SDK profile, marked, and weigh only in the native
 * call pools this profile's own stacks leave empty. The splice leaves the
 * next profile's reserve in reserve_out (keep_reserve).
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- frames in a profile ------------------------------------------------- */

int merger__add_frame(struct profile *p, const struct frame *f, uint32_t *ret_location)
{
	struct profile_mapping m = {0};
	struct profile_location l = {0};
	struct profile_line line = {0};
	const char *name = f->name;
	int r;

	/* an address in no mapping (a broken unwind, usually) has nothing
	 * worth showing but the fact, as perf shows it */
	if ((!name || !*name) && f->kind == FRAME_UNKNOWN)
		name = "[unknown]";
	/* Pyroscope removes a location with neither a line nor an address, and
	 * with it every sample whose stack goes through it (sanitizeProfile in
	 * its pkg/pprof): JIT code that no perf map names has only its module
	 * ([jit], offset 0), so that is its name. */
	if ((!name || !*name) && f->offset == 0)
		name = f->module && *f->module ? f->module : "[unknown]";
	if (f->module && *f->module) {
		r = profile__intern_cstr(p, f->module, &m.filename);
		if (r < 0)
			return r;
		if (name && *name)
			m.flags = PROFILE_MAPPING_HAS_FUNCTIONS;
		r = profile__add_mapping(p, &m, &l.mapping);
		if (r < 0)
			return r;
	}
	l.kind = f->kind;
	if (name && *name) {
		struct profile_function fn = {0};

		r = profile__intern_cstr(p, name, &fn.name);
		if (r < 0)
			return r;
		fn.system_name = fn.name;
		r = profile__add_function(p, &fn, &line.function);
		if (r < 0)
			return r;
		l.lines = &line;
		l.n_lines = 1;
	} else {
		l.address = f->offset;
	}
	return profile__add_location(p, &l, ret_location);
}

int merger__frame_of_location(const struct profile *p, uint32_t location, struct frame *ret)
{
	struct frame f = {0};
	struct profile_location l;

	if (profile__location(p, location, &l) < 0)
		return -ENOENT;
	f.kind = l.kind;
	if (l.mapping) {
		const struct profile_mapping *m = profile__mapping(p, l.mapping);

		if (m && m->filename)
			f.module = profile__str(p, m->filename);
	}
	if (l.n_lines) {
		/* the last line is the function the code belongs to */
		const struct profile_function *fn =
			profile__function(p, l.lines[l.n_lines - 1].function);

		if (fn)
			f.name = profile__str(p, fn->name);
		/* the stand-in name merger__add_frame gives a frame without one */
		if (f.name && f.module && strcmp(f.name, f.module) == 0)
			f.name = NULL;
	} else {
		f.offset = l.address;
	}
	*ret = f;
	return 0;
}

struct profile *merger__new_profile(int64_t period, int64_t from_ns, int64_t until_ns)
{
	struct profile *p = profile__new();

	if (!p)
		return NULL;
	if (profile__add_sample_type(p, "cpu", "nanoseconds") < 0 ||
	    profile__set_period(p, "cpu", "nanoseconds", period) < 0) {
		profile__free(p);
		return NULL;
	}
	if (from_ns || until_ns)
		profile__set_time(p, from_ns, until_ns > from_ns ? until_ns - from_ns : 0);
	return p;
}

int merger__sdk_weight_type(const struct profile *sdk)
{
	static const char *const prefer[] = {"cpu", "samples", "wall"};
	int i;

	for (size_t k = 0; k < sizeof(prefer) / sizeof(prefer[0]); k++) {
		i = profile__find_sample_type(sdk, prefer[k]);
		if (i >= 0)
			return i;
	}
	return profile__default_sample_type(sdk);
}

/* ---- a cache of eBPF frames -> output locations ---------------------------- */

/* Keyed by the frame's string pointers, not their content: callers pass
 * frames whose strings come from one table (the store's copy, a decoded
 * profile), so equal frames share pointers and a lookup is a few integer
 * compares. Equal content behind other pointers only costs a second entry
 * (the profile deduplicates the location itself). */
struct fentry {
	const char *name, *module;
	uint64_t offset;
	uint32_t kind;
	uint32_t loc;
};

struct fcache {
	struct fentry *v;
	size_t n, cap;
	struct idtab index; /* ids: positions in v + 1 */
};

static uint32_t fhash(const struct frame *f)
{
	/* one mix of a cheap combination: this runs for every frame */
	return (uint32_t)util__hash_u64((uint64_t)(uintptr_t)f->name * 0x9e3779b97f4a7c15ULL +
					(uint64_t)(uintptr_t)f->module * 0xc2b2ae3d27d4eb4fULL +
					f->offset * 0x165667b19e3779f9ULL + (uint64_t)f->kind);
}

struct fkey {
	const struct fentry *v;
	const struct frame *f;
};

static bool fentry_eq(const void *ctx, uint32_t id)
{
	const struct fkey *k = ctx;
	const struct fentry *e = &k->v[id - 1];

	return e->name == k->f->name && e->module == k->f->module && e->offset == k->f->offset &&
	       e->kind == (uint32_t)k->f->kind;
}

static int fcache_location(struct fcache *c, struct profile *out, const struct frame *f,
			   uint32_t *ret)
{
	struct fkey k = {c->v, f};
	uint32_t h = fhash(f), id;
	size_t slot;
	int r;

	if ((r = idtab__reserve(&c->index)) < 0)
		return r;
	id = idtab__find(&c->index, h, fentry_eq, &k, &slot);
	if (id) {
		*ret = c->v[id - 1].loc;
		return 0;
	}
	if (c->n >= UINT32_MAX - 1)
		return -E2BIG;
	r = util__grow((void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v));
	if (r < 0)
		return r;
	r = merger__add_frame(out, f, ret);
	if (r < 0)
		return r;
	c->v[c->n] = (struct fentry){f->name, f->module, f->offset, (uint32_t)f->kind, *ret};
	idtab__insert_at(&c->index, slot, h, (uint32_t)++c->n);
	return 0;
}

static void fcache_free(struct fcache *c)
{
	free(c->v);
	idtab__free(&c->index);
}

/* ---- the SDK side ---------------------------------------------------------- */

/* The pools samples are shared in: one per category, and guest code's
 * native calls (see the top of the file). */
#define POOL_NATIVE_CALL MERGER_CAT_COUNT
#define N_POOLS		 (MERGER_CAT_COUNT + 1)

/* The frames through which V8 calls a native function from JS: the generic
 * path (Builtin_HandleApiCall, then FunctionCallbackArguments::Call) and the
 * one optimized code takes (Builtins_CallApiCallback*, then
 * InvokeFunctionCallback). Checked on every frame of a native suffix, so
 * the first bytes decide for nearly all. */
static bool api_call_frame(const char *name)
{
	static const char ns[] = "v8::internal::";

	if (!name)
		return false;
	if (name[0] == 'B')
		return strncmp(name, "Builtins_CallApiCallback", 24) == 0;
	if (name[0] != 'v' || strncmp(name, ns, sizeof(ns) - 1) != 0)
		return false;
	name += sizeof(ns) - 1;
	switch (name[0]) {
	case 'B':
		return strcmp(name, "Builtin_HandleApiCall") == 0;
	case 'F':
		return strcmp(name, "FunctionCallbackArguments::Call") == 0;
	case 'I':
		return strncmp(name, "InvokeFunctionCallback", 22) == 0;
	default:
		return false;
	}
}

/* One SDK stack with weight, as output locations (leaf first, pseudo root
 * frames left out). */
struct sdk_entry {
	size_t locs_off, n_locs;
	size_t sample; /* its sample in the SDK profile (sp->sdk) */
	bool reserve;  /* remembered from an earlier profile (merger_splice_input) */
	int64_t weight;
	int64_t got;	 /* slots taken by the current eBPF stack */
	uint32_t group;	 /* its thread group (threads.c) */
	uint32_t labels; /* its merged samples' label set in the output */
	int pool;	 /* its pool in the group: a category, POOL_NATIVE_CALL */
	uint32_t calls;	 /* what its line calls by name (calls.c), 0: nothing known */
};

struct category {
	size_t *entries; /* indexes into splice.entries */
	size_t n, cap;
	bool remembered; /* its entries are remembered ones (place_entry) */
	__int128 weight;
	int64_t ebpf;		    /* eBPF samples */
	struct merger_apportion ap; /* over entries[0 .. n) */
};

struct splice {
	const struct merger_splice_input *in;
	const struct profile *sdk; /* in->sdk, or `work`: it and in->reserve */
	struct profile *work;
	uint32_t reserve_key; /* MERGER_RESERVE_LABEL's string in sdk, 0 none */
	struct profile *out;
	struct fcache frames;
	uint32_t *sloc_map, *sfunc_map; /* SDK location / function id -> out id */
	size_t n_sloc, n_sfunc;
	struct sdk_entry *entries;
	size_t n_entries, cap_entries;
	uint32_t *pool; /* every entry's locations */
	size_t n_pool, cap_pool;
	struct category *cats;	    /* `stride` pools per thread group (threads.c) */
	size_t n_groups, stride;    /* stride: N_POOLS + a pool per native call key */
	struct merger_calls *calls; /* native calls by name (calls.c), NULL: none */
	int *stack_key;		    /* per eBPF stack: its native call key, -1 none */
	struct merger_threads *threads;
	struct merger_class *classes;
	size_t *pool_of;	/* per eBPF stack: the pool sharing it (index in cats) */
	size_t *n_kernel;	/* per eBPF stack: its leading kernel frames */
	uint32_t *locs, *stack; /* scratch */
	size_t cap_locs, cap_stack;
	struct profile_line *lines;
	size_t cap_lines;
	const char **names;
	size_t cap_names;
	size_t *touched;
};

static int sdk_function(struct splice *sp, uint32_t id, uint32_t *ret)
{
	const struct profile *sdk = sp->sdk;
	const struct profile_function *f;
	struct profile_function nf = {0};
	int r;

	if (id < sp->n_sfunc && sp->sfunc_map[id]) {
		*ret = sp->sfunc_map[id];
		return 0;
	}
	f = profile__function(sdk, id);
	if (!f || id >= sp->n_sfunc)
		return -EINVAL;
	r = profile__intern(sp->out, profile__str(sdk, f->name), profile__strlen(sdk, f->name),
			    &nf.name);
	if (r == 0)
		r = profile__intern(sp->out, profile__str(sdk, f->system_name),
				    profile__strlen(sdk, f->system_name), &nf.system_name);
	if (r == 0)
		r = profile__intern(sp->out, profile__str(sdk, f->filename),
				    profile__strlen(sdk, f->filename), &nf.filename);
	if (r < 0)
		return r;
	nf.start_line = f->start_line;
	r = profile__add_function(sp->out, &nf, ret);
	if (r == 0)
		sp->sfunc_map[id] = *ret;
	return r;
}

/* The output location for SDK location id: its lines, kind interpreted. */
static int sdk_location(struct splice *sp, uint32_t id, uint32_t *ret)
{
	struct profile_location l, nl = {0};
	int r;

	if (id < sp->n_sloc && sp->sloc_map[id]) {
		*ret = sp->sloc_map[id];
		return 0;
	}
	if (id >= sp->n_sloc || profile__location(sp->sdk, id, &l) < 0)
		return -EINVAL;
	r = util__grow((void **)&sp->lines, &sp->cap_lines, l.n_lines + 1, sizeof(*sp->lines));
	if (r < 0)
		return r;
	for (uint32_t k = 0; k < l.n_lines; k++) {
		sp->lines[k] = l.lines[k];
		r = sdk_function(sp, l.lines[k].function, &sp->lines[k].function);
		if (r < 0)
			return r;
	}
	nl.kind = FRAME_INTERPRETED;
	nl.n_lines = l.n_lines;
	nl.lines = sp->lines;
	nl.address = l.n_lines ? 0 : l.address;
	r = profile__add_location(sp->out, &nl, ret);
	if (r == 0)
		sp->sloc_map[id] = *ret;
	return r;
}

const char *merger__sdk_function_name(const struct profile *sdk, uint32_t id)
{
	struct profile_location l;
	const struct profile_function *f;

	if (profile__location(sdk, id, &l) < 0 || !l.n_lines)
		return NULL;
	f = profile__function(sdk, l.lines[l.n_lines - 1].function);
	if (!f)
		return NULL;
	if (f->system_name && profile__strlen(sdk, f->system_name))
		return profile__str(sdk, f->system_name);
	return profile__str(sdk, f->name);
}

/* A pool of a thread group. */
static struct category *cat_of(struct splice *sp, uint32_t group, int pool)
{
	return &sp->cats[(size_t)group * sp->stride + (size_t)pool];
}

static int cat_add(struct category *c, size_t entry)
{
	int r = util__grow((void **)&c->entries, &c->cap, c->n + 1, sizeof(*c->entries));

	if (r == 0)
		c->entries[c->n++] = entry;
	return r;
}

/* True when an SDK location is a native function V8 shows under its JS
 * caller: a frame with a name but no file (":run:0"). */
static bool sdk_native_leaf(const struct profile *sdk, uint32_t id)
{
	struct profile_location l;
	const struct profile_function *f;

	if (profile__location(sdk, id, &l) < 0 || !l.n_lines)
		return false;
	f = profile__function(sdk, l.lines[0].function);
	return f && profile__strlen(sdk, f->filename) == 0 &&
	       (profile__strlen(sdk, f->system_name) || profile__strlen(sdk, f->name));
}

/* What the line of SDK location id calls by name (calls.c), when its file
 * can be read: *ret 0 else. */
static int sdk_line_calls(struct splice *sp, uint32_t id, uint32_t *ret)
{
	const struct profile *sdk = sp->sdk;
	const struct profile_function *f;
	struct profile_location l;
	char file[4096];
	size_t len;

	*ret = 0;
	if (profile__location(sdk, id, &l) < 0 || !l.n_lines || l.lines[0].line <= 0)
		return 0;
	f = profile__function(sdk, l.lines[0].function);
	if (!f || !(len = profile__strlen(sdk, f->filename)) || len >= sizeof(file))
		return 0;
	memcpy(file, profile__str(sdk, f->filename), len);
	file[len] = '\0';
	return merger_calls__add_line(
		sp->calls, merger_source__line(sp->in->source, file, l.lines[0].line), ret);
}

static enum frame_kind sdk_kind(const struct profile *sdk, uint32_t id)
{
	struct profile_location l;

	return profile__location(sdk, id, &l) < 0 ? FRAME_UNKNOWN : l.kind;
}

/* A native function async-profiler names: without the library it puts
 * first as a class ("libc.so.6.__memmove_avx_unaligned_erms",
 * "libjvm.so.OptoRuntime::new_array_C"); NULL for a library without a
 * symbol ("./usr/lib/x86_64-linux-gnu/libz.so.1.2.13"). */
static const char *native_function(const char *name)
{
	const char *so = strstr(name, ".so"), *fn = name;

	if (so) {
		/* past the library: ".so." or ".so.N.N." then the function */
		fn = so + 3;
		while (*fn == '.' && fn[1] >= '0' && fn[1] <= '9') {
			fn++;
			while (*fn >= '0' && *fn <= '9')
				fn++;
		}
		return *fn == '.' && fn[1] ? fn + 1 : NULL;
	}
	return *fn == '.' ? fn + 1 : fn; /* no library: ".jint_disjoint_arraycopy" */
}

/* The JNI function of Java method "pkg/Cls.method" (JNI's short name:
 * '/' is '_', '_' is "_1", '$' is "_00024"), into buf; 0 when the name has
 * other characters or is too long. */
static size_t jni_name(const char *java, char *buf, size_t size)
{
	const char *dot = strrchr(java, '.');
	size_t n = 0;

	if (!dot || dot == java || size < 8)
		return 0;
	memcpy(buf, "Java_", 5);
	n = 5;
	for (const char *p = java; *p; p++) {
		const char *put = NULL;
		char one[2] = {*p, 0};

		if (*p == '/' || p == dot)
			put = "_";
		else if (*p == '_')
			put = "_1";
		else if (*p == '$')
			put = "_00024";
		else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			 (*p >= '0' && *p <= '9'))
			put = one;
		else
			return 0;
		if (n + strlen(put) >= size)
			return 0;
		memcpy(buf + n, put, strlen(put));
		n += strlen(put);
	}
	buf[n] = '\0';
	return n;
}

/* What an async-profiler stack calls: its Java leaf's JNI function and its
 * native leaf; *ret 0 when neither has a name. */
static int sdk_native_call(struct splice *sp, const char *java_leaf, const char *native_leaf,
			   uint32_t *ret)
{
	char jni[128];
	const char *names[2];
	size_t lens[2], n = 0;

	*ret = 0;
	if (java_leaf && (lens[n] = jni_name(java_leaf, jni, sizeof(jni))))
		names[n++] = jni;
	if (native_leaf && (names[n] = native_function(native_leaf)))
		lens[n] = strcspn(names[n], "("), n++;
	return merger_calls__add_names(sp->calls, names, lens, n, ret);
}

/* One SDK stack's weight in one thread group. */
struct stack_weight {
	uint32_t stack, group, labels; /* labels: the sample's label set in the SDK profile */
	int64_t weight;
	size_t sample;
};

/* Whether SDK label set `set` marks a remembered sample. */
static bool reserve_set(const struct splice *sp, uint32_t set)
{
	const struct profile_label *ls;
	size_t n;

	if (!sp->reserve_key || !set)
		return false;
	n = profile__labels(sp->sdk, set, &ls);
	for (size_t i = 0; i < n; i++)
		if (ls[i].key == sp->reserve_key)
			return true;
	return false;
}

static int cmp_stack_weight(const void *a, const void *b)
{
	const struct stack_weight *x = a, *y = b;

	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return (x->labels > y->labels) - (x->labels < y->labels);
}

int merger__out_labels(struct profile *out, uint32_t base_set, const struct profile *sdk,
		       uint32_t set, uint32_t *ret)
{
	const struct profile_label *base, *ls;
	size_t nb = profile__labels(out, base_set, &base);
	size_t ns = profile__labels(sdk, set, &ls), n = 0;
	struct profile_label *all;
	int r = 0;

	if (!ns) {
		*ret = base_set;
		return 0;
	}
	all = calloc(nb + ns, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < nb; i++)
		all[n++] = base[i];
	for (size_t i = 0; i < ns && r == 0; i++) {
		const char *key = profile__str(sdk, ls[i].key);
		struct profile_label l = {.num = ls[i].num};

		if (!key || strcmp(key, MERGER_OS_THREAD_LABEL) == 0 ||
		    strcmp(key, MERGER_RESERVE_LABEL) == 0)
			continue;
		r = profile__intern(out, key, profile__strlen(sdk, ls[i].key), &l.key);
		if (r == 0 && ls[i].str)
			r = profile__intern(out, profile__str(sdk, ls[i].str),
					    profile__strlen(sdk, ls[i].str), &l.str);
		if (r == 0 && ls[i].num_unit)
			r = profile__intern(out, profile__str(sdk, ls[i].num_unit),
					    profile__strlen(sdk, ls[i].num_unit), &l.num_unit);
		all[n++] = l;
	}
	if (r == 0)
		r = profile__add_labels(out, all, n, ret);
	free(all);
	return r;
}

/* Reads the SDK profile: each (stack, thread group, label set) with positive
 * weight becomes an entry of its category's pool in that group, whose merged
 * samples carry that label set. */
static int sdk_prepare(struct splice *sp, struct merger_splice_stats *st)
{
	const struct profile *sdk = sp->sdk;
	size_t n_stacks, n_samples, n_ws = 0;
	struct stack_weight *ws = NULL;
	bool native_leaf = merger_sdk_native_leaf(sp->in->runtime);
	int type, r = 0;

	type = merger__sdk_weight_type(sdk);
	st->sdk_type = type;
	if (type < 0)
		return 0;
	n_stacks = profile__n_stacks(sdk);
	n_samples = profile__n_samples(sdk);
	ws = malloc((n_samples + 1) * sizeof(*ws));
	sp->n_sloc = profile__n_locations(sdk) + 1;
	sp->n_sfunc = profile__n_functions(sdk) + 1;
	sp->sloc_map = calloc(sp->n_sloc, sizeof(*sp->sloc_map));
	sp->sfunc_map = calloc(sp->n_sfunc, sizeof(*sp->sfunc_map));
	if (!ws || !sp->sloc_map || !sp->sfunc_map) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(sdk, i);
		int64_t v = s.values[type];

		if (v <= 0 || s.stack == 0 || s.stack > n_stacks)
			continue;
		ws[n_ws++] = (struct stack_weight){
			.stack = s.stack,
			.group = merger_threads__sdk_group(sp->threads, s.labels),
			.labels = s.labels,
			.weight = v,
			.sample = i,
		};
	}
	/* by stack, group, then labels: the entries' order, which breaks ties */
	qsort(ws, n_ws, sizeof(*ws), cmp_stack_weight);
	for (size_t i = 0, j; i < n_ws; i = j) {
		uint32_t id = ws[i].stack, g = ws[i].group, lset = ws[i].labels;
		int64_t weight = 0;
		const uint32_t *locs;
		size_t depth, skip = 0, n, lead;
		enum merger_category c;
		const char *call = NULL, *java_leaf = NULL;
		bool reserve = reserve_set(sp, lset);
		uint32_t reserve_calls;
		int pool;
		struct sdk_entry *e;

		for (j = i;
		     j < n_ws && ws[j].stack == id && ws[j].group == g && ws[j].labels == lset; j++)
			if (__builtin_add_overflow(weight, ws[j].weight, &weight)) {
				r = -EOVERFLOW;
				goto cleanup;
			}
		depth = profile__stack(sdk, id, &locs);
		lead = 0;
		if (native_leaf) {
			/* async-profiler's native frames leafward of the Java ones:
			 * eBPF has them, and the kernel's; a stack without Java
			 * frames is another thread's, which eBPF sees whole */
			while (lead < depth && sdk_kind(sdk, locs[lead]) != FRAME_INTERPRETED)
				lead++;
			if (lead == depth) {
				st->sdk_native_only += (double)weight;
				continue;
			}
			/* what it called: its native leaf, under its Java leaf */
			call = lead ? merger__sdk_function_name(sdk, locs[0]) : NULL;
			java_leaf = lead ? merger__sdk_function_name(sdk, locs[lead]) : NULL;
			locs += lead;
			depth -= lead;
		}
		r = util__grow((void **)&sp->names, &sp->cap_names, depth + 1, sizeof(*sp->names));
		if (r < 0)
			goto cleanup;
		for (size_t k = 0; k < depth; k++)
			sp->names[k] = merger__sdk_function_name(sdk, locs[k]);
		c = merger__classify_sdk(sp->in->runtime, sp->names, depth, &skip);
		if ((unsigned)c >= MERGER_CAT_COUNT)
			c = MERGER_CAT_GUEST;
		pool = c;
		if (c == MERGER_CAT_GUEST && sp->in->runtime == RUNTIME_NODE && depth > skip &&
		    sdk_native_leaf(sdk, locs[0]))
			pool = POOL_NATIVE_CALL;
		n = skip < depth ? depth - skip : 0;
		/* a remembered stack only stands for the native call its line makes */
		reserve_calls = 0;
		if (reserve) {
			if (pool != MERGER_CAT_GUEST || !n || !sp->calls || native_leaf)
				continue;
			r = sdk_line_calls(sp, locs[0], &reserve_calls);
			if (r < 0)
				goto cleanup;
			if (!reserve_calls)
				continue;
		}
		r = util__grow((void **)&sp->entries, &sp->cap_entries, sp->n_entries + 1,
			       sizeof(*sp->entries));
		if (r == 0)
			r = util__grow((void **)&sp->pool, &sp->cap_pool, sp->n_pool + n + 1,
				       sizeof(*sp->pool));
		if (r < 0)
			goto cleanup;
		e = &sp->entries[sp->n_entries];
		*e = (struct sdk_entry){
			.locs_off = sp->n_pool,
			.n_locs = n,
			.weight = weight,
			.sample = ws[i].sample,
			.reserve = reserve,
		};
		for (size_t k = 0; k < n; k++) {
			r = sdk_location(sp, locs[k], &sp->pool[sp->n_pool + k]);
			if (r < 0)
				goto cleanup;
		}
		sp->n_pool += n;
		e->group = g;
		r = merger__out_labels(sp->out, sp->in->labels, sp->sdk, lset, &e->labels);
		if (r < 0)
			goto cleanup;
		e->pool = pool;
		if (reserve) {
			e->calls = reserve_calls;
		} else if (pool == POOL_NATIVE_CALL && sp->calls && n) {
			/* the leaf names the C++ callback it called */
			const char *leaf = merger__sdk_function_name(sdk, locs[0]);
			size_t len = leaf ? strlen(leaf) : 0;

			r = merger_calls__add_names(sp->calls, &leaf, &len, leaf ? 1 : 0,
						    &e->calls);
			if (r < 0)
				goto cleanup;
		} else if (pool == MERGER_CAT_GUEST && sp->calls && n && native_leaf && call) {
			r = sdk_native_call(sp, java_leaf, call, &e->calls);
			if (r < 0)
				goto cleanup;
		} else if (pool == MERGER_CAT_GUEST && sp->calls && n) {
			r = sdk_line_calls(sp, locs[0], &e->calls);
			if (r < 0)
				goto cleanup;
		}
		sp->n_entries++;
		if (!reserve)
			st->sdk_weight[c] += (double)weight;
	}
cleanup:
	free(ws);
	return r;
}

/* Entry i into its pool (a remembered one: none) and into the pool of each
 * native call key its line calls (a remembered one: those had[] says this
 * profile's entries leave without weight). */
static int place_entry(struct splice *sp, size_t i, const bool *had)
{
	const struct sdk_entry *e = &sp->entries[i];
	uint32_t g = e->group;
	struct category *c;
	int r;

	if (!e->reserve) {
		c = cat_of(sp, g, e->pool);
		r = cat_add(c, i);
		if (r < 0)
			return r;
		c->weight += e->weight;
	}
	if (!e->calls)
		return 0;
	for (size_t k = 0; k < merger_calls__n_keys(sp->calls); k++) {
		size_t at = (size_t)g * sp->stride + N_POOLS + k;

		if (!merger_calls__calls(sp->calls, sp->entries[i].calls, (int)k) ||
		    (sp->entries[i].reserve && had[at]))
			continue;
		r = util__grow((void **)&sp->entries, &sp->cap_entries, sp->n_entries + 1,
			       sizeof(*sp->entries));
		if (r < 0)
			return r;
		sp->entries[sp->n_entries] = sp->entries[i];
		sp->entries[sp->n_entries].pool = N_POOLS + (int)k;
		c = &sp->cats[at];
		r = cat_add(c, sp->n_entries);
		if (r < 0)
			return r;
		c->weight += sp->entries[i].weight;
		c->remembered = sp->entries[i].reserve;
		sp->n_entries++;
	}
	return 0;
}

/* Puts every SDK entry into its group's pool, and a copy of each guest entry
 * whose line calls a native call key's name into that key's pool. A
 * remembered entry goes into the key pools alone, and only those that this
 * profile's entries leave without weight. */
static int place_entries(struct splice *sp)
{
	size_t n0 = sp->n_entries;
	bool *had = NULL;
	int r = 0;

	for (int pass = 0; pass < 2 && r == 0; pass++) {
		if (pass == 1) {
			/* the pools this profile's SDK stacks weigh */
			had = malloc(sp->n_groups * sp->stride * sizeof(*had) + 1);
			if (!had)
				return -ENOMEM;
			for (size_t c = 0; c < sp->n_groups * sp->stride; c++)
				had[c] = sp->cats[c].weight > 0;
		}
		for (size_t i = 0; i < n0 && r == 0; i++)
			if (sp->entries[i].reserve == (pass == 1))
				r = place_entry(sp, i, had);
	}
	free(had);
	return r;
}
/* The entries of pool c whose line or leaf calls a native function that got
 * eBPF samples in group g leave it (move_entries). */
static void move_out(struct splice *sp, struct category *c, uint32_t g)
{
	__int128 moved = 0;
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t j = 0; j < c->n; j++) {
			const struct sdk_entry *e = &sp->entries[c->entries[j]];
			bool out = false;

			for (size_t k = N_POOLS; e->calls && k < sp->stride && !out; k++)
				out = cat_of(sp, g, (int)k)->ebpf > 0 &&
				      merger_calls__calls(sp->calls, e->calls, (int)(k - N_POOLS));
			if (pass == 0 && out)
				moved += e->weight;
			else if (pass == 1 && !out)
				c->entries[n++] = c->entries[j];
		}
		if (pass == 0 && (moved == 0 || (c->ebpf > 0 && c->weight - moved <= 0)))
			break;
		if (pass == 1) {
			c->n = n;
			c->weight -= moved;
		}
	}
}

/* Takes the guest entries whose line calls a native function that got eBPF
 * samples out of their group's general guest pool (Node.js: the entries whose
 * native leaf names one, out of the native-call pool): their weight is the
 * time in that call, which the call's pool now holds. Not when that would
 * leave the general pool's eBPF samples without any weight. */
static void move_entries(struct splice *sp, struct merger_splice_stats *st)
{
	for (uint32_t g = 0; g < sp->n_groups; g++) {
		for (size_t k = N_POOLS; k < sp->stride; k++)
			if (cat_of(sp, g, (int)k)->ebpf > 0)
				st->native_calls++;
		move_out(sp, cat_of(sp, g, MERGER_CAT_GUEST), g);
		move_out(sp, cat_of(sp, g, POOL_NATIVE_CALL), g);
	}
}

/* ---- apportioning ------------------------------------------------------------ */

/* The category's eBPF samples shared among its entries (apportion.c). Its
 * entries are in entry order, which breaks ties. */
static int apportion(struct splice *sp, struct category *c)
{
	int64_t *w;
	int r;

	if (!c->n || c->weight <= 0 || c->ebpf <= 0)
		return 0;
	w = malloc(c->n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t k = 0; k < c->n; k++)
		w[k] = sp->entries[c->entries[k]].weight;
	r = merger_apportion__init(&c->ap, w, c->n, c->ebpf);
	free(w);
	return r;
}

/* The entry owning the category's next slot. */
static int next_slot(struct category *c, size_t *ret)
{
	size_t k = 0;
	int r = merger_apportion__next(&c->ap, &k);

	*ret = r == 0 ? c->entries[k] : 0;
	return r;
}

/* ---- output ------------------------------------------------------------------ */

int merger__emit(struct profile *out, const uint32_t *locs, size_t n, int64_t count, int64_t period,
		 uint32_t labels)
{
	uint32_t stack;
	int64_t value;
	int r;

	if (__builtin_mul_overflow(count, period, &value))
		return -EOVERFLOW;
	r = profile__add_stack(out, locs, n, &stack);
	if (r < 0)
		return r;
	return profile__add_sample(out, stack, labels, &value);
}

/* One eBPF stack, shared among the SDK entries of its category. */
static int emit_stack(struct splice *sp, size_t i, struct merger_splice_stats *st)
{
	const struct merger_ebpf_stack *es = &sp->in->stacks[i];
	const struct merger_class *cl = &sp->classes[i];
	struct category *c = &sp->cats[sp->pool_of[i]];
	size_t nk = sp->n_kernel[i], n_touched = 0;
	int r;

	r = util__grow((void **)&sp->locs, &sp->cap_locs, es->n_frames + 1, sizeof(*sp->locs));
	if (r < 0)
		return r;
	for (size_t k = 0; k < es->n_frames; k++) {
		r = fcache_location(&sp->frames, sp->out, &es->frames[k], &sp->locs[k]);
		if (r < 0)
			return r;
	}
	if (c->weight <= 0) {
		st->kept[cl->category] += es->count;
		return merger__emit(sp->out, sp->locs, es->n_frames, es->count, sp->in->period,
				    sp->in->labels);
	}
	/* take count slots; sp->touched lists the entries given some, in order */
	for (int64_t k = 0; k < es->count; k++) {
		size_t e;

		r = next_slot(c, &e);
		if (r < 0)
			return r;
		if (!sp->entries[e].got++)
			sp->touched[n_touched++] = e;
	}
	for (size_t t = 0; t < n_touched; t++) {
		struct sdk_entry *e = &sp->entries[sp->touched[t]];
		size_t n = 0, need = es->n_frames + e->n_locs;

		r = util__grow((void **)&sp->stack, &sp->cap_stack, need + 1, sizeof(*sp->stack));
		if (r < 0)
			return r;
		/* leaf first: kernel, native suffix, SDK frames, native prefix */
		memcpy(sp->stack, sp->locs, (nk + cl->region_begin) * sizeof(*sp->stack));
		n = nk + cl->region_begin;
		memcpy(sp->stack + n, sp->pool + e->locs_off, e->n_locs * sizeof(*sp->stack));
		n += e->n_locs;
		memcpy(sp->stack + n, sp->locs + nk + cl->region_end,
		       (es->n_frames - nk - cl->region_end) * sizeof(*sp->stack));
		n += es->n_frames - nk - cl->region_end;
		r = merger__emit(sp->out, sp->stack, n, e->got, sp->in->period, e->labels);
		if (r < 0)
			return r;
		e->got = 0;
	}
	st->spliced += es->count;
	return 0;
}

/* The pool of thread group g whose SDK stacks share eBPF stack i. GC and
 * JIT compilation inside guest code have no SDK counterpart in some SDKs
 * (V8's profiler and py-spy count them to the guest stack that caused them):
 * there the guest stacks share them (*to_guest), and the GC or compiler
 * frames stay leafward of the guest frames. */
static int choose_pool(struct splice *sp, uint32_t g, size_t i, bool *to_guest)
{
	const struct merger_class *cl = &sp->classes[i];
	const struct merger_ebpf_stack *es = &sp->in->stacks[i];
	enum merger_category c = cl->category;
	__int128 guest =
		cat_of(sp, g, MERGER_CAT_GUEST)->weight + cat_of(sp, g, POOL_NATIVE_CALL)->weight;
	int pool;

	*to_guest = false;
	if (cat_of(sp, g, c)->weight <= 0 && (c == MERGER_CAT_GC || c == MERGER_CAT_JIT) &&
	    cl->region_begin < cl->region_end && guest > 0) {
		c = MERGER_CAT_GUEST;
		*to_guest = true;
	}
	pool = c;
	if (pool == MERGER_CAT_GUEST && cat_of(sp, g, POOL_NATIVE_CALL)->weight > 0) {
		bool native_call = false;

		/* the native suffix (user frames leafward of the region) and the
		 * region's leafmost frame, where the builtin that calls out sits */
		for (size_t k = 0; k <= cl->region_begin && k < cl->region_end && !native_call; k++)
			native_call = api_call_frame(es->frames[sp->n_kernel[i] + k].name);
		if (native_call || cat_of(sp, g, MERGER_CAT_GUEST)->weight <= 0)
			/* or the only guest weight there is */
			pool = POOL_NATIVE_CALL;
	}
	return pool;
}

/* ---- remembered stacks (Python) --------------------------------------------- */

/* The SDK profile the splice reads: in->sdk and the remembered samples of
 * in->reserve, each marked with MERGER_RESERVE_LABEL (sp->work). A reserve
 * of other sample types is left out. */
static int with_reserve(struct splice *sp)
{
	const struct merger_splice_input *in = sp->in;
	int r;

	if (!in->reserve || !profile__n_samples(in->reserve))
		return 0;
	sp->work = profile__new();
	if (!sp->work)
		return -ENOMEM;
	r = profile__merge(sp->work, in->sdk);
	if (r == 0) {
		r = profile__copy_samples(sp->work, in->reserve, NULL, 0, NULL, NULL);
		if (r == -EINVAL) {
			/* another kind of profile than the one remembered */
			profile__free(sp->work);
			sp->work = NULL;
			return 0;
		}
	}
	if (r < 0)
		return r;
	sp->sdk = sp->work;
	sp->reserve_key = profile__find_string(sp->sdk, MERGER_RESERVE_LABEL);
	return 0;
}

struct kept {
	size_t sample;
	int64_t weight;
};

static int cmp_kept(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	return (x->sample > y->sample) - (x->sample < y->sample);
}

/* Copies the first n (at most max) of ks, heaviest first, into dst. */
static int keep_some(struct profile *dst, const struct profile *src, struct kept *ks, size_t n,
		     size_t max, const char *label, size_t *ret_n)
{
	size_t *idx;
	int r;

	*ret_n = 0;
	if (!n || !max)
		return 0;
	qsort(ks, n, sizeof(*ks), cmp_kept);
	if (n > max)
		n = max;
	idx = malloc(n * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		idx[i] = ks[i].sample;
	r = profile__copy_samples(dst, src, idx, n, label, label ? "1" : NULL);
	free(idx);
	if (r == 0)
		*ret_n = n;
	return r;
}

/* What the process's next profile remembers (in->reserve_out): the
 * remembered stacks whose line calls a name none of this profile's stacks
 * calls (half of MERGER_MAX_REMEMBERED at most), then this profile's stacks
 * whose line calls native code by name, heaviest first. */
static int keep_reserve(struct splice *sp)
{
	struct profile *dst = sp->in->reserve_out;
	struct kept *live = NULL, *old = NULL;
	size_t n_live = 0, n_old = 0, n_kept = 0, n_more = 0;
	uint8_t *called = NULL;
	int r = 0;

	if (!dst || !sp->calls || !merger_sdk_line_calls(sp->in->runtime))
		return 0;
	called = calloc(merger_calls__n_names(sp->calls) + 1, 1);
	live = malloc((sp->n_entries + 1) * sizeof(*live));
	old = malloc((sp->n_entries + 1) * sizeof(*old));
	if (!called || !live || !old) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < sp->n_entries; i++) {
		const struct sdk_entry *e = &sp->entries[i];

		if (e->calls && !e->reserve) {
			merger_calls__mark(sp->calls, e->calls, called);
			live[n_live++] = (struct kept){e->sample, e->weight};
		}
	}
	for (size_t i = 0; i < sp->n_entries; i++) {
		const struct sdk_entry *e = &sp->entries[i];

		if (e->reserve && !merger_calls__all_marked(sp->calls, e->calls, called))
			old[n_old++] = (struct kept){e->sample, e->weight};
	}
	r = keep_some(dst, sp->sdk, old, n_old, MERGER_MAX_REMEMBERED / 2, NULL, &n_kept);
	if (r == 0)
		r = keep_some(dst, sp->sdk, live, n_live, MERGER_MAX_REMEMBERED - n_kept,
			      MERGER_RESERVE_LABEL, &n_more);
cleanup:
	free(called);
	free(live);
	free(old);
	return r;
}

int merger__splice(const struct merger_splice_input *in, struct profile *out,
		   struct merger_splice_stats *ret)
{
	struct merger_splice_stats st = {.sdk_type = -1};
	struct splice sp = {.in = in, .out = out};
	bool api_calls = false;
	int64_t emitted = 0;
	int r = 0;

	if (in && in->runtime == RUNTIME_GO)
		return merger__match(in, out, ret); /* Go: eBPF names the code itself */
	if (!in || !out || in->period <= 0 || (in->n_stacks && !in->stacks))
		return -EINVAL;
	sp.classes = calloc(in->n_stacks + 1, sizeof(*sp.classes));
	sp.n_kernel = calloc(in->n_stacks + 1, sizeof(*sp.n_kernel));
	sp.pool_of = calloc(in->n_stacks + 1, sizeof(*sp.pool_of));
	if (!sp.classes || !sp.n_kernel || !sp.pool_of) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < in->n_stacks; i++) {
		const struct merger_ebpf_stack *es = &in->stacks[i];
		size_t nk = 0, n_user;

		if (es->count < 0 || (es->n_frames && !es->frames)) {
			r = -EINVAL;
			goto cleanup;
		}
		while (nk < es->n_frames && es->frames[nk].kind == FRAME_KERNEL)
			nk++;
		sp.n_kernel[i] = nk;
		n_user = es->n_frames - nk;
		merger__classify_ebpf(in->runtime, es->frames + nk, n_user, es->tid == in->pid,
				      &sp.classes[i]);
		if ((unsigned)sp.classes[i].category >= MERGER_CAT_COUNT ||
		    sp.classes[i].region_begin > sp.classes[i].region_end ||
		    sp.classes[i].region_end > n_user) {
			r = -EPROTO; /* a classifier out of bounds */
			goto cleanup;
		}
		if (__builtin_add_overflow(st.samples, es->count, &st.samples)) {
			r = -EOVERFLOW;
			goto cleanup;
		}
		st.by_category[sp.classes[i].category] += es->count;
		if (sp.classes[i].broken)
			st.broken += es->count;
	}
	sp.sdk = in->sdk;
	if (in->sdk && in->source && merger_sdk_line_calls(in->runtime)) {
		r = with_reserve(&sp);
		if (r < 0)
			goto cleanup;
	}
	r = merger_threads__new(in->runtime, in->stacks, in->n_stacks, sp.sdk,
				sp.sdk ? merger__sdk_weight_type(sp.sdk) : -1, &sp.threads);
	if (r < 0)
		goto cleanup;
	sp.n_groups = merger_threads__n_groups(sp.threads);
	st.thread_groups = (int64_t)sp.n_groups - 1;
	if (in->sdk && ((in->source && merger_sdk_line_calls(in->runtime)) ||
			merger_sdk_native_leaf(in->runtime) || merger_sdk_api_calls(in->runtime))) {
		r = merger_calls__new(&sp.calls);
		if (r < 0)
			goto cleanup;
	}
	if (in->sdk) {
		r = sdk_prepare(&sp, &st);
		if (r == 0)
			r = keep_reserve(&sp);
		if (r < 0)
			goto cleanup;
	}
	/* the native call each guest stack's suffix makes by a name some SDK
	 * line calls: a pool of its own per key */
	sp.stack_key = malloc((in->n_stacks + 1) * sizeof(*sp.stack_key));
	if (!sp.stack_key) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < in->n_stacks; i++) {
		const struct merger_class *cl = &sp.classes[i];

		sp.stack_key[i] = -1;
		if (sp.calls && cl->category == MERGER_CAT_GUEST &&
		    cl->region_begin < cl->region_end)
			sp.stack_key[i] = merger_calls__key_of_stack(
				sp.calls, in->stacks[i].frames + sp.n_kernel[i], cl->region_begin);
	}
	sp.stride = N_POOLS + merger_calls__n_keys(sp.calls);
	api_calls = merger_sdk_api_calls(in->runtime);
	sp.cats = calloc(sp.n_groups * sp.stride, sizeof(*sp.cats));
	if (!sp.cats) {
		r = -ENOMEM;
		goto cleanup;
	}
	r = place_entries(&sp);
	if (r < 0)
		goto cleanup;
	for (size_t i = 0; i < in->n_stacks; i++) {
		uint32_t g = merger_threads__ebpf_group(sp.threads, i);
		bool to_guest = false;
		int pool = choose_pool(&sp, g, i, &to_guest);

		/* a pool the thread's own SDK stacks leave empty: the unmatched
		 * threads' (but for a native call the thread's remembered stacks
		 * make) */
		if (g && cat_of(&sp, g, pool)->weight <= 0 &&
		    !(sp.stack_key[i] >= 0 &&
		      cat_of(&sp, g, N_POOLS + sp.stack_key[i])->weight > 0)) {
			g = 0;
			to_guest = false;
			pool = choose_pool(&sp, g, i, &to_guest);
		}
		if (to_guest) {
			sp.classes[i].category = MERGER_CAT_GUEST;
			st.to_guest += in->stacks[i].count;
		}
		/* a native call some of the group's SDK stacks make by name: their
		 * lines (Python), their native leaves (JVM; Node.js, of the
		 * stacks that went through V8's API call) */
		if (pool == (api_calls ? POOL_NATIVE_CALL : MERGER_CAT_GUEST) && !to_guest &&
		    sp.stack_key[i] >= 0 && cat_of(&sp, g, N_POOLS + sp.stack_key[i])->weight > 0) {
			pool = N_POOLS + sp.stack_key[i];
			st.native_call_samples += in->stacks[i].count;
			if (cat_of(&sp, g, pool)->remembered)
				st.remembered_samples += in->stacks[i].count;
		}
		if (g)
			st.thread_samples += in->stacks[i].count;
		sp.pool_of[i] = (size_t)g * sp.stride + (size_t)pool;
		sp.cats[sp.pool_of[i]].ebpf += in->stacks[i].count;
	}
	if (sp.calls)
		move_entries(&sp, &st);
	sp.touched = malloc((sp.n_entries + 1) * sizeof(*sp.touched));
	if (!sp.touched) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t c = 0; c < sp.n_groups * sp.stride; c++) {
		r = apportion(&sp, &sp.cats[c]);
		if (r < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < in->n_stacks; i++) {
		if (!in->stacks[i].count)
			continue;
		r = emit_stack(&sp, i, &st);
		if (r < 0)
			goto cleanup;
	}
	/* conservation, checked: every eBPF sample left exactly once */
	for (int c = 0; c < MERGER_CAT_COUNT; c++)
		emitted += st.kept[c];
	emitted += st.spliced;
	for (size_t c = 0; c < sp.n_groups * sp.stride; c++)
		if (sp.cats[c].ap.n_heap)
			r = -EPROTO;
	if (r == 0 && emitted != st.samples)
		r = -EPROTO;
	if (r == 0 && ret)
		*ret = st;
cleanup:
	for (size_t c = 0; sp.cats && c < sp.n_groups * sp.stride; c++) {
		free(sp.cats[c].entries);
		merger_apportion__free(&sp.cats[c].ap);
	}
	free(sp.cats);
	merger_threads__free(sp.threads);
	merger_calls__free(sp.calls);
	free(sp.stack_key);
	free(sp.pool_of);
	fcache_free(&sp.frames);
	free(sp.sloc_map);
	free(sp.sfunc_map);
	free(sp.entries);
	free(sp.pool);
	free(sp.classes);
	free(sp.n_kernel);
	free(sp.locs);
	free(sp.stack);
	free(sp.lines);
	free(sp.names);
	free(sp.touched);
	profile__free(sp.work);
	return r;
}
