/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/peer: runs a command with setrlimit(2) and prlimit(2) that set
 * RLIMIT_MEMLOCK turned into no-ops that succeed (a seccomp filter; reading
 * the limit goes through), for the OpenTelemetry eBPF profiler on machines
 * without CAP_SYS_RESOURCE.
 *
 * The profiler raises RLIMIT_MEMLOCK to infinity before it loads its BPF
 * programs and stops when it can't. These machines run as root without
 * CAP_SYS_RESOURCE, with a hard memlock limit of 8 MiB, so it stops there
 * (docs/peer.md). Kernels since 5.11 charge BPF memory to the memory cgroup,
 * not to RLIMIT_MEMLOCK, so the raise changes nothing it needs: the profiler
 * itself runs unmodified.
 *
 * Usage: bench_no_memlock COMMAND [ARGS...]
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "bench_no_memlock: the filter below is for x86-64 system calls"
#endif

int main(int argc, char **argv)
{
	/* little-endian: a 64-bit argument's low word first */
	struct sock_filter f[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		/* 2 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prlimit64, 2, 0),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setrlimit, 8, 0),
		/* 6 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 7: prlimit64(pid, resource, new, old) of RLIMIT_MEMLOCK */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLIMIT_MEMLOCK, 1, 0),
		/* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 10: ... that sets it (new != NULL); a read goes through */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		/* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 5),
		/* 12 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]) + 4),
		/* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 3),
		/* 14: setrlimit(resource, new) of RLIMIT_MEMLOCK */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		/* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RLIMIT_MEMLOCK, 1, 0),
		/* 16 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 17: succeed without doing anything */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (argc < 2) {
		fprintf(stderr, "usage: bench_no_memlock COMMAND [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "bench_no_memlock: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
		return 1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		fprintf(stderr, "bench_no_memlock: seccomp filter: %s\n", strerror(errno));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "bench_no_memlock: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
