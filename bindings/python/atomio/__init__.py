# SPDX-License-Identifier: MIT
"""Python bindings for libatomio: untorn page writes for database storage engines.

ctypes only, public API only (include/atomio.h). The library is found through the
ATOMIO_LIBRARY environment variable (path of libatomio.so), then the source tree's
build/libatomio/, then the system's library path.

    import atomio
    caps = atomio.probe("/data/db/t1", 16384)
    with atomio.Ctx("/data/db/dblwr") as ctx, ctx.open_file("/data/db/t1", 16384) as f:
        f.write(0, b"x" * 16384)
        f.sync()
        print(f.info().path, f.stats().pages_total)

Every negative library result is raised as atomio.Error (code, name, message); the paths,
io styles, policies and submitters are IntEnums whose values are the C enum values, and values
a newer library adds come back as plain ints, so they need no change here.
"""

from __future__ import annotations

import ctypes
import enum
import os
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass
from os import fsencode
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _lib
from ._lib import LibraryNotFound

__all__ = [
    "Error", "ShortWriteError", "FileFailedError", "ClosedError", "PathUnsupportedError",
    "BatchError", "LibraryNotFound", "Path", "IoStyle", "Policy", "Submitter", "State",
    "DirectAtomic", "DoublewriteMode", "Caps", "StatxMirror", "FileInfo", "Stats",
    "RecoveryReport", "PageBuffer", "Ctx", "File",
    "probe", "version", "library_path", "strerror", "err_name", "last_reason", "store_reset",
]

Buffer = Union[bytes, bytearray, memoryview, "PageBuffer"]


# --- enums ---------------------------------------------------------------------------------
class Path(enum.IntEnum):
    """enum atomio_path: how a page is made untorn."""
    AUTO = _lib.PATH_AUTO
    DIRECT_ATOMIC = _lib.PATH_DIRECT_ATOMIC
    BUFFERED_ATOMIC = _lib.PATH_BUFFERED_ATOMIC
    DOUBLEWRITE = _lib.PATH_DOUBLEWRITE
    UNSAFE = _lib.PATH_UNSAFE


class IoStyle(enum.IntEnum):
    """enum atomio_io_style."""
    ANY = _lib.IO_ANY
    BUFFERED = _lib.IO_BUFFERED
    DIRECT = _lib.IO_DIRECT


class Policy(enum.IntEnum):
    """enum atomio_policy."""
    DEFAULT = _lib.POLICY_DEFAULT
    PREFER_FAST = _lib.POLICY_PREFER_FAST
    PREFER_ATOMIC = _lib.POLICY_PREFER_ATOMIC
    CALIBRATE = _lib.POLICY_CALIBRATE


class Submitter(enum.IntEnum):
    """enum atomio_submitter."""
    AUTO = _lib.SUBMIT_AUTO
    URING = _lib.SUBMIT_URING
    SYNC = _lib.SUBMIT_SYNC


class State(enum.IntEnum):
    """enum atomio_file_state."""
    OK = _lib.STATE_OK
    FAILED = _lib.STATE_FAILED
    CLOSED = _lib.STATE_CLOSED


class DirectAtomic(enum.IntEnum):
    """atomio_caps.direct_atomic: ATOMIO_ATOMIC_*."""
    NONE = _lib.ATOMIC_NONE
    HARDWARE = _lib.ATOMIC_HARDWARE
    SOFTWARE = _lib.ATOMIC_SOFTWARE


class DoublewriteMode(enum.IntEnum):
    """enum atomio_doublewrite_mode: when the doublewrite store releases a page's copy."""
    SYNC_BATCH = _lib.DOUBLEWRITE_SYNC_BATCH  # each batch syncs its data files, then releases
    DEFERRED = _lib.DOUBLEWRITE_DEFERRED      # released once the engine's syncs cover it
    # As DEFERRED, and a write returns once its page is staged in the instance's shared
    # memory; a group commit later puts staged pages of every process in place. Until then
    # only File.read() sees the page (or call Ctx.flush() first). Every process of the
    # instance must use it.
    WRITE_BEHIND = _lib.DOUBLEWRITE_WRITE_BEHIND


def _enum(cls, value):
    """cls(value), or the plain int when a newer library returns a value this module lacks."""
    try:
        return cls(value)
    except ValueError:
        return int(value)


# --- errors --------------------------------------------------------------------------------
def strerror(code: int) -> str:
    """atomio_strerror(code)."""
    return _lib.lib().atomio_strerror(code).decode()


def err_name(code: int) -> str:
    """atomio_err_name(code): "ATOMIO_E_FAILED", "EIO", ..."""
    return _lib.lib().atomio_err_name(code).decode()


class Error(Exception):
    """A negative libatomio result: code (< 0), name (atomio_err_name), message (atomio_strerror).

    detail, when set, says what the binding was doing (e.g. which length it got).
    reason, for a failed Ctx() open, Ctx.recover() or store_reset(), is the library's own
    explanation (atomio_last_reason(): which check failed, who holds the store, what to do);
    None for other calls or when the library gave none.
    errno is -code for kernel errors and None for ATOMIO_E_* codes.
    """

    def __new__(cls, code: int, *args, **kwargs):
        # Error(code) picks the subclass for the code, so callers catch precisely.
        if cls is Error:
            cls = _SUBCLASSES.get(code, Error)
        return super().__new__(cls)

    def __init__(self, code: int, detail: Optional[str] = None, reason: Optional[str] = None):
        self.code = int(code)
        self.name = err_name(self.code)
        self.message = strerror(self.code)
        self.detail = detail
        self.reason = reason or None
        self.errno = -self.code if -4096 < self.code < 0 else None
        text = f"{self.name} ({self.code}): {self.message}"
        if detail:
            text += f" [{detail}]"
        if self.reason:
            text += f": {self.reason}"
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (self.code, self.detail, self.reason))


class ShortWriteError(Error):
    """ATOMIO_E_SHORT_WRITE: the kernel wrote part of a page; the file is now failed."""


class FileFailedError(Error):
    """ATOMIO_E_FAILED: the file failed earlier (short write, failed sync); reopen and recover."""


class ClosedError(Error):
    """ATOMIO_E_CLOSED: the handle (file or ctx) is closed."""


class PathUnsupportedError(Error):
    """ATOMIO_E_PATH_UNSUPPORTED: the forced path is impossible for this file."""


class BatchError(Error):
    """write_batch(): some entries failed. code is the first failure's; results holds every
    entry's result (0 or < 0) in order, errors the matching Error or None, written the count."""

    def __init__(self, code: int, results: Sequence[int], written: int):
        super().__init__(code, f"{len(results) - written} of {len(results)} batch entries failed")
        self.results = list(results)
        self.written = written
        self.errors = [None if r >= 0 else Error(r) for r in self.results]

    def __reduce__(self):
        return (type(self), (self.code, self.results, self.written))


_SUBCLASSES = {
    _lib.E_SHORT_WRITE: ShortWriteError,
    _lib.E_FAILED: FileFailedError,
    _lib.E_CLOSED: ClosedError,
    _lib.E_PATH_UNSUPPORTED: PathUnsupportedError,
}


def _check(rc: int, detail: Optional[str] = None) -> int:
    if rc < 0:
        raise Error(rc, detail)
    return rc


def last_reason() -> str:
    """atomio_last_reason(): the library's explanation of the last failure of a ctx open,
    a recovery or a store reset on the calling thread ("" if none). Errors of those calls
    carry it already, as Error.reason."""
    return _lib.lib().atomio_last_reason().decode("utf-8", "replace")


def _reason() -> Optional[str]:
    """last_reason() right after a failed call, for its Error (None when the library has
    nothing to say). Read on the failing call's thread: the library keeps it per thread."""
    try:
        return last_reason() or None
    except NotImplementedError:
        return None  # a library without atomio_last_reason(): the code alone


# --- result records ------------------------------------------------------------------------
def _s(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class StatxMirror:
    """Experimental: the raw statx fields behind the probe's verdicts (the tail of atomio_caps
    declared under ATOMIO_EXPERIMENTAL). The kernel's atomic write fields are young and the
    library may reshape this part in a minor release; the verdicts and reasons of Caps are the
    stable answer. statx_mask says which fields the kernel filled; all are 0 when the library
    reported none."""
    statx_mask: int
    dio_mem_align: int
    statx_attributes: int
    dio_offset_align: int
    dio_read_offset_align: int
    unit_min: int
    unit_max: int
    segments_max: int
    unit_max_opt: int

    @classmethod
    def _from(cls, c: _lib.Caps) -> "StatxMirror":
        return cls(**{n: getattr(c, n) for n, _ in _lib.CAPS_STATX_FIELDS})


@dataclass(frozen=True)
class Caps:
    """atomio_caps: what the probe learned about one file at one page size.

    statx holds the experimental raw statx mirror (StatxMirror)."""
    valid: int
    page_size: int
    sys_page_size: int
    fs_block_size: int
    dev_major: int
    dev_minor: int
    hw_unit_max: int
    hw_sysfs_err: int
    direct_atomic: Union[DirectAtomic, int]
    buffered_atomic: bool
    buffered_probe_err: int
    page_order: int
    fs_min_order: int
    fs_type: int
    auto_path: Union[Path, int]
    folio_ok: bool
    reason_direct: str
    reason_buffered: str
    reason_doublewrite: str
    reason_auto: str
    statx: StatxMirror

    @classmethod
    def _from(cls, c: _lib.Caps) -> "Caps":
        return cls(
            valid=c.valid, page_size=c.page_size, sys_page_size=c.sys_page_size,
            fs_block_size=c.fs_block_size, dev_major=c.dev_major, dev_minor=c.dev_minor,
            hw_unit_max=c.hw_unit_max, hw_sysfs_err=c.hw_sysfs_err,
            direct_atomic=_enum(DirectAtomic, c.direct_atomic),
            buffered_atomic=bool(c.buffered_atomic), buffered_probe_err=c.buffered_probe_err,
            page_order=c.page_order, fs_min_order=c.fs_min_order, fs_type=c.fs_type,
            auto_path=_enum(Path, c.auto_path), folio_ok=bool(c.folio_ok),
            reason_direct=_s(c.reason_direct),
            reason_buffered=_s(c.reason_buffered), reason_doublewrite=_s(c.reason_doublewrite),
            reason_auto=_s(c.reason_auto), statx=StatxMirror._from(c),
        )

    def can(self, path: Union[Path, int]) -> Optional[bool]:
        """Whether the probe says the file can take `path` (None: the probe cannot tell)."""
        if path == Path.DIRECT_ATOMIC:
            return self.direct_atomic != DirectAtomic.NONE
        if path == Path.BUFFERED_ATOMIC:
            return self.buffered_atomic
        if path == Path.UNSAFE:
            return True
        return None


@dataclass(frozen=True)
class FileInfo:
    """atomio_file_info: the path in force, why, and the state."""
    path: Union[Path, int]
    torn_write_safe: bool
    state: Union[State, int]
    page_size: int
    io_style: Union[IoStyle, int]
    policy: Union[Policy, int]
    submitter: Union[Submitter, int]
    uring_fallback: bool
    downgrades: int
    o_direct: bool
    direct_atomic: Union[DirectAtomic, int]
    file_id: int
    calib_atomic_ns: int
    calib_doublewrite_ns: int
    reason: str
    reject_direct: str
    reject_buffered: str
    reject_doublewrite: str

    @classmethod
    def _from(cls, i: _lib.FileInfo) -> "FileInfo":
        return cls(
            path=_enum(Path, i.path), torn_write_safe=bool(i.torn_write_safe),
            state=_enum(State, i.state), page_size=i.page_size,
            io_style=_enum(IoStyle, i.io_style), policy=_enum(Policy, i.policy),
            submitter=_enum(Submitter, i.submitter), uring_fallback=bool(i.uring_fallback),
            downgrades=i.downgrades, o_direct=bool(i.o_direct),
            direct_atomic=_enum(DirectAtomic, i.direct_atomic), file_id=i.file_id,
            calib_atomic_ns=i.calib_atomic_ns, calib_doublewrite_ns=i.calib_doublewrite_ns,
            reason=_s(i.reason), reject_direct=_s(i.reject_direct),
            reject_buffered=_s(i.reject_buffered), reject_doublewrite=_s(i.reject_doublewrite),
        )


@dataclass(frozen=True)
class Stats:
    """atomio_stats. pages maps every Path this module knows to the pages written through it,
    plus (as an int key) any path newer than this module that wrote pages; lat_hist[i] counts
    writes of [2^i, 2^(i+1)) microseconds."""
    pages: Dict[Union[Path, int], int]
    bytes_data: int
    bytes_doublewrite: int
    syncs: int
    batches: int
    downgrades: int
    short_writes: int
    failed_syncs: int
    recovered_pages: int
    uring_fallbacks: int
    lat_hist: Tuple[int, ...]
    bounce_copies: int      # pages copied to an aligned buffer before an O_DIRECT write
    forced_syncs: int       # data-file syncs the library made because the store ran short
    group_commits: int      # store durability barriers (fdatasync of the store)
    group_records: int      # store records those barriers made durable
    store_bytes: int        # store capacity (ctx only; 0 for a file and without a store)
    store_bytes_used: int   # store bytes holding copies not yet released (ctx only)
    attached: int           # processes attached to the store (ctx only)
    pages_staged: int       # write-behind: writes that returned once their page was staged
    staged_reads: int       # write-behind: reads served from a staged page
    staged_now: int         # write-behind: pages of the instance staged, not yet in place
                            # (ctx only)

    @property
    def pages_total(self) -> int:
        return sum(self.pages.values())

    @classmethod
    def _from(cls, s: _lib.Stats) -> "Stats":
        return cls(
            pages=_pages(s.pages),
            bytes_data=s.bytes_data, bytes_doublewrite=s.bytes_doublewrite, syncs=s.syncs,
            batches=s.batches, downgrades=s.downgrades, short_writes=s.short_writes,
            failed_syncs=s.failed_syncs, recovered_pages=s.recovered_pages,
            uring_fallbacks=s.uring_fallbacks, lat_hist=tuple(s.lat_hist),
            **{n: getattr(s, n) for n in _STATS_STORE_FIELDS},
        )


# The atomio_stats fields after lat_hist, copied as they are.
_STATS_STORE_FIELDS = ("bounce_copies", "forced_syncs", "group_commits", "group_records",
                       "store_bytes", "store_bytes_used", "attached", "pages_staged",
                       "staged_reads", "staged_now")


def _pages(raw) -> Dict[Union[Path, int], int]:
    """atomio_stats.pages (ATOMIO_STATS_PATHS slots, indexed by path) as a dict."""
    out: Dict[Union[Path, int], int] = {Path(p): raw[p] for p in _lib.PATHS}
    for i in range(len(raw)):
        if i not in out and raw[i]:
            out[i] = raw[i]
    return out


@dataclass(frozen=True)
class RecoveryReport:
    """atomio_recovery_report. batches_discarded counts the live records store_reset()
    dropped; pages_discarded the copies dropped by Ctx.discard_file() or a reset;
    pages_fenced the copies never applied because they are older than their file's fence
    (File.fence(), or writes that bypassed the store)."""
    ring_bytes_scanned: int
    batches_scanned: int
    batches_valid: int
    batches_torn: int
    pages_checked: int
    pages_restored: int
    pages_verified_intact: int
    pages_unrecoverable: int
    files_missing: int
    unknown_file_ids: int
    pages_unapplied: int
    pages_discarded: int
    batches_discarded: int
    headers_repaired: int
    pages_fenced: int

    @classmethod
    def _from(cls, r: _lib.RecoveryReport) -> "RecoveryReport":
        return cls(**{n: getattr(r, n) for n, _ in _lib.RecoveryReport._fields_[2:]})


# --- module functions ----------------------------------------------------------------------
def version() -> str:
    """atomio_version_string() of the loaded library."""
    return _lib.lib().atomio_version_string().decode()


def library_path() -> str:
    """Which libatomio was loaded (and found how: 'ATOMIO_LIBRARY', 'build tree', 'system path')."""
    lib = _lib.lib()
    return f"{lib.where} ({lib.how})"


def _path_arg(p) -> bytes:
    return fsencode(p)


def probe(path, page_size: int) -> Caps:
    """atomio_probe(): capabilities of the file (or directory) at page_size. Never writes it."""
    caps = _lib.sized(_lib.Caps)
    _check(_lib.lib().atomio_probe(_path_arg(path), page_size, ctypes.byref(caps)),
           f"probe {path!s} at page size {page_size}")
    return Caps._from(caps)


def store_reset(doublewrite_dir) -> RecoveryReport:
    """atomio_store_reset(): the operator's explicit discard of every copy a doublewrite store
    holds; the next Ctx() lays it out afresh. Refused (ATOMIO_E_STORE_LOCKED) while any
    process has the store open. Returns what was discarded (batches_discarded,
    pages_discarded); a failure raises Error with .reason and .report."""
    r = _lib.sized(_lib.RecoveryReport)
    rc = _lib.lib().atomio_store_reset(_path_arg(doublewrite_dir), ctypes.byref(r))
    report = RecoveryReport._from(r)
    if rc < 0:
        err = Error(rc, f"store reset {doublewrite_dir!s}", _reason())
        err.report = report
        raise err
    return report


def _valid_page_size(ps: int) -> bool:
    return 512 <= ps <= (1 << 20) and ps & (ps - 1) == 0


# --- page buffers --------------------------------------------------------------------------
class _BufState:
    """What a PageBuffer's finalizer needs, without referring to the PageBuffer itself."""

    def __init__(self, ctx: "Ctx", ptr: int, page_size: int, npages: int):
        self.ctx = ctx
        self.ptr = ptr
        self.page_size = page_size
        self.npages = npages

    def release(self):
        if self.ptr and self.ctx._h is not None:
            _lib.lib().atomio_page_free(self.ctx._h, self.ptr, self.page_size, self.npages)
        self.ptr = 0


class PageBuffer:
    """npages x page_size bytes from atomio_page_alloc(): aligned, pre-faulted, NUMA-local.

    .view is a writable memoryview of the whole buffer, .page(i) one page of it. Pass the
    buffer (or a page of it) to File.write()/read_into() and no copy is made. free() (or
    leaving a with block) returns the memory; it refuses with BufferError while memoryviews
    derived from this buffer are still alive, so no view can outlive the memory.
    """

    def __init__(self, ctx: "Ctx", page_size: int, npages: int = 1):
        if not _valid_page_size(page_size):
            raise Error(_lib.E_PAGE_SIZE, f"page size {page_size}")
        if npages < 1:
            raise Error(_lib.E_INVAL, f"npages {npages}")
        h = ctx._handle()
        ptr = _lib.lib().atomio_page_alloc(h, page_size, npages)
        if not ptr:
            raise MemoryError(f"atomio_page_alloc({page_size}, {npages}) failed")
        self.page_size = page_size
        self.npages = npages
        self._state = _BufState(ctx, ptr, page_size, npages)
        self._arr = (ctypes.c_char * (page_size * npages)).from_address(ptr)
        self._view = memoryview(self._arr).cast("B")
        self._fin = weakref.finalize(self, _BufState.release, self._state)
        ctx._buffers.add(self)

    @property
    def address(self) -> int:
        if not self._state.ptr:
            raise Error(_lib.E_CLOSED, "page buffer freed")
        return self._state.ptr

    @property
    def view(self) -> memoryview:
        if not self._state.ptr:
            raise Error(_lib.E_CLOSED, "page buffer freed")
        return self._view

    def page(self, i: int) -> memoryview:
        """Page i of the buffer as a writable memoryview."""
        if not 0 <= i < self.npages:
            raise IndexError(i)
        return self.view[i * self.page_size:(i + 1) * self.page_size]

    def __len__(self) -> int:
        return self.page_size * self.npages

    def _exported(self) -> bool:
        # Every memoryview derived from self._view shares one managed buffer that holds a
        # reference to self._arr; with self._view released, our attribute and getrefcount's
        # argument are the only references left unless some view is still alive.
        return sys.getrefcount(self._arr) > 2

    def free(self, _force_leak: bool = False) -> None:
        """Return the memory to the library. Idempotent."""
        if not self._state.ptr:
            return
        self._view.release()
        if self._exported():
            self._view = memoryview(self._arr).cast("B")
            if not _force_leak:
                raise BufferError("memoryviews of this PageBuffer are still alive")
            # The ctx is closing under live views: leaking beats freeing memory in use.
            warnings.warn("PageBuffer leaked: views alive at Ctx.close()", ResourceWarning)
            self._fin.detach()
            self._state.ptr = 0
            return
        self._fin()
        self._state.ctx._buffers.discard(self)

    def __enter__(self) -> "PageBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.free()


def _write_flags(dsync: bool, stable_pages: bool) -> int:
    """The ATOMIO_WRITE_* flags of a write call."""
    return ((_lib.WRITE_DSYNC if dsync else 0)
            | (_lib.WRITE_STABLE_PAGES if stable_pages else 0))


def _address(data, page_size: int, align: int):
    """(address, keepalive) of data if the library can take it in place, else None.

    Raises Error(ATOMIO_E_PAGE_SIZE) when data is not exactly one page.
    """
    if isinstance(data, PageBuffer):
        data = data.view
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.nbytes != page_size:
        raise Error(_lib.E_PAGE_SIZE, f"page is {mv.nbytes} bytes, the file's page size is "
                                      f"{page_size}")
    if mv.readonly or not mv.c_contiguous:
        return None
    arr = (ctypes.c_char * page_size).from_buffer(mv)
    addr = ctypes.addressof(arr)
    if addr % align:
        return None
    return addr, arr


# --- context -------------------------------------------------------------------------------
class Ctx:
    """atomio_ctx: engine-wide context (doublewrite store, rings, buffers, counters).

    doublewrite_dir: the doublewrite store directory; None opens a ctx without one
    (ATOMIO_CTX_NO_DOUBLEWRITE). recover=False skips recovery at open (call recover()).
    verify(file_id, page_no, page: bytes) -> bool is recovery's optional intact-page check.
    A page it calls intact stays even when older than its copy: pass it only if the engine's
    redo brings such a page forward.
    data_root: data files under this directory are recorded in the store relative to it, so
    the directory can move (a restore, a container) and recovery still finds them; None
    records absolute paths. It must be an absolute path.
    instance: the engine instance's name. Every process (and every ctx) that opens the store
    with the same name shares it; None (a private instance) or another name is refused with
    ATOMIO_E_STORE_LOCKED while the store is in use.
    doublewrite_mode: DoublewriteMode.SYNC_BATCH (each batch syncs its data files), DEFERRED
    (copies released once the engine's syncs cover them) or WRITE_BEHIND (as DEFERRED, and a
    write returns once its page is staged in the instance's shared memory: see flush()).
    doublewrite_store_bytes: the store's capacity (0: the library's default, 128 MiB).
    write_behind_bytes: WRITE_BEHIND's shared staging for pages not yet written (0: store
    capacity / 16, within 1..16 MiB); a size the library refuses is ATOMIO_E_INVAL. The
    instance's first process sets it; the others use its size.
    unapplied(file_id, path, pages, err) is told of every file whose copies recovery keeps
    because it cannot apply them: path is the recorded path resolved against the data root
    (None if the store does not know the id), err -ENOENT, ATOMIO_E_UNAPPLIED or another
    negative code. It runs on the thread that opens the ctx or calls recover(); an exception
    it raises is re-raised when that call returns (chained to the call's own Error).
    A failed open raises Error with .reason (atomio_last_reason()).
    Thread-safe like the C ctx; close() closes the ctx's open File objects first.
    """

    def __init__(self, doublewrite_dir=None, *, recover: bool = True, lock_pages: bool = False,
                 policy: Policy = Policy.DEFAULT, submitter: Submitter = Submitter.AUTO,
                 queue_depth: int = 0,
                 doublewrite_mode: DoublewriteMode = DoublewriteMode.SYNC_BATCH,
                 doublewrite_batch_pages: int = 0, doublewrite_max_page_size: int = 0,
                 doublewrite_store_bytes: int = 0, write_behind_bytes: int = 0,
                 numa_node: int = -1,
                 verify: Optional[Callable[[int, int, bytes], bool]] = None,
                 data_root=None, instance: Optional[str] = None,
                 unapplied: Optional[Callable[[int, Optional[str], int, int], None]] = None):
        lib = _lib.lib()
        self._h = None
        self._files: "weakref.WeakSet[File]" = weakref.WeakSet()
        self._buffers: "weakref.WeakSet[PageBuffer]" = weakref.WeakSet()
        self._cb_errors: List[BaseException] = []
        o = _lib.CtxOpts()
        lib.atomio_ctx_opts_init(ctypes.byref(o))
        if doublewrite_dir is None:
            o.flags |= _lib.CTX_NO_DOUBLEWRITE
        else:
            self._dir = _path_arg(doublewrite_dir)  # kept alive: the ctx may read it after open
            o.doublewrite_dir = self._dir
        if data_root is not None:
            self._data_root = _path_arg(data_root)  # kept alive like the store directory
            o.data_root = self._data_root
        if not recover:
            o.flags |= _lib.CTX_NO_RECOVER
        if lock_pages:
            o.flags |= _lib.CTX_LOCK_PAGES
        o.policy = int(policy)
        o.submitter = int(submitter)
        o.queue_depth = queue_depth
        o.doublewrite_mode = int(doublewrite_mode)
        o.doublewrite_batch_pages = doublewrite_batch_pages
        o.doublewrite_max_page_size = doublewrite_max_page_size
        o.doublewrite_store_bytes = doublewrite_store_bytes
        o.write_behind_bytes = write_behind_bytes
        o.numa_node = numa_node
        if instance is not None:
            self._instance = instance.encode()  # kept alive like the store directory
            o.instance = self._instance
        self._verify = None
        if verify is not None:
            self._verify = _lib.VERIFY_FN(_make_verify(verify))
            o.verify = self._verify
        # The CFUNCTYPE object is the C function pointer's trampoline: it must live as long as
        # the library may call it, i.e. as long as the ctx (recover() calls it again).
        self._unapplied = None
        if unapplied is not None:
            self._unapplied = _lib.UNAPPLIED_FN(_make_unapplied(unapplied, self._cb_errors))
            o.unapplied = self._unapplied
        h = ctypes.c_void_p()
        rc = lib.atomio_ctx_open(ctypes.byref(o), ctypes.byref(h))
        err = Error(rc, _open_detail(doublewrite_dir, instance), _reason()) if rc < 0 else None
        if err is None:
            self._h = h.value
        self._raise_cb_errors(err)
        if err is not None:
            raise err

    def _raise_cb_errors(self, err: Optional[Error]) -> None:
        """Re-raise the first exception a callback raised during the last library call (it
        could not cross the C frames), chained to that call's own error if it failed."""
        if not self._cb_errors:
            return
        first = self._cb_errors[0]
        self._cb_errors.clear()
        if err is not None:
            raise first from err
        raise first

    def _handle(self) -> int:
        if self._h is None:
            raise Error(_lib.E_CLOSED, "ctx closed")
        return self._h

    @property
    def closed(self) -> bool:
        return self._h is None

    def open_file(self, filename, page_size: int, *, path: Union[Path, int] = Path.AUTO,
                  io_style: IoStyle = IoStyle.ANY, policy: Policy = Policy.DEFAULT,
                  create: Optional[bool] = None, read_only: bool = False, dsync: bool = False,
                  no_copy: bool = False, file_id: int = 0, mode: int = 0) -> "File":
        """atomio_file_open(). path forces a write path (AUTO lets the library choose).

        create defaults to True for read-write files and False for read_only ones (the
        library refuses the combination)."""
        return File(self, filename, page_size, path=path, io_style=io_style, policy=policy,
                    create=create, read_only=read_only, dsync=dsync, no_copy=no_copy,
                    file_id=file_id, mode=mode)

    def page_alloc(self, page_size: int, npages: int = 1) -> PageBuffer:
        """atomio_page_alloc() as a PageBuffer (memoryview access, freed by free()/with)."""
        return PageBuffer(self, page_size, npages)

    def write_batch(self, entries: Iterable[Tuple["File", int, Buffer]], *,
                    dsync: bool = False, stable_pages: bool = False) -> int:
        """atomio_write_batch(): [(file, page_no, page), ...] in flight together.

        stable_pages=True passes ATOMIO_WRITE_STABLE_PAGES: a promise that no page changes
        (no other thread writes into it) until the call returns, which lets a DOUBLEWRITE
        batch write aligned pages from where they are instead of copying them first. Entries
        the binding copies into an aligned buffer itself (bytes, unaligned memory) are stable
        anyway.

        Returns the count written; raises BatchError (per-entry results) if any entry failed.
        """
        entries = list(entries)
        n = len(entries)
        if n == 0:
            return 0
        arr = (_lib.PageWrite * n)()
        keep: List[Any] = []
        bounce: Optional[PageBuffer] = None
        copies = []
        for i, (f, page_no, data) in enumerate(entries):
            if f.ctx is not self:
                raise Error(_lib.E_INVAL, f"batch entry {i}: file of another ctx")
            got = _address(data, f.page_size, f._align)
            arr[i].file = f._handle()
            arr[i].page_no = page_no
            if got is None:
                copies.append((i, f.page_size, data))
            else:
                arr[i].page = got[0]
                keep.append(got[1])
        try:
            if copies:
                # One aligned block for every entry that cannot be passed in place; slots are
                # as large as the largest page so files of different page sizes share it.
                slot = max(ps for _, ps, _ in copies)
                bounce = PageBuffer(self, slot, len(copies))
                for k, (i, ps, data) in enumerate(copies):
                    src = data.view if isinstance(data, PageBuffer) else data
                    bounce.view[k * slot:k * slot + ps] = memoryview(src).cast("B")
                    arr[i].page = bounce.address + k * slot
            flags = _write_flags(dsync, stable_pages)
            rc = _lib.lib().atomio_write_batch(self._handle(), arr, n, flags)
            _check(rc, "write_batch")
        finally:
            if bounce is not None:
                bounce.free()
            del keep
        if rc < n:
            results = [arr[i].result for i in range(n)]
            first = next(r for r in results if r < 0)
            raise BatchError(first, results, rc)
        return rc

    def sync(self) -> None:
        """atomio_ctx_sync(): sync every open file of the ctx."""
        _check(_lib.lib().atomio_ctx_sync(self._handle()), "ctx sync")

    def flush(self) -> None:
        """atomio_ctx_flush(): in WRITE_BEHIND mode, write every page any process of the
        instance had staged when the call began to the store, durably, and then in place;
        returns once they are in their files (in the page cache for buffered files: a sync
        still makes them durable), so plain reads of the files see them. A no-op in the other
        modes and without a store. sync(), File.sync() and File.fence() flush first."""
        _check(_lib.lib().atomio_ctx_flush(self._handle()), "ctx flush")

    def stats(self) -> Stats:
        """atomio_ctx_get_stats(): counters summed over the ctx's files (closed ones included)."""
        s = _lib.sized(_lib.Stats)
        _check(_lib.lib().atomio_ctx_get_stats(self._handle(), ctypes.byref(s)), "ctx stats")
        return Stats._from(s)

    def recover(self) -> RecoveryReport:
        """atomio_ctx_recover(). On failure the Error carries .report (the counts so far) and
        .reason; ATOMIO_E_UNAPPLIED means copies were kept for files it could not find (see
        the unapplied callback, remap_file() and discard_file())."""
        r = _lib.sized(_lib.RecoveryReport)
        rc = _lib.lib().atomio_ctx_recover(self._handle(), ctypes.byref(r))
        report = RecoveryReport._from(r)
        err = None
        if rc < 0:
            err = Error(rc, "recover", _reason())
            err.report = report
        self._raise_cb_errors(err)
        if err is not None:
            raise err
        return report

    def remap_file(self, file_id: int, path) -> None:
        """atomio_ctx_remap_file(): the copies of file_id belong to the data file at path (an
        operator's way out when recovery reports a file missing or unknown, e.g. after a
        restore elsewhere). Durable when it returns. Use on a Ctx(recover=False), then
        recover()."""
        _check(_lib.lib().atomio_ctx_remap_file(self._handle(), file_id, _path_arg(path)),
               f"remap file id {file_id} to {path!s}")

    def discard_file(self, file_id: int) -> None:
        """atomio_ctx_discard_file(): the next recover() on this ctx drops the copies of
        file_id instead of keeping them (counted in pages_discarded)."""
        _check(_lib.lib().atomio_ctx_discard_file(self._handle(), file_id),
               f"discard file id {file_id}")

    def fence_dir(self, path) -> int:
        """atomio_ctx_fence_dir(): File.fence() for every file the store has recorded under the
        directory path (it must exist; any spelling of it names the same files), whichever
        process wrote them, in one durable manifest append; their copies waiting for a sync stop
        waiting. Sync first only what must survive a crash that undoes the removal. Returns the
        number of files under it (0 without a store)."""
        return _check(_lib.lib().atomio_ctx_fence_dir(self._handle(), _path_arg(path)),
                      f"fence directory {path!s}")

    def close(self) -> None:
        """Close the ctx's File objects, free its PageBuffers, then atomio_ctx_close()."""
        if self._h is None:
            return
        first: Optional[Error] = None
        for f in list(self._files):
            try:
                f.close()
            except Error as e:
                first = first or e
        for b in list(self._buffers):
            b.free(_force_leak=True)
        h, self._h = self._h, None
        rc = _lib.lib().atomio_ctx_close(h)
        if rc < 0:
            raise Error(rc, "ctx close")
        if first is not None:
            raise first

    def __enter__(self) -> "Ctx":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            try:
                self.close()
            except Exception:
                pass


def _open_detail(doublewrite_dir, instance) -> str:
    if doublewrite_dir is None:
        return "ctx open, no store"
    who = f"instance {instance!r}" if instance is not None else "private instance"
    return f"ctx open, store {doublewrite_dir!s}, {who}"


def _make_unapplied(fn, errors: List[BaseException]):
    def cb(_arg, file_id, path, pages, err):
        try:
            fn(file_id, None if path is None else os.fsdecode(path), pages, err)
        except BaseException as e:  # noqa: B902 -- nothing may unwind into the library
            errors.append(e)
    return cb


def _make_verify(fn):
    def cb(_arg, file_id, page_no, page, page_size):
        try:
            return 1 if fn(file_id, page_no, ctypes.string_at(page, page_size)) else 0
        except Exception:
            return -1  # the library treats an error as "damaged"
    return cb


# --- files ---------------------------------------------------------------------------------
class File:
    """atomio_file: one data file with one page size. Use Ctx.open_file()."""

    def __init__(self, ctx: Ctx, filename, page_size: int, *, path=Path.AUTO,
                 io_style=IoStyle.ANY, policy=Policy.DEFAULT, create=None, read_only=False,
                 dsync=False, no_copy=False, file_id=0, mode=0):
        if create is None:
            create = not read_only
        lib = _lib.lib()
        self._h = None
        self._lock = threading.Lock()
        self._bounce: Optional[PageBuffer] = None
        self.ctx = ctx
        self.name = filename
        self.page_size = page_size
        o = _lib.FileOpts()
        lib.atomio_file_opts_init(ctypes.byref(o))
        o.flags = ((_lib.FILE_CREATE if create else 0) | (_lib.FILE_RDONLY if read_only else 0)
                   | (_lib.FILE_DSYNC if dsync else 0) | (_lib.FILE_NO_COPY if no_copy else 0))
        o.page_size = page_size
        o.io_style = int(io_style)
        o.path = int(path)
        o.policy = int(policy)
        o.file_id = file_id
        o.mode = mode
        h = ctypes.c_void_p()
        _check(lib.atomio_file_open(ctx._handle(), _path_arg(filename), ctypes.byref(o),
                                    ctypes.byref(h)),
               f"open {filename!s} page size {page_size} path {_name(Path, path)}")
        self._h = h.value
        ctx._files.add(self)
        # In-place writes need the DIO memory alignment; 4096 covers every device we know and
        # is what atomio_page_alloc() guarantees at least.
        self._align = 4096
        c = _lib.sized(_lib.Caps)
        if lib.atomio_file_get_caps(self._h, ctypes.byref(c)) == 0 and c.dio_mem_align > 4096:
            self._align = c.dio_mem_align

    def _handle(self) -> int:
        if self._h is None:
            raise Error(_lib.E_CLOSED, f"{self.name!s} closed")
        return self._h

    @property
    def closed(self) -> bool:
        return self._h is None

    def _bounce_buf(self) -> PageBuffer:
        if self._bounce is None:
            self._bounce = PageBuffer(self.ctx, self.page_size, 1)
        return self._bounce

    def write(self, page_no: int, data: Buffer, *, dsync: bool = False,
              stable_pages: bool = False) -> None:
        """atomio_write(): one whole page (exactly page_size bytes) at page_no, untorn.

        A PageBuffer page (or any writable, suitably aligned buffer) is passed in place;
        anything else is copied into an aligned buffer first.

        dsync=True: durable when the call returns (ATOMIO_WRITE_DSYNC).
        stable_pages=True (ATOMIO_WRITE_STABLE_PAGES): the caller promises the page does not
        change until the call returns, so DOUBLEWRITE may write it from where it is rather
        than copy it first; other paths ignore it. A page the binding copied is stable anyway.
        """
        h = self._handle()
        flags = _write_flags(dsync, stable_pages)
        got = _address(data, self.page_size, self._align)
        if got is not None:
            _check(_lib.lib().atomio_write(h, page_no, got[0], flags), f"write page {page_no}")
            return
        with self._lock:
            b = self._bounce_buf()
            src = data.view if isinstance(data, PageBuffer) else data
            b.view[:] = memoryview(src).cast("B")
            _check(_lib.lib().atomio_write(h, page_no, b.address, flags),
                   f"write page {page_no}")

    def write_batch(self, pages: Iterable[Tuple[int, Buffer]], *, dsync: bool = False,
                    stable_pages: bool = False) -> int:
        """Ctx.write_batch() for pages of this file: [(page_no, page), ...] (the same dsync
        and stable_pages)."""
        self._handle()
        return self.ctx.write_batch([(self, n, d) for n, d in pages], dsync=dsync,
                                    stable_pages=stable_pages)

    def read(self, page_no: int) -> bytes:
        """atomio_read(): page page_no as bytes (zeros beyond end of file). In WRITE_BEHIND
        mode it also sees pages still staged, not yet in the file."""
        h = self._handle()
        with self._lock:
            b = self._bounce_buf()
            _check(_lib.lib().atomio_read(h, page_no, b.address), f"read page {page_no}")
            return bytes(b.view)

    def read_into(self, page_no: int, buf: Union[bytearray, memoryview, PageBuffer]) -> None:
        """atomio_read() into a writable page-sized buffer (in place when aligned)."""
        h = self._handle()
        target = buf.view if isinstance(buf, PageBuffer) else memoryview(buf).cast("B")
        if target.readonly:
            raise TypeError("read_into needs a writable buffer")
        got = _address(target, self.page_size, self._align)
        if got is not None:
            _check(_lib.lib().atomio_read(h, page_no, got[0]), f"read page {page_no}")
            return
        with self._lock:
            b = self._bounce_buf()
            _check(_lib.lib().atomio_read(h, page_no, b.address), f"read page {page_no}")
            target[:] = b.view

    def sync(self) -> None:
        """atomio_sync(): make every acknowledged write durable. A failure fails the file."""
        _check(_lib.lib().atomio_sync(self._handle()), f"sync {self.name!s}")

    def info(self) -> FileInfo:
        """atomio_file_get_info()."""
        i = _lib.sized(_lib.FileInfo)
        _check(_lib.lib().atomio_file_get_info(self._handle(), ctypes.byref(i)), "file info")
        return FileInfo._from(i)

    def caps(self) -> Caps:
        """atomio_file_get_caps(): the probe figures behind the file's path."""
        c = _lib.sized(_lib.Caps)
        _check(_lib.lib().atomio_file_get_caps(self._handle(), ctypes.byref(c)), "file caps")
        return Caps._from(c)

    def fence(self) -> None:
        """atomio_file_fence(): call it before changing the file without the library
        (truncating it, punching a hole, plain writes, unlinking it). Every copy the store
        holds of the file from before the call is then never applied to it again, by this
        process or a later recovery (counted in pages_fenced); without it, recovery may write
        such a copy back over the change, e.g. bring a truncated page back. Durable when it
        returns; pages written through the library afterwards are protected as usual. No
        write of the file may be in flight, from any process, during the call and the change.
        Returns normally without a store too (nothing to fence); a read-only file raises
        ATOMIO_E_READ_ONLY."""
        _check(_lib.lib().atomio_file_fence(self._handle()), f"fence {self.name!s}")

    def stats(self) -> Stats:
        """atomio_file_get_stats()."""
        s = _lib.sized(_lib.Stats)
        _check(_lib.lib().atomio_file_get_stats(self._handle(), ctypes.byref(s)), "file stats")
        return Stats._from(s)

    def close(self) -> None:
        """atomio_file_close() (no implicit sync). Later calls raise ClosedError. Idempotent."""
        with self._lock:
            if self._h is None:
                return
            if self._bounce is not None:
                self._bounce.free()
                self._bounce = None
            h, self._h = self._h, None
        self.ctx._files.discard(self)
        _check(_lib.lib().atomio_file_close(h), f"close {self.name!s}")

    def __enter__(self) -> "File":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None and not self.ctx.closed:
            try:
                self.close()
            except Exception:
                pass


def _name(cls, v) -> str:
    try:
        return cls(v).name
    except ValueError:
        return str(int(v))
