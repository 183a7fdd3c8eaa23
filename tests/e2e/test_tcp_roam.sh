#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --tcp with roaming and port ranges (docs/tcp.md, docs/roaming.md), between two network
# namespaces joined by a veth pair, UDP to the tunnel ports dropped where only fake TCP may
# carry the tunnel:
# 1. a server on -l :LO-HI --tcp listens on every port of the range (one rule for the range);
#    a client with --hop 1 moves its session to another port every second over a new fake-TCP
#    connection: 64-byte messages every 50 ms all echoed once, a 2 x 2 MiB transfer each way
#    sha256-checked across the hops;
# 2. the client's fake-TCP connection dies for good (dropped both ways in the server
#    namespace): the client makes a new one from a new port, same session, nothing lost;
# 3. --tcp auto: the session runs over UDP, then UDP dies: the client switches to fake TCP and
#    the server follows the same session there (no new session, every message echoed);
# and the firewall rules of both namespaces and the host are exactly as before at the end.
# Prints how long installing a connection's firewall rule took (the client runs iptables on
# its event loop at every new connection). Skipped (77) when not root or without ip/iptables.
source "$(dirname "$0")/lib.sh"

source tests/e2e/netns.sh
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }

LO=30100
HI=30107
ECHOPORT=7000
netns_pair roam 10.78.0
# only fake TCP reaches the range's ports (part 3 uses port HI+1, where UDP is open at first)
ins iptables -A INPUT -p udp --dport $LO:$HI -j DROP
# create the filter tables (a rule added and removed), so that the comparison below sees
# rules, not a table that ktun's first rule brought into being (nf_tables)
for ns in "$NC" "$NS"; do
    for t in iptables ip6tables; do
        ip netns exec "$ns" $t -A OUTPUT -p tcp --sport 1 -j ACCEPT
        ip netns exec "$ns" $t -D OUTPUT -p tcp --sport 1 -j ACCEPT
    done
done

fw_before=$(fw_state)

spawn echo ip netns exec "$NS" "$BLAST" echo -l 127.0.0.1:$ECHOPORT --duration 300
wait_log echo '^listening '
sec=(--crypt xsalsa20-poly1305 --key roam-tcp --mode fast3)

echo "== 1. -l :$LO-$HI --tcp listens on every port; --hop 1 over fake TCP"
spawn srv ip netns exec "$NS" "$SERVER" -l 10.78.0.2:$LO-$HI -t 127.0.0.1:$ECHOPORT --tcp "${sec[@]}"
srv=$LASTPID
wait_log srv 'server: listening'
n=$(ins ss -Hltn "( sport >= :$LO and sport <= :$HI )" | wc -l)
[ "$n" = 8 ] || fail "$n TCP listeners in $LO-$HI, want 8"
r=$(ins iptables -S OUTPUT | grep -c -- "--sport $LO:$HI .*ktun-tcp:")
[ "$r" = 1 ] || { ins iptables -S OUTPUT; fail "want one server rule for the range"; }
echo "ok   8 TCP listeners, one firewall rule for $LO:$HI"
spawn cli ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12960 -r 10.78.0.2:$LO-$HI --tcp \
    "${sec[@]}" --hop 1 --loglevel debug
cli=$LASTPID
wait_log cli 'client: listening'
line=$(inc "$BLAST" rr -c 127.0.0.1:12960 --count 200 --interval 50 --size 64 --wait 3000 \
    --duration 40)
hops=$(grep -c 'hopped to this server port' "$tmp/cli.log")
echo "roam-tcp: hop 1 s over fake TCP: hops=$hops $line"
[ "$hops" -ge 6 ] || fail "$hops hops in 10 s with --hop 1"
[ "$(field received "$line")" = 200 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost across fake-TCP hops"
# Every message arrives within rr's --wait (3 s) or counts as lost; how long the longest took
# is a figure for the benchmark (bench-roam.sh), not a timed check: under load it only measures
# the machine.
ports=$(grep -o 'new connection to 10.78.0.2:[0-9]*' "$tmp/cli.log" | sed 's/.*://' | sort -u | wc -l)
[ "$ports" -ge 2 ] || fail "the hops used $ports server port(s)"
inc timeout 60 python3 "$STREAMS" check --connect 127.0.0.1:12960 --bytes 2097152 --streams 2 \
    --duration 50 >"$tmp/bulk.log" 2>&1 || { cat "$tmp/bulk.log"; fail "transfer across hops"; }
echo "ok   2 x 2 MiB each way across hops, sha256 intact ($(grep -c 'hopped' "$tmp/cli.log") hops so far)"
rules=$(sed -n 's/.*its rule took \([0-9]*\) ms/\1/p' "$tmp/cli.log" | sort -n)
echo "roam-tcp: firewall rule per new connection: $(wc -l <<<"$rules") rules, median $(sed -n "$(( ($(wc -l <<<"$rules") + 1) / 2 ))p" <<<"$rules") ms, max $(tail -1 <<<"$rules") ms"
stop_pid "$cli" || fail "client did not exit cleanly"

echo "== 2. the fake-TCP connection dies: a new one, same session"
spawn cli2 ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12961 -r 10.78.0.2:$LO --tcp "${sec[@]}"
cli2=$LASTPID
wait_log cli2 'client: listening'
inc "$BLAST" rr -c 127.0.0.1:12961 --count 300 --interval 50 --size 64 --wait 5000 \
    --duration 60 >"$tmp/rr2.out" 2>&1 &
rr2=$!
pids+=("$rr2")
sleep 3
cport=$(inc ss -Htn state established "( dport = :$LO )" | awk '{ print $3 }' | sed 's/.*://' | head -1)
[ -n "$cport" ] || fail "no fake-TCP connection to find"
ins iptables -I INPUT -p tcp --sport "$cport" -j DROP
ins iptables -I OUTPUT -p tcp --dport "$cport" -j DROP
wait "$rr2"
ins iptables -D INPUT -p tcp --sport "$cport" -j DROP
ins iptables -D OUTPUT -p tcp --dport "$cport" -j DROP
line=$(cat "$tmp/rr2.out")
echo "roam-tcp: connection from port $cport dropped mid-session: $line"
grep -q 'new fake-TCP connection' "$tmp/cli2.log" || fail "no new fake-TCP connection"
[ "$(grep -c 'sess: opened' "$tmp/cli2.log")" = 1 ] || fail "a new session instead of a new path"
[ "$(field received "$line")" = 300 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost across the new connection"
le "$(field max_ms "$line")" 5000 || fail "the new connection took $(field max_ms "$line") ms"
stop_pid "$cli2" || fail "client did not exit cleanly"
stop_pid "$srv" || fail "server did not exit cleanly"

echo "== 3. --tcp auto: UDP dies mid-session, the session goes on over fake TCP"
AP=$((HI + 1))
spawn asrv ip netns exec "$NS" "$SERVER" -l 10.78.0.2:$AP -t 127.0.0.1:$ECHOPORT --tcp \
    --key roam-tcp --crypt aes
asrv=$LASTPID
wait_log asrv 'server: listening'
spawn acli ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12962 -r 10.78.0.2:$AP --tcp auto \
    --key roam-tcp --crypt aes
acli=$LASTPID
wait_log acli 'client: listening'
inc "$BLAST" rr -c 127.0.0.1:12962 --count 300 --interval 50 --size 64 --wait 8000 \
    --duration 60 >"$tmp/rr3.out" 2>&1 &
rr3=$!
pids+=("$rr3")
sleep 3
ins iptables -I INPUT -p udp --dport $AP -j DROP
wait "$rr3"
ins iptables -D INPUT -p udp --dport $AP -j DROP
line=$(cat "$tmp/rr3.out")
echo "roam-tcp: --tcp auto, UDP dropped after 3 s: $line"
grep -q "tcp auto: 10.78.0.2:$AP over UDP" "$tmp/acli.log" || fail "--tcp auto did not start on UDP"
grep -q 'switching to fake TCP' "$tmp/acli.log" || fail "--tcp auto did not switch"
[ "$(grep -c 'sess: opened' "$tmp/acli.log")" = 1 ] || fail "a new session instead of the same one"
[ "$(field received "$line")" = 300 ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost across the switch"
grep -q 'peer moved' "$tmp/asrv.log" || fail "the server did not follow the session to fake TCP"
stop_pid "$acli" || fail "client did not exit cleanly"
stop_pid "$asrv" || fail "server did not exit cleanly"

[ "$(fw_state)" = "$fw_before" ] || { diff <(echo "$fw_before") <(fw_state); fail "rules left behind"; }
echo "ok   firewall rules of both namespaces and the host as before"
echo "roam-tcp: all checks passed"
