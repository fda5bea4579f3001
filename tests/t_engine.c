/* SPDX-License-Identifier: MIT */
/* t_engine.c -- see t_engine.h. */
#include "t_engine.h"

#include "atomio_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

void
t_eng_init(struct t_eng *e, int real)
{
    memset(e, 0, sizeof(*e));
    e->real = real;
    if (!real)
        return;
#ifdef T_HAVE_LIBURING
    int r = io_uring_queue_init(T_ENG_DEPTH, &e->ring, 0);
    if (r == -EPERM || r == -ENOSYS)
        cr_skip_test("skipped: io_uring unavailable (%s)", strerror(-r));
    cr_assert_eq(r, 0, "io_uring_queue_init: %s", strerror(-r));
#else
    cr_skip_test("skipped: tests built without liburing (apt-get install liburing-dev)");
#endif
}

void
t_eng_fini(struct t_eng *e)
{
#ifdef T_HAVE_LIBURING
    if (e->real)
        io_uring_queue_exit(&e->ring);
#endif
    e->real = 0;
}

struct io_uring_sqe *
t_eng_sqe(struct t_eng *e)
{
#ifdef T_HAVE_LIBURING
    if (e->real) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
        cr_assert_not_null(sqe, "ring full");
        e->inflight++;
        return sqe;
    }
#endif
    cr_assert_lt(e->nq, T_ENG_DEPTH, "queue full");
    /* A used slot, as in a ring: prep functions must not depend on its old contents. */
    memset(&e->q[e->nq], 0x5a, sizeof(e->q[e->nq]));
    return &e->q[e->nq++];
}

int
t_eng_exec(const struct io_uring_sqe *sqe)
{
    switch (sqe->opcode) {
    case IORING_OP_NOP:
        return 0;
    case IORING_OP_WRITE: {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)sqe->addr, .iov_len = sqe->len};
        ssize_t r = atomio__sys.pwritev2(sqe->fd, &iov, 1, sqe->off, (int)sqe->rw_flags);
        return (int)r;
    }
    case IORING_OP_READ:
        return (int)atomio__sys.pread(sqe->fd, (void *)(uintptr_t)sqe->addr, sqe->len, sqe->off);
    case IORING_OP_FSYNC:
        cr_assert_eq(sqe->fsync_flags, IORING_FSYNC_DATASYNC);
        return atomio__sys.fdatasync(sqe->fd);
    default:
        cr_assert_fail("interpreter: opcode %u not supported", sqe->opcode);
        return -EINVAL;
    }
}

void
t_eng_run(struct t_eng *e, void (*cb)(void *arg, uint64_t user_data, int res), void *arg)
{
#ifdef T_HAVE_LIBURING
    if (e->real) {
        unsigned n = e->inflight;
        e->inflight = 0;
        if (!n)
            return;
        int r = io_uring_submit_and_wait(&e->ring, n);
        cr_assert_geq(r, 0, "submit: %s", strerror(-r));
        for (unsigned k = 0; k < n; k++) {
            struct io_uring_cqe *cqe;
            cr_assert_eq(io_uring_wait_cqe(&e->ring, &cqe), 0);
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&e->ring, cqe);
            cb(arg, ud, res);
        }
        return;
    }
#endif
    unsigned n = e->nq;
    int res[T_ENG_DEPTH];
    for (unsigned k = 0; k < n; k++)
        res[k] = t_eng_exec(&e->q[k]);
    e->nq = 0;
    for (unsigned k = n; k-- > 0;)
        cb(arg, e->q[k].user_data, res[k]);
}
