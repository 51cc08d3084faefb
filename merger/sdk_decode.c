/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: an SDK profile as stored, decoded for a splice or a report: pprof
 * or folded stacks by its format, and a JFR push (the Java agent's form) as
 * its recording's CPU profile, each sample labelled with its OS thread; and
 * a JFR push as pprof, every profile of it, to forward in its place.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JFR push (its form, as ingest stored it) read as Pyroscope reads it,
 * each sample labelled with its OS thread if thread_labels. */
static int read_jfr(const struct store_sdk_profile *p, const struct profile_limits *lim,
		    bool thread_labels, struct errbuf *err, struct profile_jfr **ret)
{
	struct profile_jfr_opts o = {
		.sample_rate = p->sample_rate > 0 ? p->sample_rate : 100,
		.time_nanos = p->from_ns,
		.duration_nanos = p->until_ns > p->from_ns ? p->until_ns - p->from_ns : 0,
		.os_thread_labels = thread_labels,
	};
	struct profile_jfr_parts parts;
	int r = profile__jfr_form_parts(p->payload, p->payload_len, &parts, err);

	if (r < 0)
		return r;
	o.labels = parts.labels;
	o.labels_len = parts.labels_len;
	return profile__from_jfr(parts.jfr, parts.jfr_len, &o, lim, err, ret);
}

/* A JFR push: the recording's CPU profile, each sample labelled with its
 * OS thread. */
static int decode_jfr(const struct store_sdk_profile *p, const struct profile_limits *lim,
		      struct errbuf *err, struct profile **ret)
{
	const struct profile_jfr_entry *e;
	struct profile_jfr *j = NULL;
	int r = read_jfr(p, lim, true, err, &j);

	if (r < 0)
		return r;
	e = profile_jfr__find(j, "process_cpu");
	if (!e) {
		profile_jfr__free(j);
		return errbuf__set(err, -ENODATA, "the JFR push holds no CPU samples");
	}
	*ret = profile_jfr__take(j, e);
	profile_jfr__free(j);
	return 0;
}

int merger_sdk__decode(const struct store_sdk_profile *p, const struct profile_limits *lim,
		       struct errbuf *err, struct profile **ret)
{
	enum profile_format f = PROFILE_FORMAT_AUTO;

	if (p->format && strcmp(p->format, "jfr") == 0)
		return decode_jfr(p, lim, err, ret);
	if (p->format)
		profile__parse_format(p->format, &f);
	return profile__decode(p->payload, p->payload_len, f, NULL, lim, err, ret, NULL);
}

void merger_sdk__copies_free(struct merger_sdk_copies *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		dynbuf__free(&c->c[i].pprof);
	free(c->c);
	*c = (struct merger_sdk_copies){0};
}

int merger_sdk__jfr_copies(const struct store_sdk_profile *p, const struct profile_limits *lim,
			   struct errbuf *err, struct merger_sdk_copies *ret)
{
	struct profile_jfr *j = NULL;
	int r;

	*ret = (struct merger_sdk_copies){0};
	r = read_jfr(p, lim, false, err, &j);
	if (r < 0)
		return r;
	snprintf(ret->jfr_event, sizeof(ret->jfr_event), "%s", j->jfr_event);
	ret->c = calloc(j->n ? j->n : 1, sizeof(*ret->c));
	if (!ret->c) {
		r = errbuf__set(err, -ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct merger_sdk_copy *c = &ret->c[ret->n++];

		c->metric = j->entries[i].metric; /* a static name */
		dynbuf__init(&c->pprof, 0);
		r = profile__to_pprof(j->entries[i].profile, true, &c->pprof);
		if (r < 0) {
			r = errbuf__set(err, r, "encoding the recording's %s profile: %s",
					j->entries[i].name, strerror(-r));
			goto cleanup;
		}
	}
cleanup:
	profile_jfr__free(j);
	return r;
}
