#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Resource limits, each refused with a log line and recovered from:
#   --maxsessions  the server refuses sessions beyond the cap (client --conn above it, and
#                  stock kcptun clients): counted as sessions, the refused connections closed
#                  at once; the default is sized from the descriptor limit
#                  (case maxsessions_kcptun)
#   --maxstreams   the server refuses streams beyond the cap; the others keep working
#   ulimit -n 64   server: target dials fail with a log line, later streams work again
#                  client: accepts fail with a log line (no busy loop), later ones work again
#   --bufbudget    a target that never reads and a client application that never reads,
#                  on many streams over several sessions: RSS stays under the budget
# Arguments select cases (maxsessions maxstreams fd_server fd_client budget); default: all.
set -u
[ -f "$(dirname "$0")/lib.sh" ] || { echo "tests/e2e/lib.sh not there yet"; exit 77; }
source "$(dirname "$0")/lib.sh"
ARGS=(--key limits --crypt aes --mode fast3 --sndwnd 512 --rcvwnd 512)

# many ADDR N HOLD_S [TIMEOUT_S]: N concurrent connections; each sends 2000 bytes and waits
# for the echo (TIMEOUT_S, default 10); all are held open HOLD_S seconds. Prints
# "many: ok=A closed=B timeout=C".
many() {
    python3 - "$@" <<'PY'
import socket, sys, threading, time
addr, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
tmo = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
host, _, port = addr.rpartition(":")
res, socks, lock = [], [], threading.Lock()
msg = bytes(range(250)) * 8
def one():
    r = "timeout"
    try:
        s = socket.create_connection((host, int(port)), timeout=tmo)
        with lock:
            socks.append(s)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = s.recv(65536)
            if not b:
                break
            got += b
        r = "ok" if got == msg else "closed"
    except (ConnectionResetError, BrokenPipeError, ConnectionRefusedError):
        r = "closed"
    except OSError:
        r = "timeout"
    with lock:
        res.append(r)
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts:
    t.start()
    time.sleep(0.005)
for t in ts:
    t.join()
print("many: ok=%d closed=%d timeout=%d" % (res.count("ok"), res.count("closed"),
      res.count("timeout")), flush=True)
time.sleep(hold)
for s in socks:
    s.close()
PY
}

field() { sed -n "s/.*$2=\([0-9]*\).*/\1/p" <<<"$1"; }
fds() { ls "/proc/$1/fd" | wc -l; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_echo echo

case_maxsessions() {
echo "== --maxsessions 2, client --conn 3"
sp=$(free_port); cp=$(free_port)
start_server srv-ms "$sp" "$ECHO" "${ARGS[@]}" --maxsessions 2
spid=$LASTPID
start_client cli-ms "$cp" "$sp" "${ARGS[@]}" --conn 3 --quiet
cpid=$LASTPID
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 2 0")
echo "$out"
[ "$(field "$out" ok)" -eq 2 ] || fail "maxsessions: the first two sessions must work"
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 1 0 3")
echo "third session: $out"
[ "$(field "$out" ok)" -eq 0 ] || fail "maxsessions: a third session carried data"
# the server tells the client at once: the connection is closed, it does not time out
[ "$(field "$out" closed)" -eq 1 ] || fail "maxsessions: the refused connection was not closed"
opened=$(grep -c 'sess: opened' "$tmp/srv-ms.log")
[ "$opened" -eq 2 ] || fail "maxsessions: server opened $opened sessions"
grep -i 'maxsessions' "$tmp/srv-ms.log" | grep -v 'limits:' | head -n 2
grep -q -- '--maxsessions 2 reached: refused 1 sessions so far' "$tmp/srv-ms.log" \
    || fail "maxsessions: the server does not count the refused session"
wait_log cli-ms 'the server refused this session' 30
grep -h 'the server refused this session' "$tmp/cli-ms.log" | head -n 1
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 2 0")
[ "$(field "$out" ok)" -ge 1 ] || fail "maxsessions: the admitted sessions stopped working"
stop_pid "$cpid"; stop_pid "$spid" || fail "maxsessions: server exit"
}

case_maxsessions_kcptun() {
echo "== --maxsessions 2, four stock kcptun clients (and the default limit's line)"
command -v kcptun-client >/dev/null || { echo "kcptun-client not installed: skipped"; return; }
sp=$(free_port)
start_server srv-mk "$sp" "$ECHO" "${ARGS[@]}" --maxsessions 2
spid=$LASTPID
local kp=() kpids=() i out t0 t1
for i in 1 2 3 4; do
    kp+=("$(free_port)")
    spawn "kc$i" kcptun-client -l "127.0.0.1:${kp[-1]}" -r "127.0.0.1:$sp" "${ARGS[@]}" --quiet
    kpids+=("$LASTPID")
done
for i in 0 1 2 3; do
    wait_until 150 bash -c "ss -Hltn 'sport = :${kp[$i]}' | grep -q ." || fail "kcptun client"
done
# two clients take the two sessions and keep them (held 20 s)
for i in 0 1; do
    (timeout 40 bash -c "$(declare -f many); many 127.0.0.1:${kp[$i]} 1 20" \
        >"$tmp/mk$i.out" 2>&1 &)
done
wait_until 100 bash -c "[ \$(grep -c 'sess: opened' '$tmp/srv-mk.log') -ge 2 ]" \
    || fail "maxsessions kcptun: the first two sessions did not open"
t0=$(date +%s)
for i in 2 3; do
    out=$(timeout 40 bash -c "$(declare -f many); many 127.0.0.1:${kp[$i]} 1 0 30")
    echo "refused kcptun client $i: $out"
    [ "$(field "$out" closed)" -eq 1 ] || fail "maxsessions kcptun: client $i was not closed"
done
t1=$(date +%s)
echo "two refused stock clients: their connections closed in $((t1 - t0)) s"
[ $((t1 - t0)) -le 10 ] || fail "maxsessions kcptun: refused connections took $((t1 - t0)) s"
wait_until 100 grep -q 'ok=1' "$tmp/mk0.out" || fail "maxsessions kcptun: admitted client 0"
wait_until 100 grep -q 'ok=1' "$tmp/mk1.out" || fail "maxsessions kcptun: admitted client 1"
wait_log srv-mk 'refused 2 sessions so far' 150
grep -h 'reached: refused' "$tmp/srv-mk.log" | tail -n 1
stop_pid "$spid" || fail "maxsessions kcptun: server exit"
for p in "${kpids[@]}"; do kill "$p" 2>/dev/null; done
# the default limit is sized at start and says from what
sp=$(free_port)
FDS=600 start_server srv-auto "$sp" "$ECHO" "${ARGS[@]}"
grep -h 'server: --maxsessions' "$tmp/srv-auto.log"
grep -q -- '--maxsessions 536 (from 600 descriptors' "$tmp/srv-auto.log" \
    || fail "maxsessions: the default is not sized from the descriptor limit"
}

case_maxstreams() {
echo "== --maxstreams 8 on the server, 20 concurrent streams"
sp=$(free_port); cp=$(free_port)
start_server srv-mx "$sp" "$ECHO" "${ARGS[@]}" --maxstreams 8
spid=$LASTPID
start_client cli-mx "$cp" "$sp" "${ARGS[@]}" --quiet
cpid=$LASTPID
out=$(timeout 40 bash -c "$(declare -f many); many 127.0.0.1:$cp 20 1")
echo "$out"
[ "$(field "$out" ok)" -eq 8 ] || fail "maxstreams: want exactly 8 streams through"
[ "$(field "$out" closed)" -eq 12 ] || fail "maxstreams: want 12 streams refused (closed)"
grep -i 'maxstreams\|stream limit\|too many streams' "$tmp/srv-mx.log" | grep -v 'limits:' \
    | head -n 2
grep -i 'maxstreams\|stream limit\|too many streams' "$tmp/srv-mx.log" | grep -qv 'limits:' \
    || fail "maxstreams: the server refuses streams without a log line"
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 8 0")
echo "after: $out"
[ "$(field "$out" ok)" -eq 8 ] || fail "maxstreams: streams did not work again after closing"
stop_pid "$cpid"; stop_pid "$spid" || fail "maxstreams: server exit"
}

# limited_pair SNAME CNAME server|client: a server and a client (ARGS, --quiet) on free ports
# sp and cp (PIDs spid, cpid), the one named with at most 64 open descriptors.
limited_pair() {
    sp=$(free_port); cp=$(free_port)
    FDS=$([ "$3" = server ] && echo 64) start_server "$1" "$sp" "$ECHO" "${ARGS[@]}" --quiet
    spid=$LASTPID
    FDS=$([ "$3" = client ] && echo 64) start_client "$2" "$cp" "$sp" "${ARGS[@]}" --quiet
    cpid=$LASTPID
}

case_fd_server() {
echo "== ulimit -n 64 on the server, 100 concurrent streams"
limited_pair srv-fd cli-fd server
fd_base=$(fds "$spid")
out=$(timeout 60 bash -c "$(declare -f many); many 127.0.0.1:$cp 100 1")
echo "$out"
ok=$(field "$out" ok)
[ "$ok" -ge 20 ] && [ "$ok" -lt 100 ] || fail "server fds: want some but not all 100 through"
kill -0 "$spid" 2>/dev/null || fail "server fds: the server died"
grep -m 1 'Too many open files' "$tmp/srv-fd.log" || fail "server fds: no log line"
fds_freed() { [ "$(fds "$spid")" -le $((fd_base + 2)) ]; }
wait_until 100 fds_freed || echo "server fds: $(fds "$spid") still open (base $fd_base)"
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 20 0")
echo "after: $out"
[ "$(field "$out" ok)" -eq 20 ] || fail "server fds: no recovery once fds were free"
stop_pid "$cpid"; stop_pid "$spid" || fail "server fds: server exit"
}

case_fd_client() {
echo "== ulimit -n 64 on the client, 100 concurrent connections"
limited_pair srv-cf cli-cf client
spawn many-cf bash -c "$(declare -f many); many 127.0.0.1:$cp 100 2"
mpid=$LASTPID
wait_log many-cf 'many:' 300
cat "$tmp/many-cf.log"
t0=$(cpu_ticks "$cpid"); sleep 2; t1=$(cpu_ticks "$cpid")
echo "client cpu while out of fds: $((t1 - t0)) ticks in 2 s, $(fds "$cpid") fds"
kill -0 "$cpid" 2>/dev/null || fail "client fds: the client died"
grep -m 1 'Too many open files' "$tmp/cli-cf.log" || fail "client fds: no log line"
lines=$(grep -c 'Too many open files' "$tmp/cli-cf.log")
echo "client fds: $lines log lines"
[ "$lines" -le 100 ] || fail "client fds: $lines log lines (log flood)"
[ $((t1 - t0)) -le 50 ] || fail "client fds: busy loop while out of fds ($((t1 - t0)) ticks)"
[ "$(field "$(cat "$tmp/many-cf.log")" timeout)" -eq 0 ] \
    || fail "client fds: connections beyond the fd limit hang instead of being refused"
wait "$mpid"
out=$(timeout 30 bash -c "$(declare -f many); many 127.0.0.1:$cp 20 0")
echo "after: $out"
[ "$(field "$out" ok)" -eq 20 ] || fail "client fds: no recovery once fds were free"
stop_pid "$cpid"; stop_pid "$spid" || fail "client fds: server exit"
}

# The budget covers stream data buffered in the process (mux and stream rings); the KCP windows
# are bounded apart by --sndwnd/--rcvwnd per session, so the bound allows for them: 4 sessions
# x (128 + 128) segments x 1350 bytes, plus SLACK_KB for the allocator. Without the budget
# each session could hold --smuxbuf (4 MiB) of unread data: 16 MiB.
BUDGET=4194304
SLACK_KB=$(( 4096 + 4 * 256 * 1350 / 1024 ))
BARGS=(--key limits --crypt aes --mode fast3 --sndwnd 128 --rcvwnd 128 --smuxbuf 4194304
       --streambuf 1048576 --bufbudget "$BUDGET" --quiet)
# stalled ADDR N SECONDS MODE: N connections in one process for SECONDS; MODE push writes as
# fast as the tunnel takes it, MODE hold connects and never reads. Prints "stalled: ...".
stalled() {
    python3 - "$@" <<'PY'
import socket, sys, time
addr, n, secs, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
host, _, port = addr.rpartition(":")
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.setblocking(False)
    socks.append(s)
blk, sent, end = bytes(65536), 0, time.time() + secs
while time.time() < end:
    if mode == "push":
        for s in socks:
            try:
                sent += s.send(blk)
            except (BlockingIOError, ConnectionError):
                pass
    time.sleep(0.01)
print("stalled: %s %d connections, %d bytes written" % (mode, n, sent), flush=True)
PY
}

# budget_case TITLE TARGET_MODE APP_MODE: 32 stalled streams over 4 sessions for 5 s.
budget_case() {
    echo "-- $1"
    spawn target python3 "$STREAMS" "$2" --listen 127.0.0.1:0 --duration 60
    local tpid=$LASTPID
    wait_log target '^listening '
    local target; target=$(sed -n 's/^listening //p' "$tmp/target.log")
    local sp cp; sp=$(free_port); cp=$(free_port)
    start_server srv-bb "$sp" "$target" "${BARGS[@]}"; local spid=$LASTPID
    start_client cli-bb "$cp" "$sp" "${BARGS[@]}" --conn 4; local cpid=$LASTPID
    local cbase sbase; cbase=$(rss_kb "$cpid"); sbase=$(rss_kb "$spid")
    spawn app bash -c "$(declare -f stalled); stalled 127.0.0.1:$cp 32 5 $3"
    local apid=$LASTPID cmax=0 smax=0 c s
    while kill -0 "$apid" 2>/dev/null; do
        sleep 0.2
        c=$(rss_kb "$cpid"); s=$(rss_kb "$spid")
        [ "$c" -gt "$cmax" ] && cmax=$c
        [ "$s" -gt "$smax" ] && smax=$s
    done
    wait "$apid" || fail "$1: the application failed"
    cat "$tmp/app.log"
    local lim=$((BUDGET / 1024 + SLACK_KB))
    echo "client rss $cbase -> $cmax KiB, server rss $sbase -> $smax KiB" \
         "(budget $((BUDGET / 1024)) KiB + $SLACK_KB KiB slack)"
    if [ "$BUILD" = build ]; then
        [ $((cmax - cbase)) -le "$lim" ] || fail "$1: client grew $((cmax - cbase)) KiB"
        [ $((smax - sbase)) -le "$lim" ] || fail "$1: server grew $((smax - sbase)) KiB"
    else
        echo "sanitizer build: RSS bound not checked (ASan quarantine and shadow)"
    fi
    stop_pid "$cpid" || fail "bufbudget: client exit"
    stop_pid "$spid" || fail "bufbudget: server exit"
    kill "$tpid" 2>/dev/null
}

case_budget() {
    echo "== --bufbudget 4 MiB: stalled readers on 32 streams over 4 sessions"
    budget_case "target never reads" stall push
    budget_case "client application never reads" flood hold
}

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(maxsessions maxsessions_kcptun maxstreams fd_server fd_client budget)
for c in "${cases[@]}"; do
    declare -F "case_$c" >/dev/null || { echo "unknown case $c"; exit 1; }
    "case_$c"
done
echo "ok"
