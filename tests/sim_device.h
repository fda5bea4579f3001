/* SPDX-License-Identifier: MIT */
/*
 * sim_device.h -- a simulated device behind the library's syscall seam (atomio__sys), for
 * crash tests. File contents live in memory; every mutating call (pwritev2, fdatasync,
 * ftruncate, fallocate) is an "op" and is logged with its bytes. A crash point k means ops
 * [0, k) completed and op k was in flight. The image after such a crash is built from the
 * durable state at each file's last fdatasync plus, for every later write (and op k if it is a
 * write), a chosen subset of its 512-byte sectors, applied in order; an RWF_DSYNC write that
 * returned is kept whole. Then "reboot": install the image and open a ctx on it.
 *
 * Names live in a real directory tree (root): opening a file also opens a real empty
 * placeholder, so code outside the seam (fstat, realpath) sees an ordinary file.
 * Single process, one instance (the seam's entries take no context pointer).
 */
#ifndef ATOMIO_SIM_DEVICE_H
#define ATOMIO_SIM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_SECTOR    512u
#define SIM_MAX_FILES 64

enum sim_op_kind { SIM_WRITE, SIM_SYNC, SIM_TRUNC };

struct sim_op {
    int kind;
    int file;          /* index in the sim's file table */
    uint64_t off, len; /* WRITE: range; TRUNC: new size in len */
    uint8_t *data;     /* WRITE: copy of the bytes */
    bool dsync;        /* WRITE with RWF_DSYNC: durable when it returned */
    bool atomic;       /* WRITE with RWF_ATOMIC: reaches the media whole or not at all */
    int iovcnt;        /* WRITE: iovecs the caller passed (> 1: a vectored write) */
};

struct sim_log; /* ops since the last install, with the durable state they started from */

/* Install the simulator into atomio__sys (root must be an existing real directory). */
void sim_init(const char *root);
/* Restore the real syscalls and free everything. */
void sim_fini(void);
/* Crash at op k (-1: never): op k is logged as in flight and fails with EIO; the device is
 * dead afterwards (every call fails with EIO, nothing changes). */
void sim_set_crash_at(long k);
bool sim_dead(void);
/* Mutating ops so far in the current log. */
long sim_ops(void);
/* RWF_ATOMIC writes fail with this errno (positive), writing nothing; 0 = EOPNOTSUPP. */
void sim_set_atomic_errno(int e);
/* Make statx report O_DIRECT RWF_ATOMIC support (512 B .. 64 KiB, one segment) and let the
 * next ok_count atomic writes succeed (each all-or-nothing in crash images); later ones fail
 * with the atomic errno. Off by default; sim_init() resets it. */
void sim_set_atomic_caps(bool on, int ok_count);
/* Make write op k short: only its first keep bytes reach the file, and the call returns keep
 * (the kernel's short write). -1: none. Survives sim_set_crash_at(); sim_init() resets it. */
void sim_set_short_write(long k, uint64_t keep);

/* Create (or replace) a file with durable content, outside the log (test setup). */
void sim_file_put(const char *path, const void *data, size_t len);
/* Current bytes of a file (NULL if unknown); valid until the next sim call. */
const uint8_t *sim_file_data(const char *path, size_t *len);
int sim_file_index(const char *path);
const char *sim_file_path(int index);
int sim_nfiles(void);

/* Detach the current log (a new, empty one starts from the current state). */
struct sim_log *sim_take_log(void);
void sim_log_free(struct sim_log *log);
size_t sim_log_len(const struct sim_log *log);
const struct sim_op *sim_log_op(const struct sim_log *log, size_t i);

/* A crash image: bytes of every file. */
struct sim_image {
    int nfiles;
    uint8_t *data[SIM_MAX_FILES];
    size_t len[SIM_MAX_FILES];
};

/*
 * Decide one sector piece of an unsynced write: keep (it reached the media) or drop.
 * effective: keeping or dropping it can change the image (its bytes differ from the durable
 * state, or an earlier effective piece touched the same sector). Pieces are offered in a fixed
 * order, so an exhaustive search can number the effective ones.
 */
typedef bool (*sim_keep_fn)(void *arg, bool effective);

/* Incremental replay of a log for crash points in increasing order. */
struct sim_replay;
struct sim_replay *sim_replay_new(const struct sim_log *log);
void sim_replay_free(struct sim_replay *rp);
/* Image after a crash at op k (k <= log length; k == length: nothing in flight). k must not
 * decrease between calls on the same replay. */
void sim_replay_image(struct sim_replay *rp, size_t k, sim_keep_fn keep, void *arg,
                      struct sim_image *out);
void sim_image_free(struct sim_image *img);
/* Reboot: every file takes the image's bytes as its durable content; a new log starts. */
void sim_install(const struct sim_image *img);

#endif
