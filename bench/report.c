/* SPDX-License-Identifier: MIT */
/*
 * report.c -- the results of run/compare as a human table, one JSON object, or CSV. Every
 * figure is the median of a row's successful runs with min and max beside it; ratios compare
 * medians. JSON and CSV field names are a documented interface (docs/benchmarks.md): append,
 * never rename.
 */
#include "report.h"

#include "args.h"
#include "record.h"
#include "runner.h"

#include <atomio.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The figures every format reports, in order. */
static const struct {
    const char *key;
    size_t off;
} figs[] = {
    {"pages_per_s", FIG(pages_per_s)},
    {"mb_per_s", FIG(mb_per_s)},
    {"lat_page_p50_us", FIG(lat_page_p50_us)},
    {"lat_page_p99_us", FIG(lat_page_p99_us)},
    {"lat_page_p999_us", FIG(lat_page_p999_us)},
    {"lat_page_max_us", FIG(lat_page_max_us)},
    {"lat_batch_p50_us", FIG(lat_batch_p50_us)},
    {"lat_batch_p99_us", FIG(lat_batch_p99_us)},
    {"lat_batch_p999_us", FIG(lat_batch_p999_us)},
    {"device_bytes_per_page", FIG(device_bytes_per_page)},
    {"data_bytes_per_page", FIG(data_bytes_per_page)},
    {"dblwr_bytes_per_page", FIG(dblwr_bytes_per_page)},
    {"syncs_per_page", FIG(syncs_per_page)},
    {"cpu_us_per_page", FIG(cpu_us_per_page)},
    {"group_commit_records", FIG(group_commit_records)},
    {"forced_syncs", FIG(forced_syncs)},
    {"attached", FIG(attached)},
    {"pages_staged", FIG(pages_staged)},
    {"staged_reads", FIG(staged_reads)},
    {"staged_now", FIG(staged_now)},
};
#define NFIGS (sizeof(figs) / sizeof(figs[0]))

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct agg
row_agg(const struct report_row *row, size_t off)
{
    struct agg a = {NAN, NAN, NAN, 0};
    double v[MAX_REPEATS];
    unsigned n = 0;
    for (unsigned k = 0; k < row->nruns; k++) {
        if (row->runs[k].err || row->runs[k].pages == 0)
            continue;
        double x;
        memcpy(&x, (const char *)&row->fig[k] + off, sizeof(x));
        /* latencies use < 0 for "not known" */
        if (isfinite(x) && x >= 0)
            v[n++] = x;
    }
    if (!n)
        return a;
    qsort(v, n, sizeof(v[0]), cmp_double);
    a.min = v[0];
    a.max = v[n - 1];
    a.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    a.valid = 1;
    return a;
}

/* actual_path() -- the path the library really used in the row's first good run. */
static const char *
actual_path(const struct report_row *row)
{
    for (unsigned k = 0; k < row->nruns; k++)
        if (!row->runs[k].err && row->runs[k].path_actual[0])
            return row->runs[k].path_actual;
    return NULL;
}

static int
path_of_name(const char *name)
{
    for (uint32_t p = 0; p < BENCH_NPATHS; p++)
        if (name && strcmp(atomio_path_name(p), name) == 0)
            return (int)p;
    return -1;
}

/* effective_path() -- what the row measured: AUTO resolves to its pick. */
static int
effective_path(const struct report_row *row)
{
    if (row->is_baseline)
        return -1;
    int p = path_of_name(actual_path(row));
    return p >= 0 ? p : row->requested_path;
}

/* find_path() -- the library row that asked for path (enum atomio_path), or NULL. */
static const struct report_row *
find_path(const struct report *rep, int path)
{
    for (unsigned i = 0; i < rep->nrows; i++)
        if (!rep->rows[i].is_baseline && rep->rows[i].requested_path == path)
            return &rep->rows[i];
    return NULL;
}

/* find_bare() -- the baseline that does the same work as a library row without the library. */
static const struct report_row *
find_bare(const struct report *rep, const struct report_row *row)
{
    int p = effective_path(row);
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *b = &rep->rows[i];
        if (!b->is_baseline)
            continue;
        int dblwr = strcmp(b->bl_kind, "dblwr") == 0;
        if ((p == ATOMIO_PATH_DOUBLEWRITE && dblwr) ||
            (p == ATOMIO_PATH_DIRECT_ATOMIC && !dblwr && b->bl_atomic) ||
            (p == ATOMIO_PATH_UNSAFE && !dblwr && !b->bl_atomic))
            return b;
    }
    return NULL;
}

static double
ratio(const struct report_row *a, const struct report_row *b)
{
    if (!a || !b)
        return NAN;
    struct agg x = row_agg(a, FIG(pages_per_s)), y = row_agg(b, FIG(pages_per_s));
    if (!x.valid || !y.valid || y.median <= 0)
        return NAN;
    return x.median / y.median;
}

static int
is_safe_path(int p)
{
    return p == ATOMIO_PATH_DIRECT_ATOMIC || p == ATOMIO_PATH_BUFFERED_ATOMIC ||
           p == ATOMIO_PATH_DOUBLEWRITE;
}

/* fastest_safe() -- the torn-safe forced path with the highest median pages/s. */
static const struct report_row *
fastest_safe(const struct report *rep)
{
    const struct report_row *best = NULL;
    double bv = -1;
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *r = &rep->rows[i];
        if (r->is_baseline || !is_safe_path(r->requested_path))
            continue;
        struct agg a = row_agg(r, FIG(pages_per_s));
        if (a.valid && a.median > bv) {
            bv = a.median;
            best = r;
        }
    }
    return best;
}

static void
display_name(const struct report_row *row, char *out, size_t len)
{
    const char *act = actual_path(row);
    if (row->is_baseline || !act || strcmp(act, row->name) == 0)
        snprintf(out, len, "%s", row->name);
    else if (row->requested_path == ATOMIO_PATH_AUTO)
        snprintf(out, len, "AUTO->%s", act);
    else
        snprintf(out, len, "%s (ran %s)", row->name, act);
}

/* ---- table ------------------------------------------------------------------------------- */

/* num() -- a figure for the table: "-" when unknown, 3 significant digits when small. */
static const char *
num(double v, char *buf, size_t len)
{
    if (!isfinite(v) || v < 0)
        snprintf(buf, len, "-");
    else if (v >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (v >= 10)
        snprintf(buf, len, "%.1f", v);
    else if (v >= 0.1 || v == 0)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.4f", v); /* syncs per page: 1/64 must not read as 0.02 */
    return buf;
}

static const char *
agg_median(const struct report_row *row, size_t off, char *buf, size_t len)
{
    struct agg a = row_agg(row, off);
    return num(a.valid ? a.median : NAN, buf, len);
}

static void
print_header(FILE *out, const struct report *rep)
{
    const struct wl_config *c = rep->c;
    char desc[400];
    wl_describe(c, desc, sizeof(desc));
    fprintf(out, "atomio-bench %s %s\n", rep->command, c->file);
    if (rep->have_caps)
        fprintf(out, "  file: %s, %s%s; direct atomic %s, buffered atomic %s; AUTO -> %s\n",
                fs_type_name(rep->caps.fs_type), fmt_bytes(c->file_size),
                rep->filled ? " (created and filled by this run)" : "",
                rep->caps.direct_atomic == ATOMIO_ATOMIC_HARDWARE   ? "hardware"
                : rep->caps.direct_atomic == ATOMIO_ATOMIC_SOFTWARE ? "software (CoW)"
                                                                    : "no",
                rep->caps.buffered_atomic ? "yes" : "no", atomio_path_name(rep->caps.auto_path));
    fprintf(out, "  workload: %s\n", desc);
    fprintf(out, "  doublewrite: %s (%s), store %s%s\n", wl_doublewrite_mode_name(c),
            c->write_behind ? "a write returns once its pages are staged in shared memory; group "
                              "commits write them to the store, then in place; copies released "
                              "by the engine's syncs or the library's forced syncs"
            : c->deferred   ? "copies released by the engine's syncs or the library's forced syncs"
                            : "every batch syncs its data files, then releases its copies",
            rep->store_bytes ? fmt_bytes(rep->store_bytes) : "default size",
            c->processes > 1 ? ", shared by every writer process (one engine instance)" : "");
    if (c->write_behind)
        fprintf(out,
                "  write-behind: staging %s; only DOUBLEWRITE (and AUTO when it picks it) "
                "stages, other paths write as deferred\n",
                c->write_behind_bytes ? fmt_bytes(c->write_behind_bytes) : "default size");
    if (rep->repeat > 1)
        fprintf(out, "  %u runs per row, interleaved; medians, pages/s with [min-max]\n",
                rep->repeat);
    fputc('\n', out);
}

static void
print_table(FILE *out, const struct report *rep)
{
    print_header(out, rep);
    const struct report_row *unsafe = find_path(rep, ATOMIO_PATH_UNSAFE);
    int any_bare = 0;
    for (unsigned i = 0; i < rep->nrows; i++)
        any_bare |= rep->rows[i].is_baseline;
    /* The write-behind columns only when the ctx was opened in that mode: other tables keep
     * their width. */
    int wb = rep->c->write_behind;
    fprintf(out, "%-24s %9s %-17s %7s %8s %8s %8s %9s %9s %9s %9s %8s %8s %6s %6s", "path",
            "pages/s", rep->repeat > 1 ? " [min-max]" : "", "MB/s", "p50 us", "p99 us", "p99.9 us",
            "batch p50", "batch p99", "dev B/pg", "store B/pg", "syncs/pg", "CPU us", "group",
            "forced");
    if (wb)
        fprintf(out, " %8s %7s %7s", "staged", "st.read", "st.now");
    fprintf(out, " %5s %9s%s\n", "procs", "vs UNSAFE", any_bare ? "  vs bare" : "");
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *r = &rep->rows[i];
        char name[64], b[16][32], range[48] = "", procs[16];
        display_name(r, name, sizeof(name));
        struct agg pps = row_agg(r, FIG(pages_per_s));
        if (!pps.valid) {
            const char *why = r->nruns ? r->runs[r->nruns - 1].errmsg : "not run";
            fprintf(out, "%-24s failed: %s\n", name, why);
            continue;
        }
        if (rep->repeat > 1)
            snprintf(range, sizeof(range), " [%.0f-%.0f]", pps.min, pps.max);
        double ru = r == unsafe ? 1.0 : ratio(r, unsafe);
        double rb = ratio(r, find_bare(rep, r));
        char rub[16] = "-", rbb[16] = "";
        if (isfinite(ru))
            snprintf(rub, sizeof(rub), "%.2fx", ru);
        if (any_bare && isfinite(rb))
            snprintf(rbb, sizeof(rbb), "  %7.2fx", rb);
        else if (any_bare)
            snprintf(rbb, sizeof(rbb), "  %8s", "-");
        /* processes: attached to the store (library), else as configured */
        struct agg att = row_agg(r, FIG(attached));
        snprintf(procs, sizeof(procs), "%u",
                 att.valid ? (unsigned)att.median : (unsigned)rep->c->processes);
        fprintf(out, "%-24s %9.0f %-17s %7s %8s %8s %8s %9s %9s %9s %9s %8s %8s %6s %6s", name,
                pps.median, range, agg_median(r, FIG(mb_per_s), b[0], 32),
                agg_median(r, FIG(lat_page_p50_us), b[1], 32),
                agg_median(r, FIG(lat_page_p99_us), b[2], 32),
                agg_median(r, FIG(lat_page_p999_us), b[3], 32),
                agg_median(r, FIG(lat_batch_p50_us), b[4], 32),
                agg_median(r, FIG(lat_batch_p99_us), b[5], 32),
                agg_median(r, FIG(device_bytes_per_page), b[6], 32),
                agg_median(r, FIG(dblwr_bytes_per_page), b[9], 32),
                agg_median(r, FIG(syncs_per_page), b[7], 32),
                agg_median(r, FIG(cpu_us_per_page), b[8], 32),
                agg_median(r, FIG(group_commit_records), b[10], 32),
                agg_median(r, FIG(forced_syncs), b[11], 32));
        if (wb)
            fprintf(out, " %8s %7s %7s", agg_median(r, FIG(pages_staged), b[12], 32),
                    agg_median(r, FIG(staged_reads), b[13], 32),
                    agg_median(r, FIG(staged_now), b[14], 32));
        fprintf(out, " %5s %9s%s\n", procs, rub, rbb);
    }
    /* Notes: AUTO's reason and fallbacks per row; then one line each for the rows whose
     * per-page latency is the library's coarse histogram, and for noisy rows. */
    fputc('\n', out);
    char hist_rows[256] = "", noisy[512] = "";
    size_t hl = 0, nl = 0;
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *r = &rep->rows[i];
        char name[64];
        display_name(r, name, sizeof(name));
        for (unsigned k = 0; k < r->nruns; k++) {
            if (r->runs[k].err)
                continue;
            if (r->runs[k].note[0])
                fprintf(out, "  %s: %s\n", name, r->runs[k].note);
            if (rep->c->verify && !r->is_baseline) {
                char staged[64] = "";
                if (r->runs[k].write_behind)
                    snprintf(staged, sizeof(staged), " (%llu served from staging)",
                             (unsigned long long)r->runs[k].verify_staged_reads);
                fprintf(out,
                        "  %s: verify: the last %llu page(s) written read back as written with "
                        "atomio_read()%s and with a plain read after the final sync\n",
                        name, (unsigned long long)r->runs[k].verified_pages, staged);
            }
            if (strcmp(r->runs[k].lat_page_source, "library-histogram") == 0 &&
                hl + 64 < sizeof(hist_rows))
                hl += (size_t)snprintf(hist_rows + hl, sizeof(hist_rows) - hl, "%s%s",
                                       hl ? ", " : "", r->name);
            break;
        }
        /* A wide spread of the repeats makes every ratio doubtful: say so plainly. */
        struct agg a = row_agg(r, FIG(pages_per_s));
        if (a.valid && rep->repeat > 1 && a.median > 0 && (a.max - a.min) / a.median > 0.25 &&
            nl + 64 < sizeof(noisy))
            nl += (size_t)snprintf(noisy + nl, sizeof(noisy) - nl, "%s%s %.0f%%", nl ? ", " : "",
                                   r->name, 100 * (a.max - a.min) / a.median);
    }
    if (hl)
        fprintf(out,
                "  per-page latency of %s: the library's log2 histogram, where every page of "
                "a batch counts the whole call (coarse)\n",
                hist_rows);
    if (nl)
        fprintf(out,
                "  warning: pages/s of %s varied (max-min over median): the machine is "
                "noisy, use more --repeat or a longer --duration\n",
                noisy);
    const struct report_row *best = fastest_safe(rep), *au = find_path(rep, ATOMIO_PATH_AUTO);
    if (best && unsafe) {
        double rs = ratio(best, unsafe);
        fprintf(out, "  fastest torn-safe path: %s", best->name);
        if (isfinite(rs))
            fprintf(out, ", %.2fx the pages/s of UNSAFE (no protection)", rs);
        fputc('\n', out);
    }
    if (best && au) {
        double ra = ratio(au, best);
        if (isfinite(ra))
            fprintf(out, "  AUTO picked %s: %.2fx the fastest torn-safe path\n",
                    actual_path(au) ? actual_path(au) : "?", ra);
    }
    fprintf(out, "  latencies in microseconds; batch = one write call plus the sync after it; "
                 "dev B/pg = bytes to data file + doublewrite store per page; store B/pg = "
                 "doublewrite store bytes per page; group = store records per store fdatasync "
                 "(group commit); forced = data-file syncs the library made itself because the "
                 "store ran full (per run); procs = writer processes (library rows: attached "
                 "to the store)\n");
    if (wb)
        fprintf(out, "  staged = writes that returned once their page was staged in shared "
                     "memory (write-behind, per run); st.read = atomio_read() calls served from "
                     "staging (the workload does not read); st.now = pages of the instance "
                     "staged, not yet in place, when measurement ended (the final sync writes "
                     "them, outside the figures)\n");
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void
json_agg(struct json *j, const char *key, struct agg a)
{
    json_obj_open(j, key);
    json_num_or_null(j, "median", a.median, a.valid);
    json_num_or_null(j, "min", a.min, a.valid);
    json_num_or_null(j, "max", a.max, a.valid);
    json_obj_close(j);
}

static void
print_json(FILE *out, const struct report *rep)
{
    struct json j;
    json_begin(&j, out, 1);
    json_obj_open(&j, NULL);
    json_str(&j, "schema", BENCH_SCHEMA);
    json_str(&j, "command", rep->command);
    json_str(&j, "tool_version", ATOMIO_VERSION_STRING);
    json_str(&j, "library_version", atomio_version_string());
    json_obj_open(&j, "config");
    json_config_fields(&j, rep->c);
    json_u64(&j, "repeat", rep->repeat);
    json_bool(&j, "interleaved", 1);
    json_str(&j, "policy", atomio_policy_name(rep->policy));
    json_str(&j, "doublewrite_dir", rep->doublewrite_dir);
    json_num_or_null(&j, "store_size_bytes", (double)rep->store_bytes, rep->store_bytes != 0);
    json_bool(&j, "write_behind", rep->c->write_behind);
    json_bool(&j, "verify", rep->c->verify);
    json_num_or_null(&j, "write_behind_bytes", (double)rep->c->write_behind_bytes,
                     rep->c->write_behind_bytes != 0);
    json_obj_close(&j);
    json_obj_open(&j, "file");
    json_bool(&j, "filled_by_tool", rep->filled);
    if (rep->have_caps) {
        json_str(&j, "fs_type", fs_type_name(rep->caps.fs_type));
        json_str(&j, "direct_atomic",
                 rep->caps.direct_atomic == ATOMIO_ATOMIC_HARDWARE   ? "hardware"
                 : rep->caps.direct_atomic == ATOMIO_ATOMIC_SOFTWARE ? "software"
                                                                     : "none");
        json_bool(&j, "buffered_atomic", rep->caps.buffered_atomic != 0);
        json_str(&j, "auto_path", atomio_path_name(rep->caps.auto_path));
        json_str(&j, "auto_reason", rep->caps.reason_auto);
    }
    json_obj_close(&j);
    const struct report_row *unsafe = find_path(rep, ATOMIO_PATH_UNSAFE);
    json_arr_open(&j, "results");
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *r = &rep->rows[i];
        json_obj_open(&j, NULL);
        json_str(&j, "name", r->name);
        json_str(&j, "kind", r->is_baseline ? "baseline" : "path");
        json_str(&j, "path_requested",
                 r->is_baseline ? NULL : atomio_path_name((uint32_t)r->requested_path));
        json_str(&j, "path_actual", actual_path(r));
        unsigned ok = 0;
        for (unsigned k = 0; k < r->nruns; k++)
            ok += !r->runs[k].err;
        json_u64(&j, "runs_ok", ok);
        json_bool(&j, "failed", r->failed);
        for (size_t f = 0; f < NFIGS; f++)
            json_agg(&j, figs[f].key, row_agg(r, figs[f].off));
        double ru = r == unsafe ? 1.0 : ratio(r, unsafe);
        json_num_or_null(&j, "ratio_to_unsafe", ru, isfinite(ru));
        const struct report_row *bare = r->is_baseline ? NULL : find_bare(rep, r);
        double rb = ratio(r, bare);
        json_str(&j, "bare_name", bare ? bare->name : NULL);
        json_num_or_null(&j, "ratio_to_bare", rb, isfinite(rb));
        json_arr_open(&j, "runs");
        for (unsigned k = 0; k < r->nruns; k++)
            json_run_record(&j, NULL, &r->runs[k], rep->c);
        json_arr_close(&j);
        json_obj_close(&j);
    }
    json_arr_close(&j);
    json_obj_open(&j, "summary");
    const struct report_row *best = fastest_safe(rep), *au = find_path(rep, ATOMIO_PATH_AUTO);
    json_str(&j, "fastest_safe_path", best ? best->name : NULL);
    double rs = ratio(best, unsafe);
    json_num_or_null(&j, "fastest_safe_ratio_to_unsafe", rs, isfinite(rs));
    json_str(&j, "auto_path", au ? actual_path(au) : NULL);
    double ra = ratio(au, best);
    json_num_or_null(&j, "auto_ratio_to_fastest_safe", ra, isfinite(ra));
    /* Largest (max - min) / median of pages/s over the rows: above ~0.25 the ratios are
     * doubtful (a noisy machine). */
    double spread = 0;
    for (unsigned i = 0; i < rep->nrows; i++) {
        struct agg a = row_agg(&rep->rows[i], FIG(pages_per_s));
        if (a.valid && a.median > 0 && (a.max - a.min) / a.median > spread)
            spread = (a.max - a.min) / a.median;
    }
    json_num(&j, "max_pages_per_s_spread", spread);
    json_obj_close(&j);
    json_obj_close(&j);
    json_end(&j);
}

/* ---- CSV --------------------------------------------------------------------------------- */

static void
csv_num(FILE *out, double v, int valid)
{
    if (valid && isfinite(v))
        fprintf(out, ",%.6g", v);
    else
        fputc(',', out);
}

static void
csv_str(FILE *out, const char *s)
{
    fputc(',', out);
    if (!s)
        return;
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void
print_csv(FILE *out, const struct report *rep)
{
    fprintf(out, "name,kind,path_actual,runs_ok");
    for (size_t f = 0; f < NFIGS; f++)
        fprintf(out, ",%s,%s_min,%s_max", figs[f].key, figs[f].key, figs[f].key);
    fprintf(out, ",ratio_to_unsafe,ratio_to_bare,error\n");
    const struct report_row *unsafe = find_path(rep, ATOMIO_PATH_UNSAFE);
    for (unsigned i = 0; i < rep->nrows; i++) {
        const struct report_row *r = &rep->rows[i];
        unsigned ok = 0;
        const char *err = NULL;
        for (unsigned k = 0; k < r->nruns; k++) {
            ok += !r->runs[k].err;
            if (r->runs[k].err)
                err = r->runs[k].errmsg;
        }
        fprintf(out, "%s,%s", r->name, r->is_baseline ? "baseline" : "path");
        csv_str(out, actual_path(r));
        fprintf(out, ",%u", ok);
        for (size_t f = 0; f < NFIGS; f++) {
            struct agg a = row_agg(r, figs[f].off);
            csv_num(out, a.median, a.valid);
            csv_num(out, a.min, a.valid);
            csv_num(out, a.max, a.valid);
        }
        double ru = r == unsafe ? 1.0 : ratio(r, unsafe);
        csv_num(out, ru, 1);
        csv_num(out, r->is_baseline ? NAN : ratio(r, find_bare(rep, r)), 1);
        csv_str(out, err);
        fputc('\n', out);
    }
}

void
report_print(FILE *out, const struct report *rep, int format)
{
    switch (format) {
    case FMT_JSON:
        print_json(out, rep);
        break;
    case FMT_CSV:
        print_csv(out, rep);
        break;
    default:
        print_table(out, rep);
        break;
    }
    fflush(out);
}
