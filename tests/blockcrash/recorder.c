/* SPDX-License-Identifier: MIT */
/*
 * recorder.c -- a FUSE daemon that serves one backing image file ("disk.img") and a control
 * file ("ctl"), and logs, in the order it receives them, every write, fsync and hole punch of
 * the image and every write to the control file (a workload marker) into one log.
 *
 * Run it single-threaded (-s) without the writeback cache: the kernel then hands each request
 * over only after the previous one was answered, and a write is logged before it is
 * acknowledged. A loop device with direct I/O on disk.img turns every block-layer flush into
 * an fsync here, so the log holds the device's history as a crash-consistency checker needs it.
 *
 *   blockcrash-recorder <image> <log> <mountpoint> [fuse options, e.g. -f -s]
 */
#define FUSE_USE_VERSION 35

#include "bc_log.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int img_fd = -1;
static int log_fd = -1;
static off_t img_size;
static uint64_t log_seq;
static int log_failed;

static const char IMG[] = "/disk.img";
static const char CTL[] = "/ctl";

/* log_append() -- one record; a failed log write makes every later request fail with EIO, so
 * a broken recording can never pass for a complete one. */
static int
log_append(uint32_t type, uint64_t off, uint64_t len, const void *data)
{
    if (log_failed)
        return -EIO;
    struct bc_rec_hdr h = {.type = type, .off = off, .len = len, .seq = log_seq++};
    struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)(uintptr_t)data, data ? len : 0}};
    size_t want = sizeof(h) + (data ? len : 0);
    ssize_t n = writev(log_fd, iov, data ? 2 : 1);
    if (n < 0 || (size_t)n != want) {
        log_failed = 1;
        fprintf(stderr, "blockcrash-recorder: log write failed: %s\n",
                n < 0 ? strerror(errno) : "short write");
        return -EIO;
    }
    return 0;
}

static int
rec_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    memset(st, 0, sizeof(*st));
    if (strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else if (strcmp(path, IMG) == 0) {
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_size = img_size;
        st->st_blksize = 4096;
        st->st_blocks = img_size / 512;
    } else if (strcmp(path, CTL) == 0) {
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
    } else {
        return -ENOENT;
    }
    return 0;
}

static int
rec_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
            enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    if (strcmp(path, "/") != 0)
        return -ENOENT;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    fill(buf, IMG + 1, NULL, 0, 0);
    fill(buf, CTL + 1, NULL, 0, 0);
    return 0;
}

static int
rec_open(const char *path, struct fuse_file_info *fi)
{
    if (strcmp(path, IMG) != 0 && strcmp(path, CTL) != 0)
        return -ENOENT;
    fi->direct_io = 1; /* no page cache in front of us: every write arrives here */
    fi->keep_cache = 0;
    return 0;
}

static int
rec_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, CTL) == 0)
        return 0;
    if (off >= img_size)
        return 0;
    if ((off_t)size > img_size - off)
        size = (size_t)(img_size - off);
    ssize_t n = pread(img_fd, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int
rec_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, CTL) == 0) {
        int r = log_append(BC_REC_MARK, 0, size, buf);
        return r < 0 ? r : (int)size;
    }
    if (off < 0 || off > img_size || (off_t)size > img_size - off)
        return -ENOSPC;
    int r = log_append(BC_REC_WRITE, (uint64_t)off, size, buf);
    if (r < 0)
        return r;
    ssize_t n = pwrite(img_fd, buf, size, off);
    if (n < 0)
        return -errno;
    return (int)n;
}

static int
rec_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    (void)fi;
    if (strcmp(path, IMG) != 0)
        return 0;
    return log_append(BC_REC_FLUSH, 0, 0, NULL);
}

static int
rec_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, IMG) != 0)
        return -EOPNOTSUPP;
    if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE)
        return 0; /* the image is fully allocated already */
    if (!(mode & FALLOC_FL_PUNCH_HOLE))
        return -EOPNOTSUPP;
    if (off < 0 || len < 0 || off > img_size)
        return -EINVAL;
    if (len > img_size - off)
        len = img_size - off;
    int r = log_append(BC_REC_DISCARD, (uint64_t)off, (uint64_t)len, NULL);
    if (r < 0)
        return r;
    if (fallocate(img_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
        return -errno;
    return 0;
}

static int
rec_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, CTL) == 0)
        return 0;
    return size == img_size ? 0 : -EPERM;
}

static void *
rec_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Every write must reach us before it is acknowledged: no writeback cache. */
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    cfg->direct_io = 1;
    cfg->kernel_cache = 0;
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    return NULL;
}

static const struct fuse_operations ops = {
    .init = rec_init,
    .getattr = rec_getattr,
    .readdir = rec_readdir,
    .open = rec_open,
    .read = rec_read,
    .write = rec_write,
    .fsync = rec_fsync,
    .fallocate = rec_fallocate,
    .truncate = rec_truncate,
};

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <image> <log> <mountpoint> [fuse options]\n", argv[0]);
        return 2;
    }
    img_fd = open(argv[1], O_RDWR);
    if (img_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    struct stat st;
    if (fstat(img_fd, &st) < 0 || st.st_size <= 0) {
        fprintf(stderr, "%s: empty or unreadable image\n", argv[1]);
        return 1;
    }
    img_size = st.st_size;
    log_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (log_fd < 0) {
        perror(argv[2]);
        return 1;
    }
    if (log_append(0, BC_LOG_MAGIC, (uint64_t)img_size, NULL) < 0)
        return 1;
    /* fuse_main takes the program name, the mountpoint and the options. */
    argv[2] = argv[0];
    return fuse_main(argc - 2, argv + 2, &ops, NULL);
}
