/* SPDX-License-Identifier: MIT */
/*
 * test_outcomes.c -- no outcome that only the library acts on ever leaves an exported call.
 * A path's verdict on a finished write is a type of its own (struct atomio_verdict), so the
 * compiler keeps "downgrade" and "re-probe" out of the int results; here the simulated device
 * makes the kernel answer every way that produces one (EOPNOTSUPP, ENOSPC, EINVAL, a short
 * write) and every exported write call -- atomio_write(), atomio_write_batch(), and
 * atomio_prep_write() + atomio_complete_write() on an engine's ring -- must return 0, -errno or
 * a documented ATOMIO_E_* code.
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "helpers.h"
#include "sim_device.h"
#include "t_core.h"
#include "t_engine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PS 4096u

static char root[256], dwdir[300], fpath[300];

static void
setup(void)
{
    t_tmpdir(root, sizeof(root));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", root);
    snprintf(fpath, sizeof(fpath), "%s/data.db", root);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
}

static void
teardown(void)
{
    sim_fini();
    t_rmtree(root);
}

TestSuite(outcomes, .init = setup, .fini = teardown);

/* A result an engine can be handed: success, a kernel errno, or a public library code. */
static bool
public_result(int r)
{
    return r == 0 || (r < 0 && r > -4096) || (r <= ATOMIO_E_INVAL && r > ATOMIO__E_LAST);
}

/* A device whose atomic writes fail with err (0: a short write) after ok_count successes. */
static atomio_ctx *
device(int err, int ok_count, atomio_file **f)
{
    sim_fini();
    sim_init(root);
    sim_set_atomic_caps(true, ok_count);
    sim_set_atomic_errno(err ? err : EOPNOTSUPP);
    uint8_t *zero = calloc(8, PS);
    sim_file_put(fpath, zero, 8 * PS);
    free(zero);
    atomio_ctx_opts o = t_ctx_opts(dwdir);
    atomio_ctx *ctx = t_ctx_open(&o);
    atomio_file_opts fo = t_file_opts(PS, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    *f = t_file_open(ctx, fpath, &fo);
    if (!err)
        sim_set_short_write(sim_ops(), 512); /* the next write comes back short */
    return ctx;
}

static const int kernel_answers[] = {EOPNOTSUPP, ENOSPC, EINVAL, 0};

Test(outcomes, library_calls_return_only_public_results)
{
    for (size_t a = 0; a < sizeof(kernel_answers) / sizeof(kernel_answers[0]); a++) {
        atomio_file *f;
        atomio_ctx *ctx = device(kernel_answers[a], 0, &f);
        uint8_t *p = atomio_page_alloc(ctx, PS, 4);
        t_fill(p, 4 * PS, a);
        int seen = 0;
        for (int round = 0; round < 3; round++) {
            int r = atomio_write(f, (uint64_t)round, p, 0);
            cr_assert(public_result(r), "answer %d: atomio_write() returned %d", kernel_answers[a], r);
            atomio_page_write w[2] = {{.file = f, .page_no = 4, .page = p + PS},
                                      {.file = f, .page_no = 5, .page = p + 2 * PS}};
            r = atomio_write_batch(ctx, w, 2, 0);
            cr_assert_geq(r, 0);
            for (int i = 0; i < 2; i++)
                cr_assert(public_result(w[i].result), "answer %d: batch entry %d: %d",
                          kernel_answers[a], i, w[i].result);
            seen++;
        }
        cr_assert_eq(seen, 3);
        atomio_page_free(ctx, p, PS, 4);
        atomio_ctx_close(ctx);
    }
}

Test(outcomes, engine_ring_calls_return_only_public_results)
{
    for (size_t a = 0; a < sizeof(kernel_answers) / sizeof(kernel_answers[0]); a++) {
        atomio_file *f;
        atomio_ctx *ctx = device(kernel_answers[a], 0, &f);
        uint8_t *p = atomio_page_alloc(ctx, PS, 1);
        t_fill(p, PS, 7 + a);
        bool internal_case = false;
        for (int round = 0; round < 3; round++) {
            struct io_uring_sqe sqe;
            int r = atomio_prep_write(f, &sqe, (uint64_t)round, p, 0);
            cr_assert(public_result(r), "prep returned %d", r);
            if (r < 0)
                continue; /* e.g. ATOMIO_E_NEEDS_DOUBLEWRITE once the file downgraded */
            int c = atomio_complete_write(f, t_eng_exec(&sqe), PS);
            cr_assert(public_result(c), "answer %d: complete returned %d", kernel_answers[a], c);
            internal_case |= c == ATOMIO_E_NEEDS_DOUBLEWRITE || c == -EAGAIN ||
                             c == ATOMIO_E_SHORT_WRITE || c == ATOMIO_E_GEOMETRY;
        }
        cr_assert(internal_case, "answer %d never took the library's own way out",
                  kernel_answers[a]);
        atomio_page_free(ctx, p, PS, 1);
        atomio_ctx_close(ctx);
    }
}
