/* SPDX-License-Identifier: MIT */
/*
 * path_direct.c -- DIRECT_ATOMIC (docs/design.md, "Data flow"): O_DIRECT, one aligned buffer,
 * offset = page_no x page_size, RWF_ATOMIC (+RWF_DSYNC on request), never O_APPEND/RWF_APPEND (the
 * kernel skips its alignment check for appends). The caller's buffer is used as it is when it
 * has the fd's DIO alignment, else copied into an aligned bounce buffer.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>

static int
direct_open_flags(const struct atomio_file *f)
{
    (void)f;
    return O_DIRECT;
}

/*
 * direct_prep() -- refuse a page the kernel would cut at RLIMIT_FSIZE (it checks the limit
 * after the atomic checks and writes the part below it), then the write itself; an unaligned
 * page is copied into an aligned bounce buffer (atomio__prep_page()).
 */
static int
direct_prep(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
            struct atomio_io *io)
{
    int r = atomio__fsize_check(page_no << f->page_shift, f->page_size);
    if (r < 0)
        return r;
    return atomio__prep_page(
        f, page_no, page, RWF_ATOMIC | ((wflags & ATOMIO_WRITE_DSYNC) ? RWF_DSYNC : 0), wflags, io);
}

/*
 * atomio__atomic_complete() -- the failure model of an atomic write (shared with the buffered
 * path): full length is success; 0 <= n < len is a short write, fatal for the file (retrying
 * the tail would tear the page); EOPNOTSUPP/ENOSPC mean nothing was written, so the page can
 * go through doublewrite; EINVAL means our geometry is wrong: re-probe once.
 */
struct atomio_verdict
atomio__atomic_complete(struct atomio_file *f, struct atomio_io *io)
{
    if (io->res == (ssize_t)io->len)
        return atomio__verdict(0);
    if (io->res >= 0)
        return atomio__verdict(atomio__short_write(f));
    if ((io->res == -EOPNOTSUPP || io->res == -ENOSPC) && atomio__store_fits(f->ctx, f->page_size))
        return (struct atomio_verdict){.next = ATOMIO__NEXT_DOUBLEWRITE};
    if (io->res == -EINVAL)
        return (struct atomio_verdict){.next = ATOMIO__NEXT_REPROBE};
    return atomio__verdict((int)io->res);
}

const struct atomio_path_ops atomio__path_direct = {
    .id = ATOMIO_PATH_DIRECT_ATOMIC,
    .name = "DIRECT_ATOMIC",
    .open_flags = direct_open_flags,
    .prep = direct_prep,
    .complete = atomio__atomic_complete,
};
