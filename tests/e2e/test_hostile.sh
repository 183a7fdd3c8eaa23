#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hostile traffic: udpflood sends a bounded flood (random bytes, truncated and oversized
# datagrams, replays of the real client's datagrams from other source ports, and well formed
# datagrams sealed under the wrong key) at a running ktun-server while a real ktun-client
# moves data through it (relayed, and captured, by udpflood itself).
#   kcptun mode (aes, CRC32 only): replays pass the CRC, but they carry the live session's conv,
#     so they are roaming candidates (docs/roaming.md), older than what the client sent since:
#     they must open no session and move nothing; the session is reclaimed afterwards.
#   secure mode (xsalsa20-poly1305): the flood must not open a single session.
# Both: no crash, the transfer comes back intact (sha256), server memory stays bounded.
# Knobs: HOSTILE_COUNT (datagrams per mode, default 200000), HOSTILE_RATE (per second),
# HOSTILE_BYTES (per direction), HOSTILE_RSS_KB (server growth limit), HOSTILE_RECLAIM_S.
set -u
source "$(dirname "$0")/lib.sh"
FLOOD=$TOOLS/udpflood
[ -x "$FLOOD" ] || fail "missing $FLOOD (run make tools)"
COUNT=${HOSTILE_COUNT:-200000}
RATE=${HOSTILE_RATE:-25000}
BYTES=${HOSTILE_BYTES:-16777216}
RSS_LIMIT_KB=${HOSTILE_RSS_KB:-65536}
RECLAIM_S=${HOSTILE_RECLAIM_S:-75}
MAXS=8
SOURCES=48

start_echo echo

# snmp_field NAME FIELD: the FIELD value of the last "snmp:" line of NAME's log.
snmp_field() {
    grep 'snmp: BytesSent=' "$tmp/$1.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# snmp_now NAME PID: asks PID for its counters (SIGUSR1) and waits for a new line.
snmp_now() {
    local before; before=$(grep -c 'snmp: BytesSent=' "$tmp/$1.log")
    kill -USR1 "$2"
    wait_until 50 snmp_lines_above "$1" "$before" || fail "$1: no snmp line after SIGUSR1"
}
snmp_lines_above() { [ "$(grep -c 'snmp: BytesSent=' "$tmp/$1.log")" -gt "$2" ]; }

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# run_mode NAME CRYPT: one flood against one server; sets SPID_<NAME> for the reclaim check.
run_mode() {
    local name=$1 crypt=$2
    local args=(--key hostile-key --crypt "$crypt" --mode fast3 --sndwnd 512 --rcvwnd 512
                --quiet)
    local sp rp cp; sp=$(free_port); rp=$(free_port); cp=$(free_port)
    echo "== $name: crypt $crypt, $COUNT datagrams at $RATE/s from $SOURCES ports"
    start_server "srv-$name" "$sp" "$ECHO" "${args[@]}" --maxsessions "$MAXS" --keepalive 2
    local spid=$LASTPID
    spawn "flood-$name" "$FLOOD" --target "127.0.0.1:$sp" --relay "127.0.0.1:$rp" \
        --count "$COUNT" --rate "$RATE" --sources "$SOURCES" --crypt "$crypt" \
        --key not-the-hostile-key --seed 7 --flood-delay 1.5 --duration 120
    local fpid=$LASTPID
    wait_log "flood-$name" 'relaying'
    start_client "cli-$name" "$cp" "$rp" "${args[@]}"
    local cpid=$LASTPID
    local base; base=$(rss_kb "$spid")
    # transfers until the flood is over (at least one), each checked by sha256
    local n=0
    while :; do
        n=$((n + 1))
        check_streams "$name: transfer $n" "$cp" 90 --bytes "$BYTES" --streams 2 --seed "$n"
        kill -0 "$spid" 2>/dev/null || fail "$name: server died"
        grep -q 'flood done' "$tmp/flood-$name.log" && break
        [ "$n" -lt 20 ] || fail "$name: the flood did not finish"
    done
    echo "$name: $n transfers of $BYTES bytes each way (2 streams), all intact"
    stop_pid "$fpid"
    grep '^udpflood:' "$tmp/flood-$name.log" | tail -n 1
    local line; line=$(grep '^udpflood: sent=' "$tmp/flood-$name.log")
    local sent; sent=$(sed 's/.* sent=\([0-9]*\).*/\1/' <<<"$line")
    [ "$sent" -ge "$COUNT" ] || fail "$name: flood sent only $sent"
    kill -0 "$spid" 2>/dev/null || fail "$name: server died"
    snmp_now "srv-$name" "$spid"
    local opens maxc cur csum inerrs
    opens=$(snmp_field "srv-$name" PassiveOpens); maxc=$(snmp_field "srv-$name" MaxConn)
    cur=$(snmp_field "srv-$name" CurrEstab); csum=$(snmp_field "srv-$name" InCsumErrors)
    inerrs=$(snmp_field "srv-$name" InErrs)
    local hwm; hwm=$(hwm_kb "$spid")
    local replies; replies=$(sed 's/.* flood_replies=\([0-9]*\).*/\1/' <<<"$line")
    echo "$name: server PassiveOpens=$opens MaxConn=$maxc CurrEstab=$cur InCsumErrors=$csum" \
         "InErrs=$inerrs; rss $base KiB -> peak $hwm KiB; replies to flood ports: $replies"
    if [ "$BUILD" = build ]; then
        [ $((hwm - base)) -le "$RSS_LIMIT_KB" ] || fail "$name: server grew by $((hwm - base)) KiB"
    else
        echo "$name: sanitizer build: RSS bound not checked (ASan quarantine and shadow)"
    fi
    [ "$csum" -gt 0 ] || fail "$name: the flood never reached the crypt"
    if [ "$crypt" = xsalsa20-poly1305 ]; then
        [ "$opens" -eq 1 ] || fail "$name: the flood opened $((opens - 1)) sessions"
        [ "$replies" -eq 0 ] || fail "$name: the server answered flood ports"
    else
        [ "$maxc" -le "$MAXS" ] || fail "$name: $maxc sessions, above --maxsessions $MAXS"
        # the client's sessions, opened on the server only once each (stray traffic of other
        # programs on this loopback may open sessions of its own: not counted)
        local conv n
        for conv in $(sed -n 's/.*sess: opened conv \([0-9]*\) .*/\1/p' "$tmp/cli-$name.log"); do
            n=$(grep -c "sess: opened conv $conv " "$tmp/srv-$name.log")
            [ "$n" -eq 1 ] || fail "$name: replays of conv $conv opened $((n - 1)) more sessions"
        done
        grep -q 'peer moved' "$tmp/srv-$name.log" && fail "$name: a replay moved the session"
    fi
    stop_pid "$cpid" || fail "$name: client exit"
    eval "SPID_$name=$spid"
}

run_mode kcptun aes
run_mode secure xsalsa20-poly1305

echo "== kcptun: the idle session is reclaimed (keepalive timeout)"
reclaimed=0
for _ in $(seq "$RECLAIM_S"); do
    snmp_now srv-kcptun "$SPID_kcptun"
    cur=$(snmp_field srv-kcptun CurrEstab)
    [ "$cur" -eq 0 ] && { reclaimed=1; break; }
    sleep 1
done
[ "$reclaimed" -eq 1 ] || fail "kcptun: $cur sessions still alive after ${RECLAIM_S} s"
echo "kcptun: all sessions reclaimed"
grep -c 'sess: closed' "$tmp/srv-kcptun.log" | sed 's/^/kcptun: sessions closed: /'
for n in kcptun secure; do
    eval "p=\$SPID_$n"
    stop_pid "$p"; rc=$?
    [ $rc -eq 0 ] || fail "$n: server exit $rc"
done
echo "ok"
