/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding a profile of any supported format, detected by content. */
#include "profile.h"

#include <errno.h>
#include <string.h>

static const char *const format_names[] = {
	[PROFILE_FORMAT_AUTO] = "auto",	    [PROFILE_FORMAT_PPROF] = "pprof",
	[PROFILE_FORMAT_FOLDED] = "folded", [PROFILE_FORMAT_LINES] = "lines",
	[PROFILE_FORMAT_JFR] = "jfr",
};

int profile__parse_format(const char *name, enum profile_format *ret_format)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(format_names); i++)
		if (strcmp(name, format_names[i]) == 0) {
			*ret_format = (enum profile_format)i;
			return 0;
		}
	if (strcmp(name, "collapsed") == 0) {
		*ret_format = PROFILE_FORMAT_FOLDED;
		return 0;
	}
	return -EINVAL;
}

const char *profile__format_name(enum profile_format format)
{
	return (unsigned)format < UTIL_ARRAY_SIZE(format_names) ? format_names[format] : "?";
}

/* pprof is binary from its first bytes (field tags and lengths are control
 * characters); folded stacks are text. */
static bool looks_like_text(const unsigned char *d, size_t len)
{
	size_t n = len < 65536 ? len : 65536;

	for (size_t i = 0; i < n; i++)
		if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' && d[i] != '\r')
			return false;
	return n > 0;
}

/* A recording's CPU profile at the Java agent's 100 Hz, else its first. */
static int one_of_jfr(const void *data, size_t len, const struct profile_limits *lim,
		      struct errbuf *err, struct profile **ret)
{
	struct profile_jfr_opts opts = {.sample_rate = 100};
	const struct profile_jfr_entry *e;
	struct profile_jfr *j = NULL;
	int r = profile__from_jfr(data, len, &opts, lim, err, &j);

	if (r < 0)
		return r;
	e = profile_jfr__find(j, "process_cpu");
	if (!e && j->n)
		e = &j->entries[0];
	if (!e) {
		profile_jfr__free(j);
		return errbuf__set(err, -ENODATA, "the JFR recording has no events braid reads");
	}
	*ret = profile_jfr__take(j, e);
	profile_jfr__free(j);
	return 0;
}

int profile__decode(const void *data, size_t len, enum profile_format format,
		    const struct profile_folded_opts *opts, const struct profile_limits *lim,
		    struct errbuf *err, struct profile **ret_profile,
		    enum profile_format *ret_format)
{
	struct profile_limits deflim;
	struct profile_folded_opts fo = {0};
	struct dynbuf raw;
	int r;

	if (!lim) {
		profile_limits__default(&deflim);
		lim = &deflim;
	}
	dynbuf__init(&raw, 0);
	if (util__is_gzip(data, len)) {
		r = util__gunzip(data, len, lim->max_decompressed, err, &raw);
		if (r < 0)
			goto cleanup;
		data = raw.data;
		len = raw.len;
	}
	if (format == PROFILE_FORMAT_AUTO && profile__is_jfr(data, len))
		format = PROFILE_FORMAT_JFR;
	else if (format == PROFILE_FORMAT_AUTO)
		format = looks_like_text(data, len) ? PROFILE_FORMAT_FOLDED : PROFILE_FORMAT_PPROF;
	if (opts)
		fo = *opts;
	switch (format) {
	case PROFILE_FORMAT_PPROF:
		r = profile__from_pprof(data, len, lim, err, ret_profile);
		break;
	case PROFILE_FORMAT_LINES:
		fo.lines = true;
		/* fall through */
	case PROFILE_FORMAT_FOLDED:
		if (len > lim->max_decompressed) {
			r = errbuf__set(err, -EFBIG,
					"input of %zu bytes is over the limit of %zu bytes", len,
					lim->max_decompressed);
			break;
		}
		r = profile__from_folded(data, len, &fo, lim, err, ret_profile);
		break;
	case PROFILE_FORMAT_JFR:
		r = one_of_jfr(data, len, lim, err, ret_profile);
		break;
	default:
		r = errbuf__set(err, -EINVAL, "unknown profile format");
	}
	if (r == 0 && ret_format)
		*ret_format = format;
cleanup:
	dynbuf__free(&raw);
	return r;
}
