"""``make firmware BOARD=<name>``: a MicroPython firmware image with sipmote frozen in.

The board folder is an out-of-tree MicroPython board, so the build is MicroPython's own:

    make -C $MICROPY_DIR/ports/esp32 BOARD_DIR=<abs boards/name> BUILD=<abs build/firmware/name>

It needs a MicroPython source tree (MICROPY_DIR, with mpy-cross built and the port's
submodules, micropython-lib among them) and ESP-IDF set up in this shell (IDF_PATH, idf.py on
PATH). Without them, check() says what to install and how, and nothing runs.
"""

import os
import shutil
import subprocess

from . import BUILD, FirmwareError
from .boards import board_info

INSTALL_HELP = """\
make firmware needs a MicroPython source tree and ESP-IDF; {missing}.

  1. MicroPython (the release the bundles are built for, see `mpy-cross --version`):
       git clone https://github.com/micropython/micropython ~/micropython
       git -C ~/micropython checkout v1.29.0
       make -C ~/micropython/mpy-cross
       make -C ~/micropython/ports/esp32 submodules        # includes micropython-lib
  2. ESP-IDF, the version ~/micropython/ports/esp32/README.md names:
       git clone -b <that version> --recursive https://github.com/espressif/esp-idf ~/esp-idf
       ~/esp-idf/install.sh esp32,esp32s3
       . ~/esp-idf/export.sh                             # in every new shell: sets IDF_PATH
  3. make firmware BOARD={board} MICROPY_DIR=~/micropython

Without building firmware, stock MicroPython + `make deploy` runs the same app
(docs/flashing.md)."""


def check(board, micropy_dir, env=None):
    """The absolute (micropy_dir, board info); FirmwareError with INSTALL_HELP if not ready."""
    env = os.environ if env is None else env
    info = board_info(board)
    if info["chip"] is None:
        raise FirmwareError("board %s has no MicroPython board definition (mpconfigboard.cmake)"
                            " to build: it runs on %s" % (
                                board, "the unix port" if info["arch"] == "x64" else "stock"))
    missing = []
    port = os.path.join(micropy_dir or "", "ports", "esp32")
    if not micropy_dir:
        missing.append("MICROPY_DIR is not set")
    elif not os.path.isfile(os.path.join(port, "Makefile")):
        missing.append("%s/ports/esp32 is not a MicroPython ESP32 port" % micropy_dir)
    else:
        if not os.path.isfile(os.path.join(micropy_dir, "mpy-cross", "build", "mpy-cross")):
            missing.append("mpy-cross is not built in %s/mpy-cross" % micropy_dir)
        lib = os.path.join(micropy_dir, "lib", "micropython-lib", "micropython", "aiorepl")
        if not os.path.isdir(lib):
            missing.append("the micropython-lib submodule is not checked out")
    idf = env.get("IDF_PATH")
    if not idf:
        missing.append("IDF_PATH is not set (ESP-IDF's export.sh sets it)")
    elif not os.path.isfile(os.path.join(idf, "tools", "idf.py")):
        missing.append("IDF_PATH=%s is not an ESP-IDF checkout" % idf)
    elif not shutil.which("idf.py", path=env.get("PATH")):
        missing.append("idf.py is not on PATH (run . $IDF_PATH/export.sh)")
    if missing:
        raise FirmwareError(INSTALL_HELP.format(missing="; ".join(missing), board=board))
    return os.path.abspath(micropy_dir), info


def build_dir(board):
    return os.path.join(BUILD, "firmware", board)


def make_command(micropy_dir, info, out_dir):
    return ["make", "-C", os.path.join(micropy_dir, "ports", "esp32"),
            "BOARD_DIR=" + os.path.abspath(info["dir"]), "BUILD=" + os.path.abspath(out_dir)]


def build(board, micropy_dir, env=None, runner=subprocess.call):
    """Build the firmware; returns the path of firmware.bin (bootloader + table + app)."""
    micropy_dir, info = check(board, micropy_dir, env)
    out = build_dir(board)
    cmd = make_command(micropy_dir, info, out)
    print("$ " + " ".join(cmd))
    code = runner(cmd)
    image = os.path.join(out, "firmware.bin")
    if code != 0 or not os.path.isfile(image):
        raise FirmwareError("the MicroPython build failed (exit %s); its output is above" % code)
    print("firmware %s for %s: flash it with  make flash BOARD=%s PORT=<port>" % (
        image, info["chip"], board))
    return image
