/* SPDX-License-Identifier: MIT */
/*
 * ctx.c -- context lifecycle: options with defaults resolved, the submitter (io_uring with a
 * visible fallback to pwritev2), the page allocator, the doublewrite store and recovery at
 * open, the list of open files and the graveyard of closed handles, counters and sync.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KNOWN_CTX_FLAGS                                                                            \
    (ATOMIO_CTX_NO_DOUBLEWRITE | ATOMIO_CTX_NO_RECOVER | ATOMIO_CTX_LOCK_PAGES |                   \
     ATOMIO_CTX_NO_DURABILITY)
#define INSTANCE_MAX 127 /* bytes of an instance name */

static int
check_opts(atomio_ctx_opts *o)
{
    if (o->flags & ~KNOWN_CTX_FLAGS)
        return ATOMIO_E_INVAL;
    if (o->policy > ATOMIO_POLICY_CALIBRATE || o->submitter > ATOMIO_SUBMIT_SYNC)
        return ATOMIO_E_INVAL;
    if (o->reserved0)
        return ATOMIO_E_INVAL;
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i])
            return ATOMIO_E_INVAL;
    if (o->numa_node < -1)
        return ATOMIO_E_INVAL;
    if (!(o->flags & ATOMIO_CTX_NO_DOUBLEWRITE) && (!o->doublewrite_dir || !o->doublewrite_dir[0]))
        return ATOMIO_E_INVAL;
    if (o->doublewrite_max_page_size && (!atomio__is_pow2(o->doublewrite_max_page_size) ||
                                         o->doublewrite_max_page_size < ATOMIO_MIN_PAGE ||
                                         o->doublewrite_max_page_size > ATOMIO_MAX_PAGE))
        return ATOMIO_E_PAGE_SIZE;
    if (o->queue_depth > 4096 || o->doublewrite_batch_pages > 65536 ||
        o->doublewrite_mode > ATOMIO_DOUBLEWRITE_WRITE_BEHIND)
        return ATOMIO_E_INVAL;
    if (o->instance && strlen(o->instance) > INSTANCE_MAX)
        return ATOMIO_E_INVAL;
    if (o->doublewrite_store_bytes &&
        (o->doublewrite_store_bytes < (16u << 10) || o->doublewrite_store_bytes > (1ull << 40)))
        return ATOMIO_E_INVAL;
    if (o->write_behind_bytes &&
        (o->write_behind_bytes < (64u << 10) || o->write_behind_bytes > (1ull << 30)))
        return ATOMIO_E_INVAL;
    if (o->data_root && o->data_root[0] != '/')
        return ATOMIO_E_INVAL; /* a root that moves with the working directory is no root */

    if (o->policy == ATOMIO_POLICY_DEFAULT)
        o->policy = ATOMIO_POLICY_PREFER_FAST;
    if (!o->queue_depth)
        o->queue_depth = 32;
    if (!o->doublewrite_batch_pages)
        o->doublewrite_batch_pages = 64;
    if (!o->doublewrite_max_page_size)
        o->doublewrite_max_page_size = 16384;
    return 0;
}

/* ATOMIO_SUBMITTER=sync|uring overrides the option, for tests and operations. */
static uint32_t
submitter_from_env(uint32_t dflt)
{
    const char *e = getenv("ATOMIO_SUBMITTER");
    if (!e || !*e)
        return dflt;
    if (!strcasecmp(e, "sync") || !strcasecmp(e, "pwritev2"))
        return ATOMIO_SUBMIT_SYNC;
    if (!strcasecmp(e, "uring") || !strcasecmp(e, "io_uring"))
        return ATOMIO_SUBMIT_URING;
    return dflt;
}

static void
setup_submitter(atomio_ctx *ctx)
{
    uint32_t want = submitter_from_env(ctx->opts.submitter);
    ctx->submit = &atomio__submit_sync;
    if (want == ATOMIO_SUBMIT_SYNC)
        return;
#ifdef HAVE_LIBURING
    int r = atomio__uring_ctx_init(ctx);
    if (r == 0) {
        ctx->submit = &atomio__submit_uring;
        return;
    }
    ctx->uring_err = r;
#else
    ctx->uring_err = -ENOSYS;
#endif
    ctx->uring_fallback = true;
    ATOMIO_COUNT(&ctx->stats, uring_fallbacks, 1);
}

static void
ctx_free(atomio_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->store)
        atomio__store_close(ctx);
#ifdef HAVE_LIBURING
    if (ctx->submit == &atomio__submit_uring)
        atomio__uring_ctx_fini(ctx);
#endif
    atomio__alloc_fini(ctx);
    for (unsigned i = 0; i < ATOMIO_GRAVEYARD; i++) {
        atomio_file *g = ctx->graveyard[i];
        if (g) {
            pthread_mutex_destroy(g->lock);
            free(g->lock);
            free(g->path);
            free(g);
        }
    }
    if (ctx->lock) {
        pthread_mutex_destroy(ctx->lock);
        free(ctx->lock);
    }
    free(ctx->doublewrite_dir);
    free(ctx->data_root);
    free(ctx->instance);
    free(ctx);
}

int
atomio_ctx_open(const atomio_ctx_opts *opts, atomio_ctx **out)
{
    if (!out)
        return ATOMIO_E_INVAL;
    *out = NULL;
    atomio__reason_clear();
    atomio_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    int r;
    if (opts) {
        r = atomio__copy_in(&ctx->opts, sizeof(ctx->opts), opts);
        /* An older caller's struct ends before numa_node: its zero fill would read as node 0,
         * a real node; the default it never saw is -1 (the calling thread's node). */
        if (r == 0 && opts->size < offsetof(atomio_ctx_opts, numa_node) + sizeof(int32_t))
            ctx->opts.numa_node = -1;
    } else {
        atomio_ctx_opts_init(&ctx->opts);
        ctx->opts.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
        r = 0;
    }
    if (r == 0)
        r = check_opts(&ctx->opts);
    if (r < 0) {
        free(ctx);
        return r;
    }
    ctx->lock = malloc(sizeof(*ctx->lock));
    if (!ctx->lock) {
        free(ctx);
        return -ENOMEM;
    }
    pthread_mutex_init(ctx->lock, NULL);
    if (!(ctx->opts.flags & ATOMIO_CTX_NO_DOUBLEWRITE)) {
        ctx->doublewrite_dir = strdup(ctx->opts.doublewrite_dir);
        if (!ctx->doublewrite_dir) {
            ctx_free(ctx);
            return -ENOMEM;
        }
    }
    ctx->opts.doublewrite_dir = ctx->doublewrite_dir; /* never keep the caller's pointers */
    /* The data root is resolved as file paths are at open, so that a root reached through a
     * symlink or spelled with "." or "//" still prefixes them; one that does not exist (yet)
     * is kept as given. */
    if (ctx->opts.data_root && !(ctx->data_root = realpath(ctx->opts.data_root, NULL)) &&
        errno != ENOMEM)
        ctx->data_root = strdup(ctx->opts.data_root);
    if ((ctx->opts.data_root && !ctx->data_root) ||
        (ctx->opts.instance && !(ctx->instance = strdup(ctx->opts.instance)))) {
        ctx_free(ctx);
        return -ENOMEM;
    }
    ctx->opts.data_root = ctx->data_root;
    ctx->opts.instance = ctx->instance;
    atomic_store(&ctx->next_file_id, 1);

    r = atomio__alloc_init(ctx);
    if (r < 0) {
        ctx_free(ctx);
        return r;
    }
    setup_submitter(ctx);

    if (ctx->doublewrite_dir) {
        r = atomio__store_open(ctx);
        if (r < 0) {
            ctx_free(ctx);
            return r;
        }
        /* Recovery runs once per instance, in the process that set it up, before any other
         * process may attach. */
        if (!(ctx->opts.flags & ATOMIO_CTX_NO_RECOVER) && atomio__store_is_first(ctx)) {
            atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
            r = atomio__recover(ctx, &rep);
            if (r == 0)
                r = atomio__store_ready(ctx);
            if (r < 0) {
                ctx_free(ctx);
                return r;
            }
        }
    }
    /* no-durability mode from the start (a bulk load); recovery above ran durably */
    atomic_store(&ctx->no_durability, (ctx->opts.flags & ATOMIO_CTX_NO_DURABILITY) ? 1 : 0);
    *out = ctx;
    return 0;
}

int
atomio_ctx_close(atomio_ctx *ctx)
{
    if (!ctx)
        return 0;
    /* Staged pages go in place before the instance's last context leaves; an earlier one
     * leaves them to the others (a backend exiting does not wait for a round). */
    int first = atomio__stage_close(ctx);
    for (;;) {
        pthread_mutex_lock(ctx->lock);
        atomio_file *f = ctx->files;
        pthread_mutex_unlock(ctx->lock);
        if (!f)
            break;
        int r = atomio_file_close(f);
        if (r < 0 && !first)
            first = r;
    }
    ctx_free(ctx);
    return first;
}

int
atomio_ctx_recover(atomio_ctx *ctx, atomio_recovery_report *report)
{
    if (!ctx)
        return ATOMIO_E_INVAL;
    if (report && report->size < 8)
        return ATOMIO_E_ABI;
    if (!ctx->store)
        return ATOMIO_E_NO_DOUBLEWRITE;
    atomio__reason_clear();
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    int r = atomio__recover(ctx, &rep);
    if (r == 0)
        r = atomio__store_ready(ctx);
    if (report) {
        int c = atomio__copy_out(report, &rep, sizeof(rep));
        if (c < 0)
            return c;
    }
    return r;
}

int
atomio_ctx_sync(atomio_ctx *ctx)
{
    if (!ctx)
        return ATOMIO_E_INVAL;
    if (ctx->store && atomio__store_check(ctx) == ATOMIO_E_INVAL)
        return ATOMIO_E_INVAL; /* a ctx inherited across fork(): the child opens its own */
    int first = atomio__nodur(ctx) ? 0 : atomio__stage_flush(ctx);
    if (first < 0)
        return first;
    pthread_mutex_lock(ctx->lock);
    for (atomio_file *f = ctx->files; f; f = f->next) {
        int r = atomio__file_sync_staged(f); /* flushed above; a round needs ctx->lock */
        if (r < 0 && !first)
            first = r;
    }
    pthread_mutex_unlock(ctx->lock);
    /* no-durability mode: nothing is synced (atomio_ctx_set_durability(ctx, 1) does it) */
    if (atomio__nodur(ctx))
        return first;
    /* Copies other processes left waiting for a sync: their files synced too, so the store
     * holds nothing but records held for recovery afterwards. */
    int r = ctx->store ? atomio__store_release_all(ctx) : 0;
    return first ? first : r;
}

int
atomio_ctx_flush(atomio_ctx *ctx)
{
    if (!ctx)
        return ATOMIO_E_INVAL;
    if (ctx->store && atomio__store_check(ctx) == ATOMIO_E_INVAL)
        return ATOMIO_E_INVAL; /* a ctx inherited across fork() */
    return atomio__stage_flush(ctx);
}

int
atomio_ctx_get_stats(const atomio_ctx *ctx, atomio_stats *st)
{
    if (!ctx || !st)
        return ATOMIO_E_INVAL;
    atomio_stats s;
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    atomio__counters_read(&ctx->stats, &s);
    if (ctx->store)
        atomio__store_stats(ctx, &s);
    return atomio__copy_out(st, &s, sizeof(s));
}

int
atomio_ctx_remap_file(atomio_ctx *ctx, uint64_t file_id, const char *path)
{
    if (!ctx || !path || !*path || file_id == 0)
        return ATOMIO_E_INVAL;
    int r = atomio__store_check(ctx);
    return r < 0 ? r : atomio__store_remap(ctx, file_id, path);
}

int
atomio_ctx_fence_dir(atomio_ctx *ctx, const char *dir)
{
    if (!ctx || !dir || !*dir)
        return ATOMIO_E_INVAL;
    if (!ctx->store)
        return 0; /* nothing to fence */
    int r = atomio__store_check(ctx);
    return r < 0 ? r : atomio__store_fence_dir(ctx, dir);
}

int
atomio_ctx_discard_file(atomio_ctx *ctx, uint64_t file_id)
{
    if (!ctx || file_id == 0)
        return ATOMIO_E_INVAL;
    int r = atomio__store_check(ctx);
    return r < 0 ? r : atomio__store_discard_id(ctx->store, file_id);
}
