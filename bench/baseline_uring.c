/* SPDX-License-Identifier: MIT */
/*
 * baseline_uring.c -- atomio-baseline-uring: the bare liburing loop. One ring per thread with
 * --qd entries; a batch is submitted with up to qd writes in flight (IORING_OP_WRITE, with
 * sqe->rw_flags = RWF_ATOMIC under --atomic; never WRITE_FIXED, which the kernel refuses with
 * RWF_ATOMIC). No libatomio: the library's io_uring path is measured against this.
 */
#include "baseline.h"

#include "progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct state {
    struct bl_args a;
    int fd;
    struct bl_counters k;
};

struct thr {
    struct state *s;
    void *bufs;
    struct io_uring ring;
};

static void *
t_init(void *arg, unsigned tid)
{
    struct state *s = arg;
    struct thr *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->bufs = bl_alloc_pages(&s->a.c, tid);
    unsigned entries = s->a.c.qd < s->a.c.batch ? s->a.c.qd : s->a.c.batch;
    int rc = t->bufs ? io_uring_queue_init(entries, &t->ring, 0) : -ENOMEM;
    if (rc < 0) {
        runtime_error(NULL, "io_uring_queue_init(%u): %s", entries, strerror(-rc));
        free(t->bufs);
        free(t);
        return NULL;
    }
    return t;
}

static int
t_write(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct thr *t = ts;
    const struct wl_config *c = &t->s->a.c;
    for (uint32_t i = 0; i < n; i++)
        memcpy((unsigned char *)t->bufs + (size_t)i * c->page_size, &pages[i], 8);
    int rc = bl_uring_write(&t->ring, t->s->fd, t->bufs, c->page_size, pages, n, c->qd,
                            t->s->a.atomic ? RWF_ATOMIC : 0, lat, 0);
    if (rc == 0)
        atomic_fetch_add_explicit(&t->s->k.bytes_data, (uint64_t)n * c->page_size,
                                  memory_order_relaxed);
    return rc;
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
    io_uring_queue_exit(&t->ring);
    free(t->bufs);
    free(t);
}

static void
t_mark(void *arg, int phase)
{
    struct state *s = arg;
    bl_count_mark(&s->k, phase);
}

int
main(int argc, char **argv)
{
    static struct state s;
    bench_progname = "atomio-baseline-uring";
    bl_parse(&s.a,
             "Bare liburing loop at a queue depth (plain, or RWF_ATOMIC in sqe->rw_flags\n"
             "with --atomic) with the same workload knobs and JSON record as\n"
             "atomio-bench; no libatomio.",
             BL_ALLOW_ATOMIC, argc, argv);
    bl_prepare(&s.a);
    struct wl_result r;
    if (wl_result_alloc(&r) != 0)
        return BENCH_EXIT_RUNTIME;
    s.fd = bl_open(&s.a, s.a.c.file, &r.o_direct);
    snprintf(r.name, sizeof(r.name), "bare-uring%s", s.a.atomic ? "-atomic" : "");
    snprintf(r.submitter, sizeof(r.submitter), "uring");
    r.qd_effective = s.a.c.qd;
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
    int rc = bl_output(&s.a, "baseline-uring", &r);
    wl_result_free(&r);
    return rc;
}
