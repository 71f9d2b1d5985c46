"""`sipmote demo` (`make demo`): a simulated device calls the relay and talks to the agent.

    sipmote demo [--backend echo|openai] [--say TEXT] [--mic WAV] [--out WAV]

Everything runs on 127.0.0.1 (sipmote.loopback): the relay in this process, the device (the
real firmware on the MicroPython unix port) in a subprocess. The device dials the relay's
agent and its microphone speaks two sentences: espeak-ng says them when it is installed, else
the recording shipped beside this module plays. The second sentence starts while the agent is
still answering the first, so the log shows a barge-in. The agent is the offline echo backend
(it plays each utterance back), or OpenAI Realtime when OPENAI_API_KEY is set.

The live log shows what each side does (call placed, call up, caller speech started and
stopped, transcripts, agent audio playing, barge-in, hangup); when the caller is done and the
agent has finished talking the device hangs up, the figures of both sides are printed
(packets, loss, jitter, the relay's added latency) and the demo exits 0. What the device's
speaker played is written to --out (default build/demo/heard.wav).
"""

import asyncio
import contextlib
import gc
import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave

from .wav import read_wav, write_wav

HELP = "a simulated device calls the relay and talks to the agent (what `make demo` runs)"

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_MIC = os.path.join(HERE, "data", "demo_caller.wav")
SCRIPT = ("Hello, this is the kitchen phone. Can you hear me?", "Sorry, goodbye!")
GAP_S = 1.2  # between the sentences: the echo agent is answering the first one by then
RATE = 8000
INSTRUCTIONS = ("You are the voice assistant on a small desk phone. "
                "Answer in one short sentence.")
TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"


def add_arguments(parser):
    default = "openai" if os.environ.get("OPENAI_API_KEY") else "echo"
    parser.add_argument("--backend", choices=("echo", "openai"), default=default,
                        help="the agent (default: openai when OPENAI_API_KEY is set, else echo)")
    parser.add_argument("--openai-url", help="Realtime WebSocket URL (a proxy or a local fake)")
    parser.add_argument("--model", help="Realtime model name")
    parser.add_argument("--say", metavar="TEXT", help="the first sentence (needs espeak-ng)")
    parser.add_argument("--mic", metavar="WAV", help="what the microphone hears instead")
    parser.add_argument("--out", default=os.path.join("build", "demo", "heard.wav"),
                        metavar="WAV", help="where to write what the device heard")
    parser.add_argument("--max-call", type=float, default=20.0, metavar="S",
                        help="hang up after this long whatever happens (default 20)")


# -- the caller's voice -------------------------------------------------------------------------


def speak(text, espeak):
    """One sentence from espeak-ng at 8 kHz, leading and trailing silence trimmed."""
    import numpy as np
    import soxr

    with tempfile.TemporaryDirectory(prefix="sipmote-say-") as tmp:
        path = os.path.join(tmp, "say.wav")
        subprocess.run([espeak, "-s", "180", "-w", path, text], check=True,
                       capture_output=True, timeout=30)
        rate, x = read_wav(path)
    x = x.astype(np.float32)  # soxr resamples in the input's precision
    loud = np.flatnonzero(np.abs(x) > 300)
    if len(loud):
        x = x[loud[0] : loud[-1] + 1]
    return soxr.resample(x, rate, RATE)


def caller_script(sentences, espeak, gap_s=GAP_S):
    """The microphone's sound: 0.2 s of quiet, the sentences with gap_s between, 0.2 s."""
    import numpy as np

    parts = [np.zeros(RATE // 5)]
    for i, text in enumerate(sentences):
        if i:
            parts.append(np.zeros(int(gap_s * RATE)))
        parts.append(speak(text, espeak))
    parts.append(np.zeros(RATE // 5))
    return np.concatenate(parts)


def wav_seconds(path):
    with wave.open(path, "rb") as w:
        return w.getnframes() / float(w.getframerate())


# -- the live log ---------------------------------------------------------------------------------


class LiveLog:
    """One timeline for both sides: seconds since the demo started, who, what."""

    def __init__(self, out=sys.stdout):
        self.t0 = time.monotonic()
        self.out = out

    def __call__(self, who, text):
        print("%6.2f  %-6s  %s" % (time.monotonic() - self.t0, who, text), file=self.out,
              flush=True)


# device log lines worth showing, and how to say them
_DEVICE_SKIP = ("app: config:", "control: listening")


def device_line(log, line):
    # "   0.055 INFO  call: calling sip:..." -> "call: calling sip:..."
    parts = line.split(None, 2)
    if len(parts) == 3 and parts[1] in ("INFO", "WARN", "ERROR", "DEBUG"):
        text = parts[2]
        if parts[1] != "INFO":
            text = parts[1].lower() + ": " + text
    else:
        text = line
    if line.startswith("SIM-RESULT ") or any(s in text for s in _DEVICE_SKIP):
        return
    if text.startswith("call: calling "):
        text = "call placed: " + text[len("call: calling "):]
    elif text.startswith("call: connected"):
        text = "call up: " + text[len("call: connected: "):]
    elif text.startswith("call: ended: "):
        text = "hung up: " + text[len("call: ended: "):]
    log("device", text)


class RelayConsole(logging.Handler):
    """The relay's console lines (its own and each call's `say` lines) into the live log."""

    def __init__(self, log, events=None):
        super().__init__(logging.DEBUG)
        self.live = log
        self.events = events

    def emit(self, record):
        if self.events is not None:
            self.events.poll()  # what the call log holds so far comes first: keeps the order
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not stop the demo
            return
        if text.startswith("[") and "] " in text:
            text = text.split("] ", 1)[1]  # the call id: there is one call
        if record.levelno < logging.INFO:
            if text != "caller speaking":
                return
            text = "caller speech started"
        elif record.levelno >= logging.WARNING:
            text = record.levelname.lower() + ": " + text
        self.live("relay", text)


class CallEvents:
    """Reads the relay's per-call JSON-lines log as it grows: the events that have no console
    line (speech stopped, agent audio starting) go to the live log; `ended` keeps the call's
    figures."""

    def __init__(self, calls_dir, log):
        self.calls_dir = calls_dir
        self.live = log
        self.files = {}
        self.ended = None
        self.responses_done = 0
        self.speech_start_ms = None

    def poll(self):
        for path in sorted(glob.glob(os.path.join(self.calls_dir, "*.jsonl"))):
            pos = self.files.get(path, 0)
            with open(path, encoding="utf-8") as f:
                f.seek(pos)
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    pos = f.tell()
                    with contextlib.suppress(ValueError):
                        self._event(json.loads(line))
            self.files[path] = pos

    def _event(self, ev):
        name = ev.get("event")
        if name == "speech_started":
            self.speech_start_ms = ev.get("audio_start_ms")
        elif name == "speech_stopped":
            end, start = ev.get("audio_end_ms"), self.speech_start_ms
            if isinstance(end, int) and isinstance(start, int) and end > start:
                self.live("relay", "caller speech stopped (%.1f s of speech)"
                          % ((end - start) / 1000.0))
            else:
                self.live("relay", "caller speech stopped")
        elif name == "response_created":
            self.live("relay", "agent is answering")
        elif name == "turn":
            ms = ev.get("speech_stopped_to_first_rtp_ms")
            self.live("relay", "agent audio playing (first RTP packet %s ms after the end of "
                      "speech was detected)" % ms)
        elif name == "response_done":
            self.responses_done += 1
        elif name == "ended":
            self.ended = ev


# -- the demo -------------------------------------------------------------------------------------


def _prepare_mic(args, workdir, log):
    if args.mic:
        log("demo", "microphone: %s" % args.mic)
        return args.mic
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        if args.say:
            raise RuntimeError("--say needs espeak-ng (apt-get install espeak-ng)")
        log("demo", "microphone: %s (espeak-ng not installed)" % os.path.relpath(SHIPPED_MIC))
        return SHIPPED_MIC
    sentences = ((args.say,) + SCRIPT[1:]) if args.say else SCRIPT
    path = os.path.join(workdir, "caller.wav")
    write_wav(path, caller_script(sentences, espeak), RATE)
    log("demo", "microphone: espeak-ng says %s" % " / ".join('"%s"' % s for s in sentences))
    return path


async def _converse(system, call, events, mic_s, max_call_s, log):
    """Until the caller is done and the agent quiet for a second, or the call ends."""
    loop = asyncio.get_running_loop()
    up = loop.time()
    quiet_since = None
    while True:
        await asyncio.sleep(0.05)
        events.poll()
        if call.call_id not in system.relay.calls:
            return "the relay ended the call"
        now = loop.time()
        if now - up > max_call_s:
            return "the call reached --max-call"
        if now - up < mic_s or call.media.playout.playing:
            quiet_since = None
            continue
        quiet_since = quiet_since or now
        answered = events.responses_done > 0 or system.backend == "echo"
        if now - quiet_since >= (1.0 if answered else 6.0):
            return None


def _figures(system, events, out_path, log):
    result = system.device_result or {}
    calls = result.get("calls") or []
    media = calls[-1].get("media") if calls else None
    print("\nfigures")
    if media:
        print("  device  RTP sent %d, received %d, lost %d, late %d, concealed %d; jitter %d ms;"
              " %d us CPU per 20 ms frame" % (
                  media["tx_packets"], media["rx_packets"], media["lost"], media["late"],
                  media["concealed"], media["jitter_ms"], media["cpu_us_per_frame"]))
    ev = events.ended
    if ev:
        lat_in, lat_out = ev.get("in_latency") or {}, ev.get("out_latency") or {}
        print("  relay   RTP received %d, sent %d, late %d, barge-ins %d" % (
            ev.get("rtp_in", 0), ev.get("rtp_out", 0), ev.get("late_frames", 0),
            ev.get("barge_ins", 0)))
        if lat_in.get("n") and lat_out.get("n"):
            print("          added latency p50/p99: caller->agent %.2f/%.2f ms, agent->caller "
                  "%.2f/%.2f ms" % (lat_in["p50_ms"], lat_in["p99_ms"], lat_out["p50_ms"],
                                    lat_out["p99_ms"]))
    peak = result.get("peak_heap")
    if peak:
        print("  device  heap high-water mark %d kB, garbage included (the unix port is 64-bit: "
              "objects take about twice an ESP32's room)" % (peak // 1024))
    if os.path.exists(out_path):
        print("  heard   %s: %.1f s of what the device's speaker played" % (
            out_path, wav_seconds(out_path)))
    print("  logs    %s (one JSON line per relay event)" % system.calls_dir)
    return media


async def _main(args):
    from .loopback import LoopbackSystem

    log = LiveLog()
    out_path = os.path.abspath(args.out)
    workdir = os.path.dirname(out_path)
    os.makedirs(workdir, exist_ok=True)
    for old in glob.glob(os.path.join(workdir, "calls", "*.jsonl")):
        os.remove(old)
    print("sipmote demo: the relay (%s backend) and a simulated device (the firmware on the "
          "MicroPython unix port) on 127.0.0.1\n" % args.backend, flush=True)
    mic = _prepare_mic(args, workdir, log)
    mic_s = wav_seconds(mic)
    if args.backend == "openai":
        import openai  # noqa: F401 - imported now, not while the first call is being set up

    relay_log = logging.getLogger("sipmote.relay")
    relay_log.setLevel(logging.INFO)
    logging.getLogger("sipmote.relay.call").setLevel(logging.DEBUG)
    relay_log.propagate = False
    system = LoopbackSystem(
        workdir, args.backend, openai_url=args.openai_url, model=args.model,
        transcription_model=TRANSCRIPTION_MODEL, instructions=INSTRUCTIONS, mic=mic,
        speaker=out_path, on_device_line=lambda line: device_line(log, line),
    )
    events = CallEvents(system.calls_dir, log)
    relay_log.addHandler(RelayConsole(log, events))
    problem = None
    try:
        await system.start()
        gc.collect()
        gc.freeze()  # as a long-running relay does: no full collections during the call
        try:
            call = await system.place_call(timeout=15)
        except (TimeoutError, RuntimeError) as e:
            problem = "the call did not come up: %s" % str(e).splitlines()[0]
        else:
            mic_s = max(mic_s, 0.5)
            why = await _converse(system, call, events, mic_s, args.max_call, log)
            if why:
                log("demo", why)
            if call.call_id in system.relay.calls:
                log("demo", "the caller is done and the agent quiet: hanging up")
                await system.hangup("device")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(call.ended), 5)
            await asyncio.sleep(0.2)
            events.poll()
    finally:
        await system.stop()
        events.poll()
    media = _figures(system, events, out_path, log)
    if problem is None and not media:
        problem = "the device reports no call"
    elif problem is None and media["rx_packets"] == 0:
        problem = "the device heard nothing from the agent"
    if system.device_exit not in (0, None):
        problem = problem or "the device exited with status %s" % system.device_exit
    if problem:
        print("\nsipmote demo failed: %s" % problem, file=sys.stderr)
        return 1
    shown = os.path.relpath(out_path)
    print("\ndone: listen to %s" % (out_path if shown.startswith("..") else shown))
    return 0


def run(args):
    try:
        return asyncio.run(_main(args))
    except (OSError, RuntimeError, ValueError) as e:
        print("sipmote demo: %s" % e, file=sys.stderr)
        return 1
