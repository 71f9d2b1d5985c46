# voip.framebuf: the viper byte loops (MicroPython) and their portable twins (CPython) give the
# same bytes, refuse out-of-range offsets instead of writing past a buffer, allocate nothing.
from checks import is_micropython, raises

from voip import framebuf

RUNTIMES = ("cpython", "micropython")


def test_copy_fill_translate():
    dst = bytearray(10)
    framebuf.copy_into(dst, 2, b"abcdef", 1, 3)
    assert dst == b"\x00\x00bcd\x00\x00\x00\x00\x00"
    framebuf.copy_into(dst, 0, memoryview(bytearray(b"xyz123")), 3, 3)
    assert dst[:5] == b"123cd"
    framebuf.fill(dst, 5, 5, 0x1FF)  # the value is a byte: 0x1FF & 0xFF
    assert dst[5:] == b"\xff" * 5
    table = bytes((i + 1) & 0xFF for i in range(256))
    framebuf.translate(dst, 0, 10, table)
    assert dst == b"234de" + b"\x00" * 5
    framebuf.copy_into(dst, 0, dst, 0, 0)  # an empty copy is fine


def test_out_of_range_offsets_raise_before_touching_memory():
    dst = bytearray(8)
    src = bytes(range(8))
    for args in (
        (dst, 4, src, 0, 5),
        (dst, 0, src, 4, 5),
        (dst, -1, src, 0, 1),
        (dst, 0, src, 0, -1),
    ):
        with raises(ValueError, match="outside"):
            framebuf.copy_into(*args)
    with raises(ValueError, match="outside"):
        framebuf.fill(dst, 6, 3, 0)
    with raises(ValueError, match="outside"):
        framebuf.translate(dst, 0, 9, bytes(256))
    with raises(ValueError, match="256"):
        framebuf.translate(dst, 0, 8, bytes(255))
    assert dst == bytes(8)


def test_viper_on_micropython_and_no_allocation():
    if not is_micropython():
        assert not framebuf.VIPER
        return
    import gc

    assert framebuf.VIPER
    dst = bytearray(160)
    src = memoryview(bytearray(range(172)))
    table = bytes(range(255, -1, -1))
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(200):
        framebuf.copy_into(dst, 0, src, 12, 160)
        framebuf.translate(dst, 0, 160, table)
        framebuf.fill(dst, 150, 10, 0xD5)
    assert gc.mem_alloc() - before == 0
    assert dst[0] == 255 - 12 and dst[149] == 255 - 161 and dst[150] == 0xD5
