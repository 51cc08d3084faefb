/* SPDX-License-Identifier: Apache-2.0 */
/* syscall_loop: one write(2) of 1 byte to /dev/null after another, from
 * braid_syscall_loop, for --seconds S. A profile of it must show the kernel's
 * write path (ksys_write, __x64_sys_write) leafward of braid_syscall_loop.
 *
 * On x86-64 the syscall instruction is issued from braid_syscall_loop itself:
 * libc's write() keeps no frame pointer, so a frame-pointer unwinder starting
 * in it would skip its caller and braid_syscall_loop would not be in the
 * stack. Elsewhere it calls write(2) and the test may then see libc instead.
 *
 * Prints "pid N" at start (flushed) and "done writes=N" at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __clang__
#define WORKLOAD_FN __attribute__((noinline, used))
#else
#define WORKLOAD_FN __attribute__((noipa, used))
#endif

/* Writes between two looks at the clock. */
#define CHECK_EVERY 1024

uint64_t braid_syscall_loop(int fd, double seconds);

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* always_inline holds under -fno-inline: a function of its own would be a
 * leaf without a frame (GCC 12 builds none for a leaf using no stack), and
 * the unwinder would skip braid_syscall_loop. */
static inline __attribute__((always_inline)) long write_byte(int fd, const char *c)
{
#if defined(__x86_64__)
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_write), "D"((long)fd), "S"(c), "d"(1L)
			 : "rcx", "r11", "memory");
	return ret;
#else
	return write(fd, c, 1) < 0 ? -errno : 1;
#endif
}

/* Returns the number of writes, or 0 after printing why one failed. */
WORKLOAD_FN uint64_t braid_syscall_loop(int fd, double seconds)
{
	double deadline = now_s() + seconds;
	uint64_t n = 0;
	char c = 'x';

	while (now_s() < deadline) {
		for (int i = 0; i < CHECK_EVERY; i++) {
			long ret = write_byte(fd, &c);

			if (ret != 1) {
				fprintf(stderr, "syscall_loop: write: %s\n",
					ret < 0 ? strerror((int)-ret) : "short write");
				return 0;
			}
			n++;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	double seconds;
	uint64_t n;
	char *end;
	int fd;

	if (argc != 3 || strcmp(argv[1], "--seconds") != 0) {
		fprintf(stderr, "usage: syscall_loop --seconds S\n");
		return 2;
	}
	errno = 0;
	seconds = strtod(argv[2], &end);
	if (errno || *end || end == argv[2] || !(seconds > 0)) {
		fprintf(stderr, "syscall_loop: --seconds: not a positive number: %s\n", argv[2]);
		return 2;
	}
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "syscall_loop: /dev/null: %s\n", strerror(errno));
		return 1;
	}
	printf("pid %ld\n", (long)getpid());
	fflush(stdout);
	n = braid_syscall_loop(fd, seconds);
	close(fd);
	if (n == 0)
		return 1;
	printf("done writes=%llu\n", (unsigned long long)n);
	return fflush(stdout) == 0 ? 0 : 1;
}
