/* SPDX-License-Identifier: MIT */
/*
 * json.c -- a small streaming JSON writer (the --json output and the baselines' output) and a
 * reader for flat objects (a baseline's one-object output read back by compare --baselines).
 * Field names are part of the documented interface (docs/benchmarks.md): never rename one.
 */
#include "bench.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void
json_begin(struct json *j, FILE *out, int pretty)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
    j->pretty = pretty;
    j->first[0] = 1;
}

static void
indent(struct json *j)
{
    if (!j->pretty)
        return;
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

static void
put_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* member() -- comma, newline+indent and "key": before a value. */
static void
member(struct json *j, const char *key)
{
    if (j->depth > 0) {
        if (!j->first[j->depth])
            fputc(',', j->out);
        j->first[j->depth] = 0;
        indent(j);
    }
    if (key) {
        put_string(j->out, key);
        fputs(j->pretty ? ": " : ":", j->out);
    }
}

static void
open_(struct json *j, const char *key, char c)
{
    member(j, key);
    fputc(c, j->out);
    if (j->depth < 15)
        j->depth++;
    j->first[j->depth] = 1;
}

static void
close_(struct json *j, char c)
{
    int empty = j->first[j->depth];
    j->depth--;
    if (!empty)
        indent(j);
    fputc(c, j->out);
}

void
json_obj_open(struct json *j, const char *key)
{
    open_(j, key, '{');
}

void
json_obj_close(struct json *j)
{
    close_(j, '}');
}

void
json_arr_open(struct json *j, const char *key)
{
    open_(j, key, '[');
}

void
json_arr_close(struct json *j)
{
    close_(j, ']');
}

void
json_str(struct json *j, const char *key, const char *v)
{
    member(j, key);
    if (v)
        put_string(j->out, v);
    else
        fputs("null", j->out);
}

void
json_num_or_null(struct json *j, const char *key, double v, int valid)
{
    member(j, key);
    if (!valid || !isfinite(v))
        fputs("null", j->out);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(j->out, "%.0f", v);
    else
        fprintf(j->out, "%.6g", v);
}

void
json_num(struct json *j, const char *key, double v)
{
    json_num_or_null(j, key, v, 1);
}

void
json_u64(struct json *j, const char *key, uint64_t v)
{
    member(j, key);
    fprintf(j->out, "%llu", (unsigned long long)v);
}

void
json_i64(struct json *j, const char *key, int64_t v)
{
    member(j, key);
    fprintf(j->out, "%lld", (long long)v);
}

void
json_bool(struct json *j, const char *key, int v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->out);
}

void
json_end(struct json *j)
{
    fputc('\n', j->out);
    fflush(j->out);
}

void
json_run_record(struct json *j, const char *key, const struct wl_result *r,
                const struct wl_config *c)
{
    json_obj_open(j, key);
    json_run_fields(j, r, c);
    json_obj_close(j);
}

void
json_config_fields(struct json *j, const struct wl_config *c)
{
    json_str(j, "file", c->file);
    json_u64(j, "file_size_bytes", c->file_size);
    json_u64(j, "page_size_bytes", c->page_size);
    json_str(j, "workload", wl_pattern_name(c->pattern));
    json_num_or_null(j, "zipf_theta", c->zipf_theta, c->pattern == WL_CHECKPOINT);
    json_num_or_null(j, "pages_per_run", (double)c->pages, c->pages != 0);
    json_num_or_null(j, "duration_s", (double)c->duration_ns / 1e9, c->pages == 0);
    json_num(j, "warmup_s", (double)c->warmup_ns / 1e9);
    json_u64(j, "batch_pages", c->batch);
    json_u64(j, "qd", c->qd);
    json_u64(j, "threads", c->threads);
    if (c->sync_every == WL_SYNC_BATCH)
        json_str(j, "sync_every", "batch");
    else if (c->sync_every == WL_SYNC_NEVER)
        json_str(j, "sync_every", "never");
    else
        json_u64(j, "sync_every", c->sync_every);
    json_str(j, "io_style", wl_io_style_name(c->io_style));
    json_str(j, "submitter_requested", wl_submitter_name(c->submitter));
    json_bool(j, "stable_pages", !c->copy_pages);
    json_u64(j, "seed", c->seed);
}

void
wl_result_from_flat(struct wl_result *r, const struct json_flat *o)
{
    const char *s;
    double v;
    if ((s = json_flat_str(o, "name")))
        snprintf(r->name, sizeof(r->name), "%s", s);
    if ((s = json_flat_str(o, "submitter")))
        snprintf(r->submitter, sizeof(r->submitter), "%s", s);
    if ((s = json_flat_str(o, "note")))
        snprintf(r->note, sizeof(r->note), "%s", s);
    v = json_flat_num(o, "o_direct");
    r->o_direct = isnan(v) ? -1 : (int)v;
#define U64(k, f)                                                                                  \
    do {                                                                                           \
        v = json_flat_num(o, k);                                                                   \
        r->f = isnan(v) ? 0 : (uint64_t)v;                                                         \
    } while (0)
    U64("qd_effective", qd_effective);
    U64("pages", pages);
    U64("batches", batches);
    U64("bytes_data", bytes_data);
    U64("bytes_doublewrite", bytes_doublewrite);
    U64("dev_syncs", dev_syncs);
#undef U64
    v = json_flat_num(o, "elapsed_s");
    r->elapsed_s = isnan(v) ? 0 : v;
    static const char *const pk[4] = {"lat_page_p50_us", "lat_page_p99_us", "lat_page_p999_us",
                                      "lat_page_max_us"};
    static const char *const bk[3] = {"lat_batch_p50_us", "lat_batch_p99_us", "lat_batch_p999_us"};
    for (int i = 0; i < 4; i++) {
        v = json_flat_num(o, pk[i]);
        r->lat_page_q[i] = isnan(v) ? -1 : v;
    }
    for (int i = 0; i < 3; i++) {
        v = json_flat_num(o, bk[i]);
        r->lat_batch_q[i] = isnan(v) ? -1 : v;
    }
    r->lat_page_source = r->lat_page_q[0] >= 0 ? "measured" : "none";
    v = json_flat_num(o, "cpu_user_s");
    r->cpu_user_s = isnan(v) ? 0 : v;
    v = json_flat_num(o, "cpu_sys_s");
    r->cpu_sys_s = isnan(v) ? 0 : v;
    if ((s = json_flat_str(o, "error"))) {
        v = json_flat_num(o, "error_code");
        r->err = isnan(v) || v == 0 ? -1 : (int)v;
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", s);
    }
}

void
json_run_fields(struct json *j, const struct wl_result *r, const struct wl_config *c)
{
    struct wl_figures f;
    wl_figures_of(r, c->page_size, &f);
    json_str(j, "name", r->name);
    json_str(j, "path_actual", r->path_actual[0] ? r->path_actual : NULL);
    json_str(j, "submitter", r->submitter[0] ? r->submitter : NULL);
    json_num_or_null(j, "o_direct", r->o_direct, r->o_direct >= 0);
    json_u64(j, "qd_effective", r->qd_effective);
    json_u64(j, "pages", r->pages);
    json_u64(j, "batches", r->batches);
    json_num(j, "elapsed_s", r->elapsed_s);
    json_num(j, "pages_per_s", f.pages_per_s);
    json_num(j, "mb_per_s", f.mb_per_s);
    json_str(j, "lat_page_source", r->lat_page_source);
    json_num_or_null(j, "lat_page_p50_us", f.lat_page_p50_us, f.lat_page_p50_us >= 0);
    json_num_or_null(j, "lat_page_p99_us", f.lat_page_p99_us, f.lat_page_p99_us >= 0);
    json_num_or_null(j, "lat_page_p999_us", f.lat_page_p999_us, f.lat_page_p999_us >= 0);
    json_num_or_null(j, "lat_page_max_us", f.lat_page_max_us, f.lat_page_max_us >= 0);
    json_num_or_null(j, "lat_batch_p50_us", f.lat_batch_p50_us, f.lat_batch_p50_us >= 0);
    json_num_or_null(j, "lat_batch_p99_us", f.lat_batch_p99_us, f.lat_batch_p99_us >= 0);
    json_num_or_null(j, "lat_batch_p999_us", f.lat_batch_p999_us, f.lat_batch_p999_us >= 0);
    json_num(j, "device_bytes_per_page", f.device_bytes_per_page);
    json_num(j, "data_bytes_per_page", f.data_bytes_per_page);
    json_num(j, "dblwr_bytes_per_page", f.dblwr_bytes_per_page);
    json_num(j, "syncs_per_page", f.syncs_per_page);
    json_num(j, "cpu_us_per_page", f.cpu_us_per_page);
    json_num(j, "cpu_user_s", r->cpu_user_s);
    json_num(j, "cpu_sys_s", r->cpu_sys_s);
    json_str(j, "note", r->note[0] ? r->note : NULL);
    json_u64(j, "bytes_data", r->bytes_data);
    json_u64(j, "bytes_doublewrite", r->bytes_doublewrite);
    json_u64(j, "dev_syncs", r->dev_syncs);
    if (r->err) {
        json_i64(j, "error_code", r->err);
        json_str(j, "error", r->errmsg);
    } else {
        json_str(j, "error", NULL);
    }
}

/* ---- flat object reader ----------------------------------------------------------------- */

static const char *
skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* read_string() -- a JSON string into out (escapes decoded; \u as '?'). */
static const char *
read_string(const char *p, char *out, size_t len)
{
    if (*p != '"')
        return NULL;
    p++;
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'u':
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*p++))
                        return NULL;
                c = '?';
                break;
            case '\0':
                return NULL;
            default:
                break;
            }
        }
        if (n + 1 < len)
            out[n++] = c;
    }
    if (*p != '"')
        return NULL;
    out[n] = '\0';
    return p + 1;
}

int
json_flat_parse(const char *text, struct json_flat *o)
{
    memset(o, 0, sizeof(*o));
    const char *p = skip_ws(text);
    if (*p++ != '{')
        return -1;
    p = skip_ws(p);
    if (*p == '}')
        return 0;
    for (;;) {
        if (o->n >= 64)
            return -1;
        unsigned i = o->n;
        p = read_string(skip_ws(p), o->key[i], sizeof(o->key[i]));
        if (!p)
            return -1;
        p = skip_ws(p);
        if (*p++ != ':')
            return -1;
        p = skip_ws(p);
        if (*p == '"') {
            p = read_string(p, o->str[i], sizeof(o->str[i]));
            if (!p)
                return -1;
        } else if (strncmp(p, "null", 4) == 0) {
            p += 4;
            o->num[i] = NAN;
        } else if (strncmp(p, "true", 4) == 0) {
            p += 4;
            o->num[i] = 1;
            o->is_num[i] = 1;
        } else if (strncmp(p, "false", 5) == 0) {
            p += 5;
            o->num[i] = 0;
            o->is_num[i] = 1;
        } else {
            char *end;
            o->num[i] = strtod(p, &end);
            if (end == p)
                return -1;
            o->is_num[i] = 1;
            p = end;
        }
        o->n++;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}')
            return *skip_ws(p + 1) == '\0' ? 0 : -1;
        return -1;
    }
}

double
json_flat_num(const struct json_flat *o, const char *key)
{
    for (unsigned i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->is_num[i] ? o->num[i] : NAN;
    return NAN;
}

const char *
json_flat_str(const struct json_flat *o, const char *key)
{
    for (unsigned i = 0; i < o->n; i++) {
        if (strcmp(o->key[i], key) != 0)
            continue;
        if (o->is_num[i] || isnan(o->num[i])) /* a number or null */
            return NULL;
        return o->str[i];
    }
    return NULL;
}
