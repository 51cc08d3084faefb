/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/ without the binary: how both commands read their configuration
 * (defaults, the config file, BRAID_* variables, flags, in that order of
 * strength, and each refusal's message), and the daemon itself run as
 * `braid ingest` does, on a Unix socket, answering /ready and /metrics and
 * stopping on agent__stop with nothing lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "ingest/ingest.h"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[64];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/braid-test-agent-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	unsetenv("BRAID_FREQ");
	unsetenv("BRAID_SYNC");
	unsetenv("BRAID_LISTEN");
	unsetenv("BRAID_CONFIG");
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name; the path in out. */
static void put_file(const char *name, const char *text, char *out, size_t size)
{
	FILE *f;

	snprintf(out, size, "%s/%s", tmpdir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* agent_settings__read on a command line given as one string of words. */
static int read_args(enum agent_command cmd, const char *line, struct agent_config *cfg,
		     struct agent_settings **st, struct errbuf *err)
{
	static char buf[8192];
	char *argv[200];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	argv[argc++] = cmd == AGENT_CMD_AGENT ? "agent" : "ingest";
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 199;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	return agent_settings__read(cmd, argc, argv, cfg, st, err);
}

/* What agent_settings__print writes. */
static char *printed(const struct agent_settings *st)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	agent_settings__print(st, f);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* The line of a printed configuration that sets name. */
static char *line_of(const char *text, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len > n && strncmp(p, name, n) == 0 && p[n] == ' ') {
			snprintf(out, size, "%.*s", (int)len, p);
			return out;
		}
		p = nl ? nl + 1 : NULL;
	}
	out[0] = '\0';
	return out;
}

/* ---- configuration ----------------------------------------------------- */

static void test_defaults(void **state)
{
	struct agent_config a, i;

	agent_config__default(&a, AGENT_CMD_AGENT);
	assert_string_equal(a.name, "agent");
	assert_true(a.with_collector);
	assert_true(a.with_merger);
	assert_false(a.keep_caps);
	assert_int_equal(a.n_listen, 1);
	assert_string_equal(a.listen[0], INGEST_DEFAULT_LISTEN);
	assert_int_equal(a.freq, 97);
	assert_int_equal(a.store_max_bytes, 1ull << 30);
	assert_int_equal(a.retention_s, 24 * 3600);
	assert_int_equal(a.sync, STORE_SYNC_NORMAL);
	assert_int_equal(a.grace_s, 75);
	assert_int_equal(a.batch_max_bytes, 1u << 20);
	assert_null(a.upstream);

	/* braid ingest: the same daemon without the collector and the merger,
	 * and the capabilities it was started with */
	agent_config__default(&i, AGENT_CMD_INGEST);
	assert_string_equal(i.name, "ingest");
	assert_false(i.with_collector);
	assert_false(i.with_merger);
	assert_true(i.keep_caps);
	assert_string_equal(i.listen[0], INGEST_DEFAULT_LISTEN);
	assert_int_equal(i.max_body, 32u << 20);
	assert_int_equal(i.max_connections, INGEST_DEFAULT_MAX_CONNECTIONS);
}

static void test_precedence(void **state)
{
	struct agent_config cfg;
	struct agent_settings *st = NULL;
	struct errbuf err;
	char path[256], args[512], line[512], *text;

	put_file("agent.conf",
		 "# comment\n"
		 "freq = 19\n"
		 "sync = full   # fsync every commit\n"
		 "--retention = 2h\n"
		 "upstream-header = \"X-A: b #c\"\n"
		 "upstream = http://127.0.0.1:4041\n",
		 path, sizeof(path));

	/* the file alone */
	snprintf(args, sizeof(args), "--config %s", path);
	assert_int_equal(read_args(AGENT_CMD_AGENT, args, &cfg, &st, &err), 0);
	assert_int_equal(cfg.freq, 19);
	assert_int_equal(cfg.sync, STORE_SYNC_FULL);
	assert_int_equal(cfg.retention_s, 7200);
	assert_int_equal(cfg.n_headers, 1);
	assert_string_equal(cfg.headers[0], "X-A: b #c");
	assert_string_equal(cfg.upstream, "http://127.0.0.1:4041");
	agent_settings__free(st);

	/* a variable beats the file, also when the file comes from BRAID_CONFIG */
	setenv("BRAID_FREQ", "49", 1);
	setenv("BRAID_CONFIG", path, 1);
	assert_int_equal(read_args(AGENT_CMD_AGENT, "", &cfg, &st, &err), 0);
	assert_int_equal(cfg.freq, 49);
	assert_int_equal(cfg.sync, STORE_SYNC_FULL);
	agent_settings__free(st);

	/* a flag beats both; --print-config says where each value came from */
	assert_int_equal(read_args(AGENT_CMD_AGENT, "--freq 29 --print-config", &cfg, &st, &err),
			 AGENT_SETTINGS_PRINT);
	assert_int_equal(cfg.freq, 29);
	text = printed(st);
	assert_non_null(strstr(line_of(text, "freq", line, sizeof(line)), "# flag: --freq"));
	snprintf(args, sizeof(args), "# config file: %s:3", path);
	assert_non_null(strstr(line_of(text, "sync", line, sizeof(line)), args));
	assert_non_null(strstr(line_of(text, "grace", line, sizeof(line)), "# default"));
	free(text);
	agent_settings__free(st);

	assert_int_equal(read_args(AGENT_CMD_AGENT, "--help", &cfg, &st, &err),
			 AGENT_SETTINGS_HELP);
	agent_settings__free(st);
}

static void test_lists(void **state)
{
	struct agent_config cfg;
	struct agent_settings *st = NULL;
	struct errbuf err;
	char args[8192];
	size_t n = 0;

	setenv("BRAID_LISTEN", "127.0.0.1:4040, [::1]:4040\nunix:/run/braid.sock\n", 1);
	assert_int_equal(read_args(AGENT_CMD_INGEST, "", &cfg, &st, &err), 0);
	assert_int_equal(cfg.n_listen, 3);
	assert_string_equal(cfg.listen[0], "127.0.0.1:4040");
	assert_string_equal(cfg.listen[1], "[::1]:4040");
	assert_string_equal(cfg.listen[2], "unix:/run/braid.sock");
	agent_settings__free(st);

	/* flags replace the variable's list; both commands take 64 addresses */
	for (int i = 0; i < AGENT_MAX_LIST + 1; i++)
		n += (size_t)snprintf(args + n, sizeof(args) - n, "--listen 127.0.0.1:%d ",
				      5000 + i);
	args[n - strlen("--listen 127.0.0.1:5064 ")] = '\0';
	assert_int_equal(read_args(AGENT_CMD_INGEST, args, &cfg, &st, &err), 0);
	assert_int_equal(cfg.n_listen, AGENT_MAX_LIST);
	assert_string_equal(cfg.listen[63], "127.0.0.1:5063");
	agent_settings__free(st);
	args[strlen(args)] = '-'; /* the 65th --listen again */
	assert_int_equal(read_args(AGENT_CMD_AGENT, args, &cfg, &st, &err), -EINVAL);
	assert_string_equal(err.msg, "agent: --listen: --listen given more than 64 times");
	agent_settings__free(st);
}

/* The message of a refused configuration. */
static void refused(enum agent_command cmd, const char *args, const char *msg)
{
	struct agent_config cfg;
	struct agent_settings *st = NULL;
	struct errbuf err;

	assert_int_equal(read_args(cmd, args, &cfg, &st, &err), -EINVAL);
	assert_string_equal(err.msg, msg);
	agent_settings__free(st);
}

static void test_refusals(void **state)
{
	char path[256], args[300], msg[600];
	struct agent_config cfg;
	struct agent_settings *st = NULL;
	struct errbuf err;

	refused(AGENT_CMD_AGENT, "--freq 0",
		"agent: --freq takes a whole number from 1 to 10000, not '0'");
	refused(AGENT_CMD_AGENT, "--store-max-bytes 12Q",
		"agent: --store-max-bytes takes a size such as 4096, 512K or 32M, not '12Q'");
	refused(AGENT_CMD_AGENT, "--tenant acme", "agent: --tenant is set, but --upstream is not");
	refused(AGENT_CMD_AGENT, "--auth-token x --auth-token-file /nonexistent",
		"agent: give --auth-token or --auth-token-file, not both");
	refused(AGENT_CMD_AGENT, "--no-ebpf --freq 19",
		"agent: --freq, --cgroup and --no-kernel mean nothing with --no-ebpf");
	refused(AGENT_CMD_INGEST, "stray", "ingest: unexpected argument 'stray'");

	setenv("BRAID_SYNC", "sometimes", 1);
	refused(AGENT_CMD_INGEST, "",
		"ingest: BRAID_SYNC (--sync) takes normal|full, not 'sometimes'");
	unsetenv("BRAID_SYNC");

	/* an option of the agent's only is no option of braid ingest's: not
	 * on the command line (getopt says so: err stays empty), not in the
	 * file, and its variable is not read */
	assert_int_equal(read_args(AGENT_CMD_INGEST, "--upstream http://x", &cfg, &st, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "");
	agent_settings__free(st);
	put_file("ingest.conf", "data-dir = /tmp\nfreq = 19\n", path, sizeof(path));
	snprintf(args, sizeof(args), "--config %s", path);
	snprintf(msg, sizeof(msg),
		 "ingest: %s:2: unknown option \"freq\" (braid ingest --help lists them)", path);
	refused(AGENT_CMD_INGEST, args, msg);
	setenv("BRAID_FREQ", "not a number", 1);
	assert_int_equal(read_args(AGENT_CMD_INGEST, "", &cfg, &st, &err), 0);
	agent_settings__free(st);
	unsetenv("BRAID_FREQ");

	put_file("bad.conf", "freq 19\n", path, sizeof(path));
	snprintf(args, sizeof(args), "--config %s", path);
	snprintf(msg, sizeof(msg), "agent: %s:1: expected \"name = value\", not \"freq 19\"", path);
	refused(AGENT_CMD_AGENT, args, msg);
}

static void test_secret_file(void **state)
{
	struct agent_config cfg;
	struct agent_settings *st = NULL;
	struct errbuf err;
	char path[256], args[300], *text, line[512];

	put_file("token", "s3cret\nignored second line\n", path, sizeof(path));
	snprintf(args, sizeof(args), "--auth-token-file %s", path);
	assert_int_equal(read_args(AGENT_CMD_INGEST, args, &cfg, &st, &err), 0);
	assert_string_equal(cfg.auth_token, "s3cret");
	agent_settings__free(st);

	/* printed, a secret shows its length only */
	assert_int_equal(read_args(AGENT_CMD_INGEST, "--auth-token hunter2", &cfg, &st, &err), 0);
	text = printed(st);
	assert_null(strstr(text, "hunter2"));
	assert_non_null(
		strstr(line_of(text, "auth-token", line, sizeof(line)), "<secret, 7 bytes>"));
	free(text);
	agent_settings__free(st);
}

/* ---- the daemon -------------------------------------------------------- */

struct run {
	struct agent_config cfg;
	struct errbuf err;
	int ret;
};

static void *run_main(void *arg)
{
	struct run *r = arg;

	r->ret = agent__run(&r->cfg, &r->err);
	return NULL;
}

/* GET path over the Unix socket; the whole answer in out (NUL-ended), or
 * -errno when nothing listens yet. */
static int get(const char *sock, const char *path, char *out, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char req[256];
	size_t n = 0;
	ssize_t k;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: braid\r\n\r\n", path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (n + 1 < size && (k = read(fd, out + n, size - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(fd);
	return 0;
}

static void test_run_and_stop(void **state)
{
	static char answer[1 << 16];
	struct run r = {0};
	char sock[128], listen[160], data[128], db[160];
	struct timespec pause = {0, 20 * 1000000};
	struct stat sb;
	pthread_t t;
	int tries;

	snprintf(sock, sizeof(sock), "%s/ingest.sock", tmpdir);
	snprintf(listen, sizeof(listen), "unix:%s", sock);
	snprintf(data, sizeof(data), "%s/data", tmpdir);
	agent_config__default(&r.cfg, AGENT_CMD_INGEST);
	r.cfg.listen[0] = listen;
	r.cfg.n_listen = 1;
	r.cfg.data_dir = data;
	r.cfg.threads = 2;
	assert_int_equal(pthread_create(&t, NULL, run_main, &r), 0);

	for (tries = 0; tries < 500 && get(sock, "/ready", answer, sizeof(answer)) < 0; tries++)
		nanosleep(&pause, NULL);
	assert_true(tries < 500);
	assert_non_null(strstr(answer, " 200 "));

	/* braid ingest's /metrics: ingest's counters (this request's /ready
	 * among them), none of the stages it does not run */
	assert_int_equal(get(sock, "/metrics", answer, sizeof(answer)), 0);
	assert_non_null(strstr(answer, " 200 "));
	assert_non_null(strstr(answer, "# TYPE braid_ingest_requests_total counter"));
	assert_non_null(strstr(answer, "braid_ingest_requests_total{endpoint=\"/ready\""));
	assert_null(strstr(answer, "braid_collector_"));
	assert_null(strstr(answer, "braid_merger_"));
	/* without the merger, no live page */
	assert_int_equal(get(sock, "/", answer, sizeof(answer)), 0);
	assert_null(strstr(answer, " 200 "));

	agent__stop();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.err.msg, "");
	/* stopped: nothing answers, and the store it made is there */
	assert_true(get(sock, "/ready", answer, sizeof(answer)) < 0);
	snprintf(db, sizeof(db), "%s/braid.db", data);
	assert_int_equal(stat(db, &sb), 0);
	/* no agent runs: agent__stop does nothing */
	agent__stop();
}

static void test_run_refused(void **state)
{
	struct agent_config cfg;
	struct errbuf err;
	char data[128];

	/* a data directory that cannot be made: agent__run says why, and
	 * starts nothing */
	snprintf(data, sizeof(data), "/proc/braid-no-such-dir");
	agent_config__default(&cfg, AGENT_CMD_INGEST);
	cfg.data_dir = data;
	cfg.listen[0] = "unix:/nonexistent-dir/braid.sock";
	assert_true(agent__run(&cfg, &err) < 0);
	assert_non_null(strstr(err.msg, data));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
