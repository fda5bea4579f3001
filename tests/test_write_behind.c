/* SPDX-License-Identifier: MIT */
/*
 * test_write_behind.c -- ATOMIO_DOUBLEWRITE_WRITE_BEHIND in one process (the multi-process
 * kill runs are in test_multiproc): a write returns with its page staged, not in the file;
 * atomio_read() sees it; flush, sync, fence and a DSYNC write put it in place; the newest of
 * several staged copies wins; a full staging makes writers lead rounds instead of failing; a
 * page that cannot go in place keeps its copy for recovery and fails the instance's later
 * calls; a round whose leader died is led again by another process; mixed modes and bad
 * sizes are refused.
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PS      4096u
#define FILE_ID 91u

static char tmp[256], dwdir[320], dpath[400];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
    snprintf(dpath, sizeof(dpath), "%s/t.db", tmp);
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    t_rmtree(tmp);
}

TestSuite(write_behind, .init = setup, .fini = teardown);

static atomio_ctx_opts
wb_opts(uint64_t staging)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.doublewrite_max_page_size = PS;
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
    co.write_behind_bytes = staging;
    co.instance = "wb";
    return co;
}

static atomio_file *
open_file(atomio_ctx *ctx)
{
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    fo.file_id = FILE_ID;
    return t_file_open(ctx, dpath, &fo);
}

static void
page_of(uint8_t *p, uint64_t page_no, uint32_t version)
{
    t_fill(p, PS, page_no * 1000 + version);
}

/* in_file() -- whether the file (read past the library) holds that version of the page. */
static bool
in_file(uint64_t page_no, uint32_t version)
{
    uint8_t want[PS];
    page_of(want, page_no, version);
    return t_file_holds(dpath, want, PS, page_no);
}

static void
write_v(atomio_file *f, uint64_t page_no, uint32_t version, uint32_t flags)
{
    uint8_t p[PS];
    page_of(p, page_no, version);
    int r = atomio_write(f, page_no, p, flags);
    cr_assert_eq(r, 0, "write page %llu v%u: %s (%s)", (unsigned long long)page_no, version,
                 atomio_err_name(r), atomio_last_reason());
}

static atomio_stats
stats(atomio_ctx *ctx)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    return st;
}

Test(write_behind, staged_page_is_read_back_and_reaches_the_file_at_flush)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    for (uint64_t p = 0; p < 3; p++)
        write_v(f, p, 1, 0);
    atomio_stats st = stats(ctx);
    cr_assert_eq(st.pages_staged, 3);
    cr_assert_eq(st.staged_now, 3);
    cr_assert_eq(st.batches, 3, "one batch per write call");
    /* Staged, not written: the file does not have it yet (the control for the reads below). */
    cr_assert(!in_file(1, 1), "a staged page is already in the file");
    uint8_t got[PS], want[PS];
    cr_assert_eq(atomio_read(f, 1, got), 0);
    page_of(want, 1, 1);
    cr_assert(memcmp(got, want, PS) == 0, "atomio_read() did not see the staged page");
    cr_assert_eq(stats(ctx).staged_reads, 1);

    cr_assert_eq(atomio_ctx_flush(ctx), 0);
    for (uint64_t p = 0; p < 3; p++)
        cr_assert(in_file(p, 1), "page %llu not in place after atomio_ctx_flush()",
                  (unsigned long long)p);
    st = stats(ctx);
    cr_assert_eq(st.staged_now, 0);
    cr_assert_geq(st.group_commits, 1);
    cr_assert_gt(st.store_bytes_used, 0, "copies awaiting the engine's sync");
    cr_assert_eq(atomio_read(f, 1, got), 0);
    cr_assert_eq(stats(ctx).staged_reads, 1, "a read after the flush came from staging");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(write_behind, sync_puts_pages_in_place_and_releases_their_copies)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 7, 1, 0);
    cr_assert(!in_file(7, 1));
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert(in_file(7, 1), "atomio_sync() returned before the staged page was in place");
    atomio_stats st = stats(ctx);
    cr_assert_eq(st.staged_now, 0);
    cr_assert_eq(st.store_bytes_used, 0, "the sync covered the copy: it is released");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(write_behind, dsync_write_and_fence_put_pages_in_place)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 2, 1, ATOMIO_WRITE_DSYNC);
    cr_assert(in_file(2, 1), "a DSYNC write returned with its page not in place");
    write_v(f, 3, 1, 0);
    cr_assert(!in_file(3, 1));
    cr_assert_eq(atomio_file_fence(f), 0);
    cr_assert(in_file(3, 1), "atomio_file_fence() left a staged page behind");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(write_behind, newest_staged_copy_wins)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 4, 1, 0);
    write_v(f, 4, 2, 0);
    /* And within one batch: the later entry is the newer copy. */
    uint8_t a[PS], b[PS];
    page_of(a, 4, 3);
    page_of(b, 4, 4);
    atomio_page_write w[2] = {{.file = f, .page_no = 4, .page = a},
                              {.file = f, .page_no = 4, .page = b}};
    cr_assert_eq(atomio_write_batch(ctx, w, 2, 0), 2);
    uint8_t got[PS];
    cr_assert_eq(atomio_read(f, 4, got), 0);
    cr_assert(memcmp(got, b, PS) == 0, "atomio_read() returned an older staged copy");
    cr_assert_eq(atomio_ctx_flush(ctx), 0);
    cr_assert(in_file(4, 4), "an older staged copy went in place last");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(write_behind, full_staging_makes_writers_lead_rounds)
{
    atomio_ctx_opts co = wb_opts(64u << 10); /* 16 slots of 4 KiB: a round every 4 pages */
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    for (uint64_t p = 0; p < 100; p++)
        write_v(f, p, 1, 0);
    atomio_stats st = stats(ctx);
    cr_assert_eq(st.pages_staged, 100);
    cr_assert_lt(st.staged_now, 16);
    cr_assert_geq(st.group_commits, 100 / 16, "rounds ran as the staging filled");
    cr_assert_eq(atomio_ctx_flush(ctx), 0);
    for (uint64_t p = 0; p < 100; p++)
        cr_assert(in_file(p, 1), "page %llu lost", (unsigned long long)p);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(write_behind, modes_cannot_mix_in_one_instance_and_sizes_are_checked)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_ctx_opts other = co;
    other.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    atomio_ctx *c2 = NULL;
    int r = atomio_ctx_open(&other, &c2);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED, "a deferred process joined a write-behind instance: %s",
                 atomio_err_name(r));
    cr_assert(strstr(atomio_last_reason(), "write-behind"), "reason: %s", atomio_last_reason());
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    /* The other way round. */
    ctx = t_ctx_open(&other);
    r = atomio_ctx_open(&co, &c2);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED, "%s", atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    atomio_ctx_opts bad = wb_opts(1000);
    r = atomio_ctx_open(&bad, &c2);
    cr_assert_eq(r, ATOMIO_E_INVAL, "write_behind_bytes 1000: %s", atomio_err_name(r));
    bad.write_behind_bytes = 2ull << 30;
    r = atomio_ctx_open(&bad, &c2);
    cr_assert_eq(r, ATOMIO_E_INVAL, "write_behind_bytes 2 GiB: %s", atomio_err_name(r));
    cr_assert_eq(atomio_ctx_flush(NULL), ATOMIO_E_INVAL);
}

/* child_open() -- in a forked child (no Criterion there): another process of the instance
 * with its own ctx and the data file; exits 2 or 3 if it cannot open them. */
static atomio_file *
child_open(const atomio_ctx_opts *co, atomio_ctx **c)
{
    if (atomio_ctx_open(co, c) < 0)
        _exit(2);
    atomio_file_opts fo = t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, 0);
    fo.file_id = FILE_ID;
    atomio_file *cf = NULL;
    if (atomio_file_open(*c, dpath, &fo, &cf) < 0)
        _exit(3);
    return cf;
}

/* child_stage() -- in a forked child: child_open(), then pages 0..n-1 written at version 2
 * (staged); exits 4 if a write fails. */
static atomio_ctx *
child_stage(const atomio_ctx_opts *co, uint64_t n)
{
    atomio_ctx *c = NULL;
    atomio_file *cf = child_open(co, &c);
    for (uint64_t p = 0; p < n; p++) {
        uint8_t pg[PS];
        page_of(pg, p, 2);
        if (atomio_write(cf, p, pg, 0) < 0)
            _exit(4);
    }
    return c;
}

/* ---- a page that cannot go in place ---------------------------------------------------------- */

static int data_fd_fail = 0; /* in-place writes to the data file fail with EIO */

/* fd_is() -- whether fd is open on the file at path. */
static bool
fd_is(int fd, const char *path)
{
    char link[64], target[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strcmp(target, path) == 0;
}

/* is_data_fd() -- whether fd is open on the test's data file (not the store). */
static bool
is_data_fd(int fd)
{
    return fd_is(fd, dpath);
}

static ssize_t
failing_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if (data_fd_fail && is_data_fd(fd))
        return -EIO;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

Test(write_behind, failed_in_place_write_keeps_the_copy_for_recovery)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 5, 1, 0);
    cr_assert_eq(atomio_sync(f), 0);
    write_v(f, 5, 2, 0);
    atomio__sys.pwritev2 = failing_pwritev2;
    data_fd_fail = 1;
    int r = atomio_ctx_flush(ctx);
    cr_assert_eq(r, ATOMIO_E_FAILED, "flush with the in-place write failing: %s",
                 atomio_err_name(r));
    data_fd_fail = 0;
    /* Sticky for the instance: the engine learns at its next sync, and writes stop. */
    cr_assert_eq(atomio_sync(f), ATOMIO_E_FAILED);
    uint8_t p[PS];
    page_of(p, 6, 1);
    cr_assert_eq(atomio_write(f, 6, p, 0), ATOMIO_E_FAILED);
    cr_assert(in_file(5, 1), "the failed write changed the file");
    atomio__sys = atomio__sys_real;
    (void)atomio_ctx_close(ctx);

    /* Reopen: recovery applies the kept copy. */
    co.flags |= ATOMIO_CTX_NO_RECOVER;
    ctx = t_ctx_open(&co);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, 0, "recovery: %s (%s)", atomio_err_name(r), atomio_last_reason());
    cr_assert(in_file(5, 2), "recovery did not apply the kept copy (restored %llu)",
              (unsigned long long)rep.pages_restored);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- a store that cannot take a round ----------------------------------------------------- */

static int store_fd_fail = 0; /* store writes fail with ENOSPC */

static ssize_t
full_store_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    char spath[sizeof(dwdir) + 32];
    snprintf(spath, sizeof(spath), "%s/%s", dwdir, ATOMIO_DW_STORE_FILE);
    if (store_fd_fail && fd_is(fd, spath))
        return -ENOSPC;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

/*
 * A round whose store write fails with an errno other than EIO fails the leader's store; the
 * instance's write-behind ends with it, so another context of the instance does not go on
 * writing rounds through a store the leader no longer trusts.
 */
Test(write_behind, failed_store_write_ends_write_behind_for_every_context)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *a = t_ctx_open(&co);
    atomio_ctx *b = t_ctx_open(&co);
    atomio_file *fa = open_file(a);
    atomio_file *fb = open_file(b);
    write_v(fa, 1, 1, 0);
    write_v(fb, 2, 1, 0);
    atomio__sys.pwritev2 = full_store_pwritev2;
    store_fd_fail = 1;
    int r = atomio_ctx_flush(a);
    cr_assert_lt(r, 0, "flush with the store write failing: %s", atomio_err_name(r));
    store_fd_fail = 0;
    /* The store takes writes again, but the run is over for the other context too. */
    r = atomio_ctx_flush(b);
    cr_assert_eq(r, ATOMIO_E_STORE_FAILED, "the other context's flush: %s",
                 atomio_err_name(r));
    cr_assert_eq(atomio_sync(fb), ATOMIO_E_STORE_FAILED);
    uint8_t p[PS];
    page_of(p, 3, 1);
    cr_assert_eq(atomio_write(fb, 3, p, 0), ATOMIO_E_STORE_FAILED);
    cr_assert(!in_file(1, 1) && !in_file(2, 1), "a page went in place without its copy");
    atomio__sys = atomio__sys_real;
    (void)atomio_ctx_close(b);
    (void)atomio_ctx_close(a);
    /* A new run of the instance starts clean. */
    atomio_ctx *c = t_ctx_open(&co);
    atomio_file *fc = open_file(c);
    write_v(fc, 1, 2, 0);
    cr_assert_eq(atomio_sync(fc), 0);
    cr_assert(in_file(1, 2));
    cr_assert_eq(atomio_ctx_close(c), 0);
}

/* ---- a leader that dies mid-round ------------------------------------------------------------ */

static int die_in_place = 0;

static ssize_t
dying_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if (die_in_place && is_data_fd(fd))
        raise(SIGKILL); /* after its records were written and made durable */
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

Test(write_behind, round_of_a_dead_leader_is_led_again)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 0, 1, 0);
    cr_assert_eq(atomio_sync(f), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        atomio_ctx *c = child_stage(&co, 8);
        atomio__sys.pwritev2 = dying_pwritev2;
        die_in_place = 1;
        if (atomio_ctx_flush(c) < 0) /* dies leading the round */
            _exit(6);
        _exit(5);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child should have died mid-round (status 0x%x)", status);
    cr_assert(!in_file(1, 2), "the dead leader's round got in place before it died");
    /* This process takes the round over. */
    uint8_t got[PS], want[PS];
    cr_assert_eq(atomio_read(f, 1, got), 0);
    page_of(want, 1, 2);
    cr_assert(memcmp(got, want, PS) == 0, "the dead leader's staged page is not readable");
    int r = atomio_ctx_flush(ctx);
    cr_assert_eq(r, 0, "flush after the leader died: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    for (uint64_t p = 0; p < 8; p++)
        cr_assert(in_file(p, 2), "page %llu of the dead leader's round is not in place",
                  (unsigned long long)p);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- syncs while another process stages ------------------------------------------------------ */

Test(write_behind, ctx_sync_and_durability_switch_while_another_process_stages, .timeout = 60)
{
    atomio_ctx_opts co = wb_opts(64u << 10); /* small: rounds all the time */
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 0, 1, 0);
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        atomio_ctx *c = NULL;
        atomio_file *cf = child_open(&co, &c);
        uint64_t until = atomio__now_ns() + 1500ull * 1000 * 1000;
        for (uint32_t v = 2; atomio__now_ns() < until; v++) {
            uint8_t pg[PS];
            page_of(pg, 1 + v % 32, v);
            if (atomio_write(cf, 1 + v % 32, pg, 0) < 0)
                _exit(4);
        }
        _exit(atomio_ctx_close(c) == 0 ? 0 : 5);
    }
    /* The other process's pages are staged between this one's flush and its per-file syncs:
     * those syncs, made under the ctx's file-list lock, must not lead a round (which takes
     * that lock to find its own descriptors). */
    uint64_t until = atomio__now_ns() + 1500ull * 1000 * 1000;
    uint32_t n = 0;
    while (atomio__now_ns() < until) {
        int r = atomio_ctx_sync(ctx);
        cr_assert_eq(r, 0, "atomio_ctx_sync: %s", atomio_err_name(r));
        if (n++ % 8 == 0) {
            cr_assert_eq(atomio_ctx_set_durability(ctx, 0), 0);
            cr_assert_eq(atomio_ctx_set_durability(ctx, 1), 0);
        }
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status 0x%x", status);
    cr_assert_gt(n, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- closing -------------------------------------------------------------------------------- */

/*
 * last_close() -- a child stages pages 0-3 through a ctx of its own and then closes it, or is
 * SIGKILLed with it open (killed). Either way the parent's close is the last living one and
 * must put the pages in place; the child's close must not.
 */
static void
last_close(bool killed)
{
    atomio_ctx_opts co = wb_opts(0);
    atomio_ctx *ctx = t_ctx_open(&co);
    atomio_file *f = open_file(ctx);
    write_v(f, 0, 1, 0);
    cr_assert_eq(atomio_sync(f), 0);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        atomio_ctx *c = child_stage(&co, 4);
        if (!killed)
            _exit(atomio_ctx_close(c) == 0 ? 0 : 5); /* not the last: leaves them staged */
        if (write(ready[1], "s", 1) != 1)
            _exit(6);
        pause(); /* killed with its context open */
        _exit(7);
    }
    close(ready[1]);
    if (killed) {
        char c;
        cr_assert_eq(read(ready[0], &c, 1), 1, "the child staged its pages");
        cr_assert_eq(stats(ctx).staged_now, 4); /* read while the child lives: nothing to reap */
        kill(pid, SIGKILL);
    }
    close(ready[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (killed) {
        cr_assert(WIFSIGNALED(status), "child status 0x%x", status);
    } else {
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
        cr_assert_eq(stats(ctx).staged_now, 4, "the child's close flushed (or lost) its pages");
    }
    cr_assert(!in_file(1, 2), "the child's close put its pages in place");
    /* The killed child's entry is still in the table (nothing has reaped it: reading the stats
     * would), and the parent's close must not count it. */
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    for (uint64_t p = 0; p < 4; p++)
        cr_assert(in_file(p, 2), "page %llu still staged after the last living context closed",
                  (unsigned long long)p);
}

Test(write_behind, only_the_last_context_to_close_flushes)
{
    last_close(false);
}

Test(write_behind, the_last_living_context_flushes_when_another_was_killed)
{
    last_close(true);
}
