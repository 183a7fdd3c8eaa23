#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end helper: a TCP echo/source server and a concurrent checker that verifies what
# comes back through the tunnel by sha256.
#
#   streams.py echo  --listen H:P|/unix/path [--duration S]
#       echo every connection; after the peer's EOF, finish echoing and shut down writing
#       (so half-close is exercised); prints "listening H:P".
#   streams.py check --connect H:P --bytes N [--streams K] [--seed S] [--text] [--duration S]
#       K concurrent connections; each writes N bytes (seeded random, or compressible text
#       with --text; even streams only with --mixed) then shuts down writing, while reading
#       everything back until EOF; checks length and sha256 of the echo. Prints one "check: ..." line; exit 0 if every stream
#       came back intact, 1 otherwise. --no-halfclose: read the whole echo first, then close
#       (kcptun ends both directions when one ends).
#   streams.py flood --listen H:P       every connection gets an endless stream; nothing is read
#   streams.py stall --listen H:P       connections are accepted and never read
#   streams.py hold --connect H:P --seconds S   connect, never read, hold for S seconds
#   streams.py push --connect H:P --seconds S   write as fast as possible for S seconds
#       (the last four measure back-pressure: the tunnel's memory must stay bounded)
#   streams.py digest --listen H:P [--duration S]
#       one-way target: a connection sends "up N\n" then N bytes and gets back the sha256 (hex
#       line) of those bytes, or sends "down N SEED\n" and gets N seeded random bytes; either
#       way the target then waits for the peer to close (it never half-closes first). After
#       "echo\n" the connection is echoed as by the echo target (check --digest-target).
#   streams.py oneway --connect H:P --bytes N [--streams K] [--seed S] [--duration S]
#       K concurrent streams, each an "up" and a "down" of N bytes against a digest target;
#       nothing comes back unchanged, so a layer applied on one side only (QPP) is caught,
#       which an echo cannot catch. Prints one "oneway: ..." line; exit 0 if all matched.
#   streams.py eof --connect H:P --bytes N [--duration S]
#       writes N bytes, half-closes, reads the echo to EOF; prints "eof: bytes=B seconds=S",
#       S from the half-close to the EOF (a held FIN shows here); exit 0 if all N came back.
#   streams.py refused --connect H:P [--duration S]
#       connects, expects the tunnel to end the connection (EOF or reset) with no data.
import argparse
import hashlib
import random
import socket
import sys
import threading
import time

CHUNK = 1 << 16


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def echo_conn(c):
    try:
        while True:
            b = c.recv(CHUNK)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        while c.recv(CHUNK):
            pass
    except OSError:
        pass
    finally:
        c.close()


def listen(addr, backlog=512):
    """A listening socket on H:P (IPv4 or IPv6) or a Unix socket path; prints its address as
    "listening H:P" (or the path), the line the scripts wait for."""
    if addr.startswith("/"):  # a Unix socket path
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(addr)
        name = addr
    else:
        host, port = parse_addr(addr)
        ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        h, p = ls.getsockname()[:2]
        name = f"{h}:{p}"
    ls.listen(backlog)
    print(f"listening {name}", flush=True)
    return ls


def serve(a, handler):
    """Accepts connections on --listen for --duration seconds, each handled in a thread."""
    ls = listen(a.listen)
    ls.settimeout(0.5)
    end = time.time() + a.duration
    while time.time() < end:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        threading.Thread(target=handler, args=(c,), daemon=True).start()
    return 0


def cmd_echo(a):
    return serve(a, echo_conn)


def stream_blocks(seed, n, text):
    rng = random.Random(seed)
    left = n
    while left > 0:
        k = min(left, 1 << 20)
        if text:
            words = [b"kcp", b"tunnel", b"stream", b"window", b"frame", b"\n", b"snappy"]
            blk = b" ".join(rng.choice(words) for _ in range(k // 4 + 1))[:k]
        else:
            blk = rng.randbytes(k)
        yield blk
        left -= k


def check_one(a, idx, results):
    host, port = parse_addr(a.connect)
    sent = hashlib.sha256()
    got = hashlib.sha256()
    nrecv = [0]
    err = []
    s = None
    for _ in range(50):  # a listener that is still starting refuses: retry for 5 s
        try:
            s = socket.create_connection((host, port), timeout=a.duration)
            break
        except ConnectionRefusedError as e:
            last = e
            time.sleep(0.1)
        except OSError as e:
            last = e
            break
    if s is None:
        results[idx] = f"stream {idx}: connect: {last}"
        return

    def reader():
        try:
            while not (a.no_halfclose and nrecv[0] >= a.bytes):
                b = s.recv(CHUNK)
                if not b:
                    break
                got.update(b)
                nrecv[0] += len(b)
        except OSError as e:
            err.append(f"recv: {e}")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        text = a.text or (a.mixed and idx % 2 == 0)
        if a.digest_target:
            s.sendall(b"echo\n")
        for blk in stream_blocks(a.seed * 1000003 + idx, a.bytes, text):
            sent.update(blk)
            s.sendall(blk)
        if not a.no_halfclose:
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(f"send: {e}")
    t.join(a.duration)
    s.close()
    if t.is_alive():
        err.append("timeout")
    if nrecv[0] != a.bytes:
        err.append(f"received {nrecv[0]} of {a.bytes} bytes")
    elif got.digest() != sent.digest():
        err.append("sha256 mismatch")
    results[idx] = f"stream {idx}: " + ", ".join(err) if err else None


def run_streams(a, one, name, rate=False):
    """Runs one(a, idx, results) for --streams connections at once, each in a thread that sets
    results[idx] to a reason on failure; prints "NAME: streams=... failed=N" (with mbit_s if
    rate) and the first reasons. Exit status 0 if every stream succeeded in --duration."""
    results = [None] * a.streams
    t0 = time.time()
    threads = [threading.Thread(target=one, args=(a, i, results), daemon=True)
               for i in range(a.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.duration)
    el = max(time.time() - t0, 1e-6)
    bad = [r for r in results if r]
    alive = sum(t.is_alive() for t in threads)
    speed = f"mbit_s={a.bytes * a.streams * 8 / el / 1e6:.1f} " if rate else ""
    print(f"{name}: streams={a.streams} bytes_each={a.bytes} seconds={el:.2f} "
          f"{speed}failed={len(bad) + alive}", flush=True)
    for r in bad[:10]:
        print(r, flush=True)
    return 0 if not bad and not alive else 1


def cmd_check(a):
    return run_streams(a, check_one, "check", rate=True)


def flood_conn(c):
    blk = random.Random(7).randbytes(CHUNK)
    try:
        while True:
            c.sendall(blk)
    except OSError:
        pass


def cmd_flood(a):
    return serve(a, flood_conn)


def cmd_stall(a):
    held = []   # accepted connections stay open, never read
    return serve(a, held.append)


def cmd_hold(a):
    host, port = parse_addr(a.connect)
    s = socket.create_connection((host, port), timeout=a.duration)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    time.sleep(a.seconds)
    print("hold: done", flush=True)
    s.close()
    return 0


def cmd_push(a):
    host, port = parse_addr(a.connect)
    s = socket.create_connection((host, port), timeout=a.duration)
    s.setblocking(False)
    blk = random.Random(8).randbytes(CHUNK)
    sent = 0
    end = time.time() + a.seconds
    while time.time() < end:
        try:
            sent += s.send(blk)
        except BlockingIOError:
            time.sleep(0.01)
    print(f"push: bytes={sent}", flush=True)
    s.close()
    return 0


def recv_line(c):
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(1)
        if not b:
            raise OSError("EOF before the end of the request line")
        line += b
        if len(line) > 100:
            raise OSError("request line too long")
    return line.decode()


def digest_conn(c):
    try:
        req = recv_line(c).split()
        if req[0] == "up":
            left = int(req[1])
            h = hashlib.sha256()
            while left > 0:
                b = c.recv(min(CHUNK, left))
                if not b:
                    break
                h.update(b)
                left -= len(b)
            c.sendall(h.hexdigest().encode() + b"\n")
        elif req[0] == "down":
            for blk in stream_blocks(int(req[2]), int(req[1]), False):
                c.sendall(blk)
        elif req[0] == "echo":
            echo_conn(c)
            return
        c.settimeout(60)
        while c.recv(CHUNK):
            pass
    except (OSError, ValueError, IndexError):
        pass
    finally:
        c.close()


def cmd_digest(a):
    return serve(a, digest_conn)


def oneway_one(a, idx, results):
    host, port = parse_addr(a.connect)
    seed = a.seed * 1000003 + idx
    err = []
    try:
        s = socket.create_connection((host, port), timeout=a.duration)
        s.sendall(b"up %d\n" % a.bytes)
        h = hashlib.sha256()
        for blk in stream_blocks(seed, a.bytes, False):
            h.update(blk)
            s.sendall(blk)
        got = b""
        while not got.endswith(b"\n") and len(got) < 100:
            b = s.recv(100)
            if not b:
                break
            got += b
        s.close()
        if got.strip() != h.hexdigest().encode():
            err.append("up: sha256 mismatch (%d reply bytes)" % len(got))
    except OSError as e:
        err.append(f"up: {e}")
    try:
        s = socket.create_connection((host, port), timeout=a.duration)
        s.sendall(b"down %d %d\n" % (a.bytes, seed))
        want = hashlib.sha256()
        for blk in stream_blocks(seed, a.bytes, False):
            want.update(blk)
        h = hashlib.sha256()
        n = 0
        while n < a.bytes:
            b = s.recv(CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
        s.close()
        if n != a.bytes:
            err.append(f"down: received {n} of {a.bytes} bytes")
        elif h.digest() != want.digest():
            err.append("down: sha256 mismatch")
    except OSError as e:
        err.append(f"down: {e}")
    results[idx] = f"stream {idx}: " + ", ".join(err) if err else None


def cmd_oneway(a):
    return run_streams(a, oneway_one, "oneway")


def cmd_eof(a):
    """Writes --bytes, half-closes, reads the echo to EOF; prints how many bytes came back and
    how long after the half-close the EOF came (a held FIN shows here)."""
    host, port = parse_addr(a.connect)
    s = socket.create_connection((host, port), timeout=a.duration)
    s.sendall(b"x" * a.bytes)
    s.shutdown(socket.SHUT_WR)
    t0 = time.time()
    got = 0
    while True:
        b = s.recv(CHUNK)
        if not b:
            break
        got += len(b)
    s.close()
    print(f"eof: bytes={got} seconds={time.time() - t0:.2f}", flush=True)
    return 0 if got == a.bytes else 1


def cmd_refused(a):
    host, port = parse_addr(a.connect)
    s = socket.create_connection((host, port), timeout=a.duration)
    try:
        b = s.recv(CHUNK)
    except ConnectionResetError:
        b = b""
    s.close()
    if b:
        print("refused: got data, want the connection closed", flush=True)
        return 1
    print("refused: closed", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "check", "refused", "flood", "stall", "hold",
                                     "push", "digest", "oneway", "eof"])
    ap.add_argument("--listen")
    ap.add_argument("--connect")
    ap.add_argument("--bytes", type=int, default=1 << 20)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--text", action="store_true")
    ap.add_argument("--no-halfclose", action="store_true",
                    help="read the whole echo before closing (kcptun closes both ways at once)")
    ap.add_argument("--digest-target", action="store_true",
                    help="the target is a digest target: ask it to echo")
    ap.add_argument("--mixed", action="store_true", help="even streams text, odd random")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    modes = {"echo": cmd_echo, "check": cmd_check, "refused": cmd_refused, "flood": cmd_flood,
             "stall": cmd_stall, "hold": cmd_hold, "push": cmd_push,
             "digest": cmd_digest, "oneway": cmd_oneway, "eof": cmd_eof}
    return modes[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
