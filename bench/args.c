/* SPDX-License-Identifier: MIT */
/*
 * args.c -- command-line parsing shared by atomio-bench and the baselines: a small long-option
 * iterator (so every message can name the subcommand and the option as typed), sizes such as
 * 4k/16k/1g and durations such as 10s/500ms. Every bad value is a usage error: one line on
 * stderr, exit status 2.
 */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_progname = "atomio-bench";

/* message() -- "PROG: CMD: text" on stderr, without the line's end. */
static void
message(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s%s", bench_progname, cmd ? cmd : "", cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
}

void
usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try '%s %s%s--help')\n", bench_progname, cmd ? cmd : "", cmd ? " " : "");
    exit(BENCH_EXIT_USAGE);
}

void
runtime_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(cmd, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

size_t
opt_specs_count(const struct opt_spec *specs)
{
    size_t n = 0;
    while (specs[n].name)
        n++;
    return n;
}

void
opt_init(struct opt_iter *it, const char *cmd, const struct opt_spec *specs, int argc, char **argv)
{
    memset(it, 0, sizeof(*it));
    it->argc = argc;
    it->argv = argv;
    it->i = 1; /* argv[0] is the subcommand name */
    it->cmd = cmd;
    it->specs = specs;
}

/*
 * opt_next() -- next option id, 0 for a positional argument, -1 at the end.
 * Accepts "--name value", "--name=value", "-h" as "--help". Abbreviations are not accepted: a
 * benchmark's command line ends up in scripts and must stay unambiguous as options are added.
 */
int
opt_next(struct opt_iter *it)
{
    if (it->i >= it->argc)
        return -1;
    const char *a = it->argv[it->i++];
    it->arg = NULL;
    it->optname = a;
    if (it->only_positional || a[0] != '-' || a[1] == '\0') {
        it->arg = a;
        return 0;
    }
    if (strcmp(a, "--") == 0) {
        it->only_positional = 1;
        return opt_next(it);
    }
    if (strcmp(a, "-h") == 0)
        a = "--help";
    if (a[1] != '-')
        usage_error(it->cmd, "unknown option '%s'", a);
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (const struct opt_spec *s = it->specs; s->name; s++) {
        if (strlen(s->name) != len || strncmp(s->name, name, len) != 0)
            continue;
        if (!s->has_arg) {
            if (eq)
                usage_error(it->cmd, "option '--%s' takes no value", s->name);
            return s->id;
        }
        if (eq) {
            it->arg = eq + 1;
        } else {
            if (it->i >= it->argc)
                usage_error(it->cmd, "option '--%s' needs a value (%s)", s->name,
                            s->metavar ? s->metavar : "VALUE");
            it->arg = it->argv[it->i++];
        }
        return s->id;
    }
    usage_error(it->cmd, "unknown option '--%.*s'", (int)len, name);
}

void
opt_print_help(FILE *out, const struct opt_spec *specs)
{
    for (const struct opt_spec *s = specs; s->name; s++) {
        char lhs[64];
        snprintf(lhs, sizeof(lhs), "--%s%s%s", s->name, s->metavar ? " " : "",
                 s->metavar ? s->metavar : "");
        fprintf(out, "  %-24s %s\n", lhs, s->help);
    }
}

/* ---- values ------------------------------------------------------------------------------ */

int
parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, &v) || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/*
 * parse_scaled() -- "<number><unit>" with a unit table; the number may have a fraction. Used
 * for sizes (binary units) and durations. Rejects negative, empty, overflowing and unknown units.
 */
static int
parse_scaled(const char *s, const char *const *units, const double *scale, double *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1]))))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    for (size_t i = 0; units[i]; i++) {
        if (strcasecmp(end, units[i]) == 0) {
            *out = v * scale[i];
            return 0;
        }
    }
    return -1;
}

int
parse_size(const char *s, uint64_t *out)
{
    static const char *const units[] = {"",  "b",  "k",   "kb", "kib", "m",   "mb", "mib",
                                        "g", "gb", "gib", "t",  "tb",  "tib", NULL};
    static const double scale[] = {1,      1,      0x1p10, 0x1p10, 0x1p10, 0x1p20, 0x1p20,
                                   0x1p20, 0x1p30, 0x1p30, 0x1p30, 0x1p40, 0x1p40, 0x1p40};
    double v;
    if (parse_scaled(s, units, scale, &v) || v >= 0x1p63 || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int
parse_duration_ns(const char *s, uint64_t *out)
{
    static const char *const units[] = {"", "ns", "us", "ms", "s", "m", "min", "h", NULL};
    static const double scale[] = {1e9, 1, 1e3, 1e6, 1e9, 60e9, 60e9, 3600e9};
    double v;
    if (parse_scaled(s, units, scale, &v) || v >= 0x1p63)
        return -1;
    *out = (uint64_t)llround(v);
    return 0;
}

int
parse_page_size(const char *s, uint32_t *out)
{
    uint64_t v;
    if (parse_size(s, &v) || v < 512 || v > (1u << 20) || (v & (v - 1)))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static char *
rot_buf(void)
{
    static _Thread_local char bufs[8][48];
    static _Thread_local unsigned next;
    return bufs[next++ % 8];
}

const char *
fmt_bytes(uint64_t b)
{
    char *s = rot_buf();
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned i = 0;
    while (i < 4 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        i++;
    }
    snprintf(s, 48, "%llu %s", (unsigned long long)b, u[i]);
    return s;
}

const char *
fmt_duration(double sec)
{
    char *s = rot_buf();
    if (sec >= 1 || sec == 0)
        snprintf(s, 48, "%g s", sec);
    else if (sec >= 1e-3)
        snprintf(s, 48, "%g ms", sec * 1e3);
    else
        snprintf(s, 48, "%g us", sec * 1e6);
    return s;
}
