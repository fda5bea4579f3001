/* SPDX-License-Identifier: MIT */
/*
 * json.c -- a small streaming JSON writer (the --json output and the baselines' output) and a
 * reader for flat objects (a baseline's one-object output read back by compare --baselines).
 */
#include "json.h"

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
        if (o->n >= JSON_FLAT_MAX)
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
