#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages from a copy of this tree (dpkg-buildpackage -us -uc -b), checks
# them with lintian (errors fail), installs ktun_*.deb on this machine (root), then runs
# loopback transfers with the installed programs started as the systemd units start them
# (-c with a copy of the configuration, an unprivileged user, no capabilities): ktun-client
# to ktun-server, and Debian's kcptun-client to the installed ktun-server when present.
# The package is purged again on every exit path; a ktun package installed beforehand makes
# the script refuse (exit 2). ktun-kcptun-compat is built and inspected, not installed (it
# replaces Debian's kcptun, which the interoperability tests use).
#   scripts/deb-check.sh [--keep DIR]   (--keep: leave the .deb files in DIR)
# Installs dpkg-dev, debhelper and lintian when missing. DEB_BUILD_OPTIONS=nocheck skips the
# unit suite inside the package build.
set -u
cd "$(dirname "$0")/.."
KEEP=
[ "${1:-}" = --keep ] && KEEP=$2
[ "$(id -u)" -eq 0 ] || { echo "deb-check: needs root (it installs the package)"; exit 2; }
# Packaging tools, installed when missing (like scripts/deps.sh, with apt-get).
source scripts/pkgs.sh
mapfile -t missing < <(pkgs_missing dpkg-dev debhelper lintian)
if [ ${#missing[@]} -gt 0 ]; then
    echo "deb-check: installing ${missing[*]}"
    pkgs_install --no-recommends "${missing[@]}" >/dev/null ||
        { echo "deb-check: apt-get install failed"; exit 2; }
fi
if dpkg-query -W -f='${Status}' ktun 2>/dev/null | grep -q 'install ok'; then
    echo "deb-check: a ktun package is installed already; not touching it"
    exit 2
fi
tmp=$(mktemp -d)
installed=
cleanup() {
    [ -n "$installed" ] && apt-get purge -y -q -o DPkg::Lock::Timeout=300 ktun >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "deb-check: FAIL: $*"; exit 1; }
t0=$(date +%s)

echo "== dpkg-buildpackage"
mkdir "$tmp/src"
tar --exclude='./build*' --exclude=./bin --exclude=./.git -cf - . | tar -x -C "$tmp/src"
(cd "$tmp/src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 ||
    { tail -n 30 "$tmp/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$tmp"/ktun_*.deb) && compat=$(ls "$tmp"/ktun-kcptun-compat_*.deb) || fail "no .deb built"
echo "built: $(basename "$deb") $(basename "$compat") ($(($(date +%s) - t0)) s)"
[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$tmp"/*.deb "$KEEP"/

if command -v lintian >/dev/null; then
    echo "== lintian"
    lintian --fail-on error "$tmp"/ktun_*.changes 2>&1 | grep -v 'root privileges' || true
    lintian --fail-on error "$tmp"/ktun_*.changes >/dev/null 2>&1 || fail "lintian reports errors"
fi

echo "== contents"
dpkg-deb -c "$compat" | grep -q './usr/bin/kcptun-client -> ktun' || fail "compat: no kcptun-client link"
dpkg-deb -f "$compat" Conflicts | grep -q kcptun || fail "compat: no Conflicts: kcptun"
dpkg-deb -f "$deb" Depends | grep -q libisal || fail "Depends lacks libisal"

# apt-get installs the .deb as dpkg -i does, and waits for the dpkg lock (another apt-get
# may run beside this script, e.g. scripts/cross.sh in CI).
echo "== install ($(basename "$deb"))"
installed=1
pkgs_install --no-recommends "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "install"; }
for f in /usr/bin/ktun /usr/share/man/man1/ktun-client.1.gz /lib/systemd/system/ktun-server.service \
         /etc/ktun/client.json /etc/ktun/server.json; do
    [ -e "$f" ] || fail "not installed: $f"
done
[ "$(stat -c %a /etc/ktun/server.json)" = 600 ] || fail "/etc/ktun/server.json is not 0600"
[ "$(readlink /usr/bin/ktun-client)" = ktun ] || fail "ktun-client link"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /lib/systemd/system/ktun-client.service \
          /lib/systemd/system/ktun-server.service 2>&1)
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
fi
if command -v man >/dev/null; then
    man -w ktun-server >/dev/null 2>&1 || fail "man ktun-server not found"
fi

echo "== loopback transfer with the installed programs, as the units run them"
# As LoadCredential does: a private copy of the configuration, readable by the service user.
for role in client server; do
    python3 - "$tmp/$role.json" <<'PY'
import json, sys
json.dump({"key": "deb-check", "crypt": "aes", "mode": "fast3", "quiet": True}, open(sys.argv[1], "w"))
PY
done
chmod 0644 "$tmp"/*.json
chmod 0755 "$tmp"
RUNAS=()
command -v setpriv >/dev/null &&
    RUNAS=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs)
scripts/loopback-check.sh --client "${RUNAS[*]} /usr/bin/ktun-client -c $tmp/client.json" \
    --server "${RUNAS[*]} /usr/bin/ktun-server -c $tmp/server.json" -- --loglevel info ||
    fail "ktun-client -> ktun-server"
if command -v kcptun-client >/dev/null && ! [ "$(readlink -f "$(command -v kcptun-client)")" = /usr/bin/ktun ]; then
    scripts/loopback-check.sh --client "kcptun-client" \
        --server "${RUNAS[*]} /usr/bin/ktun-server -c $tmp/server.json" -- \
        --key deb-check --crypt aes --mode fast3 || fail "kcptun-client -> ktun-server"
fi

echo "== purge"
apt-get purge -y -q -o DPkg::Lock::Timeout=300 ktun >/dev/null 2>&1 || fail "apt-get purge ktun"
installed=
[ -e /usr/bin/ktun ] || [ -e /etc/ktun/server.json ] && fail "files left after purge"
echo "deb-check: ok ($(($(date +%s) - t0)) s)"
