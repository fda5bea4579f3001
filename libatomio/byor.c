/* SPDX-License-Identifier: MIT */
/*
 * byor.c -- bring-your-own-ring: the engine's io_uring issues the writes. The paths
 * still decide them: atomio_prep_write() runs the same checks and the same prep() as
 * atomio_write() and copies the resulting struct atomio_io into the engine's SQE;
 * atomio_complete_write() feeds the CQE result to the same complete() and turns the
 * library-internal outcomes (downgrade, re-probe) into codes the engine can act on. The staged
 * doublewrite (atomio_dw_*) drives the same batch-protocol run as atomio_write_batch().
 *
 * No liburing here: struct io_uring_sqe is the kernel's ABI, taken from <linux/io_uring.h>
 * (any 5.6+ headers have IORING_OP_WRITE and rw_flags; RWF_ATOMIC comes from compat.h).
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "store/store.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The layout the engine's ring and we must agree on (include/uapi/linux/io_uring.h). */
_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe size");
_Static_assert(offsetof(struct io_uring_sqe, fd) == 4, "sqe fd");
_Static_assert(offsetof(struct io_uring_sqe, off) == 8, "sqe off");
_Static_assert(offsetof(struct io_uring_sqe, addr) == 16, "sqe addr");
_Static_assert(offsetof(struct io_uring_sqe, len) == 24, "sqe len");
_Static_assert(offsetof(struct io_uring_sqe, rw_flags) == 28, "sqe rw_flags");
_Static_assert(offsetof(struct io_uring_sqe, user_data) == 32, "sqe user_data");

/*
 * sqe_clear() -- zero the 64-byte entry except user_data, which belongs to the engine (it may
 * have set it before calling us). What io_uring_prep_rw() leaves behind, minus the fields.
 */
static void
sqe_clear(struct io_uring_sqe *sqe)
{
    __u64 user_data = sqe->user_data;
    memset(sqe, 0, sizeof(*sqe));
    sqe->user_data = user_data;
}

/* sqe_nop() -- on error: an entry already taken from the ring stays harmless to submit. */
static void
sqe_nop(struct io_uring_sqe *sqe)
{
    sqe_clear(sqe);
    sqe->opcode = IORING_OP_NOP;
}

/*
 * io_to_sqe() -- the engine-ring form of a prepared write: IORING_OP_WRITE (one
 * buffer, so never the multi-iovec case RWF_ATOMIC refuses, and never WRITE_FIXED, which the
 * kernel refuses with RWF_ATOMIC), with the path's rw_flags.
 */
static void
io_to_sqe(const struct atomio_io *io, struct io_uring_sqe *sqe)
{
    /* The staged doublewrite always copies into its record buffer, so no io here is vectored. */
    ATOMIO_ASSERT(io->iovcnt == 0);
    sqe_clear(sqe);
    sqe->opcode = IORING_OP_WRITE;
    sqe->fd = io->fd;
    sqe->off = io->off;
    sqe->addr = (__u64)(uintptr_t)io->buf;
    sqe->len = io->len;
    sqe->rw_flags = (__u32)io->rwflags;
}

static int
prep_write(atomio_file *f, struct io_uring_sqe *sqe, uint64_t page_no, const void *page,
           uint32_t flags)
{
    if (flags & ~ATOMIO_WRITE_DSYNC)
        return ATOMIO_E_INVAL;
    int r = atomio__write_check(f, page_no, page);
    if (r < 0)
        return r;
    uint32_t path = atomic_load(&f->path_cur);
    const struct atomio_path_ops *ops = atomio__path_ops(path);
    if (!ops || !ops->prep)
        return ATOMIO_E_NEEDS_DOUBLEWRITE;
    /* NO_BOUNCE: the engine's ring holds the I/O until its CQE, and we have nowhere to keep a
     * copy until then (atomio_complete_write() gets no handle to it). */
    uint32_t wflags = flags | ((f->fflags & ATOMIO_FILE_DSYNC) ? ATOMIO_WRITE_DSYNC : 0) |
                      ATOMIO__WRITE_NO_BOUNCE;
    struct atomio_io io;
    memset(&io, 0, sizeof(io));
    r = ops->prep(f, page_no, page, wflags, &io);
    if (r < 0)
        return r;
    ATOMIO_ASSERT(!io.bounce && io.len == f->page_size);
    io_to_sqe(&io, sqe);
    return 0;
}

int
atomio_prep_write(atomio_file *f, struct io_uring_sqe *sqe, uint64_t page_no, const void *page,
                  uint32_t flags)
{
    if (!sqe)
        return ATOMIO_E_INVAL;
    int r = prep_write(f, sqe, page_no, page, flags);
    if (r < 0)
        sqe_nop(sqe);
    return r;
}

/*
 * prepped_path() -- which path prepared the SQE whose completion is reported. A file only
 * ever leaves its atomic path for DOUBLEWRITE, and atomio_prep_write() refuses DOUBLEWRITE, so
 * a file on DOUBLEWRITE now was atomic at prep time (another completion downgraded it
 * meanwhile); UNSAFE never changes. The fd tells the two atomic paths apart: DIRECT_ATOMIC
 * files are always O_DIRECT, BUFFERED_ATOMIC ones never are.
 */
static uint32_t
prepped_path(const atomio_file *f)
{
    uint32_t cur = atomic_load(&f->path_cur);
    if (cur == ATOMIO_PATH_UNSAFE)
        return ATOMIO_PATH_UNSAFE;
    return f->o_direct ? ATOMIO_PATH_DIRECT_ATOMIC : ATOMIO_PATH_BUFFERED_ATOMIC;
}

/* count_page() -- atomio__count_page() without the latency: the engine's ring owns timing. */
static void
count_page(atomio_file *f, uint32_t path)
{
    ATOMIO_COUNT(&f->stats, pages[path], 1);
    ATOMIO_COUNT(&f->ctx->stats, pages[path], 1);
    ATOMIO_COUNT(&f->stats, bytes_data, f->page_size);
    ATOMIO_COUNT(&f->ctx->stats, bytes_data, f->page_size);
}

int
atomio_complete_write(atomio_file *f, int cqe_res, uint32_t len)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    /* A CQE never reports more than its SQE asked for: a mismatch is the wrong CQE or the
     * wrong file, and judging it could fail a healthy file. */
    if (len != f->page_size || (cqe_res > 0 && (uint32_t)cqe_res > len))
        return ATOMIO_E_INVAL;

    uint32_t path = prepped_path(f);
    struct atomio_io io;
    memset(&io, 0, sizeof(io));
    io.fd = f->fd;
    io.len = len;
    io.res = cqe_res;
    io.file = f;
    io.path = path;
    struct atomio_verdict v = atomio__path_ops(path)->complete(f, &io);
    switch (v.next) {
    case ATOMIO__NEXT_DOUBLEWRITE:
        atomio__file_downgrade(f, cqe_res);
        return ATOMIO_E_NEEDS_DOUBLEWRITE;
    case ATOMIO__NEXT_REPROBE: {
        /* atomio_write() would retry once itself; here the engine's ring must. */
        enum atomio__reprobed rp;
        r = atomio__file_reprobe(f, path, &rp);
        if (r < 0)
            return r;
        return rp == ATOMIO__REPROBED_NOW_DOUBLEWRITE ? ATOMIO_E_NEEDS_DOUBLEWRITE : -EAGAIN;
    }
    case ATOMIO__NEXT_RESULT:
        break;
    }
    if (v.result == 0)
        count_page(f, path);
    return v.result;
}

/* ------------------------------------------------------------------------------------------ */
/* Staged doublewrite: the engine drives one run of the batch protocol (store/store.h) from its   */
/* own ring. This part only adds the order checks and the SQE form; the protocol's steps,     */
/* and with them the invariants recovery relies on, are store/batch.c's, shared with            */
/* atomio_write_batch().                                                                      */

enum staged_state {
    ST_STAGED,         /* encoded in a reserved record; nothing written yet */
    ST_STORE_INFLIGHT, /* store write prepared */
    ST_STORE_WRITTEN,  /* store write complete, not yet durable */
    ST_SYNC_INFLIGHT,  /* store fsync prepared */
    ST_DURABLE,        /* copies durable: in-place writes may start */
    ST_INPLACE,        /* in-place writes prepared; abandon no longer possible */
    ST_DEAD            /* store write or fsync failed: only abandon */
};

enum entry_state { EN_IDLE, EN_INFLIGHT, EN_DONE };

struct atomio_staged_batch {
    pthread_mutex_t lock;
    atomio_ctx *ctx;
    size_t n;
    enum staged_state state;
    bool sync_skipped;    /* test sabotage hook: the durability step was a NOP */
    uint64_t sync_ticket; /* the group-commit ticket of the engine's store fsync */
    size_t ndone;         /* in-place writes reported */
    struct atomio_dw_run run;
    struct atomio_dw_item *items; /* entry i (the engine's index) */
    uint32_t *slot_of;            /* entry i -> slot k of the run */
    uint8_t *ent;                 /* enum entry_state per entry */
    /* the run's arrays, one allocation each */
    size_t *idx;
    uint32_t *slot_off;
    struct atomio_io *ios;
    const uint8_t **src;
    atomio_file **files;
};

static void
staged_free(struct atomio_staged_batch *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->items);
    free(b->slot_of);
    free(b->ent);
    free(b->idx);
    free(b->slot_off);
    free(b->ios);
    free(b->src);
    free(b->files);
    free(b);
}

static int
cmp_entry_key(const void *a, const void *c, void *arg)
{
    const struct atomio_dw_item *items = arg;
    size_t ia = *(const size_t *)a, ic = *(const size_t *)c;
    uint64_t fa = items[ia].file->file_id, fc = items[ic].file->file_id;
    if (fa != fc)
        return fa < fc ? -1 : 1;
    if (items[ia].page_no != items[ic].page_no)
        return items[ia].page_no < items[ic].page_no ? -1 : 1;
    return ia < ic ? -1 : ia > ic;
}

/*
 * stage_check() -- every entry's own checks (those of atomio_write(), then the store's), then
 * duplicates. Sets each entry's result; returns the first error in entry order, or 0.
 */
static int
stage_check(atomio_ctx *ctx, atomio_page_write *w, size_t n, struct atomio_dw_item *items)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        atomio_file *f = w[i].file;
        int r = atomio__file_check(f);
        if (r == 0 && f->ctx != ctx)
            r = ATOMIO_E_INVAL;
        if (r == 0)
            r = atomio__write_check(f, w[i].page_no, w[i].page);
        if (r == 0 && atomic_load(&f->path_cur) != ATOMIO_PATH_DOUBLEWRITE)
            r = ATOMIO_E_INVAL; /* atomic files: atomio_prep_write() */
        items[i] = (struct atomio_dw_item){.file = f, .page_no = w[i].page_no, .page = w[i].page};
        if (r == 0)
            r = atomio__dw_precheck(ctx, &items[i]);
        w[i].result = r;
    }
    /* Two in-place writes of one page in flight together have no order: refuse. */
    size_t *ord = malloc(n * sizeof(*ord));
    if (!ord)
        return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].result == 0)
            ord[m++] = i;
    qsort_r(ord, m, sizeof(*ord), cmp_entry_key, items);
    for (size_t k = 1; k < m; k++)
        if (items[ord[k]].file->file_id == items[ord[k - 1]].file->file_id &&
            items[ord[k]].page_no == items[ord[k - 1]].page_no)
            w[ord[k]].result = ATOMIO_E_INVAL;
    free(ord);
    for (size_t i = 0; i < n && !first; i++)
        first = w[i].result;
    return first;
}

int
atomio_doublewrite_stage(atomio_ctx *ctx, atomio_page_write *w, size_t n, uint32_t flags,
                         atomio_doublewrite_batch **out)
{
    if (!out)
        return ATOMIO_E_INVAL;
    *out = NULL;
    if (!ctx || !w || n == 0 || n > UINT32_MAX || flags)
        return ATOMIO_E_INVAL;
    if (!ctx->store)
        return ATOMIO_E_NO_DOUBLEWRITE;
    /* Write-behind: staged pages go in place first, so none lands after these newer ones. */
    int fr = atomio__stage_flush(ctx);
    if (fr < 0)
        return fr;

    struct atomio_staged_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    pthread_mutex_init(&b->lock, NULL);
    b->ctx = ctx;
    b->n = n;
    b->items = calloc(n, sizeof(*b->items));
    b->slot_of = calloc(n, sizeof(*b->slot_of));
    b->ent = calloc(n, sizeof(*b->ent));
    b->idx = calloc(n, sizeof(*b->idx));
    b->slot_off = calloc(n, sizeof(*b->slot_off));
    b->ios = calloc(n, sizeof(*b->ios));
    b->src = calloc(n, sizeof(*b->src));
    b->files = calloc(n, sizeof(*b->files));
    int r = 0;
    if (!b->items || !b->slot_of || !b->ent || !b->idx || !b->slot_off || !b->ios || !b->src ||
        !b->files)
        r = -ENOMEM;
    if (r == 0)
        r = stage_check(ctx, w, n, b->items);
    if (r == 0 && atomio__dw_needs_recovery(ctx))
        r = ATOMIO_E_SEQUENCE;
    if (r == 0) {
        /* One run, one record: the engine indexes its SQEs by entry, so no splitting. */
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += b->items[i].file->page_size;
        if (!atomio__dw_fits(ctx->store, (uint32_t)n, bytes))
            r = ATOMIO_E_STORE_FULL;
    }
    if (r < 0) {
        staged_free(b);
        return r;
    }

    b->run = (struct atomio_dw_run){.items = b->items,
                                    .idx = b->idx,
                                    .cnt = (uint32_t)n,
                                    .slot_off = b->slot_off,
                                    .ios = b->ios,
                                    .src = b->src,
                                    .files = b->files};
    for (size_t i = 0; i < n; i++)
        b->idx[i] = i;
    r = atomio__dw_run_begin(ctx, &b->run, false);
    if (r < 0) {
        staged_free(b);
        return r;
    }
    for (uint32_t k = 0; k < b->run.cnt; k++)
        b->slot_of[b->idx[k]] = k;
    b->state = ST_STAGED;
    *out = b;
    return 0;
}

int
atomio_doublewrite_prep_store(atomio_doublewrite_batch *b, struct io_uring_sqe *sqe)
{
    if (!b || !sqe) {
        if (sqe)
            sqe_nop(sqe);
        return ATOMIO_E_INVAL;
    }
    pthread_mutex_lock(&b->lock);
    int r = ATOMIO_E_SEQUENCE;
    if (b->state == ST_STAGED) {
        struct atomio_io io;
        atomio__dw_run_store_io(&b->run, &io);
        io_to_sqe(&io, sqe);
        b->state = ST_STORE_INFLIGHT;
        r = 0;
    } else {
        sqe_nop(sqe);
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_complete_store(atomio_doublewrite_batch *b, int cqe_res)
{
    if (!b)
        return ATOMIO_E_INVAL;
    pthread_mutex_lock(&b->lock);
    int r = ATOMIO_E_SEQUENCE;
    if (b->state == ST_STORE_INFLIGHT) {
        r = atomio__dw_run_store_written(&b->run, cqe_res);
        b->state = r == 0 ? ST_STORE_WRITTEN : ST_DEAD;
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_prep_store_sync(atomio_doublewrite_batch *b, struct io_uring_sqe *sqe)
{
    if (!b || !sqe) {
        if (sqe)
            sqe_nop(sqe);
        return ATOMIO_E_INVAL;
    }
    pthread_mutex_lock(&b->lock);
    int r = ATOMIO_E_SEQUENCE;
    sqe_nop(sqe);
    if (b->state == ST_STORE_WRITTEN) {
        b->state = ST_SYNC_INFLIGHT;
        r = 0;
#ifdef ATOMIO_TESTING
        /* The crash simulator's self-test: a protocol without durability must be caught. */
        b->sync_skipped = atomic_load(&atomio__test_skip_dw_durability) != 0;
#endif
        if (!b->sync_skipped) {
            b->sync_ticket = atomio__store_flush_begin(b->ctx);
            sqe->opcode = IORING_OP_FSYNC;
            sqe->fd = b->ctx->store->fd;
            sqe->fsync_flags = IORING_FSYNC_DATASYNC;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_complete_store_sync(atomio_doublewrite_batch *b, int cqe_res)
{
    if (!b || cqe_res > 0)
        return ATOMIO_E_INVAL;
    pthread_mutex_lock(&b->lock);
    int r = ATOMIO_E_SEQUENCE;
    if (b->state == ST_SYNC_INFLIGHT) {
        r = b->sync_skipped ? 0 : atomio__store_flush_end(b->ctx, b->sync_ticket, cqe_res);
        if (r == 0)
            r = atomio__store_durable(b->ctx, b->run.rec); /* covered: marks it durable */
        b->state = r == 0 ? ST_DURABLE : ST_DEAD;
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_prep_inplace(atomio_doublewrite_batch *b, size_t i, struct io_uring_sqe *sqe)
{
    if (!b || !sqe) {
        if (sqe)
            sqe_nop(sqe);
        return ATOMIO_E_INVAL;
    }
    pthread_mutex_lock(&b->lock);
    int r;
    if (i >= b->n) {
        r = ATOMIO_E_RANGE;
    } else if ((b->state != ST_DURABLE && b->state != ST_INPLACE) || b->ent[i] != EN_IDLE) {
        r = ATOMIO_E_SEQUENCE;
    } else {
        if (b->state == ST_DURABLE) {
            atomio__dw_run_inplace_ios(&b->run);
            b->state = ST_INPLACE;
        }
        io_to_sqe(&b->ios[b->slot_of[i]], sqe);
        b->ent[i] = EN_INFLIGHT;
        r = 0;
    }
    if (r < 0)
        sqe_nop(sqe);
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_complete_inplace(atomio_doublewrite_batch *b, size_t i, int cqe_res)
{
    if (!b)
        return ATOMIO_E_INVAL;
    pthread_mutex_lock(&b->lock);
    int r;
    if (i >= b->n) {
        r = ATOMIO_E_RANGE;
    } else if (b->state != ST_INPLACE || b->ent[i] != EN_INFLIGHT) {
        r = ATOMIO_E_SEQUENCE;
    } else if (cqe_res > 0 && (uint32_t)cqe_res > b->ios[b->slot_of[i]].len) {
        r = ATOMIO_E_INVAL; /* not this entry's CQE; judging it could fail a healthy file */
    } else {
        struct atomio_io *io = &b->ios[b->slot_of[i]];
        io->res = cqe_res;
        r = atomio__dw_run_inplace_done(&b->run, b->slot_of[i]);
        b->ent[i] = EN_DONE;
        b->ndone++;
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

int
atomio_doublewrite_done(atomio_doublewrite_batch *b, int *results)
{
    if (!b)
        return ATOMIO_E_INVAL;
    pthread_mutex_lock(&b->lock);
    if (b->state != ST_INPLACE || b->ndone != b->n) {
        pthread_mutex_unlock(&b->lock);
        return ATOMIO_E_SEQUENCE;
    }
    size_t ok = atomio__dw_run_finish(&b->run);
    if (results)
        for (size_t i = 0; i < b->n; i++)
            results[i] = b->items[i].result;
    pthread_mutex_unlock(&b->lock);
    staged_free(b);
    return ok > INT32_MAX ? INT32_MAX : (int)ok;
}

int
atomio_doublewrite_abandon(atomio_doublewrite_batch *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    int r = 0;
    switch (b->state) {
    case ST_STAGED:
        /* Nothing reached the store. */
        (void)atomio__dw_run_abandon(&b->run, false);
        break;
    case ST_STORE_WRITTEN:
    case ST_DURABLE:
    case ST_DEAD:
        /* The record may be (partly) in the store, and none of its pages reached a file:
         * voided, so recovery never brings back pages the engine gave up. */
        r = atomio__dw_run_abandon(&b->run, true);
        break;
    default:
        pthread_mutex_unlock(&b->lock);
        return ATOMIO_E_SEQUENCE;
    }
    pthread_mutex_unlock(&b->lock);
    staged_free(b);
    return r;
}
