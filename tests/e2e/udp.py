#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end helper for UDP forwards: an echo server and a probe that measures delivery and
# round-trip times of numbered datagrams.
#
#   udp.py echo --listen H:P [--duration S]
#       echoes every datagram to its sender; prints "listening H:P".
#   udp.py probe --connect H:P [--count N] [--size B] [--interval MS] [--wait MS]
#                [--flows K] [--tcp]
#       sends N datagrams of B bytes every MS ms (K source sockets, round robin), each
#       numbered; collects the echoes until MS*N + wait; prints one line:
#       "probe: sent=N received=M dup=D ratio=R p50_ms=.. p99_ms=.. max_ms=.."
#       --tcp: the same messages over one TCP connection (length-prefixed) to a TCP echo.
#       Exit 0 if no echo came back twice or corrupted, 1 otherwise.
#   udp.py hold --connect H:P --flows K [--seconds S]
#       K sockets send one datagram each and wait for its echo (K flows), then stay idle for
#       S seconds; prints "hold: flows=K answered=M".
import argparse
import select
import socket
import struct
import sys
import time


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def echo(args):
    host, port = parse_addr(args.listen)
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print("listening %s:%d" % (host, s.getsockname()[1]), flush=True)
    end = time.time() + args.duration
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.5)
        if r:
            data, peer = s.recvfrom(65536)
            s.sendto(data, peer)


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def payload(i, size):
    head = struct.pack("<IQ", i, time.monotonic_ns())
    body = bytes((i * 7 + k) & 0xff for k in range(max(0, size - len(head))))
    return head + body


def check(data, size):
    i, t0 = struct.unpack_from("<IQ", data)
    want = bytes((i * 7 + k) & 0xff for k in range(max(0, size - 12)))
    return i, t0, len(data) == max(size, 12) and data[12:] == want


def probe(args):
    host, port = parse_addr(args.connect)
    socks = []
    if args.tcp:
        t = socket.create_connection((host, port))
        t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks = [t]
    else:
        for _ in range(args.flows):
            s = socket.socket(family_of(host), socket.SOCK_DGRAM)
            s.connect((host, port))
            socks.append(s)
    rtt = {}
    dup = bad = 0
    tbuf = b""
    start = time.monotonic()
    deadline = start + args.count * args.interval / 1000.0 + args.wait / 1000.0
    nxt, sent = start, 0
    while True:
        now = time.monotonic()
        if sent < args.count and now >= nxt:
            p = payload(sent, args.size)
            if args.tcp:
                socks[0].sendall(struct.pack("<H", len(p)) + p)
            else:
                try:
                    socks[sent % len(socks)].send(p)
                except ConnectionRefusedError:
                    pass  # an earlier datagram's ICMP port unreachable: nobody listens there
            sent += 1
            nxt += args.interval / 1000.0
            continue
        if now >= deadline or (sent == args.count and len(rtt) + bad >= args.count):
            break
        wait = min(nxt if sent < args.count else deadline, deadline) - now
        r, _, _ = select.select(socks, [], [], max(0.0, wait))
        for s in r:
            msgs = []
            if args.tcp:
                chunk = s.recv(65536)
                if not chunk:
                    deadline = now
                    continue
                tbuf += chunk
                while len(tbuf) >= 2 and len(tbuf) >= 2 + struct.unpack_from("<H", tbuf)[0]:
                    n = struct.unpack_from("<H", tbuf)[0]
                    msgs.append(tbuf[2:2 + n])
                    tbuf = tbuf[2 + n:]
            else:
                try:
                    msgs.append(s.recv(65536))
                except OSError:
                    continue
            got = time.monotonic_ns()
            for m in msgs:
                if len(m) < 12:
                    bad += 1
                    continue
                i, t0, ok = check(m, args.size)
                if not ok:
                    bad += 1
                elif i in rtt:
                    dup += 1
                else:
                    rtt[i] = (got - t0) / 1e6
    v = list(rtt.values())
    print("probe: sent=%d received=%d dup=%d bad=%d ratio=%.4f p50_ms=%.1f p99_ms=%.1f "
          "max_ms=%.1f" % (sent, len(v), dup, bad, len(v) / max(1, sent), pct(v, 50),
                           pct(v, 99), max(v) if v else float("nan")), flush=True)
    return 0 if dup == 0 and bad == 0 else 1


def hold(args):
    host, port = parse_addr(args.connect)
    socks = []
    for _ in range(args.flows):
        s = socket.socket(family_of(host), socket.SOCK_DGRAM)
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    for i, s in enumerate(socks):
        s.send(payload(i, 32))
        if i % 50 == 49:
            time.sleep(0.01)
    answered = set()
    end = time.time() + 10
    while len(answered) < len(socks) and time.time() < end:
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            try:
                s.recv(65536)
                answered.add(s.fileno())
            except OSError:
                pass
    print("hold: flows=%d answered=%d" % (len(socks), len(answered)), flush=True)
    time.sleep(args.seconds)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "probe", "hold"])
    ap.add_argument("--listen")
    ap.add_argument("--connect")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--interval", type=float, default=20)
    ap.add_argument("--wait", type=float, default=2000)
    ap.add_argument("--flows", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--tcp", action="store_true")
    args = ap.parse_args()
    if args.mode == "echo":
        echo(args)
        return 0
    if args.mode == "probe":
        return probe(args)
    return hold(args)


if __name__ == "__main__":
    sys.exit(main())
