/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c -- the crash simulator (sim_device) against the doublewrite protocol.
 *
 * A workload of page batches runs on the simulated device. A crash at op k keeps, of every
 * write not yet made durable, a subset of its 512-byte sectors; then the ctx is reopened on
 * what survived and recovery runs. Checks, for every page of every data file:
 *   - it equals one version ever written to it (never a mix: not torn);
 *   - it equals the version of the last write call that returned success before the crash
 *     (doublewrite pages are durable when the call returns), or the version of the call in
 *     flight at the crash (not lost);
 * and the recovery report: pages_restored equals the pages recovery actually changed,
 * batches_valid / batches_torn / pages_checked equal what an independent look at the surviving
 * store bytes predicts.
 *
 * Small cases are exhaustive over every crash point and every pattern of the sector pieces
 * that can matter; large ones are randomized (ATOMIO_CRASH_ITERATIONS, default 10000). A
 * sabotaged protocol (no store fdatasync) must be caught.
 *
 * The scenarios are one table, each run by the library (atomio_write*()) and, as staged_*
 * tests, through the staged doublewrite an engine drives from its own ring
 * (atomio_doublewrite_stage() ...; atomio_uring.h): every SQE the library prepares is executed
 * through the seam by t_engine's interpreter, so the simulator sees the engine's writes exactly
 * as it sees the library's own. crash_explorer.c enumerates the crash points and tear patterns.
 * The write-behind scenarios stage pages in shared memory; their pages are promised once a
 * sync returns, and a sabotaged write-behind round must be caught as well.
 */
#include "atomio_internal.h"
#include "atomio_uring.h"
#include "crash_explorer.h"
#include "helpers.h"
#include "sim_device.h"
#include "store/format.h"
#include "store/store.h"
#include "t_core.h"
#include "t_engine.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAXF     4
#define MAXW     16
#define MAXSTEPS 64

struct wl_write {
    int file;
    uint64_t page;
    uint32_t ver;
};

struct wl_step {
    int n;
    struct wl_write w[MAXW];
    bool sync;          /* atomio_sync() on the step's files afterwards */
    bool single;        /* issue as atomio_write() calls (n must be 1) */
    int ctx;            /* which writer issues it (0 or 1: two processes of one instance) */
    bool sync_by_other; /* the sync is made by the other writer (deferred release) */
};

struct wl {
    const char *name;
    int nfiles;
    uint32_t ps[MAXF];
    uint64_t npages[MAXF];
    uint32_t ring_kib, batch_pages, max_ps; /* store ring size, record limits */
    int nctx;            /* writers: separate ctxs of one instance on one store (1 or 2) */
    bool deferred;       /* ATOMIO_DOUBLEWRITE_DEFERRED: pages durable once synced */
    bool write_behind;   /* ATOMIO_DOUBLEWRITE_WRITE_BEHIND (staged; durable once synced) */
    bool local_order;    /* sabotage: copies ordered per writer (atomio__test_dw_local_order) */
    bool light;          /* long workload: fewer tear patterns per crash point */
    uint32_t path[MAXF]; /* forced path per file; 0 = DOUBLEWRITE */
    /* one short in-place write: the write of (short_file, short_page) in step short_step keeps
     * short_keep bytes (short_keep 0: none). The file fails; later writes to it are refused. */
    int short_step, short_file;
    uint64_t short_page, short_keep;
    long short_op;   /* its device op, found by a first run */
    int atomic_ok;   /* atomic writes the device takes before failing with ENOSPC */
    bool staged;     /* the engine drives the staged doublewrite instead of atomio_write*() */
    uint32_t wflags; /* flags of atomio_write*(): ATOMIO_WRITE_STABLE_PAGES writes aligned
                      * pages from the caller's memory (vectored store write) */
    bool split;      /* every batch as two store writes, pages then header (the io_uring
                      * overlap's order), via atomio__test_dw_split */
    int nsteps;
    struct wl_step steps[MAXSTEPS];
};

/* Two CRC32Cs with different seeds: a 64-bit fingerprint of a page version, so checking a
 * page against its candidate versions costs one pass over it. */
static uint64_t
fingerprint(const uint8_t *p, uint32_t ps)
{
    return (uint64_t)atomio__crc32c(0, p, ps) << 32 | atomio__crc32c(0x5bd1e995u, p, ps);
}

#define MAXVER 64
static uint64_t fp_cache[MAXF][16][MAXVER];
static bool fp_have[MAXF][16][MAXVER];

struct call {
    long op_start, op_end;
    long op_durable; /* op count once its pages are known durable (LONG_MAX: never) */
    int results[MAXW];
    bool ran;
};

struct tally {
    uint64_t crash_states, reboots, torn, lost, count_mismatch, unexpected, sampled_points;
    uint64_t restored_total, valid_total, torn_batches_total;
};

static char root[256], dwdir[300];
static uint32_t last_downgrades[MAXF]; /* seen at the end of the last workload run */
static uint64_t last_forced_syncs;     /* the writers' forced_syncs, summed over runs */
static char fpath[MAXF][300];

static void
setup(void)
{
    t_tmpdir(root, sizeof(root));
    snprintf(dwdir, sizeof(dwdir), "%s/dw", root);
    cr_assert_eq(mkdir(dwdir, 0700), 0);
    for (int i = 0; i < MAXF; i++)
        snprintf(fpath[i], sizeof(fpath[i]), "%s/f%d.db", root, i);
}

static void
teardown(void)
{
    atomic_store(&atomio__test_skip_dw_durability, 0);
    atomic_store(&atomio__test_dw_local_order, 0);
    sim_fini();
    t_rmtree(root);
}

TestSuite(crash, .init = setup, .fini = teardown);

static void
content(uint8_t *buf, uint32_t ps, int f, uint64_t p, uint32_t v)
{
    t_fill(buf, ps, (uint64_t)(f + 1) * 1000003u + p * 1009u + (uint64_t)v * 7919u + 1);
}

/* version_fp() -- fingerprint of version v of page p of file f (cached; the cache is keyed by
 * the same inputs as content(), so it holds across workloads with the same page sizes). */
static uint64_t
version_fp(uint32_t ps, int f, uint64_t p, uint32_t v)
{
    static uint32_t cached_ps[MAXF];
    if (cached_ps[f] != ps) {
        memset(fp_have[f], 0, sizeof(fp_have[f]));
        cached_ps[f] = ps;
    }
    if (p < 16 && v < MAXVER && fp_have[f][p][v])
        return fp_cache[f][p][v];
    uint8_t buf[16384];
    content(buf, ps, f, p, v);
    uint64_t h = fingerprint(buf, ps);
    if (p < 16 && v < MAXVER) {
        fp_cache[f][p][v] = h;
        fp_have[f][p][v] = true;
    }
    return h;
}

/* fresh_device() -- a new simulated device holding the data files at version 0, durable. */
static void
fresh_device(const struct wl *wl)
{
    sim_fini();
    sim_init(root);
    bool atomic = wl->atomic_ok > 0;
    for (int f = 0; f < wl->nfiles; f++)
        atomic |= wl->path[f] == ATOMIO_PATH_DIRECT_ATOMIC;
    if (atomic) {
        sim_set_atomic_caps(true, wl->atomic_ok);
        sim_set_atomic_errno(ENOSPC);
    }
    if (wl->short_keep)
        sim_set_short_write(wl->short_op, wl->short_keep);
    for (int f = 0; f < wl->nfiles; f++) {
        size_t len = (size_t)wl->ps[f] * wl->npages[f];
        uint8_t *buf = malloc(len);
        for (uint64_t p = 0; p < wl->npages[f]; p++)
            content(buf + p * wl->ps[f], wl->ps[f], f, p, 0);
        sim_file_put(fpath[f], buf, len);
        free(buf);
    }
}

static atomio_ctx *
ctx_open_on_sim(const struct wl *wl, uint32_t flags, int *err)
{
    atomio_ctx_opts o = t_ctx_opts(dwdir); /* the sync submitter: io_uring bypasses the seam */
    o.doublewrite_store_bytes = (uint64_t)(wl->ring_kib ? wl->ring_kib : 64) << 10;
    o.doublewrite_mode = wl->write_behind ? ATOMIO_DOUBLEWRITE_WRITE_BEHIND
                         : wl->deferred   ? ATOMIO_DOUBLEWRITE_DEFERRED
                                          : ATOMIO_DOUBLEWRITE_SYNC_BATCH;
    if (wl->write_behind)
        o.write_behind_bytes = 64u << 10; /* 16 slots: a round every 4 staged pages */
    o.instance = "crash";                 /* a second writer joins the first */
    o.doublewrite_batch_pages = wl->batch_pages;
    o.doublewrite_max_page_size = wl->max_ps;
    o.flags = flags;
    atomio_ctx *ctx = NULL;
    *err = atomio_ctx_open(&o, &ctx);
    return *err == 0 ? ctx : NULL;
}

/*
 * staged_batch() -- one staged batch as an engine with its own ring runs it: each prepared SQE
 * goes through the seam (t_eng_exec); the in-place writes are all prepared before any runs and
 * reported in reverse order. A failed store step abandons the batch, as an engine would.
 */
static void
staged_batch(atomio_ctx *ctx, atomio_page_write *w, int n, int *results)
{
    atomio_doublewrite_batch *b;
    int r = atomio_doublewrite_stage(ctx, w, (size_t)n, 0, &b);
    if (r < 0) {
        for (int i = 0; i < n; i++)
            results[i] = w[i].result ? w[i].result : r;
        return;
    }
    struct io_uring_sqe sqe;
    r = atomio_doublewrite_prep_store(b, &sqe);
    cr_assert_eq(r, 0);
    r = atomio_doublewrite_complete_store(b, t_eng_exec(&sqe));
    if (r == 0) {
        cr_assert_eq(atomio_doublewrite_prep_store_sync(b, &sqe), 0);
        r = atomio_doublewrite_complete_store_sync(b, t_eng_exec(&sqe));
    }
    if (r < 0) {
        (void)atomio_doublewrite_abandon(b); /* fails once the device is dead: expected */
        for (int i = 0; i < n; i++)
            results[i] = r;
        return;
    }
    struct io_uring_sqe ip[MAXW];
    int res[MAXW];
    for (int i = 0; i < n; i++)
        cr_assert_eq(atomio_doublewrite_prep_inplace(b, (size_t)i, &ip[i]), 0);
    for (int i = 0; i < n; i++)
        res[i] = t_eng_exec(&ip[i]);
    for (int i = n; i-- > 0;) {
        int c = atomio_doublewrite_complete_inplace(b, (size_t)i, res[i]);
        cr_assert(c != ATOMIO_E_SEQUENCE && c != ATOMIO_E_INVAL, "complete: %s",
                  atomio_err_name(c)); /* the page's own result comes back from done */
    }
    cr_assert_geq(atomio_doublewrite_done(b, results), 0);
}

/* staged_step() -- a step's pages in as many staged batches as the store's records need
 * (an engine splits as atomio_write_batch() does: a staged batch is one record). */
static void
staged_step(atomio_ctx *ctx, atomio_page_write *w, int n, int *results)
{
    for (int i = 0; i < n;) {
        int cnt = 0;
        uint64_t bytes = 0;
        while (i + cnt < n) {
            uint32_t ps = w[i + cnt].file->page_size;
            if (cnt > 0 && !atomio__dw_fits(ctx->store, (uint32_t)cnt + 1, bytes + ps))
                break;
            bytes += ps;
            cnt++;
        }
        staged_batch(ctx, w + i, cnt, results + i);
        i += cnt;
    }
}

/*
 * engine_step() -- a step as an engine with its own ring issues it: pages of atomic files get
 * an atomio_prep_write() SQE each, all in flight together (completions reported in reverse);
 * pages the library sends to doublewrite (ATOMIO_E_NEEDS_DOUBLEWRITE from the preparation or,
 * after a runtime downgrade, from the completion) go through the staged doublewrite -- what
 * atomio_write_batch() does inside one call.
 */
static void
engine_step(atomio_ctx *ctx, atomio_page_write *w, int n, int *results)
{
    atomio_page_write dw[MAXW];
    int dwi[MAXW], dwres[MAXW], idx[MAXW], res[MAXW];
    struct io_uring_sqe sq[MAXW];
    int ndw = 0, nsq = 0;
    for (int i = 0; i < n; i++) {
        int r = atomio_prep_write(w[i].file, &sq[nsq], w[i].page_no, w[i].page, 0);
        if (r == 0)
            idx[nsq++] = i;
        else if (r == ATOMIO_E_NEEDS_DOUBLEWRITE)
            dw[ndw] = w[i], dwi[ndw++] = i;
        else
            results[i] = r;
    }
    for (int k = 0; k < nsq; k++)
        res[k] = t_eng_exec(&sq[k]);
    for (int k = nsq; k-- > 0;) {
        int i = idx[k];
        int c = atomio_complete_write(w[i].file, res[k], w[i].file->page_size);
        if (c == ATOMIO_E_NEEDS_DOUBLEWRITE)
            dw[ndw] = w[i], dwi[ndw++] = i;
        else
            results[i] = c;
    }
    if (ndw) {
        staged_step(ctx, dw, ndw, dwres);
        for (int j = 0; j < ndw; j++)
            results[dwi[j]] = dwres[j];
    }
}

/* run_workload() -- the workload on the device as it is; records when each call started and
 * returned, in device ops. Calls after a crash fail (dead device); that is expected. */
static void
run_workload(const struct wl *wl, struct call *calls)
{
    memset(calls, 0, sizeof(*calls) * (size_t)wl->nsteps);
    atomic_store(&atomio__test_dw_split, wl->split);
    atomic_store(&atomio__test_dw_local_order, wl->local_order);
    int err;
    int nctx = wl->nctx ? wl->nctx : 1;
    atomio_ctx *ctxs[2] = {NULL, NULL};
    atomio_file *files[2][MAXF] = {{0}};
    uint8_t *bufs = aligned_alloc(4096, (size_t)MAXW * 16384);
    for (int c = 0; c < nctx; c++) {
        ctxs[c] = ctx_open_on_sim(wl, 0, &err);
        if (!ctxs[c])
            goto out;
        for (int f = 0; f < wl->nfiles; f++) {
            uint32_t path = wl->path[f] ? wl->path[f] : ATOMIO_PATH_DOUBLEWRITE;
            atomio_file_opts fo = t_file_opts(
                wl->ps[f], path,
                path == ATOMIO_PATH_DIRECT_ATOMIC ? ATOMIO_IO_DIRECT : ATOMIO_IO_BUFFERED, 0);
            fo.file_id = 10 + (uint64_t)f;
            if (atomio_file_open(ctxs[c], fpath[f], &fo, &files[c][f]) < 0)
                goto out;
        }
    }
    for (int s = 0; s < wl->nsteps; s++) {
        const struct wl_step *st = &wl->steps[s];
        int c = st->ctx % nctx;
        atomio_ctx *ctx = ctxs[c];
        atomio_page_write w[MAXW];
        for (int i = 0; i < st->n; i++) {
            const struct wl_write *x = &st->w[i];
            uint8_t *b = bufs + (size_t)i * 16384;
            content(b, wl->ps[x->file], x->file, x->page, x->ver);
            w[i] = (atomio_page_write){.file = files[c][x->file], .page_no = x->page, .page = b};
        }
        calls[s].ran = true;
        calls[s].op_start = sim_ops();
        if (wl->staged) {
            engine_step(ctx, w, st->n, calls[s].results);
        } else if (st->single) {
            calls[s].results[0] = atomio_write(w[0].file, w[0].page_no, w[0].page, wl->wflags);
        } else {
            int nw = atomio_write_batch(ctx, w, (size_t)st->n, wl->wflags);
            (void)nw; /* per-entry results below */
            for (int i = 0; i < st->n; i++)
                calls[s].results[i] = w[i].result;
        }
        calls[s].op_end = sim_ops();
        /* Doublewrite pages are durable when the call returns (each batch syncs its files);
         * atomic ones, and all of them in deferred mode, once a sync of their file returns. */
        bool atomic = wl->deferred || wl->write_behind, synced = true;
        for (int i = 0; i < st->n; i++)
            atomic |= wl->path[st->w[i].file] == ATOMIO_PATH_DIRECT_ATOMIC;
        int sc = st->sync_by_other ? (c + 1) % nctx : c;
        if (st->sync)
            for (int f = 0; f < wl->nfiles; f++)
                for (int i = 0; i < st->n; i++)
                    if (st->w[i].file == f) {
                        /* fails once the device died */
                        synced &= atomio_sync(files[sc][f]) == 0;
                        break;
                    }
        calls[s].op_durable = !atomic ? calls[s].op_end : st->sync && synced ? sim_ops() : LONG_MAX;
    }
    for (int f = 0; f < wl->nfiles; f++) {
        atomio_file_info fi;
        memset(&fi, 0, sizeof(fi));
        fi.size = sizeof(fi);
        if (atomio_file_get_info(files[0][f], &fi) == 0)
            last_downgrades[f] = fi.downgrades;
    }
    for (int c = 0; c < nctx; c++) {
        atomio_stats st = ATOMIO_STATS_INIT;
        if (atomio_ctx_get_stats(ctxs[c], &st) == 0)
            last_forced_syncs += st.forced_syncs;
    }
out:
    free(bufs);
    for (int c = nctx; c-- > 0;)
        atomio_ctx_close(ctxs[c]);
    atomic_store(&atomio__test_dw_local_order, 0);
}

/* ---- expectations --------------------------------------------------------------------------- */

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool
zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

struct expect {
    uint64_t scanned, valid, pages_checked;
};

/*
 * batch_bytes() -- the bytes batch write op i put at the record's offset (within bytes into
 * the op: a write-behind round writes records that follow one another in one write): the op
 * itself, or, for a split store write (header and slot table only, shorter than the batch),
 * the op followed by the latest earlier write just behind it, its pages. NULL if none.
 */
static const uint8_t *
batch_bytes(const struct sim_log *log, size_t i, uint64_t within, uint64_t blen, uint8_t **owned)
{
    const struct sim_op *op = sim_log_op(log, i);
    *owned = NULL;
    if (within + blen <= op->len)
        return op->data + within;
    if (within)
        return NULL;
    for (size_t j = i; j-- > 0;) {
        const struct sim_op *pg = sim_log_op(log, j);
        if (pg->kind != SIM_WRITE || pg->file != op->file || pg->off != op->off + op->len)
            continue;
        if (op->len + pg->len < blen)
            return NULL;
        *owned = malloc(blen);
        cr_assert(*owned);
        memcpy(*owned, op->data, op->len);
        memcpy(*owned + op->len, pg->data, blen - op->len);
        return *owned;
    }
    return NULL;
}

/* store_tail() -- the durable tail as recovery will read it from the image's two header
 * copies (the larger tail of the valid ones). false when there is no store yet. */
static bool
store_tail(const uint8_t *st, size_t slen, struct atomio_dw_geom *g)
{
    struct atomio_dw_geom c[2];
    int d[2] = {-1, -1};
    for (uint32_t k = 0; k < 2; k++)
        if (slen >= (k + 1) * 4096)
            d[k] = atomio__dw_store_hdr_decode(st + k * 4096, ATOMIO_DW_STORE_HDR_LEN, k, &c[k],
                                               NULL, NULL);
    if (d[0] != 0 && d[1] != 0)
        return false;
    *g = d[0] == 0 && (d[1] != 0 || c[0].tail >= c[1].tail) ? c[0] : c[1];
    return true;
}

/* logged_header() -- whether the 64 bytes at ring offset pos are the header of a record the
 * library wrote there during the log (ops [0, k]); its op index in *which. */
static bool
logged_header(const struct sim_log *log, size_t k, int si, uint64_t off, const uint8_t *at,
              size_t *which, uint64_t *within)
{
    for (size_t i = (k < sim_log_len(log) ? k + 1 : k); i-- > 0;) {
        const struct sim_op *op = sim_log_op(log, i);
        /* a record's first write starts with its header ("ATRC"), not with page bytes; a
         * write-behind round's write holds several records, one after another */
        if (op->kind != SIM_WRITE || op->file != si || off < op->off ||
            off + 64 > op->off + op->len)
            continue;
        const uint8_t *h = op->data + (off - op->off);
        if (le32(h) != 0x43525441u || memcmp(h, at, 64) != 0)
            continue;
        *which = i;
        *within = off - op->off;
        return true;
    }
    return false;
}

/*
 * expect_store() -- what recovery should find in the store image, from the write log alone:
 * walking the ring in 512-byte steps, a header the library wrote at that place starts a
 * record; it is valid exactly when the record's bytes equal, over its length, that write (so
 * every CRC in it holds by construction; a split write counts with its pages, batch_bytes()),
 * and then the walk steps over it; otherwise it is torn. Only records at or above the durable
 * tail count. pages_checked: distinct (file id, page) over the valid ones.
 */
static void
expect_store(const struct sim_log *log, size_t k, const struct sim_image *img, struct expect *e)
{
    memset(e, 0, sizeof(*e));
    char spath[400];
    snprintf(spath, sizeof(spath), "%s/%s", dwdir, ATOMIO_DW_STORE_FILE);
    int si = sim_file_index(spath);
    if (si < 0 || si >= img->nfiles)
        return;
    const uint8_t *st = img->data[si];
    size_t slen = img->len[si];
    struct atomio_dw_geom g;
    if (!store_tail(st, slen, &g))
        return; /* no store yet: it is created at reboot, empty */
    static uint64_t keys[2][4096];
    size_t nkeys = 0;
    for (uint64_t pos = 0; pos + 64 <= g.ring_size;) {
        uint64_t off = g.ring_offset + pos;
        size_t i;
        uint64_t within = 0;
        if (off + 64 > slen || !logged_header(log, k, si, off, st + off, &i, &within)) {
            pos += 512;
            continue;
        }
        const uint8_t *hd = sim_log_op(log, i)->data + within; /* the record's header */
        uint64_t lsn = le64(hd + 8), blen = le64(hd + 24);
        uint8_t *owned = NULL;
        const uint8_t *want = off + blen <= slen ? batch_bytes(log, i, within, blen, &owned) : NULL;
        bool same = want && memcmp(st + off, want, blen) == 0;
        free(owned);
        if (lsn >= g.tail)
            e->scanned++;
        if (!same) {
            pos += 512;
            continue;
        }
        if (lsn >= g.tail) {
            e->valid++;
            uint32_t count = le32(hd + 16);
            for (uint32_t j = 0; j < count; j++) {
                const uint8_t *sl = hd + 64 + (size_t)j * 32;
                uint64_t fid = le64(sl), pno = le64(sl + 8);
                bool dup = false;
                for (size_t q = 0; q < nkeys && !dup; q++)
                    dup = keys[0][q] == fid && keys[1][q] == pno;
                if (!dup && nkeys < 4096) {
                    keys[0][nkeys] = fid;
                    keys[1][nkeys++] = pno;
                }
            }
        }
        pos += blen;
    }
    e->pages_checked = nkeys;
}

/*
 * check_pages() -- every page against the versions the workload wrote (see file header).
 * Returns the number of bad pages; counts them as torn or lost in t.
 */
static int
check_pages(const struct wl *wl, const struct call *calls, long k, struct tally *t,
            const char *what)
{
    int bad = 0;
    for (int f = 0; f < wl->nfiles; f++) {
        size_t len;
        const uint8_t *data = sim_file_data(fpath[f], &len);
        cr_assert(data, "data file %d vanished", f);
        for (uint64_t p = 0; p < wl->npages[f]; p++) {
            uint32_t ps = wl->ps[f];
            uint8_t page[16384];
            memset(page, 0, ps);
            if ((p + 1) * ps <= len)
                memcpy(page, data + p * ps, ps);
            else if (p * ps < len)
                memcpy(page, data + p * ps, len - p * ps);
            /* allowed: the newest version known durable at the crash, and any later one
             * whose call had started */
            uint32_t allowed[MAXSTEPS + 1];
            int nallowed = 1;
            allowed[0] = 0;
            for (int s = 0; s < wl->nsteps; s++) {
                if (!calls[s].ran)
                    continue;
                for (int i = 0; i < wl->steps[s].n; i++) {
                    const struct wl_write *x = &wl->steps[s].w[i];
                    if (x->file != f || x->page != p)
                        continue;
                    int res = calls[s].results[i];
                    bool failed_file =
                        wl->short_keep && x->file == wl->short_file && s >= wl->short_step;
                    if (calls[s].op_end <= k && res != 0) {
                        if (!failed_file)
                            t->unexpected++;
                        if (res != ATOMIO_E_SHORT_WRITE)
                            continue; /* refused: nothing was written */
                    }
                    if (calls[s].op_durable <= k && calls[s].results[i] == 0) {
                        allowed[0] = x->ver;
                        nallowed = 1;
                    } else if (calls[s].op_start <= k) {
                        allowed[nallowed++] = x->ver;
                    }
                }
            }
            uint64_t h = fingerprint(page, ps);
            bool ok = false;
            for (int a = 0; a < nallowed && !ok; a++)
                ok = h == version_fp(ps, f, p, allowed[a]);
            if (ok)
                continue;
            bool older = false;
            for (uint32_t v = 0; v < MAXVER && !older; v++)
                older = h == version_fp(ps, f, p, v);
            if (older)
                t->lost++;
            else
                t->torn++;
            if (bad++ < 3 && getenv("ATOMIO_CRASH_VERBOSE"))
                fprintf(stderr, "%s: crash at op %ld: file %d page %llu %s (want v%u..)\n", what, k,
                        f, (unsigned long long)p, older ? "lost" : "torn", allowed[0]);
        }
    }
    return bad;
}

/*
 * reboot_and_check() -- install the crash image, reopen (recovery), check pages and counts.
 */
static void
reboot_and_check(const struct wl *wl, const struct call *calls, const struct sim_log *log, size_t k,
                 struct sim_image *img, bool check_counts, struct tally *t)
{
    struct expect e;
    if (check_counts)
        expect_store(log, k, img, &e);
    sim_install(img);
    t->reboots++;
    int err;
    atomio_ctx *ctx = ctx_open_on_sim(wl, ATOMIO_CTX_NO_RECOVER, &err);
    cr_assert(ctx, "%s: reopen after crash at op %zu failed: %s", wl->name, k,
              atomio_strerror(err));
    atomio_recovery_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.size = sizeof(rep);
    int r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, 0, "%s: recovery after crash at op %zu: %s", wl->name, k, atomio_strerror(r));
    atomio_ctx_close(ctx);

    /* pages recovery changed, against the image it started from */
    uint64_t changed = 0;
    for (int f = 0; f < wl->nfiles; f++) {
        int fi = sim_file_index(fpath[f]);
        size_t len;
        const uint8_t *now = sim_file_data(fpath[f], &len);
        for (uint64_t p = 0; p < wl->npages[f]; p++) {
            uint64_t a = p * wl->ps[f], e2 = a + wl->ps[f];
            if (e2 <= img->len[fi] && e2 <= len) {
                changed += memcmp(img->data[fi] + a, now + a, wl->ps[f]) != 0;
                continue;
            }
            for (uint64_t b = a; b < e2; b++) {
                uint8_t x = b < img->len[fi] ? img->data[fi][b] : 0;
                uint8_t y = b < len ? now[b] : 0;
                if (x != y) {
                    changed++;
                    break;
                }
            }
        }
    }
    t->restored_total += rep.pages_restored;
    t->valid_total += rep.batches_valid;
    t->torn_batches_total += rep.batches_torn;
    bool counts_ok = rep.pages_restored == changed && rep.files_missing == 0 &&
                     rep.unknown_file_ids == 0 && rep.pages_unrecoverable == 0 &&
                     rep.batches_scanned == rep.batches_valid + rep.batches_torn;
    if (check_counts)
        counts_ok = counts_ok && rep.batches_scanned == e.scanned && rep.batches_valid == e.valid &&
                    rep.pages_checked == e.pages_checked;
    if (!counts_ok) {
        t->count_mismatch++;
        if (getenv("ATOMIO_CRASH_VERBOSE"))
            fprintf(stderr,
                    "%s: crash at op %zu: report restored %llu (changed %llu) scanned %llu/%llu "
                    "valid %llu/%llu checked %llu/%llu\n",
                    wl->name, k, (unsigned long long)rep.pages_restored,
                    (unsigned long long)changed, (unsigned long long)rep.batches_scanned,
                    (unsigned long long)(check_counts ? e.scanned : 0),
                    (unsigned long long)rep.batches_valid,
                    (unsigned long long)(check_counts ? e.valid : 0),
                    (unsigned long long)rep.pages_checked,
                    (unsigned long long)(check_counts ? e.pages_checked : 0));
    }
    check_pages(wl, calls, (long)k, t, wl->name);
}

/* ---- drivers ----------------------------------------------------------------------------- */

#define EXHAUSTIVE_MAX_BITS 14

/* find_short_op() -- the device op of the in-place write to make short, from a clean run. */
static void
find_short_op(struct wl *wl)
{
    struct call calls[MAXSTEPS];
    uint64_t keep = wl->short_keep;
    wl->short_keep = 0;
    fresh_device(wl);
    run_workload(wl, calls);
    wl->short_keep = keep;
    struct sim_log *log = sim_take_log();
    int fi = sim_file_index(fpath[wl->short_file]);
    wl->short_op = -1;
    for (long i = calls[wl->short_step].op_start; i < calls[wl->short_step].op_end; i++) {
        const struct sim_op *op = sim_log_op(log, (size_t)i);
        if (op->kind == SIM_WRITE && op->file == fi &&
            op->off == wl->short_page * wl->ps[wl->short_file])
            wl->short_op = i;
    }
    sim_log_free(log);
    cr_assert_geq(wl->short_op, 0, "%s: in-place write to shorten not found", wl->name);
}

struct explore_arg {
    const struct wl *wl;
    struct call calls[MAXSTEPS];
    struct tally *t;
};

static void
explore_fresh(void *arg)
{
    fresh_device(((struct explore_arg *)arg)->wl);
}

static void
explore_run(void *arg)
{
    struct explore_arg *a = arg;
    run_workload(a->wl, a->calls);
}

static bool
explore_check(void *arg, const struct sim_log *log, size_t k, struct sim_image *img)
{
    struct explore_arg *a = arg;
    reboot_and_check(a->wl, a->calls, log, k, img, true, a->t);
    return true;
}

/*
 * exhaustive() -- every crash point of the workload; at each, every subset of the sector
 * pieces that can make a difference (up to 2^14; beyond that 4096 random subsets, counted in
 * sampled_points): crash_explore().
 */
static void
exhaustive(const struct wl *wl, struct tally *t)
{
    cr_assert(!wl->short_keep || wl->short_op > 0, "call find_short_op() first");
    struct explore_arg a = {.wl = wl, .t = t};
    struct crash_explorer x = {
        .name = wl->name,
        .exhaustive_bits = wl->light ? 10 : EXHAUSTIVE_MAX_BITS,
        .sampled = wl->light ? 256 : 4096,
        .min_ops = 10,
        .arg = &a,
        .fresh_device = explore_fresh,
        .run = explore_run,
        .check = explore_check,
    };
    struct crash_counts c = {0};
    crash_explore(&x, &c);
    t->crash_states += c.states;
    t->sampled_points += c.sampled_points;
}

/*
 * randomized() -- run the workload once, then for `points` crash points (in increasing op
 * order) build one random image each and reboot on it. One in eight also crashes recovery
 * itself at a random point and reboots again from that.
 */
static void
randomized(const struct wl *wl, uint64_t seed, uint64_t points, struct tally *t)
{
    struct call calls[MAXSTEPS];
    fresh_device(wl);
    run_workload(wl, calls);
    struct sim_log *log = sim_take_log();
    size_t nops = sim_log_len(log);
    uint64_t *ks = malloc(points * sizeof(*ks));
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < points; i++)
        ks[i] = crash_rnd_next(&x) % (nops + 1);
    /* sort ascending: the replay only moves forward */
    for (uint64_t i = 1; i < points; i++)
        for (uint64_t j = i; j > 0 && ks[j - 1] > ks[j]; j--) {
            uint64_t tmp = ks[j];
            ks[j] = ks[j - 1];
            ks[j - 1] = tmp;
        }
    struct sim_replay *rp = sim_replay_new(log);
    for (uint64_t i = 0; i < points; i++) {
        static const uint32_t probs[] = {128, 20, 236, 128};
        struct crash_rnd r = {crash_rnd_next(&x) | 1, probs[crash_rnd_next(&x) % 4]};
        struct sim_image img;
        sim_replay_image(rp, (size_t)ks[i], crash_keep_random, &r, &img);
        t->crash_states++;
        if (crash_rnd_next(&x) % 8 != 0) {
            reboot_and_check(wl, calls, log, (size_t)ks[i], &img, true, t);
        } else {
            /* crash during recovery, then recover again */
            sim_install(&img);
            long j = (long)(crash_rnd_next(&x) % 24);
            sim_set_crash_at(j);
            int err;
            atomio_ctx *ctx = ctx_open_on_sim(wl, 0, &err);
            atomio_ctx_close(ctx);
            struct sim_log *log2 = sim_take_log();
            struct sim_replay *rp2 = sim_replay_new(log2);
            struct sim_image img2;
            size_t j2 = (size_t)j < sim_log_len(log2) ? (size_t)j : sim_log_len(log2);
            sim_replay_image(rp2, j2, crash_keep_random, &r, &img2);
            reboot_and_check(wl, calls, log2, (size_t)ks[i], &img2, false, t);
            sim_image_free(&img2);
            sim_replay_free(rp2);
            sim_log_free(log2);
        }
        sim_image_free(&img);
    }
    sim_replay_free(rp);
    sim_log_free(log);
    free(ks);
}

/* ---- workloads ------------------------------------------------------------------------------- */

static struct wl
small_base(const char *name)
{
    struct wl wl;
    memset(&wl, 0, sizeof(wl));
    wl.name = name;
    wl.nfiles = 1;
    wl.ps[0] = 1024; /* two sectors: a page can tear */
    wl.npages[0] = 4;
    wl.ring_kib = 64;
    wl.batch_pages = 4;
    wl.max_ps = 1024;
    return wl;
}

static void
add(struct wl *wl, int step, int file, uint64_t page, uint32_t ver)
{
    struct wl_step *s = &wl->steps[step];
    s->w[s->n++] = (struct wl_write){file, page, ver};
    if (step + 1 > wl->nsteps)
        wl->nsteps = step + 1;
}

static void
report(const char *what, const struct tally *t)
{
    fprintf(stderr,
            "%s: %llu crash states, %llu reboots, torn %llu, lost %llu, count mismatches %llu, "
            "unexpected failures %llu, sampled points %llu (pages restored %llu, valid batches "
            "%llu, torn batches %llu)\n",
            what, (unsigned long long)t->crash_states, (unsigned long long)t->reboots,
            (unsigned long long)t->torn, (unsigned long long)t->lost,
            (unsigned long long)t->count_mismatch, (unsigned long long)t->unexpected,
            (unsigned long long)t->sampled_points, (unsigned long long)t->restored_total,
            (unsigned long long)t->valid_total, (unsigned long long)t->torn_batches_total);
}

static void
assert_clean(const char *what, const struct tally *t)
{
    report(what, t);
    cr_assert_eq(t->torn, 0, "%s: torn pages", what);
    cr_assert_eq(t->lost, 0, "%s: lost pages", what);
    cr_assert_eq(t->count_mismatch, 0, "%s: report counts", what);
    cr_assert_eq(t->unexpected, 0, "%s: writes failed before the crash", what);
}

/* ---- scenarios ------------------------------------------------------------------------------
 *
 * Each exhaustive workload once, run by the library (atomio_write*()) or by an engine's own ring
 * (the staged doublewrite, engine_step()); a Test() per scenario and driver below.
 */

enum driver { LIBRARY, STAGED };

struct scenario {
    const char *name;
    /* the workload on small_base(): steps and device settings */
    void (*build)(struct wl *wl, enum driver d);
    /* optional: asserts on the results of the run without a crash */
    void (*check_clean_run)(const struct call *calls, enum driver d);
    bool sabotage;      /* no store fdatasync: the explorer must find torn or lost pages */
    bool restores;      /* some crash state needs a page restored */
    bool tears_batch;   /* some crash tears a store batch */
    bool every_pattern; /* no crash point has too many pieces to try every tear pattern */
};

static void
build_two_pages(struct wl *wl, enum driver d)
{
    (void)d;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 2, 1);
}

/* The store write as io_uring issues it (pages, then header and slot table once the pages are
 * checksummed): a crash may keep either without the other, with any sectors torn. */
static void
build_split_store_write(struct wl *wl, enum driver d)
{
    (void)d;
    wl->split = true;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 2, 1);
    add(wl, 1, 0, 2, 2);
    add(wl, 1, 0, 3, 1);
}

static void
build_three_pages(struct wl *wl, enum driver d)
{
    (void)d;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 1, 1);
    add(wl, 0, 0, 3, 1);
}

static void
build_page_rewritten(struct wl *wl, enum driver d)
{
    (void)d;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 1, 1);
    add(wl, 1, 0, 1, 2);
    add(wl, 1, 0, 2, 2);
}

/* Two writers (processes of one instance, each its own ctx) pass pages between them: a page
 * written by one and then by the other must never come back as the first one's copy. */
static void
build_two_writers(struct wl *wl, enum driver d)
{
    (void)d;
    wl->nfiles = 2;
    wl->ps[1] = 1024;
    wl->npages[1] = 2;
    wl->nctx = 2;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 1, 1, 1);
    add(wl, 1, 0, 0, 2);
    add(wl, 1, 1, 0, 2);
    wl->steps[1].ctx = 1;
    add(wl, 2, 0, 0, 3);
    add(wl, 2, 0, 3, 2);
}

/* The same with the ordering sabotaged: each writer numbers its copies itself. The writer
 * that wrote a page first wrote more copies, so its older copy outranks the other's newer
 * one: the simulator must find the page rolled back. */
static void
build_local_order(struct wl *wl, enum driver d)
{
    (void)d;
    wl->nctx = 2;
    wl->local_order = true;
    add(wl, 0, 0, 1, 1);
    add(wl, 1, 0, 0, 1);
    add(wl, 2, 0, 0, 2);
    wl->steps[2].ctx = 1;
}

/* Deferred durability: no data file is synced by a batch; the other writer's atomio_sync()
 * releases the first one's copies, and only synced pages are promised. */
static void
build_deferred_sync_by_other(struct wl *wl, enum driver d)
{
    (void)d;
    wl->nctx = 2;
    wl->deferred = true;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 1, 1);
    add(wl, 1, 0, 1, 2);
    wl->steps[1].sync = true;
    wl->steps[1].sync_by_other = true;
    add(wl, 2, 0, 2, 1);
    wl->steps[2].ctx = 1;
    add(wl, 3, 0, 0, 2);
    wl->steps[3].sync = true;
}

/* Deferred durability in a ring too small for the workload: the writer never syncs until
 * the end, so reserving space syncs the oldest record's file itself (backpressure), and the
 * ring wraps over released records. */
static void
build_deferred_backpressure(struct wl *wl, enum driver d)
{
    (void)d;
    wl->deferred = true;
    wl->ring_kib = 16;
    wl->batch_pages = 2;
    wl->npages[0] = 4;
    wl->light = true; /* a dozen calls: every crash point, fewer tear patterns at each */
    for (int s = 0; s < 12; s++) {
        add(wl, s, 0, (uint64_t)s % 4, (uint32_t)(s / 4 + 1));
        wl->steps[s].single = true;
    }
    wl->steps[11].sync = true;
}

/* Write-behind: the deferred two-writer run with pages staged in shared memory; one writer's
 * sync puts the other's staged pages in place (a round) before it syncs the file. */
static void
build_wb_sync_by_other(struct wl *wl, enum driver d)
{
    build_deferred_sync_by_other(wl, d);
    wl->write_behind = true;
}

/* Write-behind in a ring too small for the workload: rounds led by writers as the staging
 * fills (every 4 pages), backpressure syncs, the ring wrapping over released records. */
static void
build_wb_rounds(struct wl *wl, enum driver d)
{
    build_deferred_backpressure(wl, d);
    wl->write_behind = true;
}

/* The sabotage in write-behind: a round's in-place writes start without its records made
 * durable; the syncs promise pages the store cannot restore. */
static void
build_wb_sabotaged(struct wl *wl, enum driver d)
{
    (void)d;
    wl->write_behind = true;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 2, 1);
    wl->steps[0].sync = true;
    add(wl, 1, 0, 2, 2);
    add(wl, 1, 0, 3, 1);
    wl->steps[1].sync = true;
}

static void
check_all_written(const struct call *calls, enum driver d)
{
    (void)d;
    for (int s = 0; s < 12; s++)
        cr_assert_eq(calls[s].results[0], 0, "step %d: %s", s,
                     atomio_err_name(calls[s].results[0]));
}

static void
check_backpressure(const struct call *calls, enum driver d)
{
    (void)d;
    for (int s = 0; s < 12; s++)
        cr_assert_eq(calls[s].results[0], 0, "step %d: %s", s,
                     atomio_err_name(calls[s].results[0]));
    cr_assert_gt(last_forced_syncs, 0, "the full ring never made the library sync a file");
}

/* One page a call (atomio_write() for the library; the engine stages one page a batch). */
static void
build_single_pages_with_sync(struct wl *wl, enum driver d)
{
    (void)d;
    add(wl, 0, 0, 1, 1);
    wl->steps[0].sync = true;
    add(wl, 1, 0, 1, 2);
    add(wl, 2, 0, 2, 3);
    for (int s = 0; s < 3; s++)
        wl->steps[s].single = true;
}

/* A ring that wraps: records are written over released ones, after the store header's
 * durable tail has passed them; a crash in between must never let an old copy win. */
static void
build_ring_wraps(struct wl *wl, enum driver d)
{
    (void)d;
    wl->ring_kib = 16;
    wl->batch_pages = 2;
    for (int s = 0; s < 13; s++) {
        add(wl, s, 0, (uint64_t)(s * 3) % 4, (uint32_t)(s / 4 + 1));
        wl->steps[s].single = s % 3 != 0;
        if (s % 3 == 0)
            add(wl, s, 0, (uint64_t)(s * 3 + 1) % 4, (uint32_t)(s / 4 + 1));
    }
}

/* DIRECT_ATOMIC until the device refuses with ENOSPC (nothing written), then the file goes
 * through the store; pages written atomically before stay as they were. On the engine's ring:
 * atomio_prep_write() SQEs until the refusal, atomio_complete_write() downgrades the file, the
 * engine rewrites the page through the staged doublewrite. */
static void
build_runtime_downgrade(struct wl *wl, enum driver d)
{
    (void)d;
    wl->path[0] = ATOMIO_PATH_DIRECT_ATOMIC;
    wl->atomic_ok = 2;
    wl->npages[0] = 4;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 1, 1);
    wl->steps[0].sync = true;
    add(wl, 1, 0, 1, 2);
    add(wl, 1, 0, 2, 1);
    wl->steps[1].sync = true;
    add(wl, 2, 0, 0, 2);
    add(wl, 2, 0, 3, 1);
    wl->steps[2].sync = true;
}

static void
check_runtime_downgrade(const struct call *calls, enum driver d)
{
    (void)d;
    cr_assert_eq(last_downgrades[0], 1, "the file did not downgrade");
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 2; i++)
            cr_assert_eq(calls[s].results[i], 0, "step %d write %d: %s", s, i,
                         atomio_err_name(calls[s].results[i]));
}

/* One in-place write comes back short: its file fails, its record is held until recovery,
 * the other file carries on. Since a staged batch is all or nothing, on the engine's ring the
 * write the failed file refuses gets a step of its own. */
static void
build_short_write_rescue(struct wl *wl, enum driver d)
{
    wl->nfiles = 2;
    wl->ps[1] = 1024;
    wl->npages[0] = 3;
    wl->npages[1] = 3;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 1, 0, 1);
    add(wl, 1, 0, 1, 1);
    add(wl, 1, 1, 1, 1);
    add(wl, 2, 1, 2, 1);
    add(wl, 3, 1, 0, 2);
    add(wl, d == STAGED ? 4 : 3, 0, 2, 1); /* refused: the file failed */
    wl->short_step = 1;
    wl->short_file = 0;
    wl->short_page = 1;
    wl->short_keep = 512;
}

static void
check_short_write_rescue(const struct call *calls, enum driver d)
{
    cr_assert_eq(calls[1].results[0], ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(calls[1].results[1], 0);
    cr_assert_eq(calls[3].results[0], 0);
    if (d == STAGED)
        cr_assert_eq(calls[4].results[0], ATOMIO_E_FAILED);
    else
        cr_assert_eq(calls[3].results[1], ATOMIO_E_FAILED);
}

static void
build_sabotaged(struct wl *wl, enum driver d)
{
    (void)d;
    add(wl, 0, 0, 0, 1);
    add(wl, 0, 0, 2, 1);
    add(wl, 1, 0, 2, 2);
}

enum {
    SC_TWO_PAGES,
    SC_SPLIT_STORE_WRITE,
    SC_THREE_PAGES,
    SC_PAGE_REWRITTEN,
    SC_TWO_WRITERS,
    SC_LOCAL_ORDER,
    SC_DEFERRED_SYNC_BY_OTHER,
    SC_DEFERRED_BACKPRESSURE,
    SC_SINGLE_PAGES_WITH_SYNC,
    SC_RING_WRAPS,
    SC_RUNTIME_DOWNGRADE,
    SC_SHORT_WRITE_RESCUE,
    SC_SABOTAGED,
    SC_WB_SYNC_BY_OTHER,
    SC_WB_ROUNDS,
    SC_WB_SABOTAGED,
};

static const struct scenario scenarios[] = {
    [SC_TWO_PAGES] = {.name = "2 pages, 1 batch",
                      .build = build_two_pages,
                      .restores = true,
                      .every_pattern = true},
    [SC_SPLIT_STORE_WRITE] = {.name = "split store write (pages, then header)",
                              .build = build_split_store_write,
                              .restores = true,
                              .tears_batch = true},
    [SC_THREE_PAGES] = {.name = "3 pages, 1 batch",
                        .build = build_three_pages,
                        .every_pattern = true},
    [SC_PAGE_REWRITTEN] = {.name = "2 batches, page rewritten",
                           .build = build_page_rewritten,
                           .every_pattern = true},
    [SC_TWO_WRITERS] = {.name = "2 writers pass pages", .build = build_two_writers},
    [SC_LOCAL_ORDER] = {.name = "sabotaged: copies ordered per writer",
                        .build = build_local_order,
                        .sabotage = true},
    [SC_DEFERRED_SYNC_BY_OTHER] = {.name = "deferred, synced by the other writer",
                                   .build = build_deferred_sync_by_other,
                                   .restores = true},
    [SC_DEFERRED_BACKPRESSURE] = {.name = "deferred, ring full: backpressure",
                                  .build = build_deferred_backpressure,
                                  .check_clean_run = check_backpressure},
    [SC_SINGLE_PAGES_WITH_SYNC] = {.name = "single pages, sync, 3 batches",
                                   .build = build_single_pages_with_sync},
    [SC_RING_WRAPS] = {.name = "ring wraps over released records", .build = build_ring_wraps},
    [SC_RUNTIME_DOWNGRADE] = {.name = "atomic writes, ENOSPC, downgrade",
                              .build = build_runtime_downgrade,
                              .check_clean_run = check_runtime_downgrade},
    [SC_SHORT_WRITE_RESCUE] = {.name = "short in-place write, record held",
                               .build = build_short_write_rescue,
                               .check_clean_run = check_short_write_rescue},
    [SC_SABOTAGED] = {.name = "sabotaged: no store fdatasync",
                      .build = build_sabotaged,
                      .sabotage = true},
    [SC_WB_SYNC_BY_OTHER] = {.name = "write-behind, synced by the other writer",
                             .build = build_wb_sync_by_other,
                             .restores = true},
    [SC_WB_ROUNDS] = {.name = "write-behind, rounds as staging fills, ring full",
                      .build = build_wb_rounds,
                      .check_clean_run = check_all_written},
    [SC_WB_SABOTAGED] = {.name = "sabotaged write-behind: no store fdatasync",
                         .build = build_wb_sabotaged,
                         .sabotage = true},
};

static void
run_scenario(int sc_index, enum driver d)
{
    const struct scenario *sc = &scenarios[sc_index];
    char name[128];
    snprintf(name, sizeof(name), "%s%s", d == STAGED ? "staged: " : "", sc->name);
    struct wl wl = small_base(name);
    wl.staged = d == STAGED;
    sc->build(&wl, d);
    atomic_store(&atomio__test_skip_dw_durability, sc->sabotage);
    struct tally t = {0};
    sim_init(root);
    if (wl.short_keep)
        find_short_op(&wl);
    if (sc->check_clean_run) {
        struct call calls[MAXSTEPS];
        fresh_device(&wl);
        run_workload(&wl, calls);
        sc->check_clean_run(calls, d);
    }
    exhaustive(&wl, &t);
    if (sc->sabotage) {
        report(wl.name, &t);
        cr_assert_gt(t.torn + t.lost, 0,
                     "%s: the simulator did not notice that the store write was never made "
                     "durable",
                     wl.name);
        return;
    }
    assert_clean(wl.name, &t);
    if (sc->restores)
        cr_assert_gt(t.restored_total, 0, "%s: no crash state ever needed a restore", wl.name);
    if (sc->tears_batch)
        cr_assert_gt(t.torn_batches_total, 0, "%s: no crash ever tore a store batch", wl.name);
    if (sc->every_pattern)
        cr_assert_eq(t.sampled_points, 0, "%s: %llu crash points sampled", wl.name,
                     (unsigned long long)t.sampled_points);
}

/* clang-format off */
Test(crash, exhaustive_two_pages_one_batch)          { run_scenario(SC_TWO_PAGES, LIBRARY); }
Test(crash, staged_exhaustive_two_pages_one_batch)   { run_scenario(SC_TWO_PAGES, STAGED); }
Test(crash, exhaustive_split_store_write)            { run_scenario(SC_SPLIT_STORE_WRITE, LIBRARY); }
Test(crash, exhaustive_three_pages_one_batch)        { run_scenario(SC_THREE_PAGES, LIBRARY); }
Test(crash, exhaustive_two_batches_same_page_rewritten)        { run_scenario(SC_PAGE_REWRITTEN, LIBRARY); }
Test(crash, staged_exhaustive_two_batches_same_page_rewritten) { run_scenario(SC_PAGE_REWRITTEN, STAGED); }
Test(crash, exhaustive_two_writers_pass_pages)        { run_scenario(SC_TWO_WRITERS, LIBRARY); }
Test(crash, staged_exhaustive_two_writers_pass_pages) { run_scenario(SC_TWO_WRITERS, STAGED); }
Test(crash, sabotage_per_writer_order_is_caught)      { run_scenario(SC_LOCAL_ORDER, LIBRARY); }
Test(crash, exhaustive_deferred_synced_by_other_writer)        { run_scenario(SC_DEFERRED_SYNC_BY_OTHER, LIBRARY); }
Test(crash, staged_exhaustive_deferred_synced_by_other_writer) { run_scenario(SC_DEFERRED_SYNC_BY_OTHER, STAGED); }
Test(crash, exhaustive_deferred_backpressure)         { run_scenario(SC_DEFERRED_BACKPRESSURE, LIBRARY); }
Test(crash, exhaustive_single_page_calls_with_sync)  { run_scenario(SC_SINGLE_PAGES_WITH_SYNC, LIBRARY); }
Test(crash, staged_exhaustive_single_pages_with_sync) { run_scenario(SC_SINGLE_PAGES_WITH_SYNC, STAGED); }
Test(crash, exhaustive_ring_wraps)                    { run_scenario(SC_RING_WRAPS, LIBRARY); }
Test(crash, staged_exhaustive_ring_wraps)             { run_scenario(SC_RING_WRAPS, STAGED); }
Test(crash, exhaustive_runtime_downgrade)            { run_scenario(SC_RUNTIME_DOWNGRADE, LIBRARY); }
Test(crash, staged_exhaustive_runtime_downgrade)     { run_scenario(SC_RUNTIME_DOWNGRADE, STAGED); }
Test(crash, exhaustive_short_write_rescue)           { run_scenario(SC_SHORT_WRITE_RESCUE, LIBRARY); }
Test(crash, staged_exhaustive_short_write_rescue)    { run_scenario(SC_SHORT_WRITE_RESCUE, STAGED); }
Test(crash, sabotage_without_store_durability_is_caught)        { run_scenario(SC_SABOTAGED, LIBRARY); }
Test(crash, exhaustive_write_behind_synced_by_other_writer)     { run_scenario(SC_WB_SYNC_BY_OTHER, LIBRARY); }
Test(crash, exhaustive_write_behind_rounds)                     { run_scenario(SC_WB_ROUNDS, LIBRARY); }
Test(crash, sabotage_write_behind_is_caught)                    { run_scenario(SC_WB_SABOTAGED, LIBRARY); }
Test(crash, staged_sabotage_without_store_durability_is_caught) { run_scenario(SC_SABOTAGED, STAGED); }
/* clang-format on */

/* ATOMIO_WRITE_STABLE_PAGES: 4 KiB pages go to the store by a vectored write from the caller's
 * buffers and in place from the same buffers; split as io_uring issues it, and not split. The
 * page has eight sectors, so crash points sample 4096 tear patterns each. */
Test(crash, exhaustive_zero_copy_store_write)
{
    for (int split = 0; split < 2; split++) {
        struct wl wl = small_base(split ? "zero-copy, split store write" : "zero-copy store write");
        wl.ps[0] = 4096;
        wl.max_ps = 4096;
        wl.npages[0] = 3;
        wl.batch_pages = 2;
        wl.wflags = ATOMIO_WRITE_STABLE_PAGES;
        wl.split = split;
        add(&wl, 0, 0, 0, 1);
        add(&wl, 0, 0, 1, 1);
        add(&wl, 1, 0, 1, 2);
        struct tally t = {0};
        sim_init(root);
        /* The pages really went uncopied: the store writes were vectored. */
        struct call calls[MAXSTEPS];
        fresh_device(&wl);
        run_workload(&wl, calls);
        struct sim_log *log = sim_take_log();
        char spath[400];
        snprintf(spath, sizeof(spath), "%s/%s", dwdir, ATOMIO_DW_STORE_FILE);
        int si = sim_file_index(spath), vectored = 0;
        for (size_t i = 0; i < sim_log_len(log); i++) {
            const struct sim_op *op = sim_log_op(log, i);
            /* batch writes only: the store header and zero fill at creation are vectored too */
            vectored += op->kind == SIM_WRITE && op->file == si &&
                        op->off >= ATOMIO_DW_RING_OFFSET && op->iovcnt > 1 && op->len >= 64 &&
                        !zero(op->data, 64);
        }
        sim_log_free(log);
        /* Whole: both batch writes (header + pages). Split: the two-page batch's pages write
         * (a one-page pages write is a single iovec whether copied or not). */
        cr_assert_eq(vectored, split ? 1 : 2, "%s: %d vectored store writes", wl.name, vectored);
        exhaustive(&wl, &t);
        assert_clean(wl.name, &t);
        cr_assert_gt(t.restored_total, 0, "%s: no crash state ever needed a restore", wl.name);
        cr_assert_gt(t.torn_batches_total, 0, "%s: no crash ever tore a store batch", wl.name);
    }
}

/* A random workload over three files of different page sizes. */
static struct wl
random_wl(uint64_t seed)
{
    struct wl wl;
    memset(&wl, 0, sizeof(wl));
    wl.name = "randomized";
    wl.nfiles = 3;
    wl.ps[0] = 4096;
    wl.ps[1] = 8192;
    wl.ps[2] = 16384;
    wl.npages[0] = 12;
    wl.npages[1] = 8;
    wl.npages[2] = 6;
    wl.ring_kib = 128;  /* the workload wraps the ring */
    wl.batch_pages = 3; /* 48 KiB of pages per record: big batches split */
    wl.max_ps = 16384;
    uint64_t x = seed | 1;
    /* Two writers half of the time, deferred durability a third of the time. */
    wl.nctx = 1 + (int)(crash_rnd_next(&x) % 2);
    wl.deferred = crash_rnd_next(&x) % 3 == 0;
    /* A quarter each: copied or zero-copy pages, one store write or split. */
    wl.wflags = (seed >> 3) & 1 ? ATOMIO_WRITE_STABLE_PAGES : 0;
    wl.split = (seed >> 4) & 1;
    uint32_t ver[MAXF][16] = {{0}};
    wl.nsteps = 24;
    for (int s = 0; s < wl.nsteps; s++) {
        struct wl_step *st = &wl.steps[s];
        int n = 1 + (int)(crash_rnd_next(&x) % 10);
        for (int i = 0; i < n; i++) {
            int f = (int)(crash_rnd_next(&x) % 3);
            uint64_t p = crash_rnd_next(&x) % wl.npages[f];
            bool dup = false;
            for (int j = 0; j < st->n; j++)
                dup |= st->w[j].file == f && st->w[j].page == p;
            if (dup)
                continue;
            st->w[st->n++] = (struct wl_write){f, p, ++ver[f][p]};
        }
        st->single = st->n == 1 && (crash_rnd_next(&x) & 1);
        st->sync = (crash_rnd_next(&x) % 4) == 0;
        st->ctx = (int)(crash_rnd_next(&x) % 2);
        st->sync_by_other = (crash_rnd_next(&x) % 3) == 0;
    }
    return wl;
}

/* Sanitizer builds take a tenth of the randomized points by default (CI's plain build runs the
 * full 10,000). */
#define DEFAULT_ITERATIONS (CRASH_SANITIZED ? 1000 : 10000)

static uint64_t
iterations(void)
{
    const char *e = getenv("ATOMIO_CRASH_ITERATIONS");
    uint64_t n = e ? strtoull(e, NULL, 10) : 0;
    return n ? n : DEFAULT_ITERATIONS;
}

static void
randomized_large(enum driver d)
{
    uint64_t total = iterations();
    uint64_t per = 500;
    uint64_t workloads = (total + per - 1) / per;
    struct tally t = {0};
    sim_init(root);
    for (uint64_t w = 0; w < workloads; w++) {
        struct wl wl = random_wl(0xC0FFEE + w * 7919);
        wl.staged = d == STAGED;
        uint64_t n = total - w * per < per ? total - w * per : per;
        randomized(&wl, 0xBADC0DE + w, n, &t);
    }
    assert_clean(d == STAGED ? "staged randomized" : "randomized", &t);
    cr_assert_geq(t.crash_states, total);
    cr_assert_gt(t.restored_total, 0);
    cr_assert_gt(t.torn_batches_total, 0, "no crash ever tore a store batch");
}

Test(crash, randomized_large)
{
    randomized_large(LIBRARY);
}

Test(crash, staged_randomized_large)
{
    randomized_large(STAGED);
}

/* ---- the simulator must catch a broken protocol ------------------------------------------- */

Test(crash, sabotage_randomized_is_caught)
{
    atomic_store(&atomio__test_skip_dw_durability, 1);
    struct tally t = {0};
    sim_init(root);
    struct wl wl = random_wl(42);
    randomized(&wl, 7, 400, &t);
    report("sabotaged randomized", &t);
    cr_assert_gt(t.torn + t.lost, 0);
}

/* ---- recovery itself crashes --------------------------------------------------------------- */

/*
 * Every crash point of a small workload (two random tear patterns each) is rebooted into a
 * recovery that is recorded; then recovery is crashed at every one of its own ops (three tear
 * patterns each) and the device rebooted once more: every page must still be old or new, and
 * every page durable before the first crash must be new.
 */
Test(crash, exhaustive_crash_during_recovery)
{
    struct wl wl = small_base("crash during recovery");
    build_page_rewritten(&wl, LIBRARY);
    struct tally t = {0};
    sim_init(root);
    struct call calls[MAXSTEPS];
    fresh_device(&wl);
    run_workload(&wl, calls);
    struct sim_log *log = sim_take_log();
    struct sim_replay *rp = sim_replay_new(log);
    uint64_t x = 0x5EED, recoveries_writing = 0;
    for (size_t k = 0; k <= sim_log_len(log); k++) {
        for (int pat = 0; pat < 2; pat++) {
            struct crash_rnd r = {crash_rnd_next(&x) | 1, 128};
            struct sim_image img;
            sim_replay_image(rp, k, crash_keep_random, &r, &img);
            t.crash_states++;
            sim_install(&img);
            int err;
            atomio_ctx *ctx = ctx_open_on_sim(&wl, 0, &err);
            cr_assert(ctx, "recovery after crash at op %zu: %s", k, atomio_strerror(err));
            atomio_ctx_close(ctx);
            struct sim_log *log2 = sim_take_log();
            size_t n2 = sim_log_len(log2);
            for (size_t i = 0; i < n2; i++)
                recoveries_writing += sim_log_op(log2, i)->kind == SIM_WRITE;
            struct sim_replay *rp2 = sim_replay_new(log2);
            for (size_t j = 0; j <= n2; j++) {
                for (int pat2 = 0; pat2 < 3; pat2++) {
                    struct crash_rnd r2 = {crash_rnd_next(&x) | 1, pat2 == 0 ? 20 : 236};
                    struct sim_image img2;
                    sim_replay_image(rp2, j, crash_keep_random, &r2, &img2);
                    t.crash_states++;
                    reboot_and_check(&wl, calls, log2, k, &img2, false, &t);
                    sim_image_free(&img2);
                }
            }
            sim_replay_free(rp2);
            sim_log_free(log2);
            sim_image_free(&img);
        }
    }
    sim_replay_free(rp);
    sim_log_free(log);
    assert_clean(wl.name, &t);
    cr_assert_gt(recoveries_writing, 0, "no recovery ever wrote: nothing was crashed");
    cr_assert_gt(t.restored_total, 0, "no rebooted recovery ever restored a page");
}
