# phone._audio_viper: the per-sample audio kernels as @micropython.viper code. MIT licence.
#
# Every kernel works in place or between caller-owned, preallocated buffers and allocates
# nothing. phone._audio_ref holds the same kernels in plain Python with identical integer
# results: it is the fallback where viper is missing and the oracle the tests compare against.
#
# Portability rules these kernels follow (viper ints are machine words: 32 bits on the ESP32,
# 64 bits on the unix port):
# - ptr16/ptr32 loads zero-extend on the unix port, so signed samples are sign-extended by
#   hand: (v ^ 0x8000) - 0x8000. 32-bit I2S samples are read as two 16-bit halves for the
#   same reason.
# - No intermediate exceeds 31 bits for any input, so both word sizes give the same result.
# - State that must survive between frames is stored offset to be non-negative.
import micropython

# DC tracker state: acc + _DC_BIAS, stored in a ptr32 slot
_DC_BIAS = 0x20000000


@micropython.viper
def i2s32_to_pcm16(src: ptr16, dst: ptr16, n: int, gain_q8: int, state: ptr32) -> int:
    """n 32-bit left-justified I2S samples (INMP441: 24 valid bits) -> n int16 samples.

    Keeps 18 bits (x = s >> 14), removes DC with a leaky mean (time constant 1024 samples,
    about 2.5 Hz at 16 kHz), scales by gain_q8/256 and saturates. Returns the output peak.
    """
    acc = int(state[0]) - 0x20000000
    peak = 0
    for i in range(n):
        hi = int(src[2 * i + 1])
        hi = (hi ^ 0x8000) - 0x8000
        x = (hi << 2) | (int(src[2 * i]) >> 14)
        acc += x - (acc >> 10)
        y = ((x - (acc >> 10)) >> 2) * gain_q8
        y = (y + 128) >> 8
        if y > 32767:
            y = 32767
        elif y < -32767:
            y = -32767
        dst[i] = y
        if y < 0:
            y = -y
        if y > peak:
            peak = y
    state[0] = acc + 0x20000000
    return peak


@micropython.viper
def pdm_to_pcm16(src: ptr8, dst: ptr16, n_out: int, weights: ptr16, popcount: ptr8,
                 gain_q8: int, state: ptr32) -> int:
    """A PDM bit stream read as 32-bit I2S words -> n_out int16 samples (decimation 128).

    src is the PDM ring: 32 bytes of history followed by n_out * 16 new bytes. Each byte's
    ones are counted (a box filter of 8 bits), then a CIC3 (R=16) FIR of 46 weights summing to
    4096 makes one sample from 16 bytes. Bytes of a little-endian 32-bit word arrive MSB
    first, hence the k ^ 3. DC removal, gain and saturation as in i2s32_to_pcm16. The last
    32 bytes move to the front for the next frame. Returns the output peak.
    """
    acc = int(state[0]) - 0x20000000
    peak = 0
    for i in range(n_out):
        base = i * 16
        s = 0
        for k in range(46):
            s += int(weights[k]) * int(popcount[src[base + (k ^ 3)]])
        x = (s - 16384) << 3
        acc += x - (acc >> 10)
        y = ((x - (acc >> 10)) >> 2) * gain_q8
        y = (y + 128) >> 8
        if y > 32767:
            y = 32767
        elif y < -32767:
            y = -32767
        dst[i] = y
        if y < 0:
            y = -y
        if y > peak:
            peak = y
    state[0] = acc + 0x20000000
    end = n_out * 16
    for j in range(32):
        src[j] = src[end + j]
    return peak


@micropython.viper
def decimate2(ext: ptr16, dst: ptr16, n_out: int, pairs: ptr16, npairs: int):
    """Half-band low-pass and 2:1 decimation: 16 kHz -> 8 kHz.

    The filter has 2 * h + 1 taps, h = 2 * npairs - 1: a centre of 1/2 and npairs symmetric
    odd taps (Q15, in `pairs`). ext holds 2 * h history samples then 2 * n_out new ones; the
    last 2 * h inputs move to the front of ext for the next frame.
    """
    h = 2 * npairs - 1
    for j in range(n_out):
        mid = 2 * j + h
        c = int(ext[mid])
        acc = ((c ^ 0x8000) - 0x8000) << 14
        for p in range(npairs):
            k = 2 * p + 1
            a = int(ext[mid - k])
            b = int(ext[mid + k])
            w = int(pairs[p])
            acc += (((a ^ 0x8000) - 0x8000) + ((b ^ 0x8000) - 0x8000)) * ((w ^ 0x8000) - 0x8000)
        y = (acc + 16384) >> 15
        if y > 32767:
            y = 32767
        elif y < -32767:
            y = -32767
        dst[j] = y
    n_in = 2 * n_out
    for i in range(2 * h):
        ext[i] = ext[n_in + i]


@micropython.viper
def interpolate2(ext: ptr16, dst: ptr16, n_in: int, pairs: ptr16, npairs: int):
    """1:2 interpolation with the same half-band filter: 8 kHz -> 16 kHz.

    ext holds h = 2 * npairs - 1 history samples then n_in new ones; dst gets 2 * n_in
    samples. Odd outputs are the input delayed by npairs - 1 samples; even outputs are the
    filtered in-between values (the taps doubled to keep unity gain).
    """
    h = 2 * npairs - 1
    d = npairs - 1
    for m in range(n_in):
        t = h + m
        acc = 0
        for p in range(npairs):
            a = int(ext[t - d + p])
            b = int(ext[t - d - p - 1])
            w = int(pairs[p])
            acc += (((a ^ 0x8000) - 0x8000) + ((b ^ 0x8000) - 0x8000)) * ((w ^ 0x8000) - 0x8000)
        y = (acc + 8192) >> 14
        if y > 32767:
            y = 32767
        elif y < -32767:
            y = -32767
        dst[2 * m] = y
        dst[2 * m + 1] = ext[t - d]
    for i in range(h):
        ext[i] = ext[n_in + i]


@micropython.viper
def ramp_gain16(buf: ptr16, n: int, g0_q8: int, g1_q8: int) -> int:
    """Scale n int16 samples in place by a gain going linearly from g0 to g1 (Q8), saturating.

    A constant gain is g0 == g1; ramping over one frame avoids the click of a gain step.
    Returns the peak of the result.
    """
    peak = 0
    dg = g1_q8 - g0_q8
    for i in range(n):
        # truncating division on non-negative operands: the same on every word size
        if dg >= 0:
            g = g0_q8 + (dg * i) // n
        else:
            g = g0_q8 - ((0 - dg) * i) // n
        v = int(buf[i])
        y = (((v ^ 0x8000) - 0x8000) * g + 128) >> 8
        if y > 32767:
            y = 32767
        elif y < -32767:
            y = -32767
        buf[i] = y
        if y < 0:
            y = -y
        if y > peak:
            peak = y
    return peak


@micropython.viper
def mean_abs16(buf: ptr16, n: int) -> int:
    """Mean absolute value of n int16 samples: the level the echo guard and the meters use."""
    s = 0
    for i in range(n):
        v = int(buf[i])
        v = (v ^ 0x8000) - 0x8000
        if v < 0:
            v = -v
        s += v
    return s // n if n > 0 else 0


@micropython.viper
def mono_to_stereo16(buf: ptr16, n: int):
    """Duplicate n mono int16 samples into n L/R pairs, in place (buf holds 2 * n samples)."""
    i = n - 1
    while i >= 0:
        v = buf[i]
        buf[2 * i] = v
        buf[2 * i + 1] = v
        i -= 1


@micropython.viper
def pcm16_to_i2s32(buf: ptr16, n: int):
    """n int16 samples -> n 32-bit left-justified I2S words, in place (buf holds 2 * n)."""
    i = n - 1
    while i >= 0:
        v = buf[i]
        buf[2 * i + 1] = v
        buf[2 * i] = 0
        i -= 1


@micropython.viper
def stereo_to_mono16(buf: ptr16, n: int):
    """Keep the left sample of n L/R int16 pairs, in place."""
    for i in range(n):
        buf[i] = buf[2 * i]


@micropython.viper
def clear(buf: ptr8, n: int):
    """Zero n bytes: silence without a slice object."""
    for i in range(n):
        buf[i] = 0
