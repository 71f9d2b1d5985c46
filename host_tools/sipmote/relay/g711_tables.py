"""G.711 for the relay's PCM path: numpy lookup tables filled by the shared core (voip.g711).

The relay converts audio only for a backend whose native format is PCM (the OpenAI backend
takes G.711 as is). On CPython a 256-entry decode table and a 65536-entry encode table indexed
by numpy turn a 20 ms frame into one vectorised gather: a few microseconds, no Python loop.
The tables are voip.g711's answers for every code and every sample, so the relay converts
exactly as the device does, bit for bit with ITU-T G.191 (negative samples are reduced with
one's complement, as G.191 does; CPython's ``audioop.lin2ulaw`` differs there). Filling them
costs about 60 ms once, at import, not in a call's first frame.
"""

import numpy as np

from voip import g711

# What a silent frame is made of: the code of linear 0 (mu-law 0xFF, A-law 0xD5).
SILENCE_BYTE = {"pcmu": g711.ULAW_SILENCE, "pcma": g711.ALAW_SILENCE}
CODECS = ("pcmu", "pcma")


def _decode_table(decode):
    pcm = bytearray(2 * 256)
    decode(bytes(range(256)), pcm)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def _encode_table(encode):
    # indexed by the sample's bits with the sign bit flipped: -32768 first, 32767 last
    codes = bytearray(65536)
    encode(np.arange(-32768, 32768, dtype="<i2").tobytes(), codes)
    return np.frombuffer(codes, dtype=np.uint8)


_DECODE = {"pcmu": _decode_table(g711.ulaw_decode), "pcma": _decode_table(g711.alaw_decode)}
_ENCODE = {"pcmu": _encode_table(g711.ulaw_encode), "pcma": _encode_table(g711.alaw_encode)}


def decode(codec, payload):
    """G.711 bytes -> int16 numpy array of the same number of samples."""
    return _DECODE[codec][np.frombuffer(payload, dtype=np.uint8)]


def encode(codec, pcm):
    """int16 samples (numpy array) -> G.711 bytes."""
    return _ENCODE[codec][pcm.astype(np.int16, copy=False).view(np.uint16) ^ 0x8000].tobytes()
