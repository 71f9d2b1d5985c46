# voip.g711 against ITU-T G.191, for every sample and every code, under CPython and MicroPython.
# The reference below is written from G.191's g711.c (segment search, one's complement).
import hashlib

from checks import is_micropython, raises, skip

from voip import g711

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "128K"

CHUNK = 4096  # samples per exhaustive step: keeps MicroPython's heap use small

# sha256 of the 65,536 codes of the samples -32768..32767 in order, and of the 256 decoded
# values as little-endian int16, computed with the reference below (an extra check that the
# reference itself has not drifted).
ULAW_ENCODE_SHA256 = "90c29de505fb68e766118303bd552a16005dcf810873698bee1d8f3b247ce28c"
ALAW_ENCODE_SHA256 = "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
ULAW_DECODE_SHA256 = "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"
ALAW_DECODE_SHA256 = "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174"


# ---- G.191 reference (g711.c: ulaw_compress, ulaw_expand, alaw_compress, alaw_expand) --------


def g191_ulaw_compress(x):
    # 14-bit magnitude, one's complement for negatives, plus the bias 33; clipped.
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    code = (high_nibble << 4) | low_nibble
    if x >= 0:
        code |= 0x0080
    return code


def g191_ulaw_expand(code):
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def g191_alaw_compress(x):
    ix = (~x) >> 4 if x < 0 else x >> 4  # 12-bit magnitude, one's complement for negatives
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def g191_alaw_expand(code):
    ix = (code ^ 0x0055) & 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


# ---- helpers ----------------------------------------------------------------------------------


def pcm_of(samples):
    buf = bytearray(2 * len(samples))
    for i, x in enumerate(samples):
        buf[2 * i] = x & 0xFF
        buf[2 * i + 1] = (x >> 8) & 0xFF
    return buf


def samples_of(buf, n):
    values = []
    for i in range(n):
        v = buf[2 * i] | (buf[2 * i + 1] << 8)
        values.append(v - 0x10000 if v & 0x8000 else v)
    return values


def all_samples_pcm(start):
    """CHUNK samples start, start+1, ... as little-endian int16 bytes."""
    buf = bytearray(2 * CHUNK)
    for i in range(CHUNK):
        x = (start + i) & 0xFFFF
        buf[2 * i] = x & 0xFF
        buf[2 * i + 1] = x >> 8
    return buf


def check_encoder_exhaustively(encode, reference, digest):
    out = bytearray(CHUNK)
    sha = hashlib.sha256()
    for start in range(-32768, 32768, CHUNK):
        assert encode(all_samples_pcm(start), out) == CHUNK
        for i in range(CHUNK):
            if out[i] != reference(start + i):
                raise AssertionError(
                    "sample %d: got 0x%02x, G.191 gives 0x%02x"
                    % (start + i, out[i], reference(start + i))
                )
        sha.update(out)
    assert sha.digest() == bytes.fromhex(digest)


def check_decoder(decode, reference, digest):
    pcm = bytearray(512)
    assert decode(bytes(range(256)), pcm) == 256
    assert samples_of(pcm, 256) == [reference(code) for code in range(256)]
    assert hashlib.sha256(pcm).digest() == bytes.fromhex(digest)


# ---- bit-exact with G.191 ----------------------------------------------------------------------


def test_ulaw_encode_matches_g191_for_every_sample():
    check_encoder_exhaustively(g711.ulaw_encode, g191_ulaw_compress, ULAW_ENCODE_SHA256)


def test_alaw_encode_matches_g191_for_every_sample():
    check_encoder_exhaustively(g711.alaw_encode, g191_alaw_compress, ALAW_ENCODE_SHA256)


def test_ulaw_decode_matches_g191_for_every_code():
    check_decoder(g711.ulaw_decode, g191_ulaw_expand, ULAW_DECODE_SHA256)


def test_alaw_decode_matches_g191_for_every_code():
    check_decoder(g711.alaw_decode, g191_alaw_expand, ALAW_DECODE_SHA256)


def test_scalar_helpers_match_g191_everywhere():
    for x in range(-32768, 32768):
        if g711.linear_to_ulaw(x) != g191_ulaw_compress(x):
            raise AssertionError("linear_to_ulaw(%d)" % x)
        if g711.linear_to_alaw(x) != g191_alaw_compress(x):
            raise AssertionError("linear_to_alaw(%d)" % x)
    for code in range(256):
        assert g711.ulaw_to_linear(code) == g191_ulaw_expand(code)
        assert g711.alaw_to_linear(code) == g191_alaw_expand(code)


def test_one_complement_negation_as_in_g191():
    # The 508 samples where audioop.lin2ulaw (two's complement) differs include -1..-4.
    for x in (-1, -2, -3, -4):
        assert g711.linear_to_ulaw(x) == 0x7F
    out = bytearray(4)
    g711.ulaw_encode(pcm_of([-1, -4, -5, 0]), out)
    assert list(out) == [0x7F, 0x7F, 0x7E, 0xFF]


def test_portable_loops_match_the_selected_implementation():
    # The loops a MicroPython port without viper would run, checked on every sample and code.
    out, ref = bytearray(CHUNK), bytearray(CHUNK)
    for start in range(-32768, 32768, CHUNK):
        pcm = all_samples_pcm(start)
        for portable, chosen in (
            (g711._portable_ulaw_encode, g711.ulaw_encode),
            (g711._portable_alaw_encode, g711.alaw_encode),
        ):
            assert portable(pcm, out) == CHUNK
            chosen(pcm, ref)
            assert out == ref
    codes = bytes(range(256))
    for portable, chosen in (
        (g711._portable_ulaw_decode, g711.ulaw_decode),
        (g711._portable_alaw_decode, g711.alaw_decode),
    ):
        pcm, expected = bytearray(512), bytearray(512)
        assert portable(codes, pcm) == 256
        chosen(codes, expected)
        assert pcm == expected


def test_tables_follow_the_documented_formulas():
    # g711's docstring: shift = min(3 + bitlen(k), 8) (mu-law), min(4 + bitlen(k), 9) (A-law),
    # and the base makes the formula give G.191's code for any a in the bucket h.
    def bitlen(v):
        n = 0
        while v:
            n += 1
            v >>= 1
        return n

    table = g711._ULAW_ENCODE  # shift[h] for h in 0..384, then base[h]
    assert len(table) == 2 * 385
    for h in list(range(129)) + list(range(256, 385)):
        shift = min(3 + bitlen(h & 0xFF if h >= 256 else h), 8)
        assert table[h] == shift
        a = max(h << 8, 0x10000 + 132 if h >= 256 else 132)  # lowest a reachable in bucket h
        x = a - 132 - 0x10000 if h >= 256 else ~(a - 132)
        assert table[385 + h] == (g191_ulaw_compress(x) + (a >> shift)) & 0xFF
    table = g711._ALAW_ENCODE  # shift[h] for h in 0..127, then base[h]
    assert len(table) == 2 * 128
    for h in range(128):
        shift = min(4 + bitlen(h & 63), 9)
        assert table[h] == shift
        a = h << 9
        x = a if a < 0x8000 else ~(a - 0x8000)
        assert table[128 + h] == ((g191_alaw_compress(x) ^ 0x55) - (a >> shift)) & 0xFF
    assert len(g711._ULAW_DECODE) == len(g711._ALAW_DECODE) == 512


# ---- the buffer contract -----------------------------------------------------------------------


def test_implementation_is_viper_on_micropython():
    expected = "viper" if is_micropython() else "cpython"
    assert expected == g711.IMPLEMENTATION


def test_counts_come_from_out_and_data_and_extra_bytes_stay_untouched():
    samples = [0, 1000, -1000, 32767, -32768, 5, -5, 123, -124, 8000]
    pcm = pcm_of(samples) + b"\xaa\xbb"  # more pcm than len(out) needs
    out = bytearray(7)
    assert g711.ulaw_encode(pcm, out) == 7
    assert list(out) == [g191_ulaw_compress(x) for x in samples[:7]]
    assert g711.alaw_encode(pcm, out) == 7
    assert list(out) == [g191_alaw_compress(x) for x in samples[:7]]
    decoded = bytearray(b"\xee" * 20)
    assert g711.ulaw_decode(bytes([0, 0x7F, 0x80, 0xFF]), decoded) == 4
    assert samples_of(decoded, 4) == [-32124, 0, 32124, 0]
    assert decoded[8:] == b"\xee" * 12


def test_every_length_and_alignment_gives_the_same_codes():
    # Lengths around the unrolled blocks (4 and 8) and pcm at an odd address, which the viper
    # kernels must handle byte by byte (the ESP32 faults on unaligned 16-bit access).
    samples = [(i * 2654435761 >> 7) % 65536 - 32768 for i in range(41)]
    for n in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 41):
        backing = bytearray(2 * n + 1)
        odd = memoryview(backing)[1:]
        odd[:] = pcm_of(samples[:n])
        for encode, reference in (
            (g711.ulaw_encode, g191_ulaw_compress),
            (g711.alaw_encode, g191_alaw_compress),
        ):
            want = bytes(reference(x) for x in samples[:n])
            out = bytearray(n)
            assert encode(pcm_of(samples[:n]), out) == n and out == want
            out = bytearray(n)
            assert encode(odd, memoryview(out)) == n and out == want
        codes = bytes(samples[i] & 0xFF for i in range(n))
        for decode, reference in (
            (g711.ulaw_decode, g191_ulaw_expand),
            (g711.alaw_decode, g191_alaw_expand),
        ):
            want = [reference(c) for c in codes]
            pcm = bytearray(2 * n)
            assert decode(codes, pcm) == n and samples_of(pcm, n) == want
            assert decode(memoryview(codes), odd) == n and samples_of(odd, n) == want


def test_short_pcm_raises_and_writes_nothing():
    for encode in (g711.ulaw_encode, g711.alaw_encode):
        out = bytearray(b"\x11" * 10)
        with raises(ValueError, match="pcm buffer shorter"):
            encode(bytearray(19), out)
        assert out == b"\x11" * 10
    for decode in (g711.ulaw_decode, g711.alaw_decode):
        pcm = bytearray(b"\x22" * 19)
        with raises(ValueError, match="pcm buffer shorter"):
            decode(bytes(10), pcm)
        assert pcm == b"\x22" * 19


def test_read_only_output_raises_type_error_and_stays_intact():
    frozen_out = bytes(4)
    with raises(TypeError):
        g711.ulaw_encode(bytearray(8), frozen_out)
    with raises(TypeError):
        g711.alaw_encode(bytearray(8), memoryview(frozen_out))
    assert frozen_out == bytes(4)
    frozen_pcm = bytes(8)
    with raises(TypeError):
        g711.ulaw_decode(b"\x00\x01\x02\x03", frozen_pcm)
    assert frozen_pcm == bytes(8)


def test_empty_buffers_give_zero():
    assert g711.ulaw_encode(b"", bytearray()) == 0
    assert g711.alaw_encode(bytearray(4), bytearray()) == 0
    assert g711.ulaw_decode(b"", bytearray()) == 0
    assert g711.alaw_decode(bytearray(), bytearray(2)) == 0


def test_codes_survive_decode_then_encode():
    # Every A-law code, and every mu-law code but -0 (0x7F, which decodes to 0 = +0 = 0xFF).
    codes = bytes(range(256))
    pcm, again = bytearray(512), bytearray(256)
    g711.alaw_decode(codes, pcm)
    g711.alaw_encode(pcm, again)
    assert again == codes
    g711.ulaw_decode(codes, pcm)
    g711.ulaw_encode(pcm, again)
    assert again == codes[:0x7F] + b"\xff" + codes[0x80:]


def test_silence_codes_and_scalar_range_checks():
    assert g711.ulaw_to_linear(g711.ULAW_SILENCE) == 0
    assert g711.linear_to_ulaw(0) == g711.ULAW_SILENCE
    assert g711.alaw_to_linear(g711.ALAW_SILENCE) == 8
    assert g711.linear_to_alaw(0) == g711.ALAW_SILENCE
    for bad in (32768, -32769):
        with raises(ValueError, match="16-bit"):
            g711.linear_to_ulaw(bad)
        with raises(ValueError, match="16-bit"):
            g711.linear_to_alaw(bad)
    for bad in (256, -1):
        with raises(ValueError, match="0..255"):
            g711.ulaw_to_linear(bad)
        with raises(ValueError, match="0..255"):
            g711.alaw_to_linear(bad)


def test_no_allocation_per_160_sample_frame():
    if not is_micropython():
        skip("gc.mem_alloc() and heap_lock() are MicroPython's; the CPython path may allocate")
    import gc

    import micropython

    pcm = pcm_of([(i * 997) % 65536 - 32768 for i in range(160)])
    codes, decoded = bytearray(160), bytearray(320)
    calls = (
        (g711.ulaw_encode, pcm, codes),
        (g711.alaw_encode, pcm, codes),
        (g711.ulaw_decode, codes, decoded),
        (g711.alaw_decode, codes, decoded),
    )
    for function, source, target in calls:
        function(source, target)
        gc.collect()
        before = gc.mem_alloc()
        for _ in range(200):
            function(source, target)
        assert gc.mem_alloc() - before == 0, function
        # Also nothing allocated and freed within a call: with the heap locked, any
        # allocation raises MemoryError.
        micropython.heap_lock()
        try:
            function(source, target)
        finally:
            micropython.heap_unlock()
