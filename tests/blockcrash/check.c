/* SPDX-License-Identifier: MIT */
/*
 * check.c -- replays crash states from a recorder log and checks libatomio's promise on each.
 *
 * A crash state is the image as of one flush in the log plus a subset of the writes logged
 * between that flush and the next: none, a prefix, a random subset, or a random subset with
 * one write torn into a random subset of its tear-size chunks. States are generated from a
 * seed (the same seed gives the same states), and a state whose image equals one already
 * generated is skipped (an incremental hash of every 512-byte sector of the image).
 *
 * Each worker process has its own loop device and image file in /dev/shm, and its own mount
 * namespace, so its mounts go away with it. When the workload named a data root (an "R"
 * marker: the store's manifest then records data-file paths relative to the mount point),
 * every worker mounts its states at a directory of its own, never the workload's, and runs
 * recovery with the data root set to it: every state also checks that recovery does not
 * depend on where the filesystem is mounted. Without one (absolute paths in the manifest),
 * workers mount at the workload's path, which their private namespaces make possible. Per
 * state: build the image, mount it (the filesystem replays its journal), run libatomio's
 * recovery in a child process, read every page and check:
 *   - every page is wholly one version, sector by sector (512 B);
 *   - that version was started before the last write of the state was received;
 *   - it is at least the version a returned sync made durable, when that return was logged
 *     before the next flush; a sync covers every write to the file acknowledged before the
 *     sync started, by any thread or process. A doublewrite acknowledgement is durable on
 *     return too, except in deferred mode (an "M deferred" marker), where only syncs are.
 *     In deferred mode the checker also counts, for information, the states where a page is
 *     older than an acknowledgement that the synchronous rule would have made durable.
 * A state that does not mount is a mount failure, counted apart from violations. Failing
 * states are shrunk (writes dropped one at a time while the state still fails) and their
 * image and description are kept in the results directory.
 */
#include "bc_lib.h"
#include "bc_log.h"
#include "bc_page.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Options, log and markers.                                                                  */

static struct {
    const char *base, *log, *fstype, *mnt, *store, *name, *results, *constraints, *only;
    const char *save_recovery_base;
    unsigned states, workers, tear, keep_fail;
    uint64_t seed;
    bool expect_violation, fsck, verbose;
    double budget_s;
} opt = {.states = 500,
         .workers = 2,
         .tear = 4096,
         .seed = 1,
         .name = "blockcrash",
         .keep_fail = 3,
         .budget_s = 1e9};

struct rec {
    uint32_t type;
    uint64_t off, len;
    const uint8_t *data;
};

static struct rec *recs;
static size_t nrecs;
static uint64_t img_size;
static size_t *flush_pos; /* record index of every flush */
static size_t nflush;
static size_t go_pos = SIZE_MAX; /* the "G" marker */

struct page_ver {
    uint64_t ver;
    size_t bpos; /* record index of its B marker */
};

struct page_info {
    struct page_ver *v;
    size_t nv, cap;
    uint64_t acked;      /* newest acknowledged version so far (while parsing) */
    uint64_t cmin, cmax; /* from --constraints */
    int64_t observed;    /* V marker (--mode recover runs) */
};

struct bc_file {
    uint32_t page_size;
    uint32_t npages;
    char path[4096]; /* as the workload named it */
    struct page_info *pg;
};

static struct bc_file files[BC_LIB_MAX_FILES];
static unsigned nfiles;
static char data_root[4096]; /* "R" marker: the workload's data root, "" if none */
static bool deferred;        /* "M deferred" marker: acknowledgements are not durable */
static bool layout_optional; /* blockcrash-state: an engine's log has no layout markers */

/* A page's durable floor rises at pos: a returned sync or a durable acknowledgement. */
struct floor_ev {
    size_t pos;
    unsigned file;
    uint32_t page;
    uint64_t ver;
};
static struct floor_ev *floors;
static size_t nfloors, capfloors;
/* Deferred mode: acknowledgements, durable only under the synchronous rule (information). */
static struct floor_ev *ackfloors;
static size_t nackfloors, capackfloors;
static size_t re_pos = SIZE_MAX; /* "RE 0 ..." of a recovery run */

__attribute__((format(printf, 1, 2))) static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "blockcrash-check: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *
xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        die("out of memory");
    return p;
}

static void
add_floor_to(struct floor_ev **fl, size_t *n, size_t *cap, size_t pos, unsigned f, uint32_t p,
             uint64_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *fl = realloc(*fl, *cap * sizeof(**fl));
        if (!*fl)
            die("out of memory");
    }
    (*fl)[(*n)++] = (struct floor_ev){pos, f, p, v};
}

static void
add_floor(size_t pos, unsigned f, uint32_t p, uint64_t v)
{
    add_floor_to(&floors, &nfloors, &capfloors, pos, f, p, v);
}

/* floor_of() -- the highest version of (f, p) among fl's events logged before bound. */
static uint64_t
floor_of(const struct floor_ev *fl, size_t n, size_t bound, unsigned f, uint32_t p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && fl[i].pos < bound; i++)
        if (fl[i].file == f && fl[i].page == p && fl[i].ver > v)
            v = fl[i].ver;
    return v;
}

static struct page_info *
page_of(unsigned f, uint64_t p)
{
    if (f >= nfiles || p >= files[f].npages)
        die("marker names page %u/%" PRIu64 " outside the layout", f, p);
    return &files[f].pg[p];
}

/* Sync snapshots: sync id -> acknowledged versions of the file at SB. */
struct sync_snap {
    uint64_t id;
    unsigned file;
    uint64_t *ver;
};
static struct sync_snap *snaps;
static size_t nsnaps;

static void
parse_marker(size_t pos, const char *txt, size_t len)
{
    char line[4200];
    if (len >= sizeof(line))
        die("marker too long");
    memcpy(line, txt, len);
    line[len] = 0;
    unsigned f, ps, np;
    uint64_t p, v, id;
    int d, e;
    char path[4000];
    if (line[0] == 'R' && line[1] == ' ' && sscanf(line + 2, "%3999s", path) == 1) {
        snprintf(data_root, sizeof(data_root), "%s", path);
    } else if (!strcmp(line, "M deferred")) {
        deferred = true;
    } else if (sscanf(line, "L %u %u %u %3999s", &f, &ps, &np, path) == 4) {
        if (f >= BC_LIB_MAX_FILES)
            die("layout file index %u", f);
        if (f >= nfiles)
            nfiles = f + 1;
        files[f].page_size = ps;
        files[f].npages = np;
        snprintf(files[f].path, sizeof(files[f].path), "%s", path);
        files[f].pg = xcalloc(np, sizeof(struct page_info));
        for (unsigned i = 0; i < np; i++)
            files[f].pg[i].observed = -100;
    } else if (line[0] == 'G' && (line[1] == '\n' || !line[1])) {
        go_pos = pos;
    } else if (sscanf(line, "B %u %" SCNu64 " %" SCNu64, &f, &p, &v) == 3) {
        struct page_info *pi = page_of(f, p);
        if (pi->nv == pi->cap) {
            pi->cap = pi->cap ? pi->cap * 2 : 8;
            pi->v = realloc(pi->v, pi->cap * sizeof(*pi->v));
            if (!pi->v)
                die("out of memory");
        }
        pi->v[pi->nv++] = (struct page_ver){v, pos};
    } else if (sscanf(line, "A %u %" SCNu64 " %" SCNu64 " %d", &f, &p, &v, &d) == 4) {
        struct page_info *pi = page_of(f, p);
        if (v > pi->acked)
            pi->acked = v;
        /* In deferred mode the workload marks no acknowledgement durable; whatever it says,
         * the rule is the checker's: only a returned sync is. */
        if (deferred)
            add_floor_to(&ackfloors, &nackfloors, &capackfloors, pos, f, (uint32_t)p, v);
        else if (d)
            add_floor(pos, f, (uint32_t)p, v);
    } else if (sscanf(line, "SB %u %" SCNu64, &f, &id) == 2) {
        snaps = realloc(snaps, (nsnaps + 1) * sizeof(*snaps));
        if (!snaps || f >= nfiles)
            die("bad SB marker");
        snaps[nsnaps].id = id;
        snaps[nsnaps].file = f;
        snaps[nsnaps].ver = xcalloc(files[f].npages, sizeof(uint64_t));
        for (unsigned i = 0; i < files[f].npages; i++)
            snaps[nsnaps].ver[i] = files[f].pg[i].acked;
        nsnaps++;
    } else if (sscanf(line, "SA %u %" SCNu64 " %d", &f, &id, &e) == 3) {
        for (size_t i = nsnaps; i-- > 0;) {
            if (snaps[i].id == id && snaps[i].file == f) {
                if (e == 0)
                    for (unsigned k = 0; k < files[f].npages; k++)
                        if (snaps[i].ver[k])
                            add_floor(pos, f, k, snaps[i].ver[k]);
                break;
            }
        }
    } else if (sscanf(line, "RE %d", &e) == 1) {
        if (e == 0)
            re_pos = pos;
    } else if (sscanf(line, "V %u %" SCNu64 " %" SCNu64, &f, &p, &v) == 3) {
        page_of(f, p)->observed = (int64_t)v;
    } else if (sscanf(line, "V %u %" SCNu64 " %d", &f, &p, &e) == 3) {
        page_of(f, p)->observed = e;
    }
}

static void
load_log(void)
{
    int fd = open(opt.log, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die("%s: %s", opt.log, strerror(errno));
    const uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        die("mmap log: %s", strerror(errno));
    size_t cap = 1024, fcap = 256;
    recs = xcalloc(cap, sizeof(*recs));
    flush_pos = xcalloc(fcap, sizeof(*flush_pos));
    size_t off = 0;
    while (off + sizeof(struct bc_rec_hdr) <= (size_t)st.st_size) {
        struct bc_rec_hdr h;
        memcpy(&h, m + off, sizeof(h));
        off += sizeof(h);
        size_t plen = (h.type == BC_REC_WRITE || h.type == BC_REC_MARK) ? h.len : 0;
        if (off + plen > (size_t)st.st_size)
            die("log truncated at record %zu", nrecs);
        if (nrecs == 0) {
            if (h.type != 0 || h.off != BC_LOG_MAGIC)
                die("%s is not a recorder log", opt.log);
            img_size = h.len;
            flush_pos[nflush++] = 0; /* the starting image is durable: a flush at record 0 */
        }
        if (nrecs == cap) {
            cap *= 2;
            recs = realloc(recs, cap * sizeof(*recs));
            if (!recs)
                die("out of memory");
        }
        recs[nrecs] = (struct rec){h.type, h.off, h.len, m + off};
        if (h.type == BC_REC_WRITE || h.type == BC_REC_DISCARD) {
            if (h.off % BC_SECTOR || h.len % BC_SECTOR || h.off + h.len > img_size)
                die("record %zu: write %" PRIu64 "+%" PRIu64 " not sector-aligned", nrecs, h.off,
                    h.len);
        } else if (h.type == BC_REC_FLUSH) {
            if (nflush == fcap) {
                fcap *= 2;
                flush_pos = realloc(flush_pos, fcap * sizeof(*flush_pos));
                if (!flush_pos)
                    die("out of memory");
            }
            flush_pos[nflush++] = nrecs;
        } else if (h.type == BC_REC_MARK) {
            const char *t = (const char *)(m + off);
            size_t s = 0;
            for (size_t i = 0; i <= plen; i++) { /* one marker per line */
                if (i == plen || t[i] == '\n') {
                    if (i > s)
                        parse_marker(nrecs, t + s, i - s);
                    s = i + 1;
                }
            }
        }
        off += plen;
        nrecs++;
    }
    if (go_pos == SIZE_MAX)
        die("no G marker in the log: the workload never finished its setup");
    if (!nfiles && !layout_optional)
        die("no layout markers in the log");
}

static void
load_constraints(void)
{
    FILE *fp = fopen(opt.constraints, "r");
    if (!fp)
        die("%s: %s", opt.constraints, strerror(errno));
    unsigned f;
    uint64_t p, lo, hi;
    while (fscanf(fp, "%u %" SCNu64 " %" SCNu64 " %" SCNu64, &f, &p, &lo, &hi) == 4) {
        struct page_info *pi = page_of(f, p);
        pi->cmin = lo;
        pi->cmax = hi;
    }
    fclose(fp);
}

/* ---------------------------------------------------------------------------------------- */
/* States.                                                                                    */

enum kind { K_NONE, K_PREFIX, K_SUBSET, K_TORN };

struct state {
    uint32_t epoch; /* index into flush_pos */
    uint32_t kind;
    uint32_t k; /* PREFIX: count; TORN: which eligible write */
    uint32_t pad;
    uint64_t seed;
    uint64_t hash;
};

struct item {
    size_t rec; /* record index of the write */
    bool torn;
    uint64_t tseed;
};

/* Writes of epoch j: records between flush j and flush j + 1 (or the end). */
static void
epoch_range(uint32_t j, size_t *lo, size_t *hi)
{
    *lo = flush_pos[j] + 1;
    *hi = j + 1 < nflush ? flush_pos[j + 1] : nrecs;
}

static bool
is_write(size_t r)
{
    return recs[r].type == BC_REC_WRITE || recs[r].type == BC_REC_DISCARD;
}

static size_t
epoch_writes(uint32_t j)
{
    size_t lo, hi, n = 0;
    epoch_range(j, &lo, &hi);
    for (size_t r = lo; r < hi; r++)
        n += is_write(r);
    return n;
}

static bool
tearable(size_t r)
{
    return recs[r].type == BC_REC_WRITE &&
           (recs[r].off / opt.tear) != ((recs[r].off + recs[r].len - 1) / opt.tear);
}

/* materialize() -- the writes a state applies, in log order. Returns the count. */
static size_t
materialize(const struct state *s, struct item *out)
{
    size_t lo, hi, n = 0, w = 0, elig = 0;
    epoch_range(s->epoch, &lo, &hi);
    uint64_t rng = s->seed;
    for (size_t r = lo; r < hi; r++) {
        if (!is_write(r))
            continue;
        bool take = false, torn = false;
        rng = bc_mix64(rng);
        switch (s->kind) {
        case K_NONE:
            break;
        case K_PREFIX:
            take = w < s->k;
            break;
        case K_SUBSET:
            take = rng & 1;
            break;
        case K_TORN:
            if (tearable(r) && elig++ == s->k)
                take = torn = true;
            else
                take = rng & 1;
            break;
        }
        w++;
        if (take)
            out[n++] = (struct item){r, torn, bc_mix64(rng ^ 0x7e4)};
    }
    return n;
}

/* chunk_taken() -- whether chunk c (index within the write) of a torn write is applied. */
static bool
chunk_taken(const struct item *it, size_t c, size_t nchunks)
{
    uint64_t first = bc_mix64(it->tseed) % nchunks; /* never all, never none: */
    size_t other = (first + 1) % nchunks;           /* "first" is in, "other" is out */
    if (c == first)
        return true;
    if (c == other)
        return false;
    return bc_mix64(it->tseed + c + 1) & 1;
}

/* apply_item() -- calls fn(off, len, data or NULL for zeros) for each piece applied. */
static void
apply_item(const struct item *it, void (*fn)(void *, uint64_t, uint64_t, const uint8_t *),
           void *arg)
{
    const struct rec *r = &recs[it->rec];
    if (!it->torn) {
        fn(arg, r->off, r->len, r->type == BC_REC_WRITE ? r->data : NULL);
        return;
    }
    uint64_t c0 = r->off / opt.tear, c1 = (r->off + r->len - 1) / opt.tear;
    size_t nchunks = (size_t)(c1 - c0 + 1);
    for (size_t c = 0; c < nchunks; c++) {
        if (!chunk_taken(it, c, nchunks))
            continue;
        uint64_t a = (c0 + c) * opt.tear, b = a + opt.tear;
        if (a < r->off)
            a = r->off;
        if (b > r->off + r->len)
            b = r->off + r->len;
        fn(arg, a, b - a, r->data + (a - r->off));
    }
}

static void
apply_rec_to(uint8_t *img, size_t r)
{
    if (recs[r].type == BC_REC_WRITE)
        memcpy(img + recs[r].off, recs[r].data, recs[r].len);
    else if (recs[r].type == BC_REC_DISCARD)
        memset(img + recs[r].off, 0, recs[r].len);
}

/* ---------------------------------------------------------------------------------------- */
/* Generation and duplicate detection (coordinator).                                           */

static uint64_t
sector_hash(uint64_t idx, const uint8_t *d)
{
    static const uint8_t zero[BC_SECTOR];
    if (!d || (d[0] == 0 && !memcmp(d, zero, BC_SECTOR)))
        return 0; /* zero sectors add nothing: hashing a mostly empty image is cheap */
    uint64_t acc = bc_mix64(idx);
    for (unsigned i = 0; i < BC_SECTOR; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        acc = (acc ^ w) * 0x100000001b3ull;
        acc ^= acc >> 29;
    }
    return bc_mix64(acc);
}

struct piece {
    uint64_t sector;
    uint32_t order;
    const uint8_t *data;
};
static struct piece *pieces;
static size_t npieces, cappieces;

static void
collect_piece(void *arg, uint64_t off, uint64_t len, const uint8_t *data)
{
    uint32_t order = *(uint32_t *)arg;
    for (uint64_t o = 0; o < len; o += BC_SECTOR) {
        if (npieces == cappieces) {
            cappieces = cappieces ? cappieces * 2 : 4096;
            pieces = realloc(pieces, cappieces * sizeof(*pieces));
            if (!pieces)
                die("out of memory");
        }
        pieces[npieces++] = (struct piece){(off + o) / BC_SECTOR, order, data ? data + o : NULL};
    }
}

static int
piece_cmp(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    if (x->sector != y->sector)
        return x->sector < y->sector ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* state_hash() -- hash of the whole image of the state, from the running image's hash. */
static uint64_t
state_hash(const uint8_t *img, uint64_t img_hash, const struct item *it, size_t n)
{
    npieces = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t order = (uint32_t)i;
        apply_item(&it[i], collect_piece, &order);
    }
    if (npieces > 1)
        qsort(pieces, npieces, sizeof(*pieces), piece_cmp); /* pieces is NULL while empty */
    uint64_t h = img_hash;
    for (size_t i = 0; i < npieces; i++) {
        if (i + 1 < npieces && pieces[i + 1].sector == pieces[i].sector)
            continue; /* a later write covers this sector */
        uint64_t s = pieces[i].sector;
        h += sector_hash(s, pieces[i].data) - sector_hash(s, img + s * BC_SECTOR);
    }
    return h;
}

struct hset {
    uint64_t *v;
    size_t cap, n;
};

static bool
hset_add(struct hset *hs, uint64_t h)
{
    if (h == 0)
        h = 1;
    if (hs->n * 2 >= hs->cap) {
        struct hset old = *hs;
        hs->cap = old.cap ? old.cap * 2 : 1 << 12;
        hs->v = xcalloc(hs->cap, sizeof(uint64_t));
        hs->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.v[i])
                hset_add(hs, old.v[i]);
        free(old.v);
    }
    for (size_t i = h & (hs->cap - 1);; i = (i + 1) & (hs->cap - 1)) {
        if (hs->v[i] == h)
            return false;
        if (!hs->v[i]) {
            hs->v[i] = h;
            hs->n++;
            return true;
        }
    }
}

static uint8_t *
load_base(void)
{
    uint8_t *img = malloc(img_size);
    int fd = open(opt.base, O_RDONLY);
    if (!img || fd < 0)
        die("%s: %s", opt.base, strerror(errno));
    for (uint64_t off = 0; off < img_size;) {
        ssize_t n = pread(fd, img + off, img_size - off, (off_t)off);
        if (n <= 0)
            die("read %s: short", opt.base);
        off += (uint64_t)n;
    }
    close(fd);
    return img;
}

static struct state *states;
static size_t nstates;
static uint64_t dup_skipped;

static int
state_cmp(const void *a, const void *b)
{
    const struct state *x = a, *y = b;
    return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static void
generate(void)
{
    uint32_t first = 0;
    while (first + 1 < nflush && flush_pos[first + 1] < go_pos)
        first++;
    if (nflush == 0 || flush_pos[first] > go_pos)
        die("no flush before the G marker");
    uint32_t nep = (uint32_t)nflush - first;
    double *w = xcalloc(nep, sizeof(double));
    double wsum = 0;
    for (uint32_t e = 0; e < nep; e++) {
        size_t n = epoch_writes(first + e);
        w[e] = 1.0 + (double)(n < 24 ? n : 24);
        wsum += w[e];
    }
    struct item *it = xcalloc(nrecs, sizeof(*it));
    states = xcalloc(opt.states, sizeof(*states));
    struct hset hs = {0};
    uint8_t *base = load_base(), *img = malloc(img_size);
    if (!img)
        die("out of memory");
    uint64_t h0 = 0;
    for (uint64_t s = 0; s < img_size / BC_SECTOR; s++)
        h0 += sector_hash(s, base + s * BC_SECTOR);
    /* Sweeps over the log until enough distinct states, or a sweep finds nothing new. */
    for (unsigned sweep = 0; sweep < 64 && nstates < opt.states; sweep++) {
        size_t before = nstates;
        memcpy(img, base, img_size);
        uint64_t h = h0;
        size_t applied = 0;
        uint64_t rng = bc_mix64(opt.seed * 0x1000 + sweep);
        double carry = 0;
        size_t want = opt.states - nstates;
        for (uint32_t e = 0; e < nep && nstates < opt.states; e++) {
            uint32_t j = first + e;
            for (; applied < flush_pos[j]; applied++) { /* advance to flush j */
                const struct rec *r = &recs[applied];
                if (!is_write(applied))
                    continue;
                for (uint64_t o = 0; o < r->len; o += BC_SECTOR) {
                    uint64_t s = (r->off + o) / BC_SECTOR;
                    h -= sector_hash(s, img + s * BC_SECTOR);
                    h += sector_hash(s, r->type == BC_REC_WRITE ? r->data + o : NULL);
                }
                apply_rec_to(img, applied);
            }
            carry += e + 1 == nep ? (double)(opt.states - nstates) : (double)want * w[e] / wsum;
            size_t nw = epoch_writes(j), ntear = 0, lo, hi;
            epoch_range(j, &lo, &hi);
            for (size_t r = lo; r < hi; r++)
                ntear += is_write(r) && tearable(r);
            for (; carry >= 1.0 && nstates < opt.states; carry -= 1.0) {
                rng = bc_mix64(rng);
                struct state s = {.epoch = j, .seed = bc_mix64(rng ^ j)};
                unsigned roll = (unsigned)(rng >> 40) % 100;
                if (nw == 0 || roll < 8) {
                    s.kind = K_NONE;
                } else if (roll < 25) {
                    s.kind = K_PREFIX;
                    s.k = 1 + (uint32_t)((rng >> 8) % nw);
                } else if (roll < 55 || ntear == 0) {
                    s.kind = K_SUBSET;
                } else {
                    s.kind = K_TORN;
                    s.k = (uint32_t)((rng >> 8) % ntear);
                }
                size_t n = materialize(&s, it);
                s.hash = state_hash(img, h, it, n);
                if (hset_add(&hs, s.hash))
                    states[nstates++] = s;
                else
                    dup_skipped++;
            }
        }
        if (nstates == before)
            break;
    }
    free(img);
    free(base);
    if (nstates > 1)
        qsort(states, nstates, sizeof(*states), state_cmp);
    free(it);
    free(w);
    free(hs.v);
}

/* ---------------------------------------------------------------------------------------- */
/* Checking one state (worker).                                                               */

enum verdict { V_OK, V_VIOLATION, V_MOUNT_FAIL, V__COUNT };
static const char *const verdict_name[] = {"ok", "violation", "mount-failure"};

struct result {
    int32_t verdict;
    int32_t fsck_failed;
    uint64_t restored;
    uint32_t ack_older; /* deferred mode: pages older than an acknowledgement (information) */
    uint32_t pad;
    char msg[480];
};

#define CHUNK (64u << 10) /* image reset granularity: only non-zero chunks are rewritten */

struct worker {
    uint8_t *nonzero; /* per CHUNK of base: may hold non-zero bytes */
    int id;
    char mnt[4200];     /* where it mounts its states */
    char mnt_top[4200]; /* the outermost directory made for it ("" if none) */
    int img_fd;
    int loop_fd;
    char loop_dev[64];
    uint8_t *base;
    size_t applied; /* records applied to base */
    struct item *items;
};

static void
own_namespace(void)
{
    if (unshare(CLONE_NEWNS) < 0)
        die("unshare(CLONE_NEWNS): %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("make / private: %s", strerror(errno));
}

/* mkdir_p() -- make dir and its parents (they may be gone: a kept state checked again).
 * *top gets the outermost directory it made ("" if none), for rmdir_up(). */
static void
mkdir_p(const char *path, char *top, size_t toplen)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    top[0] = 0;
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(dir, 0755) == 0 && !top[0])
                snprintf(top, toplen, "%s", dir);
            else if (!c && errno != EEXIST && !top[0])
                die("mkdir %s: %s", dir, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
}

/* rmdir_up() -- remove dir and its parents up to top, which mkdir_p() made. */
static void
rmdir_up(const char *path, const char *top)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    size_t n = strlen(top);
    while (n && strlen(dir) >= n && rmdir(dir) == 0 && strcmp(dir, top) != 0) {
        char *sl = strrchr(dir, '/');
        if (!sl || sl == dir)
            break;
        *sl = 0;
    }
}

/* local_path() -- where the workload's path is under this worker's mount point: with a data
 * root, the part below it moves to the worker's mount; without one, paths stay as they are. */
static void
local_path(const struct worker *w, const char *path, char *out, size_t len)
{
    size_t n = strlen(data_root);
    if (n && !strncmp(path, data_root, n) && (path[n] == '/' || !path[n]))
        snprintf(out, len, "%s%s", w->mnt, path + n);
    else
        snprintf(out, len, "%s", path);
}

static void
worker_init(struct worker *w, int id)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    if (data_root[0]) {
        /* Not the workload's mount point: recovery must find the files through the root. */
        snprintf(w->mnt, sizeof(w->mnt), "%s.w%d", opt.mnt, id);
        mkdir_p(w->mnt, w->mnt_top, sizeof(w->mnt_top));
    } else {
        snprintf(w->mnt, sizeof(w->mnt), "%s", opt.mnt);
    }
    w->base = load_base();
    w->items = xcalloc(nrecs, sizeof(*w->items));
    /* The per-state child needs none of this: keep it out of its page tables. */
    madvise(w->base, img_size & ~(uint64_t)4095, MADV_DONTFORK);
    w->nonzero = xcalloc(img_size / CHUNK + 1, 1);
    static const uint8_t zero[CHUNK];
    for (uint64_t c = 0; c * CHUNK < img_size; c++) {
        uint64_t len = img_size - c * CHUNK < CHUNK ? img_size - c * CHUNK : CHUNK;
        w->nonzero[c] = memcmp(w->base + c * CHUNK, zero, len) != 0;
    }
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/blockcrash-%d-w%d.img", (int)getpid(), id);
    w->img_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (w->img_fd < 0 || ftruncate(w->img_fd, (off_t)img_size) < 0)
        die("%s: %s", path, strerror(errno));
    unlink(path); /* gone with the last reference: no cleanup needed */
    int ctl = open("/dev/loop-control", O_RDWR);
    if (ctl < 0)
        die("/dev/loop-control: %s", strerror(errno));
    for (int tries = 0;; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            die("LOOP_CTL_GET_FREE: %s", strerror(errno));
        snprintf(w->loop_dev, sizeof(w->loop_dev), "/dev/loop%d", n);
        w->loop_fd = open(w->loop_dev, O_RDWR);
        if (w->loop_fd < 0)
            die("%s: %s", w->loop_dev, strerror(errno));
        /* Autoclear: the device detaches itself once this process (and its mounts) let go,
         * also when the process is killed. */
        struct loop_config lc = {.fd = (uint32_t)w->img_fd};
        lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(w->loop_fd, LOOP_CONFIGURE, &lc) == 0)
            break;
        if (errno != EBUSY || tries > 50)
            die("LOOP_CONFIGURE %s: %s", w->loop_dev, strerror(errno));
        close(w->loop_fd);
    }
    close(ctl);
}

static void
worker_advance(struct worker *w, uint32_t epoch)
{
    for (; w->applied < flush_pos[epoch]; w->applied++) {
        const struct rec *r = &recs[w->applied];
        if (r->type == BC_REC_WRITE)
            for (uint64_t c = r->off / CHUNK; c <= (r->off + r->len - 1) / CHUNK; c++)
                w->nonzero[c] = 1;
        apply_rec_to(w->base, w->applied);
    }
}

static void
write_piece(void *arg, uint64_t off, uint64_t len, const uint8_t *data)
{
    struct worker *w = arg;
    static uint8_t zeros[1 << 16];
    while (len) {
        uint64_t n = len;
        const void *src = data;
        if (!data) {
            n = len < sizeof(zeros) ? len : sizeof(zeros);
            src = zeros;
        }
        if (pwrite(w->img_fd, src, n, (off_t)off) != (ssize_t)n)
            die("write state image: %s", strerror(errno));
        off += n;
        len -= n;
        if (data)
            data += n;
    }
}

static void
build_image(struct worker *w, uint32_t epoch, const struct item *it, size_t n)
{
    worker_advance(w, epoch);
    /* Zero the whole file (tmpfs frees the pages), then write back what is not zero. */
    if (fallocate(w->img_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)img_size) < 0)
        die("punch state image: %s", strerror(errno));
    for (uint64_t c = 0; c * CHUNK < img_size; c++) {
        if (!w->nonzero[c])
            continue;
        uint64_t off = c * CHUNK, len = img_size - off < CHUNK ? img_size - off : CHUNK;
        if (pwrite(w->img_fd, w->base + off, len, (off_t)off) != (ssize_t)len)
            die("write state image: %s", strerror(errno));
    }
    for (size_t i = 0; i < n; i++)
        apply_item(&it[i], write_piece, w);
}

static void
worker_done(struct worker *w)
{
    rmdir_up(w->mnt, w->mnt_top);
}

/* The page check, run after recovery in the child. */
static void
check_pages(const struct worker *w, size_t end_pos, size_t flush_bound, struct result *res)
{
    unsigned bad = 0;
    uint8_t *buf = NULL;
    size_t bufsz = 0;
    for (unsigned f = 0; f < nfiles; f++) {
        struct bc_file *bf = &files[f];
        size_t need = (size_t)bf->page_size * bf->npages;
        if (need > bufsz) {
            free(buf);
            buf = xcalloc(1, need);
            bufsz = need;
        }
        memset(buf, 0, need);
        char path[4300];
        local_path(w, bf->path, path, sizeof(path));
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            if (!bad++)
                snprintf(res->msg, sizeof(res->msg), "%.300s: %s", path, strerror(errno));
            continue;
        }
        for (size_t off = 0; off < need;) {
            ssize_t k = pread(fd, buf + off, need - off, (off_t)off);
            if (k < 0) {
                if (!bad++)
                    snprintf(res->msg, sizeof(res->msg), "read %.300s: %s", path, strerror(errno));
                break;
            }
            if (k == 0)
                break; /* short file: the rest reads as version 0 */
            off += (size_t)k;
        }
        close(fd);
        for (uint32_t p = 0; p < bf->npages; p++) {
            struct page_info *pi = &bf->pg[p];
            const uint8_t *pg = buf + (size_t)p * bf->page_size;
            uint32_t nsec = bf->page_size / BC_SECTOR;
            int64_t v = bc_sector_version(pg, f, p, 0);
            bool torn = false;
            for (uint32_t s = 1; s < nsec && !torn; s++)
                torn = bc_sector_version(pg + s * BC_SECTOR, f, p, s) != v;
            char why[300] = "";
            if (torn || v < 0) {
                int n = snprintf(why, sizeof(why), "torn:");
                for (uint32_t s = 0; s < nsec && n < 240; s++)
                    n += snprintf(why + n, sizeof(why) - (size_t)n, " %" PRId64,
                                  bc_sector_version(pg + s * BC_SECTOR, f, p, s));
            } else {
                uint64_t floor = floor_of(floors, nfloors, flush_bound, f, p);
                if ((uint64_t)v < floor_of(ackfloors, nackfloors, flush_bound, f, p))
                    res->ack_older++;
                bool begun = v == 0;
                for (size_t i = 0; i < pi->nv && !begun; i++)
                    begun = pi->v[i].ver == (uint64_t)v && pi->v[i].bpos < end_pos;
                if (opt.constraints) {
                    begun = (uint64_t)v >= pi->cmin && (uint64_t)v <= pi->cmax;
                    floor = pi->cmin;
                    if (re_pos < flush_bound && pi->observed != (int64_t)v)
                        snprintf(why, sizeof(why),
                                 "version %" PRId64 ", but recovery returned with %" PRId64, v,
                                 pi->observed);
                }
                if (!begun)
                    snprintf(why, sizeof(why), "version %" PRId64 " was never started by then", v);
                else if ((uint64_t)v < floor)
                    snprintf(why, sizeof(why),
                             "version %" PRId64 " older than durable version %" PRIu64, v, floor);
            }
            if (why[0] && !bad++)
                snprintf(res->msg, sizeof(res->msg), "file %u (%u B) page %u: %s", f, bf->page_size,
                         p, why);
        }
    }
    free(buf);
    if (bad) {
        res->verdict = V_VIOLATION;
        size_t l = strlen(res->msg);
        snprintf(res->msg + l, sizeof(res->msg) - l, " (%u bad pages)", bad);
    }
}

static int
run_fsck(const char *dev)
{
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        if (!strcmp(opt.fstype, "xfs"))
            execlp("xfs_repair", "xfs_repair", "-n", dev, (char *)NULL);
        else
            execlp("e2fsck", "e2fsck", "-fn", dev, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static double now_s(void);
static double phase_t[5]; /* image, mount, recovery+check, umount, fsck (this process) */

static struct result
check_items(struct worker *w, uint32_t epoch, const struct item *it, size_t n)
{
    struct result res = {0};
    double t = now_s(), t1;
    build_image(w, epoch, it, n);
    phase_t[0] += (t1 = now_s()) - t;
    t = t1;
    ioctl(w->loop_fd, BLKFLSBUF, 0); /* drop the device's cache of the previous state */
    const char *mopts = !strcmp(opt.fstype, "xfs") ? "nouuid" : "";
    if (mount(w->loop_dev, w->mnt, opt.fstype, 0, mopts) < 0) {
        res.verdict = V_MOUNT_FAIL;
        snprintf(res.msg, sizeof(res.msg), "mount: %s", strerror(errno));
        return res;
    }
    phase_t[1] += (t1 = now_s()) - t;
    t = t1;
    size_t end_pos = n ? it[n - 1].rec : flush_pos[epoch];
    size_t flush_bound = epoch + 1 < nflush ? flush_pos[epoch + 1] : nrecs;
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        alarm(60);
        struct result r = {0};
        char store[4300];
        local_path(w, opt.store, store, sizeof(store));
        int rc = bc_lib_recover(store, data_root[0] ? w->mnt : NULL, &r.restored);
        if (rc < 0) {
            r.verdict = V_VIOLATION;
            snprintf(r.msg, sizeof(r.msg), "recovery failed: %s", bc_lib_strerror(rc));
        } else {
            check_pages(w, end_pos, flush_bound, &r);
        }
        if (write(pfd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    ssize_t k = read(pfd[0], &res, sizeof(res));
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (k != (ssize_t)sizeof(res)) {
        memset(&res, 0, sizeof(res));
        res.verdict = V_VIOLATION;
        snprintf(res.msg, sizeof(res.msg), "recovery/check process died (%s)",
                 WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no result");
    }
    phase_t[2] += (t1 = now_s()) - t;
    t = t1;
    for (int tries = 0; umount2(w->mnt, 0) < 0; tries++) {
        if (tries > 100)
            die("umount %s: %s", w->mnt, strerror(errno));
        usleep(20000);
    }
    phase_t[3] += (t1 = now_s()) - t;
    t = t1;
    if (opt.fsck)
        res.fsck_failed = run_fsck(w->loop_dev);
    phase_t[4] += now_s() - t;
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Driver.                                                                                    */

struct shared {
    _Atomic size_t next;
    _Atomic int stop;
    struct result res[];
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
describe(FILE *fp, uint32_t epoch, const struct item *it, size_t n)
{
    fprintf(fp, "epoch=%u flush-record=%zu writes=", epoch, flush_pos[epoch]);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s%zu%s", i ? "," : "", it[i].rec, it[i].torn ? "t" : "");
    for (size_t i = 0; i < n; i++)
        if (it[i].torn)
            fprintf(fp, " tear-seed[%zu]=0x%" PRIx64, it[i].rec, it[i].tseed);
    fprintf(fp, " tear=%u\n", opt.tear);
}

static void
save_image(struct worker *w, uint32_t epoch, const struct item *it, size_t n, const char *path)
{
    build_image(w, epoch, it, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)img_size) < 0)
        die("%s: %s", path, strerror(errno));
    static uint8_t blk[1 << 16], zero[1 << 16];
    for (uint64_t off = 0; off < img_size; off += sizeof(blk)) { /* sparse copy */
        if (pread(w->img_fd, blk, sizeof(blk), (off_t)off) != (ssize_t)sizeof(blk))
            die("read state image");
        if (memcmp(blk, zero, sizeof(blk)) &&
            pwrite(fd, blk, sizeof(blk), (off_t)off) != (ssize_t)sizeof(blk))
            die("write %s: %s", path, strerror(errno));
    }
    close(fd);
}

/* shrink() -- drop writes one at a time while the state still fails the same way. */
static size_t
shrink(struct worker *w, uint32_t epoch, struct item *it, size_t n, struct result *last)
{
    for (size_t i = n; i-- > 0;) {
        struct item keep = it[i];
        memmove(&it[i], &it[i + 1], (n - i - 1) * sizeof(*it));
        struct result r = check_items(w, epoch, it, n - 1);
        if (r.verdict == V_VIOLATION) {
            n--;
            *last = r;
        } else {
            memmove(&it[i + 1], &it[i], (n - i - 1) * sizeof(*it));
            it[i] = keep;
        }
    }
    return n;
}

static void
save_recovery_base(struct worker *w, struct shared *sh, size_t done)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < done; i++)
        if (sh->res[i].verdict == V_OK && sh->res[i].restored &&
            (best == SIZE_MAX || sh->res[i].restored > sh->res[best].restored))
            best = i;
    if (best == SIZE_MAX) {
        printf("%s: no checked state had pages for recovery to restore; no recovery base\n",
               opt.name);
        return;
    }
    size_t n = materialize(&states[best], w->items);
    save_image(w, states[best].epoch, w->items, n, opt.save_recovery_base);
    char path[4200];
    snprintf(path, sizeof(path), "%s.constraints", opt.save_recovery_base);
    FILE *fp = fopen(path, "w");
    if (!fp)
        die("%s: %s", path, strerror(errno));
    size_t end_pos = n ? w->items[n - 1].rec : flush_pos[states[best].epoch];
    size_t fb = states[best].epoch + 1 < nflush ? flush_pos[states[best].epoch + 1] : nrecs;
    for (unsigned f = 0; f < nfiles; f++) {
        for (uint32_t p = 0; p < files[f].npages; p++) {
            struct page_info *pi = &files[f].pg[p];
            uint64_t lo = floor_of(floors, nfloors, fb, f, p), hi = 0;
            for (size_t i = 0; i < pi->nv; i++)
                if (pi->v[i].bpos < end_pos && pi->v[i].ver > hi)
                    hi = pi->v[i].ver;
            fprintf(fp, "%u %u %" PRIu64 " %" PRIu64 "\n", f, p, lo, hi);
        }
    }
    fclose(fp);
    printf("%s: recovery base (state %zu, %" PRIu64 " pages to restore) saved to %s\n", opt.name,
           best, sh->res[best].restored, opt.save_recovery_base);
}

static int
parse_only(const char *spec, uint32_t *epoch, struct item *it)
{
    /* "EPOCH:REC[t],REC[t],..." with tear seeds "REC t SEED" not supported: torn items get
     * their seed from "@SEED" after the t, as describe() prints them. */
    char *end;
    *epoch = (uint32_t)strtoul(spec, &end, 10);
    size_t n = 0;
    if (*end == ':')
        end++;
    while (*end) {
        it[n] = (struct item){.rec = strtoull(end, &end, 10)};
        if (*end == 't') {
            it[n].torn = true;
            end++;
            if (*end == '@')
                it[n].tseed = strtoull(end + 1, &end, 0);
        }
        n++;
        if (*end == ',')
            end++;
        else if (*end)
            die("bad --only spec at '%s'", end);
    }
    return (int)n;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {{"base", 1, 0, 'b'},
                                       {"log", 1, 0, 'l'},
                                       {"fstype", 1, 0, 'f'},
                                       {"mnt", 1, 0, 'm'},
                                       {"store", 1, 0, 's'},
                                       {"states", 1, 0, 'n'},
                                       {"seed", 1, 0, 'x'},
                                       {"workers", 1, 0, 'w'},
                                       {"tear", 1, 0, 't'},
                                       {"expect", 1, 0, 'e'},
                                       {"name", 1, 0, 'N'},
                                       {"results", 1, 0, 'r'},
                                       {"fsck", 0, 0, 'F'},
                                       {"constraints", 1, 0, 'C'},
                                       {"only", 1, 0, 'o'},
                                       {"budget", 1, 0, 'B'},
                                       {"keep-failures", 1, 0, 'k'},
                                       {"verbose", 0, 0, 'v'},
                                       {"save-recovery-base", 1, 0, 'R'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            opt.base = optarg;
            break;
        case 'l':
            opt.log = optarg;
            break;
        case 'f':
            opt.fstype = optarg;
            break;
        case 'm':
            opt.mnt = optarg;
            break;
        case 's':
            opt.store = optarg;
            break;
        case 'n':
            opt.states = (unsigned)atoi(optarg);
            break;
        case 'x':
            opt.seed = strtoull(optarg, NULL, 0);
            break;
        case 'w':
            opt.workers = (unsigned)atoi(optarg);
            break;
        case 't':
            opt.tear = (unsigned)atoi(optarg);
            break;
        case 'e':
            opt.expect_violation = !strcmp(optarg, "violation");
            break;
        case 'N':
            opt.name = optarg;
            break;
        case 'r':
            opt.results = optarg;
            break;
        case 'F':
            opt.fsck = true;
            break;
        case 'C':
            opt.constraints = optarg;
            break;
        case 'o':
            opt.only = optarg;
            break;
        case 'B':
            opt.budget_s = atof(optarg);
            break;
        case 'k':
            opt.keep_fail = (unsigned)atoi(optarg);
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'R':
            opt.save_recovery_base = optarg;
            break;
        default:
            die("bad option");
        }
    }
    if (!opt.base || !opt.log || !opt.fstype || !opt.mnt || !opt.store || !opt.workers ||
        (opt.tear != 4096 && opt.tear != 512))
        die("usage: --base IMG --log LOG --fstype xfs|ext4 --mnt DIR --store DIR [--states N] "
            "[--seed S] [--workers W] [--tear 4096|512] [--expect ok|violation] [--fsck] "
            "[--results DIR] [--constraints FILE] [--only EPOCH:REC,RECt@SEED,..]");
    setvbuf(stdout, NULL, _IOLBF, 0); /* workers print too, and leave with _exit() */
    load_log();
    if (opt.constraints)
        load_constraints();
    own_namespace();

    if (opt.only) {
        /* The run that kept the state removed its mount point; it only has to exist. */
        char top[4200] = "";
        if (!data_root[0])
            mkdir_p(opt.mnt, top, sizeof(top));
        struct worker w;
        worker_init(&w, 0);
        uint32_t epoch;
        int n = parse_only(opt.only, &epoch, w.items);
        struct result r = check_items(&w, epoch, w.items, (size_t)n);
        worker_done(&w);
        rmdir_up(opt.mnt, top);
        printf("%s: %s%s%s\n", opt.name, verdict_name[r.verdict], r.msg[0] ? ": " : "", r.msg);
        return r.verdict == V_VIOLATION ? 1 : 0;
    }

    double t0 = now_s();
    generate();
    double tgen = now_s() - t0;
    struct shared *sh = mmap(NULL, sizeof(*sh) + nstates * sizeof(struct result),
                             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    for (size_t i = 0; i < nstates; i++)
        sh->res[i].verdict = -1;
    double deadline = t0 + opt.budget_s;
    pid_t pids[64];
    unsigned nw = opt.workers > 64 ? 64 : opt.workers;
    for (unsigned k = 0; k < nw; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            own_namespace();
            struct worker w;
            worker_init(&w, (int)k);
            for (;;) {
                size_t i = atomic_fetch_add(&sh->next, 1);
                if (i >= nstates || now_s() > deadline)
                    break;
                size_t n = materialize(&states[i], w.items);
                sh->res[i] = check_items(&w, states[i].epoch, w.items, n);
                if (opt.verbose || (sh->res[i].verdict != V_OK && !opt.expect_violation))
                    printf("%s: state %zu epoch %u kind %u: %s %s\n", opt.name, i, states[i].epoch,
                           states[i].kind, verdict_name[sh->res[i].verdict], sh->res[i].msg);
            }
            if (opt.verbose)
                printf("%s: worker %u ms total: image %.0f, mount %.0f, recovery+check %.0f, "
                       "umount %.0f, fsck %.0f\n",
                       opt.name, k, phase_t[0] * 1e3, phase_t[1] * 1e3, phase_t[2] * 1e3,
                       phase_t[3] * 1e3, phase_t[4] * 1e3);
            worker_done(&w);
            fflush(stdout);
            _exit(0);
        }
    }
    bool worker_died = false;
    for (unsigned k = 0; k < nw; k++) {
        int st;
        waitpid(pids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            worker_died = true;
            fprintf(stderr, "%s: worker %u failed\n", opt.name, k);
        }
    }
    double elapsed = now_s() - t0;

    uint64_t count[V__COUNT] = {0}, fsck_bad = 0, not_run = 0, restored_states = 0;
    uint64_t ack_older_states = 0;
    size_t done = 0;
    for (size_t i = 0; i < nstates; i++) {
        if (sh->res[i].verdict < 0) {
            not_run++;
            continue;
        }
        done++;
        count[sh->res[i].verdict]++;
        fsck_bad += (uint64_t)sh->res[i].fsck_failed;
        restored_states += sh->res[i].restored > 0;
        ack_older_states += sh->res[i].ack_older > 0;
    }

    /* Keep failing states, shrunk, with their images. */
    struct worker w;
    bool have_worker = false;
    unsigned kept = 0;
    for (size_t i = 0; i < nstates && kept < opt.keep_fail && opt.results; i++) {
        if (sh->res[i].verdict != V_VIOLATION)
            continue;
        if (!have_worker) {
            worker_init(&w, 99);
            have_worker = true;
        }
        size_t n = materialize(&states[i], w.items);
        size_t n0 = n;
        struct result last = sh->res[i];
        n = shrink(&w, states[i].epoch, w.items, n, &last);
        char dir[4200], path[4300];
        snprintf(dir, sizeof(dir), "%s/%s/fail-%u", opt.results, opt.name, kept);
        char cmd[4400];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
        if (system(cmd) != 0)
            die("mkdir %s", dir);
        snprintf(path, sizeof(path), "%s/state.img", dir);
        save_image(&w, states[i].epoch, w.items, n, path);
        snprintf(path, sizeof(path), "%s/state.txt", dir);
        FILE *fp = fopen(path, "w");
        if (!fp)
            die("%s: %s", path, strerror(errno));
        fprintf(fp, "scenario=%s seed=%" PRIu64 " state=%zu kind=%u writes-before-shrink=%zu\n",
                opt.name, opt.seed, i, states[i].kind, n0);
        describe(fp, states[i].epoch, w.items, n);
        /* run.sh copies the log and the base image next to the kept states. */
        fprintf(fp,
                "verdict: %s\nreproduce: blockcrash-check --base %s/%s/base.img --log %s/%s/log "
                "--fstype %s --mnt %s --store %s --tear %u --only %u:",
                last.msg, opt.results, opt.name, opt.results, opt.name, opt.fstype, opt.mnt,
                opt.store, opt.tear, states[i].epoch);
        for (size_t k = 0; k < n; k++) {
            fprintf(fp, "%s%zu", k ? "," : "", w.items[k].rec);
            if (w.items[k].torn)
                fprintf(fp, "t@0x%" PRIx64, w.items[k].tseed);
        }
        fprintf(fp, "\n");
        fclose(fp);
        printf("%s: failing state %zu shrunk from %zu to %zu writes: %s\n  kept in %s\n", opt.name,
               i, n0, n, last.msg, dir);
        kept++;
    }
    if (opt.save_recovery_base) {
        if (!have_worker) {
            worker_init(&w, 98);
            have_worker = true;
        }
        save_recovery_base(&w, sh, nstates);
    }
    if (have_worker)
        worker_done(&w);

    double per_min = elapsed > 0 ? (double)done * 60.0 / elapsed : 0;
    bool pass;
    const char *why;
    if (worker_died) {
        pass = false;
        why = "a worker failed";
    } else if (done == 0) {
        pass = false;
        why = "no state was checked";
    } else if (opt.expect_violation) {
        pass = count[V_VIOLATION] > 0;
        why = pass ? "control caught" : "control found no violation: the harness cannot fail";
    } else {
        pass = count[V_VIOLATION] == 0;
        why = pass ? "no violation" : "VIOLATIONS on a protected path";
    }
    printf("%s: %zu states checked in %.0f s (%.0f states/min, generation %.1f s, log %zu "
           "records, %zu flushes): ok %" PRIu64 ", violation %" PRIu64 ", mount-failure %" PRIu64
           ", duplicate-skipped %" PRIu64 ", not-run %" PRIu64 "%s, recovery restored pages in "
           "%" PRIu64 " -- expect %s: %s: %s\n",
           opt.name, done, elapsed, per_min, tgen, nrecs, nflush, count[V_OK], count[V_VIOLATION],
           count[V_MOUNT_FAIL], dup_skipped, not_run,
           opt.fsck ? (fsck_bad ? ", fsck-failure some" : ", fsck clean") : "", restored_states,
           opt.expect_violation ? "violation" : "ok", pass ? "PASS" : "FAIL", why);
    if (opt.fsck)
        printf("%s: fsck-failure %" PRIu64 "\n", opt.name, fsck_bad);
    if (deferred)
        printf("%s: deferred mode: %" PRIu64 " states held a page older than an acknowledged "
               "write the synchronous rule would have made durable (allowed)\n",
               opt.name, ack_older_states);
    return pass ? 0 : 1;
}
