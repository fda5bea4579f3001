/* SPDX-License-Identifier: MIT */
/*
 * dw_pending.c -- TEMPORARY placeholders for the doublewrite store while it is developed on its
 * own branch: every entry point reports ATOMIO_E_NO_DOUBLEWRITE, so the library builds and the
 * atomic/unsafe paths can be tested. Deleted when the doublewrite store lands.
 */
#include "atomio_internal.h"

int
atomio__store_open(atomio_ctx *ctx)
{
    (void)ctx;
    return ATOMIO_E_NO_DOUBLEWRITE;
}

void
atomio__store_close(atomio_ctx *ctx)
{
    (void)ctx;
}

int
atomio__store_register(atomio_ctx *ctx, atomio_file *f)
{
    (void)ctx;
    (void)f;
    return 0;
}

int
atomio__dw_write(atomio_ctx *ctx, struct atomio_dw_item *items, size_t n, uint32_t wflags)
{
    (void)ctx;
    (void)wflags;
    for (size_t i = 0; i < n; i++)
        items[i].result = ATOMIO_E_NO_DOUBLEWRITE;
    return 0;
}

int
atomio__recover(atomio_ctx *ctx, atomio_recovery_report *rep)
{
    (void)ctx;
    (void)rep;
    return ATOMIO_E_NO_DOUBLEWRITE;
}

int
atomio__calibrate(atomio_ctx *ctx, atomio_file *f, uint64_t *atomic_ns, uint64_t *dblwr_ns)
{
    (void)ctx;
    (void)f;
    (void)atomic_ns;
    (void)dblwr_ns;
    return ATOMIO_E_NO_DOUBLEWRITE;
}

const struct atomio_path_ops atomio__path_doublewrite = {
    .id = ATOMIO_PATH_DOUBLEWRITE,
    .name = "DOUBLEWRITE",
};
