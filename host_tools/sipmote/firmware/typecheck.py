"""mypy over the device app (modules/phone, firmware/) against the ESP32 port's stubs.

The stubs of micropython-esp32-esp32-generic-stubs (machine.pyi, network.pyi, esp32.pyi, ...)
go to <work>/stubs, micropython-stdlib-stubs' typeshed (builtins, asyncio, sys, ...) to
<work>/typeshed; mypy runs with MYPYPATH=<work>/stubs:modules:firmware and
--custom-typeshed-dir=<work>/typeshed and firmware/mypy.ini, so only MicroPython's API is
known. mypy.ini has check_untyped_defs on (the device code carries no annotations, and mypy
would otherwise skip every function body); phone.board keeps the simulator's branches behind
TYPE_CHECKING, so the classes mypy sees there are machine's. One adaptation: micropython.const
is declared as the identity on any value, as the device code's CPython fallback
``def const(x): return x`` declares it (the stub's generic signature would make every such
fallback an error).
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

from . import BUILD, FIRMWARE, MODULES, FirmwareError

ESP32_STUBS = "micropython-esp32-esp32-generic-stubs"
STDLIB_STUBS = "micropython-stdlib-stubs"
# What is checked: the device app and the firmware entry points.
TARGETS = ("-p", "phone", "-m", "sipmote_start", "-m", "main", "-m", "fs_main")

_CONST = re.compile(r"def const\(expr: Const_T, /\) -> Const_T:")


def _copy_dist(name, dest, select):
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise FirmwareError("%s is not installed: pip install %s" % (name, name)) from None
    copied = 0
    for f in dist.files or ():
        rel = str(f)
        if not select(rel):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(dist.locate_file(f), target)
        copied += 1
    if not copied:
        raise FirmwareError("%s holds no stubs" % name)


def prepare(work):
    """Lay out stubs/ and typeshed/ under `work`; returns (stubs dir, typeshed dir)."""
    stubs, typeshed = os.path.join(work, "stubs"), os.path.join(work, "typeshed")
    shutil.rmtree(stubs, ignore_errors=True)
    shutil.rmtree(typeshed, ignore_errors=True)
    _copy_dist(ESP32_STUBS, stubs, lambda p: p.endswith(".pyi"))
    _copy_dist(STDLIB_STUBS, stubs, lambda p: p.startswith("_mpy_shed/"))
    _copy_dist(STDLIB_STUBS, typeshed,
               lambda p: p.startswith("stdlib/") or p.startswith("stubs/"))
    path = os.path.join(stubs, "micropython.pyi")
    with open(path) as f:
        text = f.read()
    if not _CONST.search(text) or not re.search(r"^from typing import .*\bAny\b", text, re.M):
        raise FirmwareError("%s: const() is not declared as expected" % path)
    with open(path, "w") as f:
        f.write(_CONST.sub("def const(x: Any) -> Any:", text))
    return stubs, typeshed


def command(work, modules=MODULES):
    stubs, typeshed = os.path.join(work, "stubs"), os.path.join(work, "typeshed")
    return [sys.executable, "-m", "mypy", "--config-file", os.path.join(FIRMWARE, "mypy.ini"),
            "--custom-typeshed-dir", typeshed, "--cache-dir", os.path.join(work, "cache"),
            *TARGETS], os.pathsep.join((stubs, modules, FIRMWARE))


def run(work=None, capture=False, extra_path=(), extra_targets=(), modules=MODULES):
    """Run mypy; returns its exit status (0: no errors), or (status, output) if capture.
    extra_path/extra_targets add directories and modules, `modules` replaces modules/ (the
    tests' negative controls: deliberately wrong device code must fail)."""
    work = work or os.path.join(BUILD, "typecheck")
    os.makedirs(work, exist_ok=True)
    prepare(work)
    cmd, mypypath = command(work, modules)
    cmd += list(extra_targets)
    env = dict(os.environ, MYPYPATH=os.pathsep.join((mypypath, *extra_path)))
    r = subprocess.run(cmd, env=env, capture_output=capture, text=True, timeout=600)
    if capture:
        return r.returncode, (r.stdout or "") + (r.stderr or "")
    return r.returncode
