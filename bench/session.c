/* SPDX-License-Identifier: MIT */
/*
 * session.c -- what `run` and `compare` share: their options, preparing the file and the
 * doublewrite directory, running rows (library paths through lib_run(), baselines by exec'ing
 * the bare programs and reading their one JSON object back), repeats interleaved so that noise
 * hits every row alike, and the final report.
 */
#include "session.h"

#include "args.h"
#include "progress.h"
#include "record.h"
#include "runner_ring.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const struct opt_spec session_specs[] = {
    {"path", 1, SO_PATH, "PATH", "auto (default) | direct | buffered | doublewrite | unsafe"},
    {"paths", 1, SO_PATHS, "LIST",
     "comma-separated paths (default: every path the file can do, plus UNSAFE)"},
    {"repeat", 1, SO_REPEAT, "N", "runs per path, interleaved; median shown (default 3)"},
    {"baselines", 0, SO_BASELINES, NULL,
     "also run the bare loops without the library (atomio-baseline-*)"},
    {"policy", 1, SO_POLICY, "POLICY", "AUTO's policy: fast (default) | atomic | calibrate"},
    {"dblwr-dir", 1, SO_DBLWR_DIR, "DIR",
     "doublewrite store directory (default FILE.atomio-dblwr, removed after)"},
    {"store-size", 1, SO_STORE_SIZE, "SIZE",
     "doublewrite store capacity (atomio_ctx_opts.doublewrite_store_bytes; default the "
     "library's, 128m)"},
    {"write-behind", 0, SO_WRITE_BEHIND, NULL,
     "ctx in ATOMIO_DOUBLEWRITE_WRITE_BEHIND mode: a doublewrite returns once its page is "
     "staged in the instance's shared memory, group commits write it later. Needs a deferred "
     "--sync (every:N, deferred or never). Affects only the DOUBLEWRITE path (and AUTO when "
     "it picks it); the other paths and the bare loops run as without it"},
    {"write-behind-size", 1, SO_WRITE_BEHIND_SIZE, "SIZE",
     "with --write-behind: the shared staging size (atomio_ctx_opts.write_behind_bytes; "
     "default the library's, store size / 16 within 1m..16m)"},
    {"verify", 0, SO_VERIFY, NULL,
     "after each library run, read back every thread's last batch: with atomio_read() before "
     "the final sync (under --write-behind it must see staged pages), then with a plain read "
     "after it; a difference fails the run"},
    {"json", 0, SO_JSON, NULL, "one JSON object on stdout (fields: docs/benchmarks.md)"},
    {"csv", 0, SO_CSV, NULL, "CSV on stdout: a header line, one line per path"},
    {"svg", 1, SO_SVG, "FILE", "also write a self-contained SVG chart to FILE"},
    {"help", 0, SO_HELP, NULL, "this help"},
    {NULL, 0, 0, NULL, NULL},
};

static struct opt_spec all_specs[64];

static const struct opt_spec *
specs_for(int is_compare)
{
    size_t n = 0;
    for (const struct opt_spec *s = wl_opt_specs; s->name; s++)
        all_specs[n++] = *s;
    for (const struct opt_spec *s = session_specs; s->name; s++) {
        if (!is_compare && (s->id == SO_PATHS || s->id == SO_REPEAT || s->id == SO_BASELINES))
            continue;
        if (is_compare && s->id == SO_PATH)
            continue;
        all_specs[n++] = *s;
    }
    all_specs[n].name = NULL;
    return all_specs;
}

void
session_help(int is_compare)
{
    if (is_compare)
        printf("usage: atomio-bench compare FILE [options]\n\n"
               "Run the same workload through every write path FILE can do (AUTO, DIRECT_ATOMIC,\n"
               "BUFFERED_ATOMIC, DOUBLEWRITE as available) plus UNSAFE, one after another on the\n"
               "same file, each --repeat times interleaved, and print the medians side by side\n"
               "with min-max and each path's ratio to UNSAFE. FILE is created and filled first\n"
               "if missing.\n\n");
    else
        printf("usage: atomio-bench run FILE [options]\n\n"
               "Run one workload through one write path (--path, default AUTO) on FILE and print\n"
               "throughput, latency, device bytes, syncs and CPU per page. FILE is created and\n"
               "filled first if missing. Warm-up is excluded from every figure.\n\n");
    printf("workload:\n");
    opt_print_help(stdout, wl_opt_specs);
    printf("\n%s and output:\n", is_compare ? "compare" : "run");
    const struct opt_spec *all = specs_for(is_compare);
    opt_print_help(stdout, all + opt_specs_count(wl_opt_specs));
    printf("\nsizes: 4k 16k 1m 1g (binary); times: 500ms 10s 2m; exit status: 0 ok, 1 runtime\n"
           "error, 2 usage error. See atomio-bench(1).\n");
}

/* parse_paths() -- "auto,doublewrite,unsafe" into s->paths; usage error on a bad name. */
static void
parse_paths(struct session *s, const char *cmd, const char *arg)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", arg);
    s->npaths = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int p = parse_path_name(tok);
        if (p < 0)
            usage_error(cmd,
                        "--paths: unknown path '%s' (auto, direct, buffered, doublewrite, "
                        "unsafe)",
                        tok);
        if (s->npaths >= BENCH_NPATHS)
            usage_error(cmd, "--paths: at most %d paths", BENCH_NPATHS);
        for (unsigned i = 0; i < s->npaths; i++)
            if (s->paths[i] == p)
                usage_error(cmd, "--paths: '%s' given twice", tok);
        s->paths[s->npaths++] = p;
    }
    if (!s->npaths)
        usage_error(cmd, "--paths: empty list");
    s->paths_given = 1;
}

/*
 * check_engine() -- --submitter engine drives the library through the bench's own ring: it
 * needs liburing, and neither stages pages in the library (--write-behind) nor keeps its last
 * pages for --verify.
 */
static void
check_engine(const struct wl_config *c, const char *cmd)
{
    if (c->submitter != WL_SUBMIT_ENGINE)
        return;
    if (!ring_supported())
        usage_error(cmd, "--submitter engine: this atomio-bench was built without liburing "
                         "(apt-get install liburing-dev, then rebuild)");
    if (c->write_behind)
        usage_error(cmd, "--submitter engine writes every batch through the engine's ring; "
                         "--write-behind stages pages inside the library: pick one");
    if (c->verify)
        usage_error(cmd, "--verify reads back the pages the library runner keeps; the engine "
                         "ring's pages are copied and freed as its batches finish");
}

/*
 * check_write_behind() -- --write-behind is deferred durability: a page returns once staged and
 * reaches its file at a later group commit, so a sync after every batch (--sync batch, the
 * default, or --sync N) would flush the staging on every call and measure nothing the mode
 * does. It needs a deferred --sync; --write-behind-size means nothing without it.
 */
static void
check_write_behind(struct wl_config *c, const char *cmd)
{
    if (!c->write_behind) {
        if (c->write_behind_bytes)
            usage_error(cmd, "--write-behind-size needs --write-behind");
        return;
    }
    if (c->sync_every == WL_SYNC_BATCH)
        usage_error(cmd,
                    "--write-behind defers durability, but --sync batch%s makes every batch "
                    "durable: use --sync every:N, --sync deferred or --sync never",
                    c->sync_given ? "" : " (the default)");
    if (!c->deferred && c->sync_every != WL_SYNC_NEVER)
        usage_error(cmd,
                    "--write-behind defers durability, but --sync %llu makes every batch durable "
                    "(and syncs every %llu pages): use --sync every:%llu for deferred syncs",
                    (unsigned long long)c->sync_every, (unsigned long long)c->sync_every,
                    (unsigned long long)c->sync_every);
    if (c->write_behind_bytes && c->write_behind_bytes < c->page_size)
        usage_error(cmd, "--write-behind-size %s is smaller than one page (%s)",
                    fmt_bytes(c->write_behind_bytes), fmt_bytes(c->page_size));
    c->deferred = 1; /* --sync never: as deferred; the final sync flushes the staging */
}

void
session_parse(struct session *s, int is_compare, int argc, char **argv)
{
    const char *cmd = is_compare ? "compare" : "run";
    memset(s, 0, sizeof(*s));
    wl_config_defaults(&s->c);
    s->is_compare = is_compare;
    s->cmd = cmd;
    s->path = ATOMIO_PATH_AUTO;
    s->policy = ATOMIO_POLICY_PREFER_FAST;
    s->repeat = is_compare ? 3 : 1;
    s->format = FMT_TABLE;
    struct opt_iter it;
    opt_init(&it, cmd, specs_for(is_compare), argc, argv);
    int id, p;
    uint32_t n;
    while ((id = opt_next(&it)) >= 0) {
        if (wl_handle_opt(&s->c, cmd, id, it.arg))
            continue;
        switch (id) {
        case 0:
            if (s->c.file)
                usage_error(cmd, "one FILE only (got '%s' and '%s')", s->c.file, it.arg);
            s->c.file = it.arg;
            break;
        case SO_HELP:
            session_help(is_compare);
            exit(BENCH_EXIT_OK);
        case SO_PATH:
            p = parse_path_name(it.arg);
            if (p < 0)
                usage_error(cmd, "--path '%s': want auto, direct, buffered, doublewrite or unsafe",
                            it.arg);
            s->path = (uint32_t)p;
            break;
        case SO_PATHS:
            parse_paths(s, cmd, it.arg);
            break;
        case SO_REPEAT:
            if (parse_u32(it.arg, 1, MAX_REPEATS, &n))
                usage_error(cmd, "--repeat '%s': want 1 to %d", it.arg, MAX_REPEATS);
            s->repeat = n;
            break;
        case SO_BASELINES:
            s->baselines = 1;
            break;
        case SO_POLICY:
            p = parse_policy_name(it.arg);
            if (p < 0)
                usage_error(cmd, "--policy '%s': want fast, atomic or calibrate", it.arg);
            s->policy = (uint32_t)p;
            break;
        case SO_DBLWR_DIR:
            snprintf(s->doublewrite_dir, sizeof(s->doublewrite_dir), "%s", it.arg);
            break;
        case SO_JSON:
        case SO_CSV:
            if (s->format != FMT_TABLE)
                usage_error(cmd, "--json and --csv exclude each other");
            s->format = id == SO_JSON ? FMT_JSON : FMT_CSV;
            break;
        case SO_SVG:
            s->svg = it.arg;
            break;
        case SO_STORE_SIZE:
            if (parse_size(it.arg, &s->store_bytes) || s->store_bytes == 0)
                usage_error(cmd, "--store-size '%s': want a size such as 128m or 1g", it.arg);
            break;
        case SO_WRITE_BEHIND:
            s->c.write_behind = 1;
            break;
        case SO_VERIFY:
            s->c.verify = 1;
            break;
        case SO_WRITE_BEHIND_SIZE:
            if (parse_size(it.arg, &s->c.write_behind_bytes) || s->c.write_behind_bytes == 0)
                usage_error(cmd, "--write-behind-size '%s': want a size such as 4m or 512k",
                            it.arg);
            break;
        }
    }
    if (!s->c.file)
        usage_error(cmd, "missing FILE (created and filled if it does not exist)");
    wl_check(&s->c, cmd);
    check_write_behind(&s->c, cmd);
    check_engine(&s->c, cmd);
}

/* ---- rows -------------------------------------------------------------------------------- */

static struct report_row *
add_row(struct session *s, const char *name, int path, int baseline)
{
    struct report_row *r = &s->rows[s->nrows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->requested_path = path;
    r->is_baseline = baseline;
    return r;
}

/* baseline_exe() -- the program atomio-baseline-KIND: in $ATOMIO_BENCH_BASELINE_DIR, the
 * directory of this executable (build tree, or bin when installed there), or ../libexec/atomio. */
static int
baseline_exe(const char *kind, char *out, size_t len)
{
    const char *env = getenv("ATOMIO_BENCH_BASELINE_DIR");
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        n = 0;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    const char *cands[3] = {env, self, NULL};
    char libexec[PATH_MAX + 32];
    snprintf(libexec, sizeof(libexec), "%s/../libexec/atomio", self);
    cands[2] = libexec;
    for (int i = 0; i < 3; i++) {
        if (!cands[i] || !*cands[i])
            continue;
        /* Joined by hand: snprintf here trips -Wformat-truncation at -O2. */
        const char *mid = "/atomio-baseline-";
        size_t a = strlen(cands[i]), b = strlen(mid), c = strlen(kind);
        if (a + b + c + 1 > len)
            continue;
        memcpy(out, cands[i], a);
        memcpy(out + a, mid, b);
        memcpy(out + a + b, kind, c + 1);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

/* plan_baselines() -- which bare loops mirror the library rows of this comparison. */
static void
plan_baselines(struct session *s)
{
    char exe[PATH_MAX];
    const char *plain = "uring";
    if (s->c.submitter == WL_SUBMIT_SYNC || baseline_exe("uring", exe, sizeof(exe)) != 0)
        plain = "pwritev2";
    char name[48];
    snprintf(name, sizeof(name), "bare-%s", plain);
    struct report_row *r = add_row(s, name, -1, 1);
    snprintf(r->bl_kind, sizeof(r->bl_kind), "%s", plain);
    if (s->have_caps && s->caps.direct_atomic != ATOMIO_ATOMIC_NONE &&
        s->c.io_style != WL_IO_BUFFERED) {
        snprintf(name, sizeof(name), "bare-%s-atomic", plain);
        r = add_row(s, name, -1, 1);
        snprintf(r->bl_kind, sizeof(r->bl_kind), "%s", plain);
        r->bl_atomic = 1;
    }
    r = add_row(s, "bare-dblwr", -1, 1);
    snprintf(r->bl_kind, sizeof(r->bl_kind), "dblwr");
}

/* run_baseline() -- exec the bare program with the same knobs and read its JSON back. */
static int
run_baseline(struct session *s, struct report_row *row, struct wl_result *r)
{
    char exe[PATH_MAX];
    snprintf(r->name, sizeof(r->name), "%s", row->name);
    if (baseline_exe(row->bl_kind, exe, sizeof(exe)) != 0) {
        r->err = -ENOENT;
        snprintf(r->errmsg, sizeof(r->errmsg),
                 "atomio-baseline-%s not found next to atomio-bench (set "
                 "ATOMIO_BENCH_BASELINE_DIR)",
                 row->bl_kind);
        return r->err;
    }
    const struct wl_config *c = &s->c;
    char a[20][64];
    char *argv[48];
    int n = 0, k = 0;
#define ARG(...) (snprintf(a[k], sizeof(a[k]), __VA_ARGS__), argv[n++] = a[k++])
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s", c->file);
    argv[n++] = exe;
    argv[n++] = file;
    ARG("--page-size=%u", c->page_size);
    ARG("--file-size=%llu", (unsigned long long)c->file_size);
    ARG("--workload=%s", wl_pattern_name(c->pattern));
    ARG("--zipf=%.17g", c->zipf_theta);
    if (c->pages)
        ARG("--pages=%llu", (unsigned long long)c->pages);
    else
        ARG("--duration=%lluns", (unsigned long long)c->duration_ns);
    ARG("--warmup=%lluns", (unsigned long long)c->warmup_ns);
    ARG("--batch=%u", c->batch);
    ARG("--qd=%u", c->qd);
    ARG("--threads=%u", c->threads);
    ARG("--processes=%u", c->processes);
    /* The bare loops sync on the same cadence; deferred durability is the library's. */
    if (c->sync_every == WL_SYNC_BATCH)
        ARG("--sync=batch");
    else if (c->sync_every == WL_SYNC_NEVER)
        ARG("--sync=%s", c->deferred ? "deferred" : "never");
    else
        ARG("--sync=%s%llu", c->deferred ? "every:" : "", (unsigned long long)c->sync_every);
    ARG("--io-style=%s", wl_io_style_name(c->io_style));
    ARG("--submitter=%s", wl_submitter_name(c->submitter));
    ARG("--seed=%llu", (unsigned long long)c->seed);
    if (c->copy_pages)
        ARG("--copy-pages"); /* the bare loops copy anyway; it keeps their config record equal */
#undef ARG
    argv[n++] = "--no-progress";
    argv[n++] = "--json";
    if (row->bl_atomic)
        argv[n++] = "--atomic";
    argv[n] = NULL;

    int pfd[2];
    if (pipe(pfd) != 0)
        return r->err = -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        r->err = -rc;
        snprintf(r->errmsg, sizeof(r->errmsg), "spawn %.180s: %s", exe, strerror(rc));
        return r->err;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(pfd[0], buf + len, cap - 1 - len)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        len += (size_t)got;
        if (len + 1 >= cap)
            break;
    }
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!buf)
        return r->err = -ENOMEM;
    buf[len] = '\0';
    struct json_flat *o = malloc(sizeof(*o));
    if (o && json_flat_parse(buf, o) == 0) {
        wl_result_from_flat(r, o);
        snprintf(r->name, sizeof(r->name), "%s", row->name);
    } else if (!r->err) {
        r->err = -EPROTO;
        snprintf(r->errmsg, sizeof(r->errmsg), "%.180s %s (no result object)", exe,
                 WIFEXITED(st) ? "exited without a result" : "was killed");
    }
    if (!r->err && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        r->err = -EPROTO;
        snprintf(r->errmsg, sizeof(r->errmsg), "%.180s exit status %d", exe,
                 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    free(o);
    free(buf);
    return r->err;
}

int
session_setup(struct session *s)
{
    int filled = 0;
    int rc = wl_prepare_file(&s->c, &filled);
    if (rc < 0) {
        runtime_error(s->cmd, "%s: cannot create or fill: %s", s->c.file, strerror(-rc));
        return BENCH_EXIT_RUNTIME;
    }
    s->filled = filled;
    if (s->c.file_size / s->c.page_size / s->c.threads / s->c.processes < s->c.batch)
        usage_error(s->cmd,
                    "%s holds %llu pages, fewer than batch x threads x processes (%u x %u x %u)",
                    s->c.file, (unsigned long long)(s->c.file_size / s->c.page_size),
                    s->c.batch, s->c.threads, s->c.processes);
    s->caps.size = sizeof(s->caps);
    s->have_caps = atomio_probe(s->c.file, s->c.page_size, &s->caps) == 0;
    if (!s->doublewrite_dir[0])
        lib_default_dblwr_dir(s->c.file, s->doublewrite_dir, sizeof(s->doublewrite_dir));
    struct stat st;
    if (stat(s->doublewrite_dir, &st) != 0) {
        /* Made here (the library may require it to exist), removed at the end. */
        if (mkdir(s->doublewrite_dir, 0700) != 0) {
            runtime_error(s->cmd, "--dblwr-dir %s: %s", s->doublewrite_dir, strerror(errno));
            return BENCH_EXIT_RUNTIME;
        }
        s->dblwr_created = 1;
    }
    if (getenv("ATOMIO_PATH") && *getenv("ATOMIO_PATH"))
        fprintf(stderr,
                "atomio-bench: %s: warning: ATOMIO_PATH=%s overrides the paths asked "
                "for; see each row's actual path\n",
                s->cmd, getenv("ATOMIO_PATH"));

    if (!s->is_compare) {
        add_row(s, atomio_path_name(s->path), (int)s->path, 0);
        return 0;
    }
    if (!s->paths_given) {
        /* Every path the file can do for this io style, plus UNSAFE. */
        s->paths[s->npaths++] = ATOMIO_PATH_AUTO;
        if (!s->have_caps ||
            (s->caps.direct_atomic != ATOMIO_ATOMIC_NONE && s->c.io_style != WL_IO_BUFFERED))
            s->paths[s->npaths++] = ATOMIO_PATH_DIRECT_ATOMIC;
        if (s->have_caps && s->caps.buffered_atomic && s->c.io_style != WL_IO_DIRECT)
            s->paths[s->npaths++] = ATOMIO_PATH_BUFFERED_ATOMIC;
        s->paths[s->npaths++] = ATOMIO_PATH_DOUBLEWRITE;
        s->paths[s->npaths++] = ATOMIO_PATH_UNSAFE;
    }
    for (unsigned i = 0; i < s->npaths; i++)
        add_row(s, atomio_path_name((uint32_t)s->paths[i]), s->paths[i], 0);
    if (s->baselines)
        plan_baselines(s);
    return 0;
}

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

int
session_execute(struct session *s)
{
    double per_run = s->c.pages ? 0 : (double)(s->c.warmup_ns + s->c.duration_ns) / 1e9;
    unsigned total = s->nrows * s->repeat;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    struct progress *prog = progress_start(s->c.progress, total, per_run);
    int failures = 0;
    struct lib_opts lo = {.policy = s->policy,
                          .doublewrite_dir = s->doublewrite_dir,
                          .store_bytes = s->store_bytes};
    if (s->c.processes > 1) {
        /* One engine instance: every writer process opens the store under this name. */
        snprintf(s->instance, sizeof(s->instance), "atomio-bench-%ld", (long)getpid());
        lo.instance = s->instance;
    }
    /* Interleaved: repeat 1 of every row, then repeat 2 of every row... */
    for (unsigned rep = 0; rep < s->repeat && !interrupted; rep++) {
        for (unsigned i = 0; i < s->nrows && !interrupted; i++) {
            struct report_row *row = &s->rows[i];
            if (row->failed)
                continue; /* a path that failed once fails again: do not waste the time */
            struct wl_result *r = &row->runs[row->nruns];
            if (wl_result_alloc(r) != 0) {
                runtime_error(s->cmd, "out of memory");
                return BENCH_EXIT_RUNTIME;
            }
            char label[64];
            if (s->repeat > 1)
                snprintf(label, sizeof(label), "%s #%u", row->name, rep + 1);
            else
                snprintf(label, sizeof(label), "%s", row->name);
            progress_run_begin(prog, label, s->c.pages, per_run);
            int rc;
            if (row->is_baseline) {
                rc = run_baseline(s, row, r);
            } else {
                lo.path = (uint32_t)row->requested_path;
                if (s->c.processes > 1)
                    rc = lib_run_processes(&s->c, &lo, r);
                else
                    rc = lib_run(&s->c, &lo, r, progress_add_pages, prog);
            }
            progress_run_end(prog);
            wl_figures_of(r, s->c.page_size, &row->fig[row->nruns]);
            row->nruns++;
            if (rc) {
                row->failed = 1;
                failures++;
            }
        }
    }
    progress_stop(prog);
    sigaction(SIGINT, &old, NULL);
    if (interrupted)
        fprintf(stderr, "atomio-bench: %s: interrupted; reporting the runs done so far\n", s->cmd);
    return failures;
}

int
session_finish(struct session *s, int failures)
{
    struct report rep;
    memset(&rep, 0, sizeof(rep));
    rep.command = s->cmd;
    rep.c = &s->c;
    rep.doublewrite_dir = s->doublewrite_dir;
    rep.store_bytes = s->store_bytes;
    rep.policy = s->policy;
    rep.repeat = s->repeat;
    rep.filled = s->filled;
    rep.have_caps = s->have_caps;
    rep.caps = s->caps;
    rep.nrows = s->nrows;
    rep.rows = s->rows;
    report_print(stdout, &rep, s->format);
    int exit_code = failures || interrupted ? BENCH_EXIT_RUNTIME : BENCH_EXIT_OK;
    for (unsigned i = 0; i < s->nrows; i++) {
        struct report_row *row = &s->rows[i];
        for (unsigned k = 0; k < row->nruns; k++) {
            if (row->runs[k].err)
                runtime_error(s->cmd, "%s: %s", row->name, row->runs[k].errmsg);
        }
    }
    if (s->svg) {
        int rc = report_svg(s->svg, &rep);
        if (rc < 0) {
            runtime_error(s->cmd, "--svg %s: %s", s->svg, strerror(-rc));
            exit_code = BENCH_EXIT_RUNTIME;
        }
    }
    for (unsigned i = 0; i < s->nrows; i++)
        for (unsigned k = 0; k < s->rows[i].nruns; k++)
            wl_result_free(&s->rows[i].runs[k]);
    if (s->dblwr_created)
        lib_remove_dblwr_dir(s->doublewrite_dir);
    return exit_code;
}
