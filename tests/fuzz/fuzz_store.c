/* SPDX-License-Identifier: MIT */
/*
 * fuzz_store.c -- libFuzzer target for everything that reads a doublewrite store (format
 * version 2, docs/format.md): arbitrary bytes as the store file and the manifest of a store
 * directory, read by the pure decoders, by atomio_store_inspect(), by ctx open (which repairs
 * a header copy and runs recovery, which may rewrite data pages), by a second recovery and by
 * atomio_store_reset(). Besides "no crash, no sanitizer report, no hang", it checks:
 *   - recovery writes only inside the scratch directory, and creates only the store's files
 *     (every open outside it is refused at the syscall seam, every write checked);
 *   - inspect reports only records inside the ring, live only when valid;
 *   - after a successful open no live record is left: a second recovery restores nothing
 *     and inspect and reset find nothing live.
 *
 * Input (one store directory, as tests/fuzz/make_corpus.py writes them): u16 little-endian
 * manifest length m, the m bytes of atomio-manifest.dblwr, then the bytes of
 * atomio-store.dblwr (no store file when there are none).
 * Build: cmake -DATOMIO_BUILD_FUZZ=ON with clang (see tests/CMakeLists.txt). The scratch
 * directory is made under $TMPDIR (else /dev/shm, else /tmp) and removed at exit.
 */
#include "atomio_internal.h"
#include "store/format.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXFD 4096

static char base[256];     /* scratch directory */
static char dwdir[300];    /* the store directory: base/dw */
static char dataroot[300]; /* the engine's data root: base/data */
static bool ours[MAXFD];   /* fd opened through the seam on a path under base */

static void
fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_store: %s: %s\n", what, detail);
    abort();
}

static bool
under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* ---- the syscall seam: confine the library to the scratch directory ----------------------- */

static int
f_open(const char *path, int flags, unsigned mode)
{
    /* Recorded paths come from the input: nothing outside the scratch directory is touched,
     * and ".." cannot climb out of it. */
    if (strcmp(path, dwdir) != 0 &&
        (!under(path, base) || strstr(path, "/../") ||
         (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))) {
        if (flags & O_CREAT)
            fail("tried to create a file outside the store", path);
        return -ENOENT;
    }
    if ((flags & O_CREAT) && !under(path, dwdir)) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            fail("recovery created a file", path);
    }
    int fd = atomio__sys_real.open(path, flags, mode);
    if (fd >= 0 && fd < MAXFD)
        ours[fd] = true;
    return fd;
}

static int
f_close(int fd)
{
    if (fd >= 0 && fd < MAXFD)
        ours[fd] = false;
    return atomio__sys_real.close(fd);
}

static ssize_t
f_pwritev2(int fd, const struct iovec *iov, int cnt, uint64_t off, int flags)
{
    if (fd < 0 || fd >= MAXFD || !ours[fd])
        fail("wrote through a descriptor it did not open in the scratch directory", "");
    size_t len = 0;
    for (int k = 0; k < cnt; k++)
        len += iov[k].iov_len;
    if (off + len > (64u << 20))
        fail("wrote past 64 MiB in a scratch file", "");
    return atomio__sys_real.pwritev2(fd, iov, cnt, off, flags);
}

/* ---- the pure decoders, on the input's bytes ------------------------------------------------- */

static int
man_nop(void *arg, const struct atomio_dw_man_rec *m)
{
    (*(uint64_t *)arg)++;
    if (!m->path || !*m->path || strlen(m->path) > ATOMIO_DW_PATH_MAX)
        fail("manifest walk", "bad path handed out");
    return 0;
}

static void
decoders(const uint8_t *man, size_t m, const uint8_t *store, size_t slen)
{
    uint64_t n = 0;
    for (size_t off = 0; off + ATOMIO_DW_MANIFEST_HDR_LEN <= m;) {
        size_t used = atomio__dw_manifest_walk(man + off, m - off, man_nop, &n);
        if (used > m - off || used % 8)
            fail("manifest walk", "consumed past the buffer or off an 8-byte boundary");
        off += used ? used : 8;
    }
    struct atomio_dw_geom g[2];
    int d[2];
    for (uint32_t c = 0; c < 2; c++) {
        size_t at = (size_t)c * ATOMIO_DW_ALIGN;
        size_t avail = slen > at ? slen - at : 0;
        d[c] = atomio__dw_store_hdr_decode(
            store + at, avail < ATOMIO_DW_STORE_HDR_LEN ? avail : ATOMIO_DW_STORE_HDR_LEN, c, &g[c],
            NULL, NULL);
    }
    if (d[0] != 0 && d[1] != 0)
        return;
    const struct atomio_dw_geom *gg = d[0] == 0 ? &g[0] : &g[1];
    if (gg->ring_offset >= slen)
        return;
    const uint8_t *ring = store + gg->ring_offset;
    size_t rlen = slen - gg->ring_offset;
    if (rlen > gg->ring_size)
        rlen = (size_t)gg->ring_size;
    for (size_t pos = 0; pos + ATOMIO_DW_REC_HDR_LEN <= rlen;) {
        struct atomio_dw_batch_hdr b;
        (void)atomio__dw_rec_hdr_decode(ring + pos, gg, &b, NULL);
        enum atomio_dw_state s = atomio__dw_batch_decode(ring + pos, rlen - pos, gg, &b, NULL);
        for (uint32_t k = 0; k < b.count && k < 4096; k++) {
            struct atomio_dw_slot sl;
            bool ok;
            if (atomio__dw_slot_decode(ring + pos, rlen - pos, &b, k, &sl, &ok) == 0 && ok &&
                s == ATOMIO_DW_VALID && sl.offset + (uint64_t)sl.page_size > b.byte_len)
                fail("slot decode", "a valid slot's page is outside its record");
        }
        pos += s == ATOMIO_DW_VALID ? (size_t)b.byte_len : ATOMIO_DW_GRANULE;
    }
}

/* ---- the library on a real directory --------------------------------------------------------- */

static void
put_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        fail("scratch file", path);
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0)
            fail("scratch write", path);
        done += (size_t)w;
    }
    close(fd);
}

/* Relative manifest paths that name a plain file of the data root become existing (empty)
 * data files, every other one, so recovery both writes and finds files missing. */
static int
name_cb(void *arg, const struct atomio_dw_man_rec *m)
{
    int *k = arg;
    if (!(m->flags & ATOMIO_DW_MAN_RELATIVE) || strchr(m->path, '/') || m->path[0] == '.' ||
        strlen(m->path) > 200 || (*k)++ % 2)
        return 0;
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dataroot, m->path);
    put_file(p, NULL, 0);
    return 0;
}

static void
empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void
cleanup(void)
{
    empty_dir(dwdir);
    empty_dir(dataroot);
    rmdir(dwdir);
    rmdir(dataroot);
    rmdir(base);
}

static void
setup_once(void)
{
    if (base[0])
        return;
    const char *t = getenv("TMPDIR");
    struct stat sb;
    if (!t || !*t)
        t = stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof(base), "%s/atomio-fuzz-XXXXXX", t);
    if (!mkdtemp(base))
        fail("mkdtemp", base);
    snprintf(dwdir, sizeof(dwdir), "%s/dw", base);
    snprintf(dataroot, sizeof(dataroot), "%s/data", base);
    if (mkdir(dwdir, 0700) || mkdir(dataroot, 0700))
        fail("mkdir", base);
    atexit(cleanup);
}

struct insp {
    uint64_t ring_size, live, records;
};

static int
inspect_cb(void *arg, const atomio_inspect_record *rec)
{
    struct insp *in = arg;
    switch (rec->kind) {
    case ATOMIO_INSPECT_STORE:
        if (rec->format_version != ATOMIO_DW_VERSION || rec->ring_size < ATOMIO_DW_RING_MIN)
            fail("inspect", "a store header outside the format's bounds");
        in->ring_size = rec->ring_size;
        break;
    case ATOMIO_INSPECT_FILE:
        if (!rec->path || !*rec->path || rec->relative > 1)
            fail("inspect", "manifest record without a path");
        break;
    case ATOMIO_INSPECT_BATCH:
        in->records++;
        if (!rec->why)
            fail("inspect", "record without a reason");
        if (rec->offset < ATOMIO_DW_RING_OFFSET ||
            rec->offset + ATOMIO_DW_REC_HDR_LEN > ATOMIO_DW_RING_OFFSET + in->ring_size ||
            rec->offset % ATOMIO_DW_GRANULE)
            fail("inspect", "record outside the ring");
        if (rec->live && rec->state != ATOMIO_BATCH_VALID)
            fail("inspect", "a torn record called live");
        if (rec->state == ATOMIO_BATCH_VALID &&
            (rec->offset - ATOMIO_DW_RING_OFFSET != rec->lsn % in->ring_size ||
             rec->offset + rec->bytes > ATOMIO_DW_RING_OFFSET + in->ring_size))
            fail("inspect", "a valid record away from its LSN's position, or wrapping");
        in->live += rec->live != 0;
        break;
    case ATOMIO_INSPECT_SLOT:
        if (rec->page_size < ATOMIO_MIN_PAGE || rec->page_size > ATOMIO_MAX_PAGE || !rec->crc_ok)
            fail("inspect", "a slot of a valid record that does not check out");
        break;
    default:
        fail("inspect", "unknown record kind");
    }
    return 0;
}

static int
inspect(struct insp *in)
{
    memset(in, 0, sizeof(*in));
    int r = atomio_store_inspect(dwdir, inspect_cb, in);
    if (r < 0 && r != ATOMIO_E_STORE && r != -ENOENT && r != -ENOMEM)
        fail("inspect failed unexpectedly", atomio_err_name(r));
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t m = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (m > size)
        m = size;
    const uint8_t *man = data, *store = data + m;
    size_t slen = size - m;

    decoders(man, m, store, slen);

    setup_once();
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dwdir, ATOMIO_DW_MANIFEST_FILE);
    put_file(p, man, m);
    if (slen) {
        snprintf(p, sizeof(p), "%s/%s", dwdir, ATOMIO_DW_STORE_FILE);
        put_file(p, store, slen);
    }
    int k = 0;
    for (size_t off = 0; off + ATOMIO_DW_MANIFEST_HDR_LEN <= m;) {
        size_t used = atomio__dw_manifest_walk(man + off, m - off, name_cb, &k);
        off += used ? used : 8;
    }

    atomio__sys.open = f_open;
    atomio__sys.close = f_close;
    atomio__sys.pwritev2 = f_pwritev2;

    struct insp in;
    (void)inspect(&in);

    atomio_ctx_opts o;
    atomio_ctx_opts_init(&o);
    o.doublewrite_dir = dwdir;
    o.data_root = dataroot;
    o.doublewrite_store_bytes = ATOMIO_DW_RING_MIN;
    o.doublewrite_batch_pages = 4;
    o.doublewrite_max_page_size = 4096;
    o.submitter = ATOMIO_SUBMIT_SYNC;
    atomio_ctx *ctx = NULL;
    bool opened = atomio_ctx_open(&o, &ctx) == 0;
    if (opened) {
        /* Recovery ran at open; a second run must find nothing left to do. */
        atomio_recovery_report rep;
        memset(&rep, 0, sizeof(rep));
        rep.size = sizeof(rep);
        int r = atomio_ctx_recover(ctx, &rep);
        if (r != 0)
            fail("second recovery failed", atomio_err_name(r));
        if (rep.batches_valid || rep.pages_restored || rep.pages_checked)
            fail("recovery is not idempotent", "the second run found live records");
        atomio_ctx_close(ctx);
    }

    /* What open left: after a successful one nothing is live. */
    int ir = inspect(&in);
    if (opened && (ir != 0 || in.live))
        fail("after a successful open", ir ? atomio_err_name(ir) : "live records left");
    uint64_t live = ir == 0 ? in.live : 0;
    atomio_recovery_report rr;
    memset(&rr, 0, sizeof(rr));
    rr.size = sizeof(rr);
    int r = atomio_store_reset(dwdir, &rr);
    if (r != 0)
        fail("reset failed", atomio_err_name(r));
    if (rr.batches_discarded != live)
        fail("reset", "discarded another count of live records than inspect showed");

    atomio__sys = atomio__sys_real;
    empty_dir(dwdir);
    empty_dir(dataroot);
    return 0;
}
