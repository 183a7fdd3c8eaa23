#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interoperability with Debian's Go kcptun (skipped when kcptun is not installed): runs
# scripts/interop.sh, the full matrix (every crypt method both ways; FEC x compression x smux
# version x mode for a subset), each combination checked by sha256 in both directions.
cd "$(dirname "$0")/../.." || exit 1
exec timeout 600 scripts/interop.sh
