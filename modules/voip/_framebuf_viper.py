# voip._framebuf_viper: viper byte loops behind voip.framebuf (MicroPython only).
# MIT licence. No bounds checks here: voip.framebuf checks every offset before calling in.
import micropython


@micropython.viper
def copy(dst, dst_at: int, src, src_at: int, n: int):
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[dst_at + i] = s[src_at + i]
        i += 1


@micropython.viper
def fill(dst, at: int, n: int, value: int):
    d = ptr8(dst)
    i = 0
    while i < n:
        d[at + i] = value
        i += 1


@micropython.viper
def translate(buf, at: int, n: int, table):
    d = ptr8(buf)
    t = ptr8(table)
    i = 0
    while i < n:
        d[at + i] = t[d[at + i]]
        i += 1


@micropython.viper
def count_marked(buf, at: int, n: int, table) -> int:
    d = ptr8(buf)
    t = ptr8(table)
    count = 0
    i = 0
    while i < n:
        if t[d[at + i]]:
            count += 1
        i += 1
    return count
