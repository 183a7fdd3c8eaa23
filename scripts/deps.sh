#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs ktun's Debian build and test dependencies. Idempotent: does nothing when all are present.
set -eu
pkgs=(build-essential pkg-config libev-dev libsodium-dev libisal-dev libsnappy-dev
      libgcrypt20-dev libcjson-dev libcmocka-dev clang libclang-rt-14-dev valgrind
      iproute2 kcptun shadowsocks-libev gnuplot-nox python3 openssh-server openssh-client
      python3-cffi python3-pytest python3-setuptools python3-wheel python3-venv iptables
      dnsutils dnsmasq-base iperf3)
source "$(dirname "${BASH_SOURCE[0]}")/pkgs.sh"
mapfile -t missing < <(pkgs_missing "${pkgs[@]}")
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#pkgs[@]} packages present"
    exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
pkgs_install "${missing[@]}"
