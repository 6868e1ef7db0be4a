"""cffi builder for the data plane (API mode, out of line).

`pip install .` / `pip install -e .` compile it through setup.py's ``cffi_modules``. In a source
checkout, :func:`rebuild_inplace` recompiles ``dataplane/_native*.so`` when a C file is newer
(tests/conftest.py calls it), and ``python dataplane/build.py`` forces a rebuild.

Environment:
  SOFTDPU_SANITIZE=1  build with AddressSanitizer + UndefinedBehaviorSanitizer (-O1 -g). Import
                      then needs ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``; see README.
"""
from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NATIVE = ROOT / "native"
HEADER = NATIVE / "softdpu.h"                 # the production API: commands, config, telemetry records
TESTING_HEADER = NATIVE / "softdpu_testing.h" # test and benchmark hooks only (cdef'd apart, below)
SOURCES = ["sim.c", "event.c", "port.c", "switch.c", "nic.c", "cc.c", "dcqcn.c", "dctcp.c", "timely.c", "hpcc.c", "swift.c", "nscc.c", "int.c", "wire.c", "pfc.c", "reorder.c", "paths.c", "vswitch.c", "qpc.c", "qdisc.c", "pcap_scan.c"]
# the providers, one file each, no list to edit: queue disciplines (registered in native/qdisc.h)
# and path policies (native/paths.h)
SOURCES += sorted(p.name for p in NATIVE.glob("qdisc_*.c")) + sorted(p.name for p in NATIVE.glob("path_*.c"))
MODULE = "dataplane._native"
SO_NAME = "_native.abi3.so"


def cflags() -> list[str]:
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
    if os.environ.get("SOFTDPU_SANITIZE"):
        return flags + ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                        "-fno-sanitize-recover=undefined"]
    # hidden: the data plane's own functions call each other directly, not through the PLT (only
    # the module's init function is exported; cffi's wrappers are in the same object)
    return flags + ["-O2", "-fvisibility=hidden"]


def cdef_text() -> str:
    """The public header, with the Python callback declared the way cffi needs it."""
    text = HEADER.read_text()
    proto = "int sd_cc_python_event(void *userdata, sd_cc_io *io);"
    if proto not in text:
        raise RuntimeError(f"{HEADER}: the declaration {proto!r} is missing")
    return text.replace(proto, 'extern "Python+C" ' + proto)


def testing_cdef_text() -> str:
    """The testing-only header (test and benchmark hooks): cdef'd after the production one, so
    that nothing in the production header can depend on it."""
    return TESTING_HEADER.read_text()


def make_builder(absolute: bool = False) -> FFI:
    # setuptools rejects absolute paths in sources/include_dirs ("must always be /-separated paths
    # relative to the setup.py directory"); ffi.compile(tmpdir=...) chdirs into tmpdir, so it
    # needs absolute ones.
    def path(p: Path) -> str:
        return str(p) if absolute else os.path.relpath(p, ROOT)

    ffi = FFI()
    ffi.cdef(cdef_text())
    ffi.cdef(testing_cdef_text())        # TESTING ONLY: native/softdpu_testing.h
    link = ["-fsanitize=address,undefined"] if os.environ.get("SOFTDPU_SANITIZE") else []
    ffi.set_source(
        MODULE,
        '#include "sim.h"\n',
        sources=[path(NATIVE / s) for s in SOURCES],
        include_dirs=[path(NATIVE)],
        depends=[path(NATIVE / h) for h in ("softdpu.h", "softdpu_testing.h", "sim.h", "qdisc.h", "paths.h")],
        extra_compile_args=cflags(),
        extra_link_args=link,
        libraries=["m"],
    )
    return ffi


ffibuilder = make_builder()


def rebuild_inplace(force: bool = False) -> Path:
    """Compile the extension into dataplane/ if any C source is newer than it."""
    out = HERE / SO_NAME
    stamp = HERE / "_native.flags"        # the flags the .so was built with (sanitizer or not)
    inputs = [*NATIVE.glob("*.[ch]"), Path(__file__)]
    fresh = out.exists() and out.stat().st_mtime >= max(f.stat().st_mtime for f in inputs)
    if not force and fresh and stamp.exists() and stamp.read_text() == " ".join(cflags()):
        return out
    built = make_builder(absolute=True).compile(tmpdir=str(ROOT / "build" / "cffi-dev"), target=SO_NAME)
    for stale in HERE.glob("_native.cpython-*.so"):   # would shadow the abi3 .so on import
        stale.unlink()
    tmp = out.with_suffix(".so.tmp")
    tmp.write_bytes(Path(built).read_bytes())
    tmp.chmod(0o755)
    os.replace(tmp, out)
    stamp.write_text(" ".join(cflags()))
    return out


if __name__ == "__main__":
    print(rebuild_inplace(force=True))
