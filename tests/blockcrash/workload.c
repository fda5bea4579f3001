/* SPDX-License-Identifier: MIT */
/*
 * workload.c -- what the block-level crash harness records: pages of several files and page
 * sizes written through libatomio (bc_lib.c) by several threads, or by several processes that
 * share one doublewrite store as one engine instance, with syncs, batches and a close and
 * reopen, each step announced by a marker written to the recorder's control file so that the
 * checker knows, at every point of the log, which version of each page was started,
 * acknowledged and made durable. Markers of all threads and processes go through the one
 * control file: the recorder logs them in one order, each before or after the call it frames.
 *
 * Markers (one write() each, text):
 *   R dir                          data files are recorded in the store relative to dir
 *   M deferred                     the store is in ATOMIO_DOUBLEWRITE_DEFERRED (or WRITE_BEHIND) mode: an
 *                                  acknowledgement is not durable, only a returned sync is
 *   L file page_size npages path   layout              I file text   what the library chose
 *   G                              setup durable: crash states start here
 *   B file page ver                write started       A file page ver durable   acknowledged
 *                                  (durable: 1 when the write is durable on return)
 *   E file page ver err            write failed
 *   SB file id / SA file id err    sync started / returned
 *   C / O                          everything closed / reopened (recovery ran at open)
 *   RB / RE err restored           recovery started / returned (--mode recover)
 *   V file page ver                version read after recovery returned (--mode recover)
 *   Z                              workload done
 *
 * --mode recover runs only recovery over an existing store (a crash state with live batches)
 * and reads back what it left; the checker then crashes that run.
 */
#include "bc_lib.h"
#include "bc_page.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BATCH 8

static struct {
    const char *ctl, *data, *store, *data_root;
    enum bc_path path;
    uint32_t page_size[BC_LIB_MAX_FILES];
    unsigned nfiles;
    unsigned npages;
    unsigned rounds;
    unsigned threads;
    unsigned procs;      /* > 0: that many processes, one writer each, instead of threads */
    unsigned sync_every; /* a sync after one write call in this many, on average */
    bool reopen, sabotage, fill, recover_mode, fake_sync, deferred, write_behind;
    uint64_t seed;
} opt = {.npages = 24, .rounds = 6, .threads = 2, .seed = 1, .sync_every = 3};

/* Every process of the workload opens the store as this one engine instance. */
#define INSTANCE "blockcrash"

static int ctl_fd = -1;
static bc_lib *lib;
static char fpath[BC_LIB_MAX_FILES][4096];
static pthread_barrier_t *barrier; /* process-shared in --procs runs */

__attribute__((format(printf, 1, 2))) static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "blockcrash-workload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

__attribute__((format(printf, 1, 2))) static void
mark(const char *fmt, ...)
{
    char buf[4200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof(buf) - 1)
        die("marker too long");
    buf[n++] = '\n';
    if (write(ctl_fd, buf, (size_t)n) != n)
        die("marker write: %s", strerror(errno));
}

static void
sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) < 0)
        die("fsync %s: %s", path, strerror(errno));
    close(fd);
}

static void
open_files(void)
{
    for (unsigned i = 0; i < opt.nfiles; i++) {
        int r = bc_lib_file_open(lib, i, fpath[i], opt.page_size[i], opt.path);
        if (r < 0)
            die("open %s (page size %u): %s", fpath[i], opt.page_size[i], bc_lib_strerror(r));
        char d[512];
        bc_lib_file_describe(lib, i, d, sizeof(d));
        mark("I %u %s", i, d);
        printf("file %u (%u B pages): %s\n", i, opt.page_size[i], d);
    }
}

/* write_pages() -- one write call over n pages, with its markers. */
static void
write_pages(size_t n, const unsigned *f, const uint64_t *p, uint64_t ver, void *const *buf)
{
    int res[MAX_BATCH];
    for (size_t i = 0; i < n; i++) {
        bc_page_fill(buf[i], opt.page_size[f[i]], f[i], p[i], ver);
        mark("B %u %" PRIu64 " %" PRIu64, f[i], p[i], ver);
    }
    bc_lib_write(lib, n, f, p, buf, res);
    for (size_t i = 0; i < n; i++) {
        if (res[i] == 0)
            mark("A %u %" PRIu64 " %" PRIu64 " %d", f[i], p[i], ver,
                 !opt.deferred && bc_lib_file_is_doublewrite(lib, f[i]));
        else
            mark("E %u %" PRIu64 " %" PRIu64 " %d", f[i], p[i], ver, res[i]);
    }
}

static void
sync_file(unsigned f, uint64_t id)
{
    mark("SB %u %" PRIu64, f, id);
    /* --fake-sync: claim the sync returned without making it (a control for the checker's
     * durability rule) */
    int r = opt.fake_sync && id > opt.nfiles ? 0 : bc_lib_sync(lib, f);
    mark("SA %u %" PRIu64 " %d", f, id, r);
}

static void
open_lib(const char *what)
{
    struct bc_lib_conf c = {.store_dir = opt.store,
                            .data_root = opt.data_root,
                            .instance = INSTANCE,
                            .deferred = opt.deferred,
                            .write_behind = opt.write_behind,
                            .sabotage = opt.sabotage};
    int r = bc_lib_open(&lib, &c);
    if (r < 0)
        die("%s: %s", what, bc_lib_strerror(r));
}

static void
reopen_all(void)
{
    mark("C");
    int r = bc_lib_close(lib);
    if (r < 0)
        die("close: %s", bc_lib_strerror(r));
    lib = NULL;
    open_lib("reopen");
    open_files();
    mark("O");
}

struct thread_arg {
    unsigned t;
    void *buf[MAX_BATCH];
};

/* owner() -- the writer (thread or process) of global page g in round r: g modulo the
 * writers. With --procs, in every third run of that many consecutive pages, each page moves to
 * the next process each round: its newer versions are written by another process than the
 * older ones, one round (and one barrier) later, so the newest version of a page is always
 * well defined. */
static unsigned
owner(unsigned g, unsigned r)
{
    unsigned nw = opt.procs ? opt.procs : opt.threads;
    return (g + (opt.procs && (g / nw) % 3 == 0 ? r : 0)) % nw;
}

static void *
thread_main(void *argp)
{
    struct thread_arg *a = argp;
    uint64_t rng = bc_mix64(opt.seed * 977 + a->t);
    unsigned total = opt.nfiles * opt.npages;
    unsigned *mine = calloc(total, sizeof(*mine)), nmine = 0;
    uint64_t sync_id = (uint64_t)(a->t + 1) * 1000000;
    unsigned writes = 0, taken = 0, syncs = 0;
    for (unsigned r = 0; r < opt.rounds; r++) {
        uint64_t ver = 2 + r;
        if (opt.procs) /* every write of the last round has returned in every process */
            pthread_barrier_wait(barrier);
        if (opt.reopen && r == opt.rounds / 2) {
            pthread_barrier_wait(barrier);
            if (a->t == 0)
                reopen_all();
            pthread_barrier_wait(barrier);
        }
        if (r == 0 || opt.procs) { /* threads keep their pages (and last round's order) */
            nmine = 0;
            for (unsigned g = 0; g < total; g++)
                if (owner(g, r) == a->t)
                    mine[nmine++] = g;
        }
        for (unsigned i = nmine; i > 1; i--) { /* shuffle */
            rng = bc_mix64(rng);
            unsigned j = (unsigned)(rng % i), tmp = mine[i - 1];
            mine[i - 1] = mine[j];
            mine[j] = tmp;
        }
        unsigned todo = nmine * 2 / 3;
        for (unsigned i = 0; i < todo;) {
            rng = bc_mix64(rng);
            size_t n = 1 + (size_t)(rng % 4);
            if (rng & 0x100)
                n = 1;
            if (n > todo - i)
                n = todo - i;
            unsigned f[MAX_BATCH];
            uint64_t p[MAX_BATCH];
            for (size_t k = 0; k < n; k++) {
                f[k] = mine[i + k] / opt.npages;
                p[k] = mine[i + k] % opt.npages;
                taken += r > 0 && owner(mine[i + k], r - 1) != a->t;
            }
            writes += (unsigned)n;
            write_pages(n, f, p, ver, a->buf);
            i += (unsigned)n;
            /* With --procs, a random file: mostly one that other processes wrote too, so
             * their writes are made durable by a sync of this process. */
            if ((rng >> 20) % opt.sync_every == 0) {
                sync_file(opt.procs ? (unsigned)(rng >> 32) % opt.nfiles : f[0], ++sync_id);
                syncs++;
            }
        }
    }
    if (opt.procs)
        printf("writer process %u: %u page writes (%u of pages another process wrote a round "
               "before), %u syncs\n",
               a->t, writes, taken, syncs);
    free(mine);
    return NULL;
}

static void
run_threads(void)
{
    static pthread_barrier_t b;
    barrier = &b;
    pthread_barrier_init(barrier, NULL, opt.threads);
    pthread_t th[16];
    struct thread_arg ta[16];
    if (opt.threads > 16)
        die("at most 16 threads");
    for (unsigned t = 0; t < opt.threads; t++) {
        ta[t].t = t;
        for (unsigned k = 0; k < MAX_BATCH; k++)
            ta[t].buf[k] = aligned_alloc(4096, 16384);
        pthread_create(&th[t], NULL, thread_main, &ta[t]);
    }
    for (unsigned t = 0; t < opt.threads; t++) {
        pthread_join(th[t], NULL);
        for (unsigned k = 0; k < MAX_BATCH; k++)
            free(ta[t].buf[k]);
    }
}

/* run_procs() -- one writer process per --procs, each with a context of its own on the store,
 * opened as the same instance while this process keeps its own attached (as an engine's
 * postmaster would). Rounds are separated by a process-shared barrier. */
static void
run_procs(void)
{
    barrier =
        mmap(NULL, sizeof(*barrier), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (barrier == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(barrier, &ba, opt.procs);
    fflush(stdout);
    pid_t pid[16];
    for (unsigned t = 0; t < opt.procs; t++) {
        pid[t] = fork();
        if (pid[t] < 0)
            die("fork: %s", strerror(errno));
        if (pid[t] > 0)
            continue;
        /* The child leaves the parent's context alone: its own, over the same store. */
        open_lib("ctx open (writer process)");
        for (unsigned i = 0; i < opt.nfiles; i++) {
            int r = bc_lib_file_open(lib, i, fpath[i], opt.page_size[i], opt.path);
            if (r < 0)
                die("open %s in process %u: %s", fpath[i], t, bc_lib_strerror(r));
        }
        struct thread_arg ta = {.t = t};
        for (unsigned k = 0; k < MAX_BATCH; k++)
            ta.buf[k] = aligned_alloc(4096, 16384);
        thread_main(&ta);
        for (unsigned k = 0; k < MAX_BATCH; k++)
            free(ta.buf[k]);
        char d[512];
        bc_lib_describe(lib, d, sizeof(d));
        printf("writer process %u: %s\n", t, d);
        int r = bc_lib_close(lib);
        if (r < 0)
            die("close in process %u: %s", t, bc_lib_strerror(r));
        fflush(stdout);
        _exit(0);
    }
    /* A writer that fails leaves the others waiting at the barrier: end them, not hang. */
    for (unsigned left = opt.procs; left > 0; left--) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0)
            die("waitpid: %s", strerror(errno));
        for (unsigned t = 0; t < opt.procs; t++)
            if (pid[t] == p)
                pid[t] = 0; /* reaped: never signalled */
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            for (unsigned t = 0; t < opt.procs; t++)
                if (pid[t] > 0)
                    kill(pid[t], SIGKILL);
            die("a writer process (pid %d) failed", (int)p);
        }
    }
}

static void
fill_filesystem(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/filler", opt.data);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        die("filler: %s", strerror(errno));
    off_t off = 0, chunk = 64 << 20;
    while (chunk >= 4096) {
        if (fallocate(fd, 0, off, chunk) == 0)
            off += chunk;
        else if (errno == ENOSPC)
            chunk /= 2;
        else
            die("fallocate filler: %s", strerror(errno));
    }
    fsync(fd);
    close(fd);
    printf("filler: %lld bytes; filesystem full\n", (long long)off);
}

static void
recover_run(void)
{
    mark("G");
    mark("RB");
    uint64_t restored = 0;
    int r = bc_lib_recover(opt.store, opt.data_root, &restored);
    mark("RE %d %" PRIu64, r, restored);
    printf("recovery: %s, %" PRIu64 " pages restored\n", r ? bc_lib_strerror(r) : "ok", restored);
    uint8_t *buf = aligned_alloc(4096, 1 << 20);
    for (unsigned f = 0; f < opt.nfiles; f++) {
        int fd = open(fpath[f], O_RDONLY);
        if (fd < 0)
            die("open %s: %s", fpath[f], strerror(errno));
        uint32_t ps = opt.page_size[f];
        for (unsigned p = 0; p < opt.npages; p++) {
            memset(buf, 0, ps);
            if (pread(fd, buf, ps, (off_t)p * ps) < 0)
                die("read %s: %s", fpath[f], strerror(errno));
            int64_t v = bc_sector_version(buf, f, p, 0);
            for (uint32_t s = 1; s < ps / BC_SECTOR; s++)
                if (bc_sector_version(buf + s * BC_SECTOR, f, p, s) != v)
                    v = BC_GARBAGE;
            mark("V %u %u %" PRId64, f, p, v);
        }
        close(fd);
    }
    free(buf);
}

static enum bc_path
parse_path(const char *s)
{
    if (!strcmp(s, "direct"))
        return BC_PATH_DIRECT;
    if (!strcmp(s, "doublewrite"))
        return BC_PATH_DOUBLEWRITE;
    if (!strcmp(s, "unsafe"))
        return BC_PATH_UNSAFE;
    if (!strcmp(s, "auto"))
        return BC_PATH_AUTO;
    die("unknown path %s", s);
    return BC_PATH_AUTO;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {{"ctl", 1, 0, 'c'},
                                       {"data", 1, 0, 'd'},
                                       {"store", 1, 0, 's'},
                                       {"path", 1, 0, 'p'},
                                       {"page-sizes", 1, 0, 'z'},
                                       {"pages", 1, 0, 'n'},
                                       {"rounds", 1, 0, 'r'},
                                       {"threads", 1, 0, 't'},
                                       {"reopen", 0, 0, 'o'},
                                       {"sabotage", 0, 0, 'S'},
                                       {"fill", 0, 0, 'F'},
                                       {"mode", 1, 0, 'm'},
                                       {"seed", 1, 0, 'x'},
                                       {"fake-sync", 0, 0, 'Y'},
                                       {"data-root", 1, 0, 'D'},
                                       {"dw-mode", 1, 0, 'M'},
                                       {"procs", 1, 0, 'P'},
                                       {"sync-every", 1, 0, 'E'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt.ctl = optarg;
            break;
        case 'd':
            opt.data = optarg;
            break;
        case 's':
            opt.store = optarg;
            break;
        case 'p':
            opt.path = parse_path(optarg);
            break;
        case 'z':
            for (char *s = optarg; *s && opt.nfiles < BC_LIB_MAX_FILES;) {
                opt.page_size[opt.nfiles++] = (uint32_t)strtoul(s, &s, 10);
                if (*s == ',')
                    s++;
            }
            break;
        case 'n':
            opt.npages = (unsigned)atoi(optarg);
            break;
        case 'r':
            opt.rounds = (unsigned)atoi(optarg);
            break;
        case 't':
            opt.threads = (unsigned)atoi(optarg);
            break;
        case 'o':
            opt.reopen = true;
            break;
        case 'S':
            opt.sabotage = true;
            break;
        case 'F':
            opt.fill = true;
            break;
        case 'm':
            opt.recover_mode = !strcmp(optarg, "recover");
            break;
        case 'x':
            opt.seed = strtoull(optarg, NULL, 0);
            break;
        case 'Y':
            opt.fake_sync = true;
            break;
        case 'D':
            opt.data_root = strcmp(optarg, "none") ? optarg : NULL;
            break;
        case 'M':
            if (strcmp(optarg, "deferred") && strcmp(optarg, "sync-batch") &&
                strcmp(optarg, "write-behind"))
                die("--dw-mode deferred|sync-batch|write-behind");
            /* write-behind is deferred durability with pages staged: the same marker */
            opt.write_behind = !strcmp(optarg, "write-behind");
            opt.deferred = opt.write_behind || !strcmp(optarg, "deferred");
            break;
        case 'P':
            opt.procs = (unsigned)atoi(optarg);
            break;
        case 'E':
            opt.sync_every = (unsigned)atoi(optarg);
            break;
        default:
            die("bad option");
        }
    }
    if (!opt.ctl || !opt.data || !opt.store || !opt.nfiles || !opt.threads || !opt.sync_every)
        die("usage: --ctl F --data DIR --store DIR --page-sizes A,B,.. [--path P] [--pages N] "
            "[--rounds R] [--threads T | --procs P] [--reopen] [--sabotage] [--fill] "
            "[--mode recover] [--fake-sync] [--data-root DIR|none] "
            "[--dw-mode sync-batch|deferred|write-behind] [--sync-every N]");
    if (opt.procs > 16 || (opt.procs && opt.reopen))
        die("--procs: at most 16, and not with --reopen");
    ctl_fd = open(opt.ctl, O_WRONLY);
    if (ctl_fd < 0)
        die("%s: %s", opt.ctl, strerror(errno));
    if (opt.data_root)
        mark("R %s", opt.data_root);
    if (opt.deferred)
        mark("M deferred");
    for (unsigned i = 0; i < opt.nfiles; i++) {
        snprintf(fpath[i], sizeof(fpath[i]), "%s/f%u", opt.data, i);
        mark("L %u %u %u %s", i, opt.page_size[i], opt.npages, fpath[i]);
    }
    if (opt.recover_mode) {
        recover_run();
        mark("Z");
        sync();
        return 0;
    }

    if (mkdir(opt.data, 0700) < 0 && errno != EEXIST)
        die("mkdir %s: %s", opt.data, strerror(errno));
    if (mkdir(opt.store, 0700) < 0 && errno != EEXIST)
        die("mkdir %s: %s", opt.store, strerror(errno));
    open_lib("ctx open");
    open_files();
    int r;

    /* Setup: every page at version 1, durable, and the directories too. */
    void *buf[MAX_BATCH];
    for (unsigned k = 0; k < MAX_BATCH; k++)
        buf[k] = aligned_alloc(4096, 16384);
    for (unsigned f = 0; f < opt.nfiles; f++) {
        for (unsigned p = 0; p < opt.npages; p += MAX_BATCH) {
            unsigned fi[MAX_BATCH];
            uint64_t pi[MAX_BATCH];
            size_t n = 0;
            for (; n < MAX_BATCH && p + n < opt.npages; n++) {
                fi[n] = f;
                pi[n] = p + n;
            }
            write_pages(n, fi, pi, 1, buf);
        }
        sync_file(f, f + 1);
    }
    if ((r = bc_lib_ctx_sync(lib)) < 0)
        die("ctx sync: %s", bc_lib_strerror(r));
    if (opt.fill)
        fill_filesystem();
    sync_dir(opt.data);
    sync_dir(opt.store);
    sync();
    mark("G");
    for (unsigned k = 0; k < MAX_BATCH; k++)
        free(buf[k]);

    if (opt.procs)
        run_procs();
    else
        run_threads();
    unsigned downgrades = 0;
    for (unsigned f = 0; f < opt.nfiles; f++) {
        char d[512];
        bc_lib_file_describe(lib, f, d, sizeof(d));
        mark("I %u %s", f, d);
        printf("file %u at the end: %s\n", f, d);
        downgrades += bc_lib_file_downgrades(lib, f);
    }
    printf("downgrades=%u\n", downgrades);
    char d[512];
    bc_lib_describe(lib, d, sizeof(d));
    printf("ctx at the end: %s\n", d);
    mark("Z");
    r = bc_lib_close(lib);
    if (r < 0)
        die("close: %s", bc_lib_strerror(r));
    sync();
    return 0;
}
