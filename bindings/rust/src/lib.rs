// SPDX-License-Identifier: MIT
//! Safe Rust bindings for libatomio: untorn page writes for database storage engines.
//!
//! Only the public C API (`include/atomio.h`) is used; [`sys`] holds the raw declarations.
//! A [`Ctx`] owns the doublewrite store, buffers and counters; a [`File`] borrows its `Ctx`
//! (so it cannot outlive it) and writes whole pages, each one untorn. Every negative library
//! result becomes an [`Error`] carrying the code, its name and its message.
//!
//! ```no_run
//! use atomio::{Ctx, CtxOptions, FileOptions};
//!
//! fn main() -> atomio::Result<()> {
//!     let caps = atomio::probe("/data/db/t1.ibd", 16384)?; // an existing file
//!     println!("AUTO would pick {}: {}", caps.auto_path, caps.reason_auto);
//!     let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir("/data/db/dblwr"))?;
//!     let file = ctx.open_file("/data/db/t1.ibd", &FileOptions::new(16384))?;
//!     let mut page = ctx.page_alloc(16384, 1)?; // aligned: written without a copy
//!     page.fill(0x5a);
//!     file.write(0, &page)?;
//!     file.sync()?;
//!     println!("{} via {}", file.stats()?.pages_total(), file.info()?.path);
//!     Ok(())
//! }
//! ```
//!
//! Paths, io styles, policies and submitters are newtypes over the C enum values
//! ([`WritePath`] etc.): a value added by a newer library is carried and named by the library
//! without a change here.
//!
//! Ownership makes a closed handle unusable at compile time:
//!
//! ```compile_fail
//! # fn f(ctx: &atomio::Ctx) -> atomio::Result<()> {
//! let file = ctx.open_file("/tmp/x", &atomio::FileOptions::new(4096))?;
//! file.close()?;
//! file.write(0, &[0u8; 4096])?; // use of moved value: `file`
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! # fn f() -> atomio::Result<()> {
//! let ctx = atomio::Ctx::open(&atomio::CtxOptions::new())?;
//! let file = ctx.open_file("/tmp/x", &atomio::FileOptions::new(4096))?;
//! drop(ctx); // cannot move out of `ctx` because it is borrowed by `file`
//! file.sync()?;
//! # Ok(()) }
//! ```

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::Mutex;

pub mod sys;

#[doc(hidden)]
pub mod __layout;

// --- errors -------------------------------------------------------------------------------

/// A negative libatomio result: `-errno` from the kernel or an `ATOMIO_E_*` code.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: i32,
    context: Option<String>,
    reason: Option<String>,
}

/// `Result<T, atomio::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

fn static_str(p: *const c_char) -> &'static str {
    if p.is_null() {
        return "?";
    }
    // SAFETY: the library returns static NUL-terminated strings for these calls.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

impl Error {
    /// The error for a negative result `code`.
    pub fn from_code(code: i32) -> Error {
        Error {
            code,
            context: None,
            reason: None,
        }
    }

    fn with(code: i32, context: impl Into<String>) -> Error {
        Error {
            code,
            context: Some(context.into()),
            reason: None,
        }
    }

    /// The error of a failed call that sets `atomio_last_reason()` (ctx open, recovery,
    /// store reset): read right away, on the failing thread, where the library keeps it.
    fn with_reason(code: i32, context: impl Into<String>) -> Error {
        let r = last_reason();
        Error {
            code,
            context: Some(context.into()),
            reason: if r.is_empty() { None } else { Some(r) },
        }
    }

    /// The result code (< 0).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// `atomio_err_name()`: "ATOMIO_E_FAILED", "EIO", ...
    pub fn name(&self) -> &'static str {
        // SAFETY: thread-safe, returns a static string for any value.
        static_str(unsafe { sys::atomio_err_name(self.code) })
    }

    /// `atomio_strerror()`: the library's message for the code.
    pub fn message(&self) -> &'static str {
        // SAFETY: as above.
        static_str(unsafe { sys::atomio_strerror(self.code) })
    }

    /// What the binding was doing, if it said.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// The library's own explanation (`atomio_last_reason()`) of a failed [`Ctx::open`],
    /// [`Ctx::recover`] or [`store_reset`]: which check failed, which instance holds the
    /// store, what an operator can do. None for other calls or when it gave none.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// `ATOMIO_E_STORE_LOCKED`: the doublewrite store is in use by another instance (or,
    /// for a private instance, by any other open).
    pub fn is_store_locked(&self) -> bool {
        self.code == sys::ATOMIO_E_STORE_LOCKED
    }

    /// The errno for kernel errors, None for `ATOMIO_E_*` codes.
    pub fn errno(&self) -> Option<i32> {
        if self.code < 0 && self.code > -4096 {
            Some(-self.code)
        } else {
            None
        }
    }

    /// `ATOMIO_E_SHORT_WRITE`: the kernel wrote part of a page; the file is now failed.
    pub fn is_short_write(&self) -> bool {
        self.code == sys::ATOMIO_E_SHORT_WRITE
    }

    /// `ATOMIO_E_FAILED`: the file failed earlier; close it and run recovery.
    pub fn is_failed_file(&self) -> bool {
        self.code == sys::ATOMIO_E_FAILED
    }

    /// `ATOMIO_E_CLOSED`.
    pub fn is_closed(&self) -> bool {
        self.code == sys::ATOMIO_E_CLOSED
    }

    /// The file or this build cannot take the asked path (`ATOMIO_E_PATH_UNSUPPORTED`,
    /// `ATOMIO_E_NO_DOUBLEWRITE`, `ATOMIO_E_FOLIO_ORDER`): a verdict, not a fault.
    pub fn is_path_unavailable(&self) -> bool {
        matches!(
            self.code,
            sys::ATOMIO_E_PATH_UNSUPPORTED
                | sys::ATOMIO_E_NO_DOUBLEWRITE
                | sys::ATOMIO_E_FOLIO_ORDER
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code, self.message())?;
        if let Some(c) = &self.context {
            write!(f, " [{}]", c)?;
        }
        if let Some(r) = &self.reason {
            write!(f, ": {}", r)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        match e.errno() {
            Some(n) => std::io::Error::from_raw_os_error(n),
            None => std::io::Error::new(std::io::ErrorKind::Other, e),
        }
    }
}

fn check(rc: c_int, context: impl FnOnce() -> String) -> Result<i32> {
    if rc < 0 {
        Err(Error::with(rc, context()))
    } else {
        Ok(rc)
    }
}

fn cpath(p: &std::path::Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::with(sys::ATOMIO_E_INVAL, "path contains a NUL byte"))
}

fn reason(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn valid_page_size(ps: u32) -> bool {
    (512..=1 << 20).contains(&ps) && ps.is_power_of_two()
}

// --- enum newtypes ------------------------------------------------------------------------

macro_rules! c_enum {
    ($(#[$m:meta])* $name:ident, $namefn:path,
     { $($(#[$cm:meta])* $c:ident = $v:path),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            $( $(#[$cm])* pub const $c: $name = $name($v); )*
            /// Every value this crate knows, in C order.
            pub const ALL: &'static [$name] = &[$($name::$c),*];
            /// The C enum value.
            pub fn raw(self) -> u32 {
                self.0
            }
            /// The library's name for the value ("?" if it does not know it either).
            pub fn name(self) -> &'static str {
                // SAFETY: thread-safe, static string for any value.
                static_str(unsafe { $namefn(self.0) })
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", self.name(), self.0)
            }
        }
    };
}

c_enum!(
    /// `enum atomio_path`: how a page is made untorn.
    WritePath, sys::atomio_path_name, {
    /// Let the library choose.
    AUTO = sys::ATOMIO_PATH_AUTO,
    /// O_DIRECT + RWF_ATOMIC.
    DIRECT_ATOMIC = sys::ATOMIO_PATH_DIRECT_ATOMIC,
    /// Page cache + RWF_ATOMIC|RWF_DSYNC (probed).
    BUFFERED_ATOMIC = sys::ATOMIO_PATH_BUFFERED_ATOMIC,
    /// Copy to the doublewrite store first, recover after a crash.
    DOUBLEWRITE = sys::ATOMIO_PATH_DOUBLEWRITE,
    /// Plain writes, no protection: for measurement only.
    UNSAFE = sys::ATOMIO_PATH_UNSAFE,
});

c_enum!(
    /// `enum atomio_io_style`.
    IoStyle, sys::atomio_io_style_name, {
    ANY = sys::ATOMIO_IO_ANY,
    BUFFERED = sys::ATOMIO_IO_BUFFERED,
    DIRECT = sys::ATOMIO_IO_DIRECT,
});

c_enum!(
    /// `enum atomio_policy`.
    Policy, sys::atomio_policy_name, {
    DEFAULT = sys::ATOMIO_POLICY_DEFAULT,
    PREFER_FAST = sys::ATOMIO_POLICY_PREFER_FAST,
    PREFER_ATOMIC = sys::ATOMIO_POLICY_PREFER_ATOMIC,
    CALIBRATE = sys::ATOMIO_POLICY_CALIBRATE,
});

c_enum!(
    /// `enum atomio_submitter`.
    Submitter, sys::atomio_submitter_name, {
    AUTO = sys::ATOMIO_SUBMIT_AUTO,
    URING = sys::ATOMIO_SUBMIT_URING,
    SYNC = sys::ATOMIO_SUBMIT_SYNC,
});

// unsafe only to share c_enum!'s call shape with the C name functions.
unsafe fn state_name(v: u32) -> *const c_char {
    let s: &'static [u8] = match v {
        sys::ATOMIO_STATE_OK => b"OK\0",
        sys::ATOMIO_STATE_FAILED => b"FAILED\0",
        sys::ATOMIO_STATE_CLOSED => b"CLOSED\0",
        _ => b"?\0",
    };
    s.as_ptr() as *const c_char
}

unsafe fn direct_atomic_name(v: u32) -> *const c_char {
    let s: &'static [u8] = match v {
        sys::ATOMIO_ATOMIC_NONE => b"NONE\0",
        sys::ATOMIO_ATOMIC_HARDWARE => b"HARDWARE\0",
        sys::ATOMIO_ATOMIC_SOFTWARE => b"SOFTWARE\0",
        _ => b"?\0",
    };
    s.as_ptr() as *const c_char
}

c_enum!(
    /// `enum atomio_file_state`.
    FileState, state_name, {
    OK = sys::ATOMIO_STATE_OK,
    FAILED = sys::ATOMIO_STATE_FAILED,
    CLOSED = sys::ATOMIO_STATE_CLOSED,
});

unsafe fn doublewrite_mode_name(v: u32) -> *const c_char {
    let s: &'static [u8] = match v {
        sys::ATOMIO_DOUBLEWRITE_SYNC_BATCH => b"SYNC_BATCH\0",
        sys::ATOMIO_DOUBLEWRITE_DEFERRED => b"DEFERRED\0",
        sys::ATOMIO_DOUBLEWRITE_WRITE_BEHIND => b"WRITE_BEHIND\0",
        _ => b"?\0",
    };
    s.as_ptr() as *const c_char
}

c_enum!(
    /// `enum atomio_doublewrite_mode`: when the doublewrite store releases a page's copy.
    DoublewriteMode, doublewrite_mode_name, {
    /// Each batch syncs its data files before the call returns, then releases its copies.
    SYNC_BATCH = sys::ATOMIO_DOUBLEWRITE_SYNC_BATCH,
    /// Copies are released once the engine's syncs (from any process) cover their in-place
    /// writes, or when the store runs short and the library syncs the oldest files itself.
    DEFERRED = sys::ATOMIO_DOUBLEWRITE_DEFERRED,
    /// As `DEFERRED`, and a write returns once its page is staged in the instance's shared
    /// memory; a group commit later puts staged pages of every process in place. Until then
    /// only [`File::read`] sees the page (or call [`Ctx::flush`] first). Every process of
    /// the instance must use it.
    WRITE_BEHIND = sys::ATOMIO_DOUBLEWRITE_WRITE_BEHIND,
});

c_enum!(
    /// `atomio_caps.direct_atomic` (`ATOMIO_ATOMIC_*`).
    DirectAtomic, direct_atomic_name, {
    NONE = sys::ATOMIO_ATOMIC_NONE,
    HARDWARE = sys::ATOMIO_ATOMIC_HARDWARE,
    SOFTWARE = sys::ATOMIO_ATOMIC_SOFTWARE,
});

// --- records ------------------------------------------------------------------------------

/// Experimental: the raw statx fields behind the probe's verdicts, the tail of `atomio_caps`
/// declared under `ATOMIO_EXPERIMENTAL`. The kernel's atomic write fields are young and the
/// library may reshape this part in a minor release; the verdicts and reasons of [`Caps`] are
/// the stable answer. `statx_mask` says which fields the kernel filled; all are 0 when the
/// library reported none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxMirror {
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

/// `atomio_caps`: what the probe learned about one file at one page size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    pub valid: u32,
    pub page_size: u32,
    pub sys_page_size: u32,
    pub fs_block_size: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub hw_unit_max: u32,
    pub hw_sysfs_err: i32,
    pub direct_atomic: DirectAtomic,
    pub buffered_atomic: bool,
    pub buffered_probe_err: i32,
    pub page_order: u32,
    pub fs_min_order: u32,
    pub fs_type: u64,
    pub auto_path: WritePath,
    /// The page fits the folio-order rule of buffered atomic writes.
    pub folio_ok: bool,
    pub reason_direct: String,
    pub reason_buffered: String,
    pub reason_doublewrite: String,
    pub reason_auto: String,
    /// Experimental: the raw statx mirror.
    pub statx: StatxMirror,
}

impl Caps {
    fn from_raw(c: &sys::atomio_caps) -> Caps {
        Caps {
            valid: c.valid,
            page_size: c.page_size,
            sys_page_size: c.sys_page_size,
            fs_block_size: c.fs_block_size,
            dev_major: c.dev_major,
            dev_minor: c.dev_minor,
            hw_unit_max: c.hw_unit_max,
            hw_sysfs_err: c.hw_sysfs_err,
            direct_atomic: DirectAtomic(c.direct_atomic),
            buffered_atomic: c.buffered_atomic != 0,
            buffered_probe_err: c.buffered_probe_err,
            page_order: c.page_order,
            fs_min_order: c.fs_min_order,
            fs_type: c.fs_type,
            auto_path: WritePath(c.auto_path),
            folio_ok: c.folio_ok != 0,
            reason_direct: reason(&c.reason_direct),
            reason_buffered: reason(&c.reason_buffered),
            reason_doublewrite: reason(&c.reason_doublewrite),
            reason_auto: reason(&c.reason_auto),
            statx: StatxMirror {
                statx_mask: c.statx_mask,
                dio_mem_align: c.dio_mem_align,
                statx_attributes: c.statx_attributes,
                dio_offset_align: c.dio_offset_align,
                dio_read_offset_align: c.dio_read_offset_align,
                unit_min: c.unit_min,
                unit_max: c.unit_max,
                segments_max: c.segments_max,
                unit_max_opt: c.unit_max_opt,
            },
        }
    }

    /// Whether the probe says the file can take `path`; None when the probe cannot tell
    /// (DOUBLEWRITE depends on the ctx's store, AUTO on the policy).
    pub fn can(&self, path: WritePath) -> Option<bool> {
        match path {
            WritePath::DIRECT_ATOMIC => Some(self.direct_atomic != DirectAtomic::NONE),
            WritePath::BUFFERED_ATOMIC => Some(self.buffered_atomic),
            WritePath::UNSAFE => Some(true),
            _ => None,
        }
    }

    /// The probe's one-line reason about `path`.
    pub fn reason(&self, path: WritePath) -> &str {
        match path {
            WritePath::DIRECT_ATOMIC => &self.reason_direct,
            WritePath::BUFFERED_ATOMIC => &self.reason_buffered,
            WritePath::DOUBLEWRITE => &self.reason_doublewrite,
            _ => &self.reason_auto,
        }
    }
}

/// `atomio_file_info`: the path in force, why, and the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub path: WritePath,
    pub torn_write_safe: bool,
    pub state: FileState,
    pub page_size: u32,
    pub io_style: IoStyle,
    pub policy: Policy,
    pub submitter: Submitter,
    pub uring_fallback: bool,
    pub downgrades: u32,
    pub o_direct: bool,
    pub direct_atomic: DirectAtomic,
    pub file_id: u64,
    pub calib_atomic_ns: u64,
    pub calib_doublewrite_ns: u64,
    pub reason: String,
    pub reject_direct: String,
    pub reject_buffered: String,
    pub reject_doublewrite: String,
}

impl FileInfo {
    fn from_raw(i: &sys::atomio_file_info) -> FileInfo {
        FileInfo {
            path: WritePath(i.path),
            torn_write_safe: i.torn_write_safe != 0,
            state: FileState(i.state),
            page_size: i.page_size,
            io_style: IoStyle(i.io_style),
            policy: Policy(i.policy),
            submitter: Submitter(i.submitter),
            uring_fallback: i.uring_fallback != 0,
            downgrades: i.downgrades,
            o_direct: i.o_direct != 0,
            direct_atomic: DirectAtomic(i.direct_atomic),
            file_id: i.file_id,
            calib_atomic_ns: i.calib_atomic_ns,
            calib_doublewrite_ns: i.calib_doublewrite_ns,
            reason: reason(&i.reason),
            reject_direct: reason(&i.reject_direct),
            reject_buffered: reason(&i.reject_buffered),
            reject_doublewrite: reason(&i.reject_doublewrite),
        }
    }
}

/// `atomio_stats`, per file or per ctx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Pages written, indexed by the [`WritePath`] value. `ATOMIO_STATS_PATHS` slots, more
    /// than there are paths: a slot past [`WritePath::ALL`] counts a path newer than this
    /// crate.
    pub pages: [u64; sys::ATOMIO_STATS_PATHS],
    pub bytes_data: u64,
    pub bytes_doublewrite: u64,
    pub syncs: u64,
    pub batches: u64,
    pub downgrades: u64,
    pub short_writes: u64,
    pub failed_syncs: u64,
    pub recovered_pages: u64,
    pub uring_fallbacks: u64,
    /// `lat_hist[i]`: writes that took [2^i, 2^(i+1)) microseconds.
    pub lat_hist: [u64; sys::ATOMIO_LAT_BUCKETS],
    /// Pages copied to an aligned buffer before an O_DIRECT write.
    pub bounce_copies: u64,
    /// Data-file syncs the library made itself because the store ran short (backpressure).
    pub forced_syncs: u64,
    /// Store durability barriers (fdatasync of the store).
    pub group_commits: u64,
    /// Store records those barriers made durable (mean group: records / commits).
    pub group_records: u64,
    /// Store capacity (a ctx's stats only: 0 for a file and without a store).
    pub store_bytes: u64,
    /// Store bytes holding copies not yet released (ctx only).
    pub store_bytes_used: u64,
    /// Processes attached to the store (ctx only).
    pub attached: u64,
    /// Write-behind: writes that returned once their page was staged.
    pub pages_staged: u64,
    /// Write-behind: reads served from a staged page.
    pub staged_reads: u64,
    /// Write-behind: pages of the instance staged, not yet in place (ctx only).
    pub staged_now: u64,
}

impl Stats {
    fn from_raw(s: &sys::atomio_stats) -> Stats {
        Stats {
            pages: s.pages,
            bytes_data: s.bytes_data,
            bytes_doublewrite: s.bytes_doublewrite,
            syncs: s.syncs,
            batches: s.batches,
            downgrades: s.downgrades,
            short_writes: s.short_writes,
            failed_syncs: s.failed_syncs,
            recovered_pages: s.recovered_pages,
            uring_fallbacks: s.uring_fallbacks,
            lat_hist: s.lat_hist,
            bounce_copies: s.bounce_copies,
            forced_syncs: s.forced_syncs,
            group_commits: s.group_commits,
            group_records: s.group_records,
            store_bytes: s.store_bytes,
            store_bytes_used: s.store_bytes_used,
            attached: s.attached,
            pages_staged: s.pages_staged,
            staged_reads: s.staged_reads,
            staged_now: s.staged_now,
        }
    }

    /// Pages written through `path` (0 for a path this build does not count).
    pub fn pages_on(&self, path: WritePath) -> u64 {
        self.pages.get(path.0 as usize).copied().unwrap_or(0)
    }

    /// Pages written through any path.
    pub fn pages_total(&self) -> u64 {
        self.pages.iter().sum()
    }
}

/// `atomio_recovery_report`. `batches_discarded` counts the live records [`store_reset`]
/// dropped; `pages_discarded` the copies dropped by [`Ctx::discard_file`] or a reset;
/// `pages_fenced` the copies never applied because they are older than their file's fence
/// ([`File::fence`], or writes that bypassed the store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
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

impl RecoveryReport {
    fn from_raw(r: &sys::atomio_recovery_report) -> RecoveryReport {
        RecoveryReport {
            ring_bytes_scanned: r.ring_bytes_scanned,
            batches_scanned: r.batches_scanned,
            batches_valid: r.batches_valid,
            batches_torn: r.batches_torn,
            pages_checked: r.pages_checked,
            pages_restored: r.pages_restored,
            pages_verified_intact: r.pages_verified_intact,
            pages_unrecoverable: r.pages_unrecoverable,
            files_missing: r.files_missing,
            unknown_file_ids: r.unknown_file_ids,
            pages_unapplied: r.pages_unapplied,
            pages_discarded: r.pages_discarded,
            batches_discarded: r.batches_discarded,
            headers_repaired: r.headers_repaired,
            pages_fenced: r.pages_fenced,
        }
    }
}

// --- free functions -----------------------------------------------------------------------

/// `atomio_version_string()` of the linked library.
pub fn version() -> &'static str {
    // SAFETY: static string.
    static_str(unsafe { sys::atomio_version_string() })
}

/// `atomio_version_number()` of the linked library.
pub fn version_number() -> u32 {
    // SAFETY: no arguments.
    unsafe { sys::atomio_version_number() }
}

/// `atomio_probe()`: capabilities of a file (or a directory's filesystem) at `page_size`.
/// Never writes the file itself.
pub fn probe<P: AsRef<std::path::Path>>(path: P, page_size: u32) -> Result<Caps> {
    let path = path.as_ref();
    let c = cpath(path)?;
    let mut caps = sys::atomio_caps::new_sized();
    // SAFETY: valid C string and a sized output struct.
    let rc = unsafe { sys::atomio_probe(c.as_ptr(), page_size, &mut caps) };
    check(rc, || {
        format!("probe {} at page size {}", path.display(), page_size)
    })?;
    Ok(Caps::from_raw(&caps))
}

/// `atomio_last_reason()`: the library's explanation of the last failure of a ctx open, a
/// recovery or a store reset on the calling thread ("" if none). The [`Error`]s of those
/// calls carry it already ([`Error::reason`]).
pub fn last_reason() -> String {
    // SAFETY: a thread-local NUL-terminated string, copied before any other library call.
    let p = unsafe { sys::atomio_last_reason() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: as above.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `atomio_store_reset()`: the operator's explicit discard of every copy a doublewrite store
/// holds; the next [`Ctx::open`] lays it out afresh. Refused (`ATOMIO_E_STORE_LOCKED`, see
/// [`Error::is_store_locked`]) while any process has the store open. Returns what was
/// discarded (`batches_discarded`, `pages_discarded`).
pub fn store_reset<P: AsRef<std::path::Path>>(doublewrite_dir: P) -> Result<RecoveryReport> {
    let dir = doublewrite_dir.as_ref();
    let c = cpath(dir)?;
    let mut r = sys::atomio_recovery_report::new_sized();
    // SAFETY: a C string and a sized output struct.
    let rc = unsafe { sys::atomio_store_reset(c.as_ptr(), &mut r) };
    if rc < 0 {
        return Err(Error::with_reason(
            rc,
            format!("store reset {}", dir.display()),
        ));
    }
    Ok(RecoveryReport::from_raw(&r))
}

// --- ctx ----------------------------------------------------------------------------------

type VerifyFn = dyn Fn(u64, u64, &[u8]) -> bool + Send + Sync;
type UnappliedFn = dyn Fn(u64, Option<&std::path::Path>, u64, Error) + Send + Sync;

/// Options of [`Ctx::open`] (`atomio_ctx_opts`), builder style.
#[derive(Clone, Default)]
pub struct CtxOptions {
    doublewrite_dir: Option<std::path::PathBuf>,
    no_recover: bool,
    lock_pages: bool,
    policy: Policy,
    submitter: Submitter,
    queue_depth: u32,
    doublewrite_mode: DoublewriteMode,
    doublewrite_batch_pages: u32,
    doublewrite_max_page_size: u32,
    doublewrite_store_bytes: u64,
    write_behind_bytes: u64,
    numa_node: Option<i32>,
    verify: Option<std::sync::Arc<VerifyFn>>,
    unapplied: Option<std::sync::Arc<UnappliedFn>>,
    data_root: Option<std::path::PathBuf>,
    instance: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

impl Default for Submitter {
    fn default() -> Self {
        Submitter::AUTO
    }
}

impl Default for DoublewriteMode {
    fn default() -> Self {
        DoublewriteMode::SYNC_BATCH
    }
}

impl fmt::Debug for CtxOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtxOptions")
            .field("doublewrite_dir", &self.doublewrite_dir)
            .field("no_recover", &self.no_recover)
            .field("policy", &self.policy)
            .field("submitter", &self.submitter)
            .field("doublewrite_mode", &self.doublewrite_mode)
            .field("doublewrite_store_bytes", &self.doublewrite_store_bytes)
            .field("write_behind_bytes", &self.write_behind_bytes)
            .field("verify", &self.verify.is_some())
            .field("unapplied", &self.unapplied.is_some())
            .field("data_root", &self.data_root)
            .field("instance", &self.instance)
            .finish()
    }
}

impl CtxOptions {
    /// Defaults; without [`doublewrite_dir`](Self::doublewrite_dir) the ctx has no doublewrite store.
    pub fn new() -> Self {
        Self::default()
    }
    /// The doublewrite store directory. It must exist (a missing one is `-ENOENT`: it may
    /// have held the only good copies); the store files in it are created.
    pub fn doublewrite_dir<P: AsRef<std::path::Path>>(mut self, dir: P) -> Self {
        self.doublewrite_dir = Some(dir.as_ref().to_path_buf());
        self
    }
    /// Skip recovery at open (`ATOMIO_CTX_NO_RECOVER`): call [`Ctx::recover`] yourself.
    pub fn no_recover(mut self, yes: bool) -> Self {
        self.no_recover = yes;
        self
    }
    /// mlock() page buffers (`ATOMIO_CTX_LOCK_PAGES`).
    pub fn lock_pages(mut self, yes: bool) -> Self {
        self.lock_pages = yes;
        self
    }
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = p;
        self
    }
    pub fn submitter(mut self, s: Submitter) -> Self {
        self.submitter = s;
        self
    }
    pub fn queue_depth(mut self, n: u32) -> Self {
        self.queue_depth = n;
        self
    }
    /// When the store releases copies ([`DoublewriteMode::SYNC_BATCH`] by default).
    pub fn doublewrite_mode(mut self, m: DoublewriteMode) -> Self {
        self.doublewrite_mode = m;
        self
    }
    /// Most pages in one store record (larger batches are split); 0: 64.
    pub fn doublewrite_batch_pages(mut self, n: u32) -> Self {
        self.doublewrite_batch_pages = n;
        self
    }
    /// Largest page the store takes; 0: 16384.
    pub fn doublewrite_max_page_size(mut self, n: u32) -> Self {
        self.doublewrite_max_page_size = n;
        self
    }
    /// Store capacity in bytes; 0: the library's default (128 MiB). A store that holds live
    /// copies keeps its size until they are recovered.
    pub fn doublewrite_store_bytes(mut self, n: u64) -> Self {
        self.doublewrite_store_bytes = n;
        self
    }
    /// [`DoublewriteMode::WRITE_BEHIND`]'s shared staging for pages not yet written, in
    /// bytes; 0: store capacity / 16, within 1..16 MiB. A size the library refuses is
    /// `ATOMIO_E_INVAL`. The instance's first process sets it; the others use its size.
    pub fn write_behind_bytes(mut self, n: u64) -> Self {
        self.write_behind_bytes = n;
        self
    }
    /// The engine instance's name: every process (and ctx) that opens the store with the
    /// same name shares it. Without one (a private instance), or with another name, the open
    /// is refused with `ATOMIO_E_STORE_LOCKED` while the store is in use.
    pub fn instance(mut self, name: &str) -> Self {
        self.instance = Some(name.to_string());
        self
    }
    /// NUMA node of page buffers (default: the calling thread's).
    pub fn numa_node(mut self, node: i32) -> Self {
        self.numa_node = Some(node);
        self
    }
    /// `data_root`: data files under this directory are recorded in the store relative to
    /// it, so the directory can move (a restore, a container) and recovery still finds them.
    /// Without it the store records absolute paths.
    pub fn data_root<P: AsRef<std::path::Path>>(mut self, dir: P) -> Self {
        self.data_root = Some(dir.as_ref().to_path_buf());
        self
    }
    /// Recovery's intact-page check: `verify(file_id, page_no, page) -> intact`.
    pub fn verify<F>(mut self, f: F) -> Self
    where
        F: Fn(u64, u64, &[u8]) -> bool + Send + Sync + 'static,
    {
        self.verify = Some(std::sync::Arc::new(f));
        self
    }
    /// Told of every file whose copies recovery keeps because it cannot apply them:
    /// `unapplied(file_id, path, pages, err)`, with the recorded path resolved against the
    /// data root (None when the store does not know the id) and `err` `-ENOENT`,
    /// `ATOMIO_E_UNAPPLIED` or another code. It runs on the thread that opens the ctx or
    /// calls [`Ctx::recover`]; a panic in it is caught at the C boundary and resumed when
    /// that call returns.
    pub fn unapplied<F>(mut self, f: F) -> Self
    where
        F: Fn(u64, Option<&std::path::Path>, u64, Error) + Send + Sync + 'static,
    {
        self.unapplied = Some(std::sync::Arc::new(f));
        self
    }
}

unsafe extern "C" fn verify_trampoline(
    arg: *mut c_void,
    file_id: u64,
    page_no: u64,
    page: *const c_void,
    page_size: u32,
) -> c_int {
    // SAFETY: arg is the Box<Arc<VerifyFn>> the Ctx keeps alive; page is page_size bytes.
    let f = &*(arg as *const std::sync::Arc<VerifyFn>);
    let bytes = std::slice::from_raw_parts(page as *const u8, page_size as usize);
    // A panic must not unwind into C; report it as "damaged" (the library's < 0 case).
    match catch_unwind(AssertUnwindSafe(|| f(file_id, page_no, bytes))) {
        Ok(true) => 1,
        Ok(false) => 0,
        Err(_) => -1,
    }
}

/// The unapplied closure and the panic it may have raised, behind `unapplied_arg`.
struct UnappliedHook {
    f: std::sync::Arc<UnappliedFn>,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl UnappliedHook {
    /// Resume a panic the closure raised during the last library call.
    fn resume_panic(&self) {
        let p = self.panic.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(p) = p {
            std::panic::resume_unwind(p);
        }
    }
}

unsafe extern "C" fn unapplied_trampoline(
    arg: *mut c_void,
    file_id: u64,
    path: *const c_char,
    pages: u64,
    err: c_int,
) {
    // SAFETY: arg is the Box<UnappliedHook> the Ctx (or RawCtxOpts during open) keeps
    // alive; path is NULL or a NUL-terminated string valid for the call.
    let hook = &*(arg as *const UnappliedHook);
    let p = if path.is_null() {
        None
    } else {
        Some(std::path::Path::new(std::ffi::OsStr::from_bytes(
            CStr::from_ptr(path).to_bytes(),
        )))
    };
    // A panic must not unwind into C: keep it for the caller to resume.
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| {
        (hook.f)(file_id, p, pages, Error::from_code(err))
    })) {
        let mut slot = hook.panic.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }
}

/// `atomio_ctx_opts` built from [`CtxOptions`], with what its pointers point into.
struct RawCtxOpts {
    raw: sys::atomio_ctx_opts,
    // doublewrite_dir, data_root and instance point into these (a CString's bytes do not
    // move with it).
    strings: Vec<CString>,
    // verify_arg is this box's address.
    verify: Option<Box<std::sync::Arc<VerifyFn>>>,
    // unapplied_arg is this box's address.
    unapplied: Option<Box<UnappliedHook>>,
}

impl RawCtxOpts {
    fn new(opts: &CtxOptions) -> Result<RawCtxOpts> {
        let mut o = sys::atomio_ctx_opts::new_sized();
        // SAFETY: fills defaults into a struct of the right size.
        unsafe { sys::atomio_ctx_opts_init(&mut o) };
        let mut strings = Vec::new();
        match &opts.doublewrite_dir {
            Some(d) => {
                let c = cpath(d)?;
                o.doublewrite_dir = c.as_ptr();
                strings.push(c);
            }
            None => o.flags |= sys::ATOMIO_CTX_NO_DOUBLEWRITE,
        }
        if let Some(d) = &opts.data_root {
            let c = cpath(d)?;
            o.data_root = c.as_ptr();
            strings.push(c);
        }
        if let Some(name) = &opts.instance {
            let c = CString::new(name.as_bytes()).map_err(|_| {
                Error::with(sys::ATOMIO_E_INVAL, "instance name contains a NUL byte")
            })?;
            o.instance = c.as_ptr();
            strings.push(c);
        }
        if opts.no_recover {
            o.flags |= sys::ATOMIO_CTX_NO_RECOVER;
        }
        if opts.lock_pages {
            o.flags |= sys::ATOMIO_CTX_LOCK_PAGES;
        }
        o.policy = opts.policy.0;
        o.submitter = opts.submitter.0;
        o.queue_depth = opts.queue_depth;
        o.doublewrite_mode = opts.doublewrite_mode.0;
        o.doublewrite_batch_pages = opts.doublewrite_batch_pages;
        o.doublewrite_max_page_size = opts.doublewrite_max_page_size;
        o.doublewrite_store_bytes = opts.doublewrite_store_bytes;
        o.write_behind_bytes = opts.write_behind_bytes;
        if let Some(n) = opts.numa_node {
            o.numa_node = n;
        }
        let verify = opts.verify.clone().map(Box::new);
        if let Some(v) = &verify {
            o.verify = Some(verify_trampoline);
            o.verify_arg = &**v as *const std::sync::Arc<VerifyFn> as *mut c_void;
        }
        let unapplied = opts.unapplied.clone().map(|f| {
            Box::new(UnappliedHook {
                f,
                panic: Mutex::new(None),
            })
        });
        if let Some(h) = &unapplied {
            o.unapplied = Some(unapplied_trampoline);
            o.unapplied_arg = &**h as *const UnappliedHook as *mut c_void;
        }
        Ok(RawCtxOpts {
            raw: o,
            strings,
            verify,
            unapplied,
        })
    }
}

/// `atomio_ctx`: the engine-wide context. Thread-safe; closed on drop.
pub struct Ctx {
    raw: *mut sys::atomio_ctx,
    // Kept alive for the verify callback (its address is the callback's argument).
    _verify: Option<Box<std::sync::Arc<VerifyFn>>>,
    // Kept alive for the unapplied callback likewise (recover() calls it again).
    unapplied: Option<Box<UnappliedHook>>,
    // The option strings, kept for the ctx's life like the Python binding does.
    _strings: Vec<CString>,
}

// SAFETY: libatomio's ctx is thread-safe (atomio.h); the verify closure is Send + Sync.
unsafe impl Send for Ctx {}
unsafe impl Sync for Ctx {}

impl Ctx {
    /// `atomio_ctx_open()`. Runs recovery unless [`CtxOptions::no_recover`].
    pub fn open(opts: &CtxOptions) -> Result<Ctx> {
        let o = RawCtxOpts::new(opts)?;
        let mut raw = ptr::null_mut();
        // SAFETY: o.raw is initialised and what it points to lives in o; raw receives the
        // handle.
        let rc = unsafe { sys::atomio_ctx_open(&o.raw, &mut raw) };
        if rc < 0 {
            let e = Error::with_reason(
                rc,
                match (&opts.doublewrite_dir, &opts.instance) {
                    (None, _) => "ctx open, no store".to_string(),
                    (Some(d), None) => format!("ctx open, store {}, private instance", d.display()),
                    (Some(d), Some(i)) => {
                        format!("ctx open, store {}, instance {:?}", d.display(), i)
                    }
                },
            );
            // A panic of the unapplied closure wins over the error it came with.
            if let Some(h) = &o.unapplied {
                h.resume_panic();
            }
            return Err(e);
        }
        let ctx = Ctx {
            raw,
            _verify: o.verify,
            unapplied: o.unapplied,
            _strings: o.strings,
        };
        // Resumed with the ctx dropped (closed) on the way out.
        if let Some(h) = &ctx.unapplied {
            h.resume_panic();
        }
        Ok(ctx)
    }

    /// The raw handle, for calls this crate does not wrap. Valid while `self` lives.
    pub fn as_raw(&self) -> *mut sys::atomio_ctx {
        self.raw
    }

    /// `atomio_file_open()`: open a data file; its path is chosen (or forced) here.
    pub fn open_file<P: AsRef<std::path::Path>>(
        &self,
        path: P,
        opts: &FileOptions,
    ) -> Result<File<'_>> {
        File::open(self, path.as_ref(), opts)
    }

    /// `atomio_page_alloc()`: `npages` pages, aligned, pre-faulted, NUMA-local.
    pub fn page_alloc(&self, page_size: u32, npages: usize) -> Result<PageBuf<'_>> {
        Ok(PageBuf {
            raw: RawBuf::alloc(self, page_size, npages)?,
            _ctx: self,
        })
    }

    /// `atomio_write_batch()`: every entry in flight together.
    ///
    /// Ok when every entry was written; otherwise Err with the first failing entry's code,
    /// and each entry's own result in [`BatchWrite::result`].
    pub fn write_batch(&self, entries: &mut [BatchWrite<'_>], flags: WriteFlags) -> Result<()> {
        let n = entries.len();
        if n == 0 {
            return Ok(());
        }
        let mut raw: Vec<sys::atomio_page_write> = Vec::with_capacity(n);
        let mut copies: Vec<usize> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if !ptr::eq(e.file.ctx, self) {
                return Err(Error::with(
                    sys::ATOMIO_E_INVAL,
                    format!("entry {} from another ctx", i),
                ));
            }
            e.file.check_len(e.page.len())?;
            if !e.file.aligned(e.page.as_ptr()) {
                copies.push(i);
            }
            raw.push(sys::atomio_page_write {
                file: e.file.raw,
                page_no: e.page_no,
                page: e.page.as_ptr() as *const c_void,
                result: 0,
                reserved0: 0,
            });
        }
        // One aligned block for the entries that cannot be passed in place, slots as large
        // as the largest page so files of different page sizes share it.
        let bounce = if copies.is_empty() {
            None
        } else {
            let slot = copies
                .iter()
                .map(|&i| entries[i].file.page_size)
                .max()
                .unwrap();
            let mut b = RawBuf::alloc(self, slot, copies.len())?;
            for (k, &i) in copies.iter().enumerate() {
                let start = k * slot as usize;
                let src = entries[i].page;
                b.as_mut_slice()[start..start + src.len()].copy_from_slice(src);
                raw[i].page = b.as_slice()[start..].as_ptr() as *const c_void;
            }
            Some(b)
        };
        // SAFETY: every entry points at a live file of this ctx and a page_size buffer.
        let rc = unsafe { sys::atomio_write_batch(self.raw, raw.as_mut_ptr(), n, flags.0) };
        drop(bounce);
        check(rc, || "write_batch".to_string())?;
        for (e, r) in entries.iter_mut().zip(&raw) {
            e.result = r.result;
        }
        if (rc as usize) < n {
            let first = raw
                .iter()
                .find(|r| r.result < 0)
                .map_or(sys::ATOMIO_E_INVAL, |r| r.result);
            return Err(Error::with(
                first,
                format!("{} of {} batch entries failed", n - rc as usize, n),
            ));
        }
        Ok(())
    }

    /// `atomio_ctx_sync()`: sync every open file of the ctx.
    pub fn sync(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::atomio_ctx_sync(self.raw) }, || {
            "ctx sync".to_string()
        })
        .map(|_| ())
    }

    /// `atomio_ctx_flush()`: in [`DoublewriteMode::WRITE_BEHIND`], write every page any
    /// process of the instance had staged when the call began to the store, durably, and then
    /// in place; returns once they are in their files (in the page cache for buffered files: a
    /// sync still makes them durable), so plain reads of the files see them. A no-op in the
    /// other modes and without a store. [`sync`](Self::sync), [`File::sync`] and
    /// [`File::fence`] flush first.
    pub fn flush(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::atomio_ctx_flush(self.raw) }, || {
            "ctx flush".to_string()
        })
        .map(|_| ())
    }

    /// `atomio_ctx_get_stats()`: counters over every file of the ctx, closed ones included.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = sys::atomio_stats::new_sized();
        // SAFETY: live handle, sized output.
        check(
            unsafe { sys::atomio_ctx_get_stats(self.raw, &mut s) },
            || "ctx stats".to_string(),
        )?;
        Ok(Stats::from_raw(&s))
    }

    /// `atomio_ctx_recover()`; see [`recover_with_report`](Self::recover_with_report) for the
    /// counts of a failed recovery. `ATOMIO_E_UNAPPLIED` means copies were kept for files it
    /// could not find (see [`CtxOptions::unapplied`], [`remap_file`](Self::remap_file) and
    /// [`discard_file`](Self::discard_file)); the error's [`reason`](Error::reason) says more.
    pub fn recover(&self) -> Result<RecoveryReport> {
        let (rc, rep) = self.recover_with_report();
        rc.map(|_| rep)
    }

    /// `atomio_ctx_recover()`, returning the counts whatever the result.
    pub fn recover_with_report(&self) -> (Result<()>, RecoveryReport) {
        let mut r = sys::atomio_recovery_report::new_sized();
        // SAFETY: live handle, sized output.
        let rc = unsafe { sys::atomio_ctx_recover(self.raw, &mut r) };
        let res = if rc < 0 {
            Err(Error::with_reason(rc, "recover"))
        } else {
            Ok(())
        };
        if let Some(h) = &self.unapplied {
            h.resume_panic();
        }
        (res, RecoveryReport::from_raw(&r))
    }

    /// `atomio_ctx_remap_file()`: the copies of `file_id` belong to the data file at `path`
    /// (an operator's way out when recovery reports a file missing or unknown, e.g. after a
    /// restore elsewhere). Durable when it returns. Use it on a ctx opened with
    /// [`CtxOptions::no_recover`], then call [`recover`](Self::recover).
    pub fn remap_file<P: AsRef<std::path::Path>>(&self, file_id: u64, path: P) -> Result<()> {
        let path = path.as_ref();
        let c = cpath(path)?;
        // SAFETY: live handle, C string.
        let rc = unsafe { sys::atomio_ctx_remap_file(self.raw, file_id, c.as_ptr()) };
        check(rc, || {
            format!("remap file id {} to {}", file_id, path.display())
        })
        .map(|_| ())
    }

    /// `atomio_ctx_discard_file()`: the next [`recover`](Self::recover) on this ctx drops the
    /// copies of `file_id` instead of keeping them (counted in `pages_discarded`).
    pub fn discard_file(&self, file_id: u64) -> Result<()> {
        // SAFETY: live handle.
        let rc = unsafe { sys::atomio_ctx_discard_file(self.raw, file_id) };
        check(rc, || format!("discard file id {}", file_id)).map(|_| ())
    }

    /// `atomio_ctx_fence_dir()`: [`File::fence`] for every file the store has recorded under
    /// the directory `dir` (it must exist; any spelling of it names the same files), whichever
    /// process wrote them, in one durable manifest append; their copies waiting for a sync
    /// stop waiting. [`sync`](Self::sync) first only what must survive a crash that undoes the
    /// removal. Returns the number of files under it (0 without a store).
    pub fn fence_dir<P: AsRef<std::path::Path>>(&self, dir: P) -> Result<u32> {
        let dir = dir.as_ref();
        let c = cpath(dir)?;
        // SAFETY: live handle, C string.
        let rc = unsafe { sys::atomio_ctx_fence_dir(self.raw, c.as_ptr()) };
        check(rc, || format!("fence directory {}", dir.display())).map(|n| n as u32)
    }

    /// `atomio_ctx_close()` with its result (drop closes too, ignoring it).
    pub fn close(mut self) -> Result<()> {
        let raw = std::mem::replace(&mut self.raw, ptr::null_mut());
        // SAFETY: no File borrows self (close takes it by value), so none is open.
        check(unsafe { sys::atomio_ctx_close(raw) }, || {
            "ctx close".to_string()
        })
        .map(|_| ())
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: Files and PageBufs borrow the ctx, so none outlives it.
            unsafe { sys::atomio_ctx_close(self.raw) };
        }
    }
}

// --- page buffers -------------------------------------------------------------------------

/// A buffer from atomio_page_alloc() without a lifetime, for internal bounce buffers.
struct RawBuf {
    ctx: *mut sys::atomio_ctx,
    ptr: NonNull<u8>,
    page_size: u32,
    npages: usize,
}

// SAFETY: plain memory; atomio_page_free is thread-safe.
unsafe impl Send for RawBuf {}
unsafe impl Sync for RawBuf {}

impl RawBuf {
    fn alloc(ctx: &Ctx, page_size: u32, npages: usize) -> Result<RawBuf> {
        if !valid_page_size(page_size) {
            return Err(Error::with(
                sys::ATOMIO_E_PAGE_SIZE,
                format!("page size {}", page_size),
            ));
        }
        if npages == 0 {
            return Err(Error::with(sys::ATOMIO_E_INVAL, "zero pages"));
        }
        // SAFETY: live ctx.
        let p = unsafe { sys::atomio_page_alloc(ctx.raw, page_size, npages) };
        let ptr = NonNull::new(p as *mut u8).ok_or_else(|| {
            Error::with(-12, format!("atomio_page_alloc({}, {})", page_size, npages))
        })?;
        // The library pre-faults but does not promise contents; Rust hands the memory out as
        // &[u8], which must never expose uninitialised bytes.
        // SAFETY: page_size * npages writable bytes just allocated.
        unsafe { ptr::write_bytes(ptr.as_ptr(), 0, page_size as usize * npages) };
        Ok(RawBuf {
            ctx: ctx.raw,
            ptr,
            page_size,
            npages,
        })
    }

    fn len(&self) -> usize {
        self.page_size as usize * self.npages
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: len() bytes owned by this buffer.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        // SAFETY: allocated by atomio_page_alloc with these figures; the ctx is alive (a
        // PageBuf borrows it, a File's bounce buffer is dropped before the File's borrow ends).
        unsafe {
            sys::atomio_page_free(
                self.ctx,
                self.ptr.as_ptr() as *mut c_void,
                self.page_size,
                self.npages,
            )
        };
    }
}

/// Owned, aligned page memory from `atomio_page_alloc()`: `npages` × `page_size` bytes,
/// aligned to the page size (at least 4096), zero-initialised, freed on drop. Derefs to
/// `[u8]`; writes from it need no bounce copy.
pub struct PageBuf<'c> {
    raw: RawBuf,
    _ctx: &'c Ctx,
}

impl<'c> PageBuf<'c> {
    pub fn page_size(&self) -> u32 {
        self.raw.page_size
    }
    pub fn npages(&self) -> usize {
        self.raw.npages
    }
    /// Page `i` of the buffer.
    pub fn page(&self, i: usize) -> &[u8] {
        let ps = self.raw.page_size as usize;
        &self[i * ps..(i + 1) * ps]
    }
    /// Page `i` of the buffer, writable.
    pub fn page_mut(&mut self, i: usize) -> &mut [u8] {
        let ps = self.raw.page_size as usize;
        &mut self[i * ps..(i + 1) * ps]
    }
}

impl std::ops::Deref for PageBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.raw.as_slice()
    }
}

impl std::ops::DerefMut for PageBuf<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.raw.as_mut_slice()
    }
}

impl fmt::Debug for PageBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PageBuf({} x {} at {:p})",
            self.raw.npages, self.raw.page_size, self.raw.ptr
        )
    }
}

// --- files --------------------------------------------------------------------------------

/// Flags of a write (`ATOMIO_WRITE_*`), combined with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteFlags(pub u32);

impl WriteFlags {
    pub const NONE: WriteFlags = WriteFlags(0);
    /// Durable when the call returns.
    pub const DSYNC: WriteFlags = WriteFlags(sys::ATOMIO_WRITE_DSYNC);
    /// `ATOMIO_WRITE_STABLE_PAGES`: no page changes until the call returns. A DOUBLEWRITE
    /// batch then writes pages of whole 4 KiB blocks at suitably aligned addresses to the
    /// store and in place from where they are, without copying them first; other paths
    /// ignore it. A `&[u8]` cannot change while it is borrowed, unless it is memory some other
    /// party writes behind Rust's back (a shared mapping, a buffer another process fills): do
    /// not set it for such pages. Pages this crate copies into an aligned buffer itself are
    /// stable anyway.
    pub const STABLE_PAGES: WriteFlags = WriteFlags(sys::ATOMIO_WRITE_STABLE_PAGES);

    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: WriteFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for WriteFlags {
    type Output = WriteFlags;
    fn bitor(self, rhs: WriteFlags) -> WriteFlags {
        WriteFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for WriteFlags {
    fn bitor_assign(&mut self, rhs: WriteFlags) {
        self.0 |= rhs.0;
    }
}

/// Options of [`Ctx::open_file`] (`atomio_file_opts`), builder style. The file is created if
/// missing unless `.create(false)`.
#[derive(Clone, Debug)]
pub struct FileOptions {
    page_size: u32,
    flags: u32,
    io_style: IoStyle,
    path: WritePath,
    policy: Policy,
    file_id: u64,
    mode: u32,
}

impl FileOptions {
    pub fn new(page_size: u32) -> Self {
        FileOptions {
            page_size,
            flags: sys::ATOMIO_FILE_CREATE,
            io_style: IoStyle::ANY,
            path: WritePath::AUTO,
            policy: Policy::DEFAULT,
            file_id: 0,
            mode: 0,
        }
    }
    fn flag(mut self, f: u32, yes: bool) -> Self {
        if yes {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
        self
    }
    /// Force a path (AUTO: the library chooses).
    pub fn path(mut self, p: WritePath) -> Self {
        self.path = p;
        self
    }
    pub fn io_style(mut self, s: IoStyle) -> Self {
        self.io_style = s;
        self
    }
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = p;
        self
    }
    pub fn create(self, yes: bool) -> Self {
        self.flag(sys::ATOMIO_FILE_CREATE, yes)
    }
    /// Reads only; also turns off `create` (the library refuses the pair), so call
    /// `.create(true)` after it only to get that refusal.
    pub fn read_only(self, yes: bool) -> Self {
        let o = self.flag(sys::ATOMIO_FILE_RDONLY, yes);
        if yes {
            o.flag(sys::ATOMIO_FILE_CREATE, false)
        } else {
            o
        }
    }
    /// Every write durable when it returns.
    pub fn dsync(self, yes: bool) -> Self {
        self.flag(sys::ATOMIO_FILE_DSYNC, yes)
    }
    /// Never bounce-copy inside the library: pages must come from [`Ctx::page_alloc`].
    pub fn no_copy(self, yes: bool) -> Self {
        self.flag(sys::ATOMIO_FILE_NO_COPY, yes)
    }
    /// The engine's stable id for the file in the doublewrite store (0: derived).
    pub fn file_id(mut self, id: u64) -> Self {
        self.file_id = id;
        self
    }
    /// Creation mode (0: 0600).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// `atomio_file`: one data file with one page size. Borrows its [`Ctx`]; closed on drop.
pub struct File<'c> {
    raw: *mut sys::atomio_file,
    ctx: &'c Ctx,
    page_size: u32,
    align: usize,
    // Aligned copy target for pages handed over from unaligned memory.
    bounce: Mutex<Option<RawBuf>>,
}

// SAFETY: libatomio file handles are thread-safe (atomio.h); the bounce buffer is locked.
unsafe impl Send for File<'_> {}
unsafe impl Sync for File<'_> {}

impl<'c> File<'c> {
    fn open(ctx: &'c Ctx, path: &std::path::Path, o: &FileOptions) -> Result<File<'c>> {
        let c = cpath(path)?;
        let mut fo = sys::atomio_file_opts::new_sized();
        // SAFETY: defaults into a struct of the right size.
        unsafe { sys::atomio_file_opts_init(&mut fo) };
        fo.flags = o.flags;
        fo.page_size = o.page_size;
        fo.io_style = o.io_style.0;
        fo.path = o.path.0;
        fo.policy = o.policy.0;
        fo.file_id = o.file_id;
        fo.mode = o.mode;
        let mut raw = ptr::null_mut();
        // SAFETY: live ctx, C string, initialised options.
        let rc = unsafe { sys::atomio_file_open(ctx.raw, c.as_ptr(), &fo, &mut raw) };
        check(rc, || {
            format!(
                "open {} page size {} path {}",
                path.display(),
                o.page_size,
                o.path
            )
        })?;
        // In-place writes need the DIO memory alignment; atomio_page_alloc guarantees 4096.
        let mut caps = sys::atomio_caps::new_sized();
        // SAFETY: live handle, sized output.
        let align = if unsafe { sys::atomio_file_get_caps(raw, &mut caps) } == 0 {
            (caps.dio_mem_align as usize).max(4096)
        } else {
            4096
        };
        Ok(File {
            raw,
            ctx,
            page_size: o.page_size,
            align,
            bounce: Mutex::new(None),
        })
    }

    /// The raw handle, for calls this crate does not wrap. Valid while `self` lives.
    pub fn as_raw(&self) -> *mut sys::atomio_file {
        self.raw
    }

    /// The ctx this file belongs to.
    pub fn ctx(&self) -> &'c Ctx {
        self.ctx
    }

    /// The file's page size.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.page_size as usize {
            return Err(Error::with(
                sys::ATOMIO_E_PAGE_SIZE,
                format!(
                    "page is {} bytes, the file's page size is {}",
                    len, self.page_size
                ),
            ));
        }
        Ok(())
    }

    fn aligned(&self, p: *const u8) -> bool {
        p as usize % self.align == 0
    }

    fn with_bounce<T>(&self, f: impl FnOnce(&mut RawBuf) -> T) -> Result<T> {
        let mut guard = self.bounce.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(RawBuf::alloc(self.ctx, self.page_size, 1)?);
        }
        Ok(f(guard.as_mut().unwrap()))
    }

    /// `atomio_write()`: one whole page (`page.len()` must be the page size) at `page_no`.
    pub fn write(&self, page_no: u64, page: &[u8]) -> Result<()> {
        self.write_flags(page_no, page, WriteFlags::NONE)
    }

    /// [`write`](Self::write) with flags ([`WriteFlags::DSYNC`], [`WriteFlags::STABLE_PAGES`]).
    pub fn write_flags(&self, page_no: u64, page: &[u8], flags: WriteFlags) -> Result<()> {
        self.check_len(page.len())?;
        let ctx = || format!("write page {}", page_no);
        if self.aligned(page.as_ptr()) {
            // SAFETY: live handle, page_size readable bytes.
            let rc = unsafe {
                sys::atomio_write(self.raw, page_no, page.as_ptr() as *const c_void, flags.0)
            };
            return check(rc, ctx).map(|_| ());
        }
        let rc = self.with_bounce(|b| {
            b.as_mut_slice().copy_from_slice(page);
            // SAFETY: live handle, aligned page_size bytes.
            unsafe {
                sys::atomio_write(self.raw, page_no, b.ptr.as_ptr() as *const c_void, flags.0)
            }
        })?;
        check(rc, ctx).map(|_| ())
    }

    /// [`Ctx::write_batch`] for pages of this file.
    pub fn write_batch(&self, pages: &[(u64, &[u8])], flags: WriteFlags) -> Result<()> {
        let mut entries: Vec<BatchWrite<'_>> = pages
            .iter()
            .map(|&(n, p)| BatchWrite::new(self, n, p))
            .collect();
        self.ctx.write_batch(&mut entries, flags)
    }

    /// `atomio_read()` into `buf` (exactly one page). Beyond end of file reads zeros. In
    /// [`DoublewriteMode::WRITE_BEHIND`] it also sees pages still staged, not yet in the file.
    pub fn read(&self, page_no: u64, buf: &mut [u8]) -> Result<()> {
        self.check_len(buf.len())?;
        let ctx = || format!("read page {}", page_no);
        if self.aligned(buf.as_ptr()) {
            // SAFETY: live handle, page_size writable bytes.
            let rc =
                unsafe { sys::atomio_read(self.raw, page_no, buf.as_mut_ptr() as *mut c_void) };
            return check(rc, ctx).map(|_| ());
        }
        let rc = self.with_bounce(|b| {
            // SAFETY: live handle, aligned page_size bytes.
            let rc = unsafe { sys::atomio_read(self.raw, page_no, b.ptr.as_ptr() as *mut c_void) };
            if rc >= 0 {
                buf.copy_from_slice(b.as_slice());
            }
            rc
        })?;
        check(rc, ctx).map(|_| ())
    }

    /// `atomio_read()` of page `page_no` into a new Vec.
    pub fn read_vec(&self, page_no: u64) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.page_size as usize];
        self.read(page_no, &mut v)?;
        Ok(v)
    }

    /// `atomio_sync()`: make every acknowledged write durable; a failure fails the file.
    pub fn sync(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::atomio_sync(self.raw) }, || "sync".to_string()).map(|_| ())
    }

    /// `atomio_file_get_info()`.
    pub fn info(&self) -> Result<FileInfo> {
        let mut i = sys::atomio_file_info::new_sized();
        // SAFETY: live handle, sized output.
        check(
            unsafe { sys::atomio_file_get_info(self.raw, &mut i) },
            || "file info".to_string(),
        )?;
        Ok(FileInfo::from_raw(&i))
    }

    /// `atomio_file_get_caps()`: the probe figures behind the file's path.
    pub fn caps(&self) -> Result<Caps> {
        let mut c = sys::atomio_caps::new_sized();
        // SAFETY: live handle, sized output.
        check(
            unsafe { sys::atomio_file_get_caps(self.raw, &mut c) },
            || "file caps".to_string(),
        )?;
        Ok(Caps::from_raw(&c))
    }

    /// `atomio_file_fence()`: call it before changing the file without the library
    /// (truncating it, punching a hole, plain writes, unlinking it). Every copy the store
    /// holds of the file from before the call is then never applied to it again, by this
    /// process or a later recovery (counted in `pages_fenced`); without it, recovery may write
    /// such a copy back over the change, e.g. bring a truncated page back. Durable when it
    /// returns; pages written through the library afterwards are protected as usual. No write
    /// of the file may be in flight, from any process, during the call and the change.
    /// `Ok` also without a store (nothing to fence); `ATOMIO_E_READ_ONLY` for a read-only file.
    pub fn fence(&self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::atomio_file_fence(self.raw) }, || {
            "fence".to_string()
        })
        .map(|_| ())
    }

    /// `atomio_file_get_stats()`.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = sys::atomio_stats::new_sized();
        // SAFETY: live handle, sized output.
        check(
            unsafe { sys::atomio_file_get_stats(self.raw, &mut s) },
            || "file stats".to_string(),
        )?;
        Ok(Stats::from_raw(&s))
    }

    /// `atomio_file_close()` with its result (drop closes too, ignoring it). No implicit sync.
    pub fn close(mut self) -> Result<()> {
        self.close_raw()
    }

    fn close_raw(&mut self) -> Result<()> {
        let raw = std::mem::replace(&mut self.raw, ptr::null_mut());
        if raw.is_null() {
            return Ok(());
        }
        // Free the bounce buffer while the ctx is certainly alive.
        self.bounce.lock().unwrap_or_else(|p| p.into_inner()).take();
        // SAFETY: the handle was live and is not used again.
        check(unsafe { sys::atomio_file_close(raw) }, || {
            "file close".to_string()
        })
        .map(|_| ())
    }
}

impl Drop for File<'_> {
    fn drop(&mut self) {
        let _ = self.close_raw();
    }
}

impl fmt::Debug for File<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "File({:p}, page size {})", self.raw, self.page_size)
    }
}

/// One entry of [`Ctx::write_batch`]: a page of a file and, afterwards, its own result.
#[derive(Debug)]
pub struct BatchWrite<'a> {
    file: &'a File<'a>,
    page_no: u64,
    page: &'a [u8],
    result: i32,
}

impl<'a> BatchWrite<'a> {
    pub fn new(file: &'a File<'a>, page_no: u64, page: &'a [u8]) -> Self {
        BatchWrite {
            file,
            page_no,
            page,
            result: 0,
        }
    }
    /// This entry's result after the batch ran.
    pub fn result(&self) -> Result<()> {
        if self.result < 0 {
            Err(Error::with(
                self.result,
                format!("batch entry page {}", self.page_no),
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c_str(p: *const c_char) -> Option<String> {
        if p.is_null() {
            None
        } else {
            // SAFETY: a pointer RawCtxOpts set into one of its own CStrings.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    }

    #[test]
    fn ctx_options_reach_the_c_struct() {
        let o = RawCtxOpts::new(
            &CtxOptions::new()
                .doublewrite_dir("/db/dblwr")
                .data_root("/db/data")
                .no_recover(true),
        )
        .unwrap();
        assert_eq!(
            o.raw.size as usize,
            std::mem::size_of::<sys::atomio_ctx_opts>()
        );
        assert_eq!(c_str(o.raw.doublewrite_dir).as_deref(), Some("/db/dblwr"));
        assert_eq!(c_str(o.raw.data_root).as_deref(), Some("/db/data"));
        assert_eq!(o.raw.flags, sys::ATOMIO_CTX_NO_RECOVER);
        assert!(o.raw.unapplied.is_none() && o.raw.unapplied_arg.is_null());
        assert_eq!(o.raw.numa_node, -1);
        assert!(o.raw.instance.is_null());
        assert_eq!(o.raw.doublewrite_mode, sys::ATOMIO_DOUBLEWRITE_SYNC_BATCH);
        assert_eq!(o.raw.doublewrite_store_bytes, 0);

        let d = RawCtxOpts::new(&CtxOptions::new()).unwrap();
        assert!(d.raw.doublewrite_dir.is_null() && d.raw.data_root.is_null());
        assert_eq!(d.raw.flags, sys::ATOMIO_CTX_NO_DOUBLEWRITE);
        assert!(d.strings.is_empty());
    }

    #[test]
    fn store_options_reach_the_c_struct() {
        let o = RawCtxOpts::new(
            &CtxOptions::new()
                .doublewrite_dir("/db/dblwr")
                .instance("eng-1")
                .doublewrite_mode(DoublewriteMode::DEFERRED)
                .doublewrite_store_bytes(1 << 20)
                .unapplied(|_, _, _, _| {}),
        )
        .unwrap();
        assert_eq!(c_str(o.raw.instance).as_deref(), Some("eng-1"));
        assert_eq!(o.raw.doublewrite_mode, sys::ATOMIO_DOUBLEWRITE_DEFERRED);
        assert_eq!(o.raw.doublewrite_store_bytes, 1 << 20);
        assert_eq!(o.raw.write_behind_bytes, 0);
        let hook = o.unapplied.as_deref().unwrap() as *const UnappliedHook as *mut c_void;
        assert!(o.raw.unapplied.is_some());
        assert_eq!(o.raw.unapplied_arg, hook);
        assert_eq!(o.raw.reserved, [0; 3]);
        let wb = RawCtxOpts::new(
            &CtxOptions::new()
                .doublewrite_dir("/db/dblwr")
                .doublewrite_mode(DoublewriteMode::WRITE_BEHIND)
                .write_behind_bytes(256 << 10),
        )
        .unwrap();
        assert_eq!(
            wb.raw.doublewrite_mode,
            sys::ATOMIO_DOUBLEWRITE_WRITE_BEHIND
        );
        assert_eq!(wb.raw.write_behind_bytes, 256 << 10);
        assert_eq!(wb.raw.reserved, [0; 3]);
        let e = RawCtxOpts::new(&CtxOptions::new().instance("a\0b"))
            .err()
            .unwrap();
        assert_eq!(e.code(), sys::ATOMIO_E_INVAL);
    }

    #[test]
    fn unapplied_trampoline_passes_every_argument() {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let o = RawCtxOpts::new(&CtxOptions::new().unapplied(move |id, path, pages, err| {
            s2.lock()
                .unwrap()
                .push((id, path.map(|p| p.to_path_buf()), pages, err.code()));
        }))
        .unwrap();
        let (f, arg) = (o.raw.unapplied.unwrap(), o.raw.unapplied_arg);
        // SAFETY: the trampoline with its own argument, a C string and NULL.
        unsafe {
            f(arg, 42, b"/db/t1\0".as_ptr() as *const c_char, 2, -2);
            f(arg, 7, ptr::null(), 1, sys::ATOMIO_E_UNAPPLIED);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (42, Some(std::path::PathBuf::from("/db/t1")), 2, -2),
                (7, None, 1, sys::ATOMIO_E_UNAPPLIED)
            ]
        );
        // A panic stays on this side of the C frames and is resumed by the caller.
        let p = RawCtxOpts::new(&CtxOptions::new().unapplied(|_, _, _, _| panic!("boom"))).unwrap();
        // SAFETY: as above.
        unsafe { (p.raw.unapplied.unwrap())(p.raw.unapplied_arg, 1, ptr::null(), 1, -2) };
        let hook = p.unapplied.as_deref().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| hook.resume_panic()));
        assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
        hook.resume_panic(); // taken: nothing left to resume
    }

    #[test]
    fn stats_count_every_slot() {
        let mut s = sys::atomio_stats::new_sized();
        s.pages[sys::ATOMIO_PATH_UNSAFE as usize] = 2;
        s.pages[sys::ATOMIO_STATS_PATHS - 1] = 5; // a path newer than this crate
        let st = Stats::from_raw(&s);
        assert_eq!(st.pages_on(WritePath::UNSAFE), 2);
        assert_eq!(
            st.pages_on(WritePath(sys::ATOMIO_STATS_PATHS as u32 - 1)),
            5
        );
        assert_eq!(st.pages_on(WritePath(sys::ATOMIO_STATS_PATHS as u32)), 0);
        assert_eq!(st.pages_total(), 7);
        s.store_bytes = 1 << 20;
        s.attached = 2;
        s.group_commits = 3;
        s.pages_staged = 4;
        s.staged_reads = 5;
        s.staged_now = 6;
        let st = Stats::from_raw(&s);
        assert_eq!(
            (st.store_bytes, st.attached, st.group_commits),
            (1 << 20, 2, 3)
        );
        assert_eq!((st.pages_staged, st.staged_reads, st.staged_now), (4, 5, 6));
    }
}
