# voip.seqnum: wraparound-safe comparisons of RTP sequence numbers (16 bits) and timestamps
# (32 bits), as RFC 3550 and RFC 1982 serial-number arithmetic define them. MIT licence.
try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_SEQ_MOD = const(0x10000)
_SEQ_HALF = const(0x8000)


def seq_diff(a, b):
    """Signed distance from sequence number b to a, in -32768..32767 (a - b modulo 2**16)."""
    d = (a - b) & 0xFFFF
    return d - _SEQ_MOD if d >= _SEQ_HALF else d


def seq_lt(a, b):
    """True when sequence number a comes before b, across wraparound."""
    return seq_diff(a, b) < 0


def ts_diff(a, b):
    """Signed distance from RTP timestamp b to a (a - b modulo 2**32)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d
