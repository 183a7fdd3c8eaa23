#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""KCP echo client in the style of the lkcp module's examples: sends numbered messages
(str, as lkcp users do) and waits for each echo.

    python3 examples/python/lkcp_echo_client.py 127.0.0.1 9999 [--count N] [--timeout S]

Prints "echo ok N messages, avg rtt X ms" and exits 0 when every echo came back intact.
Written against lkcp's KcpObj API: only the import line names ktun.
"""

import argparse
import os
import select
import socket
import sys
import time

try:
    from ktun.lkcp import KcpObj
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    from ktun.lkcp import KcpObj


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()

    addr = (args.host, args.port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)

    def output(uid, data):
        sock.sendto(data, addr)

    kcp = KcpObj(123, 2, output)
    kcp.nodelay(1, 10, 2, 1)
    kcp.wndsize(128, 128)
    kcp.setmtu(1000)

    end = time.time() + args.timeout
    rtts = []
    for i in range(args.count):
        msg = "message %d %s" % (i, "x" * (i % 3000))
        t0 = time.time()
        kcp.send(msg)
        got = None
        while got is None:
            if time.time() > end:
                print("timeout after %d messages" % i, file=sys.stderr)
                return 1
            kcp.update(time.time())
            r, _, _ = select.select([sock], [], [], 0.002)
            if r:
                try:
                    data, _ = sock.recvfrom(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
                kcp.input(data)
            n, data = kcp.recv()
            if n >= 0:
                got = data
        if got != msg.encode():
            print("mismatch at message %d" % i, file=sys.stderr)
            return 1
        rtts.append(time.time() - t0)
    print("echo ok %d messages, avg rtt %.2f ms" % (args.count, 1000 * sum(rtts) / len(rtts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
