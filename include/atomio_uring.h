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
 * (atomio_complete_write(), atomio_dw_complete_store(), atomio_dw_complete_inplace()), in
 * whatever order the CQEs arrive. On error a prep function turns the SQE into IORING_OP_NOP
 * (user_data kept), so an entry already taken from the ring can be submitted harmlessly.
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
 *     visible in atomio_file_info_get()). Rewrite the page through atomio_dw_stage(), or
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

/**
 * A staged doublewrite batch. Its steps, in order (out of order: ATOMIO_E_SEQUENCE):
 *   1. atomio_dw_stage(): the pages are copied into a reserved store segment with their
 *      checksums (the engine's buffers are free again when it returns);
 *   2. atomio_dw_prep_store(): one SQE writing the whole batch to the store with RWF_DSYNC,
 *      so its completion is also the durability step; report it with
 *      atomio_dw_complete_store();
 *   3. atomio_dw_prep_inplace() for every page i in [0, n): the in-place writes, all in flight
 *      together; report each with atomio_dw_complete_inplace();
 *   4. atomio_dw_done(): fdatasync of every data file touched (skipped with
 *      ATOMIO_DW_INPLACE_DSYNC), then the segment is released for reuse.
 * Calls on one batch may come from different threads (the library serializes them), but
 * atomio_dw_done() and atomio_dw_abandon() free the batch: nothing may race with them.
 */
typedef struct atomio_dw_batch atomio_dw_batch;

/* atomio_dw_stage() flags */
#define ATOMIO_DW_INPLACE_DSYNC 0x1u /* in-place SQEs carry RWF_DSYNC; atomio_dw_done() then
                                        needs no fdatasync (it never blocks) */

/**
 * atomio_dw_stage() -- start a doublewrite batch of @n pages.
 *
 * Every entry's file must belong to @ctx, be writable and currently on the DOUBLEWRITE path
 * (atomio_prep_write() or atomio_complete_write() said ATOMIO_E_NEEDS_DOUBLEWRITE); a
 * (file, page) may appear once per batch. Either every entry is staged, or none: on error each
 * entry's result says what was wrong with it (0 for entries that were fine) and no batch exists.
 * Waits for a free store segment when all are in use.
 *
 * @param w entries (file, page_no, page); result is set. The page bytes are copied.
 * @param n 1 .. the store's batch size (ctx opts dblwr_batch_pages).
 * @param flags ATOMIO_DW_* or 0.
 * @param out receives the batch.
 * @return 0; ATOMIO_E_INVAL (NULL arguments, n == 0, unknown flags, an entry of a file that is
 *         not DOUBLEWRITE, of another ctx, or a duplicate), ATOMIO_E_NO_DOUBLEWRITE (no store),
 *         ATOMIO_E_STORE_FULL (n or a page size exceeds a segment), the per-entry codes of
 *         atomio_write() (ATOMIO_E_RANGE, ATOMIO_E_FAILED, ...), -ENOMEM. Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_stage(atomio_ctx *ctx, atomio_page_write *w, size_t n,
                                                uint32_t flags, atomio_dw_batch **out);

/**
 * atomio_dw_prep_store() -- fill @sqe with the batch's store write (IORING_OP_WRITE,
 * RWF_DSYNC). Once per batch, right after atomio_dw_stage().
 * @return 0, ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_prep_store(atomio_dw_batch *b, struct io_uring_sqe *sqe);

/**
 * atomio_dw_complete_store() -- report the store write's CQE result.
 * @return 0: the copies are durable, the in-place writes may start; ATOMIO_E_SHORT_WRITE or the
 *         CQE's -errno: the batch is dead (nothing was written in place, the data pages are
 *         intact): abandon it; ATOMIO_E_INVAL, ATOMIO_E_SEQUENCE. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_complete_store(atomio_dw_batch *b, int cqe_res);

/**
 * atomio_dw_prep_inplace() -- fill @sqe with the in-place write of entry @i (IORING_OP_WRITE
 * from the batch's own copy of the page, so the engine's buffer is not needed). Allowed once
 * the store write completed; again for an entry whose previous in-place write failed with an
 * error other than a short write (the durable copy makes the retry safe).
 * @return 0; ATOMIO_E_SEQUENCE (store not durable yet, entry in flight or done), ATOMIO_E_RANGE
 *         (i >= n), ATOMIO_E_FAILED (the entry's file failed meanwhile), ATOMIO_E_INVAL.
 * Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_prep_inplace(atomio_dw_batch *b, size_t i,
                                                       struct io_uring_sqe *sqe);

/**
 * atomio_dw_complete_inplace() -- report the CQE result of entry @i's in-place write.
 * @return 0 (page written); ATOMIO_E_SHORT_WRITE (the file is failed; the store copy repairs the
 *         page at recovery); the CQE's -errno (the entry may be prepared again); ATOMIO_E_RANGE,
 *         ATOMIO_E_SEQUENCE (no in-place write of that entry in flight), ATOMIO_E_INVAL.
 * Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_complete_inplace(atomio_dw_batch *b, size_t i,
                                                           int cqe_res);

/**
 * atomio_dw_done() -- finish the batch once every in-place write has completed: fdatasync each
 * touched data file (not with ATOMIO_DW_INPLACE_DSYNC), count the pages, release the segment,
 * free the batch. When an entry's last in-place write failed, or a sync failed, the segment
 * stays reserved until atomio_ctx_recover() so its copies can repair the pages; the batch is
 * freed all the same.
 * @return 0 when every page is written (and synced); else the first entry error or sync error
 *         (a failed sync fails its file); ATOMIO_E_SEQUENCE (writes still in flight or never
 *         prepared: the batch stays valid), ATOMIO_E_INVAL. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_dw_done(atomio_dw_batch *b);

/**
 * atomio_dw_abandon() -- give up a batch before any in-place write was prepared (for instance
 * after its store write failed). If the store write was submitted, its batch record is
 * invalidated durably first, so recovery never resurrects pages the engine gave up. Frees the
 * batch. NULL is a no-op.
 * @return 0; ATOMIO_E_SEQUENCE (store write in flight, or in-place writes started: finish with
 *         atomio_dw_done(); the batch stays valid); -errno if the invalidation failed (the
 *         segment then stays reserved until recovery; the batch is freed). Since 0.1.
 */
ATOMIO_API int atomio_dw_abandon(atomio_dw_batch *b);

#ifdef __cplusplus
}
#endif

#endif /* ATOMIO_URING_H */
