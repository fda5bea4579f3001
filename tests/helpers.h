/* SPDX-License-Identifier: MIT */
/*
 * helpers.h -- test helpers shared by the suites (t_*): scratch directories, real loop-mounted
 * filesystems that vanish with the test process, deterministic page patterns.
 */
#ifndef ATOMIO_TEST_HELPERS_H
#define ATOMIO_TEST_HELPERS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct t_fs {
    char kind[32];      /* as asked: "xfs", "xfs-noreflink", "xfs-16k", "ext4", "tmpfs" */
    char dir[PATH_MAX]; /* mount point: create test files here */
    char tmp[256];      /* private temp dir holding the image and the mount point */
    int mounted;
};

/*
 * t_fs_mount() -- make a fresh filesystem of `kind` (size_mb MiB image under a private temp
 * dir) and mount it in a private mount namespace of the calling test process, so it is
 * unmounted and its loop device (autoclear) detached when the process ends, even on a crash.
 * Kinds: "xfs" (reflink=1, O_DIRECT RWF_ATOMIC works through the software path), "xfs-noreflink",
 * "xfs-16k" (16 KiB blocks), "ext4", "tmpfs". Skips the test with a printed reason when not
 * root or when mkfs/loop devices are missing; fails the test on any other error.
 */
void t_fs_mount(struct t_fs *fs, const char *kind, unsigned size_mb);
/* t_fs_umount() -- unmount and remove the image now (also safe if never mounted). */
void t_fs_umount(struct t_fs *fs);
/* Path of `name` inside dir, in a static rotating buffer (valid for 8 calls). */
const char *t_join(const char *dir, const char *name);
/* A fresh private temp dir (mkdtemp under $TMPDIR or /tmp); removed by t_rmtree(). */
void t_tmpdir(char *out, size_t len);
/* t_subdir() -- make the directory parent/name (0700) and put its path in out. */
void t_subdir(char *out, size_t len, const char *parent, const char *name);
void t_rmtree(const char *path);
/* Fill len bytes with a pattern derived from seed (same seed, same bytes). */
void t_fill(void *buf, size_t len, uint64_t seed);
/* 1 if running as root (real mounts possible). */
int t_is_root(void);

#endif
