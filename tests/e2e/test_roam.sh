#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sessions that follow their peer (docs/roaming.md), end to end on loopback. A relay
# (udpfw --rebind) gives the client a new source port every few seconds, as a NAT that lost
# its mapping does, while a TCP connection through the tunnel carries a 64-byte message every
# 50 ms to an echo target. Three runs in parallel: ktun both ends in the secure mode and with
# aes, and Debian's kcptun client against ktun-server (when kcptun is installed). Every
# message must come back exactly once, and the longest round trip, which is the wait for
# the first echo after a rebind, is printed as "roam: ... max_ms=" (the targets of
# docs/roaming.md are checked with a margin for loaded machines). Then a hostile replayer
# replays captured client datagrams from other addresses: no datagram may go to it.
# Environment: ROAM_SECONDS (length of each run, default 25), ROAM_REBIND (default 5),
# ROAM_REPLAYS (default 100000).
source "$(dirname "$0")/lib.sh"
FW=$TOOLS/udpfw
BLAST=$TOOLS/tcpblast
for t in "$FW" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done
SECS=${ROAM_SECONDS:-25}
REBIND=${ROAM_REBIND:-5}
REPLAYS=${ROAM_REPLAYS:-100000}
COUNT=$((SECS * 20))


spawn echo "$BLAST" echo -l 127.0.0.1:0 --duration $((SECS + 40))
wait_log echo '^listening '
ECHO=$(sed -n 's/^listening //p' "$tmp/echo.log")

# relay NAME UPSTREAM ARGS...: starts udpfw; sets RELAY (its address) and RELAYPID.
relay() {
    local name=$1 up=$2; shift 2
    spawn "$name" "$FW" --listen 127.0.0.1:0 --upstream "$up" --duration $((SECS + 40)) "$@"
    RELAYPID=$LASTPID
    wait_log "$name" '^listening '
    RELAY=$(sed -n 's/^listening //p' "$tmp/$name.log")
}

# run NAME CLIENT METHOD: server, rebinding relay, client, then the message stream in the
# background (its summary goes to $tmp/NAME.rr).
run() {
    local name=$1 client=$2 method=$3
    local sp cp; sp=$(free_port); cp=$(free_port)
    local common=(--crypt "$method" --key "roam-$name" --mode fast3)
    start_server "$name-server" "$sp" "$ECHO" "${common[@]}"
    relay "$name-relay" "127.0.0.1:$sp" --rebind "$REBIND"
    if [ "$client" = kcptun ]; then
        spawn "$name-client" kcptun-client -l "127.0.0.1:$cp" -r "$RELAY" "${common[@]}"
        for _ in $(seq 100); do
            [ -n "$(ss -Hltn "sport = :$cp" 2>/dev/null)" ] && break
            sleep 0.1
        done
    else
        spawn "$name-client" "$CLIENT" -l "127.0.0.1:$cp" -r "$RELAY" "${common[@]}"
        wait_log "$name-client" 'client: listening'
    fi
    "$BLAST" rr -c "127.0.0.1:$cp" --count "$COUNT" --interval 50 --size 64 --wait 5000 \
        --duration $((SECS + 30)) >"$tmp/$name.rr" 2>&1 &
    pids+=($!)
    RRPIDS+=($!)
}

RRPIDS=()
runs=(secure:ktun:xsalsa20-poly1305 aes:ktun:aes)
if command -v kcptun-client >/dev/null; then
    runs+=(kcptun:kcptun:aes)
else
    echo "kcptun-client not installed: the kcptun run is skipped"
fi
echo "== $SECS s sessions through relays that rebind every $REBIND s (${#runs[@]} in parallel)"
for r in "${runs[@]}"; do
    IFS=: read -r name client method <<<"$r"
    run "$name" "$client" "$method"
done
for p in "${RRPIDS[@]}"; do wait "$p"; done
bad=0
for r in "${runs[@]}"; do
    IFS=: read -r name client method <<<"$r"
    line=$(grep '^rr:' "$tmp/$name.rr")
    echo "roam: run=$name client=$client crypt=$method rebind_s=$REBIND $line"
    [ -n "$line" ] || { cat "$tmp/$name.rr"; bad=1; continue; }
    # a kcptun client cannot know its path changed: 2 s; ktun on both ends: 1 s; both with a
    # margin for loaded machines and sanitizers
    limit=2500; [ "$client" = kcptun ] && limit=4000
    if [ "$(field received "$line")" != "$COUNT" ] || [ "$(field dups "$line")" != 0 ] ||
        [ "$(field bad "$line")" != 0 ] || ! le "$(field max_ms "$line")" "$limit"; then
        echo "FAIL $name: want $COUNT echoes, no duplicate, max_ms <= $limit"
        bad=1
    fi
done
[ $bad = 0 ] || fail "a session did not survive its path changes"

echo "== hostile replayer: $REPLAYS captured datagrams from 8 other addresses (aes)"
sp=$(free_port); cp=$(free_port)
common=(--crypt aes --key roam-replay --mode fast3)
start_server replay-server "$sp" "$ECHO" "${common[@]}"
relay replay-relay "127.0.0.1:$sp" --replay "$REPLAYS" --replay-rate 20000 --replay-socks 8 \
    --replay-age 1000 --stats "$tmp/replay.stats"
rp_pid=$RELAYPID
start_client replay-client "$cp" "${RELAY##*:}" "${common[@]}"
n=$(( (REPLAYS / 20000 + 3) * 20 ))
# rr COUNT: COUNT messages through the client, every one echoed once, or the test fails.
rr() {
    line=$("$BLAST" rr -c "127.0.0.1:$cp" --count "$1" --interval 50 --size 64 --wait 5000 \
        --duration $(($1 / 20 + 30)))
    [ "$(field received "$line")" = "$1" ] && [ "$(field dups "$line")" = 0 ] ||
        fail "the real client's session suffered from the replays: $line"
}
# replay_stats: the replayer's counters line (udpfw writes them on SIGUSR1).
replay_stats() {
    rm -f "$tmp/replay.stats"
    kill -USR1 "$rp_pid"
    for _ in $(seq 50); do grep -q '^replay:' "$tmp/replay.stats" 2>/dev/null && break; sleep 0.1; done
    rp=$(grep '^replay:' "$tmp/replay.stats")
}
rr "$n"
# A loaded machine may keep the replayer behind its rate: the client goes on talking, a second
# at a time, until every replay was sent.
replay_stats
for _ in $(seq 30); do
    [ "$(field sent "$rp")" = "$REPLAYS" ] && break
    rr 20
    replay_stats
done
echo "roam: replayer $rp; client $line"
[ "$(field sent "$rp")" = "$REPLAYS" ] || fail "the replayer sent $(field sent "$rp") of $REPLAYS"
[ "$(field replay_replies "$rp")" = 0 ] || fail "the server answered a replayer"
echo "roam: all checks passed"
