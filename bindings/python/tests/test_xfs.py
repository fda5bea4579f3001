# SPDX-License-Identifier: MIT
"""The Python binding on a real loop-mounted XFS with reflink (root; skipped with the reason
otherwise): the probe sees O_DIRECT RWF_ATOMIC, every available path round-trips."""

import os

import pytest

import _checks
import atomio
from atomio import DirectAtomic, Path

pytestmark = pytest.mark.fs

XFS_MAGIC = 0x58465342


def _file(d, name):
    p = os.path.join(d, name)
    open(p, "wb").close()
    return p


@pytest.mark.parametrize("ps", [4096, 16384])
def test_probe_xfs(xfs_dir, ps):
    f = _file(xfs_dir, f"probe-{ps}")
    caps = atomio.probe(f, ps)
    assert caps.fs_type == XFS_MAGIC
    assert caps.valid & atomio._lib.CAPS_STATX and caps.valid & atomio._lib.CAPS_VERDICTS
    # reflink=1 XFS does atomic O_DIRECT writes through copy-on-write whatever the device.
    assert caps.direct_atomic != DirectAtomic.NONE, caps.reason_direct
    sx = caps.statx  # the experimental raw statx mirror
    assert 0 < sx.unit_min <= ps <= sx.unit_max, caps
    assert sx.segments_max >= 1
    assert sx.dio_mem_align > 0 and sx.dio_offset_align > 0
    # AUTO under the probe's assumptions (io ANY, PREFER_FAST, store available), as
    # docs/design.md describes the choice.
    if caps.buffered_atomic:
        want = Path.BUFFERED_ATOMIC
    elif caps.direct_atomic == DirectAtomic.HARDWARE:
        want = Path.DIRECT_ATOMIC
    else:
        want = Path.DOUBLEWRITE
    assert caps.auto_path == want, caps.reason_auto
    assert os.path.getsize(f) == 0


@pytest.mark.parametrize("ps", [4096, 16384])
def test_direct_atomic_round_trip_xfs(xfs_dir, ps):
    # Must not skip: reflink XFS can always do it.
    try:
        chosen = _checks.round_trip(str(xfs_dir), Path.DIRECT_ATOMIC, page_size=ps)
    except pytest.skip.Exception as s:
        pytest.fail(f"DIRECT_ATOMIC must work on reflink XFS: {s}")
    assert chosen == Path.DIRECT_ATOMIC


@pytest.mark.parametrize("submitter", [atomio.Submitter.SYNC, atomio.Submitter.URING],
                         ids=lambda s: s.name)
@pytest.mark.parametrize("path", _checks.ROUND_TRIP_PATHS, ids=lambda p: p.name)
def test_round_trip_xfs(xfs_dir, path, submitter):
    _checks.round_trip(str(xfs_dir), path, submitter=submitter)


def test_prefer_atomic_picks_direct_on_xfs(xfs_dir):
    f = _file(xfs_dir, "prefer-atomic")
    caps = atomio.probe(f, 4096)
    # Software-only atomics: PREFER_ATOMIC takes them where PREFER_FAST would take DOUBLEWRITE.
    with _checks.open_ctx(str(xfs_dir), Path.AUTO, policy=atomio.Policy.PREFER_ATOMIC) as ctx:
        with ctx.open_file(f, 4096, io_style=atomio.IoStyle.DIRECT) as fh:
            info = fh.info()
            assert info.path == Path.DIRECT_ATOMIC, info.reason
            assert info.policy == atomio.Policy.PREFER_ATOMIC
            assert info.o_direct and info.torn_write_safe
            assert info.direct_atomic == caps.direct_atomic
            fh.write(0, b"\xa5" * 4096)
            assert fh.read(0) == b"\xa5" * 4096
            assert fh.stats().pages[Path.DIRECT_ATOMIC] == 1
