/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_calls: the splice's native calls by name (merger/calls.c). The input
 * before its first NUL is Python source, each line given to
 * merger_calls__add_line; after it, one C function name a line, an eBPF
 * stack's native suffix from the interpreter region leafward, given to
 * merger_calls__key_of_stack.
 *
 * Checked: every name a line's list holds is an identifier of 3 to 63
 * characters that the line has followed by "(" (spaces between); a stack's
 * key names a name some list holds, and one of the suffix's functions
 * stands for it (the function up to a clone suffix or a parameter list, or
 * its part after an underscore, without "_impl", or a C++ method's last
 * part, case aside); a key is found again for the same stack.
 */
#define _GNU_SOURCE /* strcasestr */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "merger/merger_int.h"

/* libFuzzer calls it for each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES  64
#define MAX_FRAMES 32

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_calls: %s: %s\n", what, detail ? detail : "(null)");
	abort();
}

/* Whether `line` has identifier `name` (case aside: calls.c keeps one
 * spelling of a name) followed by optional blanks and "(". */
static bool line_calls(const char *line, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = line; (p = strcasestr(p, name)); p++) {
		const char *q = p + n;

		if (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '(')
			return true;
	}
	return false;
}

/* Whether C function `fn` stands for `name`, as calls.c reads names. */
static bool stands_for(const char *fn, const char *name)
{
	size_t len = strcspn(fn, ".("), n = strlen(name), last = 0;
	int depth = 0;

	/* a C++ method's last part: past the last "::" outside <...> */
	for (size_t i = 0; i + 1 < len; i++) {
		if (fn[i] == '<')
			depth++;
		else if (fn[i] == '>' && depth > 0)
			depth--;
		else if (!depth && fn[i] == ':' && fn[i + 1] == ':')
			last = i + 2;
	}
	if (last && len - last == n && strncasecmp(fn + last, name, n) == 0)
		return true;
	if (len > 5 && strncmp(fn + len - 5, "_impl", 5) == 0)
		len -= 5;
	for (size_t at = 0; at < len; at++)
		if ((at == 0 || fn[at - 1] == '_') && len - at == n &&
		    strncasecmp(fn + at, name, n) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *src, *fns, *save = NULL;
	char *lines[MAX_LINES];
	uint32_t lists[MAX_LINES];
	struct frame frames[MAX_FRAMES];
	size_t n_lines = 0, n_frames = 0;
	struct merger_calls *c = NULL;
	int key, again;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	src = text;
	fns = memchr(text, '\0', size) && strlen(text) < size ? text + strlen(text) + 1
							      : text + size;
	if (merger_calls__new(&c) < 0)
		goto out;
	for (char *l = strtok_r(src, "\n", &save); l && n_lines < MAX_LINES;
	     l = strtok_r(NULL, "\n", &save)) {
		if (merger_calls__add_line(c, l, &lists[n_lines]) < 0)
			goto out;
		lines[n_lines++] = l;
	}
	save = NULL;
	for (char *f = strtok_r(fns, "\n", &save); f && n_frames < MAX_FRAMES;
	     f = strtok_r(NULL, "\n", &save))
		frames[n_frames++] = (struct frame){.kind = FRAME_NATIVE, .name = f, .module = "m"};
	/* suffix frames are leaf first; the region starts after them */
	for (size_t i = 0; i < n_frames / 2; i++) {
		struct frame t = frames[i];

		frames[i] = frames[n_frames - 1 - i];
		frames[n_frames - 1 - i] = t;
	}
	key = merger_calls__key_of_stack(c, frames, n_frames);
	if (key >= 0) {
		const char *name = merger_calls__key_name(c, key);
		bool some_line = false, some_frame = false;

		if (!name)
			fail("a key without a name", NULL);
		for (size_t i = 0; i < n_lines; i++)
			if (merger_calls__calls(c, lists[i], key)) {
				some_line = true;
				if (!line_calls(lines[i], name))
					fail("a list names a call its line does not make", name);
			}
		if (!some_line)
			fail("a key no line calls", name);
		for (size_t i = 0; i < n_frames && !some_frame; i++)
			some_frame = stands_for(frames[i].name, name);
		if (!some_frame)
			fail("a key no frame stands for", name);
		again = merger_calls__key_of_stack(c, frames, n_frames);
		if (again != key)
			fail("the same stack got another key", name);
		if (strlen(name) < 3 || strlen(name) > 63)
			fail("a call name of a length outside 3..63", name);
	}
out:
	merger_calls__free(c);
	free(text);
	return 0;
}
