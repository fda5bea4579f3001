/* SPDX-License-Identifier: MIT */
/*
 * crash_explorer.h -- every crash a workload can meet on the simulated device (sim_device.h),
 * for the crash suites (test_crash.c: the doublewrite protocol; test_buffered_crash.c:
 * buffered RWF_ATOMIC).
 *
 * crash_explore() runs the workload once without a crash to count its device ops, then for
 * every crash point k (0 .. ops) runs it again with the device dying at op k, so the library's
 * error paths run too, and hands the suite every image that crash can leave: each subset of the
 * sector pieces that can make a difference (sim_keep_fn's "effective" ones), all of them while
 * there are at most exhaustive_bits such pieces, else `sampled` random subsets. The suite
 * reboots on each image and checks it.
 */
#ifndef ATOMIO_TEST_CRASH_EXPLORER_H
#define ATOMIO_TEST_CRASH_EXPLORER_H

#include "sim_device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sanitizer builds run the same checks 5-15x slower: the suites explore less by default. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CRASH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CRASH_SANITIZED 1
#endif
#endif
#ifndef CRASH_SANITIZED
#define CRASH_SANITIZED 0
#endif

struct crash_explorer {
    const char *name;
    int exhaustive_bits; /* every tear pattern up to 2^exhaustive_bits of them */
    uint64_t sampled;    /* beyond that, this many random patterns per crash point */
    long min_ops;        /* the workload must make more device ops than this */
    void *arg;           /* passed to the callbacks */
    /* A new device holding the workload's initial state, durable. */
    void (*fresh_device)(void *arg);
    /* The workload on the device as it is (calls after the crash fail: the device is dead). */
    void (*run)(void *arg);
    /* Optional: after the run without a crash, before any crash point. */
    void (*clean_run_done)(void *arg);
    /* One crash image at op k of log (the run that crashed there). false: stop exploring. */
    bool (*check)(void *arg, const struct sim_log *log, size_t k, struct sim_image *img);
};

struct crash_counts {
    long ops;                /* device ops of the run without a crash */
    uint64_t states;         /* images checked */
    uint64_t sampled_points; /* crash points with too many pieces to try every pattern */
};

/* crash_explore() -- adds what it explored to *c. */
void crash_explore(const struct crash_explorer *x, struct crash_counts *c);

/* xorshift64: the explorer's and the suites' random numbers (*x must not be 0). */
uint64_t crash_rnd_next(uint64_t *x);

/* A sim_keep_fn keeping each piece with probability keep_per_256 / 256. */
struct crash_rnd {
    uint64_t x;
    uint32_t keep_per_256;
};
bool crash_keep_random(void *arg, bool effective);

#endif
