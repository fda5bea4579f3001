/* SPDX-License-Identifier: MIT */
/*
 * buffered_cases.c -- BUFFERED_ATOMIC bodies shared by the simulated-kernel and the
 * real-kernel suites (see buffered_cases.h).
 */
#include "buffered_cases.h"

#include "helpers.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t bc_submitter = ATOMIO_SUBMIT_AUTO;

atomio_ctx *
bc_ctx(void)
{
    atomio_ctx_opts o = t_ctx_opts(NULL);
    o.submitter = bc_submitter;
    return t_ctx_open(&o);
}

uint32_t
bc_page_for(const char *dir)
{
    long sp = sysconf(_SC_PAGESIZE);
    atomio_caps c = {.size = sizeof(atomio_caps)};
    int r = atomio_probe(dir, (uint32_t)sp, &c);
    cr_assert_eq(r, 0, "atomio_probe(%s): %s", dir, atomio_err_name(r));
    return c.fs_block_size > (uint32_t)sp ? c.fs_block_size : (uint32_t)sp;
}

/* A private subdirectory of dir for one body. */
static void
subdir(const char *dir, char *out, size_t len)
{
    snprintf(out, len, "%s/atomio-buffered-XXXXXX", dir);
    cr_assert(mkdtemp(out) != NULL, "mkdtemp in %s: %s", dir, strerror(errno));
}

static atomio_file *
open_file(atomio_ctx *ctx, const char *path, uint32_t page, uint32_t io_style, uint32_t forced,
          uint32_t flags, int *err)
{
    atomio_file_opts fo = t_file_opts(page, forced, io_style, ATOMIO_FILE_CREATE | flags);
    atomio_file *f = NULL;
    *err = atomio_file_open(ctx, path, &fo, &f);
    return f;
}

void
bc_probe_proves(const char *dir, uint32_t page)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    int r = atomio_probe(dir, page, &c);
    cr_assert_eq(r, 0, "atomio_probe: %s", atomio_err_name(r));
    cr_assert(c.valid & ATOMIO_CAPS_BUFFERED, "the buffered probe write did not run: %s",
              c.reason_buffered);
    cr_assert_eq(c.buffered_probe_err, 0, "probe write failed: %s",
                 atomio_err_name(c.buffered_probe_err));
    cr_assert_eq(c.folio_ok, 1, "folio rule: %s", c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 1, "verdict: %s", c.reason_buffered);
    cr_assert(strstr(c.reason_buffered, "succeeded"), "reason: %s", c.reason_buffered);
    cr_assert_eq(c.auto_path, ATOMIO_PATH_BUFFERED_ATOMIC, "AUTO (io style ANY) took %s: %s",
                 atomio_path_name(c.auto_path), c.reason_auto);
}

void
bc_auto_picks_buffered(const char *dir, uint32_t page, uint32_t io_style)
{
    char d[PATH_MAX];
    subdir(dir, d, sizeof(d));
    atomio_ctx *ctx = bc_ctx();
    int r;
    atomio_file *f = open_file(ctx, t_join(d, "data"), page, io_style, ATOMIO_PATH_AUTO, 0, &r);
    cr_assert_eq(r, 0, "open (io style %s): %s", atomio_io_style_name(io_style),
                 atomio_err_name(r));
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, ATOMIO_PATH_BUFFERED_ATOMIC, "io style %s got %s: %s",
                 atomio_io_style_name(io_style), atomio_path_name(info.path), info.reason);
    cr_assert_eq(info.o_direct, 0, "BUFFERED_ATOMIC must use a page-cache fd");
    cr_assert_eq(info.torn_write_safe, 1);
    cr_assert_eq(info.reject_buffered[0], '\0', "chosen path keeps a reject reason: %s",
                 info.reject_buffered);
    cr_assert(strstr(info.reason, "succeeded"), "reason: %s", info.reason);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(d);
}

/* Compare page_no of the file at path (read through a fresh, independent fd). */
static void
expect_on_file(const char *path, uint32_t page, uint64_t page_no, const void *want)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    char *got = malloc(page);
    cr_assert(got);
    ssize_t n = pread(fd, got, page, (off_t)(page_no * page));
    close(fd);
    cr_assert_eq(n, (ssize_t)page, "pread page %llu: %zd", (unsigned long long)page_no, n);
    cr_assert(memcmp(got, want, page) == 0, "page %llu differs on disk",
              (unsigned long long)page_no);
    free(got);
}

void
bc_roundtrip(const char *dir, uint32_t page)
{
    char d[PATH_MAX];
    subdir(dir, d, sizeof(d));
    atomio_ctx *ctx = bc_ctx();
    int r;
    const char *path = t_join(d, "data");
    char pathcopy[PATH_MAX];
    snprintf(pathcopy, sizeof(pathcopy), "%s", path);
    atomio_file *f = open_file(ctx, path, page, ATOMIO_IO_BUFFERED, ATOMIO_PATH_AUTO, 0, &r);
    cr_assert_eq(r, 0, "open: %s", atomio_err_name(r));

    enum { NPAGES = 12 };
    /* Caller memory: one aligned block, and a copy at +1 (misaligned: must be bounced). */
    char *mine = NULL;
    cr_assert_eq(posix_memalign((void **)&mine, 4096, (size_t)page * NPAGES + 1), 0);
    char *mis = mine + 1;
    char *pool = atomio_page_alloc(ctx, page, NPAGES);
    cr_assert(pool, "atomio_page_alloc");
    char *want = malloc((size_t)page * NPAGES);
    cr_assert(want);
    for (unsigned i = 0; i < NPAGES; i++)
        t_fill(want + (size_t)i * page, page, 1000 + i);

    /* Pages 0-3: single writes from aligned caller memory; 4-5 from misaligned memory;
     * 6-7 from allocator pages; 8-11 as one batch mixing all three sources. */
    for (unsigned i = 0; i < 4; i++) {
        memcpy(mine + (size_t)i * page, want + (size_t)i * page, page);
        r = atomio_write(f, i, mine + (size_t)i * page, 0);
        cr_assert_eq(r, 0, "write page %u: %s", i, atomio_err_name(r));
    }
    for (unsigned i = 4; i < 6; i++) {
        memmove(mis, want + (size_t)i * page, page);
        r = atomio_write(f, i, mis, 0);
        cr_assert_eq(r, 0, "write misaligned page %u: %s", i, atomio_err_name(r));
    }
    for (unsigned i = 6; i < 8; i++) {
        memcpy(pool + (size_t)i * page, want + (size_t)i * page, page);
        r = atomio_write(f, i, pool + (size_t)i * page, ATOMIO_WRITE_DSYNC);
        cr_assert_eq(r, 0, "write allocator page %u: %s", i, atomio_err_name(r));
    }
    atomio_page_write w[4];
    for (unsigned k = 0; k < 4; k++) {
        unsigned i = 8 + k;
        char *src = k % 2 ? pool + (size_t)i * page : mine + (size_t)i * page;
        memcpy(src, want + (size_t)i * page, page);
        w[k] = (atomio_page_write){.file = f, .page_no = i, .page = src};
    }
    r = atomio_write_batch(ctx, w, 4, 0);
    cr_assert_eq(r, 4, "batch wrote %d of 4 (first result %s)", r, atomio_err_name(w[0].result));

    char *back = atomio_page_alloc(ctx, page, 1);
    cr_assert(back);
    for (unsigned i = 0; i < NPAGES; i++) {
        cr_assert_eq(atomio_read(f, i, back), 0);
        cr_assert(memcmp(back, want + (size_t)i * page, page) == 0, "page %u reads back wrong", i);
    }
    cr_assert_eq(atomio_sync(f), 0);
    for (unsigned i = 0; i < NPAGES; i++)
        expect_on_file(pathcopy, page, i, want + (size_t)i * page);

    atomio_stats st = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &st), 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_BUFFERED_ATOMIC], NPAGES);
    cr_assert_eq(st.short_writes, 0);
    for (unsigned p = 0; p < (ATOMIO_PATH_UNSAFE + 1); p++)
        if (p != ATOMIO_PATH_BUFFERED_ATOMIC)
            cr_assert_eq(st.pages[p], 0, "a page went through %s", atomio_path_name(p));
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, ATOMIO_PATH_BUFFERED_ATOMIC);
    cr_assert_eq(info.state, ATOMIO_STATE_OK);
    cr_assert_eq(info.downgrades, 0);

    atomio_page_free(ctx, back, page, 1);
    atomio_page_free(ctx, pool, page, NPAGES);
    free(mine);
    free(want);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(d);
}

void
bc_no_copy(const char *dir, uint32_t page)
{
    char d[PATH_MAX];
    subdir(dir, d, sizeof(d));
    atomio_ctx *ctx = bc_ctx();
    int r;
    const char *path = t_join(d, "data");
    char pathcopy[PATH_MAX];
    snprintf(pathcopy, sizeof(pathcopy), "%s", path);
    atomio_file *f =
        open_file(ctx, path, page, ATOMIO_IO_BUFFERED, ATOMIO_PATH_AUTO, ATOMIO_FILE_NO_COPY, &r);
    cr_assert_eq(r, 0, "open: %s", atomio_err_name(r));

    char *mine = NULL;
    cr_assert_eq(posix_memalign((void **)&mine, page, page), 0);
    t_fill(mine, page, 7);
    cr_assert_eq(atomio_write(f, 0, mine, 0), ATOMIO_E_NO_COPY,
                 "caller memory under ATOMIO_FILE_NO_COPY must be refused");
    char *pool = atomio_page_alloc(ctx, page, 2);
    cr_assert(pool);
    t_fill(pool, page, 7);
    cr_assert_eq(atomio_write(f, 0, pool + 1, 0), ATOMIO_E_NO_COPY,
                 "a misaligned pointer into an allocator buffer cannot go to the kernel as is");
    struct stat sb;
    cr_assert_eq(stat(pathcopy, &sb), 0);
    cr_assert_eq(sb.st_size, 0, "a refused write wrote %lld bytes", (long long)sb.st_size);

    r = atomio_write(f, 1, pool, 0);
    cr_assert_eq(r, 0, "allocator page under NO_COPY: %s", atomio_err_name(r));
    t_fill(pool + page, page, 8);
    atomio_page_write w = {.file = f, .page_no = 0, .page = pool + page};
    cr_assert_eq(atomio_write_batch(ctx, &w, 1, 0), 1, "batch: %s", atomio_err_name(w.result));
    expect_on_file(pathcopy, page, 1, pool);
    expect_on_file(pathcopy, page, 0, pool + page);

    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.state, ATOMIO_STATE_OK, "refusals must not fail the file");
    atomio_page_free(ctx, pool, page, 2);
    free(mine);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(d);
}

void
bc_wrong_page_refused(const char *dir, uint32_t page)
{
    char d[PATH_MAX];
    subdir(dir, d, sizeof(d));
    uint32_t wrong = page * 2;
    atomio_ctx *ctx = bc_ctx();
    int r;
    atomio_file *f = open_file(ctx, t_join(d, "data"), wrong, ATOMIO_IO_BUFFERED,
                               ATOMIO_PATH_BUFFERED_ATOMIC, 0, &r);
    cr_assert_eq(r, ATOMIO_E_FOLIO_ORDER, "forced BUFFERED_ATOMIC at page %u: %s (%p)", wrong,
                 atomio_err_name(r), (void *)f);
    cr_assert_null(f);

    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(d, wrong, &c), 0);
    cr_assert_eq(c.folio_ok, 0);
    cr_assert_eq(c.buffered_atomic, 0);
    char orders[64];
    snprintf(orders, sizeof(orders), "page %u = order %u", wrong, c.page_order);
    cr_assert(strstr(c.reason_buffered, orders), "reason lacks '%s': %s", orders,
              c.reason_buffered);
    snprintf(orders, sizeof(orders), "min order %u", c.fs_min_order);
    cr_assert(strstr(c.reason_buffered, orders), "reason lacks '%s': %s", orders,
              c.reason_buffered);
    cr_assert_neq(c.page_order, c.fs_min_order);

    /* AUTO does not take it either: without a store there is no torn-safe path. */
    f = open_file(ctx, t_join(d, "data2"), wrong, ATOMIO_IO_BUFFERED, ATOMIO_PATH_AUTO, 0, &r);
    cr_assert_eq(r, ATOMIO_E_NO_DOUBLEWRITE, "AUTO at page %u: %s", wrong, atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(d);
}
