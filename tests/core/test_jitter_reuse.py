# voip.jitter.JitterBuffer.set_codec: one buffer (and its ring) serves call after call, each
# with its own G.711 law; nothing of the last stream carries over.
from checks import raises

from voip.jitter import AUDIO, SILENCE, SILENCE_PCMA, SILENCE_PCMU, JitterBuffer, g711_fade_table

RUNTIMES = ("cpython", "micropython")


def test_a_buffer_reused_for_the_other_law_forgets_the_last_stream():
    jb = JitterBuffer(slots=8, min_ms=20, max_ms=60)
    ring = jb._data
    out = bytearray(160)
    for n in range(3):
        jb.put(n, n * 160, bytes([7]) * 160, n * 20)
        jb.get(out)
    assert jb.received == 3 and jb.played >= 1
    jb.set_codec(SILENCE_PCMA, g711_fade_table("PCMA"))
    assert jb._data is ring and jb.received == 0 and jb.played == 0
    assert jb.get(out) == SILENCE and out == bytes([SILENCE_PCMA]) * 160
    jb.put(500, 9000, bytes([9]) * 160, 1000)  # a new stream anchors afresh
    assert jb.get(out) == AUDIO and out == bytes([9]) * 160
    jb.set_codec(SILENCE_PCMU)
    assert jb.get(out) == SILENCE and out == bytes([SILENCE_PCMU]) * 160
    with raises(ValueError, match="256 entries"):
        jb.set_codec(SILENCE_PCMU, bytes(10))
