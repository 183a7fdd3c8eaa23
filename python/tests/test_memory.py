# SPDX-License-Identifier: MIT
"""Objects give their C state back when collected: creating and dropping thousands of engines
with data queued in them leaves the resident set where it was."""
import gc
import os

import pytest

import ktun


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def churn(n):
    c = ktun.Crypt("aes", "mem")
    for i in range(n):
        k = ktun.Kcp(i, mode="fast3", stream=True)
        k.send(b"k" * 50000)
        k.flush(0)
        link = ktun.Link(i, c, mode="fast3")
        link.send(b"l" * 50000)
        link.flush(0)
        m = ktun.Mux(version=2)
        sid = m.open_stream()
        m.write(sid, b"m" * 50000)
        comp = ktun.Comp()
        comp.compress(b"c" * 50000)
        # a reference cycle through the output callback
        k2 = ktun.Kcp(i, mode="fast3")
        k2.cycle = k2
        k2._output = lambda p, k2=k2: None
        del k, link, m, comp, k2
        if i % 100 == 0:
            gc.collect()
    gc.collect()


@pytest.mark.skipif(os.environ.get("KTUN_SANITIZED") == "1",
                    reason="ASan holds freed memory in quarantine: the resident set says nothing")
def test_no_growth_after_churn():
    churn(300)                       # warm up allocator pools and caches
    before = rss_kb()
    churn(1500)
    grown = rss_kb() - before
    # One leaked Link alone holds well over 100 KB (FEC window, KCP queues): 1500 leaks would
    # add hundreds of MB. Allow allocator noise.
    assert grown < 30 * 1024, f"resident set grew by {grown} KB"
