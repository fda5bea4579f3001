/* SPDX-License-Identifier: MIT */
/*
 * test_rlimit.c -- an RWF_ATOMIC write that would cross RLIMIT_FSIZE is refused before it is
 * issued: -EFBIG, nothing written, the file not failed. The kernel checks the limit after its
 * atomic checks and writes the part below it, so without the check the page is left half new
 * and the file failed.
 *   - unit: the limit faked at the syscall seam (atomio__sys.getrlimit), on DIRECT_ATOMIC
 *     (statx faked atomic in $TMPDIR), bring-your-own-ring atomio_prep_write(), and
 *     BUFFERED_ATOMIC (the simulated buffered-atomic kernel); the limit is read at every write;
 *   - fs (root): the real limit on a loop-mounted XFS reflink=1 (software RWF_ATOMIC), where
 *     the kernel really cuts the write.
 */
#include "sim_kernel.h"
#include "t_core.h"
#include "t_seam.h"

#include <atomio.h>
#include <atomio_uring.h>
#include <criterion/criterion.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static char dir[PATH_MAX];
static char data[PATH_MAX + 8];
static struct t_fs fs;
static atomio_ctx *ctx;
static unsigned char *buf;
static uint32_t buf_pages, buf_ps;
static dev_t data_dev;
static ino_t data_ino;
static unsigned n_data_writes, n_getrlimit;
static rlim_t fake_limit = RLIM_INFINITY;
static bool fake_atomic; /* $TMPDIR's filesystem has no RWF_ATOMIC: take it as plain writes */

static ssize_t
count_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino) {
        n_data_writes++;
        if (fake_atomic)
            flags &= ~RWF_ATOMIC;
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static int
fake_getrlimit(int resource, struct rlimit *rl)
{
    cr_assert_eq(resource, RLIMIT_FSIZE, "the write path reads RLIMIT_FSIZE only");
    n_getrlimit++;
    rl->rlim_cur = fake_limit;
    rl->rlim_max = RLIM_INFINITY;
    return 0;
}

static void
note_data_file(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;
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
    if (buf)
        atomio_page_free(ctx, buf, buf_ps, buf_pages);
    buf = NULL;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    if (dir[0])
        t_rmtree(dir);
    dir[0] = '\0';
    t_fs_umount(&fs);
}

static void
alloc_pages(uint32_t ps, uint32_t n)
{
    buf_ps = ps;
    buf_pages = n;
    buf = atomio_page_alloc(ctx, ps, n);
    cr_assert_not_null(buf);
    for (uint32_t i = 0; i < n; i++)
        t_fill(buf + (size_t)i * ps, ps, 70 + i);
}

/* A forced DIRECT_ATOMIC file in $TMPDIR (atomic figures faked), or skip without O_DIRECT. */
static atomio_file *
tmp_direct_file(uint32_t ps)
{
    unsetenv("ATOMIO_PATH");
    t_tmpdir(dir, sizeof(dir));
    snprintf(data, sizeof(data), "%s/data", dir);
    t_make_file(data, 0, 0);
    note_data_file(data);
    atomio__caps_cache_clear();
    atomio__sys.statx = t_statx_sw_atomic;
    ctx = t_ctx_open(NULL);
    atomio_file_opts o = t_file_opts(ps, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &o, &f);
    if (r == -EINVAL) {
        char where[PATH_MAX];
        snprintf(where, sizeof(where), "%s", dir);
        fini();
        cr_skip_test("skipped: $TMPDIR (%s) refuses O_DIRECT", where);
    }
    cr_assert_eq(r, 0, "forced DIRECT_ATOMIC: %s", atomio_err_name(r));
    atomio__sys.pwritev2 = count_pwritev2;
    atomio__sys.getrlimit = fake_getrlimit;
    fake_atomic = true;
    n_data_writes = n_getrlimit = 0;
    return f;
}

static void
assert_ok_file(atomio_file *f, const char *what)
{
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.state, ATOMIO_STATE_OK, "%s: the file was failed", what);
    cr_assert_eq(t_fstats(f).short_writes, 0, "%s: a short write was seen", what);
}

Test(rlimit_unit, direct_atomic_refused_before_issue, .fini = fini)
{
    const uint32_t ps = 16384;
    atomio_file *f = tmp_direct_file(ps);
    alloc_pages(ps, 4);

    fake_limit = ps + 4096; /* page 0 fits; page 1 [16 KiB, 32 KiB) crosses; page 2 beyond */
    cr_assert_eq(atomio_write(f, 0, buf, 0), 0);
    cr_assert_eq(n_data_writes, 1);
    struct t_snap before = t_snapshot(data);
    int r = atomio_write(f, 1, buf + ps, 0);
    cr_assert_eq(r, -EFBIG, "page crossing the limit: %s", atomio_err_name(r));
    r = atomio_write(f, 2, buf + 2 * ps, ATOMIO_WRITE_DSYNC);
    cr_assert_eq(r, -EFBIG, "page beyond the limit: %s", atomio_err_name(r));
    atomio_page_write w[3] = {{f, 0, buf, 0, 0}, {f, 1, buf + ps, 0, 0}, {f, 3, buf, 0, 0}};
    cr_assert_eq(atomio_write_batch(ctx, w, 3, 0), 1);
    cr_assert_eq(w[0].result, 0);
    cr_assert_eq(w[1].result, -EFBIG);
    cr_assert_eq(w[2].result, -EFBIG);
    cr_assert_eq(n_data_writes, 2, "a refused page reached the kernel (%u writes)",
                 n_data_writes);
    t_snapshot(data); /* page 0 rewritten with the same bytes: only mtime may move */
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    cr_assert_eq(st.st_size, before.size, "a refused write changed the size");
    assert_ok_file(f, "after -EFBIG");
    cr_assert_geq(n_getrlimit, 5, "the limit is read at every atomic write");

    /* The limit can change at run time: raised, the same page goes through. */
    fake_limit = RLIM_INFINITY;
    cr_assert_eq(atomio_write(f, 1, buf + ps, 0), 0);
    fake_limit = 2 * ps; /* exactly at the end of page 1: still fits */
    cr_assert_eq(atomio_write(f, 1, buf + ps, 0), 0);
    cr_assert_eq(atomio_write(f, 2, buf, 0), -EFBIG);
    unsigned char *back = atomio_page_alloc(ctx, ps, 1);
    cr_assert_eq(atomio_read(f, 1, back), 0);
    cr_assert_eq(memcmp(back, buf + ps, ps), 0);
    atomio_page_free(ctx, back, ps, 1);
    assert_ok_file(f, "at the end");
}

Test(rlimit_unit, engine_ring_prep_refused, .fini = fini)
{
    const uint32_t ps = 4096;
    atomio_file *f = tmp_direct_file(ps);
    alloc_pages(ps, 2);
    fake_limit = 10 * ps + 1024;
    struct io_uring_sqe sqe;
    memset(&sqe, 0xa5, sizeof(sqe));
    sqe.user_data = 77;
    int r = atomio_prep_write(f, &sqe, 10, buf, 0);
    cr_assert_eq(r, -EFBIG, "prep across the limit: %s", atomio_err_name(r));
    cr_assert_eq(sqe.opcode, IORING_OP_NOP, "a refused prep left a write in the SQE");
    cr_assert_eq(sqe.user_data, 77);
    cr_assert_eq(atomio_prep_write(f, &sqe, 9, buf, 0), 0, "page below the limit");
    cr_assert_eq(sqe.opcode, IORING_OP_WRITE);
    cr_assert_eq(n_data_writes, 0);
    assert_ok_file(f, "after a refused prep");
}

/* BUFFERED_ATOMIC on the simulated buffered-atomic kernel. */
Test(rlimit_unit, buffered_atomic_refused_before_issue, .fini = fini)
{
    unsetenv("ATOMIO_PATH");
    unsetenv("ATOMIO_SUBMITTER");
    t_tmpdir(dir, sizeof(dir));
    snprintf(data, sizeof(data), "%s/data", dir);
    sim_kernel_install(&(struct sim_kernel_cfg){.fs_block = 4096, .folio_order = -1});
    ctx = t_ctx_open(NULL);
    const uint32_t ps = 4096;
    atomio_file_opts o =
        t_file_opts(ps, ATOMIO_PATH_BUFFERED_ATOMIC, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &o, &f);
    cr_assert_eq(r, 0, "forced BUFFERED_ATOMIC on the simulated kernel: %s", atomio_err_name(r));
    alloc_pages(ps, 2);
    atomio__sys.getrlimit = fake_getrlimit;
    fake_limit = 3 * ps + 100;
    cr_assert_eq(atomio_write(f, 2, buf, 0), 0);
    struct sim_kernel_stats s0, s1;
    sim_kernel_get_stats(&s0);
    r = atomio_write(f, 3, buf + ps, 0);
    cr_assert_eq(r, -EFBIG, "buffered page crossing the limit: %s", atomio_err_name(r));
    /* an unaligned heap page would have been bounced: refused before the copy too */
    unsigned char *heap = malloc(ps + 8);
    memcpy(heap + 8, buf, ps);
    cr_assert_eq(atomio_write(f, 5, heap + 8, 0), -EFBIG);
    free(heap);
    sim_kernel_get_stats(&s1);
    cr_assert_eq(s1.atomic_ok + s1.plain_writes + s1.atomic_einval,
                 s0.atomic_ok + s0.plain_writes + s0.atomic_einval,
                 "a refused buffered page reached the kernel");
    assert_ok_file(f, "buffered, after -EFBIG");
    cr_assert_eq(t_fstats(f).pages[ATOMIO_PATH_BUFFERED_ATOMIC], 1);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    cr_assert_eq(st.st_size, 3 * ps);
    atomio_file_close(f);
    atomio_page_free(ctx, buf, buf_ps, buf_pages);
    buf = NULL;
    atomio_ctx_close(ctx);
    ctx = NULL;
    sim_kernel_uninstall();
}

/* ------------------------------------------------------------------------------------------ */
/* The real limit on XFS reflink=1: without the check the kernel writes 4 KiB of the page.      */

static void
set_limit(rlim_t bytes)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

Test(rlimit_fs, xfs_direct_atomic_real_limit, .fini = fini)
{
    t_fs_mount(&fs, "xfs", 512);
    const uint32_t ps = 65536;
    const char *p = t_join(fs.dir, "data");
    ctx = t_ctx_open(NULL);
    atomio_file_opts o =
        t_file_opts(ps, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, p, &o, &f);
    cr_assert_eq(r, 0, "DIRECT_ATOMIC, 64 KiB pages on XFS reflink=1: %s", atomio_err_name(r));
    note_data_file(p);
    fake_atomic = false;
    atomio__sys.pwritev2 = count_pwritev2;
    alloc_pages(ps, 2);
    cr_assert_eq(atomio_write(f, 0, buf, 0), 0);
    cr_assert_eq(atomio_sync(f), 0);
    struct t_snap before = t_snapshot(p);
    n_data_writes = 0;

    signal(SIGXFSZ, SIG_IGN);
    set_limit(ps + 4096); /* page 1 spans 64 .. 128 KiB: the kernel would write 4 KiB of it */
    r = atomio_write(f, 1, buf + ps, 0);
    cr_assert_eq(r, -EFBIG, "write crossing RLIMIT_FSIZE: %s", atomio_err_name(r));
    atomio_page_write w = {f, 1, buf + ps, 0, 0};
    cr_assert_eq(atomio_write_batch(ctx, &w, 1, ATOMIO_WRITE_DSYNC), 0);
    cr_assert_eq(w.result, -EFBIG);
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    cr_assert_eq(atomio_prep_write(f, &sqe, 1, buf + ps, 0), -EFBIG);
    cr_assert_eq(sqe.opcode, IORING_OP_NOP);
    cr_assert_eq(n_data_writes, 0, "%u writes reached the kernel", n_data_writes);
    t_assert_unchanged(p, before, "writes crossing RLIMIT_FSIZE");
    assert_ok_file(f, "real limit");
    cr_assert_eq(atomio_sync(f), 0, "the file must stay usable");

    set_limit(RLIM_INFINITY);
    cr_assert_eq(atomio_write(f, 1, buf + ps, 0), 0);
    cr_assert_eq(atomio_sync(f), 0);
    unsigned char *raw = malloc(ps);
    t_pread_file(p, raw, ps, ps);
    cr_assert_eq(memcmp(raw, buf + ps, ps), 0);
    free(raw);
    assert_ok_file(f, "after raising the limit");
}
