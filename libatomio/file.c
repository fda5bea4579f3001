/* SPDX-License-Identifier: MIT */
/*
 * file.c -- data files: open (probe, select, reopen with the path's flags, join the store),
 * close (into the ctx's graveyard so a stale handle reads ATOMIO_E_CLOSED), info, stats, reads,
 * sync with the sticky-failure rule, the runtime downgrade, and the path table.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KNOWN_FILE_FLAGS                                                                           \
    (ATOMIO_FILE_CREATE | ATOMIO_FILE_RDONLY | ATOMIO_FILE_NO_COPY | ATOMIO_FILE_DSYNC)

const struct atomio_path_ops *
atomio__path_ops(uint32_t path)
{
    switch (path) {
    case ATOMIO_PATH_DIRECT_ATOMIC:
        return &atomio__path_direct;
    case ATOMIO_PATH_BUFFERED_ATOMIC:
        return &atomio__path_buffered;
    case ATOMIO_PATH_DOUBLEWRITE:
        return &atomio__path_doublewrite;
    case ATOMIO_PATH_UNSAFE:
        return &atomio__path_unsafe;
    default:
        /* Callers pass a path a file is on (never AUTO): anything else is a library bug. */
        ATOMIO_ASSERT(!"path table lookup of a path no file can be on");
        return NULL;
    }
}

int
atomio__file_check(const atomio_file *f)
{
    if (!f)
        return ATOMIO_E_INVAL;
    if (atomic_load_explicit(&f->state, memory_order_acquire) == ATOMIO_STATE_CLOSED)
        return ATOMIO_E_CLOSED;
    return 0;
}

void
atomio__file_fail(atomio_file *f)
{
    uint32_t ok = ATOMIO_STATE_OK;
    atomic_compare_exchange_strong(&f->state, &ok, ATOMIO_STATE_FAILED);
}

void
atomio__count_page(atomio_file *f, uint32_t path, uint64_t lat_ns)
{
    atomio__count_pages(f, path, lat_ns, 1);
}

void
atomio__count_pages(atomio_file *f, uint32_t path, uint64_t lat_ns, uint64_t n)
{
    ATOMIO_COUNT(&f->stats, pages[path], n);
    ATOMIO_COUNT(&f->ctx->stats, pages[path], n);
    ATOMIO_COUNT(&f->stats, bytes_data, n * f->page_size);
    ATOMIO_COUNT(&f->ctx->stats, bytes_data, n * f->page_size);
    atomio__count_lat_n(&f->stats, lat_ns, n);
    atomio__count_lat_n(&f->ctx->stats, lat_ns, n);
}

void
atomio__file_downgrade(atomio_file *f, int err)
{
    pthread_mutex_lock(f->lock);
    uint32_t was = atomic_load(&f->path_cur);
    if (was != ATOMIO_PATH_DOUBLEWRITE) {
        char why[ATOMIO_REASON_LEN];
        atomio__reason(why,
                       "runtime downgrade: %s write failed with %s (nothing written); pages now "
                       "go through the doublewrite store",
                       atomio_path_name(was), atomio_err_name(err));
        memcpy(f->reject[was], why, sizeof(why));
        memcpy(f->reason, why, sizeof(why));
        f->reject[ATOMIO_PATH_DOUBLEWRITE][0] = '\0';
        atomic_store(&f->path_cur, ATOMIO_PATH_DOUBLEWRITE);
        atomic_fetch_add(&f->downgrades, 1);
        ATOMIO_COUNT(&f->stats, downgrades, 1);
        ATOMIO_COUNT(&f->ctx->stats, downgrades, 1);
    }
    pthread_mutex_unlock(f->lock);
}

int
atomio__short_write(atomio_file *f)
{
    ATOMIO_COUNT(&f->stats, short_writes, 1);
    ATOMIO_COUNT(&f->ctx->stats, short_writes, 1);
    atomio__file_fail(f);
    return ATOMIO_E_SHORT_WRITE;
}

const void *
atomio__bounce_page(atomio_file *f, const void *page, size_t align, struct atomio_io *io)
{
    void *b = atomio__buf_alloc(f->ctx, f->page_size, align);
    if (!b)
        return NULL;
    memcpy(b, page, f->page_size);
    io->bounce = b;
    ATOMIO_COUNT(&f->stats, bounce_copies, 1);
    ATOMIO_COUNT(&f->ctx->stats, bounce_copies, 1);
    return b;
}

/*
 * atomio__prep_page() -- an O_DIRECT fd takes only buffers at its DIO memory alignment. An
 * engine whose page frames are not aligned (PostgreSQL's shared buffers) still gets its
 * pages written: through an aligned copy, unless it said it never wants one
 * (ATOMIO_FILE_NO_COPY) or nobody could free the copy (bring-your-own-ring).
 */
int
atomio__prep_page(atomio_file *f, uint64_t page_no, const void *page, int rwflags, uint32_t wflags,
                  struct atomio_io *io)
{
    const void *src = page;
    if ((uintptr_t)page % f->mem_align) {
        if ((f->fflags & ATOMIO_FILE_NO_COPY) || (wflags & ATOMIO__WRITE_NO_BOUNCE))
            return ATOMIO_E_UNALIGNED;
        src = atomio__bounce_page(f, page, f->mem_align, io);
        if (!src)
            return -ENOMEM;
    }
    io->fd = f->fd;
    io->buf = src;
    io->len = f->page_size;
    io->off = page_no << f->page_shift;
    io->rwflags = rwflags;
    io->file = f;
    return 0;
}

/*
 * atomio__prep_plain() -- no-durability mode: the page goes straight in place as a plain
 * write on the file's own fd, whatever its path (no store, no RWF_ATOMIC, no RWF_DSYNC).
 */
int
atomio__prep_plain(atomio_file *f, uint64_t page_no, const void *page, struct atomio_io *io)
{
    return atomio__prep_page(f, page_no, page, 0, 0, io);
}

int
atomio__file_datasync(atomio_file *f)
{
    /* Inside the store's sync bracket, so copies of this file that any process wrote before
     * the sync began are released by it. */
    bool bracket = f->ctx->store && atomio__store_check(f->ctx) == 0 && f->file_id;
    uint64_t ticket = bracket ? atomio__store_file_sync_begin(f->ctx, f->file_id) : 0;
    int r = atomio__sys.fdatasync(f->fd);
    if (bracket)
        atomio__store_file_sync_end(f->ctx, f->file_id, ticket, r == 0);
    ATOMIO_COUNT(&f->stats, syncs, 1);
    ATOMIO_COUNT(&f->ctx->stats, syncs, 1);
    if (r < 0) {
        /* The kernel may have dropped the dirty pages it could not write: a retry could
         * "succeed" over lost data. Sticky, as PostgreSQL learned. */
        ATOMIO_COUNT(&f->stats, failed_syncs, 1);
        ATOMIO_COUNT(&f->ctx->stats, failed_syncs, 1);
        atomio__file_fail(f);
    }
    return r;
}

/* ATOMIO_PATH=direct|buffered|doublewrite|unsafe|auto overrides the opened path. */
static int
path_from_env(uint32_t *path)
{
    const char *e = getenv("ATOMIO_PATH");
    if (!e || !*e)
        return 0;
    static const struct {
        const char *name;
        uint32_t path;
    } names[] = {
        {"auto", ATOMIO_PATH_AUTO},
        {"direct", ATOMIO_PATH_DIRECT_ATOMIC},
        {"direct_atomic", ATOMIO_PATH_DIRECT_ATOMIC},
        {"buffered", ATOMIO_PATH_BUFFERED_ATOMIC},
        {"buffered_atomic", ATOMIO_PATH_BUFFERED_ATOMIC},
        {"doublewrite", ATOMIO_PATH_DOUBLEWRITE},
        {"dblwr", ATOMIO_PATH_DOUBLEWRITE},
        {"unsafe", ATOMIO_PATH_UNSAFE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcasecmp(e, names[i].name)) {
            *path = names[i].path;
            return 0;
        }
    }
    return ATOMIO_E_INVAL;
}

static int
check_file_opts(const atomio_file_opts *o)
{
    if (o->flags & ~KNOWN_FILE_FLAGS)
        return ATOMIO_E_INVAL;
    if (o->io_style > ATOMIO_IO_DIRECT || o->path >= ATOMIO__PATH_COUNT ||
        o->policy > ATOMIO_POLICY_CALIBRATE || o->reserved0)
        return ATOMIO_E_INVAL;
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i])
            return ATOMIO_E_INVAL;
    if (o->mode & ~07777u)
        return ATOMIO_E_INVAL;
    if (!atomio__is_pow2(o->page_size) || o->page_size < ATOMIO_MIN_PAGE ||
        o->page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_PAGE_SIZE;
    return 0;
}

/* A stable id for files the engine did not name: device and inode, top bit set so it never
 * collides with small engine-chosen ids (tablespace ids). */
static uint64_t
derive_file_id(const struct stat *st)
{
    uint64_t x = ((uint64_t)st->st_dev << 32) ^ (uint64_t)st->st_ino;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x | (1ull << 63);
}

static void
file_free(atomio_file *f)
{
    if (!f)
        return;
    if (f->lock) {
        pthread_mutex_destroy(f->lock);
        free(f->lock);
    }
    free(f->path);
    free(f);
}

/*
 * adopted_caps() -- what an engine's own descriptor allows, as the selection sees it: the
 * library never opens a second descriptor for such a file, so a path needing other open flags
 * than the fd has is impossible, with the reason said (the probe figures in f->caps stay as
 * measured).
 */
static void
adopted_caps(const atomio_file *f, atomio_caps *c)
{
    if (!f->o_direct) {
        c->direct_atomic = ATOMIO_ATOMIC_NONE;
        atomio__reason(c->reason_direct,
                       "the engine's descriptor (atomio_file_open_fd) is not O_DIRECT; "
                       "DIRECT_ATOMIC needs O_DIRECT and the library opens no second one");
    } else {
        c->buffered_atomic = 0;
        atomio__reason(c->reason_buffered,
                       "the engine's descriptor (atomio_file_open_fd) is O_DIRECT; "
                       "BUFFERED_ATOMIC needs a page-cache descriptor");
    }
}

/*
 * choose_path() -- probe the open fd, select, calibrate if the policy asks, record reasons.
 * Returns 0 or the selection's error.
 */
static int
choose_path(atomio_file *f, uint32_t forced)
{
    char dir[PATH_MAX];
    int r = atomio__dir_of(f->path, dir, sizeof(dir));
    if (r < 0)
        return r;

    f->caps.size = sizeof(f->caps);
    r = atomio__probe_fd(f->fd, dir, f->page_size, &f->caps);
    if (r < 0)
        return r;
    atomio_caps sel_caps = f->caps;
    if (f->adopted_fd)
        adopted_caps(f, &sel_caps);

    struct atomio_select_in in = {.caps = &sel_caps,
                                  .io_style = f->io_style,
                                  .policy = f->policy,
                                  .forced = forced,
                                  .have_store = atomio__store_fits(f->ctx, f->page_size),
                                  .store_too_small =
                                      f->ctx->store && !atomio__store_fits(f->ctx, f->page_size)};
    struct atomio_select_out out;
    atomio__select(&in, &out);
    if (!out.err && out.needs_calibration) {
        r = atomio__calibrate(f->ctx, f, &f->calib_atomic_ns, &f->calib_doublewrite_ns);
        if (r == 0) {
            in.calib_atomic_ns = f->calib_atomic_ns;
            in.calib_doublewrite_ns = f->calib_doublewrite_ns;
            atomio__select(&in, &out);
        }
        /* If calibration itself failed, keep the provisional doublewrite choice. */
    }
    if (out.err)
        return out.err;
    atomic_store(&f->path_cur, out.path);
    memcpy(f->reason, out.reason, sizeof(f->reason));
    memcpy(f->reject, out.reject, sizeof(f->reject));
    return 0;
}

/* file_new() -- validate the options and make the handle (no fd yet). */
static int
file_new(atomio_ctx *ctx, const char *path, const atomio_file_opts *opts, atomio_file **out,
         atomio_file_opts *o, uint32_t *forced, atomio_file **fp)
{
    if (!out)
        return ATOMIO_E_INVAL;
    *out = NULL;
    if (!ctx || !path || !*path || !opts)
        return ATOMIO_E_INVAL;
    int r = atomio__copy_in(o, sizeof(*o), opts);
    if (r == 0)
        r = check_file_opts(o);
    *forced = o->path;
    if (r == 0)
        r = path_from_env(forced);
    if (r < 0)
        return r;
    if ((o->flags & ATOMIO_FILE_RDONLY) && (o->flags & ATOMIO_FILE_CREATE))
        return ATOMIO_E_INVAL;

    atomio_file *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->lock = malloc(sizeof(*f->lock));
    if (!f->lock) {
        free(f);
        return -ENOMEM;
    }
    pthread_mutex_init(f->lock, NULL);
    f->ctx = ctx;
    f->fd = -1;
    f->fflags = o->flags;
    f->rdonly = (o->flags & ATOMIO_FILE_RDONLY) != 0;
    f->page_size = o->page_size;
    f->page_shift = (uint32_t)__builtin_ctz(o->page_size);
    f->io_style = o->io_style;
    f->policy = o->policy ? o->policy : ctx->opts.policy;
    *fp = f;
    return 0;
}

/* set_mem_align() -- the buffer alignment f's fd needs. */
static void
set_mem_align(atomio_file *f)
{
    f->mem_align = 1;
    if (f->o_direct)
        f->mem_align = f->caps.dio_mem_align > 4096 ? f->caps.dio_mem_align : 4096;
}

/* file_join() -- record the file in the store and the ctx's list. */
static int
file_join(atomio_file *f)
{
    atomio_ctx *ctx = f->ctx;
    if (ctx->store && !f->rdonly) {
        /* A file written without the store from now on fences off its older copies. */
        bool fence = atomic_load(&f->path_cur) != ATOMIO_PATH_DOUBLEWRITE || atomio__nodur(ctx);
        int r = atomio__store_register(ctx, f, fence);
        if (r < 0)
            return r;
    }
    pthread_mutex_lock(ctx->lock);
    f->next = ctx->files;
    if (ctx->files)
        ctx->files->prev = f;
    ctx->files = f;
    pthread_mutex_unlock(ctx->lock);
    return 0;
}

int
atomio_file_open(atomio_ctx *ctx, const char *path, const atomio_file_opts *opts, atomio_file **out)
{
    atomio_file_opts o;
    uint32_t forced;
    atomio_file *f = NULL;
    int r = file_new(ctx, path, opts, out, &o, &forced, &f);
    if (r < 0)
        return r;

    /* Create only if missing, and remember it: a failed open must not leave a file behind. */
    bool created = false;
    r = atomio__sys.open(path, f->rdonly ? O_RDONLY : O_RDWR, 0);
    if (r == -ENOENT && (o.flags & ATOMIO_FILE_CREATE)) {
        r = atomio__sys.open(path, O_RDWR | O_CREAT | O_EXCL, o.mode ? o.mode : 0600);
        created = r >= 0;
        if (r == -EEXIST)
            r = atomio__sys.open(path, O_RDWR, 0);
    }
    if (r < 0)
        goto fail;
    f->fd = r;
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = ATOMIO_E_INVAL;
        goto fail;
    }
    f->path = realpath(path, NULL);
    if (!f->path) {
        r = -ENOMEM;
        goto fail;
    }
    f->file_id = o.file_id ? o.file_id : derive_file_id(&st);

    r = choose_path(f, forced);
    if (r < 0)
        goto fail;

    /* Reopen with the path's flags; the probe fd was opened plain. Never O_APPEND. */
    uint32_t p = atomic_load(&f->path_cur);
    f->o_direct = (atomio__path_ops(p)->open_flags(f) & O_DIRECT) != 0;
    int nfd = atomio__sys.open(f->path,
                               (f->rdonly ? O_RDONLY : O_RDWR) | (f->o_direct ? O_DIRECT : 0), 0);
    if (nfd < 0) {
        r = nfd;
        goto fail;
    }
    atomio__sys.close(f->fd);
    f->fd = nfd;
    f->open_flags = (f->rdonly ? O_RDONLY : O_RDWR) | (f->o_direct ? O_DIRECT : 0);
    set_mem_align(f);

    r = file_join(f);
    if (r < 0)
        goto fail;
    *out = f;
    return 0;

fail:
    if (f->fd >= 0)
        atomio__sys.close(f->fd);
    if (created)
        unlink(path);
    file_free(f);
    return r;
}

/*
 * atomio_file_open_fd() -- as atomio_file_open(), on a descriptor the engine opened and keeps
 * (engines that budget descriptors, as PostgreSQL's max_files_per_process). The fd is used as
 * it is, for the probe and for every read and write: no second descriptor is opened for the
 * file, and the fd is never closed. Its open flags decide what is possible: O_DIRECT or not
 * (see adopted_caps()), and O_APPEND is refused, because the kernel checks an RWF_ATOMIC
 * write's alignment at the offset asked for and then appends at end of file.
 */
int
atomio_file_open_fd(atomio_ctx *ctx, int fd, const char *path, const atomio_file_opts *opts,
                    atomio_file **out)
{
    atomio_file_opts o;
    uint32_t forced;
    atomio_file *f = NULL;
    int r = file_new(ctx, path, opts, out, &o, &forced, &f);
    if (r < 0)
        return r;
    f->adopted_fd = true;
    r = ATOMIO_E_INVAL;
    /* No file is created here: the engine did that when it opened fd. */
    if (fd < 0 || (o.flags & ATOMIO_FILE_CREATE) || o.mode)
        goto fail;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        r = -EBADF;
        goto fail;
    }
    int acc = fl & O_ACCMODE;
    if ((fl & O_APPEND) || (f->rdonly ? acc == O_WRONLY : acc != O_RDWR))
        goto fail;
    struct stat st, pst;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto fail;
    /* path is what the store records and recovery reopens: it must name this very file. */
    if (stat(path, &pst) != 0 || pst.st_dev != st.st_dev || pst.st_ino != st.st_ino)
        goto fail;
    f->path = realpath(path, NULL);
    if (!f->path) {
        r = -ENOMEM;
        goto fail;
    }
    f->fd = fd;
    f->o_direct = (fl & O_DIRECT) != 0;
    f->open_flags = fl;
    f->file_id = o.file_id ? o.file_id : derive_file_id(&st);

    r = choose_path(f, forced);
    if (r < 0)
        goto fail;
    set_mem_align(f);
    r = file_join(f);
    if (r < 0)
        goto fail;
    *out = f;
    return 0;

fail:
    file_free(f); /* the fd stays the engine's, open */
    return r;
}

int
atomio_file_close(atomio_file *f)
{
    if (!f)
        return 0;
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    atomio_ctx *ctx = f->ctx;
    pthread_mutex_lock(ctx->lock);
    if (atomic_exchange(&f->state, ATOMIO_STATE_CLOSED) == ATOMIO_STATE_CLOSED) {
        pthread_mutex_unlock(ctx->lock);
        return ATOMIO_E_CLOSED;
    }
    if (f->prev)
        f->prev->next = f->next;
    else
        ctx->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->next = f->prev = NULL;
    /* Keep the struct a while so a stale handle is detected instead of touching freed memory. */
    unsigned slot = ctx->grave_next++ % ATOMIO_GRAVEYARD;
    atomio_file *old = ctx->graveyard[slot];
    ctx->graveyard[slot] = f;
    pthread_mutex_unlock(ctx->lock);
    file_free(old);
    /* An adopted descriptor is the engine's: it stays open. */
    r = f->adopted_fd ? 0 : atomio__sys.close(f->fd);
    f->fd = -1;
    return r;
}

int
atomio_file_fence(atomio_file *f)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (f->rdonly)
        return ATOMIO_E_READ_ONLY;
    /* Staged pages go in place first: after the fence the engine may truncate or remove the
     * file, and a staged page written after that would bring bytes back. */
    r = atomio__stage_flush(f->ctx);
    if (r < 0)
        return r;
    /* The manifest's fence for the file moves up to the store's head: recovery skips every
     * copy below it (store/recover.c). Appended and synced before this returns. */
    return f->ctx->store ? atomio__store_register(f->ctx, f, true) : 0;
}

int
atomio_file_get_info(const atomio_file *f, atomio_file_info *info)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (!info)
        return ATOMIO_E_INVAL;
    atomio_file_info i;
    memset(&i, 0, sizeof(i));
    i.size = sizeof(i);
    pthread_mutex_lock(f->lock);
    i.path = atomic_load(&f->path_cur);
    i.torn_write_safe = i.path != ATOMIO_PATH_UNSAFE;
    bool nodur = atomio__nodur(f->ctx);
    if (nodur)
        i.torn_write_safe = 0;
    i.state = atomic_load(&f->state);
    i.page_size = f->page_size;
    i.io_style = f->io_style;
    i.policy = f->policy;
    i.submitter = f->ctx->submit->id;
    i.uring_fallback = f->ctx->uring_fallback;
    i.downgrades = atomic_load(&f->downgrades);
    i.o_direct = f->o_direct;
    i.direct_atomic = f->caps.direct_atomic;
    i.file_id = f->file_id;
    i.calib_atomic_ns = f->calib_atomic_ns;
    i.calib_doublewrite_ns = f->calib_doublewrite_ns;
    memcpy(i.reason, f->reason, sizeof(i.reason));
    if (nodur)
        atomio__reason(i.reason,
                       "no-durability mode (atomio_ctx_set_durability): pages go in place as "
                       "plain writes, unprotected and never synced; %s resumes when durability "
                       "is switched back on",
                       atomio_path_name(i.path));
    memcpy(i.reject_direct, f->reject[ATOMIO_PATH_DIRECT_ATOMIC], sizeof(i.reject_direct));
    memcpy(i.reject_buffered, f->reject[ATOMIO_PATH_BUFFERED_ATOMIC], sizeof(i.reject_buffered));
    memcpy(i.reject_doublewrite, f->reject[ATOMIO_PATH_DOUBLEWRITE], sizeof(i.reject_doublewrite));
    pthread_mutex_unlock(f->lock);
    return atomio__copy_out(info, &i, sizeof(i));
}

int
atomio_file_get_caps(const atomio_file *f, atomio_caps *caps)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (!caps)
        return ATOMIO_E_INVAL;
    pthread_mutex_lock(f->lock);
    r = atomio__copy_out(caps, &f->caps, sizeof(f->caps));
    pthread_mutex_unlock(f->lock);
    return r;
}

int
atomio_file_get_stats(const atomio_file *f, atomio_stats *st)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (!st)
        return ATOMIO_E_INVAL;
    atomio_stats s;
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    atomio__counters_read(&f->stats, &s);
    return atomio__copy_out(st, &s, sizeof(s));
}

int
atomio_sync(atomio_file *f)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (atomic_load(&f->state) == ATOMIO_STATE_FAILED)
        return ATOMIO_E_FAILED;
    /* No-durability mode (bulk load, as fsync=off): nothing is made durable until
     * atomio_ctx_set_durability(ctx, 1), which syncs every file itself. */
    if (atomio__nodur(f->ctx))
        return 0;
    /* Write-behind: staged pages (of any process) go in place before the sync that must
     * cover them. */
    r = atomio__stage_flush(f->ctx);
    if (r < 0)
        return r;
    return atomio__file_datasync(f);
}

int
atomio_read(atomio_file *f, uint64_t page_no, void *page)
{
    int r = atomio__file_check(f);
    if (r < 0)
        return r;
    if (!page)
        return ATOMIO_E_INVAL;
    if (page_no > ((uint64_t)INT64_MAX >> f->page_shift) - 1)
        return ATOMIO_E_RANGE;
    /* Write-behind: a staged page is newer than the file's. */
    if (atomio__stage_read(f, page_no, page))
        return 0;
    /* An O_DIRECT fd reads only into aligned memory: read into an aligned copy and hand that
     * over, unless the engine never wants a copy (as for writes). */
    void *dst = page, *bounce = NULL;
    if ((uintptr_t)page % f->mem_align) {
        if (f->fflags & ATOMIO_FILE_NO_COPY)
            return ATOMIO_E_UNALIGNED;
        bounce = atomio__buf_alloc(f->ctx, f->page_size, f->mem_align);
        if (!bounce)
            return -ENOMEM;
        ATOMIO_COUNT(&f->stats, bounce_copies, 1);
        ATOMIO_COUNT(&f->ctx->stats, bounce_copies, 1);
        dst = bounce;
    }
    uint64_t off = page_no << f->page_shift;
    size_t done = 0;
    while (done < f->page_size) {
        ssize_t n = atomio__sys.pread(f->fd, (char *)dst + done, f->page_size - done, off + done);
        if (n < 0) {
            atomio__buf_free(f->ctx, bounce, f->page_size);
            return (int)n;
        }
        if (n == 0)
            break; /* end of file: the rest reads as zeros */
        done += (size_t)n;
        if (f->o_direct && done % 512)
            break; /* a DIO read ends at EOF only */
    }
    if (done < f->page_size)
        memset((char *)dst + done, 0, f->page_size - done);
    if (bounce) {
        memcpy(page, bounce, f->page_size);
        atomio__buf_free(f->ctx, bounce, f->page_size);
    }
    return 0;
}
