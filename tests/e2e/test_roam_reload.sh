#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGHUP reload of -c on loopback: a wire change (FEC) on both ends applies to new sessions
# while a live connection finishes on the old one; a broken file, or a change only a restart
# can make, is logged and the running configuration stays.
source "$(dirname "$0")/lib.sh"
BLAST=$TOOLS/tcpblast
[ -x "$BLAST" ] || { echo "missing $BLAST (run make tools)"; exit 1; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

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
echo "reload: all checks passed"
