# SPDX-License-Identifier: MIT
"""Raw ctypes mirror of include/atomio.h: library lookup, structs, constants, prototypes.

Nothing here is smart: every struct and constant is copied by hand from the public header
and checked against the C compiler's layout by tests/test_layout.py. The friendly API lives
in atomio/__init__.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path as _FsPath

# --- constants (atomio.h) ------------------------------------------------------------------
VERSION_MAJOR = 0
VERSION_MINOR = 2
VERSION_PATCH = 0

OK = 0
E_INVAL = -5000
E_ABI = -5001
E_PAGE_SIZE = -5002
E_UNALIGNED = -5003
E_RANGE = -5004
E_PATH_UNSUPPORTED = -5005
E_FOLIO_ORDER = -5006
E_SHORT_WRITE = -5007
E_FAILED = -5008
E_CLOSED = -5009
E_READ_ONLY = -5010
E_NO_DOUBLEWRITE = -5011
E_STORE = -5012
E_STORE_FULL = -5013
E_UNRECOVERABLE = -5014
E_NEEDS_DOUBLEWRITE = -5015
E_SEQUENCE = -5016
E_NO_COPY = -5017
E_GEOMETRY = -5018
E_BUSY = -5019
E_STORE_FAILED = -5020
E_STORE_LOCKED = -5021
E_UNAPPLIED = -5022

PATH_AUTO = 0
PATH_DIRECT_ATOMIC = 1
PATH_BUFFERED_ATOMIC = 2
PATH_DOUBLEWRITE = 3
PATH_UNSAFE = 4
# The paths this module knows, in C order. Not the length of Stats.pages: that is
# STATS_PATHS, fixed room a newer library fills as it adds paths.
PATHS = (PATH_AUTO, PATH_DIRECT_ATOMIC, PATH_BUFFERED_ATOMIC, PATH_DOUBLEWRITE, PATH_UNSAFE)
STATS_PATHS = 8

IO_ANY = 0
IO_BUFFERED = 1
IO_DIRECT = 2

POLICY_DEFAULT = 0
POLICY_PREFER_FAST = 1
POLICY_PREFER_ATOMIC = 2
POLICY_CALIBRATE = 3

SUBMIT_AUTO = 0
SUBMIT_URING = 1
SUBMIT_SYNC = 2

STATE_OK = 0
STATE_FAILED = 1
STATE_CLOSED = 2

CTX_NO_DOUBLEWRITE = 0x1
CTX_NO_RECOVER = 0x2
CTX_LOCK_PAGES = 0x4
CTX_NO_DURABILITY = 0x10

DOUBLEWRITE_SYNC_BATCH = 0
DOUBLEWRITE_DEFERRED = 1
DOUBLEWRITE_WRITE_BEHIND = 2

REASON_LEN = 192
ATOMIC_NONE = 0
ATOMIC_HARDWARE = 1
ATOMIC_SOFTWARE = 2
CAPS_STATX = 0x1
CAPS_SYSFS = 0x2
CAPS_BUFFERED = 0x4
CAPS_VERDICTS = 0x8

FILE_CREATE = 0x1
FILE_RDONLY = 0x2
FILE_NO_COPY = 0x4
FILE_DSYNC = 0x8

WRITE_DSYNC = 0x1
WRITE_STABLE_PAGES = 0x2
LAT_BUCKETS = 32

# --- structs -------------------------------------------------------------------------------
VERIFY_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint64, c_void_p, c_uint32)
# atomio_unapplied_fn(arg, file_id, path, pages, err)
UNAPPLIED_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_char_p, c_uint64, c_int)


class CtxOpts(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("doublewrite_dir", c_char_p),
        ("policy", c_uint32),
        ("submitter", c_uint32),
        ("queue_depth", c_uint32),
        ("doublewrite_mode", c_uint32),
        ("doublewrite_batch_pages", c_uint32),
        ("doublewrite_max_page_size", c_uint32),
        ("numa_node", c_int32),
        ("reserved0", c_uint32),
        ("verify", VERIFY_FN),
        ("verify_arg", c_void_p),
        ("data_root", c_char_p),
        ("unapplied", UNAPPLIED_FN),
        ("unapplied_arg", c_void_p),
        ("instance", c_char_p),
        ("doublewrite_store_bytes", c_uint64),
        ("write_behind_bytes", c_uint64),
        ("reserved", c_uint64 * 3),
    ]


class RecoveryReport(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("reserved0", c_uint32),
        ("ring_bytes_scanned", c_uint64),
        ("batches_scanned", c_uint64),
        ("batches_valid", c_uint64),
        ("batches_torn", c_uint64),
        ("pages_checked", c_uint64),
        ("pages_restored", c_uint64),
        ("pages_verified_intact", c_uint64),
        ("pages_unrecoverable", c_uint64),
        ("files_missing", c_uint64),
        ("unknown_file_ids", c_uint64),
        ("pages_unapplied", c_uint64),
        ("pages_discarded", c_uint64),
        ("batches_discarded", c_uint64),
        ("headers_repaired", c_uint64),
        ("pages_fenced", c_uint64),
    ]


# The raw statx mirror: declared only under ATOMIO_EXPERIMENTAL, at the end of atomio_caps,
# so that a caller without it passes the smaller size and gets the stable part alone. This
# module mirrors the experimental layout and always passes the full size; the fields are
# zero when a library reports no such tail (and statx_mask says which of them the kernel
# filled).
CAPS_STATX_FIELDS = [
    ("statx_mask", c_uint32),
    ("dio_mem_align", c_uint32),
    ("statx_attributes", c_uint64),
    ("dio_offset_align", c_uint32),
    ("dio_read_offset_align", c_uint32),
    ("unit_min", c_uint32),
    ("unit_max", c_uint32),
    ("segments_max", c_uint32),
    ("unit_max_opt", c_uint32),
]


class Caps(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("valid", c_uint32),
        ("page_size", c_uint32),
        ("sys_page_size", c_uint32),
        ("fs_block_size", c_uint32),
        ("dev_major", c_uint32),
        ("dev_minor", c_uint32),
        ("hw_unit_max", c_uint32),
        ("hw_sysfs_err", c_int32),
        ("direct_atomic", c_uint32),
        ("buffered_atomic", c_uint32),
        ("buffered_probe_err", c_int32),
        ("page_order", c_uint32),
        ("fs_min_order", c_uint32),
        ("fs_type", c_uint64),
        ("auto_path", c_uint32),
        ("folio_ok", c_uint32),
        ("reason_direct", c_char * REASON_LEN),
        ("reason_buffered", c_char * REASON_LEN),
        ("reason_doublewrite", c_char * REASON_LEN),
        ("reason_auto", c_char * REASON_LEN),
    ] + CAPS_STATX_FIELDS


class FileOpts(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("page_size", c_uint32),
        ("io_style", c_uint32),
        ("path", c_uint32),
        ("policy", c_uint32),
        ("file_id", c_uint64),
        ("mode", c_uint32),
        ("reserved0", c_uint32),
        ("reserved", c_uint64 * 4),
    ]


class FileInfo(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("path", c_uint32),
        ("torn_write_safe", c_uint32),
        ("state", c_uint32),
        ("page_size", c_uint32),
        ("io_style", c_uint32),
        ("policy", c_uint32),
        ("submitter", c_uint32),
        ("uring_fallback", c_uint32),
        ("downgrades", c_uint32),
        ("o_direct", c_uint32),
        ("direct_atomic", c_uint32),
        ("file_id", c_uint64),
        ("calib_atomic_ns", c_uint64),
        ("calib_doublewrite_ns", c_uint64),
        ("reason", c_char * REASON_LEN),
        ("reject_direct", c_char * REASON_LEN),
        ("reject_buffered", c_char * REASON_LEN),
        ("reject_doublewrite", c_char * REASON_LEN),
    ]


class PageWrite(Structure):
    _fields_ = [
        ("file", c_void_p),
        ("page_no", c_uint64),
        ("page", c_void_p),
        ("result", c_int32),
        ("reserved0", c_uint32),
    ]


class Stats(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("reserved0", c_uint32),
        ("pages", c_uint64 * STATS_PATHS),
        ("bytes_data", c_uint64),
        ("bytes_doublewrite", c_uint64),
        ("syncs", c_uint64),
        ("batches", c_uint64),
        ("downgrades", c_uint64),
        ("short_writes", c_uint64),
        ("failed_syncs", c_uint64),
        ("recovered_pages", c_uint64),
        ("uring_fallbacks", c_uint64),
        ("lat_hist", c_uint64 * LAT_BUCKETS),
        ("bounce_copies", c_uint64),
        ("forced_syncs", c_uint64),
        ("group_commits", c_uint64),
        ("group_records", c_uint64),
        ("store_bytes", c_uint64),
        ("store_bytes_used", c_uint64),
        ("attached", c_uint64),
        ("pages_staged", c_uint64),
        ("staged_reads", c_uint64),
        ("staged_now", c_uint64),
    ]


STRUCTS = {
    "atomio_ctx_opts": CtxOpts,
    "atomio_recovery_report": RecoveryReport,
    "atomio_caps": Caps,
    "atomio_file_opts": FileOpts,
    "atomio_file_info": FileInfo,
    "atomio_page_write": PageWrite,
    "atomio_stats": Stats,
}


def sized(cls):
    """A zeroed instance of a size-versioned struct with its size field set."""
    s = cls()
    s.size = ctypes.sizeof(cls)
    return s


# --- prototypes: (name, restype, argtypes) -------------------------------------------------
_P = c_void_p  # opaque handles travel as void *
PROTOTYPES = [
    ("atomio_version_number", c_uint, []),
    ("atomio_version_string", c_char_p, []),
    ("atomio_strerror", c_char_p, [c_int]),
    ("atomio_err_name", c_char_p, [c_int]),
    ("atomio_ctx_opts_init", None, [POINTER(CtxOpts)]),
    ("atomio_ctx_open", c_int, [POINTER(CtxOpts), POINTER(_P)]),
    ("atomio_ctx_close", c_int, [_P]),
    ("atomio_ctx_recover", c_int, [_P, POINTER(RecoveryReport)]),
    ("atomio_ctx_remap_file", c_int, [_P, c_uint64, c_char_p]),
    ("atomio_ctx_discard_file", c_int, [_P, c_uint64]),
    ("atomio_ctx_fence_dir", c_int, [_P, c_char_p]),
    ("atomio_store_reset", c_int, [c_char_p, POINTER(RecoveryReport)]),
    ("atomio_last_reason", c_char_p, []),
    ("atomio_probe", c_int, [c_char_p, c_uint32, POINTER(Caps)]),
    ("atomio_file_opts_init", None, [POINTER(FileOpts)]),
    ("atomio_file_open", c_int, [_P, c_char_p, POINTER(FileOpts), POINTER(_P)]),
    ("atomio_file_close", c_int, [_P]),
    ("atomio_file_get_info", c_int, [_P, POINTER(FileInfo)]),
    ("atomio_file_get_caps", c_int, [_P, POINTER(Caps)]),
    ("atomio_file_fence", c_int, [_P]),
    ("atomio_page_alloc", c_void_p, [_P, c_uint32, c_size_t]),
    ("atomio_page_free", None, [_P, c_void_p, c_uint32, c_size_t]),
    ("atomio_write", c_int, [_P, c_uint64, c_void_p, c_uint32]),
    ("atomio_write_batch", c_int, [_P, POINTER(PageWrite), c_size_t, c_uint32]),
    ("atomio_read", c_int, [_P, c_uint64, c_void_p]),
    ("atomio_sync", c_int, [_P]),
    ("atomio_ctx_sync", c_int, [_P]),
    ("atomio_ctx_flush", c_int, [_P]),
    ("atomio_ctx_get_stats", c_int, [_P, POINTER(Stats)]),
    ("atomio_file_get_stats", c_int, [_P, POINTER(Stats)]),
    ("atomio_path_name", c_char_p, [c_uint32]),
    ("atomio_io_style_name", c_char_p, [c_uint32]),
    ("atomio_policy_name", c_char_p, [c_uint32]),
    ("atomio_submitter_name", c_char_p, [c_uint32]),
]


# --- finding the library -------------------------------------------------------------------
class LibraryNotFound(ImportError):
    """No libatomio could be loaded; the message lists every place that was tried."""


def _source_root():
    """The source tree this package sits in (bindings/python/atomio -> root), if any."""
    here = _FsPath(__file__).resolve().parent
    for d in here.parents:
        if (d / "include" / "atomio.h").is_file() and (d / "libatomio").is_dir():
            return d
    return None


def _candidates():
    """Where to look, in order: ATOMIO_LIBRARY, the build tree, the system path."""
    out = []
    env = os.environ.get("ATOMIO_LIBRARY")
    if env:
        p = _FsPath(env)
        if p.is_dir():
            out.append(("ATOMIO_LIBRARY", p / "libatomio.so"))
        else:
            out.append(("ATOMIO_LIBRARY", p))
        # An explicit choice is final: falling back would test some other library silently.
        return out
    root = _source_root()
    if root is not None:
        out.append(("build tree", root / "build" / "libatomio" / "libatomio.so"))
    found = ctypes.util.find_library("atomio")
    if found:
        out.append(("system path", found))
    out.append(("system path", f"libatomio.so.{VERSION_MAJOR}"))
    return out


class _Loaded:
    def __init__(self, cdll, where, how):
        self.cdll = cdll
        self.where = where
        self.how = how
        self.missing = []
        for name, res, args in PROTOTYPES:
            fn = getattr(cdll, name, None)
            if fn is None:
                self.missing.append(name)
                continue
            fn.restype = res
            fn.argtypes = args
            setattr(self, name, fn)

    def __getattr__(self, name):
        # Only reached for prototypes the loaded library does not export.
        if name.startswith("atomio_"):
            raise NotImplementedError(f"{self.where} does not export {name} (an older build?)")
        raise AttributeError(name)


def incompatible(number: int):
    """Why a library reporting atomio_version_number() == number cannot back this module
    (None if it can). The same major is needed, and before 1.0 the same minor too: 0.x
    releases change the ABI (0.2 moved atomio_stats and atomio_caps fields) under one
    soname, so a 0.1 library must not be read through 0.2's structs."""
    major, minor = number // 10000, number // 100 % 100
    if major != VERSION_MAJOR:
        return f"major version {major}, need {VERSION_MAJOR}"
    if major == 0 and minor != VERSION_MINOR:
        return f"version 0.{minor}, need 0.{VERSION_MINOR} (0.x minors differ in ABI)"
    return None


_lock = threading.Lock()
_loaded = None


def lib():
    """The loaded library (loaded on first use), with prototypes set."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        tried = []
        for how, cand in _candidates():
            if isinstance(cand, _FsPath) and not cand.exists():
                tried.append(f"{how}: {cand} (missing)")
                continue
            try:
                cdll = ctypes.CDLL(str(cand))
            except OSError as e:
                tried.append(f"{how}: {cand} ({e})")
                continue
            why = incompatible(cdll.atomio_version_number())
            if why:
                tried.append(f"{how}: {cand} ({why})")
                continue
            _loaded = _Loaded(cdll, str(cand), how)
            return _loaded
        raise LibraryNotFound(
            "libatomio not found; set ATOMIO_LIBRARY to the .so. Tried: " + "; ".join(tried)
        )
