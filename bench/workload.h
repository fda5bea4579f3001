/* SPDX-License-Identifier: MIT */
/*
 * workload.h -- the workload driver (workload.c) shared by atomio-bench and the bare baselines.
 *
 * Nothing here includes atomio.h: the baselines link only atomio_bench_util, so their figures
 * come from code without the library. The driver is the one place that decides which pages are
 * written when, so a library run and a baseline run with the same knobs do exactly the same
 * work; a runner only says how a batch is written and synced (struct wl_ops).
 */
#ifndef ATOMIO_BENCH_WORKLOAD_H
#define ATOMIO_BENCH_WORKLOAD_H

#include "wl_config.h"

#include <stddef.h>
#include <stdint.h>

struct hist;

/*
 * wl_prepare_file() -- create the file and fill it with non-zero data up to c->file_size when
 * it is missing or shorter (so writes land on allocated blocks, not holes), then set
 * c->file_size to the size used. Returns 0 or -errno; *filled says whether it wrote data.
 */
int wl_prepare_file(struct wl_config *c, int *filled);

/* wl_fill_pages() -- the content a runner's page buffers start with: len bytes (a multiple of 8)
 * of a generator seeded by tid, so pages are not trivially compressible or deduplicated. */
void wl_fill_pages(void *buf, size_t len, unsigned tid);

/* Buckets of the library's per-page latency histogram (atomio_stats.lat_hist, log2 of us). */
#define WL_LOG2_BUCKETS 32

/* One measured run (of all processes, summed, when there are several). */
struct wl_result {
    char name[48];        /* "DOUBLEWRITE", "bare-uring-atomic" */
    char path_actual[32]; /* what the library actually used ("" for baselines) */
    char submitter[16];   /* "uring", "sync" */
    int o_direct;         /* -1 unknown */
    uint32_t qd_effective;
    uint64_t pages;
    uint64_t batches;
    uint64_t syncs_issued; /* sync calls the workload made */
    double elapsed_s;
    struct hist *lat_batch;      /* ns per batch call (write + the sync that follows) */
    struct hist *lat_page;       /* ns per page when the runner measures it, else NULL / empty */
    double lat_page_q[4];        /* p50, p99, p99.9, max in us; < 0 = unknown */
    double lat_batch_q[3];       /* p50, p99, p99.9 in us when lat_batch is empty (read back) */
    const char *lat_page_source; /* "measured", "library-histogram", "call", "none" */
    double cpu_user_s;
    double cpu_sys_s;
    uint64_t bytes_data;  /* written in place to the data file during measurement */
    uint64_t bytes_doublewrite; /* written to a doublewrite store */
    uint64_t dev_syncs;   /* fdatasync calls (data + store); from the library or counted */
    /* The library's own per-page histogram over the measured part (delta), summed over the
     * processes; turned into lat_page_q by wl_result_log2_quantiles(). */
    uint64_t log2_lat[WL_LOG2_BUCKETS];
    /* Library counters over the measured part (0 for baselines): summed over processes,
     * except the store-wide ones (store_bytes, store_bytes_used, attached: the largest seen). */
    uint64_t bounce_copies, forced_syncs, group_commits, group_records;
    uint64_t store_bytes, store_bytes_used, attached;
    /* Write-behind counters: doublewrites that returned once staged, atomio_read() calls
     * served from staging (summed); pages of the instance staged and not yet in place when
     * measurement ended (the largest seen: the final sync writes them, outside the figures).
     * write_behind: the run wrote through DOUBLEWRITE with write-behind. */
    uint64_t pages_staged, staged_reads, staged_now;
    int write_behind;
    /* --verify, after measurement: pages read back and compared (each once with atomio_read()
     * before the final sync, once with a plain pread() after it), and how many of those
     * atomio_read() calls the library served from staging (summed over processes). */
    uint64_t verified_pages, verify_staged_reads;

    uint32_t processes; /* writer processes whose results are summed here */
    char note[256];       /* AUTO's reason, fallbacks; "" if none */
    int err;              /* 0, or the failing result */
    char errmsg[256];
};

/* Alloc/free a result's histograms. */
int wl_result_alloc(struct wl_result *r);
void wl_result_free(struct wl_result *r);

/* Derived figures of a run, the flat record shared by --json "runs" and the baselines. */
struct wl_figures {
    double pages_per_s, mb_per_s;
    double lat_page_p50_us, lat_page_p99_us, lat_page_p999_us, lat_page_max_us;
    double lat_batch_p50_us, lat_batch_p99_us, lat_batch_p999_us;
    double device_bytes_per_page, data_bytes_per_page, dblwr_bytes_per_page;
    double syncs_per_page, cpu_us_per_page;
    /* store records per store fdatasync (group_records / group_commits), forced syncs per run,
     * processes attached to the store: NAN / unknown when the run had no doublewrite store */
    double group_commit_records, forced_syncs, attached;
    /* write-behind counters per run (pages_staged, staged_reads, staged_now at the end of
     * measurement): NAN unless the run wrote through DOUBLEWRITE with write-behind */
    double pages_staged, staged_reads, staged_now;
};
void wl_figures_of(const struct wl_result *r, uint32_t page_size, struct wl_figures *f);

/* What a runner (library or bare loop) plugs into the driver. */
struct wl_ops {
    void *arg;
    /* Per-thread state (buffers, ring). NULL on failure with an error stored by the runner. */
    void *(*thread_init)(void *arg, unsigned tid);
    /* Write n distinct pages; page_lat_ns (may be NULL) receives per-page latencies when the
     * runner can measure them. Returns 0 or a negative error (the run stops). */
    int (*write_batch)(void *ts, const uint64_t *page_nos, uint32_t n, uint64_t *page_lat_ns);
    int (*sync)(void *ts);
    void (*thread_fini)(void *ts);
    /* Called once when measurement starts (after warm-up) and once when it ends, from one
     * thread, to snapshot counters. phase 0 = start, 1 = end. */
    void (*mark)(void *arg, int phase);
    /* Message for a failed call (fills buf). */
    void (*strerr)(void *arg, int err, char *buf, size_t len);
    /* 1 if write_batch fills page_lat_ns. */
    int page_lat;
    /* NULL, or: finish the writes still in flight when write_batch returned, so the counters
     * snapshot when measurement starts hold exactly the pages written before it. Called by
     * each thread before it waits for the switch from warm-up to measuring. */
    int (*quiesce)(void *ts);
};

/* Told how many pages a measured batch wrote, from the writer threads (a progress bar). */
typedef void wl_pages_fn(void *arg, uint64_t n);

/*
 * wl_run() -- run the workload of c through ops with c->threads threads: warm-up, then the
 * measured part. Fills r (the caller supplies r->lat_batch / r->lat_page storage or NULL).
 * on_pages (may be NULL) is called with on_pages_arg after every measured batch.
 * Returns 0 or the first error (also in r->err/errmsg).
 */
int wl_run(const struct wl_config *c, const struct wl_ops *ops, struct wl_result *r,
           wl_pages_fn *on_pages, void *on_pages_arg);

/*
 * wl_run_processes() -- fork c->processes writer processes; process i calls fn(arg, ci, ri)
 * with ci a copy of c whose proc_index is i (its threads write stripes of their own) and whose
 * pages, in --pages mode, are its share. fn sets itself up (opens its ctx, its files) and then
 * calls wl_run(ci, ...), which waits until every process is set up, so all measure together.
 * The results are summed into r (pages, bytes, syncs, counters, CPU; histograms merged; the
 * elapsed time is the longest). Returns 0 or the first error (r->err, r->errmsg).
 */
typedef int wl_proc_fn(void *arg, const struct wl_config *c, struct wl_result *r);
int wl_run_processes(const struct wl_config *c, wl_proc_fn *fn, void *arg, struct wl_result *r);

/* wl_result_log2_quantiles() -- lat_page_q from r->log2_lat when no page was measured. */
void wl_result_log2_quantiles(struct wl_result *r);

#endif
