# SPDX-License-Identifier: MIT
# Process helpers for the end-to-end scripts and scripts/*.sh (sourced by bash, not run): a temp
# dir, background processes stopped by PID and the temp dir removed on every exit path (the
# EXIT trap, which bash also runs when a signal ends it), failure with the logs' tails, waits on
# log lines and on conditions, free ports. Needs python3 (free_port, streams.py): exits 77
# without it. FAIL_PREFIX (default empty) starts the failure line, e.g. "demo: ".
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

tmp=$(mktemp -d)
pids=()
exit_hooks=()
declare -gA PID_OF=()   # log name -> PID of the process spawn started with that name

# ours PID: PID is still a child of this shell (running, or exited and not yet reaped). A PID
# whose process ended and was reaped may since belong to someone else: it is never signalled.
ours() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }           # after "pid (comm) ": state, ppid, ...
    st=${st#* }
    [ "${st%% *}" = "$$" ]
}

# stop_all PID...: SIGTERM to those still ours, up to 10 s for them to exit, then SIGKILL to
# any left; reaps them.
stop_all() {
    local p live=() left
    for p in "$@"; do ours "$p" && live+=("$p"); done
    [ ${#live[@]} -gt 0 ] || return 0
    kill -TERM "${live[@]}" 2>/dev/null
    for _ in $(seq 100); do
        left=()
        for p in "${live[@]}"; do ours "$p" && left+=("$p"); done
        [ ${#left[@]} -eq 0 ] && break
        sleep 0.1
    done
    [ ${#left[@]} -eq 0 ] || kill -KILL "${left[@]}" 2>/dev/null
    wait "${live[@]}" 2>/dev/null
}

# on_exit CMD...: runs CMD (words joined, then eval'd) at exit, after the processes are stopped:
# for what is not a process, such as a network namespace or a firewall rule.
on_exit() { exit_hooks+=("$*"); }

cleanup() {
    local h
    stop_all "${pids[@]}"
    for h in "${exit_hooks[@]}"; do eval "$h"; done
    if [ -n "${KEEP_TMP:-}" ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

fail() {
    echo "${FAIL_PREFIX:-}FAIL: $*"
    for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
    exit 1
}

# spawn NAME CMD...: runs CMD in the background with output in $tmp/NAME.log; sets LASTPID.
spawn() {
    local name=$1; shift
    "$@" >"$tmp/$name.log" 2>&1 &
    LASTPID=$!
    pids+=("$LASTPID")
    PID_OF[$name]=$LASTPID
}

# wait_log NAME PATTERN [TENTHS]: waits until $tmp/NAME.log matches PATTERN (default 10 s);
# fails at once when the process spawned as NAME has exited without writing it.
wait_log() {
    local n=${3:-100} p=${PID_OF[$1]:-}
    for _ in $(seq "$n"); do
        grep -q -- "$2" "$tmp/$1.log" 2>/dev/null && return 0
        if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then
            grep -q -- "$2" "$tmp/$1.log" 2>/dev/null && return 0
            fail "$1 exited without '$2' in its log"
        fi
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

# start_listener NAME CMD...: spawns CMD, which prints "listening H:P" (streams.py, udpfw,
# tcpblast, tcprev); waits for that line and sets ADDR to H:P and PORT to P (LASTPID as spawn).
start_listener() {
    local name=$1; shift
    spawn "$name" "$@"
    wait_log "$name" '^listening '
    ADDR=$(sed -n 's/^listening //p' "$tmp/$name.log" | head -n 1)
    PORT=${ADDR##*:}
}

# wait_port t|u PORT: waits up to 10 s until something listens on TCP (t) or UDP (u) PORT, for
# programs that do not log a "listening" line of their own.
listens() { ss -Hln"$1" "sport = :$2" 2>/dev/null | grep -q .; }
wait_port() {
    wait_until 100 listens "$1" "$2" || fail "nothing listens on $1 port $2"
}

# stop_pid PID: SIGTERM, up to 10 s for a clean exit, then SIGKILL; returns its exit status.
gone() { ! ours "$1"; }
stop_pid() {
    ours "$1" && kill -TERM "$1" 2>/dev/null
    wait_until 100 gone "$1" ||
        { echo "pid $1 still running 10 s after SIGTERM: killed"; kill -KILL "$1" 2>/dev/null; }
    wait "$1"
}

# field KEY LINE: the value of KEY=VALUE in LINE (tcpblast, udpfw and ktun counter lines).
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# ge A B / le A B: A >= B / A <= B for decimal numbers.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# rss_kb PID: resident set size in KiB (empty once PID is gone).
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
