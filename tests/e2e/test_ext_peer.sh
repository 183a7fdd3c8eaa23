#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun extensions reach ktun peers only (docs/extensions.md): a stock client offers nothing
# (the ktun server never sees an offer); --peer ktun and the secure mode exchange
# capabilities with a ktun server; an offer that does reach Debian's Go kcptun server (forced
# with --peer ktun) leaves it unharmed (the stream goes through) and the client gives up.
set -u
source "$(dirname "$0")/lib.sh"
start_echo echo

echo "== stock client -> ktun server: no capability exchange"
SP=$(free_port); CP=$(free_port)
start_server s1 "$SP" "$ECHO" --key ext-key
start_client c1 "$CP" "$SP" --key ext-key
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 >"$tmp/k1.log" 2>&1 ||
    fail "stream through the stock pair"
sleep 1
grep -q 'ktun peer' "$tmp/s1.log" "$tmp/c1.log" && fail "a stock client exchanged capabilities"

echo "== --peer ktun client -> ktun server: the exchange is done before the first connection"
SP=$(free_port); CP=$(free_port)
start_server s2 "$SP" "$ECHO" --key ext-key
start_client c2 "$CP" "$SP" --key ext-key --peer ktun
wait_log s2 'ktun peer, extensions 0x3'
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 >"$tmp/k2.log" 2>&1 ||
    fail "stream with --peer ktun"
wait_log c2 'ktun peer, extensions 0x3'
wait_log s2 'ktun peer, extensions 0x3'

echo "== secure mode: capabilities without --peer"
SP=$(free_port); CP=$(free_port)
start_server s3 "$SP" "$ECHO" --key ext-key --crypt xsalsa20-poly1305
start_client c3 "$CP" "$SP" --key ext-key --crypt xsalsa20-poly1305
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 >"$tmp/k3.log" 2>&1 ||
    fail "stream in the secure mode"
wait_log c3 'ktun peer, extensions 0x3'

echo "== --peer kcptun with the secure mode offers nothing"
SP=$(free_port); CP=$(free_port)
start_server s4 "$SP" "$ECHO" --key ext-key --crypt xsalsa20-poly1305
start_client c4 "$CP" "$SP" --key ext-key --crypt xsalsa20-poly1305 --peer kcptun
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 100000 >"$tmp/k4.log" 2>&1 ||
    fail "stream with --peer kcptun"
sleep 1
grep -q 'ktun peer' "$tmp/s4.log" && fail "--peer kcptun sent an offer"

if ! command -v kcptun-server >/dev/null; then
    echo "kcptun-server not installed: skipping the Go half"
    echo "ok"
    exit 0
fi
echo "== forced offer to Debian's kcptun-server: unharmed, the client gives up"
SP=$(free_port); CP=$(free_port)
spawn g1 kcptun-server -l "127.0.0.1:$SP" -t "$ECHO" --key ext-key
wait_until 50 grep -q 'listening on' "$tmp/g1.log" || sleep 1
start_client c5 "$CP" "$SP" --key ext-key --peer ktun
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 1000000 --streams 3 --no-halfclose \
    >"$tmp/k5.log" 2>&1 || fail "stream through kcptun-server after an offer"
wait_log c5 'no answer to the ktun capability offer' 300
grep -q 'ktun peer' "$tmp/c5.log" && fail "kcptun taken for ktun"
python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes 1000000 --no-halfclose \
    >"$tmp/k6.log" 2>&1 || fail "stream through kcptun-server after giving up"
echo "ok"
