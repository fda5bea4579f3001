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
 *                    [--pick I,J,..] [--part K/P] [--jobs J] (--list | --out IMG --run CMD)
 *
 * --list prints the states. --pick keeps only the states of those indices (a caller that
 * knows which writes matter, e.g. which file a torn write belongs to, picks its states from a
 * larger draw). --run builds each state (of part K of P: every P-th of them from the K-th)
 * into --out, one after the other, and runs `sh -c CMD` on it with BC_STATE (index),
 * BC_STATE_IMG and BC_STATE_DESC (epoch, kind, writes, torn write) in the environment; the
 * command must be done with the image (unmounted, loop device detached) when it returns.
 * --jobs J shares the states out among J processes, each in a mount namespace of its own (its
 * command's mounts are its own: every job can mount at the same path), with an image of its
 * own (IMG.0, IMG.1, ..) and BC_JOB (0..J-1) in the environment; the states are generated
 * once, before they fork.
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
    int m = snprintf(buf, len, "epoch=%u flush-record=%zu kind=%s writes=%zu/%zu bytes=%" PRIu64,
                     s->epoch, flush_pos[s->epoch], kind_name[s->kind], n, epoch_writes(s->epoch),
                     bytes);
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
    static const struct option lo[] = {
        {"base", 1, 0, 'b'}, {"log", 1, 0, 'l'},  {"states", 1, 0, 'n'}, {"seed", 1, 0, 'x'},
        {"tear", 1, 0, 't'}, {"part", 1, 0, 'p'}, {"list", 0, 0, 'L'},   {"out", 1, 0, 'o'},
        {"run", 1, 0, 'r'},  {"pick", 1, 0, 'P'}, {"jobs", 1, 0, 'j'},   {0, 0, 0, 0}};
    const char *out = NULL, *cmd = NULL, *pick = NULL;
    unsigned part = 0, parts = 1, jobs = 1;
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
        case 'P':
            pick = optarg;
            break;
        case 'j':
            jobs = (unsigned)atoi(optarg);
            break;
        default:
            die("bad option");
        }
    }
    if (!opt.base || !opt.log || !opt.states || !jobs || (opt.tear != 4096 && opt.tear != 512) ||
        (!list && (!out || !cmd)))
        die("usage: --base IMG --log LOG --states N [--seed S] [--tear 4096|512] [--part K/P] "
            "[--jobs J] (--list | --out IMG --run CMD)");
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

    bool *picked = xcalloc(nstates, sizeof(bool));
    for (size_t i = 0; i < nstates; i++)
        picked[i] = !pick;
    for (const char *p = pick; p && *p;) {
        char *end;
        unsigned long i = strtoul(p, &end, 10);
        if (end == p || i >= nstates)
            die("--pick: bad index at '%s' (%zu states)", p, nstates);
        picked[i] = true;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            die("--pick: bad list at '%s'", end);
    }

    if (list) {
        struct item *it = xcalloc(nrecs, sizeof(*it));
        for (size_t i = 0, nth = 0; i < nstates; i++) {
            if (!picked[i] || nth++ % parts != part)
                continue;
            char desc[512];
            state_desc(i, it, materialize(&states[i], it), desc, sizeof(desc));
            printf("state %zu: %s\n", i, desc);
        }
        return 0;
    }
    /* --jobs: the states are shared out among that many processes here, generated once. */
    pid_t pids[64];
    unsigned nj = jobs > 64 ? 64 : jobs;
    for (unsigned j = 0; j < nj; j++) {
        pids[j] = nj > 1 ? fork() : 0;
        if (pids[j] < 0)
            die("fork: %s", strerror(errno));
        if (pids[j] > 0)
            continue;
        unsigned sub = part * nj + j, subs = parts * nj; /* this process's share */
        char img[4200], idx[32];
        if (nj > 1) {
            own_namespace(); /* the command's mounts are this process's alone */
            snprintf(img, sizeof(img), "%s.%u", out, j);
        } else {
            snprintf(img, sizeof(img), "%s", out);
        }
        snprintf(idx, sizeof(idx), "%u", j);
        setenv("BC_JOB", idx, 1);
        struct worker w;
        image_worker(&w, img);
        size_t ran = 0;
        for (size_t i = 0, nth = 0; i < nstates; i++) {
            if (!picked[i] || nth++ % subs != sub)
                continue;
            size_t n = materialize(&states[i], w.items);
            char desc[512];
            state_desc(i, w.items, n, desc, sizeof(desc));
            build_image(&w, states[i].epoch, w.items, n);
            if (fsync(w.img_fd) < 0)
                die("fsync %s: %s", img, strerror(errno));
            snprintf(idx, sizeof(idx), "%zu", i);
            setenv("BC_STATE", idx, 1);
            setenv("BC_STATE_IMG", img, 1);
            setenv("BC_STATE_DESC", desc, 1);
            if (system(cmd) < 0)
                die("run %s: %s", cmd, strerror(errno));
            ran++;
        }
        printf("blockcrash-state: part %u/%u: %zu states built and checked\n", sub, subs, ran);
        if (nj > 1) {
            fflush(stdout);
            _exit(0);
        }
        return 0;
    }
    int bad = 0;
    for (unsigned j = 0; j < nj; j++) {
        int st;
        if (waitpid(pids[j], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "blockcrash-state: job %u failed\n", j);
            bad = 1;
        }
    }
    return bad ? 2 : 0;
}
