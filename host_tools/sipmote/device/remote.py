"""mpremote on one serial port: the command lines, running them, and what the board says.

Every command starts ``mpremote connect PORT resume``: ``resume`` keeps the running
interpreter (no soft reset), so asking for status or editing the config does not stop the
phone when aiorepl runs beside it. Device-side snippets print one ``SIPMOTE-<WHAT> {json}``
line that query() picks out of the output. All paths on the board are under `root` ("/" on a
board; a directory when the "board" is the unix port, as in the tests).
"""

import binascii
import json
import os
import subprocess
import sys
import tempfile

from . import DeviceError

TIMEOUT = 60  # seconds for one mpremote run that moves no files

PROBE = """
import sys, os, json
i = {"machine": getattr(sys.implementation, "_machine", sys.platform),
     "mpy": getattr(sys.implementation, "_mpy", 0),
     "version": list(sys.implementation.version[:3])}
def _e(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
i["config"] = _e(R + "config.json")
i["noautostart"] = _e(R + "noautostart")
try:
    f = open(R + "main.py")
    m = f.read(4096)
    f.close()
    i["main"] = "sipmote" if "sipmote_start" in m else "other"
except OSError:
    i["main"] = None
try:
    import vfs
    i["romfs"] = hasattr(vfs, "rom_ioctl") and vfs.rom_ioctl(1) > 0
except Exception:
    i["romfs"] = False
try:
    s = os.statvfs(R)
    i["free"] = s[0] * s[3]
except Exception:
    i["free"] = None
print("SIPMOTE-INFO " + json.dumps(i))
"""

READ_FILE = """
import binascii
try:
    f = open(R + NAME, "rb")
    d = f.read(LIMIT + 1)
    f.close()
    print("SIPMOTE-FILE " + binascii.b2a_base64(d).decode().strip())
except OSError:
    print("SIPMOTE-FILE -")
"""

STATUS = """
import sys, json
out = {"machine": getattr(sys.implementation, "_machine", sys.platform),
       "version": list(sys.implementation.version[:3])}
for p in ("/rom/MANIFEST.json", R + "lib/sipmote.json"):
    try:
        f = open(p)
        m = json.loads(f.read())
        f.close()
        out["installed"] = {"where": p, "version": m.get("version"), "arch": m.get("arch")}
        break
    except (OSError, ValueError):
        pass
try:
    from phone import app
    if app.current is None:
        out["phone"] = None
    else:
        from phone import status
        out["phone"] = status.show(app.current)
except ImportError as e:
    out["error"] = "sipmote is not installed: %s" % e
print("SIPMOTE-STATUS " + json.dumps(out))
"""

REPLACE_FILE = """
import os
try:
    os.remove(R + NAME)
except OSError:
    pass
os.rename(R + NAME + ".new", R + NAME)
print("SIPMOTE-DONE {}")
"""

SET_FLAG = """
import os
if ON:
    f = open(R + NAME, "w")
    f.write("sipmote: the phone does not start at boot while this file exists\\n")
    f.close()
else:
    try:
        os.remove(R + NAME)
    except OSError:
        pass
print("SIPMOTE-DONE {}")
"""


def mpremote_command(*args):
    return [sys.executable, "-m", "mpremote", *args]


def snippet(code, **values):
    """Device code with its parameters bound as Python literals (never spliced text)."""
    head = "".join("%s = %r\n" % (k, v) for k, v in sorted(values.items()))
    return head + code.lstrip("\n")


def explain_failure(port, output):
    """What to tell the user when mpremote failed with `output`."""
    text = output.strip()
    if "failed to access" in text:
        return ("cannot open %s: the port is gone or another program holds it (a serial "
                "monitor, another mpremote or esptool). mpremote said: %s" % (port, text))
    if "no device found" in text:
        return "no board found on any USB serial port. mpremote said: " + text
    if "could not enter raw repl" in text:
        return ("the board on %s does not answer like MicroPython: flash it (sipmote device "
                "flash, or docs/flashing.md), or press its reset button if a program holds "
                "the console" % port)
    return "mpremote failed on %s:\n%s" % (port, text)


class Remote:
    def __init__(self, port, root="/", timeout=TIMEOUT, runner=subprocess.run):
        self.port = port
        self.root = root if root.endswith("/") else root + "/"
        self.timeout = timeout
        self.runner = runner

    def prefix(self):
        return mpremote_command("connect", self.port, "resume")

    def path(self, rel):
        """A board path for mpremote's fs commands (":" + path)."""
        return ":" + self.root + rel

    def chain(self, *steps):
        """One mpremote run doing `steps` (each a list of arguments) in order."""
        args = self.prefix()
        for i, step in enumerate(steps):
            if i:
                args.append("+")
            args.extend(step)
        return args

    def run(self, args, capture=True, timeout=None):
        """Run mpremote; return its stdout (or "" when not captured); DeviceError on failure."""
        try:
            r = self.runner(args, capture_output=capture, text=True,
                            timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError("no answer from the board on %s within %d s" % (
                self.port, timeout or self.timeout)) from None
        if r.returncode != 0:
            if capture:
                raise DeviceError(explain_failure(self.port, (r.stderr or "") + (r.stdout or "")))
            raise DeviceError("mpremote failed on %s (exit %d): see its message above" % (
                self.port, r.returncode))
        return r.stdout or ""

    def query(self, code, marker, **values):
        """Run a device snippet; return (its JSON payload, the lines it printed before)."""
        out = self.run(self.chain(["exec", snippet(code, R=self.root, **values)]))
        lines = out.splitlines()
        tag = "SIPMOTE-%s " % marker
        for i, line in enumerate(lines):
            if line.startswith(tag):
                rest = line[len(tag):]
                return (None if rest == "-" else json.loads(rest)), lines[:i]
        raise DeviceError("the board did not answer as expected:\n" + out.strip())

    def probe(self):
        return self.query(PROBE, "INFO")[0]

    def read_bytes(self, name, limit=65536):
        """The bytes of root/name on the board, or None if there is no such file."""
        out = self.run(self.chain(["exec", snippet(READ_FILE, R=self.root, NAME=name,
                                                      LIMIT=limit)]))
        for line in out.splitlines():
            if line.startswith("SIPMOTE-FILE "):
                rest = line[len("SIPMOTE-FILE "):]
                if rest == "-":
                    return None
                data = binascii.a2b_base64(rest)
                if len(data) > limit:
                    raise DeviceError("%s%s is over %d bytes" % (self.root, name, limit))
                return data
        raise DeviceError("the board did not answer as expected:\n" + out.strip())

    def write_bytes(self, name, data):
        """Write root/name: copied beside it as name.new, then renamed over it."""
        fd, local = tempfile.mkstemp(prefix="sipmote-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.run(self.chain(
                ["fs", "cp", local, self.path(name + ".new")],
                ["exec", snippet(REPLACE_FILE, R=self.root, NAME=name)],
            ))
        finally:
            os.unlink(local)

    def set_flag(self, name, on):
        self.query(SET_FLAG, "DONE", NAME=name, ON=bool(on))

    def status(self):
        return self.query(STATUS, "STATUS")
