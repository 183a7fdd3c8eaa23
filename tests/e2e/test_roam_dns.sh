#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Name lookups never stall the event loop (docs/roaming.md section 6): the client looks
# --remoteaddr up again on every path change, on a thread of its own. The client runs in a
# private mount namespace whose /etc/hosts names the server at first and whose only name
# server swallows every query; once the name leaves /etc/hosts, every lookup hangs for the
# resolver's whole timeout. A relay drops the client's flows every 4 s (udpfw --kill-flows),
# so the client changes path (and looks the name up) several times while a connection
# carries a 64-byte message every 50 ms: every message must come back, none late by more
# than a path change, and the silent name server must have seen the lookups.
source "$(dirname "$0")/lib.sh"
FW=$TOOLS/udpfw
BLAST=$TOOLS/tcpblast
for t in "$FW" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done
NS_IP=127.0.0.77
need_private_dns "$NS_IP"

spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration 120
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")

# the name server that never answers: it counts the queries it swallows
cat >"$tmp/dns.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("listening", flush=True)
n = 0
while True:
    s.recvfrom(4096)
    n += 1
    print("query", n, flush=True)
PY
spawn dns python3 -u "$tmp/dns.py" "$NS_IP"
wait_log dns '^listening'

name=roam-dns-test.invalid
hosts=$tmp/hosts
resolv=$tmp/resolv.conf
cp /etc/hosts "$hosts"
echo "127.0.0.1 $name" >>"$hosts"
printf 'nameserver %s\noptions timeout:5 attempts:2\n' "$NS_IP" >"$resolv"

sec=(--crypt xsalsa20-poly1305 --key roam-dns --mode fast3)
sp=$(free_port); cp=$(free_port)
start_server srv "$sp" "$ECHO" "${sec[@]}"
spawn kf "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" --kill-flows 4 --duration 60
wait_log kf '^listening '
RELAY=$(sed -n 's/^listening //p' "$tmp/kf.log")
# shellcheck disable=SC2016
spawn cli unshare -m sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf &&
    shift 2 && exec "$@"' sh "$hosts" "$resolv" \
    "$CLIENT" -l "127.0.0.1:$cp" -r "$name:${RELAY##*:}" "${sec[@]}"
wait_log cli 'client: listening'
grep -q "resolved to 127.0.0.1" "$tmp/cli.log" || fail "the name did not resolve from /etc/hosts"

"$BLAST" rr -c "127.0.0.1:$cp" --count 400 --interval 50 --size 64 --wait 5000 \
    --duration 60 >"$tmp/rr.out" 2>&1 &
rr=$!
pids+=("$rr")
sleep 2
# the name leaves /etc/hosts (written in place: the bind mount follows the inode)
grep -v "$name" "$tmp/hosts" >"$tmp/hosts.new"
cat "$tmp/hosts.new" >"$hosts"
wait "$rr"
line=$(cat "$tmp/rr.out")
echo "roam-dns: $line"
queries=$(grep -c '^query' "$tmp/dns.log")
changes=$(grep -c 'new UDP socket' "$tmp/cli.log")
echo "roam-dns: client path changes: $changes, queries swallowed by the silent name server: $queries"
[ "$changes" -ge 2 ] || fail "want path changes while the name hangs"
[ "$queries" -ge 1 ] || fail "no lookup reached the silent name server"
[ "$(field received "$line")" = 400 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost while a lookup hung"
le "$(field max_ms "$line")" 3000 || fail "a message waited $(field max_ms "$line") ms: the loop stalled"

echo "== the server's --target resolves only later: looked up off the loop, streams refused meanwhile"
thosts=$tmp/thosts
cp /etc/hosts "$thosts"
tname=roam-dns-target.invalid
sp=$(free_port); cp=$(free_port)
# shellcheck disable=SC2016
spawn srv2 unshare -m sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf &&
    shift 2 && exec "$@"' sh "$thosts" "$resolv" \
    "$SERVER" -l "127.0.0.1:$sp" -t "$tname:${ECHO##*:}" --crypt aes --key roam-dns
# its lookup at start hangs for the resolver's timeout (10 s) before it listens
wait_log srv2 'server: listening' 400
start_client cli2 "$cp" "$sp" --crypt aes --key roam-dns
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 2 --interval 10 --size 64 --wait 1000 \
    --duration 3 2>/dev/null)
[ "$(field received "$line")" = 2 ] && fail "a stream worked before its target resolved"
wait_log srv2 'looking it up'
echo "127.0.0.1 $tname" >>"$thosts"
ok=
for _ in $(seq 40); do
    line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 2 --interval 10 --size 64 --wait 1000 \
        --duration 3 2>/dev/null)
    [ "$(field received "$line")" = 2 ] && { ok=1; break; }
    sleep 0.5
done
[ -n "$ok" ] || fail "no stream reached the target after its name appeared"
grep -q "target $tname:[0-9]* resolved to 127.0.0.1" "$tmp/srv2.log" || fail "no resolved line"
echo "roam-dns: all checks passed"
