# voip.rtcp under CPython and the MicroPython unix port: aiortc's captured RTCP packets parsed
# field by field and serialized back byte for byte, compound packets, precise truncation errors.
import struct

from checks import raises

from voip.rtcp import (
    BYE,
    RR,
    SDES,
    SR,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    build_bye,
    build_report,
    ntp_from_ms,
    ntp_middle,
    parse,
    round_trip_ms,
    serialize,
)

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rpartition("/")[0].rpartition("/")[0] + "/data/rtp/"


def load(name):
    with open(DATA + name, "rb") as f:
        return f.read()


def only(data):
    packets = parse(data)
    assert len(packets) == 1, packets
    return packets[0]


def check_block(block, ssrc, fraction, lost, highest, jitter, lsr, dlsr):
    assert block.ssrc == ssrc, block.ssrc
    assert block.fraction_lost == fraction
    assert block.packets_lost == lost
    assert block.highest_sequence == highest, block.highest_sequence
    assert block.jitter == jitter, block.jitter
    assert block.lsr == lsr and block.dlsr == dlsr


# ---- captured packets (aiortc's test vectors), field by field and back ----------------------


def test_sender_report_capture():
    data = load("rtcp_sr.bin")
    sr = only(data)
    assert isinstance(sr, SenderReport) and sr.packet_type == SR
    assert sr.ssrc == 1831097322
    assert sr.ntp_timestamp == 16016567581311369308
    assert sr.rtp_timestamp == 1722342718
    assert sr.packet_count == 269 and sr.octet_count == 13557
    assert len(sr.reports) == 1
    check_block(sr.reports[0], 2398654957, 0, 0, 246, 127, 0, 0)
    assert sr.extension == b""
    assert sr.serialize() == data


def test_receiver_report_capture():
    data = load("rtcp_rr.bin")
    rr = only(data)
    assert isinstance(rr, ReceiverReport) and rr.packet_type == RR
    assert rr.ssrc == 817267719
    assert len(rr.reports) == 1
    check_block(rr.reports[0], 1200895919, 0, 0, 630, 1906, 0, 0)
    assert rr.serialize() == data


def test_sdes_capture():
    data = load("rtcp_sdes.bin")
    sdes = only(data)
    assert isinstance(sdes, SourceDescription) and sdes.packet_type == SDES
    assert sdes.chunks == [(1831097322, [(1, b"{63f459ea-41fe-4474-9d33-9707c9ee79d1}")])]
    assert sdes.cname() == b"{63f459ea-41fe-4474-9d33-9707c9ee79d1}"
    assert sdes.cname(1831097322) == sdes.cname()
    assert sdes.cname(1) is None
    assert sdes.serialize() == data


def test_bye_captures():
    data = load("rtcp_bye.bin")
    bye = only(data)
    assert isinstance(bye, Bye) and bye.packet_type == BYE
    assert bye.sources == [2924645187] and bye.reason is None
    assert bye.serialize() == data
    assert only(load("rtcp_bye_no_sources.bin")).sources == []
    assert only(load("rtcp_bye_no_sources.bin")).serialize() == load("rtcp_bye_no_sources.bin")
    # four bytes of padding (P bit, count byte 4) and nothing else: a BYE without sources
    padded = only(load("rtcp_bye_padding.bin"))
    assert padded.sources == [] and padded.reason is None
    assert padded.serialize() == b"\x80\xcb\x00\x00"


def test_feedback_packets_pass_through_unchanged():
    pli = load("rtcp_psfb_pli.bin")
    packet = only(pli)
    assert isinstance(packet, RtcpPacket)
    assert packet.packet_type == 206 and packet.count == 1  # PSFB, FMT 1 = PLI
    assert struct.unpack(">II", packet.payload) == (1414554213, 587284409)
    assert packet.serialize() == pli
    nack = load("rtcp_rtpfb.bin")
    packet = only(nack)
    assert packet.packet_type == 205 and packet.count == 1 and len(packet.payload) == 48
    assert struct.unpack_from(">II", packet.payload, 0) == (2336520123, 4145934052)
    assert packet.serialize() == nack


def test_compound_capture():
    data = load("rtcp_sr.bin") + load("rtcp_sdes.bin") + load("rtcp_bye.bin")
    packets = parse(data)
    assert [type(p).__name__ for p in packets] == ["SenderReport", "SourceDescription", "Bye"]
    assert serialize(packets) == data
    # parse accepts bytearray and memoryview as well (a receive buffer slice)
    buf = bytearray(data)
    assert len(parse(memoryview(buf)[: len(data)])) == 3


# ---- malformed input: precise ValueErrors -------------------------------------------------


def test_invalid_captures_are_rejected_precisely():
    cases = (
        ("rtcp_sr_invalid.bin", "RTCP SR truncated: sender info needs 28 bytes, it has 8"),
        ("rtcp_rr_invalid.bin", "RTCP RR truncated: 1 report block(s) need 32 bytes, it has 8"),
        ("rtcp_bye_invalid.bin", "RTCP BYE truncated: 17 source(s) need 72 bytes, it has 8"),
        ("rtcp_sdes_item_truncated.bin", "RTCP SDES truncated: item type 71 in chunk 1"),
        ("rtcp_sdes_source_truncated.bin", "RTCP SDES truncated: chunk 1 has no SSRC"),
        ("rtcp_psfb_invalid.bin", "feedback packet truncated"),
        ("rtcp_rtpfb_invalid.bin", "feedback packet truncated"),
    )
    for name, message in cases:
        with raises(ValueError, match=message):
            parse(load(name))


def test_header_errors():
    rr = load("rtcp_rr.bin")
    cases = (
        (b"", "RTCP packet is empty"),
        (rr[:3], "RTCP packet truncated: 3 bytes, the header needs 4"),
        (rr[:7], "length says 32 bytes, 7 remain"),
        (rr[:-1], "length says 32 bytes, 31 remain"),
        (b"\xc0" + rr[1:], "RTCP packet has version 3, not 2"),
        (b"\x80\x08" + rr[2:], "RTCP packet type 8 is outside 192..223"),
        (rr + rr[:2], "RTCP packet truncated: 2 bytes"),
        (b"\xa0\xcb\x00\x01\x00\x00\x00\x00", "padding count 0 invalid"),
        (b"\xa0\xcb\x00\x01\x00\x00\x00\x05", "padding count 5 invalid"),
        (load("rtcp_bye_no_sources.bin") * 33, "more than 32 packets"),
        (b"\x81\xcb\x00\x02\x00\x00\x00\x01\x09abc", "BYE truncated: reason of 9 bytes"),
        (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x02ab", "chunk 1 has no end item"),
    )
    for data, message in cases:
        with raises(ValueError, match=message):
            parse(data)


def test_every_truncation_of_a_compound_is_a_value_error():
    data = load("rtcp_sr.bin") + load("rtcp_sdes.bin") + load("rtcp_bye.bin")
    boundaries = (len(load("rtcp_sr.bin")), len(data) - 8, len(data))
    for cut in range(len(data)):
        if cut in boundaries:
            assert parse(data[:cut])
            continue
        with raises(ValueError):
            parse(data[:cut])


# ---- building ----------------------------------------------------------------------------


def test_build_report_as_sender_and_receiver():
    block = ReportBlock(0xCAFEBABE, 25, 12, 0x1FFFF, 80, 0x12345678, 65536)
    data = build_report(
        0x11223344, "sipmote@device", block, sender=(ntp_from_ms(5500), 8000, 50, 8000)
    )
    sr, sdes = parse(data)
    assert sr.ssrc == 0x11223344
    assert sr.ntp_timestamp == (5 << 32) | (1 << 31)  # 5.5 s
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (8000, 50, 8000)
    check_block(sr.reports[0], 0xCAFEBABE, 25, 12, 0x1FFFF, 80, 0x12345678, 65536)
    assert sdes.chunks == [(0x11223344, [(1, b"sipmote@device")])]
    assert len(data) == (28 + 24) + (8 + 2 + 14 + 4)  # SR, one block; SDES, 14-byte CNAME
    rr, sdes = parse(build_report(7, b"x"))
    assert isinstance(rr, ReceiverReport) and rr.reports == [] and sdes.cname() == b"x"
    assert len(build_report(7, b"x")) == 8 + 12


def test_build_bye_compound():
    packets = parse(build_bye(42, "c", reason="hang up", block=ReportBlock(9)))
    assert [p.packet_type for p in packets] == [RR, SDES, BYE]
    assert packets[0].reports[0].ssrc == 9
    assert packets[2].sources == [42] and packets[2].reason == b"hang up"
    # the reason is padded to a 32-bit boundary and the length field agrees
    raw = Bye([42], b"hang up").serialize()
    assert len(raw) % 4 == 0 and struct.unpack_from(">H", raw, 2)[0] == len(raw) // 4 - 1


def test_packets_lost_is_a_clamped_signed_24_bit_field():
    for lost, wire in (
        (-8388609, b"\x80\x00\x00"),
        (-8388608, b"\x80\x00\x00"),
        (-1, b"\xff\xff\xff"),
        (0, b"\x00\x00\x00"),
        (1, b"\x00\x00\x01"),
        (8388607, b"\x7f\xff\xff"),
        (8388608, b"\x7f\xff\xff"),
    ):
        raw = ReportBlock(1, 255, lost).serialize()
        assert raw[4:8] == b"\xff" + wire, (lost, raw[4:8])
        again = ReportBlock.unpack_from(raw, 0)
        assert again.fraction_lost == 255
        assert again.packets_lost == max(-8388608, min(8388607, lost))


def test_sdes_item_limits():
    with raises(ValueError, match="<= 255 bytes"):
        SourceDescription([(1, [(1, b"x" * 256)])]).serialize()
    with raises(ValueError, match="type 1..255"):
        SourceDescription([(1, [(0, b"x")])]).serialize()
    with raises(ValueError, match="max 31"):
        Bye(list(range(32))).serialize()
    # every CNAME length pads correctly and round-trips
    for n in range(0, 12):
        raw = SourceDescription([(5, [(1, b"a" * n)])]).serialize()
        assert len(raw) % 4 == 0
        assert only(raw).cname() == b"a" * n


# ---- NTP time and round trip -------------------------------------------------------------


def test_ntp_helpers_and_round_trip_time():
    assert ntp_from_ms(0) == 0
    assert ntp_from_ms(1000) == 1 << 32
    assert ntp_from_ms(1250) == (1 << 32) | (1 << 30)
    assert ntp_middle((1 << 32) | (1 << 30)) == 0x00014000
    # we send an SR at 10.000 s; the peer holds it 250 ms and answers; it arrives at 10.400 s
    lsr = ntp_middle(ntp_from_ms(10000))
    block = ReportBlock(1, lsr=lsr, dlsr=250 * 65536 // 1000)
    rtt = round_trip_ms(block, ntp_from_ms(10400))
    assert 149 <= rtt <= 151, rtt
    assert round_trip_ms(ReportBlock(1), ntp_from_ms(10400)) is None  # no SR seen yet
    late = ReportBlock(1, lsr=lsr, dlsr=900 * 65536 // 1000)  # DLSR beyond the elapsed time
    assert round_trip_ms(late, ntp_from_ms(10400)) == 0
