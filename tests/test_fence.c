/* SPDX-License-Identifier: MIT */
/*
 * test_fence.c -- atomio_file_fence(): an engine that changes a file without the library
 * (truncates it, unlinks it, writes it with plain writes) first fences it, and recovery never
 * brings an older copy back into it. Each case leaves a live copy in the store, as a crash
 * would before the store's tail moves past it, then changes the file behind the library's
 * back. The controls do the same without the fence and show the damage the fence prevents:
 * a truncated page comes back, an unlinked file's copies block startup, a plain write is
 * rolled back. A fence also frees the copies that wait for a sync of the file: a file fenced
 * and removed unsynced holds no store space (control: the ring blocks on it with ENOENT).
 * atomio_ctx_fence_dir() does the same for a whole directory (a dropped or moved database),
 * and its control shows a directory copied back over being rolled back.
 */
#include "atomio_internal.h"
#include "store/format.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PS      4096u
#define FILE_ID 77u

static char tmp[256], dwdir[320], dpath[400];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
    snprintf(dpath, sizeof(dpath), "%s/t.db", tmp);
    atomic_store(&atomio__test_dw_keep_batches, 0);
}

static void
teardown(void)
{
    atomic_store(&atomio__test_dw_keep_batches, 0);
    t_rmtree(tmp);
}

TestSuite(fence, .init = setup, .fini = teardown);

static atomio_ctx *
open_ctx(uint32_t flags)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.flags = flags;
    co.doublewrite_max_page_size = PS;
    return t_ctx_open(&co);
}

static atomio_file *
open_file(atomio_ctx *ctx, uint32_t flags)
{
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED,
                    (flags & ATOMIO_FILE_RDONLY) ? flags : ATOMIO_FILE_CREATE | flags);
    fo.file_id = FILE_ID;
    return t_file_open(ctx, dpath, &fo);
}

static void
page_of(uint8_t *p, uint64_t page_no, uint32_t version)
{
    t_fill(p, PS, page_no * 1000 + version);
}

static bool
holds(const char *path, uint64_t page_no, uint32_t version)
{
    uint8_t want[PS];
    page_of(want, page_no, version);
    return t_file_holds(path, want, PS, page_no);
}

static bool
page_is(uint64_t page_no, uint32_t version)
{
    return holds(dpath, page_no, version);
}

/* Tear page 1 of the file at path in place, as a crash in the middle of its write would. */
static void
tear_page_1(const char *path)
{
    uint8_t z[PS / 2];
    memset(z, 0, sizeof(z));
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, z, sizeof(z), PS + PS / 2), (ssize_t)sizeof(z));
    close(fd);
}

static off_t
file_size(void)
{
    struct stat sb;
    cr_assert_eq(stat(dpath, &sb), 0);
    return sb.st_size;
}

/* Pages 0..3 written as version 1 through the store, their record kept live, as after a crash
 * before the store's tail moved past it. Returns the open ctx and file. */
static void
write_live(atomio_ctx **ctx, atomio_file **f)
{
    *ctx = open_ctx(0);
    *f = open_file(*ctx, 0);
    uint8_t p[PS];
    atomic_store(&atomio__test_dw_keep_batches, 1);
    for (uint64_t i = 0; i < 4; i++) {
        page_of(p, i, 1);
        cr_assert_eq(atomio_write(*f, i, p, 0), 0);
    }
    atomic_store(&atomio__test_dw_keep_batches, 0);
    cr_assert_eq(atomio_sync(*f), 0);
}

static void
recover(atomio_recovery_report *rep, int want)
{
    atomio_ctx *ctx = open_ctx(ATOMIO_CTX_NO_RECOVER);
    *rep = (atomio_recovery_report)ATOMIO_RECOVERY_REPORT_INIT;
    int r = atomio_ctx_recover(ctx, rep);
    cr_assert_eq(r, want, "recover: %s, want %s", atomio_err_name(r), atomio_err_name(want));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(fence, a_truncated_file_gets_no_page_back)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    cr_assert_eq(atomio_file_fence(f), 0);
    cr_assert_eq(truncate(dpath, 0), 0);
    atomio_file_close(f);
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert_eq(file_size(), 0, "recovery wrote fenced copies back");
    cr_assert_eq(rep.pages_fenced, 4);
    cr_assert_eq(rep.pages_restored, 0);
    cr_assert_eq(rep.pages_unapplied, 0);
}

Test(fence, control_without_a_fence_a_truncated_page_comes_back)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    cr_assert_eq(truncate(dpath, 0), 0);
    atomio_file_close(f);
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert_eq(file_size(), 4 * PS);
    cr_assert(page_is(3, 1), "the copy is applied over the truncation");
    cr_assert_eq(rep.pages_fenced, 0);
}

Test(fence, an_unlinked_file_leaves_nothing_unapplied)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    cr_assert_eq(atomio_file_fence(f), 0);
    atomio_file_close(f);
    cr_assert_eq(unlink(dpath), 0);
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert_eq(rep.pages_fenced, 4);
    cr_assert_eq(rep.files_missing, 0);
    cr_assert_eq(rep.pages_unapplied, 0);
    cr_assert_eq(access(dpath, F_OK), -1, "recovery must not create the file");
}

Test(fence, control_without_a_fence_an_unlinked_files_copies_are_kept)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    atomio_file_close(f);
    cr_assert_eq(unlink(dpath), 0);
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, ATOMIO_E_UNAPPLIED);
    cr_assert_eq(rep.pages_unapplied, 4);
    cr_assert_eq(rep.pages_fenced, 0);
}

Test(fence, a_plain_write_after_the_fence_is_not_rolled_back)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    cr_assert_eq(atomio_file_fence(f), 0);
    uint8_t p[PS];
    page_of(p, 2, 9);
    int fd = open(dpath, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, p, PS, 2 * PS), (ssize_t)PS);
    cr_assert_eq(fdatasync(fd), 0);
    close(fd);
    atomio_file_close(f);
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert(page_is(2, 9), "the plain write survives recovery");
    cr_assert_eq(rep.pages_fenced, 4);
}

Test(fence, writes_after_the_fence_are_protected_as_before)
{
    atomio_ctx *ctx;
    atomio_file *f;
    write_live(&ctx, &f);
    cr_assert_eq(atomio_file_fence(f), 0);
    uint8_t p[PS];
    page_of(p, 1, 2);
    atomic_store(&atomio__test_dw_keep_batches, 1);
    cr_assert_eq(atomio_write(f, 1, p, 0), 0);
    atomic_store(&atomio__test_dw_keep_batches, 0);
    atomio_file_close(f);
    atomio_ctx_close(ctx);
    tear_page_1(dpath); /* only its copy written after the fence can restore it */
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert(page_is(1, 2), "the copy from after the fence restores the torn page");
    cr_assert_eq(rep.pages_restored, 1);
    cr_assert_eq(rep.pages_fenced, 3, "pages 0, 2, 3 have only fenced copies");
}

Test(fence, bad_handles_are_refused_and_a_store_less_ctx_has_nothing_to_fence)
{
    cr_assert_eq(atomio_file_fence(NULL), ATOMIO_E_INVAL);
    cr_assert_str_neq(atomio_strerror(ATOMIO_E_INVAL), "unknown error");

    atomio_ctx *ctx = open_ctx(0);
    atomio_file *f = open_file(ctx, 0);
    atomio_file *ro = open_file(ctx, ATOMIO_FILE_RDONLY);
    cr_assert_eq(atomio_file_fence(ro), ATOMIO_E_READ_ONLY);
    cr_assert_eq(atomio_file_close(ro), 0);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_file_fence(f), ATOMIO_E_CLOSED);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    ctx = t_ctx_open(NULL); /* no store */
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    f = t_file_open(ctx, dpath, &fo);
    cr_assert_eq(atomio_file_fence(f), 0);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- a fence releases what waits for a sync of the file ------------------------------------- */

/* File x written in deferred mode (its copies wait for a sync of it), then removed without a
 * sync, after a fence if fence is set; then file y written until a 256 KiB ring has gone
 * round several times, the library syncing y itself to make room. Returns the first error. */
static int
remove_unsynced_then_fill(bool fence)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.doublewrite_max_page_size = PS;
    co.doublewrite_store_bytes = 256u << 10;
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    atomio_ctx *ctx = t_ctx_open(&co);
    char xpath[400], ypath[400];
    snprintf(xpath, sizeof(xpath), "%s/x", tmp);
    snprintf(ypath, sizeof(ypath), "%s/y", tmp);
    atomio_file_opts fo = t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED,
                                      ATOMIO_FILE_CREATE);
    /* Ids of their own: y may well get x's inode, and with it x's derived id. */
    fo.file_id = 101;
    atomio_file *x = t_file_open(ctx, xpath, &fo);
    uint8_t p[PS];
    for (uint64_t i = 0; i < 4; i++) {
        page_of(p, i, 1);
        cr_assert_eq(atomio_write(x, i, p, 0), 0);
    }
    if (fence)
        cr_assert_eq(atomio_file_fence(x), 0);
    cr_assert_eq(atomio_file_close(x), 0);
    cr_assert_eq(unlink(xpath), 0);
    fo.file_id = 102;
    atomio_file *y = t_file_open(ctx, ypath, &fo);
    int r = 0;
    for (uint64_t n = 0; n < 400 && r == 0; n++) {
        page_of(p, n % 16, (uint32_t)n);
        r = atomio_write(y, n % 16, p, 0);
    }
    if (r == 0)
        r = atomio_sync(y);
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert(r != 0 || st.forced_syncs > 0, "the ring never filled: nothing was tested");
    atomio_file_close(y);
    atomio_ctx_close(ctx);
    return r;
}

Test(fence, a_fenced_files_unsynced_copies_no_longer_hold_the_store)
{
    int r = remove_unsynced_then_fill(true);
    cr_assert_eq(r, 0, "%s: %s", atomio_err_name(r), atomio_last_reason());
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert_eq(rep.pages_unapplied, 0);
}

Test(fence, control_without_a_fence_a_removed_files_unsynced_copies_block_the_store)
{
    int r = remove_unsynced_then_fill(false);
    cr_assert_neq(r, 0, "the ring came round to copies waiting for a file that is gone");
    cr_log_info("without the fence: %s (%s)", atomio_err_name(r), atomio_last_reason());
}

/* ---- atomio_ctx_fence_dir() ---------------------------------------------------------------- */

/* The layout of a database directory and a neighbour whose name it prefixes:
 * tmp/db/a, tmp/db/sub/b and tmp/dbx/c, each with pages 0..1 as version 1, their copies live. */
static char dbdir[320], apath[400], bpath[400], cpath[400];

static void
write_file_live(atomio_ctx *ctx, const char *path)
{
    atomio_file_opts fo = t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED,
                                      ATOMIO_FILE_CREATE);
    atomio_file *f = t_file_open(ctx, path, &fo); /* file_id derived from device and inode */
    uint8_t p[PS];
    atomic_store(&atomio__test_dw_keep_batches, 1);
    for (uint64_t i = 0; i < 2; i++) {
        page_of(p, i, 1);
        cr_assert_eq(atomio_write(f, i, p, 0), 0);
    }
    atomic_store(&atomio__test_dw_keep_batches, 0);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(atomio_file_close(f), 0);
}

static atomio_ctx *
write_database_live(void)
{
    char sub[360], other[320];
    t_subdir(dbdir, sizeof(dbdir), tmp, "db");
    t_subdir(sub, sizeof(sub), dbdir, "sub");
    t_subdir(other, sizeof(other), tmp, "dbx");
    snprintf(apath, sizeof(apath), "%s/a", dbdir);
    snprintf(bpath, sizeof(bpath), "%s/b", sub);
    snprintf(cpath, sizeof(cpath), "%s/c", other);
    atomio_ctx *ctx = open_ctx(0);
    write_file_live(ctx, apath);
    write_file_live(ctx, bpath);
    write_file_live(ctx, cpath);
    return ctx;
}

/* What a move away and back (or a drop and a new database at the same path) leaves: the
 * directory removed, then a at the same path written with plain writes as version 9. */
static void
replace_database(void)
{
    t_rmtree(dbdir);
    cr_assert_eq(mkdir(dbdir, 0700), 0);
    uint8_t p[PS * 2];
    page_of(p, 0, 9);
    page_of(p + PS, 1, 9);
    int fd = open(apath, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, p, sizeof(p), 0), (ssize_t)sizeof(p));
    cr_assert_eq(fdatasync(fd), 0);
    close(fd);
}

static off_t
manifest_size(void)
{
    char m[400];
    snprintf(m, sizeof(m), "%s/%s", dwdir, ATOMIO_DW_MANIFEST_FILE);
    struct stat sb;
    cr_assert_eq(stat(m, &sb), 0);
    return sb.st_size;
}

Test(fence, a_directory_fence_covers_every_file_under_it_and_nothing_else)
{
    atomio_ctx *ctx = write_database_live();
    /* Every file is closed: the fence goes by the store's manifest, not by open handles. */
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, dbdir), 2, "a and sub/b, not the neighbour dbx/c");
    replace_database();
    atomio_ctx_close(ctx);
    tear_page_1(cpath); /* the neighbour's copy is not fenced: it must restore the page */
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert(holds(apath, 0, 9) && holds(apath, 1, 9), "the copied-back file is rolled back");
    cr_assert_eq(access(bpath, F_OK), -1, "recovery must not bring the removed file back");
    cr_assert(holds(cpath, 1, 1), "the neighbour's torn page is restored from its copy");
    cr_assert_eq(rep.pages_fenced, 4);
    cr_assert_eq(rep.pages_restored, 1);
    cr_assert_eq(rep.files_missing, 0);
    cr_assert_eq(rep.pages_unapplied, 0);
}

Test(fence, control_without_a_directory_fence_a_copied_back_file_is_rolled_back)
{
    atomio_ctx *ctx = write_database_live();
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    replace_database();
    atomio_ctx_close(ctx);
    atomio_recovery_report rep;
    recover(&rep, ATOMIO_E_UNAPPLIED);
    cr_assert(holds(apath, 0, 1), "the old copies are written over the copied-back file");
    cr_assert_eq(rep.pages_unapplied, 2, "the removed file's copies are kept");
    cr_assert_eq(rep.pages_fenced, 0);
}

Test(fence, any_spelling_of_the_directory_names_the_same_files)
{
    /* Relative paths, as an engine that runs in its data directory opens them. */
    cr_assert_eq(chdir(tmp), 0);
    char sub[64], prefix[64], absdir[400], link[400];
    t_subdir(dbdir, sizeof(dbdir), ".", "rel");
    t_subdir(sub, sizeof(sub), "rel", "sub");
    t_subdir(prefix, sizeof(prefix), ".", "re");
    snprintf(absdir, sizeof(absdir), "%s/rel", tmp);
    snprintf(link, sizeof(link), "%s/link", tmp);
    cr_assert_eq(symlink("rel", link), 0);
    atomio_ctx *ctx = open_ctx(0);
    write_file_live(ctx, "rel/a");
    write_file_live(ctx, "rel/sub/b");
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    off_t before = manifest_size();
    cr_assert_eq(atomio_ctx_fence_dir(ctx, "re"), 0, "a name prefix is not a directory");
    cr_assert_eq(atomio_ctx_fence_dir(ctx, "rel/sub/b"), 0, "a file has nothing under it");
    cr_assert_eq(manifest_size(), before, "nothing matched, nothing appended");
    cr_assert_eq(atomio_ctx_fence_dir(ctx, "rel///"), 2, "relative, trailing slashes");
    off_t after = manifest_size();
    cr_assert_gt(after, before);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, absdir), 2, "absolute");
    cr_assert_eq(atomio_ctx_fence_dir(ctx, link), 2, "through a symlink");
    cr_assert_eq(atomio_ctx_fence_dir(ctx, "rel/sub"), 1, "a subdirectory");
    cr_assert_eq(manifest_size(), after, "already fenced at the head: no second append");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    atomio_recovery_report rep;
    recover(&rep, 0);
    cr_assert_eq(rep.pages_fenced, 4);
}

Test(fence, files_recorded_under_the_data_root_are_matched_by_their_full_path)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.doublewrite_max_page_size = PS;
    co.data_root = tmp;
    atomio_ctx *ctx = t_ctx_open(&co);
    char db[320], f1[400];
    t_subdir(db, sizeof(db), tmp, "base");
    snprintf(f1, sizeof(f1), "%s/1", db);
    write_file_live(ctx, f1);
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, db), 1);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, tmp), 1, "the data root itself");
    cr_assert_eq(atomio_ctx_fence_dir(ctx, "/"), 1, "the root directory");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(fence, bad_directory_fences_are_refused_and_write_nothing)
{
    cr_assert_eq(atomio_ctx_fence_dir(NULL, "x"), ATOMIO_E_INVAL);
    atomio_ctx *ctx = write_database_live();
    off_t before = manifest_size();
    cr_assert_eq(atomio_ctx_fence_dir(ctx, NULL), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, ""), ATOMIO_E_INVAL);
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/gone", tmp);
    cr_assert_eq(atomio_ctx_fence_dir(ctx, missing), -ENOENT, "a directory that is gone");
    cr_assert_eq(manifest_size(), before);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    ctx = t_ctx_open(NULL); /* no store: nothing to fence */
    cr_assert_eq(atomio_ctx_fence_dir(ctx, dbdir), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
