/* SPDX-License-Identifier: MIT */
/*
 * path_unsafe.c -- UNSAFE: plain writes (O_DIRECT or page cache per the io style), no torn-write
 * protection. It exists to measure what protection costs. Short writes still fail the file:
 * a half-written page is never acknowledged.
 */
#include "atomio_internal.h"

static int
unsafe_prep(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
            struct atomio_io *io)
{
    return atomio__prep_page(f, page_no, page, (wflags & ATOMIO_WRITE_DSYNC) ? RWF_DSYNC : 0,
                             wflags, io);
}

static struct atomio_verdict
unsafe_complete(struct atomio_file *f, struct atomio_io *io)
{
    if (io->res == (ssize_t)io->len)
        return atomio__verdict(0);
    if (io->res >= 0)
        return atomio__verdict(atomio__short_write(f));
    return atomio__verdict((int)io->res);
}

const struct atomio_path_ops atomio__path_unsafe = {
    .id = ATOMIO_PATH_UNSAFE,
    .name = "UNSAFE",
    .open_flags = atomio__inplace_open_flags,
    .prep = unsafe_prep,
    .complete = unsafe_complete,
};
