#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interoperability with Debian's Go kcptun on loopback: ktun-client -> kcptun-server and
# kcptun-client -> ktun-server, data checked by sha256 through an echo target both ways.
#
# Matrix: the full product of FEC (10/3, 0/0) x compression (on, off) x smux (1, 2) x mode
# (fast, fast3) for a few methods (INTEROP_FULL, default "aes salsa20 none"), in both
# directions; plus every one of the 13 kcptun methods in both directions with settings that
# rotate through the product. Combinations run in parallel (INTEROP_JOBS, default 6).
#
# Usage: scripts/interop.sh [--quick]   (--quick: only the every-method part)
# Environment: BUILD (build dir: binaries in bin/ for "build", else $BUILD/bin), INTEROP_JOBS,
# INTEROP_FULL, INTEROP_BYTES (per stream, default 131072), KEEP_TMP=1 keeps the logs.
# Prints one line per combination and a summary; exit 0 if all passed, 77 if kcptun is
# missing, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
if [ "$BUILD" = build ]; then BIN=bin; else BIN=$BUILD/bin; fi
JOBS=${INTEROP_JOBS:-6}
FULL=${INTEROP_FULL:-"aes salsa20 none"}
BYTES=${INTEROP_BYTES:-131072}
METHODS="aes aes-128 aes-192 salsa20 blowfish twofish cast5 3des tea xtea xor sm4 none"
STREAMS=tests/e2e/streams.py

for b in kcptun-client kcptun-server python3; do
    command -v "$b" >/dev/null || { echo "$b not installed"; exit 77; }
done
for b in "$BIN/ktun-client" "$BIN/ktun-server"; do
    [ -x "$b" ] || { echo "missing $b (run make)"; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP_TMP:-}" ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

source tests/e2e/ports.sh

# The shared echo target.
python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration 900 >"$tmp/echo.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    ECHO=$(sed -n 's/^listening //p' "$tmp/echo.out")
    [ -n "$ECHO" ] && break
    sleep 0.1
done
[ -n "$ECHO" ] || { echo "echo target did not start"; exit 1; }

# one DIR METHOD DS PS COMP SMUX MODE: runs one combination; prints "ok ..." or "FAIL ...".
# DIR: "k2g" = ktun-client -> kcptun-server, "g2k" = kcptun-client -> ktun-server.
one() {
    local dir=$1 method=$2 ds=$3 ps=$4 comp=$5 smux=$6 mode=$7
    local tag="$dir $method fec=$ds/$ps comp=$comp smux=$smux mode=$mode"
    local id="${dir}_${method}_${ds}_${comp}_${smux}_${mode}"
    local sp cp; sp=$(free_port); cp=$(free_port)
    local common=(--key "interop-$method" --crypt "$method" --ds "$ds" --ps "$ps"
                  --smuxver "$smux" --mode "$mode")
    [ "$comp" = off ] && common+=(--nocomp)
    local srv cli
    if [ "$dir" = k2g ]; then
        srv=(kcptun-server); cli=("$BIN/ktun-client")
    else
        srv=("$BIN/ktun-server"); cli=(kcptun-client)
    fi
    "${srv[@]}" -l "127.0.0.1:$sp" -t "$ECHO" "${common[@]}" >"$tmp/$id.server.log" 2>&1 &
    local spid=$!
    "${cli[@]}" -l "127.0.0.1:$cp" -r "127.0.0.1:$sp" "${common[@]}" \
        >"$tmp/$id.client.log" 2>&1 &
    local cpid=$!
    trap 'kill "$cpid" "$spid" 2>/dev/null' EXIT TERM
    # Wait until the client's TCP port listens and the server's UDP port is bound: under
    # sanitizers (and with key derivation) that can take a while; do not race the connect.
    local _w
    for _w in $(seq 150); do
        [ -n "$(ss -Hltn "sport = :$cp" 2>/dev/null)" ] &&
            [ -n "$(ss -Hlun "sport = :$sp" 2>/dev/null)" ] && break
        sleep 0.1
    done
    local out rc
    out=$(timeout 25 python3 "$STREAMS" check --connect "127.0.0.1:$cp" --bytes "$BYTES" \
          --streams 2 --mixed --no-halfclose --seed 3 --duration 20 2>&1)
    rc=$?
    kill "$cpid" "$spid" 2>/dev/null
    wait "$cpid" "$spid" 2>/dev/null
    if [ $rc -ne 0 ] && [ -z "${RETRIED:-}" ] && grep -q 'Connection refused' <<<"$out"; then
        # A port free_port picked was taken by another process before the program bound it
        # (its log then shows the bind error): try once more with fresh ports.
        RETRIED=1 one "$@"
        return
    fi
    if [ $rc -eq 0 ]; then
        echo "ok   $tag"
    else
        echo "FAIL $tag: $(tr '\n' ' ' <<<"$out")"
        echo "     logs: $tmp/$id.*.log"
    fi
}

combos=()
if [ "${1:-}" != --quick ]; then
    for m in $FULL; do
        for dir in k2g g2k; do
            for fec in "10 3" "0 0"; do
                for comp in on off; do
                    for smux in 1 2; do
                        for mode in fast fast3; do
                            combos+=("$dir $m $fec $comp $smux $mode")
                        done
                    done
                done
            done
        done
    done
fi
# Every method in both directions; the settings rotate with the method's index and differ
# between the two directions of one method.
i=0
fecs=("10 3" "0 0"); comps=(on off); smuxs=(1 2); modes=(fast fast3)
for m in $METHODS; do
    for d in 0 1; do
        dir=k2g; [ $d -eq 1 ] && dir=g2k
        combos+=("$dir $m ${fecs[$(((i + d) % 2))]} ${comps[$(((i / 2 + d) % 2))]} \
${smuxs[$(((i / 4 + d) % 2))]} ${modes[$(((i + i / 2 + d) % 2))]}")
    done
    i=$((i + 1))
done

start=$(date +%s)
results="$tmp/results"
: >"$results"
running=0
for c in "${combos[@]}"; do
    # shellcheck disable=SC2086
    one $c >>"$results" &
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
for c in "${combos[@]}"; do
    # shellcheck disable=SC2086
    set -- $c
    tag="$1 $2 fec=$3/$4 comp=$5 smux=$6 mode=$7"
    grep -qF -- " $tag" "$results" || echo "FAIL $tag: no verdict" | tee -a "$results"
done
pass=$(grep -c '^ok' "$results")
failn=$(grep -c '^FAIL' "$results")
echo "interop: $pass passed, $failn failed, ${#combos[@]} combinations, $(( $(date +%s) - start )) s"
[ "$failn" -eq 0 ] && [ "$pass" -eq "${#combos[@]}" ]
