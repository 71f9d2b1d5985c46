# Inputs the fuzzers found that broke an invariant, each kept as a test once fixed, on both
# runtimes. The invariant checks are the fuzzers' own (fuzz_targets.py).
from fuzz_targets import check_rtcp

from voip import rtcp

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "512K"


def test_padded_packet_of_unknown_type_serializes_again():
    # atheris, rtcp target: an XR (207) packet with the P bit. parse() strips the padding, so
    # the payload it keeps is 1 byte; serialize() raised "body must be a multiple of 4".
    data = b"\xa1\xcf\x00\x03Vy\x12e4\x03xb\x00\x00\x00\x0b"
    (packet,) = rtcp.parse(data)
    assert packet.packet_type == 207 and packet.payload == b"V"
    wire = packet.serialize()
    assert len(wire) % 4 == 0 and wire[0] & 0x20  # padded again, P bit set
    (again,) = rtcp.parse(wire)
    assert again.payload == packet.payload and again.count == packet.count
    assert check_rtcp(data)


def test_padded_receiver_report_keeps_its_extension():
    # the same for an RR whose profile extension ends up unaligned once padding is stripped
    data = b"\xa0\xc9\x00\x02\x12\x34\x56\x78\xaa\xbb\xcc\x01"
    (rr,) = rtcp.parse(data)
    assert rr.extension == b"\xaa\xbb\xcc"
    (again,) = rtcp.parse(rr.serialize())
    assert again.extension == rr.extension and again.ssrc == 0x12345678
    assert check_rtcp(data)
