/* SPDX-License-Identifier: MIT */
/*
 * report.h -- what run and compare report (report.c: table, JSON, CSV; svg.c: the chart).
 */
#ifndef ATOMIO_BENCH_REPORT_H
#define ATOMIO_BENCH_REPORT_H

#include "workload.h"

#include <atomio.h>
#include <stddef.h>
#include <stdio.h>

/* One row of a report: a path or a baseline, with every repeat. */
#define MAX_REPEATS 64
struct report_row {
    char name[48];
    int is_baseline;
    int requested_path; /* enum atomio_path, -1 for baselines */
    char bl_kind[16];   /* baseline program: "uring", "pwritev2", "dblwr" */
    int bl_atomic;      /* baseline run with --atomic */
    unsigned nruns;
    struct wl_result runs[MAX_REPEATS];
    struct wl_figures fig[MAX_REPEATS];
    int failed;
};

/* Everything a report shows. */
struct report {
    const char *command; /* "run" or "compare" */
    const struct wl_config *c;
    const char *doublewrite_dir;
    uint64_t store_bytes; /* --store-size, 0 = default */
    uint32_t policy;
    unsigned repeat;
    int filled; /* the tool created/filled the file */
    int have_caps;
    atomio_caps caps;
    unsigned nrows;
    struct report_row *rows;
};

enum report_format { FMT_TABLE = 0, FMT_JSON = 1, FMT_CSV = 2 };
void report_print(FILE *out, const struct report *rep, int format);
/* Write the chart; 0 or -errno. */
int report_svg(const char *path, const struct report *rep);

/* Median / min / max of one figure across a row's runs (field picked by offset). */
struct agg {
    double median, min, max;
    int valid;
};
struct agg row_agg(const struct report_row *row, size_t fig_offset);
#define FIG(field) offsetof(struct wl_figures, field)

#endif
