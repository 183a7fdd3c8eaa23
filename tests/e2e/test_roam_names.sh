#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Names and ports of the server, end to end on loopback: kcptun's port ranges (-l :MIN-MAX
# binds every port of the range, -r host:MIN-MAX picks a random one per session) and a
# --remoteaddr whose name does not resolve at start (retried with backoff; the client runs
# in a private mount namespace whose /etc/hosts learns the name a few seconds later).
source "$(dirname "$0")/lib.sh"
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }

spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration 120
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")

# free_block: sets LO to the first of 8 consecutive free UDP ports.
free_block() {
    LO=
    for _ in $(seq 50); do
        local p; p=$(free_port)
        [ "$p" -lt 65000 ] || continue
        python3 - "$p" <<'PY' && { LO=$p; return 0; }
import socket, sys
base = int(sys.argv[1]); socks = []
try:
    for i in range(8):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", base + i))
        socks.append(u)
except OSError:
    sys.exit(1)
PY
    done
    fail "no block of 8 free ports"
}
free_block
lo=$LO
hi=$((lo + 7))

echo "== -l 127.0.0.1:$lo-$hi binds 8 ports; -r 127.0.0.1:$lo-$hi with 8 sessions"
start_server srv "$lo-$hi" "$ECHO" --key names --crypt aes
grep -q "ports $lo-$hi" "$tmp/srv.log" || fail "the server did not report its range"
n=$(ss -Hlun "( sport >= :$lo and sport <= :$hi )" | wc -l)
[ "$n" = 8 ] || fail "$n UDP ports bound in $lo-$hi, want 8"
cp=$(free_port)
start_client cli "$cp" "$lo-$hi" --key names --crypt aes --conn 8
for i in $(seq 8); do
    line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 5 --interval 10 --size 64 --wait 3000 \
        --duration 20)
    [ "$(field received "$line")" = 5 ] || fail "connection $i through a range: $line"
done
used=$(grep -o 'sess: opened conv [0-9]* peer 127.0.0.1:[0-9]*' "$tmp/cli.log" |
    sed 's/.*://' | sort -u)
echo "server ports used by the client's sessions: $(echo $used)"
for p in $used; do
    [ "$p" -ge "$lo" ] && [ "$p" -le "$hi" ] || fail "session on port $p, outside $lo-$hi"
done
[ "$(wc -w <<<"$used")" -ge 2 ] || fail "8 sessions all picked one port of 8"

echo "== --hop 1 (secure mode): the session changes server port every second"
free_block
hlo=$LO; hhi=$((LO + 7))
hop=(--key hop --crypt xsalsa20-poly1305)
start_server srvh "$hlo-$hhi" "$ECHO" "${hop[@]}"
cp=$(free_port)
start_client clih "$cp" "$hlo-$hhi" "${hop[@]}" --hop 1 --loglevel debug
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 120 --interval 50 --size 64 --wait 3000 \
    --duration 30)
echo "roam-hop: every 1 s over 8 ports: $line"
[ "$(field received "$line")" = 120 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost across hops"
moves=$(grep -c 'peer moved' "$tmp/srvh.log")
echo "server: $moves move lines (at most one per 10 s per session)"
[ "$moves" -ge 1 ] || fail "the server never followed a hop"
"$CLIENT" -l 127.0.0.1:0 -r "127.0.0.1:$hlo-$hhi" --hop 5 >/dev/null 2>&1
[ $? = 2 ] || fail "--hop without the secure mode or --peer ktun: want exit 2"

echo "== --hop 1 with aes and --peer ktun: the capability exchange confirms a ktun server"
free_block
alo=$LO; ahi=$((LO + 7))
start_server srva "$alo-$ahi" "$ECHO" --key hop --crypt aes
cp=$(free_port)
start_client clia "$cp" "$alo-$ahi" --key hop --crypt aes --peer ktun --hop 1 --loglevel debug
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 120 --interval 50 --size 64 --wait 3000 \
    --duration 30)
hops=$(grep -c 'hopped to this server port' "$tmp/clia.log")
echo "roam-hop: aes --peer ktun, every 1 s over 8 ports: hops=$hops $line"
[ "$hops" -ge 4 ] || fail "aes --peer ktun: $hops hops in 6 s"
[ "$(field received "$line")" = 120 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "aes --peer ktun: messages lost across hops"
grep -q 'peer moved' "$tmp/srva.log" || fail "aes: the server never followed a hop"
"$CLIENT" -l 127.0.0.1:0 -r "127.0.0.1:$hlo" --hop 5 --crypt xsalsa20-poly1305 >/dev/null 2>&1
[ $? = 2 ] || fail "--hop without a port range: want exit 2"

echo "== bad ranges exit 2"
for args in "-l 127.0.0.1:5-4" "-l :1000-9000"; do
    # shellcheck disable=SC2086
    "$SERVER" $args -t 127.0.0.1:1 >/dev/null 2>&1
    rc=$?
    [ $rc = 2 ] || fail "ktun-server $args: exit $rc, want 2"
done
"$CLIENT" -r 127.0.0.1:0-10 -l 127.0.0.1:0 >/dev/null 2>&1
[ $? = 2 ] || fail "ktun-client -r 127.0.0.1:0-10: want exit 2"

echo "== --remoteaddr that resolves only later"
if ! unshare -m true 2>/dev/null; then
    echo "no mount namespaces here: skipping the name part"
    exit 0
fi
hosts=$tmp/hosts
cp /etc/hosts "$hosts"
sp=$(free_port); cp=$(free_port)
start_server srv2 "$sp" "$ECHO" --key names --crypt aes
# shellcheck disable=SC2016
spawn late unshare -m sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$hosts" \
    "$CLIENT" -l "127.0.0.1:$cp" -r "roam-names-test.invalid:$sp" --key names --crypt aes
wait_log late 'client: listening'
grep -q 'retrying --remoteaddr' "$tmp/late.log" || fail "no retry announced"
kill -0 "$LASTPID" || fail "the client exited on an unresolvable name"
# the name appears (written in place: the bind mount follows the inode)
echo "127.0.0.1 roam-names-test.invalid" >>"$hosts"
wait_log late 'resolved to 127.0.0.1' 150
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 5 --interval 10 --size 64 --wait 3000 --duration 20)
echo "$line"
[ "$(field received "$line")" = 5 ] || fail "no traffic once the name resolved"
echo "names: all checks passed"
