#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun-client -> ktun-server on loopback: 64 MB each way through an echo target (sha256 of
# the echo), 100 concurrent streams, half-close (every check stream shuts down its write side
# first, then reads the rest), a refusing target closing only its own stream, SIGUSR1
# counters, --snmplog, and a clean exit 0 on SIGTERM.
set -u
source "$(dirname "$0")/lib.sh"
BIG=${E2E_BIG_BYTES:-67108864}
KEY=(--key e2e-secret --crypt aes --mode fast3 --sndwnd 1024 --rcvwnd 1024)

start_echo echo
SP=$(free_port); CP=$(free_port)
start_server server "$SP" "$ECHO" "${KEY[@]}" --snmplog "$tmp/snmp-20060102.csv" --snmpperiod 1
SPID=$LASTPID
start_client client "$CP" "$SP" "${KEY[@]}" --conn 2 --quiet
CPID=$LASTPID

echo "== $BIG bytes each way, one stream"
out=$(timeout 120 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes "$BIG" --duration 110)
echo "$out"
grep -q 'failed=0' <<<"$out" || fail "bulk transfer"

echo "== 100 concurrent streams (compressible text, 256 KiB each way each)"
out=$(timeout 120 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 262144 \
      --streams 100 --text --seed 2 --duration 110)
echo "$out"
grep -q 'failed=0' <<<"$out" || fail "concurrent streams"

echo "== a refusing target closes only its stream"
DEAD=$(free_port)
SP2=$(free_port); CP2=$(free_port)
start_server server2 "$SP2" "127.0.0.1:$DEAD" "${KEY[@]}"
start_client client2 "$CP2" "$SP2" "${KEY[@]}"
out=$(timeout 30 python3 "$STREAMS" refused --connect "127.0.0.1:$CP2" --duration 20)
echo "$out"
grep -q 'closed' <<<"$out" || fail "refused target"
out=$(timeout 30 python3 "$STREAMS" refused --connect "127.0.0.1:$CP2" --duration 20)
grep -q 'closed' <<<"$out" || fail "refused target, second stream"
grep -q 'sess: closed' "$tmp/client2.log" && fail "the session died with the refused stream"
# the first tunnel is unaffected and still carries data
out=$(timeout 60 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 --streams 3)
grep -q 'failed=0' <<<"$out" || fail "tunnel after refused streams"

echo "== SIGUSR1 counters, snmp CSV"
kill -USR1 "$CPID"
wait_log client 'snmp: BytesSent='
line=$(grep 'snmp: BytesSent=' "$tmp/client.log" | tail -n 1)
echo "$line"
grep -q 'ActiveOpens=2 ' <<<"$line" || fail "client should have opened 2 sessions (--conn 2)"
csv=$(ls "$tmp"/snmp-*.csv 2>/dev/null | head -n 1)
[ -n "$csv" ] || fail "no snmp csv"
head -n 1 "$csv" | grep -q '^Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,' \
    || fail "csv header"
[ "$(head -n 1 "$csv" | tr ',' '\n' | wc -l)" -eq 25 ] || fail "csv columns"
[ "$(wc -l <"$csv")" -ge 2 ] || fail "csv rows"

echo "== SIGTERM exits 0"
stop_pid "$CPID"; rc=$?
[ $rc -eq 0 ] || fail "client exit $rc"
stop_pid "$SPID"; rc=$?
[ $rc -eq 0 ] || fail "server exit $rc"
grep -q 'shutting down' "$tmp/server.log" || fail "server did not log its shutdown"
echo "ok"
