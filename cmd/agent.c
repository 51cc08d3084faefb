/* SPDX-License-Identifier: Apache-2.0 */
/* braid agent: the node agent. The eBPF collector, the ingest endpoint, the
 * merger and the forwarder in one process, one thread each (ingest: its
 * own pool), each with its own store connection:
 *
 *   collector  drains the sampler just after each wall-clock second and
 *              writes the second's rows (and their processes) in one
 *              transaction
 *   ingest     the SDKs' endpoint (as `braid ingest`), /metrics for all
 *   merger     a merge pass each second (merger__run)
 *   forwarder  delivers the outbox (forward__run) when --upstream is set
 *
 * Stopping (SIGTERM, SIGINT): ingest stops accepting, the collector drains
 * the last window, the merger makes its final pass, the forwarder flushes
 * the outbox until --flush-timeout; what is left stays in the store for the
 * next start. Configuration: flags, then BRAID_* variables, then a config
 * file, then defaults (see docs/agent.md). */
#define _GNU_SOURCE
#include "cmd.h"
#include "collector/collector.h"
#include "forward/forward.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "store/store.h"

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

static const struct opt opts[N_OPTS] = {
	[OPT_LISTEN] = {"listen", O_LIST, INGEST_DEFAULT_LISTEN},
	[OPT_AUTH_TOKEN] = {"auth-token", O_SECRET},
	[OPT_AUTH_TOKEN_FILE] = {"auth-token-file", O_STR},
	[OPT_BASIC_AUTH] = {"basic-auth", O_SECRET},
	[OPT_BASIC_AUTH_FILE] = {"basic-auth-file", O_STR},
	[OPT_DATA_DIR] = {"data-dir", O_STR},
	[OPT_STORE_MAX_BYTES] = {"store-max-bytes", O_SIZE, "1G", NULL, STORE_MIN_MAX_BYTES,
				 UINT64_MAX},
	[OPT_RETENTION] = {"retention", O_DURATION, "24h", NULL, 60, 365 * 86400},
	[OPT_SYNC] = {"sync", O_CHOICE, "normal", "normal|full"},
	[OPT_NO_EBPF] = {"no-ebpf", O_BOOL, "false"},
	[OPT_FREQ] = {"freq", O_UINT, "97", NULL, 1, COLLECTOR_MAX_FREQ},
	[OPT_NO_KERNEL] = {"no-kernel", O_BOOL, "false"},
	[OPT_CGROUP] = {"cgroup", O_STR},
	[OPT_GRACE] = {"grace", O_DURATION, "75s", NULL, 1, 3600},
	[OPT_COLLECT_INTERVAL] = {"collect-interval", O_DURATION, "15s", NULL, 1, 3600},
	[OPT_UPSTREAM] = {"upstream", O_STR},
	[OPT_UPSTREAM_API] = {"upstream-api", O_CHOICE, "push", "push|ingest"},
	[OPT_TENANT] = {"tenant", O_STR},
	[OPT_UPSTREAM_TOKEN] = {"upstream-token", O_SECRET},
	[OPT_UPSTREAM_TOKEN_FILE] = {"upstream-token-file", O_STR},
	[OPT_UPSTREAM_BASIC_AUTH] = {"upstream-basic-auth", O_SECRET},
	[OPT_UPSTREAM_BASIC_AUTH_FILE] = {"upstream-basic-auth-file", O_STR},
	[OPT_UPSTREAM_HEADER] = {"upstream-header", O_LIST},
	[OPT_UPSTREAM_CA] = {"upstream-ca", O_STR},
	[OPT_UPSTREAM_CERT] = {"upstream-cert", O_STR},
	[OPT_UPSTREAM_KEY] = {"upstream-key", O_STR},
	[OPT_UPSTREAM_INSECURE] = {"upstream-insecure", O_BOOL, "false"},
	[OPT_UPSTREAM_TIMEOUT] = {"upstream-timeout", O_DURATION, "30s", NULL, 1, 600},
	[OPT_BATCH_MAX_BYTES] = {"batch-max-bytes", O_SIZE, "1M", NULL, 1024, 64u << 20},
	[OPT_RETRY_MAX_BACKOFF] = {"retry-max-backoff", O_DURATION, "5m", NULL, 1, 3600},
	[OPT_FLUSH_TIMEOUT] = {"flush-timeout", O_DURATION, "5s", NULL, 0, 600},
	[OPT_KEEP_CAPS] = {"keep-caps", O_BOOL, "false"},
	[OPT_VERBOSE] = {"verbose", O_BOOL, "false"},
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

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid agent [OPTIONS]\n"
		"\n"
		"The node agent: samples every process's CPU stacks with eBPF, receives what the\n"
		"Pyroscope SDKs push (exactly like a Pyroscope server), merges the two, and\n"
		"forwards merged, eBPF-only and the SDKs' own profiles to Pyroscope. Without\n"
		"--upstream, profiles stay in the store (braid store ls). Runs until SIGTERM or\n"
		"SIGINT, then stops accepting, drains the last eBPF window, merges what it can\n"
		"and sends the outbox for --flush-timeout; what is left is sent at the next "
		"start.\n"
		"\n"
		"Configuration: flags, then environment variables (BRAID_ and the option's name\n"
		"in capitals, '-' as '_': BRAID_UPSTREAM, BRAID_NO_EBPF=true), then the config\n"
		"file, then defaults. A repeatable option takes one value per line in a variable\n"
		"(--listen also splits at commas). The file has \"name = value\" lines (\"#\" "
		"starts\n"
		"a comment; a repeatable option may repeat).\n"
		"\n"
		"General:\n"
		"      --config FILE        the config file (also BRAID_CONFIG)\n"
		"      --print-config       print the effective configuration, and where each\n"
		"                           value came from, then exit\n"
		"  -v, --verbose            the stages' counters every minute, libbpf's messages\n"
		"  -h, --help               show this help\n"
		"Ingest (where the SDKs push):\n"
		"      --listen ADDR        IPV4:PORT, [IPV6]:PORT or unix:PATH; repeatable\n"
		"                           (default " INGEST_DEFAULT_LISTEN
		"). An address that is not\n"
		"                           loopback needs --auth-token or --basic-auth.\n"
		"      --auth-token T       SDKs must send \"Authorization: Bearer T\"\n"
		"      --auth-token-file F  the same, read from file F\n"
		"      --basic-auth U:P     SDKs must use HTTP basic auth U:P\n"
		"      --basic-auth-file F  the same, read from file F\n"
		"Store:\n"
		"      --data-dir DIR       (default " STORE_DEFAULT_DATA_DIR
		" as root, else " STORE_USER_DATA_DIR ")\n"
		"      --store-max-bytes N  the store's bound (default 1G); when full, SDK pushes\n"
		"                           get 429 and the oldest eBPF samples go first\n"
		"      --retention D        age past which anything unsent is removed (default "
		"24h)\n"
		"      --sync normal|full   fsync at checkpoints (default) or at every commit\n"
		"eBPF collector:\n"
		"      --no-ebpf            no sampling: a sidecar that receives and forwards SDK\n"
		"                           profiles only (needs no privileges)\n"
		"      --freq HZ            samples per second per CPU (default 97)\n"
		"      --no-kernel          leave out kernel frames\n"
		"      --cgroup DIR         only processes in this cgroup v2 directory and below\n"
		"Merger:\n"
		"      --grace D            how long samples of a process with an SDK wait for "
		"the\n"
		"                           SDK's profile before leaving eBPF-only (default 75s)\n"
		"      --collect-interval D eBPF-only profiles of other processes this often\n"
		"                           (default 15s)\n"
		"Upstream (Grafana Pyroscope):\n"
		"      --upstream URL       e.g. http://pyroscope:4040; without it profiles stay "
		"in\n"
		"                           the store\n"
		"      --upstream-api push|ingest  the push API (default) or the legacy /ingest\n"
		"      --tenant ID          X-Scope-OrgID (an SDK's own tenant wins for its "
		"profiles)\n"
		"      --upstream-token T   \"Authorization: Bearer T\" (or --upstream-token-file "
		"F)\n"
		"      --upstream-basic-auth U:P  basic auth (or --upstream-basic-auth-file F)\n"
		"      --upstream-header \"Name: value\"  sent with every request; repeatable\n"
		"      --upstream-ca FILE   trust these CAs (PEM) instead of the system's\n"
		"      --upstream-cert FILE, --upstream-key FILE  a client certificate (mutual "
		"TLS)\n"
		"      --upstream-insecure  do not verify the upstream's TLS certificate\n"
		"      --upstream-timeout D a request's time limit (default 30s)\n"
		"      --batch-max-bytes N  profiles' bytes in one push request (default 1M)\n"
		"      --retry-max-backoff D  the longest wait between retries (default 5m)\n"
		"      --flush-timeout D    at stop, how long to keep sending (default 5s)\n"
		"Privileges:\n"
		"      --keep-caps          keep every capability (by default, after start-up, "
		"only\n"
		"                           CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and\n"
		"                           CAP_DAC_READ_SEARCH stay; see docs/agent.md)\n"
		"\n"
		"Durations take s, m, h or d (plain numbers are seconds); sizes K, M or G.\n"
		"With eBPF the agent needs root (or the capabilities in docs/agent.md) and a "
		"kernel\n"
		"with BTF. /metrics on the ingest address covers every stage.\n");
}

/* ---- reading the options ------------------------------------------------------------ */

static int find_opt(const char *name, size_t len)
{
	for (int i = 0; i < N_OPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return i;
	return -1;
}

static const char *source_name(const struct val *v)
{
	switch (v->src) {
	case SRC_FLAG:
		return "flag";
	case SRC_ENV:
		return "environment";
	case SRC_FILE:
		return "config file";
	default:
		return "default";
	}
}

/* Sets an option's value from a source, unless a stronger one gave it. A
 * repeatable option collects values within one source. */
static int set_val(struct val *v, enum source src, const char *text, const char *where,
		   const struct opt *o)
{
	if (v->src > src)
		return 0;
	if (v->src < src) {
		v->src = src;
		v->n = 0;
	}
	if (o->kind != O_LIST)
		v->n = 0;
	if (v->n == MAX_LIST_VALUES) {
		cmd_error("agent: %s: --%s given more than %d times", where, o->name,
			  MAX_LIST_VALUES);
		return -EINVAL;
	}
	v->text[v->n++] = text;
	snprintf(v->where, sizeof(v->where), "%s", where);
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Reads "name = value" lines; the text stays in st->file_text. */
static int read_config_file(struct settings *st)
{
	struct dynbuf b;
	struct errbuf err = {{0}};
	char *line, *next;
	unsigned lineno = 0;
	int r = 0;

	dynbuf__init(&b, MAX_CONFIG_FILE + 1);
	r = util__read_file(st->config_file, MAX_CONFIG_FILE, &err, &b);
	if (r < 0) {
		cmd_error("agent: config file: %s", err.msg);
		dynbuf__free(&b);
		return r;
	}
	st->file_text = b.data ? b.data : strdup("");
	if (!st->file_text)
		return -ENOMEM;
	for (line = st->file_text; line; line = next) {
		char *eq, *name, *value, where[300];
		int i;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		name = trim(line);
		if (!name[0] || name[0] == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%u", st->config_file, lineno);
		if (strlen(name) > MAX_CONFIG_LINE) {
			cmd_error("agent: %s: a line over %d bytes", where, MAX_CONFIG_LINE);
			return -EINVAL;
		}
		eq = strchr(name, '=');
		if (!eq) {
			cmd_error("agent: %s: expected \"name = value\", not \"%s\"", where, name);
			return -EINVAL;
		}
		*eq = '\0';
		value = trim(eq + 1);
		name = trim(name);
		if (strncmp(name, "--", 2) == 0)
			name += 2;
		i = find_opt(name, strlen(name));
		if (i < 0) {
			cmd_error(
				"agent: %s: unknown option \"%s\" (braid agent --help lists them)",
				where, name);
			return -EINVAL;
		}
		/* "value" in double quotes keeps its spaces and '#' */
		if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
			value[strlen(value) - 1] = '\0';
			value++;
		} else {
			char *hash = strstr(value, " #");

			if (hash) {
				*hash = '\0';
				value = trim(value);
			}
		}
		r = set_val(&st->v[i], SRC_FILE, value, where, &opts[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void env_name(const char *opt, char *out, size_t size)
{
	size_t j = (size_t)snprintf(out, size, "BRAID_");

	for (; *opt && j + 1 < size; opt++)
		out[j++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
	out[j] = '\0';
}

static int read_env(struct settings *st)
{
	for (int i = 0; i < N_OPTS; i++) {
		char name[64], *copy, *save = NULL, *part;
		const char *value;
		int r;

		env_name(opts[i].name, name, sizeof(name));
		value = getenv(name);
		if (!value)
			continue;
		if (opts[i].kind != O_LIST) {
			r = set_val(&st->v[i], SRC_ENV, value, name, &opts[i]);
			if (r < 0)
				return r;
			continue;
		}
		copy = st->env_copies[i] = strdup(value);
		if (!copy)
			return -ENOMEM;
		for (part = strtok_r(copy, i == OPT_LISTEN ? ",\n" : "\n", &save); part;
		     part = strtok_r(NULL, i == OPT_LISTEN ? ",\n" : "\n", &save)) {
			part = trim(part);
			if (!part[0])
				continue;
			r = set_val(&st->v[i], SRC_ENV, part, name, &opts[i]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* "90", "90s", "5m", "24h", "7d": seconds. */
static int parse_duration(const char *s, int64_t *ret)
{
	char *end;
	unsigned long long v;
	int64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-' || v > INT32_MAX)
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 's':
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		default:
			return -EINVAL;
		}
		if (end[1])
			return -EINVAL;
	}
	*ret = (int64_t)v * mul;
	return 0;
}

static bool parse_bool(const char *s, bool *ret)
{
	if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*ret = true;
	else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "off"))
		*ret = false;
	else
		return false;
	return true;
}

/* Where a value came from, for messages: "--freq", "BRAID_FREQ" or
 * "FILE:LINE". */
static const char *where(const struct settings *st, int i, char *buf, size_t size)
{
	const struct val *v = &st->v[i];

	if (v->src == SRC_FLAG)
		snprintf(buf, size, "--%s", opts[i].name);
	else if (v->src == SRC_DEFAULT)
		snprintf(buf, size, "the default of --%s", opts[i].name);
	else
		snprintf(buf, size, "%s (--%s)", v->where, opts[i].name);
	return buf;
}

static const char *text_of(const struct settings *st, int i)
{
	const struct val *v = &st->v[i];

	return v->n ? v->text[0] : NULL;
}

/* A boolean option's value (checked by resolve). */
static bool flag_on(const struct settings *st, int i)
{
	bool b = false;

	return st->v[i].n && parse_bool(st->v[i].text[0], &b) && b;
}

/* Converts and checks every value into cfg. */
static int resolve(struct settings *st, struct config *cfg)
{
	char w[400];

	for (int i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		struct val *v = &st->v[i];

		if (!v->n && o->def) {
			v->text[0] = o->def;
			v->n = 1;
			v->src = SRC_DEFAULT;
		}
		if (!v->n)
			continue;
		switch (o->kind) {
		case O_BOOL: {
			bool b;

			if (!parse_bool(v->text[0], &b)) {
				cmd_error("agent: %s takes true or false, not '%s'",
					  where(st, i, w, sizeof(w)), v->text[0]);
				return -EINVAL;
			}
			break;
		}
		case O_UINT: {
			unsigned u;

			if (cmd_parse_uint("agent", where(st, i, w, sizeof(w)), v->text[0],
					   (unsigned)o->min, (unsigned)o->max, &u) < 0)
				return -EINVAL;
			break;
		}
		case O_SIZE: {
			uint64_t n;

			if (cmd_parse_size("agent", where(st, i, w, sizeof(w)), v->text[0], &n) < 0)
				return -EINVAL;
			if (n < o->min || n > o->max) {
				cmd_error("agent: %s: %s is out of range (at least %" PRIu64
					  " bytes%s)",
					  where(st, i, w, sizeof(w)), v->text[0], o->min,
					  o->max == UINT64_MAX ? "" : ", and at most 64M");
				return -EINVAL;
			}
			break;
		}
		case O_DURATION: {
			int64_t d;

			if (parse_duration(v->text[0], &d) < 0 || (uint64_t)d < o->min ||
			    (uint64_t)d > o->max) {
				cmd_error("agent: %s takes a duration from %" PRIu64 "s to %" PRIu64
					  "s such as 30s, 5m or 24h, not '%s'",
					  where(st, i, w, sizeof(w)), o->min, o->max, v->text[0]);
				return -EINVAL;
			}
			break;
		}
		case O_CHOICE: {
			const char *c = o->choices;
			size_t len = strlen(v->text[0]);
			bool ok = false;

			while (c && *c && !ok) {
				size_t clen = strcspn(c, "|");

				ok = clen == len && strncmp(c, v->text[0], len) == 0;
				c += clen + (c[clen] == '|');
			}
			if (!ok) {
				cmd_error("agent: %s takes %s, not '%s'",
					  where(st, i, w, sizeof(w)), o->choices, v->text[0]);
				return -EINVAL;
			}
			break;
		}
		default:
			break;
		}
	}
	for (size_t j = 0; j < st->v[OPT_LISTEN].n; j++)
		cfg->listen[j] = st->v[OPT_LISTEN].text[j];
	cfg->n_listen = st->v[OPT_LISTEN].n;
	for (size_t j = 0; j < st->v[OPT_UPSTREAM_HEADER].n; j++)
		cfg->headers[j] = st->v[OPT_UPSTREAM_HEADER].text[j];
	cfg->n_headers = st->v[OPT_UPSTREAM_HEADER].n;
	cfg->data_dir = text_of(st, OPT_DATA_DIR);
	cmd_parse_size("agent", "", text_of(st, OPT_STORE_MAX_BYTES), &cfg->store_max_bytes);
	parse_duration(text_of(st, OPT_RETENTION), &cfg->retention_s);
	cfg->sync =
		strcmp(text_of(st, OPT_SYNC), "full") == 0 ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
	cfg->no_ebpf = flag_on(st, OPT_NO_EBPF);
	cfg->no_kernel = flag_on(st, OPT_NO_KERNEL);
	cfg->keep_caps = flag_on(st, OPT_KEEP_CAPS);
	cfg->verbose = flag_on(st, OPT_VERBOSE);
	cfg->insecure = flag_on(st, OPT_UPSTREAM_INSECURE);
	cmd_parse_uint("agent", "", text_of(st, OPT_FREQ), 1, COLLECTOR_MAX_FREQ, &cfg->freq);
	cfg->cgroup = text_of(st, OPT_CGROUP);
	parse_duration(text_of(st, OPT_GRACE), &cfg->grace_s);
	parse_duration(text_of(st, OPT_COLLECT_INTERVAL), &cfg->collect_interval_s);
	cfg->upstream = text_of(st, OPT_UPSTREAM);
	if (cfg->upstream && !cfg->upstream[0])
		cfg->upstream = NULL;
	cfg->api = strcmp(text_of(st, OPT_UPSTREAM_API), "ingest") == 0 ? FORWARD_API_INGEST
									: FORWARD_API_PUSH;
	cfg->tenant = text_of(st, OPT_TENANT);
	cfg->ca = text_of(st, OPT_UPSTREAM_CA);
	cfg->cert = text_of(st, OPT_UPSTREAM_CERT);
	cfg->key = text_of(st, OPT_UPSTREAM_KEY);
	parse_duration(text_of(st, OPT_UPSTREAM_TIMEOUT), &cfg->upstream_timeout_s);
	parse_duration(text_of(st, OPT_RETRY_MAX_BACKOFF), &cfg->retry_max_backoff_s);
	parse_duration(text_of(st, OPT_FLUSH_TIMEOUT), &cfg->flush_timeout_s);
	cmd_parse_size("agent", "", text_of(st, OPT_BATCH_MAX_BYTES), &cfg->batch_max_bytes);
	/* secrets: given, or read from a file; not both */
	{
		static const int pairs[4][2] = {
			{OPT_AUTH_TOKEN, OPT_AUTH_TOKEN_FILE},
			{OPT_BASIC_AUTH, OPT_BASIC_AUTH_FILE},
			{OPT_UPSTREAM_TOKEN, OPT_UPSTREAM_TOKEN_FILE},
			{OPT_UPSTREAM_BASIC_AUTH, OPT_UPSTREAM_BASIC_AUTH_FILE},
		};
		const char **dst[4] = {&cfg->auth_token, &cfg->basic_auth, &cfg->upstream_token,
				       &cfg->upstream_basic_auth};

		for (int k = 0; k < 4; k++) {
			const char *direct = text_of(st, pairs[k][0]);
			const char *file = text_of(st, pairs[k][1]);

			if (direct && file) {
				cmd_error("agent: give --%s or --%s, not both",
					  opts[pairs[k][0]].name, opts[pairs[k][1]].name);
				return -EINVAL;
			}
			*dst[k] = direct;
			if (file) {
				st->secrets[k] = cmd_read_secret("agent", file);
				if (!st->secrets[k])
					return -EINVAL;
				*dst[k] = st->secrets[k];
			}
		}
	}
	if (!cfg->upstream) {
		for (int i = OPT_TENANT; i <= OPT_BATCH_MAX_BYTES; i++)
			if (st->v[i].src != SRC_DEFAULT && st->v[i].n) {
				cmd_error("agent: %s is set, but --upstream is not",
					  where(st, i, w, sizeof(w)));
				return -EINVAL;
			}
	} else {
		struct forward_options fo = {.url = cfg->upstream,
					     .api = cfg->api,
					     .tenant = cfg->tenant,
					     .bearer_token = cfg->upstream_token,
					     .basic_auth = cfg->upstream_basic_auth,
					     .headers = cfg->headers,
					     .n_headers = cfg->n_headers,
					     .cert_file = cfg->cert,
					     .key_file = cfg->key};
		struct errbuf err = {{0}};

		if (forward__check_options(&fo, &err) < 0) {
			cmd_error("agent: %s", err.msg);
			return -EINVAL;
		}
	}
	if (cfg->no_ebpf &&
	    (st->v[OPT_FREQ].src != SRC_DEFAULT || st->v[OPT_CGROUP].src != SRC_DEFAULT ||
	     st->v[OPT_NO_KERNEL].src != SRC_DEFAULT)) {
		cmd_error("agent: --freq, --cgroup and --no-kernel mean nothing with --no-ebpf");
		return -EINVAL;
	}
	return 0;
}

static void print_config(const struct settings *st)
{
	printf("# braid agent: the effective configuration (%s%s)\n",
	       st->config_file ? "config file " : "no config file",
	       st->config_file ? st->config_file : "");
	for (int i = 0; i < N_OPTS; i++) {
		const struct val *v = &st->v[i];

		if (!v->n) {
			if (i == OPT_DATA_DIR)
				printf("%-26s = %-30s # default\n", opts[i].name,
				       store__default_data_dir());
			else
				printf("# %-24s   (not set)\n", opts[i].name);
			continue;
		}
		for (size_t j = 0; j < v->n; j++) {
			char shown[80];
			const char *text = v->text[j];

			if (opts[i].kind == O_SECRET) {
				snprintf(shown, sizeof(shown), "<secret, %zu bytes>", strlen(text));
				text = shown;
			}
			if (v->src == SRC_DEFAULT)
				printf("%-26s = %-30s # default\n", opts[i].name, text);
			else
				printf("%-26s = %-30s # %s: %s\n", opts[i].name, text,
				       source_name(v), v->where);
		}
	}
}

static void settings_free(struct settings *st)
{
	free(st->file_text);
	for (int i = 0; i < N_OPTS; i++)
		free(st->env_copies[i]);
	for (int k = 0; k < 4; k++) {
		if (st->secrets[k])
			explicit_bzero(st->secrets[k], strlen(st->secrets[k]));
		free(st->secrets[k]);
	}
}

/* Reads flags, the environment and the config file into st and cfg.
 * Returns 0, 1 after --help or --print-config (exit 0), or -EINVAL (bad
 * usage, reported). */
static int configure(int argc, char **argv, struct settings *st, struct config *cfg)
{
	enum { L_CONFIG = 1000, L_PRINT, L_BASE };
	struct option longopts[N_OPTS + 4];
	bool print = false;
	int c, n = 0, r;

	for (int i = 0; i < N_OPTS; i++)
		longopts[n++] = (struct option){opts[i].name,
						opts[i].kind == O_BOOL ? optional_argument
								       : required_argument,
						NULL, L_BASE + i};
	longopts[n++] = (struct option){"config", required_argument, NULL, L_CONFIG};
	longopts[n++] = (struct option){"print-config", no_argument, NULL, L_PRINT};
	longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[n] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		char flag[80];

		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == L_CONFIG) {
			st->config_file = optarg;
			st->config_src = SRC_FLAG;
			continue;
		}
		if (c == L_PRINT) {
			print = true;
			continue;
		}
		if (c == 'v')
			c = L_BASE + OPT_VERBOSE;
		if (c < L_BASE || c >= L_BASE + N_OPTS) {
			usage(stderr);
			return -EINVAL;
		}
		c -= L_BASE;
		snprintf(flag, sizeof(flag), "--%s", opts[c].name);
		r = set_val(&st->v[c], SRC_FLAG,
			    opts[c].kind == O_BOOL && !optarg ? "true" : optarg, flag, &opts[c]);
		if (r < 0)
			return r;
	}
	if (optind < argc) {
		cmd_error("agent: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	r = read_env(st);
	if (r < 0)
		return r;
	if (!st->config_file && getenv("BRAID_CONFIG") && getenv("BRAID_CONFIG")[0]) {
		st->config_file = getenv("BRAID_CONFIG");
		st->config_src = SRC_ENV;
	}
	if (st->config_file) {
		r = read_config_file(st);
		if (r < 0)
			return r;
	}
	r = resolve(st, cfg);
	if (r < 0)
		return r;
	if (print) {
		print_config(st);
		return 1;
	}
	return 0;
}

/* ---- capabilities ----------------------------------------------------------------------- */

static uint64_t cap_bit(int cap)
{
	return 1ull << cap;
}

/* What the agent keeps after start-up (docs/agent.md): reading the BPF maps
 * (CAP_BPF: kernels before 6.5 check it on every bpf() call) and the perf
 * events, other processes' /proc files (maps, environ, fds, root) and their
 * files. Binding a port below 1024 was done already. */
static uint64_t caps_to_keep(const struct config *cfg)
{
	uint64_t keep = cap_bit(CAP_SYS_PTRACE) | cap_bit(CAP_DAC_READ_SEARCH);

	if (!cfg->no_ebpf)
		keep |= cap_bit(CAP_BPF) | cap_bit(CAP_PERFMON);
	return keep;
}

/* Drops every capability but `keep` from this thread's effective,
 * permitted and inheritable sets, from the ambient set and (when it can)
 * from the bounding set, before any other thread exists: threads inherit
 * them. */
static int drop_caps(uint64_t keep, uint64_t *ret_kept)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	uint64_t eff, perm;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	perm = (uint64_t)data[0].permitted | (uint64_t)data[1].permitted << 32;
	if (!perm) {
		*ret_kept = 0;
		return 0; /* nothing to drop */
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (eff & cap_bit(CAP_SETPCAP))
		for (int cap = 0; cap < 64; cap++)
			if (!(keep & cap_bit(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
				prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	eff &= keep;
	perm &= keep;
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	/* no exec gains privileges back */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	*ret_kept = eff;
	return 0;
}

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

static int64_t now_ns(void)
{
	return store__now_ns();
}

static void set_fatal(struct agent *a, int r)
{
	pthread_mutex_lock(&a->lock);
	if (!a->fatal)
		a->fatal = r;
	pthread_mutex_unlock(&a->lock);
}

/* Logs a stage's failure at most once a minute (a store that stays full
 * would fill the log otherwise). */
static void log_limited(int64_t *last, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_limited(int64_t *last, const char *fmt, ...)
{
	int64_t now = now_ns();
	char msg[1024];
	va_list ap;

	if (*last && now - *last < ERROR_LOG_EVERY_NS)
		return;
	*last = now;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmd_error("agent: %s", msg);
}

/* -- the collector thread -- */

/* A drain's rows, copied: the collector's strings live only during its
 * callback, and the rows are written after the drain in one short
 * transaction (not during it: symbolization may take a while, and the
 * ingest threads write too). */
struct drain {
	struct arena arena;
	struct store_bucket *rows;
	size_t n, cap;
	struct store_process *procs; /* distinct processes of the drain */
	size_t n_procs, cap_procs;
	size_t *row_proc; /* rows[i]'s index in procs */
	size_t cap_row_proc;
	int64_t samples;
};

static int on_row(void *ctx, const struct collector_row *row)
{
	struct drain *d = ctx;
	const struct collector_proc *p = row->process;
	struct store_frame *frames;
	size_t pi = d->n_procs;
	int r;

	/* rows of one process come together */
	if (d->n_procs && d->procs[d->n_procs - 1].pid == p->pid &&
	    d->procs[d->n_procs - 1].start_time_ns == p->start_time_ns) {
		pi = d->n_procs - 1;
	} else {
		for (size_t i = 0; i < d->n_procs; i++)
			if (d->procs[i].pid == p->pid &&
			    d->procs[i].start_time_ns == p->start_time_ns) {
				pi = i;
				break;
			}
	}
	if (pi == d->n_procs) {
		struct store_process *sp;

		r = util__grow((void **)&d->procs, &d->cap_procs, d->n_procs + 1,
			       sizeof(*d->procs));
		if (r < 0)
			return r;
		sp = &d->procs[d->n_procs];
		/* the service only when the process declares one: the collector's
		 * fallback (container, comm) must not overwrite what an SDK gave */
		*sp = (struct store_process){
			.pid = p->pid,
			.start_time_ns = p->start_time_ns,
			.comm = arena__strdup(&d->arena, p->comm[0] ? p->comm : row->thread_comm),
			.exe = arena__strdup(&d->arena, p->exe),
			.cmdline = arena__strdup(&d->arena, p->cmdline),
			.service = arena__strdup(&d->arena, p->service),
			.container_id = arena__strdup(&d->arena, p->container_id),
			.runtime = p->runtime,
		};
		if (!sp->comm || (p->exe && !sp->exe) || (p->cmdline && !sp->cmdline) ||
		    (p->service && !sp->service) || (p->container_id && !sp->container_id))
			return -ENOMEM;
		d->n_procs++;
	}
	r = util__grow((void **)&d->rows, &d->cap, d->n + 1, sizeof(*d->rows));
	if (r == 0)
		r = util__grow((void **)&d->row_proc, &d->cap_row_proc, d->n + 1,
			       sizeof(*d->row_proc));
	if (r < 0)
		return r;
	frames = arena__alloc(&d->arena, (row->n_frames ? row->n_frames : 1) * sizeof(*frames));
	if (!frames)
		return -ENOMEM;
	for (size_t i = 0; i < row->n_frames; i++) {
		frames[i] = row->frames[i];
		frames[i].name = arena__strdup(&d->arena, row->frames[i].name);
		frames[i].module = arena__strdup(&d->arena, row->frames[i].module);
		if ((row->frames[i].name && !frames[i].name) ||
		    (row->frames[i].module && !frames[i].module))
			return -ENOMEM;
	}
	d->rows[d->n] = (struct store_bucket){.tid = row->tid,
					      .second = row->second,
					      .frames = frames,
					      .n_frames = row->n_frames,
					      .count = row->count};
	d->row_proc[d->n] = pi;
	d->n++;
	d->samples += row->count;
	return 0;
}

/* Writes a drain: its processes and its rows in one transaction. */
static int write_drain(struct agent *a, struct store *s, struct drain *d, int64_t *last_log)
{
	int64_t *ids = NULL, now = now_ns();
	size_t dropped = 0;
	int r;

	if (!d->n)
		return 0;
	ids = calloc(d->n_procs, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	r = store__begin(s);
	for (size_t i = 0; r == 0 && i < d->n_procs; i++)
		r = store__put_process(s, &d->procs[i], now, &ids[i]);
	for (size_t i = 0; r == 0 && i < d->n; i++)
		d->rows[i].process_id = ids[d->row_proc[i]];
	if (r == 0)
		r = store__put_buckets(s, d->rows, d->n, &dropped);
	if (r == 0)
		r = store__commit(s);
	if (r < 0) {
		log_limited(last_log, "storing %zu eBPF rows (%" PRId64 " samples) failed: %s",
			    d->n, d->samples, store__errmsg(s));
		store__rollback(s);
	}
	pthread_mutex_lock(&a->lock);
	if (r < 0) {
		a->store_errors++;
		a->rows_refused += (int64_t)d->n;
		a->samples_refused += d->samples;
	} else {
		a->rows_stored += (int64_t)(d->n - dropped);
		a->samples_stored += d->samples; /* refused ones are the store's counters */
		a->rows_refused += (int64_t)dropped;
	}
	pthread_mutex_unlock(&a->lock);
	free(ids);
	return 0;
}

static void *collector_main(void *arg)
{
	struct agent *a = arg;
	struct store *s = NULL;
	struct errbuf err = {{0}};
	struct epoll_event ev = {.events = EPOLLIN};
	struct drain d = {0};
	int64_t last_log = 0;
	int efd = -1, r;

	r = store__open(&a->so, &err, &s);
	if (r < 0) {
		cmd_error("agent: collector: %s", err.msg);
		goto cleanup;
	}
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = a->stop_efd;
	if (epoll_ctl(efd, EPOLL_CTL_ADD, a->stop_efd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	ev.data.fd = collector__fd(a->col);
	if (epoll_ctl(efd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
		r = -errno;
		goto cleanup;
	}
	for (bool stop = false; !stop;) {
		int64_t now = now_ns();
		/* drain just after each wall-clock second ends, as braid record */
		int64_t next = (now / 1000000000 + 1) * 1000000000 + 5000000, second;

		while (!stop && (now = now_ns()) < next) {
			struct epoll_event got[2];
			int n = epoll_wait(efd, got, 2, (int)((next - now + 999999) / 1000000));

			if (n < 0 && errno != EINTR) {
				r = -errno;
				goto cleanup;
			}
			for (int i = 0; i < n; i++) {
				if (got[i].data.fd == a->stop_efd) {
					stop = true;
				} else if ((r = collector__poll(a->col)) < 0) {
					log_limited(&last_log,
						    "collector: reading new processes: %s",
						    strerror(-r));
				}
			}
		}
		now = now_ns();
		second = (now - (stop ? 0 : 1000000000 / 2)) / 1000000000;
		if (stop)
			collector__stop(a->col); /* the last drain gets every sample */
		arena__reset(&d.arena);
		d.n = d.n_procs = 0;
		d.samples = 0;
		r = collector__drain(a->col, second, on_row, &d);
		if (r < 0) {
			cmd_error("agent: collector: draining the samples: %s", strerror(-r));
			goto cleanup;
		}
		r = write_drain(a, s, &d, &last_log);
		if (r < 0)
			goto cleanup;
		pthread_mutex_lock(&a->lock);
		a->have_col = collector__stats(a->col, &a->col_st) == 0;
		pthread_mutex_unlock(&a->lock);
	}
	r = 0;
cleanup:
	if (r < 0)
		set_fatal(a, r);
	if (efd >= 0)
		close(efd);
	arena__free(&d.arena);
	free(d.rows);
	free(d.procs);
	free(d.row_proc);
	store__close(s);
	return NULL;
}

/* -- the merger thread -- */

/* Waits up to one second, or until *flag; returns *flag. */
static bool wait_tick(struct agent *a, const bool *flag)
{
	struct timespec ts;
	bool v;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&a->lock);
	if (!*flag)
		pthread_cond_timedwait(&a->cond, &a->lock, &ts);
	v = *flag;
	pthread_mutex_unlock(&a->lock);
	return v;
}

static void add_merger_stats(struct merger_stats *t, const struct merger_stats *p)
{
	t->passes += p->passes;
	t->merged_profiles += p->merged_profiles;
	t->ebpf_profiles += p->ebpf_profiles;
	t->sdk_passed += p->sdk_passed;
	t->samples_in += p->samples_in;
	t->samples_merged += p->samples_merged;
	t->samples_spliced += p->samples_spliced;
	t->samples_ebpf += p->samples_ebpf;
	t->sdk_late += p->sdk_late;
	t->sdk_unusable += p->sdk_unusable;
	t->sdk_unattributed += p->sdk_unattributed;
}

static void *merger_main(void *arg)
{
	struct agent *a = arg;
	struct merger_options mo = {.grace_s = a->cfg->grace_s,
				    .collect_interval_s = a->cfg->collect_interval_s,
				    .freq = a->col ? collector__freq(a->col) : a->cfg->freq};
	struct store *s = NULL;
	struct merger *m = NULL;
	struct errbuf err = {{0}};
	int64_t last_log = 0;
	int r;

	r = store__open(&a->so, &err, &s);
	if (r < 0) {
		cmd_error("agent: merger: %s", err.msg);
		set_fatal(a, r);
		return NULL;
	}
	m = merger__new(s, &mo);
	if (!m) {
		cmd_error("agent: merger: out of memory");
		set_fatal(a, -ENOMEM);
		store__close(s);
		return NULL;
	}
	for (;;) {
		bool stop = wait_tick(a, &a->stop_merger);
		struct merger_stats st = {0};

		/* stopping: the collector has written its last drain; what is
		 * ready leaves now */
		r = merger__run(m, now_ns(), stop, &st);
		pthread_mutex_lock(&a->lock);
		add_merger_stats(&a->merger_st, &st);
		if (r < 0)
			a->merger_errors++;
		if (st.merged_profiles || st.ebpf_profiles || st.sdk_passed)
			pthread_cond_broadcast(&a->cond); /* the forwarder has work */
		pthread_mutex_unlock(&a->lock);
		if (r < 0)
			log_limited(&last_log, "merger: %s", merger__errmsg(m));
		if (stop)
			break;
	}
	merger__free(m);
	store__close(s);
	return NULL;
}

/* -- the forwarder thread -- */

static void *forward_main(void *arg)
{
	struct agent *a = arg;
	struct forward_stats st;
	int64_t last_log = 0, deadline;
	char last_err[1024] = "";
	int r;

	for (;;) {
		bool stop = wait_tick(a, &a->stop_forward);

		if (stop)
			break;
		r = forward__run(a->fwd, now_ns(), false, 0, &st);
		pthread_mutex_lock(&a->lock);
		a->fwd_st = (struct forward_stats){0};
		forward__stats(a->fwd, &a->fwd_st);
		if (r < 0)
			a->forward_errors++;
		pthread_mutex_unlock(&a->lock);
		if (r < 0 || st.retries || st.dead_letters) {
			/* the same failure repeated is logged once a minute */
			if (strcmp(last_err, forward__errmsg(a->fwd)) != 0)
				last_log = 0;
			snprintf(last_err, sizeof(last_err), "%s", forward__errmsg(a->fwd));
			log_limited(&last_log, "upstream: %s", last_err);
		}
	}
	pthread_mutex_lock(&a->lock);
	deadline = a->flush_deadline_ns;
	pthread_mutex_unlock(&a->lock);
	r = forward__run(a->fwd, now_ns(), true, deadline, &st);
	if (r < 0 || st.retries)
		cmd_error("agent: upstream: flushing: %s", forward__errmsg(a->fwd));
	pthread_mutex_lock(&a->lock);
	forward__stats(a->fwd, &a->fwd_st);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- /metrics ------------------------------------------------------------------------- */

static int metric(struct dynbuf *b, const char *name, const char *type, const char *help)
{
	return dynbuf__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The agent's stages, appended to ingest's /metrics (a request thread). */
static int agent_metrics(void *ctx, struct dynbuf *b)
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

/* ---- the live page ---------------------------------------------------------------------- */

#define PAGE_RECENT_NS (15ll * 60 * 1000000000) /* "recent data" on the index */

static int html_text(struct dynbuf *b, const char *s)
{
	int r = 0;

	for (; s && *s && r >= 0; s++)
		r = *s == '<'	 ? dynbuf__printf(b, "&lt;")
		    : *s == '>'	 ? dynbuf__printf(b, "&gt;")
		    : *s == '&'	 ? dynbuf__printf(b, "&amp;")
		    : *s == '"'	 ? dynbuf__printf(b, "&quot;")
		    : *s == '\'' ? dynbuf__printf(b, "&#39;")
				 : dynbuf__putc(b, *s);
	return r;
}

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
	r = r < 0 ? r : html_text(b, sv->name);
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
static int agent_page(void *ctx, struct store *s, const struct ingest_page *pg, struct dynbuf *out,
		      const char **ret_type)
{
	struct agent *a = ctx;
	struct merger_report_query q = {.service = pg->service,
					.freq = a->col ? collector__freq(a->col) : a->cfg->freq};
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
	if (pg->until && cmd_parse_when(pg->until, now, &q.until_ns) < 0) {
		dynbuf__printf(out,
			       "braid: until takes a time (RFC 3339, Unix seconds), now, or a "
			       "duration ago (2h), not '%s'\n",
			       pg->until);
		return 400;
	}
	q.from_ns = q.until_ns - PAGE_RECENT_NS;
	if (pg->from && cmd_parse_when(pg->from, now, &q.from_ns) < 0) {
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
	if (pg->format && strcmp(pg->format, "html") && strcmp(pg->format, "md") &&
	    strcmp(pg->format, "json")) {
		dynbuf__printf(out, "braid: format takes html, md or json, not '%s'\n", pg->format);
		return 400;
	}
	r = merger__report_from_store(s, &q, &err, &rep);
	if (r < 0) {
		dynbuf__printf(out, "braid: %s\n", err.msg);
		return r == -ENOENT ? 404 : r == -EINVAL ? 400 : 503;
	}
	if (pg->format && !strcmp(pg->format, "json")) {
		*ret_type = "application/json";
		r = merger__report_json(rep, out);
	} else if (pg->format && !strcmp(pg->format, "md")) {
		*ret_type = "text/markdown; charset=utf-8";
		r = merger__report_markdown(rep, out);
	} else {
		*ret_type = "text/html; charset=utf-8";
		r = merger__report_html(rep, out);
	}
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

/* ---- main ------------------------------------------------------------------------------ */

static void log_summary(struct agent *a, const char *when)
{
	struct forward_stats f;
	struct merger_stats m;
	int64_t samples;

	pthread_mutex_lock(&a->lock);
	f = a->fwd_st;
	m = a->merger_st;
	samples = a->samples_stored;
	pthread_mutex_unlock(&a->lock);
	fprintf(stderr,
		"braid: agent: %s: %" PRId64 " eBPF samples stored; queued %" PRId64
		" merged, %" PRId64 " eBPF-only, %" PRId64 " SDK profiles",
		when, samples, m.merged_profiles, m.ebpf_profiles, m.sdk_passed);
	if (a->cfg->upstream)
		fprintf(stderr,
			"; upstream took %" PRId64 " (%" PRId64 " retries, %" PRId64
			" dead letters)",
			f.delivered, f.retries, f.dead_letters);
	fprintf(stderr, "\n");
}

static bool low_port(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const char *colon = strrchr(cfg->listen[i], ':');

		if (strncmp(cfg->listen[i], "unix:", 5) != 0 && colon && atoi(colon + 1) > 0 &&
		    atoi(colon + 1) < 1024)
			return true;
	}
	return false;
}

int cmd_agent(int argc, char **argv)
{
	struct settings st = {0};
	struct config cfg = {0};
	struct agent a = {.cfg = &cfg,
			  .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER,
			  .stop_efd = -1};
	struct ingest_options io = {0};
	struct collector_options co = {0};
	struct ingest *in = NULL;
	struct store *maint = NULL, *fwd_store = NULL;
	struct errbuf err = {{0}};
	pthread_t t_col, t_merge, t_fwd;
	bool col_started = false, merge_started = false, fwd_started = false;
	int64_t last_maintain, last_stats = 0, last_summary, stop_start = 0;
	uint64_t kept = 0;
	sigset_t sigs;
	int r, status = 1;

	r = configure(argc, argv, &st, &cfg);
	if (r != 0) {
		settings_free(&st);
		return r > 0 ? 0 : EXIT_USAGE;
	}
	a.so = (struct store_options){.data_dir = cfg.data_dir,
				      .max_bytes = cfg.store_max_bytes,
				      .retention_ns = cfg.retention_s * 1000000000,
				      .sync = cfg.sync,
				      .cache_kib = AGENT_STORE_CACHE_KIB};

	/* every thread inherits this mask: only this one takes the signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	cmd_raise_fd_limit("agent", INGEST_DEFAULT_MAX_CONNECTIONS);

	/* the store first: it is created (or migrated) once, before any thread */
	r = store__open(&a.so, &err, &maint);
	if (r < 0) {
		cmd_error("agent: %s", err.msg);
		goto cleanup;
	}
	if (!cfg.no_ebpf) {
		co.sampler.freq = cfg.freq;
		co.sampler.no_kernel = cfg.no_kernel;
		co.sampler.cgroup = cfg.cgroup;
		co.sampler.verbose = cfg.verbose;
		co.symbols.no_kernel = cfg.no_kernel;
		r = collector__open(&co, &err, &a.col);
		if (r < 0) {
			cmd_error("agent: %s", err.msg);
			cmd_error("agent: eBPF sampling needs root (or CAP_BPF, CAP_PERFMON, "
				  "CAP_SYSLOG) and a kernel with BTF; --no-ebpf runs without it");
			goto cleanup;
		}
		a.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (a.stop_efd < 0) {
			cmd_error("agent: eventfd: %s", strerror(errno));
			goto cleanup;
		}
	}
	if (cfg.upstream) {
		struct forward_options fo = {
			.url = cfg.upstream,
			.api = cfg.api,
			.tenant = cfg.tenant,
			.bearer_token = cfg.upstream_token,
			.basic_auth = cfg.upstream_basic_auth,
			.headers = cfg.headers,
			.n_headers = cfg.n_headers,
			.ca_file = cfg.ca,
			.cert_file = cfg.cert,
			.key_file = cfg.key,
			.insecure = cfg.insecure,
			.timeout_ms = (unsigned)(cfg.upstream_timeout_s * 1000),
			.max_request_bytes = cfg.batch_max_bytes,
			.backoff_max_ms = cfg.retry_max_backoff_s * 1000,
			.user_agent = "braid-agent/" BRAID_VERSION,
		};

		r = store__open(&a.so, &err, &fwd_store);
		if (r == 0)
			r = forward__new(&fo, fwd_store, &err, &a.fwd);
		if (r < 0) {
			cmd_error("agent: %s", err.msg);
			goto cleanup;
		}
	}
	/* before any thread exists (capabilities are per thread, inherited) */
	if (!cfg.keep_caps) {
		uint64_t keep = caps_to_keep(&cfg);

		if (low_port(&cfg))
			keep |= cap_bit(CAP_NET_BIND_SERVICE);
		r = drop_caps(keep, &kept);
		if (r < 0) {
			cmd_error("agent: dropping capabilities: %s", strerror(-r));
			goto cleanup;
		}
	}

	io.listen = cfg.listen;
	io.n_listen = cfg.n_listen;
	io.auth_token = cfg.auth_token;
	io.basic_auth = cfg.basic_auth;
	io.store = a.so;
	io.extra_metrics = agent_metrics;
	io.extra_metrics_ctx = &a;
	io.page = agent_page;
	io.page_ctx = &a;
	r = ingest__start(&io, &err, &in);
	if (r < 0) {
		cmd_error("agent: %s", err.msg);
		goto cleanup;
	}
	if (a.col) {
		r = pthread_create(&t_col, NULL, collector_main, &a);
		if (r) {
			cmd_error("agent: starting the collector: %s", strerror(r));
			goto stop;
		}
		col_started = true;
	}
	r = pthread_create(&t_merge, NULL, merger_main, &a);
	if (r) {
		cmd_error("agent: starting the merger: %s", strerror(r));
		goto stop;
	}
	merge_started = true;
	if (a.fwd) {
		r = pthread_create(&t_fwd, NULL, forward_main, &a);
		if (r) {
			cmd_error("agent: starting the forwarder: %s", strerror(r));
			goto stop;
		}
		fwd_started = true;
	}

	for (size_t i = 0; ingest__address(in, i); i++) {
		const char *addr = ingest__address(in, i);

		fprintf(stderr, "braid: agent: listening on %s%s\n",
			strncmp(addr, "unix:", 5) == 0 ? "" : "http://", addr);
	}
	if (a.col) {
		struct collector_stats cs;

		if (collector__stats(a.col, &cs) == 0)
			fprintf(stderr, "braid: agent: sampling %u CPUs at %u Hz\n",
				cs.sampler.cpus, collector__freq(a.col));
	} else {
		fprintf(stderr, "braid: agent: no eBPF sampling (--no-ebpf): SDK profiles only\n");
	}
	if (cfg.upstream)
		fprintf(stderr, "braid: agent: sending to %s (%s API)\n", cfg.upstream,
			forward__api_name(cfg.api));
	else
		fprintf(stderr,
			"braid: agent: no --upstream: profiles stay in the store %s for braid "
			"report\n",
			store__path(maint));
	if (!cfg.keep_caps)
		fprintf(stderr, "braid: agent: capabilities kept: %#" PRIx64 "\n", kept);
	fflush(stderr);

	last_maintain = last_summary = now_ns();
	for (;;) {
		struct timespec tick = {1, 0};
		int sig = sigtimedwait(&sigs, NULL, &tick);
		int64_t now = now_ns();
		int fatal;

		if (sig == SIGINT || sig == SIGTERM)
			break;
		pthread_mutex_lock(&a.lock);
		fatal = a.fatal;
		pthread_mutex_unlock(&a.lock);
		if (fatal) {
			cmd_error("agent: a stage failed (%s): stopping", strerror(-fatal));
			goto stop;
		}
		if (now - last_stats >= STORE_STATS_EVERY_S * 1000000000ll) {
			struct store_stats ss;

			last_stats = now;
			if (store__stats(maint, false, &ss) == 0) {
				pthread_mutex_lock(&a.lock);
				a.store_st = ss;
				a.have_store = true;
				pthread_mutex_unlock(&a.lock);
			}
		}
		if (now - last_maintain >= MAINTAIN_EVERY_S * 1000000000ll) {
			last_maintain = now;
			if (store__maintain(maint, now, NULL) < 0)
				cmd_error("agent: store cleanup failed: %s", store__errmsg(maint));
			/* Hand the heap's free pages back to the kernel: a burst (a
			 * big window, a report, a backlog to send) leaves free
			 * memory in glibc's per-thread arenas, which an agent that
			 * runs for months would otherwise keep as RSS. */
			malloc_trim(0);
		}
		if (cfg.verbose && now - last_summary >= 60 * 1000000000ll) {
			last_summary = now;
			log_summary(&a, "last minute's totals");
		}
	}
	fprintf(stderr, "braid: agent: stopping\n");
	status = 0;
stop:
	stop_start = now_ns();
	/* 1. no new pushes (requests in progress finish and are stored) */
	ingest__stop(in);
	in = NULL;
	/* 2. the last eBPF window */
	if (col_started) {
		uint64_t one = 1;

		if (write(a.stop_efd, &one, sizeof(one)) < 0)
			cmd_error("agent: waking the collector: %s", strerror(errno));
		pthread_join(t_col, NULL);
	}
	/* 3. the final merge pass */
	if (merge_started) {
		pthread_mutex_lock(&a.lock);
		a.stop_merger = true;
		pthread_cond_broadcast(&a.cond);
		pthread_mutex_unlock(&a.lock);
		pthread_join(t_merge, NULL);
	}
	/* 4. the outbox, for what is left of --flush-timeout */
	if (fwd_started) {
		struct timespec until;
		int64_t deadline = stop_start + cfg.flush_timeout_s * 1000000000;

		pthread_mutex_lock(&a.lock);
		a.flush_deadline_ns = deadline;
		a.stop_forward = true;
		pthread_cond_broadcast(&a.cond);
		pthread_mutex_unlock(&a.lock);
		/* the request in progress may finish (its items are then not sent
		 * twice), the pass stops after it; one hanging past the deadline
		 * is cut */
		forward__stop_soon(a.fwd);
		until.tv_sec = deadline / 1000000000;
		until.tv_nsec = deadline % 1000000000;
		if (pthread_timedjoin_np(t_fwd, NULL, &until) != 0) {
			forward__interrupt(a.fwd);
			pthread_join(t_fwd, NULL);
		}
	}
	if (a.fatal && status == 0)
		status = 1;
	log_summary(&a, "stopped");
	if (cfg.upstream) {
		struct store_stats ss;

		if (store__stats(maint, false, &ss) == 0 && ss.tables[STORE_TABLE_OUTBOX].rows)
			fprintf(stderr,
				"braid: agent: %" PRId64
				" profiles wait in the store's outbox: they are sent at the "
				"next start\n",
				ss.tables[STORE_TABLE_OUTBOX].rows);
	}
cleanup:
	ingest__stop(in);
	forward__free(a.fwd);
	store__close(fwd_store);
	collector__close(a.col);
	if (a.stop_efd >= 0)
		close(a.stop_efd);
	store__close(maint);
	settings_free(&st);
	return status;
}
