/* SPDX-License-Identifier: Apache-2.0 */
/* braid convert: pprof <-> folded stacks. */
#include "cmd.h"
#include "profile/profile.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct config {
	const char *input;
	const char *output;
	enum profile_format from;
	enum profile_format to;
	const char *sample_type;
	bool annotate;
	bool no_gzip;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid convert IN [-o OUT] [--to pprof|folded] [--sample-type T]\n"
		"\n"
		"Converts a profile between pprof (gzipped or not) and folded stacks\n"
		"(\"root;caller;leaf COUNT\" per line, as flamegraph.pl and Pyroscope read them).\n"
		"IN may also be a JFR recording (the Pyroscope Java agent's, or the JDK's):\n"
		"one of its profiles is converted, as Pyroscope reads it (--jfr-profile).\n"
		"IN and OUT may be - for standard input and output.\n"
		"\n"
		"Options:\n"
		"  -o, --output OUT       where to write (default: standard output)\n"
		"      --to FORMAT        pprof or folded; default: from OUT's extension\n"
		"                         (.folded .collapsed .txt: folded; .pprof .pb .gz: "
		"pprof),\n"
		"                         else the other format than the input's\n"
		"      --from FORMAT      auto (default), pprof, folded, lines (Pyroscope's\n"
		"                         \"a;b;c\" per line, each weighing 1) or jfr; gzip is\n"
		"                         detected\n"
		"      --sample-type T    pprof to folded: which sample type's values to write,\n"
		"                         as \"type\" or \"type/unit\" (default: the profile's "
		"default,\n"
		"                         else its last type); folded to pprof: the type/unit of\n"
		"                         the counts (default samples/count)\n"
		"      --annotate         in folded output, mark kernel frames \"_[k]\" and JIT\n"
		"                         frames \"_[j]\" (read back as their frame kinds)\n"
		"      --no-gzip          write pprof uncompressed (default: "
		"gzipped)\n" CMD_JFR_HELP "  -h, --help             show this help\n");
}

static enum profile_format format_from_extension(const char *path)
{
	static const struct {
		const char *ext;
		enum profile_format format;
	} exts[] = {
		{".folded", PROFILE_FORMAT_FOLDED},  {".collapsed", PROFILE_FORMAT_FOLDED},
		{".txt", PROFILE_FORMAT_FOLDED},     {".pprof", PROFILE_FORMAT_PPROF},
		{".pb", PROFILE_FORMAT_PPROF},	     {".pb.gz", PROFILE_FORMAT_PPROF},
		{".pprof.gz", PROFILE_FORMAT_PPROF}, {".folded.gz", PROFILE_FORMAT_FOLDED},
	};
	size_t len = strlen(path);
	enum profile_format best = PROFILE_FORMAT_AUTO;
	size_t best_len = 0;

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t n = strlen(exts[i].ext);

		if (len > n && n > best_len && strcmp(path + len - n, exts[i].ext) == 0) {
			best = exts[i].format;
			best_len = n;
		}
	}
	return best;
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"to", required_argument, NULL, 't'},
		{"from", required_argument, NULL, 'f'},
		{"sample-type", required_argument, NULL, 's'},
		{"annotate", no_argument, NULL, 'a'},
		{"no-gzip", no_argument, NULL, 'z'},
		CMD_JFR_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct config cfg = {.output = "-"};
	struct cmd_jfr jfr = {0};
	struct profile_folded_opts fo = {0};
	struct profile *p = NULL;
	struct dynbuf out;
	struct errbuf err = {{0}};
	enum profile_format in_format;
	char *type = NULL;
	int c, r, status = 1;

	dynbuf__init(&out, 0);
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			cfg.output = optarg;
			break;
		case 't':
			if (profile__parse_format(optarg, &cfg.to) < 0 ||
			    (cfg.to != PROFILE_FORMAT_PPROF && cfg.to != PROFILE_FORMAT_FOLDED)) {
				cmd_error("convert: --to takes pprof or folded, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			if (cmd_parse_from("convert", optarg, &cfg.from) < 0)
				return EXIT_USAGE;
			break;
		case 's':
			cfg.sample_type = optarg;
			break;
		case 'a':
			cfg.annotate = true;
			break;
		case 'z':
			cfg.no_gzip = true;
			break;
		case 'J':
		case 'R':
		case 'L':
			if (cmd_parse_jfr_option("convert", c, optarg, &jfr) < 0)
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
	cfg.input = cmd_one_operand("convert", argc, argv, "input file");
	if (!cfg.input) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!cfg.to && strcmp(cfg.output, "-") != 0)
		cfg.to = format_from_extension(cfg.output);

	if (cfg.sample_type && cfg.from != PROFILE_FORMAT_PPROF && cfg.from != PROFILE_FORMAT_JFR) {
		/* for folded input, the sample type names the counts */
		const char *slash = strchr(cfg.sample_type, '/');

		type = strdup(cfg.sample_type);
		if (!type) {
			cmd_error("out of memory");
			goto cleanup;
		}
		if (slash) {
			type[slash - cfg.sample_type] = '\0';
			fo.unit = type + (slash - cfg.sample_type) + 1;
		}
		fo.type = type;
	}
	fo.annotate = cfg.annotate;
	if (cmd_load_profile_jfr(cfg.input, cfg.from, &fo, &jfr, &p, &in_format) < 0)
		goto cleanup;
	if (!cfg.to)
		cfg.to = in_format == PROFILE_FORMAT_PPROF ? PROFILE_FORMAT_FOLDED
							   : PROFILE_FORMAT_PPROF;

	if (cfg.to == PROFILE_FORMAT_FOLDED) {
		int ti = (in_format == PROFILE_FORMAT_PPROF || in_format == PROFILE_FORMAT_JFR) &&
					 cfg.sample_type
				 ? profile__find_sample_type(p, cfg.sample_type)
				 : profile__default_sample_type(p);

		if (ti < 0) {
			cmd_error("convert: %s: no sample type '%s' (see braid inspect)", cfg.input,
				  cfg.sample_type ? cfg.sample_type : "");
			goto cleanup;
		}
		r = profile__to_folded(p, (size_t)ti, &fo, &out);
	} else {
		if (!cfg.no_gzip && strcmp(cfg.output, "-") == 0 && isatty(STDOUT_FILENO)) {
			cmd_error("convert: refusing to write binary pprof to a terminal; use -o "
				  "FILE");
			status = EXIT_USAGE;
			goto cleanup;
		}
		r = profile__to_pprof(p, !cfg.no_gzip, &out);
	}
	if (r < 0) {
		cmd_error("convert: cannot encode %s: %s", profile__format_name(cfg.to),
			  strerror(-r));
		goto cleanup;
	}
	if (util__write_file(cfg.output, out.data, out.len, &err) < 0) {
		cmd_error("convert: %s", err.msg);
		goto cleanup;
	}
	status = 0;
cleanup:
	profile__free(p);
	dynbuf__free(&out);
	free(type);
	return status;
}
