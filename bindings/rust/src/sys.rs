// SPDX-License-Identifier: MIT
//! Raw declarations of `include/atomio.h`, written by hand.
//!
//! Every struct is `#[repr(C)]` with the header's field order and fixed-width types; the test
//! `tests/layout.rs` compares each size and field offset, and every constant, with what the C
//! compiler produces (`bindings/layout/atomio_layout.c`). Prefer the safe API in the crate root.
//!
//! The structs are those of a C caller that defines `ATOMIO_EXPERIMENTAL`: [`atomio_caps`]
//! ends with the experimental raw statx mirror, which such a caller gets and others do not.
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_int, c_uint, c_void};

// --- version ----------------------------------------------------------------------------
pub const ATOMIO_VERSION_MAJOR: i64 = 0;
pub const ATOMIO_VERSION_MINOR: i64 = 2;
pub const ATOMIO_VERSION_PATCH: i64 = 0;

// --- enum atomio_error ------------------------------------------------------------------
pub const ATOMIO_OK: c_int = 0;
pub const ATOMIO_E_INVAL: c_int = -5000;
pub const ATOMIO_E_ABI: c_int = -5001;
pub const ATOMIO_E_PAGE_SIZE: c_int = -5002;
pub const ATOMIO_E_UNALIGNED: c_int = -5003;
pub const ATOMIO_E_RANGE: c_int = -5004;
pub const ATOMIO_E_PATH_UNSUPPORTED: c_int = -5005;
pub const ATOMIO_E_FOLIO_ORDER: c_int = -5006;
pub const ATOMIO_E_SHORT_WRITE: c_int = -5007;
pub const ATOMIO_E_FAILED: c_int = -5008;
pub const ATOMIO_E_CLOSED: c_int = -5009;
pub const ATOMIO_E_READ_ONLY: c_int = -5010;
pub const ATOMIO_E_NO_DOUBLEWRITE: c_int = -5011;
pub const ATOMIO_E_STORE: c_int = -5012;
pub const ATOMIO_E_STORE_FULL: c_int = -5013;
pub const ATOMIO_E_UNRECOVERABLE: c_int = -5014;
pub const ATOMIO_E_NEEDS_DOUBLEWRITE: c_int = -5015;
pub const ATOMIO_E_SEQUENCE: c_int = -5016;
pub const ATOMIO_E_NO_COPY: c_int = -5017;
pub const ATOMIO_E_GEOMETRY: c_int = -5018;
pub const ATOMIO_E_BUSY: c_int = -5019;
pub const ATOMIO_E_STORE_FAILED: c_int = -5020;
pub const ATOMIO_E_STORE_LOCKED: c_int = -5021;
pub const ATOMIO_E_UNAPPLIED: c_int = -5022;

// --- enums carried in uint32_t fields -----------------------------------------------------
pub const ATOMIO_PATH_AUTO: u32 = 0;
pub const ATOMIO_PATH_DIRECT_ATOMIC: u32 = 1;
pub const ATOMIO_PATH_BUFFERED_ATOMIC: u32 = 2;
pub const ATOMIO_PATH_DOUBLEWRITE: u32 = 3;
pub const ATOMIO_PATH_UNSAFE: u32 = 4;
/// Length of `atomio_stats.pages`: fixed room, not the number of paths (a newer library may
/// fill more slots than the paths this crate knows, which are `WritePath::ALL`).
pub const ATOMIO_STATS_PATHS: usize = 8;

pub const ATOMIO_IO_ANY: u32 = 0;
pub const ATOMIO_IO_BUFFERED: u32 = 1;
pub const ATOMIO_IO_DIRECT: u32 = 2;

pub const ATOMIO_POLICY_DEFAULT: u32 = 0;
pub const ATOMIO_POLICY_PREFER_FAST: u32 = 1;
pub const ATOMIO_POLICY_PREFER_ATOMIC: u32 = 2;
pub const ATOMIO_POLICY_CALIBRATE: u32 = 3;

pub const ATOMIO_SUBMIT_AUTO: u32 = 0;
pub const ATOMIO_SUBMIT_URING: u32 = 1;
pub const ATOMIO_SUBMIT_SYNC: u32 = 2;

pub const ATOMIO_STATE_OK: u32 = 0;
pub const ATOMIO_STATE_FAILED: u32 = 1;
pub const ATOMIO_STATE_CLOSED: u32 = 2;

// --- flags and sizes ----------------------------------------------------------------------
pub const ATOMIO_CTX_NO_DOUBLEWRITE: u32 = 0x1;
pub const ATOMIO_CTX_NO_RECOVER: u32 = 0x2;
pub const ATOMIO_CTX_LOCK_PAGES: u32 = 0x4;
pub const ATOMIO_CTX_NO_DURABILITY: u32 = 0x10;

// enum atomio_doublewrite_mode (atomio_ctx_opts.doublewrite_mode)
pub const ATOMIO_DOUBLEWRITE_SYNC_BATCH: u32 = 0;
pub const ATOMIO_DOUBLEWRITE_DEFERRED: u32 = 1;
pub const ATOMIO_DOUBLEWRITE_WRITE_BEHIND: u32 = 2;

pub const ATOMIO_REASON_LEN: usize = 192;
pub const ATOMIO_ATOMIC_NONE: u32 = 0;
pub const ATOMIO_ATOMIC_HARDWARE: u32 = 1;
pub const ATOMIO_ATOMIC_SOFTWARE: u32 = 2;
pub const ATOMIO_CAPS_STATX: u32 = 0x1;
pub const ATOMIO_CAPS_SYSFS: u32 = 0x2;
pub const ATOMIO_CAPS_BUFFERED: u32 = 0x4;
pub const ATOMIO_CAPS_VERDICTS: u32 = 0x8;

pub const ATOMIO_FILE_CREATE: u32 = 0x1;
pub const ATOMIO_FILE_RDONLY: u32 = 0x2;
pub const ATOMIO_FILE_NO_COPY: u32 = 0x4;
pub const ATOMIO_FILE_DSYNC: u32 = 0x8;

pub const ATOMIO_WRITE_DSYNC: u32 = 0x1;
pub const ATOMIO_WRITE_STABLE_PAGES: u32 = 0x2;
pub const ATOMIO_LAT_BUCKETS: usize = 32;

// --- handles ------------------------------------------------------------------------------
/// Opaque `atomio_ctx` (only ever behind a pointer).
#[repr(C)]
pub struct atomio_ctx {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque `atomio_file` (only ever behind a pointer).
#[repr(C)]
pub struct atomio_file {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

pub type atomio_verify_fn = Option<
    unsafe extern "C" fn(
        arg: *mut c_void,
        file_id: u64,
        page_no: u64,
        page: *const c_void,
        page_size: u32,
    ) -> c_int,
>;

pub type atomio_unapplied_fn = Option<
    unsafe extern "C" fn(
        arg: *mut c_void,
        file_id: u64,
        path: *const c_char,
        pages: u64,
        err: c_int,
    ),
>;

// --- structs ------------------------------------------------------------------------------
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct atomio_ctx_opts {
    pub size: u32,
    pub flags: u32,
    pub doublewrite_dir: *const c_char,
    pub policy: u32,
    pub submitter: u32,
    pub queue_depth: u32,
    pub doublewrite_mode: u32,
    pub doublewrite_batch_pages: u32,
    pub doublewrite_max_page_size: u32,
    pub numa_node: i32,
    pub reserved0: u32,
    pub verify: atomio_verify_fn,
    pub verify_arg: *mut c_void,
    pub data_root: *const c_char,
    pub unapplied: atomio_unapplied_fn,
    pub unapplied_arg: *mut c_void,
    pub instance: *const c_char,
    pub doublewrite_store_bytes: u64,
    pub write_behind_bytes: u64,
    pub reserved: [u64; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct atomio_recovery_report {
    pub size: u32,
    pub reserved0: u32,
    pub ring_bytes_scanned: u64,
    pub batches_scanned: u64,
    pub batches_valid: u64,
    pub batches_torn: u64,
    pub pages_checked: u64,
    pub pages_restored: u64,
    pub pages_verified_intact: u64,
    pub pages_unrecoverable: u64,
    pub files_missing: u64,
    pub unknown_file_ids: u64,
    pub pages_unapplied: u64,
    pub pages_discarded: u64,
    pub batches_discarded: u64,
    pub headers_repaired: u64,
    pub pages_fenced: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct atomio_caps {
    pub size: u32,
    pub valid: u32,
    pub page_size: u32,
    pub sys_page_size: u32,
    pub fs_block_size: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub hw_unit_max: u32,
    pub hw_sysfs_err: i32,
    pub direct_atomic: u32,
    pub buffered_atomic: u32,
    pub buffered_probe_err: i32,
    pub page_order: u32,
    pub fs_min_order: u32,
    pub fs_type: u64,
    pub auto_path: u32,
    pub folio_ok: u32,
    pub reason_direct: [c_char; ATOMIO_REASON_LEN],
    pub reason_buffered: [c_char; ATOMIO_REASON_LEN],
    pub reason_doublewrite: [c_char; ATOMIO_REASON_LEN],
    pub reason_auto: [c_char; ATOMIO_REASON_LEN],
    // Experimental (ATOMIO_EXPERIMENTAL): the raw statx mirror, at the end so that a caller
    // without it passes a smaller size and the library fills only the part above.
    pub statx_mask: u32,
    pub dio_mem_align: u32,
    pub statx_attributes: u64,
    pub dio_offset_align: u32,
    pub dio_read_offset_align: u32,
    pub unit_min: u32,
    pub unit_max: u32,
    pub segments_max: u32,
    pub unit_max_opt: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct atomio_file_opts {
    pub size: u32,
    pub flags: u32,
    pub page_size: u32,
    pub io_style: u32,
    pub path: u32,
    pub policy: u32,
    pub file_id: u64,
    pub mode: u32,
    pub reserved0: u32,
    pub reserved: [u64; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct atomio_file_info {
    pub size: u32,
    pub path: u32,
    pub torn_write_safe: u32,
    pub state: u32,
    pub page_size: u32,
    pub io_style: u32,
    pub policy: u32,
    pub submitter: u32,
    pub uring_fallback: u32,
    pub downgrades: u32,
    pub o_direct: u32,
    pub direct_atomic: u32,
    pub file_id: u64,
    pub calib_atomic_ns: u64,
    pub calib_doublewrite_ns: u64,
    pub reason: [c_char; ATOMIO_REASON_LEN],
    pub reject_direct: [c_char; ATOMIO_REASON_LEN],
    pub reject_buffered: [c_char; ATOMIO_REASON_LEN],
    pub reject_doublewrite: [c_char; ATOMIO_REASON_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct atomio_page_write {
    pub file: *mut atomio_file,
    pub page_no: u64,
    pub page: *const c_void,
    pub result: i32,
    pub reserved0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct atomio_stats {
    pub size: u32,
    pub reserved0: u32,
    pub pages: [u64; ATOMIO_STATS_PATHS],
    pub bytes_data: u64,
    pub bytes_doublewrite: u64,
    pub syncs: u64,
    pub batches: u64,
    pub downgrades: u64,
    pub short_writes: u64,
    pub failed_syncs: u64,
    pub recovered_pages: u64,
    pub uring_fallbacks: u64,
    pub lat_hist: [u64; ATOMIO_LAT_BUCKETS],
    pub bounce_copies: u64,
    pub forced_syncs: u64,
    pub group_commits: u64,
    pub group_records: u64,
    pub store_bytes: u64,
    pub store_bytes_used: u64,
    pub attached: u64,
    pub pages_staged: u64,
    pub staged_reads: u64,
    pub staged_now: u64,
}

/// A zeroed value of a size-versioned output struct with `size` set (ATOMIO_*_INIT).
macro_rules! sized_zeroed {
    ($($t:ty),*) => {$(
        impl $t {
            /// Zeroed, with `size` set to this struct's size (the header's `*_INIT`).
            pub fn new_sized() -> Self {
                // SAFETY: plain-old-data: integers, arrays of integers, nullable pointers and
                // an Option of a function pointer, for all of which zero is a valid value.
                let mut v: Self = unsafe { std::mem::zeroed() };
                v.size = std::mem::size_of::<Self>() as u32;
                v
            }
        }
    )*};
}
sized_zeroed!(
    atomio_ctx_opts,
    atomio_recovery_report,
    atomio_caps,
    atomio_file_opts,
    atomio_file_info,
    atomio_stats
);

// --- functions ----------------------------------------------------------------------------
extern "C" {
    pub fn atomio_version_number() -> c_uint;
    pub fn atomio_version_string() -> *const c_char;
    pub fn atomio_strerror(err: c_int) -> *const c_char;
    pub fn atomio_err_name(err: c_int) -> *const c_char;

    pub fn atomio_ctx_opts_init(o: *mut atomio_ctx_opts);
    pub fn atomio_ctx_open(opts: *const atomio_ctx_opts, out: *mut *mut atomio_ctx) -> c_int;
    pub fn atomio_ctx_close(ctx: *mut atomio_ctx) -> c_int;
    pub fn atomio_ctx_recover(ctx: *mut atomio_ctx, report: *mut atomio_recovery_report) -> c_int;
    pub fn atomio_ctx_remap_file(ctx: *mut atomio_ctx, file_id: u64, path: *const c_char) -> c_int;
    pub fn atomio_ctx_discard_file(ctx: *mut atomio_ctx, file_id: u64) -> c_int;
    pub fn atomio_ctx_fence_dir(ctx: *mut atomio_ctx, dir: *const c_char) -> c_int;
    pub fn atomio_store_reset(
        doublewrite_dir: *const c_char,
        report: *mut atomio_recovery_report,
    ) -> c_int;
    pub fn atomio_last_reason() -> *const c_char;

    pub fn atomio_probe(path: *const c_char, page_size: u32, caps: *mut atomio_caps) -> c_int;

    pub fn atomio_file_opts_init(o: *mut atomio_file_opts);
    pub fn atomio_file_open(
        ctx: *mut atomio_ctx,
        path: *const c_char,
        opts: *const atomio_file_opts,
        out: *mut *mut atomio_file,
    ) -> c_int;
    pub fn atomio_file_close(f: *mut atomio_file) -> c_int;
    pub fn atomio_file_get_info(f: *const atomio_file, info: *mut atomio_file_info) -> c_int;
    pub fn atomio_file_get_caps(f: *const atomio_file, caps: *mut atomio_caps) -> c_int;
    pub fn atomio_file_fence(f: *mut atomio_file) -> c_int;

    pub fn atomio_page_alloc(ctx: *mut atomio_ctx, page_size: u32, npages: usize) -> *mut c_void;
    pub fn atomio_page_free(ctx: *mut atomio_ctx, buf: *mut c_void, page_size: u32, npages: usize);

    pub fn atomio_write(
        f: *mut atomio_file,
        page_no: u64,
        page: *const c_void,
        flags: u32,
    ) -> c_int;
    pub fn atomio_write_batch(
        ctx: *mut atomio_ctx,
        w: *mut atomio_page_write,
        n: usize,
        flags: u32,
    ) -> c_int;
    pub fn atomio_read(f: *mut atomio_file, page_no: u64, page: *mut c_void) -> c_int;
    pub fn atomio_sync(f: *mut atomio_file) -> c_int;
    pub fn atomio_ctx_sync(ctx: *mut atomio_ctx) -> c_int;
    pub fn atomio_ctx_flush(ctx: *mut atomio_ctx) -> c_int;

    pub fn atomio_ctx_get_stats(ctx: *const atomio_ctx, st: *mut atomio_stats) -> c_int;
    pub fn atomio_file_get_stats(f: *const atomio_file, st: *mut atomio_stats) -> c_int;

    pub fn atomio_path_name(path: u32) -> *const c_char;
    pub fn atomio_io_style_name(io_style: u32) -> *const c_char;
    pub fn atomio_policy_name(policy: u32) -> *const c_char;
    pub fn atomio_submitter_name(submitter: u32) -> *const c_char;
}
