/* SPDX-License-Identifier: MIT */
/*
 * bc_lib.h -- the only door from the block-level crash harness into libatomio. Every call to
 * the library's public API is in bc_lib.c, so that renaming a public name touches one file.
 */
#ifndef BC_LIB_H
#define BC_LIB_H

#include <stddef.h>
#include <stdint.h>

enum bc_path { BC_PATH_AUTO, BC_PATH_DIRECT, BC_PATH_DOUBLEWRITE, BC_PATH_UNSAFE };

typedef struct bc_lib bc_lib;

/* How a context is opened. The workload and the checker open the store alike (same geometry);
 * what differs is named here. */
struct bc_lib_conf {
    const char *store_dir; /* the doublewrite store directory */
    const char *data_root; /* data files under it are recorded relative to it; NULL: absolute */
    const char *instance;  /* engine instance name shared by all processes; NULL: private */
    int deferred;          /* ATOMIO_DOUBLEWRITE_DEFERRED instead of SYNC_BATCH */
    int write_behind;      /* ATOMIO_DOUBLEWRITE_WRITE_BEHIND (deferred, pages staged) */
    int sabotage;          /* the test build skips the store's durability step (a control) */
};

/* Open a context (the store is created by the library if empty); recovery runs when this is
 * the instance's first process. */
int bc_lib_open(bc_lib **out, const struct bc_lib_conf *conf);
/* Close every file and the context. */
int bc_lib_close(bc_lib *l);
/* Open (creating) file slot idx (< BC_LIB_MAX_FILES) on a forced path, O_DIRECT io style. */
#define BC_LIB_MAX_FILES 16
int bc_lib_file_open(bc_lib *l, unsigned idx, const char *path, uint32_t page_size,
                     enum bc_path path_kind);
/* One line about the context: processes attached to the store, group commits, syncs the
 * library made itself because the store ran short of space. */
void bc_lib_describe(bc_lib *l, char *buf, size_t len);
/* One line about file idx: the path in force, downgrades, the reason. */
void bc_lib_file_describe(bc_lib *l, unsigned idx, char *buf, size_t len);
/* 1 if file idx is on the doublewrite path now (its acknowledged writes are durable on return
 * unless the context is in deferred mode). */
int bc_lib_file_is_doublewrite(bc_lib *l, unsigned idx);
/* Downgrades to DOUBLEWRITE seen on file idx so far. */
unsigned bc_lib_file_downgrades(bc_lib *l, unsigned idx);
/* Write pages: n entries (file idx, page number, buffer); results[i] gets each entry's code.
 * n == 1 uses the single-page call. Returns 0 when all succeeded, else the first error. */
int bc_lib_write(bc_lib *l, size_t n, const unsigned *idx, const uint64_t *page_no,
                 void *const *buf, int *results);
int bc_lib_sync(bc_lib *l, unsigned idx);
int bc_lib_ctx_sync(bc_lib *l);
const char *bc_lib_strerror(int err);

/* Recovery as an engine runs it at start-up: open a private context over store_dir (recovery
 * runs), then close it. Relative manifest paths resolve against data_root (NULL: none).
 * *restored gets the number of pages recovery rewrote. */
int bc_lib_recover(const char *store_dir, const char *data_root, uint64_t *restored);

#endif /* BC_LIB_H */
