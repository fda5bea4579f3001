/* SPDX-License-Identifier: MIT */
/*
 * fuzz_store.c -- libFuzzer target for the doublewrite store reader: arbitrary bytes as a
 * store file and a manifest, then the whole of what reads them: ctx open (store open,
 * recovery, which may rewrite data pages), atomio_store_inspect(), and the pure decoders.
 * Everything runs on an in-memory filesystem behind the syscall seam. Properties checked
 * besides "no crash, no sanitizer report, no hang": recovery writes only to the store, the
 * manifest and files the manifest names, and never creates a file.
 *
 * Input: u16 little-endian manifest length m, m manifest bytes, the rest is the store file.
 * Build: cmake -DATOMIO_BUILD_FUZZ=ON with clang (see tests/CMakeLists.txt).
 */
#include "atomio_internal.h"
#include "store/format.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#define DIR      "/fuzz/dw"
#define MAXFILES 32
#define MAXFD    64
#define FILE_CAP (8u << 20) /* writes past this fail with EFBIG, like a small filesystem */

struct mfile {
    char path[ATOMIO_DW_PATH_MAX + 64];
    uint8_t *data;
    size_t len, cap;
    int named; /* named by the manifest (recovery may write it) */
};

static struct mfile files[MAXFILES];
static int nfiles;
static int fdmap[MAXFD]; /* fd -> file index + 1; -1 for the directory */

static void
fail(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_store: %s: %s\n", what, path);
    abort();
}

static int
lookup(const char *path)
{
    for (int i = 0; i < nfiles; i++)
        if (strcmp(files[i].path, path) == 0)
            return i;
    return -1;
}

static int
add(const char *path, const uint8_t *data, size_t len, int named)
{
    if (nfiles == MAXFILES)
        return -1;
    struct mfile *f = &files[nfiles];
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->data = malloc(len ? len : 1);
    if (len)
        memcpy(f->data, data, len);
    f->len = f->cap = len;
    f->named = named;
    return nfiles++;
}

static int
new_fd(int v)
{
    for (int fd = 3; fd < MAXFD; fd++)
        if (!fdmap[fd]) {
            fdmap[fd] = v;
            return fd;
        }
    return -EMFILE;
}

static struct mfile *
of(int fd)
{
    return fd >= 0 && fd < MAXFD && fdmap[fd] > 0 ? &files[fdmap[fd] - 1] : NULL;
}

static int
f_open(const char *path, int flags, unsigned mode)
{
    (void)mode;
    if (strcmp(path, DIR) == 0)
        return new_fd(-1);
    if ((flags & O_TMPFILE) == O_TMPFILE)
        return -EOPNOTSUPP;
    int i = lookup(path);
    if (i < 0) {
        if (!(flags & O_CREAT))
            return -ENOENT;
        /* Only the store's own files may be created. */
        if (strncmp(path, DIR "/", strlen(DIR "/")) != 0)
            fail("created a file outside the store", path);
        i = add(path, NULL, 0, 0);
        if (i < 0)
            return -ENOSPC;
    }
    return new_fd(i + 1);
}

static int
f_close(int fd)
{
    if (fd >= 0 && fd < MAXFD)
        fdmap[fd] = 0;
    return 0;
}

static ssize_t
f_pwritev2(int fd, const struct iovec *iov, int cnt, uint64_t off, int flags)
{
    (void)flags;
    struct mfile *f = of(fd);
    if (!f)
        return -EBADF;
    int ours = strncmp(f->path, DIR "/", strlen(DIR "/")) == 0;
    if (!ours && !f->named)
        fail("wrote a file the manifest does not name", f->path);
    size_t len = 0;
    for (int k = 0; k < cnt; k++)
        len += iov[k].iov_len;
    if (off > FILE_CAP || len > FILE_CAP - off)
        return -EFBIG;
    if (off + len > f->cap) {
        size_t c = (size_t)(off + len);
        uint8_t *p = realloc(f->data, c);
        if (!p)
            return -ENOMEM;
        memset(p + f->cap, 0, c - f->cap);
        f->data = p;
        f->cap = c;
    }
    if (off > f->len)
        memset(f->data + f->len, 0, (size_t)off - f->len);
    size_t pos = (size_t)off;
    for (int k = 0; k < cnt; k++) {
        memcpy(f->data + pos, iov[k].iov_base, iov[k].iov_len);
        pos += iov[k].iov_len;
    }
    if (off + len > f->len)
        f->len = (size_t)(off + len);
    return (ssize_t)len;
}

static ssize_t
f_pread(int fd, void *buf, size_t len, uint64_t off)
{
    struct mfile *f = of(fd);
    if (!f)
        return -EBADF;
    if (off >= f->len)
        return 0;
    size_t n = f->len - off < len ? (size_t)(f->len - off) : len;
    memcpy(buf, f->data + off, n);
    return (ssize_t)n;
}

static int
f_fdatasync(int fd)
{
    return fd >= 0 && fd < MAXFD && fdmap[fd] ? 0 : -EBADF;
}

static int
f_resize(int fd, uint64_t len)
{
    struct mfile *f = of(fd);
    if (!f)
        return -EBADF;
    if (len > FILE_CAP)
        return -ENOSPC;
    if (len > f->cap) {
        uint8_t *p = realloc(f->data, (size_t)len);
        if (!p)
            return -ENOMEM;
        memset(p + f->cap, 0, (size_t)len - f->cap);
        f->data = p;
        f->cap = (size_t)len;
    }
    if (len > f->len)
        memset(f->data + f->len, 0, (size_t)len - f->len);
    f->len = (size_t)len;
    return 0;
}

static int
f_ftruncate(int fd, uint64_t len)
{
    return f_resize(fd, len);
}

static int
f_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
    struct mfile *f = of(fd);
    if (!f || mode)
        return -EOPNOTSUPP;
    return off + len > f->len ? f_resize(fd, off + len) : 0;
}

static int
f_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx)
{
    (void)path;
    (void)flags;
    (void)mask;
    memset(stx, 0, sizeof(*stx));
    struct mfile *f = of(dirfd);
    if (!f)
        return -EBADF;
    stx->mask = 0x7ffu;
    stx->size = f->len;
    stx->blksize = 4096;
    stx->mode = S_IFREG | 0600;
    return 0;
}

static int
f_fstatfs(int fd, struct statfs *st)
{
    (void)fd;
    memset(st, 0, sizeof(*st));
    st->f_type = 0xEF53;
    return 0;
}

static ssize_t
f_read_text(const char *path, char *buf, size_t len)
{
    (void)path;
    (void)buf;
    (void)len;
    return -ENOENT;
}

/* Manifest-named paths become existing (empty) data files, so recovery gets to write. */
static int
name_cb(void *arg, uint64_t id, const char *path)
{
    (void)arg;
    (void)id;
    int i = lookup(path);
    if (i >= 0)
        files[i].named = 1;
    else if (strncmp(path, DIR "/", strlen(DIR "/")) != 0 && (nfiles % 2 == 0))
        add(path, NULL, 0, 1); /* every other one stays missing: files_missing path */
    return 0;
}

static int
inspect_cb(void *arg, const atomio_inspect_record *rec)
{
    (*(uint64_t *)arg)++;
    if (rec->kind == ATOMIO_INSPECT_FILE && !rec->path)
        abort();
    if (rec->kind == ATOMIO_INSPECT_BATCH && !rec->why)
        abort();
    return 0;
}

static void
reset(void)
{
    for (int i = 0; i < nfiles; i++)
        free(files[i].data);
    nfiles = 0;
    memset(fdmap, 0, sizeof(fdmap));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t m = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (m > size)
        m = size;
    const uint8_t *man = data, *store = data + m;
    size_t slen = size - m;

    /* The pure decoders, on the raw bytes. */
    struct atomio_dw_geom g;
    (void)atomio__dw_manifest_walk(man, m, NULL, NULL);
    if (atomio__dw_store_hdr_decode(store, slen, &g, NULL) == 0) {
        for (uint32_t s = 0; s < g.nseg; s++) {
            uint64_t off = atomio__dw_seg_off(&g, s);
            if (off >= slen)
                break;
            size_t avail = slen - off < g.seg_size ? (size_t)(slen - off) : (size_t)g.seg_size;
            struct atomio_dw_batch_hdr b;
            (void)atomio__dw_batch_decode(store + off, avail, &g, &b, NULL);
            for (uint32_t k = 0; k < b.count && k < 4096; k++) {
                struct atomio_dw_slot sl;
                bool ok;
                (void)atomio__dw_slot_decode(store + off, avail, &b, k, &sl, &ok);
            }
        }
    }

    /* The whole reader, on an in-memory filesystem. */
    add(DIR "/" ATOMIO_DW_STORE_FILE, store, slen, 0);
    add(DIR "/" ATOMIO_DW_MANIFEST_FILE, man, m, 0);
    (void)atomio__dw_manifest_walk(man, m, name_cb, NULL);
    atomio__sys.open = f_open;
    atomio__sys.close = f_close;
    atomio__sys.pwritev2 = f_pwritev2;
    atomio__sys.pread = f_pread;
    atomio__sys.fdatasync = f_fdatasync;
    atomio__sys.statx = f_statx;
    atomio__sys.fstatfs = f_fstatfs;
    atomio__sys.fallocate = f_fallocate;
    atomio__sys.ftruncate = f_ftruncate;
    atomio__sys.read_text = f_read_text;

    uint64_t recs = 0;
    int r = atomio_store_inspect(DIR, inspect_cb, &recs);
    if (r < 0 && r != ATOMIO_E_STORE && r != -ENOMEM)
        fail("inspect failed unexpectedly", atomio_err_name(r));

    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = DIR;
    o.doublewrite_segments = 2;
    o.doublewrite_batch_pages = 2;
    o.doublewrite_max_page_size = 4096;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    atomio_ctx *ctx = NULL;
    if (atomio_ctx_open(&o, &ctx) == 0) {
        /* recovery ran at open; a second run must find nothing left to do */
        atomio_recovery_report rep;
        memset(&rep, 0, sizeof(rep));
        rep.size = sizeof(rep);
        if (atomio_ctx_recover(ctx, &rep) == 0 && (rep.batches_scanned || rep.pages_restored))
            fail("recovery is not idempotent", "second run found batches");
        atomio_ctx_close(ctx);
    }
    atomio__sys = atomio__sys_real;
    reset();
    return 0;
}
