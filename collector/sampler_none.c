/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sampler of a braid built without kernel BTF (no vmlinux.h, so no BPF
 * program): opening it fails with a message that says so, and everything
 * else braid does works as usual.
 */
#include "collector/collector.h"

#include <errno.h>

#ifndef BRAID_VMLINUX_BTF
#define BRAID_VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#endif

int collector_sampler__open(const struct collector_sampler_options *o, struct errbuf *err,
			    struct collector_sampler **ret)
{
	return errbuf__set(err, -EOPNOTSUPP,
			   "this braid was built without its eBPF sampler: the build host had no "
			   "kernel BTF at %s (rebuild on a kernel with BTF, or with "
			   "-DBRAID_VMLINUX_BTF=FILE)",
			   BRAID_VMLINUX_BTF);
}

/* No sampler is ever opened: the rest only has to accept NULL. */
void collector_sampler__stop(struct collector_sampler *s)
{
}

void collector_sampler__close(struct collector_sampler *s)
{
}

int collector_sampler__drain(struct collector_sampler *s, collector_sample_fn fn, void *ctx)
{
	return -EOPNOTSUPP;
}

int collector_sampler__stats(const struct collector_sampler *s, struct collector_sampler_stats *ret)
{
	return -EOPNOTSUPP;
}

unsigned collector_sampler__freq(const struct collector_sampler *s)
{
	return 0;
}

int collector_sampler__new_pids_fd(const struct collector_sampler *s)
{
	return -EOPNOTSUPP;
}

int collector_sampler__new_pids(struct collector_sampler *s, collector_pid_fn fn, void *ctx)
{
	return -EOPNOTSUPP;
}

void collector_sampler__forget(struct collector_sampler *s, int32_t pid)
{
}
