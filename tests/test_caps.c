/* SPDX-License-Identifier: MIT */
/*
 * test_caps.c -- probe parsing fed with figures captured on real filesystems:
 * the pure atomio__caps_derive() for the verdict rules (atomic only when mask bit, attribute,
 * unit_min > 0 and segments_max >= 1 all hold; hardware vs software from unit_max_opt or sysfs;
 * the buffered folio-order rule), and atomio__probe_fd() with atomio__sys.statx, fstatfs,
 * read_text and pwritev2 swapped for fakes returning those figures, to check what the probe
 * asks the kernel, that it copies every raw figure, that its buffered probe write has exactly
 * the page's shape on a scratch O_TMPFILE (never the file itself), and that verdicts are cached
 * per (device, page size).
 */
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

/* derive() -- raw figures for page_size (4 KiB system pages) through atomio__caps_derive(). */
static atomio_caps
derive(const struct t_figures *fg, uint32_t page_size, int probe_err)
{
    atomio_caps c = t_caps_from(fg, page_size, 4096, probe_err);
    atomio__caps_derive(&c);
    cr_assert(c.valid & ATOMIO_CAPS_VERDICTS, "%s page %u: derive did not mark verdicts valid",
              fg->name, page_size);
    cr_assert(memchr(c.reason_direct, '\0', ATOMIO_REASON_LEN), "unterminated reason_direct");
    cr_assert(memchr(c.reason_buffered, '\0', ATOMIO_REASON_LEN), "unterminated reason_buffered");
    return c;
}

static const char *
kind_name(uint32_t k)
{
    return k == ATOMIO_ATOMIC_NONE       ? "NONE"
           : k == ATOMIO_ATOMIC_HARDWARE ? "HARDWARE"
           : k == ATOMIO_ATOMIC_SOFTWARE ? "SOFTWARE"
                                         : "?";
}

#define assert_direct(c, want, what)                                                               \
    do {                                                                                           \
        cr_assert_eq((c).direct_atomic, (want), "%s: direct_atomic %s, expected %s (%s)", what,    \
                     kind_name((c).direct_atomic), kind_name(want), (c).reason_direct);            \
        cr_assert((c).reason_direct[0] != '\0', "%s: no reason_direct", what);                     \
    } while (0)

/* names_order() -- does the reason mention "order <n>" (also "order=<n>", "order: <n>")? */
static bool
names_order(const char *reason, unsigned n)
{
    for (const char *p = strstr(reason, "order"); p; p = strstr(p + 1, "order")) {
        const char *q = p + 5;
        while (*q == ' ' || *q == '=' || *q == ':')
            q++;
        if (isdigit((unsigned char)*q) && strtoul(q, NULL, 10) == n)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Direct atomic verdicts.                                                                      */

Test(caps, xfs_reflink_is_software_atomic)
{
    const uint32_t pages[] = {4096, 8192, 16384, 65536, 1048576};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        atomio_caps c = derive(&t_fig_xfs_reflink, pages[i], -EOPNOTSUPP);
        char what[64];
        snprintf(what, sizeof(what), "xfs reflink=1, page %u", pages[i]);
        assert_direct(c, ATOMIO_ATOMIC_SOFTWARE, what);
    }
}

Test(caps, no_atomic_filesystems)
{
    const struct t_figures *figs[] = {&t_fig_xfs_noreflink, &t_fig_ext4, &t_fig_tmpfs};
    for (size_t i = 0; i < 3; i++)
        for (uint32_t page = 4096; page <= 16384; page *= 4) {
            atomio_caps c = derive(figs[i], page, -EOPNOTSUPP);
            char what[64];
            snprintf(what, sizeof(what), "%s, page %u", figs[i]->name, page);
            assert_direct(c, ATOMIO_ATOMIC_NONE, what);
        }
}

Test(caps, every_statx_condition_is_required)
{
    /* XFS and ext4 set the mask bit with zero fields when unsupported, so no single figure may
     * be trusted alone. Start from a good file and break one condition at a time. */
    struct t_figures fg;

    fg = t_fig_xfs_reflink;
    fg.mask &= ~STATX_WRITE_ATOMIC;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "no STATX_WRITE_ATOMIC");

    fg = t_fig_xfs_reflink;
    fg.attributes = 0;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "no STATX_ATTR_WRITE_ATOMIC");

    fg = t_fig_xfs_reflink;
    fg.unit_min = 0;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "unit_min 0");

    fg = t_fig_xfs_reflink;
    fg.segments = 0;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "segments_max 0");

    /* the attribute bit must be read from stx_attributes, not confused with the mask */
    fg = t_fig_xfs_reflink;
    fg.attributes = 0x00200000;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "neighbouring attribute");
}

Test(caps, page_size_must_fit_the_units)
{
    struct t_figures fg = t_fig_xfs_reflink;
    fg.unit_max = 65536; /* XFS mounted -o max_atomic_write=64k */
    assert_direct(derive(&fg, 2048, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "page 2048 < unit_min");
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "page == unit_min");
    assert_direct(derive(&fg, 65536, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "page == unit_max");
    assert_direct(derive(&fg, 131072, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "page > unit_max");
    assert_direct(derive(&fg, 1048576, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "1 MiB > unit_max");

    fg = t_fig_xfs_reflink;
    fg.unit_min = 16384; /* XFS with 16 KiB blocks */
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_NONE, "4 KiB under 16 KiB units");
    assert_direct(derive(&fg, 16384, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "16 KiB units");
}

Test(caps, hardware_from_unit_max_opt)
{
    /* An NVMe-like device that offloads 16 KiB under XFS (6.16+ reports unit_max_opt). */
    struct t_figures fg = t_fig_xfs_reflink;
    fg.unit_max_opt = 16384;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_HARDWARE, "4k, max_opt 16k");
    assert_direct(derive(&fg, 16384, -EOPNOTSUPP), ATOMIO_ATOMIC_HARDWARE, "16k, max_opt 16k");
    assert_direct(derive(&fg, 32768, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "32k, max_opt 16k");
    assert_direct(derive(&fg, 1048576, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "1M, max_opt 16k");

    /* unit_max_opt, when non-zero, is the answer: sysfs is not consulted over it */
    fg.hw_max = 262144;
    assert_direct(derive(&fg, 32768, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE,
                  "32k, max_opt 16k, sysfs 256k");
}

Test(caps, hardware_from_sysfs)
{
    /* Kernels before 6.16 (and XFS on a device without offload) report unit_max_opt 0: the
     * backing disk's sysfs atomic_write_unit_max_bytes decides. */
    struct t_figures fg = t_fig_xfs_reflink;
    fg.hw_max = 16384;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_HARDWARE, "4k, sysfs 16k");
    assert_direct(derive(&fg, 16384, -EOPNOTSUPP), ATOMIO_ATOMIC_HARDWARE, "16k, sysfs 16k");
    assert_direct(derive(&fg, 32768, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "32k, sysfs 16k");

    /* sysfs 0 (loop, virtio, zram here): every atomic write is the CoW software path */
    fg.hw_max = 0;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "4k, sysfs 0");

    /* sysfs unreadable: hardware cannot be proven, so it is software */
    fg.sysfs_err = -ENOENT;
    fg.hw_max = 0;
    assert_direct(derive(&fg, 4096, -EOPNOTSUPP), ATOMIO_ATOMIC_SOFTWARE, "4k, no sysfs");
}

/* ------------------------------------------------------------------------------------------ */
/* The buffered folio-order rule and the probe write's verdict.                                 */

struct folio_case {
    uint32_t sys_page, blksize, page, unit_min, unit_max;
    bool ok;
    uint32_t page_order, min_order; /* expected figures (UINT32_MAX: page not whole pages) */
};

static void check_folio_cases(const struct folio_case *cases, size_t n);

Test(caps, folio_order_rule)
{
    const struct folio_case cases[] = {
        /* sys  block   page     umin   umax      ok   page_order min_order */
        {4096, 4096, 4096, 4096, 1048576, true, 0, 0},
        {4096, 1024, 4096, 1024, 1048576, true, 0, 0},    /* 1 KiB blocks: min order still 0 */
        {4096, 16384, 16384, 16384, 1048576, true, 2, 2}, /* bs > ps: page must equal block */
        {4096, 16384, 4096, 4096, 1048576, false, 0, 2},
        {4096, 16384, 65536, 16384, 1048576, false, 4, 2},
        {4096, 4096, 2048, 2048, 1048576, false, UINT32_MAX, 0},  /* below a system page */
        {4096, 4096, 16384, 32768, 1048576, false, 2, 0},         /* below unit_min */
        {4096, 4096, 131072, 4096, 65536, false, 5, 0},           /* above unit_max */
        {16384, 4096, 4096, 4096, 1048576, false, UINT32_MAX, 0}, /* 16 KiB system pages */
        {16384, 4096, 16384, 4096, 1048576, true, 0, 0},
        {65536, 4096, 16384, 4096, 1048576, false, UINT32_MAX, 0},
    };
    check_folio_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(caps, folio_order_multi_page_when_block_not_above_system_page)
{
    /* libatomio's rule is stricter than the original design sketch (docs/design.md): the
     * kernel RFC needs one folio per atomic write with min order == max order == page order,
     * and the only order userspace can see is the minimum, set by the fs block. A 16 KiB page
     * on a 4 KiB-block filesystem is order 2 on a mapping of min order 0: refused, with both
     * orders named, even though the probe write succeeded. */
    const struct folio_case cases[] = {
        {4096, 4096, 16384, 4096, 1048576, false, 2, 0},
        {4096, 4096, 65536, 4096, 1048576, false, 4, 0},
        {4096, 1024, 8192, 1024, 1048576, false, 1, 0},
        {16384, 16384, 65536, 16384, 1048576, false, 2, 0},
    };
    check_folio_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
check_folio_cases(const struct folio_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct folio_case *k = &cases[i];
        struct t_figures fg = t_fig_xfs_reflink;
        fg.blksize = k->blksize;
        fg.unit_min = k->unit_min;
        fg.unit_max = k->unit_max;
        atomio_caps c = t_caps_from(&fg, k->page, k->sys_page, 0); /* the probe write worked */
        atomio__caps_derive(&c);
        char what[128];
        snprintf(what, sizeof(what), "sys page %u, fs block %u, page %u, units [%u, %u]",
                 k->sys_page, k->blksize, k->page, k->unit_min, k->unit_max);
        cr_assert_eq(c.page_order, k->page_order, "%s: page_order %u, expected %u", what,
                     c.page_order, k->page_order);
        cr_assert_eq(c.fs_min_order, k->min_order, "%s: fs_min_order %u, expected %u", what,
                     c.fs_min_order, k->min_order);
        cr_assert_eq(c.folio_ok, k->ok ? 1u : 0u, "%s: folio_ok %u (%s)", what, c.folio_ok,
                     c.reason_buffered);
        cr_assert_eq(c.buffered_atomic, k->ok ? 1u : 0u, "%s: buffered_atomic %u (%s)", what,
                     c.buffered_atomic, c.reason_buffered);
        cr_assert(c.reason_buffered[0] != '\0', "%s: no reason_buffered", what);
        if (!k->ok && k->page_order != UINT32_MAX && k->page_order != k->min_order) {
            /* the orders that disagree are named */
            cr_assert(names_order(c.reason_buffered, k->page_order) &&
                          names_order(c.reason_buffered, k->min_order),
                      "%s: reason '%s' does not name order %u and order %u", what,
                      c.reason_buffered, k->page_order, k->min_order);
        }
        if (k->page_order == UINT32_MAX) {
            char num[16];
            snprintf(num, sizeof(num), "%u", k->page);
            cr_assert(strstr(c.reason_buffered, num), "%s: reason '%s' does not name page %u", what,
                      c.reason_buffered, k->page);
        }
    }
}

Test(caps, buffered_probe_errno_is_the_reason)
{
    /* Linux <= 6.18: a buffered RWF_ATOMIC write returns EOPNOTSUPP whatever the shape. */
    atomio_caps c = derive(&t_fig_xfs_reflink, 4096, -EOPNOTSUPP);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(c.buffered_probe_err, -EOPNOTSUPP, "the probe's errno must be kept");
    cr_assert(strstr(c.reason_buffered, "EOPNOTSUPP") ||
                  strstr(c.reason_buffered, strerror(EOPNOTSUPP)),
              "reason '%s' does not carry the kernel's EOPNOTSUPP", c.reason_buffered);

    c = derive(&t_fig_xfs_reflink, 16384, -EINVAL);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert(strstr(c.reason_buffered, "EINVAL") || strstr(c.reason_buffered, strerror(EINVAL)),
              "reason '%s' does not carry EINVAL", c.reason_buffered);

    c = derive(&t_fig_xfs_reflink, 4096, 0);
    cr_assert_eq(c.buffered_atomic, 1, "a successful probe write of a good shape: %s",
                 c.reason_buffered);
}

/* ------------------------------------------------------------------------------------------ */
/* atomio__probe_fd() against fake syscalls.                                                    */

static const struct t_figures *fake_fig;
static int probed_fd = -1;
static int fake_buffered_res; /* 0: the buffered probe write succeeds, else -errno */
static unsigned n_statx, n_sysfs, n_probe_writes, n_other_writes;
static char sysfs_paths[8][256];
static struct {
    int fd, iovcnt, flags;
    size_t len;
    uint64_t off;
    nlink_t nlink;
    uintptr_t base;
} last_probe;

static int
fake_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *s)
{
    n_statx++;
    cr_assert_eq(dirfd, probed_fd, "statx of another fd than the probed one");
    cr_assert(path && path[0] == '\0' && (flags & AT_EMPTY_PATH), "statx not by fd");
    cr_assert((mask & STATX_WRITE_ATOMIC) && (mask & STATX_DIOALIGN),
              "statx mask %#x lacks WRITE_ATOMIC or DIOALIGN", mask);
    memset(s, 0, sizeof(*s));
    s->mask = fake_fig->mask;
    s->blksize = fake_fig->blksize;
    s->attributes = fake_fig->attributes;
    s->mode = S_IFREG | 0600;
    s->dev_major = fake_fig->dev_major;
    s->dev_minor = fake_fig->dev_minor;
    s->dio_mem_align = fake_fig->dio_mem;
    s->dio_offset_align = fake_fig->dio_off;
    s->dio_read_offset_align = fake_fig->dio_read;
    s->atomic_write_unit_min = fake_fig->unit_min;
    s->atomic_write_unit_max = fake_fig->unit_max;
    s->atomic_write_segments_max = fake_fig->segments;
    s->atomic_write_unit_max_opt = fake_fig->unit_max_opt;
    return 0;
}

static int
fake_fstatfs(int fd, struct statfs *st)
{
    (void)fd;
    memset(st, 0, sizeof(*st));
    st->f_type = (__fsword_t)fake_fig->fs_type;
    st->f_bsize = fake_fig->blksize;
    return 0;
}

static ssize_t
fake_read_text(const char *path, char *buf, size_t len)
{
    snprintf(sysfs_paths[n_sysfs++ % 8], sizeof(sysfs_paths[0]), "%s", path);
    const char *leaf = "atomic_write_unit_max_bytes";
    size_t pl = strlen(path), ll = strlen(leaf);
    if (pl < ll || strcmp(path + pl - ll, leaf) != 0 || fake_fig->sysfs_err)
        return fake_fig->sysfs_err ? fake_fig->sysfs_err : -ENOENT;
    return snprintf(buf, len, "%u\n", fake_fig->hw_max);
}

static ssize_t
fake_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    if (!(flags & RWF_ATOMIC)) {
        n_other_writes++;
        return atomio__sys_real.pwritev2(fd, iov, iovcnt, off, flags);
    }
    n_probe_writes++;
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    last_probe.fd = fd;
    last_probe.iovcnt = iovcnt;
    last_probe.flags = flags;
    last_probe.len = 0;
    for (int i = 0; i < iovcnt; i++)
        last_probe.len += iov[i].iov_len;
    last_probe.off = off;
    last_probe.nlink = st.st_nlink;
    last_probe.base = (uintptr_t)iov[0].iov_base;
    return fake_buffered_res ? fake_buffered_res : (ssize_t)last_probe.len;
}

static char dir[PATH_MAX];
static char file[PATH_MAX + 8];

static void
probe_setup(void)
{
    t_tmpdir(dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/data", dir);
    t_make_file(file, 65536, 3);
    probed_fd = open(file, O_RDWR | O_CLOEXEC);
    cr_assert(probed_fd >= 0);
    n_statx = n_sysfs = n_probe_writes = n_other_writes = 0;
    memset(&last_probe, 0, sizeof(last_probe));
    fake_buffered_res = -EOPNOTSUPP;
    atomio__caps_cache_clear();
    atomio__sys.statx = fake_statx;
    atomio__sys.fstatfs = fake_fstatfs;
    atomio__sys.read_text = fake_read_text;
    atomio__sys.pwritev2 = fake_pwritev2;
}

static void
probe_teardown(void)
{
    atomio__sys = atomio__sys_real;
    atomio__caps_cache_clear();
    if (probed_fd >= 0)
        close(probed_fd);
    t_rmtree(dir);
}

static atomio_caps
probe(const struct t_figures *fg, uint32_t page)
{
    fake_fig = fg;
    atomio_caps c = ATOMIO_CAPS_INIT;
    int r = atomio__probe_fd(probed_fd, dir, page, &c);
    cr_assert_eq(r, 0, "%s page %u: atomio__probe_fd: %s", fg->name, page, atomio_err_name(r));
    return c;
}

static void
assert_raw_copied(const atomio_caps *c, const struct t_figures *fg, uint32_t page)
{
    cr_assert(c->valid & ATOMIO_CAPS_STATX);
    cr_assert(c->valid & ATOMIO_CAPS_VERDICTS);
    cr_assert_eq(c->page_size, page);
    cr_assert_eq(c->sys_page_size, (uint32_t)sysconf(_SC_PAGESIZE));
    cr_assert_eq(c->fs_block_size, fg->blksize);
    cr_assert_eq(c->statx_mask, fg->mask);
    cr_assert_eq(c->statx_attributes, fg->attributes);
    cr_assert_eq(c->dio_mem_align, fg->dio_mem);
    cr_assert_eq(c->dio_offset_align, fg->dio_off);
    cr_assert_eq(c->dio_read_offset_align, fg->dio_read);
    cr_assert_eq(c->unit_min, fg->unit_min);
    cr_assert_eq(c->unit_max, fg->unit_max);
    cr_assert_eq(c->segments_max, fg->segments);
    cr_assert_eq(c->unit_max_opt, fg->unit_max_opt);
    cr_assert_eq(c->dev_major, fg->dev_major);
    cr_assert_eq(c->dev_minor, fg->dev_minor);
    cr_assert_eq(c->fs_type, fg->fs_type, "fs_type %#llx", (unsigned long long)c->fs_type);
}

Test(caps, probe_xfs_reflink, .init = probe_setup, .fini = probe_teardown)
{
    for (uint32_t page = 4096; page <= 16384; page *= 4) {
        n_probe_writes = 0;
        atomio_caps c = probe(&t_fig_xfs_reflink, page);
        assert_raw_copied(&c, &t_fig_xfs_reflink, page);
        cr_assert_eq(n_statx >= 1, 1);
        cr_assert(c.valid & ATOMIO_CAPS_SYSFS, "sysfs figure not collected");
        cr_assert_eq(c.hw_sysfs_err, 0);
        cr_assert_eq(c.hw_unit_max, 0);
        assert_direct(c, ATOMIO_ATOMIC_SOFTWARE, "probed xfs reflink=1");
        bool asked = false;
        for (unsigned i = 0; i < n_sysfs && i < 8; i++)
            if (strstr(sysfs_paths[i], "/7:0/") &&
                strstr(sysfs_paths[i], "atomic_write_unit_max_bytes"))
                asked = true;
        cr_assert(asked, "sysfs of device 7:0 never read (last: %s)",
                  n_sysfs ? sysfs_paths[(n_sysfs - 1) % 8] : "none");

        /* the buffered probe write: one page, exactly the shape, on a scratch O_TMPFILE */
        cr_assert_eq(n_probe_writes, 1, "page %u: %u buffered probe writes", page, n_probe_writes);
        cr_assert_neq(last_probe.fd, probed_fd, "the probe wrote to the file itself");
        cr_assert_eq(last_probe.nlink, 0, "the probe wrote to a linked file, not an O_TMPFILE");
        cr_assert_eq(last_probe.iovcnt, 1);
        cr_assert_eq(last_probe.len, page, "probe write of %zu bytes for page %u", last_probe.len,
                     page);
        cr_assert_eq(last_probe.off % page, 0);
        cr_assert_eq(last_probe.flags & (RWF_ATOMIC | RWF_DSYNC), RWF_ATOMIC | RWF_DSYNC,
                     "probe write flags %#x", last_probe.flags);
        cr_assert_eq(last_probe.flags & RWF_APPEND, 0);
        cr_assert_eq(last_probe.base % (uintptr_t)sysconf(_SC_PAGESIZE), 0,
                     "probe buffer not page-aligned");
        cr_assert_eq(c.buffered_probe_err, -EOPNOTSUPP);
        cr_assert_eq(c.buffered_atomic, 0);
        cr_assert(c.valid & ATOMIO_CAPS_BUFFERED);
        cr_assert_eq(c.page_order, page == 4096 ? 0u : 2u);
        cr_assert_eq(c.fs_min_order, 0);
    }
    /* the file itself is untouched */
    struct stat st;
    cr_assert_eq(fstat(probed_fd, &st), 0);
    cr_assert_eq(st.st_size, 65536);
}

Test(caps, probe_no_atomic_filesystems, .init = probe_setup, .fini = probe_teardown)
{
    const struct t_figures *figs[] = {&t_fig_xfs_noreflink, &t_fig_ext4};
    for (size_t i = 0; i < 2; i++) {
        atomio__caps_cache_clear();
        atomio_caps c = probe(figs[i], 16384);
        assert_raw_copied(&c, figs[i], 16384);
        assert_direct(c, ATOMIO_ATOMIC_NONE, figs[i]->name);
        cr_assert_eq(c.buffered_atomic, 0);
        cr_assert(c.reason_buffered[0]);
    }
}

Test(caps, probe_tmpfs, .init = probe_setup, .fini = probe_teardown)
{
    atomio_caps c = probe(&t_fig_tmpfs, 4096);
    assert_raw_copied(&c, &t_fig_tmpfs, 4096);
    assert_direct(c, ATOMIO_ATOMIC_NONE, "tmpfs");
    cr_assert_eq(c.statx_mask & STATX_WRITE_ATOMIC, 0);
    cr_assert_eq(c.dio_mem_align, 0, "tmpfs reports no DIO alignment");
    cr_assert_lt(c.hw_sysfs_err, 0, "no block device behind tmpfs, yet sysfs 'worked'");
    cr_assert_eq(c.hw_unit_max, 0);
}

Test(caps, probe_hardware_device, .init = probe_setup, .fini = probe_teardown)
{
    struct t_figures fg = t_fig_xfs_reflink;
    fg.hw_max = 16384; /* NVMe AWUPF = 3 on 4 KiB LBAs */
    atomio_caps c = probe(&fg, 16384);
    cr_assert_eq(c.hw_unit_max, 16384);
    assert_direct(c, ATOMIO_ATOMIC_HARDWARE, "sysfs 16k, page 16k");
    c = probe(&fg, 32768);
    assert_direct(c, ATOMIO_ATOMIC_SOFTWARE, "sysfs 16k, page 32k");

    fg = t_fig_xfs_reflink;
    fg.unit_max_opt = 16384;
    atomio__caps_cache_clear();
    c = probe(&fg, 16384);
    cr_assert_eq(c.unit_max_opt, 16384);
    assert_direct(c, ATOMIO_ATOMIC_HARDWARE, "max_opt 16k, page 16k");
    c = probe(&fg, 65536);
    assert_direct(c, ATOMIO_ATOMIC_SOFTWARE, "max_opt 16k, page 64k");
}

/* fake_read_text_partition() -- sysfs of an NVMe partition 259:1 on disk 259:0: the partition
 * has no queue/ of its own; through its /sys/dev/block link, ".." is the disk. */
static ssize_t
fake_read_text_partition(const char *path, char *buf, size_t len)
{
    snprintf(sysfs_paths[n_sysfs++ % 8], sizeof(sysfs_paths[0]), "%s", path);
    if (strstr(path, "/259:1/queue/"))
        return -ENOENT;
    if ((strstr(path, "/259:1/../queue/") || strstr(path, "/259:0/queue/")) &&
        strstr(path, "atomic_write_unit_max_bytes"))
        return snprintf(buf, len, "16384\n");
    return -ENOENT;
}

Test(caps, probe_partition_uses_parent_disk, .init = probe_setup, .fini = probe_teardown)
{
    atomio__sys.read_text = fake_read_text_partition;
    struct t_figures fg = t_fig_xfs_reflink;
    fg.dev_major = 259;
    fg.dev_minor = 1;
    atomio_caps c = probe(&fg, 16384);
    cr_assert_eq(c.hw_sysfs_err, 0, "parent disk's sysfs not found: %s",
                 atomio_err_name(c.hw_sysfs_err));
    cr_assert_eq(c.hw_unit_max, 16384);
    assert_direct(c, ATOMIO_ATOMIC_HARDWARE, "partition of a 16 KiB-atomic disk");
}

Test(caps, probe_buffered_proven, .init = probe_setup, .fini = probe_teardown)
{
    fake_buffered_res = 0; /* a future kernel with buffered RWF_ATOMIC */
    atomio_caps c = probe(&t_fig_xfs_reflink, 4096);
    cr_assert_eq(n_probe_writes, 1);
    cr_assert_eq(c.buffered_probe_err, 0);
    cr_assert_eq(c.buffered_atomic, 1, "%s", c.reason_buffered);
}

Test(caps, probe_verdict_cached_per_device_and_page_size, .init = probe_setup,
     .fini = probe_teardown)
{
    (void)probe(&t_fig_xfs_reflink, 16384);
    cr_assert_eq(n_probe_writes, 1);
    atomio_caps c = probe(&t_fig_xfs_reflink, 16384);
    cr_assert_eq(n_probe_writes, 1, "same device and page size probed twice");
    cr_assert_eq(c.buffered_probe_err, -EOPNOTSUPP, "cached verdict lost its errno");
    cr_assert_eq(c.buffered_atomic, 0);
    (void)probe(&t_fig_xfs_reflink, 4096);
    cr_assert_eq(n_probe_writes, 2, "another page size needs its own probe write");
    struct t_figures other = t_fig_xfs_reflink;
    other.dev_minor = 1;
    (void)probe(&other, 16384);
    cr_assert_eq(n_probe_writes, 3, "another device needs its own probe write");
    atomio__caps_cache_clear();
    (void)probe(&t_fig_xfs_reflink, 16384);
    cr_assert_eq(n_probe_writes, 4, "cache clear did not forget the verdict");
}

Test(caps, probe_impossible_shape_refused_by_folio_rule, .init = probe_setup,
     .fini = probe_teardown)
{
    /* 2 KiB pages on 4 KiB system pages can never be one folio: refused by the folio rule
     * whatever a probe write would say. */
    atomio_caps c = probe(&t_fig_xfs_reflink, 2048);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(c.page_order, UINT32_MAX);
    cr_assert(strstr(c.reason_buffered, "2048"), "reason '%s' does not name the page",
              c.reason_buffered);
    assert_direct(c, ATOMIO_ATOMIC_NONE, "2 KiB page under 4 KiB units");
}
