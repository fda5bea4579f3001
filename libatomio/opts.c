/* SPDX-License-Identifier: MIT */
/*
 * opts.c -- size-versioned struct copy-in/copy-out (the openat2 rule), option
 * initialisers, enum names and the small shared helpers (reasons, clocks, counters).
 */
#include "atomio_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int
atomio__copy_in(void *dst, size_t dst_size, const void *src)
{
    memset(dst, 0, dst_size);
    if (!src)
        return ATOMIO_E_INVAL;
    uint32_t size;
    memcpy(&size, src, sizeof(size));
    if (size < sizeof(uint32_t) * 2)
        return ATOMIO_E_ABI;
    if (size > dst_size) {
        /* A newer caller: what we do not know must be zero, or we would ignore a request. */
        const unsigned char *tail = (const unsigned char *)src + dst_size;
        for (size_t i = 0; i < size - dst_size; i++)
            if (tail[i])
                return ATOMIO_E_ABI;
    }
    memcpy(dst, src, size < dst_size ? size : dst_size);
    ((uint32_t *)dst)[0] = (uint32_t)dst_size;
    return 0;
}

int
atomio__copy_out(void *dst, const void *src, size_t src_size)
{
    if (!dst)
        return ATOMIO_E_INVAL;
    uint32_t size;
    memcpy(&size, dst, sizeof(size));
    if (size < sizeof(uint32_t) * 2)
        return ATOMIO_E_ABI;
    if (size > src_size)
        memset((char *)dst + src_size, 0, size - src_size);
    memcpy((char *)dst + sizeof(uint32_t), (const char *)src + sizeof(uint32_t),
           (size < src_size ? size : src_size) - sizeof(uint32_t));
    return 0;
}

void
atomio_ctx_opts_init(atomio_ctx_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->numa_node = -1;
}

void
atomio_file_opts_init(atomio_file_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
}

void
atomio__reason(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, ATOMIO_REASON_LEN, fmt, ap);
    va_end(ap);
}

uint64_t
atomio__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
atomio__count_lat(struct atomio_counters *c, uint64_t ns)
{
    atomio__count_lat_n(c, ns, 1);
}

void
atomio__count_lat_n(struct atomio_counters *c, uint64_t ns, uint64_t n)
{
    uint64_t us = ns / 1000;
    unsigned b = 0;
    while (us > 1 && b < ATOMIO_LAT_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    ATOMIO_COUNT(c, lat_hist[b], n);
}

void
atomio__counters_read(const struct atomio_counters *c, atomio_stats *st)
{
#define RD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
    for (int i = 0; i < ATOMIO__PATH_COUNT; i++)
        st->pages[i] = RD(pages[i]);
    st->bytes_data = RD(bytes_data);
    st->bytes_doublewrite = RD(bytes_doublewrite);
    st->syncs = RD(syncs);
    st->batches = RD(batches);
    st->downgrades = RD(downgrades);
    st->short_writes = RD(short_writes);
    st->failed_syncs = RD(failed_syncs);
    st->recovered_pages = RD(recovered_pages);
    st->uring_fallbacks = RD(uring_fallbacks);
    for (int i = 0; i < ATOMIO_LAT_BUCKETS; i++)
        st->lat_hist[i] = RD(lat_hist[i]);
    st->bounce_copies = RD(bounce_copies);
    st->forced_syncs = RD(forced_syncs);
    st->group_commits = RD(group_commits);
    st->group_records = RD(group_records);
    st->pages_staged = RD(pages_staged);
    st->staged_reads = RD(staged_reads);
#undef RD
}

static const char *const path_names[] = {"AUTO", "DIRECT_ATOMIC", "BUFFERED_ATOMIC", "DOUBLEWRITE",
                                         "UNSAFE"};
static const char *const style_names[] = {"ANY", "BUFFERED", "DIRECT"};
static const char *const policy_names[] = {"DEFAULT", "PREFER_FAST", "PREFER_ATOMIC", "CALIBRATE"};
static const char *const submitter_names[] = {"AUTO", "URING", "SYNC"};

#define NAME_OF(tab, v) ((v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "?")

const char *
atomio_path_name(uint32_t path)
{
    return NAME_OF(path_names, path);
}

const char *
atomio_io_style_name(uint32_t io_style)
{
    return NAME_OF(style_names, io_style);
}

const char *
atomio_policy_name(uint32_t policy)
{
    return NAME_OF(policy_names, policy);
}

const char *
atomio_submitter_name(uint32_t submitter)
{
    return NAME_OF(submitter_names, submitter);
}
