# SPDX-License-Identifier: MIT
"""asyncio drivers: a datagram protocol that runs a Kcp or Link on the loop's clock, and a
kcptun client (Link + Mux) with stream objects.

    engine = ktun.Link(conv, "aes", "secret")
    transport, proto = await loop.create_datagram_endpoint(
        lambda: ktun.aio.EngineProtocol(engine, on_receive=print), remote_addr=(host, port))
    proto.send(b"hello")

    session = await ktun.aio.KcptunClient.connect("127.0.0.1", 29900, key="secret",
                                                  crypt="aes", smuxver=2)
    stream = await session.open_stream()
    stream.write(b"ping"); await stream.drain(); print(await stream.read())
"""

import asyncio
import os
import time

from .core import Comp, Crypt, KtunError, Link, Mux, Qpp

__all__ = ["EngineProtocol", "KcptunClient", "MuxStream"]


class EngineProtocol(asyncio.DatagramProtocol):
    """Drives an engine (ktun.Kcp or ktun.Link) from an asyncio datagram endpoint.

    Datagrams received go to engine.input; a timer armed at engine.next_deadline() ticks it;
    every datagram the engine emits goes to the transport (to ``peer``, else the connected
    remote address, else the first address a datagram came from; others are ignored). Received bytes (stream) or messages are passed to ``on_receive(data)``.
    Time is the loop's monotonic clock in ms.
    """

    def __init__(self, engine, on_receive=None, peer=None):
        self.engine = engine
        self.on_receive = on_receive
        self.peer = peer
        self.transport = None
        self.loop = None
        self._timer = None
        self._timer_at = None
        self.datagram_errors = 0

    def now_ms(self):
        return int(self.loop.time() * 1000)

    # -- asyncio protocol
    def connection_made(self, transport):
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        if isinstance(self.engine, Link):
            self.engine.set_wall_offset(int(time.time() * 1000) - self.now_ms())
        self.pump()

    def datagram_received(self, data, addr):
        if self.peer is None and self.transport.get_extra_info("peername") is None:
            self.peer = addr   # unconnected socket: the first sender becomes the peer
        elif self.peer is not None and addr != self.peer:
            return
        self.engine.input(data, self.now_ms())
        self.pump()

    def error_received(self, exc):
        self.datagram_errors += 1

    def connection_lost(self, exc):
        self.cancel_timer()
        self.transport = None

    # -- driving
    def send(self, data):
        """Queues bytes for the peer and flushes them out."""
        self.engine.send(data)
        self.engine.flush(self.now_ms())
        self.pump()

    def received(self, data):
        """Called with received bytes/messages; calls on_receive by default."""
        if self.on_receive is not None:
            self.on_receive(data)

    def extra_deadline(self):
        """Absolute ms of an additional timer (subclasses), or None."""
        return None

    def on_timer(self, now_ms):
        """Timer work of subclasses."""

    def pump(self):
        """Moves everything that is ready: engine output to the socket, input to received()."""
        if self.transport is None:
            return
        while True:
            data = self.engine.recv()
            if not data:
                break
            self.received(data)
        self._send_out()
        self._arm()

    def _send_out(self):
        tr = self.transport
        if tr is None:
            self.engine.datagrams()
            return
        for d in self.engine.datagrams():
            if self.peer is None:
                tr.sendto(d)
            else:
                tr.sendto(d, self.peer)

    def cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None

    def _arm(self):
        now = self.now_ms()
        d = self.engine.next_deadline(now)
        x = self.extra_deadline()
        if x is not None and (d is None or x < d):
            d = x
        if d is None:
            self.cancel_timer()
            return
        if self._timer is not None and self._timer_at == d:
            return
        self.cancel_timer()
        self._timer_at = d
        self._timer = self.loop.call_at(max(d, now) / 1000.0, self._fire)

    def _fire(self):
        self._timer = None
        self._timer_at = None
        if self.transport is None:
            return
        now = self.now_ms()
        self.engine.update(now)
        self.on_timer(now)
        self.pump()


class MuxStream:
    """One smux stream of a KcptunClient session."""

    def __init__(self, session, sid):
        self._s = session
        self.sid = sid
        self._wake = asyncio.Event()
        self._pending = bytearray()   # written, not yet taken by the mux (v2 window, KCP room)
        self._drained = asyncio.Event()
        self._drained.set()
        self._rbuf = bytearray()      # read past what readexactly() was asked for
        self.closed = False

    def _check_session(self):
        s = self._s
        if s.mux.closed:
            raise ConnectionResetError(f"session closed: {s.mux.close_reason}")
        if s.transport is None:
            raise ConnectionResetError("session closed" + (f": {s.error}" if s.error else ""))

    async def read(self):
        """The bytes that arrived (waits for some); b"" at end of stream."""
        if self._rbuf:
            d = bytes(self._rbuf)
            self._rbuf.clear()
            return d
        while True:
            if self.closed:
                raise ConnectionError("stream released")
            try:
                d = self._s.mux.read(self.sid)
            except KtunError as e:
                raise ConnectionResetError(f"stream {self.sid}: {e}") from None
            if d is not None:
                self._s.pump()   # reading frees receive budget and may send a window update
                return d
            self._check_session()
            self._wake.clear()
            await self._wake.wait()

    async def readexactly(self, n):
        buf = bytearray()
        while len(buf) < n:
            d = await self.read()
            if not d:
                raise asyncio.IncompleteReadError(bytes(buf), n)
            buf += d
        self._rbuf[:0] = buf[n:]
        return bytes(buf[:n])

    def write(self, data):
        """Queues data on the stream (sent as the window allows; await drain())."""
        if self.closed:
            raise ConnectionError("stream released")
        if isinstance(data, str):
            raise TypeError("write() takes bytes, not str")
        self._pending += data
        self._drained.clear()
        self._s.pump()

    async def drain(self):
        while self._pending:
            if self.closed:
                raise ConnectionError("stream released")
            self._check_session()
            self._drained.clear()
            await self._drained.wait()

    def close(self):
        """Forgets the stream (FIN to the peer; unread data dropped)."""
        if not self.closed:
            self.closed = True
            self._s._streams.pop(self.sid, None)
            try:
                self._s.mux.release(self.sid)
            except KtunError:
                pass
            self._wake.set()
            self._drained.set()
            self._s.pump()

    def _flush(self):
        """Moves pending bytes into the mux as far as window and KCP room allow."""
        mux, link = self._s.mux, self._s.link
        while self._pending and link.send_room > 0:
            try:
                n = mux.write(self.sid, bytes(self._pending[:65536]))
            except KtunError:
                self._pending.clear()
                break
            if n == 0:
                break
            del self._pending[:n]
            self._s._send_frames()
        if not self._pending:
            self._drained.set()


class KcptunClient(EngineProtocol):
    """A kcptun client session: one UDP socket, one Link, one smux session, many streams.

    Options mirror kcptun-client's flags and defaults: key, crypt, mode, mtu, sndwnd, rcvwnd,
    datashard, parityshard, nocomp (False: kcptun's snappy compression, as kcptun's default),
    smuxver, smuxbuf, streambuf, keepalive, acknodelay, qpp, qppcount (newer kcptun's --QPP;
    qppvariant "A"/"B" for older QPP builds, or pass a ktun.Qpp).
    """

    def __init__(self, link, mux, comp=None):
        super().__init__(link)
        self.link = link
        self.mux = mux
        self.comp = comp
        self.error = None
        self._rx = b""
        self._streams = {}
        self.accepted = asyncio.Queue()

    @classmethod
    async def connect(cls, host, port, *, key="it's a secrect", crypt="aes", mode="fast",
                      mtu=1350, sndwnd=128, rcvwnd=512, datashard=10, parityshard=3, smuxver=1,
                      smuxbuf=4194304, streambuf=2097152, keepalive=10, acknodelay=False,
                      nocomp=False, qpp=False, qppcount=61, qppvariant="C", conv=None,
                      **link_options):
        loop = asyncio.get_running_loop()
        now = int(loop.time() * 1000)
        c = crypt if isinstance(crypt, Crypt) else Crypt(crypt, key)
        if conv is None:
            conv = int.from_bytes(os.urandom(4), "little")
        link = Link(conv, c, mode=mode, mtu=mtu, sndwnd=sndwnd, rcvwnd=rcvwnd,
                    data_shards=datashard, parity_shards=parityshard, ack_nodelay=acknodelay,
                    **link_options)
        pads = None
        if isinstance(qpp, Qpp):
            pads = qpp
        elif qpp:
            pads = Qpp(key, qppcount, qppvariant)
        mux = Mux(is_client=True, now_ms=now, version=smuxver, max_receive_buffer=smuxbuf,
                  max_stream_buffer=streambuf, keepalive_interval_ms=keepalive * 1000, qpp=pads)
        proto = cls(link, mux, None if nocomp else Comp())
        await loop.create_datagram_endpoint(lambda: proto, remote_addr=(host, port))
        return proto

    async def open_stream(self):
        sid = self.mux.open_stream()
        st = MuxStream(self, sid)
        self._streams[sid] = st
        self.pump()
        return st

    def close(self):
        for st in list(self._streams.values()):
            st.close()
        self.pump()
        if self.transport is not None:
            self.transport.close()

    # -- plumbing
    def _send_frames(self):
        out = self.mux.output()
        if out:
            self.link.send(self.comp.compress(out) if self.comp else out)

    def extra_deadline(self):
        return self.mux.next_deadline()

    def on_timer(self, now_ms):
        self.mux.tick(now_ms)

    def pump(self):
        if self.transport is None:
            return
        now = self.now_ms()
        for _ in range(64):   # bounded: each round either moves bytes or stops
            if len(self._rx) < 65536:   # else leave it in KCP: its window holds the peer back
                data = self.link.recv()
                if data and self.comp:
                    try:
                        data = self.comp.decompress(data)
                    except KtunError as e:   # corrupt compression stream: the session is lost
                        self.error = str(e)
                        self.close()
                        return
                self._rx += data
            progressed = False
            if self._rx:
                n = self.mux.input(self._rx, now)
                if n:
                    self._rx = self._rx[n:]
                    progressed = True
            for kind, sid in self.mux.events():
                progressed = True
                st = self._streams.get(sid)
                if kind == "open":
                    st = MuxStream(self, sid)
                    self._streams[sid] = st
                    self.accepted.put_nowait(st)
                elif kind == "close":
                    for s in self._streams.values():
                        s._wake.set()
                        s._drained.set()
                elif st is not None:
                    st._wake.set()
            for st in list(self._streams.values()):
                if st._pending:
                    st._flush()
            out = self.mux.output()
            if out:
                self.link.send(self.comp.compress(out) if self.comp else out)
                progressed = True
            if not progressed:
                break
        self.link.flush(now)
        self._send_out()
        self._arm()
