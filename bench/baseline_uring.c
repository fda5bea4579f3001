/* SPDX-License-Identifier: MIT */
/*
 * baseline_uring.c -- atomio-baseline-uring: the bare liburing loop. One ring per thread with
 * --qd entries; a batch is submitted with up to qd writes in flight (IORING_OP_WRITE, with
 * sqe->rw_flags = RWF_ATOMIC under --atomic; never WRITE_FIXED, which the kernel refuses with
 * RWF_ATOMIC). No libatomio: the library's io_uring path is measured against this.
 */
#include "baseline.h"

static int
write_pages(struct bl_thread *t, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct bl_run *run = t->run;
    const struct wl_config *c = &run->c;
    int rc = bl_uring_write(&t->ring, run->fd, t->bufs, c->page_size, pages, n, c->qd,
                            run->atomic ? RWF_ATOMIC : 0, lat, 0);
    if (rc == 0)
        atomic_fetch_add_explicit(&run->k.bytes_data, (uint64_t)n * c->page_size,
                                  memory_order_relaxed);
    return rc;
}

static const struct baseline bare_uring = {
    .progname = "atomio-baseline-uring",
    .command = "baseline-uring",
    .name = "bare-uring",
    .summary = "Bare liburing loop at a queue depth (plain, or RWF_ATOMIC in sqe->rw_flags\n"
               "with --atomic) with the same workload knobs and JSON record as\n"
               "atomio-bench; no libatomio.",
    .allow_atomic = 1,
    .submit = BL_URING,
    .write = write_pages,
};

int
main(int argc, char **argv)
{
    return bl_main(&bare_uring, argc, argv);
}
