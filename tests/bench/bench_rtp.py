"""RTP media path per packet: CPython and the MicroPython unix port, same code, same packets.

Figures: microseconds per call of the per-packet steps a 20 ms G.711 stream takes (header
written by RtpSender.pack, header parsed by RtpHeader.unpack_from, one JitterBuffer put+get
of a 160-byte frame, one DtmfReceiver.receive of an update packet), under each runtime; the
MicroPython / CPython ratio; and the heap bytes each step allocates under MicroPython
(averaged over 500 calls, garbage collector paused). The MicroPython side runs the same
script in a subprocess of the unix port with MICROPYPATH=modules.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODULES = os.path.join(ROOT, "modules")

# Runs unchanged under both interpreters; prints "name|best us per call|bytes per call".
_SCRIPT = """
import gc, sys
from voip.rtp import RtpHeader, RtpSender
from voip.jitter import JitterBuffer
from voip.dtmf import DtmfReceiver, pack_event

MP = sys.implementation.name == "micropython"
if MP:
    import time
    def now_us():
        return time.ticks_us()
    def elapsed_us(t0):
        return time.ticks_diff(time.ticks_us(), t0)
else:
    import time
    def now_us():
        return time.perf_counter()
    def elapsed_us(t0):
        return (time.perf_counter() - t0) * 1e6

buf = bytearray(172)
rtp = RtpSender(0, ssrc=0x12345678, sequence=1, timestamp=0xFFFF0000)
rtp.pack(buf, 160)
header = RtpHeader()
jb = JitterBuffer(min_ms=40)
out = bytearray(160)
state = [0]
receiver = DtmfReceiver()
event = bytearray(4)
pack_event(event, 0, 5, 0, 10, 320)
receiver.receive(1, 1000, event)

def send():
    rtp.pack(buf, 160)

def receive():
    header.unpack_from(buf, 172)

def jitter():
    n = state[0]
    state[0] = n + 1
    jb.put(n & 0xFFFF, (160 * n) & 0xFFFF, buf, 20 * n, 12, 160)
    jb.get(out)

def dtmf():
    receiver.receive(0, 1000, event)

N = 2000
for name, fn in (("RtpSender.pack", send), ("RtpHeader.unpack_from", receive),
                 ("JitterBuffer put+get", jitter), ("DtmfReceiver.receive", dtmf)):
    for _ in range(50):
        fn()
    alloc = 0
    if MP:
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        for _ in range(500):
            fn()
        alloc = (gc.mem_alloc() - before) / 500
        gc.enable()
    best = None
    for _ in range(5):
        gc.collect()
        t0 = now_us()
        for _ in range(N):
            fn()
        dt = elapsed_us(t0) / N
        best = dt if best is None or dt < best else best
    print("%s|%.3f|%.1f" % (name, best, alloc))
"""


def _micropython():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def _parse(text):
    rows = {}
    for line in text.strip().splitlines():
        name, us, alloc = line.split("|")
        rows[name] = (float(us), float(alloc))
    return rows


def run(report):
    env = dict(os.environ, PYTHONPATH=MODULES)
    cp = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    cpython = _parse(cp.stdout)
    binary = _micropython()
    if binary is None:
        for name, (us, _) in cpython.items():
            report("rtp", name + " (CPython)", us, "us/packet", "micropython not installed")
        return
    mp = subprocess.run(
        [binary, "-c", _SCRIPT],
        env=dict(os.environ, MICROPYPATH=MODULES),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    micropython = _parse(mp.stdout)
    for name, (us, alloc) in micropython.items():
        report("rtp", name + " (MicroPython)", us, "us/packet")
        report("rtp", name + " (CPython)", cpython[name][0], "us/packet")
        report("rtp", name + " MicroPython/CPython", us / cpython[name][0], "ratio")
        report("rtp", name + " heap (MicroPython)", alloc, "bytes/packet", "GC paused")
