/* SPDX-License-Identifier: Apache-2.0 */
/* braid inspect: what a profile holds, and its top functions as
 * `go tool pprof -top` shows them. */
#include "cmd.h"
#include "profile/profile.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct config {
	const char *input;
	enum profile_format from;
	const char *sample_type;
	long top;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: braid inspect FILE [--top N] [--sample-type T] [--from FORMAT]\n"
		   "\n"
		   "Prints a profile's sample types, period, time range, number of samples,\n"
		   "locations and functions, the total of each sample type, and a table of the\n"
		   "top functions by flat and cumulative value (as `go tool pprof -top`).\n"
		   "FILE is pprof (gzipped or not), folded stacks or a JFR recording (one of\n"
		   "its profiles, as Pyroscope reads it); - reads standard input.\n"
		   "\n"
		   "Options:\n"
		   "      --top N            rows in the table (default 20; 0 = all)\n"
		   "      --sample-type T    rank by this type, \"type\" or \"type/unit\"\n"
		   "                         (default: the profile's default, else its last type)\n"
		   "      --from FORMAT      auto (default), pprof, folded, lines or "
		   "jfr\n" CMD_JFR_HELP "  -h, --help             show this help\n");
}

/* Unit scaling as pprof does it: one unit chosen for a whole column. */
struct scale {
	const char *suffix;
	double div;
};

static struct scale pick_scale(const char *unit, int64_t magnitude)
{
	static const struct {
		const char *unit;
		struct scale steps[6];
	} tables[] = {
		{"nanoseconds", {{"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {NULL, 0}}},
		{"microseconds", {{"s", 1e6}, {"ms", 1e3}, {"us", 1}, {NULL, 0}}},
		{"milliseconds", {{"s", 1e3}, {"ms", 1}, {NULL, 0}}},
		{"seconds", {{"s", 1}, {NULL, 0}}},
		{"bytes",
		 {{"GB", 1073741824.0}, {"MB", 1048576.0}, {"kB", 1024.0}, {"B", 1}, {NULL, 0}}},
	};
	struct scale none = {"", 1};

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (strcmp(unit, tables[i].unit) != 0)
			continue;
		for (size_t j = 0; tables[i].steps[j].suffix; j++)
			if ((double)llabs(magnitude) >= tables[i].steps[j].div ||
			    !tables[i].steps[j + 1].suffix)
				return tables[i].steps[j];
	}
	return none;
}

/* "%.2f" with trailing zeros and point dropped, then the unit: 1.44s, 2s. */
static void format_value(char *buf, size_t size, int64_t v, struct scale s)
{
	int n;

	if (v == 0) {
		snprintf(buf, size, "0");
		return;
	}
	if (s.div == 1) {
		snprintf(buf, size, "%" PRId64 "%s", v, s.suffix);
		return;
	}
	n = snprintf(buf, size, "%.2f", (double)v / s.div);
	while (n > 0 && (size_t)n < size && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	snprintf(buf + n, size - (size_t)n, "%s", s.suffix);
}

/* pprof's percentages: two decimals from 1%, two significant digits below. */
static void format_percent(char *buf, size_t size, int64_t v, int64_t total)
{
	double pc = total ? 100.0 * (double)v / (double)total : 0;

	if (v == 0)
		snprintf(buf, size, "0%%");
	else if (fabs(pc) >= 99.995)
		snprintf(buf, size, "100%%");
	else if (fabs(pc) >= 1.0)
		snprintf(buf, size, "%.2f%%", pc);
	else
		snprintf(buf, size, "%.2g%%", pc);
}

static void print_time(int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char buf[64];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) {
		printf("%" PRId64 " ns", ns);
		return;
	}
	printf("%s.%09" PRId64 "Z", buf, ns % 1000000000);
}

static void print_summary(const struct profile *p, const char *path, enum profile_format format,
			  const int64_t *totals)
{
	struct profile_value_type pt = profile__period_type(p);
	size_t nt = profile__n_sample_types(p);
	int def = profile__default_sample_type(p);
	int64_t t0 = profile__time_nanos(p), dur = profile__duration_nanos(p);

	printf("File: %s\n", path);
	printf("Format: %s\n", profile__format_name(format));
	printf("Sample types:");
	for (size_t i = 0; i < nt; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);

		printf("%s %s/%s%s", i ? "," : "", profile__str(p, vt.type),
		       profile__str(p, vt.unit), (int)i == def ? " (default)" : "");
	}
	printf("\n");
	if (pt.type || pt.unit || profile__period(p)) {
		printf("Period: %" PRId64 " %s/%s", profile__period(p), profile__str(p, pt.type),
		       profile__str(p, pt.unit));
		if (strcmp(profile__str(p, pt.unit), "nanoseconds") == 0 && profile__period(p) > 0)
			printf(" (%.4g Hz)", 1e9 / (double)profile__period(p));
		printf("\n");
	}
	if (t0) {
		printf("Time: ");
		print_time(t0);
		printf(" to ");
		print_time(t0 + dur);
		printf(" (duration %.3fs)\n", (double)dur / 1e9);
	} else if (dur) {
		printf("Duration: %.3fs\n", (double)dur / 1e9);
	}
	printf("Samples: %zu (%zu distinct stacks)\n", profile__n_samples(p), profile__n_stacks(p));
	printf("Locations: %zu  Functions: %zu  Mappings: %zu\n", profile__n_locations(p),
	       profile__n_functions(p), profile__n_mappings(p));
	printf("Totals:\n");
	for (size_t i = 0; i < nt; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);
		const char *unit = profile__str(p, vt.unit);
		char val[64];

		format_value(val, sizeof(val), totals[i], pick_scale(unit, totals[i]));
		printf("  %s/%s: %s", profile__str(p, vt.type), unit, val);
		if (strcmp(val, "0") != 0 && pick_scale(unit, totals[i]).div != 1)
			printf(" (%" PRId64 ")", totals[i]);
		printf("\n");
	}
}

static int print_top(const struct profile *p, size_t ti, int64_t total, long top)
{
	struct profile_value_type vt = profile__sample_type(p, ti);
	const char *unit = profile__str(p, vt.unit);
	struct profile_top_entry *e = NULL;
	size_t n = 0, rows;
	int64_t sum = 0, maxv = 0;
	struct scale s;
	char tot[64];
	int r;

	r = profile__top(p, ti, &e, &n);
	if (r < 0)
		return r;
	rows = top > 0 && (size_t)top < n ? (size_t)top : n;
	for (size_t i = 0; i < n; i++) {
		if (llabs(e[i].flat) > maxv)
			maxv = llabs(e[i].flat);
		if (llabs(e[i].cum) > maxv)
			maxv = llabs(e[i].cum);
	}
	s = pick_scale(unit, total ? total : maxv);
	format_value(tot, sizeof(tot), total, s);
	printf("\nTop %zu of %zu functions by flat %s/%s, of %s total\n", rows, n,
	       profile__str(p, vt.type), unit, tot);
	printf("%10s %7s %7s %10s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%", "function");
	for (size_t i = 0; i < rows; i++) {
		char flat[64], cum[64], fp[32], sp[32], cp[32];

		sum += e[i].flat;
		format_value(flat, sizeof(flat), e[i].flat, s);
		format_value(cum, sizeof(cum), e[i].cum, s);
		format_percent(fp, sizeof(fp), e[i].flat, total);
		format_percent(sp, sizeof(sp), sum, total);
		format_percent(cp, sizeof(cp), e[i].cum, total);
		printf("%10s %7s %7s %10s %7s  %s\n", flat, fp, sp, cum, cp,
		       profile__str(p, e[i].name));
	}
	free(e);
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{"top", required_argument, NULL, 'n'},
		{"sample-type", required_argument, NULL, 's'},
		{"from", required_argument, NULL, 'f'},
		CMD_JFR_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct config cfg = {.top = 20};
	struct cmd_jfr jfr = {0};
	struct profile *p = NULL;
	enum profile_format format;
	int64_t totals[PROFILE_MAX_SAMPLE_TYPES];
	char *end;
	int c, r, ti, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			cfg.top = strtol(optarg, &end, 10);
			if (errno || *end || cfg.top < 0) {
				cmd_error("inspect: --top takes a number >= 0, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			cfg.sample_type = optarg;
			break;
		case 'f':
			if (cmd_parse_from("inspect", optarg, &cfg.from) < 0)
				return EXIT_USAGE;
			break;
		case 'J':
		case 'R':
		case 'L':
			if (cmd_parse_jfr_option("inspect", c, optarg, &jfr) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	cfg.input = cmd_one_operand("inspect", argc, argv, "file");
	if (!cfg.input) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cmd_load_profile_jfr(cfg.input, cfg.from, NULL, &jfr, &p, &format) < 0)
		goto cleanup;
	if (format == PROFILE_FORMAT_JFR)
		printf("JFR profiles: %s\n", jfr.names);
	r = profile__totals(p, totals);
	if (r < 0) {
		cmd_error("inspect: %s: totals overflow 64 bits", cfg.input);
		goto cleanup;
	}
	print_summary(p, cfg.input, format, totals);
	ti = cfg.sample_type ? profile__find_sample_type(p, cfg.sample_type)
			     : profile__default_sample_type(p);
	if (ti < 0 && cfg.sample_type) {
		cmd_error("inspect: %s: no sample type '%s'", cfg.input, cfg.sample_type);
		goto cleanup;
	}
	if (ti >= 0 && (r = print_top(p, (size_t)ti, totals[ti], cfg.top)) < 0) {
		cmd_error("inspect: %s: %s", cfg.input, strerror(-r));
		goto cleanup;
	}
	status = 0;
cleanup:
	profile__free(p);
	return status;
}
