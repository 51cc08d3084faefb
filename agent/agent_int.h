/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of agent/ share: the running daemon's state. agent.c runs
 * it, metrics.c and page.c answer ingest's /metrics and live page from it
 * (on ingest's request threads). */
#ifndef BRAID_AGENT_INT_H
#define BRAID_AGENT_INT_H

#include "agent/agent.h"
#include "collector/collector.h"
#include "forward/forward.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "store/store.h"

#include <pthread.h>

/* The daemon's state, shared by its threads. */
struct agent {
	const struct agent_config *cfg;
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

static inline int64_t now_ns(void)
{
	return store__now_ns();
}

/* "braid: NAME: message" on stderr: only the daemon's threads log. */
void agent__log(const struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ingest's hooks (ingest_metrics_fn, ingest_page_fn); ctx is the agent. */
int agent__metrics(void *ctx, struct ingest *in, const struct store_stats *st, struct dynbuf *b);
int agent__page(void *ctx, struct store *s, const struct ingest_page *pg, struct dynbuf *out,
		const char **ret_type);

#endif
