/* SPDX-License-Identifier: MIT */
/*
 * hist.h -- latency histograms (hist.c): a log-linear one the runners fill, and quantiles of
 * the library's log2 histogram.
 */
#ifndef ATOMIO_BENCH_HIST_H
#define ATOMIO_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64 /* sub-buckets per power of two: ~1.6% relative precision */
#define HIST_POW 48
struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t b[HIST_POW][HIST_SUB];
};
void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at quantile q in [0, 1] (bucket midpoint, at most the max seen), 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/*
 * Quantile of a log2-bucket histogram (bucket i holds [2^i, 2^(i+1)) units, bucket 0 also
 * < 1): linear interpolation inside the bucket. Returns -1 when empty.
 */
double log2hist_quantile(const uint64_t *buckets, unsigned n, double q);

#endif
