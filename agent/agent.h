/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent: braid's daemon. `braid agent` runs every stage in one process, one
 * thread each (ingest: its own pool), each with its own store connection:
 *
 *   collector  drains the sampler just after each wall-clock second and
 *              writes the second's rows (and their processes) in one
 *              transaction
 *   ingest     the SDKs' endpoint, /metrics for all, the live page
 *   merger     a merge pass each second (merger__run)
 *   forwarder  delivers the outbox (forward__run) when an upstream is set
 *
 * `braid ingest` runs the same loop with the collector and the merger off.
 * The store passes work between the stages, so a crash loses nothing that
 * was committed. docs/agent.md describes the stages, the order they stop in
 * and the capabilities kept.
 *
 * Configuration: struct agent_config, typed. agent_settings__read fills it
 * from flags, BRAID_* variables and a config file, the way both commands
 * take them; a program can as well fill it itself.
 */
#ifndef BRAID_AGENT_H
#define BRAID_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "collector/collector.h"
#include "forward/forward.h"
#include "store/store.h"
#include "util/util.h"

#define AGENT_MAX_LIST 64 /* values of a repeatable option: --listen, --upstream-header */

/* Which command's options agent_settings__read takes. */
enum agent_command {
	AGENT_CMD_AGENT,  /* braid agent */
	AGENT_CMD_INGEST, /* braid ingest: the ingest and store options only */
};

/* Everything the daemon runs with. Strings are borrowed: they must outlive
 * agent__run. */
struct agent_config {
	const char *name;    /* in messages: "braid: NAME: ..." */
	bool with_collector; /* the eBPF collector (false: --no-ebpf) */
	bool with_merger;    /* the merger, the live page and the store gauges */
	bool keep_caps;	     /* keep every capability (else docs/agent.md's few) */
	bool verbose;	     /* the stages' counters every minute, libbpf's messages */

	/* ingest: see struct ingest_options; 0 means its default */
	const char *listen[AGENT_MAX_LIST]; /* none: INGEST_DEFAULT_LISTEN */
	size_t n_listen;
	const char *auth_token, *basic_auth; /* NULL: none */
	unsigned threads, max_connections, timeout_s, retry_after_s;
	uint64_t max_body;

	/* store */
	const char *data_dir; /* NULL: store__default_data_dir() */
	uint64_t store_max_bytes;
	int64_t retention_s;
	enum store_sync sync;

	/* collector */
	unsigned freq; /* Hz; also what the merger and the page assume */
	bool no_kernel;
	enum collector_unwind_mode unwind;
	uint64_t unwind_bytes;
	const char *cgroup; /* NULL: every process */

	/* merger */
	int64_t grace_s, collect_interval_s;
	/* the __name__ of an SDK's process_cpu profile when its process is
	 * merged (see struct merger_options); "process_cpu": as pushed */
	const char *sdk_cpu_name;

	/* forwarder: only with an upstream */
	const char *upstream; /* NULL: profiles stay in the store */
	enum forward_api api;
	const char *tenant, *upstream_token, *upstream_basic_auth;
	const char *headers[AGENT_MAX_LIST];
	size_t n_headers;
	const char *ca, *cert, *key;
	bool insecure;
	int64_t upstream_timeout_s, retry_max_backoff_s, flush_timeout_s;
	uint64_t batch_max_bytes;
};

/* Fills *cfg with a command's defaults (the ones --help gives). */
void agent_config__default(struct agent_config *cfg, enum agent_command cmd);

/* Runs the daemon until SIGTERM, SIGINT or agent__stop, then stops it in
 * the order docs/agent.md gives. The loop logs to stderr ("braid: NAME:
 * ..."). Returns 0 after a clean stop, or a negative errno when start-up
 * failed or a stage failed for good (the message, also logged, in err).
 * SIGINT, SIGTERM and SIGHUP are blocked in the calling thread (the threads
 * it starts inherit the mask) and SIGPIPE is ignored. One agent__run at a
 * time in a process. */
int agent__run(const struct agent_config *cfg, struct errbuf *err);
/* Asks the running agent__run to stop, as SIGTERM does. Async-signal-safe;
 * does nothing when none runs. */
void agent__stop(void);

/* ---- reading the configuration (config.c) ---------------------------------- */

/* The sources of a configuration and the memory behind its strings. */
struct agent_settings;

#define AGENT_SETTINGS_HELP  1 /* --help was given: print the usage, exit 0 */
#define AGENT_SETTINGS_PRINT 2 /* --print-config was given: agent_settings__print, exit 0 */

/* Reads a command's flags (argv after the command's name, getopt style),
 * then the BRAID_* variables, then the config file (--config or
 * BRAID_CONFIG), into *cfg (filled with agent_config__default first): a
 * flag wins over a variable, which wins over the file. Returns 0,
 * AGENT_SETTINGS_HELP or AGENT_SETTINGS_PRINT, or -EINVAL (bad usage) with
 * the message in err, which is empty when getopt already said what was
 * wrong (print the usage then), or -ENOMEM. *ret_settings (also on
 * failure) holds cfg's strings: free it after the run. */
int agent_settings__read(enum agent_command cmd, int argc, char **argv, struct agent_config *cfg,
			 struct agent_settings **ret_settings, struct errbuf *err);
/* Prints the effective configuration in the config file's format, each
 * value with its source; secrets as "<secret, N bytes>". */
void agent_settings__print(const struct agent_settings *st, FILE *f);
void agent_settings__free(struct agent_settings *st);

#endif
