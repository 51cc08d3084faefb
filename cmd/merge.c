/* SPDX-License-Identifier: Apache-2.0 */
/* braid merge: the splice offline, on files. An eBPF profile from `braid
 * record` and the SDK profile(s) of one of its processes, as the SDK pushed
 * them, become one merged profile. */
#include "cmd.h"
#include "merger/merger.h"
#include "profile/profile.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MERGE_MAX_SDK 64 /* --sdk files */

struct config {
	const char *ebpf;
	const char *sdk[MERGE_MAX_SDK];
	size_t n_sdk;
	int32_t pid; /* 0: the one process with a known runtime */
	enum runtime runtime;
	const char *output;
	bool folded, annotate, all, verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid merge --ebpf E --sdk S [--sdk S2]... [--pid P] [-o OUT]\n"
		"\n"
		"Splices the interpreted-language frames of an SDK profile into the eBPF\n"
		"stacks of the same process, as the agent does live: each eBPF stack keeps its\n"
		"native prefix, native suffix and kernel frames, and its interpreter region\n"
		"(V8 builtins and JIT code, the CPython eval loop) is replaced by the SDK's\n"
		"stacks of the same category (guest code, GC, JIT, idle, other native), shared\n"
		"in proportion to their CPU weight (the SDK's cpu sample type, else samples,\n"
		"else wall). Totals are conserved to the sample: the merged profile has the\n"
		"eBPF CPU of the process. See docs/merger.md.\n"
		"\n"
		"Options:\n"
		"  -e, --ebpf FILE        eBPF profile written by `braid record` (pprof; its\n"
		"                         pid, tid and runtime labels are used)\n"
		"  -s, --sdk FILE         SDK profile as pushed (pprof, gzipped or not); repeat\n"
		"                         for several pushes of the process: their weights add\n"
		"  -p, --pid PID          the process the SDK profiled (default: the only\n"
		"                         process in E whose runtime braid can splice)\n"
		"  -r, --runtime R        node, python, jvm or go: how to merge (default: E's\n"
		"                         runtime label, else told from the frames). Go is\n"
		"                         matched, not spliced: eBPF names Go's code, and the\n"
		"                         SDK's labels go to the eBPF stacks that agree with\n"
		"                         its stacks from the root\n"
		"  -o, --output OUT       where to write (default braid-merged.pb.gz; - for\n"
		"                         standard output)\n"
		"  -f, --format F         pprof (default: cpu/nanoseconds, E's period) or\n"
		"                         folded (\"root;...;leaf N\", N in samples)\n"
		"      --annotate         folded: mark kernel frames _[k] and JIT frames _[j]\n"
		"      --all              also copy every other process of E unchanged\n"
		"  -v, --verbose          samples per category, kept and spliced\n"
		"  -h, --help             show this help\n");
}

static struct merger_recording *ebpf_load(const struct config *cfg)
{
	struct merger_recording *rec = NULL;
	struct profile *p = NULL;
	struct errbuf err = {{0}};

	if (cmd_load_profile(cfg->ebpf, PROFILE_FORMAT_PPROF, NULL, &p, NULL) < 0)
		return NULL;
	if (merger__recording_new(p, &err, &rec) < 0) {
		cmd_error("merge: %s %s", cfg->ebpf, err.msg);
		return NULL;
	}
	return rec;
}

/* ---- the SDK side --------------------------------------------------------------- */

/* ---- main ------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{"ebpf", required_argument, NULL, 'e'},
		{"sdk", required_argument, NULL, 's'},
		{"pid", required_argument, NULL, 'p'},
		{"runtime", required_argument, NULL, 'r'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"annotate", no_argument, NULL, 'A'},
		{"all", no_argument, NULL, 'a'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned pid;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "e:s:p:r:o:f:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			cfg->ebpf = optarg;
			break;
		case 's':
			if (cfg->n_sdk == MERGE_MAX_SDK) {
				cmd_error("merge: at most %d --sdk files", MERGE_MAX_SDK);
				return -EINVAL;
			}
			cfg->sdk[cfg->n_sdk++] = optarg;
			break;
		case 'p':
			if (cmd_parse_uint("merge", "--pid", optarg, 1, INT32_MAX, &pid) < 0)
				return -EINVAL;
			cfg->pid = (int32_t)pid;
			break;
		case 'r':
			cfg->runtime = profile__runtime_parse(optarg);
			if (!merger__can_merge(cfg->runtime)) {
				cmd_error(
					"merge: --runtime takes node, python, jvm or go, not '%s'",
					optarg);
				return -EINVAL;
			}
			break;
		case 'o':
			cfg->output = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "pprof") == 0) {
				cfg->folded = false;
			} else if (strcmp(optarg, "folded") == 0) {
				cfg->folded = true;
			} else {
				cmd_error("merge: --format takes pprof or folded, not '%s'",
					  optarg);
				return -EINVAL;
			}
			break;
		case 'A':
			cfg->annotate = true;
			break;
		case 'a':
			cfg->all = true;
			break;
		case 'v':
			cfg->verbose = true;
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
		cmd_error("merge: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->ebpf || !cfg->n_sdk) {
		cmd_error("merge: needs --ebpf FILE and --sdk FILE (braid merge --help)");
		return -EINVAL;
	}
	return 0;
}

static void print_summary(const struct config *cfg, const struct merger_process *pr,
			  const struct merger_splice_stats *st)
{
	int64_t kept = 0;

	for (int c = 0; c < MERGER_CAT_COUNT; c++)
		kept += st->kept[c];
	fprintf(stderr,
		"braid: merge: pid %d (%s): %" PRId64 " samples, %" PRId64
		" given SDK frames, %" PRId64 " kept their eBPF frames\n",
		pr->pid, profile__runtime_name(pr->runtime), st->samples, st->spliced, kept);
	if (st->native_call_samples)
		fprintf(stderr,
			"braid: merge: %" PRId64 " samples in %" PRId64
			" native functions shared among the SDK stacks that call them\n",
			st->native_call_samples, st->native_calls);
	if (pr->runtime == RUNTIME_GO)
		fprintf(stderr,
			"braid: merge: Go stacks matched with the SDK's: %" PRId64
			" samples whole (root to leaf), %" PRId64 " from the root down to some "
			"frame, %" PRId64 " not at all (no labels)\n",
			st->match_exact, st->match_partial, st->match_none);
	if (st->thread_groups)
		fprintf(stderr,
			"braid: merge: %" PRId64 " threads named by both views: %" PRId64
			" samples shared among their own thread's SDK stacks\n",
			st->thread_groups, st->thread_samples);
	if (!cfg->verbose)
		return;
	fprintf(stderr, "  %-8s %12s %12s %16s\n", "category", "eBPF", "kept", "SDK weight");
	for (int c = 0; c < MERGER_CAT_COUNT; c++)
		fprintf(stderr, "  %-8s %12" PRId64 " %12" PRId64 " %16.0f\n",
			merger__category_name((enum merger_category)c), st->by_category[c],
			st->kept[c], st->sdk_weight[c]);
	if (st->to_guest)
		fprintf(stderr,
			"  %" PRId64
			" GC/JIT samples inside JS went to the SDK's JS stacks (it has "
			"no GC/JIT category)\n",
			st->to_guest);
	if (st->broken)
		fprintf(stderr, "  %" PRId64 " samples had a broken stack (no frame pointers?)\n",
			st->broken);
}

int cmd_merge(int argc, char **argv)
{
	struct config cfg = {.output = "braid-merged.pb.gz"};
	struct merger_recording *rec = NULL;
	struct profile *sdk = NULL, *out = NULL;
	struct merger_splice_stats st = {0};
	struct dynbuf buf;
	struct errbuf err = {{0}};
	const struct merger_process *pr;
	const struct profile *ep;
	int64_t period;
	uint32_t pid_key;
	int r, status = 1;

	dynbuf__init(&buf, 0);
	if (parse_args(argc, argv, &cfg) < 0)
		return EXIT_USAGE;
	if (cfg.folded && strcmp(cfg.output, "braid-merged.pb.gz") == 0)
		cfg.output = "braid-merged.folded";
	if (!cfg.folded && strcmp(cfg.output, "-") == 0 && isatty(STDOUT_FILENO)) {
		cmd_error("merge: not writing gzipped pprof to a terminal: use -o FILE");
		return EXIT_USAGE;
	}
	rec = ebpf_load(&cfg);
	if (!rec)
		goto cleanup;
	pr = merger__recording_pick(rec, cfg.pid, &err);
	if (!pr) {
		cmd_error("merge: %s %s", cfg.ebpf, err.msg);
		goto cleanup;
	}
	if (cfg.runtime != RUNTIME_UNKNOWN)
		merger__recording_set_runtime(rec, pr->pid, cfg.runtime);
	if (!merger__can_merge(pr->runtime)) {
		cmd_error("merge: pid %d runs %s: braid merges Node.js, Python, the JVM and Go "
			  "(--runtime)",
			  pr->pid, profile__runtime_name(pr->runtime));
		goto cleanup;
	}
	if (cmd_load_sdk_profiles("merge", cfg.sdk, cfg.n_sdk, &sdk, NULL) < 0)
		goto cleanup;
	ep = merger__recording_profile(rec);
	period = merger__recording_period(rec);
	out = merger__new_profile(period, profile__time_nanos(ep),
				  profile__time_nanos(ep) + profile__duration_nanos(ep));
	if (!out || profile__intern_cstr(out, "pid", &pid_key) < 0) {
		cmd_error("merge: %s", strerror(ENOMEM));
		goto cleanup;
	}
	for (size_t i = 0; i < merger__recording_n_processes(rec); i++) {
		const struct merger_process *p = merger__recording_process(rec, i);
		struct profile_label pid_label = {.key = pid_key, .num = p->pid};
		struct merger_splice_input in = {
			.runtime = p->runtime,
			.pid = p->pid,
			.stacks = p->stacks,
			.n_stacks = p->n_stacks,
			.sdk = p == pr ? sdk : NULL,
			.period = period,
		};

		if (p != pr && !cfg.all)
			continue;
		r = profile__add_labels(out, &pid_label, 1, &in.labels);
		/* the SDK's Python lines: under the process's root while it
		 * runs, else as braid sees the files */
		if (r == 0 && in.sdk)
			r = merger__source_new(p->pid, &in.source);
		if (r == 0)
			r = merger__splice(&in, out, p == pr ? &st : NULL);
		merger__source_free(in.source);
		if (r < 0) {
			cmd_error("merge: splicing pid %d: %s", p->pid, strerror(-r));
			goto cleanup;
		}
	}
	print_summary(&cfg, pr, &st);
	/* folded counts are samples, not nanoseconds */
	r = cfg.folded ? profile__scale(out, (double[]){1.0 / (double)period}) : 0;
	if (r == 0)
		r = cfg.folded
			    ? profile__to_folded(
				      out, 0,
				      &(struct profile_folded_opts){.annotate = cfg.annotate}, &buf)
			    : profile__to_pprof(out, true, &buf);
	if (r < 0) {
		cmd_error("merge: encoding the profile: %s", strerror(-r));
		goto cleanup;
	}
	if (util__write_file(cfg.output, buf.data, buf.len, &err) < 0) {
		cmd_error("merge: %s", err.msg);
		goto cleanup;
	}
	status = 0;
cleanup:
	dynbuf__free(&buf);
	profile__free(out);
	profile__free(sdk);
	merger__recording_free(rec);
	return status;
}
