/* SPDX-License-Identifier: MIT */
/*
 * buf_pending.c -- TEMPORARY page buffers (posix_memalign + touch) while the NUMA/jemalloc
 * allocator is developed on its own branch. Deleted when buf.c lands.
 */
#include "atomio_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
atomio__alloc_init(atomio_ctx *ctx)
{
    (void)ctx;
    return 0;
}

void
atomio__alloc_fini(atomio_ctx *ctx)
{
    (void)ctx;
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
    memset(p, 0, size);
    return p;
}

void
atomio__buf_free(atomio_ctx *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

void *
atomio_page_alloc(atomio_ctx *ctx, uint32_t page_size, size_t npages)
{
    /* Same page sizes as a file may have: a power of two in [512, 1 MiB]. */
    if (!ctx || page_size < ATOMIO_MIN_PAGE || page_size > ATOMIO_MAX_PAGE ||
        (page_size & (page_size - 1)) || !npages || npages > SIZE_MAX / page_size)
        return NULL;
    return atomio__buf_alloc(ctx, (size_t)page_size * npages, page_size < 4096 ? 4096 : page_size);
}

void
atomio_page_free(atomio_ctx *ctx, void *buf, uint32_t page_size, size_t npages)
{
    atomio__buf_free(ctx, buf, (size_t)page_size * npages);
}
