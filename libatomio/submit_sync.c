/* SPDX-License-Identifier: MIT */
/*
 * submit_sync.c -- the pwritev2 submitter: one write at a time, in order. Always available;
 * the io_uring submitter falls back to it. A short result is reported as it is: the path's
 * complete() decides (and never retries the tail of an atomic write).
 */
#include "atomio_internal.h"

#include <errno.h>

static int
sync_submit(atomio_ctx *ctx, struct atomio_io *ios, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        struct atomio_io *io = &ios[i];
        struct iovec one = {.iov_base = (void *)(uintptr_t)io->buf, .iov_len = io->len};
        const struct iovec *iov = io->iovcnt ? io->iov : &one;
        int cnt = io->iovcnt ? (int)io->iovcnt : 1;
        /* Never an append: the kernel would check an atomic write's alignment at off and
         * then write at end of file. */
        ATOMIO_ASSERT(!(io->rwflags & RWF_APPEND));
        ssize_t r;
        do
            r = atomio__sys.pwritev2(io->fd, iov, cnt, io->off, io->rwflags);
        while (r == -EAGAIN && !(io->rwflags & RWF_NOWAIT));
        io->res = r;
    }
    return 0;
}

const struct atomio_submit_ops atomio__submit_sync = {
    .id = ATOMIO_SUBMIT_SYNC,
    .name = "pwritev2",
    .submit = sync_submit,
};
