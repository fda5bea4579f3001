/* SPDX-License-Identifier: MIT */
/*
 * test_faults.c -- the failure model with real and injected faults on a DIRECT_ATOMIC
 * file in a loop-mounted XFS reflink=1 (root; skipped with a printed reason otherwise):
 *   - a short write: the kernel writes the first 4 KiB of a 64 KiB page (cut at the seam: the
 *     one real cause, RLIMIT_FSIZE, is refused before the write, see test_rlimit.c); the
 *     library must not retry it, must return ATOMIO_E_SHORT_WRITE and fail the file
 *     (ATOMIO_E_FAILED on every later write and sync);
 *   - a write starting at the limit gets -EFBIG, passed through, file not failed;
 *   - a failed fdatasync (EIO injected at the seam) is sticky;
 *   - EINVAL from an atomic write re-probes once, then is ATOMIO_E_GEOMETRY.
 */
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define FS_MB 512

static struct t_fs fs;
static atomio_ctx *ctx;
static atomio_file *file;
static const char *path;
static unsigned char *pages; /* 4 pages from atomio_page_alloc */
static uint32_t psize;

static unsigned n_writes, n_atomic, n_statx, n_sync;
static int inject_write; /* -errno returned for RWF_ATOMIC writes, 0 = pass through */
static int inject_sync;  /* -errno returned by fdatasync, 0 = pass through */
static size_t cut_write;  /* > 0: the next RWF_ATOMIC write really writes only this many bytes */

static ssize_t
w_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    n_writes++;
    if (flags & RWF_ATOMIC) {
        n_atomic++;
        if (inject_write)
            return inject_write;
        if (cut_write && iovcnt == 1 && cut_write < iov[0].iov_len) {
            struct iovec head = {iov[0].iov_base, cut_write};
            cut_write = 0;
            return atomio__sys_real.pwritev2(fd, &head, 1, off, flags);
        }
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static int
w_statx(int dirfd, const char *p, int flags, unsigned mask, struct atomio_statx *s)
{
    n_statx++;
    return atomio__sys_real.statx(dirfd, p, flags, mask, s);
}

static int
w_fdatasync(int fd)
{
    n_sync++;
    if (inject_sync)
        return inject_sync;
    return atomio__sys_real.fdatasync(fd);
}

static void
open_xfs_file(uint32_t page)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    psize = page;
    path = t_join(fs.dir, "data");
    ctx = t_ctx_open(NULL);
    atomio_file_opts o =
        t_file_opts(page, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
    file = t_file_open(ctx, path, &o);
    pages = atomio_page_alloc(ctx, page, 4);
    cr_assert_not_null(pages);
    for (unsigned i = 0; i < 4; i++)
        t_fill(pages + (size_t)i * page, page, 40 + i);
    atomio__sys.pwritev2 = w_pwritev2;
    atomio__sys.statx = w_statx;
    atomio__sys.fdatasync = w_fdatasync;
    n_writes = n_atomic = n_statx = n_sync = 0;
    inject_write = inject_sync = 0;
    cut_write = 0;
}

static void
fini(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    atomio__sys = atomio__sys_real;
    if (file)
        atomio_file_close(file);
    if (pages)
        atomio_page_free(ctx, pages, psize, 4);
    if (ctx)
        atomio_ctx_close(ctx);
    file = NULL;
    pages = NULL;
    ctx = NULL;
    t_fs_umount(&fs);
}

static void
set_fsize_limit(rlim_t bytes)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0, "setrlimit(RLIMIT_FSIZE, %llu)",
                 (unsigned long long)bytes);
}

static void
assert_failed_for_good(const char *why)
{
    unsigned writes_before = n_writes;
    atomio_file_info fi = t_info(file);
    cr_assert_eq(fi.state, ATOMIO_STATE_FAILED, "%s: state %u, not FAILED", why, fi.state);
    for (unsigned i = 0; i < 4; i++) {
        int r = atomio_write(file, i, pages + (size_t)i * psize, 0);
        cr_assert_eq(r, ATOMIO_E_FAILED, "%s: later write of page %u gave %s", why, i,
                     atomio_err_name(r));
    }
    int r = atomio_write(file, 0, pages, ATOMIO_WRITE_DSYNC);
    cr_assert_eq(r, ATOMIO_E_FAILED, "%s: later DSYNC write gave %s", why, atomio_err_name(r));
    for (int k = 0; k < 2; k++) {
        r = atomio_sync(file);
        cr_assert_eq(r, ATOMIO_E_FAILED, "%s: later sync gave %s", why, atomio_err_name(r));
    }
    atomio_page_write w = {file, 1, pages, 12345, 0};
    r = atomio_write_batch(ctx, &w, 1, 0);
    cr_assert_eq(w.result, ATOMIO_E_FAILED, "%s: batch entry gave %s", why,
                 atomio_err_name(w.result));
    cr_assert_eq(r, 0, "%s: batch reported %d entries written", why, r);
    cr_assert_eq(n_writes, writes_before, "%s: a failed file still issued %u writes", why,
                 n_writes - writes_before);
    cr_assert_eq(t_info(file).state, ATOMIO_STATE_FAILED);
}

Test(faults, short_write_fails_file_for_good, .fini = fini)
{
    open_xfs_file(65536);
    atomio_caps c = ATOMIO_CAPS_INIT;
    cr_assert_eq(atomio_file_get_caps(file, &c), 0);
    cr_assert_geq(c.unit_max, 65536, "unit_max %u below the 64 KiB page", c.unit_max);
    cr_assert_eq(atomio_write(file, 0, pages, 0), 0);

    cut_write = 4096; /* page 1 spans 64 KiB .. 128 KiB: the kernel writes its first 4 KiB */
    unsigned before = n_writes;
    int r = atomio_write(file, 1, pages + psize, 0);
    cr_assert_eq(r, ATOMIO_E_SHORT_WRITE, "a write cut after 4 KiB gave %s", atomio_err_name(r));
    cr_assert_eq(n_writes - before, 1, "the short write was retried (%u syscalls)",
                 n_writes - before);

    atomio_stats st = t_fstats(file);
    cr_assert_eq(st.short_writes, 1);
    cr_assert_eq(st.pages[ATOMIO_PATH_DIRECT_ATOMIC], 1, "the torn page was counted as written");
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.short_writes, 1);

    assert_failed_for_good("after a short write");

    /* reads stay possible: the engine may want to look at what is there */
    unsigned char *back = atomio_page_alloc(ctx, psize, 1);
    cr_assert_eq(atomio_read(file, 0, back), 0);
    cr_assert_eq(memcmp(back, pages, psize), 0);
    atomio_page_free(ctx, back, psize, 1);
    cr_assert_eq(t_fstats(file).short_writes, 1);
}

Test(faults, write_at_rlimit_fsize_is_efbig, .fini = fini)
{
    open_xfs_file(65536);
    cr_assert_eq(atomio_write(file, 0, pages, 0), 0);
    signal(SIGXFSZ, SIG_IGN);
    set_fsize_limit(65536); /* page 1 starts exactly at the limit */
    int r = atomio_write(file, 1, pages + psize, 0);
    cr_assert_eq(r, -EFBIG, "write at RLIMIT_FSIZE gave %s, not -EFBIG", atomio_err_name(r));
    atomio_file_info fi = t_info(file);
    cr_assert_eq(fi.state, ATOMIO_STATE_OK, "EFBIG (nothing written) failed the file");
    cr_assert_eq(t_fstats(file).short_writes, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 65536, "EFBIG write changed the size");

    set_fsize_limit(RLIM_INFINITY);
    r = atomio_write(file, 1, pages + psize, 0);
    cr_assert_eq(r, 0, "write after raising the limit: %s", atomio_err_name(r));
    cr_assert_eq(atomio_sync(file), 0);
    unsigned char *raw = malloc(psize);
    t_pread_file(path, raw, psize, psize);
    cr_assert_eq(memcmp(raw, pages + psize, psize), 0);
    free(raw);
}

Test(faults, failed_fdatasync_is_sticky, .fini = fini)
{
    open_xfs_file(4096);
    cr_assert_eq(atomio_write(file, 0, pages, 0), 0);
    inject_sync = -EIO;
    int r = atomio_sync(file);
    cr_assert_eq(r, -EIO, "failed fdatasync gave %s, not the kernel's -EIO", atomio_err_name(r));
    cr_assert_geq(n_sync, 1);
    inject_sync = 0; /* the disk "recovers": the library must not believe it */
    atomio_stats st = t_fstats(file);
    cr_assert_eq(st.failed_syncs, 1);
    assert_failed_for_good("after a failed fdatasync");
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.failed_syncs, 1);
    cr_assert_neq(atomio_ctx_sync(ctx), 0, "ctx sync ignored a failed file");
}

Test(faults, einval_from_atomic_write_reprobes_once_then_geometry, .fini = fini)
{
    open_xfs_file(4096);
    struct t_snap before = t_snapshot(path);
    inject_write = -EINVAL;
    int r = atomio_write(file, 0, pages, 0);
    cr_assert_eq(r, ATOMIO_E_GEOMETRY, "EINVAL from RWF_ATOMIC gave %s", atomio_err_name(r));
    cr_assert_geq(n_statx, 1, "no re-probe (statx) after EINVAL");
    cr_assert_leq(n_atomic, 2, "EINVAL answered with %u atomic writes (re-probe once)", n_atomic);
    t_assert_unchanged(path, before, "EINVAL write");

    /* once per file: a second EINVAL is an error straight away */
    unsigned statx_before = n_statx, atomic_before = n_atomic;
    r = atomio_write(file, 1, pages + psize, 0);
    cr_assert_eq(r, ATOMIO_E_GEOMETRY, "second EINVAL gave %s", atomio_err_name(r));
    cr_assert_eq(n_statx, statx_before, "re-probed a second time");
    cr_assert_eq(n_atomic - atomic_before, 1, "second EINVAL retried");
    cr_assert_eq(t_fstats(file).short_writes, 0);
    t_assert_unchanged(path, before, "second EINVAL write");
}
