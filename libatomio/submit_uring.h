/* SPDX-License-Identifier: MIT */
/*
 * submit_uring.h -- what submit_uring.c shows besides the submitter table: per-ctx figures
 * (for tests, the bench and diagnostics) and, in test builds, fault hooks.
 */
#ifndef ATOMIO_SUBMIT_URING_H
#define ATOMIO_SUBMIT_URING_H

#include "atomio_internal.h"

#ifdef HAVE_LIBURING

struct atomio_uring_diag {
    unsigned queue_depth;      /* SQ entries per ring */
    unsigned setup_flags;      /* IORING_SETUP_* every ring of the ctx uses */
    unsigned rings;            /* rings created and alive */
    unsigned max_inflight;     /* most writes one submit call had in flight at once */
    uint64_t batches;          /* submit calls that used a ring */
    uint64_t enters;           /* io_uring_enter calls made for them */
    uint64_t eagain_resubmits; /* whole writes resubmitted after a -EAGAIN completion */
    uint64_t thread_fallbacks; /* threads whose own ring could not be set up (they use
                                  pwritev2; each also counts in stats.uring_fallbacks) */
    uint64_t sync_ios;         /* writes issued by pwritev2 from inside the uring submitter */
};

/* Fill *d for a ctx whose submitter is io_uring; -EINVAL otherwise. Thread-safe. */
int atomio__uring_diag(const atomio_ctx *ctx, struct atomio_uring_diag *d);

#ifdef ATOMIO_TESTING
/* Test hooks (atomio_testing only). Not thread-safe to change while a ctx is in use.
 * fail_setup: when non-zero, every ring setup fails with this -errno (as seccomp's EPERM or
 * an old kernel's ENOSYS would). inject_eagain: the next N writes get one -EAGAIN completion
 * (a NOP with an injected result, nothing written) before being resubmitted for real. */
extern _Atomic int atomio__uring_fail_setup;
extern _Atomic int atomio__uring_inject_eagain;
#endif

#endif /* HAVE_LIBURING */
#endif /* ATOMIO_SUBMIT_URING_H */
