/* SPDX-License-Identifier: MIT */
/*
 * buffered_cases.h -- BUFFERED_ATOMIC test bodies that hold on any kernel that accepts buffered
 * RWF_ATOMIC: the simulated kernel (test_buffered_sim.c) runs them in CI, and
 * test_buffered_real.c runs the very same bodies, unchanged, in the directory named by
 * ATOMIO_TEST_BUFFERED_DIR on a kernel carrying the buffered-atomic patches.
 * Every body makes its own private subdirectory of dir and removes it.
 */
#ifndef ATOMIO_TEST_BUFFERED_CASES_H
#define ATOMIO_TEST_BUFFERED_CASES_H

#include <atomio.h>
#include <stdint.h>

/* Submitter of the ctx the bodies use: AUTO (io_uring where it works) by default; the
 * simulated-kernel suite sets ATOMIO_SUBMIT_SYNC, the pwritev2 seam it sits on. */
extern uint32_t bc_submitter;
/* A ctx without a doublewrite store, with bc_submitter. */
atomio_ctx *bc_ctx(void);
/* The page size the buffered path should accept in dir: max(system page, fs block). */
uint32_t bc_page_for(const char *dir);

/* atomio_probe() proves buffered atomics for `page` in dir: verdict, folio rule, reason. */
void bc_probe_proves(const char *dir, uint32_t page);
/* AUTO with io_style (BUFFERED or ANY) picks BUFFERED_ATOMIC on a page-cache fd. */
void bc_auto_picks_buffered(const char *dir, uint32_t page, uint32_t io_style);
/* Pages from caller buffers (aligned, misaligned) and atomio_page_alloc(), single and batched,
 * read back equal through the library and through an independent fd. */
void bc_roundtrip(const char *dir, uint32_t page);
/* ATOMIO_FILE_NO_COPY: caller buffers refused (nothing written), allocator pages accepted. */
void bc_no_copy(const char *dir, uint32_t page);
/* A page of twice the accepted size breaks the folio-order rule: forced BUFFERED_ATOMIC fails
 * with ATOMIO_E_FOLIO_ORDER and the probe's reason names both orders. */
void bc_wrong_page_refused(const char *dir, uint32_t page);

#endif
