/* SPDX-License-Identifier: MIT */
/*
 * test_file_table.c -- the store's table of data files in deferred mode. A record is released
 * by syncs of its files, which the instance tracks per file in a table of fixed size. A file
 * without an entry is written untracked: its writer syncs it with every write, which is safe
 * and slow. An instance that lives long meets far more files than the table holds (an engine
 * creates, truncates and drops relations all day), so entries nothing needs any more are
 * recycled. These tests shrink the table (a test hook) and check that:
 *   - once synced, any number of files keeps writing without a data sync per write;
 *   - a file's copies are released only by a sync of that file begun after them, whatever
 *     the entry it had before;
 *   - an entry whose file is being synced is not taken by another file meanwhile.
 * A write's sync count tells tracked from untracked: a tracked deferred write makes one
 * (the store's group commit), an untracked one two (the store's and its file's).
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PS 4096u

static char tmp[256], dwdir[320];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
}

static void
teardown(void)
{
    atomic_store(&atomio__test_file_slots, 0);
    atomio__sys = atomio__sys_real;
    t_rmtree(tmp);
}

TestSuite(file_table, .init = setup, .fini = teardown);

/* open_ctx() -- a deferred-mode ctx on a new instance whose file table holds slots files. */
static atomio_ctx *
open_ctx(int slots)
{
    atomic_store(&atomio__test_file_slots, slots);
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    co.doublewrite_max_page_size = PS;
    return t_ctx_open(&co);
}

static atomio_file *
open_file(atomio_ctx *ctx, uint64_t id)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/f%llu.db", tmp, (unsigned long long)id);
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    fo.file_id = id;
    return t_file_open(ctx, path, &fo);
}

static atomio_stats
stats(atomio_ctx *ctx)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    return st;
}

/* write_page() -- one page of f; returns the syncs the write made (1 tracked, 2 untracked). */
static uint64_t
write_page(atomio_ctx *ctx, atomio_file *f, uint64_t page_no)
{
    uint8_t page[PS];
    t_fill(page, PS, page_no * 31 + 7);
    uint64_t before = stats(ctx).syncs;
    int r = atomio_write(f, page_no, page, 0);
    cr_assert_eq(r, 0, "atomio_write: %s", atomio_err_name(r));
    return stats(ctx).syncs - before;
}

static uint64_t
store_used(atomio_ctx *ctx)
{
    return stats(ctx).store_bytes_used;
}

Test(file_table, synced_files_beyond_the_table_stay_tracked)
{
    /* Forty files through a table of eight: each written, synced (its copy released, its
     * entry no longer needed) and closed, as an engine's relations come and go. */
    atomio_ctx *ctx = open_ctx(8);
    for (uint64_t id = 1; id <= 40; id++) {
        atomio_file *f = open_file(ctx, id);
        cr_assert_eq(write_page(ctx, f, id), 1,
                     "file %llu: its write synced the data file: untracked, the table is full",
                     (unsigned long long)id);
        cr_assert_gt(store_used(ctx), 0, "file %llu: the copy waits for the sync",
                     (unsigned long long)id);
        cr_assert_eq(atomio_sync(f), 0);
        cr_assert_eq(store_used(ctx), 0, "file %llu: the sync released the copy",
                     (unsigned long long)id);
        cr_assert_eq(atomio_file_close(f), 0);
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(file_table, a_copy_is_released_only_by_its_own_file_sync)
{
    atomio_ctx *ctx = open_ctx(8);
    atomio_file *f[12];
    for (uint64_t k = 0; k < 12; k++)
        f[k] = open_file(ctx, 100 + k);
    /* Eight files with a copy each fill the table; the ninth is untracked and syncs itself
     * (its copy released at once). */
    for (int k = 0; k < 8; k++)
        cr_assert_eq(write_page(ctx, f[k], 0), 1, "file %d tracked", k);
    cr_assert_eq(write_page(ctx, f[8], 0), 2, "a ninth file with the table full is untracked");

    /* The oldest copy (file 0) released: its entry is free, and file 9 takes it. */
    cr_assert_eq(atomio_sync(f[0]), 0);
    cr_assert_eq(write_page(ctx, f[9], 0), 1, "file 9 takes the entry file 0 no longer needs");

    /* Every file synced but file 9: its copy, in the entry file 0 had, still waits. */
    for (int k = 1; k < 9; k++)
        cr_assert_eq(atomio_sync(f[k]), 0);
    uint64_t used = store_used(ctx);
    cr_assert_gt(used, 0, "file 9's copy released by other files' syncs");
    /* File 0 again: a fresh entry; its new copy waits for a sync begun after it, although
     * the entry it had before saw syncs. */
    cr_assert_eq(write_page(ctx, f[0], 1), 1);
    cr_assert_gt(store_used(ctx), used, "file 0's new copy was released by an earlier sync");
    cr_assert_eq(atomio_sync(f[9]), 0);
    cr_assert_gt(store_used(ctx), 0, "file 0's new copy released by file 9's sync");
    cr_assert_eq(atomio_sync(f[0]), 0);
    cr_assert_eq(store_used(ctx), 0, "every copy released once its own file is synced");

    for (int k = 0; k < 12; k++)
        cr_assert_eq(atomio_file_close(f[k]), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* A sync of file A in flight (held inside its fdatasync); meanwhile a second sync of A runs to
 * the end and releases A's copy, and file B writes a page. */
static atomio_ctx *g_ctx;
static atomio_file *g_a, *g_b;
static int g_armed;
static uint64_t g_b_syncs;

static int
nested_fdatasync(int fd)
{
    if (g_armed && fd == g_a->fd) {
        g_armed = 0;
        cr_assert_eq(atomio_sync(g_a), 0);
        g_b_syncs = write_page(g_ctx, g_b, 0);
    }
    return atomio__sys_real.fdatasync(fd);
}

Test(file_table, an_entry_stays_with_its_file_while_a_sync_of_it_runs)
{
    /* One entry. A sync in flight holds its file's entry even when nothing else needs it: a
     * sync ending later sets its ticket on the entry it began on, and on another file's entry
     * that ticket would release copies no sync had covered. */
    g_ctx = open_ctx(1);
    g_a = open_file(g_ctx, 1);
    g_b = open_file(g_ctx, 2);
    cr_assert_eq(write_page(g_ctx, g_a, 0), 1);
    atomio__sys.fdatasync = nested_fdatasync;
    g_armed = 1;
    cr_assert_eq(atomio_sync(g_a), 0);
    atomio__sys = atomio__sys_real;
    cr_assert_eq(g_armed, 0, "the nested sync ran");
    cr_assert_eq(g_b_syncs, 2, "file B took the entry of file A while a sync of A was running");
    cr_assert_eq(store_used(g_ctx), 0);

    /* Now the entry is free: B's next write is tracked, and its copy waits for B's sync. */
    cr_assert_eq(write_page(g_ctx, g_b, 1), 1);
    cr_assert_gt(store_used(g_ctx), 0);
    cr_assert_eq(atomio_sync(g_a), 0);
    cr_assert_gt(store_used(g_ctx), 0, "B's copy released by a sync of A");
    cr_assert_eq(atomio_sync(g_b), 0);
    cr_assert_eq(store_used(g_ctx), 0);
    cr_assert_eq(atomio_file_close(g_a), 0);
    cr_assert_eq(atomio_file_close(g_b), 0);
    cr_assert_eq(atomio_ctx_close(g_ctx), 0);
}
