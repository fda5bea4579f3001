/* SPDX-License-Identifier: MIT */
/*
 * t_seam.h -- stand-ins for entries of the library's syscall seam (atomio__sys) that several
 * suites install. Header-only; the suites link the library's internals.
 */
#ifndef ATOMIO_TEST_T_SEAM_H
#define ATOMIO_TEST_T_SEAM_H

#include "atomio_internal.h"

/* t_statx_sw_atomic() -- the real statx plus XFS-like software atomic-write figures (4 .. 64
 * KiB, one segment, no hardware unit), so DIRECT_ATOMIC can be chosen on any filesystem. */
static inline int
t_statx_sw_atomic(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *s)
{
    int r = atomio__sys_real.statx(dirfd, path, flags, mask, s);
    if (r == 0) {
        s->mask |= STATX_WRITE_ATOMIC;
        s->attributes |= STATX_ATTR_WRITE_ATOMIC;
        s->atomic_write_unit_min = 4096;
        s->atomic_write_unit_max = 65536;
        s->atomic_write_segments_max = 1;
        s->atomic_write_unit_max_opt = 0;
    }
    return r;
}

#endif
