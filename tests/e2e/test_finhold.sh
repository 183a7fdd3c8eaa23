#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server's automatic FIN hold (--closewait -1, the default): after a client that
# half-closed first, an smux v2 server holds its FIN until the client has read everything.
# A ktun client reports that as it drains (an UPD), so the echo of a half-closing client ends
# at once; with kcptun's explicit --closewait 2 it ends 2 s later; with smux v1 at once.
set -u
source "$(dirname "$0")/lib.sh"
start_echo echo

# eof_after PORT [PAUSE_S]: writes 300 kB, (reads the whole echo and waits PAUSE_S,) half-closes,
# reads the echo to EOF; prints "BYTES SECONDS" (the bytes of the whole echo).
eof_after() {
    timeout 40 python3 - "$1" "${2:-0}" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
pause = float(sys.argv[2])
s.sendall(b"y" * 300000)
early = 0
if pause > 0:
    # The reader drains everything before its half-close: its FIN must report the drain.
    while early < 300000:
        b = s.recv(65536)
        if not b:
            break
        early += len(b)
    time.sleep(pause)
s.shutdown(socket.SHUT_WR)
t0 = time.time(); got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
print("%d %.2f" % (early + got, time.time() - t0))
PY
}

# run NAME MAX_S MIN_S SERVER_ARGS -- CLIENT_ARGS  (PAUSE=S: see eof_after)
run() {
    local name=$1 max=$2 min=$3; shift 3
    local sargs=() cargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
    shift
    cargs=("$@")
    local sp cp
    sp=$(free_port); cp=$(free_port)
    start_server "s-$name" "$sp" "$ECHO" --key fh "${sargs[@]}"
    start_client "c-$name" "$cp" "$sp" --key fh "${cargs[@]}"
    local took; took=$(eof_after "$cp" "${PAUSE:-0}")
    echo "$name: echoed bytes, seconds to EOF: $took"
    [ "${took% *}" = 300000 ] || fail "$name: echo incomplete ($took)"
    python3 -c "import sys; t = float('${took#* }'); sys.exit(0 if $min <= t <= $max else 1)" ||
        fail "$name: EOF after ${took#* } s, want $min..$max s"
}

run v2-auto 1.5 0 --smuxver 2 -- --smuxver 2
PAUSE=0.3 run v2-auto-drained 1.5 0 --smuxver 2 -- --smuxver 2
run v1-auto 1.5 0 --smuxver 1 -- --smuxver 1
run v2-closewait2 6 1.8 --smuxver 2 --closewait 2 -- --smuxver 2
run v2-closewait0 1.5 0 --smuxver 2 --closewait 0 -- --smuxver 2
grep -q 'closewait: -1' "$tmp/s-v2-auto.log" || fail "the default --closewait is not -1"
echo ok
