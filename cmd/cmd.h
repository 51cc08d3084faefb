/* SPDX-License-Identifier: Apache-2.0 */
/* The braid subcommands. Each takes the arguments after its name (argv[0]
 * is the subcommand) and returns the process exit status. */
#ifndef BRAID_CMD_H
#define BRAID_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int cmd_agent(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* braid agent and braid ingest: reads the options of agent/agent.h's
 * `command` (enum agent_command), prints usage_fn's help or the effective
 * configuration when asked, else runs the daemon. Returns the exit status. */
int cmd_daemon(int command, int argc, char **argv, void (*usage_fn)(FILE *f));

/* Prints "braid: <message>" to stderr. Only commands and daemon loops log. */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct profile;
struct profile_folded_opts;
enum profile_format;

/* Reads and decodes a profile file ("-" = stdin); on failure prints why
 * (naming the file) and returns a negative errno. */
int cmd_load_profile(const char *path, enum profile_format format,
		     const struct profile_folded_opts *opts, struct profile **ret_profile,
		     enum profile_format *ret_format);

/* How to read a JFR recording (--jfr-profile, --sample-rate, --jfr-labels). */
struct cmd_jfr {
	const char
		*profile; /* the profile to take ("process_cpu:cpu"; NULL: CPU, else the first) */
	unsigned sample_rate; /* Hz; 0: 100, the Java agent's */
	const char *labels;   /* a file holding the push's `labels` part, or NULL */
	bool thread_labels;   /* os_thread_id on each sample (the merger's) */
	char names[512];      /* out: the recording's profiles, ", " between */
};

/* cmd_load_profile, reading a JFR recording (by --from jfr or its magic,
 * gzipped or not) as jfr says. */
int cmd_load_profile_jfr(const char *path, enum profile_format format,
			 const struct profile_folded_opts *opts, struct cmd_jfr *jfr,
			 struct profile **ret_profile, enum profile_format *ret_format);

/* Parses --jfr-profile, --sample-rate and --jfr-labels (getopt values 'J',
 * 'R', 'L') into jfr; 1 if c was one of them, 0 if not, -EINVAL (printed)
 * for a bad value. */
int cmd_parse_jfr_option(const char *cmd, int c, const char *arg, struct cmd_jfr *jfr);
#define CMD_JFR_OPTIONS                                                                            \
	{"jfr-profile", required_argument, NULL, 'J'},                                             \
		{"sample-rate", required_argument, NULL, 'R'},                                     \
	{                                                                                          \
		"jfr-labels", required_argument, NULL, 'L'                                         \
	}
#define CMD_JFR_HELP                                                                               \
	"      --jfr-profile P    a JFR recording's profile to read: process_cpu:cpu (the\n"       \
	"                         default), wall:wall, memory:alloc_in_new_tlab_objects,\n"        \
	"                         mutex:contentions, block:contentions, ... or a metric\n"         \
	"      --sample-rate HZ   a JFR recording's sampling rate (default 100, the Java\n"        \
	"                         agent's): a CPU or wall sample weighs 1e9/HZ ns\n"               \
	"      --jfr-labels FILE  the Java agent's `labels` part of the same push: context\n"      \
	"                         labels on the samples\n"

/* What the SDK profiles read by cmd_load_sdk_profiles cover. */
struct cmd_sdk_range {
	int64_t from_ns, until_ns; /* the union of their time ranges; 0: unknown */
	int64_t sample_rate;	   /* the first one's rate from its period (Hz); 0 */
};

/* Reads the SDK profiles at paths (as pushed: pprof or folded, gzipped or
 * not) and sums them into *ret_sum; ret_range (may be NULL) gets what they
 * cover. On failure prints why, naming the file ("CMD: F has other sample
 * types than FIRST" for pushes of another profile kind), and returns a
 * negative errno. */
int cmd_load_sdk_profiles(const char *cmd, const char *const *paths, size_t n,
			  struct profile **ret_sum, struct cmd_sdk_range *ret_range);

/* Parses the value of --from (auto, pprof, folded, lines); on a bad value
 * prints "CMD: --from takes ..." and returns -EINVAL. */
int cmd_parse_from(const char *cmd, const char *arg, enum profile_format *ret_format);

/* Parses option `opt`'s value s, a whole number from min to max; on a bad
 * value prints "CMD: OPT takes a whole number from MIN to MAX, not 'S'" and
 * returns -EINVAL. */
int cmd_parse_uint(const char *cmd, const char *opt, const char *s, unsigned min, unsigned max,
		   unsigned *ret);

/* The one operand left after the options (argv[optind]); prints which is
 * wrong ("no WHAT given" / "more than one WHAT given") and returns NULL
 * unless there is exactly one. */
const char *cmd_one_operand(const char *cmd, int argc, char **argv, const char *what);

/* "32M", "1GiB", "4096" (K, M, G: powers of 1024): bytes. On a bad value
 * prints "CMD: OPT takes a size ..." and returns -EINVAL. */
int cmd_parse_size(const char *cmd, const char *opt, const char *s, uint64_t *ret);

/* Exit statuses: 0 ok, 1 the work failed (bad input, I/O), 2 bad usage. */
#define EXIT_USAGE 2

#endif
