# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by the interoperability matrices (scripts/interop.sh, scripts/interop-newest.sh;
# sourced, not run): tests/e2e/proc.sh (temp dir, cleanup), the echo and digest targets, one
# server/client pair checked through the tunnel, and the parallel runner with its summary.
#
# The sourcing script sets BIN (directory of ktun-client/ktun-server) first, and later calls
#   interop_targets                     starts the echo target (ECHO) and digest target (DIGEST)
#   interop_pair ID TAG TARGET          see below
#   interop_run NAME FUNC COMBO...      runs "FUNC COMBO" for every combo, INTEROP_JOBS at once
set -u
STREAMS=tests/e2e/streams.py
JOBS=${INTEROP_JOBS:-6}

source tests/e2e/proc.sh # temp dir, processes stopped and the temp dir removed at exit

# shellcheck disable=SC2034  # ECHO and DIGEST are for the sourcing script
interop_targets() {
    start_listener echo python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration 1800
    ECHO=$ADDR
    start_listener digest python3 "$STREAMS" digest --listen 127.0.0.1:0 --duration 1800
    DIGEST=$ADDR
}

# interop_pair ID TAG TARGET: starts "${SRV[@]}" (the server command, given -l and -t) and
# "${CLI[@]}" (the client command, given -l and -r) on fresh loopback ports, then runs each
# check in CHECKS (a streams.py argument string, "--connect ADDR" appended; "try ARGS": its
# failure is allowed) against the client's port, each bounded by CHECK_TIMEOUT seconds
# (default 30). Prints "ok   TAG" or
# "FAIL TAG: what the check said" and the logs' path.
interop_pair() {
    local id=$1 tag=$2 target=$3
    local sp cp; sp=$(free_port); cp=$(free_port)
    "${SRV[@]}" -l "127.0.0.1:$sp" -t "$target" >"$tmp/$id.server.log" 2>&1 &
    local spid=$!
    "${CLI[@]}" -l "127.0.0.1:$cp" -r "127.0.0.1:$sp" >"$tmp/$id.client.log" 2>&1 &
    local cpid=$!
    # shellcheck disable=SC2064
    trap "kill $cpid $spid 2>/dev/null" EXIT TERM
    # Wait until the client's TCP port listens and the server's UDP port is bound: under
    # sanitizers (and with key derivation) that can take a while; do not race the connect.
    local _w
    for _w in $(seq 150); do
        [ -n "$(ss -Hltn "sport = :$cp" 2>/dev/null)" ] &&
            [ -n "$(ss -Hlun "sport = :$sp" 2>/dev/null)" ] && break
        sleep 0.1
    done
    local out="" rc=0 c
    for c in "${CHECKS[@]}"; do
        if [ "${c%% *}" = try ]; then # a check whose failure is allowed: "try ARGS"
            # shellcheck disable=SC2086
            timeout "${CHECK_TIMEOUT:-30}" python3 "$STREAMS" ${c#try } \
                --connect "127.0.0.1:$cp" >/dev/null 2>&1
            continue
        fi
        # shellcheck disable=SC2086
        out=$(timeout "${CHECK_TIMEOUT:-30}" python3 "$STREAMS" $c \
              --connect "127.0.0.1:$cp" 2>&1)
        rc=$?
        [ $rc -eq 0 ] || break
    done
    kill "$cpid" "$spid" 2>/dev/null
    wait "$cpid" "$spid" 2>/dev/null
    trap - EXIT TERM # both are reaped: their PIDs may belong to others from now on
    if [ $rc -ne 0 ] && [ -z "${RETRIED:-}" ] && grep -q 'Connection refused' <<<"$out"; then
        # A port free_port picked was taken by another process before the program bound it
        # (its log then shows the bind error): try once more with fresh ports.
        RETRIED=1 interop_pair "$@"
        return
    fi
    if [ $rc -eq 0 ]; then
        echo "ok   $tag"
    else
        [ $rc -eq 124 ] && out="timeout after ${CHECK_TIMEOUT:-30} s; $out"
        echo "FAIL $tag: $(tr '\n' ' ' <<<"$out")"
        echo "     logs: $tmp/$id.*.log"
    fi
}

# interop_run NAME FUNC COMBO...: runs "FUNC COMBO" (word-split) for every combo, JOBS at a
# time; FUNC prints one "ok   TAG" / "FAIL TAG..." line, and "interop_tag COMBO" must print
# that TAG. Prints the sorted verdicts and "NAME: P passed, F failed, N combinations, S s";
# returns 0 if every combination passed.
interop_run() {
    local name=$1 func=$2; shift 2
    local start results running=0 c pass failn
    start=$(date +%s)
    results="$tmp/results"
    : >"$results"
    for c in "$@"; do
        # shellcheck disable=SC2086
        "$func" $c >>"$results" &
        pids+=($!)
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then
            wait -n
            running=$((running - 1))
        fi
    done
    while [ "$running" -gt 0 ]; do
        wait -n
        running=$((running - 1))
    done
    sort "$results"
    # A combination that printed no verdict at all counts as failed, by name.
    for c in "$@"; do
        # shellcheck disable=SC2086
        tag=$(interop_tag $c)
        grep -qF -- " $tag" "$results" || echo "FAIL $tag: no verdict" | tee -a "$results"
    done
    pass=$(grep -c '^ok' "$results")
    failn=$(grep -c '^FAIL' "$results")
    echo "$name: $pass passed, $failn failed, $# combinations, $(( $(date +%s) - start )) s"
    [ "$failn" -eq 0 ] && [ "$pass" -eq "$#" ]
}
