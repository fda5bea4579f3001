/* SPDX-License-Identifier: MIT */
/*
 * atomio_uring.h -- bring-your-own-ring: untorn page writes inside the engine's own io_uring.
 *
 * Engines that run their own asynchronous I/O (PostgreSQL 18 io_method=io_uring, InnoDB or
 * MariaDB native AIO on io_uring) keep their ring. libatomio fills their submission queue
 * entries (SQEs) with the write it would have issued itself -- opcode, fd, offset, length and
 * rw_flags for the file's path -- and judges their completions (CQE results) with the same
 * failure model as atomio_write(). Doublewrite files get a staged protocol the engine drives
 * step by step from its ring.
 *
 * This header declares struct io_uring_sqe only opaquely: include <linux/io_uring.h> (kernel
 * headers 5.6 or later) or <liburing.h> before using the SQE you pass in. libatomio itself
 * does not need liburing for these functions: the SQE layout is the kernel's ABI.
 *
 * What libatomio writes into an SQE: every field of the 64-byte entry is set as
 * io_uring_prep_write() would set it, except user_data, which is the engine's and is never
 * touched. The engine may afterwards add sqe->flags IOSQE_IO_LINK, IOSQE_IO_DRAIN or
 * IOSQE_ASYNC and a personality, but not IOSQE_CQE_SKIP_SUCCESS (every completion must be
 * reported) nor IOSQE_FIXED_FILE (registered files are not supported). It must not change
 * opcode, fd, off, addr, len or rw_flags, and must never turn the entry into
 * IORING_OP_WRITE_FIXED: the kernel rejects RWF_ATOMIC on registered buffers with EINVAL.
 *
 * Every prepared SQE must be submitted and its result reported back exactly once
 * (atomio_complete_write(), atomio_doublewrite_complete_store(),
 * atomio_doublewrite_complete_store_sync(), atomio_doublewrite_complete_inplace()), in whatever
 * order the CQEs arrive. On error a prep function turns the SQE into IORING_OP_NOP (user_data
 * kept), so an entry already taken from the ring can be submitted harmlessly. The files (and the
 * ctx) must stay open until every SQE prepared for them has been reported: the SQE names their
 * descriptors.
 */
#ifndef ATOMIO_URING_H
#define ATOMIO_URING_H

#include "atomio.h"

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring_sqe; /* the kernel's SQE: <linux/io_uring.h> or <liburing.h> */

/* ------------------------------------------------------------------------------------------ */
/* Atomic and unsafe files: one SQE per page.                                                  */

/**
 * atomio_prep_write() -- fill the engine's SQE for an untorn write of one page.
 *
 * Runs the same checks as atomio_write() (handle, state, range, buffer alignment), then fills
 * @sqe with IORING_OP_WRITE of page_size bytes from @page at page_no x page_size on the file's
 * fd, with rw_flags:
 *   - DIRECT_ATOMIC: RWF_ATOMIC, plus RWF_DSYNC with ATOMIO_WRITE_DSYNC or ATOMIO_FILE_DSYNC;
 *     @page must be aligned to the file's DIO memory alignment (atomio_page_alloc() buffers are);
 *   - BUFFERED_ATOMIC: RWF_ATOMIC | RWF_DSYNC always. No bounce copy is made (nobody would free
 *     it: the engine's ring owns the I/O), so @page must be an atomio_page_alloc() buffer --
 *     pre-faulted, so the kernel's copy cannot fault half-way and come back short. A buffer not
 *     aligned to max(page_size, 4096) cannot be one and gets ATOMIO_E_NO_COPY;
 *   - UNSAFE: a plain write (no RWF_ATOMIC; RWF_DSYNC as for DIRECT_ATOMIC), so an engine can
 *     measure what protection costs on its own ring. Not torn-write safe, like the path.
 * A DOUBLEWRITE file needs the staged protocol below: ATOMIO_E_NEEDS_DOUBLEWRITE.
 *
 * @page must stay unchanged until the completion has been reported. Report the CQE with
 * atomio_complete_write(f, cqe->res, page_size).
 *
 * @param flags ATOMIO_WRITE_DSYNC or 0.
 * @return 0; ATOMIO_E_NEEDS_DOUBLEWRITE; ATOMIO_E_INVAL (NULL f, sqe or page; unknown flags),
 *         ATOMIO_E_RANGE, ATOMIO_E_UNALIGNED, ATOMIO_E_NO_COPY, ATOMIO_E_READ_ONLY,
 *         ATOMIO_E_CLOSED, ATOMIO_E_FAILED. On error the SQE (if not NULL) is an IORING_OP_NOP.
 * Thread-safe; concurrent writes to the same page are the engine's to serialize. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_prep_write(atomio_file *f, struct io_uring_sqe *sqe,
                                                  uint64_t page_no, const void *page,
                                                  uint32_t flags);

/**
 * atomio_complete_write() -- apply the failure model to the completion of an SQE prepared by
 * atomio_prep_write().
 *
 * @param cqe_res the CQE's res field.
 * @param len the length the SQE asked for (the file's page size).
 * @return
 *   - 0: the whole page was written (counted in the file's and the ctx's stats; the latency
 *     histogram is left alone, the engine's ring owns the timing);
 *   - ATOMIO_E_SHORT_WRITE: 0 <= cqe_res < len; the page may be torn and the file is now
 *     failed (every later write and sync returns ATOMIO_E_FAILED until it is closed and the
 *     ctx recovered). Never resubmit the tail;
 *   - ATOMIO_E_NEEDS_DOUBLEWRITE: the atomic write returned EOPNOTSUPP or ENOSPC, so nothing
 *     was written; the file has been switched to DOUBLEWRITE (a runtime downgrade, counted and
 *     visible in atomio_file_get_info()). Rewrite the page through atomio_doublewrite_stage(), or
 *     atomio_write(). Also after an EINVAL when the re-probe finds the file no longer takes its
 *     atomic path;
 *   - -EAGAIN: nothing was written; prepare the page again with atomio_prep_write() and resubmit.
 *     Returned once per file after the first EINVAL, when the library re-probed the file and
 *     it still takes its path (the kernel's -EAGAIN is passed through with the same meaning);
 *   - ATOMIO_E_GEOMETRY: a second EINVAL on the file: the library's geometry is wrong;
 *   - -EOPNOTSUPP / -ENOSPC as they are when the ctx has no doublewrite store;
 *   - any other -errno from the CQE (EIO, EFBIG, ECANCELED...) as it is;
 *   - ATOMIO_E_INVAL (NULL f, len other than the page size, cqe_res > len), ATOMIO_E_CLOSED:
 *     nothing judged.
 * Completions of one file may be reported from any thread, in any order. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_complete_write(atomio_file *f, int cqe_res, uint32_t len);

/* ------------------------------------------------------------------------------------------ */
/* Doublewrite files: a staged batch the engine drives from its ring.                          */
/* Experimental (see atomio.h): define ATOMIO_EXPERIMENTAL to use it.                          */

#ifdef ATOMIO_EXPERIMENTAL

/**
 * A staged doublewrite batch: the doublewrite protocol of atomio_write_batch() cut into steps
 * the engine drives from its ring. One implementation serves both (store/batch.c), so the
 * invariants recovery relies on hold the same way. The steps, in order (out of order:
 * ATOMIO_E_SEQUENCE, and the batch is unchanged):
 *   1. atomio_doublewrite_stage(): a store record is reserved and the pages copied into it with
 *      their checksums (the engine's buffers are free again when it returns);
 *   2. atomio_doublewrite_prep_store(): one SQE writing the whole batch to the store; report its
 * CQE with atomio_doublewrite_complete_store();
 *   3. atomio_doublewrite_prep_store_sync(): the durability step, an IORING_OP_FSYNC (datasync) SQE
 * on the store file; report it with atomio_doublewrite_complete_store_sync(). It also counts as a
 * group commit for every other record written before it was issued;
 *   4. atomio_doublewrite_prep_inplace() for every entry i in [0, n): the in-place writes, all in
 * flight together, from the batch's own copy; report each with
 * atomio_doublewrite_complete_inplace();
 *   5. atomio_doublewrite_done(): fdatasync of every data file written (or, with
 *      ATOMIO_DOUBLEWRITE_DEFERRED, left to the engine's atomio_sync()), the record released
 *      (or left to be released by those syncs); the batch is freed.
 * atomio_doublewrite_abandon() gives a batch up before step 4.
 * Calls on one batch may come from different threads (the library serializes them), but
 * atomio_doublewrite_done() and atomio_doublewrite_abandon() free it: nothing may race with those
 * two.
 */
typedef struct atomio_staged_batch atomio_doublewrite_batch;

/**
 * atomio_doublewrite_stage() -- start a doublewrite batch of @n pages.
 *
 * Every entry's file must belong to @ctx, be writable and currently on the DOUBLEWRITE path
 * (atomio_prep_write() or atomio_complete_write() said ATOMIO_E_NEEDS_DOUBLEWRITE); a
 * (file, page) may appear once per batch, and the batch must fit one store record. Either
 * every entry is staged or none: on error each entry's result says what was wrong with it (0
 * for entries that were fine) and no batch exists. Never waits for other batches: when the
 * store has no room until batches in flight finish, it returns -EAGAIN (finish one, then stage
 * again).
 *
 * @param w entries (file, page_no, page); each result is set. The page bytes are copied.
 * @param n 1 .. what fits a record (at most ctx opts doublewrite_batch_pages pages of
 *        doublewrite_max_page_size bytes).
 * @param flags 0.
 * @param out receives the batch.
 * @return 0; -EAGAIN (no room yet); ATOMIO_E_INVAL (NULL arguments, n == 0, flags, an entry
 *         of a file that is not on DOUBLEWRITE or of another ctx, a duplicate page);
 *         ATOMIO_E_NO_DOUBLEWRITE (no store); ATOMIO_E_STORE_FULL (the pages do not fit one
 *         record, or records kept for recovery after failed in-place writes fill the store:
 *         nothing frees them until atomio_ctx_recover()); ATOMIO_E_STORE_FAILED (the store
 *         failed earlier); ATOMIO_E_SEQUENCE (the store holds copies from before a crash: run
 *         atomio_ctx_recover() first); the per-entry
 *         codes of atomio_write() (ATOMIO_E_RANGE, ATOMIO_E_FAILED, ATOMIO_E_CLOSED,
 *         ATOMIO_E_READ_ONLY); -ENOMEM. Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_stage(atomio_ctx *ctx, atomio_page_write *w,
                                                         size_t n, uint32_t flags,
                                                         atomio_doublewrite_batch **out);

/**
 * atomio_doublewrite_prep_store() -- fill @sqe with the batch's store write (IORING_OP_WRITE of the
 * whole batch, one sequential write). Once per batch, right after atomio_doublewrite_stage().
 * @return 0, ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_prep_store(atomio_doublewrite_batch *b,
                                                              struct io_uring_sqe *sqe);

/**
 * atomio_doublewrite_complete_store() -- report the store write's CQE result.
 * @return 0: go on with atomio_doublewrite_prep_store_sync(); otherwise the batch is dead (nothing
 * was written in place, the data pages are intact) and must be abandoned: the CQE's -errno, or
 * ATOMIO_E_STORE_FAILED for a short store write (either way the store takes no more records until
 * the ctx is reopened); ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_complete_store(atomio_doublewrite_batch *b,
                                                                  int cqe_res);

/**
 * atomio_doublewrite_prep_store_sync() -- fill @sqe with the durability step: IORING_OP_FSYNC with
 * IORING_FSYNC_DATASYNC on the store file. Only after atomio_doublewrite_complete_store() returned
 * 0 (submitting it together with an unfinished store write would not order them).
 * @return 0, ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_prep_store_sync(atomio_doublewrite_batch *b,
                                                                   struct io_uring_sqe *sqe);

/**
 * atomio_doublewrite_complete_store_sync() -- report the store fsync's CQE result.
 * @return 0: the copies are durable, the in-place writes may start; the CQE's -errno: the store
 *         is failed for good (like a data file after a failed fdatasync: atomio_write() and
 *         atomio_doublewrite_stage() return ATOMIO_E_STORE_FAILED until the ctx is reopened) and
 * the batch must be abandoned; ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_complete_store_sync(atomio_doublewrite_batch *b,
                                                                       int cqe_res);

/**
 * atomio_doublewrite_prep_inplace() -- fill @sqe with the in-place write of entry @i
 * (IORING_OP_WRITE of the batch's own copy of the page, so the engine's buffer is not needed). Once
 * per entry, after the store sync completed.
 * @return 0; ATOMIO_E_SEQUENCE (store copy not durable yet, or entry already prepared);
 *         ATOMIO_E_RANGE (i >= n); ATOMIO_E_INVAL. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_prep_inplace(atomio_doublewrite_batch *b,
                                                                size_t i, struct io_uring_sqe *sqe);

/**
 * atomio_doublewrite_complete_inplace() -- report the CQE result of entry @i's in-place write,
 * judged as atomio_write() judges one: 0 (page written); ATOMIO_E_SHORT_WRITE or an I/O error (the
 * file is failed; the page may be torn and its store copy is kept for recovery); -ENOSPC, -EDQUOT,
 * -EFBIG (nothing written, the page is intact, the file stays usable); ATOMIO_E_RANGE,
 * ATOMIO_E_SEQUENCE (no in-place write of entry i in flight), ATOMIO_E_INVAL. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_complete_inplace(atomio_doublewrite_batch *b,
                                                                    size_t i, int cqe_res);

/**
 * atomio_doublewrite_done() -- finish the batch once every in-place write has been reported:
 * fdatasync each data file that took a page (blocking; in deferred mode only for ATOMIO_FILE_DSYNC
 * files, the engine's atomio_sync() does the rest), release the record or leave it to those syncs,
 * count pages and bytes as atomio_write_batch() does, free the batch. When a file
 * failed (short or failed in-place write, failed fdatasync) its pages' store copies are kept
 * valid until atomio_ctx_recover(), so recovery can repair them.
 * @param results NULL, or n ints receiving each entry's final result (0, or why that page is
 *        not written: its in-place error, or the failed fdatasync of its file).
 * @return the number of entries written (n when all succeeded); ATOMIO_E_SEQUENCE (an entry
 *         not prepared or still in flight: the batch stays valid); ATOMIO_E_INVAL. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_doublewrite_done(atomio_doublewrite_batch *b, int *results);

/**
 * atomio_doublewrite_abandon() -- give a batch up before any in-place write was prepared, for
 * instance after its store write or fsync failed. If the store write may have reached the store,
 * its record is voided first (its header zeroed, durably; blocking), so recovery can never bring
 * back pages the engine gave up. Frees the batch. NULL is a no-op.
 * @return 0; ATOMIO_E_SEQUENCE (the store write or fsync is in flight, or in-place writes
 *         started: finish with atomio_doublewrite_done(); the batch stays valid);
 *         ATOMIO_E_STORE_FAILED when voiding failed (the store is then failed; the batch is
 *         freed). Since 0.1.
 */
ATOMIO_API int atomio_doublewrite_abandon(atomio_doublewrite_batch *b);

#endif /* ATOMIO_EXPERIMENTAL */

#ifdef __cplusplus
}
#endif

#endif /* ATOMIO_URING_H */
