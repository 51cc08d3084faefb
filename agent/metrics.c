/* SPDX-License-Identifier: Apache-2.0 */
/* /metrics: the one writer of braid's Prometheus text. Ingest hands it its
 * counters (ingest__counters) and the store's statistics read for the
 * scrape; the stages' counters and the store's sizes come from the agent's
 * threads (struct agent, under its lock). Each metric is written here and
 * nowhere else; docs/agent.md and docs/ingest.md list them. */
#include "agent/agent_int.h"

#include <inttypes.h>

static int metric(struct dynbuf *b, const char *name, const char *type, const char *help)
{
	return dynbuf__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: its header and its one value. */
static int metric_scalar(struct dynbuf *b, const char *name, const char *type, const char *help,
			 int64_t value)
{
	int r = metric(b, name, type, help);

	return r < 0 ? r : dynbuf__printf(b, "%s %" PRId64 "\n", name, value);
}

/* What the agent's threads counted, copied under the lock. */
struct snapshot {
	struct collector_stats c;
	bool have_col;
	struct merger_stats m;
	struct forward_stats f;
	struct store_stats ss;
	bool have_store;
	int64_t stored, sstored, refused, srefused, store_errors, merger_errors, fwd_errors;
};

static int ingest_metrics(struct dynbuf *b, const struct ingest_counters *c)
{
	uint64_t cum = 0;
	int r;

	r = metric(b, "braid_ingest_requests_total", "counter",
		   "HTTP requests by endpoint and status.");
	for (int e = 0; r >= 0 && e < INGEST_EP_COUNT; e++)
		for (size_t i = 0; r >= 0 && i < INGEST_N_STATUS; i++) {
			uint64_t v = c->requests[e][i];

			if (!v)
				continue;
			if (i < INGEST_N_STATUS - 1)
				r = dynbuf__printf(b,
						   "braid_ingest_requests_total{endpoint=\"%s\","
						   "status=\"%d\"} %" PRIu64 "\n",
						   ingest__endpoint_name((enum ingest_endpoint)e),
						   ingest__counted_status(i), v);
			else
				r = dynbuf__printf(b,
						   "braid_ingest_requests_total{endpoint=\"%s\","
						   "status=\"other\"} %" PRIu64 "\n",
						   ingest__endpoint_name((enum ingest_endpoint)e),
						   v);
		}
	if (r >= 0)
		r = metric(b, "braid_ingest_received_bytes_total", "counter",
			   "Request body bytes received, by endpoint.");
	for (int e = 0; r >= 0 && e <= INGEST_EP_PUSH; e++)
		r = dynbuf__printf(
			b, "braid_ingest_received_bytes_total{endpoint=\"%s\"} %" PRIu64 "\n",
			ingest__endpoint_name((enum ingest_endpoint)e), c->bytes_in[e]);
	if (r >= 0)
		r = metric(b, "braid_ingest_decode_errors_total", "counter",
			   "Requests refused for their content, by reason.");
	for (int d = 0; r >= 0 && d < INGEST_DR_COUNT; d++)
		r = dynbuf__printf(b,
				   "braid_ingest_decode_errors_total{reason=\"%s\"} %" PRIu64 "\n",
				   ingest__decode_reason_name((enum ingest_decode_reason)d),
				   c->decode_errors[d]);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_profiles_stored_total", "counter",
				  "Profiles committed to the store.", (int64_t)c->profiles_stored);
	if (r >= 0)
		r = metric(b, "braid_ingest_attributions_total", "counter",
			   "Stored profiles by how their process was found.");
	for (int a = 0; r >= 0 && a < STORE_ATTR_COUNT; a++)
		r = dynbuf__printf(
			b, "braid_ingest_attributions_total{method=\"%s\"} %" PRIu64 "\n",
			store__attribution_name((enum store_attribution)a), c->attribution[a]);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_pid_label_conflicts_total", "counter",
				  "pid labels ignored because the connection's peer is another "
				  "process.",
				  (int64_t)c->pid_label_conflicts);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_service_ambiguous_total", "counter",
				  "Service names that several processes declare (not attributed).",
				  (int64_t)c->service_ambiguous);
	if (r >= 0)
		r = metric(b, "braid_ingest_store_refusals_total", "counter",
			   "Requests the store refused: full (429), unavailable (503), "
			   "other.");
	if (r >= 0)
		r = dynbuf__printf(
			b,
			"braid_ingest_store_refusals_total{reason=\"full\"} %" PRIu64 "\n"
			"braid_ingest_store_refusals_total{reason=\"unavailable\"} %" PRIu64 "\n"
			"braid_ingest_store_refusals_total{reason=\"error\"} %" PRIu64 "\n",
			c->store_full, c->store_unavailable, c->store_errors);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_auth_failures_total", "counter",
				  "Requests refused for missing or wrong credentials.",
				  (int64_t)c->auth_failures);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_connections_total", "counter",
				  "Connections accepted.", (int64_t)c->connections_total);
	if (r >= 0)
		r = metric_scalar(b, "braid_ingest_connections_open", "gauge", "Connections open.",
				  c->connections_open);
	if (r >= 0)
		r = metric(b, "braid_ingest_request_duration_seconds", "histogram",
			   "Time from a request's headers to its reply, ingest endpoints.");
	for (size_t i = 0; r >= 0 && i <= INGEST_N_BUCKETS; i++) {
		cum += c->duration[i];
		if (i < INGEST_N_BUCKETS)
			r = dynbuf__printf(
				b,
				"braid_ingest_request_duration_seconds_bucket{le=\"%g\"} "
				"%" PRIu64 "\n",
				ingest__duration_bucket(i), cum);
		else
			r = dynbuf__printf(
				b,
				"braid_ingest_request_duration_seconds_bucket{le=\"+Inf\"} "
				"%" PRIu64 "\n"
				"braid_ingest_request_duration_seconds_sum %.6f\n"
				"braid_ingest_request_duration_seconds_count %" PRIu64 "\n",
				cum, (double)c->duration_sum_us / 1e6, c->duration_count);
	}
	return r;
}

/* How user stacks unwound (docs/unwind.md), and the eBPF side's own cost. */
static int unwind_metrics(struct dynbuf *b, const struct collector_sampler_stats *s)
{
	const struct collector_unwind_stats *u = &s->unwind;
	int r;

	r = metric(b, "braid_collector_user_stacks_total", "counter",
		   "User stacks by how they were walked: the rules of .eh_frame (cfi) or frame "
		   "pointers alone (fp).");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_user_stacks_total{unwind=\"cfi\"} %" PRIu64 "\n"
				   "braid_collector_user_stacks_total{unwind=\"fp\"} %" PRIu64 "\n",
				   s->unwind_stacks, s->ustack_fp);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_ends_total", "counter",
			   "Stacks unwound with the rules, by how they ended: root (the thread's "
			   "root), no_rule, fault, bad_cfa, depth.");
	for (int i = 0; i < COLLECTOR_UNWIND_END_COUNT && r >= 0; i++)
		r = dynbuf__printf(
			b, "braid_collector_unwind_ends_total{reason=\"%s\"} %" PRIu64 "\n",
			collector_unwind__end_name((enum collector_unwind_end)i), s->unwind_end[i]);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_frames_total", "counter",
			   "Frames of unwound stacks stepped without a rule: by frame pointers, or "
			   "through a signal frame.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_unwind_frames_total{step=\"fp\"} %" PRIu64 "\n"
				   "braid_collector_unwind_frames_total{step=\"signal\"} %" PRIu64
				   "\n",
				   s->unwind_fp_steps, s->unwind_signal);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_files", "gauge",
			   "Executable files whose unwind rules are in the kernel.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_collector_unwind_files %" PRIu64 "\n",
				   u->files_loaded);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_files_total", "counter",
			   "Files without rules, by reason (unopened: its process went first; "
			   "tried "
			   "again), and files unloaded to make room.");
	r = r < 0 ? r
		  : dynbuf__printf(
			    b,
			    "braid_collector_unwind_files_total{outcome=\"unreadable\"} %" PRIu64
			    "\n"
			    "braid_collector_unwind_files_total{outcome=\"unopened\"} %" PRIu64 "\n"
			    "braid_collector_unwind_files_total{outcome=\"no_room\"} %" PRIu64 "\n"
			    "braid_collector_unwind_files_total{outcome=\"unloaded\"} %" PRIu64
			    "\n",
			    u->files_unreadable, u->files_unopened, u->files_no_room,
			    u->files_evicted);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_rows", "gauge",
			   "Unwind rules in the kernel (8 bytes each).");
	r = r < 0 ? r : dynbuf__printf(b, "braid_collector_unwind_rows %" PRIu64 "\n", u->rows);
	r = r < 0 ? r
		  : metric(b, "braid_collector_unwind_bytes", "gauge",
			   "Memory of the unwind rules: the kernel's maps, and user space.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_unwind_bytes{where=\"kernel\"} %" PRIu64 "\n"
				   "braid_collector_unwind_bytes{where=\"user\"} %" PRIu64 "\n",
				   u->map_bytes, u->user_bytes);
	r = r < 0 ? r
		  : metric(b, "braid_collector_bpf_map_bytes", "gauge",
			   "Kernel memory of all the sampler's eBPF maps.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_collector_bpf_map_bytes %" PRIu64 "\n", s->map_bytes);
	r = r < 0 ? r
		  : metric(b, "braid_collector_bpf_run_seconds_total", "counter",
			   "Run time of the sampling program, charged to the sampled tasks; "
			   "counted "
			   "only while kernel.bpf_stats_enabled is 1.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_collector_bpf_run_seconds_total %.9f\n",
				   (double)s->prog_run_ns / 1e9);
	return r;
}

static int collector_metrics(struct dynbuf *b, const struct snapshot *x)
{
	const struct collector_stats *c = &x->c;
	int r;

	r = metric(b, "braid_collector_samples_total", "counter",
		   "eBPF samples by what became of them.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_samples_total{state=\"counted\"} %" PRIu64 "\n"
				   "braid_collector_samples_total{state=\"drained\"} %" PRIu64 "\n"
				   "braid_collector_samples_total{state=\"stored\"} %" PRId64 "\n",
				   c->sampler.samples, c->sampler.drained, x->sstored);
	r = r < 0 ? r
		  : metric(b, "braid_collector_samples_dropped_total", "counter",
			   "eBPF samples lost, by reason.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_samples_dropped_total{reason=\"map_full\"} "
				   "%" PRIu64 "\n"
				   "braid_collector_samples_dropped_total{reason=\"drain\"} "
				   "%" PRIu64 "\n"
				   "braid_collector_samples_dropped_total{reason=\"store\"} "
				   "%" PRId64 "\n",
				   c->sampler.lost_full, c->sampler.lost_drain, x->srefused);
	r = r < 0 ? r
		  : metric(b, "braid_collector_stacks_lost_total", "counter",
			   "Samples whose stack the kernel could not store.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_collector_stacks_lost_total %" PRIu64 "\n",
				   c->samples_stack_lost);
	r = r < 0 ? r
		  : metric(b, "braid_collector_rows_total", "counter",
			   "Symbolized (process, thread, stack) rows, stored or refused.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_collector_rows_total{state=\"stored\"} %" PRId64
				   "\nbraid_collector_rows_total{state=\"refused\"} %" PRId64 "\n",
				   x->stored, x->refused);
	r = r < 0 ? r
		  : metric(b, "braid_collector_store_errors_total", "counter",
			   "Drains the store failed to take.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_collector_store_errors_total %" PRId64 "\n",
				   x->store_errors);
	r = r < 0 ? r
		  : metric(b, "braid_collector_processes", "gauge",
			   "Processes whose metadata is cached.");
	r = r < 0 ? r : dynbuf__printf(b, "braid_collector_processes %zu\n", c->processes);
	r = r < 0 ? r : metric(b, "braid_collector_cpus", "gauge", "CPUs sampled.");
	r = r < 0 ? r : dynbuf__printf(b, "braid_collector_cpus %u\n", c->sampler.cpus);
	r = r < 0 ? r : unwind_metrics(b, &c->sampler);
	return r;
}

static int merger_metrics(struct dynbuf *b, const struct snapshot *x)
{
	const struct merger_stats *m = &x->m;
	int r;

	r = metric(b, "braid_merger_profiles_total", "counter",
		   "Profiles queued for the upstream, by view.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_merger_profiles_total{view=\"merged\"} %" PRId64 "\n"
				   "braid_merger_profiles_total{view=\"ebpf\"} %" PRId64 "\n"
				   "braid_merger_profiles_total{view=\"sdk\"} %" PRId64 "\n",
				   m->merged_profiles, m->ebpf_profiles, m->sdk_passed);
	r = r < 0 ? r
		  : metric(b, "braid_merger_samples_total", "counter",
			   "eBPF samples the merger emitted: in merged profiles (spliced: given "
			   "SDK frames; by_thread: by their own thread's SDK stacks; "
			   "native_call: by the SDK stacks that call their native function; "
			   "remembered: by such stacks of the process's earlier profiles) or "
			   "eBPF-only.");
	r = r < 0 ? r
		  : dynbuf__printf(
			    b,
			    "braid_merger_samples_total{outcome=\"read\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"merged\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"spliced\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"by_thread\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"native_call\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"remembered\"} %" PRId64 "\n"
			    "braid_merger_samples_total{outcome=\"ebpf_only\"} %" PRId64 "\n",
			    m->samples_in, m->samples_merged, m->samples_spliced,
			    m->samples_by_thread, m->samples_native_calls, m->samples_remembered,
			    m->samples_ebpf);
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
			    m->sdk_late, m->sdk_unusable, m->sdk_unattributed);
	r = r < 0 ? r
		  : metric(b, "braid_merger_sdk_cpu_renamed_total", "counter",
			   "SDK process_cpu profiles passed on under --sdk-cpu-name, their "
			   "process's CPU being in the merged and eBPF-only views.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_merger_sdk_cpu_renamed_total %" PRId64 "\n",
				   m->sdk_cpu_renamed);
	r = r < 0 ? r : metric(b, "braid_merger_errors_total", "counter", "Failed merge passes.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_merger_errors_total %" PRId64 "\n", x->merger_errors);
	return r;
}

static int forward_metrics(struct dynbuf *b, const struct snapshot *x)
{
	const struct forward_stats *f = &x->f;
	int r;

	r = metric(b, "braid_forward_profiles_total", "counter",
		   "Outbox items by outcome: delivered (2xx), retried, dead "
		   "letters.");
	r = r < 0 ? r
		  : dynbuf__printf(
			    b,
			    "braid_forward_profiles_total{outcome=\"delivered\"} %" PRId64 "\n"
			    "braid_forward_profiles_total{outcome=\"retried\"} %" PRId64 "\n"
			    "braid_forward_profiles_total{outcome=\"dead_letter\"} %" PRId64 "\n",
			    f->delivered, f->retries, f->dead_letters);
	r = r < 0 ? r
		  : metric(b, "braid_forward_requests_total", "counter",
			   "Requests to the upstream, by reply.");
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "braid_forward_requests_total{reply=\"2xx\"} %" PRId64 "\n"
				   "braid_forward_requests_total{reply=\"none\"} %" PRId64 "\n"
				   "braid_forward_requests_total{reply=\"429\"} %" PRId64 "\n"
				   "braid_forward_requests_total{reply=\"4xx\"} %" PRId64 "\n"
				   "braid_forward_requests_total{reply=\"5xx\"} %" PRId64 "\n",
				   f->requests - f->requests_failed, f->net_errors, f->status_429,
				   f->status_4xx, f->status_5xx);
	r = r < 0 ? r
		  : metric(b, "braid_forward_bytes_total", "counter",
			   "Profile bytes the upstream took.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_forward_bytes_total %" PRId64 "\n",
				   f->delivered_bytes);
	r = r < 0 ? r
		  : metric(b, "braid_forward_last_delivered_timestamp_seconds", "gauge",
			   "When the upstream last took profiles (0: never).");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_forward_last_delivered_timestamp_seconds %.3f\n",
				   (double)f->last_delivered_ns / 1e9);
	r = r < 0 ? r
		  : metric(b, "braid_forward_errors_total", "counter",
			   "Delivery passes the store failed.");
	r = r < 0 ? r
		  : dynbuf__printf(b, "braid_forward_errors_total %" PRId64 "\n", x->fwd_errors);
	return r;
}

/* st: read for this scrape (NULL: the store did not answer); x->ss: the
 * sizes the main loop reads every few seconds (the row counts are too slow
 * to read at every scrape). */
static int store_metrics(struct dynbuf *b, const struct store_stats *st, const struct snapshot *x)
{
	const struct store_stats *ss = &x->ss;
	int r = 0;

	if (st) {
		r = metric_scalar(b, "braid_store_used_bytes", "gauge",
				  "Bytes of data in the store.", (int64_t)st->used_bytes);
		if (r >= 0)
			r = metric_scalar(b, "braid_store_max_bytes", "gauge", "The store's bound.",
					  (int64_t)st->max_bytes);
		if (r >= 0)
			r = metric(b, "braid_store_events_total", "counter",
				   "Rows the store dropped, refused or expired.");
		for (int i = 0; r >= 0 && i < STORE_CTR_COUNT; i++)
			r = dynbuf__printf(
				b, "braid_store_events_total{event=\"%s\"} %" PRId64 "\n",
				store__counter_name((enum store_counter)i), st->counters[i]);
	}
	if (x->have_store) {
		r = r < 0 ? r
			  : metric(b, "braid_store_rows", "gauge", "Rows in the store, by table.");
		for (int t = 0; t < STORE_TABLE_COUNT && r >= 0; t++)
			r = dynbuf__printf(b, "braid_store_rows{table=\"%s\"} %" PRId64 "\n",
					   store__table_name((enum store_table)t),
					   ss->tables[t].rows);
		r = r < 0 ? r
			  : metric(b, "braid_store_file_bytes", "gauge",
				   "The database file and its write-ahead log.");
		r = r < 0 ? r
			  : dynbuf__printf(b,
					   "braid_store_file_bytes{file=\"db\"} %" PRIu64 "\n"
					   "braid_store_file_bytes{file=\"wal\"} %" PRIu64 "\n",
					   ss->file_bytes, ss->wal_bytes);
		r = r < 0 ? r
			  : metric(b, "braid_store_memory_bytes", "gauge",
				   "SQLite's heap: every store connection's page cache and "
				   "statements.");
		r = r < 0 ? r
			  : dynbuf__printf(b, "braid_store_memory_bytes %" PRIu64 "\n",
					   ss->memory_bytes);
		r = r < 0 ? r
			  : metric(b, "braid_outbox_due", "gauge",
				   "Outbox items whose next attempt has come.");
		r = r < 0 ? r : dynbuf__printf(b, "braid_outbox_due %" PRId64 "\n", ss->outbox_due);
	}
	return r;
}

int agent__metrics(void *ctx, struct ingest *in, const struct store_stats *st, struct dynbuf *b)
{
	struct agent *a = ctx;
	struct ingest_counters ic;
	struct snapshot x;
	int r;

	ingest__counters(in, &ic);
	pthread_mutex_lock(&a->lock);
	x = (struct snapshot){.c = a->col_st,
			      .have_col = a->have_col,
			      .m = a->merger_st,
			      .f = a->fwd_st,
			      .ss = a->store_st,
			      .have_store = a->have_store,
			      .stored = a->rows_stored,
			      .sstored = a->samples_stored,
			      .refused = a->rows_refused,
			      .srefused = a->samples_refused,
			      .store_errors = a->store_errors,
			      .merger_errors = a->merger_errors,
			      .fwd_errors = a->forward_errors};
	pthread_mutex_unlock(&a->lock);

	r = ingest_metrics(b, &ic);
	if (r >= 0 && x.have_col)
		r = collector_metrics(b, &x);
	if (r >= 0 && a->cfg->with_merger)
		r = merger_metrics(b, &x);
	if (r >= 0 && a->cfg->upstream)
		r = forward_metrics(b, &x);
	if (r >= 0)
		r = store_metrics(b, st, &x);
	return r;
}
