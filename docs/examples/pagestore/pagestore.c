/* SPDX-License-Identifier: MIT */
/*
 * pagestore.c -- a small key-value page store that runs with no torn-page protection of its
 * own, to show how an engine wires in libatomio. It uses nothing but <atomio.h> and libc.
 *
 * The engine, in the shape of a real one:
 *   - a data file of fixed-size pages (page 0 is the control page, pages 1..N hold records)
 *     written only through libatomio, never with the engine's own pwrite();
 *   - a redo log in segment files (redo.00000001, ...), one record per commit, made durable
 *     with fdatasync() before the commit is acknowledged (write-ahead logging);
 *   - a checkpointer thread that copies the dirty pages, flushes them with one
 *     atomio_write_batch(), syncs, and only then advances the checkpoint in the control page;
 *   - startup that runs atomio_ctx_recover() BEFORE reading a page or replaying the log, since
 *     redo gated by page LSNs needs untorn pages (which is what PostgreSQL's full_page_writes
 *     and InnoDB's doublewrite buffer exist for; this engine has neither).
 *
 * Usage:
 *   pagestore run   --dir D [--dblwr-dir S] [--io any|buffered|direct] [--page-size N]
 *                   [--pages N] [--seed N] [--ops N] [--ckpt-ms N]
 *   pagestore check --dir D [--dblwr-dir S] [--io ...] [--page-size N] [--pages N]
 *
 * run prints one line per event on stdout, each with a single write() so that a SIGKILL never
 * leaves half a line in a pipe: "R <path>" ready, "C <key> <version>" commit acknowledged (its
 * log record is durable), "p <n>" checkpoint n started, "P <n>" checkpoint n complete.
 * check recovers, replays the log twice (the second replay must change nothing), checks every
 * page and record, prints "K <key> <version>" for every key ever written and "S <keys> <lsn>",
 * and exits. Exit codes are the EX_* values below.
 */
#define _GNU_SOURCE
#include <atomio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    EX_OK = 0,
    EX_USAGE = 1,
    EX_PANIC = 2,       /* an I/O or libatomio error: stop, restart, recover (PostgreSQL's PANIC) */
    EX_CORRUPT = 3,     /* a data page does not parse */
    EX_UNSAFE = 4,      /* libatomio cannot make this file's writes untorn */
    EX_LOG = 5,         /* the redo log is damaged somewhere other than its tail */
    EX_REPLAY = 6,      /* replaying the log a second time changed a page */
    EX_VALUE = 7,       /* a record does not hold the value its version implies */
};

#define MAGIC_PAGE 0x47505350u /* "PSPG" */
#define MAGIC_META 0x544d5350u /* "PSMT" */
#define MAGIC_REC 0x524c5350u  /* "PSLR" */
#define VAL_LEN 120
#define FILE_ID 1 /* our stable id for the data file in the doublewrite store */

struct page_hdr {
    uint32_t magic;
    uint32_t page_no;
    uint64_t lsn; /* newest log record applied to this page */
    uint32_t nslots;
    uint32_t crc; /* CRC32C of the whole page with this field zero */
};

struct slot {
    uint32_t key;
    uint32_t version; /* 0 = never written */
    uint8_t val[VAL_LEN];
};

/* Page 0. The checkpoint is complete once this page says so. */
struct meta {
    uint32_t magic;
    uint32_t page_no;
    uint64_t ckpt_lsn;   /* redo starts at this LSN ... */
    uint64_t ckpt_seg;   /* ... in this log segment */
    uint64_t ckpt_count; /* checkpoints completed since the store was made */
    uint32_t page_size;
    uint32_t npages;
    uint32_t crc;
    uint32_t pad;
};

struct rec {
    uint32_t magic;
    uint32_t key;
    uint64_t lsn;
    uint32_t version;
    uint32_t crc; /* CRC32C of the record with this field zero */
    uint8_t val[VAL_LEN];
};

struct engine {
    /* configuration */
    const char *dir;
    const char *doublewrite_dir;
    uint32_t page_size;
    uint32_t npages; /* record pages; the file has npages + 1 */
    uint32_t io_style;
    unsigned ckpt_ms;

    atomio_ctx *ctx;
    atomio_file *data;
    atomio_file_info info;
    uint32_t nslots;
    uint32_t nkeys;

    /* Everything below is protected by lock. */
    pthread_mutex_t lock;
    uint8_t *pages;  /* the buffer pool: every page, from atomio_page_alloc() */
    uint8_t *copies; /* checkpoint snapshot, also from atomio_page_alloc() */
    bool *dirty;
    struct meta meta;
    int log_fd;
    uint64_t log_seg;
    uint64_t next_lsn;
    int dir_fd;
    bool stop;
};

static void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* panic() -- an engine that loses track of durability must not carry on: report and exit. */
static void
panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pagestore: PANIC: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(EX_PANIC);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void
die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pagestore: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(code);
}

/* emit() -- one event line on stdout with a single write(), so a kill never splits it. */
static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
emit(const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) != n)
        _exit(EX_PANIC); /* the test driver went away */
}

/* ------------------------------------------------------------------------------------------ */
/* Checksums and values.                                                                        */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

static uint32_t
crc32c(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = 0xFFFFFFFFu;
    while (len--)
        c = crc_table[(c ^ *p++) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* The value of key at version is a pure function of both, so any reader can check it. */
static void
derive_value(uint32_t key, uint32_t version, uint8_t *out)
{
    uint64_t x = ((uint64_t)key << 32 | version) * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull;
    for (size_t i = 0; i < VAL_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)x;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Pages.                                                                                       */

static uint8_t *
page_at(struct engine *e, uint8_t *base, uint32_t no)
{
    return base + (size_t)no * e->page_size;
}

static struct slot *
slot_at(uint8_t *page, uint32_t i)
{
    return (struct slot *)(page + sizeof(struct page_hdr) + (size_t)i * sizeof(struct slot));
}

static void
page_seal(struct engine *e, uint8_t *page)
{
    struct page_hdr *h = (struct page_hdr *)page;
    h->crc = 0;
    h->crc = crc32c(page, e->page_size);
}

/* page_parses() -- magic, number, geometry and checksum all hold. */
static bool
page_parses(struct engine *e, uint8_t *page, uint32_t no)
{
    struct page_hdr *h = (struct page_hdr *)page;
    if (h->magic != MAGIC_PAGE || h->page_no != no || h->nslots != e->nslots)
        return false;
    uint32_t want = h->crc;
    h->crc = 0;
    uint32_t got = crc32c(page, e->page_size);
    h->crc = want;
    return got == want;
}

static void
page_format(struct engine *e, uint8_t *page, uint32_t no)
{
    memset(page, 0, e->page_size);
    struct page_hdr *h = (struct page_hdr *)page;
    h->magic = MAGIC_PAGE;
    h->page_no = no;
    h->nslots = e->nslots;
    page_seal(e, page);
}

static void
meta_store(struct engine *e, uint8_t *page)
{
    memset(page, 0, e->page_size);
    struct meta m = e->meta;
    m.crc = 0;
    m.crc = crc32c(&m, sizeof(m));
    memcpy(page, &m, sizeof(m));
}

static bool
meta_load(struct engine *e, const uint8_t *page)
{
    struct meta m;
    memcpy(&m, page, sizeof(m));
    uint32_t want = m.crc;
    m.crc = 0;
    if (m.magic != MAGIC_META || crc32c(&m, sizeof(m)) != want)
        return false;
    m.crc = want;
    e->meta = m;
    return true;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The redo log: segment files of fixed-size records.                                           */

static void
seg_name(uint64_t seg, char *buf, size_t len)
{
    snprintf(buf, len, "redo.%08" PRIu64, seg);
}

/* seg_create() -- a new, empty segment whose directory entry is durable before we use it. */
static int
seg_create(struct engine *e, uint64_t seg)
{
    char name[32];
    seg_name(seg, name, sizeof(name));
    int fd = openat(e->dir_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        panic("create %s: %s", name, strerror(errno));
    if (fsync(e->dir_fd) != 0)
        panic("fsync %s: %s", e->dir, strerror(errno));
    return fd;
}

/* seg_drop_before() -- delete segments the control page no longer needs. */
static void
seg_drop_before(struct engine *e, uint64_t keep)
{
    DIR *d = opendir(e->dir);
    if (!d)
        panic("opendir %s: %s", e->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t s;
        char tail;
        if (sscanf(de->d_name, "redo.%" SCNu64 "%c", &s, &tail) == 1 && s < keep)
            unlinkat(e->dir_fd, de->d_name, 0);
    }
    closedir(d);
}

/*
 * apply() -- redo one record. The page's LSN says whether the page already has it, which is
 * only sound if the page on disk is whole: a torn page could carry a new LSN over old slots.
 */
static void
apply(struct engine *e, const struct rec *r, bool *changed)
{
    uint32_t no = 1 + r->key / e->nslots;
    uint8_t *page = page_at(e, e->pages, no);
    struct page_hdr *h = (struct page_hdr *)page;
    if (h->lsn >= r->lsn)
        return;
    struct slot *s = slot_at(page, r->key % e->nslots);
    s->key = r->key;
    s->version = r->version;
    memcpy(s->val, r->val, VAL_LEN);
    h->lsn = r->lsn;
    e->dirty[no] = true;
    if (changed)
        *changed = true;
}

static bool
rec_valid(const struct rec *r)
{
    struct rec c = *r;
    c.crc = 0;
    return r->magic == MAGIC_REC && crc32c(&c, sizeof(c)) == r->crc;
}

struct replay_end {
    uint64_t last_lsn; /* newest record replayed (ckpt_lsn - 1 if none) */
    uint64_t seg;      /* last segment that exists (0 if none) */
    off_t seg_len;     /* length of its valid prefix */
    uint64_t records;
    bool changed;      /* some page changed */
};

/*
 * replay() -- apply every valid record from the checkpoint on. A record that fails its
 * checksum is the torn tail of the last write before the crash and ends the log; anywhere else
 * (a later segment exists, or LSNs skip) the log is damaged and we refuse to guess.
 */
static void
replay(struct engine *e, struct replay_end *end)
{
    memset(end, 0, sizeof(*end));
    end->last_lsn = e->meta.ckpt_lsn - 1;
    for (uint64_t seg = e->meta.ckpt_seg;; seg++) {
        char name[32];
        seg_name(seg, name, sizeof(name));
        int fd = openat(e->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                return;
            panic("open %s: %s", name, strerror(errno));
        }
        struct stat st;
        if (fstat(fd, &st) != 0)
            panic("fstat %s: %s", name, strerror(errno));
        off_t off = 0;
        struct rec r;
        while (off + (off_t)sizeof(r) <= st.st_size) {
            if (pread(fd, &r, sizeof(r), off) != (ssize_t)sizeof(r))
                panic("read %s: %s", name, strerror(errno));
            if (!rec_valid(&r))
                break;
            if (r.lsn != end->last_lsn + 1 || r.key >= e->nkeys)
                die(EX_LOG, "%s at %lld: record LSN %" PRIu64 " after %" PRIu64
                    " (key %u): log damaged", name, (long long)off, r.lsn, end->last_lsn, r.key);
            apply(e, &r, &end->changed);
            end->last_lsn = r.lsn;
            end->records++;
            off += (off_t)sizeof(r);
        }
        close(fd);
        end->seg = seg;
        end->seg_len = off;
        if (off < st.st_size) {
            /* Torn tail: only legal in the newest segment. */
            char next[32];
            seg_name(seg + 1, next, sizeof(next));
            if (faccessat(e->dir_fd, next, F_OK, 0) == 0)
                die(EX_LOG, "%s: invalid record at %lld but %s exists: log damaged", name,
                    (long long)off, next);
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Startup: open, recover, load, replay.                                                        */

static const char *
recover_summary(const atomio_recovery_report *rep, char *buf, size_t len)
{
    snprintf(buf, len,
             "%" PRIu64 " batches (%" PRIu64 " torn), %" PRIu64 " pages checked, %" PRIu64
             " restored",
             rep->batches_scanned, rep->batches_torn, rep->pages_checked, rep->pages_restored);
    return buf;
}

/*
 * engine_open() -- the startup order every engine on libatomio needs:
 *   1. open the context without its automatic recovery and recover explicitly, first;
 *   2. open the data file and make sure libatomio can write it untorn, since we have no
 *      protection of our own (no doublewrite, no full-page images in the log);
 *   3. read and check every page, then redo the log from the checkpoint.
 */
static void
engine_open(struct engine *e)
{
    atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
    co.flags = ATOMIO_CTX_NO_RECOVER;
    if (e->doublewrite_dir) {
        co.doublewrite_dir = e->doublewrite_dir;
        /* The store must hold the copies written between two checkpoints' syncs; this toy
         * engine's data file is a few MiB, so a few MiB of store do. */
        co.doublewrite_store_bytes = 4u << 20;
    }
    else
        co.flags |= ATOMIO_CTX_NO_DOUBLEWRITE;
    int r = atomio_ctx_open(&co, &e->ctx);
    if (r < 0)
        panic("atomio_ctx_open: %s", atomio_strerror(r));

    /* 1. Torn pages back to old-or-new before anyone reads them. */
    if (e->doublewrite_dir) {
        atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
        char buf[160];
        r = atomio_ctx_recover(e->ctx, &rep);
        if (r < 0)
            panic("atomio_ctx_recover: %s (%s)", atomio_strerror(r),
                  recover_summary(&rep, buf, sizeof(buf)));
        if (rep.pages_restored)
            fprintf(stderr, "pagestore: recovery: %s\n",
                    recover_summary(&rep, buf, sizeof(buf)));
    }

    /* 2. The data file, and the question this engine cannot run without asking. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.db", e->dir);
    atomio_file_opts fo = ATOMIO_FILE_OPTS_INIT;
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = e->page_size;
    fo.io_style = e->io_style;
    fo.file_id = FILE_ID;
    r = atomio_file_open(e->ctx, path, &fo, &e->data);
    if (r == ATOMIO_E_NO_DOUBLEWRITE)
        die(EX_UNSAFE, "%s: no atomic writes here, and no doublewrite store to fall back on "
            "(--dblwr-dir); this engine has no torn-page protection of its own", path);
    if (r < 0)
        panic("atomio_file_open %s: %s", path, atomio_strerror(r));
    e->info = (atomio_file_info)ATOMIO_FILE_INFO_INIT;
    r = atomio_file_get_info(e->data, &e->info);
    if (r < 0)
        panic("atomio_file_get_info: %s", atomio_strerror(r));
    if (!e->info.torn_write_safe)
        die(EX_UNSAFE, "%s: writes through %s are not torn-write safe (%s); this engine has no "
            "doublewrite or full-page logging of its own and refuses to run",
            path, atomio_path_name(e->info.path), e->info.reason);

    /* 3. The buffer pool: every page, in buffers every write path takes without a copy. */
    e->pages = atomio_page_alloc(e->ctx, e->page_size, e->npages + 1);
    e->copies = atomio_page_alloc(e->ctx, e->page_size, e->npages + 1);
    e->dirty = calloc(e->npages + 1, sizeof(*e->dirty));
    if (!e->pages || !e->copies || !e->dirty)
        panic("out of memory for %u pages", e->npages + 1);
    for (uint32_t no = 0; no <= e->npages; no++) {
        r = atomio_read(e->data, no, page_at(e, e->pages, no));
        if (r < 0)
            panic("read page %u: %s", no, atomio_strerror(r));
    }
}

/* engine_format() -- a new store: empty pages, then the control page last. */
static void
engine_format(struct engine *e)
{
    seg_drop_before(e, UINT64_MAX);
    atomio_page_write *w = calloc(e->npages, sizeof(*w));
    if (!w)
        panic("out of memory");
    for (uint32_t no = 1; no <= e->npages; no++) {
        page_format(e, page_at(e, e->pages, no), no);
        w[no - 1] = (atomio_page_write){.file = e->data, .page_no = no,
                                        .page = page_at(e, e->pages, no)};
    }
    int n = atomio_write_batch(e->ctx, w, e->npages, 0);
    if (n != (int)e->npages)
        panic("format: %d of %u pages written (%s)", n, e->npages,
              atomio_strerror(n < 0 ? n : w[0].result));
    free(w);
    int r = atomio_sync(e->data);
    if (r < 0)
        panic("format: atomio_sync: %s", atomio_strerror(r));
    e->meta = (struct meta){.magic = MAGIC_META, .ckpt_lsn = 1, .ckpt_seg = 1,
                            .page_size = e->page_size, .npages = e->npages};
    meta_store(e, e->pages);
    r = atomio_write(e->data, 0, e->pages, ATOMIO_WRITE_DSYNC);
    if (r < 0)
        panic("format: control page: %s", atomio_strerror(r));
}

static void
engine_load(struct engine *e)
{
    if (all_zero(e->pages, e->page_size)) {
        engine_format(e);
        return;
    }
    if (!meta_load(e, e->pages))
        die(EX_CORRUPT, "control page (page 0) does not parse");
    if (e->meta.page_size != e->page_size || e->meta.npages != e->npages)
        die(EX_USAGE, "store was made with --page-size %u --pages %u", e->meta.page_size,
            e->meta.npages);
    for (uint32_t no = 1; no <= e->npages; no++)
        if (!page_parses(e, page_at(e, e->pages, no), no))
            die(EX_CORRUPT, "page %u does not parse (torn or damaged)", no);
}

/* ------------------------------------------------------------------------------------------ */
/* Commits and checkpoints.                                                                     */

static void
write_all(int fd, const void *buf, size_t len, const char *what)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            panic("write %s: %s", what, n < 0 ? strerror(errno) : "wrote nothing");
        p += n;
        len -= (size_t)n;
    }
}

/*
 * commit() -- set key to its next version. The log record is durable before the page changes
 * in memory, so a checkpoint can never write a page whose change is not in the log (WAL).
 */
static void
commit(struct engine *e, uint32_t key)
{
    pthread_mutex_lock(&e->lock);
    uint32_t no = 1 + key / e->nslots;
    struct slot *s = slot_at(page_at(e, e->pages, no), key % e->nslots);
    struct rec r = {.magic = MAGIC_REC, .key = key, .lsn = e->next_lsn,
                    .version = s->version + 1};
    derive_value(key, r.version, r.val);
    r.crc = crc32c(&r, sizeof(r));
    write_all(e->log_fd, &r, sizeof(r), "redo log");
    if (fdatasync(e->log_fd) != 0)
        panic("fdatasync redo log: %s", strerror(errno)); /* never retried: see fsyncgate */
    e->next_lsn++;
    apply(e, &r, NULL);
    pthread_mutex_unlock(&e->lock);
    emit("C %u %u\n", key, r.version);
}

/*
 * checkpoint() -- the page flush. Under the lock: note the redo point, start a new log
 * segment, snapshot the dirty pages. Outside it: one atomio_write_batch() for all of them, a
 * sync, then the control page. A crash anywhere leaves the previous checkpoint in force, and
 * every page whole (old or new), so replay from the previous checkpoint is sound.
 */
static void
checkpoint(struct engine *e)
{
    atomio_page_write *w = calloc(e->npages, sizeof(*w));
    if (!w)
        panic("out of memory");
    size_t n = 0;

    pthread_mutex_lock(&e->lock);
    uint64_t redo_lsn = e->next_lsn;
    uint64_t seg = e->log_seg + 1;
    int fd = seg_create(e, seg);
    close(e->log_fd);
    e->log_fd = fd;
    e->log_seg = seg;
    for (uint32_t no = 1; no <= e->npages; no++) {
        if (!e->dirty[no])
            continue;
        uint8_t *copy = page_at(e, e->copies, no);
        memcpy(copy, page_at(e, e->pages, no), e->page_size);
        page_seal(e, copy);
        e->dirty[no] = false;
        w[n++] = (atomio_page_write){.file = e->data, .page_no = no, .page = copy};
    }
    uint64_t count = e->meta.ckpt_count + 1;
    pthread_mutex_unlock(&e->lock);

    emit("p %" PRIu64 "\n", count);
    if (n) {
        int done = atomio_write_batch(e->ctx, w, n, 0);
        if (done != (int)n) {
            for (size_t i = 0; i < n; i++)
                if (w[i].result < 0)
                    panic("checkpoint: page %" PRIu64 ": %s (%s)", w[i].page_no,
                          atomio_strerror(w[i].result), atomio_err_name(w[i].result));
            panic("checkpoint: atomio_write_batch: %s", atomio_strerror(done));
        }
        int r = atomio_sync(e->data);
        if (r < 0)
            panic("checkpoint: atomio_sync: %s", atomio_strerror(r));
    }
    /* The pages are durable; now the control page may point past their log records. */
    struct meta m = e->meta;
    m.ckpt_lsn = redo_lsn;
    m.ckpt_seg = seg;
    m.ckpt_count = count;
    pthread_mutex_lock(&e->lock);
    e->meta = m;
    meta_store(e, e->copies);
    pthread_mutex_unlock(&e->lock);
    int r = atomio_write(e->data, 0, e->copies, ATOMIO_WRITE_DSYNC);
    if (r < 0)
        panic("checkpoint: control page: %s", atomio_strerror(r));
    seg_drop_before(e, seg);
    free(w);
    emit("P %" PRIu64 "\n", count);
}

static void *
checkpointer(void *arg)
{
    struct engine *e = arg;
    struct timespec ts = {.tv_sec = e->ckpt_ms / 1000, .tv_nsec = (e->ckpt_ms % 1000) * 1000000L};
    for (;;) {
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&e->lock);
        bool stop = e->stop;
        pthread_mutex_unlock(&e->lock);
        if (stop)
            return NULL;
        checkpoint(e);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Commands.                                                                                    */

static uint64_t
rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int
cmd_run(struct engine *e, uint64_t seed, uint64_t ops)
{
    engine_open(e);
    engine_load(e);
    struct replay_end end;
    replay(e, &end);

    /* Continue the log right after its last valid record; drop what the control page no
     * longer needs (a crash between the control page and the unlink leaves some behind). */
    char name[32];
    if (end.seg) {
        seg_name(end.seg, name, sizeof(name));
        int fd = openat(e->dir_fd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, end.seg_len) != 0 || fdatasync(fd) != 0)
            panic("truncate %s: %s", name, strerror(errno));
        e->log_fd = fd;
        e->log_seg = end.seg;
    } else {
        e->log_seg = e->meta.ckpt_seg;
        e->log_fd = seg_create(e, e->log_seg);
    }
    seg_drop_before(e, e->meta.ckpt_seg);
    e->next_lsn = end.last_lsn + 1;
    fprintf(stderr, "pagestore: %s (%s); replayed %" PRIu64 " records from LSN %" PRIu64 "\n",
            atomio_path_name(e->info.path), e->info.reason, end.records, e->meta.ckpt_lsn);
    emit("R %s\n", atomio_path_name(e->info.path));

    pthread_t tid;
    if (pthread_create(&tid, NULL, checkpointer, e) != 0)
        panic("pthread_create");
    uint64_t x = seed * 2654435761u + 88172645463325252ull;
    for (uint64_t i = 0; ops == 0 || i < ops; i++)
        commit(e, (uint32_t)(rng_next(&x) % e->nkeys));

    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_mutex_unlock(&e->lock);
    pthread_join(tid, NULL);
    checkpoint(e); /* a clean shutdown leaves nothing to redo */
    close(e->log_fd);
    atomio_page_free(e->ctx, e->pages, e->page_size, e->npages + 1);
    atomio_page_free(e->ctx, e->copies, e->page_size, e->npages + 1);
    free(e->dirty);
    int r = atomio_ctx_close(e->ctx);
    if (r < 0)
        panic("atomio_ctx_close: %s", atomio_strerror(r));
    return EX_OK;
}

static int
cmd_check(struct engine *e)
{
    engine_open(e);
    engine_load(e);
    struct replay_end end;
    replay(e, &end);

    /* Redo must be idempotent: a crash during recovery replays the same records again. */
    size_t bytes = (size_t)(e->npages + 1) * e->page_size;
    uint8_t *snap = malloc(bytes);
    if (!snap)
        panic("out of memory");
    memcpy(snap, e->pages, bytes);
    struct replay_end again;
    replay(e, &again);
    if (again.changed || again.last_lsn != end.last_lsn || memcmp(snap, e->pages, bytes) != 0)
        die(EX_REPLAY, "replaying the log a second time changed the pages");
    free(snap);

    uint32_t keys = 0;
    uint8_t want[VAL_LEN];
    for (uint32_t key = 0; key < e->nkeys; key++) {
        uint8_t *page = page_at(e, e->pages, 1 + key / e->nslots);
        struct slot *s = slot_at(page, key % e->nslots);
        if (s->version == 0) {
            if (!all_zero((const uint8_t *)s, sizeof(*s)))
                die(EX_VALUE, "key %u: unwritten slot is not empty", key);
            continue;
        }
        derive_value(key, s->version, want);
        if (s->key != key || memcmp(s->val, want, VAL_LEN) != 0)
            die(EX_VALUE, "key %u version %u: wrong value", key, s->version);
        if (((struct page_hdr *)page)->lsn > end.last_lsn)
            die(EX_LOG, "page of key %u has LSN %" PRIu64 " beyond the log's end %" PRIu64,
                key, ((struct page_hdr *)page)->lsn, end.last_lsn);
        emit("K %u %u\n", key, s->version);
        keys++;
    }
    emit("S %u %" PRIu64 "\n", keys, end.last_lsn);
    fprintf(stderr, "pagestore: check: %s, %u keys, checkpoint %" PRIu64 ", %" PRIu64
            " records replayed\n", atomio_path_name(e->info.path), keys, e->meta.ckpt_count,
            end.records);
    atomio_page_free(e->ctx, e->pages, e->page_size, e->npages + 1);
    atomio_page_free(e->ctx, e->copies, e->page_size, e->npages + 1);
    free(e->dirty);
    int r = atomio_ctx_close(e->ctx);
    if (r < 0)
        panic("atomio_ctx_close: %s", atomio_strerror(r));
    return EX_OK;
}

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
    fputs("usage: pagestore run|check --dir DIR [--dblwr-dir DIR] [--io any|buffered|direct]\n"
          "                 [--page-size N] [--pages N] [--seed N] [--ops N] [--ckpt-ms N]\n",
          stderr);
    exit(EX_USAGE);
}

static uint64_t
num_arg(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        usage();
    return v;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    struct engine e = {.page_size = 8192, .npages = 32, .io_style = ATOMIO_IO_ANY, .ckpt_ms = 20,
                       .log_fd = -1, .dir_fd = -1};
    uint64_t seed = 1, ops = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--dir"))
            e.dir = v;
        else if (!strcmp(a, "--dblwr-dir"))
            e.doublewrite_dir = v;
        else if (!strcmp(a, "--page-size"))
            e.page_size = (uint32_t)num_arg(v);
        else if (!strcmp(a, "--pages"))
            e.npages = (uint32_t)num_arg(v);
        else if (!strcmp(a, "--seed"))
            seed = num_arg(v);
        else if (!strcmp(a, "--ops"))
            ops = num_arg(v);
        else if (!strcmp(a, "--ckpt-ms"))
            e.ckpt_ms = (unsigned)num_arg(v);
        else if (!strcmp(a, "--io"))
            e.io_style = !strcmp(v, "buffered") ? ATOMIO_IO_BUFFERED
                         : !strcmp(v, "direct") ? ATOMIO_IO_DIRECT
                         : !strcmp(v, "any")    ? ATOMIO_IO_ANY
                                                : (usage(), 0u);
        else
            usage();
    }
    if (!e.dir || e.page_size < 1024 || (e.page_size & (e.page_size - 1)) || !e.npages ||
        e.npages > 4096 || !e.ckpt_ms)
        usage();
    e.nslots = (uint32_t)((e.page_size - sizeof(struct page_hdr)) / sizeof(struct slot));
    e.nkeys = e.nslots * e.npages;
    crc_init();
    pthread_mutex_init(&e.lock, NULL);
    if (mkdir(e.dir, 0700) != 0 && errno != EEXIST)
        die(EX_PANIC, "mkdir %s: %s", e.dir, strerror(errno));
    e.dir_fd = open(e.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e.dir_fd < 0)
        die(EX_PANIC, "open %s: %s", e.dir, strerror(errno));

    /* The store directory is made together with the database, never at a later start: an
     * engine that recreated a missing store would hide the loss of the page copies in it. */
    if (e.doublewrite_dir && faccessat(e.dir_fd, "data.db", F_OK, 0) != 0 && errno == ENOENT &&
        mkdir(e.doublewrite_dir, 0700) != 0 && errno != EEXIST)
        die(EX_PANIC, "mkdir %s: %s", e.doublewrite_dir, strerror(errno));

    if (!strcmp(cmd, "run"))
        return cmd_run(&e, seed, ops);
    if (!strcmp(cmd, "check"))
        return cmd_check(&e);
    usage();
}
