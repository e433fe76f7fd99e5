"""Builds and installs the Python binding: the C extension module _zinx
(bindings/python/_zinx/*.c, linked to the static libzinx of a CMake build)
and the pure-Python packages ziface, znet and zconf.

    make build        # the CMake build that has libzinx.a (build/)
    pip install --no-build-isolation --no-index bindings/python

ZINX_BUILD_DIR names the CMake build folder (default: ../../build from
this file). Needs only Debian's python3-dev, python3-setuptools and
python3-wheel: nothing is downloaded. `make python` does all of it into a
virtual environment (build/python-venv).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# What libzinx.a itself links (zinx.pc.in's Requires.private and
# Libs.private, CMakeLists.txt's dl): used when pkg-config is absent.
FALLBACK_LIBS = ["cjson", "m", "uring", "ssl", "crypto", "pthread", "dl"]
PRIVATE_PKGS = ["libcjson", "liburing", "openssl"]


def version():
    """ZINX_VERSION_STRING of include/zinx.h: one version for both."""
    with open(os.path.join(ROOT, "include", "zinx.h")) as f:
        m = re.search(r'#define ZINX_VERSION_STRING "([0-9.]+)"', f.read())
    if not m:
        sys.exit("setup.py: ZINX_VERSION_STRING not found in include/zinx.h")
    return m.group(1)


def static_library():
    """The path of libzinx.a in the CMake build folder, or exit with what
    to run."""
    build = os.path.abspath(os.environ.get("ZINX_BUILD_DIR") or
                            os.path.join(ROOT, "build"))
    # CMakeLists.txt puts archives in <build>/lib.
    lib = os.path.join(build, "lib", "libzinx.a")
    if not os.path.isfile(lib):
        sys.exit("setup.py: %s is missing: build the library first "
                 "(make build, or set ZINX_BUILD_DIR to a CMake build "
                 "folder)" % lib)
    return lib


def private_libraries():
    """The libraries libzinx.a needs, from pkg-config --static when it is
    there (the packages' own word), else FALLBACK_LIBS."""
    if shutil.which("pkg-config") is None:
        return FALLBACK_LIBS, []
    try:
        out = subprocess.run(
            ["pkg-config", "--libs", "--static"] + PRIVATE_PKGS,
            check=True, capture_output=True, text=True).stdout.split()
    except subprocess.CalledProcessError:
        return FALLBACK_LIBS, []
    libs, dirs = [], []
    for flag in out:
        if flag.startswith("-l") and flag[2:] not in libs:
            libs.append(flag[2:])
        elif flag.startswith("-L"):
            dirs.append(flag[2:])
    for lib in ("pthread", "dl"):
        if lib not in libs:
            libs.append(lib)
    return libs, dirs


def extension():
    sources = sorted(glob.glob(os.path.join(HERE, "_zinx", "*.c")))
    if not sources:
        sys.exit("setup.py: no C sources in %s" % os.path.join(HERE, "_zinx"))
    libs, lib_dirs = private_libraries()
    return Extension(
        "_zinx",
        # Relative to this folder, as setuptools wants.
        sources=[os.path.relpath(s, HERE) for s in sources],
        include_dirs=[os.path.join(ROOT, "include")],
        define_macros=[("_GNU_SOURCE", None)],
        extra_compile_args=["-std=c11"],
        extra_objects=[static_library()],
        libraries=libs,
        library_dirs=lib_dirs,
        depends=glob.glob(os.path.join(HERE, "_zinx", "*.h")),
    )


setup(
    name="zinx",
    version=version(),
    description="The Zinx Python API (ziface, znet, zconf) on the Zinx C "
                "core",
    packages=["ziface", "znet", "zconf"],
    ext_modules=[extension()],
    python_requires=">=3.9",
    zip_safe=False,
)
