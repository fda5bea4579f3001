/* SPDX-License-Identifier: MIT */
/*
 * wl_config.h -- the knobs of a workload (wl_config.c): what the workload options set, their
 * defaults and checks, and their names in reports. Nothing here includes atomio.h.
 */
#ifndef ATOMIO_BENCH_WL_CONFIG_H
#define ATOMIO_BENCH_WL_CONFIG_H

#include "args.h"

#include <stddef.h>
#include <stdint.h>

enum wl_pattern { WL_RANDOM = 0, WL_SEQUENTIAL = 1, WL_CHECKPOINT = 2 };
/* Same numbering as enum atomio_io_style and enum atomio_submitter, on purpose. ENGINE has no
 * library counterpart: the bench's own ring drives the library (runner_ring.c); the baselines
 * take it as uring. */
enum wl_io_style { WL_IO_ANY = 0, WL_IO_BUFFERED = 1, WL_IO_DIRECT = 2 };
enum wl_submitter { WL_SUBMIT_AUTO = 0, WL_SUBMIT_URING = 1, WL_SUBMIT_SYNC = 2, WL_SUBMIT_ENGINE = 3 };

#define WL_SYNC_NEVER 0
#define WL_SYNC_BATCH UINT64_MAX

struct wl_config {
    const char *file;
    uint32_t page_size; /* bytes */
    uint64_t file_size; /* bytes; 0 = the existing file's size, or 256 MiB when creating */
    int file_size_given;
    int pattern;          /* enum wl_pattern */
    uint64_t pages;       /* measured pages per run; 0 = run for duration_ns */
    uint64_t duration_ns; /* measured time per run when pages == 0 */
    uint64_t warmup_ns;   /* excluded from every figure */
    uint32_t batch;       /* pages per write call */
    uint32_t qd;          /* queue depth (ctx queue_depth / ring entries) */
    uint32_t threads;     /* writer threads per process */
    uint32_t processes;   /* writer processes (fork), each with its own ctx on one store */
    uint64_t sync_every; /* pages per thread between syncs; WL_SYNC_BATCH; WL_SYNC_NEVER */
    int sync_given;      /* --sync was given (the checkpoint workload then keeps it) */
    /* 1: --sync every:K / deferred: library runs open the ctx with ATOMIO_DOUBLEWRITE_DEFERRED,
     * so a copy is released by the engine's sync (every K pages per thread), not per batch. */
    int deferred;
    /* 1: --write-behind: library runs open the ctx with ATOMIO_DOUBLEWRITE_WRITE_BEHIND (deferred
     * durability, and a doublewrite returns once its page is staged in shared memory). Only
     * `run` and `compare` set it, and only with a deferred --sync (session.c checks it).
     * write_behind_bytes: --write-behind-size, atomio_ctx_opts.write_behind_bytes, 0 = the
     * library's default. */
    int write_behind;
    uint64_t write_behind_bytes;
    /* 1: --verify: after a library run, read back every thread's last batch (session.c). */
    int verify;

    int io_style;        /* enum wl_io_style */
    int submitter;       /* enum wl_submitter */
    int copy_pages;      /* 1: no ATOMIO_WRITE_STABLE_PAGES, so DOUBLEWRITE copies each page */
    double zipf_theta;   /* skew of --workload checkpoint */
    uint64_t seed;
    int progress; /* 1: show a progress bar (only if stderr is a TTY) */
    /* Set in each writer process by wl_run_processes(), 0 / NULL otherwise. */
    unsigned proc_index; /* this process's number: its stripes follow those of the ones before */
    void *proc_shared;   /* the processes' start barrier (wl_run waits on it) */
};

void wl_config_defaults(struct wl_config *c);

/* Workload option ids shared by run, compare and the baselines (>= 1000). */
enum {
    WO_PAGE_SIZE = 1000,
    WO_FILE_SIZE,
    WO_RANDOM,
    WO_SEQUENTIAL,
    WO_WORKLOAD,
    WO_PAGES,
    WO_DURATION,
    WO_WARMUP,
    WO_BATCH,
    WO_QD,
    WO_THREADS,
    WO_SYNC,
    WO_DIRECT,
    WO_BUFFERED,
    WO_IO_STYLE,
    WO_SUBMITTER,
    WO_ZIPF,
    WO_SEED,
    WO_NO_PROGRESS,
    WO_COPY_PAGES,
    WO_PROCESSES,
};
/* The shared workload options, terminated by a {NULL} entry; concatenated by commands. */
extern const struct opt_spec wl_opt_specs[];
/* Handle a WO_* id; usage error (exit 2) on a bad value. Returns 1 if it was a WO_* id. */
int wl_handle_opt(struct wl_config *c, const char *cmd, int id, const char *arg);
/* Cross-option checks after parsing (batch vs file size...); usage error on failure. */
void wl_check(struct wl_config *c, const char *cmd);
/* One-line summary: "random, batch 64, qd 32, 1 thread, sync every batch, io any". */
void wl_describe(const struct wl_config *c, char *out, size_t len);

/* "any", "buffered" or "direct" into enum wl_io_style; -1 if bad. */
int wl_parse_io_style(const char *s);
const char *wl_pattern_name(int p);
const char *wl_io_style_name(int s);
const char *wl_submitter_name(int s);
/* "every batch", "never", "every 4096 pages", with ", deferred" when c->deferred. */
const char *wl_sync_name(const struct wl_config *c, char *buf, size_t len);
/* The library's doublewrite mode the knobs ask for: "sync_batch", "deferred" or "write_behind". */
const char *wl_doublewrite_mode_name(const struct wl_config *c);

#endif
