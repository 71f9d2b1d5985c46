"""End-to-end latency, mouth to ear: device microphone -> RTP -> relay -> OpenAI backend ->
(fake Realtime server) -> relay -> RTP -> device speaker, all on 127.0.0.1.

The device is the real firmware on the MicroPython unix port (sipmote sim); its microphone
plays a WAV of short 1 kHz clicks and its speaker records a WAV, both on the simulated I2S
DMA clock, which starts both files at the same instant. The fake Realtime server answers every
input_audio_buffer.append at once with the same audio (an agent with no thinking time), so
what is measured is what the system itself adds: for each click, speaker onset - microphone
onset. That is split in two with timestamps taken inside the relay (RTP datagram of the click
received -> RTP packet of the click sent, on the relay's clock): the relay's share, and the
device's (microphone frame + uplink, jitter buffer, speaker DMA queue).

Measured twice in the same run: with the shipped settings (relay prebuffer 40 ms, device
jitter target 60 ms, speaker I2S buffer of 2048 B = 64 ms as on the boards), and with every
buffer at its floor (relay prebuffer 0, jitter 20 ms, speaker buffer 1024 B = 32 ms, the
least a board profile allows) to show where the time goes. The system is frame-synchronous
(20 ms frames at both ends, one clock in the simulator), so every click takes the same time.
``python tests/bench/bench_e2e.py`` runs it alone.
"""

import asyncio
import json
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _path in (os.path.join(ROOT, "modules"), os.path.join(ROOT, "tests", "lib")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

RATE = 16000  # the unix_sim board's microphone and speaker rate
CLICKS = 14
FIRST_S = 0.6
EVERY_S = 0.37  # not a multiple of 20 ms: the clicks fall at every phase of a frame
CLICK_S = 0.006
AMP = 12000.0
CALLS_MEASURED = 3


def click_track(path):
    from e2e import write_wav

    x = np.zeros(int((FIRST_S + EVERY_S * CLICKS + 0.5) * RATE))
    t = np.arange(int(CLICK_S * RATE)) / RATE
    burst = AMP * np.sin(2 * np.pi * 1000 * t)
    starts = [int((FIRST_S + EVERY_S * i) * RATE) for i in range(CLICKS)]
    for s in starts:
        x[s : s + len(burst)] = burst
    write_wav(path, x, RATE)
    return starts


def onsets(x, threshold, quiet):
    """Sample index of each first crossing of threshold after `quiet` samples below it."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    found, last = [], -(10**12)
    for i in idx:
        if i - last > quiet:
            found.append(int(i))
        last = i
    return found


class RelayTap:
    """Times (relay clock) of the first loud RTP payload after quiet, caller side and agent
    side, from the call's media session: wraps its datagram handler and its transport."""

    def __init__(self, session, codec="pcmu", threshold=AMP / 4):
        from sipmote.relay import g711_tables

        self.codec, self.threshold, self.tables = codec, threshold, g711_tables
        self.rx, self.tx = [], []
        self._rx_quiet = self._tx_quiet = True
        receive = session._on_rtp
        transport = session._transport
        send = transport.sendto

        def on_rtp(data, addr):
            self._rx_quiet = self._mark(data, self.rx, self._rx_quiet)
            receive(data, addr)

        def sendto(data, addr=None):
            send(data, addr)
            self._tx_quiet = self._mark(data, self.tx, self._tx_quiet)

        session._on_rtp = on_rtp
        transport.sendto = sendto

    def _mark(self, packet, times, quiet):
        import time

        loud = len(packet) > 12 and float(np.max(np.abs(
            self.tables.decode(self.codec, bytes(packet[12:]))))) > self.threshold
        if loud and quiet:
            times.append(time.monotonic())
        return not loud


async def measure(work, floor=False):
    from e2e import EchoNow, read_wav, realtime_system

    mic = os.path.join(work, "clicks.wav")
    starts = click_track(mic)
    options = {}
    if floor:
        boards = os.path.join(work, "boards")
        shutil.copytree(os.path.join(ROOT, "boards", "unix_sim"), os.path.join(boards, "unix_sim"))
        profile_path = os.path.join(boards, "unix_sim", "profile.json")
        with open(profile_path) as f:
            profile = json.load(f)
        profile["speaker"]["ibuf"] = 1024  # the least a profile may have: 32 ms at 16 kHz
        with open(profile_path, "w") as f:
            json.dump(profile, f)
        options = {"boards": boards, "device_config": {"audio": {"jitter_ms": 20}},
                   "playout_prebuffer_ms": 0}
    async with realtime_system(work, agent=EchoNow(), mic=mic, **options) as (system, fake):
        call = await system.place_call()
        tap = RelayTap(call.media)
        await asyncio.sleep(FIRST_S + EVERY_S * CLICKS + 0.4)
        stats = call.media.stats
        relay_in = stats["in_latency"].summary_ms()
        relay_out = stats["out_latency"].summary_ms()
        await system.hangup("device")
        await system.wait_idle()
    rate, spk = read_wav(system.speaker)
    heard = onsets(spk, AMP / 4, int(0.15 * rate))
    sent = onsets(read_wav(mic)[1], AMP / 4, int(0.15 * rate))
    if len(heard) != len(sent) or len(sent) != len(starts):
        raise RuntimeError("clicks: %d in the microphone, %d at the speaker" % (
            len(sent), len(heard)))
    mouth_to_ear = np.array([(h - s) / rate * 1000 for s, h in zip(sent, heard)])
    n = min(len(tap.rx), len(tap.tx), len(sent))
    relay = np.array([(tap.tx[i] - tap.rx[i]) * 1000 for i in range(n)])
    return {"mouth_to_ear": mouth_to_ear, "relay": relay, "relay_in": relay_in,
            "relay_out": relay_out, "invalid": len(fake.invalid)}


def _call(floor):
    work = tempfile.mkdtemp(prefix="sipmote-bench-e2e-")
    try:
        m = asyncio.run(measure(work, floor))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m["device"] = m["mouth_to_ear"][: len(m["relay"])] - m["relay"]
    return m


def run(report):
    # Within a call every click takes the same time; between calls the phase of the relay's
    # pacing clock against the device's frames (random) moves it by up to a frame: 3 calls.
    calls = [_call(False) for _ in range(CALLS_MEASURED)]
    per_call = np.array([float(np.median(m["mouth_to_ear"])) for m in calls])
    relay = np.array([float(np.median(m["relay"])) for m in calls])
    device = np.array([float(np.median(m["device"])) for m in calls])
    report("e2e", "mouth to ear, device->relay->device median", float(np.median(per_call)),
           "ms", "loopback; agent answers at once; aim <= 60")
    report("e2e", "mouth to ear min / max over calls", "%.1f / %.1f" % (
        per_call.min(), per_call.max()), "ms", "%d calls x %d clicks" % (
        len(calls), len(calls[0]["mouth_to_ear"])))
    report("e2e", "  relay share (click RTP in -> RTP out)", float(np.median(relay)), "ms",
           "playout queue (40 ms prebuffer) + pacing slot")
    report("e2e", "  device share (mic frame, jitter buf, spk DMA)", float(np.median(device)),
           "ms", "speaker I2S buffer alone: 64 ms")
    report("e2e", "  relay processing p50 in / out", "%.2f / %.2f" % (
        calls[0]["relay_in"].get("p50_ms", 0), calls[0]["relay_out"].get("p50_ms", 0)), "ms",
        "WebSocket send / RTP send, pacing wait excluded")
    m = _call(True)
    report("e2e", "mouth to ear, every buffer at its floor", float(np.median(m["mouth_to_ear"])),
           "ms", "prebuffer 0, jitter 20 ms, speaker buffer 32 ms")
    report("e2e", "  device share at the floor", float(np.median(m["device"])), "ms")


if __name__ == "__main__":
    from run import Table

    table = Table()
    run(table)
    table.print_summary()
