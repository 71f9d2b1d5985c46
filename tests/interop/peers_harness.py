"""Real SIP peers for the relay's interop tests: SIPp, Kamailio, baresip on 127.0.0.1 only.

Each peer is a subprocess with a hard time limit; a missing binary skips the test with the
Debian package to install. Nothing here reads outside the project: the scenarios and the
Kamailio configuration live in tests/interop/peers/.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import socket

import pytest

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")
SIPP_DIR = os.path.join(PEERS, "sipp")
KAMAILIO_DIR = os.path.join(PEERS, "kamailio")
DEBIAN_PACKAGE = {"sipp": "sip-tester", "kamailio": "kamailio", "baresip": "baresip"}
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


def require(binary):
    """Path of `binary`, or skip naming the Debian package that provides it."""
    path = shutil.which(binary) or (
        "/usr/sbin/" + binary if os.path.exists("/usr/sbin/" + binary) else None
    )
    if path is None:
        pytest.skip(
            "%s not installed: apt-get install %s" % (binary, DEBIAN_PACKAGE.get(binary, binary))
        )
    return path


def free_udp_port(even=False):
    """A UDP port free on 127.0.0.1 right now (even: usable as an RTP base)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not even or (port % 2 == 0 and port < 65534):
            return port
    raise RuntimeError("no free port")


def free_port_block(size):
    """A base port such that base..base+size-1 are free on 127.0.0.1 (UDP) right now."""
    for _ in range(200):
        base = free_udp_port(even=True)
        if base + size > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


class Process:
    """A peer subprocess: output captured to a log file, killed (whole group) at exit."""

    def __init__(self, name, argv, cwd, log_path):
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.log_path = log_path
        self.proc = None

    async def start(self):
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    async def wait(self, timeout):
        """Exit status, or kill it after `timeout` seconds and fail with its log."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise AssertionError(
                "%s did not finish within %s s; log:\n%s" % (self.name, timeout, self.log())
            ) from None

    async def stop(self):
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log(self, limit=6000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")


def sipp_argv(remote, scenario, workdir, local_port, media_port=None, keys=None, extra=()):
    """A bounded single-call SIPp run: -m 1, a global timeout, traces in `workdir`."""
    argv = [
        require("sipp"),
        remote,
        "-sf",
        scenario if os.path.isabs(scenario) else os.path.join(SIPP_DIR, scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "30s",
        "-timeout_error",
        "-max_recv_loops",
        "100",
        "-trace_msg",
        "-message_file",
        os.path.join(workdir, "sipp-%d-messages.log" % local_port),
        "-trace_err",
        "-error_file",
        os.path.join(workdir, "sipp-%d-errors.log" % local_port),
    ]
    if media_port is not None:
        argv += ["-mp", str(media_port), "-mi", "127.0.0.1"]
    for key, value in (keys or {}).items():
        argv += ["-key", key, str(value)]
    return argv + list(extra)


async def run_sipp(remote, scenario, workdir, timeout=40, **kw):
    """Run one SIPp call to completion; returns (exit status, message trace)."""
    port = kw.pop("local_port", None) or free_udp_port()
    proc = Process(
        "sipp",
        sipp_argv(remote, scenario, workdir, port, **kw),
        workdir,
        os.path.join(workdir, "sipp-%d.out" % port),
    )
    await proc.start()
    try:
        status = await proc.wait(timeout)
    finally:
        await proc.stop()
    trace = ""
    path = os.path.join(workdir, "sipp-%d-messages.log" % port)
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        trace = f.read()
    return status, trace


class Kamailio:
    """A loopback Kamailio registrar/proxy (tests/interop/peers/kamailio) on a free port."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_udp_port()
        self.process = None

    async def start(self):
        binary = require("kamailio")
        if not os.path.isdir(KAMAILIO_MODULES):
            pytest.skip(
                "kamailio modules missing at %s: apt-get install kamailio" % KAMAILIO_MODULES
            )
        db = os.path.join(self.workdir, "kamdb")
        shutil.copytree(os.path.join(KAMAILIO_DIR, "db"), db)
        with open(os.path.join(KAMAILIO_DIR, "kamailio.cfg")) as f:
            cfg = f.read().replace("@DB_DIR@", db).replace("@PORT@", str(self.port))
        cfg_path = os.path.join(self.workdir, "kamailio.cfg")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        rundir = os.path.join(self.workdir, "kamrun")
        os.makedirs(rundir, exist_ok=True)
        argv = [binary, "-f", cfg_path, "-DD", "-E", "-Y", rundir, "-m", "64", "-M", "8"]
        self.process = Process(
            "kamailio", argv, self.workdir, os.path.join(self.workdir, "kam.log")
        )
        await self.process.start()
        await self._wait_ready()
        return self

    async def _wait_ready(self, timeout=15):
        """Ready when it answers an OPTIONS to itself (it then has loaded every module)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        deadline = loop.time() + timeout
        try:
            n = 0
            while loop.time() < deadline:
                if self.process.proc.returncode is not None:
                    raise AssertionError("kamailio exited:\n" + self.process.log())
                n += 1
                msg = (
                    "OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKready%d\r\n"
                    "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\n"
                    "To: <sip:127.0.0.1:%d>\r\nCall-ID: ready%d@127.0.0.1\r\nCSeq: %d OPTIONS\r\n"
                    "Content-Length: 0\r\n\r\n" % (self.port, port, n, n, self.port, n, n)
                )
                sock.sendto(msg.encode(), ("127.0.0.1", self.port))
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.3)
                except asyncio.TimeoutError:
                    continue
                if data.startswith(b"SIP/2.0 200"):
                    return
            raise AssertionError(
                "kamailio not ready within %d s:\n%s" % (timeout, self.process.log())
            )
        finally:
            sock.close()

    async def stop(self):
        if self.process is not None:
            await self.process.stop()

    def log(self):
        return self.process.log() if self.process else ""


def g711_test_audio(frames, seed=1):
    """`frames` x 160 bytes of G.711 that is recognisably ours: a deterministic byte pattern
    that never repeats within a call, so any loss, reordering or duplication shows."""
    out = bytearray()
    x = seed
    for _ in range(frames * 160):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)
