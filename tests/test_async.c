/* SPDX-License-Identifier: MIT */
/*
 * test_async.c -- the io_uring submitter. At the submitter seam (ctx->submit on atomio_io
 * records, files in a scratch dir): batches of 1, exactly the queue depth and beyond it (how
 * many were in flight at once and how many io_uring_enter calls it took), several files in one
 * batch, a bad entry among good ones, short and -EAGAIN completions, ring setup failing (test
 * hook, and a real seccomp filter) with a visible fallback, per-thread rings and their reuse.
 * Through the public API on loop-mounted XFS and ext4: RWF_ATOMIC batches, mixed files and
 * paths in one atomio_write_batch(), invalid entries that leave nothing half-written.
 */
#include "helpers.h"
#include "submit_uring.h"
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PS 4096u

static char scratch[PATH_MAX];

static void
scratch_init(void)
{
    unsetenv("ATOMIO_SUBMITTER");
    unsetenv("ATOMIO_PATH");
    atomio__uring_fail_setup = 0;
    atomio__uring_inject_eagain = 0;
    t_tmpdir(scratch, sizeof(scratch));
}

static void
scratch_fini(void)
{
    t_rmtree(scratch);
}

/* Skip unless this process may create an io_uring at all (seccomp'd CI containers may not). */
static void
need_uring(void)
{
    struct io_uring ring;
    int r = io_uring_queue_init(4, &ring, 0);
    if (r < 0)
        cr_skip_test("skipped: io_uring unavailable here (io_uring_queue_init: %s)",
                     strerror(-r));
    io_uring_queue_exit(&ring);
}

static atomio_ctx *
open_ctx(uint32_t submitter, uint32_t qd)
{
    atomio_ctx_opts o = t_ctx_opts(NULL);
    o.submitter = submitter;
    o.queue_depth = qd;
    return t_ctx_open(&o);
}

static atomio_ctx *
open_uring_ctx(uint32_t qd)
{
    need_uring();
    atomio_ctx *ctx = open_ctx(ATOMIO_SUBMIT_URING, qd);
    cr_assert_eq(ctx->submit, &atomio__submit_uring, "io_uring not used (err %d)", ctx->uring_err);
    return ctx;
}

static int
scratch_file(const char *name, int flags)
{
    int fd = open(t_join(scratch, name), O_RDWR | O_CREAT | O_TRUNC | flags, 0600);
    cr_assert_geq(fd, 0, "open %s: %s", name, strerror(errno));
    return fd;
}

static struct atomio_uring_diag
diag_of(atomio_ctx *ctx)
{
    struct atomio_uring_diag d;
    cr_assert_eq(atomio__uring_diag(ctx, &d), 0);
    return d;
}

/* n writes of distinct pages (page i at offset i * PS of fd), buffers from the page allocator. */
static struct atomio_io *
make_ios(atomio_ctx *ctx, int fd, size_t n, uint64_t seed, unsigned char **bufs)
{
    struct atomio_io *ios = calloc(n, sizeof(*ios));
    cr_assert_not_null(ios);
    *bufs = atomio_page_alloc(ctx, PS, n);
    cr_assert_not_null(*bufs);
    for (size_t i = 0; i < n; i++) {
        t_fill(*bufs + i * PS, PS, seed + i);
        ios[i] = (struct atomio_io){.fd = fd, .buf = *bufs + i * PS, .len = PS, .off = i * PS};
    }
    return ios;
}

/* pread through a buffered fd on the same file (the test's fd may be O_DIRECT). */
static ssize_t
read_plain(int fd, void *buf, uint64_t off)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int rfd = open(proc, O_RDONLY);
    cr_assert_geq(rfd, 0, "reopen %s: %s", proc, strerror(errno));
    ssize_t r = pread(rfd, buf, PS, (off_t)off);
    close(rfd);
    return r;
}

static void
assert_page(int fd, uint64_t off, uint64_t seed)
{
    unsigned char want[PS], got[PS];
    t_fill(want, PS, seed);
    cr_assert_eq(read_plain(fd, got, off), (ssize_t)PS, "read back at %llu",
                 (unsigned long long)off);
    cr_assert(memcmp(want, got, PS) == 0, "page at %llu differs", (unsigned long long)off);
}

static void
assert_zero_page(int fd, uint64_t off)
{
    unsigned char got[PS], zero[PS] = {0};
    ssize_t r = read_plain(fd, got, off);
    cr_assert(r == 0 || (r == (ssize_t)PS && memcmp(got, zero, PS) == 0),
              "page at %llu was written", (unsigned long long)off);
}

/* One batch of n through a ring of depth qd: every write lands, and the figures show how. */
static void
batch_case(uint32_t qd, size_t n)
{
    atomio_ctx *ctx = open_uring_ctx(qd);
    int fd = scratch_file("f", 0);
    unsigned char *bufs;
    struct atomio_io *ios = make_ios(ctx, fd, n, 100, &bufs);
    cr_assert_eq(ctx->submit->submit(ctx, ios, n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ios[i].res, (ssize_t)PS, "io %zu: %zd", i, ios[i].res);
    for (size_t i = 0; i < n; i++)
        assert_page(fd, i * PS, 100 + i);

    struct atomio_uring_diag d = diag_of(ctx);
    cr_assert_eq(d.queue_depth, qd);
    cr_assert_eq(d.batches, 1);
    cr_assert_eq(d.max_inflight, n < qd ? n : qd, "max in flight %u for %zu writes at qd %u",
                 d.max_inflight, n, qd);
    if (d.setup_flags & IORING_SETUP_SUBMIT_ALL) {
        if (n <= qd) /* submitted and reaped together: one system call */
            cr_assert_eq(d.enters, 1, "%llu io_uring_enter calls", (unsigned long long)d.enters);
        else
            cr_assert_geq(d.enters, (n + qd - 1) / qd);
    }
    cr_assert_eq(d.sync_ios, 0);
    atomio_page_free(ctx, bufs, PS, n);
    free(ios);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

TestSuite(uring, .init = scratch_init, .fini = scratch_fini);

Test(uring, auto_uses_io_uring_when_it_can)
{
    need_uring();
    atomio_ctx *ctx = open_ctx(ATOMIO_SUBMIT_AUTO, 0);
    cr_assert_eq(ctx->submit, &atomio__submit_uring);
    cr_assert_not(ctx->uring_fallback);
    cr_assert_eq(diag_of(ctx).queue_depth, 32, "default queue depth");
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.uring_fallbacks, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, batch_of_one)
{
    batch_case(32, 1);
}

Test(uring, batch_of_queue_depth)
{
    batch_case(32, 32);
}

Test(uring, batch_beyond_queue_depth)
{
    batch_case(8, 100);
}

Test(uring, many_files_and_flags_in_one_batch)
{
    atomio_ctx *ctx = open_uring_ctx(16);
    int fds[3] = {scratch_file("a", 0), scratch_file("b", O_DIRECT), scratch_file("c", 0)};
    enum { N = 30 };
    unsigned char *bufs = atomio_page_alloc(ctx, PS, N);
    cr_assert_not_null(bufs);
    struct atomio_io ios[N];
    for (size_t i = 0; i < N; i++) {
        t_fill(bufs + i * PS, PS, 7000 + i);
        ios[i] = (struct atomio_io){.fd = fds[i % 3], .buf = bufs + i * PS, .len = PS,
                                    .off = (i / 3) * PS, .rwflags = i % 3 == 2 ? RWF_DSYNC : 0};
    }
    cr_assert_eq(ctx->submit->submit(ctx, ios, N), 0);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(ios[i].res, (ssize_t)PS, "io %zu: %zd", i, ios[i].res);
        assert_page(fds[i % 3], (i / 3) * PS, 7000 + i);
    }
    atomio_page_free(ctx, bufs, PS, N);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, bad_entries_reported_individually)
{
    atomio_ctx *ctx = open_uring_ctx(32);
    int fd = scratch_file("d", O_DIRECT);
    enum { N = 10 };
    unsigned char *bufs;
    struct atomio_io *ios = make_ios(ctx, fd, N, 300, &bufs);
    ios[3].fd = 12345;      /* not an open fd */
    ios[6].off = 6 * PS + 1; /* no device takes O_DIRECT at an odd offset */
    cr_assert_eq(ctx->submit->submit(ctx, ios, N), 0);
    for (size_t i = 0; i < N; i++) {
        if (i == 3)
            cr_assert_eq(ios[i].res, -EBADF, "io 3: %zd", ios[i].res);
        else if (i == 6)
            cr_assert_eq(ios[i].res, -EINVAL, "io 6: %zd", ios[i].res);
        else
            cr_assert_eq(ios[i].res, (ssize_t)PS, "io %zu: %zd", i, ios[i].res);
    }
    for (size_t i = 0; i < N; i++) {
        if (i == 3 || i == 6)
            assert_zero_page(fd, i * PS);
        else
            assert_page(fd, i * PS, 300 + i);
    }
    atomio_page_free(ctx, bufs, PS, N);
    free(ios);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, short_completion_reported_as_is)
{
    atomio_ctx *ctx = open_uring_ctx(8);
    int fd = scratch_file("s", 0);
    signal(SIGXFSZ, SIG_IGN);
    /* The file may not grow past 1.5 pages: the write of page 1 stops half-way. */
    struct rlimit rl = {PS + PS / 2, PS + PS / 2};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    unsigned char *bufs;
    struct atomio_io *ios = make_ios(ctx, fd, 2, 500, &bufs);
    cr_assert_eq(ctx->submit->submit(ctx, ios, 2), 0);
    cr_assert_eq(ios[0].res, (ssize_t)PS);
    cr_assert_eq(ios[1].res, (ssize_t)(PS / 2), "short write became %zd", ios[1].res);
    cr_assert_eq(diag_of(ctx).eagain_resubmits, 0);
    atomio_page_free(ctx, bufs, PS, 2);
    free(ios);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* Can this kernel complete a NOP with an injected result (6.9+)? */
static bool
nop_inject_works(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(2, &ring, 0) < 0)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    sqe->rw_flags = 1; /* IORING_NOP_INJECT_RESULT */
    sqe->len = (unsigned)-EAGAIN;
    struct io_uring_cqe *cqe;
    bool ok = io_uring_submit_and_wait(&ring, 1) == 1 && io_uring_peek_cqe(&ring, &cqe) == 0 &&
              cqe->res == -EAGAIN;
    io_uring_queue_exit(&ring);
    return ok;
}

Test(uring, eagain_completion_resubmits_whole_write)
{
    atomio_ctx *ctx = open_uring_ctx(4);
    if (!nop_inject_works())
        cr_skip_test("skipped: kernel cannot inject NOP results (needs 6.9+)");
    int fd = scratch_file("e", 0);
    enum { N = 10 };
    unsigned char *bufs;
    struct atomio_io *ios = make_ios(ctx, fd, N, 900, &bufs);
    atomio__uring_inject_eagain = 5; /* the first five writes first complete with -EAGAIN */
    cr_assert_eq(ctx->submit->submit(ctx, ios, N), 0);
    cr_assert_eq(atomio__uring_inject_eagain, 0);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(ios[i].res, (ssize_t)PS, "io %zu: %zd", i, ios[i].res);
        assert_page(fd, i * PS, 900 + i);
    }
    struct atomio_uring_diag d = diag_of(ctx);
    cr_assert_eq(d.eagain_resubmits, 5);
    cr_assert_leq(d.max_inflight, 4, "resubmission overran the queue depth");
    atomio_page_free(ctx, bufs, PS, N);
    free(ios);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* Fallback is visible everywhere: ctx, stats, file info; and writes still work. */
static void
assert_fallback(atomio_ctx *ctx, int err)
{
    cr_assert_eq(ctx->submit, &atomio__submit_sync);
    cr_assert(ctx->uring_fallback);
    cr_assert_eq(ctx->uring_err, err, "uring_err %d, want %d", ctx->uring_err, err);
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.uring_fallbacks, 1);

    atomio_file_opts fo = ATOMIO_FILE_OPTS_INIT;
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = PS;
    fo.path = ATOMIO_PATH_UNSAFE;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, t_join(scratch, "fb"), &fo, &f);
    cr_assert_eq(r, 0, "file open: %s", atomio_strerror(r));
    atomio_file_info info = {.size = sizeof(info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.submitter, ATOMIO_SUBMIT_SYNC);
    cr_assert_eq(info.uring_fallback, 1);

    unsigned char *pg = atomio_page_alloc(ctx, PS, 1);
    t_fill(pg, PS, 42);
    cr_assert_eq(atomio_write(f, 3, pg, 0), 0);
    unsigned char *back = atomio_page_alloc(ctx, PS, 1);
    cr_assert_eq(atomio_read(f, 3, back), 0);
    cr_assert(memcmp(pg, back, PS) == 0);
    atomio_page_free(ctx, pg, PS, 1);
    atomio_page_free(ctx, back, PS, 1);
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(uring, setup_failure_falls_back_visibly)
{
    static const int errs[] = {-EPERM, -ENOSYS, -ENOMEM, -EMFILE};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        atomio__uring_fail_setup = errs[i];
        for (uint32_t sub = ATOMIO_SUBMIT_AUTO; sub <= ATOMIO_SUBMIT_URING; sub++) {
            atomio_ctx *ctx = open_ctx(sub, 0);
            assert_fallback(ctx, errs[i]);
            cr_assert_eq(atomio_ctx_close(ctx), 0);
        }
    }
}

/* Install a seccomp filter: io_uring_setup(2) fails with EPERM, as in a default container. */
static void
seccomp_deny_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0, "seccomp: %s",
                 strerror(errno));
}

Test(uring, seccomp_denied_io_uring_falls_back)
{
#if !defined(__x86_64__)
    cr_skip_test("skipped: the seccomp filter in this test is written for x86_64");
#endif
    seccomp_deny_io_uring(); /* this test process only: Criterion forks per test */
    struct io_uring ring;
    cr_assert_eq(io_uring_queue_init(4, &ring, 0), -EPERM, "filter not in force");
    atomio_ctx *ctx = open_ctx(ATOMIO_SUBMIT_AUTO, 0);
    assert_fallback(ctx, -EPERM);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, option_and_environment_choose_the_submitter)
{
    need_uring();
    atomio_ctx *ctx = open_ctx(ATOMIO_SUBMIT_SYNC, 0);
    cr_assert_eq(ctx->submit, &atomio__submit_sync);
    cr_assert_not(ctx->uring_fallback, "choosing pwritev2 is not a fallback");
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    setenv("ATOMIO_SUBMITTER", "sync", 1);
    ctx = open_ctx(ATOMIO_SUBMIT_URING, 0);
    cr_assert_eq(ctx->submit, &atomio__submit_sync);
    cr_assert_not(ctx->uring_fallback);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    setenv("ATOMIO_SUBMITTER", "uring", 1);
    ctx = open_ctx(ATOMIO_SUBMIT_SYNC, 0);
    cr_assert_eq(ctx->submit, &atomio__submit_uring);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    unsetenv("ATOMIO_SUBMITTER");
}

struct one_write {
    atomio_ctx *ctx;
    int fd;
    uint64_t page;
    pthread_barrier_t *bar;
    ssize_t res;
};

static void *
write_one(void *argp)
{
    struct one_write *a = argp;
    unsigned char *pg = atomio_page_alloc(a->ctx, PS, 1);
    t_fill(pg, PS, a->page);
    struct atomio_io io = {.fd = a->fd, .buf = pg, .len = PS, .off = a->page * PS};
    if (a->bar)
        pthread_barrier_wait(a->bar); /* all threads hold a ring at once */
    a->ctx->submit->submit(a->ctx, &io, 1);
    if (a->bar)
        pthread_barrier_wait(a->bar);
    a->res = io.res;
    atomio_page_free(a->ctx, pg, PS, 1);
    return NULL;
}

Test(uring, one_ring_per_thread_reused_after_thread_exit)
{
    atomio_ctx *ctx = open_uring_ctx(8);
    int fd = scratch_file("t", 0);
    /* Ten threads one after another: each takes the ring the previous one gave back. */
    for (uint64_t i = 0; i < 10; i++) {
        struct one_write a = {ctx, fd, i, NULL, 0};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, write_one, &a), 0);
        pthread_join(t, NULL);
        cr_assert_eq(a.res, (ssize_t)PS);
    }
    cr_assert_eq(diag_of(ctx).rings, 1, "rings not reused across threads");
    /* Three at once: three rings. */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 3);
    struct one_write a[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (struct one_write){ctx, fd, 20 + (uint64_t)i, &bar, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, write_one, &a[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].res, (ssize_t)PS);
    }
    pthread_barrier_destroy(&bar);
    cr_assert_eq(diag_of(ctx).rings, 3);
    for (uint64_t i = 0; i < 10; i++)
        assert_page(fd, i * PS, i);
    for (uint64_t i = 20; i < 23; i++)
        assert_page(fd, i * PS, i);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, thread_without_a_ring_falls_back_alone)
{
    atomio_ctx *ctx = open_uring_ctx(8);
    int fd = scratch_file("u", 0);
    /* The main thread takes the ctx's first ring ... */
    struct one_write a = {ctx, fd, 0, NULL, 0};
    write_one(&a);
    cr_assert_eq(a.res, (ssize_t)PS);
    /* ... then ring setup starts failing (a ring limit): a new thread uses pwritev2. */
    atomio__uring_fail_setup = -ENOMEM;
    struct one_write b = {ctx, fd, 1, NULL, 0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, write_one, &b), 0);
    pthread_join(t, NULL);
    atomio__uring_fail_setup = 0;
    cr_assert_eq(b.res, (ssize_t)PS);
    struct atomio_uring_diag d = diag_of(ctx);
    cr_assert_eq(d.thread_fallbacks, 1);
    cr_assert_eq(d.sync_ios, 1);
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.uring_fallbacks, 1, "a thread's fallback is counted");
    assert_page(fd, 0, 0);
    assert_page(fd, PS, 1);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(uring, forked_child_never_submits_on_inherited_rings)
{
    atomio_ctx *ctx = open_uring_ctx(8);
    int fd = scratch_file("k", 0);
    struct one_write a = {ctx, fd, 0, NULL, 0};
    write_one(&a); /* the parent holds a ring now */
    cr_assert_eq(a.res, (ssize_t)PS);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The inherited ctx writes through pwritev2: its rings are the parent's. */
        struct one_write c = {ctx, fd, 1, NULL, 0};
        write_one(&c);
        struct atomio_uring_diag d;
        if (c.res != (ssize_t)PS || atomio__uring_diag(ctx, &d) != 0 || d.sync_ios != 1)
            _exit(1);
        /* A ctx the child opens itself has rings of its own. */
        atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
        o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
        o.submitter = ATOMIO_SUBMIT_URING;
        atomio_ctx *mine = NULL;
        if (atomio_ctx_open(&o, &mine) != 0 || mine->submit != &atomio__submit_uring)
            _exit(2);
        struct one_write e = {mine, fd, 2, NULL, 0};
        write_one(&e);
        if (e.res != (ssize_t)PS || atomio__uring_diag(mine, &d) != 0 || d.sync_ios != 0 ||
            d.batches != 1)
            _exit(3);
        _exit(atomio_ctx_close(mine) == 0 ? 0 : 4);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status %#x", st);
    /* The parent's ring is intact. */
    struct one_write b = {ctx, fd, 3, NULL, 0};
    write_one(&b);
    cr_assert_eq(b.res, (ssize_t)PS);
    struct atomio_uring_diag d = diag_of(ctx);
    cr_assert_eq(d.sync_ios, 0);
    cr_assert_eq(d.batches, 2);
    for (uint64_t i = 0; i < 4; i++)
        assert_page(fd, i * PS, i);
    close(fd);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- through the public API on real filesystems ---------------------------------------- */

static atomio_file *
open_file(atomio_ctx *ctx, const char *path, uint32_t page_size, uint32_t forced)
{
    atomio_file_opts fo = t_file_opts(page_size, forced, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, path, &fo, &f);
    if (r == ATOMIO_E_PATH_UNSUPPORTED && forced == ATOMIO_PATH_DIRECT_ATOMIC)
        cr_skip_test("skipped: %s cannot do O_DIRECT RWF_ATOMIC here (kernel < 6.11?)", path);
    cr_assert_eq(r, 0, "open %s: %s", path, atomio_strerror(r));
    atomio_file_info info = {.size = sizeof(info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, forced);
    cr_assert_eq(info.submitter, ATOMIO_SUBMIT_URING);
    cr_assert_eq(info.uring_fallback, 0);
    return f;
}

static void
read_back(atomio_file *f, uint32_t ps, uint64_t page_no, uint64_t seed, bool written)
{
    unsigned char *got = atomio_page_alloc(f->ctx, ps, 1);
    unsigned char *want = malloc(ps);
    cr_assert_eq(atomio_read(f, page_no, got), 0);
    if (written)
        t_fill(want, ps, seed);
    else
        memset(want, 0, ps);
    cr_assert(memcmp(got, want, ps) == 0, "page %llu %s", (unsigned long long)page_no,
              written ? "is not the new content" : "was written");
    free(want);
    atomio_page_free(f->ctx, got, ps, 1);
}

Test(uring_fs, atomic_batches_on_xfs)
{
    struct t_fs xfs;
    t_fs_mount(&xfs, "xfs", 300);
    atomio_ctx *ctx = open_uring_ctx(32);
    const uint32_t ps = 16384;
    atomio_file *f = open_file(ctx, t_join(xfs.dir, "data"), ps, ATOMIO_PATH_DIRECT_ATOMIC);
    const size_t sizes[] = {1, 32, 100};
    uint64_t base = 0;
    for (size_t s = 0; s < 3; s++) {
        size_t n = sizes[s];
        unsigned char *bufs = atomio_page_alloc(ctx, ps, n);
        atomio_page_write *w = calloc(n, sizeof(*w));
        for (size_t i = 0; i < n; i++) {
            t_fill(bufs + i * ps, ps, base + i);
            w[i] = (atomio_page_write){.file = f, .page_no = base + i, .page = bufs + i * ps};
        }
        cr_assert_eq(atomio_write_batch(ctx, w, n, 0), (int)n);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(w[i].result, 0, "entry %zu: %s", i, atomio_strerror(w[i].result));
        for (size_t i = 0; i < n; i++)
            read_back(f, ps, base + i, base + i, true);
        struct atomio_uring_diag d = diag_of(ctx);
        cr_assert_eq(d.max_inflight, n < 32 ? (unsigned)n : 32u);
        base += n;
        free(w);
        atomio_page_free(ctx, bufs, ps, n);
    }
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_file_get_stats(f, &st), 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_DIRECT_ATOMIC], 133);
    cr_assert_eq(atomio_sync(f), 0);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_fs_umount(&xfs);
}

Test(uring_fs, mixed_files_and_paths_in_one_batch)
{
    struct t_fs xfs, ext4;
    t_fs_mount(&xfs, "xfs", 300);
    t_fs_mount(&ext4, "ext4", 64);
    atomio_ctx *ctx = open_uring_ctx(32);
    const uint32_t ps = 4096;
    atomio_file *f[3] = {
        open_file(ctx, t_join(xfs.dir, "atomic"), ps, ATOMIO_PATH_DIRECT_ATOMIC),
        open_file(ctx, t_join(xfs.dir, "plain"), ps, ATOMIO_PATH_UNSAFE),
        open_file(ctx, t_join(ext4.dir, "plain"), ps, ATOMIO_PATH_UNSAFE),
    };
    enum { N = 60 };
    unsigned char *bufs = atomio_page_alloc(ctx, ps, N);
    atomio_page_write w[N];
    for (size_t i = 0; i < N; i++) {
        t_fill(bufs + i * ps, ps, 5000 + i);
        w[i] = (atomio_page_write){.file = f[i % 3], .page_no = i / 3, .page = bufs + i * ps};
    }
    cr_assert_eq(atomio_write_batch(ctx, w, N, 0), N);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(w[i].result, 0, "entry %zu: %s", i, atomio_strerror(w[i].result));
        read_back(f[i % 3], ps, i / 3, 5000 + i, true);
    }
    struct atomio_uring_diag d = diag_of(ctx);
    cr_assert_eq(d.max_inflight, 32, "the batch did not go in flight together");
    atomio_stats st = {.size = sizeof(st)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_DIRECT_ATOMIC], N / 3);
    cr_assert_eq(st.pages[ATOMIO_PATH_UNSAFE], 2 * N / 3);
    atomio_page_free(ctx, bufs, ps, N);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomio_file_close(f[i]), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_fs_umount(&ext4);
    t_fs_umount(&xfs);
}

Test(uring_fs, invalid_entries_leave_nothing_half_written)
{
    struct t_fs xfs;
    t_fs_mount(&xfs, "xfs", 300);
    atomio_ctx *ctx = open_uring_ctx(32);
    const uint32_t ps = 16384;
    atomio_file *f = open_file(ctx, t_join(xfs.dir, "data"), ps, ATOMIO_PATH_DIRECT_ATOMIC);
    enum { N = 12 };
    unsigned char *bufs = atomio_page_alloc(ctx, ps, N + 2);
    atomio_page_write w[N];
    for (size_t i = 0; i < N; i++) {
        t_fill(bufs + i * ps, ps, 800 + i);
        w[i] = (atomio_page_write){.file = f, .page_no = i, .page = bufs + i * ps};
    }
    /* misaligned for O_DIRECT: not invalid, copied through an aligned bounce buffer */
    w[2].page = bufs + N * ps + 512;
    t_fill(bufs + N * ps + 512, ps, 802);
    w[5].page = NULL;
    w[7].page_no = UINT64_MAX; /* beyond any offset */
    w[9].file = NULL;
    cr_assert_eq(atomio_write_batch(ctx, w, N, 0), N - 3);
    cr_assert_eq(w[2].result, 0, "bounced entry: %s", atomio_strerror(w[2].result));
    cr_assert_eq(w[5].result, ATOMIO_E_INVAL);
    cr_assert_eq(w[7].result, ATOMIO_E_RANGE);
    cr_assert_eq(w[9].result, ATOMIO_E_INVAL);
    for (size_t i = 0; i < N; i++) {
        bool bad = i == 5 || i == 7 || i == 9;
        if (!bad)
            cr_assert_eq(w[i].result, 0, "entry %zu: %s", i, atomio_strerror(w[i].result));
        read_back(f, ps, i, 800 + i, !bad);
    }
    atomio_file_info info = {.size = sizeof(info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.state, ATOMIO_STATE_OK, "a rejected entry must not fail the file");
    atomio_page_free(ctx, bufs, ps, N + 2);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_fs_umount(&xfs);
}

Test(uring_fs, short_write_fails_only_its_file)
{
    struct t_fs ext4;
    t_fs_mount(&ext4, "ext4", 64);
    atomio_ctx *ctx = open_uring_ctx(32);
    const uint32_t ps = 4096;
    atomio_file *a = open_file(ctx, t_join(ext4.dir, "a"), ps, ATOMIO_PATH_UNSAFE);
    atomio_file *b = open_file(ctx, t_join(ext4.dir, "b"), ps, ATOMIO_PATH_UNSAFE);
    unsigned char *bufs = atomio_page_alloc(ctx, ps, 4);
    for (size_t i = 0; i < 4; i++)
        t_fill(bufs + i * ps, ps, 60 + i);
    signal(SIGXFSZ, SIG_IGN);
    /* Files may not grow past 8 KiB + 1 KiB: page 2 of a crosses it. */
    struct rlimit rl = {2 * ps + 1024, 2 * ps + 1024};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    atomio_page_write w[4] = {
        {.file = a, .page_no = 0, .page = bufs},
        {.file = a, .page_no = 2, .page = bufs + ps},
        {.file = b, .page_no = 0, .page = bufs + 2 * ps},
        {.file = b, .page_no = 1, .page = bufs + 3 * ps},
    };
    cr_assert_eq(atomio_write_batch(ctx, w, 4, 0), 3);
    cr_assert_eq(w[1].result, ATOMIO_E_SHORT_WRITE, "%s", atomio_strerror(w[1].result));
    cr_assert_eq(w[0].result, 0);
    cr_assert_eq(w[2].result, 0);
    cr_assert_eq(w[3].result, 0);
    atomio_file_info info = {.size = sizeof(info)};
    cr_assert_eq(atomio_file_get_info(a, &info), 0);
    cr_assert_eq(info.state, ATOMIO_STATE_FAILED);
    cr_assert_eq(atomio_file_get_info(b, &info), 0);
    cr_assert_eq(info.state, ATOMIO_STATE_OK);
    cr_assert_eq(atomio_write(a, 0, bufs, 0), ATOMIO_E_FAILED);
    cr_assert_eq(diag_of(ctx).eagain_resubmits, 0, "a short write was retried");
    atomio_page_free(ctx, bufs, ps, 4);
    atomio_file_close(a);
    cr_assert_eq(atomio_file_close(b), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    t_fs_umount(&ext4);
}
