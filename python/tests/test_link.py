# SPDX-License-Identifier: MIT
"""ktun.Link (KCP + FEC + crypt) and ktun.Mux (smux) between two in-process ends."""
import random

import pytest

import ktun
from test_kcp import payload


def pair(method="aes", key="k", **opts):
    if method == "xsalsa20-poly1305":
        ca, cb = ktun.Crypt(method, key, "client"), ktun.Crypt(method, key, "server")
    else:
        ca = cb = ktun.Crypt(method, key)
    a = ktun.Link(0x1234, ca, mode="fast3", wall_offset_ms=1_700_000_000_000, **opts)
    b = ktun.Link(0x1234, cb, mode="fast3", wall_offset_ms=1_700_000_000_000, **opts)
    return a, b


def run(a, b, data, loss=0.0, seed=1, limit_ms=60000, back=b""):
    rng = random.Random(seed)

    def carry(src, dst, now):
        for d in src.datagrams():
            if rng.random() >= loss:
                dst.input(d, now)

    sent, got, got_back, now = 0, bytearray(), bytearray(), 0
    if back:
        b.send(back)
    while (len(got) < len(data) or len(got_back) < len(back)) and now < limit_ms:
        while sent < len(data) and a.send_room > 0:
            a.send(data[sent:sent + 16384])
            sent += 16384
        a.flush(now)
        b.flush(now)
        carry(a, b, now)
        carry(b, a, now)
        got += b.recv()
        got_back += a.recv()
        now += 1
        a.update(now)
        b.update(now)
    return bytes(got), bytes(got_back)


@pytest.mark.parametrize("method", ktun.crypt_methods())
def test_every_crypt_method(method):
    a, b = pair(method)
    data = payload(30000, seed=len(method))
    got, back = run(a, b, data, back=b"pong")
    assert got == data and back == b"pong"
    assert b.stats()["in_errs"] == 0


def test_fec_recovers_under_loss():
    a, b = pair("aes", data_shards=10, parity_shards=3)
    data = payload(500000, seed=5)
    got, _ = run(a, b, data, loss=0.05)
    assert got == data
    assert b.stats()["fec_recovered"] > 0


def test_wrong_key_is_dropped_and_counted():
    a = ktun.Link(1, ktun.Crypt("xsalsa20-poly1305", "one", "client"), mode="fast")
    b = ktun.Link(1, ktun.Crypt("xsalsa20-poly1305", "two", "server"), mode="fast")
    a.send(b"secret")
    a.flush(0)
    dgrams = a.datagrams()
    assert dgrams
    assert not any(b.input(d, 0) for d in dgrams)
    assert b.stats()["in_errs"] == len(dgrams)
    assert b.crypt.stats()["in_auth_errors"] == len(dgrams)


def test_link_options_checked():
    with pytest.raises(TypeError):
        ktun.Link(1, "aes", bogus_option=3)
    with pytest.raises(ValueError):
        ktun.Link(1, "no-such-method")
    with pytest.raises(ktun.KtunError):
        ktun.Link(1, "aes", mtu=40)
    with pytest.raises(ValueError):
        ktun.Link(1, "aes", data_shards=2**40)
    l = ktun.Link(1, "none", data_shards=0, parity_shards=0, mtu=1400)
    assert l.config["mtu"] == 1400 and l.config["data_shards"] == 0


def mux_pair(version):
    ca = ktun.Link(77, "aes", "k", mode="fast3")
    cb = ktun.Link(77, "aes", "k", mode="fast3")
    ma = ktun.Mux(is_client=True, version=version)
    mb = ktun.Mux(is_client=False, version=version)
    return ca, cb, ma, mb


@pytest.mark.parametrize("version", [1, 2])
def test_mux_streams_over_link(version):
    la, lb, ma, mb = mux_pair(version)
    sid = ma.open_stream()
    data = payload(600000, seed=version)
    rx_b, rx_a = b"", b""
    sent, got, echoed = 0, bytearray(), bytearray()
    peer_sid = None
    fin_seen = False
    now = 0
    while now < 60000 and not fin_seen:
        if sent < len(data) and la.send_room > 0:
            n = ma.write(sid, data[sent:sent + 32768])
            sent += n
            if sent == len(data):
                ma.close_stream(sid)
        la.send(ma.output())
        lb.send(mb.output())
        for l in (la, lb):
            l.flush(now)
        for d in la.datagrams():
            lb.input(d, now)
        for d in lb.datagrams():
            la.input(d, now)
        rx_b += lb.recv()
        rx_b = rx_b[mb.input(rx_b, now):]
        rx_a += la.recv()
        rx_a = rx_a[ma.input(rx_a, now):]
        for ev, s in mb.events():
            if ev == "open":
                peer_sid = s
        if peer_sid is not None:
            d = mb.read(peer_sid)
            if d:
                got += d
                mb.write(peer_sid, d[:10])    # a little back
            elif d == b"":
                fin_seen = True
        e = ma.read(sid)
        if e:
            echoed += e
        now += 1
        for x in (la, lb):
            x.update(now)
        ma.tick(now)
        mb.tick(now)
    assert bytes(got) == data
    assert fin_seen and peer_sid == sid == 3
    assert len(echoed) > 0
    st = mb.stats()
    assert st["streams_accepted"] == 1 and st["bytes_in"] == len(data)
    if version == 2:
        assert st["upd_out"] > 0
    mb.release(peer_sid)
    assert not mb.exists(peer_sid)


def test_mux_protocol_error_closes_session():
    m = ktun.Mux(version=2)
    assert m.input(b"\x07\x00\x00\x00\x00\x00\x00\x00", 0) == 0
    assert m.closed
    assert ("close", 0) in m.events()
    assert m.close_reason
    with pytest.raises(ktun.KtunError):
        m.open_stream()


def test_comp_round_trip_any_split():
    enc, dec = ktun.Comp(), ktun.Comp()
    data = payload(300000, seed=9) + b"z" * 200000       # incompressible, then compressible
    framed = enc.compress(data[:100000]) + enc.compress(data[100000:])
    assert len(framed) < len(data)
    rng = random.Random(3)
    out, i = bytearray(), 0
    while i < len(framed):
        n = rng.randrange(1, 5000)
        out += dec.decompress(framed[i:i + n])
        i += n
    assert bytes(out) == data


def test_comp_corrupt_stream_fails_for_good():
    enc, dec = ktun.Comp(), ktun.Comp()
    framed = bytearray(enc.compress(b"hello world" * 100))
    framed[-3] ^= 0xFF
    with pytest.raises(ktun.KtunError):
        dec.decompress(bytes(framed))
    with pytest.raises(ktun.KtunError):
        dec.decompress(b"")


def mux_direct(ma, mb, data):
    """Client ma opens a stream and writes data; returns what mb's accepted stream read."""
    sid = ma.open_stream()
    assert ma.write(sid, data) == len(data)
    mb.input(ma.output(), 0)
    (ev, peer), *_ = [e for e in mb.events() if e[0] == "open"]
    return mb.read(peer)


def test_mux_qpp_round_trip_and_mismatch():
    qa = ktun.Qpp("qpp-key", count=7)
    data = payload(20000, seed=2)
    ma = ktun.Mux(is_client=True, version=2, qpp=qa)
    mb = ktun.Mux(is_client=False, version=2, qpp=ktun.Qpp("qpp-key", count=7))
    assert mux_direct(ma, mb, data) == data
    plain = ktun.Mux(is_client=False, version=2)
    ma2 = ktun.Mux(is_client=True, version=2, qpp=qa)
    got = mux_direct(ma2, plain, data)
    assert len(got) == len(data) and got != data          # substituted on the wire
    other = ktun.Mux(is_client=False, version=2, qpp=ktun.Qpp("qpp-key", count=7, variant="A"))
    assert mux_direct(ktun.Mux(is_client=True, version=2, qpp=qa), other, data) != data
    with pytest.raises(ValueError):
        ktun.Qpp("k", count=0)
    with pytest.raises(TypeError):
        ktun.Mux(qpp="yes")
