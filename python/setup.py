# SPDX-License-Identifier: MIT
"""Packages ktun's Python binding with the shared library of its cores.

The binding uses cffi's ABI mode: nothing is compiled here. The package ships libktun.so,
taken from $KTUN_LIBRARY, or from ktun's build tree next to this directory (../build/libktun.so,
built with `make libktun.so` first if it is missing).
"""
import os
import pathlib
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent


def find_library():
    env = os.environ.get("KTUN_LIBRARY")
    if env:
        return pathlib.Path(env)
    built = HERE.parent / "build" / "libktun.so"
    if not built.is_file() and (HERE.parent / "Makefile").is_file():
        subprocess.run(["make", "-C", str(HERE.parent), "-j2", "libktun.so"], check=True)
    if not built.is_file():
        raise SystemExit("libktun.so not found: run `make libktun.so` in ktun's source tree "
                         "or set KTUN_LIBRARY")
    return built


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        dest = pathlib.Path(self.build_lib) / "ktun" / "libktun.so"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(find_library(), dest)
        dest.chmod(0o755)


class PlatformDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=PlatformDistribution)
