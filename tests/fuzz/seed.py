#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpora tests/fuzz/corpus/<target>/seed-* from tests/vectors/*.json, in the
# input layouts documented at the top of each tests/fuzz/fuzz_<target>.c. Run through
# `scripts/fuzz.sh seed`; the output is committed, so CI never needs python.
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VEC = os.path.join(ROOT, "tests", "vectors")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
METHODS = ["aes", "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5", "3des",
           "tea", "xtea", "xor", "sm4", "none", "xsalsa20-poly1305"]
CRYPT_HEAD = 20
FEC_HEAD = 8


def load(name):
    with open(os.path.join(VEC, name)) as f:
        return json.load(f)


def u8(v):
    return struct.pack("<B", v & 0xff)


def u16(v):
    return struct.pack("<H", v & 0xffff)


def u32(v):
    return struct.pack("<I", v & 0xffffffff)


def rec(b):
    return u16(len(b)) + b


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def fec_layer(p):
    """FEC-layer packet of a captured datagram (decrypted minus the crypt header)."""
    return bytes.fromhex(p["decrypted_hex"])[CRYPT_HEAD:]


def kcp_of(fl):
    """The KCP packet inside an FEC-layer packet, or None for parity."""
    kind = struct.unpack_from("<H", fl, 4)[0] if len(fl) >= 6 else 0
    if kind == 0xf2:
        return None
    if kind == 0xf1:
        return fl[FEC_HEAD:]
    return fl


def seed_kcp(cap, fecv):
    for ri, run in enumerate(cap["runs"]):
        conv = run["convs"][0]
        for side in ("client->server", "server->client"):
            # stream mode, nodelay, fast resend; mtu 1322 (1350 - 20 - 8); windows 128
            hdr = u32(conv) + u8(1 | 2 | 16) + u16(1322 - 25) + u8(127) + u8(127) + u32(0)
            body = b""
            last_t = 0.0
            for p in run["packets"]:
                if p["direction"] != side:
                    continue
                k = kcp_of(fec_layer(p))
                if k is None:
                    continue
                step = int(p["t_ms"] - last_t)
                last_t = p["t_ms"]
                body += u8(4) + u16(step) + u8(0) + rec(k) + u8(2) + u16(4096)
            body += u8(3) + u8(5) + u16(100) + u8(3) + u8(4) + u16(1000)
            write("kcp", "capture%d-%s" % (ri, side[:6]), hdr + body)
    pkts = [bytes.fromhex(h) for h in fecv["kcp_packets_hex"]]
    conv = struct.unpack_from("<I", pkts[0])[0]
    hdr = u32(conv) + u8(0) + u16(1322 - 25) + u8(31) + u8(31) + u32(1000)
    body = b"".join(u8(0) + rec(p) + u8(2) + u16(8191) for p in pkts)
    write("kcp", "sender-packets-message", hdr + body)
    hdr = u32(conv) + u8(1 | 4) + u16(1322 - 25) + u8(127) + u8(127) + u32(0xfffff000)
    body = b"".join(u8(1) + rec(p) + u8(4) + u16(50) for p in reversed(pkts))
    write("kcp", "sender-packets-reversed", hdr + body + u8(2) + u16(8191))


def seed_fec(cap, fecv):
    for si, s in enumerate(fecv["sets"]):
        ds, ps = s["datashard"], s["parityshard"]
        fls = [fec_layer(d) for d in s["datagrams"]]
        all_in = b"".join(u8(0) + rec(f) for f in fls)
        write("fec", "set%d-%s-%d-%d" % (si, s["crypt"], ds, ps), u8(ds) + u8(ps) + u8(0) + all_in)
        t = s.get("fec_decode_test")
        if t and ds and ps:
            drop = set(t["dropped_group_positions"])
            kept = b"".join(u8(0) + rec(f) for i, f in enumerate(fls[:ds + ps]) if i not in drop)
            write("fec", "set%d-recover" % si, u8(ds) + u8(ps) + u8(0) + kept)
            # the same, with a clock jump past the expiry in the middle
            half = b"".join(u8(0) + rec(f) for i, f in enumerate(fls[:ds + ps])
                            if i not in drop and i < ds)
            rest = b"".join(u8(0) + rec(f) for i, f in enumerate(fls[:ds + ps])
                            if i not in drop and i >= ds)
            write("fec", "set%d-expire" % si,
                  u8(ds) + u8(ps) + u8(0x55) + half + u8(7) + u8(61) + rest)
            # a decoder with another (ds, ps): the mismatch path
            write("fec", "set%d-mismatch" % si, u8(ds + 1) + u8(ps) + u8(0) + all_in)
    for ri, run in enumerate(cap["runs"]):
        ds = run["datashard_parityshard"]
        ps = 3 if ds == 10 else (2 if ds == 4 else 0)
        body = b""
        for p in run["packets"]:
            if p["direction"] == "client->server":
                body += u8(0) + rec(fec_layer(p)) + u8(6) + u16(int(p["t_ms"]) % 65536)
        write("fec", "capture%d" % ri, u8(ds) + u8(ps) + u8(0) + body)


def seed_crypt(cv):
    for m in cv["methods"]:
        idx = METHODS.index(m["method"])
        for v in m["vectors"]:
            ct = bytes.fromhex(v["ciphertext_hex"])
            write("crypt", "%s-open-%d" % (m["method"], v["length"]), u8(idx) + u8(0) + u16(0) + ct)
        pt = bytes.fromhex(m["vectors"][-1]["plaintext_hex"])[CRYPT_HEAD:]
        write("crypt", "%s-roundtrip" % m["method"], u8(idx) + u8(1) + u16(77) + pt)
    sec = METHODS.index("xsalsa20-poly1305")
    write("crypt", "secure-roundtrip", u8(sec) + u8(1) + u16(200) + b"ktun secure mode payload")
    write("crypt", "secure-open-short", u8(sec) + u8(0) + u16(0) + bytes(64))


def seed_mux(sm, cap):
    for s in sm["sessions"]:
        ver = s["smux_version"]
        for side, is_client in (("server->client", 2), ("client->server", 0)):
            frames = [bytes.fromhex(f["frame_hex"]) for f in s["frames"] if f["direction"] == side]
            stream = b"".join(frames)
            # flags: version, role (receiving side), read in callback, keepalive
            flags = (1 if ver == 2 else 0) | is_client | 4 | 16
            hdr = u8(flags) + u16(0xffff) + u16(0x8000) + u8(0)
            whole = u8(0) + rec(stream) + u8(2) + u8(0) + u16(4096) + u8(4) + u8(5) + u8(0) + u16(40)
            write("mux", "v%d-%s-whole" % (ver, side[:6]), hdr + whole)
            bytewise = b"".join(u8(1) + rec(stream[i:i + 1]) for i in range(len(stream)))
            write("mux", "v%d-%s-bytes" % (ver, side[:6]), hdr + bytewise + u8(3) + u8(0))
            # tiny budget: backpressure and stalls
            small = u8(flags & ~4) + u16(0) + u16(0) + u8(1)
            write("mux", "v%d-%s-stall" % (ver, side[:6]),
                  small + whole + u8(0) + rec(b"") + u8(7) + u16(2000))
    for ri, run in enumerate(cap["runs"]):
        ver = 2 if "--smuxver" in run["args_common"] else 1
        c2s = bytes.fromhex(run["smux_stream_client_to_server_hex"])
        flags = (1 if ver == 2 else 0) | 8
        write("mux", "capture%d" % ri, u8(flags) + u16(0x100) + u16(0x80) + u8(0)
              + u8(0) + rec(c2s) + u8(2) + u8(0) + u16(100))


def seed_link(cap):
    for ri, run in enumerate(cap["runs"]):
        conv = run["convs"][0]
        ds = run["datashard_parityshard"]
        fec = {0: 0, 10: 1, 4: 2}[ds]
        hdr = u32(conv) + u8(fec) + u16(1350 - 100)
        body = b""
        last_t = 0.0
        for p in run["packets"]:
            if p["direction"] != "client->server":
                continue
            # with crypt "none" the decrypted datagram is a valid datagram as it stands
            body += u8(4) + u16(int(p["t_ms"] - last_t)) + u8(0) + rec(bytes.fromhex(p["decrypted_hex"]))
            body += u8(2) + u16(4096)
            last_t = p["t_ms"]
        write("link", "capture%d-server" % ri, hdr + body + u8(5) + u16(3000) + u8(3))
        if run["crypt"] == "none":
            body = b"".join(u8(0) + rec(bytes.fromhex(p["wire_hex"])) + u8(2) + u16(4096)
                            for p in run["packets"] if p["direction"] == "server->client")
            write("link", "capture%d-client-wire" % ri, hdr + body)


def seed_comp(sn, cap):
    for v in sn["vectors"]:
        framed = bytes.fromhex(v["framed_output_hex"])
        if len(framed) > 4000:
            framed = framed[:4000]
        write("comp", "%s-whole" % v["name"], u8(0) + u8(0) + rec(framed) + u8(3) + u16(65535))
        pieces = b"".join(u8(1 + 4 * (i % 3)) + rec(framed[i:i + 7]) for i in range(0, len(framed), 7))
        write("comp", "%s-pieces" % v["name"], u8(0) + pieces)
        if "input_hex" in v and v["input_hex"]:
            write("comp", "%s-roundtrip" % v["name"], u8(1 + 2 * 3) + bytes.fromhex(v["input_hex"]))
    for ri, run in enumerate(cap["runs"]):
        if "--nocomp" in run["args_common"]:
            continue
        for k in ("kcp_stream_client_to_server_hex", "kcp_stream_server_to_client_hex"):
            framed = bytes.fromhex(run[k])
            write("comp", "capture%d-%s" % (ri, "c2s" if "client_to" in k else "s2c"), u8(0) + u8(0) + rec(framed))
    write("comp", "roundtrip-repetitive", u8(1) + b"abcdefgh" * 300)


def seed_config():
    ex = "/usr/share/doc/kcptun/examples"
    local = ('{"localaddr": ":2000", "remoteaddr": "11.22.33.44:2000", "key": "PASSWORD",'
             ' "crypt": "aes-128", "mode": "fast3", "mtu": 1400, "sndwnd": 128, "rcvwnd": 1024,'
             ' "datashard": 10, "parityshard": 3, "dscp": 46, "nocomp": true,'
             ' "acknodelay": false, "nodelay": 1, "interval": 40, "resend": 2, "nc": 1,'
             ' "sockbuf": 16777217, "smuxver": 1, "smuxbuf": 16777217, "streambuf": 2097152,'
             ' "keepalive": 10, "autoexpire": 1800, "quiet": false, "tcp": false}')
    server = ('{"listen": ":2000", "target": "127.0.0.1:9999", "key": "PASSWORD",'
              ' "crypt": "aes-128", "mode": "fast3", "mtu": 1400, "sndwnd": 2048,'
              ' "rcvwnd": 2048, "datashard": 10, "parityshard": 3, "dscp": 46, "nocomp": true,'
              ' "acknodelay": false, "nodelay": 1, "interval": 40, "resend": 2, "nc": 1,'
              ' "sockbuf": 16777217, "smuxver": 1, "smuxbuf": 16777217, "streambuf": 2097152,'
              ' "keepalive": 10, "pprof":false, "quiet":false, "tcp":false}')
    for role, name in ((0, "local"), (1, "server")):
        path = os.path.join(ex, name + ".json")
        text = open(path).read() if os.path.exists(path) else (local if role == 0 else server)
        write("config", "%s-json" % name, u8(role) + u16(0) + text.encode())
        args = b"-c\0x"
        write("config", "%s-json-c" % name, u8(role) + u16(len(args)) + args + text.encode())
    lines = [
        (0, ["-l", ":12948", "-r", "127.0.0.1:29900", "--key", "it's a secrect", "--crypt", "aes",
             "--mode", "fast", "--quiet"]),
        (1, ["-t", "127.0.0.1:12948", "-l", ":29900", "--key", "x", "--crypt", "none",
             "--ds", "4", "--ps", "2", "--mode", "fast2", "--smuxver", "2"]),
        (0, ["--localaddr=:1", "-remoteaddr", "[::1]:2", "-mtu=0x546", "--sndwnd", "1_024",
             "--nocomp=false", "-acknodelay", "--mode", "manual", "--interval", "0o24"]),
        (1, ["--listen", ":4000", "--target", "/run/x.sock", "--crypt", "xsalsa20-poly1305",
             "--maxsessions", "10", "--bufbudget", "0b1000000", "--loglevel", "debug", "--pprof"]),
        (0, ["--help"]),
        (1, ["-v"]),
        (0, ["--conn", "4", "--autoexpire", "60", "--scavengettl", "600", "--snmplog",
             "./snmp-20060102.log", "--snmpperiod", "60", "--dscp", "46", "--keepalive", "10",
             "--smuxbuf", "4194304", "--streambuf", "2097152", "--maxstreams", "100"]),
    ]
    for i, (role, argv) in enumerate(lines):
        a = b"\0".join(x.encode() for x in argv)
        write("config", "argv%d" % i, u8(role) + u16(len(a)) + a)
    a = b"-c\0x\0--key\0override"
    write("config", "argv-json-override", u8(1) + u16(len(a)) + a + b'{"KEY": "k", "mtu": 1200.5}')


def tcp_seg(sport, dport, seq, ack, flags, payload=b"", ts=False):
    hdr = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                      (9 if ts else 5) << 4, flags, 65535 if ts else 0x9000, 0, 0)
    if ts:  # tcpraw 1.2.32: timestamp option with length 12 but 10 data bytes, then padding
        hdr += bytes([1, 1, 8, 12]) + struct.pack(">II", 1234, 0) + bytes(4)
    return hdr + payload


def seed_tcpraw(cap):
    """Fake-TCP flows carrying the captured kcptun datagrams (fuzz_tcpraw.c layout)."""
    dgrams = [bytes.fromhex(pk["wire_hex"]) for pk in cap["runs"][0]["packets"][:4]]
    SYN, PSH, ACK = 0x02, 0x08, 0x10
    srv = 29900
    # IPv4 client: connect, SYN-ACK, send, data in both header variants, idle expiry
    d = u8(0) + u8(3) + u8(0) + u8(1)
    d += u8(1) + u8(0) + rec(tcp_seg(40000, srv, 0xfffffff0, 1001, SYN | ACK))
    d += u8(2) + u8(0) + rec(dgrams[0])
    d += u8(1) + u8(0) + rec(tcp_seg(40000, srv, 0xfffffff1, 1001 + len(dgrams[0]),
                                     PSH | ACK, dgrams[1]))
    d += u8(1) + u8(0) + rec(tcp_seg(40000, srv, 0xfffffff1 + len(dgrams[1]), 1001,
                                     PSH | ACK, dgrams[2], ts=True))
    d += u8(2) + u8(0) + rec(dgrams[3])
    d += u8(5) + u16(40000)
    write("tcpraw", "client-v4", d)
    # IPv6 server: accept, learn seq from the handshake ACK, ack from data, reply, close
    d = u8(1) + u8(3) + u8(1) + u8(0)
    d += u8(1) + u8(1) + rec(tcp_seg(40001, srv, 1001, 5001, ACK))
    d += u8(1) + u8(1) + rec(tcp_seg(40001, srv, 1001, 5001, PSH | ACK, dgrams[0], ts=True))
    d += u8(2) + u8(1) + rec(dgrams[1])
    d += u8(1) + u8(2) + rec(tcp_seg(40002, srv, 1, 1, PSH | ACK, dgrams[2]))
    d += u8(4) + u8(1)
    write("tcpraw", "server-v6", d)
    # IPv4 packets as a raw socket delivers them
    seg = tcp_seg(40000, srv, 1001, 5001, PSH | ACK, dgrams[0])
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 100])) + seg
    d = u8(0) + u8(3) + u8(0) + u8(0) + u8(0) + rec(ip) + u8(0) + rec(ip[:30])
    write("tcpraw", "ip4", d)


def ext_seg(conv, body):
    """A ktun extension segment (docs/extensions.md) carrying |body| (records)."""
    return u32(conv) + u8(0xDA) + u8(0) + u16(0) + u32(0) + u32(0xFFFFFFFF) + u32(0) + \
        u32(len(body)) + body


def ext_rec(t, v):
    return u8(t) + u16(len(v)) + v


def dgram_rec(flow, seq, payload, target=b""):
    v = u32(flow) + u32(seq) + u8(1 if target else 0)
    if target:
        v += u8(len(target)) + target
    return ext_rec(0x10, v + payload)


def seed_ext(cap):
    conv = 0x11223344
    offer = ext_rec(0x01, u8(1) + u32(3))
    answer = ext_rec(0x02, u8(1) + u32(3))
    d1 = dgram_rec(1, 0, b"\x12\x34" * 20, b"127.0.0.1:53")
    d2 = dgram_rec(1, 1, b"reply")
    close = ext_rec(0x12, u32(1))
    opened = ext_rec(0x11, u32(1))
    push = u32(conv) + u8(81) + u8(0) + u16(128) + u32(5) + u32(0) + u32(0) + u32(3) + b"abc"
    write("ext", "offer", u32(conv) + u8(0) + rec(ext_seg(conv, offer)))
    write("ext", "answer", u32(conv) + u8(1) + rec(ext_seg(conv, answer)))
    write("ext", "dgrams", u32(conv) + u8(0) + rec(ext_seg(conv, offer + d1 + d2)) +
          rec(ext_seg(conv, d2 + d1 + close)) + rec(ext_seg(conv, opened)))
    write("ext", "push-then-ext", u32(conv) + u8(1) +
          rec(push + ext_seg(conv, answer + opened + d2)))
    run = cap["runs"][0]
    data = u32(run["convs"][0]) + u8(0)
    for p in run["packets"][:8]:
        k = kcp_of(fec_layer(p))
        if k:
            data += rec(k)
    write("ext", "kcptun-packets", data)


def main():
    cap = load("binary_capture.json")
    fecv = load("fec_packets.json")
    targets = sys.argv[1:] or ["kcp", "fec", "crypt", "mux", "link", "comp", "config", "tcpraw",
                                     "ext"]
    for t in targets:
        if t == "kcp":
            seed_kcp(cap, fecv)
        elif t == "fec":
            seed_fec(cap, fecv)
        elif t == "crypt":
            seed_crypt(load("crypt.json"))
        elif t == "mux":
            seed_mux(load("smux.json"), cap)
        elif t == "link":
            seed_link(cap)
        elif t == "comp":
            seed_comp(load("snappy.json"), cap)
        elif t == "config":
            seed_config()
        elif t == "tcpraw":
            seed_tcpraw(cap)
        elif t == "ext":
            seed_ext(cap)
        else:
            sys.exit("unknown target " + t)


if __name__ == "__main__":
    main()
