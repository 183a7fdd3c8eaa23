#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --hop end to end on loopback (docs/roaming.md section 6): a ktun client (secure mode) moves
# its live session to another random port of a 16-port range every ROAM_HOP_S seconds
# (default 5) for ROAM_HOP_DURATION seconds (default 15; 60 is the full measurement, see
# scripts/bench-roam.sh):
# 1. a 64-byte message every 50 ms: every one echoed once, in order, none waiting more than
#    a second across the hops;
# 2. a bulk transfer across hops arrives intact (sha256 of the seeded stream), and its goodput
#    is printed next to the same transfer without hopping (no speed is asserted here). The
#    client's sending rate is capped at ROAM_HOP_RATE bytes/s (default 6250000, 50 Mbit/s; 0
#    for none) so that the comparison measures the hops, not how loaded the CPU is.
source "$(dirname "$0")/lib.sh"
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }
DUR=${ROAM_HOP_DURATION:-15}
HOP=${ROAM_HOP_S:-5}
RATE=${ROAM_HOP_RATE:-6250000}
PORTS=16

# free_block: sets LO to the first of $PORTS consecutive free UDP ports.
free_block() {
    LO=
    for _ in $(seq 50); do
        local p; p=$(free_port)
        [ "$p" -lt 65000 ] || continue
        python3 - "$p" "$PORTS" <<'PY' && { LO=$p; return 0; }
import socket, sys
base, n = int(sys.argv[1]), int(sys.argv[2]); socks = []
try:
    for i in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", base + i))
        socks.append(u)
except OSError:
    sys.exit(1)
PY
    done
    fail "no block of $PORTS free ports"
}

spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration $((DUR * 4 + 60))
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")
free_block
lo=$LO; hi=$((LO + PORTS - 1))
sec=(--key roam-hop --crypt xsalsa20-poly1305 --mode fast3)
start_server srv "$lo-$hi" "$ECHO" "${sec[@]}"
srv=$LASTPID

echo "== messages: --hop $HOP over $PORTS ports for $DUR s"
cp=$(free_port)
start_client cli "$cp" "$lo-$hi" "${sec[@]}" --hop "$HOP" --loglevel debug
cli=$LASTPID
count=$((DUR * 20))
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count "$count" --interval 50 --size 64 --wait 3000 \
    --duration $((DUR + 30)))
hops=$(grep -c 'hopped to this server port' "$tmp/cli.log")
echo "roam-hop: messages: hops=$hops $line"
[ "$hops" -ge $((DUR / HOP - 1)) ] || fail "$hops hops in $DUR s with --hop $HOP"
[ "$(field received "$line")" = "$count" ] && [ "$(field dups "$line")" = 0 ] &&
    [ "$(field bad "$line")" = 0 ] || fail "messages lost or duplicated across hops"
le "$(field max_ms "$line")" 1000 || fail "a message waited $(field max_ms "$line") ms"

# bulk NAME CLIENT_ARGS...: a time-bounded seeded transfer through a new client; prints the
# sink's line
bulk() {
    local name=$1; shift
    local cp2 sink_pid
    cp2=$(free_port)
    spawn "sink-$name" "$BLAST" sink -l 127.0.0.1:0 --seed 5 --duration $((DUR + 60))
    sink_pid=$LASTPID
    wait_log "sink-$name" '^listening '
    local sinkaddr; sinkaddr=$(sed -n 's/^listening //p' "$tmp/sink-$name.log")
    start_server "srv-$name" "$lo-$hi" "$sinkaddr" "${sec[@]}"
    start_client "cli-$name" "$cp2" "$lo-$hi" "${sec[@]}" "$@"
    "$BLAST" send -c "127.0.0.1:$cp2" --seed 5 --time "$DUR" --duration $((DUR + 60)) \
        >"$tmp/send-$name.out" || fail "$name: send failed"
    wait "$sink_pid" || fail "$name: the sink failed: $(cat "$tmp/sink-$name.log")"
    stop_pid "${pids[-1]}" >/dev/null
    stop_pid "${pids[-2]}" >/dev/null
    BULK=$(grep '^sink:' "$tmp/sink-$name.log")
    [ "$(field verify "$BULK")" = ok ] || fail "$name: the stream arrived corrupt: $BULK"
    [ "$(field sha256 "$BULK")" = "$(field sha256 "$(cat "$tmp/send-$name.out")")" ] ||
        fail "$name: sha256 of what arrived differs from what was sent"
}
stop_pid "$cli"
stop_pid "$srv"

echo "== bulk: $DUR s with --hop $HOP, then without hopping (--ratelimit $RATE)"
bulk hop --hop "$HOP" --loglevel debug --ratelimit "$RATE"
hop_line=$BULK
hops=$(grep -c 'hopped to this server port' "$tmp/cli-hop.log")
bulk nohop --ratelimit "$RATE"
nohop_line=$BULK
ratio=$(awk -v a="$(field mbit_s "$hop_line")" -v b="$(field mbit_s "$nohop_line")" \
    'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
echo "roam-hop: bulk with hops ($hops): $hop_line"
echo "roam-hop: bulk without: $nohop_line"
echo "roam-hop: goodput with/without hopping: $ratio"
[ "$hops" -ge $((DUR / HOP - 1)) ] || fail "$hops hops during the bulk transfer"
echo "roam-hop: all checks passed"
