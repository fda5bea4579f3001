/* SPDX-License-Identifier: MIT */
/*
 * test_buffered_real.c -- BUFFERED_ATOMIC on a real kernel that accepts buffered RWF_ATOMIC.
 * Set ATOMIO_TEST_BUFFERED_DIR to a writable directory on a filesystem where such a kernel
 * (one carrying the buffered-atomic patches) takes the writes; the suite then runs the same
 * bodies the simulated-kernel suite runs in CI (buffered_cases.c), unchanged, with the page
 * size max(system page, fs block) unless ATOMIO_TEST_BUFFERED_PAGE_SIZE says otherwise.
 * Without the variable every test skips and says so.
 */
#include "buffered_cases.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static const char *
buffered_dir(void)
{
    const char *d = getenv("ATOMIO_TEST_BUFFERED_DIR");
    if (!d || !*d)
        cr_skip_test("skipped: set ATOMIO_TEST_BUFFERED_DIR to a directory on a filesystem "
                     "where the kernel accepts buffered RWF_ATOMIC (mainline through 6.18 does "
                     "not; test_buffered_sim covers the path on a simulated kernel)");
    /* These tests assert what AUTO chooses; a forced path would defeat them. */
    unsetenv("ATOMIO_PATH");
    return d;
}

static uint32_t
buffered_page(const char *dir)
{
    const char *e = getenv("ATOMIO_TEST_BUFFERED_PAGE_SIZE");
    if (e && *e) {
        unsigned long v = strtoul(e, NULL, 0);
        cr_assert(v >= 512 && v <= (1u << 20) && !(v & (v - 1)),
                  "ATOMIO_TEST_BUFFERED_PAGE_SIZE=%s is not a power of two in [512, 1M]", e);
        return (uint32_t)v;
    }
    return bc_page_for(dir);
}

Test(buffered_real, probe_write_proves_support)
{
    const char *d = buffered_dir();
    bc_probe_proves(d, buffered_page(d));
}

Test(buffered_real, auto_buffered_engine_gets_buffered_atomic)
{
    const char *d = buffered_dir();
    bc_auto_picks_buffered(d, buffered_page(d), ATOMIO_IO_BUFFERED);
}

Test(buffered_real, auto_any_engine_gets_buffered_atomic)
{
    const char *d = buffered_dir();
    bc_auto_picks_buffered(d, buffered_page(d), ATOMIO_IO_ANY);
}

Test(buffered_real, pages_round_trip)
{
    const char *d = buffered_dir();
    bc_roundtrip(d, buffered_page(d));
}

Test(buffered_real, no_copy_files)
{
    const char *d = buffered_dir();
    bc_no_copy(d, buffered_page(d));
}

Test(buffered_real, folio_twice_the_page_refused)
{
    const char *d = buffered_dir();
    bc_wrong_page_refused(d, buffered_page(d));
}
