/* SPDX-License-Identifier: Apache-2.0 */
/* store_fill DIR FIXTURE: writes a known set of rows into the store at DIR
 * for the CLI tests of `braid store`: a Node process, its SDK profile (the
 * real Node SDK payload FIXTURE, with the totals braid decodes from it), an
 * unattributed folded profile, eBPF buckets, and outbox items in each state
 * (due, retrying, dead). Prints nothing; exits 1 with a message on error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile.h"
#include "store/store.h"

#define S 1000000000ll

static int die(const char *what, const char *msg)
{
	fprintf(stderr, "store_fill: %s: %s\n", what, msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct store_options o = {0};
	struct errbuf err = {{0}};
	struct store *s = NULL;
	struct dynbuf body;
	struct profile *p = NULL;
	struct store_sample_type types[8];
	int64_t totals[8], proc, sdk1, sdk2, o1, o2, o3;
	const char *folded = "main;work 3\nmain;idle 1\n";
	const struct label node_labels[] = {
		{"service_name", "shop-api"}, {"__name__", "wall"}, {"env", "prod"}};
	const struct label billing_labels[] = {{"service_name", "billing"},
					       {"__name__", "process_cpu"}};
	const struct frame frames[] = {
		{FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", 0},
		{FRAME_NATIVE, "main", "/usr/bin/node", 0x1000},
	};
	size_t n_types;

	if (argc != 3)
		return die("usage", "store_fill DIR FIXTURE");
	dynbuf__init(&body, 0);
	if (util__read_file(argv[2], 1 << 20, &err, &body) < 0 ||
	    profile__from_pprof(body.data, body.len, NULL, &err, &p) < 0 ||
	    profile__totals(p, totals) < 0)
		return die(argv[2], err.msg);
	n_types = profile__n_sample_types(p);
	for (size_t i = 0; i < n_types && i < 8; i++) {
		struct profile_value_type vt = profile__sample_type(p, i);

		types[i] = (struct store_sample_type){profile__str(p, vt.type),
						      profile__str(p, vt.unit), totals[i]};
	}
	o.data_dir = argv[1];
	if (store__open(&o, &err, &s) < 0)
		return die("open", err.msg);
	if (store__put_process(s,
			       &(struct store_process){.pid = 4242,
						       .start_time_ns = 1700000000 * S - 5 * S,
						       .comm = "node",
						       .exe = "/usr/bin/node",
						       .cmdline = "node app.js",
						       .service = "shop-api",
						       .runtime = RUNTIME_NODE},
			       1700000000 * S, &proc) < 0 ||
	    store__put_sdk_profile(s,
				   &(struct store_sdk_profile){
					   .received_ns = 1700000061 * S,
					   .service = "shop-api",
					   .profile_name = "wall",
					   .labels = node_labels,
					   .n_labels = 3,
					   .tenant = "team-a",
					   .types = types,
					   .n_types = n_types,
					   .from_ns = 1700000000 * S,
					   .until_ns = 1700000060 * S,
					   .spy_name = "nodespy",
					   .format = "pprof",
					   .sample_rate = 100,
					   .process_id = proc,
					   .attribution = STORE_ATTR_PEER_TCP,
					   .payload = body.data,
					   .payload_len = body.len,
				   },
				   &sdk1) < 0 ||
	    store__put_sdk_profile(
		    s,
		    &(struct store_sdk_profile){
			    .received_ns = 1700000062 * S,
			    .service = "billing",
			    .profile_name = "process_cpu",
			    .labels = billing_labels,
			    .n_labels = 2,
			    .types = &(struct store_sample_type){"samples", "count", 4},
			    .n_types = 1,
			    .from_ns = 1700000050 * S,
			    .until_ns = 1700000060 * S,
			    .format = "folded",
			    .sample_rate = 100,
			    .payload = folded,
			    .payload_len = strlen(folded),
		    },
		    &sdk2) < 0)
		return die("write", store__errmsg(s));
	{
		const struct store_bucket rows[] = {
			{proc, 4242, 1700000001, frames, 2, 30, 0},
			{proc, 4243, 1700000001, frames + 1, 1, 10, 0},
			{proc, 4242, 1700000002, frames, 2, 57, 0},
		};

		if (store__put_buckets(s, rows, 3, NULL) < 0)
			return die("buckets", store__errmsg(s));
	}
	if (store__outbox_add(s,
			      &(struct store_outbox_item){.series = "shop-api{merged}",
							  .kind = "merged",
							  .labels = node_labels,
							  .n_labels = 3,
							  .tenant = "team-a",
							  .from_ns = 1700000000 * S,
							  .until_ns = 1700000060 * S,
							  .payload = body.data,
							  .payload_len = body.len},
			      &o1) < 0 ||
	    store__outbox_add(s,
			      &(struct store_outbox_item){.series = "shop-api{sdk}",
							  .kind = "sdk",
							  .labels = node_labels,
							  .n_labels = 3,
							  .from_ns = 1700000000 * S,
							  .until_ns = 1700000060 * S,
							  .sdk_profile_id = sdk1},
			      &o2) < 0 ||
	    store__outbox_add(s,
			      &(struct store_outbox_item){.series = "billing{sdk}",
							  .kind = "sdk",
							  .labels = billing_labels,
							  .n_labels = 2,
							  .sdk_profile_id = sdk2},
			      &o3) < 0 ||
	    store__outbox_retry(s, o2, 1700000100 * S, "connect: Connection refused") < 0 ||
	    store__outbox_dead(s, o3, 400, "invalid profile: \"bad\" sample type") < 0)
		return die("outbox", store__errmsg(s));
	store__close(s);
	profile__free(p);
	dynbuf__free(&body);
	return 0;
}
