/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merger: what its files share and nobody else needs.
 */
#ifndef BRAID_MERGER_INT_H
#define BRAID_MERGER_INT_H

#include "merger/merger.h"

/* The SDK sample label that names a thread the way the eBPF samples'
 * thread_pointer does (pthread_self()), for runtimes whose SDK has one
 * (pyroscope-io's thread_id); NULL else. classify.c keeps it with the
 * runtime's other rules. */
const char *merger_sdk_thread_label(enum runtime runtime);

/* ---- thread groups (threads.c) ------------------------------------------- */

/* The threads both views name. Group 0 holds what only one side names (or
 * neither): SDK samples of a thread eBPF did not sample, eBPF stacks of a
 * thread the SDK did not sample (a thread it does not profile, one it
 * skipped), and everything when the SDK or the architecture names no
 * threads. Groups 1..n are the threads both name, one each. */
struct merger_threads;

/* From one process's eBPF stacks and an SDK profile (NULL: none) whose
 * sample type `type` weighs its stacks: samples of weight <= 0 name no
 * thread. -ENOMEM. */
int merger_threads__new(enum runtime runtime, const struct merger_ebpf_stack *stacks,
			size_t n_stacks, const struct profile *sdk, int type,
			struct merger_threads **ret);
void merger_threads__free(struct merger_threads *t);
/* 1 + the threads both views name. */
size_t merger_threads__n_groups(const struct merger_threads *t);
/* The group of eBPF stack i (an index into the stacks given to _new). */
uint32_t merger_threads__ebpf_group(const struct merger_threads *t, size_t i);
/* The group of an SDK sample, by its label set. */
uint32_t merger_threads__sdk_group(const struct merger_threads *t, uint32_t label_set);

#endif
