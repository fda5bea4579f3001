/* SPDX-License-Identifier: MIT */
/*
 * test_recovery.c -- recovery from the doublewrite store on real files: hand-made torn pages
 * restored (by atomio_ctx_recover and by ctx open), torn batches ignored, the newest copy
 * winning, the engine's verify() callback (intact, restorable, unrecoverable), missing files
 * and unknown ids reported but not fatal, idempotence (also after recovery itself fails), data
 * pages prefetched a bounded window ahead of the checks.
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "t_store.h"
#include "store/store.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PS 4096u

static char tmp[256], dwdir[300], dpath[300];

static void
setup(void)
{
    t_tmpdir(tmp, sizeof(tmp));
    t_subdir(dwdir, sizeof(dwdir), tmp, "dw");
    snprintf(dpath, sizeof(dpath), "%s/data.db", tmp);
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    t_rmtree(tmp);
}

TestSuite(recovery, .init = setup, .fini = teardown);

static int
open_ctx(uint32_t flags, atomio_verify_fn verify, void *arg, atomio_ctx **out)
{
    atomio_ctx_opts o = t_ctx_opts(dwdir);
    o.doublewrite_batch_pages = 8;
    o.doublewrite_max_page_size = PS;
    o.flags = flags;
    o.verify = verify;
    o.verify_arg = arg;
    *out = NULL;
    return atomio_ctx_open(&o, out);
}

static atomio_ctx *
ctx_ok(uint32_t flags, atomio_verify_fn verify, void *arg)
{
    atomio_ctx *ctx;
    int r = open_ctx(flags, verify, arg, &ctx);
    cr_assert_eq(r, 0, "ctx open: %s", atomio_strerror(r));
    return ctx;
}

static atomio_file *
open_data(atomio_ctx *ctx, uint64_t id)
{
    atomio_file_opts fo =
        t_file_opts(PS, ATOMIO_PATH_DOUBLEWRITE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    fo.file_id = id;
    return t_file_open(ctx, dpath, &fo);
}

/* Page version v: pattern bytes whose last 4 bytes are a CRC32C of the rest, the kind of
 * checksum an engine keeps (verify() below checks it). */
static void
version(uint8_t *p, uint64_t page_no, uint32_t v)
{
    t_fill(p, PS, page_no * 100 + v);
    uint32_t c = atomio__crc32c(0, p, PS - 4);
    memcpy(p + PS - 4, &c, 4);
}

/* Pages 0..3 at version 1 through the library. */
static void
populate(void)
{
    atomio_ctx *ctx = ctx_ok(0, NULL, NULL);
    atomio_file *f = open_data(ctx, 5);
    uint8_t p[PS];
    for (uint64_t i = 0; i < 4; i++) {
        version(p, i, 1);
        cr_assert_eq(atomio_write(f, i, p, 0), 0);
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

struct plant {
    uint64_t file_id, page_no;
    const uint8_t *page;
};

/* plant() -- a valid record (LSN order by seq) holding pl[0..n), written straight into the
 * store file, as if the crash came between its in-place writes and its release. The segment
 * number of the old layout is kept as the callers' way to say "another record". */
static void
plant(uint32_t seg, uint64_t seq, const struct plant *pl, uint32_t n)
{
    (void)seg;
    struct atomio_dw_geom g;
    t_store_geom(dwdir, &g);
    struct t_plant tp[8];
    cr_assert_leq(n, 8);
    for (uint32_t k = 0; k < n; k++)
        tp[k] = (struct t_plant){pl[k].file_id, pl[k].page_no, pl[k].page};
    t_plant(dwdir, t_plant_lsn(&g, seq), tp, n, PS);
}

/* Write half of version `newv` over page_no (first half new, second half old). */
static void
tear_page(uint64_t page_no, uint32_t newv)
{
    uint8_t p[PS];
    version(p, page_no, newv);
    int fd = open(dpath, O_WRONLY);
    cr_assert_eq(pwrite(fd, p, PS / 2, (off_t)(page_no * PS)), (ssize_t)(PS / 2));
    cr_assert_eq(fsync(fd), 0);
    close(fd);
}

static void
expect_page(uint64_t page_no, uint32_t v)
{
    uint8_t want[PS], got[PS];
    version(want, page_no, v);
    int fd = open(dpath, O_RDONLY);
    cr_assert_eq(pread(fd, got, PS, (off_t)(page_no * PS)), (ssize_t)PS);
    close(fd);
    cr_assert_eq(memcmp(want, got, PS), 0, "page %llu is not version %u",
                 (unsigned long long)page_no, v);
}

static atomio_recovery_report
recover(atomio_ctx *ctx, int want_rc)
{
    atomio_recovery_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.size = sizeof(rep);
    int r = atomio_ctx_recover(ctx, &rep);
    cr_assert_eq(r, want_rc, "recover returned %s, wanted %s", atomio_err_name(r),
                 atomio_err_name(want_rc));
    cr_assert_eq(rep.ring_bytes_scanned, 4u << 20, "the whole ring is read");
    return rep;
}

static int
count_batches_cb(void *arg, const atomio_inspect_record *rec)
{
    uint64_t *c = arg; /* c[0]: the store's durable tail, c[1]: records at or above it */
    if (rec->kind == ATOMIO_INSPECT_STORE)
        c[0] = rec->tail;
    if (rec->kind == ATOMIO_INSPECT_BATCH && rec->lsn >= c[0])
        c[1]++;
    return 0;
}

/* store_batches() -- records recovery would still look at (released ones below the durable
 * tail are never applied again, whatever their bytes). */
static int
store_batches(void)
{
    uint64_t c[2] = {0, 0};
    cr_assert_eq(atomio_store_inspect(dwdir, count_batches_cb, c), 0);
    return (int)c[1];
}

Test(recovery, hand_made_torn_page_restored_and_idempotent)
{
    populate();
    uint8_t v2[PS];
    version(v2, 2, 2);
    plant(1, 50, &(struct plant){5, 2, v2}, 1);
    tear_page(2, 2);

    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    atomio_recovery_report rep = recover(ctx, 0);
    cr_assert_eq(rep.batches_scanned, 1);
    cr_assert_eq(rep.batches_valid, 1);
    cr_assert_eq(rep.batches_torn, 0);
    cr_assert_eq(rep.pages_checked, 1);
    cr_assert_eq(rep.pages_restored, 1);
    cr_assert_eq(rep.files_missing + rep.unknown_file_ids + rep.pages_unrecoverable, 0);
    expect_page(2, 2);
    expect_page(1, 1);
    atomio_stats s;
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    cr_assert_eq(atomio_ctx_get_stats(ctx, &s), 0);
    cr_assert_eq(s.recovered_pages, 1);
    cr_assert_eq(store_batches(), 0, "recovered batches are retired");

    /* again: nothing left to do, nothing changes */
    rep = recover(ctx, 0);
    cr_assert_eq(rep.batches_scanned, 0);
    cr_assert_eq(rep.pages_restored, 0);
    expect_page(2, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, ctx_open_recovers)
{
    populate();
    uint8_t v2[PS];
    version(v2, 3, 2);
    plant(0, 9, &(struct plant){5, 3, v2}, 1);
    tear_page(3, 2);
    atomio_ctx *ctx = ctx_ok(0, NULL, NULL);
    expect_page(3, 2);
    cr_assert_eq(store_batches(), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, torn_batch_is_ignored)
{
    populate();
    uint8_t v3[PS];
    version(v3, 1, 3);
    plant(2, 70, &(struct plant){5, 1, v3}, 1);
    /* tear the copy: the batch's in-place writes never started, the data page is v1 */
    struct atomio_dw_geom g;
    t_store_geom(dwdir, &g);
    uint64_t off = atomio__dw_ring_pos(&g, t_plant_lsn(&g, 70)) + 512 + 100;
    int fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_WRONLY);
    cr_assert_eq(pwrite(fd, "XXXX", 4, (off_t)off), 4);
    close(fd);

    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    atomio_recovery_report rep = recover(ctx, 0);
    cr_assert_eq(rep.batches_scanned, 1);
    cr_assert_eq(rep.batches_torn, 1);
    cr_assert_eq(rep.batches_valid, 0);
    cr_assert_eq(rep.pages_checked, 0);
    cr_assert_eq(rep.pages_restored, 0);
    expect_page(1, 1);
    cr_assert_eq(store_batches(), 0, "torn batches are cleared too");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, newest_copy_wins_wherever_it_lies)
{
    for (int order = 0; order < 2; order++) {
        populate();
        uint8_t v2[PS], v3[PS];
        version(v2, 0, 2);
        version(v3, 0, 3);
        plant(order ? 2 : 0, 100, &(struct plant){5, 0, v2}, 1);
        plant(order ? 0 : 2, 200, &(struct plant){5, 0, v3}, 1);
        tear_page(0, 3);
        atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
        atomio_recovery_report rep = recover(ctx, 0);
        cr_assert_eq(rep.batches_valid, 2);
        cr_assert_eq(rep.pages_checked, 1, "one (file, page), two copies");
        cr_assert_eq(rep.pages_restored, 1);
        expect_page(0, 3);
        cr_assert_eq(atomio_ctx_close(ctx), 0);
    }
}

Test(recovery, batch_of_several_pages_only_differing_pages_rewritten)
{
    populate();
    uint8_t v[4][PS];
    struct plant pl[4];
    for (int i = 0; i < 4; i++) {
        version(v[i], (uint64_t)i, i == 1 ? 1 : 2); /* page 1's copy equals the data */
        pl[i] = (struct plant){5, (uint64_t)i, v[i]};
    }
    plant(1, 33, pl, 4);
    tear_page(0, 2);
    tear_page(3, 2);
    /* page 2: in-place write never happened (still v1) -- recovery rolls it forward */
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    atomio_recovery_report rep = recover(ctx, 0);
    cr_assert_eq(rep.pages_checked, 4);
    cr_assert_eq(rep.pages_restored, 3);
    expect_page(0, 2);
    expect_page(1, 1);
    expect_page(2, 2);
    expect_page(3, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- verify() ------------------------------------------------------------------------------ */

struct vstate {
    int calls;
    int mode; /* 0: check the embedded CRC; 1: everything intact; 2: error */
};

static int
verify(void *arg, uint64_t file_id, uint64_t page_no, const void *page, uint32_t ps)
{
    struct vstate *v = arg;
    v->calls++;
    cr_assert_eq(file_id, 5);
    (void)page_no;
    if (v->mode == 1)
        return 1;
    if (v->mode == 2)
        return -EIO;
    uint32_t c;
    memcpy(&c, (const uint8_t *)page + ps - 4, 4);
    return c == atomio__crc32c(0, page, ps - 4);
}

Test(recovery, verify_intact_page_left_alone)
{
    populate();
    uint8_t v2[PS];
    version(v2, 2, 2);
    plant(1, 50, &(struct plant){5, 2, v2}, 1);
    /* The copy is newer, but the engine calls the older page on disk intact: it stays, and the
     * engine's redo is what brings it forward. */
    struct vstate vs = {0, 1};
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, verify, &vs);
    atomio_recovery_report rep = recover(ctx, 0);
    cr_assert_eq(rep.pages_checked, 1);
    cr_assert_eq(rep.pages_verified_intact, 1);
    cr_assert_eq(rep.pages_restored, 0);
    cr_assert_geq(vs.calls, 1);
    expect_page(2, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, verify_rejects_torn_page_accepts_copy)
{
    populate();
    uint8_t v2[PS];
    version(v2, 2, 2);
    plant(1, 50, &(struct plant){5, 2, v2}, 1);
    tear_page(2, 2);
    struct vstate vs = {0, 0};
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, verify, &vs);
    atomio_recovery_report rep = recover(ctx, 0);
    cr_assert_eq(rep.pages_verified_intact, 0);
    cr_assert_eq(rep.pages_restored, 1);
    cr_assert_eq(vs.calls, 2, "the page, then the copy");
    expect_page(2, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, verify_rejects_both_reported_unrecoverable)
{
    populate();
    uint8_t bad[PS];
    version(bad, 2, 2);
    bad[10] ^= 1; /* the engine's checksum no longer holds; the store CRC is computed over it */
    plant(1, 50, &(struct plant){5, 2, bad}, 1);
    tear_page(2, 2);
    struct vstate vs = {0, 0};
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, verify, &vs);
    atomio_recovery_report rep = recover(ctx, ATOMIO_E_UNRECOVERABLE);
    cr_assert_eq(rep.pages_unrecoverable, 1);
    cr_assert_eq(rep.pages_restored, 0);
    cr_assert_eq(store_batches(), 1, "the copies are kept for the engine or an operator");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    /* Opening with recovery refuses, with the code, rather than hiding the damage. */
    vs.calls = 0;
    cr_assert_eq(open_ctx(0, verify, &vs, &ctx), ATOMIO_E_UNRECOVERABLE);
    cr_assert_null(ctx);
}

Test(recovery, verify_error_counts_as_damaged)
{
    populate();
    uint8_t v2[PS];
    version(v2, 2, 2);
    plant(1, 50, &(struct plant){5, 2, v2}, 1);
    tear_page(2, 2);
    struct vstate vs = {0, 2};
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, verify, &vs);
    atomio_recovery_report rep = recover(ctx, ATOMIO_E_UNRECOVERABLE);
    cr_assert_eq(rep.pages_unrecoverable, 1, "an erroring verify() accepts nothing");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- missing files, unknown ids ------------------------------------------------------------ */

Test(recovery, missing_file_and_unknown_id_keep_their_copies)
{
    populate();
    uint8_t v2[PS];
    version(v2, 1, 2);
    struct plant pl[2] = {{5, 1, v2}, {999, 7, v2}};
    plant(0, 40, pl, 2);
    cr_assert_eq(unlink(dpath), 0);
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    atomio_recovery_report rep = recover(ctx, ATOMIO_E_UNAPPLIED);
    cr_assert_eq(rep.batches_valid, 1);
    cr_assert_eq(rep.files_missing, 1);
    cr_assert_eq(rep.unknown_file_ids, 1);
    cr_assert_eq(rep.pages_unapplied, 2);
    cr_assert_eq(rep.pages_checked, 0);
    cr_assert_eq(rep.pages_restored, 0);
    cr_assert_eq(access(dpath, F_OK), -1, "recovery never creates a missing file");
    cr_assert_eq(store_batches(), 1, "the copies are kept");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    /* ctx open with recovery fails the same way, and still keeps them */
    atomio_ctx *c2 = NULL;
    cr_assert_eq(open_ctx(0, NULL, NULL, &c2), ATOMIO_E_UNAPPLIED);
    cr_assert_eq(store_batches(), 1);
    /* the operator gives both files up: then recovery completes */
    ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    cr_assert_eq(atomio_ctx_discard_file(ctx, 5), 0);
    cr_assert_eq(atomio_ctx_discard_file(ctx, 999), 0);
    rep = recover(ctx, 0);
    cr_assert_eq(rep.pages_discarded, 2);
    cr_assert_eq(store_batches(), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- recovery interrupted ------------------------------------------------------------------ */

static int fail_data_sync;

static int
failing_fdatasync(int fd)
{
    struct stat st;
    if (fail_data_sync && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < 65536)
        return -EIO; /* the data file (the store is larger) */
    return atomio__sys_real.fdatasync(fd);
}

Test(recovery, failed_recovery_keeps_the_store_and_can_be_rerun)
{
    populate();
    uint8_t v2[PS];
    version(v2, 2, 2);
    plant(1, 50, &(struct plant){5, 2, v2}, 1);
    tear_page(2, 2);
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    fail_data_sync = 1;
    atomio__sys.fdatasync = failing_fdatasync;
    atomio_recovery_report rep = recover(ctx, -EIO);
    cr_assert_eq(rep.pages_restored, 1, "the page was rewritten, not made durable");
    atomio__sys = atomio__sys_real;
    cr_assert_eq(store_batches(), 1, "copies kept when recovery could not finish");
    rep = recover(ctx, 0);
    cr_assert_eq(rep.pages_checked, 1);
    expect_page(2, 2);
    cr_assert_eq(store_batches(), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- prefetch ------------------------------------------------------------------------------ */

#define PF_PAGES 480u /* more than the prefetch window (256 pages); 60 records fit the ring */

static struct {
    int fd; /* the data file: the only one recovery prefetches */
    uint8_t asked[PF_PAGES];
    unsigned prefetched, checked, not_asked_first, asked_twice, most_ahead;
} pf = {.fd = -1};

static int
rec_prefetch(int fd, uint64_t off, uint64_t len)
{
    cr_assert_eq(len, PS);
    cr_assert_lt(off / PS, PF_PAGES);
    pf.fd = fd;
    pf.asked_twice += pf.asked[off / PS];
    pf.asked[off / PS] = 1;
    pf.prefetched++;
    if (pf.prefetched - pf.checked > pf.most_ahead)
        pf.most_ahead = pf.prefetched - pf.checked;
    return atomio__sys_real.prefetch(fd, off, len);
}

static ssize_t
rec_pread(int fd, void *buf, size_t len, uint64_t off)
{
    if (fd == pf.fd) {
        pf.not_asked_first += !pf.asked[off / PS];
        pf.checked++;
    }
    return atomio__sys_real.pread(fd, buf, len, off);
}

/* Recovery asks the kernel for the data pages it is about to check, a bounded window ahead,
 * so a cold data file is read with many reads in flight; every page is asked for once, before
 * it is read, and the copies are applied as without the advice. */
Test(recovery, data_pages_are_prefetched_a_window_ahead_of_the_checks)
{
    populate();
    int fd = open(dpath, O_WRONLY);
    cr_assert_eq(ftruncate(fd, (off_t)PF_PAGES * PS), 0);
    close(fd);
    uint8_t v[8][PS];
    for (uint32_t at = 0; at < PF_PAGES; at += 8) {
        struct plant pl[8];
        for (uint32_t k = 0; k < 8; k++) {
            version(v[k], at + k, 2);
            pl[k] = (struct plant){5, at + k, v[k]};
        }
        plant(1, 1 + at / 8, pl, 8);
    }
    atomio_ctx *ctx = ctx_ok(ATOMIO_CTX_NO_RECOVER, NULL, NULL);
    atomio__sys.prefetch = rec_prefetch;
    atomio__sys.pread = rec_pread;
    atomio_recovery_report rep = recover(ctx, 0);
    atomio__sys = atomio__sys_real;
    cr_assert_eq(rep.pages_checked, PF_PAGES);
    cr_assert_eq(rep.pages_restored, PF_PAGES);
    cr_assert_eq(pf.prefetched, PF_PAGES, "every page asked for");
    cr_assert_eq(pf.checked, PF_PAGES, "every page read once, on the prefetched descriptor");
    cr_assert_eq(pf.asked_twice, 0);
    cr_assert_eq(pf.not_asked_first, 0, "no page read before it was asked for");
    cr_assert_eq(pf.most_ahead, 256, "a full window ahead, and no more");
    for (uint64_t i = 0; i < PF_PAGES; i += 37)
        expect_page(i, 2);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(recovery, without_store)
{
    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    atomio_ctx *ctx;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    atomio_recovery_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.size = sizeof(rep);
    cr_assert_eq(atomio_ctx_recover(ctx, &rep), ATOMIO_E_NO_DOUBLEWRITE);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
