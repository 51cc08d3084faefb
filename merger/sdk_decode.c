/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: an SDK profile as stored, decoded for a splice or a report: pprof
 * or folded stacks by its format, and a JFR push (the Java agent's form) as
 * its recording's CPU profile, each sample labelled with its OS thread.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <string.h>

/* A JFR push (its form, as ingest stored it): the recording's CPU profile,
 * as Pyroscope reads it, each sample labelled with its OS thread. */
static int decode_jfr(const struct store_sdk_profile *p, const struct profile_limits *lim,
		      struct errbuf *err, struct profile **ret)
{
	struct profile_jfr_opts o = {
		.sample_rate = p->sample_rate > 0 ? p->sample_rate : 100,
		.time_nanos = p->from_ns,
		.duration_nanos = p->until_ns > p->from_ns ? p->until_ns - p->from_ns : 0,
		.os_thread_labels = true,
	};
	const struct profile_jfr_entry *e;
	struct profile_jfr_parts parts;
	struct profile_jfr *j = NULL;
	int r = profile__jfr_form_parts(p->payload, p->payload_len, &parts, err);

	if (r < 0)
		return r;
	o.labels = parts.labels;
	o.labels_len = parts.labels_len;
	r = profile__from_jfr(parts.jfr, parts.jfr_len, &o, lim, err, &j);
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
