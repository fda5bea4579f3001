/* SPDX-License-Identifier: MIT */
/*
 * test_bounce.c -- page buffers that are not aligned for O_DIRECT (PostgreSQL's shared
 * buffers are not 4 KiB aligned) are copied through an aligned bounce buffer on the O_DIRECT
 * paths, for writes and reads; with ATOMIO_FILE_NO_COPY they are refused
 * (ATOMIO_E_UNALIGNED) and nothing is written; the engine's own ring cannot bounce (nobody
 * would free the copy) and keeps the refusal. Real O_DIRECT on loop-mounted XFS reflink=1
 * (DIRECT_ATOMIC, RWF_ATOMIC for real) and tmpfs (UNSAFE, O_DIRECT since Linux 6.6); root,
 * skipped with a printed reason otherwise.
 */
#include "t_core.h"

#include <atomio.h>
#include <atomio_uring.h>
#include <criterion/criterion.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct t_fs fs;
static atomio_ctx *ctx;
static dev_t data_dev;
static ino_t data_ino;

#define MAX_REC 32
static struct rec {
    uintptr_t base;
    uint64_t off;
    int flags;
} recs[MAX_REC];
static unsigned n_recs;

static ssize_t
rec_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino) {
        if (n_recs < MAX_REC)
            recs[n_recs] = (struct rec){(uintptr_t)iov[0].iov_base, off, flags};
        n_recs++;
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static void
fini(void)
{
    atomio__sys = atomio__sys_real;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    t_fs_umount(&fs);
}

static atomio_file *
open_on(const char *p, uint32_t ps, uint32_t which, uint32_t flags)
{
    atomio_file_opts o = t_file_opts(ps, which, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE | flags);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, p, &o, &f);
    cr_assert_eq(r, 0, "open %s on %s: %s", atomio_path_name(which), fs.kind, atomio_err_name(r));
    cr_assert_eq(t_info(f).o_direct, 1);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;
    return f;
}

static uint64_t
bounces(const atomio_file *f)
{
    return atomic_load(&f->stats.bounce_copies);
}

/* Write pages from heap memory at +8, +512 and +2048 and read them back into unaligned memory:
 * every write leaves from an aligned copy, the caller's bytes land, each copy is counted. */
static void
check_bounced_roundtrip(atomio_file *f, const char *p, uint32_t ps, int want_flag)
{
    static const size_t skew[] = {8, 512, 2048};
    unsigned char *heap = malloc(5 * (size_t)ps + 4096);
    cr_assert_not_null(heap);
    /* a 4 KiB-aligned base, so each skew is exactly what the page is off by */
    unsigned char *base = (unsigned char *)(((uintptr_t)heap + 4095) & ~(uintptr_t)4095);
    atomio__sys.pwritev2 = rec_pwritev2;
    n_recs = 0;
    for (unsigned i = 0; i < 3; i++) {
        unsigned char *pg = base + i * (size_t)ps + skew[i];
        t_fill(pg, ps, 300 + i);
        int r = atomio_write(f, i, pg, i == 2 ? ATOMIO_WRITE_DSYNC : 0);
        cr_assert_eq(r, 0, "write from buffer +%zu: %s", skew[i], atomio_err_name(r));
        cr_assert_eq(n_recs, i + 1);
        cr_assert_eq(recs[i].base % 4096, 0, "write %u left from an unaligned buffer", i);
        cr_assert_neq(recs[i].base, (uintptr_t)pg, "write %u used the caller's buffer", i);
        cr_assert_eq(recs[i].flags & RWF_ATOMIC, want_flag);
    }
    /* a batch mixing an aligned and an unaligned page: only the unaligned one is copied */
    unsigned char *al = atomio_page_alloc(ctx, ps, 1);
    t_fill(al, ps, 310);
    unsigned char *un = base + 3 * (size_t)ps + 24;
    t_fill(un, ps, 311);
    uint64_t b0 = bounces(f);
    atomio_page_write w[2] = {{f, 3, al, 0, 0}, {f, 4, un, 0, 0}};
    cr_assert_eq(atomio_write_batch(ctx, w, 2, 0), 2);
    cr_assert_eq(w[0].result, 0);
    cr_assert_eq(w[1].result, 0);
    cr_assert_eq(bounces(f) - b0, 1, "an aligned page was copied too");
    cr_assert_eq(recs[3].base, (uintptr_t)al, "the aligned page was not written as it is");
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(t_fstats(f).short_writes, 0);

    unsigned char *raw = malloc(ps);
    unsigned char *want = malloc(ps);
    unsigned char *rd = base + 8; /* unaligned read target */
    for (unsigned i = 0; i < 5; i++) {
        t_fill(want, ps, 300 + (i < 3 ? i : 7 + i));
        t_pread_file(p, raw, ps, (off_t)i * ps);
        cr_assert_eq(memcmp(raw, want, ps), 0, "page %u on disk differs", i);
        memset(rd, 0xee, ps);
        int r = atomio_read(f, i, rd);
        cr_assert_eq(r, 0, "read into buffer +8: %s", atomio_err_name(r));
        cr_assert_eq(memcmp(rd, want, ps), 0, "page %u read back differs", i);
    }
    cr_assert_eq(bounces(f), 4 + 5, "copies counted: %llu", (unsigned long long)bounces(f));
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(atomic_load(&ctx->stats.bounce_copies), 9);
    atomio_page_free(ctx, al, ps, 1);
    free(raw);
    free(want);
    free(heap);
}

/* With ATOMIO_FILE_NO_COPY the same buffers are refused, as is the engine's ring's prep. */
static void
check_no_copy_refused(atomio_file *f, const char *p, uint32_t ps)
{
    unsigned char *heap = malloc(2 * (size_t)ps + 4096);
    unsigned char *pg = (unsigned char *)(((uintptr_t)heap + 4095) & ~(uintptr_t)4095) + 8;
    t_fill(pg, ps, 400);
    struct t_snap before = t_snapshot(p);
    atomio__sys.pwritev2 = rec_pwritev2;
    n_recs = 0;
    int r = atomio_write(f, 0, pg, 0);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "NO_COPY, buffer +8: %s", atomio_err_name(r));
    atomio_page_write w = {f, 1, pg, 0, 0};
    cr_assert_eq(atomio_write_batch(ctx, &w, 1, 0), 0);
    cr_assert_eq(w.result, ATOMIO_E_UNALIGNED);
    cr_assert_eq(atomio_read(f, 0, pg), ATOMIO_E_UNALIGNED, "NO_COPY read into +8");
    cr_assert_eq(n_recs, 0);
    t_assert_unchanged(p, before, "NO_COPY refusals");
    cr_assert_eq(bounces(f), 0);
    free(heap);
}

Test(bounce, xfs_direct_atomic_unaligned_pages, .fini = fini)
{
    t_fs_mount(&fs, "xfs", 512);
    ctx = t_ctx_open(NULL);
    const uint32_t ps = 16384;
    const char *p = t_join(fs.dir, "data");
    atomio_file *f = open_on(p, ps, ATOMIO_PATH_DIRECT_ATOMIC, 0);
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DIRECT_ATOMIC);
    check_bounced_roundtrip(f, p, ps, RWF_ATOMIC);

    /* bring-your-own-ring: no bounce, the refusal stays */
    unsigned char *heap = malloc(ps + 4096);
    unsigned char *base = (unsigned char *)(((uintptr_t)heap + 4095) & ~(uintptr_t)4095);
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    int r = atomio_prep_write(f, &sqe, 0, base + 8, 0);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "engine ring, unaligned page: %s", atomio_err_name(r));
    cr_assert_eq(sqe.opcode, IORING_OP_NOP);
    free(heap);

    /* the same buffers on a file opened ATOMIO_FILE_NO_COPY: refused, nothing written */
    const char *q = t_join(fs.dir, "nocopy");
    t_make_file(q, 4 * ps, 5);
    atomio_file *g = open_on(q, ps, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_FILE_NO_COPY);
    check_no_copy_refused(g, q, ps);
}

Test(bounce, tmpfs_unsafe_direct_unaligned_pages, .fini = fini)
{
    t_fs_mount(&fs, "tmpfs", 64);
    ctx = t_ctx_open(NULL);
    const uint32_t ps = 8192;
    const char *p = t_join(fs.dir, "data");
    int fd = open(p, O_CREAT | O_RDWR | O_DIRECT, 0600);
    if (fd < 0)
        cr_skip_test("skipped: this tmpfs refuses O_DIRECT (%s; Linux 6.6+ accepts it)",
                     strerror(errno));
    close(fd);
    atomio_file *f = open_on(p, ps, ATOMIO_PATH_UNSAFE, 0);
    check_bounced_roundtrip(f, p, ps, 0);
}
