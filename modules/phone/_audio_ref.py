# phone._audio_ref: the audio kernels of phone._audio_viper in plain Python. MIT licence.
#
# Same signatures, same integer results (the tests hold the viper kernels to these), on
# bytearray-like buffers of little-endian samples; coefficient tables are array("h"). Used
# where the viper emitter is missing; far slower, so a real board runs the viper versions.


def _get16(b, i):
    v = b[2 * i] | (b[2 * i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _put16(b, i, v):
    b[2 * i] = v & 0xFF
    b[2 * i + 1] = (v >> 8) & 0xFF


def _get32u(b, i):
    return b[4 * i] | (b[4 * i + 1] << 8) | (b[4 * i + 2] << 16) | (b[4 * i + 3] << 24)


def _put32(b, i, v):
    for k in range(4):
        b[4 * i + k] = (v >> (8 * k)) & 0xFF


def _sat(y):
    return 32767 if y > 32767 else (-32767 if y < -32767 else y)


def _dc_gain(x, acc, gain_q8):
    acc += x - (acc >> 10)
    y = ((x - (acc >> 10)) >> 2) * gain_q8
    return _sat((y + 128) >> 8), acc


def i2s32_to_pcm16(src, dst, n, gain_q8, state):
    acc = _get32u(state, 0) - 0x20000000
    peak = 0
    for i in range(n):
        hi = _get16(src, 2 * i + 1)
        lo = _get16(src, 2 * i) & 0xFFFF
        x = (hi << 2) | (lo >> 14)
        y, acc = _dc_gain(x, acc, gain_q8)
        _put16(dst, i, y)
        peak = max(peak, abs(y))
    _put32(state, 0, acc + 0x20000000)
    return peak


def pdm_to_pcm16(src, dst, n_out, weights, popcount, gain_q8, state):
    acc = _get32u(state, 0) - 0x20000000
    peak = 0
    for i in range(n_out):
        base = i * 16
        s = 0
        for k in range(46):
            s += weights[k] * popcount[src[base + (k ^ 3)]]
        y, acc = _dc_gain((s - 16384) << 3, acc, gain_q8)
        _put16(dst, i, y)
        peak = max(peak, abs(y))
    _put32(state, 0, acc + 0x20000000)
    end = n_out * 16
    for j in range(32):
        src[j] = src[end + j]
    return peak


def decimate2(ext, dst, n_out, pairs, npairs):
    h = 2 * npairs - 1
    for j in range(n_out):
        mid = 2 * j + h
        acc = _get16(ext, mid) << 14
        for p in range(npairs):
            k = 2 * p + 1
            acc += (_get16(ext, mid - k) + _get16(ext, mid + k)) * pairs[p]
        _put16(dst, j, _sat((acc + 16384) >> 15))
    n_in = 2 * n_out
    for i in range(2 * h):
        _put16(ext, i, _get16(ext, n_in + i))


def interpolate2(ext, dst, n_in, pairs, npairs):
    h = 2 * npairs - 1
    d = npairs - 1
    for m in range(n_in):
        t = h + m
        acc = 0
        for p in range(npairs):
            acc += (_get16(ext, t - d + p) + _get16(ext, t - d - p - 1)) * pairs[p]
        _put16(dst, 2 * m, _sat((acc + 8192) >> 14))
        _put16(dst, 2 * m + 1, _get16(ext, t - d))
    for i in range(h):
        _put16(ext, i, _get16(ext, n_in + i))


def ramp_gain16(buf, n, g0_q8, g1_q8):
    peak = 0
    dg = g1_q8 - g0_q8
    for i in range(n):
        g = g0_q8 + (dg * i) // n if dg >= 0 else g0_q8 - ((-dg) * i) // n
        y = _sat((_get16(buf, i) * g + 128) >> 8)
        _put16(buf, i, y)
        peak = max(peak, abs(y))
    return peak


def mean_abs16(buf, n):
    s = 0
    for i in range(n):
        s += abs(_get16(buf, i))
    return s // n if n > 0 else 0


def mono_to_stereo16(buf, n):
    for i in range(n - 1, -1, -1):
        v = _get16(buf, i)
        _put16(buf, 2 * i, v)
        _put16(buf, 2 * i + 1, v)


def pcm16_to_i2s32(buf, n):
    for i in range(n - 1, -1, -1):
        v = _get16(buf, i)
        _put16(buf, 2 * i + 1, v)
        _put16(buf, 2 * i, 0)


def stereo_to_mono16(buf, n):
    for i in range(n):
        _put16(buf, i, _get16(buf, 2 * i))


def clear(buf, n):
    for i in range(n):
        buf[i] = 0
