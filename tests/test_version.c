/* SPDX-License-Identifier: MIT */
/* test_version.c -- the header's version macros and the linked library agree. */
#include <atomio.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

Test(version, number_matches_macros)
{
    cr_assert_eq(atomio_version_number(), ATOMIO_VERSION_NUMBER);
    cr_assert_eq(ATOMIO_VERSION_NUMBER,
                 ATOMIO_VERSION_MAJOR * 10000 + ATOMIO_VERSION_MINOR * 100 + ATOMIO_VERSION_PATCH);
}

Test(version, string_matches_macros)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", ATOMIO_VERSION_MAJOR, ATOMIO_VERSION_MINOR,
             ATOMIO_VERSION_PATCH);
    cr_assert_str_eq(atomio_version_string(), want);
    cr_assert_str_eq(ATOMIO_VERSION_STRING, want);
}
