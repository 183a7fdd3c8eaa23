# SPDX-License-Identifier: MIT
"""The binding installed as a new user would: pip install --no-build-isolation (no package
index) into a fresh venv that sees Debian's system packages, then used from elsewhere."""
import os
import shutil
import subprocess
import sys
import venv

import pytest

from conftest import PYDIR, REPO

SCRIPT = """
import os, sys, ktun
from ktun.lkcp import KcpObj
assert ktun.LIBRARY_PATH.startswith(sys.prefix), ktun.LIBRARY_PATH
a, b = ktun.Kcp(1, mode="fast", stream=True), ktun.Kcp(1, mode="fast", stream=True)
a.send(b"installed"); a.flush(0)
b.input_batch(a.output_batch(), 0)
assert b.recv() == b"installed"
print("installed ok", ktun.__version__)
"""


def test_pip_install_in_venv(tmp_path):
    lib = os.environ.get("KTUN_LIBRARY") or str(REPO / "build" / "libktun.so")
    if not os.path.isfile(lib):
        pytest.skip("libktun.so not built")
    src = tmp_path / "src"
    shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                               "__pycache__"))
    env_dir = tmp_path / "venv"
    try:
        venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    except Exception as e:  # noqa: BLE001 (ensurepip missing: python3-venv not installed)
        pytest.skip(f"cannot create a venv with pip: {e}")
    py = str(env_dir / "bin" / "python")
    env = dict(os.environ, KTUN_LIBRARY=lib, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        str(src)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env.pop("KTUN_LIBRARY")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([py, "-c", SCRIPT], env=env, cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed ok" in r.stdout
