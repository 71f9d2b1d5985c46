# Sequence-number arithmetic: written once, run under CPython and the MicroPython unix port.
from voip.seqnum import seq_diff, seq_lt, ts_diff

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "64K"


def test_seq_diff_across_wraparound():
    assert seq_diff(1, 0) == 1
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 65530) == 11
    assert seq_diff(32767, 0) == 32767
    assert seq_diff(32768, 0) == -32768


def test_seq_lt_orders_a_wrapping_stream():
    stream = [65533, 65534, 65535, 0, 1, 2]
    for earlier, later in zip(stream, stream[1:]):
        assert seq_lt(earlier, later)
        assert not seq_lt(later, earlier)
    assert not seq_lt(7, 7)


def test_ts_diff_across_wraparound():
    assert ts_diff(160, 0) == 160
    assert ts_diff(80, 0xFFFFFFF0) == 96
    assert ts_diff(0xFFFFFFF0, 80) == -96
