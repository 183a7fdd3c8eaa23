#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Forwards between ktun ends (docs/forwards.md), on loopback:
#   - several -L forwards and a -D SOCKS5 server in one client process, hash-checked
#     transfers through each, concurrently;
#   - the open-proxy probe: a server with no --allow opens its -t target and nothing else:
#     -L and SOCKS5 streams to another port never reach it (a listener counts accepts), and
#     each refused peer and target is logged once;
#   - curl --socks5-hostname to a local HTTP server, by a name only the server can resolve
#     (root: the server gets its own /etc/hosts in a mount namespace; else "localhost");
#   - --allow entries (a name, a port range) open exactly what they list;
#   - SOCKS5 UDP ASSOCIATE through the datagram channel, echoed intact, and refused without
#     --allow;
#   - in a kcptun mode the capability exchange finds a ktun server; with Debian's kcptun-server
#     (if installed) the offer goes unanswered, -L connections are refused, -l works as ever.
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl not installed"; exit 77; }
KEY=forwards-e2e
SEC=(--key "$KEY" --crypt xsalsa20-poly1305)

# count_listener NAME: accepts and closes connections on a free port, counting them in
# $tmp/NAME.count; sets COUNT_PORT.
count_listener() {
    spawn "$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print("listening", s.getsockname()[1], flush=True)
n = 0
open(sys.argv[1], "w").write("0")
while True:
    c, _ = s.accept(); n += 1
    open(sys.argv[1], "w").write(str(n)); c.close()
' "$tmp/$1.count"
    wait_log "$1" '^listening '
    COUNT_PORT=$(sed -n 's/^listening //p' "$tmp/$1.log")
}

# refused PORT: a connection to 127.0.0.1:PORT is ended (EOF or reset, maybe before connect
# returns) with no data.
refused() {
    python3 - "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    b = s.recv(65536)
except (ConnectionResetError, BrokenPipeError):
    b = b""
sys.exit(1 if b else 0)
PY
}

start_echo echo1
E1=$ECHO
E1P=${E1##*:}
start_echo echo2
E2=$ECHO
E2P=${E2##*:}
count_listener probe
SUDP=tests/e2e/socks5udp.py
spawn uecho python3 "$SUDP" echo --count "$tmp/uecho.count"
wait_log uecho '^listening '
UE=$(sed -n 's/^listening //p' "$tmp/uecho.log")
mkdir -p "$tmp/www"
head -c 3000000 /dev/urandom >"$tmp/www/blob"
WWW=$(free_port)
spawn www python3 -m http.server "$WWW" --bind 127.0.0.1 --directory "$tmp/www"
wait_until 100 curl -s -o /dev/null "http://127.0.0.1:$WWW/" || fail "http.server did not start"

# The server, with no --allow: only -t (echo1) may be reached. As root it gets an /etc/hosts
# of its own that names the HTTP server "only-server.test", which nobody else resolves.
NAME=localhost
SP=$(free_port)
server_cmd=("$SERVER" -l "127.0.0.1:$SP" -t "$E1" "${SEC[@]}")
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
   unshare -m true 2>/dev/null; then
    { cat /etc/hosts; echo "127.0.0.1 only-server.test"; } >"$tmp/hosts"
    NAME=only-server.test
    getent hosts "$NAME" >/dev/null && fail "$NAME resolves outside the server's namespace"
fi
# start_srv NAME ARGS...: the server (in its mount namespace as root), extra ARGS appended.
start_srv() {
    local name=$1; shift
    if [ "$NAME" != localhost ]; then
        spawn "$name" unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' \
            "$tmp/hosts" "${server_cmd[@]}" "$@"
    else
        spawn "$name" "${server_cmd[@]}" "$@"
    fi
    SRVPID=$LASTPID
    wait_log "$name" 'server: listening'
}
start_srv srv

L1=$(free_port); L2=$(free_port); L3=$(free_port); L4=$(free_port); D1=$(free_port)
# start_cli NAME: the client with four -L forwards and a -D SOCKS5 server
start_cli() {
    spawn "$1" "$CLIENT" -r "127.0.0.1:$SP" "${SEC[@]}" \
        -L "$L1:127.0.0.1:$E1P" -L "127.0.0.1:$L2:localhost:$E1P" \
        -L "$L3:127.0.0.1:$COUNT_PORT" -L "$L4:127.0.0.1:$E2P" -D "$D1"
    CLIPID=$LASTPID
    wait_log "$1" 'client: listening'
    wait_log "$1" "SOCKS5 on 127.0.0.1:$D1"
}
start_cli cli
grep -q "listening on (-L/-D only)" "$tmp/cli.log" || fail "-l opened without being asked for"

echo "== several -L forwards in one process, hash-checked, concurrently"
python3 "$STREAMS" check --connect "127.0.0.1:$L1" --bytes 2000000 --streams 3 --seed 1 \
    >"$tmp/c1.out" 2>&1 &
c1=$!
python3 "$STREAMS" check --connect "127.0.0.1:$L2" --bytes 2000000 --streams 3 --seed 2 \
    >"$tmp/c2.out" 2>&1 &
c2=$!
wait $c1 || fail "-L to 127.0.0.1 (-t): $(cat "$tmp/c1.out")"
wait $c2 || fail "-L to localhost (-t by name): $(cat "$tmp/c2.out")"
cat "$tmp/c1.out" "$tmp/c2.out"

echo "== open-proxy probe: no --allow, every other target refused and never connected"
for i in 1 2 3; do
    refused "$L3" ||
        fail "-L to a port that is not -t was not refused"
    refused "$L4" ||
        fail "-L to a second echo server was not refused"
done
for t in "127.0.0.1:$COUNT_PORT" "localhost:$COUNT_PORT" "127.0.0.1:22" "$NAME:$WWW"; do
    out=$(curl -s -S --max-time 10 --socks5-hostname "127.0.0.1:$D1" "http://$t/" 2>&1) &&
        fail "SOCKS5 to $t went through"
    echo "$out" | grep -qi "socks" || fail "SOCKS5 to $t: not a SOCKS refusal: $out"
done
curl -s --max-time 10 --socks5 "127.0.0.1:$D1" "http://127.0.0.1:$COUNT_PORT/" &&
    fail "SOCKS5 (client-side name) went through"
python3 "$SUDP" assoc --socks "$D1" --target "127.0.0.1:$UE" --n 3 --wait 1 --refused ||
    fail "SOCKS5 UDP to a target that is not -t went through"
[ "$(cat "$tmp/uecho.count")" = 0 ] || fail "the UDP echo got datagrams it must not"
[ "$(cat "$tmp/probe.count")" = 0 ] ||
    fail "the server connected to a target it must refuse ($(cat "$tmp/probe.count") accepts)"
n=$(grep -c "refused a stream from .* to 127.0.0.1:$COUNT_PORT:" "$tmp/srv.log")
[ "$n" = 1 ] || fail "refusals of 127.0.0.1:$COUNT_PORT logged $n times, not once"
n=$(grep -c "refused a stream from .* to 127.0.0.1:$E2P:" "$tmp/srv.log")
[ "$n" = 1 ] || fail "refusals of 127.0.0.1:$E2P logged $n times, not once"
grep -q "to localhost:$COUNT_PORT:" "$tmp/srv.log" || fail "a refused name is not logged"
echo "refused: 3x -L, 5 SOCKS5 CONNECT and 1 UDP target; 0 accepts at the probe, 0 datagrams"
echo "at the UDP echo, one line per target"

echo "== SOCKS5 CONNECT to -t by address and by name, hash-checked"
curl -s -S --max-time 20 --socks5-hostname "127.0.0.1:$D1" "http://$E1/" -o /dev/null 2>/dev/null
python3 - "$D1" "$E1P" <<'PY' || fail "SOCKS5 CONNECT (IPv4 and name) through -D"
import hashlib, os, socket, sys
def socks(port, atyp, addr, dport):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00" + bytes([atyp]) + addr + dport.to_bytes(2, "big"))
    r = b""
    while len(r) < 10:
        r += s.recv(10 - len(r))
    assert r[:2] == b"\x05\x00", r
    return s
p, e = int(sys.argv[1]), int(sys.argv[2])
for s in (socks(p, 1, bytes([127, 0, 0, 1]), e), socks(p, 3, b"\x09localhost", e)):
    data = os.urandom(1 << 20)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
print("socks5: 2 x 1 MiB echoed intact")
PY

echo "== --allow: the HTTP server by a name only the server resolves ($NAME), an echo by range"
stop_pid "$CLIPID" || fail "client did not exit cleanly"
stop_pid "$SRVPID" || fail "server did not exit cleanly"
start_srv srv2 --allow "$NAME:$WWW" --allow "127.0.0.1:$E2P-$E2P" --allow "127.0.0.1:$UE"
start_cli cli1
curl -s -S --max-time 30 --socks5-hostname "127.0.0.1:$D1" "http://$NAME:$WWW/blob" \
    -o "$tmp/got" || fail "curl --socks5-hostname $NAME:$WWW"
cmp -s "$tmp/got" "$tmp/www/blob" || fail "the file fetched through SOCKS5 differs"
echo "curl --socks5-hostname http://$NAME:$WWW/blob: 3000000 bytes, identical"
python3 "$STREAMS" check --connect "127.0.0.1:$L4" --bytes 1000000 --streams 2 ||
    fail "-L to an --allow'ed port range"
echo "== SOCKS5 UDP ASSOCIATE through the datagram channel, by address and by name"
python3 "$SUDP" assoc --socks "$D1" --target "127.0.0.1:$UE" --n 50 ||
    fail "SOCKS5 UDP ASSOCIATE to an allowed target"
python3 "$SUDP" assoc --socks "$D1" --target "localhost:$UE" --n 20 --size 1000 ||
    fail "SOCKS5 UDP ASSOCIATE to an allowed target by name"
# the name entry does not open the address, nor other ports
curl -s --max-time 10 --socks5 "127.0.0.1:$D1" "http://127.0.0.1:$WWW/" &&
    fail "a name entry opened the address"
refused "$L3" ||
    fail "-L to the probe went through with --allow for other targets"
[ "$(cat "$tmp/probe.count")" = 0 ] || fail "the probe was connected to"
stop_pid "$SRVPID" || fail "server did not exit cleanly"

echo "== a kcptun mode (aes): the capability exchange finds the ktun server; -l, -L as above"
SP2=$(free_port); LP=$(free_port); L5=$(free_port); L6=$(free_port)
start_server srv3 "$SP2" "$E1" --key "$KEY" --crypt aes
spawn cli2 "$CLIENT" -l "127.0.0.1:$LP" -r "127.0.0.1:$SP2" --key "$KEY" --crypt aes \
    -L "$L5:127.0.0.1:$E1P" -L "$L6:127.0.0.1:$COUNT_PORT"
wait_log cli2 'client: listening'
python3 "$STREAMS" check --connect "127.0.0.1:$LP" --bytes 500000 || fail "-l in aes mode"
python3 "$STREAMS" check --connect "127.0.0.1:$L5" --bytes 500000 --streams 2 ||
    fail "-L in aes mode"
refused "$L6" || fail "-L to the probe in aes mode was not refused"
[ "$(cat "$tmp/probe.count")" = 0 ] || fail "the probe was connected to (aes mode)"
grep -q "ktun peer, extensions" "$tmp/cli2.log" || fail "no capability exchange in aes mode"

if command -v kcptun-server >/dev/null; then
    echo "== Debian's kcptun-server: -L refused once the offer goes unanswered, -l unchanged"
    SP3=$(free_port); LP2=$(free_port); L7=$(free_port)
    spawn kcp kcptun-server -l "127.0.0.1:$SP3" -t "$E1" --key "$KEY" --crypt aes
    sleep 0.5
    spawn cli3 "$CLIENT" -l "127.0.0.1:$LP2" -r "127.0.0.1:$SP3" --key "$KEY" --crypt aes \
        -L "$L7:127.0.0.1:$E1P"
    wait_log cli3 'client: listening'
    # the connections wait for the exchange (about 16 s without an answer), then go on
    python3 "$STREAMS" check --connect "127.0.0.1:$LP2" --bytes 300000 --duration 60 \
        --no-halfclose ||
        fail "-l against kcptun-server with an -L configured"
    refused "$L7" || fail "-L against kcptun-server was not refused"
    grep -q "need a ktun server" "$tmp/cli3.log" || fail "no line about the refused -L"
fi

echo "== bad specs are configuration errors (exit 2, one line)"
for bad in "-L 8080" "-L 0:h:1" "-L 1:[::1:2" "-D 1:h:2"; do
    # shellcheck disable=SC2086
    out=$("$CLIENT" -r 127.0.0.1:1 $bad 2>&1)
    rc=$?
    [ "$rc" = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] || fail "'$bad': rc $rc, '$out'"
done
out=$("$SERVER" --allow 10.1.2.3/8:1 2>&1)
[ $? = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] || fail "--allow with host bits: '$out'"
echo ok
