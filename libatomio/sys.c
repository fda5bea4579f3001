/* SPDX-License-Identifier: MIT */
/*
 * sys.c -- the syscall seam. Every syscall the library makes for file data and metadata goes
 * through atomio__sys, so test builds can inject faults, simulate a crashing device or a
 * kernel with buffered atomic writes. Each wrapper returns >= 0 or -errno and leaves errno as
 * it found it: the library never reports through errno.
 */
#include "atomio_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEEP_ERRNO_BEGIN int saved_errno_ = errno
/* Evaluate the result (which may read errno) before restoring the caller's errno. */
#define KEEP_ERRNO_RET(r)                                                                          \
    do {                                                                                           \
        __typeof__(r) r_ = (r);                                                                    \
        errno = saved_errno_;                                                                      \
        return r_;                                                                                 \
    } while (0)

static int
sys_open(const char *path, int flags, unsigned mode)
{
    KEEP_ERRNO_BEGIN;
    int fd;
    do
        fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    KEEP_ERRNO_RET(fd < 0 ? -errno : fd);
}

static int
sys_close(int fd)
{
    KEEP_ERRNO_BEGIN;
    /* Linux closes the fd even when close() reports EINTR: never retry. */
    int r = close(fd);
    KEEP_ERRNO_RET(r < 0 && errno != EINTR ? -errno : 0);
}

static ssize_t
sys_pwritev2(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags)
{
    KEEP_ERRNO_BEGIN;
    ssize_t r;
    /* EINTR before any byte is written is safe to retry: nothing happened. */
    do
        r = pwritev2(fd, iov, iovcnt, (off_t)off, flags);
    while (r < 0 && errno == EINTR);
    KEEP_ERRNO_RET(r < 0 ? -errno : r);
}

static ssize_t
sys_pread(int fd, void *buf, size_t len, uint64_t off)
{
    KEEP_ERRNO_BEGIN;
    ssize_t r;
    do
        r = pread(fd, buf, len, (off_t)off);
    while (r < 0 && errno == EINTR);
    KEEP_ERRNO_RET(r < 0 ? -errno : r);
}

static int
sys_fdatasync(int fd)
{
    KEEP_ERRNO_BEGIN;
    int r = fdatasync(fd);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static int
sys_statx(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx)
{
    KEEP_ERRNO_BEGIN;
    memset(stx, 0, sizeof(*stx));
    long r = syscall(ATOMIO_NR_statx, dirfd, path, flags, mask, stx);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static int
sys_fstatfs(int fd, struct statfs *st)
{
    KEEP_ERRNO_BEGIN;
    int r = fstatfs(fd, st);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static int
sys_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
    KEEP_ERRNO_BEGIN;
    int r = fallocate(fd, mode, (off_t)off, (off_t)len);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static int
sys_prefetch(int fd, uint64_t off, uint64_t len)
{
    return -posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED); /* errno untouched */
}

static int
sys_ftruncate(int fd, uint64_t len)
{
    KEEP_ERRNO_BEGIN;
    int r = ftruncate(fd, (off_t)len);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static ssize_t
sys_read_text(const char *path, char *buf, size_t len)
{
    KEEP_ERRNO_BEGIN;
    if (len == 0)
        KEEP_ERRNO_RET(-EINVAL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        KEEP_ERRNO_RET(-errno);
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        KEEP_ERRNO_RET(-e);
    buf[n] = '\0';
    KEEP_ERRNO_RET(n);
}

static int
sys_getrlimit(int resource, struct rlimit *rl)
{
    KEEP_ERRNO_BEGIN;
    int r = getrlimit((__rlimit_resource_t)resource, rl);
    KEEP_ERRNO_RET(r < 0 ? -errno : 0);
}

static int
sys_dup(int fd)
{
    KEEP_ERRNO_BEGIN;
    int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    KEEP_ERRNO_RET(r < 0 ? -errno : r);
}

const struct atomio_sys atomio__sys_real = {
    .open = sys_open,
    .close = sys_close,
    .pwritev2 = sys_pwritev2,
    .pread = sys_pread,
    .fdatasync = sys_fdatasync,
    .statx = sys_statx,
    .fstatfs = sys_fstatfs,
    .fallocate = sys_fallocate,
    .ftruncate = sys_ftruncate,
    .read_text = sys_read_text,
    .getrlimit = sys_getrlimit,
    .dup = sys_dup,
    .prefetch = sys_prefetch,
};

struct atomio_sys atomio__sys = {
    .open = sys_open,
    .close = sys_close,
    .pwritev2 = sys_pwritev2,
    .pread = sys_pread,
    .fdatasync = sys_fdatasync,
    .statx = sys_statx,
    .fstatfs = sys_fstatfs,
    .fallocate = sys_fallocate,
    .ftruncate = sys_ftruncate,
    .read_text = sys_read_text,
    .getrlimit = sys_getrlimit,
    .dup = sys_dup,
    .prefetch = sys_prefetch,
};
