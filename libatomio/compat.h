/* SPDX-License-Identifier: MIT */
/*
 * compat.h -- kernel constants and the statx layout that Debian 12's 6.1 headers lack.
 * Values from include/uapi/linux/{fs,stat}.h of 6.11-6.18 (research/kernel-atomic-writes.md 2).
 * The struct is ours and its offsets are asserted, so a raw statx(2) fills it on any libc.
 */
#ifndef ATOMIO_COMPAT_H
#define ATOMIO_COMPAT_H

#include <stddef.h>
#include <stdint.h>

#ifndef RWF_HIPRI
#define RWF_HIPRI 0x00000001
#endif
#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x00000004
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x00000010
#endif
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040
#endif

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif
#ifndef STATX_WRITE_ATOMIC
#define STATX_WRITE_ATOMIC 0x00010000U
#endif
#ifndef STATX_DIO_READ_ALIGN
#define STATX_DIO_READ_ALIGN 0x00020000U
#endif
#ifndef STATX_ATTR_WRITE_ATOMIC
#define STATX_ATTR_WRITE_ATOMIC 0x00400000ULL
#endif

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

#ifndef ATOMIO_NR_statx
#if defined(__x86_64__)
#define ATOMIO_NR_statx 332
#else
#define ATOMIO_NR_statx 291 /* asm-generic (aarch64, riscv64) */
#endif
#endif

struct atomio_statx_ts {
    int64_t tv_sec;
    uint32_t tv_nsec;
    int32_t pad;
};

/* struct statx as of 6.16 (0x100 bytes on every ABI). */
struct atomio_statx {
    uint32_t mask;
    uint32_t blksize;
    uint64_t attributes;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint16_t mode;
    uint16_t pad1;
    uint64_t ino;
    uint64_t size;
    uint64_t blocks;
    uint64_t attributes_mask;
    struct atomio_statx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major;
    uint32_t rdev_minor;
    uint32_t dev_major;
    uint32_t dev_minor;
    uint64_t mnt_id;
    uint32_t dio_mem_align;
    uint32_t dio_offset_align;
    uint64_t subvol;
    uint32_t atomic_write_unit_min;
    uint32_t atomic_write_unit_max;
    uint32_t atomic_write_segments_max;
    uint32_t dio_read_offset_align;
    uint32_t atomic_write_unit_max_opt;
    uint32_t spare2;
    uint64_t spare3[8];
};

_Static_assert(sizeof(struct atomio_statx) == 0x100, "statx size");
_Static_assert(offsetof(struct atomio_statx, attributes) == 0x08, "stx_attributes");
_Static_assert(offsetof(struct atomio_statx, mode) == 0x1c, "stx_mode");
_Static_assert(offsetof(struct atomio_statx, ino) == 0x20, "stx_ino");
_Static_assert(offsetof(struct atomio_statx, size) == 0x28, "stx_size");
_Static_assert(offsetof(struct atomio_statx, attributes_mask) == 0x38, "stx_attributes_mask");
_Static_assert(offsetof(struct atomio_statx, atime) == 0x40, "stx_atime");
_Static_assert(offsetof(struct atomio_statx, rdev_major) == 0x80, "stx_rdev_major");
_Static_assert(offsetof(struct atomio_statx, dev_major) == 0x88, "stx_dev_major");
_Static_assert(offsetof(struct atomio_statx, mnt_id) == 0x90, "stx_mnt_id");
_Static_assert(offsetof(struct atomio_statx, dio_mem_align) == 0x98, "stx_dio_mem_align");
_Static_assert(offsetof(struct atomio_statx, dio_offset_align) == 0x9c, "stx_dio_offset_align");
_Static_assert(offsetof(struct atomio_statx, subvol) == 0xa0, "stx_subvol");
_Static_assert(offsetof(struct atomio_statx, atomic_write_unit_min) == 0xa8, "awu_min");
_Static_assert(offsetof(struct atomio_statx, atomic_write_unit_max) == 0xac, "awu_max");
_Static_assert(offsetof(struct atomio_statx, atomic_write_segments_max) == 0xb0, "awu_segs");
_Static_assert(offsetof(struct atomio_statx, dio_read_offset_align) == 0xb4, "dio_read_align");
_Static_assert(offsetof(struct atomio_statx, atomic_write_unit_max_opt) == 0xb8, "awu_max_opt");
_Static_assert(offsetof(struct atomio_statx, spare3) == 0xc0, "spare3");

#endif /* ATOMIO_COMPAT_H */
