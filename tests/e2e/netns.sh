# SPDX-License-Identifier: MIT
# Two network namespaces joined by a veth pair, for the fake-TCP scripts (sourced after
# tests/e2e/lib.sh, not run). Skips (77) when not root or without ip and iptables.
#
# netns_pair PREFIX V4NET [V6NET]: creates the namespaces NC=PREFIX-c$$ (client) and
#   NS=PREFIX-s$$ (server) joined by the veth pair VC=PREFIX-$$a / VS=PREFIX-$$b, addressed
#   V4NET.1/24 and V4NET.2/24 (and V6NET::1/64 and V6NET::2/64), lo and the pair up; they
#   are removed on every exit path (on_exit).
# inc CMD... / ins CMD...: CMD in the client's / the server's namespace.
# fw_state: every firewall rule of both namespaces (without counters) and how many ktun-tcp
#   rules the host has, to compare before and after.
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (network namespaces, raw sockets)"; exit 77; }
for t in ip iptables ip6tables iptables-save ip6tables-save; do
    command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done

inc() { ip netns exec "$NC" "$@"; }
ins() { ip netns exec "$NS" "$@"; }

netns_pair() {
    NC=$1-c$$
    NS=$1-s$$
    VC=$1-$$a
    VS=$1-$$b
    on_exit ip netns del "$NC" 2>/dev/null
    on_exit ip netns del "$NS" 2>/dev/null
    ip netns add "$NC" || { echo "skip: cannot create network namespaces"; exit 77; }
    ip netns add "$NS" || exit 1
    ip link add "$VC" netns "$NC" type veth peer name "$VS" netns "$NS" || fail "veth"
    inc ip link set lo up
    ins ip link set lo up
    inc ip addr add "$2.1/24" dev "$VC"
    ins ip addr add "$2.2/24" dev "$VS"
    if [ -n "${3:-}" ]; then
        inc ip -6 addr add "$3::1/64" dev "$VC" nodad
        ins ip -6 addr add "$3::2/64" dev "$VS" nodad
    fi
    inc ip link set "$VC" up
    ins ip link set "$VS" up
}

fw_state() {
    local ns t
    for ns in "$NC" "$NS"; do
        for t in iptables-save ip6tables-save; do
            ip netns exec "$ns" $t | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
        done
    done
    iptables-save | grep -c ktun-tcp
    ip6tables-save | grep -c ktun-tcp
}
