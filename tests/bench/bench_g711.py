"""G.711 codec speed: voip.g711's viper kernels on the MicroPython unix port against C audioop.

Both interpreters work on the same buffers: 2 s of a deterministic speech-like signal (voiced
syllables with gliding pitch and harmonics, pauses, a noise floor) as 100 frames of 160 samples,
each a memoryview made before timing. Speech rather than one frame repeated, because audioop's
encoders search the segment with data-dependent branches that a repeated frame lets the branch
predictor learn. Figures, best of several passes:
- ns/sample over the 100 frames, one call per frame: what a 20 ms RTP packet costs, call included;
- ns/sample of one call over all 16,000 samples: the loop alone, call overhead amortised;
- the ratio viper / audioop for both, and heap bytes allocated per 160-sample frame (MicroPython,
  1,000 calls, garbage collector paused);
- for the table choice in voip.g711's docstring: the same viper loops over direct 16 KiB (mu-law)
  and 4 KiB (A-law) tables indexed by the sample's top bits;
- voip.g711's CPython path and, under MicroPython, the portable loops a port without viper runs.
"""

import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODULES = os.path.join(ROOT, "modules")
if MODULES not in sys.path:
    sys.path.insert(0, MODULES)

FRAME = 160
FRAMES = 100
ROUNDS = 3  # MicroPython then CPython, three times: each figure is the best of the rounds

# Runs under the unix port: `micropython SCRIPT PCM_FILE`. Prints "key|value" lines.
_MICROPYTHON_SCRIPT = r"""
import gc, sys, time
import micropython
from voip import g711

FRAME = 160
PASSES = 10  # frame passes per timing: about a millisecond, well above ticks_us resolution

with open(sys.argv[1], "rb") as f:
    pcm = f.read()
N = len(pcm) // 2
pcm_frames = [memoryview(pcm)[i * 2 * FRAME:(i + 1) * 2 * FRAME] for i in range(N // FRAME)]
ulaw = bytearray(N)
alaw = bytearray(N)
g711.ulaw_encode(pcm, ulaw)
g711.alaw_encode(pcm, alaw)
ulaw_frames = [memoryview(ulaw)[i * FRAME:(i + 1) * FRAME] for i in range(N // FRAME)]
alaw_frames = [memoryview(alaw)[i * FRAME:(i + 1) * FRAME] for i in range(N // FRAME)]
codes_out = bytearray(FRAME)
pcm_out = bytearray(2 * FRAME)
codes_all = bytearray(N)
pcm_all = bytearray(2 * N)


# DIRECT_ENCODERS (see _DIRECT_ENCODER)


def direct_table(linear_to_code, drop):
    codes = bytearray(65536 >> drop)
    for i in range(len(codes)):
        x = (i << drop) & 0xFFFF
        codes[i] = linear_to_code(x - 0x10000 if x & 0x8000 else x)
    return bytes(codes)


ulaw_direct = direct_encoder_ulaw(direct_table(g711.linear_to_ulaw, 2))
alaw_direct = direct_encoder_alaw(direct_table(g711.linear_to_alaw, 4))
for variant, reference in ((ulaw_direct, ulaw), (alaw_direct, alaw)):
    variant(pcm, codes_all)
    if codes_all != reference:
        raise SystemExit("a direct-table variant disagrees with voip.g711")


def per_frame(fn, frames, out, reps):
    best = None
    for _ in range(reps):
        t0 = time.ticks_us()
        for _ in range(PASSES):
            for frame in frames:
                fn(frame, out)
        dt = time.ticks_diff(time.ticks_us(), t0)
        best = dt if best is None or dt < best else best
    return best * 1000 / (PASSES * FRAME * len(frames))


def one_call(fn, src, out, reps):
    best = None
    for _ in range(reps):
        t0 = time.ticks_us()
        for _ in range(PASSES):
            fn(src, out)
        dt = time.ticks_diff(time.ticks_us(), t0)
        best = dt if best is None or dt < best else best
    return best * 1000 / (PASSES * N)


def heap_per_frame(fn, frame, out):
    fn(frame, out)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(1000):
        fn(frame, out)
    used = gc.mem_alloc() - before
    gc.enable()
    return used / 1000


cases = (
    ("ulaw_encode", g711.ulaw_encode, pcm_frames, codes_out, pcm, codes_all),
    ("alaw_encode", g711.alaw_encode, pcm_frames, codes_out, pcm, codes_all),
    ("ulaw_decode", g711.ulaw_decode, ulaw_frames, pcm_out, ulaw, pcm_all),
    ("alaw_decode", g711.alaw_decode, alaw_frames, pcm_out, alaw, pcm_all),
    ("ulaw_direct", ulaw_direct, pcm_frames, codes_out, pcm, codes_all),
    ("alaw_direct", alaw_direct, pcm_frames, codes_out, pcm, codes_all),
)
print("implementation|%s" % g711.IMPLEMENTATION)
for name, fn, frames, out, src, out_all in cases:
    print("%s frame|%.4f" % (name, per_frame(fn, frames, out, 20)))
    print("%s bulk|%.4f" % (name, one_call(fn, src, out_all, 20)))
    print("%s heap|%.1f" % (name, heap_per_frame(fn, frames[0], out)))
print("ulaw_encode portable|%.4f" % per_frame(g711._portable_ulaw_encode, pcm_frames[:10],
                                               codes_out, 3))
print("ulaw_decode portable|%.4f" % per_frame(g711._portable_ulaw_decode, ulaw_frames[:10],
                                               pcm_out, 3))
"""


# The direct-table encoder the script compares with voip.g711's, once per law. Viper wants the
# shift written in (a constant) rather than read from a fourth closure cell, so the script gets
# one copy per law made from this text.
_DIRECT_ENCODER = r"""
def direct_encoder_{law}(table):
    # The alternative to voip.g711's 2 KB of tables: one code per top {bits} bits of a sample.
    # The shift is a constant, and no more than three closure cells (more make every call
    # allocate).
    size, error = len, ValueError

    @micropython.viper
    def encode(pcm, out) -> int:
        n = int(size(out))
        if int(size(pcm)) < n << 1:
            raise error("pcm buffer shorter than 2 bytes per sample")
        if n == 0:
            return 0
        out[0] = 0
        codes = ptr8(table)
        src = uint(ptr8(pcm))
        dst = uint(ptr8(out))
        end = dst + uint(n)
        unrolled_end = dst + uint(n & ~7)
        while dst < unrolled_end:
            ptr8(dst)[0] = codes[ptr16(src)[0] >> {shift}]
            ptr8(dst)[1] = codes[ptr16(src)[1] >> {shift}]
            ptr8(dst)[2] = codes[ptr16(src)[2] >> {shift}]
            ptr8(dst)[3] = codes[ptr16(src)[3] >> {shift}]
            ptr8(dst)[4] = codes[ptr16(src)[4] >> {shift}]
            ptr8(dst)[5] = codes[ptr16(src)[5] >> {shift}]
            ptr8(dst)[6] = codes[ptr16(src)[6] >> {shift}]
            ptr8(dst)[7] = codes[ptr16(src)[7] >> {shift}]
            src += 16
            dst += 8
        while dst < end:
            ptr8(dst)[0] = codes[ptr16(src)[0] >> {shift}]
            src += 2
            dst += 1
        return n

    return encode
"""
_MICROPYTHON_SCRIPT = _MICROPYTHON_SCRIPT.replace(
    "# DIRECT_ENCODERS (see _DIRECT_ENCODER)\n",
    _DIRECT_ENCODER.format(law="ulaw", bits=14, shift=2)
    + _DIRECT_ENCODER.format(law="alaw", bits=12, shift=4),
)


def speech_like_pcm(seconds=2, rate=8000, seed=711):
    """Deterministic 16-bit little-endian speech stand-in: syllables of a few harmonics with
    gliding pitch and a rise/fall envelope, pauses between words, and a faint noise floor."""
    rng = random.Random(seed)
    n = seconds * rate
    samples = [0] * n
    i = 0
    while i < n:
        length = rng.randint(int(0.12 * rate), int(0.3 * rate))  # one syllable
        pitch0, pitch1 = rng.uniform(90, 220), rng.uniform(90, 220)
        level = rng.uniform(2000, 12000)
        weights = [1.0, rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.5), rng.uniform(0.05, 0.3)]
        phase = 0.0
        for k in range(min(length, n - i)):
            pitch = pitch0 + (pitch1 - pitch0) * k / length
            phase += 2 * math.pi * pitch / rate
            envelope = math.sin(math.pi * k / length) ** 2
            value = sum(w * math.sin((h + 1) * phase) for h, w in enumerate(weights))
            samples[i + k] = level * envelope * value / 1.8
        i += length
        if rng.random() < 0.4:
            i += rng.randint(int(0.05 * rate), int(0.25 * rate))  # a pause between words
    out = bytearray(2 * n)
    for j, value in enumerate(samples):
        x = max(-32768, min(32767, int(value + rng.gauss(0, 30))))
        out[2 * j] = x & 0xFF
        out[2 * j + 1] = (x >> 8) & 0xFF
    return bytes(out)


def _micropython():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def _best_ns_per_sample(call, total_samples, reps):
    best = None
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        call()
        dt = time.perf_counter_ns() - t0
        best = dt if best is None or dt < best else best
    return best / total_samples


def _cpython_figures(pcm):
    """ns/sample of audioop and of voip.g711's CPython path on the same frames."""
    from voip import g711

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python >= 3.13 without audioop-lts
            audioop = None
    n = len(pcm) // 2
    ulaw, alaw = bytearray(n), bytearray(n)
    g711.ulaw_encode(pcm, ulaw)
    g711.alaw_encode(pcm, alaw)
    pcm_frames = [memoryview(pcm)[i * 2 * FRAME : (i + 1) * 2 * FRAME] for i in range(n // FRAME)]
    ulaw_frames = [memoryview(ulaw)[i * FRAME : (i + 1) * FRAME] for i in range(n // FRAME)]
    alaw_frames = [memoryview(alaw)[i * FRAME : (i + 1) * FRAME] for i in range(n // FRAME)]
    codes_out, pcm_out = bytearray(FRAME), bytearray(2 * FRAME)
    passes = 10
    figures = {}

    def frames_of(fn, frames, *extra):
        def call():
            for _ in range(passes):
                for frame in frames:
                    fn(frame, *extra)

        return _best_ns_per_sample(call, passes * n, 20)

    def bulk_of(fn, src, *extra):
        def call():
            for _ in range(passes):
                fn(src, *extra)

        return _best_ns_per_sample(call, passes * n, 20)

    if audioop is not None:
        for name, fn, frames, src in (
            ("ulaw_encode", audioop.lin2ulaw, pcm_frames, pcm),
            ("alaw_encode", audioop.lin2alaw, pcm_frames, pcm),
            ("ulaw_decode", audioop.ulaw2lin, ulaw_frames, ulaw),
            ("alaw_decode", audioop.alaw2lin, alaw_frames, alaw),
        ):
            figures[name + " audioop frame"] = frames_of(fn, frames, 2)
            figures[name + " audioop bulk"] = bulk_of(fn, src, 2)
    for name, fn, frames, out in (
        ("ulaw_encode", g711.ulaw_encode, pcm_frames, codes_out),
        ("alaw_encode", g711.alaw_encode, pcm_frames, codes_out),
        ("ulaw_decode", g711.ulaw_decode, ulaw_frames, pcm_out),
        ("alaw_decode", g711.alaw_decode, alaw_frames, pcm_out),
    ):
        figures[name + " cpython frame"] = frames_of(fn, frames, out)
    return figures


def _parse(text):
    rows = {}
    for line in text.strip().splitlines():
        key, value = line.split("|")
        rows[key] = value if key == "implementation" else float(value)
    return rows


def _merge_best(best, rows):
    """Fastest time of the rounds; for heap bytes, the most any round saw."""
    for key, value in rows.items():
        if isinstance(value, float) and key in best:
            value = max(value, best[key]) if key.endswith(" heap") else min(value, best[key])
        best[key] = value


def run(report):
    binary = _micropython()
    pcm = speech_like_pcm()
    assert len(pcm) == 2 * FRAME * FRAMES
    mp, cp = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "g711_micropython.py")
        data = os.path.join(tmp, "speech.pcm")
        with open(script, "w") as f:
            f.write(_MICROPYTHON_SCRIPT)
        with open(data, "wb") as f:
            f.write(pcm)
        for _ in range(ROUNDS):
            if binary is not None:
                proc = subprocess.run(
                    [binary, script, data],
                    env=dict(os.environ, MICROPYPATH=MODULES),
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if proc.returncode != 0:
                    raise RuntimeError("MicroPython side failed:\n" + proc.stdout + proc.stderr)
                _merge_best(mp, _parse(proc.stdout))
            _merge_best(cp, _cpython_figures(pcm))

    labels = {
        "ulaw_encode": ("PCMU encode", "lin2ulaw"),
        "alaw_encode": ("PCMA encode", "lin2alaw"),
        "ulaw_decode": ("PCMU decode", "ulaw2lin"),
        "alaw_decode": ("PCMA decode", "alaw2lin"),
    }
    if not mp:
        report("g711", "MicroPython side", "skipped", "", "micropython not installed")
    elif mp["implementation"] != "viper":
        report("g711", "voip.g711 under MicroPython", mp["implementation"], "", "expected viper")
    for key, (what, audioop_name) in labels.items():
        viper_frame, viper_bulk = mp.get(key + " frame"), mp.get(key + " bulk")
        audio_frame = cp.get(key + " audioop frame")
        audio_bulk = cp.get(key + " audioop bulk")
        if viper_frame is not None:
            report("g711", what + ": viper, 160-sample frames", viper_frame, "ns/sample")
        if audio_frame is not None:
            report(
                "g711",
                what + ": audioop." + audioop_name + ", same frames",
                audio_frame,
                "ns/sample",
                "CPython C",
            )
        if viper_frame is not None and audio_frame is not None:
            report(
                "g711",
                what + ": viper / audioop, frames",
                viper_frame / audio_frame,
                "ratio",
                "aim <= 1.0",
            )
        if viper_bulk is not None:
            report("g711", what + ": viper, one 16000-sample call", viper_bulk, "ns/sample")
        if audio_bulk is not None:
            report("g711", what + ": audioop, one 16000-sample call", audio_bulk, "ns/sample")
        if viper_bulk is not None and audio_bulk is not None:
            report(
                "g711",
                what + ": viper / audioop, one call",
                viper_bulk / audio_bulk,
                "ratio",
                "loop only",
            )
        if key + " heap" in mp:
            report(
                "g711",
                what + ": heap per 160-sample frame",
                mp[key + " heap"],
                "bytes/frame",
                "MicroPython, 1000 calls",
            )
        cpython_frame = cp[key + " cpython frame"]
        report(
            "g711",
            what + ": voip.g711 CPython path, frames",
            cpython_frame,
            "ns/sample",
            "/audioop %.1f" % (cpython_frame / audio_frame) if audio_frame else "",
        )
    for key, what, size in (("ulaw_direct", "PCMU", "16 KiB"), ("alaw_direct", "PCMA", "4 KiB")):
        if key + " frame" in mp:
            small = mp[key.replace("direct", "encode") + " frame"]
            report(
                "g711",
                "%s encode: viper, %s direct table, frames" % (what, size),
                mp[key + " frame"],
                "ns/sample",
                "voip.g711's 2 KB tables: %.2f" % small,
            )
            report(
                "g711",
                "%s encode: viper, %s direct table, one call" % (what, size),
                mp[key + " bulk"],
                "ns/sample",
                "voip.g711's: %.2f" % mp[key.replace("direct", "encode") + " bulk"],
            )
    for key in ("ulaw_encode", "ulaw_decode"):
        if key + " portable" in mp:
            report(
                "g711",
                labels[key][0] + ": portable loop (MicroPython, no viper)",
                mp[key + " portable"],
                "ns/sample",
                "frames",
            )
