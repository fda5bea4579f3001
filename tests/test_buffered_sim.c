/* SPDX-License-Identifier: MIT */
/*
 * test_buffered_sim.c -- BUFFERED_ATOMIC against the simulated kernel (sim_kernel.h): the probe
 * proves support through its O_TMPFILE write, AUTO picks the path for BUFFERED and ANY
 * engines, pages round-trip, the folio-order rule refuses wrong page sizes with the orders in
 * the reason, and the failure model holds (short copy -> ATOMIO_E_SHORT_WRITE and a failed
 * file, EIO sticky, EINVAL re-probes the kernel afresh). The simulated kernel also checks
 * that the library never sends an unsynced buffered atomic write nor a plain write to a file
 * that takes atomic writes. Runs unprivileged, in a scratch directory.
 */
#include "atomio_internal.h"
#include "buffered_cases.h"
#include "helpers.h"
#include "sim_kernel.h"
#include "t_core.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[PATH_MAX];

static void
setup_with(const struct sim_kernel_cfg *cfg)
{
    /* The simulated kernel sits on the pwritev2 seam, and these tests assert AUTO's choice:
     * overrides meant for whole-suite reruns do not apply here. */
    unsetenv("ATOMIO_SUBMITTER");
    unsetenv("ATOMIO_PATH");
    bc_submitter = ATOMIO_SUBMIT_SYNC;
    t_tmpdir(dir, sizeof(dir));
    sim_kernel_install(cfg);
}

static void
setup_4k(void)
{
    setup_with(&(struct sim_kernel_cfg){.fs_block = 4096, .folio_order = -1});
}

static void
setup_16k(void)
{
    setup_with(&(struct sim_kernel_cfg){.fs_block = 16384, .folio_order = -1});
}

static void
setup_disabled(void)
{
    setup_with(&(struct sim_kernel_cfg){.fs_block = 4096, .folio_order = -1, .disabled = true});
}

static void
teardown(void)
{
    sim_kernel_uninstall();
    t_rmtree(dir);
}

/* The library's traffic never breaks the kernel's rules. */
static void
expect_clean_traffic(void)
{
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.nosync, 0, "%llu buffered atomic writes lacked RWF_DSYNC",
                 (unsigned long long)s.nosync);
    cr_assert_eq(s.mixed, 0, "%llu plain writes hit a file that takes atomic writes",
                 (unsigned long long)s.mixed);
    cr_assert_eq(s.plain_writes, 0, "%llu plain writes to data files",
                 (unsigned long long)s.plain_writes);
}

static atomio_file *
open_buffered(atomio_ctx *ctx, const char *name, uint32_t page, uint32_t flags)
{
    atomio_file_opts fo =
        t_file_opts(page, ATOMIO_PATH_AUTO, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE | flags);
    atomio_file *f = t_file_open(ctx, t_join(dir, name), &fo);
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, ATOMIO_PATH_BUFFERED_ATOMIC, "%s: %s", atomio_path_name(info.path),
                 info.reason);
    return f;
}

static uint32_t
file_state(const atomio_file *f)
{
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    return info.state;
}

/* ---- support is proven by the probe write, and AUTO takes it -------------------------- */

Test(buffered_sim, probe_write_proves_support, .init = setup_4k, .fini = teardown)
{
    bc_probe_proves(dir, 4096);
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.probe_writes, 1, "the probe must write an O_TMPFILE");
    cr_assert_eq(s.atomic_ok, 1, "the probe write reached the simulated kernel");
    cr_assert_eq(s.last_atomic_len, 4096);
    cr_assert_eq(s.last_atomic_off, 0);
    cr_assert_eq(s.last_atomic_flags, RWF_ATOMIC | RWF_DSYNC);
}

Test(buffered_sim, probe_verdict_cached_per_device_and_page, .init = setup_4k, .fini = teardown)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.probe_writes, 1, "second probe of the same (device, page) must be cached");
    cr_assert_eq(atomio_probe(dir, 8192, &c), 0);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.probe_writes, 2, "another page size is another probe");
    atomio__caps_cache_clear();
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.probe_writes, 3);
}

Test(buffered_sim, probe_without_scratch_file_is_not_a_verdict, .init = setup_4k, .fini = teardown)
{
    sim_kernel_tmpfile_fail(EROFS);
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    cr_assert_eq(c.valid & ATOMIO_CAPS_BUFFERED, 0, "no write was made: nothing was probed");
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert(strstr(c.reason_buffered, "not probed") && strstr(c.reason_buffered, "EROFS"),
              "reason: %s", c.reason_buffered);
    cr_assert_null(strstr(c.reason_buffered, "kernel refused"), "reason: %s", c.reason_buffered);
    /* Not cached: once a scratch file can be made, the kernel is asked. */
    sim_kernel_tmpfile_fail(0);
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    cr_assert_eq(c.buffered_atomic, 1, "%s", c.reason_buffered);
}

Test(buffered_sim, auto_buffered_engine_gets_buffered_atomic, .init = setup_4k, .fini = teardown)
{
    bc_auto_picks_buffered(dir, 4096, ATOMIO_IO_BUFFERED);
    expect_clean_traffic();
}

Test(buffered_sim, auto_any_engine_gets_buffered_atomic, .init = setup_4k, .fini = teardown)
{
    bc_auto_picks_buffered(dir, 4096, ATOMIO_IO_ANY);
}

/* Rule 1 comes before O_DIRECT atomics: an ANY engine keeps the page cache when both work. */
Test(buffered_sim, any_engine_prefers_buffered_over_direct_atomic, .fini = teardown)
{
    setup_with(&(struct sim_kernel_cfg){
        .fs_block = 4096, .folio_order = -1, .unit_min = 4096, .unit_max = 65536});
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    cr_assert_neq(c.direct_atomic, ATOMIO_ATOMIC_NONE, "%s", c.reason_direct);
    cr_assert_eq(c.buffered_atomic, 1, "%s", c.reason_buffered);
    bc_auto_picks_buffered(dir, 4096, ATOMIO_IO_ANY);
}

Test(buffered_sim, direct_engine_never_gets_buffered, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = 4096;
    fo.io_style = ATOMIO_IO_DIRECT;
    fo.path = ATOMIO_PATH_BUFFERED_ATOMIC;
    atomio_file *f = NULL;
    cr_assert_eq(atomio_file_open(ctx, t_join(dir, "d"), &fo, &f), ATOMIO_E_PATH_UNSUPPORTED);
    fo.path = ATOMIO_PATH_AUTO;
    int r = atomio_file_open(ctx, t_join(dir, "d"), &fo, &f);
    cr_assert_eq(r, ATOMIO_E_NO_DOUBLEWRITE, "O_DIRECT engine without atomics or store: %s",
                 atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- pages ---------------------------------------------------------------------------- */

Test(buffered_sim, pages_round_trip, .init = setup_4k, .fini = teardown)
{
    bc_roundtrip(dir, 4096);
    expect_clean_traffic();
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.atomic_ok, 1 + 12, "probe + 12 pages, each exactly one atomic write");
    cr_assert_eq(s.atomic_einval + s.atomic_eopnotsupp, 0);
}

Test(buffered_sim, pages_round_trip_16k_blocks, .init = setup_16k, .fini = teardown)
{
    bc_probe_proves(dir, 16384);
    bc_roundtrip(dir, 16384);
    expect_clean_traffic();
}

Test(buffered_sim, allocator_pages_go_to_the_kernel_without_a_copy, .init = setup_4k,
     .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *pool = atomio_page_alloc(ctx, 4096, 4);
    cr_assert(pool);
    t_fill(pool, 4 * 4096, 3);
    struct sim_kernel_stats s;
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(atomio_write(f, i, pool + i * 4096, 0), 0);
        sim_kernel_get_stats(&s);
        cr_assert_eq(s.last_atomic_buf, pool + i * 4096, "allocator page %u was bounced", i);
        cr_assert_eq(s.last_atomic_off, i * 4096);
    }
    char *mine = NULL;
    cr_assert_eq(posix_memalign((void **)&mine, 4096, 4096), 0);
    t_fill(mine, 4096, 4);
    cr_assert_eq(atomio_write(f, 4, mine, 0), 0);
    sim_kernel_get_stats(&s);
    cr_assert_neq(s.last_atomic_buf, mine, "caller memory must be copied into a bounce page");
    cr_assert_eq((uintptr_t)s.last_atomic_buf % 4096, 0, "bounce page not page-aligned");
    /* A freed allocator buffer is caller memory again. */
    atomio_page_free(ctx, pool, 4096, 4);
    cr_assert_not(atomio__buf_is_prefaulted(ctx, mine, 4096));
    free(mine);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    expect_clean_traffic();
}

Test(buffered_sim, prefaulted_lookup_covers_exactly_the_buffer, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    char *a = atomio_page_alloc(ctx, 4096, 3);
    char *b = atomio_page_alloc(ctx, 8192, 1);
    cr_assert(a && b);
    cr_assert(atomio__buf_is_prefaulted(ctx, a, 3 * 4096));
    cr_assert(atomio__buf_is_prefaulted(ctx, a + 4096, 2 * 4096));
    cr_assert_not(atomio__buf_is_prefaulted(ctx, a + 4096, 3 * 4096), "runs past the end");
    cr_assert_not(atomio__buf_is_prefaulted(ctx, a - 1, 4096), "starts before");
    cr_assert(atomio__buf_is_prefaulted(ctx, b, 8192));
    atomio_ctx *other = bc_ctx();
    cr_assert_not(atomio__buf_is_prefaulted(other, a, 4096), "another ctx's buffer");
    cr_assert_eq(atomio_ctx_close(other), 0);
    atomio_page_free(ctx, a, 4096, 3);
    cr_assert_not(atomio__buf_is_prefaulted(ctx, a, 4096));
    cr_assert(atomio__buf_is_prefaulted(ctx, b, 8192));
    atomio_page_free(ctx, b, 8192, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_sim, no_copy_files, .init = setup_4k, .fini = teardown)
{
    bc_no_copy(dir, 4096);
    expect_clean_traffic();
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.atomic_ok, 1 + 2, "refused writes must never reach the kernel");
}

Test(buffered_sim, dsync_on_every_write_whatever_the_caller_asks, .init = setup_4k,
     .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(p);
    struct sim_kernel_stats s;
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.last_atomic_flags, RWF_ATOMIC | RWF_DSYNC);
    cr_assert_eq(atomio_write(f, 1, p, ATOMIO_WRITE_DSYNC), 0);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.last_atomic_flags, RWF_ATOMIC | RWF_DSYNC);
    atomio_page_free(ctx, p, 4096, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

struct writer_arg {
    atomio_file *f;
    atomio_ctx *ctx;
    unsigned id;
};

static void *
writer(void *argp)
{
    struct writer_arg *a = argp;
    char *p = atomio_page_alloc(a->ctx, 4096, 1);
    char *mine = malloc(4096);
    if (!p || !mine)
        return (void *)1;
    for (unsigned i = 0; i < 16; i++) {
        uint64_t pg = a->id * 16 + i;
        char *src = i % 2 ? p : mine;
        t_fill(src, 4096, 500 + pg);
        if (atomio_write(a->f, pg, src, 0) != 0)
            return (void *)1;
    }
    atomio_page_free(a->ctx, p, 4096, 1);
    free(mine);
    return NULL;
}

Test(buffered_sim, concurrent_writers, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    pthread_t th[4];
    struct writer_arg args[4];
    for (unsigned t = 0; t < 4; t++) {
        args[t] = (struct writer_arg){.f = f, .ctx = ctx, .id = t};
        cr_assert_eq(pthread_create(&th[t], NULL, writer, &args[t]), 0);
    }
    for (unsigned t = 0; t < 4; t++) {
        void *ret;
        cr_assert_eq(pthread_join(th[t], &ret), 0);
        cr_assert_null(ret, "writer %u failed", t);
    }
    char *want = malloc(4096), *got = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(want && got);
    for (uint64_t pg = 0; pg < 64; pg++) {
        t_fill(want, 4096, 500 + pg);
        cr_assert_eq(atomio_read(f, pg, got), 0);
        cr_assert(memcmp(got, want, 4096) == 0, "page %llu", (unsigned long long)pg);
    }
    atomio_page_free(ctx, got, 4096, 1);
    free(want);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    expect_clean_traffic();
}

/* ---- the folio-order rule, on the geometry the simulated statx reports ---------------- */

static void
expect_folio_refusal(uint32_t page, const char *needle)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, page, &c), 0);
    cr_assert_eq(c.folio_ok, 0, "page %u passed the folio rule: %s", page, c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert(strstr(c.reason_buffered, needle), "reason lacks '%s': %s", needle,
              c.reason_buffered);

    atomio_ctx *ctx = bc_ctx();
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = page;
    fo.io_style = ATOMIO_IO_BUFFERED;
    fo.path = ATOMIO_PATH_BUFFERED_ATOMIC;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, t_join(dir, "forced"), &fo, &f);
    cr_assert_eq(r, ATOMIO_E_FOLIO_ORDER, "forced buffered at page %u: %s", page,
                 atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_sim, folio_16k_pages_on_16k_blocks_pass, .init = setup_16k, .fini = teardown)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 16384, &c), 0);
    cr_assert_eq(c.fs_block_size, 16384);
    cr_assert_eq(c.page_order, 2);
    cr_assert_eq(c.fs_min_order, 2);
    cr_assert_eq(c.folio_ok, 1, "%s", c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 1, "%s", c.reason_buffered);
    bc_auto_picks_buffered(dir, 16384, ATOMIO_IO_BUFFERED);
}

Test(buffered_sim, folio_16k_pages_on_4k_blocks_refused, .init = setup_4k, .fini = teardown)
{
    expect_folio_refusal(16384, "page 16384 = order 2, fs block 4096 = min order 0");
}

/* Even a kernel that takes the 16 KiB write (a mapping pinned to order 2) is not trusted:
 * userspace cannot see the maximum order, only the block's minimum. */
Test(buffered_sim, folio_rule_holds_even_when_the_kernel_accepts, .fini = teardown)
{
    setup_with(&(struct sim_kernel_cfg){.fs_block = 4096, .folio_order = 2});
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 16384, &c), 0);
    cr_assert_eq(c.buffered_probe_err, 0, "the simulated kernel accepts order-2 writes");
    expect_folio_refusal(16384, "the probe write succeeded");
}

Test(buffered_sim, folio_4k_pages_on_16k_blocks_refused, .init = setup_16k, .fini = teardown)
{
    expect_folio_refusal(4096, "page 4096 = order 0, fs block 16384 = min order 2");
}

Test(buffered_sim, folio_twice_the_page_refused, .init = setup_4k, .fini = teardown)
{
    bc_wrong_page_refused(dir, 4096);
}

Test(buffered_sim, folio_page_below_system_page_refused, .init = setup_4k, .fini = teardown)
{
    expect_folio_refusal(2048, "not a power-of-two multiple of the system page");
}

Test(buffered_sim, folio_page_outside_atomic_unit_range_refused, .fini = teardown)
{
    setup_with(&(struct sim_kernel_cfg){
        .fs_block = 16384, .folio_order = -1, .unit_min = 4096, .unit_max = 8192});
    expect_folio_refusal(16384, "outside the atomic unit range [4096, 8192]");
}

/* ---- failures ------------------------------------------------------------------------- */

Test(buffered_sim, short_copy_fails_the_file, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(p);
    t_fill(p, 4096, 1);
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);

    struct sim_kernel_stats before, after;
    sim_kernel_get_stats(&before);
    sim_kernel_short_copy(1024);
    t_fill(p, 4096, 2);
    cr_assert_eq(atomio_write(f, 0, p, 0), ATOMIO_E_SHORT_WRITE);
    sim_kernel_get_stats(&after);
    cr_assert_eq(after.short_copies, 1);
    cr_assert_eq(after.atomic_ok, before.atomic_ok + 1, "the tail must never be retried");
    cr_assert_eq(after.plain_writes, before.plain_writes, "nor finished with a plain write");

    cr_assert_eq(file_state(f), ATOMIO_STATE_FAILED);
    cr_assert_eq(atomio_write(f, 1, p, 0), ATOMIO_E_FAILED);
    cr_assert_eq(atomio_sync(f), ATOMIO_E_FAILED);
    atomio_page_write w = {.file = f, .page_no = 2, .page = p};
    cr_assert_eq(atomio_write_batch(ctx, &w, 1, 0), 0);
    cr_assert_eq(w.result, ATOMIO_E_FAILED);
    sim_kernel_get_stats(&after);
    cr_assert_eq(after.atomic_ok, before.atomic_ok + 1, "a failed file writes nothing more");

    atomio_stats st = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &st), 0);
    cr_assert_eq(st.short_writes, 1);
    cr_assert_eq(atomio_ctx_get_stats(ctx, &st), 0);
    cr_assert_eq(st.short_writes, 1);
    /* Reads still work: the engine needs them to decide what to do. */
    cr_assert_eq(atomio_read(f, 0, p), 0);
    atomio_page_free(ctx, p, 4096, 1);
    cr_assert_eq(atomio_file_close(f), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_sim, eio_from_the_sync_half_fails_the_file, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(p);
    sim_kernel_fail_next(EIO);
    cr_assert_eq(atomio_write(f, 0, p, 0), -EIO);
    cr_assert_eq(file_state(f), ATOMIO_STATE_FAILED, "EIO after the copy must be sticky");
    cr_assert_eq(atomio_write(f, 0, p, 0), ATOMIO_E_FAILED);
    cr_assert_eq(atomio_sync(f), ATOMIO_E_FAILED);
    atomio_stats st = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &st), 0);
    cr_assert_eq(st.failed_syncs, 1);
    atomio_page_free(ctx, p, 4096, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_sim, eopnotsupp_without_store_is_reported_not_hidden, .init = setup_4k,
     .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(p);
    sim_kernel_set_disabled(true);
    cr_assert_eq(atomio_write(f, 0, p, 0), -EOPNOTSUPP);
    cr_assert_eq(file_state(f), ATOMIO_STATE_OK, "nothing was written: the file is intact");
    sim_kernel_set_disabled(false);
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);
    atomio_page_free(ctx, p, 4096, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
    expect_clean_traffic();
}

Test(buffered_sim, einval_reprobes_the_kernel_afresh, .init = setup_4k, .fini = teardown)
{
    atomio_ctx *ctx = bc_ctx();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(p);
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);
    struct sim_kernel_stats before, after;
    sim_kernel_get_stats(&before);

    /* The mapping's folio order changes under the file (think: remount with other
     * options): the 4 KiB write is now the wrong shape. */
    sim_kernel_set_order(1);
    int r = atomio_write(f, 1, p, 0);
    cr_assert_eq(r, ATOMIO_E_GEOMETRY, "got %s", atomio_err_name(r));
    sim_kernel_get_stats(&after);
    cr_assert_eq(after.probe_writes, before.probe_writes + 1,
                 "the re-probe must ask the kernel, not the cache");
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_file_get_caps(f, &c), 0);
    cr_assert_eq(c.buffered_probe_err, -EINVAL, "re-probed caps: %s", c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(file_state(f), ATOMIO_STATE_OK, "EINVAL wrote nothing");
    atomio_page_free(ctx, p, 4096, 1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(buffered_sim, disabled_kernel_behaves_like_mainline, .init = setup_disabled, .fini = teardown)
{
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio_probe(dir, 4096, &c), 0);
    cr_assert(c.valid & ATOMIO_CAPS_BUFFERED);
    cr_assert_eq(c.buffered_probe_err, -EOPNOTSUPP);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(c.folio_ok, 1, "%s", c.reason_buffered);
    cr_assert(strstr(c.reason_buffered, "EOPNOTSUPP"), "reason: %s", c.reason_buffered);

    atomio_ctx *ctx = bc_ctx();
    atomio_file_opts fo;
    atomio_file_opts_init(&fo);
    fo.flags = ATOMIO_FILE_CREATE;
    fo.page_size = 4096;
    fo.io_style = ATOMIO_IO_BUFFERED;
    fo.path = ATOMIO_PATH_BUFFERED_ATOMIC;
    atomio_file *f = NULL;
    cr_assert_eq(atomio_file_open(ctx, t_join(dir, "x"), &fo, &f), ATOMIO_E_PATH_UNSUPPORTED);
    fo.path = ATOMIO_PATH_AUTO;
    cr_assert_eq(atomio_file_open(ctx, t_join(dir, "x"), &fo, &f), ATOMIO_E_NO_DOUBLEWRITE,
                 "a buffered engine without buffered atomics needs the doublewrite store");
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* ---- the simulated kernel's own checks can fail (so the clean-traffic asserts mean
 *      something) ------------------------------------------------------------------------ */

Test(buffered_sim, simulated_kernel_rules, .init = setup_4k, .fini = teardown)
{
    int fd = atomio__sys.open(t_join(dir, "raw"), O_CREAT | O_RDWR, 0600);
    cr_assert_geq(fd, 0);
    char *buf = NULL;
    cr_assert_eq(posix_memalign((void **)&buf, 4096, 3 * 4096), 0);
    memset(buf, 1, 3 * 4096);
    struct iovec one = {buf, 4096}, two[2] = {{buf, 2048}, {buf + 2048, 2048}};
    struct sim_kernel_stats s;

    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 0, RWF_ATOMIC | RWF_DSYNC), 4096);
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 0, RWF_ATOMIC | RWF_SYNC), 4096);
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 0, RWF_ATOMIC), -EINVAL, "unsynced");
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.nosync, 1);
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 2048, RWF_ATOMIC | RWF_DSYNC), -EINVAL);
    cr_assert_eq(atomio__sys.pwritev2(fd, two, 2, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL);
    struct iovec big = {buf, 8192}, odd = {buf, 3 * 4096}, mis = {buf + 512, 4096};
    cr_assert_eq(atomio__sys.pwritev2(fd, &big, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL,
                 "two folios");
    cr_assert_eq(atomio__sys.pwritev2(fd, &odd, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL);
    cr_assert_eq(atomio__sys.pwritev2(fd, &mis, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL,
                 "buffer not page-aligned");
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 4096, RWF_DSYNC), 4096);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.mixed, 1, "a plain write to an atomic file is counted");

    sim_kernel_set_disabled(true);
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EOPNOTSUPP);
    cr_assert_eq(atomio__sys.pwritev2(fd, &odd, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL,
                 "mainline runs the generic shape checks first");
    sim_kernel_set_disabled(false);

    sim_kernel_set_order(1);
    cr_assert_eq(sim_kernel_folio_size(), 8192);
    cr_assert_eq(atomio__sys.pwritev2(fd, &big, 1, 8192, RWF_ATOMIC | RWF_DSYNC), 8192);
    cr_assert_eq(atomio__sys.pwritev2(fd, &one, 1, 0, RWF_ATOMIC | RWF_DSYNC), -EINVAL);

    sim_kernel_short_copy(100);
    cr_assert_eq(atomio__sys.pwritev2(fd, &big, 1, 0, RWF_ATOMIC | RWF_DSYNC), 100);
    free(buf);
    atomio__sys.close(fd);
}

/* ---- runtime downgrade to the doublewrite store ----------------------------------------- */

static atomio_ctx *
ctx_with_store(void)
{
    char dw[PATH_MAX + 8];
    snprintf(dw, sizeof(dw), "%s/dw", dir);
    cr_assert_eq(mkdir(dw, 0700), 0);
    atomio_ctx_opts o = t_ctx_opts(dw);
    return t_ctx_open(&o);
}

/*
 * downgrade_case() -- the kernel stops taking the atomic write (how: `fail`); the page goes
 * through the doublewrite store instead, the caller sees success, and the file stays on
 * DOUBLEWRITE with its page-cache fd. Plain (in-place) writes to the file start only then.
 */
static void
downgrade_case(void (*fail)(void), const char *errname)
{
    atomio_ctx *ctx = ctx_with_store();
    atomio_file *f = open_buffered(ctx, "data", 4096, 0);
    char *p = atomio_page_alloc(ctx, 4096, 4);
    cr_assert(p);
    for (unsigned i = 0; i < 4; i++)
        t_fill(p + i * 4096, 4096, 70 + i);
    cr_assert_eq(atomio_write(f, 0, p, 0), 0);
    struct sim_kernel_stats s;
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.mixed, 0);
    uint64_t atomic_before = s.atomic_ok;

    fail();
    int r = atomio_write(f, 1, p + 4096, 0);
    cr_assert_eq(r, 0, "the downgraded write must succeed: %s", atomio_err_name(r));
    atomio_file_info info = {.size = sizeof(atomio_file_info)};
    cr_assert_eq(atomio_file_get_info(f, &info), 0);
    cr_assert_eq(info.path, ATOMIO_PATH_DOUBLEWRITE, "%s", info.reason);
    cr_assert_eq(info.downgrades, 1);
    cr_assert_eq(info.state, ATOMIO_STATE_OK);
    cr_assert_eq(info.o_direct, 0, "the downgraded file keeps its page-cache fd");
    cr_assert(strstr(info.reason, "runtime downgrade") && strstr(info.reason, errname),
              "reason: %s", info.reason);
    cr_assert(strstr(info.reject_buffered, errname), "reject_buffered: %s", info.reject_buffered);

    /* Later pages: doublewrite, no more atomic writes. */
    atomio_page_write w[2] = {{.file = f, .page_no = 2, .page = p + 2 * 4096},
                              {.file = f, .page_no = 3, .page = p + 3 * 4096}};
    cr_assert_eq(atomio_write_batch(ctx, w, 2, 0), 2);
    sim_kernel_get_stats(&s);
    cr_assert_eq(s.atomic_ok, atomic_before, "no atomic write after the downgrade");
    cr_assert_gt(s.mixed, 0, "doublewrite's in-place writes are plain writes");
    atomio_stats st = {.size = sizeof(atomio_stats)};
    cr_assert_eq(atomio_file_get_stats(f, &st), 0);
    cr_assert_eq(st.pages[ATOMIO_PATH_BUFFERED_ATOMIC], 1);
    cr_assert_eq(st.pages[ATOMIO_PATH_DOUBLEWRITE], 3);
    cr_assert_eq(st.downgrades, 1);

    char *back = atomio_page_alloc(ctx, 4096, 1);
    cr_assert(back);
    for (unsigned i = 0; i < 4; i++) {
        cr_assert_eq(atomio_read(f, i, back), 0);
        cr_assert(memcmp(back, p + i * 4096, 4096) == 0, "page %u", i);
    }
    atomio_page_free(ctx, back, 4096, 1);
    atomio_page_free(ctx, p, 4096, 4);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

static void
fail_eopnotsupp(void)
{
    sim_kernel_set_disabled(true);
}

static void
fail_enospc(void)
{
    sim_kernel_fail_next(ENOSPC);
}

static void
fail_einval(void)
{
    sim_kernel_set_order(1); /* the 4 KiB write is now the wrong shape; the re-probe agrees */
}

Test(buffered_sim, eopnotsupp_downgrades_to_doublewrite, .init = setup_4k, .fini = teardown)
{
    downgrade_case(fail_eopnotsupp, "EOPNOTSUPP");
}

Test(buffered_sim, enospc_downgrades_to_doublewrite, .init = setup_4k, .fini = teardown)
{
    downgrade_case(fail_enospc, "ENOSPC");
}

Test(buffered_sim, einval_reprobe_downgrades_to_doublewrite, .init = setup_4k, .fini = teardown)
{
    downgrade_case(fail_einval, "EINVAL");
}
