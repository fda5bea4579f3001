/* SPDX-License-Identifier: MIT */
/*
 * json.h -- a streaming JSON writer and a reader for flat objects (json.c).
 */
#ifndef ATOMIO_BENCH_JSON_H
#define ATOMIO_BENCH_JSON_H

#include <stdint.h>
#include <stdio.h>

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

/*
 * A flat JSON object read back (baseline output): up to JSON_FLAT_MAX members, string or number
 * values. Returns 0, or -1 when the text is not a flat object or has more members. A baseline's
 * record holds every run key (record.c) and every config key: keep room for those to grow.
 */
#define JSON_FLAT_MAX 128
struct json_flat {
    unsigned n;
    char key[JSON_FLAT_MAX][48];
    char str[JSON_FLAT_MAX][256];
    double num[JSON_FLAT_MAX];
    int is_num[JSON_FLAT_MAX];
};
int json_flat_parse(const char *text, struct json_flat *out);
/* Number of member key (NAN when absent or not a number); string (NULL when absent). */
double json_flat_num(const struct json_flat *o, const char *key);
const char *json_flat_str(const struct json_flat *o, const char *key);

#endif
