#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Misconfiguration explained by the server's log: a client with another --crypt is named
# (the method its datagrams open with under the server's key), one with another --key is told
# apart; one line, within seconds, not one per datagram.
set -u
source "$(dirname "$0")/lib.sh"

# poke PORT: a TCP connection to the client that writes a little and waits, so the client
# keeps sending (and resending) datagrams.
poke() {
    timeout 8 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello" * 100)
time.sleep(6)' "$1" >/dev/null 2>&1 &
}

echo "== client --crypt aes-128-gcm, server --crypt aes"
SP=$(free_port); CP=$(free_port)
start_server s1 "$SP" 127.0.0.1:9 --key mm-key --crypt aes
start_client c1 "$CP" "$SP" --key mm-key --crypt aes-128-gcm
poke "$CP"
wait_log s1 'do not open with --crypt aes; they open with --crypt aes-128-gcm' 80
grep 'do not open' "$tmp/s1.log"

echo "== client --key other"
SP=$(free_port); CP=$(free_port)
start_server s2 "$SP" 127.0.0.1:9 --key mm-key --crypt salsa20
start_client c2 "$CP" "$SP" --key other-key --crypt salsa20
poke "$CP"
wait_log s2 'different --key' 80
grep 'different --key' "$tmp/s2.log"
sleep 3
[ "$(grep -c 'different --key' "$tmp/s2.log")" -eq 1 ] || fail "more than one line in 10 s"
echo "ok"
