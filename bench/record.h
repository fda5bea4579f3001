/* SPDX-License-Identifier: MIT */
/*
 * record.h -- the flat per-run JSON record shared by atomio-bench --json and the baselines
 * (record.c); its fields are documented in docs/benchmarks.md.
 */
#ifndef ATOMIO_BENCH_RECORD_H
#define ATOMIO_BENCH_RECORD_H

#include "json.h"
#include "workload.h"

#define BENCH_SCHEMA "atomio-bench/1"

/* The run's members as an object under key (NULL inside arrays). */
void json_run_record(struct json *j, const char *key, const struct wl_result *r,
                     const struct wl_config *c);
/* The run's members, written into the object being written. */
void json_run_fields(struct json *j, const struct wl_result *r, const struct wl_config *c);
/* The workload's knobs as members (page_size_bytes, batch, qd...). */
void json_config_fields(struct json *j, const struct wl_config *c);
/* Fill r from a flat record read back (a baseline's output). */
void wl_result_from_flat(struct wl_result *r, const struct json_flat *o);

#endif
