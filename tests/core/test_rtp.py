# voip.rtp under CPython and the MicroPython unix port: captured packets round-tripped field by
# field (aiortc's vectors, SIPp's PCMA capture), precise errors, wraparound, zero allocation.
import struct

from checks import is_micropython, raises
from pcap import udp_payloads

from voip.rtp import HEADER_SIZE, RtpHeader, RtpPacket, RtpSender, pack_header, parse
from voip.seqnum import seq_diff, ts_diff

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rpartition("/")[0].rpartition("/")[0] + "/data/rtp/"


def load(name):
    with open(DATA + name, "rb") as f:
        return f.read()


def check_fields(packet, pt, marker, seq, ts, csrc, payload_length):
    assert packet.version == 2
    assert packet.payload_type == pt, packet.payload_type
    assert packet.marker == marker
    assert packet.sequence == seq, packet.sequence
    assert packet.timestamp == ts, packet.timestamp
    assert packet.csrc == csrc, packet.csrc
    assert len(packet.payload) == payload_length, len(packet.payload)


def test_plain_pcmu_packet_round_trips():
    data = load("rtp.bin")
    packet = parse(data)
    check_fields(packet, 0, 0, 15743, 3937035252, [], 160)
    assert packet.extension_profile is None and packet.extension is None
    assert packet.padding_length == 0
    assert packet.payload == data[12:]
    assert packet.serialize() == data
    assert repr(packet) == "RtpPacket(seq=15743, ts=3937035252, marker=0, pt=0, 160 bytes)"


def test_telephone_event_packet_round_trips():
    data = load("rtp_dtmf.bin")
    packet = parse(data)
    check_fields(packet, 101, 1, 24152, 4021352124, [], 4)
    assert packet.payload == b"\x01\x8a\x03\xc0"
    assert packet.serialize() == data


def test_csrc_list_round_trips():
    data = load("rtp_with_csrc.bin")
    packet = parse(data)
    check_fields(packet, 0, 0, 16082, 144, [2882400001, 3735928559], 160)
    assert packet.serialize() == data
    header = RtpHeader()
    assert header.unpack_from(data) == 20
    assert header.csrc_count == 2
    assert header.csrc(data, 1) == 3735928559
    with raises(IndexError):
        header.csrc(data, 2)


def test_header_extension_is_skipped_and_kept():
    data = load("rtp_with_sdes_mid.bin")
    packet = parse(data)
    check_fields(packet, 111, 1, 14156, 1327210925, [], 54)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == b"\x900\x00\x00"
    assert packet.serialize() == data
    header = RtpHeader()
    assert header.unpack_from(data) == 20
    assert (header.extension, header.extension_offset, header.extension_length) == (1, 16, 4)


def test_padding_is_excluded_from_the_payload():
    data = load("rtp_only_padding.bin")
    packet = parse(data)
    check_fields(packet, 120, 0, 27759, 4044047131, [], 0)
    assert packet.padding_length == 224 == len(data) - 12
    again = packet.serialize()
    # Padding content is arbitrary (RFC 3550 §5.1); ours is zeros ending in the count.
    assert again[:12] == data[:12] and len(again) == len(data)
    assert again[-1] == 224 and again[12:-1] == bytes(223)
    assert parse(again).padding_length == 224


def test_padding_after_a_header_extension():
    data = load("rtp_only_padding_with_header_extensions.bin")
    header = RtpHeader()
    start = header.unpack_from(data)
    assert header.extension == 1 and header.extension_profile == 0xBEDE
    assert start == 12 + 4 + header.extension_length
    assert header.padding and header.padding_length == data[-1]
    assert start + header.payload_length + header.padding_length == len(data)
    assert parse(data).serialize()[:start] == data[:start]


def test_truncated_and_malformed_packets_name_the_problem():
    data = load("rtp.bin")
    with raises(ValueError, match="RTP packet truncated: 8 bytes < 12"):
        parse(data[:8])
    with raises(ValueError, match="11 bytes < 12"):
        parse(data[:11])
    with raises(ValueError, match="RTP version 1 is not 2"):
        parse(b"\x40" + data[1:])
    with raises(ValueError, match="RTP version 3 is not 2"):
        parse(b"\xc0" + data[1:])
    with raises(ValueError, match="RTP packet has truncated CSRC list"):
        parse(b"\x8f" + data[1:40])  # 15 CSRCs need 72 bytes
    with raises(ValueError, match="truncated header extension"):
        parse(b"\x90" + data[1:14])
    with raises(ValueError, match="truncated header extension"):
        parse(b"\x90" + data[1:12] + b"\xbe\xde\x00\x05" + bytes(8))
    with raises(ValueError, match="RTP padding length 0 is invalid"):
        parse(b"\xa0" + data[1:12] + b"\x00")
    with raises(ValueError, match="RTP padding larger than payload: 2 > 1 bytes"):
        parse(b"\xa0" + data[1:12] + b"\x02")
    with raises(ValueError, match="exceeds"):
        RtpHeader().unpack_from(bytearray(20), 21)


def test_every_truncation_and_bit_flip_is_a_value_error_or_a_packet():
    header = RtpHeader()
    for name in ("rtp.bin", "rtp_with_csrc.bin", "rtp_with_sdes_mid.bin", "rtp_dtmf.bin"):
        data = bytearray(load(name))
        for n in range(len(data)):
            try:
                header.unpack_from(data, n)
            except ValueError:
                pass
            else:
                end = header.payload_offset + header.payload_length + header.padding_length
                assert end == n
        for bit in range(8):
            flipped = bytearray(data)
            flipped[0] ^= 1 << bit
            try:
                start = header.unpack_from(flipped)
            except ValueError:
                continue
            assert 12 <= start <= len(flipped)
            assert start + header.payload_length <= len(flipped)


def test_unpack_from_reads_only_the_received_length():
    data = load("rtp_with_csrc.bin")
    buf = bytearray(1500)  # a receive buffer bigger than the datagram
    buf[: len(data)] = data
    header = RtpHeader()
    assert header.unpack_from(buf, len(data)) == 20
    assert header.payload_length == 160
    assert header.sequence == 16082 and header.timestamp == 144
    ssrc = struct.unpack(">I", data[8:12])[0]
    assert (header.ssrc_hi << 16 | header.ssrc_lo) == header.ssrc == ssrc
    # The same object, reused for a different packet, holds only the new packet's fields.
    dtmf = load("rtp_dtmf.bin")
    buf[: len(dtmf)] = dtmf
    assert header.unpack_from(buf, len(dtmf)) == 12
    assert (header.csrc_count, header.marker, header.payload_type) == (0, 1, 101)
    assert header.timestamp == 4021352124 and header.payload_length == 4


def test_pack_header_writes_what_parse_reads():
    data = load("rtp.bin")
    packet = parse(data)
    buf = bytearray(172)
    n = pack_header(buf, 0, 0, packet.sequence, packet.timestamp, packet.ssrc)
    assert n == HEADER_SIZE == 12
    assert buf[:12] == data[:12]
    assert pack_header(buf, 1, 101, 65535, 0xFFFFFFFF, 1, offset=4) == 12
    again = parse(bytes(buf[4:16]))
    assert (again.marker, again.payload_type, again.sequence) == (1, 101, 65535)
    assert (again.timestamp, again.ssrc) == (0xFFFFFFFF, 1)


def test_built_packet_with_csrcs_and_extension_round_trips():
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0x80000000,
        payload=b"abc",
        csrc=[1, 0xFFFFFFFF],
        extension_profile=0x1000,
        extension=b"\x01\x02\x03\x04\x05\x06\x07\x08",
        padding_length=5,
    )
    data = packet.serialize()
    assert len(data) == 12 + 8 + 4 + 8 + 3 + 5
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    again = parse(data)
    check_fields(again, 96, 1, 65535, 0xFFFFFFFF, [1, 0xFFFFFFFF], 3)
    assert (again.ssrc, again.payload, again.padding_length) == (0x80000000, b"abc", 5)
    assert (again.extension_profile, again.extension) == (0x1000, packet.extension)
    assert again.serialize() == data
    with raises(ValueError, match="multiple of 4"):
        RtpPacket(extension_profile=1, extension=b"abc").serialize()
    with raises(ValueError, match="16 CSRCs"):
        RtpPacket(csrc=list(range(16))).serialize()


def test_sender_starts_random_and_advances_by_one_and_by_samples():
    a, b = RtpSender(0), RtpSender(0)
    # Random SSRC, sequence and timestamp: three 16-to-32-bit values all equal by chance is
    # a 2**-80 event.
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    assert 0 <= a.ssrc <= 0xFFFFFFFF and 0 <= a.timestamp <= 0xFFFFFFFF
    sender = RtpSender(8, ssrc=0xDEADBEEF, sequence=65534, timestamp=0xFFFFFF00)
    buf = bytearray(12)
    seen = []
    for _ in range(4):
        assert sender.pack(buf, 160) == 12
        packet = parse(bytes(buf))
        assert packet.ssrc == 0xDEADBEEF and packet.payload_type == 8
        seen.append((packet.sequence, packet.timestamp, packet.marker))
    assert seen == [
        (65534, 0xFFFFFF00, 1),  # first packet of the stream starts a talkspurt
        (65535, 0xFFFFFFA0, 0),
        (0, 0x40, 0),  # both wrap: 0xFFFFFFA0 + 160 = 2**32 + 64
        (1, 0xE0, 0),
    ]
    for (s0, t0, _), (s1, t1, _) in zip(seen, seen[1:]):
        assert seq_diff(s1, s0) == 1 and ts_diff(t1, t0) == 160
    assert sender.packet_count == 4 and sender.octet_count == 640


def test_sender_marks_the_talkspurt_after_silence():
    sender = RtpSender(0, ssrc=1, sequence=100, timestamp=1000)
    buf = bytearray(12)
    sender.pack(buf, 160)
    sender.pack(buf, 160)
    assert parse(bytes(buf)).marker == 0
    sender.skip(160)  # one silent packet time: not sent, the clock still runs
    sender.skip(160)
    sender.pack(buf, 160)
    packet = parse(bytes(buf))
    assert (packet.marker, packet.sequence, packet.timestamp) == (1, 102, 1000 + 4 * 160)
    sender.talkspurt()
    sender.pack(buf, 160)
    assert parse(bytes(buf)).marker == 1


def test_event_packets_are_stamped_in_the_past_across_wraparound():
    sender = RtpSender(0, ssrc=7, sequence=9, timestamp=100)
    buf = bytearray(12)
    assert sender.pack_event(buf, 101, 1, 320, 4) == 12
    packet = parse(bytes(buf))
    assert (packet.payload_type, packet.marker, packet.sequence) == (101, 1, 9)
    assert packet.timestamp == (100 - 320) & 0xFFFFFFFF
    assert sender.timestamp == 100 and sender.sequence == 10  # the clock does not move
    assert sender.octet_count == 4


def test_sipp_pcma_capture_is_one_continuous_stream():
    first = before = None
    count = 0
    for _, _, _, payload in udp_payloads(DATA + "g711a.pcap"):
        packet = parse(payload)
        count += 1
        assert packet.payload_type == 8 and packet.ssrc == 0xDEE0EE8F
        assert len(packet.payload) == 240
        assert packet.serialize() == payload
        if first is None:
            first = packet
        else:
            assert packet.marker == 0
            assert seq_diff(packet.sequence, before.sequence) == 1
            assert ts_diff(packet.timestamp, before.timestamp) == 240
        before = packet
    assert count == 236
    assert (first.marker, first.sequence, first.timestamp) == (1, 59133, 240)
    assert seq_diff(before.sequence, first.sequence) == 235


def _bytes_allocated(fn, rounds):
    import gc

    fn()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(rounds):
        fn()
    return gc.mem_alloc() - before


def test_hot_paths_allocate_nothing_under_micropython():
    if not is_micropython():
        return  # CPython boxes every int; the budget is the device's
    buf = bytearray(172)
    header = RtpHeader()
    sender = RtpSender(0, ssrc=0xFEDCBA98, sequence=65000, timestamp=0xFFFF0000)
    rx = bytearray(1500)
    data = load("rtp_with_sdes_mid.bin")  # CSRC-free, with an extension: the longest path
    rx[: len(data)] = data
    length = len(data)

    def send():
        sender.pack(buf, 160)

    def send_event():
        sender.pack_event(buf, 101, 0, 480, 4)

    def pack_plain():
        pack_header(buf, 1, 0, 65535, 0x3FFFFFFF, 0x3FFFFFFF)

    def receive():
        header.unpack_from(rx, length)

    for fn in (send, send_event, pack_plain, receive):
        assert _bytes_allocated(fn, 500) == 0, fn
