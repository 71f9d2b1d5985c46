# voip._g711_viper: the @micropython.viper kernels behind voip.g711 (MicroPython only).
# MIT licence.
"""Factories closing viper kernels over voip.g711's tables (its docstring gives the maths).

On CPython `import micropython` fails, so importing this raises ImportError and voip.g711 keeps
its portable path. How the kernels are written, and why:
- Sizes are checked first (a short pcm raises ValueError) and the first output element is written
  through the ordinary subscript, so a read-only output raises TypeError instead of being
  written through a raw pointer (viper's ptr8() accepts read-only buffers).
- 16-bit samples go through ptr16 only at even addresses: the ESP32 (Xtensa) faults on unaligned
  16-bit loads and stores. An odd address (a memoryview sliced at an odd offset, or a table the
  freezer placed at an odd flash address) takes the byte-wise loop, which also does the tail.
- The loops walk addresses held in uint locals and unroll by 8 (decode) or 4 (encode): viper keeps
  almost no locals in registers, so every statement reloads them, and reads at constant offsets
  from one address are the cheapest it emits.
- `len`, `ValueError` and the table are closure cells, so the kernels name no global: a builtin
  looked up from viper code is a linear search of the builtins table on every call, and any
  global makes the function set up an exception handler on entry. Together that was a third of
  the time of a 160-sample decode. At most three cells: a closure called with more than five
  values (cells + arguments) allocates their array on the heap at every call.
"""

import micropython


def decoder(table):
    """decode(data, pcm) -> n over `table`: 256 little-endian int16, the value of each code."""
    size, error = len, ValueError

    @micropython.viper
    def decode(data, pcm) -> int:
        n = int(size(data))
        if int(size(pcm)) < n << 1:
            raise error("pcm buffer shorter than 2 bytes per sample")
        if n == 0:
            return 0
        pcm[0] = 0  # TypeError if pcm is read-only
        value_bytes = ptr8(table)
        src = uint(ptr8(data))
        dst = uint(ptr8(pcm))
        end = src + uint(n)
        if not (dst | uint(value_bytes)) & 1:
            values = ptr16(uint(value_bytes))
            unrolled_end = src + uint(n & ~7)
            while src < unrolled_end:
                ptr16(dst)[0] = values[ptr8(src)[0]]
                ptr16(dst)[1] = values[ptr8(src)[1]]
                ptr16(dst)[2] = values[ptr8(src)[2]]
                ptr16(dst)[3] = values[ptr8(src)[3]]
                ptr16(dst)[4] = values[ptr8(src)[4]]
                ptr16(dst)[5] = values[ptr8(src)[5]]
                ptr16(dst)[6] = values[ptr8(src)[6]]
                ptr16(dst)[7] = values[ptr8(src)[7]]
                src += 8
                dst += 16
        while src < end:
            offset = ptr8(src)[0] << 1
            ptr8(dst)[0] = value_bytes[offset]
            ptr8(dst)[1] = value_bytes[offset + 1]
            src += 1
            dst += 2
        return n

    return decode


def ulaw_encoder(table):
    """encode(pcm, out) -> n for mu-law: code = (base[h] - (a >> shift[h])) & 0xFF, where
    `table` holds shift[0..384] then base[0..384]."""
    size, error = len, ValueError

    @micropython.viper
    def encode(pcm, out) -> int:
        n = int(size(out))
        if int(size(pcm)) < n << 1:
            raise error("pcm buffer shorter than 2 bytes per sample")
        if n == 0:
            return 0
        out[0] = 0  # TypeError if out is read-only
        shifts = ptr8(table)
        bases = ptr8(uint(shifts) + 385)
        src = uint(ptr8(pcm))
        dst = uint(ptr8(out))
        end = dst + uint(n)
        if not src & 1:
            unrolled_end = dst + uint(n & ~3)
            while dst < unrolled_end:
                # a: negative samples m + 132 (m = ~x, G.191's one's complement), positive
                # samples x + 132 + 0x10000; the store keeps the low byte.
                x = ptr16(src)[0]
                a = (x ^ (0x10000 - (x >> 15))) + 132
                ptr8(dst)[0] = bases[a >> 8] - (a >> shifts[a >> 8])
                x = ptr16(src)[1]
                a = (x ^ (0x10000 - (x >> 15))) + 132
                ptr8(dst)[1] = bases[a >> 8] - (a >> shifts[a >> 8])
                x = ptr16(src)[2]
                a = (x ^ (0x10000 - (x >> 15))) + 132
                ptr8(dst)[2] = bases[a >> 8] - (a >> shifts[a >> 8])
                x = ptr16(src)[3]
                a = (x ^ (0x10000 - (x >> 15))) + 132
                ptr8(dst)[3] = bases[a >> 8] - (a >> shifts[a >> 8])
                src += 8
                dst += 4
        while dst < end:
            x = ptr8(src)[0] | (ptr8(src)[1] << 8)
            a = (x ^ (0x10000 - (x >> 15))) + 132
            ptr8(dst)[0] = bases[a >> 8] - (a >> shifts[a >> 8])
            src += 2
            dst += 1
        return n

    return encode


def alaw_encoder(table):
    """encode(pcm, out) -> n for A-law: code = ((base[h] + (a >> shift[h])) & 0xFF) ^ 0x55, where
    `table` holds shift[0..127] then base[0..127]."""
    size, error = len, ValueError

    @micropython.viper
    def encode(pcm, out) -> int:
        n = int(size(out))
        if int(size(pcm)) < n << 1:
            raise error("pcm buffer shorter than 2 bytes per sample")
        if n == 0:
            return 0
        out[0] = 0  # TypeError if out is read-only
        shifts = ptr8(table)
        bases = ptr8(uint(shifts) + 128)
        src = uint(ptr8(pcm))
        dst = uint(ptr8(out))
        end = dst + uint(n)
        if not src & 1:
            unrolled_end = dst + uint(n & ~3)
            while dst < unrolled_end:
                # a: positive samples x, negative samples m + 0x8000 (m = ~x & 0x7FFF).
                x = ptr16(src)[0]
                a = x ^ ((x >> 15) * 0x7FFF)
                ptr8(dst)[0] = (bases[a >> 9] + (a >> shifts[a >> 9])) ^ 0x55
                x = ptr16(src)[1]
                a = x ^ ((x >> 15) * 0x7FFF)
                ptr8(dst)[1] = (bases[a >> 9] + (a >> shifts[a >> 9])) ^ 0x55
                x = ptr16(src)[2]
                a = x ^ ((x >> 15) * 0x7FFF)
                ptr8(dst)[2] = (bases[a >> 9] + (a >> shifts[a >> 9])) ^ 0x55
                x = ptr16(src)[3]
                a = x ^ ((x >> 15) * 0x7FFF)
                ptr8(dst)[3] = (bases[a >> 9] + (a >> shifts[a >> 9])) ^ 0x55
                src += 8
                dst += 4
        while dst < end:
            x = ptr8(src)[0] | (ptr8(src)[1] << 8)
            a = x ^ ((x >> 15) * 0x7FFF)
            ptr8(dst)[0] = (bases[a >> 9] + (a >> shifts[a >> 9])) ^ 0x55
            src += 2
            dst += 1
        return n

    return encode
