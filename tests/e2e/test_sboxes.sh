#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The S-box tables in crypto/ against their definitions (scripts/check-sboxes.py): SM4's is
# generated from its algebraic form and compared; CAST-128's eight are compared with the text
# of RFC 2144 when RFC2144 names a copy of it (rfc2144.txt), and skipped otherwise.
cd "$(dirname "$0")/../.." || exit 1
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
exec python3 scripts/check-sboxes.py ${RFC2144:+"$RFC2144"}
