#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idle resident set size of a ktun pair: starts `KTUN server` and `KTUN client` on loopback
# (--crypt aes, defaults otherwise), opens one stream through them so that the session
# exists, lets it go idle for 2 s, and prints VmRSS of each process as
#   bench: rss.idle.<NAME>.server N KB / bench: rss.idle.<NAME>.client N KB
#   scripts/rss-idle.sh NAME 'KTUN COMMAND'   (e.g. size.x86_64 build-size/bin/ktun, or a
#                                              qemu-user command line: then RSS includes qemu)
set -u
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: scripts/rss-idle.sh NAME 'KTUN COMMAND'" >&2; exit 2; }
NAME=$1 CMD=$2
source tests/e2e/ports.sh
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
python3 tests/e2e/streams.py echo --listen 127.0.0.1:0 --duration 120 >"$tmp/echo.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening' "$tmp/echo.log" && break; sleep 0.1; done
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")
SP=$(free_port); CP=$(free_port)
# shellcheck disable=SC2086
$CMD server -l 127.0.0.1:$SP -t "$ECHO" --key rss --crypt aes >"$tmp/s.log" 2>&1 &
spid=$!; pids+=($spid)
# shellcheck disable=SC2086
$CMD client -l 127.0.0.1:$CP -r 127.0.0.1:$SP --key rss --crypt aes >"$tmp/c.log" 2>&1 &
cpid=$!; pids+=($cpid)
for _ in $(seq 300); do grep -q 'listening' "$tmp/s.log" && grep -q 'listening' "$tmp/c.log" && break; sleep 0.1; done
timeout 60 python3 tests/e2e/streams.py check --connect "127.0.0.1:$CP" --bytes 65536 --duration 50 \
    | grep -q 'failed=0' || { echo "rss-idle: the tunnel does not work"; cat "$tmp"/*.log; exit 1; }
sleep 2
echo "bench: rss.idle.$NAME.server $(awk '/^VmRSS:/ {print $2}' /proc/$spid/status) KB"
echo "bench: rss.idle.$NAME.client $(awk '/^VmRSS:/ {print $2}' /proc/$cpid/status) KB"
