# SPDX-License-Identifier: MIT
"""Check that `pip install` of bindings/python works offline: no index, no build isolation,
setuptools from the system. Installs a copy of the package into a throwaway venv (made with
--system-site-packages --without-pip, so neither python3-venv nor a download is needed) and
imports it from outside the source tree. Run by CTest as bindings_python_pip.

usage: python3 pip_install_check.py  (ATOMIO_LIBRARY names the library to load)
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent


def main():
    with tempfile.TemporaryDirectory(prefix="atomio-pip-") as tmp:
        tmp = Path(tmp)
        # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
        pkg = tmp / "src"
        shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns(
            "tests", "build", "*.egg-info", "__pycache__"))
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                        str(venv)], check=True)
        py = str(venv / "bin" / "python")
        cmd = [py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "--no-cache-dir", "-q", str(pkg)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        code = ("import atomio, sys; print(atomio.__file__, atomio.version(), "
                "atomio.library_path()); assert '/venv/' in atomio.__file__")
        subprocess.run([py, "-c", code], check=True, cwd=str(tmp),
                       env=dict(os.environ, PYTHONPATH=""))
    print("pip install --no-build-isolation --no-index: ok")


if __name__ == "__main__":
    main()
