/* SPDX-License-Identifier: MIT */
/*
 * test_malloc_private.c -- linking libatomio (shared or static, built with or without
 * ATOMIO_WITH_JEMALLOC) leaves the process on glibc's malloc. Built against the installed-style
 * targets, not atomio_testing, so the link is the one an engine gets.
 */
#include <atomio.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *
owner_of(void *sym)
{
    Dl_info info;
    cr_assert(dladdr(sym, &info) != 0 && info.dli_fname, "dladdr(%p) failed", sym);
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/* A sanitizer build's runtime owns malloc itself; that is the host's choice, not ours. */
static bool
sanitizer_owns(const char *lib)
{
    return strncmp(lib, "libasan.so", 10) == 0 || strncmp(lib, "libtsan.so", 10) == 0 ||
           strncmp(lib, "libubsan.so", 11) == 0;
}

/* Every allocator entry point the process resolves belongs to glibc (or to the sanitizer
 * runtime the test binary itself was built with). */
static void
assert_glibc_allocator(void)
{
    static const char *const names[] = {"malloc", "free", "calloc", "realloc", "posix_memalign",
                                        "aligned_alloc", "malloc_usable_size"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        void *s = dlsym(RTLD_DEFAULT, names[i]);
        cr_assert_not_null(s, "%s not found", names[i]);
        const char *lib = owner_of(s);
        cr_assert(strncmp(lib, "libc.so", 7) == 0 || sanitizer_owns(lib),
                  "%s resolves to %s, not glibc", names[i], lib);
    }
    /* jemalloc's own API is not visible to the process either. */
    cr_assert_null(dlsym(RTLD_DEFAULT, "mallocx"));
    cr_assert_null(dlsym(RTLD_DEFAULT, "atomio_je_mallocx"));
}

Test(malloc_private, process_allocator_is_glibc)
{
    assert_glibc_allocator();
    /* Once the library's allocator has run (jemalloc initialised, arenas made), still glibc. */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    atomio_ctx *ctx = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), 0);
    void *pages = atomio_page_alloc(ctx, 16384, 4);
    cr_assert_not_null(pages);
    assert_glibc_allocator();

    if (sanitizer_owns(owner_of(dlsym(RTLD_DEFAULT, "malloc")))) {
        atomio_page_free(ctx, pages, 16384, 4);
        cr_assert_eq(atomio_ctx_close(ctx), 0);
        return; /* the sanitizer's malloc keeps no glibc heap accounting to check */
    }
    /* Behaviour, not just symbols: malloc() memory shows in glibc's own heap accounting. */
    struct mallinfo2 before = mallinfo2();
    /* Through volatile pointers: clang may otherwise elide a malloc/free pair it can see. */
    void *(*volatile do_malloc)(size_t) = malloc;
    void (*volatile do_free)(void *) = free;
    void *p = do_malloc(100000);
    cr_assert_not_null(p);
    memset(p, 1, 100000);
    struct mallinfo2 after = mallinfo2();
    size_t grew = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    cr_assert_geq(grew, 100000, "glibc accounted %zu bytes for a 100000-byte malloc", grew);
    do_free(p);
    atomio_page_free(ctx, pages, 16384, 4);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
