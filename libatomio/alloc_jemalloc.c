/* SPDX-License-Identifier: MIT */
/*
 * alloc_jemalloc.c -- page memory from private jemalloc arenas, one per NUMA node per ctx
 * (ATOMIO_WITH_JEMALLOC=ON).
 *
 * Private means the host's malloc is never touched. Debian's libjemalloc.so exports plain
 * malloc/free, so linking it would hand the whole database process to jemalloc. Instead
 * cmake/AtomioJemalloc.cmake pulls the members we need out of libjemalloc_pic.a into one
 * relocatable object, renames jemalloc's public symbols to atomio_je_* and makes everything
 * else local: the process's malloc stays glibc's, and libatomio's own malloc/free calls do too.
 *
 * Each arena is created with extent hooks that map fresh memory with atomio__map_pages() (an
 * MPOL_PREFERRED mbind() to the arena's node before first touch), keep it when jemalloc is
 * done with it (dalloc opts out, no purge hooks, decay disabled: freed buffers stay faulted
 * and on their node), and unmap it only when the arena is destroyed at ctx close.
 * Allocations bypass the thread cache (MALLOCX_TCACHE_NONE) so a buffer freed on one thread
 * is at once reusable by another and nothing of a ctx outlives its arena.
 */
#include "alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define JEMALLOC_NO_RENAME
#define je_mallocx        atomio_je_mallocx
#define je_dallocx        atomio_je_dallocx
#define je_sallocx        atomio_je_sallocx
#define je_mallctl        atomio_je_mallctl
#define je_malloc_message atomio_je_malloc_message
#include <jemalloc/jemalloc.h>

const char atomio__alloc_backend_name[] = "jemalloc";

struct node_arena {
    extent_hooks_t hooks; /* first: jemalloc hands this pointer back to every hook */
    int node;             /* -1: no placement */
    unsigned ind;         /* jemalloc arena index */
    size_t sys_page;
};

struct je_state {
    pthread_mutex_t lock;               /* arena creation */
    unsigned nslots;                    /* nodes + 1: slot 0 is "no node" */
    struct node_arena *_Atomic *arenas; /* nslots entries, created on first use */
};

/* ---- extent hooks ----------------------------------------------------------------------- */

static void *
hook_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero,
           bool *commit, unsigned arena_ind)
{
    (void)arena_ind;
    struct node_arena *na = (struct node_arena *)h;
    /* A request for a given address is jemalloc trying to grow in place: decline. */
    if (new_addr)
        return NULL;
    void *p = atomio__map_pages(size, alignment < na->sys_page ? na->sys_page : alignment,
                                na->sys_page, na->node);
    if (p) {
        *zero = true;
        *commit = true;
    }
    return p;
}

static bool
hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind)
{
    (void)h, (void)addr, (void)size, (void)committed, (void)arena_ind;
    return true; /* opt out: jemalloc retains the extent; it stays faulted and placed */
}

static void
hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind)
{
    (void)h, (void)committed, (void)arena_ind;
    atomio__unmap_pages(addr, size);
}

static bool
hook_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b, bool committed,
           unsigned arena_ind)
{
    (void)h, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed, (void)arena_ind;
    return false; /* anonymous mappings split anywhere on a page boundary */
}

static bool
hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
           bool committed, unsigned arena_ind)
{
    (void)h, (void)addr_a, (void)size_a, (void)addr_b, (void)size_b, (void)committed;
    (void)arena_ind;
    return false; /* munmap() at destroy spans adjacent mappings fine */
}

/* ---- arenas ----------------------------------------------------------------------------- */

/* quiet() -- jemalloc's message sink: the library never prints. */
static void
quiet(void *arg, const char *msg)
{
    (void)arg, (void)msg;
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* make_quiet() -- route jemalloc's diagnostics (bad MALLOC_CONF options meant for a host
 * jemalloc, say) nowhere. Its load-time constructor may already have spoken; nothing after. */
static void
make_quiet(void)
{
    atomio_je_malloc_message = quiet;
}

static int
arena_set_decay(unsigned ind, const char *which)
{
    char name[64];
    ssize_t never = -1;
    snprintf(name, sizeof(name), "arena.%u.%s", ind, which);
    return atomio_je_mallctl(name, NULL, NULL, &never, sizeof(never));
}

/* arena_create() -- a jemalloc arena whose memory comes from our hooks, placed on node. */
static struct node_arena *
arena_create(size_t sys_page, int node)
{
    struct node_arena *na = calloc(1, sizeof(*na));
    if (!na)
        return NULL;
    na->hooks = (extent_hooks_t){
        .alloc = hook_alloc,
        .dalloc = hook_dalloc,
        .destroy = hook_destroy,
        .split = hook_split,
        .merge = hook_merge,
        /* commit/decommit/purge absent: memory is always committed and never purged */
    };
    na->node = node;
    na->sys_page = sys_page;
    extent_hooks_t *hp = &na->hooks;
    size_t sz = sizeof(na->ind);
    if (atomio_je_mallctl("arenas.create", &na->ind, &sz, &hp, sizeof(hp)) != 0) {
        free(na);
        return NULL;
    }
    /* Decay would only schedule purges we decline; switch it off. */
    (void)arena_set_decay(na->ind, "dirty_decay_ms");
    (void)arena_set_decay(na->ind, "muzzy_decay_ms");
    return na;
}

static void
arena_destroy(struct node_arena *na)
{
    char name[64];
    snprintf(name, sizeof(name), "arena.%u.destroy", na->ind);
    (void)atomio_je_mallctl(name, NULL, NULL, NULL, 0);
    free(na);
}

int
atomio__backend_init(struct atomio_alloc *a)
{
    struct je_state *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int maxnode = atomio__numa_max_node();
    s->nslots = (unsigned)(maxnode < 0 ? 0 : maxnode + 1) + 1;
    s->arenas = calloc(s->nslots, sizeof(*s->arenas));
    if (!s->arenas) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_once(&quiet_once, make_quiet);
    a->backend = s;
    return 0;
}

void
atomio__backend_fini(struct atomio_alloc *a)
{
    struct je_state *s = a->backend;
    if (!s)
        return;
    for (unsigned i = 0; i < s->nslots; i++) {
        struct node_arena *na = atomic_load_explicit(&s->arenas[i], memory_order_acquire);
        if (na)
            arena_destroy(na);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->arenas);
    free(s);
    a->backend = NULL;
}

/* arena_for() -- the arena of node (slot node + 1; slot 0 when there is no node). */
static struct node_arena *
arena_for(struct atomio_alloc *a, int node)
{
    struct je_state *s = a->backend;
    unsigned slot = node >= 0 && (unsigned)node + 1 < s->nslots ? (unsigned)node + 1 : 0;
    struct node_arena *na = atomic_load_explicit(&s->arenas[slot], memory_order_acquire);
    if (na)
        return na;
    pthread_mutex_lock(&s->lock);
    na = atomic_load_explicit(&s->arenas[slot], memory_order_relaxed);
    if (!na) {
        na = arena_create(a->sys_page, slot ? (int)slot - 1 : -1);
        if (na)
            atomic_store_explicit(&s->arenas[slot], na, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return na;
}

void *
atomio__backend_alloc(struct atomio_alloc *a, size_t size, size_t align, int node)
{
    struct node_arena *na = arena_for(a, node);
    if (!na)
        return NULL;
    int saved = errno;
    void *p = atomio_je_mallocx(size, MALLOCX_ARENA(na->ind) | MALLOCX_TCACHE_NONE |
                                          MALLOCX_ALIGN(align));
    errno = saved;
    return p;
}

void
atomio__backend_free(struct atomio_alloc *a, void *p, size_t size)
{
    (void)a, (void)size;
    int saved = errno;
    atomio_je_dallocx(p, MALLOCX_TCACHE_NONE);
    errno = saved;
}
