/* SPDX-License-Identifier: Apache-2.0 */
/* braid agent: the node agent (agent/agent.h). This file turns the command
 * line, the BRAID_* variables and the config file into the agent's
 * configuration and runs it; cmd_daemon does the same for braid ingest. */
#include "cmd.h"
#include "agent/agent.h"
#include "ingest/ingest.h"
#include "merger/merger.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>

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
		"      --unwind MODE        user stacks: cfi (default: .eh_frame rules, frame\n"
		"                           pointers where none), fp (frame pointers only)\n"
		"      --unwind-memory N    kernel memory for the rules (default 16M); past it\n"
		"                           the rules of files no process maps are unloaded\n"
		"      --cgroup DIR         only processes in this cgroup v2 directory and below\n"
		"Merger:\n"
		"      --grace D            how long samples of a process with an SDK wait for "
		"the\n"
		"                           SDK's profile before leaving eBPF-only (default 75s)\n"
		"      --collect-interval D eBPF-only profiles of other processes this often\n"
		"                           (default 15s)\n"
		"      --sdk-cpu-name NAME  the profile type of an SDK's own process_cpu profile\n"
		"                           when eBPF samples its process (default\n"
		"                           " MERGER_DEFAULT_SDK_CPU_NAME
		"), so that process_cpu counts the\n"
		"                           CPU once; process_cpu keeps it as pushed\n"
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

int cmd_daemon(int command, int argc, char **argv, void (*usage_fn)(FILE *f))
{
	struct agent_settings *st = NULL;
	struct agent_config cfg;
	struct errbuf err = {{0}};
	int r, status = 0;

	r = agent_settings__read((enum agent_command)command, argc, argv, &cfg, &st, &err);
	if (r == AGENT_SETTINGS_HELP) {
		usage_fn(stdout);
	} else if (r == AGENT_SETTINGS_PRINT) {
		agent_settings__print(st, stdout);
	} else if (r < 0) {
		if (err.msg[0])
			cmd_error("%s", err.msg);
		else if (r == -EINVAL)
			usage_fn(stderr); /* getopt said what was wrong */
		else
			cmd_error("%s: %s", argv[0], strerror(-r));
		status = EXIT_USAGE;
	} else if (agent__run(&cfg, &err) < 0) {
		status = 1; /* agent__run logged why */
	}
	agent_settings__free(st);
	return status;
}

int cmd_agent(int argc, char **argv)
{
	return cmd_daemon(AGENT_CMD_AGENT, argc, argv, usage);
}
