# SPDX-License-Identifier: MIT
# shellcheck shell=sh
# Stand-in for the parts of OpenWrt's /lib/functions.sh that /etc/init.d/kcptun uses
# (config_load, config_foreach, config_get, config_get_bool), for tests on machines without
# OpenWrt's uci (Debian packages none). As on OpenWrt, the UCI file is read through the shell:
# `uci export` prints "config TYPE 'NAME'" / "option NAME 'VALUE'" / "list NAME 'VALUE'" lines
# that functions.sh evaluates with its config/option/list functions; UCI's file syntax (single
# or double quotes, bare words, # comments) is that same shell syntax, so the file itself is
# sourced here with equivalent functions. Anonymous sections get uci's cfgNNxxxx-style names.
# Options are stored as CONFIG_<section>_<option> and section order is kept, as functions.sh
# does. UCI_CONFIG_DIR (default /etc/config) is where config_load looks.

CONFIG_SECTIONS=""
CONFIG_SECTION=""
CONFIG_NUM=0

config() {
	local type="$1" name="$2"
	CONFIG_NUM=$((CONFIG_NUM + 1))
	[ -n "$name" ] || name=$(printf 'cfg%02x%04x' "$CONFIG_NUM" "$((CONFIG_NUM * 4099 % 65536))")
	CONFIG_SECTION="$name"
	CONFIG_SECTIONS="$CONFIG_SECTIONS $name"
	eval "CONFIG_${name}_TYPE=\$type"
}

option() {
	[ -n "$CONFIG_SECTION" ] || return 1
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}

# Lists: kept as space-separated items (functions.sh's default list separator).
list() {
	local cur
	[ -n "$CONFIG_SECTION" ] || return 1
	eval "cur=\${CONFIG_${CONFIG_SECTION}_$1:-}"
	eval "CONFIG_${CONFIG_SECTION}_$1=\${cur:+\$cur }\$2"
}

config_load() {
	local f="${UCI_CONFIG_DIR:-/etc/config}/$1"
	CONFIG_SECTIONS="" CONFIG_SECTION="" CONFIG_NUM=0
	[ -r "$f" ] || return 1
	# shellcheck disable=SC1090
	. "$f"
	CONFIG_SECTION=""
}

config_get() {
	case $# in
	2) eval "printf '%s\\n' \"\${CONFIG_${1}_${2}:-}\"" ;;
	*) eval "$1=\${CONFIG_${2}_${3}:-\${4:-}}" ;;
	esac
}

config_get_bool() {
	local _v
	config_get _v "$2" "$3" "${4:-}"
	case "$_v" in
	1 | on | true | yes | enabled) _v=1 ;;
	0 | off | false | no | disabled) _v=0 ;;
	*) _v="${4:-}" ;;
	esac
	eval "$1=\$_v"
}

config_foreach() {
	local fn="$1" type="${2:-}" s t
	[ $# -ge 1 ] && shift
	[ $# -ge 1 ] && shift
	for s in $CONFIG_SECTIONS; do
		eval "t=\${CONFIG_${s}_TYPE}"
		[ -z "$type" ] || [ "$t" = "$type" ] || continue
		"$fn" "$s" "$@"
	done
}
