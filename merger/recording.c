/* SPDX-License-Identifier: Apache-2.0 */
/* merger/: a `braid record` profile split into stacks per process, for the
 * splice on files (braid merge) and for reports (braid report). */
#include "merger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct proc {
	struct merger_process pub;
	struct merger_ebpf_stack *stacks;
	size_t cap;
};

struct merger_recording {
	struct profile *p;
	int64_t period;
	int type; /* the sample type holding cpu time or counts */
	bool counts;
	struct frame *frames; /* by location id */
	struct proc *procs;
	size_t n_procs, cap_procs;
	struct frame *pool;
	size_t n_pool;
	uint32_t pid_key, tid_key, runtime_key, tp_key;
};

void merger__recording_free(struct merger_recording *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_procs; i++)
		free(r->procs[i].stacks);
	free(r->procs);
	free(r->frames);
	free(r->pool);
	profile__free(r->p);
	free(r);
}

static struct proc *proc_get(struct merger_recording *r, int32_t pid)
{
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].pub.pid == pid)
			return &r->procs[i];
	if (util__grow((void **)&r->procs, &r->cap_procs, r->n_procs + 1, sizeof(*r->procs)) < 0)
		return NULL;
	r->procs[r->n_procs] = (struct proc){.pub.pid = pid};
	return &r->procs[r->n_procs++];
}

static int64_t label_num(const struct profile *p, uint32_t set, uint32_t key, int64_t dflt)
{
	const struct profile_label *l;
	size_t n = profile__labels(p, set, &l);

	for (size_t i = 0; key && i < n; i++)
		if (l[i].key == key && !l[i].str)
			return l[i].num;
	return dflt;
}

static const char *label_str(const struct profile *p, uint32_t set, uint32_t key)
{
	const struct profile_label *l;
	size_t n = profile__labels(p, set, &l);

	for (size_t i = 0; key && i < n; i++)
		if (l[i].key == key && l[i].str)
			return profile__str(p, l[i].str);
	return NULL;
}

/* Reads the samples into stacks per process. */
static int split(struct merger_recording *r, struct errbuf *err)
{
	size_t n_locs = profile__n_locations(r->p), n_samples = profile__n_samples(r->p);
	size_t total_frames = 0;
	int rc;

	r->frames = calloc(n_locs + 1, sizeof(*r->frames));
	if (!r->frames)
		return errbuf__set(err, -ENOMEM, "is too big to split: out of memory");
	for (uint32_t id = 1; id <= n_locs; id++) {
		rc = merger__frame_of_location(r->p, id, &r->frames[id]);
		if (rc < 0)
			return errbuf__set(err, rc, "has a broken location %u", id);
	}
	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(r->p, i);

		total_frames += profile__stack(r->p, s.stack, &(const uint32_t *){NULL});
	}
	r->pool = malloc((total_frames + 1) * sizeof(*r->pool));
	if (!r->pool)
		return errbuf__set(err, -ENOMEM, "is too big to split: out of memory");
	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(r->p, i);
		int64_t v = s.values[r->type], count;
		int32_t pid = (int32_t)label_num(r->p, s.labels, r->pid_key, -1);
		const uint32_t *locs;
		size_t depth = profile__stack(r->p, s.stack, &locs);
		struct proc *pr;

		if (v <= 0)
			continue;
		count = r->counts ? v : (v + r->period / 2) / r->period;
		if (count <= 0)
			continue;
		if (pid < 0)
			return errbuf__set(err, -EINVAL, "has a sample without a pid label");
		pr = proc_get(r, pid);
		if (!pr || util__grow((void **)&pr->stacks, &pr->cap, pr->pub.n_stacks + 1,
				      sizeof(*pr->stacks)) < 0)
			return errbuf__set(err, -ENOMEM, "is too big to split: out of memory");
		if (pr->pub.runtime == RUNTIME_UNKNOWN)
			pr->pub.runtime =
				profile__runtime_parse(label_str(r->p, s.labels, r->runtime_key));
		for (size_t k = 0; k < depth; k++)
			r->pool[r->n_pool + k] = r->frames[locs[k]];
		pr->stacks[pr->pub.n_stacks++] = (struct merger_ebpf_stack){
			.frames = r->pool + r->n_pool,
			.n_frames = depth,
			/* without a tid label every sample is taken as the main thread's */
			.tid = (int32_t)label_num(r->p, s.labels, r->tid_key, pid),
			.thread_pointer = (uint64_t)label_num(r->p, s.labels, r->tp_key, 0),
			.count = count,
		};
		r->n_pool += depth;
		pr->pub.samples += count;
	}
	for (size_t i = 0; i < r->n_procs; i++) {
		struct proc *pr = &r->procs[i];

		pr->pub.stacks = pr->stacks;
		/* a runtime the label does not name is told from the frames (kernel
		 * frames name none: the whole stack will do) */
		for (size_t k = 0; !merger__can_splice(pr->pub.runtime) && k < pr->pub.n_stacks;
		     k++) {
			enum runtime rt = merger__runtime_of_frames(pr->stacks[k].frames,
								    pr->stacks[k].n_frames);

			if (rt != RUNTIME_UNKNOWN)
				pr->pub.runtime = rt;
		}
	}
	return 0;
}

int merger__recording_new(struct profile *p, struct errbuf *err, struct merger_recording **ret)
{
	struct merger_recording *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		profile__free(p);
		return errbuf__set(err, -ENOMEM, "is too big to split: out of memory");
	}
	r->p = p;
	r->type = profile__find_sample_type(p, "cpu");
	r->period = profile__period(p);
	if (r->type < 0 || r->period <= 0) {
		r->type = profile__find_sample_type(p, "samples");
		r->counts = true;
	}
	if (r->type < 0 || r->period <= 0) {
		rc = errbuf__set(err, -EINVAL,
				 "has no cpu sample type with a period, nor samples: is it a "
				 "`braid record` profile?");
		goto fail;
	}
	r->pid_key = profile__find_string(p, "pid");
	r->tid_key = profile__find_string(p, "tid");
	r->runtime_key = profile__find_string(p, "runtime");
	r->tp_key = profile__find_string(p, "thread_pointer");
	if (!r->pid_key) {
		rc = errbuf__set(err, -EINVAL, "has no pid labels: record it with `braid record`");
		goto fail;
	}
	rc = split(r, err);
	if (rc < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	merger__recording_free(r);
	return rc;
}

size_t merger__recording_n_processes(const struct merger_recording *r)
{
	return r->n_procs;
}

const struct merger_process *merger__recording_process(const struct merger_recording *r, size_t i)
{
	return i < r->n_procs ? &r->procs[i].pub : NULL;
}

const struct merger_process *merger__recording_find(const struct merger_recording *r, int32_t pid)
{
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].pub.pid == pid)
			return &r->procs[i].pub;
	return NULL;
}

const struct merger_process *merger__recording_pick(const struct merger_recording *r, int32_t pid,
						    struct errbuf *err)
{
	const struct merger_process *found = NULL;
	size_t n = 0;

	if (pid) {
		found = merger__recording_find(r, pid);
		if (!found)
			errbuf__set(err, -ESRCH, "has no samples of pid %d", pid);
		return found;
	}
	for (size_t i = 0; i < r->n_procs; i++)
		if (merger__can_splice(r->procs[i].pub.runtime)) {
			found = &r->procs[i].pub;
			n++;
		}
	if (n != 1) {
		errbuf__set(err, -ESRCH,
			    "has %zu processes running Node.js or Python: name the one the SDK "
			    "profiled with --pid",
			    n);
		return NULL;
	}
	return found;
}

int64_t merger__recording_period(const struct merger_recording *r)
{
	return r->period;
}

const struct profile *merger__recording_profile(const struct merger_recording *r)
{
	return r->p;
}

void merger__recording_set_runtime(struct merger_recording *r, int32_t pid, enum runtime runtime)
{
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].pub.pid == pid)
			r->procs[i].pub.runtime = runtime;
}
