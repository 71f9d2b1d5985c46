"""End-to-end latency, mouth to ear: device microphone -> RTP -> relay -> OpenAI backend ->
(fake Realtime server) -> relay -> RTP -> device speaker, all on 127.0.0.1.

The device is the real firmware on the MicroPython unix port (sipmote sim); its microphone
plays a WAV of short 1 kHz clicks and its speaker records a WAV, both on the simulated I2S
DMA clock (DMA buffers as the ESP32 port makes them: tests/device/test_sim_dma.py). The fake
Realtime server answers every input_audio_buffer.append at once with the same audio (an agent
with no thinking time), so what is measured is what the system itself adds: for each click,
speaker onset - microphone onset.

The path is split on one clock: the simulator reports where its WAV files start as ticks_us,
which on the unix port is CLOCK_MONOTONIC, the relay's time.monotonic(). So each click is
timed at the microphone, at the relay's RTP socket (in and out, from a tap on the call's
media session) and at the speaker: uplink (microphone frame, the microphone's DMA buffer,
the device's poll, loopback), relay (WebSocket to the fake agent and back, pacing), downlink
(loopback, jitter buffer, speaker DMA queue).

Several calls, because the phase of the device's speaker DMA against the packets' arrival
varies per call (by up to a write cadence); within a call every click takes the same time
(one clock in the simulator, frame-synchronous at both ends). A reference call with the
buffers shipped before (relay pre-buffer 40 ms, speaker ibuf 2048 B: four 16 ms DMA buffers)
shows what they cost. ``python tests/bench/bench_e2e.py`` runs it alone.
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

from sipmote.relay.playout import DEFAULT_PREBUFFER_MS  # noqa: E402

RATE = 16000  # the unix_sim board's microphone and speaker rate
CLICKS = 14
FIRST_S = 0.6
EVERY_S = 0.37  # not a multiple of 20 ms: the clicks fall at every phase of a frame
CLICK_S = 0.006
AMP = 12000.0
CALLS_MEASURED = 5
REFERENCE = {"speaker_ibuf": 2048, "prebuffer_ms": 40}  # the buffers shipped before
_TICKS_PERIOD = 1 << 30  # compare device ticks and host time modulo this (either may wrap)


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


async def measure(work, reference=False):
    from e2e import EchoNow, read_wav, realtime_system

    mic = os.path.join(work, "clicks.wav")
    starts = click_track(mic)
    options = {}
    if reference:
        boards = os.path.join(work, "boards")
        shutil.copytree(os.path.join(ROOT, "boards", "unix_sim"), os.path.join(boards, "unix_sim"))
        profile_path = os.path.join(boards, "unix_sim", "profile.json")
        with open(profile_path) as f:
            profile = json.load(f)
        profile["speaker"]["ibuf"] = REFERENCE["speaker_ibuf"]
        with open(profile_path, "w") as f:
            json.dump(profile, f)
        options = {"boards": boards, "playout_prebuffer_ms": REFERENCE["prebuffer_ms"]}
    async with realtime_system(work, agent=EchoNow(), mic=mic, **options) as (system, fake):
        call = await system.place_call()
        tap = RelayTap(call.media)
        await asyncio.sleep(FIRST_S + EVERY_S * CLICKS + 0.4)
        stats = call.media.stats
        relay_in = stats["in_latency"].summary_ms()
        relay_out = stats["out_latency"].summary_ms()
        playout = call.media.playout
        pacing = {"held": playout.held, "early_starts": playout.early_starts,
                  "underruns": playout.underruns}
        await system.hangup("device")
        await system.wait_idle()
    rate, spk = read_wav(system.speaker)
    heard = onsets(spk, AMP / 4, int(0.15 * rate))
    mic_rate, mic_x = read_wav(mic)
    sent = onsets(mic_x, AMP / 4, int(0.15 * rate))
    if len(heard) != len(sent) or len(sent) != len(starts):
        raise RuntimeError("clicks: %d in the microphone, %d at the speaker" % (
            len(sent), len(heard)))
    mouth_to_ear = np.array([(h - s) / rate * 1000 for s, h in zip(sent, heard)])
    n = min(len(tap.rx), len(tap.tx), len(sent))
    relay = np.array([(tap.tx[i] - tap.rx[i]) * 1000 for i in range(n)])
    result = system.device_result
    media = result["calls"][-1]["media"]
    mic_epoch, spk_epoch = result["wav_epochs_ticks_us"]
    uplink = np.array([_ms_between(mic_epoch, sent[i] / mic_rate, tap.rx[i]) for i in range(n)])
    downlink = np.array([_ms_between(spk_epoch, heard[i] / rate, tap.tx[i], -1)
                         for i in range(n)])
    return {"mouth_to_ear": mouth_to_ear, "relay": relay, "uplink": uplink,
            "downlink": downlink, "relay_in": relay_in, "relay_out": relay_out,
            "invalid": len(fake.invalid), "pacing": pacing,
            "speaker_underruns": result["speaker_underruns"],
            "jitter": {k: media.get(k) for k in ("target_ms", "late_underruns", "concealed",
                                                 "underruns", "trimmed", "jitter_ms")}}


def _ms_between(epoch_ticks_us, offset_s, host_s, sign=1):
    """ms from the device's WAV moment (its epoch in ticks_us + offset_s) to the host's
    time.monotonic() host_s (sign=-1: from host_s to the WAV moment)."""
    device_us = (epoch_ticks_us + int(round(offset_s * 1e6))) % _TICKS_PERIOD
    host_us = int(round(host_s * 1e6)) % _TICKS_PERIOD
    d = (host_us - device_us) % _TICKS_PERIOD
    if d >= _TICKS_PERIOD // 2:
        d -= _TICKS_PERIOD
    return sign * d / 1000.0


def _call(reference=False):
    work = tempfile.mkdtemp(prefix="sipmote-bench-e2e-")
    try:
        return asyncio.run(measure(work, reference))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(report):
    calls = [_call() for _ in range(CALLS_MEASURED)]
    clicks = np.concatenate([m["mouth_to_ear"] for m in calls])
    per_call = np.array([float(np.median(m["mouth_to_ear"])) for m in calls])

    def median(key):
        return float(np.median(np.concatenate([m[key] for m in calls])))

    report("e2e", "mouth to ear, device->relay->device p50", float(np.median(clicks)), "ms",
           "loopback; agent answers at once; aim <= 60")
    report("e2e", "mouth to ear min / max, per-call medians", "%.1f / %.1f" % (
        per_call.min(), per_call.max()), "ms", "%d calls x %d clicks" % (
        len(calls), len(calls[0]["mouth_to_ear"])))
    report("e2e", "mouth to ear min / max, every click", "%.1f / %.1f" % (
        clicks.min(), clicks.max()), "ms")
    report("e2e", "  uplink: mic onset -> relay RTP in", median("uplink"), "ms",
           "mic frame 20 + mic DMA buffer 0-12 + poll + loopback")
    report("e2e", "  relay: RTP in -> RTP out", median("relay"), "ms",
           "fake agent's WebSocket round trip + pacing (pre-buffer %d ms)"
           % DEFAULT_PREBUFFER_MS)
    report("e2e", "  downlink: relay RTP out -> speaker onset", median("downlink"), "ms",
           "loopback + jitter buffer + speaker DMA (2 x 16 ms buffers)")
    report("e2e", "  relay processing p50 in / out", "%.2f / %.2f" % (
        calls[0]["relay_in"].get("p50_ms", 0), calls[0]["relay_out"].get("p50_ms", 0)), "ms",
        "WebSocket send / RTP send, pacing wait excluded")
    j = [m["jitter"] for m in calls]
    report("e2e", "  device jitter target / late underruns", "%s / %s" % (
        "-".join(str(x) for x in sorted({m["target_ms"] for m in j})),
        sum(m["late_underruns"] or 0 for m in j)), "ms / n",
        "concealed %d frames, speaker underruns %d over the calls" % (
            sum(m["concealed"] or 0 for m in j), sum(m["speaker_underruns"] for m in calls)))
    p = [m["pacing"] for m in calls]
    report("e2e", "  relay pacing: held / early starts / underruns", "%d / %d / %d" % (
        sum(x["held"] for x in p), sum(x["early_starts"] for x in p),
        sum(x["underruns"] for x in p)), "n", "over the calls")
    m = _call(reference=True)
    report("e2e", "mouth to ear, the buffers shipped before", float(np.median(m["mouth_to_ear"])),
           "ms", "relay pre-buffer %d ms, speaker ibuf %d B (64 ms)" % (
               REFERENCE["prebuffer_ms"], REFERENCE["speaker_ibuf"]))
    report("e2e", "  relay / downlink share then", "%.1f / %.1f" % (
        float(np.median(m["relay"])), float(np.median(m["downlink"]))), "ms")


if __name__ == "__main__":
    from run import Table

    table = Table()
    run(table)
    table.print_summary()
