/* SPDX-License-Identifier: MIT */
/*
 * sim_device.c -- the simulated crashing device (see sim_device.h). Reads see the latest
 * bytes; durability is decided only when a crash image is built, from the op log: a file's
 * state at its last completed fdatasync, then each later write in order, whole if it was an
 * RWF_DSYNC write that returned, otherwise sector by sector as the chooser says.
 */
#include "sim_device.h"

#include "atomio_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

struct sim_file {
    char path[PATH_MAX];
    bool dir;
    uint8_t *cur;
    size_t len, cap;
};

struct sim_log {
    struct sim_op *ops;
    size_t n, cap;
    int nbase;                    /* files that existed when the log started */
    uint8_t *base[SIM_MAX_FILES]; /* their (durable) bytes then */
    size_t base_len[SIM_MAX_FILES];
};

#define MAX_FD 65536

static struct {
    pthread_mutex_t lock;
    char root[PATH_MAX];
    struct sim_file files[SIM_MAX_FILES];
    int nfiles;
    int fdmap[MAX_FD]; /* real placeholder fd -> file index + 1 */
    struct sim_log *log;
    long crash_at;
    bool dead;
    int atomic_errno;
    bool atomic_caps;
    int atomic_ok;
    long short_at;
    uint64_t short_keep;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- files ---------------------------------------------------------------------------------- */

static void
ensure_cap(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    cr_assert(p, "sim: out of memory");
    memset(p + *cap, 0, c - *cap);
    *buf = p;
    *cap = c;
}

static void
set_len(struct sim_file *f, size_t len)
{
    ensure_cap(&f->cur, &f->cap, len);
    if (len > f->len)
        memset(f->cur + f->len, 0, len - f->len);
    f->len = len;
}

/* canon() -- the key of a name: its real path when the placeholder exists (so "a//b", "./b"
 * and the realpath() that file.c keeps all name the same simulated file). */
static const char *
canon(const char *path, char *buf)
{
    if (realpath(path, buf))
        return buf;
    return path;
}

static int
find_file(const char *path)
{
    char buf[PATH_MAX];
    path = canon(path, buf);
    for (int i = 0; i < S.nfiles; i++)
        if (strcmp(S.files[i].path, path) == 0)
            return i;
    return -1;
}

static int
add_file(const char *path, bool dir)
{
    char buf[PATH_MAX];
    path = canon(path, buf);
    cr_assert_lt(S.nfiles, SIM_MAX_FILES, "sim: too many files");
    int i = S.nfiles++;
    memset(&S.files[i], 0, sizeof(S.files[i]));
    snprintf(S.files[i].path, sizeof(S.files[i].path), "%s", path);
    S.files[i].dir = dir;
    return i;
}

static struct sim_log *
log_new(void)
{
    struct sim_log *l = calloc(1, sizeof(*l));
    cr_assert(l);
    l->nbase = S.nfiles;
    for (int i = 0; i < S.nfiles; i++) {
        l->base_len[i] = S.files[i].len;
        l->base[i] = malloc(S.files[i].len ? S.files[i].len : 1);
        cr_assert(l->base[i]);
        if (S.files[i].len)
            memcpy(l->base[i], S.files[i].cur, S.files[i].len);
    }
    return l;
}

void
sim_log_free(struct sim_log *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->ops[i].data);
    for (int i = 0; i < l->nbase; i++)
        free(l->base[i]);
    free(l->ops);
    free(l);
}

static struct sim_op *
log_push(int kind, int file)
{
    struct sim_log *l = S.log;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->ops = realloc(l->ops, l->cap * sizeof(*l->ops));
        cr_assert(l->ops);
    }
    struct sim_op *op = &l->ops[l->n++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->file = file;
    return op;
}

/* next_op() -- account one mutating op; true if it is the crash op (the device dies). */
static bool
next_op(void)
{
    long idx = (long)S.log->n;
    if (S.crash_at >= 0 && idx == S.crash_at) {
        S.dead = true;
        return true;
    }
    return false;
}

static struct sim_file *
file_of_fd(int fd)
{
    if (fd < 0 || fd >= MAX_FD || !S.fdmap[fd])
        return NULL;
    return &S.files[S.fdmap[fd] - 1];
}

/* ---- the seam ------------------------------------------------------------------------------- */

static int
s_open(const char *path, int flags, unsigned mode)
{
    pthread_mutex_lock(&S.lock);
    int r;
    if (S.dead) {
        r = -EIO;
        goto out;
    }
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        r = -EOPNOTSUPP; /* no scratch files on this device: no buffered probe, no calibration */
        goto out;
    }
    int i = find_file(path);
    struct stat st;
    bool real_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (i < 0 && real_dir)
        i = add_file(path, true);
    if (i < 0) {
        if (!(flags & O_CREAT)) {
            r = -ENOENT;
            goto out;
        }
        /* placeholder, so fstat/realpath outside the seam see a regular file */
        int pfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        if (pfd < 0) {
            r = -errno;
            goto out;
        }
        close(pfd);
        i = add_file(path, false);
    }
    if ((flags & O_DIRECTORY) && !S.files[i].dir) {
        r = -ENOTDIR;
        goto out;
    }
    int fd = open(path, (S.files[i].dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    cr_assert_lt(fd, MAX_FD);
    S.fdmap[fd] = i + 1;
    r = fd;
    (void)mode;
out:
    pthread_mutex_unlock(&S.lock);
    return r;
}

static int
s_close(int fd)
{
    pthread_mutex_lock(&S.lock);
    if (fd >= 0 && fd < MAX_FD && S.fdmap[fd]) {
        S.fdmap[fd] = 0;
        close(fd);
    }
    pthread_mutex_unlock(&S.lock);
    return 0;
}

static int
s_dup(int fd)
{
    pthread_mutex_lock(&S.lock);
    int r = -EBADF;
    if (fd >= 0 && fd < MAX_FD && S.fdmap[fd]) {
        r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (r < 0)
            r = -errno;
        else if (r >= MAX_FD) {
            close(r);
            r = -EMFILE;
        } else {
            S.fdmap[r] = S.fdmap[fd];
        }
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

static ssize_t
s_pwritev2(int fd, const struct iovec *iov, int cnt, uint64_t off, int flags)
{
    pthread_mutex_lock(&S.lock);
    ssize_t r;
    struct sim_file *f = file_of_fd(fd);
    if (S.dead) {
        r = -EIO;
        goto out;
    }
    if (!f || f->dir) {
        r = -EBADF;
        goto out;
    }
    if ((flags & RWF_ATOMIC) && !(S.atomic_caps && S.atomic_ok > 0)) {
        r = -(S.atomic_errno ? S.atomic_errno : EOPNOTSUPP);
        goto out;
    }
    if (flags & RWF_ATOMIC)
        S.atomic_ok--;
    size_t len = 0;
    for (int k = 0; k < cnt; k++)
        len += iov[k].iov_len;
    bool crash = next_op();
    bool shorten = !crash && (long)S.log->n == S.short_at && S.short_keep < len;
    struct sim_op *op = log_push(SIM_WRITE, (int)(f - S.files));
    op->off = off;
    op->len = shorten ? S.short_keep : len;
    op->dsync = !crash && (flags & (RWF_DSYNC | RWF_SYNC)) != 0;
    op->atomic = (flags & RWF_ATOMIC) != 0;
    op->iovcnt = cnt;
    op->data = malloc(len ? len : 1);
    cr_assert(op->data);
    size_t pos = 0;
    for (int k = 0; k < cnt; k++) {
        memcpy(op->data + pos, iov[k].iov_base, iov[k].iov_len);
        pos += iov[k].iov_len;
    }
    len = op->len;
    if (off + len > f->len)
        set_len(f, (size_t)(off + len));
    if (len)
        memcpy(f->cur + off, op->data, len);
    r = crash ? -EIO : (ssize_t)len;
out:
    pthread_mutex_unlock(&S.lock);
    return r;
}

static ssize_t
s_pread(int fd, void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&S.lock);
    ssize_t r;
    struct sim_file *f = file_of_fd(fd);
    if (S.dead)
        r = -EIO;
    else if (!f || f->dir)
        r = -EBADF;
    else if (off >= f->len)
        r = 0;
    else {
        size_t n = f->len - off < len ? (size_t)(f->len - off) : len;
        memcpy(buf, f->cur + off, n);
        r = (ssize_t)n;
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

static int
s_fdatasync(int fd)
{
    pthread_mutex_lock(&S.lock);
    int r = 0;
    struct sim_file *f = file_of_fd(fd);
    if (S.dead)
        r = -EIO;
    else if (!f)
        r = -EBADF;
    else if (!f->dir) {
        /* A crash at a sync: it never happened; nothing to log beyond the crash itself. */
        bool crash = next_op();
        log_push(SIM_SYNC, (int)(f - S.files));
        r = crash ? -EIO : 0;
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

static int
s_resize(int fd, uint64_t len, bool grow_only)
{
    pthread_mutex_lock(&S.lock);
    int r = 0;
    struct sim_file *f = file_of_fd(fd);
    if (S.dead)
        r = -EIO;
    else if (!f || f->dir)
        r = -EBADF;
    else if (!grow_only || len > f->len) {
        bool crash = next_op();
        struct sim_op *op = log_push(SIM_TRUNC, (int)(f - S.files));
        op->len = len;
        if (crash)
            r = -EIO;
        else
            set_len(f, (size_t)len);
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

static int
s_ftruncate(int fd, uint64_t len)
{
    return s_resize(fd, len, false);
}

static int
s_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
    if (mode != 0)
        return -EOPNOTSUPP;
    return s_resize(fd, off + len, true);
}

static int
s_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx)
{
    (void)path;
    (void)flags;
    (void)mask;
    memset(stx, 0, sizeof(*stx));
    pthread_mutex_lock(&S.lock);
    struct sim_file *f = file_of_fd(dirfd);
    int r = 0;
    if (S.dead)
        r = -EIO;
    else if (!f)
        r = -EBADF;
    else {
        stx->mask = 0x7ffu; /* STATX_BASIC_STATS; no DIO alignment, no atomic writes */
        stx->blksize = 4096;
        stx->mode = (uint16_t)(f->dir ? (S_IFDIR | 0700) : (S_IFREG | 0600));
        stx->nlink = 1;
        stx->size = f->len;
        stx->blocks = (f->len + 511) / 512;
        stx->dev_major = 7;
        stx->dev_minor = 99;
        if (S.atomic_caps && !f->dir) {
            stx->mask |= STATX_WRITE_ATOMIC | STATX_DIOALIGN;
            stx->attributes |= STATX_ATTR_WRITE_ATOMIC;
            stx->dio_mem_align = 512;
            stx->dio_offset_align = 512;
            stx->atomic_write_unit_min = 512;
            stx->atomic_write_unit_max = 65536;
            stx->atomic_write_segments_max = 1;
        }
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

static int
s_fstatfs(int fd, struct statfs *st)
{
    (void)fd;
    memset(st, 0, sizeof(*st));
    st->f_type = 0xEF53; /* ext4: no atomic writes */
    st->f_bsize = 4096;
    return S.dead ? -EIO : 0;
}

static int
s_prefetch(int fd, uint64_t off, uint64_t len)
{
    (void)fd;
    (void)off;
    (void)len;
    return 0; /* a simulated device has no page cache to warm */
}

static ssize_t
s_read_text(const char *path, char *buf, size_t len)
{
    (void)path;
    (void)buf;
    (void)len;
    return -ENOENT; /* no sysfs behind a simulated device */
}

void
sim_init(const char *root)
{
    pthread_mutex_lock(&S.lock);
    snprintf(S.root, sizeof(S.root), "%s", root);
    S.nfiles = 0;
    memset(S.fdmap, 0, sizeof(S.fdmap));
    S.crash_at = -1;
    S.dead = false;
    S.atomic_errno = 0;
    S.atomic_caps = false;
    S.atomic_ok = 0;
    S.short_at = -1;
    S.short_keep = 0;
    S.log = log_new();
    pthread_mutex_unlock(&S.lock);
    atomio__sys.open = s_open;
    atomio__sys.close = s_close;
    atomio__sys.dup = s_dup;
    atomio__sys.pwritev2 = s_pwritev2;
    atomio__sys.pread = s_pread;
    atomio__sys.fdatasync = s_fdatasync;
    atomio__sys.statx = s_statx;
    atomio__sys.fstatfs = s_fstatfs;
    atomio__sys.fallocate = s_fallocate;
    atomio__sys.ftruncate = s_ftruncate;
    atomio__sys.read_text = s_read_text;
    atomio__sys.prefetch = s_prefetch;
}

void
sim_fini(void)
{
    atomio__sys = atomio__sys_real;
    pthread_mutex_lock(&S.lock);
    for (int fd = 0; fd < MAX_FD; fd++)
        if (S.fdmap[fd]) {
            close(fd);
            S.fdmap[fd] = 0;
        }
    for (int i = 0; i < S.nfiles; i++)
        free(S.files[i].cur);
    S.nfiles = 0;
    sim_log_free(S.log);
    S.log = NULL;
    pthread_mutex_unlock(&S.lock);
}

void
sim_set_crash_at(long k)
{
    pthread_mutex_lock(&S.lock);
    S.crash_at = k;
    S.dead = false;
    pthread_mutex_unlock(&S.lock);
}

bool
sim_dead(void)
{
    return S.dead;
}

long
sim_ops(void)
{
    pthread_mutex_lock(&S.lock);
    long n = (long)S.log->n;
    pthread_mutex_unlock(&S.lock);
    return n;
}

void
sim_set_atomic_errno(int e)
{
    S.atomic_errno = e;
}

void
sim_set_short_write(long k, uint64_t keep)
{
    S.short_at = k;
    S.short_keep = keep;
}

void
sim_set_atomic_caps(bool on, int ok_count)
{
    S.atomic_caps = on;
    S.atomic_ok = ok_count;
}

void
sim_file_put(const char *path, const void *data, size_t len)
{
    pthread_mutex_lock(&S.lock);
    int i = find_file(path);
    if (i < 0) {
        int pfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        cr_assert(pfd >= 0, "placeholder %s: %s", path, strerror(errno));
        close(pfd);
        i = add_file(path, false);
    }
    set_len(&S.files[i], len);
    memcpy(S.files[i].cur, data, len);
    /* Setup is durable: restart the log from here. */
    sim_log_free(S.log);
    S.log = log_new();
    pthread_mutex_unlock(&S.lock);
}

const uint8_t *
sim_file_data(const char *path, size_t *len)
{
    int i = find_file(path);
    if (i < 0)
        return NULL;
    *len = S.files[i].len;
    return S.files[i].cur;
}

int
sim_file_index(const char *path)
{
    return find_file(path);
}

const char *
sim_file_path(int index)
{
    return S.files[index].path;
}

int
sim_nfiles(void)
{
    return S.nfiles;
}

struct sim_log *
sim_take_log(void)
{
    pthread_mutex_lock(&S.lock);
    struct sim_log *l = S.log;
    S.log = log_new();
    pthread_mutex_unlock(&S.lock);
    return l;
}

size_t
sim_log_len(const struct sim_log *log)
{
    return log->n;
}

const struct sim_op *
sim_log_op(const struct sim_log *log, size_t i)
{
    return &log->ops[i];
}

/* ---- replay -----------------------------------------------------------------------------------
 */

struct rfile {
    uint8_t *dur;
    size_t len, cap;
    size_t *pend;
    size_t npend, cap_pend;
};

struct sim_replay {
    const struct sim_log *log;
    size_t next;
    struct rfile f[SIM_MAX_FILES];
};

struct sim_replay *
sim_replay_new(const struct sim_log *log)
{
    struct sim_replay *rp = calloc(1, sizeof(*rp));
    cr_assert(rp);
    rp->log = log;
    for (int i = 0; i < log->nbase; i++) {
        ensure_cap(&rp->f[i].dur, &rp->f[i].cap, log->base_len[i]);
        if (log->base_len[i])
            memcpy(rp->f[i].dur, log->base[i], log->base_len[i]);
        rp->f[i].len = log->base_len[i];
    }
    return rp;
}

void
sim_replay_free(struct sim_replay *rp)
{
    if (!rp)
        return;
    for (int i = 0; i < SIM_MAX_FILES; i++) {
        free(rp->f[i].dur);
        free(rp->f[i].pend);
    }
    free(rp);
}

static void
apply(struct rfile *rf, uint64_t off, const uint8_t *data, uint64_t len)
{
    if (off + len > rf->len) {
        ensure_cap(&rf->dur, &rf->cap, (size_t)(off + len));
        memset(rf->dur + rf->len, 0, (size_t)(off + len) - rf->len);
        rf->len = (size_t)(off + len);
    }
    memcpy(rf->dur + off, data, (size_t)len);
}

/* flush_pending() -- a completed fdatasync (or a size change, which we treat as durable at
 * once: the library only resizes while creating the store, and syncs right after): every
 * write since the last one is durable, whole. */
static void
flush_pending(struct sim_replay *rp, int file)
{
    struct rfile *rf = &rp->f[file];
    for (size_t j = 0; j < rf->npend; j++) {
        const struct sim_op *op = &rp->log->ops[rf->pend[j]];
        apply(rf, op->off, op->data, op->len);
    }
    rf->npend = 0;
}

static void
advance(struct sim_replay *rp, size_t k)
{
    cr_assert_geq(k, rp->next, "sim replay must move forward");
    for (; rp->next < k; rp->next++) {
        const struct sim_op *op = &rp->log->ops[rp->next];
        struct rfile *rf = &rp->f[op->file];
        switch (op->kind) {
        case SIM_WRITE:
            if (rf->npend == rf->cap_pend) {
                rf->cap_pend = rf->cap_pend ? rf->cap_pend * 2 : 64;
                rf->pend = realloc(rf->pend, rf->cap_pend * sizeof(*rf->pend));
                cr_assert(rf->pend);
            }
            rf->pend[rf->npend++] = rp->next;
            break;
        case SIM_SYNC:
            flush_pending(rp, op->file);
            break;
        case SIM_TRUNC:
            flush_pending(rp, op->file);
            ensure_cap(&rf->dur, &rf->cap, (size_t)op->len);
            if (op->len > rf->len)
                memset(rf->dur + rf->len, 0, (size_t)op->len - rf->len);
            rf->len = (size_t)op->len;
            break;
        }
    }
}

/* tear() -- apply op to img sector piece by sector piece, as the chooser says; an atomic
 * write is one piece. */
static void
tear(const struct sim_op *op, const struct rfile *rf, uint8_t **img, size_t *len, size_t *cap,
     uint8_t *touched, size_t ntouched, sim_keep_fn keep, void *arg)
{
    uint64_t pos = op->off, end = op->off + op->len;
    if (op->atomic) {
        bool eff = false;
        for (uint64_t at = pos; at < end && !eff; at++) {
            uint64_t sec = at / SIM_SECTOR;
            eff = op->data[at - pos] != (at < rf->len ? rf->dur[at] : 0) ||
                  (sec < ntouched && touched[sec]);
        }
        if (keep(arg, eff)) {
            if (end > *len) {
                ensure_cap(img, cap, (size_t)end);
                memset(*img + *len, 0, (size_t)end - *len);
                *len = (size_t)end;
            }
            memcpy(*img + pos, op->data, (size_t)op->len);
        }
        for (uint64_t sec = pos / SIM_SECTOR; eff && sec * SIM_SECTOR < end && sec < ntouched;
             sec++)
            touched[sec] = 1;
        return;
    }
    while (pos < end) {
        uint64_t sec = pos / SIM_SECTOR;
        uint64_t pend = (sec + 1) * SIM_SECTOR < end ? (sec + 1) * SIM_SECTOR : end;
        const uint8_t *src = op->data + (pos - op->off);
        size_t n = (size_t)(pend - pos);
        bool differs = false;
        if (pend <= rf->len) {
            differs = memcmp(src, rf->dur + pos, n) != 0;
        } else {
            for (size_t b = 0; b < n && !differs; b++) {
                uint64_t at = pos + b;
                differs = src[b] != (at < rf->len ? rf->dur[at] : 0);
            }
        }
        bool eff = differs || (sec < ntouched && touched[sec]);
        if (keep(arg, eff)) {
            if (pend > *len) {
                ensure_cap(img, cap, (size_t)pend);
                memset(*img + *len, 0, (size_t)pend - *len);
                *len = (size_t)pend;
            }
            memcpy(*img + pos, src, n);
        }
        if (eff && sec < ntouched)
            touched[sec] = 1;
        pos = pend;
    }
}

void
sim_replay_image(struct sim_replay *rp, size_t k, sim_keep_fn keep, void *arg,
                 struct sim_image *out)
{
    const struct sim_log *log = rp->log;
    cr_assert_leq(k, log->n);
    advance(rp, k);
    const struct sim_op *inflight =
        k < log->n && log->ops[k].kind == SIM_WRITE ? &log->ops[k] : NULL;
    int nfiles = S.nfiles;
    memset(out, 0, sizeof(*out));
    out->nfiles = nfiles;
    for (int i = 0; i < nfiles; i++) {
        struct rfile *rf = &rp->f[i];
        size_t len = rf->len, cap = 0;
        uint8_t *img = NULL;
        ensure_cap(&img, &cap, len ? len : 1);
        if (len)
            memcpy(img, rf->dur, len);
        /* sectors touched by effective pieces so far (extent of everything pending) */
        size_t maxend = len;
        for (size_t j = 0; j < rf->npend; j++) {
            const struct sim_op *op = &log->ops[rf->pend[j]];
            if (op->off + op->len > maxend)
                maxend = (size_t)(op->off + op->len);
        }
        if (inflight && inflight->file == i && inflight->off + inflight->len > maxend)
            maxend = (size_t)(inflight->off + inflight->len);
        size_t ntouched = maxend / SIM_SECTOR + 1;
        uint8_t *touched = calloc(ntouched, 1);
        cr_assert(touched);
        for (size_t j = 0; j < rf->npend; j++) {
            const struct sim_op *op = &log->ops[rf->pend[j]];
            if (op->dsync) {
                /* returned, so durable: whole */
                if (op->off + op->len > len) {
                    ensure_cap(&img, &cap, (size_t)(op->off + op->len));
                    memset(img + len, 0, (size_t)(op->off + op->len) - len);
                    len = (size_t)(op->off + op->len);
                }
                memcpy(img + op->off, op->data, (size_t)op->len);
                for (uint64_t s = op->off / SIM_SECTOR;
                     s * SIM_SECTOR < op->off + op->len && s < ntouched; s++)
                    touched[s] = 1;
                continue;
            }
            tear(op, rf, &img, &len, &cap, touched, ntouched, keep, arg);
        }
        if (inflight && inflight->file == i)
            tear(inflight, rf, &img, &len, &cap, touched, ntouched, keep, arg);
        free(touched);
        out->data[i] = img;
        out->len[i] = len;
    }
}

void
sim_image_free(struct sim_image *img)
{
    for (int i = 0; i < img->nfiles; i++)
        free(img->data[i]);
    memset(img, 0, sizeof(*img));
}

void
sim_install(const struct sim_image *img)
{
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < img->nfiles && i < S.nfiles; i++) {
        set_len(&S.files[i], img->len[i]);
        if (img->len[i])
            memcpy(S.files[i].cur, img->data[i], img->len[i]);
    }
    S.dead = false;
    S.crash_at = -1;
    sim_log_free(S.log);
    S.log = log_new();
    pthread_mutex_unlock(&S.lock);
}
