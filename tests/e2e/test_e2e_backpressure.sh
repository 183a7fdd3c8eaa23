#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Back-pressure: a TCP end that stops reading must not grow ktun's memory without bound.
# (1) the target floods, the client application never reads; (2) the client application
# floods, the target never reads. Both processes' RSS must stay within a bound while the
# stall lasts, and the tunnel must still carry a fresh stream afterwards.
set -u
source "$(dirname "$0")/lib.sh"
HOLD=${E2E_HOLD_S:-6}
LIMIT_KB=${E2E_RSS_GROWTH_KB:-49152}
ARGS=(--key bp --crypt aes --mode fast3 --sndwnd 1024 --rcvwnd 1024 --quiet)

check_growth() { # NAME BASE NOW
    local growth=$(( $3 - $2 ))
    echo "$1: rss ${2} KiB -> ${3} KiB (growth ${growth} KiB)"
    [ "$growth" -le "$LIMIT_KB" ] || fail "$1 grew by $growth KiB (limit $LIMIT_KB)"
}

run_case() { # TITLE TARGET_MODE CLIENT_MODE
    echo "== $1"
    start_listener target python3 "$STREAMS" "$2" --listen 127.0.0.1:0 --duration 120
    local tpid=$LASTPID
    start_pair server client "$ADDR" "${ARGS[@]}"
    local spid=$SPID cpid=$CPID
    local cbase sbase; cbase=$(rss_kb "$cpid"); sbase=$(rss_kb "$spid")
    spawn app python3 "$STREAMS" "$3" --connect "127.0.0.1:$CP" --seconds "$HOLD" --duration 60
    local apid=$LASTPID cmax=0 smax=0
    for _ in $(seq $((HOLD * 5))); do
        sleep 0.2
        local c s; c=$(rss_kb "$cpid"); s=$(rss_kb "$spid")
        [ "$c" -gt "$cmax" ] && cmax=$c
        [ "$s" -gt "$smax" ] && smax=$s
    done
    wait "$apid" || fail "application $3 failed"
    cat "$tmp/app.log"
    check_growth client "$cbase" "$cmax"
    check_growth server "$sbase" "$smax"
    stop_pid "$cpid" || fail "client exit"
    stop_pid "$spid" || fail "server exit"
    stop_pid "$tpid"
}

run_case "target floods, client application never reads" flood hold
run_case "client application floods, target never reads" stall push
echo "ok"
