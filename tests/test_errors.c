/* SPDX-License-Identifier: MIT */
/* test_errors.c -- every library code has its own name and message; errno values pass through. */
#include "atomio_internal.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(errors, every_library_code_named_and_described)
{
    for (int c = ATOMIO_E_INVAL; c > ATOMIO__E_LAST; c--) {
        const char *name = atomio_err_name(c);
        const char *msg = atomio_strerror(c);
        cr_assert(strncmp(name, "ATOMIO_E_", 9) == 0, "code %d has name '%s'", c, name);
        cr_assert(strcmp(msg, "unknown error") != 0, "code %d has no message", c);
        for (int d = ATOMIO_E_INVAL; d > c; d--) {
            cr_assert_str_neq(atomio_err_name(d), name, "codes %d and %d share a name", c, d);
            cr_assert_str_neq(atomio_strerror(d), msg, "codes %d and %d share a message", c, d);
        }
    }
}

Test(errors, codes_are_outside_errno_range)
{
    cr_assert_leq(ATOMIO_E_INVAL, -5000);
    cr_assert_lt(ATOMIO__E_LAST, ATOMIO_E_INVAL);
}

Test(errors, kernel_errno_passes_through)
{
    cr_assert_str_eq(atomio_err_name(-EIO), "EIO");
    cr_assert_str_eq(atomio_err_name(-ENOSPC), "ENOSPC");
    cr_assert_str_eq(atomio_err_name(-EOPNOTSUPP), "EOPNOTSUPP");
    cr_assert_str_eq(atomio_strerror(-ENOSPC), "No space left on device");
    cr_assert_str_eq(atomio_err_name(0), "OK");
}

Test(errors, unknown_values)
{
    cr_assert_str_eq(atomio_err_name(-4999), "UNKNOWN");
    cr_assert_str_eq(atomio_strerror(-4999), "unknown error");
    cr_assert_str_eq(atomio_err_name(ATOMIO__E_LAST), "UNKNOWN");
    cr_assert_str_eq(atomio_err_name(12345), "UNKNOWN");
}
