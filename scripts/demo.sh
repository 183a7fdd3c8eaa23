#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun demo: runs ktun-client -> a lossy UDP relay -> ktun-server -> a local target, all on
# 127.0.0.1, moves a bulk transfer and a stream of small messages through the tunnel, and
# prints what a user wants to know: bytes moved and intact, throughput, latency,
# retransmissions, FEC recoveries. Needs no root; stops every process it started.
#
# usage: scripts/demo.sh [--loss PCT] [--delay MS] [--bytes N] [--crypt METHOD] [--mode MODE]
#                        [-- extra ktun flags for both ends]
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=bin
[ "$BUILD" = build ] || BIN=$BUILD/bin
TOOLS=$BUILD/tools

loss=5 delay=20 bytes=32M crypt=aes mode=fast3
extra=()
while [ $# -gt 0 ]; do
    case $1 in
    --loss) loss=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --crypt) crypt=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '3,9p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (try --help)"; exit 2 ;;
    esac
done
for f in "$BIN/ktun-client" "$BIN/ktun-server" "$TOOLS/udpfw" "$TOOLS/tcpblast"; do
    [ -x "$f" ] || { echo "demo: $f is missing: run 'make' first"; exit 1; }
done

FAIL_PREFIX="demo: "
source tests/e2e/proc.sh
field() { # KEY FILE: value of key=value in the last matching line
    grep -o "$1=[^ ]*" "$2" | tail -n 1 | cut -d= -f2
}
snmp() { # KEY LOGFILE: counter from the last "snmp:" log line
    grep 'snmp:' "$2" | tail -n 1 | grep -o " $1=[0-9]*" | cut -d= -f2
}

target_port=$(free_port)
server_port=$(free_port)
relay_port=$(free_port)
client_port=$(free_port)
flags=(--key demo-key --crypt "$crypt" --mode "$mode" "${extra[@]}")

spawn server "$BIN/ktun-server" -l "127.0.0.1:$server_port" -t "127.0.0.1:$target_port" "${flags[@]}"
server_pid=$LASTPID
spawn relay "$TOOLS/udpfw" --listen "127.0.0.1:$relay_port" --upstream "127.0.0.1:$server_port" \
    --loss "$loss" --delay "$delay" --jitter 2 --reorder 1 --dup 1 --seed 7 --duration 600
relay_pid=$LASTPID
wait_log relay '^listening'
spawn client "$BIN/ktun-client" -l "127.0.0.1:$client_port" -r "127.0.0.1:$relay_port" "${flags[@]}"
client_pid=$LASTPID
wait_log server 'server: listening'
wait_log client 'client: listening'

echo "ktun demo: TCP -> ktun-client -> relay ($loss% loss, ${delay} ms delay each way, reorder and"
echo "           duplication) -> ktun-server -> target, on 127.0.0.1, crypt $crypt, mode $mode"
echo

# 1. Bulk: the target verifies the seeded stream's sha256.
spawn sink "$TOOLS/tcpblast" sink -l "127.0.0.1:$target_port" --conns 1 -n "$bytes" -s 42 -t 300
wait_log sink '^listening'
"$TOOLS/tcpblast" send -c "127.0.0.1:$client_port" -n "$bytes" -s 42 -t 300 >"$tmp/send.out" 2>&1
wait_until 300 grep -q '^sink:' "$tmp/sink.log"
sent=$(field bytes "$tmp/send.out")
got=$(field bytes "$tmp/sink.log")
secs=$(field seconds "$tmp/sink.log")
mbit=$(field mbit_s "$tmp/sink.log")
verify=$(field verify "$tmp/sink.log")
if [ "$verify" = ok ] && [ "$got" = "$sent" ]; then intact="intact (sha256 verified)"; else intact="NOT INTACT ($verify)"; fi
printf 'bulk:     %s bytes sent, %s bytes arrived, %s\n' "${sent:-0}" "${got:-0}" "$intact"
printf '          %s Mbit/s goodput (%s s)\n' "${mbit:-?}" "${secs:-?}"

# 2. Small messages: 64 bytes every 20 ms, echoed by the target.
spawn echo "$TOOLS/tcpblast" echo -l "127.0.0.1:$target_port" -t 300
wait_log echo '^listening'
"$TOOLS/tcpblast" rr -c "127.0.0.1:$client_port" -C 200 -i 20 -z 64 -t 120 >"$tmp/rr.out" 2>&1
printf 'messages: %s sent, %s echoed, round trip p50 %s ms, p99 %s ms, max %s ms\n' \
    "$(field sent "$tmp/rr.out")" "$(field received "$tmp/rr.out")" "$(field p50_ms "$tmp/rr.out")" \
    "$(field p99_ms "$tmp/rr.out")" "$(field max_ms "$tmp/rr.out")"

# 3. The tunnel's own counters (SIGUSR1 writes them to the log).
kill -USR1 "$client_pid" "$server_pid"
wait_log client 'snmp:'
wait_log server 'snmp:'
for side in client server; do
    log=$tmp/$side.log
    out=$(snmp OutSegs "$log") re=$(snmp RetransSegs "$log")
    pct=$(awk -v r="${re:-0}" -v o="${out:-0}" 'BEGIN { printf "%.1f", o ? 100 * r / o : 0 }')
    printf '%-8s  datagrams out %s in %s, segments retransmitted %s (%s%%), FEC recovered %s\n' \
        "$side:" "$(snmp OutPkts "$log")" "$(snmp InPkts "$log")" "${re:-0}" "$pct" \
        "$(snmp FECRecovered "$log")"
done
kill -USR1 "$relay_pid"
wait_log relay '^down:'
grep -E '^(up|down)' "$tmp/relay.log" | tail -n 2 | sed 's/^/relay     /'
echo
[ "$verify" = ok ] && [ "$got" = "$sent" ]
