/* SPDX-License-Identifier: MIT */
/*
 * numa.c -- NUMA placement with libnuma: which node the calling thread runs on, and a
 * preferred-node policy on fresh page mappings before they are first touched. libnuma is asked
 * once (the cpu -> node table is built under pthread_once), so the hot path is sched_getcpu()
 * (vDSO) plus a table read. A machine without NUMA (numa_available() < 0) gets node -1 and
 * no policy calls, which is exactly the single-node behaviour.
 */
#include "alloc.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define MASK_BITS 1024 /* nodes we can name in one mbind() mask */

static pthread_once_t numa_once = PTHREAD_ONCE_INIT;
static bool numa_usable;
static int numa_max;
static int ncpus;
static short *cpu_node; /* ncpus entries; -1 = unknown */

/* numa_setup() -- ask libnuma once; every later query is lock-free reads of what it found. */
static void
numa_setup(void)
{
    if (numa_available() < 0)
        return;
    numa_max = numa_max_node();
    if (numa_max < 0 || numa_max >= MASK_BITS)
        return;
    int n = numa_num_configured_cpus();
    if (n <= 0)
        return;
    cpu_node = malloc((size_t)n * sizeof(*cpu_node));
    if (!cpu_node)
        return;
    for (int c = 0; c < n; c++) {
        int node = numa_node_of_cpu(c);
        cpu_node[c] = (short)(node >= 0 && node <= numa_max ? node : -1);
    }
    ncpus = n;
    numa_usable = true;
}

bool
atomio__numa_ok(void)
{
    pthread_once(&numa_once, numa_setup);
    return numa_usable;
}

int
atomio__numa_max_node(void)
{
    return atomio__numa_ok() ? numa_max : -1;
}

int
atomio__numa_current_node(void)
{
    if (!atomio__numa_ok())
        return -1;
    int cpu = sched_getcpu();
    return cpu >= 0 && cpu < ncpus ? cpu_node[cpu] : -1;
}

int
atomio__numa_bind(void *p, size_t len, int node)
{
    if (node < 0 || !atomio__numa_ok())
        return 0;
    if (node > numa_max)
        return -EINVAL;
    unsigned long mask[MASK_BITS / (8 * sizeof(unsigned long))] = {0};
    mask[(unsigned)node / (8 * sizeof(unsigned long))] |=
        1ul << ((unsigned)node % (8 * sizeof(unsigned long)));
    int saved = errno;
    /* maxnode counts one past the last bit the kernel should read (the mbind(2) convention). */
    long r = mbind(p, len, MPOL_PREFERRED, mask, MASK_BITS + 1, 0);
    int err = r < 0 ? -errno : 0;
    errno = saved;
    return err;
}

int
atomio__numa_node_of(const void *p)
{
    if (!atomio__numa_ok())
        return -ENOSYS;
    int node = -1;
    int saved = errno;
    long r = get_mempolicy(&node, NULL, 0, (void *)(uintptr_t)p, MPOL_F_NODE | MPOL_F_ADDR);
    int err = r < 0 ? -errno : node;
    errno = saved;
    return err;
}
