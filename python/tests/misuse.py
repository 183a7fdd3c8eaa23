# SPDX-License-Identifier: MIT
"""Misuse script: wrong types, raising callbacks, re-entrant callbacks, objects dropped in the
middle of a transfer, threads sharing one object. Every misuse must end in a Python exception
or be harmless; the interpreter must never crash. Prints "misuse ok N" at the end.
Run directly (python3 misuse.py) or through tests/test_misuse.py (in a child process, so a
crash shows up as a failed test, not a dead test runner)."""
import gc
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ktun  # noqa: E402
from ktun.lkcp import KcpObj  # noqa: E402

checks = 0


def expect(exc, fn, *args, **kw):
    global checks
    try:
        fn(*args, **kw)
    except exc:
        checks += 1
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{fn} raised {type(e).__name__}: {e}, expected {exc}") from e
    raise AssertionError(f"{fn}{args} did not raise {exc}")


class Boom(Exception):
    pass


def wrong_types():
    k = ktun.Kcp(1, mode="fast")
    expect((TypeError, ValueError), ktun.Kcp, "1")
    expect(ValueError, ktun.Kcp, -1)
    expect(ValueError, ktun.Kcp, 2**33)
    expect(TypeError, ktun.Kcp, 1, output=42)
    expect(TypeError, k.send, 123)
    expect(TypeError, k.send, "text")
    expect(TypeError, k.send, None)
    expect(TypeError, k.input, None, 0)
    expect(TypeError, k.input, b"x", "now")
    expect(ValueError, k.update, -5)
    expect(ValueError, k.flush, 2**64)
    expect(ValueError, k.set_mtu, -1)
    expect((ktun.KtunError, OverflowError), k.set_mtu, 2**70)
    expect(ktun.KtunError, k.set_mtu, 3)
    expect((TypeError, OverflowError), k.set_window, "a", 3)
    expect(ValueError, k.set_mode, "nope")
    expect(ktun.KtunError, k.send, b"")
    expect((TypeError, ValueError), k.input_batch, "text", 0)
    expect(ktun.KtunError, k.input_batch, b"\xff\xff\xff\x7f" + b"x", 0)
    expect(ValueError, ktun.Crypt, "rot13")
    expect(ValueError, ktun.Crypt, "aes", "nul\0key")
    expect(TypeError, ktun.Crypt, 5)
    expect(ValueError, ktun.Crypt, "aes", "k", "middle")
    expect(TypeError, ktun.Link, 1, 42)
    expect(TypeError, ktun.Link, 1, "aes", mtu="big")
    expect(ValueError, ktun.Link, 1, "aes", mtu=-1)
    expect(ktun.KtunError, ktun.Link, 1, "aes", data_shards=200, parity_shards=100)
    expect(ValueError, ktun.Mux, version=3)
    expect(ValueError, ktun.Mux, max_frame_size=0)
    m = ktun.Mux(version=2)
    expect(ktun.KtunError, m.read, 99)
    expect(ktun.KtunError, m.write, 99, b"x")
    expect(ktun.KtunError, m.release, 99)
    expect((TypeError, OverflowError), m.read, -1)
    expect(TypeError, m.write, 3, "text")
    expect(TypeError, ktun.Qpp, 5)
    expect(ValueError, ktun.Qpp, "k", 70000)
    expect(ValueError, ktun.Qpp, "k", 3, "D")
    expect(TypeError, ktun.Mux, qpp=object())
    o = KcpObj(1, 1, lambda uid, d: None)
    expect(TypeError, o.update, "now")
    expect(ValueError, o.update, float("nan"))
    expect(TypeError, o.input, 5)
    expect(TypeError, KcpObj, 1, 1, None)
    assert o.setmtu(2) < 0 and o.send(b"") < 0
    checks_fuzz()


def checks_fuzz():
    """Random garbage into every input path."""
    global checks
    rnd = __import__("random").Random(5)
    k = ktun.Kcp(1)
    link = ktun.Link(1, "aes")
    m = ktun.Mux(version=2)
    for _ in range(2000):
        blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 1600)))
        k.input(blob, 0)
        link.input(blob, 0)
        m.input(blob, 0)
    checks += 1


def raising_callbacks():
    global checks
    calls = []

    def bad(pkt):
        calls.append(pkt)
        if len(calls) == 2:
            raise Boom("output failed")

    a = ktun.Kcp(4, mode="fast3", output=bad)
    a.send(b"x" * 20000)
    expect(Boom, a.flush, 0)
    pending = a.datagrams()       # those after the failed one are kept, not lost
    assert len(calls) + len(pending) == a.stats()["out_pkts"], (len(calls), len(pending))
    checks += 1

    lk_calls = []

    def bad_lkcp(uid, data):
        lk_calls.append(data)
        if len(lk_calls) == 1:
            raise Boom("lkcp callback")

    o = KcpObj(9, 1, bad_lkcp)
    o.nodelay(1, 10, 2, 1)
    o.send("hello")
    expect(Boom, o.update, 1.0)
    o.update(1.5)  # still usable: the packet after the failed one is delivered now
    assert len(lk_calls) >= 1

    # a callback that re-enters the same object
    box = {}

    def reenter(pkt):
        k = box["k"]
        k.stats()
        k.next_deadline(0)
        if len(pkt) > 30:
            k.send(b"more")
    box["k"] = k = ktun.Kcp(5, mode="fast3", output=reenter)
    k.send(b"y" * 5000)
    k.flush(0)
    k.flush(1)
    checks += 1


def dropped_mid_transfer():
    global checks
    for i in range(30):
        a = ktun.Kcp(6, mode="fast3", stream=True)
        b = ktun.Kcp(6, mode="fast3", stream=True)
        la, lb = ktun.Link(6, "salsa20"), ktun.Link(6, "salsa20")
        m = ktun.Mux(version=2)
        sid = m.open_stream()
        m.write(sid, b"z" * 100000)
        a.send(b"q" * 300000)
        la.send(b"w" * 300000)
        for now in range(5):
            a.flush(now)
            la.flush(now)
            b.input_batch(a.output_batch(), now)
            for d in la.datagrams():
                lb.input(d, now)
        out = a.output_batch()
        if i % 3 == 0:
            del a
        elif i % 3 == 1:
            del b, lb
        else:
            del la, m
        gc.collect()
        # whatever survived keeps working
        for name, obj in list(locals().items()):
            if isinstance(obj, (ktun.Kcp, ktun.Link)):
                obj.update(10)
                obj.recv()
        del out
    # a Link keeps its Crypt alive: dropping the user's reference is safe
    c = ktun.Crypt("aes", "k")
    link = ktun.Link(1, c)
    del c
    gc.collect()
    link.send(b"still fine")
    link.flush(0)
    assert link.datagrams()
    checks += 1


def run_threads(work, args):
    """Runs work(arg) for each arg in a thread of its own; returns what they raised."""
    errors = []

    def guarded(arg):
        try:
            work(arg)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=guarded, args=(a,)) for a in args]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def threads_share_one_object():
    global checks
    k = ktun.Kcp(8, mode="fast3", stream=True)

    def worker(n):
        for i in range(300):
            k.send(b"t" * 500)
            k.flush(i)
            k.datagrams()
            k.stats()

    errors = run_threads(worker, range(4))
    assert not errors, errors

    # links of one secure-mode Crypt (shared nonce generator and counters) in several threads
    c = ktun.Crypt("xsalsa20-poly1305", "threads")
    links = [ktun.Link(i, c, mode="fast3") for i in range(4)]

    def link_worker(link):
        for i in range(200):
            link.send(b"s" * 3000)
            link.flush(i)
            link.datagrams()

    errors = run_threads(link_worker, links)
    assert not errors, errors
    checks += 1


if __name__ == "__main__":
    wrong_types()
    raising_callbacks()
    dropped_mid_transfer()
    threads_share_one_object()
    gc.collect()
    print(f"misuse ok {checks}")
