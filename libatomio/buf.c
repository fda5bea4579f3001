/* SPDX-License-Identifier: MIT */
/*
 * buf.c -- page buffers: atomio_page_alloc()/atomio_page_free() and the internal
 * atomio__buf_alloc()/atomio__buf_free() the write paths use. Policy lives here, memory comes
 * from the backend (alloc_libc.c or alloc_jemalloc.c) through alloc.h:
 *   - whole system pages, aligned to max(requested, system page) -- never shared with another
 *     allocation, so mbind()/mlock() act on this buffer alone;
 *   - on the ctx's numa_node, else on the node of the calling thread (first touch after an
 *     MPOL_PREFERRED mbind());
 *   - pre-faulted before it is returned, so the kernel's copy out of it during a write never
 *     takes a fault half-way through a page (the short-copy hazard of buffered atomic writes);
 *   - mlock()ed with ATOMIO_CTX_LOCK_PAGES (allocation fails if the lock fails).
 * Contents of a new buffer are undefined.
 */
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* From this many pages on, one madvise() beats a user-space fault per page. */
#define POPULATE_MIN_PAGES 64

size_t
atomio__sys_page_size(void)
{
    static _Atomic size_t cached;
    size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&cached, p, memory_order_relaxed);
    }
    return p;
}

void *
atomio__map_pages(size_t size, size_t align, size_t sys_page, int node)
{
    /* Over-map by the alignment slack, then cut the head and tail off. */
    size_t slack = align > sys_page ? align - sys_page : 0;
    if (size > SIZE_MAX - slack)
        return NULL;
    int saved = errno;
    char *m = mmap(NULL, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        errno = saved;
        return NULL;
    }
    char *p = m;
    if (slack) {
        p = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
        if (p > m)
            munmap(m, (size_t)(p - m));
        size_t tail = (size_t)((m + size + slack) - (p + size));
        if (tail)
            munmap(p + size, tail);
    }
    /* Best effort: placement failing (mbind blocked by a seccomp profile, say) is not a reason
     * to fail the allocation. */
    (void)atomio__numa_bind(p, size, node);
    errno = saved;
    return p;
}

void
atomio__unmap_pages(void *p, size_t size)
{
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

/* prefault() -- make every page of [p, p + size) present and writable now. A write fault
 * (not a read, which would map the shared zero page) is what the kernel's copy would
 * otherwise take mid-write. */
static void
prefault(void *p, size_t size, size_t sys_page)
{
    if (size / sys_page >= POPULATE_MIN_PAGES) {
        int saved = errno;
        int r = madvise(p, size, MADV_POPULATE_WRITE);
        errno = saved;
        if (r == 0)
            return;
    }
    volatile char *c = p;
    for (size_t off = 0; off < size; off += sys_page)
        c[off] = 0;
}

int
atomio__alloc_init(atomio_ctx *ctx)
{
    struct atomio_alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->sys_page = atomio__sys_page_size();
    a->lock_pages = (ctx->opts.flags & ATOMIO_CTX_LOCK_PAGES) != 0;
    a->node = -1;
    if (ctx->opts.numa_node >= 0 && atomio__numa_ok()) {
        if (ctx->opts.numa_node > atomio__numa_max_node()) {
            free(a);
            return ATOMIO_E_INVAL;
        }
        a->node = ctx->opts.numa_node;
    }
    /* Without NUMA a fixed node asks for nothing that could differ: single-node behaviour. */
    int err = atomio__backend_init(a);
    if (err) {
        free(a);
        return err;
    }
    ctx->alloc = a;
    return 0;
}

void
atomio__alloc_fini(atomio_ctx *ctx)
{
    if (!ctx || !ctx->alloc)
        return;
    atomio__buf_untrack_ctx(ctx);
    atomio__backend_fini(ctx->alloc);
    free(ctx->alloc);
    ctx->alloc = NULL;
}

static void *
buf_alloc(atomio_ctx *ctx, size_t size, size_t align, bool populate)
{
    size_t sys_page = atomio__sys_page_size();
    if (size == 0 || !atomio__is_pow2(align ? align : 1) || size > SIZE_MAX - sys_page)
        return NULL;
    size = (size + sys_page - 1) & ~(sys_page - 1);
    if (align < sys_page)
        align = sys_page;

    struct atomio_alloc *a = ctx ? ctx->alloc : NULL;
    void *p;
    if (a) {
        int node = a->node >= 0 ? a->node : atomio__numa_current_node();
        p = atomio__backend_alloc(a, size, align, node);
    } else {
        p = atomio__map_pages(size, align, sys_page, atomio__numa_current_node());
    }
    if (!p)
        return NULL;
    if (populate)
        prefault(p, size, sys_page);
    if (a && a->lock_pages) {
        int saved = errno;
        /* The raw call: sanitizer runtimes turn mlock() into a no-op. */
        long r = syscall(SYS_mlock, p, size);
        errno = saved;
        if (r != 0) {
            atomio__backend_free(a, p, size);
            return NULL;
        }
    }
    return p;
}

void *
atomio__buf_alloc(atomio_ctx *ctx, size_t size, size_t align)
{
    return buf_alloc(ctx, size, align, true);
}

void *
atomio__buf_alloc_lazy(atomio_ctx *ctx, size_t size, size_t align)
{
    return buf_alloc(ctx, size, align, false);
}

void
atomio__buf_free(atomio_ctx *ctx, void *p, size_t size)
{
    if (!p)
        return;
    size_t sys_page = atomio__sys_page_size();
    size = (size + sys_page - 1) & ~(sys_page - 1);
    struct atomio_alloc *a = ctx ? ctx->alloc : NULL;
    if (!a) {
        atomio__unmap_pages(p, size);
        return;
    }
    if (a->lock_pages) {
        int saved = errno;
        syscall(SYS_munlock, p, size);
        errno = saved;
    }
    atomio__backend_free(a, p, size);
}

/* page_geometry() -- bytes and alignment of npages pages of page_size, or false. */
static bool
page_geometry(uint32_t page_size, size_t npages, size_t *bytes, size_t *align)
{
    if (page_size < ATOMIO_MIN_PAGE || page_size > ATOMIO_MAX_PAGE || !atomio__is_pow2(page_size))
        return false;
    if (npages == 0 || npages > SIZE_MAX / page_size)
        return false;
    *bytes = (size_t)page_size * npages;
    /* >= 4096 whatever the page size: every O_DIRECT memory alignment we know of fits. */
    *align = page_size > 4096 ? page_size : 4096;
    return true;
}

void *
atomio_page_alloc(atomio_ctx *ctx, uint32_t page_size, size_t npages)
{
    size_t bytes, align;
    if (!page_geometry(page_size, npages, &bytes, &align))
        return NULL;
    void *p = atomio__buf_alloc(ctx, bytes, align);
    /* Known to the buffered-atomic path as pre-faulted memory: no bounce copy needed. */
    if (p && ctx && atomio__buf_track(ctx, p, bytes) < 0) {
        atomio__buf_free(ctx, p, bytes);
        return NULL;
    }
    return p;
}

void
atomio_page_free(atomio_ctx *ctx, void *buf, uint32_t page_size, size_t npages)
{
    size_t bytes, align;
    if (!buf || !page_geometry(page_size, npages, &bytes, &align))
        return;
    if (ctx)
        atomio__buf_untrack(ctx, buf);
    atomio__buf_free(ctx, buf, bytes);
}
