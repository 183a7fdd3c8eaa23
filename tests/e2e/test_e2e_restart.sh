#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server restarts under a live client: new connections must work again once the client
# has noticed (kcptun semantics: the smux keepalive timeout of 30 s closes the stale session,
# so this takes 30 to 60 s; the next connection opens a fresh session with a new conv).
set -u
source "$(dirname "$0")/lib.sh"
LIMIT=${E2E_RESTART_LIMIT_S:-100}
ARGS=(--key restart --mode fast3 --keepalive 5)

start_echo echo
start_pair server client "$ECHO" "${ARGS[@]}"
echo "before restart:"
check_streams "tunnel before the restart" "$CP" 20 --bytes 1000000

echo "== restarting the server"
stop_pid "$SPID" || fail "server exit"
start_server server2 "$SP" "$ECHO" "${ARGS[@]}"
start=$(date +%s)
ok=0
while [ $(( $(date +%s) - start )) -lt "$LIMIT" ]; do
    out=$(timeout 10 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 \
          --duration 5 2>&1)
    if grep -q 'failed=0' <<<"$out"; then ok=1; break; fi
done
took=$(( $(date +%s) - start ))
[ $ok -eq 1 ] || fail "no working connection within $LIMIT s of the restart"
echo "recovered after $took s: $out"
grep -q 'sess: closed' "$tmp/client.log" || fail "the client did not close the stale session"
[ "$(grep -c 'sess: opened' "$tmp/client.log")" -ge 2 ] || fail "no new session"
stop_pid "$CPID" || fail "client exit"
echo "ok"
