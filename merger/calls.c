/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: native calls by name. py-spy's stacks (the Python SDK's) end at
 * the Python line a thread is on; while the thread runs C, that line is the
 * call into C: "hashlib.pbkdf2_hmac(...)", "os.pwrite(fd, block, 0)",
 * "n += len(str(i))". An eBPF stack's native suffix names the C function
 * the eval loop called: pbkdf2_hmac, os_pwrite, builtin_len, PyObject_Str.
 * CPython names a builtin's C function after its Python name, with the
 * module or type first (Argument Clinic's "MODULE_NAME" and "NAME_impl",
 * "builtin_NAME", "PyObject_Str"). So a C function whose name, or its part
 * after an underscore, is a name some SDK line calls is that call (a key),
 * and the splice shares the eBPF samples below it among the SDK stacks whose
 * line calls that name (splice.c). docs/merger.md, "Native calls (Python)".
 *
 * The Java agent's stacks (async-profiler's) end in the native function a
 * sample was in, right under the Java frame that called native code: the
 * JNI function of that Java method ("Java_java_util_zip_Deflater_
 * deflateBytesBytes" for Deflater.deflateBytesBytes) and that leaf function
 * are what such a stack calls (merger_calls__add_names), matched the same way.
 *
 * V8's profiler (the Node SDK's) shows a native function JS called as a
 * file-less leaf named after the C++ callback behind it: ":run:0" for
 * crypto's CryptoJob<...>::Run, ":writeFileUtf8:0" for
 * node::fs::WriteFileUtf8. So a C++ method's last part is a name too.
 */
#define _GNU_SOURCE /* strncasecmp */
#include "merger/merger_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIN_NAME  3 /* shorter call names ("f(", "x(") match too much */
#define MAX_NAME  63
#define MAX_NAMES 4096
#define MAX_KEYS  MERGER_MAX_NATIVE_CALLS
#define MAX_SCAN  12 /* suffix frames looked at, from the region down */

struct merger_calls {
	/* every distinct name a line calls, and the lists: lists[i] is a run
	 * of name indexes in `items`, ended by -1; list 0 is empty */
	char (*names)[MAX_NAME + 1];
	size_t n_names, cap_names;
	int32_t *items;
	size_t n_items, cap_items;
	size_t *lists;
	size_t n_lists, cap_lists;
	int32_t key_name[MAX_KEYS]; /* key -> name index */
	size_t n_keys;
};

int merger_calls__new(struct merger_calls **ret)
{
	struct merger_calls *c = calloc(1, sizeof(*c));
	int r;

	*ret = NULL;
	if (!c)
		return -ENOMEM;
	/* list 0: no calls */
	r = util__grow((void **)&c->lists, &c->cap_lists, 1, sizeof(*c->lists));
	if (r == 0)
		r = util__grow((void **)&c->items, &c->cap_items, 1, sizeof(*c->items));
	if (r < 0) {
		merger_calls__free(c);
		return r;
	}
	c->lists[c->n_lists++] = 0;
	c->items[c->n_items++] = -1;
	*ret = c;
	return 0;
}

void merger_calls__free(struct merger_calls *c)
{
	if (!c)
		return;
	free(c->names);
	free(c->items);
	free(c->lists);
	free(c);
}

static int32_t find_name(const struct merger_calls *c, const char *s, size_t len)
{
	for (size_t i = 0; i < c->n_names; i++)
		if (strlen(c->names[i]) == len && strncasecmp(c->names[i], s, len) == 0)
			return (int32_t)i;
	return -1;
}

static int name_index(struct merger_calls *c, const char *s, size_t len, int32_t *ret)
{
	int32_t i = find_name(c, s, len);
	int r;

	if (i < 0) {
		if (c->n_names == MAX_NAMES)
			return -ENOSPC;
		r = util__grow((void **)&c->names, &c->cap_names, c->n_names + 1,
			       sizeof(*c->names));
		if (r < 0)
			return r;
		memcpy(c->names[c->n_names], s, len);
		c->names[c->n_names][len] = '\0';
		i = (int32_t)c->n_names++;
	}
	*ret = i;
	return 0;
}

static bool ident_start(char ch)
{
	return isalpha((unsigned char)ch) || ch == '_';
}

static bool ident_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_';
}

/* Ends the list of the names added from items[first] on: *ret its id, 0
 * when it has none. */
static int close_list(struct merger_calls *c, size_t first, uint32_t *ret)
{
	int r;

	if (c->n_items == first)
		return 0;
	r = util__grow((void **)&c->items, &c->cap_items, c->n_items + 1, sizeof(*c->items));
	if (r == 0)
		r = util__grow((void **)&c->lists, &c->cap_lists, c->n_lists + 1,
			       sizeof(*c->lists));
	if (r < 0)
		return r;
	c->items[c->n_items++] = -1;
	c->lists[c->n_lists] = first;
	*ret = (uint32_t)c->n_lists++;
	return 0;
}

/* Adds name s (len bytes) to the list being built from items[first] on,
 * once; -ENOSPC when the table of names is full. */
static int list_add(struct merger_calls *c, size_t first, const char *s, size_t len)
{
	int32_t idx;
	int r = name_index(c, s, len, &idx);

	if (r < 0)
		return r;
	for (size_t k = first; k < c->n_items; k++)
		if (c->items[k] == idx)
			return 0;
	if (util__grow((void **)&c->items, &c->cap_items, c->n_items + 2, sizeof(*c->items)) < 0)
		return -ENOMEM;
	c->items[c->n_items++] = idx;
	return 0;
}

int merger_calls__add_line(struct merger_calls *c, const char *line, uint32_t *ret)
{
	size_t first = c->n_items;
	const char *p = line;
	int r = 0;

	*ret = 0;
	if (!line || c->n_lists > UINT32_MAX - 1)
		return 0;
	while (*p) {
		const char *s, *q;
		size_t len;

		if (*p == '#')
			break; /* a comment */
		if (*p == '"' || *p == '\'') {
			/* a string's words are no calls */
			char quote = *p++;

			while (*p && *p != quote)
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (*p)
				p++;
			continue;
		}
		if (!ident_start(*p) || (p > line && ident_char(p[-1]))) {
			p++;
			continue;
		}
		s = p;
		while (ident_char(*p))
			p++;
		len = (size_t)(p - s);
		for (q = p; *q == ' ' || *q == '\t'; q++)
			;
		if (*q != '(' || len < MIN_NAME || len > MAX_NAME)
			continue;
		if ((len == 3 && strncmp(s, "def", 3) == 0) ||
		    (len == 5 && strncmp(s, "class", 5) == 0))
			break; /* a definition: its name is not called here */
		r = list_add(c, first, s, len);
		if (r == -ENOSPC)
			break;
		if (r < 0)
			return r;
	}
	return close_list(c, first, ret);
}

int merger_calls__add_names(struct merger_calls *c, const char *const *names, const size_t *lens,
			    size_t n, uint32_t *ret)
{
	size_t first = c->n_items;
	int r;

	*ret = 0;
	if (c->n_lists > UINT32_MAX - 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || lens[i] < MIN_NAME || lens[i] > MAX_NAME ||
		    memchr(names[i], '\0', lens[i]))
			continue;
		r = list_add(c, first, names[i], lens[i]);
		if (r == -ENOSPC)
			break;
		if (r < 0)
			return r;
	}
	return close_list(c, first, ret);
}

/* Where the last part of a C++ name begins: past its last "::" outside
 * template arguments ("node::crypto::CryptoJob<node::crypto::X>::Run":
 * "Run"); 0 when it has none. */
static size_t cxx_last_part(const char *fn, size_t len)
{
	size_t at = 0;
	int depth = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if (fn[i] == '<')
			depth++;
		else if (fn[i] == '>' && depth > 0)
			depth--;
		else if (!depth && fn[i] == ':' && fn[i + 1] == ':')
			at = i + 2;
	}
	return at;
}

/* The name index a C function name stands for: the name itself or its part
 * after any underscore, or a C++ method's last part ("WriteFileUtf8" of
 * node::fs::WriteFileUtf8; names compare without case), without "_impl", a
 * GCC clone suffix and a C++ parameter list; -1 none. */
static int32_t name_of_c(const struct merger_calls *c, const char *fn)
{
	size_t len = strcspn(fn, ".("), last;

	last = cxx_last_part(fn, len);
	if (last && len - last >= MIN_NAME) {
		int32_t i = find_name(c, fn + last, len - last);

		if (i >= 0)
			return i;
	}
	if (len > 5 && strncmp(fn + len - 5, "_impl", 5) == 0)
		len -= 5;
	for (size_t at = 0; at < len; at++) {
		int32_t i;

		if (at && fn[at - 1] != '_')
			continue;
		if (len - at < MIN_NAME)
			break;
		i = find_name(c, fn + at, len - at);
		if (i >= 0)
			return i;
	}
	return -1;
}

int merger_calls__key_of_stack(struct merger_calls *c, const struct frame *user,
			       size_t region_begin)
{
	if (!c || !c->n_names || !region_begin)
		return -1;
	/* from the frame the eval loop called, leafward */
	for (size_t k = 0; k < MAX_SCAN && k < region_begin; k++) {
		const struct frame *f = &user[region_begin - 1 - k];
		int32_t i;

		if (f->kind != FRAME_NATIVE || !f->name)
			continue;
		i = name_of_c(c, f->name);
		if (i < 0)
			continue;
		for (size_t key = 0; key < c->n_keys; key++)
			if (c->key_name[key] == i)
				return (int)key;
		if (c->n_keys == MAX_KEYS)
			return -1;
		c->key_name[c->n_keys] = i;
		return (int)c->n_keys++;
	}
	return -1;
}

size_t merger_calls__n_keys(const struct merger_calls *c)
{
	return c ? c->n_keys : 0;
}

bool merger_calls__calls(const struct merger_calls *c, uint32_t list, int key)
{
	if (!c || list == 0 || list >= c->n_lists || key < 0 || (size_t)key >= c->n_keys)
		return false;
	for (size_t k = c->lists[list]; c->items[k] >= 0; k++)
		if (c->items[k] == c->key_name[key])
			return true;
	return false;
}

const char *merger_calls__key_name(const struct merger_calls *c, int key)
{
	if (!c || key < 0 || (size_t)key >= c->n_keys)
		return NULL;
	return c->names[c->key_name[key]];
}

size_t merger_calls__n_names(const struct merger_calls *c)
{
	return c ? c->n_names : 0;
}

void merger_calls__mark(const struct merger_calls *c, uint32_t list, uint8_t *marks)
{
	if (!c || list == 0 || list >= c->n_lists)
		return;
	for (size_t k = c->lists[list]; c->items[k] >= 0; k++)
		marks[c->items[k]] = 1;
}

bool merger_calls__all_marked(const struct merger_calls *c, uint32_t list, const uint8_t *marks)
{
	if (!c || list == 0 || list >= c->n_lists)
		return true;
	for (size_t k = c->lists[list]; c->items[k] >= 0; k++)
		if (!marks[c->items[k]])
			return false;
	return true;
}
