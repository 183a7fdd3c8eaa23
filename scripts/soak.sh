#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bounded soak: ktun-client -> udpfw (loss, delay, jitter) -> ktun-server -> echo, with rounds
# of concurrent streams opening, transferring (sha256-checked echo) and closing back to back
# for --minutes. RSS and open fds of both processes are sampled every --interval seconds into
# DIR/soak.csv, and after every round (1 s after it ends) the idle fd counts go to
# DIR/rounds.csv. The verdict compares the second half of the run after warm-up with the
# first half (peak RSS growth within max(1 MiB, 5%); peak idle fds must not grow), and the
# idle fd count after the run with the one after the first round (must be equal). Not part of
# `make test`.
#
#   scripts/soak.sh [--minutes N] [--streams K] [--bytes B] [--loss PCT] [--interval S]
#                   [--out DIR] [--crypt METHOD]
# Writes DIR/soak.csv (default build/soak) and prints the curve and the verdict. Exit 0 when
# every round was intact and nothing grew, 1 otherwise.
set -u
MINUTES=10 STREAMS_N=200 BYTES=65536 LOSS=2 INTERVAL=10 OUT= CRYPT=aes
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --streams) STREAMS_N=$2; shift 2 ;;
    --bytes) BYTES=$2; shift 2 ;;
    --loss) LOSS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --crypt) CRYPT=$2; shift 2 ;;
    -h|--help) sed -n '3,13p' "$0"; exit 0 ;;
    *) echo "soak: unknown option $1"; exit 2 ;;
    esac
done
source "$(dirname "$0")/../tests/e2e/lib.sh"
OUT=${OUT:-$BUILD/soak}
mkdir -p "$OUT"
CSV=$OUT/soak.csv
FW=$TOOLS/udpfw
[ -x "$FW" ] || fail "missing $FW (run make)"
ARGS=(--key soak --crypt "$CRYPT" --mode fast3 --quiet)

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# the echo target outlives the run (start_echo's stops after 600 s)
start_listener echo python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration $((MINUTES * 60 + 600))
ECHO=$ADDR
SP=$(free_port); CP=$(free_port)
start_listener relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$SP" --loss "$LOSS" \
    --delay 5 --jitter 2 --seed 5 --duration $((MINUTES * 60 + 120))
FP=$PORT
start_server server "$SP" "$ECHO" "${ARGS[@]}"
SPID=$LASTPID
start_client client "$CP" "$FP" "${ARGS[@]}"
CPID=$LASTPID
# one round first: the client makes its session (and its UDP socket) on the first stream
out=$(timeout 120 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes "$BYTES" \
      --streams "$STREAMS_N" --mixed --seed 0 --duration 110)
grep -q 'failed=0' <<<"$out" || fail "first round: $out"
sleep 1
idle_c0=$(fds "$CPID"); idle_s0=$(fds "$SPID")
echo "soak: $MINUTES min, rounds of $STREAMS_N streams x $BYTES bytes each way, loss $LOSS%," \
     "crypt $CRYPT; idle fds client $idle_c0 server $idle_s0"
RCSV=$OUT/rounds.csv
echo "round,t_s,intact,client_idle_fds,server_idle_fds" >"$RCSV"

# workload: rounds back to back until the deadline; one line per round in rounds.log
END=$(( $(date +%s) + MINUTES * 60 ))
T0=$(date +%s)
(
    r=0
    while [ "$(date +%s)" -lt "$END" ]; do
        r=$((r + 1))
        out=$(timeout 300 python3 "$STREAMS" check --connect "127.0.0.1:$CP" --bytes "$BYTES" \
              --streams "$STREAMS_N" --mixed --seed "$r" --duration 290 2>&1)
        echo "round $r: $out"
        sleep 1
        intact=0; grep -q 'failed=0' <<<"$out" && intact=1
        echo "$r,$(( $(date +%s) - T0 )),$intact,$(fds "$CPID"),$(fds "$SPID")" >>"$RCSV"
    done
) >"$tmp/rounds.log" 2>&1 &
WPID=$!
pids+=("$WPID")

echo "t_s,client_rss_kb,client_fds,server_rss_kb,server_fds,rounds_ok,rounds_failed" >"$CSV"
START=$(date +%s)
while kill -0 "$WPID" 2>/dev/null; do
    t=$(( $(date +%s) - START ))
    ok=$(grep -c 'failed=0' "$tmp/rounds.log")
    bad=$(grep -c '^round' "$tmp/rounds.log"); bad=$((bad - ok))
    kill -0 "$CPID" 2>/dev/null || fail "the client died"
    kill -0 "$SPID" 2>/dev/null || fail "the server died"
    line="$t,$(rss_kb "$CPID"),$(fds "$CPID"),$(rss_kb "$SPID"),$(fds "$SPID"),$ok,$bad"
    echo "$line" >>"$CSV"
    echo "soak: $line"
    sleep "$INTERVAL"
done
wait "$WPID"
sleep 5
idle_c1=$(fds "$CPID"); idle_s1=$(fds "$SPID")
rounds=$(grep -c '^round' "$tmp/rounds.log"); ok=$(grep -c 'failed=0' "$tmp/rounds.log")
grep -v 'failed=0' "$tmp/rounds.log" | head -n 5
kill -USR1 "$SPID" "$CPID"
wait_log client 'snmp: BytesSent='
grep 'snmp: BytesSent=' "$tmp/client.log" | tail -n 1 | tr ' ' '\n' \
    | grep '^BytesSent=\|^RetransSegs=\|^LostSegs=\|^FECRecovered=' | tr '\n' ' '; echo
stop_pid "$CPID"; crc=$?
stop_pid "$SPID"; src=$?

python3 - "$CSV" "$RCSV" "$rounds" "$ok" "$idle_c0" "$idle_c1" "$idle_s0" "$idle_s1" "$crc" "$src" <<'PY'
import csv, sys
path, rpath = sys.argv[1], sys.argv[2]
rounds, ok, c0, c1, s0, s1, crc, src = map(int, sys.argv[3:])
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(path))]
rrows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(rpath))]
verdict = []
if rounds == 0 or ok != rounds:
    verdict.append(f"{rounds - ok} of {rounds} rounds failed")
if c1 != c0 or s1 != s0:
    verdict.append(f"idle fds changed: client {c0}->{c1}, server {s0}->{s1}")
if crc or src:
    verdict.append(f"exit codes client {crc} server {src}")
warm = len(rows) // 5
post = rows[warm:]
if len(post) < 4:
    verdict.append("too few samples after warm-up")
else:
    half = len(post) // 2
    a, b = post[:half], post[half:]
    rpost = rrows[len(rrows) // 5:]
    ra_, rb_ = rpost[:len(rpost) // 2], rpost[len(rpost) // 2:]
    for who in ("client", "server"):
        ra, rb = max(r[who + "_rss_kb"] for r in a), max(r[who + "_rss_kb"] for r in b)
        fa = max((r[who + "_idle_fds"] for r in ra_), default=0)
        fb = max((r[who + "_idle_fds"] for r in rb_), default=0)
        grow = rb - ra
        print(f"soak: {who}: peak rss {ra} -> {rb} KiB (growth {grow} KiB),"
              f" peak idle fds {fa} -> {fb}")
        if grow > max(1024, ra // 20):
            verdict.append(f"{who} rss grew {grow} KiB after warm-up")
        if fb > fa:
            verdict.append(f"{who} idle fds grew {fa} -> {fb} after warm-up")
print(f"soak: {rounds} rounds, {ok} intact; idle fds client {c0}->{c1} server {s0}->{s1}")
print("soak: verdict: " + ("PASS (no growth after warm-up)" if not verdict
                           else "FAIL: " + "; ".join(verdict)))
sys.exit(1 if verdict else 0)
PY
rc=$?
echo "soak: samples in $CSV"
exit $rc
