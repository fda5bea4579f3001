/* SPDX-License-Identifier: MIT */
/*
 * store/stage.c -- write-behind (ATOMIO_DOUBLEWRITE_WRITE_BEHIND): a doublewrite returns once
 * its page is copied into a slot of the instance's shared staging memory. A round of group
 * commit, led by one process at a time, later takes the staged pages of every process, writes
 * them to the store as records (one write each, one fdatasync for all), and only then writes
 * them in place. Until a page is in place, reads of it are served from its slot.
 *
 * Slots form a ring numbered by a staging sequence: slots [tail, head) are in use, seq s lives
 * in slot s % nslots. Their states:
 *   FILLING    its writer is copying the page in (the writer's call has not returned)
 *   READY      staged: the newest copy of its page, waiting for a round
 *   COLLECTED  taken by the round under way
 *   DONE       in place (or superseded by a newer READY copy of the same page before any
 *              round took it): waits for the tail to pass
 *   DEAD       its writer died while copying: never written (its call never returned)
 * A round takes the READY slots from the tail on, stopping at the first FILLING one, so pages
 * go in place in the order they were staged; the tail then moves over DONE and DEAD slots.
 * Copies of one page are ordered by the sequence: a READY copy supersedes the older READY one
 * (never a COLLECTED one, which its round writes first), and the next round runs only after
 * the previous one's in-place writes completed.
 *
 * Invariants (with store/shared.c's):
 *   - a staged page is in no file and no record until a round takes it; a crash loses it as
 *     it would lose a dirty page-cache page: the engine's sync had not returned;
 *   - a round's records are durable before any of its in-place writes;
 *   - a slot leaves its hash chain only when its page is in place (or never will be), so a
 *     read that finds no slot finds the page in the file;
 *   - a round whose leader died is given back (COLLECTED -> READY) and led again: rewriting a
 *     page with the same bytes is harmless, and its records are reaped as any dead writer's.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define NONE UINT32_MAX

enum slot_state { S_FREE = 0, S_FILLING, S_READY, S_COLLECTED, S_DONE, S_DEAD };

struct stage_slot {
    uint64_t seq;
    uint64_t file_id;
    uint64_t page_no;
    uint32_t page_size;
    uint32_t state; /* enum slot_state; changed under the shared lock */
    uint32_t proc;  /* the writer's entry in the table of processes */
    uint32_t crc;   /* CRC32C of the page, computed by its writer */
    uint32_t hnext; /* next slot of its hash bucket, or NONE */
    uint32_t pad;
};

struct atomio_stage {
    uint32_t nslots, slot_bytes, nbuckets, pad;
    uint64_t head, tail; /* staging sequence numbers */
    uint32_t leading;    /* a round is under way ... */
    uint32_t leader;     /* ... led by this process */
    int32_t error;       /* a round that failed: sticky for the instance's run */
    uint32_t pad2;
    uint64_t buckets_off, data_off; /* from the start of this struct */
    struct stage_slot slots[];
};

/* A round takes at most this many pages; the rest waits for the next one. */
#define ROUND_MAX 1024u

static uint32_t *
buckets(struct atomio_stage *sg)
{
    return (uint32_t *)((uint8_t *)sg + sg->buckets_off);
}

static uint8_t *
slot_data(struct atomio_stage *sg, uint32_t i)
{
    return (uint8_t *)sg + sg->data_off + (size_t)i * sg->slot_bytes;
}

static uint32_t
bucket_of(const struct atomio_stage *sg, uint64_t file_id, uint64_t page_no)
{
    uint64_t h = (file_id * 0x9E3779B97F4A7C15ull) ^ page_no;
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 32) & (sg->nbuckets - 1);
}

static uint32_t
slot_count(uint64_t write_behind_bytes, uint64_t ring_size, uint32_t slot_bytes)
{
    uint64_t want = write_behind_bytes ? write_behind_bytes : ring_size / 16;
    if (!write_behind_bytes)
        want = want < (1u << 20) ? (1u << 20) : want > (16u << 20) ? (16u << 20) : want;
    uint64_t n = want / slot_bytes;
    return n < 4 ? 4 : n > (1u << 20) ? (1u << 20) : (uint32_t)n;
}

static uint32_t
bucket_count(uint32_t nslots)
{
    uint32_t b = 16;
    while (b < 2 * nslots)
        b *= 2;
    return b;
}

size_t
atomio__stage_len(uint64_t write_behind_bytes, uint64_t ring_size, uint32_t max_page_size)
{
    uint32_t slot_bytes = (uint32_t)atomio__dw_round(max_page_size, ATOMIO_DW_ALIGN);
    uint32_t n = slot_count(write_behind_bytes, ring_size, slot_bytes);
    size_t meta = sizeof(struct atomio_stage) + (size_t)n * sizeof(struct stage_slot) +
                  (size_t)bucket_count(n) * sizeof(uint32_t);
    return (size_t)atomio__dw_round(meta, ATOMIO_DW_ALIGN) + (size_t)n * slot_bytes;
}

void
atomio__stage_init(void *region, size_t len, uint32_t max_page_size)
{
    struct atomio_stage *sg = region;
    sg->slot_bytes = (uint32_t)atomio__dw_round(max_page_size, ATOMIO_DW_ALIGN);
    /* Invert atomio__stage_len(): the largest count whose layout fits len. */
    uint32_t n = (uint32_t)(len / sg->slot_bytes);
    for (;; n--) {
        size_t meta = sizeof(*sg) + (size_t)n * sizeof(struct stage_slot) +
                      (size_t)bucket_count(n) * sizeof(uint32_t);
        if ((size_t)atomio__dw_round(meta, ATOMIO_DW_ALIGN) + (size_t)n * sg->slot_bytes <= len)
            break;
    }
    sg->nslots = n;
    sg->nbuckets = bucket_count(n);
    sg->buckets_off = sizeof(*sg) + (size_t)n * sizeof(struct stage_slot);
    sg->data_off = atomio__dw_round(sg->buckets_off + (size_t)sg->nbuckets * sizeof(uint32_t),
                                    ATOMIO_DW_ALIGN);
    uint32_t *b = buckets(sg);
    for (uint32_t i = 0; i < sg->nbuckets; i++)
        b[i] = NONE;
}

bool
atomio__stage_on(const atomio_ctx *ctx)
{
    return ctx->store && ctx->opts.doublewrite_mode == ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
}

/* ---- slots (caller holds the shared lock) ---------------------------------------------------- */

static void
chain_remove(struct atomio_stage *sg, uint32_t i)
{
    struct stage_slot *s = &sg->slots[i];
    uint32_t *pp = &buckets(sg)[bucket_of(sg, s->file_id, s->page_no)];
    while (*pp != NONE && *pp != i)
        pp = &sg->slots[*pp].hnext;
    if (*pp == i)
        *pp = s->hnext;
    s->hnext = NONE;
}

/* advance() -- move the tail over slots that are done with; true when it moved. */
static bool
advance(struct atomio_stage *sg)
{
    bool moved = false;
    while (sg->tail < sg->head) {
        uint32_t i = (uint32_t)(sg->tail % sg->nslots);
        struct stage_slot *s = &sg->slots[i];
        if (s->state != S_DONE && s->state != S_DEAD)
            break;
        chain_remove(sg, i);
        s->state = S_FREE;
        sg->tail++;
        moved = true;
    }
    return moved;
}

bool
atomio__stage_reap(struct atomio_stage *sg, const bool *gone)
{
    if (!sg)
        return false;
    bool changed = false;
    bool give_back = sg->leading && gone[sg->leader];
    if (give_back)
        sg->leading = 0;
    for (uint64_t q = sg->tail; q < sg->head; q++) {
        struct stage_slot *s = &sg->slots[q % sg->nslots];
        if (s->state == S_FILLING && gone[s->proc]) {
            s->state = S_DEAD;
            changed = true;
        } else if (s->state == S_COLLECTED && give_back) {
            s->state = S_READY;
        }
    }
    return advance(sg) || changed || give_back;
}

/* newest() -- the newest READY or COLLECTED slot of the page, or NONE. */
static uint32_t
newest(struct atomio_stage *sg, uint64_t file_id, uint64_t page_no, uint32_t skip)
{
    uint32_t best = NONE;
    for (uint32_t i = buckets(sg)[bucket_of(sg, file_id, page_no)]; i != NONE;
         i = sg->slots[i].hnext) {
        const struct stage_slot *s = &sg->slots[i];
        if (i == skip || s->file_id != file_id || s->page_no != page_no)
            continue;
        if (s->state != S_READY && s->state != S_COLLECTED)
            continue;
        if (best == NONE || s->seq > sg->slots[best].seq)
            best = i;
    }
    return best;
}

/* ---- a round ------------------------------------------------------------------------------ */

/* Files one record of a round may touch: as many as a store descriptor tracks (DESC_FILES in
 * store/shared.c), so syncs of its files release it. */
#define REC_FILES 8u

/* One record of a round: slots sl[first, first + cnt) of the round. */
struct round_rec {
    struct atomio_dw_rec *rec;
    uint32_t first, cnt;
    uint64_t ids[REC_FILES];
    uint32_t nids;
};

/* The fds a round writes through: a copy of this process's own descriptor of the file when
 * it has the file open (so an O_DIRECT file is written O_DIRECT, through the ctx's
 * submitter), else one opened by the path the manifest records (any process's pages). */
struct round_fd {
    uint64_t file_id;
    int fd; /* or -errno */
    bool direct;
};

static int
own_fd(atomio_ctx *ctx, uint64_t file_id, bool *direct)
{
    int fd = -ENOENT;
    pthread_mutex_lock(ctx->lock); /* the file cannot be closed under us meanwhile */
    for (atomio_file *f = ctx->files; f; f = f->next)
        if (f->file_id == file_id && !f->rdonly && atomic_load(&f->state) != ATOMIO_STATE_CLOSED) {
            fd = atomio__sys.dup(f->fd);
            *direct = f->o_direct;
            break;
        }
    pthread_mutex_unlock(ctx->lock);
    return fd;
}

static struct round_fd *
fd_for(atomio_ctx *ctx, struct round_fd *fds, uint32_t *nfds, uint64_t file_id)
{
    for (uint32_t j = 0; j < *nfds; j++)
        if (fds[j].file_id == file_id)
            return &fds[j];
    struct round_fd *e = &fds[(*nfds)++];
    *e = (struct round_fd){.file_id = file_id};
    e->fd = own_fd(ctx, file_id, &e->direct);
    if (e->fd < 0) {
        char path[4096];
        e->direct = false;
        e->fd = atomio__store_resolve(ctx, file_id, path, sizeof(path), NULL);
        if (e->fd == 0)
            e->fd = atomio__sys.open(path, O_WRONLY | O_CLOEXEC, 0);
    }
    return e;
}

/* encode_record() -- record rr's header and slot table, and its iovecs into iov[0..cnt]: the
 * table, then the pages straight from their slots. */
static void
encode_record(const struct atomio_store *st, struct atomio_stage *sg, const uint32_t *sl,
              const struct round_rec *rr, struct iovec *iov)
{
    struct atomio_dw_rec *rec = rr->rec;
    uint64_t tb = atomio__dw_table_bytes(rr->cnt);
    uint8_t *base = rec->buf + rec->hdr_room - tb;
    uint64_t table_end = ATOMIO_DW_REC_HDR_LEN + (uint64_t)rr->cnt * ATOMIO_DW_SLOT_LEN;
    memset(base + table_end, 0, (size_t)(tb - table_end));
    iov[0] = (struct iovec){.iov_base = base, .iov_len = (size_t)tb};
    uint64_t off = tb;
    for (uint32_t k = 0; k < rr->cnt; k++) {
        uint32_t i = sl[rr->first + k];
        const struct stage_slot *s = &sg->slots[i];
        struct atomio_dw_slot d = {.file_id = s->file_id,
                                   .page_no = s->page_no,
                                   .offset = (uint32_t)off,
                                   .page_size = s->page_size,
                                   .crc = s->crc,
                                   .index = k};
        atomio__dw_slot_encode(base, &d);
        iov[1 + k] = (struct iovec){.iov_base = slot_data(sg, i), .iov_len = s->page_size};
        off += s->page_size;
    }
    struct atomio_dw_batch_hdr b = {
        .lsn = rec->lsn, .count = rr->cnt, .byte_len = rec->len, .ring_size = st->g.ring_size};
    atomio__dw_batch_hdr_encode(base, &b, st->g.uuid);
}

/* The kernel's limit on iovecs in one write (UIO_MAXIOV). */
#define ROUND_IOV_MAX 1024u

/*
 * write_records() -- the store writes of records rr[0..nr) (reserved, encoded into iov, the
 * record k's iovecs at iov + ivo[k]): records that follow one another in the ring go in one
 * write, so a round is usually one store write whatever its files. Each record's write is
 * reported (ok or not); returns how many leading records were written whole, and the error.
 */
static uint32_t
write_records(atomio_ctx *ctx, struct round_rec *rr, uint32_t nr, struct iovec *iov,
              const uint32_t *ivo, int *err)
{
    struct atomio_store *st = ctx->store;
    uint32_t ok = 0;
    *err = 0;
    for (uint32_t a = 0; a < nr;) {
        /* [a, b): contiguous in the log and in the ring (a record never wraps) */
        uint32_t b = a + 1;
        uint64_t len = rr[a].rec->len;
        while (b < nr && rr[b].rec->lsn == rr[b - 1].rec->lsn + rr[b - 1].rec->len &&
               atomio__dw_ring_pos(&st->g, rr[b].rec->lsn) ==
                   atomio__dw_ring_pos(&st->g, rr[a].rec->lsn) + len &&
               ivo[b + 1] - ivo[a] <= ROUND_IOV_MAX) {
            len += rr[b].rec->len;
            b++;
        }
        ssize_t w = atomio__sys.pwritev2(st->fd, iov + ivo[a], (int)(ivo[b] - ivo[a]),
                                         atomio__dw_ring_pos(&st->g, rr[a].rec->lsn), 0);
        bool whole = w >= 0 && (uint64_t)w == len;
        for (uint32_t k = a; k < b; k++)
            atomio__store_written(ctx, rr[k].rec, whole);
        if (!whole) {
            /* A store that cannot take a write is not trusted with the next one either. */
            atomic_store(&st->failed, true);
            *err = w < 0 ? (int)w : ATOMIO_E_STORE_FAILED;
            return ok;
        }
        ATOMIO_COUNT(&ctx->stats, bytes_doublewrite, len);
        ok = b;
        a = b;
    }
    return ok;
}

/* plan_records() -- cut the round's slots into records: at most a record's slots and bytes,
 * at most REC_FILES distinct files each. Returns the number of records. */
static uint32_t
plan_records(const struct atomio_store *st, struct atomio_stage *sg, const uint32_t *sl, uint32_t n,
             struct round_rec *rr)
{
    uint32_t nr = 0;
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < n; k++) {
        const struct stage_slot *s = &sg->slots[sl[k]];
        struct round_rec *cur = nr ? &rr[nr - 1] : NULL;
        bool known = false;
        for (uint32_t j = 0; cur && j < cur->nids && !known; j++)
            known = cur->ids[j] == s->file_id;
        if (!cur || cur->cnt == st->slots_max || bytes + s->page_size > st->rec_bytes_max ||
            (!known && cur->nids == REC_FILES)) {
            cur = &rr[nr++];
            *cur = (struct round_rec){.first = k};
            bytes = 0;
            known = false;
        }
        if (!known)
            cur->ids[cur->nids++] = s->file_id;
        cur->cnt++;
        bytes += s->page_size;
    }
    return nr;
}

/* end_record() -- the in-place writes of record r, then its end: awaiting the engine's syncs
 * of its files, or, if the shared table could not track a file, synced and released here. A
 * record with a failed write is held for recovery. 0 or ATOMIO_E_FAILED. */
static int
end_record(atomio_ctx *ctx, struct atomio_stage *sg, const uint32_t *sl, struct round_rec *r,
           struct round_fd *fds, uint32_t *nfds, struct atomio_io *ios)
{
    struct atomio_store *st = ctx->store;
    int err = 0;
    bool direct = false;
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->cnt && !err; k++) {
        uint32_t i = sl[r->first + k];
        const struct stage_slot *s = &sg->slots[i];
        const struct round_fd *e = fd_for(ctx, fds, nfds, s->file_id);
        if (e->fd < 0) {
            err = e->fd;
            break;
        }
        direct |= e->direct;
        /* file NULL: the submitter sends these through its ring (O_DIRECT writes in flight
         * together); writes to the page cache alone are made here, one after the other. */
        ios[n++] = (struct atomio_io){.fd = e->fd,
                                      .buf = slot_data(sg, i),
                                      .len = s->page_size,
                                      .off = s->page_no * s->page_size};
    }
    if (!err && direct) {
        err = ctx->submit->submit(ctx, ios, n);
    } else if (!err) {
        for (uint32_t k = 0; k < n; k++) {
            struct iovec v = {.iov_base = (void *)(uintptr_t)ios[k].buf, .iov_len = ios[k].len};
            ios[k].res = atomio__sys.pwritev2(ios[k].fd, &v, 1, ios[k].off, 0);
        }
    }
    for (uint32_t k = 0; k < n && !err; k++)
        if (ios[k].res != (ssize_t)ios[k].len)
            err = ios[k].res < 0 ? (int)ios[k].res : -EIO; /* short: maybe torn, a failure */
    enum atomio_rec_end how = ATOMIO_REC_AWAIT_SYNC;
    if (err == 0 && !atomio__store_rec_tracked(ctx, r->rec)) {
        for (uint32_t j = 0; j < r->nids && !err; j++) {
            err = atomio__sys.fdatasync(fd_for(ctx, fds, nfds, r->ids[j])->fd);
            ATOMIO_COUNT(&ctx->stats, syncs, 1);
        }
        how = ATOMIO_REC_RELEASE;
    }
    if (err) {
        /* The page in the file may be torn and the copy is the good one: keep it. */
        how = ATOMIO_REC_HOLD;
        for (uint32_t j = 0; j < r->nids; j++)
            (void)atomio__store_hold_id(st, r->ids[j]);
        atomio__reason_set("write-behind: a staged page could not be written in place (%s); "
                           "its copy is kept in the store for recovery",
                           strerror(err < 0 && err > -4096 ? -err : EIO));
    }
    atomio__store_rec_end(ctx, r->rec, how);
    atomio__store_rec_put(ctx, r->rec);
    r->rec = NULL;
    return err ? ATOMIO_E_FAILED : 0;
}

static void
give_up(atomio_ctx *ctx, struct round_rec *r)
{
    struct atomio_dw_run ab = {.ctx = ctx, .rec = r->rec};
    (void)atomio__dw_run_abandon(&ab, true); /* voided if it may be in the store */
    r->rec = NULL;
}

/*
 * run_round() -- the I/O of a round over slots sl[0..n) (COLLECTED by this process): records,
 * one barrier, in-place writes, the records' ends. Called without the shared lock. Sets *done
 * to how many leading slots are done with (in place, or kept in a held record); returns 0 or
 * the error that stopped the others (they go back to READY).
 */
static int
run_round(atomio_ctx *ctx, struct atomio_stage *sg, const uint32_t *sl, uint32_t n, uint32_t *done)
{
    struct atomio_store *st = ctx->store;
    *done = 0;
    struct round_rec *rr = calloc(n, sizeof(*rr));
    struct round_fd *fds = calloc(n, sizeof(*fds));
    struct iovec *iov = calloc((size_t)n * 2 + 1, sizeof(*iov)); /* a table and a page each */
    uint32_t *ivo = calloc((size_t)n + 1, sizeof(*ivo));
    struct atomio_io *ios = calloc(st->slots_max, sizeof(*ios));
    if (!rr || !fds || !iov || !ivo || !ios) {
        free(rr), free(fds), free(iov), free(ivo), free(ios);
        return -ENOMEM;
    }
    uint32_t nr = plan_records(st, sg, sl, n, rr), nres = 0, nfds = 0;
    int err = 0;
    /* Reserve every record. Only the first may wait for space: later ones would wait for this
     * round's own records, and the pages they leave out wait for the next round. */
    for (; nres < nr; nres++) {
        struct round_rec *r = &rr[nres];
        uint64_t bytes = 0;
        for (uint32_t k = 0; k < r->cnt; k++)
            bytes += sg->slots[sl[r->first + k]].page_size;
        r->rec = atomio__store_rec_get(ctx, r->cnt, bytes);
        if (!r->rec) {
            err = -ENOMEM;
            break;
        }
        r->rec->len = atomio__dw_table_bytes(r->cnt) + bytes;
        err = atomio__store_reserve_ids(ctx, r->rec, r->ids, r->nids, nres == 0);
        if (err < 0) {
            atomio__store_rec_put(ctx, r->rec);
            r->rec = NULL;
            break;
        }
        encode_record(st, sg, sl, r, iov + ivo[nres]);
        ivo[nres + 1] = ivo[nres] + 1 + r->cnt;
    }
    if (err == -EAGAIN && nres > 0)
        err = 0;
    int werr = 0;
    uint32_t nw = write_records(ctx, rr, nres, iov, ivo, &werr);
    if (werr) {
        for (uint32_t r = nw; r < nres; r++)
            give_up(ctx, &rr[r]); /* voided if its bytes may be in the store */
        err = werr;
    }
    /* One barrier: the first record's group commit covers every record written before it. */
    for (uint32_t r = 0; r < nw; r++) {
        int e = atomio__store_durable(ctx, rr[r].rec);
        if (e < 0) {
            for (uint32_t q = 0; q < nw; q++)
                if (rr[q].rec)
                    give_up(ctx, &rr[q]);
            err = e;
            nw = 0;
            break;
        }
    }
    /* In place, in staging order. */
    for (uint32_t r = 0; r < nw; r++) {
        int e = end_record(ctx, sg, sl, &rr[r], fds, &nfds, ios);
        if (e < 0 && !err)
            err = e;
        *done = rr[r].first + rr[r].cnt;
    }
    for (uint32_t j = 0; j < nfds; j++)
        if (fds[j].fd >= 0)
            atomio__sys.close(fds[j].fd);
    free(rr), free(fds), free(iov), free(ivo), free(ios);
    return err;
}

/* Errors that end write-behind for the instance's run: the store failed, or a page could not
 * go in place. Every later flush and write returns it, so the engine learns of it at its next
 * sync, as it would of a failed fdatasync. A store write or sync that failed with any other
 * errno fails the leader's store (it takes no more records), so it ends the run as well: the
 * other processes must not carry on with a store one of them no longer trusts. */
static bool
sticky(int err)
{
    return err == ATOMIO_E_STORE_FAILED || err == ATOMIO_E_FAILED || err == -EIO;
}

/*
 * lead() -- lead one round: collect READY slots from the tail on (waiting for a page being
 * copied in at the very front), run it, then mark what it did. Called and returns with the
 * shared lock held; drops it around the I/O.
 */
static int
lead(atomio_ctx *ctx, struct atomio_stage *sg)
{
    struct atomio_store *st = ctx->store;
    uint32_t me = atomio__shared_proc_self(st);
    uint32_t sl[ROUND_MAX], n = 0;
    sg->leading = 1;
    sg->leader = me;
    uint64_t q = sg->tail;
    for (uint32_t spins = 0; q < sg->head && n < ROUND_MAX;) {
        struct stage_slot *s = &sg->slots[q % sg->nslots];
        if (s->state == S_FILLING) {
            if (n > 0)
                break; /* the next round takes it and what follows */
            atomio__shared_unlock(st);
            sched_yield(); /* its writer is copying a page: a microsecond */
            atomio__shared_lock(st);
            if (++spins % 1024 == 0)
                atomio__shared_reap(st); /* ... unless it died */
            if (q < sg->tail)
                q = sg->tail;
            continue;
        }
        if (s->state == S_READY) {
            s->state = S_COLLECTED;
            sl[n++] = (uint32_t)(q % sg->nslots);
        }
        q++;
    }
    int err = 0;
    uint32_t done = 0;
    if (n) {
        atomio__shared_unlock(st);
        /* Files other processes registered: their records were published before their pages
         * were staged, and never change, so they are read without the lock. */
        err = atomio__store_man_refresh(st);
        if (err == 0)
            err = run_round(ctx, sg, sl, n, &done);
        atomio__shared_lock(st);
    }
    for (uint32_t k = 0; k < n; k++) {
        struct stage_slot *s = &sg->slots[sl[k]];
        if (s->state == S_COLLECTED)
            s->state = k < done ? S_DONE : S_READY;
    }
    if (sticky(err) && !sg->error)
        sg->error = err;
    else if (atomic_load(&st->failed) && !sg->error)
        sg->error = ATOMIO_E_STORE_FAILED; /* whatever the errno: see sticky() */
    sg->leading = 0;
    advance(sg);
    atomio__shared_stage_wake(st);
    return err;
}

/* A writer that finds this many pages staged leads a round, unless one is under way. */
static uint32_t
lead_at(const struct atomio_stage *sg)
{
    return sg->nslots / 4 ? sg->nslots / 4 : 1;
}

/* ---- the calls ---------------------------------------------------------------------------- */

/* stage_one() -- stage one page. 0, or why not (nothing staged). */
static int
stage_one(atomio_ctx *ctx, struct atomio_stage *sg, const struct atomio_dw_item *it)
{
    struct atomio_store *st = ctx->store;
    atomio_file *f = it->file;
    int err = 0;
    atomio__shared_lock(st);
    for (;;) {
        if (sg->error) {
            err = sg->error;
            break;
        }
        if (sg->head - sg->tail < sg->nslots)
            break;
        if (!sg->leading) {
            int r = lead(ctx, sg); /* the staging is full: make room */
            if (r < 0 && sg->head - sg->tail >= sg->nslots) {
                err = r;
                break;
            }
            continue;
        }
        atomio__shared_stage_wait(st);
    }
    if (err) {
        atomio__shared_unlock(st);
        return err;
    }
    uint64_t seq = sg->head++;
    uint32_t i = (uint32_t)(seq % sg->nslots);
    struct stage_slot *s = &sg->slots[i];
    *s = (struct stage_slot){.seq = seq,
                             .file_id = f->file_id,
                             .page_no = it->page_no,
                             .page_size = f->page_size,
                             .state = S_FILLING,
                             .proc = atomio__shared_proc_self(st)};
    uint32_t *b = &buckets(sg)[bucket_of(sg, f->file_id, it->page_no)];
    s->hnext = *b;
    *b = i;
    atomio__shared_unlock(st);

    uint8_t *dst = slot_data(sg, i);
    memcpy(dst, it->page, f->page_size);
    uint32_t crc = atomio__crc32c(0, dst, f->page_size);

    atomio__shared_lock(st);
    s->crc = crc;
    uint32_t older = newest(sg, f->file_id, it->page_no, i);
    if (older != NONE && sg->slots[older].state == S_READY)
        sg->slots[older].state = S_DONE; /* never written: this copy is newer */
    s->state = S_READY;
    if (!sg->leading && sg->head - sg->tail >= lead_at(sg))
        (void)lead(ctx, sg); /* an error is sticky or transient: seen by a later call */
    atomio__shared_unlock(st);
    return 0;
}

/* first_of_file() -- whether items[k] is the first staged item of its file in the call. */
static bool
first_of_file(const struct atomio_dw_item *items, size_t k)
{
    if (items[k].result)
        return false;
    for (size_t j = 0; j < k; j++)
        if (items[j].file == items[k].file && items[j].result == 0)
            return false;
    return true;
}

size_t
atomio__stage_write(atomio_ctx *ctx, struct atomio_dw_item *items, size_t n, uint32_t wflags)
{
    struct atomio_stage *sg = atomio__shared_stage(ctx->store);
    size_t ok = 0;
    bool sync = (wflags & ATOMIO_WRITE_DSYNC) != 0;
    for (size_t k = 0; k < n; k++) {
        struct atomio_dw_item *it = &items[k];
        if (it->result)
            continue;
        uint64_t t0 = atomio__now_ns();
        it->result = sg ? stage_one(ctx, sg, it) : ATOMIO_E_NO_DOUBLEWRITE;
        if (it->result)
            continue;
        atomio_file *f = it->file;
        sync = sync || (f->fflags & ATOMIO_FILE_DSYNC);
        ok++;
        ATOMIO_COUNT(&f->stats, bytes_doublewrite, f->page_size);
        ATOMIO_COUNT(&f->stats, pages_staged, 1);
        ATOMIO_COUNT(&ctx->stats, pages_staged, 1);
        atomio__count_pages(f, ATOMIO_PATH_DOUBLEWRITE, atomio__now_ns() - t0, 1);
    }
    if (ok) {
        ATOMIO_COUNT(&ctx->stats, batches, 1); /* one per call, as the other modes count */
        for (size_t k = 0; k < n; k++)
            if (first_of_file(items, k))
                ATOMIO_COUNT(&items[k].file->stats, batches, 1);
    }
    if (!sync || ok == 0)
        return ok;
    /* Durable before returning: in place first, then each file synced once. */
    int err = atomio__stage_flush(ctx);
    for (size_t k = 0; k < n; k++) {
        if (!first_of_file(items, k))
            continue;
        atomio_file *f = items[k].file;
        int r = err ? err : atomio__file_datasync(f);
        for (size_t j = k; j < n && r; j++)
            if (items[j].file == f && items[j].result == 0) {
                items[j].result = r;
                ok--;
            }
    }
    return ok;
}

int
atomio__stage_flush(atomio_ctx *ctx)
{
    if (!atomio__stage_on(ctx))
        return 0;
    int err = atomio__store_check(ctx);
    if (err < 0)
        return err;
    struct atomio_store *st = ctx->store;
    struct atomio_stage *sg = atomio__shared_stage(st);
    if (!sg)
        return 0;
    atomio__shared_lock(st);
    uint64_t upto = sg->head;
    while (sg->tail < upto) {
        if (sg->error) {
            err = sg->error;
            break;
        }
        if (!sg->leading) {
            err = lead(ctx, sg);
            if (err < 0)
                break;
            continue;
        }
        atomio__shared_stage_wait(st);
    }
    if (!err && sg->error)
        err = sg->error;
    atomio__shared_unlock(st);
    return err;
}

int
atomio__stage_read(atomio_file *f, uint64_t page_no, void *page)
{
    atomio_ctx *ctx = f->ctx;
    if (!atomio__stage_on(ctx) || atomio__store_check(ctx) == ATOMIO_E_INVAL)
        return 0;
    struct atomio_store *st = ctx->store;
    struct atomio_stage *sg = atomio__shared_stage(st);
    if (!sg)
        return 0;
    int hit = 0;
    atomio__shared_lock(st);
    if (sg->head != sg->tail) {
        uint32_t i = newest(sg, f->file_id, page_no, NONE);
        if (i != NONE && sg->slots[i].page_size == f->page_size) {
            memcpy(page, slot_data(sg, i), f->page_size);
            hit = 1;
        }
    }
    atomio__shared_unlock(st);
    if (hit) {
        ATOMIO_COUNT(&f->stats, staged_reads, 1);
        ATOMIO_COUNT(&ctx->stats, staged_reads, 1);
    }
    return hit;
}

int
atomio__stage_close(atomio_ctx *ctx)
{
    if (!atomio__stage_on(ctx) || atomio__store_check(ctx) == ATOMIO_E_INVAL)
        return 0; /* a ctx inherited across fork(): the parent still has them */
    if (!atomio__shared_leave_unless_last(ctx->store))
        return 0; /* another context of the instance puts them in place later */
    return atomio__stage_flush(ctx);
}

uint64_t
atomio__stage_count(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    struct atomio_stage *sg = st ? atomio__shared_stage(st) : NULL;
    if (!sg)
        return 0;
    atomio__shared_lock(st);
    uint64_t n = sg->head - sg->tail;
    atomio__shared_unlock(st);
    return n;
}
