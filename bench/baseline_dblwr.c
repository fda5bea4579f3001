/* SPDX-License-Identifier: MIT */
/*
 * baseline_dblwr.c -- atomio-baseline-dblwr: a bare InnoDB-style doublewrite, no libatomio.
 * Per batch: copy the pages into the thread's doublewrite segment buffer, write the segment
 * with one sequential write to FILE.bare-dblwr, fdatasync it, write every page in place (all in
 * flight together through io_uring at --qd, or one by one with --submitter sync), fdatasync
 * the data file. No checksums, headers or recovery: the least work a doublewrite can do, which
 * is what the library's DOUBLEWRITE path is measured against.
 */
#include "args.h"
#include "baseline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* The store: one batch-sized segment per thread. */
static struct {
    int fd;
    char path[4096];
} store;

/* make_store() -- FILE.bare-dblwr, one batch-sized segment per thread of every writer process
 * (each process writes its own), written once so the batch writes are overwrites of allocated
 * blocks (as InnoDB's preallocated doublewrite). */
static int
make_store(struct bl_run *run)
{
    int o_direct;
    snprintf(store.path, sizeof(store.path), "%s.bare-dblwr", run->c.file);
    store.fd = bl_open(run, store.path, &o_direct);
    size_t seg = (size_t)run->c.batch * run->c.page_size;
    void *buf = bl_alloc_pages(&run->c, 7);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    unsigned first = run->c.proc_index * run->c.threads;
    for (unsigned t = first; t < first + run->c.threads && !rc; t++) {
        ssize_t w = pwrite(store.fd, buf, seg, (off_t)(t * seg));
        if (w != (ssize_t)seg)
            rc = w < 0 ? -errno : -EIO;
    }
    free(buf);
    if (!rc && fdatasync(store.fd) != 0)
        rc = -errno;
    return rc;
}

static int
setup(struct bl_run *run)
{
    int rc = make_store(run);
    if (rc < 0) {
        runtime_error(NULL, "%s: %s", store.path, strerror(-rc));
        unlink(store.path);
        return BENCH_EXIT_RUNTIME;
    }
    return 0;
}

static void
teardown(struct bl_run *run)
{
    (void)run;
    close(store.fd);
    unlink(store.path);
}

/* A thread's segment buffer: the batch as it goes to the store. */
static int
thread_init(struct bl_thread *t)
{
    t->priv = bl_alloc_pages(&t->run->c, t->tid + 1000);
    return t->priv ? 0 : -ENOMEM;
}

static void
thread_fini(struct bl_thread *t)
{
    free(t->priv);
}

static int
write_pages(struct bl_thread *t, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct bl_run *run = t->run;
    uint32_t ps = run->c.page_size;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++)
        memcpy((unsigned char *)t->priv + (size_t)i * ps, bl_page(t, i), ps);
    /* 1. the whole batch, one sequential write into this thread's segment */
    uint64_t gtid = (uint64_t)run->c.proc_index * run->c.threads + t->tid;
    uint64_t seg_off = gtid * run->c.batch * ps;
    struct iovec iov = {t->priv, (size_t)n * ps};
    ssize_t w;
    do
        w = pwritev2(store.fd, &iov, 1, (off_t)seg_off, 0);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)iov.iov_len)
        return w < 0 ? -errno : -EIO;
    atomic_fetch_add_explicit(&run->k.bytes_doublewrite, iov.iov_len, memory_order_relaxed);
    /* 2. durable before any in-place write starts */
    if (fdatasync(store.fd) != 0)
        return -errno;
    atomic_fetch_add_explicit(&run->k.syncs, 1, memory_order_relaxed);
    /* 3. in place, all in flight together */
    int rc = 0;
#ifdef HAVE_LIBURING
    if (t->ring_ok) {
        rc = bl_uring_write(&t->ring, run->fd, t->bufs, ps, pages, n, run->c.qd, 0, lat, t0);
    } else
#endif
    {
        for (uint32_t i = 0; i < n && !rc; i++) {
            rc = bl_pwrite_page(run->fd, bl_page(t, i), ps, pages[i] * ps, 0);
            lat[i] = now_ns() - t0;
        }
    }
    if (rc)
        return rc;
    atomic_fetch_add_explicit(&run->k.bytes_data, (uint64_t)n * ps, memory_order_relaxed);
    /* 4. the data file durable: only now may the segment be reused */
    if (fdatasync(run->fd) != 0)
        return -errno;
    atomic_fetch_add_explicit(&run->k.syncs, 1, memory_order_relaxed);
    return 0;
}

static const struct baseline bare_dblwr = {
    .progname = "atomio-baseline-dblwr",
    .command = "baseline-dblwr",
    .name = "bare-dblwr",
    .summary = "Bare InnoDB-style doublewrite (sequential batch write, fdatasync, in-place\n"
               "writes in flight together, fdatasync) with the same workload knobs and JSON\n"
               "record as atomio-bench; no libatomio. The store is FILE.bare-dblwr,\n"
               "removed at exit.",
    .allow_atomic = 0,
    .submit = BL_URING_UNLESS_SYNC,
    .setup = setup,
    .teardown = teardown,
    .thread_init = thread_init,
    .thread_fini = thread_fini,
    .write = write_pages,
};

int
main(int argc, char **argv)
{
    return bl_main(&bare_dblwr, argc, argv);
}
