#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# udpfw's roaming modes on loopback: --rebind gives the client a new upstream source port on
# schedule and really drops replies to the old one; --replay sends captured client datagrams
# from other addresses and counts what comes back to them; --kill-flows drops the flows seen
# so far for good. No root; a few seconds.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FW=$BUILD/tools/udpfw
BLAST=$BUILD/tools/tcpblast
for t in "$FW" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done

source tests/e2e/proc.sh

# start NAME CMD...: start_listener (ADDR) with the PID in PID.
start() { start_listener "$@"; PID=$LASTPID; }
# stop PID NAME: SIGTERM and wait; the counters are then at the end of $tmp/NAME.log.
stop() { stop_pid "$1" || fail "$2 exited with an error"; }
# stats NAME PREFIX: the last counters line of NAME starting with PREFIX.
stats() { grep "^$2" "$tmp/$1.log" | tail -1; }

echo "== bad flags exit 2"
for args in "--listen 127.0.0.1:0 --echo --rebind 1" "--listen 127.0.0.1:0 --echo --replay 5" \
            "--listen 127.0.0.1:0 --upstream 127.0.0.1:9 --rebind 0" \
            "--listen 127.0.0.1:0 --echo --kill-flows 1" \
            "--listen 127.0.0.1:0 --upstream 127.0.0.1:9 --replay 5 --replay-socks 0" \
            "--listen 127.0.0.1:0 --upstream 127.0.0.1:9 --replay 1.5" \
            "--listen 127.0.0.1:0 --upstream 127.0.0.1:9 --replay 5 --replay-rate x"; do
    # shellcheck disable=SC2086
    "$FW" $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "udpfw $args: exit $rc, want 2"
done

echo "== --rebind 0.3: new source ports upstream, replies keep coming"
start echo "$FW" --listen 127.0.0.1:0 --echo --duration 30
ECHO=$ADDR; echo_pid=$PID
start rb "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --rebind 0.3 --duration 30
rb_pid=$PID
line=$("$BLAST" rr --udp -c "$ADDR" --count 100 --interval 20 --wait 500 --duration 20)
echo "$line"
# an echo comes back within microseconds, so only a reply racing a rebind can be lost
[ "$(field received "$line")" -ge 95 ] || fail "rebinding relay lost replies"
stop "$rb_pid" rb; cl=$(stats rb clients:); echo "$cl"
[ "$(field rebinds "$cl")" -ge 4 ] || fail "want at least 4 rebinds in 2 s"
[ "$(field rebind_errors "$cl")" = 0 ] || fail "rebind errors"
stop "$echo_pid" echo; cl=$(stats echo clients:); echo "echo server $cl"
[ "$(field seen "$cl")" -ge 5 ] || fail "upstream saw fewer than 5 source addresses"

echo "== --rebind closes the old socket: late replies to it are lost"
start slow "$FW" --listen 127.0.0.1:0 --echo --delay 150 --duration 30
start rb2 "$FW" --listen 127.0.0.1:0 --upstream "$ADDR" --rebind 0.05 --duration 30
line=$("$BLAST" rr --udp -c "$ADDR" --count 40 --interval 20 --wait 500 --duration 20)
echo "$line"
[ "$(field received "$line")" -le 10 ] ||
    fail "replies reached the client through a socket that was rebound 150 ms earlier"

echo "== --replay 500 from 3 other addresses"
start echo2 "$FW" --listen 127.0.0.1:0 --echo --duration 30
ECHO=$ADDR; echo_pid=$PID
start rp "$FW" --listen 127.0.0.1:0 --upstream "$ECHO" --replay 500 --replay-rate 5000 \
    --replay-socks 3 --duration 30
rp_pid=$PID
line=$("$BLAST" rr --udp -c "$ADDR" --count 50 --interval 10 --wait 300 --duration 20)
echo "$line"
[ "$(field received "$line")" = 50 ] || fail "the client lost replies"
[ "$(field bad "$line")" = 0 ] && [ "$(field dups "$line")" = 0 ] ||
    fail "replays leaked to the client"
for _ in $(seq 100); do
    kill -USR1 "$rp_pid"; sleep 0.05
    r=$(stats rp replay:)
    [ "$(field sent "$r")" = 500 ] && [ "$(field replay_replies "$r")" = 500 ] && break
done
stop "$rp_pid" rp; r=$(stats rp replay:); echo "$r"
[ "$(field sent "$r")" = 500 ] || fail "want 500 replays sent"
[ "$(field errors "$r")" = 0 ] || fail "replay send errors"
# the echo server answers every replay to the address it came from
[ "$(field replay_replies "$r")" = 500 ] || fail "want 500 replies to the replayer"
stop "$echo_pid" echo2; cl=$(stats echo2 clients:); echo "echo server $cl"
[ "$(field seen "$cl")" = 4 ] || fail "want 4 source addresses upstream (client + 3 replayers)"

echo "== --replay-age: nothing younger is replayed"
start echo3 "$FW" --listen 127.0.0.1:0 --echo --duration 30
start rp2 "$FW" --listen 127.0.0.1:0 --upstream "$ADDR" --replay 100 --replay-age 60000 \
    --duration 30
rp_pid=$PID
"$BLAST" rr --udp -c "$ADDR" --count 20 --interval 10 --wait 300 --duration 20 >/dev/null
stop "$rp_pid" rp2; r=$(stats rp2 replay:); echo "$r"
[ "$(field sent "$r")" = 0 ] || fail "replayed a datagram younger than --replay-age"

echo "== --kill-flows 0.5: a flow dies for good, a new source port works"
start echo4 "$FW" --listen 127.0.0.1:0 --echo --duration 30
start kf "$FW" --listen 127.0.0.1:0 --upstream "$ADDR" --kill-flows 0.5 --duration 30
kf_pid=$PID
line=$("$BLAST" rr --udp -c "$ADDR" --count 50 --interval 20 --wait 300 --duration 20)
echo "$line"
got=$(field received "$line")
[ "$got" -ge 15 ] && [ "$got" -le 35 ] || fail "want the replies of the first 0.5 s only"
# a new flow of 0.1 s: a kill every 0.5 s may still land in its first half, but not in three
# of them in a row
ok=0
for _ in 1 2 3; do
    line=$("$BLAST" rr --udp -c "$ADDR" --count 10 --interval 10 --wait 300 --duration 20)
    [ "$(field received "$line")" -ge 5 ] && { ok=1; break; }
done
[ $ok = 1 ] || fail "a new flow should work until the next kill: $line"
stop "$kf_pid" kf; cl=$(stats kf clients:); echo "$cl"
[ "$(field flows_killed "$cl")" -ge 1 ] && [ "$(field dead_drops "$cl")" -ge 10 ] ||
    fail "no flow killed"
echo "udpfw roaming modes: all checks passed"
