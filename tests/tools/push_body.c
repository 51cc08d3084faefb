/* SPDX-License-Identifier: Apache-2.0 */
/*
 * push_body: writes a Pyroscope push request body (push.v1.PushRequest) to
 * stdout, for shell tests and benchmarks of the push endpoint.
 *
 *   push_body [--json] [--gzip] [--series] [-l NAME=VALUE]... [--id ID]
 *             [-p FILE]...
 *
 * A series is open from the start; --series opens another. -l adds a label
 * to the current series, -p a raw sample whose raw_profile is FILE's bytes
 * as they are (an --id before it sets that sample's ID). --json writes
 * proto3 JSON instead of the binary encoding, --gzip gzips the output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push.pb-c.h"
#include "util/util.h"

#define MAX_FILE (256u << 20)

struct config {
	bool json;
	bool gzip;
};

/* The request being built; every array grows with realloc. */
struct body {
	Push__V1__PushRequest req;
	size_t cap_series;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: push_body [--json] [--gzip] [--series] [-l NAME=VALUE]... [--id ID] "
		   "[-p FILE]...\n");
}

static void *grow(void *ptr, size_t n, size_t size)
{
	return realloc(ptr, n * size);
}

static int add_series(struct body *b)
{
	Push__V1__RawProfileSeries *s = malloc(sizeof(*s)), **ns;

	if (!s)
		return -ENOMEM;
	*s = (Push__V1__RawProfileSeries)PUSH__V1__RAW_PROFILE_SERIES__INIT;
	ns = grow(b->req.series, b->req.n_series + 1, sizeof(*ns));
	if (!ns) {
		free(s);
		return -ENOMEM;
	}
	b->req.series = ns;
	b->req.series[b->req.n_series++] = s;
	return 0;
}

static int add_label(struct body *b, const char *arg)
{
	Push__V1__RawProfileSeries *s = b->req.series[b->req.n_series - 1];
	Push__V1__LabelPair *l, **nl;
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg) {
		fprintf(stderr, "push_body: -l wants NAME=VALUE, not '%s'\n", arg);
		return -EINVAL;
	}
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	*l = (Push__V1__LabelPair)PUSH__V1__LABEL_PAIR__INIT;
	l->name = strndup(arg, (size_t)(eq - arg));
	l->value = strdup(eq + 1);
	nl = grow(s->labels, s->n_labels + 1, sizeof(*nl));
	if (!l->name || !l->value || !nl) {
		free(l->name);
		free(l->value);
		free(l);
		free(nl);
		return -ENOMEM;
	}
	s->labels = nl;
	s->labels[s->n_labels++] = l;
	return 0;
}

static int add_sample(struct body *b, const char *path, const char *id)
{
	Push__V1__RawProfileSeries *s = b->req.series[b->req.n_series - 1];
	Push__V1__RawSample *sm, **ns;
	struct dynbuf data;
	struct errbuf err;
	int r;

	dynbuf__init(&data, 0);
	r = util__read_file(path, MAX_FILE, &err, &data);
	if (r < 0) {
		fprintf(stderr, "push_body: %s\n", err.msg);
		dynbuf__free(&data);
		return r;
	}
	sm = malloc(sizeof(*sm));
	ns = sm ? grow(s->samples, s->n_samples + 1, sizeof(*ns)) : NULL;
	if (!ns) {
		free(sm);
		dynbuf__free(&data);
		return -ENOMEM;
	}
	s->samples = ns;
	*sm = (Push__V1__RawSample)PUSH__V1__RAW_SAMPLE__INIT;
	/* a copy: a dynbuf's memory may be mapped (see util__big_realloc) */
	sm->raw_profile.data = malloc(data.len ? data.len : 1);
	sm->raw_profile.len = data.len;
	sm->id = id ? strdup(id) : (char *)protobuf_c_empty_string;
	if (!sm->raw_profile.data || !sm->id) {
		free(sm->raw_profile.data);
		if (sm->id != protobuf_c_empty_string)
			free(sm->id);
		free(sm);
		dynbuf__free(&data);
		return -ENOMEM;
	}
	if (data.len)
		memcpy(sm->raw_profile.data, data.data, data.len);
	dynbuf__free(&data);
	s->samples[s->n_samples++] = sm;
	return 0;
}

static void free_body(struct body *b)
{
	for (size_t i = 0; i < b->req.n_series; i++) {
		Push__V1__RawProfileSeries *s = b->req.series[i];

		for (size_t k = 0; k < s->n_labels; k++) {
			free(s->labels[k]->name);
			free(s->labels[k]->value);
			free(s->labels[k]);
		}
		for (size_t k = 0; k < s->n_samples; k++) {
			free(s->samples[k]->raw_profile.data);
			if (s->samples[k]->id != protobuf_c_empty_string)
				free(s->samples[k]->id);
			free(s->samples[k]);
		}
		free(s->labels);
		free(s->samples);
		free(s);
	}
	free(b->req.series);
}

static int base64(struct dynbuf *out, const uint8_t *d, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		r = dynbuf__append(out, q, 4);
	}
	return r;
}

/* proto3 JSON, as Connect's JSON codec writes it. */
static int to_json(const Push__V1__PushRequest *req, struct dynbuf *out)
{
	int r = dynbuf__printf(out, "{\"series\":[");

	for (size_t i = 0; i < req->n_series && r == 0; i++) {
		const Push__V1__RawProfileSeries *s = req->series[i];

		r = dynbuf__printf(out, "%s{\"labels\":[", i ? "," : "");
		for (size_t k = 0; k < s->n_labels && r == 0; k++) {
			r = dynbuf__printf(out, "%s{\"name\":", k ? "," : "");
			if (r == 0)
				r = dynbuf__json_str(out, s->labels[k]->name);
			if (r == 0)
				r = dynbuf__printf(out, ",\"value\":");
			if (r == 0)
				r = dynbuf__json_str(out, s->labels[k]->value);
			if (r == 0)
				r = dynbuf__putc(out, '}');
		}
		if (r == 0)
			r = dynbuf__printf(out, "],\"samples\":[");
		for (size_t k = 0; k < s->n_samples && r == 0; k++) {
			r = dynbuf__printf(out, "%s{\"rawProfile\":\"", k ? "," : "");
			if (r == 0)
				r = base64(out, s->samples[k]->raw_profile.data,
					   s->samples[k]->raw_profile.len);
			if (r == 0)
				r = dynbuf__printf(out, "\",\"ID\":");
			if (r == 0)
				r = dynbuf__json_str(out, s->samples[k]->id);
			if (r == 0)
				r = dynbuf__putc(out, '}');
		}
		if (r == 0)
			r = dynbuf__printf(out, "]}");
	}
	if (r == 0)
		r = dynbuf__printf(out, "]}");
	return r;
}

int main(int argc, char **argv)
{
	struct config cfg = {0};
	struct body b = {.req = PUSH__V1__PUSH_REQUEST__INIT};
	struct dynbuf enc, gz;
	struct errbuf err;
	const char *id = NULL, *data;
	size_t len;
	int r = 0, i;

	dynbuf__init(&enc, 0);
	dynbuf__init(&gz, 0);
	r = add_series(&b);
	for (i = 1; i < argc && r == 0; i++) {
		const char *a = argv[i];
		bool has_arg = i + 1 < argc;

		if (strcmp(a, "--json") == 0)
			cfg.json = true;
		else if (strcmp(a, "--gzip") == 0)
			cfg.gzip = true;
		else if (strcmp(a, "--series") == 0)
			r = add_series(&b);
		else if (strcmp(a, "-l") == 0 && has_arg)
			r = add_label(&b, argv[++i]);
		else if (strcmp(a, "--id") == 0 && has_arg)
			id = argv[++i];
		else if (strcmp(a, "-p") == 0 && has_arg) {
			r = add_sample(&b, argv[++i], id);
			id = NULL;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			goto cleanup;
		} else {
			fprintf(stderr, "push_body: bad argument '%s'\n", a);
			usage(stderr);
			r = -EINVAL;
		}
	}
	if (r < 0)
		goto cleanup;
	if (cfg.json) {
		r = to_json(&b.req, &enc);
	} else {
		len = push__v1__push_request__get_packed_size(&b.req);
		r = dynbuf__reserve(&enc, len);
		if (r == 0)
			enc.len = push__v1__push_request__pack(&b.req, (uint8_t *)enc.data);
	}
	if (r < 0)
		goto cleanup;
	data = enc.data;
	len = enc.len;
	if (cfg.gzip) {
		r = util__gzip(enc.data, enc.len, -1, &gz);
		if (r < 0)
			goto cleanup;
		data = gz.data;
		len = gz.len;
	}
	r = util__write_file("-", data, len, &err);
	if (r < 0)
		fprintf(stderr, "push_body: %s\n", err.msg);
cleanup:
	if (r == -ENOMEM)
		fprintf(stderr, "push_body: out of memory\n");
	free_body(&b);
	dynbuf__free(&enc);
	dynbuf__free(&gz);
	return r < 0 ? 1 : 0;
}
