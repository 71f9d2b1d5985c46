"""Calls across a netlab impaired link (CPython, root): the relay in the server namespace, SIPp
or the simulated device in the device namespace, every packet captured on both veths.

    with NetLab() as lab:
        result = sipp_call(lab, workdir, "loss5", seconds=6)       # SIPp -> relay (echo agent)
        result = device_call(lab, workdir, "jitter30", seconds=8)   # device -> relay -> fake AI

A result is a dict: "ok" (the call set up, survived and hung up cleanly), "sip" (setup and
registration times, INVITEs sent), "uplink" / "downlink" (netlab_figures.stream_figures of
the RTP each way: loss, jitter, delay, playout gaps, jitter buffer depth, MOS), "relay" (its
per-call log's summary: RTP in/forwarded/out of order, barge-ins), "device" (the firmware's own
media figures, device calls only), "link" (what the impairment did) and "log" (the tail of the
peer's log when something failed).

The relay is the real `sipmote relay` command with a TOML config written here; the device is
sipmote.sim.SimDevice (the firmware on the MicroPython unix port) started in the device
namespace and driven through its control port, reached with a socket made in that namespace.
"""

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

import netlab
import netlab_figures
from netlab import DEVICE_IP, PROFILES, SERVER_IP

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIPP_SCENARIO = os.path.join(ROOT, "tests", "interop", "peers", "sipp", "uac_digest_stream.xml")
SIP_PORT = 5060
DEVICE_USER = "kitchen"
AGENT = "assistant"


def caller_audio(seconds, talk_s=1.2, pause_s=0.8, law="PCMU"):
    """G.711 bytes of `seconds`: a 440 Hz tone at -12 dBFS for talk_s, silence for pause_s,
    repeated. The echo agent answers each burst in the pause and is cut off (barge-in) by the
    next burst."""
    from voip import g711

    n = int(seconds * 8000)
    pcm = bytearray(2 * n)
    period = int((talk_s + pause_s) * 8000)
    for i in range(n):
        if i % period < talk_s * 8000:
            v = int(8000 * math.sin(2 * math.pi * 440 * i / 8000))
            pcm[2 * i] = v & 0xFF
            pcm[2 * i + 1] = (v >> 8) & 0xFF
    out = bytearray(n)
    (g711.ulaw_encode if law == "PCMU" else g711.alaw_encode)(pcm, out)
    return bytes(out)


class RelayProcess:
    """`sipmote relay` in the server namespace, on SERVER_IP:5060."""

    def __init__(self, lab, workdir, backend="echo", openai_url=None, api_key="sk-netlab-fake",
                 password="netlab-device-pw", level="info", rtp_ports=(40000, 40199)):
        self.lab = lab
        self.workdir = workdir
        self.password = password
        self.calls_dir = os.path.join(workdir, "calls")
        self.control_path = os.path.join(workdir, "relay.sock")
        self.config_path = os.path.join(workdir, "relay.toml")
        self.lines = []
        self.proc = None
        agent_backend = "" if backend == "openai" else 'backend = "echo"\n'
        with open(self.config_path, "w") as f:
            f.write(
                '[sip]\nbind = "%s"\nport = %d\nrtp_port_min = %d\nrtp_port_max = %d\n'
                '[backend]\nkind = "%s"\n%s'
                '[[agents]]\nname = "%s"\ninstructions = "netlab"\n%s'
                '[[devices]]\nuser = "%s"\npassword = "%s"\n'
                '[logging]\nlevel = "%s"\ncalls_dir = "%s"\n[control]\nsocket = "%s"\n'
                % (SERVER_IP, SIP_PORT, rtp_ports[0], rtp_ports[1], backend,
                   'openai_url = "%s"\n' % openai_url if openai_url else "", AGENT,
                   agent_backend, DEVICE_USER, password, level, self.calls_dir,
                   self.control_path))
        self.env = dict(os.environ, OPENAI_API_KEY=api_key)

    def start(self, timeout=20):
        argv = [sys.executable, "-m", "sipmote.cli", "relay", "--config", self.config_path]
        self.proc = self.lab.popen("server", argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=self.env,
                                   cwd=self.workdir)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("relay listening on" in line for line in self.lines):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("relay did not start:\n" + "\n".join(self.lines[-30:]))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def status(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.control_path)
            s.sendall(b'{"op": "status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def resources(self):
        """RSS (KiB), open fds and sockets of the relay process (the python under ip netns
        exec: ip execs it, so the pid is the same)."""
        pid = self.proc.pid
        rss = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = sockets = 0
        for name in os.listdir("/proc/%d/fd" % pid):
            fds += 1
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    sockets += 1
            except OSError:
                pass
        return {"rss_kib": rss, "fds": fds, "sockets": sockets}

    def call_events(self, name=None):
        """Every event of every per-call JSON-lines log (optionally only those named `name`)."""
        out = []
        if not os.path.isdir(self.calls_dir):
            return out
        for fname in sorted(os.listdir(self.calls_dir)):
            with open(os.path.join(self.calls_dir, fname)) as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if name is None or ev.get("event") == name:
                        out.append(ev)
        return out

    def stop(self):
        if self.proc is not None:
            netlab.stop_process(self.proc, timeout=10)


def _wait_for(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _answered(capture):
    """True once the device side has received a 2xx to an INVITE."""
    for _t, _o, _src, _sp, dst, _dp, payload in list(capture.packets):
        if dst == DEVICE_IP and payload.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in payload:
            return True
    return False


def _figures(profile_name, cap_dev, cap_srv, relay):
    dev = cap_dev.stop()
    srv = cap_srv.stop()
    result = {"profile": profile_name, "sip": netlab_figures.sip_timing(dev, DEVICE_IP)}
    for name, received, rx_ip, sent in (("uplink", srv, SERVER_IP, dev),
                                        ("downlink", dev, DEVICE_IP, srv)):
        streams = netlab_figures.rtp_streams(received, to=rx_ip)
        sent_streams = netlab_figures.rtp_streams(sent, to=rx_ip)
        if not streams:
            result[name] = None
            continue
        ssrc = max(streams, key=lambda k: len(streams[k]))  # the call's main stream
        result[name] = netlab_figures.stream_figures(streams[ssrc], sent_streams.get(ssrc))
    ended = relay.call_events("ended")
    summary = ended[-1] if ended else {}
    result["relay"] = {k: summary.get(k) for k in (
        "reason", "rtp_in", "forwarded", "out_of_order", "reordered", "seq_gaps", "reorder_held",
        "reorder_hold_max_ms", "rtp_out", "late_frames", "barge_ins", "underruns")}
    result["relay"]["barge_in_events"] = len(relay.call_events("barge_in"))
    return result


def sipp_call(lab, workdir, profile_name, seconds=6, seed=1, outage_after_s=1.0):
    """SIPp calls the relay's echo agent across the impaired link with digest auth, streams
    `seconds` of tone bursts, then hangs up. The relay runs for this call only."""
    os.makedirs(workdir, exist_ok=True)
    profile = PROFILES[profile_name]
    relay = RelayProcess(lab, workdir).start()
    lab.apply(profile, seed)
    audio_path = os.path.join(workdir, "caller.pcmu")
    with open(audio_path, "wb") as f:
        f.write(caller_audio(seconds))
    cap_dev, cap_srv = lab.capture("device"), lab.capture("server")
    trace = os.path.join(workdir, "sipp-messages.log")
    argv = ["sipp", "%s:%d" % (SERVER_IP, SIP_PORT), "-sf", SIPP_SCENARIO,
            "-i", DEVICE_IP, "-p", str(SIP_PORT), "-mp", "6000", "-mi", DEVICE_IP,
            "-m", "1", "-nostdin", "-timeout", "%ds" % (seconds + 60), "-timeout_error",
            "-max_recv_loops", "100", "-trace_msg", "-message_file", trace,
            "-key", "stream", "%s,1,0,PCMU/8000" % audio_path, "-key", "pt", "0",
            "-key", "codec", "PCMU/8000", "-key", "caller", DEVICE_USER,
            "-s", AGENT, "-au", DEVICE_USER, "-ap", relay.password,
            "-d", str(int(seconds * 1000 + 2500))]
    log_path = os.path.join(workdir, "sipp.out")
    t0 = time.monotonic()
    try:
        with open(log_path, "wb") as log:
            proc = lab.popen("device", argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
            if profile.get("outage_ms"):
                if _wait_for(lambda: _answered(cap_dev), 20):
                    time.sleep(outage_after_s)
                    lab.outage(profile["outage_ms"])
            try:
                status = proc.wait(seconds + 90)
            except subprocess.TimeoutExpired:
                netlab.stop_process(proc)
                status = "timeout"
        elapsed = time.monotonic() - t0
        time.sleep(0.3)
        link = lab.stats()
        _wait_for(lambda: relay.status().get("calls") == [], 10, 0.1)
        relay_status = relay.status()
    finally:
        relay.stop()
    result = _figures(profile_name, cap_dev, cap_srv, relay)
    result.update(ok=status == 0, exit=status, elapsed_s=round(elapsed, 1), link=link,
                  relay_left={"calls": len(relay_status["calls"]),
                              "rtp_ports_in_use": relay_status["rtp_ports_in_use"]})
    if status != 0:
        with open(log_path, errors="replace") as f:
            result["log"] = f.read()[-3000:] + "\n--- relay ---\n" + "\n".join(relay.lines[-30:])
    return result
