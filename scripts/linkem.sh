#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sets up and tears down the emulated link: two network namespaces joined by build/tools/linkem.
#
#   scripts/linkem.sh up [linkem options]   e.g. up --delay 25 --loss 1 --rate 50mbit --queue-bdp 1
#   scripts/linkem.sh down                  stop linkem, delete the namespaces (idempotent)
#   scripts/linkem.sh stats                 print linkem's counters (SIGUSR1)
#   scripts/linkem.sh status                say whether the link is up
#   scripts/linkem.sh a|b CMD...            run CMD inside namespace A or B
#
# `up` replaces a running link (so it is idempotent too) and prints the two addresses. The
# addresses exist only inside the namespaces created here; nothing is routed outside them.
# Needs root (netns and tun). Environment overrides:
#   LINKEM_NS_A/LINKEM_NS_B (ktun-a/ktun-b), LINKEM_ADDR_A/LINKEM_ADDR_B (10.199.0.1/.2),
#   LINKEM_DEV_A/LINKEM_DEV_B (the tun devices inside the namespaces: lkm-a/lkm-b),
#   LINKEM_BIN (build/tools/linkem), LINKEM_STATE (/run/ktun-linkem),
#   LINKEM_MAX_SECONDS (3600: linkem exits by itself after that long),
#   LINKEM_RT (1: lane threads run SCHED_FIFO, so that a busy machine delays them less; 0 = off),
#   LINKEM_TCP_CC (default TCP congestion control inside both namespaces; a namespace accepts
#   only those in net.ipv4.tcp_allowed_congestion_control (here reno, bbr); for others such as
#   cubic use `tcpblast --cc cubic`, per socket). The kernel's default here is bbr.
set -eu
cd "$(dirname "$0")/.."

NS_A=${LINKEM_NS_A:-ktun-a}
NS_B=${LINKEM_NS_B:-ktun-b}
ADDR_A=${LINKEM_ADDR_A:-10.199.0.1}
ADDR_B=${LINKEM_ADDR_B:-10.199.0.2}
PREFIX=${LINKEM_PREFIX:-24}
BIN=${LINKEM_BIN:-build/tools/linkem}
STATE=${LINKEM_STATE:-/run/ktun-linkem}
MAX_SECONDS=${LINKEM_MAX_SECONDS:-3600}
RT=${LINKEM_RT:-1}
TCP_CC=${LINKEM_TCP_CC:-}
DEV_A=${LINKEM_DEV_A:-lkm-a}
DEV_B=${LINKEM_DEV_B:-lkm-b}
PIDFILE=$STATE/linkem.pid
LOG=$STATE/linkem.log
STATS=$STATE/linkem.stats

die() { echo "linkem.sh: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and tun)"; }

# Prints the pid of our running linkem, if any: the pid file must name a live linkem process.
running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid comm
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = linkem ] || return 1
    echo "$pid"
}

do_down() {
    need_root
    local pid
    if pid=$(running_pid); then
        kill -TERM "$pid"
        for _ in $(seq 50); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        [ -d "/proc/$pid" ] && die "linkem (pid $pid) did not stop"
        [ -s "$STATS" ] && sed 's/^/linkem: /' "$STATS"
    fi
    rm -f "$PIDFILE"
    for ns in "$NS_A" "$NS_B"; do
        if [ -e "/run/netns/$ns" ]; then
            ip netns del "$ns"
        fi
    done
    echo "linkem: down"
}

do_up() {
    need_root
    [ -x "$BIN" ] || die "$BIN not built (make tools)"
    if running_pid >/dev/null || [ -e "/run/netns/$NS_A" ] || [ -e "/run/netns/$NS_B" ]; then
        do_down >/dev/null
    fi
    mkdir -p "$STATE"
    rm -f "$STATS" "$LOG"
    # any failing step below (set -e) takes down what was set up so far: no namespace or
    # linkem process is left behind by a half-made link
    trap 'do_down >/dev/null 2>&1' ERR
    for ns in "$NS_A" "$NS_B"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        if [ -n "$TCP_CC" ]; then
            ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control="$TCP_CC" ||
                { do_down >/dev/null; die "cannot set TCP congestion control $TCP_CC"; }
        fi
    done
    local rt=()
    [ "$RT" = 1 ] && rt=(--rt)
    setsid "$BIN" --ns-a "$NS_A" --ns-b "$NS_B" --dev-a "$DEV_A" --dev-b "$DEV_B" \
        --stats "$STATS" --duration "$MAX_SECONDS" "${rt[@]}" "$@" >"$LOG" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    for _ in $(seq 100); do
        grep -q '^ready' "$LOG" 2>/dev/null && break
        if ! [ -d "/proc/$pid" ]; then
            cat "$LOG" >&2
            do_down >/dev/null
            die "linkem failed to start"
        fi
        sleep 0.05
    done
    grep -q '^ready' "$LOG" || { do_down >/dev/null; die "linkem not ready after 5 s"; }
    ip -n "$NS_A" addr add "$ADDR_A/$PREFIX" dev "$DEV_A"
    ip -n "$NS_B" addr add "$ADDR_B/$PREFIX" dev "$DEV_B"
    trap - ERR
    echo "linkem: up (pid $pid): a=$ADDR_A (netns $NS_A, $DEV_A)  b=$ADDR_B (netns $NS_B, $DEV_B)"
    local cc
    cc=$(ip netns exec "$NS_A" sysctl -n net.ipv4.tcp_congestion_control)
    echo "linkem: options: $* (tcp congestion control: $cc)"
}

do_stats() {
    local pid
    pid=$(running_pid) || die "not running"
    local before=0
    [ -f "$STATS" ] && before=$(stat -c %y "$STATS" 2>/dev/null || echo 0)
    kill -USR1 "$pid"
    for _ in $(seq 40); do
        [ -f "$STATS" ] && [ "$(stat -c %y "$STATS")" != "$before" ] && break
        sleep 0.05
    done
    cat "$STATS"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
up) do_up "$@" ;;
down) do_down ;;
stats) do_stats ;;
status)
    if pid=$(running_pid); then
        echo "linkem: up (pid $pid): a=$ADDR_A (netns $NS_A)  b=$ADDR_B (netns $NS_B)"
    else
        echo "linkem: down"
        exit 1
    fi
    ;;
a) need_root; exec ip netns exec "$NS_A" "$@" ;;
b) need_root; exec ip netns exec "$NS_B" "$@" ;;
*)
    sed -n '3,21s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
