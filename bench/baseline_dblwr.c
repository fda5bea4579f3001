/* SPDX-License-Identifier: MIT */
/*
 * baseline_dblwr.c -- atomio-baseline-dblwr: a bare InnoDB-style doublewrite, no libatomio.
 * Per batch: copy the pages into the thread's doublewrite segment buffer, write the segment
 * with one sequential write to FILE.bare-dblwr, fdatasync it, write every page in place (all in
 * flight together through io_uring at --qd, or one by one with --submitter sync), fdatasync
 * the data file. No checksums, headers or recovery: the least work a doublewrite can do, which
 * is what the library's DOUBLEWRITE path is measured against.
 */
#include "baseline.h"

#include "progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct state {
    struct bl_args a;
    int fd, dfd;
    char dpath[4096];
    int use_uring;
    struct bl_counters k;
};

struct thr {
    struct state *s;
    unsigned tid;
    void *bufs; /* the "buffer pool" pages */
    void *seg;  /* the doublewrite segment buffer */
#ifdef HAVE_LIBURING
    struct io_uring ring;
    int ring_ok;
#endif
};

static void *
t_init(void *arg, unsigned tid)
{
    struct state *s = arg;
    struct thr *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->tid = tid;
    t->bufs = bl_alloc_pages(&s->a.c, tid);
    t->seg = bl_alloc_pages(&s->a.c, tid + 1000);
    if (!t->bufs || !t->seg)
        goto fail;
#ifdef HAVE_LIBURING
    if (s->use_uring) {
        unsigned entries = s->a.c.qd < s->a.c.batch ? s->a.c.qd : s->a.c.batch;
        int rc = io_uring_queue_init(entries, &t->ring, 0);
        if (rc < 0) {
            runtime_error(NULL, "io_uring_queue_init(%u): %s", entries, strerror(-rc));
            goto fail;
        }
        t->ring_ok = 1;
    }
#endif
    return t;
fail:
    free(t->bufs);
    free(t->seg);
    free(t);
    return NULL;
}

static int
t_write(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct thr *t = ts;
    struct state *s = t->s;
    uint32_t ps = s->a.c.page_size;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *p = (unsigned char *)t->bufs + (size_t)i * ps;
        memcpy(p, &pages[i], 8);
        memcpy((unsigned char *)t->seg + (size_t)i * ps, p, ps);
    }
    /* 1. the whole batch, one sequential write into this thread's segment */
    uint64_t seg_off = (uint64_t)t->tid * s->a.c.batch * ps;
    struct iovec iov = {t->seg, (size_t)n * ps};
    ssize_t w;
    do
        w = pwritev2(s->dfd, &iov, 1, (off_t)seg_off, 0);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)iov.iov_len)
        return w < 0 ? -errno : -EIO;
    atomic_fetch_add_explicit(&s->k.bytes_doublewrite, iov.iov_len, memory_order_relaxed);
    /* 2. durable before any in-place write starts */
    if (fdatasync(s->dfd) != 0)
        return -errno;
    atomic_fetch_add_explicit(&s->k.syncs, 1, memory_order_relaxed);
    /* 3. in place, all in flight together */
    int rc = 0;
#ifdef HAVE_LIBURING
    if (t->ring_ok) {
        rc = bl_uring_write(&t->ring, s->fd, t->bufs, ps, pages, n, s->a.c.qd, 0, lat, t0);
    } else
#endif
    {
        for (uint32_t i = 0; i < n && !rc; i++) {
            rc = bl_pwrite_page(s->fd, (unsigned char *)t->bufs + (size_t)i * ps, ps, pages[i] * ps,
                                0);
            lat[i] = now_ns() - t0;
        }
    }
    if (rc)
        return rc;
    atomic_fetch_add_explicit(&s->k.bytes_data, (uint64_t)n * ps, memory_order_relaxed);
    /* 4. the data file durable: only now may the segment be reused */
    if (fdatasync(s->fd) != 0)
        return -errno;
    atomic_fetch_add_explicit(&s->k.syncs, 1, memory_order_relaxed);
    return 0;
}

static int
t_sync(void *ts)
{
    struct thr *t = ts;
    atomic_fetch_add_explicit(&t->s->k.syncs, 1, memory_order_relaxed);
    return fdatasync(t->s->fd) == 0 ? 0 : -errno;
}

static void
t_fini(void *ts)
{
    struct thr *t = ts;
#ifdef HAVE_LIBURING
    if (t->ring_ok)
        io_uring_queue_exit(&t->ring);
#endif
    free(t->bufs);
    free(t->seg);
    free(t);
}

static void
t_mark(void *arg, int phase)
{
    struct state *s = arg;
    bl_count_mark(&s->k, phase);
}

/* make_store() -- FILE.bare-dblwr, one batch-sized segment per thread, written once so the
 * batch writes are overwrites of allocated blocks (as InnoDB's preallocated doublewrite). */
static int
make_store(struct state *s, int *o_direct)
{
    snprintf(s->dpath, sizeof(s->dpath), "%s.bare-dblwr", s->a.c.file);
    s->dfd = bl_open(&s->a, s->dpath, o_direct);
    size_t seg = (size_t)s->a.c.batch * s->a.c.page_size;
    void *buf = bl_alloc_pages(&s->a.c, 7);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (unsigned t = 0; t < s->a.c.threads && !rc; t++) {
        ssize_t w = pwrite(s->dfd, buf, seg, (off_t)(t * seg));
        if (w != (ssize_t)seg)
            rc = w < 0 ? -errno : -EIO;
    }
    free(buf);
    if (!rc && fdatasync(s->dfd) != 0)
        rc = -errno;
    return rc;
}

int
main(int argc, char **argv)
{
    static struct state s;
    bench_progname = "atomio-baseline-dblwr";
    bl_parse(&s.a,
             "Bare InnoDB-style doublewrite (sequential batch write, fdatasync, in-place\n"
             "writes in flight together, fdatasync) with the same workload knobs and JSON\n"
             "record as atomio-bench; no libatomio. The store is FILE.bare-dblwr,\n"
             "removed at exit.",
             0, argc, argv);
    bl_prepare(&s.a);
    struct wl_result r;
    if (wl_result_alloc(&r) != 0)
        return BENCH_EXIT_RUNTIME;
    s.fd = bl_open(&s.a, s.a.c.file, &r.o_direct);
    int dd;
    int rc = make_store(&s, &dd);
    if (rc < 0) {
        runtime_error(NULL, "%s: %s", s.dpath, strerror(-rc));
        unlink(s.dpath);
        return BENCH_EXIT_RUNTIME;
    }
#ifdef HAVE_LIBURING
    s.use_uring = s.a.c.submitter != WL_SUBMIT_SYNC;
#endif
    snprintf(r.name, sizeof(r.name), "bare-dblwr");
    snprintf(r.submitter, sizeof(r.submitter), "%s", s.use_uring ? "uring" : "sync");
    r.qd_effective = s.use_uring ? s.a.c.qd : 1;
    struct wl_ops ops = {
        .arg = &s,
        .thread_init = t_init,
        .write_batch = t_write,
        .sync = t_sync,
        .thread_fini = t_fini,
        .mark = t_mark,
        .page_lat = 1,
    };
    struct progress *prog = progress_start(s.a.c.progress, 1, 0);
    progress_run_begin(prog, r.name, s.a.c.pages,
                       (double)(s.a.c.warmup_ns + s.a.c.duration_ns) / 1e9);
    wl_run(&s.a.c, &ops, &r, progress_add_pages, prog);
    progress_stop(prog);
    bl_count_into(&s.k, &r);
    close(s.fd);
    close(s.dfd);
    unlink(s.dpath);
    rc = bl_output(&s.a, "baseline-dblwr", &r);
    wl_result_free(&r);
    return rc;
}
