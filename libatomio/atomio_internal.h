/* SPDX-License-Identifier: MIT */
/*
 * atomio_internal.h -- private structs and the three seams of the library:
 *   - atomio__sys: every syscall the library makes (swappable in test builds: fault injection,
 *     the crash simulator and the simulated buffered-atomic kernel sit here);
 *   - struct atomio_path_ops: how a page is made untorn ("decide the write");
 *   - struct atomio_submit_ops: how prepared writes reach the kernel ("issue the write").
 * Paths never make syscalls for data writes themselves; they prepare atomio_io records.
 */
#ifndef ATOMIO_INTERNAL_H
#define ATOMIO_INTERNAL_H

#include "atomio.h"
#include "atomio_config.h"
#include "compat.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef NDEBUG
#define ATOMIO_ASSERT(x) ((void)0)
#else
#include <assert.h>
#define ATOMIO_ASSERT(x) assert(x)
#endif

/* v is a non-zero power of two */
static inline bool
atomio__is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* Paths the library knows (enum atomio_path); atomio_stats.pages[] has room for more. */
#define ATOMIO__PATH_COUNT (ATOMIO_PATH_UNSAFE + 1)
_Static_assert(ATOMIO__PATH_COUNT <= ATOMIO_STATS_PATHS, "atomio_stats.pages[] is too small");
/* One past the last public error code (a moving bound, never exported). */
#define ATOMIO__E_LAST (ATOMIO_E_UNAPPLIED - 1)

#define ATOMIO_MIN_PAGE 512u
#define ATOMIO_MAX_PAGE (1u << 20)

struct statfs;
struct rlimit;

/* ---------------------------------------------------------------------------------------- */
/* Syscall seam (sys.c). Every entry returns >= 0 or -errno; none touches errno for callers. */

struct atomio_sys {
    int (*open)(const char *path, int flags, unsigned mode);
    int (*close)(int fd);
    ssize_t (*pwritev2)(int fd, const struct iovec *iov, int iovcnt, uint64_t off, int flags);
    ssize_t (*pread)(int fd, void *buf, size_t len, uint64_t off);
    int (*fdatasync)(int fd);
    int (*statx)(int dirfd, const char *path, int flags, unsigned mask, struct atomio_statx *stx);
    int (*fstatfs)(int fd, struct statfs *st);
    int (*fallocate)(int fd, int mode, uint64_t off, uint64_t len);
    int (*ftruncate)(int fd, uint64_t len);
    /* read a small sysfs file into buf (NUL-terminated); returns length or -errno */
    ssize_t (*read_text)(const char *path, char *buf, size_t len);
    /* getrlimit(2): the RLIMIT_FSIZE check before every RWF_ATOMIC write reads it here, so
     * tests can fake a limit without lowering the process's own */
    int (*getrlimit)(int resource, struct rlimit *rl);
    /* another descriptor of the same open file (close-on-exec); -errno */
    int (*dup)(int fd);
    /* advice only: start reading [off, off + len) into the page cache (POSIX_FADV_WILLNEED) */
    int (*prefetch)(int fd, uint64_t off, uint64_t len);
};

/* The live table. Test builds (ATOMIO_TESTING) replace entries; production never does. */
extern struct atomio_sys atomio__sys;
/* The real implementations, so a test can wrap them. */
extern const struct atomio_sys atomio__sys_real;

/* ---------------------------------------------------------------------------------------- */
/* Counters (one set per file, one per ctx; the ctx set includes closed files).              */

struct atomio_counters {
    _Atomic uint64_t pages[ATOMIO__PATH_COUNT];
    _Atomic uint64_t bytes_data;
    _Atomic uint64_t bytes_doublewrite;
    _Atomic uint64_t syncs;
    _Atomic uint64_t batches;
    _Atomic uint64_t downgrades;
    _Atomic uint64_t short_writes;
    _Atomic uint64_t failed_syncs;
    _Atomic uint64_t recovered_pages;
    _Atomic uint64_t uring_fallbacks;
    _Atomic uint64_t lat_hist[ATOMIO_LAT_BUCKETS];
    _Atomic uint64_t bounce_copies;
    _Atomic uint64_t forced_syncs;
    _Atomic uint64_t group_commits;
    _Atomic uint64_t group_records;
    _Atomic uint64_t pages_staged;
    _Atomic uint64_t staged_reads;
};

#define ATOMIO_COUNT(c, field, n) atomic_fetch_add_explicit(&(c)->field, (n), memory_order_relaxed)
void atomio__count_lat(struct atomio_counters *c, uint64_t ns);
void atomio__count_lat_n(struct atomio_counters *c, uint64_t ns, uint64_t n);
void atomio__counters_read(const struct atomio_counters *c, atomio_stats *st);
uint64_t atomio__now_ns(void);

/* ---------------------------------------------------------------------------------------- */
/* One prepared write (or read) handed to a submitter.                                       */

struct atomio_io {
    int fd;
    int rwflags;             /* RWF_* for pwritev2 / sqe->rw_flags */
    const void *buf;         /* aligned as the fd requires */
    uint32_t len;            /* bytes (with iov: the sum of the iovecs) */
    const struct iovec *iov; /* a vectored write when iovcnt > 0 (then buf is unused); the
                              * array must live until the io completes */
    uint32_t iovcnt;
    uint64_t off;
    ssize_t res; /* out: bytes written or -errno */
    struct atomio_file *file;
    uint32_t index; /* caller's bookkeeping (batch entry index) */
    uint32_t path;  /* enum atomio_path that prepared it (its complete() applies) */
    void *bounce;   /* owned copy of the page when the path had to copy; freed after */
};

struct atomio_submit_ops {
    uint32_t id; /* enum atomio_submitter */
    const char *name;
    /* Issue every io, wait for all, set each res. Returns 0, or < 0 if the submitter itself
     * failed before issuing anything (then no res is meaningful). -EAGAIN completions are
     * resubmitted whole by the submitter; short completions are reported as they are. */
    int (*submit)(atomio_ctx *ctx, struct atomio_io *ios, size_t n);
    /* Optional: as submit, but ios[0..first) are issued first and work(arg) runs while they
     * are in flight, then ios[first..n) (whose buffers work may fill) are issued, and all are
     * waited for. NULL where nothing would overlap (pwritev2 blocks). */
    int (*submit_overlap)(atomio_ctx *ctx, struct atomio_io *ios, size_t n, size_t first,
                          void (*work)(void *), void *arg);
};

extern const struct atomio_submit_ops atomio__submit_sync;
#ifdef HAVE_LIBURING
extern const struct atomio_submit_ops atomio__submit_uring;
/* Per-ctx ring management (submit_uring.c). init returns 0 or -errno (then fall back). */
int atomio__uring_ctx_init(atomio_ctx *ctx);
void atomio__uring_ctx_fini(atomio_ctx *ctx);
#endif

/* ---------------------------------------------------------------------------------------- */
/* Paths.                                                                                    */

/*
 * What a path's complete() made of a finished write. The outcomes that only the library acts
 * on are a type of their own, not values in the int result space, so none of them can leave an
 * exported call by mistake: every exported call turns a verdict into a public result.
 */
enum atomio__next {
    ATOMIO__NEXT_RESULT = 0,  /* .result is the page's result */
    ATOMIO__NEXT_DOUBLEWRITE, /* nothing was written: send the page through doublewrite */
    ATOMIO__NEXT_REPROBE      /* EINVAL from an atomic write: re-probe once, then retry */
};
struct atomio_verdict {
    enum atomio__next next;
    int result;
};
static inline struct atomio_verdict
atomio__verdict(int result)
{
    return (struct atomio_verdict){.next = ATOMIO__NEXT_RESULT, .result = result};
}

struct atomio_path_ops {
    uint32_t id; /* enum atomio_path */
    const char *name;
    /* open(2) flags this path needs on the data fd besides O_RDWR/O_RDONLY (e.g. O_DIRECT) */
    int (*open_flags)(const struct atomio_file *f);
    /* Decide one page write: checks plus fd/offset/flags/buffer. May return
     * ATOMIO_E_UNALIGNED etc. A NULL prep means the path is batch-only (DOUBLEWRITE). */
    int (*prep)(struct atomio_file *f, uint64_t page_no, const void *page, uint32_t wflags,
                struct atomio_io *io);
    /* Apply the failure model to a completed io: the page's result (0 ok,
     * ATOMIO_E_SHORT_WRITE with the file failed, or an error), or what to do instead. */
    struct atomio_verdict (*complete)(struct atomio_file *f, struct atomio_io *io);
};

/* Internal-only wflags bit for prep(): the caller's buffer stays untouched until the write
 * completes and must not be copied (bring-your-own-ring: the engine's ring owns the I/O, so a
 * bounce buffer would have nobody to free it). A path that would copy checks instead that the
 * buffer can be an atomio_page_alloc() buffer, else ATOMIO_E_NO_COPY. */
#define ATOMIO__WRITE_NO_BOUNCE 0x80000000u
/* every public ATOMIO_WRITE_* flag atomio_write() and atomio_write_batch() take */
#define ATOMIO__WRITE_FLAGS (ATOMIO_WRITE_DSYNC | ATOMIO_WRITE_STABLE_PAGES)

extern const struct atomio_path_ops atomio__path_direct;
extern const struct atomio_path_ops atomio__path_buffered;
extern const struct atomio_path_ops atomio__path_doublewrite;
extern const struct atomio_path_ops atomio__path_unsafe;
const struct atomio_path_ops *atomio__path_ops(uint32_t path);
/* Fill io for a single-buffer page write of f. A page that breaks the fd's alignment is
 * copied into an aligned bounce buffer, or refused with ATOMIO_E_UNALIGNED under
 * ATOMIO_FILE_NO_COPY or ATOMIO__WRITE_NO_BOUNCE (wflags). Shared by the direct and unsafe
 * paths. */
int atomio__prep_page(struct atomio_file *f, uint64_t page_no, const void *page, int rwflags,
                      uint32_t wflags, struct atomio_io *io);
/* A completion wrote 0 <= n < len: count it, fail the file, return ATOMIO_E_SHORT_WRITE. */
int atomio__short_write(struct atomio_file *f);
/* open(2) flags for in-place (non-atomic) writes as the io style asks: DOUBLEWRITE, UNSAFE. */
int atomio__inplace_open_flags(const struct atomio_file *f);
/* The failure model of an RWF_ATOMIC completion (direct and buffered paths share it). */
struct atomio_verdict atomio__atomic_complete(struct atomio_file *f, struct atomio_io *io);

/* ---------------------------------------------------------------------------------------- */
/* Capability probe (caps.c) and selection (select.c).                                       */

/* Probe an open fd (statx, statfs, sysfs, buffered probe write beside dir_path).
 * dir_fd_path: directory in which the O_TMPFILE probe is created. */
int atomio__probe_fd(int fd, const char *dir_path, uint32_t page_size, atomio_caps *caps);
/* Derive the verdicts (direct_atomic, buffered folio rule, reasons) from the raw figures in
 * caps. Pure: no syscalls. Used by the probe and by the probe-parsing tests. */
void atomio__caps_derive(atomio_caps *caps);
/* Directory part of path into out: "/" for "/x", "." for "x". 0 or -ENAMETOOLONG. */
int atomio__dir_of(const char *path, char *out, size_t len);
/* Forget cached buffered-probe verdicts (tests). */
void atomio__caps_cache_clear(void);
/* Forget the cached buffered-probe verdict of one (device, page size), so the EINVAL re-probe
 * (docs/design.md, "Runtime downgrade and re-probe") asks the kernel again instead of reading back
 * the verdict it is doubting. */
void atomio__caps_cache_forget(uint32_t dev_major, uint32_t dev_minor, uint32_t page_size);

struct atomio_select_in {
    const atomio_caps *caps;
    uint32_t io_style;        /* enum atomio_io_style */
    uint32_t policy;          /* resolved: PREFER_FAST, PREFER_ATOMIC or CALIBRATE */
    uint32_t forced;          /* enum atomio_path; AUTO = choose */
    bool have_store;          /* ctx has a doublewrite store that holds this page size */
    bool store_too_small;     /* ctx has a store, but its segments cannot hold this page */
    uint64_t calib_atomic_ns; /* CALIBRATE figures; 0 = not measured yet */
    uint64_t calib_doublewrite_ns;
};

struct atomio_select_out {
    uint32_t path;                  /* chosen path (valid when err == 0) */
    int err;                        /* 0, ATOMIO_E_PATH_UNSUPPORTED, ATOMIO_E_FOLIO_ORDER,
                                       ATOMIO_E_NO_DOUBLEWRITE */
    bool needs_calibration;         /* CALIBRATE and no figures yet: measure, then select again */
    char reason[ATOMIO_REASON_LEN]; /* why path (or why err) */
    char reject[ATOMIO__PATH_COUNT][ATOMIO_REASON_LEN]; /* per candidate, "" if chosen */
};

/* Pure selection (docs/design.md, "Probe and selection"). */
void atomio__select(const struct atomio_select_in *in, struct atomio_select_out *out);

/* ---------------------------------------------------------------------------------------- */
/* Context and file.                                                                         */

struct atomio_store; /* doublewrite store (store/store.c) */
struct atomio_alloc; /* page allocator state (buf.c) */

#define ATOMIO_GRAVEYARD 256 /* closed file handles kept so stale use gives ATOMIO_E_CLOSED */

struct atomio_ctx {
    atomio_ctx_opts opts;  /* copied in, defaults resolved */
    char *doublewrite_dir; /* owned copies of the options' strings */
    char *data_root;
    char *instance;
    const struct atomio_submit_ops *submit; /* resolved submitter */
    bool uring_fallback;                    /* io_uring wanted but could not be set up */
    int uring_err;                          /* why (-errno) */
    void *uring;                            /* submit_uring.c state */
    struct atomio_store *store;             /* NULL with ATOMIO_CTX_NO_DOUBLEWRITE */
    struct atomio_alloc *alloc;             /* buf.c state */
    struct atomio_counters stats;
    pthread_mutex_t *lock;     /* files list, graveyard */
    struct atomio_file *files; /* open files (doubly linked) */
    struct atomio_file *graveyard[ATOMIO_GRAVEYARD];
    unsigned grave_next;
    _Atomic uint64_t next_file_id;
    /* no-durability mode (durability.c) */
    _Atomic uint32_t no_durability;  /* 1 while off: plain in-place writes, no fdatasync */
    _Atomic uint64_t nodur_inflight; /* write calls running in that mode right now */
};

struct atomio_file {
    atomio_ctx *ctx;
    int fd;
    int open_flags; /* flags the fd was opened with */
    bool o_direct;
    bool rdonly;
    uint32_t fflags; /* ATOMIO_FILE_* */
    uint32_t page_size;
    uint32_t page_shift;
    uint32_t io_style;
    uint32_t policy;
    uint32_t mem_align; /* buffer alignment the fd needs (1 if buffered) */
    uint64_t file_id;
    char *path;                /* absolute path */
    _Atomic uint32_t path_cur; /* enum atomio_path in force */
    _Atomic uint32_t state;    /* enum atomio_file_state */
    _Atomic uint32_t downgrades;
    bool reprobed; /* EINVAL re-probe already done */
    atomio_caps caps;
    uint64_t calib_atomic_ns, calib_doublewrite_ns;
    pthread_mutex_t *lock; /* reasons, path changes (pointer: usable from const f) */
    char reason[ATOMIO_REASON_LEN];
    char reject[ATOMIO__PATH_COUNT][ATOMIO_REASON_LEN];
    struct atomio_counters stats;
    struct atomio_file *next, *prev;
    bool adopted_fd; /* atomio_file_open_fd(): the engine's fd, never closed */
};

/* Validate a file handle for use: ATOMIO_E_INVAL for NULL, ATOMIO_E_CLOSED, else 0. */
int atomio__file_check(const atomio_file *f);
/* Mark the file failed (sticky). */
void atomio__file_fail(atomio_file *f);
/* Switch a file to DOUBLEWRITE at runtime (EOPNOTSUPP/ENOSPC from an atomic write). */
void atomio__file_downgrade(atomio_file *f, int err);
/* The file-level checks of a page write (handle, buffer, read-only, failed, range) that come
 * before the path's prep() (write.c; shared with bring-your-own-ring). */
int atomio__write_check(atomio_file *f, uint64_t page_no, const void *page);
/* EINVAL from an atomic write on path cur: re-probe once per file (write.c). Returns 0 with
 * *how (retry once, or the file now on DOUBLEWRITE), or ATOMIO_E_GEOMETRY (second EINVAL). */
enum atomio__reprobed { ATOMIO__REPROBED_RETRY, ATOMIO__REPROBED_NOW_DOUBLEWRITE };
int atomio__file_reprobe(atomio_file *f, uint32_t cur, enum atomio__reprobed *how);
/* Count one written page on the file and the ctx. */
void atomio__count_page(atomio_file *f, uint32_t path, uint64_t lat_ns);
/* n pages that share one latency (a doublewrite batch's pages of one file) */
void atomio__count_pages(atomio_file *f, uint32_t path, uint64_t lat_ns, uint64_t n);
/* fdatasync with the sticky failure rule; counts the sync. */
int atomio__file_datasync(atomio_file *f);

/* Copy a caller's size-versioned struct into a zeroed internal one.
 * Returns 0, ATOMIO_E_INVAL (NULL or size < 4... ) or ATOMIO_E_ABI. */
int atomio__copy_in(void *dst, size_t dst_size, const void *src);
/* Copy an internal output struct out to a caller struct of size *(uint32_t *)dst. */
int atomio__copy_out(void *dst, const void *src, size_t src_size);

void atomio__reason(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The thread's atomio_last_reason() (error.c). */
void atomio__reason_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void atomio__reason_clear(void);

/* ---------------------------------------------------------------------------------------- */
/* Doublewrite store (store/store.c, store/batch.c, store/recover.c). */

struct atomio_dw_item {
    atomio_file *file;
    uint64_t page_no;
    const void *page;
    int result; /* out */
};

/* Create or open the store in ctx->doublewrite_dir; preallocate every segment. */
int atomio__store_open(atomio_ctx *ctx);
void atomio__store_close(atomio_ctx *ctx);
/* Does one page of page_size fit a store segment? (false without a store) */
bool atomio__store_fits(const atomio_ctx *ctx, uint32_t page_size);
/* The doublewrite protocol for n pages (any files, any page sizes). Sets each item's result.
 * Returns the number of items written. */
/* Release every copy a sync now covers, syncing files others wrote (atomio_ctx_sync()). */
int atomio__store_release_all(atomio_ctx *ctx);
/* Record f in the store's manifest (durably) when it is new or moved; fence: it is about to be
 * written without the store, so its older copies must never be applied. */
int atomio__store_register(atomio_ctx *ctx, atomio_file *f, bool fence);
/* The first process of an instance lets the others attach: after open-time recovery, or
 * after the first successful atomio_ctx_recover() with ATOMIO_CTX_NO_RECOVER. */
int atomio__store_ready(atomio_ctx *ctx);
/* Whether this ctx set the store's instance up (it alone recovers). */
bool atomio__store_is_first(const atomio_ctx *ctx);
/* 0, or why the store cannot be used: ATOMIO_E_NO_DOUBLEWRITE, ATOMIO_E_STORE_FAILED,
 * ATOMIO_E_INVAL (a ctx inherited across fork()). */
int atomio__store_check(const atomio_ctx *ctx);
/* Write-behind (store/stage.c). Whether the ctx writes behind; write every page the instance
 * had staged when the call began to the store and in place (0 or the error; 0 when the ctx
 * does not write behind); serve a read from a staged copy (1: copied into page, 0: none);
 * pages staged and not yet in place. */
bool atomio__stage_on(const atomio_ctx *ctx);
/* atomio_sync() once the staging is flushed: callers holding ctx->lock (a round takes it). */
int atomio__file_sync_staged(atomio_file *f);
int atomio__stage_flush(atomio_ctx *ctx);
/* At ctx close: flush when this is the instance's last context, else leave it to the others. */
int atomio__stage_close(atomio_ctx *ctx);
int atomio__stage_read(atomio_file *f, uint64_t page_no, void *page);
uint64_t atomio__stage_count(atomio_ctx *ctx);
int atomio__store_remap(atomio_ctx *ctx, uint64_t file_id, const char *path);
/* Fence every file the manifest records under dir (one durable append); the number of them. */
int atomio__store_fence_dir(atomio_ctx *ctx, const char *dir);
int atomio__store_discard_id(struct atomio_store *st, uint64_t file_id);
/* A data file sync, bracketed so that every process's copies it covers can be released. */
uint64_t atomio__store_file_sync_begin(atomio_ctx *ctx, uint64_t file_id);
void atomio__store_file_sync_end(atomio_ctx *ctx, uint64_t file_id, uint64_t ticket, bool ok);
/* Store-wide figures for atomio_ctx_get_stats(). */
void atomio__store_stats(const atomio_ctx *ctx, atomio_stats *s);
int atomio__dw_write(atomio_ctx *ctx, struct atomio_dw_item *items, size_t n, uint32_t wflags);
/* Recovery over the whole store. */
int atomio__recover(atomio_ctx *ctx, atomio_recovery_report *rep);
/* CALIBRATE: time DIRECT_ATOMIC and DOUBLEWRITE on a scratch O_TMPFILE beside f. */
int atomio__calibrate(atomio_ctx *ctx, atomio_file *f, uint64_t *atomic_ns, uint64_t *dblwr_ns);

/* CRC32C (crc32c.c): the fastest variant the CPU has (AVX-512 folding, SSE4.2, table). */
uint32_t atomio__crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t atomio__crc32c_sw(uint32_t crc, const void *buf, size_t len);
bool atomio__crc32c_hw_available(void);
enum atomio_crc_variant { ATOMIO_CRC_TABLE, ATOMIO_CRC_SSE42, ATOMIO_CRC_FOLD_AVX512 };
typedef uint32_t (*atomio__crc_fn)(uint32_t crc, const void *buf, size_t len);
/* One variant by name, for tests; NULL where the build or the CPU lacks it. */
atomio__crc_fn atomio__crc32c_variant(enum atomio_crc_variant v);

/* ---------------------------------------------------------------------------------------- */
/* Buffers (buf.c).                                                                          */

int atomio__alloc_init(atomio_ctx *ctx);
/* sysconf(_SC_PAGESIZE), cached. */
size_t atomio__sys_page_size(void);
void atomio__alloc_fini(atomio_ctx *ctx);
/* Aligned, pre-faulted memory; ctx may be NULL (libc, no NUMA). */
void *atomio__buf_alloc(atomio_ctx *ctx, size_t size, size_t align);
/* The same, not pre-faulted: for buffers the library fills itself before any write from them
 * (their pages fault in as they are filled), so that a large buffer of which a short record
 * uses a page or two costs those pages only. */
void *atomio__buf_alloc_lazy(atomio_ctx *ctx, size_t size, size_t align);
void atomio__buf_free(atomio_ctx *ctx, void *p, size_t size);
/* true if [p, p + len) lies inside one live atomio_page_alloc() buffer of this ctx: memory
 * the library pre-faulted (and mlocked with ATOMIO_CTX_LOCK_PAGES), so the kernel's copy out
 * of it cannot fault half-way. The buffered-atomic path writes such pages without a bounce
 * copy. Thread-safe; must be cheap (called once per page write). */
bool atomio__buf_is_prefaulted(atomio_ctx *ctx, const void *p, size_t len);
/* The registry behind it (buf_registry.c): buf.c tracks every atomio_page_alloc() buffer of a
 * ctx (-ENOMEM: the allocation must fail), untracks it in atomio_page_free(), and drops a
 * ctx's leftovers in atomio__alloc_fini() (the ctx address may be reused). */
int atomio__buf_track(const atomio_ctx *ctx, void *p, size_t len);
void atomio__buf_untrack(const atomio_ctx *ctx, void *p);
void atomio__buf_untrack_ctx(const atomio_ctx *ctx);

/* ---------------------------------------------------------------------------------------- */
/* Write-path guards: RLIMIT_FSIZE, bounce copies, no-durability mode (write.c, file.c,       */
/* durability.c).                                                                            */

/* -EFBIG if a write of len bytes at off would cross the process's RLIMIT_FSIZE (read now, it
 * can change at run time): the kernel would cut an RWF_ATOMIC write at the limit and leave a
 * half-new page. 0 otherwise (also when the limit cannot be read). */
int atomio__fsize_check(uint64_t off, uint64_t len);
/* Copy page into a bounce buffer aligned to align (at least the system page), owned by io
 * (write.c frees it after completion), and count the copy. Returns the copy or NULL. */
const void *atomio__bounce_page(struct atomio_file *f, const void *page, size_t align,
                                struct atomio_io *io);
/* A write call starts (enter) and ends (leave) in the ctx's current durability mode: enter
 * returns true when the call runs in no-durability mode; leave must then be called. */
bool atomio__nodur_enter(atomio_ctx *ctx);
void atomio__nodur_leave(atomio_ctx *ctx);
/* The ctx is in no-durability mode now (info, sync). */
bool atomio__nodur(const atomio_ctx *ctx);
/* Plain in-place write of one page, no RWF_ATOMIC/RWF_DSYNC, for no-durability mode; the io
 * is completed by the UNSAFE path's complete(). */
int atomio__prep_plain(struct atomio_file *f, uint64_t page_no, const void *page,
                       struct atomio_io *io);

#endif /* ATOMIO_INTERNAL_H */
