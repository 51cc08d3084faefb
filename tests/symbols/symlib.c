/* SPDX-License-Identifier: Apache-2.0 */
/* The shared library of symtarget_lib: one exported function, whose
 * address it prints itself (its own view of it, not a PLT stub's). */
#include <stdio.h>

void braid_lib_delta(unsigned n);
void braid_lib_report(void);

static volatile unsigned long lib_sink;

__attribute__((noinline, noclone)) void braid_lib_delta(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		lib_sink += i * 5 + 2;
}

void braid_lib_report(void)
{
	braid_lib_delta(3);
	printf("braid_lib_delta %p\n", (void *)braid_lib_delta);
}
