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


def cdef_decls(text):
    """{name: normalized declaration} of a cdef string's function declarations."""
    out = {}
    for line in text.split(";"):
        line = norm(line)
        if line:
            out[re.search(r"(\w+)\s*\(", line).group(1)] = line + ";"
    return out


def test_shim_declarations_match_pyshim():
    # pyshim.c gives every exported function a KPY_API prototype (the compiler holds the
    # definition to it); the cdef must restate exactly those, no more and no fewer.
    text = re.sub(r"/\*.*?\*/", " ", (REPO / "python/csrc/pyshim.c").read_text(), flags=re.S)
    protos = {}
    for m in re.finditer(r"^KPY_API\s+([^;{}]*\b(\w+)\s*\([^;{}]*\)\s*;)", text, re.M):
        protos[m.group(2)] = norm(m.group(1))
    shim = cdef_decls(_ffi.SHIM_CDEF)
    assert len(protos) >= 40
    assert sorted(set(protos) - set(shim)) == [], "exported by pyshim.c, not in SHIM_CDEF"
    assert sorted(set(shim) - set(protos)) == [], "in SHIM_CDEF, not exported by pyshim.c"
    for name, decl in shim.items():
        assert decl == protos[name], f"{name} changed: pyshim.c has {protos[name]}"


def test_every_function_the_package_calls_is_declared():
    # A call of an undeclared function fails only when that line runs: check them all here.
    declared = set(cdef_decls(_ffi.CORE_CDEF)) | set(cdef_decls(_ffi.SHIM_CDEF))
    called = set()
    for path in (REPO / "python" / "ktun").glob("*.py"):
        called |= set(re.findall(r"\blib\.(\w+)", path.read_text()))
    assert len(called) >= 50
    assert sorted(called - declared) == []
