#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Opens one stream through a kcptun server and echoes lines through it.

    kcptun-server -l 127.0.0.1:29900 -t 127.0.0.1:7 --key secret --crypt aes \
        --ds 10 --ps 3 --smuxver 2
    python3 examples/python/kcptun_client.py -r 127.0.0.1:29900 --key secret \
        --crypt aes --smuxver 2 hello world

(add --nocomp on both sides to turn kcptun's snappy compression off)

Sends each argument (or each line of stdin without arguments) on the stream and prints what
comes back; with --bytes N it sends N pseudo-random bytes, checks that the same bytes come
back and prints "ok N bytes". Exit status 0 on success, 1 on a mismatch or timeout.
"""

import argparse
import asyncio
import hashlib
import os
import sys

try:
    import ktun.aio
except ImportError:  # not installed: use the source tree (python/ next to examples/)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import ktun.aio


async def run(args):
    host, port = args.remote.rsplit(":", 1)
    session = await ktun.aio.KcptunClient.connect(
        host, int(port), key=args.key, crypt=args.crypt, mode=args.mode,
        datashard=args.ds, parityshard=args.ps, smuxver=args.smuxver, nocomp=args.nocomp)
    try:
        stream = await session.open_stream()
        if args.bytes:
            data = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()
                            for i in range(args.bytes // 32 + 1))[:args.bytes]
            stream.write(data)
            got = await asyncio.wait_for(stream.readexactly(len(data)), args.timeout)
            if got != data:
                print("mismatch", file=sys.stderr)
                return 1
            print(f"ok {len(data)} bytes")
            return 0
        lines = args.words or [l.rstrip("\n") for l in sys.stdin]
        for line in lines:
            msg = line.encode()
            stream.write(msg)
            print((await asyncio.wait_for(stream.readexactly(len(msg)), args.timeout)).decode())
        stream.close()
        return 0
    finally:
        session.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-r", "--remote", required=True, help="kcptun server host:port")
    p.add_argument("--key", default="it's a secrect")
    p.add_argument("--crypt", default="aes")
    p.add_argument("--mode", default="fast")
    p.add_argument("--ds", type=int, default=10)
    p.add_argument("--ps", type=int, default=3)
    p.add_argument("--smuxver", type=int, default=1)
    p.add_argument("--nocomp", action="store_true", help="no compression (as the server)")
    p.add_argument("--bytes", type=int, default=0)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("words", nargs="*")
    args = p.parse_args()
    try:
        return asyncio.run(run(args))
    except asyncio.TimeoutError:
        print("timeout", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
