# SPDX-License-Identifier: MIT
# free_port: prints a port that is free for both TCP and UDP on 127.0.0.1 right now (sourced by
# tests/e2e/proc.sh and scripts/interop-lib.sh).
#
# The port comes from below the kernel's ephemeral range (ip_local_port_range), so no outgoing
# connection or unbound socket of another program takes it between the pick and the bind.
# When the test runner runs scripts side by side it gives each running script its own slice
# of that range (E2E_SLOT of E2E_SLOTS), so two scripts never pick the same port. A port once
# handed out in this script (listed in $tmp/.ports, when $tmp is a directory) is not handed out
# again, even before its program has bound it.
free_port() {
    python3 - "${tmp:-}" "${E2E_SLOT:-0}" "${E2E_SLOTS:-1}" <<'PY'
import fcntl, os, random, socket, sys

def usable(p):
    t = socket.socket()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("127.0.0.1", p))
        u.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        t.close(); u.close()

tmp, slot, slots = sys.argv[1], int(sys.argv[2]), max(1, int(sys.argv[3]))
try:
    eph_lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    eph_lo = 32768
base = 10000
width = (eph_lo - base) // slots
book = None
if tmp and os.path.isdir(tmp):
    book = open(os.path.join(tmp, ".ports"), "a+")
    fcntl.flock(book, fcntl.LOCK_EX)
    book.seek(0)
    taken = {int(x) for x in book.read().split()}
else:
    taken = set()
port = None
if width >= 200 and 0 <= slot < slots:
    lo = base + slot * width
    cand = list(range(lo, lo + width))
    random.shuffle(cand)
    for p in cand:
        if p not in taken and usable(p):
            port = p
            break
if port is None:  # odd ephemeral range, or the slice is full: let the kernel pick
    for _ in range(100):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
        if p not in taken and usable(p):
            port = p
            break
if port is None:
    sys.exit("free_port: no free port")
if book:
    book.write(f"{port}\n")
    book.close()
print(port)
PY
}
