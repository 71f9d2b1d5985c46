# The relay's PCM path: G.711 tables against the G.191 reference, and the streaming resampler
# (8 kHz <-> 24 kHz) with a sine: frequency kept, no click at the 20 ms chunk boundaries.
import warnings

import numpy as np
import pytest

from sipmote.relay import g711_tables
from sipmote.relay.resample import G711ToPcm, PcmToG711, StreamResampler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop  # G.191-exact for ulaw2lin, alaw2lin, lin2alaw (not lin2ulaw)
    except ImportError:  # Python 3.13 without audioop-lts
        audioop = None

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_g711_decode_known_values():
    # G.191: mu-law 0xFF and 0x7F are +0 and -0; 0x80/0x00 the extremes; A-law 0xD5/0x55 +-8.
    mu = g711_tables.decode("pcmu", bytes([0xFF, 0x7F, 0x80, 0x00]))
    assert mu.tolist() == [0, 0, 32124, -32124]
    a = g711_tables.decode("pcma", bytes([0xD5, 0x55, 0xAA, 0x2A]))
    assert a.tolist() == [8, -8, 32256, -32256]


def test_g711_ulaw_encode_follows_g191_for_negative_values():
    # G.191 reduces negatives with one's complement: -1..-4 -> 0x7F (audioop gives 0x7E)
    out = g711_tables.encode("pcmu", np.array([0, -1, -4, -5, 32767, -32768], np.int16))
    assert out == bytes([0xFF, 0x7F, 0x7F, 0x7E, 0x80, 0x00])


@pytest.mark.skipif(audioop is None, reason="audioop not available")
def test_g711_tables_match_reference_where_audioop_is_exact():
    assert g711_tables.decode("pcmu", ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711_tables.decode("pcma", ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)
    assert g711_tables.encode("pcma", ALL_PCM) == audioop.lin2alaw(ALL_PCM.tobytes(), 2)
    ours = np.frombuffer(g711_tables.encode("pcmu", ALL_PCM), np.uint8)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_PCM.tobytes(), 2), np.uint8)
    differ = ALL_PCM[ours != theirs]
    # exactly the 508 negative inputs where audioop negates by two's complement
    assert len(differ) == 508 and differ.max() < 0


def test_g711_tables_agree_with_the_shared_core_on_every_input():
    from voip import g711  # the device's codec (G.191 bit-exact, checked in tests/core)

    for c in range(256):
        assert g711.ulaw_to_linear(c) == int(g711_tables.decode("pcmu", bytes([c]))[0])
        assert g711.alaw_to_linear(c) == int(g711_tables.decode("pcma", bytes([c]))[0])
    mu = g711_tables.encode("pcmu", ALL_PCM)
    a = g711_tables.encode("pcma", ALL_PCM)
    for i, x in enumerate(ALL_PCM.tolist()):
        assert g711.linear_to_ulaw(x) == mu[i] and g711.linear_to_alaw(x) == a[i]


def test_g711_round_trip_is_identity_on_codes():
    for codec in ("pcmu", "pcma"):
        pcm = g711_tables.decode(codec, ALL_CODES)
        again = g711_tables.encode(codec, pcm)
        if codec == "pcmu":  # 0x7F (-0) decodes to 0, which encodes as +0 (0xFF)
            assert again == ALL_CODES.replace(b"\x7f", b"\xff")
        else:
            assert again == ALL_CODES


def _sine(freq, rate, seconds, amplitude=12000.0):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _in_chunks(resampler, samples, chunk):
    out = [resampler.process(samples[i : i + chunk]) for i in range(0, len(samples), chunk)]
    out.append(resampler.flush())
    return np.concatenate(out)


def _peak_hz(x, rate):
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window))
    k = int(np.argmax(spectrum))
    # parabolic interpolation between bins: sub-bin frequency estimate
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x)


def _fit_residual_db(y, freq, rate):
    """Least-squares fit of a sine at freq (any phase, offset); residual energy re signal."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t),
                      np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    residual = y - basis @ coef
    return 10 * np.log10(np.sum(residual**2) / np.sum((basis @ coef) ** 2))


@pytest.mark.parametrize("in_rate,out_rate,chunk", [(8000, 24000, 160), (24000, 8000, 480),
                                                    (24000, 8000, 333)])
def test_stream_resampler_keeps_frequency_and_has_no_chunk_clicks(in_rate, out_rate, chunk):
    freq = 1000.0
    x = _sine(freq, in_rate, 1.0)
    y = _in_chunks(StreamResampler(in_rate, out_rate), x, chunk)
    assert abs(len(y) - out_rate) <= 2  # one second in, one second out
    steady = y[out_rate // 10 : -out_rate // 10].astype(np.float64)  # skip filter edges
    assert abs(_peak_hz(steady, out_rate) - freq) < 1.0
    # a click at a chunk boundary would leave energy that is not the sine
    assert _fit_residual_db(steady, freq, out_rate) < -70  # restarting per chunk: -40
    # and the largest sample step stays within the sine's own slope (2 pi f A / rate)
    max_step = 2 * np.pi * freq * 12000 / out_rate
    assert np.max(np.abs(np.diff(steady))) <= max_step * 1.05


def test_stream_resampler_chunked_equals_one_block():
    x = _sine(440.0, 8000, 0.5)
    whole = _in_chunks(StreamResampler(8000, 24000), x, len(x))
    chunked = _in_chunks(StreamResampler(8000, 24000), x, 160)
    n = min(len(whole), len(chunked))
    assert abs(len(whole) - len(chunked)) <= 1
    assert np.max(np.abs(whole[:n].astype(int) - chunked[:n].astype(int))) <= 1


def test_g711_pcm_converters_round_trip_a_tone():
    tone = g711_tables.encode("pcma", _sine(700.0, 8000, 1.0, 8000))
    up, down = G711ToPcm("pcma"), PcmToG711("pcma")
    pcm = b"".join(up.convert(tone[i : i + 160]) for i in range(0, len(tone), 160))
    pcm += up._resampler.flush().astype("<i2").tobytes()
    assert abs(len(pcm) / 2 - 24000) <= 3
    # odd-sized chunks that split samples, as a backend may send them
    out = b"".join(down.convert(pcm[i : i + 999]) for i in range(0, len(pcm), 999))
    out += down.flush()
    assert abs(len(out) - 8000) <= 3
    y = g711_tables.decode("pcma", out)[800:-800].astype(np.float64)
    assert abs(_peak_hz(y, 8000) - 700.0) < 1.0
    assert _fit_residual_db(y, 700.0, 8000) < -30  # two G.711 quantisations + two resamplings


def test_resampler_latency_is_bounded():
    # soxr emits in blocks: an impulse must come out within 60 ms of input at 20 ms chunks
    for in_rate, out_rate in ((8000, 24000), (24000, 8000)):
        r = StreamResampler(in_rate, out_rate)
        chunk = in_rate // 50
        x = np.zeros(in_rate, np.int16)
        x[in_rate // 2] = 20000
        fed_ms = None
        for i in range(0, len(x), chunk):
            y = r.process(x[i : i + chunk])
            if len(y) and np.max(np.abs(y)) > 2000:
                fed_ms = (i + chunk) * 1000 // in_rate
                break
        assert fed_ms is not None and fed_ms - 500 <= 60
