#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The client's dead-path rule (docs/roaming.md section 5) counts only silence that means
# something: (1) a connection that sends one message every 3 s is idle in between, and the
# silence before a message leaves is no sign of a dead path; (2) a client whose own process
# does not run for 2 s (stopped with SIGSTOP, as a heavily loaded host would leave it
# unscheduled) while its data waits for the server (itself stopped 0.3 s earlier, resumed
# 0.2 s before the client) finds the server's answers waiting in its socket when it runs
# again. Neither may replace the path ("new UDP socket"), and every message must come back.
source "$(dirname "$0")/lib.sh"
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }
start_listener echo "$BLAST" echo -l 127.0.0.1:0 --duration 120
ECHO=$ADDR
start_pair srv cli "$ECHO" --crypt xsalsa20-poly1305 --key roam-stall --mode fast3

echo "== idle between messages: one every 3 s"
line=$("$BLAST" rr -c "127.0.0.1:$CP" --count 5 --interval 3000 --size 64 --wait 5000 \
    --duration 30 2>&1)
echo "roam-stall: idle: $line"
[ "$(field received "$line")" = 5 ] || fail "messages lost between idle gaps"
n=$(grep -c 'new UDP socket' "$tmp/cli.log")
[ "$n" = 0 ] || fail "an idle path was replaced $n times"

echo "== the client's process stopped for 2 s, twice, with data outstanding"
"$BLAST" rr -c "127.0.0.1:$CP" --count 240 --interval 50 --size 64 --wait 8000 \
    --duration 40 >"$tmp/rr.out" 2>&1 &
rr=$!
pids+=("$rr")
for at in 2 4; do
    sleep "$at"
    kill -STOP "$SPID"
    sleep 0.3
    kill -STOP "$CPID"
    sleep 2
    kill -CONT "$SPID"
    sleep 0.2
    kill -CONT "$CPID"
done
wait "$rr"
line=$(cat "$tmp/rr.out")
echo "roam-stall: stopped: $line"
[ "$(field received "$line")" = 240 ] && [ "$(field bad "$line")" = 0 ] ||
    fail "messages lost or corrupted across the stops"
n=$(grep -c 'new UDP socket' "$tmp/cli.log")
[ "$n" = 0 ] || fail "the path was replaced $n times after the client's own stalls"
echo "roam-stall: all checks passed"
