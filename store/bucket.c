/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: eBPF samples in per-second buckets, their stacks and frames, and
 * the merger's questions about them (uncovered seconds, the emitted
 * watermark).
 *
 * - Stacks and frames are stored once, keyed by a content hash that is
 *   checked against the content on lookup (so a collision only costs a probe).
 * - A stack's last_used_s is kept within STACK_TOUCH_S of the newest bucket
 *   that uses it (maintain.c relies on it to delete stacks).
 */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Two seeds: the first hash is the key on disk, the pair keys the caches. */
#define HASH_SEED_1 0x8f1bbcdcca62c1d6ULL
#define HASH_SEED_2 0x5a827999ed9eba1ULL

/* ---- stacks and frames ------------------------------------------------------------- */

static int check_depth(struct store *s, const struct frame *f, size_t n)
{
	if (n > STORE_MAX_STACK_DEPTH)
		return store_fail(s, -EINVAL, "a stack of %zu frames: at most %d", n,
				  STORE_MAX_STACK_DEPTH);
	if (n && !f)
		return store_fail(s, -EINVAL, "frames missing");
	return 0;
}

/* Appends the frame's key bytes to b: kind, offset (little-endian), name
 * NUL, module NUL. The frame's own key and a stack's cache key (all its
 * frames' keys end to end) are both made of these. Checks the frame here,
 * where the lengths are known anyway: a bad frame fails the call, whose
 * transaction then keeps nothing. `i` names the frame in the message. */
static int frame_key_append(struct store *s, struct dynbuf *b, const struct frame *f, size_t i)
{
	const char *name = f->name ? f->name : "", *module = f->module ? f->module : "";
	size_t nl = strlen(name) + 1, ml = strlen(module) + 1;
	unsigned char *p;
	int r;

	if ((unsigned)f->kind >= FRAME_KIND_COUNT)
		return store_fail(s, -EINVAL, "frame %zu has an unknown kind %d", i, f->kind);
	if (nl > STORE_MAX_FRAME_NAME + 1 || ml > STORE_MAX_FRAME_NAME + 1)
		return store_fail(s, -EINVAL, "frame %zu has a name over %d bytes", i,
				  STORE_MAX_FRAME_NAME);
	/* one reserve and plain copies: this runs for every frame of a drain */
	r = dynbuf__reserve(b, 9 + nl + ml);
	if (r < 0)
		return store_fail(s, r, "out of memory");
	p = (unsigned char *)b->data + b->len;
	p[0] = (unsigned char)f->kind;
	for (int k = 0; k < 8; k++)
		p[1 + k] = (unsigned char)(f->offset >> (8 * k));
	memcpy(p + 9, name, nl);
	memcpy(p + 9 + nl, module, ml);
	b->len += 9 + nl + ml;
	b->data[b->len] = '\0'; /* dynbuf's promise */
	return 0;
}

static int frame_id(struct store *s, const struct frame *f, size_t i, int64_t *ret_id)
{
	const char *name = f->name ? f->name : "", *module = f->module ? f->module : "";
	struct cache_slot *c;
	uint64_t h1, h2;
	sqlite3_stmt *q;
	int rc, r;

	dynbuf__reset(&s->buf2);
	r = frame_key_append(s, &s->buf2, f, i);
	if (r < 0)
		return r;
	h1 = util__hash_seeded(s->buf2.data, s->buf2.len, HASH_SEED_1);
	h2 = util__hash_seeded(s->buf2.data, s->buf2.len, HASH_SEED_2);
	c = store_cache_find(&s->frames, h1, h2);
	if (c) {
		*ret_id = c->id;
		return 0;
	}
	q = store_stmt(s, ST_FRAME_FIND);
	if (!q)
		return -EIO;
	r = store_bind_int64(s, q, 1, (int64_t)h1);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *n2 = store_col_text(q, 2), *m2 = store_col_text(q, 3);

		if (sqlite3_column_int(q, 1) == (int)f->kind &&
		    (uint64_t)sqlite3_column_int64(q, 4) == f->offset && n2 &&
		    strcmp(n2, name) == 0 && m2 && strcmp(m2, module) == 0) {
			*ret_id = sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
			store_cache_put(&s->frames, h1, h2, *ret_id, 0);
			return 0;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return store_db_fail(s, rc, "finding a frame");
	q = store_stmt(s, ST_FRAME_INSERT);
	if (!q)
		return -EIO;
	if ((r = store_bind_int64(s, q, 1, (int64_t)h1)) < 0 ||
	    (r = store_bind_int(s, q, 2, (int)f->kind)) < 0 ||
	    (r = store_bind_text(s, q, 3, name)) < 0 ||
	    (r = store_bind_text(s, q, 4, module)) < 0 ||
	    (r = store_bind_int64(s, q, 5, (int64_t)f->offset)) < 0)
		return r;
	r = store_run(s, q, "storing a frame");
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(s->db);
	store_cache_put(&s->frames, h1, h2, *ret_id, 0);
	return 0;
}

static int put_varint(struct dynbuf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return dynbuf__append(b, tmp, n);
}

/* Decodes a stack blob into frame ids; returns the count or -EBADMSG. */
int store_get_varints(const unsigned char *p, size_t len, int64_t *out, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		uint64_t v = 0;
		int shift = 0;

		for (;;) {
			if (i >= len || shift > 63)
				return -EBADMSG;
			v |= (uint64_t)(p[i] & 0x7f) << shift;
			shift += 7;
			if (!(p[i++] & 0x80))
				break;
		}
		if (n == max)
			return -EBADMSG;
		out[n++] = (int64_t)v;
	}
	return (int)n;
}

/* The content key of a stack for the connection's cache: two independent
 * 64-bit hashes of all its frames' fields laid end to end, so that a cached
 * stack is found without resolving its frames one by one (the frames are
 * what costs). One long buffer hashes faster than many short strings. */
static int stack_key(struct store *s, const struct frame *f, size_t n, uint64_t *ret1,
		     uint64_t *ret2)
{
	struct dynbuf *b = &s->buf2;
	int r;

	dynbuf__reset(b);
	for (size_t i = 0; i < n; i++) {
		r = frame_key_append(s, b, &f[i], i);
		if (r < 0)
			return r;
	}
	*ret1 = util__hash_seeded(b->data ? b->data : "", b->len, HASH_SEED_1);
	*ret2 = util__hash_seeded(b->data ? b->data : "", b->len, HASH_SEED_2);
	if (!*ret1)
		*ret1 = 1;
	return 0;
}

/* Keeps the stack's last_used_s within STACK_TOUCH_S of `second`. */
static int stack_touch(struct store *s, int64_t id, int64_t *last, int64_t second)
{
	sqlite3_stmt *q;
	int r;

	if (*last + STACK_TOUCH_S > second)
		return 0;
	q = store_stmt(s, ST_STACK_TOUCH);
	if (!q)
		return -EIO;
	if ((r = store_bind_int64(s, q, 1, id)) < 0 || (r = store_bind_int64(s, q, 2, second)) < 0)
		return r;
	r = store_run(s, q, "updating a stack");
	if (r >= 0)
		*last = second;
	return r;
}

/* The stack's id, stored (with its frames) if new. */
static int stack_id(struct store *s, const struct frame *frames, size_t n, int64_t second,
		    int64_t *ret_id)
{
	struct cache_slot *c;
	uint64_t k1 = 0, k2 = 0, h;
	sqlite3_stmt *q;
	int64_t fid = 0, id = 0, last = 0;
	int rc, r;

	r = stack_key(s, frames, n, &k1, &k2);
	if (r < 0)
		return r;
	c = store_cache_find(&s->stacks, k1, k2);
	if (c) {
		r = stack_touch(s, c->id, &c->aux, second);
		if (r >= 0)
			*ret_id = c->id;
		return r;
	}
	/* on disk a stack is its frame ids; its key there is their hash */
	dynbuf__reset(&s->buf1);
	for (size_t i = 0; i < n; i++) {
		r = frame_id(s, &frames[i], i, &fid);
		if (r < 0)
			return r;
		r = put_varint(&s->buf1, (uint64_t)fid);
		if (r < 0)
			return store_fail(s, r, "out of memory");
	}
	h = util__hash_seeded(s->buf1.data ? s->buf1.data : "", s->buf1.len, HASH_SEED_1);
	q = store_stmt(s, ST_STACK_FIND);
	if (!q)
		return -EIO;
	r = store_bind_int64(s, q, 1, (int64_t)h);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(q, 1) == s->buf1.len &&
		    (!s->buf1.len ||
		     memcmp(sqlite3_column_blob(q, 1), s->buf1.data, s->buf1.len) == 0)) {
			id = sqlite3_column_int64(q, 0);
			last = sqlite3_column_int64(q, 2);
			break;
		}
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_db_fail(s, rc, "finding a stack");
	if (id) {
		r = stack_touch(s, id, &last, second);
		if (r < 0)
			return r;
	} else {
		const char *blob = s->buf1.data ? s->buf1.data : "";

		q = store_stmt(s, ST_STACK_INSERT);
		if (!q)
			return -EIO;
		if ((r = store_bind_int64(s, q, 1, (int64_t)h)) < 0 ||
		    (r = store_bind_blob(s, q, 2, blob, s->buf1.len)) < 0 ||
		    (r = store_bind_int64(s, q, 3, second)) < 0)
			return r;
		r = store_run(s, q, "storing a stack");
		if (r < 0)
			return r;
		id = sqlite3_last_insert_rowid(s->db);
		last = second;
	}
	store_cache_put(&s->stacks, k1, k2, id, last);
	*ret_id = id;
	return 0;
}

/* ---- eBPF buckets ---------------------------------------------------------------------- */

struct process_second {
	int64_t process_id, second;
};

static int by_process(const void *a, const void *b)
{
	const struct process_second *x = a, *y = b;

	return x->process_id < y->process_id ? -1 : x->process_id > y->process_id;
}

/* Raises each process's ebpf_last_s to the last second of its rows: one
 * UPDATE per process, however many rows it has. */
static int note_last_seconds(struct store *s, const struct store_bucket *rows, size_t n)
{
	struct process_second *ps = malloc(n * sizeof(*ps));
	sqlite3_stmt *q;
	int r = 0;

	if (!ps)
		return store_fail(s, -ENOMEM, "out of memory noting the last eBPF seconds");
	for (size_t i = 0; i < n; i++)
		ps[i] = (struct process_second){rows[i].process_id, rows[i].second};
	qsort(ps, n, sizeof(*ps), by_process);
	for (size_t i = 0; i < n && r >= 0;) {
		int64_t last = ps[i].second;
		size_t j = i + 1;

		for (; j < n && ps[j].process_id == ps[i].process_id; j++)
			if (ps[j].second > last)
				last = ps[j].second;
		q = store_stmt(s, ST_BUCKET_LAST);
		if (!q) {
			r = -EIO;
			break;
		}
		if ((r = store_bind_int64(s, q, 1, ps[i].process_id)) < 0 ||
		    (r = store_bind_int64(s, q, 2, last)) < 0)
			break;
		r = store_run(s, q, "noting the last eBPF second of a process");
		i = j;
	}
	free(ps);
	return r;
}

int store__put_buckets(struct store *s, const struct store_bucket *rows, size_t n,
		       size_t *ret_dropped)
{
	int64_t min_second = INT64_MAX, samples = 0, sid = 0;
	uint64_t need = 0;
	sqlite3_stmt *q;
	bool ok;
	int r;

	if (n && !rows)
		return store_fail(s, -EINVAL, "bucket rows missing");
	for (size_t i = 0; i < n; i++) {
		if (rows[i].process_id <= 0)
			return store_fail(s, -EINVAL, "bucket row %zu has no process", i);
		if (rows[i].count <= 0)
			return store_fail(s, -EINVAL, "bucket row %zu has a count of %" PRId64, i,
					  rows[i].count);
		r = check_depth(s, rows[i].frames, rows[i].n_frames);
		if (r < 0)
			return r;
		if (rows[i].second < min_second)
			min_second = rows[i].second;
		if (__builtin_add_overflow(samples, rows[i].count, &samples))
			return store_fail(s, -EINVAL, "bucket counts overflow");
		/* a row and its index entry; stacks mostly exist already */
		need += 64 + 4 * rows[i].n_frames;
	}
	if (ret_dropped)
		*ret_dropped = 0;
	if (!n)
		return 0;
	r = store_op_begin(s);
	if (r < 0)
		return r;
	r = store_caches_check(s);
	if (r < 0)
		goto cleanup;
	/* only buckets older than this drain make room for it */
	r = store_make_room(s, need + 2 * (uint64_t)s->page_size, store_intake_limit(s), min_second,
			    false, &ok);
	if (r < 0)
		goto cleanup;
	if (!ok) {
		/* keep what was dropped; count these rows as refused */
		r = store_counter_add(s, STORE_CTR_EBPF_ROWS_REFUSED, (int64_t)n);
		if (r >= 0)
			r = store_counter_add(s, STORE_CTR_EBPF_SAMPLES_REFUSED, samples);
		r = store_op_end(s, r);
		if (r >= 0 && ret_dropped)
			*ret_dropped = n;
		return r;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = stack_id(s, rows[i].frames, rows[i].n_frames, rows[i].second, &sid);
		if (r < 0)
			break;
		q = store_stmt(s, ST_BUCKET_UPSERT);
		if (!q) {
			r = -EIO;
			break;
		}
		if ((r = store_bind_int64(s, q, 1, rows[i].process_id)) < 0 ||
		    (r = store_bind_int64(s, q, 2, rows[i].second)) < 0 ||
		    (r = store_bind_int(s, q, 3, rows[i].tid)) < 0 ||
		    (r = store_bind_int64(s, q, 4, sid)) < 0 ||
		    (r = store_bind_int64(s, q, 5, rows[i].count)) < 0 ||
		    (r = store_bind_int64(s, q, 6, (int64_t)rows[i].thread_pointer)) < 0)
			break;
		r = store_run(s, q, "storing eBPF buckets");
	}
	if (r >= 0)
		r = note_last_seconds(s, rows, n);
cleanup:
	r = store_op_end(s, r);
	if (r == -ENOSPC) {
		enum store_counter c[2] = {STORE_CTR_EBPF_ROWS_REFUSED,
					   STORE_CTR_EBPF_SAMPLES_REFUSED};
		int64_t v[2] = {(int64_t)n, samples};

		store_counters_add_alone(s, c, v, 2);
		if (ret_dropped)
			*ret_dropped = n;
		return 0;
	}
	return r;
}

/* Frames of one read, by id, their strings in the read arena. */
struct frame_memo {
	struct cache ids; /* frame id -> index in `frames` */
	struct frame *frames;
	size_t n, cap;
};

static int memo_frame(struct store *s, struct frame_memo *m, int64_t id, const struct frame **ret)
{
	struct cache_slot *c = store_cache_find(&m->ids, (uint64_t)id, 0);
	sqlite3_stmt *q;
	int r;

	if (c) {
		*ret = &m->frames[c->aux];
		return 0;
	}
	if (m->n == m->cap) {
		size_t ncap = m->cap ? 2 * m->cap : 256;
		struct frame *nf = realloc(m->frames, ncap * sizeof(*nf));

		if (!nf)
			return store_fail(s, -ENOMEM, "out of memory");
		m->frames = nf;
		m->cap = ncap;
	}
	q = store_stmt(s, ST_FRAME_GET);
	if (!q)
		return -EIO;
	r = store_bind_int64(s, q, 1, id);
	if (r < 0)
		return r;
	r = store_step_row(s, q, "reading a frame");
	if (r == -ENOENT)
		return store_fail(s, -EIO, "stack refers to a missing frame %" PRId64 " (%s)", id,
				  s->path);
	if (r < 0)
		return r;
	m->frames[m->n] = (struct frame){
		.kind = (enum frame_kind)sqlite3_column_int(q, 0),
		.name = store_arena_text(s, q, 1),
		.module = store_arena_text(s, q, 2),
		.offset = (uint64_t)sqlite3_column_int64(q, 3),
	};
	sqlite3_reset(q);
	if (!m->frames[m->n].name || !m->frames[m->n].module)
		return store_fail(s, -ENOMEM, "out of memory");
	if (!store_cache_put(&m->ids, (uint64_t)id, 0, id, (int64_t)m->n))
		return store_fail(s, -ENOMEM, "out of memory");
	*ret = &m->frames[m->n++];
	return 0;
}

int store__buckets(struct store *s, int64_t process_id, int64_t from_s, int64_t until_s,
		   store_bucket_fn fn, void *ctx)
{
	struct frame_memo memo = {.ids = {.grow = true}};
	struct frame *frames = NULL;
	int64_t ids[STORE_MAX_STACK_DEPTH];
	int64_t last_stack = -1;
	sqlite3_stmt *q = NULL, *sq;
	size_t depth = 0;
	int rc, r = 0;

	arena__reset(&s->read_arena);
	frames = malloc(sizeof(*frames) * STORE_MAX_STACK_DEPTH);
	if (!frames)
		return store_fail(s, -ENOMEM, "out of memory");
	/* a statement of its own: callbacks may call back into the store */
	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_BUCKETS_RANGE], -1, &q, NULL);
	if (rc != SQLITE_OK) {
		r = store_db_fail(s, rc, "reading eBPF buckets");
		goto cleanup;
	}
	if ((r = store_bind_int64(s, q, 1, process_id)) < 0 ||
	    (r = store_bind_int64(s, q, 2, from_s)) < 0 ||
	    (r = store_bind_int64(s, q, 3, until_s)) < 0)
		goto cleanup;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t sid = sqlite3_column_int64(q, 2);
		struct store_bucket b;

		if (sid != last_stack) {
			int n;

			sq = store_stmt(s, ST_STACK_GET);
			if (!sq) {
				r = -EIO;
				break;
			}
			r = store_bind_int64(s, sq, 1, sid);
			if (r >= 0)
				r = store_step_row(s, sq, "reading a stack");
			if (r < 0) {
				if (r == -ENOENT)
					r = store_fail(s, -EIO,
						       "bucket refers to a missing stack %" PRId64
						       " (%s)",
						       sid, s->path);
				break;
			}
			n = store_get_varints(sqlite3_column_blob(sq, 0),
					      (size_t)sqlite3_column_bytes(sq, 0), ids,
					      UTIL_ARRAY_SIZE(ids));
			sqlite3_reset(sq);
			if (n < 0) {
				r = store_fail(s, -EIO, "damaged stack %" PRId64 " (%s)", sid,
					       s->path);
				break;
			}
			for (int i = 0; i < n && r >= 0; i++) {
				const struct frame *f = NULL;

				r = memo_frame(s, &memo, ids[i], &f);
				if (r >= 0)
					frames[i] = *f;
			}
			if (r < 0)
				break;
			depth = (size_t)n;
			last_stack = sid;
		}
		b = (struct store_bucket){
			.process_id = process_id,
			.tid = sqlite3_column_int(q, 0),
			.second = sqlite3_column_int64(q, 1),
			.frames = frames,
			.n_frames = depth,
			.count = sqlite3_column_int64(q, 3),
			.thread_pointer = (uint64_t)sqlite3_column_int64(q, 4),
		};
		r = fn(ctx, &b);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "reading eBPF buckets");
cleanup:
	sqlite3_finalize(q);
	store_cache_free(&memo.ids);
	free(memo.frames);
	free(frames);
	return r;
}

int store__uncovered(struct store *s, int64_t before_s, store_uncovered_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int rc, r = 0;

	/* own statement: the callback may call back into the store */
	rc = sqlite3_prepare_v2(s->db, store_stmt_sql[ST_UNCOVERED], -1, &q, NULL);
	if (rc != SQLITE_OK)
		return store_db_fail(s, rc, "finding uncovered eBPF samples");
	r = store_bind_int64(s, q, 1, before_s);
	if (r < 0)
		goto cleanup;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_process p;
		struct store_uncovered u = {
			.process = &p,
			.first_s = sqlite3_column_int64(q, 1),
			.last_s = sqlite3_column_int64(q, 2),
			.rows = sqlite3_column_int64(q, 3),
			.samples = (int64_t)sqlite3_column_double(q, 4),
			.sdk_profiles = sqlite3_column_int64(q, 5),
		};

		r = store__get_process(s, sqlite3_column_int64(q, 0), &p);
		if (r >= 0)
			r = fn(ctx, &u);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_fail(s, rc, "finding uncovered eBPF samples");
cleanup:
	sqlite3_finalize(q);
	return r;
}

int store__mark_emitted(struct store *s, int64_t process_id, int64_t until_s)
{
	sqlite3_stmt *q;
	int r = store_op_begin(s);

	if (r < 0)
		return r;
	q = store_stmt(s, ST_MARK_EMITTED);
	if (!q) {
		r = -EIO;
		goto cleanup;
	}
	if ((r = store_bind_int64(s, q, 1, process_id)) < 0 ||
	    (r = store_bind_int64(s, q, 2, until_s)) < 0)
		goto cleanup;
	r = store_run(s, q, "moving the emitted watermark");
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_fail(s, -ENOENT, "no process %" PRId64, process_id);
cleanup:
	return store_op_end(s, r);
}
