#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real OpenSSH through the tunnel: an sshd of our own on 127.0.0.1 (host key, user key and
# config in the temp dir, key authentication only, a free high port; no system service or file
# is touched), ktun-server in front of it, ktun-client in front of ssh/scp. Checks, directly and
# through a lossy relay (udpfw): scp of a few MB up and down (sha256 on both ends), and
# `ssh ... cat` echoing timed lines back byte for byte. Where Debian's kcptun is installed, the
# relay case runs through it too and both print their times as `bench:` lines (a comparison for
# the reader, not an assertion: speed is judged by scripts/bench --sweep). Skipped (77) only
# without sshd/ssh/scp.
set -u
source "$(dirname "$0")/lib.sh"
SSHD=/usr/sbin/sshd
for b in "$SSHD" ssh scp ssh-keygen; do
    command -v "$b" >/dev/null || { echo "skip: $b not installed (openssh-server/-client)"; exit 77; }
done
FW=$TOOLS/udpfw
[ -x "$FW" ] || fail "missing $FW (run make tools)"
ECHO_TOOL=scripts/bench-sshecho.py
MB=${E2E_SSH_MB:-4}
USER_NAME=$(id -un)

ssh-keygen -q -t ed25519 -N '' -C ktun-test-host -f "$tmp/host_key" || fail "host key"
ssh-keygen -q -t ed25519 -N '' -C ktun-test-user -f "$tmp/user_key" || fail "user key"
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
sport=$(free_port)
cat >"$tmp/sshd_config" <<EOF
Port $sport
ListenAddress 127.0.0.1
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $USER_NAME
UsePAM no
StrictModes no
UseDNS no
PidFile none
Subsystem sftp internal-sftp
EOF
"$SSHD" -t -f "$tmp/sshd_config" >"$tmp/sshd-check.log" 2>&1 ||
    grep -q 'privilege separation directory' "$tmp/sshd-check.log" ||
    fail "sshd rejects the config: $(cat "$tmp/sshd-check.log")"

# As root, sshd needs its privilege separation directory /run/sshd, which only exists where the
# system's sshd ran: give it a private /run in a mount namespace of its own instead.
if [ "$(id -u)" -eq 0 ]; then
    command -v unshare >/dev/null || fail "unshare missing (util-linux)"
    spawn sshd unshare --mount --propagation private sh -c \
        'mount -t tmpfs -o mode=755 ktun-test-run /run && mkdir -m 755 /run/sshd &&
         exec "$0" -D -e -f "$1"' "$SSHD" "$tmp/sshd_config"
else
    spawn sshd "$SSHD" -D -e -f "$tmp/sshd_config"
fi
SSHD_PID=$LASTPID
sshd_up() {
    kill -0 "$SSHD_PID" 2>/dev/null || fail "sshd exited: $(cat "$tmp/sshd.log")"
    listens t "$sport"
}
wait_until 100 sshd_up || fail "sshd does not listen on port $sport"

# ssh_opts PORT: client options that read nothing from ~/.ssh and trust only our host key.
ssh_opts() {
    echo "[127.0.0.1]:$1 $(cut -d' ' -f1,2 "$tmp/host_key.pub")" >"$tmp/known_hosts"
    SSH_OPTS=(-F /dev/null -i "$tmp/user_key" -o IdentitiesOnly=yes -o BatchMode=yes
        -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$tmp/known_hosts"
        -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=30 -o LogLevel=ERROR)
}

# Through no tunnel first: the sshd and the keys work.
ssh_opts "$sport"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$sport" "$USER_NAME@127.0.0.1" echo ssh-ok 2>&1)
[ "$out" = ssh-ok ] || fail "ssh without the tunnel: $out"

head -c "$((MB * 1048576))" /dev/urandom >"$tmp/up.bin"
head -c "$((MB * 1048576))" /dev/urandom >"$tmp/down.src"
sum() { sha256sum "$1" | cut -d' ' -f1; }

run_case() { # TITLE RELAY-ARGS (empty: no relay) TUNNEL-ARGS [ktun|kcptun]
    echo "== $1"
    local sys=${4:-ktun} tag=${5:-} up cp rpid="" t0 t1 t2 line spid cpid
    up=$(free_port); cp=$(free_port)
    local to=$up
    if [ -n "$2" ]; then
        # shellcheck disable=SC2086
        start_listener relay "$FW" --listen 127.0.0.1:0 --upstream "127.0.0.1:$up" $2 \
            --seed 5 --duration 120
        rpid=$LASTPID
        to=$PORT
    fi
    if [ "$sys" = ktun ]; then
        # shellcheck disable=SC2086
        start_server server "$up" "127.0.0.1:$sport" --key ssh --quiet $3
        spid=$LASTPID
        # shellcheck disable=SC2086
        start_client client "$cp" "$to" --key ssh --quiet $3
        cpid=$LASTPID
    else
        # shellcheck disable=SC2086
        spawn server kcptun-server -l "127.0.0.1:$up" -t "127.0.0.1:$sport" --key ssh --quiet $3
        spid=$LASTPID
        wait_port u "$up"
        # shellcheck disable=SC2086
        spawn client kcptun-client -l "127.0.0.1:$cp" -r "127.0.0.1:$to" --key ssh --quiet $3
        cpid=$LASTPID
        wait_port t "$cp"
    fi
    ssh_opts "$cp"
    rm -f "$tmp/up.got" "$tmp/down.got"
    t0=$(date +%s.%N)
    timeout 90 scp -q -P "$cp" "${SSH_OPTS[@]}" "$tmp/up.bin" \
        "$USER_NAME@127.0.0.1:$tmp/up.got" || fail "$1: scp up"
    t1=$(date +%s.%N)
    timeout 90 scp -q -P "$cp" "${SSH_OPTS[@]}" "$USER_NAME@127.0.0.1:$tmp/down.src" \
        "$tmp/down.got" || fail "$1: scp down"
    t2=$(date +%s.%N)
    [ "$(sum "$tmp/up.got")" = "$(sum "$tmp/up.bin")" ] || fail "$1: scp up: sha256 differs"
    [ "$(sum "$tmp/down.got")" = "$(sum "$tmp/down.src")" ] || fail "$1: scp down: sha256 differs"
    local ups downs
    ups=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
    downs=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2f", b - a}')
    echo "scp ${MB} MiB up $ups s, down $downs s, sha256 ok"
    line=$(timeout 90 python3 "$ECHO_TOOL" --count 100 --interval 10 --size 64 --duration 80 -- \
        ssh "${SSH_OPTS[@]}" -p "$cp" "$USER_NAME@127.0.0.1" cat) ||
        fail "$1: ssh cat echo: $line"
    echo "$line"
    if [ -n "$tag" ]; then
        echo "bench: e2e.openssh.$tag.$sys.scp_up $ups s"
        echo "bench: e2e.openssh.$tag.$sys.scp_down $downs s"
        echo "bench: e2e.openssh.$tag.$sys.echo_p99 $(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$line") ms"
    fi
    if [ "$sys" = ktun ]; then
        stop_pid "$cpid" || fail "$1: client exit status"
        stop_pid "$spid" || fail "$1: server exit status"
    else
        stop_all "$cpid" "$spid"
    fi
    [ -z "$rpid" ] || stop_all "$rpid"
}

run_case "loopback, fast3, FEC 10/3" "" "--mode fast3 --crypt none --ds 10 --ps 3"
RELAY="--loss 3 --delay 5 --jitter 1"
run_case "relay: 3% loss, 5 ms delay, 1 ms jitter each way; aes, FEC 10/3" \
    "$RELAY" "--mode fast3 --crypt aes --ds 10 --ps 3" ktun relay
if command -v kcptun-server >/dev/null && command -v kcptun-client >/dev/null; then
    run_case "the same through Debian's kcptun" \
        "$RELAY" "--mode fast3 --crypt aes --ds 10 --ps 3" kcptun relay
fi
kill -0 "$SSHD_PID" 2>/dev/null || fail "sshd died: $(cat "$tmp/sshd.log")"
echo "ok"
