/* SPDX-License-Identifier: MIT */
/*
 * numa_stub.c -- built instead of numa.c when libnuma is absent: no node is known and no
 * placement is made, which is what a single-node machine gets from numa.c anyway.
 */
#include "alloc.h"

#include <errno.h>

bool
atomio__numa_ok(void)
{
    return false;
}

int
atomio__numa_max_node(void)
{
    return -1;
}

int
atomio__numa_current_node(void)
{
    return -1;
}

int
atomio__numa_bind(void *p, size_t len, int node)
{
    (void)p;
    (void)len;
    (void)node;
    return 0;
}

int
atomio__numa_node_of(const void *p)
{
    (void)p;
    return -ENOSYS;
}
