/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's configuration: one table of options, read from flags, then
 * BRAID_* variables, then the config file, then the defaults, into a typed
 * struct agent_config (docs/agent.md, "Configuration"). braid agent and
 * braid ingest take it the same way; each has its own subset of the
 * options. */
#define _GNU_SOURCE
#include "agent.h"

#include "collector/collector.h"
#include "ingest/ingest.h"
#include "merger/merger.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONFIG_FILE (1u << 20)
#define MAX_CONFIG_LINE 8192
#define MAX_SECRET	1024 /* bytes of a secret read from a file */

/* ---- the options ----------------------------------------------------------------- */

enum okind { O_STR, O_SECRET, O_BOOL, O_UINT, O_SIZE, O_DURATION, O_CHOICE, O_LIST };

/* which commands take an option */
#define FOR_AGENT  (1u << AGENT_CMD_AGENT)
#define FOR_INGEST (1u << AGENT_CMD_INGEST)
#define FOR_BOTH   (FOR_AGENT | FOR_INGEST)

struct opt {
	const char *name;
	enum okind kind;
	const char *def; /* the default as text; NULL: none */
	const char *choices;
	uint64_t min, max; /* O_UINT; O_DURATION in seconds; O_SIZE in bytes */
	unsigned cmds;
};

enum {
	OPT_LISTEN,
	OPT_AUTH_TOKEN,
	OPT_AUTH_TOKEN_FILE,
	OPT_BASIC_AUTH,
	OPT_BASIC_AUTH_FILE,
	OPT_THREADS,
	OPT_MAX_CONNECTIONS,
	OPT_TIMEOUT,
	OPT_MAX_BODY,
	OPT_RETRY_AFTER,
	OPT_DATA_DIR,
	OPT_STORE_MAX_BYTES,
	OPT_RETENTION,
	OPT_SYNC,
	OPT_NO_EBPF,
	OPT_FREQ,
	OPT_NO_KERNEL,
	OPT_UNWIND,
	OPT_UNWIND_MEMORY,
	OPT_CGROUP,
	OPT_GRACE,
	OPT_COLLECT_INTERVAL,
	OPT_SDK_CPU_NAME,
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

/* Every option's default is here, and only here: agent_config__default
 * converts these texts as it would a flag's. */
static const struct opt opts[N_OPTS] = {
	[OPT_LISTEN] = {"listen", O_LIST, INGEST_DEFAULT_LISTEN, .cmds = FOR_BOTH},
	[OPT_AUTH_TOKEN] = {"auth-token", O_SECRET, .cmds = FOR_BOTH},
	[OPT_AUTH_TOKEN_FILE] = {"auth-token-file", O_STR, .cmds = FOR_BOTH},
	[OPT_BASIC_AUTH] = {"basic-auth", O_SECRET, .cmds = FOR_BOTH},
	[OPT_BASIC_AUTH_FILE] = {"basic-auth-file", O_STR, .cmds = FOR_BOTH},
	[OPT_THREADS] = {"threads", O_UINT, NULL, NULL, 1, 1024, FOR_INGEST},
	[OPT_MAX_CONNECTIONS] = {"max-connections", O_UINT,
				 UTIL_STR(INGEST_DEFAULT_MAX_CONNECTIONS), NULL, 1, 1000000,
				 FOR_INGEST},
	[OPT_TIMEOUT] = {"timeout", O_UINT, UTIL_STR(INGEST_DEFAULT_TIMEOUT_S), NULL, 1, 86400,
			 FOR_INGEST},
	[OPT_MAX_BODY] = {"max-body", O_SIZE, "32M", NULL, 1, STORE_MAX_PAYLOAD, FOR_INGEST},
	[OPT_RETRY_AFTER] = {"retry-after", O_UINT, UTIL_STR(INGEST_DEFAULT_RETRY_AFTER_S), NULL, 1,
			     86400, FOR_INGEST},
	[OPT_DATA_DIR] = {"data-dir", O_STR, .cmds = FOR_BOTH},
	[OPT_STORE_MAX_BYTES] = {"store-max-bytes", O_SIZE, "1G", NULL, STORE_MIN_MAX_BYTES,
				 UINT64_MAX, FOR_BOTH},
	[OPT_RETENTION] = {"retention", O_DURATION, "24h", NULL, 60, 365 * 86400, FOR_AGENT},
	[OPT_SYNC] = {"sync", O_CHOICE, "normal", "normal|full", .cmds = FOR_BOTH},
	[OPT_NO_EBPF] = {"no-ebpf", O_BOOL, "false", .cmds = FOR_AGENT},
	[OPT_FREQ] = {"freq", O_UINT, "97", NULL, 1, COLLECTOR_MAX_FREQ, FOR_AGENT},
	[OPT_NO_KERNEL] = {"no-kernel", O_BOOL, "false", .cmds = FOR_AGENT},
	[OPT_UNWIND] = {"unwind", O_CHOICE, "cfi", "cfi|fp|cfi-loop", .cmds = FOR_AGENT},
	[OPT_UNWIND_MEMORY] = {"unwind-memory", O_SIZE, "16M", NULL, COLLECTOR_UNWIND_MIN_BYTES,
			       COLLECTOR_UNWIND_MAX_BYTES, FOR_AGENT},
	[OPT_CGROUP] = {"cgroup", O_STR, .cmds = FOR_AGENT},
	[OPT_GRACE] = {"grace", O_DURATION, "75s", NULL, 1, 3600, FOR_AGENT},
	[OPT_COLLECT_INTERVAL] = {"collect-interval", O_DURATION, "15s", NULL, 1, 3600, FOR_AGENT},
	[OPT_SDK_CPU_NAME] = {"sdk-cpu-name", O_STR, MERGER_DEFAULT_SDK_CPU_NAME,
			      .cmds = FOR_AGENT},
	[OPT_UPSTREAM] = {"upstream", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_API] = {"upstream-api", O_CHOICE, "push", "push|ingest", .cmds = FOR_AGENT},
	[OPT_TENANT] = {"tenant", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_TOKEN] = {"upstream-token", O_SECRET, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_TOKEN_FILE] = {"upstream-token-file", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_BASIC_AUTH] = {"upstream-basic-auth", O_SECRET, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_BASIC_AUTH_FILE] = {"upstream-basic-auth-file", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_HEADER] = {"upstream-header", O_LIST, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_CA] = {"upstream-ca", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_CERT] = {"upstream-cert", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_KEY] = {"upstream-key", O_STR, .cmds = FOR_AGENT},
	[OPT_UPSTREAM_INSECURE] = {"upstream-insecure", O_BOOL, "false", .cmds = FOR_AGENT},
	[OPT_UPSTREAM_TIMEOUT] = {"upstream-timeout", O_DURATION, "30s", NULL, 1, 600, FOR_AGENT},
	[OPT_BATCH_MAX_BYTES] = {"batch-max-bytes", O_SIZE, "1M", NULL, 1024, 64u << 20, FOR_AGENT},
	[OPT_RETRY_MAX_BACKOFF] = {"retry-max-backoff", O_DURATION, "5m", NULL, 1, 3600, FOR_AGENT},
	[OPT_FLUSH_TIMEOUT] = {"flush-timeout", O_DURATION, "5s", NULL, 0, 600, FOR_AGENT},
	[OPT_KEEP_CAPS] = {"keep-caps", O_BOOL, "false", .cmds = FOR_AGENT},
	[OPT_VERBOSE] = {"verbose", O_BOOL, "false", .cmds = FOR_AGENT},
};

enum source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

/* One option's value, as given: text (lists: several) and where from. */
struct val {
	enum source src;
	const char *text[AGENT_MAX_LIST];
	size_t n;
	char where[320]; /* "--freq", "BRAID_FREQ", "/etc/braid/agent.conf:12" */
};

/* The values of every option and the memory behind them. */
struct agent_settings {
	enum agent_command cmd;
	const char *name; /* the command's, for messages */
	struct val v[N_OPTS];
	const char *config_file;
	char *file_text; /* the config file, split in place */
	char *env_copies[N_OPTS];
	char *secrets[4]; /* read from files */
};

static const char *const command_names[] = {
	[AGENT_CMD_AGENT] = "agent",
	[AGENT_CMD_INGEST] = "ingest",
};

static bool takes(enum agent_command cmd, int i)
{
	return opts[i].cmds & (1u << cmd);
}

/* ---- reading the options ------------------------------------------------------------ */

static int find_opt(enum agent_command cmd, const char *name, size_t len)
{
	for (int i = 0; i < N_OPTS; i++)
		if (takes(cmd, i) && strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0)
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
static int set_val(struct agent_settings *st, int i, enum source src, const char *text,
		   const char *where, struct errbuf *err)
{
	const struct opt *o = &opts[i];
	struct val *v = &st->v[i];

	if (v->src > src)
		return 0;
	if (v->src < src) {
		v->src = src;
		v->n = 0;
	}
	if (o->kind != O_LIST)
		v->n = 0;
	if (v->n == AGENT_MAX_LIST)
		return errbuf__set(err, -EINVAL, "%s: %s: --%s given more than %d times", st->name,
				   where, o->name, AGENT_MAX_LIST);
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
static int read_config_file(struct agent_settings *st, struct errbuf *err)
{
	struct dynbuf b;
	char *line, *next;
	unsigned lineno = 0;
	int r = 0;

	dynbuf__init(&b, MAX_CONFIG_FILE + 1);
	r = util__read_file(st->config_file, MAX_CONFIG_FILE, err, &b);
	if (r < 0) {
		struct errbuf e = *err;

		dynbuf__free(&b);
		return errbuf__set(err, r, "%s: config file: %s", st->name, e.msg);
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
		if (strlen(name) > MAX_CONFIG_LINE)
			return errbuf__set(err, -EINVAL, "%s: %s: a line over %d bytes", st->name,
					   where, MAX_CONFIG_LINE);
		eq = strchr(name, '=');
		if (!eq)
			return errbuf__set(err, -EINVAL,
					   "%s: %s: expected \"name = value\", not \"%s\"",
					   st->name, where, name);
		*eq = '\0';
		value = trim(eq + 1);
		name = trim(name);
		if (strncmp(name, "--", 2) == 0)
			name += 2;
		i = find_opt(st->cmd, name, strlen(name));
		if (i < 0)
			return errbuf__set(
				err, -EINVAL,
				"%s: %s: unknown option \"%s\" (braid %s --help lists them)",
				st->name, where, name, st->name);
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
		r = set_val(st, i, SRC_FILE, value, where, err);
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

static int read_env(struct agent_settings *st, struct errbuf *err)
{
	for (int i = 0; i < N_OPTS; i++) {
		char name[64], *copy, *save = NULL, *part;
		const char *value;
		int r;

		if (!takes(st->cmd, i))
			continue;
		env_name(opts[i].name, name, sizeof(name));
		value = getenv(name);
		if (!value)
			continue;
		if (opts[i].kind != O_LIST) {
			r = set_val(st, i, SRC_ENV, value, name, err);
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
			r = set_val(st, i, SRC_ENV, part, name, err);
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

/* A whole number from min to max. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end || errno || *s == '-' || v < min || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* Where a value came from, for messages: "--freq", "BRAID_FREQ (--freq)"
 * or "FILE:LINE (--freq)". */
static const char *where(const struct agent_settings *st, int i, char *buf, size_t size)
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

/* Checks option i's value (its texts, from w) and sets it in cfg. */
static int set_option(struct agent_config *cfg, int i, const char *const *text, size_t n,
		      const char *name, const char *w, struct errbuf *err)
{
	const struct opt *o = &opts[i];
	const char *t = text[0];
	bool b = false;
	unsigned u = 0;
	uint64_t size = 0;
	int64_t d = 0;

	switch (o->kind) {
	case O_BOOL:
		if (!parse_bool(t, &b))
			return errbuf__set(err, -EINVAL, "%s: %s takes true or false, not '%s'",
					   name, w, t);
		break;
	case O_UINT:
		if (parse_uint(t, o->min, o->max, &u) < 0)
			return errbuf__set(err, -EINVAL,
					   "%s: %s takes a whole number from %u to %u, not '%s'",
					   name, w, (unsigned)o->min, (unsigned)o->max, t);
		break;
	case O_SIZE: {
		char most[48] = "";

		if (util__parse_size(t, &size) < 0)
			return errbuf__set(
				err, -EINVAL,
				"%s: %s takes a size such as 4096, 512K or 32M, not '%s'", name, w,
				t);
		if (o->max != UINT64_MAX)
			snprintf(most, sizeof(most), ", and at most %" PRIu64 "M", o->max >> 20);
		if (size < o->min || size > o->max)
			return errbuf__set(err, -EINVAL,
					   "%s: %s: %s is out of range (at least %" PRIu64
					   " bytes%s)",
					   name, w, t, o->min, most);
		break;
	}
	case O_DURATION:
		if (parse_duration(t, &d) < 0 || (uint64_t)d < o->min || (uint64_t)d > o->max)
			return errbuf__set(err, -EINVAL,
					   "%s: %s takes a duration from %" PRIu64 "s to %" PRIu64
					   "s such as 30s, 5m or 24h, not '%s'",
					   name, w, o->min, o->max, t);
		break;
	case O_CHOICE: {
		const char *c = o->choices;
		size_t len = strlen(t);
		bool ok = false;

		while (c && *c && !ok) {
			size_t clen = strcspn(c, "|");

			ok = clen == len && strncmp(c, t, len) == 0;
			c += clen + (c[clen] == '|');
		}
		if (!ok)
			return errbuf__set(err, -EINVAL, "%s: %s takes %s, not '%s'", name, w,
					   o->choices, t);
		break;
	}
	default:
		break;
	}

	switch (i) {
	case OPT_LISTEN:
		for (size_t j = 0; j < n; j++)
			cfg->listen[j] = text[j];
		cfg->n_listen = n;
		break;
	case OPT_AUTH_TOKEN:
		cfg->auth_token = t;
		break;
	case OPT_BASIC_AUTH:
		cfg->basic_auth = t;
		break;
	case OPT_THREADS:
		cfg->threads = u;
		break;
	case OPT_MAX_CONNECTIONS:
		cfg->max_connections = u;
		break;
	case OPT_TIMEOUT:
		cfg->timeout_s = u;
		break;
	case OPT_MAX_BODY:
		cfg->max_body = size;
		break;
	case OPT_RETRY_AFTER:
		cfg->retry_after_s = u;
		break;
	case OPT_DATA_DIR:
		cfg->data_dir = t;
		break;
	case OPT_STORE_MAX_BYTES:
		cfg->store_max_bytes = size;
		break;
	case OPT_RETENTION:
		cfg->retention_s = d;
		break;
	case OPT_SYNC:
		cfg->sync = strcmp(t, "full") == 0 ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
		break;
	case OPT_NO_EBPF:
		cfg->with_collector = !b;
		break;
	case OPT_FREQ:
		cfg->freq = u;
		break;
	case OPT_NO_KERNEL:
		cfg->no_kernel = b;
		break;
	case OPT_UNWIND:
		collector_unwind__mode_parse(t, &cfg->unwind); /* one of the choices */
		break;
	case OPT_UNWIND_MEMORY:
		cfg->unwind_bytes = size;
		break;
	case OPT_CGROUP:
		cfg->cgroup = t;
		break;
	case OPT_GRACE:
		cfg->grace_s = d;
		break;
	case OPT_COLLECT_INTERVAL:
		cfg->collect_interval_s = d;
		break;
	case OPT_SDK_CPU_NAME:
		if (!merger__valid_profile_name(t))
			return errbuf__set(err, -EINVAL,
					   "%s: %s takes a profile type name of letters, digits "
					   "and '_' (at most %d, not starting with a digit or "
					   "\"__\"), such as process_cpu_sdk, not '%s'",
					   name, w, MERGER_MAX_PROFILE_NAME, t);
		cfg->sdk_cpu_name = t;
		break;
	case OPT_UPSTREAM:
		cfg->upstream = t[0] ? t : NULL;
		break;
	case OPT_UPSTREAM_API:
		cfg->api = strcmp(t, "ingest") == 0 ? FORWARD_API_INGEST : FORWARD_API_PUSH;
		break;
	case OPT_TENANT:
		cfg->tenant = t;
		break;
	case OPT_UPSTREAM_TOKEN:
		cfg->upstream_token = t;
		break;
	case OPT_UPSTREAM_BASIC_AUTH:
		cfg->upstream_basic_auth = t;
		break;
	case OPT_UPSTREAM_HEADER:
		for (size_t j = 0; j < n; j++)
			cfg->headers[j] = text[j];
		cfg->n_headers = n;
		break;
	case OPT_UPSTREAM_CA:
		cfg->ca = t;
		break;
	case OPT_UPSTREAM_CERT:
		cfg->cert = t;
		break;
	case OPT_UPSTREAM_KEY:
		cfg->key = t;
		break;
	case OPT_UPSTREAM_INSECURE:
		cfg->insecure = b;
		break;
	case OPT_UPSTREAM_TIMEOUT:
		cfg->upstream_timeout_s = d;
		break;
	case OPT_BATCH_MAX_BYTES:
		cfg->batch_max_bytes = size;
		break;
	case OPT_RETRY_MAX_BACKOFF:
		cfg->retry_max_backoff_s = d;
		break;
	case OPT_FLUSH_TIMEOUT:
		cfg->flush_timeout_s = d;
		break;
	case OPT_KEEP_CAPS:
		cfg->keep_caps = b;
		break;
	case OPT_VERBOSE:
		cfg->verbose = b;
		break;
	default: /* the -file forms: read by resolve */
		break;
	}
	return 0;
}

void agent_config__default(struct agent_config *cfg, enum agent_command cmd)
{
	*cfg = (struct agent_config){0};
	for (int i = 0; i < N_OPTS; i++)
		if (opts[i].def)
			set_option(cfg, i, &opts[i].def, 1, "", "", NULL);
	cfg->name = command_names[cmd];
	cfg->with_collector = cmd == AGENT_CMD_AGENT;
	cfg->with_merger = cmd == AGENT_CMD_AGENT;
	/* braid ingest keeps the capabilities it was started with, as it
	 * always did: it has no --keep-caps to take a drop back */
	if (cmd == AGENT_CMD_INGEST)
		cfg->keep_caps = true;
}

/* A secret read from a file: its first line, without the line break, 1 to
 * MAX_SECRET bytes; malloc'ed. NULL with a message in err. */
static char *read_secret(const char *name, const char *path, struct errbuf *err)
{
	struct dynbuf b;
	char *nl, *s = NULL;

	dynbuf__init(&b, MAX_SECRET + 2);
	if (util__read_file(path, MAX_SECRET + 1, err, &b) < 0) {
		struct errbuf e = *err;

		errbuf__set(err, -EINVAL, "%s: %s", name, e.msg);
		goto cleanup;
	}
	nl = b.data ? strpbrk(b.data, "\r\n") : NULL;
	if (nl)
		*nl = '\0';
	if (!b.data || !b.data[0] || strlen(b.data) > MAX_SECRET) {
		errbuf__set(err, -EINVAL, "%s: %s: expected one line of 1 to %d bytes", name, path,
			    MAX_SECRET);
		goto cleanup;
	}
	s = strdup(b.data);
	if (!s)
		errbuf__set(err, -ENOMEM, "%s: out of memory", name);
cleanup:
	if (b.data)
		explicit_bzero(b.data, b.len);
	dynbuf__free(&b);
	return s;
}

/* Converts and checks every value into cfg. */
static int resolve(struct agent_settings *st, struct agent_config *cfg, struct errbuf *err)
{
	static const int pairs[4][2] = {
		{OPT_AUTH_TOKEN, OPT_AUTH_TOKEN_FILE},
		{OPT_BASIC_AUTH, OPT_BASIC_AUTH_FILE},
		{OPT_UPSTREAM_TOKEN, OPT_UPSTREAM_TOKEN_FILE},
		{OPT_UPSTREAM_BASIC_AUTH, OPT_UPSTREAM_BASIC_AUTH_FILE},
	};
	const char **secret[4] = {&cfg->auth_token, &cfg->basic_auth, &cfg->upstream_token,
				  &cfg->upstream_basic_auth};
	char w[400];
	int r;

	agent_config__default(cfg, st->cmd);
	for (int i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		struct val *v = &st->v[i];

		if (!takes(st->cmd, i))
			continue;
		if (!v->n && o->def) {
			v->text[0] = o->def;
			v->n = 1;
			v->src = SRC_DEFAULT;
		}
		if (!v->n)
			continue;
		r = set_option(cfg, i, v->text, v->n, st->name, where(st, i, w, sizeof(w)), err);
		if (r < 0)
			return r;
	}
	/* secrets: given, or read from a file; not both */
	for (int k = 0; k < 4; k++) {
		const struct val *direct = &st->v[pairs[k][0]];
		const struct val *file = &st->v[pairs[k][1]];

		if (direct->n && file->n)
			return errbuf__set(err, -EINVAL, "%s: give --%s or --%s, not both",
					   st->name, opts[pairs[k][0]].name,
					   opts[pairs[k][1]].name);
		if (file->n) {
			st->secrets[k] = read_secret(st->name, file->text[0], err);
			if (!st->secrets[k])
				return -EINVAL;
			*secret[k] = st->secrets[k];
		}
	}
	if (!cfg->upstream) {
		for (int i = OPT_TENANT; i <= OPT_BATCH_MAX_BYTES; i++)
			if (st->v[i].src != SRC_DEFAULT && st->v[i].n)
				return errbuf__set(err, -EINVAL,
						   "%s: %s is set, but --upstream is not", st->name,
						   where(st, i, w, sizeof(w)));
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
		struct errbuf e = {{0}};

		if (forward__check_options(&fo, &e) < 0)
			return errbuf__set(err, -EINVAL, "%s: %s", st->name, e.msg);
	}
	if (st->cmd == AGENT_CMD_AGENT && !cfg->with_collector &&
	    (st->v[OPT_FREQ].src != SRC_DEFAULT || st->v[OPT_CGROUP].src != SRC_DEFAULT ||
	     st->v[OPT_NO_KERNEL].src != SRC_DEFAULT))
		return errbuf__set(
			err, -EINVAL,
			"%s: --freq, --cgroup and --no-kernel mean nothing with --no-ebpf",
			st->name);
	return 0;
}

void agent_settings__print(const struct agent_settings *st, FILE *f)
{
	fprintf(f, "# braid %s: the effective configuration (%s%s)\n", st->name,
		st->config_file ? "config file " : "no config file",
		st->config_file ? st->config_file : "");
	for (int i = 0; i < N_OPTS; i++) {
		const struct val *v = &st->v[i];

		if (!takes(st->cmd, i))
			continue;
		if (!v->n) {
			if (i == OPT_DATA_DIR)
				fprintf(f, "%-26s = %-30s # default\n", opts[i].name,
					store__default_data_dir());
			else
				fprintf(f, "# %-24s   (not set)\n", opts[i].name);
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
				fprintf(f, "%-26s = %-30s # default\n", opts[i].name, text);
			else
				fprintf(f, "%-26s = %-30s # %s: %s\n", opts[i].name, text,
					source_name(v), v->where);
		}
	}
}

void agent_settings__free(struct agent_settings *st)
{
	if (!st)
		return;
	free(st->file_text);
	for (int i = 0; i < N_OPTS; i++)
		free(st->env_copies[i]);
	for (int k = 0; k < 4; k++) {
		if (st->secrets[k])
			explicit_bzero(st->secrets[k], strlen(st->secrets[k]));
		free(st->secrets[k]);
	}
	free(st);
}

int agent_settings__read(enum agent_command cmd, int argc, char **argv, struct agent_config *cfg,
			 struct agent_settings **ret_settings, struct errbuf *err)
{
	enum { L_CONFIG = 1000, L_PRINT, L_HELP, L_BASE };
	struct option longopts[N_OPTS + 4];
	struct agent_settings *st;
	bool print = false;
	int c, n = 0, r;

	err->msg[0] = '\0';
	st = calloc(1, sizeof(*st));
	*ret_settings = st;
	if (!st)
		return -ENOMEM;
	st->cmd = cmd;
	st->name = command_names[cmd];
	for (int i = 0; i < N_OPTS; i++)
		if (takes(cmd, i))
			longopts[n++] = (struct option){opts[i].name,
							opts[i].kind == O_BOOL ? optional_argument
									       : required_argument,
							NULL, L_BASE + i};
	longopts[n++] = (struct option){"config", required_argument, NULL, L_CONFIG};
	longopts[n++] = (struct option){"print-config", no_argument, NULL, L_PRINT};
	longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[n] = (struct option){NULL, 0, NULL, 0};
	/* 0, not 1: glibc then also forgets where a previous parse stopped
	 * inside a word (a caller may read several command lines) */
	optind = 0;
	while ((c = getopt_long(argc, argv, takes(cmd, OPT_VERBOSE) ? "vh" : "h", longopts,
				NULL)) != -1) {
		char flag[80];

		if (c == 'h')
			return AGENT_SETTINGS_HELP;
		if (c == L_CONFIG) {
			st->config_file = optarg;
			continue;
		}
		if (c == L_PRINT) {
			print = true;
			continue;
		}
		if (c == 'v')
			c = L_BASE + OPT_VERBOSE;
		if (c < L_BASE || c >= L_BASE + N_OPTS)
			return -EINVAL; /* getopt said why */
		c -= L_BASE;
		snprintf(flag, sizeof(flag), "--%s", opts[c].name);
		r = set_val(st, c, SRC_FLAG, opts[c].kind == O_BOOL && !optarg ? "true" : optarg,
			    flag, err);
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return errbuf__set(err, -EINVAL, "%s: unexpected argument '%s'", st->name,
				   argv[optind]);
	r = read_env(st, err);
	if (r < 0)
		return r;
	if (!st->config_file && getenv("BRAID_CONFIG") && getenv("BRAID_CONFIG")[0])
		st->config_file = getenv("BRAID_CONFIG");
	if (st->config_file) {
		r = read_config_file(st, err);
		if (r < 0)
			return r;
	}
	r = resolve(st, cfg, err);
	if (r < 0)
		return r;
	return print ? AGENT_SETTINGS_PRINT : 0;
}
