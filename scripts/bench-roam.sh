#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Port hopping measured (docs/roaming.md section 6): runs tests/e2e/test_roam_hop.sh with
# --hop HOP (default 5) over 16 ports for DURATION seconds (default 60), ROUNDS times (default
# 1), and prints its figures as bench lines:
#   bench: roam.hop.msgs.max_ms        longest round trip of a 64-byte message every 50 ms
#   bench: roam.hop.msgs.lost / .dups  messages lost / duplicated across the hops
#   bench: roam.hop.bulk.mbit_s        goodput of a bulk transfer across hops (sha256-checked)
#   bench: roam.nohop.bulk.mbit_s      the same transfer without hopping
#   bench: roam.hop.bulk.ratio         the two goodputs' ratio (the target: at least 0.9)
# The bulk transfers are capped at RATE bytes/s (default 6250000, 50 Mbit/s; 0: uncapped, then
# loopback goodput is bound by the CPU and only an idle machine gives comparable figures).
#   scripts/bench-roam.sh [DURATION [HOP [ROUNDS [RATE]]]]   (after make)
set -u
cd "$(dirname "$0")/.."
DUR=${1:-60} HOP=${2:-5} ROUNDS=${3:-1} RATE=${4:-6250000}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
for r in $(seq "$ROUNDS"); do
    out=$(ROAM_HOP_DURATION=$DUR ROAM_HOP_S=$HOP ROAM_HOP_RATE=$RATE bash tests/e2e/test_roam_hop.sh 2>&1)
    rc=$?
    [ $rc = 0 ] || { echo "$out" | tail -20; echo "bench-roam: round $r failed ($rc)" >&2; exit 1; }
    msgs=$(grep 'roam-hop: messages:' <<<"$out")
    hop=$(grep 'roam-hop: bulk with hops' <<<"$out")
    nohop=$(grep 'roam-hop: bulk without:' <<<"$out")
    ratio=$(sed -n 's/.*goodput with\/without hopping: //p' <<<"$out")
    echo "# round $r: hop $HOP s, $DUR s, rate cap $RATE B/s, hops during messages: $(field hops "$msgs")"
    echo "bench: roam.hop.msgs.max_ms $(field max_ms "$msgs") ms"
    echo "bench: roam.hop.msgs.p99_ms $(field p99_ms "$msgs") ms"
    echo "bench: roam.hop.msgs.lost $(field lost "$msgs") msgs"
    echo "bench: roam.hop.msgs.dups $(field dups "$msgs") msgs"
    echo "bench: roam.hop.bulk.mbit_s $(field mbit_s "$hop") Mbit/s"
    echo "bench: roam.nohop.bulk.mbit_s $(field mbit_s "$nohop") Mbit/s"
    echo "bench: roam.hop.bulk.ratio $ratio ratio"
done
