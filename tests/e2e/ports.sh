# SPDX-License-Identifier: MIT
# free_port: prints a port that is free for both TCP and UDP on 127.0.0.1 right now (sourced by
# tests/e2e/lib.sh and scripts/interop.sh).
free_port() {
    python3 - <<'PY'
import socket
for _ in range(100):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); u.close(); continue
    t.close(); u.close(); print(p); break
PY
}
