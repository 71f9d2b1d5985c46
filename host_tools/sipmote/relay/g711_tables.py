"""G.711 for the relay's PCM path: numpy lookup tables built from the ITU-T G.191 reference.

The relay converts audio only for a backend whose native format is PCM (the OpenAI backend
takes G.711 as is). On CPython a 256-entry decode table and a 65536-entry encode table indexed
by numpy turn a 20 ms frame into one vectorised gather: a few microseconds, no Python loop.
The tables follow G.191's ``ulaw_compress``/``ulaw_expand``/``alaw_compress``/``alaw_expand``
bit for bit (negative samples are reduced with one's complement, as G.191 does; CPython's
``audioop.lin2ulaw`` differs there), and tests/host/test_relay_audio.py checks them against
the reference values.
"""

import numpy as np

# What a silent frame is made of: the code of linear 0 (mu-law 0xFF, A-law 0xD5).
SILENCE_BYTE = {"pcmu": 0xFF, "pcma": 0xD5}
CODECS = ("pcmu", "pcma")


def _ulaw_expand(code):
    code = int(code)
    mantissa = ~code & 0xFF
    exponent = (mantissa >> 4) & 0x07
    step = 4 << (exponent + 1)
    value = (0x80 << exponent) + step * (mantissa & 0x0F) + step // 2 - 4 * 33
    return value if code >= 0x80 else -value


def _alaw_expand(code):
    ix = (int(code) ^ 0x55) & 0x7F
    exponent = ix >> 4
    mant = ix & 0x0F
    if exponent > 0:
        mant += 16
    mant = (mant << 4) + 0x08
    if exponent > 1:
        mant <<= exponent - 1
    return mant if code > 127 else -mant


def _ulaw_compress_table():
    x = np.arange(-32768, 32768, dtype=np.int32)
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = np.ones_like(absno)
    i = absno >> 6
    for _ in range(8):  # segment number = 1 + bit length of absno >> 6 (at most 7 more)
        segno += i != 0
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    return code.astype(np.uint8)


def _alaw_compress_table():
    x = np.arange(-32768, 32768, dtype=np.int32)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    exponent = np.zeros_like(ix)
    big = ix > 15
    # Normalise: shift right while the value is above 31, counting the shifts (G.191's loop).
    v = ix.copy()
    exponent[big] = 1
    for _ in range(8):
        more = big & (v > 16 + 15)
        v = np.where(more, v >> 1, v)
        exponent += more
    code = np.where(big, (v - 16) + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


_DECODE = {
    "pcmu": np.array([_ulaw_expand(c) for c in range(256)], dtype=np.int16),
    "pcma": np.array([_alaw_expand(c) for c in range(256)], dtype=np.int16),
}
_ENCODE = {"pcmu": _ulaw_compress_table(), "pcma": _alaw_compress_table()}


def decode(codec, payload):
    """G.711 bytes -> int16 numpy array of the same number of samples."""
    return _DECODE[codec][np.frombuffer(payload, dtype=np.uint8)]


def encode(codec, pcm):
    """int16 samples (numpy array) -> G.711 bytes."""
    return _ENCODE[codec][pcm.astype(np.int16, copy=False).view(np.uint16) ^ 0x8000].tobytes()
