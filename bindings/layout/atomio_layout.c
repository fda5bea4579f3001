/* SPDX-License-Identifier: MIT */
/*
 * atomio_layout.c -- the C compiler's view of include/atomio.h, for the bindings' ABI tests.
 * Exports the size of every public struct, the offset and size of each of its fields, and
 * the value of every public constant, so the Python (ctypes) and Rust (extern "C") mirrors,
 * which are written by hand, can be checked against what a C caller actually gets. Test-only:
 * never linked into libatomio. A field added to a public struct must be added here too; the
 * bindings' tests then fail until their mirrors follow, and the layout tests check that the
 * fields listed here tile each struct, so a field left out of this list shows as a gap.
 *
 * Built with ATOMIO_EXPERIMENTAL: the bindings mirror the experimental tail of atomio_caps.
 * The experimental atomio_inspect_record is not listed: neither binding wraps
 * atomio_store_inspect(), so there is no mirror to check (list it here when one is added).
 */
#ifndef ATOMIO_EXPERIMENTAL
#error "atomio_layout.c describes the ATOMIO_EXPERIMENTAL layout: build it with -DATOMIO_EXPERIMENTAL"
#endif
#include <atomio.h>
#include <stddef.h>
#include <stdint.h>

#define LAYOUT_API __attribute__((visibility("default")))

struct atomio_layout_field {
    const char *type;  /* struct name, e.g. "atomio_caps" */
    const char *field; /* field name, or "" for the struct itself */
    uint64_t offset;   /* offsetof (0 for the struct itself) */
    uint64_t size;     /* sizeof the field (or the struct) */
};

struct atomio_layout_const {
    const char *name; /* macro or enumerator name, e.g. "ATOMIO_E_CLOSED" */
    int64_t value;
};

LAYOUT_API const struct atomio_layout_field *atomio_layout_fields(size_t *n);
LAYOUT_API const struct atomio_layout_const *atomio_layout_consts(size_t *n);

#define S(T) {#T, "", 0, sizeof(T)}
#define F(T, f) {#T, #f, offsetof(T, f), sizeof(((T *)0)->f)}

static const struct atomio_layout_field fields[] = {
    S(atomio_ctx_opts),
    F(atomio_ctx_opts, size),
    F(atomio_ctx_opts, flags),
    F(atomio_ctx_opts, doublewrite_dir),
    F(atomio_ctx_opts, policy),
    F(atomio_ctx_opts, submitter),
    F(atomio_ctx_opts, queue_depth),
    F(atomio_ctx_opts, doublewrite_mode),
    F(atomio_ctx_opts, doublewrite_batch_pages),
    F(atomio_ctx_opts, doublewrite_max_page_size),
    F(atomio_ctx_opts, numa_node),
    F(atomio_ctx_opts, reserved0),
    F(atomio_ctx_opts, verify),
    F(atomio_ctx_opts, verify_arg),
    F(atomio_ctx_opts, data_root),
    F(atomio_ctx_opts, unapplied),
    F(atomio_ctx_opts, unapplied_arg),
    F(atomio_ctx_opts, instance),
    F(atomio_ctx_opts, doublewrite_store_bytes),
    F(atomio_ctx_opts, write_behind_bytes),
    F(atomio_ctx_opts, reserved),

    S(atomio_recovery_report),
    F(atomio_recovery_report, size),
    F(atomio_recovery_report, reserved0),
    F(atomio_recovery_report, ring_bytes_scanned),
    F(atomio_recovery_report, batches_scanned),
    F(atomio_recovery_report, batches_valid),
    F(atomio_recovery_report, batches_torn),
    F(atomio_recovery_report, pages_checked),
    F(atomio_recovery_report, pages_restored),
    F(atomio_recovery_report, pages_verified_intact),
    F(atomio_recovery_report, pages_unrecoverable),
    F(atomio_recovery_report, files_missing),
    F(atomio_recovery_report, unknown_file_ids),
    F(atomio_recovery_report, pages_unapplied),
    F(atomio_recovery_report, pages_discarded),
    F(atomio_recovery_report, batches_discarded),
    F(atomio_recovery_report, headers_repaired),
    F(atomio_recovery_report, pages_fenced),

    S(atomio_caps),
    F(atomio_caps, size),
    F(atomio_caps, valid),
    F(atomio_caps, page_size),
    F(atomio_caps, sys_page_size),
    F(atomio_caps, fs_block_size),
    F(atomio_caps, dev_major),
    F(atomio_caps, dev_minor),
    F(atomio_caps, hw_unit_max),
    F(atomio_caps, hw_sysfs_err),
    F(atomio_caps, direct_atomic),
    F(atomio_caps, buffered_atomic),
    F(atomio_caps, buffered_probe_err),
    F(atomio_caps, page_order),
    F(atomio_caps, fs_min_order),
    F(atomio_caps, fs_type),
    F(atomio_caps, auto_path),
    F(atomio_caps, folio_ok),
    F(atomio_caps, reason_direct),
    F(atomio_caps, reason_buffered),
    F(atomio_caps, reason_doublewrite),
    F(atomio_caps, reason_auto),
    /* experimental tail */
    F(atomio_caps, statx_mask),
    F(atomio_caps, dio_mem_align),
    F(atomio_caps, statx_attributes),
    F(atomio_caps, dio_offset_align),
    F(atomio_caps, dio_read_offset_align),
    F(atomio_caps, unit_min),
    F(atomio_caps, unit_max),
    F(atomio_caps, segments_max),
    F(atomio_caps, unit_max_opt),

    S(atomio_file_opts),
    F(atomio_file_opts, size),
    F(atomio_file_opts, flags),
    F(atomio_file_opts, page_size),
    F(atomio_file_opts, io_style),
    F(atomio_file_opts, path),
    F(atomio_file_opts, policy),
    F(atomio_file_opts, file_id),
    F(atomio_file_opts, mode),
    F(atomio_file_opts, reserved0),
    F(atomio_file_opts, reserved),

    S(atomio_file_info),
    F(atomio_file_info, size),
    F(atomio_file_info, path),
    F(atomio_file_info, torn_write_safe),
    F(atomio_file_info, state),
    F(atomio_file_info, page_size),
    F(atomio_file_info, io_style),
    F(atomio_file_info, policy),
    F(atomio_file_info, submitter),
    F(atomio_file_info, uring_fallback),
    F(atomio_file_info, downgrades),
    F(atomio_file_info, o_direct),
    F(atomio_file_info, direct_atomic),
    F(atomio_file_info, file_id),
    F(atomio_file_info, calib_atomic_ns),
    F(atomio_file_info, calib_doublewrite_ns),
    F(atomio_file_info, reason),
    F(atomio_file_info, reject_direct),
    F(atomio_file_info, reject_buffered),
    F(atomio_file_info, reject_doublewrite),

    S(atomio_page_write),
    F(atomio_page_write, file),
    F(atomio_page_write, page_no),
    F(atomio_page_write, page),
    F(atomio_page_write, result),
    F(atomio_page_write, reserved0),

    S(atomio_stats),
    F(atomio_stats, size),
    F(atomio_stats, reserved0),
    F(atomio_stats, pages),
    F(atomio_stats, bytes_data),
    F(atomio_stats, bytes_doublewrite),
    F(atomio_stats, syncs),
    F(atomio_stats, batches),
    F(atomio_stats, downgrades),
    F(atomio_stats, short_writes),
    F(atomio_stats, failed_syncs),
    F(atomio_stats, recovered_pages),
    F(atomio_stats, uring_fallbacks),
    F(atomio_stats, lat_hist),
    F(atomio_stats, bounce_copies),
    F(atomio_stats, forced_syncs),
    F(atomio_stats, group_commits),
    F(atomio_stats, group_records),
    F(atomio_stats, store_bytes),
    F(atomio_stats, store_bytes_used),
    F(atomio_stats, attached),
    F(atomio_stats, pages_staged),
    F(atomio_stats, staged_reads),
    F(atomio_stats, staged_now),
};

#define C(name) {#name, (int64_t)(name)}

static const struct atomio_layout_const consts[] = {
    C(ATOMIO_VERSION_MAJOR),
    C(ATOMIO_VERSION_MINOR),
    C(ATOMIO_VERSION_PATCH),

    C(ATOMIO_OK),
    C(ATOMIO_E_INVAL),
    C(ATOMIO_E_ABI),
    C(ATOMIO_E_PAGE_SIZE),
    C(ATOMIO_E_UNALIGNED),
    C(ATOMIO_E_RANGE),
    C(ATOMIO_E_PATH_UNSUPPORTED),
    C(ATOMIO_E_FOLIO_ORDER),
    C(ATOMIO_E_SHORT_WRITE),
    C(ATOMIO_E_FAILED),
    C(ATOMIO_E_CLOSED),
    C(ATOMIO_E_READ_ONLY),
    C(ATOMIO_E_NO_DOUBLEWRITE),
    C(ATOMIO_E_STORE),
    C(ATOMIO_E_STORE_FULL),
    C(ATOMIO_E_UNRECOVERABLE),
    C(ATOMIO_E_NEEDS_DOUBLEWRITE),
    C(ATOMIO_E_SEQUENCE),
    C(ATOMIO_E_NO_COPY),
    C(ATOMIO_E_GEOMETRY),
    C(ATOMIO_E_BUSY),
    C(ATOMIO_E_STORE_FAILED),
    C(ATOMIO_E_STORE_LOCKED),
    C(ATOMIO_E_UNAPPLIED),

    C(ATOMIO_PATH_AUTO),
    C(ATOMIO_PATH_DIRECT_ATOMIC),
    C(ATOMIO_PATH_BUFFERED_ATOMIC),
    C(ATOMIO_PATH_DOUBLEWRITE),
    C(ATOMIO_PATH_UNSAFE),
    C(ATOMIO_STATS_PATHS),

    C(ATOMIO_IO_ANY),
    C(ATOMIO_IO_BUFFERED),
    C(ATOMIO_IO_DIRECT),

    C(ATOMIO_POLICY_DEFAULT),
    C(ATOMIO_POLICY_PREFER_FAST),
    C(ATOMIO_POLICY_PREFER_ATOMIC),
    C(ATOMIO_POLICY_CALIBRATE),

    C(ATOMIO_SUBMIT_AUTO),
    C(ATOMIO_SUBMIT_URING),
    C(ATOMIO_SUBMIT_SYNC),

    C(ATOMIO_STATE_OK),
    C(ATOMIO_STATE_FAILED),
    C(ATOMIO_STATE_CLOSED),

    C(ATOMIO_CTX_NO_DOUBLEWRITE),
    C(ATOMIO_CTX_NO_RECOVER),
    C(ATOMIO_CTX_LOCK_PAGES),
    C(ATOMIO_CTX_NO_DURABILITY),

    C(ATOMIO_DOUBLEWRITE_SYNC_BATCH),
    C(ATOMIO_DOUBLEWRITE_DEFERRED),
    C(ATOMIO_DOUBLEWRITE_WRITE_BEHIND),

    C(ATOMIO_REASON_LEN),
    C(ATOMIO_ATOMIC_NONE),
    C(ATOMIO_ATOMIC_HARDWARE),
    C(ATOMIO_ATOMIC_SOFTWARE),
    C(ATOMIO_CAPS_STATX),
    C(ATOMIO_CAPS_SYSFS),
    C(ATOMIO_CAPS_BUFFERED),
    C(ATOMIO_CAPS_VERDICTS),

    C(ATOMIO_FILE_CREATE),
    C(ATOMIO_FILE_RDONLY),
    C(ATOMIO_FILE_NO_COPY),
    C(ATOMIO_FILE_DSYNC),

    C(ATOMIO_WRITE_DSYNC),
    C(ATOMIO_WRITE_STABLE_PAGES),
    C(ATOMIO_LAT_BUCKETS),
};

const struct atomio_layout_field *
atomio_layout_fields(size_t *n)
{
    *n = sizeof(fields) / sizeof(fields[0]);
    return fields;
}

const struct atomio_layout_const *
atomio_layout_consts(size_t *n)
{
    *n = sizeof(consts) / sizeof(consts[0]);
    return consts;
}
