/* SPDX-License-Identifier: MIT */
/*
 * store/recover.c -- reading the ring back: recovery (docs/format.md, "Recovery"), the scan
 * open uses to find live copies, inspection and the operator's reset.
 *
 * Recovery reads the whole ring, trusts only records whose header, table and page CRCs all
 * hold and whose LSN is at or above the durable tail, takes the newest copy of each (file,
 * page), rewrites in-place pages that differ (or that the engine's verify() rejects),
 * fdatasyncs them, and only then moves the durable tail past every record. A crash at any
 * point of it leaves the store as it was, so running it again is harmless. Copies it cannot
 * apply (a file missing, an id the manifest does not know) are kept and named.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the scan ------------------------------------------------------------------------------ */

#define SCAN_CHUNK (4u << 20)
/* Data pages recovery asks the kernel to read ahead of the one it checks. */
#define RECOVER_PREFETCH 256u

/* Called for every record whose header checks out (state VALID or TORN), in ring order. rec
 * holds byte_len bytes when the state is VALID. Non-zero stops the scan. */
typedef int (*scan_fn)(void *arg, uint64_t where, const uint8_t *rec,
                       const struct atomio_dw_batch_hdr *b, enum atomio_dw_state s,
                       const char *why);

/*
 * scan_ring() -- walk the ring granule by granule; a record whose header decodes is read
 * whole and checked; a valid one is skipped over (nothing else can be inside it), anything
 * else is stepped over one granule at a time (a newer record may start inside a torn one).
 */
static int
scan_ring(int fd, const struct atomio_dw_geom *g, scan_fn fn, void *arg)
{
    uint8_t *big = NULL;
    size_t big_cap = 0;
    /* Past the end of the file every granule reads as zero (empty): scan only what the file
     * holds, so a header that claims a far larger ring than the file (inspect and reset read
     * a damaged store as it is) costs no more than the file itself. */
    struct atomio_statx stx;
    int r = atomio__sys.statx(fd, "", AT_EMPTY_PATH, 0x200u /* STATX_SIZE */, &stx);
    if (r < 0)
        return r;
    uint64_t end = stx.size > g->ring_offset ? stx.size - g->ring_offset : 0;
    if (end > g->ring_size)
        end = g->ring_size;
    /* A chunk no larger than the ring: a small store is not read through 4 MiB of zeros. */
    size_t cap = end < SCAN_CHUNK ? (size_t)atomio__dw_round(end, ATOMIO_DW_GRANULE) : SCAN_CHUNK;
    uint8_t *chunk = malloc(cap ? cap : 1);
    if (!chunk)
        return -ENOMEM;
    uint64_t pos = 0;
    uint64_t chunk_at = UINT64_MAX;
    while (r == 0 && pos + ATOMIO_DW_REC_HDR_LEN <= end) {
        if (chunk_at == UINT64_MAX || pos + ATOMIO_DW_REC_HDR_LEN > chunk_at + cap) {
            chunk_at = pos;
            uint64_t n = end - pos < cap ? end - pos : cap;
            if ((r = atomio__pread_full(fd, chunk, (size_t)n, g->ring_offset + pos)) < 0)
                break;
            if (n < cap)
                memset(chunk + n, 0, cap - (size_t)n);
        }
        const uint8_t *h = chunk + (pos - chunk_at);
        struct atomio_dw_batch_hdr b;
        const char *why;
        if (atomio__dw_rec_hdr_decode(h, g, &b, &why) != ATOMIO_DW_VALID) {
            pos += ATOMIO_DW_GRANULE;
            continue;
        }
        if (b.lsn % g->ring_size != pos) {
            /* A record lives at ring offset LSN mod ring size: one found elsewhere is not
             * where its writer put it, and its length was checked against the wrong end. */
            if (fn(arg, g->ring_offset + pos, h, &b, ATOMIO_DW_TORN,
                   "record not at the ring position its LSN names") != 0)
                break;
            pos += ATOMIO_DW_GRANULE;
            continue;
        }
        const uint8_t *rec;
        if (pos + b.byte_len <= chunk_at + cap) {
            rec = h;
        } else {
            if (big_cap < b.byte_len) {
                free(big);
                big_cap = (size_t)b.byte_len;
                big = malloc(big_cap);
                if (!big) {
                    r = -ENOMEM;
                    break;
                }
            }
            if ((r = atomio__pread_full(fd, big, (size_t)b.byte_len, g->ring_offset + pos)) < 0)
                break;
            rec = big;
        }
        enum atomio_dw_state s = atomio__dw_batch_decode(rec, (size_t)b.byte_len, g, &b, &why);
        if (fn(arg, g->ring_offset + pos, rec, &b, s, why) != 0)
            break;
        pos += s == ATOMIO_DW_VALID ? b.byte_len : ATOMIO_DW_GRANULE;
    }
    free(chunk);
    free(big);
    return r;
}

static int
live_cb(void *arg, uint64_t where, const uint8_t *rec, const struct atomio_dw_batch_hdr *b,
        enum atomio_dw_state s, const char *why)
{
    (void)where, (void)rec, (void)why;
    struct atomio_dw_scan_result *res = arg;
    const struct atomio_dw_geom *g = (const void *)res->g;
    if (b->lsn < g->tail)
        return 0;
    /* New records go above every record whose header holds, torn ones too, so recovery's
     * tail passes them all. */
    if (b->lsn + b->byte_len > res->head)
        res->head = b->lsn + b->byte_len;
    if (s == ATOMIO_DW_VALID)
        res->live = true;
    return 0;
}

int
atomio__dw_scan_live(struct atomio_store *st, struct atomio_dw_scan_result *res)
{
    *res = (struct atomio_dw_scan_result){.g = &st->g};
    return scan_ring(st->fd, &st->g, live_cb, res);
}

/* ---- recovery ------------------------------------------------------------------------------ */

struct rslot {
    uint64_t file_id, page_no, lsn;
    uint64_t where; /* file offset of the copy's bytes in the store */
    uint32_t page_size, index;
};

static int
cmp_rslot(const void *a, const void *b)
{
    const struct rslot *x = a, *y = b;
    if (x->file_id != y->file_id)
        return x->file_id < y->file_id ? -1 : 1;
    if (x->page_no != y->page_no)
        return x->page_no < y->page_no ? -1 : 1;
    /* newest first: higher LSN, then the later slot of the same record */
    if (x->lsn != y->lsn)
        return x->lsn > y->lsn ? -1 : 1;
    return x->index > y->index ? -1 : x->index < y->index;
}

struct recov {
    atomio_ctx *ctx;
    struct atomio_store *st;
    atomio_recovery_report rep;
    int rfd;       /* store, read through the page cache (any offset, any length) */
    uint8_t *copy; /* one page from the store */
    uint8_t *data; /* one page from the data file */
    struct rslot *slots;
    size_t nslots, cap;
    int err; /* first hard error */
};

static int
collect_cb(void *arg, uint64_t where, const uint8_t *rec, const struct atomio_dw_batch_hdr *b,
           enum atomio_dw_state s, const char *why)
{
    (void)why;
    struct recov *rc = arg;
    if (b->lsn < rc->st->g.tail)
        return 0; /* released before the durable tail: never applied */
    rc->rep.batches_scanned++;
    if (s != ATOMIO_DW_VALID) {
        rc->rep.batches_torn++; /* its in-place writes never started */
        return 0;
    }
    rc->rep.batches_valid++;
    for (uint32_t k = 0; k < b->count; k++) {
        struct atomio_dw_slot sl;
        bool ok;
        if (atomio__dw_slot_decode(rec, (size_t)b->byte_len, b, k, &sl, &ok) != 0 || !ok)
            continue; /* cannot happen for a VALID record; keep the reader total anyway */
        if (rc->nslots == rc->cap) {
            size_t ncap = rc->cap ? rc->cap * 2 : 256;
            void *p = realloc(rc->slots, ncap * sizeof(*rc->slots));
            if (!p) {
                rc->err = -ENOMEM;
                return 1;
            }
            rc->slots = p;
            rc->cap = ncap;
        }
        rc->slots[rc->nslots++] = (struct rslot){.file_id = sl.file_id,
                                                 .page_no = sl.page_no,
                                                 .lsn = b->lsn,
                                                 .where = where + sl.offset,
                                                 .page_size = sl.page_size,
                                                 .index = k};
    }
    return 0;
}

/*
 * decide_and_restore() -- one (file, page) against its newest copy. Without a verify
 * callback a page that differs from the copy is rewritten. With one, the engine decides: a
 * page it calls intact stays; a damaged page is rewritten if the engine accepts the copy,
 * otherwise both are bad and the page is reported unrecoverable.
 */
static int
decide_and_restore(struct recov *rc, int fd, const struct rslot *s, bool *restored)
{
    const atomio_ctx_opts *o = &rc->ctx->opts;
    uint32_t ps = s->page_size;
    uint64_t off = s->page_no * ps;
    int r = atomio__pread_full(rc->rfd, rc->copy, ps, s->where);
    if (r < 0)
        return r;
    if ((r = atomio__pread_full(fd, rc->data, ps, off)) < 0)
        return r;
    rc->rep.pages_checked++;
    bool same = memcmp(rc->copy, rc->data, ps) == 0;
    *restored = false;
    if (o->verify) {
        if (o->verify(o->verify_arg, s->file_id, s->page_no, rc->data, ps) == 1) {
            rc->rep.pages_verified_intact++;
            return 0;
        }
        if (same || o->verify(o->verify_arg, s->file_id, s->page_no, rc->copy, ps) != 1) {
            rc->rep.pages_unrecoverable++;
            return 0;
        }
    } else if (same) {
        return 0;
    }
    struct iovec iov = {rc->copy, ps};
    ssize_t w = atomio__sys.pwritev2(fd, &iov, 1, off, 0);
    if (w < 0)
        return (int)w;
    if (w != (ssize_t)ps)
        return ATOMIO_E_SHORT_WRITE;
    rc->rep.pages_restored++;
    *restored = true;
    return 0;
}

/* unapplied() -- copies of one file id that cannot be applied: kept, counted and named. */
static void
unapplied(struct recov *rc, uint64_t id, const char *path, uint64_t pages, int why)
{
    rc->rep.pages_unapplied += pages;
    const atomio_ctx_opts *o = &rc->ctx->opts;
    if (o->unapplied)
        o->unapplied(o->unapplied_arg, id, path, pages, why);
}

/* newest() -- slots[i] is the newest copy of its page (slots sorted, newest first per page);
 * the others are older copies of the same page. */
static bool
newest(const struct rslot *slots, size_t i)
{
    return i == 0 || slots[i].page_no != slots[i - 1].page_no;
}

/* recover_file() -- every page of one file id (slots[0..n), sorted, newest first per page). */
static void
recover_file(struct recov *rc, const struct rslot *slots, size_t n)
{
    uint64_t id = slots[0].file_id;
    uint64_t pages = 0;
    for (size_t i = 0; i < n; i++)
        pages += newest(slots, i);
    if (atomio__store_id_discarded(rc->st, id)) {
        rc->rep.pages_discarded += pages;
        return;
    }
    char path[4096];
    uint64_t from = 0;
    int r = atomio__store_resolve(rc->ctx, id, path, sizeof(path), &from);
    if (r == -ENOENT) {
        rc->rep.unknown_file_ids++;
        unapplied(rc, id, NULL, pages, ATOMIO_E_UNAPPLIED);
        return;
    }
    if (r == ATOMIO_E_UNAPPLIED) {
        rc->rep.files_missing++;
        unapplied(rc, id, path, pages, r);
        return;
    }
    if (r < 0) {
        rc->err = rc->err ? rc->err : r;
        return;
    }
    /* Copies all older than the file's fence: the engine said the file changed without the
     * library since (truncated, rewritten, removed). None may be applied, file or no file. */
    uint64_t fenced = 0;
    for (size_t i = 0; i < n; i++)
        fenced += newest(slots, i) && slots[i].lsn < from;
    rc->rep.pages_fenced += fenced;
    if (fenced == pages)
        return;
    int fd = atomio__sys.open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd == -ENOENT || fd == -ENOTDIR) {
        rc->rep.files_missing++;
        unapplied(rc, id, path, pages - fenced, -ENOENT);
        return;
    }
    if (fd < 0) {
        rc->err = rc->err ? rc->err : fd;
        return;
    }
    bool dirty = false;
    size_t ahead = 0; /* the next slot to prefetch */
    uint64_t asked = 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        /* Only the newest copy of a page, and only if it is newer than the file's last write
         * without the store. */
        if (!newest(slots, i) || slots[i].lsn < from)
            continue;
        /* Keep a window of pages asked for ahead: on a cold page cache the checks then wait
         * for reads that are already in flight together, not for one read after another. */
        for (; ahead < n && asked < done + RECOVER_PREFETCH; ahead++) {
            const struct rslot *a = &slots[ahead];
            if (!newest(slots, ahead) || a->lsn < from)
                continue;
            (void)atomio__sys.prefetch(fd, a->page_no * a->page_size, a->page_size);
            asked++;
        }
        done++;
        bool restored;
        r = decide_and_restore(rc, fd, &slots[i], &restored);
        if (r < 0) {
            rc->err = rc->err ? rc->err : r;
            break;
        }
        dirty |= restored;
    }
    /* Every file recovery looked at is synced, rewritten or not: a page that matched its copy
     * may match it only in the page cache (its writer died, the machine did not), and the
     * copy is about to be released. */
    (void)dirty;
    r = atomio__sys.fdatasync(fd);
    ATOMIO_COUNT(&rc->ctx->stats, syncs, 1);
    if (r < 0)
        rc->err = rc->err ? rc->err : r;
    atomio__sys.close(fd);
}

int
atomio__recover(atomio_ctx *ctx, atomio_recovery_report *out)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return ATOMIO_E_NO_DOUBLEWRITE;
    int r = atomio__store_check(ctx);
    if (r < 0)
        return r;
    struct recov rc = {.ctx = ctx, .st = st, .rfd = -1};
    rc.rep.headers_repaired = st->headers_repaired;
    if (!st->first || atomio__shared_attached(st) > 1) {
        /* Recovery runs once, at engine start, before any other process attaches. */
        r = ATOMIO_E_BUSY;
        goto out;
    }
    /* Records of this instance still waiting for a sync: sync their files first, so that
     * what recovery sees is only what a crash left. */
    if ((r = atomio__store_release_all(ctx)) < 0)
        goto out;
    rc.copy = malloc(st->g.max_page_size);
    rc.data = malloc(st->g.max_page_size);
    if (!rc.copy || !rc.data) {
        r = -ENOMEM;
        goto out;
    }
    rc.rfd = atomio__sys.open(st->path, O_RDONLY | O_CLOEXEC, 0);
    if (rc.rfd < 0) {
        r = rc.rfd;
        goto out;
    }
    atomio__shared_lock(st);
    r = atomio__store_man_refresh(st);
    atomio__shared_unlock(st);
    if (r < 0 || (r = scan_ring(rc.rfd, &st->g, collect_cb, &rc)) < 0)
        goto out;
    rc.rep.ring_bytes_scanned = st->g.ring_size;
    if (rc.err < 0) {
        r = rc.err;
        goto out;
    }

    if (rc.nslots)
        qsort(rc.slots, rc.nslots, sizeof(*rc.slots), cmp_rslot);
    for (size_t i = 0; i < rc.nslots;) {
        size_t j = i;
        while (j < rc.nslots && rc.slots[j].file_id == rc.slots[i].file_id)
            j++;
        recover_file(&rc, rc.slots + i, j - i);
        i = j;
    }
    ATOMIO_COUNT(&ctx->stats, recovered_pages, rc.rep.pages_restored);
    if (rc.err < 0) {
        r = rc.err;
        goto out;
    }
    if (rc.rep.pages_unrecoverable > 0) {
        /* Keep every copy: the engine (or an operator with atomio-bench inspect) decides. */
        r = ATOMIO_E_UNRECOVERABLE;
        goto out;
    }
    if (rc.rep.pages_unapplied > 0) {
        atomio__reason_set("recovery kept the copies of %llu page(s) it could not apply: "
                           "remap their files (atomio_ctx_remap_file) or discard them "
                           "(atomio_ctx_discard_file)",
                           (unsigned long long)rc.rep.pages_unapplied);
        r = ATOMIO_E_UNAPPLIED;
        goto out;
    }

    /* Every restored page is durable: move the durable tail past every record, so none of
     * these copies can ever be applied over a page written after this point. */
    uint64_t head = atomio__shared_head(st);
    if (head < st->g.tail)
        head = st->g.tail;
    if ((r = atomio__store_write_headers(st, head)) < 0) {
        atomic_store(&st->failed, true);
        goto out;
    }
    atomio__shared_lock(st);
    atomio__shared_init_ring(st, head, head);
    atomio__shared_unlock(st);
    atomio__store_reset_after_recovery(st);
out:
    if (rc.rfd >= 0)
        atomio__sys.close(rc.rfd);
    free(rc.slots);
    free(rc.copy);
    free(rc.data);
    if (out) {
        rc.rep.size = sizeof(rc.rep);
        int cr = atomio__copy_out(out, &rc.rep, sizeof(rc.rep));
        if (r == 0 && cr < 0)
            r = cr;
    }
    return r;
}

/* ---- inspection (public, experimental) ---------------------------------------------------- */

struct insp {
    atomio_inspect_fn fn;
    void *arg;
    int stop;
    const struct atomio_dw_geom *g;
};

static int
insp_file(void *arg, const struct atomio_dw_man_rec *m)
{
    struct insp *in = arg;
    atomio_inspect_record rec = {.size = sizeof(rec), .kind = ATOMIO_INSPECT_FILE};
    rec.file_id = m->file_id;
    rec.path = m->path;
    rec.from_lsn = m->from_lsn;
    rec.relative = (m->flags & ATOMIO_DW_MAN_RELATIVE) != 0;
    in->stop = in->fn(in->arg, &rec);
    return in->stop;
}

static int
inspect_manifest(const char *mpath, struct insp *in)
{
    int fd = atomio__sys.open(mpath, O_RDONLY | O_CLOEXEC, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    struct atomio_statx stx;
    int r = atomio__sys.statx(fd, "", AT_EMPTY_PATH, 0x200u /* STATX_SIZE */, &stx);
    if (r == 0 && stx.size > (256u << 20))
        r = ATOMIO_E_STORE;
    uint8_t *buf = NULL;
    size_t n = r == 0 ? (size_t)stx.size : 0;
    if (r == 0 && n > 0 && !(buf = malloc(n)))
        r = -ENOMEM;
    if (r == 0 && buf && (r = atomio__pread_full(fd, buf, n, 0)) == 0) {
        for (size_t off = 0; off + ATOMIO_DW_MANIFEST_HDR_LEN <= n && !in->stop;) {
            size_t used = atomio__dw_manifest_walk(buf + off, n - off, insp_file, in);
            off += used ? used : 8;
        }
    }
    free(buf);
    atomio__sys.close(fd);
    return r;
}

static int
insp_rec(void *arg, uint64_t where, const uint8_t *buf, const struct atomio_dw_batch_hdr *b,
         enum atomio_dw_state s, const char *why)
{
    struct insp *in = arg;
    atomio_inspect_record rec = {.size = sizeof(rec), .kind = ATOMIO_INSPECT_BATCH};
    rec.offset = where;
    rec.state = s == ATOMIO_DW_VALID ? ATOMIO_BATCH_VALID : ATOMIO_BATCH_TORN;
    rec.lsn = b->lsn;
    rec.pages = b->count;
    rec.bytes = b->byte_len;
    rec.why = why;
    rec.live = s == ATOMIO_DW_VALID && b->lsn >= in->g->tail;
    if ((in->stop = in->fn(in->arg, &rec)) != 0)
        return 1;
    for (uint32_t k = 0; k < b->count && s == ATOMIO_DW_VALID && !in->stop; k++) {
        struct atomio_dw_slot sl;
        bool ok;
        int dr = atomio__dw_slot_decode(buf, (size_t)b->byte_len, b, k, &sl, &ok);
        rec = (atomio_inspect_record){.size = sizeof(rec), .kind = ATOMIO_INSPECT_SLOT};
        rec.offset = where;
        rec.lsn = b->lsn;
        rec.slot = k;
        rec.file_id = sl.file_id;
        rec.page_no = sl.page_no;
        rec.page_size = sl.page_size;
        rec.crc = sl.crc;
        rec.crc_ok = dr == 0 && ok;
        in->stop = in->fn(in->arg, &rec);
    }
    return in->stop;
}

/* open_store_ro() -- the store file of dir and its geometry from whichever header copy holds
 * (the newer when both do). */
static int
open_store_ro(const char *dir, int *fd_out, struct atomio_dw_geom *g, const char **why)
{
    char spath[4096];
    int n = snprintf(spath, sizeof(spath), "%s/%s", dir, ATOMIO_DW_STORE_FILE);
    if (n < 0 || (size_t)n >= sizeof(spath))
        return -ENAMETOOLONG;
    int fd = atomio__sys.open(spath, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    uint8_t buf[2 * ATOMIO_DW_ALIGN];
    int r = atomio__pread_full(fd, buf, sizeof(buf), 0);
    struct atomio_dw_geom gc[2];
    int d[2] = {ATOMIO_E_STORE, ATOMIO_E_STORE};
    for (uint32_t c = 0; c < 2 && r == 0; c++)
        d[c] = atomio__dw_store_hdr_decode(buf + c * ATOMIO_DW_ALIGN, ATOMIO_DW_STORE_HDR_LEN, c,
                                           &gc[c], NULL, c == 0 ? why : NULL);
    if (r == 0) {
        if (d[0] == 0 && (d[1] != 0 || gc[0].tail >= gc[1].tail))
            *g = gc[0];
        else if (d[1] == 0)
            *g = gc[1];
        else
            r = ATOMIO_E_STORE; /* an all-zero header is no store either */
    }
    if (r < 0) {
        atomio__sys.close(fd);
        return r;
    }
    *fd_out = fd;
    return 0;
}

int
atomio_store_inspect(const char *doublewrite_dir, atomio_inspect_fn fn, void *arg)
{
    if (!doublewrite_dir || !fn)
        return ATOMIO_E_INVAL;
    char mpath[4096];
    int n = snprintf(mpath, sizeof(mpath), "%s/%s", doublewrite_dir, ATOMIO_DW_MANIFEST_FILE);
    if (n < 0 || (size_t)n >= sizeof(mpath))
        return -ENAMETOOLONG;
    int fd;
    struct atomio_dw_geom g;
    int r = open_store_ro(doublewrite_dir, &fd, &g, NULL);
    if (r < 0)
        return r;
    struct insp in = {fn, arg, 0, &g};
    atomio_inspect_record rec = {.size = sizeof(rec), .kind = ATOMIO_INSPECT_STORE};
    rec.format_version = g.version;
    rec.max_page_size = g.max_page_size;
    rec.ring_size = g.ring_size;
    rec.tail = g.tail;
    memcpy(rec.uuid, g.uuid, 16);
    if ((in.stop = fn(arg, &rec)) == 0 && (r = inspect_manifest(mpath, &in)) == 0 && !in.stop)
        r = scan_ring(fd, &g, insp_rec, &in);
    atomio__sys.close(fd);
    return r < 0 ? r : 0;
}

/* ---- reset (public): the operator's explicit discard --------------------------------------- */

static int
count_cb(void *arg, uint64_t where, const uint8_t *rec, const struct atomio_dw_batch_hdr *b,
         enum atomio_dw_state s, const char *why)
{
    (void)where, (void)rec, (void)why;
    struct recov *rc = arg;
    if (s == ATOMIO_DW_VALID && b->lsn >= rc->st->g.tail) {
        rc->rep.batches_discarded++;
        rc->rep.pages_discarded += b->count;
    }
    return 0;
}

int
atomio_store_reset(const char *doublewrite_dir, atomio_recovery_report *report)
{
    atomio__reason_clear();
    if (!doublewrite_dir || !*doublewrite_dir)
        return ATOMIO_E_INVAL;
    if (report && report->size < 8)
        return ATOMIO_E_ABI;
    char lpath[4096], spath[4096], mpath[4096];
    if (snprintf(lpath, sizeof(lpath), "%s/%s", doublewrite_dir, ATOMIO_DW_LOCK_FILE) >= 4096 ||
        snprintf(spath, sizeof(spath), "%s/%s", doublewrite_dir, ATOMIO_DW_STORE_FILE) >= 4096 ||
        snprintf(mpath, sizeof(mpath), "%s/%s", doublewrite_dir, ATOMIO_DW_MANIFEST_FILE) >= 4096)
        return -ENAMETOOLONG;
    int lfd = atomio__lock_open(lpath);
    if (lfd < 0)
        return lfd;
    if (atomio__ofd_lock(lfd, F_WRLCK, false) < 0) {
        atomio__lock_close(lfd);
        atomio__reason_set("the store is in use: stop the engine before resetting it");
        return ATOMIO_E_STORE_LOCKED;
    }
    struct atomio_store st = {.fd = -1};
    struct recov rc = {.st = &st};
    int fd;
    if (open_store_ro(doublewrite_dir, &fd, &st.g, NULL) == 0) {
        (void)scan_ring(fd, &st.g, count_cb, &rc);
        char name[96];
        atomio__shm_name(name, st.g.uuid, fd);
        (void)shm_unlink(name);
        atomio__sys.close(fd);
    }
    int r = 0;
    const char *files[2] = {spath, mpath};
    for (int i = 0; i < 2 && r == 0; i++) {
        int f = atomio__sys.open(files[i], O_RDWR | O_CLOEXEC, 0);
        if (f == -ENOENT)
            continue;
        if (f < 0) {
            r = f;
            break;
        }
        r = atomio__sys.ftruncate(f, 0);
        if (r == 0)
            r = atomio__sys.fdatasync(f);
        atomio__sys.close(f);
    }
    atomio__lock_close(lfd);
    if (report) {
        rc.rep.size = sizeof(rc.rep);
        int cr = atomio__copy_out(report, &rc.rep, sizeof(rc.rep));
        if (r == 0 && cr < 0)
            r = cr;
    }
    return r;
}
