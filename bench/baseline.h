/* SPDX-License-Identifier: MIT */
/*
 * baseline.h -- shared parts of the bare baselines (baseline_*.c): the same workload knobs and
 * the same JSON record as atomio-bench, with the writes done by a few lines of plain syscalls
 * or liburing and no libatomio at all, so the library's ratios to them are honest.
 */
#ifndef ATOMIO_BENCH_BASELINE_H
#define ATOMIO_BENCH_BASELINE_H

#include "args.h"
#include "clock.h"
#include "workload.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040 /* Linux 6.11; Debian 12 headers lack it */
#endif

struct bl_args {
    struct wl_config c;
    int atomic; /* RWF_ATOMIC on every data write */
    int json;
    int filled;
};

/* What a baseline accepts beyond the workload options. */
#define BL_ALLOW_ATOMIC 0x1

/* Parse argv: FILE plus the workload options, --atomic (if allowed), --json, --help. */
void bl_parse(struct bl_args *a, const char *summary, unsigned allow, int argc, char **argv);
/* Create/fill FILE; prints a runtime error and exits 1 on failure. */
void bl_prepare(struct bl_args *a);
/* Open FILE for writing: O_DIRECT unless io style BUFFERED (and always with --atomic, as
 * RWF_ATOMIC needs it). Exits 1 on failure. */
int bl_open(const struct bl_args *a, const char *path, int *o_direct);
/* Page buffers for a thread: batch pages, 4 KiB aligned, random content. NULL on failure. */
void *bl_alloc_pages(const struct wl_config *c, unsigned tid);

/* Device counters the baselines keep themselves (the library keeps its own). */
struct bl_counters {
    _Atomic uint64_t bytes_data, bytes_doublewrite, syncs;
    uint64_t snap[2][3];
};
void bl_count_mark(struct bl_counters *k, int phase);
void bl_count_into(const struct bl_counters *k, struct wl_result *r);

/* One page write with pwritev2: 0, -errno, or -EIO on a short write. */
int bl_pwrite_page(int fd, const void *buf, uint32_t len, uint64_t off, int flags);

/* Print the result: one flat JSON object (--json) or a short human summary. Returns the exit
 * status (1 if the run failed). */
int bl_output(const struct bl_args *a, const char *command, struct wl_result *r);

#ifdef HAVE_LIBURING
#include <liburing.h>
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
