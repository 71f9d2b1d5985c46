# voip.framebuf: bounds-checked byte copies, fills and table lookups between preallocated
# buffers, allocation-free on MicroPython. MIT licence.
#
# Why this exists: on MicroPython, slicing a memoryview allocates a new view object (32 bytes
# measured on the unix port), so `dst[a:b] = src_view[c:d]` costs an allocation per packet.
# The viper kernels in _framebuf_viper walk raw pointers instead. They skip bounds checks, so
# every entry point here checks offsets first: a malformed packet must never write past a
# buffer. On CPython (or a port without viper) slice assignment does the same job.

try:
    from ._framebuf_viper import copy as _copy
    from ._framebuf_viper import count_marked as _count_marked
    from ._framebuf_viper import fill as _fill
    from ._framebuf_viper import translate as _translate

    VIPER = True
except ImportError:  # CPython, or a MicroPython build without the native emitter
    VIPER = False

    def _copy(dst, dst_at, src, src_at, n):
        dst[dst_at : dst_at + n] = src[src_at : src_at + n]

    def _fill(dst, at, n, value):
        for i in range(at, at + n):
            dst[i] = value

    def _translate(buf, at, n, table):
        for i in range(at, at + n):
            buf[i] = table[buf[i]]

    def _count_marked(buf, at, n, table):
        count = 0
        for i in range(at, at + n):
            if table[buf[i]]:
                count += 1
        return count


def _check(buf, at, n):
    if at < 0 or n < 0 or at + n > len(buf):
        raise ValueError("range %d+%d outside a %d-byte buffer" % (at, n, len(buf)))


def copy_into(dst, dst_at, src, src_at, n):
    """Copy n bytes from src[src_at:] to dst[dst_at:] without allocating."""
    _check(dst, dst_at, n)
    _check(src, src_at, n)
    _copy(dst, dst_at, src, src_at, n)


def fill(dst, at, n, value):
    """Set dst[at:at+n] to the byte value."""
    _check(dst, at, n)
    _fill(dst, at, n, value & 0xFF)


def translate(buf, at, n, table):
    """Map buf[at:at+n] through a 256-byte table in place (buf[i] = table[buf[i]])."""
    _check(buf, at, n)
    if len(table) != 256:
        raise ValueError("translation table must have 256 entries")
    _translate(buf, at, n, table)


def count_marked(buf, at, n, table):
    """How many of buf[at:at+n] have a non-zero entry in a 256-byte table (e.g. G.711 codes
    louder than a level: voip.jitter's quiet test)."""
    _check(buf, at, n)
    if len(table) != 256:
        raise ValueError("lookup table must have 256 entries")
    return _count_marked(buf, at, n, table)
