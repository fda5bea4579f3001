/* SPDX-License-Identifier: MIT */
/*
 * bench.h -- shared declarations of atomio-bench and the bare baselines.
 *
 * Nothing here includes atomio.h: the baselines (bench/baseline_*.c) link only bench_util
 * (args, histograms, JSON, the workload driver) so their figures come from code without the
 * library. The workload driver is the one place that decides which pages are written when, so a
 * library run and a baseline run with the same knobs do exactly the same work.
 */
#ifndef ATOMIO_BENCH_H
#define ATOMIO_BENCH_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_SCHEMA       "atomio-bench/1"
#define BENCH_EXIT_OK      0
#define BENCH_EXIT_RUNTIME 1
#define BENCH_EXIT_USAGE   2

#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040 /* Linux 6.11; Debian 12 headers lack it */
#endif

/* ---- subcommands ------------------------------------------------------------------------- */

int cmd_probe(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_compare(int argc, char **argv);

/* bench/cmd_store.c: `recover DIR` and `inspect DIR`. */
int cmd_inspect(int argc, char **argv);
int cmd_recover(int argc, char **argv);

/* ---- argument parsing (args.c) ----------------------------------------------------------- */

/* One option of a subcommand. has_arg: 0 flag, 1 requires a value. */
struct opt_spec {
    const char *name; /* long name without "--" */
    int has_arg;
    int id;
    const char *metavar; /* for help text; NULL for flags */
    const char *help;
};

/*
 * Iterator over argv of a subcommand: yields option ids (with arg) or 0 for a positional
 * argument (in arg). Returns -1 at the end. Unknown options and missing values are usage errors
 * (exit 2 with a one-line message naming the subcommand).
 */
struct opt_iter {
    int argc;
    char **argv;
    int i;
    int only_positional; /* after "--" */
    const char *cmd;     /* "run", "baseline-uring"... for messages */
    const struct opt_spec *specs;
    const char *arg;
    const char *optname; /* the option as written, for messages */
};

void opt_init(struct opt_iter *it, const char *cmd, const struct opt_spec *specs, int argc,
              char **argv);
int opt_next(struct opt_iter *it);
/* Print "  --name VALUE   help" lines for every spec. */
void opt_print_help(FILE *out, const struct opt_spec *specs);

/* Program name in messages: "atomio-bench" or the baseline's name. */
extern const char *bench_progname;
/* Report a usage error as one line on stderr and exit 2. cmd may be NULL (baselines). */
_Noreturn void usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report a runtime error as one line on stderr (the caller returns 1). */
void runtime_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parsers: 0 on success, -1 on a bad value (callers turn that into a usage error naming the
 * option). Sizes: a number with an optional binary suffix k, m, g, t (case-insensitive, an
 * optional trailing "b"/"ib"), e.g. 4k, 16K, 1g, 512, 64KiB. Durations: a number with
 * ns, us, ms, s, m or h; a bare number is seconds; fractions allowed ("0.5s").
 */
int parse_size(const char *s, uint64_t *out);
int parse_duration_ns(const char *s, uint64_t *out);
int parse_u64(const char *s, uint64_t *out);
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* A page size: a size that is a power of two in [512, 1 MiB]. */
int parse_page_size(const char *s, uint32_t *out);

/* Formatting helpers (static rotating buffers, valid for 8 calls). */
const char *fmt_bytes(uint64_t b);  /* "16 KiB", "1 MiB", "1536 B" (exact units only) */
const char *fmt_duration(double s); /* "5 s", "500 ms" */

/* ---- workload (workload.c) -------------------------------------------------------------- */

enum wl_pattern { WL_RANDOM = 0, WL_SEQUENTIAL = 1, WL_CHECKPOINT = 2 };
/* Same numbering as enum atomio_io_style and enum atomio_submitter, on purpose. */
enum wl_io_style { WL_IO_ANY = 0, WL_IO_BUFFERED = 1, WL_IO_DIRECT = 2 };
enum wl_submitter { WL_SUBMIT_AUTO = 0, WL_SUBMIT_URING = 1, WL_SUBMIT_SYNC = 2 };

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
    uint32_t threads;
    uint64_t sync_every; /* pages per thread between syncs; WL_SYNC_BATCH; WL_SYNC_NEVER */
    int io_style;        /* enum wl_io_style */
    int submitter;       /* enum wl_submitter */
    int copy_pages;      /* 1: no ATOMIO_WRITE_STABLE_PAGES, so DOUBLEWRITE copies each page */
    double zipf_theta;   /* skew of --workload checkpoint */
    uint64_t seed;
    int progress; /* 1: show a progress bar (only if stderr is a TTY) */
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
};
/* The shared workload options, terminated by a {NULL} entry; concatenated by commands. */
extern const struct opt_spec wl_opt_specs[];
size_t opt_specs_count(const struct opt_spec *specs);
/* Handle a WO_* id; usage error (exit 2) on a bad value. Returns 1 if it was a WO_* id. */
int wl_handle_opt(struct wl_config *c, const char *cmd, int id, const char *arg);
/* Cross-option checks after parsing (batch vs file size...); usage error on failure. */
void wl_check(struct wl_config *c, const char *cmd);
/* One-line summary: "random, batch 64, qd 32, 1 thread, sync every batch, io any". */
void wl_describe(const struct wl_config *c, char *out, size_t len);

const char *wl_pattern_name(int p);
const char *wl_io_style_name(int s);
const char *wl_submitter_name(int s);
const char *wl_sync_name(uint64_t sync_every, char *buf, size_t len);

/*
 * wl_prepare_file() -- create the file and fill it with non-zero data up to c->file_size when
 * it is missing or shorter (so writes land on allocated blocks, not holes), then set
 * c->file_size to the size used. Returns 0 or -errno; *filled says whether it wrote data.
 */
int wl_prepare_file(struct wl_config *c, int *filled);

/* ---- latency histogram (hist.c) --------------------------------------------------------- */

#define HIST_SUB 64 /* sub-buckets per power of two: ~1.6% relative precision */
#define HIST_POW 48
struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t b[HIST_POW][HIST_SUB];
};
void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at quantile q in [0, 1] (bucket midpoint, at most the max seen), 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/*
 * Quantile of a log2-bucket histogram (bucket i holds [2^i, 2^(i+1)) units, bucket 0 also
 * < 1): linear interpolation inside the bucket. Returns -1 when empty.
 */
double log2hist_quantile(const uint64_t *buckets, unsigned n, double q);

/* ---- one measured run, and the driver that produces it (workload.c) ----------------------- */

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
    char note[256];       /* AUTO's reason, fallbacks; "" if none */
    int err;              /* 0, or the failing result */
    char errmsg[256];
};

/* Derived figures of a run, the flat record shared by --json "runs" and the baselines. */
struct wl_figures {
    double pages_per_s, mb_per_s;
    double lat_page_p50_us, lat_page_p99_us, lat_page_p999_us, lat_page_max_us;
    double lat_batch_p50_us, lat_batch_p99_us, lat_batch_p999_us;
    double device_bytes_per_page, data_bytes_per_page, dblwr_bytes_per_page;
    double syncs_per_page, cpu_us_per_page;
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

/* Alloc/free a result's histograms. */
int wl_result_alloc(struct wl_result *r);
void wl_result_free(struct wl_result *r);

/* ---- progress bar on stderr (progress.c) ------------------------------------------------ */

/* Starts a thread that redraws a bar with ETA every 200 ms if enabled and stderr is a TTY. */
struct wl_progress *progress_start(int enabled, unsigned total_runs, double run_est_s);
/* Declare the run now starting (label shown) and its length: pages (0 = time based). */
void progress_run_begin(struct wl_progress *p, const char *label, uint64_t pages, double est_s);
/* A wl_pages_fn: p is the struct wl_progress (NULL: no bar). */
void progress_add_pages(void *p, uint64_t n);
void progress_run_end(struct wl_progress *p);
void progress_stop(struct wl_progress *p);

struct json_flat;

/* ---- JSON writer (json.c) ---------------------------------------------------------------- */

struct json {
    FILE *out;
    int depth;
    int first[16]; /* per depth: no member written yet */
    int pretty;
};
void json_begin(struct json *j, FILE *out, int pretty);
void json_obj_open(struct json *j, const char *key); /* key NULL inside arrays / at top */
void json_obj_close(struct json *j);
void json_arr_open(struct json *j, const char *key);
void json_arr_close(struct json *j);
void json_str(struct json *j, const char *key, const char *v); /* v NULL -> null */
void json_num(struct json *j, const char *key, double v);      /* non-finite -> null */
/* null unless valid and finite */
void json_num_or_null(struct json *j, const char *key, double v, int valid);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, int v);
void json_end(struct json *j);

/* Write the flat per-run record (shared by atomio-bench --json and the baselines):
 * json_run_fields() writes its members into the object being written. */
void json_run_record(struct json *j, const char *key, const struct wl_result *r,
                     const struct wl_config *c);
void json_run_fields(struct json *j, const struct wl_result *r, const struct wl_config *c);
/* The workload's knobs as members (page_size_bytes, batch, qd...). */
void json_config_fields(struct json *j, const struct wl_config *c);
/* Fill r from a flat record read back (a baseline's output). */
void wl_result_from_flat(struct wl_result *r, const struct json_flat *o);

/*
 * A flat JSON object read back (baseline output): up to 64 members, string or number values.
 * Returns 0, or -1 when the text is not a flat object.
 */
struct json_flat {
    unsigned n;
    char key[64][48];
    char str[64][256];
    double num[64];
    int is_num[64];
};
int json_flat_parse(const char *text, struct json_flat *out);
/* Number of member key (NAN when absent or not a number); string (NULL when absent). */
double json_flat_num(const struct json_flat *o, const char *key);
const char *json_flat_str(const struct json_flat *o, const char *key);

#endif
