/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JFR recordings into profiles, as Pyroscope makes them: one profile per
 * kind of event, with Pyroscope's metric and sample type names, the
 * agent's context labels and span ids as sample labels, and the frame
 * names Pyroscope gives ("java/util/zip/Deflater.deflateBytesBytes").
 * The reference is Pyroscope's converter (github.com/grafana/jfr-parser's
 * pprof package, which Pyroscope calls on every JFR push): braid's totals
 * and stacks equal its output for the same recording, tests/cli/jfr.sh
 * checks it, and docs/jfr.md lists each rule, including its quirks.
 */
#define _GNU_SOURCE /* memmem */
#include "jfr_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum out_kind {
	OUT_CPU,
	OUT_WALL,
	OUT_IN_TLAB,
	OUT_OUT_TLAB,
	OUT_LOCK,
	OUT_PARK,
	OUT_LIVE,
	OUT_ALLOC_SAMPLE,
	OUT_MALLOC,
	OUT_COUNT
};

static const struct {
	const char *name, *metric;
	const char *type[2], *unit[2];
	const char *period_type, *period_unit; /* NULL: none */
} outs[OUT_COUNT] = {
	[OUT_CPU] =
		{"process_cpu:cpu", "process_cpu", {"cpu"}, {"nanoseconds"}, "cpu", "nanoseconds"},
	[OUT_WALL] = {"wall:wall", "wall", {"wall"}, {"nanoseconds"}, "wall", "nanoseconds"},
	[OUT_IN_TLAB] = {"memory:alloc_in_new_tlab_objects",
			 "memory",
			 {"alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes"},
			 {"count", "bytes"},
			 "space",
			 "bytes"},
	[OUT_OUT_TLAB] = {"memory:alloc_outside_tlab_objects",
			  "memory",
			  {"alloc_outside_tlab_objects", "alloc_outside_tlab_bytes"},
			  {"count", "bytes"},
			  "space",
			  "bytes"},
	[OUT_LOCK] = {"mutex:contentions",
		      "mutex",
		      {"contentions", "delay"},
		      {"count", "nanoseconds"},
		      "mutex",
		      "count"},
	[OUT_PARK] = {"block:contentions",
		      "block",
		      {"contentions", "delay"},
		      {"count", "nanoseconds"},
		      "block",
		      "count"},
	[OUT_LIVE] = {"memory:live", "memory", {"live"}, {"count"}, "objects", "count"},
	[OUT_ALLOC_SAMPLE] = {"memory:alloc_sample_objects",
			      "memory",
			      {"alloc_sample_objects", "alloc_sample_bytes"},
			      {"count", "bytes"},
			      "space",
			      "bytes"},
	[OUT_MALLOC] = {"memory:malloc_objects",
			"memory",
			{"malloc_objects", "malloc_bytes"},
			{"count", "bytes"},
			NULL,
			NULL},
};

/* The events read, and the slots their fields go to. */
enum ev_kind {
	EV_EXECUTION,
	EV_WALL,
	EV_IN_TLAB,
	EV_OUT_TLAB,
	EV_ALLOC_SAMPLE,
	EV_MONITOR,
	EV_PARK,
	EV_LIVE,
	EV_MALLOC,
	EV_SETTING,
	EV_COUNT
};

enum {
	S_STACK,
	S_THREAD,
	S_STATE,
	S_CONTEXT,
	S_SPAN_ID,
	S_SPAN_NAME,
	S_TRACE_HI,
	S_TRACE_LO,
	S_VALUE,
	S_COUNT
};

#define W_STACK                                                                                    \
	{                                                                                          \
		"stackTrace", JFR_WANT_POOL, JFR_POOL_STACK                                        \
	}
/* the fields Pyroscope's agent adds for context labels and spans */
#define W_CORR                                                                                     \
	{"contextId", JFR_WANT_LONG, 0}, {"spanId", JFR_WANT_LONG, 0},                             \
		{"spanName", JFR_WANT_LONG, 0}, {"traceIdHi", JFR_WANT_LONG, 0},                   \
	{                                                                                          \
		"traceIdLo", JFR_WANT_LONG, 0                                                      \
	}
#define W_NONE                                                                                     \
	{                                                                                          \
		"", JFR_WANT_LONG, 0                                                               \
	}

static const struct {
	const char *type;
	struct jfr_want w[S_COUNT];
} events[EV_COUNT] = {
	[EV_EXECUTION] = {"jdk.ExecutionSample",
			  {W_STACK,
			   {"sampledThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			   {"state", JFR_WANT_POOL, JFR_POOL_THREADSTATE},
			   W_CORR,
			   W_NONE}},
	[EV_WALL] = {"profiler.WallClockSample",
		     {W_STACK,
		      {"sampledThread", JFR_WANT_POOL, JFR_POOL_THREAD},
		      {"state", JFR_WANT_POOL, JFR_POOL_THREADSTATE},
		      W_CORR,
		      {"samples", JFR_WANT_INT, 0}}},
	[EV_IN_TLAB] = {"jdk.ObjectAllocationInNewTLAB",
			{W_STACK,
			 {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			 W_NONE,
			 W_CORR,
			 {"tlabSize", JFR_WANT_LONG, 0}}},
	[EV_OUT_TLAB] = {"jdk.ObjectAllocationOutsideTLAB",
			 {W_STACK,
			  {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			  W_NONE,
			  W_CORR,
			  {"allocationSize", JFR_WANT_LONG, 0}}},
	[EV_ALLOC_SAMPLE] = {"jdk.ObjectAllocationSample",
			     {W_STACK,
			      {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			      W_NONE,
			      W_NONE,
			      W_NONE,
			      W_NONE,
			      W_NONE,
			      W_NONE,
			      {"weight", JFR_WANT_LONG, 0}}},
	[EV_MONITOR] = {"jdk.JavaMonitorEnter",
			{W_STACK,
			 {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			 W_NONE,
			 W_CORR,
			 {"duration", JFR_WANT_LONG, 0}}},
	[EV_PARK] = {"jdk.ThreadPark",
		     {W_STACK,
		      {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      {"duration", JFR_WANT_LONG, 0}}},
	[EV_LIVE] = {"profiler.LiveObject",
		     {W_STACK,
		      {"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE,
		      W_NONE}},
	[EV_MALLOC] = {"profiler.Malloc",
		       {W_STACK,
			{"eventThread", JFR_WANT_POOL, JFR_POOL_THREAD},
			W_NONE,
			W_NONE,
			W_NONE,
			W_NONE,
			W_NONE,
			W_NONE,
			{"size", JFR_WANT_LONG, 0}}},
	[EV_SETTING] = {"jdk.ActiveSetting",
			{{"name", JFR_WANT_STRING, 0},
			 {"value", JFR_WANT_STRING, 0},
			 W_NONE,
			 W_NONE,
			 W_NONE,
			 W_NONE,
			 W_NONE,
			 W_NONE,
			 W_NONE}},
};

/* One output profile and its per-chunk caches. */
struct out {
	struct profile *p;
	uint32_t *stack_of; /* stack pool index → stack id, 0: not built */
	size_t n_stack_of;
	uint32_t *fn_of; /* method pool index → function id, 0: not yet */
	size_t n_fn_of;
	struct jfr_map ctx_labels; /* context id (or OS thread id) → label set id + 1 */
};

struct conv {
	const struct profile_jfr_opts *opts;
	const struct profile_limits *lim;
	struct errbuf *err;
	struct jfr_chunk c;
	struct jfr_labels *labels;
	struct out out[OUT_COUNT];
	int8_t *dispatch; /* type id → event kind + 1 */
	size_t n_dispatch;
	struct jfr_binding bind[EV_COUNT];
	int64_t period;
	int64_t v0; /* Pyroscope's first value: 1, then each wall sample's count */
	char event[64];
	struct profile_jfr_stats stats;
};

static int out_get(struct conv *cv, enum out_kind k, struct out **ret)
{
	struct out *o = &cv->out[k];
	struct profile *p;
	int r;

	if (!o->p) {
		p = profile__new();
		if (!p)
			return -ENOMEM;
		o->p = p;
		for (int i = 0; i < 2 && outs[k].type[i]; i++) {
			r = profile__add_sample_type(p, outs[k].type[i], outs[k].unit[i]);
			if (r < 0)
				return r;
		}
		if (outs[k].period_type) {
			/* Pyroscope names the period type and leaves the period 0 */
			r = profile__set_period(p, outs[k].period_type, outs[k].period_unit, 0);
			if (r < 0)
				return r;
		}
		profile__set_time(p, cv->opts->time_nanos, cv->opts->duration_nanos);
	}
	*ret = o;
	return 0;
}

static enum frame_kind kind_of(const struct jfr_chunk *c, uint64_t type_key)
{
	/* key 0 is a type too (the JDK's "Interpreted") */
	const struct jfr_entry *e = jfr_chunk__lookup(c, JFR_POOL_FRAMETYPE, type_key);
	struct jfr_str s;

	if (!e)
		return FRAME_UNKNOWN;
	s = jfr_chunk__str(c, e->s);
#define IS(lit) (s.len == sizeof(lit) - 1 && memcmp(s.p, lit, s.len) == 0)
	if (IS("Interpreted") || IS("JIT compiled") || IS("Inlined") || IS("C1 compiled"))
		return FRAME_INTERPRETED;
	if (IS("Native") || IS("C++"))
		return FRAME_NATIVE;
	if (IS("Kernel"))
		return FRAME_KERNEL;
#undef IS
	return FRAME_UNKNOWN;
}

static struct jfr_str symbol(const struct jfr_chunk *c, uint64_t key)
{
	const struct jfr_entry *e = jfr_chunk__lookup(c, JFR_POOL_SYMBOL, key);

	return e ? jfr_chunk__str(c, e->s) : (struct jfr_str){"", 0, 0};
}

/* The function of method entry mi: "class.method", as Pyroscope names it.
 * 0 when the method's class is not in the pools (Pyroscope drops the frame). */
static int function_of(struct conv *cv, struct out *o, size_t mi, uint32_t *ret)
{
	const struct jfr_chunk *c = &cv->c;
	const struct jfr_entry *m = &c->pools[JFR_POOL_METHOD].v[mi];
	const struct jfr_entry *k;
	struct profile_function f = {0};
	struct jfr_str cls, name;
	char stackbuf[512], *buf = stackbuf;
	size_t len;
	int r;

	if (o->fn_of[mi]) {
		*ret = o->fn_of[mi];
		return 0;
	}
	k = jfr_chunk__lookup(c, JFR_POOL_CLASS, m->a);
	if (!k) {
		*ret = 0;
		return 0;
	}
	cls = symbol(c, k->a);
	name = symbol(c, m->b);
	len = (size_t)cls.len + 1 + name.len;
	if (len > sizeof(stackbuf)) {
		buf = malloc(len);
		if (!buf)
			return -ENOMEM;
	}
	memcpy(buf, cls.p, cls.len);
	buf[cls.len] = '.';
	memcpy(buf + cls.len + 1, name.p, name.len);
	r = profile__intern(o->p, buf, len, &f.name);
	if (buf != stackbuf)
		free(buf);
	if (r == 0)
		r = profile__add_function(o->p, &f, &o->fn_of[mi]);
	if (r < 0)
		return r;
	*ret = o->fn_of[mi];
	return 0;
}

/* "Native" is a native function to async-profiler, whose class is then its
 * library ("libc.so.6", or "" when unknown), and a Java method declared
 * native to the JDK's recorder, whose class is a Java class: that is a Java
 * frame. */
static bool java_native_method(const struct jfr_chunk *c, size_t mi)
{
	const struct jfr_entry *m = &c->pools[JFR_POOL_METHOD].v[mi];
	const struct jfr_entry *k = jfr_chunk__lookup(c, JFR_POOL_CLASS, m->a);
	struct jfr_str cls = k ? symbol(c, k->a) : (struct jfr_str){"", 0, 0};

	return cls.len && cls.p[0] != '/' && cls.p[0] != '.' && !memmem(cls.p, cls.len, ".so", 3);
}

/* The profile's stack for stack trace entry si, built once per chunk. */
static int stack_of(struct conv *cv, struct out *o, size_t si, uint32_t *ret)
{
	const struct jfr_chunk *c = &cv->c;
	const struct jfr_entry *st = &c->pools[JFR_POOL_STACK].v[si];
	uint64_t first = st->a, n = st->b & ~JFR_STACK_TRUNCATED;
	uint32_t stackbuf[256], *locs = stackbuf;
	size_t depth = 0;
	int r = 0;

	if (o->stack_of[si]) {
		*ret = o->stack_of[si];
		return 0;
	}
	if (n > UTIL_ARRAY_SIZE(stackbuf)) {
		locs = malloc(n * sizeof(*locs));
		if (!locs)
			return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++) {
		const struct jfr_frame *fr = &c->frames[first + i];
		uint32_t mi = jfr_map__get(&c->pools[JFR_POOL_METHOD].index, fr->method);
		struct profile_line line = {0};
		struct profile_location l = {0};

		if (!mi) {
			cv->stats.frames_unknown++;
			continue;
		}
		r = function_of(cv, o, mi - 1, &line.function);
		if (r < 0)
			goto cleanup;
		if (!line.function) {
			cv->stats.frames_unknown++;
			continue;
		}
		line.line = fr->line;
		l.kind = kind_of(c, fr->type);
		if (l.kind == FRAME_NATIVE && java_native_method(c, mi - 1))
			l.kind = FRAME_INTERPRETED;
		l.n_lines = 1;
		l.lines = &line;
		r = profile__add_location(o->p, &l, &locs[depth++]);
		if (r < 0)
			goto cleanup;
	}
	if (depth > cv->lim->max_stack_depth) {
		r = errbuf__set(cv->err, -E2BIG,
				"JFR: a stack trace of %zu frames is over the cap of %zu", depth,
				cv->lim->max_stack_depth);
		goto cleanup;
	}
	if (profile__n_locations(o->p) > cv->lim->max_locations ||
	    profile__n_functions(o->p) > cv->lim->max_functions ||
	    profile__n_strings(o->p) > cv->lim->max_strings) {
		r = errbuf__set(cv->err, -E2BIG,
				"JFR: a profile has over %zu locations, %zu functions or %zu "
				"strings",
				cv->lim->max_locations, cv->lim->max_functions,
				cv->lim->max_strings);
		goto cleanup;
	}
	r = profile__add_stack(o->p, locs, depth, &o->stack_of[si]);
	if (r == 0)
		*ret = o->stack_of[si];
cleanup:
	if (locs != stackbuf)
		free(locs);
	return r;
}

static int add_label(struct profile *p, struct profile_label *ls, size_t *n, size_t max,
		     const char *k, size_t klen, const char *v, size_t vlen)
{
	int r;

	if (*n >= max)
		return -E2BIG;
	r = profile__intern(p, k, klen, &ls[*n].key);
	if (r == 0)
		r = profile__intern(p, v, vlen, &ls[*n].str);
	if (r == 0)
		(*n)++;
	return r;
}

/* A sample's labels: its context's, then profile_id (the span id), span_name
 * and trace_id, as Pyroscope adds them. */
static int labels_of(struct conv *cv, struct out *o, const union jfr_value *s, uint32_t *ret)
{
	bool plain = !s[S_SPAN_ID].u && !s[S_SPAN_NAME].u && !s[S_TRACE_HI].u && !s[S_TRACE_LO].u;
	uint64_t tid = 0;
	struct profile_label ls[PROFILE_DEFAULT_MAX_LABELS];
	size_t max = cv->lim->max_labels < UTIL_ARRAY_SIZE(ls) ? cv->lim->max_labels
							       : UTIL_ARRAY_SIZE(ls);
	const int64_t *pairs = NULL;
	size_t n = 0, np, slen;
	const char *str;
	char hex[40];
	uint32_t cached;
	int r = 0;

	if (cv->opts->os_thread_labels) {
		const struct jfr_entry *t =
			jfr_chunk__lookup(&cv->c, JFR_POOL_THREAD, s[S_THREAD].u);

		tid = t ? t->a : 0;
		/* cached by thread for the samples without a context */
		plain = plain && !s[S_CONTEXT].u;
	}
	if (plain) {
		cached = jfr_map__get(&o->ctx_labels, tid ? tid : s[S_CONTEXT].u);
		if (cached) {
			*ret = cached - 1;
			return 0;
		}
	}
	memset(ls, 0, sizeof(ls));
	if (tid) {
		int len = snprintf(hex, sizeof(hex), "%" PRIu64, tid);

		r = add_label(o->p, ls, &n, max, "os_thread_id", 12, hex, (size_t)len);
	}
	np = jfr_labels__context(cv->labels, (int64_t)s[S_CONTEXT].u, &pairs);
	for (size_t i = 0; r == 0 && i < np; i++) {
		size_t klen, vlen;
		const char *k = jfr_labels__string(cv->labels, pairs[2 * i], &klen);
		const char *v = jfr_labels__string(cv->labels, pairs[2 * i + 1], &vlen);

		r = add_label(o->p, ls, &n, max, k, klen, v, vlen);
	}
	if (r == 0 && s[S_SPAN_ID].u) {
		snprintf(hex, sizeof(hex), "%016" PRIx64, s[S_SPAN_ID].u);
		r = add_label(o->p, ls, &n, max, "profile_id", 10, hex, 16);
	}
	if (r == 0 && s[S_SPAN_NAME].u) {
		str = jfr_labels__string(cv->labels, (int64_t)s[S_SPAN_NAME].u, &slen);
		if (slen)
			r = add_label(o->p, ls, &n, max, "span_name", 9, str, slen);
	}
	if (r == 0 && (s[S_TRACE_HI].u || s[S_TRACE_LO].u)) {
		snprintf(hex, sizeof(hex), "%016" PRIx64 "%016" PRIx64, s[S_TRACE_HI].u,
			 s[S_TRACE_LO].u);
		r = add_label(o->p, ls, &n, max, "trace_id", 8, hex, 32);
	}
	if (r == -E2BIG)
		return errbuf__set(cv->err, r, "JFR: a sample has over %zu labels", max);
	if (r == 0)
		r = profile__add_labels(o->p, ls, n, ret);
	if (r == 0 && plain)
		r = jfr_map__put(&o->ctx_labels, tid ? tid : s[S_CONTEXT].u, *ret + 1);
	return r;
}

/* One sample of kind k: its stack trace, labels and values. */
static int add(struct conv *cv, enum out_kind k, const union jfr_value *s, bool correlated,
	       int64_t v1)
{
	union jfr_value plain[S_COUNT] = {{0}};
	int64_t vals[2] = {cv->v0, v1};
	uint32_t si, stack = 0, labels = 0;
	struct out *o;
	int r = out_get(cv, k, &o);

	if (r < 0)
		return r;
	si = jfr_map__get(&cv->c.pools[JFR_POOL_STACK].index, s[S_STACK].u);
	if (!si) {
		cv->stats.unknown_stacks++;
		return 0;
	}
	if (!o->stack_of) {
		o->n_stack_of = cv->c.pools[JFR_POOL_STACK].n;
		o->stack_of = calloc(o->n_stack_of ? o->n_stack_of : 1, sizeof(*o->stack_of));
		o->n_fn_of = cv->c.pools[JFR_POOL_METHOD].n;
		o->fn_of = calloc(o->n_fn_of ? o->n_fn_of : 1, sizeof(*o->fn_of));
		if (!o->stack_of || !o->fn_of)
			return -ENOMEM;
	}
	r = stack_of(cv, o, si - 1, &stack);
	if (r == 0)
		r = labels_of(cv, o, correlated ? s : plain, &labels);
	if (r < 0)
		return r;
	if (k == OUT_CPU || k == OUT_WALL) {
		if (__builtin_mul_overflow(vals[0], cv->period, &vals[0]))
			return errbuf__set(cv->err, -EOVERFLOW, "JFR: a sample's value overflows");
	}
	r = profile__add_sample(o->p, stack, labels, vals);
	if (r == -EOVERFLOW)
		return errbuf__set(cv->err, r, "JFR: a sample's value overflows");
	if (r == 0 && profile__n_samples(o->p) > cv->lim->max_samples)
		return errbuf__set(cv->err, -E2BIG, "JFR: a profile has over %zu samples",
				   cv->lim->max_samples);
	return r;
}

static const char *state_name(const struct jfr_chunk *c, uint64_t key, size_t *len)
{
	const struct jfr_entry *e = jfr_chunk__lookup(c, JFR_POOL_THREADSTATE, key);
	struct jfr_str s;

	if (!e)
		return NULL;
	s = jfr_chunk__str(c, e->s);
	*len = s.len;
	return s.p;
}

static bool str_is(const char *p, size_t len, const char *lit)
{
	return p && len == strlen(lit) && memcmp(p, lit, len) == 0;
}

static int on_event(struct conv *cv, enum ev_kind ev, const union jfr_value *s)
{
	const struct jfr_chunk *c = &cv->c;
	bool wall = strcmp(cv->event, "wall") == 0;
	const char *st;
	size_t len = 0;
	int r = 0;

	cv->stats.events++;
	switch (ev) {
	case EV_EXECUTION:
		st = state_name(c, s[S_STATE].u, &len);
		if (st && !str_is(st, len, "STATE_SLEEPING"))
			r = add(cv, OUT_CPU, s, true, 0);
		if (r == 0 && wall)
			r = add(cv, OUT_WALL, s, true, 0);
		break;
	case EV_WALL:
		cv->v0 = (int64_t)(uint32_t)s[S_VALUE].u;
		st = state_name(c, s[S_STATE].u, &len);
		if (st && str_is(st, len, "STATE_RUNNABLE") && wall)
			r = add(cv, OUT_CPU, s, true, 0);
		if (r == 0)
			r = add(cv, OUT_WALL, s, true, 0);
		break;
	case EV_IN_TLAB:
		r = add(cv, OUT_IN_TLAB, s, true, (int64_t)s[S_VALUE].u);
		break;
	case EV_OUT_TLAB:
		r = add(cv, OUT_OUT_TLAB, s, true, (int64_t)s[S_VALUE].u);
		break;
	case EV_ALLOC_SAMPLE:
		r = add(cv, OUT_ALLOC_SAMPLE, s, false, (int64_t)s[S_VALUE].u);
		break;
	case EV_MONITOR:
		r = add(cv, OUT_LOCK, s, true, (int64_t)s[S_VALUE].u);
		break;
	case EV_PARK:
		r = add(cv, OUT_PARK, s, false, (int64_t)s[S_VALUE].u);
		break;
	case EV_LIVE:
		r = add(cv, OUT_LIVE, s, false, 0);
		break;
	case EV_MALLOC:
		r = add(cv, OUT_MALLOC, s, false, (int64_t)s[S_VALUE].u);
		break;
	case EV_SETTING: {
		struct jfr_str name = jfr_chunk__str(c, s[0].s);
		struct jfr_str value = jfr_chunk__str(c, s[1].s);

		if (str_is(name.p, name.len, "event")) {
			size_t n = value.len < sizeof(cv->event) - 1 ? value.len
								     : sizeof(cv->event) - 1;

			memcpy(cv->event, value.p, n);
			cv->event[n] = '\0';
		}
		break;
	}
	case EV_COUNT:
		break;
	}
	return r;
}

/* Binds this chunk's event types and forgets the previous chunk's caches
 * (keys are the chunk's own). */
static int chunk_begin(struct conv *cv)
{
	struct jfr_chunk *c = &cv->c;
	int r;

	for (int k = 0; k < OUT_COUNT; k++) {
		struct out *o = &cv->out[k];

		free(o->stack_of);
		free(o->fn_of);
		o->stack_of = NULL;
		o->fn_of = NULL;
		o->n_stack_of = o->n_fn_of = 0;
	}
	if (util__grow((void **)&cv->dispatch, &cv->n_dispatch, c->n_by_id ? c->n_by_id : 1,
		       sizeof(*cv->dispatch)) < 0)
		return -ENOMEM;
	memset(cv->dispatch, 0, cv->n_dispatch);
	for (int e = 0; e < EV_COUNT; e++) {
		r = jfr_chunk__bind(c, events[e].type, events[e].w, S_COUNT, &cv->bind[e]);
		if (r < 0)
			return r;
		if (cv->bind[e].cls >= 0)
			cv->dispatch[c->classes[cv->bind[e].cls].id] = (int8_t)(e + 1);
	}
	return 0;
}

static int read_chunk_events(struct conv *cv)
{
	struct jfr_chunk *c = &cv->c;
	const uint8_t *pos = c->events;
	union jfr_value slots[JFR_MAX_WANTS];
	int r = chunk_begin(cv);

	while (r == 0) {
		const uint8_t *body, *end;
		uint64_t type;
		int ev;

		r = jfr_chunk__next(c, &pos, &type, &body, &end);
		if (r < 0 || type == UINT64_MAX)
			break;
		ev = type < c->n_by_id && type < cv->n_dispatch ? cv->dispatch[type] - 1 : -1;
		if (ev < 0)
			continue;
		r = jfr_chunk__read(c, &cv->bind[ev], body, end, slots);
		if (r == 0)
			r = on_event(cv, (enum ev_kind)ev, slots);
	}
	return r;
}

bool profile__is_jfr(const void *data, size_t len)
{
	const uint8_t *p = data;

	return len >= JFR_HEADER_BYTES && memcmp(p, "FLR\0", 4) == 0 && p[4] == 0 && p[5] == 2;
}

void profile_jfr__free(struct profile_jfr *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		profile__free(j->entries[i].profile);
	free(j->entries);
	free(j);
}

const struct profile_jfr_entry *profile_jfr__find(const struct profile_jfr *j, const char *name)
{
	const struct profile_jfr_entry *by_metric = NULL;
	size_t n_metric = 0;

	for (size_t i = 0; i < j->n; i++) {
		if (strcmp(j->entries[i].name, name) == 0)
			return &j->entries[i];
		if (strcmp(j->entries[i].metric, name) == 0) {
			by_metric = &j->entries[i];
			n_metric++;
		}
	}
	return n_metric == 1 ? by_metric : NULL;
}

struct profile *profile_jfr__take(struct profile_jfr *j, const struct profile_jfr_entry *e)
{
	size_t i = (size_t)(e - j->entries);
	struct profile *p;

	if (e < j->entries || i >= j->n)
		return NULL;
	p = j->entries[i].profile;
	j->entries[i].profile = NULL;
	return p;
}

int profile__from_jfr(const void *data, size_t len, const struct profile_jfr_opts *opts,
		      const struct profile_limits *lim, struct errbuf *err,
		      struct profile_jfr **ret)
{
	static const struct profile_jfr_opts no_opts = {0};
	struct profile_limits deflim;
	struct conv *cv = calloc(1, sizeof(*cv));
	struct profile_jfr *j = NULL;
	struct dynbuf raw;
	size_t off = 0;
	int r;

	dynbuf__init(&raw, 0);
	if (!cv)
		return errbuf__set(err, -ENOMEM, "out of memory");
	if (!lim) {
		profile_limits__default(&deflim);
		lim = &deflim;
	}
	cv->opts = opts ? opts : &no_opts;
	cv->lim = lim;
	cv->err = err;
	cv->v0 = 1;
	cv->period = cv->opts->sample_rate > 0 ? 1000000000 / cv->opts->sample_rate : 0;
	if (util__is_gzip(data, len)) {
		r = util__gunzip(data, len, lim->max_decompressed, err, &raw);
		if (r < 0)
			goto cleanup;
		data = raw.data;
		len = raw.len;
	} else if (len > lim->max_decompressed) {
		r = errbuf__set(err, -EFBIG, "a recording of %zu bytes is over the limit of %zu",
				len, lim->max_decompressed);
		goto cleanup;
	}
	r = jfr_labels__decode(cv->opts->labels, cv->opts->labels_len, lim, err, &cv->labels);
	if (r < 0)
		goto cleanup;
	if (len < JFR_HEADER_BYTES) {
		r = errbuf__set(err, -EBADMSG, "JFR: %zu bytes are not a recording", len);
		goto cleanup;
	}
	while (off < len) {
		if (++cv->stats.chunks > JFR_MAX_CHUNKS) {
			r = errbuf__set(err, -E2BIG, "JFR: over %u chunks", JFR_MAX_CHUNKS);
			goto cleanup;
		}
		r = jfr_chunk__open(&cv->c, data, len, off, err);
		if (r == 0)
			r = read_chunk_events(cv);
		if (r < 0)
			goto cleanup;
		off = (size_t)(cv->c.end - (const uint8_t *)data);
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->entries = calloc(OUT_COUNT, sizeof(*j->entries)))) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (int k = 0; k < OUT_COUNT; k++) {
		if (!cv->out[k].p)
			continue;
		j->entries[j->n].name = outs[k].name;
		j->entries[j->n].metric = outs[k].metric;
		j->entries[j->n].profile = cv->out[k].p;
		cv->out[k].p = NULL;
		j->n++;
	}
	memcpy(j->jfr_event, cv->event, sizeof(j->jfr_event));
	j->stats = cv->stats;
	*ret = j;
	j = NULL;
	r = 0;
cleanup:
	if (r == -ENOMEM)
		r = errbuf__set(err, r, "out of memory");
	profile_jfr__free(j);
	for (int k = 0; k < OUT_COUNT; k++) {
		profile__free(cv->out[k].p);
		free(cv->out[k].stack_of);
		free(cv->out[k].fn_of);
		jfr_map__free(&cv->out[k].ctx_labels);
	}
	free(cv->dispatch);
	jfr_chunk__free(&cv->c);
	jfr_labels__free(cv->labels);
	free(cv);
	dynbuf__free(&raw);
	return r;
}
