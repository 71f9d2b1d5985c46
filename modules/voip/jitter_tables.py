# voip.jitter_tables: the 256-byte G.711 code tables voip.jitter conceals and trims with,
# built once at set-up (they allocate). MIT licence.


def fade_table(decode, encode, percent):
    """A 256-byte table mapping each G.711 code to the code of its value scaled by percent.

    decode/encode are voip.g711's `ulaw_decode(data, pcm)`/`ulaw_encode(pcm, out)` (or the
    A-law pair). Built once, at set-up: it allocates."""
    codes = bytearray(range(256))
    pcm = bytearray(512)
    decode(codes, pcm)
    for i in range(256):
        value = pcm[2 * i] | (pcm[2 * i + 1] << 8)
        if value >= 0x8000:
            value -= 0x10000
        value = value * percent // 100 if value >= 0 else -((-value) * percent // 100)
        value &= 0xFFFF
        pcm[2 * i] = value & 0xFF
        pcm[2 * i + 1] = value >> 8
    out = bytearray(256)
    encode(pcm, out)
    return bytes(out)


def g711_loud_table(law, level=256):
    """A 256-byte table: 1 for each G.711 code ("PCMU" or "PCMA") whose value is beyond
    +-level, 0 for the others. A frame with no such code is quiet (level 256: -42 dBFS)."""
    if law not in ("PCMU", "PCMA"):
        raise ValueError("no G.711 law named %r" % (law,))
    from . import g711

    codes = bytearray(range(256))
    pcm = bytearray(512)
    (g711.ulaw_decode if law == "PCMU" else g711.alaw_decode)(codes, pcm)
    table = bytearray(256)
    for i in range(256):
        value = pcm[2 * i] | (pcm[2 * i + 1] << 8)
        if value >= 0x8000:
            value -= 0x10000
        table[i] = 1 if value > level or value < -level else 0
    return bytes(table)


def g711_fade_table(law, percent=60):
    """fade_table for "PCMU" or "PCMA" built with voip.g711."""
    if law not in ("PCMU", "PCMA"):
        raise ValueError("no G.711 law named %r" % (law,))
    from . import g711

    if law == "PCMU":
        return fade_table(g711.ulaw_decode, g711.ulaw_encode, percent)
    return fade_table(g711.alaw_decode, g711.alaw_encode, percent)
