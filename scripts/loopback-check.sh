#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Loopback transfer through a tunnel made of the given client and server programs: an echo
# target, the server, the client, then streams of random bytes each way, checked by sha256.
# Used on installed files (the .deb), cross builds under qemu-user and kcptun peers.
#
#   scripts/loopback-check.sh [--bytes N] [--streams N] [--timeout S] \
#       --client 'CMD...' --server 'CMD...' [-- TUNNEL ARGS...]
#
# CMD is split at spaces (e.g. 'qemu-arm -L /sysroot build-armhf/bin/ktun client');
# TUNNEL ARGS (default: --key loopback-check --crypt aes --mode fast3) go to both ends.
# Exit 0 when every stream came back intact, 1 otherwise (the logs are printed).
set -u
cd "$(dirname "$0")/.."
BYTES=4194304 STREAMS_N=4 TIMEOUT=60 CLIENT_CMD= SERVER_CMD=
while [ $# -gt 0 ]; do
    case $1 in
    --bytes) BYTES=$2; shift 2 ;;
    --streams) STREAMS_N=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --client) CLIENT_CMD=$2; shift 2 ;;
    --server) SERVER_CMD=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "loopback-check: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$CLIENT_CMD" ] && [ -n "$SERVER_CMD" ] || { echo "loopback-check: --client and --server needed" >&2; exit 2; }
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--key loopback-check --crypt aes --mode fast3)
STREAMS=tests/e2e/streams.py
FAIL_PREFIX="loopback-check: "
source tests/e2e/proc.sh
WAIT=300   # tenths of a second for each program to start: emulated programs start slowly

start_listener echo python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration "$((TIMEOUT + 30))"
ECHO=$ADDR
SP=$(free_port); CP=$(free_port)
# shellcheck disable=SC2086
spawn server $SERVER_CMD -l "127.0.0.1:$SP" -t "$ECHO" "${ARGS[@]}"
# kcptun logs "listening on:", ktun "server: listening"
wait_log server 'listening' $WAIT
# shellcheck disable=SC2086
spawn client $CLIENT_CMD -l "127.0.0.1:$CP" -r "127.0.0.1:$SP" "${ARGS[@]}"
wait_log client 'listening' $WAIT
out=$(timeout "$((TIMEOUT + 10))" python3 "$STREAMS" check --connect "127.0.0.1:$CP" \
      --bytes "$BYTES" --streams "$STREAMS_N" --no-halfclose --duration "$TIMEOUT")
echo "loopback-check: $out"
grep -q 'failed=0' <<<"$out" || fail "transfer"
echo "loopback-check: ok ($STREAMS_N streams x $BYTES bytes each way)"
