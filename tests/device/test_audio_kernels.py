# The device's viper audio kernels: bit-exact with the plain-Python reference, the filters do
# what their docstrings promise (measured with tones), and a steady-state frame allocates
# nothing (checked with the heap locked). MicroPython unix port only: viper is device code.
import math
import os

from phone import _audio_ref as ref
from phone import _audio_viper as vip
from phone import audio

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "256K"


def put16(buf, i, v):
    buf[2 * i] = v & 0xFF
    buf[2 * i + 1] = (v >> 8) & 0xFF


def get16(buf, i):
    v = buf[2 * i] | (buf[2 * i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def rand16(n, lo=-32768, hi=32767):
    b = bytearray(2 * n)
    r = os.urandom(2 * n)
    span = hi - lo + 1
    for i in range(n):
        put16(b, i, lo + ((r[2 * i] | (r[2 * i + 1] << 8)) % span))
    return b


def tone16(n, freq, rate, amp, phase=0.0):
    b = bytearray(2 * n)
    for i in range(n):
        put16(b, i, int(amp * math.sin(2 * math.pi * freq * i / rate + phase)))
    return b


def amplitude(buf, start, n, freq, rate):
    # amplitude of the `freq` component of buf[start:start+n] (a one-bin DFT)
    s = c = 0.0
    for i in range(start, start + n):
        v = get16(buf, i)
        s += v * math.sin(2 * math.pi * freq * i / rate)
        c += v * math.cos(2 * math.pi * freq * i / rate)
    return 2 * math.sqrt(s * s + c * c) / n


def test_viper_matches_reference_bit_for_bit():
    for trial in range(3):
        # i2s32: random 32-bit words, random gain, a random DC state
        n = 320
        src = bytearray(os.urandom(4 * n))
        gain = [0, 256, 700, 16384][trial + 1]
        s1, s2 = audio._dc_state(), audio._dc_state()
        d1, d2 = bytearray(2 * n), bytearray(2 * n)
        for _ in range(2):  # twice: the state carries over
            p1 = vip.i2s32_to_pcm16(src, d1, n, gain, s1)
            p2 = ref.i2s32_to_pcm16(src, d2, n, gain, s2)
            assert (p1, d1, s1) == (p2, d2, s2)
        # decimate2 / interpolate2 on full-scale noise
        e1 = rand16(audio.DECIMATE_HISTORY + 320)
        e2 = bytearray(e1)
        o1, o2 = bytearray(320), bytearray(320)
        vip.decimate2(e1, o1, 160, audio.HALFBAND, 10)
        ref.decimate2(e2, o2, 160, audio.HALFBAND, 10)
        assert o1 == o2 and e1 == e2
        e1 = rand16(audio.INTERPOLATE_HISTORY + 160)
        e2 = bytearray(e1)
        o1, o2 = bytearray(640), bytearray(640)
        vip.interpolate2(e1, o1, 160, audio.HALFBAND, 10)
        ref.interpolate2(e2, o2, 160, audio.HALFBAND, 10)
        assert o1 == o2 and e1 == e2
        # gain ramps, levels, channel shuffles
        b1 = rand16(160)
        b2 = bytearray(b1)
        assert vip.ramp_gain16(b1, 160, 300, 20) == ref.ramp_gain16(b2, 160, 300, 20)
        assert b1 == b2
        assert vip.ramp_gain16(b1, 160, 20, 5000) == ref.ramp_gain16(b2, 160, 20, 5000)
        assert b1 == b2
        assert vip.mean_abs16(b1, 160) == ref.mean_abs16(b2, 160)
        s1 = rand16(160) + bytearray(320)
        s2 = bytearray(s1)
        vip.mono_to_stereo16(s1, 160)
        ref.mono_to_stereo16(s2, 160)
        assert s1 == s2
        vip.pcm16_to_i2s32(s1, 160)
        ref.pcm16_to_i2s32(s2, 160)
        assert s1 == s2
        # PDM: random bit streams
        p1 = bytearray(os.urandom(32 + 16 * 40))
        p2 = bytearray(p1)
        st1, st2 = audio._dc_state(), audio._dc_state()
        o1, o2 = bytearray(80), bytearray(80)
        r1 = vip.pdm_to_pcm16(p1, o1, 40, audio.CIC3, audio.POPCOUNT, 256, st1)
        r2 = ref.pdm_to_pcm16(p2, o2, 40, audio.CIC3, audio.POPCOUNT, 256, st2)
        assert (r1, o1, p1, st1) == (r2, o2, p2, st2)


def test_extremes_saturate_instead_of_wrapping():
    n = 64
    src = bytearray(4 * n)
    for i in range(n):  # alternate full-scale positive and negative 32-bit words
        v = 0x7FFFFFFF if i % 2 else -0x80000000
        for k in range(4):
            src[4 * i + k] = (v >> (8 * k)) & 0xFF
    dst = bytearray(2 * n)
    vip.i2s32_to_pcm16(src, dst, n, 16384, audio._dc_state())
    for i in range(n):
        assert get16(dst, i) in (32767, -32767)
    b = bytearray(2 * n)
    for i in range(n):
        put16(b, i, -32768 if i % 2 else 32767)
    vip.ramp_gain16(b, n, 1024, 1024)
    for i in range(n):
        assert get16(b, i) == (-32767 if i % 2 else 32767)


def test_mic_path_removes_dc_and_keeps_the_tone():
    up = audio.Uplink({"type": "i2s", "rate": 16000}, gain_db=0)
    # INMP441-like: 24-bit samples left-justified, a 1 kHz tone at -12 dBFS on a large offset
    for frame in range(40):
        for i in range(320):
            t = frame * 320 + i
            v = int(8192 * math.sin(2 * math.pi * 1000 * t / 16000)) + 6000
            w = (v << 16) | 0x1234  # low bits: noise below 16 bits
            for k in range(4):
                up.raw[4 * i + k] = (w >> (8 * k)) & 0xFF
        up.process()
    out = up.out  # last frame at 8 kHz
    mean = sum(get16(out, i) for i in range(160)) / 160
    assert abs(mean) < 100, mean
    a = amplitude(out, 0, 160, 1000, 8000)
    assert 7600 < a < 8800, a  # unity gain through DC removal and the half-band filter


def test_decimation_rejects_what_would_alias():
    def through(freq):
        ext = bytearray((audio.DECIMATE_HISTORY + 320) * 2)
        out = bytearray(320)
        for frame in range(3):
            t0 = frame * 320
            for i in range(320):
                v = int(16000 * math.sin(2 * math.pi * freq * (t0 + i) / 16000))
                put16(ext, audio.DECIMATE_HISTORY + i, v)
            vip.decimate2(ext, out, 160, audio.HALFBAND, 10)
        return amplitude(out, 0, 160, freq if freq < 4000 else 8000 - freq, 8000)

    assert 15500 < through(1000) < 16500
    assert 15000 < through(3000) < 16500
    assert through(5500) < 16000 / 300  # > 50 dB down: 5.5 kHz would fold onto 2.5 kHz
    assert through(7000) < 16000 / 300


def test_interpolation_makes_a_clean_16k_tone():
    down = audio.Downlink({"rate": 16000, "format": "mono"})
    for frame in range(3):
        t0 = frame * 160
        for i in range(160):
            put16(down.inp, i, int(12000 * math.sin(2 * math.pi * 1000 * (t0 + i) / 8000)))
        level = down.process()
    assert 7000 < level < 8000  # mean abs of a 12000 sine is 12000 * 2 / pi
    assert 11500 < amplitude(down.out, 0, 320, 1000, 16000) < 12500
    assert amplitude(down.out, 0, 320, 7000, 16000) < 12000 / 300  # the image is > 50 dB down


class SigmaDelta:
    # A second-order sigma-delta modulator: a tone in -1..1 at 16 kHz becomes a PDM bit
    # stream at 16 kHz * osr, packed MSB first into little-endian 32-bit words, as the I2S
    # peripheral stores what it shifts in.
    def __init__(self, freq, amp, osr=128):
        self.freq, self.amp, self.osr = freq, amp, osr
        self.i1 = self.i2 = self.y = 0.0
        self.t = 0

    def fill(self, out):
        word = nbits = w = 0
        for _ in range(len(out) * 8 // self.osr):
            s = self.amp * math.sin(2 * math.pi * self.freq * self.t / 16000)
            self.t += 1
            for _ in range(self.osr):
                self.i1 += s - self.y
                self.i2 += self.i1 - self.y
                self.y = 1.0 if self.i2 >= 0 else -1.0
                word = (word << 1) | (1 if self.y > 0 else 0)
                nbits += 1
                if nbits == 32:
                    for k in range(4):
                        out[4 * w + k] = (word >> (8 * k)) & 0xFF
                    word = nbits = 0
                    w += 1


def test_pdm_decoder_recovers_a_tone():
    up = audio.Uplink({"type": "pdm"}, gain_db=0)
    modulator = SigmaDelta(1000, 0.5)
    for _ in range(4):
        modulator.fill(up.raw_in)
        up.process()
    a = amplitude(up.out, 0, 160, 1000, 8000)
    # half of full scale in, gain 1: about 16384 out (the CIC and DC tracker are unity at 1 kHz)
    assert 14000 < a < 17500, a
    # what is left after taking the tone out is small: the CIC and the half-band filter
    # removed the modulator's shaped noise
    s = c = 0.0
    for i in range(160):
        s += get16(up.out, i) * math.sin(2 * math.pi * 1000 * i / 8000)
        c += get16(up.out, i) * math.cos(2 * math.pi * 1000 * i / 8000)
    s, c = 2 * s / 160, 2 * c / 160
    noise = 0.0
    for i in range(160):
        w = 2 * math.pi * 1000 * i / 8000
        fit = s * math.sin(w) + c * math.cos(w)
        noise += (get16(up.out, i) - fit) ** 2
    snr_db = 10 * math.log10((a * a / 2) / (noise / 160))
    assert snr_db > 40, snr_db


def test_a_steady_state_frame_allocates_nothing():
    import gc

    import micropython

    up = audio.Uplink({"type": "i2s", "rate": 16000}, gain_db=6)
    pdm = audio.Uplink({"type": "pdm"}, gain_db=0)
    down = audio.Downlink({"rate": 16000, "format": "stereo"}, gain_db=-3)
    guard = audio.EchoGuard(True, 18, 300, 200)
    up.raw[:] = os.urandom(len(up.raw))
    down.inp[:] = os.urandom(len(down.inp))
    for _ in range(5):  # warm up: first calls may intern or cache
        up.process()
        down.process()
    gc.collect()
    before = gc.mem_alloc()
    micropython.heap_lock()  # any allocation now raises MemoryError
    try:
        for i in range(300):
            up.process()
            pdm.process()
            guard.far_frame(down.process())
            guard.near_frame(up.out, 160)
            if i % 50 == 0:
                down.silence()
                up.silence()
    finally:
        micropython.heap_unlock()
    assert gc.mem_alloc() == before
    assert guard.frames_attenuated > 0


def test_echo_guard_attenuates_with_hangover():
    guard = audio.EchoGuard(True, atten_db=20, threshold=300, hangover_ms=100)
    frame = tone16(160, 500, 8000, 10000)
    loud = audio.mean_abs16(frame, 160)
    guard.far_frame(2000)  # far end talking
    b = bytearray(frame)
    guard.near_frame(b, 160)  # ramps down over this frame
    b = bytearray(frame)
    guard.near_frame(b, 160)
    assert audio.mean_abs16(b, 160) < loud / 9  # 20 dB
    for _ in range(5):  # 100 ms of hangover after the far end stops
        guard.far_frame(0)
        assert guard.active
    guard.far_frame(0)
    assert not guard.active
    b = bytearray(frame)
    guard.near_frame(b, 160)  # ramps back up
    b = bytearray(frame)
    guard.near_frame(b, 160)
    assert b == frame
    off = audio.EchoGuard(False)
    off.far_frame(5000)
    b = bytearray(frame)
    off.near_frame(b, 160)
    assert b == frame


def test_gain_in_db():
    assert audio.db_to_q8(0) == 256
    assert audio.db_to_q8(6) == 511
    assert audio.db_to_q8(-6) == 128
    assert audio.db_to_q8(60) == 16384
