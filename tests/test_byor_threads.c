/* SPDX-License-Identifier: MIT */
/*
 * test_byor_threads.c -- bring-your-own-ring from several engine threads at once on one ctx:
 * each thread owns an engine queue (t_engine's interpreter) and drives staged doublewrite
 * batches, while another thread writes through atomio_write_batch() and one more prepares and
 * completes atomic-style SQEs for an UNSAFE file. Every page must end up as its thread last
 * wrote it, and the counters must add up. Needs no root (a scratch directory, page cache), so
 * it also runs under TSan.
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "helpers.h"
#include "t_core.h"
#include "t_engine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PS     4096u
#define ROUNDS 40
#define PER    4 /* pages per batch */

static atomio_ctx *ctx;
static atomio_file *dwf[2];
static atomio_file *uf;

/* Thread t owns pages [t * 64, t * 64 + 64) of both doublewrite files. */
static void
content(char *buf, int t, uint64_t page, int round)
{
    t_fill(buf, PS, (uint64_t)t * 1000003u + page * 7919u + (uint64_t)round);
}

/*
 * staged_thread() -- an engine thread: stage PER pages, run every SQE through its own queue,
 * retrying the stage while the ring is full (-EAGAIN).
 */
static void *
staged_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    char *pages = aligned_alloc(PS, PER * PS);
    for (int round = 0; round < ROUNDS; round++) {
        atomio_page_write w[PER];
        for (int i = 0; i < PER; i++) {
            uint64_t p = (uint64_t)t * 64 + (uint64_t)((round * PER + i) % 64);
            content(pages + (size_t)i * PS, t, p, round);
            w[i] = (atomio_page_write){
                .file = dwf[i % 2], .page_no = p, .page = pages + (size_t)i * PS};
        }
        atomio_doublewrite_batch *b;
        int r;
        while ((r = atomio_doublewrite_stage(ctx, w, PER, 0, &b)) == -EAGAIN)
            sched_yield();
        cr_assert_eq(r, 0, "thread %d stage: %s", t, atomio_err_name(r));
        struct io_uring_sqe sqe;
        cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
        cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);
        cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
        cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe)), 0);
        struct io_uring_sqe ip[PER];
        for (int i = 0; i < PER; i++)
            cr_assert_eq(atomio_doublewrite_prep_inplace(b, (size_t)i, &ip[i]), 0);
        for (int i = PER; i-- > 0;)
            cr_assert_eq(atomio_doublewrite_complete_inplace(b, (size_t)i, t_eng_exec(&ip[i])), 0);
        cr_assert_eq(atomio_doublewrite_done(b, NULL), PER);
    }
    free(pages);
    return NULL;
}

/* library_thread() -- the library-driven protocol on the same store, its own pages. */
static void *
library_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    char *pages = aligned_alloc(PS, PER * PS);
    for (int round = 0; round < ROUNDS; round++) {
        atomio_page_write w[PER];
        for (int i = 0; i < PER; i++) {
            uint64_t p = (uint64_t)t * 64 + (uint64_t)((round * PER + i) % 64);
            content(pages + (size_t)i * PS, t, p, round);
            w[i] = (atomio_page_write){
                .file = dwf[i % 2], .page_no = p, .page = pages + (size_t)i * PS};
        }
        cr_assert_eq(atomio_write_batch(ctx, w, PER, 0), PER);
    }
    free(pages);
    return NULL;
}

/* prep_thread() -- single-SQE writes and completions on another file, concurrently. */
static void *
prep_thread(void *arg)
{
    (void)arg;
    char *page = atomio_page_alloc(ctx, PS, 1);
    for (int round = 0; round < ROUNDS * PER; round++) {
        content(page, 9, (uint64_t)round % 16, round);
        struct io_uring_sqe sqe;
        cr_assert_eq(atomio_prep_write(uf, &sqe, (uint64_t)round % 16, page, 0), 0);
        cr_assert_eq(atomio_complete_write(uf, t_eng_exec(&sqe), PS), 0);
    }
    atomio_page_free(ctx, page, PS, 1);
    return NULL;
}

Test(byor_threads, engines_and_library_share_one_ctx)
{
    unsetenv("ATOMIO_SUBMITTER");
    unsetenv("ATOMIO_PATH");
    char dir[256], dblwr[300];
    t_tmpdir(dir, sizeof(dir));
    snprintf(dblwr, sizeof(dblwr), "%s/dblwr", dir);
    cr_assert_eq(mkdir(dblwr, 0700), 0);
    atomio_ctx_opts o = t_ctx_opts(dblwr);
    o.doublewrite_store_bytes = 256u << 10; /* a small ring: staging meets -EAGAIN */
    o.doublewrite_batch_pages = PER;
    o.doublewrite_max_page_size = PS;
    ctx = t_ctx_open(&o);
    const char *names[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        atomio_file_opts fo =
            t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
        dwf[i] = t_file_open(ctx, t_join(dir, names[i]), &fo);
    }
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    uf = t_file_open(ctx, t_join(dir, "u"), &fo);

    enum { NSTAGED = 3 };
    pthread_t th[NSTAGED + 2];
    for (int t = 0; t < NSTAGED; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, staged_thread, (void *)(intptr_t)t), 0);
    cr_assert_eq(pthread_create(&th[NSTAGED], NULL, library_thread, (void *)(intptr_t)NSTAGED), 0);
    cr_assert_eq(pthread_create(&th[NSTAGED + 1], NULL, prep_thread, NULL), 0);
    for (int t = 0; t < NSTAGED + 2; t++)
        pthread_join(th[t], NULL);

    /* Each thread's last round for each of its pages. */
    char *want = aligned_alloc(PS, PS), *got = aligned_alloc(PS, PS);
    for (int t = 0; t <= NSTAGED; t++) {
        for (int round = ROUNDS - 64 / PER; round < ROUNDS; round++) {
            for (int i = 0; i < PER; i++) {
                uint64_t p = (uint64_t)t * 64 + (uint64_t)((round * PER + i) % 64);
                content(want, t, p, round);
                cr_assert_eq(atomio_read(dwf[i % 2], p, got), 0);
                cr_assert(memcmp(got, want, PS) == 0, "thread %d page %llu", t,
                          (unsigned long long)p);
            }
        }
    }
    atomio_stats s = {.size = sizeof(s)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], (uint64_t)(NSTAGED + 1) * ROUNDS * PER);
    cr_assert_eq(s.pages[ATOMIO_PATH_UNSAFE], (uint64_t)ROUNDS * PER);
    cr_assert_eq(s.batches, (uint64_t)(NSTAGED + 1) * ROUNDS);
    cr_assert_eq(s.short_writes + s.downgrades, 0);
    free(want);
    free(got);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_rmtree(dir);
}
