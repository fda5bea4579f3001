/* SPDX-License-Identifier: MIT */
/*
 * test_fs.c -- the probe and the DIRECT_ATOMIC and UNSAFE paths on real loop-mounted
 * filesystems (root; skipped with a printed reason otherwise): XFS reflink=1 has software
 * O_DIRECT RWF_ATOMIC and pages written through it read back byte-equal, with the write
 * recipe of docs/design.md observed at the syscall seam; XFS reflink=0, ext4 and tmpfs have no
 * atomic writes and say why; atomio_probe() never writes the probed file.
 */
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FS_MB 512 /* sparse image; mkfs.xfs wants >= 300 MiB */

static struct t_fs fs;
static atomio_ctx *ctx;

static void
fini(void)
{
    atomio__sys = atomio__sys_real;
    if (ctx)
        atomio_ctx_close(ctx);
    ctx = NULL;
    t_fs_umount(&fs);
}

/* ------------------------------------------------------------------------------------------ */
/* Every data write the library issues, as seen at the seam.                                    */

#define MAX_REC 64
static struct rec {
    int fd, iovcnt, flags, fd_flags;
    size_t len;
    uint64_t off;
    uintptr_t base;
} recs[MAX_REC];
static unsigned n_recs;
static ino_t rec_ino; /* only writes to this inode (the data file) are recorded */

/* rec_pwritev2() -- record the data file's writes; the probe's O_TMPFILE writes pass by. */
static ssize_t
rec_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    struct stat st;
    bool mine = fstat(fd, &st) == 0 && st.st_ino == rec_ino && st.st_nlink > 0;
    if (mine && n_recs < MAX_REC) {
        struct rec *r = &recs[n_recs];
        r->fd = fd;
        r->iovcnt = iovcnt;
        r->flags = flags;
        r->fd_flags = fcntl(fd, F_GETFL);
        r->len = 0;
        for (int i = 0; i < iovcnt; i++)
            r->len += iov[i].iov_len;
        r->off = off;
        r->base = (uintptr_t)iov[0].iov_base;
    }
    n_recs += mine;
    return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
}

static unsigned
count_entries(const char *d)
{
    DIR *dh = opendir(d);
    cr_assert_not_null(dh, "opendir %s", d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL)
        n++;
    closedir(dh);
    return n;
}

static atomio_caps
probe_ok(const char *path, uint32_t page)
{
    atomio_caps c = ATOMIO_CAPS_INIT;
    int r = atomio_probe(path, page, &c);
    cr_assert_eq(r, 0, "atomio_probe(%s, %u): %s", path, page, atomio_err_name(r));
    cr_assert(c.valid & ATOMIO_CAPS_STATX);
    cr_assert(c.valid & ATOMIO_CAPS_VERDICTS);
    cr_assert_eq(c.page_size, page);
    cr_assert(c.reason_direct[0], "no reason_direct");
    cr_assert(c.reason_buffered[0], "no reason_buffered");
    cr_assert(c.reason_auto[0], "no reason_auto");
    /* buffered atomic only on the word of a successful probe write (<= 6.18: EOPNOTSUPP) */
    if (!(c.valid & ATOMIO_CAPS_BUFFERED) || c.buffered_probe_err != 0)
        cr_assert_eq(c.buffered_atomic, 0, "buffered atomic without a successful probe write");
    cr_assert_neq(c.auto_path, ATOMIO_PATH_UNSAFE);
    cr_assert_neq(c.auto_path, ATOMIO_PATH_AUTO);
    return c;
}

static atomio_file *
open_file(const char *path, uint32_t page, uint32_t which, uint32_t style, int *err)
{
    atomio_file_opts o = t_file_opts(page, which, style, ATOMIO_FILE_CREATE);
    atomio_file *f = NULL;
    *err = atomio_file_open(ctx, path, &o, &f);
    if (*err)
        cr_assert_null(f, "a handle was handed out with %s", atomio_err_name(*err));
    return f;
}

/* ------------------------------------------------------------------------------------------ */
/* XFS reflink=1: software O_DIRECT RWF_ATOMIC.                                                 */

Test(fs, xfs_reflink_probe_reports_software_atomic, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    const char *p = t_join(fs.dir, "data");
    t_make_file(p, 65536, 1);
    for (uint32_t page = 4096; page <= 16384; page *= 4) {
        atomio_caps c = probe_ok(p, page);
        cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_SOFTWARE, "page %u: %u (%s)", page,
                     c.direct_atomic, c.reason_direct);
        cr_assert(c.statx_mask & STATX_WRITE_ATOMIC);
        cr_assert(c.statx_attributes & STATX_ATTR_WRITE_ATOMIC);
        cr_assert_eq(c.unit_min, 4096);
        cr_assert_geq(c.unit_max, 65536, "unit_max %u", c.unit_max);
        cr_assert_eq(c.segments_max, 1);
        cr_assert_eq(c.fs_type, T_XFS_MAGIC);
        cr_assert(c.valid & ATOMIO_CAPS_SYSFS, "loop device sysfs not read (%d)", c.hw_sysfs_err);
        cr_assert_eq(c.hw_unit_max, 0, "a loop device has no hardware atomic writes");
        /* io ANY, PREFER_FAST, a store assumed: software atomic loses to doublewrite */
        if (!c.buffered_atomic)
            cr_assert_eq(c.auto_path, ATOMIO_PATH_DOUBLEWRITE, "AUTO picks %s: %s",
                         atomio_path_name(c.auto_path), c.reason_auto);
    }
    /* a directory probes its filesystem */
    atomio_caps d = probe_ok(fs.dir, 16384);
    cr_assert_eq(d.fs_type, T_XFS_MAGIC);
}

static void
check_direct_atomic_roundtrip(uint32_t page)
{
    const char *p = t_join(fs.dir, "data");
    t_make_file(p, 0, 0);
    struct stat st0;
    cr_assert_eq(stat(p, &st0), 0);
    rec_ino = st0.st_ino;
    ctx = t_ctx_open(NULL);
    atomio__sys.pwritev2 = rec_pwritev2;
    n_recs = 0;
    int err;
    atomio_file *f = open_file(p, page, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, &err);
    cr_assert_eq(err, 0, "forced DIRECT_ATOMIC on XFS reflink=1, page %u: %s", page,
                 atomio_err_name(err));
    cr_assert_eq(n_recs, 0, "opening wrote data (%u writes)", n_recs);

    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_DIRECT_ATOMIC);
    cr_assert_eq(fi.torn_write_safe, 1);
    cr_assert_eq(fi.state, ATOMIO_STATE_OK);
    cr_assert_eq(fi.page_size, page);
    cr_assert_eq(fi.o_direct, 1);
    cr_assert_eq(fi.direct_atomic, ATOMIO_ATOMIC_SOFTWARE);
    cr_assert(fi.reason[0], "no reason for the path");
    cr_assert_str_empty(fi.reject_direct, "the chosen path has a rejection: %s", fi.reject_direct);
    cr_assert(fi.reject_buffered[0], "BUFFERED_ATOMIC not chosen, but no reason");
    cr_assert(fi.reject_doublewrite[0], "DOUBLEWRITE not chosen, but no reason");

    enum { N_ALLOC = 6, N_LIBC = 3 };
    unsigned char *lib = atomio_page_alloc(ctx, page, N_ALLOC);
    cr_assert_not_null(lib);
    cr_assert_eq((uintptr_t)lib % page, 0, "atomio_page_alloc not page-size aligned");
    unsigned char *own = aligned_alloc(page, (size_t)page * N_LIBC);
    cr_assert_not_null(own);
    for (unsigned i = 0; i < N_ALLOC; i++)
        t_fill(lib + (size_t)i * page, page, 100 + i);
    for (unsigned i = 0; i < N_LIBC; i++)
        t_fill(own + (size_t)i * page, page, 200 + i);

    /* pages 0..5 from the library's allocator, 9..11 from aligned_alloc, page 7 durable */
    for (unsigned i = 0; i < N_ALLOC; i++) {
        int r = atomio_write(f, i, lib + (size_t)i * page, 0);
        cr_assert_eq(r, 0, "write page %u: %s", i, atomio_err_name(r));
    }
    for (unsigned i = 0; i < N_LIBC; i++) {
        int r = atomio_write(f, 9 + i, own + (size_t)i * page, 0);
        cr_assert_eq(r, 0, "write page %u: %s", 9 + i, atomio_err_name(r));
    }
    int r = atomio_write(f, 7, lib, ATOMIO_WRITE_DSYNC);
    cr_assert_eq(r, 0, "DSYNC write: %s", atomio_err_name(r));
    cr_assert_eq(atomio_sync(f), 0);

    /* The recipe at the seam: one O_DIRECT single-iovec RWF_ATOMIC write per page at
     * page_no x page_size, never an append; RWF_DSYNC exactly when asked for. */
    cr_assert_eq(n_recs, N_ALLOC + N_LIBC + 1, "%u writes for %u pages", n_recs,
                 N_ALLOC + N_LIBC + 1);
    for (unsigned i = 0; i < n_recs; i++) {
        const struct rec *w = &recs[i];
        uint64_t page_no = i < N_ALLOC ? i : i < N_ALLOC + N_LIBC ? 9 + (i - N_ALLOC) : 7;
        cr_assert(w->flags & RWF_ATOMIC, "write %u without RWF_ATOMIC", i);
        cr_assert_eq(w->flags & RWF_APPEND, 0, "write %u with RWF_APPEND", i);
        cr_assert_eq(w->iovcnt, 1, "write %u with %d iovecs", i, w->iovcnt);
        cr_assert_eq(w->len, page);
        cr_assert_eq(w->off, page_no * page, "write %u at %llu", i, (unsigned long long)w->off);
        cr_assert(w->fd_flags & O_DIRECT, "write %u on a non-O_DIRECT fd", i);
        cr_assert_eq(w->fd_flags & O_APPEND, 0, "write %u on an O_APPEND fd", i);
        cr_assert_eq(w->base % 4096, 0, "write %u from a buffer not 4 KiB aligned", i);
        bool dsync = page_no == 7;
        cr_assert_eq(!!(w->flags & RWF_DSYNC), dsync, "write %u: RWF_DSYNC %d, asked %d", i,
                     !!(w->flags & RWF_DSYNC), dsync);
    }

    /* read back through the library and straight from the file */
    unsigned char *back = aligned_alloc(page, page);
    unsigned char *raw = malloc(page);
    for (unsigned i = 0; i < 12; i++) {
        const unsigned char *want = i < N_ALLOC ? lib + (size_t)i * page
                                    : i == 7    ? lib
                                    : i >= 9    ? own + (size_t)(i - 9) * page
                                                : NULL;
        r = atomio_read(f, i, back);
        cr_assert_eq(r, 0, "read page %u: %s", i, atomio_err_name(r));
        t_pread_file(p, raw, page, (off_t)i * page);
        if (want) {
            cr_assert_eq(memcmp(back, want, page), 0, "page %u read back differs", i);
            cr_assert_eq(memcmp(raw, want, page), 0, "page %u on disk differs", i);
        } else {
            for (uint32_t b = 0; b < page; b++)
                cr_assert_eq(back[b], 0, "never-written page %u byte %u not zero", i, b);
        }
    }
    /* beyond end of file: zeros */
    memset(back, 0xee, page);
    cr_assert_eq(atomio_read(f, 1000, back), 0);
    for (uint32_t b = 0; b < page; b++)
        cr_assert_eq(back[b], 0, "page beyond EOF byte %u not zero", b);

    atomio_stats st = t_fstats(f);
    cr_assert_eq(st.pages[ATOMIO_PATH_DIRECT_ATOMIC], N_ALLOC + N_LIBC + 1);
    cr_assert_eq(st.pages[ATOMIO_PATH_UNSAFE], 0);
    cr_assert_eq(st.bytes_data, (uint64_t)(N_ALLOC + N_LIBC + 1) * page);
    cr_assert_geq(st.syncs, 1);
    cr_assert_eq(st.short_writes, 0);
    uint64_t lat = 0;
    for (int i = 0; i < ATOMIO_LAT_BUCKETS; i++)
        lat += st.lat_hist[i];
    cr_assert_eq(lat, N_ALLOC + N_LIBC + 1, "latency histogram holds %llu writes",
                 (unsigned long long)lat);
    atomio_stats cs = ATOMIO_STATS_INIT;
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.pages[ATOMIO_PATH_DIRECT_ATOMIC], N_ALLOC + N_LIBC + 1);

    cr_assert_eq(atomio_file_close(f), 0);
    /* the ctx keeps counting closed files */
    cr_assert_eq(atomio_ctx_get_stats(ctx, &cs), 0);
    cr_assert_eq(cs.pages[ATOMIO_PATH_DIRECT_ATOMIC], N_ALLOC + N_LIBC + 1);
    atomio_page_free(ctx, lib, page, N_ALLOC);
    free(own);
    free(back);
    free(raw);
}

Test(fs, xfs_reflink_direct_atomic_16k_pages, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    check_direct_atomic_roundtrip(16384);
}

Test(fs, xfs_reflink_direct_atomic_4k_pages, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    check_direct_atomic_roundtrip(4096);
}

/* ------------------------------------------------------------------------------------------ */
/* No atomic writes: XFS reflink=0, ext4, tmpfs.                                                */

static void
check_no_atomic(const char *kind, unsigned mb)
{
    t_fs_mount(&fs, kind, mb);
    const char *p = t_join(fs.dir, "data");
    t_make_file(p, 32768, 5);
    struct t_snap before = t_snapshot(p);
    for (uint32_t page = 4096; page <= 16384; page *= 4) {
        atomio_caps c = probe_ok(p, page);
        cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_NONE, "%s page %u: %u (%s)", kind, page,
                     c.direct_atomic, c.reason_direct);
        cr_assert_eq(c.buffered_atomic, 0, "%s: buffered atomic on Linux <= 6.18?", kind);
        cr_assert_eq(c.auto_path, ATOMIO_PATH_DOUBLEWRITE, "%s: AUTO picks %s (%s)", kind,
                     atomio_path_name(c.auto_path), c.reason_auto);
    }
    ctx = t_ctx_open(NULL);
    int err;
    atomio_file *f = open_file(p, 16384, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_DIRECT, &err);
    cr_assert_eq(err, ATOMIO_E_PATH_UNSUPPORTED, "%s: forced DIRECT_ATOMIC gave %s", kind,
                 atomio_err_name(err));
    cr_assert_null(f);
    f = open_file(p, 16384, ATOMIO_PATH_BUFFERED_ATOMIC, ATOMIO_IO_BUFFERED, &err);
    cr_assert(err == ATOMIO_E_PATH_UNSUPPORTED || err == ATOMIO_E_FOLIO_ORDER,
              "%s: forced BUFFERED_ATOMIC gave %s", kind, atomio_err_name(err));
    /* no store, no atomic: AUTO has nothing torn-safe and says so */
    f = open_file(p, 16384, ATOMIO_PATH_AUTO, ATOMIO_IO_ANY, &err);
    cr_assert_eq(err, ATOMIO_E_NO_DOUBLEWRITE, "%s: AUTO without a store gave %s", kind,
                 atomio_err_name(err));
    t_assert_unchanged(p, before, kind);
}

Test(fs, xfs_noreflink_has_no_atomic, .fini = fini)
{
    check_no_atomic("xfs-noreflink", FS_MB);
}

Test(fs, ext4_has_no_atomic, .fini = fini)
{
    check_no_atomic("ext4", 64);
}

Test(fs, tmpfs_has_no_atomic_and_no_o_direct, .fini = fini)
{
    check_no_atomic("tmpfs", 64);
    atomio_caps c = probe_ok(t_join(fs.dir, "data"), 4096);
    cr_assert_eq(c.statx_mask & STATX_WRITE_ATOMIC, 0);
    cr_assert_eq(c.dio_mem_align, 0, "tmpfs reports no O_DIRECT alignment");
    cr_assert_eq(c.fs_type, T_TMPFS_MAGIC);
    cr_assert_lt(c.hw_sysfs_err, 0, "tmpfs has no block device");

    /* plain writes still work there, through the page cache */
    int err;
    atomio_file *f = open_file(t_join(fs.dir, "u"), 4096, ATOMIO_PATH_UNSAFE, ATOMIO_IO_ANY, &err);
    cr_assert_eq(err, 0, "UNSAFE on tmpfs: %s", atomio_err_name(err));
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.o_direct, 0, "UNSAFE on tmpfs used O_DIRECT though tmpfs reports no DIO");
    cr_assert_eq(fi.torn_write_safe, 0);
    unsigned char page[4096], back[4096];
    t_fill(page, sizeof(page), 9);
    cr_assert_eq(atomio_write(f, 2, page, 0), 0);
    cr_assert_eq(atomio_read(f, 2, back), 0);
    cr_assert_eq(memcmp(page, back, sizeof(page)), 0);
    cr_assert_eq(atomio_file_close(f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* UNSAFE: plain writes, not torn-safe.                                                         */

Test(fs, unsafe_path_writes_and_reads_back, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    ctx = t_ctx_open(NULL);
    atomio__sys.pwritev2 = rec_pwritev2;
    const uint32_t styles[] = {ATOMIO_IO_DIRECT, ATOMIO_IO_BUFFERED};
    for (size_t s = 0; s < 2; s++) {
        const char *p = t_join(fs.dir, s ? "buffered" : "direct");
        t_make_file(p, 0, 0);
        struct stat st0;
        cr_assert_eq(stat(p, &st0), 0);
        rec_ino = st0.st_ino;
        int err;
        atomio_file *f = open_file(p, 8192, ATOMIO_PATH_UNSAFE, styles[s], &err);
        cr_assert_eq(err, 0, "UNSAFE %s: %s", atomio_io_style_name(styles[s]),
                     atomio_err_name(err));
        atomio_file_info fi = t_info(f);
        cr_assert_eq(fi.path, ATOMIO_PATH_UNSAFE);
        cr_assert_eq(fi.torn_write_safe, 0, "UNSAFE claims to be torn-write safe");
        cr_assert(fi.reason[0]);
        cr_assert_eq(fi.o_direct, styles[s] == ATOMIO_IO_DIRECT ? 1u : 0u, "io %s: o_direct %u",
                     atomio_io_style_name(styles[s]), fi.o_direct);
        unsigned char *pg = atomio_page_alloc(ctx, 8192, 4);
        cr_assert_not_null(pg);
        n_recs = 0;
        for (unsigned i = 0; i < 4; i++) {
            t_fill(pg + i * 8192, 8192, 300 + i + s * 10);
            cr_assert_eq(atomio_write(f, 3 - i, pg + i * 8192, 0), 0);
        }
        cr_assert_eq(n_recs, 4);
        for (unsigned i = 0; i < n_recs; i++)
            cr_assert_eq(recs[i].flags & RWF_ATOMIC, 0, "UNSAFE write %u used RWF_ATOMIC", i);
        cr_assert_eq(atomio_sync(f), 0);
        unsigned char *back = atomio_page_alloc(ctx, 8192, 1);
        for (unsigned i = 0; i < 4; i++) {
            cr_assert_eq(atomio_read(f, 3 - i, back), 0);
            cr_assert_eq(memcmp(back, pg + i * 8192, 8192), 0, "UNSAFE page %u differs", 3 - i);
            unsigned char raw[8192];
            t_pread_file(p, raw, sizeof(raw), (off_t)(3 - i) * 8192);
            cr_assert_eq(memcmp(raw, pg + i * 8192, 8192), 0, "UNSAFE page %u on disk", 3 - i);
        }
        atomio_stats st = t_fstats(f);
        cr_assert_eq(st.pages[ATOMIO_PATH_UNSAFE], 4);
        cr_assert_eq(st.pages[ATOMIO_PATH_DIRECT_ATOMIC], 0);
        cr_assert_eq(st.bytes_data, 4 * 8192);
        atomio_page_free(ctx, pg, 8192, 4);
        atomio_page_free(ctx, back, 8192, 1);
        cr_assert_eq(atomio_file_close(f), 0);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* atomio_probe never writes the file.                                                          */

Test(fs, probe_never_writes_the_file, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    const char *p = t_join(fs.dir, "data");
    t_make_file(p, 3 * 16384 + 100, 77);
    /* a fixed old mtime so that any write shows */
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    struct stat st0;
    cr_assert_eq(stat(p, &st0), 0);
    struct t_snap before = t_snapshot(p);
    unsigned entries = count_entries(fs.dir);
    const uint32_t pages[] = {512, 4096, 16384, 65536, 1048576};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        atomio__caps_cache_clear(); /* make every page size do its full probe */
        (void)probe_ok(p, pages[i]);
    }
    t_assert_unchanged(p, before, "atomio_probe");
    struct stat st1;
    cr_assert_eq(stat(p, &st1), 0);
    cr_assert(st1.st_ctim.tv_sec == st0.st_ctim.tv_sec &&
                  st1.st_ctim.tv_nsec == st0.st_ctim.tv_nsec,
              "the probe changed the file's inode (ctime)");
    cr_assert_eq(st1.st_blocks, st0.st_blocks, "the probe changed the file's allocation");
    cr_assert_eq(count_entries(fs.dir), entries, "the probe left a file behind");
}

Test(fs, failed_create_leaves_no_file, .fini = fini)
{
    t_fs_mount(&fs, "ext4", 64);
    ctx = t_ctx_open(NULL);
    const char *p = t_join(fs.dir, "never");
    int err;
    /* ext4 has no atomic writes: a forced DIRECT_ATOMIC open fails after creating the file */
    atomio_file *f = open_file(p, 16384, ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_IO_ANY, &err);
    cr_assert_eq(err, ATOMIO_E_PATH_UNSUPPORTED, "forced DIRECT_ATOMIC on ext4 gave %s",
                 atomio_err_name(err));
    cr_assert_null(f);
    struct stat st;
    cr_assert(stat(p, &st) != 0 && errno == ENOENT, "the failed open left %s behind", p);
}

Test(fs, probing_a_directory_reports_what_a_new_file_gets, .fini = fini)
{
    t_fs_mount(&fs, "xfs", FS_MB);
    atomio_caps c = ATOMIO_CAPS_INIT;
    int r = atomio_probe(fs.dir, 16384, &c);
    cr_assert_eq(r, 0, "probe of the mount point: %s", atomio_err_name(r));
    cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_SOFTWARE, "directory probe gave %u (%s)",
                 c.direct_atomic, c.reason_direct);
    DIR *d = opendir(fs.dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    cr_assert_eq(entries, 0, "the directory probe left %d entries behind", entries);
}

Test(fs, page_larger_than_a_store_segment_is_refused_at_open)
{
    char dir[256];
    t_tmpdir(dir, sizeof(dir));
    char store[300];
    snprintf(store, sizeof(store), "%s/dblwr", dir);
    cr_assert(mkdir(store, 0700) == 0);
    atomio_ctx_opts co = ATOMIO_CTX_OPTS_INIT;
    co.doublewrite_dir = store;
    co.submitter = ATOMIO_SUBMIT_SYNC;
    co.doublewrite_max_page_size = 4096;
    co.doublewrite_batch_pages = 1;
    atomio_ctx *c = NULL;
    int r = atomio_ctx_open(&co, &c);
    cr_assert_eq(r, 0, "ctx open: %s", atomio_err_name(r));
    atomio_file_opts fo = ATOMIO_FILE_OPTS_INIT;
    fo.page_size = 65536;
    fo.flags = ATOMIO_FILE_CREATE;
    fo.path = ATOMIO_PATH_DOUBLEWRITE;
    atomio_file *f = NULL;
    r = atomio_file_open(c, t_join(dir, "data"), &fo, &f);
    cr_assert_eq(r, ATOMIO_E_NO_DOUBLEWRITE, "64 KiB page on a 4 KiB store gave %s",
                 atomio_err_name(r));
    cr_assert_null(f);
    fo.page_size = 4096; /* what the store was sized for still works */
    r = atomio_file_open(c, t_join(dir, "data"), &fo, &f);
    cr_assert_eq(r, 0, "4 KiB page: %s", atomio_err_name(r));
    atomio_file_close(f);
    atomio_ctx_close(c);
    t_rmtree(dir);
}
