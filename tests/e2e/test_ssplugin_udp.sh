#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIP003u: ktun as a shadowsocks plugin with plugin_mode=tcp_and_udp carries the host's UDP
# relay too. The hosts are played by this script (Debian's shadowsocks-libev does not send UDP
# through plugins): datagrams sent to the client plugin's SS_LOCAL arrive at the server
# plugin's SS_LOCAL (a UDP echo there) over the datagram channel, and TCP still works. Without
# plugin_mode the client plugin sends no capability offer (kcptun's plugin wire).
set -u
source "$(dirname "$0")/lib.sh"
UDPPY=tests/e2e/udp.py

EP=$(free_port)
spawn uecho python3 "$UDPPY" echo --listen "127.0.0.1:$EP" --duration 120
wait_log uecho '^listening '
spawn techo python3 "$STREAMS" echo --listen "127.0.0.1:$EP" --duration 120
wait_log techo '^listening '

plugin_pair() { # NAME OPTIONS: server and client plugins as the hosts would start them
    local name=$1 opts=$2
    RP=$(free_port); LP=$(free_port)
    SS_REMOTE_HOST=127.0.0.1 SS_REMOTE_PORT=$RP SS_LOCAL_HOST=127.0.0.1 SS_LOCAL_PORT=$EP \
        SS_PLUGIN_OPTIONS=$opts spawn "$name-s" "$SERVER"
    wait_log "$name-s" 'server: listening'
    SS_REMOTE_HOST=127.0.0.1 SS_REMOTE_PORT=$RP SS_LOCAL_HOST=127.0.0.1 SS_LOCAL_PORT=$LP \
        SS_PLUGIN_OPTIONS=$opts spawn "$name-c" "$CLIENT"
    wait_log "$name-c" 'client: listening'
}

echo "== plugin_mode=tcp_and_udp"
plugin_pair u 'key=sip003u;plugin_mode=tcp_and_udp'
python3 "$UDPPY" probe --connect "127.0.0.1:$LP" --count 100 --interval 10 --flows 2 \
    >"$tmp/probe.out" 2>&1 || fail "echo came back twice or corrupted"
cat "$tmp/probe.out"
grep -q 'received=100 ' "$tmp/probe.out" || fail "UDP relay through the plugins"
python3 "$STREAMS" check --connect "127.0.0.1:$LP" --bytes 200000 >"$tmp/tcp.out" 2>&1 ||
    fail "TCP through the plugins"
grep -q 'ktun peer, extensions' "$tmp/u-c.log" || fail "no capability exchange"

echo "== tcp_only (default): no offer, no UDP"
plugin_pair t 'key=sip003u'
python3 "$STREAMS" check --connect "127.0.0.1:$LP" --bytes 200000 >"$tmp/tcp2.out" 2>&1 ||
    fail "TCP through the plugins"
python3 "$UDPPY" probe --connect "127.0.0.1:$LP" --count 10 --interval 10 --wait 500 \
    >"$tmp/probe2.out" 2>&1
grep -q 'received=0 ' "$tmp/probe2.out" || fail "UDP went through without plugin_mode"
grep -q 'ktun peer' "$tmp/t-c.log" "$tmp/t-s.log" && fail "an offer without plugin_mode"
echo "ok"
