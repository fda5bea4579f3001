/* SPDX-License-Identifier: MIT */
/*
 * t_core.h -- small helpers shared by the suites: opening a ctx and a file (t_ctx_open(),
 * t_file_open()), file snapshots for "nothing was written" checks, and fake statx figures
 * captured on real filesystems.
 * Header-only (static inline) so each suite takes what it uses without unused-function noise.
 */
#ifndef ATOMIO_TEST_T_CORE_H
#define ATOMIO_TEST_T_CORE_H

#include "atomio_internal.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_XFS_MAGIC   0x58465342u
#define T_EXT4_MAGIC  0xef53u
#define T_TMPFS_MAGIC 0x01021994u

/*
 * Figures captured on Linux 6.18 (x86-64, 4 KiB pages) with a raw statx(STATX_WRITE_ATOMIC |
 * STATX_DIOALIGN | STATX_DIO_READ_ALIGN) on a file in a loop-mounted filesystem, plus the loop
 * device's sysfs queue/atomic_write_unit_max_bytes. Fields not listed were 0.
 */
struct t_figures {
    const char *name;
    uint32_t mask;
    uint64_t attributes;
    uint32_t blksize;
    uint32_t dev_major, dev_minor;
    uint32_t dio_mem, dio_off, dio_read;
    uint32_t unit_min, unit_max, segments, unit_max_opt;
    uint64_t fs_type;
    int sysfs_err;   /* 0: sysfs readable, else -errno */
    uint32_t hw_max; /* sysfs atomic_write_unit_max_bytes when readable */
};

/* XFS, 4 KiB blocks, reflink=1, on /dev/loop0: software (CoW) atomic writes 4 KiB .. 1 MiB. */
static const struct t_figures t_fig_xfs_reflink = {
    .name = "xfs reflink=1",
    .mask = 0x3373f,
    .attributes = 0x400000,
    .blksize = 4096,
    .dev_major = 7,
    .dev_minor = 0,
    .dio_mem = 512,
    .dio_off = 512,
    .dio_read = 512,
    .unit_min = 4096,
    .unit_max = 1048576,
    .segments = 1,
    .unit_max_opt = 0,
    .fs_type = T_XFS_MAGIC,
    .sysfs_err = 0,
    .hw_max = 0,
};
/* XFS reflink=0: the mask bit is set, the attribute is not, every atomic field is 0. */
static const struct t_figures t_fig_xfs_noreflink = {
    .name = "xfs reflink=0",
    .mask = 0x3373f,
    .attributes = 0,
    .blksize = 4096,
    .dev_major = 7,
    .dev_minor = 0,
    .dio_mem = 512,
    .dio_off = 512,
    .dio_read = 512,
    .fs_type = T_XFS_MAGIC,
    .sysfs_err = 0,
    .hw_max = 0,
};
/* ext4 on a loop device: mask bit set, no attribute, zero fields, no DIO read alignment. */
static const struct t_figures t_fig_ext4 = {
    .name = "ext4",
    .mask = 0x1373f,
    .attributes = 0,
    .blksize = 4096,
    .dev_major = 7,
    .dev_minor = 0,
    .dio_mem = 512,
    .dio_off = 512,
    .dio_read = 0,
    .fs_type = T_EXT4_MAGIC,
    .sysfs_err = 0,
    .hw_max = 0,
};
/* tmpfs: no STATX_WRITE_ATOMIC and no STATX_DIOALIGN in the mask, anonymous device 0:39. */
static const struct t_figures t_fig_tmpfs = {
    .name = "tmpfs",
    .mask = 0x173f,
    .attributes = 0,
    .blksize = 4096,
    .dev_major = 0,
    .dev_minor = 39,
    .fs_type = T_TMPFS_MAGIC,
    .sysfs_err = -ENOENT,
    .hw_max = 0,
};

/*
 * t_caps_from() -- an atomio_caps holding the raw figures the probe would have collected for
 * page_size, before atomio__caps_derive(). The buffered probe is marked done with probe_err.
 */
static inline atomio_caps
t_caps_from(const struct t_figures *fg, uint32_t page_size, uint32_t sys_page, int probe_err)
{
    atomio_caps c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.valid = ATOMIO_CAPS_STATX | ATOMIO_CAPS_BUFFERED;
    c.page_size = page_size;
    c.sys_page_size = sys_page;
    c.fs_block_size = fg->blksize;
    c.statx_mask = fg->mask;
    c.statx_attributes = fg->attributes;
    c.dio_mem_align = fg->dio_mem;
    c.dio_offset_align = fg->dio_off;
    c.dio_read_offset_align = fg->dio_read;
    c.unit_min = fg->unit_min;
    c.unit_max = fg->unit_max;
    c.segments_max = fg->segments;
    c.unit_max_opt = fg->unit_max_opt;
    c.dev_major = fg->dev_major;
    c.dev_minor = fg->dev_minor;
    c.hw_sysfs_err = fg->sysfs_err;
    if (fg->sysfs_err == 0) {
        c.valid |= ATOMIO_CAPS_SYSFS;
        c.hw_unit_max = fg->hw_max;
    }
    c.buffered_probe_err = probe_err;
    c.fs_type = fg->fs_type;
    return c;
}

/*
 * t_ctx_opts() -- options of a test ctx: its doublewrite store in dw_dir (NULL: no store,
 * ATOMIO_CTX_NO_DOUBLEWRITE), writes through the synchronous pwritev2 submitter, i.e. through
 * the atomio__sys seam the suites fake and count. Set what else the test varies, then
 * t_ctx_open().
 */
static inline atomio_ctx_opts
t_ctx_opts(const char *dw_dir)
{
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.doublewrite_dir = dw_dir;
    o.doublewrite_store_bytes = 4u << 20; /* small: every test lays a store out */
    o.flags = dw_dir ? 0 : ATOMIO_CTX_NO_DOUBLEWRITE;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    return o;
}

/* t_ctx_open() -- a ctx opened with o (NULL: t_ctx_opts(NULL)); any error fails the test. */
static inline atomio_ctx *
t_ctx_open(const atomio_ctx_opts *o)
{
    atomio_ctx_opts none = t_ctx_opts(NULL);
    if (!o)
        o = &none;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(o, &ctx);
    cr_assert_eq(r, 0, "atomio_ctx_open(store %s, submitter %u): %s",
                 o->doublewrite_dir ? o->doublewrite_dir : "none", o->submitter,
                 atomio_err_name(r));
    cr_assert_not_null(ctx);
    return ctx;
}

/* t_file_holds() -- whether page page_no of the file at path, read past the library, is
 * exactly want (ps bytes). */
static inline bool
t_file_holds(const char *path, const void *want, uint32_t ps, uint64_t page_no)
{
    uint8_t got[65536];
    cr_assert_leq(ps, sizeof(got));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    ssize_t n = pread(fd, got, ps, (off_t)(page_no * ps));
    close(fd);
    return n == (ssize_t)ps && memcmp(want, got, ps) == 0;
}

/* t_file_opts() -- file options with the fields every suite sets. */
static inline atomio_file_opts
t_file_opts(uint32_t page_size, uint32_t path, uint32_t io_style, uint32_t flags)
{
    atomio_file_opts o = ATOMIO_FILE_OPTS_INIT;
    o.page_size = page_size;
    o.path = path;
    o.io_style = io_style;
    o.flags = flags;
    return o;
}

/* t_file_open() -- path opened with o on ctx; any error fails the test. */
static inline atomio_file *
t_file_open(atomio_ctx *ctx, const char *path, const atomio_file_opts *o)
{
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, path, o, &f);
    cr_assert_eq(r, 0, "open %s (%s, %s, %u-byte pages): %s", path, atomio_path_name(o->path),
                 atomio_io_style_name(o->io_style), o->page_size, atomio_err_name(r));
    cr_assert_not_null(f);
    return f;
}

static inline atomio_file_info
t_info(const atomio_file *f)
{
    atomio_file_info fi = ATOMIO_FILE_INFO_INIT;
    int r = atomio_file_get_info(f, &fi);
    cr_assert_eq(r, 0, "atomio_file_get_info: %s", atomio_err_name(r));
    return fi;
}

static inline atomio_stats
t_fstats(const atomio_file *f)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    int r = atomio_file_get_stats(f, &st);
    cr_assert_eq(r, 0, "atomio_file_get_stats: %s", atomio_err_name(r));
    return st;
}

/* What a file holds: existence, size, mtime and a hash of every byte. */
struct t_snap {
    int exists;
    off_t size;
    struct timespec mtime;
    mode_t mode;
    uint64_t hash;
};

static inline struct t_snap
t_snapshot(const char *path)
{
    struct t_snap s;
    memset(&s, 0, sizeof(s));
    struct stat st;
    if (stat(path, &st) != 0) {
        cr_assert_eq(errno, ENOENT, "stat %s: %s", path, strerror(errno));
        return s;
    }
    s.exists = 1;
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    s.mode = st.st_mode;
    s.hash = 1469598103934665603ull; /* FNV-1a */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    unsigned char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            s.hash = (s.hash ^ buf[i]) * 1099511628211ull;
    cr_assert(n == 0, "read %s: %s", path, strerror(errno));
    close(fd);
    return s;
}

/* t_assert_unchanged() -- "nothing written": same existence, size, mtime and bytes. */
#define t_assert_unchanged(path, before, what)                                                     \
    do {                                                                                           \
        struct t_snap after_ = t_snapshot(path);                                                   \
        cr_assert_eq(after_.exists, (before).exists, "%s: file appeared or vanished", what);       \
        cr_assert_eq(after_.size, (before).size, "%s: size %lld -> %lld", what,                    \
                     (long long)(before).size, (long long)after_.size);                            \
        cr_assert_eq(after_.hash, (before).hash, "%s: file content changed", what);                \
        cr_assert(after_.mtime.tv_sec == (before).mtime.tv_sec &&                                  \
                      after_.mtime.tv_nsec == (before).mtime.tv_nsec,                              \
                  "%s: mtime changed", what);                                                      \
    } while (0)

/* Create path holding len bytes of t_fill(seed). */
static inline void
t_make_file(const char *path, size_t len, uint64_t seed)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    if (len) {
        void *buf = malloc(len);
        cr_assert_not_null(buf);
        t_fill(buf, len, seed);
        cr_assert_eq(write(fd, buf, len), (ssize_t)len, "fill %s", path);
        free(buf);
    }
    cr_assert_eq(close(fd), 0);
}

/* Read len bytes at off straight from the file, bypassing the library. */
static inline void
t_pread_file(const char *path, void *buf, size_t len, off_t off)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, buf, len, off), (ssize_t)len, "pread %s at %lld", path, (long long)off);
    close(fd);
}

#endif
