/* SPDX-License-Identifier: MIT */
/*
 * test_multiproc.c -- one doublewrite store shared by several real processes of one engine
 * instance, on loop-mounted ext4 and XFS. Every process is a fork()ed child that opens its
 * own ctx with the same instance name; children report through a shared anonymous mapping
 * (never stdout) and never call Criterion: they _exit() with a code the parent checks.
 *
 *   writers_*          N writers in deferred mode on a tiny store, own and shared pages of a
 *                      few files, some SIGKILLed mid-write at seeded random moments: the
 *                      survivors finish (the dead ones' store space is reclaimed), then all
 *                      are killed and recovery leaves every page wholly one version ever
 *                      written, never older than what a returned sync (or write) covered.
 *                      The write_behind_* runs do the same with pages staged in shared memory
 *                      (a writer may die copying a page in, or leading a round): there a page
 *                      may be older than its last acknowledged write (the staged copy died
 *                      with the instance), never older than what a returned sync covered.
 *   rollback_*         a page written by A then by B is B's after a crash with both records
 *                      live and the page torn in place; the same run with copies ordered per
 *                      process instead of by the shared LSN must roll back (the check works).
 *   backpressure_*     a writer that never syncs keeps going on a tiny store (forced syncs);
 *                      another process's atomio_sync() releases its copies, and so does
 *                      another process's atomio_file_fence(), with no sync at all.
 *   instance_rules     another instance is refused with a reason, recovery is refused while
 *                      others are attached, stats.attached counts processes.
 *   concurrent_start   processes of one instance starting at the same instant all open; the
 *                      shared memory the killed instance left goes at the next one's last close.
 *   removed_shared_memory_refuses_the_next_attach
 *                      with the object removed under a running instance, the next attach is
 *                      refused with a reason, and the attached process carries on.
 *
 * Reproduce a writers run with ATOMIO_TEST_SEED=<seed printed on stderr>.
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "store/store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PS       8192u
#define SECT     512u
#define TINY     (256u << 10) /* doublewrite_store_bytes: about 30 one-page records */
#define NW       4            /* writer processes */
#define NFILES   3
#define NOWN     16    /* pages 0..15 of each file: page % NW is its only writer */
#define NPAGES   24    /* pages 16..23: shared, written by whoever holds the token */
#define MAXV     8192u /* versions per page the log can name */
#define ITERS    250   /* write calls per writer */
#define FILE_ID0 100u
#define CHILD_S  90 /* alarm() of every child: a hang kills it */

/* ---- the shared log -------------------------------------------------------------------------- */

struct pstate {
    _Atomic uint32_t attempted;      /* highest version whose write began */
    _Atomic uint32_t acked;          /* highest version whose write call returned 0 */
    _Atomic uint32_t synced;         /* highest version an atomio_sync() that returned 0 covered */
    _Atomic int32_t owner;           /* shared pages: the writer that may write it now (-1: none) */
    _Atomic uint8_t writer_of[MAXV]; /* writer + 1 of each version ever attempted */
};

struct wlog {
    _Atomic uint32_t opened, progress, done, in_write, alive;
    _Atomic int32_t err, err_line;
    _Atomic uint64_t forced_syncs, writes, syncs, staged;
};

struct mplog {
    struct pstate p[NFILES][NPAGES];
    struct wlog w[NW];
    /* scratch for the small cases */
    _Atomic int32_t res[16];
    _Atomic uint64_t val[16];
    char reason[16][256];
};

static struct mplog *
log_map(void)
{
    void *m =
        mmap(NULL, sizeof(struct mplog), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED, "mmap log: %s", strerror(errno));
    return m;
}

static void
amax(_Atomic uint32_t *a, uint32_t v)
{
    uint32_t cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* ---- page bytes: (file, page, version, writer) in every 512-byte sector ------------------- */

#define PMAGIC 0x50504d41u /* "AMPP" */

static uint32_t
mix(uint32_t a, uint32_t b)
{
    uint64_t x = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 29) ^ (uint32_t)x;
}

static void
make_page(uint8_t *p, uint32_t file, uint32_t page, uint32_t version, uint32_t writer)
{
    for (uint32_t s = 0; s < PS / SECT; s++) {
        uint32_t *w = (uint32_t *)(void *)(p + s * SECT);
        w[0] = PMAGIC;
        w[1] = file;
        w[2] = page;
        w[3] = version;
        w[4] = writer;
        w[5] = s;
        uint32_t h = mix(mix(file, page), mix(version, writer * 64 + s));
        for (uint32_t i = 6; i < SECT / 4; i++)
            w[i] = h = mix(h, i);
    }
}

/* decode_page() -- 0 and the version and writer when the page is wholly one (file, page, version,
 * writer), all-zero meaning version 0 (never written); -1 with why otherwise. */
static int
decode_page(const uint8_t *p, uint32_t file, uint32_t page, uint32_t *version, uint32_t *writer,
            char *why, size_t len)
{
    bool zero = true;
    for (uint32_t i = 0; i < PS && zero; i++)
        zero = p[i] == 0;
    if (zero) {
        *version = 0;
        *writer = 0;
        return 0;
    }
    const uint32_t *w0 = (const void *)p;
    uint32_t v = w0[3], wr = w0[4];
    uint8_t want[PS];
    make_page(want, file, page, v, wr);
    for (uint32_t s = 0; s < PS / SECT; s++) {
        if (memcmp(p + s * SECT, want + s * SECT, SECT) != 0) {
            const uint32_t *ws = (const void *)(p + s * SECT);
            snprintf(why, len,
                     "sector %u is (magic %08x file %u page %u version %u writer %u sector %u), "
                     "sector 0 (file %u page %u version %u writer %u)",
                     s, ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], w0[1], w0[2], v, wr);
            return -1;
        }
    }
    *version = v;
    *writer = wr;
    return 0;
}

/* ---- processes ------------------------------------------------------------------------------- */

/* In a child: record the first failure and leave. Never returns. */
#define CHILD_FAIL(L, wi, code)                                                                    \
    do {                                                                                           \
        int32_t z_ = 0;                                                                            \
        atomic_compare_exchange_strong(&(L)->w[wi].err, &z_, (int32_t)(code) ? (code) : -1);       \
        atomic_store(&(L)->w[wi].err_line, __LINE__);                                              \
        _exit(3);                                                                                  \
    } while (0)

typedef void (*child_fn)(int idx, void *arg);

static pid_t
spawn(child_fn fn, int idx, void *arg)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed or killed test takes its children */
        alarm(CHILD_S);
        fn(idx, arg);
        _exit(0);
    }
    return pid;
}

static void
kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

/* wait_for() -- poll until *a >= v, at most secs seconds. */
static bool
wait_for(_Atomic uint32_t *a, uint32_t v, int secs)
{
    for (long i = 0; i < secs * 1000L; i++) {
        if (atomic_load(a) >= v)
            return true;
        usleep(1000);
    }
    return atomic_load(a) >= v;
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t
test_seed(void)
{
    const char *e = getenv("ATOMIO_TEST_SEED");
    uint64_t seed;
    if (e && *e) {
        seed = strtoull(e, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
    }
    return seed ? seed : 1;
}

/* ---- ctx and files --------------------------------------------------------------------------- */

struct env {
    struct t_fs fs;
    char dw[PATH_MAX + 8];
    char files[NFILES][PATH_MAX + 32];
};

static void
env_setup(struct env *e, const char *kind)
{
    t_fs_mount(&e->fs, kind, strncmp(kind, "xfs", 3) == 0 ? 320 : 96);
    snprintf(e->dw, sizeof(e->dw), "%s/dw", e->fs.dir);
    cr_assert_eq(mkdir(e->dw, 0700), 0);
    for (int f = 0; f < NFILES; f++) {
        snprintf(e->files[f], sizeof(e->files[f]), "%s/data%d.db", e->fs.dir, f);
        int fd = open(e->files[f], O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)NPAGES * PS), 0);
        cr_assert_eq(fsync(fd), 0);
        close(fd);
    }
}

/* The doublewrite mode of every process of the current test. */
static uint32_t mp_mode = ATOMIO_DOUBLEWRITE_DEFERRED;

static atomio_ctx_opts
mp_opts(const struct env *e, const char *instance, uint64_t store_bytes)
{
    atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
    co.doublewrite_dir = e->dw;
    co.instance = instance;
    co.doublewrite_mode = mp_mode;
    if (mp_mode == ATOMIO_DOUBLEWRITE_WRITE_BEHIND)
        co.write_behind_bytes = 16 * PS; /* fills up: writers wait for rounds */
    co.doublewrite_store_bytes = store_bytes;
    co.doublewrite_max_page_size = PS;
    co.doublewrite_batch_pages = 8;
    co.submitter = ATOMIO_SUBMIT_SYNC;
    return co;
}

static int
mp_file(atomio_ctx *ctx, const struct env *e, int f, atomio_file **out)
{
    atomio_file_opts fo = ATOMIO_FILE_OPTS_INIT;
    fo.page_size = PS;
    fo.io_style = ATOMIO_IO_BUFFERED;
    fo.path = ATOMIO_PATH_DOUBLEWRITE;
    fo.file_id = FILE_ID0 + (uint64_t)f;
    *out = NULL;
    return atomio_file_open(ctx, e->files[f], &fo, out);
}

static void
read_page(const struct env *e, int f, uint32_t page, uint8_t *out)
{
    int fd = open(e->files[f], O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, out, PS, (off_t)page * PS), (ssize_t)PS);
    close(fd);
}

static void
tear_page(const struct env *e, int f, uint32_t page)
{
    uint8_t z[PS / 2];
    memset(z, 0xEE, sizeof(z));
    int fd = open(e->files[f], O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, z, sizeof(z), (off_t)page * PS + PS / 2), (ssize_t)sizeof(z));
    cr_assert_eq(fdatasync(fd), 0);
    close(fd);
}

/* ====== 1. writers ============================================================================ */

struct wargs {
    const struct env *e;
    struct mplog *L;
    uint64_t seed;
};

static void
writer_main(int w, void *arg)
{
    struct wargs *a = arg;
    struct mplog *L = a->L;
    atomio_ctx_opts co = mp_opts(a->e, "mp", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    if (r < 0)
        CHILD_FAIL(L, w, r);
    atomio_file *files[NFILES];
    for (int f = 0; f < NFILES; f++)
        if ((r = mp_file(ctx, a->e, f, &files[f])) < 0)
            CHILD_FAIL(L, w, r);
    atomic_store(&L->w[w].opened, 1);

    uint64_t s = a->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(w + 1));
    uint8_t *pages = aligned_alloc(4096, 4 * (size_t)PS);
    if (!pages)
        CHILD_FAIL(L, w, -ENOMEM);
    for (uint32_t it = 0; it < ITERS; it++) {
        /* 1..4 distinct pages this writer may write: its own, or shared ones it holds. */
        atomio_page_write pw[4];
        uint32_t pf[4], pp[4], pv[4];
        uint32_t n = 0, want = 1 + (uint32_t)(rnd(&s) % 4);
        for (uint32_t tries = 0; n < want && tries < 16; tries++) {
            uint32_t f = (uint32_t)(rnd(&s) % NFILES), page;
            if (rnd(&s) % 3 == 0) {
                page = NOWN + (uint32_t)(rnd(&s) % (NPAGES - NOWN));
                if (atomic_load(&L->p[f][page].owner) != w)
                    continue;
            } else {
                page = (uint32_t)w + NW * (uint32_t)(rnd(&s) % (NOWN / NW));
            }
            bool dup = false;
            for (uint32_t k = 0; k < n; k++)
                dup |= pf[k] == f && pp[k] == page;
            if (dup)
                continue;
            struct pstate *ps = &L->p[f][page];
            uint32_t v = atomic_load(&ps->attempted) + 1;
            if (v >= MAXV)
                continue;
            atomic_store(&ps->writer_of[v], (uint8_t)(w + 1));
            atomic_store(&ps->attempted, v);
            make_page(pages + (size_t)n * PS, f, page, v, (uint32_t)w);
            pw[n] = (atomio_page_write){
                .file = files[f], .page_no = page, .page = pages + (size_t)n * PS};
            pf[n] = f;
            pp[n] = page;
            pv[n] = v;
            n++;
        }
        if (n == 0)
            continue;
        atomic_store(&L->w[w].in_write, 1);
        if (n == 1) {
            pw[0].result = atomio_write(pw[0].file, pw[0].page_no, pw[0].page, 0);
        } else {
            r = atomio_write_batch(ctx, pw, n, 0);
            if (r < 0)
                CHILD_FAIL(L, w, r);
        }
        atomic_store(&L->w[w].in_write, 0);
        for (uint32_t k = 0; k < n; k++) {
            if (pw[k].result != 0)
                CHILD_FAIL(L, w, pw[k].result);
            amax(&L->p[pf[k]][pp[k]].acked, pv[k]);
        }
        atomic_fetch_add(&L->w[w].writes, n);

        if (rnd(&s) % 5 == 0) {
            /* Every write of the file acknowledged before the sync begins, by any process. */
            uint32_t f = (uint32_t)(rnd(&s) % NFILES);
            uint32_t snap[NPAGES];
            for (uint32_t p = 0; p < NPAGES; p++)
                snap[p] = atomic_load(&L->p[f][p].acked);
            if ((r = atomio_sync(files[f])) < 0)
                CHILD_FAIL(L, w, r);
            for (uint32_t p = 0; p < NPAGES; p++)
                amax(&L->p[f][p].synced, snap[p]);
            atomic_fetch_add(&L->w[w].syncs, 1);
        }
        /* Hand a shared page on (its next version is then the new holder's). */
        for (uint32_t f = 0; f < NFILES; f++)
            for (uint32_t p = NOWN; p < NPAGES; p++)
                if (atomic_load(&L->p[f][p].owner) == w && rnd(&s) % 4 == 0) {
                    int to = (w + 1 + (int)(rnd(&s) % (NW - 1))) % NW;
                    if (atomic_load(&L->w[to].alive))
                        atomic_store(&L->p[f][p].owner, to);
                }
        atomic_store(&L->w[w].progress, it + 1);
    }
    atomio_stats st = ATOMIO_STATS_INIT;
    if (atomio_ctx_get_stats(ctx, &st) == 0) {
        atomic_store(&L->w[w].forced_syncs, st.forced_syncs);
        atomic_store(&L->w[w].staged, st.pages_staged);
    }
    atomic_store(&L->w[w].done, 1);
    for (;;)
        pause(); /* killed with its records still live */
}

static void
writers(const char *kind)
{
    struct env e;
    env_setup(&e, kind);
    struct mplog *L = log_map();
    uint64_t seed = test_seed();
    fprintf(stderr, "test_multiproc writers on %s: seed %" PRIu64 " (ATOMIO_TEST_SEED)\n", kind,
            seed);
    uint64_t s = seed;
    for (int f = 0; f < NFILES; f++)
        for (int p = 0; p < NPAGES; p++)
            atomic_store(&L->p[f][p].owner, p >= (int)NOWN ? p % NW : -1);
    alarm(150); /* survivors blocked on a dead writer's records: fail, not hang */

    struct wargs a = {.e = &e, .L = L, .seed = seed};
    pid_t pids[NW];
    for (int w = 0; w < NW; w++)
        atomic_store(&L->w[w].alive, 1);
    /* The first process sets the instance up (and recovers); the others join once it has. */
    pids[0] = spawn(writer_main, 0, &a);
    cr_assert(wait_for(&L->w[0].opened, 1, 30), "writer 0 never opened its ctx (err %s line %d)",
              atomio_err_name(atomic_load(&L->w[0].err)), atomic_load(&L->w[0].err_line));
    for (int w = 1; w < NW; w++)
        pids[w] = spawn(writer_main, w, &a);

    /* Kill one or two writers, each while it is inside a write call past a random point. */
    int nkill = 1 + (int)(rnd(&s) % 2), killed_in_write = 0;
    bool dead[NW] = {false};
    for (int k = 0; k < nkill; k++) {
        int v;
        do
            v = (int)(rnd(&s) % NW);
        while (dead[v]);
        uint32_t at = 10 + (uint32_t)(rnd(&s) % (ITERS / 2));
        cr_assert(wait_for(&L->w[v].progress, at, 60), "writer %d stalled at %u (err %s line %d)",
                  v, atomic_load(&L->w[v].progress), atomio_err_name(atomic_load(&L->w[v].err)),
                  atomic_load(&L->w[v].err_line));
        /* Catch it inside a write call: stop it, and let it run on until a stop finds it in
         * one (a write-behind call lasts a microsecond or two, less than a kill takes). */
        for (int tries = 0; tries < 10000; tries++) {
            for (long spin = 0; !atomic_load(&L->w[v].in_write) && spin < 100000000L; spin++)
                ;
            kill(pids[v], SIGSTOP);
            int wst;
            while (waitpid(pids[v], &wst, WUNTRACED) < 0 && errno == EINTR)
                ;
            if (atomic_load(&L->w[v].in_write) || atomic_load(&L->w[v].done))
                break;
            kill(pids[v], SIGCONT);
        }
        atomic_store(&L->w[v].alive, 0);
        kill_wait(pids[v]);
        dead[v] = true;
        killed_in_write += atomic_load(&L->w[v].in_write) != 0;
        fprintf(stderr, "  killed writer %d at iteration %u%s\n", v, atomic_load(&L->w[v].progress),
                atomic_load(&L->w[v].in_write) ? " inside a write call" : "");
        /* Its shared pages go to a survivor: the dead cannot write any more. */
        int heir;
        do
            heir = (int)(rnd(&s) % NW);
        while (dead[heir]);
        for (int f = 0; f < NFILES; f++)
            for (int p = NOWN; p < NPAGES; p++)
                if (atomic_load(&L->p[f][p].owner) == v)
                    atomic_store(&L->p[f][p].owner, heir);
    }
    cr_assert_geq(killed_in_write, 1, "no writer was killed inside a write call");

    /* The survivors finish: the store space the dead held came back. */
    uint64_t forced = 0, writes = 0, syncs = 0;
    for (int w = 0; w < NW; w++) {
        if (dead[w])
            continue;
        cr_assert(wait_for(&L->w[w].done, 1, 90),
                  "survivor %d stuck at iteration %u of %u (err %s line %d)", w,
                  atomic_load(&L->w[w].progress), ITERS, atomio_err_name(atomic_load(&L->w[w].err)),
                  atomic_load(&L->w[w].err_line));
        forced += atomic_load(&L->w[w].forced_syncs);
        /* Every page of a write-behind writer was staged; none of a deferred one. */
        uint64_t staged = atomic_load(&L->w[w].staged);
        if (mp_mode == ATOMIO_DOUBLEWRITE_WRITE_BEHIND)
            cr_assert_gt(staged, 0, "writer %d staged no page", w);
        else
            cr_assert_eq(staged, 0, "writer %d staged %" PRIu64 " pages", w, staged);
    }
    for (int w = 0; w < NW; w++) {
        cr_assert_eq(atomic_load(&L->w[w].err), 0, "writer %d failed: %s at line %d", w,
                     atomio_err_name(atomic_load(&L->w[w].err)), atomic_load(&L->w[w].err_line));
        writes += atomic_load(&L->w[w].writes);
        syncs += atomic_load(&L->w[w].syncs);
    }
    for (int w = 0; w < NW; w++)
        if (!dead[w])
            kill_wait(pids[w]);
    alarm(0);

    /* Recovery, in the first process to open the instance again. */
    atomio_ctx_opts co = mp_opts(&e, "mp", TINY);
    co.flags = ATOMIO_CTX_NO_RECOVER;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "open after the crash: %s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, 0, "recovery: %s (%s)", atomio_err_name(r), atomio_last_reason());
    fprintf(stderr,
            "  %" PRIu64 " pages written, %" PRIu64 " syncs, %" PRIu64 " forced syncs by "
            "survivors; recovery: %" PRIu64 " valid records, %" PRIu64 " torn, %" PRIu64
            " pages checked, %" PRIu64 " restored\n",
            writes, syncs, forced, rep.batches_valid, rep.batches_torn, rep.pages_checked,
            rep.pages_restored);
    atomio_ctx_close(ctx);

    uint8_t page[PS];
    char why[256];
    for (int f = 0; f < NFILES; f++)
        for (uint32_t p = 0; p < NPAGES; p++) {
            struct pstate *ps = &L->p[f][p];
            read_page(&e, f, p, page);
            uint32_t v, wr;
            cr_assert_eq(decode_page(page, (uint32_t)f, p, &v, &wr, why, sizeof(why)), 0,
                         "file %d page %u is not one whole version: %s (seed %" PRIu64 ")", f, p,
                         why, seed);
            uint32_t att = atomic_load(&ps->attempted), ack = atomic_load(&ps->acked),
                     syn = atomic_load(&ps->synced);
            cr_assert_leq(v, att, "file %d page %u: version %u never written (newest %u)", f, p, v,
                          att);
            if (v > 0)
                cr_assert_eq(atomic_load(&ps->writer_of[v]), wr + 1,
                             "file %d page %u version %u: writer %u, but writer %d wrote it", f, p,
                             v, wr, (int)atomic_load(&ps->writer_of[v]) - 1);
            cr_assert_geq(v, syn,
                          "file %d page %u rolled back to version %u below the synced %u "
                          "(seed %" PRIu64 ")",
                          f, p, v, syn, seed);
            /* No power was lost: what the kernel acknowledged stays; recovery must not
             * write an older copy over it either. A staged page dies with the instance. */
            if (mp_mode != ATOMIO_DOUBLEWRITE_WRITE_BEHIND)
                cr_assert_geq(v, ack,
                              "file %d page %u rolled back to version %u below the acknowledged "
                              "%u (seed %" PRIu64 ")",
                              f, p, v, ack, seed);
        }
    munmap(L, sizeof(*L));
}

Test(multiproc, writers_ext4, .timeout = 240)
{
    writers("ext4");
}

Test(multiproc, writers_xfs, .timeout = 240)
{
    writers("xfs");
}

Test(multiproc, writers_write_behind_ext4, .timeout = 240)
{
    mp_mode = ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
    writers("ext4");
}

Test(multiproc, writers_write_behind_xfs, .timeout = 240)
{
    mp_mode = ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
    writers("xfs");
}

/* ====== 2. no rollback across processes ======================================================= */

#define RB_PAGE 5u

struct rbargs {
    const struct env *e;
    struct mplog *L;
    int local_order; /* the sabotage: copies ordered per process */
    int fillers;     /* records written before the page */
    uint32_t version;
    int sync;
};

static void
rb_child(int idx, void *arg)
{
    struct rbargs *a = arg;
    struct mplog *L = a->L;
    atomic_store(&atomio__test_dw_keep_batches, 1); /* every copy stays live */
    atomic_store(&atomio__test_dw_local_order, a->local_order);
    atomio_ctx_opts co = mp_opts(a->e, "rb", 1u << 20);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    if (r < 0)
        CHILD_FAIL(L, idx, r);
    atomio_file *f;
    if ((r = mp_file(ctx, a->e, 0, &f)) < 0)
        CHILD_FAIL(L, idx, r);
    static uint8_t page[PS] __attribute__((aligned(4096)));
    for (int k = 0; k < a->fillers; k++) {
        make_page(page, 0, 10u + (uint32_t)k, 1, (uint32_t)idx);
        if ((r = atomio_write(f, 10u + (uint32_t)k, page, 0)) < 0)
            CHILD_FAIL(L, idx, r);
    }
    make_page(page, 0, RB_PAGE, a->version, (uint32_t)idx);
    if ((r = atomio_write(f, RB_PAGE, page, 0)) < 0)
        CHILD_FAIL(L, idx, r);
    if (a->sync && (r = atomio_sync(f)) < 0)
        CHILD_FAIL(L, idx, r);
    atomic_store(&L->w[idx].done, 1);
    for (;;)
        pause();
}

/* rollback_run() -- A writes v1 (after some other records), B then writes v2 and syncs; both
 * are killed with every record live; the page is torn in place; recovery. Returns the
 * version the page holds afterwards. */
static uint32_t
rollback_run(const char *kind, int local_order)
{
    struct env e;
    env_setup(&e, kind);
    struct mplog *L = log_map();
    struct rbargs a = {.e = &e, .L = L, .local_order = local_order, .fillers = 3, .version = 1};
    struct rbargs b = {
        .e = &e, .L = L, .local_order = local_order, .fillers = 0, .version = 2, .sync = 1};
    pid_t pa = spawn(rb_child, 0, &a);
    cr_assert(wait_for(&L->w[0].done, 1, 30), "A: %s at line %d",
              atomio_err_name(atomic_load(&L->w[0].err)), atomic_load(&L->w[0].err_line));
    pid_t pb = spawn(rb_child, 1, &b);
    cr_assert(wait_for(&L->w[1].done, 1, 30), "B: %s at line %d",
              atomio_err_name(atomic_load(&L->w[1].err)), atomic_load(&L->w[1].err_line));
    kill_wait(pa);
    kill_wait(pb);

    uint8_t page[PS];
    uint32_t v, wr;
    char why[256];
    read_page(&e, 0, RB_PAGE, page);
    cr_assert_eq(decode_page(page, 0, RB_PAGE, &v, &wr, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(v, 2, "before the crash the page is B's");
    tear_page(&e, 0, RB_PAGE);

    atomio_ctx_opts co = mp_opts(&e, "rb", 1u << 20);
    co.flags = ATOMIO_CTX_NO_RECOVER;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "open: %s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, 0, "recovery: %s (%s)", atomio_err_name(r), atomio_last_reason());
    cr_assert_geq(rep.batches_valid, 5, "every record of A and B was live (%" PRIu64 ")",
                  rep.batches_valid);
    cr_assert_geq(rep.pages_restored, 1);
    atomio_ctx_close(ctx);

    read_page(&e, 0, RB_PAGE, page);
    cr_assert_eq(decode_page(page, 0, RB_PAGE, &v, &wr, why, sizeof(why)), 0,
                 "recovery left the page torn: %s", why);
    munmap(L, sizeof(*L));
    return v;
}

Test(multiproc, rollback_ext4, .timeout = 120)
{
    cr_assert_eq(rollback_run("ext4", 0), 2, "rolled back to A's copy");
}

Test(multiproc, rollback_xfs, .timeout = 120)
{
    cr_assert_eq(rollback_run("xfs", 0), 2, "rolled back to A's copy");
}

/* The check above can fail: with copies ordered per process, A's older copy outranks B's. */
Test(multiproc, rollback_detected_when_ordering_is_broken, .timeout = 120)
{
    cr_assert_eq(rollback_run("ext4", 1), 1,
                 "per-process ordering must roll the page back to A's copy");
}

/* ====== 3. backpressure =========================================================================
 */

struct bpargs {
    const struct env *e;
    struct mplog *L;
};

#define BP_WRITES 120 /* about four times what the tiny store holds */

static void
bp_writer(int idx, void *arg)
{
    struct bpargs *a = arg;
    struct mplog *L = a->L;
    atomio_ctx_opts co = mp_opts(a->e, "bp", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    if (r < 0)
        CHILD_FAIL(L, idx, r);
    atomio_file *f;
    if ((r = mp_file(ctx, a->e, 0, &f)) < 0)
        CHILD_FAIL(L, idx, r);
    static uint8_t page[PS] __attribute__((aligned(4096)));
    for (uint32_t i = 0; i < BP_WRITES; i++) {
        make_page(page, 0, i % NPAGES, i + 1, 0);
        if ((r = atomio_write(f, i % NPAGES, page, 0)) < 0)
            CHILD_FAIL(L, idx, r); /* never synced by us: the library must make room */
    }
    atomio_stats st = ATOMIO_STATS_INIT;
    if ((r = atomio_ctx_get_stats(ctx, &st)) < 0)
        CHILD_FAIL(L, idx, r);
    atomic_store(&L->val[0], st.forced_syncs);
    atomic_store(&L->val[1], st.store_bytes_used);
    atomic_store(&L->val[2], st.store_bytes);
    atomic_store(&L->w[idx].done, 1);
    for (;;)
        pause();
}

/* backpressure() -- then another process releases the writer's copies: by syncing the file,
 * or (by_fence) by fencing it, which makes them dead and so needs no sync. */
static void
backpressure(const char *kind, bool by_fence)
{
    struct env e;
    env_setup(&e, kind);
    struct mplog *L = log_map();
    struct bpargs a = {.e = &e, .L = L};
    pid_t pw = spawn(bp_writer, 0, &a);
    cr_assert(wait_for(&L->w[0].done, 1, 60),
              "writer: %s at line %d (a full store must not "
              "block a writer that never syncs)",
              atomio_err_name(atomic_load(&L->w[0].err)), atomic_load(&L->w[0].err_line));
    cr_assert_eq(atomic_load(&L->val[2]), TINY);
    cr_assert_gt(atomic_load(&L->val[0]), 0, "forced_syncs");
    cr_assert_gt(atomic_load(&L->val[1]), 0, "the last copies still wait for a sync");

    /* Another process syncs (or fences) the file: the writer's copies are released. */
    atomio_ctx_opts co = mp_opts(&e, "bp", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "join: %s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_file *f;
    cr_assert_eq(mp_file(ctx, &e, 0, &f), 0);
    atomio_stats before = ATOMIO_STATS_INIT, after = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &before), 0);
    cr_assert_eq(before.attached, 2);
    cr_assert_gt(before.store_bytes_used, 0);
    cr_assert_eq(by_fence ? atomio_file_fence(f) : atomio_sync(f), 0);
    cr_assert_eq(atomio_ctx_get_stats(ctx, &after), 0);
    fprintf(stderr,
            "backpressure on %s: %" PRIu64 " forced syncs; store bytes used %" PRIu64 " -> %" PRIu64
            " after another process's %s\n",
            kind, (uint64_t)atomic_load(&L->val[0]), before.store_bytes_used,
            after.store_bytes_used, by_fence ? "fence" : "sync");
    cr_assert_lt(after.store_bytes_used, before.store_bytes_used);
    cr_assert_eq(after.store_bytes_used, 0, "every copy was of that file");
    cr_assert_eq(after.forced_syncs, 0, "no sync by the library");
    cr_assert_eq(after.syncs, by_fence ? 0 : 1, "data-file syncs: one, or none for a fence");
    kill_wait(pw);
    atomio_ctx_close(ctx);
    munmap(L, sizeof(*L));
}

Test(multiproc, backpressure_ext4, .timeout = 120)
{
    backpressure("ext4", false);
}

Test(multiproc, backpressure_xfs, .timeout = 120)
{
    backpressure("xfs", false);
}

Test(multiproc, backpressure_another_process_fence_releases_the_copies, .timeout = 120)
{
    backpressure("ext4", true);
}

/* ====== 4. instance rules ======================================================================
 */

struct irargs {
    const struct env *e;
    struct mplog *L;
    const char *instance;
};

/* Opens with its instance; res[idx] = open result, val[idx] = attached, reason kept; with
 * the same instance also tries recovery (res[8 + idx]); then waits to be killed. */
static void
ir_child(int idx, void *arg)
{
    struct irargs *a = arg;
    struct mplog *L = a->L;
    atomio_ctx_opts co = mp_opts(a->e, a->instance, TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    atomic_store(&L->res[idx], r);
    snprintf(L->reason[idx], sizeof(L->reason[idx]), "%s", atomio_last_reason());
    if (r == 0) {
        atomio_stats st = ATOMIO_STATS_INIT;
        if (atomio_ctx_get_stats(ctx, &st) == 0)
            atomic_store(&L->val[idx], st.attached);
        atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
        atomic_store(&L->res[8 + idx], atomio_ctx_recover(ctx, &rep));
    }
    atomic_store(&L->w[idx].done, 1);
    for (;;)
        pause();
}

Test(multiproc, instance_rules, .timeout = 120)
{
    struct env e;
    env_setup(&e, "ext4");
    struct mplog *L = log_map();
    atomio_ctx_opts co = mp_opts(&e, "eng", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "%s (%s)", atomio_err_name(r), atomio_last_reason());
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.attached, 1);

    struct irargs other = {.e = &e, .L = L, .instance = "other"};
    pid_t p0 = spawn(ir_child, 0, &other);
    cr_assert(wait_for(&L->w[0].done, 1, 30));
    cr_assert_eq(atomic_load(&L->res[0]), ATOMIO_E_STORE_LOCKED, "another instance: %s",
                 atomio_err_name(atomic_load(&L->res[0])));
    cr_assert(L->reason[0][0] != '\0', "the refusal says why");
    cr_assert(strstr(L->reason[0], "eng") != NULL, "it names the instance: %s", L->reason[0]);
    kill_wait(p0);

    struct irargs same = {.e = &e, .L = L, .instance = "eng"};
    pid_t p1 = spawn(ir_child, 1, &same);
    cr_assert(wait_for(&L->w[1].done, 1, 30));
    cr_assert_eq(atomic_load(&L->res[1]), 0, "same instance joins: %s (%s)",
                 atomio_err_name(atomic_load(&L->res[1])), L->reason[1]);
    cr_assert_eq(atomic_load(&L->val[1]), 2, "attached seen by the joiner");
    cr_assert_eq(atomic_load(&L->res[9]), ATOMIO_E_BUSY, "recovery by a joiner: %s",
                 atomio_err_name(atomic_load(&L->res[9])));
    pid_t p2 = spawn(ir_child, 2, &same);
    cr_assert(wait_for(&L->w[2].done, 1, 30));
    cr_assert_eq(atomic_load(&L->res[2]), 0);
    cr_assert_eq(atomic_load(&L->val[2]), 3);
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.attached, 3, "three processes");
    /* The first process may not recover while others are attached either. */
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, ATOMIO_E_BUSY, "recovery with others attached: %s", atomio_err_name(r));

    kill_wait(p1);
    kill_wait(p2);
    atomio_ctx_close(ctx);
    /* With everyone gone the store can be opened by another instance. */
    co = mp_opts(&e, "other", TINY);
    r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "after the instance ended: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    atomio_ctx_close(ctx);
    munmap(L, sizeof(*L));
}

/* ====== 5. processes starting together =========================================================
 */

struct csargs {
    const struct env *e;
    struct mplog *L;
    int gate[2]; /* EOF on gate[0] releases everyone at once */
};

static void
cs_child(int idx, void *arg)
{
    struct csargs *a = arg;
    struct mplog *L = a->L;
    char c;
    close(a->gate[1]);
    while (read(a->gate[0], &c, 1) < 0 && errno == EINTR)
        ;
    atomio_ctx_opts co = mp_opts(a->e, "start", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    atomic_store(&L->res[idx], r);
    snprintf(L->reason[idx], sizeof(L->reason[idx]), "%s", atomio_last_reason());
    if (r == 0) {
        atomio_file *f;
        static uint8_t page[PS] __attribute__((aligned(4096)));
        make_page(page, 0, (uint32_t)idx, 1, (uint32_t)idx);
        r = mp_file(ctx, a->e, 0, &f);
        if (r == 0)
            r = atomio_write(f, (uint32_t)idx, page, 0);
        atomic_store(&L->res[8 + idx], r);
    }
    atomic_store(&L->w[idx].done, 1);
    for (;;)
        pause();
}

static int
uuid_cb(void *arg, const atomio_inspect_record *r)
{
    if (r->kind != ATOMIO_INSPECT_STORE)
        return 0;
    memcpy(arg, r->uuid, 16);
    return 1;
}

/* The name the library gives the instance's shared-memory object. */
static void
shm_name_of(const struct env *e, char name[96])
{
    uint8_t uuid[16];
    cr_assert_eq(atomio_store_inspect(e->dw, uuid_cb, uuid), 0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", e->dw, ATOMIO_DW_STORE_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    atomio__shm_name(name, uuid, fd);
    close(fd);
}

/* Whether the instance's shared-memory object exists. */
static bool
shm_exists(const struct env *e)
{
    char name[96];
    shm_name_of(e, name);
    int sfd = shm_open(name, O_RDONLY, 0);
    if (sfd >= 0)
        close(sfd);
    else
        cr_assert_eq(errno, ENOENT, "shm_open %s: %s", name, strerror(errno));
    return sfd >= 0;
}

/*
 * An engine's processes may start together (a supervisor launching them): each opens the
 * instance, one of them first. None may fail because another attached while the first was
 * still setting up, and all must be able to write afterwards. Killed all together at the end,
 * they leave their shared memory behind until the store is opened again; the last close of
 * the next instance removes it.
 */
Test(multiproc, concurrent_start, .timeout = 120)
{
    struct env e;
    env_setup(&e, "ext4");
    for (int round = 0; round < 10; round++) {
        struct mplog *L = log_map();
        int gate[2];
        cr_assert_eq(pipe(gate), 0);
        struct csargs a = {.e = &e, .L = L, .gate = {gate[0], gate[1]}};
        pid_t pids[NW];
        for (int w = 0; w < NW; w++)
            pids[w] = spawn(cs_child, w, &a);
        close(gate[0]);
        usleep(20000);
        close(gate[1]);
        for (int w = 0; w < NW; w++)
            cr_assert(wait_for(&L->w[w].done, 1, 30), "round %d: process %d hangs", round, w);
        char sum[1024];
        size_t at = 0;
        bool ok = true;
        for (int w = 0; w < NW; w++) {
            int32_t o = atomic_load(&L->res[w]), wr = atomic_load(&L->res[8 + w]);
            ok &= o == 0 && wr == 0;
            at += (size_t)snprintf(sum + at, sizeof(sum) - at,
                                   " [process %d: open %s%s%s%s, "
                                   "write %s]",
                                   w, atomio_err_name(o), L->reason[w][0] ? " (" : "", L->reason[w],
                                   L->reason[w][0] ? ")" : "", o == 0 ? atomio_err_name(wr) : "-");
        }
        cr_assert(ok, "round %d, %d processes opening together:%s", round, NW, sum);
        for (int w = 0; w < NW; w++)
            kill_wait(pids[w]);
        munmap(L, sizeof(*L));
    }
    cr_assert(shm_exists(&e), "the killed instance's shared memory stays until the next open");
    atomio_ctx_opts co = mp_opts(&e, "start", TINY);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&co, &ctx);
    cr_assert_eq(r, 0, "after the instance was killed: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.attached, 1, "the killed processes are not counted: %" PRIu64, st.attached);
    atomio_ctx_close(ctx);
    cr_assert(!shm_exists(&e), "the last close removes the instance's shared memory");
}

/*
 * An operator who removes a running instance's shared-memory object does not disturb the
 * processes attached, but a process that attaches next is refused with a reason, not left
 * spinning or handed a bare EAGAIN.
 */
Test(multiproc, removed_shared_memory_refuses_the_next_attach, .timeout = 120)
{
    struct env e;
    env_setup(&e, "ext4");
    atomio_ctx_opts co = mp_opts(&e, "gone", TINY);
    atomio_ctx *a = NULL, *b = NULL;
    int r = atomio_ctx_open(&co, &a);
    cr_assert_eq(r, 0, "%s (%s)", atomio_err_name(r), atomio_last_reason());
    char name[96];
    shm_name_of(&e, name);
    cr_assert_eq(shm_unlink(name), 0, "shm_unlink %s: %s", name, strerror(errno));
    r = atomio_ctx_open(&co, &b);
    cr_assert_eq(r, ATOMIO_E_STORE_LOCKED, "attach without the shared memory: %s",
                 atomio_err_name(r));
    cr_assert(strstr(atomio_last_reason(), "restart the instance"), "reason: %s",
              atomio_last_reason());
    /* The attached context goes on. */
    atomio_file *f;
    cr_assert_eq(mp_file(a, &e, 0, &f), 0);
    static uint8_t page[PS] __attribute__((aligned(4096)));
    make_page(page, 0, 1, 1, 1);
    cr_assert_eq(atomio_write(f, 1, page, 0), 0);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(atomio_ctx_close(a), 0);
    /* Once it is gone, the instance starts over. */
    r = atomio_ctx_open(&co, &b);
    cr_assert_eq(r, 0, "after the instance ended: %s (%s)", atomio_err_name(r),
                 atomio_last_reason());
    atomio_ctx_close(b);
}
