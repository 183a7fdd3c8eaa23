# SPDX-License-Identifier: MIT
# Shared helpers for the end-to-end scripts that run ktun (sourced, not run): the binaries, then
# tests/e2e/proc.sh (temp dir, processes stopped by PID on every exit path, waits, free ports),
# then starting echo targets, servers, clients and pairs of them.
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
source tests/e2e/proc.sh

# start_echo NAME: starts the echo server; sets ECHO to its address.
start_echo() {
    start_listener "$1" python3 "$STREAMS" echo --listen 127.0.0.1:0 --duration 600
    ECHO=$ADDR
}

# with_fds N CMD...: runs CMD (in place of this shell) with at most N open descriptors.
with_fds() { ulimit -n "$1" && shift && exec "$@"; }

# start_server NAME PORT TARGET ARGS...; start_client NAME LPORT RPORT ARGS...
# FDS=N before either: that process runs with at most N open descriptors (ulimit -n).
start_server() {
    local name=$1 port=$2 target=$3; shift 3
    spawn "$name" ${FDS:+with_fds "$FDS"} "$SERVER" -l "127.0.0.1:$port" -t "$target" "$@"
    wait_log "$name" 'server: listening'
}
start_client() {
    local name=$1 lport=$2 rport=$3; shift 3
    spawn "$name" ${FDS:+with_fds "$FDS"} "$CLIENT" -l "127.0.0.1:$lport" -r "127.0.0.1:$rport" "$@"
    wait_log "$name" 'client: listening'
}

# start_pair SNAME CNAME TARGET ARGS...: a server (log SNAME) in front of TARGET and a client
# (log CNAME) to it, on free ports, both with ARGS; sets SP, CP (their ports), SPID and CPID.
start_pair() {
    local sname=$1 cname=$2 target=$3; shift 3
    SP=$(free_port); CP=$(free_port)
    start_server "$sname" "$SP" "$target" "$@"
    SPID=$LASTPID
    start_client "$cname" "$CP" "$SP" "$@"
    CPID=$LASTPID
}

# check_streams WHAT PORT SECONDS ARGS...: streams.py check through 127.0.0.1:PORT (ARGS: --bytes,
# --streams, ...) within SECONDS; prints its line (also left in OUT) and fails naming WHAT
# unless every stream came back intact.
check_streams() {
    local what=$1 port=$2 secs=$3 rc; shift 3
    OUT=$(timeout "$((secs + 10))" python3 "$STREAMS" check --connect "127.0.0.1:$port" \
          --duration "$secs" "$@" 2>&1)
    rc=$?
    echo "$OUT"
    [ $rc -eq 0 ] && grep -q 'failed=0' <<<"$OUT" || fail "$what (exit $rc)"
}

# check_refused WHAT PORT: a connection through 127.0.0.1:PORT must be ended by the tunnel
# without data (the target refuses); fails naming WHAT otherwise.
check_refused() {
    local rc
    OUT=$(timeout 30 python3 "$STREAMS" refused --connect "127.0.0.1:$2" --duration 20 2>&1)
    rc=$?
    echo "$OUT"
    [ $rc -eq 0 ] && grep -q 'closed' <<<"$OUT" || fail "$1 (exit $rc)"
}

# start_www NAME BYTES: an HTTP server (python3 -m http.server) on a free port serving
# /blob, BYTES random bytes; sets WP to its port and WANT to the blob's sha256.
start_www() {
    mkdir -p "$tmp/www"
    head -c "$2" /dev/urandom >"$tmp/www/blob"
    WANT=$(sha256sum <"$tmp/www/blob" | cut -d' ' -f1)
    WP=$(free_port)
    spawn "$1" python3 -m http.server "$WP" --bind 127.0.0.1 --directory "$tmp/www"
    wait_port t "$WP"
}

# need_private_dns IP: skips the script (77) unless a process can get a private mount
# namespace (for its own /etc/resolv.conf) and a name server can bind IP:53.
need_private_dns() {
    unshare -m true 2>/dev/null || { echo "no mount namespaces here: skipping"; exit 77; }
    python3 -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((sys.argv[1], 53))' "$1" 2>/dev/null ||
        { echo "cannot bind $1:53: skipping"; exit 77; }
}
