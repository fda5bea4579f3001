/* SPDX-License-Identifier: MIT */
/*
 * store/store.c -- the doublewrite store's files: create or adopt the store file in the ctx's
 * doublewrite directory (preallocated and zero-filled when created, so the write path never
 * allocates a block), its two header copies, the record buffers of this process, and the
 * manifest (file id -> path, written durably when a file first joins). Every syscall on the
 * store's files goes through atomio__sys, so the crash simulator sees all of it.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef ATOMIO_TESTING
_Atomic int atomio__test_skip_dw_durability;
_Atomic int atomio__test_dw_local_order;
_Atomic int atomio__test_dw_split;
_Atomic int atomio__test_dw_keep_batches;
_Atomic int atomio__test_file_slots;
_Atomic int atomio__test_procs;
_Atomic unsigned atomio__test_reap_scans;
#endif

/* One zero block, aligned for O_DIRECT: retire writes and zero fills point iovecs at it. */
static _Alignas(ATOMIO_DW_ALIGN) const uint8_t zero_block[ATOMIO_DW_ALIGN];

/* Counted up in every child fork() makes (pthread_atfork), so a ctx inherited across fork()
 * is recognised without a getpid() per page. */
static _Atomic unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void
count_fork(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void
watch_forks(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork);
}

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
    return (size_t)r == len ? 0 : ATOMIO_E_STORE_FAILED;
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
            return ATOMIO_E_STORE_FAILED;
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

/* ---- geometry and headers ------------------------------------------------------------------ */

#define DEFAULT_STORE_BYTES (128ull << 20)

static int
wanted_geometry(const atomio_ctx *ctx, struct atomio_dw_geom *g)
{
    uint64_t bytes =
        ctx->opts.doublewrite_store_bytes ? ctx->opts.doublewrite_store_bytes : DEFAULT_STORE_BYTES;
    return atomio__dw_geom_make(g, bytes, ctx->opts.doublewrite_max_page_size);
}

/* record_limits() -- the most one record holds: batch_pages pages of the largest size (or
 * more, smaller ones down to 4 KiB), and never more than a quarter of the ring. */
static void
record_limits(atomio_ctx *ctx, struct atomio_store *st)
{
    uint32_t batch = ctx->opts.doublewrite_batch_pages;
    uint32_t maxps = st->g.max_page_size;
    uint64_t bytes = (uint64_t)batch * maxps;
    uint64_t quarter = st->g.ring_size / 4;
    if (bytes + atomio__dw_table_bytes(batch) > quarter)
        bytes = quarter / 2;
    if (bytes < maxps)
        bytes = maxps;
    st->rec_bytes_max = bytes;
    uint64_t slots = (uint64_t)batch * (maxps > 4096 ? maxps / 4096 : 1);
    st->slots_max = (uint32_t)(slots > 65536 ? 65536 : slots);
    st->batch_pages = batch;
}

int
atomio__store_write_headers(struct atomio_store *st, uint64_t tail)
{
    struct atomio_dw_geom g = st->g;
    g.tail = tail;
    g.generation = tail / ATOMIO_DW_GRANULE;
    /* One whole aligned block per copy: the store may be O_DIRECT. */
    uint8_t *blk = atomio__buf_alloc(NULL, ATOMIO_DW_ALIGN, ATOMIO_DW_ALIGN);
    if (!blk)
        return -ENOMEM;
    int r = 0;
    for (uint32_t copy = 0; copy < 2 && r == 0; copy++) {
        memset(blk, 0, ATOMIO_DW_ALIGN);
        atomio__dw_store_hdr_encode(&g, copy, blk);
        r = write_full(st->fd, blk, ATOMIO_DW_ALIGN, (uint64_t)copy * ATOMIO_DW_ALIGN);
        /* Each copy durable before the other is touched: one of them always holds a tail
         * that is safe for what the ring holds. */
        if (r == 0)
            r = atomio__sys.fdatasync(st->fd);
    }
    atomio__buf_free(NULL, blk, ATOMIO_DW_ALIGN);
    if (r < 0)
        return r;
    st->g.tail = tail;
    st->g.generation = g.generation;
    return 0;
}

int
atomio__store_void(atomio_ctx *ctx, const struct atomio_dw_rec *rec)
{
    struct atomio_store *st = ctx->store;
    int r =
        write_full(st->fd, zero_block, ATOMIO_DW_GRANULE, atomio__dw_ring_pos(&st->g, rec->lsn));
    if (r == 0)
        r = atomio__sys.fdatasync(st->fd);
    return r;
}

/*
 * init_store() -- lay out a fresh store with geometry g: both headers zeroed first (so a crash
 * half-way leaves zero headers over a zero ring, which the next open lays out again), then the
 * file sized, preallocated and the ring zero-filled (later writes never allocate or convert
 * unwritten extents), then both headers written, each made durable.
 */
static int
init_store(struct atomio_store *st, struct atomio_dw_geom *g)
{
    int r;
    uint64_t size = atomio__dw_store_size(g);
    if ((r = zero_fill(st->fd, 0, ATOMIO_DW_RING_OFFSET)) < 0 ||
        (r = atomio__sys.fdatasync(st->fd)) < 0)
        return r;
    if ((r = atomio__sys.ftruncate(st->fd, size)) < 0)
        return r;
    r = atomio__sys.fallocate(st->fd, 0, 0, size);
    if (r < 0 && r != -EOPNOTSUPP && r != -ENOSYS)
        return r; /* ENOSPC here, at open, rather than on the write path */
    if ((r = zero_fill(st->fd, g->ring_offset, g->ring_size)) < 0)
        return r;
    make_uuid(g->uuid);
    st->g = *g;
    if ((r = atomio__store_write_headers(st, 0)) < 0)
        return r;
    return sync_dir(st->dir);
}

/* v1_live() -- whether a store of format version 1 (fixed segments after a 4 KiB header)
 * holds any batch: then its copies may be needed and it is left alone. */
static int
v1_live(struct atomio_store *st, const uint8_t *hdr, bool *live)
{
    uint32_t nseg = (uint32_t)hdr[28] | (uint32_t)hdr[29] << 8 | (uint32_t)hdr[30] << 16 |
                    (uint32_t)hdr[31] << 24;
    uint64_t seg_size = 0, seg_off = 0;
    for (int i = 7; i >= 0; i--) {
        seg_size = seg_size << 8 | hdr[40 + i];
        seg_off = seg_off << 8 | hdr[48 + i];
    }
    *live = false;
    if (nseg > 4096 || seg_size % ATOMIO_DW_ALIGN || seg_off % ATOMIO_DW_ALIGN)
        return ATOMIO_E_STORE;
    uint8_t b[64];
    for (uint32_t i = 0; i < nseg && !*live; i++) {
        int r = atomio__pread_full(st->fd, b, sizeof(b), seg_off + (uint64_t)i * seg_size);
        if (r < 0)
            return r;
        for (size_t k = 0; k < sizeof(b) && !*live; k++)
            *live = b[k] != 0;
    }
    return 0;
}

/* ring_has_data() -- any non-zero byte in the ring (a store whose headers are both gone). */
static int
ring_has_data(struct atomio_store *st, uint64_t ring_size, bool *data)
{
    size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return -ENOMEM;
    uint64_t fsize;
    int r = file_size(st->fd, &fsize);
    *data = false;
    uint64_t end = ATOMIO_DW_RING_OFFSET + ring_size;
    if (r == 0 && fsize < end)
        end = fsize;
    for (uint64_t off = ATOMIO_DW_RING_OFFSET; r == 0 && off < end && !*data; off += chunk) {
        size_t n = end - off < chunk ? (size_t)(end - off) : chunk;
        r = atomio__pread_full(st->fd, buf, n, off);
        for (size_t k = 0; r == 0 && k < n && !*data; k++)
            *data = buf[k] != 0;
    }
    free(buf);
    return r;
}

/*
 * read_headers() -- the store's geometry from its two header copies. ATOMIO_DW_HDR_OK with
 * st->g filled; ATOMIO_DW_HDR_EMPTY when the store was never laid out (empty file, or zero headers
 * over a zero ring); else ATOMIO_E_STORE with a reason. A single damaged copy is survived (*repair
 * set: the caller rewrites it from the good one).
 */
static int
read_headers(struct atomio_store *st, bool *repair)
{
    *repair = false;
    uint64_t size;
    int r = file_size(st->fd, &size);
    if (r < 0)
        return r;
    if (size == 0)
        return ATOMIO_DW_HDR_EMPTY;
    uint8_t buf[2 * ATOMIO_DW_ALIGN];
    if ((r = atomio__pread_full(st->fd, buf, sizeof(buf), 0)) < 0)
        return r;
    struct atomio_dw_geom g[2];
    uint32_t ver[2];
    const char *why[2];
    int d[2];
    for (uint32_t c = 0; c < 2; c++)
        d[c] = atomio__dw_store_hdr_decode(buf + c * ATOMIO_DW_ALIGN, ATOMIO_DW_STORE_HDR_LEN, c,
                                           &g[c], &ver[c], &why[c]);
    if (ver[0] == 1) {
        /* A store of format version 1: the only record of the old layout we read. */
        bool live;
        if ((r = v1_live(st, buf, &live)) < 0) {
            atomio__reason_set("a version 1 store with a damaged header: recover it with "
                               "libatomio 0.1 (atomio-bench recover), then remove it");
            return r;
        }
        if (live) {
            atomio__reason_set("a version 1 store holds copies that may be needed: recover it "
                               "with libatomio 0.1 (atomio-bench recover DIR) before opening "
                               "it with this version");
            return ATOMIO_E_STORE;
        }
        return ATOMIO_DW_HDR_EMPTY; /* nothing in it: lay it out again as version 2 */
    }
    if (d[0] == 0 && d[1] == 0) {
        if (memcmp(g[0].uuid, g[1].uuid, 16) != 0 || g[0].ring_size != g[1].ring_size ||
            g[0].max_page_size != g[1].max_page_size) {
            atomio__reason_set("the two store header copies describe different stores");
            return ATOMIO_E_STORE;
        }
        /* Copy 0 is written first: when they differ it holds the newer tail. */
        st->g = g[0].tail >= g[1].tail ? g[0] : g[1];
    } else if (d[0] == 0 || d[1] == 0) {
        st->g = d[0] == 0 ? g[0] : g[1];
        *repair = true;
    } else if (d[0] == ATOMIO_DW_HDR_EMPTY && d[1] == ATOMIO_DW_HDR_EMPTY) {
        bool data;
        if ((r = ring_has_data(st, size > ATOMIO_DW_RING_OFFSET ? size - ATOMIO_DW_RING_OFFSET : 0,
                               &data)) < 0)
            return r;
        if (!data)
            return ATOMIO_DW_HDR_EMPTY; /* a layout that never finished */
        atomio__reason_set("both store headers are zero but the ring holds data: it may hold "
                           "the only good copies of torn pages; inspect it, then reset it "
                           "explicitly (atomio_store_reset, atomio-bench store reset)");
        return ATOMIO_E_STORE;
    } else {
        atomio__reason_set("both store headers are unreadable (%s; %s): the store may hold the "
                           "only good copies of torn pages; inspect it, then reset it "
                           "explicitly (atomio_store_reset, atomio-bench store reset)",
                           why[0], why[1]);
        return ATOMIO_E_STORE;
    }
    if (size < atomio__dw_store_size(&st->g)) {
        atomio__reason_set("store file shorter than its header says");
        return ATOMIO_E_STORE;
    }
    return 0;
}

/* ---- manifest ------------------------------------------------------------------------------ */

static int
man_load_cb(void *arg, const struct atomio_dw_man_rec *m)
{
    return atomio__man_set(arg, m) < 0 ? 1 : 0;
}

/* man_read() -- read manifest bytes [from, to) into the map. Records never straddle a damaged
 * stretch: the walk resumes at the next 8-byte boundary that starts a valid record. */
static int
man_read(struct atomio_store *st, uint64_t from, uint64_t to)
{
    if (to <= from)
        return 0;
    if (to - from > (256u << 20))
        return ATOMIO_E_STORE; /* no sane manifest is this large */
    size_t n = (size_t)(to - from);
    uint8_t *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    int r = atomio__pread_full(st->mfd, buf, n, from);
    for (size_t off = 0; r == 0 && off + ATOMIO_DW_MANIFEST_HDR_LEN <= n;) {
        size_t used = atomio__dw_manifest_walk(buf + off, n - off, man_load_cb, st);
        off += used ? used : 8;
    }
    free(buf);
    return r;
}

int
atomio__store_man_refresh(struct atomio_store *st)
{
    pthread_mutex_lock(&st->mlock);
    uint64_t len = atomio__shared_man_len(st);
    int r = man_read(st, st->man_read, len);
    if (r == 0)
        st->man_read = len;
    pthread_mutex_unlock(&st->mlock);
    return r;
}

/* man_append() -- append n records durably at the manifest's shared end, with one write and
 * one fdatasync. Caller holds the shared lock. */
static int
man_append(struct atomio_store *st, const struct atomio_dw_man_rec *m, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(m[i].path);
        if (plen == 0 || plen > ATOMIO_DW_PATH_MAX)
            return -ENAMETOOLONG;
        total += atomio__dw_manifest_rec_len(plen);
    }
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(m[i].path);
        atomio__dw_manifest_encode(buf + off, &m[i], plen);
        off += atomio__dw_manifest_rec_len(plen);
    }
    uint64_t at = atomio__shared_man_len(st);
    int r = write_full(st->mfd, buf, total, at);
    if (r == 0)
        r = atomio__sys.fdatasync(st->mfd);
    free(buf);
    if (r < 0)
        return r; /* a half record is skipped by readers; the next append overwrites it */
    atomio__shared_set_man_len(st, at + total);
    pthread_mutex_lock(&st->mlock);
    if (st->man_read == at)
        st->man_read = at + total;
    for (size_t i = 0; i < n && r == 0; i++)
        r = atomio__man_set(st, &m[i]);
    pthread_mutex_unlock(&st->mlock);
    return r;
}

/* recorded_path() -- how path is recorded: relative to the data root when under it. */
static const char *
recorded_path(const atomio_ctx *ctx, const char *path, uint32_t *flags)
{
    const char *root = ctx->opts.data_root;
    *flags = 0;
    if (!root || !*root)
        return path;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (strncmp(path, root, n) == 0 && path[n] == '/' && path[n + 1]) {
        *flags = ATOMIO_DW_MAN_RELATIVE;
        return path + n + 1;
    }
    return path;
}

int
atomio__store_resolve(atomio_ctx *ctx, uint64_t file_id, char *out, size_t len, uint64_t *from_lsn)
{
    struct atomio_store *st = ctx->store;
    pthread_mutex_lock(&st->mlock);
    const struct atomio_dw_manifest_ent *e = atomio__man_find(st, file_id);
    int r = 0;
    if (!e) {
        r = -ENOENT;
    } else {
        if (from_lsn)
            *from_lsn = e->from_lsn;
        const char *root = ctx->opts.data_root;
        int n;
        if (e->flags & ATOMIO_DW_MAN_RELATIVE) {
            if (!root || !*root) {
                snprintf(out, len, "%s", e->path);
                r = ATOMIO_E_UNAPPLIED; /* relative, and no data root to resolve it */
            } else if ((n = snprintf(out, len, "%s/%s", root, e->path)) < 0 || (size_t)n >= len) {
                r = -ENAMETOOLONG;
            }
        } else if ((n = snprintf(out, len, "%s", e->path)) < 0 || (size_t)n >= len) {
            r = -ENAMETOOLONG;
        }
    }
    pthread_mutex_unlock(&st->mlock);
    return r;
}

/* derive_id() -- a stable id for a file the engine gave none: FNV-1a of its recorded path
 * (relative to the data root when under it, so a moved directory keeps its ids) with the top
 * bit set, out of the way of small engine ids such as tablespace numbers. */
static uint64_t
derive_id(const char *path)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h | (1ull << 63);
}

int
atomio__store_register(atomio_ctx *ctx, atomio_file *f, bool fence)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return 0;
    int r = atomio__store_check(ctx);
    if (r < 0)
        return r;
    if (!f->path)
        return ATOMIO_E_INVAL;
    uint32_t flags;
    const char *rec_path = recorded_path(ctx, f->path, &flags);
    size_t len = strlen(rec_path);
    if (len == 0 || len > ATOMIO_DW_PATH_MAX)
        return -ENAMETOOLONG;
    if (f->file_id == 0)
        f->file_id = derive_id(rec_path);

    /* A process that joined late reads the manifest records appended since before it takes
     * the instance's lock (they never change once their length is published), so that under
     * the lock it reads only what came after. */
    if ((r = atomio__store_man_refresh(st)) < 0)
        return r;
    atomio__shared_lock(st);
    r = atomio__store_man_refresh(st);
    if (r == 0) {
        uint64_t head = st->sh ? atomio__shared_head_locked(st) : 0;
        pthread_mutex_lock(&st->mlock);
        const struct atomio_dw_manifest_ent *e = atomio__man_find(st, f->file_id);
        /* A file written by a path that bypasses the store gets a fence: its copies already in
         * the store are older than anything it writes from now on. */
        uint64_t from = fence ? head : (e ? e->from_lsn : 0);
        bool same = e && e->flags == flags && strcmp(e->path, rec_path) == 0 && e->from_lsn == from;
        pthread_mutex_unlock(&st->mlock);
        if (!same) {
            struct atomio_dw_man_rec m = {
                .file_id = f->file_id, .from_lsn = from, .flags = flags, .path = rec_path};
            r = man_append(st, &m, 1);
        }
        /* Its copies so far are dead: none of them waits for a sync of the file any more. */
        if (r == 0 && fence)
            atomio__shared_fenced(st, &f->file_id, 1);
    }
    atomio__shared_unlock(st);
    return r;
}

int
atomio__store_remap(atomio_ctx *ctx, uint64_t file_id, const char *path)
{
    struct atomio_store *st = ctx->store;
    uint32_t flags;
    const char *rec_path = recorded_path(ctx, path, &flags);
    atomio__shared_lock(st);
    int r = atomio__store_man_refresh(st);
    if (r == 0) {
        pthread_mutex_lock(&st->mlock);
        const struct atomio_dw_manifest_ent *e = atomio__man_find(st, file_id);
        uint64_t from = e ? e->from_lsn : 0;
        pthread_mutex_unlock(&st->mlock);
        struct atomio_dw_man_rec m = {
            .file_id = file_id, .from_lsn = from, .flags = flags, .path = rec_path};
        r = man_append(st, &m, 1);
    }
    atomio__shared_unlock(st);
    return r;
}

/* under() -- whether path names something inside directory dir (dlen bytes; a trailing '/'
 * only when dir is the root). */
static bool
under(const char *path, const char *dir, size_t dlen)
{
    if (strncmp(path, dir, dlen) != 0)
        return false;
    const char *rest = path + dlen;
    if (dir[dlen - 1] != '/' && *rest++ != '/')
        return false;
    return *rest != '\0';
}

int
atomio__store_fence_dir(atomio_ctx *ctx, const char *dir)
{
    struct atomio_store *st = ctx->store;
    /* Resolved as atomio_file_open() resolved the files' paths, so any spelling of the
     * directory (relative, absolute, through a symlink) names the same files. */
    char *real = realpath(dir, NULL);
    if (!real)
        return -errno;
    size_t dlen = strlen(real);
    /* Staged pages go in place first, as for atomio_file_fence(): one written after the
     * directory is gone would fail write-behind or land in a new file of the same name. */
    int r = atomio__stage_flush(ctx);
    if (r < 0) {
        free(real);
        return r;
    }

    struct atomio_dw_man_rec *recs = NULL;
    char **paths = NULL;  /* recs[i].path, owned */
    uint64_t *ids = NULL; /* every matched file, fenced now or already */
    char *joined = NULL;  /* a relative entry placed under the data root */
    size_t nrec = 0, matched = 0, jcap = 0;
    atomio__shared_lock(st);
    r = atomio__store_man_refresh(st);
    if (r == 0) {
        uint64_t head = st->sh ? atomio__shared_head_locked(st) : 0;
        pthread_mutex_lock(&st->mlock);
        size_t cap = st->nman ? st->nman : 1;
        recs = calloc(cap, sizeof(*recs));
        paths = calloc(cap, sizeof(*paths));
        ids = calloc(cap, sizeof(*ids));
        if (!recs || !paths || !ids)
            r = -ENOMEM;
        const char *root = ctx->opts.data_root;
        size_t rlen = root ? strlen(root) : 0;
        while (rlen > 1 && root[rlen - 1] == '/')
            rlen--;
        for (size_t i = 0; r == 0 && i < st->nman; i++) {
            const struct atomio_dw_manifest_ent *e = &st->man[i];
            /* The entry's absolute path: a relative one sits under the data root. */
            const char *path = e->path;
            if (e->flags & ATOMIO_DW_MAN_RELATIVE) {
                if (!rlen)
                    continue; /* no data root to place it: not under any directory we know */
                size_t need = rlen + 1 + strlen(e->path) + 1;
                if (need > jcap) {
                    char *grown = realloc(joined, need);
                    if (!grown) {
                        r = -ENOMEM;
                        break;
                    }
                    joined = grown;
                    jcap = need;
                }
                snprintf(joined, jcap, "%.*s/%s", (int)rlen, root, e->path);
                path = joined;
            }
            if (!under(path, real, dlen))
                continue;
            ids[matched++] = e->file_id;
            if (e->from_lsn == head)
                continue; /* already fenced at the head: no copy of it since */
            char *copy = strdup(e->path);
            if (!copy) {
                r = -ENOMEM;
                break;
            }
            paths[nrec] = copy;
            recs[nrec++] = (struct atomio_dw_man_rec){
                .file_id = e->file_id, .from_lsn = head, .flags = e->flags, .path = copy};
        }
        pthread_mutex_unlock(&st->mlock);
        if (r == 0 && nrec)
            r = man_append(st, recs, nrec);
        if (r == 0)
            atomio__shared_fenced(st, ids, matched);
    }
    atomio__shared_unlock(st);
    for (size_t i = 0; i < nrec; i++)
        free(paths[i]);
    free(paths);
    free(recs);
    free(ids);
    free(joined);
    free(real);
    if (r < 0)
        return r;
    return matched > INT_MAX ? INT_MAX : (int)matched;
}

/* load_manifest() -- the first process reads the whole manifest; when the store holds no live
 * copy nothing refers to it any more and it starts empty. */
static int
load_manifest(struct atomio_store *st, bool live)
{
    uint64_t size;
    int r = file_size(st->mfd, &size);
    if (r < 0)
        return r;
    if (!live) {
        if (size && ((r = atomio__sys.ftruncate(st->mfd, 0)) < 0 ||
                     (r = atomio__sys.fdatasync(st->mfd)) < 0))
            return r;
        size = 0;
    }
    size = atomio__dw_round(size, 8); /* appends start 8-aligned after a torn tail */
    if ((r = man_read(st, 0, size)) < 0)
        return r;
    st->man_read = size;
    atomio__shared_set_man_len(st, size);
    return 0;
}

/* ---- record buffers ------------------------------------------------------------------------ */

struct atomio_dw_rec *
atomio__store_rec_get(atomio_ctx *ctx, uint32_t count, uint64_t page_bytes)
{
    struct atomio_store *st = ctx->store;
    size_t room = (size_t)atomio__dw_round(atomio__dw_table_bytes(count), ATOMIO_DW_ALIGN);
    size_t need = room + (size_t)page_bytes;
    pthread_mutex_lock(&st->lock);
    struct atomio_dw_rec **pp = &st->free_recs;
    while (*pp && (*pp)->cap < need)
        pp = &(*pp)->next_free;
    struct atomio_dw_rec *rec = *pp;
    if (rec)
        *pp = rec->next_free;
    pthread_mutex_unlock(&st->lock);
    if (!rec) {
        size_t dflt =
            (size_t)atomio__dw_round(atomio__dw_table_bytes(st->slots_max), ATOMIO_DW_ALIGN) +
            (size_t)st->rec_bytes_max;
        size_t cap = need > dflt ? need : dflt;
        rec = calloc(1, sizeof(*rec));
        if (rec)
            rec->buf = atomio__buf_alloc_lazy(ctx, cap, ATOMIO_DW_ALIGN);
        if (!rec || !rec->buf) {
            free(rec);
            return NULL;
        }
        rec->cap = cap;
    }
    rec->hdr_room = room;
    rec->next_free = NULL;
    return rec;
}

void
atomio__store_rec_put(atomio_ctx *ctx, struct atomio_dw_rec *rec)
{
    struct atomio_store *st = ctx->store;
    pthread_mutex_lock(&st->lock);
    rec->next_free = st->free_recs;
    st->free_recs = rec;
    pthread_mutex_unlock(&st->lock);
}

/* ---- open / close -------------------------------------------------------------------------- */

static void
store_free(atomio_ctx *ctx, struct atomio_store *st, bool forked)
{
    if (!st)
        return;
    while (st->free_recs) {
        struct atomio_dw_rec *r = st->free_recs;
        st->free_recs = r->next_free;
        atomio__buf_free(ctx, r->buf, r->cap);
        free(r);
    }
    atomio__shared_detach(st, forked);
    if (st->fd >= 0)
        atomio__sys.close(st->fd);
    if (st->mfd >= 0)
        atomio__sys.close(st->mfd);
    atomio__man_free(st);
    free(st->path);
    free(st->dir);
    free(st->held_ids);
    free(st->discard_ids);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->mlock);
    free(st);
}

/*
 * maybe_direct() -- reopen the store with O_DIRECT when the filesystem supports it at an
 * alignment our 512-byte records satisfy: record writes then skip the page cache.
 */
static void
maybe_direct(struct atomio_store *st)
{
    struct atomio_statx stx;
    if (atomio__sys.statx(st->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0)
        return;
    if (!(stx.mask & STATX_DIOALIGN) || stx.dio_offset_align == 0 ||
        stx.dio_offset_align > ATOMIO_DW_GRANULE || stx.dio_mem_align > ATOMIO_DW_GRANULE)
        return;
    int fd = atomio__sys.open(st->path, O_RDWR | O_DIRECT | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    atomio__sys.close(st->fd);
    st->fd = fd;
    st->o_direct = true;
}

/* open_first() -- this process sets the instance up: headers (repaired, or laid out), the
 * ring scanned for live copies, the shared state created, the manifest loaded. */
static int
open_first(atomio_ctx *ctx, struct atomio_store *st)
{
    bool repair;
    int r = read_headers(st, &repair);
    if (r < 0)
        return r;
    struct atomio_dw_geom want;
    if (wanted_geometry(ctx, &want) < 0)
        return ATOMIO_E_INVAL;
    if (r == ATOMIO_DW_HDR_EMPTY) {
        if ((r = init_store(st, &want)) < 0)
            return r;
    } else if (repair) {
        if ((r = atomio__store_write_headers(st, st->g.tail)) < 0)
            return r;
        st->headers_repaired = 1;
    }
    struct atomio_dw_scan_result sr;
    if ((r = atomio__dw_scan_live(st, &sr)) < 0)
        return r;
    if (!sr.live &&
        (st->g.ring_size != want.ring_size || st->g.max_page_size != want.max_page_size)) {
        /* Nothing to recover: adopt the geometry the options ask for. */
        if ((r = init_store(st, &want)) < 0)
            return r;
        sr.head = 0;
    }
    uint64_t head = sr.live ? sr.head : (st->g.tail > sr.head ? st->g.tail : sr.head);
    head = atomio__dw_round(head, ATOMIO_DW_GRANULE);
    if ((r = atomio__shared_create(ctx, st)) < 0)
        return r;
    atomio__shared_init_ring(st, head, st->g.tail);
    atomio__shared_set_needs_recovery(st, sr.live);
    if ((r = load_manifest(st, sr.live)) < 0)
        return r;
    return sync_dir(st->dir);
}

/* open_joined() -- another process of the instance set the store up: use it as it is. */
static int
open_joined(atomio_ctx *ctx, struct atomio_store *st)
{
    bool repair;
    int r = read_headers(st, &repair);
    if (r != 0)
        return r < 0 ? r : ATOMIO_E_STORE_LOCKED;
    if ((r = atomio__shared_join(ctx, st)) < 0)
        return r;
    return atomio__store_man_refresh(st);
}

int
atomio__store_open(atomio_ctx *ctx)
{
    if (ctx->opts.flags & ATOMIO_CTX_NO_DOUBLEWRITE)
        return 0;
    const char *dir = ctx->doublewrite_dir ? ctx->doublewrite_dir : ctx->opts.doublewrite_dir;
    if (!dir || !*dir)
        return ATOMIO_E_INVAL;

    /* The directory must exist: creating it would hide a deleted store (and the torn-page
     * copies it held) behind an empty new one. */
    int dfd = atomio__sys.open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (dfd < 0)
        return dfd;
    atomio__sys.close(dfd);

    struct atomio_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->fd = st->mfd = st->lockfd = -1;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->mlock, NULL);
    int r;
    char spath[4096], mpath[4096];
    if ((r = join_path(spath, sizeof(spath), dir, ATOMIO_DW_STORE_FILE)) < 0 ||
        (r = join_path(mpath, sizeof(mpath), dir, ATOMIO_DW_MANIFEST_FILE)) < 0)
        goto fail;
    st->path = strdup(spath);
    st->dir = strdup(dir);
    if (!st->path || !st->dir) {
        r = -ENOMEM;
        goto fail;
    }
    st->fd = atomio__sys.open(spath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        r = st->fd;
        goto fail;
    }
    st->mfd = atomio__sys.open(mpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->mfd < 0) {
        r = st->mfd;
        goto fail;
    }
    bool first;
    for (int tries = 0;; tries++) {
        if ((r = atomio__shared_attach(ctx, st, &first)) < 0)
            goto fail;
        r = first ? open_first(ctx, st) : open_joined(ctx, st);
        if (r != -EAGAIN || tries == 100)
            break;
        atomio__lock_close(st->lockfd); /* the first process left unready: start over */
        st->lockfd = -1;
    }
    if (r == -EAGAIN) {
        /* The instance holds the store, but its shared state cannot be joined: someone
         * removed its /dev/shm object, or its first process keeps failing to set it up. */
        atomio__reason_set("cannot join the instance that has the doublewrite store open: its "
                           "shared memory object /dev/shm%s is missing or not set up; "
                           "restart the instance",
                           st->shm_name);
        r = ATOMIO_E_STORE_LOCKED;
    }
    if (r < 0)
        goto fail;
    record_limits(ctx, st);
    maybe_direct(st);
    /* The first process lets others in once the store is recovered (ctx.c), so no process
     * ever writes next to recovery. */
    st->first = first;
    pthread_once(&fork_once, watch_forks);
    st->fork_gen = atomic_load(&fork_gen);
    ctx->store = st;
    return 0;
fail:
    store_free(ctx, st, false);
    return r;
}

void
atomio__store_close(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    if (!st)
        return;
    ctx->store = NULL;
    store_free(ctx, st, st->pid != getpid());
}

int
atomio__store_ready(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    if (!st || !st->first || st->doors_open)
        return 0;
    int r = atomio__shared_open_doors(st);
    if (r == 0)
        st->doors_open = true;
    return r;
}

bool
atomio__store_is_first(const atomio_ctx *ctx)
{
    return ctx->store && ctx->store->first;
}

void
atomio__store_stats(const atomio_ctx *ctx, atomio_stats *s)
{
    struct atomio_store *st = ctx->store;
    if (st->pid != getpid() || !st->sh)
        return;
    atomio__shared_counts(st, &s->store_bytes, &s->store_bytes_used, &s->attached);
    s->staged_now = atomio__stage_count((atomio_ctx *)(uintptr_t)ctx);
}

int
atomio__store_check(const atomio_ctx *ctx)
{
    const struct atomio_store *st = ctx->store;
    if (!st)
        return ATOMIO_E_NO_DOUBLEWRITE;
    if (st->fork_gen != atomic_load_explicit(&fork_gen, memory_order_relaxed))
        return ATOMIO_E_INVAL; /* a ctx inherited across fork(): the child opens its own */
    if (atomic_load(&st->failed))
        return ATOMIO_E_STORE_FAILED;
    return 0;
}

bool
atomio__store_fits(const atomio_ctx *ctx, uint32_t page_size)
{
    const struct atomio_store *st = ctx->store;
    return st && page_size <= st->g.max_page_size && page_size <= st->rec_bytes_max;
}

/* ---- held and discarded file ids ----------------------------------------------------------- */

static int
id_add(uint64_t **ids, size_t *n, size_t *cap, uint64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*ids)[i] == id)
            return 0;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        void *p = realloc(*ids, c * sizeof(**ids));
        if (!p)
            return -ENOMEM;
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* id_in() -- whether id is among ids[0..n), under the store's lock. */
static bool
id_in(struct atomio_store *st, uint64_t **ids, size_t *n, uint64_t id)
{
    bool found = false;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < *n && !found; i++)
        found = (*ids)[i] == id;
    pthread_mutex_unlock(&st->lock);
    return found;
}

static int
id_add_locked(struct atomio_store *st, uint64_t **ids, size_t *n, size_t *cap, uint64_t id)
{
    pthread_mutex_lock(&st->lock);
    int r = id_add(ids, n, cap, id);
    pthread_mutex_unlock(&st->lock);
    return r;
}

int
atomio__store_hold_id(struct atomio_store *st, uint64_t file_id)
{
    return id_add_locked(st, &st->held_ids, &st->nheld_ids, &st->cap_held_ids, file_id);
}

bool
atomio__store_id_held(struct atomio_store *st, uint64_t file_id)
{
    return id_in(st, &st->held_ids, &st->nheld_ids, file_id);
}

int
atomio__store_discard_id(struct atomio_store *st, uint64_t file_id)
{
    return id_add_locked(st, &st->discard_ids, &st->ndiscard, &st->cap_discard, file_id);
}

bool
atomio__store_id_discarded(struct atomio_store *st, uint64_t file_id)
{
    return id_in(st, &st->discard_ids, &st->ndiscard, file_id);
}

void
atomio__store_reset_after_recovery(struct atomio_store *st)
{
    pthread_mutex_lock(&st->lock);
    st->nheld_ids = 0;
    st->ndiscard = 0;
    pthread_mutex_unlock(&st->lock);
    atomio__shared_set_needs_recovery(st, false);
}
