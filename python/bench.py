#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmarks of the Python binding; prints "bench: NAME VALUE UNIT" lines.

    python3 python/bench.py            (after make libktun.so; compare with build/tests/bench/run kcp.bulk)

py.kcp.segments     the C benchmark's bulk transfer (kcp.bulk: two engines back to back, stream
                    mode, mtu 1322, nodelay 1/10/2/1, windows 4096), driven from Python in
                    batches (output_batch / input_batch / recv), segments received per CPU second
py.kcp.segments_perpacket
                    the same, one Python call per packet (datagrams() / input())
py.link.bulk        Link (aes, FEC 10/3) pair in memory, MB of payload per CPU second
py.lkcp.msgs        KcpObj ping-pong in memory (send, update, input, recv per message)
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ktun  # noqa: E402
from ktun.lkcp import KcpObj  # noqa: E402


def report(name, value, unit):
    print(f"bench: {name} {value:.6g} {unit}", flush=True)


def kcp_pair(wnd=4096):
    ks = [ktun.Kcp(1, stream=True, mtu=1350 - 28, sndwnd=wnd, rcvwnd=wnd) for _ in range(2)]
    for k in ks:
        k.set_nodelay(1, 10, 2, 1)
    return ks


def kcp_bulk(total, batched, limit_s=10.0):
    tx, rx = kcp_pair()
    chunk = bytes((i * 31 + 7) & 0xFF for i in range(65536))
    sent = got = now = 0
    t0, c0 = time.monotonic(), time.process_time()
    while got < total and time.monotonic() - t0 < limit_s:
        wrote = False
        while sent < total and tx.send_room > 0:
            n = min(65536, total - sent)
            tx.send(chunk if n == 65536 else chunk[:n])
            sent += n
            wrote = True
        if wrote:
            tx.flush(now)
        if batched:
            rx.input_batch(tx.output_batch(), now)
            got += len(rx.recv())
            tx.input_batch(rx.output_batch(), now)
        else:
            for p in tx.datagrams():
                rx.input(p, now)
            got += len(rx.recv())
            for p in rx.datagrams():
                tx.input(p, now)
        now += 1
        rx.update(now)
        tx.update(now)
    cpu = time.process_time() - c0
    wall = time.monotonic() - t0
    return got, rx.stats()["in_segs"], cpu, wall


def link_bulk(total, limit_s=10.0):
    c = ktun.Crypt("aes", "bench")
    a = ktun.Link(1, c, mode="fast3", sndwnd=1024, rcvwnd=1024)
    b = ktun.Link(1, c, mode="fast3", sndwnd=1024, rcvwnd=1024)
    chunk = os.urandom(65536)
    sent = got = now = 0
    t0, c0 = time.monotonic(), time.process_time()
    while got < total and time.monotonic() - t0 < limit_s:
        while sent < total and a.send_room > 0:
            a.send(chunk)
            sent += len(chunk)
        a.flush(now)
        b.input_batch(a.output_batch(), now)
        got += len(b.recv())
        b.flush(now)
        a.input_batch(b.output_batch(), now)
        now += 1
        a.update(now)
        b.update(now)
    return got, time.process_time() - c0


def lkcp_pingpong(count):
    box = {}
    a = KcpObj(5, 1, lambda uid, d: box["b"].input(d))
    b = KcpObj(5, 2, lambda uid, d: box["a"].input(d))
    box["a"], box["b"] = a, b
    for o in (a, b):
        o.nodelay(1, 10, 2, 1)
        o.wndsize(128, 128)
    t = 1000.0
    msg = "x" * 100
    c0 = time.process_time()
    done = 0
    while done < count:
        a.send(msg)
        a.flush()
        n, d = b.recv()
        if n > 0:
            b.send(d)
            b.flush()
        n, d = a.recv()
        if n > 0:
            done += 1
        t += 0.001
        a.update(t)
        b.update(t)
    return done / (time.process_time() - c0)


def main():
    got, segs, cpu, wall = kcp_bulk(512 << 20, True)
    report("py.kcp.bulk", got / cpu / 1e6, "MB/s")
    report("py.kcp.segments", segs / cpu, "seg/s")
    report("py.kcp.bulk.wall", got / wall / 1e6, "MB/s")
    got, segs, cpu, wall = kcp_bulk(64 << 20, False)
    report("py.kcp.segments_perpacket", segs / cpu, "seg/s")
    got, cpu = link_bulk(128 << 20)
    report("py.link.bulk", got / cpu / 1e6, "MB/s")
    report("py.lkcp.msgs", lkcp_pingpong(50000), "msg/s")


if __name__ == "__main__":
    main()
