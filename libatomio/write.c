/* SPDX-License-Identifier: MIT */
/*
 * write.c -- the write engine behind atomio_write() and atomio_write_batch(). Entries are
 * validated first (an invalid entry gets its code and is never written); atomic and unsafe
 * pages are prepared by their path and issued together by the ctx's submitter; doublewrite
 * pages, and pages whose atomic write reported "nothing written" (the runtime downgrade), go
 * through the store's batch protocol. A short write fails its file and is never retried.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/*
 * atomio__write_check() -- the file-level checks every page write passes before its path's
 * prep() (shared with bring-your-own-ring preparation, byor.c).
 */
int
atomio__write_check(atomio_file *f, uint64_t page_no, const void *page)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (!page)
        return ATOMIO_E_INVAL;
    if (f->rdonly)
        return ATOMIO_E_READ_ONLY;
    if (atomic_load(&f->state) == ATOMIO_STATE_FAILED)
        return ATOMIO_E_FAILED;
    if (page_no > ((uint64_t)INT64_MAX >> f->page_shift) - 1)
        return ATOMIO_E_RANGE;
    return 0;
}

/*
 * atomio__fsize_check() -- the kernel checks RLIMIT_FSIZE after the atomic checks and cuts a
 * write crossing it to the part below the limit: an RWF_ATOMIC write would leave a half-new
 * page (and fail the file). The limit is per process and can change at any time (setrlimit,
 * prlimit from outside), so it is read for every atomic write; a getrlimit is a fraction of a
 * microsecond against tens for the write. A limit lowered between this check and the kernel's
 * still cuts the write, which then fails the file as any short write does.
 */
int
atomio__fsize_check(uint64_t off, uint64_t len)
{
    struct rlimit rl;
    if (atomio__sys.getrlimit(RLIMIT_FSIZE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    if (off + len > (uint64_t)rl.rlim_cur)
        return -EFBIG;
    return 0;
}

static int
check_entry(atomio_ctx *ctx, const atomio_page_write *w)
{
    int r = atomio__file_check(w->file);
    if (r < 0)
        return r;
    if (w->file->ctx != ctx)
        return ATOMIO_E_INVAL;
    return atomio__write_check(w->file, w->page_no, w->page);
}

/*
 * atomio__file_reprobe() -- EINVAL from an atomic write means our geometry is wrong, or the
 * file changed under us (remount, reflink state). Probe again, once per file: if the file no
 * longer takes cur, the atomic path that got EINVAL (and a store exists), switch it to
 * DOUBLEWRITE (*how: NOW_DOUBLEWRITE); otherwise the caller retries exactly once (*how:
 * RETRY). A second EINVAL on the file is a bug: ATOMIO_E_GEOMETRY. Shared with
 * atomio_complete_write() (byor.c).
 */
int
atomio__file_reprobe(atomio_file *f, uint32_t cur, enum atomio__reprobed *how)
{
    *how = ATOMIO__REPROBED_RETRY;
    pthread_mutex_lock(f->lock);
    bool again = f->reprobed;
    f->reprobed = true;
    if (!again) {
        char dir[PATH_MAX];
        atomio__dir_of(f->path, dir, sizeof(dir)); /* f->path came from realpath(): fits */
        atomio_caps caps;
        caps.size = sizeof(caps);
        /* The buffered verdict is cached per device: drop it, or the re-probe reads back the
         * very verdict the EINVAL contradicts. */
        if (cur == ATOMIO_PATH_BUFFERED_ATOMIC)
            atomio__caps_cache_forget(f->caps.dev_major, f->caps.dev_minor, f->page_size);
        if (atomio__probe_fd(f->fd, dir, f->page_size, &caps) == 0) {
            f->caps = caps;
            bool still = cur == ATOMIO_PATH_DIRECT_ATOMIC ? caps.direct_atomic != ATOMIO_ATOMIC_NONE
                                                          : caps.buffered_atomic != 0;
            if (!still && f->ctx->store) {
                pthread_mutex_unlock(f->lock);
                atomio__file_downgrade(f, -EINVAL);
                *how = ATOMIO__REPROBED_NOW_DOUBLEWRITE;
                return 0;
            }
        }
    }
    pthread_mutex_unlock(f->lock);
    return again ? ATOMIO_E_GEOMETRY : 0;
}

/* reprobe_and_retry() -- atomio__file_reprobe(), then the one retry through the submitter. */
static int
reprobe_and_retry(atomio_file *f, struct atomio_io *io, uint64_t page_no, const void *page,
                  uint32_t wflags, bool *to_dw)
{
    *to_dw = false;
    /* The path that prepared io, not path_cur: another thread may have downgraded the file
     * meanwhile, and DOUBLEWRITE has no prep(). index/path survive the re-prep. */
    uint32_t cur = io->path;
    uint32_t index = io->index;
    enum atomio__reprobed how;
    int r = atomio__file_reprobe(f, cur, &how);
    if (r < 0)
        return r;
    if (how == ATOMIO__REPROBED_NOW_DOUBLEWRITE) {
        *to_dw = true;
        return 0;
    }

    const struct atomio_path_ops *ops = atomio__path_ops(cur);
    if (io->bounce)
        atomio__buf_free(f->ctx, io->bounce, io->len);
    memset(io, 0, sizeof(*io));
    r = ops->prep(f, page_no, page, wflags, io);
    io->index = index;
    io->path = cur;
    if (r < 0)
        return r;
    r = f->ctx->submit->submit(f->ctx, io, 1);
    if (r < 0)
        return r;
    struct atomio_verdict v = ops->complete(f, io);
    if (v.next == ATOMIO__NEXT_REPROBE)
        return ATOMIO_E_GEOMETRY; /* EINVAL again after the re-probe */
    if (v.next == ATOMIO__NEXT_DOUBLEWRITE) {
        atomio__file_downgrade(f, (int)io->res);
        *to_dw = true;
        return 0;
    }
    return v.result;
}

/* Batches up to this size keep their bookkeeping on the stack: atomio_write() (n = 1) is the
 * hot path and should not pay three allocations per page. */
#define SMALL_BATCH 8

static int
write_entries(atomio_ctx *ctx, atomio_page_write *w, size_t n, uint32_t flags)
{
    struct atomio_io ios_small[SMALL_BATCH];
    struct atomio_dw_item dw_small[SMALL_BATCH];
    uint32_t dw_entry_small[SMALL_BATCH];
    struct atomio_io *ios = ios_small;
    struct atomio_dw_item *dw = dw_small;
    uint32_t *dw_entry = dw_entry_small;
    bool heap = n > SMALL_BATCH;
    if (heap) {
        ios = calloc(n, sizeof(*ios));
        dw = calloc(n, sizeof(*dw));
        dw_entry = calloc(n, sizeof(*dw_entry));
        if (!ios || !dw || !dw_entry) {
            free(ios);
            free(dw);
            free(dw_entry);
            for (size_t i = 0; i < n; i++)
                w[i].result = -ENOMEM;
            return 0;
        }
    } else {
        memset(ios_small, 0, sizeof(ios_small));
        memset(dw_small, 0, sizeof(dw_small));
    }
    size_t nio = 0, ndw = 0;
    uint64_t t0 = atomio__now_ns();
    /* No-durability mode is decided once per call: every page of it goes in place as a plain
     * write (counted as UNSAFE), the doublewrite store included. */
    bool nodur = atomio__nodur_enter(ctx);
    /* Plain writes must not land before older staged copies of the same pages. */
    int staged_err = nodur ? atomio__stage_flush(ctx) : 0;

    for (size_t i = 0; i < n; i++) {
        int r = check_entry(ctx, &w[i]);
        if (r < 0) {
            w[i].result = r;
            continue;
        }
        atomio_file *f = w[i].file;
        uint32_t wflags = flags | ((f->fflags & ATOMIO_FILE_DSYNC) ? ATOMIO_WRITE_DSYNC : 0);
        uint32_t path = atomic_load(&f->path_cur);
        const struct atomio_path_ops *ops = atomio__path_ops(path);
        if (nodur) {
            if (staged_err < 0) {
                w[i].result = staged_err;
                continue;
            }
            r = atomio__prep_plain(f, w[i].page_no, w[i].page, &ios[nio]);
            if (r < 0) {
                w[i].result = r;
                continue;
            }
            ios[nio].index = (uint32_t)i;
            ios[nio].path = ATOMIO_PATH_UNSAFE;
            nio++;
            continue;
        }
        if (!ops->prep) {
            dw[ndw] =
                (struct atomio_dw_item){.file = f, .page_no = w[i].page_no, .page = w[i].page};
            dw_entry[ndw++] = (uint32_t)i;
            continue;
        }
        r = ops->prep(f, w[i].page_no, w[i].page, wflags, &ios[nio]);
        if (r < 0) {
            w[i].result = r;
            continue;
        }
        ios[nio].index = (uint32_t)i;
        ios[nio].path = path;
        nio++;
    }

    if (nio) {
        int r = ctx->submit->submit(ctx, ios, nio);
        uint64_t lat = atomio__now_ns() - t0;
        for (size_t k = 0; k < nio; k++) {
            struct atomio_io *io = &ios[k];
            atomio_page_write *e = &w[io->index];
            atomio_file *f = io->file;
            uint32_t path = io->path;
            struct atomio_verdict v =
                r < 0 ? atomio__verdict(r) : atomio__path_ops(path)->complete(f, io);
            if (v.next == ATOMIO__NEXT_REPROBE) {
                bool to_dw;
                uint32_t wflags =
                    flags | ((f->fflags & ATOMIO_FILE_DSYNC) ? ATOMIO_WRITE_DSYNC : 0);
                v = atomio__verdict(reprobe_and_retry(f, io, e->page_no, e->page, wflags, &to_dw));
                if (v.result == 0 && to_dw)
                    v.next = ATOMIO__NEXT_DOUBLEWRITE;
            } else if (v.next == ATOMIO__NEXT_DOUBLEWRITE) {
                atomio__file_downgrade(f, (int)io->res);
            }
            int c = v.result;
            if (v.next == ATOMIO__NEXT_DOUBLEWRITE) {
                dw[ndw] =
                    (struct atomio_dw_item){.file = f, .page_no = e->page_no, .page = e->page};
                dw_entry[ndw++] = io->index;
            } else {
                e->result = c;
                if (c == 0)
                    atomio__count_page(f, path, lat);
            }
            if (io->bounce)
                atomio__buf_free(ctx, io->bounce, io->len); /* bounces come from buf.c */
            io->bounce = NULL;
        }
    }

    if (ndw) {
        atomio__dw_write(ctx, dw, ndw, flags);
        for (size_t k = 0; k < ndw; k++)
            w[dw_entry[k]].result = dw[k].result;
    }

    if (nodur)
        atomio__nodur_leave(ctx);
    int ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += w[i].result == 0;
    if (heap) {
        free(ios);
        free(dw);
        free(dw_entry);
    }
    return ok;
}

int
atomio_write(atomio_file *f, uint64_t page_no, const void *page, uint32_t flags)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (flags & ~ATOMIO__WRITE_FLAGS)
        return ATOMIO_E_INVAL;
    atomio_page_write w = {.file = f, .page_no = page_no, .page = page};
    write_entries(f->ctx, &w, 1, flags);
    return w.result;
}

int
atomio_write_batch(atomio_ctx *ctx, atomio_page_write *w, size_t n, uint32_t flags)
{
    if (!ctx || (!w && n))
        return ATOMIO_E_INVAL;
    if (flags & ~ATOMIO__WRITE_FLAGS)
        return ATOMIO_E_INVAL;
    if (n > INT32_MAX)
        return ATOMIO_E_INVAL;
    for (size_t i = 0; i < n; i++)
        w[i].result = 0;
    if (!n)
        return 0;
    return write_entries(ctx, w, n, flags);
}
