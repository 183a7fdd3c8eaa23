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
FAIL_PREFIX="rss-idle: "
source tests/e2e/proc.sh
start_listener echo python3 tests/e2e/streams.py echo --listen 127.0.0.1:0 --duration 120
ECHO=$ADDR
SP=$(free_port); CP=$(free_port)
# shellcheck disable=SC2086
spawn s $CMD server -l 127.0.0.1:$SP -t "$ECHO" --key rss --crypt aes
spid=$LASTPID
# shellcheck disable=SC2086
spawn c $CMD client -l 127.0.0.1:$CP -r 127.0.0.1:$SP --key rss --crypt aes
cpid=$LASTPID
wait_log s 'listening' 300
wait_log c 'listening' 300
timeout 60 python3 tests/e2e/streams.py check --connect "127.0.0.1:$CP" --bytes 65536 --duration 50 \
    | grep -q 'failed=0' || fail "the tunnel does not work"
sleep 2   # the measurement: RSS after 2 s of idling
echo "bench: rss.idle.$NAME.server $(rss_kb "$spid") KB"
echo "bench: rss.idle.$NAME.client $(rss_kb "$cpid") KB"
