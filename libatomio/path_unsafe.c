/* SPDX-License-Identifier: MIT */
/*
 * path_unsafe.c -- UNSAFE: plain writes (O_DIRECT or page cache per the io style), no torn-write
 * protection. It exists to measure what protection costs. Short writes still fail the file:
 * a half-written page is never acknowledged.
 */
#include "atomio_internal.h"

#include <fcntl.h>

static int
unsafe_open_flags(const struct atomio_file *f)
{
    return f->o_direct ? O_DIRECT : 0;
}

static int
unsafe_prep(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
            struct atomio_io *io)
{
    if ((uintptr_t)page % f->mem_align)
        return ATOMIO_E_UNALIGNED;
    io->fd = f->fd;
    io->buf = page;
    io->len = f->page_size;
    io->off = page_no << f->page_shift;
    io->rwflags = (wflags & ATOMIO_WRITE_DSYNC) ? RWF_DSYNC : 0;
    io->file = f;
    return 0;
}

static int
unsafe_complete(struct atomio_file *f, struct atomio_io *io)
{
    if (io->res == (ssize_t)io->len)
        return 0;
    if (io->res >= 0) {
        ATOMIO_COUNT(&f->stats, short_writes, 1);
        ATOMIO_COUNT(&f->ctx->stats, short_writes, 1);
        atomio__file_fail(f);
        return ATOMIO_E_SHORT_WRITE;
    }
    return (int)io->res;
}

const struct atomio_path_ops atomio__path_unsafe = {
    .id = ATOMIO_PATH_UNSAFE,
    .name = "UNSAFE",
    .open_flags = unsafe_open_flags,
    .prep = unsafe_prep,
    .complete = unsafe_complete,
};
