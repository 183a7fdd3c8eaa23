#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interoperability with the newest kcptun (a peer built as docs/kcptun-newer.md says; skipped
# when it is absent): scripts/interop-newest.sh --quick, both directions, echo and one-way
# checks by sha256 with aes-128-gcm, null, QPP, smux v1 and v2, --closewait and stock defaults.
cd "$(dirname "$0")/../.." || exit 1
exec timeout 600 scripts/interop-newest.sh --quick
