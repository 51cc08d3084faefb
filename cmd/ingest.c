/* SPDX-License-Identifier: Apache-2.0 */
/* braid ingest: the sidecar. A Pyroscope-compatible endpoint that stores what
 * the SDKs push, attributed to the process that pushed it, until SIGTERM. */
#define _GNU_SOURCE
#include "cmd.h"
#include "ingest/ingest.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAINTAIN_EVERY_S 60
#define MAX_LISTEN_ARGS	 16

struct config {
	const char *listen[MAX_LISTEN_ARGS];
	size_t n_listen;
	const char *data_dir;
	uint64_t store_max_bytes;
	enum store_sync sync;
	const char *auth_token, *auth_token_file;
	const char *basic_auth, *basic_auth_file;
	unsigned threads, max_connections, timeout_s, retry_after_s;
	uint64_t max_body;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid ingest [--listen ADDR:PORT|unix:PATH]... [--data-dir DIR] [OPTIONS]\n"
		"\n"
		"Receives the profiles that Pyroscope SDKs push, exactly as a Pyroscope server\n"
		"would, and commits each to the store before answering 200. Each push is\n"
		"attributed to the host process that sent it (the loopback TCP peer, the Unix\n"
		"socket peer, a pid label, or the service name in a process's environment).\n"
		"Runs until SIGTERM or SIGINT.\n"
		"\n"
		"Endpoints: POST /ingest and /pyroscope/ingest (pprof, multipart, folded, lines),\n"
		"POST /push.v1.PusherService/Push (application/proto or application/json),\n"
		"GET /ready, GET /metrics (Prometheus text).\n"
		"\n"
		"Options:\n"
		"      --listen ADDR      where to listen: IPV4:PORT, [IPV6]:PORT or unix:PATH;\n"
		"                         repeat for several (default " INGEST_DEFAULT_LISTEN ",\n"
		"                         where the SDKs push by default). Port 0 picks a free\n"
		"                         port; the address is printed. An address that is not\n"
		"                         loopback needs --auth-token or --basic-auth.\n"
		"      --data-dir DIR     the store's directory (default " STORE_DEFAULT_DATA_DIR
		" as root,\n"
		"                         else " STORE_USER_DATA_DIR ")\n"
		"      --store-max-bytes N  the store's bound (default 1GiB); when it is full,\n"
		"                         pushes get 429 with Retry-After\n"
		"      --sync normal|full fsync at checkpoints (normal, default) or at every\n"
		"                         commit (full: a 200 survives a power cut)\n"
		"      --auth-token T     require \"Authorization: Bearer T\" on ingest endpoints\n"
		"                         (also BRAID_AUTH_TOKEN)\n"
		"      --auth-token-file F  the same, read from file F\n"
		"      --basic-auth U:P   require HTTP basic auth U:P (also BRAID_BASIC_AUTH)\n"
		"      --basic-auth-file F  the same, read from file F\n"
		"      --threads N        request threads per address (default: CPUs, at least 2)\n"
		"      --max-connections N  open connections at most (default %d)\n"
		"      --timeout S        close a connection idle for S seconds (default %d)\n"
		"      --max-body N       largest request body (default 32MiB); larger is 413\n"
		"      --retry-after S    Retry-After on 429 (default %d)\n"
		"  -h, --help             show this help\n"
		"\n"
		"Sizes take a suffix: K, M, G (or KiB, MiB, GiB; powers of 1024).\n",
		INGEST_DEFAULT_MAX_CONNECTIONS, INGEST_DEFAULT_TIMEOUT_S,
		INGEST_DEFAULT_RETRY_AFTER_S);
}

int cmd_ingest(int argc, char **argv)
{
	enum {
		OPT_LISTEN = 256,
		OPT_DATA_DIR,
		OPT_STORE_MAX,
		OPT_SYNC,
		OPT_TOKEN,
		OPT_TOKEN_FILE,
		OPT_BASIC,
		OPT_BASIC_FILE,
		OPT_THREADS,
		OPT_MAX_CONN,
		OPT_TIMEOUT,
		OPT_MAX_BODY,
		OPT_RETRY_AFTER,
	};
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"data-dir", required_argument, NULL, OPT_DATA_DIR},
		{"store-max-bytes", required_argument, NULL, OPT_STORE_MAX},
		{"sync", required_argument, NULL, OPT_SYNC},
		{"auth-token", required_argument, NULL, OPT_TOKEN},
		{"auth-token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"basic-auth", required_argument, NULL, OPT_BASIC},
		{"basic-auth-file", required_argument, NULL, OPT_BASIC_FILE},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"max-connections", required_argument, NULL, OPT_MAX_CONN},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"retry-after", required_argument, NULL, OPT_RETRY_AFTER},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct config cfg = {.sync = STORE_SYNC_NORMAL};
	struct ingest_options io = {0};
	struct ingest *in = NULL;
	struct store *maint = NULL;
	struct errbuf err = {{0}};
	char *token = NULL, *basic = NULL;
	sigset_t sigs;
	time_t last_maintain;
	int c, r, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (cfg.n_listen == MAX_LISTEN_ARGS) {
				cmd_error("ingest: at most %d --listen addresses", MAX_LISTEN_ARGS);
				return EXIT_USAGE;
			}
			cfg.listen[cfg.n_listen++] = optarg;
			break;
		case OPT_DATA_DIR:
			cfg.data_dir = optarg;
			break;
		case OPT_STORE_MAX:
			if (cmd_parse_size("ingest", "--store-max-bytes", optarg,
					   &cfg.store_max_bytes) < 0)
				return EXIT_USAGE;
			if (cfg.store_max_bytes < STORE_MIN_MAX_BYTES) {
				cmd_error("ingest: --store-max-bytes must be at least 1M");
				return EXIT_USAGE;
			}
			break;
		case OPT_SYNC:
			if (strcmp(optarg, "normal") == 0) {
				cfg.sync = STORE_SYNC_NORMAL;
			} else if (strcmp(optarg, "full") == 0) {
				cfg.sync = STORE_SYNC_FULL;
			} else {
				cmd_error("ingest: --sync takes normal or full, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_TOKEN:
			cfg.auth_token = optarg;
			break;
		case OPT_TOKEN_FILE:
			cfg.auth_token_file = optarg;
			break;
		case OPT_BASIC:
			cfg.basic_auth = optarg;
			break;
		case OPT_BASIC_FILE:
			cfg.basic_auth_file = optarg;
			break;
		case OPT_THREADS:
			if (cmd_parse_uint("ingest", "--threads", optarg, 1, 1024, &cfg.threads) <
			    0)
				return EXIT_USAGE;
			break;
		case OPT_MAX_CONN:
			if (cmd_parse_uint("ingest", "--max-connections", optarg, 1, 1000000,
					   &cfg.max_connections) < 0)
				return EXIT_USAGE;
			break;
		case OPT_TIMEOUT:
			if (cmd_parse_uint("ingest", "--timeout", optarg, 1, 86400,
					   &cfg.timeout_s) < 0)
				return EXIT_USAGE;
			break;
		case OPT_MAX_BODY:
			if (cmd_parse_size("ingest", "--max-body", optarg, &cfg.max_body) < 0)
				return EXIT_USAGE;
			if (!cfg.max_body || cfg.max_body > STORE_MAX_PAYLOAD) {
				cmd_error("ingest: --max-body must be from 1 byte to %u MiB",
					  STORE_MAX_PAYLOAD >> 20);
				return EXIT_USAGE;
			}
			break;
		case OPT_RETRY_AFTER:
			if (cmd_parse_uint("ingest", "--retry-after", optarg, 1, 86400,
					   &cfg.retry_after_s) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cmd_error("ingest: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if ((cfg.auth_token && cfg.auth_token_file) || (cfg.basic_auth && cfg.basic_auth_file)) {
		cmd_error("ingest: give a credential either directly or from a file, not both");
		return EXIT_USAGE;
	}
	if (!cfg.auth_token && !cfg.auth_token_file)
		cfg.auth_token = getenv("BRAID_AUTH_TOKEN");
	if (!cfg.basic_auth && !cfg.basic_auth_file)
		cfg.basic_auth = getenv("BRAID_BASIC_AUTH");
	if (cfg.auth_token_file && !(token = cmd_read_secret("ingest", cfg.auth_token_file)))
		goto cleanup;
	if (cfg.basic_auth_file && !(basic = cmd_read_secret("ingest", cfg.basic_auth_file)))
		goto cleanup;

	io.listen = cfg.listen;
	io.n_listen = cfg.n_listen;
	io.threads = cfg.threads;
	io.max_connections = cfg.max_connections;
	io.timeout_s = cfg.timeout_s;
	io.max_body = cfg.max_body;
	io.retry_after_s = cfg.retry_after_s;
	io.auth_token = token ? token : cfg.auth_token;
	io.basic_auth = basic ? basic : cfg.basic_auth;
	io.store.data_dir = cfg.data_dir;
	io.store.max_bytes = cfg.store_max_bytes;
	io.store.sync = cfg.sync;

	cmd_raise_fd_limit("ingest", cfg.max_connections ? cfg.max_connections
							 : INGEST_DEFAULT_MAX_CONNECTIONS);
	/* The request threads inherit this mask: only this thread takes the
	 * signals, in sigtimedwait below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = store__open(&io.store, &err, &maint);
	if (r < 0) {
		cmd_error("ingest: %s", err.msg);
		goto cleanup;
	}
	r = ingest__start(&io, &err, &in);
	if (r < 0) {
		cmd_error("ingest: %s", err.msg);
		goto cleanup;
	}
	for (size_t i = 0; ingest__address(in, i); i++) {
		const char *a = ingest__address(in, i);

		fprintf(stderr, "braid: ingest: listening on %s%s (store %s)\n",
			strncmp(a, "unix:", 5) == 0 ? "" : "http://", a, store__path(maint));
	}
	fflush(stderr);

	last_maintain = time(NULL);
	for (;;) {
		struct timespec tick = {1, 0};
		int sig = sigtimedwait(&sigs, NULL, &tick);

		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (time(NULL) - last_maintain >= MAINTAIN_EVERY_S) {
			struct store_maintenance m;

			last_maintain = time(NULL);
			r = store__maintain(maint, store__now_ns(), &m);
			if (r < 0)
				cmd_error("ingest: store cleanup failed: %s", store__errmsg(maint));
		}
	}
	fprintf(stderr, "braid: ingest: stopping\n");
	status = 0;
cleanup:
	ingest__stop(in);
	store__close(maint);
	free(token);
	free(basic);
	return status;
}
