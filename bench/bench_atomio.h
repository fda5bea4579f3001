/* SPDX-License-Identifier: MIT */
/*
 * bench_atomio.h -- the parts of atomio-bench that talk to libatomio (through atomio.h only):
 * running a workload through a path, and the shared report types of run/compare.
 */
#ifndef ATOMIO_BENCH_ATOMIO_H
#define ATOMIO_BENCH_ATOMIO_H

#include "bench.h"

#include <atomio.h>

/* Paths the library has (enum atomio_path); atomio_stats.pages[] has room for more. */
#define BENCH_NPATHS (ATOMIO_PATH_UNSAFE + 1)

/* Options of one library run beyond the workload. */
struct lib_opts {
    uint32_t path;         /* enum atomio_path asked for */
    uint32_t policy;       /* enum atomio_policy for the ctx */
    const char *doublewrite_dir; /* doublewrite store directory */
};

/*
 * lib_run() -- open a ctx and the file with o->path, run the workload c, fill r (figures,
 * counters from atomio_ctx_get_stats, the path actually used); on_pages as for wl_run().
 * Returns 0 or an error (r->errmsg).
 */
int lib_run(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r,
            wl_pages_fn *on_pages, void *on_pages_arg);

/* Default doublewrite directory for a data file: "<file>.atomio-dblwr". */
void lib_default_dblwr_dir(const char *file, char *out, size_t len);
/* Remove a doublewrite directory this tool created (its files, then the directory). */
void lib_remove_dblwr_dir(const char *dir);

/* Parse "auto", "direct", "DIRECT_ATOMIC", "doublewrite"... into enum atomio_path; -1 if bad. */
int parse_path_name(const char *s);
/* Parse "fast|atomic|calibrate" into enum atomio_policy; -1 if bad. */
int parse_policy_name(const char *s);

/* Filesystem name of a statfs f_type ("xfs", "ext4", "tmpfs", or "0x..."). */
const char *fs_type_name(uint64_t f_type);

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
