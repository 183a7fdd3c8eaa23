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
source tests/e2e/ports.sh
STREAMS=tests/e2e/streams.py

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "loopback-check: FAIL: $*"
    for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
    exit 1
}
spawn() {
    local name=$1; shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pids+=("$!")
}
# wait_log NAME PATTERN: up to 30 s (emulated programs start slowly).
wait_log() {
    for _ in $(seq 300); do
        grep -q -- "$2" "$tmp/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$1: no '$2' in its log"
}

spawn echo python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration "$((TIMEOUT + 30))"
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")
SP=$(free_port); CP=$(free_port)
# shellcheck disable=SC2086
spawn server $SERVER_CMD -l "127.0.0.1:$SP" -t "$ECHO" "${ARGS[@]}"
# kcptun logs "listening on:", ktun "server: listening"
wait_log server 'listening'
# shellcheck disable=SC2086
spawn client $CLIENT_CMD -l "127.0.0.1:$CP" -r "127.0.0.1:$SP" "${ARGS[@]}"
wait_log client 'listening'
out=$(timeout "$((TIMEOUT + 10))" python3 "$STREAMS" check --connect "127.0.0.1:$CP" \
      --bytes "$BYTES" --streams "$STREAMS_N" --no-halfclose --duration "$TIMEOUT")
echo "loopback-check: $out"
grep -q 'failed=0' <<<"$out" || fail "transfer"
echo "loopback-check: ok ($STREAMS_N streams x $BYTES bytes each way)"
