/* SPDX-License-Identifier: MIT */
/*
 * baseline_common.c -- argument parsing, file set-up, counters and output for the bare
 * baselines, plus the one liburing submission loop the uring and doublewrite baselines share.
 */
#include "baseline.h"

#include "progress.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BO_HELP = 1, BO_ATOMIC, BO_JSON };

void
bl_parse(struct bl_args *a, const char *summary, unsigned allow, int argc, char **argv)
{
    static struct opt_spec specs[64];
    size_t n = 0;
    for (const struct opt_spec *s = wl_opt_specs; s->name; s++)
        specs[n++] = *s;
    if (allow & BL_ALLOW_ATOMIC)
        specs[n++] =
            (struct opt_spec){"atomic", 0, BO_ATOMIC, NULL, "RWF_ATOMIC on every write (O_DIRECT)"};
    specs[n++] = (struct opt_spec){"json", 0, BO_JSON, NULL, "one flat JSON object on stdout"};
    specs[n++] = (struct opt_spec){"help", 0, BO_HELP, NULL, "this help"};
    specs[n].name = NULL;

    memset(a, 0, sizeof(*a));
    wl_config_defaults(&a->c);
    struct opt_iter it;
    opt_init(&it, NULL, specs, argc, argv);
    int id;
    while ((id = opt_next(&it)) >= 0) {
        if (wl_handle_opt(&a->c, NULL, id, it.arg))
            continue;
        switch (id) {
        case 0:
            if (a->c.file)
                usage_error(NULL, "one FILE only (got '%s' and '%s')", a->c.file, it.arg);
            a->c.file = it.arg;
            break;
        case BO_ATOMIC:
            a->atomic = 1;
            break;
        case BO_JSON:
            a->json = 1;
            break;
        case BO_HELP:
            printf("usage: %s FILE [options]\n\n%s\n\n", bench_progname, summary);
            opt_print_help(stdout, specs);
            printf("\nexit status: 0 ok, 1 runtime error, 2 usage error\n");
            exit(BENCH_EXIT_OK);
        }
    }
    if (!a->c.file)
        usage_error(NULL, "missing FILE (created and filled if it does not exist)");
    wl_check(&a->c, NULL);
}

void
bl_prepare(struct bl_args *a)
{
    int rc = wl_prepare_file(&a->c, &a->filled);
    if (rc < 0) {
        runtime_error(NULL, "%s: cannot create or fill: %s", a->c.file, strerror(-rc));
        exit(BENCH_EXIT_RUNTIME);
    }
    if (a->c.file_size / a->c.page_size / a->c.threads < a->c.batch)
        usage_error(NULL, "%s holds %llu pages, fewer than batch x threads (%u x %u)", a->c.file,
                    (unsigned long long)(a->c.file_size / a->c.page_size), a->c.batch,
                    a->c.threads);
}

int
bl_open(const struct bl_args *a, const char *path, int *o_direct)
{
    int direct = a->atomic || a->c.io_style != WL_IO_BUFFERED;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0) {
        runtime_error(NULL, "open %s%s: %s", path, direct ? " (O_DIRECT)" : "", strerror(errno));
        exit(BENCH_EXIT_RUNTIME);
    }
    *o_direct = direct;
    return fd;
}

void *
bl_alloc_pages(const struct wl_config *c, unsigned tid)
{
    size_t len = (size_t)c->page_size * c->batch;
    void *p = NULL;
    size_t align = c->page_size > 4096 ? c->page_size : 4096;
    if (posix_memalign(&p, align, len) != 0)
        return NULL;
    uint64_t x = 0x2545F4914F6CDD1Dull ^ tid;
    for (size_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy((char *)p + i, &x, 8);
    }
    return p;
}

void
bl_count_mark(struct bl_counters *k, int phase)
{
    k->snap[phase][0] = atomic_load(&k->bytes_data);
    k->snap[phase][1] = atomic_load(&k->bytes_doublewrite);
    k->snap[phase][2] = atomic_load(&k->syncs);
}

void
bl_count_into(const struct bl_counters *k, struct wl_result *r)
{
    r->bytes_data = k->snap[1][0] - k->snap[0][0];
    r->bytes_doublewrite = k->snap[1][1] - k->snap[0][1];
    r->dev_syncs = k->snap[1][2] - k->snap[0][2];
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

int
bl_output(const struct bl_args *a, const char *command, struct wl_result *r)
{
    if (a->json) {
        struct json j;
        json_begin(&j, stdout, 0);
        json_obj_open(&j, NULL);
        json_str(&j, "schema", BENCH_SCHEMA);
        json_str(&j, "command", command);
        json_bool(&j, "atomic", a->atomic);
        json_bool(&j, "filled_by_tool", a->filled);
        json_config_fields(&j, &a->c);
        json_run_fields(&j, r, &a->c);
        json_obj_close(&j);
        json_end(&j);
    } else if (!r->err) {
        struct wl_figures f;
        wl_figures_of(r, a->c.page_size, &f);
        char desc[400];
        wl_describe(&a->c, desc, sizeof(desc));
        printf("%s %s%s\n  workload: %s\n", command, a->c.file, a->atomic ? " (RWF_ATOMIC)" : "",
               desc);
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
