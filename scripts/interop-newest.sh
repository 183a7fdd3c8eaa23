#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interoperability with the newest kcptun (v20260208: kcp-go v5.6.66, smux v1.5.55, qpp
# v1.1.25) on loopback, both directions: ktun-client -> kcptun-server ("k2r") and
# kcptun-client -> ktun-server ("r2k"). docs/kcptun-newer.md says how to build that peer.
#
# Every combination runs an echo check (sha256 both ways; the client half-closes and must still
# get the whole echo back, except under QPP, whose kcptun stream wrapper cannot half-close) and
# a one-way check (an upload answered by its sha256, a seeded download), which catches a layer
# applied on one side only, as QPP with a different key or variant would be.
#
# Matrix (opt names the per-combination extra):
#  * every crypt method, aes-128-gcm and null included, both ways, with FEC, compression, smux
#    version and mode rotating through the product;
#  * FEC (10/3, 0/0) x compression x smux v1/v2, both ways, for aes, aes-128-gcm and null;
#  * QPP (the pad variant of qpp v1.1.23 and later, ktun's default) under aes, aes-128-gcm and
#    null, smux v1 and v2, and one --QPPCount 7;
#  * --framesize: 1000 and 65535 on either side against the other side's default;
#  * --closewait 2 on either server, and both servers' defaults (kcptun: 30 s; ktun: held until
#    the client has read everything, up to 30 s, smux v2 only), with a client that half-closes
#    first; --closewait 30 on both with smux v1; the other combinations run the ktun server
#    with --closewait 1 (see one());
#  * --mtu 1500 with aes-128-gcm and null, --ratelimit, kcptun-client --conn 2;
#  * stock defaults on both sides (no flags but the addresses); from a stock ktun client to a
#    stock kcptun server, a first connection made while the client's first session finds out
#    the server's smux version must go through too (it opens again on the next session).
#
# Usage: scripts/interop-newest.sh [--quick] [--ref-client PATH] [--ref-server PATH]
#   --quick: a subset (a few methods, QPP, smux v1/v2, closewait, stock defaults).
# Environment: KCPTUN_REF_CLIENT, KCPTUN_REF_SERVER (the reference binaries; default
# $KCPTUN_REF_DIR/kcptun-client and -server, KCPTUN_REF_DIR default /opt/ktun-ref), BUILD,
# INTEROP_JOBS (default 6), INTEROP_BYTES (per stream, default 262144), INTEROP_ONLY (an
# extended regular expression: only the combinations whose tag matches), KEEP_TMP=1.
# Exit 0 if all passed, 77 if the reference binaries are missing, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
if [ "$BUILD" = build ]; then BIN=bin; else BIN=$BUILD/bin; fi
REF_DIR=${KCPTUN_REF_DIR:-/opt/ktun-ref}
REF_CLIENT=${KCPTUN_REF_CLIENT:-$REF_DIR/kcptun-client}
REF_SERVER=${KCPTUN_REF_SERVER:-$REF_DIR/kcptun-server}
QUICK=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --ref-client) REF_CLIENT=$2; shift ;;
    --ref-server) REF_SERVER=$2; shift ;;
    *) echo "usage: $0 [--quick] [--ref-client PATH] [--ref-server PATH]"; exit 2 ;;
    esac
    shift
done
BYTES=${INTEROP_BYTES:-262144}
METHODS="aes aes-128 aes-128-gcm aes-192 salsa20 blowfish twofish cast5 3des tea xtea xor sm4
none null"

for b in "$REF_CLIENT" "$REF_SERVER"; do
    [ -x "$b" ] || { echo "reference kcptun binary $b missing (docs/kcptun-newer.md)"; exit 77; }
done
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
for b in "$BIN/ktun-client" "$BIN/ktun-server"; do
    [ -x "$b" ] || { echo "missing $b (run make)"; exit 1; }
done
# The reference must be the newest wire: it knows aes-128-gcm and defaults to smux v2.
"$REF_CLIENT" -h 2>&1 | grep -q 'aes-128-gcm' ||
    { echo "$REF_CLIENT is not a kcptun with aes-128-gcm"; exit 77; }

source scripts/interop-lib.sh
interop_targets

# interop_tag DIR METHOD DS PS COMP SMUX OPT: the tag one() prints.
interop_tag() {
    echo "$1 $2 fec=$3/$4 comp=$5 smux=$6 opt=$7"
}

# one DIR METHOD DS PS COMP SMUX OPT: one combination; prints "ok ..." or "FAIL ...".
one() {
    local dir=$1 method=$2 ds=$3 ps=$4 comp=$5 smux=$6 opt=$7
    local tag; tag=$(interop_tag "$@")
    local id="${dir}_${method}_${ds}_${comp}_${smux}_${opt}"
    # The client half-closes first in the echo check. A kcptun client on smux >= 1.5.54 then
    # drops what it has not read yet when the server's FIN arrives, which is why kcptun's
    # server holds its FIN 30 s (--closewait) and ktun's holds it until the client has read
    # everything, up to 30 s (a kcptun client reports that only every --streambuf/2 bytes).
    # Most combinations take 1 s on the ktun server (and 0 on kcptun's, whose ktun client
    # needs none) to stay quick; "cwdef" and "stock" keep both servers' defaults.
    local common=() srvx=() clix=() halfclose="" refsrv_cw=(--closewait 0) ktunsrv_cw=(--closewait 1)
    local echo_dur=20
    if [ "$opt" != stock ]; then
        common=(--key "newest-$method" --crypt "$method" --ds "$ds" --ps "$ps" --smuxver "$smux")
        [ "$comp" = off ] && common+=(--nocomp)
    fi
    case $opt in
    fast3) common+=(--mode fast3) ;;
    qpp) common+=(--QPP); halfclose=--no-halfclose ;;
    qpp7) common+=(--QPP --QPPCount 7); halfclose=--no-halfclose ;;
    fs1000s) srvx=(--framesize 1000) ;;
    fs1000c) clix=(--framesize 1000) ;;
    fs65535s) srvx=(--framesize 65535) ;;
    fs65535c) clix=(--framesize 65535) ;;
    cw2) refsrv_cw=(--closewait 2); ktunsrv_cw=(--closewait 2) ;;
    cwdef) refsrv_cw=(); ktunsrv_cw=(); echo_dur=50 ;;
    cw30) refsrv_cw=(); ktunsrv_cw=(--closewait 30); echo_dur=50 ;;
    mtu1500) common+=(--mtu 1500) ;;
    ratelimit) common+=(--ratelimit 4000000) ;;
    conn2) [ "$dir" = r2k ] && clix=(--conn 2) ;;
    stock) refsrv_cw=(); ktunsrv_cw=(); echo_dur=50 ;;
    esac
    if [ "$dir" = k2r ]; then
        SRV=("$REF_SERVER" "${common[@]}" "${refsrv_cw[@]}" "${srvx[@]}")
        CLI=("$BIN/ktun-client" "${common[@]}" "${clix[@]}")
    else
        SRV=("$BIN/ktun-server" "${common[@]}" "${ktunsrv_cw[@]}" "${srvx[@]}")
        CLI=("$REF_CLIENT" "${common[@]}" "${clix[@]}")
    fi
    # The echo check half-closes first, then expects the whole echo and the server's FIN.
    CHECKS=("check --bytes $BYTES --streams 2 --mixed $halfclose --seed 5 --digest-target --duration $echo_dur"
            "oneway --bytes $BYTES --streams 2 --seed 7 --duration 20")
    # A stock ktun client speaks smux v1 first; the stock kcptun server (v2) refuses that
    # session, and the client's next one speaks v2: the streams of the first open again there.
    # The client notices the refusal when a datagram of its own reaches the server after the
    # close: at once if one is on its way, else with its keepalive NOP (10 s).
    [ "$opt$dir" = stockk2r ] &&
        CHECKS=("check --bytes 1000 --no-halfclose --digest-target --duration 25" "${CHECKS[@]}")
    CHECK_TIMEOUT=$((echo_dur + 5)) interop_pair "$id" "$tag" "$DIGEST"
}

combos=()
add() { combos+=("$*"); }
fecs=("10 3" "0 0"); comps=(on off); smuxs=(2 1); modes=(- fast3)
if [ -z "$QUICK" ]; then
    # Every method both ways, the settings rotating with the method's index.
    i=0
    for m in $METHODS; do
        for d in 0 1; do
            dir=k2r; [ $d -eq 1 ] && dir=r2k
            add "$dir $m ${fecs[$(((i + d) % 2))]} ${comps[$(((i / 2 + d) % 2))]}" \
                "${smuxs[$(((i / 4 + d) % 2))]} ${modes[$(((i + i / 2 + d) % 2))]}"
        done
        i=$((i + 1))
    done
    for m in aes aes-128-gcm null; do
        for dir in k2r r2k; do
            for fec in "10 3" "0 0"; do
                for comp in on off; do
                    for smux in 2 1; do
                        add "$dir $m $fec $comp $smux -"
                    done
                done
            done
        done
    done
    for dir in k2r r2k; do
        for m in aes aes-128-gcm null; do
            for smux in 2 1; do add "$dir $m 10 3 on $smux qpp"; done
        done
        add "$dir aes-128-gcm 0 0 off 2 qpp7"
        for o in fs1000s fs1000c fs65535s fs65535c cw2 cwdef ratelimit conn2; do
            add "$dir aes 10 3 on 2 $o"
        done
        # smux v1 has no UPD: ktun's default cannot tell when the client has read everything,
        # and a kcptun v20260126+ client on v1 that half-closes needs --closewait 30.
        add "$dir aes 10 3 on 1 cw30"
        add "$dir aes-128-gcm 10 3 on 2 mtu1500"
        add "$dir null 10 3 off 2 mtu1500"
        add "$dir aes 10 3 on 2 stock"
    done
else
    for dir in k2r r2k; do
        add "$dir aes-128-gcm 10 3 on 2 -"
        add "$dir null 0 0 off 1 -"
        add "$dir aes 10 3 off 1 fast3"
        add "$dir salsa20 0 0 on 2 -"
        add "$dir aes-128-gcm 10 3 on 2 qpp"
        add "$dir aes 10 3 on 1 qpp"
        add "$dir aes 10 3 on 2 cw2"
        add "$dir aes 10 3 on 2 cwdef"
        add "$dir aes 10 3 on 2 stock"
    done
fi

if [ -n "${INTEROP_ONLY:-}" ]; then # a regular expression on the combinations' tags
    sel=()
    for c in "${combos[@]}"; do
        # shellcheck disable=SC2086
        interop_tag $c | grep -qE -- "$INTEROP_ONLY" && sel+=("$c")
    done
    combos=("${sel[@]}")
fi
interop_run interop-newest one "${combos[@]}"
