/* SPDX-License-Identifier: MIT */
/*
 * alloc.h -- the seams under buf.c: NUMA placement (numa.c with libnuma, numa_stub.c without)
 * and the page-memory backend (alloc_libc.c: mmap; alloc_jemalloc.c: a private jemalloc arena
 * per NUMA node). CMake builds exactly one file of each pair. buf.c owns the policy (size and
 * alignment rules, pre-faulting, mlock); the backends only hand out and take back whole pages
 * that no other allocation shares, so mbind() and mlock() never touch a neighbour's memory.
 */
#ifndef ATOMIO_ALLOC_H
#define ATOMIO_ALLOC_H

#include "atomio_internal.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- NUMA (numa.c / numa_stub.c) ------------------------------------------------------- */

/* true when the kernel and libnuma can place memory (numa_available() >= 0). */
bool atomio__numa_ok(void);
/* Highest node number, or -1 without NUMA. */
int atomio__numa_max_node(void);
/* Node of the CPU the calling thread runs on now, or -1 without NUMA. */
int atomio__numa_current_node(void);
/* Prefer node for every page of [p, p + len) that is not faulted yet (MPOL_PREFERRED: the
 * kernel falls back to another node rather than failing when the node is full). A no-op
 * returning 0 when node < 0 or without NUMA; else 0 or -errno. */
int atomio__numa_bind(void *p, size_t len, int node);
/* Node holding the (faulted) page at p, or -errno; for tests and diagnostics. */
int atomio__numa_node_of(const void *p);

/* ---- page-memory backend (alloc_libc.c / alloc_jemalloc.c) ---------------------------- */

struct atomio_alloc {
    int node;        /* fixed node from ctx opts, or -1 = calling thread's node */
    bool lock_pages; /* ATOMIO_CTX_LOCK_PAGES */
    size_t sys_page; /* sysconf(_SC_PAGESIZE) */
    void *backend;   /* backend state */
};

/* Name of the backend compiled in ("mmap" or "jemalloc"). */
extern const char atomio__alloc_backend_name[];

int atomio__backend_init(struct atomio_alloc *a);
/* Every buffer handed out must have been freed before fini. */
void atomio__backend_fini(struct atomio_alloc *a);
/* size is a multiple of a->sys_page, align a power of two >= a->sys_page. The memory is
 * placed on node (when >= 0) for pages not faulted yet; buf.c pre-faults it afterwards. */
void *atomio__backend_alloc(struct atomio_alloc *a, size_t size, size_t align, int node);
/* p and size as returned by / given to atomio__backend_alloc. */
void atomio__backend_free(struct atomio_alloc *a, void *p, size_t size);

/* Plain page mappings shared by both backends (buf.c): exactly [p, p + size), aligned,
 * placed on node. NULL on failure. */
void *atomio__map_pages(size_t size, size_t align, size_t sys_page, int node);
void atomio__unmap_pages(void *p, size_t size);

#endif /* ATOMIO_ALLOC_H */
