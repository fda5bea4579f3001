/* SPDX-License-Identifier: MIT */
/*
 * baseline.c -- the driver of the bare baselines: argument parsing, file set-up, the threads'
 * buffers and rings, counters, the run and its output, plus the one liburing submission loop
 * the uring and doublewrite baselines share. A baseline itself only writes a batch.
 */
#include "baseline.h"

#include "args.h"
#include "progress.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- options, file, counters, output ----------------------------------------------------- */

enum { BO_HELP = 1, BO_ATOMIC, BO_JSON };

/* parse() -- FILE plus the workload options, --atomic (if allowed), --json, --help. */
static void
parse(struct bl_run *run, int argc, char **argv)
{
    static struct opt_spec specs[64];
    size_t n = 0;
    for (const struct opt_spec *s = wl_opt_specs; s->name; s++)
        specs[n++] = *s;
    if (run->b->allow_atomic)
        specs[n++] =
            (struct opt_spec){"atomic", 0, BO_ATOMIC, NULL, "RWF_ATOMIC on every write (O_DIRECT)"};
    specs[n++] = (struct opt_spec){"json", 0, BO_JSON, NULL, "one flat JSON object on stdout"};
    specs[n++] = (struct opt_spec){"help", 0, BO_HELP, NULL, "this help"};
    specs[n].name = NULL;

    wl_config_defaults(&run->c);
    struct opt_iter it;
    opt_init(&it, NULL, specs, argc, argv);
    int id;
    while ((id = opt_next(&it)) >= 0) {
        if (wl_handle_opt(&run->c, NULL, id, it.arg))
            continue;
        switch (id) {
        case 0:
            if (run->c.file)
                usage_error(NULL, "one FILE only (got '%s' and '%s')", run->c.file, it.arg);
            run->c.file = it.arg;
            break;
        case BO_ATOMIC:
            run->atomic = 1;
            break;
        case BO_JSON:
            run->json = 1;
            break;
        case BO_HELP:
            printf("usage: %s FILE [options]\n\n%s\n\n", bench_progname, run->b->summary);
            opt_print_help(stdout, specs);
            printf("\nexit status: 0 ok, 1 runtime error, 2 usage error\n");
            exit(BENCH_EXIT_OK);
        }
    }
    if (!run->c.file)
        usage_error(NULL, "missing FILE (created and filled if it does not exist)");
    wl_check(&run->c, NULL);
}

/* prepare() -- create/fill FILE (exit 1 on failure); it must hold batch x threads pages. */
static void
prepare(struct bl_run *run)
{
    int rc = wl_prepare_file(&run->c, &run->filled);
    if (rc < 0) {
        runtime_error(NULL, "%s: cannot create or fill: %s", run->c.file, strerror(-rc));
        exit(BENCH_EXIT_RUNTIME);
    }
    if (run->c.file_size / run->c.page_size / run->c.threads / run->c.processes < run->c.batch)
        usage_error(NULL, "%s holds %llu pages, fewer than batch x threads x processes (%u x %u x %u)",
                    run->c.file, (unsigned long long)(run->c.file_size / run->c.page_size),
                    run->c.batch, run->c.threads, run->c.processes);
}

static void
count_mark(struct bl_counters *k, int phase)
{
    k->snap[phase][0] = atomic_load(&k->bytes_data);
    k->snap[phase][1] = atomic_load(&k->bytes_doublewrite);
    k->snap[phase][2] = atomic_load(&k->syncs);
}

static void
count_into(const struct bl_counters *k, struct wl_result *r)
{
    r->bytes_data = k->snap[1][0] - k->snap[0][0];
    r->bytes_doublewrite = k->snap[1][1] - k->snap[0][1];
    r->dev_syncs = k->snap[1][2] - k->snap[0][2];
}

/* output() -- one flat JSON object (--json) or a short human summary; the exit status. */
static int
output(const struct bl_run *run, const char *command, struct wl_result *r)
{
    if (run->json) {
        struct json j;
        json_begin(&j, stdout, 0);
        json_obj_open(&j, NULL);
        json_str(&j, "schema", BENCH_SCHEMA);
        json_str(&j, "command", command);
        json_bool(&j, "atomic", run->atomic);
        json_bool(&j, "filled_by_tool", run->filled);
        json_config_fields(&j, &run->c);
        json_run_fields(&j, r, &run->c);
        json_obj_close(&j);
        json_end(&j);
    } else if (!r->err) {
        struct wl_figures f;
        wl_figures_of(r, run->c.page_size, &f);
        char desc[400];
        wl_describe(&run->c, desc, sizeof(desc));
        printf("%s %s%s\n  workload: %s\n", command, run->c.file,
               run->atomic ? " (RWF_ATOMIC)" : "", desc);
        printf("  %.0f pages/s, %.1f MB/s; page latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us; "
               "batch p99 %.1f us\n",
               f.pages_per_s, f.mb_per_s, f.lat_page_p50_us, f.lat_page_p99_us, f.lat_page_p999_us,
               f.lat_batch_p99_us);
        printf("  %.0f device bytes/page, %.3f syncs/page, %.2f CPU us/page\n",
               f.device_bytes_per_page, f.syncs_per_page, f.cpu_us_per_page);
    }
    if (r->err) {
        runtime_error(NULL, "%s", r->errmsg);
        return BENCH_EXIT_RUNTIME;
    }
    return BENCH_EXIT_OK;
}

/* ---- the wl_ops of every baseline --------------------------------------------------------- */

static void
thread_fini(void *ts)
{
    struct bl_thread *t = ts;
    if (t->run->b->thread_fini)
        t->run->b->thread_fini(t);
#ifdef HAVE_LIBURING
    if (t->ring_ok)
        io_uring_queue_exit(&t->ring);
#endif
    free(t->bufs);
    free(t);
}

static void *
thread_init(void *arg, unsigned tid)
{
    struct bl_run *run = arg;
    struct bl_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->run = run;
    t->tid = tid;
    t->bufs = bl_alloc_pages(&run->c, run->c.proc_index * run->c.threads + tid);
    if (!t->bufs)
        goto fail;
#ifdef HAVE_LIBURING
    if (run->use_uring) {
        unsigned entries = run->c.qd < run->c.batch ? run->c.qd : run->c.batch;
        int rc = io_uring_queue_init(entries, &t->ring, 0);
        if (rc < 0) {
            runtime_error(NULL, "io_uring_queue_init(%u): %s", entries, strerror(-rc));
            goto fail;
        }
        t->ring_ok = 1;
    }
#endif
    if (run->b->thread_init && run->b->thread_init(t) != 0)
        goto fail;
    return t;
fail:
    thread_fini(t);
    return NULL;
}

static int
write_batch(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct bl_thread *t = ts;
    for (uint32_t i = 0; i < n; i++)
        memcpy(bl_page(t, i), &pages[i], sizeof(pages[i]));
    return t->run->b->write(t, pages, n, lat);
}

static int
sync_data(void *ts)
{
    struct bl_thread *t = ts;
    atomic_fetch_add_explicit(&t->run->k.syncs, 1, memory_order_relaxed);
    return fdatasync(t->run->fd) == 0 ? 0 : -errno;
}

static void
mark(void *arg, int phase)
{
    struct bl_run *run = arg;
    count_mark(&run->k, phase);
}

/* run_one() -- open the file, set up, run the workload, count; in one writer process. */
static int
run_one(struct bl_run *run, struct wl_result *r, wl_pages_fn *on_pages, void *on_pages_arg)
{
    const struct baseline *b = run->b;
    run->fd = bl_open(run, run->c.file, &r->o_direct);
    if (b->setup) {
        int rc = b->setup(run);
        if (rc) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%s: setup failed", b->progname);
            return r->err = -EIO;
        }
    }
#ifdef HAVE_LIBURING
    run->use_uring = b->submit == BL_URING ||
                     (b->submit == BL_URING_UNLESS_SYNC && run->c.submitter != WL_SUBMIT_SYNC);
#endif
    snprintf(r->name, sizeof(r->name), "%s%s", b->name, run->atomic ? "-atomic" : "");
    snprintf(r->submitter, sizeof(r->submitter), "%s", run->use_uring ? "uring" : "sync");
    r->qd_effective = run->use_uring ? run->c.qd : 1;
    struct wl_ops ops = {
        .arg = run,
        .thread_init = thread_init,
        .write_batch = write_batch,
        .sync = sync_data,
        .thread_fini = thread_fini,
        .mark = mark,
        .page_lat = 1,
    };
    int rc = wl_run(&run->c, &ops, r, on_pages, on_pages_arg);
    count_into(&run->k, r);
    close(run->fd);
    if (b->teardown)
        b->teardown(run);
    return rc;
}

/* A writer process of --processes: its copy of the run with its own config. */
static int
run_proc(void *arg, const struct wl_config *c, struct wl_result *r)
{
    struct bl_run *run = arg;
    run->c = *c;
    return run_one(run, r, NULL, NULL);
}

int
bl_main(const struct baseline *b, int argc, char **argv)
{
    static struct bl_run run;
    run.b = b;
    bench_progname = b->progname;
    parse(&run, argc, argv);
    prepare(&run);
    struct wl_result r;
    if (wl_result_alloc(&r) != 0)
        return BENCH_EXIT_RUNTIME;
    if (run.c.processes > 1) {
        wl_run_processes(&run.c, run_proc, &run, &r);
    } else {
        struct progress *prog = progress_start(run.c.progress, 1, 0);
        progress_run_begin(prog, b->name, run.c.pages,
                           (double)(run.c.warmup_ns + run.c.duration_ns) / 1e9);
        run_one(&run, &r, progress_add_pages, prog);
        progress_stop(prog);
    }
    int rc = output(&run, b->command, &r);
    wl_result_free(&r);
    return rc;
}

/* ---- helpers for the baselines ----------------------------------------------------------- */

int
bl_open(const struct bl_run *run, const char *path, int *o_direct)
{
    int direct = run->atomic || run->c.io_style != WL_IO_BUFFERED;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0) {
        runtime_error(NULL, "open %s%s: %s", path, direct ? " (O_DIRECT)" : "", strerror(errno));
        exit(BENCH_EXIT_RUNTIME);
    }
    *o_direct = direct;
    return fd;
}

void *
bl_alloc_pages(const struct wl_config *c, unsigned seed)
{
    size_t len = (size_t)c->page_size * c->batch;
    void *p = NULL;
    size_t align = c->page_size > 4096 ? c->page_size : 4096;
    if (posix_memalign(&p, align, len) != 0)
        return NULL;
    wl_fill_pages(p, len, seed);
    return p;
}

int
bl_pwrite_page(int fd, const void *buf, uint32_t len, uint64_t off, int flags)
{
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    for (;;) {
        ssize_t w = pwritev2(fd, &iov, 1, (off_t)off, flags);
        if (w == (ssize_t)len)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return w < 0 ? -errno : -EIO; /* a short write is an error, never retried */
    }
}

#ifdef HAVE_LIBURING
int
bl_uring_write(struct io_uring *ring, int fd, const void *bufs, uint32_t page_size,
               const uint64_t *page_nos, uint32_t n, uint32_t qd, int rw_flags, uint64_t *lat,
               uint64_t since_ns)
{
    uint64_t stack[1024];
    uint64_t *sub_ns = n <= 1024 ? stack : malloc(n * sizeof(uint64_t));
    if (!sub_ns)
        return -ENOMEM;
    uint32_t next = 0, done = 0, inflight = 0;
    int err = 0;
    /* Fill the ring up to qd, submit and wait for one completion in the same syscall, reap
     * every completion that is there, refill: the loop a careful engineer writes by hand. */
    while (done < n) {
        uint32_t queued = 0;
        while (next < n && inflight < qd && !err) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            if (!sqe)
                break;
            io_uring_prep_write(sqe, fd, (const char *)bufs + (size_t)next * page_size, page_size,
                                page_nos[next] * page_size);
            sqe->rw_flags = rw_flags;
            sqe->user_data = next;
            next++;
            inflight++;
            queued++;
        }
        if (!inflight)
            break;
        uint64_t t_sub = now_ns();
        for (uint32_t i = next - queued; i < next; i++)
            sub_ns[i] = t_sub;
        int s = io_uring_submit_and_wait(ring, 1);
        if (s < 0 && s != -EINTR) {
            err = s;
            break;
        }
        uint64_t t = now_ns();
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            uint32_t idx = (uint32_t)cqe->user_data;
            if (cqe->res != (int)page_size && !err)
                err = cqe->res < 0 ? cqe->res : -EIO;
            if (lat)
                lat[idx] = t - (since_ns ? since_ns : sub_ns[idx]);
            seen++;
        }
        io_uring_cq_advance(ring, seen);
        inflight -= seen;
        done += seen;
        if (err && next < n) /* stop issuing; reap what is in flight */
            n = next;
    }
    if (sub_ns != stack)
        free(sub_ns);
    return err;
}
#endif
