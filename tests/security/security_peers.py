"""Peers for the security tests (CPython, 127.0.0.x only): the relay as its operator runs it
(`sipmote relay` with a TOML config, every line it prints kept), SIPVicious' tools as bounded
subprocesses, and a SIP caller built from the device's own user agent on an asyncio socket.

    async with LoopbackRelay(tmp_path, backend={"kind": "echo"}) as relay:
        rc, out = await sipvicious("svwar", ["-e100-120", "-m", "REGISTER"], relay, tmp_path)
        caller = SipCaller(relay, user="kitchen", password=relay.password)
        outcome = await caller.call("assistant", hold_s=2)   # .status, .bye (raw), .events
    relay.output()                                            # everything it logged

SIPVicious runs with HOME in the test's directory (its session files land there) and never
with -R (report back): every target is 127.0.0.1 or 127.0.0.2.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys

from voip.sip.message import parse
from voip.sip.ua import UserAgent

BIN = os.path.dirname(sys.executable)
SDP = (b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
DEVICE_PASSWORD = "Kitchen-Pa55-c0rrect-horse"


def free_port(host="127.0.0.1", kind=socket.SOCK_DGRAM):
    with contextlib.closing(socket.socket(socket.AF_INET, kind)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def toml(data):
    """The few TOML shapes the relay config uses: tables of scalars and lists, arrays of
    tables."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    out = []
    for name, section in data.items():
        tables = section if isinstance(section, list) else [section]
        for table in tables:
            out.append(("[[%s]]" if isinstance(section, list) else "[%s]") % name)
            for k, v in table.items():
                out.append("%s = %s" % (k, value(v)))
    return "\n".join(out) + "\n"


class LoopbackRelay:
    def __init__(self, workdir, env=None, password=DEVICE_PASSWORD, level="debug", **sections):
        self.workdir = str(workdir)
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.password = password
        self.control_path = os.path.join(self.workdir, "relay.sock")
        self.calls_dir = os.path.join(self.workdir, "calls")
        data = {
            "sip": {"bind": "127.0.0.1", "port": self.port, "rtp_port_min": 43000,
                    "rtp_port_max": 43199},
            "backend": {"kind": "echo"},
            "agents": [{"name": "assistant", "instructions": "test"}, {"name": "parrot"}],
            "devices": [{"user": "kitchen", "password": password}],
            "admission": {"max_failures": 5, "failure_window_s": 60, "lockout_s": 300},
            "logging": {"level": level, "calls_dir": self.calls_dir},
            "control": {"socket": self.control_path},
        }
        for name, v in sections.items():
            data[name] = dict(data[name], **v) if isinstance(data.get(name), dict) else v
        self.config_path = os.path.join(self.workdir, "relay.toml")
        with open(self.config_path, "w") as f:
            f.write(toml(data))
        self.env = dict(os.environ)
        self.env.pop("OPENAI_API_KEY", None)  # only what the test gives
        self.env.update(env or {})
        self.proc = None
        self.lines = []
        self._reader = None

    async def start(self, timeout=20):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sipmote.cli", "relay", "--config", self.config_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=self.env,
            cwd=self.workdir, start_new_session=True)
        self._reader = asyncio.ensure_future(self._read())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if any("relay listening on" in line for line in self.lines):
                return self
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError("relay did not start:\n" + self.output())

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def stop(self):
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=2)

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    def output(self):
        return "\n".join(self.lines)

    def call_logs(self):
        text = []
        if os.path.isdir(self.calls_dir):
            for name in sorted(os.listdir(self.calls_dir)):
                with open(os.path.join(self.calls_dir, name), errors="replace") as f:
                    text.append(f.read())
        return "\n".join(text)

    async def status(self):
        """The running relay's status (its control socket's JSON)."""
        reader, writer = await asyncio.open_unix_connection(self.control_path)
        writer.write(b'{"op": "status"}\n')
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return json.loads(line)

    async def status_text(self):
        """What `sipmote relay status` prints (the real command, through the control socket)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sipmote.cli", "relay", "--config", self.config_path,
            "status", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=self.env)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        return out.decode("utf-8", "replace")


# SIPVicious 0.3.8's svwar and svcrack accept --bindingip but never pass it on (their main()
# drops it), so their packets leave from whatever address the kernel picks. To scan from a
# given source, the tool runs with its wildcard bind() pointed at that address instead.
_FROM_SOURCE = (
    "import socket, sys\n"
    "source, tool = sys.argv.pop(1), sys.argv.pop(1)\n"
    "bind = socket.socket.bind\n"
    "def bind_source(self, addr):\n"
    "    if isinstance(addr, tuple) and addr[0] in ('', '0.0.0.0'):\n"
    "        addr = (source,) + tuple(addr[1:])\n"
    "    return bind(self, addr)\n"
    "socket.socket.bind = bind_source\n"
    "sys.argv[0] = 'sipvicious_' + tool\n"
    "main = __import__('sipvicious.' + tool, fromlist=['main']).main\n"
    "sys.exit(main())\n"
)


async def sipvicious(tool, args, target, workdir, timeout=90, stop_after=None, source=None):
    """Run sipvicious_<tool> against `target` (a LoopbackRelay or "host:port") from `source`
    (an address of this machine; None: the kernel's choice, 127.0.0.1 here); returns (exit
    status, everything it printed). With stop_after (s) the tool is stopped then and its
    status is None: svcrack retries forever against a server that keeps refusing it."""
    address = target.address if hasattr(target, "address") else target
    host, port = address.rsplit(":", 1)
    if source is None:
        argv = [os.path.join(BIN, "sipvicious_" + tool)]
    else:
        argv = [sys.executable, "-c", _FROM_SOURCE, source, tool]
    argv += list(args) + ["-p", port, host]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, HOME=str(workdir)), cwd=str(workdir), start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), stop_after or timeout)
    except asyncio.TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        if stop_after:
            out, _ = await proc.communicate()
            return None, out.decode("utf-8", "replace")
        out, _ = await proc.communicate()
        raise AssertionError("%s did not finish within %d s:\n%s" % (
            tool, timeout, out.decode("utf-8", "replace")[-3000:])) from None
    return proc.returncode, out.decode("utf-8", "replace")


class Outcome:
    def __init__(self):
        self.events = []
        self.received = []  # every SIP message the caller received, parsed
        self.status = None  # final status of our INVITE (200, 401, 503, ...)
        self.bye = None  # the BYE the relay sent, if any

    @property
    def kinds(self):
        return [e.kind for e in self.events]


class SipCaller:
    """voip.sip.ua.UserAgent (the device's stack) on a UDP socket: calls the relay, answers
    its BYE, records everything it receives."""

    def __init__(self, relay, user="kitchen", password=None, host="127.0.0.1"):
        self.relay_addr = ("127.0.0.1", relay.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()
        self.ua = UserAgent({"user": user, "password": password or "",
                             "local": self.local, "allowed_hosts": ["127.0.0.1"]})
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))

    def close(self):
        self.sock.close()
        self.rtp.close()

    async def call(self, agent, hold_s=1.0, timeout=15.0):
        """INVITE sip:agent@relay; with an answer, stay hold_s (or until the relay's BYE),
        then hang up. Returns an Outcome."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        now = lambda: int((loop.time() - t0) * 1000)  # noqa: E731
        out = Outcome()
        sdp = SDP % self.rtp.getsockname()[1]
        call_id = self.ua.call("sip:%s@127.0.0.1:%d" % (agent, self.relay_addr[1]), sdp, now())
        answered_at = None
        hung_up = False
        while loop.time() - t0 < timeout:
            self._flush()
            for ev in self.ua.events():
                out.events.append(ev)
                if ev.kind == "answered":
                    out.status = 200
                    answered_at = loop.time()
                elif ev.kind == "call_failed":
                    out.status = ev.status
                    return out
                elif ev.kind == "call_ended":
                    return out
            if answered_at is not None and not hung_up and loop.time() - answered_at >= hold_s:
                self.ua.hangup(call_id, now())
                hung_up = True
            try:
                data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), 0.05)
            except asyncio.TimeoutError:
                self.ua.tick(now())
                continue
            try:
                msg = parse(data)
                out.received.append(msg)
                if msg.is_request and msg.method == "BYE":
                    out.bye = msg
            except ValueError:
                pass
            self.ua.receive(data, addr, now())
        return out

    def _flush(self):
        for data, addr in self.ua.outgoing():
            self.sock.sendto(data, addr)
