/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c -- page buffers: alignment and geometry checks, NUMA placement (the kernel's
 * own answer via get_mempolicy), pre-faulting (no minor fault on first write, measured with
 * getrusage), ATOMIO_CTX_LOCK_PAGES (VmLck), reuse after free, concurrent use, and in the
 * jemalloc build that the memory really comes from the private arena.
 */
#include "alloc.h"
#include "helpers.h"
#include "t_core.h"

#include <atomio.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define T_MPOL_PREFERRED 1
#define T_MPOL_F_NODE (1 << 0)
#define T_MPOL_F_ADDR (1 << 1)

static atomio_ctx *
ctx_with(uint32_t flags, int32_t node)
{
    atomio_ctx_opts o = t_ctx_opts(NULL);
    o.flags |= flags;
    o.numa_node = node;
    return t_ctx_open(&o);
}

static long
minflt_now(void)
{
    struct rusage ru;
    cr_assert_eq(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_minflt;
}

static long
vm_locked_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    fclose(f);
    cr_assert_geq(kb, 0, "no VmLck line in /proc/self/status");
    return kb;
}

Test(alloc, aligned_to_page_size_and_at_least_4096)
{
    atomio_ctx *ctx = ctx_with(0, -1);
    for (uint32_t ps = 512; ps <= (1u << 20); ps <<= 1) {
        for (size_t n = 1; n <= 3; n += 2) {
            for (int with_ctx = 0; with_ctx < 2; with_ctx++) {
                atomio_ctx *c = with_ctx ? ctx : NULL;
                unsigned char *p = atomio_page_alloc(c, ps, n);
                cr_assert_not_null(p, "page_size %u x %zu (ctx %d)", ps, n, with_ctx);
                size_t align = ps > 4096 ? ps : 4096;
                cr_assert_eq((uintptr_t)p % align, 0, "%p not aligned to %zu", (void *)p, align);
                memset(p, 0x5a, (size_t)ps * n); /* every byte is ours and writable */
                cr_assert_eq(p[(size_t)ps * n - 1], 0x5a);
                atomio_page_free(c, p, ps, n);
            }
        }
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(alloc, buffers_do_not_overlap)
{
    atomio_ctx *ctx = ctx_with(0, -1);
    enum { N = 32 };
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = atomio_page_alloc(ctx, 16384, 1);
        cr_assert_not_null(b[i]);
        memset(b[i], i, 16384);
    }
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < 16384; k += 512)
            cr_assert_eq(b[i][k], (unsigned char)i, "buffer %d byte %zu overwritten", i, k);
        atomio_page_free(ctx, b[i], 16384, 1);
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(alloc, invalid_geometry_gives_null)
{
    atomio_ctx *ctx = ctx_with(0, -1);
    cr_assert_null(atomio_page_alloc(ctx, 0, 1));
    cr_assert_null(atomio_page_alloc(ctx, 256, 1));
    cr_assert_null(atomio_page_alloc(ctx, 3000, 1));
    cr_assert_null(atomio_page_alloc(ctx, 2u << 20, 1));
    cr_assert_null(atomio_page_alloc(ctx, 4096, 0));
    cr_assert_null(atomio_page_alloc(ctx, 4096, SIZE_MAX / 2));
    atomio_page_free(ctx, NULL, 4096, 1); /* no-op */
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* first_write_faults() -- minor faults taken by this thread writing every page of p. Not
 * instrumented: a sanitizer's own shadow-memory faults would otherwise be counted too. */
__attribute__((no_sanitize("address", "thread"))) static long
first_write_faults(void *p, size_t len)
{
    long before = minflt_now();
    volatile unsigned char *c = p;
    for (size_t off = 0; off < len; off += 512)
        c[off] = 0xc3;
    return minflt_now() - before;
}

Test(alloc, prefaulted_no_minor_fault_on_first_write)
{
    /* The measurement itself works: a fresh mapping faults when first written. */
    size_t len = 64 * 4096;
    void *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(raw, MAP_FAILED);
    long control = first_write_faults(raw, len);
    munmap(raw, len);
    cr_assert_geq(control, 1, "control mapping took no fault: getrusage cannot see faults");

    atomio_ctx *ctx = ctx_with(0, -1);
    /* small (touch loop) and large (MADV_POPULATE_WRITE) buffers, with and without a ctx */
    const struct {
        uint32_t ps;
        size_t n;
    } shapes[] = {{4096, 1}, {16384, 16}, {65536, 4}, {1u << 20, 8}};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        for (int with_ctx = 0; with_ctx < 2; with_ctx++) {
            atomio_ctx *c = with_ctx ? ctx : NULL;
            size_t bytes = shapes[i].ps * shapes[i].n;
            void *p = atomio_page_alloc(c, shapes[i].ps, shapes[i].n);
            cr_assert_not_null(p);
            long f = first_write_faults(p, bytes);
            cr_assert_eq(f, 0, "%zu bytes (ctx %d): %ld minor faults on first write", bytes,
                         with_ctx, f);
            atomio_page_free(c, p, shapes[i].ps, shapes[i].n);
            /* A buffer reused from the allocator's cache or arena is pre-faulted as well. */
            p = atomio_page_alloc(c, shapes[i].ps, shapes[i].n);
            cr_assert_not_null(p);
            f = first_write_faults(p, bytes);
            cr_assert_eq(f, 0, "reused %zu bytes (ctx %d): %ld minor faults", bytes, with_ctx, f);
            atomio_page_free(c, p, shapes[i].ps, shapes[i].n);
        }
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(alloc, lock_pages_mlocks_and_unlocks)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
    size_t bytes = 16 * 16384;
    atomio_ctx *ctx = ctx_with(ATOMIO_CTX_LOCK_PAGES, -1);
    long before = vm_locked_kb();
    void *p = atomio_page_alloc(ctx, 16384, 16);
    if (!p) {
        /* Allowed only when the lock itself is not permitted. */
        cr_assert(!t_is_root() && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < bytes,
                  "LOCK_PAGES allocation failed with RLIMIT_MEMLOCK %llu as uid %d",
                  (unsigned long long)rl.rlim_cur, (int)geteuid());
        cr_assert_eq(atomio_ctx_close(ctx), 0);
        cr_skip_test("skipped: RLIMIT_MEMLOCK %llu < %zu and not root: allocation correctly "
                     "refused",
                     (unsigned long long)rl.rlim_cur, bytes);
    }
    long during = vm_locked_kb();
    cr_assert_geq(during - before, (long)(bytes / 1024), "VmLck grew %ld kB, want >= %zu kB",
                  during - before, bytes / 1024);
    atomio_page_free(ctx, p, 16384, 16);
    cr_assert_eq(vm_locked_kb(), before, "pages still locked after free");

    /* Without the flag nothing is locked. */
    atomio_ctx *plain = ctx_with(0, -1);
    p = atomio_page_alloc(plain, 16384, 16);
    cr_assert_not_null(p);
    cr_assert_eq(vm_locked_kb(), before);
    atomio_page_free(plain, p, 16384, 16);
    cr_assert_eq(atomio_ctx_close(plain), 0);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

/* Pin to CPU 0 so "the calling thread's node" is known in advance. */
static int
pin_cpu0_node(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0, "pin to cpu 0: %s",
                 strerror(errno));
    cr_assert_eq(sched_getcpu(), 0);
    return atomio__numa_current_node();
}

static void
assert_on_node(void *p, size_t bytes, int node)
{
    for (size_t off = 0; off < bytes; off += 4096) {
        int got = -1;
        long r = syscall(SYS_get_mempolicy, &got, NULL, 0, (char *)p + off,
                         T_MPOL_F_NODE | T_MPOL_F_ADDR);
        cr_assert_eq(r, 0, "get_mempolicy: %s", strerror(errno));
        cr_assert_eq(got, node, "page at +%zu on node %d, want %d", off, got, node);
    }
    /* And it was placed by policy, not by luck: the range carries our preferred node. */
    unsigned long mask[16] = {0};
    int mode = -1;
    long r = syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8, p, T_MPOL_F_ADDR);
    cr_assert_eq(r, 0, "get_mempolicy(MPOL_F_ADDR): %s", strerror(errno));
    cr_assert_eq(mode, T_MPOL_PREFERRED, "policy mode %d, want MPOL_PREFERRED", mode);
    cr_assert(mask[node / 64] & (1ul << (node % 64)), "preferred mask lacks node %d", node);
}

Test(alloc, placed_on_calling_threads_node)
{
    if (!atomio__numa_ok())
        cr_skip_test("skipped: no NUMA support (libnuma absent or numa_available() < 0)");
    int node = pin_cpu0_node();
    cr_assert_geq(node, 0);
    atomio_ctx *ctx = ctx_with(0, -1);
    void *p = atomio_page_alloc(ctx, 16384, 8);
    cr_assert_not_null(p);
    assert_on_node(p, 16384 * 8, node);
    atomio_page_free(ctx, p, 16384, 8);
    p = atomio_page_alloc(NULL, 16384, 8);
    cr_assert_not_null(p);
    assert_on_node(p, 16384 * 8, node);
    atomio_page_free(NULL, p, 16384, 8);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

Test(alloc, placed_on_ctx_numa_node)
{
    if (!atomio__numa_ok())
        cr_skip_test("skipped: no NUMA support (libnuma absent or numa_available() < 0)");
    int max = atomio__numa_max_node();
    for (int node = 0; node <= max; node++) {
        atomio_ctx *ctx = ctx_with(0, node);
        void *p = atomio_page_alloc(ctx, 4096, 4);
        cr_assert_not_null(p);
        assert_on_node(p, 4096 * 4, node);
        atomio_page_free(ctx, p, 4096, 4);
        cr_assert_eq(atomio_ctx_close(ctx), 0);
    }
    /* A node the machine does not have is refused at open. */
    atomio_ctx_opts o = ATOMIO_CTX_OPTS_INIT;
    o.flags = ATOMIO_CTX_NO_DOUBLEWRITE;
    o.numa_node = max + 1;
    atomio_ctx *ctx = NULL;
    cr_assert_eq(atomio_ctx_open(&o, &ctx), ATOMIO_E_INVAL);
    cr_assert_null(ctx);
}

struct churn_arg {
    atomio_ctx *ctx;
    int id;
    int errors;
};

static void *
churn(void *argp)
{
    struct churn_arg *a = argp;
    for (int i = 0; i < 2000; i++) {
        size_t n = 1 + (size_t)(i % 4);
        unsigned char *p = atomio_page_alloc(a->ctx, 8192, n);
        if (!p) {
            a->errors++;
            continue;
        }
        memset(p, a->id, 8192 * n);
        for (size_t k = 0; k < 8192 * n; k += 1024)
            if (p[k] != (unsigned char)a->id)
                a->errors++;
        atomio_page_free(a->ctx, p, 8192, n);
    }
    return NULL;
}

Test(alloc, concurrent_alloc_free_from_many_threads)
{
    atomio_ctx *ctx = ctx_with(0, -1);
    enum { T = 4 };
    pthread_t th[T];
    struct churn_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (struct churn_arg){ctx, i + 1, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, churn, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].errors, 0, "thread %d saw %d errors", i, args[i].errors);
    }
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}

#ifdef HAVE_JEMALLOC
size_t atomio_je_sallocx(const void *ptr, int flags);

Test(alloc, jemalloc_build_uses_private_arena)
{
    cr_assert_str_eq(atomio__alloc_backend_name, "jemalloc");
    atomio_ctx *ctx = ctx_with(0, -1);
    void *p = atomio_page_alloc(ctx, 16384, 3);
    cr_assert_not_null(p);
    /* jemalloc knows the allocation: it is one of its own, of at least the requested size. */
    cr_assert_geq(atomio_je_sallocx(p, 0), (size_t)16384 * 3);
    atomio_page_free(ctx, p, 16384, 3);
    cr_assert_eq(atomio_ctx_close(ctx), 0);
}
#else
Test(alloc, default_build_uses_mmap_backend)
{
    cr_assert_str_eq(atomio__alloc_backend_name, "mmap");
}
#endif
