# SPDX-License-Identifier: MIT
# Shared helpers for the end-to-end scripts (sourced, not run): binaries, temp dir, process
# cleanup by PID, free ports, waiting for "listening" log lines.
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
BUILD=${BUILD:-build}
if [ "$BUILD" = build ]; then BIN=bin; else BIN=$BUILD/bin; fi
CLIENT=$BIN/ktun-client
SERVER=$BIN/ktun-server
TOOLS=$BUILD/tools
STREAMS=tests/e2e/streams.py
# Sanitizer builds: ASan's quarantine keeps freed blocks (256 MB by default) out of reuse, so
# RSS would track allocation churn rather than what ktun holds; the memory bounds the tests
# check need freed memory reused, as in the normal build.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=8}
for b in "$CLIENT" "$SERVER"; do
    [ -x "$b" ] || { echo "missing $b (run make)"; exit 1; }
done
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP_TMP:-}" ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
    exit 1
}

source tests/e2e/ports.sh

# spawn NAME CMD...: runs CMD in the background with output in $tmp/NAME.log; sets LASTPID.
spawn() {
    local name=$1; shift
    "$@" >"$tmp/$name.log" 2>&1 &
    LASTPID=$!
    pids+=("$LASTPID")
}

# wait_log NAME PATTERN [TENTHS]: waits until $tmp/NAME.log matches PATTERN (default 10 s).
wait_log() {
    local n=${3:-100}
    for _ in $(seq "$n"); do
        grep -q -- "$2" "$tmp/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$1: no '$2' in its log"
}

# wait_until TENTHS CMD...: runs CMD every 0.1 s until it succeeds (returns 0) or TENTHS tries
# failed (returns 1). For waits whose outcome a later check judges.
wait_until() {
    local n=$1; shift
    for _ in $(seq "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# start_echo NAME: starts the echo server; sets ECHO to its address.
start_echo() {
    spawn "$1" python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration 600
    wait_log "$1" '^listening '
    ECHO=$(sed -n 's/^listening //p' "$tmp/$1.log")
}

# start_server NAME PORT TARGET ARGS...; start_client NAME LPORT RPORT ARGS...
start_server() {
    local name=$1 port=$2 target=$3; shift 3
    spawn "$name" "$SERVER" -l "127.0.0.1:$port" -t "$target" "$@"
    wait_log "$name" 'server: listening'
}
start_client() {
    local name=$1 lport=$2 rport=$3; shift 3
    spawn "$name" "$CLIENT" -l "127.0.0.1:$lport" -r "127.0.0.1:$rport" "$@"
    wait_log "$name" 'client: listening'
}

# rss_kb PID: resident set size in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# stop_pid PID: SIGTERM, wait up to 10 s for a clean exit; returns its exit status.
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    wait "$1"
}
