/* SPDX-License-Identifier: MIT */
/*
 * test_byor.c -- bring-your-own-ring for atomic and unsafe files: an engine-style io_uring owned
 * by the test submits SQEs filled by atomio_prep_write() among its own unrelated reads and
 * writes; every completion goes through atomio_complete_write(). Results, file contents, stats
 * and the failure model (short write, EOPNOTSUPP/ENOSPC, EINVAL re-probe) must match what
 * atomio_write() does on the same kind of file. Atomic writes need XFS reflink=1 (loop mount).
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "helpers.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef T_HAVE_LIBURING
#include <liburing.h>
#endif

#define PS 4096u

/* ---- fixtures -------------------------------------------------------------------------- */

static atomio_ctx *
ctx_open_nostore(void)
{
    /* Comparisons inject faults through the pwritev2 seam and force paths per file: the
     * environment overrides (ATOMIO_SUBMITTER=uring, ATOMIO_PATH) would bypass both. */
    unsetenv("ATOMIO_SUBMITTER");
    unsetenv("ATOMIO_PATH");
    return t_ctx_open(NULL);
}

static atomio_file *
file_open(atomio_ctx *ctx, const char *path, uint32_t forced, uint32_t io_style, uint32_t flags)
{
    atomio_file_opts o = t_file_opts(PS, forced, io_style, ATOMIO_FILE_CREATE | flags);
    o.policy = ATOMIO_POLICY_PREFER_ATOMIC;
    return t_file_open(ctx, path, &o);
}

/* An SQE full of junk with the engine's user_data set, as a reused ring slot looks. */
static void
junk_sqe(struct io_uring_sqe *sqe, uint64_t user_data)
{
    memset(sqe, 0xab, sizeof(*sqe));
    sqe->user_data = user_data;
}

static void
assert_nop(const struct io_uring_sqe *sqe, uint64_t user_data)
{
    struct io_uring_sqe want;
    memset(&want, 0, sizeof(want));
    want.opcode = IORING_OP_NOP;
    want.user_data = user_data;
    cr_assert(memcmp(sqe, &want, sizeof(want)) == 0, "failed prep must leave a clean NOP");
}

/* Mount XFS reflink=1 and open a DIRECT_ATOMIC file; skip (with the reason) where the kernel
 * has no atomic writes on it. */
static atomio_file *
xfs_direct(struct t_fs *fs, atomio_ctx **ctx, const char *name, uint32_t flags)
{
    t_fs_mount(fs, "xfs", 320);
    *ctx = ctx_open_nostore();
    atomio_caps c = {.size = sizeof(c)};
    int fd = open(t_join(fs->dir, name), O_CREAT | O_RDWR, 0600);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(atomio_probe(t_join(fs->dir, name), PS, &c), 0);
    if (c.direct_atomic == ATOMIO_ATOMIC_NONE)
        cr_skip_test("skipped: no O_DIRECT RWF_ATOMIC on XFS reflink=1 here: %s", c.reason_direct);
    return file_open(*ctx, t_join(fs->dir, name), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT,
                     flags);
}

/* ---- fault injection through the syscall seam (library-driven comparisons) ------------- */

static ssize_t inject_res; /* what an injected RWF_ATOMIC data write returns */
static int inject_left;    /* how many writes to fake; then the real call */

static ssize_t
inject_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if ((flags & RWF_ATOMIC) && inject_left > 0) {
        inject_left--;
        return inject_res;
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

/* A kernel with buffered RWF_ATOMIC for the open-time probe only: strip the flag on a page-cache
 * fd. Lets a file be opened BUFFERED_ATOMIC on kernels that (like 6.18) lack it. */
static ssize_t
buffered_probe_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    int fl = fcntl(fd, F_GETFL);
    if ((flags & RWF_ATOMIC) && fl >= 0 && !(fl & O_DIRECT))
        flags &= ~RWF_ATOMIC;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

/* ---- preparation: fields, checks ------------------------------------------------------- */

Test(byor, prep_fills_direct_atomic_sqe)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "data", 0);
    void *page = atomio_page_alloc(ctx, PS, 1);
    cr_assert_not_null(page);

    struct io_uring_sqe sqe;
    junk_sqe(&sqe, 0x1122334455667788ull);
    cr_assert_eq(atomio_prep_write(f, &sqe, 7, page, 0), 0);
    cr_assert_eq(sqe.opcode, IORING_OP_WRITE, "never WRITE_FIXED, never WRITEV");
    cr_assert_eq(sqe.fd, f->fd);
    cr_assert_eq(sqe.off, 7ull * PS);
    cr_assert_eq(sqe.addr, (uint64_t)(uintptr_t)page, "the engine's buffer, no copy");
    cr_assert_eq(sqe.len, PS);
    cr_assert_eq(sqe.rw_flags, (uint32_t)RWF_ATOMIC);
    cr_assert_eq(sqe.flags, 0);
    cr_assert_eq(sqe.ioprio, 0);
    cr_assert_eq(sqe.buf_index, 0);
    cr_assert_eq(sqe.personality, 0);
    cr_assert_eq(sqe.file_index, 0);
    cr_assert_eq(sqe.user_data, 0x1122334455667788ull, "user_data is the engine's");

    junk_sqe(&sqe, 5);
    cr_assert_eq(atomio_prep_write(f, &sqe, 0, page, ATOMIO_WRITE_DSYNC), 0);
    cr_assert_eq(sqe.rw_flags, (uint32_t)(RWF_ATOMIC | RWF_DSYNC));
    cr_assert_eq(sqe.user_data, 5);

    /* ATOMIO_FILE_DSYNC makes every write durable, as with atomio_write(). */
    atomio_file *g = file_open(ctx, t_join(fs.dir, "dsync"), ATOMIO_PATH_DIRECT_ATOMIC,
                               ATOMIO_IO_DIRECT, ATOMIO_FILE_DSYNC);
    cr_assert_eq(atomio_prep_write(g, &sqe, 1, page, 0), 0);
    cr_assert_eq(sqe.rw_flags, (uint32_t)(RWF_ATOMIC | RWF_DSYNC));

    /* Preparing writes nothing and counts nothing: the engine may still drop the SQE. */
    atomio_stats s = t_fstats(f);
    cr_assert_eq(s.pages[ATOMIO_PATH_DIRECT_ATOMIC], 0);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* Every invalid call: the same code as atomio_write() for the same arguments, SQE left a NOP. */
Test(byor, prep_checks_match_atomio_write)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "data", 0);
    char *page = atomio_page_alloc(ctx, PS, 2);
    cr_assert_not_null(page);
    struct io_uring_sqe sqe;

    cr_assert_eq(atomio_prep_write(f, NULL, 0, page, 0), ATOMIO_E_INVAL);

    struct {
        const char *what;
        atomio_file *f;
        uint64_t page_no;
        const void *page;
        uint32_t flags;
        int want;
    } cases[] = {
        {"NULL file", NULL, 0, page, 0, ATOMIO_E_INVAL},
        {"NULL page", f, 0, NULL, 0, ATOMIO_E_INVAL},
        {"unknown flag", f, 0, page, 0x100, ATOMIO_E_INVAL},
        {"misaligned buffer", f, 0, page + 512, 0, ATOMIO_E_UNALIGNED},
        {"page beyond 63-bit offsets", f, UINT64_MAX / 2, page, 0, ATOMIO_E_RANGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        junk_sqe(&sqe, 40 + i);
        int r =
            atomio_prep_write(cases[i].f, &sqe, cases[i].page_no, cases[i].page, cases[i].flags);
        cr_assert_eq(r, cases[i].want, "%s: %s", cases[i].what, atomio_err_name(r));
        /* except a misaligned page, which atomio_write() copies through a bounce buffer
         * (test_bounce.c) and the engine's ring cannot (nobody would free the copy) */
        if (r != ATOMIO_E_UNALIGNED)
            cr_assert_eq(atomio_write(cases[i].f, cases[i].page_no, cases[i].page,
                                      cases[i].flags),
                         r, "%s: atomio_write() disagrees", cases[i].what);
        assert_nop(&sqe, 40 + i);
    }

    /* Read-only file. */
    atomio_file_opts o = ATOMIO_FILE_OPTS_INIT;
    o.flags = ATOMIO_FILE_RDONLY;
    o.page_size = PS;
    atomio_file *ro = NULL;
    cr_assert_eq(atomio_file_open(ctx, t_join(fs.dir, "data"), &o, &ro), 0);
    junk_sqe(&sqe, 9);
    cr_assert_eq(atomio_prep_write(ro, &sqe, 0, page, 0), ATOMIO_E_READ_ONLY);
    cr_assert_eq(atomio_write(ro, 0, page, 0), ATOMIO_E_READ_ONLY);
    assert_nop(&sqe, 9);

    /* Closed handle (kept in the graveyard, so this is well-defined). */
    cr_assert_eq(atomio_file_close(ro), 0);
    junk_sqe(&sqe, 10);
    cr_assert_eq(atomio_prep_write(ro, &sqe, 0, page, 0), ATOMIO_E_CLOSED);
    assert_nop(&sqe, 10);
    cr_assert_eq(atomio_complete_write(ro, (int)PS, PS), ATOMIO_E_CLOSED);

    /* Nothing of this was written. */
    atomio_stats s = t_fstats(f);
    cr_assert_eq(s.pages[ATOMIO_PATH_DIRECT_ATOMIC] + s.bytes_data, 0);
    struct stat st;
    cr_assert_eq(stat(t_join(fs.dir, "data"), &st), 0);
    cr_assert_eq(st.st_size, 0, "a refused prep wrote nothing");
    atomio_page_free(ctx, page, PS, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- completions fed in by hand -------------------------------------------------------- */

Test(byor, short_completion_fails_file_like_atomio_write)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "byor", 0);
    atomio_file *lib =
        file_open(ctx, t_join(fs.dir, "lib"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    void *page = atomio_page_alloc(ctx, PS, 1);
    struct io_uring_sqe sqe;

    /* BYOR: a CQE that wrote 1024 of 4096 bytes. */
    cr_assert_eq(atomio_prep_write(f, &sqe, 3, page, 0), 0);
    cr_assert_eq(atomio_complete_write(f, 1024, PS), ATOMIO_E_SHORT_WRITE);

    /* Library-driven: the same short result from the kernel. */
    inject_res = 1024;
    inject_left = 1;
    atomio__sys.pwritev2 = inject_pwritev2;
    cr_assert_eq(atomio_write(lib, 3, page, 0), ATOMIO_E_SHORT_WRITE);
    atomio__sys.pwritev2 = atomio__sys_real.pwritev2;

    atomio_file *both[] = {f, lib};
    for (int i = 0; i < 2; i++) {
        atomio_file *x = both[i];
        cr_assert_eq(t_info(x).state, ATOMIO_STATE_FAILED);
        atomio_stats s = t_fstats(x);
        cr_assert_eq(s.short_writes, 1);
        cr_assert_eq(s.pages[ATOMIO_PATH_DIRECT_ATOMIC], 0, "a short page is not counted");
        cr_assert_eq(atomio_write(x, 4, page, 0), ATOMIO_E_FAILED);
        cr_assert_eq(atomio_sync(x), ATOMIO_E_FAILED);
        junk_sqe(&sqe, 1);
        cr_assert_eq(atomio_prep_write(x, &sqe, 4, page, 0), ATOMIO_E_FAILED);
        assert_nop(&sqe, 1);
    }
    atomio_stats cs = {.size = sizeof(cs)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.short_writes, 2);

    /* Zero bytes is short too. */
    atomio_file *z =
        file_open(ctx, t_join(fs.dir, "zero"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    cr_assert_eq(atomio_complete_write(z, 0, PS), ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(t_info(z).state, ATOMIO_STATE_FAILED);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(byor, bogus_completion_judges_nothing)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "data", 0);
    cr_assert_eq(atomio_complete_write(NULL, (int)PS, PS), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_complete_write(f, 512, 512), ATOMIO_E_INVAL, "len is not the page size");
    cr_assert_eq(atomio_complete_write(f, (int)PS * 2, PS), ATOMIO_E_INVAL, "res > len");
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_OK, "a bogus CQE must not fail the file");
    atomio_stats s = t_fstats(f);
    cr_assert_eq(s.short_writes + s.pages[ATOMIO_PATH_DIRECT_ATOMIC], 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* Without a doublewrite store there is nowhere to downgrade to: EOPNOTSUPP and ENOSPC pass
 * through, the path stays, exactly like atomio_write(). */
Test(byor, nospace_and_notsupp_pass_through_without_store)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "byor", 0);
    atomio_file *lib =
        file_open(ctx, t_join(fs.dir, "lib"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    void *page = atomio_page_alloc(ctx, PS, 1);
    int errs[] = {-EOPNOTSUPP, -ENOSPC, -EIO, -EFBIG, -ECANCELED};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        cr_assert_eq(atomio_complete_write(f, errs[i], PS), errs[i], "%s",
                     atomio_err_name(errs[i]));
        inject_res = errs[i];
        inject_left = 1;
        atomio__sys.pwritev2 = inject_pwritev2;
        cr_assert_eq(atomio_write(lib, 0, page, 0), errs[i]);
        atomio__sys.pwritev2 = atomio__sys_real.pwritev2;
    }
    for (atomio_file *x = f;; x = lib) {
        cr_assert_eq(t_info(x).path, ATOMIO_PATH_DIRECT_ATOMIC);
        cr_assert_eq(t_info(x).state, ATOMIO_STATE_OK);
        cr_assert_eq(t_fstats(x).downgrades, 0);
        if (x == lib)
            break;
    }
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* EINVAL: the library re-probes once. The file still takes DIRECT_ATOMIC, so the engine is told
 * to prepare and submit again (-EAGAIN); a second EINVAL is ATOMIO_E_GEOMETRY -- atomio_write()
 * retries once itself and ends the same way. */
Test(byor, einval_reprobe_rule_like_atomio_write)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "byor", 0);
    atomio_file *lib =
        file_open(ctx, t_join(fs.dir, "lib"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    void *page = atomio_page_alloc(ctx, PS, 1);

    cr_assert_eq(atomio_complete_write(f, -EINVAL, PS), -EAGAIN);
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DIRECT_ATOMIC, "re-probe still finds atomic writes");
    cr_assert_eq(atomio_complete_write(f, -EINVAL, PS), ATOMIO_E_GEOMETRY);

    inject_res = -EINVAL;
    inject_left = 2;
    atomio__sys.pwritev2 = inject_pwritev2;
    cr_assert_eq(atomio_write(lib, 0, page, 0), ATOMIO_E_GEOMETRY);
    atomio__sys.pwritev2 = atomio__sys_real.pwritev2;
    cr_assert_eq(inject_left, 0, "atomio_write() retried exactly once");

    /* Neither failed the file: geometry errors are the library's, not a torn page. */
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_OK);
    cr_assert_eq(t_info(lib).state, ATOMIO_STATE_OK);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- UNSAFE and BUFFERED_ATOMIC preparation -------------------------------------------- */

Test(byor, unsafe_preps_plain_write)
{
    char dir[256];
    t_tmpdir(dir, sizeof(dir));
    atomio_ctx *ctx = ctx_open_nostore();
    atomio_file *f = file_open(ctx, t_join(dir, "u"), ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    void *page = atomio_page_alloc(ctx, PS, 1);
    struct io_uring_sqe sqe;
    junk_sqe(&sqe, 77);
    cr_assert_eq(atomio_prep_write(f, &sqe, 2, page, 0), 0);
    cr_assert_eq(sqe.opcode, IORING_OP_WRITE);
    cr_assert_eq(sqe.rw_flags, 0, "UNSAFE: no RWF_ATOMIC");
    cr_assert_eq(sqe.off, 2ull * PS);
    cr_assert_eq(atomio_prep_write(f, &sqe, 2, page, ATOMIO_WRITE_DSYNC), 0);
    cr_assert_eq(sqe.rw_flags, (uint32_t)RWF_DSYNC);

    cr_assert_eq(atomio_complete_write(f, (int)PS, PS), 0);
    cr_assert_eq(t_fstats(f).pages[ATOMIO_PATH_UNSAFE], 1);
    cr_assert_eq(t_fstats(f).bytes_data, PS);
    /* UNSAFE has no downgrade: errors are errors. A short write still fails the file. */
    cr_assert_eq(atomio_complete_write(f, -EOPNOTSUPP, PS), -EOPNOTSUPP);
    cr_assert_eq(atomio_complete_write(f, -EINVAL, PS), -EINVAL);
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_UNSAFE);
    cr_assert_eq(atomio_complete_write(f, 100, PS), ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_FAILED);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(dir);
}

static atomio_file *
open_buffered_atomic(atomio_ctx *ctx, const char *path)
{
    atomio__caps_cache_clear();
    atomio__sys.pwritev2 = buffered_probe_pwritev2;
    atomio_file *f = file_open(ctx, path, ATOMIO_PATH_BUFFERED_ATOMIC, ATOMIO_IO_BUFFERED, 0);
    atomio__sys.pwritev2 = atomio__sys_real.pwritev2;
    atomio__caps_cache_clear();
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_BUFFERED_ATOMIC);
    return f;
}

/* No bounce copy on the engine's ring (nothing would free it): the page must be an
 * atomio_page_alloc() buffer; one that cannot be (misaligned) is ATOMIO_E_NO_COPY. */
Test(byor, buffered_requires_page_alloc_buffers)
{
    struct t_fs fs;
    t_fs_mount(&fs, "xfs", 320);
    atomio_ctx *ctx = ctx_open_nostore();
    atomio_file *f = open_buffered_atomic(ctx, t_join(fs.dir, "b"));
    char *page = atomio_page_alloc(ctx, PS, 2);
    char *heap = malloc(PS + 64);
    struct io_uring_sqe sqe;

    junk_sqe(&sqe, 3);
    const void *bad = ((uintptr_t)heap % PS) ? (const void *)heap : (const void *)(heap + 16);
    cr_assert_eq(atomio_prep_write(f, &sqe, 0, bad, 0), ATOMIO_E_NO_COPY);
    assert_nop(&sqe, 3);
    cr_assert_eq(atomio_prep_write(f, &sqe, 0, page + 512, 0), ATOMIO_E_NO_COPY);

    cr_assert_eq(atomio_prep_write(f, &sqe, 1, page + PS, 0), 0);
    cr_assert_eq(sqe.addr, (uint64_t)(uintptr_t)(page + PS), "no bounce copy");
    cr_assert_eq(sqe.rw_flags, (uint32_t)(RWF_ATOMIC | RWF_DSYNC), "DSYNC is the recipe");
    cr_assert_eq(sqe.off, PS);
    cr_assert_eq(sqe.fd, f->fd);
    free(heap);
    atomio_page_free(ctx, page, PS, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- the engine's own ring ------------------------------------------------------------- */

#ifdef T_HAVE_LIBURING

enum { TAG_ATOMIO = 1, TAG_PLAIN = 2, TAG_READ = 3, TAG_SHIFT = 56 };

static uint64_t
tag(unsigned kind, unsigned i)
{
    return ((uint64_t)kind << TAG_SHIFT) | i;
}

static struct io_uring_sqe *
get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    cr_assert_not_null(sqe, "ring full");
    return sqe;
}

static void
ring_init(struct io_uring *ring, unsigned depth)
{
    int r = io_uring_queue_init(depth, ring, 0);
    if (r == -EPERM || r == -ENOSYS)
        cr_skip_test("skipped: io_uring unavailable (%s)", strerror(-r));
    cr_assert_eq(r, 0, "io_uring_queue_init: %s", strerror(-r));
}

/* Submit what is queued and wait for n completions; res[user_data] collected by tag. */
static void
ring_run(struct io_uring *ring, unsigned n, int *res_atomio, int *res_plain, int *res_read)
{
    int r = io_uring_submit_and_wait(ring, n);
    cr_assert_geq(r, 0, "submit: %s", strerror(-r));
    for (unsigned k = 0; k < n; k++) {
        struct io_uring_cqe *cqe;
        r = io_uring_wait_cqe(ring, &cqe);
        cr_assert_eq(r, 0);
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        unsigned i = (unsigned)(ud & ((1ull << TAG_SHIFT) - 1));
        switch (ud >> TAG_SHIFT) {
        case TAG_ATOMIO:
            res_atomio[i] = cqe->res;
            break;
        case TAG_PLAIN:
            res_plain[i] = cqe->res;
            break;
        case TAG_READ:
            res_read[i] = cqe->res;
            break;
        default:
            cr_assert_fail("unknown user_data %llx", (unsigned long long)ud);
        }
        io_uring_cqe_seen(ring, cqe);
    }
}

#define NPAGES 24

/* The engine submits atomio-prepared page writes among its own reads and plain writes to other
 * files, in one submission; completions arrive in any order. Then the same pages are written
 * library-driven to a second file: same results, same bytes, same counters. */
Test(byor, engine_ring_mixed_with_own_io)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "byor", 0);
    atomio_file *lib =
        file_open(ctx, t_join(fs.dir, "lib"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    char *pages = atomio_page_alloc(ctx, PS, NPAGES);
    char *other = malloc((size_t)NPAGES * 512);
    char *rd = malloc((size_t)NPAGES * 512);
    cr_assert(pages && other && rd);
    for (unsigned i = 0; i < NPAGES; i++) {
        t_fill(pages + (size_t)i * PS, PS, 1000 + i);
        t_fill(other + (size_t)i * 512, 512, 2000 + i);
    }
    /* A file the engine reads, and one it writes plainly (page cache, not atomio's). */
    int rfd = open(t_join(fs.dir, "engine-read"), O_CREAT | O_RDWR, 0600);
    int wfd = open(t_join(fs.dir, "engine-log"), O_CREAT | O_RDWR, 0600);
    cr_assert(rfd >= 0 && wfd >= 0);
    char *rsrc = malloc((size_t)NPAGES * 512);
    t_fill(rsrc, (size_t)NPAGES * 512, 3000);
    cr_assert_eq(pwrite(rfd, rsrc, (size_t)NPAGES * 512, 0), (ssize_t)NPAGES * 512);

    struct io_uring ring;
    ring_init(&ring, 128);
    for (unsigned i = 0; i < NPAGES; i++) {
        uint64_t page_no = (uint64_t)i * 3 + 1; /* scattered, with holes */
        struct io_uring_sqe *sqe = get_sqe(&ring);
        if (i % 2)
            io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, i)); /* set before: must survive */
        cr_assert_eq(atomio_prep_write(f, sqe, page_no, pages + (size_t)i * PS, 0), 0);
        if (!(i % 2))
            io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, i));
        sqe = get_sqe(&ring);
        io_uring_prep_write(sqe, wfd, other + (size_t)i * 512, 512, (uint64_t)i * 512);
        io_uring_sqe_set_data64(sqe, tag(TAG_PLAIN, i));
        sqe = get_sqe(&ring);
        io_uring_prep_read(sqe, rfd, rd + (size_t)i * 512, 512, (uint64_t)i * 512);
        io_uring_sqe_set_data64(sqe, tag(TAG_READ, i));
    }
    int res_a[NPAGES], res_p[NPAGES], res_r[NPAGES];
    memset(res_a, 0x7f, sizeof(res_a));
    ring_run(&ring, 3 * NPAGES, res_a, res_p, res_r);

    for (unsigned i = 0; i < NPAGES; i++) {
        cr_assert_eq(res_p[i], 512);
        cr_assert_eq(res_r[i], 512);
        cr_assert_eq(res_a[i], (int)PS, "page %u: CQE %s", i, strerror(-res_a[i]));
        cr_assert_eq(atomio_complete_write(f, res_a[i], PS), 0);
        cr_assert_eq(atomio_write(lib, (uint64_t)i * 3 + 1, pages + (size_t)i * PS, 0), 0);
    }
    cr_assert(memcmp(rd, rsrc, (size_t)NPAGES * 512) == 0, "the engine's reads are its own");

    char *got = atomio_page_alloc(ctx, PS, 2);
    for (uint64_t p = 0; p < (uint64_t)NPAGES * 3 + 1; p++) {
        cr_assert_eq(atomio_read(f, p, got), 0);
        cr_assert_eq(atomio_read(lib, p, got + PS), 0);
        cr_assert(memcmp(got, got + PS, PS) == 0, "page %llu differs", (unsigned long long)p);
        if (p % 3 == 1)
            cr_assert(memcmp(got, pages + (size_t)(p / 3) * PS, PS) == 0);
    }
    atomio_stats a = t_fstats(f), b = t_fstats(lib);
    cr_assert_eq(a.pages[ATOMIO_PATH_DIRECT_ATOMIC], NPAGES);
    cr_assert_eq(a.pages[ATOMIO_PATH_DIRECT_ATOMIC], b.pages[ATOMIO_PATH_DIRECT_ATOMIC]);
    cr_assert_eq(a.bytes_data, b.bytes_data);
    cr_assert_eq(a.short_writes + a.downgrades + b.short_writes + b.downgrades, 0);

    char *log = malloc((size_t)NPAGES * 512);
    cr_assert_eq(pread(wfd, log, (size_t)NPAGES * 512, 0), (ssize_t)NPAGES * 512);
    cr_assert(memcmp(log, other, (size_t)NPAGES * 512) == 0);

    io_uring_queue_exit(&ring);
    close(rfd);
    close(wfd);
    free(log);
    free(rsrc);
    free(other);
    free(rd);
    atomio_page_free(ctx, got, PS, 2);
    atomio_page_free(ctx, pages, PS, NPAGES);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* A real EINVAL from the kernel through the engine's ring (the SQE's length spoiled, as a
 * geometry bug would): -EAGAIN, then the re-prepared SQE succeeds. */
Test(byor, engine_ring_einval_then_retry)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "data", 0);
    char *page = atomio_page_alloc(ctx, PS, 1);
    t_fill(page, PS, 42);
    struct io_uring ring;
    ring_init(&ring, 8);

    struct io_uring_sqe *sqe = get_sqe(&ring);
    cr_assert_eq(atomio_prep_write(f, sqe, 5, page, 0), 0);
    sqe->len = PS / 2 + 512; /* not a power of two: the kernel refuses the atomic write */
    io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, 0));
    int res[1], none[1];
    ring_run(&ring, 1, res, none, none);
    cr_assert_eq(res[0], -EINVAL);
    cr_assert_eq(atomio_complete_write(f, res[0], PS), -EAGAIN);

    sqe = get_sqe(&ring);
    cr_assert_eq(atomio_prep_write(f, sqe, 5, page, 0), 0);
    io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, 0));
    ring_run(&ring, 1, res, none, none);
    cr_assert_eq(atomio_complete_write(f, res[0], PS), 0);
    char *got = atomio_page_alloc(ctx, PS, 1);
    cr_assert_eq(atomio_read(f, 5, got), 0);
    cr_assert(memcmp(got, page, PS) == 0);
    io_uring_queue_exit(&ring);
    atomio_page_free(ctx, got, PS, 1);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* A real short write through the engine's ring: RLIMIT_FSIZE is lowered after the SQE was
 * prepared (atomio_prep_write() refuses a page crossing the limit it sees), so the kernel
 * writes the part below the limit. The CQE fails the file. The same write through
 * atomio_write() is refused before it is issued: -EFBIG, and that file stays usable. */
Test(byor, engine_ring_real_short_write_fails_file)
{
    struct t_fs fs;
    atomio_ctx *ctx;
    atomio_file *f = xfs_direct(&fs, &ctx, "byor", 0);
    atomio_file *lib =
        file_open(ctx, t_join(fs.dir, "lib"), ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    char *page = atomio_page_alloc(ctx, PS, 1);
    t_fill(page, PS, 7);
    struct io_uring ring;
    ring_init(&ring, 8);

    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 10 * PS + 1024, .rlim_max = RLIM_INFINITY};

    struct io_uring_sqe *sqe = get_sqe(&ring);
    cr_assert_eq(atomio_prep_write(f, sqe, 10, page, 0), 0);
    io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, 0));
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    int res[1], none[1];
    ring_run(&ring, 1, res, none, none);
    int lr = atomio_write(lib, 10, page, 0);
    rl.rlim_cur = RLIM_INFINITY;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);

    if (res[0] == (int)PS || res[0] == -EFBIG || res[0] == -EINVAL)
        cr_skip_test("skipped: this kernel does not cut an atomic write at RLIMIT_FSIZE (%d)",
                     res[0]);
    cr_assert(res[0] >= 0 && res[0] < (int)PS, "CQE %d", res[0]);
    cr_assert_eq(atomio_complete_write(f, res[0], PS), ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(lr, -EFBIG, "atomio_write() across the limit: %s", atomio_err_name(lr));
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_FAILED);
    cr_assert_eq(t_info(lib).state, ATOMIO_STATE_OK);
    cr_assert_eq(t_fstats(f).short_writes, 1);
    cr_assert_eq(t_fstats(lib).short_writes, 0);
    io_uring_queue_exit(&ring);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* BUFFERED_ATOMIC through the ring: the kernel decides (6.18 refuses buffered RWF_ATOMIC with
 * EOPNOTSUPP; no store here, so it passes through), and atomio_write() agrees. */
Test(byor, engine_ring_buffered_same_result_as_library)
{
    struct t_fs fs;
    t_fs_mount(&fs, "xfs", 320);
    atomio_ctx *ctx = ctx_open_nostore();
    atomio_file *f = open_buffered_atomic(ctx, t_join(fs.dir, "b"));
    char *page = atomio_page_alloc(ctx, PS, 1);
    t_fill(page, PS, 9);
    struct io_uring ring;
    ring_init(&ring, 8);
    struct io_uring_sqe *sqe = get_sqe(&ring);
    cr_assert_eq(atomio_prep_write(f, sqe, 0, page, 0), 0);
    io_uring_sqe_set_data64(sqe, tag(TAG_ATOMIO, 0));
    int res[1], none[1];
    ring_run(&ring, 1, res, none, none);
    int byor = atomio_complete_write(f, res[0], PS);
    int lib = atomio_write(f, 0, page, 0);
    cr_assert_eq(byor, lib, "ring: %s, atomio_write: %s", atomio_err_name(byor),
                 atomio_err_name(lib));
    cr_assert(byor == 0 || byor == -EOPNOTSUPP, "%s", atomio_err_name(byor));
    io_uring_queue_exit(&ring);
    atomio_page_free(ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

#else

Test(byor, engine_ring)
{
    cr_skip_test("skipped: tests built without liburing (apt-get install liburing-dev)");
}

#endif
