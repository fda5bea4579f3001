/* SPDX-License-Identifier: MIT */
/*
 * store/store.h -- the doublewrite store's private state, shared by store/store.c (lifecycle,
 * segments, manifest), store/batch.c (the batch protocol) and store/recover.c (recovery, inspection).
 *
 * Invariants the protocol keeps (docs/format.md, "Why recovery never rolls a page back"):
 *   - a segment is claimed by one batch at a time; its bytes are reused only after the batch's
 *     in-place writes are durable and its header has been retired (zeroed);
 *   - a retire write is issued before the batch's write call returns; the next store write's
 *     fdatasync makes it durable before any newer copy of the same page can be written in
 *     place, so the newest valid copy of a page is never older than its durable content;
 *   - a batch whose in-place writes failed is kept valid ("held") until recovery, and its file
 *     ids are refused until then.
 */
#ifndef ATOMIO_DW_STORE_H
#define ATOMIO_DW_STORE_H

#include "atomio_internal.h"
#include "store/format.h"

struct atomio_dw_seg {
    uint32_t index;
    uint64_t off; /* file offset of the segment */
    uint8_t *buf; /* seg_size bytes aligned to ATOMIO_DW_ALIGN, allocated on first use */
    bool held;    /* valid batch kept for recovery */
    struct atomio_dw_seg *next_free;
};

/* One taker of deferred retires while its writes are in flight (store/store.c). */
struct atomio_retire_take {
    uint64_t ticket;
    struct atomio_retire_take *next;
};

struct atomio_dw_manifest_ent {
    uint64_t file_id;
    char *path;
};

struct atomio_store {
    char *path;    /* store file path (recovery reads it through the page cache) */
    int fd;        /* store file */
    int mfd;       /* manifest file */
    bool o_direct; /* store fd opened O_DIRECT */
    struct atomio_dw_geom g;
    struct atomio_dw_seg *segs;

    pthread_mutex_t lock;           /* free list, held state, held ids, deferred retires */
    pthread_cond_t cond;            /* a segment was released, or a take of retires ended */
    struct atomio_dw_seg *free_top; /* LIFO: a single writer keeps reusing a warm buffer */
    /* Finished batches whose retire is not written yet (see "deferred retires" in
     * store/store.c): neither busy nor free. */
    struct atomio_dw_seg *pending;
    uint64_t take_next;                 /* tickets handed to takers of pending retires */
    struct atomio_retire_take *takes;   /* takers whose retire writes are in flight */
    uint32_t nbusy;
    uint32_t nheld;
    uint64_t *held_ids; /* file ids refused until recovery */
    size_t nheld_ids, cap_held_ids;
    bool needs_recovery; /* live batches found at open; writes refused until recovery */

    _Atomic uint64_t next_seq;
    _Atomic bool failed;         /* a store write or fdatasync failed: the store is unusable */
    _Atomic bool retire_pending; /* retire writes not yet made durable by an fdatasync */

    pthread_mutex_t mlock; /* manifest */
    struct atomio_dw_manifest_ent *man;
    size_t nman, cap_man;
    uint64_t man_len; /* append offset (valid prefix) */

    /* Test observability: most segments claimed at once. */
    _Atomic uint32_t busy_max;
};

/*
 * One run of the batch protocol over a single segment, as a state machine of steps shared by
 * the library-driven atomio__dw_write() and the staged API an engine drives from its own ring
 * (byor.c). The caller provides the arrays (cnt entries each) and items; the steps, in order:
 *   atomio__dw_run_begin()          claim a segment, order the slots, encode the batch
 *   atomio__dw_run_store_io()       the one sequential store write ...
 *   atomio__dw_run_store_written()  ... and its result
 *   (durability: atomio__store_sync(), or atomio__store_sync_begin()/_end() around an fsync
 *    issued elsewhere)
 *   atomio__dw_run_inplace_ios()    the in-place writes (ios[k] for slot k) ...
 *   atomio__dw_run_inplace_done()   ... each one's result, judged into its item
 *   atomio__dw_run_finish()         fdatasync the files, retire (or rescue), release, count
 * atomio__dw_run_abandon() retires durably and releases a run whose in-place writes never
 * started; atomio__dw_run_release_unwritten() releases one whose store write was never issued.
 */
struct atomio_dw_run {
    atomio_ctx *ctx;
    struct atomio_dw_item *items;
    size_t *idx; /* items in this batch, in slot order (page size descending) */
    uint32_t cnt;
    uint32_t *slot_off; /* page bytes of slot k in the segment buffer */
    struct atomio_io *ios;
    const uint8_t **src; /* slot k's bytes: the caller's page, after encoding the copy in the
                          * segment or (zero_copy) still the caller's page */
    atomio_file **files; /* distinct files of the batch */
    /* zero_copy: the caller keeps the pages unchanged until the run finishes
     * (ATOMIO_WRITE_STABLE_PAGES), so aligned pages are written from where they are, the
     * store write being vectored over iov[0..iovcnt) (room for cnt + 2). Never for the staged
     * API, whose caller's buffers are free once atomio_doublewrite_stage() returns. */
    bool zero_copy;
    struct iovec *iov;
    uint32_t iovcnt; /* 0: the store write is the segment buffer alone */
    uint32_t nfiles;
    struct atomio_dw_seg *seg;
    uint64_t seq;
    uint64_t len; /* padded length of the store write */
    uint64_t t0;
};

/* 0, or why no segment: -EAGAIN (none free and !wait), ATOMIO_E_STORE_FULL (every segment
 * held for recovery), -ENOMEM. */
int atomio__dw_run_begin(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait);
void atomio__dw_run_store_io(const struct atomio_dw_run *r, struct atomio_io *io);
/* 0, or the store write's error (-errno, ATOMIO_E_STORE when short): then abandon. */
int atomio__dw_run_store_written(struct atomio_dw_run *r, ssize_t res);
void atomio__dw_run_inplace_ios(struct atomio_dw_run *r);
/* Judge ios[k] (res set) into its item; returns the item's result. */
int atomio__dw_run_inplace_done(struct atomio_dw_run *r, uint32_t k);
/* Returns the number of items written. */
size_t atomio__dw_run_finish(struct atomio_dw_run *r);
/* 0, or the retire/sync error (the store is then failed). */
int atomio__dw_run_abandon(struct atomio_dw_run *r);
void atomio__dw_run_release_unwritten(struct atomio_dw_run *r);
/* 0 if the item may go through the store, else its error. */
int atomio__dw_precheck(atomio_ctx *ctx, const struct atomio_dw_item *it);
/* Live batches from before a crash: no new batch until recovery has run. */
bool atomio__dw_needs_recovery(atomio_ctx *ctx);

/* Path of file id in the manifest (NULL if unknown). Caller holds mlock. */
const char *atomio__store_path_of(struct atomio_store *st, uint64_t file_id);
/* Zero the header of segment seg (retire its batch); no sync. */
int atomio__store_retire(struct atomio_store *st, struct atomio_dw_seg *seg);
/* Deferred retires (store/store.c). retire_later: the batch in the claimed seg is finished (its
 * pages durable in place); its retire is written by a later store write step, and the segment
 * is free again once it is. take: every pending retire (NULL if none), registering t with a
 * ticket if any; *snap: the newest ticket handed out. retire_io: the write that retires seg.
 * took: the taken writes completed (ok) or not; their segments become free. wait: until every
 * take with a ticket <= snap has ended, so an fdatasync after it covers their writes.
 * flush: take and write them here, synchronously, then wait; 0 or the write error. */
void atomio__store_retire_later(atomio_ctx *ctx, struct atomio_dw_seg *seg);
struct atomio_dw_seg *atomio__store_take_retires(struct atomio_store *st,
                                                 struct atomio_retire_take *t, uint64_t *snap);
void atomio__store_retire_io(const struct atomio_store *st, const struct atomio_dw_seg *seg,
                             struct atomio_io *io);
void atomio__store_took_retires(struct atomio_store *st, struct atomio_retire_take *t,
                                struct atomio_dw_seg *taken, bool ok);
void atomio__store_wait_retires(struct atomio_store *st, uint64_t snap);
/* Write the taken retires here, one by one and synchronously, then took(); 0 or the error. */
int atomio__store_write_retires(struct atomio_store *st, struct atomio_retire_take *t,
                                struct atomio_dw_seg *taken);
int atomio__store_flush_retires(atomio_ctx *ctx);
/* fdatasync the store file; a failure fails the store for good. */
int atomio__store_sync(atomio_ctx *ctx);
/* The same, split around an fdatasync issued elsewhere (an engine's io_uring fsync): begin
 * before it is issued, end with its result (counted; a failure fails the store). */
void atomio__store_sync_begin(atomio_ctx *ctx);
int atomio__store_sync_end(atomio_ctx *ctx, int r);
/* Segment claim/release (store/store.c). claim waits for a free segment if wait is set (a caller
 * already holding one must not: it could wait for itself, and a staged run must never block).
 * On NULL, *err (may be NULL) is -EAGAIN (none free, !wait, some busy and so coming back),
 * ATOMIO_E_STORE_FULL (every segment held for recovery) or -ENOMEM. */
struct atomio_dw_seg *atomio__store_claim(atomio_ctx *ctx, bool wait, int *err);
void atomio__store_release(atomio_ctx *ctx, struct atomio_dw_seg *seg, bool held);
/* Refuse writes to file_id until recovery. */
int atomio__store_hold_id(struct atomio_store *st, uint64_t file_id);
bool atomio__store_id_held(struct atomio_store *st, uint64_t file_id);
/* After a successful recovery: every segment free, no held ids, writes allowed. */
void atomio__store_reset_after_recovery(struct atomio_store *st);
/* Read the whole of fd at off into buf, zero-filling past end of file. 0 or -errno. */
int atomio__pread_full(int fd, void *buf, size_t len, uint64_t off);

#ifdef ATOMIO_TESTING
/* Sabotage hook for the crash simulator's self-test: skip making the store write durable. */
extern _Atomic int atomio__test_skip_dw_durability;
/* Segment reuse order: 0 last-freed-first (production), 1 oldest-first, 2 scattered. */
extern _Atomic int atomio__test_dw_policy;
/* Non-zero: atomio_write_batch() writes every batch as pages + header (store/batch.c,
 * store_write()) on any submitter, so the crash simulator sees the two writes. */
extern _Atomic int atomio__test_dw_split;
/* Non-zero: batches are never retired, as if every call crashed just before its retire, so a
 * test can look at what a real store write left on disk (through recovery). */
extern _Atomic int atomio__test_dw_keep_batches;
#endif

#endif /* ATOMIO_DW_STORE_H */
