/* SPDX-License-Identifier: MIT */
/*
 * test_buffered_fs.c -- buffered RWF_ATOMIC on this machine's real kernel, on loop-mounted XFS
 * (4 KiB and 16 KiB blocks), ext4 and tmpfs: atomio_probe() runs the O_TMPFILE probe write,
 * gets the kernel's EOPNOTSUPP, and says so in the buffered reason (or names the folio orders
 * that disagree); forcing the path fails with the matching code; a buffered engine is never
 * moved to O_DIRECT. Needs root (skips with a printed reason otherwise). On a kernel that
 * accepts buffered atomics (declared by setting ATOMIO_TEST_BUFFERED_DIR) the refusal tests
 * skip, and test_buffered_real.c runs instead.
 */
#include "helpers.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
skip_if_kernel_accepts(void)
{
    const char *d = getenv("ATOMIO_TEST_BUFFERED_DIR");
    if (d && *d)
        cr_skip_test("skipped: ATOMIO_TEST_BUFFERED_DIR=%s declares a kernel that accepts "
                     "buffered RWF_ATOMIC; the refusal tests are for kernels that do not",
                     d);
}

static const char *
make_file(const struct t_fs *fs)
{
    unsetenv("ATOMIO_PATH"); /* these tests assert AUTO's and the forced paths' outcomes */
    const char *p = t_join(fs->dir, "data");
    int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "create %s: %s", p, strerror(errno));
    close(fd);
    return p;
}

/*
 * expect_refused() -- probe `page` on the file and check the buffered verdict: refused, the
 * probe write really ran, and the reason carries the kernel's errno (EOPNOTSUPP when the
 * shape is a valid folio) or the orders that disagree.
 */
static void
expect_refused(const struct t_fs *fs, const char *file, uint32_t page, bool folio_ok)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    int r = atomio_probe(file, page, &c);
    cr_assert_eq(r, 0, "atomio_probe(%s, %u): %s", fs->kind, page, atomio_err_name(r));
    cr_log_info("%s page %u: buffered: %s", fs->kind, page, c.reason_buffered);
    cr_log_info("%s page %u: AUTO (io style ANY): %s: %s", fs->kind, page,
                atomio_path_name(c.auto_path), c.reason_auto);
    cr_assert(c.valid & ATOMIO_CAPS_BUFFERED, "%s: probe write did not run: %s", fs->kind,
              c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 0, "%s page %u: a mainline kernel accepted it?", fs->kind,
                 page);
    cr_assert_neq(c.auto_path, ATOMIO_PATH_BUFFERED_ATOMIC);
    cr_assert_eq(c.folio_ok, folio_ok, "%s page %u folio rule: %s", fs->kind, page,
                 c.reason_buffered);
    if (folio_ok) {
        cr_assert_eq(c.buffered_probe_err, -EOPNOTSUPP, "%s page %u: probe write gave %s", fs->kind,
                     page, atomio_err_name(c.buffered_probe_err));
        cr_assert(
            strstr(c.reason_buffered, "kernel refused") && strstr(c.reason_buffered, "EOPNOTSUPP"),
            "%s: reason does not carry the kernel's EOPNOTSUPP: %s", fs->kind, c.reason_buffered);
    } else {
        char orders[96];
        snprintf(orders, sizeof(orders), "page %u = order %u, fs block %u = min order %u", page,
                 c.page_order, c.fs_block_size, c.fs_min_order);
        cr_assert(strstr(c.reason_buffered, orders), "%s: reason lacks '%s': %s", fs->kind, orders,
                  c.reason_buffered);
        cr_assert(strstr(c.reason_buffered, atomio_err_name(c.buffered_probe_err)),
                  "%s: reason lacks the probe errno: %s", fs->kind, c.reason_buffered);
        cr_assert(c.buffered_probe_err == -EOPNOTSUPP || c.buffered_probe_err == -EINVAL,
                  "%s: probe write gave %s", fs->kind, atomio_err_name(c.buffered_probe_err));
    }

    /* Forcing the path fails with the code that matches the reason. */
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    atomio_ctx *ctx = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.page_size = page;
    fo.io_style = ATOMIO_IO_BUFFERED;
    fo.path = ATOMIO_PATH_BUFFERED_ATOMIC;
    atomio_file *f = NULL;
    r = atomio_file_open(ctx, file, &fo, &f);
    cr_assert_eq(r, folio_ok ? ATOMIO_E_PATH_UNSUPPORTED : ATOMIO_E_FOLIO_ORDER,
                 "%s page %u forced: %s", fs->kind, page, atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_fs, xfs_4k_refuses)
{
    skip_if_kernel_accepts();
    struct t_fs fs;
    t_fs_mount(&fs, "xfs", 320);
    const char *file = make_file(&fs);
    expect_refused(&fs, file, 4096, true);
    expect_refused(&fs, file, 16384, false);
    t_fs_umount(&fs);
}

Test(buffered_fs, xfs_16k_blocks_refuses)
{
    skip_if_kernel_accepts();
    struct t_fs fs;
    t_fs_mount(&fs, "xfs-16k", 320);
    const char *file = make_file(&fs);
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(file, 16384, &c), 0);
    cr_assert_eq(c.fs_block_size, 16384, "fs block %u", c.fs_block_size);
    cr_assert_eq(c.fs_min_order, 2);
    expect_refused(&fs, file, 16384, true);
    expect_refused(&fs, file, 4096, false);
    t_fs_umount(&fs);
}

Test(buffered_fs, ext4_refuses)
{
    skip_if_kernel_accepts();
    struct t_fs fs;
    t_fs_mount(&fs, "ext4", 64);
    expect_refused(&fs, make_file(&fs), 4096, true);
    t_fs_umount(&fs);
}

Test(buffered_fs, tmpfs_refuses)
{
    skip_if_kernel_accepts();
    struct t_fs fs;
    t_fs_mount(&fs, "tmpfs", 64);
    expect_refused(&fs, make_file(&fs), 4096, true);
    t_fs_umount(&fs);
}

/*
 * On XFS reflink=1 O_DIRECT atomics work (software), so this is where a careless selection
 * would move a buffered engine to O_DIRECT. It must not: without buffered atomics and without
 * a store there is no torn-safe path for it at all, even with PREFER_ATOMIC. An ANY engine
 * with PREFER_ATOMIC takes DIRECT_ATOMIC on an O_DIRECT fd. Non-atomic paths (DOUBLEWRITE's
 * in-place writes follow the same rule as UNSAFE here) keep the page cache for BUFFERED.
 */
Test(buffered_fs, buffered_engine_never_gets_o_direct)
{
    struct t_fs fs;
    t_fs_mount(&fs, "xfs", 320);
    const char *file = make_file(&fs);
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.policy = ATOMIO_POLICY_PREFER_ATOMIC;
    atomio_ctx *ctx = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);

    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.page_size = 4096;
    fo.io_style = ATOMIO_IO_BUFFERED;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, file, &fo, &f);
    cr_assert_eq(r, ATOMIO_E_NO_DOUBLEWRITE, "buffered engine on xfs: %s", atomio_err_name(r));

    fo.io_style = ATOMIO_IO_ANY;
    r = atomio_file_open(ctx, file, &fo, &f);
    cr_assert_eq(r, 0, "ANY engine on xfs: %s", atomio_err_name(r));
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, ATOMIO_PATH_DIRECT_ATOMIC, "%s", info.reason);
    cr_assert_eq(info.o_direct, 1);
    cr_assert(strstr(info.reject_buffered, "EOPNOTSUPP"), "reject_buffered: %s",
              info.reject_buffered);
    cr_assert_eq(atomio_file_close(f), 0);

    uint32_t styles[] = {ATOMIO_IO_BUFFERED, ATOMIO_IO_ANY, ATOMIO_IO_DIRECT};
    uint32_t want_direct[] = {0, 1, 1};
    for (size_t i = 0; i < 3; i++) {
        fo.io_style = styles[i];
        fo.path = ATOMIO_PATH_UNSAFE;
        r = atomio_file_open(ctx, file, &fo, &f);
        cr_assert_eq(r, 0, "UNSAFE %s: %s", atomio_io_style_name(styles[i]), atomio_err_name(r));
        cr_assert_eq(atomio_file_get_info(f, &info), 0);
        cr_assert_eq(info.o_direct, want_direct[i], "UNSAFE io style %s: o_direct %u",
                     atomio_io_style_name(styles[i]), info.o_direct);
        cr_assert_eq(atomio_file_close(f), 0);
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_fs_umount(&fs);
}

/*
 * dw_roundtrip() -- a BUFFERED engine on a filesystem whose kernel refuses buffered atomics:
 * AUTO gives DOUBLEWRITE on a page-cache fd (never O_DIRECT), the reasons say why, pages
 * round-trip, and survive a ctx reopen (which runs recovery).
 */
static void
dw_roundtrip(const char *kind, unsigned size_mb)
{
    struct t_fs fs;
    t_fs_mount(&fs, kind, size_mb);
    const char *file = make_file(&fs);
    char path[PATH_MAX], dw[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s", file);
    snprintf(dw, sizeof(dw), "%s/dblwr", fs.dir);
    cr_assert_eq(mkdir(dw, 0700), 0);

    enum { N = 24 };
    unsigned char *want = malloc((size_t)N * 4096);
    cr_assert(want);
    for (unsigned i = 0; i < N; i++)
        t_fill(want + (size_t)i * 4096, 4096, 300 + i);

    for (int round = 0; round < 2; round++) {
        atomio_ctx_opts o;
        atomio_ctx_opts_init(&o);
        o.doublewrite_dir = dw;
        o.doublewrite_store_bytes = 4u << 20; /* the test filesystem is small */
        o.policy = ATOMIO_POLICY_PREFER_ATOMIC; /* even so: never O_DIRECT for this engine */
        atomio_ctx *ctx = NULL;
        int r = atomio_ctx_open(&o, &ctx);
        cr_assert_eq(r, 0, "ctx on %s: %s", kind, atomio_err_name(r));
        atomio_file_opts fo;
        atomio_file_opts_init(&fo);
        fo.page_size = 4096;
        fo.io_style = ATOMIO_IO_BUFFERED;
        atomio_file *f = NULL;
        r = atomio_file_open(ctx, path, &fo, &f);
        cr_assert_eq(r, 0, "open on %s: %s", kind, atomio_err_name(r));
        atomio_file_info info = {.size = sizeof(atomio_file_info)};
        cr_assert_eq(atomio_file_get_info(f, &info), 0);
        cr_log_info("%s: BUFFERED engine: %s: %s", kind, atomio_path_name(info.path), info.reason);
        cr_assert_eq(info.path, ATOMIO_PATH_DOUBLEWRITE, "%s: %s", kind, info.reason);
        cr_assert_eq(info.o_direct, 0, "%s: a buffered engine's doublewrite fd is O_DIRECT", kind);
        cr_assert_eq(info.torn_write_safe, 1);
        cr_assert(strstr(info.reject_buffered, "EOPNOTSUPP"), "%s reject_buffered: %s", kind,
                  info.reject_buffered);
        cr_assert(strstr(info.reject_direct, "never switched to O_DIRECT"), "%s reject_direct: %s",
                  kind, info.reject_direct);

        if (round == 0) {
            unsigned char *pool = atomio_page_alloc(ctx, 4096, N);
            cr_assert(pool);
            memcpy(pool, want, (size_t)N * 4096);
            for (unsigned i = 0; i < 4; i++)
                cr_assert_eq(atomio_write(f, i, want + (size_t)i * 4096, 0), 0);
            atomio_page_write w[N];
            for (unsigned i = 4; i < N; i++)
                w[i - 4] =
                    (atomio_page_write){.file = f, .page_no = i, .page = pool + (size_t)i * 4096};
            r = atomio_write_batch(ctx, w, N - 4, 0);
            cr_assert_eq(r, N - 4, "%s batch: %d (%s)", kind, r, atomio_err_name(w[0].result));
            atomio_page_free(ctx, pool, 4096, N);
            atomio_stats st = {.size = sizeof(atomio_stats)};
            cr_assert_eq(atomio_file_get_stats(f, &st), 0);
            cr_assert_eq(st.pages[ATOMIO_PATH_DOUBLEWRITE], N);
            cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
            cr_assert_geq(st.bytes_doublewrite, (uint64_t)N * 4096, "pages went through the store");
        }
        unsigned char *back = atomio_page_alloc(ctx, 4096, 1);
        cr_assert(back);
        for (unsigned i = 0; i < N; i++) {
            cr_assert_eq(atomio_read(f, i, back), 0);
            cr_assert(memcmp(back, want + (size_t)i * 4096, 4096) == 0,
                      "%s round %d: page %u differs", kind, round, i);
        }
        atomio_page_free(ctx, back, 4096, 1);
        cr_assert_eq(atomio_file_close(f), 0);
        cr_assert_eq(atomio_ctx_close(ctx), 0);
    }
    free(want);
    t_fs_umount(&fs);
}

Test(buffered_fs, ext4_buffered_engine_gets_doublewrite_in_the_page_cache)
{
    dw_roundtrip("ext4", 64);
}

Test(buffered_fs, xfs_buffered_engine_gets_doublewrite_in_the_page_cache)
{
    dw_roundtrip("xfs", 320);
}
