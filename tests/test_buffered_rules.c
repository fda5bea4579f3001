/* SPDX-License-Identifier: MIT */
/*
 * test_buffered_rules.c -- the buffered-atomic verdict as a pure function of captured probe
 * figures (XFS 4 KiB / 16 KiB blocks, ext4, tmpfs as this machine's 6.18 reports them), the
 * folio-order rule's reasons, the fs block taken from statx and statfs, and every selection
 * row that involves a buffered engine or the buffered path.
 */
#include "atomio_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#define XFS_MAGIC   0x58465342u
#define EXT4_MAGIC  0xef53u
#define TMPFS_MAGIC 0x01021994u

/* Raw figures as the probe stores them; verdicts derived by atomio__caps_derive(). */
static atomio_caps
captured(const char *fs, uint32_t page, int probe_err)
{
    atomio_caps c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.page_size = page;
    c.sys_page_size = 4096;
    c.valid = ATOMIO_CAPS_STATX | ATOMIO_CAPS_BUFFERED;
    c.buffered_probe_err = probe_err;
    c.dio_mem_align = 512;
    c.dio_offset_align = 512;
    if (!strcmp(fs, "xfs") || !strcmp(fs, "xfs-16k")) {
        bool big = !strcmp(fs, "xfs-16k");
        c.fs_type = XFS_MAGIC;
        c.fs_block_size = big ? 16384 : 4096;
        c.statx_mask = STATX_WRITE_ATOMIC | STATX_DIOALIGN;
        c.statx_attributes = STATX_ATTR_WRITE_ATOMIC;
        c.unit_min = big ? 16384 : 4096;
        c.unit_max = big ? 16777216 : 1048576;
        c.segments_max = 1;
        c.valid |= ATOMIO_CAPS_SYSFS; /* loop device: atomic_write_unit_max_bytes 0 */
    } else if (!strcmp(fs, "ext4")) {
        c.fs_type = EXT4_MAGIC;
        c.fs_block_size = 4096;
        c.statx_mask = STATX_WRITE_ATOMIC | STATX_DIOALIGN; /* mask bit, zero fields */
        c.valid |= ATOMIO_CAPS_SYSFS;
    } else {
        c.fs_type = TMPFS_MAGIC;
        c.fs_block_size = 4096;
        c.hw_sysfs_err = -ENODEV;
        c.dio_mem_align = c.dio_offset_align = 0;
    }
    atomio__caps_derive(&c);
    return c;
}

#define expect_has(s, needle) cr_assert(strstr((s), (needle)), "'%s' lacks '%s'", (s), (needle))

/* ---- this machine's kernels: every filesystem refuses with EOPNOTSUPP ------------------ */

Test(buffered_rules, xfs_4k_refused_with_the_kernels_errno)
{
    atomio_caps c = captured("xfs", 4096, -EOPNOTSUPP);
    cr_assert_eq(c.folio_ok, 1, "%s", c.reason_buffered);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(c.page_order, 0);
    cr_assert_eq(c.fs_min_order, 0);
    expect_has(c.reason_buffered, "kernel refused the buffered RWF_ATOMIC|RWF_DSYNC probe");
    expect_has(c.reason_buffered, "EOPNOTSUPP");
    cr_assert_neq(c.auto_path, ATOMIO_PATH_BUFFERED_ATOMIC);
}

Test(buffered_rules, xfs_4k_with_16k_pages_names_the_orders)
{
    atomio_caps c = captured("xfs", 16384, -EOPNOTSUPP);
    cr_assert_eq(c.folio_ok, 0);
    cr_assert_eq(c.buffered_atomic, 0);
    cr_assert_eq(c.page_order, 2);
    cr_assert_eq(c.fs_min_order, 0);
    expect_has(c.reason_buffered, "page 16384 = order 2, fs block 4096 = min order 0");
    expect_has(c.reason_buffered, "EOPNOTSUPP");
}

Test(buffered_rules, xfs_16k_blocks)
{
    atomio_caps c = captured("xfs-16k", 16384, -EOPNOTSUPP);
    cr_assert_eq(c.folio_ok, 1, "%s", c.reason_buffered);
    cr_assert_eq(c.page_order, 2);
    cr_assert_eq(c.fs_min_order, 2);
    expect_has(c.reason_buffered, "EOPNOTSUPP");
    expect_has(c.reason_buffered, "order 2");

    c = captured("xfs-16k", 4096, -EINVAL);
    cr_assert_eq(c.folio_ok, 0);
    expect_has(c.reason_buffered, "page 4096 = order 0, fs block 16384 = min order 2");
    expect_has(c.reason_buffered, "EINVAL");
}

Test(buffered_rules, ext4_and_tmpfs_refused_with_the_kernels_errno)
{
    atomio_caps c = captured("ext4", 4096, -EOPNOTSUPP);
    cr_assert_eq(c.folio_ok, 1, "ext4 reports no atomic limits: the range is not checked");
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "EOPNOTSUPP");
    c = captured("tmpfs", 4096, -EOPNOTSUPP);
    cr_assert_eq(c.folio_ok, 1);
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "EOPNOTSUPP");
}

/* ---- an accepting kernel ---------------------------------------------------------------- */

Test(buffered_rules, proven_and_folio_ok_is_buffered_atomic)
{
    const char *fss[] = {"xfs", "ext4", "tmpfs"};
    for (size_t i = 0; i < 3; i++) {
        atomio_caps c = captured(fss[i], 4096, 0);
        cr_assert_eq(c.buffered_atomic, 1, "%s: %s", fss[i], c.reason_buffered);
        expect_has(c.reason_buffered, "succeeded");
        cr_assert_eq(c.auto_path, ATOMIO_PATH_BUFFERED_ATOMIC, "%s: %s", fss[i], c.reason_auto);
    }
    atomio_caps c = captured("xfs-16k", 16384, 0);
    cr_assert_eq(c.buffered_atomic, 1, "%s", c.reason_buffered);
}

Test(buffered_rules, accepted_probe_does_not_override_the_folio_rule)
{
    atomio_caps c = captured("xfs", 16384, 0);
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "page 16384 = order 2, fs block 4096 = min order 0");
    expect_has(c.reason_buffered, "probe write succeeded");
}

Test(buffered_rules, range_checked_when_the_file_reports_limits)
{
    atomio_caps c = captured("xfs-16k", 32768, 0); /* order 3 != min order 2 */
    cr_assert_eq(c.folio_ok, 0);
    c = captured("xfs", 4096, 0);
    c.unit_min = 8192;
    c.unit_max = 65536;
    atomio__caps_derive(&c);
    cr_assert_eq(c.folio_ok, 0);
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "outside the atomic unit range [8192, 65536]");
}

Test(buffered_rules, pages_smaller_than_a_system_page)
{
    atomio_caps c = captured("xfs", 512, -EINVAL);
    cr_assert_eq(c.page_order, UINT32_MAX);
    cr_assert_eq(c.folio_ok, 0);
    expect_has(c.reason_buffered, "page 512 is not a power-of-two multiple of the system page");
}

Test(buffered_rules, not_probed)
{
    atomio_caps c = captured("xfs", 4096, 0);
    c.valid &= ~ATOMIO_CAPS_BUFFERED;
    atomio__caps_derive(&c);
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "not probed");
    c.buffered_probe_err = -EACCES;
    atomio__caps_derive(&c);
    cr_assert_eq(c.buffered_atomic, 0);
    expect_has(c.reason_buffered, "cannot create the O_TMPFILE probe file: EACCES");
}

/* ---- the fs block: the smaller of stx_blksize and f_bsize -------------------------------- */

static uint32_t fake_blksize, fake_bsize;

static int
fake_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx)
{
    int r = atomio__sys_real.statx(dirfd, path, flags, mask, stx);
    stx->blksize = fake_blksize;
    return r;
}

static int
fake_fstatfs(int fd, struct statfs *st)
{
    int r = atomio__sys_real.fstatfs(fd, st);
    st->f_bsize = (long)fake_bsize;
    return r;
}

static uint32_t
probed_block(uint32_t blksize, uint32_t bsize)
{
    fake_blksize = blksize;
    fake_bsize = bsize;
    atomio__sys.statx = fake_statx;
    atomio__sys.fstatfs = fake_fstatfs;
    int fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    atomio_caps c = {.size = sizeof(atomio_caps)};
    cr_assert_eq(atomio__probe_fd(fd, NULL, 4096, &c), 0);
    close(fd);
    atomio__sys.statx = atomio__sys_real.statx;
    atomio__sys.fstatfs = atomio__sys_real.fstatfs;
    return c.fs_block_size;
}

Test(buffered_rules, fs_block_is_the_smaller_of_statx_and_statfs)
{
    /* XFS -o largeio reports the stripe width as stx_blksize; f_bsize stays the block. */
    cr_assert_eq(probed_block(65536, 4096), 4096);
    cr_assert_eq(probed_block(16384, 16384), 16384);
    cr_assert_eq(probed_block(4096, 0), 4096, "statfs without a block size");
    cr_assert_eq(probed_block(0, 4096), 4096, "statx without a block size");
}

/* ---- selection rows ---------------------------------------------------------------------- */

static struct atomio_select_out
sel(const atomio_caps *c, uint32_t style, uint32_t policy, uint32_t forced, bool store)
{
    struct atomio_select_in in = {
        .caps = c, .io_style = style, .policy = policy, .forced = forced, .have_store = store};
    struct atomio_select_out out;
    atomio__select(&in, &out);
    return out;
}

/* caps with a given direct verdict and buffered proof */
static atomio_caps
caps_with(uint32_t direct, bool buffered)
{
    atomio_caps c = captured("xfs", 4096, buffered ? 0 : -EOPNOTSUPP);
    c.direct_atomic = direct;
    if (direct == ATOMIO_ATOMIC_HARDWARE)
        atomio__reason(c.reason_direct, "hardware atomic writes (test)");
    return c;
}

Test(buffered_rules, select_buffered_engine)
{
    atomio_caps proven = caps_with(ATOMIO_ATOMIC_HARDWARE, true);
    struct atomio_select_out o =
        sel(&proven, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC, "%s", o.reason);
    cr_assert_eq(o.reject[ATOMIO_PATH_BUFFERED_ATOMIC][0], '\0');

    /* Refused buffered atomics: doublewrite, never O_DIRECT, whatever the direct verdict. */
    uint32_t directs[] = {ATOMIO_ATOMIC_HARDWARE, ATOMIO_ATOMIC_SOFTWARE, ATOMIO_ATOMIC_NONE};
    uint32_t policies[] = {ATOMIO_POLICY_PREFER_FAST, ATOMIO_POLICY_PREFER_ATOMIC,
                           ATOMIO_POLICY_CALIBRATE};
    for (size_t d = 0; d < 3; d++) {
        for (size_t p = 0; p < 3; p++) {
            atomio_caps c = caps_with(directs[d], false);
            o = sel(&c, ATOMIO_IO_BUFFERED, policies[p], ATOMIO_PATH_AUTO, true);
            cr_assert_eq(o.err, 0);
            cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "direct %u policy %u: %s", directs[d],
                         policies[p], o.reason);
            cr_assert_not(o.needs_calibration, "nothing to calibrate for a buffered engine");
            expect_has(o.reject[ATOMIO_PATH_DIRECT_ATOMIC], "never switched to O_DIRECT");
            expect_has(o.reason, "in-place writes through the page cache");
            expect_has(o.reject[ATOMIO_PATH_BUFFERED_ATOMIC], "EOPNOTSUPP");
            o = sel(&c, ATOMIO_IO_BUFFERED, policies[p], ATOMIO_PATH_AUTO, false);
            cr_assert_eq(o.err, ATOMIO_E_NO_DOUBLEWRITE, "direct %u policy %u without store",
                         directs[d], policies[p]);
            expect_has(o.reason, "page-cache engine");
        }
    }
}

Test(buffered_rules, select_any_engine)
{
    atomio_caps c = caps_with(ATOMIO_ATOMIC_HARDWARE, true);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC, "rule 1 first: %s", o.reason);

    c = caps_with(ATOMIO_ATOMIC_HARDWARE, false);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC, "ANY may go O_DIRECT: %s", o.reason);
    expect_has(o.reject[ATOMIO_PATH_BUFFERED_ATOMIC], "EOPNOTSUPP");

    c = caps_with(ATOMIO_ATOMIC_SOFTWARE, false);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "%s", o.reason);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_ATOMIC, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC, "%s", o.reason);
}

Test(buffered_rules, select_direct_engine_never_buffered)
{
    atomio_caps c = caps_with(ATOMIO_ATOMIC_NONE, true);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "%s", o.reason);
    expect_has(o.reject[ATOMIO_PATH_BUFFERED_ATOMIC], "O_DIRECT");
}

Test(buffered_rules, select_forced_buffered)
{
    atomio_caps c = caps_with(ATOMIO_ATOMIC_NONE, true);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_BUFFERED_ATOMIC, false);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC);
    expect_has(o.reason, "forced BUFFERED_ATOMIC");

    c = captured("xfs", 16384, -EINVAL);
    o = sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_BUFFERED_ATOMIC, true);
    cr_assert_eq(o.err, ATOMIO_E_FOLIO_ORDER);
    expect_has(o.reason, "page 16384 = order 2, fs block 4096 = min order 0");

    c = captured("ext4", 4096, -EOPNOTSUPP);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_BUFFERED_ATOMIC, true);
    cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED);
    expect_has(o.reason, "EOPNOTSUPP");

    c = caps_with(ATOMIO_ATOMIC_NONE, true);
    o = sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_BUFFERED_ATOMIC, true);
    cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED, "an O_DIRECT engine cannot force it");

    c = caps_with(ATOMIO_ATOMIC_HARDWARE, false);
    o = sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_DIRECT_ATOMIC, true);
    cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED, "a buffered engine cannot force O_DIRECT");
    expect_has(o.reason, "page-cache I/O");
}
