/* SPDX-License-Identifier: MIT */
/*
 * test_select.c -- path selection through the pure atomio__select(): every combination of io
 * style, buffered-atomic proven or not, hardware/software/no direct atomic, policy (with and
 * without CALIBRATE figures) and store present or not, checked against the table written out
 * below; forced paths; AUTO never picks UNSAFE and never moves a BUFFERED engine to O_DIRECT;
 * every rejected candidate carries a reason. Finally the ATOMIO_PATH override, which lives in
 * atomio_file_open().
 *
 * The caps fed to the selector are made the way the probe makes them: captured raw figures run
 * through atomio__caps_derive(). Each case first checks the derived verdict it relies on, so a
 * derive bug shows up as such and not as a selection bug.
 */
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

enum direct_kind { D_NONE, D_HARDWARE, D_SOFTWARE };
static const char *const direct_names[] = {"none", "hardware", "software"};

/*
 * mkcaps() -- caps for a 4 KiB page on a 4 KiB-block filesystem (one folio of order 0 under
 * any reading of the folio rule) with the given direct-atomic kind, and the buffered probe
 * write succeeded (buffered) or returned EOPNOTSUPP.
 */
static atomio_caps
mkcaps(enum direct_kind d, bool buffered)
{
    struct t_figures fg = t_fig_xfs_reflink; /* software: unit 4 KiB .. 1 MiB, no hw */
    if (d == D_HARDWARE)
        fg.unit_max_opt = 65536; /* an NVMe-like device under XFS: 64 KiB is offloaded */
    atomio_caps c = t_caps_from(&fg, 4096, 4096, buffered ? 0 : -EOPNOTSUPP);
    if (d == D_NONE) {
        /* no STATX_ATTR_WRITE_ATOMIC; the unit figures stay, so the buffered folio rule holds
         * and only the probe write decides the buffered verdict */
        c.statx_attributes = 0;
    }
    atomio__caps_derive(&c);
    const uint32_t want[] = {ATOMIO_ATOMIC_NONE, ATOMIO_ATOMIC_HARDWARE, ATOMIO_ATOMIC_SOFTWARE};
    cr_assert_eq(c.direct_atomic, want[d], "derive: direct_atomic %u, wanted %s", c.direct_atomic,
                 direct_names[d]);
    cr_assert_eq(c.buffered_atomic, buffered ? 1u : 0u, "derive: buffered_atomic %u, wanted %d",
                 c.buffered_atomic, buffered);
    return c;
}

static struct atomio_select_out
sel(const atomio_caps *c, uint32_t style, uint32_t policy, uint32_t forced, bool store,
    uint64_t cal_atomic, uint64_t cal_dblwr)
{
    struct atomio_select_in in;
    memset(&in, 0, sizeof(in));
    in.caps = c;
    in.io_style = style;
    in.policy = policy;
    in.forced = forced;
    in.have_store = store;
    in.calib_atomic_ns = cal_atomic;
    in.calib_doublewrite_ns = cal_dblwr;
    struct atomio_select_out out;
    memset(&out, 0x5a, sizeof(out)); /* the selector must fill every field it reports */
    out.reason[0] = '\0';
    for (int i = 0; i < (ATOMIO_PATH_UNSAFE + 1); i++)
        out.reject[i][0] = '\0';
    atomio__select(&in, &out);
    return out;
}

static const uint32_t candidates[] = {ATOMIO_PATH_DIRECT_ATOMIC, ATOMIO_PATH_BUFFERED_ATOMIC,
                                      ATOMIO_PATH_DOUBLEWRITE};

/* assert_reasons() -- AUTO's output explains itself: the pick (or the error) has a reason, the
 * pick has no rejection, every other candidate has one. */
static void
assert_reasons(const struct atomio_select_out *o, const char *row)
{
    cr_assert(o->reason[0] != '\0', "%s: no reason for %s", row,
              o->err ? atomio_err_name(o->err) : atomio_path_name(o->path));
    cr_assert(memchr(o->reason, '\0', ATOMIO_REASON_LEN) != NULL, "%s: unterminated reason", row);
    for (size_t i = 0; i < 3; i++) {
        uint32_t p = candidates[i];
        cr_assert(memchr(o->reject[p], '\0', ATOMIO_REASON_LEN) != NULL,
                  "%s: unterminated rejection for %s", row, atomio_path_name(p));
        if (o->err == 0 && o->path == p)
            cr_assert_str_empty(o->reject[p], "%s: the chosen %s carries a rejection '%s'", row,
                                atomio_path_name(p), o->reject[p]);
        else
            cr_assert(o->reject[p][0] != '\0', "%s: rejected %s has no reason", row,
                      atomio_path_name(p));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The table. expect() is the selection rule written out; the loop runs every combination.     */

enum cal_case { CAL_NONE, CAL_ATOMIC_FASTER, CAL_DBLWR_FASTER };

struct expect {
    uint32_t path; /* when err == 0 and !calibrate */
    int err;
    bool calibrate; /* needs_calibration */
};

static struct expect
expect(uint32_t style, bool buffered, enum direct_kind d, uint32_t policy, enum cal_case cal,
       bool store)
{
    struct expect e = {0, 0, false};
    bool wants_buffered = style == ATOMIO_IO_BUFFERED || style == ATOMIO_IO_ANY;
    bool wants_direct = style == ATOMIO_IO_DIRECT || style == ATOMIO_IO_ANY;
    /* 1. buffered atomic proven for this shape, and the engine may use the page cache */
    if (wants_buffered && buffered) {
        e.path = ATOMIO_PATH_BUFFERED_ATOMIC;
        return e;
    }
    /* 2. hardware-backed O_DIRECT atomic, and the engine may use O_DIRECT */
    if (wants_direct && d == D_HARDWARE) {
        e.path = ATOMIO_PATH_DIRECT_ATOMIC;
        return e;
    }
    /* 3. software-only: the policy decides. Without a store the slow atomic path is the only
     *    torn-safe one left, so every policy takes it (AUTO never picks UNSAFE). */
    if (wants_direct && d == D_SOFTWARE) {
        if (!store || policy == ATOMIO_POLICY_PREFER_ATOMIC) {
            e.path = ATOMIO_PATH_DIRECT_ATOMIC;
        } else if (policy == ATOMIO_POLICY_PREFER_FAST) {
            e.path = ATOMIO_PATH_DOUBLEWRITE;
        } else if (cal == CAL_NONE) {
            e.calibrate = true;
        } else {
            e.path = cal == CAL_ATOMIC_FASTER ? ATOMIO_PATH_DIRECT_ATOMIC : ATOMIO_PATH_DOUBLEWRITE;
        }
        return e;
    }
    /* 4. otherwise doublewrite, which needs a store */
    if (store)
        e.path = ATOMIO_PATH_DOUBLEWRITE;
    else
        e.err = ATOMIO_E_NO_DOUBLEWRITE;
    return e;
}

Test(select, every_auto_row)
{
    const uint32_t styles[] = {ATOMIO_IO_ANY, ATOMIO_IO_BUFFERED, ATOMIO_IO_DIRECT};
    const uint32_t policies[] = {ATOMIO_POLICY_PREFER_FAST, ATOMIO_POLICY_PREFER_ATOMIC,
                                 ATOMIO_POLICY_CALIBRATE};
    unsigned rows = 0;
    for (size_t s = 0; s < 3; s++)
        for (int b = 0; b < 2; b++)
            for (int d = D_NONE; d <= D_SOFTWARE; d++) {
                atomio_caps c = mkcaps((enum direct_kind)d, b);
                for (size_t p = 0; p < 3; p++)
                    for (int cal = CAL_NONE; cal <= CAL_DBLWR_FASTER; cal++) {
                        if (policies[p] != ATOMIO_POLICY_CALIBRATE && cal != CAL_NONE)
                            continue;
                        for (int store = 0; store < 2; store++) {
                            char row[160];
                            snprintf(row, sizeof(row), "io %s, buffered %s, direct %s, %s%s, %s",
                                     atomio_io_style_name(styles[s]), b ? "proven" : "refused",
                                     direct_names[d], atomio_policy_name(policies[p]),
                                     cal == CAL_NONE            ? ""
                                     : cal == CAL_ATOMIC_FASTER ? " (atomic faster)"
                                                                : " (doublewrite faster)",
                                     store ? "store" : "no store");
                            uint64_t ca = cal == CAL_NONE            ? 0
                                          : cal == CAL_ATOMIC_FASTER ? 20000
                                                                     : 90000;
                            uint64_t cd = cal == CAL_NONE ? 0 : 50000;
                            struct atomio_select_out o =
                                sel(&c, styles[s], policies[p], ATOMIO_PATH_AUTO, store, ca, cd);
                            struct expect e = expect(styles[s], b, (enum direct_kind)d, policies[p],
                                                     (enum cal_case)cal, store);
                            rows++;
                            cr_assert_eq(o.needs_calibration, e.calibrate,
                                         "%s: needs_calibration %d, expected %d", row,
                                         o.needs_calibration, e.calibrate);
                            if (e.calibrate)
                                continue;
                            cr_assert_eq(o.err, e.err, "%s: err %s, expected %s", row,
                                         atomio_err_name(o.err), atomio_err_name(e.err));
                            if (e.err == 0)
                                cr_assert_eq(o.path, e.path, "%s: picked %s, expected %s (%s)", row,
                                             atomio_path_name(o.path), atomio_path_name(e.path),
                                             o.reason);
                            if (o.err == 0) {
                                cr_assert_neq(o.path, ATOMIO_PATH_UNSAFE, "%s: AUTO picked UNSAFE",
                                              row);
                                cr_assert_neq(o.path, ATOMIO_PATH_AUTO, "%s: AUTO picked AUTO",
                                              row);
                                if (styles[s] == ATOMIO_IO_BUFFERED)
                                    cr_assert_neq(o.path, ATOMIO_PATH_DIRECT_ATOMIC,
                                                  "%s: AUTO moved a BUFFERED engine to O_DIRECT",
                                                  row);
                            }
                            assert_reasons(&o, row);
                        }
                    }
            }
    cr_assert_eq(rows, 3 * 2 * 3 * (1 + 1 + 3) * 2, "table not fully walked: %u rows", rows);
}

/* The same rows spelled out one by one for the cases engines care about most. */

Test(select, buffered_engine_with_proven_buffered_atomic)
{
    atomio_caps c = mkcaps(D_SOFTWARE, true);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC);
    assert_reasons(&o, "buffered engine, buffered proven");
}

Test(select, direct_engine_hardware_atomic)
{
    atomio_caps c = mkcaps(D_HARDWARE, false);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC, "picked %s: %s", atomio_path_name(o.path),
                 o.reason);
}

Test(select, software_atomic_prefer_fast_takes_doublewrite)
{
    atomio_caps c = mkcaps(D_SOFTWARE, false);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "picked %s: %s", atomio_path_name(o.path),
                 o.reason);
    /* the rejection says why the available atomic path was passed over */
    cr_assert(o.reject[ATOMIO_PATH_DIRECT_ATOMIC][0] != '\0');
}

Test(select, software_atomic_prefer_atomic_takes_it)
{
    atomio_caps c = mkcaps(D_SOFTWARE, false);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_ATOMIC, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC);
}

Test(select, calibrate_asks_for_figures_then_takes_the_faster)
{
    atomio_caps c = mkcaps(D_SOFTWARE, false);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_CALIBRATE, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert(o.needs_calibration, "CALIBRATE without figures must ask for a measurement");
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_CALIBRATE, ATOMIO_PATH_AUTO, true, 10000, 40000);
    cr_assert(!o.needs_calibration);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_CALIBRATE, ATOMIO_PATH_AUTO, true, 40000, 10000);
    cr_assert(!o.needs_calibration);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE);
    /* hardware or no atomic: nothing to measure */
    c = mkcaps(D_HARDWARE, false);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_CALIBRATE, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert(!o.needs_calibration);
    cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC);
    c = mkcaps(D_NONE, false);
    o = sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_CALIBRATE, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert(!o.needs_calibration);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE);
}

Test(select, buffered_engine_never_moved_to_o_direct)
{
    /* Hardware atomic is right there, but the engine said BUFFERED: doublewrite it is. */
    atomio_caps c = mkcaps(D_HARDWARE, false);
    const uint32_t policies[] = {ATOMIO_POLICY_PREFER_FAST, ATOMIO_POLICY_PREFER_ATOMIC,
                                 ATOMIO_POLICY_CALIBRATE};
    for (size_t p = 0; p < 3; p++) {
        struct atomio_select_out o =
            sel(&c, ATOMIO_IO_BUFFERED, policies[p], ATOMIO_PATH_AUTO, true, 1, 2);
        cr_assert_eq(o.err, 0);
        cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "%s: picked %s",
                     atomio_policy_name(policies[p]), atomio_path_name(o.path));
        cr_assert(o.reject[ATOMIO_PATH_DIRECT_ATOMIC][0] != '\0');
    }
}

Test(select, nothing_torn_safe_without_store)
{
    atomio_caps c = mkcaps(D_NONE, false);
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_ANY, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, false, 0, 0);
    cr_assert_eq(o.err, ATOMIO_E_NO_DOUBLEWRITE, "got %s path %s", atomio_err_name(o.err),
                 atomio_path_name(o.path));
    assert_reasons(&o, "no atomic, no store");
}

/* ------------------------------------------------------------------------------------------ */
/* Forced paths.                                                                                */

Test(select, forced_paths)
{
    const uint32_t policies[] = {ATOMIO_POLICY_PREFER_FAST, ATOMIO_POLICY_PREFER_ATOMIC,
                                 ATOMIO_POLICY_CALIBRATE};
    for (int d = D_NONE; d <= D_SOFTWARE; d++)
        for (int b = 0; b < 2; b++) {
            atomio_caps c = mkcaps((enum direct_kind)d, b);
            for (size_t p = 0; p < 3; p++)
                for (int store = 0; store < 2; store++) {
                    char row[128];
                    snprintf(row, sizeof(row), "direct %s, buffered %s, %s, %s", direct_names[d],
                             b ? "proven" : "refused", atomio_policy_name(policies[p]),
                             store ? "store" : "no store");
                    struct atomio_select_out o;

                    o = sel(&c, ATOMIO_IO_DIRECT, policies[p], ATOMIO_PATH_DIRECT_ATOMIC, store, 0,
                            0);
                    cr_assert(!o.needs_calibration, "%s: forced paths are not calibrated", row);
                    if (d == D_NONE) {
                        cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED,
                                     "%s: forced DIRECT_ATOMIC got %s", row,
                                     atomio_err_name(o.err));
                        cr_assert(o.reason[0], "%s: forced DIRECT_ATOMIC refused without reason",
                                  row);
                    } else {
                        cr_assert_eq(o.err, 0, "%s: forced DIRECT_ATOMIC got %s (%s)", row,
                                     atomio_err_name(o.err), o.reason);
                        cr_assert_eq(o.path, ATOMIO_PATH_DIRECT_ATOMIC, "%s", row);
                    }

                    o = sel(&c, ATOMIO_IO_BUFFERED, policies[p], ATOMIO_PATH_BUFFERED_ATOMIC, store,
                            0, 0);
                    if (b) {
                        cr_assert_eq(o.err, 0, "%s: forced BUFFERED_ATOMIC got %s", row,
                                     atomio_err_name(o.err));
                        cr_assert_eq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC, "%s", row);
                    } else {
                        /* the folio rule holds for these shapes; the probe write failed */
                        cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED,
                                     "%s: forced BUFFERED_ATOMIC got %s", row,
                                     atomio_err_name(o.err));
                        cr_assert(o.reason[0], "%s: no reason", row);
                    }

                    o = sel(&c, ATOMIO_IO_ANY, policies[p], ATOMIO_PATH_DOUBLEWRITE, store, 0, 0);
                    if (store) {
                        cr_assert_eq(o.err, 0, "%s: forced DOUBLEWRITE got %s", row,
                                     atomio_err_name(o.err));
                        cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE, "%s", row);
                    } else {
                        cr_assert_eq(o.err, ATOMIO_E_NO_DOUBLEWRITE,
                                     "%s: forced DOUBLEWRITE without a store got %s", row,
                                     atomio_err_name(o.err));
                        cr_assert(o.reason[0], "%s: no reason", row);
                    }

                    const uint32_t styles[] = {ATOMIO_IO_ANY, ATOMIO_IO_BUFFERED, ATOMIO_IO_DIRECT};
                    for (size_t s = 0; s < 3; s++) {
                        o = sel(&c, styles[s], policies[p], ATOMIO_PATH_UNSAFE, store, 0, 0);
                        cr_assert_eq(o.err, 0, "%s, io %s: forced UNSAFE got %s", row,
                                     atomio_io_style_name(styles[s]), atomio_err_name(o.err));
                        cr_assert_eq(o.path, ATOMIO_PATH_UNSAFE, "%s", row);
                        cr_assert(o.reason[0], "%s: forced UNSAFE without a reason", row);
                    }
                }
        }
}

Test(select, forced_direct_page_outside_units)
{
    /* 2 MiB-capable software atomic... but the page is 2 KiB, below unit_min 4 KiB. */
    atomio_caps c = t_caps_from(&t_fig_xfs_reflink, 2048, 4096, -EOPNOTSUPP);
    atomio__caps_derive(&c);
    cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_NONE);
    struct atomio_select_out o = sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_ATOMIC,
                                     ATOMIO_PATH_DIRECT_ATOMIC, true, 0, 0);
    cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED, "got %s", atomio_err_name(o.err));
    cr_assert(o.reason[0]);

    struct t_figures fg = t_fig_xfs_reflink;
    fg.unit_max = 65536; /* mounted with max_atomic_write=64k */
    c = t_caps_from(&fg, 131072, 4096, -EOPNOTSUPP);
    atomio__caps_derive(&c);
    cr_assert_eq(c.direct_atomic, ATOMIO_ATOMIC_NONE);
    o = sel(&c, ATOMIO_IO_DIRECT, ATOMIO_POLICY_PREFER_ATOMIC, ATOMIO_PATH_DIRECT_ATOMIC, true, 0,
            0);
    cr_assert_eq(o.err, ATOMIO_E_PATH_UNSUPPORTED, "got %s", atomio_err_name(o.err));
    cr_assert(o.reason[0]);
}

Test(select, forced_buffered_failing_folio_rule)
{
    /* 16 KiB filesystem blocks (min folio order 2) and a 4 KiB page (order 0). */
    struct t_figures fg = t_fig_xfs_reflink;
    fg.blksize = 16384;
    fg.unit_min = 16384;
    atomio_caps c = t_caps_from(&fg, 4096, 4096, 0);
    atomio__caps_derive(&c);
    cr_assert_eq(c.buffered_atomic, 0);
    struct atomio_select_out o = sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST,
                                     ATOMIO_PATH_BUFFERED_ATOMIC, true, 0, 0);
    cr_assert_eq(o.err, ATOMIO_E_FOLIO_ORDER, "got %s", atomio_err_name(o.err));
    cr_assert(o.reason[0]);

    /* a page smaller than the system page cannot be one folio at all */
    c = t_caps_from(&t_fig_xfs_reflink, 2048, 4096, 0);
    atomio__caps_derive(&c);
    o = sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_BUFFERED_ATOMIC, true, 0,
            0);
    cr_assert_eq(o.err, ATOMIO_E_FOLIO_ORDER, "got %s", atomio_err_name(o.err));

    /* and AUTO simply passes it over, with the reason */
    o = sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_eq(o.path, ATOMIO_PATH_DOUBLEWRITE);
    cr_assert(o.reject[ATOMIO_PATH_BUFFERED_ATOMIC][0]);
}

Test(select, buffered_probe_not_run_is_not_proof)
{
    atomio_caps c = t_caps_from(&t_fig_xfs_reflink, 4096, 4096, 0);
    c.valid &= ~ATOMIO_CAPS_BUFFERED; /* the probe write never happened */
    atomio__caps_derive(&c);
    cr_assert_eq(c.buffered_atomic, 0, "buffered atomic assumed without a probe write");
    struct atomio_select_out o =
        sel(&c, ATOMIO_IO_BUFFERED, ATOMIO_POLICY_PREFER_FAST, ATOMIO_PATH_AUTO, true, 0, 0);
    cr_assert_eq(o.err, 0);
    cr_assert_neq(o.path, ATOMIO_PATH_BUFFERED_ATOMIC);
}

/* ------------------------------------------------------------------------------------------ */
/* ATOMIO_PATH, through atomio_file_open().                                                     */

static char dir[PATH_MAX];
static atomio_ctx *ctx;
static int (*real_statx)(int, const char *, int, unsigned, struct atomio_statx *);

/* fake_statx_software() -- the real statx, then the atomic figures of an XFS reflink=1 file,
 * so the file under test (on whatever $TMPDIR is) looks software-atomic. */
static int
fake_statx_software(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *s)
{
    int r = real_statx(dirfd, path, flags, mask, s);
    if (r == 0) {
        s->mask |= STATX_WRITE_ATOMIC;
        s->attributes |= STATX_ATTR_WRITE_ATOMIC;
        s->atomic_write_unit_min = 4096;
        s->atomic_write_unit_max = 1048576;
        s->atomic_write_segments_max = 1;
        s->atomic_write_unit_max_opt = 0;
    }
    return r;
}

/* fake_statx_none() -- the real statx with every atomic figure removed. */
static int
fake_statx_none(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *s)
{
    int r = real_statx(dirfd, path, flags, mask, s);
    if (r == 0) {
        s->attributes &= ~(uint64_t)STATX_ATTR_WRITE_ATOMIC;
        s->atomic_write_unit_min = s->atomic_write_unit_max = 0;
        s->atomic_write_segments_max = s->atomic_write_unit_max_opt = 0;
    }
    return r;
}

static void
env_setup(void)
{
    unsetenv("ATOMIO_PATH");
    t_tmpdir(dir, sizeof(dir));
    ctx = t_ctx_open(NULL);
    real_statx = atomio__sys_real.statx;
    atomio__caps_cache_clear();
}

static void
env_teardown(void)
{
    atomio__sys = atomio__sys_real;
    unsetenv("ATOMIO_PATH");
    if (ctx)
        atomio_ctx_close(ctx);
    t_rmtree(dir);
}

static int
open_with(const char *name, uint32_t path, uint32_t policy, atomio_file **f)
{
    atomio_file_opts o = t_file_opts(4096, path, ATOMIO_IO_DIRECT, ATOMIO_FILE_CREATE);
    o.policy = policy;
    *f = NULL;
    return atomio_file_open(ctx, t_join(dir, name), &o, f);
}

Test(select, env_forces_unsafe, .init = env_setup, .fini = env_teardown)
{
    atomio__sys.statx = fake_statx_software;
    atomio_file *f;
    int r = open_with("a", ATOMIO_PATH_AUTO, ATOMIO_POLICY_PREFER_ATOMIC, &f);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DIRECT_ATOMIC, "without ATOMIO_PATH: %s",
                 atomio_path_name(t_info(f).path));
    cr_assert_eq(atomio_file_close(f), 0);

    setenv("ATOMIO_PATH", "unsafe", 1);
    r = open_with("b", ATOMIO_PATH_AUTO, ATOMIO_POLICY_PREFER_ATOMIC, &f);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));
    atomio_file_info fi = t_info(f);
    cr_assert_eq(fi.path, ATOMIO_PATH_UNSAFE, "ATOMIO_PATH=unsafe gave %s",
                 atomio_path_name(fi.path));
    cr_assert_eq(fi.torn_write_safe, 0);
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(select, env_auto_overrides_forced_opts, .init = env_setup, .fini = env_teardown)
{
    atomio__sys.statx = fake_statx_software;
    setenv("ATOMIO_PATH", "auto", 1);
    atomio_file *f;
    int r = open_with("a", ATOMIO_PATH_UNSAFE, ATOMIO_POLICY_PREFER_ATOMIC, &f);
    cr_assert_eq(r, 0, "%s", atomio_err_name(r));
    cr_assert_eq(t_info(f).path, ATOMIO_PATH_DIRECT_ATOMIC, "ATOMIO_PATH=auto gave %s",
                 atomio_path_name(t_info(f).path));
    cr_assert_eq(atomio_file_close(f), 0);
}

Test(select, env_forced_path_that_cannot_work, .init = env_setup, .fini = env_teardown)
{
    atomio__sys.statx = fake_statx_none;
    setenv("ATOMIO_PATH", "direct", 1);
    atomio_file *f;
    int r = open_with("a", ATOMIO_PATH_UNSAFE, ATOMIO_POLICY_PREFER_FAST, &f);
    cr_assert_eq(r, ATOMIO_E_PATH_UNSUPPORTED, "ATOMIO_PATH=direct on a non-atomic file: %s",
                 atomio_err_name(r));
    cr_assert_null(f);

    setenv("ATOMIO_PATH", "doublewrite", 1);
    r = open_with("b", ATOMIO_PATH_UNSAFE, ATOMIO_POLICY_PREFER_FAST, &f);
    cr_assert_eq(r, ATOMIO_E_NO_DOUBLEWRITE, "ATOMIO_PATH=doublewrite without a store: %s",
                 atomio_err_name(r));
    cr_assert_null(f);

    setenv("ATOMIO_PATH", "buffered", 1);
    r = open_with("c", ATOMIO_PATH_UNSAFE, ATOMIO_POLICY_PREFER_FAST, &f);
    cr_assert(r == ATOMIO_E_PATH_UNSUPPORTED || r == ATOMIO_E_FOLIO_ORDER,
              "ATOMIO_PATH=buffered where the kernel refuses buffered atomic: %s",
              atomio_err_name(r));
    cr_assert_null(f);
}

Test(select, env_unknown_value_refused, .init = env_setup, .fini = env_teardown)
{
    /* An operator's typo must not silently run the engine on some other path. */
    setenv("ATOMIO_PATH", "atomic-please", 1);
    atomio_file *f;
    int r = open_with("a", ATOMIO_PATH_UNSAFE, ATOMIO_POLICY_PREFER_FAST, &f);
    cr_assert_eq(r, ATOMIO_E_INVAL, "ATOMIO_PATH=atomic-please: %s", atomio_err_name(r));
    cr_assert_null(f);
}
