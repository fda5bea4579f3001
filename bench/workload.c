/* SPDX-License-Identifier: MIT */
/*
 * workload.c -- the workload driver shared by atomio-bench and the bare baselines: which pages
 * are written when (random, sequential, zipfian checkpoint), batching, sync cadence, threads,
 * warm-up, timing and CPU accounting. Runners only say how a batch is written and synced, so a
 * library run and a baseline run with the same knobs do the same work and their ratio is fair.
 * Each thread owns a contiguous stripe of the file, so no two threads write the same page.
 */
#include "workload.h"

#include "clock.h"
#include "hist.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FILE_SIZE (256ull << 20)

/* ---- the file ---------------------------------------------------------------------------- */

int
wl_prepare_file(struct wl_config *c, int *filled)
{
    *filled = 0;
    struct stat st;
    uint64_t have = 0;
    if (stat(c->file, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return -EINVAL;
        have = (uint64_t)st.st_size / c->page_size * c->page_size;
        if (!c->file_size_given)
            c->file_size = have ? have : DEFAULT_FILE_SIZE;
    } else if (errno != ENOENT) {
        return -errno;
    } else if (!c->file_size_given) {
        c->file_size = DEFAULT_FILE_SIZE;
    }
    if (have >= c->file_size)
        return 0;

    int fd = open(c->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    /* Non-zero data, so every block is allocated and written: the runs then measure
     * overwrites, which is what a database's page flushes are. */
    size_t chunk = 1u << 20;
    unsigned char *buf = malloc(chunk);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (unsigned char)(i * 131u + 7u);
    int err = 0;
    for (uint64_t off = have; off < c->file_size && !err;) {
        size_t n = c->file_size - off < chunk ? (size_t)(c->file_size - off) : chunk;
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = w < 0 ? -errno : -EIO;
        else
            off += (uint64_t)w;
    }
    free(buf);
    if (!err && fdatasync(fd) != 0)
        err = -errno;
    /* Drop the fill from the page cache so buffered runs do not start with it warm. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err)
        *filled = 1;
    return err;
}

/* ---- page choice ------------------------------------------------------------------------- */

struct chooser {
    int pattern;
    uint64_t base; /* first page of this thread's stripe */
    uint64_t n;    /* pages in the stripe */
    uint64_t cursor;
    uint64_t rng;
    /* zipfian (Gray et al., as YCSB uses it), rank 0 hottest */
    double theta, zetan, alpha, eta, half_pow_theta;
    uint64_t mult; /* rank -> page scramble, coprime with n */
    /* distinct pages within one batch */
    uint64_t *set;
    uint32_t set_mask;
};

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

void
wl_fill_pages(void *buf, size_t len, unsigned tid)
{
    uint64_t x = 0x2545F4914F6CDD1Dull ^ tid;
    for (size_t i = 0; i < len; i += 8) {
        xorshift(&x);
        memcpy((unsigned char *)buf + i, &x, 8);
    }
}

static double
rand01(uint64_t *s)
{
    return (double)(xorshift(s) >> 11) * 0x1p-53;
}

static uint64_t
gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * chooser_init() -- set up thread tid's stripe and generator. The zipfian constant zeta(n) costs
 * O(n) once per run (n is pages per thread, at most a few million).
 */
static int
chooser_init(struct chooser *ch, const struct wl_config *c, unsigned tid, uint32_t batch)
{
    memset(ch, 0, sizeof(*ch));
    uint64_t npages = c->file_size / c->page_size;
    /* Every thread of every process owns a stripe: process i's come after those of 0..i-1. */
    uint64_t gtid = (uint64_t)c->proc_index * c->threads + tid;
    ch->pattern = c->pattern;
    ch->n = npages / ((uint64_t)c->threads * (c->processes ? c->processes : 1));
    ch->base = ch->n * gtid;
    ch->rng = (c->seed + 1) * 0x9E3779B97F4A7C15ull ^ (gtid + 1) * 0xD1B54A32D192ED03ull;
    if (!ch->rng)
        ch->rng = 1;
    for (int i = 0; i < 8; i++)
        xorshift(&ch->rng);
    if (c->pattern == WL_CHECKPOINT) {
        ch->theta = c->zipf_theta;
        double z = 0, z2 = 1 + pow(0.5, ch->theta);
        for (uint64_t i = 1; i <= ch->n; i++)
            z += 1.0 / pow((double)i, ch->theta);
        ch->zetan = z;
        ch->alpha = 1.0 / (1.0 - ch->theta);
        ch->eta = (1 - pow(2.0 / (double)ch->n, 1 - ch->theta)) / (1 - z2 / z);
        ch->half_pow_theta = pow(0.5, ch->theta);
        ch->mult = 0x9E3779B97F4A7C15ull % ch->n;
        while (ch->mult < 2 || gcd(ch->mult, ch->n) != 1)
            ch->mult = (ch->mult + 1) % ch->n;
    }
    uint32_t sz = 16;
    while (sz < 2 * batch)
        sz <<= 1;
    ch->set = calloc(sz, sizeof(uint64_t));
    ch->set_mask = sz - 1;
    return ch->set ? 0 : -ENOMEM;
}

static uint64_t
zipf_rank(struct chooser *ch)
{
    double u = rand01(&ch->rng);
    double uz = u * ch->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + ch->half_pow_theta)
        return 1 < ch->n ? 1 : 0;
    uint64_t r = (uint64_t)((double)ch->n * pow(ch->eta * u - ch->eta + 1, ch->alpha));
    return r < ch->n ? r : ch->n - 1;
}

/* set_insert() -- 1 if page was not yet in this batch's set (and is now). */
static int
set_insert(struct chooser *ch, uint64_t page)
{
    uint32_t h = (uint32_t)((page * 0x9E3779B97F4A7C15ull) >> 40) & ch->set_mask;
    while (ch->set[h]) {
        if (ch->set[h] == page + 1)
            return 0;
        h = (h + 1) & ch->set_mask;
    }
    ch->set[h] = page + 1;
    return 1;
}

/* chooser_batch() -- n distinct page numbers for the next batch. */
static void
chooser_batch(struct chooser *ch, uint64_t *out, uint32_t n)
{
    memset(ch->set, 0, (size_t)(ch->set_mask + 1) * sizeof(uint64_t));
    for (uint32_t i = 0; i < n;) {
        uint64_t p;
        switch (ch->pattern) {
        case WL_SEQUENTIAL:
            p = ch->cursor++ % ch->n;
            break;
        case WL_CHECKPOINT:
            p = (zipf_rank(ch) * ch->mult) % ch->n;
            break;
        default:
            p = xorshift(&ch->rng) % ch->n;
            break;
        }
        if (set_insert(ch, p))
            out[i++] = ch->base + p;
    }
}

/* ---- the driver -------------------------------------------------------------------------- */

struct wl_shared {
    const struct wl_config *c;
    const struct wl_ops *ops;
    wl_pages_fn *on_pages;
    void *on_pages_arg;
    _Atomic int measuring;
    _Atomic int stop;
    /* The switch from warm-up to measuring happens at a batch boundary of every thread at
     * once (a barrier that tolerates threads leaving), so no batch straddles it and the
     * counters snapshotted by ops->mark match the pages counted exactly. */
    _Atomic int flip_requested;
    pthread_cond_t cond;
    unsigned arrived, live;
    uint64_t t0;
    double u0, s0;
    _Atomic int64_t remaining; /* pages mode */
    _Atomic int err;
    pthread_mutex_t lock;
    char errmsg[256];
};

struct wl_thread {
    struct wl_shared *sh;
    unsigned tid;
    pthread_t th;
    uint64_t pages, batches, syncs;
    struct hist *lat_batch, *lat_page;
};

static void
set_error(struct wl_shared *sh, int err, const char *what)
{
    int zero = 0;
    if (!atomic_compare_exchange_strong(&sh->err, &zero, err))
        return;
    char m[200] = "";
    if (sh->ops->strerr)
        sh->ops->strerr(sh->ops->arg, err, m, sizeof(m));
    else
        snprintf(m, sizeof(m), "%s", strerror(err < 0 ? -err : err));
    pthread_mutex_lock(&sh->lock);
    snprintf(sh->errmsg, sizeof(sh->errmsg), "%s: %s", what, m);
    pthread_mutex_unlock(&sh->lock);
    atomic_store(&sh->stop, 1);
}

/* flip_locked() -- start measuring: snapshot counters, CPU and time (lock held, no batch in
 * flight anywhere). */
static void
flip_locked(struct wl_shared *sh)
{
    if (sh->ops->mark)
        sh->ops->mark(sh->ops->arg, 0);
    cpu_seconds(&sh->u0, &sh->s0);
    sh->t0 = now_ns();
    atomic_store_explicit(&sh->measuring, 1, memory_order_release);
    pthread_cond_broadcast(&sh->cond);
}

/* arrive() -- a thread at a batch boundary after the warm-up: the last one to arrive flips. */
static void
arrive(struct wl_shared *sh)
{
    pthread_mutex_lock(&sh->lock);
    if (++sh->arrived >= sh->live && !atomic_load(&sh->measuring))
        flip_locked(sh);
    while (!atomic_load(&sh->measuring) && !atomic_load(&sh->stop))
        pthread_cond_wait(&sh->cond, &sh->lock);
    pthread_mutex_unlock(&sh->lock);
}

/* leave() -- a thread exits; if the others wait for it at the flip, flip for them. */
static void
leave(struct wl_shared *sh)
{
    pthread_mutex_lock(&sh->lock);
    sh->live--;
    if (atomic_load(&sh->flip_requested) && !atomic_load(&sh->measuring) && sh->live &&
        sh->arrived >= sh->live)
        flip_locked(sh);
    pthread_cond_broadcast(&sh->cond);
    pthread_mutex_unlock(&sh->lock);
}

/*
 * writer() -- one thread: choose a batch, write it, sync when due. Only batches that start
 * while measuring count; the coordinator flips `measuring` at the end of the warm-up.
 */
static void *
writer(void *arg)
{
    struct wl_thread *t = arg;
    struct wl_shared *sh = t->sh;
    const struct wl_config *c = sh->c;
    const struct wl_ops *ops = sh->ops;
    struct chooser ch;
    uint64_t *pages = calloc(c->batch, sizeof(uint64_t));
    uint64_t *lat = calloc(c->batch, sizeof(uint64_t));
    void *ts = NULL;
    if (!pages || !lat || chooser_init(&ch, c, t->tid, c->batch) != 0) {
        set_error(sh, -ENOMEM, "workload setup");
        goto out_nochooser;
    }
    ts = ops->thread_init(ops->arg, t->tid);
    if (!ts) {
        set_error(sh, -ENOMEM, "runner setup");
        goto out;
    }
    uint64_t since_sync = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        if (!atomic_load_explicit(&sh->measuring, memory_order_acquire) &&
            atomic_load_explicit(&sh->flip_requested, memory_order_acquire)) {
            if (ops->quiesce) {
                int qrc = ops->quiesce(ts);
                if (qrc < 0) {
                    set_error(sh, qrc, "write");
                    break;
                }
            }
            arrive(sh);
        }
        int m = atomic_load_explicit(&sh->measuring, memory_order_acquire);
        uint32_t n = c->batch;
        if (m && c->pages) {
            int64_t left = atomic_fetch_sub(&sh->remaining, (int64_t)n);
            if (left <= 0)
                break;
            if (left < (int64_t)n)
                n = (uint32_t)left;
        }
        chooser_batch(&ch, pages, n);
        uint64_t t0 = now_ns();
        int rc = ops->write_batch(ts, pages, n, ops->page_lat ? lat : NULL);
        uint64_t t1 = now_ns();
        if (rc < 0) {
            set_error(sh, rc, "write");
            break;
        }
        since_sync += n;
        int synced = 0;
        if (c->sync_every == WL_SYNC_BATCH ||
            (c->sync_every != WL_SYNC_NEVER && since_sync >= c->sync_every)) {
            rc = ops->sync(ts);
            if (rc < 0) {
                set_error(sh, rc, "sync");
                break;
            }
            since_sync = 0;
            synced = 1;
        }
        uint64_t t2 = synced ? now_ns() : t1;
        if (!m)
            continue;
        t->pages += n;
        t->batches++;
        t->syncs += (uint64_t)synced;
        hist_add(t->lat_batch, t2 - t0);
        if (ops->page_lat) {
            for (uint32_t i = 0; i < n; i++)
                hist_add(t->lat_page, lat[i]);
        } else if (c->batch == 1) {
            hist_add(t->lat_page, t1 - t0); /* the write call of one page */
        }
        if (sh->on_pages)
            sh->on_pages(sh->on_pages_arg, n);
    }
out:
    if (ts)
        ops->thread_fini(ts);
    free(ch.set);
out_nochooser:
    free(pages);
    free(lat);
    leave(sh);
    return NULL;
}

/* sleep_until() -- sleep to an absolute monotonic time, waking early if the run stopped. */
static void
sleep_until(struct wl_shared *sh, uint64_t deadline)
{
    while (!atomic_load(&sh->stop)) {
        uint64_t now = now_ns();
        if (now >= deadline)
            return;
        uint64_t d = deadline - now;
        if (d > 50000000)
            d = 50000000;
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

/* ---- several writer processes ----------------------------------------------------------- */

/* One process's result, as it travels back to the parent (no pointers). */
struct proc_slot {
    struct wl_result r; /* lat_batch / lat_page NULL: they are the two below */
    struct hist lat_batch, lat_page;
    int done;
};

/* Shared by the parent and its writer processes (MAP_SHARED). */
struct proc_shared {
    _Atomic unsigned arrived; /* processes set up and waiting to start */
    _Atomic int abort;        /* a process died before it arrived: nobody waits for it */
    unsigned n;
    struct proc_slot slot[];
};

/* proc_start() -- wait until every writer process is set up (or one died first). */
static void
proc_start(struct proc_shared *ps, int *arrived)
{
    if (!ps || *arrived)
        return;
    *arrived = 1;
    atomic_fetch_add(&ps->arrived, 1);
    while (atomic_load(&ps->arrived) < ps->n && !atomic_load(&ps->abort)) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static _Thread_local int proc_arrived; /* this process has passed proc_start() */

static void
merge_result(struct wl_result *r, const struct wl_result *x, unsigned i)
{
    if (i == 0) {
        memcpy(r->name, x->name, sizeof(r->name));
        memcpy(r->path_actual, x->path_actual, sizeof(r->path_actual));
        memcpy(r->submitter, x->submitter, sizeof(r->submitter));
        memcpy(r->note, x->note, sizeof(r->note));
        r->o_direct = x->o_direct;
        r->qd_effective = x->qd_effective;
        r->write_behind = x->write_behind;
        r->lat_page_source = "none";
    }
    r->pages += x->pages;
    r->batches += x->batches;
    r->syncs_issued += x->syncs_issued;
    if (x->elapsed_s > r->elapsed_s)
        r->elapsed_s = x->elapsed_s;
    r->cpu_user_s += x->cpu_user_s;
    r->cpu_sys_s += x->cpu_sys_s;
    r->bytes_data += x->bytes_data;
    r->bytes_doublewrite += x->bytes_doublewrite;
    r->dev_syncs += x->dev_syncs;
    for (int b = 0; b < WL_LOG2_BUCKETS; b++)
        r->log2_lat[b] += x->log2_lat[b];
    r->bounce_copies += x->bounce_copies;
    r->forced_syncs += x->forced_syncs;
    r->group_commits += x->group_commits;
    r->group_records += x->group_records;
    r->pages_staged += x->pages_staged;
    r->staged_reads += x->staged_reads;
    r->verified_pages += x->verified_pages;
    r->verify_staged_reads += x->verify_staged_reads;
#define MAXOF(f) (r->f = x->f > r->f ? x->f : r->f)
    MAXOF(store_bytes);
    MAXOF(store_bytes_used);
    MAXOF(attached);
    MAXOF(staged_now);
#undef MAXOF
    if (x->err && !r->err) {
        r->err = x->err;
        snprintf(r->errmsg, sizeof(r->errmsg), "process %u: %.200s", i, x->errmsg);
    }
}

int
wl_run_processes(const struct wl_config *c, wl_proc_fn *fn, void *arg, struct wl_result *r)
{
    unsigned n = c->processes ? c->processes : 1;
    size_t len = sizeof(struct proc_shared) + n * sizeof(struct proc_slot);
    struct proc_shared *ps =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ps == MAP_FAILED) {
        r->err = -errno;
        snprintf(r->errmsg, sizeof(r->errmsg), "mmap: %s", strerror(errno));
        return r->err;
    }
    ps->n = n;
    pid_t *pids = calloc(n, sizeof(pid_t));
    if (!pids) {
        munmap(ps, len);
        return r->err = -ENOMEM;
    }
    fflush(NULL); /* nothing buffered twice */
    unsigned started = 0;
    for (; started < n; started++) {
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0) {
            struct wl_config ci = *c;
            ci.proc_index = started;
            ci.proc_shared = ps;
            ci.progress = 0;
            if (c->pages)
                ci.pages = c->pages / n + (started < c->pages % n);
            struct proc_slot *sl = &ps->slot[started];
            struct wl_result cr;
            int rc = wl_result_alloc(&cr);
            if (rc == 0)
                rc = fn(arg, &ci, &cr);
            proc_start(ps, &proc_arrived); /* never let the others wait for a failed setup */
            sl->r = cr;
            sl->r.lat_batch = sl->r.lat_page = NULL;
            if (cr.lat_batch)
                sl->lat_batch = *cr.lat_batch;
            if (cr.lat_page)
                sl->lat_page = *cr.lat_page;
            if (rc && !sl->r.err)
                sl->r.err = rc;
            sl->done = 1;
            _exit(rc ? 1 : 0);
        }
        pids[started] = pid;
    }
    if (started < n) {
        atomic_store(&ps->abort, 1);
        r->err = -EAGAIN;
        snprintf(r->errmsg, sizeof(r->errmsg), "fork: %s", strerror(errno));
    }
    for (unsigned left = started; left;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (unsigned i = 0; i < started; i++) {
            if (pids[i] != pid)
                continue;
            left--;
            if (!ps->slot[i].done) {
                /* Died before reporting (a signal): the others must not wait for it. */
                atomic_store(&ps->abort, 1);
                ps->slot[i].r.err = -EPROTO;
                snprintf(ps->slot[i].r.errmsg, sizeof(ps->slot[i].r.errmsg),
                         "writer process %s %d", WIFSIGNALED(st) ? "killed by signal" : "exit",
                         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            }
        }
    }
    struct hist *lb = r->lat_batch, *lp = r->lat_page;
    for (unsigned i = 0; i < started; i++) {
        merge_result(r, &ps->slot[i].r, i);
        if (lb)
            hist_merge(lb, &ps->slot[i].lat_batch);
        if (lp)
            hist_merge(lp, &ps->slot[i].lat_page);
    }
    r->lat_batch = lb;
    r->lat_page = lp;
    r->processes = n;
    /* A string literal of the same program: fork kept its address. */
    if (lp && lp->count && ps->slot[0].r.lat_page_source)
        r->lat_page_source = ps->slot[0].r.lat_page_source;
    free(pids);
    munmap(ps, len);
    wl_result_log2_quantiles(r);
    return r->err;
}

void
wl_result_log2_quantiles(struct wl_result *r)
{
    if (r->lat_page && r->lat_page->count)
        return;
    int top = -1;
    for (int i = 0; i < WL_LOG2_BUCKETS; i++)
        if (r->log2_lat[i])
            top = i;
    if (top < 0)
        return;
    r->lat_page_q[0] = log2hist_quantile(r->log2_lat, WL_LOG2_BUCKETS, 0.50);
    r->lat_page_q[1] = log2hist_quantile(r->log2_lat, WL_LOG2_BUCKETS, 0.99);
    r->lat_page_q[2] = log2hist_quantile(r->log2_lat, WL_LOG2_BUCKETS, 0.999);
    r->lat_page_q[3] = (double)(1ull << (top + 1)); /* upper edge of the top bucket */
    r->lat_page_source = "library-histogram";
}

int
wl_result_alloc(struct wl_result *r)
{
    memset(r, 0, sizeof(*r));
    r->lat_batch = calloc(1, sizeof(struct hist));
    r->lat_page = calloc(1, sizeof(struct hist));
    r->o_direct = -1;
    for (int i = 0; i < 4; i++)
        r->lat_page_q[i] = -1;
    for (int i = 0; i < 3; i++)
        r->lat_batch_q[i] = -1;
    r->lat_page_source = "none";
    r->processes = 1;
    return r->lat_batch && r->lat_page ? 0 : -ENOMEM;
}

void
wl_result_free(struct wl_result *r)
{
    free(r->lat_batch);
    free(r->lat_page);
    r->lat_batch = r->lat_page = NULL;
}

int
wl_run(const struct wl_config *c, const struct wl_ops *ops, struct wl_result *r,
       wl_pages_fn *on_pages, void *on_pages_arg)
{
    uint64_t npages = c->file_size / c->page_size;
    unsigned nproc = c->processes ? c->processes : 1;
    if (npages / c->threads / nproc < c->batch) {
        r->err = -EINVAL;
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "the file holds %llu pages, fewer than batch x threads x processes (%u x %u x "
                 "%u)",
                 (unsigned long long)npages, c->batch, c->threads, nproc);
        proc_start(c->proc_shared, &proc_arrived);
        return r->err;
    }
    struct wl_shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.c = c;
    sh.ops = ops;
    sh.on_pages = on_pages;
    sh.on_pages_arg = on_pages_arg;
    atomic_store(&sh.remaining, (int64_t)c->pages);
    pthread_mutex_init(&sh.lock, NULL);

    struct wl_thread *th = calloc(c->threads, sizeof(*th));
    if (!th)
        return r->err = -ENOMEM;
    int started = 0;
    for (unsigned i = 0; i < c->threads; i++) {
        th[i].sh = &sh;
        th[i].tid = i;
        th[i].lat_batch = calloc(1, sizeof(struct hist));
        th[i].lat_page = calloc(1, sizeof(struct hist));
        if (!th[i].lat_batch || !th[i].lat_page) {
            set_error(&sh, -ENOMEM, "setup");
            break;
        }
    }
    double u1, s1;
    uint64_t t1;
    pthread_cond_init(&sh.cond, NULL);
    sh.live = c->threads;
    /* Several processes: every one is set up (ctx open, recovery done) before any starts. */
    proc_start(c->proc_shared, &proc_arrived);
    if (!atomic_load(&sh.err)) {
        uint64_t start = now_ns();
        if (c->warmup_ns == 0) {
            atomic_store(&sh.flip_requested, 1);
            pthread_mutex_lock(&sh.lock);
            flip_locked(&sh); /* no thread runs yet: nothing in flight */
            pthread_mutex_unlock(&sh.lock);
        }
        for (unsigned i = 0; i < c->threads; i++) {
            if (pthread_create(&th[i].th, NULL, writer, &th[i]) != 0) {
                pthread_mutex_lock(&sh.lock);
                sh.live -= c->threads - i; /* never started: not waited for */
                pthread_mutex_unlock(&sh.lock);
                set_error(&sh, -EAGAIN, "pthread_create");
                break;
            }
            started++;
        }
        if (c->warmup_ns) {
            sleep_until(&sh, start + c->warmup_ns);
            atomic_store_explicit(&sh.flip_requested, 1, memory_order_release);
            pthread_mutex_lock(&sh.lock);
            while (!atomic_load(&sh.measuring) && !atomic_load(&sh.stop))
                pthread_cond_wait(&sh.cond, &sh.lock);
            pthread_mutex_unlock(&sh.lock);
        }
        if (!c->pages) {
            pthread_mutex_lock(&sh.lock);
            uint64_t t0 = sh.t0;
            pthread_mutex_unlock(&sh.lock);
            sleep_until(&sh, t0 + c->duration_ns);
            atomic_store(&sh.stop, 1);
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i].th, NULL);
    t1 = now_ns();
    cpu_seconds(&u1, &s1);
    int measured = atomic_load(&sh.measuring);
    if (ops->mark && measured)
        ops->mark(ops->arg, 1);

    r->elapsed_s = measured ? (double)(t1 - sh.t0) / 1e9 : 0;
    r->cpu_user_s = measured ? u1 - sh.u0 : 0;
    r->cpu_sys_s = measured ? s1 - sh.s0 : 0;
    for (unsigned i = 0; i < c->threads; i++) {
        r->pages += th[i].pages;
        r->batches += th[i].batches;
        r->syncs_issued += th[i].syncs;
        if (th[i].lat_batch && r->lat_batch)
            hist_merge(r->lat_batch, th[i].lat_batch);
        if (th[i].lat_page && r->lat_page)
            hist_merge(r->lat_page, th[i].lat_page);
        free(th[i].lat_batch);
        free(th[i].lat_page);
    }
    free(th);
    if (r->lat_page && r->lat_page->count)
        r->lat_page_source = ops->page_lat ? "measured" : "call";
    r->err = atomic_load(&sh.err);
    if (r->err)
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", sh.errmsg);
    pthread_cond_destroy(&sh.cond);
    pthread_mutex_destroy(&sh.lock);
    return r->err;
}

void
wl_figures_of(const struct wl_result *r, uint32_t page_size, struct wl_figures *f)
{
    memset(f, 0, sizeof(*f));
    double pages = (double)r->pages;
    double el = r->elapsed_s > 0 ? r->elapsed_s : NAN;
    f->pages_per_s = pages / el;
    f->mb_per_s = pages * page_size / el / 1e6;
    if (r->lat_page && r->lat_page->count) {
        f->lat_page_p50_us = (double)hist_quantile(r->lat_page, 0.50) / 1e3;
        f->lat_page_p99_us = (double)hist_quantile(r->lat_page, 0.99) / 1e3;
        f->lat_page_p999_us = (double)hist_quantile(r->lat_page, 0.999) / 1e3;
        f->lat_page_max_us = (double)r->lat_page->max / 1e3;
    } else {
        f->lat_page_p50_us = r->lat_page_q[0];
        f->lat_page_p99_us = r->lat_page_q[1];
        f->lat_page_p999_us = r->lat_page_q[2];
        f->lat_page_max_us = r->lat_page_q[3];
    }
    if (r->lat_batch && r->lat_batch->count) {
        f->lat_batch_p50_us = (double)hist_quantile(r->lat_batch, 0.50) / 1e3;
        f->lat_batch_p99_us = (double)hist_quantile(r->lat_batch, 0.99) / 1e3;
        f->lat_batch_p999_us = (double)hist_quantile(r->lat_batch, 0.999) / 1e3;
    } else {
        f->lat_batch_p50_us = r->lat_batch_q[0];
        f->lat_batch_p99_us = r->lat_batch_q[1];
        f->lat_batch_p999_us = r->lat_batch_q[2];
    }
    double pp = pages > 0 ? pages : NAN;
    f->data_bytes_per_page = (double)r->bytes_data / pp;
    f->dblwr_bytes_per_page = (double)r->bytes_doublewrite / pp;
    f->device_bytes_per_page = (double)(r->bytes_data + r->bytes_doublewrite) / pp;
    f->syncs_per_page = (double)r->dev_syncs / pp;
    f->cpu_us_per_page = (r->cpu_user_s + r->cpu_sys_s) * 1e6 / pp;
    f->group_commit_records =
        r->group_commits ? (double)r->group_records / (double)r->group_commits : NAN;
    f->forced_syncs = r->path_actual[0] && r->bytes_doublewrite ? (double)r->forced_syncs : NAN;
    f->attached = r->attached ? (double)r->attached : NAN;
    f->pages_staged = r->write_behind ? (double)r->pages_staged : NAN;
    f->staged_reads = r->write_behind ? (double)r->staged_reads : NAN;
    f->staged_now = r->write_behind ? (double)r->staged_now : NAN;
}
