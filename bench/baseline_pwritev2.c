/* SPDX-License-Identifier: MIT */
/*
 * baseline_pwritev2.c -- atomio-baseline-pwritev2: the bare synchronous loop. Each page is one
 * pwritev2() (with RWF_ATOMIC under --atomic), each sync one fdatasync(). No libatomio: this is
 * what the library's sync submitter is measured against.
 */
#include "baseline.h"

static int
write_pages(struct bl_thread *t, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    struct bl_run *run = t->run;
    uint32_t ps = run->c.page_size;
    int flags = run->atomic ? RWF_ATOMIC : 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        int rc = bl_pwrite_page(run->fd, bl_page(t, i), ps, pages[i] * ps, flags);
        lat[i] = now_ns() - t0;
        if (rc)
            return rc;
        atomic_fetch_add_explicit(&run->k.bytes_data, ps, memory_order_relaxed);
    }
    return 0;
}

static const struct baseline bare_pwritev2 = {
    .progname = "atomio-baseline-pwritev2",
    .command = "baseline-pwritev2",
    .name = "bare-pwritev2",
    .summary = "Bare pwritev2() loop (plain, or RWF_ATOMIC with --atomic) with the same\n"
               "workload knobs and JSON record as atomio-bench; no libatomio.",
    .allow_atomic = 1,
    .submit = BL_SYNC,
    .write = write_pages,
};

int
main(int argc, char **argv)
{
    return bl_main(&bare_pwritev2, argc, argv);
}
