/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: sharing N samples among entries by weight, exactly and evenly.
 * Hamilton's method (largest remainder) gives entry i its quota a_i of the
 * N slots: floor(N w_i / W), then one more to the largest remainders (ties:
 * the entry first in order), in 128-bit integers, so that the quotas sum to
 * N. A stride schedule then lays the slots out: entry i's j-th slot sits at
 * (2j + 1) / (2 a_i) of the way, compared exactly, ties to the entry first
 * in order. Callers hand the slots out in that order, so every run of
 * consecutive slots is shared in proportion too, and the result depends on
 * nothing but the input. The splice (splice.c) and the match (match.c) both
 * share their samples this way.
 */
#define _GNU_SOURCE /* qsort_r */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdlib.h>

/* By remainder (kept in `given` while sorting), largest first; ties: the
 * entry first in order. */
static int cmp_remainder(const void *a, const void *b, void *ctx)
{
	const int64_t *rem = ctx;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;

	if (rem[ia] != rem[ib])
		return rem[ia] < rem[ib] ? 1 : -1;
	return (ia > ib) - (ia < ib);
}

/* Whether entry a's next slot comes before entry b's. */
static bool slot_before(const struct merger_apportion *ap, size_t a, size_t b)
{
	__int128 x = (__int128)(2 * ap->given[a] + 1) * ap->quota[b];
	__int128 y = (__int128)(2 * ap->given[b] + 1) * ap->quota[a];

	return x < y || (x == y && a < b);
}

static void heap_down(struct merger_apportion *ap, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i, t;

		if (l < ap->n_heap && slot_before(ap, ap->heap[l], ap->heap[m]))
			m = l;
		if (l + 1 < ap->n_heap && slot_before(ap, ap->heap[l + 1], ap->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		t = ap->heap[i];
		ap->heap[i] = ap->heap[m];
		ap->heap[m] = t;
		i = m;
	}
}

void merger_apportion__free(struct merger_apportion *ap)
{
	if (!ap)
		return;
	free(ap->quota);
	free(ap->given);
	free(ap->heap);
	*ap = (struct merger_apportion){0};
}

int merger_apportion__init(struct merger_apportion *ap, const int64_t *weights, size_t n,
			   int64_t slots)
{
	__int128 total = 0;
	size_t *order = NULL;
	int64_t left = slots;
	int r = 0;

	*ap = (struct merger_apportion){0};
	if (slots < 0 || (n && !weights))
		return -EINVAL;
	for (size_t k = 0; k < n; k++) {
		if (weights[k] < 0)
			return -EINVAL;
		total += weights[k];
	}
	if (!n || total <= 0 || slots == 0)
		return 0; /* nothing to hand out */
	ap->quota = calloc(n, sizeof(*ap->quota));
	ap->given = calloc(n, sizeof(*ap->given));
	ap->heap = malloc(n * sizeof(*ap->heap));
	order = malloc(n * sizeof(*order));
	if (!ap->quota || !ap->given || !ap->heap || !order) {
		r = -ENOMEM;
		goto cleanup;
	}
	ap->n = n;
	for (size_t k = 0; k < n; k++) {
		__int128 q = (__int128)slots * weights[k];

		ap->quota[k] = (int64_t)(q / total);
		ap->given[k] = (int64_t)(q % total); /* the remainder, for sorting */
		left -= ap->quota[k];
		order[k] = k;
	}
	qsort_r(order, n, sizeof(*order), cmp_remainder, ap->given);
	for (size_t k = 0; left > 0 && k < n; k++, left--)
		ap->quota[order[k]]++;
	if (left != 0) {
		r = -EPROTO; /* Hamilton leaves fewer than n slots: cannot happen */
		goto cleanup;
	}
	for (size_t k = 0; k < n; k++) {
		ap->given[k] = 0;
		if (ap->quota[k] > 0)
			ap->heap[ap->n_heap++] = k;
	}
	for (size_t k = ap->n_heap / 2; k-- > 0;)
		heap_down(ap, k);
cleanup:
	free(order);
	if (r < 0)
		merger_apportion__free(ap);
	return r;
}

int merger_apportion__next(struct merger_apportion *ap, size_t *ret)
{
	size_t e;

	if (!ap->n_heap)
		return -EPROTO; /* more slots taken than apportioned */
	e = ap->heap[0];
	ap->given[e]++;
	if (ap->given[e] == ap->quota[e])
		ap->heap[0] = ap->heap[--ap->n_heap];
	heap_down(ap, 0);
	*ret = e;
	return 0;
}
