/* SPDX-License-Identifier: MIT */
/*
 * recover.c -- recovery from the doublewrite store (docs/format.md, "Recovery") and read-only inspection.
 * Recovery reads every segment, trusts only batches whose header, table and page CRCs all
 * hold, takes the newest copy of each (file, page), rewrites in-place pages that differ (or
 * that the engine's verify() rejects), fdatasyncs them, and only then retires every batch.
 * A crash at any point of it leaves the store as it was, so running it again is harmless.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rslot {
    uint64_t file_id, page_no, seq;
    uint32_t page_size, index, seg, offset;
};

static int
cmp_rslot(const void *a, const void *b)
{
    const struct rslot *x = a, *y = b;
    if (x->file_id != y->file_id)
        return x->file_id < y->file_id ? -1 : 1;
    if (x->page_no != y->page_no)
        return x->page_no < y->page_no ? -1 : 1;
    /* newest first: higher sequence, then the later slot of the same batch */
    if (x->seq != y->seq)
        return x->seq > y->seq ? -1 : 1;
    return x->index > y->index ? -1 : x->index < y->index;
}

/*
 * read_batch() -- read segment i's batch into buf (g->seg_size bytes): its header block first,
 * then as much more as the header claims (never beyond the segment), and decode it.
 */
static enum atomio_dw_state
read_batch(int fd, const struct atomio_dw_geom *g, uint32_t i, uint8_t *buf,
           struct atomio_dw_batch_hdr *b, const char **why, int *err)
{
    uint64_t seg_off = atomio__dw_seg_off(g, i);
    size_t len = (size_t)(g->seg_size < ATOMIO_DW_ALIGN ? g->seg_size : ATOMIO_DW_ALIGN);
    *err = atomio__pread_full(fd, buf, len, seg_off);
    if (*err < 0)
        return ATOMIO_DW_TORN;
    enum atomio_dw_state s = atomio__dw_batch_decode(buf, len, g, b, why);
    if (s == ATOMIO_DW_TORN && b->byte_len > len && b->byte_len <= g->seg_size) {
        size_t more = (size_t)b->byte_len - len;
        *err = atomio__pread_full(fd, buf + len, more, seg_off + len);
        if (*err < 0)
            return ATOMIO_DW_TORN;
        s = atomio__dw_batch_decode(buf, (size_t)b->byte_len, g, b, why);
    }
    return s;
}

struct recov {
    atomio_ctx *ctx;
    struct atomio_store *st;
    atomio_recovery_report rep;
    int rfd;       /* store, read through the page cache (any offset, any length) */
    uint8_t *copy; /* one page from the store */
    uint8_t *data; /* one page from the data file */
    int err;       /* first hard error */
};

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
    int r = atomio__pread_full(rc->rfd, rc->copy, ps,
                               atomio__dw_seg_off(&rc->st->g, s->seg) + s->offset);
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

/* recover_file() -- every page of one file id (slots[0..n), sorted, newest first per page). */
static void
recover_file(struct recov *rc, const struct rslot *slots, size_t n)
{
    uint64_t id = slots[0].file_id;
    pthread_mutex_lock(&rc->st->mlock);
    const char *p = atomio__store_path_of(rc->st, id);
    char *path = p ? strdup(p) : NULL;
    pthread_mutex_unlock(&rc->st->mlock);
    if (!p) {
        rc->rep.unknown_file_ids++;
        return;
    }
    if (!path) {
        rc->err = rc->err ? rc->err : -ENOMEM;
        return;
    }
    int fd = atomio__sys.open(path, O_RDWR, 0);
    free(path);
    if (fd == -ENOENT) {
        rc->rep.files_missing++;
        return;
    }
    if (fd < 0) {
        rc->err = rc->err ? rc->err : fd;
        return;
    }
    bool dirty = false;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && slots[i].page_no == slots[i - 1].page_no)
            continue; /* an older copy of the same page */
        bool restored;
        int r = decide_and_restore(rc, fd, &slots[i], &restored);
        if (r < 0) {
            rc->err = rc->err ? rc->err : r;
            break;
        }
        dirty |= restored;
    }
    if (dirty) {
        int r = atomio__sys.fdatasync(fd);
        ATOMIO_COUNT(&rc->ctx->stats, syncs, 1);
        if (r < 0)
            rc->err = rc->err ? rc->err : r;
    }
    atomio__sys.close(fd);
}

int
atomio__recover(atomio_ctx *ctx, atomio_recovery_report *out)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return ATOMIO_E_NO_DOUBLEWRITE;
    struct recov rc = {.ctx = ctx, .st = st, .rfd = -1};
    const struct atomio_dw_geom *g = &st->g;
    struct rslot *slots = NULL;
    size_t nslots = 0, cap = 0;
    bool *occupied = calloc(g->nseg, sizeof(*occupied));
    uint8_t *buf = malloc((size_t)g->seg_size);
    rc.copy = malloc(ATOMIO_MAX_PAGE);
    rc.data = malloc(ATOMIO_MAX_PAGE);
    int r = 0;
    if (!occupied || !buf || !rc.copy || !rc.data) {
        r = -ENOMEM;
        goto out;
    }
    /* Batches of this ctx that finished but wait for their retire are not for recovery. */
    if ((r = atomio__store_flush_retires(ctx)) < 0)
        goto out;
    rc.rfd = atomio__sys.open(st->path, O_RDONLY, 0);
    if (rc.rfd < 0) {
        r = rc.rfd;
        goto out;
    }

    for (uint32_t i = 0; i < g->nseg; i++) {
        struct atomio_dw_batch_hdr b;
        int err;
        enum atomio_dw_state s = read_batch(rc.rfd, g, i, buf, &b, NULL, &err);
        if (err < 0) {
            r = err;
            goto out;
        }
        rc.rep.segments_scanned++;
        if (s == ATOMIO_DW_EMPTY)
            continue;
        occupied[i] = true;
        rc.rep.batches_scanned++;
        if (s == ATOMIO_DW_TORN) {
            rc.rep.batches_torn++; /* its in-place writes never started */
            continue;
        }
        rc.rep.batches_valid++;
        for (uint32_t k = 0; k < b.count; k++) {
            struct atomio_dw_slot sl;
            bool ok;
            if (atomio__dw_slot_decode(buf, (size_t)b.byte_len, &b, k, &sl, &ok) != 0 || !ok)
                continue; /* cannot happen for a VALID batch; keep the reader total anyway */
            if (nslots == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                void *p = realloc(slots, ncap * sizeof(*slots));
                if (!p) {
                    r = -ENOMEM;
                    goto out;
                }
                slots = p;
                cap = ncap;
            }
            slots[nslots++] = (struct rslot){sl.file_id, sl.page_no, sl.seq,   sl.page_size,
                                             sl.index,   i,          sl.offset};
        }
    }

    if (nslots)
        qsort(slots, nslots, sizeof(*slots), cmp_rslot);
    for (size_t i = 0; i < nslots;) {
        size_t j = i;
        while (j < nslots && slots[j].file_id == slots[i].file_id)
            j++;
        recover_file(&rc, slots + i, j - i);
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

    /* Every restored page is durable: retire every batch, so none of these copies can ever
     * be applied over a page written after this point. */
    bool wiped = false;
    for (uint32_t i = 0; i < g->nseg; i++) {
        if (!occupied[i])
            continue;
        if ((r = atomio__store_retire(st, &st->segs[i])) < 0)
            goto out;
        wiped = true;
    }
    if (wiped && (r = atomio__store_sync(ctx)) < 0)
        goto out;
    atomio__store_reset_after_recovery(st);
out:
    if (rc.rfd >= 0)
        atomio__sys.close(rc.rfd);
    free(slots);
    free(occupied);
    free(buf);
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

/* ---- inspection (public) -------------------------------------------------------------------- */

struct insp {
    atomio_inspect_fn fn;
    void *arg;
    int stop;
};

static int
insp_file(void *arg, uint64_t file_id, const char *path)
{
    struct insp *in = arg;
    atomio_inspect_record rec = {.size = sizeof(rec), .kind = ATOMIO_INSPECT_FILE};
    rec.file_id = file_id;
    rec.path = path;
    in->stop = in->fn(in->arg, &rec);
    return in->stop;
}

static int
inspect_manifest(const char *mpath, struct insp *in)
{
    int fd = atomio__sys.open(mpath, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    struct atomio_statx stx;
    int r = atomio__sys.statx(fd, "", AT_EMPTY_PATH, 0x200u /* STATX_SIZE */, &stx);
    if (r == 0 && stx.size > (64u << 20))
        r = ATOMIO_E_STORE;
    uint8_t *buf = NULL;
    if (r == 0 && stx.size > 0 && !(buf = malloc((size_t)stx.size)))
        r = -ENOMEM;
    if (r == 0 && buf && (r = atomio__pread_full(fd, buf, (size_t)stx.size, 0)) == 0)
        atomio__dw_manifest_walk(buf, (size_t)stx.size, insp_file, in);
    free(buf);
    atomio__sys.close(fd);
    return r;
}

int
atomio_store_inspect(const char *doublewrite_dir, atomio_inspect_fn fn, void *arg)
{
    if (!doublewrite_dir || !fn)
        return ATOMIO_E_INVAL;
    char spath[4096], mpath[4096];
    int n1 = snprintf(spath, sizeof(spath), "%s/%s", doublewrite_dir, ATOMIO_DW_STORE_FILE);
    int n2 = snprintf(mpath, sizeof(mpath), "%s/%s", doublewrite_dir, ATOMIO_DW_MANIFEST_FILE);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(spath) || (size_t)n2 >= sizeof(mpath))
        return -ENAMETOOLONG;
    int fd = atomio__sys.open(spath, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    struct insp in = {fn, arg, 0};
    uint8_t hdr[ATOMIO_DW_STORE_HDR_LEN];
    struct atomio_dw_geom g;
    uint8_t *buf = NULL;
    int r = atomio__pread_full(fd, hdr, sizeof(hdr), 0);
    if (r < 0)
        goto out;
    r = atomio__dw_store_hdr_decode(hdr, sizeof(hdr), &g, NULL);
    if (r != 0) {
        r = ATOMIO_E_STORE; /* an all-zero header is no store either */
        goto out;
    }
    atomio_inspect_record rec = {.size = sizeof(rec), .kind = ATOMIO_INSPECT_STORE};
    rec.format_version = g.version;
    rec.max_page_size = g.max_page_size;
    rec.segments = g.nseg;
    rec.batch_pages = g.batch_pages;
    rec.segment_size = g.seg_size;
    memcpy(rec.uuid, g.uuid, 16);
    if ((in.stop = fn(arg, &rec)) != 0)
        goto out;
    if ((r = inspect_manifest(mpath, &in)) < 0 || in.stop)
        goto out;
    if (!(buf = malloc((size_t)g.seg_size))) {
        r = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < g.nseg && !in.stop; i++) {
        struct atomio_dw_batch_hdr b;
        const char *why;
        int err;
        enum atomio_dw_state s = read_batch(fd, &g, i, buf, &b, &why, &err);
        if (err < 0) {
            r = err;
            goto out;
        }
        if (s == ATOMIO_DW_EMPTY)
            continue;
        rec = (atomio_inspect_record){.size = sizeof(rec), .kind = ATOMIO_INSPECT_BATCH};
        rec.segment = i;
        rec.state = s == ATOMIO_DW_VALID ? ATOMIO_BATCH_VALID : ATOMIO_BATCH_TORN;
        rec.seq = b.seq;
        rec.pages = b.count;
        rec.bytes = b.byte_len;
        rec.why = why;
        if ((in.stop = fn(arg, &rec)) != 0)
            break;
        size_t avail = b.byte_len <= g.seg_size ? (size_t)b.byte_len : 0;
        for (uint32_t k = 0; k < b.count && avail && !in.stop; k++) {
            struct atomio_dw_slot sl;
            bool ok;
            int dr = atomio__dw_slot_decode(buf, avail, &b, k, &sl, &ok);
            rec = (atomio_inspect_record){.size = sizeof(rec), .kind = ATOMIO_INSPECT_SLOT};
            rec.segment = i;
            rec.seq = b.seq;
            rec.slot = k;
            rec.file_id = sl.file_id;
            rec.page_no = sl.page_no;
            rec.page_size = sl.page_size;
            rec.crc = sl.crc;
            rec.crc_ok = dr == 0 && ok;
            in.stop = fn(arg, &rec);
        }
    }
out:
    free(buf);
    atomio__sys.close(fd);
    return r < 0 ? r : 0;
}
