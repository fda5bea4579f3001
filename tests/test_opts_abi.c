/* SPDX-License-Identifier: MIT */
/*
 * test_opts_abi.c -- the size-versioned struct contract: today's layout of every
 * public struct is pinned at compile time; option structs from older callers (smaller) take
 * defaults for what they lack, newer callers (larger) are accepted only with a zero tail; output
 * structs are filled only up to the caller's size; the *_opts_init functions and *_INIT macros
 * agree.
 */
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------------------ */
/* Layout pins. Changing any of these breaks every compiled caller: append fields instead.     */

#define ASSERT_SIZE(T, n)   _Static_assert(sizeof(T) == (n), "sizeof(" #T ") changed")
#define ASSERT_OFF(T, f, n) _Static_assert(offsetof(T, f) == (n), "offsetof(" #T ", " #f ") moved")

/* The uint32_t size field comes first in every size-versioned struct, on every ABI. */
ASSERT_OFF(atomio_ctx_opts, size, 0);
ASSERT_OFF(atomio_file_opts, size, 0);
ASSERT_OFF(atomio_caps, size, 0);
ASSERT_OFF(atomio_file_info, size, 0);
ASSERT_OFF(atomio_stats, size, 0);
ASSERT_OFF(atomio_recovery_report, size, 0);
_Static_assert(ATOMIO_REASON_LEN == 192, "reason buffers are part of the ABI");
_Static_assert(ATOMIO_LAT_BUCKETS == 32, "histogram length is part of the ABI");
_Static_assert(ATOMIO_STATS_PATHS == 8, "atomio_stats.pages[] length is part of the ABI");

#if defined(__LP64__) && (defined(__x86_64__) || defined(__aarch64__) || defined(__riscv))
#define LAYOUT_PINNED 1
ASSERT_SIZE(atomio_ctx_opts, 136);
ASSERT_OFF(atomio_ctx_opts, flags, 4);
ASSERT_OFF(atomio_ctx_opts, doublewrite_dir, 8);
ASSERT_OFF(atomio_ctx_opts, policy, 16);
ASSERT_OFF(atomio_ctx_opts, submitter, 20);
ASSERT_OFF(atomio_ctx_opts, queue_depth, 24);
ASSERT_OFF(atomio_ctx_opts, doublewrite_mode, 28);
ASSERT_OFF(atomio_ctx_opts, doublewrite_batch_pages, 32);
ASSERT_OFF(atomio_ctx_opts, doublewrite_max_page_size, 36);
ASSERT_OFF(atomio_ctx_opts, numa_node, 40);
ASSERT_OFF(atomio_ctx_opts, reserved0, 44);
ASSERT_OFF(atomio_ctx_opts, verify, 48);
ASSERT_OFF(atomio_ctx_opts, verify_arg, 56);
ASSERT_OFF(atomio_ctx_opts, data_root, 64);
ASSERT_OFF(atomio_ctx_opts, unapplied, 72);
ASSERT_OFF(atomio_ctx_opts, unapplied_arg, 80);
ASSERT_OFF(atomio_ctx_opts, instance, 88);
ASSERT_OFF(atomio_ctx_opts, doublewrite_store_bytes, 96);
ASSERT_OFF(atomio_ctx_opts, write_behind_bytes, 104);
ASSERT_OFF(atomio_ctx_opts, reserved, 112);

ASSERT_SIZE(atomio_file_opts, 72);
ASSERT_OFF(atomio_file_opts, flags, 4);
ASSERT_OFF(atomio_file_opts, page_size, 8);
ASSERT_OFF(atomio_file_opts, io_style, 12);
ASSERT_OFF(atomio_file_opts, path, 16);
ASSERT_OFF(atomio_file_opts, policy, 20);
ASSERT_OFF(atomio_file_opts, file_id, 24);
ASSERT_OFF(atomio_file_opts, mode, 32);
ASSERT_OFF(atomio_file_opts, reserved0, 36);
ASSERT_OFF(atomio_file_opts, reserved, 40);

ASSERT_OFF(atomio_caps, valid, 4);
ASSERT_OFF(atomio_caps, page_size, 8);
ASSERT_OFF(atomio_caps, sys_page_size, 12);
ASSERT_OFF(atomio_caps, fs_block_size, 16);
ASSERT_OFF(atomio_caps, dev_major, 20);
ASSERT_OFF(atomio_caps, dev_minor, 24);
ASSERT_OFF(atomio_caps, hw_unit_max, 28);
ASSERT_OFF(atomio_caps, hw_sysfs_err, 32);
ASSERT_OFF(atomio_caps, direct_atomic, 36);
ASSERT_OFF(atomio_caps, buffered_atomic, 40);
ASSERT_OFF(atomio_caps, buffered_probe_err, 44);
ASSERT_OFF(atomio_caps, page_order, 48);
ASSERT_OFF(atomio_caps, fs_min_order, 52);
ASSERT_OFF(atomio_caps, fs_type, 56);
ASSERT_OFF(atomio_caps, auto_path, 64);
ASSERT_OFF(atomio_caps, folio_ok, 68);
ASSERT_OFF(atomio_caps, reason_direct, 72);
ASSERT_OFF(atomio_caps, reason_buffered, 264);
ASSERT_OFF(atomio_caps, reason_doublewrite, 456);
ASSERT_OFF(atomio_caps, reason_auto, 648);
#ifdef ATOMIO_EXPERIMENTAL
/* The experimental raw statx mirror sits at the end: callers without it are 840 bytes. */
ASSERT_SIZE(atomio_caps, 880);
ASSERT_OFF(atomio_caps, statx_mask, 840);
ASSERT_OFF(atomio_caps, dio_mem_align, 844);
ASSERT_OFF(atomio_caps, statx_attributes, 848);
ASSERT_OFF(atomio_caps, dio_offset_align, 856);
ASSERT_OFF(atomio_caps, dio_read_offset_align, 860);
ASSERT_OFF(atomio_caps, unit_min, 864);
ASSERT_OFF(atomio_caps, unit_max, 868);
ASSERT_OFF(atomio_caps, segments_max, 872);
ASSERT_OFF(atomio_caps, unit_max_opt, 876);
#else
ASSERT_SIZE(atomio_caps, 840);
#endif

ASSERT_SIZE(atomio_file_info, 840);
ASSERT_OFF(atomio_file_info, path, 4);
ASSERT_OFF(atomio_file_info, torn_write_safe, 8);
ASSERT_OFF(atomio_file_info, state, 12);
ASSERT_OFF(atomio_file_info, page_size, 16);
ASSERT_OFF(atomio_file_info, io_style, 20);
ASSERT_OFF(atomio_file_info, policy, 24);
ASSERT_OFF(atomio_file_info, submitter, 28);
ASSERT_OFF(atomio_file_info, uring_fallback, 32);
ASSERT_OFF(atomio_file_info, downgrades, 36);
ASSERT_OFF(atomio_file_info, o_direct, 40);
ASSERT_OFF(atomio_file_info, direct_atomic, 44);
ASSERT_OFF(atomio_file_info, file_id, 48);
ASSERT_OFF(atomio_file_info, calib_atomic_ns, 56);
ASSERT_OFF(atomio_file_info, calib_doublewrite_ns, 64);
ASSERT_OFF(atomio_file_info, reason, 72);
ASSERT_OFF(atomio_file_info, reject_direct, 264);
ASSERT_OFF(atomio_file_info, reject_buffered, 456);
ASSERT_OFF(atomio_file_info, reject_doublewrite, 648);

ASSERT_SIZE(atomio_stats, 480);
ASSERT_OFF(atomio_stats, reserved0, 4);
ASSERT_OFF(atomio_stats, pages, 8);
ASSERT_OFF(atomio_stats, bytes_data, 72);
ASSERT_OFF(atomio_stats, bytes_doublewrite, 80);
ASSERT_OFF(atomio_stats, syncs, 88);
ASSERT_OFF(atomio_stats, batches, 96);
ASSERT_OFF(atomio_stats, downgrades, 104);
ASSERT_OFF(atomio_stats, short_writes, 112);
ASSERT_OFF(atomio_stats, failed_syncs, 120);
ASSERT_OFF(atomio_stats, recovered_pages, 128);
ASSERT_OFF(atomio_stats, uring_fallbacks, 136);
ASSERT_OFF(atomio_stats, lat_hist, 144);
ASSERT_OFF(atomio_stats, bounce_copies, 400);
ASSERT_OFF(atomio_stats, forced_syncs, 408);
ASSERT_OFF(atomio_stats, group_commits, 416);
ASSERT_OFF(atomio_stats, group_records, 424);
ASSERT_OFF(atomio_stats, store_bytes, 432);
ASSERT_OFF(atomio_stats, store_bytes_used, 440);
ASSERT_OFF(atomio_stats, attached, 448);
ASSERT_OFF(atomio_stats, pages_staged, 456);
ASSERT_OFF(atomio_stats, staged_reads, 464);
ASSERT_OFF(atomio_stats, staged_now, 472);

ASSERT_SIZE(atomio_recovery_report, 128);
ASSERT_OFF(atomio_recovery_report, reserved0, 4);
ASSERT_OFF(atomio_recovery_report, ring_bytes_scanned, 8);
ASSERT_OFF(atomio_recovery_report, batches_scanned, 16);
ASSERT_OFF(atomio_recovery_report, batches_valid, 24);
ASSERT_OFF(atomio_recovery_report, batches_torn, 32);
ASSERT_OFF(atomio_recovery_report, pages_checked, 40);
ASSERT_OFF(atomio_recovery_report, pages_restored, 48);
ASSERT_OFF(atomio_recovery_report, pages_verified_intact, 56);
ASSERT_OFF(atomio_recovery_report, pages_unrecoverable, 64);
ASSERT_OFF(atomio_recovery_report, files_missing, 72);
ASSERT_OFF(atomio_recovery_report, unknown_file_ids, 80);
ASSERT_OFF(atomio_recovery_report, pages_unapplied, 88);
ASSERT_OFF(atomio_recovery_report, pages_discarded, 96);
ASSERT_OFF(atomio_recovery_report, batches_discarded, 104);
ASSERT_OFF(atomio_recovery_report, headers_repaired, 112);
ASSERT_OFF(atomio_recovery_report, pages_fenced, 120);

ASSERT_SIZE(atomio_page_write, 32);
ASSERT_OFF(atomio_page_write, file, 0);
ASSERT_OFF(atomio_page_write, page_no, 8);
ASSERT_OFF(atomio_page_write, page, 16);
ASSERT_OFF(atomio_page_write, result, 24);
ASSERT_OFF(atomio_page_write, reserved0, 28);
#else
#define LAYOUT_PINNED 0
#endif

Test(opts_abi, layout_pinned_for_this_abi)
{
    if (!LAYOUT_PINNED)
        cr_skip_test("skipped: struct layouts are pinned for LP64 (x86-64, aarch64, riscv64) "
                     "only; this ABI has none recorded");
    /* The _Static_asserts above did the work; reaching here means they compiled. */
    cr_assert_eq(sizeof(atomio_caps), 880);
}

/* ------------------------------------------------------------------------------------------ */
/* Initialisers.                                                                                */

Test(opts_abi, ctx_opts_init_matches_macro)
{
    atomio_ctx_opts m = ATOMIO_CTX_OPTS_INIT;
    atomio_ctx_opts f;
    memset(&f, 0x5a, sizeof(f));
    atomio_ctx_opts_init(&f);
    cr_assert_eq(m.size, sizeof(atomio_ctx_opts));
    cr_assert_eq(f.size, m.size);
    cr_assert_eq(f.flags, m.flags);
    cr_assert_eq(f.doublewrite_dir, m.doublewrite_dir);
    cr_assert_eq(f.policy, m.policy);
    cr_assert_eq(f.submitter, m.submitter);
    cr_assert_eq(f.queue_depth, m.queue_depth);
    cr_assert_eq(f.doublewrite_mode, m.doublewrite_mode);
    cr_assert_eq(f.doublewrite_batch_pages, m.doublewrite_batch_pages);
    cr_assert_eq(f.doublewrite_max_page_size, m.doublewrite_max_page_size);
    cr_assert_eq(f.numa_node, m.numa_node);
    cr_assert_eq(f.numa_node, -1, "default NUMA node is 'the calling thread's' (-1)");
    cr_assert_eq(f.reserved0, m.reserved0);
    cr_assert(f.verify == m.verify);
    cr_assert_eq(f.verify_arg, m.verify_arg);
    cr_assert_eq(f.data_root, m.data_root);
    cr_assert(f.unapplied == m.unapplied);
    cr_assert_eq(f.unapplied_arg, m.unapplied_arg);
    cr_assert_eq(f.instance, m.instance);
    cr_assert_eq(f.doublewrite_store_bytes, m.doublewrite_store_bytes);
    cr_assert_eq(f.write_behind_bytes, m.write_behind_bytes);
    for (size_t i = 0; i < sizeof(f.reserved) / sizeof(f.reserved[0]); i++)
        cr_assert_eq(f.reserved[i], 0);
    atomio_ctx_opts_init(NULL); /* documented no-op */
}

Test(opts_abi, file_opts_init_matches_macro)
{
    atomio_file_opts m = ATOMIO_FILE_OPTS_INIT;
    atomio_file_opts f;
    memset(&f, 0x5a, sizeof(f));
    atomio_file_opts_init(&f);
    cr_assert_eq(m.size, sizeof(atomio_file_opts));
    cr_assert_eq(f.size, m.size);
    cr_assert_eq(f.flags, m.flags);
    cr_assert_eq(f.page_size, m.page_size);
    cr_assert_eq(f.io_style, m.io_style);
    cr_assert_eq(f.path, m.path);
    cr_assert_eq(f.path, ATOMIO_PATH_AUTO);
    cr_assert_eq(f.policy, m.policy);
    cr_assert_eq(f.file_id, m.file_id);
    cr_assert_eq(f.mode, m.mode);
    cr_assert_eq(f.reserved0, m.reserved0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(f.reserved[i], 0);
    atomio_file_opts_init(NULL);
}

Test(opts_abi, output_init_macros_set_size)
{
    atomio_caps c = ATOMIO_CAPS_INIT;
    atomio_file_info i = ATOMIO_FILE_INFO_INIT;
    atomio_stats s = ATOMIO_STATS_INIT;
    atomio_recovery_report r = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(c.size, sizeof(c));
    cr_assert_eq(i.size, sizeof(i));
    cr_assert_eq(s.size, sizeof(s));
    cr_assert_eq(r.size, sizeof(r));
}

/* ------------------------------------------------------------------------------------------ */
/* Option structs in: ctx.                                                                      */

struct ctx_opts_newer {
    atomio_ctx_opts o;
    unsigned char tail[40];
};

Test(opts_abi, ctx_opts_older_caller_gets_defaults)
{
    /* A caller compiled before numa_node existed: the library must not read its missing
     * numa_node as 0 (a real node) but as the default, -1. */
    atomio_ctx_opts o;
    memset(&o, 0, sizeof(o));
    o.size = offsetof(atomio_ctx_opts, numa_node);
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&o, &ctx);
    cr_assert_eq(r, 0, "older ctx opts refused: %s", atomio_err_name(r));
    cr_assert_eq(ctx->opts.numa_node, -1, "missing numa_node read as %d, not the default -1",
                 ctx->opts.numa_node);
    cr_assert_eq(ctx->opts.size, sizeof(atomio_ctx_opts));
    cr_assert_eq(atomio_ctx_close(ctx), 0);

    /* The smallest struct a caller can have: size and flags. */
    memset(&o, 0, sizeof(o));
    o.size = 8;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    r = atomio_ctx_open(&o, &ctx);
    cr_assert_eq(r, 0, "8-byte ctx opts refused: %s", atomio_err_name(r));
    cr_assert_eq(ctx->opts.numa_node, -1);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(opts_abi, ctx_opts_full_size_keeps_explicit_node_zero)
{
    /* The default fix-up above must only apply to callers that lack the field. */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    o.numa_node = 0;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&o, &ctx);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));
    cr_assert_eq(ctx->opts.numa_node, 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(opts_abi, ctx_opts_newer_caller_zero_tail_accepted)
{
    struct ctx_opts_newer n;
    memset(&n, 0, sizeof(n));
    atomio_ctx_opts_init(&n.o);
    n.o.size = sizeof(n);
    n.o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    n.o.submitter = ATOMIO_SUBMIT_SYNC;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&n.o, &ctx);
    cr_assert_eq(r, 0, "larger ctx opts with zero tail refused: %s", atomio_err_name(r));
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(opts_abi, ctx_opts_newer_caller_nonzero_tail_refused)
{
    for (size_t at = 0; at < sizeof(((struct ctx_opts_newer *)0)->tail); at += 13) {
        struct ctx_opts_newer n;
        memset(&n, 0, sizeof(n));
        atomio_ctx_opts_init(&n.o);
        n.o.size = sizeof(n);
        n.o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
        n.tail[at] = 1;
        atomio_ctx *c = NULL;
        int r = atomio_ctx_open(&n.o, &c);
        cr_assert_eq(r, ATOMIO_E_ABI, "non-zero tail byte %zu: got %s", at, atomio_err_name(r));
        cr_assert_null(c);
    }
}

Test(opts_abi, ctx_opts_bad_sizes_refused)
{
    const uint32_t sizes[] = {0, 1, 4, 7};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
        o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
        o.size = sizes[i];
        atomio_ctx *ctx = NULL;
        int r = atomio_ctx_open(&o, &ctx);
        cr_assert_eq(r, ATOMIO_E_ABI, "size %u: got %s", sizes[i], atomio_err_name(r));
        cr_assert_null(ctx, "size %u: a ctx was handed out on error", sizes[i]);
    }
}

Test(opts_abi, ctx_opts_nonzero_reserved_refused)
{
    /* Reserved fields are the in-struct form of the unknown tail: a caller setting them asks
     * for something this library does not know, so it must refuse, never ignore. */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.reserved0 = 1;
    atomio_ctx *ctx = NULL;
    int r = atomio_ctx_open(&o, &ctx);
    cr_assert(r == ATOMIO_E_INVAL || r == ATOMIO_E_ABI, "reserved0 = 1: got %s",
              atomio_err_name(r));
    atomio_ctx_opts_init(&o);
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.reserved[2] = 1;
    r = atomio_ctx_open(&o, &ctx);
    cr_assert(r == ATOMIO_E_INVAL || r == ATOMIO_E_ABI, "reserved[2] = 1: got %s",
              atomio_err_name(r));
}

/* ------------------------------------------------------------------------------------------ */
/* Option structs in: file.                                                                     */

struct file_opts_newer {
    atomio_file_opts o;
    unsigned char tail[24];
};

static char dir[PATH_MAX];
static atomio_ctx *ctx;

static void
setup_dir(void)
{
    t_tmpdir(dir, sizeof(dir));
    ctx = t_ctx_open(NULL);
}

/* teardown_dir() -- idempotent: also called before cr_skip_test(), which skips .fini */
static void
teardown_dir(void)
{
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    t_rmtree(dir);
    dir[0] = '\0';
}

Test(opts_abi, file_opts_older_caller_gets_defaults, .init = setup_dir, .fini = teardown_dir)
{
    /* A caller that knows only size..policy: file_id and mode take their defaults (derived id,
     * mode 0600). */
    const char *p = t_join(dir, "old");
    atomio_file_opts o;
    memset(&o, 0, sizeof(o));
    o.size = offsetof(atomio_file_opts, file_id);
    o.flags = ATOMIO_FILE_CREATE;
    o.page_size = 4096;
    o.path = ATOMIO_PATH_UNSAFE;
    o.io_style = ATOMIO_IO_BUFFERED;
    mode_t old_umask = umask(0);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, p, &o, &f);
    umask(old_umask);
    cr_assert_eq(r, 0, "older file opts refused: %s", atomio_err_name(r));
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "default creation mode 0600, got %o",
                 (unsigned)(st.st_mode & 07777));
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.page_size, 4096);
    cr_assert_eq(fi.path, ATOMIO_PATH_UNSAFE);
    cr_assert_neq(fi.file_id, 0, "a missing file_id must be derived, not left 0");
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(opts_abi, file_opts_newer_caller_zero_tail_accepted, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "newer");
    struct file_opts_newer n;
    memset(&n, 0, sizeof(n));
    atomio_file_opts_init(&n.o);
    n.o.size = sizeof(n);
    n.o.flags = ATOMIO_FILE_CREATE;
    n.o.page_size = 4096;
    n.o.path = ATOMIO_PATH_UNSAFE;
    n.o.io_style = ATOMIO_IO_BUFFERED;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, p, &n.o, &f);
    cr_assert_eq(r, 0, "larger file opts with zero tail refused: %s", atomio_err_name(r));
    cr_assert_eq(t_info(f).page_size, 4096);
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(opts_abi, file_opts_newer_caller_nonzero_tail_refused, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "never");
    for (size_t at = 0; at < sizeof(((struct file_opts_newer *)0)->tail); at += 7) {
        struct file_opts_newer n;
        memset(&n, 0, sizeof(n));
        atomio_file_opts_init(&n.o);
        n.o.size = sizeof(n);
        n.o.flags = ATOMIO_FILE_CREATE;
        n.o.page_size = 4096;
        n.o.path = ATOMIO_PATH_UNSAFE;
        n.tail[at] = 0x80;
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, p, &n.o, &f);
        cr_assert_eq(r, ATOMIO_E_ABI, "non-zero tail byte %zu: got %s", at, atomio_err_name(r));
        cr_assert_null(f);
        cr_assert_eq(access(p, F_OK), -1, "refused options still created %s", p);
    }
}

Test(opts_abi, file_opts_bad_sizes_refused, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "never");
    const uint32_t sizes[] = {0, 3, 4, 7};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, 0, ATOMIO_FILE_CREATE);
        o.size = sizes[i];
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, p, &o, &f);
        cr_assert_eq(r, ATOMIO_E_ABI, "size %u: got %s", sizes[i], atomio_err_name(r));
        cr_assert_null(f);
        cr_assert_eq(access(p, F_OK), -1, "refused options still created %s", p);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Output structs: filled only up to the caller's size.                                         */

#define GUARD 0xA5
#define SLACK 64

/* A caller buffer of `size` bytes (as the caller knows the struct) followed by guard bytes. */
static unsigned char *
guarded(uint32_t size, size_t lib_size)
{
    size_t total = (size > lib_size ? size : lib_size) + SLACK;
    unsigned char *b = malloc(total);
    cr_assert_not_null(b);
    memset(b, GUARD, total);
    memcpy(b, &size, sizeof(size));
    return b;
}

static void
assert_guard(const unsigned char *b, size_t from, size_t to, const char *what)
{
    for (size_t i = from; i < to; i++)
        cr_assert_eq(b[i], GUARD, "%s: byte %zu beyond the caller's struct was written", what, i);
}

Test(opts_abi, caps_smaller_filled_only_up_to_size, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "data");
    t_make_file(p, 8192, 1);
    const uint32_t sizes[] = {8, 12, 30, offsetof(atomio_caps, reason_direct),
                              offsetof(atomio_caps, reason_auto) + 5};
    atomio_caps full = ATOMIO_CAPS_INIT;
    cr_assert_eq(atomio_probe(p, 4096, &full), 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *b = guarded(sizes[i], sizeof(atomio_caps));
        int r = atomio_probe(p, 4096, (atomio_caps *)b);
        cr_assert_eq(r, 0, "caps size %u: %s", sizes[i], atomio_err_name(r));
        uint32_t size;
        memcpy(&size, b, 4);
        cr_assert_eq(size, sizes[i], "the library rewrote the caller's size");
        assert_guard(b, sizes[i], sizeof(atomio_caps) + SLACK, "atomio_probe");
        /* What fits is the real content: the figures and verdicts of a full-size probe. */
        size_t upto = sizes[i] < offsetof(atomio_caps, reason_direct)
                          ? sizes[i]
                          : offsetof(atomio_caps, reason_direct);
        if (upto > 8)
            cr_assert_eq(memcmp(b + 8, (const unsigned char *)&full + 8, upto - 8), 0,
                         "a %u-byte caps holds other figures than a full one", sizes[i]);
        free(b);
    }
}

Test(opts_abi, caps_larger_tail_zeroed, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "data");
    t_make_file(p, 4096, 1);
    uint32_t size = sizeof(atomio_caps) + 32;
    unsigned char *b = guarded(size, sizeof(atomio_caps));
    int r = atomio_probe(p, 4096, (atomio_caps *)b);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));
    for (size_t i = sizeof(atomio_caps); i < size; i++)
        cr_assert_eq(b[i], 0, "byte %zu of a newer caller's caps left as garbage", i);
    assert_guard(b, size, size + SLACK, "atomio_probe (larger)");
    cr_assert_eq(((atomio_caps *)b)->page_size, 4096);
    free(b);
}

Test(opts_abi, output_size_too_small_refused, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "data");
    t_make_file(p, 4096, 1);
    for (uint32_t size = 0; size < 8; size += 4) {
        unsigned char *b = guarded(size, sizeof(atomio_caps));
        cr_assert_eq(atomio_probe(p, 4096, (atomio_caps *)b), ATOMIO_E_ABI, "caps size %u", size);
        assert_guard(b, 4, sizeof(atomio_caps), "refused caps");
        free(b);
    }
}

Test(opts_abi, file_info_and_stats_smaller, .init = setup_dir, .fini = teardown_dir)
{
    const char *p = t_join(dir, "data");
    atomio_file_opts o =
        t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_CREATE);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, p, &o, &f);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));

    const uint32_t isz[] = {8, 20, offsetof(atomio_file_info, reason),
                            offsetof(atomio_file_info, reject_direct) + 3};
    for (size_t i = 0; i < sizeof(isz) / sizeof(isz[0]); i++) {
        unsigned char *b = guarded(isz[i], sizeof(atomio_file_info));
        r = atomio_file_get_info(f, (atomio_file_info *)b);
        cr_assert_eq(r, 0, "info size %u: %s", isz[i], atomio_err_name(r));
        assert_guard(b, isz[i], sizeof(atomio_file_info) + SLACK, "atomio_file_get_info");
        uint32_t path;
        memcpy(&path, b + offsetof(atomio_file_info, path), 4);
        cr_assert_eq(path, ATOMIO_PATH_UNSAFE);
        if (isz[i] >= 20) {
            uint32_t ps;
            memcpy(&ps, b + offsetof(atomio_file_info, page_size), 4);
            cr_assert_eq(ps, 4096);
        }
        free(b);
    }

    void *page = aligned_alloc(4096, 4096);
    t_fill(page, 4096, 7);
    cr_assert_eq(atomio_write(f, 0, page, 0), 0);
    free(page);
    const uint32_t ssz[] = {8, offsetof(atomio_stats, bytes_data), offsetof(atomio_stats, lat_hist),
                            offsetof(atomio_stats, lat_hist) + 12};
    for (size_t i = 0; i < sizeof(ssz) / sizeof(ssz[0]); i++) {
        unsigned char *b = guarded(ssz[i], sizeof(atomio_stats));
        r = atomio_file_get_stats(f, (atomio_stats *)b);
        cr_assert_eq(r, 0, "stats size %u: %s", ssz[i], atomio_err_name(r));
        assert_guard(b, ssz[i], sizeof(atomio_stats) + SLACK, "atomio_file_get_stats");
        if (ssz[i] >= offsetof(atomio_stats, bytes_data)) {
            uint64_t n;
            memcpy(&n, b + offsetof(atomio_stats, pages) + 8 * ATOMIO_PATH_UNSAFE, 8);
            cr_assert_eq(n, 1, "pages[UNSAFE] in a short stats struct");
        }
        free(b);
        b = guarded(ssz[i], sizeof(atomio_stats));
        r = atomio_ctx_get_stats(ctx, (atomio_stats *)b);
        cr_assert_eq(r, 0, "ctx stats size %u: %s", ssz[i], atomio_err_name(r));
        assert_guard(b, ssz[i], sizeof(atomio_stats) + SLACK, "atomio_ctx_get_stats");
        free(b);
    }
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(opts_abi, recovery_report_smaller, .init = setup_dir, .fini = teardown_dir)
{
    char store[PATH_MAX + 8];
    snprintf(store, sizeof(store), "%s/dblwr", dir);
    cr_assert_eq(mkdir(store, 0700), 0); /* the store directory must exist */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.doublewrite_dir = store;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    o.flags = ATOMIO_CTX_NO_RECOVER;
    atomio_ctx *c = NULL;
    int r = atomio_ctx_open(&o, &c);
    if (r == -ENOSYS || r == ATOMIO_E_NO_DOUBLEWRITE) {
        teardown_dir();
        cr_skip_test("skipped: this build has no doublewrite store yet (%s)", atomio_err_name(r));
    }
    cr_assert_eq(r, 0, "ctx with a store: %s", atomio_err_name(r));
    const uint32_t sizes[] = {8, offsetof(atomio_recovery_report, batches_valid),
                              offsetof(atomio_recovery_report, unknown_file_ids) + 4};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *b = guarded(sizes[i], sizeof(atomio_recovery_report));
        r = atomio_ctx_recover(c, (atomio_recovery_report *)b);
        cr_assert_eq(r, 0, "report size %u: %s", sizes[i], atomio_err_name(r));
        assert_guard(b, sizes[i], sizeof(atomio_recovery_report) + SLACK, "atomio_ctx_recover");
        free(b);
    }
    cr_assert_eq(atomio_ctx_close(c), 0);
}
