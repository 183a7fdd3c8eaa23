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

echo "== Unix socket target; a missing path or an unresolvable host closes only the stream"
spawn uecho python3 "$STREAMS" echo --listen "$tmp/echo.sock" --duration 600
wait_log uecho '^listening '
SP4=$(free_port); CP4=$(free_port)
start_server server4 "$SP4" "$tmp/echo.sock" "${KEY[@]}"
start_client client4 "$CP4" "$SP4" "${KEY[@]}"
out=$(timeout 60 python3 "$STREAMS" check --connect "127.0.0.1:$CP4" --bytes 1000000 --duration 50)
echo "$out"
grep -q 'failed=0' <<<"$out" || fail "unix target"
SP5=$(free_port); CP5=$(free_port)
start_server server5 "$SP5" "$tmp/missing.sock" "${KEY[@]}"
start_client client5 "$CP5" "$SP5" "${KEY[@]}"
out=$(timeout 30 python3 "$STREAMS" refused --connect "127.0.0.1:$CP5" --duration 20)
grep -q 'closed' <<<"$out" || fail "missing unix target"
SP6=$(free_port); CP6=$(free_port)
start_server server6 "$SP6" "no-such-host.invalid:80" "${KEY[@]}"
start_client client6 "$CP6" "$SP6" "${KEY[@]}"
out=$(timeout 30 python3 "$STREAMS" refused --connect "127.0.0.1:$CP6" --duration 20)
grep -q 'closed' <<<"$out" || fail "unresolvable target"
grep -q 'sess: closed' "$tmp/client5.log" "$tmp/client6.log" && fail "a session died"

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

echo "== an idle tunnel sleeps"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
c0=$(cpu_ticks "$CPID"); s0=$(cpu_ticks "$SPID")
sleep 4
c1=$(cpu_ticks "$CPID"); s1=$(cpu_ticks "$SPID")
echo "CPU over 4 s idle: client $((c1 - c0)) ticks, server $((s1 - s0)) ticks"
[ $((c1 - c0)) -le 20 ] && [ $((s1 - s0)) -le 20 ] || fail "idle tunnel burns CPU"

echo "== xsalsa20-poly1305, --autoexpire 1 --scavengettl 6"
SP3=$(free_port); CP3=$(free_port)
SEC=(--key e2e-secure --crypt xsalsa20-poly1305)
start_server server3 "$SP3" "$ECHO" "${SEC[@]}"
# the expired session keeps serving its streams for --scavengettl: room for a loaded machine
start_client client3 "$CP3" "$SP3" "${SEC[@]}" --autoexpire 1 --scavengettl 6
out=$(timeout 60 python3 "$STREAMS" check --connect "127.0.0.1:$CP3" --bytes 4000000 \
      --streams 2 --duration 50)
echo "$out"
grep -q 'failed=0' <<<"$out" || fail "secure mode"
wait_log client3 'expired, closing it in' 50
out=$(timeout 60 python3 "$STREAMS" check --connect "127.0.0.1:$CP3" --bytes 100000 --duration 50)
grep -q 'failed=0' <<<"$out" || fail "secure mode after expiry"
wait_log client3 'closed .*(scavenged)' 150
[ "$(grep -c 'sess: opened' "$tmp/client3.log")" -eq 2 ] || fail "want a second session"
[ "$(grep -c 'sess: opened' "$tmp/server3.log")" -eq 2 ] || fail "server: want 2 sessions"

echo "== SIGTERM exits 0"
stop_pid "$CPID"; rc=$?
[ $rc -eq 0 ] || fail "client exit $rc"
stop_pid "$SPID"; rc=$?
[ $rc -eq 0 ] || fail "server exit $rc"
grep -q 'shutting down' "$tmp/server.log" || fail "server did not log its shutdown"
echo "ok"
