/* SPDX-License-Identifier: MIT */
/*
 * test_attach.c -- the processes of one instance in its shared table: how many attach at once,
 * what one more gets, that each process has one entry whatever its number of contexts, and
 * how often writers waiting on a full store look through the table for dead processes.
 * Every process is a fork()ed child that opens its own ctx with the instance's name and then
 * waits for a byte on its gate pipe: '2' opens a second ctx, end of file closes everything.
 */
#include "atomio_internal.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256], dwdir[320];

#define MANY 300 /* more than the 256 an instance took before */

/* The parent's ends of every live child's pipes: a child closes its copies of them, or an
 * earlier child would never see end of file on its gate. */
static int held[2 * (MANY + 1)];
static int nheld;

static void
setup(void)
{
    nheld = 0;
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
}

static void
teardown(void)
{
    atomic_store(&atomio__test_procs, 0);
    atomio__sys = atomio__sys_real;
    t_rmtree(tmp);
}

TestSuite(attach, .init = setup, .fini = teardown);

static atomio_ctx_opts
opts(void)
{
    atomio_ctx_opts co = t_ctx_opts(dwdir);
    co.instance = "inst";
    co.doublewrite_mode = ATOMIO_DOUBLEWRITE_DEFERRED;
    return co;
}

struct report {
    int rc;
    char reason[240];
};

struct kid {
    pid_t pid;
    int res; /* read end: the child's reports */
    int gate; /* write end: commands to the child */
};

static void
report(int fd, int rc)
{
    struct report r = {.rc = rc};
    const char *why = atomio_last_reason();
    snprintf(r.reason, sizeof(r.reason), "%s", rc < 0 && why ? why : "");
    if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(3);
}

static void
hold(int fd)
{
    held[nheld++] = fd;
}

/* release() -- close a held descriptor and forget it. */
static void
release(int fd)
{
    for (int i = 0; i < nheld; i++)
        if (held[i] == fd) {
            held[i] = held[--nheld];
            break;
        }
    close(fd);
}

static void
kid_start(struct kid *k)
{
    int res[2], gate[2];
    cr_assert_eq(pipe(res), 0);
    cr_assert_eq(pipe(gate), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        for (int i = 0; i < nheld; i++)
            close(held[i]);
        close(res[0]);
        close(gate[1]);
        atomio_ctx_opts co = opts();
        atomio_ctx *ctx[2] = {NULL, NULL};
        report(res[1], atomio_ctx_open(&co, &ctx[0]));
        char c;
        while (read(gate[0], &c, 1) == 1)
            if (c == '2' && !ctx[1])
                report(res[1], atomio_ctx_open(&co, &ctx[1]));
        for (int i = 1; i >= 0; i--)
            if (ctx[i])
                (void)atomio_ctx_close(ctx[i]);
        _exit(0);
    }
    close(res[1]);
    close(gate[0]);
    hold(res[0]);
    hold(gate[1]);
    *k = (struct kid){.pid = pid, .res = res[0], .gate = gate[1]};
}

static struct report
kid_report(const struct kid *k)
{
    struct report r;
    cr_assert_eq(read(k->res, &r, sizeof(r)), (ssize_t)sizeof(r), "child %d reported", k->pid);
    return r;
}

static void
kid_send(const struct kid *k, char c)
{
    cr_assert_eq(write(k->gate, &c, 1), 1);
}

/* kid_end() -- close the child's contexts (kill: SIGKILL it instead) and reap it. */
static void
kid_end(struct kid *k, bool kill_it)
{
    if (kill_it)
        kill(k->pid, SIGKILL);
    release(k->gate);
    int st;
    cr_assert_eq(waitpid(k->pid, &st, 0), k->pid);
    if (!kill_it)
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d exit", k->pid);
    release(k->res);
}

static uint64_t
attached(atomio_ctx *ctx)
{
    atomio_stats st = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    return st.attached;
}

Test(attach, three_hundred_processes_share_one_instance, .timeout = 120)
{
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    static struct kid k[MANY];
    for (int i = 0; i < MANY; i++) {
        kid_start(&k[i]);
        struct report r = kid_report(&k[i]);
        cr_assert_eq(r.rc, 0, "process %d of %d: %s: %s", i + 2, MANY + 1, atomio_err_name(r.rc),
                     r.reason);
    }
    cr_assert_eq(attached(ctx), MANY + 1);
    for (int i = 0; i < MANY; i++)
        kid_end(&k[i], false);
    cr_assert_eq(attached(ctx), 1, "each child left when it closed its ctx");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(attach, one_more_than_the_table_is_refused_until_one_leaves, .timeout = 60)
{
    atomic_store(&atomio__test_procs, 4);
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    struct kid k[5];
    for (int i = 0; i < 3; i++) {
        kid_start(&k[i]);
        cr_assert_eq(kid_report(&k[i]).rc, 0);
    }
    kid_start(&k[3]);
    struct report r = kid_report(&k[3]);
    cr_assert_eq(r.rc, ATOMIO_E_BUSY, "a fifth process: %s", atomio_err_name(r.rc));
    cr_assert(strstr(r.reason, "4 processes") != NULL, "the refusal says why: '%s'", r.reason);
    kid_end(&k[3], false);
    cr_assert_eq(attached(ctx), 4);

    /* A process killed without closing leaves its entry to the next one. */
    kid_end(&k[0], true);
    kid_start(&k[4]);
    r = kid_report(&k[4]);
    cr_assert_eq(r.rc, 0, "after a process died: %s: %s", atomio_err_name(r.rc), r.reason);
    cr_assert_eq(attached(ctx), 4);
    for (int i = 1; i < 5; i++)
        if (i != 3)
            kid_end(&k[i], false);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(attach, a_second_ctx_of_a_process_shares_its_entry, .timeout = 60)
{
    /* The parent has entry 0, A entry 1, B entry 2. A leaves, so entry 1 is free when B
     * opens its second ctx: B must count once, not take entry 1 as well. */
    atomio_ctx_opts co = opts();
    atomio_ctx *ctx = t_ctx_open(&co);
    struct kid a, b;
    kid_start(&a);
    cr_assert_eq(kid_report(&a).rc, 0);
    kid_start(&b);
    cr_assert_eq(kid_report(&b).rc, 0);
    kid_end(&a, false);
    kid_send(&b, '2');
    cr_assert_eq(kid_report(&b).rc, 0);
    cr_assert_eq(attached(ctx), 2, "the parent and B, each once");
    kid_end(&b, false);
    cr_assert_eq(attached(ctx), 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- waiting on a full store ----------------------------------------------------------------
 * Writers' in-place writes are stopped at a gate, so their copies can be neither released nor
 * synced: the first batches fill a small store and the rest wait for space, each waking at
 * least once per period (20 ms). Each look for dead processes reads /proc once per attached
 * process, under the instance's lock: with hundreds of waiters each looking at each wake-up,
 * the lock would be held most of the time. One look per period for the whole instance is the
 * bound. */

#define WAIT_PERIOD_NS (20ull * 1000 * 1000) /* the store's timed waits */
#define GATE_PS        4096u
#define GATE_PAGES     8u  /* one record: at most a quarter of the ring is one record */
#define GATE_WRITERS   16u /* about twice what a 256 KiB store holds */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;
    unsigned stopped; /* in-place writes waiting at the gate */
    ino_t data_ino;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static ssize_t
gated_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat sb;
    if (fstat(fd, &sb) == 0 && sb.st_ino == gate.data_ino) {
        pthread_mutex_lock(&gate.mu);
        gate.stopped++;
        while (gate.closed)
            pthread_cond_wait(&gate.cv, &gate.mu);
        pthread_mutex_unlock(&gate.mu);
    }
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static unsigned
gate_stopped(void)
{
    pthread_mutex_lock(&gate.mu);
    unsigned n = gate.stopped;
    pthread_mutex_unlock(&gate.mu);
    return n;
}

struct gated_writer {
    pthread_t th;
    atomio_ctx *ctx;
    atomio_file *f;
    uint64_t first;
    uint8_t *pages;
    int rc;
};

static void *
gated_write(void *arg)
{
    struct gated_writer *w = arg;
    atomio_page_write pw[GATE_PAGES];
    for (uint32_t i = 0; i < GATE_PAGES; i++)
        pw[i] = (atomio_page_write){
            .file = w->f, .page_no = w->first + i, .page = w->pages + (size_t)i * GATE_PS};
    w->rc = atomio_write_batch(w->ctx, pw, GATE_PAGES, 0);
    return NULL;
}

/* Named to sort before three_hundred_processes_share_one_instance: when a test ran after that
 * one here, LeakSanitizer reported 48 bytes leaked by Criterion 2.4.1's runner (in the runner
 * process, allocated inside libcriterion), whatever the later test's body did. */
Test(attach, full_store_waiters_look_for_the_dead_once_per_period, .timeout = 60)
{
    atomio_ctx_opts co = opts();
    co.doublewrite_store_bytes = 256u << 10;
    atomio_ctx *ctx = t_ctx_open(&co);
    char data[400];
    snprintf(data, sizeof(data), "%s/data", tmp);
    t_make_file(data, (size_t)GATE_WRITERS * GATE_PAGES * GATE_PS, 1);
    atomio_file_opts fo = t_file_opts(GATE_PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, 0);
    atomio_file *f = t_file_open(ctx, data, &fo);
    struct stat sb;
    cr_assert_eq(stat(data, &sb), 0);
    gate.data_ino = sb.st_ino;
    gate.closed = true;
    gate.stopped = 0;
    atomio__sys.pwritev2 = gated_pwritev2;

    static struct gated_writer w[GATE_WRITERS];
    for (uint32_t i = 0; i < GATE_WRITERS; i++) {
        w[i] = (struct gated_writer){.ctx = ctx, .f = f, .first = (uint64_t)i * GATE_PAGES};
        w[i].pages = atomio_page_alloc(ctx, GATE_PS, GATE_PAGES);
        cr_assert_not_null(w[i].pages);
        for (uint32_t p = 0; p < GATE_PAGES; p++)
            memset(w[i].pages + (size_t)p * GATE_PS, (int)(w[i].first + p + 1), GATE_PS);
        cr_assert_eq(pthread_create(&w[i].th, NULL, gated_write, &w[i]), 0);
    }
    /* The store fills: the stopped count settles, the others wait for space. */
    unsigned stopped = 0;
    for (int settled = 0; settled < 10; settled++) {
        usleep(20 * 1000);
        unsigned n = gate_stopped();
        if (n != stopped)
            settled = 0;
        stopped = n;
    }

    atomic_store(&atomio__test_reap_scans, 0);
    uint64_t t0 = atomio__now_ns();
    usleep(500 * 1000);
    unsigned scans = atomic_load(&atomio__test_reap_scans);
    uint64_t periods = (atomio__now_ns() - t0) / WAIT_PERIOD_NS;
    pthread_mutex_lock(&gate.mu);
    cr_assert_eq(gate.stopped, stopped, "nobody got space while the store was full");
    gate.closed = false;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    unsigned waiting = GATE_WRITERS - stopped;
    fprintf(stderr, "%u writers waited %" PRIu64 " periods: %u looks for dead processes\n",
            waiting, periods, scans);
    cr_assert_geq(waiting, 4, "the store held %u of %u batches: too few wait", stopped,
                  GATE_WRITERS);
    cr_assert_gt(scans, 0, "waiters still look for dead processes");
    cr_assert_leq(scans, periods + 2, "%u looks in %" PRIu64 " periods: one per period is enough",
                  scans, periods);

    /* Let go, every batch completes and every page is in place. */
    for (uint32_t i = 0; i < GATE_WRITERS; i++) {
        cr_assert_eq(pthread_join(w[i].th, NULL), 0);
        cr_assert_eq(w[i].rc, (int)GATE_PAGES, "writer %u: %s", i, atomio_err_name(w[i].rc));
    }
    atomio__sys = atomio__sys_real;
    cr_assert_eq(atomio_file_close(f), 0);
    int wrong = -1;
    for (uint32_t i = 0; i < GATE_WRITERS; i++) {
        for (uint32_t p = 0; p < GATE_PAGES; p++)
            if (wrong < 0 &&
                !t_file_holds(data, w[i].pages + (size_t)p * GATE_PS, GATE_PS, w[i].first + p))
                wrong = (int)(w[i].first + p);
        atomio_page_free(ctx, w[i].pages, GATE_PS, GATE_PAGES);
    }
    cr_assert_eq(wrong, -1, "page %d is not in place", wrong);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
