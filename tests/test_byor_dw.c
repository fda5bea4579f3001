/* SPDX-License-Identifier: MIT */
/*
 * test_byor_dw.c -- the staged doublewrite an engine drives from its own ring: the prepared
 * SQEs, the enforced order, staging checks, abandoning, failures of each step, the runtime
 * downgrade handing pages over to it, and equality with atomio_write_batch() (which runs the
 * same protocol steps through the library's submitter). The engine is t_engine: a real
 * io_uring, or an interpreter issuing each SQE through atomio__sys so faults can be injected.
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "helpers.h"
#include "store/store.h"
#include "t_core.h"
#include "t_engine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PS 4096u

enum { K_STORE = 1, K_SYNC = 2, K_INPLACE = 3, K_OWN = 4, K_ATOMIO = 5 };

static uint64_t
ud(unsigned kind, unsigned i)
{
    return ((uint64_t)kind << 56) | i;
}

/* ---- fixtures -------------------------------------------------------------------------- */

struct fx {
    struct t_fs fs;
    char dblwr[PATH_MAX + 8];
    atomio_ctx *ctx;
};

/* ctx_open() -- ring_kib: the store ring in KiB (0: the tests' default). */
static atomio_ctx *
ctx_open(const char *dblwr, uint32_t ring_kib)
{
    /* Comparisons inject faults through the pwritev2 seam and force paths per file: the
     * environment overrides (ATOMIO_SUBMITTER=uring, ATOMIO_PATH) would bypass both. */
    unsetenv("ATOMIO_SUBMITTER");
    unsetenv("ATOMIO_PATH");
    atomio_ctx_opts o = t_ctx_opts(dblwr);
    if (ring_kib)
        o.doublewrite_store_bytes = (uint64_t)ring_kib << 10;
    o.doublewrite_batch_pages = 16;
    o.doublewrite_max_page_size = PS;
    return t_ctx_open(&o);
}

static void
fx_up(struct fx *x, const char *kind, uint32_t ring_kib)
{
    t_fs_mount(&x->fs, kind, kind[0] == 'x' ? 320 : 64);
    snprintf(x->dblwr, sizeof(x->dblwr), "%s/dblwr", x->fs.dir);
    cr_assert_eq(mkdir(x->dblwr, 0700), 0);
    x->ctx = ctx_open(x->dblwr, ring_kib);
}

static atomio_file *
open_as(atomio_ctx *ctx, const char *path, uint32_t forced)
{
    atomio_file_opts o = t_file_opts(PS, forced, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
    o.policy = ATOMIO_POLICY_PREFER_ATOMIC;
    return t_file_open(ctx, path, &o);
}

static void
assert_page(atomio_file *f, uint64_t page_no, const void *want)
{
    char *got = aligned_alloc(PS, PS);
    cr_assert_eq(atomio_read(f, page_no, got), 0);
    cr_assert(memcmp(got, want, PS) == 0, "page %llu has the wrong content",
              (unsigned long long)page_no);
    free(got);
}

static void
assert_nop(const struct io_uring_sqe *sqe)
{
    cr_assert_eq(sqe->opcode, IORING_OP_NOP);
    cr_assert_eq(sqe->len, 0);
    cr_assert_eq(sqe->addr, 0);
}

/* ---- driving a staged batch from the engine -------------------------------------------- */

struct drive {
    atomio_doublewrite_batch *b;
    size_t n;
    int store_res, sync_res;
    int inplace_res[64];
    int inplace_ret[64]; /* what atomio_doublewrite_complete_inplace() said */
    int own_res[64];
    unsigned nown;
    int atomio_res; /* an atomio_prep_write() SQE */
};

static void
drive_cb(void *arg, uint64_t user_data, int res)
{
    struct drive *d = arg;
    unsigned i = (unsigned)(user_data & 0xffffffffu);
    switch (user_data >> 56) {
    case K_STORE:
        d->store_res = res;
        break;
    case K_SYNC:
        d->sync_res = res;
        break;
    case K_INPLACE:
        d->inplace_res[i] = res;
        d->inplace_ret[i] = atomio_doublewrite_complete_inplace(d->b, i, res);
        break;
    case K_OWN:
        d->own_res[i] = res;
        break;
    case K_ATOMIO:
        d->atomio_res = res;
        break;
    default:
        cr_assert_fail("unexpected completion %llx", (unsigned long long)user_data);
    }
}

/* The engine's own unrelated I/O riding along: a plain write to its own file. */
static void
own_write(struct t_eng *e, struct drive *d, int fd, const void *buf)
{
    struct io_uring_sqe *sqe = t_eng_sqe(e);
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_WRITE;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = 512;
    sqe->off = (uint64_t)d->nown * 512;
    sqe->user_data = ud(K_OWN, d->nown++);
}

/*
 * drive() -- the whole staged protocol for w[0..n) on the engine: stage, store write, store
 * fsync, every in-place write, done. own_fd >= 0 adds an unrelated engine write to each
 * submission. Returns atomio_doublewrite_done()'s result; results[] gets the entries' results.
 */
static int
drive(struct t_eng *e, atomio_ctx *ctx, atomio_page_write *w, size_t n, int *results, int own_fd,
      const void *own_buf)
{
    struct drive d;
    memset(&d, 0, sizeof(d));
    d.n = n;
    int r = atomio_doublewrite_stage(ctx, w, n, 0, &d.b);
    cr_assert_eq(r, 0, "stage: %s", atomio_err_name(r));

    struct io_uring_sqe *sqe = t_eng_sqe(e);
    cr_assert_eq(atomio_doublewrite_prep_store(d.b, sqe), 0);
    sqe->user_data = ud(K_STORE, 0);
    if (own_fd >= 0)
        own_write(e, &d, own_fd, own_buf);
    t_eng_run(e, drive_cb, &d);
    r = atomio_doublewrite_complete_store(d.b, d.store_res);
    cr_assert_eq(r, 0, "store write: %s (res %d)", atomio_err_name(r), d.store_res);

    sqe = t_eng_sqe(e);
    cr_assert_eq(atomio_doublewrite_prep_store_sync(d.b, sqe), 0);
    sqe->user_data = ud(K_SYNC, 0);
    if (own_fd >= 0)
        own_write(e, &d, own_fd, own_buf);
    t_eng_run(e, drive_cb, &d);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(d.b, d.sync_res), 0);

    for (size_t i = 0; i < n; i++) {
        sqe = t_eng_sqe(e);
        cr_assert_eq(atomio_doublewrite_prep_inplace(d.b, i, sqe), 0);
        sqe->user_data = ud(K_INPLACE, (unsigned)i);
    }
    if (own_fd >= 0)
        own_write(e, &d, own_fd, own_buf);
    t_eng_run(e, drive_cb, &d);
    for (unsigned i = 0; i < d.nown; i++)
        cr_assert_eq(d.own_res[i], 512, "the engine's own write %u", i);
    return atomio_doublewrite_done(d.b, results);
}

static void
fill_pages(char *pages, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        t_fill(pages + i * PS, PS, seed + i);
}

/* ---- the staged protocol matches atomio_write_batch() ---------------------------------- */

static void
staged_vs_library(int real)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *a1 = open_as(x.ctx, t_join(x.fs.dir, "a1"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *a2 = open_as(x.ctx, t_join(x.fs.dir, "a2"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *l1 = open_as(x.ctx, t_join(x.fs.dir, "l1"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *l2 = open_as(x.ctx, t_join(x.fs.dir, "l2"), ATOMIO_PATH_DOUBLEWRITE);
    enum { N = 12 };
    char *pages = aligned_alloc(PS, (size_t)N * PS); /* any memory: the batch copies */
    fill_pages(pages, N, 100);
    atomio_page_write ws[N], wl[N];
    for (unsigned i = 0; i < N; i++) {
        uint64_t page_no = (uint64_t)i * 5 + 2;
        ws[i] = (atomio_page_write){
            .file = i % 2 ? a2 : a1, .page_no = page_no, .page = pages + (size_t)i * PS};
        wl[i] = ws[i];
        wl[i].file = i % 2 ? l2 : l1;
    }
    int own_fd = open(t_join(x.fs.dir, "engine-own"), O_CREAT | O_RDWR, 0600);
    char own_buf[512];
    t_fill(own_buf, sizeof(own_buf), 5);

    struct t_eng e;
    t_eng_init(&e, real);
    int res[N];
    int r = drive(&e, x.ctx, ws, N, res, own_fd, own_buf);
    cr_assert_eq(r, N, "done: %d", r);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(res[i], 0);
    cr_assert_eq(atomio_write_batch(x.ctx, wl, N, 0), N);

    memset(pages + PS, 0, PS); /* the engine's buffer is free once staged */
    fill_pages(pages, N, 100);
    for (unsigned i = 0; i < N; i++) {
        assert_page(ws[i].file, ws[i].page_no, pages + (size_t)i * PS);
        assert_page(wl[i].file, wl[i].page_no, pages + (size_t)i * PS);
    }
    atomio_file *pairs[2][2] = {{a1, l1}, {a2, l2}};
    for (int k = 0; k < 2; k++) {
        atomio_stats s = t_fstats(pairs[k][0]), l = t_fstats(pairs[k][1]);
        cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], N / 2);
        cr_assert_eq(s.bytes_data, (N / 2) * PS, "each page once in place");
        cr_assert_eq(s.bytes_doublewrite, (N / 2) * PS, "and once in the store");
        cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], l.pages[ATOMIO_PATH_DOUBLEWRITE]);
        cr_assert_eq(s.bytes_data, l.bytes_data);
        cr_assert_eq(s.bytes_doublewrite, l.bytes_doublewrite);
        cr_assert_eq(s.batches, l.batches);
        cr_assert_eq(s.syncs, l.syncs, "staged %llu syncs, library %llu",
                     (unsigned long long)s.syncs, (unsigned long long)l.syncs);
    }
    /* Both ways released every record: recovery finds nothing to restore. */
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(x.ctx, &cs), 0);
    cr_assert_eq(cs.store_bytes_used, 0);
    atomio_recovery_report rep = {.size = sizeof(rep)};
    cr_assert_eq(atomio_ctx_recover(x.ctx, &rep), 0);
    cr_assert_eq(rep.pages_restored, 0);

    t_eng_fini(&e);
    close(own_fd);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

Test(byor_dw, staged_on_engine_ring_matches_write_batch)
{
    staged_vs_library(1);
}

Test(byor_dw, staged_through_syscall_seam_matches_write_batch)
{
    staged_vs_library(0);
}

/* The SQEs themselves: what goes where. */
Test(byor_dw, prepared_sqes)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    char *pages = aligned_alloc(PS, 2 * PS);
    fill_pages(pages, 2, 7);
    atomio_page_write w[2] = {{.file = f, .page_no = 9, .page = pages},
                              {.file = f, .page_no = 3, .page = pages + PS}};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 2, 0, &b), 0);
    struct atomio_store *st = x.ctx->store;

    struct io_uring_sqe sqe;
    memset(&sqe, 0x77, sizeof(sqe));
    sqe.user_data = 42;
    cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
    cr_assert_eq(sqe.opcode, IORING_OP_WRITE);
    cr_assert_eq(sqe.fd, st->fd);
    cr_assert_eq(sqe.off % ATOMIO_DW_GRANULE, 0);
    cr_assert_eq(sqe.len, 2 * PS + ATOMIO_DW_GRANULE, "the whole record in one write");
    cr_assert_eq(sqe.rw_flags, 0);
    cr_assert_eq(sqe.user_data, 42);
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);

    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
    cr_assert_eq(sqe.opcode, IORING_OP_FSYNC);
    cr_assert_eq(sqe.fd, st->fd);
    cr_assert_eq(sqe.fsync_flags, IORING_FSYNC_DATASYNC);
    cr_assert_eq(sqe.user_data, 42);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe)), 0);

    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(atomio_doublewrite_prep_inplace(b, i, &sqe), 0);
        cr_assert_eq(sqe.opcode, IORING_OP_WRITE);
        cr_assert_eq(sqe.fd, f->fd);
        cr_assert_eq(sqe.off, w[i].page_no * PS, "entry %zu keeps its index", i);
        cr_assert_eq(sqe.len, PS);
        cr_assert_eq(sqe.rw_flags, 0);
        cr_assert_neq(sqe.addr, (uint64_t)(uintptr_t)w[i].page, "from the batch's copy");
        cr_assert(memcmp((const void *)(uintptr_t)sqe.addr, w[i].page, PS) == 0);
        cr_assert_eq(sqe.addr % 512, 0, "aligned for O_DIRECT");
        cr_assert_eq(atomio_doublewrite_complete_inplace(b, i, t_eng_exec(&sqe)), 0);
    }
    int res[2] = {-1, -1};
    cr_assert_eq(atomio_doublewrite_done(b, res), 2);
    cr_assert_eq(res[0], 0);
    cr_assert_eq(res[1], 0);
    assert_page(f, 9, pages);
    assert_page(f, 3, pages + PS);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* ---- order enforced ---------------------------------------------------------------------- */

Test(byor_dw, every_step_out_of_order_is_refused)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    char *pages = aligned_alloc(PS, 2 * PS);
    fill_pages(pages, 2, 11);
    atomio_page_write w[2] = {{.file = f, .page_no = 0, .page = pages},
                              {.file = f, .page_no = 1, .page = pages + PS}};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 2, 0, &b), 0);
    struct io_uring_sqe sqe, st_sqe;

#define REFUSED(call)                                                                              \
    do {                                                                                           \
        memset(&sqe, 0x33, sizeof(sqe));                                                           \
        int r_ = (call);                                                                           \
        cr_assert_eq(r_, ATOMIO_E_SEQUENCE, "%s: %s", #call, atomio_err_name(r_));                 \
    } while (0)

    /* STAGED: only the store write (or abandon). */
    REFUSED(atomio_doublewrite_complete_store(b, 8192));
    REFUSED(atomio_doublewrite_prep_store_sync(b, &sqe));
    assert_nop(&sqe);
    REFUSED(atomio_doublewrite_complete_store_sync(b, 0));
    REFUSED(atomio_doublewrite_prep_inplace(b, 0, &sqe));
    assert_nop(&sqe);
    REFUSED(atomio_doublewrite_complete_inplace(b, 0, (int)PS));
    REFUSED(atomio_doublewrite_done(b, NULL));

    cr_assert_eq(atomio_doublewrite_prep_store(b, &st_sqe), 0);
    /* STORE_INFLIGHT */
    REFUSED(atomio_doublewrite_prep_store(b, &sqe));
    assert_nop(&sqe);
    REFUSED(atomio_doublewrite_prep_store_sync(b, &sqe)); /* not ordered after the unfinished write */
    REFUSED(atomio_doublewrite_prep_inplace(b, 0, &sqe));
    REFUSED(atomio_doublewrite_abandon(b));
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&st_sqe)), 0);
    /* STORE_WRITTEN: not durable yet. */
    REFUSED(atomio_doublewrite_complete_store(b, 8192));
    REFUSED(atomio_doublewrite_prep_inplace(b, 0, &sqe));
    REFUSED(atomio_doublewrite_complete_store_sync(b, 0));
    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &st_sqe), 0);
    /* SYNC_INFLIGHT */
    REFUSED(atomio_doublewrite_prep_store_sync(b, &sqe));
    REFUSED(atomio_doublewrite_prep_inplace(b, 0, &sqe));
    REFUSED(atomio_doublewrite_abandon(b));
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&st_sqe)), 0);
    /* DURABLE: in-place, one SQE per entry. */
    cr_assert_eq(atomio_doublewrite_prep_inplace(b, 2, &sqe), ATOMIO_E_RANGE);
    REFUSED(atomio_doublewrite_complete_inplace(b, 0, (int)PS));
    struct io_uring_sqe ip0;
    cr_assert_eq(atomio_doublewrite_prep_inplace(b, 0, &ip0), 0);
    REFUSED(atomio_doublewrite_prep_inplace(b, 0, &sqe));
    REFUSED(atomio_doublewrite_abandon(b)); /* in-place writes started */
    REFUSED(atomio_doublewrite_done(b, NULL));
    REFUSED(atomio_doublewrite_complete_inplace(b, 1, (int)PS)); /* entry 1 not prepared */
    cr_assert_eq(atomio_doublewrite_complete_inplace(b, 0, 2 * (int)PS), ATOMIO_E_INVAL, "res > len");
    cr_assert_eq(atomio_doublewrite_complete_inplace(b, 0, t_eng_exec(&ip0)), 0);
    REFUSED(atomio_doublewrite_complete_inplace(b, 0, (int)PS)); /* reported twice */
    REFUSED(atomio_doublewrite_done(b, NULL));                   /* entry 1 never prepared */
    struct io_uring_sqe ip1;
    cr_assert_eq(atomio_doublewrite_prep_inplace(b, 1, &ip1), 0);
    REFUSED(atomio_doublewrite_done(b, NULL)); /* entry 1 in flight */
    cr_assert_eq(atomio_doublewrite_complete_inplace(b, 1, t_eng_exec(&ip1)), 0);
    cr_assert_eq(atomio_doublewrite_done(b, NULL), 2);
#undef REFUSED

    /* Argument checks. */
    cr_assert_eq(atomio_doublewrite_prep_store(NULL, &sqe), ATOMIO_E_INVAL);
    assert_nop(&sqe);
    cr_assert_eq(atomio_doublewrite_complete_store(NULL, 0), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_doublewrite_done(NULL, NULL), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_doublewrite_abandon(NULL), 0);

    assert_page(f, 0, pages);
    assert_page(f, 1, pages + PS);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* ---- staging checks -------------------------------------------------------------------- */

Test(byor_dw, stage_refuses_bad_batches_whole)
{
    struct fx x;
    fx_up(&x, "ext4", 256);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *u = open_as(x.ctx, t_join(x.fs.dir, "u"), ATOMIO_PATH_UNSAFE);
    char *pages = aligned_alloc(PS, 32 * PS);
    fill_pages(pages, 32, 1);
    atomio_doublewrite_batch *b = (atomio_doublewrite_batch *)&b;

    atomio_page_write w[3] = {{.file = f, .page_no = 0, .page = pages},
                              {.file = u, .page_no = 1, .page = pages},
                              {.file = f, .page_no = 2, .page = NULL}};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 3, 0, &b), ATOMIO_E_INVAL);
    cr_assert_null(b);
    cr_assert_eq(w[0].result, 0);
    cr_assert_eq(w[1].result, ATOMIO_E_INVAL, "not a DOUBLEWRITE file");
    cr_assert_eq(w[2].result, ATOMIO_E_INVAL, "NULL page");

    atomio_page_write dup[3] = {{.file = f, .page_no = 5, .page = pages},
                                {.file = f, .page_no = 6, .page = pages},
                                {.file = f, .page_no = 5, .page = pages + PS}};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, dup, 3, 0, &b), ATOMIO_E_INVAL);
    cr_assert_eq(dup[0].result + dup[1].result, 0);
    cr_assert_eq(dup[2].result, ATOMIO_E_INVAL, "the same page twice");

    atomio_page_write big[17];
    for (unsigned i = 0; i < 17; i++)
        big[i] = (atomio_page_write){.file = f, .page_no = i, .page = pages + (size_t)i * PS};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, big, 17, 0, &b), ATOMIO_E_STORE_FULL,
                 "17 pages in a 16-page segment");
    atomio_page_write range = {.file = f, .page_no = UINT64_MAX / 2, .page = pages};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &range, 1, 0, &b), ATOMIO_E_RANGE);
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 1, 1, &b), ATOMIO_E_INVAL, "flags");
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 0, 0, &b), ATOMIO_E_INVAL, "n = 0");
    cr_assert_eq(atomio_doublewrite_stage(NULL, w, 1, 0, &b), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 1, 0, NULL), ATOMIO_E_INVAL);

    /* A file of another ctx. */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    atomio_ctx *other = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &other), 0);
    cr_assert_eq(atomio_doublewrite_stage(other, w, 1, 0, &b), ATOMIO_E_NO_DOUBLEWRITE);
    atomio_file *of = open_as(other, t_join(x.fs.dir, "o"), ATOMIO_PATH_UNSAFE);
    atomio_page_write wo = {.file = of, .page_no = 0, .page = pages};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &wo, 1, 0, &b), ATOMIO_E_INVAL);
    cr_assert_eq(atomio_ctx_close(other), 0);

    /* Never blocks: with the ring full of staged batches in flight, the next one is told to
     * come back; giving up the oldest makes room. */
    atomio_doublewrite_batch *held[80];
    int nheld = 0, r = 0;
    while (nheld < 80 && (r = atomio_doublewrite_stage(x.ctx, &big[nheld % 16], 1, 0,
                                                       &held[nheld])) == 0)
        nheld++;
    cr_assert_eq(r, -EAGAIN, "after %d staged: %s", nheld, atomio_err_name(r));
    cr_assert_geq(nheld, 2);
    atomio_doublewrite_batch *more;
    cr_assert_eq(atomio_doublewrite_abandon(held[0]), 0);
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &big[16], 1, 0, &more), 0);
    cr_assert_eq(atomio_doublewrite_abandon(more), 0);
    for (int i = 1; i < nheld; i++)
        cr_assert_eq(atomio_doublewrite_abandon(held[i]), 0);

    /* Nothing of this reached the data file. */
    struct stat st;
    cr_assert_eq(stat(t_join(x.fs.dir, "f"), &st), 0);
    cr_assert_eq(st.st_size, 0);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* ---- abandoning and failing steps --------------------------------------------------------- */

/* A batch given up after its copies were durable must never come back at recovery. */
Test(byor_dw, abandon_after_durable_store_is_never_recovered)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    char *oldp = aligned_alloc(PS, PS), *newp = aligned_alloc(PS, PS);
    t_fill(oldp, PS, 1);
    t_fill(newp, PS, 2);
    cr_assert_eq(atomio_write(f, 4, oldp, 0), 0);

    atomio_page_write w = {.file = f, .page_no = 4, .page = newp};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &w, 1, 0, &b), 0);
    struct io_uring_sqe sqe;
    cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);
    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe)), 0);
    cr_assert_eq(atomio_doublewrite_abandon(b), 0);

    atomio_recovery_report rep = {.size = sizeof(rep)};
    cr_assert_eq(atomio_ctx_recover(x.ctx, &rep), 0);
    cr_assert_eq(rep.pages_restored, 0, "the abandoned record was voided");
    cr_assert_eq(rep.pages_restored, 0);
    assert_page(f, 4, oldp);
    /* The file and the store are still usable. */
    cr_assert_eq(atomio_write(f, 4, newp, 0), 0);
    assert_page(f, 4, newp);
    free(oldp);
    free(newp);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

Test(byor_dw, failed_store_write_kills_batch_not_data)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    char *p = aligned_alloc(PS, PS);
    t_fill(p, PS, 3);
    atomio_page_write w = {.file = f, .page_no = 0, .page = p};
    int errs[] = {-EIO, 4096 /* short: less than the record */};
    for (int k = 0; k < 2; k++) {
        /* A store that failed a write takes nothing more until the ctx is reopened. */
        if (k == 1) {
            cr_assert_eq(atomio_ctx_close(x.ctx), 0);
            x.ctx = ctx_open(x.dblwr, 0);
            f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
            w.file = f;
        }
        atomio_doublewrite_batch *b;
        cr_assert_eq(atomio_doublewrite_stage(x.ctx, &w, 1, 0, &b), 0);
        struct io_uring_sqe sqe;
        cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
        cr_assert_eq(atomio_doublewrite_complete_store(b, errs[k]),
                     k == 0 ? -EIO : ATOMIO_E_STORE_FAILED);
        cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), ATOMIO_E_SEQUENCE, "dead batch");
        cr_assert_eq(atomio_doublewrite_prep_inplace(b, 0, &sqe), ATOMIO_E_SEQUENCE);
        cr_assert_eq(atomio_doublewrite_abandon(b), 0);
        cr_assert_eq(atomio_doublewrite_stage(x.ctx, &w, 1, 0, &b), ATOMIO_E_STORE_FAILED);
        cr_assert_eq(atomio_write(f, 0, p, 0), ATOMIO_E_STORE_FAILED);
    }
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
    x.ctx = ctx_open(x.dblwr, 0);
    f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file_info i = {.size = sizeof(i)};
    cr_assert_eq(atomio_file_get_info(f, &i), 0);
    cr_assert_eq(i.state, ATOMIO_STATE_OK, "the data file was never touched");
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);
    free(p);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

Test(byor_dw, failed_store_fsync_fails_the_store)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    char *p = aligned_alloc(PS, PS);
    t_fill(p, PS, 3);
    atomio_page_write w = {.file = f, .page_no = 0, .page = p};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &w, 1, 0, &b), 0);
    struct io_uring_sqe sqe;
    cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);
    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, -EIO), -EIO);
    cr_assert_eq(atomio_doublewrite_prep_inplace(b, 0, &sqe), ATOMIO_E_SEQUENCE);
    cr_assert_eq(atomio_doublewrite_abandon(b), 0);
    /* Sticky, as for atomio_write_batch(): the store takes nothing more. */
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &w, 1, 0, &b), ATOMIO_E_STORE_FAILED);
    cr_assert_eq(atomio_write(f, 0, p, 0), ATOMIO_E_STORE_FAILED);
    atomio_stats cs = {.size = sizeof(cs)};
    cr_assert_eq(atomio_ctx_get_stats(x.ctx, &cs), 0);
    cr_assert_eq(cs.failed_syncs, 1);
    free(p);
    atomio_ctx_close(x.ctx);
}

/* A short in-place write fails the file, and its store copy survives for recovery. */
Test(byor_dw, short_inplace_write_fails_file_and_recovery_repairs)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *g = open_as(x.ctx, t_join(x.fs.dir, "g"), ATOMIO_PATH_DOUBLEWRITE);
    char *pages = aligned_alloc(PS, 3 * PS);
    fill_pages(pages, 3, 50);
    atomio_page_write w[3] = {{.file = f, .page_no = 0, .page = pages},
                              {.file = f, .page_no = 1, .page = pages + PS},
                              {.file = g, .page_no = 0, .page = pages + 2 * PS}};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 3, 0, &b), 0);
    struct io_uring_sqe sqe;
    cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);
    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe)), 0);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(atomio_doublewrite_prep_inplace(b, i, &sqe), 0);
        if (i == 1) {
            /* Only the first 512 bytes reach the file: a torn page in place. */
            sqe.len = 512;
            int res = t_eng_exec(&sqe);
            cr_assert_eq(res, 512);
            cr_assert_eq(atomio_doublewrite_complete_inplace(b, i, res), ATOMIO_E_SHORT_WRITE);
        } else {
            cr_assert_eq(atomio_doublewrite_complete_inplace(b, i, t_eng_exec(&sqe)), 0);
        }
    }
    int res[3];
    cr_assert_eq(atomio_doublewrite_done(b, res), 2);
    cr_assert_eq(res[0], 0);
    cr_assert_eq(res[1], ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(res[2], 0);
    atomio_file_info i = {.size = sizeof(i)};
    cr_assert_eq(atomio_file_get_info(f, &i), 0);
    cr_assert_eq(i.state, ATOMIO_STATE_FAILED);
    cr_assert_eq(t_fstats(f).short_writes, 1);
    assert_page(g, 0, pages + 2 * PS);

    /* Close the failed file, recover: the torn page comes back whole from the store. */
    cr_assert_eq(atomio_file_close(f), 0);
    atomio_recovery_report rep = {.size = sizeof(rep)};
    cr_assert_eq(atomio_ctx_recover(x.ctx, &rep), 0);
    cr_assert_geq(rep.pages_restored, 1);
    f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    assert_page(f, 1, pages + PS);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* A failed in-place write holds the record until recovery: its file is refused, the other
 * files of the batch and the rest of the store go on. */
Test(byor_dw, failed_in_place_write_holds_the_record_until_recovery)
{
    struct fx x;
    fx_up(&x, "ext4", 0);
    atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *g = open_as(x.ctx, t_join(x.fs.dir, "g"), ATOMIO_PATH_DOUBLEWRITE);
    atomio_file *h = open_as(x.ctx, t_join(x.fs.dir, "h"), ATOMIO_PATH_DOUBLEWRITE);
    char *pages = aligned_alloc(PS, 2 * PS);
    fill_pages(pages, 2, 60);
    atomio_page_write w[2] = {{.file = f, .page_no = 0, .page = pages},
                              {.file = g, .page_no = 0, .page = pages + PS}};
    atomio_doublewrite_batch *b;
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, w, 2, 0, &b), 0);
    struct io_uring_sqe sqe;
    cr_assert_eq(atomio_doublewrite_prep_store(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store(b, t_eng_exec(&sqe)), 0);
    cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
    cr_assert_eq(atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe)), 0);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(atomio_doublewrite_prep_inplace(b, i, &sqe), 0);
        if (i == 0)
            sqe.len = 512; /* a torn page in place */
        int c = atomio_doublewrite_complete_inplace(b, i, t_eng_exec(&sqe));
        cr_assert_eq(c, i == 0 ? ATOMIO_E_SHORT_WRITE : 0);
    }
    int res[2];
    cr_assert_eq(atomio_doublewrite_done(b, res), 1);
    cr_assert_eq(res[0], ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(res[1], 0);

    atomio_doublewrite_batch *b2 = NULL;
    atomio_page_write wg = {.file = g, .page_no = 1, .page = pages};
    atomio_page_write wf = {.file = f, .page_no = 1, .page = pages};
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &wf, 1, 0, &b2), ATOMIO_E_FAILED, "f is failed");
    cr_assert_null(b2);
    cr_assert_eq(atomio_doublewrite_stage(x.ctx, &wg, 1, 0, &b2), 0, "g is not");
    cr_assert_eq(atomio_doublewrite_abandon(b2), 0);
    atomio_page_write wh = {.file = h, .page_no = 0, .page = pages};
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(x.ctx, &cs), 0);
    cr_assert_geq(cs.store_bytes_used, 2 * PS, "the held record is kept");

    cr_assert_eq(atomio_file_close(f), 0);
    atomio_recovery_report rep = {.size = sizeof(rep)};
    cr_assert_eq(atomio_ctx_recover(x.ctx, &rep), 0);
    cr_assert_eq(rep.pages_restored, 1);
    f = open_as(x.ctx, t_join(x.fs.dir, "f"), ATOMIO_PATH_DOUBLEWRITE);
    assert_page(f, 0, pages);
    assert_page(g, 0, pages + PS);
    struct t_eng e;
    t_eng_init(&e, 0);
    int r1;
    cr_assert_eq(drive(&e, x.ctx, &wh, 1, &r1, -1, NULL), 1);
    cr_assert_eq(drive(&e, x.ctx, &wg, 1, &r1, -1, NULL), 1);
    t_eng_fini(&e);
    assert_page(h, 0, pages);
    free(pages);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* ---- the downgrade hands pages over to the staged doublewrite ---------------------------- */

static ssize_t inject_res;
static int inject_left;

static ssize_t
inject_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if ((flags & RWF_ATOMIC) && inject_left > 0) {
        inject_left--;
        return inject_res;
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

/* EOPNOTSUPP and ENOSPC fed in by hand: NEEDS_DOUBLEWRITE, the path switched, counted; the
 * engine then writes the page through the staged doublewrite. atomio_write() does the same
 * (downgrade and rewrite) inside one call. */
Test(byor_dw, downgrade_then_staged_doublewrite)
{
    struct fx x;
    fx_up(&x, "xfs", 0);
    atomio_caps c = {.size = sizeof(c)};
    int pfd = open(t_join(x.fs.dir, "probe"), O_CREAT | O_RDWR, 0600);
    cr_assert(pfd >= 0);
    close(pfd);
    cr_assert_eq(atomio_probe(t_join(x.fs.dir, "probe"), PS, &c), 0);
    if (c.direct_atomic == ATOMIO_ATOMIC_NONE)
        cr_skip_test("skipped: no O_DIRECT RWF_ATOMIC on XFS reflink=1 here: %s", c.reason_direct);
    int errs[] = {-EOPNOTSUPP, -ENOSPC};
    char *page = atomio_page_alloc(x.ctx, PS, 1);
    t_fill(page, PS, 77);
    struct t_eng e;
    t_eng_init(&e, 0);
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof(name), "byor%d", k);
        atomio_file *f = open_as(x.ctx, t_join(x.fs.dir, name), ATOMIO_PATH_DIRECT_ATOMIC);
        snprintf(name, sizeof(name), "lib%d", k);
        atomio_file *l = open_as(x.ctx, t_join(x.fs.dir, name), ATOMIO_PATH_DIRECT_ATOMIC);

        struct io_uring_sqe sqe;
        cr_assert_eq(atomio_prep_write(f, &sqe, 6, page, 0), 0);
        cr_assert_eq(atomio_complete_write(f, errs[k], PS), ATOMIO_E_NEEDS_DOUBLEWRITE);
        cr_assert_eq(t_info(f).path, ATOMIO_PATH_DOUBLEWRITE);
        cr_assert_eq(atomio_prep_write(f, &sqe, 6, page, 0), ATOMIO_E_NEEDS_DOUBLEWRITE);
        atomio_page_write w = {.file = f, .page_no = 6, .page = page};
        int res;
        cr_assert_eq(drive(&e, x.ctx, &w, 1, &res, -1, NULL), 1);

        inject_res = errs[k];
        inject_left = 1;
        atomio__sys.pwritev2 = inject_pwritev2;
        cr_assert_eq(atomio_write(l, 6, page, 0), 0, "atomio_write() downgrades by itself");
        atomio__sys.pwritev2 = atomio__sys_real.pwritev2;
        cr_assert_eq(t_info(l).path, ATOMIO_PATH_DOUBLEWRITE);

        assert_page(f, 6, page);
        assert_page(l, 6, page);
        atomio_stats s = t_fstats(f), ls = t_fstats(l);
        cr_assert_eq(s.downgrades, 1);
        cr_assert_eq(ls.downgrades, 1);
        cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], 1);
        cr_assert_eq(ls.pages[ATOMIO_PATH_DOUBLEWRITE], 1);
        cr_assert_eq(s.pages[ATOMIO_PATH_DIRECT_ATOMIC], 0);
        atomio_file_info i = {.size = sizeof(i)};
        cr_assert_eq(atomio_file_get_info(f, &i), 0);
        cr_assert(strstr(i.reason, "downgrade") != NULL, "reason: %s", i.reason);
    }
    t_eng_fini(&e);
    atomio_page_free(x.ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}

/* A kernel with buffered RWF_ATOMIC for the open-time probe only, so a file can be opened
 * BUFFERED_ATOMIC; the real kernel (<= 6.18) then refuses the write with EOPNOTSUPP. */
static ssize_t
buffered_probe_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    int fl = fcntl(fd, F_GETFL);
    if ((flags & RWF_ATOMIC) && fl >= 0 && !(fl & O_DIRECT))
        flags &= ~RWF_ATOMIC;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

/* A real EOPNOTSUPP from the kernel on the engine's ring, the downgrade, and the page written
 * through the staged doublewrite on the same ring. */
Test(byor_dw, real_eopnotsupp_on_engine_ring_downgrades)
{
    struct fx x;
    fx_up(&x, "xfs", 0);
    atomio__caps_cache_clear();
    atomio__sys.pwritev2 = buffered_probe_pwritev2;
    atomio_file_opts o = ATOMIO_FILE_OPTS_INIT;
    o.flags = ATOMIO_FILE_CREATE;
    o.page_size = PS;
    o.path = ATOMIO_PATH_BUFFERED_ATOMIC;
    o.io_style = ATOMIO_IO_BUFFERED;
    atomio_file *f = NULL;
    int r = atomio_file_open(x.ctx, t_join(x.fs.dir, "b"), &o, &f);
    atomio__sys.pwritev2 = atomio__sys_real.pwritev2;
    atomio__caps_cache_clear();
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));

    char *page = atomio_page_alloc(x.ctx, PS, 1);
    t_fill(page, PS, 13);
    struct t_eng e;
    t_eng_init(&e, 1);
    struct io_uring_sqe *sqe = t_eng_sqe(&e);
    cr_assert_eq(atomio_prep_write(f, sqe, 2, page, 0), 0);
    sqe->user_data = ud(K_ATOMIO, 0);
    struct drive d;
    memset(&d, 0, sizeof(d));
    t_eng_run(&e, drive_cb, &d);
    if (d.atomio_res == (int)PS)
        cr_skip_test("skipped: this kernel has buffered RWF_ATOMIC; no EOPNOTSUPP to downgrade on");
    cr_assert_eq(d.atomio_res, -EOPNOTSUPP, "CQE %d", d.atomio_res);
    cr_assert_eq(atomio_complete_write(f, d.atomio_res, PS), ATOMIO_E_NEEDS_DOUBLEWRITE);
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DOUBLEWRITE);

    atomio_page_write w = {.file = f, .page_no = 2, .page = page};
    int res;
    cr_assert_eq(drive(&e, x.ctx, &w, 1, &res, -1, NULL), 1);
    cr_assert_eq(res, 0);
    assert_page(f, 2, page);
    cr_assert_eq(t_fstats(f).downgrades, 1);
    t_eng_fini(&e);
    atomio_page_free(x.ctx, page, PS, 1);
    cr_assert_eq(atomio_ctx_close(x.ctx), 0);
}
