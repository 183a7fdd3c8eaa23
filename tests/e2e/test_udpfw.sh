#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# udpfw on loopback: flag errors, loss and delay roughly as asked, several clients routed back
# correctly, duplication, rate cap with tail drop, counters on SIGTERM. No root; a few seconds.
# Bounds are generous: this also runs under load and under sanitizers.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FW=$BUILD/tools/udpfw
BLAST=$BUILD/tools/tcpblast
for t in "$FW" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done

source tests/e2e/proc.sh

echo "== bad flags exit 2"
for args in "--bogus" "--listen 127.0.0.1:0" "--listen 127.0.0.1:0 --echo --loss 150" \
            "--listen nowhere --echo" "--listen 127.0.0.1:0 --echo --rate 5furlongs" \
            "--listen 127.0.0.1:0 --echo --delay 10/abc" "--listen 127.0.0.1:0 --echo extra"; do
    # shellcheck disable=SC2086
    "$FW" $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "udpfw $args: exit $rc, want 2"
done
"$BLAST" nomode >/dev/null 2>&1; [ $? -eq 2 ] || fail "tcpblast nomode: want exit 2"
"$BLAST" rr --count x -c 127.0.0.1:1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "tcpblast --count x"

start_listener echo "$FW" --listen 127.0.0.1:0 --echo --duration 30
ECHO=$ADDR
echo "echo server at $ECHO"

echo "== loss 10 %, delay 20 ms each way"
start_listener lossy "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --loss 10 --delay 20 --seed 7 \
    --stats "$tmp/lossy.stats" --duration 30
line=$("$BLAST" rr --udp -c "$ADDR" --count 400 --interval 2 --wait 1000 --duration 20)
echo "$line"
loss=$(field loss_pct "$line"); p50=$(field p50_ms "$line"); min=$(field min_ms "$line")
# round trip: 1 - 0.9^2 = 19 %; with 400 probes the standard deviation is about 2 %
ge "$loss" 8 && le "$loss" 32 || fail "round-trip loss $loss %, want about 19 %"
ge "$min" 39 || fail "min RTT $min ms is below 2 x 20 ms"
le "$p50" 400 || fail "median RTT $p50 ms, want about 40 ms"
kill -USR1 "${pids[-1]}"
wait_until 50 test -s "$tmp/lossy.stats"
up=$(grep '^up:' "$tmp/lossy.stats") || fail "no stats file"
echo "$up"
rx=$(field rx_pkts "$up"); lost=$(field lost "$up")
[ "$rx" -eq 400 ] || fail "udpfw saw $rx probes, want 400"
ge "$lost" 15 && le "$lost" 70 || fail "udpfw lost $lost of 400 upstream, want about 40"

echo "== no impairment, three clients at once, each gets only its own replies"
start_listener clean "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --duration 30
for s in 1 2 3; do
    "$BLAST" rr --udp -c "$ADDR" --seed "$s" --count 200 --interval 1 --wait 1000 \
        --duration 20 >"$tmp/rr$s.out" &
    pids+=($!)
done
for s in 1 2 3; do
    wait "${pids[-1]}" 2>/dev/null
    unset 'pids[-1]'
done
for s in 1 2 3; do
    line=$(cat "$tmp/rr$s.out"); echo "$line"
    [ "$(field received "$line")" = 200 ] || fail "client $s lost replies on a clean relay"
    [ "$(field bad "$line")" = 0 ] || fail "client $s got someone else's replies"
done

echo "== one client slot: each new client evicts the previous one and still works"
start_listener evict "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --max-clients 1 \
    --stats "$tmp/evict.stats" --duration 30
evict_pid=${pids[-1]}
for s in 1 2 3; do
    line=$("$BLAST" rr --udp -c "$ADDR" --seed "$s" --count 20 --interval 1 --wait 1000 \
        --duration 20)
    [ "$(field received "$line")" = 20 ] || fail "client $s after eviction: $line"
done
kill -TERM "$evict_pid"; wait "$evict_pid"
cl=$(grep '^clients:' "$tmp/evict.stats"); echo "$cl"
[ "$(field evictions "$cl")" = 2 ] || fail "want 2 evictions"

echo "== duplication 100 %"
start_listener dup "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --dup 100/0 --duration 30
line=$("$BLAST" rr --udp -c "$ADDR" --count 50 --interval 2 --wait 300 --duration 20)
echo "$line"
ge "$(field dups "$line")" 40 || fail "want about 50 duplicate replies"

echo "== rate cap 2 Mbit/s: 100 x 1000 bytes take about 0.4 s; a small queue tail-drops"
start_listener rate "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --rate 2mbit --rate-queue 1000000 \
    --duration 30
line=$("$BLAST" rr --udp -c "$ADDR" --count 100 --size 1000 --interval 0 --wait 3000 \
    --duration 20)
echo "$line"
[ "$(field received "$line")" = 100 ] || fail "rate cap with a large queue must not drop"
ge "$(field max_ms "$line")" 350 || fail "rate cap not applied: last reply too early"
start_listener small "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --rate 2mbit --rate-queue 10000 \
    --stats "$tmp/small.stats" --duration 30
small_pid=${pids[-1]}
line=$("$BLAST" rr --udp -c "$ADDR" --count 100 --size 1000 --interval 0 --wait 1000 \
    --duration 20)
echo "$line"
kill -TERM "$small_pid"
wait "$small_pid"; rc=$?
[ $rc -eq 0 ] || fail "udpfw exit $rc after SIGTERM"
grep -q '^up:' "$tmp/small.log" || fail "no counters printed on SIGTERM"
up=$(grep '^up:' "$tmp/small.stats"); echo "$up"
ge "$(field queue_drops "$up")" 50 || fail "10 kB queue should tail-drop most of a 100 kB burst"
le "$(field received "$line")" 50 || fail "too many replies through a 10 kB queue"

echo "== tcpblast: send/sink verify the stream and agree with gen --hash"
start_listener sink "$BLAST" sink -l 127.0.0.1:0 --seed 9 --bytes 3000001 --duration 20
sink_pid=${pids[-1]}
line=$("$BLAST" send -c "$ADDR" --seed 9 --bytes 3000001 --duration 20) || fail "send failed"
echo "$line"
wait "$sink_pid" || fail "sink failed: $(cat "$tmp/sink.log")"
sline=$(grep '^sink:' "$tmp/sink.log"); echo "$sline"
want=$("$BLAST" gen --seed 9 --bytes 3000001 --hash)
[ "$(field sha256 "$line")" = "$want" ] || fail "send hash differs from gen"
[ "$(field sha256 "$sline")" = "$want" ] || fail "sink hash differs from gen"
[ "$(field verify "$sline")" = ok ] || fail "sink did not verify"
start_listener bad "$BLAST" sink -l 127.0.0.1:0 --seed 10 --duration 20
bad_pid=${pids[-1]}
"$BLAST" send -c "$ADDR" --seed 9 --bytes 100000 --duration 20 >/dev/null
wait "$bad_pid" && fail "sink accepted the wrong stream"
grep -q 'verify=FAIL' "$tmp/bad.log" || fail "sink did not report the mismatch"

echo "== tcpblast: rr over TCP, send --time"
start_listener techo "$BLAST" echo -l 127.0.0.1:0 --duration 20
line=$("$BLAST" rr -c "$ADDR" --count 50 --interval 2 --size 300 --duration 20)
echo "$line"
[ "$(field received "$line")" = 50 ] && [ "$(field bad "$line")" = 0 ] || fail "TCP rr"
start_listener tsink "$BLAST" sink -l 127.0.0.1:0 --seed 3 --duration 20
tsink_pid=${pids[-1]}
line=$("$BLAST" send -c "$ADDR" --seed 3 --time 0.3 --duration 20) || fail "send --time failed"
echo "$line"
wait "$tsink_pid" || fail "sink rejected a --time stream"
[ "$(field sha256 "$line")" = "$(field sha256 "$(grep '^sink:' "$tmp/tsink.log")")" ] ||
    fail "send --time: hashes differ"

echo "udpfw: all checks passed"
