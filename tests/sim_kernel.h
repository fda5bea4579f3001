/* SPDX-License-Identifier: MIT */
/*
 * sim_kernel.h -- a simulated kernel with buffered RWF_ATOMIC, behind the atomio__sys seam.
 *
 * Mainline kernels (through 6.18 at least) refuse buffered RWF_ATOMIC with EOPNOTSUPP, so the
 * library's BUFFERED_ATOMIC path cannot be exercised on them. This seam implements the rules
 * of the kernel proposals (docs/buffered-atomic.md) over a real filesystem:
 *   - a buffered (non-O_DIRECT) pwritev2 with RWF_ATOMIC is accepted only when it is exactly
 *     one folio of the configured order (min order == max order) at a naturally aligned offset,
 *     from one iovec whose buffer is system-page aligned, and carries RWF_DSYNC or RWF_SYNC (or
 *     the fd is O_DSYNC/O_SYNC). Any other shape gets EINVAL, as do atomic writes without a
 *     sync flag: the model is write-through (the direction the proposals took), where
 *     atomicity is only promised for a write that is on disk when the call returns. Refusing
 *     the unsynced write, rather than accepting it and tracking its dirty folio, turns a
 *     library slip into an immediate, countable error.
 *   - "disabled" behaves like mainline: shapes the generic checks reject (length not a power
 *     of two, misaligned offset, several iovecs) get EINVAL, every other buffered atomic write
 *     EOPNOTSUPP.
 *   - an accepted write is performed as one write with RWF_DSYNC on the layer below: a plain
 *     one on the real kernel (all-or-nothing at syscall granularity, durable when it
 *     returns), or with RWF_ATOMIC kept (pass_atomic) over the crash simulator, which then
 *     keeps it whole or drops it at a crash point -- the simulated kernel's contract.
 *   - it can be told to short-copy the next accepted write (copy only the first n bytes and
 *     return n: a user buffer that faulted mid-copy), or to fail it with an errno.
 *   - statx and fstatfs report the configured fs block (stx_blksize, f_bsize) and atomic
 *     limits, so the probe's folio-order rule sees the simulated geometry. O_DIRECT writes,
 *     atomic or not, still go to the layer below unchanged.
 *   - O_TMPFILE opens go through it too, so the library's probe write proves support against
 *     the simulated kernel (emulated with a named, unlinked file where the filesystem below
 *     has no O_TMPFILE).
 * It also counts what a library must never do: buffered atomic writes without a sync flag,
 * and plain writes to an inode that has taken atomic writes (mixing drops atomicity).
 *
 * The seam sits on atomio__sys.pwritev2: use the pwritev2 submitter (ATOMIO_SUBMIT_SYNC),
 * since io_uring submissions do not pass through it. One simulated kernel per process.
 */
#ifndef ATOMIO_TEST_SIM_KERNEL_H
#define ATOMIO_TEST_SIM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_kernel_cfg {
    uint32_t fs_block; /* block size statx/statfs report; 0 = the real one */
    int folio_order;   /* every mapping's min = max folio order; -1 = that of fs_block */
    bool disabled;     /* behave like mainline: EOPNOTSUPP */
    uint32_t unit_min; /* atomic limits statx reports; 0 = none (mask bit set, fields 0, */
    uint32_t unit_max; /*   attribute clear: as ext4/XFS report when unsupported) */
    bool pass_atomic;  /* hand accepted writes below with RWF_ATOMIC kept, for a layer that
                          models atomic writes (the crash simulator keeps them whole or
                          drops them at a crash); the real kernel below would refuse it */
};

struct sim_kernel_stats {
    uint64_t atomic_ok;          /* buffered atomic writes accepted (incl. short copies) */
    uint64_t atomic_einval;      /* refused: wrong shape (or no sync flag) */
    uint64_t atomic_eopnotsupp;  /* refused: disabled */
    uint64_t nosync;             /* of atomic_einval: no RWF_DSYNC/RWF_SYNC/O_DSYNC */
    uint64_t short_copies;       /* accepted writes that copied only part of the folio */
    uint64_t injected_errors;    /* writes failed by sim_kernel_fail_next() */
    uint64_t mixed;              /* plain writes to an inode that took atomic writes */
    uint64_t plain_writes;       /* non-atomic writes seen */
    uint64_t tmpfile_opens;      /* O_TMPFILE opens (probe scratch files) */
    uint64_t probe_writes;       /* buffered atomic writes to O_TMPFILE fds (the probe), any
                                    outcome */
    const void *last_atomic_buf; /* iov_base of the last accepted atomic write */
    uint64_t last_atomic_off;
    uint32_t last_atomic_len;
    int last_atomic_flags;
};

/* Install on top of the current atomio__sys entries (open, close, pwritev2, statx, fstatfs)
 * and clear the library's buffered-probe cache. cfg NULL: 4 KiB blocks, order 0, enabled. */
void sim_kernel_install(const struct sim_kernel_cfg *cfg);
/* Restore the entries that were there before install; clears the probe cache again. */
void sim_kernel_uninstall(void);
/* Change the geometry or the verdict while installed (files keep their fds). */
void sim_kernel_set_disabled(bool disabled);
void sim_kernel_set_order(int folio_order);
/* The next accepted buffered atomic write copies only nbytes (< its length) and returns it. */
void sim_kernel_short_copy(uint32_t nbytes);
/* The next buffered atomic write that would be accepted fails with -err instead (err > 0):
 * nothing is written for EINVAL/EOPNOTSUPP/ENOSPC; for EIO the data is written first, as when
 * the writeback half of a DSYNC write fails. */
void sim_kernel_fail_next(int err);
/* O_TMPFILE opens fail with -err from now on (0: succeed again). */
void sim_kernel_tmpfile_fail(int err);
void sim_kernel_get_stats(struct sim_kernel_stats *st);
/* The folio size in bytes the simulated kernel accepts now. */
uint32_t sim_kernel_folio_size(void);

#endif
