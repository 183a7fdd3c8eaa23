# SPDX-License-Identifier: MIT
"""The examples over real sockets on loopback: the lkcp-style echo pair, and the kcptun client
against Debian's kcptun-server (crypt aes, FEC 10/3, smux v2) in front of a TCP echo target."""
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, free_udp_port

EX = REPO / "examples" / "python"


def start_echo_server(env):
    """Starts the lkcp echo server on a free port (another try if the port got taken)."""
    for _ in range(3):
        port = free_udp_port()
        srv = subprocess.Popen([sys.executable, str(EX / "lkcp_echo_server.py"), "127.0.0.1",
                                str(port), "--count", "300", "--timeout", "40"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if srv.stdout.readline().strip() == "listening":
            return srv, port
        srv.kill()
        srv.communicate()
    pytest.fail("lkcp echo server did not start")


def test_lkcp_echo_pair_over_udp(child_env):
    srv, port = start_echo_server(child_env)
    try:
        cli = subprocess.run([sys.executable, str(EX / "lkcp_echo_client.py"), "127.0.0.1",
                              str(port), "--count", "300", "--timeout", "40"], env=child_env,
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert "echo ok 300 messages" in cli.stdout
        out, err = srv.communicate(timeout=30)
        assert srv.returncode == 0, err
        assert "echoed 300" in out
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


class EchoServer:
    """A TCP echo target on 127.0.0.1 (threads, bounded by the test's lifetime)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.echo, args=(c,), daemon=True).start()

    def echo(self, c):
        c.settimeout(30)
        with c:
            try:
                while d := c.recv(65536):
                    c.sendall(d)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def udp_bound(port):
    """True once some socket is bound to UDP port `port` (from /proc/net/udp)."""
    needle = ":%04X " % port
    for f in ("/proc/net/udp", "/proc/net/udp6"):
        p = pathlib.Path(f)
        if p.exists() and needle in p.read_text():
            return True
    return False


@pytest.fixture(params=["comp", "nocomp"])
def kcptun_server(request):
    exe = shutil.which("kcptun-server")
    if exe is None:
        pytest.skip("kcptun-server not installed (Debian package kcptun)")
    echo = EchoServer()
    log = open(REPO / "build" / "pytest-kcptun-server.log", "w") if (REPO / "build").is_dir() \
        else subprocess.DEVNULL
    srv = None
    try:
        for attempt in range(3):   # another port if the free one got taken before the bind
            port = free_udp_port()
            srv = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", "-t",
                                    f"127.0.0.1:{echo.port}", "--key", "py-secret", "--crypt",
                                    "aes", "--ds", "10", "--ps", "3", "--smuxver", "2",
                                    "--mode", "fast"] +
                                   (["--nocomp"] if request.param == "nocomp" else []),
                                   stdout=log, stderr=log)
            end = time.monotonic() + 20
            while not udp_bound(port) and srv.poll() is None:
                assert time.monotonic() < end, "kcptun-server did not bind"
                time.sleep(0.05)
            if srv.poll() is None:
                break
        assert srv.poll() is None, "kcptun-server exited"
        yield port, request.param == "nocomp"
    finally:
        if srv is not None and srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(5)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        echo.close()
        if log is not subprocess.DEVNULL:
            log.close()


def run_client(server, env, *args):
    port, nocomp = server
    return subprocess.run([sys.executable, str(EX / "kcptun_client.py"), "-r",
                           f"127.0.0.1:{port}", "--key", "py-secret", "--crypt", "aes",
                           "--ds", "10", "--ps", "3", "--smuxver", "2", *args] +
                          (["--nocomp"] if nocomp else []), env=env,
                          capture_output=True, text=True, timeout=60)


def test_kcptun_client_example_lines(kcptun_server, child_env):
    r = run_client(kcptun_server, child_env, "hello", "kcptun", "from python")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hello", "kcptun", "from python"]


def test_kcptun_client_example_bulk(kcptun_server, child_env):
    r = run_client(kcptun_server, child_env, "--bytes", "2000000")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok 2000000 bytes"


def test_kcptun_client_wrong_key_times_out(kcptun_server, child_env):
    r = subprocess.run([sys.executable, str(EX / "kcptun_client.py"), "-r",
                        f"127.0.0.1:{kcptun_server[0]}", "--key", "not-the-key", "--ds", "10",
                        "--ps", "3", "--smuxver", "2", "--timeout", "2", "ping"],
                       env=child_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "timeout" in r.stderr


def test_kcptun_client_streams_in_process(kcptun_server):
    """Several concurrent streams of one KcptunClient session, read back in odd pieces."""
    import asyncio

    import ktun.aio
    from test_kcp import payload

    port, nocomp = kcptun_server

    async def one(session, seed):
        st = await session.open_stream()
        data = payload(300000, seed=seed)
        st.write(data)
        got = bytearray()
        while len(got) < len(data):
            got += await st.readexactly(min(7777, len(data) - len(got)))
        await st.drain()
        st.close()
        return bytes(got) == data

    async def main():
        s = await ktun.aio.KcptunClient.connect("127.0.0.1", port, key="py-secret", crypt="aes",
                                                datashard=10, parityshard=3, smuxver=2,
                                                nocomp=nocomp)
        try:
            return await asyncio.wait_for(asyncio.gather(*(one(s, i) for i in range(3))), 40)
        finally:
            s.close()

    assert asyncio.run(main()) == [True, True, True]
