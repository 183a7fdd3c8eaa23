# SPDX-License-Identifier: MIT
"""ktun.Kcp: transfers between two engines in memory, loss, modes, messages, statistics."""
import hashlib
import random

import pytest

import ktun


def payload(n, seed=1):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


def lossy(batch, rng, loss):
    """Drops each packet of a framed batch with probability loss."""
    return ktun.frame_batch(p for p in ktun.split_batch(batch) if rng.random() >= loss)


def transfer(a, b, data, loss=0.0, seed=7, limit_ms=120000):
    """Sends data from a to b over an in-process channel losing `loss` of the packets in
    both directions; returns (bytes received, simulated ms)."""
    rng = random.Random(seed)
    sent, got, now = 0, bytearray(), 0
    while len(got) < len(data) and now < limit_ms:
        while sent < len(data) and a.send_room > 0:
            chunk = data[sent:sent + 65536]
            a.send(chunk)
            sent += len(chunk)
        a.flush(now)
        b.input_batch(lossy(a.output_batch(), rng, loss), now)
        got += b.recv()
        a.input_batch(lossy(b.output_batch(), rng, loss), now)
        now += 1
        a.update(now)
        b.update(now)
    return bytes(got), now


def test_stream_pair():
    a = ktun.Kcp(7, mode="fast3", stream=True)
    b = ktun.Kcp(7, mode="fast3", stream=True)
    data = payload(200000)
    got, _ = transfer(a, b, data)
    assert got == data
    assert b.stats()["in_segs"] > 0
    assert a.stats()["out_segs"] >= len(data) // a.mss


def test_lossy_channel_moves_1mb_intact():
    a = ktun.Kcp(1, mode="fast3", stream=True, sndwnd=256, rcvwnd=256)
    b = ktun.Kcp(1, mode="fast3", stream=True, sndwnd=256, rcvwnd=256)
    data = payload(1 << 20, seed=3)
    got, ms = transfer(a, b, data, loss=0.1)
    assert len(got) == len(data) and got == data, f"{len(got)} of {len(data)} after {ms} ms"
    st = a.stats()
    assert st["retrans_segs"] > 0          # the channel really lost packets
    assert b.stats()["repeat_segs"] >= 0


def test_message_mode_keeps_boundaries():
    a, b = ktun.Kcp(9, mode="fast"), ktun.Kcp(9, mode="fast")
    msgs = [b"a", b"bb" * 1000, b"c" * 5000, b"d"]
    for m in msgs:
        a.send(m)
    a.flush(0)
    for p in a.datagrams():
        assert b.input(p, 0)
    assert b.recv_messages() == msgs
    assert b.recv() == b""


def test_output_callback_and_datagrams():
    seen = []
    a = ktun.Kcp(3, mode="fast", output=seen.append)
    a.send(b"hello")
    a.flush(0)
    assert len(seen) == 1 and seen[0][24:] == b"hello"
    assert a.datagrams() == []
    b = ktun.Kcp(3)
    assert b.input(seen[0], 0)
    assert b.recv() == b"hello"


def test_next_deadline_and_idle():
    a = ktun.Kcp(1, mode="fast")
    d = a.next_deadline(0)
    assert d is None or d >= 0
    a.send(b"x")
    a.flush(1000)
    d = a.next_deadline(1000)
    assert d is not None and 1000 <= d <= 1000 + 1000


def test_modes_by_name():
    for name, profile in ktun.MODES.items():
        ktun.Kcp(1, mode=name)
        # the profile reaches the core: Link reads its configuration back from C
        cfg = ktun.Link(1, "none", mode=name).config
        assert (cfg["nodelay"], cfg["interval_ms"], cfg["resend"], cfg["nc"]) == profile, name
    with pytest.raises(ValueError):
        ktun.Kcp(1, mode="warp")


def test_bad_packets_are_counted_not_fatal():
    b = ktun.Kcp(5)
    assert not b.input(b"\x00" * 10, 0)
    assert not b.input(bytes(range(256)) * 4, 0)
    other = ktun.Kcp(6, mode="fast")
    other.send(b"x")
    other.flush(0)
    assert not b.input(other.datagrams()[0], 0)   # another conversation
    st = b.stats()
    assert st["drop_short"] + st["drop_cmd"] + st["drop_len"] >= 1
    assert st["drop_conv"] == 1


def test_bytearray_and_memoryview_inputs():
    a, b = ktun.Kcp(2, mode="fast", stream=True), ktun.Kcp(2, stream=True)
    a.send(bytearray(b"abc"))
    a.send(memoryview(b"defgh")[1:4])
    a.flush(0)
    for p in a.datagrams():
        b.input(memoryview(p), 0)
    assert b.recv() == b"abcefg"
