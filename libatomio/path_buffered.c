/* SPDX-License-Identifier: MIT */
/*
 * path_buffered.c -- BUFFERED_ATOMIC (docs/buffered-atomic.md): the page cache with
 * RWF_ATOMIC, for engines that do buffered I/O (PostgreSQL-like). The recipe follows the
 * kernel proposals' rules:
 *   - a page-cache fd (never O_DIRECT: file.c opens it plain for this path);
 *   - RWF_ATOMIC | RWF_DSYNC on every write, whatever the caller asked: only a synchronous
 *     write is written back as one atomic folio before the call returns, and a later plain
 *     write could otherwise clear the folio's atomic state before writeback;
 *   - one folio per write: the page size passed the folio-order rule in the probe;
 *   - a source the kernel's copy cannot fault on half-way (a fault mid-copy makes the
 *     kernel copy part of the folio): atomio_page_alloc() pages, which are pre-faulted, are
 *     used as they are; anything else is copied into a pre-faulted bounce page first, or
 *     refused with ATOMIO_E_NO_COPY when the file was opened ATOMIO_FILE_NO_COPY;
 *   - a short write fails the file (never finished piecemeal: that would tear the page);
 *   - every write to the file goes through here: a plain overwrite of a page would silently
 *     drop its atomicity, so the library has no non-atomic write for such a file. Only the
 *     runtime downgrade leaves this path, and it moves the whole file to DOUBLEWRITE, whose
 *     plain in-place writes are protected by the store.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int
buffered_open_flags(const struct atomio_file *f)
{
    (void)f;
    return 0; /* page cache */
}

/*
 * buffered_prep() -- decide one page write. The caller's page is used directly when it lies
 * in an atomio_page_alloc() buffer of this ctx and is system-page aligned; otherwise it is
 * copied into a bounce page (owned by the io, released by write.c after completion), or
 * refused with ATOMIO_E_NO_COPY when no copy may be made.
 */
static int
buffered_prep(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
              struct atomio_io *io)
{
    /* wflags' DSYNC is moot: RWF_DSYNC is always part of the recipe. A page the kernel would
     * cut at RLIMIT_FSIZE is refused before anything is copied or written. */
    int r = atomio__fsize_check(page_no << f->page_shift, f->page_size);
    if (r < 0)
        return r;
    uintptr_t align = (uintptr_t)atomio__sys_page_size();
    const void *src = page;

    bool ours = atomio__buf_is_prefaulted(f->ctx, page, f->page_size);
    bool aligned = (uintptr_t)page % align == 0;
    if (!ours || !aligned) {
        /* A copy is forbidden by the engine (ATOMIO_FILE_NO_COPY), or impossible because the
         * engine's own ring owns the I/O and nothing would free a bounce at completion
         * (bring-your-own-ring, ATOMIO__WRITE_NO_BOUNCE). */
        if ((f->fflags & ATOMIO_FILE_NO_COPY) || (wflags & ATOMIO__WRITE_NO_BOUNCE))
            return ATOMIO_E_NO_COPY;
        size_t balign = f->page_size > align ? f->page_size : align;
        /* The copy happens here, in user space, where a fault on the caller's buffer is an
         * ordinary page-in, not a half-copied folio. */
        src = atomio__bounce_page(f, page, balign, io);
        if (!src)
            return -ENOMEM;
    }
    io->fd = f->fd;
    io->buf = src;
    io->len = f->page_size;
    io->off = page_no << f->page_shift;
    io->rwflags = RWF_ATOMIC | RWF_DSYNC;
    io->file = f;
    return 0;
}

/*
 * buffered_complete() -- the atomic failure model (shared with DIRECT_ATOMIC) plus one rule of
 * its own: the write carried RWF_DSYNC, so an EIO may come from the writeback half after the
 * data reached the page cache. The kernel has then consumed the error (a later fdatasync may
 * report success over lost data), exactly the fsync case: the file fails for good.
 */
static struct atomio_verdict
buffered_complete(struct atomio_file *f, struct atomio_io *io)
{
    struct atomio_verdict r = atomio__atomic_complete(f, io);
    if (r.next == ATOMIO__NEXT_RESULT && r.result == -EIO) {
        ATOMIO_COUNT(&f->stats, failed_syncs, 1);
        ATOMIO_COUNT(&f->ctx->stats, failed_syncs, 1);
        atomio__file_fail(f);
    }
    return r;
}

const struct atomio_path_ops atomio__path_buffered = {
    .id = ATOMIO_PATH_BUFFERED_ATOMIC,
    .name = "BUFFERED_ATOMIC",
    .open_flags = buffered_open_flags,
    .prep = buffered_prep,
    .complete = buffered_complete,
};
