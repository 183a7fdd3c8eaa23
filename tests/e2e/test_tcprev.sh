#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tcprev on loopback: serve/fetch move the seeded stream byte-exact (sha256 equal to tcpblast
# gen's), a wrong seed or length is caught, --time bounds the sender, bad flags exit 2. No root.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
REV=$BUILD/tools/tcprev
BLAST=$BUILD/tools/tcpblast
for t in "$REV" "$BLAST"; do
    [ -x "$t" ] || { echo "missing $t (run make tools)"; exit 1; }
done

source tests/e2e/proc.sh

# serve NAME ARGS...: starts tcprev serve on a free port (output in $tmp/NAME.log); sets ADDR
# and SPID.
serve() {
    local name=$1; shift
    start_listener "$name" "$REV" serve -l 127.0.0.1:0 -t 20 "$@"
    SPID=$LASTPID
}

# value FILE KEY: KEY's value on the first line of FILE that has " KEY=".
value() { field "$2" "$(grep -m 1 " $2=" "$1")"; }

# byte-exact transfer, checked three ways
want=$("$BLAST" gen -n 3M -s 9 --hash) || fail "tcpblast gen"
serve a -s 9 -n 3M
"$REV" fetch -c "$ADDR" -s 9 -n 3M -t 20 >"$tmp/a.fetch" 2>&1 || fail "fetch: $(cat "$tmp/a.fetch")"
wait "$SPID" || fail "serve exited $?"
grep -q '^serve: bytes=3145728 ' "$tmp/a.log" || fail "serve: $(cat "$tmp/a.log")"
[ "$(value "$tmp/a.fetch" bytes)" = 3145728 ] || fail "fetch bytes: $(cat "$tmp/a.fetch")"
[ "$(value "$tmp/a.fetch" verify)" = ok ] || fail "fetch verify: $(cat "$tmp/a.fetch")"
[ "$(value "$tmp/a.fetch" sha256)" = "$want" ] || fail "fetch sha256 differs from gen"
[ "$(value "$tmp/a.log" sha256)" = "$want" ] || fail "serve sha256 differs from gen"

# hash-only receiver: verify=off, same sha256
serve b -s 9 -n 3M
"$REV" fetch -c "$ADDR" -t 20 >"$tmp/b.fetch" 2>&1 || fail "fetch -hash only: $(cat "$tmp/b.fetch")"
wait "$SPID"
[ "$(value "$tmp/b.fetch" verify)" = off ] || fail "hash-only verify: $(cat "$tmp/b.fetch")"
[ "$(value "$tmp/b.fetch" sha256)" = "$want" ] || fail "hash-only sha256 differs"

# the wrong seed and the wrong length are caught
serve c -s 9 -n 1M
"$REV" fetch -c "$ADDR" -s 10 -t 20 >"$tmp/c.fetch" 2>"$tmp/c.err" && fail "wrong seed accepted"
wait "$SPID"
[ "$(value "$tmp/c.fetch" verify)" = FAIL ] || fail "wrong seed: $(cat "$tmp/c.fetch")"
grep -q 'first wrong byte at offset 0' "$tmp/c.err" || fail "wrong seed offset: $(cat "$tmp/c.err")"
serve d -s 9 -n 1M
"$REV" fetch -c "$ADDR" -s 9 -n 2M -t 20 >"$tmp/d.fetch" 2>&1 && fail "short stream accepted"
wait "$SPID"
[ "$(value "$tmp/d.fetch" bytes)" = 1048576 ] || fail "short stream: $(cat "$tmp/d.fetch")"

# --time: the sender stops after about that long, and what it sent arrives intact
serve e -s 4 -T 0.5
start=$(date +%s%N)
"$REV" fetch -c "$ADDR" -s 4 -t 20 >"$tmp/e.fetch" 2>&1 || fail "timed fetch: $(cat "$tmp/e.fetch")"
wait "$SPID"
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$ms" -lt 450 ] || [ "$ms" -ge 10000 ]; then fail "--time 0.5 took $ms ms"; fi
[ "$(value "$tmp/e.fetch" bytes)" = "$(value "$tmp/e.log" bytes)" ] || fail "timed byte counts"
[ "$(value "$tmp/e.fetch" sha256)" = "$(value "$tmp/e.log" sha256)" ] || fail "timed sha256"

# --duration bounds a serve nobody connects to
"$REV" serve -l 127.0.0.1:0 -n 1M -t 1 >/dev/null 2>"$tmp/f.err"
[ $? = 3 ] || fail "idle serve did not stop with status 3"
grep -q 'duration reached' "$tmp/f.err" || fail "idle serve message"

# bad flags
for args in "" "bogus" "serve -l 127.0.0.1:0" "serve -c 127.0.0.1:1 -n 1" "fetch -l 127.0.0.1:1" \
    "fetch -c 127.0.0.1:1 -T 1" "fetch" "serve -l 127.0.0.1:0 -n x" "fetch -c 1:2 extra"; do
    # shellcheck disable=SC2086
    "$REV" $args >/dev/null 2>&1
    [ $? = 2 ] || fail "tcprev $args: not exit 2"
done
"$REV" fetch -c nowhere -t 5 >/dev/null 2>&1
[ $? = 1 ] || fail "unresolvable address: not exit 1"
echo "tcprev: ok"
