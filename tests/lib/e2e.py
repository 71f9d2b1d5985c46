"""Full-system helpers (CPython): the relay, the fake OpenAI Realtime server and the simulated
device on 127.0.0.1, plus the audio analysis the full-system tests, the end-to-end benchmark
and the soak tests share.

    async with realtime_system(workdir, agent=FakeAgent(reply=audio), mic=wav) as (system, fake):
        call = await system.place_call()
        ...
        await system.hangup("relay")
        await system.wait_idle()            # raises, naming what either side still holds

``system`` is a sipmote.loopback.LoopbackSystem (relay in this process, device = the firmware
on the MicroPython unix port in a subprocess); ``fake`` is tests/host/fake_realtime's
FakeRealtimeServer, which validates every client event against the openai SDK's models.
``echo_system(workdir, ...)`` is the same with the offline echo backend and no fake server.

FakeAgent is the server's side of the conversation: a voice-activity detector on the caller
audio it receives (G.711 decoded, energy per append with a start time and a hangover), which
sends input_audio_buffer.speech_started/stopped as the real service does, so barge-in comes
from the device's microphone; after each utterance it can answer with scripted audio (bursts
faster than real time, as the service sends them). ``EchoNow`` answers every append with the
same audio at once: an agent with no thinking time, for the latency figures.
"""

import asyncio
import contextlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if os.path.join(ROOT, "tests", "host") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tests", "host"))

from fake_realtime import FakeRealtimeServer  # noqa: E402

from sipmote.loopback import LoopbackSystem  # noqa: E402
from sipmote.relay import g711_tables  # noqa: E402
from sipmote.wav import read_wav, write_wav  # noqa: E402, F401 - the tests' WAV files

DEMO_WAV = os.path.join(ROOT, "host_tools", "sipmote", "data", "demo_caller.wav")
FAKE_KEY = "sk-fake-e2e-key"


# -- systems ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def realtime_system(workdir, agent=None, **system_options):
    """Fake Realtime server (with `agent`'s behaviour) + relay (openai backend) + device."""
    fake = await FakeRealtimeServer().start()
    if agent is not None:
        fake.hooks.append(agent.hook)
    system = LoopbackSystem(workdir, "openai", openai_url=fake.url, api_key=FAKE_KEY,
                            **system_options)
    try:
        await system.start()
        yield system, fake
    finally:
        await system.stop()
        await fake.stop()


@contextlib.asynccontextmanager
async def echo_system(workdir, **system_options):
    system = LoopbackSystem(workdir, "echo", **system_options)
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


# -- the fake server's side of the conversation --------------------------------------------------


class FakeAgent:
    """Server VAD on the caller's audio and scripted answers, as a FakeRealtimeServer hook.

    reply: G.711 bytes answered after each utterance (None: listen only); bursts: sizes of
    the response.output_audio.delta chunks (cycled); pause_s between bursts."""

    def __init__(self, codec="pcmu", threshold=800.0, start_ms=40, hangover_ms=500, reply=None,
                 bursts=(2400, 1200, 800), pause_s=0.02, transcript="a scripted answer"):
        self.codec = codec
        self.threshold = threshold
        self.start_ms = start_ms
        self.hangover_ms = hangover_ms
        self.reply = reply
        self.bursts = bursts
        self.pause_s = pause_s
        self.transcript = transcript
        self.calls = {}  # connection -> _Listening
        self.responses = []  # (connection, response_id, item_id) once each is sent (or cut)
        self._tasks = set()

    async def hook(self, conn, event):
        if event["type"] != "input_audio_buffer.append":
            return
        state = self.calls.get(conn)
        if state is None:
            state = self.calls[conn] = _Listening()
        audio = conn.appends[-1]
        x = g711_tables.decode(self.codec, audio).astype(np.float64)
        ms = len(audio) / 8.0
        loud = len(x) and float(np.sqrt(np.mean(x * x))) >= self.threshold
        at = state.position_ms
        state.position_ms += ms
        if state.item is None:
            state.loud_ms = state.loud_ms + ms if loud else 0.0
            if state.loud_ms >= self.start_ms:
                start = int(state.position_ms - state.loud_ms)
                state.item = await conn.speech_started(audio_start_ms=start)
                state.quiet_ms = 0.0
                state.utterances.append([start, None])
            return
        state.quiet_ms = 0.0 if loud else state.quiet_ms + ms
        if state.quiet_ms >= self.hangover_ms:
            item, state.item = state.item, None
            state.loud_ms = 0.0
            end = int(at + ms - state.quiet_ms)
            state.utterances[-1][1] = end
            await conn.speech_stopped(item, audio_end_ms=end)
            await conn.caller_transcript(item, "utterance %d" % len(state.utterances))
            if self.reply is not None:
                task = asyncio.get_running_loop().create_task(self._answer(conn))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _answer(self, conn):
        try:
            rid, item = await conn.respond(self.reply, chunk_sizes=self.bursts,
                                           pause_s=self.pause_s, transcript=self.transcript)
        except Exception:  # noqa: BLE001 - the call (and its WebSocket) ended meanwhile
            return
        self.responses.append((conn, rid, item))

    def utterances(self, conn):
        """[(audio_start_ms, audio_end_ms)] the VAD found on one connection."""
        state = self.calls.get(conn)
        return [tuple(u) for u in state.utterances] if state else []


class _Listening:
    def __init__(self):
        self.position_ms = 0.0
        self.loud_ms = 0.0
        self.quiet_ms = 0.0
        self.item = None
        self.utterances = []


class EchoNow:
    """Every append answered at once with the same audio, in one long response per call."""

    def __init__(self):
        self.open = {}

    async def hook(self, conn, event):
        if event["type"] != "input_audio_buffer.append":
            return
        ids = self.open.get(conn)
        if ids is None:
            ids = self.open[conn] = (await conn.begin_response(), conn.next_id("item"))
        await conn.audio_delta(ids[0], ids[1], conn.appends[-1])


# -- audio --------------------------------------------------------------------------------------


def at_rate(x, rate, to):
    if rate == to:
        return np.asarray(x, dtype=np.float64)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float64), rate, to)


def decode(codec, payload):
    return g711_tables.decode(codec, bytes(payload)).astype(np.float64)


def encode(codec, pcm):
    return bytes(g711_tables.encode(codec, np.clip(np.round(pcm), -32768, 32767).astype("<i2")))


def sweep(seconds, f0=300.0, f1=3300.0, amp=9000.0, rate=8000):
    """A linear chirp: every 20 ms of it differs from every other, so a piece of it found in
    a recording says exactly where it came from."""
    t = np.arange(int(seconds * rate)) / rate
    k = (f1 - f0) / seconds
    return amp * np.sin(2 * np.pi * (f0 * t + 0.5 * k * t * t))


def speech_segments(x, rate, threshold=300.0, min_gap_s=0.8):
    """[(start, end)] sample ranges of speech separated by at least min_gap_s of quiet."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if not len(loud):
        return []
    segments = []
    start = prev = loud[0]
    for i in loud[1:]:
        if i - prev > min_gap_s * rate:
            segments.append((int(start), int(prev) + 1))
            start = i
        prev = i
    segments.append((int(start), int(prev) + 1))
    return segments


def find(ref, sig):
    """(lag, normalised correlation): where in sig the piece ref fits best (sig[lag:] ~ ref)."""
    ref = np.asarray(ref, dtype=np.float64)
    sig = np.asarray(sig, dtype=np.float64)
    n, m = len(ref), len(sig)
    if n == 0 or m < n:
        return 0, 0.0
    size = 1 << int(np.ceil(np.log2(n + m)))
    spec = np.fft.rfft(sig, size) * np.conj(np.fft.rfft(ref, size))
    num = np.fft.irfft(spec, size)[: m - n + 1]
    c = np.concatenate(([0.0], np.cumsum(sig * sig)))
    energy = c[n:] - c[: m - n + 1]
    ref_energy = float(np.dot(ref, ref))
    # a quiet stretch of sig is no match: floor its energy at 1 % of ref's (-20 dB)
    den = np.sqrt(np.maximum(energy, 0.01 * ref_energy + 1e-9) * ref_energy)
    score = num / den
    lag = int(np.argmax(score))
    return lag, float(score[lag])


def correlation_at(ref, sig, lag):
    seg = sig[lag : lag + len(ref)]
    if lag < 0 or len(seg) < len(ref):
        return 0.0
    den = np.sqrt(float(np.dot(ref, ref)) * float(np.dot(seg, seg)))
    return float(np.dot(ref, seg)) / den if den else 0.0


def band(x, rate=8000, lo=200.0, hi=3000.0):
    """x limited to lo..hi Hz (an FFT brick wall): the telephone band, where every stage of
    the path is flat. Outside it the device's DC blocker and half-band filters, which are
    there on purpose, would count as differences."""
    x = np.asarray(x, dtype=np.float64)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x))


def pieces_in_order(ref, sig, piece, tolerance=2, upsample=4):
    """Split ref into pieces of `piece` samples and find each in sig. Returns (base lag,
    [correlation of each piece at base lag + its offset]): all high means all of ref arrived,
    complete and in order, with one constant delay (within `tolerance` samples). Pieces of
    ref that are (nearly) silent prove nothing and are left out.

    Both are compared `upsample` times finer: the device's 2:1 filters delay the signal by
    a fraction of an 8 kHz sample, which a whole-sample comparison would count as a
    difference (a half sample costs 0.4 of the correlation at 3 kHz)."""
    if upsample > 1:
        base, scores = pieces_in_order(
            at_rate(ref, 1, upsample), at_rate(sig, 1, upsample), piece * upsample,
            tolerance * upsample, 1)
        return base / upsample, scores
    base, _ = find(ref[:piece], sig)
    floor = 0.05 * float(np.sqrt(np.mean(np.square(ref))))
    scores = []
    for start in range(0, len(ref) - piece + 1, piece):
        if float(np.sqrt(np.mean(np.square(ref[start : start + piece])))) < floor:
            continue
        want = base + start
        best = max(correlation_at(ref[start : start + piece], sig, want + d)
                   for d in range(-tolerance, tolerance + 1))
        scores.append(best)
    return base, scores


def played_frames(ref, sig, base, frame, min_corr=0.9, tolerance=2):
    """How many consecutive frames of ref, from its start, sig plays at delay base."""
    count = 0
    for start in range(0, len(ref) - frame + 1, frame):
        best = max(correlation_at(ref[start : start + frame], sig, base + start + d)
                   for d in range(-tolerance, tolerance + 1))
        if best < min_corr:
            break
        count += 1
    return count


async def until(predicate, timeout, what, poll=0.01):
    """Wait for predicate() to hold, polling every `poll` s; fail naming `what` at `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        await asyncio.sleep(poll)
