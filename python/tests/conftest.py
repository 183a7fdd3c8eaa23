# SPDX-License-Identifier: MIT
"""Test setup: import ktun from this source tree unless KTUN_TEST_INSTALLED is set."""
import os
import pathlib
import socket
import sys

import pytest

PYDIR = pathlib.Path(__file__).resolve().parent.parent
REPO = PYDIR.parent
if not os.environ.get("KTUN_TEST_INSTALLED"):
    sys.path.insert(0, str(PYDIR))


def free_udp_port():
    """A port free for UDP and TCP on 127.0.0.1 right now."""
    for _ in range(100):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        return port
    raise RuntimeError("no free port")


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def child_env():
    """Environment for example scripts run as children: they import this tree's ktun."""
    env = dict(os.environ)
    if not env.get("KTUN_TEST_INSTALLED"):
        env["PYTHONPATH"] = str(PYDIR) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
