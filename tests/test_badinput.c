/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c -- every invalid argument gets its own error code and nothing is written
 * ("bad input"): misaligned buffers on O_DIRECT files, page numbers beyond a 64-bit
 * offset, bad page sizes, page sizes outside a forced DIRECT_ATOMIC file's atomic units, NULL
 * handles and pointers, wrong option sizes, unknown flags and enum values, writes to read-only
 * files and read-only filesystems, closed handles. Each check compares the data file's bytes,
 * size and mtime before and after.
 *
 * Runs without root on $TMPDIR (a file is made to look atomic-capable by faking the atomic
 * figures of statx where a forced DIRECT_ATOMIC file is needed); the read-only filesystem case
 * mounts its own tmpfs as root, and uses a 0444 file as non-root.
 */
#include "t_core.h"
#include "t_seam.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define NPAGES 8

static char dir[PATH_MAX];
static char data[PATH_MAX + 8];
static atomio_ctx *ctx;
static unsigned char *buf; /* 2 x 1 MiB, 1 MiB-aligned, patterned */
static struct t_snap snap;
static unsigned n_writes;
static dev_t data_dev;
static ino_t data_ino;

/* count_pwritev2() -- count writes that reach the data file (the buffered-atomic probe writes
 * to a scratch O_TMPFILE and does not count). */
static ssize_t
count_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == data_dev && st.st_ino == data_ino)
        n_writes++;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static void
setup(void)
{
    unsetenv("ATOMIO_PATH");
    t_tmpdir(dir, sizeof(dir));
    snprintf(data, sizeof(data), "%s/data", dir);
    t_make_file(data, NPAGES * 4096, 11);
    ctx = t_ctx_open(NULL);
    buf = aligned_alloc(1 << 20, 2 << 20);
    cr_assert_not_null(buf);
    t_fill(buf, 2 << 20, 12);
    atomio__caps_cache_clear();
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;
    atomio__sys.pwritev2 = count_pwritev2;
    n_writes = 0;
    snap = t_snapshot(data);
}

static void
teardown(void)
{
    atomio__sys = atomio__sys_real;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    free(buf);
    buf = NULL;
    t_rmtree(dir);
    dir[0] = '\0';
}

static atomio_file *
open_data(uint32_t page, uint32_t which, uint32_t style, uint32_t flags)
{
    atomio_file_opts o = t_file_opts(page, which, style, flags);
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &o, &f);
    if (r == -EINVAL && style == ATOMIO_IO_DIRECT) {
        char where[PATH_MAX];
        snprintf(where, sizeof(where), "%s", dir);
        teardown(); /* cr_skip_test() skips .fini */
        cr_skip_test("skipped: $TMPDIR (%s) refuses O_DIRECT, cannot make a direct file", where);
    }
    cr_assert_eq(r, 0, "open %s/%s page %u: %s", atomio_path_name(which),
                 atomio_io_style_name(style), page, atomio_err_name(r));
    return f;
}

#define NOTHING_WRITTEN(what)                                                                      \
    do {                                                                                           \
        cr_assert_eq(n_writes, 0, "%s: %u writes issued", what, n_writes);                         \
        t_assert_unchanged(data, snap, what);                                                      \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Buffers, page numbers.                                                                       */

/* Without ATOMIO_FILE_NO_COPY a misaligned page is copied through an aligned bounce buffer
 * (test_bounce.c); with it, it is refused and nothing is written. */
Test(badinput, misaligned_buffer_on_direct_files, .init = setup, .fini = teardown)
{
    atomio_file *f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_DIRECT, ATOMIO_FILE_NO_COPY);
    cr_assert_eq(t_info(f).o_direct, 1);
    int r = atomio_write(f, 1, buf + 8, 0);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "UNSAFE O_DIRECT, buffer +8: %s", atomio_err_name(r));
    r = atomio_read(f, 1, buf + 8);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "O_DIRECT read into buffer +8: %s", atomio_err_name(r));
    atomio_page_write w = {f, 2, buf + 8, 0, 0};
    r = atomio_write_batch(ctx, &w, 1, 0);
    cr_assert_eq(w.result, ATOMIO_E_UNALIGNED, "batch entry +8: %s", atomio_err_name(w.result));
    cr_assert_eq(r, 0);
    cr_assert_eq(atomio_file_close(f), 0);

    atomio__sys.statx = t_statx_sw_atomic;
    f = open_data(4096, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, ATOMIO_FILE_NO_COPY);
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DIRECT_ATOMIC);
    r = atomio_write(f, 1, buf + 8, 0);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "DIRECT_ATOMIC, buffer +8: %s", atomio_err_name(r));
    /* one buffer aligned to max(dio_mem_align, 4096) */
    r = atomio_write(f, 1, buf + 512, 0);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "DIRECT_ATOMIC, buffer +512: %s", atomio_err_name(r));
    r = atomio_write(f, 1, buf + 2048, ATOMIO_WRITE_DSYNC);
    cr_assert_eq(r, ATOMIO_E_UNALIGNED, "DIRECT_ATOMIC, buffer +2048: %s", atomio_err_name(r));
    cr_assert_eq(atomio_file_close(f), 0);
    NOTHING_WRITTEN("misaligned buffers");
}

Test(badinput, page_number_beyond_64_bit_offsets, .init = setup, .fini = teardown)
{
    const uint32_t sizes[] = {4096, 16384};
    for (size_t i = 0; i < 2; i++) {
        uint32_t ps = sizes[i];
        atomio_file *f = open_data(ps, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        const uint64_t bad[] = {UINT64_MAX / ps + 1, UINT64_MAX / ps + 2, UINT64_MAX,
                                UINT64_MAX / 2, /* offset way past 2^63 */
                                ((uint64_t)INT64_MAX + 1) / ps /* offset exactly 2^63 */};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            int r = atomio_write(f, bad[k], buf, 0);
            cr_assert_eq(r, ATOMIO_E_RANGE, "page %u, page_no %llu: write gave %s", ps,
                         (unsigned long long)bad[k], atomio_err_name(r));
            r = atomio_read(f, bad[k], buf + (1 << 20));
            cr_assert_eq(r, ATOMIO_E_RANGE, "page %u, page_no %llu: read gave %s", ps,
                         (unsigned long long)bad[k], atomio_err_name(r));
            atomio_page_write w = {f, bad[k], buf, 0, 0};
            r = atomio_write_batch(ctx, &w, 1, 0);
            cr_assert_eq(w.result, ATOMIO_E_RANGE, "batch page_no %llu: %s",
                         (unsigned long long)bad[k], atomio_err_name(w.result));
        }
        cr_assert_eq(atomio_file_close(f), 0);
    }
    NOTHING_WRITTEN("page numbers out of range");
}

/* ------------------------------------------------------------------------------------------ */
/* Page sizes.                                                                                  */

Test(badinput, bad_page_sizes, .init = setup, .fini = teardown)
{
    const uint32_t bad[] = {0, 1, 256, 511, 3000, 4097, 12288, 2u << 20, 1u << 31, UINT32_MAX};
    const char *fresh = t_join(dir, "fresh");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        atomio_file_opts o = t_file_opts(bad[i], ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, ATOMIO_E_PAGE_SIZE, "open with page size %u: %s", bad[i],
                     atomio_err_name(r));
        cr_assert_null(f);
        o.flags = ATOMIO_FILE_CREATE;
        r = atomio_file_open(ctx, fresh, &o, &f);
        cr_assert_eq(r, ATOMIO_E_PAGE_SIZE, "create with page size %u: %s", bad[i],
                     atomio_err_name(r));
        cr_assert_eq(access(fresh, F_OK), -1, "page size %u refused, but the file was created",
                     bad[i]);
        atomio_caps c = ATOMIO_CAPS_INIT;
        r = atomio_probe(data, bad[i], &c);
        cr_assert_eq(r, ATOMIO_E_PAGE_SIZE, "probe with page size %u: %s", bad[i],
                     atomio_err_name(r));
    }
    /* the edges are fine */
    const uint32_t good[] = {512, 1u << 20};
    for (size_t i = 0; i < 2; i++) {
        atomio_file *f = open_data(good[i], ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        cr_assert_eq(atomio_file_close(f), 0);
    }
    NOTHING_WRITTEN("bad page sizes");
}

Test(badinput, page_alloc_refuses_bad_page_sizes, .init = setup, .fini = teardown)
{
    /* (1 << 31 is left out: an allocator that wrongly accepts it would allocate 2 GiB) */
    const uint32_t bad[] = {0, 1, 256, 511, 3000, 4097, 12288, 2u << 20, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *p = atomio_page_alloc(ctx, bad[i], 1);
        if (p)
            atomio_page_free(ctx, p, bad[i], 1); /* no leak report on top of the failure */
        cr_assert_null(p, "atomio_page_alloc with page size %u", bad[i]);
    }
    cr_assert_null(atomio_page_alloc(ctx, 4096, 0), "atomio_page_alloc of 0 pages");
    void *p = atomio_page_alloc(ctx, 512, 3);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 4096, 0, "page buffers are at least 4 KiB aligned");
    atomio_page_free(ctx, p, 512, 3);
}

Test(badinput, page_size_outside_atomic_units_for_forced_direct, .init = setup, .fini = teardown)
{
    atomio__sys.statx = t_statx_sw_atomic; /* units 4 KiB .. 64 KiB */
    const uint32_t outside[] = {512, 2048, 131072, 1u << 20};
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        atomio_file_opts o =
            t_file_opts(outside[i], ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, ATOMIO_E_PATH_UNSUPPORTED,
                     "forced DIRECT_ATOMIC, page %u outside [4096, 65536]: %s", outside[i],
                     atomio_err_name(r));
        cr_assert_null(f);
        atomio_caps c = ATOMIO_CAPS_INIT;
        cr_assert_eq(atomio_probe(data, outside[i], &c), 0);
        cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_NONE);
        cr_assert(c.reason_direct[0], "page %u: no reason in the probe", outside[i]);
    }
    /* inside the units it opens */
    atomio_file *f = open_data(65536, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, 0);
    cr_assert_eq(atomio_file_close(f), 0);
    NOTHING_WRITTEN("page sizes outside the atomic units");
}

/* ------------------------------------------------------------------------------------------ */
/* NULLs.                                                                                       */

Test(badinput, null_handles_and_pointers, .init = setup, .fini = teardown)
{
    atomio_file *f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
    co.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    atomio_file *out = NULL;
    atomio_caps caps = ATOMIO_CAPS_INIT;
    atomio_file_info fi = ATOMIO_FILE_INFO_INIT;
    atomio_stats st = ATOMIO_STATS_INIT;
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;

#define INVAL(call)                                                                                \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        cr_assert_eq(r_, ATOMIO_E_INVAL, "%s gave %s", #call, atomio_err_name(r_));                \
    } while (0)
    INVAL(atomio_ctx_open(&co, NULL));
    INVAL(atomio_file_open(NULL, data, &o, &out));
    INVAL(atomio_file_open(ctx, NULL, &o, &out));
    INVAL(atomio_file_open(ctx, data, &o, NULL));
    cr_assert_null(out);
    INVAL(atomio_probe(NULL, 4096, &caps));
    INVAL(atomio_probe(data, 4096, NULL));
    INVAL(atomio_write(NULL, 0, buf, 0));
    INVAL(atomio_write(f, 0, NULL, 0));
    INVAL(atomio_read(NULL, 0, buf));
    INVAL(atomio_read(f, 0, NULL));
    INVAL(atomio_sync(NULL));
    INVAL(atomio_ctx_sync(NULL));
    INVAL(atomio_file_get_info(NULL, &fi));
    INVAL(atomio_file_get_info(f, NULL));
    INVAL(atomio_file_get_caps(NULL, &caps));
    INVAL(atomio_file_get_caps(f, NULL));
    INVAL(atomio_file_get_stats(NULL, &st));
    INVAL(atomio_file_get_stats(f, NULL));
    INVAL(atomio_ctx_get_stats(NULL, &st));
    INVAL(atomio_ctx_get_stats(ctx, NULL));
    INVAL(atomio_ctx_recover(NULL, &rep));
    atomio_page_write one = {f, 0, buf, 0, 0};
    INVAL(atomio_write_batch(NULL, &one, 1, 0));
    INVAL(atomio_write_batch(ctx, NULL, 1, 0));

    /* in a batch, a bad entry gets its error and the good ones are written */
    atomio_page_write w[3] = {{NULL, 0, buf, 0, 0}, {f, 1, NULL, 0, 0}, {f, 2, buf, 0, 0}};
    int r = atomio_write_batch(ctx, w, 3, 0);
    cr_assert_eq(w[0].result, ATOMIO_E_INVAL, "NULL file entry: %s", atomio_err_name(w[0].result));
    cr_assert_eq(w[1].result, ATOMIO_E_INVAL, "NULL page entry: %s", atomio_err_name(w[1].result));
    cr_assert_eq(w[2].result, 0, "good entry: %s", atomio_err_name(w[2].result));
    cr_assert_eq(r, 1, "batch reported %d written", r);
    cr_assert_eq(n_writes, 1, "%u writes for one good entry", n_writes);
    unsigned char raw[4096];
    t_pread_file(data, raw, 4096, 2 * 4096);
    cr_assert_eq(memcmp(raw, buf, 4096), 0, "the good batch entry was not written");
    t_pread_file(data, raw, 4096, 0);
    unsigned char orig[NPAGES * 4096];
    t_fill(orig, sizeof(orig), 11);
    cr_assert_eq(memcmp(raw, orig, 4096), 0, "the NULL-file entry's page 0 changed");
    t_pread_file(data, raw, 4096, 4096);
    cr_assert_eq(memcmp(raw, orig + 4096, 4096), 0, "the NULL-page entry's page 1 changed");

    atomio_page_free(ctx, NULL, 4096, 1); /* documented no-op */
    cr_assert_eq(atomio_file_close(f), 0);
#undef INVAL
}

Test(badinput, close_null_is_a_no_op)
{
    cr_assert_eq(atomio_file_close(NULL), 0);
    cr_assert_eq(atomio_ctx_close(NULL), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Option sizes, unknown flags and enum values.                                                 */

Test(badinput, wrong_option_sizes, .init = setup, .fini = teardown)
{
    const uint32_t sizes[] = {0, 4, 7};
    for (size_t i = 0; i < 3; i++) {
        atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        o.size = sizes[i];
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, ATOMIO_E_ABI, "file opts size %u: %s", sizes[i], atomio_err_name(r));
        atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
        co.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
        co.size = sizes[i];
        atomio_ctx *c = NULL;
        r = atomio_ctx_open(&co, &c);
        cr_assert_eq(r, ATOMIO_E_ABI, "ctx opts size %u: %s", sizes[i], atomio_err_name(r));
    }
    /* a larger struct whose unknown tail is not zero */
    struct {
        atomio_file_opts o;
        uint64_t next;
    } big;
    memset(&big, 0, sizeof(big));
    big.o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    big.o.size = sizeof(big);
    big.next = 1;
    atomio_file *f = NULL;
    int r = atomio_file_open(ctx, data, &big.o, &f);
    cr_assert_eq(r, ATOMIO_E_ABI, "non-zero tail: %s", atomio_err_name(r));
    /* output structs too */
    atomio_file_info fi = ATOMIO_FILE_INFO_INIT;
    fi.size = 4;
    f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    r = atomio_file_get_info(f, &fi);
    cr_assert_eq(r, ATOMIO_E_ABI, "file_info size 4: %s", atomio_err_name(r));
    atomio_stats st = ATOMIO_STATS_INIT;
    st.size = 0;
    r = atomio_file_get_stats(f, &st);
    cr_assert_eq(r, ATOMIO_E_ABI, "stats size 0: %s", atomio_err_name(r));
    cr_assert_eq(atomio_file_close(f), 0);
    NOTHING_WRITTEN("wrong option sizes");
}

Test(badinput, unknown_flags_and_enum_values, .init = setup, .fini = teardown)
{
    struct {
        const char *what;
        uint32_t flags, style, path, policy;
    } fcases[] = {
        {"file flag 0x100", 0x100, ATOMIO_IO_BUFFERED, ATOMIO_PATH_UNSAFE, 0},
        {"file flag 0x80000000", 0x80000000u, ATOMIO_IO_BUFFERED, ATOMIO_PATH_UNSAFE, 0},
        {"io_style 3", 0, 3, ATOMIO_PATH_UNSAFE, 0},
        {"path 5", 0, ATOMIO_IO_BUFFERED, (ATOMIO_PATH_UNSAFE + 1), 0},
        {"path 0xffffffff", 0, ATOMIO_IO_BUFFERED, UINT32_MAX, 0},
        {"policy 4", 0, ATOMIO_IO_BUFFERED, ATOMIO_PATH_UNSAFE, 4},
    };
    for (size_t i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
        atomio_file_opts o = t_file_opts(4096, fcases[i].path, fcases[i].style, fcases[i].flags);
        o.policy = fcases[i].policy;
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, ATOMIO_E_INVAL, "%s: %s", fcases[i].what, atomio_err_name(r));
        cr_assert_null(f);
    }
    struct {
        const char *what;
        uint32_t flags, policy, submitter;
    } ccases[] = {
        {"ctx flag 0x100", ATOMIO_CTX_NO_DOUBLEWRITE | 0x100, 0, 0},
        {"ctx policy 4", ATOMIO_CTX_NO_DOUBLEWRITE, 4, 0},
        {"ctx submitter 3", ATOMIO_CTX_NO_DOUBLEWRITE, 0, 3},
    };
    for (size_t i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
        atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
        co.flags = ccases[i].flags;
        co.policy = ccases[i].policy;
        co.submitter = ccases[i].submitter;
        atomio_ctx *c = NULL;
        int r = atomio_ctx_open(&co, &c);
        cr_assert_eq(r, ATOMIO_E_INVAL, "%s: %s", ccases[i].what, atomio_err_name(r));
        cr_assert_null(c);
    }
    atomio_file *f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    int r = atomio_write(f, 0, buf, 0x80);
    cr_assert_eq(r, ATOMIO_E_INVAL, "write flag 0x80: %s", atomio_err_name(r));
    atomio_page_write w = {f, 0, buf, 0, 0};
    r = atomio_write_batch(ctx, &w, 1, 0x80);
    cr_assert_eq(r, ATOMIO_E_INVAL, "batch flag 0x80: %s", atomio_err_name(r));
    /* the first bit past the known ones, alone and next to them */
    const uint32_t next = (ATOMIO_WRITE_DSYNC | ATOMIO_WRITE_STABLE_PAGES) + 1;
    r = atomio_write(f, 0, buf, next | ATOMIO_WRITE_STABLE_PAGES);
    cr_assert_eq(r, ATOMIO_E_INVAL, "write flag 0x%x: %s", next, atomio_err_name(r));
    r = atomio_write_batch(ctx, &w, 1, next);
    cr_assert_eq(r, ATOMIO_E_INVAL, "batch flag 0x%x: %s", next, atomio_err_name(r));
    cr_assert_eq(atomio_file_close(f), 0);
    NOTHING_WRITTEN("unknown flags and enum values");
}

/* ------------------------------------------------------------------------------------------ */
/* Read-only files and filesystems.                                                             */

Test(badinput, write_to_file_opened_read_only, .init = setup, .fini = teardown)
{
    atomio_file *f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, ATOMIO_FILE_RDONLY);
    int r = atomio_write(f, 0, buf, 0);
    cr_assert_eq(r, ATOMIO_E_READ_ONLY, "write to a RDONLY file: %s", atomio_err_name(r));
    r = atomio_write(f, 3, buf, ATOMIO_WRITE_DSYNC);
    cr_assert_eq(r, ATOMIO_E_READ_ONLY, "DSYNC write to a RDONLY file: %s", atomio_err_name(r));
    atomio_page_write w = {f, 1, buf, 0, 0};
    r = atomio_write_batch(ctx, &w, 1, 0);
    cr_assert_eq(w.result, ATOMIO_E_READ_ONLY, "batch to a RDONLY file: %s",
                 atomio_err_name(w.result));
    /* reading is what it is for */
    unsigned char back[4096], orig[NPAGES * 4096];
    t_fill(orig, sizeof(orig), 11);
    cr_assert_eq(atomio_read(f, 2, back), 0);
    cr_assert_eq(memcmp(back, orig + 2 * 4096, 4096), 0);
    cr_assert_eq(t_info(f).state, ATOMIO_STATE_OK, "a refused write failed the file");
    cr_assert_eq(atomio_file_close(f), 0);
    NOTHING_WRITTEN("writes to a read-only handle");
}

Test(badinput, read_write_open_of_unwritable_file, .fini = teardown)
{
    if (t_is_root()) {
        /* root ignores 0444; a read-only mount stops it for real */
        static struct t_fs fs;
        t_fs_mount(&fs, "tmpfs", 16);
        unsetenv("ATOMIO_PATH");
        snprintf(dir, sizeof(dir), "%s", fs.tmp); /* teardown removes it after unmount */
        snprintf(data, sizeof(data), "%s/data", fs.dir);
        t_make_file(data, NPAGES * 4096, 11);
        cr_assert_eq(mount(NULL, fs.dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0,
                     "remount read-only: %s", strerror(errno));
        snap = t_snapshot(data);
        ctx = t_ctx_open(NULL);
        atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, -EROFS, "read-write open on a read-only mount: %s", atomio_err_name(r));
        cr_assert_null(f);
        o.flags = ATOMIO_FILE_RDONLY;
        r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, 0, "read-only open on a read-only mount: %s", atomio_err_name(r));
        unsigned char page[4096];
        t_fill(page, sizeof(page), 5);
        cr_assert_eq(atomio_write(f, 0, page, 0), ATOMIO_E_READ_ONLY);
        cr_assert_eq(atomio_file_close(f), 0);
        t_assert_unchanged(data, snap, "read-only mount");
        atomio_ctx_close(ctx);
        ctx = NULL;
        t_fs_umount(&fs);
        dir[0] = '\0';
    } else {
        setup();
        cr_assert_eq(chmod(data, 0444), 0);
        snap = t_snapshot(data);
        atomio_file_opts o = t_file_opts(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
        atomio_file *f = NULL;
        int r = atomio_file_open(ctx, data, &o, &f);
        cr_assert_eq(r, -EACCES, "read-write open of a 0444 file: %s", atomio_err_name(r));
        cr_assert_null(f);
        NOTHING_WRITTEN("0444 file");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Closed handles.                                                                              */

Test(badinput, use_after_close, .init = setup, .fini = teardown)
{
    atomio_file *f = open_data(4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_BUFFERED, 0);
    cr_assert_eq(atomio_file_close(f), 0);
    int r = atomio_write(f, 0, buf, 0);
    cr_assert_eq(r, ATOMIO_E_CLOSED, "write after close: %s", atomio_err_name(r));
    r = atomio_read(f, 0, buf + (1 << 20));
    cr_assert_eq(r, ATOMIO_E_CLOSED, "read after close: %s", atomio_err_name(r));
    r = atomio_sync(f);
    cr_assert_eq(r, ATOMIO_E_CLOSED, "sync after close: %s", atomio_err_name(r));
    atomio_file_info fi = ATOMIO_FILE_INFO_INIT;
    r = atomio_file_get_info(f, &fi);
    cr_assert_eq(r, ATOMIO_E_CLOSED, "info after close: %s", atomio_err_name(r));
    atomio_page_write w = {f, 0, buf, 0, 0};
    r = atomio_write_batch(ctx, &w, 1, 0);
    cr_assert_eq(w.result, ATOMIO_E_CLOSED, "batch after close: %s", atomio_err_name(w.result));
    r = atomio_file_close(f);
    cr_assert_eq(r, ATOMIO_E_CLOSED, "second close: %s", atomio_err_name(r));
    NOTHING_WRITTEN("use after close");
}
