#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measures the emulated link (scripts/linkem.sh) end to end and compares with what was asked:
#   RTT   UDP request/response probes with no loss or cap: p50 should be 2 x delay
#   loss  a bounded UDP probe burst with --loss: one-way loss = 1 - sqrt(received / sent)
#   rate  a bounded TCP transfer through --rate with a --queue-bdp queue: near the cap
#   jitter  UDP probes through --jitter 5 alone: round trips spread, within 2 x (delay +- 5)
#   jitter/reorder/dup  UDP probes through --jitter 5 --reorder 5 --dup 2: counts as expected
#   free  a bounded TCP transfer with no shaping at all: what linkem itself can carry
# Prints "bench: linkem.X VALUE UNIT" lines and a table of requested vs measured values; exits 1
# if a measurement is out of bounds, 77 when it cannot run here (not root, no tun).
#
#   scripts/linkem-validate.sh [--delay MS] [--loss PCT] [--rate MBIT] [--queue-bdp X] [--quick]
set -u
cd "$(dirname "$0")/.."

DELAY=25 LOSS=1 RATE=50 BDP=1 QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --delay) DELAY=$2; shift 2 ;;
    --loss) LOSS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --queue-bdp) BDP=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    *) sed -n '3,13s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done

BUILD=${BUILD:-build}
BLAST=$BUILD/tools/tcpblast
LINK=scripts/linkem.sh
export LINKEM_BIN=${LINKEM_BIN:-$BUILD/tools/linkem}
export LINKEM_MAX_SECONDS=300
ADDR_B=${LINKEM_ADDR_B:-10.199.0.2}

[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
for t in "$BLAST" "$LINKEM_BIN"; do
    [ -x "$t" ] || { echo "missing $t (make tools)"; exit 1; }
done

source tests/e2e/proc.sh
on_exit '$LINK down >/dev/null 2>&1'
server=

calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

failures=0
table=()
# The probe endpoints run SCHED_FIFO (as linkem does under linkem.sh), so that the RTT figures
# show the link rather than how late a busy scheduler wakes the endpoints up.
RT=()
command -v chrt >/dev/null && RT=(chrt -f 5)

# report NAME VALUE UNIT REQUESTED LO HI: prints the bench line, records the verdict.
report() {
    echo "bench: linkem.$1 $2 $3"
    local verdict=ok
    within "$2" "$5" "$6" || { verdict=FAIL; failures=$((failures + 1)); }
    table+=("$(printf '%-8s %-16s %-34s %-18s %s' "$1" "$2 $3" "$4" "[$5, $6]" "$verdict")")
}

# start_server CMD...: starts a tcpblast server in namespace B, waits for it to listen.
start_server() {
    spawn server $LINK b "${RT[@]}" "$BLAST" "$@"
    server=$LASTPID
    wait_log server '^listening'
}
stop_server() { stop_pid "$server"; server=; }

up() {
    echo "+ $LINK up $*"
    local out
    out=$($LINK up "$@") || { echo "$out"; exit 1; }
    head -1 <<<"$out"
}

echo "== RTT: delay $DELAY ms each way, nothing else"
up --delay "$DELAY"
start_server echo --udp -l "$ADDR_B:7100" -t 60
line=$($LINK a "${RT[@]}" "$BLAST" rr --udp -c "$ADDR_B:7100" --count 200 --interval 10 --wait 1000 -t 30)
echo "$line"
stop_server
want=$(calc "2 * $DELAY")
report rtt "$(field p50_ms "$line")" ms "$want ms (2 x delay)" "$want" "$(calc "$want + 3")"
echo "   rtt min $(field min_ms "$line") p99 $(field p99_ms "$line") max $(field max_ms "$line") ms"

echo "== loss: $LOSS % each way, delay $DELAY ms"
n=$([ $QUICK = 1 ] && echo 2000 || echo 5000)
up --delay "$DELAY" --loss "$LOSS" --seed "$RANDOM"
start_server echo --udp -l "$ADDR_B:7101" -t 60
line=$($LINK a "$BLAST" rr --udp -c "$ADDR_B:7101" --count "$n" --interval 1 --wait 1000 -t 60)
echo "$line"
stop_server
sent=$(field sent "$line"); got=$(field received "$line")
oneway=$(calc "100 * (1 - sqrt($got / $sent))")
# four standard deviations of the round-trip estimate, halved for one way, plus 0.1 point
p_rt=$(calc "1 - (1 - $LOSS / 100) ^ 2")
tol=$(calc "2 * 100 * sqrt($p_rt * (1 - $p_rt) / $sent) + 0.1")
report loss "$oneway" % "$LOSS % one way" "$(calc "$LOSS - $tol")" "$(calc "$LOSS + $tol")"
$LINK stats | grep '^ab:' | sed 's/^/   counters /'

echo "== jitter alone: --jitter 5, delay $DELAY ms"
up --delay "$DELAY" --jitter 5 --seed "$RANDOM"
start_server echo --udp -l "$ADDR_B:7105" -t 60
line=$($LINK a "${RT[@]}" "$BLAST" rr --udp -c "$ADDR_B:7105" --count 500 --interval 5 --wait 1000 -t 60)
echo "$line"
stop_server
# each way uniform in delay +-5 ms (order kept, so never below the floor and never above the
# ceiling plus the probe spacing): the round trip spreads over about 2 x 10 ms
report jitspread "$(calc "$(field p90_ms "$line") - $(field min_ms "$line")")" ms \
    "spread p90 - min of +-5 ms each way" 4 20
report jitp90 "$(field p90_ms "$line")" ms "<= 2 x (delay + 5) ms" \
    "$(calc "2 * ($DELAY - 5)")" "$(calc "2 * ($DELAY + 5) + 3")"

echo "== jitter, reordering, duplication: --jitter 5 --reorder 5 --dup 2, delay $DELAY ms"
up --delay "$DELAY" --jitter 5 --reorder 5 --reorder-gap 10 --dup 2 --seed "$RANDOM"
start_server echo --udp -l "$ADDR_B:7104" -t 60
line=$($LINK a "$BLAST" rr --udp -c "$ADDR_B:7104" --count 1000 --interval 2 --wait 1000 -t 60)
echo "$line"
stop_server
sent=$(field sent "$line")
# round trip: 1 - 0.95^2 = 9.75 % held back (each overtaken by about 5 probes), 1 - 0.98^2 =
# 3.96 % duplicated; jitter never goes below 2 x (delay - 5) ms
report reorder "$(calc "100 * $(field reordered "$line") / $sent")" % "9.75 % round trip" 5 15
report dup "$(calc "100 * $(field dups "$line") / $sent")" % "3.96 % round trip" 1.5 7
report jitmin "$(field min_ms "$line")" ms ">= $(calc "2 * ($DELAY - 5)") ms" \
    "$(calc "2 * ($DELAY - 5)")" "$(calc "2 * $DELAY")"

echo "== rate: ${RATE} Mbit/s cap, $BDP BDP queue, delay $DELAY ms"
secs=$([ $QUICK = 1 ] && echo 3 || echo 6)
bytes=$(calc "$RATE * 1e6 / 8 * $secs" | cut -d. -f1)
up --delay "$DELAY" --rate "${RATE}mbit" --queue-bdp "$BDP"
start_server sink -l "$ADDR_B:7102" --seed 4 -t 120
line=$($LINK a "$BLAST" send -c "$ADDR_B:7102" --seed 4 --bytes "$bytes" -t 60)
echo "$line"
stop_server
grep -q 'verify=ok' "$tmp/server.log" || { echo "sink did not verify"; failures=$((failures + 1)); }
# goodput ceiling: 1448 payload bytes per 1500-byte packet (TCP timestamps on)
ceiling=$(calc "$RATE * 1448 / 1500")
report rate "$(field mbit_s "$line")" Mbit/s "$RATE Mbit/s (goodput max $ceiling)" \
    "$(calc "0.8 * $ceiling")" "$RATE"
$LINK stats | grep '^ab:' | sed 's/^/   counters /'

echo "== free: no shaping, no delay"
bytes=$([ $QUICK = 1 ] && echo 100M || echo 400M)
up
start_server sink -l "$ADDR_B:7103" -t 120
line=$($LINK a "$BLAST" send -c "$ADDR_B:7103" --bytes "$bytes" -t 60)
echo "$line"
stop_server
report free "$(field mbit_s "$line")" Mbit/s "no cap" 100 100000

echo
printf '%-8s %-16s %-34s %-18s %s\n' what measured requested bounds verdict
printf '%s\n' "${table[@]}"
echo "linkem-validate: $failures failure(s)"
[ "$failures" -eq 0 ]
