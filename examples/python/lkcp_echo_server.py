#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""KCP echo server in the style of the lkcp module's examples: UDP socket + KcpObj.

    python3 examples/python/lkcp_echo_server.py 127.0.0.1 9999 [--count N] [--timeout S]

Echoes every message back; exits after echoing --count messages or after --timeout seconds.
Written against lkcp's KcpObj API: only lkcp_echo_common's import line names ktun.
"""

import socket
import sys
import time

from lkcp_echo_common import new_kcp, parse_args, turn


def main():
    args = parse_args(0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    sock.setblocking(False)
    peer = [None]

    def output(uid, data):
        if peer[0] is not None:
            sock.sendto(data, peer[0])

    kcp = new_kcp(1, output)
    print("listening", flush=True)

    echoed = 0
    end = time.time() + args.timeout
    while time.time() < end and (args.count == 0 or echoed < args.count):
        peer[0] = turn(kcp, sock, 0.005) or peer[0]
        while True:
            n, data = kcp.recv()
            if n < 0:
                break
            kcp.send(data)
            echoed += 1
    # let the last echoes and their retransmissions leave
    flush_end = time.time() + 0.5
    while time.time() < flush_end and kcp.waitsnd() > 0:
        turn(kcp, sock, 0.005)
    print(f"echoed {echoed}")
    return 0 if args.count == 0 or echoed >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
