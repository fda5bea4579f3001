/* SPDX-License-Identifier: MIT */
/*
 * helpers.c -- t_* helpers. Loop filesystems are mounted inside a private mount namespace made
 * by the test process (Criterion runs each test in its own process), so nothing outlives the
 * test: the namespace dies with the process, the mount with it, and the autoclear loop device
 * is detached by the kernel. Images live in a private temp dir removed at exit.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int
t_is_root(void)
{
    return geteuid() == 0;
}

void
t_tmpdir(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(out, len, "%s/atomio-test-XXXXXX", base);
    cr_assert(mkdtemp(out) != NULL, "mkdtemp(%s): %s", out, strerror(errno));
}

void
t_subdir(char *out, size_t len, const char *parent, const char *name)
{
    snprintf(out, len, "%s/%s", parent, name);
    cr_assert_eq(mkdir(out, 0700), 0, "mkdir(%s): %s", out, strerror(errno));
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(p); /* cleanup is best effort: keep walking whatever happens */
    return 0;
}

void
t_rmtree(const char *path)
{
    if (path && *path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

const char *
t_join(const char *dir, const char *name)
{
    static __thread char bufs[8][PATH_MAX];
    static __thread unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", dir, name);
    return b;
}

void
t_fill(void *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (unsigned char)(x >> ((i % 8) * 8));
    }
}

static int
run(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
have_tool(const char *name)
{
    const char *dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dirs[i], name);
        if (access(p, X_OK) == 0)
            return 1;
    }
    return 0;
}

/* Attach img to a free loop device with autoclear; returns the device path in dev and an open
 * fd on it in *lfd_out. Keep that fd open until the filesystem is mounted: with autoclear the
 * kernel tears the device down at its last close, and a mount racing that teardown sees EIO. */
static int
loop_attach(const char *img, char *dev, size_t len, int *lfd_out)
{
    *lfd_out = -1;
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return -errno;
    int ifd = open(img, O_RDWR | O_CLOEXEC);
    if (ifd < 0) {
        close(ctl);
        return -errno;
    }
    int err = -EBUSY;
    for (int tries = 0; tries < 50 && err == -EBUSY; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) {
            err = -errno;
            break;
        }
        snprintf(dev, len, "/dev/loop%d", n);
        int lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0) {
            err = -errno;
            break;
        }
        struct loop_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.fd = (unsigned)ifd;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
            err = 0;
            *lfd_out = lfd;
            break;
        }
        err = errno == EBUSY ? -EBUSY : -errno; /* raced with another test: try again */
        close(lfd);
    }
    close(ifd);
    close(ctl);
    return err;
}

/* Temp dirs of filesystems still mounted, removed at exit if the test never got to its fini. */
static char atexit_tmp[4][PATH_MAX];

static void
cleanup_at_exit(void)
{
    for (int i = 0; i < 4; i++) {
        if (atexit_tmp[i][0]) {
            char mnt[PATH_MAX + 8];
            /* bounded: at -O1 (Tsan build) GCC cannot see the string ends within its row */
            snprintf(mnt, sizeof(mnt), "%.*s/mnt", PATH_MAX - 1, atexit_tmp[i]);
            umount2(mnt, MNT_DETACH);
            t_rmtree(atexit_tmp[i]);
        }
    }
}

static void
remember_tmp(const char *tmp, int add)
{
    for (int i = 0; i < 4; i++) {
        if (add && !atexit_tmp[i][0]) {
            snprintf(atexit_tmp[i], PATH_MAX, "%s", tmp);
            return;
        }
        if (!add && strcmp(atexit_tmp[i], tmp) == 0)
            atexit_tmp[i][0] = '\0';
    }
}

void
t_fs_mount(struct t_fs *fs, const char *kind, unsigned size_mb)
{
    memset(fs, 0, sizeof(*fs));
    snprintf(fs->kind, sizeof(fs->kind), "%s", kind);
    if (!t_is_root())
        cr_skip_test("skipped: %s filesystem test needs root for loop mounts (uid %d)", kind,
                     (int)geteuid());

    const char *mkfs = NULL;
    if (strncmp(kind, "xfs", 3) == 0)
        mkfs = "mkfs.xfs";
    else if (strcmp(kind, "ext4") == 0)
        mkfs = "mkfs.ext4";
    else if (strcmp(kind, "tmpfs") != 0)
        cr_assert_fail("unknown filesystem kind '%s'", kind);
    if (mkfs && !have_tool(mkfs))
        cr_skip_test("skipped: %s not installed (apt-get install %s)", mkfs,
                     strcmp(mkfs, "mkfs.xfs") == 0 ? "xfsprogs" : "e2fsprogs");
    if (mkfs && access("/dev/loop-control", F_OK) != 0)
        cr_skip_test("skipped: no /dev/loop-control, cannot make a %s loop filesystem", kind);

    /* Private mount namespace: the mount dies with this process whatever happens. */
    static int unshared;
    cr_assert(unshared++ || unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
    cr_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %s",
              strerror(errno));

    t_tmpdir(fs->tmp, sizeof(fs->tmp));
    remember_tmp(fs->tmp, 1);
    static int registered;
    if (!registered++)
        atexit(cleanup_at_exit);
    snprintf(fs->dir, sizeof(fs->dir), "%s/mnt", fs->tmp);
    cr_assert(mkdir(fs->dir, 0755) == 0, "mkdir %s: %s", fs->dir, strerror(errno));

    if (!mkfs) {
        char opt[64];
        snprintf(opt, sizeof(opt), "size=%um", size_mb);
        cr_assert(mount("tmpfs", fs->dir, "tmpfs", 0, opt) == 0, "mount tmpfs: %s",
                  strerror(errno));
        fs->mounted = 1;
        return;
    }

    char img[PATH_MAX + 16];
    snprintf(img, sizeof(img), "%s/fs.img", fs->tmp);
    int ifd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    cr_assert(ifd >= 0, "create %s: %s", img, strerror(errno));
    cr_assert(ftruncate(ifd, (off_t)size_mb << 20) == 0, "size image: %s", strerror(errno));
    close(ifd);

    int rc;
    if (strcmp(kind, "xfs") == 0)
        rc = run((char *const[]){"mkfs.xfs", "-q", "-f", "-m", "reflink=1", img, NULL});
    else if (strcmp(kind, "xfs-noreflink") == 0)
        rc = run((char *const[]){"mkfs.xfs", "-q", "-f", "-m", "reflink=0", img, NULL});
    else if (strcmp(kind, "xfs-16k") == 0)
        rc = run((char *const[]){"mkfs.xfs", "-q", "-f", "-m", "reflink=1", "-b", "size=16384",
                                 img, NULL});
    else if (strcmp(kind, "ext4") == 0)
        rc = run((char *const[]){"mkfs.ext4", "-q", "-F", img, NULL});
    else
        rc = -1;
    cr_assert(rc == 0, "%s on %s exited %d", mkfs, img, rc);

    char dev[64];
    int lfd;
    int err = loop_attach(img, dev, sizeof(dev), &lfd);
    if (err == -ENOENT || err == -ENXIO || err == -ENODEV)
        cr_skip_test("skipped: no usable loop device for %s (%s)", kind, strerror(-err));
    cr_assert(err == 0, "attach loop for %s: %s", img, strerror(-err));
    const char *fstype = strncmp(kind, "xfs", 3) == 0 ? "xfs" : "ext4";
    int mrc = mount(dev, fs->dir, fstype, 0, NULL);
    int e = errno;
    close(lfd); /* the mount holds the device now; autoclear detaches it at unmount */
    if (mrc != 0) {
        if (strcmp(kind, "xfs-16k") == 0 && e == EINVAL)
            cr_skip_test("skipped: kernel cannot mount XFS with 16 KiB blocks (%s)", strerror(e));
        cr_assert_fail("mount %s on %s (%s): %s", dev, fs->dir, fstype, strerror(e));
    }
    fs->mounted = 1;
}

void
t_fs_umount(struct t_fs *fs)
{
    if (!fs || !fs->tmp[0])
        return;
    if (fs->mounted) {
        if (umount2(fs->dir, 0) != 0)
            umount2(fs->dir, MNT_DETACH);
        fs->mounted = 0;
    }
    t_rmtree(fs->tmp);
    remember_tmp(fs->tmp, 0);
    fs->tmp[0] = '\0';
}
