# phone.audio: 20 ms frame pipelines between the board's I2S format and the call's 8 kHz PCM.
# MIT licence.
#
#   Uplink:   I2S mic words (32-bit slots, or a PDM bit stream)  -> int16 at the mic rate
#             (DC removed, gain) -> half-band 2:1 decimation -> 160 int16 at 8 kHz
#   Downlink: 160 int16 at 8 kHz -> half-band 1:2 interpolation -> gain -> int16 (mono or
#             L/R pairs) for the amplifier
#   EchoGuard: attenuates the uplink while the far end is audible, with hangover.
#
# Every buffer is allocated here, once; process() runs the viper kernels on them and
# allocates nothing. Callers fill `Uplink.raw_in` (the I2S readinto target) and
# `Downlink.inp` (the G.711 decoder's output), and take `Uplink.out` / `Downlink.out`.
from array import array

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


try:
    from ._audio_viper import (
        clear,
        decimate2,
        i2s32_to_pcm16,
        interpolate2,
        mean_abs16,
        mono_to_stereo16,
        pdm_to_pcm16,
        ramp_gain16,
    )

    KERNELS = "viper"
except (ImportError, SyntaxError, ValueError):  # no native emitter on this build
    from ._audio_ref import (  # noqa: F401
        clear,
        decimate2,
        i2s32_to_pcm16,
        interpolate2,
        mean_abs16,
        mono_to_stereo16,
        pdm_to_pcm16,
        ramp_gain16,
    )

    KERNELS = "python"

CALL_RATE = const(8000)
FRAME_MS = const(20)
CALL_SAMPLES = const(160)  # 20 ms at 8 kHz
UNITY_Q8 = const(256)

# Half-band low-pass for 16 kHz <-> 8 kHz: 39 taps (Kaiser, beta 6), centre 1/2, these odd
# taps in Q15 (they sum to 1/4 each side, so DC gain is exactly 1). -0.07 dB at 3.3 kHz,
# -60 dB from 4.8 kHz.
HALFBAND = array("h", [10350, -3246, 1721, -1015, 606, -349, 187, -89, 35, -8])
HALFBAND_PAIRS = const(10)
DECIMATE_HISTORY = const(38)  # 2 * (2 * pairs - 1) input samples
INTERPOLATE_HISTORY = const(19)  # 2 * pairs - 1 input samples

# PDM: ones in each byte, and the CIC3 (R = 16) impulse response: a box of 16 convolved with
# itself three times, 46 taps summing to 4096.
POPCOUNT = bytes(bin(i).count("1") for i in range(256))
PDM_HISTORY = const(32)  # bytes kept from the previous frame (46 - 16 rounded up to a word)


def _cic3_weights():
    box = [1] * 16
    w = [1]
    for _ in range(3):
        out = [0] * (len(w) + 15)
        for i, a in enumerate(w):
            for j in range(16):
                out[i + j] += a * box[j]
        w = out
    return array("h", w)


CIC3 = _cic3_weights()


def db_to_q8(db):
    """A gain in dB as a Q8 factor (256 = unity), bounded to what the kernels accept."""
    g = int(256 * 10 ** (db / 20) + 0.5)
    return 0 if g < 0 else (16384 if g > 16384 else g)


def _dc_state():
    # the DC tracker's accumulator starts at 0, stored offset by 2**29 (see the kernels)
    s = bytearray(4)
    s[3] = 0x20
    return s


class Uplink:
    """Mic I2S frame -> 160 int16 at 8 kHz.

    mic is the board profile's "mic" section: type "i2s" (32-bit slots, mono, at 8 or 16 kHz)
    or "pdm" (the raw bit stream read as 32-bit stereo words; decoded to 16 kHz).
    """

    def __init__(self, mic, gain_db=0):
        self.pdm = mic["type"] == "pdm"
        self.rate = 16000 if self.pdm else mic["rate"]
        self.n = self.rate * FRAME_MS // 1000  # samples per frame at the mic rate
        self.gain_q8 = db_to_q8(gain_db)
        self.state = _dc_state()
        if self.pdm:
            self.raw = bytearray(PDM_HISTORY + self.n * 16)
            self.raw_in = memoryview(self.raw)[PDM_HISTORY:]
        else:
            self.raw = bytearray(self.n * 4)
            self.raw_in = memoryview(self.raw)
        self.out = bytearray(CALL_SAMPLES * 2)
        self.ext = None  # the half-band filter's history + input (16 kHz buses only)
        if self.rate == 16000:
            self.ext = bytearray((DECIMATE_HISTORY + self.n) * 2)
            self.pcm = memoryview(self.ext)[DECIMATE_HISTORY * 2 :]
        else:
            self.pcm = memoryview(self.out)
        self.peak = 0

    def process(self):
        """Convert raw_in (one full I2S frame) into out. Returns the frame's peak level."""
        if self.pdm:
            peak = pdm_to_pcm16(self.raw, self.pcm, self.n, CIC3, POPCOUNT, self.gain_q8,
                                self.state)
        else:
            peak = i2s32_to_pcm16(self.raw, self.pcm, self.n, self.gain_q8, self.state)
        if self.ext is not None:
            decimate2(self.ext, self.out, CALL_SAMPLES, HALFBAND, HALFBAND_PAIRS)
        self.peak = peak
        return peak

    def silence(self):
        """Make out a frame of silence (half-duplex boards while the speaker has the bus)."""
        clear(self.out, len(self.out))

    def reset(self):
        """A new call: no filter history or DC estimate from the last one."""
        clear(self.state, 4)
        self.state[3] = 0x20
        clear(self.raw, len(self.raw))
        if self.ext is not None:
            clear(self.ext, len(self.ext))
        self.peak = 0


class Downlink:
    """160 int16 at 8 kHz -> one speaker I2S frame (16-bit, mono or L/R pairs)."""

    def __init__(self, speaker, gain_db=0):
        self.rate = speaker["rate"]
        self.stereo = speaker["format"] == "stereo"
        self.n = self.rate * FRAME_MS // 1000
        self.gain_q8 = db_to_q8(gain_db)
        self.out = bytearray(self.n * 2 * (2 if self.stereo else 1))
        self.ext = None  # the half-band filter's history + input (16 kHz buses only)
        if self.rate == 16000:
            self.ext = bytearray((INTERPOLATE_HISTORY + CALL_SAMPLES) * 2)
            self.inp = memoryview(self.ext)[INTERPOLATE_HISTORY * 2 :]
        else:
            self.inp = memoryview(self.out)[: CALL_SAMPLES * 2]
        self.level = 0

    def process(self):
        """Convert inp (160 decoded samples) into out. Returns the far-end level (mean abs)."""
        self.level = level = mean_abs16(self.inp, CALL_SAMPLES)
        if self.ext is not None:
            interpolate2(self.ext, self.out, CALL_SAMPLES, HALFBAND, HALFBAND_PAIRS)
        if self.gain_q8 != UNITY_Q8:
            ramp_gain16(self.out, self.n, self.gain_q8, self.gain_q8)
        if self.stereo:
            mono_to_stereo16(self.out, self.n)
        return level

    def silence(self):
        clear(self.out, len(self.out))
        self.level = 0

    def reset(self):
        """A new call: no filter history from the last one."""
        self.silence()
        if self.ext is not None:
            clear(self.ext, len(self.ext))


class EchoGuard:
    """Half-duplex-ish echo control for a speaker next to the mic.

    While the far end is audible (downlink level above `threshold`, plus `hangover_ms`
    after it falls silent) the uplink is attenuated by `atten_db`; gain changes ramp over one
    frame so they make no click. `active` also tells half-duplex boards which way to point
    their single I2S bus.
    """

    def __init__(self, enabled=True, atten_db=18, threshold=300, hangover_ms=200):
        self.enabled = enabled
        self.threshold = threshold
        self.hangover = hangover_ms // FRAME_MS
        self.atten_q8 = db_to_q8(-atten_db)
        self.hang = 0
        self.gain_q8 = UNITY_Q8
        self.frames_attenuated = 0

    def reset(self):
        self.hang = 0
        self.gain_q8 = UNITY_Q8
        self.frames_attenuated = 0

    @property
    def active(self):
        return self.hang > 0

    def far_frame(self, level):
        """Account one downlink frame's level."""
        if level > self.threshold:
            self.hang = self.hangover + 1
        elif self.hang > 0:
            self.hang -= 1

    def near_frame(self, buf, n):
        """Apply the current uplink gain to n int16 samples of buf, in place."""
        if not self.enabled:
            return
        target = self.atten_q8 if self.hang > 0 else UNITY_Q8
        if target != UNITY_Q8 or self.gain_q8 != UNITY_Q8:
            ramp_gain16(buf, n, self.gain_q8, target)
            if target != UNITY_Q8:
                self.frames_attenuated += 1
        self.gain_q8 = target
