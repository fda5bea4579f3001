/* SPDX-License-Identifier: MIT */
/*
 * store/store.h -- the doublewrite store's private state, shared by store/store.c (open,
 * header, manifest), store/shared.c (the state every process of the instance shares: the
 * ring's head and tail, record descriptors, file syncs, group commit), store/batch.c (the
 * record protocol) and store/recover.c (recovery, inspection).
 *
 * Invariants (docs/design.md, "The doublewrite store"; docs/format.md, "Why recovery never
 * rolls a page back"):
 *   - every copy gets an LSN from the instance-wide head under the shared lock, so a page
 *     written by one process after another always has the newer copy;
 *   - a record is durable (its group commit's fdatasync completed) before any of its in-place
 *     writes is issued;
 *   - a record's bytes are overwritten only after it is released (its in-place writes are
 *     durable, by a sync of every file it touched) and after the store header's durable tail
 *     has passed every older copy in the overwritten range, so recovery never applies a copy
 *     older than a page's durable content;
 *   - a record whose in-place writes failed is held until recovery.
 */
#ifndef ATOMIO_STORE_H
#define ATOMIO_STORE_H

#include "atomio_internal.h"
#include "store/format.h"

/* A record in the making: a private, 4 KiB-aligned buffer and, once reserved, its place in
 * the ring. The record's bytes start at buf + hdr_room - table_bytes(count), so the header
 * and slot table sit right before the pages and the pages are 4 KiB-aligned in memory. */
struct atomio_dw_rec {
    uint8_t *buf;
    size_t cap;          /* bytes at buf */
    size_t hdr_room;     /* multiple of 4096 before the pages */
    uint64_t lsn;        /* first byte of the record in the log */
    uint64_t len;        /* record length (multiple of ATOMIO_DW_GRANULE) */
    uint64_t desc;       /* its descriptor's sequence number in the shared state */
    uint64_t written_at; /* group-commit counter when its write completed */
    struct atomio_dw_rec *next_free;
};

/* The state every attached process maps (store/shared.c). */
struct atomio_shared;

struct atomio_dw_manifest_ent {
    uint64_t file_id;
    uint64_t from_lsn;
    uint32_t flags; /* ATOMIO_DW_MAN_* */
    char *path;     /* as recorded */
};

struct atomio_store {
    char *dir;     /* the store directory */
    char *path;    /* store file path (recovery reads it through the page cache) */
    int fd;        /* store file */
    int mfd;       /* manifest file */
    int lockfd;    /* lock file: an open-file-description lock marks this process attached */
    bool o_direct; /* store fd opened O_DIRECT */
    pid_t pid;     /* the process that opened it: a forked child must not use it */
    struct atomio_dw_geom g;
    uint32_t batch_pages; /* record limits */
    uint32_t slots_max;
    uint64_t rec_bytes_max; /* page bytes a record holds at most */

    struct atomio_shared *sh;
    size_t sh_len;
    bool registered;     /* counted among the instance's attached processes */
    uint32_t proc_index; /* this process's entry in the shared table of processes */
    unsigned fork_gen;   /* fork_gen (store.c) when opened: a forked child sees another value */
    char shm_name[96];   /* "" when the shared state is anonymous (private instance) */

    pthread_mutex_t lock; /* free record buffers, held ids, discard set */
    struct atomio_dw_rec *free_recs;
    uint64_t *held_ids; /* file ids refused until recovery */
    size_t nheld_ids, cap_held_ids;
    uint64_t *discard_ids; /* file ids whose copies the next recovery drops */
    size_t ndiscard, cap_discard;
    bool first;                /* this process set the instance up (and may recover it) */
    bool doors_open;           /* ... and has let other processes attach */
    uint32_t headers_repaired; /* a damaged header copy was rewritten at open */

    _Atomic bool failed; /* a store write or fdatasync failed: the store is unusable */
    uint32_t test_lane;  /* tests only: the per-writer sabotage's lane and offset in it */
    uint64_t test_local_off;

    /* Manifest, as this process has read it (the file is shared; its length is in sh). */
    pthread_mutex_t mlock;
    struct atomio_dw_manifest_ent *man;
    size_t nman, cap_man;
    uint32_t *man_index; /* file id -> entry + 1, open addressing (store/manifest_map.c) */
    size_t man_index_cap;
    uint64_t man_read; /* bytes of the manifest read into man */
};

/* ---- the manifest as this process read it (store/manifest_map.c); callers hold mlock ---- */

/* The entry of file_id, or NULL. */
const struct atomio_dw_manifest_ent *atomio__man_find(const struct atomio_store *st,
                                                      uint64_t file_id);
/* Record m (the last record of an id wins). 0 or -ENOMEM. */
int atomio__man_set(struct atomio_store *st, const struct atomio_dw_man_rec *m);
/* Forget every entry; atomio__man_free() also releases the memory. */
void atomio__man_clear(struct atomio_store *st);
void atomio__man_free(struct atomio_store *st);

/* ---- the shared state (store/shared.c) ---------------------------------------------------- */

/* Attach to the instance behind the store (ctx opts instance): take the lock file and find
 * out whether this process is the first. The first then reads the store, creates the shared
 * state (atomio__shared_create), recovers and lets others in (atomio__shared_open_doors);
 * any other joins it (atomio__shared_join). ATOMIO_E_STORE_LOCKED when another instance, or
 * another open of a private one, holds the store. */
int atomio__shared_attach(atomio_ctx *ctx, struct atomio_store *st, bool *first);
int atomio__shared_create(atomio_ctx *ctx, struct atomio_store *st);
/* The shared state's name for the store whose file is open at fd: the store's uuid and the
 * file's identity, so a copy of a store (a restored backup) never meets the original's state. */
void atomio__shm_name(char out[96], const uint8_t uuid[16], int fd);
/* -EAGAIN: the first process went away before it was ready; drop the lock and attach again. */
int atomio__shared_join(atomio_ctx *ctx, struct atomio_store *st);
/* atomio__ofd_lock() -- take (F_RDLCK, F_WRLCK) or drop (F_UNLCK) the open-file-description
 * lock on the first byte of a lock file; @wait blocks until it is granted. 0 or -errno. */
int atomio__ofd_lock(int fd, short type, bool wait);

/* atomio__lock_open() -- open (creating) a lock file; the descriptor is listed so that a child
 * fork() makes closes its copy at once and never holds the store. fd or -errno. */
int atomio__lock_open(const char *path);
/* atomio__lock_close() -- drop the lock of a descriptor from atomio__lock_open(), unlist it,
 * close it. The unlock comes first, so a child forked by another thread meanwhile holds an
 * unlocked copy. */
void atomio__lock_close(int fd);
/* First process only, after recovery: the ring starts empty at head (tail = head). */
void atomio__shared_init_ring(struct atomio_store *st, uint64_t head, uint64_t durable_tail);
/* Let other processes attach (the first process, once the store is ready). */
int atomio__shared_open_doors(struct atomio_store *st);
void atomio__shared_detach(struct atomio_store *st, bool forked);
/* Lock and unlock the shared state (robust: a holder that died is recovered from). */
void atomio__shared_lock(struct atomio_store *st);
void atomio__shared_unlock(struct atomio_store *st);
uint64_t atomio__shared_head(struct atomio_store *st);
uint64_t atomio__shared_head_locked(struct atomio_store *st);
/* Files just fenced (durably): records waiting only for their syncs are released. Caller
 * holds the lock. */
void atomio__shared_fenced(struct atomio_store *st, const uint64_t *ids, size_t n);
/* Live copies from before a crash: set at open by the first process, cleared by recovery. */
void atomio__shared_set_needs_recovery(struct atomio_store *st, bool v);
bool atomio__shared_needs_recovery(struct atomio_store *st);
/* Processes attached (including this one). */
uint64_t atomio__shared_attached(struct atomio_store *st);
uint64_t atomio__shared_man_len(struct atomio_store *st);
void atomio__shared_set_man_len(struct atomio_store *st, uint64_t len);
void atomio__shared_counts(struct atomio_store *st, uint64_t *bytes, uint64_t *used,
                           uint64_t *attached);

/*
 * Reserve len bytes of the ring for a record touching files[0..nfiles): assigns rec->lsn and
 * rec->desc. Applies backpressure (syncs the oldest record's files) while the ring is full,
 * and waits for records in flight to finish, or with !wait returns -EAGAIN instead (a caller
 * that may hold those records itself). 0, ATOMIO_E_STORE_FULL (held records fill the ring),
 * ATOMIO_E_STORE_FAILED, -EAGAIN, -errno.
 */
int atomio__store_reserve(atomio_ctx *ctx, struct atomio_dw_rec *rec, atomio_file *const *files,
                          uint32_t nfiles, bool wait);
/* The same for a record of the files with these ids (write-behind's leader has no handles). */
int atomio__store_reserve_ids(atomio_ctx *ctx, struct atomio_dw_rec *rec, const uint64_t *ids,
                              uint32_t nfiles, bool wait);
/* The record's write completed (ok) or failed (then the caller abandons the run). */
void atomio__store_written(atomio_ctx *ctx, struct atomio_dw_rec *rec, bool ok);
/* Group commit: return once a store fdatasync begun after the record's write has completed.
 * 0 or the fdatasync's error (the store is then failed). */
int atomio__store_durable(atomio_ctx *ctx, struct atomio_dw_rec *rec);
/* The same, split around an fdatasync issued elsewhere (an engine's io_uring fsync): begin
 * before it is issued (returns its ticket), end with its result. */
uint64_t atomio__store_flush_begin(atomio_ctx *ctx);
int atomio__store_flush_end(atomio_ctx *ctx, uint64_t ticket, int r);
/* The record's in-place writes are done: release it now (its files are synced), or once
 * syncs of its files cover them (deferred), or hold it until recovery. */
enum atomio_rec_end { ATOMIO_REC_RELEASE, ATOMIO_REC_AWAIT_SYNC, ATOMIO_REC_HOLD };
void atomio__store_rec_end(atomio_ctx *ctx, struct atomio_dw_rec *rec, enum atomio_rec_end how);
/* Whether the shared state tracks the record's files (else its writer syncs them itself). */
bool atomio__store_rec_tracked(atomio_ctx *ctx, const struct atomio_dw_rec *rec);
/* Sync every file with copies waiting for a sync and release what that covers (ctx sync). */
int atomio__store_release_all(atomio_ctx *ctx);

/* For write-behind (store/stage.c): the staging in the shared mapping (NULL when the instance
 * does not write behind), this process's index in the table of processes, a wait channel of
 * its own (sleep with the lock held, then reap the dead; wake under the lock), and reaping. */
struct atomio_stage;
struct atomio_stage *atomio__shared_stage(struct atomio_store *st);
uint32_t atomio__shared_proc_self(struct atomio_store *st);
void atomio__shared_stage_wait(struct atomio_store *st);
void atomio__shared_stage_wake(struct atomio_store *st);
void atomio__shared_reap(struct atomio_store *st);
/* A context about to close: if another context of the instance stays attached, leave now
 * (it will flush the staging) and return false; the last one returns true and must flush. */
bool atomio__shared_leave_unless_last(struct atomio_store *st);

/* ---- write-behind (store/stage.c) --------------------------------------------------------- */

/* Bytes of shared memory the staging takes for these options (the instance's first process
 * sizes it), and their set-up in a zeroed region of that size. */
size_t atomio__stage_len(uint64_t write_behind_bytes, uint64_t ring_size, uint32_t max_page_size);
void atomio__stage_init(void *region, size_t len, uint32_t max_page_size);
/* Processes gone (gone[i] for table entry i): a page one was copying in is dropped (its write
 * never returned), a round one led is given back to be led again. Caller holds the shared
 * lock. Returns whether anything changed (then wake the staging waiters). */
bool atomio__stage_reap(struct atomio_stage *sg, const bool *gone);
/* Stage items[0..n) (prechecked: result 0), setting each result; returns how many staged. */
size_t atomio__stage_write(atomio_ctx *ctx, struct atomio_dw_item *items, size_t n,
                           uint32_t wflags);

/* ---- records (store/batch.c) -------------------------------------------------------------- */

/*
 * One run of the record protocol, as a state machine of steps shared by the library-driven
 * atomio__dw_write() and the staged API an engine drives from its own ring (byor.c). The
 * caller provides the arrays (cnt entries each) and items; the steps, in order:
 *   atomio__dw_run_begin()          reserve the record, order the slots, encode it
 *   atomio__dw_run_store_io()       the one sequential store write ...
 *   atomio__dw_run_store_written()  ... and its result
 *   (durability: atomio__store_durable(), or atomio__store_flush_begin()/_end() around an
 *    fdatasync issued elsewhere)
 *   atomio__dw_run_inplace_ios()    the in-place writes (ios[k] for slot k) ...
 *   atomio__dw_run_inplace_done()   ... each one's result, judged into its item
 *   atomio__dw_run_finish()         sync the files (or leave that to the engine), release
 * atomio__dw_run_abandon() gives up a run whose in-place writes never started.
 */
struct atomio_dw_run {
    atomio_ctx *ctx;
    struct atomio_dw_item *items;
    size_t *idx; /* items in this record, in slot order (page size descending) */
    uint32_t cnt;
    uint32_t *slot_off; /* page bytes of slot k, from the start of the record */
    struct atomio_io *ios;
    const uint8_t **src; /* slot k's bytes: the copy in the record buffer or (zero_copy)
                          * still the caller's page */
    atomio_file **files; /* distinct files of the record */
    /* zero_copy: the caller keeps the pages unchanged until the run finishes
     * (ATOMIO_WRITE_STABLE_PAGES), so aligned pages are written from where they are, the
     * store write being vectored over iov[0..iovcnt) (room for cnt + 2). Never for the staged
     * API, whose caller's buffers are free once atomio_doublewrite_stage() returns. */
    bool zero_copy;
    struct iovec *iov;
    uint32_t iovcnt; /* 0: the store write is the record buffer alone */
    uint32_t nfiles;
    struct atomio_dw_rec *rec;
    bool sync_requested; /* ATOMIO_WRITE_DSYNC or ATOMIO_FILE_DSYNC: sync before returning */
    uint64_t t0;
};

/* 0, or why no record: ATOMIO_E_STORE_FULL, ATOMIO_E_STORE_FAILED, -EAGAIN (!wait), -ENOMEM. */
int atomio__dw_run_begin(atomio_ctx *ctx, struct atomio_dw_run *r, bool wait);
void atomio__dw_run_store_io(const struct atomio_dw_run *r, struct atomio_io *io);
/* 0, or the store write's error (-errno, ATOMIO_E_STORE_FAILED when short): then abandon. */
int atomio__dw_run_store_written(struct atomio_dw_run *r, ssize_t res);
void atomio__dw_run_inplace_ios(struct atomio_dw_run *r);
/* Judge ios[k] (res set) into its item; returns the item's result. */
int atomio__dw_run_inplace_done(struct atomio_dw_run *r, uint32_t k);
/* Returns the number of items written. */
size_t atomio__dw_run_finish(struct atomio_dw_run *r);
/* Give the run up before its in-place writes; written: its store write may have happened. */
int atomio__dw_run_abandon(struct atomio_dw_run *r, bool written);
/* 0 if the item may go through the store, else its error. */
int atomio__dw_precheck(atomio_ctx *ctx, const struct atomio_dw_item *it);
/* Live records from before a crash: no new record until recovery has run. */
bool atomio__dw_needs_recovery(atomio_ctx *ctx);
/* Largest page bytes and slots one record may hold. */
bool atomio__dw_fits(const struct atomio_store *st, uint32_t count, uint64_t page_bytes);

/* ---- the ring, read back (store/recover.c) ------------------------------------------------- */

struct atomio_dw_scan_result {
    const void *g; /* the geometry scanned (set by the scan) */
    bool live;     /* a valid record at or above the durable tail */
    uint64_t head; /* end of the newest such record (0 if none) */
};
/* Find the live records: open uses it to decide whether recovery has work. */
int atomio__dw_scan_live(struct atomio_store *st, struct atomio_dw_scan_result *res);

/* ---- store file and manifest (store/store.c) ---------------------------------------------- */

/* A record buffer with room for page_bytes of pages and count slots (per process pool). */
struct atomio_dw_rec *atomio__store_rec_get(atomio_ctx *ctx, uint32_t count, uint64_t page_bytes);
void atomio__store_rec_put(atomio_ctx *ctx, struct atomio_dw_rec *rec);
/* Zero the record's header in the store, durably: its copies can never be applied. */
int atomio__store_void(atomio_ctx *ctx, const struct atomio_dw_rec *rec);
/* Write both header copies with the given durable tail, each made durable before the next. */
int atomio__store_write_headers(struct atomio_store *st, uint64_t tail);
/* The path of file_id as recorded (resolved against the data root when relative) into out;
 * 0, -ENOENT when the manifest does not know it. *from_lsn (may be NULL) gets the fence. */
int atomio__store_resolve(atomio_ctx *ctx, uint64_t file_id, char *out, size_t len,
                          uint64_t *from_lsn);
/* Read the manifest records other processes appended since this one last looked. Caller
 * holds the shared lock. */
int atomio__store_man_refresh(struct atomio_store *st);
/* The next recovery drops copies of file_id (counted). */
bool atomio__store_id_discarded(struct atomio_store *st, uint64_t file_id);
/* Refuse writes to file_id until recovery. */
int atomio__store_hold_id(struct atomio_store *st, uint64_t file_id);
bool atomio__store_id_held(struct atomio_store *st, uint64_t file_id);
/* After a successful recovery: no held ids, writes allowed. */
void atomio__store_reset_after_recovery(struct atomio_store *st);
/* Read the whole of fd at off into buf, zero-filling past end of file. 0 or -errno. */
int atomio__pread_full(int fd, void *buf, size_t len, uint64_t off);

#ifdef ATOMIO_TESTING
/* Sabotage hook for the crash simulator's self-test: skip making the store write durable. */
extern _Atomic int atomio__test_skip_dw_durability;
/* Sabotage hook: each writer orders and places its copies in a lane of its own instead of by
 * the shared LSN (the simulator must catch the rollback this allows between processes). */
extern _Atomic int atomio__test_dw_local_order;
/* Non-zero: atomio_write_batch() writes every record as pages + header (store/batch.c,
 * store_write()) on any submitter, so the crash simulator sees the two writes. */
extern _Atomic int atomio__test_dw_split;
/* Non-zero: records are never released, as if every call crashed just before its release, so
 * a test can look at what a real store write left on disk (through recovery). */
extern _Atomic int atomio__test_dw_keep_batches;
/* Non-zero: instances created from now on track this many data files at once instead of
 * 4096, so a test can fill the file table and watch its entries recycled. */
extern _Atomic int atomio__test_file_slots;
/* Non-zero: instances created from now on take this many processes at once instead of 1024. */
extern _Atomic int atomio__test_procs;
/* Counted up by every look for dead processes (a read of /proc per attached process), so a
 * test can see how often waiting processes look. */
extern _Atomic unsigned atomio__test_reap_scans;
/* Called by atomio__lock_close() just before the close, where a fork() by another thread of
 * the engine would copy the descriptor: a test forks there. */
extern void (*atomio__test_lock_closing)(void);
#endif

#endif /* ATOMIO_STORE_H */
