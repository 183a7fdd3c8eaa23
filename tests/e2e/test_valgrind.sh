#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The basic end-to-end transfer with ktun-client and ktun-server both under valgrind
# (memcheck): a small transfer each way with sha256 check, a few concurrent streams, then
# SIGTERM. Both must exit 0 with no memory error and no definite or indirect leak.
# Skipped (77) for the sanitizer build (ASan and valgrind do not mix) or without valgrind.
set -u
source "$(dirname "$0")/lib.sh"
[ "$BUILD" = build ] || { echo "sanitizer build: valgrind skipped"; exit 77; }
command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 77; }
VG=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no)

for mode in aes xsalsa20-poly1305; do
    echo "== $mode"
    ARGS=(--key vg-secret --crypt "$mode" --mode fast3 --sndwnd 256 --rcvwnd 256 --quiet)
    start_echo "echo-$mode"
    SP=$(free_port); CP=$(free_port)
    spawn "srv-$mode" "${VG[@]}" --log-file="$tmp/vg-srv-$mode.txt" \
        "$SERVER" -l "127.0.0.1:$SP" -t "$ECHO" "${ARGS[@]}"
    SPID=$LASTPID
    wait_log "srv-$mode" 'server: listening' 300
    spawn "cli-$mode" "${VG[@]}" --log-file="$tmp/vg-cli-$mode.txt" \
        "$CLIENT" -l "127.0.0.1:$CP" -r "127.0.0.1:$SP" "${ARGS[@]}"
    CPID=$LASTPID
    wait_log "cli-$mode" 'client: listening' 300
    check_streams "$mode: transfer under valgrind" "$CP" 110 --bytes 262144 --streams 4
    kill -USR1 "$SPID" "$CPID"
    wait_log "srv-$mode" 'snmp: Bytes'
    wait_log "cli-$mode" 'snmp: Bytes'
    stop_pid "$CPID"; crc=$?
    stop_pid "$SPID"; src=$?
    for f in "$tmp/vg-cli-$mode.txt" "$tmp/vg-srv-$mode.txt"; do
        [ -s "$f" ] && { echo "--- $f"; head -n 60 "$f"; }
    done
    [ "$crc" -eq 0 ] || fail "$mode: client exit $crc under valgrind (99: memcheck errors)"
    [ "$src" -eq 0 ] || fail "$mode: server exit $src under valgrind (99: memcheck errors)"
    echo "$mode: client and server exited 0, no memcheck errors, no leaks"
done
echo "ok"
