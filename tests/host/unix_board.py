"""A MicroPython "board" for the device tools' tests: the unix port on a pseudo-terminal.

mpremote talks to the pty's slave end exactly as to a USB serial port (raw REPL, raw paste,
fs commands); the unix-port interpreter sits on the master end with its working directory
as the board's filesystem root, and `root/lib` on its import path as /lib is on a board. No
ESP32 is involved: machine.reset, ROMFS writes and I2S are what this cannot stand in for.
"""

import os
import pty
import subprocess
import sys
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def micropython_binary():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else "micropython"


class UnixBoard:
    def __init__(self, root, extra_path=()):
        self.root = str(root)
        os.makedirs(os.path.join(self.root, "lib"), exist_ok=True)
        master, slave = pty.openpty()
        tty.setraw(slave)  # no newline translation: mpremote expects the bytes as sent
        self.port = os.ttyname(slave)
        self._slave = slave
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join(
            [os.path.join(self.root, "lib"), *extra_path, ".frozen"])
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=4M"], stdin=master, stdout=master,
            stderr=master, cwd=self.root, env=env, close_fds=True,
        )
        os.close(master)
        time.sleep(0.3)  # the banner and first prompt

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._slave)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
