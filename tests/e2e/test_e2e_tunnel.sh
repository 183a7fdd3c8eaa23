#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun-client -> ktun-server on loopback: 64 MB each way through an echo target (sha256 of
# the echo), 100 concurrent streams, half-close (every check stream shuts down its write side
# first, then reads the rest), a refusing target closing only its own stream, SIGUSR1
# counters, --snmplog, an idle tunnel costing (almost) no CPU, the authenticated crypt mode
# with --autoexpire/--scavengettl rotation, and a clean exit 0 on SIGTERM.
set -u
source "$(dirname "$0")/lib.sh"
BIG=${E2E_BIG_BYTES:-67108864}
KEY=(--key e2e-secret --crypt aes --mode fast3 --sndwnd 1024 --rcvwnd 1024)

start_echo echo
SP=$(free_port); CP=$(free_port)
start_server server "$SP" "$ECHO" "${KEY[@]}" --snmplog "$tmp/snmp-20060102.csv" --snmpperiod 1
MAIN_SPID=$LASTPID
start_client client "$CP" "$SP" "${KEY[@]}" --conn 2 --quiet
MAIN_CPID=$LASTPID
MAIN_CP=$CP

echo "== $BIG bytes each way, one stream"
check_streams "bulk transfer" "$CP" 110 --bytes "$BIG"

echo "== 100 concurrent streams (compressible text, 256 KiB each way each)"
check_streams "concurrent streams" "$CP" 110 --bytes 262144 --streams 100 --text --seed 2

echo "== a refusing target closes only its stream"
DEAD=$(free_port)
start_pair server2 client2 "127.0.0.1:$DEAD" "${KEY[@]}"
check_refused "refused target" "$CP"
check_refused "refused target, second stream" "$CP"
grep -q 'sess: closed' "$tmp/client2.log" && fail "the session died with the refused stream"
[ "$(grep -c 'sess: opened' "$tmp/client2.log")" -eq 1 ] ||
    fail "the refused streams cost the session: it was opened again"
# the first tunnel is unaffected and still carries data
check_streams "tunnel after refused streams" "$MAIN_CP" 50 --bytes 100000 --streams 3

echo "== Unix socket target; a missing path or an unresolvable host closes only the stream"
spawn uecho python3 "$STREAMS" echo --listen "$tmp/echo.sock" --duration 600
wait_log uecho '^listening '
start_pair server4 client4 "$tmp/echo.sock" "${KEY[@]}"
check_streams "unix target" "$CP" 50 --bytes 1000000
start_pair server5 client5 "$tmp/missing.sock" "${KEY[@]}"
check_refused "missing unix target" "$CP"
start_pair server6 client6 "no-such-host.invalid:80" "${KEY[@]}"
check_refused "unresolvable target" "$CP"
grep -q 'sess: closed' "$tmp/client5.log" "$tmp/client6.log" && fail "a session died"

echo "== SIGUSR1 counters, snmp CSV"
kill -USR1 "$MAIN_CPID"
wait_log client 'snmp: BytesSent='
line=$(grep 'snmp: BytesSent=' "$tmp/client.log" | tail -n 1)
echo "$line"
grep -q 'ActiveOpens=2 ' <<<"$line" || fail "client should have opened 2 sessions (--conn 2)"
csv=$(ls "$tmp"/snmp-*.csv 2>/dev/null | head -n 1)
[ -n "$csv" ] || fail "no snmp csv"
head -n 1 "$csv" | grep -q '^Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,' \
    || fail "csv header"
# kcptun's 25 columns first, then ktun's datagram counters
[ "$(head -n 1 "$csv" | cut -d, -f22-29)" = \
  "FECParityShards,FECErrs,FECRecovered,FECShortShards,DgramIn,DgramOut,DgramDropped,DgramRecovered" ] ||
    fail "csv columns"
[ "$(wc -l <"$csv")" -ge 2 ] || fail "csv rows"

echo "== an idle tunnel sleeps"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
c0=$(cpu_ticks "$MAIN_CPID"); s0=$(cpu_ticks "$MAIN_SPID")
sleep 4
c1=$(cpu_ticks "$MAIN_CPID"); s1=$(cpu_ticks "$MAIN_SPID")
echo "CPU over 4 s idle: client $((c1 - c0)) ticks, server $((s1 - s0)) ticks"
[ $((c1 - c0)) -le 20 ] && [ $((s1 - s0)) -le 20 ] || fail "idle tunnel burns CPU"

echo "== xsalsa20-poly1305, --autoexpire 1 --scavengettl 6"
SP3=$(free_port); CP3=$(free_port)
SEC=(--key e2e-secure --crypt xsalsa20-poly1305)
start_server server3 "$SP3" "$ECHO" "${SEC[@]}"
# the expired session keeps serving its streams for --scavengettl: room for a loaded machine
start_client client3 "$CP3" "$SP3" "${SEC[@]}" --autoexpire 1 --scavengettl 6
check_streams "secure mode" "$CP3" 50 --bytes 4000000 --streams 2
wait_log client3 'expired, closing it in' 50
check_streams "secure mode after expiry" "$CP3" 50 --bytes 100000
wait_log client3 'closed .*(scavenged)' 150
[ "$(grep -c 'sess: opened' "$tmp/client3.log")" -eq 2 ] || fail "want a second session"
[ "$(grep -c 'sess: opened' "$tmp/server3.log")" -eq 2 ] || fail "server: want 2 sessions"

echo "== SIGTERM exits 0"
stop_pid "$MAIN_CPID"; rc=$?
[ $rc -eq 0 ] || fail "client exit $rc"
stop_pid "$MAIN_SPID"; rc=$?
[ $rc -eq 0 ] || fail "server exit $rc"
grep -q 'shutting down' "$tmp/server.log" || fail "server did not log its shutdown"
echo "ok"
