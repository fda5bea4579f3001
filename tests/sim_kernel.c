/* SPDX-License-Identifier: MIT */
/*
 * sim_kernel.c -- the simulated buffered-RWF_ATOMIC kernel (see sim_kernel.h for the rules).
 * Every wrapper keeps errno as it found it, like the real seam, and forwards to the entries
 * that were installed before it (so it stacks on the crash simulator).
 */
#include "sim_kernel.h"

#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define MAX_INODES 256
#define MAX_FDS    4096

static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct atomio_sys lower;
static bool installed;
static struct sim_kernel_cfg cfg;
static struct sim_kernel_stats stats;
static uint32_t short_copy_bytes; /* armed when non-zero */
static int fail_next_err;         /* armed when non-zero */
static int tmpfile_err;           /* O_TMPFILE opens fail with -tmpfile_err when non-zero */
static struct {
    dev_t dev;
    ino_t ino;
} atomic_inodes[MAX_INODES];
static unsigned n_atomic_inodes;
/* open(2) flags + 1 of every fd opened through the simulated kernel (0: not ours). Kept here
 * rather than asked of fcntl(), because a seam below (the crash simulator) may hand out
 * placeholder fds whose own flags are not the ones the library asked for. */
static int fd_flags[MAX_FDS];

static uint32_t
sys_page(void)
{
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (uint32_t)v : 4096;
}

static int
order_of_block(uint32_t bs)
{
    uint32_t sp = sys_page();
    int o = 0;
    while (bs > sp) {
        bs >>= 1;
        o++;
    }
    return o;
}

static uint32_t
folio_size_locked(void)
{
    return sys_page() << cfg.folio_order;
}

uint32_t
sim_kernel_folio_size(void)
{
    pthread_mutex_lock(&sim_lock);
    uint32_t s = folio_size_locked();
    pthread_mutex_unlock(&sim_lock);
    return s;
}

/* inode_is_atomic() / inode_mark_atomic() -- inodes that took atomic writes (sim_lock held). */
static bool
inode_is_atomic(const struct stat *st)
{
    for (unsigned i = 0; i < n_atomic_inodes; i++)
        if (atomic_inodes[i].dev == st->st_dev && atomic_inodes[i].ino == st->st_ino)
            return true;
    return false;
}

static void
inode_mark_atomic(const struct stat *st)
{
    if (inode_is_atomic(st) || n_atomic_inodes == MAX_INODES)
        return;
    atomic_inodes[n_atomic_inodes].dev = st->st_dev;
    atomic_inodes[n_atomic_inodes].ino = st->st_ino;
    n_atomic_inodes++;
}

static bool
is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/*
 * sim_open() -- O_TMPFILE through the simulated kernel. Where the filesystem below lacks
 * O_TMPFILE, a named file is created and unlinked at once: same observable result, an
 * anonymous inode in that directory.
 */
static void
remember_fd(int fd, int flags)
{
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&sim_lock);
        fd_flags[fd] = flags + 1;
        pthread_mutex_unlock(&sim_lock);
    }
}

static int
open_file(const char *path, int flags, unsigned mode)
{
    if ((flags & O_TMPFILE) != O_TMPFILE)
        return lower.open(path, flags, mode);
    pthread_mutex_lock(&sim_lock);
    stats.tmpfile_opens++;
    int terr = tmpfile_err;
    pthread_mutex_unlock(&sim_lock);
    if (terr)
        return -terr;
    int fd = lower.open(path, flags, mode);
    if (fd != -EOPNOTSUPP && fd != -EISDIR && fd != -EINVAL)
        return fd;
    int saved = errno;
    static _Atomic unsigned seq;
    for (int tries = 0; tries < 100; tries++) {
        char name[PATH_MAX];
        snprintf(name, sizeof(name), "%s/.sim-tmpfile-%d-%u", path, (int)getpid(),
                 atomic_fetch_add(&seq, 1));
        fd = lower.open(name, (flags & ~O_TMPFILE) | O_CREAT | O_EXCL, mode);
        if (fd >= 0) {
            unlink(name);
            break;
        }
        if (fd != -EEXIST)
            break;
    }
    errno = saved;
    return fd;
}

static int
sim_open(const char *path, int flags, unsigned mode)
{
    int fd = open_file(path, flags, mode);
    remember_fd(fd, flags);
    return fd;
}

static int
sim_close(int fd)
{
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&sim_lock);
        fd_flags[fd] = 0;
        pthread_mutex_unlock(&sim_lock);
    }
    return lower.close(fd);
}

/* open flags of fd: as opened through us, else as the kernel reports them (-1: unknown). */
static int
flags_of(int fd)
{
    int fl = 0;
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&sim_lock);
        fl = fd_flags[fd];
        pthread_mutex_unlock(&sim_lock);
    }
    if (fl)
        return fl - 1;
    int saved = errno;
    fl = fcntl(fd, F_GETFL);
    errno = saved;
    return fl;
}

/* The generic checks every kernel runs first (mainline too): EINVAL for these shapes. */
static bool
generic_shape_ok(const struct iovec *iov, int iovcnt, uint64_t off)
{
    return iovcnt == 1 && is_pow2(iov[0].iov_len) && off % iov[0].iov_len == 0;
}

static ssize_t
sim_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    int fl = flags_of(fd);
    int saved = errno;
    struct stat st;
    bool have_st = fstat(fd, &st) == 0;
    errno = saved;
    bool direct = fl >= 0 && (fl & O_DIRECT);

    if (!(flags & RWF_ATOMIC) || direct) {
        /* Plain writes, and O_DIRECT atomics: the layer below decides. */
        if (!(flags & RWF_ATOMIC)) {
            pthread_mutex_lock(&sim_lock);
            stats.plain_writes++;
            if (have_st && inode_is_atomic(&st))
                stats.mixed++;
            pthread_mutex_unlock(&sim_lock);
        }
        return lower.pwritev2(fd, iov, iovcnt, off, flags);
    }

    pthread_mutex_lock(&sim_lock);
    if (fl >= 0 && (fl & O_TMPFILE) == O_TMPFILE)
        stats.probe_writes++;
    ssize_t res;
    uint32_t folio = folio_size_locked();
    bool synced = (flags & (RWF_DSYNC | RWF_SYNC)) || (fl >= 0 && (fl & (O_DSYNC | O_SYNC)));
    if (!generic_shape_ok(iov, iovcnt, off)) {
        stats.atomic_einval++;
        res = -EINVAL;
    } else if (cfg.disabled) {
        stats.atomic_eopnotsupp++;
        res = -EOPNOTSUPP;
    } else if (iov[0].iov_len != folio || (uintptr_t)iov[0].iov_base % sys_page() ||
               (cfg.unit_min && (iov[0].iov_len < cfg.unit_min || iov[0].iov_len > cfg.unit_max))) {
        stats.atomic_einval++;
        res = -EINVAL;
    } else if (!synced) {
        stats.atomic_einval++;
        stats.nosync++;
        res = -EINVAL;
    } else if (fail_next_err) {
        int e = fail_next_err;
        fail_next_err = 0;
        stats.injected_errors++;
        res = -e;
        if (e == EIO) {
            /* The copy into the page cache happened; the writeback half failed. */
            pthread_mutex_unlock(&sim_lock);
            (void)lower.pwritev2(fd, iov, iovcnt, off, flags & ~RWF_ATOMIC & ~RWF_DSYNC);
            return res;
        }
    } else {
        struct iovec one = iov[0];
        if (short_copy_bytes && short_copy_bytes < one.iov_len) {
            one.iov_len = short_copy_bytes;
            stats.short_copies++;
        }
        short_copy_bytes = 0;
        stats.atomic_ok++;
        stats.last_atomic_buf = iov[0].iov_base;
        stats.last_atomic_off = off;
        stats.last_atomic_len = (uint32_t)iov[0].iov_len;
        stats.last_atomic_flags = flags;
        if (have_st)
            inode_mark_atomic(&st);
        bool pass = cfg.pass_atomic && one.iov_len == iov[0].iov_len;
        pthread_mutex_unlock(&sim_lock);
        /* Accepted: one synchronous write below, all-or-nothing at syscall granularity. */
        int lflags = (flags | RWF_DSYNC) & (pass ? ~0 : ~RWF_ATOMIC);
        return lower.pwritev2(fd, &one, 1, off, lflags);
    }
    pthread_mutex_unlock(&sim_lock);
    return res;
}

static int
sim_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx)
{
    int r = lower.statx(dirfd, path, flags, mask, stx);
    if (r < 0)
        return r;
    pthread_mutex_lock(&sim_lock);
    if (cfg.fs_block)
        stx->blksize = cfg.fs_block;
    if (mask & STATX_WRITE_ATOMIC) {
        stx->mask |= STATX_WRITE_ATOMIC;
        stx->attributes_mask |= STATX_ATTR_WRITE_ATOMIC;
        if (cfg.unit_min) {
            stx->attributes |= STATX_ATTR_WRITE_ATOMIC;
            stx->atomic_write_unit_min = cfg.unit_min;
            stx->atomic_write_unit_max = cfg.unit_max;
            stx->atomic_write_segments_max = 1;
        } else {
            stx->attributes &= ~(uint64_t)STATX_ATTR_WRITE_ATOMIC;
            stx->atomic_write_unit_min = 0;
            stx->atomic_write_unit_max = 0;
            stx->atomic_write_segments_max = 0;
        }
        stx->atomic_write_unit_max_opt = 0;
    }
    pthread_mutex_unlock(&sim_lock);
    return 0;
}

static int
sim_fstatfs(int fd, struct statfs *sfs)
{
    int r = lower.fstatfs(fd, sfs);
    if (r == 0) {
        pthread_mutex_lock(&sim_lock);
        if (cfg.fs_block)
            sfs->f_bsize = (long)cfg.fs_block;
        pthread_mutex_unlock(&sim_lock);
    }
    return r;
}

void
sim_kernel_install(const struct sim_kernel_cfg *c)
{
    pthread_mutex_lock(&sim_lock);
    if (!installed) {
        lower = atomio__sys;
        installed = true;
    }
    if (c)
        cfg = *c;
    else
        cfg = (struct sim_kernel_cfg){.fs_block = 4096, .folio_order = -1};
    if (cfg.folio_order < 0)
        cfg.folio_order = order_of_block(cfg.fs_block ? cfg.fs_block : sys_page());
    memset(&stats, 0, sizeof(stats));
    short_copy_bytes = 0;
    fail_next_err = 0;
    tmpfile_err = 0;
    n_atomic_inodes = 0;
    memset(fd_flags, 0, sizeof(fd_flags));
    atomio__sys.open = sim_open;
    atomio__sys.close = sim_close;
    atomio__sys.pwritev2 = sim_pwritev2;
    atomio__sys.statx = sim_statx;
    atomio__sys.fstatfs = sim_fstatfs;
    pthread_mutex_unlock(&sim_lock);
    atomio__caps_cache_clear();
}

void
sim_kernel_uninstall(void)
{
    pthread_mutex_lock(&sim_lock);
    if (installed) {
        atomio__sys.open = lower.open;
        atomio__sys.close = lower.close;
        atomio__sys.pwritev2 = lower.pwritev2;
        atomio__sys.statx = lower.statx;
        atomio__sys.fstatfs = lower.fstatfs;
        installed = false;
    }
    pthread_mutex_unlock(&sim_lock);
    atomio__caps_cache_clear();
}

void
sim_kernel_set_disabled(bool disabled)
{
    pthread_mutex_lock(&sim_lock);
    cfg.disabled = disabled;
    pthread_mutex_unlock(&sim_lock);
}

void
sim_kernel_set_order(int folio_order)
{
    pthread_mutex_lock(&sim_lock);
    cfg.folio_order = folio_order;
    pthread_mutex_unlock(&sim_lock);
}

void
sim_kernel_short_copy(uint32_t nbytes)
{
    pthread_mutex_lock(&sim_lock);
    short_copy_bytes = nbytes;
    pthread_mutex_unlock(&sim_lock);
}

void
sim_kernel_fail_next(int err)
{
    pthread_mutex_lock(&sim_lock);
    fail_next_err = err;
    pthread_mutex_unlock(&sim_lock);
}

void
sim_kernel_tmpfile_fail(int err)
{
    pthread_mutex_lock(&sim_lock);
    tmpfile_err = err;
    pthread_mutex_unlock(&sim_lock);
}

void
sim_kernel_get_stats(struct sim_kernel_stats *st)
{
    pthread_mutex_lock(&sim_lock);
    *st = stats;
    pthread_mutex_unlock(&sim_lock);
}
