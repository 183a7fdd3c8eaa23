#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end helper: a name server for tests of name lookups. Binds UDP H:53 (or --port) and
# prints "listening H:P". Every query is logged as "query NAME TYPE". Names given with
# --answer NAME=IPV4@SECONDS get that A record (and an empty answer to other types) after
# SECONDS; names given with --hang are never answered; all others get NXDOMAIN at once.
import argparse
import socket
import struct
import threading


def qname(msg):
    labels, i = [], 12
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
    return ".".join(labels).lower().rstrip("."), qtype, i + 5


def reply(msg, end, rcode, addr):
    ident = msg[:2]
    flags = 0x8180 | rcode
    body = msg[12:end]
    ans = b""
    if addr:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    return ident + struct.pack("!HHHHH", flags, 1, 1 if addr else 0, 0, 0) + body + ans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--answer", action="append", default=[])
    ap.add_argument("--hang", action="append", default=[])
    args = ap.parse_args()
    answers = {}
    for a in args.answer:
        name, rest = a.split("=", 1)
        ip, secs = rest.split("@", 1)
        answers[name.lower()] = (ip, float(secs))
    hang = {h.lower() for h in args.hang}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.listen, args.port))
    print("listening %s:%d" % s.getsockname(), flush=True)
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            name, qtype, end = qname(msg)
        except (IndexError, struct.error):
            continue
        print("query", name, qtype, flush=True)
        if name in hang:
            continue
        if name in answers:
            ip, secs = answers[name]
            out = reply(msg, end, 0, ip if qtype == 1 else None)
            threading.Timer(secs, s.sendto, (out, peer)).start()
        else:
            s.sendto(reply(msg, end, 3, None), peer)


if __name__ == "__main__":
    main()
