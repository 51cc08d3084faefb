/* SPDX-License-Identifier: Apache-2.0 */
/* The live page, on ingest's addresses: GET / lists the services with recent
 * data, GET /report renders one's report from the store in the format
 * asked for (merger__report_write), as `braid report` does. */
#include "agent/agent_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_RECENT_NS (15ll * 60 * 1000000000) /* "recent data" on the index */

static int url_part(struct dynbuf *b, const char *s)
{
	int r = 0;

	for (; s && *s && r >= 0; s++) {
		unsigned char c = (unsigned char)*s;

		r = isalnum(c) || strchr("-._~", c) ? dynbuf__putc(b, (char)c)
						    : dynbuf__printf(b, "%%%02X", c);
	}
	return r;
}

struct index_ctx {
	struct dynbuf *b;
	int n, r;
};

static int index_row(void *ctx, const struct store_service *sv)
{
	struct index_ctx *x = ctx;
	struct dynbuf *b = x->b;
	int64_t ago = (now_ns() - sv->last_seen_ns) / 1000000000;
	int r;

	r = dynbuf__printf(b, "<tr><td><a href=\"/report?service=");
	r = r < 0 ? r : url_part(b, sv->name);
	r = r < 0 ? r : dynbuf__printf(b, "&amp;from=15m\">");
	r = r < 0 ? r : util__html_escape(b, sv->name);
	r = r < 0 ? r
		  : dynbuf__printf(b,
				   "</a></td><td>%" PRId64 "</td><td>%" PRId64 "</td><td>%" PRId64
				   "</td><td>%" PRId64 " s ago</td><td><a href=\"/report?service=",
				   sv->processes, sv->ebpf_samples, sv->sdk_profiles, ago);
	r = r < 0 ? r : url_part(b, sv->name);
	r = r < 0 ? r
		  : dynbuf__printf(
			    b, "&amp;from=15m&amp;format=md\">md</a> <a href=\"/report?service=");
	r = r < 0 ? r : url_part(b, sv->name);
	r = r < 0 ? r : dynbuf__printf(b, "&amp;from=15m&amp;format=json\">json</a></td></tr>\n");
	x->n++;
	x->r = r;
	return r < 0 ? r : 0;
}

static int page_index(struct store *s, struct dynbuf *b)
{
	struct index_ctx x = {.b = b};
	int r;

	r = dynbuf__printf(
		b,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>braid agent</title><style>body{font:14px system-ui,sans-serif;margin:2em;"
		"color:#222}table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:"
		"1px solid #ddd;text-align:left}th{background:#f4f4f4}td:nth-child(n+2):not("
		":last-child){text-align:right}</style></head><body><h1>braid agent</h1><p>"
		"Services with data in the last 15 minutes. A report compares the eBPF view "
		"with the SDK's over that time; add <code>&amp;from=</code> and "
		"<code>&amp;until=</code> (RFC 3339, Unix seconds, or 2h ago as "
		"<code>2h</code>) to the link for another range.</p>\n<table><tr><th>service"
		"</th><th>processes</th><th>eBPF samples</th><th>SDK profiles</th><th>last "
		"seen</th><th>other formats</th></tr>\n");
	if (r < 0)
		return 500;
	r = store__services(s, now_ns() - PAGE_RECENT_NS, index_row, &x);
	if (r < 0 || x.r < 0) {
		dynbuf__reset(b);
		dynbuf__printf(b, "braid: reading the store: %s\n", store__errmsg(s));
		return 503;
	}
	r = dynbuf__printf(b, "%s</table></body></html>\n",
			   x.n ? ""
			       : "<tr><td colspan=\"6\">no data in the last 15 minutes</td></tr>");
	return r < 0 ? 500 : 200;
}

/* GET / and GET /report?service=S|pid=P&from=T&until=T&format=html|md|json */
int agent__page(void *ctx, struct store *s, const struct ingest_page *pg, struct dynbuf *out,
		const char **ret_type)
{
	struct agent *a = ctx;
	struct merger_report_query q = {.service = pg->service,
					.freq = a->col ? collector__freq(a->col) : a->cfg->freq};
	enum merger_report_format format = MERGER_REPORT_HTML;
	struct merger_report *rep = NULL;
	struct errbuf err = {{0}};
	int64_t now = now_ns();
	unsigned pid = 0;
	int r, status;

	if (strcmp(pg->path, "/") == 0) {
		*ret_type = "text/html; charset=utf-8";
		return page_index(s, out);
	}
	*ret_type = "text/plain; charset=utf-8";
	if (pg->service && !pg->service[0])
		q.service = NULL;
	if (pg->pid) {
		char *end;
		unsigned long v = strtoul(pg->pid, &end, 10);

		if (*end || !v || v > INT32_MAX) {
			dynbuf__printf(out, "braid: pid takes a process id, not '%s'\n", pg->pid);
			return 400;
		}
		pid = (unsigned)v;
	}
	q.pid = (int32_t)pid;
	if (!q.service && !q.pid) {
		dynbuf__printf(out, "braid: /report needs service=NAME or pid=PID (see /)\n");
		return 400;
	}
	q.until_ns = now;
	if (pg->until && ingest__parse_when(pg->until, now, &q.until_ns) < 0) {
		dynbuf__printf(out,
			       "braid: until takes a time (RFC 3339, Unix seconds), now, or a "
			       "duration ago (2h), not '%s'\n",
			       pg->until);
		return 400;
	}
	q.from_ns = q.until_ns - PAGE_RECENT_NS;
	if (pg->from && ingest__parse_when(pg->from, now, &q.from_ns) < 0) {
		dynbuf__printf(out,
			       "braid: from takes a time (RFC 3339, Unix seconds), now, or a "
			       "duration ago (15m), not '%s'\n",
			       pg->from);
		return 400;
	}
	if (q.from_ns >= q.until_ns) {
		dynbuf__printf(out, "braid: from is not before until\n");
		return 400;
	}
	if (pg->format && merger__report_format_parse(pg->format, &err, &format) < 0) {
		dynbuf__printf(out, "braid: format %s\n", err.msg);
		return 400;
	}
	r = merger__report_from_store(s, &q, &err, &rep);
	if (r < 0) {
		dynbuf__printf(out, "braid: %s\n", err.msg);
		return r == -ENOENT ? 404 : r == -EINVAL ? 400 : 503;
	}
	r = merger__report_write(rep, format, out, ret_type);
	status = 200;
	if (r < 0) {
		dynbuf__reset(out);
		*ret_type = "text/plain; charset=utf-8";
		dynbuf__printf(out, "braid: rendering the report: %s\n", strerror(-r));
		status = 500;
	}
	merger__report_free(rep);
	return status;
}
