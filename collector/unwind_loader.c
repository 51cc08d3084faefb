/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading unwind rules off the collector's thread. Reading a large file's
 * rules takes tens of milliseconds (node's binary: 76 ms), and a start-up
 * announces every running process at once: done on the thread that drains
 * the sampler, that delays the drain, and with it the names of short-lived
 * processes, which the symbolizer must read before they exit. So the
 * sampler queues each process here, and one thread of its own runs
 * collector_unwind (unwind.c) in order: only that thread touches it once
 * the loader has started.
 *
 * The thread starts with the first request, not with the loader: the agent
 * drops its capabilities after opening the sampler and before starting any
 * thread, and a thread keeps the capabilities it was created with.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "collector/collector.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_MAX_QUEUE 65536 /* requests waiting; past it, additions are dropped */

struct request {
	int32_t pid;
	bool remove;
};

struct collector_unwind_loader {
	struct collector_unwind *u;
	pthread_t thread;
	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t wake;
	struct request *queue;
	size_t n, cap;
	bool started, stop;
	int error;			    /* the thread's first -ENOMEM */
	uint64_t dropped;		    /* additions dropped: the queue was full */
	struct collector_unwind_stats snap; /* as of the last request done */
};

int collector_unwind_loader__new(struct collector_unwind *u, struct collector_unwind_loader **ret)
{
	struct collector_unwind_loader *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	r = -pthread_mutex_init(&l->lock, NULL);
	if (r < 0) {
		free(l);
		return r;
	}
	r = -pthread_cond_init(&l->wake, NULL);
	if (r < 0) {
		pthread_mutex_destroy(&l->lock);
		free(l);
		return r;
	}
	l->u = u;
	collector_unwind__stats(u, &l->snap);
	*ret = l;
	return 0;
}

static void *run(void *arg)
{
	struct collector_unwind_loader *l = arg;
	struct request *batch = NULL;
	size_t n = 0;

	/* a label for top -H and perf: a failure changes nothing else */
	(void)pthread_setname_np(pthread_self(), "braid-unwind");
	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct collector_unwind_stats snap;
		uint64_t seen = l->snap.files;
		int r = 0;

		while (!l->stop && l->n == 0)
			pthread_cond_wait(&l->wake, &l->lock);
		if (l->stop)
			break;
		/* take the whole queue: new requests go to an empty one */
		free(batch);
		batch = l->queue;
		n = l->n;
		l->queue = NULL;
		l->n = l->cap = 0;
		pthread_mutex_unlock(&l->lock);
		for (size_t i = 0; i < n && r == 0; i++) {
			if (batch[i].remove)
				collector_unwind__remove_process(l->u, batch[i].pid);
			else
				r = collector_unwind__add_process(l->u, batch[i].pid);
		}
		collector_unwind__stats(l->u, &snap);
		/* Reading a file's rules allocates in proportion to its CFI (a Go
		 * server's .debug_frame, decompressed, and its ranges: tens of MiB)
		 * and frees it all; glibc keeps what this thread's arena freed, and
		 * the agent's RSS stayed 50 MiB higher (bench/peer.sh). Handed back
		 * after a batch that read new files. */
		if (snap.files != seen)
			(void)malloc_trim(0);
		pthread_mutex_lock(&l->lock);
		l->snap = snap;
		if (r < 0 && !l->error)
			l->error = r;
	}
	pthread_mutex_unlock(&l->lock);
	free(batch);
	return NULL;
}

/* Queues a request, starting the thread the first time. */
static int request(struct collector_unwind_loader *l, int32_t pid, bool remove)
{
	int r = 0;

	pthread_mutex_lock(&l->lock);
	if (l->error) {
		r = l->error;
		goto cleanup;
	}
	if (!l->started) {
		pthread_t t;

		r = -pthread_create(&t, NULL, run, l);
		if (r < 0)
			goto cleanup;
		l->thread = t;
		l->started = true;
	}
	/* a removal always goes in: a process forgotten and still named would
	 * keep its files from being unloaded */
	if (l->n >= LOADER_MAX_QUEUE && !remove) {
		l->dropped++;
		goto cleanup;
	}
	if (l->n == l->cap) {
		size_t c = l->cap ? 2 * l->cap : 64;
		struct request *q = realloc(l->queue, c * sizeof(*q));

		if (!q) {
			r = -ENOMEM;
			goto cleanup;
		}
		l->queue = q;
		l->cap = c;
	}
	l->queue[l->n++] = (struct request){pid, remove};
	pthread_cond_signal(&l->wake);
cleanup:
	pthread_mutex_unlock(&l->lock);
	return r;
}

int collector_unwind_loader__add(struct collector_unwind_loader *l, int32_t pid)
{
	return l ? request(l, pid, false) : 0;
}

int collector_unwind_loader__remove(struct collector_unwind_loader *l, int32_t pid)
{
	return l ? request(l, pid, true) : 0;
}

void collector_unwind_loader__stats(struct collector_unwind_loader *l,
				    struct collector_unwind_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	*ret = l->snap;
	ret->requests_dropped = l->dropped;
	ret->requests_queued = l->n;
	pthread_mutex_unlock(&l->lock);
}

void collector_unwind_loader__free(struct collector_unwind_loader *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	if (l->started)
		pthread_join(l->thread, NULL);
	collector_unwind__free(l->u);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l->queue);
	free(l);
}
