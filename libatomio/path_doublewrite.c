/* SPDX-License-Identifier: MIT */
/*
 * path_doublewrite.c -- the DOUBLEWRITE path's decisions: how its data fd is opened and what an
 * in-place write's result means. It has no per-page prep: every page goes through the store
 * in batches (atomio__dw_write), which issues the in-place writes from its own aligned buffer.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>

/*
 * atomio__inplace_open_flags() -- O_DIRECT when the engine asked for direct I/O, or left it to us
 * and the file can do direct I/O at its page size; never for an engine that wants the page cache.
 * Pages always leave from the store's 4 KiB-aligned batch buffer, so the caller's buffers
 * need no alignment either way.
 */
int
atomio__inplace_open_flags(const struct atomio_file *f)
{
    if (f->io_style == ATOMIO_IO_DIRECT)
        return O_DIRECT;
    if (f->io_style == ATOMIO_IO_ANY && (f->caps.statx_mask & STATX_DIOALIGN) &&
        f->caps.dio_offset_align != 0 && f->caps.dio_offset_align <= f->page_size &&
        f->caps.dio_mem_align != 0 && f->caps.dio_mem_align <= 4096)
        return O_DIRECT;
    return 0;
}

/*
 * dw_complete() -- the failure model for one in-place write. A short write or an
 * I/O error may have left the page torn: the file is failed and its store copy kept for
 * recovery. ENOSPC, EDQUOT and EFBIG mean the kernel wrote nothing (the page is intact),
 * so the file stays usable and only this page fails.
 */
static struct atomio_verdict
dw_complete(struct atomio_file *f, struct atomio_io *io)
{
    if (io->res == (ssize_t)io->len)
        return atomio__verdict(0);
    if (io->res >= 0)
        return atomio__verdict(atomio__short_write(f));
    int err = (int)io->res;
    if (err != -ENOSPC && err != -EDQUOT && err != -EFBIG)
        atomio__file_fail(f);
    return atomio__verdict(err);
}

const struct atomio_path_ops atomio__path_doublewrite = {
    .id = ATOMIO_PATH_DOUBLEWRITE,
    .name = "DOUBLEWRITE",
    .open_flags = atomio__inplace_open_flags,
    .prep = NULL,
    .complete = dw_complete,
};
