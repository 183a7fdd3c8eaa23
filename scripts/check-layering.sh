#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that the pure cores stay pure: no core source, nor any project header it includes,
# includes libev, a socket or network header, a clock or sleep header, or a shell header, and
# no core calls a clock, a sleep, libev or a socket function. Comments are ignored.
#
#   scripts/check-layering.sh              checks the Makefile's CORE_SRCS
#   scripts/check-layering.sh FILE...      checks these files as cores
#   scripts/check-layering.sh --self-test  proves that a violation is caught
#
# Prints one line per violation and exits 1 if there is any, else 0.
set -u
cd "$(dirname "$0")/.."

# Headers a core may not include (system headers by name, project headers by path).
BAD_SYS='ev\.h|sys/socket\.h|sys/un\.h|netinet/[a-z_]+\.h|arpa/[a-z_]+\.h|netdb\.h|net/[a-z_]+\.h|ifaddrs\.h|time\.h|sys/time\.h|sys/timerfd\.h|sys/epoll\.h|sys/select\.h|poll\.h|signal\.h|unistd\.h'
BAD_OWN='common/(shell|sess|stream|net|log|snmp|config)\.h'
# Functions a core may not call.
BAD_CALLS='clock_gettime|gettimeofday|time|clock|timespec_get|sleep|usleep|nanosleep|ev_[a-z_]+|socket|bind|connect|listen|accept4?|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|getaddrinfo|poll|select|epoll_wait'

# Prints the text of |file| without comments (directives kept, nothing expanded).
strip_comments() {
    gcc -fpreprocessed -dD -E -P -x c "$1" 2>/dev/null
}

# Prints the project headers |file| includes ("dir/name.h" that exist), one per line.
own_includes() {
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1" |
        while read -r h; do [ -f "$h" ] && echo "$h"; done
}

# Checks one file; prints violations; returns 1 if any.
check_file() {
    local f=$1 core=$2 bad=0 text
    text=$(strip_comments "$f")
    while read -r inc; do
        [ -n "$inc" ] || continue
        echo "$f: core $core includes <$inc>"
        bad=1
    done < <(printf '%s\n' "$text" |
             sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1/p' |
             grep -E -x "$BAD_SYS")
    while read -r inc; do
        [ -n "$inc" ] || continue
        echo "$f: core $core includes the shell header \"$inc\""
        bad=1
    done < <(own_includes "$f" | grep -E -x "$BAD_OWN")
    while read -r call; do
        [ -n "$call" ] || continue
        echo "$f: core $core calls $call()"
        bad=1
    done < <(printf '%s\n' "$text" | grep -v '^[[:space:]]*#' |
             grep -o -E "(^|[^A-Za-z0-9_.>])($BAD_CALLS)[[:space:]]*\(" |
             sed -E 's/^[^A-Za-z_]*//; s/[[:space:]]*\($//' | sort -u)
    return $bad
}

# Checks each core and every project header reachable from it (each file once).
check_cores() {
    local bad=0 f h
    declare -A seen=()
    local -a todo=()
    for f in "$@"; do
        todo+=("$f|$f")
    done
    while [ ${#todo[@]} -gt 0 ]; do
        local item=${todo[0]}
        todo=("${todo[@]:1}")
        f=${item%%|*}
        local core=${item#*|}
        [ -n "${seen[$f]:-}" ] && continue
        seen[$f]=1
        if [ ! -f "$f" ]; then
            echo "$f: no such file"
            bad=1
            continue
        fi
        check_file "$f" "$core" || bad=1
        # a core's own header, and the project headers it includes, are held to the same rule
        [ "${f%.c}" != "$f" ] && [ -f "${f%.c}.h" ] && todo+=("${f%.c}.h|$core")
        while read -r h; do
            echo "$h" | grep -q -E -x "$BAD_OWN" && continue
            todo+=("$h|$core")
        done < <(own_includes "$f")
    done
    return $bad
}

self_test() {
    local dir rc
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' RETURN
    mkdir -p "$dir/common"
    printf '#include <stdint.h>\n/* clock_gettime() in a comment is fine */\nint ok(int x) { return x + 1; }\n' \
        >"$dir/common/good.c"
    printf '#include <ev.h>\n#include <time.h>\n#include "common/log.h"\nlong f(void) { return time(NULL) + clock(); }\n' \
        >"$dir/common/bad.c"
    (cd "$dir" && mkdir -p common && touch common/log.h && check_cores common/good.c) >/dev/null || {
        echo "self-test: a clean core was flagged"
        return 1
    }
    local out
    out=$(cd "$dir" && check_cores common/bad.c)
    rc=$?
    for want in '<ev.h>' '<time.h>' '"common/log.h"' 'time()' 'clock()'; do
        if ! printf '%s\n' "$out" | grep -q -F "$want"; then
            echo "self-test: missed $want in: $out"
            return 1
        fi
    done
    [ $rc -ne 0 ] || { echo "self-test: violations did not fail the check"; return 1; }
    echo "self-test: ok"
}

if [ "${1:-}" = "--self-test" ]; then
    self_test
    exit $?
fi
if [ $# -gt 0 ]; then
    cores=("$@")
else
    read -r -a cores <<<"$(make --no-print-directory -s print-CORE_SRCS)"
fi
if [ ${#cores[@]} -eq 0 ]; then
    echo "no core sources found"
    exit 1
fi
if check_cores "${cores[@]}"; then
    echo "layering: ${#cores[@]} cores clean"
    exit 0
fi
exit 1
