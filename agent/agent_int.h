/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of agent/ share (moved from cmd/agent.c). */
#ifndef BRAID_AGENT_INT_H
#define BRAID_AGENT_INT_H

#include "cmd/cmd.h"
#include "collector/collector.h"
#include "forward/forward.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MAINTAIN_EVERY_S 60
/* each connection's SQLite page cache: the agent has one per stage and per
 * ingest thread, and their caches fill as the store grows; 4 MiB each keeps
 * the agent's memory flat once they are full (16 MiB each grew it by
 * ~100 MiB over the first half hour of a soak) */
#define AGENT_STORE_CACHE_KIB 4096
#define STORE_STATS_EVERY_S   5
#define MAX_LIST_VALUES	      64 /* --listen, --upstream-header */
#define MAX_CONFIG_FILE	      (1u << 20)
#define MAX_CONFIG_LINE	      8192
#define ERROR_LOG_EVERY_NS    (60ll * 1000000000) /* a failing stage logs once a minute */

#ifndef BRAID_VERSION
#define BRAID_VERSION "dev"
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* ---- the options ----------------------------------------------------------------- */

enum okind { O_STR, O_SECRET, O_BOOL, O_UINT, O_SIZE, O_DURATION, O_CHOICE, O_LIST };

struct opt {
	const char *name;
	enum okind kind;
	const char *def; /* the default as text; NULL: none */
	const char *choices;
	uint64_t min, max; /* O_UINT; O_DURATION in seconds; O_SIZE in bytes */
};

enum {
	OPT_LISTEN,
	OPT_AUTH_TOKEN,
	OPT_AUTH_TOKEN_FILE,
	OPT_BASIC_AUTH,
	OPT_BASIC_AUTH_FILE,
	OPT_DATA_DIR,
	OPT_STORE_MAX_BYTES,
	OPT_RETENTION,
	OPT_SYNC,
	OPT_NO_EBPF,
	OPT_FREQ,
	OPT_NO_KERNEL,
	OPT_CGROUP,
	OPT_GRACE,
	OPT_COLLECT_INTERVAL,
	OPT_UPSTREAM,
	OPT_UPSTREAM_API,
	OPT_TENANT,
	OPT_UPSTREAM_TOKEN,
	OPT_UPSTREAM_TOKEN_FILE,
	OPT_UPSTREAM_BASIC_AUTH,
	OPT_UPSTREAM_BASIC_AUTH_FILE,
	OPT_UPSTREAM_HEADER,
	OPT_UPSTREAM_CA,
	OPT_UPSTREAM_CERT,
	OPT_UPSTREAM_KEY,
	OPT_UPSTREAM_INSECURE,
	OPT_UPSTREAM_TIMEOUT,
	OPT_BATCH_MAX_BYTES,
	OPT_RETRY_MAX_BACKOFF,
	OPT_FLUSH_TIMEOUT,
	OPT_KEEP_CAPS,
	OPT_VERBOSE,
	N_OPTS
};

enum source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

/* One option's value, as given: text (lists: several) and where from. */
struct val {
	enum source src;
	const char *text[MAX_LIST_VALUES];
	size_t n;
	char where[320]; /* "--freq", "BRAID_FREQ", "/etc/braid/agent.conf:12" */
};

/* Everything the agent runs with, typed. */
struct config {
	const char *listen[MAX_LIST_VALUES];
	size_t n_listen;
	const char *auth_token, *basic_auth; /* read from files already */
	const char *data_dir;
	uint64_t store_max_bytes;
	int64_t retention_s;
	enum store_sync sync;
	bool no_ebpf, no_kernel, keep_caps, verbose, insecure;
	unsigned freq;
	const char *cgroup;
	int64_t grace_s, collect_interval_s;
	const char *upstream;
	enum forward_api api;
	const char *tenant, *upstream_token, *upstream_basic_auth;
	const char *headers[MAX_LIST_VALUES];
	size_t n_headers;
	const char *ca, *cert, *key;
	int64_t upstream_timeout_s, retry_max_backoff_s, flush_timeout_s;
	uint64_t batch_max_bytes;
};

/* The values of every option and the memory behind them. */
struct settings {
	struct val v[N_OPTS];
	const char *config_file;
	enum source config_src;
	char *file_text; /* the config file, split in place */
	char *env_copies[N_OPTS];
	char *secrets[4]; /* read from files */
};

/* ---- the agent ----------------------------------------------------------------------- */

struct agent {
	struct config *cfg;
	struct store_options so;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop_merger, stop_forward; /* under lock */
	int64_t flush_deadline_ns;
	int stop_efd; /* wakes the collector */
	struct collector *col;
	struct forwarder *fwd; /* owned by its thread; interrupt only from others */
	int fatal;	       /* a stage failed for good: the agent stops, exit 1 */
	/* what /metrics shows, under lock */
	struct collector_stats col_st;
	bool have_col;
	int64_t rows_stored, samples_stored, rows_refused, samples_refused, store_errors;
	struct merger_stats merger_st;
	int64_t merger_errors;
	struct forward_stats fwd_st;
	int64_t forward_errors;
	struct store_stats store_st;
	bool have_store;
};

/* config.c */
extern const struct opt opts[N_OPTS];
void agent_usage(FILE *f);
void settings_free(struct settings *st);
int configure(int argc, char **argv, struct settings *st, struct config *cfg);
/* agent.c */
int64_t now_ns(void);
/* metrics.c */
int agent_metrics(void *ctx, struct dynbuf *b);
int agent_main(int argc, char **argv);
/* page.c */
int agent_page(void *ctx, struct store *s, const struct ingest_page *pg, struct dynbuf *out,
	       const char **ret_type);

#endif
