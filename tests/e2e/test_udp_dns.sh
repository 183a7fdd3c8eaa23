#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# UDP flows to targets named by host names are looked up off the server's event loop: the
# server runs in a private mount namespace whose only name server (tests/e2e/dns_slow.py)
# answers one name after 1.5 s and never answers another. While a flow to the silent name
# waits (its lookup takes the resolver's whole timeout, 10 s), a flow to an address must keep
# its echoes coming back promptly; the datagrams of the slow name's flow are held and all
# delivered once it resolves; the silent name's flow is refused once it fails, with one log
# line, and the datagrams held for it are counted as dropped.
set -u
source "$(dirname "$0")/lib.sh"
UDPPY=tests/e2e/udp.py
NS_IP=127.0.0.79
need_private_dns "$NS_IP"

slow=slow.ktun-udp-dns.invalid
hang=hang.ktun-udp-dns.invalid
spawn dns python3 -u tests/e2e/dns_slow.py --listen "$NS_IP" --answer "$slow=127.0.0.1@1.5" \
    --hang "$hang"
wait_log dns '^listening'
printf 'nameserver %s\noptions timeout:5 attempts:2\n' "$NS_IP" >"$tmp/resolv.conf"

start_echo techo
spawn uecho python3 "$UDPPY" echo --listen 127.0.0.1:0 --duration 300
wait_log uecho '^listening '
UECHO=$(sed -n 's/^listening //p' "$tmp/uecho.log")
UP=${UECHO##*:}

SP=$(free_port); CP=$(free_port); U1=$(free_port); U2=$(free_port); U3=$(free_port)
# shellcheck disable=SC2016
spawn srv unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' sh \
    "$tmp/resolv.conf" "$SERVER" -l "127.0.0.1:$SP" -t "$ECHO" --key udp-dns \
    --allow "$UECHO" --allow "$slow:$UP" --allow "$hang:$UP" \
    --snmplog "$tmp/srv.csv" --snmpperiod 1
wait_log srv 'server: listening'
start_client cli "$CP" "$SP" --key udp-dns -U "$U1:$hang:$UP" -U "$U2:$slow:$UP" -U "$U3:$UECHO"

echo "== a flow to a name that never answers, and meanwhile a flow to an address"
python3 "$UDPPY" probe --connect "127.0.0.1:$U1" --count 100 --interval 50 --wait 1000 \
    >"$tmp/hang.out" 2>&1 &
hang_pid=$!
pids+=("$hang_pid")
wait_until 50 grep -q "query $hang" "$tmp/dns.log" || fail "the silent name was not looked up"
python3 "$UDPPY" probe --connect "127.0.0.1:$U3" --count 200 --interval 20 --wait 2000 \
    >"$tmp/ip.out" 2>&1
cat "$tmp/ip.out"
line=$(cat "$tmp/ip.out")
[ "$(field received "$line")" = 200 ] || fail "echoes to an address lost while a name hung"
le "$(field max_ms "$line")" 1000 ||
    fail "an echo waited $(field max_ms "$line") ms while a name hung: the loop stalled"

echo "== a flow to a name answered after 1.5 s: its datagrams wait and all go"
python3 "$UDPPY" probe --connect "127.0.0.1:$U2" --count 20 --interval 20 --wait 4000 \
    >"$tmp/slow.out" 2>&1
cat "$tmp/slow.out"
line=$(cat "$tmp/slow.out")
[ "$(field received "$line")" = 20 ] || fail "datagrams held during the lookup were lost"
ge "$(field max_ms "$line")" 1000 || fail "the first echo came before the name was answered"
grep -q "flow [0-9]* to $slow:$UP opened" "$tmp/srv.log" || fail "no flow opened to $slow"

echo "== the silent name's lookup fails: refused once, its held datagrams counted"
wait "$hang_pid"
cat "$tmp/hang.out"
grep -q 'received=0 ' "$tmp/hang.out" || fail "the silent name's flow answered"
wait_log srv "flow to $hang:$UP refused" 300
[ "$(grep -c "flow to $hang:$UP refused" "$tmp/srv.log")" = 1 ] || fail "refusal not logged once"
sleep 1.5
dropped=$(tail -1 "$tmp/srv.csv" | cut -d, -f28)
echo "server: DgramDropped=$dropped"
ge "$dropped" 32 || fail "held datagrams not counted as dropped ($dropped)"
echo "udp-dns: all checks passed"
