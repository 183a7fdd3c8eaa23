#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Shadowsocks plugin mode (SIP003) under Debian's shadowsocks-libev: ss-server and ss-local
# start ktun-server and ktun-client as their plugin (SS_* environment, SS_PLUGIN_OPTIONS);
# a 3 MB download through ss-local's SOCKS5 port must arrive intact (sha256). A bad option makes
# the plugin exit with status 2 and one line. Skipped without ss-server/ss-local or curl.
# (SIP003u, UDP through the plugin, is not covered: ktun's plugin mode carries TCP.)
set -u
source "$(dirname "$0")/lib.sh"
for t in ss-server ss-local curl; do
    command -v "$t" >/dev/null || { echo "$t not installed"; exit 77; }
done

start_www www 3000000

OPTS='key=ss-e2e\;key;crypt=aes-128-gcm;mode=fast2;nocomp;smuxver=2'
SP=$(free_port); LP=$(free_port)
spawn ss-server ss-server -s 127.0.0.1 -p "$SP" -k sspw -m chacha20-ietf-poly1305 \
    --plugin "$PWD/$SERVER" --plugin-opts "$OPTS" -v
spawn ss-local ss-local -s 127.0.0.1 -p "$SP" -l "$LP" -b 127.0.0.1 -k sspw \
    -m chacha20-ietf-poly1305 --plugin "$PWD/$CLIENT" --plugin-opts "$OPTS" -v
wait_log ss-server 'server: listening'
wait_log ss-local 'client: listening'
grep -q 'encryption: aes-128-gcm' "$tmp/ss-server.log" || fail "options not applied on the server"
grep -q 'encryption: aes-128-gcm' "$tmp/ss-local.log" || fail "options not applied on the client"

echo "== 3 MB through ss-local's SOCKS5 port, ktun as the plugin"
# ss-local listens before its plugin does: wait until a request goes through
socks_up() {
    curl -s -o /dev/null --max-time 2 --socks5-hostname "127.0.0.1:$LP" "http://127.0.0.1:$WP/"
}
wait_until 50 socks_up || fail "nothing answers through ss-local's SOCKS5 port"
got=$(timeout 60 curl -s --max-time 50 --socks5-hostname "127.0.0.1:$LP" \
      "http://127.0.0.1:$WP/blob" | sha256sum | cut -d' ' -f1)
[ "$got" = "$WANT" ] || fail "download through shadowsocks: sha256 $got, want $WANT"
grep -q 'sess: opened' "$tmp/ss-server.log" || fail "the ktun plugin carried nothing"

echo "== a bad option: exit 2, one line"
out=$(SS_REMOTE_HOST=127.0.0.1 SS_REMOTE_PORT=1 SS_LOCAL_HOST=127.0.0.1 SS_LOCAL_PORT=2 \
      SS_PLUGIN_OPTIONS='mtu=big' timeout 10 "$CLIENT" 2>&1); rc=$?
echo "$out"
[ "$rc" -eq 2 ] || fail "bad option: exit $rc"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "bad option: more than one line"
grep -q 'SS_PLUGIN_OPTIONS' <<<"$out" || fail "bad option: reason does not name it"
echo "ok"
