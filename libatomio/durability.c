/* SPDX-License-Identifier: MIT */
/*
 * durability.c -- no-durability mode, for bulk loads (as PostgreSQL's fsync=off): while it is
 * on, every page of every path goes straight in place as a plain write (no store, no
 * RWF_ATOMIC, no RWF_DSYNC), atomio_sync() skips fdatasync and atomio_file_get_info() reports
 * torn_write_safe 0. Switching durability back on waits for the write calls still running
 * unprotected, then makes every open file of the ctx durable before protected writes count
 * again.
 *
 * A write call decides its mode once, on entry (atomio__nodur_enter()): it announces itself in
 * nodur_inflight and then re-reads the mode. The switch back clears the mode first and then
 * waits for nodur_inflight to drain. With sequentially consistent operations on both sides,
 * either the call sees the mode cleared (and writes protected) or the switch sees the call
 * (and waits for it before syncing), so no unprotected write escapes the final fdatasync.
 */
#include "atomio_internal.h"

#include <sched.h>

bool
atomio__nodur(const atomio_ctx *ctx)
{
    return atomic_load(&ctx->no_durability) != 0;
}

bool
atomio__nodur_enter(atomio_ctx *ctx)
{
    if (!atomic_load(&ctx->no_durability))
        return false;
    atomic_fetch_add(&ctx->nodur_inflight, 1);
    if (atomic_load(&ctx->no_durability))
        return true;
    atomic_fetch_sub(&ctx->nodur_inflight, 1);
    return false;
}

void
atomio__nodur_leave(atomio_ctx *ctx)
{
    atomic_fetch_sub(&ctx->nodur_inflight, 1);
}

int
atomio_ctx_set_durability(atomio_ctx *ctx, int durable)
{
    if (!ctx || (durable != 0 && durable != 1))
        return ATOMIO_E_INVAL;
    /* Write-behind: staged pages go in place before plain writes may start, and before the
     * sync below (a round takes ctx->lock, so not under it). */
    int fr = atomio__stage_flush(ctx);
    if (fr < 0 && fr != ATOMIO_E_INVAL)
        return fr;
    /* ctx->lock serializes switches (and holds the file list still for the sync). Write calls
     * never take it, so waiting for them here cannot deadlock. */
    pthread_mutex_lock(ctx->lock);
    if (!durable) {
        /* Pages are about to be written in place without copies: their older copies in the
         * store must never be applied over them (a fence per open file; files opened while
         * the mode is on get theirs at open). */
        int first = 0;
        for (atomio_file *f = ctx->files; f && ctx->store; f = f->next) {
            if (f->rdonly)
                continue;
            int r = atomio__store_register(ctx, f, true);
            if (r < 0 && !first)
                first = r;
        }
        if (first == 0)
            atomic_store(&ctx->no_durability, 1);
        pthread_mutex_unlock(ctx->lock);
        return first;
    }
    uint32_t was_off = atomic_exchange(&ctx->no_durability, 0);
    int first = 0;
    if (was_off) {
        while (atomic_load(&ctx->nodur_inflight))
            sched_yield();
        /* Pages written unprotected are durable before protected writes resume. */
        for (atomio_file *f = ctx->files; f; f = f->next) {
            int r = atomio__file_sync_staged(f);
            if (r < 0 && !first)
                first = r;
        }
    }
    pthread_mutex_unlock(ctx->lock);
    return first;
}
