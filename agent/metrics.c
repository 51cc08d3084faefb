/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's /metrics. */
#define _GNU_SOURCE
#include "agent_int.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- /metrics ------------------------------------------------------------------------- */

static int metric(struct dynbuf *b, const char *name, const char *type, const char *help)
{
	return dynbuf__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The agent's stages, appended to ingest's /metrics (a request thread). */
int agent_metrics(void *ctx, struct dynbuf *b)
{
	struct agent *a = ctx;
	struct collector_stats c;
	struct merger_stats m;
	struct forward_stats f;
	struct store_stats ss;
	bool have_col, have_store;
	int64_t stored, sstored, refused, srefused, store_errors, merger_errors, fwd_errors;
	int r = 0;

	pthread_mutex_lock(&a->lock);
	c = a->col_st;
	have_col = a->have_col;
	m = a->merger_st;
	f = a->fwd_st;
	ss = a->store_st;
	have_store = a->have_store;
	stored = a->rows_stored;
	sstored = a->samples_stored;
	refused = a->rows_refused;
	srefused = a->samples_refused;
	store_errors = a->store_errors;
	merger_errors = a->merger_errors;
	fwd_errors = a->forward_errors;
	pthread_mutex_unlock(&a->lock);

	if (have_col) {
		r = metric(b, "braid_collector_samples_total", "counter",
			   "eBPF samples by what became of them.");
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    "braid_collector_samples_total{state=\"counted\"} %" PRIu64 "\n"
				    "braid_collector_samples_total{state=\"drained\"} %" PRIu64 "\n"
				    "braid_collector_samples_total{state=\"stored\"} %" PRId64 "\n",
				    c.sampler.samples, c.sampler.drained, sstored);
		r = r < 0 ? r
			  : metric(b, "braid_collector_samples_dropped_total", "counter",
				   "eBPF samples lost, by reason.");
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    "braid_collector_samples_dropped_total{reason=\"map_full\"} "
				    "%" PRIu64 "\n"
				    "braid_collector_samples_dropped_total{reason=\"drain\"} "
				    "%" PRIu64 "\n"
				    "braid_collector_samples_dropped_total{reason=\"store\"} "
				    "%" PRId64 "\n",
				    c.sampler.lost_full, c.sampler.lost_drain, srefused);
		r = r < 0 ? r
			  : metric(b, "braid_collector_stacks_lost_total", "counter",
				   "Samples whose stack the kernel could not store.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_collector_stacks_lost_total %" PRIu64 "\n",
					   c.samples_stack_lost);
		r = r < 0 ? r
			  : metric(b, "braid_collector_rows_total", "counter",
				   "Symbolized (process, thread, stack) rows, stored or refused.");
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    "braid_collector_rows_total{state=\"stored\"} %" PRId64
				    "\nbraid_collector_rows_total{state=\"refused\"} %" PRId64 "\n",
				    stored, refused);
		r = r < 0 ? r
			  : metric(b, "braid_collector_store_errors_total", "counter",
				   "Drains the store failed to take.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_collector_store_errors_total %" PRId64 "\n",
					   store_errors);
		r = r < 0 ? r
			  : metric(b, "braid_collector_processes", "gauge",
				   "Processes whose metadata is cached.");
		r = r < 0 ? r : dynbuf__printf(b, "braid_collector_processes %zu\n", c.processes);
		r = r < 0 ? r : metric(b, "braid_collector_cpus", "gauge", "CPUs sampled.");
		r = r < 0 ? r : dynbuf__printf(b, "braid_collector_cpus %u\n", c.sampler.cpus);
	}
	r = r < 0 ? r
		  : metric(b, "braid_merger_profiles_total", "counter",
			   "Profiles queued for the upstream, by view.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_merger_profiles_total{view=\"merged\"} %" PRId64 "\n"
				   "braid_merger_profiles_total{view=\"ebpf\"} %" PRId64 "\n"
				   "braid_merger_profiles_total{view=\"sdk\"} %" PRId64 "\n",
				   m.merged_profiles, m.ebpf_profiles, m.sdk_passed);
	r = r < 0 ? r
		  : metric(b, "braid_merger_samples_total", "counter",
			   "eBPF samples the merger emitted: in merged profiles (spliced: given "
			   "SDK frames) or eBPF-only.");
	r = r < 0 ? r
		  : dynbuf__printf(
			    b,
			    "braid_merger_samples_total{outcome=\"read\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"merged\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"spliced\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"ebpf_only\"} %" PRId64 "\n",
			    m.samples_in, m.samples_merged, m.samples_spliced, m.samples_ebpf);
	r = r < 0 ? r
		  : metric(b, "braid_merger_sdk_profiles_total", "counter",
			   "CPU SDK profiles the merger could not splice into, by reason.");
	r = r < 0 ? r
		  : dynbuf__printf(
			    b,
			    "braid_merger_sdk_profiles_total{outcome=\"late\"} %" PRId64 "\n"
			    "braid_merger_sdk_profiles_total{outcome=\"unusable\"} %" PRId64 "\n"
			    "braid_merger_sdk_profiles_total{outcome=\"unattributed\"} %" PRId64
			    "\n",
			    m.sdk_late, m.sdk_unusable, m.sdk_unattributed);
	r = r < 0 ? r : metric(b, "braid_merger_errors_total", "counter", "Failed merge passes.");
	r = r < 0 ? r : dynbuf__printf(b, "braid_merger_errors_total %" PRId64 "\n", merger_errors);
	if (a->cfg->upstream) {
		r = r < 0 ? r
			  : metric(b, "braid_forward_profiles_total", "counter",
				   "Outbox items by outcome: delivered (2xx), retried, dead "
				   "letters.");
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    "braid_forward_profiles_total{outcome=\"delivered\"} %" PRId64
				    "\n"
				    "braid_forward_profiles_total{outcome=\"retried\"} %" PRId64
				    "\n"
				    "braid_forward_profiles_total{outcome=\"dead_letter\"} %" PRId64
				    "\n",
				    f.delivered, f.retries, f.dead_letters);
		r = r < 0 ? r
			  : metric(b, "braid_forward_requests_total", "counter",
				   "Requests to the upstream, by reply.");
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    "braid_forward_requests_total{reply=\"2xx\"} %" PRId64 "\n"
				    "braid_forward_requests_total{reply=\"none\"} %" PRId64 "\n"
				    "braid_forward_requests_total{reply=\"429\"} %" PRId64 "\n"
				    "braid_forward_requests_total{reply=\"4xx\"} %" PRId64 "\n"
				    "braid_forward_requests_total{reply=\"5xx\"} %" PRId64 "\n",
				    f.requests - f.requests_failed, f.net_errors, f.status_429,
				    f.status_4xx, f.status_5xx);
		r = r < 0 ? r
			  : metric(b, "braid_forward_bytes_total", "counter",
				   "Profile bytes the upstream took.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_forward_bytes_total %" PRId64 "\n",
					   f.delivered_bytes);
		r = r < 0 ? r
			  : metric(b, "braid_forward_last_delivered_timestamp_seconds", "gauge",
				   "When the upstream last took profiles (0: never).");
		r = r < 0 ? r
			  : dynbuf__printf(b,
					   "braid_forward_last_delivered_timestamp_seconds %.3f\n",
					   (double)f.last_delivered_ns / 1e9);
		r = r < 0 ? r
			  : metric(b, "braid_forward_errors_total", "counter",
				   "Delivery passes the store failed.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_forward_errors_total %" PRId64 "\n",
					   fwd_errors);
	}
	if (have_store) {
		r = r < 0 ? r
			  : metric(b, "braid_store_rows", "gauge", "Rows in the store, by table.");
		for (int t = 0; t < STORE_TABLE_COUNT && r >= 0; t++)
			r = dynbuf__printf(b, "braid_store_rows{table=\"%s\"} %" PRId64 "\n",
					   store__table_name((enum store_table)t),
					   ss.tables[t].rows);
		r = r < 0 ? r
			  : metric(b, "braid_store_file_bytes", "gauge",
				   "The database file and its write-ahead log.");
		r = r < 0 ? r
			  : dynbuf__printf(b,
					   "braid_store_file_bytes{file=\"db\"} %" PRIu64 "\n"
					   "braid_store_file_bytes{file=\"wal\"} %" PRIu64 "\n",
					   ss.file_bytes, ss.wal_bytes);
		r = r < 0 ? r
			  : metric(b, "braid_store_memory_bytes", "gauge",
				   "SQLite's heap: every store connection's page cache and "
				   "statements.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_store_memory_bytes %" PRIu64 "\n",
					   ss.memory_bytes);
		r = r < 0 ? r
			  : metric(b, "braid_outbox_due", "gauge",
				   "Outbox items whose next attempt has come.");
		r = r < 0 ? r : dynbuf__printf(b, "braid_outbox_due %" PRId64 "\n", ss.outbox_due);
	}
	return r;
}
