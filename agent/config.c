/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's options: flags, BRAID_* variables, the config file. */
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

const struct opt opts[N_OPTS] = {
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

void settings_free(struct settings *st)
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
int configure(int argc, char **argv, struct settings *st, struct config *cfg)
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
			agent_usage(stdout);
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
			agent_usage(stderr);
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
