/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfi_chain: a three-deep call chain (main -> outer -> middle -> inner)
 * built without frame pointers, whose unwind rules tests/cli/cfi.sh reads
 * back from .eh_frame (and, in the cfi_chain_debug_frame build, from
 * .debug_frame) and checks against readelf's. Each function keeps values
 * live across a call so that it saves registers and moves its CFA.
 *   cfi_chain [ITERATIONS]          prints a checksum
 *   cfi_chain --deep N ITERATIONS   the chain under N calls of deep(), for
 *                                   stacks deeper than the unwinder keeps
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static unsigned long inner(unsigned long x, volatile unsigned long *buf)
{
	for (int i = 0; i < 64; i++)
		buf[i & 15] += x * (unsigned long)i;
	return buf[x & 15];
}

__attribute__((noinline)) static unsigned long middle(unsigned long x)
{
	volatile unsigned long buf[16] = {0};
	unsigned long a = x * 3, b = x ^ 0x55, c = inner(x, buf);

	return a + b + c + inner(c, buf);
}

__attribute__((noinline)) static unsigned long outer(unsigned long n)
{
	unsigned long sum = 0, k = n * 7;

	for (unsigned long i = 0; i < n; i++)
		sum += middle(i + k) ^ k;
	return sum + k;
}

/* d frames of itself, then the chain: a value kept in each frame across
 * the call keeps the compiler from making the recursion a loop */
__attribute__((noinline)) static unsigned long deep(unsigned long d, unsigned long n)
{
	volatile unsigned long keep = d;

	if (d == 0)
		return outer(n);
	return deep(d - 1, n) + keep;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;

	if (argc > 3 && strcmp(argv[1], "--deep") == 0) {
		printf("%lu\n", deep(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10)));
		return 0;
	}
	printf("%lu\n", outer(n));
	return 0;
}
