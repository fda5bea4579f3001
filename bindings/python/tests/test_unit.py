# SPDX-License-Identifier: MIT
"""The Python binding against the built library on a private temp dir (no root needed)."""

import ctypes
import os
import pickle

import pytest

import _checks
import atomio
from atomio import Error, Path

PS = 4096


def test_version_matches_header():
    v = atomio.version()
    assert v == "%d.%d.%d" % (atomio._lib.VERSION_MAJOR, atomio._lib.VERSION_MINOR,
                             atomio._lib.VERSION_PATCH)
    assert atomio._lib.lib().atomio_version_number() // 10000 == atomio._lib.VERSION_MAJOR
    assert atomio._lib.incompatible(atomio._lib.lib().atomio_version_number()) is None


def test_library_version_check():
    """Before 1.0 a different minor is a different ABI (0.2 moved fields): refused."""
    ok = atomio._lib.VERSION_MAJOR * 10000 + atomio._lib.VERSION_MINOR * 100
    assert atomio._lib.incompatible(ok) is None
    assert atomio._lib.incompatible(ok + 7) is None  # a patch release
    assert "0.1" in atomio._lib.incompatible(100)
    assert "0.3" in atomio._lib.incompatible(300)
    assert "major version 1" in atomio._lib.incompatible(10200)


def test_error_carries_code_name_and_message():
    e = Error(atomio._lib.E_CLOSED)
    assert isinstance(e, atomio.ClosedError)
    assert e.code == -5009 and e.name == "ATOMIO_E_CLOSED"
    assert e.message == atomio.strerror(-5009) and e.message
    assert e.errno is None
    assert "ATOMIO_E_CLOSED" in str(e)
    assert isinstance(Error(atomio._lib.E_SHORT_WRITE), atomio.ShortWriteError)
    assert isinstance(Error(atomio._lib.E_FAILED), atomio.FileFailedError)
    assert isinstance(Error(atomio._lib.E_PATH_UNSUPPORTED), atomio.PathUnsupportedError)
    assert type(Error(atomio._lib.E_INVAL)) is Error
    eio = Error(-5)
    assert eio.name == "EIO" and eio.errno == 5
    # Errors survive pickling (multiprocessing workers report them).
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is atomio.ClosedError and again.code == e.code


def test_every_code_has_a_name():
    codes = {n: v for n, v in vars(atomio._lib).items() if n.startswith("E_")}
    # The binding's codes run without a gap from ATOMIO_E_INVAL down (the header has no
    # end marker any more, so a code missing here would not show otherwise).
    assert sorted(codes.values()) == list(range(min(codes.values()), atomio._lib.E_INVAL + 1))
    assert codes["E_UNAPPLIED"] == -5022
    for name, code in codes.items():
        assert atomio.err_name(code) == "ATOMIO_" + name, code
        assert atomio.strerror(code) != atomio.strerror(1 << 20), code


def test_enum_names_match_library():
    lib = atomio._lib.lib()
    for p in Path:
        assert lib.atomio_path_name(p).decode() == p.name
    for s in atomio.Submitter:
        assert lib.atomio_submitter_name(s).decode() == s.name
    for s in atomio.IoStyle:
        assert lib.atomio_io_style_name(s).decode() == s.name
    for s in atomio.Policy:
        assert lib.atomio_policy_name(s).decode() == s.name


def test_probe_temp_dir(scratch):
    fname = scratch / "probe"
    fname.write_bytes(b"")
    caps = atomio.probe(fname, PS)
    assert caps.page_size == PS
    assert caps.sys_page_size == os.sysconf("SC_PAGESIZE")
    assert caps.valid & atomio._lib.CAPS_VERDICTS
    assert caps.reason_direct and caps.reason_buffered and caps.reason_auto
    # The experimental statx tail is filled: the binding passes the size that covers it.
    assert caps.valid & atomio._lib.CAPS_STATX and caps.statx.statx_mask != 0, caps.statx
    assert caps.auto_path in (Path.DIRECT_ATOMIC, Path.BUFFERED_ATOMIC, Path.DOUBLEWRITE)
    assert fname.stat().st_size == 0, "probe must never write the file"
    # A directory probes its filesystem.
    assert atomio.probe(scratch, PS).fs_type == caps.fs_type


@pytest.mark.parametrize("bad", [0, 1000, 256, 3 << 12, 2 << 20])
def test_bad_page_size(scratch, bad):
    fname = scratch / "f"
    fname.write_bytes(b"")
    with pytest.raises(Error) as ei:
        atomio.probe(fname, bad)
    assert ei.value.code == atomio._lib.E_PAGE_SIZE and ei.value.name == "ATOMIO_E_PAGE_SIZE"
    with atomio.Ctx() as ctx:
        with pytest.raises(Error) as ei:
            ctx.open_file(fname, bad, path=Path.UNSAFE)
        assert ei.value.code == atomio._lib.E_PAGE_SIZE
        with pytest.raises(Error) as ei:
            ctx.page_alloc(bad)
        assert ei.value.code == atomio._lib.E_PAGE_SIZE


def test_probe_missing_file(scratch):
    with pytest.raises(Error) as ei:
        atomio.probe(scratch / "nope", PS)
    assert ei.value.name == "ENOENT" and ei.value.errno == 2


def test_wrong_length_write_is_refused(scratch):
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "f", PS, path=Path.UNSAFE) as f:
        for n in (0, PS - 1, PS + 1, 2 * PS):
            with pytest.raises(Error) as ei:
                f.write(0, bytes(n))
            assert ei.value.code == atomio._lib.E_PAGE_SIZE
        assert f.stats().pages_total == 0


def test_closed_file(scratch):
    with atomio.Ctx() as ctx:
        f = ctx.open_file(scratch / "f", PS, path=Path.UNSAFE)
        f.write(0, bytes(PS))
        f.close()
        f.close()  # idempotent
        assert f.closed
        for call in (lambda: f.write(0, bytes(PS)), lambda: f.read(0), f.sync, f.info,
                     f.stats, lambda: f.write_batch([(0, bytes(PS))])):
            with pytest.raises(atomio.ClosedError) as ei:
                call()
            assert ei.value.code == atomio._lib.E_CLOSED and ei.value.name == "ATOMIO_E_CLOSED"
        # The ctx still counts the closed file's write.
        assert ctx.stats().pages[Path.UNSAFE] == 1
    with pytest.raises(atomio.ClosedError):
        ctx.stats()
    with pytest.raises(atomio.ClosedError):
        ctx.open_file(scratch / "g", PS)


def test_ctx_close_closes_files(scratch):
    ctx = atomio.Ctx()
    f = ctx.open_file(scratch / "f", PS, path=Path.UNSAFE)
    ctx.close()
    assert f.closed
    with pytest.raises(atomio.ClosedError):
        f.write(0, bytes(PS))


def test_read_only_file(scratch):
    (scratch / "ro").write_bytes(bytes(PS))
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "ro", PS, path=Path.UNSAFE,
                                            read_only=True, create=False) as f:
        with pytest.raises(Error) as ei:
            f.write(0, bytes(PS))
        assert ei.value.name == "ATOMIO_E_READ_ONLY"
        assert f.read(0) == bytes(PS)


def test_page_buffer_is_aligned_memoryview():
    with atomio.Ctx() as ctx:
        buf = ctx.page_alloc(16384, 3)
        assert len(buf) == 3 * 16384 and buf.view.nbytes == 3 * 16384
        assert buf.address % 16384 == 0
        assert not buf.view.readonly
        buf.page(2)[:4] = b"abcd"
        assert bytes(buf.view[2 * 16384:2 * 16384 + 4]) == b"abcd"
        with pytest.raises(IndexError):
            buf.page(3)
        # A live slice keeps the memory: free() refuses rather than leave it dangling.
        s = buf.page(1)
        with pytest.raises(BufferError):
            buf.free()
        assert buf.view.nbytes == 3 * 16384  # still usable
        del s
        buf.free()
        buf.free()
        with pytest.raises(atomio.ClosedError):
            buf.view


def test_batch_reports_per_entry_errors(scratch):
    (scratch / "b").write_bytes(b"")
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "a", PS, path=Path.UNSAFE) as a, \
            ctx.open_file(scratch / "b", PS, path=Path.UNSAFE, read_only=True) as b:
        assert ctx.write_batch([(a, 0, bytes(PS)), (a, 1, b"\1" * PS)]) == 2
        with pytest.raises(atomio.BatchError) as ei:
            ctx.write_batch([(a, 2, b"\2" * PS), (b, 0, bytes(PS)), (a, 3, b"\3" * PS)])
        e = ei.value
        assert e.written == 2 and e.results[0] == 0 and e.results[2] == 0
        assert e.results[1] == atomio._lib.E_READ_ONLY and e.code == e.results[1]
        assert e.errors[1].name == "ATOMIO_E_READ_ONLY" and e.errors[0] is None
        assert a.read(3) == b"\3" * PS
        assert a.stats().pages[Path.UNSAFE] == 4
        with atomio.Ctx() as other:
            with pytest.raises(Error) as ei:
                other.write_batch([(a, 9, bytes(PS))])
            assert ei.value.code == atomio._lib.E_INVAL


def test_stats_count_writes(scratch):
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "f", PS, path=Path.UNSAFE) as f:
        before = ctx.stats()
        for n in range(5):
            f.write(n, bytes([n]) * PS)
        f.write_batch([(5, bytes(PS)), (6, bytes(PS))])
        f.sync()
        st = f.stats()
        assert st.pages[Path.UNSAFE] == 7 and st.pages_total == 7
        assert st.bytes_data == 7 * PS
        assert st.bytes_doublewrite == 0 and st.short_writes == 0 and st.failed_syncs == 0
        assert st.syncs >= 1
        after = ctx.stats()
        assert after.pages[Path.UNSAFE] - before.pages[Path.UNSAFE] == 7
        # Every known path is a key, nothing else (no other slot of the fixed array counted).
        assert set(st.pages) == set(Path)


def test_stats_pages_of_a_newer_path():
    """atomio_stats.pages has ATOMIO_STATS_PATHS slots; a slot past the paths this module
    knows shows up as an int key once it counts pages, and is never dropped from the total."""
    raw = (ctypes.c_uint64 * atomio._lib.STATS_PATHS)()
    raw[Path.UNSAFE] = 2
    raw[atomio._lib.STATS_PATHS - 1] = 5
    pages = atomio._pages(raw)
    assert pages[Path.UNSAFE] == 2 and pages[atomio._lib.STATS_PATHS - 1] == 5
    assert len(pages) == len(Path) + 1
    assert sum(pages.values()) == 7


@pytest.mark.parametrize("path", _checks.ROUND_TRIP_PATHS, ids=lambda p: p.name)
def test_round_trip_temp_dir(scratch, path):
    _checks.round_trip(str(scratch), path)


@pytest.mark.parametrize("submitter", [atomio.Submitter.SYNC, atomio.Submitter.URING],
                         ids=lambda s: s.name)
def test_stable_pages_doublewrite(scratch, submitter):
    """ATOMIO_WRITE_STABLE_PAGES on DOUBLEWRITE: aligned library pages go to the store and in
    place without a copy (io_uring also splits the store write); bytes are bounce-copied by
    the binding. Everything reads back, also through a fresh ctx."""
    ctx = _checks.open_ctx(str(scratch), Path.DOUBLEWRITE, submitter=submitter)
    fname = scratch / "data"
    want = {n: _checks.page(500 + n, PS) for n in range(8)}
    with ctx:
        try:
            f = ctx.open_file(fname, PS, path=Path.DOUBLEWRITE)
        except Error as e:
            if e.code in _checks.UNAVAILABLE:
                pytest.skip(f"DOUBLEWRITE unavailable here: {e}")
            raise
        with f:
            with ctx.page_alloc(PS, 4) as buf:
                for k in range(4):
                    buf.page(k)[:] = want[k]
                f.write(0, buf.page(0), stable_pages=True)
                f.write(1, want[1], stable_pages=True, dsync=True)  # copied by the binding
                assert f.write_batch([(n, buf.page(n)) for n in (2, 3)], stable_pages=True) == 2
                # In-place pages and bounce-copied ones in one batch.
                buf.page(0)[:] = want[4]
                buf.page(1)[:] = want[5]
                assert ctx.write_batch([(f, 4, buf.page(0)), (f, 5, buf.page(1)),
                                        (f, 6, want[6]), (f, 7, bytearray(want[7]))],
                                       stable_pages=True, dsync=True) == 4
            f.sync()
            st = f.stats()
            assert st.pages[Path.DOUBLEWRITE] == 8
            assert st.bytes_doublewrite >= 8 * PS
            for n, data in want.items():
                assert f.read(n) == data, n
    with atomio.Ctx(scratch / "dblwr") as ctx2, ctx2.open_file(fname, PS, create=False) as f:
        for n, data in want.items():
            assert f.read(n) == data, n


def test_recover_without_store_is_an_error():
    with atomio.Ctx() as ctx:
        with pytest.raises(Error) as ei:
            ctx.recover()
        assert ei.value.name == "ATOMIO_E_NO_DOUBLEWRITE"
        assert ei.value.report.pages_restored == 0


def test_recover_with_store(scratch):
    (scratch / "dblwr").mkdir()
    try:
        ctx = atomio.Ctx(scratch / "dblwr")
    except Error as e:
        if e.code in _checks.UNAVAILABLE:
            pytest.skip(f"no doublewrite store in this build: {e}")
        raise
    with ctx:
        r = ctx.recover()
        assert r.pages_unrecoverable == 0 and r.batches_torn == 0
        assert (r.pages_unapplied, r.pages_discarded, r.batches_discarded) == (0, 0, 0), r
        assert r.pages_fenced == 0, r
        r2 = ctx.recover()  # idempotent
        assert r2.pages_restored == 0


def test_data_root_reaches_the_library(scratch, monkeypatch):
    """data_root is passed in atomio_ctx_opts.data_root (NULL when not given), and the
    library takes the 0.2 struct with it set."""
    lib = atomio._lib.lib()
    real = lib.atomio_ctx_open
    seen = []

    def spy(popts, pout):
        o = popts._obj
        seen.append((o.size, o.data_root, o.doublewrite_dir, bool(o.unapplied), o.flags))
        return real(popts, pout)

    monkeypatch.setattr(lib, "atomio_ctx_open", spy)
    root = scratch / "data"
    root.mkdir()
    (scratch / "dblwr").mkdir()
    try:
        ctx = atomio.Ctx(scratch / "dblwr", data_root=root)
    except Error as e:
        if e.code in _checks.UNAVAILABLE:
            pytest.skip(f"no doublewrite store in this build: {e}")
        raise
    with ctx, ctx.open_file(root / "t1", PS, path=Path.DOUBLEWRITE) as f:
        f.write(0, _checks.page(1, PS))
        f.sync()
    with atomio.Ctx():
        pass
    size = ctypes.sizeof(atomio._lib.CtxOpts)
    assert seen[0] == (size, os.fsencode(root), os.fsencode(scratch / "dblwr"), False, 0)
    assert seen[1] == (size, None, None, False, atomio._lib.CTX_NO_DOUBLEWRITE)
    monkeypatch.undo()
    with atomio.Ctx(scratch / "dblwr", data_root=root) as ctx, \
            ctx.open_file(root / "t1", PS, create=False) as f:
        assert f.read(0) == _checks.page(1, PS)


def test_file_is_shared_across_threads(scratch):
    import threading
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "f", PS, path=Path.UNSAFE) as f:
        # bytes sources: they share the file's locked bounce buffer.
        def worker(t):
            for i in range(8):
                n = t * 8 + i
                f.write(n, _checks.page(n, PS))
        ts = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for n in range(32):
            assert f.read(n) == _checks.page(n, PS), n
        assert f.stats().pages[Path.UNSAFE] == 32



def test_recover_after_clean_close(scratch):
    """A clean close leaves nothing to restore: recovery restores nothing. The v2 store moves
    its durable tail lazily, so the records of the last batch may still be there to check;
    the verify callback is then asked about exactly those pages, and a page it calls intact
    stays as it is."""
    store = scratch / "dblwr"
    store.mkdir()
    try:
        ctx = atomio.Ctx(store)
    except Error as e:
        if e.code in _checks.UNAVAILABLE:
            pytest.skip(f"no doublewrite store in this build: {e}")
        raise
    fname = scratch / "data"
    want = {0: _checks.page(5, PS), 1: _checks.page(6, PS)}
    with ctx, ctx.open_file(fname, PS, path=Path.DOUBLEWRITE, file_id=7) as f:
        f.write_batch(list(want.items()))
        f.sync()
        assert f.stats().bytes_doublewrite >= 2 * PS
    seen = []
    with atomio.Ctx(store, recover=False, verify=lambda *a: seen.append(a) or True) as ctx:
        r = ctx.recover()
        assert r.ring_bytes_scanned >= 1, r
        assert (r.pages_restored, r.pages_unrecoverable, r.pages_unapplied) == (0, 0, 0), r
        assert r.pages_verified_intact == r.pages_checked == len(seen), r
        assert ctx.stats().recovered_pages == 0
        with ctx.open_file(fname, PS, create=False) as f:
            assert f.read(1) == want[1]
    assert all(fid == 7 and want[n] == page for fid, n, page in seen), seen


def _lookup(env_value):
    """library_path() (or the LibraryNotFound text) in a fresh interpreter."""
    import subprocess
    import sys
    env = dict(os.environ)
    env.pop("ATOMIO_LIBRARY", None)
    if env_value is not None:
        env["ATOMIO_LIBRARY"] = env_value
    code = ("import atomio\n"
            "try:\n    print(atomio.library_path())\n"
            "except atomio.LibraryNotFound as e:\n    print('NOTFOUND', e)\n")
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(atomio.__file__)))
    r = subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=pkg),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True)
    return r.stdout.strip()


def test_library_lookup_order(tmp_path):
    loaded = atomio._lib.lib().where
    # ATOMIO_LIBRARY wins, as a file or as the directory holding libatomio.so.
    assert _lookup(loaded) == f"{loaded} (ATOMIO_LIBRARY)"
    d = os.path.dirname(loaded)
    if os.path.exists(os.path.join(d, "libatomio.so")):
        assert _lookup(d).endswith("(ATOMIO_LIBRARY)")
    # An explicit choice that does not load is an error, never a silent fallback.
    out = _lookup(str(tmp_path / "nope.so"))
    assert out.startswith("NOTFOUND") and "nope.so" in out
    # Unset: the source tree's build/ first, then the system path.
    root = atomio._lib._source_root()
    built = root / "build" / "libatomio" / "libatomio.so" if root else None
    out = _lookup(None)
    if built is not None and built.exists():
        assert out == f"{built} (build tree)"
    else:
        assert out.startswith("NOTFOUND") or out.endswith("(system path)"), out


# --- the shared doublewrite store (0.2): options, stats, instances, operator calls ----------
MIB = 1 << 20


def _store(scratch, name="dblwr"):
    d = scratch / name
    d.mkdir(exist_ok=True)
    return d


def _store_ctx(store, **kw):
    """Ctx(store, **kw), skipped (with the library's words) when this build has no store."""
    try:
        return atomio.Ctx(store, **kw)
    except Error as e:
        if e.code in _checks.UNAVAILABLE:
            pytest.skip(f"no doublewrite store in this build: {e}")
        raise


def test_store_options_reach_the_c_struct(scratch, monkeypatch):
    """Every ctx option lands in its own atomio_ctx_opts field (NULL / 0 when not given)."""
    lib = atomio._lib.lib()
    real = lib.atomio_ctx_open
    seen = []

    def spy(popts, pout):
        o = popts._obj
        seen.append(dict(mode=o.doublewrite_mode, instance=o.instance,
                         store_bytes=o.doublewrite_store_bytes, unapplied=bool(o.unapplied),
                         write_behind=o.write_behind_bytes, reserved=list(o.reserved)))
        return real(popts, pout)

    monkeypatch.setattr(lib, "atomio_ctx_open", spy)
    store = _store(scratch)
    with _store_ctx(store, doublewrite_mode=atomio.DoublewriteMode.DEFERRED, instance="eng-1",
                    doublewrite_store_bytes=MIB, unapplied=lambda *a: None):
        pass
    with atomio.Ctx():
        pass
    with _store_ctx(store, doublewrite_mode=atomio.DoublewriteMode.WRITE_BEHIND,
                    instance="eng-1", write_behind_bytes=MIB // 4):
        pass
    assert seen[0] == dict(mode=1, instance=b"eng-1", store_bytes=MIB, unapplied=True,
                           write_behind=0, reserved=[0] * 3)
    assert seen[1] == dict(mode=0, instance=None, store_bytes=0, unapplied=False,
                           write_behind=0, reserved=[0] * 3)
    assert seen[2] == dict(mode=2, instance=b"eng-1", store_bytes=0, unapplied=False,
                           write_behind=MIB // 4, reserved=[0] * 3)


def test_store_bytes_and_stats(scratch):
    """doublewrite_store_bytes sizes the store, and the store's counters come back in Stats."""
    store = _store(scratch)
    with _store_ctx(store, doublewrite_store_bytes=MIB) as ctx:
        st = ctx.stats()
        assert (st.store_bytes, st.store_bytes_used, st.attached) == (MIB, 0, 1), st
        with ctx.open_file(scratch / "data", PS, path=Path.DOUBLEWRITE) as f:
            f.write(0, _checks.page(1, PS))
            fst = f.stats()
        st = ctx.stats()
        assert st.group_commits >= 1 and st.group_records >= 1, st
        assert st.forced_syncs == 0, st
        # The store figures are the ctx's; a file reports 0 for them.
        assert (fst.store_bytes, fst.attached) == (0, 0), fst
    # After a reset the store is laid out afresh, at the size the next open asks for.
    atomio.store_reset(store)
    with _store_ctx(store, doublewrite_store_bytes=2 * MIB) as ctx:
        assert ctx.stats().store_bytes == 2 * MIB
    with atomio.Ctx() as ctx:
        assert ctx.stats().store_bytes == 0


def test_doublewrite_mode_reaches_the_library(scratch):
    """SYNC_BATCH releases a batch's copies before the write returns; DEFERRED keeps them
    until a sync covers the in-place write. An unknown mode is refused."""
    store = _store(scratch)
    for mode, held in ((atomio.DoublewriteMode.SYNC_BATCH, False),
                       (atomio.DoublewriteMode.DEFERRED, True)):
        with _store_ctx(store, doublewrite_mode=mode) as ctx, \
                ctx.open_file(scratch / "data", PS, path=Path.DOUBLEWRITE) as f:
            f.write(0, _checks.page(2, PS))
            assert (ctx.stats().store_bytes_used > 0) == held, mode
            f.sync()
            assert ctx.stats().store_bytes_used == 0, mode
    with pytest.raises(Error) as ei:
        atomio.Ctx(store, doublewrite_mode=7)
    assert ei.value.name == "ATOMIO_E_INVAL"


def test_private_store_is_locked_with_a_reason(scratch):
    """A second open of a private instance's store is STORE_LOCKED, and the Error carries
    the library's reason; store_reset() is refused while the store is open."""
    store = _store(scratch)
    with _store_ctx(store):
        for kw in ({}, {"instance": "eng"}):
            with pytest.raises(Error) as ei:
                atomio.Ctx(store, **kw)
            e = ei.value
            assert e.name == "ATOMIO_E_STORE_LOCKED", e
            assert e.reason and e.reason in str(e), e
            assert atomio.last_reason() == e.reason
            again = pickle.loads(pickle.dumps(e))
            assert again.reason == e.reason
        with pytest.raises(Error) as ei:
            atomio.store_reset(store)
        assert ei.value.name == "ATOMIO_E_STORE_LOCKED" and ei.value.reason, ei.value
        assert ei.value.report.batches_discarded == 0
    # Closed: the reset goes through and finds nothing to discard.
    r = atomio.store_reset(store)
    assert (r.batches_discarded, r.pages_discarded) == (0, 0), r
    with _store_ctx(store) as ctx:
        assert ctx.stats().store_bytes > 0


def test_named_instance_is_shared(scratch):
    """Ctxs naming the same instance share the store (another name is refused); a second
    process of the instance counts in stats.attached."""
    import subprocess
    import sys
    store = _store(scratch)
    with _store_ctx(store, instance="eng", doublewrite_store_bytes=MIB) as a:
        assert a.stats().attached == 1
        _with_child_attached(store, "eng", lambda: a.stats().attached == 2)
        assert a.stats().attached == 1
        with atomio.Ctx(store, instance="eng") as b:
            assert b.stats().store_bytes == MIB  # b joined a's store, not a fresh one
            assert b.stats().attached == 1       # attached counts processes, not ctxs
        with pytest.raises(Error) as ei:
            atomio.Ctx(store, instance="other")
        assert ei.value.name == "ATOMIO_E_STORE_LOCKED" and '"eng"' in ei.value.reason


def test_process_stays_attached_while_a_ctx_uses_the_store(scratch):
    """Closing one of two ctxs of a process, or a refused open, must leave the process
    attached while its other ctx still uses the store."""
    store = _store(scratch)
    with _store_ctx(store, instance="eng") as a:
        atomio.Ctx(store, instance="eng").close()
        assert a.stats().attached == 1, "closing a second ctx detached the process"
        with pytest.raises(Error):
            atomio.Ctx(store, instance="other")
        assert a.stats().attached == 1, "a refused open detached the process"
        _with_child_attached(store, "eng", lambda: a.stats().attached == 2)


def _with_child_attached(store, instance, check):
    """Run check() while a child process has the store open as `instance`; the child must
    see two processes attached."""
    import subprocess
    import sys
    child = subprocess.Popen(
        [sys.executable, "-c", _ATTACH_CHILD, os.fsdecode(store), instance],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(atomio.__file__))))
    try:
        assert child.stdout.readline().strip() == "attached 2"
        assert check()
    finally:
        child.communicate("\n", timeout=60)
    assert child.returncode == 0


# Opens the store as the named instance, reports stats.attached, holds it until told.
_ATTACH_CHILD = """
import sys, atomio
with atomio.Ctx(sys.argv[1], instance=sys.argv[2]) as ctx:
    print("attached", ctx.stats().attached, flush=True)
    sys.stdin.readline()
"""

# Writes two pages of file id 42 through DEFERRED copies and dies without a sync or a close,
# leaving both copies live in the store.
_CRASH_CHILD = """
import os, sys, atomio
ctx = atomio.Ctx(sys.argv[1], doublewrite_mode=atomio.DoublewriteMode.DEFERRED)
f = ctx.open_file(sys.argv[2], 4096, path=atomio.Path.DOUBLEWRITE, file_id=42)
f.write(0, b"a" * 4096)
f.write(1, b"b" * 4096)
os._exit(0)
"""


def _crash(store, data):
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c", _CRASH_CHILD, os.fsdecode(store), os.fsdecode(data)],
                   check=True, timeout=60,
                   env=dict(os.environ,
                            PYTHONPATH=os.path.dirname(os.path.dirname(atomio.__file__))))


def test_unapplied_copies_remap_and_discard(scratch):
    """Copies of a file that moved after a crash: the open fails with UNAPPLIED and a reason,
    the unapplied callback names the file, remap_file() lets recovery apply them,
    discard_file() drops them, and store_reset() counts the live records it discards."""
    store = _store(scratch)
    with _store_ctx(store):
        pass
    data = scratch / "data"
    _crash(store, data)
    moved = scratch / "moved"
    os.rename(data, moved)

    seen = []
    with pytest.raises(Error) as ei:
        atomio.Ctx(store, unapplied=lambda *a: seen.append(a))
    assert ei.value.name == "ATOMIO_E_UNAPPLIED" and ei.value.reason, ei.value
    assert seen == [(42, os.fsdecode(data), 2, -2)]

    seen.clear()
    with atomio.Ctx(store, recover=False, unapplied=lambda *a: seen.append(a)) as ctx:
        with pytest.raises(Error) as ei:
            ctx.recover()
        assert ei.value.name == "ATOMIO_E_UNAPPLIED" and ei.value.reason
        assert (ei.value.report.pages_unapplied, ei.value.report.files_missing) == (2, 1)
        assert seen == [(42, os.fsdecode(data), 2, -2)]
        with pytest.raises(Error) as ei:
            ctx.remap_file(0, moved)
        assert ei.value.name == "ATOMIO_E_INVAL"
        ctx.remap_file(42, moved)
        r = ctx.recover()
        assert (r.pages_checked, r.pages_unapplied) == (2, 0), r
        with ctx.open_file(moved, PS, create=False) as f:
            assert f.read(0) == b"a" * PS and f.read(1) == b"b" * PS

    _crash(store, data)
    os.unlink(data)
    with atomio.Ctx(store, recover=False) as ctx:
        ctx.discard_file(42)
        r = ctx.recover()
        assert (r.pages_discarded, r.pages_unapplied) == (2, 0), r

    _crash(store, data)
    r = atomio.store_reset(store)
    assert (r.batches_discarded, r.pages_discarded) == (2, 2), r
    with atomio.Ctx(store) as ctx:
        assert ctx.recover().batches_valid == 0


def test_unapplied_callback_exception_is_reraised(scratch):
    """An exception in the unapplied callback cannot cross the C frames: it is re-raised
    when the call returns, chained to the call's own error."""
    store = _store(scratch)
    with _store_ctx(store):
        pass
    data = scratch / "data"
    _crash(store, data)
    os.unlink(data)

    def boom(*_):
        raise KeyError("from the callback")

    with pytest.raises(KeyError) as ei:
        atomio.Ctx(store, unapplied=boom)
    assert isinstance(ei.value.__cause__, Error)
    assert ei.value.__cause__.name == "ATOMIO_E_UNAPPLIED"
    r = atomio.store_reset(store)
    assert r.pages_discarded == 2, r


def test_reason_is_not_left_over_from_an_earlier_failure(scratch):
    """A failure that sets no reason of its own must not carry the previous one."""
    store = _store(scratch)
    with _store_ctx(store):
        with pytest.raises(Error) as ei:
            atomio.Ctx(store)
        assert ei.value.reason
        with pytest.raises(Error) as ei:
            atomio.store_reset(scratch / "missing")
        assert ei.value.name == "ENOENT"
        assert ei.value.reason is None, "atomio_store_reset() kept an earlier failure's reason"


def test_fence_handles(scratch):
    """fence() returns normally on a store-backed file and on a ctx without a store (nothing
    to fence); a read-only file is refused and a closed one raises ClosedError."""
    store = _store(scratch)
    data = scratch / "data"
    with _store_ctx(store) as ctx:
        f = ctx.open_file(data, PS, path=Path.DOUBLEWRITE, file_id=9)
        f.write(0, _checks.page(1, PS))
        f.sync()
        f.fence()
        # Pages written after the fence go through the store as usual.
        f.write(1, _checks.page(2, PS))
        f.sync()
        with ctx.open_file(data, PS, read_only=True) as ro:
            with pytest.raises(Error) as ei:
                ro.fence()
            assert ei.value.name == "ATOMIO_E_READ_ONLY"
        f.close()
        with pytest.raises(atomio.ClosedError) as ei:
            f.fence()
        assert ei.value.name == "ATOMIO_E_CLOSED"
    with atomio.Ctx() as ctx, ctx.open_file(scratch / "plain", PS, path=Path.UNSAFE) as f:
        f.fence()


def test_fence_dir_counts_the_files_under_a_directory(scratch):
    """fence_dir() fences every file recorded under a directory (not its neighbour whose
    name it prefixes) and returns how many; a missing directory raises ENOENT; a ctx without
    a store has nothing to fence."""
    store = _store(scratch)
    db = scratch / "db"
    (db / "sub").mkdir(parents=True)
    (scratch / "dbx").mkdir()
    with _store_ctx(store) as ctx:
        for i, p in enumerate((db / "a", db / "sub" / "b", scratch / "dbx" / "c")):
            with ctx.open_file(p, PS, path=Path.DOUBLEWRITE) as f:
                f.write(0, _checks.page(i, PS))
        ctx.sync()
        assert ctx.fence_dir(db) == 2
        assert ctx.fence_dir(str(db) + "/") == 2
        with pytest.raises(Error) as ei:
            ctx.fence_dir(scratch / "gone")
        assert ei.value.name == "ENOENT"
    with atomio.Ctx() as ctx:
        assert ctx.fence_dir(db) == 0


def _truncate_after_crash(scratch, fence):
    """A crash leaves live copies of pages 0 and 1 of file id 42; the engine then truncates
    the file (after fencing it if `fence`) and recovery runs. Returns the report and the
    file's size afterwards."""
    store = _store(scratch)
    with _store_ctx(store):
        pass
    data = scratch / "data"
    _crash(store, data)
    assert os.path.getsize(data) == 2 * PS
    with atomio.Ctx(store, recover=False) as ctx, \
            ctx.open_file(data, PS, path=Path.DOUBLEWRITE, file_id=42, create=False) as f:
        if fence:
            f.fence()
        os.truncate(data, 0)
    with atomio.Ctx(store, recover=False) as ctx:
        r = ctx.recover()
    return r, os.path.getsize(data)


def test_fenced_truncation_is_not_undone_by_recovery(scratch):
    """The case fence() exists for: recovery skips the copies from before the fence (counted
    in pages_fenced) and the truncated file stays empty."""
    r, size = _truncate_after_crash(scratch, fence=True)
    assert size == 0, f"recovery wrote fenced copies back ({size} bytes), {r}"
    assert (r.pages_fenced, r.pages_restored, r.pages_unapplied) == (2, 0, 0), r


def test_unfenced_truncation_is_undone_by_recovery(scratch):
    """The control: without the fence recovery writes the old copies back over the
    truncation, so the test above shows the fence at work."""
    r, size = _truncate_after_crash(scratch, fence=False)
    assert size == 2 * PS, r
    assert r.pages_fenced == 0, r
    with atomio.Ctx() as ctx, \
            ctx.open_file(scratch / "data", PS, path=Path.UNSAFE, create=False) as f:
        assert f.read(0) == b"a" * PS and f.read(1) == b"b" * PS


def _write_behind_ctx(store, **kw):
    """A WRITE_BEHIND ctx of a named instance on `store` (skipped without a store)."""
    return _store_ctx(store, doublewrite_mode=atomio.DoublewriteMode.WRITE_BEHIND,
                      instance="wb", **kw)


def test_write_behind_stages_until_flush(scratch):
    """A WRITE_BEHIND write returns with its page staged, not in the file: a plain read of the
    file still sees the old bytes while File.read() sees the new page; Ctx.flush() puts it in
    place. The counters say the same: one staged write, one read served from staging."""
    store = _store(scratch)
    data = scratch / "data"
    old, new = _checks.page(11, PS), _checks.page(12, PS)
    data.write_bytes(old)
    with _write_behind_ctx(store, write_behind_bytes=MIB) as ctx, \
            ctx.open_file(data, PS, path=Path.DOUBLEWRITE, io_style=atomio.IoStyle.BUFFERED,
                          create=False, file_id=5) as f:
        assert f.info().path == Path.DOUBLEWRITE
        f.write(0, new)
        # The control for the reads below: the page is staged, not yet written in place.
        assert data.read_bytes() == old, "a staged page is already in the file"
        assert ctx.stats().staged_now == 1
        assert f.read(0) == new, "File.read() did not see the staged page"
        ctx.flush()
        assert data.read_bytes() == new, "the page is not in the file after flush()"
        fst, cst = f.stats(), ctx.stats()
        assert (fst.pages_staged, fst.staged_reads) == (1, 1), fst
        assert (cst.pages_staged, cst.staged_reads, cst.staged_now) == (1, 1, 0), cst
        assert fst.staged_now == 0, "staged_now is a ctx figure"
        assert cst.group_commits >= 1, cst
        # Read after the flush: from the file, not from staging.
        assert f.read(0) == new
        assert f.stats().staged_reads == 1
    # Reopened in DEFERRED mode (no process of the instance left): the page is in the file.
    with _store_ctx(store, doublewrite_mode=atomio.DoublewriteMode.DEFERRED) as ctx, \
            ctx.open_file(data, PS, create=False) as f:
        assert f.read(0) == new


def test_write_behind_options_and_flush_elsewhere(scratch):
    """write_behind_bytes reaches the library (a size it refuses is ATOMIO_E_INVAL); flush()
    is a no-op in the other modes and without a store, and refused on a closed ctx; a
    DEFERRED process cannot join a WRITE_BEHIND instance."""
    store = _store(scratch)
    with pytest.raises(Error) as ei:
        _write_behind_ctx(store, write_behind_bytes=1000)
    assert ei.value.name == "ATOMIO_E_INVAL", ei.value
    with _write_behind_ctx(store):
        with pytest.raises(Error) as ei:
            atomio.Ctx(store, doublewrite_mode=atomio.DoublewriteMode.DEFERRED, instance="wb")
        assert ei.value.name == "ATOMIO_E_STORE_LOCKED" and ei.value.reason, ei.value
    for mode in (atomio.DoublewriteMode.SYNC_BATCH, atomio.DoublewriteMode.DEFERRED):
        with _store_ctx(store, doublewrite_mode=mode) as ctx, \
                ctx.open_file(scratch / "data", PS, path=Path.DOUBLEWRITE) as f:
            f.write(0, _checks.page(3, PS))
            ctx.flush()
            st = ctx.stats()
            assert (st.pages_staged, st.staged_now) == (0, 0), (mode, st)
    ctx = atomio.Ctx()
    ctx.flush()
    ctx.close()
    with pytest.raises(atomio.ClosedError):
        ctx.flush()
