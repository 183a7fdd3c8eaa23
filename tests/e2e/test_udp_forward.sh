#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# UDP forwards (-U) over the datagram channel, through the lossy relay (udpfw: 5% loss and
# 25 ms each way): two TCP forwards (-l, -L) and three UDP forwards in one client process, a UDP echo
# measured (every datagram at most once, nearly all delivered), dig against a local dnsmasq
# through a forward, a target outside --allow refused with one log line, the default server
# refusing every UDP target but its -t (no open proxy), and the CSV counters.
set -u
source "$(dirname "$0")/lib.sh"
FW=$TOOLS/udpfw
[ -x "$FW" ] || { echo "missing $FW (run make tools)"; exit 1; }
UDPPY=tests/e2e/udp.py

start_echo techo2
ECHO2=$ECHO
start_echo techo
spawn uecho python3 "$UDPPY" echo --listen 127.0.0.1:0 --duration 300
wait_log uecho '^listening '
UECHO=$(sed -n 's/^listening //p' "$tmp/uecho.log")

DNS=
if command -v dnsmasq >/dev/null && command -v dig >/dev/null; then
    DP=$(free_port)
    spawn dns dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --listen-address=127.0.0.1 --bind-interfaces --port="$DP" --pid-file= \
        --user="$(id -un)" --address=/ktun.test/10.1.2.3 --log-facility=-
    DNS=127.0.0.1:$DP
    wait_until 50 dig +short +time=1 +tries=1 @127.0.0.1 -p "$DP" ktun.test >/dev/null ||
        fail "dnsmasq did not answer"
else
    echo "dnsmasq or dig not installed: skipping the DNS part"
fi

SP=$(free_port); CP=$(free_port); U1=$(free_port); U2=$(free_port); U3=$(free_port)
L1=$(free_port)
start_server srv "$SP" "$ECHO" --key udp-key --allow "$UECHO" ${DNS:+--allow "$DNS"} \
    --allow "$ECHO2" \
    --snmplog "$tmp/srv.csv" --snmpperiod 1
spawn relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$SP" --loss 5 --delay 25 --seed 3 \
    --duration 300
wait_log relay '^listening '
RELAY=$(sed -n 's/^listening //p' "$tmp/relay.log")
spawn cli "$CLIENT" -l "127.0.0.1:$CP" -r "$RELAY" --key udp-key \
    -U "$U1:$UECHO" -U "127.0.0.1:$U2:${DNS:-127.0.0.1:9}" -U "$U3:127.0.0.1:9" -L "$L1:$ECHO2" \
    --snmplog "$tmp/cli.csv" --snmpperiod 1
wait_log cli 'client: listening'

echo "== TCP streams (-l and -L) and UDP echo at once, 5% loss and 25 ms each way"
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 300000 --streams 2 \
    >"$tmp/tcp.out" 2>&1 &
tcp_pid=$!
python3 "$STREAMS" check --connect "127.0.0.1:$L1" --bytes 200000 >"$tmp/tcpL.out" 2>&1 &
tcpl_pid=$!
python3 "$UDPPY" probe --connect "127.0.0.1:$U1" --count 500 --interval 20 --flows 4 \
    --wait 3000 >"$tmp/probe.out" 2>&1
probe_rc=$?
wait "$tcp_pid" || fail "TCP stream through the lossy tunnel: $(cat "$tmp/tcp.out")"
wait "$tcpl_pid" || fail "-L stream through the lossy tunnel: $(cat "$tmp/tcpL.out")"
cat "$tmp/probe.out"
[ $probe_rc -eq 0 ] || fail "an echo came back twice or corrupted"
ratio=$(sed -n 's/.*ratio=\([^ ]*\).*/\1/p' "$tmp/probe.out")
# raw UDP through the relay would deliver 90%; with FEC nearly all come back
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.97) }' || fail "delivery ratio $ratio below 0.97"

if [ -n "$DNS" ]; then
    echo "== dig through a UDP forward"
    ans=$(dig +short +time=2 +tries=3 @127.0.0.1 -p "$U2" ktun.test)
    echo "dig: $ans"
    [ "$ans" = 10.1.2.3 ] || fail "dig through the tunnel answered '$ans'"
fi

echo "== a target outside --allow is refused, logged once"
python3 "$UDPPY" probe --connect "127.0.0.1:$U3" --count 20 --interval 20 --wait 1000 \
    >"$tmp/refused.out" 2>&1
cat "$tmp/refused.out"
grep -q 'received=0 ' "$tmp/refused.out" || fail "a refused target answered"
wait_log srv 'flow to 127.0.0.1:9 refused' 50
[ "$(grep -c 'flow to 127.0.0.1:9 refused' "$tmp/srv.log")" -eq 1 ] ||
    fail "refusal logged more than once"

echo "== counters"
sleep 1.5
hdr=$(head -1 "$tmp/cli.csv")
case "$hdr" in
Unix,BytesSent,BytesReceived,MaxConn,*,FECShortShards,DgramIn,DgramOut,DgramDropped,DgramRecovered*) ;;
*) fail "CSV header: $hdr" ;;
esac
last=$(tail -1 "$tmp/cli.csv")
din=$(cut -d, -f26 <<<"$last"); dout=$(cut -d, -f27 <<<"$last"); drec=$(cut -d, -f29 <<<"$last")
echo "client: DgramIn=$din DgramOut=$dout DgramRecovered=$drec"
[ "$din" -ge 450 ] && [ "$dout" -ge 500 ] && [ "$drec" -ge 1 ] || fail "client counters"

echo "== default server: no UDP target but -t (no open proxy)"
SP2=$(free_port); CP2=$(free_port); U4=$(free_port); U5=$(free_port)
start_server srv2 "$SP2" "$UECHO" --key udp-key
start_client cli2 "$CP2" "$SP2" --key udp-key -U "$U4:$UECHO" -U "$U5:127.0.0.1:9"
python3 "$UDPPY" probe --connect "127.0.0.1:$U4" --count 20 --interval 10 --wait 1000 \
    >"$tmp/t.out" 2>&1
grep -q 'received=20 ' "$tmp/t.out" || fail "the -t target over UDP: $(cat "$tmp/t.out")"
python3 "$UDPPY" probe --connect "127.0.0.1:$U5" --count 20 --interval 10 --wait 1000 \
    >"$tmp/o.out" 2>&1
grep -q 'received=0 ' "$tmp/o.out" || fail "default server opened another target"
wait_log srv2 "refused" 50
echo "ok"
