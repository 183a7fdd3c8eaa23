#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun-client -> udpfw (loss, delay, jitter, reorder, duplication) -> ktun-server: bulk and
# concurrent streams must arrive intact (sha256 of the echo), with FEC 10/3 and without FEC.
set -u
source "$(dirname "$0")/lib.sh"
FW=$TOOLS/udpfw
[ -x "$FW" ] || fail "missing $FW (run make tools)"
BYTES=${E2E_LOSSY_BYTES:-16777216}

start_echo echo
run_case() { # TITLE FW-ARGS TUNNEL-ARGS
    echo "== $1"
    local sp cp fp
    sp=$(free_port); cp=$(free_port)
    # shellcheck disable=SC2086
    spawn relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" $2 --seed 11 \
        --stats "$tmp/relay.stats" --duration 300
    local rpid=$LASTPID
    wait_log relay '^listening '
    fp=$(sed -n 's/^listening 127.0.0.1://p' "$tmp/relay.log")
    # shellcheck disable=SC2086
    start_server server "$sp" "$ECHO" --key lossy --mode fast3 --quiet $3
    local spid=$LASTPID
    # shellcheck disable=SC2086
    start_client client "$cp" "$fp" --key lossy --mode fast3 --quiet $3
    local cpid=$LASTPID
    local out
    out=$(timeout 150 python3 "$STREAMS" check --connect "127.0.0.1:$cp" --bytes "$BYTES" \
          --duration 140)
    echo "$out"
    grep -q 'failed=0' <<<"$out" || fail "$1: bulk"
    out=$(timeout 150 python3 "$STREAMS" check --connect "127.0.0.1:$cp" --bytes 65536 \
          --streams 20 --mixed --seed 4 --duration 140)
    echo "$out"
    grep -q 'failed=0' <<<"$out" || fail "$1: 20 streams"
    kill -USR1 "$cpid"
    wait_log client 'snmp: BytesSent='
    grep 'snmp: BytesSent=' "$tmp/client.log" | tail -n 1 | grep -o ' RetransSegs=[0-9]*\| FECRecovered=[0-9]*'
    stop_pid "$cpid" || fail "client exit"
    stop_pid "$spid" || fail "server exit"
    kill "$rpid"; wait "$rpid" 2>/dev/null
    cat "$tmp/relay.stats" 2>/dev/null
}

run_case "5% loss, 10 ms delay, 2 ms jitter, 2% reorder, 1% duplication, FEC 10/3" \
    "--loss 5 --delay 10 --jitter 2 --reorder 2 --dup 1" "--ds 10 --ps 3"
run_case "10% loss, 5 ms delay, 5% reorder, 2% duplication, no FEC, smux v2, no compression" \
    "--loss 10 --delay 5 --reorder 5 --dup 2" "--ds 0 --ps 0 --sndwnd 512 --rcvwnd 512 --smuxver 2 --nocomp"
echo "ok"
