#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ktun-client -> ktun-server on loopback with the wire of newer kcptun releases: --crypt
# aes-128-gcm (FEC on) and null (FEC off), --QPP with each pad variant, --framesize,
# --closewait (the server's delayed FIN) and --ratelimit. Each tunnel carries
# an echo check both ways and a one-way download (sha256): an echo cannot tell one-sided QPP
# from none, a download can. A key mismatch under QPP must corrupt the download.
set -u
source "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl not installed"; exit 77; }

start_echo echo
start_www www 3000000

# download WHAT: fetches /blob through the client at $CP; fails naming WHAT unless it is intact.
download() {
    local got
    got=$(timeout 60 curl -s --max-time 50 "http://127.0.0.1:$CP/blob" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$WANT" ] || fail "$1: download sha256 $got, want $WANT"
}

# check_method NAME ARGS...: echo check both ways and a download through a fresh tunnel.
check_method() {
    local name=$1; shift
    echo "== $name: $*"
    start_pair "s-$name" "c-$name" "$ECHO" "$@"
    check_streams "$name: echo" "$CP" 50 --bytes 2000000 --streams 3
    start_pair "s-$name-dl" "c-$name-dl" "127.0.0.1:$WP" "$@"
    download "$name"
}

check_method gcm --key e2e-new --crypt aes-128-gcm
check_method null --key e2e-new --crypt null --ds 0 --ps 0 --nocomp
check_method qppC --key e2e-new --crypt aes-128-gcm --QPP --smuxver 2
check_method qppB --key e2e-new --crypt aes --QPP --QPPCount 7 --QPPVariant B
check_method qppA --key e2e-new --crypt none --QPP --QPPVariant A --nocomp

echo "== --framesize 1000 on the client, 65535 on the server"
sp=$(free_port); cp=$(free_port)
start_server s-fs "$sp" "$ECHO" --key e2e-new --framesize 65535 --smuxver 2
start_client c-fs "$cp" "$sp" --key e2e-new --framesize 1000 --smuxver 2
check_streams "framesize" "$cp" 50 --bytes 2000000

echo "== --closewait 2 on the server: its FIN follows the target's EOF 2 s later"
sp=$(free_port); cp=$(free_port)
start_server s-cw "$sp" "$ECHO" --key e2e-new --closewait 2
start_client c-cw "$cp" "$sp" --key e2e-new
out=$(timeout 30 python3 "$STREAMS" eof --connect "127.0.0.1:$cp" --bytes 100000 --duration 20)
echo "$out"
[ "$(field bytes "$out")" = 100000 ] || fail "closewait: echo incomplete ($out)"
ge "$(field seconds "$out")" 1.8 || fail "closewait: EOF too early"

echo "== --ratelimit 1000000 on the server: 3 MB take at least 2 s"
sp=$(free_port); CP=$(free_port)
start_server s-rl "$sp" "127.0.0.1:$WP" --key e2e-new --ratelimit 1000000
start_client c-rl "$CP" "$sp" --key e2e-new
t0=$(date +%s.%N)
download ratelimit
t1=$(date +%s.%N)
echo "3 MB at --ratelimit 1000000: $(python3 -c "print('%.2f s' % ($t1 - $t0))")"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 2.0 else 1)" || fail "ratelimit not applied"

echo "== QPP with a different key on the server: the download must not match"
# The crypt layer must still open, so the keys differ only for QPP: crypt null carries no key.
sp=$(free_port); cp=$(free_port)
start_server s-bad "$sp" "127.0.0.1:$WP" --crypt null --key one --QPP
start_client c-bad "$cp" "$sp" --crypt null --key two --QPP
got=$(timeout 30 curl -s --max-time 10 "http://127.0.0.1:$cp/blob" | sha256sum | cut -d' ' -f1)
[ "$got" != "$WANT" ] || fail "QPP with different keys delivered the file intact"
echo "ok"
