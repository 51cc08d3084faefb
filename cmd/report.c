/* SPDX-License-Identifier: Apache-2.0 */
/* braid report: the eBPF view of a process against its SDK's view, from the
 * store (what the agent collected) or from files (a `braid record` file and
 * the SDK's pushes), as one HTML page, Markdown or JSON. */
#define _GNU_SOURCE
#include "cmd.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "profile/profile.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPORT_MAX_SDK	   64
#define REPORT_DEFAULT_AGO (3600ll * 1000000000) /* the store's last hour */

struct config {
	const char *ebpf;
	const char *sdk[REPORT_MAX_SDK];
	size_t n_sdk;
	const char *service;
	int32_t pid;
	enum runtime runtime;
	const char *from, *until;
	const char *data_dir;
	unsigned freq;
	const char *output;
	bool format_given; /* else from -o's extension, else html */
	enum merger_report_format format;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid report --service S | --pid P [--from T] [--until T] [--data-dir "
		"DIR]\n"
		"       braid report --ebpf E --sdk S [--sdk S2]... [--pid P]\n"
		"                    [--format html|md|json] [-o FILE]\n"
		"\n"
		"Compares the eBPF view of a process with its SDK's view, and the merged view:\n"
		"where the CPU goes (kernel, runtime internals, native libraries, guest code),\n"
		"the functions only one view sees, how much the splice merged and why not the\n"
		"rest, warnings (sample rates, clock skew, pushes without a process), and flame\n"
		"graphs of the three views plus their difference. HTML is one self-contained\n"
		"page (hover, click to zoom, search); Markdown and JSON carry the same numbers\n"
		"(the JSON schema: docs/report.md).\n"
		"\n"
		"From the store (what braid agent collected):\n"
		"  -s, --service S        the processes of service S (their service, or command\n"
		"                         name when they declare none)\n"
		"  -p, --pid P            or the process(es) with PID P\n"
		"      --from T           start: RFC 3339 (2026-11-21T10:00:00Z), Unix seconds\n"
		"                         (or ms, µs, ns by digit count), or a duration ago\n"
		"                         (15m, 2h); default: an hour before --until\n"
		"      --until T          end (same forms, or now; default now)\n"
		"      --data-dir DIR     the store's directory (default " STORE_DEFAULT_DATA_DIR
		" as root,\n"
		"                         else " STORE_USER_DATA_DIR ")\n"
		"      --freq HZ          the agent's sampling frequency (default %u)\n"
		"From files:\n"
		"  -e, --ebpf FILE        a `braid record` profile\n"
		"      --sdk FILE         the SDK's profile as pushed (`braid store export`);\n"
		"                         repeat for several pushes of the process\n"
		"  -p, --pid P            the process (default: the only Node.js or Python one)\n"
		"  -r, --runtime R        node or python, when the recording does not tell\n"
		"Output:\n"
		"  -f, --format F         html, md or json (default: from -o's extension, else\n"
		"                         html)\n"
		"  -o, --output FILE      where to write (default braid-report.html, .md or\n"
		"                         .json; - for standard output)\n"
		"  -h, --help             show this help\n",
		97u);
}

static int parse_when(const char *opt, const char *s, int64_t now, int64_t *ret)
{
	if (ingest__parse_when(s, now, ret) == 0)
		return 0;
	cmd_error("report: %s takes a time (2026-11-21T10:00:00Z, Unix seconds), now, or a "
		  "duration ago (15m, 2h), not '%s'",
		  opt, s);
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	enum { OPT_FROM = 256, OPT_UNTIL, OPT_DATA_DIR, OPT_FREQ, OPT_SDK };
	static const struct option opts[] = {
		{"ebpf", required_argument, NULL, 'e'},
		{"sdk", required_argument, NULL, OPT_SDK},
		{"service", required_argument, NULL, 's'},
		{"pid", required_argument, NULL, 'p'},
		{"runtime", required_argument, NULL, 'r'},
		{"from", required_argument, NULL, OPT_FROM},
		{"until", required_argument, NULL, OPT_UNTIL},
		{"data-dir", required_argument, NULL, OPT_DATA_DIR},
		{"freq", required_argument, NULL, OPT_FREQ},
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned u;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:s:p:r:f:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			cfg->ebpf = optarg;
			break;
		case OPT_SDK:
			if (cfg->n_sdk == REPORT_MAX_SDK) {
				cmd_error("report: at most %d --sdk files", REPORT_MAX_SDK);
				return -EINVAL;
			}
			cfg->sdk[cfg->n_sdk++] = optarg;
			break;
		case 's':
			cfg->service = optarg;
			break;
		case 'p':
			if (cmd_parse_uint("report", "--pid", optarg, 1, INT32_MAX, &u) < 0)
				return -EINVAL;
			cfg->pid = (int32_t)u;
			break;
		case 'r':
			cfg->runtime = profile__runtime_parse(optarg);
			if (!merger__can_splice(cfg->runtime)) {
				cmd_error("report: --runtime takes node or python, not '%s'",
					  optarg);
				return -EINVAL;
			}
			break;
		case OPT_FROM:
			cfg->from = optarg;
			break;
		case OPT_UNTIL:
			cfg->until = optarg;
			break;
		case OPT_DATA_DIR:
			cfg->data_dir = optarg;
			break;
		case OPT_FREQ:
			if (cmd_parse_uint("report", "--freq", optarg, 1, 10000, &cfg->freq) < 0)
				return -EINVAL;
			break;
		case 'f': {
			struct errbuf err = {{0}};

			if (merger__report_format_parse(optarg, &err, &cfg->format) < 0) {
				cmd_error("report: --format %s", err.msg);
				return -EINVAL;
			}
			cfg->format_given = true;
			break;
		}
		case 'o':
			cfg->output = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		cmd_error("report: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (cfg->ebpf || cfg->n_sdk) {
		if (!cfg->ebpf || !cfg->n_sdk) {
			cmd_error("report: from files, give both --ebpf FILE and --sdk FILE");
			return -EINVAL;
		}
		if (cfg->service || cfg->from || cfg->until || cfg->data_dir) {
			cmd_error("report: --service, --from, --until and --data-dir read the "
				  "store: not with --ebpf/--sdk files");
			return -EINVAL;
		}
	} else if (!cfg->service && !cfg->pid) {
		cmd_error("report: name what to report: --service S or --pid P (from the store), "
			  "or --ebpf E --sdk S (from files)");
		return -EINVAL;
	} else if (cfg->runtime != RUNTIME_UNKNOWN) {
		cmd_error("report: --runtime is for files (the store knows each process's)");
		return -EINVAL;
	}
	if (!cfg->format_given && cfg->output) {
		const char *dot = strrchr(cfg->output, '.');

		cfg->format = dot && !strcmp(dot, ".md")     ? MERGER_REPORT_MD
			      : dot && !strcmp(dot, ".json") ? MERGER_REPORT_JSON
							     : MERGER_REPORT_HTML;
	}
	if (!cfg->output)
		cfg->output = cfg->format == MERGER_REPORT_MD	  ? "braid-report.md"
			      : cfg->format == MERGER_REPORT_JSON ? "braid-report.json"
								  : "braid-report.html";
	return 0;
}

/* ---- from files ---------------------------------------------------------------- */

static int64_t end_of(const struct profile *p)
{
	return profile__time_nanos(p) ? profile__time_nanos(p) + profile__duration_nanos(p) : 0;
}

static int from_files(const struct config *cfg, struct merger_report **ret)
{
	struct merger_recording *rec = NULL;
	struct profile *p = NULL, *sdk = NULL;
	const struct merger_process *pr = NULL;
	struct merger_report_input in = {0};
	struct merger_report_part part;
	struct errbuf err = {{0}};
	struct cmd_sdk_range range;
	char title[128], source[1024];
	size_t len;
	int rc = -EINVAL;

	if (cmd_load_profile(cfg->ebpf, PROFILE_FORMAT_PPROF, NULL, &p, NULL) < 0)
		return -EINVAL;
	if (merger__recording_new(p, &err, &rec) < 0) {
		cmd_error("report: %s %s", cfg->ebpf, err.msg);
		return -EINVAL;
	}
	pr = merger__recording_pick(rec, cfg->pid, &err);
	if (!pr)
		cmd_error("report: %s %s", cfg->ebpf, err.msg);
	if (!pr)
		goto cleanup;
	if (cfg->runtime != RUNTIME_UNKNOWN)
		merger__recording_set_runtime(rec, pr->pid, cfg->runtime);
	if (cmd_load_sdk_profiles("report", cfg->sdk, cfg->n_sdk, &sdk, &range) < 0)
		goto cleanup;
	in.sdk_from_ns = range.from_ns;
	in.sdk_until_ns = range.until_ns;
	in.sdk_sample_rate = range.sample_rate;
	len = (size_t)snprintf(source, sizeof(source), "files: %s", cfg->ebpf);
	for (size_t i = 0; i < cfg->n_sdk && len < sizeof(source); i++)
		len += (size_t)snprintf(source + len, sizeof(source) - len, ", %s", cfg->sdk[i]);
	pr = merger__recording_find(rec, pr->pid);
	part = (struct merger_report_part){.pid = pr->pid,
					   .runtime = pr->runtime,
					   .stacks = pr->stacks,
					   .n_stacks = pr->n_stacks,
					   .sdk = sdk};
	snprintf(title, sizeof(title), "pid %d (%s)", pr->pid, profile__runtime_name(pr->runtime));
	p = (struct profile *)merger__recording_profile(rec);
	in.title = title;
	in.source = source;
	in.pid = pr->pid;
	in.from_ns = profile__time_nanos(p);
	in.until_ns = end_of(p);
	in.ebpf_from_ns = in.from_ns;
	in.ebpf_until_ns = in.until_ns;
	in.period = merger__recording_period(rec);
	in.parts = &part;
	in.n_parts = 1;
	in.sdk_profiles = cfg->n_sdk;
	rc = merger__report_new(&in, ret);
	if (rc < 0)
		cmd_error("report: computing the report: %s", strerror(-rc));
cleanup:
	profile__free(sdk);
	merger__recording_free(rec);
	return rc;
}

/* ---- from the store ------------------------------------------------------------- */

static int from_store(const struct config *cfg, struct merger_report **ret)
{
	struct store_options so = {.data_dir = cfg->data_dir, .read_only = true};
	struct merger_report_query q = {
		.service = cfg->service, .pid = cfg->pid, .freq = cfg->freq};
	struct store *s = NULL;
	struct errbuf err = {{0}};
	int64_t now = store__now_ns();
	int rc;

	q.until_ns = now;
	if (cfg->until && parse_when("--until", cfg->until, now, &q.until_ns) < 0)
		return -EINVAL;
	q.from_ns = q.until_ns - REPORT_DEFAULT_AGO;
	if (cfg->from && parse_when("--from", cfg->from, now, &q.from_ns) < 0)
		return -EINVAL;
	if (q.from_ns >= q.until_ns) {
		cmd_error("report: --from is not before --until");
		return -EINVAL;
	}
	rc = store__open(&so, &err, &s);
	if (rc < 0) {
		cmd_error("report: %s", err.msg);
		return rc;
	}
	rc = merger__report_from_store(s, &q, &err, ret);
	if (rc < 0)
		cmd_error("report: %s", err.msg);
	store__close(s);
	return rc;
}

int cmd_report(int argc, char **argv)
{
	struct config cfg = {.format = MERGER_REPORT_HTML};
	struct merger_report *r = NULL;
	struct dynbuf out;
	struct errbuf err = {{0}};
	int rc, status = 1;

	dynbuf__init(&out, 0);
	if (parse_args(argc, argv, &cfg) < 0)
		return EXIT_USAGE;
	rc = cfg.ebpf ? from_files(&cfg, &r) : from_store(&cfg, &r);
	if (rc < 0) {
		if (rc == -EINVAL && !cfg.ebpf)
			status = EXIT_USAGE;
		goto cleanup;
	}
	rc = merger__report_write(r, cfg.format, &out, NULL);
	if (rc < 0) {
		cmd_error("report: writing the report: %s", strerror(-rc));
		goto cleanup;
	}
	if (util__write_file(cfg.output, out.data, out.len, &err) < 0) {
		cmd_error("report: %s", err.msg);
		goto cleanup;
	}
	if (strcmp(cfg.output, "-") != 0)
		fprintf(stderr, "braid: report: wrote %s\n", cfg.output);
	status = 0;
cleanup:
	merger__report_free(r);
	dynbuf__free(&out);
	return status;
}
