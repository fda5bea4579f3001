/* SPDX-License-Identifier: MIT */
/*
 * baseline_pwritev2.c -- atomio-baseline-pwritev2: the bare synchronous loop. Each page is one
 * pwritev2() (with RWF_ATOMIC under --atomic), each sync one fdatasync(). No libatomio: this is
 * what the library's sync submitter is measured against.
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
    if (!t->bufs) {
        free(t);
        return NULL;
    }
    return t;
}

static int
t_write(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct thr *t = ts;
    uint32_t ps = t->s->a.c.page_size;
    int flags = t->s->a.atomic ? RWF_ATOMIC : 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *p = (unsigned char *)t->bufs + (size_t)i * ps;
        memcpy(p, &pages[i], sizeof(pages[i]));
        uint64_t t0 = now_ns();
        int rc = bl_pwrite_page(t->s->fd, p, ps, pages[i] * ps, flags);
        lat[i] = now_ns() - t0;
        if (rc)
            return rc;
        atomic_fetch_add_explicit(&t->s->k.bytes_data, ps, memory_order_relaxed);
    }
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
    bench_progname = "atomio-baseline-pwritev2";
    bl_parse(&s.a,
             "Bare pwritev2() loop (plain, or RWF_ATOMIC with --atomic) with the same\n"
             "workload knobs and JSON record as atomio-bench; no libatomio.",
             BL_ALLOW_ATOMIC, argc, argv);
    bl_prepare(&s.a);
    struct wl_result r;
    if (wl_result_alloc(&r) != 0)
        return BENCH_EXIT_RUNTIME;
    s.fd = bl_open(&s.a, s.a.c.file, &r.o_direct);
    snprintf(r.name, sizeof(r.name), "bare-pwritev2%s", s.a.atomic ? "-atomic" : "");
    snprintf(r.submitter, sizeof(r.submitter), "sync");
    r.qd_effective = 1;
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
    int rc = bl_output(&s.a, "baseline-pwritev2", &r);
    wl_result_free(&r);
    return rc;
}
