#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make install` into a scratch prefix: the multi-call binary and its links, man pages that
# render without warnings and name every flag of --help, hardened systemd units that
# systemd-analyze accepts, 0600 example configurations; then a transfer between the installed
# programs started as the units start them (-c CONFIG), one of them under its kcptun name,
# and the multi-call binary's role dispatch and errors.
set -u
source "$(dirname "$0")/lib.sh"
KTUN=$BIN/ktun
[ -x "$KTUN" ] || fail "missing $KTUN"
P=$tmp/prefix

echo "== make install"
make -s install KTUN_BIN="$KTUN" PREFIX="$P" SYSCONFDIR="$P/etc" KCPTUN_LINKS=1 \
    >"$tmp/install.log" 2>&1 || fail "make install"
for f in bin/ktun share/man/man1/ktun-client.1 share/man/man1/ktun-server.1 \
         lib/systemd/system/ktun-client.service lib/systemd/system/ktun-server.service \
         lib/systemd/system/ktun-client@.service lib/systemd/system/ktun-server@.service; do
    [ -f "$P/$f" ] || fail "not installed: $f"
done
for l in ktun-client ktun-server kcptun-client kcptun-server; do
    [ "$(readlink "$P/bin/$l")" = ktun ] || fail "$l is not a link to ktun"
done
for f in client server; do
    [ "$(stat -c %a "$P/etc/ktun/$f.json")" = 600 ] || fail "$f.json is not mode 0600"
done
echo "changed" >"$P/etc/ktun/client.json"
make -s install KTUN_BIN="$KTUN" PREFIX="$P" SYSCONFDIR="$P/etc" >/dev/null 2>&1 || fail "reinstall"
grep -q changed "$P/etc/ktun/client.json" || fail "make install overwrote a configuration"
cp examples/client.json "$P/etc/ktun/client.json"

echo "== man pages"
for role in client server; do
    page=$P/share/man/man1/ktun-$role.1
    # every long flag of --help is documented
    flags=$("$P/bin/ktun-$role" --help | grep -oE '^  (-[a-z], )?--[A-Za-z0-9_-]+(, --[A-Za-z0-9_-]+)?' |
            grep -oE -- '--[A-Za-z0-9_-]+' | sort -u)
    [ -n "$flags" ] || fail "ktun-$role --help lists no flags"
    for f in $flags; do
        grep -q -- "\\\\-\\\\-${f#--}\\b" "$page" || fail "ktun-$role.1 does not document $f"
    done
    if command -v man >/dev/null; then
        warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
        [ -z "$warn" ] || fail "ktun-$role.1: $warn"
    fi
done

echo "== systemd units"
for u in "$P"/lib/systemd/system/*.service; do
    grep -q "^ExecStart=$P/bin/ktun-" "$u" || fail "$u: ExecStart path"
    for k in DynamicUser=yes ProtectSystem=strict 'CapabilityBoundingSet=$' LimitNOFILE= \
             NoNewPrivileges=yes; do
        grep -q "^$k" "$u" || fail "$u: no $k"
    done
done
if command -v systemd-analyze >/dev/null; then
    out=$(MANPATH=$P/share/man systemd-analyze verify "$P"/lib/systemd/system/ktun-client.service \
          "$P"/lib/systemd/system/ktun-server@.service 2>&1 | grep -v "Command 'man")
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
fi

echo "== transfer between the installed programs, started as the units do"
start_echo echo
SP=$(free_port); CP=$(free_port)
cat >"$tmp/server.json" <<JSON
{ "listen": "127.0.0.1:$SP", "target": "$ECHO", "key": "install-test", "crypt": "aes",
  "mode": "fast3" }
JSON
cat >"$tmp/client.json" <<JSON
{ "localaddr": "127.0.0.1:$CP", "remoteaddr": "127.0.0.1:$SP", "key": "install-test",
  "crypt": "aes", "mode": "fast3" }
JSON
spawn server "$P/bin/ktun-server" -c "$tmp/server.json"
SPID=$LASTPID
wait_log server 'server: listening'
spawn client "$P/bin/kcptun-client" -c "$tmp/client.json"
CPID=$LASTPID
wait_log client 'client: listening'
check_streams "transfer" "$CP" 50 --bytes 2000000 --streams 3
stop_pid "$CPID" || fail "client exit status"
stop_pid "$SPID" || fail "server exit status"

echo "== role dispatch"
"$KTUN" client --help | head -1 | grep -q 'Usage: ktun-client' || fail "ktun client --help"
"$KTUN" server --version | grep -q '^kcptun version [0-9]* (ktun-server ' || fail "ktun server --version"
cp "$KTUN" "$tmp/server_linux_amd64"
"$tmp/server_linux_amd64" --help | head -1 | grep -q 'Usage: ktun-server' || fail "release name"
"$KTUN" --help | grep -q 'ktun client' || fail "ktun --help"
"$KTUN" >/dev/null 2>&1; [ $? -eq 2 ] || fail "ktun without a role: status not 2"
"$KTUN" relay >/dev/null 2>"$tmp/err"; [ $? -eq 2 ] || fail "unknown role: status not 2"
grep -q 'unknown role "relay"' "$tmp/err" || fail "unknown role message"
"$KTUN" client --mtu 5 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad flag through ktun: status not 2"
echo "PASS"
