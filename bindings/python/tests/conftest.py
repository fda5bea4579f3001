# SPDX-License-Identifier: MIT
"""Fixtures: the package from this tree, a real loop-mounted XFS (root only), skips that say why.

Run from the source tree:  ATOMIO_LIBRARY=build/libatomio/libatomio.so \
    /usr/bin/python3 -m pytest -rs bindings/python/tests
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Test the package next to these tests, not some installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# ATOMIO_PATH / ATOMIO_SUBMITTER force every open onto one path or submitter; the tests choose
# those themselves and check what they get.
os.environ.pop("ATOMIO_PATH", None)
os.environ.pop("ATOMIO_SUBMITTER", None)

import atomio  # noqa: E402


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated so a run from another rootdir knows it too.
    config.addinivalue_line("markers", "fs: mounts a real loop filesystem (root)")


def pytest_report_header(config):
    try:
        return f"libatomio {atomio.version()} from {atomio.library_path()}"
    except atomio.LibraryNotFound as e:
        return f"libatomio not loadable: {e}"


def _run(*argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {r.returncode}: {r.stdout}")


@pytest.fixture(scope="session")
def xfs_dir():
    """A fresh XFS (reflink=1: O_DIRECT RWF_ATOMIC works) loop-mounted for this session.

    Skips (printed with -rs) when not root or the tools are missing; always unmounts.
    """
    if os.geteuid() != 0:
        pytest.skip(f"XFS part skipped: loop mounts need root (uid {os.geteuid()})")
    for tool in ("mkfs.xfs", "mount", "umount", "truncate"):
        if shutil.which(tool) is None:
            pytest.skip(f"XFS part skipped: {tool} not installed (apt-get install xfsprogs)")
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("XFS part skipped: no /dev/loop-control (loop devices unavailable)")
    base = Path(tempfile.mkdtemp(prefix="atomio-py-xfs-"))
    img, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir()
    mounted = False
    try:
        # 512 MiB sparse: above mkfs.xfs's 300 MiB floor, costs a few MiB of real space.
        _run("truncate", "-s", "512M", img)
        _run("mkfs.xfs", "-q", "-f", "-m", "reflink=1", img)
        _run("mount", "-o", "loop", img, mnt)
        mounted = True
        yield mnt
    finally:
        if mounted:
            r = subprocess.run(["umount", mnt])
            if r.returncode != 0:
                subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def scratch(tmp_path):
    """A private temp dir on whatever filesystem holds $TMPDIR."""
    return tmp_path
