/* SPDX-License-Identifier: MIT */
/*
 * atomio.h -- untorn page writes for database storage engines.
 *
 * An engine hands libatomio whole pages. For every file libatomio picks the cheapest write
 * path that leaves each page on disk either wholly old or wholly new after a crash: O_DIRECT
 * RWF_ATOMIC, buffered RWF_ATOMIC (where the kernel proves it), or a doublewrite store with
 * recovery. atomio_file_get_info() then tells the engine whether it may switch off its own
 * torn-page protection (InnoDB doublewrite, PostgreSQL full_page_writes).
 *
 * Conventions: a result >= 0 is success, < 0 is either -errno from the kernel (passed through
 * unchanged) or an ATOMIO_E_* code (-5000 and below). NULL options mean defaults. Structs that
 * cross the API start with a uint32_t size set by the caller (ATOMIO_*_INIT or
 * atomio_*_init()). The library never prints and never sets errno.
 */
#ifndef ATOMIO_H
#define ATOMIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ATOMIO_STATIC_NO_EXPORT)
#define ATOMIO_API
#elif defined(__GNUC__) || defined(__clang__)
#define ATOMIO_API __attribute__((visibility("default")))
#else
#define ATOMIO_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ATOMIO_NODISCARD       __attribute__((warn_unused_result))
#define ATOMIO_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define ATOMIO_NODISCARD
#define ATOMIO_DEPRECATED(msg)
#endif

/* Initializers are designated (C99, and C++20), so appending a field never shifts them: every
 * field not named is zero. ATOMIO_*_INIT work in both languages; before C++20 use the
 * atomio_*_init() functions instead. */
#define ATOMIO_SIZE_ONLY_INIT_(T)                                                                  \
    {                                                                                              \
        .size = sizeof(T)                                                                          \
    }

/* ------------------------------------------------------------------------------------------ */
/* Version. This header is the only place the version is written; CMake reads it from here.   */

#define ATOMIO_VERSION_MAJOR 0
#define ATOMIO_VERSION_MINOR 2
#define ATOMIO_VERSION_PATCH 0
#define ATOMIO_VERSION_NUMBER                                                                      \
    (ATOMIO_VERSION_MAJOR * 10000 + ATOMIO_VERSION_MINOR * 100 + ATOMIO_VERSION_PATCH)
#define ATOMIO_VERSION_STRING "0.2.0"

/** @return ATOMIO_VERSION_NUMBER of the library actually linked. Thread-safe. Since 0.1. */
ATOMIO_API unsigned atomio_version_number(void);
/** @return "major.minor.patch" of the library actually linked (static string). Since 0.1. */
ATOMIO_API const char *atomio_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors. Released values never change; new codes are only added at the end.                 */

enum atomio_error {
    ATOMIO_OK = 0,
    ATOMIO_E_INVAL = -5000,            /* invalid argument (NULL pointer, unknown flag or enum) */
    ATOMIO_E_ABI = -5001,              /* options struct size unknown or non-zero unknown tail */
    ATOMIO_E_PAGE_SIZE = -5002,        /* page size not a power of two in [512, 1 MiB], or not
                                          the file's page size */
    ATOMIO_E_UNALIGNED = -5003,        /* page buffer not aligned as the file's path requires */
    ATOMIO_E_RANGE = -5004,            /* page number beyond what a 64-bit offset can address */
    ATOMIO_E_PATH_UNSUPPORTED = -5005, /* forced path the file cannot do; see the reason */
    ATOMIO_E_FOLIO_ORDER = -5006,      /* buffered atomic refused: page/folio orders disagree */
    ATOMIO_E_SHORT_WRITE = -5007,      /* the kernel wrote part of a page; the file is failed */
    ATOMIO_E_FAILED = -5008,           /* file failed earlier (short write, failed sync);
                                          close it and run recovery */
    ATOMIO_E_CLOSED = -5009,           /* handle already closed */
    ATOMIO_E_READ_ONLY = -5010,        /* write to a file opened ATOMIO_FILE_RDONLY */
    ATOMIO_E_NO_DOUBLEWRITE = -5011,   /* the path needs a doublewrite store and the ctx has none */
    ATOMIO_E_STORE = -5012,            /* the doublewrite store's bytes are bad (damaged
                                          header, not a store); see the reason */
    ATOMIO_E_STORE_FULL = -5013,       /* the pages do not fit one store record, or records
                                          held for recovery fill the store */
    ATOMIO_E_UNRECOVERABLE = -5014,    /* recovery found pages neither copy can save */
    ATOMIO_E_NEEDS_DOUBLEWRITE = -5015, /* bring-your-own-ring: rewrite via the doublewrite API */
    ATOMIO_E_SEQUENCE = -5016,          /* staged call out of order */
    ATOMIO_E_NO_COPY = -5017,           /* ATOMIO_FILE_NO_COPY and the buffer is not from
                                           atomio_page_alloc() */
    ATOMIO_E_GEOMETRY = -5018,          /* the kernel rejected our atomic geometry (EINVAL) even
                                           after a re-probe: a library bug or a changed file */
    ATOMIO_E_BUSY = -5019,              /* resource busy (e.g. a staged batch still in flight) */
    ATOMIO_E_STORE_FAILED = -5020,      /* a store write or sync failed earlier: the store is
                                           unusable until the ctx is closed and reopened */
    ATOMIO_E_STORE_LOCKED = -5021,      /* the store is in use by another engine instance */
    ATOMIO_E_UNAPPLIED = -5022          /* recovery kept copies it could not apply (unknown file
                                           id, missing data file): see the report, then remap
                                           or discard them */
};

/**
 * atomio_strerror() -- human-readable message for an atomio result.
 * @param err a result (0, -errno or ATOMIO_E_*).
 * @return a static string; never NULL ("unknown error" for unknown values). Thread-safe.
 * Since 0.1.
 */
ATOMIO_API const char *atomio_strerror(int err);

/**
 * atomio_err_name() -- symbolic name of a result, for logs: "ATOMIO_E_FAILED", "EIO", "OK".
 * @return a static string; never NULL ("UNKNOWN" for unknown values). Thread-safe. Since 0.1.
 */
ATOMIO_API const char *atomio_err_name(int err);

/* ------------------------------------------------------------------------------------------ */
/* Handles and enumerations (enums are carried in uint32_t fields).                             */

typedef struct atomio_ctx atomio_ctx;   /* engine-wide: doublewrite store, rings, counters */
typedef struct atomio_file atomio_file; /* one data file with one page size */

/** How a page is made untorn. */
enum atomio_path {
    ATOMIO_PATH_AUTO = 0,            /* let the library choose (docs/design.md) */
    ATOMIO_PATH_DIRECT_ATOMIC = 1,   /* O_DIRECT + RWF_ATOMIC */
    ATOMIO_PATH_BUFFERED_ATOMIC = 2, /* page cache + RWF_ATOMIC|RWF_DSYNC (probed) */
    ATOMIO_PATH_DOUBLEWRITE = 3,     /* copy to the doublewrite store first, recover after */
    ATOMIO_PATH_UNSAFE = 4           /* plain writes, no protection: for measurement only */
};

/** What kind of I/O the engine does on the file. */
enum atomio_io_style {
    ATOMIO_IO_ANY = 0,      /* either; the library may use O_DIRECT */
    ATOMIO_IO_BUFFERED = 1, /* page cache (PostgreSQL-like); never silently O_DIRECT */
    ATOMIO_IO_DIRECT = 2    /* O_DIRECT (InnoDB-like) */
};

/** What AUTO does when the only atomic option is slow software (XFS copy-on-write). */
enum atomio_policy {
    ATOMIO_POLICY_DEFAULT = 0,       /* in file opts: inherit the ctx's; in ctx opts: PREFER_FAST */
    ATOMIO_POLICY_PREFER_FAST = 1,   /* software-only atomic -> DOUBLEWRITE */
    ATOMIO_POLICY_PREFER_ATOMIC = 2, /* software-only atomic -> DIRECT_ATOMIC */
    ATOMIO_POLICY_CALIBRATE = 3      /* time both at open on a scratch file, keep the faster */
};

/** Which submitter issues the writes. */
enum atomio_submitter {
    ATOMIO_SUBMIT_AUTO = 0,  /* io_uring when it can be set up, else pwritev2 */
    ATOMIO_SUBMIT_URING = 1, /* io_uring; setup failure falls back to pwritev2, visibly */
    ATOMIO_SUBMIT_SYNC = 2   /* pwritev2, one write at a time */
};

/** State of a file handle. */
enum atomio_file_state {
    ATOMIO_STATE_OK = 0,
    ATOMIO_STATE_FAILED = 1, /* short write or failed sync: writes and syncs refused */
    ATOMIO_STATE_CLOSED = 2
};

/* ------------------------------------------------------------------------------------------ */
/* Context.                                                                                     */

/**
 * Engine callback for recovery: is this page (as read from the data file) intact?
 * @return 1 intact (leave it), 0 damaged (restore it if a copy exists), < 0 error (treated as 0).
 * Called from the thread running recovery. An intact page may be older than its copy (its
 * in-place write never reached the disk) and is left so: pass a verify callback only if the
 * engine's redo brings such a page forward. Without one, the newest copy always wins.
 */
typedef int (*atomio_verify_fn)(void *arg, uint64_t file_id, uint64_t page_no, const void *page,
                                uint32_t page_size);

/* atomio_ctx_opts.flags */
#define ATOMIO_CTX_NO_DOUBLEWRITE 0x1u  /* no store: DOUBLEWRITE impossible, AUTO never picks it */
#define ATOMIO_CTX_NO_RECOVER     0x2u  /* do not run recovery at open (the engine calls it) */
#define ATOMIO_CTX_LOCK_PAGES     0x4u  /* mlock() buffers from atomio_page_alloc() */
#define ATOMIO_CTX_NO_DURABILITY  0x10u /* start with durability off (atomio_ctx_set_durability) */

/**
 * Recovery callback for copies it cannot apply: called once per file id whose copies are kept
 * (its data file is missing, or the manifest does not know the id; path is then NULL).
 * @param path the recorded path, resolved against the data root (NULL if unknown).
 * @param pages how many pages of the file the store holds copies of.
 * @param err -ENOENT (file missing), ATOMIO_E_UNAPPLIED (id unknown), or another -errno.
 */
typedef void (*atomio_unapplied_fn)(void *arg, uint64_t file_id, const char *path, uint64_t pages,
                                    int err);

/** When the doublewrite store releases a page's copy. */
enum atomio_doublewrite_mode {
    ATOMIO_DOUBLEWRITE_SYNC_BATCH = 0,  /* each batch fdatasyncs its data files before the call
                                           returns, then releases its copies (InnoDB-like) */
    ATOMIO_DOUBLEWRITE_DEFERRED = 1,    /* data files are synced on the engine's schedule
                                           (atomio_sync() from any process); a copy is released
                                           once such a sync covers its in-place write, or when
                                           the store runs short of space and the library syncs
                                           the oldest files itself (PostgreSQL-like) */
    ATOMIO_DOUBLEWRITE_WRITE_BEHIND = 2 /* as DEFERRED, and a doublewrite returns once its page
                                          is staged in the instance's shared memory: a group
                                          commit later writes staged pages of every process to
                                          the store in one write and one fdatasync, then in
                                          place. Until then the page is not in its file:
                                          read it with atomio_read(), which sees staged pages,
                                          or call atomio_ctx_flush() first. atomio_sync(),
                                          atomio_ctx_sync() and atomio_file_fence() flush
                                          first, and so does the close of the instance's last
                                          context. Every process of the instance must use
                                          it. Since 0.2 */
};

/** Options of atomio_ctx_open(). Set size with ATOMIO_CTX_OPTS_INIT or atomio_ctx_opts_init(). */
typedef struct atomio_ctx_opts {
    uint32_t size;                      /* sizeof(atomio_ctx_opts) as the caller knows it */
    uint32_t flags;                     /* ATOMIO_CTX_* */
    const char *doublewrite_dir;        /* doublewrite store directory; must exist (a missing one is
                                     -ENOENT, never silently recreated: it may have held the
                                     only good copies); the store files in it are created.
                                     Required unless ATOMIO_CTX_NO_DOUBLEWRITE */
    uint32_t policy;                    /* enum atomio_policy; DEFAULT = PREFER_FAST */
    uint32_t submitter;                 /* enum atomio_submitter */
    uint32_t queue_depth;               /* in-flight writes per ring; 0 = 32 */
    uint32_t doublewrite_mode;          /* enum atomio_doublewrite_mode: when copies are released */
    uint32_t doublewrite_batch_pages;   /* most pages in one store record (larger batches are
                                     split); 0 = 64 */
    uint32_t doublewrite_max_page_size; /* largest page the store takes: files with larger
                                   pages cannot use DOUBLEWRITE; 0 = 16384 */
    int32_t numa_node;                  /* page buffers: -1 = node of the calling thread */
    uint32_t reserved0;                 /* must be 0 */
    atomio_verify_fn verify;            /* optional recovery callback */
    void *verify_arg;                   /* passed to verify */
    const char *data_root;              /* data files under this directory are recorded in the store
                                           relative to it, so the directory can move (a restore, a
                                           container) and recovery still finds them; NULL: absolute */
    atomio_unapplied_fn unapplied;    /* optional: told of every file whose copies recovery keeps */
    void *unapplied_arg;              /* passed to unapplied */
    const char *instance;             /* engine instance name: every process that opens the store
                                         with the same name shares it; another name (or NULL, a
                                         private instance) is refused while it is in use */
    uint64_t doublewrite_store_bytes; /* store capacity; 0 = 128 MiB (docs/design.md: sizing) */
    uint64_t write_behind_bytes;      /* WRITE_BEHIND: shared staging for pages not yet written;
                                         0 = store capacity / 16, within 1..16 MiB. Set by the
                                         instance's first process; others use its size. Since 0.2 */
    uint64_t reserved[3];             /* must be 0 */
} atomio_ctx_opts;

#define ATOMIO_CTX_OPTS_INIT                                                                       \
    {                                                                                              \
        .size = sizeof(atomio_ctx_opts), .numa_node = -1                                           \
    }

/** Fill *o with defaults and o->size. NULL is a no-op. Thread-safe. Since 0.1. */
ATOMIO_API void atomio_ctx_opts_init(atomio_ctx_opts *o);

/**
 * atomio_ctx_open() -- create an engine-wide context.
 * Creates (or opens) and preallocates the doublewrite store in opts->doublewrite_dir. The first
 * process of an instance runs recovery (unless ATOMIO_CTX_NO_RECOVER) so every page is old or
 * new before the engine reads, and only then lets other processes of the instance (the same
 * opts->instance) attach; they wait for it. atomio_last_reason() explains a failure.
 * @param opts NULL for defaults (then there is no store: as ATOMIO_CTX_NO_DOUBLEWRITE).
 * @param out receives the context.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_ABI, ATOMIO_E_STORE (the store's bytes are bad),
 *         ATOMIO_E_STORE_LOCKED (another instance, or another open of a private one),
 *         ATOMIO_E_UNRECOVERABLE, ATOMIO_E_UNAPPLIED (copies kept that recovery could not
 *         apply), -ENOENT, -EACCES, -ENOSPC, -ENOMEM, other -errno. Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_open(const atomio_ctx_opts *opts, atomio_ctx **out);

/**
 * atomio_ctx_close() -- release a context. Files still open are closed first (their pending
 * doublewrite batches finish). NULL is a no-op. Not to be called concurrently with other
 * calls on the ctx or its files.
 * @return 0, or the first error from closing files. Since 0.1.
 */
ATOMIO_API int atomio_ctx_close(atomio_ctx *ctx);

/** Recovery counters. Set size with ATOMIO_RECOVERY_REPORT_INIT. */
typedef struct atomio_recovery_report {
    uint32_t size;
    uint32_t reserved0;
    uint64_t ring_bytes_scanned;    /* bytes of the store ring read */
    uint64_t batches_scanned;       /* batch headers found (valid or not) */
    uint64_t batches_valid;         /* header and every slot CRC held */
    uint64_t batches_torn;          /* ignored: their in-place writes never started */
    uint64_t pages_checked;         /* (file, page) pairs compared against their newest copy */
    uint64_t pages_restored;        /* in-place page differed and was rewritten from the copy */
    uint64_t pages_verified_intact; /* the engine's verify() said intact; left alone */
    uint64_t pages_unrecoverable;   /* verify() rejected both the page and the copy */
    uint64_t files_missing;         /* file ids whose recorded path does not exist */
    uint64_t unknown_file_ids;      /* file ids with copies but absent from the manifest */
    uint64_t pages_unapplied;       /* copies kept: their file is missing or unknown (the call
                                       fails with ATOMIO_E_UNAPPLIED; remap or discard them) */
    uint64_t pages_discarded;       /* copies dropped by atomio_ctx_discard_file() or a reset */
    uint64_t batches_discarded;     /* live records dropped by atomio_store_reset() */
    uint64_t headers_repaired;      /* damaged store header copies rewritten from the good one */
    uint64_t pages_fenced;          /* copies older than their file's fence (atomio_file_fence(),
                                       or writes without the store): never applied */
} atomio_recovery_report;

#define ATOMIO_RECOVERY_REPORT_INIT ATOMIO_SIZE_ONLY_INIT_(atomio_recovery_report)

/**
 * atomio_ctx_recover() -- restore every torn page the doublewrite store can restore.
 * Idempotent. Must not run while writes are in flight on the ctx.
 * @param report NULL, or filled with the counts.
 * @return 0; ATOMIO_E_UNRECOVERABLE when pages_unrecoverable > 0; ATOMIO_E_NO_DOUBLEWRITE;
 *         ATOMIO_E_STORE; -errno. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_recover(atomio_ctx *ctx, atomio_recovery_report *report);

/**
 * atomio_ctx_remap_file() -- record that the copies of file_id belong to the data file at
 * path (an operator's way out when recovery reports a file missing or unknown, e.g. after a
 * restore to another place). Durable when it returns. Use it on a ctx opened with
 * ATOMIO_CTX_NO_RECOVER, then call atomio_ctx_recover().
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_NO_DOUBLEWRITE, -ENAMETOOLONG, -errno. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_remap_file(atomio_ctx *ctx, uint64_t file_id,
                                                      const char *path);

/**
 * atomio_ctx_discard_file() -- the next atomio_ctx_recover() on this ctx drops the copies of
 * file_id instead of keeping them (counted in pages_discarded): the operator has decided the
 * file is gone for good. Nothing is written until that recovery succeeds.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_NO_DOUBLEWRITE, -ENOMEM. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_discard_file(atomio_ctx *ctx, uint64_t file_id);

/**
 * atomio_store_reset() -- the operator's explicit reset of a doublewrite store directory:
 * every copy it holds is discarded (counted in report->batches_discarded and pages_discarded
 * where the store's header is readable) and the next atomio_ctx_open() lays it out afresh.
 * Never done implicitly. Refused while any process has the store open.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_ABI, ATOMIO_E_STORE_LOCKED, -errno. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_store_reset(const char *doublewrite_dir,
                                                   atomio_recovery_report *report);

/**
 * atomio_last_reason() -- a one-line explanation of the last failure of atomio_ctx_open(),
 * atomio_ctx_recover() or atomio_store_reset() on the calling thread (which header check
 * failed, which instance holds the store, what an operator can do), or "" if none.
 * @return a thread-local string, valid until the next such call on this thread. Since 0.2.
 */
ATOMIO_API const char *atomio_last_reason(void);

/* ------------------------------------------------------------------------------------------ */
/* Capabilities.                                                                                */

#define ATOMIO_REASON_LEN 192

/* atomio_caps.direct_atomic */
#define ATOMIO_ATOMIC_NONE     0u /* no O_DIRECT RWF_ATOMIC for this file and page size */
#define ATOMIO_ATOMIC_HARDWARE 1u /* device-backed (fast) */
#define ATOMIO_ATOMIC_SOFTWARE 2u /* filesystem copy-on-write (XFS), slow */

/* atomio_caps.valid bits */
#define ATOMIO_CAPS_STATX    0x1u /* statx figures filled */
#define ATOMIO_CAPS_SYSFS    0x2u /* hw_unit_max from sysfs filled */
#define ATOMIO_CAPS_BUFFERED 0x4u /* buffered probe write done */
#define ATOMIO_CAPS_VERDICTS 0x8u /* verdicts and reasons filled */

/**
 * Everything the probe learned about one file at one page size: raw figures, the verdict per
 * path with a one-line reason, and the path AUTO would pick (for the given io style / policy).
 * The caller sets size (ATOMIO_CAPS_INIT); the library fills what fits and sets valid.
 */
typedef struct atomio_caps {
    uint32_t size;
    uint32_t valid;         /* ATOMIO_CAPS_* */
    uint32_t page_size;     /* asked for */
    uint32_t sys_page_size; /* sysconf(_SC_PAGESIZE) */
    uint32_t fs_block_size; /* fs block: min(stx_blksize, statfs f_bsize) */
    uint32_t dev_major;     /* st_dev of the file */
    uint32_t dev_minor;
    uint32_t hw_unit_max;       /* sysfs queue/atomic_write_unit_max_bytes of the backing disk */
    int32_t hw_sysfs_err;       /* 0, or -errno reading sysfs (no block device: -ENODEV) */
    uint32_t direct_atomic;     /* ATOMIO_ATOMIC_* for this page size */
    uint32_t buffered_atomic;   /* 1 if the buffered probe write succeeded */
    int32_t buffered_probe_err; /* result of the probe write: 0 or -errno (e.g. -EOPNOTSUPP) */
    uint32_t page_order;        /* log2(page_size / sys_page_size), or UINT32_MAX if not whole */
    uint32_t fs_min_order;      /* log2(max(fs_block, sys_page) / sys_page) */
    uint64_t fs_type;           /* statfs f_type (XFS 0x58465342, ext4 0xef53, tmpfs 0x1021994) */
    uint32_t auto_path;         /* enum atomio_path AUTO picks with the probe's io style/policy */
    uint32_t folio_ok;          /* 1 if the page fits the folio-order rule of buffered atomics */
    char reason_direct[ATOMIO_REASON_LEN];      /* why DIRECT_ATOMIC is (not) possible */
    char reason_buffered[ATOMIO_REASON_LEN];    /* why BUFFERED_ATOMIC is (not) possible */
    char reason_doublewrite[ATOMIO_REASON_LEN]; /* DOUBLEWRITE verdict */
    char reason_auto[ATOMIO_REASON_LEN];        /* why AUTO picks auto_path */
#ifdef ATOMIO_EXPERIMENTAL
    /* Raw mirror of the statx fields behind the verdicts. Experimental: the kernel's atomic
     * write fields are young and may be reshaped. At the end of the struct, so a caller built
     * without ATOMIO_EXPERIMENTAL has a smaller size and the library fills only what fits. */
    uint32_t statx_mask;            /* stx_mask as returned */
    uint32_t dio_mem_align;         /* stx_dio_mem_align */
    uint64_t statx_attributes;      /* stx_attributes */
    uint32_t dio_offset_align;      /* stx_dio_offset_align */
    uint32_t dio_read_offset_align; /* stx_dio_read_offset_align */
    uint32_t unit_min;              /* stx_atomic_write_unit_min */
    uint32_t unit_max;              /* stx_atomic_write_unit_max */
    uint32_t segments_max;          /* stx_atomic_write_segments_max */
    uint32_t unit_max_opt;          /* stx_atomic_write_unit_max_opt (6.16+) */
#endif
} atomio_caps;

#define ATOMIO_CAPS_INIT ATOMIO_SIZE_ONLY_INIT_(atomio_caps)

/**
 * atomio_probe() -- probe a file's atomic-write capabilities at a page size, without a ctx.
 * Never writes the file itself (the buffered probe writes an O_TMPFILE in its directory, which
 * vanishes on close). AUTO's choice is computed for io style ANY and policy PREFER_FAST, with a
 * doublewrite store assumed available. Results are cached per (device, page size).
 * @param path an existing regular file, or a directory: then a nameless O_TMPFILE in it is
 *        probed, i.e. what a new file there would get.
 * @param page_size power of two in [512, 1 MiB].
 * @param caps caller sets caps->size.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_ABI, ATOMIO_E_PAGE_SIZE, -ENOENT, -EACCES, -errno.
 * Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_probe(const char *path, uint32_t page_size,
                                             atomio_caps *caps);

/* ------------------------------------------------------------------------------------------ */
/* Files.                                                                                       */

/* atomio_file_opts.flags */
#define ATOMIO_FILE_CREATE 0x1u /* create if missing (mode from opts->mode) */
#define ATOMIO_FILE_RDONLY 0x2u /* reads only; writes return ATOMIO_E_READ_ONLY */
/* never bounce-copy: buffers must come from atomio_page_alloc (or be aligned for O_DIRECT),
 * else refused */
#define ATOMIO_FILE_NO_COPY 0x4u
#define ATOMIO_FILE_DSYNC   0x8u /* every write is durable when it returns */

/** Options of atomio_file_open(). */
typedef struct atomio_file_opts {
    uint32_t size;
    uint32_t flags;     /* ATOMIO_FILE_* */
    uint32_t page_size; /* required: power of two in [512, 1 MiB] */
    uint32_t io_style;  /* enum atomio_io_style */
    uint32_t path;      /* enum atomio_path: AUTO, or a forced path */
    uint32_t policy;    /* enum atomio_policy; DEFAULT = the ctx's */
    uint64_t file_id;   /* engine's stable id (tablespace id) for the store; 0 = derive */
    uint32_t mode;      /* creation mode; 0 = 0600 */
    uint32_t reserved0; /* must be 0 */
    uint64_t reserved[4];
} atomio_file_opts;

#define ATOMIO_FILE_OPTS_INIT ATOMIO_SIZE_ONLY_INIT_(atomio_file_opts)

/** Fill *o with defaults and o->size. NULL is a no-op. Since 0.1. */
ATOMIO_API void atomio_file_opts_init(atomio_file_opts *o);

/**
 * atomio_file_open() -- open a data file and choose its write path.
 * The environment variable ATOMIO_PATH (direct|buffered|doublewrite|unsafe|auto) overrides
 * opts->path, for tests and operations.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_ABI, ATOMIO_E_PAGE_SIZE, ATOMIO_E_PATH_UNSUPPORTED (forced
 *         path impossible; atomio_file_get_info() is not available then, the reason is in
 *         atomio_probe()), ATOMIO_E_FOLIO_ORDER, ATOMIO_E_NO_DOUBLEWRITE, -errno from open().
 * Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_file_open(atomio_ctx *ctx, const char *path,
                                                 const atomio_file_opts *opts, atomio_file **out);

/**
 * atomio_file_close() -- fdatasync-free close. Unsynced writes are the engine's business (call
 * atomio_sync() first). NULL is a no-op. The handle is dead afterwards; using it returns
 * ATOMIO_E_CLOSED on a best-effort basis until the ctx is closed.
 * @return 0 or -errno from close(). Since 0.1.
 */
ATOMIO_API int atomio_file_close(atomio_file *f);

/**
 * atomio_file_fence() -- the engine is about to change @f without the library: truncate it,
 * punch a hole, write it with plain writes, or unlink it (a file later created at the same
 * path gets the same file_id). Every copy the doublewrite store holds of the file from before
 * the call is never applied to it again, by this process or by a later recovery (counted in
 * atomio_recovery_report.pages_fenced), even though the store keeps the bytes until they are
 * reused. Without the call, recovery may write such a copy back over the change, e.g. bring a
 * truncated page back. Pages written through the library after the call are protected as
 * usual. The fence is durable when the call returns, and copies of @f still waiting for a
 * sync of it no longer wait (they can never be applied): a file removed without a sync does
 * not hold store space. Writes of @f must not be in flight during the call, from any process:
 * the engine holds the lock it truncates under.
 * @return 0 (also when the ctx has no store: nothing to fence); ATOMIO_E_INVAL (NULL),
 *         ATOMIO_E_CLOSED, ATOMIO_E_READ_ONLY, ATOMIO_E_STORE_FAILED, -errno from the store's
 *         manifest write. Thread-safe. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_file_fence(atomio_file *f);

/**
 * atomio_ctx_fence_dir() -- atomio_file_fence() for every file the doublewrite store has ever
 * recorded under directory @dir, whether or not any process has it open: the engine is about
 * to remove or replace the whole directory without the library (DROP DATABASE's rmtree, a
 * directory copied back over). @dir must still exist: it is resolved with realpath(), as the
 * files' paths were when they were opened, so any spelling of it (relative, absolute, through
 * a symlink) names the same files. One durable manifest append for all of them; their copies
 * waiting for a sync no longer wait. Keep writes of those files out of flight, from any
 * process, and sync first whatever must survive a crash that undoes the removal.
 * @return the number of files under @dir (0 also when the ctx has no store); ATOMIO_E_INVAL
 *         (NULL or empty @dir, a ctx inherited across fork()), ATOMIO_E_STORE_FAILED, -errno
 *         from realpath() (-ENOENT: no such directory) or from the manifest write.
 *         Thread-safe. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_fence_dir(atomio_ctx *ctx, const char *dir);

/** Per-file facts (atomio_file_get_info()): the chosen path and why, the state, the figures behind
 * the choice. */
typedef struct atomio_file_info {
    uint32_t size;
    uint32_t path;            /* enum atomio_path currently in force */
    uint32_t torn_write_safe; /* 1 unless path is UNSAFE */
    uint32_t state;           /* enum atomio_file_state */
    uint32_t page_size;
    uint32_t io_style;              /* as asked */
    uint32_t policy;                /* as in force */
    uint32_t submitter;             /* enum atomio_submitter actually used (URING or SYNC) */
    uint32_t uring_fallback;        /* 1 if io_uring was wanted but could not be set up */
    uint32_t downgrades;            /* runtime downgrades to DOUBLEWRITE so far */
    uint32_t o_direct;              /* 1 if the data fd is O_DIRECT */
    uint32_t direct_atomic;         /* ATOMIO_ATOMIC_* from the probe */
    uint64_t file_id;               /* id in the doublewrite store */
    uint64_t calib_atomic_ns;       /* CALIBRATE: mean ns per page, DIRECT_ATOMIC (0 = not run) */
    uint64_t calib_doublewrite_ns;  /* CALIBRATE: mean ns per page, DOUBLEWRITE */
    char reason[ATOMIO_REASON_LEN]; /* why the current path */
    char reject_direct[ATOMIO_REASON_LEN]; /* why DIRECT_ATOMIC was not chosen ("" if chosen) */
    char reject_buffered[ATOMIO_REASON_LEN];
    char reject_doublewrite[ATOMIO_REASON_LEN];
} atomio_file_info;

#define ATOMIO_FILE_INFO_INIT ATOMIO_SIZE_ONLY_INIT_(atomio_file_info)

/** atomio_file_get_info() -- fill *info. @return 0, ATOMIO_E_INVAL, ATOMIO_E_ABI, ATOMIO_E_CLOSED.
 * Thread-safe. Since 0.1. */
ATOMIO_API ATOMIO_NODISCARD int atomio_file_get_info(const atomio_file *f, atomio_file_info *info);

/** atomio_file_get_caps() -- the probe figures behind the file's choice. Same errors as
 * atomio_file_get_info(). Thread-safe. Since 0.1. */
ATOMIO_API ATOMIO_NODISCARD int atomio_file_get_caps(const atomio_file *f, atomio_caps *caps);

/* ------------------------------------------------------------------------------------------ */
/* Page buffers.                                                                                */

/**
 * atomio_page_alloc() -- npages x page_size bytes, aligned to page_size (and at least 4096),
 * placed on the calling thread's NUMA node (or the ctx's numa_node),
 * pre-faulted (and mlocked with ATOMIO_CTX_LOCK_PAGES). Any such buffer may be passed to the
 * write functions without a bounce copy.
 * @return the buffer, or NULL (out of memory, or page_size invalid). Thread-safe. Since 0.1.
 */
ATOMIO_API void *atomio_page_alloc(atomio_ctx *ctx, uint32_t page_size, size_t npages);

/** atomio_page_free() -- release a buffer from atomio_page_alloc() with the same page_size and
 * npages. NULL is a no-op. Thread-safe. Since 0.1. */
ATOMIO_API void atomio_page_free(atomio_ctx *ctx, void *buf, uint32_t page_size, size_t npages);

/* ------------------------------------------------------------------------------------------ */
/* Writes, reads, durability.                                                                   */

/* write flags */
#define ATOMIO_WRITE_DSYNC 0x1u /* durable when the call returns */
/* The caller keeps every page unchanged until the call returns (as InnoDB's io-fixed frames,
 * or a private copy): a DOUBLEWRITE batch then writes 4 KiB-aligned pages to the store and in
 * place straight from the caller's memory, without copying them. Without it the batch copies
 * each page first, so a page changing during the call (hint bits) still lands whole. Other
 * paths ignore it. Since 0.1. */
#define ATOMIO_WRITE_STABLE_PAGES 0x2u

/**
 * atomio_write() -- write one whole page untorn.
 * @param page page_size bytes. On an O_DIRECT fd a page not aligned to the file's DIO memory
 *        alignment is copied into an aligned bounce buffer first (atomio_page_alloc() buffers
 *        never need it), or refused with ATOMIO_E_UNALIGNED under ATOMIO_FILE_NO_COPY; other
 *        paths copy as needed. A page crossing RLIMIT_FSIZE on an atomic path: -EFBIG, nothing
 *        written, the file stays usable.
 * @param flags ATOMIO_WRITE_*.
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_RANGE, ATOMIO_E_UNALIGNED, ATOMIO_E_READ_ONLY,
 *         ATOMIO_E_CLOSED, ATOMIO_E_FAILED, ATOMIO_E_SHORT_WRITE (file now failed),
 *         ATOMIO_E_GEOMETRY, -errno (EIO, EFBIG, EFAULT...). On error nothing is acknowledged;
 *         on success the page is untorn, and durable after atomio_sync() (or with DSYNC).
 * Thread-safe; concurrent writes to the same page are the engine's to serialize. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_write(atomio_file *f, uint64_t page_no, const void *page,
                                             uint32_t flags);

/** One entry of a batch. result is set by atomio_write_batch(). */
typedef struct atomio_page_write {
    atomio_file *file;
    uint64_t page_no;
    const void *page;
    int32_t result; /* out: 0 or an error for this entry */
    uint32_t reserved0;
} atomio_page_write;

/**
 * atomio_write_batch() -- write many pages of many files, in flight together.
 * Entries are validated first: an invalid entry gets its error and is not written; the others
 * proceed. Doublewrite entries of all files share store batches.
 * @return the number of entries written (n when all succeeded), or ATOMIO_E_INVAL for a NULL
 *         array. Each entry's result holds its own code. Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_write_batch(atomio_ctx *ctx, atomio_page_write *w, size_t n,
                                                   uint32_t flags);

/**
 * atomio_read() -- read one page. On an O_DIRECT fd an unaligned page is read through an
 * aligned copy (ATOMIO_E_UNALIGNED under ATOMIO_FILE_NO_COPY).
 * @return 0; ATOMIO_E_INVAL, ATOMIO_E_RANGE, ATOMIO_E_UNALIGNED, ATOMIO_E_CLOSED, -errno; a page
 *         beyond end of file reads as zeros. Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_read(atomio_file *f, uint64_t page_no, void *page);

/**
 * atomio_sync() -- make every acknowledged write of the file durable (fdatasync).
 * A failed fdatasync fails the file for good (sticky, like PostgreSQL's PANIC).
 * @return 0; ATOMIO_E_FAILED, ATOMIO_E_CLOSED, -EIO and other -errno (file now failed).
 * Thread-safe. Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_sync(atomio_file *f);

/** atomio_ctx_sync() -- atomio_sync() every open file of the ctx, then sync the files of every
 * copy still waiting for a sync, whichever process of the instance wrote it (deferred mode),
 * so the store then holds only records kept for recovery. @return 0 or the first error.
 * Since 0.1. */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_sync(atomio_ctx *ctx);

/**
 * atomio_ctx_flush() -- write-behind (ATOMIO_DOUBLEWRITE_WRITE_BEHIND): write every page that
 * any process of the instance had staged when the call began to the store, durably, and then
 * in place; return once they are in their files (in the page cache for buffered files: a sync
 * still makes them durable). Afterwards plain reads of the files see those pages. A no-op in
 * other modes.
 * @return 0; ATOMIO_E_INVAL (NULL, or a ctx inherited across fork()); ATOMIO_E_STORE_FAILED
 *         (the store failed); ATOMIO_E_FAILED (a staged page could not be written in place:
 *         its copy is kept for recovery); -errno. Thread-safe. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_flush(atomio_ctx *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Observability.                                                                               */

/* Latency histogram: bucket i holds write latencies in [2^i, 2^(i+1)) microseconds; bucket 0
 * also holds < 1 us. */
#define ATOMIO_LAT_BUCKETS 32

/* Room for paths in atomio_stats.pages[]: fixed, so a new path never moves later fields. */
#define ATOMIO_STATS_PATHS 8

/** Counters, per file or per ctx (the ctx sums its files, including closed ones). */
typedef struct atomio_stats {
    uint32_t size;
    uint32_t reserved0;
    uint64_t pages[ATOMIO_STATS_PATHS]; /* pages written, indexed by enum atomio_path */
    uint64_t bytes_data;                /* bytes written in place to data files */
    uint64_t bytes_doublewrite;         /* bytes written to the doublewrite store */
    uint64_t syncs;                     /* fdatasync calls (data files and store) */
    uint64_t batches;                   /* doublewrite batches completed */
    uint64_t downgrades;                /* atomic -> doublewrite runtime downgrades */
    uint64_t short_writes;              /* short writes seen (each failed a file) */
    uint64_t failed_syncs;              /* fdatasync failures (each failed a file) */
    uint64_t recovered_pages;           /* pages restored by recovery */
    uint64_t uring_fallbacks;           /* io_uring setups that failed and fell back to pwritev2 */
    uint64_t lat_hist[ATOMIO_LAT_BUCKETS]; /* per-page write latency */
    uint64_t bounce_copies; /* pages copied to an aligned buffer before an O_DIRECT write */
    uint64_t forced_syncs;  /* data-file syncs the library made itself because the store
                               ran short of space (backpressure) */
    uint64_t group_commits; /* store durability barriers (fdatasync of the store) */
    uint64_t group_records; /* store records those barriers made durable: the mean group
                               size is group_records / group_commits */
    /* The rest describe the shared store (ctx only; 0 for a file). */
    uint64_t store_bytes;      /* store capacity */
    uint64_t store_bytes_used; /* store bytes holding copies not yet released */
    uint64_t attached;         /* processes attached to the store */
    /* Write-behind (ATOMIO_DOUBLEWRITE_WRITE_BEHIND). Since 0.2. */
    uint64_t pages_staged; /* doublewrites that returned once staged */
    uint64_t staged_reads; /* atomio_read() calls served from a staged page */
    uint64_t staged_now;   /* ctx only: pages of the instance staged, not yet in place */
} atomio_stats;

#define ATOMIO_STATS_INIT ATOMIO_SIZE_ONLY_INIT_(atomio_stats)

/** atomio_ctx_get_stats() / atomio_file_get_stats() -- snapshot the counters (relaxed reads).
 * @return 0, ATOMIO_E_INVAL, ATOMIO_E_ABI. Thread-safe. Since 0.1. */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_get_stats(const atomio_ctx *ctx, atomio_stats *st);
ATOMIO_API ATOMIO_NODISCARD int atomio_file_get_stats(const atomio_file *f, atomio_stats *st);

/** Static names for enum values ("DIRECT_ATOMIC", "BUFFERED", "URING"...); "?" if unknown. */
ATOMIO_API const char *atomio_path_name(uint32_t path);
ATOMIO_API const char *atomio_io_style_name(uint32_t io_style);
ATOMIO_API const char *atomio_policy_name(uint32_t policy);
ATOMIO_API const char *atomio_submitter_name(uint32_t submitter);

/* ------------------------------------------------------------------------------------------ */
/* Engine-owned descriptors and no-durability mode.                                             */

/**
 * atomio_file_open_fd() -- as atomio_file_open(), on a descriptor the engine opened, so an
 * engine that budgets its descriptors (PostgreSQL's max_files_per_process) stays in control.
 * The library probes and writes through @fd, never opens a second descriptor for the file and
 * never closes @fd (atomio_file_close() leaves it open; close it after that). The fd's flags
 * decide the paths: DIRECT_ATOMIC only when it is O_DIRECT, BUFFERED_ATOMIC only when it is
 * not; AUTO never picks the other one, and forcing it fails with ATOMIO_E_PATH_UNSUPPORTED
 * (the reason: the descriptor is (not) O_DIRECT).
 * @param fd an open descriptor of a regular file: O_RDWR (O_RDONLY or O_RDWR with
 *        ATOMIO_FILE_RDONLY), never O_APPEND (the kernel checks an atomic write's alignment at
 *        the offset asked for, then appends at end of file). Do not change its flags afterwards.
 * @param path the same file's path (required): the doublewrite store records it for recovery
 *        and the buffered probe uses its directory. It must name the file @fd refers to.
 * @param opts as for atomio_file_open(), except ATOMIO_FILE_CREATE and mode, which are
 *        refused.
 * @return 0; ATOMIO_E_INVAL (NULL argument, fd < 0, O_APPEND or a wrong access mode, not a
 *         regular file, path naming another file, ATOMIO_FILE_CREATE or mode set),
 *         -EBADF (fd not open), and atomio_file_open()'s other errors. On error @fd is left
 *         open and untouched. Thread-safe. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_file_open_fd(atomio_ctx *ctx, int fd, const char *path,
                                                    const atomio_file_opts *opts,
                                                    atomio_file **out);

/**
 * atomio_ctx_set_durability() -- switch no-durability mode (for bulk loads, as PostgreSQL's
 * fsync=off) off or on; ATOMIO_CTX_NO_DURABILITY starts a ctx with durability off.
 * While off, every page of every path goes straight in place as a plain write (no doublewrite
 * store, no RWF_ATOMIC, no RWF_DSYNC, ATOMIO_WRITE_DSYNC ignored; counted as UNSAFE pages),
 * atomio_sync() and atomio_ctx_sync() skip fdatasync, and atomio_file_get_info() reports
 * torn_write_safe 0 with the reason. A crash then may leave any page torn or lost.
 * Bring-your-own-ring writes (atomio_prep_write()) stay protected.
 * Switching it back on waits for write calls still running unprotected, fdatasyncs every open
 * file of the ctx before it returns: pages written unprotected are durable before protected
 * writes count again. Switching it off first records, for every open file, that its older
 * copies in the store must never be applied over pages written from now on.
 * @param durable 1 on, 0 off.
 * @return 0; ATOMIO_E_INVAL (NULL ctx, durable not 0 or 1); the first error of that sync
 *         (-EIO..., a file that failed (ATOMIO_E_FAILED); such a file is failed for good, as
 *         after atomio_sync()). Durability is on afterwards even then. Switching off fails
 *         (and leaves durability on) when that record cannot be written: its -errno.
 *         Thread-safe. Since 0.2.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_ctx_set_durability(atomio_ctx *ctx, int durable);

/* ------------------------------------------------------------------------------------------ */
/* Experimental: young parts whose shape may still change between minor releases. Define       */
/* ATOMIO_EXPERIMENTAL before including this header to use them; they are exported under their */
/* own version node (ATOMIO_EXPERIMENTAL_0.2), so a program that uses them says so at link time. */

#ifdef ATOMIO_EXPERIMENTAL

/* Doublewrite store inspection, without a ctx (atomio-bench inspect). */

/** What an atomio_inspect_record describes. */
enum atomio_inspect_kind {
    ATOMIO_INSPECT_STORE = 1, /* the store header (first record) */
    ATOMIO_INSPECT_FILE = 2,  /* a manifest record: file id -> path (later records win) */
    ATOMIO_INSPECT_BATCH = 3, /* a record found in the ring (its header checks out) */
    ATOMIO_INSPECT_SLOT = 4   /* one page slot of the preceding record */
};

/** State of a batch found in the store. */
enum atomio_batch_state {
    ATOMIO_BATCH_VALID = 1, /* header, slot table and every page CRC hold: recovery uses it */
    ATOMIO_BATCH_TORN = 2   /* something does not check out: recovery ignores it */
};

/**
 * One record of atomio_store_inspect(). Fields not used by a kind are zero / NULL. Pointers
 * are valid only during the callback.
 */
typedef struct atomio_inspect_record {
    uint32_t size;           /* sizeof(atomio_inspect_record) as the library knows it */
    uint32_t kind;           /* enum atomio_inspect_kind */
    uint32_t format_version; /* STORE: on-disk format version */
    uint32_t max_page_size;  /* STORE: largest page a record holds */
    uint64_t ring_size;      /* STORE: bytes of the record ring */
    uint64_t tail;           /* STORE: durable tail: records with a lower LSN are released */
    uint8_t uuid[16];        /* STORE: store identity */
    uint64_t file_id;        /* FILE, SLOT */
    const char *path;        /* FILE: data file path as recorded */
    uint64_t from_lsn;       /* FILE: copies with a lower LSN are never applied to it */
    uint32_t relative;       /* FILE: 1 if path is relative to the engine's data root */
    uint32_t state;          /* BATCH: enum atomio_batch_state */
    uint64_t offset;         /* BATCH, SLOT: the record's offset in the store file */
    uint64_t lsn;            /* BATCH, SLOT: the record's log sequence number */
    uint32_t pages;          /* BATCH: slot count */
    uint32_t slot;           /* SLOT: index in the record */
    uint64_t bytes;          /* BATCH: record length in bytes */
    const char *why;         /* BATCH: "ok", or the first check that failed */
    uint64_t page_no;        /* SLOT: page number in the file */
    uint32_t page_size;      /* SLOT */
    uint32_t crc_ok;         /* SLOT: 1 if the slot descriptor and the page bytes check out */
    uint32_t crc;            /* SLOT: CRC32C recorded for the page */
    uint32_t live;           /* BATCH: valid and at or above the tail: recovery applies it */
} atomio_inspect_record;

/** Callback of atomio_store_inspect(): return 0 to continue, non-zero to stop the walk. */
typedef int (*atomio_inspect_fn)(void *arg, const atomio_inspect_record *rec);

/**
 * atomio_store_inspect() -- read a doublewrite store directory without a ctx and without
 * writing anything: the store header, the manifest, then every record found in the ring and
 * its slots, in that order, each as a record passed to fn.
 * @param doublewrite_dir the directory given as atomio_ctx_opts.doublewrite_dir.
 * @param fn called once per record, on the calling thread.
 * @return 0 (also when fn stopped the walk); ATOMIO_E_INVAL (NULL argument), -ENOENT (no
 *         store in the directory), ATOMIO_E_STORE (not a store, or a damaged header),
 *         -ENOMEM, other -errno. Thread-safe; a store in use may be seen mid-batch (such
 *         batches show as TORN). Since 0.1.
 */
ATOMIO_API ATOMIO_NODISCARD int atomio_store_inspect(const char *doublewrite_dir,
                                                     atomio_inspect_fn fn, void *arg);

#endif /* ATOMIO_EXPERIMENTAL */

#ifdef __cplusplus
}
#endif

#endif /* ATOMIO_H */
