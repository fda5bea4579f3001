/* SPDX-License-Identifier: MIT */
/*
 * runner.h -- the workload driver's runner for libatomio (runner.c): one run through one write
 * path, and the names and directories of the library's paths and policies.
 */
#ifndef ATOMIO_BENCH_RUNNER_H
#define ATOMIO_BENCH_RUNNER_H

#include "workload.h"

#include <atomio.h>
#include <stddef.h>
#include <stdint.h>

/* Paths the library has (enum atomio_path); atomio_stats.pages[] has room for more. */
#define BENCH_NPATHS (ATOMIO_PATH_UNSAFE + 1)

/* Options of one library run beyond the workload. */
struct lib_opts {
    uint32_t path;         /* enum atomio_path asked for */
    uint32_t policy;       /* enum atomio_policy for the ctx */
    const char *doublewrite_dir; /* doublewrite store directory */
    uint64_t store_bytes;        /* atomio_ctx_opts.doublewrite_store_bytes; 0 = default */
    const char *instance;        /* atomio_ctx_opts.instance: shared by the writer processes */
};

/*
 * lib_run() -- open a ctx and the file with o->path, run the workload c, fill r (figures,
 * counters from atomio_ctx_get_stats, the path actually used); on_pages as for wl_run().
 * Returns 0 or an error (r->errmsg).
 */
int lib_run(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r,
            wl_pages_fn *on_pages, void *on_pages_arg);
/* lib_run_processes() -- lib_run() in c->processes writer processes (wl_run_processes()),
 * each with its own ctx opened with instance o->instance on the one store; results summed. */
int lib_run_processes(const struct wl_config *c, const struct lib_opts *o, struct wl_result *r);

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

#endif
