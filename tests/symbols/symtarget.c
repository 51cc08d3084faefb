/* SPDX-License-Identifier: Apache-2.0 */
/* A program whose functions test_collector symbolizes, built PIE, non-PIE,
 * stripped and with a shared library (tests/CMakeLists.txt): it prints the
 * run-time address of each function ("NAME ADDRESS" lines, then "ready")
 * and waits until its stdin closes. */
#include <stdio.h>
#include <unistd.h>

#ifdef SYMTARGET_LIB
void braid_lib_report(void);
#endif
void braid_sym_alpha(unsigned n);
void braid_sym_beta(unsigned n);

static volatile unsigned long sink;

/* Bodies that differ, so that no pass folds them into one; noclone keeps
 * their names free of ".constprop" and the like. */
__attribute__((noinline, noclone)) void braid_sym_alpha(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		sink += i * 3 + 1;
}

__attribute__((noinline, noclone)) void braid_sym_beta(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		sink ^= (sink << 5) + i * 7;
}

__attribute__((noinline, noclone)) static void braid_sym_gamma(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		sink = sink * 33 + i;
}

int main(void)
{
	char buf[64];

	braid_sym_alpha(3);
	braid_sym_beta(3);
	braid_sym_gamma(3);
	printf("braid_sym_alpha %p\n", (void *)braid_sym_alpha);
	printf("braid_sym_beta %p\n", (void *)braid_sym_beta);
	printf("braid_sym_gamma %p\n", (void *)braid_sym_gamma);
#ifdef SYMTARGET_LIB
	braid_lib_report();
#endif
	printf("ready\n");
	if (fflush(stdout) != 0)
		return 1;
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	return 0;
}
