#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""KCP echo client in the style of the lkcp module's examples: sends numbered messages
(str, as lkcp users do) and waits for each echo.

    python3 examples/python/lkcp_echo_client.py 127.0.0.1 9999 [--count N] [--timeout S]

Prints "echo ok N messages, avg rtt X ms" and exits 0 when every echo came back intact.
Written against lkcp's KcpObj API: only lkcp_echo_common's import line names ktun.
"""

import socket
import sys
import time

from lkcp_echo_common import new_kcp, parse_args, turn


def main():
    args = parse_args(100)
    addr = (args.host, args.port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)

    def output(uid, data):
        sock.sendto(data, addr)

    kcp = new_kcp(2, output)
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
            turn(kcp, sock, 0.002)
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
