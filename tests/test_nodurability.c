/* SPDX-License-Identifier: MIT */
/*
 * test_nodurability.c -- no-durability mode for bulk loads (ATOMIO_CTX_NO_DURABILITY,
 * atomio_ctx_set_durability()): while it is on, pages of every path go straight in place as
 * plain writes (no store, no RWF_ATOMIC, no RWF_DSYNC), atomio_sync()/atomio_ctx_sync() skip
 * fdatasync and torn_write_safe reads 0 with a reason; switching durability back on
 * fdatasyncs every open file before it returns and reports that sync's error.
 *
 * Runs without root in $TMPDIR: a doublewrite store in a scratch directory, writes and syncs
 * observed at the syscall seam (pwritev2 submitter).
 */
#include "t_core.h"
#include "t_seam.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[PATH_MAX];
static char dwdir[PATH_MAX + 8];
static char data[PATH_MAX + 8];
static atomio_ctx *ctx;
static unsigned char *buf;
static dev_t data_dev;
static ino_t data_ino;

static _Atomic unsigned n_data_writes, n_other_writes, n_flagged, n_data_syncs, n_syncs;
static int inject_sync; /* -errno for the data file's fdatasync */
static bool fake_atomic; /* strip RWF_ATOMIC on the data file ($TMPDIR has none) */

static bool
is_data(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino;
}

static ssize_t
rec_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if (is_data(fd)) {
        n_data_writes++;
        if (flags & (RWF_ATOMIC | RWF_DSYNC | RWF_SYNC | RWF_APPEND))
            n_flagged++;
        if (fake_atomic)
            flags &= ~RWF_ATOMIC;
    } else {
        n_other_writes++;
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static int
rec_fdatasync(int fd)
{
    n_syncs++;
    if (is_data(fd)) {
        n_data_syncs++;
        if (inject_sync)
            return inject_sync;
    }
    return atomio__sys_real.fdatasync(fd);
}

static void
reset_counts(void)
{
    n_data_writes = n_other_writes = n_flagged = n_data_syncs = n_syncs = 0;
}

static void
setup(void)
{
    unsetenv("ATOMIO_PATH");
    unsetenv("ATOMIO_SUBMITTER");
    t_tmpdir(dir, sizeof(dir));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
    t_make_file(data, 0, 0);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;
    atomio__caps_cache_clear();
    inject_sync = 0;
    fake_atomic = false;
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    if (buf)
        free(buf);
    buf = NULL;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    t_rmtree(dir);
}

static atomio_ctx *
open_ctx(uint32_t flags)
{
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = flags;
    o.doublewrite_dir = dwdir;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    atomio_ctx *c = NULL;
    int r = atomio_ctx_open(&o, &c);
    cr_assert_eq(r, 0, "atomio_ctx_open(flags %#x): %s", flags, atomio_err_name(r));
    return c;
}

static atomio_file *
open_data(uint32_t ps, uint32_t which, uint32_t style)
{
    atomio_file_opts o = t_file_opts(ps, which, style, 0);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &o, &f);
    cr_assert_eq(r, 0, "open %s: %s", atomio_path_name(which), atomio_err_name(r));
    return f;
}

/* heap pages, deliberately not from atomio_page_alloc(): offset by 8 bytes */
static unsigned char *
heap_pages(uint32_t ps, unsigned n, uint64_t seed)
{
    buf = malloc((size_t)ps * n + 16);
    cr_assert_not_null(buf);
    unsigned char *p = buf + 8;
    for (unsigned i = 0; i < n; i++)
        t_fill(p + (size_t)i * ps, ps, seed + i);
    return p;
}

static void
assert_on_disk(uint32_t ps, uint64_t page_no, const unsigned char *want)
{
    unsigned char *raw = malloc(ps);
    t_pread_file(data, raw, ps, (off_t)(page_no * ps));
    cr_assert_eq(memcmp(raw, want, ps), 0, "page %llu on disk differs",
                 (unsigned long long)page_no);
    free(raw);
}

Test(nodur, doublewrite_file_bypasses_store_until_switched_on, .init = setup, .fini = teardown)
{
    const uint32_t ps = 8192;
    ctx = open_ctx(ATOMIO_CTX_NO_DURABILITY);
    atomio_file *f = open_data(ps, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED);
    atomio__sys.pwritev2 = rec_pwritev2;
    atomio__sys.fdatasync = rec_fdatasync;
    reset_counts();

    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_DOUBLEWRITE, "the path that resumes stays visible");
    cr_assert_eq(fi.torn_write_safe, 0, "no-durability mode reported torn-write safe");
    cr_assert(strstr(fi.reason, "no-durability"), "reason does not say why: %s", fi.reason);

    unsigned char *pg = heap_pages(ps, 4, 100);
    cr_assert_eq(atomio_write(f, 0, pg, 0), 0);
    cr_assert_eq(atomio_write(f, 1, pg + ps, ATOMIO_WRITE_DSYNC), 0);
    atomio_page_write w[2] = {{f, 2, pg + 2 * ps, 0, 0}, {f, 3, pg + 3 * ps, 0, 0}};
    cr_assert_eq(atomio_write_batch(ctx, w, 2, ATOMIO_WRITE_STABLE_PAGES), 2);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(atomio_ctx_sync(ctx), 0);

    cr_assert_eq(n_data_writes, 4, "%u in-place writes for 4 pages", n_data_writes);
    cr_assert_eq(n_other_writes, 0, "the store was written %u times", n_other_writes);
    cr_assert_eq(n_flagged, 0, "a plain write carried RWF_ATOMIC/RWF_DSYNC");
    cr_assert_eq(n_syncs, 0, "%u fdatasync calls in no-durability mode", n_syncs);
    atomio_stats st = t_fstats(f);
    cr_assert_eq(st.bytes_doublewrite, 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_DOUBLEWRITE], 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_UNSAFE], 4, "unprotected pages are counted as UNSAFE");
    cr_assert_eq(st.syncs, 0);
    for (unsigned i = 0; i < 4; i++)
        assert_on_disk(ps, i, pg + (size_t)i * ps);

    /* back on: every open file is made durable before the call returns */
    int r = atomio_ctx_set_durability(ctx, 1);
    cr_assert_eq(r, 0, "switching durability on: %s", atomio_err_name(r));
    cr_assert_geq(n_data_syncs, 1, "the data file was not synced when durability came back");
    fi = t_info(f);
    cr_assert_eq(fi.torn_write_safe, 1);
    cr_assert_null(strstr(fi.reason, "no-durability"), "stale reason: %s", fi.reason);

    /* protected again: the next page goes through the store */
    reset_counts();
    cr_assert_eq(atomio_write(f, 0, pg + ps, 0), 0);
    cr_assert_geq(n_other_writes, 1, "the store was bypassed with durability on");
    st = t_fstats(f);
    cr_assert_eq(st.pages[ATOMIO_PATH_DOUBLEWRITE], 1);
    cr_assert_gt(st.bytes_doublewrite, 0);
    cr_assert_geq(n_syncs, 1);

    /* off again at run time */
    cr_assert_eq(atomio_ctx_set_durability(ctx, 0), 0);
    reset_counts();
    cr_assert_eq(atomio_write(f, 5, pg, 0), 0);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(n_other_writes, 0);
    cr_assert_eq(n_syncs, 0);
    cr_assert_eq(t_info(f).torn_write_safe, 0);
    cr_assert_eq(atomio_ctx_set_durability(ctx, 1), 0);
}

Test(nodur, direct_atomic_file_writes_plain, .init = setup, .fini = teardown)
{
    const uint32_t ps = 16384;
    atomio__sys.statx = t_statx_sw_atomic;
    ctx = open_ctx(0);
    atomio_file_opts o = t_file_opts(ps, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, ATOMIO_FILE_DSYNC);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &o, &f);
    if (r == -EINVAL)
        cr_skip_test("skipped: $TMPDIR refuses O_DIRECT");
    cr_assert_eq(r, 0, "forced DIRECT_ATOMIC: %s", atomio_err_name(r));
    atomio__sys.pwritev2 = rec_pwritev2;
    atomio__sys.fdatasync = rec_fdatasync;
    fake_atomic = true;
    unsigned char *pg = heap_pages(ps, 2, 200);
    reset_counts();
    cr_assert_eq(atomio_write(f, 0, pg, 0), 0);
    cr_assert_eq(n_flagged, 1, "protected write without RWF_ATOMIC|RWF_DSYNC");

    cr_assert_eq(atomio_ctx_set_durability(ctx, 0), 0);
    cr_assert_eq(t_info(f).torn_write_safe, 0);
    reset_counts();
    cr_assert_eq(atomio_write(f, 1, pg + ps, ATOMIO_WRITE_DSYNC), 0);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(n_data_writes, 1);
    cr_assert_eq(n_flagged, 0, "RWF_ATOMIC or RWF_DSYNC in no-durability mode");
    cr_assert_eq(n_syncs, 0);
    assert_on_disk(ps, 1, pg + ps);
    cr_assert_eq(atomio_ctx_set_durability(ctx, 1), 0);
    cr_assert_eq(n_data_syncs, 1);
    cr_assert_eq(t_info(f).torn_write_safe, 1);
}

Test(nodur, switch_on_reports_sync_error, .init = setup, .fini = teardown)
{
    const uint32_t ps = 4096;
    ctx = open_ctx(ATOMIO_CTX_NO_DURABILITY);
    atomio_file *f = open_data(ps, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED);
    atomio__sys.fdatasync = rec_fdatasync;
    unsigned char *pg = heap_pages(ps, 1, 300);
    cr_assert_eq(atomio_write(f, 0, pg, 0), 0);
    inject_sync = -EIO;
    int r = atomio_ctx_set_durability(ctx, 1);
    cr_assert_eq(r, -EIO, "switching on over a failing fdatasync: %s", atomio_err_name(r));
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_FAILED, "a failed sync must fail the file");
    /* durability is on anyway: the sync is real (and sticky) from here */
    cr_assert_eq(atomio_sync(f), ATOMIO_E_FAILED);
    cr_assert_eq(atomio_ctx_set_durability(ctx, 1), 0, "already on: nothing to do");
}

Test(nodur, bad_input, .init = setup, .fini = teardown)
{
    ctx = open_ctx(0);
    cr_assert_eq(atomio_ctx_set_durability(NULL, 0), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_ctx_set_durability(ctx, 2), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_ctx_set_durability(ctx, -1), ATOMIO_E_INVAL);
    atomio_file *f = open_data(4096, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED);
    cr_assert_eq(t_info(f).torn_write_safe, 1, "a refused switch changed the mode");
}

/* Writers keep going while the mode flips: every write succeeds, and once durability is back
 * on every page any writer wrote is on disk. */
#define WRITERS 3
#define ROUNDS 200
static atomio_file *shared_f;

static void *
writer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    unsigned char *pg = atomio_page_alloc(ctx, 4096, 1);
    for (unsigned k = 0; k < ROUNDS; k++) {
        t_fill(pg, 4096, id * 1000 + k);
        int r = atomio_write(shared_f, id, pg, 0);
        if (r != 0)
            return (void *)(intptr_t)r;
    }
    atomio_page_free(ctx, pg, 4096, 1);
    return NULL;
}

Test(nodur, switching_while_writing, .init = setup, .fini = teardown)
{
    ctx = open_ctx(0);
    shared_f = open_data(4096, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED);
    pthread_t t[WRITERS];
    for (uintptr_t i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, writer, (void *)i), 0);
    for (int k = 0; k < 40; k++)
        cr_assert_eq(atomio_ctx_set_durability(ctx, k % 2), 0);
    cr_assert_eq(atomio_ctx_set_durability(ctx, 1), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *res;
        pthread_join(t[i], &res);
        cr_assert_null(res, "writer %d: %s", i, atomio_err_name((int)(intptr_t)res));
    }
    unsigned char *want = malloc(4096);
    for (unsigned i = 0; i < WRITERS; i++) {
        t_fill(want, 4096, i * 1000 + ROUNDS - 1);
        assert_on_disk(4096, i, want);
    }
    free(want);
    cr_assert_eq(t_info(shared_f).torn_write_safe, 1);
}
