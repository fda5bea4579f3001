# SPDX-License-Identifier: MIT
"""Checks shared by the temp-dir (unit) and XFS (fs) tests: open a ctx fit for a path, and the
write/read round trip every available path must pass."""

import os
import random

import pytest

import atomio
from atomio import Error, Path

# Paths a round trip is attempted on. New paths are enum values: add them to atomio.Path and
# they are covered here, with a skip that names the library's reason when a file cannot take them.
ROUND_TRIP_PATHS = [Path.UNSAFE, Path.DIRECT_ATOMIC, Path.BUFFERED_ATOMIC, Path.DOUBLEWRITE,
                    Path.AUTO]

# Results that mean "this file or this build cannot do that path" rather than a bug.
UNAVAILABLE = (atomio._lib.E_PATH_UNSUPPORTED, atomio._lib.E_NO_DOUBLEWRITE,
               atomio._lib.E_FOLIO_ORDER)


def page(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def open_ctx(base, path, submitter=atomio.Submitter.AUTO, policy=atomio.Policy.DEFAULT):
    """A ctx able to serve `path`: with a doublewrite store for DOUBLEWRITE and AUTO (which may
    choose it), without one otherwise. When this build has no store, DOUBLEWRITE is skipped
    with the library's words and AUTO goes on without a store (then it never picks
    DOUBLEWRITE)."""
    if path in (Path.DOUBLEWRITE, Path.AUTO):
        store = os.path.join(base, "dblwr")
        # Created here: the library may insist the directory exists (a missing store
        # directory can mean a deleted store, whose copies recovery would need).
        os.makedirs(store, exist_ok=True)
        try:
            return atomio.Ctx(store, submitter=submitter, policy=policy)
        except Error as e:
            if e.code not in UNAVAILABLE:
                raise
            if path == Path.DOUBLEWRITE:
                pytest.skip(f"DOUBLEWRITE: no doublewrite store in this build: {e}")
            print(f"AUTO without a store (this build has none: {e.name})")
    return atomio.Ctx(None, submitter=submitter, policy=policy)


def probe_verdict(caps, path):
    reasons = {Path.DIRECT_ATOMIC: caps.reason_direct, Path.BUFFERED_ATOMIC:
               caps.reason_buffered, Path.DOUBLEWRITE: caps.reason_doublewrite}
    return caps.can(path), reasons.get(path, caps.reason_auto)


def round_trip(base, path, page_size=4096, submitter=atomio.Submitter.AUTO, npages=6):
    """Write npages pages through `path` (bytes, bytearray, a PageBuffer page, a batch), read
    them back through the same and a fresh handle, and check info and the stats counters.

    When the file cannot take `path` the library must say so at open with an
    "unavailable" code, consistently with the probe; then the round trip is skipped with the
    reason printed."""
    fname = os.path.join(base, f"rt-{path.name.lower()}-{int(submitter)}-{page_size}")
    open(fname, "wb").close()  # probe needs an existing file
    caps = atomio.probe(fname, page_size)
    can, reason = probe_verdict(caps, path)
    with open_ctx(base, path, submitter) as ctx:
        try:
            f = ctx.open_file(fname, page_size, path=path)
        except Error as e:
            if e.code not in UNAVAILABLE:
                raise
            assert can is not True, f"probe says {path.name} works ({reason}) but open: {e}"
            pytest.skip(f"{path.name} unavailable here: {e}; probe: {reason}")
        with f:
            if can is False and path != Path.AUTO:
                pytest.fail(f"probe says no to {path.name} ({reason}) but open succeeded")
            info = f.info()
            if path == Path.AUTO:
                assert info.path not in (Path.AUTO, Path.UNSAFE), info
            else:
                assert info.path == path, info
            assert info.torn_write_safe == (info.path != Path.UNSAFE)
            assert info.state == atomio.State.OK
            assert info.page_size == page_size
            if submitter == atomio.Submitter.URING:
                # io_uring, or a visible fallback when this build or kernel has none.
                assert info.submitter == atomio.Submitter.URING or info.uring_fallback, info
            elif submitter == atomio.Submitter.SYNC:
                assert info.submitter == atomio.Submitter.SYNC, info
            chosen = info.path

            want = {n: page(1000 * int(path) + n, page_size) for n in range(npages)}
            # Three kinds of source buffer: bytes (copied), bytearray, and a library buffer
            # passed in place.
            f.write(0, want[0])
            f.write(1, bytearray(want[1]))
            with ctx.page_alloc(page_size, 1) as buf:
                buf.view[:] = want[2]
                f.write(2, buf)
                f.write(3, memoryview(want[3]), dsync=True)
            batch = [(n, want[n]) for n in range(4, npages)]
            assert f.write_batch(batch) == len(batch)
            # A page written twice reads back as its last content.
            want[0] = page(77, page_size)
            f.write(0, want[0])
            writes = npages + 1
            f.sync()

            for n in range(npages):
                assert f.read(n) == want[n], f"page {n} differs after {chosen.name} write"
            assert f.read(npages + 10) == bytes(page_size), "page beyond EOF must read zeros"
            with ctx.page_alloc(page_size, 1) as buf:
                f.read_into(1, buf)
                assert bytes(buf.view) == want[1]

            st = f.stats()
            assert st.pages[chosen] == writes, st
            assert st.pages_total == writes, st
            assert st.bytes_data >= writes * page_size, st
            assert st.syncs >= 1, st
            assert sum(st.lat_hist) == writes, st
            cst = ctx.stats()
            assert cst.pages[chosen] >= writes, cst

        # A fresh handle sees the same bytes.
        with ctx.open_file(fname, page_size, path=path, create=False) as g:
            for n in range(npages):
                assert g.read(n) == want[n], f"page {n} differs on reopen"
    return chosen
