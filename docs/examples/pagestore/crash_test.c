/* SPDX-License-Identifier: MIT */
/*
 * crash_test.c -- kill the example engine (pagestore) with SIGKILL at random points, many
 * times, on real loop-mounted filesystems, and check after every restart what an engine needs:
 *   - every acknowledged commit is there: each key is at its last acknowledged version, or at
 *     most one key is one version further (a commit whose log record was durable when the kill
 *     came, before its acknowledgement reached us);
 *   - every page parses, every record holds the value its version implies, and replaying the
 *     log a second time changes nothing (pagestore check does these and exits non-zero);
 *   - the engine never stops on its own (a PANIC is a failure).
 * What a SIGKILL cannot do is tear a page: the kernel finishes a write system call that has
 * started, and data in the page cache survives the process. Torn writes are the crash
 * simulator's job (tests/test_crash.c); this test covers the engine-level protocol around
 * libatomio: recovery before redo, write-ahead logging, checkpoints through
 * atomio_write_batch(), restart in the middle of recovery itself.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PAGESTORE_BIN
#error "PAGESTORE_BIN must name the pagestore executable"
#endif

#define MAX_KEYS 65536

struct cfg {
    const char *fs;        /* t_fs_mount kind */
    int store;             /* give the engine a doublewrite store */
    const char *io;        /* --io */
    const char *want_path; /* the path libatomio must pick */
};

struct run_state {
    struct t_fs fs;
    char db[PATH_MAX + 16];
    char dblwr[PATH_MAX + 16];
    char err_file[PATH_MAX + 16];
    uint32_t *model; /* last acknowledged (or recovered) version per key */
    /* totals over the whole test, to show it exercised what it claims */
    unsigned long acks, ckpts, kills, kills_in_ckpt, kills_before_ready, restored;
    uint64_t ready_ms; /* how long the last start took to get ready */
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The engine's stderr, for failure messages. */
static const char *
engine_stderr(struct run_state *st)
{
    static char buf[4096];
    buf[0] = '\0';
    int fd = open(st->err_file, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
        for (size_t len = strlen(buf); len && buf[len - 1] == '\n'; len--)
            buf[len - 1] = '\0';
    }
    return buf;
}

/* arg() -- a mutable copy for execv()'s argv (the test process is single-threaded). */
static char *
arg(const char *s)
{
    char *d = strdup(s);
    cr_assert(d != NULL);
    return d;
}

/* spawn() -- start pagestore with stdout on a pipe and stderr in err_file. */
static pid_t
spawn(struct run_state *st, const struct cfg *c, const char *cmd, unsigned seed, int *out_fd)
{
    int p[2];
    cr_assert(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    char seed_s[32];
    snprintf(seed_s, sizeof(seed_s), "%u", seed);
    char *argv[16];
    int n = 0;
    argv[n++] = arg(PAGESTORE_BIN);
    argv[n++] = arg(cmd);
    argv[n++] = arg("--dir");
    argv[n++] = arg(st->db);
    argv[n++] = arg("--io");
    argv[n++] = arg(c->io);
    argv[n++] = arg("--seed");
    argv[n++] = arg(seed_s);
    argv[n++] = arg("--ckpt-ms");
    argv[n++] = arg("5"); /* checkpoints all the time, so kills land inside them */
    if (c->store) {
        argv[n++] = arg("--dblwr-dir");
        argv[n++] = arg(st->dblwr);
    }
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        int ef = open(st->err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (ef >= 0)
            dup2(ef, STDERR_FILENO);
        execv(PAGESTORE_BIN, argv);
        _exit(127);
    }
    for (int i = 0; i < n; i++)
        free(argv[i]);
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

struct lines {
    char *buf;
    size_t len, cap;
};

static void
lines_add(struct lines *l, const char *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->buf = realloc(l->buf, l->cap);
        cr_assert(l->buf != NULL);
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

/* read_until() -- collect output until EOF or until deadline (0 = EOF only). */
static void
read_until(int fd, struct lines *l, uint64_t deadline)
{
    char chunk[65536];
    for (;;) {
        int timeout = -1;
        if (deadline) {
            uint64_t t = now_ms();
            if (t >= deadline)
                return;
            timeout = (int)(deadline - t);
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert(r >= 0, "poll: %s", strerror(errno));
        if (r == 0)
            return;
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        cr_assert(n >= 0, "read: %s", strerror(errno));
        if (n == 0)
            return;
        lines_add(l, chunk, (size_t)n);
    }
}

/* "R <path>" is the first line pagestore run prints, once recovery and redo are done. */
static int
is_ready(const struct lines *l)
{
    return l->len > 0 && l->buf[0] == 'R' && memchr(l->buf, '\n', l->len) != NULL;
}

/* count_restored() -- pages libatomio's recovery restored, as the engine reported them. */
static void
count_restored(struct run_state *st)
{
    const char *p = strstr(engine_stderr(st), "recovery: ");
    unsigned long b, t, c, r;
    if (p && sscanf(p, "recovery: %lu batches (%lu torn), %lu pages checked, %lu restored", &b,
                    &t, &c, &r) == 4)
        st->restored += r;
}

/*
 * run_and_kill() -- one engine lifetime: start, let it work until a random instant (sometimes
 * while it is still recovering), SIGKILL, and fold its acknowledgements into the model.
 */
static void
run_and_kill(struct run_state *st, const struct cfg *c, unsigned seed, int iter)
{
    int fd;
    uint64_t start = now_ms();
    pid_t pid = spawn(st, c, "run", seed, &fd);
    struct lines out = {0};
    if (rand() % 4 == 0) {
        /* during startup, so that recovery and redo get interrupted and must restart cleanly:
         * anywhere within the time the previous start took */
        read_until(fd, &out, start + (uint64_t)rand() % (st->ready_ms + 1));
    } else {
        /* wait for "R" (at most 10 s), then let it work for a random stretch */
        while (!is_ready(&out) && now_ms() < start + 10000) {
            read_until(fd, &out, now_ms() + 5);
            int status;
            if (is_ready(&out) || waitpid(pid, &status, WNOHANG) != pid)
                continue;
            cr_assert_fail("iteration %d: pagestore run exited before ready (status 0x%x): "
                           "%s", iter, status, engine_stderr(st));
        }
        cr_assert(is_ready(&out), "iteration %d: pagestore not ready after 10 s: %s", iter,
                  engine_stderr(st));
        st->ready_ms = now_ms() - start;
        read_until(fd, &out, now_ms() + 5 + (uint64_t)(rand() % 150));
    }
    kill(pid, SIGKILL);
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    read_until(fd, &out, 0); /* what was already in the pipe */
    close(fd);

    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "iteration %d: pagestore run stopped on its own (status 0x%x): %s", iter, status,
              engine_stderr(st));
    st->kills++;
    count_restored(st);

    /* Fold acknowledgements into the model; note where the kill landed. */
    int in_ckpt = 0, saw_ready = 0;
    char *save = NULL;
    for (char *line = out.buf ? strtok_r(out.buf, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned a, b;
        char path[64];
        if (sscanf(line, "C %u %u", &a, &b) == 2) {
            cr_assert(a < MAX_KEYS, "key %u out of range", a);
            cr_assert(b == st->model[a] + 1,
                      "iteration %d: key %u acknowledged at version %u, expected %u (the engine "
                      "built on a state we did not see)", iter, a, b, st->model[a] + 1);
            st->model[a] = b;
            st->acks++;
        } else if (sscanf(line, "p %u", &a) == 1) {
            in_ckpt = 1;
        } else if (sscanf(line, "P %u", &a) == 1) {
            in_ckpt = 0;
            st->ckpts++;
        } else if (sscanf(line, "R %63s", path) == 1) {
            saw_ready = 1;
            cr_assert_str_eq(path, c->want_path, "libatomio picked %s for %s, expected %s", path,
                             c->fs, c->want_path);
        }
    }
    st->kills_in_ckpt += in_ckpt;
    st->kills_before_ready += !saw_ready;
    free(out.buf);
}

/*
 * check_store() -- pagestore check: recover, replay twice, parse every page; then compare every
 * key with the model, and take the recovered state as the new model (it is durable now).
 */
static void
check_store(struct run_state *st, const struct cfg *c, int iter, unsigned max_ahead)
{
    int fd;
    pid_t pid = spawn(st, c, "check", 0, &fd);
    struct lines out = {0};
    read_until(fd, &out, 0);
    close(fd);
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "iteration %d: pagestore check failed (status 0x%x): %s", iter, status,
              engine_stderr(st));
    count_restored(st);

    static uint32_t seen[MAX_KEYS];
    memset(seen, 0, sizeof(seen));
    int summary = 0;
    char *save = NULL;
    for (char *line = out.buf ? strtok_r(out.buf, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned k, v;
        if (sscanf(line, "K %u %u", &k, &v) == 2) {
            cr_assert(k < MAX_KEYS, "key %u out of range", k);
            seen[k] = v;
        } else if (line[0] == 'S') {
            summary = 1;
        }
    }
    cr_assert(summary, "iteration %d: pagestore check printed no summary", iter);
    free(out.buf);

    unsigned ahead = 0;
    for (unsigned k = 0; k < MAX_KEYS; k++) {
        cr_assert(seen[k] >= st->model[k],
                  "iteration %d: key %u lost: acknowledged version %u, recovered %u", iter, k,
                  st->model[k], seen[k]);
        cr_assert(seen[k] <= st->model[k] + 1,
                  "iteration %d: key %u recovered at version %u, never written past %u", iter, k,
                  seen[k], st->model[k] + 1);
        ahead += seen[k] != st->model[k];
        st->model[k] = seen[k];
    }
    cr_assert(ahead <= max_ahead, "iteration %d: %u keys ahead of their acknowledgement (at "
              "most %u may be: one writer has at most one commit in flight)", iter, ahead,
              max_ahead);
}

static unsigned
iterations(void)
{
    const char *e = getenv("PAGESTORE_CRASH_ITERS");
    unsigned n = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    return n ? n : 60;
}

static void
crash_loop(const struct cfg *c)
{
    struct run_state st;
    memset(&st, 0, sizeof(st));
    t_fs_mount(&st.fs, c->fs, c->store && strcmp(c->fs, "tmpfs") == 0 ? 96 : 320);
    snprintf(st.db, sizeof(st.db), "%s/db", st.fs.dir);
    snprintf(st.dblwr, sizeof(st.dblwr), "%s/dblwr", st.fs.dir);
    snprintf(st.err_file, sizeof(st.err_file), "%s/engine.err", st.fs.tmp);
    st.model = calloc(MAX_KEYS, sizeof(*st.model));
    cr_assert(st.model != NULL);
    st.ready_ms = 20;

    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *fixed = getenv("PAGESTORE_CRASH_SEED");
    if (fixed)
        seed = (unsigned)strtoul(fixed, NULL, 10);
    srand(seed);
    fprintf(stderr, "pagestore crash test on %s: seed %u (PAGESTORE_CRASH_SEED to repeat)\n",
            c->fs, seed);

    unsigned n = iterations();
    for (unsigned i = 0; i < n; i++) {
        run_and_kill(&st, c, seed + i, (int)i);
        check_store(&st, c, (int)i, 1);
    }
    fprintf(stderr,
            "pagestore crash test on %s: %lu kills (%lu during startup/recovery, %lu inside a "
            "checkpoint), %lu commits acknowledged, %lu checkpoints completed, %lu pages "
            "restored by libatomio recovery\n",
            c->fs, st.kills, st.kills_before_ready, st.kills_in_ckpt, st.acks, st.ckpts,
            st.restored);
    /* Not vacuous: the engine did commit and checkpoint between the kills. */
    cr_assert(st.acks > 0, "no commit was ever acknowledged");
    cr_assert(st.ckpts > 0, "no checkpoint ever completed");
    free(st.model);
    t_fs_umount(&st.fs);
}

/* XFS with reflink: O_DIRECT RWF_ATOMIC (the filesystem's software atomic writes), no store. */
Test(pagestore, kill_loop_xfs_direct_atomic)
{
    crash_loop(&(struct cfg){.fs = "xfs", .store = 0, .io = "any",
                             .want_path = "DIRECT_ATOMIC"});
}

/* ext4, page-cache I/O like PostgreSQL: the doublewrite store. */
Test(pagestore, kill_loop_ext4_doublewrite_buffered)
{
    crash_loop(&(struct cfg){.fs = "ext4", .store = 1, .io = "buffered",
                             .want_path = "DOUBLEWRITE"});
}

/* tmpfs: no atomic writes at all, the doublewrite store again. */
Test(pagestore, kill_loop_tmpfs_doublewrite)
{
    crash_loop(&(struct cfg){.fs = "tmpfs", .store = 1, .io = "any",
                             .want_path = "DOUBLEWRITE"});
}

/* A run that ends on its own shuts down cleanly, and check then finds every commit. */
Test(pagestore, clean_shutdown_xfs)
{
    struct run_state st;
    memset(&st, 0, sizeof(st));
    struct cfg c = {.fs = "xfs", .store = 0, .io = "direct", .want_path = "DIRECT_ATOMIC"};
    t_fs_mount(&st.fs, c.fs, 320);
    snprintf(st.db, sizeof(st.db), "%s/db", st.fs.dir);
    snprintf(st.err_file, sizeof(st.err_file), "%s/engine.err", st.fs.tmp);
    st.model = calloc(MAX_KEYS, sizeof(*st.model));
    cr_assert(st.model != NULL);

    char cmd[PATH_MAX * 4];
    snprintf(cmd, sizeof(cmd), "%s run --dir %s --io direct --ops 500 --ckpt-ms 2 2>%s",
             PAGESTORE_BIN, st.db, st.err_file);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    char line[128];
    while (fgets(line, sizeof(line), p)) {
        unsigned k, v;
        if (sscanf(line, "C %u %u", &k, &v) == 2) {
            cr_assert(k < MAX_KEYS && v == st.model[k] + 1);
            st.model[k] = v;
            st.acks++;
        }
    }
    int status = pclose(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pagestore run: status 0x%x: %s",
              status, engine_stderr(&st));
    cr_assert_eq(st.acks, 500);
    check_store(&st, &c, 0, 0); /* exactly the acknowledged versions: nothing in flight */
    free(st.model);
    t_fs_umount(&st.fs);
}
