/* SPDX-License-Identifier: MIT */
/*
 * hist.c -- latency histograms: a log-linear one (64 sub-buckets per power of two, ~1.6%
 * precision, fixed size so threads keep their own and merge at the end without locks), and the
 * quantile of the library's coarse log2 histogram (atomio_stats.lat_hist).
 */
#include "hist.h"

#include <string.h>

void
hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

/* bucket() -- row/column of v: row 0 holds 0..63 exactly, row r >= 1 values with msb r + 5. */
static void
bucket(uint64_t v, unsigned *row, unsigned *col)
{
    if (v < HIST_SUB) {
        *row = 0;
        *col = (unsigned)v;
        return;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned r = msb - 5;
    if (r >= HIST_POW) {
        *row = HIST_POW - 1;
        *col = HIST_SUB - 1;
        return;
    }
    *row = r;
    *col = (unsigned)((v >> (msb - 6)) & (HIST_SUB - 1));
}

void
hist_add(struct hist *h, uint64_t v)
{
    unsigned r, c;
    bucket(v, &r, &c);
    h->b[r][c]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned r = 0; r < HIST_POW; r++)
        for (unsigned c = 0; c < HIST_SUB; c++)
            dst->b[r][c] += src->b[r][c];
    dst->count += src->count;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
    if (!h || h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    uint64_t want = (uint64_t)(q * (double)h->count) + 1;
    if (want > h->count)
        want = h->count;
    uint64_t seen = 0;
    for (unsigned r = 0; r < HIST_POW; r++) {
        for (unsigned c = 0; c < HIST_SUB; c++) {
            seen += h->b[r][c];
            if (seen < want)
                continue;
            if (r == 0)
                return c;
            unsigned shift = r - 1; /* msb - 6 */
            uint64_t lo = ((uint64_t)HIST_SUB + c) << shift;
            uint64_t mid = lo + (((uint64_t)1 << shift) >> 1);
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}

double
log2hist_quantile(const uint64_t *buckets, unsigned n, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += buckets[i];
    if (total == 0)
        return -1;
    double want = q * (double)total;
    uint64_t seen = 0;
    for (unsigned i = 0; i < n; i++) {
        if (buckets[i] == 0)
            continue;
        if ((double)(seen + buckets[i]) >= want) {
            double lo = i == 0 ? 0 : (double)(1ull << i);
            double hi = (double)(1ull << (i + 1));
            double frac = (want - (double)seen) / (double)buckets[i];
            if (frac < 0)
                frac = 0;
            return lo + (hi - lo) * frac;
        }
        seen += buckets[i];
    }
    return (double)(1ull << n);
}
