/* SPDX-License-Identifier: MIT */
/*
 * path_buffered.c -- BUFFERED_ATOMIC (DESIGN 6): page-cache fd, RWF_ATOMIC|RWF_DSYNC on every
 * write (only a synchronous write is written back atomically by the time the call returns),
 * and a source buffer that cannot fault half-way through the kernel's copy: the page is copied
 * into a pre-faulted bounce buffer first. Every write to such a file goes through here, since
 * a plain overwrite would silently drop the page's atomicity.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <string.h>

static int
buffered_open_flags(const struct atomio_file *f)
{
    (void)f;
    return 0;
}

static int
buffered_prep(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
              struct atomio_io *io)
{
    (void)wflags; /* always durable: RWF_DSYNC is part of the recipe */
    if (f->fflags & ATOMIO_FILE_NO_COPY)
        return ATOMIO_E_NO_COPY;
    void *b = atomio__buf_alloc(f->ctx, f->page_size, f->page_size < 4096 ? 4096 : f->page_size);
    if (!b)
        return -ENOMEM;
    memcpy(b, page, f->page_size);
    io->bounce = b;
    io->fd = f->fd;
    io->buf = b;
    io->len = f->page_size;
    io->off = page_no << f->page_shift;
    io->rwflags = RWF_ATOMIC | RWF_DSYNC;
    io->file = f;
    return 0;
}

const struct atomio_path_ops atomio__path_buffered = {
    .id = ATOMIO_PATH_BUFFERED_ATOMIC,
    .name = "BUFFERED_ATOMIC",
    .open_flags = buffered_open_flags,
    .prep = buffered_prep,
    .complete = atomio__atomic_complete,
};
