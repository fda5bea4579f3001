/* SPDX-License-Identifier: MIT */
/* version.c -- the linked library's version (the header's macros say what was compiled against). */
#include "atomio_internal.h"

unsigned
atomio_version_number(void)
{
    return ATOMIO_VERSION_NUMBER;
}

const char *
atomio_version_string(void)
{
    return ATOMIO_VERSION_STRING;
}
