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
	enum store_runtime runtime;
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
		"  -r, --runtime R        node or python: the classifier to use (default: E's\n"
		"                         runtime label, else told from the frames)\n"
		"  -o, --output OUT       where to write (default braid-merged.pb.gz; - for\n"
		"                         standard output)\n"
		"  -f, --format F         pprof (default: cpu/nanoseconds, E's period) or\n"
		"                         folded (\"root;...;leaf N\", N in samples)\n"
		"      --annotate         folded: mark kernel frames _[k] and JIT frames _[j]\n"
		"      --all              also copy every other process of E unchanged\n"
		"  -v, --verbose          samples per category, kept and spliced\n"
		"  -h, --help             show this help\n");
}

static bool can_splice(enum store_runtime r)
{
	return r == STORE_RUNTIME_NODE || r == STORE_RUNTIME_PYTHON;
}

/* ---- the eBPF side ------------------------------------------------------------ */

struct proc {
	int32_t pid;
	enum store_runtime runtime; /* from the label, else the frames */
	struct merger_ebpf_stack *stacks;
	size_t n, cap;
	int64_t samples;
};

struct ebpf {
	struct profile *p;
	int64_t period;
	int type; /* the sample type holding cpu time or counts */
	bool counts;
	struct store_frame *frames; /* by location id */
	struct proc *procs;
	size_t n_procs, cap_procs;
	struct store_frame *pool;
	size_t n_pool, cap_pool;
	uint32_t pid_key, tid_key, runtime_key;
};

static void ebpf_free(struct ebpf *e)
{
	for (size_t i = 0; i < e->n_procs; i++)
		free(e->procs[i].stacks);
	free(e->procs);
	free(e->frames);
	free(e->pool);
	profile__free(e->p);
}

static struct proc *proc_get(struct ebpf *e, int32_t pid)
{
	for (size_t i = 0; i < e->n_procs; i++)
		if (e->procs[i].pid == pid)
			return &e->procs[i];
	if (util__grow((void **)&e->procs, &e->cap_procs, e->n_procs + 1, sizeof(*e->procs)) < 0)
		return NULL;
	e->procs[e->n_procs] = (struct proc){.pid = pid};
	return &e->procs[e->n_procs++];
}

static int64_t label_num(const struct profile *p, uint32_t set, uint32_t key, int64_t dflt)
{
	const struct profile_label *l;
	size_t n = profile__labels(p, set, &l);

	for (size_t i = 0; key && i < n; i++)
		if (l[i].key == key && !l[i].str)
			return l[i].num;
	return dflt;
}

static const char *label_str(const struct profile *p, uint32_t set, uint32_t key)
{
	const struct profile_label *l;
	size_t n = profile__labels(p, set, &l);

	for (size_t i = 0; key && i < n; i++)
		if (l[i].key == key && l[i].str)
			return profile__str(p, l[i].str);
	return NULL;
}

/* Reads E into stacks per process. Frames are made once per location, so
 * equal frames share their strings (the splice's frame cache keys on that). */
static int ebpf_load(const struct config *cfg, struct ebpf *e)
{
	size_t n_locs, n_samples, total_frames = 0;
	int r;

	r = cmd_load_profile(cfg->ebpf, PROFILE_FORMAT_PPROF, NULL, &e->p, NULL);
	if (r < 0)
		return r;
	e->type = profile__find_sample_type(e->p, "cpu");
	e->period = profile__period(e->p);
	if (e->type < 0 || e->period <= 0) {
		e->type = profile__find_sample_type(e->p, "samples");
		e->counts = true;
	}
	if (e->type < 0 || e->period <= 0) {
		cmd_error("merge: %s has no cpu sample type with a period, nor samples: is it "
			  "a `braid record` profile?",
			  cfg->ebpf);
		return -EINVAL;
	}
	e->pid_key = profile__find_string(e->p, "pid");
	e->tid_key = profile__find_string(e->p, "tid");
	e->runtime_key = profile__find_string(e->p, "runtime");
	if (!e->pid_key) {
		cmd_error("merge: %s has no pid labels: record it with `braid record`", cfg->ebpf);
		return -EINVAL;
	}
	n_locs = profile__n_locations(e->p);
	e->frames = calloc(n_locs + 1, sizeof(*e->frames));
	if (!e->frames)
		return -ENOMEM;
	for (uint32_t id = 1; id <= n_locs; id++) {
		r = merger__frame_of_location(e->p, id, &e->frames[id]);
		if (r < 0)
			return r;
	}
	n_samples = profile__n_samples(e->p);
	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(e->p, i);

		total_frames += profile__stack(e->p, s.stack, &(const uint32_t *){NULL});
	}
	e->pool = malloc((total_frames + 1) * sizeof(*e->pool));
	if (!e->pool)
		return -ENOMEM;
	for (size_t i = 0; i < n_samples; i++) {
		struct profile_sample s = profile__sample(e->p, i);
		int64_t v = s.values[e->type], count;
		int32_t pid = (int32_t)label_num(e->p, s.labels, e->pid_key, -1);
		const uint32_t *locs;
		size_t depth = profile__stack(e->p, s.stack, &locs);
		struct merger_ebpf_stack *st;
		struct proc *pr;

		if (v <= 0)
			continue;
		count = e->counts ? v : (v + e->period / 2) / e->period;
		if (count <= 0)
			continue;
		if (pid < 0) {
			cmd_error("merge: %s: a sample without a pid label", cfg->ebpf);
			return -EINVAL;
		}
		pr = proc_get(e, pid);
		if (!pr ||
		    util__grow((void **)&pr->stacks, &pr->cap, pr->n + 1, sizeof(*pr->stacks)) < 0)
			return -ENOMEM;
		if (pr->runtime == STORE_RUNTIME_UNKNOWN) {
			const char *rt = label_str(e->p, s.labels, e->runtime_key);

			pr->runtime = store__runtime_parse(rt);
		}
		for (size_t k = 0; k < depth; k++)
			e->pool[e->n_pool + k] = e->frames[locs[k]];
		st = &pr->stacks[pr->n++];
		*st = (struct merger_ebpf_stack){
			.frames = e->pool + e->n_pool,
			.n_frames = depth,
			/* without a tid label every sample is taken as the main thread's */
			.tid = (int32_t)label_num(e->p, s.labels, e->tid_key, pid),
			.count = count,
		};
		e->n_pool += depth;
		pr->samples += count;
	}
	/* a runtime the label does not name is told from the frames */
	for (size_t i = 0; i < e->n_procs; i++) {
		struct proc *pr = &e->procs[i];

		for (size_t k = 0; !can_splice(pr->runtime) && k < pr->n; k++) {
			/* kernel frames name no runtime: the whole stack will do */
			enum store_runtime rt = merger__runtime_of_frames(pr->stacks[k].frames,
									  pr->stacks[k].n_frames);

			if (rt != STORE_RUNTIME_UNKNOWN)
				pr->runtime = rt;
		}
	}
	return 0;
}

static struct proc *pick_process(const struct config *cfg, struct ebpf *e)
{
	struct proc *found = NULL;
	size_t n = 0;

	for (size_t i = 0; i < e->n_procs; i++) {
		if (cfg->pid) {
			if (e->procs[i].pid == cfg->pid)
				return &e->procs[i];
			continue;
		}
		if (can_splice(e->procs[i].runtime)) {
			found = &e->procs[i];
			n++;
		}
	}
	if (cfg->pid) {
		cmd_error("merge: %s has no samples of pid %d", cfg->ebpf, cfg->pid);
		return NULL;
	}
	if (n != 1) {
		cmd_error("merge: %s has %zu processes running Node.js or Python: name the one "
			  "the SDK profiled with --pid",
			  cfg->ebpf, n);
		return NULL;
	}
	return found;
}

/* ---- the SDK side --------------------------------------------------------------- */

static int sdk_load(const struct config *cfg, struct profile **ret)
{
	struct profile *sum = NULL;
	int r = 0;

	for (size_t i = 0; i < cfg->n_sdk; i++) {
		struct profile *p = NULL;

		r = cmd_load_profile(cfg->sdk[i], PROFILE_FORMAT_AUTO, NULL, &p, NULL);
		if (r < 0)
			goto cleanup;
		if (!sum) {
			sum = p;
			continue;
		}
		r = profile__merge(sum, p);
		profile__free(p);
		if (r == -EINVAL) {
			cmd_error("merge: %s has other sample types than %s: give the pushes of "
				  "one profile kind",
				  cfg->sdk[i], cfg->sdk[0]);
			goto cleanup;
		}
		if (r < 0) {
			cmd_error("merge: adding %s: %s", cfg->sdk[i], strerror(-r));
			goto cleanup;
		}
	}
	*ret = sum;
	sum = NULL;
cleanup:
	profile__free(sum);
	return r;
}

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
			cfg->runtime = store__runtime_parse(optarg);
			if (!can_splice(cfg->runtime)) {
				cmd_error("merge: --runtime takes node or python, not '%s'",
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

static void print_summary(const struct config *cfg, const struct proc *pr,
			  const struct merger_splice_stats *st)
{
	int64_t kept = 0;

	for (int c = 0; c < MERGER_CAT_COUNT; c++)
		kept += st->kept[c];
	fprintf(stderr,
		"braid: merge: pid %d (%s): %" PRId64 " samples, %" PRId64
		" given SDK frames, %" PRId64 " kept their eBPF frames\n",
		pr->pid, store__runtime_name(pr->runtime), st->samples, st->spliced, kept);
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
	struct ebpf e = {0};
	struct profile *sdk = NULL, *out = NULL;
	struct merger_splice_stats st = {0};
	struct dynbuf buf;
	struct errbuf err;
	struct proc *pr;
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
	r = ebpf_load(&cfg, &e);
	if (r < 0) {
		if (r == -ENOMEM)
			cmd_error("merge: %s", strerror(-r));
		goto cleanup;
	}
	pr = pick_process(&cfg, &e);
	if (!pr)
		goto cleanup;
	if (cfg.runtime != STORE_RUNTIME_UNKNOWN)
		pr->runtime = cfg.runtime;
	if (!can_splice(pr->runtime)) {
		cmd_error("merge: pid %d runs %s: braid splices Node.js and Python (--runtime)",
			  pr->pid, store__runtime_name(pr->runtime));
		goto cleanup;
	}
	if (sdk_load(&cfg, &sdk) < 0)
		goto cleanup;
	out = merger__new_profile(e.period, profile__time_nanos(e.p),
				  profile__time_nanos(e.p) + profile__duration_nanos(e.p));
	if (!out || profile__intern_cstr(out, "pid", &pid_key) < 0) {
		cmd_error("merge: %s", strerror(ENOMEM));
		goto cleanup;
	}
	for (size_t i = 0; i < e.n_procs; i++) {
		struct proc *p = &e.procs[i];
		struct profile_label pid_label = {.key = pid_key, .num = p->pid};
		struct merger_splice_input in = {
			.runtime = p->runtime,
			.pid = p->pid,
			.stacks = p->stacks,
			.n_stacks = p->n,
			.sdk = p == pr ? sdk : NULL,
			.period = e.period,
		};

		if (p != pr && !cfg.all)
			continue;
		r = profile__add_labels(out, &pid_label, 1, &in.labels);
		if (r == 0)
			r = merger__splice(&in, out, p == pr ? &st : NULL);
		if (r < 0) {
			cmd_error("merge: splicing pid %d: %s", p->pid, strerror(-r));
			goto cleanup;
		}
	}
	print_summary(&cfg, pr, &st);
	/* folded counts are samples, not nanoseconds */
	r = cfg.folded ? profile__scale(out, (double[]){1.0 / (double)e.period}) : 0;
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
	ebpf_free(&e);
	return status;
}
