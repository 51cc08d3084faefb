/* SPDX-License-Identifier: Apache-2.0 */
/* merger/: a report's input read from the store. The processes of a service
 * (or a PID) seen in a range, each with its eBPF buckets (split by whether
 * an SDK profile covers their second) and its CPU SDK profiles summed. */
#define _GNU_SOURCE
#include "merger/merger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROCESSES 256 /* in one report */

struct range {
	int64_t from, until;
};

struct rproc {
	int64_t id;
	int32_t pid;
	enum runtime runtime;
	struct merger_ebpf_stack *covered, *uncovered;
	size_t n_covered, cap_covered, n_uncovered, cap_uncovered;
	struct profile *sdk;
	struct range *ranges;
	size_t n_ranges, cap_ranges;
};

struct gather {
	struct store *s;
	struct errbuf *err;
	struct arena arena;
	struct rproc procs[MAX_PROCESSES];
	size_t n_procs;
	bool too_many;
	struct rproc *cur;
	size_t sdk_profiles, unattributed;
	int64_t sdk_from, sdk_until, ebpf_from_s, ebpf_until_s, sample_rate;
	const char *spy;
	char service[256];
	struct profile_limits lim;
};

static int on_process(void *ctx, const struct store_process *p)
{
	struct gather *g = ctx;

	if (g->n_procs == MAX_PROCESSES) {
		g->too_many = true;
		return 0;
	}
	g->procs[g->n_procs++] = (struct rproc){.id = p->id, .pid = p->pid, .runtime = p->runtime};
	if (!g->service[0])
		snprintf(g->service, sizeof(g->service), "%s",
			 p->service ? p->service
			 : p->comm  ? p->comm
				    : "");
	return 0;
}

static int on_sdk(void *ctx, const struct store_sdk_profile *p)
{
	struct gather *g = ctx;
	struct rproc *pr = g->cur;
	struct profile *prof = NULL;
	int rc;

	if (!pr) { /* the service's profiles no process was found for */
		if (p->process_id == 0)
			g->unattributed++;
		return 0;
	}
	rc = merger_sdk__decode(p, &g->lim, g->err, &prof);
	if (rc < 0)
		return 0; /* unreadable: the merge loop counted it; not this report's */
	if (!pr->sdk) {
		pr->sdk = prof;
	} else {
		rc = profile__merge(pr->sdk, prof);
		profile__free(prof);
		if (rc == -EINVAL)
			return 0; /* another kind of profile: the first one's kind is kept */
		if (rc < 0)
			return errbuf__set(g->err, rc, "adding SDK profile %" PRId64, p->id);
	}
	rc = util__grow((void **)&pr->ranges, &pr->cap_ranges, pr->n_ranges + 1,
			sizeof(*pr->ranges));
	if (rc < 0)
		return errbuf__set(g->err, rc, "out of memory");
	pr->ranges[pr->n_ranges++] = (struct range){p->from_ns, p->until_ns};
	g->sdk_profiles++;
	if (!g->sdk_from || p->from_ns < g->sdk_from)
		g->sdk_from = p->from_ns;
	if (p->until_ns > g->sdk_until)
		g->sdk_until = p->until_ns;
	/* the rate the pprof's period says (the Node SDK's sampleRate query
	 * parameter is not its sampling rate), else the push's */
	if (!g->sample_rate)
		g->sample_rate = merger__sample_rate_of(pr->sdk);
	if (!g->sample_rate && p->sample_rate > 0)
		g->sample_rate = p->sample_rate;
	if (pr->runtime == RUNTIME_UNKNOWN || pr->runtime == RUNTIME_NATIVE) {
		enum runtime rt = profile__runtime_of_spy(p->spy_name);

		if (merger__can_splice(rt))
			pr->runtime = rt;
	}
	return 0;
}

static bool covered(const struct rproc *pr, int64_t second)
{
	for (size_t i = 0; i < pr->n_ranges; i++)
		if (pr->ranges[i].from < (second + 1) * 1000000000 &&
		    pr->ranges[i].until > second * 1000000000)
			return true;
	return false;
}

static int on_bucket(void *ctx, const struct store_bucket *b)
{
	struct gather *g = ctx;
	struct rproc *pr = g->cur;
	struct frame *frames;
	struct merger_ebpf_stack **arr;
	size_t *n, *cap;
	int rc;

	frames = arena__alloc(&g->arena, (b->n_frames ? b->n_frames : 1) * sizeof(*frames));
	if (!frames)
		return errbuf__set(g->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < b->n_frames; i++) {
		frames[i] = b->frames[i];
		frames[i].name = arena__strdup(&g->arena, b->frames[i].name);
		frames[i].module = arena__strdup(&g->arena, b->frames[i].module);
		if ((b->frames[i].name && !frames[i].name) ||
		    (b->frames[i].module && !frames[i].module))
			return errbuf__set(g->err, -ENOMEM, "out of memory");
	}
	if (covered(pr, b->second)) {
		arr = &pr->covered;
		n = &pr->n_covered;
		cap = &pr->cap_covered;
	} else {
		arr = &pr->uncovered;
		n = &pr->n_uncovered;
		cap = &pr->cap_uncovered;
	}
	rc = util__grow((void **)arr, cap, *n + 1, sizeof(**arr));
	if (rc < 0)
		return errbuf__set(g->err, rc, "out of memory");
	(*arr)[(*n)++] = (struct merger_ebpf_stack){.frames = frames,
						    .n_frames = b->n_frames,
						    .tid = b->tid,
						    .thread_pointer = b->thread_pointer,
						    .count = b->count};
	if (!g->ebpf_from_s || b->second < g->ebpf_from_s)
		g->ebpf_from_s = b->second;
	if (b->second + 1 > g->ebpf_until_s)
		g->ebpf_until_s = b->second + 1;
	if (!merger__can_splice(pr->runtime)) {
		enum runtime rt = merger__runtime_of_frames(frames, b->n_frames);

		if (rt != RUNTIME_UNKNOWN)
			pr->runtime = rt;
	}
	return 0;
}

int merger__report_from_store(struct store *s, const struct merger_report_query *q,
			      struct errbuf *err, struct merger_report **ret)
{
	struct gather *g = calloc(1, sizeof(*g));
	struct merger_report_part *parts = NULL;
	struct merger_report_input in = {0};
	char title[400], source[600];
	int64_t from = q->from_ns, until = q->until_ns;
	unsigned freq = q->freq ? q->freq : 97;
	int rc;

	if (!g)
		return errbuf__set(err, -ENOMEM, "out of memory");
	g->s = s;
	g->err = err;
	profile_limits__default(&g->lim);
	if (!q->service && !q->pid) {
		rc = errbuf__set(err, -EINVAL, "name a service or a PID");
		goto cleanup;
	}
	rc = store__processes(
		s,
		&(struct store_process_query){
			.service = q->service, .pid = q->pid, .from_ns = from, .until_ns = until},
		on_process, g);
	if (rc < 0) {
		errbuf__set(err, rc, "%s", store__errmsg(s));
		goto cleanup;
	}
	if (!g->n_procs) {
		rc = q->service ? errbuf__set(err, -ENOENT,
					      "no process of service '%s' was seen in that range",
					      q->service)
				: errbuf__set(err, -ENOENT, "no process %d was seen in that range",
					      q->pid);
		goto cleanup;
	}
	for (size_t i = 0; i < g->n_procs; i++) {
		struct rproc *pr = &g->procs[i];

		g->cur = pr;
		rc = store__sdk_profiles(s,
					 &(struct store_sdk_query){.process_id = pr->id,
								   .from_ns = from,
								   .until_ns = until,
								   .cpu_time_only = true,
								   .with_payload = true},
					 on_sdk, g);
		if (rc == 0)
			rc = store__buckets(s, pr->id, from / 1000000000,
					    until ? (until + 999999999) / 1000000000 : INT64_MAX,
					    on_bucket, g);
		if (rc < 0) {
			if (!err->msg[0])
				errbuf__set(err, rc, "%s", store__errmsg(s));
			goto cleanup;
		}
	}
	/* the service's CPU profiles no process took */
	g->cur = NULL;
	if (q->service) {
		rc = store__sdk_profiles(s,
					 &(struct store_sdk_query){.service = q->service,
								   .from_ns = from,
								   .until_ns = until,
								   .cpu_time_only = true},
					 on_sdk, g);
		if (rc < 0) {
			errbuf__set(err, rc, "%s", store__errmsg(s));
			goto cleanup;
		}
	}
	parts = calloc(g->n_procs, sizeof(*parts));
	if (!parts) {
		rc = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < g->n_procs; i++)
		parts[i] = (struct merger_report_part){.pid = g->procs[i].pid,
						       .runtime = g->procs[i].runtime,
						       .stacks = g->procs[i].covered,
						       .n_stacks = g->procs[i].n_covered,
						       .uncovered = g->procs[i].uncovered,
						       .n_uncovered = g->procs[i].n_uncovered,
						       .sdk = g->procs[i].sdk};
	if (g->n_procs == 1)
		snprintf(title, sizeof(title), "%s (pid %d)", q->service ? q->service : g->service,
			 g->procs[0].pid);
	else
		snprintf(title, sizeof(title), "%s (%zu processes%s)",
			 q->service ? q->service : g->service, g->n_procs,
			 g->too_many ? ", the first "
				       "256"
				     : "");
	snprintf(source, sizeof(source), "store %s", store__path(s));
	in = (struct merger_report_input){
		.title = title,
		.source = source,
		.service = q->service ? q->service : g->service,
		.pid = g->n_procs == 1 ? g->procs[0].pid : 0,
		.from_ns = from ? from : g->ebpf_from_s * 1000000000,
		.until_ns = until ? until : g->ebpf_until_s * 1000000000,
		.period = 1000000000 / freq,
		.parts = parts,
		.n_parts = g->n_procs,
		.sdk_profiles = g->sdk_profiles,
		.sdk_from_ns = g->sdk_from,
		.sdk_until_ns = g->sdk_until,
		.sdk_sample_rate = g->sample_rate,
		.ebpf_from_ns = g->ebpf_from_s * 1000000000,
		.ebpf_until_ns = g->ebpf_until_s * 1000000000,
		.sdk_unattributed = g->unattributed,
	};
	rc = merger__report_new(&in, ret);
	if (rc < 0)
		errbuf__set(err, rc, "computing the report: %s", strerror(-rc));
cleanup:
	for (size_t i = 0; i < g->n_procs; i++) {
		free(g->procs[i].covered);
		free(g->procs[i].uncovered);
		free(g->procs[i].ranges);
		profile__free(g->procs[i].sdk);
	}
	arena__free(&g->arena);
	free(parts);
	free(g);
	return rc;
}
