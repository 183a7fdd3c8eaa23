# SPDX-License-Identifier: MIT
"""ktun.aio.EngineProtocol: two Links talking over real UDP sockets on loopback, driven by the
asyncio loop's clock (timers at next_deadline, no polling)."""
import asyncio

import ktun
import ktun.aio
from test_kcp import payload


async def exchange(method, size):
    loop = asyncio.get_running_loop()
    got = bytearray()
    done = asyncio.Event()

    def on_b(data):
        got.extend(data)
        if len(got) >= size:
            done.set()

    ca = ktun.Crypt(method, "aio", "client")
    cb = ktun.Crypt(method, "aio", "server")
    tb, pb = await loop.create_datagram_endpoint(
        lambda: ktun.aio.EngineProtocol(ktun.Link(42, cb, mode="fast3"), on_receive=on_b),
        local_addr=("127.0.0.1", 0))
    baddr = tb.get_extra_info("sockname")
    ta, pa = await loop.create_datagram_endpoint(
        lambda: ktun.aio.EngineProtocol(ktun.Link(42, ca, mode="fast3")), remote_addr=baddr)
    data = payload(size, seed=11)
    try:
        for i in range(0, size, 8192):
            pa.send(data[i:i + 8192])
        await asyncio.wait_for(done.wait(), 30)
    finally:
        ta.close()
        tb.close()
    return bytes(got), data, pa.engine.stats(), pb.engine.stats()


def test_link_pair_over_udp_with_asyncio():
    got, data, sa, sb = asyncio.run(exchange("aes", 1 << 20))
    assert got == data
    assert sb["in_errs"] == 0 and sa["out_pkts"] > 700


def test_secure_mode_over_udp_with_asyncio():
    got, data, _, sb = asyncio.run(exchange("xsalsa20-poly1305", 200000))
    assert got == data and sb["in_errs"] == 0
