# SPDX-License-Identifier: MIT
"""What the lkcp-style echo examples share: lkcp's KcpObj (from ktun: this import is the only
line that names ktun), their command line, a KcpObj set up as lkcp's examples do, and one
turn of the update/receive loop."""

import argparse
import os
import select
import sys
import time

try:
    from ktun.lkcp import KcpObj
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    from ktun.lkcp import KcpObj


def parse_args(default_count):
    """host port [--count N] [--timeout S]"""
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=default_count)
    p.add_argument("--timeout", type=float, default=30.0)
    return p.parse_args()


def new_kcp(user_id, output):
    """A KcpObj (conv 123) in lkcp's fast setting, sending through output(uid, data)."""
    kcp = KcpObj(123, user_id, output)
    kcp.nodelay(1, 10, 2, 1)
    kcp.wndsize(128, 128)
    kcp.setmtu(1000)
    return kcp


def turn(kcp, sock, wait_s):
    """Updates |kcp|, waits up to |wait_s| for a datagram on |sock| and feeds it. Returns the
    sender's address, or None when nothing came."""
    kcp.update(time.time())
    r, _, _ = select.select([sock], [], [], wait_s)
    if not r:
        return None
    try:
        data, addr = sock.recvfrom(2048)
    except (BlockingIOError, ConnectionRefusedError):
        return None
    kcp.input(data)
    return addr
