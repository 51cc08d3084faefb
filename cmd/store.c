/* SPDX-License-Identifier: Apache-2.0 */
/* braid store: look inside the SQLite buffer (stats, ls, export), check
 * it, clean it up. Opens the store read-only except for `gc`. */
#include "cmd.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct config {
	const char *data_dir;
	const char *service;
	const char *output; /* export: "-" = standard output */
	bool json;
	long limit;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: braid store stats [--json] [--data-dir DIR]\n"
		   "       braid store ls [--service S] [--limit N] [--json] [--data-dir DIR]\n"
		   "       braid store export ID [-o FILE] [--data-dir DIR]\n"
		   "       braid store check [--data-dir DIR]\n"
		   "       braid store gc [--data-dir DIR]\n"
		   "\n"
		   "Looks inside braid's buffer, the SQLite database DIR/" STORE_DB_NAME ".\n"
		   "\n"
		   "  stats   rows and bytes per table, oldest and newest time, size against\n"
		   "          the bound, and the counters of everything dropped or refused\n"
		   "  ls      SDK profiles (id, service, labels, tenant, time range, sample types\n"
		   "          and totals, the attributed PID and how, CPU or not, merged,\n"
		   "          queued, forwarded), then the outbox and the dead letters with\n"
		   "          their state\n"
		   "  export  SDK profile ID's body exactly as it was received\n"
		   "  check   a full integrity check (PRAGMA integrity_check)\n"
		   "  gc      one cleanup pass: what aged past the retention, unused stacks,\n"
		   "          frames and processes (the agent runs it on its own)\n"
		   "\n"
		   "Options:\n"
		   "      --data-dir DIR   the data directory (default " STORE_DEFAULT_DATA_DIR
		   " as root,\n"
		   "                       else " STORE_USER_DATA_DIR ")\n"
		   "      --json           print JSON instead of tables\n"
		   "      --service S      ls: only SDK profiles (and outbox items) of service S\n"
		   "      --limit N        ls: at most N rows of each list, oldest first (default\n"
		   "                       1000; 0 = all)\n"
		   "  -o, --output FILE    export: write to FILE (default -, standard output,\n"
		   "                       which must not be a terminal for a binary body)\n"
		   "  -h, --help           show this help\n");
}

/* ---- formatting ---------------------------------------------------------------- */

/* RFC 3339 UTC with milliseconds; "-" for 0. */
static const char *fmt_time(int64_t ns, char *buf, size_t size)
{
	time_t secs;
	struct tm tm;
	size_t n;

	if (!ns) {
		snprintf(buf, size, "-");
		return buf;
	}
	secs = (time_t)(ns / 1000000000);
	if (ns < 0 && ns % 1000000000)
		secs--;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, size, "%" PRId64, ns);
		return buf;
	}
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ",
		 (int)(((ns % 1000000000) + 1000000000) % 1000000000 / 1000000));
	return buf;
}

static const char *fmt_bytes(double v, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static const char *fmt_duration(int64_t ns, char *buf, size_t size)
{
	int64_t s = ns / 1000000000;

	if (s % 3600 == 0)
		snprintf(buf, size, "%" PRId64 "h", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, size, "%" PRId64 "m", s / 60);
	else
		snprintf(buf, size, "%" PRId64 "s", s);
	return buf;
}

static int json_time(struct dynbuf *b, int64_t ns)
{
	char t[48];

	if (!ns)
		return dynbuf__printf(b, "null");
	return dynbuf__printf(b, "\"%s\"", fmt_time(ns, t, sizeof(t)));
}

static int json_labels(struct dynbuf *b, const struct label *l, size_t n)
{
	int r = dynbuf__putc(b, '{');

	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (i)
			r = dynbuf__putc(b, ',');
		if (r >= 0)
			r = dynbuf__json_str(b, l[i].name);
		if (r >= 0)
			r = dynbuf__putc(b, ':');
		if (r >= 0)
			r = dynbuf__json_str(b, l[i].value);
	}
	return r >= 0 ? dynbuf__putc(b, '}') : r;
}

/* "k=v,k2=v2" for tables. */
static int text_labels(struct dynbuf *b, const struct label *l, size_t n)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = dynbuf__printf(b, "%s%s=%s", i ? "," : "", l[i].name, l[i].value);
	if (!n)
		r = dynbuf__putc(b, '-');
	return r;
}

static int flush(struct dynbuf *b)
{
	if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len) {
		cmd_error("cannot write to standard output");
		return -EIO;
	}
	dynbuf__reset(b);
	return 0;
}

/* ---- stats ------------------------------------------------------------------------- */

static int print_stats(struct store *s, const struct config *cfg)
{
	struct store_stats st;
	struct dynbuf b;
	char t1[48], t2[48], n1[32], n2[32], n3[32];
	int r;

	r = store__stats(s, true, &st);
	if (r < 0) {
		cmd_error("%s", store__errmsg(s));
		return r;
	}
	dynbuf__init(&b, 0);
	if (cfg->json) {
		r = dynbuf__printf(&b, "{\"path\":");
		r = r < 0 ? r : dynbuf__json_str(&b, store__path(s));
		r = r < 0 ? r
			  : dynbuf__printf(&b,
					   ",\"schema_version\":%d,\"max_bytes\":%" PRIu64
					   ",\"retention_seconds\":%" PRId64
					   ",\"used_bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
					   ",\"wal_bytes\":%" PRIu64 ",\"tables\":{",
					   st.schema_version, st.max_bytes,
					   st.retention_ns / 1000000000, st.used_bytes,
					   st.file_bytes, st.wal_bytes);
		for (int t = 0; r >= 0 && t < STORE_TABLE_COUNT; t++) {
			r = dynbuf__printf(&b,
					   "%s\"%s\":{\"rows\":%" PRId64 ",\"bytes\":%" PRId64
					   ",\"oldest\":",
					   t ? "," : "", store__table_name(t), st.tables[t].rows,
					   st.tables[t].bytes);
			r = r < 0 ? r : json_time(&b, st.tables[t].oldest_ns);
			r = r < 0 ? r : dynbuf__printf(&b, ",\"newest\":");
			r = r < 0 ? r : json_time(&b, st.tables[t].newest_ns);
			r = r < 0 ? r : dynbuf__putc(&b, '}');
		}
		r = r < 0 ? r
			  : dynbuf__printf(&b,
					   "},\"ebpf_samples\":%" PRId64
					   ",\"sdk_profiles_unmerged\":%" PRId64
					   ",\"sdk_profiles_unqueued\":%" PRId64
					   ",\"sdk_profiles_unforwarded\":%" PRId64
					   ",\"outbox_due\":%" PRId64 ",\"counters\":{",
					   st.ebpf_samples, st.sdk_unmerged, st.sdk_unqueued,
					   st.sdk_unforwarded, st.outbox_due);
		for (int c = 0; r >= 0 && c < STORE_CTR_COUNT; c++)
			r = dynbuf__printf(&b, "%s\"%s\":%" PRId64, c ? "," : "",
					   store__counter_name(c), st.counters[c]);
		r = r < 0 ? r : dynbuf__printf(&b, "}}\n");
	} else {
		r = dynbuf__printf(
			&b,
			"store       %s (schema %d)\n"
			"size        %s used of %s (%.1f%%); file %s, WAL %s\n"
			"retention   %s\n\n"
			"%-14s %10s %12s  %-24s  %-24s\n",
			store__path(s), st.schema_version,
			fmt_bytes((double)st.used_bytes, n1, sizeof(n1)),
			fmt_bytes((double)st.max_bytes, n2, sizeof(n2)),
			st.max_bytes ? 100.0 * (double)st.used_bytes / (double)st.max_bytes : 0,
			fmt_bytes((double)st.file_bytes, t1, sizeof(t1)),
			fmt_bytes((double)st.wal_bytes, t2, sizeof(t2)),
			fmt_duration(st.retention_ns, n3, sizeof(n3)), "TABLE", "ROWS", "BYTES",
			"OLDEST", "NEWEST");
		for (int t = 0; r >= 0 && t < STORE_TABLE_COUNT; t++)
			r = dynbuf__printf(&b, "%-14s %10" PRId64 " %12s  %-24s  %-24s\n",
					   store__table_name(t), st.tables[t].rows,
					   fmt_bytes((double)st.tables[t].bytes, n1, sizeof(n1)),
					   fmt_time(st.tables[t].oldest_ns, t1, sizeof(t1)),
					   fmt_time(st.tables[t].newest_ns, t2, sizeof(t2)));
		r = r < 0 ? r
			  : dynbuf__printf(&b,
					   "\neBPF samples             %" PRId64
					   "\nSDK profiles unmerged    %" PRId64
					   "\nSDK profiles unqueued    %" PRId64
					   "\nSDK profiles unforwarded %" PRId64
					   "\noutbox items due         %" PRId64
					   "\n\nCOUNTER%27s\n",
					   st.ebpf_samples, st.sdk_unmerged, st.sdk_unqueued,
					   st.sdk_unforwarded, st.outbox_due, "VALUE");
		for (int c = 0; r >= 0 && c < STORE_CTR_COUNT; c++)
			r = dynbuf__printf(&b, "%-33s %" PRId64 "\n", store__counter_name(c),
					   st.counters[c]);
	}
	if (r < 0)
		cmd_error("out of memory");
	else
		r = flush(&b);
	dynbuf__free(&b);
	return r;
}

/* ---- ls ------------------------------------------------------------------------------ */

struct ls_ctx {
	struct store *s;
	const struct config *cfg;
	struct dynbuf *b;
	size_t n;
	int err;
};

/* Ends a listed row (r: how writing it went): counts it, writes out what
 * has piled up, and keeps an error for print_ls, stopping the walk. */
static int ls_row_done(struct ls_ctx *c, int r)
{
	c->n++;
	if (r >= 0 && c->b->len > (1 << 16))
		r = flush(c->b);
	return r < 0 ? (c->err = r) : 0;
}

static bool has_service(const struct label *l, size_t n, const char *service)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "service_name") == 0 && strcmp(l[i].value, service) == 0)
			return true;
	return false;
}

static int ls_sdk(void *ctx, const struct store_sdk_profile *p)
{
	struct ls_ctx *c = ctx;
	struct dynbuf *b = c->b;
	struct store_process proc = {0};
	char t1[48], t2[48];
	int r = 0;

	if (p->process_id > 0 && store__get_process(c->s, p->process_id, &proc) < 0)
		proc.pid = 0; /* the process row aged out before the profile */
	if (c->cfg->json) {
		r = dynbuf__printf(b, "%s{\"id\":%" PRId64 ",\"service\":", c->n ? "," : "", p->id);
		r = r < 0 ? r : dynbuf__json_str(b, p->service);
		r = r < 0 ? r : dynbuf__printf(b, ",\"profile_name\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->profile_name);
		r = r < 0 ? r : dynbuf__printf(b, ",\"labels\":");
		r = r < 0 ? r : json_labels(b, p->labels, p->n_labels);
		r = r < 0 ? r : dynbuf__printf(b, ",\"tenant\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->tenant);
		r = r < 0 ? r : dynbuf__printf(b, ",\"received\":");
		r = r < 0 ? r : json_time(b, p->received_ns);
		r = r < 0 ? r
			  : dynbuf__printf(b,
					   ",\"from_ns\":%" PRId64 ",\"until_ns\":%" PRId64
					   ",\"from\":",
					   p->from_ns, p->until_ns);
		r = r < 0 ? r : json_time(b, p->from_ns);
		r = r < 0 ? r : dynbuf__printf(b, ",\"until\":");
		r = r < 0 ? r : json_time(b, p->until_ns);
		r = r < 0 ? r : dynbuf__printf(b, ",\"sample_types\":[");
		for (size_t i = 0; r >= 0 && i < p->n_types; i++) {
			r = dynbuf__printf(b, "%s{\"type\":", i ? "," : "");
			r = r < 0 ? r : dynbuf__json_str(b, p->types[i].type);
			r = r < 0 ? r : dynbuf__printf(b, ",\"unit\":");
			r = r < 0 ? r : dynbuf__json_str(b, p->types[i].unit);
			r = r < 0 ? r
				  : dynbuf__printf(b, ",\"total\":%" PRId64 "}", p->types[i].total);
		}
		r = r < 0 ? r : dynbuf__printf(b, "],\"spy_name\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->spy_name);
		r = r < 0 ? r : dynbuf__printf(b, ",\"format\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->format);
		r = r < 0 ? r : dynbuf__printf(b, ",\"units\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->units);
		r = r < 0 ? r : dynbuf__printf(b, ",\"aggregation\":");
		r = r < 0 ? r : dynbuf__json_str(b, p->aggregation);
		r = r < 0 ? r
			  : dynbuf__printf(b,
					   ",\"sample_rate\":%" PRId64
					   ",\"payload_bytes\":%zu,\"pid\":",
					   p->sample_rate, p->payload_len);
		r = r < 0      ? r
		    : proc.pid ? dynbuf__printf(b, "%d", proc.pid)
			       : dynbuf__printf(b, "null");
		r = r < 0 ? r : dynbuf__printf(b, ",\"attribution\":");
		r = r < 0 ? r : dynbuf__json_str(b, store__attribution_name(p->attribution));
		r = r < 0 ? r
			  : dynbuf__printf(
				    b,
				    ",\"cpu_time\":%s,\"merged\":%s,\"queued\":%s,"
				    "\"forwarded\":%s}",
				    p->cpu_time ? "true" : "false", p->merged ? "true" : "false",
				    p->queued ? "true" : "false", p->forwarded ? "true" : "false");
	} else {
		r = dynbuf__printf(b, "%-8" PRId64 " %-20s %-10s %-24s %-24s ", p->id, p->service,
				   p->profile_name ? p->profile_name : "-",
				   fmt_time(p->from_ns, t1, sizeof(t1)),
				   fmt_time(p->until_ns, t2, sizeof(t2)));
		r = r < 0      ? r
		    : proc.pid ? dynbuf__printf(b, "%-8d", proc.pid)
			       : dynbuf__printf(b, "%-8s", "-");
		r = r < 0 ? r
			  : dynbuf__printf(b, " %-11s %-4s %-6s %-6s %-7s ",
					   store__attribution_name(p->attribution),
					   p->cpu_time ? "yes" : "no", p->merged ? "yes" : "no",
					   p->queued ? "yes" : "no", p->forwarded ? "yes" : "no");
		for (size_t i = 0; r >= 0 && i < p->n_types; i++)
			r = dynbuf__printf(b, "%s%s/%s=%" PRId64, i ? "," : "", p->types[i].type,
					   p->types[i].unit, p->types[i].total);
		r = r < 0 ? r : dynbuf__putc(b, ' ');
		r = r < 0 ? r : text_labels(b, p->labels, p->n_labels);
		r = r < 0 ? r : dynbuf__printf(b, " %s\n", p->tenant ? p->tenant : "-");
	}
	return ls_row_done(c, r);
}

static int ls_item(struct ls_ctx *c, const struct store_outbox_item *it,
		   const struct store_dead_letter *d)
{
	struct dynbuf *b = c->b;
	char t1[48], t2[48];
	int r = 0;

	if (c->cfg->service && !has_service(it->labels, it->n_labels, c->cfg->service))
		return 0;
	if (c->cfg->json) {
		r = dynbuf__printf(b, "%s{\"id\":%" PRId64 ",\"kind\":", c->n ? "," : "",
				   d ? d->id : it->id);
		r = r < 0 ? r : dynbuf__json_str(b, it->kind);
		r = r < 0 ? r : dynbuf__printf(b, ",\"series\":");
		r = r < 0 ? r : dynbuf__json_str(b, it->series);
		r = r < 0 ? r : dynbuf__printf(b, ",\"raw_id\":");
		r = r < 0 ? r : dynbuf__json_str(b, it->raw_id);
		r = r < 0 ? r : dynbuf__printf(b, ",\"labels\":");
		r = r < 0 ? r : json_labels(b, it->labels, it->n_labels);
		r = r < 0 ? r : dynbuf__printf(b, ",\"tenant\":");
		r = r < 0 ? r : dynbuf__json_str(b, it->tenant);
		r = r < 0 ? r : dynbuf__printf(b, ",\"from\":");
		r = r < 0 ? r : json_time(b, it->from_ns);
		r = r < 0 ? r : dynbuf__printf(b, ",\"until\":");
		r = r < 0 ? r : json_time(b, it->until_ns);
		r = r < 0 ? r : dynbuf__printf(b, ",\"created\":");
		r = r < 0 ? r : json_time(b, it->created_ns);
		r = r < 0 ? r
			  : dynbuf__printf(b, ",\"payload_bytes\":%zu,\"sdk_profile_id\":",
					   it->payload_len);
		r = r < 0		     ? r
		    : it->sdk_profile_id > 0 ? dynbuf__printf(b, "%" PRId64, it->sdk_profile_id)
					     : dynbuf__printf(b, "null");
		r = r < 0 ? r : dynbuf__printf(b, ",\"attempts\":%" PRId64, it->attempts);
		if (!d) {
			r = r < 0 ? r : dynbuf__printf(b, ",\"next_attempt\":");
			r = r < 0 ? r : json_time(b, it->next_attempt_ns);
		}
		r = r < 0 ? r : dynbuf__printf(b, ",\"last_error\":");
		r = r < 0 ? r : dynbuf__json_str(b, it->last_error);
		if (d) {
			r = r < 0 ? r : dynbuf__printf(b, ",\"died\":");
			r = r < 0 ? r : json_time(b, d->died_ns);
			r = r < 0 ? r : dynbuf__printf(b, ",\"status\":%d,\"reason\":", d->status);
			r = r < 0 ? r : dynbuf__json_str(b, d->reason);
		}
		r = r < 0 ? r : dynbuf__putc(b, '}');
	} else {
		r = dynbuf__printf(b, "%-8" PRId64 " %-7s %-24s %-24s %8" PRId64 " ",
				   d ? d->id : it->id, it->kind,
				   fmt_time(it->from_ns, t1, sizeof(t1)),
				   fmt_time(d ? d->died_ns : it->next_attempt_ns, t2, sizeof(t2)),
				   it->attempts);
		if (d)
			r = r < 0 ? r : dynbuf__printf(b, "%-6d %s", d->status, d->reason);
		else
			r = r < 0 ? r
				  : dynbuf__printf(b, "%s", it->last_error ? it->last_error : "-");
		r = r < 0 ? r : dynbuf__printf(b, "  [%s]\n", it->series);
	}
	return ls_row_done(c, r);
}

static int ls_outbox(void *ctx, const struct store_outbox_item *it)
{
	return ls_item(ctx, it, NULL);
}

static int ls_dead(void *ctx, const struct store_dead_letter *d)
{
	return ls_item(ctx, d->item, d);
}

static int print_ls(struct store *s, const struct config *cfg)
{
	struct store_sdk_query q = {.service = cfg->service, .limit = (size_t)cfg->limit};
	struct dynbuf b;
	struct ls_ctx c = {.s = s, .cfg = cfg, .b = &b};
	int r;

	dynbuf__init(&b, 0);
	r = dynbuf__printf(&b,
			   cfg->json ? "{\"sdk_profiles\":["
				     : "SDK PROFILES\n%-8s %-20s %-10s %-24s %-24s %-8s %-11s "
				       "%-4s %-6s %-6s %-7s %s\n",
			   "ID", "SERVICE", "NAME", "FROM", "UNTIL", "PID", "ATTRIBUTION", "CPU",
			   "MERGED", "QUEUED", "FORWARD", "SAMPLE TYPES (TOTALS) LABELS TENANT");
	if (r >= 0)
		r = store__sdk_profiles(s, &q, ls_sdk, &c);
	if (r >= 0) {
		c.n = 0;
		r = dynbuf__printf(
			&b,
			cfg->json ? "],\"outbox\":[" : "\nOUTBOX\n%-8s %-7s %-24s %-24s %8s %s\n",
			"ID", "KIND", "FROM", "NEXT ATTEMPT", "ATTEMPTS", "LAST ERROR [SERIES]");
	}
	if (r >= 0)
		r = store__outbox_list(s, (size_t)cfg->limit, ls_outbox, &c);
	if (r >= 0) {
		c.n = 0;
		r = dynbuf__printf(&b,
				   cfg->json ? "],\"dead_letters\":["
					     : "\nDEAD LETTERS\n%-8s %-7s %-24s %-24s %8s %s\n",
				   "ID", "KIND", "FROM", "DIED", "ATTEMPTS",
				   "STATUS REASON [SERIES]");
	}
	if (r >= 0)
		r = store__dead_letters(s, (size_t)cfg->limit, ls_dead, &c);
	if (r >= 0 && cfg->json)
		r = dynbuf__printf(&b, "]}\n");
	if (r < 0)
		cmd_error("%s",
			  c.err == -ENOMEM || r == -ENOMEM ? "out of memory" : store__errmsg(s));
	else
		r = flush(&b);
	dynbuf__free(&b);
	return r;
}

/* ---- export -------------------------------------------------------------------------- */

struct export_ctx {
	const char *output;
	int status; /* the exit status when the callback stops the read */
};

/* A body a terminal can show: folded or lines text, as received. */
static bool is_text(const struct store_sdk_profile *p)
{
	return (strcmp(p->format, "folded") == 0 || strcmp(p->format, "lines") == 0) &&
	       !util__is_gzip(p->payload, p->payload_len) &&
	       !memchr(p->payload, '\0', p->payload_len);
}

static int export_payload(void *ctx, const struct store_sdk_profile *p)
{
	struct export_ctx *c = ctx;
	struct errbuf err = {{0}};

	if (strcmp(c->output, "-") == 0 && isatty(STDOUT_FILENO) && !is_text(p)) {
		cmd_error("store export: refusing to write a binary %s body to a terminal; use -o "
			  "FILE",
			  p->format);
		c->status = EXIT_USAGE;
		return -EINVAL;
	}
	if (util__write_file(c->output, p->payload, p->payload_len, &err) < 0) {
		cmd_error("store export: %s", err.msg);
		c->status = 1;
		return -EIO;
	}
	return 0;
}

/* Writes SDK profile id's payload as received; returns the exit status. */
static int run_export(struct store *s, const struct config *cfg, int64_t id)
{
	struct export_ctx c = {.output = cfg->output ? cfg->output : "-"};
	int r = store__get_sdk_profile(s, id, export_payload, &c);

	if (r == -ENOENT) {
		cmd_error("store export: no SDK profile %" PRId64, id);
		return 1;
	}
	if (r < 0 && !c.status)
		cmd_error("store export: %s", store__errmsg(s));
	return r < 0 ? (c.status ? c.status : 1) : 0;
}

/* ---- gc and check -------------------------------------------------------------------- */

static int run_gc(struct store *s, const struct config *cfg)
{
	struct store_maintenance m;
	int r = store__maintain(s, store__now_ns(), &m);

	if (r < 0) {
		cmd_error("%s", store__errmsg(s));
		return r;
	}
	printf("removed: %" PRId64 " SDK profiles, %" PRId64 " eBPF bucket rows, %" PRId64
	       " outbox items, %" PRId64 " dead letters (retention); %" PRId64
	       " processes, %" PRId64 " stacks, %" PRId64 " frames (unused)\n",
	       m.sdk_expired, m.ebpf_rows_expired, m.outbox_expired, m.dead_expired,
	       m.processes_removed, m.stacks_removed, m.frames_removed);
	return 0;
}

int cmd_store(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"service", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'l'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct config cfg = {.limit = 1000};
	struct store_options so = {0};
	struct store *s = NULL;
	struct errbuf err = {{0}};
	const char *sub, *arg = NULL;
	int64_t export_id = 0;
	char *end;
	int c, r;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	sub = argv[1];
	if (strcmp(sub, "stats") && strcmp(sub, "ls") && strcmp(sub, "export") &&
	    strcmp(sub, "check") && strcmp(sub, "gc")) {
		cmd_error("store: unknown subcommand '%s' (stats, ls, export, check or gc)", sub);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			cfg.data_dir = optarg;
			break;
		case 'j':
			cfg.json = true;
			break;
		case 's':
			cfg.service = optarg;
			break;
		case 'l':
			errno = 0;
			cfg.limit = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || cfg.limit < 0) {
				cmd_error("store: --limit takes a count, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			cfg.output = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (strcmp(sub, "export") == 0) {
		/* argv + 1: the operand after the options, as getopt left them */
		arg = cmd_one_operand("store export", argc - 1, argv + 1, "SDK profile ID");
		if (!arg)
			return EXIT_USAGE;
		errno = 0;
		export_id = strtoll(arg, &end, 10);
		if (errno || *end || end == arg || export_id <= 0) {
			cmd_error(
				"store export: '%s' is not an SDK profile ID (see braid store ls)",
				arg);
			return EXIT_USAGE;
		}
	} else if (optind != argc - 1) {
		cmd_error("store %s: unexpected argument '%s'", sub, argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (cfg.output && strcmp(sub, "export") != 0) {
		cmd_error("store %s: -o is an option of export", sub);
		return EXIT_USAGE;
	}
	if ((cfg.service || cfg.limit != 1000) && strcmp(sub, "ls") != 0) {
		cmd_error("store %s: --service and --limit are options of ls", sub);
		return EXIT_USAGE;
	}
	if (cfg.json && strcmp(sub, "stats") && strcmp(sub, "ls")) {
		cmd_error("store %s: --json is an option of stats and ls", sub);
		return EXIT_USAGE;
	}
	so.data_dir = cfg.data_dir;
	so.read_only = strcmp(sub, "gc") != 0;
	/* check runs the full check itself */
	so.skip_check = strcmp(sub, "check") == 0;
	r = store__open(&so, &err, &s);
	if (r < 0) {
		cmd_error("%s", err.msg);
		return 1;
	}
	if (strcmp(sub, "stats") == 0) {
		r = print_stats(s, &cfg);
	} else if (strcmp(sub, "ls") == 0) {
		r = print_ls(s, &cfg);
	} else if (strcmp(sub, "export") == 0) {
		r = run_export(s, &cfg, export_id);
		store__close(s);
		return r;
	} else if (strcmp(sub, "check") == 0) {
		r = store__check(s, true, &err);
		if (r < 0)
			cmd_error("%s", err.msg);
		else
			printf("%s: ok\n", store__path(s));
	} else {
		r = run_gc(s, &cfg);
	}
	store__close(s);
	return r < 0 ? 1 : 0;
}
