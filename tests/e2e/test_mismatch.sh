#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Misconfiguration explained, read from both ends' logs, ktun<->ktun and ktun<->kcptun (the
# kcptun cases are skipped when Debian's kcptun is not installed):
#   - another --crypt or --key: the server names the method or says "different --key"; the
#     client says within 10 s that nothing came back and names --key/--crypt;
#   - a server forcing --smuxver or --nocomp: it names the flag; the client notices the refusal
#     and its next sessions probe the server's format, which then carries data;
#   - a default server takes stock kcptun clients with --smuxver 2 and with --nocomp, and ktun
#     clients in every format, and logs what it detected (sha256-checked transfers);
#   - a ktun client against kcptun-server --smuxver 2 / --nocomp: the first connection fails
#     fast, the probe finds the server's format, the next connection carries data;
#   - --datashard/--parityshard differing is no mismatch (both decode FEC whatever their own).
# The cases run side by side; each line, once, not once per datagram.
set -u
source "$(dirname "$0")/lib.sh"

have_kcptun=1
command -v kcptun-client >/dev/null && command -v kcptun-server >/dev/null || have_kcptun=0

# poke PORT: a TCP connection to the client that writes a little and waits, so the client
# keeps sending (and resending) datagrams.
poke() {
    timeout 12 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello" * 100)
time.sleep(10)' "$1" >/dev/null 2>&1 &
}

# check NAME PORT: a sha256-checked transfer through client port PORT (two streams, random and
# text) that must succeed.
check() {
    local out
    out=$(timeout 40 python3 "$STREAMS" check --connect "127.0.0.1:$2" --bytes 200000 \
          --streams 2 --mixed --no-halfclose --seed 5 --duration 35 2>&1) ||
        fail "$1: transfer failed: $out"
    echo "$1: $out"
}

# kstart NAME PROG ARGS...: starts kcptun (its log goes to $tmp/NAME.log).
kstart() { local n=$1; shift; spawn "$n" "$@"; }

# spaced NAME PATTERN GAP: PATTERN is in the log, its lines at least GAP seconds apart (the
# log's second resolution: GAP - 1; a line stamped after midnight follows one before it).
spaced() {
    local c; c=$(grep -c -- "$2" "$tmp/$1.log")
    [ "$c" -ge 1 ] || fail "$1: no '$2'"
    grep -- "$2" "$tmp/$1.log" | awk -v gap="$3" '{
        split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]
        if (NR > 1 && s < prev) s += 86400 # the log went past midnight
        if (NR > 1 && s - prev < gap - 1) { print "too close: " $0; bad = 1 }
        prev = s } END { exit bad }' || fail "$1: '$2' more often than once per $3 s"
}

start_echo echo

echo "== start: every case side by side"
# 1. --crypt differs (ktun both ends)
S1=$(free_port); C1=$(free_port)
start_server s1 "$S1" 127.0.0.1:9 --key mm-key --crypt aes
start_client c1 "$C1" "$S1" --key mm-key --crypt aes-128-gcm
# 2. --key differs
S2=$(free_port); C2=$(free_port)
start_server s2 "$S2" 127.0.0.1:9 --key mm-key --crypt salsa20
start_client c2 "$C2" "$S2" --key other-key --crypt salsa20
# 3. server forces --smuxver 2, client speaks v1 (default)
S3=$(free_port); C3=$(free_port)
start_server s3 "$S3" "$ECHO" --key mm-key --smuxver 2
start_client c3 "$C3" "$S3" --key mm-key
# 4. server forces --nocomp, client compresses (default)
S4=$(free_port); C4=$(free_port)
start_server s4 "$S4" "$ECHO" --key mm-key --nocomp
start_client c4 "$C4" "$S4" --key mm-key
# 5. a default server, clients in every format and with FEC off
S5=$(free_port)
start_server s5 "$S5" "$ECHO" --key mm-key
C5a=$(free_port); C5b=$(free_port); C5c=$(free_port)
start_client c5a "$C5a" "$S5" --key mm-key --smuxver 2
start_client c5b "$C5b" "$S5" --key mm-key --smuxver 2 --nocomp
start_client c5c "$C5c" "$S5" --key mm-key --nocomp --ds 0 --ps 0
poke "$C1"; poke "$C2"; poke "$C3"; poke "$C4"
if [ $have_kcptun = 1 ]; then
    # 6. stock kcptun clients with --smuxver 2, with --nocomp, and with another --key against
    #    the default server; with smux v2 against a server forcing v1
    K6a=$(free_port); K6b=$(free_port); K6c=$(free_port); K6d=$(free_port); S6=$(free_port)
    kstart k6a kcptun-client -l "127.0.0.1:$K6a" -r "127.0.0.1:$S5" --key mm-key --smuxver 2
    kstart k6b kcptun-client -l "127.0.0.1:$K6b" -r "127.0.0.1:$S5" --key mm-key --nocomp
    kstart k6c kcptun-client -l "127.0.0.1:$K6c" -r "127.0.0.1:$S1" --key not-mm-key
    start_server s6 "$S6" "$ECHO" --key mm-key --smuxver 1
    kstart k6d kcptun-client -l "127.0.0.1:$K6d" -r "127.0.0.1:$S6" --key mm-key --smuxver 2
    # 7. ktun clients against kcptun-server --smuxver 2, --nocomp, and another --key
    S7a=$(free_port); S7b=$(free_port); S7c=$(free_port)
    C7a=$(free_port); C7b=$(free_port); C7c=$(free_port)
    kstart g7a kcptun-server -l "127.0.0.1:$S7a" -t "$ECHO" --key mm-key --smuxver 2
    kstart g7b kcptun-server -l "127.0.0.1:$S7b" -t "$ECHO" --key mm-key --nocomp
    kstart g7c kcptun-server -l "127.0.0.1:$S7c" -t "$ECHO" --key mm-key
    start_client c7a "$C7a" "$S7a" --key mm-key
    start_client c7b "$C7b" "$S7b" --key mm-key
    start_client c7c "$C7c" "$S7c" --key other-key
    wait_log g7c 'key derivation done' 150
    for p in "$K6a" "$K6b" "$K6c" "$K6d"; do
        wait_until 150 bash -c "ss -Hltn 'sport = :$p' | grep -q ." || fail "kcptun client $p"
    done
    poke "$K6c"; poke "$K6d"; poke "$C7c"
fi

echo "== default server: every client format carries data and is logged"
check "ktun v2" "$C5a"
check "ktun v2 nocomp" "$C5b"
check "ktun v1 nocomp fec 0/0" "$C5c"
wait_log s5 'the client speaks smux v2, compressed'
wait_log s5 'the client speaks smux v2, uncompressed (--nocomp)'
wait_log s5 'the client speaks smux v1, uncompressed (--nocomp)'
if [ $have_kcptun = 1 ]; then
    check "kcptun-client --smuxver 2" "$K6a"
    check "kcptun-client --nocomp" "$K6b"
fi
grep 'speaks' "$tmp/s5.log"
! grep -q 'warn' "$tmp/s5.log" || fail "s5: a warning with matching clients"

echo "== another --crypt, another --key: the server names it, the client says so in 10 s"
wait_log s1 'do not open with --crypt aes; they open with --crypt aes-128-gcm' 80
wait_log s2 'different --key' 80
wait_log c1 'nothing came back from the server in' 100
wait_log c2 'nothing came back from the server in' 100
grep -h 'do not open\|different --key\|nothing came back' "$tmp"/s1.log "$tmp"/s2.log \
    "$tmp"/c1.log "$tmp"/c2.log
grep -q -- '--key and --crypt' "$tmp/c2.log" || fail "c2: the flags are not named"

echo "== server forcing --smuxver / --nocomp: named by the server, probed by the client"
wait_log s3 'the peer speaks smux v1 and this end v2: give both ends the same --smuxver' 50
wait_log s4 'the peer compresses (snappy framing) and this end runs --nocomp' 50
grep -h 'give both ends' "$tmp"/s3.log "$tmp"/s4.log
# a ktun server does not answer the session it closed: the client sees it at the keepalive
# timeout (30 s)
wait_log c3 'its smux refused the session' 450
wait_log c3 'new sessions try smux v2 compressed' 20
wait_log c4 'new sessions try smux v2 compressed' 450
poke "$C4" # the second format's session: refused too (at the keepalive timeout)
check "ktun client probed to v2" "$C3"
wait_log c3 'the server speaks smux v2 compressed: give this client --smuxver 2' 50
wait_log c4 'new sessions try smux v1 uncompressed' 450
check "ktun client probed to nocomp" "$C4"
wait_log c4 'the server speaks smux v1 uncompressed: give this client --smuxver 1 --nocomp' 50
grep -h 'client: the server' "$tmp"/c3.log "$tmp"/c4.log

if [ $have_kcptun = 1 ]; then
    echo "== ktun <-> kcptun"
    wait_log s1 'different --key' 80 # kcptun client, another key, on s1
    wait_log c7c 'nothing came back from the server in' 100
    wait_log s6 'the peer speaks smux v2 and this end v1: give both ends the same --smuxver' 80
    grep -h 'smux v2 and this end' "$tmp/s6.log" | head -1
    # the first connection to kcptun-server --smuxver 2 goes through: refused with the first
    # session, it opens again on the next one (smux v2) with what it had sent
    t0=$(date +%s)
    timeout 40 python3 "$STREAMS" check --connect "127.0.0.1:$C7a" --bytes 2000 \
        --no-halfclose --duration 35 >/dev/null 2>&1 || fail "c7a: the first stream was lost"
    t1=$(date +%s)
    [ $((t1 - t0)) -le 15 ] || fail "c7a: the first connection took $((t1 - t0)) s"
    wait_log c7a 'the server refused smux v1 compressed: new sessions try smux v2 compressed' 20
    grep -q 'opened again on' "$tmp/c7a.log" || fail "c7a: the first stream was not opened again"
    check "ktun client -> kcptun-server --smuxver 2" "$C7a"
    wait_log c7a 'the server speaks smux v2 compressed' 20
    # kcptun-server --nocomp: v2 compressed is refused too, then v1 uncompressed works; the
    # first connection follows both refusals
    timeout 80 python3 "$STREAMS" check --connect "127.0.0.1:$C7b" --bytes 2000 \
        --no-halfclose --duration 75 >/dev/null 2>&1 || fail "c7b: the first stream was lost"
    check "ktun client -> kcptun-server --nocomp" "$C7b"
    wait_log c7b 'the server speaks smux v1 uncompressed' 20
    grep -h 'client: the server' "$tmp"/c7a.log "$tmp"/c7b.log
    spaced c7c 'nothing came back' 60
fi

echo "== one line each, not one per datagram"
spaced s2 'different --key' 10
spaced s1 'they open with --crypt aes-128-gcm' 10
spaced c1 'nothing came back' 60
spaced c2 'nothing came back' 60
spaced s3 'give both ends the same --smuxver' 10
[ "$(grep -c 'new sessions try' "$tmp/c3.log")" -eq 1 ] || fail "c3: probed more than once"
echo "ok"
