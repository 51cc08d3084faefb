/* SPDX-License-Identifier: Apache-2.0 */
/* braid: the entry point; dispatches to a subcommand. */
#define _GNU_SOURCE /* strptime, timegm */
#include "cmd.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "profile/profile.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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
	struct dynbuf data;
	struct errbuf err = {{0}};
	int r;

	dynbuf__init(&data, 0);
	/* a compressed file is never larger than what it inflates to */
	r = util__read_file(path, PROFILE_DEFAULT_MAX_DECOMPRESSED, &err, &data);
	if (r < 0) {
		cmd_error("%s", err.msg);
		goto cleanup;
	}
	r = profile__decode(data.data, data.len, format, opts, NULL, &err, ret_profile, ret_format);
	if (r < 0)
		cmd_error("%s: %s", path, err.msg);
cleanup:
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

		r = cmd_load_profile(paths[i], PROFILE_FORMAT_AUTO, NULL, &p, NULL);
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
	cmd_error("%s: --from takes auto, pprof, folded or lines, not '%s'", cmd, arg);
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
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		goto bad;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			goto bad;
		}
		end++;
		if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
			goto bad;
	}
	if (v > (UINT64_MAX >> shift))
		goto bad;
	*ret = (uint64_t)v << shift;
	return 0;
bad:
	cmd_error("%s: %s takes a size such as 4096, 512K or 32M, not '%s'", cmd, opt, s);
	return -EINVAL;
}

/* Reads a secret from a file: the first line, without its line break. */
char *cmd_read_secret(const char *cmd, const char *path)
{
	struct dynbuf b;
	struct errbuf err = {{0}};
	char *nl, *s = NULL;

	dynbuf__init(&b, CMD_MAX_SECRET + 2);
	if (util__read_file(path, CMD_MAX_SECRET + 1, &err, &b) < 0) {
		cmd_error("%s: %s", cmd, err.msg);
		goto cleanup;
	}
	nl = b.data ? strpbrk(b.data, "\r\n") : NULL;
	if (nl)
		*nl = '\0';
	if (!b.data || !b.data[0] || strlen(b.data) > CMD_MAX_SECRET) {
		cmd_error("%s: %s: expected one line of 1 to %d bytes", cmd, path, CMD_MAX_SECRET);
		goto cleanup;
	}
	s = strdup(b.data);
	if (!s)
		cmd_error("%s: out of memory", cmd);
cleanup:
	dynbuf__free(&b);
	return s;
}

/* Lets the process hold max_connections sockets plus its files. */
void cmd_raise_fd_limit(const char *cmd, unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want + 64)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want + 64
			      ? (rlim_t)want + 64
			      : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		cmd_error("%s: cannot raise the open-file limit to %u: %s", cmd, want + 64,
			  strerror(errno));
}

/* "2026-11-21T10:00:00Z" (or +hh:mm), digits (ingest's units), "now", or a
 * duration ago ("15m", "2h", "90s", "1d"). */
int cmd_parse_when(const char *s, int64_t now, int64_t *ret)
{
	struct tm tm = {0};
	const char *end;
	char *e;

	if (!strcmp(s, "now")) {
		*ret = now;
		return 0;
	}
	if (ingest__parse_time(s, now, ret) == 0)
		return 0;
	if (isdigit((unsigned char)s[0])) {
		unsigned long long v = strtoull(s, &e, 10);
		int64_t mul = !strcmp(e, "s")	? 1
			      : !strcmp(e, "m") ? 60
			      : !strcmp(e, "h") ? 3600
			      : !strcmp(e, "d") ? 86400
						: 0;

		if (mul && v <= 3650ull * 86400 / (unsigned long long)mul) {
			*ret = now - (int64_t)v * mul * 1000000000;
			return 0;
		}
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end) {
		int64_t off = 0;

		if (*end == '.') /* fractions of a second are dropped */
			while (isdigit((unsigned char)*++end))
				;
		if (*end == '+' || *end == '-') {
			int hh, mm;

			if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(end) != 6)
				goto bad;
			off = (hh * 3600 + mm * 60) * (*end == '+' ? 1 : -1);
		} else if (strcmp(end, "Z") != 0 && *end) {
			goto bad;
		}
		*ret = ((int64_t)timegm(&tm) - off) * 1000000000;
		return 0;
	}
bad:
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
