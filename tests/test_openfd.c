/* SPDX-License-Identifier: MIT */
/*
 * test_openfd.c -- atomio_file_open_fd(): the engine hands over a descriptor it opened. The
 * library writes and reads through it, opens no second descriptor for the file (counted in
 * /proc/self/fd before and after, and at the open seam), never closes it, refuses O_APPEND
 * and bad input with nothing written, and lets the fd's O_DIRECT flag decide which paths are
 * possible. Runs without root in $TMPDIR (atomic figures faked in statx where a path needs
 * them; the O_DIRECT cases skip where $TMPDIR refuses O_DIRECT).
 */
#include "t_core.h"
#include "t_seam.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[PATH_MAX];
static char dwdir[PATH_MAX + 8];
static char data[PATH_MAX + 8];
static char other[PATH_MAX + 8];
static atomio_ctx *ctx;
static int efd = -1; /* the engine's descriptor */
static unsigned n_data_opens;
static unsigned n_writes_on_efd, n_writes_elsewhere;
static dev_t data_dev;
static ino_t data_ino;
static bool fake_atomic;

static int
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* opendir's own */
}

static int
rec_open(const char *path, int flags, unsigned mode)
{
    struct stat st;
    if (stat(path, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino)
        n_data_opens++;
    return atomio__sys_real.open(path, flags, mode);
}

static ssize_t
rec_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat st;
    if (fd == efd)
        n_writes_on_efd++;
    else if (fstat(fd, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino)
        n_writes_elsewhere++;
    if (fd == efd && fake_atomic)
        flags &= ~RWF_ATOMIC;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static void
setup(void)
{
    unsetenv("ATOMIO_PATH");
    unsetenv("ATOMIO_SUBMITTER");
    t_tmpdir(dir, sizeof(dir));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
    t_make_file(data, 4 * 4096, 1);
    t_make_file(other, 4096, 2);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;
    atomio__caps_cache_clear();
    atomio__sys.open = rec_open;
    atomio__sys.pwritev2 = rec_pwritev2;
    n_data_opens = n_writes_on_efd = n_writes_elsewhere = 0;
    fake_atomic = false;
    efd = -1;
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    if (efd >= 0)
        close(efd);
    efd = -1;
    t_rmtree(dir);
}

static atomio_ctx *
open_ctx(bool store)
{
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = store ? 0 : ATOMIO_CTX_NO_DOUBLEWRITE;
    o.doublewrite_dir = store ? dwdir : NULL;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    o.policy = ATOMIO_POLICY_PREFER_ATOMIC;
    atomio_ctx *c = NULL;
    int r = atomio_ctx_open(&o, &c);
    cr_assert_eq(r, 0, "atomio_ctx_open: %s", atomio_err_name(r));
    return c;
}

static void
assert_fd_alive(int fd)
{
    cr_assert_neq(fcntl(fd, F_GETFD), -1, "the engine's fd was closed");
}

Test(openfd, fd_used_as_is_never_duplicated_never_closed, .init = setup, .fini = teardown)
{
    ctx = open_ctx(true);
    efd = open(data, O_RDWR | O_CLOEXEC);
    cr_assert_geq(efd, 0);
    int n0 = count_fds();
    atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_AUTO, ATOMIO_IO_BUFFERED, 0);
    atomio_file *f = NULL;
    int r = atomio_file_open_fd(ctx, efd, data, &o, &f);
    cr_assert_eq(r, 0, "atomio_file_open_fd: %s", atomio_err_name(r));
    cr_assert_not_null(f);
    cr_assert_eq(count_fds(), n0, "opening took %d more descriptors", count_fds() - n0);
    cr_assert_eq(n_data_opens, 0, "the library opened the data file itself %u times",
                 n_data_opens);
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_DOUBLEWRITE, "%s", fi.reason);
    cr_assert_eq(fi.o_direct, 0);

    unsigned char *pg = atomio_page_alloc(ctx, 4096, 1);
    t_fill(pg, 4096, 50);
    cr_assert_eq(atomio_write(f, 2, pg, 0), 0);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_geq(n_writes_on_efd, 1, "the in-place write did not use the engine's fd");
    cr_assert_eq(n_writes_elsewhere, 0, "a write reached the file through another fd");
    unsigned char *back = atomio_page_alloc(ctx, 4096, 1);
    cr_assert_eq(atomio_read(f, 2, back), 0);
    cr_assert_eq(memcmp(back, pg, 4096), 0);
    cr_assert_eq(count_fds(), n0);

    cr_assert_eq(atomio_file_close(f), 0);
    assert_fd_alive(efd);
    cr_assert_eq(count_fds(), n0);
    /* still the engine's: it can use it and close it */
    unsigned char raw[4096];
    cr_assert_eq(pread(efd, raw, 4096, 2 * 4096), 4096);
    cr_assert_eq(memcmp(raw, pg, 4096), 0);
    atomio_page_free(ctx, pg, 4096, 1);
    atomio_page_free(ctx, back, 4096, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    ctx = NULL;
    assert_fd_alive(efd);
}

Test(openfd, append_and_bad_input_refused, .init = setup, .fini = teardown)
{
    ctx = open_ctx(true);
    struct t_snap before = t_snapshot(data);
    atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_AUTO, ATOMIO_IO_BUFFERED, 0);
    atomio_file *f = (atomio_file *)(uintptr_t)1;

    int afd = open(data, O_RDWR | O_APPEND | O_CLOEXEC);
    cr_assert_geq(afd, 0);
    int n0 = count_fds();
    int r = atomio_file_open_fd(ctx, afd, data, &o, &f);
    cr_assert_eq(r, ATOMIO_E_INVAL, "O_APPEND fd: %s", atomio_err_name(r));
    cr_assert_null(f);
    assert_fd_alive(afd);
    cr_assert_eq(count_fds(), n0);
    close(afd);

    int rfd = open(data, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(atomio_file_open_fd(ctx, rfd, data, &o, &f), ATOMIO_E_INVAL,
                 "read-only fd for a writable file");
    assert_fd_alive(rfd);
    atomio_file_opts ro = o;
    ro.flags = ATOMIO_FILE_RDONLY;
    cr_assert_eq(atomio_file_open_fd(ctx, rfd, data, &ro, &f), 0, "read-only fd, RDONLY file");
    cr_assert_eq(atomio_write(f, 0, data, 0), ATOMIO_E_READ_ONLY);
    cr_assert_eq(atomio_file_close(f), 0);
    assert_fd_alive(rfd);
    close(rfd);

    efd = open(data, O_RDWR | O_CLOEXEC);
    cr_assert_eq(atomio_file_open_fd(ctx, efd, other, &o, &f), ATOMIO_E_INVAL,
                 "path naming another file");
    cr_assert_eq(atomio_file_open_fd(ctx, efd, NULL, &o, &f), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_file_open_fd(ctx, efd, "", &o, &f), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_file_open_fd(NULL, efd, data, &o, &f), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_file_open_fd(ctx, efd, data, NULL, &f), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_file_open_fd(ctx, efd, data, &o, NULL), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_file_open_fd(ctx, -1, data, &o, &f), ATOMIO_E_INVAL);
    atomio_file_opts cr = o;
    cr.flags = ATOMIO_FILE_CREATE;
    cr_assert_eq(atomio_file_open_fd(ctx, efd, data, &cr, &f), ATOMIO_E_INVAL, "CREATE");
    atomio_file_opts bad = o;
    bad.page_size = 3000;
    cr_assert_eq(atomio_file_open_fd(ctx, efd, data, &bad, &f), ATOMIO_E_PAGE_SIZE);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_eq(atomio_file_open_fd(ctx, dfd, dir, &ro, &f), ATOMIO_E_INVAL, "a directory");
    close(dfd);
    int closed = dup(efd);
    close(closed);
    cr_assert_eq(atomio_file_open_fd(ctx, closed, data, &o, &f), -EBADF, "a closed fd");
    assert_fd_alive(efd);
    cr_assert_null(f);
    cr_assert_eq(n_writes_on_efd + n_writes_elsewhere, 0);
    t_assert_unchanged(data, before, "refused adoptions");
}

Test(openfd, buffered_fd_cannot_do_direct_atomic, .init = setup, .fini = teardown)
{
    atomio__sys.statx = t_statx_sw_atomic;
    ctx = open_ctx(true);
    efd = open(data, O_RDWR | O_CLOEXEC);
    atomio_file *f = NULL;
    /* forced: refused with its reason */
    atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    int r = atomio_file_open_fd(ctx, efd, data, &o, &f);
    cr_assert_eq(r, ATOMIO_E_PATH_UNSUPPORTED, "forced DIRECT_ATOMIC on a buffered fd: %s",
                 atomio_err_name(r));
    cr_assert_null(f);
    assert_fd_alive(efd);
    /* AUTO (PREFER_ATOMIC would take the software atomic write) does not pick it */
    o = t_file_opts(4096, ATOMIO_PATH_AUTO, ATOMIO_IO_ANY, 0);
    r = atomio_file_open_fd(ctx, efd, data, &o, &f);
    cr_assert_eq(r, 0, "AUTO on a buffered fd: %s", atomio_err_name(r));
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_DOUBLEWRITE, "AUTO picked %s", atomio_path_name(fi.path));
    cr_assert(strstr(fi.reject_direct, "O_DIRECT"), "reason: %s", fi.reject_direct);
    cr_assert_eq(fi.direct_atomic, ATOMIO_ATOMIC_SOFTWARE, "the probe figure was altered");
    cr_assert_eq(n_data_opens, 0);
    cr_assert_eq(atomio_file_close(f), 0);
    assert_fd_alive(efd);
}

Test(openfd, direct_fd_takes_direct_atomic, .init = setup, .fini = teardown)
{
    atomio__sys.statx = t_statx_sw_atomic;
    ctx = open_ctx(false);
    efd = open(data, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (efd < 0)
        cr_skip_test("skipped: $TMPDIR refuses O_DIRECT (%s)", strerror(errno));
    fake_atomic = true; /* $TMPDIR's filesystem has no RWF_ATOMIC */
    int n0 = count_fds();
    atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    atomio_file *f = NULL;
    int r = atomio_file_open_fd(ctx, efd, data, &o, &f);
    cr_assert_eq(r, 0, "forced DIRECT_ATOMIC on an O_DIRECT fd: %s", atomio_err_name(r));
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_DIRECT_ATOMIC);
    cr_assert_eq(fi.o_direct, 1);
    /* the opposite refusal: buffered atomic needs a page-cache fd */
    atomio_file *g = NULL;
    atomio_file_opts ob = t_file_opts(4096, ATOMIO_PATH_BUFFERED_ATOMIC, ATOMIO_IO_BUFFERED, 0);
    cr_assert_eq(atomio_file_open_fd(ctx, efd, data, &ob, &g), ATOMIO_E_PATH_UNSUPPORTED);
    unsigned char *pg = atomio_page_alloc(ctx, 4096, 1);
    t_fill(pg, 4096, 60);
    cr_assert_eq(atomio_write(f, 1, pg, 0), 0);
    cr_assert_eq(n_writes_on_efd, 1);
    cr_assert_eq(n_writes_elsewhere, 0);
    cr_assert_eq(n_data_opens, 0);
    cr_assert_eq(count_fds(), n0);
    atomio_page_free(ctx, pg, 4096, 1);
    cr_assert_eq(atomio_file_close(f), 0);
    assert_fd_alive(efd);
}
