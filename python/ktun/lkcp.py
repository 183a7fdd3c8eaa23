# SPDX-License-Identifier: MIT
"""A drop-in ``KcpObj`` for code written against the ``lkcp`` module (Cython over ikcp).

    from ktun.lkcp import KcpObj
    kcp = KcpObj(conv, uid, lambda uid, data: sock.sendto(data, addr))
    kcp.nodelay(1, 10, 2, 1); kcp.wndsize(128, 128); kcp.setmtu(1000)
    kcp.update(time.time()); kcp.input(datagram); n, data = kcp.recv(); kcp.send(data)

Same calls, same arguments, same return conventions: ``update``/``check`` take the time in
seconds (a float), ``recv`` returns ``(length, data)`` with a negative length when nothing is
readable, ``send`` takes bytes or a str (sent as UTF-8) and returns 0 or a negative code. The
engine underneath is ktun's KCP core (kcp-go behaviour, message mode), and the output callback
runs after the engine returned, so it may raise (the exception propagates out of the call that
produced the packet) or call back into the same object.
"""

from .core import Kcp, KtunError, _u64

__all__ = ["KcpObj"]


def _ms(seconds):
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError("time must be a number of seconds")
    if seconds != seconds or seconds < 0:
        raise ValueError("time must be a non-negative number of seconds")
    return _u64(int(seconds * 1000))


class KcpObj:
    """lkcp's KcpObj(conv, id, callback) with callback(id, data) for every outgoing packet."""

    def __init__(self, conv, id, callback):
        if not callable(callback):
            raise TypeError("callback must be callable")
        self.conv = conv
        self.id = id
        self._cb = callback
        self._now = 0
        self._kcp = Kcp(conv, output=self._out)

    def _out(self, data):
        self._cb(self.id, data)

    def nodelay(self, nodelay, interval, resend, nc):
        self._kcp.set_nodelay(nodelay, interval, resend, nc)
        return 0

    def wndsize(self, sndwnd, rcvwnd):
        try:
            self._kcp.set_window(sndwnd, rcvwnd)
        except KtunError as e:
            return e.code
        return 0

    def setmtu(self, mtu):
        try:
            self._kcp.set_mtu(mtu)
        except (KtunError, ValueError):
            return -1
        return 0

    def update(self, current):
        """ikcp_update: call it regularly with the current time in seconds."""
        self._now = _ms(current)
        self._kcp.update(self._now)

    def check(self, current):
        """ikcp_check: the time (seconds) at which update should next be called."""
        now = _ms(current)
        d = self._kcp.next_deadline(now)
        if d is None:
            d = now + 100
        return max(d, now) / 1000.0

    def flush(self):
        self._kcp.flush(self._now)

    def input(self, data):
        """Feeds a received packet; 0 if taken, negative if (partly) malformed."""
        return 0 if self._kcp.input(data, self._now) else -1

    def recv(self):
        data = self._kcp.recv()
        if not data:
            return -1, b""
        return len(data), data

    def peeksize(self):
        n = self._kcp.recv_avail
        return n if n else -1

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            self._kcp.send(data)
        except KtunError as e:
            return e.code
        return 0

    def waitsnd(self):
        return self._kcp.wait_snd
