/* SPDX-License-Identifier: MIT */
/*
 * store/store.c -- the doublewrite store's lifecycle: create or adopt the store file in the ctx's
 * doublewrite directory (preallocated and zero-filled at ctx open, so the write path never
 * allocates a block), hand out segments to batches (one batch per segment at a time), and keep
 * the manifest (file id -> path, written durably when a file first joins). Every syscall goes
 * through atomio__sys, so the crash simulator sees all of it.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef ATOMIO_TESTING
_Atomic int atomio__test_skip_dw_durability;
_Atomic int atomio__test_dw_policy;
_Atomic int atomio__test_dw_split;
_Atomic int atomio__test_dw_keep_batches;
#endif

/* One zero block, aligned for O_DIRECT: retire writes and zero fills point iovecs at it. */
static _Alignas(ATOMIO_DW_ALIGN) const uint8_t zero_block[ATOMIO_DW_ALIGN];

#ifndef STATX_SIZE
#define STATX_SIZE 0x200u
#endif

/* ---- small I/O helpers -------------------------------------------------------------------- */

int
atomio__pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = atomio__sys.pread(fd, (char *)buf + done, len - done, off + done);
        if (r < 0)
            return (int)r;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    if (done < len)
        memset((char *)buf + done, 0, len - done);
    return 0;
}

/* write_full() -- one pwritev2 of the whole buffer; a short count is an error (store metadata
 * is never written piecemeal). */
static int
write_full(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    ssize_t r = atomio__sys.pwritev2(fd, &iov, 1, off, 0);
    if (r < 0)
        return (int)r;
    return (size_t)r == len ? 0 : ATOMIO_E_STORE;
}

/* zero_fill() -- write zeros over [off, off + len), 1 MiB per call, from the shared zero block;
 * off and len are multiples of ATOMIO_DW_ALIGN. */
static int
zero_fill(int fd, uint64_t off, uint64_t len)
{
    struct iovec iov[256];
    for (size_t i = 0; i < 256; i++) {
        iov[i].iov_base = (void *)(uintptr_t)zero_block;
        iov[i].iov_len = ATOMIO_DW_ALIGN;
    }
    while (len > 0) {
        uint64_t blocks = len / ATOMIO_DW_ALIGN;
        int n = blocks > 256 ? 256 : (int)blocks;
        size_t want = (size_t)n * ATOMIO_DW_ALIGN;
        ssize_t r = atomio__sys.pwritev2(fd, iov, n, off, 0);
        if (r < 0)
            return (int)r;
        if ((size_t)r != want)
            return ATOMIO_E_STORE;
        off += want;
        len -= want;
    }
    return 0;
}

static int
file_size(int fd, uint64_t *size)
{
    struct atomio_statx stx;
    int r = atomio__sys.statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx);
    if (r < 0)
        return r;
    *size = stx.size;
    return 0;
}

static int
join_path(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* sync_dir() -- make the creation of files in dir durable. */
static int
sync_dir(const char *dir)
{
    int dfd = atomio__sys.open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (dfd < 0)
        return dfd;
    int r = atomio__sys.fdatasync(dfd);
    atomio__sys.close(dfd);
    return r;
}

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* make_uuid() -- a store identity. It only has to differ between stores (so a batch copied
 * from another store is never trusted), not be secret: clocks, pid and addresses suffice. */
static void
make_uuid(uint8_t uuid[16])
{
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = atomio__now_ns() ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts ^
                 atomic_fetch_add(&counter, 1) * 0x2545F4914F6CDD1Dull;
    uint64_t a = splitmix64(&x), b = splitmix64(&x);
    memcpy(uuid, &a, 8);
    memcpy(uuid + 8, &b, 8);
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 layout */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

/* ---- geometry ------------------------------------------------------------------------------ */

static int
wanted_geometry(const atomio_ctx *ctx, struct atomio_dw_geom *g)
{
    uint32_t nseg = ctx->opts.doublewrite_segments;
    if (nseg == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nseg = cpus > 2 ? (uint32_t)(cpus > 2048 ? 4096 : 2 * cpus) : 4;
    }
    uint32_t batch = ctx->opts.doublewrite_batch_pages ? ctx->opts.doublewrite_batch_pages : 64;
    uint32_t maxps = ctx->opts.doublewrite_max_page_size ? ctx->opts.doublewrite_max_page_size : 16384;
    return atomio__dw_geom_make(g, nseg, batch, maxps);
}

static bool
same_geometry(const struct atomio_dw_geom *a, const struct atomio_dw_geom *b)
{
    return a->nseg == b->nseg && a->batch_pages == b->batch_pages &&
           a->max_page_size == b->max_page_size && a->seg_size == b->seg_size &&
           a->seg_offset == b->seg_offset && a->slots_max == b->slots_max;
}

/*
 * init_store() -- lay out a fresh store with geometry g: invalidate any old header first (so a
 * crash half-way leaves an all-zero header, which the next open initialises again), size and
 * preallocate the file, zero every segment (so later writes never convert unwritten extents
 * or allocate), then write the header and make it all durable.
 */
static int
init_store(struct atomio_store *st, const char *dir, struct atomio_dw_geom *g, bool had_header)
{
    int r;
    uint64_t size = atomio__dw_store_size(g);
    if (had_header) {
        if ((r = write_full(st->fd, zero_block, ATOMIO_DW_ALIGN, 0)) < 0 ||
            (r = atomio__sys.fdatasync(st->fd)) < 0)
            return r;
    }
    if ((r = atomio__sys.ftruncate(st->fd, size)) < 0)
        return r;
    r = atomio__sys.fallocate(st->fd, 0, 0, size);
    if (r < 0 && r != -EOPNOTSUPP && r != -ENOSYS)
        return r; /* ENOSPC here, at open, rather than on the write path */
    if ((r = zero_fill(st->fd, g->seg_offset, size - g->seg_offset)) < 0)
        return r;
    make_uuid(g->uuid);
    uint8_t hdr[ATOMIO_DW_STORE_HDR_LEN];
    atomio__dw_store_hdr_encode(g, hdr);
    struct iovec iov[2] = {{hdr, sizeof(hdr)},
                           {(void *)(uintptr_t)zero_block, ATOMIO_DW_ALIGN - sizeof(hdr)}};
    ssize_t w = atomio__sys.pwritev2(st->fd, iov, 2, 0, 0);
    if (w < 0)
        return (int)w;
    if (w != (ssize_t)ATOMIO_DW_ALIGN)
        return ATOMIO_E_STORE;
    if ((r = atomio__sys.fdatasync(st->fd)) < 0)
        return r;
    return sync_dir(dir);
}

/*
 * scan_headers() -- read every segment's batch header: the highest sequence number seen (new
 * batches continue above it, so "newest copy wins" holds across restarts) and whether any
 * segment holds a live batch (then recovery must run before the store is written).
 */
static int
scan_headers(struct atomio_store *st, uint64_t *max_seq, bool *live)
{
    uint8_t hdr[ATOMIO_DW_BATCH_HDR_LEN];
    *max_seq = 0;
    *live = false;
    for (uint32_t i = 0; i < st->g.nseg; i++) {
        int r = atomio__pread_full(st->fd, hdr, sizeof(hdr), atomio__dw_seg_off(&st->g, i));
        if (r < 0)
            return r;
        struct atomio_dw_batch_hdr b;
        enum atomio_dw_state s = atomio__dw_batch_decode(hdr, sizeof(hdr), &st->g, &b, NULL);
        if (s == ATOMIO_DW_EMPTY)
            continue;
        *live = true;
        /* A header that checks out on its own (count/len beyond these 64 bytes make the
         * decode say TORN here) still tells us its sequence number. */
        if (b.seq > *max_seq)
            *max_seq = b.seq;
    }
    return 0;
}

/* ---- manifest ------------------------------------------------------------------------------ */

const char *
atomio__store_path_of(struct atomio_store *st, uint64_t file_id)
{
    for (size_t i = 0; i < st->nman; i++)
        if (st->man[i].file_id == file_id)
            return st->man[i].path;
    return NULL;
}

/* man_set() -- record file_id -> path in memory (last record wins). Caller holds mlock. */
static int
man_set(struct atomio_store *st, uint64_t file_id, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < st->nman; i++) {
        if (st->man[i].file_id == file_id) {
            free(st->man[i].path);
            st->man[i].path = copy;
            return 0;
        }
    }
    if (st->nman == st->cap_man) {
        size_t cap = st->cap_man ? st->cap_man * 2 : 16;
        void *p = realloc(st->man, cap * sizeof(*st->man));
        if (!p) {
            free(copy);
            return -ENOMEM;
        }
        st->man = p;
        st->cap_man = cap;
    }
    st->man[st->nman].file_id = file_id;
    st->man[st->nman].path = copy;
    st->nman++;
    return 0;
}

static void
man_clear(struct atomio_store *st)
{
    for (size_t i = 0; i < st->nman; i++)
        free(st->man[i].path);
    st->nman = 0;
}

static int
man_load_cb(void *arg, uint64_t file_id, const char *path)
{
    return man_set(arg, file_id, path) < 0 ? 1 : 0;
}

/*
 * load_manifest() -- read the manifest, keep its valid prefix (a torn last append is cut off:
 * the file it named never got a batch, since registration is durable before the first write),
 * or empty it when no live batch can refer to it.
 */
static int
load_manifest(struct atomio_store *st, bool keep)
{
    uint64_t size;
    int r = file_size(st->mfd, &size);
    if (r < 0)
        return r;
    uint64_t valid = 0;
    if (keep && size > 0) {
        if (size > (64u << 20))
            return ATOMIO_E_STORE; /* no sane manifest is this large */
        uint8_t *buf = malloc((size_t)size);
        if (!buf)
            return -ENOMEM;
        r = atomio__pread_full(st->mfd, buf, (size_t)size, 0);
        if (r == 0)
            valid = atomio__dw_manifest_walk(buf, (size_t)size, man_load_cb, st);
        free(buf);
        if (r < 0)
            return r;
    }
    if (valid != size) {
        if ((r = atomio__sys.ftruncate(st->mfd, valid)) < 0 ||
            (r = atomio__sys.fdatasync(st->mfd)) < 0)
            return r;
    }
    st->man_len = valid;
    return 0;
}

/* ---- open / close -------------------------------------------------------------------------- */

static void
store_free(atomio_ctx *ctx, struct atomio_store *st)
{
    if (!st)
        return;
    if (st->segs) {
        for (uint32_t i = 0; i < st->g.nseg; i++)
            if (st->segs[i].buf)
                atomio__buf_free(ctx, st->segs[i].buf, (size_t)st->g.seg_size);
        free(st->segs);
    }
    if (st->fd >= 0)
        atomio__sys.close(st->fd);
    if (st->mfd >= 0)
        atomio__sys.close(st->mfd);
    man_clear(st);
    free(st->man);
    free(st->path);
    free(st->held_ids);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->mlock);
    pthread_cond_destroy(&st->cond);
    free(st);
}

/*
 * maybe_direct() -- reopen the store with O_DIRECT when the filesystem supports it at an
 * alignment our 4 KiB layout satisfies: batch writes then skip the page cache.
 */
static void
maybe_direct(struct atomio_store *st, const char *path)
{
    struct atomio_statx stx;
    if (atomio__sys.statx(st->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0)
        return;
    if (!(stx.mask & STATX_DIOALIGN) || stx.dio_offset_align == 0 ||
        stx.dio_offset_align > ATOMIO_DW_ALIGN || stx.dio_mem_align > ATOMIO_DW_ALIGN)
        return;
    int fd = atomio__sys.open(path, O_RDWR | O_DIRECT, 0);
    if (fd < 0)
        return;
    atomio__sys.close(st->fd);
    st->fd = fd;
    st->o_direct = true;
}

int
atomio__store_open(atomio_ctx *ctx)
{
    if (ctx->opts.flags & ATOMIO_CTX_NO_DOUBLEWRITE)
        return 0;
    const char *dir = ctx->doublewrite_dir ? ctx->doublewrite_dir : ctx->opts.doublewrite_dir;
    if (!dir || !*dir)
        return ATOMIO_E_INVAL;
    struct atomio_dw_geom want;
    if (wanted_geometry(ctx, &want) < 0)
        return ATOMIO_E_INVAL;

    /* The directory must exist: creating it would hide a deleted store (and the torn-page
     * copies it held) behind an empty new one. */
    int dfd = atomio__sys.open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (dfd < 0)
        return dfd;
    atomio__sys.close(dfd);

    char spath[4096], mpath[4096];
    int r;
    if ((r = join_path(spath, sizeof(spath), dir, ATOMIO_DW_STORE_FILE)) < 0 ||
        (r = join_path(mpath, sizeof(mpath), dir, ATOMIO_DW_MANIFEST_FILE)) < 0)
        return r;

    struct atomio_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->fd = st->mfd = -1;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->mlock, NULL);
    pthread_cond_init(&st->cond, NULL);

    st->path = strdup(spath);
    if (!st->path) {
        r = -ENOMEM;
        goto fail;
    }
    st->fd = atomio__sys.open(spath, O_RDWR | O_CREAT, 0600);
    if (st->fd < 0) {
        r = st->fd;
        goto fail;
    }
    uint8_t hdr[ATOMIO_DW_STORE_HDR_LEN];
    if ((r = atomio__pread_full(st->fd, hdr, sizeof(hdr), 0)) < 0)
        goto fail;
    uint64_t size;
    if ((r = file_size(st->fd, &size)) < 0)
        goto fail;
    r = atomio__dw_store_hdr_decode(hdr, size < sizeof(hdr) ? (size_t)size : sizeof(hdr), &st->g,
                                    NULL);
    if (r < 0)
        goto fail; /* not ours, or damaged: never overwrite what may hold the only copies */
    if (r == 1) {
        st->g = want;
        if ((r = init_store(st, dir, &st->g, false)) < 0)
            goto fail;
    } else if (size < atomio__dw_store_size(&st->g)) {
        r = ATOMIO_E_STORE;
        goto fail;
    }

    uint64_t max_seq;
    bool live;
    if ((r = scan_headers(st, &max_seq, &live)) < 0)
        goto fail;
    if (!live && !same_geometry(&st->g, &want)) {
        /* Nothing to recover: adopt the geometry the options ask for. */
        struct atomio_dw_geom g = want;
        if ((r = init_store(st, dir, &g, true)) < 0)
            goto fail;
        st->g = g;
    }
    atomic_store(&st->next_seq, max_seq + 1);
    st->needs_recovery = live;
    maybe_direct(st, spath);

    st->mfd = atomio__sys.open(mpath, O_RDWR | O_CREAT, 0600);
    if (st->mfd < 0) {
        r = st->mfd;
        goto fail;
    }
    if ((r = load_manifest(st, live)) < 0 || (r = sync_dir(dir)) < 0)
        goto fail;

    st->segs = calloc(st->g.nseg, sizeof(*st->segs));
    if (!st->segs) {
        r = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = st->g.nseg; i-- > 0;) {
        st->segs[i].index = i;
        st->segs[i].off = atomio__dw_seg_off(&st->g, i);
        st->segs[i].next_free = st->free_top;
        st->free_top = &st->segs[i];
    }
    ctx->store = st;
    return 0;
fail:
    store_free(ctx, st);
    return r;
}

void
atomio__store_close(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return;
    /* Write and make durable the last retires, so a later recovery does not see batches whose
     * files may meanwhile be written by other means. Best effort: close cannot fail usefully. */
    if (!atomic_load(&st->failed))
        (void)atomio__store_flush_retires(ctx);
    if (atomic_load(&st->retire_pending) && !atomic_load(&st->failed))
        (void)atomio__store_sync(ctx);
    ctx->store = NULL;
    store_free(ctx, st);
}

/* ---- segments ------------------------------------------------------------------------------ */

/*
 * atomio__store_claim() -- one claim for both drivers. A segment that is busy will come back,
 * so a waiting caller (atomio_write_batch()) sleeps for it; a caller that must not sleep gets
 * -EAGAIN instead: the staged API (an engine thread may hold the very batches it would wait
 * for) and rescue() (it holds a segment itself, and with one segment would wait for itself).
 * With every segment held for recovery nothing will ever come back: ATOMIO_E_STORE_FULL.
 */
struct atomio_dw_seg *
atomio__store_claim(atomio_ctx *ctx, bool wait, int *err)
{
    struct atomio_store *st = ctx->store;
    int dummy;
    if (!err)
        err = &dummy;
    pthread_mutex_lock(&st->lock);
    while (!st->free_top) {
        if (st->pending) {
            /* Finished batches wait for their retire: write those now, then take one. */
            pthread_mutex_unlock(&st->lock);
            int fr = atomio__store_flush_retires(ctx);
            pthread_mutex_lock(&st->lock);
            if (fr < 0) {
                pthread_mutex_unlock(&st->lock);
                *err = ATOMIO_E_STORE;
                return NULL;
            }
            continue;
        }
        if (st->nbusy == 0 && !st->takes) {
            /* Every segment is held for recovery: nothing will ever be released. */
            pthread_mutex_unlock(&st->lock);
            *err = ATOMIO_E_STORE_FULL;
            return NULL;
        }
        if (!wait) {
            pthread_mutex_unlock(&st->lock);
            *err = -EAGAIN;
            return NULL;
        }
        pthread_cond_wait(&st->cond, &st->lock);
    }
    struct atomio_dw_seg **pick = &st->free_top;
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_policy) == 2) {
        /* Tests: a deterministic but scattered choice, so newer batches can be overwritten
         * while older ones survive, as they can when threads finish out of order. */
        unsigned nfree = 0;
        for (struct atomio_dw_seg *s = st->free_top; s; s = s->next_free)
            nfree++;
        for (uint64_t n = atomic_load(&st->next_seq) % nfree; n > 0; n--)
            pick = &(*pick)->next_free;
    }
#endif
    struct atomio_dw_seg *seg = *pick;
    *pick = seg->next_free;
    seg->next_free = NULL;
    st->nbusy++;
    uint32_t busy = st->nbusy;
    pthread_mutex_unlock(&st->lock);
    uint32_t prev = atomic_load(&st->busy_max);
    while (busy > prev && !atomic_compare_exchange_weak(&st->busy_max, &prev, busy))
        ;
    if (!seg->buf) {
        seg->buf = atomio__buf_alloc(ctx, (size_t)st->g.seg_size, ATOMIO_DW_ALIGN);
        if (!seg->buf) {
            atomio__store_release(ctx, seg, false);
            *err = -ENOMEM;
            return NULL;
        }
    }
    return seg;
}

void
atomio__store_release(atomio_ctx *ctx, struct atomio_dw_seg *seg, bool held)
{
    struct atomio_store *st = ctx->store;
    pthread_mutex_lock(&st->lock);
    st->nbusy--;
    if (held) {
        seg->held = true;
        st->nheld++;
#ifdef ATOMIO_TESTING
    } else if (atomic_load(&atomio__test_dw_policy) == 1) {
        /* Tests: rotate through every segment, so the store holds batches of many ages. */
        struct atomio_dw_seg **pp = &st->free_top;
        while (*pp)
            pp = &(*pp)->next_free;
        seg->next_free = NULL;
        *pp = seg;
#endif
    } else {
        seg->next_free = st->free_top;
        st->free_top = seg;
    }
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

/*
 * Deferred retires. A finished batch is retired by zeroing its header, so that an old copy can
 * never be restored over a page written later; the retire only has to be durable before a
 * newer write of one of its pages can lose its own store copy. Rather than a write and a wait
 * of their own at the end of every batch, retires queue up (pending) and ride along with the
 * next store write, in the same submission; the store fdatasync after it makes them durable.
 * The rule that keeps this safe: every retire pending when a batch's store step starts is
 * written, and complete, before that batch's store fdatasync, so before any of its in-place
 * writes. A step takes all pending retires (a take, with a ticket); a step that finds none
 * pending still waits, before its fdatasync, for the takes with earlier tickets to end. So a
 * batch's retire is only ever written after the retires of every batch acknowledged before it
 * started are durable, exactly as when each batch retired itself before returning. A taken
 * segment is free once its retire write completed; reusing it is as safe as reusing a segment
 * retired synchronously was.
 */
void
atomio__store_retire_later(atomio_ctx *ctx, struct atomio_dw_seg *seg)
{
    struct atomio_store *st = ctx->store;
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_keep_batches)) {
        atomio__store_release(ctx, seg, false); /* free, its batch left valid on disk */
        return;
    }
#endif
    pthread_mutex_lock(&st->lock);
    st->nbusy--;
    seg->next_free = st->pending;
    st->pending = seg;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

struct atomio_dw_seg *
atomio__store_take_retires(struct atomio_store *st, struct atomio_retire_take *t, uint64_t *snap)
{
    pthread_mutex_lock(&st->lock);
    struct atomio_dw_seg *taken = st->pending;
    st->pending = NULL;
    if (taken) {
        t->ticket = ++st->take_next;
        t->next = st->takes;
        st->takes = t;
    }
    *snap = st->take_next;
    pthread_mutex_unlock(&st->lock);
    return taken;
}

void
atomio__store_retire_io(const struct atomio_store *st, const struct atomio_dw_seg *seg,
                        struct atomio_io *io)
{
    *io = (struct atomio_io){.fd = st->fd, .buf = zero_block, .len = ATOMIO_DW_ALIGN,
                             .off = seg->off};
}

void
atomio__store_took_retires(struct atomio_store *st, struct atomio_retire_take *t,
                           struct atomio_dw_seg *taken, bool ok)
{
    pthread_mutex_lock(&st->lock);
    for (struct atomio_retire_take **pp = &st->takes; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    while (taken) {
        struct atomio_dw_seg *next = taken->next_free;
        taken->next_free = st->free_top;
        st->free_top = taken;
        taken = next;
    }
    if (ok)
        atomic_store(&st->retire_pending, true);
    else
        atomic_store(&st->failed, true); /* as for a failed retire: no more batches */
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

void
atomio__store_wait_retires(struct atomio_store *st, uint64_t snap)
{
    pthread_mutex_lock(&st->lock);
    for (;;) {
        bool earlier = false;
        for (struct atomio_retire_take *t = st->takes; t && !earlier; t = t->next)
            earlier = t->ticket <= snap;
        if (!earlier)
            break;
        pthread_cond_wait(&st->cond, &st->lock);
    }
    pthread_mutex_unlock(&st->lock);
}

int
atomio__store_write_retires(struct atomio_store *st, struct atomio_retire_take *t,
                            struct atomio_dw_seg *taken)
{
    int r = 0;
    for (struct atomio_dw_seg *s = taken; s && r == 0; s = s->next_free)
        r = write_full(st->fd, zero_block, ATOMIO_DW_ALIGN, s->off);
    atomio__store_took_retires(st, t, taken, r == 0);
    return r;
}

int
atomio__store_flush_retires(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    struct atomio_retire_take t;
    uint64_t snap;
    struct atomio_dw_seg *taken = atomio__store_take_retires(st, &t, &snap);
    int r = taken ? atomio__store_write_retires(st, &t, taken) : 0;
    atomio__store_wait_retires(st, snap);
    return r;
}

int
atomio__store_flush_pending(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    if (!st || atomic_load(&st->failed))
        return 0;
    int r = atomio__store_flush_retires(ctx);
    if (r == 0 && atomic_load(&st->retire_pending))
        r = atomio__store_sync(ctx);
    return r;
}

int
atomio__store_retire(struct atomio_store *st, struct atomio_dw_seg *seg)
{
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_keep_batches))
        return 0;
#endif
    int r = write_full(st->fd, zero_block, ATOMIO_DW_ALIGN, seg->off);
    if (r == 0)
        atomic_store(&st->retire_pending, true);
    return r;
}

int
atomio__store_sync(atomio_ctx *ctx)
{
    atomio__store_sync_begin(ctx);
    return atomio__store_sync_end(ctx, atomio__sys.fdatasync(ctx->store->fd));
}

void
atomio__store_sync_begin(atomio_ctx *ctx)
{
    /* Clear first: a retire completing after this point is covered by the next sync. */
    atomic_store(&ctx->store->retire_pending, false);
}

int
atomio__store_sync_end(atomio_ctx *ctx, int r)
{
    struct atomio_store *st = ctx->store;
    ATOMIO_COUNT(&ctx->stats, syncs, 1);
    if (r < 0) {
        /* Like a data file: after a failed fdatasync nothing about earlier writes
         * can be trusted; the store refuses further batches until the ctx is reopened. */
        atomic_store(&st->failed, true);
        ATOMIO_COUNT(&ctx->stats, failed_syncs, 1);
    }
    return r;
}

int
atomio__store_hold_id(struct atomio_store *st, uint64_t file_id)
{
    int r = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->nheld_ids; i++)
        if (st->held_ids[i] == file_id)
            goto out;
    if (st->nheld_ids == st->cap_held_ids) {
        size_t cap = st->cap_held_ids ? st->cap_held_ids * 2 : 8;
        void *p = realloc(st->held_ids, cap * sizeof(*st->held_ids));
        if (!p) {
            r = -ENOMEM;
            goto out;
        }
        st->held_ids = p;
        st->cap_held_ids = cap;
    }
    st->held_ids[st->nheld_ids++] = file_id;
out:
    pthread_mutex_unlock(&st->lock);
    return r;
}

bool
atomio__store_id_held(struct atomio_store *st, uint64_t file_id)
{
    bool held = false;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->nheld_ids && !held; i++)
        held = st->held_ids[i] == file_id;
    pthread_mutex_unlock(&st->lock);
    return held;
}

void
atomio__store_reset_after_recovery(struct atomio_store *st)
{
    pthread_mutex_lock(&st->lock);
    for (uint32_t i = 0; i < st->g.nseg; i++) {
        struct atomio_dw_seg *seg = &st->segs[i];
        if (seg->held) {
            seg->held = false;
            seg->next_free = st->free_top;
            st->free_top = seg;
        }
    }
    st->nheld = 0;
    st->nheld_ids = 0;
    st->needs_recovery = false;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

/* ---- registration -------------------------------------------------------------------------- */

/* derive_id() -- a stable id for a file the engine gave none: FNV-1a of its absolute path with
 * the top bit set, out of the way of small engine ids such as tablespace numbers. */
static uint64_t
derive_id(const char *path)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h | (1ull << 63);
}

int
atomio__store_register(atomio_ctx *ctx, atomio_file *f)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return 0;
    if (!f->path)
        return ATOMIO_E_INVAL;
    size_t len = strlen(f->path);
    if (len == 0 || len > ATOMIO_DW_PATH_MAX)
        return -ENAMETOOLONG;
    if (f->file_id == 0)
        f->file_id = derive_id(f->path);

    int r = 0;
    pthread_mutex_lock(&st->mlock);
    const char *cur = atomio__store_path_of(st, f->file_id);
    if (!cur || strcmp(cur, f->path) != 0) {
        /* A new id, or a renamed file keeping its id: the last record wins. */
        size_t n = atomio__dw_manifest_rec_len(len);
        uint8_t *rec = malloc(n);
        if (!rec) {
            r = -ENOMEM;
        } else {
            atomio__dw_manifest_encode(rec, f->file_id, f->path, len);
            r = write_full(st->mfd, rec, n, st->man_len);
            if (r == 0)
                r = atomio__sys.fdatasync(st->mfd);
            free(rec);
            if (r == 0) {
                st->man_len += n;
                r = man_set(st, f->file_id, f->path);
            } else {
                /* The record may be half there; cut it off so later appends stay readable. */
                (void)atomio__sys.ftruncate(st->mfd, st->man_len);
            }
        }
    }
    pthread_mutex_unlock(&st->mlock);
    /* A handle reopened on this file may write it by another path from now on: copies of its
     * pages in batches not retired, or retired but not durably, must not outlive that. */
    if (r == 0 && !atomic_load(&st->failed))
        r = atomio__store_flush_retires(ctx);
    if (r == 0 && atomic_load(&st->retire_pending) && !atomic_load(&st->failed))
        r = atomio__store_sync(ctx);
    return r;
}

bool
atomio__store_fits(const atomio_ctx *ctx, uint32_t page_size)
{
    const struct atomio_store *st = ctx->store;
    return st && atomio__dw_table_bytes(1) + page_size <= st->g.seg_size;
}
