/* SPDX-License-Identifier: MIT */
/*
 * t_engine.h -- an engine-style submission queue for the bring-your-own-ring tests. The test
 * owns it, as an engine owns its io_uring: either a real ring (liburing) or an interpreter
 * that executes each SQE through the syscall seam atomio__sys, so the crash simulator and
 * fault injection see the writes an engine would issue. Completions are delivered in reverse
 * submission order, so nothing may rely on CQE order.
 */
#ifndef ATOMIO_T_ENGINE_H
#define ATOMIO_T_ENGINE_H

#include <linux/io_uring.h>
#include <stdint.h>

#ifdef T_HAVE_LIBURING
#include <liburing.h>
#endif

#define T_ENG_DEPTH 256

struct t_eng {
    int real; /* 1: an io_uring; 0: the interpreter */
#ifdef T_HAVE_LIBURING
    struct io_uring ring;
#endif
    struct io_uring_sqe q[T_ENG_DEPTH]; /* interpreter: queued entries */
    unsigned nq;
    unsigned inflight; /* real ring: submitted, not reaped */
};

/* t_eng_init() -- real = 1 asks for an io_uring (skips the test with the reason if the tests
 * were built without liburing or the kernel refuses a ring). */
void t_eng_init(struct t_eng *e, int real);
void t_eng_fini(struct t_eng *e);
/* Next free SQE (asserts the queue is not full). */
struct io_uring_sqe *t_eng_sqe(struct t_eng *e);
/* Submit everything queued, wait for all of it, call cb for each completion. */
void t_eng_run(struct t_eng *e, void (*cb)(void *arg, uint64_t user_data, int res), void *arg);
/* Execute one SQE through atomio__sys (what the interpreter does for each entry). */
int t_eng_exec(const struct io_uring_sqe *sqe);

#endif
