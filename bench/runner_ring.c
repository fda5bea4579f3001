/* SPDX-License-Identifier: MIT */
/*
 * runner_ring.c -- --submitter engine: the library runner driven the way an engine with its own
 * io_uring drives libatomio (atomio_uring.h). The bench owns one ring per thread; libatomio fills
 * its SQEs and judges its CQEs:
 *   - DOUBLEWRITE files take the staged protocol: atomio_doublewrite_stage() (the pages are
 *     copied, the bench's buffers are free again), the store write, the store fsync, the
 *     in-place writes from the batch's own copy, atomio_doublewrite_done();
 *   - the other paths take atomio_prep_write() per page and atomio_complete_write().
 * A write call returns once its batch is under way, with up to RING_BATCHES batches in flight,
 * so one batch's store write and fsync overlap the previous batch's in-place writes, as an
 * engine's page cleaner overlaps them. Page writes in flight stay within --qd. A batch that
 * shares a page with a batch in flight waits for that batch first (an engine never writes one
 * page twice at once). A sync finishes every batch, then calls atomio_sync(): durability stays
 * on the engine's schedule. Completions that are not whole pages, and path changes at run time
 * (a DIRECT_ATOMIC file told to take DOUBLEWRITE), end the run with their error.
 */
#include "runner_ring.h"

#include "clock.h"

#ifdef HAVE_LIBURING

#define ATOMIO_EXPERIMENTAL 1
#include <atomio_uring.h>
#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* SQE kinds, in user_data: slot << 32 | kind << 24 | page index. */
enum { K_STORE = 1, K_FSYNC = 2, K_PAGE = 3 };

#define STAGE_RETRY_NS (10ull * 1000 * 1000 * 1000) /* -EAGAIN from stage for this long: fail */

struct rslot {
    int busy;                    /* a batch is under way in this slot */
    int ready;                   /* its pages may be written in place (DW: after the fsync) */
    uint32_t n;                  /* pages in the batch */
    uint32_t next;               /* next page to issue */
    uint32_t left;               /* pages not completed yet */
    void *bufs;                  /* batch pages, atomio_page_alloc() */
    atomio_page_write *w;        /* entries (file, page_no, page) */
    atomio_doublewrite_batch *b; /* DOUBLEWRITE: the staged batch */
};

struct ring_thread {
    struct ring_env *e;
    struct io_uring ring;
    uint64_t stamp;
    uint32_t pages_in_flight;
    uint32_t outstanding; /* SQEs taken whose completion has not been handled */
    int err;
    struct rslot slot[RING_BATCHES];
};

int
ring_supported(void)
{
    return 1;
}

static void
fail(struct ring_thread *t, int err)
{
    if (!t->err)
        t->err = err;
}

/* get_sqe() -- a free SQE, submitting what is queued when the queue is full. */
static struct io_uring_sqe *
get_sqe(struct ring_thread *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    if (!sqe) {
        int r = io_uring_submit(&t->ring);
        if (r < 0) {
            fail(t, r);
            return NULL;
        }
        sqe = io_uring_get_sqe(&t->ring);
    }
    if (!sqe)
        fail(t, -EBUSY);
    else
        t->outstanding++;
    return sqe;
}

/* issue() -- in-place writes of every ready slot, while --qd allows. */
static void
issue(struct ring_thread *t)
{
    const struct ring_env *e = t->e;
    for (uint32_t s = 0; s < RING_BATCHES && !t->err; s++) {
        struct rslot *sl = &t->slot[s];
        while (sl->busy && sl->ready && sl->next < sl->n && t->pages_in_flight < e->c->qd) {
            struct io_uring_sqe *sqe = get_sqe(t);
            if (!sqe)
                return;
            uint32_t i = sl->next;
            int r = e->doublewrite
                        ? atomio_doublewrite_prep_inplace(sl->b, i, sqe)
                        : atomio_prep_write(e->f, sqe, sl->w[i].page_no, sl->w[i].page, e->wflags);
            sqe->user_data = (uint64_t)s << 32 | (uint64_t)K_PAGE << 24 | i;
            if (r < 0) {
                fail(t, r); /* the SQE is a NOP now: submitted harmlessly */
                return;
            }
            sl->next++;
            t->pages_in_flight++;
        }
    }
}

/* finish_slot() -- every page of the slot completed. */
static void
finish_slot(struct ring_thread *t, struct rslot *sl)
{
    if (t->e->doublewrite) {
        int r = atomio_doublewrite_done(sl->b, NULL);
        if (r < 0)
            fail(t, r);
        else if ((uint32_t)r != sl->n)
            fail(t, ATOMIO_E_FAILED); /* an in-place error was already reported (fail()) */
        sl->b = NULL;
    }
    sl->busy = 0;
}

/* on_cqe() -- one completion, judged by the library; moves its batch on. */
static void
on_cqe(struct ring_thread *t, uint64_t ud, int res)
{
    const struct ring_env *e = t->e;
    struct rslot *sl = &t->slot[ud >> 32];
    int kind = (int)(ud >> 24 & 0xff);
    uint32_t i = (uint32_t)(ud & 0xffffff);
    int r;
    switch (kind) {
    case K_STORE:
    case K_FSYNC:
        r = kind == K_STORE ? atomio_doublewrite_complete_store(sl->b, res)
                            : atomio_doublewrite_complete_store_sync(sl->b, res);
        if (r < 0) {
            /* Nothing went in place: give the batch up (its record is voided). */
            fail(t, r);
            (void)atomio_doublewrite_abandon(sl->b);
            sl->b = NULL;
            sl->busy = 0;
            return;
        }
        if (kind == K_FSYNC) {
            sl->ready = 1;
            return;
        }
        struct io_uring_sqe *sqe = get_sqe(t);
        if (!sqe)
            return; /* the batch stays half-way: the run ends with the error */
        r = atomio_doublewrite_prep_store_sync(sl->b, sqe);
        sqe->user_data = ud >> 32 << 32 | (uint64_t)K_FSYNC << 24;
        if (r < 0)
            fail(t, r);
        return;
    case K_PAGE:
        t->pages_in_flight--;
        r = e->doublewrite ? atomio_doublewrite_complete_inplace(sl->b, i, res)
                           : atomio_complete_write(e->f, res, e->c->page_size);
        if (r < 0)
            fail(t, r);
        if (--sl->left == 0)
            finish_slot(t, sl);
        return;
    }
    fail(t, -EPROTO);
}

/* reap() -- handle the completions there are (wait: at least one), then issue and submit.
 * Returns 0, or the error that ended waiting. */
static int
reap(struct ring_thread *t, int wait)
{
    struct io_uring_cqe *cqe;
    if (wait && t->outstanding == 0) {
        issue(t);
        if (t->outstanding == 0) {
            /* Waiting for a batch that has nothing in flight would never return. */
            fail(t, -EDEADLK);
            return -EDEADLK;
        }
    }
    int r = io_uring_submit(&t->ring);
    if (r < 0) {
        fail(t, r);
        return r;
    }
    r = wait ? io_uring_wait_cqe(&t->ring, &cqe) : io_uring_peek_cqe(&t->ring, &cqe);
    int werr = wait && r < 0 && r != -EINTR ? r : 0;
    while (r == 0) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&t->ring, cqe);
        t->outstanding--;
        on_cqe(t, ud, res);
        r = io_uring_peek_cqe(&t->ring, &cqe);
    }
    if (werr)
        fail(t, werr);
    issue(t);
    r = io_uring_submit(&t->ring);
    if (r < 0)
        fail(t, r);
    return werr;
}

static int
busy_slots(const struct ring_thread *t)
{
    int n = 0;
    for (uint32_t s = 0; s < RING_BATCHES; s++)
        n += t->slot[s].busy;
    return n;
}

/* overlaps() -- whether slot sl, in flight, writes one of pages[0..n). */
static int
overlaps(const struct rslot *sl, const uint64_t *pages, uint32_t n)
{
    for (uint32_t i = 0; i < sl->n; i++)
        for (uint32_t j = 0; j < n; j++)
            if (sl->w[i].page_no == pages[j])
                return 1;
    return 0;
}

/* drain() -- finish every batch in flight. */
static int
drain(struct ring_thread *t)
{
    while (busy_slots(t) && !t->err)
        reap(t, 1);
    return t->err;
}

/* stage() -- the DOUBLEWRITE batch's first steps: staged, its store write queued. */
static void
stage(struct ring_thread *t, uint32_t s)
{
    struct rslot *sl = &t->slot[s];
    uint64_t t0 = 0;
    for (;;) {
        int r = atomio_doublewrite_stage(t->e->ctx, sl->w, sl->n, 0, &sl->b);
        if (r == 0)
            break;
        if (r != -EAGAIN) {
            fail(t, r);
            sl->busy = 0;
            return;
        }
        /* The store has room once batches in flight finish: ours, or another process's. */
        if (!t0)
            t0 = now_ns();
        if (now_ns() - t0 > STAGE_RETRY_NS) {
            fail(t, r);
            sl->busy = 0;
            return;
        }
        if (busy_slots(t) > 1)
            reap(t, 1);
        else
            sched_yield();
        if (t->err) {
            sl->busy = 0;
            return;
        }
    }
    struct io_uring_sqe *sqe = get_sqe(t);
    if (!sqe)
        return;
    int r = atomio_doublewrite_prep_store(sl->b, sqe);
    sqe->user_data = (uint64_t)s << 32 | (uint64_t)K_STORE << 24;
    if (r < 0)
        fail(t, r);
}

static void *
rt_init(void *arg, unsigned tid)
{
    struct ring_env *e = arg;
    const struct wl_config *c = e->c;
    struct ring_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->e = e;
    unsigned entries = 8;
    while (entries < c->qd + 2 * RING_BATCHES + 2)
        entries <<= 1;
    if (io_uring_queue_init(entries, &t->ring, 0) < 0) {
        free(t);
        return NULL;
    }
    for (uint32_t s = 0; s < RING_BATCHES; s++) {
        struct rslot *sl = &t->slot[s];
        sl->bufs = atomio_page_alloc(e->ctx, c->page_size, c->batch);
        sl->w = calloc(c->batch, sizeof(*sl->w));
        if (!sl->bufs || !sl->w) {
            for (uint32_t k = 0; k <= s; k++) {
                if (t->slot[k].bufs)
                    atomio_page_free(e->ctx, t->slot[k].bufs, c->page_size, c->batch);
                free(t->slot[k].w);
            }
            io_uring_queue_exit(&t->ring);
            free(t);
            return NULL;
        }
        wl_fill_pages(sl->bufs, (size_t)c->page_size * c->batch, c->proc_index * c->threads + tid);
    }
    return t;
}

static int
rt_write(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    (void)lat;
    struct ring_thread *t = ts;
    const struct wl_config *c = t->e->c;
    if (t->err)
        return t->err;
    /* A page still being written by a batch in flight: that batch finishes first. */
    for (uint32_t s = 0; s < RING_BATCHES; s++)
        while (t->slot[s].busy && overlaps(&t->slot[s], pages, n) && !t->err)
            reap(t, 1);
    while (busy_slots(t) == RING_BATCHES && !t->err)
        reap(t, 1);
    if (t->err)
        return t->err;
    uint32_t s = 0;
    while (t->slot[s].busy)
        s++;
    struct rslot *sl = &t->slot[s];
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *p = (unsigned char *)sl->bufs + (size_t)i * c->page_size;
        uint64_t v[2] = {pages[i], ++t->stamp};
        memcpy(p, v, sizeof(v));
        sl->w[i] = (atomio_page_write){.file = t->e->f, .page_no = pages[i], .page = p};
    }
    *sl = (struct rslot){.busy = 1, .n = n, .left = n, .bufs = sl->bufs, .w = sl->w};
    if (t->e->doublewrite)
        stage(t, s);
    else
        sl->ready = 1;
    reap(t, 0); /* issue, submit, and take what has completed meanwhile */
    return t->err;
}

static int
rt_quiesce(void *ts)
{
    return drain(ts);
}

static int
rt_sync(void *ts)
{
    struct ring_thread *t = ts;
    int r = drain(t);
    return r ? r : atomio_sync(t->e->f);
}

static void
rt_fini(void *ts)
{
    struct ring_thread *t = ts;
    struct ring_env *e = t->e;
    int r = drain(t);
    /* After an error, SQEs may still be in flight: the kernel must be done with the buffers
     * before they are freed. Their completions are still judged (no new page is issued once
     * the thread has failed), so a batch whose in-place writes never started can be given up. */
    while (t->outstanding > 0)
        if (reap(t, 1) < 0)
            break;
    if (r) {
        int zero = 0;
        atomic_compare_exchange_strong(&e->err, &zero, r);
    }
    for (uint32_t s = 0; s < RING_BATCHES; s++) {
        /* A batch cut short half-way through its in-place writes can be neither finished nor
         * given up: it stays (its record kept for recovery); the run has failed anyway. */
        if (t->slot[s].b && t->slot[s].next == 0)
            (void)atomio_doublewrite_abandon(t->slot[s].b);
        atomio_page_free(e->ctx, t->slot[s].bufs, e->c->page_size, e->c->batch);
        free(t->slot[s].w);
    }
    io_uring_queue_exit(&t->ring);
    free(t);
}

static void
rt_mark(void *arg, int phase)
{
    struct ring_env *e = arg;
    e->mark(e->mark_arg, phase);
}

static void
rt_strerr(void *arg, int err, char *buf, size_t len)
{
    (void)arg;
    snprintf(buf, len, "%s (%s)", atomio_err_name(err), atomio_strerror(err));
}

void
ring_ops(struct ring_env *e, struct wl_ops *ops)
{
    *ops = (struct wl_ops){
        .arg = e,
        .thread_init = rt_init,
        .write_batch = rt_write,
        .sync = rt_sync,
        .thread_fini = rt_fini,
        .mark = rt_mark,
        .strerr = rt_strerr,
        .page_lat = 0,
        .quiesce = rt_quiesce,
    };
}

#else /* !HAVE_LIBURING */

int
ring_supported(void)
{
    return 0;
}

void
ring_ops(struct ring_env *e, struct wl_ops *ops)
{
    (void)e;
    (void)ops; /* never called: the session refuses --submitter engine without liburing */
}

#endif
