/* SPDX-License-Identifier: MIT */
/*
 * test_buffered_crash.c -- BUFFERED_ATOMIC under the crash simulator.
 *
 * The simulated buffered-atomic kernel (sim_kernel.c) sits on the simulated device
 * (sim_device.c). The kernel's contract is that an accepted buffered RWF_ATOMIC|RWF_DSYNC write
 * reaches the media whole or not at all, and is durable when it returns; it hands the write to
 * the device flagged atomic, and the device keeps such a write whole or drops it in a crash
 * image. For every crash point of a workload and every pattern of the sector pieces that can
 * matter (exhaustive up to 2^10, else 256 random patterns; fewer under sanitizers), the device is
 * rebooted on the image, the ctx reopened (recovery), and every page must equal:
 *   - the version of the last write call that returned success before the crash, or
 *   - the version of a call that had started by then (in flight, or failed by the crash);
 * never a mix (torn) and never an older version (lost).
 *
 * Workloads: pure BUFFERED_ATOMIC; and BUFFERED_ATOMIC whose kernel stops taking atomic writes
 * half-way (EOPNOTSUPP), so the file is downgraded to DOUBLEWRITE at run time and its later
 * pages are torn in place and restored by recovery. A sabotaged kernel that hands its writes
 * down as plain writes must be caught tearing pages.
 */
#include "atomio_internal.h"
#include "crash_explorer.h"
#include "helpers.h"
#include "sim_device.h"
#include "sim_kernel.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PS       4096u
#define NPAGES   6
#define MAXW     4
#define MAXSTEPS 12
#define MAXVER   16
/* tear patterns per crash point: every one up to 2^EXHAUSTIVE_BITS, else SAMPLED_PATTERNS
 * random ones (sanitizer builds: every crash point still, fewer patterns) */
#define EXHAUSTIVE_BITS  (CRASH_SANITIZED ? 6 : 10)
#define SAMPLED_PATTERNS (CRASH_SANITIZED ? 32 : 256)

struct wl_write {
    uint64_t page;
    uint32_t ver;
};

struct wl_step {
    int n; /* 1: atomio_write(); more: atomio_write_batch() */
    struct wl_write w[MAXW];
};

struct wl {
    const char *name;
    int disable_at; /* step from which the kernel refuses (EOPNOTSUPP); -1: never */
    bool sabotage;  /* kernel hands accepted writes down as plain writes */
    int nsteps;
    struct wl_step steps[MAXSTEPS];
};

struct call {
    long op_start, op_end;
    int results[MAXW];
    bool ran;
};

struct tally {
    uint64_t states, torn, lost, unexpected;
};

static char root[256], dwdir[300], fpath[300];

static void
setup(void)
{
    unsetenv("ATOMIO_PATH");
    unsetenv("ATOMIO_SUBMITTER");
    t_tmpdir(root, sizeof(root));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", root);
    snprintf(fpath, sizeof(fpath), "%s/data.db", root);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
}

static void
teardown(void)
{
    sim_kernel_uninstall();
    sim_fini();
    t_rmtree(root);
}

TestSuite(buffered_crash, .init = setup, .fini = teardown);

static void
content(uint8_t *buf, uint64_t page, uint32_t ver)
{
    t_fill(buf, PS, 0xB0FFE7EDull + page * 1009u + (uint64_t)ver * 7919u);
}

/* fresh_device() -- a new device holding the data file at version 0 (durable), with the
 * simulated buffered-atomic kernel on top of it. */
static void
fresh_device(const struct wl *wl)
{
    sim_kernel_uninstall();
    sim_fini();
    sim_init(root);
    sim_set_atomic_caps(true, INT_MAX); /* the device models atomic writes */
    sim_kernel_install(
        &(struct sim_kernel_cfg){.fs_block = PS, .folio_order = -1, .pass_atomic = !wl->sabotage});
    uint8_t *buf = malloc((size_t)PS * NPAGES);
    cr_assert(buf);
    for (uint64_t p = 0; p < NPAGES; p++)
        content(buf + p * PS, p, 0);
    sim_file_put(fpath, buf, (size_t)PS * NPAGES);
    free(buf);
}

static atomio_ctx *
ctx_open_on_sim(uint32_t flags)
{
    atomio_ctx_opts o = t_ctx_opts(dwdir); /* the sync submitter: both simulators sit on the seam */
    o.doublewrite_batch_pages = 8;
    o.doublewrite_max_page_size = PS;
    o.flags = flags;
    atomio_ctx *ctx = NULL;
    return atomio_ctx_open(&o, &ctx) == 0 ? ctx : NULL;
}

/* run_workload() -- returns the path the file got at open (0 if the device died first). */
static uint32_t
run_workload(const struct wl *wl, struct call *calls)
{
    memset(calls, 0, sizeof(*calls) * MAXSTEPS);
    uint32_t path = 0;
    atomio_ctx *ctx = ctx_open_on_sim(0);
    if (!ctx)
        return 0;
    atomio_file_opts fo = t_file_opts(PS, ATOMIO_PATH_AUTO, ATOMIO_IO_BUFFERED, 0);
    fo.file_id = 42;
    atomio_file *f = NULL;
    if (atomio_file_open(ctx, fpath, &fo, &f) < 0)
        goto out;
    atomio_file_info info;
    memset(&info, 0, sizeof(info));
    info.size = sizeof(info);
    if (atomio_file_get_info(f, &info) == 0)
        path = info.path;
    uint8_t *bufs = atomio_page_alloc(ctx, PS, MAXW);
    cr_assert(bufs);
    for (int s = 0; s < wl->nsteps; s++) {
        if (s == wl->disable_at)
            sim_kernel_set_disabled(true);
        const struct wl_step *st = &wl->steps[s];
        atomio_page_write w[MAXW];
        for (int i = 0; i < st->n; i++) {
            content(bufs + (size_t)i * PS, st->w[i].page, st->w[i].ver);
            w[i] = (atomio_page_write){
                .file = f, .page_no = st->w[i].page, .page = bufs + (size_t)i * PS};
        }
        calls[s].ran = true;
        calls[s].op_start = sim_ops();
        if (st->n == 1) {
            calls[s].results[0] = atomio_write(f, w[0].page_no, w[0].page, 0);
        } else {
            int nw = atomio_write_batch(ctx, w, (size_t)st->n, 0);
            (void)nw; /* per-entry results below */
            for (int i = 0; i < st->n; i++)
                calls[s].results[i] = w[i].result;
        }
        calls[s].op_end = sim_ops();
    }
    atomio_page_free(ctx, bufs, PS, MAXW);
out:
    atomio_ctx_close(ctx);
    return path;
}

static bool
page_is(const uint8_t *page, uint64_t p, uint32_t ver)
{
    uint8_t want[PS];
    content(want, p, ver);
    return memcmp(page, want, PS) == 0;
}

/* check_pages() -- every page of the rebooted file against the versions allowed at crash
 * point k (both paths make a page durable when its call returns). */
static void
check_pages(const struct wl *wl, const struct call *calls, long k, struct tally *t)
{
    size_t len;
    const uint8_t *data = sim_file_data(fpath, &len);
    cr_assert(data, "data file vanished");
    for (uint64_t p = 0; p < NPAGES; p++) {
        uint8_t page[PS];
        memset(page, 0, PS);
        if ((p + 1) * PS <= len)
            memcpy(page, data + p * PS, PS);
        uint32_t allowed[MAXSTEPS + 1] = {0};
        int nallowed = 1;
        for (int s = 0; s < wl->nsteps; s++) {
            if (!calls[s].ran)
                continue;
            for (int i = 0; i < wl->steps[s].n; i++) {
                if (wl->steps[s].w[i].page != p)
                    continue;
                uint32_t v = wl->steps[s].w[i].ver;
                if (calls[s].op_end <= k && calls[s].results[i] == 0) {
                    allowed[0] = v;
                    nallowed = 1;
                } else if (calls[s].op_start <= k) {
                    if (calls[s].op_end <= k)
                        t->unexpected++; /* returned an error though the device lived */
                    allowed[nallowed++] = v;
                }
            }
        }
        bool ok = false;
        for (int a = 0; a < nallowed && !ok; a++)
            ok = page_is(page, p, allowed[a]);
        if (ok)
            continue;
        bool older = false;
        for (uint32_t v = 0; v < MAXVER && !older; v++)
            older = page_is(page, p, v);
        if (older)
            t->lost++;
        else
            t->torn++;
        if (getenv("ATOMIO_CRASH_VERBOSE"))
            fprintf(stderr, "%s: crash at op %ld: page %llu %s (want v%u)\n", wl->name, k,
                    (unsigned long long)p, older ? "lost" : "torn", allowed[0]);
    }
}

struct explore_arg {
    const struct wl *wl;
    uint32_t want_path, path; /* the path the file must get, and got in the last run */
    bool stop_at_tear;
    struct call calls[MAXSTEPS];
    struct tally *t;
};

static void
explore_fresh(void *arg)
{
    fresh_device(((struct explore_arg *)arg)->wl);
}

static void
explore_run(void *arg)
{
    struct explore_arg *a = arg;
    a->path = run_workload(a->wl, a->calls);
}

static void
explore_clean_run_done(void *arg)
{
    struct explore_arg *a = arg;
    cr_assert_eq(a->path, a->want_path, "%s: file opened on %s", a->wl->name,
                 atomio_path_name(a->path));
}

/* Reboot on the image: the ctx reopens (recovery runs at open), then every page is checked. */
static bool
explore_check(void *arg, const struct sim_log *log, size_t k, struct sim_image *img)
{
    struct explore_arg *a = arg;
    (void)log;
    sim_install(img);
    a->t->states++;
    atomio_ctx *ctx = ctx_open_on_sim(0);
    cr_assert(ctx, "%s: reopen after crash at op %zu failed", a->wl->name, k);
    atomio_ctx_close(ctx);
    check_pages(a->wl, a->calls, (long)k, a->t);
    return !(a->stop_at_tear && a->t->torn);
}

/*
 * every_crash() -- every crash point k of the workload and every image it can leave
 * (crash_explore()), each rebooted and checked.
 */
static void
every_crash(const struct wl *wl, uint32_t want_path, bool stop_at_tear, struct tally *t)
{
    struct explore_arg a = {.wl = wl, .want_path = want_path, .stop_at_tear = stop_at_tear, .t = t};
    struct crash_explorer x = {
        .name = wl->name,
        .exhaustive_bits = EXHAUSTIVE_BITS,
        .sampled = SAMPLED_PATTERNS,
        .min_ops = 4,
        .arg = &a,
        .fresh_device = explore_fresh,
        .run = explore_run,
        .clean_run_done = explore_clean_run_done,
        .check = explore_check,
    };
    struct crash_counts c = {0};
    crash_explore(&x, &c);
    cr_log_info("%s: %ld device ops", wl->name, c.ops);
}

static const struct wl buffered_only = {
    .name = "buffered",
    .disable_at = -1,
    .nsteps = 6,
    .steps =
        {
            {1, {{0, 1}}},
            {1, {{1, 1}}},
            {3, {{2, 1}, {3, 1}, {0, 2}}},
            {1, {{1, 2}}},
            {2, {{0, 3}, {5, 1}}},
            {1, {{2, 2}}},
        },
};

static const struct wl downgrade = {
    .name = "downgrade",
    .disable_at = 2,
    .nsteps = 5,
    .steps =
        {
            {1, {{0, 1}}},
            {2, {{1, 1}, {2, 1}}},
            {1, {{0, 2}}},         /* EOPNOTSUPP: rewritten through the doublewrite store */
            {2, {{1, 2}, {3, 1}}}, /* doublewrite batch, torn in place at a crash */
            {1, {{2, 2}}},
        },
};

Test(buffered_crash, buffered_atomic_pages_are_old_or_new)
{
    struct tally t = {0};
    every_crash(&buffered_only, ATOMIO_PATH_BUFFERED_ATOMIC, false, &t);
    cr_log_info("%s: %llu crash states", buffered_only.name, (unsigned long long)t.states);
    cr_assert_gt(t.states, 10);
    cr_assert_eq(t.torn, 0, "%llu torn pages", (unsigned long long)t.torn);
    cr_assert_eq(t.lost, 0, "%llu lost pages", (unsigned long long)t.lost);
    cr_assert_eq(t.unexpected, 0, "%llu writes failed on a live device",
                 (unsigned long long)t.unexpected);
}

Test(buffered_crash, runtime_downgrade_to_doublewrite_is_recovered)
{
    struct tally t = {0};
    /* The clean run first: the downgrade happens and later pages take the doublewrite path. */
    struct call calls[MAXSTEPS];
    fresh_device(&downgrade);
    cr_assert_eq(run_workload(&downgrade, calls), ATOMIO_PATH_BUFFERED_ATOMIC);
    for (int s = 0; s < downgrade.nsteps; s++)
        for (int i = 0; i < downgrade.steps[s].n; i++)
            cr_assert_eq(calls[s].results[i], 0, "step %d entry %d: %s", s, i,
                         atomio_err_name(calls[s].results[i]));
    struct sim_kernel_stats ks;
    sim_kernel_get_stats(&ks);
    cr_assert_eq(ks.atomic_ok, 1 + 3, "probe + three atomic pages before the kernel refused");
    cr_assert_gt(ks.atomic_eopnotsupp, 0);

    every_crash(&downgrade, ATOMIO_PATH_BUFFERED_ATOMIC, false, &t);
    cr_log_info("%s: %llu crash states", downgrade.name, (unsigned long long)t.states);
    cr_assert_eq(t.torn, 0, "%llu torn pages", (unsigned long long)t.torn);
    cr_assert_eq(t.lost, 0, "%llu lost pages", (unsigned long long)t.lost);
    cr_assert_eq(t.unexpected, 0);
}

/* The checker is not vacuous: a kernel that breaks the all-or-nothing contract (writes handed
 * down as plain writes, torn at a crash) leaves torn pages behind. */
Test(buffered_crash, sabotaged_kernel_is_caught)
{
    struct wl bad = buffered_only;
    bad.name = "sabotaged";
    bad.sabotage = true;
    struct tally t = {0};
    every_crash(&bad, ATOMIO_PATH_BUFFERED_ATOMIC, true, &t);
    cr_assert_gt(t.torn, 0, "a kernel that tears its atomic writes went unnoticed");
}
