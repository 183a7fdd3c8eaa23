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
    start_listener relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$sp" $2 --seed 11 \
        --stats "$tmp/relay.stats" --duration 300
    local rpid=$LASTPID
    fp=$PORT
    # shellcheck disable=SC2086
    start_server server "$sp" "$ECHO" --key lossy --mode fast3 --quiet $3
    local spid=$LASTPID
    # shellcheck disable=SC2086
    start_client client "$cp" "$fp" --key lossy --mode fast3 --quiet $3
    local cpid=$LASTPID
    check_streams "$1: bulk" "$cp" 140 --bytes "$BYTES"
    check_streams "$1: 20 streams" "$cp" 140 --bytes 65536 --streams 20 --mixed --seed 4
    kill -USR1 "$cpid"
    wait_log client 'snmp: BytesSent='
    local snmp; snmp=$(grep 'snmp: BytesSent=' "$tmp/client.log" | tail -n 1)
    grep -o ' RetransSegs=[0-9]*\| FECRecovered=[0-9]*' <<<"$snmp"
    stop_pid "$cpid" || fail "client exit"
    stop_pid "$spid" || fail "server exit"
    stop_pid "$rpid"
    cat "$tmp/relay.stats" 2>/dev/null
    # the transfers above prove something only if the relay did impair them and the tunnel
    # had to repair: loss, duplicates and reordering in both directions, and the client
    # retransmitted or recovered by FEC
    local d k v st
    for d in up down; do
        st=$(grep "^$d:" "$tmp/relay.stats") || fail "$1: no relay counters for $d"
        for k in lost dups reordered; do
            v=$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<"$st")
            [ "${v:-0}" -gt 0 ] || fail "$1: relay $d: $k=${v:-?}, the impairment was not applied"
        done
    done
    [ $(( $(snmp_value RetransSegs "$snmp") + $(snmp_value FECRecovered "$snmp") )) -gt 0 ] ||
        fail "$1: neither retransmissions nor FEC recoveries on a lossy path"
}

# snmp_value NAME LINE: the counter NAME of an "snmp:" log line (0 if absent).
snmp_value() {
    local v; v=$(sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"); echo "${v:-0}"
}

run_case "5% loss, 10 ms delay, 2 ms jitter, 2% reorder, 1% duplication, FEC 10/3" \
    "--loss 5 --delay 10 --jitter 2 --reorder 2 --dup 1" "--ds 10 --ps 3"
run_case "10% loss, 5 ms delay, 5% reorder, 2% duplication, no FEC, smux v2, no compression" \
    "--loss 10 --delay 5 --reorder 5 --dup 2" "--ds 0 --ps 0 --sndwnd 512 --rcvwnd 512 --smuxver 2 --nocomp"
echo "ok"
