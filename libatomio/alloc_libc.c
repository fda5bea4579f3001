/* SPDX-License-Identifier: MIT */
/*
 * alloc_libc.c -- the default page-memory backend: private anonymous mappings, one per
 * buffer, placed by atomio__map_pages(), plus a small per-ctx cache of freed buffers. The
 * cache is what keeps short-lived buffers (bounce copies, doublewrite batches) cheap: a cached
 * buffer is still faulted in, still on its node, and reusing it costs a mutex instead of
 * mmap + faults + munmap. The cache holds at most CACHE_SLOTS buffers and CACHE_BYTES bytes;
 * everything else goes straight back to the kernel.
 */
#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define CACHE_SLOTS 64
#define CACHE_BYTES ((size_t)64 << 20)

const char atomio__alloc_backend_name[] = "mmap";

struct cached {
    void *p;
    size_t size;
    int node;
};

struct libc_state {
    pthread_mutex_t lock;
    size_t bytes;
    unsigned n;
    struct cached slot[CACHE_SLOTS];
};

int
atomio__backend_init(struct atomio_alloc *a)
{
    struct libc_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    a->backend = s;
    return 0;
}

void
atomio__backend_fini(struct atomio_alloc *a)
{
    struct libc_state *s = a->backend;
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        atomio__unmap_pages(s->slot[i].p, s->slot[i].size);
    pthread_mutex_destroy(&s->lock);
    free(s);
    a->backend = NULL;
}

void *
atomio__backend_alloc(struct atomio_alloc *a, size_t size, size_t align, int node)
{
    struct libc_state *s = a->backend;
    void *p = NULL;
    pthread_mutex_lock(&s->lock);
    /* Newest first: the most recently freed buffer is the likeliest to be in cache. */
    for (unsigned i = s->n; i-- > 0;) {
        struct cached *c = &s->slot[i];
        if (c->size == size && !((uintptr_t)c->p & (align - 1)) && (node < 0 || c->node == node)) {
            p = c->p;
            s->bytes -= size;
            s->slot[i] = s->slot[--s->n];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (p)
        return p;
    return atomio__map_pages(size, align, a->sys_page, node);
}

void
atomio__backend_free(struct atomio_alloc *a, void *p, size_t size)
{
    struct libc_state *s = a->backend;
    /* Ask the kernel where the pages are only where the answer can differ between buffers. */
    int maxnode = atomio__numa_max_node();
    int node = maxnode > 0 ? atomio__numa_node_of(p) : maxnode;
    pthread_mutex_lock(&s->lock);
    if (s->n < CACHE_SLOTS && size <= CACHE_BYTES - s->bytes) {
        s->slot[s->n++] = (struct cached){p, size, node < 0 ? -1 : node};
        s->bytes += size;
        p = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (p)
        atomio__unmap_pages(p, size);
}
