# SPDX-License-Identifier: MIT
"""The ABI-mode declarations must match ktun's public headers word for word."""
import re

from conftest import REPO

from ktun import _ffi

HEADERS = ["common/kcp.h", "common/link.h", "common/mux.h", "crypto/crypt.h", "common/err.h",
           "common/comp.h", "crypto/qpp.h"]


def norm(decl):
    return re.sub(r"\s+", " ", decl).replace("( ", "(").replace(" )", ")").strip()


def header_decls():
    decls = {}
    for h in HEADERS:
        text = (REPO / h).read_text()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        for m in re.finditer(r"^[A-Za-z][^;#{}()]*\b(\w+)\s*\(([^;{}]*)\)\s*;", text, re.M):
            decls[m.group(1)] = norm(m.group(0))
    return decls


def test_core_declarations_match_headers():
    decls = header_decls()
    checked = 0
    for line in _ffi.CORE_CDEF.split(";"):
        line = norm(line)
        if not line:
            continue
        name = re.search(r"(\w+)\s*\(", line).group(1)
        assert name in decls, f"{name} is no longer declared in {HEADERS}"
        assert decls[name] == line + ";", f"{name} changed: header has {decls[name]}"
        checked += 1
    assert checked >= 50


def test_library_exports_everything_declared():
    for text in (_ffi.CORE_CDEF, _ffi.SHIM_CDEF):
        for name in re.findall(r"(\w+)\s*\(", text):
            if name in ("void",):
                continue
            getattr(_ffi.lib, name)  # AttributeError if the symbol is missing
