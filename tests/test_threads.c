/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c -- one ctx, many engine threads at once. Worker threads write disjoint pages
 * (single writes and batches, buffers from atomio_page_alloc) for a couple of seconds while
 * short-lived threads come and go (rings handed back and reused) and a reader polls stats and
 * file info; then every page must read back as the last content its owner wrote. Runs on the
 * scratch directory (UNSAFE, no root needed, so the TSan job covers it everywhere) and on a
 * loop-mounted XFS with DIRECT_ATOMIC (RWF_ATOMIC through io_uring), and on the scratch
 * directory with DOUBLEWRITE in write-behind mode (threads staging pages, leading rounds and
 * reading staged pages back). Meant to be run under TSan too (-DCMAKE_BUILD_TYPE=Tsan): a
 * clean run has no report.
 */
#include "helpers.h"
#include "t_core.h"
#ifdef HAVE_LIBURING
#include "submit_uring.h"
#endif

#include <atomio.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS          4
#define PAGES_PER_WORKER 64
#define BATCH            8
#define RUN_NS           2000000000ull /* a couple of seconds */

struct shared {
    atomio_ctx *ctx;
    atomio_file *files[2];
    uint32_t ps;
    _Atomic int stop;
    _Atomic int errors;
    _Atomic uint64_t writes;
};

struct worker {
    struct shared *sh;
    int id;
    uint32_t version[2][PAGES_PER_WORKER]; /* last version written per page, 0 = never */
    int first_err;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
seed_of(int file, uint64_t page_no, uint32_t version)
{
    return ((uint64_t)file << 60) ^ (page_no << 24) ^ version;
}

static void
record_error(struct worker *w, int r)
{
    if (!w->first_err)
        w->first_err = r;
    atomic_fetch_add(&w->sh->errors, 1);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    uint32_t ps = sh->ps;
    unsigned char *bufs = atomio_page_alloc(sh->ctx, ps, BATCH);
    if (!bufs) {
        record_error(w, -12);
        return NULL;
    }
    uint64_t rnd = 0x9E3779B97F4A7C15ull * (uint64_t)(w->id + 1);
    uint32_t iter = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        iter++;
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        int file = (int)(rnd & 1);
        size_t n = iter % 3 == 0 ? 1 : BATCH;
        atomio_page_write batch[BATCH];
        /* Distinct pages of this worker's range in one batch: BATCH consecutive slots from a
         * random start, so no page appears twice. */
        unsigned start = (unsigned)(rnd >> 8) % PAGES_PER_WORKER;
        for (size_t i = 0; i < n; i++) {
            unsigned slot = (start + (unsigned)i) % PAGES_PER_WORKER;
            uint64_t page_no = (uint64_t)w->id * PAGES_PER_WORKER + slot;
            uint32_t v = w->version[file][slot] + 1;
            t_fill(bufs + i * ps, ps, seed_of(file, page_no, v));
            batch[i] = (atomio_page_write){
                .file = sh->files[file], .page_no = page_no, .page = bufs + i * ps};
        }
        int r;
        if (n == 1) {
            r = atomio_write(sh->files[file], batch[0].page_no, batch[0].page, 0);
            batch[0].result = r;
        } else {
            r = atomio_write_batch(sh->ctx, batch, n, 0);
            if (r != (int)n)
                record_error(w, r < 0 ? r : -5);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned slot = (unsigned)(batch[i].page_no % PAGES_PER_WORKER);
            if (batch[i].result == 0)
                w->version[file][slot]++;
            else
                record_error(w, batch[i].result);
        }
        atomic_fetch_add_explicit(&sh->writes, n, memory_order_relaxed);
    }
    atomio_page_free(sh->ctx, bufs, ps, BATCH);
    return NULL;
}

/* A thread that lives for one write: rings must be leased, returned and reused safely. */
static void *
ephemeral_main(void *arg)
{
    struct shared *sh = arg;
    uint32_t ps = sh->ps;
    unsigned char *pg = atomio_page_alloc(sh->ctx, ps, 1);
    if (!pg) {
        atomic_fetch_add(&sh->errors, 1);
        return NULL;
    }
    memset(pg, 0xee, ps);
    /* Pages past the workers' ranges: nobody checks their content, only the result. */
    uint64_t page_no = (uint64_t)WORKERS * PAGES_PER_WORKER + 1;
    if (atomio_write(sh->files[0], page_no, pg, 0) != 0)
        atomic_fetch_add(&sh->errors, 1);
    atomio_page_free(sh->ctx, pg, ps, 1);
    return NULL;
}

static void *
churn_main(void *arg)
{
    struct shared *sh = arg;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        pthread_t t;
        if (pthread_create(&t, NULL, ephemeral_main, sh) != 0) {
            atomic_fetch_add(&sh->errors, 1);
            break;
        }
        pthread_join(t, NULL);
    }
    return NULL;
}

static void *
reader_main(void *arg)
{
    struct shared *sh = arg;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        atomio_stats st = {.size = sizeof(st)};
        atomio_file_info info = {.size = sizeof(info)};
        if (atomio_ctx_get_stats(sh->ctx, &st) != 0 ||
            atomio_file_get_info(sh->files[0], &info) != 0)
            atomic_fetch_add(&sh->errors, 1);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void
run_threads(const char *dir, uint32_t ps, uint32_t path, uint32_t submitter)
{
    struct shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.ps = ps;
    bool dw = path == ATOMIO_PATH_DOUBLEWRITE;
    char dwdir[PATH_MAX];
    snprintf(dwdir, sizeof(dwdir), "%s", t_join(dir, "dw"));
    if (dw)
        cr_assert_eq(mkdir(dwdir, 0700), 0);
    atomio_ctx_opts o = t_ctx_opts(dw ? dwdir : NULL);
    o.submitter = submitter;
    if (dw) {
        /* Write-behind with a small staging: rounds led by every thread, staged pages read. */
        o.doublewrite_mode = ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
        o.doublewrite_max_page_size = ps;
        o.write_behind_bytes = 64u << 10;
    }
    sh.ctx = t_ctx_open(&o);
    for (int i = 0; i < 2; i++) {
        atomio_file_opts fo =
            t_file_opts(ps, path, dw ? ATOMIO_IO_BUFFERED : ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
        int r = atomio_file_open(sh.ctx, t_join(dir, i ? "f1" : "f0"), &fo, &sh.files[i]);
        if (r == ATOMIO_E_PATH_UNSUPPORTED)
            cr_skip_test("skipped: %s cannot take path %s here", dir, atomio_path_name(path));
        cr_assert_eq(r, 0, "file open: %s", atomio_strerror(r));
    }

    struct worker *w = calloc(WORKERS, sizeof(*w));
    pthread_t wt[WORKERS], churn, reader;
    for (int i = 0; i < WORKERS; i++) {
        w[i].sh = &sh;
        w[i].id = i;
        cr_assert_eq(pthread_create(&wt[i], NULL, worker_main, &w[i]), 0);
    }
    cr_assert_eq(pthread_create(&churn, NULL, churn_main, &sh), 0);
    cr_assert_eq(pthread_create(&reader, NULL, reader_main, &sh), 0);
    uint64_t t0 = now_ns();
    while (now_ns() - t0 < RUN_NS) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&sh.stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(wt[i], NULL);
    pthread_join(churn, NULL);
    pthread_join(reader, NULL);

    for (int i = 0; i < WORKERS; i++)
        cr_assert_eq(w[i].first_err, 0, "worker %d: %s", i, atomio_strerror(w[i].first_err));
    cr_assert_eq(atomic_load(&sh.errors), 0);
    cr_assert_gt(atomic_load(&sh.writes), (uint64_t)WORKERS * BATCH, "hardly anything written");

    /* Every page is exactly the last version its owner wrote. */
    unsigned char *got = atomio_page_alloc(sh.ctx, ps, 1);
    unsigned char *want = malloc(ps);
    for (int i = 0; i < WORKERS; i++) {
        for (int file = 0; file < 2; file++) {
            for (unsigned slot = 0; slot < PAGES_PER_WORKER; slot++) {
                uint64_t page_no = (uint64_t)i * PAGES_PER_WORKER + slot;
                uint32_t v = w[i].version[file][slot];
                cr_assert_eq(atomio_read(sh.files[file], page_no, got), 0);
                if (v)
                    t_fill(want, ps, seed_of(file, page_no, v));
                else
                    memset(want, 0, ps);
                cr_assert(memcmp(got, want, ps) == 0,
                          "file %d page %llu is not version %u of worker %d", file,
                          (unsigned long long)page_no, v, i);
            }
        }
    }
    free(want);
    atomio_page_free(sh.ctx, got, ps, 1);

#ifdef HAVE_LIBURING
    struct atomio_uring_diag d;
    if (submitter == ATOMIO_SUBMIT_URING && atomio__uring_diag(sh.ctx, &d) == 0)
        cr_assert_leq(d.rings, WORKERS + 3, "%u rings for at most %d concurrent threads", d.rings,
                      WORKERS + 3);
#endif
    if (dw) {
        atomio_stats st = {.size = sizeof(st)};
        cr_assert_eq(atomio_ctx_get_stats(sh.ctx, &st), 0);
        cr_assert_geq(st.pages_staged, atomic_load(&sh.writes), "pages written were not staged");
        cr_assert_gt(st.group_commits, 1, "no round ran while the threads wrote");
    }
    atomio_file_info info = {.size = sizeof(info)};
    cr_assert_eq(atomio_file_get_info(sh.files[0], &info), 0);
    cr_log_info("%llu pages written by %d threads, submitter %s",
                (unsigned long long)atomic_load(&sh.writes), WORKERS,
                atomio_submitter_name(info.submitter));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(atomio_file_close(sh.files[i]), 0);
    cr_assert_eq(atomio_ctx_close(sh.ctx), 0);
    free(w);
}

Test(threads, disjoint_pages_scratch_dir_uring)
{
    char dir[PATH_MAX];
    t_tmpdir(dir, sizeof(dir));
    run_threads(dir, 4096, ATOMIO_PATH_UNSAFE, ATOMIO_SUBMIT_URING);
    t_rmtree(dir);
}

Test(threads, disjoint_pages_scratch_dir_sync)
{
    char dir[PATH_MAX];
    t_tmpdir(dir, sizeof(dir));
    run_threads(dir, 8192, ATOMIO_PATH_UNSAFE, ATOMIO_SUBMIT_SYNC);
    t_rmtree(dir);
}

Test(threads, disjoint_pages_scratch_dir_write_behind)
{
    char dir[PATH_MAX];
    t_tmpdir(dir, sizeof(dir));
    run_threads(dir, 4096, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_SUBMIT_URING);
    t_rmtree(dir);
}

Test(threads, disjoint_pages_xfs_direct_atomic)
{
    struct t_fs xfs;
    t_fs_mount(&xfs, "xfs", 300);
    run_threads(xfs.dir, 16384, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_SUBMIT_URING);
    t_fs_umount(&xfs);
}
