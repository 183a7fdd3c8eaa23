#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Echo latency through a command that copies stdin to stdout, such as `ssh HOST cat`.

    scripts/bench-sshecho.py [--count N] [--interval MS] [--size B] [--wait MS] -- CMD...

Starts CMD with pipes and waits until a first line comes back (so the connection set-up is not
counted), then writes COUNT lines of SIZE bytes (sequence number, send time, padding) every
INTERVAL ms on a fixed schedule, reads the copies back and prints one line:

    sshecho: sent= received= bad= min_ms= p50_ms= p90_ms= p99_ms= max_ms= mean_ms=

Every byte that comes back must be the byte sent (checked line by line, in order); exits 1 when
a line is missing or wrong, or the command fails, 2 on bad arguments. Bounded by --duration.
"""
import argparse
import os
import subprocess
import sys
import threading
import time


def pct(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    i = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def line_for(seq, size, t_ns):
    head = b"%d %d " % (seq, t_ns)
    pad = size - len(head) - 1
    fill = bytes((97 + (seq + k) % 26) for k in range(max(pad, 0)))
    return head + fill + b"\n"


def main():
    ap = argparse.ArgumentParser(description="echo latency through CMD (e.g. ssh HOST cat)")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--interval", type=float, default=20.0, help="ms between lines")
    ap.add_argument("--size", type=int, default=64, help="bytes per line, 40..65000")
    ap.add_argument("--wait", type=float, default=5000.0, help="ms for replies after the last")
    ap.add_argument("--duration", type=float, default=120.0, help="hard limit, seconds")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd or a.count < 1 or not 40 <= a.size <= 65000 or a.interval < 0:
        ap.print_usage(sys.stderr)
        return 2

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    sent_at = {}
    rtts = []
    state = {"bad": 0, "received": 0}
    deadline = time.monotonic() + a.duration

    def reader():
        buf = b""
        expect = 0
        while True:
            chunk = proc.stdout.read(65536)
            if not chunk:
                return
            now = time.monotonic_ns()
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                got, buf = buf[: nl + 1], buf[nl + 1:]
                t = sent_at.get(expect)
                if t is None or got != line_for(expect, a.size, t):
                    state["bad"] += 1
                else:
                    rtts.append((now - t) / 1e6)
                    state["received"] += 1
                expect += 1
                if expect == a.count:
                    return

    # The connection is up (ssh authenticated, cat running) once a first line comes back; the
    # timed lines start only then, so that the handshake is not counted as latency.
    try:
        proc.stdin.write(b"hello\n")
        got = b""
        while len(got) < 6 and time.monotonic() < deadline:
            chunk = proc.stdout.read(6 - len(got))
            if not chunk:
                break
            got += chunk
    except BrokenPipeError:
        got = b""
    if got != b"hello\n":
        print("sshecho: no echo of the first line (got %r)" % got)
        proc.kill()
        proc.wait()
        return 1
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    start = time.monotonic_ns()
    sent = 0
    try:
        for seq in range(a.count):
            due = start + int(seq * a.interval * 1e6)
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() > deadline:
                break
            t = time.monotonic_ns()
            sent_at[seq] = t
            proc.stdin.write(line_for(seq, a.size, t))
            sent += 1
    except BrokenPipeError:
        pass
    th.join(max(0.0, min(a.wait / 1000.0, deadline - time.monotonic())))
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        rc = proc.wait(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    rtts.sort()
    mean = sum(rtts) / len(rtts) if rtts else float("nan")
    print("sshecho: sent=%d received=%d bad=%d min_ms=%.3f p50_ms=%.3f p90_ms=%.3f "
          "p99_ms=%.3f max_ms=%.3f mean_ms=%.3f rc=%d"
          % (sent, state["received"], state["bad"], rtts[0] if rtts else float("nan"),
             pct(rtts, 50), pct(rtts, 90), pct(rtts, 99), rtts[-1] if rtts else float("nan"),
             mean, rc))
    sys.stdout.flush()
    ok = rc == 0 and state["bad"] == 0 and state["received"] == a.count
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())
