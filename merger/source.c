/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: source lines. The Python SDK's frames name a file and a line, and
 * the line a thread is on when it is in C is the call into C
 * ("hashlib.pbkdf2_hmac(...)"): the splice reads it to tell which SDK stacks
 * called which C function (splice.c, docs/merger.md "Native calls"). Files
 * are read under a process's root (/proc/PID/root), relative names under its
 * working directory (braid's own when the process is gone), only regular
 * files named *.py, not symbolic links (the names come from a push), at most
 * MAX_FILE_BYTES each, MAX_FILES and MAX_TOTAL_BYTES per source; a file that can't be read is
 * remembered as such. Nothing read leaves braid: the lines only choose pools.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES	64
#define MAX_FILE_BYTES	(1u << 20)
#define MAX_TOTAL_BYTES (8u << 20) /* of all the files a source holds */
#define MAX_LINE_BYTES	4096

struct source_file {
	char *name;	/* as the SDK names it */
	char *text;	/* NULL: unreadable */
	size_t *starts; /* byte offset of each line */
	size_t n_lines;
	size_t len;
};

struct merger_source {
	char root[64], cwd[64]; /* "" or "/proc/PID/root", "/proc/PID/cwd" */
	struct source_file files[MAX_FILES];
	size_t n_files;
	size_t bytes; /* of the files read */
	char line[MAX_LINE_BYTES + 1];
};

int merger__source_new(int32_t pid, struct merger_source **ret)
{
	struct merger_source *s = calloc(1, sizeof(*s));

	*ret = NULL;
	if (!s)
		return -ENOMEM;
	if (pid > 0) {
		snprintf(s->root, sizeof(s->root), "/proc/%d/root", (int)pid);
		snprintf(s->cwd, sizeof(s->cwd), "/proc/%d/cwd", (int)pid);
		/* a process gone: the files as this process sees them */
		if (access(s->root, F_OK) != 0)
			s->root[0] = s->cwd[0] = '\0';
	}
	*ret = s;
	return 0;
}

void merger__source_free(struct merger_source *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].name);
		free(s->files[i].text);
		free(s->files[i].starts);
	}
	free(s);
}

static bool python_file(const char *name)
{
	size_t n = strlen(name);

	return n > 3 && strcmp(name + n - 3, ".py") == 0 && !strstr(name, "/../");
}

/* Reads f->name into f->text (NULL on any failure). */
static void load(struct merger_source *s, struct source_file *f)
{
	char path[4096];
	struct stat st;
	char *text = NULL;
	size_t *starts = NULL, n = 0, cap = 0, got = 0;
	int fd = -1, len;

	if (f->name[0] == '/')
		len = snprintf(path, sizeof(path), "%s%s", s->root, f->name);
	else
		len = snprintf(path, sizeof(path), "%s%s%s", s->cwd, s->cwd[0] ? "/" : "", f->name);
	if (len < 0 || (size_t)len >= sizeof(path))
		return;
	/* a regular file only, not a link to one: the name comes from a push.
	 * O_NONBLOCK: a FIFO swapped in meanwhile must not hang the merger */
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > MAX_FILE_BYTES ||
	    s->bytes + (uint64_t)st.st_size > MAX_TOTAL_BYTES)
		goto cleanup;
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		goto cleanup;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	text[got] = '\0';
	for (size_t i = 0; i <= got; i++) {
		if (i != 0 && text[i - 1] != '\n')
			continue;
		if (i == got)
			break;
		if (util__grow((void **)&starts, &cap, n + 1, sizeof(*starts)) < 0)
			goto cleanup;
		starts[n++] = i;
	}
	f->text = text;
	f->starts = starts;
	f->n_lines = n;
	f->len = got;
	s->bytes += got + n * sizeof(*starts);
	text = NULL;
	starts = NULL;
cleanup:
	free(text);
	free(starts);
	close(fd);
}

const char *merger_source__line(struct merger_source *s, const char *filename, int64_t line)
{
	struct source_file *f = NULL;
	size_t a, b;

	if (!s || !filename || !*filename || line < 1 || !python_file(filename))
		return NULL;
	for (size_t i = 0; i < s->n_files; i++)
		if (strcmp(s->files[i].name, filename) == 0) {
			f = &s->files[i];
			break;
		}
	if (!f) {
		if (s->n_files == MAX_FILES)
			return NULL;
		f = &s->files[s->n_files];
		*f = (struct source_file){.name = strdup(filename)};
		if (!f->name)
			return NULL;
		s->n_files++;
		load(s, f);
	}
	if (!f->text || (uint64_t)line > f->n_lines)
		return NULL;
	a = f->starts[line - 1];
	b = (size_t)line < f->n_lines ? f->starts[line] : f->len;
	while (b > a && (f->text[b - 1] == '\n' || f->text[b - 1] == '\r'))
		b--;
	if (b - a > MAX_LINE_BYTES)
		b = a + MAX_LINE_BYTES;
	memcpy(s->line, f->text + a, b - a);
	s->line[b - a] = '\0';
	return s->line;
}
