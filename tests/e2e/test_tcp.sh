#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --tcp (kcptun's fake TCP) between two network namespaces joined by a veth pair: ktun <-> ktun
# over IPv4 and IPv6, ktun client -> Debian's kcptun-server --tcp, kcptun-client --tcp -> ktun
# server, and ktun's client with --tcp auto (UDP blocked: it moves to fake TCP; UDP open: it
# stays); every transfer sha256-checked (streams.py check through an echo target) with UDP to
# the server port dropped, so only the fake-TCP path can carry it. Checks that the kernels
# send no RST and no flood of bare ACKs during the transfers, that the firewall rules of both
# namespaces (and the host's) are exactly as before after SIGTERM, that a server killed with
# SIGKILL leaves a rule that the next start removes, and the one-line exit-2 errors without
# root or without iptables. Skipped (77) when not root or without iptables/ip.
source "$(dirname "$0")/lib.sh"

source tests/e2e/netns.sh
SPORT=29900
ECHOPORT=7000
netns_pair tcp 10.77.0 fd77

# The server namespace drops UDP to the tunnel ports: only fake TCP can carry the tunnel.
# Both namespaces count RSTs and bare ACKs (no PSH/SYN/FIN/RST) they receive on the veth.
for p in $SPORT $((SPORT + 1)); do
    ins iptables -A INPUT -p udp --dport $p -j DROP
    ins ip6tables -A INPUT -p udp --dport $p -j DROP
done
for side in "$NC:$VC" "$NS:$VS"; do
    for t in iptables ip6tables; do
        ip netns exec "${side%%:*}" $t -A INPUT -i "${side#*:}" -p tcp --tcp-flags RST RST \
            -m comment --comment rst
        ip netns exec "${side%%:*}" $t -A INPUT -i "${side#*:}" -p tcp \
            --tcp-flags PSH,SYN,FIN,RST,ACK ACK -m comment --comment bareack
    done
done
# counter NS COMMENT: packets matched by that counting rule (IPv4 + IPv6).
counter() {
    local n=0 v
    for t in iptables ip6tables; do
        v=$(ip netns exec "$1" $t -L INPUT -v -n -x | awk -v c="/* $2 */" 'index($0, c) { print $1 }')
        n=$((n + ${v:-0}))
    done
    echo "$n"
}
fw_before=$(fw_state)

spawn echo ip netns exec "$NS" python3 "$STREAMS" echo --listen 127.0.0.1:$ECHOPORT --duration 600
wait_log echo '^listening '

# kill_wait PID: SIGTERM, then SIGKILL after 5 s (kcptun's exits are not checked).
kill_wait() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# wait_listen NS PROTO PORT: until something listens there (5 s).
wait_listen() {
    local opt=-Hltn
    [ "$2" = udp ] && opt=-Hlun
    for _ in $(seq 50); do
        [ -n "$(ip netns exec "$1" ss $opt "sport = :$3")" ] && return 0
        sleep 0.1
    done
    fail "nothing listens on $2 port $3 in $1"
}

# transfer NAME LPORT [ARGS]: 2 streams x 2 MiB each way through the client namespace's tunnel
# entrance, sha256-checked; no RST and few bare ACKs seen meanwhile. (kcptun 20210922 closes
# both directions at the first FIN: those runs read the whole echo before closing.)
transfer() {
    local rst0 ack0 rst1 ack1
    rst0=$(($(counter "$NC" rst) + $(counter "$NS" rst)))
    ack0=$(($(counter "$NC" bareack) + $(counter "$NS" bareack)))
    inc timeout 40 python3 "$STREAMS" check --connect "127.0.0.1:$2" --bytes 2097152 \
        --streams 2 --duration 30 ${3:-} >"$tmp/$1-check.log" 2>&1 ||
        { cat "$tmp/$1-check.log"; fail "$1: transfer"; }
    rst1=$(($(counter "$NC" rst) + $(counter "$NS" rst)))
    ack1=$(($(counter "$NC" bareack) + $(counter "$NS" bareack)))
    [ "$rst1" -eq "$rst0" ] || fail "$1: $((rst1 - rst0)) RST segments during the transfer"
    # a handshake has one bare ACK per side (the kernel's or ktun's); kernel ACKs of the
    # fake data would be thousands
    [ $((ack1 - ack0)) -le 8 ] || fail "$1: $((ack1 - ack0)) bare ACKs during the transfer"
    echo "ok   $1: 2 x 2 MiB each way, sha256 intact, no RST, $((ack1 - ack0)) bare ACKs"
}

KEY=tcp-test-key
# ---- ktun <-> ktun, IPv4 and IPv6 -------------------------------------------------------
spawn srv4 ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT --tcp \
    --key $KEY
srv4=$LASTPID
wait_log srv4 'server: listening'
wait_listen "$NS" tcp $SPORT
ins iptables -S OUTPUT | grep -q "ktun-tcp:$srv4" || fail "no server rule tagged ktun-tcp:$srv4"
spawn cli4 ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12948 -r 10.77.0.2:$SPORT --tcp --key $KEY
cli4=$LASTPID
wait_log cli4 'client: listening'
transfer ktun-ktun-ipv4 12948
grep -q 'tcp: connected to 10.77.0.2' "$tmp/cli4.log" || fail "client did not log its connection"
inc iptables -S OUTPUT | grep -q "ktun-tcp:$cli4" || fail "no client rule tagged ktun-tcp:$cli4"

spawn srv6 ip netns exec "$NS" "$SERVER" -l "[::]:$((SPORT + 1))" -t 127.0.0.1:$ECHOPORT --tcp \
    --key $KEY
srv6=$LASTPID
wait_log srv6 'server: listening'
spawn cli6 ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12949 -r "[fd77::2]:$((SPORT + 1))" --tcp \
    --key $KEY
cli6=$LASTPID
wait_log cli6 'client: listening'
transfer ktun-ktun-ipv6 12949
# the same dual-stack server also takes IPv4
spawn cli46 ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12950 -r 10.77.0.2:$((SPORT + 1)) --tcp \
    --key $KEY
cli46=$LASTPID
wait_log cli46 'client: listening'
transfer ktun-ktun-ipv4-to-dual-stack 12950

for p in $cli4 $cli6 $cli46 $srv4 $srv6; do
    stop_pid "$p" || fail "pid $p did not exit cleanly on SIGTERM"
done
[ "$(fw_state)" = "$fw_before" ] || { diff <(echo "$fw_before") <(fw_state); fail "rules left after SIGTERM"; }
echo "ok   firewall rules as before after SIGTERM"

# ---- --tcp auto (ktun's client) ---------------------------------------------------------
# UDP to the server port is dropped: the client starts over UDP, hears nothing, and moves to
# fake TCP; with UDP open (a server without --tcp) it stays on UDP.
spawn asrv ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT --tcp --key $KEY
asrv=$LASTPID
wait_log asrv 'server: listening'
spawn acli ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12954 -r 10.77.0.2:$SPORT --tcp auto \
    --key $KEY
acli=$LASTPID
wait_log acli 'client: listening'
transfer auto-udp-blocked 12954
grep -q 'tcp auto: no answer from 10.77.0.2:29900 over UDP for 4 s: switching to fake TCP' \
    "$tmp/acli.log" || fail "--tcp auto did not log its move to fake TCP"
spawn usrv ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$((SPORT + 2)) -t 127.0.0.1:$ECHOPORT \
    --key $KEY
usrv=$LASTPID
wait_log usrv 'server: listening'
spawn ucli ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12955 -r 10.77.0.2:$((SPORT + 2)) \
    --tcp auto --key $KEY
ucli=$LASTPID
wait_log ucli 'client: listening'
transfer auto-udp-open 12955
grep -q 'tcp auto: 10.77.0.2:29902 over UDP' "$tmp/ucli.log" || fail "--tcp auto: no path logged"
grep -q 'switching' "$tmp/ucli.log" && fail "--tcp auto left a working UDP path"
for p in $acli $ucli $asrv $usrv; do
    stop_pid "$p" || fail "pid $p did not exit cleanly on SIGTERM"
done
[ "$(fw_state)" = "$fw_before" ] || { diff <(echo "$fw_before") <(fw_state); fail "rules left after --tcp auto"; }

# ---- against Debian's kcptun --tcp ------------------------------------------------------
if command -v kcptun-server >/dev/null && command -v kcptun-client >/dev/null; then
    spawn kserver ip netns exec "$NS" kcptun-server -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT \
        --key $KEY --tcp
    kserver=$LASTPID
    wait_listen "$NS" tcp $SPORT
    spawn kcli ip netns exec "$NC" "$CLIENT" -l 127.0.0.1:12951 -r 10.77.0.2:$SPORT --tcp \
        --key $KEY
    kcli=$LASTPID
    wait_log kcli 'client: listening'
    transfer ktun-client-to-kcptun-server 12951 --no-halfclose
    stop_pid "$kcli" || fail "ktun client did not exit cleanly"
    kill_wait "$kserver"

    spawn ksrv ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT --tcp \
        --key $KEY
    ksrv=$LASTPID
    wait_log ksrv 'server: listening'
    spawn kclient ip netns exec "$NC" kcptun-client -l 127.0.0.1:12952 -r 10.77.0.2:$SPORT \
        --key $KEY --tcp
    kclient=$LASTPID
    wait_listen "$NC" tcp 12952
    transfer kcptun-client-to-ktun-server 12952 --no-halfclose
    kill_wait "$kclient"
    stop_pid "$ksrv" || fail "ktun server did not exit cleanly"
    # kcptun leaves its own TTL rules behind when killed; only ktun's are checked here
    for ns in "$NC" "$NS"; do
        for t in iptables ip6tables; do
            ip netns exec "$ns" $t -S OUTPUT | grep -q ktun-tcp && fail "ktun rule left in $ns"
            ip netns exec "$ns" $t -S OUTPUT | grep -e '--ttl-eq 1\|--hl-eq 1' |
                sed 's/^-A/-D/' | while read -r rule; do
                    # shellcheck disable=SC2086
                    ip netns exec "$ns" $t $rule
                done
        done
    done
    [ "$(fw_state)" = "$fw_before" ] || { diff <(echo "$fw_before") <(fw_state); fail "rules left after the kcptun runs"; }
else
    echo "skip kcptun interop: kcptun not installed"
fi

# ---- a killed server's rule is removed by the next start --------------------------------
spawn crash ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT --tcp --key $KEY
crash=$LASTPID
wait_log crash 'server: listening'
kill -KILL "$crash"
wait "$crash" 2>/dev/null
ins iptables -S OUTPUT | grep -q "ktun-tcp:$crash" || fail "SIGKILL: expected the rule to stay"
spawn restart ip netns exec "$NS" "$SERVER" -l 10.77.0.2:$SPORT -t 127.0.0.1:$ECHOPORT --tcp --key $KEY
restart=$LASTPID
wait_log restart 'server: listening'
grep -q 'removed 1 stale iptables rule' "$tmp/restart.log" || fail "stale rule not reported removed"
ins iptables -S OUTPUT | grep -q "ktun-tcp:$crash" && fail "stale rule of pid $crash still there"
stop_pid "$restart" || fail "restarted server did not exit cleanly"
[ "$(fw_state)" = "$fw_before" ] || { diff <(echo "$fw_before") <(fw_state); fail "rules left after the restart"; }
echo "ok   a SIGKILLed server's rule is removed at the next start"

# ---- errors: not root, no iptables ------------------------------------------------------
if command -v setpriv >/dev/null; then
    ins setpriv --reuid=65534 --regid=65534 --clear-groups "$SERVER" -l 10.77.0.2:$SPORT \
        -t 127.0.0.1:$ECHOPORT --tcp >"$tmp/noroot.log" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "not root: exit $rc, want 2"
    [ "$(wc -l <"$tmp/noroot.log")" -eq 1 ] && grep -q 'needs root' "$tmp/noroot.log" ||
        { cat "$tmp/noroot.log"; fail "not root: want one line saying so"; }
fi
inc env PATH=/nonexistent "$CLIENT" -l 127.0.0.1:12953 -r 10.77.0.2:$SPORT --tcp \
    >"$tmp/noipt.log" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "no iptables: exit $rc, want 2"
[ "$(wc -l <"$tmp/noipt.log")" -eq 1 ] && grep -q 'needs iptables' "$tmp/noipt.log" ||
    { cat "$tmp/noipt.log"; fail "no iptables: want one line saying so"; }
echo "ok   exit 2 with one line without root and without iptables"
[ "$(fw_state)" = "$fw_before" ] || fail "rules changed at the end"
echo "PASS"
