/* SPDX-License-Identifier: MIT */
/*
 * store/batch.c -- the doublewrite protocol for a batch of pages of any files and page sizes:
 *   fill the slots of a claimed segment -> ONE sequential write of the whole batch -> fdatasync
 *   the store (never skipped) -> every in-place write in flight together through ctx->submit
 *   -> fdatasync each touched data file -> retire the batch header -> the segment is free.
 * A batch larger than a segment is split into several runs of the protocol. Pages whose file
 * failed in place are copied into a held batch that only recovery releases (store/store.h).
 *
 * One run is a state machine of steps (atomio__dw_run_*, store/store.h): run_batch() below drives
 * it through ctx->submit for atomio_write_batch(), and the staged API (byor.c) lets an engine
 * drive the same steps from its own io_uring, so both keep the same invariants.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
cmp_size_desc(const void *a, const void *b, void *arg)
{
    const struct atomio_dw_item *items = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    uint32_t pa = items[ia].file->page_size, pb = items[ib].file->page_size;
    if (pa != pb)
        return pa > pb ? -1 : 1;
    return ia < ib ? -1 : ia > ib; /* stable: keep the caller's order within a size */
}

/*
 * in_size_order() -- whether r->idx is already what the cmp_size_desc sort would make of it
 * (the usual batch: one page size, indexes ascending), so that per-batch sort can be skipped.
 */
static bool
in_size_order(const struct atomio_dw_run *r)
{
    for (uint32_t k = 1; k < r->cnt; k++)
        if (cmp_size_desc(&r->idx[k - 1], &r->idx[k], r->items) > 0)
            return false;
    return true;
}

static bool
file_failed(const atomio_file *f)
{
    return atomic_load(&f->state) == ATOMIO_STATE_FAILED;
}

/*
 * direct_ok() -- whether slot bytes at src may be written as they are, by the store write and
 * by the in-place write: the run may (zero_copy), and the page is whole 4 KiB blocks at an
 * address both an O_DIRECT store and the O_DIRECT data file accept.
 */
static bool
direct_ok(const struct atomio_dw_run *r, const atomio_file *f, const uint8_t *src)
{
    uint32_t align = f->mem_align > ATOMIO_DW_ALIGN ? f->mem_align : ATOMIO_DW_ALIGN;
    return r->zero_copy && f->page_size % ATOMIO_DW_ALIGN == 0 && (uintptr_t)src % align == 0;
}

/* The kernel's limit on iovecs in one write (UIO_MAXIOV); a bigger batch is copied. */
#define STORE_IOV_MAX 1024u

/* push() -- append [p, p + len) to the store write's iovecs, joining it to the last one when
 * the two are adjacent in memory (segment-buffer stretches are). iov[0], the header and slot
 * table, stays alone: an overlapped store write issues it separately (store_write()). */
static void
push(struct atomio_dw_run *r, const uint8_t *p, size_t len)
{
    if (r->iovcnt > 1) {
        struct iovec *last = &r->iov[r->iovcnt - 1];
        if ((const uint8_t *)last->iov_base + last->iov_len == p) {
            last->iov_len += len;
            return;
        }
    }
    r->iov[r->iovcnt++] = (struct iovec){.iov_base = (void *)(uintptr_t)p, .iov_len = len};
}

/*
 * layout_batch() -- lay the batch out behind the slot table, biggest page first: the table
 * region is a multiple of 4 KiB and page sizes are powers of two, so every page starts aligned
 * to min(its size, 4 KiB). A page is copied into its place in the segment buffer, or, in a
 * zero_copy run, left where the caller has it and written from there by a vectored store write
 * (the layout on disk is the same). Afterwards r->src[k] is where slot k's bytes are: the
 * in-place writes come from there too, so store copy and in-place page are the same bytes the
 * CRC covers. Sets r->len, the padded length of the store write. The slots and the header are
 * seal_batch()'s.
 */
static void
layout_batch(struct atomio_dw_run *r)
{
    const uint8_t **src = r->src;
    uint8_t *buf = r->seg->buf;
    uint64_t tb = atomio__dw_table_bytes(r->cnt);
    uint64_t table_end = ATOMIO_DW_BATCH_HDR_LEN + (uint64_t)r->cnt * ATOMIO_DW_SLOT_LEN;
    memset(buf + table_end, 0, (size_t)(tb - table_end));
    bool vec = r->zero_copy && r->iov && r->cnt + 2 <= STORE_IOV_MAX;
    bool any_direct = false;
    r->iovcnt = 0;
    if (vec)
        push(r, buf, (size_t)tb);
    uint64_t off = tb;
    for (uint32_t k = 0; k < r->cnt; k++) {
        const struct atomio_dw_item *it = &r->items[r->idx[k]];
        uint32_t ps = it->file->page_size;
        const uint8_t *data = buf + off;
        if (vec && direct_ok(r, it->file, src[k])) {
            data = src[k];
            any_direct = true;
        } else if (data != src[k]) {
            memcpy(buf + off, src[k], ps);
        }
        if (vec)
            push(r, data, ps);
        src[k] = data;
        r->slot_off[k] = (uint32_t)off;
        off += ps;
    }
    uint64_t padded = (off + ATOMIO_DW_ALIGN - 1) / ATOMIO_DW_ALIGN * ATOMIO_DW_ALIGN;
    memset(buf + off, 0, (size_t)(padded - off));
    if (vec && padded > off)
        push(r, buf + off, (size_t)(padded - off));
    if (!any_direct)
        r->iovcnt = 0; /* every page was copied: the plain write of the segment buffer */
    r->len = padded;
}

/* seal_batch() -- the slot records (with each page's CRC32C) and the batch header. */
static void
seal_batch(struct atomio_dw_run *r)
{
    struct atomio_store *st = r->ctx->store;
    uint8_t *buf = r->seg->buf;
    uint64_t end = atomio__dw_table_bytes(r->cnt);
    for (uint32_t k = 0; k < r->cnt; k++) {
        const struct atomio_dw_item *it = &r->items[r->idx[k]];
        uint32_t ps = it->file->page_size;
        struct atomio_dw_slot s = {
            .file_id = it->file->file_id,
            .page_no = it->page_no,
            .seq = r->seq,
            .offset = r->slot_off[k],
            .page_size = ps,
            .crc = atomio__crc32c(0, r->src[k], ps),
            .index = k,
        };
        atomio__dw_slot_encode(buf, &s);
        end = (uint64_t)r->slot_off[k] + ps;
    }
    struct atomio_dw_batch_hdr b = {.seq = r->seq, .count = r->cnt, .byte_len = end};
    atomio__dw_batch_hdr_encode(buf, &b, st->g.uuid);
}

static void
seal_cb(void *arg)
{
    seal_batch(arg);
}

void
atomio__dw_run_store_io(const struct atomio_dw_run *r, struct atomio_io *io)
{
    struct atomio_store *st = r->ctx->store;
    *io = (struct atomio_io){.fd = st->fd,
                             .buf = r->seg->buf,
                             .len = (uint32_t)r->len,
                             .off = r->seg->off,
                             .iov = r->iovcnt ? r->iov : NULL,
                             .iovcnt = r->iovcnt};
}

int
atomio__dw_run_store_written(struct atomio_dw_run *r, ssize_t res)
{
    if (res < 0)
        return (int)res;
    if ((uint64_t)res != r->len)
        return ATOMIO_E_STORE;
    ATOMIO_COUNT(&r->ctx->stats, bytes_doublewrite, r->len);
    return 0;
}

/*
 * store_durable() -- the durability step, done here: fdatasync the store (never skipped; the
 * staged API issues the same fdatasync as an io_uring fsync through
 * atomio__store_sync_begin()/_end()).
 */
static int
store_durable(atomio_ctx *ctx)
{
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_skip_dw_durability))
        return 0;
#endif
    return atomio__store_sync(ctx);
}

/*
 * store_write() -- the sequential write of the batch and its durability, with the retires of
 * earlier batches that are pending (store/store.c, "deferred retires") in the same submission.
 * Returns 0 or the error every item of the batch gets (then no in-place write has been
 * issued).
 *
 * A run whose slots are not sealed yet (split) writes the batch as two writes into the same
 * contiguous range, both complete before the fdatasync: the pages first, and the header and
 * slot table once seal_batch() has checksummed the pages, which it does while the pages are
 * in flight when the submitter can overlap. A crash before the fdatasync may keep any part of
 * either; the CRCs reject what is torn or stale, as for one write, and the format is the same.
 */
static int
store_write(struct atomio_dw_run *r, bool split)
{
    atomio_ctx *ctx = r->ctx;
    struct atomio_store *st = ctx->store;
    struct atomio_retire_take take;
    uint64_t snap;
    struct atomio_dw_seg *taken = atomio__store_take_retires(st, &take, &snap);
    size_t nret = 0;
    for (struct atomio_dw_seg *t = taken; t; t = t->next_free)
        nret++;
    struct atomio_io small[6];
    struct atomio_io *ios = nret + 2 <= 6 ? small : malloc((nret + 2) * sizeof(*ios));
    if (!ios) {
        /* Write them one by one instead; the batch itself needs no memory for this. */
        (void)atomio__store_write_retires(st, &take, taken); /* a failure fails the store */
        taken = NULL;
        nret = 0;
        ios = small;
    }
    size_t k = 0;
    for (struct atomio_dw_seg *t = taken; t; t = t->next_free)
        atomio__store_retire_io(st, t, &ios[k++]);
    struct atomio_io *io = ios + nret; /* io[0]: the batch, or its pages; io[1]: its header */
    atomio__dw_run_store_io(r, &io[0]);
    size_t nio = 1;
    if (split) {
        uint64_t tb = atomio__dw_table_bytes(r->cnt);
        io[1] = io[0];
        io[1].buf = r->seg->buf;
        io[1].len = (uint32_t)tb;
        io[1].iov = NULL;
        io[1].iovcnt = 0;
        io[0].off += tb; /* the pages and the tail padding */
        io[0].len -= (uint32_t)tb;
        if (io[0].iovcnt) {
            io[0].iov++;
            io[0].iovcnt--;
        } else {
            io[0].buf = r->seg->buf + tb;
        }
        nio = 2;
    }
    int e;
    if (!split) {
        e = ctx->submit->submit(ctx, ios, nret + 1);
    } else if (ctx->submit->submit_overlap) {
        e = ctx->submit->submit_overlap(ctx, ios, nret + 2, nret + 1, seal_cb, r);
    } else {
        e = ctx->submit->submit(ctx, ios, nret + 1);
        seal_batch(r);
        io[1].res = 0;
        if (e == 0 && io[0].res == (ssize_t)io[0].len)
            e = ctx->submit->submit(ctx, &io[1], 1);
    }
    if (taken) {
        bool ok = e == 0;
        for (size_t i = 0; i < nret && ok; i++)
            ok = ios[i].res == (ssize_t)ios[i].len;
        atomio__store_took_retires(st, &take, taken, ok);
    }
    ssize_t res = 0;
    for (size_t i = 0; i < nio && e == 0; i++) {
        if (io[i].res < 0)
            e = (int)io[i].res;
        res += io[i].res;
    }
    if (ios != small)
        free(ios);
    if (e == 0)
        e = atomio__dw_run_store_written(r, res);
    if (e == 0) {
        atomio__store_wait_retires(st, snap);
        e = store_durable(ctx);
    }
    return e;
}

/*
 * split_store() -- whether run_batch() writes the batch as pages + header (store_write()):
 * where the submitter overlaps the checksums with the page transfer. Tests also ask for it
 * on the pwritev2 submitter, so the crash simulator sees the two writes.
 */
static bool
split_store(atomio_ctx *ctx, const struct atomio_dw_run *r)
{
    if (atomio__dw_table_bytes(r->cnt) >= r->len)
        return false; /* nothing behind the table */
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_split))
        return true;
#endif
    return ctx->submit->submit_overlap != NULL;
}

/*
 * abandon() -- the batch reached the store but none of its pages reached its file: retire it
 * durably, or a later retire of a newer copy of one of its pages would let this one win at
 * recovery. If that fails the store is failed and takes no more batches.
 */
static int
abandon(atomio_ctx *ctx, struct atomio_dw_seg *seg)
{
    struct atomio_store *st = ctx->store;
    int e = atomio__store_retire(st, seg);
    if (e == 0)
        e = atomio__store_sync(ctx);
    if (e < 0)
        atomic_store(&st->failed, true);
    atomio__store_release(ctx, seg, false);
    return e;
}

int
atomio__dw_run_abandon(struct atomio_dw_run *r)
{
    int e = abandon(r->ctx, r->seg);
    r->seg = NULL;
    return e;
}

void
atomio__dw_run_release_unwritten(struct atomio_dw_run *r)
{
    atomio__store_release(r->ctx, r->seg, false);
    r->seg = NULL;
}

/*
 * rescue() -- some files failed in place (short write, EIO, failed fdatasync): their pages may
 * be torn and the store copy is the only good one until recovery. Copy just those slots into
 * a new batch that stays valid (held) until recovery, then retire the original as usual, so
 * pages of healthy files are not pinned. Their file ids are refused until recovery. Falls
 * back to holding the whole original batch (and all its files) if no segment is available.
 */
static void
rescue(atomio_ctx *ctx, struct atomio_dw_seg *seg, struct atomio_dw_run *r)
{
    struct atomio_store *st = ctx->store;
    for (uint32_t j = 0; j < r->nfiles; j++)
        if (file_failed(r->files[j]))
            (void)atomio__store_hold_id(st, r->files[j]->file_id);

    size_t *idx2 = malloc(r->cnt * sizeof(*idx2));
    const uint8_t **src2 = malloc(r->cnt * sizeof(*src2));
    uint32_t *off2 = malloc(r->cnt * sizeof(*off2));
    /* Never wait here: this run still holds its own segment, so with one segment (or all
     * others busy with batches this thread must finish first, staged) the wait could never
     * end. Without a free segment the whole batch is held instead. */
    struct atomio_dw_seg *seg2 =
        idx2 && src2 && off2 ? atomio__store_claim(ctx, false, NULL) : NULL;
    if (seg2) {
        struct atomio_dw_run r2 = *r;
        r2.idx = idx2;
        r2.src = src2;
        r2.slot_off = off2;
        r2.cnt = 0;
        r2.seg = seg2;
        r2.zero_copy = false; /* the rescue batch keeps its own copies: it outlives the call */
        r2.iov = NULL;
        for (uint32_t k = 0; k < r->cnt; k++) {
            if (file_failed(r->items[r->idx[k]].file)) {
                src2[r2.cnt] = r->src[k];
                idx2[r2.cnt++] = r->idx[k];
            }
        }
        r2.seq = atomic_fetch_add(&st->next_seq, 1);
        layout_batch(&r2);
        seal_batch(&r2);
        if (store_write(&r2, false) == 0) {
            atomio__store_release(ctx, seg2, true);
            atomio__store_retire_later(ctx, seg);
            free(idx2), free(src2), free(off2);
            return;
        }
        abandon(ctx, seg2);
    }
    free(idx2), free(src2), free(off2);
    for (uint32_t j = 0; j < r->nfiles; j++)
        (void)atomio__store_hold_id(st, r->files[j]->file_id);
    atomio__store_release(ctx, seg, true);
}

/* begin_unsealed() -- atomio__dw_run_begin() without seal_batch(). */
static int
begin_unsealed(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait)
{
    struct atomio_store *st = ctx->store;
    r->ctx = ctx;
    r->t0 = atomio__now_ns();
    int err = 0;
    r->seg = atomio__store_claim(ctx, wait, &err);
    if (!r->seg)
        return err;
    if (!in_size_order(r))
        qsort_r(r->idx, r->cnt, sizeof(*r->idx), cmp_size_desc, r->items);
    for (uint32_t k = 0; k < r->cnt; k++)
        r->src[k] = r->items[r->idx[k]].page;
    r->seq = atomic_fetch_add(&st->next_seq, 1);
    layout_batch(r);
    return 0;
}

int
atomio__dw_run_begin(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait)
{
    /* The staged store write is one SQE on the engine's ring: pending retires are written
     * here instead, before it, so its fdatasync covers them as store_write()'s does. */
    int err = atomio__store_flush_retires(ctx);
    if (err < 0) {
        r->seg = NULL;
        return ATOMIO_E_STORE;
    }
    err = begin_unsealed(ctx, r, wait);
    if (err == 0)
        seal_batch(r);
    return err;
}

void
atomio__dw_run_inplace_ios(struct atomio_dw_run *r)
{
    r->nfiles = 0;
    for (uint32_t k = 0; k < r->cnt; k++) {
        atomio_file *f = r->items[r->idx[k]].file;
        r->ios[k] = (struct atomio_io){
            .fd = f->fd,
            .rwflags = 0,
            .buf = r->src[k], /* the bytes the store copy and its CRC hold */
            .len = f->page_size,
            .off = r->items[r->idx[k]].page_no << f->page_shift,
            .file = f,
            .index = k,
            .path = ATOMIO_PATH_DOUBLEWRITE,
        };
        uint32_t j = 0;
        while (j < r->nfiles && r->files[j] != f)
            j++;
        if (j == r->nfiles)
            r->files[r->nfiles++] = f;
    }
}

int
atomio__dw_run_inplace_done(struct atomio_dw_run *r, uint32_t k)
{
    struct atomio_dw_item *it = &r->items[r->idx[k]];
    it->result = atomio__path_doublewrite.complete(r->ios[k].file, &r->ios[k]);
    return it->result;
}

size_t
atomio__dw_run_finish(struct atomio_dw_run *r)
{
    atomio_ctx *ctx = r->ctx;
    struct atomio_dw_seg *seg = r->seg;
    size_t ok = 0;

    /* Durability of every file that took a page; a failure fails the file (sticky). */
    for (uint32_t j = 0; j < r->nfiles; j++) {
        atomio_file *f = r->files[j];
        bool wrote = false;
        for (uint32_t k = 0; k < r->cnt && !wrote; k++)
            wrote = r->ios[k].file == f && r->items[r->idx[k]].result == 0;
        if (!wrote || file_failed(f))
            continue;
        int sr = atomio__file_datasync(f);
        if (sr < 0)
            for (uint32_t k = 0; k < r->cnt; k++)
                if (r->ios[k].file == f && r->items[r->idx[k]].result == 0)
                    r->items[r->idx[k]].result = sr;
    }

    bool any_failed = false;
    for (uint32_t j = 0; j < r->nfiles; j++)
        any_failed |= file_failed(r->files[j]);
    if (any_failed) {
        rescue(ctx, seg, r);
    } else {
        atomio__store_retire_later(ctx, seg);
    }
    r->seg = NULL;

    uint64_t lat = atomio__now_ns() - r->t0;
    ATOMIO_COUNT(&ctx->stats, batches, 1);
    for (uint32_t j = 0; j < r->nfiles; j++) {
        atomio_file *f = r->files[j];
        ATOMIO_COUNT(&f->stats, batches, 1);
        ATOMIO_COUNT(&f->stats, syncs, 1); /* its share: the store fdatasync */
        /* One count per file and batch, not per page: the pages share the call's latency. */
        uint64_t n = 0;
        for (uint32_t k = 0; k < r->cnt; k++)
            n += r->ios[k].file == f && r->items[r->idx[k]].result == 0;
        if (n == 0)
            continue;
        ok += n;
        /* count_pages adds the pages' in-place bytes (bytes_data) on the file and the ctx */
        ATOMIO_COUNT(&f->stats, bytes_doublewrite, n * f->page_size);
        atomio__count_pages(f, ATOMIO_PATH_DOUBLEWRITE, lat, n);
    }
    return ok;
}

/*
 * run_batch() -- one run of the protocol for r->cnt items that fit one segment, driven
 * through ctx->submit. Sets each item's result; returns how many succeeded.
 */
static size_t
run_batch(atomio_ctx *ctx, struct atomio_dw_run *r)
{
    int err = begin_unsealed(ctx, r, true);
    if (err < 0) {
        for (uint32_t k = 0; k < r->cnt; k++)
            r->items[r->idx[k]].result = err;
        return 0;
    }
    bool split = split_store(ctx, r);
    if (!split)
        seal_batch(r);
    err = store_write(r, split);
    if (err < 0) {
        for (uint32_t k = 0; k < r->cnt; k++)
            r->items[r->idx[k]].result = err;
        atomio__dw_run_abandon(r);
        return 0;
    }
    atomio__dw_run_inplace_ios(r);
    err = ctx->submit->submit(ctx, r->ios, r->cnt);
    if (err < 0) {
        for (uint32_t k = 0; k < r->cnt; k++)
            r->items[r->idx[k]].result = err;
        atomio__dw_run_abandon(r);
        return 0;
    }
    for (uint32_t k = 0; k < r->cnt; k++)
        atomio__dw_run_inplace_done(r, k);
    return atomio__dw_run_finish(r);
}

/* atomio__dw_precheck() -- 0 if item i may go through the store, else its error. */
int
atomio__dw_precheck(atomio_ctx *ctx, const struct atomio_dw_item *it)
{
    struct atomio_store *st = ctx->store;
    if (!it->file || !it->page)
        return ATOMIO_E_INVAL;
    if (file_failed(it->file))
        return ATOMIO_E_FAILED;
    if (atomic_load(&st->failed))
        return ATOMIO_E_STORE;
    if (atomio__dw_table_bytes(1) + it->file->page_size > st->g.seg_size)
        return ATOMIO_E_STORE_FULL;
    if (atomio__store_id_held(st, it->file->file_id))
        return ATOMIO_E_FAILED;
    return 0;
}

bool
atomio__dw_needs_recovery(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    pthread_mutex_lock(&st->lock);
    bool blocked = st->needs_recovery;
    pthread_mutex_unlock(&st->lock);
    return blocked;
}

/*
 * drop_duplicates() -- the same page twice in one call: both copies would be in flight
 * together with no order between them, so only the last one is written and the earlier ones
 * share its result (dup_of). order[0..m) are item indexes, ascending; returns how many stay,
 * still ascending, or SIZE_MAX without memory. One pass from the end over a small open-
 * addressing table keyed by (file id, page number): a batch of distinct pages, the usual
 * one, costs no sort.
 */
static size_t
drop_duplicates(const struct atomio_dw_item *items, size_t *order, size_t m, size_t *dup_of)
{
    if (m < 2)
        return m;
    size_t cap = 4;
    while (cap < 2 * m)
        cap *= 2;
    size_t *tab = malloc(cap * sizeof(*tab));
    if (!tab)
        return SIZE_MAX;
    for (size_t i = 0; i < cap; i++)
        tab[i] = SIZE_MAX;
    for (size_t k = m; k-- > 0;) {
        const struct atomio_dw_item *it = &items[order[k]];
        uint64_t h = (it->file->file_id * 0x9E3779B97F4A7C15ull) ^ it->page_no;
        h *= 0xBF58476D1CE4E5B9ull;
        size_t slot = (size_t)(h >> 32) & (cap - 1);
        for (;; slot = (slot + 1) & (cap - 1)) {
            size_t j = tab[slot];
            if (j == SIZE_MAX) {
                tab[slot] = order[k];
                break;
            }
            if (items[j].file->file_id == it->file->file_id && items[j].page_no == it->page_no) {
                dup_of[order[k]] = j; /* j is later in the call: the copy that is written */
                order[k] = SIZE_MAX;
                break;
            }
        }
    }
    free(tab);
    size_t w = 0;
    for (size_t k = 0; k < m; k++)
        if (order[k] != SIZE_MAX)
            order[w++] = order[k];
    return w;
}

int
atomio__dw_write(atomio_ctx *ctx, struct atomio_dw_item *items, size_t n, uint32_t wflags)
{
    /* DSYNC is moot: every doublewrite page is durable when the call returns. */
    bool zero_copy = (wflags & ATOMIO_WRITE_STABLE_PAGES) != 0;
    struct atomio_store *st = ctx->store;
    if (n == 0)
        return 0;
    if (!st) {
        for (size_t i = 0; i < n; i++)
            items[i].result = ATOMIO_E_NO_DOUBLEWRITE;
        return 0;
    }
    if (atomio__dw_needs_recovery(ctx)) {
        /* Live batches from before the last crash: writing new ones first could later let
         * one of those old copies win over a newer page. Recovery must run first. */
        for (size_t i = 0; i < n; i++)
            items[i].result = ATOMIO_E_SEQUENCE;
        return 0;
    }

    size_t *order = malloc(n * sizeof(*order));
    size_t *dup_of = malloc(n * sizeof(*dup_of));
    size_t cap = st->g.slots_max < n ? st->g.slots_max : n;
    size_t *idx = malloc(cap * sizeof(*idx));
    uint32_t *slot_off = malloc(cap * sizeof(*slot_off));
    struct atomio_io *ios = malloc(cap * sizeof(*ios));
    atomio_file **files = malloc(cap * sizeof(*files));
    const uint8_t **src = malloc(cap * sizeof(*src));
    struct iovec *iov = zero_copy ? malloc((cap + 2) * sizeof(*iov)) : NULL;
    if (!order || !dup_of || !idx || !slot_off || !ios || !files || !src ||
        (zero_copy && !iov)) {
        for (size_t i = 0; i < n; i++)
            items[i].result = -ENOMEM;
        free(order), free(dup_of), free(idx), free(slot_off), free(ios), free(files);
        free(src), free(iov);
        return 0;
    }

    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        dup_of[i] = i;
        items[i].result = atomio__dw_precheck(ctx, &items[i]);
        if (items[i].result == 0)
            order[m++] = i;
    }
    m = drop_duplicates(items, order, m, dup_of);
    if (m == SIZE_MAX) {
        for (size_t i = 0; i < n; i++)
            items[i].result = -ENOMEM;
        free(order), free(dup_of), free(idx), free(slot_off), free(ios), free(files);
        free(src), free(iov);
        return 0;
    }

    size_t done = 0;
    for (size_t i = 0; i < m;) {
        struct atomio_dw_run r = {.items = items,
                                  .idx = idx,
                                  .slot_off = slot_off,
                                  .ios = ios,
                                  .src = src,
                                  .files = files,
                                  .zero_copy = zero_copy,
                                  .iov = iov};
        uint64_t bytes = 0;
        while (i < m && r.cnt < st->g.slots_max) {
            uint32_t ps = items[order[i]].file->page_size;
            if (atomio__dw_table_bytes(r.cnt + 1) + bytes + ps > st->g.seg_size)
                break;
            bytes += ps;
            idx[r.cnt++] = order[i++];
        }
        done += run_batch(ctx, &r);
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (dup_of[j] != j)
            j = dup_of[j];
        if (j != i) {
            items[i].result = items[j].result;
            done += items[i].result == 0;
        }
    }
    free(order), free(dup_of), free(idx), free(slot_off), free(ios), free(files);
    free(src), free(iov);
    return (int)(done > INT32_MAX ? INT32_MAX : done);
}
