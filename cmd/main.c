/* SPDX-License-Identifier: Apache-2.0 */
/* braid: the entry point; dispatches to a subcommand. */
#define _GNU_SOURCE
#include "cmd.h"
#include "merger/merger.h"
#include "profile/profile.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#ifndef BRAID_VERSION
#define BRAID_VERSION "dev"
#endif

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"agent", cmd_agent, "the node agent: eBPF + SDK pushes, merged, forwarded to Pyroscope"},
	{"convert", cmd_convert, "convert a profile between pprof and folded stacks"},
	{"inspect", cmd_inspect, "summarise a profile: types, period, time, totals, top functions"},
	{"ingest", cmd_ingest, "receive Pyroscope SDK pushes (the sidecar) and store them"},
	{"merge", cmd_merge,
	 "splice an SDK profile's frames into a recorded eBPF profile of its process"},
	{"record", cmd_record,
	 "sample every CPU's stacks with eBPF into a pprof (like perf record)"},
	{"report", cmd_report,
	 "compare the eBPF view with the SDK's: HTML (flame graphs), Markdown or JSON"},
	{"store", cmd_store, "look inside the buffer: stats, ls, export, check, gc"},
};

void cmd_error(const char *fmt, ...)
{
	va_list ap;

	fputs("braid: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cmd_parse_uint(const char *cmd, const char *opt, const char *s, unsigned min, unsigned max,
		   unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end || errno || *s == '-' || v < min || v > max) {
		cmd_error("%s: %s takes a whole number from %u to %u, not '%s'", cmd, opt, min, max,
			  s);
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

int cmd_load_profile(const char *path, enum profile_format format,
		     const struct profile_folded_opts *opts, struct profile **ret_profile,
		     enum profile_format *ret_format)
{
	return cmd_load_profile_jfr(path, format, opts, NULL, ret_profile, ret_format);
}

int cmd_parse_jfr_option(const char *cmd, int c, const char *arg, struct cmd_jfr *jfr)
{
	switch (c) {
	case 'J':
		jfr->profile = arg;
		return 1;
	case 'R':
		return cmd_parse_uint(cmd, "--sample-rate", arg, 1, 1000000, &jfr->sample_rate) < 0
			       ? -EINVAL
			       : 1;
	case 'L':
		jfr->labels = arg;
		return 1;
	}
	return 0;
}

/* A recording's profile as jfr says; data is inflated. */
static int load_jfr(const char *path, const void *rec, size_t rec_len, const void *form_labels,
		    size_t form_labels_len, struct cmd_jfr *jfr, struct profile **ret)
{
	struct profile_jfr_opts opts = {.sample_rate = jfr->sample_rate ? jfr->sample_rate : 100,
					.labels = form_labels,
					.labels_len = form_labels_len,
					.os_thread_labels = jfr->thread_labels};
	const struct profile_jfr_entry *e = NULL;
	struct profile_jfr *j = NULL;
	struct errbuf err = {{0}};
	struct dynbuf labels;
	size_t used = 0;
	int r = 0;

	dynbuf__init(&labels, 0);
	if (jfr->labels) {
		r = util__read_file(jfr->labels, PROFILE_DEFAULT_MAX_DECOMPRESSED, &err, &labels);
		if (r < 0) {
			cmd_error("%s", err.msg);
			goto cleanup;
		}
		opts.labels = labels.data;
		opts.labels_len = labels.len;
	}
	r = profile__from_jfr(rec, rec_len, &opts, NULL, &err, &j);
	if (r < 0) {
		cmd_error("%s: %s", path, err.msg);
		goto cleanup;
	}
	jfr->names[0] = '\0';
	for (size_t i = 0; i < j->n; i++)
		used += (size_t)snprintf(jfr->names + used,
					 used < sizeof(jfr->names) ? sizeof(jfr->names) - used : 0,
					 "%s%s", i ? ", " : "", j->entries[i].name);
	e = profile_jfr__find(j, jfr->profile ? jfr->profile : "process_cpu");
	if (!e && !jfr->profile && j->n)
		e = &j->entries[0];
	if (!e) {
		cmd_error("%s: the recording has no profile '%s' (it has: %s)", path,
			  jfr->profile ? jfr->profile : "process_cpu", j->n ? jfr->names : "none");
		r = -ENOENT;
		goto cleanup;
	}
	*ret = profile_jfr__take(j, e);
cleanup:
	profile_jfr__free(j);
	dynbuf__free(&labels);
	return r;
}

int cmd_load_profile_jfr(const char *path, enum profile_format format,
			 const struct profile_folded_opts *opts, struct cmd_jfr *jfr,
			 struct profile **ret_profile, enum profile_format *ret_format)
{
	struct cmd_jfr defaults = {0};
	struct dynbuf data, raw;
	const struct dynbuf *src;
	struct errbuf err = {{0}};
	int r;

	dynbuf__init(&data, 0);
	dynbuf__init(&raw, 0);
	/* a compressed file is never larger than what it inflates to */
	r = util__read_file(path, PROFILE_DEFAULT_MAX_DECOMPRESSED, &err, &data);
	if (r < 0) {
		cmd_error("%s", err.msg);
		goto cleanup;
	}
	if (format == PROFILE_FORMAT_AUTO || format == PROFILE_FORMAT_JFR) {
		const struct dynbuf *in = &data;

		if (util__is_gzip(data.data, data.len)) {
			r = util__gunzip(data.data, data.len, PROFILE_DEFAULT_MAX_DECOMPRESSED,
					 &err, &raw);
			if (r < 0) {
				cmd_error("%s: %s", path, err.msg);
				goto cleanup;
			}
			in = &raw;
		}
		struct profile_jfr_parts parts = {0};

		/* a JFR push as stored (braid store export): its form */
		if (in->len > 2 && memcmp(in->data, "--", 2) == 0 &&
		    profile__jfr_form_parts(in->data, in->len, &parts, &err) == 0) {
			r = load_jfr(path, parts.jfr, parts.jfr_len, parts.labels, parts.labels_len,
				     jfr ? jfr : &defaults, ret_profile);
			if (r == 0 && ret_format)
				*ret_format = PROFILE_FORMAT_JFR;
			goto cleanup;
		}
		if (format == PROFILE_FORMAT_JFR || profile__is_jfr(in->data, in->len)) {
			r = load_jfr(path, in->data, in->len, NULL, 0, jfr ? jfr : &defaults,
				     ret_profile);
			if (r == 0 && ret_format)
				*ret_format = PROFILE_FORMAT_JFR;
			goto cleanup;
		}
	}
	/* what was inflated above is not inflated again */
	src = raw.data ? &raw : &data;
	r = profile__decode(src->data, src->len, format, opts, NULL, &err, ret_profile, ret_format);
	if (r < 0)
		cmd_error("%s: %s", path, err.msg);
cleanup:
	dynbuf__free(&raw);
	dynbuf__free(&data);
	return r;
}

int cmd_load_sdk_profiles(const char *cmd, const char *const *paths, size_t n,
			  struct profile **ret_sum, struct cmd_sdk_range *ret_range)
{
	struct cmd_sdk_range range = {0};
	struct profile *sum = NULL;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		struct profile *p = NULL;
		int64_t t, end;

		/* a JFR push: each sample with its OS thread, for the splice's
		 * thread groups */
		struct cmd_jfr jfr = {.thread_labels = true};

		r = cmd_load_profile_jfr(paths[i], PROFILE_FORMAT_AUTO, NULL, &jfr, &p, NULL);
		if (r < 0)
			goto cleanup;
		t = profile__time_nanos(p);
		end = t ? t + profile__duration_nanos(p) : 0;
		if (t && (!range.from_ns || t < range.from_ns))
			range.from_ns = t;
		if (end > range.until_ns)
			range.until_ns = end;
		if (!range.sample_rate)
			range.sample_rate = merger__sample_rate_of(p);
		if (!sum) {
			sum = p;
			continue;
		}
		r = profile__merge(sum, p);
		profile__free(p);
		if (r == -EINVAL) {
			cmd_error("%s: %s has other sample types than %s: give the pushes of one "
				  "profile kind",
				  cmd, paths[i], paths[0]);
			goto cleanup;
		}
		if (r < 0) {
			cmd_error("%s: adding %s: %s", cmd, paths[i], strerror(-r));
			goto cleanup;
		}
	}
	*ret_sum = sum;
	sum = NULL;
	if (ret_range)
		*ret_range = range;
cleanup:
	profile__free(sum);
	return r;
}

int cmd_parse_from(const char *cmd, const char *arg, enum profile_format *ret_format)
{
	if (profile__parse_format(arg, ret_format) == 0)
		return 0;
	cmd_error("%s: --from takes auto, pprof, folded, lines or jfr, not '%s'", cmd, arg);
	return -EINVAL;
}

const char *cmd_one_operand(const char *cmd, int argc, char **argv, const char *what)
{
	if (optind == argc - 1)
		return argv[optind];
	cmd_error("%s: %s %s given", cmd, optind == argc ? "no" : "more than one", what);
	return NULL;
}

/* "32M", "1GiB", "4096": bytes. */
int cmd_parse_size(const char *cmd, const char *opt, const char *s, uint64_t *ret)
{
	if (util__parse_size(s, ret) == 0)
		return 0;
	cmd_error("%s: %s takes a size such as 4096, 512K or 32M, not '%s'", cmd, opt, s);
	return -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: braid COMMAND [OPTIONS]\n"
		   "\n"
		   "braid merges whole-system eBPF CPU stacks with the profiles that language\n"
		   "SDKs push to Pyroscope. Commands:\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n"
		   "Options:\n"
		   "  -h, --help     show this help (braid COMMAND --help: that command's)\n"
		   "  -V, --version  print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("braid %s\n", BRAID_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	cmd_error("unknown command '%s'", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
