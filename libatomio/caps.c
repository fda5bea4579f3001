/* SPDX-License-Identifier: MIT */
/*
 * caps.c -- the per-file capability probe: raw statx through our own struct, statfs,
 * the backing disk's sysfs atomic limit, and a buffered RWF_ATOMIC probe write on an O_TMPFILE
 * beside the file. atomio__caps_derive() turns raw figures into verdicts and reasons without a
 * syscall, so tests can feed it captured values. The data file itself is never written.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static uint32_t
log2u(uint64_t v)
{
    uint32_t r = 0;
    while (v > 1) {
        v >>= 1;
        r++;
    }
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Buffered-probe cache: one verdict per (device, page size).                               */

#define PROBE_CACHE 64

static struct {
    uint32_t major, minor, page_size;
    int err;
    bool used;
} probe_cache[PROBE_CACHE];
static unsigned probe_cache_next;
static pthread_mutex_t probe_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool
probe_cache_get(uint32_t major, uint32_t minor, uint32_t page_size, int *err)
{
    bool hit = false;
    pthread_mutex_lock(&probe_cache_lock);
    for (unsigned i = 0; i < PROBE_CACHE; i++) {
        if (probe_cache[i].used && probe_cache[i].major == major && probe_cache[i].minor == minor &&
            probe_cache[i].page_size == page_size) {
            *err = probe_cache[i].err;
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&probe_cache_lock);
    return hit;
}

static void
probe_cache_put(uint32_t major, uint32_t minor, uint32_t page_size, int err)
{
    pthread_mutex_lock(&probe_cache_lock);
    unsigned i = probe_cache_next++ % PROBE_CACHE;
    probe_cache[i].major = major;
    probe_cache[i].minor = minor;
    probe_cache[i].page_size = page_size;
    probe_cache[i].err = err;
    probe_cache[i].used = true;
    pthread_mutex_unlock(&probe_cache_lock);
}

void
atomio__caps_cache_forget(uint32_t major, uint32_t minor, uint32_t page_size)
{
    pthread_mutex_lock(&probe_cache_lock);
    for (unsigned i = 0; i < PROBE_CACHE; i++)
        if (probe_cache[i].used && probe_cache[i].major == major && probe_cache[i].minor == minor &&
            probe_cache[i].page_size == page_size)
            probe_cache[i].used = false;
    pthread_mutex_unlock(&probe_cache_lock);
}

void
atomio__caps_cache_clear(void)
{
    pthread_mutex_lock(&probe_cache_lock);
    memset(probe_cache, 0, sizeof(probe_cache));
    probe_cache_next = 0;
    pthread_mutex_unlock(&probe_cache_lock);
}

/*
 * buffered_probe() -- try one buffered RWF_ATOMIC|RWF_DSYNC write of exactly page_size bytes
 * at offset 0 of an O_TMPFILE in dir. Only a real write proves support: no statx bit for
 * buffered atomics exists upstream and the proposed one (0x40000) is contested. The temp file
 * has no name and vanishes on close. Returns 0 if the kernel took the whole page, else -errno
 * (a short write is reported as -EIO: it disqualifies the path just the same). *wrote tells
 * whether the write was attempted at all: when the scratch file cannot be made (read-only
 * mount, no permission, no O_TMPFILE support), the kernel was never asked, and that must
 * neither be cached per device nor be reported as the kernel's refusal.
 */
static int
buffered_probe(const char *dir, uint32_t page_size, bool *wrote)
{
    *wrote = false;
    int fd = atomio__sys.open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0)
        return fd;
    /* Pre-faulted, page-aligned source so a fault cannot short-copy the probe itself. */
    void *buf = atomio__buf_alloc(NULL, page_size, page_size < 4096 ? 4096 : page_size);
    if (!buf) {
        atomio__sys.close(fd);
        return -ENOMEM;
    }
    memset(buf, 0xA5, page_size);
    struct iovec iov = {.iov_base = buf, .iov_len = page_size};
    ssize_t n = atomio__sys.pwritev2(fd, &iov, 1, 0, RWF_ATOMIC | RWF_DSYNC);
    *wrote = true;
    atomio__buf_free(NULL, buf, page_size);
    atomio__sys.close(fd);
    if (n < 0)
        return (int)n;
    return n == (ssize_t)page_size ? 0 : -EIO;
}

/*
 * sysfs_hw_unit_max() -- the backing disk's queue/atomic_write_unit_max_bytes. A partition has
 * no queue/ of its own: its parent directory (the disk) does. Returns 0 with *out set, or
 * -errno (-ENODEV when the device is not a block device, e.g. tmpfs).
 */
static int
sysfs_hw_unit_max(uint32_t major, uint32_t minor, uint32_t *out)
{
    char path[128], buf[64];
    *out = 0;
    if (major == 0)
        return -ENODEV; /* anonymous device: tmpfs, overlay, nfs... */
    snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/atomic_write_unit_max_bytes", major,
             minor);
    ssize_t n = atomio__sys.read_text(path, buf, sizeof(buf));
    if (n == -ENOENT) {
        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/atomic_write_unit_max_bytes",
                 major, minor);
        n = atomio__sys.read_text(path, buf, sizeof(buf));
    }
    if (n < 0)
        return (int)n;
    char *end;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int
atomio__probe_fd(int fd, const char *dir_path, uint32_t page_size, atomio_caps *caps)
{
    uint32_t size = caps->size;
    memset(caps, 0, sizeof(*caps));
    caps->size = size;
    caps->page_size = page_size;
    long sp = sysconf(_SC_PAGESIZE);
    caps->sys_page_size = sp > 0 ? (uint32_t)sp : 4096;

    struct atomio_statx stx;
    int r = atomio__sys.statx(fd, "", AT_EMPTY_PATH,
                              0x7ffU /* STATX_BASIC_STATS */ | STATX_DIOALIGN | STATX_WRITE_ATOMIC |
                                  STATX_DIO_READ_ALIGN,
                              &stx);
    if (r < 0)
        return r;
    caps->valid |= ATOMIO_CAPS_STATX;
    caps->statx_mask = stx.mask;
    caps->statx_attributes = stx.attributes;
    caps->fs_block_size = stx.blksize;
    caps->dev_major = stx.dev_major;
    caps->dev_minor = stx.dev_minor;
    if (stx.mask & STATX_DIOALIGN) {
        caps->dio_mem_align = stx.dio_mem_align;
        caps->dio_offset_align = stx.dio_offset_align;
    }
    if (stx.mask & STATX_DIO_READ_ALIGN)
        caps->dio_read_offset_align = stx.dio_read_offset_align;
    if (stx.mask & STATX_WRITE_ATOMIC) {
        caps->unit_min = stx.atomic_write_unit_min;
        caps->unit_max = stx.atomic_write_unit_max;
        caps->segments_max = stx.atomic_write_segments_max;
        caps->unit_max_opt = stx.atomic_write_unit_max_opt;
    }

    /* The folio rule needs the fs block (the mapping's minimum folio order). stx_blksize is
     * the preferred I/O size: XFS inflates it to the stripe width or allocsize with -o largeio
     * and to the extent size on realtime files, while statfs f_bsize stays the block size.
     * Take the smaller when both are known. */
    struct statfs sfs;
    if (atomio__sys.fstatfs(fd, &sfs) == 0) {
        caps->fs_type = (uint64_t)sfs.f_type;
        uint32_t fb = sfs.f_bsize > 0 && sfs.f_bsize <= UINT32_MAX ? (uint32_t)sfs.f_bsize : 0;
        if (fb && (!caps->fs_block_size || fb < caps->fs_block_size))
            caps->fs_block_size = fb;
    }

    caps->hw_sysfs_err = sysfs_hw_unit_max(caps->dev_major, caps->dev_minor, &caps->hw_unit_max);
    if (caps->hw_sysfs_err == 0)
        caps->valid |= ATOMIO_CAPS_SYSFS;

    if (dir_path && atomio__is_pow2(page_size)) {
        int perr;
        bool wrote = true;
        if (!probe_cache_get(caps->dev_major, caps->dev_minor, page_size, &perr)) {
            perr = buffered_probe(dir_path, page_size, &wrote);
            if (wrote)
                probe_cache_put(caps->dev_major, caps->dev_minor, page_size, perr);
        }
        /* Not probed (ATOMIO_CAPS_BUFFERED clear) but with the reason in the error field. */
        caps->buffered_probe_err = perr;
        if (wrote)
            caps->valid |= ATOMIO_CAPS_BUFFERED;
    }

    atomio__caps_derive(caps);
    return 0;
}

/* The direct verdict: the four-part rule of docs/design.md, then the page-size range, then HW vs
 * SW. */
static void
derive_direct(atomio_caps *c)
{
    uint32_t p = c->page_size;
    if (!(c->statx_mask & STATX_WRITE_ATOMIC)) {
        c->direct_atomic = ATOMIO_ATOMIC_NONE;
        atomio__reason(c->reason_direct,
                       "no O_DIRECT atomic writes: statx does not report STATX_WRITE_ATOMIC "
                       "for this file (kernel < 6.11 or filesystem without support)");
        return;
    }
    if (!(c->statx_attributes & STATX_ATTR_WRITE_ATOMIC) || c->unit_min == 0 ||
        c->segments_max < 1) {
        c->direct_atomic = ATOMIO_ATOMIC_NONE;
        atomio__reason(c->reason_direct,
                       "no O_DIRECT atomic writes: filesystem reports unit_min %u, unit_max %u, "
                       "segments %u, attribute %s",
                       c->unit_min, c->unit_max, c->segments_max,
                       (c->statx_attributes & STATX_ATTR_WRITE_ATOMIC) ? "set" : "absent");
        return;
    }
    if (!atomio__is_pow2(p) || p < c->unit_min || p > c->unit_max) {
        c->direct_atomic = ATOMIO_ATOMIC_NONE;
        atomio__reason(c->reason_direct, "page %u is outside the atomic unit range [%u, %u]", p,
                       c->unit_min, c->unit_max);
        return;
    }
    if (c->dio_offset_align && p % c->dio_offset_align) {
        c->direct_atomic = ATOMIO_ATOMIC_NONE;
        atomio__reason(c->reason_direct, "page %u is not a multiple of the DIO alignment %u", p,
                       c->dio_offset_align);
        return;
    }
    /* max_opt != 0 is the filesystem's own fast limit. 0 is ambiguous (pre-6.16, or XFS with
     * no device support), so ask the device: 0 there means every atomic write is CoW. */
    if (c->unit_max_opt) {
        if (p <= c->unit_max_opt) {
            c->direct_atomic = ATOMIO_ATOMIC_HARDWARE;
            atomio__reason(c->reason_direct,
                           "hardware atomic writes: page %u <= unit_max_opt %u (range [%u, %u])", p,
                           c->unit_max_opt, c->unit_min, c->unit_max);
        } else {
            c->direct_atomic = ATOMIO_ATOMIC_SOFTWARE;
            atomio__reason(c->reason_direct,
                           "software (copy-on-write) atomic writes: page %u > unit_max_opt %u "
                           "(range [%u, %u])",
                           p, c->unit_max_opt, c->unit_min, c->unit_max);
        }
        return;
    }
    if ((c->valid & ATOMIO_CAPS_SYSFS) && c->hw_unit_max >= p) {
        c->direct_atomic = ATOMIO_ATOMIC_HARDWARE;
        atomio__reason(c->reason_direct,
                       "hardware atomic writes: device unit max %u >= page %u (range [%u, %u])",
                       c->hw_unit_max, p, c->unit_min, c->unit_max);
        return;
    }
    c->direct_atomic = ATOMIO_ATOMIC_SOFTWARE;
    if (c->valid & ATOMIO_CAPS_SYSFS)
        atomio__reason(c->reason_direct,
                       "software (copy-on-write) atomic writes, no hardware support: max_opt 0, "
                       "device atomic_write_unit_max_bytes %u (range [%u, %u])",
                       c->hw_unit_max, c->unit_min, c->unit_max);
    else
        atomio__reason(c->reason_direct,
                       "assumed software (copy-on-write) atomic writes: max_opt 0 and device "
                       "limit unreadable (%s); range [%u, %u]",
                       atomio_err_name(c->hw_sysfs_err), c->unit_min, c->unit_max);
}

/*
 * derive_buffered() -- the folio-order rule (docs/buffered-atomic.md) and the probe verdict. A
 * buffered atomic write must be exactly one page-cache folio whose order is both the mapping's
 * minimum and maximum order. Userspace sees only the minimum (from the fs block size), so the page
 * must be a power-of-two multiple of the system page, of exactly the order of max(fs block,
 * system page), and inside [unit_min, unit_max] when the file reports atomic limits at all
 * (a kernel without O_DIRECT atomics for the file reports zeros; then the probe write of the
 * exact shape is the only evidence). The probe write is the final word: AUTO needs both.
 * When the rule fails, the reason leads with the orders that disagree, because that is what
 * ATOMIO_E_FOLIO_ORDER reports; the probe's errno follows.
 */
static void
derive_buffered(atomio_caps *c)
{
    uint32_t p = c->page_size, sp = c->sys_page_size, bs = c->fs_block_size;
    char folio[ATOMIO_REASON_LEN] = "";

    c->page_order =
        (p >= sp && p % sp == 0 && atomio__is_pow2(p / sp)) ? log2u(p / sp) : UINT32_MAX;
    c->fs_min_order = (bs > sp && atomio__is_pow2(bs)) ? log2u(bs / sp) : 0;

    if (c->page_order == UINT32_MAX)
        atomio__reason(folio,
                       "page %u is not a power-of-two multiple of the system page %u "
                       "(no folio order)",
                       p, sp);
    else if (c->page_order != c->fs_min_order)
        atomio__reason(folio,
                       "page %u = order %u, fs block %u = min order %u: one folio per "
                       "page needs equal orders",
                       p, c->page_order, bs, c->fs_min_order);
    else if (c->unit_min && (p < c->unit_min || p > c->unit_max))
        atomio__reason(folio, "page %u = order %u is outside the atomic unit range [%u, %u]", p,
                       c->page_order, c->unit_min, c->unit_max);
    c->folio_ok = folio[0] == '\0';
    c->buffered_atomic = 0;

    if (!(c->valid & ATOMIO_CAPS_BUFFERED)) {
        char why[ATOMIO_REASON_LEN] = "no directory to create a scratch file in";
        if (c->buffered_probe_err)
            atomio__reason(why, "cannot create the O_TMPFILE probe file: %s",
                           atomio_err_name(c->buffered_probe_err));
        if (folio[0])
            atomio__reason(c->reason_buffered, "%s; buffered atomic writes not probed (%s)", folio,
                           why);
        else
            atomio__reason(c->reason_buffered, "buffered atomic writes not probed: %s", why);
        return;
    }
    if (folio[0]) {
        if (c->buffered_probe_err)
            atomio__reason(c->reason_buffered, "%s; probe write: %s", folio,
                           atomio_err_name(c->buffered_probe_err));
        else
            atomio__reason(c->reason_buffered, "%s (the probe write succeeded)", folio);
        return;
    }
    if (c->buffered_probe_err) {
        atomio__reason(c->reason_buffered,
                       "kernel refused the buffered RWF_ATOMIC|RWF_DSYNC probe write of %u B "
                       "(one folio of order %u): %s",
                       p, c->page_order, atomio_err_name(c->buffered_probe_err));
        return;
    }
    c->buffered_atomic = 1;
    atomio__reason(c->reason_buffered,
                   "buffered RWF_ATOMIC|RWF_DSYNC probe write of %u B succeeded; page = one "
                   "folio of order %u",
                   p, c->page_order);
}

void
atomio__caps_derive(atomio_caps *c)
{
    derive_direct(c);
    derive_buffered(c);
    atomio__reason(c->reason_doublewrite,
                   "always possible with a doublewrite store: every page is written twice");

    struct atomio_select_in in = {.caps = c,
                                  .io_style = ATOMIO_IO_ANY,
                                  .policy = ATOMIO_POLICY_PREFER_FAST,
                                  .forced = ATOMIO_PATH_AUTO,
                                  .have_store = true};
    struct atomio_select_out out;
    atomio__select(&in, &out);
    c->auto_path = out.err ? ATOMIO_PATH_AUTO : out.path;
    memcpy(c->reason_auto, out.reason, sizeof(c->reason_auto));
    c->valid |= ATOMIO_CAPS_VERDICTS;
}

int
atomio__dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n + 1 > len)
        return -ENAMETOOLONG;
    memcpy(out, slash ? path : ".", n);
    out[n] = '\0';
    return 0;
}

int
atomio_probe(const char *path, uint32_t page_size, atomio_caps *caps)
{
    if (!path || !caps)
        return ATOMIO_E_INVAL;
    if (caps->size < 8)
        return ATOMIO_E_ABI;
    if (!atomio__is_pow2(page_size) || page_size < ATOMIO_MIN_PAGE || page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_PAGE_SIZE;

    /* O_PATH would be enough for statx, but fstatfs and the probe need a real descriptor;
     * opening read-only never modifies the file. */
    int fd = atomio__sys.open(path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    char dir[PATH_MAX];
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof(dir), "%s", path);
        /* A directory's own statx says nothing about atomic writes to files in it: probe a
         * nameless O_TMPFILE there instead (it vanishes on close, nothing is linked). */
        int tfd = atomio__sys.open(path, O_TMPFILE | O_RDWR, 0600);
        if (tfd >= 0) {
            atomio__sys.close(fd);
            fd = tfd;
        }
    } else {
        int e = atomio__dir_of(path, dir, sizeof(dir));
        if (e < 0) {
            atomio__sys.close(fd);
            return e;
        }
    }

    atomio_caps full;
    full.size = sizeof(full);
    int r = atomio__probe_fd(fd, dir, page_size, &full);
    atomio__sys.close(fd);
    if (r < 0)
        return r;
    return atomio__copy_out(caps, &full, sizeof(full));
}
