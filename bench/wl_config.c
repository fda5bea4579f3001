/* SPDX-License-Identifier: MIT */
/*
 * wl_config.c -- the workload options every runner accepts (run, compare and the baselines),
 * their defaults and checks, and the names and one-line summary the reports print.
 */
#include "wl_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct opt_spec wl_opt_specs[] = {
    {"page-size", 1, WO_PAGE_SIZE, "SIZE", "page size, power of two 512..1m (default 16k)"},
    {"file-size", 1, WO_FILE_SIZE, "SIZE",
     "file size (default: the file's, or 256m when it is created)"},
    {"random", 0, WO_RANDOM, NULL, "random page numbers (default)"},
    {"sequential", 0, WO_SEQUENTIAL, NULL, "ascending page numbers"},
    {"workload", 1, WO_WORKLOAD, "KIND",
     "random | sequential | checkpoint (zipfian dirty pages, sync per batch unless --sync)"},
    {"pages", 1, WO_PAGES, "N", "measure N pages per run (instead of --duration)"},
    {"duration", 1, WO_DURATION, "TIME", "measured time per run (default 5s)"},
    {"warmup", 1, WO_WARMUP, "TIME", "warm-up per run, excluded from figures (default 1s)"},
    {"batch", 1, WO_BATCH, "N", "pages per write call (default 64)"},
    {"qd", 1, WO_QD, "N", "queue depth, in-flight writes per ring (default 32)"},
    {"threads", 1, WO_THREADS, "N", "writer threads per process, each on its own pages (default 1)"},
    {"processes", 1, WO_PROCESSES, "N",
     "writer processes (default 1): each opens its own ctx on one shared store (one engine "
     "instance) and writes its own stripe of the file; figures are summed"},
    {"sync", 1, WO_SYNC, "WHEN",
     "batch (default): every batch durable, the store copy released per batch (InnoDB-like); "
     "N: also sync every N pages; every:N: deferred durability, the library releases copies "
     "when the engine syncs, every N pages per thread (checkpoint-like); deferred: never sync "
     "(copies released by the library's forced syncs); never: no syncs"},
    {"direct", 0, WO_DIRECT, NULL, "io style DIRECT (O_DIRECT, InnoDB-like)"},
    {"buffered", 0, WO_BUFFERED, NULL, "io style BUFFERED (page cache, PostgreSQL-like)"},
    {"io-style", 1, WO_IO_STYLE, "STYLE", "any (default) | buffered | direct"},
    {"submitter", 1, WO_SUBMITTER, "KIND",
     "auto (default) | uring | sync: the library's; engine: the bench's own io_uring drives "
     "the library (atomio_uring.h), up to 2 batches in flight"},
    {"zipf", 1, WO_ZIPF, "THETA", "skew of --workload checkpoint, 0..<1 (default 0.99)"},
    {"seed", 1, WO_SEED, "N", "random seed (default 1)"},
    {"no-progress", 0, WO_NO_PROGRESS, NULL, "no progress bar even on a terminal"},
    {"copy-pages", 0, WO_COPY_PAGES, NULL,
     "library writes without ATOMIO_WRITE_STABLE_PAGES: DOUBLEWRITE copies every page, as an "
     "engine whose pages may change during a write needs"},
    {NULL, 0, 0, NULL, NULL},
};

void
wl_config_defaults(struct wl_config *c)
{
    memset(c, 0, sizeof(*c));
    c->page_size = 16384;
    c->pattern = WL_RANDOM;
    c->duration_ns = 5000000000ull;
    c->warmup_ns = 1000000000ull;
    c->batch = 64;
    c->qd = 32;
    c->threads = 1;
    c->processes = 1;
    c->sync_every = WL_SYNC_BATCH;
    c->io_style = WL_IO_ANY;
    c->submitter = WL_SUBMIT_AUTO;
    c->zipf_theta = 0.99;
    c->seed = 1;
    c->progress = 1;
}

int
wl_parse_io_style(const char *s)
{
    if (strcmp(s, "any") == 0)
        return WL_IO_ANY;
    if (strcmp(s, "buffered") == 0)
        return WL_IO_BUFFERED;
    if (strcmp(s, "direct") == 0)
        return WL_IO_DIRECT;
    return -1;
}

int
wl_handle_opt(struct wl_config *c, const char *cmd, int id, const char *arg)
{
    uint64_t v;
    switch (id) {
    case WO_PAGE_SIZE:
        if (parse_page_size(arg, &c->page_size))
            usage_error(cmd, "--page-size '%s': want a power of two from 512 to 1m (e.g. 16k)",
                        arg);
        return 1;
    case WO_FILE_SIZE:
        if (parse_size(arg, &c->file_size) || c->file_size == 0)
            usage_error(cmd, "--file-size '%s': want a size such as 256m or 1g", arg);
        c->file_size_given = 1;
        return 1;
    case WO_RANDOM:
        c->pattern = WL_RANDOM;
        return 1;
    case WO_SEQUENTIAL:
        c->pattern = WL_SEQUENTIAL;
        return 1;
    case WO_WORKLOAD:
        if (strcmp(arg, "random") == 0)
            c->pattern = WL_RANDOM;
        else if (strcmp(arg, "sequential") == 0)
            c->pattern = WL_SEQUENTIAL;
        else if (strcmp(arg, "checkpoint") == 0)
            c->pattern = WL_CHECKPOINT;
        else
            usage_error(cmd, "--workload '%s': want random, sequential or checkpoint", arg);
        return 1;
    case WO_PAGES:
        if (parse_size(arg, &c->pages) || c->pages == 0)
            usage_error(cmd, "--pages '%s': want a positive count such as 100000 or 64k", arg);
        return 1;
    case WO_DURATION:
        if (parse_duration_ns(arg, &c->duration_ns) || c->duration_ns < 1000000)
            usage_error(cmd, "--duration '%s': want a time of at least 1ms such as 10s or 500ms",
                        arg);
        c->pages = 0;
        return 1;
    case WO_WARMUP:
        if (parse_duration_ns(arg, &c->warmup_ns))
            usage_error(cmd, "--warmup '%s': want a time such as 1s, 200ms or 0", arg);
        return 1;
    case WO_BATCH:
        if (parse_u32(arg, 1, 65536, &c->batch))
            usage_error(cmd, "--batch '%s': want a page count from 1 to 65536", arg);
        return 1;
    case WO_QD:
        if (parse_u32(arg, 1, 4096, &c->qd))
            usage_error(cmd, "--qd '%s': want a queue depth from 1 to 4096", arg);
        return 1;
    case WO_THREADS:
        if (parse_u32(arg, 1, 1024, &c->threads))
            usage_error(cmd, "--threads '%s': want 1 to 1024", arg);
        return 1;
    case WO_SYNC:
        c->sync_given = 1;
        c->deferred = 0;
        if (strcmp(arg, "batch") == 0) {
            c->sync_every = WL_SYNC_BATCH;
        } else if (strcmp(arg, "never") == 0 || strcmp(arg, "0") == 0) {
            c->sync_every = WL_SYNC_NEVER;
        } else if (strcmp(arg, "deferred") == 0) {
            c->sync_every = WL_SYNC_NEVER;
            c->deferred = 1;
        } else if (strncmp(arg, "every:", 6) == 0) {
            if (parse_size(arg + 6, &v) || v == 0)
                usage_error(cmd, "--sync '%s': want every:N with N a page count such as 4096",
                            arg);
            c->sync_every = v;
            c->deferred = 1;
        } else if (parse_size(arg, &v) || v == 0) {
            usage_error(cmd,
                        "--sync '%s': want batch, a page count, every:N (deferred), deferred "
                        "or never",
                        arg);
        } else {
            c->sync_every = v;
        }
        return 1;
    case WO_PROCESSES:
        if (parse_u32(arg, 1, 64, &c->processes))
            usage_error(cmd, "--processes '%s': want 1 to 64", arg);
        return 1;
    case WO_DIRECT:
        c->io_style = WL_IO_DIRECT;
        return 1;
    case WO_BUFFERED:
        c->io_style = WL_IO_BUFFERED;
        return 1;
    case WO_IO_STYLE:
        c->io_style = wl_parse_io_style(arg);
        if (c->io_style < 0)
            usage_error(cmd, "--io-style '%s': want any, buffered or direct", arg);
        return 1;
    case WO_SUBMITTER:
        if (strcmp(arg, "auto") == 0)
            c->submitter = WL_SUBMIT_AUTO;
        else if (strcmp(arg, "uring") == 0)
            c->submitter = WL_SUBMIT_URING;
        else if (strcmp(arg, "sync") == 0)
            c->submitter = WL_SUBMIT_SYNC;
        else if (strcmp(arg, "engine") == 0)
            c->submitter = WL_SUBMIT_ENGINE;
        else
            usage_error(cmd, "--submitter '%s': want auto, uring, sync or engine", arg);
        return 1;
    case WO_ZIPF: {
        char *end;
        errno = 0;
        double t = strtod(arg, &end);
        if (errno || end == arg || *end || !(t >= 0 && t < 1))
            usage_error(cmd, "--zipf '%s': want a skew in [0, 1) such as 0.99", arg);
        c->zipf_theta = t;
        return 1;
    }
    case WO_SEED:
        if (parse_u64(arg, &c->seed))
            usage_error(cmd, "--seed '%s': want a non-negative integer", arg);
        return 1;
    case WO_NO_PROGRESS:
        c->progress = 0;
        return 1;
    case WO_COPY_PAGES:
        c->copy_pages = 1;
        return 1;
    default:
        return 0;
    }
}

void
wl_check(struct wl_config *c, const char *cmd)
{
    if (c->pattern == WL_CHECKPOINT && !c->sync_given)
        c->sync_every = WL_SYNC_BATCH; /* a checkpoint cycle is a batch, then a sync */
    if (c->file_size_given) {
        if (c->file_size % c->page_size)
            usage_error(cmd, "--file-size %s is not a multiple of the page size %s",
                        fmt_bytes(c->file_size), fmt_bytes(c->page_size));
        uint64_t npages = c->file_size / c->page_size;
        if (npages < (uint64_t)c->batch * c->threads * c->processes)
            usage_error(cmd,
                        "--file-size %s holds %llu pages, fewer than batch x threads x "
                        "processes (%u x %u x %u)",
                        fmt_bytes(c->file_size), (unsigned long long)npages, c->batch, c->threads,
                        c->processes);
    }
}

const char *
wl_pattern_name(int p)
{
    switch (p) {
    case WL_RANDOM:
        return "random";
    case WL_SEQUENTIAL:
        return "sequential";
    case WL_CHECKPOINT:
        return "checkpoint";
    }
    return "?";
}

const char *
wl_io_style_name(int s)
{
    switch (s) {
    case WL_IO_ANY:
        return "any";
    case WL_IO_BUFFERED:
        return "buffered";
    case WL_IO_DIRECT:
        return "direct";
    }
    return "?";
}

const char *
wl_submitter_name(int s)
{
    switch (s) {
    case WL_SUBMIT_AUTO:
        return "auto";
    case WL_SUBMIT_URING:
        return "uring";
    case WL_SUBMIT_SYNC:
        return "sync";
    case WL_SUBMIT_ENGINE:
        return "engine";
    }
    return "?";
}

const char *
wl_sync_name(const struct wl_config *c, char *buf, size_t len)
{
    const char *d = c->write_behind ? " (deferred durability, write-behind)"
                    : c->deferred   ? " (deferred durability)"
                                    : "";
    if (c->sync_every == WL_SYNC_BATCH)
        snprintf(buf, len, "every batch%s", d);
    else if (c->sync_every == WL_SYNC_NEVER)
        snprintf(buf, len, "never%s", d);
    else
        snprintf(buf, len, "every %llu pages%s", (unsigned long long)c->sync_every, d);
    return buf;
}

const char *
wl_doublewrite_mode_name(const struct wl_config *c)
{
    if (c->write_behind)
        return "write_behind";
    return c->deferred ? "deferred" : "sync_batch";
}

void
wl_describe(const struct wl_config *c, char *out, size_t len)
{
    char sync[80], amount[64], procs[32] = "";
    if (c->processes > 1)
        snprintf(procs, sizeof(procs), " x %u processes", c->processes);
    if (c->pages)
        snprintf(amount, sizeof(amount), "%llu pages", (unsigned long long)c->pages);
    else
        snprintf(amount, sizeof(amount), "%s", fmt_duration((double)c->duration_ns / 1e9));
    char zipf[32] = "";
    if (c->pattern == WL_CHECKPOINT)
        snprintf(zipf, sizeof(zipf), " (zipf %.2f)", c->zipf_theta);
    snprintf(out, len,
             "%s%s, %s pages, batch %u, qd %u, %u thread%s%s, sync %s, io %s, submitter %s, "
             "%s, %s per run + %s warm-up",
             wl_pattern_name(c->pattern), zipf, fmt_bytes(c->page_size), c->batch, c->qd,
             c->threads, c->threads == 1 ? "" : "s", procs,
             wl_sync_name(c, sync, sizeof(sync)), wl_io_style_name(c->io_style),
             wl_submitter_name(c->submitter),
             c->copy_pages ? "pages copied by the library" : "pages stable during writes", amount,
             fmt_duration((double)c->warmup_ns / 1e9));
}
