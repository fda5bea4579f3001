/* SPDX-License-Identifier: MIT */
/*
 * error.c -- messages and names for every result: the library's ATOMIO_E_* codes and the
 * kernel's -errno values. Static strings only; nothing here allocates or touches errno.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct code_text {
    int code;
    const char *name;
    const char *msg;
};

static const struct code_text lib_codes[] = {
    {ATOMIO_OK, "OK", "success"},
    {ATOMIO_E_INVAL, "ATOMIO_E_INVAL", "invalid argument (NULL pointer, unknown flag or value)"},
    {ATOMIO_E_ABI, "ATOMIO_E_ABI",
     "options struct size not understood, or unknown trailing fields are not zero"},
    {ATOMIO_E_PAGE_SIZE, "ATOMIO_E_PAGE_SIZE",
     "page size is not a power of two in [512, 1 MiB] or does not fit the file"},
    {ATOMIO_E_UNALIGNED, "ATOMIO_E_UNALIGNED",
     "page buffer is not aligned as the file's write path requires"},
    {ATOMIO_E_RANGE, "ATOMIO_E_RANGE", "page number is beyond the largest addressable offset"},
    {ATOMIO_E_PATH_UNSUPPORTED, "ATOMIO_E_PATH_UNSUPPORTED",
     "the requested write path is not possible for this file"},
    {ATOMIO_E_FOLIO_ORDER, "ATOMIO_E_FOLIO_ORDER",
     "buffered atomic writes refused: page size and page-cache folio order disagree"},
    {ATOMIO_E_SHORT_WRITE, "ATOMIO_E_SHORT_WRITE",
     "the kernel wrote only part of a page; the file is failed until reopened and recovered"},
    {ATOMIO_E_FAILED, "ATOMIO_E_FAILED",
     "file is failed after a short write or failed sync; close it and run recovery"},
    {ATOMIO_E_CLOSED, "ATOMIO_E_CLOSED", "file handle is closed"},
    {ATOMIO_E_READ_ONLY, "ATOMIO_E_READ_ONLY", "file was opened read-only"},
    {ATOMIO_E_NO_DOUBLEWRITE, "ATOMIO_E_NO_DOUBLEWRITE",
     "this needs a doublewrite store and the context has none"},
    {ATOMIO_E_STORE, "ATOMIO_E_STORE",
     "the doublewrite store's bytes are bad (damaged header, or not a store)"},
    {ATOMIO_E_STORE_FULL, "ATOMIO_E_STORE_FULL", "batch does not fit a doublewrite segment"},
    {ATOMIO_E_UNRECOVERABLE, "ATOMIO_E_UNRECOVERABLE",
     "recovery found pages that neither the data file nor the doublewrite copy can restore"},
    {ATOMIO_E_NEEDS_DOUBLEWRITE, "ATOMIO_E_NEEDS_DOUBLEWRITE",
     "this page must be written through the doublewrite interface"},
    {ATOMIO_E_SEQUENCE, "ATOMIO_E_SEQUENCE", "call made out of the required order"},
    {ATOMIO_E_NO_COPY, "ATOMIO_E_NO_COPY",
     "buffer is not from atomio_page_alloc() and the file forbids bounce copies"},
    {ATOMIO_E_GEOMETRY, "ATOMIO_E_GEOMETRY",
     "the kernel rejected the atomic write geometry even after re-probing the file"},
    {ATOMIO_E_BUSY, "ATOMIO_E_BUSY", "resource busy"},
    {ATOMIO_E_STORE_FAILED, "ATOMIO_E_STORE_FAILED",
     "a doublewrite store write or sync failed; close and reopen the context"},
    {ATOMIO_E_STORE_LOCKED, "ATOMIO_E_STORE_LOCKED",
     "the doublewrite store is in use by another engine instance"},
    {ATOMIO_E_UNAPPLIED, "ATOMIO_E_UNAPPLIED",
     "recovery kept copies it could not apply (unknown file id or missing data file); "
     "remap or discard them"},
};

/* The last failure's explanation on this thread (atomio_last_reason()). */
static _Thread_local char last_reason[512];

void
atomio__reason_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_reason, sizeof(last_reason), fmt, ap);
    va_end(ap);
}

void
atomio__reason_clear(void)
{
    last_reason[0] = '\0';
}

const char *
atomio_last_reason(void)
{
    return last_reason;
}

static const struct code_text *
lookup(int err)
{
    for (size_t i = 0; i < sizeof(lib_codes) / sizeof(lib_codes[0]); i++)
        if (lib_codes[i].code == err)
            return &lib_codes[i];
    return NULL;
}

const char *
atomio_strerror(int err)
{
    const struct code_text *t = lookup(err);
    if (t)
        return t->msg;
    if (err < 0 && err > -4096) {
        /* strerrordesc_np (glibc 2.32) is thread-safe and static, unlike strerror. */
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *
atomio_err_name(int err)
{
    const struct code_text *t = lookup(err);
    if (t)
        return t->name;
    if (err < 0 && err > -4096) {
        const char *s = strerrorname_np(-err); /* glibc 2.32: "EIO", static */
        if (s)
            return s;
    }
    return "UNKNOWN";
}
