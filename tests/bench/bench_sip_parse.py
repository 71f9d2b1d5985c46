"""SIP message parse time per message: CPython and the MicroPython unix port, same messages.

Figures: microseconds per voip.sip.message.parse() call for a typical INVITE with SDP, a
200 OK with SDP and a REGISTER with digest credentials, under each runtime; the MicroPython /
CPython ratio; and the heap bytes one parse allocates under MicroPython (garbage collector
paused while measuring). The MicroPython side runs a small generated script with
MICROPYPATH=modules in a subprocess of the unix port.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODULES = os.path.join(ROOT, "modules")
if MODULES not in sys.path:
    sys.path.insert(0, MODULES)

SDP = (
    b"v=0\r\no=sipmote 1718 1718 IN IP4 192.168.1.50\r\ns=sipmote\r\n"
    b"c=IN IP4 192.168.1.50\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def _message(lines, body=b""):
    head = b"\r\n".join(lines)
    return head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


MESSAGES = {
    "INVITE with SDP": _message([
        b"INVITE sip:agent@192.168.1.10:5060 SIP/2.0",
        b"Via: SIP/2.0/UDP 192.168.1.50:5060;rport;branch=z9hG4bK5f1b2c3d4e5f6a7b",
        b"Max-Forwards: 70",
        b'From: "Kitchen phone" <sip:kitchen@192.168.1.10>;tag=8a1f2e3d4c5b6a79',
        b"To: <sip:agent@192.168.1.10>",
        b"Call-ID: 4c1d2e3f4a5b6c7d8e9f0a1b@192.168.1.50",
        b"CSeq: 1 INVITE",
        b"Contact: <sip:kitchen@192.168.1.50:5060;transport=udp>",
        b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
        b"Supported: replaces, timer",
        b"User-Agent: sipmote/0.1",
        b"Content-Type: application/sdp",
    ], SDP),
    "200 OK with SDP": _message([
        b"SIP/2.0 200 OK",
        b"Via: SIP/2.0/UDP 192.168.1.50:5060;rport=5060;received=192.168.1.50;"
        b"branch=z9hG4bK5f1b2c3d4e5f6a7b",
        b'From: "Kitchen phone" <sip:kitchen@192.168.1.10>;tag=8a1f2e3d4c5b6a79',
        b"To: <sip:agent@192.168.1.10>;tag=as5e6f7a8b",
        b"Call-ID: 4c1d2e3f4a5b6c7d8e9f0a1b@192.168.1.50",
        b"CSeq: 1 INVITE",
        b"Contact: <sip:agent@192.168.1.10:5060>",
        b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
        b"Content-Type: application/sdp",
    ], SDP.replace(b"192.168.1.50", b"192.168.1.10")),
    "REGISTER with credentials": _message([
        b"REGISTER sip:pbx.example.net SIP/2.0",
        b"Via: SIP/2.0/UDP 192.168.1.50:5060;rport;branch=z9hG4bK77aa88bb99cc00dd",
        b"Max-Forwards: 70",
        b"From: <sip:kitchen@pbx.example.net>;tag=1a2b3c4d5e6f7081",
        b"To: <sip:kitchen@pbx.example.net>",
        b"Call-ID: 9f8e7d6c5b4a39281706f5e4@192.168.1.50",
        b"CSeq: 2 REGISTER",
        b"Contact: <sip:kitchen@192.168.1.50:5060>;expires=3600",
        b'Authorization: Digest username="kitchen", realm="pbx.example.net", '
        b'nonce="18f3a2b1c.9a8b7c6d5e4f.0123456789abcdef0123456789abcdef", '
        b'uri="sip:pbx.example.net", response="6629fae49393a05397450978507c4ef1", '
        b"algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001",
        b"Expires: 3600",
        b"User-Agent: sipmote/0.1",
    ]),
}

_MP_SCRIPT = """
import gc, time
from voip.sip.message import parse
MESSAGES = %r
N = %d
out = []
for name, data in MESSAGES:
    parse(data)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    parse(data)
    alloc = gc.mem_alloc() - before
    gc.enable()
    best = None
    for _ in range(5):
        gc.collect()
        t0 = time.ticks_us()
        for _ in range(N):
            parse(data)
        dt = time.ticks_diff(time.ticks_us(), t0) / N
        best = dt if best is None or dt < best else best
    out.append("%%s|%%.2f|%%d" %% (name, best, alloc))
print("\\n".join(out))
"""


def _cpython_us(data, n):
    from voip.sip.message import parse

    parse(data)
    best = None
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            parse(data)
        dt = (time.perf_counter() - t0) / n * 1e6
        best = dt if best is None or dt < best else best
    return best


def _micropython_binary():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def _micropython_us(n):
    binary = _micropython_binary()
    if binary is None:
        return None
    script = _MP_SCRIPT % (list(MESSAGES.items()), n)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        env = dict(os.environ, MICROPYPATH=MODULES)
        out = subprocess.run([binary, path], env=env, capture_output=True, text=True,
                             timeout=300, check=True).stdout
    finally:
        os.unlink(path)
    result = {}
    for line in out.strip().splitlines():
        name, us, alloc = line.split("|")
        result[name] = (float(us), int(alloc))
    return result


def run(report, n=300):
    mp = _micropython_us(n)
    for name, data in MESSAGES.items():
        cp = _cpython_us(data, n)
        report("sip", "parse %s (%d B), CPython" % (name, len(data)), cp, "us/msg")
        if mp is None:
            report("sip", "parse %s, MicroPython" % name, "n/a", "", "micropython not found")
            continue
        us, alloc = mp[name]
        report("sip", "parse %s, MicroPython unix port" % name, us, "us/msg")
        report("sip", "parse %s, MicroPython/CPython" % name, us / cp, "ratio")
        report("sip", "parse %s, MicroPython heap allocated" % name, alloc, "bytes/msg")


if __name__ == "__main__":

    def _print(section, name, value, unit, note=""):
        print("%-6s %-62s %10s %-9s %s" % (section, name, value, unit, note))

    run(_print)
