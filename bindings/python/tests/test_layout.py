# SPDX-License-Identifier: MIT
"""The hand-written ctypes mirror against the C compiler's layout of atomio.h.

The numbers come from bindings/layout/atomio_layout.c, built by CMake (ATOMIO_LAYOUT_LIBRARY
names it) or, when run by hand, compiled here with cc against the tree's header."""

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import atomio
from atomio import _lib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent


class _Field(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("field", ctypes.c_char_p),
                ("offset", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class _Const(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_int64)]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    so = os.environ.get("ATOMIO_LAYOUT_LIBRARY")
    if not so:
        cc = shutil.which("cc") or shutil.which("gcc")
        src = ROOT / "bindings" / "layout" / "atomio_layout.c"
        if cc is None or not src.exists():
            pytest.skip("layout check skipped: no ATOMIO_LAYOUT_LIBRARY, no cc or no source")
        so = str(tmp_path_factory.mktemp("layout") / "libatomio_layout.so")
        # The helper (and this mirror) describe the ATOMIO_EXPERIMENTAL layout, as CMake builds it.
        subprocess.run([cc, "-shared", "-fPIC", "-DATOMIO_EXPERIMENTAL",
                        "-I", str(ROOT / "include"), str(src), "-o", so], check=True)
    dll = ctypes.CDLL(so)
    for name, T in (("atomio_layout_fields", _Field), ("atomio_layout_consts", _Const)):
        getattr(dll, name).restype = ctypes.POINTER(T)
        getattr(dll, name).argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    n = ctypes.c_size_t()
    fp = dll.atomio_layout_fields(ctypes.byref(n))
    fields = [(fp[i].type.decode(), fp[i].field.decode(), fp[i].offset, fp[i].size)
              for i in range(n.value)]
    cp = dll.atomio_layout_consts(ctypes.byref(n))
    consts = {cp[i].name.decode(): cp[i].value for i in range(n.value)}
    return fields, consts


def test_struct_sizes_and_offsets(layout):
    fields, _ = layout
    seen = {}
    for tname, fname, off, size in fields:
        T = _lib.STRUCTS[tname]
        if fname == "":
            assert ctypes.sizeof(T) == size, f"sizeof({tname})"
            continue
        desc = getattr(T, fname, None)
        assert desc is not None, f"{tname}.{fname} missing in the ctypes mirror"
        assert (desc.offset, desc.size) == (off, size), f"{tname}.{fname}"
        seen.setdefault(tname, set()).add(fname)
    for tname, T in _lib.STRUCTS.items():
        mirrored = {f[0] for f in T._fields_}
        assert mirrored == seen[tname], f"{tname}: fields differ from the C helper's list"


def test_helper_fields_tile_each_struct(layout):
    """The helper's field list is written by hand too: a field left out of it would be left out
    of the comparison above as well. So the listed fields, each at the next offset its
    alignment allows, must cover each struct exactly; a field missing from the list is a gap."""
    fields, _ = layout
    by_struct = {}
    for tname, fname, off, size in fields:
        by_struct.setdefault(tname, []).append((off, size, fname))
    assert set(by_struct) == set(_lib.STRUCTS)
    for tname, entries in by_struct.items():
        T = _lib.STRUCTS[tname]
        types = dict(T._fields_)
        end = 0
        for off, size, fname in sorted(e for e in entries if e[2]):
            align = ctypes.alignment(types[fname])
            want = -(-end // align) * align
            assert off == want, f"{tname}: {fname} at {off}, expected {want}: a field is missing"
            end = off + size
        total = [size for off, size, fname in entries if not fname][0]
        align = ctypes.alignment(T)
        assert total == -(-end // align) * align, f"{tname}: fields end at {end} of {total}"


def test_caps_statx_tail_is_last(layout):
    """The experimental statx mirror is the end of atomio_caps: everything before it is the
    stable layout a caller without ATOMIO_EXPERIMENTAL gets."""
    fields, _ = layout
    caps = {f: (off, size) for t, f, off, size in fields if t == "atomio_caps"}
    tail = [f for f, _ in _lib.CAPS_STATX_FIELDS]
    first = min(caps[f][0] for f in tail)
    assert all(caps[f][0] < first for f in caps if f and f not in tail)
    assert [f for f, _ in _lib.Caps._fields_][-len(tail):] == tail


def test_constants(layout):
    _, consts = layout
    for name, value in consts.items():
        attr = name[len("ATOMIO_"):]
        assert getattr(_lib, attr) == value, name
    # The other way round: every integer constant of the mirror is one the header still has
    # (a constant the header dropped, such as a count of paths, must go from here too).
    mine = {n for n, v in vars(_lib).items()
            if n.isupper() and isinstance(v, int) and not isinstance(v, bool)}
    assert mine - {n[len("ATOMIO_"):] for n in consts} == set()
    # The known paths are the header's paths, and all fit the fixed room of atomio_stats.
    assert sorted(_lib.PATHS) == sorted(v for n, v in consts.items()
                                        if n.startswith("ATOMIO_PATH_"))
    assert len(_lib.PATHS) <= consts["ATOMIO_STATS_PATHS"] == len(_lib.Stats().pages)
    # The write flags the binding passes are in the C helper's list (the loop above only sees
    # constants the helper names).
    assert consts["ATOMIO_WRITE_DSYNC"] == _lib.WRITE_DSYNC
    assert consts["ATOMIO_WRITE_STABLE_PAGES"] == _lib.WRITE_STABLE_PAGES == 0x2
    # The friendly enums carry the same values.
    for e in atomio.Path:
        assert consts[f"ATOMIO_PATH_{e.name}"] == e.value
    for e in atomio.Submitter:
        assert consts[f"ATOMIO_SUBMIT_{e.name}"] == e.value
    for e in atomio.IoStyle:
        assert consts[f"ATOMIO_IO_{e.name}"] == e.value
    for e in atomio.Policy:
        assert consts[f"ATOMIO_POLICY_{e.name}"] == e.value
    for e in atomio.State:
        assert consts[f"ATOMIO_STATE_{e.name}"] == e.value
    for e in atomio.DirectAtomic:
        assert consts[f"ATOMIO_ATOMIC_{e.name}"] == e.value
    for e in atomio.DoublewriteMode:
        assert consts[f"ATOMIO_DOUBLEWRITE_{e.name}"] == e.value
    assert {n for n in consts if n.startswith("ATOMIO_DOUBLEWRITE_")} == \
        {f"ATOMIO_DOUBLEWRITE_{e.name}" for e in atomio.DoublewriteMode}
