/* SPDX-License-Identifier: MIT */
/*
 * calibrate.c -- the CALIBRATE policy's measurement: on a scratch O_TMPFILE in
 * the data file's directory (so the same filesystem and device), time a few O_DIRECT
 * RWF_ATOMIC page writes against the doublewrite protocol's I/O for the same pages, both made
 * durable, and report the mean nanoseconds per page of each. The scratch file vanishes on
 * close; the data file and the store are never touched.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define CAL_PAGES  8u    /* pages per round */
#define CAL_ROUNDS 2u    /* the first round also warms up allocation and caches */
#define CAL_HDR    4096u /* stands for the batch header and slot table */

static int
write_one(int fd, const void *buf, size_t len, uint64_t off, int flags)
{
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    ssize_t r = atomio__sys.pwritev2(fd, &iov, 1, off, flags);
    if (r < 0)
        return (int)r;
    return (size_t)r == len ? 0 : ATOMIO_E_SHORT_WRITE;
}

int
atomio__calibrate(atomio_ctx *ctx, atomio_file *f, uint64_t *atomic_ns, uint64_t *dblwr_ns)
{
    *atomic_ns = *dblwr_ns = 0;
    if (!f->path)
        return ATOMIO_E_INVAL;
    char dir[4096];
    int r = atomio__dir_of(f->path, dir, sizeof(dir));
    if (r < 0)
        return r;
    uint32_t ps = f->page_size;
    size_t align = f->caps.dio_mem_align > 4096 ? f->caps.dio_mem_align : 4096;
    /* data area: pages [0, CAL_PAGES); doublewrite area after it: header + CAL_PAGES pages */
    size_t blen = CAL_HDR + (size_t)CAL_PAGES * ps;
    uint8_t *buf = atomio__buf_alloc(ctx, blen, align);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < blen; i++)
        buf[i] = (uint8_t)(i * 31u + 7u);

    int fd = atomio__sys.open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0600);
    if (fd < 0) {
        atomio__buf_free(ctx, buf, blen);
        return fd;
    }
    uint64_t dw_off = (uint64_t)CAL_PAGES * ps;
    uint64_t total = dw_off + blen;
    /* Allocate and write every block once, so the timed writes are overwrites, as an engine's
     * page writes mostly are (and XFS's software atomic path then has to copy on write). */
    if ((r = atomio__sys.fallocate(fd, 0, 0, total)) < 0 && r != -EOPNOTSUPP)
        goto out;
    for (uint64_t off = 0; off < total; off += blen) {
        size_t n = total - off < blen ? (size_t)(total - off) : blen;
        if ((r = write_one(fd, buf, n, off, 0)) < 0)
            goto out;
    }
    if ((r = atomio__sys.fdatasync(fd)) < 0)
        goto out;

    uint64_t t_atomic = 0, t_dw = 0;
    for (unsigned round = 0; round < CAL_ROUNDS; round++) {
        uint64_t t0 = atomio__now_ns();
        for (uint32_t i = 0; i < CAL_PAGES; i++)
            if ((r = write_one(fd, buf + CAL_HDR + (size_t)i * ps, ps, (uint64_t)i * ps,
                               RWF_ATOMIC)) < 0)
                goto out;
        if ((r = atomio__sys.fdatasync(fd)) < 0)
            goto out;
        uint64_t t1 = atomio__now_ns();
        /* The doublewrite protocol's I/O: one sequential batch write, durable; the in-place
         * writes; durable; the header retire. */
        if ((r = write_one(fd, buf, blen, dw_off, 0)) < 0 || (r = atomio__sys.fdatasync(fd)) < 0)
            goto out;
        for (uint32_t i = 0; i < CAL_PAGES; i++)
            if ((r = write_one(fd, buf + CAL_HDR + (size_t)i * ps, ps, (uint64_t)i * ps, 0)) < 0)
                goto out;
        if ((r = atomio__sys.fdatasync(fd)) < 0 || (r = write_one(fd, buf, CAL_HDR, dw_off, 0)) < 0)
            goto out;
        uint64_t t2 = atomio__now_ns();
        if (round > 0 || CAL_ROUNDS == 1) {
            t_atomic += t1 - t0;
            t_dw += t2 - t1;
        }
    }
    unsigned counted = CAL_ROUNDS > 1 ? CAL_ROUNDS - 1 : 1;
    *atomic_ns = t_atomic / (counted * CAL_PAGES);
    *dblwr_ns = t_dw / (counted * CAL_PAGES);
    if (*atomic_ns == 0)
        *atomic_ns = 1; /* 0 means "not measured" in the file info */
    if (*dblwr_ns == 0)
        *dblwr_ns = 1;
    r = 0;
out:
    atomio__sys.close(fd);
    atomio__buf_free(ctx, buf, blen);
    return r;
}
