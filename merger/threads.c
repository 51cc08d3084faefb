/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: thread groups. An SDK that labels each sample with its thread
 * (pyroscope-io's thread_id, which is pthread_self()) and eBPF samples that
 * carry the same value (the thread pointer the BPF program reads: glibc's and
 * musl's pthread_self() on x86-64) name the same threads. The splice then
 * shares each thread's eBPF samples among that thread's SDK stacks only: a
 * thread hashing in OpenSSL is not spread over another thread's pure-Python
 * stacks. docs/threads.md.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct merger_threads {
	uint64_t *pointers; /* the eBPF stacks' distinct thread pointers, sorted */
	bool *in_sdk;	    /* ... which a weighed SDK sample names too */
	size_t n_pointers;
	uint32_t *ebpf_group; /* per eBPF stack */
	size_t n_stacks;
	const struct profile *sdk;
	uint32_t key;	/* the SDK's thread label key (string id), 0: none */
	uint32_t *rank; /* pointers index -> group (0: not both) */
	size_t n_groups;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* What names an eBPF stack's thread as the SDK's label does: its thread
 * pointer (pthread_self()), or its OS thread id. */
static uint64_t thread_of(const struct merger_ebpf_stack *s, bool by_tid)
{
	return by_tid ? (s->tid > 0 ? (uint64_t)s->tid : 0) : s->thread_pointer;
}

/* pthread_self() in a label: a number, or the decimal string pyroscope-io
 * writes. 0: none or not a number. */
static uint64_t label_thread(const struct profile *p, uint32_t set, uint32_t key)
{
	const struct profile_label *l;
	size_t n = profile__labels(p, set, &l);

	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;
		size_t len;
		const char *s;

		if (l[i].key != key)
			continue;
		if (!l[i].str)
			return l[i].num > 0 ? (uint64_t)l[i].num : 0;
		s = profile__str(p, l[i].str);
		len = profile__strlen(p, l[i].str);
		if (!s || len == 0 || len > 20)
			return 0;
		for (size_t k = 0; k < len; k++) {
			if (s[k] < '0' || s[k] > '9')
				return 0;
			if (__builtin_mul_overflow(v, 10, &v) ||
			    __builtin_add_overflow(v, (uint64_t)(s[k] - '0'), &v))
				return 0;
		}
		return v;
	}
	return 0;
}

/* The index of v in t->pointers, or n_pointers. */
static size_t find(const struct merger_threads *t, uint64_t v)
{
	size_t lo = 0, hi = t->n_pointers;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->pointers[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n_pointers && t->pointers[lo] == v ? lo : t->n_pointers;
}

int merger_threads__new(enum runtime runtime, const struct merger_ebpf_stack *stacks,
			size_t n_stacks, const struct profile *sdk, int type,
			struct merger_threads **ret)
{
	struct merger_threads *t = calloc(1, sizeof(*t));
	const char *label = merger_sdk_thread_label(runtime);
	bool by_tid = merger_sdk_thread_is_tid(runtime);
	size_t n = 0;
	int r = 0;

	*ret = NULL;
	if (!t)
		return -ENOMEM;
	t->n_groups = 1;
	t->n_stacks = n_stacks;
	t->sdk = sdk;
	t->ebpf_group = calloc(n_stacks + 1, sizeof(*t->ebpf_group));
	t->pointers = malloc((n_stacks + 1) * sizeof(*t->pointers));
	if (!t->ebpf_group || !t->pointers) {
		r = -ENOMEM;
		goto cleanup;
	}
	if (!sdk || !label || type < 0 || !(t->key = profile__find_string(sdk, label)))
		goto cleanup; /* no thread is named on the SDK side: one group */
	for (size_t i = 0; i < n_stacks; i++)
		if (thread_of(&stacks[i], by_tid))
			t->pointers[n++] = thread_of(&stacks[i], by_tid);
	qsort(t->pointers, n, sizeof(*t->pointers), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (t->n_pointers == 0 || t->pointers[t->n_pointers - 1] != t->pointers[i])
			t->pointers[t->n_pointers++] = t->pointers[i];
	t->in_sdk = calloc(t->n_pointers + 1, sizeof(*t->in_sdk));
	t->rank = calloc(t->n_pointers + 1, sizeof(*t->rank));
	if (!t->in_sdk || !t->rank) {
		r = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0, ns = profile__n_samples(sdk); i < ns; i++) {
		struct profile_sample s = profile__sample(sdk, i);
		uint64_t v;
		size_t k;

		if (s.values[type] <= 0 || !(v = label_thread(sdk, s.labels, t->key)))
			continue;
		k = find(t, v);
		if (k < t->n_pointers)
			t->in_sdk[k] = true;
	}
	/* groups in the order of the pointers: deterministic */
	for (size_t k = 0; k < t->n_pointers; k++)
		if (t->in_sdk[k])
			t->rank[k] = (uint32_t)t->n_groups++;
	for (size_t i = 0; i < n_stacks; i++) {
		uint64_t v = thread_of(&stacks[i], by_tid);
		size_t k = v ? find(t, v) : t->n_pointers;

		t->ebpf_group[i] = k < t->n_pointers ? t->rank[k] : 0;
	}
cleanup:
	if (r < 0) {
		merger_threads__free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void merger_threads__free(struct merger_threads *t)
{
	if (!t)
		return;
	free(t->pointers);
	free(t->in_sdk);
	free(t->rank);
	free(t->ebpf_group);
	free(t);
}

size_t merger_threads__n_groups(const struct merger_threads *t)
{
	return t ? t->n_groups : 1;
}

uint32_t merger_threads__ebpf_group(const struct merger_threads *t, size_t i)
{
	return t && i < t->n_stacks ? t->ebpf_group[i] : 0;
}

uint32_t merger_threads__sdk_group(const struct merger_threads *t, uint32_t label_set)
{
	uint64_t v;
	size_t k;

	if (!t || t->n_groups == 1 || !(v = label_thread(t->sdk, label_set, t->key)))
		return 0;
	k = find(t, v);
	return k < t->n_pointers ? t->rank[k] : 0;
}
