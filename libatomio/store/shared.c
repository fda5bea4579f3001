/* SPDX-License-Identifier: MIT */
/*
 * store/shared.c -- the state every process of one engine instance shares about its store,
 * in a shared memory mapping: the log's head (where the next record goes), its tail (the
 * oldest copy not yet released) and the durable tail the store header holds, one descriptor
 * per record in flight or awaiting a sync, a table of data-file syncs, and the group commit.
 *
 * Who may attach. A lock file in the store directory carries an open-file-description lock
 * on byte 0: write-locked by the process that sets the instance up (it recovers the store),
 * read-locked by every attached process. The kernel drops such a lock when its holder dies,
 * so a crashed instance never blocks the next one; a forked child that keeps the descriptor
 * keeps the instance alive, which is what it is. The instance name (ctx opts) is in the
 * shared state: a process of another instance, or any second open of a private one, is
 * refused.
 *
 * Ordering. Every record gets its LSN from the shared head under the shared lock, so copies
 * of one page written by different processes are ordered as the writes were.
 *
 * Dead processes. Waits are timed; a waiter that finds the process it waits for dead (its
 * pid gone, or its start time changed) takes over: a record it never finished is treated as
 * possibly written in place and released only after a sync of its files, a group commit it
 * led is abandoned and led again.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHARED_MAGIC   0x41544f4d494f5348ull /* "HSOIMOTA" */
#define SHARED_VERSION 7u
#define MAX_PROCS      1024u /* processes attached at once (PostgreSQL: backends and more) */
#define MAX_FILES      4096u /* distinct data files with copies at once */
/* Records in flight or awaiting a sync: one descriptor per 4 KiB of ring (a record is at least
 * 1 KiB, a lone 4 KiB page 4.5 KiB), so the ring, not the table, is what fills up. */
#define MIN_DESCS     1024u
#define MAX_DESCS     (1u << 18)
#define GROUP_WAIT_NS (200u * 1000u) /* a group commit waits this long for writes in flight */
#define DESC_FILES    8u             /* files one deferred record remembers */
#define INSTANCE_LEN  128u
#define WAIT_NS       (20u * 1000u * 1000u)

enum desc_state {
    D_FREE = 0,
    D_RESERVED, /* its write may be under way */
    D_WRITTEN,  /* written; not known durable */
    D_INPLACE,  /* durable; in-place writes may be under way */
    D_AWAIT,    /* in-place writes done; released once syncs of its files cover them */
    D_HELD,     /* an in-place write failed: kept until recovery */
    D_RELEASED
};

struct proc_ent {
    int32_t pid;
    uint32_t used;  /* ctxs of this process attached */
    uint64_t start; /* /proc/<pid>/stat start time: a reused pid is another process */
};

/*
 * A data file's sync tickets, while any descriptor names it or a sync of it is under way. An
 * entry nothing needs any more is freed (recycled: an instance that lives long meets far
 * more files than the table holds at once, as an engine creates and drops relations).
 */
struct file_ent {
    uint64_t file_id; /* 0: unused (ends a probe) or freed (see freed) */
    uint64_t begun;   /* syncs begun */
    uint64_t done;    /* highest ticket of a sync that completed */
    uint32_t refs;    /* descriptors whose fidx[] holds this entry */
    uint32_t syncing; /* syncs begun and not ended: their tickets belong to this entry */
    uint32_t freed;   /* was in use: probes go on past it, and it may be taken again */
    uint32_t pad;
};

struct desc {
    uint64_t lsn, end;
    uint32_t state;
    uint32_t nfiles;           /* > DESC_FILES: too many to track; released only by its writer */
    uint32_t proc;             /* index in procs */
    uint32_t nrefs;            /* fidx[0 .. nrefs) hold a reference on their file entries */
    uint32_t fidx[DESC_FILES]; /* file table entries */
    uint64_t need[DESC_FILES]; /* released once file_ent.done > need */
};

/*
 * The life of a descriptor. Every change of state goes through desc_move(), which checks it
 * is one of these (a test build asserts it):
 *   FREE -> RESERVED            reserve: a range of the ring claimed at the head
 *   RESERVED -> WRITTEN         its store write completed
 *   RESERVED -> RELEASED        given up (its store write failed, or was never issued)
 *   WRITTEN -> INPLACE          a group commit made it durable: in-place writes may start
 *   WRITTEN -> RELEASED         given up (abandoned, voided) before any in-place write
 *   INPLACE -> RELEASED         its files synced by the batch itself
 *   INPLACE -> AWAIT            deferred: released by later syncs of its files
 *   INPLACE -> HELD             an in-place write failed: kept until recovery
 *   AWAIT -> RELEASED           a sync of every one of its files covered it
 *   RESERVED|WRITTEN -> RELEASED, INPLACE -> AWAIT|HELD   its writer died (reap_dead)
 *   RELEASED -> FREE            the tail moved over it
 * Recovery frees every descriptor at once (atomio__shared_init_ring()).
 */
/* Only assertions call it: unused where NDEBUG removes them. */
__attribute__((unused)) static bool
desc_move_ok(uint32_t from, uint32_t to)
{
    static const uint8_t moves[] = {
        [D_FREE] = 1u << D_RESERVED,
        [D_RESERVED] = 1u << D_WRITTEN | 1u << D_RELEASED,
        [D_WRITTEN] = 1u << D_INPLACE | 1u << D_RELEASED,
        [D_INPLACE] = 1u << D_RELEASED | 1u << D_AWAIT | 1u << D_HELD,
        [D_AWAIT] = 1u << D_RELEASED,
        [D_HELD] = 0,
        [D_RELEASED] = 1u << D_FREE,
    };
    return from < sizeof(moves) && (moves[from] >> to & 1u);
}

static void
desc_move(struct desc *d, enum desc_state to)
{
    ATOMIO_ASSERT(desc_move_ok(d->state, to));
    d->state = to;
}

struct atomio_shared {
    uint64_t magic;
    uint32_t version;
    uint32_t ready; /* the first process finished setting up */
    uint8_t uuid[16];
    char instance[INSTANCE_LEN];
    pthread_mutex_t mu;
    /* Waiters sleep on this word (a futex), not on a pthread condvar: a process killed while
     * waiting on a process-shared condvar leaves its internal state waiting for it forever
     * (glibc's broadcast then blocks every other process). A futex word holds no waiter
     * state: a dead sleeper is simply gone. */
    _Atomic uint32_t wake_seq;
    uint32_t waiters;           /* sleeping on wake_seq: wake_all() skips the syscall at 0 */
    _Atomic uint32_t flush_seq; /* the group commit's own word: bumped when one ends */
    uint32_t flush_waiters;     /* sleeping on flush_seq */
    uint64_t ring_size;
    uint64_t head;         /* next LSN */
    uint64_t tail;         /* oldest LSN still needed */
    uint64_t durable_tail; /* tail as the store header holds it */
    uint32_t hdr_busy;     /* a header update is under way ... */
    uint32_t hdr_proc;     /* ... by this process */
    uint64_t flush_begun, flush_done;
    uint32_t flushing, flush_proc;
    uint64_t unflushed;             /* records written since the last group commit began */
    _Atomic uint64_t man_len;       /* valid bytes of the manifest (read without the lock) */
    uint32_t needs_recovery;        /* live copies from before a crash: no new records until then */
    uint32_t test_lanes;            /* tests: ctxs that took a lane of the per-writer sabotage */
    uint64_t desc_first, desc_next; /* descriptors in use: [first, next) */
    struct proc_ent procs[MAX_PROCS];
    struct file_ent files[MAX_FILES];
    uint32_t nfiles_max;        /* entries of files[] in use: MAX_FILES (tests may ask for fewer) */
    uint32_t nprocs_max;        /* entries of procs[] in use: MAX_PROCS (likewise) */
    _Atomic uint32_t stage_seq; /* write-behind's own word: staging space or a round ended */
    uint32_t stage_waiters;     /* sleeping on stage_seq */
    uint64_t stage_off;         /* write-behind staging (store/stage.c) at this offset; 0: none */
    uint64_t stage_len;
    uint64_t reap_next;  /* CLOCK_MONOTONIC ns: the waits' next look for dead processes */
    uint32_t ndesc;      /* entries of descs[] */
    uint32_t writing;    /* records reserved whose store write has not completed */
    struct desc descs[]; /* ndesc_for(ring_size) entries */
};

static int update_durable_tail(struct atomio_store *st);
static uint32_t ndesc_for(uint64_t ring_size);
static void reap_dead(struct atomio_store *st);

/* ---- processes ------------------------------------------------------------------------------ */

static uint64_t
proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* After the command name in parentheses (which may hold spaces): field 3 is the state,
     * field 22 the start time. A zombie or dead process counts as gone. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X' || *p == 'x')
        return 0;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

/* self_start() -- this process's start time, read once per process (a fork has its own). */
static uint64_t
self_start(void)
{
    static _Thread_local pid_t pid;
    static _Thread_local uint64_t start;
    pid_t me = getpid();
    if (pid != me) {
        start = proc_start_time(me);
        pid = me;
    }
    return start;
}

/* proc_alive() -- whether entry i is a live process: its pid, started when the entry says (a
 * pid the kernel gave to another process since, this one included, is a dead entry). */
static bool
proc_alive(const struct atomio_shared *sh, uint32_t i)
{
    const struct proc_ent *pe = &sh->procs[i];
    if (!pe->used)
        return false;
    if (pe->pid == getpid())
        return pe->start == self_start();
    return proc_start_time(pe->pid) == pe->start;
}

/* proc_self() -- this process's entry in the table (found at attach: no syscall per call). */
static uint32_t
proc_self(struct atomio_store *st)
{
    return st->proc_index;
}

/* ---- locking ------------------------------------------------------------------------------- */

void
atomio__shared_lock(struct atomio_store *st)
{
    int r = pthread_mutex_lock(&st->sh->mu);
    if (r == EOWNERDEAD) {
        /* Its holder died mid-update: every update below is a few stores that leave the
         * state usable, and waiters re-check what they wait for. */
        pthread_mutex_consistent(&st->sh->mu);
    }
}

void
atomio__shared_unlock(struct atomio_store *st)
{
    pthread_mutex_unlock(&st->sh->mu);
}

/* futex_sleep() -- wait until *word moves on from seq, at most WAIT_NS, so dead processes are
 * noticed. Called and returns with the lock held; *count says how many sleep on the word. A
 * waker bumps the word under the lock, so a bump after the lock is dropped makes the futex wait
 * return at once: no wakeup is lost. */
static void
futex_sleep(struct atomio_store *st, _Atomic uint32_t *word, uint32_t *count)
{
    uint32_t seq = atomic_load(word);
    (*count)++;
    atomio__shared_unlock(st);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = WAIT_NS};
    (void)syscall(SYS_futex, word, FUTEX_WAIT, seq, &ts, NULL, 0);
    atomio__shared_lock(st);
    (*count)--;
}

/* futex_wake() -- wake every sleeper on *word, of every process. Caller holds the lock. With
 * nobody asleep it only bumps the word: most state changes have no one waiting for them, and a
 * wake of sleepers that find nothing to do costs each of them two context switches. */
static void
futex_wake(_Atomic uint32_t *word, uint32_t count)
{
    atomic_fetch_add(word, 1);
    if (count)
        (void)syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* timed_wait() / wake_all(): the general channel (space, headers, syncs, recovery). */
static void
timed_wait(struct atomio_store *st)
{
    futex_sleep(st, &st->sh->wake_seq, &st->sh->waiters);
}

static void
wake_all(struct atomio_store *st)
{
    futex_wake(&st->sh->wake_seq, st->sh->waiters);
}

/* flush_wait() / flush_wake(): writers waiting for a group commit to cover their records sleep
 * on a word of their own, so the many releases and tail moves do not wake them for nothing. */
static void
flush_wait(struct atomio_store *st)
{
    futex_sleep(st, &st->sh->flush_seq, &st->sh->flush_waiters);
}

static void
flush_wake(struct atomio_store *st)
{
    futex_wake(&st->sh->flush_seq, st->sh->flush_waiters);
}

/* ---- attach and detach --------------------------------------------------------------------- */

int
atomio__ofd_lock(int fd, short type, bool wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return -errno;
    }
}

static int
init_shared_mem(struct atomio_shared *sh, const struct atomio_store *st, const char *instance)
{
    /* A new shared memory object reads as zeros: only what must not be zero is set. */
    pthread_mutexattr_t ma;
    if (pthread_mutexattr_init(&ma))
        return -ENOMEM;
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&sh->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (r)
        return -r;
    sh->magic = SHARED_MAGIC;
    sh->version = SHARED_VERSION;
    memcpy(sh->uuid, st->g.uuid, 16);
    if (instance)
        snprintf(sh->instance, sizeof(sh->instance), "%s", instance);
    sh->ring_size = st->g.ring_size;
    sh->ndesc = ndesc_for(st->g.ring_size);
    sh->nfiles_max = MAX_FILES;
    sh->nprocs_max = MAX_PROCS;
#ifdef ATOMIO_TESTING
    uint32_t cap = (uint32_t)atomic_load(&atomio__test_file_slots);
    if (cap > 0 && cap < MAX_FILES)
        sh->nfiles_max = cap;
    cap = (uint32_t)atomic_load(&atomio__test_procs);
    if (cap > 0 && cap < MAX_PROCS)
        sh->nprocs_max = cap;
#endif
    return 0;
}

static uint32_t
ndesc_for(uint64_t ring_size)
{
    uint64_t n = ring_size / 4096;
    return n < MIN_DESCS ? MIN_DESCS : n > MAX_DESCS ? MAX_DESCS : (uint32_t)n;
}

void
atomio__shm_name(char out[96], const uint8_t uuid[16], int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        memset(&sb, 0, sizeof(sb));
    char *p = out;
    p += sprintf(p, "/atomio-");
    for (int i = 0; i < 16; i++)
        p += sprintf(p, "%02x", uuid[i]);
    sprintf(p, "-%llx-%llx", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
}

static void
shm_name_for(struct atomio_store *st)
{
    atomio__shm_name(st->shm_name, st->g.uuid, st->fd);
}

/* base_len() -- bytes of the shared state before the write-behind staging (page-aligned). */
static size_t
base_len(uint64_t ring_size)
{
    return (sizeof(struct atomio_shared) + ndesc_for(ring_size) * sizeof(struct desc) + 4095) &
           ~(size_t)4095;
}

/* map_shared() -- map the instance's shared state: create it (first) or open it. Without
 * /dev/shm a private instance still works on anonymous shared memory. */
static int
map_shared(struct atomio_store *st, bool first, bool private_instance, size_t stage_len)
{
    st->sh_len = base_len(st->g.ring_size) + stage_len;
    shm_name_for(st);
    int fd;
    if (first) {
        (void)shm_unlink(st->shm_name); /* left by a crashed instance */
        fd = shm_open(st->shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 && ftruncate(fd, (off_t)st->sh_len) < 0) {
            int e = -errno;
            close(fd);
            shm_unlink(st->shm_name);
            return e;
        }
    } else {
        fd = shm_open(st->shm_name, O_RDWR | O_CLOEXEC, 0);
        struct stat sb;
        /* The first process sized it (with or without write-behind staging). */
        if (fd >= 0 && fstat(fd, &sb) == 0 && (size_t)sb.st_size > st->sh_len)
            st->sh_len = (size_t)sb.st_size;
    }
    void *m;
    if (fd < 0) {
        int e = -errno;
        if (!first || !private_instance)
            return e;
        st->shm_name[0] = '\0';
        m = mmap(NULL, st->sh_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    } else {
        m = mmap(NULL, st->sh_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
    }
    if (m == MAP_FAILED)
        return -errno;
    st->sh = m;
    return 0;
}

/*
 * register_proc() -- this process's entry: the one it has (another ctx of it), else a free
 * one. Entries of dead processes are reaped before one is taken, so that their records are
 * dealt with before the entry names someone else. Caller holds the lock (or is setting the
 * instance up alone).
 */
static int
register_proc(struct atomio_store *st)
{
    struct atomio_shared *sh = st->sh;
    pid_t me = getpid();
    uint64_t start = self_start();
    uint32_t cap = sh->nprocs_max;
    for (uint32_t i = 0; i < cap; i++) {
        struct proc_ent *pe = &sh->procs[i];
        if (pe->used && pe->pid == me && pe->start == start) {
            pe->used++; /* another ctx of this process */
            st->proc_index = i;
            return 0;
        }
    }
    for (uint32_t pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < cap; i++) {
            struct proc_ent *pe = &sh->procs[i];
            if (!pe->used) {
                *pe = (struct proc_ent){.pid = me, .used = 1, .start = start};
                st->proc_index = i;
                return 0;
            }
        }
        if (pass == 0)
            reap_dead(st);
    }
    atomio__reason_set("%u processes are attached to this doublewrite store's instance already, "
                       "the most one instance takes",
                       cap);
    return ATOMIO_E_BUSY;
}

int
atomio__shared_attach(atomio_ctx *ctx, struct atomio_store *st, bool *first)
{
    const char *instance = ctx->opts.instance;
    char lpath[4096];
    if (snprintf(lpath, sizeof(lpath), "%s/%s", st->dir, ATOMIO_DW_LOCK_FILE) >= (int)sizeof(lpath))
        return -ENAMETOOLONG;
    int fd = atomio__lock_open(lpath);
    if (fd < 0)
        return fd;
    st->lockfd = fd;
    st->pid = getpid();
    for (;;) {
        if (atomio__ofd_lock(st->lockfd, F_WRLCK, false) == 0) {
            *first = true;
            return 0; /* the caller sets up, recovers, then atomio__shared_open_doors() */
        }
        if (!instance || !*instance) {
            atomio__reason_set("doublewrite store in use by another process (a private "
                               "instance: set atomio_ctx_opts.instance to share it)");
            return ATOMIO_E_STORE_LOCKED;
        }
        /* Wait while the first process sets up; then check what it set up. */
        int r = atomio__ofd_lock(st->lockfd, F_RDLCK, true);
        if (r < 0)
            return r;
        *first = false;
        return 0;
    }
}

#ifdef ATOMIO_TESTING
void (*atomio__test_lock_closing)(void);
#endif

/* ---- lock descriptors across fork() ---------------------------------------------------------
 * An OFD lock belongs to the open file description, so a child that fork() makes without an
 * exec would hold the store locked through its copy of the descriptor as long as it lives, even
 * after its parent crashed. Every lock descriptor this process has open is listed here, and the
 * child closes its copies at once (pthread_atfork). Closing a copy leaves the parent's lock as
 * it was. Lock descriptors stay outside atomio__sys: they carry no data, and the crash
 * simulator's devices know nothing of them. */
static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t locks_once = PTHREAD_ONCE_INIT;
static int *lock_fds;
static size_t nlock_fds, cap_lock_fds;

static void
locks_prepare(void)
{
    pthread_mutex_lock(&locks_mu);
}

static void
locks_parent(void)
{
    pthread_mutex_unlock(&locks_mu);
}

static void
locks_child(void)
{
    for (size_t i = 0; i < nlock_fds; i++)
        close(lock_fds[i]);
    nlock_fds = 0;
    pthread_mutex_unlock(&locks_mu);
}

static void
watch_lock_forks(void)
{
    (void)pthread_atfork(locks_prepare, locks_parent, locks_child);
}

int
atomio__lock_open(const char *path)
{
    pthread_once(&locks_once, watch_lock_forks);
    pthread_mutex_lock(&locks_mu);
    int fd = -ENOMEM;
    if (nlock_fds == cap_lock_fds) {
        size_t cap = cap_lock_fds ? 2 * cap_lock_fds : 16;
        int *grown = realloc(lock_fds, cap * sizeof(*lock_fds));
        if (grown) {
            lock_fds = grown;
            cap_lock_fds = cap;
        }
    }
    if (nlock_fds < cap_lock_fds) {
        /* Opened under the list's mutex, so no fork() copies it before it is listed. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            fd = -errno;
        else
            lock_fds[nlock_fds++] = fd;
    }
    pthread_mutex_unlock(&locks_mu);
    return fd;
}

/* The unlock acts on the open file description, so on every copy of the descriptor: a child
 * forked before it holds nothing, one forked after it closes its copy at once. */
void
atomio__lock_close(int fd)
{
    (void)atomio__ofd_lock(fd, F_UNLCK, false);
#ifdef ATOMIO_TESTING
    if (atomio__test_lock_closing)
        atomio__test_lock_closing();
#endif
    pthread_mutex_lock(&locks_mu);
    for (size_t i = 0; i < nlock_fds; i++) {
        if (lock_fds[i] == fd) {
            lock_fds[i] = lock_fds[--nlock_fds];
            break;
        }
    }
    close(fd);
    pthread_mutex_unlock(&locks_mu);
}

int
atomio__shared_join(atomio_ctx *ctx, struct atomio_store *st)
{
    const char *instance = ctx->opts.instance;
    int r = map_shared(st, false, false, 0);
    if (r == -ENOENT)
        return -EAGAIN; /* the first process gave up before it was ready: try again */
    if (r < 0) {
        atomio__reason_set("cannot map the shared state of the instance using the store");
        return r;
    }
    struct atomio_shared *sh = st->sh;
    if (!sh->ready || memcmp(sh->uuid, st->g.uuid, 16) != 0 ||
        sh->ndesc != ndesc_for(st->g.ring_size)) {
        munmap(st->sh, st->sh_len);
        st->sh = NULL;
        return -EAGAIN;
    }
    if (sh->magic != SHARED_MAGIC || sh->version != SHARED_VERSION) {
        atomio__reason_set("the instance using the store runs another version of libatomio");
        return ATOMIO_E_STORE_LOCKED;
    }
    atomio__shared_lock(st);
    if (strcmp(sh->instance, instance) != 0 || !sh->instance[0]) {
        atomio__shared_unlock(st);
        atomio__reason_set("doublewrite store in use by instance \"%s\"", sh->instance);
        return ATOMIO_E_STORE_LOCKED;
    }
    bool wb = ctx->opts.doublewrite_mode == ATOMIO_DOUBLEWRITE_WRITE_BEHIND;
    if (wb != (sh->stage_off != 0) || st->sh_len < base_len(st->g.ring_size) + sh->stage_len) {
        /* A process writing in place next to staged copies of the same pages could have its
         * newer page overwritten by an older staged one. */
        atomio__shared_unlock(st);
        atomio__reason_set("instance \"%s\" %s write-behind: every process of an instance must "
                           "use the same doublewrite mode",
                           sh->instance, sh->stage_off ? "uses" : "does not use");
        return ATOMIO_E_STORE_LOCKED;
    }
    r = register_proc(st);
    st->registered = r == 0;
    atomio__shared_unlock(st);
    return r;
}

int
atomio__shared_create(atomio_ctx *ctx, struct atomio_store *st)
{
    const char *instance = ctx->opts.instance;
    size_t stage_len = 0;
    if (ctx->opts.doublewrite_mode == ATOMIO_DOUBLEWRITE_WRITE_BEHIND)
        stage_len =
            atomio__stage_len(ctx->opts.write_behind_bytes, st->g.ring_size, st->g.max_page_size);
    int r = map_shared(st, true, !instance || !*instance, stage_len);
    if (r < 0)
        return r;
    r = init_shared_mem(st->sh, st, instance);
    if (r == 0 && stage_len) {
        st->sh->stage_off = base_len(st->g.ring_size);
        st->sh->stage_len = stage_len;
        atomio__stage_init((uint8_t *)st->sh + st->sh->stage_off, stage_len, st->g.max_page_size);
    }
    if (r == 0)
        r = register_proc(st);
    st->registered = r == 0;
    return r;
}

void
atomio__shared_init_ring(struct atomio_store *st, uint64_t head, uint64_t durable_tail)
{
    struct atomio_shared *sh = st->sh;
    /* Whatever was in flight or held is behind the new tail: recovery has dealt with it. */
    for (uint64_t q = sh->desc_first; q < sh->desc_next; q++)
        sh->descs[q % sh->ndesc].state = D_FREE;
    sh->desc_first = sh->desc_next;
    for (uint32_t i = 0; i < MAX_FILES; i++)
        sh->files[i].refs = 0;
    sh->head = head;
    sh->tail = head;
    sh->durable_tail = durable_tail;
}

int
atomio__shared_open_doors(struct atomio_store *st)
{
    st->sh->ready = 1;
    /* Atomic for fcntl locks: no other process can slip in as "first" in between. */
    return atomio__ofd_lock(st->lockfd, F_RDLCK, false);
}

/* other_ctxs() -- contexts attached besides the caller's one: this process's others (its
 * entry is the one it registered), and one for every other entry in use. Caller holds the
 * lock. */
static uint64_t
other_ctxs(const struct atomio_store *st)
{
    const struct atomio_shared *sh = st->sh;
    uint64_t n = sh->procs[st->proc_index].used - 1;
    for (uint32_t i = 0; i < MAX_PROCS; i++)
        if (i != st->proc_index && sh->procs[i].used)
            n++;
    return n;
}

/* other_alive() -- whether a context besides the caller's is attached to a living process:
 * another of this process's, or any of a process that is alive. Caller holds the lock. */
static bool
other_alive(const struct atomio_store *st)
{
    const struct atomio_shared *sh = st->sh;
    if (sh->procs[st->proc_index].used > 1)
        return true;
    for (uint32_t i = 0; i < MAX_PROCS; i++)
        if (i != st->proc_index && sh->procs[i].used && proc_alive(sh, i))
            return true;
    return false;
}

void
atomio__shared_detach(struct atomio_store *st, bool forked)
{
    if (st->sh && !forked && st->registered) {
        atomio__shared_lock(st);
        /* The last ctx of the instance leaves the store clean: the durable tail at the tail, so
         * the next open has nothing to re-check but what still waits for a sync. */
        if (other_ctxs(st) == 0 && !atomic_load(&st->failed) && !st->sh->hdr_busy &&
            !st->sh->needs_recovery && st->sh->tail > st->sh->durable_tail)
            (void)update_durable_tail(st);
        if (st->sh->procs[st->proc_index].used)
            st->sh->procs[st->proc_index].used--;
        atomio__shared_unlock(st);
    }
    /* Drop this ctx's lock (its description may be shared with children forked since: they
     * are not attached, and must not keep the store locked), then see on a description of
     * our own whether anyone is still attached. */
    bool last = false;
    if (st->lockfd >= 0 && !forked) {
        (void)atomio__ofd_lock(st->lockfd, F_UNLCK, false);
        char lpath[4096];
        int fd = snprintf(lpath, sizeof(lpath), "%s/%s", st->dir, ATOMIO_DW_LOCK_FILE) <
                         (int)sizeof(lpath)
                     ? atomio__lock_open(lpath)
                     : -1;
        if (fd >= 0) {
            last = atomio__ofd_lock(fd, F_WRLCK, false) == 0;
            if (last && st->sh)
                st->sh->ready = 0; /* a joiner that maps it now starts over as first */
            if (last && st->shm_name[0])
                shm_unlink(st->shm_name);
            atomio__lock_close(fd);
        }
    }
    if (st->sh)
        munmap(st->sh, st->sh_len);
    st->sh = NULL;
    /* In a forked child the descriptor was closed at the fork (its number may be another
     * file's by now). */
    if (st->lockfd >= 0 && !forked)
        atomio__lock_close(st->lockfd);
    st->lockfd = -1;
}

/* ---- small accessors ----------------------------------------------------------------------- */

uint64_t
atomio__shared_head(struct atomio_store *st)
{
    atomio__shared_lock(st);
    uint64_t h = st->sh->head;
    atomio__shared_unlock(st);
    return h;
}

uint64_t
atomio__shared_head_locked(struct atomio_store *st)
{
    return st->sh->head;
}

void
atomio__shared_set_needs_recovery(struct atomio_store *st, bool v)
{
    st->sh->needs_recovery = v;
}

bool
atomio__shared_needs_recovery(struct atomio_store *st)
{
    return st->sh->needs_recovery != 0;
}

uint64_t
atomio__shared_attached(struct atomio_store *st)
{
    atomio__shared_lock(st);
    reap_dead(st); /* a process killed a moment ago is not attached */
    uint64_t n = 0;
    for (uint32_t i = 0; i < MAX_PROCS; i++)
        n += st->sh->procs[i].used != 0;
    atomio__shared_unlock(st);
    return n;
}

bool
atomio__dw_needs_recovery(atomio_ctx *ctx)
{
    return atomio__shared_needs_recovery(ctx->store);
}

uint64_t
atomio__shared_man_len(struct atomio_store *st)
{
    return atomic_load(&st->sh->man_len);
}

void
atomio__shared_set_man_len(struct atomio_store *st, uint64_t len)
{
    atomic_store(&st->sh->man_len, len);
}

void
atomio__shared_counts(struct atomio_store *st, uint64_t *bytes, uint64_t *used, uint64_t *attached)
{
    atomio__shared_lock(st);
    struct atomio_shared *sh = st->sh;
    *bytes = sh->ring_size;
    *used = sh->head - sh->tail;
    uint64_t n = 0;
    for (uint32_t i = 0; i < MAX_PROCS; i++)
        n += sh->procs[i].used != 0;
    *attached = n;
    atomio__shared_unlock(st);
}

/* ---- file syncs ---------------------------------------------------------------------------- */

/* file_find() -- the table entry of file_id (open addressing, linear probing; freed entries
 * do not end a probe), made if absent and make is set, in the first freed or unused entry of
 * its probe; UINT32_MAX when absent (or the table is full). Caller holds the lock. */
static uint32_t
file_find(struct atomio_shared *sh, uint64_t file_id, bool make)
{
    uint32_t cap = sh->nfiles_max;
    uint64_t h = file_id * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 40) % cap, spare = UINT32_MAX;
    for (uint32_t n = 0; n < cap; n++, i = (i + 1) % cap) {
        const struct file_ent *e = &sh->files[i];
        if (e->file_id == file_id)
            return i;
        if (e->file_id == 0 && spare == UINT32_MAX)
            spare = i;
        if (e->file_id == 0 && !e->freed)
            break; /* never used: file_id is not further along */
    }
    if (!make || spare == UINT32_MAX)
        return UINT32_MAX;
    sh->files[spare] = (struct file_ent){.file_id = file_id};
    return spare;
}

static uint32_t
file_slot(struct atomio_shared *sh, uint64_t file_id)
{
    return file_find(sh, file_id, true);
}

/* file_put() -- free entry i once no descriptor names it and no sync of it is under way: its
 * tickets then mean nothing to anyone, and a later entry for the file starts from zero (a
 * record takes need = begun from its entry, so only a sync begun after it can release it). */
static void
file_put(struct atomio_shared *sh, uint32_t i)
{
    struct file_ent *e = &sh->files[i];
    if (e->file_id != 0 && e->refs == 0 && e->syncing == 0)
        *e = (struct file_ent){.freed = 1};
}

/* file_unref() -- descriptor d is freed: it no longer holds its file entries. */
static void
file_unref(struct atomio_shared *sh, struct desc *d)
{
    for (uint32_t j = 0; j < d->nrefs; j++) {
        struct file_ent *e = &sh->files[d->fidx[j]];
        ATOMIO_ASSERT(e->refs > 0);
        if (e->refs)
            e->refs--;
        file_put(sh, d->fidx[j]);
    }
    d->nrefs = 0;
}

/* advance_tail() -- release what syncs now cover and move the tail over released records.
 * Caller holds the lock. */
static void
advance_tail(struct atomio_shared *sh)
{
    uint64_t moved = 0;
    while (sh->desc_first < sh->desc_next) {
        struct desc *d = &sh->descs[sh->desc_first % sh->ndesc];
        if (d->state == D_AWAIT && d->nfiles <= DESC_FILES) {
            bool covered = true;
            for (uint32_t j = 0; j < d->nfiles && covered; j++)
                covered = sh->files[d->fidx[j]].done > d->need[j];
            if (covered)
                desc_move(d, D_RELEASED);
        }
        if (d->state != D_RELEASED)
            break;
        desc_move(d, D_FREE);
        file_unref(sh, d);
        sh->desc_first++;
        moved++;
    }
    if (sh->desc_first < sh->desc_next)
        sh->tail = sh->descs[sh->desc_first % sh->ndesc].lsn;
    else
        sh->tail = sh->head;
    (void)moved;
}

uint64_t
atomio__store_file_sync_begin(atomio_ctx *ctx, uint64_t file_id)
{
    struct atomio_store *st = ctx->store;
    atomio__shared_lock(st);
    uint32_t i = file_slot(st->sh, file_id);
    uint64_t t = 0;
    if (i != UINT32_MAX) {
        t = ++st->sh->files[i].begun;
        st->sh->files[i].syncing++; /* the entry stays this file's until the sync ends */
    }
    atomio__shared_unlock(st);
    return t;
}

void
atomio__store_file_sync_end(atomio_ctx *ctx, uint64_t file_id, uint64_t ticket, bool ok)
{
    struct atomio_store *st = ctx->store;
    if (ticket == 0)
        return; /* no entry was taken (the table was full) */
    atomio__shared_lock(st);
    uint32_t i = file_find(st->sh, file_id, false);
    ATOMIO_ASSERT(i != UINT32_MAX); /* held by its syncing count */
    if (i != UINT32_MAX) {
        struct file_ent *e = &st->sh->files[i];
        if (ok && e->done < ticket)
            e->done = ticket;
        if (e->syncing)
            e->syncing--;
    }
    advance_tail(st->sh);
    if (i != UINT32_MAX)
        file_put(st->sh, i);
    wake_all(st);
    atomio__shared_unlock(st);
}

/*
 * atomio__shared_fenced() -- files ids[0 .. n) were just fenced, durably: none of their copies
 * written so far will ever be applied, so no record waits for a sync of them any more. Each
 * counts as synced now, as a sync begun and ended at this instant would: the records already
 * waiting for it are covered, records of later writes are not (their need is taken from
 * begun after this). A real sync still under way ends with an older ticket and changes
 * nothing. Caller holds the lock.
 */
void
atomio__shared_fenced(struct atomio_store *st, const uint64_t *ids, size_t n)
{
    struct atomio_shared *sh = st->sh;
    if (!sh)
        return;
    for (size_t k = 0; k < n; k++) {
        uint32_t i = file_find(sh, ids[k], false);
        if (i == UINT32_MAX)
            continue; /* no record names it */
        struct file_ent *e = &sh->files[i];
        uint64_t t = ++e->begun;
        if (e->done < t)
            e->done = t;
    }
    advance_tail(sh);
    wake_all(st);
}

/* ---- dead processes ------------------------------------------------------------------------ */

/*
 * reap_dead() -- descriptors of processes that died: one that never reached its in-place
 * writes is released (its copy, if durable at all, is of a write that never returned); one
 * that may have started them waits for a sync of its files begun from now on. A group commit
 * or header update led by a dead process is abandoned. Caller holds the lock.
 */
static void
reap_dead(struct atomio_store *st)
{
    struct atomio_shared *sh = st->sh;
    bool dead[MAX_PROCS] = {false};
#ifdef ATOMIO_TESTING
    atomic_fetch_add(&atomio__test_reap_scans, 1);
#endif
    for (uint32_t i = 0; i < MAX_PROCS; i++)
        if (sh->procs[i].used && !proc_alive(sh, i)) {
            dead[i] = true;
            sh->procs[i].used = 0;
        }
    for (uint64_t s = sh->desc_first; s < sh->desc_next; s++) {
        struct desc *d = &sh->descs[s % sh->ndesc];
        if (!dead[d->proc] && sh->procs[d->proc].used)
            continue;
        if (d->state == D_RESERVED || d->state == D_WRITTEN) {
            if (d->state == D_RESERVED && sh->writing)
                sh->writing--; /* its write will never complete */
            desc_move(d, D_RELEASED);
        } else if (d->state == D_INPLACE) {
            if (d->nfiles > DESC_FILES) {
                desc_move(d, D_HELD); /* cannot tell which files: recovery sorts it out */
                continue;
            }
            for (uint32_t j = 0; j < d->nfiles; j++)
                d->need[j] = sh->files[d->fidx[j]].begun;
            desc_move(d, D_AWAIT);
        }
    }
    if (sh->flushing && (dead[sh->flush_proc] || !sh->procs[sh->flush_proc].used)) {
        sh->flushing = 0;
        flush_wake(st); /* its followers must elect another leader */
    }
    if (sh->hdr_busy && (dead[sh->hdr_proc] || !sh->procs[sh->hdr_proc].used))
        sh->hdr_busy = 0;
    if (sh->stage_off) {
        bool gone[MAX_PROCS]; /* the dead are no longer used (above) */
        for (uint32_t i = 0; i < MAX_PROCS; i++)
            gone[i] = !sh->procs[i].used;
        if (atomio__stage_reap(atomio__shared_stage(st), gone))
            futex_wake(&sh->stage_seq, sh->stage_waiters);
    }
    advance_tail(sh);
}

/*
 * reap_due() -- reap_dead() for the waits, at most once per WAIT_NS for the whole instance.
 * A reap reads /proc once for every attached process, under the lock. Every waiter wakes at
 * least once per WAIT_NS, and at every release; with hundreds of processes waiting on a full
 * store, each reaping at each wake-up would hold the lock for most of the time, and slow the
 * very syncs that free the space. One look per period is enough: whoever wakes after it is
 * due takes it, so a death is still noticed within about two periods. Caller holds the lock.
 */
static void
reap_due(struct atomio_store *st)
{
    struct atomio_shared *sh = st->sh;
    uint64_t now = atomio__now_ns();
    /* (A deadline more than a period ahead is from another boot's clock: due now.) */
    if (now < sh->reap_next && sh->reap_next - now <= WAIT_NS)
        return;
    sh->reap_next = now + WAIT_NS;
    reap_dead(st);
}

/* ---- backpressure -------------------------------------------------------------------------- */

/*
 * sync_for(d) -- make the oldest record releasable by syncing its files ourselves (the
 * engine has not yet): open each by its recorded path (any process may, whoever wrote it),
 * fdatasync it inside the sync bracket. Called and returns with the lock held; drops it
 * around the I/O. Returns 0, or -errno when a file cannot be synced (then the record waits).
 */
static int
sync_for(atomio_ctx *ctx, uint64_t seq)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
    struct desc *d = &sh->descs[seq % sh->ndesc];
    uint32_t n = d->nfiles;
    uint64_t ids[DESC_FILES], need[DESC_FILES];
    for (uint32_t j = 0; j < n; j++) {
        ids[j] = sh->files[d->fidx[j]].file_id;
        need[j] = d->need[j];
    }
    int err = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t fi = file_slot(sh, ids[j]);
        if (fi == UINT32_MAX || sh->files[fi].done > need[j])
            continue;
        uint64_t ticket = ++sh->files[fi].begun;
        sh->files[fi].syncing++;
        atomio__shared_unlock(st);
        /* The file's manifest record was published before its copy was written, and never
         * changes: read without the lock. */
        char path[4096];
        path[0] = '\0';
        int r = atomio__store_man_refresh(st);
        if (r == 0)
            r = atomio__store_resolve(ctx, ids[j], path, sizeof(path), NULL);
        if (r == 0) {
            int fd = atomio__sys.open(path, O_RDONLY | O_CLOEXEC, 0);
            if (fd < 0) {
                r = fd;
            } else {
                r = atomio__sys.fdatasync(fd);
                atomio__sys.close(fd);
            }
        }
        ATOMIO_COUNT(&ctx->stats, forced_syncs, 1);
        ATOMIO_COUNT(&ctx->stats, syncs, 1);
        if (r < 0)
            atomio__reason_set("the store is full and the oldest copies wait for a sync of file id "
                               "%llu (%s), which failed (%s): a file removed or renamed without "
                               "atomio_file_fence() or a sync first? Its copies are kept",
                               (unsigned long long)ids[j], path, strerror(-r));
        atomio__shared_lock(st);
        if (r == 0 && sh->files[fi].done < ticket)
            sh->files[fi].done = ticket;
        if (sh->files[fi].syncing)
            sh->files[fi].syncing--;
        file_put(sh, fi);
        if (r < 0 && !err)
            err = r;
    }
    advance_tail(sh);
    wake_all(st);
    return err;
}

/*
 * update_durable_tail() -- write the store header with the current tail before ring bytes
 * above the old durable tail are overwritten. Called and returns with the lock held.
 */
static int
update_durable_tail(struct atomio_store *st)
{
    struct atomio_shared *sh = st->sh;
    uint64_t tail = sh->tail;
    sh->hdr_busy = 1;
    sh->hdr_proc = proc_self(st);
    atomio__shared_unlock(st);
    int r = atomio__store_write_headers(st, tail);
    atomio__shared_lock(st);
    sh->hdr_busy = 0;
    if (r == 0 && sh->durable_tail < tail)
        sh->durable_tail = tail;
    wake_all(st);
    return r;
}

/* ---- reservation --------------------------------------------------------------------------- */

int
atomio__store_reserve(atomio_ctx *ctx, struct atomio_dw_rec *rec, atomio_file *const *files,
                      uint32_t nfiles, bool wait)
{
    uint64_t ids[DESC_FILES];
    uint32_t n = nfiles < DESC_FILES ? nfiles : DESC_FILES;
    for (uint32_t j = 0; j < n; j++)
        ids[j] = files[j]->file_id;
    /* More files than a descriptor tracks: only the count matters (its writer releases it). */
    return atomio__store_reserve_ids(ctx, rec, ids, nfiles, wait);
}

int
atomio__store_reserve_ids(atomio_ctx *ctx, struct atomio_dw_rec *rec, const uint64_t *ids,
                          uint32_t nfiles, bool wait)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
    uint64_t R = st->g.ring_size;
    int err = 0;
    atomio__shared_lock(st);
    for (;;) {
        if (atomic_load(&st->failed)) {
            err = ATOMIO_E_STORE_FAILED;
            break;
        }
        uint64_t lsn = sh->head;
        uint64_t room = R - lsn % R;
        if (room < rec->len)
            lsn += room; /* never wrap inside a record: start the next lap */
        uint64_t end = lsn + rec->len;
        bool space = end - sh->tail <= R && sh->desc_next - sh->desc_first < sh->ndesc;
        if (space && sh->durable_tail + R >= end) {
            /* Claim it: every older copy in [lsn, end) is released and below the header's
             * durable tail, so overwriting it cannot let an older copy win at recovery. */
            ATOMIO_ASSERT(end - sh->tail <= R && sh->durable_tail + R >= end);
            struct desc *d = &sh->descs[sh->desc_next % sh->ndesc];
            ATOMIO_ASSERT(d->state == D_FREE);
            *d = (struct desc){.lsn = lsn,
                               .end = end,
                               .state = D_RESERVED,
                               .nfiles = nfiles,
                               .proc = proc_self(st)};
            /* Each file's entry, held (refs) until the descriptor is freed. */
            for (uint32_t j = 0; j < nfiles && nfiles <= DESC_FILES; j++) {
                uint32_t fi = file_slot(sh, ids[j]);
                if (fi == UINT32_MAX) {
                    d->nfiles = DESC_FILES + 1; /* untracked: its writer releases it */
                    file_unref(sh, d);
                    break;
                }
                d->fidx[j] = fi;
                sh->files[fi].refs++;
                d->nrefs = j + 1;
            }
            rec->desc = sh->desc_next++;
            rec->lsn = lsn;
            sh->writing++;
#ifdef ATOMIO_TESTING
            if (atomic_load(&atomio__test_dw_local_order)) {
                /* The sabotage: each writer numbers and places its records in a lane of its
                 * own, half the ring, as if every process kept its own sequence; the first
                 * writer's numbers run higher, so its older copies outrank a later writer's. */
                if (st->test_lane == 0)
                    st->test_lane = ++sh->test_lanes;
                uint64_t base = atomio__dw_round(st->g.tail + (st->test_lane == 1 ? R / 2 : 0),
                                                 ATOMIO_DW_GRANULE);
                rec->lsn = base + st->test_local_off;
                st->test_local_off += rec->len;
            }
#endif
            if (sh->desc_first + 1 == sh->desc_next)
                sh->tail = lsn; /* the skipped end of a lap is free */
            sh->head = end;
            break;
        }
        if (space) {
            /* The bytes are free, but the header still lets recovery see copies in them. */
            if (!sh->hdr_busy) {
                err = update_durable_tail(st);
                if (err < 0) {
                    atomic_store(&st->failed, true);
                    err = ATOMIO_E_STORE_FAILED;
                    break;
                }
            } else if (!wait) {
                err = -EAGAIN;
                break;
            } else {
                timed_wait(st);
                reap_due(st);
            }
            continue;
        }
        /* The ring is full: the oldest record decides. */
        struct desc *d = &sh->descs[sh->desc_first % sh->ndesc];
        if (sh->desc_first < sh->desc_next && d->state == D_AWAIT && d->nfiles <= DESC_FILES) {
            err = sync_for(ctx, sh->desc_first);
            if (err < 0)
                break;
            continue;
        }
        if (sh->desc_first < sh->desc_next && d->state == D_HELD) {
            err = ATOMIO_E_STORE_FULL; /* held until recovery: nothing will come back */
            break;
        }
        if (!wait) {
            /* The caller may hold the very records it would wait for (a staged batch). */
            reap_due(st);
            err = -EAGAIN;
            break;
        }
        timed_wait(st);
        reap_due(st);
    }
    atomio__shared_unlock(st);
    return err;
}

void
atomio__store_written(atomio_ctx *ctx, struct atomio_dw_rec *rec, bool ok)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
    atomio__shared_lock(st);
    struct desc *d = &sh->descs[rec->desc % sh->ndesc];
    /* A failed write leaves the record reserved: its writer gives it up next (abandon), which
     * voids and releases it exactly once. */
    if (ok)
        desc_move(d, D_WRITTEN);
    if (sh->writing)
        sh->writing--;
    rec->written_at = sh->flush_begun;
    if (ok)
        sh->unflushed++;
    atomio__shared_unlock(st);
}

/* ---- group commit -------------------------------------------------------------------------- */

uint64_t
atomio__store_flush_begin(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    atomio__shared_lock(st);
    uint64_t t = ++st->sh->flush_begun;
    uint64_t group = st->sh->unflushed;
    st->sh->unflushed = 0;
    atomio__shared_unlock(st);
    ATOMIO_COUNT(&ctx->stats, group_commits, 1);
    ATOMIO_COUNT(&ctx->stats, group_records, group);
    return t;
}

int
atomio__store_flush_end(atomio_ctx *ctx, uint64_t ticket, int r)
{
    struct atomio_store *st = ctx->store;
    ATOMIO_COUNT(&ctx->stats, syncs, 1);
    atomio__shared_lock(st);
    if (r == 0 && st->sh->flush_done < ticket)
        st->sh->flush_done = ticket;
    flush_wake(st);
    atomio__shared_unlock(st);
    if (r < 0) {
        /* After a failed fdatasync nothing about earlier store writes can be trusted: the
         * store refuses further records until the ctx is reopened. */
        atomic_store(&st->failed, true);
        ATOMIO_COUNT(&ctx->stats, failed_syncs, 1);
    }
    return r;
}

int
atomio__store_durable(atomio_ctx *ctx, struct atomio_dw_rec *rec)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
    int err = 0;
    atomio__shared_lock(st);
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_skip_dw_durability)) {
        /* The sabotage: in-place writes may start without the store made durable. */
        desc_move(&sh->descs[rec->desc % sh->ndesc], D_INPLACE);
        atomio__shared_unlock(st);
        return 0;
    }
#endif
    while (sh->flush_done <= rec->written_at && err == 0) {
        if (atomic_load(&st->failed)) {
            err = ATOMIO_E_STORE_FAILED;
            break;
        }
        if (!sh->flushing) {
            /* Lead one group commit: it covers every record written before it begins. Records
             * whose writes are in flight right now would need the next one: give them a moment
             * to join this one instead (a lone writer never waits). */
            uint64_t until = atomio__now_ns() + GROUP_WAIT_NS;
            while (sh->writing > 0 && !sh->flushing && atomio__now_ns() < until) {
                atomio__shared_unlock(st);
                sched_yield();
                atomio__shared_lock(st);
            }
            if (sh->flushing)
                continue; /* another writer took the lead meanwhile: wait for its commit */
            sh->flushing = 1;
            sh->flush_proc = proc_self(st);
            uint64_t t = ++sh->flush_begun;
            uint64_t group = sh->unflushed;
            sh->unflushed = 0;
            atomio__shared_unlock(st);
            int r = atomio__sys.fdatasync(st->fd);
            ATOMIO_COUNT(&ctx->stats, group_commits, 1);
            ATOMIO_COUNT(&ctx->stats, group_records, group);
            ATOMIO_COUNT(&ctx->stats, syncs, 1);
            atomio__shared_lock(st);
            sh->flushing = 0;
            if (r == 0 && sh->flush_done < t)
                sh->flush_done = t;
            flush_wake(st);
            if (r < 0) {
                atomic_store(&st->failed, true);
                ATOMIO_COUNT(&ctx->stats, failed_syncs, 1);
                err = r;
            }
        } else {
            flush_wait(st);
            if (sh->flushing && !proc_alive(sh, sh->flush_proc))
                reap_dead(st);
        }
    }
    if (err == 0)
        desc_move(&sh->descs[rec->desc % sh->ndesc], D_INPLACE);
    atomio__shared_unlock(st);
    return err;
}

/* ---- the end of a record ------------------------------------------------------------------- */

void
atomio__store_rec_end(atomio_ctx *ctx, struct atomio_dw_rec *rec, enum atomio_rec_end how)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
#ifdef ATOMIO_TESTING
    if (atomic_load(&atomio__test_dw_keep_batches))
        how = ATOMIO_REC_HOLD;
#endif
    atomio__shared_lock(st);
    struct desc *d = &sh->descs[rec->desc % sh->ndesc];
    if (how == ATOMIO_REC_AWAIT_SYNC && d->nfiles > DESC_FILES)
        how = ATOMIO_REC_RELEASE; /* the caller synced its files (untracked record) */
    switch (how) {
    case ATOMIO_REC_RELEASE:
        desc_move(d, D_RELEASED);
        break;
    case ATOMIO_REC_AWAIT_SYNC:
        for (uint32_t j = 0; j < d->nfiles; j++)
            d->need[j] = sh->files[d->fidx[j]].begun;
        desc_move(d, D_AWAIT);
        break;
    case ATOMIO_REC_HOLD:
        desc_move(d, D_HELD);
        break;
    }
    advance_tail(sh);
    wake_all(st);
    atomio__shared_unlock(st);
}

bool
atomio__store_rec_tracked(atomio_ctx *ctx, const struct atomio_dw_rec *rec)
{
    struct atomio_store *st = ctx->store;
    atomio__shared_lock(st);
    bool t = st->sh->descs[rec->desc % st->sh->ndesc].nfiles <= DESC_FILES;
    atomio__shared_unlock(st);
    return t;
}

int
atomio__store_release_all(atomio_ctx *ctx)
{
    struct atomio_store *st = ctx->store;
    struct atomio_shared *sh = st->sh;
    int err = 0;
    atomio__shared_lock(st);
    reap_dead(st);
    uint64_t stop = sh->desc_next;
    for (uint64_t s = sh->desc_first; s < stop && s < sh->desc_next; s++) {
        struct desc *d = &sh->descs[s % sh->ndesc];
        if (d->state == D_AWAIT && d->nfiles <= DESC_FILES) {
            int r = sync_for(ctx, s);
            if (r < 0 && !err)
                err = r;
        }
    }
    advance_tail(sh);
    atomio__shared_unlock(st);
    return err;
}

/* ---- for write-behind (store/stage.c) ------------------------------------------------------ */

struct atomio_stage *
atomio__shared_stage(struct atomio_store *st)
{
    return st->sh && st->sh->stage_off
               ? (struct atomio_stage *)((uint8_t *)st->sh + st->sh->stage_off)
               : NULL;
}

uint32_t
atomio__shared_proc_self(struct atomio_store *st)
{
    return proc_self(st);
}

void
atomio__shared_stage_wait(struct atomio_store *st)
{
    uint32_t seq = atomic_load(&st->sh->stage_seq);
    futex_sleep(st, &st->sh->stage_seq, &st->sh->stage_waiters);
    /* Nothing moved for WAIT_NS: is the process we wait for still alive? (Reaping reads
     * /proc for every attached process: not after every wake-up.) */
    if (atomic_load(&st->sh->stage_seq) == seq)
        reap_due(st);
}

void
atomio__shared_stage_wake(struct atomio_store *st)
{
    futex_wake(&st->sh->stage_seq, st->sh->stage_waiters);
}

void
atomio__shared_reap(struct atomio_store *st)
{
    reap_dead(st);
}

bool
atomio__shared_leave_unless_last(struct atomio_store *st)
{
    if (!st->sh || !st->registered)
        return true;
    atomio__shared_lock(st);
    /* A killed process will not flush anything, so only living contexts count. Every close
     * comes here (an engine's backends come and go): one living other is enough to know, and
     * /proc is read for the whole table (reap_dead) only when none is found. */
    bool others = other_alive(st);
    if (!others)
        reap_dead(st);
    else {
        /* Under the same lock as the count: of two contexts closing at once, the second sees
         * itself last and flushes. */
        st->sh->procs[st->proc_index].used--;
        st->registered = false;
    }
    atomio__shared_unlock(st);
    return !others;
}
