#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The client's side of roaming (docs/roaming.md), secure mode, end to end on loopback:
# 1. a middlebox that drops a flow for good (udpfw --kill-flows) every few seconds: the
#    client notices the silence, moves the session to a new UDP socket and every message
#    still comes back once; with aes (the server might be kcptun) the client keeps its socket;
# 2. the server restarts under a live connection: the client closes the dead session within
#    seconds and a new connection works; prints "roam-restart: ... new_conn_s=";
# 3. both again with aes and --peer ktun (the capability exchange tells the client that the
#    server is ktun, so it follows a new port).
source "$(dirname "$0")/lib.sh"
FW=$TOOLS/udpfw
BLAST=$TOOLS/tcpblast
for t in "$FW" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done
now() { date +%s.%N; }

spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration 120
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")

echo "== flows killed every 4 s, secure mode: the client changes its source port"
sp=$(free_port); cp=$(free_port)
sec=(--crypt xsalsa20-poly1305 --key roam-restart --mode fast3)
start_server srv "$sp" "$ECHO" "${sec[@]}"
spawn kf "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" --kill-flows 4 --duration 60
wait_log kf '^listening '
RELAY=$(sed -n 's/^listening //p' "$tmp/kf.log")
start_client cli "$cp" "${RELAY##*:}" "${sec[@]}"
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 300 --interval 50 --size 64 --wait 5000 \
    --duration 40)
echo "roam-restart: killed flows, secure: $line"
n=$(grep -c 'new UDP socket' "$tmp/cli.log")
echo "client path changes: $n"
[ "$n" -ge 3 ] || fail "want a new socket after each of the 3 flow kills"
[ "$(field received "$line")" = 300 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost across path changes"
le "$(field max_ms "$line")" 5000 || fail "a path change took more than 5 s"

echo "== the same with aes: the client keeps its socket (the server may be kcptun)"
sp=$(free_port); cp=$(free_port)
aes=(--crypt aes --key roam-restart --mode fast3)
start_server srv2 "$sp" "$ECHO" "${aes[@]}"
spawn kf2 "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" --kill-flows 1 --duration 60
wait_log kf2 '^listening '
RELAY=$(sed -n 's/^listening //p' "$tmp/kf2.log")
start_client cli2 "$cp" "${RELAY##*:}" "${aes[@]}"
"$BLAST" rr -c "127.0.0.1:$cp" --count 60 --interval 50 --size 64 --wait 500 --duration 5 \
    >/dev/null
grep -q 'new UDP socket' "$tmp/cli2.log" && fail "aes client changed its socket"

# restart_case LABEL ARGS...: the server restarts under a live connection (the client gets
# $CLI_EXTRA too); with OLD_IDLE=1 the live connection is idle, as an ssh session between
# keystrokes (it exchanged one message, then waits until the tunnel closes it)
restart_case() {
    local label=$1; shift
    echo "== the server restarts under a live connection ($label)"
    local sp cp srvpid old ok line t0 t1 new_s old_s
    sp=$(free_port); cp=$(free_port)
    start_server "srv-$label" "$sp" "$ECHO" "$@"
    srvpid=$LASTPID
    # shellcheck disable=SC2086
    start_client "cli-$label" "$cp" "$sp" "$@" ${CLI_EXTRA:-}
    if [ -n "${OLD_IDLE:-}" ]; then
        python3 - "$cp" >"$tmp/old-$label.rr" 2>&1 <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(90)
s.sendall(b"x" * 64)
got = b""
while len(got) < 64:
    got += s.recv(64)
print("echoed", flush=True)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
print("closed", flush=True)
PY
        old=$!
        wait_until 50 grep -q echoed "$tmp/old-$label.rr" || fail "$label: no echo"
    else
        "$BLAST" rr -c "127.0.0.1:$cp" --count 2000 --interval 50 --size 64 --wait 1000 \
            --duration 60 >"$tmp/old-$label.rr" 2>&1 &
        old=$!
    fi
    pids+=("$old")
    sleep 2
    stop_pid "$srvpid"
    t0=$(now)
    start_server "srv-$label-b" "$sp" "$ECHO" "$@"
    ok=
    for _ in $(seq 60); do
        line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 3 --interval 10 --size 64 --wait 700 \
            --duration 2 2>/dev/null)
        if [ "$(field received "$line")" = 3 ]; then ok=1; break; fi
        sleep 0.2
    done
    t1=$(now)
    [ -n "$ok" ] || fail "$label: no new connection worked within a minute of the restart"
    new_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    # the old connection must have been closed, not left hanging
    for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$old" 2>/dev/null && fail "$label: the old connection still hangs"
    old_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    echo "roam-restart: server restart, $label: new_conn_s=$new_s old_closed_within_s=$old_s"
    le "$new_s" 10 || fail "$label: a new connection took $new_s s after the restart"
}
restart_case secure "${sec[@]}"

echo "== flows killed every 4 s, aes with --peer ktun: the client changes its source port"
sp=$(free_port); cp=$(free_port)
kt=(--crypt aes --key roam-restart --mode fast3)
start_server srv4 "$sp" "$ECHO" "${kt[@]}"
spawn kf4 "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" --kill-flows 4 --duration 60
wait_log kf4 '^listening '
RELAY=$(sed -n 's/^listening //p' "$tmp/kf4.log")
start_client cli4 "$cp" "${RELAY##*:}" "${kt[@]}" --peer ktun
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 300 --interval 50 --size 64 --wait 5000 \
    --duration 40)
echo "roam-restart: killed flows, aes --peer ktun: $line"
n=$(grep -c 'new UDP socket' "$tmp/cli4.log")
echo "client path changes: $n"
[ "$n" -ge 3 ] || fail "aes --peer ktun: want a new socket after each of the 3 flow kills"
[ "$(field received "$line")" = 300 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "aes --peer ktun: messages lost across path changes"
le "$(field max_ms "$line")" 5000 || fail "aes --peer ktun: a path change took more than 5 s"

CLI_EXTRA="--peer ktun" restart_case aes-peer-ktun "${kt[@]}"
CLI_EXTRA="--peer ktun" OLD_IDLE=1 restart_case aes-peer-ktun-idle "${kt[@]}"
echo "roam-restart: all checks passed"
