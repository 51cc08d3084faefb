/* SPDX-License-Identifier: Apache-2.0 */
/* braid ingest: the sidecar. A Pyroscope-compatible endpoint that stores what
 * the SDKs push, attributed to the process that pushed it, until SIGTERM: the
 * agent's loop (agent/agent.h) with the collector and the merger off. */
#include "cmd.h"
#include "agent/agent.h"
#include "ingest/ingest.h"
#include "store/store.h"

#include <stdio.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: braid ingest [--listen ADDR:PORT|unix:PATH]... [--data-dir DIR] [OPTIONS]\n"
		"\n"
		"Receives the profiles that Pyroscope SDKs push, exactly as a Pyroscope server\n"
		"would, and commits each to the store before answering 200. Each push is\n"
		"attributed to the host process that sent it (the loopback TCP peer, the Unix\n"
		"socket peer, a pid label, or the service name in a process's environment).\n"
		"Runs until SIGTERM or SIGINT. It is braid agent without the eBPF collector,\n"
		"the merger and the upstream.\n"
		"\n"
		"Endpoints: POST /ingest and /pyroscope/ingest (pprof, multipart, folded, lines),\n"
		"POST /push.v1.PusherService/Push (application/proto or application/json),\n"
		"GET /ready, GET /metrics (Prometheus text).\n"
		"\n"
		"Configuration: flags, then environment variables (BRAID_ and the option's name\n"
		"in capitals, '-' as '_': BRAID_LISTEN, BRAID_DATA_DIR), then the config file,\n"
		"then defaults, as for braid agent (docs/agent.md). BRAID_LISTEN takes one\n"
		"address per line or comma; the file has \"name = value\" lines.\n"
		"\n"
		"Options:\n"
		"      --config FILE      the config file (also BRAID_CONFIG)\n"
		"      --print-config     print the effective configuration, and where each\n"
		"                         value came from, then exit\n"
		"      --listen ADDR      where to listen: IPV4:PORT, [IPV6]:PORT or unix:PATH;\n"
		"                         repeat for several, up to 64 "
		"(default " INGEST_DEFAULT_LISTEN ",\n"
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
	return cmd_daemon(AGENT_CMD_INGEST, argc, argv, usage);
}
