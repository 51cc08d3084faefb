/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: the SDK stacks the merge loop remembers per process (Python),
 * for the next profile's splice (merger_splice_input's reserve). py-spy
 * samples only the thread holding the GIL when the Python SDK asks it to
 * (gil_only, its default), and a call that releases the GIL (hashlib's
 * pbkdf2_hmac, os.pwrite) holds it for microseconds: a 10-second profile
 * often has no stack under such a call while eBPF has hundreds of samples in
 * it. The stacks an earlier profile showed making the call stand for it
 * then. docs/merger.md, "Native calls (Python)".
 *
 * A table of at most MAX_PROCESSES entries, the least recently used dropped
 * first, and an entry not renewed for MAX_AGE_S seconds of profile time.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdlib.h>

#define MAX_PROCESSES 256
#define MAX_AGE_S     900 /* 15 minutes */

struct reserve {
	int64_t process_id;
	int64_t seen_s; /* the until of the profile that left it */
	struct profile *p;
};

struct merger_reserves {
	struct reserve r[MAX_PROCESSES];
	size_t n;
};

int merger_reserves__new(struct merger_reserves **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void merger_reserves__free(struct merger_reserves *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		profile__free(rs->r[i].p);
	free(rs);
}

static void drop(struct merger_reserves *rs, size_t i)
{
	profile__free(rs->r[i].p);
	rs->r[i] = rs->r[--rs->n];
}

const struct profile *merger_reserves__get(const struct merger_reserves *rs, int64_t process_id,
					   int64_t now_s)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (rs->r[i].process_id == process_id)
			return now_s - rs->r[i].seen_s > MAX_AGE_S ? NULL : rs->r[i].p;
	return NULL;
}

void merger_reserves__put(struct merger_reserves *rs, int64_t process_id, struct profile *p,
			  int64_t now_s)
{
	size_t i, oldest = 0;

	if (!rs) {
		profile__free(p);
		return;
	}
	/* the stale ones first */
	for (i = 0; i < rs->n;) {
		if (rs->r[i].process_id == process_id || now_s - rs->r[i].seen_s > MAX_AGE_S)
			drop(rs, i);
		else
			i++;
	}
	if (!p || !profile__n_samples(p)) {
		profile__free(p);
		return;
	}
	if (rs->n == MAX_PROCESSES) {
		for (i = 1; i < rs->n; i++)
			if (rs->r[i].seen_s < rs->r[oldest].seen_s)
				oldest = i;
		drop(rs, oldest);
	}
	rs->r[rs->n++] = (struct reserve){process_id, now_s, p};
}
