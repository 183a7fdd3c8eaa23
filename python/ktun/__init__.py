# SPDX-License-Identifier: MIT
"""ktun's protocol cores from Python: KCP, FEC, kcptun's crypt methods, smux.

    ktun.Kcp    one KCP engine (kcp-go behaviour), bytes in and out, next_deadline()
    ktun.Link   KCP + Reed-Solomon FEC + crypt: one kcptun session, datagrams in and out
    ktun.Mux    smux v1/v2 framing and streams
    ktun.Crypt  kcptun's crypt methods and ktun's authenticated mode
    ktun.Comp   kcptun's compression layer (snappy framing)
    ktun.Qpp    kcptun's --QPP pads for Mux(qpp=...)
    ktun.lkcp   KcpObj, call-compatible with the lkcp module
    ktun.aio    asyncio protocols driving them, and a kcptun client
"""

from ._ffi import LIBRARY_PATH
from .core import (MODES, Comp, Crypt, Kcp, KtunError, Link, Mux, Qpp, crypt_methods,
                   frame_batch, split_batch)

__all__ = ["Kcp", "Link", "Mux", "Crypt", "Comp", "Qpp", "KtunError", "MODES", "crypt_methods",
           "frame_batch", "split_batch", "LIBRARY_PATH"]
__version__ = "0.1.0"
