# SPDX-License-Identifier: MIT
# shellcheck shell=sh
# UCI section -> ktun command line, for /etc/init.d/kcptun (sourced; needs config_get and
# config_get_bool from OpenWrt's /lib/functions.sh and a prior `config_load kcptun`).
#
# Options are those of OpenWrt's former kcptun packages:
#   both:    disabled key crypt mode mtu sndwnd rcvwnd datashard parityshard dscp nocomp
#            sockbuf smuxbuf keepalive snmplog snmpperiod quiet syslog user gogc
#   server:  listen (port) target target_port pprof
#   client:  bind_address local_port server server_port conn autoexpire scavengettl
# and ktun's additions: smuxver streambuf qpp qppcount loglevel.
# gogc (Go's GC knob) has no meaning for ktun and is ignored; syslog and user are the init
# script's (procd) business; the key travels in the environment (KCPTUN_KEY), never in the
# argument list that `ps` shows.

# ktun_uci_args SECTION TYPE: prints the arguments after `ktun TYPE`, one per line.
# Returns 1 (printing nothing) when the section is disabled or lacks an address.
ktun_uci_args() {
	local s="$1" type="$2" v b out=""
	config_get_bool b "$s" disabled 0
	[ "$b" = 0 ] || return 1
	case "$type" in
	server)
		local listen target target_port
		config_get listen "$s" listen
		config_get target "$s" target
		config_get target_port "$s" target_port
		[ -n "$listen" ] && [ -n "$target" ] && [ -n "$target_port" ] || return 1
		case "$target" in *:*) target="[$target]" ;; esac
		out="--listen
:$listen
--target
$target:$target_port"
		config_get_bool b "$s" pprof 0
		[ "$b" = 0 ] || out="$out
--pprof"
		;;
	client)
		local bind_address local_port server server_port
		config_get bind_address "$s" bind_address
		config_get local_port "$s" local_port
		config_get server "$s" server
		config_get server_port "$s" server_port
		[ -n "$local_port" ] && [ -n "$server" ] && [ -n "$server_port" ] || return 1
		case "$bind_address" in *:*) bind_address="[$bind_address]" ;; esac
		case "$server" in *:*) server="[$server]" ;; esac
		out="--localaddr
$bind_address:$local_port
--remoteaddr
$server:$server_port"
		for v in conn autoexpire scavengettl; do
			out="$out$(ktun_uci_value "$s" "$v")"
		done
		;;
	*) return 1 ;;
	esac
	for v in crypt mode mtu sndwnd rcvwnd datashard parityshard dscp sockbuf smuxver smuxbuf \
		streambuf keepalive snmplog snmpperiod qppcount loglevel; do
		out="$out$(ktun_uci_value "$s" "$v")"
	done
	for v in nocomp quiet; do
		config_get_bool b "$s" "$v" 0
		[ "$b" = 0 ] || out="$out
--$v"
	done
	config_get_bool b "$s" qpp 0
	[ "$b" = 0 ] || out="$out
--QPP"
	printf '%s\n' "$out"
}

# ktun_uci_value SECTION OPTION: "\n--OPTION\nVALUE" when the option is set, else nothing.
ktun_uci_value() {
	local val flag="$2"
	config_get val "$1" "$2"
	[ -n "$val" ] || return 0
	[ "$flag" = qppcount ] && flag=QPPCount
	printf '\n--%s\n%s' "$flag" "$val"
}
