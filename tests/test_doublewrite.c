/* SPDX-License-Identifier: MIT */
/*
 * test_doublewrite.c -- the doublewrite store and protocol on the real filesystem under
 * $TMPDIR: store creation, reopen and re-layout, clear errors for bad directories, pages
 * round-tripping through atomio_write and atomio_write_batch (mixed page sizes, duplicates,
 * batches split over segments), the exact order of the protocol's syscalls, counters,
 * parallel segments from several threads, and the failure model (rescue batch, held ids).
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "store/store.h"
#include "t_core.h"
#include "t_store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];
static char dwdir[300];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    t_rmtree(tmp);
}

TestSuite(doublewrite, .init = setup, .fini = teardown);

/* open_ctx() -- a ctx whose store ring is ring_kib KiB (0: the tests' default). */
static atomio_ctx *
open_ctx(uint32_t ring_kib, uint32_t batch, uint32_t maxps, uint32_t flags)
{
    atomio_ctx_opts o = t_ctx_opts(dwdir);
    if (ring_kib)
        o.doublewrite_store_bytes = (uint64_t)ring_kib << 10;
    o.doublewrite_batch_pages = batch;
    o.doublewrite_max_page_size = maxps;
    o.flags = flags;
    return t_ctx_open(&o);
}

static atomio_file *
open_file(atomio_ctx *ctx, const char *name, uint32_t ps, uint64_t id, uint32_t style)
{
    atomio_file_opts fo = t_file_opts(ps, ATOMIO_PATH_DOUBLEWRITE, style, ATOMIO_FILE_CREATE);
    fo.file_id = id;
    atomio_file *f = t_file_open(ctx, t_join(tmp, name), &fo);
    atomio_file_info fi = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &fi), 0);
    cr_assert_eq(fi.path, ATOMIO_PATH_DOUBLEWRITE);
    cr_assert_eq(fi.torn_write_safe, 1);
    return f;
}

static void
check_page(atomio_ctx *ctx, atomio_file *f, uint64_t page_no, uint64_t seed)
{
    uint32_t ps = f->page_size;
    uint8_t *want = malloc(ps);
    uint8_t *got = atomio_page_alloc(ctx, ps, 1);
    t_fill(want, ps, seed);
    cr_assert_eq(atomio_read(f, page_no, got), 0);
    cr_assert_eq(memcmp(want, got, ps), 0, "page %llu of %s is not seed %llu",
                 (unsigned long long)page_no, f->path, (unsigned long long)seed);
    atomio_page_free(ctx, got, ps, 1);
    free(want);
}

struct insp_count {
    int store, files, batches, valid, slots;
    uint64_t ring_size;
    uint8_t uuid[16];
};

static int
count_cb(void *arg, const atomio_inspect_record *r)
{
    struct insp_count *c = arg;
    switch (r->kind) {
    case ATOMIO_INSPECT_STORE:
        c->store++;
        c->ring_size = r->ring_size;
        memcpy(c->uuid, r->uuid, 16);
        break;
    case ATOMIO_INSPECT_FILE:
        c->files++;
        break;
    case ATOMIO_INSPECT_BATCH:
        c->batches++;
        c->valid += r->state == ATOMIO_BATCH_VALID;
        break;
    case ATOMIO_INSPECT_SLOT:
        c->slots++;
        break;
    }
    return 0;
}

static struct insp_count
inspect(void)
{
    struct insp_count c;
    memset(&c, 0, sizeof(c));
    int r = atomio_store_inspect(dwdir, count_cb, &c);
    cr_assert_eq(r, 0, "inspect: %s", atomio_strerror(r));
    return c;
}

Test(doublewrite, store_created_preallocated_and_reopened)
{
    atomio_ctx *ctx = open_ctx(1024, 8, 4096, 0);
    struct stat st;
    cr_assert_eq(stat(t_join(dwdir, ATOMIO_DW_STORE_FILE), &st), 0);
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, 1u << 20, 4096), 0);
    cr_assert_eq((uint64_t)st.st_size, atomio__dw_store_size(&g));
    cr_assert_geq((uint64_t)st.st_blocks * 512, atomio__dw_store_size(&g),
                  "store blocks allocated at open");
    cr_assert_eq(stat(t_join(dwdir, ATOMIO_DW_MANIFEST_FILE), &st), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    struct insp_count a = inspect();
    cr_assert_eq(a.store, 1);
    cr_assert_eq(a.ring_size, 1u << 20);
    cr_assert_eq(a.batches, 0);

    ctx = open_ctx(1024, 8, 4096, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    struct insp_count b = inspect();
    cr_assert_eq(memcmp(a.uuid, b.uuid, 16), 0, "reopen keeps the store");

    /* A clean store takes new geometry from the options. */
    ctx = open_ctx(2048, 4, 16384, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    struct insp_count c = inspect();
    cr_assert_eq(c.ring_size, 2u << 20);
    cr_assert_neq(memcmp(a.uuid, c.uuid, 16), 0, "re-laid store has a new identity");
}

Test(doublewrite, default_store_is_128_mib_of_64_page_records)
{
    atomio_ctx_opts o = t_ctx_opts(dwdir);
    o.doublewrite_store_bytes = 0;
    atomio_ctx *ctx = t_ctx_open(&o);
    cr_assert_eq(ctx->store->g.ring_size, 128u << 20);
    cr_assert_eq(ctx->store->batch_pages, 64);
    cr_assert_eq(ctx->store->g.max_page_size, 16384);
    cr_assert_eq(ctx->store->rec_bytes_max, 64u * 16384);
    atomio_stats s = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.store_bytes, 128u << 20);
    cr_assert_eq(s.attached, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

static int
ctx_open_err(const char *dir)
{
    atomio_ctx_opts o = t_ctx_opts(dir);
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&o, &ctx);
    cr_assert(r < 0 || ctx);
    atomio_ctx_close(ctx);
    return r;
}

Test(doublewrite, bad_directories_give_clear_errors)
{
    cr_assert_eq(ctx_open_err(t_join(tmp, "missing")), -ENOENT);
    int fd = open(t_join(tmp, "plain"), O_CREAT | O_WRONLY, 0600);
    close(fd);
    cr_assert_eq(ctx_open_err(t_join(tmp, "plain")), -ENOTDIR);
    /* Something that is not a store, where the store file goes: refused, never overwritten. */
    fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_CREAT | O_WRONLY, 0600);
    cr_assert_eq(write(fd, "not a doublewrite store, keep me", 32), 32);
    close(fd);
    cr_assert_eq(ctx_open_err(dwdir), ATOMIO_E_STORE);
    struct stat st;
    cr_assert_eq(stat(t_join(dwdir, ATOMIO_DW_STORE_FILE), &st), 0);
    cr_assert_eq(st.st_size, 32);
}

Test(doublewrite, unwritable_directory_is_eacces)
{
    /* Root bypasses permission bits: drop to nobody in a child. */
    cr_assert_eq(chmod(tmp, 0755), 0);
    cr_assert_eq(chmod(dwdir, 0555), 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        int r = ctx_open_err(dwdir);
        _exit(r == -EACCES ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_neq(WEXITSTATUS(status), 3, "could not drop privileges");
    cr_assert_eq(WEXITSTATUS(status), 0, "unwritable dir did not give -EACCES");
}

Test(doublewrite, pages_round_trip_and_store_ends_empty)
{
    atomio_ctx *ctx = open_ctx(0, 8, 16384, 0);
    atomio_file *f = open_file(ctx, "a.db", 4096, 7, ATOMIO_IO_BUFFERED);
    uint8_t *p = (uint8_t *)malloc(4096 + 1) + 1; /* deliberately unaligned: the store copies */
    for (uint64_t i = 0; i < 20; i++) {
        t_fill(p, 4096, 100 + i);
        cr_assert_eq(atomio_write(f, i, p, 0), 0);
    }
    for (uint64_t i = 0; i < 20; i++)
        check_page(ctx, f, i, 100 + i);
    free(p - 1);
    atomio_stats s = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &s), 0);
    cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], 20);
    cr_assert_eq(s.bytes_data, 20 * 4096);
    cr_assert_eq(s.bytes_doublewrite, 20 * 4096);
    cr_assert_eq(s.batches, 20);
    cr_assert_eq(s.syncs, 20, "one data fdatasync per single-page batch");
    atomio_stats c = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &c), 0);
    cr_assert_eq(c.bytes_doublewrite, 20 * (512 + 4096), "a 512-byte header per record");
    cr_assert_eq(c.batches, 20);
    cr_assert_eq(c.syncs, 40, "and one store fdatasync (group commit) per lone record");
    cr_assert_eq(c.group_commits, 20);
    cr_assert_eq(c.store_bytes_used, 0, "every record released: its file is synced");
    struct insp_count ic = inspect();
    cr_assert_eq(ic.files, 1);
    cr_assert_eq(ic.batches, 20, "released records stay readable until overwritten");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    /* A clean close moves the durable tail past them: nothing for recovery to look at. */
    ctx = open_ctx(0, 8, 16384, ATOMIO_CTX_NO_RECOVER);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_eq(rep.batches_scanned, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(doublewrite, batch_of_mixed_page_sizes_split_over_records)
{
    atomio_ctx *ctx = open_ctx(0, 4, 16384, 0);
    atomio_file *a = open_file(ctx, "a.db", 16384, 1, ATOMIO_IO_DIRECT);
    atomio_file *b = open_file(ctx, "b.db", 4096, 2, ATOMIO_IO_BUFFERED);
    atomio_file *c = open_file(ctx, "c.db", 512, 3, ATOMIO_IO_ANY);
    enum { N = 60 };
    atomio_page_write w[N];
    uint8_t *bufs[N];
    atomio_file *files[3] = {a, b, c};
    for (int i = 0; i < N; i++) {
        atomio_file *f = files[i % 3];
        bufs[i] = malloc(f->page_size);
        t_fill(bufs[i], f->page_size, 1000 + (uint64_t)i);
        w[i] = (atomio_page_write){.file = f, .page_no = (uint64_t)i / 3, .page = bufs[i]};
    }
    cr_assert_eq(atomio_write_batch(ctx, w, N, 0), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(w[i].result, 0);
        check_page(ctx, files[i % 3], (uint64_t)i / 3, 1000 + (uint64_t)i);
        free(bufs[i]);
    }
    atomio_stats s = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], N);
    /* 20 pages of 16 KiB + 20 of 4 KiB + 20 of 512 B = 410 KiB in records of 64 KiB */
    cr_assert_geq(s.batches, 7);
    cr_assert_leq(s.batches, 10);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(doublewrite, same_page_twice_in_a_batch_last_wins)
{
    atomio_ctx *ctx = open_ctx(0, 8, 4096, 0);
    atomio_file *f = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    uint8_t *p1 = malloc(4096), *p2 = malloc(4096), *p3 = malloc(4096);
    t_fill(p1, 4096, 1);
    t_fill(p2, 4096, 2);
    t_fill(p3, 4096, 3);
    atomio_page_write w[3] = {{.file = f, .page_no = 5, .page = p1},
                              {.file = f, .page_no = 6, .page = p3},
                              {.file = f, .page_no = 5, .page = p2}};
    cr_assert_eq(atomio_write_batch(ctx, w, 3, 0), 3);
    check_page(ctx, f, 5, 2);
    check_page(ctx, f, 6, 3);
    atomio_stats s = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &s), 0);
    cr_assert_eq(s.pages[ATOMIO_PATH_DOUBLEWRITE], 2, "the superseded copy is not written");
    free(p1), free(p2), free(p3);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- protocol order, observed at the syscall seam --------------------------------------- */

enum { EV_W, EV_S };
struct ev {
    int kind, fd;
    uint64_t off, len;
    int first_nonzero; /* for writes: does the buffer start with non-zero bytes */
};
static struct ev evs[256];
static _Atomic int nev;

static ssize_t
trace_pwritev2(int fd, const struct iovec *iov, int cnt, uint64_t off, int flags)
{
    int i = atomic_fetch_add(&nev, 1);
    uint64_t len = 0;
    for (int k = 0; k < cnt; k++)
        len += iov[k].iov_len;
    if (i < 256)
        evs[i] = (struct ev){EV_W, fd, off, len, ((const uint8_t *)iov[0].iov_base)[0] != 0};
    return atomio__sys_real.pwritev2(fd, iov, cnt, off, flags);
}

static int
trace_fdatasync(int fd)
{
    int i = atomic_fetch_add(&nev, 1);
    if (i < 256)
        evs[i] = (struct ev){EV_S, fd, 0, 0, 0};
    return atomio__sys_real.fdatasync(fd);
}

Test(doublewrite, protocol_order_at_the_syscall_seam)
{
    atomio_ctx *ctx = open_ctx(0, 8, 4096, 0);
    atomio_file *a = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    atomio_file *b = open_file(ctx, "b.db", 4096, 2, ATOMIO_IO_DIRECT);
    uint8_t *p = atomio_page_alloc(ctx, 4096, 3);
    t_fill(p, 3 * 4096, 9);
    atomio_page_write w[3] = {{.file = a, .page_no = 0, .page = p},
                              {.file = b, .page_no = 3, .page = p + 4096},
                              {.file = a, .page_no = 1, .page = p + 8192}};
    uint64_t head = atomio__shared_head(ctx->store);
    atomic_store(&nev, 0);
    atomio__sys.pwritev2 = trace_pwritev2;
    atomio__sys.fdatasync = trace_fdatasync;
    cr_assert_eq(atomio_write_batch(ctx, w, 3, 0), 3);
    atomio__sys = atomio__sys_real;
    int n = atomic_load(&nev);
    int sfd = ctx->store->fd;
    /* 1: one write of the whole record (512-byte header and table + 3 pages) at the head */
    cr_assert_eq(n, 7, "%d events", n);
    cr_assert_eq(evs[0].kind, EV_W);
    cr_assert_eq(evs[0].fd, sfd);
    cr_assert_eq(evs[0].off, atomio__dw_ring_pos(&ctx->store->g, head));
    cr_assert_eq(evs[0].len, 512 + 3 * 4096);
    /* 2: the store made durable before anything in place */
    cr_assert_eq(evs[1].kind, EV_S);
    cr_assert_eq(evs[1].fd, sfd);
    /* 3: the three in-place writes */
    int seen_a = 0, seen_b = 0;
    for (int i = 2; i < 5; i++) {
        cr_assert_eq(evs[i].kind, EV_W);
        cr_assert_eq(evs[i].len, 4096);
        seen_a += evs[i].fd == a->fd;
        seen_b += evs[i].fd == b->fd;
    }
    cr_assert_eq(seen_a, 2);
    cr_assert_eq(seen_b, 1);
    /* 4: each data file made durable; then the record is released without a write */
    int synced_a = 0, synced_b = 0;
    for (int i = 5; i < 7; i++) {
        cr_assert_eq(evs[i].kind, EV_S);
        synced_a += evs[i].fd == a->fd;
        synced_b += evs[i].fd == b->fd;
    }
    cr_assert(synced_a == 1 && synced_b == 1);
    /* 5: the next record goes right after it: no retire, no header, one store sync */
    atomic_store(&nev, 0);
    atomio__sys.pwritev2 = trace_pwritev2;
    atomio__sys.fdatasync = trace_fdatasync;
    cr_assert_eq(atomio_write(a, 7, p, 0), 0);
    atomio__sys = atomio__sys_real;
    n = atomic_load(&nev);
    cr_assert_eq(n, 4, "%d events", n);
    cr_assert(evs[0].kind == EV_W && evs[0].fd == sfd);
    cr_assert_eq(evs[0].off, atomio__dw_ring_pos(&ctx->store->g, head + 512 + 3 * 4096));
    cr_assert_eq(evs[0].len, 512 + 4096);
    cr_assert(evs[1].kind == EV_S && evs[1].fd == sfd);
    cr_assert(evs[2].kind == EV_W && evs[2].fd == a->fd && evs[2].off == 7 * 4096);
    cr_assert(evs[3].kind == EV_S && evs[3].fd == a->fd);
    /* 6: atomio_ctx_sync() writes nothing to the store: nothing waits for a release */
    atomic_store(&nev, 0);
    atomio__sys.pwritev2 = trace_pwritev2;
    atomio__sys.fdatasync = trace_fdatasync;
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    atomio__sys = atomio__sys_real;
    n = atomic_load(&nev);
    for (int i = 0; i < n && i < 256; i++)
        cr_assert(evs[i].fd != sfd, "event %d touched the store", i);
    atomio_page_free(ctx, p, 4096, 3);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- threads: records of different threads share a group commit --------------------------- */

struct thr {
    atomio_ctx *ctx;
    atomio_file *f;
    int id;
    int ok;
};

static int
slow_fdatasync(int fd)
{
    usleep(2000); /* widen the window in which records wait for a group commit */
    return atomio__sys_real.fdatasync(fd);
}

static void *
writer(void *arg)
{
    struct thr *t = arg;
    uint8_t *buf = malloc(16 * 4096);
    atomio_page_write w[16];
    for (int round = 0; round < 6; round++) {
        for (int k = 0; k < 16; k++) {
            uint64_t page = (uint64_t)t->id * 16 + (uint64_t)k;
            t_fill(buf + k * 4096, 4096, page * 100 + (uint64_t)round);
            w[k] = (atomio_page_write){.file = t->f, .page_no = page, .page = buf + k * 4096};
        }
        t->ok += atomio_write_batch(t->ctx, w, 16, 0) == 16;
    }
    free(buf);
    return NULL;
}

static void
threads_case(uint32_t submitter)
{
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = dwdir;
    o.doublewrite_store_bytes = 4u << 20;
    o.doublewrite_batch_pages = 16;
    o.doublewrite_max_page_size = 4096;
    o.submitter = submitter;
    atomio_ctx *ctx = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    atomio_file *f = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    atomio__sys.fdatasync = slow_fdatasync;
    enum { T = 4 };
    pthread_t th[T];
    struct thr t[T];
    for (int i = 0; i < T; i++) {
        t[i] = (struct thr){ctx, f, i, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, writer, &t[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(t[i].ok, 6);
    }
    atomio__sys = atomio__sys_real;
    for (int i = 0; i < T; i++)
        for (uint64_t k = 0; k < 16; k++)
            check_page(ctx, f, (uint64_t)i * 16 + k, ((uint64_t)i * 16 + k) * 100 + 5);
    atomio_stats s = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.batches, T * 6);
    cr_assert_eq(s.group_records, T * 6, "every record made durable by a group commit");
    cr_assert_lt(s.group_commits, s.group_records,
                 "no group commit ever covered records of two threads");
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    s = (atomio_stats){.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.store_bytes_used, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(doublewrite, threads_share_group_commits)
{
    threads_case(ATOMIO_SUBMIT_SYNC);
}

Test(doublewrite, threads_with_the_default_submitter)
{
    /* io_uring when it can be set up: store and in-place writes go through the rings */
    threads_case(ATOMIO_SUBMIT_AUTO);
}

/* ---- recovery gate and failure model ------------------------------------------------------ */

/* Plant a valid one-page record for (file_id, page_no, bytes), ordered by seq, by hand. */
static uint64_t
plant_batch(atomio_ctx *ctx, uint64_t seq, uint64_t file_id, uint64_t page_no,
            const uint8_t *page, uint32_t ps)
{
    uint64_t lsn = t_plant_lsn(&ctx->store->g, seq);
    struct t_plant pl = {file_id, page_no, page};
    t_plant(dwdir, lsn, &pl, 1, ps);
    return lsn;
}

static void
check_bytes(atomio_ctx *ctx, atomio_file *f, uint64_t page_no, const uint8_t *want)
{
    uint32_t ps = f->page_size;
    uint8_t *got = atomio_page_alloc(ctx, ps, 1);
    cr_assert_eq(atomio_read(f, page_no, got), 0);
    cr_assert_eq(memcmp(want, got, ps), 0, "page %llu of %s differs", (unsigned long long)page_no,
                 f->path);
    atomio_page_free(ctx, got, ps, 1);
}

Test(doublewrite, live_batches_block_writes_until_recovery)
{
    atomio_ctx *ctx = open_ctx(0, 8, 4096, 0);
    atomio_file *f = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    uint8_t *p = malloc(4096);
    t_fill(p, 4096, 78);
    cr_assert_eq(atomio_write(f, 2, p, 0), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    ctx = open_ctx(0, 8, 4096, ATOMIO_CTX_NO_RECOVER);
    uint64_t lsn = plant_batch(ctx, 40, 1, 2, p, 4096); /* as if the crash came before release */
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    ctx = open_ctx(0, 8, 4096, ATOMIO_CTX_NO_RECOVER);
    f = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    cr_assert_eq(atomio_write(f, 3, p, 0), ATOMIO_E_SEQUENCE, "writes before recovery");
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_eq(rep.batches_valid, 1);
    cr_assert_eq(rep.pages_checked, 1);
    cr_assert_eq(rep.pages_restored, 0, "the page already holds the copy");
    cr_assert_eq(atomio_write(f, 3, p, 0), 0, "after recovery");
    cr_assert_gt(atomio__shared_head(ctx->store), lsn, "new LSNs continue above what was found");
    free(p);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

static int short_fd = -1;
static uint64_t short_off;

static ssize_t
short_pwritev2(int fd, const struct iovec *iov, int cnt, uint64_t off, int flags)
{
    if (fd == short_fd && off == short_off) {
        struct iovec half = {iov[0].iov_base, iov[0].iov_len / 2};
        return atomio__sys_real.pwritev2(fd, &half, 1, off, flags);
    }
    return atomio__sys_real.pwritev2(fd, iov, cnt, off, flags);
}

Test(doublewrite, short_in_place_write_fails_file_and_keeps_its_copy)
{
    atomio_ctx *ctx = open_ctx(0, 8, 4096, 0);
    atomio_file *a = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    atomio_file *b = open_file(ctx, "b.db", 4096, 2, ATOMIO_IO_BUFFERED);
    uint8_t *p = malloc(3 * 4096);
    t_fill(p, 3 * 4096, 5);
    atomio_page_write w[3] = {{.file = a, .page_no = 0, .page = p},
                              {.file = b, .page_no = 1, .page = p + 4096},
                              {.file = a, .page_no = 2, .page = p + 8192}};
    short_fd = a->fd;
    short_off = 2 * 4096;
    atomio__sys.pwritev2 = short_pwritev2;
    cr_assert_eq(atomio_write_batch(ctx, w, 3, 0), 2);
    atomio__sys = atomio__sys_real;
    cr_assert_eq(w[0].result, 0);
    cr_assert_eq(w[1].result, 0);
    cr_assert_eq(w[2].result, ATOMIO_E_SHORT_WRITE);
    atomio_file_info fi = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(a, &fi), 0);
    cr_assert_eq(fi.state, ATOMIO_STATE_FAILED);
    cr_assert_eq(atomio_write(a, 5, p, 0), ATOMIO_E_FAILED);
    cr_assert_eq(atomio_write(b, 5, p, 0), 0, "other files are not affected");
    atomio_stats s = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(a, &s), 0);
    cr_assert_eq(s.short_writes, 1);

    /* The store holds the record until recovery: nothing releases it, not even a sync. */
    cr_assert_eq(atomio_ctx_sync(ctx), ATOMIO_E_FAILED, "file a is failed");
    atomio_stats cs = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_geq(cs.store_bytes_used, 512 + 3 * 4096, "the held record is kept");
    /* A new handle on the failed file is refused until recovery... */
    cr_assert_eq(atomio_file_close(a), 0);
    a = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    cr_assert_eq(atomio_write(a, 5, p, 0), ATOMIO_E_FAILED);
    /* ...which restores the half-written page from the held copy. */
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_geq(rep.pages_checked, 3);
    cr_assert_eq(rep.pages_restored, 1);
    check_bytes(ctx, a, 2, p + 8192);
    check_bytes(ctx, a, 0, p);
    check_bytes(ctx, b, 1, p + 4096);
    cr_assert_eq(atomio_write(a, 5, p, 0), 0, "recovery releases the held file");
    cr_assert_eq(atomio_ctx_sync(ctx), 0);
    cs = (atomio_stats){.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.store_bytes_used, 0);
    free(p);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(doublewrite, held_records_fill_the_ring_until_recovery)
{
    /* A held record stops the tail: once the ring has gone round to it, the store takes
     * nothing more (ATOMIO_E_STORE_FULL) until recovery; other files write until then. */
    atomio_ctx *ctx = open_ctx(256, 8, 4096, 0);
    atomio_file *a = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    atomio_file *b = open_file(ctx, "b.db", 4096, 2, ATOMIO_IO_BUFFERED);
    uint8_t *p = malloc(2 * 4096);
    t_fill(p, 2 * 4096, 11);
    atomio_page_write w[2] = {{.file = a, .page_no = 0, .page = p},
                              {.file = b, .page_no = 0, .page = p + 4096}};
    short_fd = a->fd;
    short_off = 0;
    atomio__sys.pwritev2 = short_pwritev2;
    cr_assert_eq(atomio_write_batch(ctx, w, 2, 0), 1);
    atomio__sys = atomio__sys_real;
    cr_assert_eq(w[0].result, ATOMIO_E_SHORT_WRITE);
    cr_assert_eq(w[1].result, 0);
    cr_assert_eq(atomio_write(b, 1, p, 0), 0, "only the failed file is refused");
    int r = 0, n = 0;
    for (; n < 200 && r == 0; n++)
        r = atomio_write(b, 2 + (uint64_t)n % 8, p, 0);
    cr_assert_eq(r, ATOMIO_E_STORE_FULL, "after %d writes: %s", n, atomio_err_name(r));
    cr_assert_gt(n, 20, "the ring held many records before it filled");
    atomio_recovery_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.size = sizeof(rep);
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), 0);
    cr_assert_eq(rep.pages_restored, 1);
    check_bytes(ctx, a, 0, p);
    check_bytes(ctx, b, 0, p + 4096);
    cr_assert_eq(atomio_write(b, 1, p, 0), 0);
    cr_assert_eq(atomio_write(a, 1, p, 0), ATOMIO_E_FAILED, "a failed handle stays failed");
    cr_assert_eq(atomio_file_close(a), 0);
    a = open_file(ctx, "a.db", 4096, 1, ATOMIO_IO_BUFFERED);
    cr_assert_eq(atomio_write(a, 1, p, 0), 0, "a new handle after recovery writes");
    free(p);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(doublewrite, page_larger_than_the_store_takes)
{
    atomio_ctx *ctx = open_ctx(0, 1, 512, 0); /* records of one 512-byte page */
    /* Refused at open, with a reason, rather than failing every later write. */
    atomio_file_opts fo = ATOMIO_FILE_OPTS_INIT;
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = 16384;
    fo.path = ATOMIO_PATH_DOUBLEWRITE;
    fo.io_style = ATOMIO_IO_BUFFERED;
    atomio_file *f = NULL;
    cr_assert_eq(atomio_file_open(ctx, t_join(tmp, "big.db"), &fo, &f), ATOMIO_E_NO_DOUBLEWRITE);
    cr_assert_null(f);
    uint8_t *p = calloc(1, 16384);
    atomio_file *g = open_file(ctx, "small.db", 512, 2, ATOMIO_IO_BUFFERED);
    cr_assert_eq(atomio_write(g, 3, p, 0), 0);
    free(p);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
