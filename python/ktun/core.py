# SPDX-License-Identifier: MIT
"""Pythonic wrappers of ktun's cores: Kcp, Crypt, Link, Mux.

Design: the C cores never call into Python. Packets, frames and events they emit are queued on
the C side (python/csrc/pyshim.c) and handed to Python after the C call returned, one copy per
batch. So a Python callback may raise or call back into the same object freely, and a batch of
thousands of packets costs a handful of foreign calls. cffi releases the GIL around every C
call; each object has a lock so that two threads can never be inside its C state at once.

Time is always an integer millisecond clock passed by the caller (``now_ms``), as in the cores;
``ktun.aio`` drives the objects with the asyncio loop's clock.
"""

import operator
import struct
import threading

from ._ffi import ffi, lib

__all__ = ["KtunError", "Kcp", "Crypt", "Link", "Mux", "Comp", "Qpp", "MODES", "crypt_methods",
           "frame_batch", "split_batch"]

ERR_NAMES = {-1: "ERR_NOMEM", -2: "ERR_AGAIN", -3: "ERR_PROTO", -4: "ERR_AUTH",
             -5: "ERR_INVAL", -6: "ERR_CLOSED", -7: "ERR_TOOBIG", -8: "ERR_LIMIT"}
ERR_AGAIN = -2
ERR_CLOSED = -6

# kcptun's --mode profiles: (nodelay, interval ms, resend, nc). "manual"/"default" is kcp-go's
# own default engine setting.
MODES = {
    "normal": (0, 40, 2, 1),
    "fast": (0, 30, 2, 1),
    "fast2": (1, 20, 2, 1),
    "fast3": (1, 10, 2, 1),
    "default": (0, 100, 0, 0),
}

UINT64_MAX = (1 << 64) - 1
_LE32 = struct.Struct("<I")


class KtunError(Exception):
    """A ktun core refused an operation; ``code`` is the ERR_* value, ``name`` its name."""

    def __init__(self, code, what=""):
        self.code = code
        self.name = ERR_NAMES.get(code, str(code))
        text = ffi.string(lib.err_str(code)).decode()
        super().__init__(f"{what}: {text} ({self.name})" if what else f"{text} ({self.name})")


def _buf(data):
    """A zero-copy C view of a bytes-like object (bytes pass as they are)."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        raise TypeError("expected a bytes-like object, not str")
    return ffi.from_buffer(data)


def _u64(now_ms):
    if type(now_ms) is not int:
        if isinstance(now_ms, float):
            if now_ms != now_ms or now_ms in (float("inf"), float("-inf")):
                raise ValueError("now_ms must be finite")
            now_ms = int(now_ms)
        else:
            now_ms = operator.index(now_ms)   # TypeError for str, None, ...
    if now_ms < 0 or now_ms > UINT64_MAX:
        raise ValueError("now_ms must be a non-negative 64-bit integer")
    return now_ms


def _table(t):
    return tuple(ffi.string(lib.kpy_table_name(t, i)).decode()
                 for i in range(lib.kpy_table_size(t)))


_KCP_STATS, _LINK_STATS, _MUX_STATS, _CRYPT_STATS = (_table(i) for i in range(4))


def _take(q, framed, ptr=None):
    """Copies and clears a C queue: a list of records (framed) or one bytes object (raw).
    The caller holds the owner's lock; |ptr| is the owner's scratch out-pointer."""
    blob = _take_blob(q, ptr)
    if framed:
        return split_batch(blob) if blob else []
    return blob


def _take_blob(q, ptr=None):
    p = ptr if ptr is not None else ffi.new("const uint8_t **")
    n = lib.kpy_queue_peek(q, p, ffi.NULL)
    if n == 0:
        return b""
    blob = ffi.buffer(p[0], n)[:]
    lib.kpy_queue_clear(q)
    return blob


def split_batch(blob):
    """Splits a framed batch (LE32 length | bytes, ...) into a list of bytes."""
    out = []
    off, end = 0, len(blob)
    mv = memoryview(blob)
    while off + 4 <= end:
        (n,) = _LE32.unpack_from(blob, off)
        off += 4
        if off + n > end:
            raise ValueError("truncated batch")
        out.append(bytes(mv[off:off + n]))
        off += n
    if off != end:
        raise ValueError("truncated batch")
    return out


def frame_batch(packets):
    """Joins packets into a framed batch, the format of output_batch()/input_batch()."""
    parts = []
    for p in packets:
        parts.append(_LE32.pack(len(p)))
        parts.append(bytes(p))
    return b"".join(parts)


class _Emitter:
    """Delivers queued packets to an optional Python callback after the C call returned.

    If the callback raises, the packets not yet delivered stay queued (they go first next time)
    and the exception propagates to the caller of the method that produced them.
    """

    def __init__(self, output):
        if output is not None and not callable(output):
            raise TypeError("output must be callable or None")
        self._output = output
        self._pending = []

    def _emit(self, q):
        if self._output is None:
            return
        with self._lock:
            fresh = _take(q, True, self._ptr)
        pkts = self._pending + fresh if self._pending else fresh
        self._pending = []
        out = self._output
        for i, p in enumerate(pkts):
            try:
                out(p)
            except BaseException:
                self._pending = pkts[i + 1:]
                raise


def _check_conv(conv):
    if not isinstance(conv, int) or not 0 <= conv <= 0xFFFFFFFF:
        raise ValueError("conv must be an integer in 0..2**32-1")


def _stats(lock, fn, p, names):
    """A core's counters as a dict: fn(p, uint64_t[len(names)]) fills them under lock."""
    arr = ffi.new("uint64_t[]", len(names))
    with lock:
        fn(p, arr)
    return dict(zip(names, arr))


class _Api:
    """The entry points of one engine core (KCP or link) that _Engine calls."""

    def __init__(self, flush, tick, next_deadline, conv, send_room, wait_snd, recv_avail,
                 is_dead, srtt, rto, stats, stat_names):
        self.flush, self.tick, self.next_deadline = flush, tick, next_deadline
        self.conv, self.send_room, self.wait_snd = conv, send_room, wait_snd
        self.recv_avail, self.is_dead, self.srtt, self.rto = recv_avail, is_dead, srtt, rto
        self.stats, self.stat_names = stats, stat_names


class _Engine(_Emitter):
    """What Kcp and Link share: timer entry points, the emitted packets, state and counters.
    A subclass sets ``_api`` (its core's functions), ``_h`` (the core object) and ``_p`` (the
    binding's wrapper of it), ``_q`` (its packet queue), ``_lock`` and ``_ptr``."""

    _api = None

    def flush(self, now_ms):
        """Sends what is queued now (data, ACKs, window probes)."""
        with self._lock:
            self._api.flush(self._h, _u64(now_ms))
        self._emit(self._q)

    def tick(self, now_ms):
        """Timer entry point: runs due retransmissions, probes and interval flushes."""
        with self._lock:
            self._api.tick(self._h, _u64(now_ms))
        self._emit(self._q)

    def update(self, now_ms):
        """Ticks if something is due at now_ms (safe to call as often as you like)."""
        now = _u64(now_ms)
        with self._lock:
            if self._api.next_deadline(self._h, now) <= now:
                self._api.tick(self._h, now)
        self._emit(self._q)

    def next_deadline(self, now_ms):
        """Absolute ms of the next tick with work to do, or None when idle."""
        with self._lock:
            d = self._api.next_deadline(self._h, _u64(now_ms))
        return None if d == UINT64_MAX else d

    def datagrams(self):
        """Takes the packets emitted so far (a list of bytes)."""
        with self._lock:
            pkts = _take(self._q, True, self._ptr)
        if self._pending:
            pkts, self._pending = self._pending + pkts, []
        return pkts

    def output_batch(self):
        """Takes the packets emitted so far as one framed blob (LE32 length | packet ...)."""
        with self._lock:
            blob = _take_blob(self._q, self._ptr)
        if self._pending:
            blob, self._pending = frame_batch(self._pending) + blob, []
        return blob

    @property
    def conv(self):
        with self._lock:
            return self._api.conv(self._h)

    @property
    def send_room(self):
        """Bytes that may still be queued before the window is full (0: stop writing)."""
        with self._lock:
            return self._api.send_room(self._h)

    @property
    def wait_snd(self):
        with self._lock:
            return self._api.wait_snd(self._h)

    @property
    def recv_avail(self):
        with self._lock:
            return self._api.recv_avail(self._h)

    @property
    def is_dead(self):
        return bool(self._api.is_dead(self._h))

    @property
    def srtt(self):
        with self._lock:
            return self._api.srtt(self._h)

    @property
    def rto(self):
        with self._lock:
            return self._api.rto(self._h)

    def stats(self):
        """The core's SNMP-style counters as a dict."""
        return _stats(self._lock, self._api.stats, self._p, self._api.stat_names)


class Kcp(_Engine):
    """One KCP engine (kcp-go 5.6.1 behaviour): bytes in, bytes out, time from the caller.

    Packets the engine emits are collected; take them with ``datagrams()`` (a list) or
    ``output_batch()`` (one framed blob for ``input_batch`` of the peer), or pass
    ``output=callable`` to have them handed over after every call that can emit.
    """

    _api = _Api(lib.kcp_flush, lib.kcp_tick, lib.kcp_next_deadline, lib.kcp_conv,
                lib.kcp_send_room, lib.kcp_wait_snd, lib.kcp_recv_avail, lib.kcp_is_dead,
                lib.kcp_srtt, lib.kcp_rto, lib.kpy_kcp_stats, _KCP_STATS)

    def __init__(self, conv, *, mode=None, mtu=None, sndwnd=None, rcvwnd=None, stream=False,
                 ack_nodelay=False, pacing=False, output=None):
        super().__init__(output)
        _check_conv(conv)
        p = lib.kpy_kcp_new(conv)
        if p == ffi.NULL:
            raise MemoryError("kcp_new failed")
        self._p = ffi.gc(p, lib.kpy_kcp_free)
        self._k = self._h = lib.kpy_kcp_engine(p)
        self._q = lib.kpy_kcp_queue(p)
        self._rq = ffi.gc(lib.kpy_queue_new(), lib.kpy_queue_free)
        if self._rq == ffi.NULL:
            raise MemoryError("queue")
        self._lock = threading.Lock()
        self._ptr = ffi.new("const uint8_t **")
        self._rcap = 0
        self._rbuf = None
        self._stream = bool(stream)
        if mode is not None:
            self.set_mode(mode)
        if mtu is not None:
            self.set_mtu(mtu)
        if sndwnd is not None or rcvwnd is not None:
            self.set_window(sndwnd or 0, rcvwnd or 0)
        if stream:
            lib.kcp_set_stream(self._k, True)
        if ack_nodelay:
            lib.kcp_set_ack_nodelay(self._k, True)
        if pacing:
            lib.kcp_set_pacing(self._k, True, 0)

    # -- configuration
    def set_mode(self, mode):
        """kcptun's profiles by name (normal, fast, fast2, fast3, default) or a 4-tuple."""
        if isinstance(mode, str):
            try:
                mode = MODES[mode]
            except KeyError:
                raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})") from None
        nodelay, interval, resend, nc = mode
        self.set_nodelay(nodelay, interval, resend, nc)

    def set_nodelay(self, nodelay, interval, resend, nc):
        with self._lock:
            lib.kcp_set_nodelay(self._k, nodelay, interval, resend, nc)

    def set_window(self, sndwnd, rcvwnd):
        with self._lock:
            r = lib.kcp_set_window(self._k, sndwnd, rcvwnd)
        if r:
            raise KtunError(r, "set_window")

    def set_mtu(self, mtu):
        if not isinstance(mtu, int) or mtu < 0:
            raise ValueError("mtu must be a non-negative integer")
        with self._lock:
            r = lib.kcp_set_mtu(self._k, mtu)
        if r:
            raise KtunError(r, "set_mtu")

    def set_stream(self, on):
        with self._lock:
            lib.kcp_set_stream(self._k, bool(on))
            self._stream = bool(on)

    def set_ack_nodelay(self, on):
        with self._lock:
            lib.kcp_set_ack_nodelay(self._k, bool(on))

    def set_pacing(self, on, now_ms=0):
        with self._lock:
            lib.kcp_set_pacing(self._k, bool(on), _u64(now_ms))

    # -- data
    def send(self, data):
        """Queues bytes (copied). Data leaves on the next flush() or tick()."""
        b = _buf(data)
        with self._lock:
            r = lib.kcp_send(self._k, b, len(b))
        if r:
            raise KtunError(r, "send")

    def recv(self):
        """Stream mode: every readable byte; message mode: the next message. b"" if none."""
        with self._lock:
            if self._stream:
                n = lib.kpy_kcp_recv_all(self._p, self._rq, False)
                if n < 0:
                    raise KtunError(n, "recv")
                return _take_blob(self._rq, self._ptr)
            avail = lib.kcp_recv_avail(self._k)
            if avail == 0:
                return b""
            if avail > self._rcap:
                self._rcap = max(avail, 2 * self._rcap, 4096)
                self._rbuf = ffi.new("uint8_t[]", self._rcap)
            buf = self._rbuf
            n = lib.kcp_recv(self._k, buf, avail)
            if n < 0:
                raise KtunError(n, "recv")
            return ffi.buffer(buf, n)[:]

    def recv_messages(self):
        """Every readable message (message mode), or [one blob] in stream mode."""
        with self._lock:
            n = lib.kpy_kcp_recv_all(self._p, self._rq, not self._stream)
            if n < 0:
                raise KtunError(n, "recv")
            if self._stream:
                blob = _take_blob(self._rq, self._ptr)
                return [blob] if blob else []
            return _take(self._rq, True, self._ptr)

    def input(self, packet, now_ms, regular=True):
        """Feeds one received packet. Returns True if the engine took it whole."""
        b = _buf(packet)
        with self._lock:
            r = lib.kcp_input(self._k, b, len(b),
                              bool(regular), _u64(now_ms))
        self._emit(self._q)
        return r == 0

    def input_batch(self, batch, now_ms, regular=True):
        """Feeds a framed batch (from a peer's output_batch()); returns the packet count."""
        b = _buf(batch)
        with self._lock:
            r = lib.kpy_kcp_input_batch(self._p, b, len(b), bool(regular), _u64(now_ms))
        self._emit(self._q)
        if r < 0:
            raise KtunError(r, "input_batch: bad framing")
        return r

    # -- state (more in _Engine)
    @property
    def mss(self):
        with self._lock:
            return lib.kcp_mss(self._k)

    @property
    def cwnd(self):
        with self._lock:
            return lib.kcp_cwnd(self._k)


def crypt_methods():
    """Names of every crypt method: kcptun's, then ktun's secure mode."""
    names = lib.crypt_method_names()
    out = []
    i = 0
    while names[i] != ffi.NULL:
        out.append(ffi.string(names[i]).decode())
        i += 1
    return out


class Crypt:
    """A datagram crypt object: any of kcptun's methods, or ktun's secure mode
    ("xsalsa20-poly1305"). One object may serve many links; for the secure mode every datagram
    of a socket must be opened through one object (its replay table)."""

    def __init__(self, method="aes", key="it's a secrect", role="client"):
        if not isinstance(method, str) or not isinstance(key, (str, bytes)):
            raise TypeError("method must be str and key str or bytes")
        if role not in ("client", "server"):
            raise ValueError("role must be 'client' or 'server'")
        kb = key.encode() if isinstance(key, str) else key
        if b"\0" in kb or "\0" in method:
            raise ValueError("method and key must not contain NUL")
        err = ffi.new("int *")
        msg = ffi.new("char[]", 256)
        p = lib.kpy_crypt_new(method.encode(), kb, 0 if role == "client" else 1, err, msg, 256)
        if p == ffi.NULL:
            raise ValueError(ffi.string(msg).decode(errors="replace") or "crypt_new failed")
        self._p = ffi.gc(p, lib.kpy_crypt_free)
        self._c = lib.kpy_crypt_obj(p)
        # The object has state (nonce generator; the secure mode's counters and replay table):
        # every Link built on it takes this lock, so links sharing it in threads serialize.
        self._lock = threading.Lock()
        self.method = method
        self.role = role

    @property
    def head_len(self):
        return lib.crypt_head_len(self._c)

    @property
    def tail_len(self):
        return lib.crypt_tail_len(self._c)

    @property
    def authenticated(self):
        return bool(lib.crypt_is_authenticated(self._c))

    def set_start(self, wall_ms):
        """Secure mode: refuse new senders sealed before wall_ms (call once, at start)."""
        with self._lock:
            lib.crypt_set_start(self._c, _u64(wall_ms))

    def stats(self):
        return _stats(self._lock, lib.kpy_crypt_stats, self._p, _CRYPT_STATS)


def _config_names(which):
    out = []
    i = 0
    while True:
        n = lib.kpy_config_name(which, i)
        if n == ffi.NULL:
            return tuple(out)
        out.append(ffi.string(n).decode())
        i += 1


LINK_OPTIONS = _config_names(0)
MUX_OPTIONS = _config_names(1)


def _apply_config(cfg, setter, names, what, options):
    for name, value in options.items():
        if name not in names:
            raise TypeError(f"unknown {what} option {name!r} (known: {', '.join(names)})")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise TypeError(f"{what} option {name} must be an integer")
        if setter(cfg, name.encode(), value) != 0:
            raise ValueError(f"{what} option {name}={value} out of range")


class Link(_Engine):
    """One kcptun session's datagram stack: KCP (stream mode) + Reed-Solomon FEC + crypt.

    Defaults are kcptun's client defaults (FEC 10/3, mtu 1350, windows 128/512, mode fast,
    ktun pacing on). Keyword options: ``mode`` (a kcptun profile name) and every field of
    ``struct link_config`` by name (data_shards, parity_shards, mtu, sndwnd, rcvwnd, nodelay,
    interval_ms, resend, nc, ack_nodelay, pace, no_fec_hold, wall_offset_ms, ...).
    ``crypt`` is a Crypt object or a method name (then ``key`` is used).
    """

    _api = _Api(lib.link_flush, lib.link_tick, lib.link_next_deadline, lib.link_conv,
                lib.link_send_room, lib.link_wait_snd, lib.link_recv_avail, lib.link_is_dead,
                lib.link_srtt, lib.link_rto, lib.kpy_link_stats, _LINK_STATS)

    def __init__(self, conv, crypt="aes", key="it's a secrect", *, mode=None, output=None,
                 **options):
        super().__init__(output)
        _check_conv(conv)
        if isinstance(crypt, str):
            crypt = Crypt(crypt, key)
        if not isinstance(crypt, Crypt):
            raise TypeError("crypt must be a Crypt or a method name")
        self.crypt = crypt  # borrowed by the C link: kept alive with it
        cfg = ffi.gc(lib.kpy_link_config_new(), lib.kpy_link_config_free)
        if cfg == ffi.NULL:
            raise MemoryError("link config")
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
            for k, v in zip(("nodelay", "interval_ms", "resend", "nc"), MODES[mode]):
                lib.kpy_link_config_set(cfg, k.encode(), v)
        _apply_config(cfg, lib.kpy_link_config_set, LINK_OPTIONS, "link", options)
        err = ffi.new("int *")
        p = lib.kpy_link_new(conv, cfg, crypt._p, err)
        if p == ffi.NULL:
            raise KtunError(err[0], "link_new (check mtu and FEC shard counts)")
        self._p = ffi.gc(p, lib.kpy_link_free)
        self._l = self._h = lib.kpy_link_obj(p)
        self._q = lib.kpy_link_queue(p)
        self._rq = ffi.gc(lib.kpy_queue_new(), lib.kpy_queue_free)
        self._lock = crypt._lock
        self._ptr = ffi.new("const uint8_t **")
        self.config = {}
        v = ffi.new("int64_t *")
        for name in LINK_OPTIONS:
            if lib.kpy_link_config_get(cfg, name.encode(), v) == 0:
                self.config[name] = v[0]

    def input(self, dgram, now_ms):
        """Feeds one received UDP datagram. Returns True if accepted, False if dropped
        (crypt check failed or malformed; counted in stats())."""
        b = _buf(dgram)
        with self._lock:
            r = lib.kpy_link_input(self._p, b, len(b),
                                   _u64(now_ms))
        self._emit(self._q)
        return r == 0

    def input_batch(self, batch, now_ms):
        """Feeds a framed batch of datagrams; returns (fed, dropped)."""
        b = _buf(batch)
        errs = ffi.new("long *")
        with self._lock:
            r = lib.kpy_link_input_batch(self._p, b, len(b), _u64(now_ms), errs)
        self._emit(self._q)
        if r < 0:
            raise KtunError(r, "input_batch")
        return r, errs[0]

    def send(self, data):
        b = _buf(data)
        n = len(b)
        if n == 0:
            return
        with self._lock:
            r = lib.link_send(self._l, b, n)
        if r:
            raise KtunError(r, "send")

    def recv(self):
        """Every in-order byte received so far (b"" if none)."""
        with self._lock:
            n = lib.kpy_link_recv_all(self._p, self._rq)
            if n < 0:
                raise KtunError(n, "recv")
            return _take_blob(self._rq, self._ptr)

    def set_wall_offset(self, wall_offset_ms):
        with self._lock:
            lib.link_set_wall_offset(self._l, int(wall_offset_ms))

    def log_messages(self):
        """The latest one-line diagnostic of the stack (e.g. an FEC layout mismatch), or None."""
        msg = ffi.new("const char **")
        n = lib.kpy_link_log(self._p, msg)
        return ffi.string(msg[0]).decode(errors="replace") if n else None


# Mux event kinds (python/csrc/pyshim.c).
OPEN, READABLE, WRITABLE, FIN, CLOSE = 1, 2, 3, 4, 5
EVENT_NAMES = {OPEN: "open", READABLE: "readable", WRITABLE: "writable", FIN: "fin",
               CLOSE: "close"}
_EV = struct.Struct("<II")


class Mux:
    """An smux session (versions 1 and 2), as kcptun runs over its KCP stream.

    Bytes from the layer below go to ``input()``; frames to send come from ``output()``; what
    happened comes from ``events()`` as (name, stream id) pairs: "open" (the peer opened a
    stream), "readable", "writable" (v2 window reopened), "fin" (peer finished writing),
    "close" (the session died; see ``close_reason``). Keyword options: ``version`` and every
    field of ``struct mux_config`` by name (max_receive_buffer, max_stream_buffer,
    keepalive_interval_ms, keepalive_timeout_ms, max_frame_size, max_streams); ``qpp`` a
    ktun.Qpp for kcptun's --QPP (stream payloads substituted).
    """

    def __init__(self, *, is_client=True, now_ms=0, qpp=None, **options):
        cfg = ffi.gc(lib.kpy_mux_config_new(), lib.kpy_mux_config_free)
        if cfg == ffi.NULL:
            raise MemoryError("mux config")
        _apply_config(cfg, lib.kpy_mux_config_set, MUX_OPTIONS, "mux", options)
        if qpp is not None:
            if not isinstance(qpp, Qpp):
                raise TypeError("qpp must be a ktun.Qpp")
            lib.kpy_mux_config_set_qpp(cfg, qpp._p)
        self.qpp = qpp   # the C session borrows the pads: kept alive with it
        if lib.mux_config_validate(cfg) != 0:
            raise ValueError("invalid mux configuration (see smux VerifyConfig rules)")
        p = lib.kpy_mux_new(cfg, bool(is_client), _u64(now_ms))
        if p == ffi.NULL:
            raise MemoryError("mux_new failed")
        self._p = ffi.gc(p, lib.kpy_mux_free)
        self._m = lib.kpy_mux_obj(p)
        self._out = lib.kpy_mux_queue(p, 0)
        self._ev = lib.kpy_mux_queue(p, 1)
        self._rq = ffi.gc(lib.kpy_queue_new(), lib.kpy_queue_free)
        self._lock = threading.Lock()
        self._ptr = ffi.new("const uint8_t **")
        self._sid = ffi.new("uint32_t *")

    def input(self, data, now_ms):
        """Feeds bytes from below; returns how many were consumed (fewer when the session's
        receive budget is used up: offer the rest again after reading). A protocol error
        closes the session (close event) and returns 0."""
        b = _buf(data)
        n = len(b)
        if n == 0:
            return 0
        with self._lock:
            r = lib.mux_input(self._m, b, n, _u64(now_ms))
        if r == ERR_AGAIN or r < 0:
            return 0
        return r

    def output(self):
        """Frame bytes to hand to the layer below (b"" if none)."""
        with self._lock:
            return _take_blob(self._out, self._ptr)

    def events(self):
        """[(event name, stream id), ...] since the last call."""
        with self._lock:
            blob = _take_blob(self._ev, self._ptr)
        return [(EVENT_NAMES[k], sid) for k, sid in _EV.iter_unpack(blob)]

    def tick(self, now_ms):
        with self._lock:
            lib.mux_tick(self._m, _u64(now_ms))

    def next_deadline(self):
        with self._lock:
            d = lib.mux_next_deadline(self._m)
        return None if d == UINT64_MAX else d

    def open_stream(self):
        with self._lock:
            r = lib.mux_stream_open(self._m, self._sid)
            sid = self._sid[0]
        if r:
            raise KtunError(r, "open_stream")
        return sid

    def read(self, sid):
        """Buffered bytes of stream sid; b"" at end of stream; None if nothing yet."""
        with self._lock:
            r = lib.kpy_mux_read_all(self._p, sid, self._rq)
            if r > 0:
                return _take_blob(self._rq, self._ptr)
        if r == 0:
            return b""
        if r == ERR_AGAIN:
            return None
        raise KtunError(r, f"read stream {sid}")

    def write(self, sid, data):
        """Sends what the stream's window allows; returns the count taken (0: window shut,
        wait for a "writable" event)."""
        b = _buf(data)
        n = len(b)
        if n == 0:
            return 0
        with self._lock:
            r = lib.mux_stream_write(self._m, sid, b, n)
        if r == ERR_AGAIN:
            return 0
        if r < 0:
            raise KtunError(r, f"write stream {sid}")
        return r

    def writable(self, sid):
        with self._lock:
            return lib.mux_stream_writable(self._m, sid)

    def close_stream(self, sid):
        """Half-close: sends FIN; the stream still receives until released."""
        with self._lock:
            r = lib.mux_stream_close(self._m, sid)
        if r:
            raise KtunError(r, f"close stream {sid}")

    def release(self, sid):
        """Forgets the stream (smux Stream.Close): FIN if not sent, unread data discarded."""
        with self._lock:
            r = lib.mux_stream_release(self._m, sid)
        if r:
            raise KtunError(r, f"release stream {sid}")

    def exists(self, sid):
        with self._lock:
            return bool(lib.mux_stream_exists(self._m, sid))

    @property
    def stream_count(self):
        with self._lock:
            return lib.mux_stream_count(self._m)

    @property
    def input_blocked(self):
        return bool(lib.mux_input_blocked(self._m))

    @property
    def closed(self):
        return bool(lib.mux_is_closed(self._m))

    @property
    def close_reason(self):
        r = lib.kpy_mux_close_reason(self._p)
        return None if r == ffi.NULL else ffi.string(r).decode()

    def stats(self):
        return _stats(self._lock, lib.kpy_mux_stats, self._p, _MUX_STATS)


class Comp:
    """kcptun's compression layer (snappy framing over the session's byte stream), one
    direction each way: compress() what goes to the peer, decompress() what comes from it.
    A corrupt stream raises KtunError (ERR_PROTO) and the decoder stays failed."""

    def __init__(self):
        enc = lib.comp_encoder_new()
        dec = lib.comp_decoder_new()
        if enc == ffi.NULL or dec == ffi.NULL:
            lib.comp_encoder_free(enc)
            lib.comp_decoder_free(dec)
            raise MemoryError("comp")
        self._enc = ffi.gc(enc, lib.comp_encoder_free)
        self._dec = ffi.gc(dec, lib.comp_decoder_free)
        self._q = ffi.gc(lib.kpy_queue_new(), lib.kpy_queue_free)
        self._lock = threading.Lock()
        self._ptr = ffi.new("const uint8_t **")

    def compress(self, data):
        b = _buf(data)
        if len(b) == 0:
            return b""
        with self._lock:
            r = lib.kpy_comp_encode(self._enc, b, len(b), self._q)
            out = _take_blob(self._q, self._ptr)
        if r < 0:
            raise KtunError(r, "compress")
        return out

    def decompress(self, data):
        b = _buf(data)
        with self._lock:
            r = lib.kpy_comp_decode(self._dec, b, len(b), self._q)
            out = _take_blob(self._q, self._ptr)
        if r < 0:
            f = lib.kpy_comp_fault(self._dec)
            raise KtunError(r, "decompress" + (": " + ffi.string(f).decode() if f != ffi.NULL
                                               else ""))
        return out


class Qpp:
    """kcptun's --QPP pads (Quantum Permutation Pad) built from the raw key: pass to
    Mux(qpp=...). ``variant`` "C" matches kcptun v20251222 and later, "A" and "B" older QPP
    builds. Building costs tens of ms for the default 61 pads: share one object."""

    def __init__(self, key, count=61, variant="C"):
        if not isinstance(key, (str, bytes, bytearray)):
            raise TypeError("key must be str or bytes")
        kb = key.encode() if isinstance(key, str) else bytes(key)
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError("count must be an integer")
        if not 1 <= count <= 65535:
            raise ValueError("count must be 1..65535")
        if variant not in ("A", "B", "C", "a", "b", "c"):
            raise ValueError("variant must be 'A', 'B' or 'C'")
        err = ffi.new("int *")
        p = lib.kpy_qpp_new(kb, len(kb), count, variant.encode(), err)
        if p == ffi.NULL:
            raise KtunError(err[0], "qpp")
        self._p = ffi.gc(p, lib.qpp_free)
        self.count = count
        self.variant = variant.upper()
