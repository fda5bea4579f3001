/* SPDX-License-Identifier: MIT */
/*
 * submit_uring.c -- the io_uring submitter (liburing). One submit call puts all its writes in
 * flight together, up to the ctx's queue depth (a sliding window beyond it), and reaps the
 * completions together: for a batch that fits the ring that is one io_uring_enter() for
 * submission and waiting both. Each write is a plain IORING_OP_WRITE with the path's RWF_*
 * flags in sqe->rw_flags (RWF_ATOMIC works there since 6.11; WRITE_FIXED would turn the
 * buffer into a bvec the atomic checks refuse, so registered buffers are never used).
 *
 * Completions: the result goes to io->res as it is. -EAGAIN resubmits the whole write; a short
 * count is reported unchanged (the path fails the file -- the tail of an atomic write is never
 * retried). If the ring itself breaks mid-batch, what the kernel took is reaped, the ring is
 * dropped and the writes it never took are issued with pwritev2, so every io still gets a
 * result of its own.
 *
 * fork(): rings are shared with the process that created them, so a forked child that uses an
 * inherited ctx gets pwritev2 on it; a ctx the child opens itself uses rings of its own.
 *
 * Threads: one ring per thread per ctx (docs/design.md, "Submission and threads", has the
 * measurements behind this). A thread leases a ring on first use and keeps it in a small
 * thread-local table; when the thread exits (or needs the slot for another ctx) the ring goes
 * back to its ctx's idle list, so thread churn reuses rings instead of growing them. Every ring
 * is freed at ctx close. A thread whose ring cannot be set up (ring or fd limits) uses
 * pwritev2, counted as a fallback.
 */
#include "submit_uring.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define LEASES        4         /* ctxs a thread holds a ring for at once */
#define STALL_RETRIES 1000      /* io_uring_enter -EAGAIN/-EBUSY with nothing in the kernel */
#define PENDING       INT64_MIN /* io->res of a write that has no completion yet */

#ifndef IORING_NOP_INJECT_RESULT
#define IORING_NOP_INJECT_RESULT (1U << 0) /* Linux 6.9: NOP completes with sqe->len */
#endif

#ifdef ATOMIO_TESTING
_Atomic int atomio__uring_fail_setup;
_Atomic int atomio__uring_inject_eagain;
#endif

struct ring {
    struct io_uring ring;
    struct ring *next_all;  /* every ring of the ctx */
    struct ring *next_idle; /* rings no thread holds */
};

struct uring_state {
    uint64_t id;       /* never reused: stale thread-local leases cannot match */
    unsigned fork_gen; /* fork_gen when the rings were made */
    atomio_ctx *ctx;
    unsigned qd;
    unsigned setup_flags;
    bool wait_all;        /* SUBMIT_ALL: the kernel never stops a submission half-way */
    pthread_mutex_t lock; /* all, idle, nrings */
    struct ring *all;
    struct ring *idle;
    unsigned nrings;
    struct uring_state *reg_next;
    _Atomic unsigned max_inflight;
    _Atomic uint64_t batches, enters, eagain_resubmits, thread_fallbacks, sync_ios;
};

/* Live states, so a thread exiting can hand its rings back only to a ctx still open. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uring_state *reg_head;
static _Atomic uint64_t next_id = 1;

struct lease {
    uint64_t id;       /* 0 = free slot */
    struct ring *ring; /* NULL: this thread could not get a ring; use pwritev2 */
};
static __thread struct lease leases[LEASES];
static __thread unsigned lease_evict;
static pthread_key_t exit_key;
static bool exit_key_ok;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Bumped in every forked child: a ctx's rings are mapped shared with the process that made
 * them, so a child must never submit on them (it uses pwritev2 on that ctx instead). */
static _Atomic unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ---- rings ------------------------------------------------------------------------------ */

static int
ring_setup(unsigned entries, struct io_uring *ring, unsigned flags)
{
#ifdef ATOMIO_TESTING
    int fault = atomic_load_explicit(&atomio__uring_fail_setup, memory_order_relaxed);
    if (fault)
        return fault;
#endif
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = flags;
    return io_uring_queue_init_params(entries, ring, &p);
}

/* ring_new() -- one more ring for st, or NULL with *err set. */
static struct ring *
ring_new(struct uring_state *st, int *err)
{
    struct ring *r = calloc(1, sizeof(*r));
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }
    *err = ring_setup(st->qd, &r->ring, st->setup_flags);
    if (*err) {
        free(r);
        return NULL;
    }
    pthread_mutex_lock(&st->lock);
    r->next_all = st->all;
    st->all = r;
    st->nrings++;
    pthread_mutex_unlock(&st->lock);
    return r;
}

/* ring_drop() -- unlink and close a ring that broke (nothing of it may be in flight). */
static void
ring_drop(struct uring_state *st, struct ring *r)
{
    pthread_mutex_lock(&st->lock);
    for (struct ring **pp = &st->all; *pp; pp = &(*pp)->next_all) {
        if (*pp == r) {
            *pp = r->next_all;
            st->nrings--;
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
    io_uring_queue_exit(&r->ring);
    free(r);
}

/* ---- leases ----------------------------------------------------------------------------- */

/* lease_return() -- give a slot's ring back to its ctx, if that ctx is still open. */
static void
lease_return(struct lease *l)
{
    if (l->ring) {
        pthread_mutex_lock(&reg_lock);
        for (struct uring_state *st = reg_head; st; st = st->reg_next) {
            if (st->id == l->id) {
                pthread_mutex_lock(&st->lock);
                l->ring->next_idle = st->idle;
                st->idle = l->ring;
                pthread_mutex_unlock(&st->lock);
                break;
            }
        }
        pthread_mutex_unlock(&reg_lock);
    }
    l->id = 0;
    l->ring = NULL;
}

static void
thread_exit(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < LEASES; i++)
        if (leases[i].id)
            lease_return(&leases[i]);
}

static void
make_exit_key(void)
{
    /* Without the key a thread's rings would only come back at ctx close: still correct. */
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

/* unload() -- a dlclose()d library must not leave its destructor behind in the key. */
__attribute__((destructor)) static void
unload(void)
{
    if (exit_key_ok)
        pthread_key_delete(exit_key);
}

/* The registry lock is held across fork(), so a child never inherits it locked. */
static void
fork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void
fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

static void
fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
    pthread_mutex_unlock(&reg_lock);
}

static void
register_atfork(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/*
 * lease_get() -- the calling thread's ring for st: the cached one, an idle one, or a new one.
 * NULL means this thread could not get a ring (remembered; it uses pwritev2 from now on).
 */
static struct ring *
lease_get(struct uring_state *st)
{
    for (unsigned i = 0; i < LEASES; i++)
        if (leases[i].id == st->id)
            return leases[i].ring;

    struct lease *slot = NULL;
    for (unsigned i = 0; i < LEASES && !slot; i++)
        if (!leases[i].id)
            slot = &leases[i];
    if (!slot) {
        slot = &leases[lease_evict++ % LEASES];
        lease_return(slot);
    }

    pthread_mutex_lock(&st->lock);
    struct ring *r = st->idle;
    if (r)
        st->idle = r->next_idle;
    pthread_mutex_unlock(&st->lock);
    if (!r) {
        int err;
        r = ring_new(st, &err);
        if (!r) {
            atomic_fetch_add_explicit(&st->thread_fallbacks, 1, memory_order_relaxed);
            ATOMIO_COUNT(&st->ctx->stats, uring_fallbacks, 1);
        }
    }
    slot->id = st->id;
    slot->ring = r;
    pthread_once(&exit_key_once, make_exit_key);
    if (exit_key_ok)
        pthread_setspecific(exit_key, leases); /* non-NULL, so thread_exit runs */
    return r;
}

/* lease_forget() -- the thread's ring for st broke: use pwritev2 from now on. */
static void
lease_forget(struct uring_state *st)
{
    for (unsigned i = 0; i < LEASES; i++)
        if (leases[i].id == st->id)
            leases[i].ring = NULL;
}

/* ---- one batch -------------------------------------------------------------------------- */

static void
prep_write(struct io_uring_sqe *sqe, const struct atomio_io *io, size_t idx)
{
#ifdef ATOMIO_TESTING
    int inj = atomic_load_explicit(&atomio__uring_inject_eagain, memory_order_relaxed);
    while (inj > 0 && !atomic_compare_exchange_weak(&atomio__uring_inject_eagain, &inj, inj - 1))
        ;
    if (inj > 0) {
        io_uring_prep_nop(sqe);
        sqe->rw_flags = IORING_NOP_INJECT_RESULT; /* nop_flags shares the union (6.9) */
        sqe->len = (unsigned)-EAGAIN;
        io_uring_sqe_set_data64(sqe, idx);
        return;
    }
#endif
    if (io->iovcnt)
        io_uring_prep_writev(sqe, io->fd, io->iov, io->iovcnt, io->off);
    else
        io_uring_prep_write(sqe, io->fd, io->buf, io->len, io->off);
    /* Never an append: the kernel would check an atomic write's alignment at off and then
     * write at end of file. */
    ATOMIO_ASSERT(!(io->rwflags & RWF_APPEND));
    sqe->rw_flags = io->rwflags;
    io_uring_sqe_set_data64(sqe, idx);
}

/*
 * salvage() -- the ring failed in a way we cannot wait out. Reap what the kernel already took
 * (its buffers are in use until then), drop the ring, and issue every write still without a
 * completion through pwritev2. in_kernel: SQEs the kernel consumed whose CQE is not reaped.
 */
static void
salvage(struct uring_state *st, struct ring *r, struct atomio_io *ios, size_t n, unsigned in_kernel)
{
    unsigned tries = 0;
    while (in_kernel > 0) {
        struct io_uring_cqe *cqe;
        int w = io_uring_wait_cqe(&r->ring, &cqe);
        if (w == -EINTR)
            continue;
        if (w < 0) {
            /* Cannot reap: writes may still be running. Never re-issue over them. */
            if (++tries > STALL_RETRIES)
                break;
            sched_yield();
            continue;
        }
        size_t idx = (size_t)io_uring_cqe_get_data64(cqe);
        if (idx < n)
            ios[idx].res = cqe->res == -EAGAIN ? PENDING : cqe->res;
        io_uring_cqe_seen(&r->ring, cqe);
        in_kernel--;
    }
    lease_forget(st);
    ring_drop(st, r);
    for (size_t i = 0; i < n; i++) {
        if (ios[i].res != PENDING)
            continue;
        if (in_kernel > 0) {
            ios[i].res = -EIO; /* its fate is unknown; the caller must not assume it landed */
            continue;
        }
        atomio__submit_sync.submit(st->ctx, &ios[i], 1);
        atomic_fetch_add_explicit(&st->sync_ios, 1, memory_order_relaxed);
    }
}

static void
note_max(_Atomic unsigned *m, unsigned v)
{
    unsigned cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

/* queue_upto() -- prepare SQEs for ios[*next..limit) while fewer than qd are in flight. */
static void
queue_upto(struct ring *r, struct atomio_io *ios, size_t limit, unsigned qd, size_t *next,
           unsigned *inflight)
{
    while (*inflight < qd && *next < limit) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
        if (!sqe)
            break; /* cannot happen with inflight < qd; submit what we have */
        prep_write(sqe, &ios[*next], *next);
        (*next)++;
        (*inflight)++;
    }
}

static void
run_batch(struct uring_state *st, struct ring *r, struct atomio_io *ios, size_t n, size_t first,
          void (*work)(void *), void *arg)
{
    const unsigned qd = st->qd;
    size_t next = 0;       /* first io never prepared */
    size_t done = 0;       /* ios with their final result */
    unsigned inflight = 0; /* prepared SQEs whose CQE is not reaped */
    unsigned peak = 0;
    unsigned stalls = 0;
    uint64_t enters = 0, resubmits = 0;

    for (size_t i = 0; i < n; i++)
        ios[i].res = PENDING;

    if (work) {
        /* ios[0..first) go to the kernel now; the caller's work overlaps their transfer. A
         * failed submit leaves the SQEs queued: the loop below submits them again. */
        queue_upto(r, ios, first, qd, &next, &inflight);
        if (inflight) {
            (void)io_uring_submit(&r->ring);
            enters++;
        }
        work(arg);
    }

    while (done < n) {
        queue_upto(r, ios, n, qd, &next, &inflight);
        if (inflight > peak)
            peak = inflight;
        /* Everything queued: wait for all of it in the same call. Otherwise wait for one
         * completion, so the window slides as soon as a slot frees. */
        unsigned want = st->wait_all && next == n ? inflight : 1;
        int ret = io_uring_submit_and_wait(&r->ring, want);
        enters++;
        if (ret < 0 && ret != -EINTR) {
            unsigned in_kernel = inflight - io_uring_sq_ready(&r->ring);
            if ((ret == -EAGAIN || ret == -EBUSY) && ++stalls <= STALL_RETRIES) {
                /* Kernel short of request memory or CQ space: let completions drain. */
                if (in_kernel == 0)
                    sched_yield();
                else if (io_uring_cq_ready(&r->ring) == 0) {
                    struct io_uring_cqe *cqe;
                    (void)io_uring_wait_cqe(&r->ring, &cqe);
                }
            } else {
                salvage(st, r, ios, n, in_kernel);
                goto out;
            }
        }

        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&r->ring, head, cqe)
        {
            seen++;
            size_t idx = (size_t)io_uring_cqe_get_data64(cqe);
            ATOMIO_ASSERT(idx < n && ios[idx].res == PENDING);
            if (cqe->res == -EAGAIN) {
                /* Nothing was written: the whole write goes again (its slot is free now). */
                struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
                if (sqe) {
                    prep_write(sqe, &ios[idx], idx);
                    resubmits++;
                    continue;
                }
            }
            ios[idx].res = cqe->res;
            inflight--;
            done++;
        }
        io_uring_cq_advance(&r->ring, seen);
    }
out:
    note_max(&st->max_inflight, peak);
    atomic_fetch_add_explicit(&st->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->enters, enters, memory_order_relaxed);
    if (resubmits)
        atomic_fetch_add_explicit(&st->eagain_resubmits, resubmits, memory_order_relaxed);
}

static bool
all_buffered(const struct atomio_io *ios, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ios[i].file || ios[i].file->o_direct)
            return false;
    return true;
}

static int
uring_submit_overlap(atomio_ctx *ctx, struct atomio_io *ios, size_t n, size_t first,
                     void (*work)(void *), void *arg)
{
    struct uring_state *st = ctx->uring;
    if (n == 0) {
        if (work)
            work(arg);
        return 0;
    }
    /* Writes to the page cache gain nothing from a ring: each is a memory copy, and one the
     * kernel cannot finish inline is handed to an io-wq worker (two context switches).
     * pwritev2 copies them in the caller's own time: measured on ext4, 8 KiB pages, batches of
     * 64, it wrote 1.3-1.6x the pages per second. */
    if (!work && all_buffered(ios, n))
        return atomio__submit_sync.submit(ctx, ios, n);
    struct ring *r = NULL;
    if (st && st->fork_gen == atomic_load_explicit(&fork_gen, memory_order_relaxed))
        r = lease_get(st);
    if (!r) {
        if (st)
            atomic_fetch_add_explicit(&st->sync_ios, n, memory_order_relaxed);
        if (work)
            work(arg);
        return atomio__submit_sync.submit(ctx, ios, n);
    }
    run_batch(st, r, ios, n, first < n ? first : n, work, arg);
    return 0;
}

static int
uring_submit(atomio_ctx *ctx, struct atomio_io *ios, size_t n)
{
    return uring_submit_overlap(ctx, ios, n, 0, NULL, NULL);
}

const struct atomio_submit_ops atomio__submit_uring = {
    .id = ATOMIO_SUBMIT_URING,
    .name = "io_uring",
    .submit = uring_submit,
    .submit_overlap = uring_submit_overlap,
};

/* ---- ctx lifecycle ---------------------------------------------------------------------- */

/*
 * pick_setup_flags() -- the most useful setup flags this kernel takes, found by creating the
 * ctx's first ring (kept: it is the first thread's ring). SUBMIT_ALL (5.18) keeps one bad
 * SQE from stopping the rest of a batch; COOP_TASKRUN (5.19) spares the interrupting IPI,
 * since we always enter the kernel to wait anyway.
 */
static int
first_ring(struct uring_state *st)
{
    static const unsigned tries[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
                                     IORING_SETUP_SUBMIT_ALL, 0};
    int err = -EINVAL;
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        st->setup_flags = tries[i];
        struct ring *r = ring_new(st, &err);
        if (r) {
            st->wait_all = (tries[i] & IORING_SETUP_SUBMIT_ALL) != 0;
            struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
            bool has_write = probe && io_uring_opcode_supported(probe, IORING_OP_WRITE);
            if (probe)
                io_uring_free_probe(probe);
            if (!has_write) /* before 5.6 */
                return -EOPNOTSUPP;
            r->next_idle = st->idle;
            st->idle = r;
            return 0;
        }
        if (err != -EINVAL)
            break;
    }
    return err;
}

static void
state_free(struct uring_state *st)
{
    struct ring *r = st->all;
    while (r) {
        struct ring *next = r->next_all;
        io_uring_queue_exit(&r->ring);
        free(r);
        r = next;
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int
atomio__uring_ctx_init(atomio_ctx *ctx)
{
    struct uring_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    pthread_once(&atfork_once, register_atfork);
    st->id = atomic_fetch_add(&next_id, 1);
    st->fork_gen = atomic_load(&fork_gen);
    st->ctx = ctx;
    st->qd = ctx->opts.queue_depth ? ctx->opts.queue_depth : 32;
    pthread_mutex_init(&st->lock, NULL);
    int err = first_ring(st);
    if (err) {
        state_free(st);
        return err;
    }
    pthread_mutex_lock(&reg_lock);
    st->reg_next = reg_head;
    reg_head = st;
    pthread_mutex_unlock(&reg_lock);
    ctx->uring = st;
    return 0;
}

void
atomio__uring_ctx_fini(atomio_ctx *ctx)
{
    struct uring_state *st = ctx->uring;
    if (!st)
        return;
    /* Out of the registry first: an exiting thread can no longer hand a ring back to it. */
    pthread_mutex_lock(&reg_lock);
    for (struct uring_state **pp = &reg_head; *pp; pp = &(*pp)->reg_next) {
        if (*pp == st) {
            *pp = st->reg_next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    /* The closing thread's own lease dies here; other threads' leases carry a dead id. */
    for (unsigned i = 0; i < LEASES; i++)
        if (leases[i].id == st->id)
            leases[i] = (struct lease){0, NULL};
    state_free(st);
    ctx->uring = NULL;
}

int
atomio__uring_diag(const atomio_ctx *ctx, struct atomio_uring_diag *d)
{
    if (!ctx || !d || ctx->submit != &atomio__submit_uring || !ctx->uring)
        return -EINVAL;
    struct uring_state *st = ctx->uring;
    memset(d, 0, sizeof(*d));
    d->queue_depth = st->qd;
    d->setup_flags = st->setup_flags;
    pthread_mutex_lock(&st->lock);
    d->rings = st->nrings;
    pthread_mutex_unlock(&st->lock);
    d->max_inflight = atomic_load_explicit(&st->max_inflight, memory_order_relaxed);
    d->batches = atomic_load_explicit(&st->batches, memory_order_relaxed);
    d->enters = atomic_load_explicit(&st->enters, memory_order_relaxed);
    d->eagain_resubmits = atomic_load_explicit(&st->eagain_resubmits, memory_order_relaxed);
    d->thread_fallbacks = atomic_load_explicit(&st->thread_fallbacks, memory_order_relaxed);
    d->sync_ios = atomic_load_explicit(&st->sync_ios, memory_order_relaxed);
    return 0;
}
