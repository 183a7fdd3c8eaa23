#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shadowsocks-android's VPN mode: ktun-client started as a plugin with __android_vpn (and with
# -V) hands every UDP socket it opens to ./protect_path before using it (a small stand-in for
# the app records the descriptors and answers 0), and data then flows, sha256-checked. With no
# app listening the client opens no session and says why.
set -u
source "$(dirname "$0")/lib.sh"

# protector DIR COUNTFILE: listens on DIR/protect_path like the app; for each connection reads
# one byte with its descriptor (SCM_RIGHTS), checks it is a UDP socket, answers 0 and appends
# a line to COUNTFILE.
protector() {
    python3 - "$1" "$2" <<'PY' &
import array, os, socket, sys
path = os.path.join(sys.argv[1], "protect_path")
out = sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
s.settimeout(120)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    msg, anc, _, _ = c.recvmsg(1, socket.CMSG_LEN(4))
    fds = array.array("i")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:4])
    ok = False
    for fd in fds:
        t = socket.socket(fileno=fd)
        ok = t.type == socket.SOCK_DGRAM
        t.detach()
        os.close(fd)
    c.sendall(b"\0" if ok and len(msg) == 1 else b"\1")
    c.close()
    with open(out, "a") as f:
        f.write("udp\n" if ok else "bad\n")
PY
    pids+=("$!")
}

start_echo echo
SP=$(free_port)
start_server srv "$SP" "$ECHO" --key vpn-key --crypt aes-128-gcm

echo "== SS_PLUGIN_OPTIONS __android_vpn, --conn 2: both sessions' sockets protected"
app=$(mktemp -d "$tmp/app.XXXXXX")
protector "$app" "$tmp/protected"
wait_until 50 test -S "$app/protect_path" || fail "the stand-in app did not start"
CP=$(free_port)
(cd "$app" && SS_REMOTE_HOST=127.0.0.1 SS_REMOTE_PORT=$SP SS_LOCAL_HOST=127.0.0.1 \
    SS_LOCAL_PORT=$CP SS_PLUGIN_OPTIONS='key=vpn-key;crypt=aes-128-gcm;conn=2;__android_vpn' \
    exec "$OLDPWD/$CLIENT") >"$tmp/cli.log" 2>&1 &
pids+=("$!")
wait_log cli 'client: listening'
grep -h 'Android VPN mode' "$tmp/cli.log"
out=$(timeout 30 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 300000 --streams 4 \
      --mixed --duration 25) || fail "transfer through the protected sockets: $out"
echo "$out"
n=$(grep -c '^udp$' "$tmp/protected")
echo "sockets protected: $n"
[ "$n" -eq 2 ] || fail "want 2 protected UDP sockets (--conn 2), got $n"
! grep -q bad "$tmp/protected" || fail "a request without a UDP socket"

echo "== -V with no app listening: no session, the reason logged"
nowhere=$(mktemp -d "$tmp/none.XXXXXX")
CP=$(free_port)
(cd "$nowhere" && exec "$OLDPWD/$CLIENT" -V -l "127.0.0.1:$CP" -r "127.0.0.1:$SP" \
    --key vpn-key --crypt aes-128-gcm) >"$tmp/cli2.log" 2>&1 &
pids+=("$!")
wait_log cli2 'client: listening'
timeout 10 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 1000 --duration 5 \
    >/dev/null 2>&1 && fail "a session without protection"
wait_log cli2 'protect_path: connect' 50
grep -h 'protect_path' "$tmp/cli2.log" | tail -n 1
echo "ok"
