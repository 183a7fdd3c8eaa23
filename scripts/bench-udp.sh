#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# UDP forwards over the datagram channel, measured through the lossy relay (build/tools/udpfw
# on loopback; no root). Prints "bench: NAME VALUE UNIT" lines:
#
#   udp_echo_*     200-byte datagrams every 20 ms through -U, LOSS% loss and DELAY ms each
#                  way, FEC 10/3: delivery ratio, p50, p99, p99 over the base RTT
#   tcp_echo_*     the same messages over the tunnel's TCP forward (one smux stream)
#   raw_echo_*     the same datagrams straight through the relay, no tunnel
#   base_rtt_ms    p50 of raw datagrams through the relay without loss
#   iperf_*        iperf3 -u at RATE through -U (its control connection over the TCP forward):
#                  rate sent, rate received, loss
#   idle_flows_*   RSS the server and the client gain for 1000 idle UDP flows
#
# Environment: LOSS (5), DELAY (25), COUNT (1500 echoes), RATE (20M), IPERF_SECONDS (10), FLOWS
# (1000), KTUN_ARGS (extra flags for both ends), SEED (3).
set -u
cd "$(dirname "$0")/.."
FAIL_PREFIX="bench-udp: "
source tests/e2e/proc.sh
BIN=${BIN:-bin}
FW=build/tools/udpfw
UDPPY=tests/e2e/udp.py
STREAMS=tests/e2e/streams.py
LOSS=${LOSS:-5}
DELAY=${DELAY:-25}
COUNT=${COUNT:-1500}
RATE=${RATE:-20M}
IPERF_SECONDS=${IPERF_SECONDS:-10}
FLOWS=${FLOWS:-1000}
SEED=${SEED:-3}
read -r -a EXTRA <<<"${KTUN_ARGS:-}"
for b in "$BIN/ktun-client" "$BIN/ktun-server" "$FW"; do
    [ -x "$b" ] || { echo "missing $b (run make)"; exit 1; }
done

start_listener uecho python3 "$UDPPY" echo --listen 127.0.0.1:0 --duration 3600
UECHO=$ADDR
TP=$(free_port)
start_listener tcpecho python3 "$STREAMS" echo --listen "127.0.0.1:$TP" --duration 3600

# raw datagrams through the relay, without loss (base RTT) and with it
start_listener clean "$FW" --listen 127.0.0.1:0 --upstream "$UECHO" --delay "$DELAY" \
    --duration 3600
out=$(python3 "$UDPPY" probe --connect "$ADDR" --count 200 --interval 20 --wait 1000)
base=$(field p50_ms "$out")
echo "bench: base_rtt_ms $base ms"
start_listener lossyraw "$FW" --listen 127.0.0.1:0 --upstream "$UECHO" --delay "$DELAY" \
    --loss "$LOSS" --seed "$SEED" --duration 3600
out=$(python3 "$UDPPY" probe --connect "$ADDR" --count "$COUNT" --interval 20 --wait 2000)
echo "bench: raw_echo_delivered $(field ratio "$out") ratio"
echo "bench: raw_echo_p99 $(field p99_ms "$out") ms"

# the tunnel: client -> relay (loss, delay) -> server
SP=$(free_port); CP=$(free_port); UP=$(free_port)
spawn srv "$BIN/ktun-server" -l "127.0.0.1:$SP" -t "127.0.0.1:$TP" --key bench-udp \
    --allow "$UECHO" --allow "127.0.0.1:$TP" --quiet "${EXTRA[@]}"
wait_log srv 'server: listening'
SRV=$LASTPID
start_listener relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$SP" --delay "$DELAY" \
    --loss "$LOSS" --seed "$SEED" --duration 3600 --max-clients 256
RELAY=$ADDR
spawn cli "$BIN/ktun-client" -l "127.0.0.1:$CP" -r "$RELAY" --key bench-udp -U "$UP:$UECHO" \
    -U "127.0.0.1:$CP:127.0.0.1:$TP" --quiet "${EXTRA[@]}"
wait_log cli 'client: listening'
CLI=$LASTPID

out=$(python3 "$UDPPY" probe --connect "127.0.0.1:$UP" --count "$COUNT" --interval 20 --wait 3000)
p99=$(field p99_ms "$out")
echo "bench: udp_echo_delivered $(field ratio "$out") ratio"
echo "bench: udp_echo_dup $(field dup "$out") datagrams"
echo "bench: udp_echo_p50 $(field p50_ms "$out") ms"
echo "bench: udp_echo_p99 $p99 ms"
echo "bench: udp_echo_p99_over_base $(awk -v a="$p99" -v b="$base" 'BEGIN { printf "%.2f", a / b }') x"
echo "bench: udp_echo_p99_target $(awk -v b="$base" 'BEGIN { printf "%.1f", 1.2 * b + 5 }') ms"

out=$(python3 "$UDPPY" probe --tcp --connect "127.0.0.1:$CP" --count "$COUNT" --interval 20 \
    --wait 5000)
echo "bench: tcp_echo_delivered $(field ratio "$out") ratio"
echo "bench: tcp_echo_p50 $(field p50_ms "$out") ms"
echo "bench: tcp_echo_p99 $(field p99_ms "$out") ms"

if command -v iperf3 >/dev/null; then
    IP=$(free_port)
    spawn iperfs iperf3 -s -p "$IP" -1
    SP2=$(free_port); CP2=$(free_port)
    spawn srv2 "$BIN/ktun-server" -l "127.0.0.1:$SP2" -t "127.0.0.1:$IP" --key bench-udp --quiet \
        "${EXTRA[@]}"
    wait_log srv2 'server: listening'
    start_listener relay2 "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$SP2" \
        --delay "$DELAY" --loss "$LOSS" --seed "$SEED" --duration 3600
    R2=$ADDR
    spawn cli2 "$BIN/ktun-client" -l "127.0.0.1:$CP2" -r "$R2" --key bench-udp \
        -U "$CP2:127.0.0.1:$IP" --quiet "${EXTRA[@]}"
    wait_log cli2 'client: listening'
    iperf3 -c 127.0.0.1 -p "$CP2" -u -b "$RATE" -l 1200 -t "$IPERF_SECONDS" -J \
        >"$tmp/iperf.json" 2>"$tmp/iperf.err"
    python3 - "$tmp/iperf.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    s = j["end"]["sum"]
    sent = j["end"].get("sum_sent", s)
    rcv = j["end"].get("sum_received", s)
    print("bench: iperf_sent_mbit_s %.2f Mbit/s" % (sent["bits_per_second"] / 1e6))
    print("bench: iperf_received_mbit_s %.2f Mbit/s" % (rcv["bits_per_second"] / 1e6))
    print("bench: iperf_loss %.2f %%" % s.get("lost_percent", float("nan")))
except Exception as e:
    print("bench-udp: iperf3 result unreadable: %s" % e, file=sys.stderr)
PY
else
    echo "bench-udp: iperf3 not installed (scripts/deps.sh): skipping the bulk run"
fi

# idle flows: RSS before and after FLOWS flows that each carried one datagram
s0=$(rss_kb "$SRV"); c0=$(rss_kb "$CLI")
spawn hold python3 "$UDPPY" hold --connect "127.0.0.1:$UP" --flows "$FLOWS" --seconds 15
wait_log hold '^hold:' 400
sleep 2
s1=$(rss_kb "$SRV"); c1=$(rss_kb "$CLI")
echo "bench: idle_flows_answered $(field answered "$(cat "$tmp/hold.log")") flows"
echo "bench: idle_flows_server_rss $((s1 - s0)) KiB"
echo "bench: idle_flows_client_rss $((c1 - c0)) KiB"
