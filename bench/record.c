/* SPDX-License-Identifier: MIT */
/*
 * record.c -- the flat per-run JSON record: written by atomio-bench --json (one per run) and by
 * each baseline (its whole output), and read back from a baseline by compare --baselines.
 * Field names are part of the documented interface (docs/benchmarks.md): never rename one.
 */
#include "record.h"

#include <math.h>
#include <stdio.h>

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
    json_u64(j, "processes", c->processes);
    if (c->sync_every == WL_SYNC_BATCH)
        json_str(j, "sync_every", "batch");
    else if (c->sync_every == WL_SYNC_NEVER)
        json_str(j, "sync_every", "never");
    else
        json_u64(j, "sync_every", c->sync_every);
    /* Library runs: when a page's doublewrite copy is released (the bare loops ignore it). */
    json_str(j, "doublewrite_mode", wl_doublewrite_mode_name(c));
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
    v = json_flat_num(o, "processes");
    r->processes = isnan(v) || v < 1 ? 1 : (uint32_t)v;
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
    json_u64(j, "processes", r->processes);
    json_u64(j, "bounce_copies", r->bounce_copies);
    json_u64(j, "forced_syncs", r->forced_syncs);
    json_u64(j, "group_commits", r->group_commits);
    json_u64(j, "group_records", r->group_records);
    json_num_or_null(j, "group_commit_records", f.group_commit_records,
                     isfinite(f.group_commit_records));
    json_u64(j, "store_bytes", r->store_bytes);
    json_u64(j, "store_bytes_used", r->store_bytes_used);
    json_u64(j, "attached", r->attached);
    json_u64(j, "pages_staged", r->pages_staged);
    json_u64(j, "staged_reads", r->staged_reads);
    json_u64(j, "staged_now", r->staged_now);
    json_u64(j, "verified_pages", r->verified_pages);
    json_u64(j, "verify_staged_reads", r->verify_staged_reads);
    if (r->err) {
        json_i64(j, "error_code", r->err);
        json_str(j, "error", r->errmsg);
    } else {
        json_str(j, "error", NULL);
    }
}
