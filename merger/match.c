/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: the match, for runtimes whose code eBPF names itself (Go:
 * compiled, with frame pointers and a symbol table). Nothing is spliced: an
 * eBPF stack keeps every frame (kernel, cgo and native ones included), and
 * the SDK gives what eBPF can't know, its samples' labels (the route or
 * span pyroscope.TagWrapper and pprof.Do set).
 *
 * The SDK's stacks form a tree from the root, by the function each location
 * stands for (its outermost line: eBPF names the function the code is in,
 * not the ones inlined into it). Each eBPF stack walks the tree from its own
 * root as far as its frames agree; the node where it stops holds the SDK
 * samples through it, by label set. The eBPF samples that stop at a node
 * are shared among those label sets by weight (apportion.c), in input order.
 *
 * Where the views differ:
 *   - eBPF's root frames the SDK does not show (runtime.goexit) are skipped,
 *     at most MATCH_ROOT_SKIP of them; Go's ABI wrappers (".abi0") are named
 *     without the suffix, as Go's own profiler names them;
 *   - frame-pointer unwinding may miss the caller of a leaf that keeps no
 *     frame: the walk stops there, a few frames short of the leaf, still
 *     under the route's own functions;
 *   - kernel and native frames are below anything the SDK shows: the walk
 *     stops at the last Go frame.
 * An eBPF stack whose root matches nothing keeps its frames and no label.
 */
#include "merger/merger_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_ROOT_SKIP 2

struct node {
	uint32_t parent, name;
	bool ends;	 /* an SDK stack ends here */
	int64_t ebpf;	 /* eBPF samples whose walk stops here */
	size_t first, n; /* its entries in match.by_node */
	struct merger_apportion ap;
};

/* The SDK samples of one label set through one node. */
struct entry {
	uint32_t node, set;
	int64_t weight;
	int64_t got;	 /* slots taken by the current eBPF stack */
	uint32_t labels; /* the merged samples' label set in the output */
};

struct match {
	const struct merger_splice_input *in;
	struct profile *out;
	struct strtab names;
	struct node *nodes;
	size_t n_nodes, cap_nodes;
	struct ptrmap children; /* (parent, name id) -> node index + 1 */
	struct entry *entries;
	size_t n_entries, cap_entries;
	struct ptrmap entry_of; /* (node, label set) -> entry index + 1 */
	size_t *by_node;	/* entry indexes, grouped by node */
	uint32_t *stop;		/* per eBPF stack: its node, 0 none */
	uint32_t *path;		/* scratch: an SDK stack's nodes */
	size_t cap_path;
	uint32_t *locs; /* scratch: output locations */
	size_t cap_locs;
	size_t *touched;
	size_t cap_touched;
};

/* A function name as both views can agree on it: without Go's ".abi0". */
static size_t name_len(const char *s)
{
	size_t n = strlen(s);

	if (n > 5 && memcmp(s + n - 5, ".abi0", 5) == 0)
		n -= 5;
	return n;
}

static int child(struct match *m, uint32_t parent, uint32_t name, bool create, uint32_t *ret)
{
	void *v = ptrmap__get(&m->children, parent, name);
	int r;

	if (v) {
		*ret = (uint32_t)((uintptr_t)v - 1);
		return 0;
	}
	if (!create)
		return -ENOENT;
	r = util__grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof(*m->nodes));
	if (r < 0)
		return r;
	m->nodes[m->n_nodes] = (struct node){.parent = parent, .name = name};
	r = ptrmap__put(&m->children, parent, name, (void *)(uintptr_t)(m->n_nodes + 1));
	if (r < 0)
		return r;
	*ret = (uint32_t)m->n_nodes++;
	return 0;
}

static int add_weight(struct match *m, uint32_t node, uint32_t set, int64_t w)
{
	void *v = ptrmap__get(&m->entry_of, node, set);
	struct entry *e;
	int r;

	if (!v) {
		r = util__grow((void **)&m->entries, &m->cap_entries, m->n_entries + 1,
			       sizeof(*m->entries));
		if (r < 0)
			return r;
		m->entries[m->n_entries] = (struct entry){.node = node, .set = set};
		r = ptrmap__put(&m->entry_of, node, set, (void *)(uintptr_t)(m->n_entries + 1));
		if (r < 0)
			return r;
		v = (void *)(uintptr_t)(++m->n_entries);
	}
	e = &m->entries[(uintptr_t)v - 1];
	return __builtin_add_overflow(e->weight, w, &e->weight) ? -EOVERFLOW : 0;
}

/* The SDK's tree: every sample with weight, root first, by the function
 * each location stands for. */
static int sdk_tree(struct match *m, int type, struct merger_splice_stats *st)
{
	const struct profile *sdk = m->in->sdk;
	int r = 0;

	for (size_t i = 0; r == 0 && i < profile__n_samples(sdk); i++) {
		struct profile_sample s = profile__sample(sdk, i);
		const uint32_t *locs;
		size_t depth = profile__stack(sdk, s.stack, &locs), n = 0;
		uint32_t node = 0;
		int64_t w = s.values[type];

		if (w <= 0)
			continue;
		st->sdk_weight[MERGER_CAT_GUEST] += (double)w;
		r = util__grow((void **)&m->path, &m->cap_path, depth + 1, sizeof(*m->path));
		for (size_t k = depth; r == 0 && k-- > 0;) {
			const char *name = merger__sdk_function_name(sdk, locs[k]);
			uint32_t id;

			if (!name || !*name)
				break; /* a location without a function: nothing below it */
			r = strtab__intern(&m->names, name, name_len(name), 0, &id);
			if (r == 0)
				r = child(m, node, id, true, &node);
			if (r == 0)
				m->path[n++] = node;
		}
		if (r < 0 || !n)
			continue;
		if (n == depth)
			m->nodes[node].ends = true;
		for (size_t k = 0; r == 0 && k < n; k++)
			r = add_weight(m, m->path[k], s.labels, w);
	}
	return r;
}

/* Groups the entries by node (by_node), in entry order within a node. */
static int group_entries(struct match *m)
{
	size_t *fill;

	m->by_node = malloc((m->n_entries + 1) * sizeof(*m->by_node));
	fill = calloc(m->n_nodes + 1, sizeof(*fill));
	if (!m->by_node || !fill) {
		free(fill);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n_entries; i++)
		m->nodes[m->entries[i].node].n++;
	for (size_t i = 0, off = 0; i < m->n_nodes; i++) {
		m->nodes[i].first = off;
		off += m->nodes[i].n;
	}
	for (size_t i = 0; i < m->n_entries; i++) {
		uint32_t nd = m->entries[i].node;

		m->by_node[m->nodes[nd].first + fill[nd]++] = i;
	}
	free(fill);
	return 0;
}

/* Where eBPF stack i's walk down the tree stops (0: its root matches no
 * SDK root), and whether it went all the way to its leaf at the end of an
 * SDK stack. */
static uint32_t walk(struct match *m, const struct merger_ebpf_stack *es, bool *ret_whole)
{
	size_t nk = 0, j, skipped = 0;
	uint32_t node = 0, next, id;

	*ret_whole = false;
	while (nk < es->n_frames && es->frames[nk].kind == FRAME_KERNEL)
		nk++;
	for (j = es->n_frames; j-- > nk;) {
		const char *name = es->frames[j].name;

		if (!name || !strtab__lookup(&m->names, name, name_len(name), &id) ||
		    child(m, node, id, false, &next) < 0) {
			/* eBPF's own root frames, before the first the SDK shows */
			if (node == 0 && skipped++ < MATCH_ROOT_SKIP)
				continue;
			return node;
		}
		node = next;
	}
	*ret_whole = node && m->nodes[node].ends;
	return node;
}

/* eBPF stack i with its own frames: shared among the label sets of its
 * node, or alone with the input's labels. */
static int emit_stack(struct match *m, size_t i)
{
	const struct merger_ebpf_stack *es = &m->in->stacks[i];
	struct node *nd = &m->nodes[m->stop[i]];
	size_t n_touched = 0;
	int r;

	r = util__grow((void **)&m->locs, &m->cap_locs, es->n_frames + 1, sizeof(*m->locs));
	if (r < 0)
		return r;
	for (size_t k = 0; k < es->n_frames; k++) {
		r = merger__add_frame(m->out, &es->frames[k], &m->locs[k]);
		if (r < 0)
			return r;
	}
	if (!m->stop[i] || !nd->ap.n)
		return merger__emit(m->out, m->locs, es->n_frames, es->count, m->in->period,
				    m->in->labels);
	r = util__grow((void **)&m->touched, &m->cap_touched, nd->n + 1, sizeof(*m->touched));
	if (r < 0)
		return r;
	for (int64_t k = 0; k < es->count; k++) {
		size_t e = 0;

		r = merger_apportion__next(&nd->ap, &e);
		if (r < 0)
			return r;
		e = m->by_node[nd->first + e];
		if (!m->entries[e].got++)
			m->touched[n_touched++] = e;
	}
	for (size_t t = 0; t < n_touched; t++) {
		struct entry *e = &m->entries[m->touched[t]];

		if (!e->labels) {
			r = merger__out_labels(m->out, m->in->labels, m->in->sdk, e->set,
					       &e->labels);
			if (r < 0)
				return r;
		}
		r = merger__emit(m->out, m->locs, es->n_frames, e->got, m->in->period, e->labels);
		if (r < 0)
			return r;
		e->got = 0;
	}
	return 0;
}

int merger__match(const struct merger_splice_input *in, struct profile *out,
		  struct merger_splice_stats *ret)
{
	struct merger_splice_stats st = {.sdk_type = -1};
	struct match m = {.in = in, .out = out};
	int64_t *w = NULL;
	int r;

	if (!in || !out || in->period <= 0 || (in->n_stacks && !in->stacks))
		return -EINVAL;
	r = strtab__init(&m.names);
	if (r < 0)
		return r;
	m.stop = calloc(in->n_stacks + 1, sizeof(*m.stop));
	r = util__grow((void **)&m.nodes, &m.cap_nodes, 1, sizeof(*m.nodes));
	if (!m.stop || r < 0) {
		r = -ENOMEM;
		goto cleanup;
	}
	m.nodes[m.n_nodes++] = (struct node){0}; /* the root */
	if (in->sdk) {
		st.sdk_type = merger__sdk_weight_type(in->sdk);
		if (st.sdk_type >= 0)
			r = sdk_tree(&m, st.sdk_type, &st);
	}
	if (r == 0)
		r = group_entries(&m);
	for (size_t i = 0; r == 0 && i < in->n_stacks; i++) {
		const struct merger_ebpf_stack *es = &in->stacks[i];
		bool whole;

		if (es->count < 0 || (es->n_frames && !es->frames)) {
			r = -EINVAL;
			break;
		}
		if (__builtin_add_overflow(st.samples, es->count, &st.samples)) {
			r = -EOVERFLOW;
			break;
		}
		m.stop[i] = walk(&m, es, &whole);
		st.by_category[MERGER_CAT_GUEST] += es->count;
		if (!m.stop[i]) {
			st.match_none += es->count;
			st.kept[MERGER_CAT_GUEST] += es->count;
			continue;
		}
		m.nodes[m.stop[i]].ebpf += es->count;
		st.spliced += es->count;
		if (whole)
			st.match_exact += es->count;
		else
			st.match_partial += es->count;
	}
	/* each node's eBPF samples shared among its label sets */
	w = malloc((m.n_entries + 1) * sizeof(*w));
	if (r == 0 && !w)
		r = -ENOMEM;
	for (size_t i = 1; r == 0 && i < m.n_nodes; i++) {
		struct node *nd = &m.nodes[i];

		if (!nd->ebpf)
			continue;
		for (size_t k = 0; k < nd->n; k++)
			w[k] = m.entries[m.by_node[nd->first + k]].weight;
		r = merger_apportion__init(&nd->ap, w, nd->n, nd->ebpf);
	}
	for (size_t i = 0; r == 0 && i < in->n_stacks; i++)
		if (in->stacks[i].count)
			r = emit_stack(&m, i);
	/* conservation: every slot handed out */
	for (size_t i = 1; r == 0 && i < m.n_nodes; i++)
		if (m.nodes[i].ap.n_heap)
			r = -EPROTO;
	if (r == 0 && ret)
		*ret = st;
cleanup:
	for (size_t i = 0; i < m.n_nodes; i++)
		merger_apportion__free(&m.nodes[i].ap);
	free(w);
	free(m.nodes);
	ptrmap__free(&m.children);
	free(m.entries);
	ptrmap__free(&m.entry_of);
	free(m.by_node);
	free(m.stop);
	free(m.path);
	free(m.locs);
	free(m.touched);
	strtab__free(&m.names);
	return r;
}
