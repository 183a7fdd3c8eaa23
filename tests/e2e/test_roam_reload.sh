#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGHUP reload of -c on loopback: a wire change (FEC) on both ends applies to new sessions
# while a live connection finishes on the old one; a broken file, or a change only a restart
# can make, is logged and the running configuration stays; --keepalive applies to a live
# session at once (its keepalive datagrams counted before and after).
source "$(dirname "$0")/lib.sh"
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }

spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration 60
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")
sp=$(free_port); cp=$(free_port)

# json FILE FEC_DS FEC_PS EXTRA: writes a -c file (written then renamed, as an editor does)
json() {
    printf '{"key": "reload", "crypt": "aes", "mode": "fast3", "datashard": %s, "parityshard": %s%s}\n' \
        "$2" "$3" "$4" >"$1.new" && mv "$1.new" "$1"
}
json "$tmp/srv.json" 10 3 ""
json "$tmp/cli.json" 10 3 ""
start_server srv "$sp" "$ECHO" -c "$tmp/srv.json"
srv=$LASTPID
start_client cli "$cp" "$sp" -c "$tmp/cli.json"
cli=$LASTPID

echo "== a live connection, then FEC 10/3 -> 4/2 on both ends"
"$BLAST" rr -c "127.0.0.1:$cp" --count 100 --interval 50 --size 64 --wait 3000 --duration 30 \
    >"$tmp/old.rr" &
old=$!
pids+=("$old")
sleep 1
json "$tmp/srv.json" 4 2 ""
json "$tmp/cli.json" 4 2 ', "autoexpire": 1'
kill -HUP "$srv" "$cli"
wait_log srv 'reload: configuration read again'
wait_log cli 'reload: configuration read again'
# the next connection retires the old session (--autoexpire 1) and opens a new one
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 20 --interval 10 --size 64 --wait 3000 --duration 20)
echo "new connection: $line"
[ "$(field received "$line")" = 20 ] || fail "no traffic on a session with the new FEC"
[ "$(grep -c 'sess: opened' "$tmp/cli.log")" -ge 2 ] || fail "no new session after the reload"
grep -qi 'mismatch' "$tmp/srv.log" "$tmp/cli.log" && fail "the two ends disagree on FEC"
wait "$old"
line=$(cat "$tmp/old.rr"); echo "old connection: $line"
[ "$(field received "$line")" = 100 ] && [ "$(field dups "$line")" = 0 ] ||
    fail "the live connection suffered from the reload"

echo "== a broken file: logged, the running configuration stays"
echo '{"key": "reload", "datashard": ' >"$tmp/cli.json"
kill -HUP "$cli"
wait_log cli 'the running configuration stays'
kill -0 "$cli" || fail "the client died of a broken file"
json "$tmp/cli.json" 4 2 ', "autoexpire": 1, "localaddr": "127.0.0.1:1"'
kill -HUP "$cli"
wait_log cli '--localaddr cannot change without a restart'
line=$("$BLAST" rr -c "127.0.0.1:$cp" --count 5 --interval 10 --size 64 --wait 3000 --duration 20)
[ "$(field received "$line")" = 5 ] || fail "the client stopped working after a refused reload"

echo "== --keepalive 10 -> 1 under a live idle connection: it applies to the live session"
# out_pkts NAME PID: sets PKTS to the process's OutPkts, from the SNMP line SIGUSR1 logs
snmp_lines() { grep -c 'snmp: ' "$tmp/$1.log"; }
more_snmp() { [ "$(snmp_lines "$1")" -gt "$2" ]; }
out_pkts() {
    local before; before=$(snmp_lines "$1")
    kill -USR1 "$2"
    wait_until 50 more_snmp "$1" "$before" || fail "$1: no snmp line"
    PKTS=$(grep 'snmp: ' "$tmp/$1.log" | tail -1 | sed -n 's/.* OutPkts=\([0-9]*\).*/\1/p')
}
sp=$(free_port); cp=$(free_port)
kjson() {
    printf '{"key": "reload", "crypt": "aes", "mode": "fast3", "keepalive": %s}\n' "$2" \
        >"$1.new" && mv "$1.new" "$1"
}
kjson "$tmp/ksrv.json" 10
kjson "$tmp/kcli.json" 10
start_server ksrv "$sp" "$ECHO" -c "$tmp/ksrv.json"
start_client kcli "$cp" "$sp" -c "$tmp/kcli.json"
kcli=$LASTPID
# one connection, one message, then idle while held open
python3 - "$cp" >"$tmp/hold.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x" * 64)
got = b""
while len(got) < 64:
    got += s.recv(64)
print("echoed", flush=True)
time.sleep(40)
PY
hold=$!
pids+=("$hold")
wait_log hold '^echoed'
sleep 1
out_pkts kcli "$kcli"; a=$PKTS; sleep 5; out_pkts kcli "$kcli"; b=$PKTS
kjson "$tmp/kcli.json" 1
kill -HUP "$kcli"
wait_log kcli 'keepalive 1 s.*for 1 live session'
out_pkts kcli "$kcli"; c=$PKTS; sleep 5; out_pkts kcli "$kcli"; d=$PKTS
echo "roam-reload: datagrams out of an idle session in 5 s: keepalive 10: $((b - a)), keepalive 1: $((d - c))"
[ $((b - a)) -le 2 ] || fail "an idle session with keepalive 10 sent $((b - a)) datagrams in 5 s"
[ $((d - c)) -ge 4 ] || fail "keepalive 1 did not reach the live session ($((d - c)) datagrams in 5 s)"
echo "reload: all checks passed"
