/* SPDX-License-Identifier: MIT */
/*
 * baseline.h -- the bare baselines (atomio-baseline-*): the same workload knobs and the same
 * JSON record as atomio-bench, with the writes done by a few lines of plain syscalls or liburing
 * and no libatomio at all, so the library's ratios to them are honest (docs/benchmarks.md).
 *
 * One driver (baseline.c) parses the options, prepares the file, runs the workload, counts
 * device bytes and syncs and prints the result; each baseline_KIND.c supplies a struct baseline
 * saying how it writes a batch and a main() that calls bl_main().
 */
#ifndef ATOMIO_BENCH_BASELINE_H
#define ATOMIO_BENCH_BASELINE_H

#include "clock.h"
#include "workload.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040 /* Linux 6.11; Debian 12 headers lack it */
#endif

/* Device counters the baselines keep themselves (the library keeps its own). */
struct bl_counters {
    _Atomic uint64_t bytes_data, bytes_doublewrite, syncs;
    uint64_t snap[2][3]; /* at the start and the end of measurement */
};

/* One run of a baseline. */
struct bl_run {
    const struct baseline *b;
    struct wl_config c;
    int atomic; /* --atomic: RWF_ATOMIC on every data write */
    int json;
    int filled;    /* the file was created or filled for this run */
    int use_uring; /* every thread has a ring of min(qd, batch) entries */
    int fd;        /* the data file */
    struct bl_counters k;
};

/* One writer thread of a run. */
struct bl_thread {
    struct bl_run *run;
    unsigned tid;
    void *bufs; /* batch pages, aligned for O_DIRECT; page i holds page_nos[i] when written */
#ifdef HAVE_LIBURING
    struct io_uring ring; /* when run->use_uring */
    int ring_ok;
#endif
    void *priv; /* the baseline's own per-thread state */
};

/* When the threads get a ring. */
enum bl_submit { BL_SYNC, BL_URING, BL_URING_UNLESS_SYNC /* unless --submitter sync */ };

/* What one baseline is; everything else is the driver's. */
struct baseline {
    const char *progname; /* "atomio-baseline-uring", in messages */
    const char *command;  /* "baseline-uring", in the JSON record */
    const char *name;     /* "bare-uring", the row name ("-atomic" added under --atomic) */
    const char *summary;  /* --help */
    int allow_atomic;     /* accepts --atomic */
    int submit;           /* enum bl_submit */
    /* Optional: after the data file is open, before the run. Returns 0, or an exit status
     * after printing the error. */
    int (*setup)(struct bl_run *run);
    /* Optional: after the run, the data file closed. */
    void (*teardown)(struct bl_run *run);
    /* Optional: per-thread state in t->priv, after bufs and ring. 0 or -errno. */
    int (*thread_init)(struct bl_thread *t);
    /* Optional: free what thread_init made; also called when it failed or never ran. */
    void (*thread_fini)(struct bl_thread *t);
    /* Write page_nos[i] from page i of t->bufs, i < n; lat[i] gets each page's latency in ns.
     * Counts what it writes and syncs in t->run->k. Returns 0 or -errno. */
    int (*write)(struct bl_thread *t, const uint64_t *page_nos, uint32_t n, uint64_t *lat);
};

/* The whole program: parse argv, run, print. Returns the exit status. */
int bl_main(const struct baseline *b, int argc, char **argv);

/* Page i of a thread's buffers. */
static inline void *
bl_page(const struct bl_thread *t, uint32_t i)
{
    return (unsigned char *)t->bufs + (size_t)i * t->run->c.page_size;
}

/* Open path for writing: O_DIRECT unless io style BUFFERED (and always with --atomic, as
 * RWF_ATOMIC needs it). Exits 1 on failure. */
int bl_open(const struct bl_run *run, const char *path, int *o_direct);
/* Page buffers: batch pages, aligned for O_DIRECT, content seeded by seed. NULL on failure. */
void *bl_alloc_pages(const struct wl_config *c, unsigned seed);
/* One page write with pwritev2: 0, -errno, or -EIO on a short write. */
int bl_pwrite_page(int fd, const void *buf, uint32_t len, uint64_t off, int flags);

#ifdef HAVE_LIBURING
/*
 * bl_uring_write() -- write pages[i] from bufs + i * page_size at page_nos[i] * page_size with
 * at most qd in flight, rw_flags on every SQE (RWF_ATOMIC for the atomic loop); lat[i] gets
 * completion time minus since_ns (since_ns 0: minus the SQE's own submit time).
 * Returns 0 or the first error (-errno, or -EIO for a short write).
 */
int bl_uring_write(struct io_uring *ring, int fd, const void *bufs, uint32_t page_size,
                   const uint64_t *page_nos, uint32_t n, uint32_t qd, int rw_flags, uint64_t *lat,
                   uint64_t since_ns);
#endif

#endif
