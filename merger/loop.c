/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: the merge loop. Reads the store, queues merged, eBPF-only and
 * pass-through profiles in the outbox.
 *
 * Exactly once. A process's eBPF samples leave in time order behind its
 * watermark (processes.ebpf_emitted_s): every emission reads the buckets of
 * [watermark, T), queues them as one profile and moves the watermark to T in
 * the same transaction, so a crash repeats or loses nothing. A merge reads
 * [max(watermark, SDK from), SDK until); the seconds between the watermark
 * and the SDK range, which no SDK profile covered, leave eBPF-only first.
 * The sample count read is checked against the profile written before the
 * transaction commits.
 */
#include "merger/merger_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS		    1000000000LL
#define MERGER_DEFAULT_FREQ 97
#define BATCH		    256 /* SDK profiles read per query */

struct merger {
	struct store *s;
	struct merger_options o;
	int64_t period;
	int64_t next_collect_s;
	struct merger_stats total;
	char errmsg[512];
	struct merger_reserves *reserves; /* SDK stacks remembered per process */

	/* the buckets of one emission, frames interned so equal frames share
	 * their strings (the splice's frame cache keys on that) */
	struct strtab strings;
	struct frame *frames;
	size_t n_frames, cap_frames;
	struct merger_ebpf_stack *stacks;
	size_t n_stacks, cap_stacks;
	int64_t samples;
};

static int fail(struct merger *m, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct merger *m, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->errmsg, sizeof(m->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

static int store_fail(struct merger *m, int r, const char *what)
{
	return fail(m, r, "%s: %s", what, store__errmsg(m->s));
}

const char *merger__errmsg(const struct merger *m)
{
	return m ? m->errmsg : "";
}

struct merger *merger__new(struct store *s, const struct merger_options *opts)
{
	struct merger *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->s = s;
	if (opts)
		m->o = *opts;
	if (m->o.grace_s <= 0)
		m->o.grace_s = MERGER_DEFAULT_GRACE_S;
	if (m->o.collect_interval_s <= 0)
		m->o.collect_interval_s = MERGER_DEFAULT_COLLECT_INTERVAL_S;
	if (m->o.settle_s <= 0)
		m->o.settle_s = MERGER_DEFAULT_SETTLE_S;
	if (!m->o.freq)
		m->o.freq = MERGER_DEFAULT_FREQ;
	m->period = NS / m->o.freq;
	if (merger_reserves__new(&m->reserves) < 0 || strtab__init(&m->strings) < 0) {
		merger_reserves__free(m->reserves);
		free(m);
		return NULL;
	}
	return m;
}

void merger__free(struct merger *m)
{
	if (!m)
		return;
	strtab__free(&m->strings);
	merger_reserves__free(m->reserves);
	free(m->frames);
	free(m->stacks);
	free(m);
}

void merger__stats(const struct merger *m, struct merger_stats *ret)
{
	*ret = m->total;
}

static int64_t floor_s(int64_t ns)
{
	return ns >= 0 ? ns / NS : -((-ns + NS - 1) / NS);
}

static int64_t ceil_s(int64_t ns)
{
	return -floor_s(-ns);
}

/* ---- labels and series ---------------------------------------------------------- */

#define MAX_OUT_LABELS (STORE_MAX_LABELS + 5)

struct labels {
	struct label l[MAX_OUT_LABELS];
	size_t n;
};

static void labels_set(struct labels *ls, const char *name, const char *value)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->l[i].name, name) == 0) {
			ls->l[i].value = value;
			return;
		}
	if (ls->n < MAX_OUT_LABELS)
		ls->l[ls->n++] = (struct label){name, value};
}

static int cmp_label(const void *a, const void *b)
{
	const struct label *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* The ordering key of a series: its labels sorted, "{a=1,b=2}". */
static int series_key(const struct labels *ls, struct dynbuf *out)
{
	struct label sorted[MAX_OUT_LABELS];
	int r = 0;

	memcpy(sorted, ls->l, ls->n * sizeof(*sorted));
	qsort(sorted, ls->n, sizeof(*sorted), cmp_label);
	dynbuf__reset(out);
	r = dynbuf__putc(out, '{');
	for (size_t i = 0; r == 0 && i < ls->n; i++)
		r = dynbuf__printf(out, "%s%s=%s", i ? "," : "", sorted[i].name, sorted[i].value);
	if (r == 0)
		r = dynbuf__putc(out, '}');
	if (r == 0)
		r = dynbuf__putc(out, '\0');
	return r;
}

/* A process read from the store, with its strings copied: the store's stay
 * valid only until its next call. */
struct proc {
	struct store_process p;
	char *service, *comm;
};

static void proc_release(struct proc *p)
{
	free(p->service);
	free(p->comm);
	p->service = p->comm = NULL;
}

static int get_process(struct merger *m, int64_t id, struct proc *ret)
{
	int r = store__get_process(m->s, id, &ret->p);

	if (r < 0)
		return store_fail(m, r, "reading a process");
	ret->service = ret->p.service ? strdup(ret->p.service) : NULL;
	ret->comm = ret->p.comm ? strdup(ret->p.comm) : NULL;
	if ((ret->p.service && !ret->service) || (ret->p.comm && !ret->comm)) {
		proc_release(ret);
		return -ENOMEM;
	}
	ret->p.service = ret->service;
	ret->p.comm = ret->comm;
	ret->p.exe = ret->p.cmdline = ret->p.container_id = NULL;
	return 0;
}

static const char *service_of(const struct store_process *p)
{
	if (p->service && *p->service)
		return p->service;
	if (p->comm && *p->comm)
		return p->comm;
	return "unknown_service";
}

/* ---- reading buckets ---------------------------------------------------------------- */

static int intern(struct merger *m, const char *s, const char **ret)
{
	uint32_t id;
	int r;

	if (!s) {
		*ret = NULL;
		return 0;
	}
	r = strtab__intern(&m->strings, s, strlen(s), 0, &id);
	if (r == 0)
		*ret = strtab__get(&m->strings, id);
	return r;
}

static int on_bucket(void *ctx, const struct store_bucket *b)
{
	struct merger *m = ctx;
	struct merger_ebpf_stack *st;
	int r;

	if (b->count <= 0)
		return 0;
	r = util__grow((void **)&m->frames, &m->cap_frames, m->n_frames + b->n_frames + 1,
		       sizeof(*m->frames));
	if (r == 0)
		r = util__grow((void **)&m->stacks, &m->cap_stacks, m->n_stacks + 1,
			       sizeof(*m->stacks));
	if (r < 0)
		return r;
	for (size_t k = 0; k < b->n_frames; k++) {
		struct frame *f = &m->frames[m->n_frames + k];

		f->kind = b->frames[k].kind;
		f->offset = b->frames[k].offset;
		if ((r = intern(m, b->frames[k].name, &f->name)) < 0 ||
		    (r = intern(m, b->frames[k].module, &f->module)) < 0)
			return r;
	}
	/* frames are kept as offsets until the pool stops moving */
	st = &m->stacks[m->n_stacks++];
	*st = (struct merger_ebpf_stack){
		.frames = (const struct frame *)(uintptr_t)m->n_frames,
		.n_frames = b->n_frames,
		.tid = b->tid,
		.thread_pointer = b->thread_pointer,
		.count = b->count,
	};
	m->n_frames += b->n_frames;
	if (__builtin_add_overflow(m->samples, b->count, &m->samples))
		return -EOVERFLOW;
	return 0;
}

/* Reads the buckets of process id in [from_s, until_s) into m->stacks. */
static int read_buckets(struct merger *m, int64_t process_id, int64_t from_s, int64_t until_s)
{
	int r;

	strtab__free(&m->strings);
	r = strtab__init(&m->strings);
	if (r < 0)
		return r;
	m->n_frames = m->n_stacks = 0;
	m->samples = 0;
	r = store__buckets(m->s, process_id, from_s, until_s, on_bucket, m);
	if (r < 0)
		return r == -ENOMEM || r == -EOVERFLOW ? r
						       : store_fail(m, r, "reading eBPF buckets");
	for (size_t i = 0; i < m->n_stacks; i++)
		m->stacks[i].frames = m->frames + (uintptr_t)m->stacks[i].frames;
	return 0;
}

/* ---- emitting ------------------------------------------------------------------------ */

struct emission {
	const struct store_process *proc;
	int64_t from_s, until_s;
	const char *kind;	   /* "merged" or "ebpf" */
	const struct profile *sdk; /* merged: the SDK profile */
	enum runtime runtime;
	const struct labels *labels;
	const char *tenant;
	int64_t sdk_id; /* merged: the profile to mark */
};

/* Splices (or copies) the buckets read into one profile, checks that every
 * sample is there, and queues it; the caller holds the transaction. */
static int queue_profile(struct merger *m, const struct emission *e, struct merger_stats *st)
{
	struct merger_splice_stats ss = {0};
	struct merger_splice_input in = {
		.runtime = e->runtime,
		.pid = e->proc->pid,
		.stacks = m->stacks,
		.n_stacks = m->n_stacks,
		.sdk = e->sdk,
		.period = m->period,
	};
	struct profile *out = NULL;
	struct dynbuf pprof, series;
	int64_t total = 0, want;
	int r;

	dynbuf__init(&pprof, 0);
	dynbuf__init(&series, 0);
	out = merger__new_profile(m->period, e->from_s * NS, e->until_s * NS);
	if (!out) {
		r = -ENOMEM;
		goto cleanup;
	}
	/* the SDK's Python lines, read under the process's root; the stacks
	 * remembered from the process's earlier profiles (runtimes whose SDK
	 * lines say what they call: the splice uses them for no other) */
	if (e->sdk) {
		r = merger__source_new(e->proc->pid, &in.source);
		if (r < 0)
			goto cleanup;
	}
	if (e->sdk && merger_sdk_line_calls(e->runtime)) {
		in.reserve = merger_reserves__get(m->reserves, e->proc->id, e->until_s);
		in.reserve_out = profile__new();
		if (!in.reserve_out) {
			r = -ENOMEM;
			goto cleanup;
		}
	}
	r = merger__splice(&in, out, &ss);
	if (r < 0) {
		r = fail(m, r, "splicing pid %d [%" PRId64 ", %" PRId64 "): %s", e->proc->pid,
			 e->from_s, e->until_s, strerror(-r));
		goto cleanup;
	}
	r = profile__totals(out, &total);
	if (r < 0)
		goto cleanup;
	/* conservation, checked before anything is committed */
	if (ss.samples != m->samples || __builtin_mul_overflow(m->samples, m->period, &want) ||
	    total != want) {
		r = fail(m, -EPROTO,
			 "pid %d [%" PRId64 ", %" PRId64 "): %" PRId64 " samples read, %" PRId64
			 " in the profile: not queued",
			 e->proc->pid, e->from_s, e->until_s, m->samples, total / m->period);
		goto cleanup;
	}
	r = profile__to_pprof(out, true, &pprof);
	if (r == 0)
		r = series_key(e->labels, &series);
	if (r < 0)
		goto cleanup;
	struct store_outbox_item it = {
		.series = series.data,
		.tenant = e->tenant,
		.kind = e->kind,
		.labels = e->labels->l,
		.n_labels = e->labels->n,
		.from_ns = e->from_s * NS,
		.until_ns = e->until_s * NS,
		.payload = pprof.data,
		.payload_len = pprof.len,
	};
	r = store__outbox_add(m->s, &it, NULL);
	if (r < 0) {
		r = store_fail(m, r, "queueing a profile");
		goto cleanup;
	}
	st->samples_in += m->samples;
	if (e->sdk) {
		st->merged_profiles++;
		st->samples_merged += m->samples;
		st->samples_spliced += ss.spliced;
		st->samples_by_thread += ss.thread_samples;
		st->samples_native_calls += ss.native_call_samples;
		st->samples_remembered += ss.remembered_samples;
		if (in.reserve_out) {
			merger_reserves__put(m->reserves, e->proc->id, in.reserve_out, e->until_s);
			in.reserve_out = NULL;
		}
	} else {
		st->ebpf_profiles++;
		st->samples_ebpf += m->samples;
	}
cleanup:
	merger__source_free(in.source);
	profile__free(in.reserve_out);
	profile__free(out);
	dynbuf__free(&pprof);
	dynbuf__free(&series);
	return r;
}

static void ebpf_labels(const struct store_process *p, struct labels *ls)
{
	ls->n = 0;
	labels_set(ls, "__name__", "process_cpu");
	labels_set(ls, "service_name", service_of(p));
	labels_set(ls, MERGER_VIEW_LABEL, "ebpf");
}

static int on_first_bucket(void *ctx, const struct store_bucket *b)
{
	*(int64_t *)ctx = b->second;
	return 1; /* stops the walk */
}

/* The first second in [from_s, until_s) with a bucket of the process, or
 * until_s if none. */
static int first_second(struct merger *m, int64_t process_id, int64_t from_s, int64_t until_s,
			int64_t *ret)
{
	int64_t first = until_s;
	int r = store__buckets(m->s, process_id, from_s, until_s, on_first_bucket, &first);

	if (r < 0)
		return store_fail(m, r, "reading eBPF buckets");
	*ret = first;
	return 0;
}

/* eBPF-only profiles of [from_s, until_s), one per collect interval from the
 * first second with samples, each in its own transaction with the
 * watermark. */
static int emit_ebpf(struct merger *m, const struct store_process *p, int64_t from_s,
		     int64_t until_s, struct merger_stats *st)
{
	struct labels ls;
	int r = 0;

	ebpf_labels(p, &ls);
	for (int64_t t = from_s; t < until_s;) {
		int64_t end;

		r = first_second(m, p->id, t, until_s, &t);
		if (r < 0)
			return r;
		if (t >= until_s) {
			/* nothing left: the watermark still moves, so that
			 * the next pass starts here */
			r = store__mark_emitted(m->s, p->id, until_s);
			return r < 0 ? store_fail(m, r, "moving the watermark") : 0;
		}
		end = t + m->o.collect_interval_s < until_s ? t + m->o.collect_interval_s : until_s;
		struct emission e = {
			.proc = p,
			.from_s = t,
			.until_s = end,
			.kind = "ebpf",
			.runtime = p->runtime,
			.labels = &ls,
		};

		r = store__begin(m->s);
		if (r < 0)
			return store_fail(m, r, "starting a transaction");
		r = read_buckets(m, p->id, t, end);
		if (r == 0 && m->n_stacks)
			r = queue_profile(m, &e, st);
		if (r == 0) {
			r = store__mark_emitted(m->s, p->id, end);
			if (r < 0)
				r = store_fail(m, r, "moving the watermark");
		}
		if (r == 0) {
			r = store__commit(m->s);
			if (r < 0)
				r = store_fail(m, r, "committing");
		}
		if (r < 0) {
			store__rollback(m->s);
			return r;
		}
		t = end;
	}
	return 0;
}

/* ---- pass-through ----------------------------------------------------------------------- */

/* SDK profiles of one query batch, copied out of the store's callback. */
struct sdk_row {
	int64_t id, process_id, from_ns, until_ns;
	char *service, *tenant, *spy, *format;
	struct labels labels;
	char *label_mem[2 * STORE_MAX_LABELS];
	size_t n_mem;
};

struct sdk_batch {
	struct sdk_row *rows;
	size_t n, cap;
};

static void batch_clear(struct sdk_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct sdk_row *r = &b->rows[i];

		free(r->service);
		free(r->tenant);
		free(r->spy);
		free(r->format);
		for (size_t k = 0; k < r->n_mem; k++)
			free(r->label_mem[k]);
	}
	b->n = 0;
}

static void batch_free(struct sdk_batch *b)
{
	batch_clear(b);
	free(b->rows);
	b->rows = NULL;
	b->cap = 0;
}

static char *dup_or_null(const char *s, int *err)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*err = -ENOMEM;
	return d;
}

static int on_sdk_row(void *ctx, const struct store_sdk_profile *p)
{
	struct sdk_batch *b = ctx;
	struct sdk_row *r;
	int err = util__grow((void **)&b->rows, &b->cap, b->n + 1, sizeof(*b->rows));

	if (err < 0)
		return err;
	r = &b->rows[b->n];
	memset(r, 0, sizeof(*r));
	b->n++;
	r->id = p->id;
	r->process_id = p->process_id;
	r->from_ns = p->from_ns;
	r->until_ns = p->until_ns;
	r->service = dup_or_null(p->service, &err);
	r->tenant = dup_or_null(p->tenant, &err);
	r->spy = dup_or_null(p->spy_name, &err);
	r->format = dup_or_null(p->format, &err);
	for (size_t i = 0; i < p->n_labels && i < STORE_MAX_LABELS; i++) {
		char *n = dup_or_null(p->labels[i].name, &err);
		char *v = dup_or_null(p->labels[i].value, &err);

		r->label_mem[r->n_mem++] = n;
		r->label_mem[r->n_mem++] = v;
		if (n && v)
			r->labels.l[r->labels.n++] = (struct label){n, v};
	}
	return err;
}

bool merger__valid_profile_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > MERGER_MAX_PROFILE_NAME || isdigit((unsigned char)s[0]) ||
	    strncmp(s, "__", 2) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Whether an SDK profile's pass-through copy leaves as sdk_cpu_name: its
 * process_cpu profile of a process whose CPU the merged and eBPF-only
 * views already give, in a format whose __name__ the push API carries. */
static bool renames_cpu(const struct merger *m, const struct sdk_row *row)
{
	const char *name = NULL;

	if (!m->o.sdk_cpu_name || row->process_id <= 0 ||
	    (row->format && strcmp(row->format, "pprof") != 0))
		return false;
	for (size_t i = 0; i < row->labels.n; i++)
		if (strcmp(row->labels.l[i].name, "__name__") == 0)
			name = row->labels.l[i].value;
	return name && strcmp(name, "process_cpu") == 0;
}

struct jfr_read {
	struct merger_sdk_copies copies;
	struct errbuf err;
	int r;
};

static int on_jfr_payload(void *ctx, const struct store_sdk_profile *p)
{
	struct jfr_read *j = ctx;

	j->r = merger_sdk__jfr_copies(p, NULL, &j->err, &j->copies);
	return 0;
}

/* A JFR push of a process braid samples leaves as its recording's profiles
 * in pprof (what Pyroscope would make of it), its process_cpu as
 * sdk_cpu_name: the push itself would give Pyroscope a second process_cpu.
 * 1 when they are queued, 0 when the push is to pass as pushed (braid can't
 * read it, or it holds no profile: Pyroscope gets what it would have). */
static int queue_jfr_copies(struct merger *m, struct sdk_row *row, struct merger_stats *st)
{
	struct jfr_read j = {0};
	struct dynbuf series;
	bool renamed = false;
	int r;

	if (!m->o.sdk_cpu_name || row->process_id <= 0 || !row->format ||
	    strcmp(row->format, "jfr") != 0)
		return 0;
	dynbuf__init(&series, 0);
	r = store__get_sdk_profile(m->s, row->id, on_jfr_payload, &j);
	if (r == -ENOENT) {
		r = 0; /* removed by retention since it was listed */
		goto cleanup;
	}
	if (r < 0) {
		r = store_fail(m, r, "reading an SDK profile");
		goto cleanup;
	}
	if (j.r < 0 || !j.copies.n)
		goto cleanup; /* r == 0 */
	r = store__begin(m->s);
	if (r < 0) {
		r = store_fail(m, r, "starting a transaction");
		goto cleanup;
	}
	for (size_t i = 0; r == 0 && i < j.copies.n; i++) {
		const struct merger_sdk_copy *c = &j.copies.c[i];
		bool cpu = strcmp(c->metric, "process_cpu") == 0;
		struct labels ls = row->labels; /* __name__ "jfr" replaced */
		struct store_outbox_item it = {0};

		labels_set(&ls, "__name__", cpu ? m->o.sdk_cpu_name : c->metric);
		labels_set(&ls, MERGER_VIEW_LABEL, "sdk");
		if (row->spy)
			labels_set(&ls, "pyroscope_spy", row->spy);
		if (j.copies.jfr_event[0])
			labels_set(&ls, "jfr_event", j.copies.jfr_event);
		r = series_key(&ls, &series);
		if (r < 0)
			break;
		it.series = series.data;
		it.tenant = row->tenant;
		it.kind = "sdk";
		it.labels = ls.l;
		it.n_labels = ls.n;
		it.from_ns = row->from_ns;
		it.until_ns = row->until_ns;
		it.payload = c->pprof.data;
		it.payload_len = c->pprof.len;
		it.sdk_profile_id = row->id;
		r = store__outbox_add(m->s, &it, NULL);
		if (r == -ENOENT)
			break; /* removed by retention since it was listed */
		if (r < 0)
			r = store_fail(m, r, "queueing a JFR push's profile");
		renamed |= cpu;
	}
	if (r == -ENOENT) {
		store__rollback(m->s);
		r = 1; /* nothing left to pass on */
		goto cleanup;
	}
	if (r == 0) {
		r = store__commit(m->s);
		if (r < 0)
			r = store_fail(m, r, "committing");
	}
	if (r < 0) {
		store__rollback(m->s);
		goto cleanup;
	}
	st->sdk_passed += (int64_t)j.copies.n;
	st->sdk_cpu_renamed += renamed;
	r = 1;
cleanup:
	merger_sdk__copies_free(&j.copies);
	dynbuf__free(&series);
	return r;
}

/* Step 1: every SDK profile not yet queued goes to the outbox as pushed
 * (its process_cpu under sdk_cpu_name when its process is merged). */
static int pass_through(struct merger *m, struct merger_stats *st)
{
	struct sdk_batch batch = {0}, *b = &batch;
	struct dynbuf series;
	int r = 0;

	dynbuf__init(&series, 0);
	for (;;) {
		struct store_sdk_query q = {.unqueued_only = true, .limit = BATCH};

		r = store__sdk_profiles(m->s, &q, on_sdk_row, b);
		if (r < 0) {
			r = r == -ENOMEM ? r : store_fail(m, r, "listing SDK profiles");
			break;
		}
		if (!b->n)
			break;
		for (size_t i = 0; i < b->n; i++) {
			struct sdk_row *row = &b->rows[i];
			struct store_outbox_item it = {0};

			r = queue_jfr_copies(m, row, st);
			if (r < 0)
				break;
			if (r > 0) {
				r = 0;
				continue;
			}
			if (renames_cpu(m, row)) {
				labels_set(&row->labels, "__name__", m->o.sdk_cpu_name);
				st->sdk_cpu_renamed++;
			}
			labels_set(&row->labels, MERGER_VIEW_LABEL, "sdk");
			r = series_key(&row->labels, &series);
			if (r < 0)
				break;
			it.series = series.data;
			it.tenant = row->tenant;
			it.kind = "sdk";
			it.labels = row->labels.l;
			it.n_labels = row->labels.n;
			it.from_ns = row->from_ns;
			it.until_ns = row->until_ns;
			it.sdk_profile_id = row->id;
			r = store__outbox_add(m->s, &it, NULL);
			if (r == -ENOENT) {
				r = 0; /* removed by retention since it was listed */
				continue;
			}
			if (r < 0) {
				r = store_fail(m, r, "queueing an SDK profile");
				break;
			}
			st->sdk_passed++;
		}
		batch_clear(b);
		if (r < 0)
			break;
	}
	batch_free(b);
	dynbuf__free(&series);
	return r;
}

/* ---- merges ----------------------------------------------------------------------------- */

struct decoded {
	struct profile *p;
	struct errbuf err;
	int r;
};

static int on_sdk_payload(void *ctx, const struct store_sdk_profile *p)
{
	struct decoded *d = ctx;

	d->r = merger_sdk__decode(p, NULL, &d->err, &d->p);
	return 0;
}

static enum runtime runtime_for(const struct store_process *p, const char *spy)
{
	enum runtime r = profile__runtime_of_spy(spy);

	/* the SDK knows its language better than an exe name does */
	return r != RUNTIME_UNKNOWN ? r : p->runtime;
}

/* Splices one ready CPU SDK profile with its process's buckets. */
static int merge_one(struct merger *m, struct sdk_row *row, struct merger_stats *st)
{
	struct proc pc = {0};
	struct decoded d = {0};
	struct labels ls = {0};
	int64_t from_s = floor_s(row->from_ns), until_s = ceil_s(row->until_ns);
	int r;

	r = get_process(m, row->process_id, &pc);
	if (r < 0)
		return r;
	/* seconds before the SDK range that nothing covered leave first */
	if (pc.p.ebpf_emitted_s < from_s) {
		r = emit_ebpf(m, &pc.p, pc.p.ebpf_emitted_s, from_s, st);
		if (r < 0)
			goto cleanup;
		pc.p.ebpf_emitted_s = from_s;
	}
	if (pc.p.ebpf_emitted_s > from_s)
		from_s = pc.p.ebpf_emitted_s;
	r = store__get_sdk_profile(m->s, row->id, on_sdk_payload, &d);
	if (r < 0) {
		r = store_fail(m, r, "reading an SDK profile");
		goto cleanup;
	}
	if (d.r < 0)
		st->sdk_unusable++; /* its range leaves eBPF-only */
	/* labels: the SDK's, as a CPU profile of the merged view */
	for (size_t i = 0; i < row->labels.n; i++)
		labels_set(&ls, row->labels.l[i].name, row->labels.l[i].value);
	labels_set(&ls, "__name__", "process_cpu");
	labels_set(&ls, "service_name", row->service ? row->service : service_of(&pc.p));
	labels_set(&ls, MERGER_VIEW_LABEL, d.r < 0 ? "ebpf" : "merged");

	r = store__begin(m->s);
	if (r < 0) {
		r = store_fail(m, r, "starting a transaction");
		goto cleanup;
	}
	if (from_s < until_s) {
		struct emission e = {
			.proc = &pc.p,
			.from_s = from_s,
			.until_s = until_s,
			.kind = d.r < 0 ? "ebpf" : "merged",
			.sdk = d.r < 0 ? NULL : d.p,
			.runtime = runtime_for(&pc.p, row->spy),
			.labels = &ls,
			.tenant = row->tenant,
		};

		r = read_buckets(m, pc.p.id, from_s, until_s);
		if (r == 0 && m->n_stacks)
			r = queue_profile(m, &e, st);
		if (r == 0) {
			r = store__mark_emitted(m->s, pc.p.id, until_s);
			if (r < 0)
				r = store_fail(m, r, "moving the watermark");
		}
	} else {
		st->sdk_late++; /* its range had already left eBPF-only */
	}
	if (r == 0) {
		r = store__sdk_mark_merged(m->s, row->id);
		if (r < 0)
			r = store_fail(m, r, "marking an SDK profile merged");
	}
	if (r == 0) {
		r = store__commit(m->s);
		if (r < 0)
			r = store_fail(m, r, "committing");
	}
	if (r < 0)
		store__rollback(m->s);
cleanup:
	profile__free(d.p);
	proc_release(&pc);
	return r;
}

/* Processes with an SDK profile not ready yet: nothing of theirs from it on
 * may leave before it. */
struct blocked {
	int64_t *ids;
	size_t n, cap;
};

static bool is_blocked(const struct blocked *b, int64_t id)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->ids[i] == id)
			return true;
	return false;
}

/* Step 2: every CPU SDK profile whose range ended settle_s ago, in time
 * order. There are few unmerged ones (about one per SDK process), so they
 * are read in one list. */
static int merges(struct merger *m, int64_t now_s, struct merger_stats *st)
{
	struct sdk_batch b = {0};
	struct blocked bl = {0};
	struct store_sdk_query q = {.unmerged_only = true, .cpu_time_only = true};
	int r;

	r = store__sdk_profiles(m->s, &q, on_sdk_row, &b);
	if (r < 0) {
		r = r == -ENOMEM ? r : store_fail(m, r, "listing SDK profiles");
		goto cleanup;
	}
	for (size_t i = 0; r == 0 && i < b.n; i++) {
		struct sdk_row *row = &b.rows[i];

		if (row->process_id <= 0) {
			/* no process to splice with: it is only passed through */
			r = store__sdk_mark_merged(m->s, row->id);
			if (r < 0)
				r = store_fail(m, r, "marking an SDK profile merged");
			st->sdk_unattributed++;
			continue;
		}
		if (is_blocked(&bl, row->process_id))
			continue;
		if (ceil_s(row->until_ns) + m->o.settle_s > now_s) {
			r = util__grow((void **)&bl.ids, &bl.cap, bl.n + 1, sizeof(*bl.ids));
			if (r == 0)
				bl.ids[bl.n++] = row->process_id;
			continue;
		}
		r = merge_one(m, row, st);
	}
cleanup:
	batch_free(&b);
	free(bl.ids);
	return r;
}

/* ---- eBPF-only ---------------------------------------------------------------------------- */

struct pending {
	int64_t process_id;
	int64_t first_s;
	int64_t sdk_profiles;
};

struct pending_list {
	struct pending *p;
	size_t n, cap;
};

static int on_uncovered(void *ctx, const struct store_uncovered *u)
{
	struct pending_list *l = ctx;
	int r = util__grow((void **)&l->p, &l->cap, l->n + 1, sizeof(*l->p));

	if (r == 0)
		l->p[l->n++] = (struct pending){u->process->id, u->first_s, u->sdk_profiles};
	return r;
}

struct first_from {
	int64_t from_ns;
	bool found;
};

static int on_first(void *ctx, const struct store_sdk_profile *p)
{
	struct first_from *f = ctx;

	if (!f->found) {
		f->from_ns = p->from_ns;
		f->found = true;
	}
	return 0;
}

/* Step 3: samples no SDK profile covers. */
static int uncovered(struct merger *m, int64_t now_s, bool final, struct merger_stats *st)
{
	struct pending_list l = {0};
	bool collect = final || now_s >= m->next_collect_s;
	/* the last second is complete only once the agent's final drain is in */
	int64_t before_s = final ? now_s : now_s - m->o.settle_s;
	int r;

	r = store__uncovered(m->s, before_s, on_uncovered, &l);
	if (r < 0) {
		r = r == -ENOMEM ? r : store_fail(m, r, "finding uncovered samples");
		goto cleanup;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct proc p = {0};
		int64_t until_s = before_s, from_s;

		if (l.p[i].sdk_profiles > 0) {
			/* waits for SDK coverage up to the grace period, and never
			 * past an SDK profile still to be merged */
			struct first_from ff = {0};
			struct store_sdk_query q = {
				.process_id = l.p[i].process_id,
				.unmerged_only = true,
				.cpu_time_only = true,
				.limit = 1,
			};

			if (now_s - m->o.grace_s < until_s)
				until_s = now_s - m->o.grace_s;
			r = store__sdk_profiles(m->s, &q, on_first, &ff);
			if (r < 0) {
				r = store_fail(m, r, "listing SDK profiles");
				goto cleanup;
			}
			if (ff.found && floor_s(ff.from_ns) < until_s)
				until_s = floor_s(ff.from_ns);
		} else if (!collect) {
			continue;
		}
		r = get_process(m, l.p[i].process_id, &p);
		if (r < 0)
			goto cleanup;
		from_s = p.p.ebpf_emitted_s > l.p[i].first_s ? p.p.ebpf_emitted_s : l.p[i].first_s;
		if (from_s < until_s)
			r = emit_ebpf(m, &p.p, from_s, until_s, st);
		proc_release(&p);
		if (r < 0)
			goto cleanup;
	}
	if (collect && !final)
		m->next_collect_s = now_s + m->o.collect_interval_s;
cleanup:
	free(l.p);
	return r;
}

int merger__run(struct merger *m, int64_t now_ns, bool final, struct merger_stats *ret)
{
	struct merger_stats st = {.passes = 1};
	int64_t now_s = floor_s(now_ns);
	int r;

	m->errmsg[0] = '\0';
	r = pass_through(m, &st);
	if (r == 0)
		r = merges(m, now_s, &st);
	if (r == 0)
		r = uncovered(m, now_s, final, &st);
	if (r == -ENOMEM && !m->errmsg[0])
		fail(m, r, "out of memory");
	m->total.passes += st.passes;
	m->total.merged_profiles += st.merged_profiles;
	m->total.ebpf_profiles += st.ebpf_profiles;
	m->total.sdk_passed += st.sdk_passed;
	m->total.samples_in += st.samples_in;
	m->total.samples_merged += st.samples_merged;
	m->total.samples_spliced += st.samples_spliced;
	m->total.samples_by_thread += st.samples_by_thread;
	m->total.samples_native_calls += st.samples_native_calls;
	m->total.samples_remembered += st.samples_remembered;
	m->total.samples_ebpf += st.samples_ebpf;
	m->total.sdk_late += st.sdk_late;
	m->total.sdk_unusable += st.sdk_unusable;
	m->total.sdk_unattributed += st.sdk_unattributed;
	m->total.sdk_cpu_renamed += st.sdk_cpu_renamed;
	if (ret)
		*ret = st;
	return r;
}
