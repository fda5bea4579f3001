/* SPDX-License-Identifier: MIT */
/*
 * progress.c -- a progress bar with ETA on stderr, drawn by its own thread every 200 ms, only
 * when stderr is a terminal (never in pipes, logs or CI). It covers a whole invocation: a
 * compare of 5 paths x 3 repeats is one bar with "run 7/15 DOUBLEWRITE".
 */
#include "progress.h"

#include "clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    pthread_t th;
    pthread_mutex_t lock;
    _Atomic int stop;
    _Atomic uint64_t pages_done; /* in the current run */
    unsigned total_runs;
    unsigned runs_done;
    uint64_t run_pages; /* 0: time based */
    double run_est_s;
    uint64_t run_start_ns;
    uint64_t start_ns;
    char label[48];
};

/* fraction() -- of the whole invocation, from finished runs plus the current one. */
static double
fraction(struct progress *p, uint64_t now)
{
    double cur = 0;
    if (p->run_start_ns) {
        if (p->run_pages)
            cur = (double)atomic_load(&p->pages_done) / (double)p->run_pages;
        else if (p->run_est_s > 0)
            cur = (double)(now - p->run_start_ns) / 1e9 / p->run_est_s;
        if (cur > 0.99)
            cur = 0.99;
    }
    return ((double)p->runs_done + cur) / (double)(p->total_runs ? p->total_runs : 1);
}

static void
draw(struct progress *p)
{
    uint64_t now = now_ns();
    pthread_mutex_lock(&p->lock);
    double f = fraction(p, now);
    double el = (double)(now - p->start_ns) / 1e9;
    char eta[32] = "--:--";
    if (f > 0.01) {
        double rem = el / f - el;
        snprintf(eta, sizeof(eta), "%d:%02d", (int)(rem / 60), (int)rem % 60);
    }
    enum { W = 30 };
    char bar[W + 1];
    int fill = (int)(f * W);
    for (int i = 0; i < W; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[W] = '\0';
    unsigned run = p->runs_done + (p->run_start_ns ? 1 : 0);
    fprintf(stderr, "\r\033[K[%s] %3d%%  run %u/%u %-22s ETA %s", bar, (int)(f * 100), run,
            p->total_runs, p->label, eta);
    fflush(stderr);
    pthread_mutex_unlock(&p->lock);
}

static void *
loop(void *arg)
{
    struct progress *p = arg;
    while (!atomic_load(&p->stop)) {
        draw(p);
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

struct progress *
progress_start(int enabled, unsigned total_runs, double run_est_s)
{
    if (!enabled || !isatty(STDERR_FILENO))
        return NULL;
    struct progress *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    p->total_runs = total_runs;
    p->run_est_s = run_est_s;
    p->start_ns = now_ns();
    if (pthread_create(&p->th, NULL, loop, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void
progress_run_begin(struct progress *p, const char *label, uint64_t pages, double est_s)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    snprintf(p->label, sizeof(p->label), "%s", label);
    p->run_pages = pages;
    p->run_est_s = est_s;
    atomic_store(&p->pages_done, 0);
    p->run_start_ns = now_ns();
    pthread_mutex_unlock(&p->lock);
}

void
progress_add_pages(void *arg, uint64_t n)
{
    struct progress *p = arg;
    if (p)
        atomic_fetch_add_explicit(&p->pages_done, n, memory_order_relaxed);
}

void
progress_run_end(struct progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->runs_done++;
    p->run_start_ns = 0;
    pthread_mutex_unlock(&p->lock);
}

void
progress_stop(struct progress *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
