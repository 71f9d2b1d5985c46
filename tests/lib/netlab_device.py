"""The simulated device calling the relay's OpenAI backend across a netlab link (CPython, root).

    with NetLab() as lab:
        result = device_call(lab, workdir, "loss5", seconds=8)

The device is the firmware on the MicroPython unix port (sipmote.sim.SimDevice) in the device
namespace: it registers with the relay (digest), then calls it; its microphone plays tone
bursts. The relay (`sipmote relay`, openai backend) in the server namespace talks to the fake
OpenAI Realtime server of tests/host/fake_realtime.py, which runs here on its own asyncio
thread but listens on the server namespace's loopback. The fake's agent is tests/lib/e2e.py's
FakeAgent: a VAD on the caller audio that answers each utterance with a 3 s sweep, so the next
burst of the microphone interrupts it: barge-in across the impaired link.

The result is netlab_calls' (SIP timings, RTP figures both ways, the relay's summary) plus
"device": the firmware's own media figures (its jitter buffer's lost/late/concealed/depth)
taken from its status just before it hangs up, "barge_ins" (the relay's barge-in events),
"registered" and "answered" (what the device's log says).
"""

import asyncio
import json
import os
import socket
import threading
import time
import wave

import netlab
import netlab_calls
from e2e import FAKE_KEY, FakeAgent, encode, sweep
from fake_realtime import FakeRealtimeServer, _log
from netlab import DEVICE_IP, PROFILES, SERVER_IP
from websockets.asyncio.server import serve

from sipmote.sim import SimDevice


class LoopThread:
    """An asyncio loop on its own thread, for the fake server while the caller blocks."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="netlab-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class NamespacedFakeRealtime(FakeRealtimeServer):
    """The fake Realtime server on a listening socket made in another namespace."""

    def __init__(self, sock, **kwargs):
        super().__init__(**kwargs)
        self._sock = sock

    async def start(self):
        self._server = await serve(self._handler, sock=self._sock, max_size=None,
                                   compression=None, logger=_log)
        self.port = self._sock.getsockname()[1]
        return self


class NamespacedSimDevice(SimDevice):
    """SimDevice started in the lab's device namespace; its control port is reached with a
    socket made there."""

    def __init__(self, lab, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lab = lab

    def start(self):
        self.args = self.lab.argv("device", self.args)
        return super().start()

    def control(self, command, timeout=5.0):
        sock = self.lab.socket("device")
        try:
            sock.settimeout(timeout)
            sock.sendto(command.encode(), ("127.0.0.1", self.control_port))
            return sock.recvfrom(65535)[0].decode()
        finally:
            sock.close()


def write_mic(path, seconds, rate=8000):
    """Tone bursts (netlab_calls.caller_audio's pattern) as a 16-bit WAV for the microphone."""
    from voip import g711

    law = netlab_calls.caller_audio(seconds)
    pcm = bytearray(2 * len(law))
    g711.ulaw_decode(law, pcm)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(pcm))


def device_config(path, password):
    cfg = {
        "board": "unix_sim",
        "log_level": "info",
        "sip": {"user": netlab_calls.DEVICE_USER, "password": password, "local_ip": DEVICE_IP,
                "local_port": 5060, "registrar": "%s:%d" % (SERVER_IP, netlab_calls.SIP_PORT)},
        "call": {"target": "sip:%s@%s:%d" % (netlab_calls.AGENT, SERVER_IP,
                                             netlab_calls.SIP_PORT)},
        "audio": {"rtp_port": 40000},
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


def _line(device, text, since=0):
    return next((ln for ln in device.lines[since:] if text in ln), None)


def _wait_line(device, text, timeout, since=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = _line(device, text, since)
        if line is not None:
            return line
        if device.proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def device_call(lab, workdir, profile_name, seconds=8, seed=1, outage_after_s=2.0,
                reply_s=3.0, heapsize="1M"):
    os.makedirs(workdir, exist_ok=True)
    profile = PROFILES[profile_name]
    lab.apply(profile, seed)
    agent = FakeAgent(reply=encode("pcmu", sweep(reply_s)))
    loop = LoopThread()
    listener = lab.socket("server", socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    fake = NamespacedFakeRealtime(listener)
    fake.hooks.append(agent.hook)
    loop.run(fake.start())
    relay = netlab_calls.RelayProcess(lab, workdir, backend="openai", api_key=FAKE_KEY,
                                      openai_url="ws://127.0.0.1:%d/v1/realtime" % fake.port)
    device = None
    result = {"profile": profile_name}
    try:
        relay.start()
        cap_dev, cap_srv = lab.capture("device"), lab.capture("server")
        mic = os.path.join(workdir, "mic.wav")
        write_mic(mic, 20)
        cfg_path = os.path.join(workdir, "device.json")
        device_config(cfg_path, relay.password)
        device = NamespacedSimDevice(lab, cfg_path, mic=mic, mic_loop=True,
                                     speaker=os.path.join(workdir, "speaker.wav"),
                                     control_port=45000, heapsize=heapsize)
        device.start()
        result["registered"] = _wait_line(device, "registered (", 30) is not None
        since = len(device.lines)
        reply = device.control("call") if result["registered"] else "not registered"
        result["answered"] = (reply.startswith("ok")
                              and _wait_line(device, "connected:", 30, since) is not None)
        media = None
        if result["answered"]:
            if profile.get("outage_ms"):
                time.sleep(outage_after_s)
                lab.outage(profile["outage_ms"])
                time.sleep(max(0.0, seconds - outage_after_s))
            else:
                time.sleep(seconds)
            status = json.loads(device.control("status")[3:])
            media = status.get("media")
            result["survived"] = status.get("call") is not None and media is not None
            since = len(device.lines)
            device.control("hangup")
            result["hung_up"] = _wait_line(device, "ended:", 20, since) is not None
        result["device"] = media
        time.sleep(0.5)
        result["link"] = lab.stats()
        netlab_calls._wait_for(lambda: relay.status().get("calls") == [], 10, 0.1)
        relay_status = relay.status()
        result["relay_left"] = {"calls": len(relay_status["calls"]),
                                "rtp_ports_in_use": relay_status["rtp_ports_in_use"]}
        result["device_exit"] = device.stop()
        result["device_result"] = device.result
        result.update(netlab_calls._figures(profile_name, cap_dev, cap_srv, relay))
        result["agent_responses"] = len(agent.responses)
    finally:
        if device is not None:
            device.close()
        relay.stop()
        loop.run(fake.stop())
        loop.close()
    result["ok"] = bool(result.get("answered") and result.get("survived")
                        and result.get("hung_up"))
    if not result["ok"]:
        result["log"] = ("\n".join(device.lines[-40:]) if device else "") + \
            "\n--- relay ---\n" + "\n".join(relay.lines[-30:])
    return result


__all__ = ["device_call", "NamespacedSimDevice", "NamespacedFakeRealtime", "netlab"]
