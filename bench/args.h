/* SPDX-License-Identifier: MIT */
/*
 * args.h -- command-line parsing of atomio-bench and the baselines (args.c): long options, size
 * and duration values, and the one-line usage and runtime errors every command prints.
 */
#ifndef ATOMIO_BENCH_ARGS_H
#define ATOMIO_BENCH_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_EXIT_OK      0
#define BENCH_EXIT_RUNTIME 1
#define BENCH_EXIT_USAGE   2

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
/* Number of specs before the terminating {NULL} entry. */
size_t opt_specs_count(const struct opt_spec *specs);

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

#endif
