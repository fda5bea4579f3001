/* SPDX-License-Identifier: MIT */
/*
 * store/batch.c -- the doublewrite protocol for a batch of pages of any files and page sizes:
 *   reserve a record in the ring (its LSN orders it against every copy of every process) ->
 *   ONE sequential write of the record -> group commit: a store fdatasync begun after the
 *   write completed (shared with every record written meanwhile) -> every in-place write in
 *   flight together through ctx->submit -> then either fdatasync each touched data file and
 *   release the record (ATOMIO_DOUBLEWRITE_SYNC_BATCH), or leave the data files' durability
 *   to the engine's syncs, which release it (ATOMIO_DOUBLEWRITE_DEFERRED).
 * A batch larger than a record is split into several runs of the protocol. A record whose
 * in-place writes failed is held (never released) until recovery.
 *
 * One run is a state machine of steps (atomio__dw_run_*, store/store.h): run_batch() below
 * drives it through ctx->submit for atomio_write_batch(), and the staged API (byor.c) lets an
 * engine drive the same steps from its own io_uring, so both keep the same invariants.
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

/* Where the record starts in its buffer: the header and table end where the pages begin. */
static uint8_t *
rec_base(const struct atomio_dw_run *r)
{
    return r->rec->buf + r->rec->hdr_room - atomio__dw_table_bytes(r->cnt);
}

/*
 * direct_ok() -- whether slot bytes at src may be written as they are, by the store write and
 * by the in-place write: the run may (zero_copy), and the address suits both an O_DIRECT
 * store (512-byte records) and the O_DIRECT data file.
 */
static bool
direct_ok(const struct atomio_dw_run *r, const atomio_file *f, const uint8_t *src)
{
    uint32_t align = f->mem_align > ATOMIO_DW_GRANULE ? f->mem_align : ATOMIO_DW_GRANULE;
    return r->zero_copy && (uintptr_t)src % align == 0;
}

/* The kernel's limit on iovecs in one write (UIO_MAXIOV); a bigger batch is copied. */
#define STORE_IOV_MAX 1024u

/* push() -- append [p, p + len) to the store write's iovecs, joining it to the last one when
 * the two are adjacent in memory (record-buffer stretches are). iov[0], the header and slot
 * table, stays alone: a split store write issues it separately (store_write()). */
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
 * layout_batch() -- lay the record out: header and slot table (padded to 512 bytes), then the
 * pages, biggest first, so every page starts 512-aligned in the record and, in memory, at
 * min(its size, 4 KiB) alignment (the buffer puts the pages on a 4 KiB boundary). A page is
 * copied into its place in the buffer, or, in a zero_copy run, left where the caller has it
 * and written from there by a vectored store write (the layout on disk is the same).
 * Afterwards r->src[k] is where slot k's bytes are: the in-place writes come from there too,
 * so store copy and in-place page are the same bytes the CRC covers. Sets r->rec->len.
 */
static void
layout_batch(struct atomio_dw_run *r)
{
    const uint8_t **src = r->src;
    uint64_t tb = atomio__dw_table_bytes(r->cnt);
    uint8_t *base = rec_base(r);
    uint64_t table_end = ATOMIO_DW_REC_HDR_LEN + (uint64_t)r->cnt * ATOMIO_DW_SLOT_LEN;
    memset(base + table_end, 0, (size_t)(tb - table_end));
    bool vec = r->zero_copy && r->iov && r->cnt + 2 <= STORE_IOV_MAX;
    bool any_direct = false;
    r->iovcnt = 0;
    if (vec)
        push(r, base, (size_t)tb);
    uint64_t off = tb;
    for (uint32_t k = 0; k < r->cnt; k++) {
        const struct atomio_dw_item *it = &r->items[r->idx[k]];
        uint32_t ps = it->file->page_size;
        const uint8_t *data = base + off;
        if (vec && direct_ok(r, it->file, src[k])) {
            data = src[k];
            any_direct = true;
        } else if (data != src[k]) {
            memcpy(base + off, src[k], ps);
        }
        if (vec)
            push(r, data, ps);
        src[k] = data;
        r->slot_off[k] = (uint32_t)off;
        off += ps;
    }
    if (!any_direct)
        r->iovcnt = 0; /* every page was copied: the plain write of the record buffer */
    r->rec->len = off; /* page sizes are multiples of 512: the record ends on a granule */
}

/* seal_batch() -- the slot records (with each page's CRC32C) and the record header. */
static void
seal_batch(struct atomio_dw_run *r)
{
    struct atomio_store *st = r->ctx->store;
    uint8_t *base = rec_base(r);
    for (uint32_t k = 0; k < r->cnt; k++) {
        const struct atomio_dw_item *it = &r->items[r->idx[k]];
        uint32_t ps = it->file->page_size;
        struct atomio_dw_slot s = {
            .file_id = it->file->file_id,
            .page_no = it->page_no,
            .offset = r->slot_off[k],
            .page_size = ps,
            .crc = atomio__crc32c(0, r->src[k], ps),
            .index = k,
        };
        atomio__dw_slot_encode(base, &s);
    }
    struct atomio_dw_batch_hdr b = {
        .lsn = r->rec->lsn, .count = r->cnt, .byte_len = r->rec->len, .ring_size = st->g.ring_size};
    atomio__dw_batch_hdr_encode(base, &b, st->g.uuid);
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
                             .buf = rec_base(r),
                             .len = (uint32_t)r->rec->len,
                             .off = atomio__dw_ring_pos(&st->g, r->rec->lsn),
                             .iov = r->iovcnt ? r->iov : NULL,
                             .iovcnt = r->iovcnt};
}

int
atomio__dw_run_store_written(struct atomio_dw_run *r, ssize_t res)
{
    bool ok = res >= 0 && (uint64_t)res == r->rec->len;
    atomio__store_written(r->ctx, r->rec, ok);
    if (!ok) {
        /* A store that cannot take a write is not trusted with the next one either. */
        atomic_store(&r->ctx->store->failed, true);
        return res < 0 ? (int)res : ATOMIO_E_STORE_FAILED;
    }
    ATOMIO_COUNT(&r->ctx->stats, bytes_doublewrite, r->rec->len);
    return 0;
}

/*
 * store_write() -- the sequential write of the record, then group commit. Returns 0 or the
 * error every item of the batch gets (then no in-place write has been issued).
 *
 * A run whose slots are not sealed yet (split) writes the record as two writes into the same
 * contiguous range, both complete before the fdatasync: the pages first, and the header and
 * slot table once seal_batch() has checksummed the pages, which it does while the pages are
 * in flight when the submitter can overlap. A crash before the fdatasync may keep any part of
 * either; the CRCs reject what is torn or stale, as for one write, and the format is the same.
 */
static int
store_write(struct atomio_dw_run *r, bool split)
{
    atomio_ctx *ctx = r->ctx;
    struct atomio_io io[2];
    atomio__dw_run_store_io(r, &io[0]);
    size_t nio = 1;
    if (split) {
        uint64_t tb = atomio__dw_table_bytes(r->cnt);
        io[1] = io[0];
        io[1].buf = rec_base(r);
        io[1].len = (uint32_t)tb;
        io[1].iov = NULL;
        io[1].iovcnt = 0;
        io[0].off += tb; /* the pages */
        io[0].len -= (uint32_t)tb;
        if (io[0].iovcnt) {
            io[0].iov++;
            io[0].iovcnt--;
        } else {
            io[0].buf = rec_base(r) + tb;
        }
        nio = 2;
    }
    int e;
    if (!split) {
        e = ctx->submit->submit(ctx, io, 1);
    } else if (ctx->submit->submit_overlap) {
        e = ctx->submit->submit_overlap(ctx, io, 2, 1, seal_cb, r);
    } else {
        e = ctx->submit->submit(ctx, io, 1);
        seal_batch(r);
        io[1].res = 0;
        if (e == 0 && io[0].res == (ssize_t)io[0].len)
            e = ctx->submit->submit(ctx, &io[1], 1);
    }
    ssize_t res = 0;
    for (size_t i = 0; i < nio; i++) {
        if (e == 0 && io[i].res < 0)
            e = (int)io[i].res;
        res += io[i].res;
    }
    int w = atomio__dw_run_store_written(r, e < 0 ? e : res);
    if (w < 0)
        return w;
    return atomio__store_durable(ctx, r->rec);
}

/*
 * split_store() -- whether run_batch() writes the record as pages + header (store_write()):
 * where the submitter overlaps the checksums with the page transfer. Tests also ask for it
 * on the pwritev2 submitter, so the crash simulator sees the two writes.
 */
static bool
split_store(atomio_ctx *ctx, const struct atomio_dw_run *r)
{
    if (atomio__dw_table_bytes(r->cnt) >= r->rec->len)
        return false; /* nothing behind the table */
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_split))
        return true;
#endif
    return ctx->submit->submit_overlap != NULL;
}

int
atomio__dw_run_abandon(struct atomio_dw_run *r, bool written)
{
    int e = 0;
    /* None of its pages reached their files. A record that may be in the store is voided
     * first (its header zeroed, durably), or recovery could bring back pages the caller gave
     * up; if even that fails the store is failed and takes nothing more. */
    if (written && atomio__store_void(r->ctx, r->rec) < 0) {
        atomic_store(&r->ctx->store->failed, true);
        e = ATOMIO_E_STORE_FAILED;
    }
    atomio__store_rec_end(r->ctx, r->rec, ATOMIO_REC_RELEASE);
    atomio__store_rec_put(r->ctx, r->rec);
    r->rec = NULL;
    return e;
}

/* distinct_files() -- the files of the run, each once. */
static void
distinct_files(struct atomio_dw_run *r)
{
    r->nfiles = 0;
    for (uint32_t k = 0; k < r->cnt; k++) {
        atomio_file *f = r->items[r->idx[k]].file;
        uint32_t j = 0;
        while (j < r->nfiles && r->files[j] != f)
            j++;
        if (j == r->nfiles)
            r->files[r->nfiles++] = f;
    }
}

/* begin_unsealed() -- atomio__dw_run_begin() without seal_batch(). */
static int
begin_unsealed(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait)
{
    r->ctx = ctx;
    r->t0 = atomio__now_ns();
    if (!in_size_order(r))
        qsort_r(r->idx, r->cnt, sizeof(*r->idx), cmp_size_desc, r->items);
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < r->cnt; k++) {
        r->src[k] = r->items[r->idx[k]].page;
        bytes += r->items[r->idx[k]].file->page_size;
    }
    distinct_files(r);
    r->rec = atomio__store_rec_get(ctx, r->cnt, bytes);
    if (!r->rec)
        return -ENOMEM;
    r->rec->len = atomio__dw_table_bytes(r->cnt) + bytes;
    int err = atomio__store_reserve(ctx, r->rec, r->files, r->nfiles, wait);
    if (err < 0) {
        atomio__store_rec_put(ctx, r->rec);
        r->rec = NULL;
        return err;
    }
    layout_batch(r);
    return 0;
}

int
atomio__dw_run_begin(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait)
{
    int err = begin_unsealed(ctx, r, wait);
    if (err == 0)
        seal_batch(r);
    return err;
}

void
atomio__dw_run_inplace_ios(struct atomio_dw_run *r)
{
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
    }
}

int
atomio__dw_run_inplace_done(struct atomio_dw_run *r, uint32_t k)
{
    struct atomio_dw_item *it = &r->items[r->idx[k]];
    it->result = atomio__path_doublewrite.complete(r->ios[k].file, &r->ios[k]).result;
    return it->result;
}

/* sync_now() -- whether this run syncs its data files itself before returning. */
static bool
sync_now(const struct atomio_dw_run *r)
{
    atomio_ctx *ctx = r->ctx;
    if (ctx->opts.doublewrite_mode != ATOMIO_DOUBLEWRITE_DEFERRED || r->sync_requested)
        return true;
    for (uint32_t j = 0; j < r->nfiles; j++)
        if (r->files[j]->fflags & ATOMIO_FILE_DSYNC)
            return true; /* every write of such a file is durable when it returns */
    return !atomio__store_rec_tracked(ctx, r->rec); /* nobody else could release it */
}

size_t
atomio__dw_run_finish(struct atomio_dw_run *r)
{
    atomio_ctx *ctx = r->ctx;
    struct atomio_store *st = ctx->store;
    size_t ok = 0;
    bool now = sync_now(r);

    /* Durability of every file that took a page; a failure fails the file (sticky). */
    for (uint32_t j = 0; j < r->nfiles && now; j++) {
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
    for (uint32_t j = 0; j < r->nfiles; j++) {
        if (file_failed(r->files[j])) {
            any_failed = true;
            (void)atomio__store_hold_id(st, r->files[j]->file_id);
        }
    }
    /* A failed file's pages may be torn and the copy is the only good one: keep the record
     * until recovery. */
    atomio__store_rec_end(ctx, r->rec,
                          any_failed ? ATOMIO_REC_HOLD
                          : now      ? ATOMIO_REC_RELEASE
                                     : ATOMIO_REC_AWAIT_SYNC);
    atomio__store_rec_put(ctx, r->rec);
    r->rec = NULL;

    uint64_t lat = atomio__now_ns() - r->t0;
    ATOMIO_COUNT(&ctx->stats, batches, 1);
    for (uint32_t j = 0; j < r->nfiles; j++) {
        atomio_file *f = r->files[j];
        ATOMIO_COUNT(&f->stats, batches, 1);
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
 * run_batch() -- one run of the protocol for r->cnt items that fit one record, driven
 * through ctx->submit. Sets each item's result; returns how many succeeded.
 */
static size_t
run_batch(atomio_ctx *ctx, struct atomio_dw_run *r, uint32_t wflags)
{
    r->sync_requested = (wflags & ATOMIO_WRITE_DSYNC) != 0;
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
        (void)atomio__dw_run_abandon(r, true); /* a failure fails the store: seen next call */
        return 0;
    }
    atomio__dw_run_inplace_ios(r);
    err = ctx->submit->submit(ctx, r->ios, r->cnt);
    if (err < 0) {
        for (uint32_t k = 0; k < r->cnt; k++)
            r->items[r->idx[k]].result = err;
        (void)atomio__dw_run_abandon(r, true);
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
    int r = atomio__store_check(ctx);
    if (r < 0)
        return r;
    if (!atomio__store_fits(ctx, it->file->page_size))
        return ATOMIO_E_STORE_FULL;
    if (atomio__store_id_held(st, it->file->file_id))
        return ATOMIO_E_FAILED;
    return 0;
}

bool
atomio__dw_fits(const struct atomio_store *st, uint32_t count, uint64_t page_bytes)
{
    return count <= st->slots_max && page_bytes <= st->rec_bytes_max;
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
        /* Live copies from before the last crash: writing new ones first could later let
         * one of those old copies win over a newer page. Recovery must run first. */
        for (size_t i = 0; i < n; i++)
            items[i].result = ATOMIO_E_SEQUENCE;
        return 0;
    }

    if (atomio__stage_on(ctx)) {
        /* Write-behind: staged in call order (a later copy of a page supersedes an earlier
         * one); a round of group commit writes them to the store and in place later. */
        for (size_t i = 0; i < n; i++)
            items[i].result = atomio__dw_precheck(ctx, &items[i]);
        size_t staged = atomio__stage_write(ctx, items, n, wflags);
        return (int)(staged > INT32_MAX ? INT32_MAX : staged);
    }

    size_t *order = malloc(n * sizeof(*order));
    size_t *dup_of = malloc(n * sizeof(*dup_of));
    size_t cap = st->slots_max < n ? st->slots_max : n;
    size_t *idx = malloc(cap * sizeof(*idx));
    uint32_t *slot_off = malloc(cap * sizeof(*slot_off));
    struct atomio_io *ios = malloc(cap * sizeof(*ios));
    atomio_file **files = malloc(cap * sizeof(*files));
    const uint8_t **src = malloc(cap * sizeof(*src));
    struct iovec *iov = zero_copy ? malloc((cap + 2) * sizeof(*iov)) : NULL;
    if (!order || !dup_of || !idx || !slot_off || !ios || !files || !src || (zero_copy && !iov)) {
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
        while (i < m && r.cnt < st->slots_max) {
            uint32_t ps = items[order[i]].file->page_size;
            if (r.cnt > 0 && bytes + ps > st->rec_bytes_max)
                break;
            bytes += ps;
            idx[r.cnt++] = order[i++];
        }
        done += run_batch(ctx, &r, wflags);
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
