/* SPDX-License-Identifier: MIT */
/*
 * byor.c -- bring-your-own-ring (DESIGN 8): the engine's io_uring issues the writes. The paths
 * still decide them: atomio_prep_write() runs the same checks and the same prep() as
 * atomio_write() and copies the resulting struct atomio_io into the engine's SQE;
 * atomio_complete_write() feeds the CQE result to the same complete() and turns the
 * library-internal outcomes (downgrade, re-probe) into codes the engine can act on.
 *
 * No liburing here: struct io_uring_sqe is the kernel's ABI, taken from <linux/io_uring.h>
 * (any 5.6+ headers have IORING_OP_WRITE and rw_flags; RWF_ATOMIC comes from compat.h).
 */
#include "atomio_internal.h"
#include "atomio_uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stddef.h>
#include <string.h>

/* The layout the engine's ring and we must agree on (include/uapi/linux/io_uring.h). */
_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe size");
_Static_assert(offsetof(struct io_uring_sqe, fd) == 4, "sqe fd");
_Static_assert(offsetof(struct io_uring_sqe, off) == 8, "sqe off");
_Static_assert(offsetof(struct io_uring_sqe, addr) == 16, "sqe addr");
_Static_assert(offsetof(struct io_uring_sqe, len) == 24, "sqe len");
_Static_assert(offsetof(struct io_uring_sqe, rw_flags) == 28, "sqe rw_flags");
_Static_assert(offsetof(struct io_uring_sqe, user_data) == 32, "sqe user_data");

/*
 * sqe_clear() -- zero the 64-byte entry except user_data, which belongs to the engine (it may
 * have set it before calling us). What io_uring_prep_rw() leaves behind, minus the fields.
 */
static void
sqe_clear(struct io_uring_sqe *sqe)
{
    __u64 user_data = sqe->user_data;
    memset(sqe, 0, sizeof(*sqe));
    sqe->user_data = user_data;
}

/* sqe_nop() -- on error: an entry already taken from the ring stays harmless to submit. */
static void
sqe_nop(struct io_uring_sqe *sqe)
{
    sqe_clear(sqe);
    sqe->opcode = IORING_OP_NOP;
}

/*
 * io_to_sqe() -- the engine-ring form of a prepared write: IORING_OP_WRITE (one
 * buffer, so never the multi-iovec case RWF_ATOMIC refuses, and never WRITE_FIXED, which the
 * kernel refuses with RWF_ATOMIC), with the path's rw_flags.
 */
static void
io_to_sqe(const struct atomio_io *io, struct io_uring_sqe *sqe)
{
    sqe_clear(sqe);
    sqe->opcode = IORING_OP_WRITE;
    sqe->fd = io->fd;
    sqe->off = io->off;
    sqe->addr = (__u64)(uintptr_t)io->buf;
    sqe->len = io->len;
    sqe->rw_flags = (__u32)io->rwflags;
}

static int
prep_write(atomio_file *f, struct io_uring_sqe *sqe, uint64_t page_no, const void *page,
           uint32_t flags)
{
    if (flags & ~ATOMIO_WRITE_DSYNC)
        return ATOMIO_E_INVAL;
    int r = atomio__write_check(f, page_no, page);
    if (r < 0)
        return r;
    uint32_t path = atomic_load(&f->path_cur);
    const struct atomio_path_ops *ops = atomio__path_ops(path);
    if (!ops || !ops->prep)
        return ATOMIO_E_NEEDS_DOUBLEWRITE;
    /* NO_BOUNCE: the engine's ring holds the I/O until its CQE, and we have nowhere to keep a
     * copy until then (atomio_complete_write() gets no handle to it). */
    uint32_t wflags = flags | ((f->fflags & ATOMIO_FILE_DSYNC) ? ATOMIO_WRITE_DSYNC : 0) |
                      ATOMIO__WRITE_NO_BOUNCE;
    struct atomio_io io;
    memset(&io, 0, sizeof(io));
    r = ops->prep(f, page_no, page, wflags, &io);
    if (r < 0)
        return r;
    ATOMIO_ASSERT(!io.bounce && io.len == f->page_size);
    io_to_sqe(&io, sqe);
    return 0;
}

int
atomio_prep_write(atomio_file *f, struct io_uring_sqe *sqe, uint64_t page_no, const void *page,
                  uint32_t flags)
{
    if (!sqe)
        return ATOMIO_E_INVAL;
    int r = prep_write(f, sqe, page_no, page, flags);
    if (r < 0)
        sqe_nop(sqe);
    return r;
}

/*
 * prepped_path() -- which path prepared the SQE whose completion is reported. A file only
 * ever leaves its atomic path for DOUBLEWRITE, and atomio_prep_write() refuses DOUBLEWRITE, so
 * a file on DOUBLEWRITE now was atomic at prep time (another completion downgraded it
 * meanwhile); UNSAFE never changes. The fd tells the two atomic paths apart: DIRECT_ATOMIC
 * files are always O_DIRECT, BUFFERED_ATOMIC ones never are.
 */
static uint32_t
prepped_path(const atomio_file *f)
{
    uint32_t cur = atomic_load(&f->path_cur);
    if (cur == ATOMIO_PATH_UNSAFE)
        return ATOMIO_PATH_UNSAFE;
    return f->o_direct ? ATOMIO_PATH_DIRECT_ATOMIC : ATOMIO_PATH_BUFFERED_ATOMIC;
}

/* count_page() -- atomio__count_page() without the latency: the engine's ring owns timing. */
static void
count_page(atomio_file *f, uint32_t path)
{
    ATOMIO_COUNT(&f->stats, pages[path], 1);
    ATOMIO_COUNT(&f->ctx->stats, pages[path], 1);
    ATOMIO_COUNT(&f->stats, bytes_data, f->page_size);
    ATOMIO_COUNT(&f->ctx->stats, bytes_data, f->page_size);
}

int
atomio_complete_write(atomio_file *f, int cqe_res, uint32_t len)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    /* A CQE never reports more than its SQE asked for: a mismatch is the wrong CQE or the
     * wrong file, and judging it could fail a healthy file. */
    if (len != f->page_size || (cqe_res > 0 && (uint32_t)cqe_res > len))
        return ATOMIO_E_INVAL;

    uint32_t path = prepped_path(f);
    struct atomio_io io;
    memset(&io, 0, sizeof(io));
    io.fd = f->fd;
    io.len = len;
    io.res = cqe_res;
    io.file = f;
    io.path = path;
    r = atomio__path_ops(path)->complete(f, &io);
    switch (r) {
    case 0:
        count_page(f, path);
        return 0;
    case ATOMIO__DOWNGRADE:
        atomio__file_downgrade(f, cqe_res);
        return ATOMIO_E_NEEDS_DOUBLEWRITE;
    case ATOMIO__REPROBE:
        /* atomio_write() would retry once itself; here the engine's ring must. */
        r = atomio__file_reprobe(f, path);
        if (r < 0)
            return r;
        return r == 1 ? ATOMIO_E_NEEDS_DOUBLEWRITE : -EAGAIN;
    default:
        return r;
    }
}
