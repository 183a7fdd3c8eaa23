# SPDX-License-Identifier: MIT
"""Runs tests/misuse.py in a child interpreter: a crash there fails this test cleanly."""
import subprocess
import sys

from conftest import PYDIR


def test_misuse_script_survives(child_env):
    r = subprocess.run([sys.executable, str(PYDIR / "tests" / "misuse.py")], env=child_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "misuse ok" in r.stdout
