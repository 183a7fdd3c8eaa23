#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# OpenWrt: dist/openwrt/ktun/files/uci.sh turns /etc/config/kcptun sections (the former kcptun
# package's option names) into ktun arguments. Checked with a stand-in for OpenWrt's
# functions.sh (tests/e2e/openwrt/uci-standin.sh) under busybox-like POSIX sh (dash): the
# translation of a sample file, the init script's procd calls (command, KCPTUN_KEY,
# reload_signal HUP, wan trigger), then a tunnel started from a UCI file's translation.
set -u
source "$(dirname "$0")/lib.sh"
KTUN=$BIN/ktun
D=tests/e2e/openwrt
F=dist/openwrt/ktun/files
SH=$(command -v dash || command -v sh)

echo "== translation of $D/kcptun ($SH)"
UCI_CONFIG_DIR=$D "$SH" -c '
. "$1"; . "$2"
config_load kcptun || exit 1
show() {
    args=$(ktun_uci_args "$1" "$2") || return 0
    echo "$2 $1"; printf "%s\n" "$args"
    config_get key "$1" key; echo "key=$key"
}
config_foreach show server server
config_foreach show client client
' sh "$D/uci-standin.sh" "$F/uci.sh" >"$tmp/got" 2>"$tmp/err" || fail "translation: $(cat "$tmp/err")"
diff -u "$D/kcptun.expected" "$tmp/got" || fail "translation differs from $D/kcptun.expected"

echo "== every translated command line is valid for ktun"
# --version stops after parsing (and parsing checks each value); validation needs a run:
# start each one with its addresses moved to loopback free ports and wait for "listening".
n=0
while IFS= read -r line; do
    case $line in server\ *|client\ *) ;; *) continue ;; esac
    role=${line%% *} sec=${line#* }
    mapfile -t args < <(sed -n "/^$role $sec\$/,/^key=/p" "$tmp/got" | sed '1d;$d')
    for i in "${!args[@]}"; do
        case ${args[$i]} in
        --listen|--localaddr) args[i+1]=127.0.0.1:$(free_port) ;;
        --remoteaddr) args[i+1]=127.0.0.1:$(free_port) ;;
        --snmplog) args[i+1]=$tmp/snmp.log ;;
        esac
    done
    spawn "$role-$sec" env KCPTUN_KEY=k "$KTUN" "$role" "${args[@]}"
    wait_log "$role-$sec" "$role: listening"
    stop_pid "$LASTPID" || fail "$role $sec: exit status"
    n=$((n + 1))
done <"$tmp/got"
[ "$n" -eq 3 ] || fail "expected 3 enabled complete sections, ran $n"

echo "== init script: procd calls"
sed "s|^\. /usr/share/ktun/uci.sh|. $F/uci.sh|" "$F/kcptun.init" >"$tmp/init"
UCI_CONFIG_DIR=$D "$SH" -c '
. "$1"
procd_open_instance() { echo "instance $1"; }
procd_set_param() { p=$1; shift; printf "%s" "$p"; for a in "$@"; do printf " <%s>" "$a"; done; echo; }
procd_close_instance() { echo end; }
procd_add_reload_interface_trigger() { echo "interface-trigger $1"; }
procd_add_reload_trigger() { echo "config-trigger $1"; }
. "$2"
start_service
service_triggers
' sh "$D/uci-standin.sh" "$tmp/init" >"$tmp/procd" 2>"$tmp/err" || fail "init script: $(cat "$tmp/err")"
grep -q '^instance client.office$' "$tmp/procd" || fail "no client.office instance"
grep -q '^command </usr/bin/ktun> <client> <--localaddr> <:2222> <--remoteaddr> <\[2001:db8::1\]:4000>' \
    "$tmp/procd" || fail "client.office command line"
grep -q "^env <KCPTUN_KEY=it's a key with spaces>" "$tmp/procd" || fail "key in the environment"
# no section's key may show in a command line (ps shows those): every key of the sample
while IFS= read -r k; do
    grep '^command' "$tmp/procd" | grep -qF -- "$k" && fail "the key '$k' shows in a command line"
done < <(sed -n 's/^key=//p' "$D/kcptun.expected" | sort -u)
[ "$(grep -c '^reload_signal <HUP>$' "$tmp/procd")" -eq 3 ] || fail "reload_signal HUP per instance"
[ "$(grep -c '^instance ' "$tmp/procd")" -eq 3 ] || fail "3 instances expected"
grep -q '^user <nobody>$' "$tmp/procd" || fail "user"
grep -q '^interface-trigger wan$' "$tmp/procd" || fail "wan interface trigger"
grep -q '^config-trigger kcptun$' "$tmp/procd" || fail "config trigger"

echo "== a tunnel from a UCI file"
start_echo echo
SP=$(free_port); CP=$(free_port)
mkdir "$tmp/etc"
cat >"$tmp/etc/kcptun" <<UCI
config server
	option disabled 0
	option listen $SP
	option target '${ECHO%:*}'
	option target_port ${ECHO##*:}
	option crypt 'salsa20'
	option key 'uci test key'
	option mode 'fast2'
	option nocomp 1

config client 'router'
	option bind_address '127.0.0.1'
	option local_port $CP
	option server '127.0.0.1'
	option server_port $SP
	option crypt 'salsa20'
	option key 'uci test key'
	option mode 'fast2'
	option nocomp 1
UCI
for role in server client; do
    UCI_CONFIG_DIR=$tmp/etc "$SH" -c '
. "$1"; . "$2"; config_load kcptun
s() { ktun_uci_args "$1" "$2" && { config_get k "$1" key; echo "$k" >"$3.key"; }; }
config_foreach s "$4" "$4" "$3"
' sh "$D/uci-standin.sh" "$F/uci.sh" "$tmp/$role" "$role" >"$tmp/$role.args" || fail "$role translation"
    mapfile -t args <"$tmp/$role.args"
    spawn "uci-$role" env KCPTUN_KEY="$(cat "$tmp/$role.key")" "$KTUN" "$role" "${args[@]}"
    wait_log "uci-$role" "$role: listening"
done
check_streams "transfer through the UCI-configured tunnel" "$CP" 50 --bytes 1000000 --streams 2
echo PASS
