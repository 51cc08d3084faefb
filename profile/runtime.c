/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile: the runtimes braid knows, and every name that tells one. One row
 * per runtime: the name the store keeps and reports print, the spy name its
 * Pyroscope SDK sends, the executables that run it and the libraries that
 * embed it into another program. The collector, the ingest path and the
 * merger ask this table; what a runtime's frames mean (guest code, GC, JIT,
 * idle) is the classifier's (merger/classify.c). docs/classifiers.md says
 * how to add a runtime.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "profile/profile.h"

struct runtime_names {
	const char *name; /* stored and printed */
	const char *spy;  /* the SDK's spyName, matched exactly (case too) */
	/* executable base names: exact, or by prefix (python3.11) */
	const char *const *exe;
	const char *const *exe_prefix;
	/* prefixes of the base name of a mapped library that embeds the
	 * runtime into a native program (uwsgi, a Node embedder, a JNI
	 * launcher) */
	const char *const *lib_prefix;
};

static const char *const node_exe[] = {"node", "nodejs", NULL};
static const char *const node_lib[] = {"libnode.so", NULL};
static const char *const python_exe_prefix[] = {"python", NULL};
static const char *const python_lib[] = {"libpython", NULL};
static const char *const ruby_exe_prefix[] = {"ruby", NULL};
static const char *const ruby_lib[] = {"libruby", NULL};
static const char *const jvm_exe[] = {"java", NULL};
static const char *const jvm_lib[] = {"libjvm.so", NULL};
static const char *const dotnet_exe[] = {"dotnet", NULL};
static const char *const dotnet_lib[] = {"libcoreclr.so", NULL};

static const struct runtime_names runtimes[RUNTIME_COUNT] = {
	[RUNTIME_UNKNOWN] = {.name = "unknown"},
	[RUNTIME_NATIVE] = {.name = "native"},
	[RUNTIME_NODE] = {.name = "node",
			  .spy = "nodespy",
			  .exe = node_exe,
			  .lib_prefix = node_lib},
	[RUNTIME_PYTHON] = {.name = "python",
			    .spy = "pyspy",
			    .exe_prefix = python_exe_prefix,
			    .lib_prefix = python_lib},
	[RUNTIME_RUBY] = {.name = "ruby",
			  .spy = "rbspy",
			  .exe_prefix = ruby_exe_prefix,
			  .lib_prefix = ruby_lib},
	[RUNTIME_JVM] = {.name = "jvm", .spy = "javaspy", .exe = jvm_exe, .lib_prefix = jvm_lib},
	/* Go binaries are told by their ELF notes (collector/collect.c) */
	[RUNTIME_GO] = {.name = "go", .spy = "gospy"},
	/* "pyroscope-rs" is the Rust SDK's spy name: Pyroscope reads it as
	 * rust, and no runtime here is Rust's */
	[RUNTIME_DOTNET] = {.name = "dotnet",
			    .spy = "dotnetspy",
			    .exe = dotnet_exe,
			    .lib_prefix = dotnet_lib},
};

const char *profile__runtime_name(enum runtime r)
{
	return (unsigned)r < RUNTIME_COUNT ? runtimes[r].name : "unknown";
}

enum runtime profile__runtime_parse(const char *name)
{
	for (int i = 0; name && i < RUNTIME_COUNT; i++)
		if (strcmp(name, runtimes[i].name) == 0)
			return (enum runtime)i;
	return RUNTIME_UNKNOWN;
}

enum runtime profile__runtime_of_spy(const char *spy_name)
{
	for (int i = 0; spy_name && i < RUNTIME_COUNT; i++)
		if (runtimes[i].spy && strcmp(spy_name, runtimes[i].spy) == 0)
			return (enum runtime)i;
	return RUNTIME_UNKNOWN;
}

static bool is_one_of(const char *const *names, const char *s, size_t len)
{
	for (; names && *names; names++)
		if (strlen(*names) == len && memcmp(s, *names, len) == 0)
			return true;
	return false;
}

static bool starts_with_one_of(const char *const *prefixes, const char *s, size_t len)
{
	for (; prefixes && *prefixes; prefixes++) {
		size_t n = strlen(*prefixes);

		if (len >= n && memcmp(s, *prefixes, n) == 0)
			return true;
	}
	return false;
}

enum runtime profile__runtime_of_exe(const char *base, size_t len)
{
	for (int i = 0; base && i < RUNTIME_COUNT; i++)
		if (is_one_of(runtimes[i].exe, base, len) ||
		    starts_with_one_of(runtimes[i].exe_prefix, base, len))
			return (enum runtime)i;
	return RUNTIME_NATIVE;
}

enum runtime profile__runtime_of_library(const char *base, size_t len)
{
	for (int i = 0; base && i < RUNTIME_COUNT; i++)
		if (starts_with_one_of(runtimes[i].lib_prefix, base, len))
			return (enum runtime)i;
	return RUNTIME_UNKNOWN;
}
