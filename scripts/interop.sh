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
FULL=${INTEROP_FULL:-"aes salsa20 none"}
BYTES=${INTEROP_BYTES:-131072}
METHODS="aes aes-128 aes-192 salsa20 blowfish twofish cast5 3des tea xtea xor sm4 none"

for b in kcptun-client kcptun-server python3; do
    command -v "$b" >/dev/null || { echo "$b not installed"; exit 77; }
done
for b in "$BIN/ktun-client" "$BIN/ktun-server"; do
    [ -x "$b" ] || { echo "missing $b (run make)"; exit 1; }
done

source scripts/interop-lib.sh
interop_targets

# one DIR METHOD DS PS COMP SMUX MODE: runs one combination; prints "ok ..." or "FAIL ...".
# DIR: "k2g" = ktun-client -> kcptun-server, "g2k" = kcptun-client -> ktun-server.
one() {
    local dir=$1 method=$2 ds=$3 ps=$4 comp=$5 smux=$6 mode=$7
    local tag="$dir $method fec=$ds/$ps comp=$comp smux=$smux mode=$mode"
    local id="${dir}_${method}_${ds}_${comp}_${smux}_${mode}"
    local common=(--key "interop-$method" --crypt "$method" --ds "$ds" --ps "$ps"
                  --smuxver "$smux" --mode "$mode")
    [ "$comp" = off ] && common+=(--nocomp)
    if [ "$dir" = k2g ]; then
        SRV=(kcptun-server); CLI=("$BIN/ktun-client")
    else
        SRV=("$BIN/ktun-server"); CLI=(kcptun-client)
    fi
    SRV+=("${common[@]}"); CLI+=("${common[@]}")
    CHECKS=("check --bytes $BYTES --streams 2 --mixed --no-halfclose --seed 3 --duration 20")
    CHECK_TIMEOUT=25 interop_pair "$id" "$tag" "$ECHO"
}

# interop_tag COMBO: the tag one() prints for COMBO.
interop_tag() {
    echo "$1 $2 fec=$3/$4 comp=$5 smux=$6 mode=$7"
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

interop_run interop one "${combos[@]}"
