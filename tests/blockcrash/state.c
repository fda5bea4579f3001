/* SPDX-License-Identifier: MIT */
/*
 * state.c -- blockcrash-state: build the crash states of a recorder log as disk images and
 * hand each to a command, for workloads whose data the checker cannot read itself (a database
 * engine: its own start-up and consistency checks decide whether a state is sound).
 *
 * The states are exactly the checker's (the same log, seed, state count and tear size give the
 * same states as blockcrash-check): its log loader, generator and image builder are compiled
 * in from check.c. The log needs the "G" marker (states are drawn from the flush before it
 * on); layout markers are not needed.
 *
 *   blockcrash-state --base IMG --log LOG --states N [--seed S] [--tear 4096|512]
 *                    [--part K/P] (--list | --out IMG --run CMD)
 *
 * --list prints the states. --run builds each state (of part K of P: states i with i % P == K)
 * into --out, one after the other, and runs `sh -c CMD` on it with BC_STATE (index),
 * BC_STATE_IMG and BC_STATE_DESC (epoch, kind, writes, torn write) in the environment; the
 * command must be done with the image (unmounted, loop device detached) when it returns.
 * Exit 0 when every state was built and its command ran (whatever it returned), 2 on errors.
 */
int bc_check_main(int argc, char **argv);
#define main bc_check_main
#include "check.c"
#undef main

static const char *const kind_name[] = {"none", "prefix", "subset", "torn"};

/* state_desc() -- one line: the state's flush, kind, writes applied and the torn write. */
static void
state_desc(size_t i, const struct item *it, size_t n, char *buf, size_t len)
{
    const struct state *s = &states[i];
    size_t lo, hi, torn_rec = SIZE_MAX;
    epoch_range(s->epoch, &lo, &hi);
    uint64_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        bytes += recs[it[k].rec].len;
        if (it[k].torn)
            torn_rec = it[k].rec;
    }
    int m = snprintf(buf, len,
                     "epoch=%u flush-record=%zu kind=%s writes=%zu/%zu bytes=%" PRIu64, s->epoch,
                     flush_pos[s->epoch], kind_name[s->kind], n, epoch_writes(s->epoch), bytes);
    if (torn_rec != SIZE_MAX && m > 0 && (size_t)m < len)
        snprintf(buf + m, len - (size_t)m, " torn=record %zu (%" PRIu64 "+%" PRIu64 ")", torn_rec,
                 recs[torn_rec].off, recs[torn_rec].len);
}

/* image_worker() -- the parts of a checker worker that build images: the base image advanced
 * flush by flush, and which 64 KiB chunks of it may hold data. No loop device, no mount. */
static void
image_worker(struct worker *w, const char *out)
{
    memset(w, 0, sizeof(*w));
    w->base = load_base();
    w->items = xcalloc(nrecs, sizeof(*w->items));
    w->nonzero = xcalloc(img_size / CHUNK + 1, 1);
    static const uint8_t zero[CHUNK];
    for (uint64_t c = 0; c * CHUNK < img_size; c++) {
        uint64_t len = img_size - c * CHUNK < CHUNK ? img_size - c * CHUNK : CHUNK;
        w->nonzero[c] = memcmp(w->base + c * CHUNK, zero, len) != 0;
    }
    w->img_fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (w->img_fd < 0 || ftruncate(w->img_fd, (off_t)img_size) < 0)
        die("%s: %s", out, strerror(errno));
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {{"base", 1, 0, 'b'},  {"log", 1, 0, 'l'},
                                       {"states", 1, 0, 'n'}, {"seed", 1, 0, 'x'},
                                       {"tear", 1, 0, 't'},   {"part", 1, 0, 'p'},
                                       {"list", 0, 0, 'L'},   {"out", 1, 0, 'o'},
                                       {"run", 1, 0, 'r'},    {0, 0, 0, 0}};
    const char *out = NULL, *cmd = NULL;
    unsigned part = 0, parts = 1;
    bool list = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            opt.base = optarg;
            break;
        case 'l':
            opt.log = optarg;
            break;
        case 'n':
            opt.states = (unsigned)atoi(optarg);
            break;
        case 'x':
            opt.seed = strtoull(optarg, NULL, 0);
            break;
        case 't':
            opt.tear = (unsigned)atoi(optarg);
            break;
        case 'p':
            if (sscanf(optarg, "%u/%u", &part, &parts) != 2 || !parts || part >= parts)
                die("--part K/P with K < P");
            break;
        case 'L':
            list = true;
            break;
        case 'o':
            out = optarg;
            break;
        case 'r':
            cmd = optarg;
            break;
        default:
            die("bad option");
        }
    }
    if (!opt.base || !opt.log || !opt.states || (opt.tear != 4096 && opt.tear != 512) ||
        (!list && (!out || !cmd)))
        die("usage: --base IMG --log LOG --states N [--seed S] [--tear 4096|512] [--part K/P] "
            "(--list | --out IMG --run CMD)");
    setvbuf(stdout, NULL, _IOLBF, 0);
    layout_optional = true;
    load_log();
    double t0 = now_s();
    generate();
    size_t torn_states = 0, before_go = 0;
    for (size_t i = 0; i < nstates; i++)
        torn_states += states[i].kind == K_TORN;
    for (size_t j = 0; j < nflush; j++)
        before_go += flush_pos[j] < go_pos;
    printf("blockcrash-state: log %zu records, %zu flushes (%zu before G), image %" PRIu64
           " MiB; %zu states (%zu with a torn write, %" PRIu64
           " duplicates skipped), generated in %.1f s\n",
           nrecs, nflush, before_go, img_size >> 20, nstates, torn_states, dup_skipped,
           now_s() - t0);

    struct worker w;
    if (!list)
        image_worker(&w, out);
    else
        w.items = xcalloc(nrecs, sizeof(*w.items));
    size_t ran = 0;
    for (size_t i = 0; i < nstates; i++) {
        if (i % parts != part)
            continue;
        size_t n = materialize(&states[i], w.items);
        char desc[512];
        state_desc(i, w.items, n, desc, sizeof(desc));
        if (list) {
            printf("state %zu: %s\n", i, desc);
            continue;
        }
        build_image(&w, states[i].epoch, w.items, n);
        if (fsync(w.img_fd) < 0)
            die("fsync %s: %s", out, strerror(errno));
        char idx[32];
        snprintf(idx, sizeof(idx), "%zu", i);
        setenv("BC_STATE", idx, 1);
        setenv("BC_STATE_IMG", out, 1);
        setenv("BC_STATE_DESC", desc, 1);
        int st = system(cmd);
        if (st < 0)
            die("run %s: %s", cmd, strerror(errno));
        ran++;
    }
    if (!list)
        printf("blockcrash-state: part %u/%u: %zu states built and checked\n", part, parts, ran);
    return 0;
}
