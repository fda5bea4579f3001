/* SPDX-License-Identifier: MIT */
/*
 * crash_explorer.c -- every crash point, every tear pattern that matters (crash_explorer.h).
 */
#include "crash_explorer.h"

#include <criterion/criterion.h>

uint64_t
crash_rnd_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

bool
crash_keep_random(void *arg, bool effective)
{
    struct crash_rnd *r = arg;
    (void)effective;
    return (crash_rnd_next(&r->x) & 255) < r->keep_per_256;
}

struct pattern {
    uint64_t bits; /* bit i: keep effective piece i */
    int next;      /* effective pieces seen */
};

static bool
keep_pattern(void *arg, bool effective)
{
    struct pattern *p = arg;
    if (!effective)
        return true; /* makes no difference either way */
    int i = p->next++;
    return i < 64 ? (p->bits >> i) & 1 : true;
}

void
crash_explore(const struct crash_explorer *x, struct crash_counts *c)
{
    x->fresh_device(x->arg);
    x->run(x->arg);
    long nops = sim_ops();
    cr_assert_gt(nops, x->min_ops, "%s: workload made only %ld device ops", x->name, nops);
    c->ops = nops;
    if (x->clean_run_done)
        x->clean_run_done(x->arg);
    for (long k = 0; k <= nops; k++) {
        x->fresh_device(x->arg);
        sim_set_crash_at(k);
        x->run(x->arg);
        struct sim_log *log = sim_take_log();
        size_t kk = (size_t)k < sim_log_len(log) ? (size_t)k : sim_log_len(log);
        struct sim_replay *rp = sim_replay_new(log);
        struct pattern count = {0, 0};
        struct sim_image img;
        sim_replay_image(rp, kk, keep_pattern, &count, &img);
        sim_image_free(&img);
        int n = count.next;
        bool every = n <= x->exhaustive_bits;
        uint64_t patterns = every ? 1ull << n : x->sampled;
        if (!every)
            c->sampled_points++;
        uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)k;
        bool go_on = true;
        /* The image needs the device's file table as it was at the crash: rebuild it for
         * every pattern from the same log (sim_install replaces contents only). */
        for (uint64_t pat = 0; pat < patterns && go_on; pat++) {
            struct pattern p = {every ? pat : crash_rnd_next(&seed), 0};
            sim_replay_image(rp, kk, keep_pattern, &p, &img);
            c->states++;
            go_on = x->check(x->arg, log, kk, &img);
            sim_image_free(&img);
        }
        sim_replay_free(rp);
        sim_log_free(log);
        if (!go_on)
            break;
    }
}
