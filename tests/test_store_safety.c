/* SPDX-License-Identifier: MIT */
/*
 * test_store_safety.c -- the store never silently loses a copy. Each case leaves a torn page
 * whose only good copy is in the store, then damages what recovery depends on: a header copy
 * (survived), both header copies (refused, nothing touched), the manifest (copies kept,
 * ATOMIO_E_UNAPPLIED, then an operator's remap or discard), a data directory moved elsewhere
 * (recovered through the data root, also one named through a symlink), a version 1 store with
 * live batches (refused with what to do). Also the store lock: a second instance or private
 * open is refused; a crashed holder's lock dies with it, even when a child it forked lives on;
 * a child forked while the store closes keeps no lock; processes of one named instance share
 * the store; a ctx inherited across fork() refuses to work in the child; atomio_store_reset()
 * says what it discards.
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "store/store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PS      4096u
#define FILE_ID 42u

static char tmp[256], dwdir[320], root[320], dpath[400];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
    t_subdir(root, sizeof(root), tmp, "data");
    snprintf(dpath, sizeof(dpath), "%s/t.db", root);
    atomic_store(&atomio__test_dw_keep_batches, 0);
}

static void
teardown(void)
{
    atomic_store(&atomio__test_dw_keep_batches, 0);
    t_rmtree(tmp);
}

TestSuite(store_safety, .init = setup, .fini = teardown);

struct opener {
    uint32_t flags;
    const char *data_root;
    const char *instance;
    atomio_unapplied_fn unapplied;
    void *arg;
};

static int
open_ctx(const struct opener *o, atomio_ctx **out)
{
    atomio_ctx_opts co;
    atomio_ctx_opts_init(&co);
    co.doublewrite_dir = dwdir;
    co.doublewrite_store_bytes = 1u << 20;
    co.doublewrite_batch_pages = 8;
    co.doublewrite_max_page_size = PS;
    co.submitter = ATOMIO_SUBMIT_SYNC;
    if (o) {
        co.flags = o->flags;
        co.data_root = o->data_root;
        co.instance = o->instance;
        co.unapplied = o->unapplied;
        co.unapplied_arg = o->arg;
    }
    *out = NULL;
    return atomio_ctx_open(&co, out);
}

static atomio_file *
open_file(atomio_ctx *ctx, const char *path)
{
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.page_size = PS;
    fo.flags = ATOMIO_FILE_CREATE;
    fo.io_style = ATOMIO_IO_BUFFERED;
    fo.path = ATOMIO_PATH_DOUBLEWRITE;
    fo.file_id = FILE_ID;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, path, &fo, &f);
    cr_assert_eq(r, 0, "file open: %s", atomio_strerror(r));
    return f;
}

static void
page_of(uint8_t *p, uint64_t page_no, uint32_t version)
{
    t_fill(p, PS, page_no * 1000 + version);
}

static void
read_page(const char *path, uint64_t page_no, uint8_t *out)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, out, PS, (off_t)(page_no * PS)), (ssize_t)PS);
    close(fd);
}

static void
tear_page(const char *path, uint64_t page_no)
{
    uint8_t z[PS / 2];
    memset(z, 0, sizeof(z));
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, z, sizeof(z), (off_t)(page_no * PS + PS / 2)), (ssize_t)sizeof(z));
    close(fd);
}

static bool
page_is(const char *path, uint64_t page_no, uint32_t version)
{
    uint8_t want[PS], got[PS];
    page_of(want, page_no, version);
    read_page(path, page_no, got);
    return memcmp(want, got, PS) == 0;
}

/*
 * leave_torn_page() -- page 3 of the data file written as version 1 (released), then as
 * version 2 with its record kept live (as if the process died before releasing it), then torn
 * in place: only the store's copy can restore it.
 */
static void
leave_torn_page(const struct opener *o, const char *path)
{
    atomio_ctx *ctx;
    int r = open_ctx(o, &ctx);
    cr_assert_eq(r, 0, "open: %s (%s)", atomio_strerror(r), atomio_last_reason());
    atomio_file *f = open_file(ctx, path);
    uint8_t p[PS];
    page_of(p, 3, 1);
    cr_assert_eq(atomio_write(f, 3, p, 0), 0);
    atomic_store(&atomio__test_dw_keep_batches, 1);
    page_of(p, 3, 2);
    cr_assert_eq(atomio_write(f, 3, p, 0), 0);
    atomic_store(&atomio__test_dw_keep_batches, 0);
    atomio_file_close(f);
    atomio_ctx_close(ctx);
    tear_page(path, 3);
    cr_assert(!page_is(path, 3, 1) && !page_is(path, 3, 2));
}

static void
corrupt(const char *path, uint64_t off, size_t len, int random)
{
    uint8_t buf[4096];
    cr_assert_leq(len, sizeof(buf));
    if (random)
        t_fill(buf, len, 7);
    else
        memset(buf, 0, len);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static const char *
store_file(void)
{
    return t_join(dwdir, ATOMIO_DW_STORE_FILE);
}

static const char *
manifest_file(void)
{
    return t_join(dwdir, ATOMIO_DW_MANIFEST_FILE);
}

Test(store_safety, healthy_recovery_restores_the_torn_page)
{
    leave_torn_page(NULL, dpath);
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(NULL, &ctx), 0);
    cr_assert(page_is(dpath, 3, 2), "recovery restores the newest copy");
    atomio_ctx_close(ctx);
}

Test(store_safety, one_damaged_header_copy_is_survived_and_repaired)
{
    for (int copy = 0; copy < 2; copy++) {
        leave_torn_page(NULL, dpath);
        corrupt(store_file(), (uint64_t)copy * 4096, 256, copy); /* zeroed, then garbage */
        atomio_ctx *ctx;
        cr_assert_eq(open_ctx(&(struct opener){.flags = ATOMIO_CTX_NO_RECOVER}, &ctx), 0);
        atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
        cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
        cr_assert_eq(rep.headers_repaired, 1, "copy %d", copy);
        cr_assert_eq(rep.pages_restored, 1);
        cr_assert(page_is(dpath, 3, 2));
        atomio_ctx_close(ctx);
        /* repaired: a clean open needs no repair */
        cr_assert_eq(open_ctx(&(struct opener){.flags = ATOMIO_CTX_NO_RECOVER}, &ctx), 0);
        rep = (atomio_recovery_report)ATOMIO_RECOVERY_REPORT_INIT;
        cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
        cr_assert_eq(rep.headers_repaired, 0);
        atomio_ctx_close(ctx);
    }
}

Test(store_safety, both_headers_damaged_refuses_and_touches_nothing)
{
    for (int random = 0; random < 2; random++) {
        leave_torn_page(NULL, dpath);
        corrupt(store_file(), 0, 256, random);
        corrupt(store_file(), 4096, 256, random);
        struct stat before, after;
        cr_assert_eq(stat(store_file(), &before), 0);
        atomio_ctx *ctx;
        int r = open_ctx(NULL, &ctx);
        cr_assert_eq(r, ATOMIO_E_STORE, "got %s", atomio_err_name(r));
        cr_assert_null(ctx);
        cr_assert(strstr(atomio_last_reason(), "reset") != NULL, "reason: %s",
                  atomio_last_reason());
        cr_assert_eq(stat(store_file(), &after), 0);
        cr_assert_eq(before.st_size, after.st_size, "the store was not re-formatted");
        cr_assert(!page_is(dpath, 3, 2), "nothing was applied");
        /* The operator's explicit reset is the way out, and it says what it discards. */
        atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
        cr_assert_eq(atomio_store_reset(dwdir, &rep), 0);
        cr_assert_eq(open_ctx(NULL, &ctx), 0);
        atomio_ctx_close(ctx);
    }
}

Test(store_safety, reset_counts_what_it_discards)
{
    leave_torn_page(NULL, dpath);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_store_reset(dwdir, &rep), 0);
    cr_assert_eq(rep.batches_discarded, 1);
    cr_assert_eq(rep.pages_discarded, 1);
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(NULL, &ctx), 0);
    cr_assert(!page_is(dpath, 3, 2), "a reset store restores nothing");
    atomio_ctx_close(ctx);
}

struct named {
    int calls;
    uint64_t id, pages;
    char path[512];
    int err;
};

static void
on_unapplied(void *arg, uint64_t file_id, const char *path, uint64_t pages, int err)
{
    struct named *n = arg;
    n->calls++;
    n->id = file_id;
    n->pages = pages;
    n->err = err;
    snprintf(n->path, sizeof(n->path), "%s", path ? path : "(unknown)");
}

Test(store_safety, damaged_manifest_keeps_copies_then_remap_applies_them)
{
    leave_torn_page(NULL, dpath);
    struct stat sb;
    cr_assert_eq(stat(manifest_file(), &sb), 0);
    corrupt(manifest_file(), 0, (size_t)sb.st_size, 1);
    struct named n = {0};
    atomio_ctx *ctx;
    int r = open_ctx(&(struct opener){.unapplied = on_unapplied, .arg = &n}, &ctx);
    cr_assert_eq(r, ATOMIO_E_UNAPPLIED, "got %s", atomio_err_name(r));
    cr_assert_eq(n.calls, 1);
    cr_assert_eq(n.id, FILE_ID);
    cr_assert_eq(n.pages, 1);
    cr_assert(!page_is(dpath, 3, 2));
    /* Again: the copies were kept. */
    memset(&n, 0, sizeof(n));
    cr_assert_eq(open_ctx(&(struct opener){.unapplied = on_unapplied, .arg = &n}, &ctx),
                 ATOMIO_E_UNAPPLIED);
    cr_assert_eq(n.calls, 1);
    /* The operator says where the file is. */
    cr_assert_eq(open_ctx(&(struct opener){.flags = ATOMIO_CTX_NO_RECOVER}, &ctx), 0);
    cr_assert_eq(atomio_ctx_remap_file(ctx, FILE_ID, dpath), 0);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_eq(rep.pages_restored, 1);
    cr_assert(page_is(dpath, 3, 2));
    atomio_ctx_close(ctx);
}

Test(store_safety, deleted_manifest_keeps_copies_then_discard_drops_them)
{
    leave_torn_page(NULL, dpath);
    cr_assert_eq(unlink(manifest_file()), 0);
    atomio_ctx *ctx;
    int r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, ATOMIO_E_UNAPPLIED, "got %s", atomio_err_name(r));
    cr_assert_eq(open_ctx(&(struct opener){.flags = ATOMIO_CTX_NO_RECOVER}, &ctx), 0);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), ATOMIO_E_UNAPPLIED);
    cr_assert_eq(rep.unknown_file_ids, 1);
    cr_assert_eq(rep.pages_unapplied, 1);
    cr_assert_eq(atomio_ctx_discard_file(ctx, FILE_ID), 0);
    rep = (atomio_recovery_report)ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_eq(rep.pages_discarded, 1);
    cr_assert_eq(rep.pages_unapplied, 0);
    atomio_ctx_close(ctx);
    cr_assert_eq(open_ctx(NULL, &ctx), 0, "the discard was final");
    atomio_ctx_close(ctx);
}

Test(store_safety, moved_data_directory_recovers_through_the_data_root)
{
    leave_torn_page(&(struct opener){.data_root = root}, dpath);
    char moved[400], mpath[480];
    snprintf(moved, sizeof(moved), "%s/restored", tmp);
    snprintf(mpath, sizeof(mpath), "%s/t.db", moved);
    cr_assert_eq(rename(root, moved), 0);

    /* Without the new root the file is missing: copies kept, the call fails. */
    struct named n = {0};
    atomio_ctx *ctx;
    int r = open_ctx(&(struct opener){.data_root = root, .unapplied = on_unapplied, .arg = &n},
                     &ctx);
    cr_assert_eq(r, ATOMIO_E_UNAPPLIED, "got %s", atomio_err_name(r));
    cr_assert_eq(n.err, -ENOENT);
    cr_assert_str_eq(n.path, dpath);

    /* The engine names where its data is now: recovered untouched. */
    r = open_ctx(&(struct opener){.data_root = moved}, &ctx);
    cr_assert_eq(r, 0, "open: %s (%s)", atomio_strerror(r), atomio_last_reason());
    cr_assert(page_is(mpath, 3, 2));
    atomio_ctx_close(ctx);
}

/* A data root reached through a symlink (or spelled with "." and "//") is resolved as the files'
 * paths are, so the files are still recorded relative to it and move with the directory. */
Test(store_safety, data_root_through_a_symlink_still_records_files_relative_to_it)
{
    char link[400], spelled[480], moved[400], mpath[480];
    snprintf(link, sizeof(link), "%s/current", tmp);
    cr_assert_eq(symlink(root, link), 0);
    snprintf(spelled, sizeof(spelled), "%s/.//", link);
    leave_torn_page(&(struct opener){.data_root = spelled}, dpath);
    snprintf(moved, sizeof(moved), "%s/restored", tmp);
    snprintf(mpath, sizeof(mpath), "%s/t.db", moved);
    cr_assert_eq(rename(root, moved), 0);

    atomio_ctx *ctx;
    int r = open_ctx(&(struct opener){.data_root = moved}, &ctx);
    cr_assert_eq(r, 0, "recorded by its absolute path? %s (%s)", atomio_strerror(r),
                 atomio_last_reason());
    cr_assert(page_is(mpath, 3, 2));
    atomio_ctx_close(ctx);
}

Test(store_safety, a_second_open_is_refused_and_names_the_instance)
{
    atomio_ctx *a, *b;
    cr_assert_eq(open_ctx(NULL, &a), 0);
    int r = open_ctx(NULL, &b);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED, "got %s", atomio_err_name(r));
    cr_assert(strlen(atomio_last_reason()) > 0);
    r = open_ctx(&(struct opener){.instance = "other"}, &b);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED);
    atomio_ctx_close(a);

    cr_assert_eq(open_ctx(&(struct opener){.instance = "pg-main"}, &a), 0);
    r = open_ctx(&(struct opener){.instance = "pg-other"}, &b);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED);
    cr_assert(strstr(atomio_last_reason(), "pg-main") != NULL, "%s", atomio_last_reason());
    cr_assert_eq(open_ctx(NULL, &b), ATOMIO_E_STORE_LOCKED);
    r = open_ctx(&(struct opener){.instance = "pg-main"}, &b);
    cr_assert_eq(r, 0, "same instance shares the store: %s", atomio_last_reason());
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(b, &st), 0);
    cr_assert_eq(st.attached, 1, "one process, however many ctxs");
    cr_assert_eq(st.store_bytes, 1u << 20);
    atomio_ctx_close(b);
    atomio_ctx_close(a);
}

Test(store_safety, a_crashed_holders_lock_dies_with_it)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        atomio_ctx *ctx;
        char ok = open_ctx(NULL, &ctx) == 0 ? 'y' : 'n';
        if (write(pipefd[1], &ok, 1) != 1)
            _exit(2);
        pause(); /* killed while holding the store */
        _exit(0);
    }
    char ok = 0;
    cr_assert_eq(read(pipefd[0], &ok, 1), 1);
    cr_assert_eq(ok, 'y');
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(NULL, &ctx), ATOMIO_E_STORE_LOCKED, "held by the live child");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, 0, "after the holder died: %s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_ctx_close(ctx);
}

/* An engine process with a ctx open forks a helper that does not exec, then crashes. The
 * helper lives on, but the store is not held by it: the restart opens it. */
Test(store_safety, a_crashed_engines_forked_helper_does_not_hold_the_store)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t engine = fork();
    cr_assert_geq(engine, 0);
    if (engine == 0) {
        atomio_ctx *ctx;
        if (open_ctx(NULL, &ctx) != 0)
            _exit(2);
        if (fork() == 0) {
            /* Past fork() in the child, so its fork handlers have run: say so, then outlive
             * the engine. */
            pid_t me = getpid();
            if (write(pipefd[1], &me, sizeof(me)) != (ssize_t)sizeof(me))
                _exit(2);
            pause();
            _exit(0);
        }
        pause(); /* killed while holding the store */
        _exit(0);
    }
    pid_t helper = -1;
    cr_assert_eq(read(pipefd[0], &helper, sizeof(helper)), (ssize_t)sizeof(helper));
    cr_assert_gt(helper, 0);
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(NULL, &ctx), ATOMIO_E_STORE_LOCKED, "held by the live engine");
    kill(engine, SIGKILL);
    waitpid(engine, NULL, 0);
    cr_assert_eq(kill(helper, 0), 0, "the helper is still alive");
    int r = open_ctx(NULL, &ctx);
    kill(helper, SIGKILL); /* it is the engine's child: init reaps it */
    cr_assert_eq(r, 0, "after the engine died, with its helper alive: %s (%s)",
                 atomio_err_name(r), atomio_last_reason());
    atomio_ctx_close(ctx);
}

/* A thread of the engine that forks (system(), posix_spawn()) while the library closes a
 * descriptor of the lock file gives its child a copy of it. fork_holder() plays that thread:
 * called just before each such close, it forks a child that holds every inherited descriptor
 * until the gate closes. */
static int gate[2] = {-1, -1};
static pid_t holders[16];
static int nholders;

static void
fork_holder(void)
{
    if (nholders == 16)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(gate[1]);
        while (read(gate[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    if (pid > 0)
        holders[nholders++] = pid;
}

static void
release_holders(void)
{
    atomio__test_lock_closing = NULL;
    if (gate[1] >= 0)
        close(gate[1]);
    if (gate[0] >= 0)
        close(gate[0]);
    gate[0] = gate[1] = -1;
    while (nholders > 0)
        waitpid(holders[--nholders], NULL, 0);
}

Test(store_safety, a_child_forked_while_the_store_closes_keeps_no_lock,
     .fini = release_holders)
{
    cr_assert_eq(pipe(gate), 0);
    atomio__test_lock_closing = fork_holder;
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(NULL, &ctx), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    cr_assert_gt(nholders, 0, "a child was forked while a lock descriptor closed");
    int r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, 0, "reopened after a close: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    int before = nholders;
    cr_assert_eq(atomio_store_reset(dwdir, NULL), 0);
    cr_assert_gt(nholders, before, "a child was forked while the reset's lock closed");
    r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, 0, "reopened after a reset: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(store_safety, an_inherited_ctx_refuses_work_in_the_child)
{
    atomio_ctx *ctx;
    cr_assert_eq(open_ctx(&(struct opener){.instance = "forked"}, &ctx), 0);
    atomio_file *f = open_file(ctx, dpath);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        uint8_t p[PS];
        page_of(p, 1, 1);
        int bad = atomio_write(f, 1, p, 0) == ATOMIO_E_INVAL ? 0 : 1;
        bad |= atomio_ctx_sync(ctx) == ATOMIO_E_INVAL ? 0 : 1;
        /* The child attaches with its own ctx, as one more process of the instance. */
        atomio_ctx *mine;
        if (open_ctx(&(struct opener){.instance = "forked"}, &mine) != 0)
            _exit(10 + bad);
        atomio_stats st = ATOMIO_STATS_INIT;
        if (atomio_ctx_get_stats(mine, &st) != 0 || st.attached != 2)
            _exit(20 + bad);
        atomio_file *g = open_file(mine, dpath);
        if (atomio_write(g, 2, p, 0) != 0)
            _exit(30 + bad);
        atomio_ctx_close(mine);
        atomio_ctx_close(ctx); /* the inherited one: frees memory, touches nothing shared */
        _exit(bad);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
              WEXITSTATUS(status));
    uint8_t p[PS];
    page_of(p, 1, 1);
    cr_assert_eq(atomio_write(f, 1, p, 0), 0, "the parent's ctx still works");
    atomio_ctx_close(ctx);
}

Test(store_safety, a_version_1_store_with_live_batches_is_refused)
{
    char src[512];
    const char *names[] = {ATOMIO_DW_STORE_FILE, ATOMIO_DW_MANIFEST_FILE};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof(src), "%s/%s", ATOMIO_TEST_FIXTURES "/store-v1-live", names[i]);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s/'", src, dwdir);
        cr_assert_eq(system(cmd), 0);
    }
    struct stat before, after;
    cr_assert_eq(stat(store_file(), &before), 0);
    atomio_ctx *ctx;
    int r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, ATOMIO_E_STORE, "got %s", atomio_err_name(r));
    cr_assert(strstr(atomio_last_reason(), "version 1") != NULL, "%s", atomio_last_reason());
    cr_assert_eq(stat(store_file(), &after), 0);
    cr_assert_eq(before.st_size, after.st_size, "left alone");
}

Test(store_safety, an_empty_version_1_store_is_laid_out_again)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cp '%s/store-v1-live/%s' '%s/'", ATOMIO_TEST_FIXTURES,
             ATOMIO_DW_STORE_FILE, dwdir);
    cr_assert_eq(system(cmd), 0);
    /* Empty its only live batch: zero every segment header (segments start at 4096). */
    for (uint64_t off = 4096; off < 28672; off += 4096)
        corrupt(store_file(), off, 64, 0);
    atomio_ctx *ctx;
    int r = open_ctx(NULL, &ctx);
    cr_assert_eq(r, 0, "%s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_ctx_close(ctx);
}

Test(store_safety, a_copy_of_a_store_in_use_never_shares_its_state)
{
    /* A restored backup, or a crash image mounted elsewhere, is a copy of the store with the
     * same identity. Opened next to the original under the same instance name, it must get
     * state of its own: the original's processes keep seeing the original's ring. */
    struct opener deferred = {.instance = "pg"};
    atomio_ctx *a;
    cr_assert_eq(open_ctx(&deferred, &a), 0);
    atomio_file *f = open_file(a, dpath);
    uint8_t p[PS];
    page_of(p, 1, 1);
    atomic_store(&atomio__test_dw_keep_batches, 1); /* an unreleased copy in the ring */
    cr_assert_eq(atomio_write(f, 1, p, 0), 0);
    atomic_store(&atomio__test_dw_keep_batches, 0);
    atomio_stats sa = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(a, &sa), 0);
    cr_assert_gt(sa.store_bytes_used, 0);

    char copy[400], cmd[1000];
    snprintf(copy, sizeof(copy), "%s/dw-copy", tmp);
    snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", dwdir, copy);
    cr_assert_eq(system(cmd), 0);
    atomio_ctx_opts oc;
    atomio_ctx_opts_init(&oc);
    oc.doublewrite_dir = copy;
    oc.doublewrite_store_bytes = 1u << 20;
    oc.doublewrite_batch_pages = 8;
    oc.doublewrite_max_page_size = PS;
    oc.submitter = ATOMIO_SUBMIT_SYNC;
    oc.instance = "pg";
    oc.flags = ATOMIO_CTX_NO_RECOVER;
    atomio_ctx *c = NULL;
    int r = atomio_ctx_open(&oc, &c);
    cr_assert_eq(r, 0, "the copy opens as an instance of its own: %s", atomio_last_reason());

    atomio_ctx *b;
    cr_assert_eq(open_ctx(&deferred, &b), 0, "%s", atomio_last_reason());
    atomio_stats sb = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(b, &sb), 0);
    cr_assert_eq(sb.store_bytes_used, sa.store_bytes_used, "a joiner of the original sees its ring");
    atomio_ctx_close(b);
    atomio_ctx_close(c);
    atomio_ctx_close(a);
}
