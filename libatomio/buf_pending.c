/* SPDX-License-Identifier: MIT */
/*
 * buf_pending.c -- TEMPORARY page buffers (posix_memalign + touch) while the NUMA/jemalloc
 * allocator is developed on its own branch. Deleted when buf.c lands; buf.c must then provide
 * everything defined here, atomio__buf_is_prefaulted() included (the buffered-atomic path
 * uses it to take atomio_page_alloc() buffers without a bounce copy).
 */
#include "atomio_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Live atomio_page_alloc() buffers of one ctx, sorted by start address. */
struct atomio_alloc {
    pthread_mutex_t lock;
    struct buf_range {
        uintptr_t start;
        size_t len;
    } *r;
    size_t n, cap;
};

int
atomio__alloc_init(atomio_ctx *ctx)
{
    struct atomio_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    ctx->alloc = a;
    return 0;
}

void
atomio__alloc_fini(atomio_ctx *ctx)
{
    if (!ctx || !ctx->alloc)
        return;
    pthread_mutex_destroy(&ctx->alloc->lock);
    free(ctx->alloc->r);
    free(ctx->alloc);
    ctx->alloc = NULL;
}

void *
atomio__buf_alloc(atomio_ctx *ctx, size_t size, size_t align)
{
    (void)ctx;
    void *p = NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    memset(p, 0, size); /* pre-fault: a write fault per page now, none during the copy */
    return p;
}

void
atomio__buf_free(atomio_ctx *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

/* first_above() -- index of the first range starting above addr (a->lock held). */
static size_t
first_above(const struct atomio_alloc *a, uintptr_t addr)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->r[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
track(struct atomio_alloc *a, void *p, size_t len)
{
    int r = 0;
    pthread_mutex_lock(&a->lock);
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct buf_range *nr = realloc(a->r, cap * sizeof(*nr));
        if (!nr) {
            r = -ENOMEM;
            goto out;
        }
        a->r = nr;
        a->cap = cap;
    }
    size_t i = first_above(a, (uintptr_t)p);
    memmove(&a->r[i + 1], &a->r[i], (a->n - i) * sizeof(a->r[0]));
    a->r[i] = (struct buf_range){.start = (uintptr_t)p, .len = len};
    a->n++;
out:
    pthread_mutex_unlock(&a->lock);
    return r;
}

static void
untrack(struct atomio_alloc *a, void *p)
{
    pthread_mutex_lock(&a->lock);
    size_t i = first_above(a, (uintptr_t)p);
    if (i > 0 && a->r[i - 1].start == (uintptr_t)p) {
        memmove(&a->r[i - 1], &a->r[i], (a->n - i) * sizeof(a->r[0]));
        a->n--;
    }
    pthread_mutex_unlock(&a->lock);
}

bool
atomio__buf_is_prefaulted(atomio_ctx *ctx, const void *p, size_t len)
{
    if (!ctx || !ctx->alloc || !p)
        return false;
    struct atomio_alloc *a = ctx->alloc;
    uintptr_t addr = (uintptr_t)p;
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    size_t i = first_above(a, addr);
    if (i > 0) {
        const struct buf_range *b = &a->r[i - 1];
        ok = addr - b->start <= b->len && len <= b->len - (addr - b->start);
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

void *
atomio_page_alloc(atomio_ctx *ctx, uint32_t page_size, size_t npages)
{
    if (!ctx || !page_size || (page_size & (page_size - 1)) || page_size < ATOMIO_MIN_PAGE ||
        page_size > ATOMIO_MAX_PAGE || !npages || npages > SIZE_MAX / page_size)
        return NULL;
    size_t len = (size_t)page_size * npages;
    void *p = atomio__buf_alloc(ctx, len, page_size < 4096 ? 4096 : page_size);
    if (p && ctx->alloc && track(ctx->alloc, p, len) < 0) {
        atomio__buf_free(ctx, p, len);
        return NULL;
    }
    return p;
}

void
atomio_page_free(atomio_ctx *ctx, void *buf, uint32_t page_size, size_t npages)
{
    if (!buf)
        return;
    if (ctx && ctx->alloc)
        untrack(ctx->alloc, buf);
    atomio__buf_free(ctx, buf, (size_t)page_size * npages);
}
