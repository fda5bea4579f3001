/* SPDX-License-Identifier: MIT */
/*
 * progress.h -- a progress bar with ETA on stderr (progress.c), one for a whole invocation.
 */
#ifndef ATOMIO_BENCH_PROGRESS_H
#define ATOMIO_BENCH_PROGRESS_H

#include <stdint.h>

struct progress;

/* Starts a thread that redraws a bar with ETA every 200 ms if enabled and stderr is a TTY;
 * NULL otherwise, and every function below accepts NULL and does nothing. */
struct progress *progress_start(int enabled, unsigned total_runs, double run_est_s);
/* Declare the run now starting (label shown) and its length: pages (0 = time based). */
void progress_run_begin(struct progress *p, const char *label, uint64_t pages, double est_s);
/* Pages done in the current run; p is a struct progress *, so that it is a wl_pages_fn. */
void progress_add_pages(void *p, uint64_t n);
void progress_run_end(struct progress *p);
void progress_stop(struct progress *p);

#endif
