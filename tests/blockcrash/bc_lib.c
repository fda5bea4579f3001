/* SPDX-License-Identifier: MIT */
/*
 * bc_lib.c -- every libatomio call the block-level crash harness makes (see bc_lib.h).
 */
#include "bc_lib.h"

#include "atomio.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test build's sabotage switch (atomio_testing, -DATOMIO_TESTING): skip the store's
 * fdatasync. Declared here, not through the library's internal headers. */
extern _Atomic int atomio__test_skip_dw_durability;

/* Store geometry: the workload and the checker must open the store alike. */
#define BC_STORE_BYTES       (1u << 20) /* small: the images are 128 MiB */
#define BC_STORE_BATCH_PAGES 16
#define BC_STORE_MAX_PAGE    16384

struct bc_lib {
    atomio_ctx *ctx;
    atomio_file *f[BC_LIB_MAX_FILES];
};

static void
ctx_opts(atomio_ctx_opts *o, const char *store_dir, const char *data_root)
{
    atomio_ctx_opts_init(o);
    o->doublewrite_dir = store_dir;
    o->data_root = data_root;
    o->doublewrite_store_bytes = BC_STORE_BYTES;
    o->doublewrite_batch_pages = BC_STORE_BATCH_PAGES;
    o->doublewrite_max_page_size = BC_STORE_MAX_PAGE;
}

int
bc_lib_open(bc_lib **out, const struct bc_lib_conf *conf)
{
    atomic_store(&atomio__test_skip_dw_durability, conf->sabotage ? 1 : 0);
    bc_lib *l = calloc(1, sizeof(*l));
    if (!l)
        return -12;
    atomio_ctx_opts o;
    ctx_opts(&o, conf->store_dir, conf->data_root);
    o.instance = conf->instance;
    o.doublewrite_mode = conf->write_behind ? ATOMIO_DOUBLEWRITE_WRITE_BEHIND
                         : conf->deferred   ? ATOMIO_DOUBLEWRITE_DEFERRED
                                            : ATOMIO_DOUBLEWRITE_SYNC_BATCH;
    int r = atomio_ctx_open(&o, &l->ctx);
    if (r < 0) {
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

int
bc_lib_close(bc_lib *l)
{
    if (!l)
        return 0;
    int first = 0;
    for (unsigned i = 0; i < BC_LIB_MAX_FILES; i++) {
        if (l->f[i]) {
            int r = atomio_file_close(l->f[i]);
            if (r < 0 && first == 0)
                first = r;
        }
    }
    int r = atomio_ctx_close(l->ctx);
    free(l);
    return first ? first : r;
}

int
bc_lib_file_open(bc_lib *l, unsigned idx, const char *path, uint32_t page_size,
                 enum bc_path path_kind)
{
    if (idx >= BC_LIB_MAX_FILES || l->f[idx])
        return ATOMIO_E_INVAL;
    static const uint32_t map[] = {
        [BC_PATH_AUTO] = ATOMIO_PATH_AUTO,
        [BC_PATH_DIRECT] = ATOMIO_PATH_DIRECT_ATOMIC,
        [BC_PATH_DOUBLEWRITE] = ATOMIO_PATH_DOUBLEWRITE,
        [BC_PATH_UNSAFE] = ATOMIO_PATH_UNSAFE,
    };
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = page_size;
    fo.io_style = ATOMIO_IO_DIRECT;
    fo.path = map[path_kind];
    fo.policy = ATOMIO_POLICY_PREFER_ATOMIC;
    fo.file_id = 1000 + idx;
    return atomio_file_open(l->ctx, path, &fo, &l->f[idx]);
}

void
bc_lib_describe(bc_lib *l, char *buf, size_t len)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    int r = atomio_ctx_get_stats(l->ctx, &st);
    if (r < 0)
        snprintf(buf, len, "stats: %s", atomio_strerror(r));
    else
        snprintf(buf, len,
                 "attached=%llu batches=%llu group-commits=%llu (records %llu) syncs=%llu "
                 "forced-syncs=%llu store-bytes-used=%llu",
                 (unsigned long long)st.attached, (unsigned long long)st.batches,
                 (unsigned long long)st.group_commits, (unsigned long long)st.group_records,
                 (unsigned long long)st.syncs, (unsigned long long)st.forced_syncs,
                 (unsigned long long)st.store_bytes_used);
}

static int
info_of(bc_lib *l, unsigned idx, atomio_file_info *fi)
{
    *fi = (atomio_file_info)ATOMIO_FILE_INFO_INIT;
    if (idx >= BC_LIB_MAX_FILES || !l->f[idx])
        return ATOMIO_E_INVAL;
    return atomio_file_get_info(l->f[idx], fi);
}

void
bc_lib_file_describe(bc_lib *l, unsigned idx, char *buf, size_t len)
{
    atomio_file_info fi;
    int r = info_of(l, idx, &fi);
    if (r < 0)
        snprintf(buf, len, "info: %s", atomio_strerror(r));
    else
        snprintf(buf, len, "path=%s downgrades=%u reason=%s", atomio_path_name(fi.path),
                 fi.downgrades, fi.reason);
}

int
bc_lib_file_is_doublewrite(bc_lib *l, unsigned idx)
{
    atomio_file_info fi;
    return info_of(l, idx, &fi) == 0 && fi.path == ATOMIO_PATH_DOUBLEWRITE;
}

unsigned
bc_lib_file_downgrades(bc_lib *l, unsigned idx)
{
    atomio_file_info fi;
    return info_of(l, idx, &fi) == 0 ? fi.downgrades : 0;
}

int
bc_lib_write(bc_lib *l, size_t n, const unsigned *idx, const uint64_t *page_no, void *const *buf,
             int *results)
{
    if (n == 1) {
        results[0] = atomio_write(l->f[idx[0]], page_no[0], buf[0], 0);
        return results[0];
    }
    atomio_page_write w[16];
    if (n > 16)
        return ATOMIO_E_INVAL;
    for (size_t i = 0; i < n; i++)
        w[i] = (atomio_page_write){.file = l->f[idx[i]], .page_no = page_no[i], .page = buf[i]};
    int done = atomio_write_batch(l->ctx, w, n, 0);
    int first = done < 0 ? done : 0;
    for (size_t i = 0; i < n; i++) {
        results[i] = done < 0 ? done : w[i].result;
        if (results[i] < 0 && first == 0)
            first = results[i];
    }
    return first;
}

int
bc_lib_sync(bc_lib *l, unsigned idx)
{
    return atomio_sync(l->f[idx]);
}

int
bc_lib_ctx_sync(bc_lib *l)
{
    return atomio_ctx_sync(l->ctx);
}

const char *
bc_lib_strerror(int err)
{
    return atomio_strerror(err);
}

int
bc_lib_recover(const char *store_dir, const char *data_root, uint64_t *restored)
{
    /* A private instance: the checker's workers recover copies of one store (one uuid) side
     * by side, and the shared state of a named instance is found by that uuid. */
    atomio_ctx_opts o;
    ctx_opts(&o, store_dir, data_root);
    atomio_ctx *ctx;
    int r = atomio_ctx_open(&o, &ctx); /* recovery runs here, as at an engine's start-up */
    if (r < 0)
        return r;
    atomio_stats st = ATOMIO_STATS_INIT;
    *restored = atomio_ctx_get_stats(ctx, &st) == 0 ? st.recovered_pages : 0;
    return atomio_ctx_close(ctx);
}
