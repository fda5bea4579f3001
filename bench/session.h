/* SPDX-License-Identifier: MIT */
/*
 * session.h -- state shared by `run` and `compare` (session.c): parsed options, the rows to
 * run, and the report they end in.
 */
#ifndef ATOMIO_BENCH_SESSION_H
#define ATOMIO_BENCH_SESSION_H

#include "report.h"
#include "runner.h"
#include "wl_config.h"

#include <atomio.h>

#include <limits.h>

enum {
    SO_HELP = 1,
    SO_PATH,
    SO_PATHS,
    SO_REPEAT,
    SO_BASELINES,
    SO_POLICY,
    SO_DBLWR_DIR,
    SO_JSON,
    SO_CSV,
    SO_SVG,
    SO_STORE_SIZE,
    SO_WRITE_BEHIND,
    SO_WRITE_BEHIND_SIZE,
    SO_VERIFY,
};

#define MAX_ROWS 12

struct session {
    const char *cmd; /* "run" or "compare" */
    int is_compare;
    struct wl_config c;
    uint32_t path; /* run */
    uint32_t policy;
    int paths[BENCH_NPATHS];
    unsigned npaths;
    int paths_given;
    unsigned repeat;
    int baselines;
    int format; /* enum report_format */
    const char *svg;
    char doublewrite_dir[PATH_MAX];
    uint64_t store_bytes; /* --store-size; 0 = the library's default */
    char instance[64];    /* the engine instance the writer processes share */
    int dblwr_created;
    int filled;
    int have_caps;
    atomio_caps caps;
    unsigned nrows;
    struct report_row rows[MAX_ROWS];
};

void session_help(int is_compare);
/* Parse argv (usage errors exit 2; --help exits 0). */
void session_parse(struct session *s, int is_compare, int argc, char **argv);
/* Create/fill the file, probe it, plan the rows. 0 or an exit status. */
int session_setup(struct session *s);
/* Run every row s->repeat times, interleaved. Returns the number of failed rows. */
int session_execute(struct session *s);
/* Print the report (and the SVG), clean up. Returns the exit status. */
int session_finish(struct session *s, int failures);

#endif
