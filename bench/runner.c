/* SPDX-License-Identifier: MIT */
/*
 * runner.c -- the workload driver's runner for libatomio: one ctx and one file per run, opened
 * with the path asked for, pages from atomio_page_alloc(), writes through atomio_write() (batch
 * 1, the call an engine makes per page) or atomio_write_batch(), syncs through atomio_sync().
 * Device bytes, syncs and the per-page latency histogram come from atomio_ctx_get_stats() deltas.
 */
#include "runner.h"

#include "hist.h"
#include "runner_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* --verify: a thread's last batch, kept when the thread ends: its page numbers and, in its
 * buffers, the content the last successful call wrote (the bench never touches a buffer
 * between the call's return and the next stamp). */
struct lib_kept {
    void *bufs;
    uint64_t *pages;
    uint32_t n;
};

struct lib_state {
    const struct wl_config *c;
    atomio_ctx *ctx;
    atomio_file *f;
    atomio_stats st[2];
    uint32_t wflags;       /* ATOMIO_WRITE_STABLE_PAGES unless --copy-pages */
    struct lib_kept *kept; /* --verify: one per thread, else NULL */
};

struct lib_thread {
    struct lib_state *s;
    unsigned tid;
    uint64_t stamp;
    void *bufs;
    atomio_page_write *w;
    uint64_t *last; /* --verify: page numbers of the last successful call, else NULL */
    uint32_t nlast;
};

static void *
lt_init(void *arg, unsigned tid)
{
    struct lib_state *s = arg;
    struct lib_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->tid = tid;
    t->bufs = atomio_page_alloc(s->ctx, s->c->page_size, s->c->batch);
    t->w = calloc(s->c->batch, sizeof(*t->w));
    if (s->kept)
        t->last = calloc(s->c->batch, sizeof(*t->last));
    if (!t->bufs || !t->w || (s->kept && !t->last)) {
        if (t->bufs)
            atomio_page_free(s->ctx, t->bufs, s->c->page_size, s->c->batch);
        free(t->w);
        free(t->last);
        free(t);
        return NULL;
    }
    wl_fill_pages(t->bufs, (size_t)s->c->page_size * s->c->batch,
                  s->c->proc_index * s->c->threads + tid);
    return t;
}

/* stamp() -- make each write's content differ (page number + a counter in the first bytes). */
static void *
stamp(struct lib_thread *t, uint32_t i, uint64_t page_no)
{
    unsigned char *p = (unsigned char *)t->bufs + (size_t)i * t->s->c->page_size;
    uint64_t v[2] = {page_no, ++t->stamp};
    memcpy(p, v, sizeof(v));
    return p;
}

/* remember() -- --verify: the call of n pages succeeded; they are now the thread's last. */
static int
remember(struct lib_thread *t, const uint64_t *pages, uint32_t n, int rc)
{
    if (t->last && rc == 0) {
        memcpy(t->last, pages, n * sizeof(*pages));
        t->nlast = n;
    } else if (t->last) {
        t->nlast = 0; /* a failed call may have changed some pages: nothing to compare */
    }
    return rc;
}

static int
lt_write(void *ts, const uint64_t *pages, uint32_t n, uint64_t *lat)
{
    (void)lat;
    struct lib_thread *t = ts;
    if (n == 1)
        return remember(t, pages, 1,
                        atomio_write(t->s->f, pages[0], stamp(t, 0, pages[0]), t->s->wflags));
    for (uint32_t i = 0; i < n; i++) {
        t->w[i].file = t->s->f;
        t->w[i].page_no = pages[i];
        t->w[i].page = stamp(t, i, pages[i]);
        t->w[i].result = 0;
    }
    int rc = atomio_write_batch(t->s->ctx, t->w, n, t->s->wflags);
    if (rc < 0)
        return remember(t, pages, n, rc);
    if ((uint32_t)rc != n) {
        for (uint32_t i = 0; i < n; i++)
            if (t->w[i].result < 0)
                return remember(t, pages, n, t->w[i].result);
        /* count short but no entry failed: a library bug, say so */
        return remember(t, pages, n, ATOMIO_E_INVAL);
    }
    return remember(t, pages, n, 0);
}

static int
lt_sync(void *ts)
{
    struct lib_thread *t = ts;
    return atomio_sync(t->s->f);
}

static void
lt_fini(void *ts)
{
    struct lib_thread *t = ts;
    if (t->s->kept) { /* --verify: lib_run() compares and frees them after the run */
        struct lib_kept *k = &t->s->kept[t->tid];
        k->bufs = t->bufs;
        k->pages = t->last;
        k->n = t->nlast;
    } else {
        atomio_page_free(t->s->ctx, t->bufs, t->s->c->page_size, t->s->c->batch);
    }
    free(t->w);
    free(t);
}

/*
 * verify_kept() -- --verify: compare every kept page with what the file holds, read with
 * atomio_read() (through_library: before the final sync, so under write-behind a page still
 * staged must come from the staging) or with a plain pread() of the file (after the final
 * sync, which must have flushed the staging and written every page in place). The first
 * difference is the run's error.
 */
static int
verify_kept(struct lib_state *s, struct wl_result *r, int through_library)
{
    const struct wl_config *c = s->c;
    const char *how = through_library ? "atomio_read()" : "pread() after the final sync";
    void *got = atomio_page_alloc(s->ctx, c->page_size, 1);
    int fd = through_library ? -1 : open(c->file, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    if (!got || (!through_library && fd < 0)) {
        rc = got ? -errno : -ENOMEM;
        snprintf(r->errmsg, sizeof(r->errmsg), "verify: %s", strerror(-rc));
    }
    for (unsigned tid = 0; tid < c->threads && !rc; tid++) {
        const struct lib_kept *k = &s->kept[tid];
        for (uint32_t i = 0; i < k->n && !rc; i++) {
            const unsigned char *want = (const unsigned char *)k->bufs + (size_t)i * c->page_size;
            if (through_library) {
                rc = atomio_read(s->f, k->pages[i], got);
                if (rc < 0)
                    snprintf(
                        r->errmsg, sizeof(r->errmsg), "verify: atomio_read(page %llu): %s (%s)",
                        (unsigned long long)k->pages[i], atomio_err_name(rc), atomio_strerror(rc));
            } else {
                ssize_t n =
                    pread(fd, got, c->page_size, (off_t)(k->pages[i] * (uint64_t)c->page_size));
                if (n != (ssize_t)c->page_size) {
                    rc = n < 0 ? -errno : -EIO;
                    snprintf(r->errmsg, sizeof(r->errmsg), "verify: pread(page %llu): %s",
                             (unsigned long long)k->pages[i], n < 0 ? strerror(errno) : "short");
                }
            }
            if (rc == 0 && memcmp(got, want, c->page_size) != 0) {
                uint64_t g[2], w[2];
                memcpy(g, got, sizeof(g));
                memcpy(w, want, sizeof(w));
                rc = ATOMIO_E_INVAL;
                snprintf(r->errmsg, sizeof(r->errmsg),
                         "verify: page %llu read with %s is not the last write of thread %u "
                         "(it holds page %llu stamp %llu, the write had stamp %llu)",
                         (unsigned long long)k->pages[i], how, tid, (unsigned long long)g[0],
                         (unsigned long long)g[1], (unsigned long long)w[1]);
            }
            if (rc == 0 && through_library)
                r->verified_pages++;
        }
    }
    if (fd >= 0)
        close(fd);
    if (got)
        atomio_page_free(s->ctx, got, c->page_size, 1);
    if (rc)
        r->err = rc;
    return rc;
}

static void
free_kept(struct lib_state *s)
{
    if (!s->kept)
        return;
    for (unsigned tid = 0; tid < s->c->threads; tid++) {
        if (s->kept[tid].bufs)
            atomio_page_free(s->ctx, s->kept[tid].bufs, s->c->page_size, s->c->batch);
        free(s->kept[tid].pages);
    }
    free(s->kept);
    s->kept = NULL;
}

static void
lt_mark(void *arg, int phase)
{
    struct lib_state *s = arg;
    atomio_stats st;
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st); /* the _INIT macros trip -Wmissing-field-initializers */
    if (atomio_ctx_get_stats(s->ctx, &st) == 0)
        s->st[phase] = st;
}

static void
lt_strerr(void *arg, int err, char *buf, size_t len)
{
    (void)arg;
    snprintf(buf, len, "%s (%s)", atomio_err_name(err), atomio_strerror(err));
}

void
lib_default_dblwr_dir(const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s.atomio-dblwr", file);
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

void
lib_remove_dblwr_dir(const char *dir)
{
    /* Only ever called on a directory this tool created; FTW_PHYS: never follow a link out. */
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int
parse_path_name(const char *s)
{
    static const struct {
        const char *name;
        int path;
    } names[] = {
        {"auto", ATOMIO_PATH_AUTO},
        {"direct", ATOMIO_PATH_DIRECT_ATOMIC},
        {"direct_atomic", ATOMIO_PATH_DIRECT_ATOMIC},
        {"direct-atomic", ATOMIO_PATH_DIRECT_ATOMIC},
        {"buffered", ATOMIO_PATH_BUFFERED_ATOMIC},
        {"buffered_atomic", ATOMIO_PATH_BUFFERED_ATOMIC},
        {"buffered-atomic", ATOMIO_PATH_BUFFERED_ATOMIC},
        {"doublewrite", ATOMIO_PATH_DOUBLEWRITE},
        {"dblwr", ATOMIO_PATH_DOUBLEWRITE},
        {"unsafe", ATOMIO_PATH_UNSAFE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].path;
    return -1;
}

int
parse_policy_name(const char *s)
{
    if (strcmp(s, "fast") == 0 || strcasecmp(s, "prefer_fast") == 0)
        return ATOMIO_POLICY_PREFER_FAST;
    if (strcmp(s, "atomic") == 0 || strcasecmp(s, "prefer_atomic") == 0)
        return ATOMIO_POLICY_PREFER_ATOMIC;
    if (strcasecmp(s, "calibrate") == 0)
        return ATOMIO_POLICY_CALIBRATE;
    return -1;
}

const char *
fs_type_name(uint64_t t)
{
    static _Thread_local char buf[24];
    switch (t) {
    case 0x58465342:
        return "xfs";
    case 0xef53:
        return "ext4";
    case 0x01021994:
        return "tmpfs";
    case 0x9123683e:
        return "btrfs";
    case 0x2fc12fc1:
        return "zfs";
    case 0xf2f52010:
        return "f2fs";
    case 0x794c7630:
        return "overlayfs";
    case 0x6969:
        return "nfs";
    case 0:
        return "unknown";
    }
    snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)t);
    return buf;
}

/* open_ctx() -- a ctx with a doublewrite store; without one if the store cannot be made and the
 * path is not DOUBLEWRITE itself (noted in the result, so the row says so: AUTO then chooses
 * among the other paths). */
static int
open_ctx(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r, atomio_ctx **ctx)
{
    atomio_ctx_opts co;
    atomio_ctx_opts_init(&co);
    co.doublewrite_dir = o->doublewrite_dir;
    co.policy = o->policy;
    /* --submitter engine: the bench's ring writes; the library's own is left to choose. */
    co.submitter = c->submitter == WL_SUBMIT_ENGINE ? ATOMIO_SUBMIT_AUTO : (uint32_t)c->submitter;
    co.queue_depth = c->qd;
    co.doublewrite_batch_pages = c->batch > 64 ? c->batch : 0;
    co.doublewrite_max_page_size = c->page_size > 16384 ? c->page_size : 0;
    /* Every writer process derives the mode from the same knobs: the library refuses an
     * instance whose processes disagree on write-behind. */
    co.doublewrite_mode = c->write_behind ? ATOMIO_DOUBLEWRITE_WRITE_BEHIND
                          : c->deferred   ? ATOMIO_DOUBLEWRITE_DEFERRED
                                          : ATOMIO_DOUBLEWRITE_SYNC_BATCH;
    co.write_behind_bytes = c->write_behind ? c->write_behind_bytes : 0;
    co.doublewrite_store_bytes = o->store_bytes;
    co.instance = o->instance;
    int rc = atomio_ctx_open(&co, ctx);
    if (rc == 0 || o->path == ATOMIO_PATH_DOUBLEWRITE)
        return rc;
    snprintf(r->note, sizeof(r->note), "no doublewrite store (%s)%s", atomio_err_name(rc),
             o->path == ATOMIO_PATH_AUTO ? ", so AUTO chose without DOUBLEWRITE" : "");
    co.flags |= ATOMIO_CTX_NO_DOUBLEWRITE;
    co.doublewrite_dir = NULL;
    /* Without a store there is nothing to stage: deferred durability is what is left. */
    if (c->write_behind) {
        co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
        co.write_behind_bytes = 0;
    }
    return atomio_ctx_open(&co, ctx);
}

/*
 * check_flushed() -- after the final ctx sync of a lone writer process nothing may be staged:
 * the sync flushes every page staged when it began, and no thread writes any more. A page
 * left behind would be one a plain read of the file misses, so say so as the run's error.
 */
static int
check_flushed(struct lib_state *s, struct wl_result *r)
{
    atomio_stats st;
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st); /* the _INIT macros trip -Wmissing-field-initializers */
    int rc = atomio_ctx_get_stats(s->ctx, &st);
    if (rc < 0 || st.staged_now == 0)
        return rc;
    r->err = ATOMIO_E_INVAL;
    snprintf(r->errmsg, sizeof(r->errmsg),
             "after the final atomio_ctx_sync the library still counts %llu page(s) staged "
             "(staged_now): the sync should have flushed them",
             (unsigned long long)st.staged_now);
    return r->err;
}

static int
lib_proc(void *arg, const struct wl_config *c, struct wl_result *r)
{
    return lib_run(c, arg, r, NULL, NULL);
}

int
lib_run_processes(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r)
{
    return wl_run_processes(c, lib_proc, (void *)(uintptr_t)o, r);
}

int
lib_run(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r,
        wl_pages_fn *on_pages, void *on_pages_arg)
{
    struct lib_state s;
    memset(&s, 0, sizeof(s));
    s.c = c;
    /* Each thread stamps its pages and then waits for the call: they never change during it. */
    s.wflags = c->copy_pages ? 0 : ATOMIO_WRITE_STABLE_PAGES;
    snprintf(r->name, sizeof(r->name), "%s", atomio_path_name(o->path));
    int rc = open_ctx(c, o, r, &s.ctx);
    if (rc < 0) {
        const char *why = atomio_last_reason();
        r->err = rc;
        snprintf(r->errmsg, sizeof(r->errmsg), "atomio_ctx_open(%s%s): %s (%s)%s%s",
                 o->doublewrite_dir, c->write_behind ? ", write-behind" : "", atomio_err_name(rc),
                 atomio_strerror(rc), why && *why ? ": " : "", why ? why : "");
        return rc;
    }
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.page_size = c->page_size;
    fo.io_style = (uint32_t)c->io_style;
    fo.path = o->path;
    rc = atomio_file_open(s.ctx, c->file, &fo, &s.f);
    if (rc < 0) {
        r->err = rc;
        const char *why = "";
        atomio_caps caps;
        memset(&caps, 0, sizeof(caps));
        caps.size = sizeof(caps); /* the _INIT macros trip -Wmissing-field-initializers */
        if ((rc == ATOMIO_E_PATH_UNSUPPORTED || rc == ATOMIO_E_FOLIO_ORDER) &&
            atomio_probe(c->file, c->page_size, &caps) == 0) {
            if (o->path == ATOMIO_PATH_DIRECT_ATOMIC)
                why = caps.reason_direct;
            else if (o->path == ATOMIO_PATH_BUFFERED_ATOMIC)
                why = caps.reason_buffered;
            else if (o->path == ATOMIO_PATH_DOUBLEWRITE)
                why = caps.reason_doublewrite;
        }
        snprintf(r->errmsg, sizeof(r->errmsg), "atomio_file_open(%s, path %s): %s (%s)%s%s",
                 c->file, atomio_path_name(o->path), atomio_err_name(rc), atomio_strerror(rc),
                 *why ? ": " : "", why);
        (void)atomio_ctx_close(s.ctx);
        return rc;
    }
    atomio_file_info info;
    memset(&info, 0, sizeof(info));
    info.size = sizeof(info); /* the _INIT macros trip -Wmissing-field-initializers */
    if (atomio_file_get_info(s.f, &info) == 0) {
        snprintf(r->path_actual, sizeof(r->path_actual), "%s", atomio_path_name(info.path));
        snprintf(r->submitter, sizeof(r->submitter), "%s", atomio_submitter_name(info.submitter));
        r->o_direct = (int)info.o_direct;
        r->qd_effective = info.submitter == ATOMIO_SUBMIT_SYNC ? 1 : c->qd;
        r->write_behind = c->write_behind && info.path == ATOMIO_PATH_DOUBLEWRITE;
        size_t used = strlen(r->note);
        if (o->path == ATOMIO_PATH_AUTO || info.path != o->path || info.uring_fallback)
            snprintf(r->note + used, sizeof(r->note) - used, "%s%s%s%s", used ? "; " : "",
                     info.reason, info.uring_fallback ? "; io_uring setup failed, pwritev2" : "",
                     "");
    }

    if (c->verify) {
        s.kept = calloc(c->threads, sizeof(*s.kept));
        if (!s.kept) {
            r->err = rc = -ENOMEM;
            snprintf(r->errmsg, sizeof(r->errmsg), "verify: out of memory");
            (void)atomio_file_close(s.f);
            (void)atomio_ctx_close(s.ctx);
            return rc;
        }
    }
    struct wl_ops ops = {
        .arg = &s,
        .thread_init = lt_init,
        .write_batch = lt_write,
        .sync = lt_sync,
        .thread_fini = lt_fini,
        .mark = lt_mark,
        .strerr = lt_strerr,
        .page_lat = 0,
    };
    struct ring_env ring = {.c = c, .ctx = s.ctx, .f = s.f, .mark = lt_mark, .mark_arg = &s};
    if (c->submitter == WL_SUBMIT_ENGINE) {
        ring.doublewrite = info.path == ATOMIO_PATH_DOUBLEWRITE;
        ring_ops(&ring, &ops);
        snprintf(r->submitter, sizeof(r->submitter), "engine");
        r->qd_effective = c->qd;
    }
    rc = wl_run(c, &ops, r, on_pages, on_pages_arg);
    int ring_err = atomic_load(&ring.err);
    if (ring_err && !rc) {
        rc = r->err = ring_err;
        snprintf(r->errmsg, sizeof(r->errmsg), "engine ring, finishing the last batches: %s (%s)",
                 atomio_err_name(ring_err), atomio_strerror(ring_err));
    }
    const atomio_stats *a = &s.st[0], *b = &s.st[1];
    r->bytes_data = b->bytes_data - a->bytes_data;
    r->bytes_doublewrite = b->bytes_doublewrite - a->bytes_doublewrite;
    r->dev_syncs = b->syncs - a->syncs;
    for (int i = 0; i < ATOMIO_LAT_BUCKETS && i < WL_LOG2_BUCKETS; i++)
        r->log2_lat[i] = b->lat_hist[i] - a->lat_hist[i];
    r->bounce_copies = b->bounce_copies - a->bounce_copies;
    r->forced_syncs = b->forced_syncs - a->forced_syncs;
    r->group_commits = b->group_commits - a->group_commits;
    r->group_records = b->group_records - a->group_records;
    r->store_bytes = b->store_bytes;
    r->store_bytes_used = b->store_bytes_used;
    /* At the start of measurement every process is attached; at its end some may be gone. */
    r->attached = a->attached > b->attached ? a->attached : b->attached;
    r->pages_staged = b->pages_staged - a->pages_staged;
    r->staged_reads = b->staged_reads - a->staged_reads;
    r->staged_now = b->staged_now; /* instance-wide, when measurement ended */
    wl_result_log2_quantiles(r);
    /* --verify, part 1: every thread's last pages through the library, before anything
     * flushes them (atomio_read() must see pages that are still staged). */
    if (s.kept && !rc) {
        atomio_stats v[2];
        memset(v, 0, sizeof(v));
        v[0].size = v[1].size = sizeof(v[0]);
        int g0 = atomio_ctx_get_stats(s.ctx, &v[0]);
        rc = verify_kept(&s, r, 1);
        if (g0 == 0 && atomio_ctx_get_stats(s.ctx, &v[1]) == 0)
            r->verify_staged_reads = v[1].staged_reads - v[0].staged_reads;
    }
    /* Deferred durability: a last engine sync (after measurement), as at shutdown, so the
     * next run's ctx does not open a store full of copies to recover. Write-behind: the ctx
     * sync, which first flushes every page staged in the instance (whichever process staged
     * it) to the store and in place, then syncs the files and releases the copies. */
    int src = 0;
    const char *what = "atomio_sync";
    if (c->write_behind && !rc) {
        what = "atomio_ctx_sync";
        src = atomio_ctx_sync(s.ctx);
        if (src == 0 && c->processes <= 1)
            src = check_flushed(&s, r);
    } else if (c->deferred && !rc) {
        src = atomio_sync(s.f);
    }
    if (src < 0) {
        rc = src;
        if (!r->err) { /* check_flushed() has said what it found */
            r->err = src;
            snprintf(r->errmsg, sizeof(r->errmsg), "final %s: %s (%s)", what, atomio_err_name(src),
                     atomio_strerror(src));
        }
    }
    /* --verify, part 2: after the final sync (if any) every page is in its file, so a plain
     * read, which knows nothing of the staging, must see it too. */
    if (s.kept && !rc)
        rc = verify_kept(&s, r, 0);
    free_kept(&s);
    int crc = atomio_file_close(s.f);
    int xrc = atomio_ctx_close(s.ctx);
    if (!rc && (crc || xrc)) {
        rc = crc ? crc : xrc;
        r->err = rc;
        snprintf(r->errmsg, sizeof(r->errmsg), "close: %s (%s)", atomio_err_name(rc),
                 atomio_strerror(rc));
    }
    return rc;
}
