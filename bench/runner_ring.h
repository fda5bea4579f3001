/* SPDX-License-Identifier: MIT */
/*
 * runner_ring.h -- --submitter engine: the library runner's writes driven the way an io_uring
 * engine drives libatomio (atomio_uring.h, bring-your-own-ring). See runner_ring.c.
 */
#ifndef ATOMIO_BENCH_RUNNER_RING_H
#define ATOMIO_BENCH_RUNNER_RING_H

#include "workload.h"

#include <atomio.h>
#include <stdatomic.h>

/* What the engine-ring threads share: the run's ctx and file, and the first error a thread
 * met where it could not return one (while finishing its batches at the end). */
struct ring_env {
    const struct wl_config *c;
    atomio_ctx *ctx;
    atomio_file *f;
    uint32_t wflags; /* atomio_prep_write() flags (0: the bench keeps its pages stable) */
    int doublewrite; /* the file is on DOUBLEWRITE: the staged protocol */
    _Atomic int err; /* 0, or the first error of a thread's final drain */
    /* The library runner's counter snapshot, called through: ops->arg is e. */
    void (*mark)(void *arg, int phase);
    void *mark_arg;
};

/* Batches each thread keeps in flight: one's store write and fsync overlap the other's
 * in-place writes. */
#define RING_BATCHES 2

/* ring_supported() -- 1 when atomio-bench was built with liburing (the engine's ring). */
int ring_supported(void);

/*
 * ring_ops() -- fill ops with the engine-ring runner over e (which must outlive the run):
 * ops->arg is e, mark calls e->mark, strerr is the library's message.
 */
void ring_ops(struct ring_env *e, struct wl_ops *ops);

#endif
