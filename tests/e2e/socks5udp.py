#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end helper: a SOCKS5 UDP ASSOCIATE client (RFC 1928) and a counting UDP echo server.
#
#   socks5udp.py echo --count FILE
#       UDP echo on 127.0.0.1 (a free port, printed as "listening PORT"); the number of
#       datagrams received so far is kept in FILE.
#   socks5udp.py assoc --socks PORT --target HOST:PORT [--n N] [--refused] [--size B]
#       asks the SOCKS5 server on 127.0.0.1:PORT for a UDP association, then sends N datagrams
#       of B random bytes to HOST:PORT through it (HOST: an IPv4 address or a name), one at a
#       time, each up to 3 times until its echo comes back with the same header. Prints one
#       "socks5-udp: ..." line; exit 0 if every datagram came back intact (with --refused: if
#       none did), 1 otherwise.
import argparse
import os
import socket
import sys


def cmd_echo(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print("listening", s.getsockname()[1], flush=True)
    n = 0
    with open(a.count, "w") as f:
        f.write("0")
    while True:
        d, peer = s.recvfrom(65536)
        n += 1
        with open(a.count, "w") as f:
            f.write(str(n))
        s.sendto(d, peer)


def recv_exact(t, n):
    b = b""
    while len(b) < n:
        c = t.recv(n - len(b))
        if not c:
            raise EOFError("control connection closed")
        b += c
    return b


def cmd_assoc(a):
    host, _, port = a.target.rpartition(":")
    port = int(port)
    t = socket.create_connection(("127.0.0.1", a.socks), timeout=10)
    t.sendall(b"\x05\x01\x00")
    if recv_exact(t, 2) != b"\x05\x00":
        print("socks5-udp: no-auth refused", flush=True)
        return 1
    t.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    r = recv_exact(t, 4)
    if r[1] != 0:
        print(f"socks5-udp: UDP ASSOCIATE refused, reply {r[1]}", flush=True)
        return 1
    if r[3] == 1:
        relay = (socket.inet_ntoa(recv_exact(t, 4)), int.from_bytes(recv_exact(t, 2), "big"))
    else:
        relay = (socket.inet_ntop(socket.AF_INET6, recv_exact(t, 16)),
                 int.from_bytes(recv_exact(t, 2), "big"))
    try:
        hdr = b"\x00\x00\x00\x01" + socket.inet_aton(host)
    except OSError:
        hdr = b"\x00\x00\x00\x03" + bytes([len(host)]) + host.encode()
    hdr += port.to_bytes(2, "big")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(a.wait)
    got = bad = 0
    for _ in range(a.n):
        payload = os.urandom(a.size)
        for _ in range(3):
            u.sendto(hdr + payload, relay)
            try:
                d, _ = u.recvfrom(65536)
            except socket.timeout:
                continue
            if d[:len(hdr)] == hdr and d[len(hdr):] == payload:
                got += 1
            else:
                bad += 1
            break
    print(f"socks5-udp: relay {relay[0]}:{relay[1]} target {a.target} sent={a.n} "
          f"echoed={got} bad={bad}", flush=True)
    t.close()
    if a.refused:
        return 0 if got == 0 and bad == 0 else 1
    return 0 if got == a.n else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "assoc"])
    ap.add_argument("--count")
    ap.add_argument("--socks", type=int)
    ap.add_argument("--target")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--wait", type=float, default=2.0)
    ap.add_argument("--refused", action="store_true")
    a = ap.parse_args()
    return cmd_echo(a) if a.mode == "echo" else cmd_assoc(a)


if __name__ == "__main__":
    sys.exit(main())
