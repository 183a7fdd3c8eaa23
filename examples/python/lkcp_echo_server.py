#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""KCP echo server in the style of the lkcp module's examples: UDP socket + KcpObj.

    python3 examples/python/lkcp_echo_server.py 127.0.0.1 9999 [--count N] [--timeout S]

Echoes every message back; exits after echoing --count messages or after --timeout seconds.
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
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    sock.setblocking(False)
    peer = [None]

    def output(uid, data):
        if peer[0] is not None:
            sock.sendto(data, peer[0])

    kcp = KcpObj(123, 1, output)
    kcp.nodelay(1, 10, 2, 1)
    kcp.wndsize(128, 128)
    kcp.setmtu(1000)
    print("listening", flush=True)

    echoed = 0
    end = time.time() + args.timeout
    while time.time() < end and (args.count == 0 or echoed < args.count):
        kcp.update(time.time())
        r, _, _ = select.select([sock], [], [], 0.005)
        if r:
            try:
                data, addr = sock.recvfrom(2048)
            except BlockingIOError:
                continue
            peer[0] = addr
            kcp.input(data)
        while True:
            n, data = kcp.recv()
            if n < 0:
                break
            kcp.send(data)
            echoed += 1
    # let the last echoes and their retransmissions leave
    flush_end = time.time() + 0.5
    while time.time() < flush_end and kcp.waitsnd() > 0:
        kcp.update(time.time())
        r, _, _ = select.select([sock], [], [], 0.005)
        if r:
            data, _ = sock.recvfrom(2048)
            kcp.input(data)
    print(f"echoed {echoed}")
    return 0 if args.count == 0 or echoed >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
