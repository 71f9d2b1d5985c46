# voip.dtmf under CPython and the MicroPython unix port: SIPp's RFC 4733 captures decode to
# exactly their digits; the sender's packets follow RFC 4733 field by field; sender and
# receiver agree across timestamp wraparound, lost and reordered packets.
from checks import is_micropython, raises
from pcap import udp_payloads

from voip.dtmf import (
    FLASH,
    DtmfReceiver,
    DtmfSender,
    event_code,
    event_key,
    pack_event,
    unpack_event,
)
from voip.rtp import RtpHeader, RtpPacket, RtpSender, parse
from voip.seqnum import seq_diff

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rpartition("/")[0].rpartition("/")[0] + "/data/rtp/"
CAPTURES = (
    ("0", "dtmf_2833_0.pcap"),
    ("1", "dtmf_2833_1.pcap"),
    ("2", "dtmf_2833_2.pcap"),
    ("3", "dtmf_2833_3.pcap"),
    ("4", "dtmf_2833_4.pcap"),
    ("5", "dtmf_2833_5.pcap"),
    ("6", "dtmf_2833_6.pcap"),
    ("7", "dtmf_2833_7.pcap"),
    ("8", "dtmf_2833_8.pcap"),
    ("9", "dtmf_2833_9.pcap"),
    ("*", "dtmf_2833_star.pcap"),
    ("#", "dtmf_2833_pound.pcap"),
)


def capture(name):
    return [parse(data) for _, _, _, data in udp_payloads(DATA + name)]


def feed(receiver, packets):
    keys = []
    for packet in packets:
        key = receiver.receive(packet.marker, packet.timestamp, packet.payload)
        if key is not None:
            keys.append(key)
    return keys


def test_each_sipp_capture_is_one_key_press():
    header = RtpHeader()
    for key, name in CAPTURES:
        receiver = DtmfReceiver()
        keys = []
        for _, _, _, data in udp_payloads(DATA + name):
            start = header.unpack_from(data)
            assert header.payload_type == 101 and header.payload_length == 4
            got = receiver.receive(
                header.marker, header.timestamp, data, start, header.payload_length
            )
            if got is not None:
                keys.append(got)
        assert keys == [key], (name, keys)
        assert receiver.ended and receiver.duration == 2240
        assert (receiver.presses, receiver.repeats, receiver.stale) == (1, 9, 0)


def test_sipp_digit_1_fields_as_decoded():
    packets = capture("dtmf_2833_1.pcap")
    assert len(packets) == 10
    assert [p.marker for p in packets] == [1] + [0] * 9
    assert {p.timestamp for p in packets} == {13280}
    assert [p.sequence for p in packets] == [7984, 7985, 7986, 7987, 7988, 7989, 7990] + [7991] * 3
    events = [unpack_event(p.payload) for p in packets]
    assert [e[3] for e in events] == [0, 320, 640, 960, 1280, 1600, 1920, 2240, 2240, 2240]
    assert {(e[0], e[2]) for e in events} == {(1, 10)}
    assert [e[1] for e in events] == [0] * 7 + [1] * 3
    assert packets[-1].payload == b"\x01\x8a\x08\xc0"


def dialled(order, ts0, seq0=40000, drop=()):
    """The SIPp captures re-stamped as one stream, one press every 4000 samples (500 ms),
    keeping each packet's payload, marker and relative sequence; `drop` removes packets by
    (press, packet index)."""
    out = []
    seq = seq0
    for press, (_, name) in enumerate(order):
        packets = capture(name)
        first_seq = packets[0].sequence
        for i, p in enumerate(packets):
            if (press, i) in drop:
                continue
            out.append(
                RtpPacket(
                    payload_type=101,
                    marker=p.marker,
                    sequence=(seq + seq_diff(p.sequence, first_seq)) & 0xFFFF,
                    timestamp=(ts0 + 4000 * press) & 0xFFFFFFFF,
                    ssrc=p.ssrc,
                    payload=p.payload,
                )
            )
        seq += 8
    return out


def test_all_sipp_presses_in_one_stream_across_timestamp_wraparound():
    packets = dialled(CAPTURES, ts0=0xFFFFFFFF - 4000 * 5)  # wraps before the 7th press
    assert packets[-1].timestamp < packets[0].timestamp
    receiver = DtmfReceiver()
    assert "".join(feed(receiver, packets)) == "0123456789*#"
    assert receiver.presses == 12 and receiver.stale == 0


def test_lost_start_and_end_packets_still_give_one_press_each():
    # Press 0 loses its M packet, press 1 its first three, press 2 all three end copies,
    # press 3 everything but one end copy, press 4 (the same key as 3) its M packet.
    drop = {(0, 0), (1, 0), (1, 1), (1, 2), (2, 7), (2, 8), (2, 9)}
    drop |= {(3, i) for i in range(9)} | {(4, 0)}
    order = CAPTURES[:4] + (CAPTURES[3],) + CAPTURES[4:]
    receiver = DtmfReceiver()
    keys = feed(receiver, [parse(p.serialize()) for p in dialled(order, 1000, drop=drop)])
    assert "".join(keys) == "01233456789*#"


def test_stragglers_of_an_earlier_press_are_not_a_new_press():
    packets = dialled(CAPTURES[:3], ts0=0xFFFFF000)
    # The last end copy of press "0" arrives after press "1" has started, and one of "1"'s
    # after "2"'s: both are older than the current press.
    late0 = packets.pop(9)
    packets.insert(12, late0)
    late1 = packets.pop(18)
    packets.insert(25, late1)
    receiver = DtmfReceiver()
    assert feed(receiver, packets) == ["0", "1", "2"]
    assert receiver.stale == 2


def test_sipp_session_order_and_a_clock_jump_back():
    # The captures come from one SIPp session (one SSRC): 1..9, *, # in timestamp order, and
    # 0 recorded later with a timestamp 9.4 s *behind* #. Replayed in that order, 0 is too
    # far back to be a straggler of #: the sender's clock jumped, it is a new press.
    order = [c for c in CAPTURES if c[0] != "0"] + [CAPTURES[0]]
    receiver = DtmfReceiver()
    packets = []
    for _, name in order:
        packets += capture(name)
    assert "".join(feed(receiver, packets)) == "123456789*#0"
    # Out of session order, * (0.86 s behind #, older sequence numbers) is a straggler.
    receiver = DtmfReceiver()
    packets = capture("dtmf_2833_pound.pcap") + capture("dtmf_2833_star.pcap")
    assert feed(receiver, packets) == ["#"] and receiver.stale == 10
    receiver = DtmfReceiver(straggler_samples=1000)
    assert feed(receiver, packets) == ["#", "*"]


def test_a_long_press_continues_in_a_new_segment():
    receiver = DtmfReceiver()
    buf = bytearray(4)
    ts = 0xFFFF0000
    pack_event(buf, 0, 5, 0, 10, 160)
    assert receiver.receive(1, ts, buf) == "5"
    pack_event(buf, 0, 5, 0, 10, 0xFFFF)
    assert receiver.receive(0, ts, buf) is None
    # RFC 4733 §2.5.1.3: a new segment, timestamp moved on by the previous duration, no M.
    pack_event(buf, 0, 5, 0, 10, 160)
    assert receiver.receive(0, ts + 0xFFFF, buf) is None
    pack_event(buf, 0, 5, 1, 10, 800)
    assert receiver.receive(0, ts + 0xFFFF, buf) is None
    assert receiver.ended and receiver.presses == 1
    # The same key pressed again: a new timestamp and the M bit.
    pack_event(buf, 0, 5, 0, 10, 160)
    assert receiver.receive(1, ts + 0xFFFF + 2000, buf) == "5"
    assert receiver.presses == 2


def test_receiver_drops_malformed_payloads():
    receiver = DtmfReceiver()
    assert receiver.receive(1, 0, b"\x01\x8a\x03") is None
    assert receiver.receive(1, 0, b"\x01\x8a\x03\xc0", 2) is None
    assert receiver.receive(1, 0, b"\x01\x8a\x03\xc0", 0, 8) is None
    assert receiver.malformed == 3 and receiver.presses == 0
    assert receiver.receive(1, 0, b"\x01\x8a\x03\xc0\x00") == "1"  # trailing bytes ignored
    # A non-DTMF event (RFC 4734 tones) is tracked but not reported as a key.
    assert receiver.receive(1, 800, b"\x20\x0a\x00\xa0") is None
    assert receiver.presses == 1 and receiver.key is None
    with raises(ValueError, match="telephone-event payload truncated: 3 bytes < 4"):
        unpack_event(b"\x01\x8a\x03")


def test_event_codes():
    assert [event_code(k) for k in "0123456789*#ABCD"] == list(range(16))
    assert event_code("a") == 12 and event_code("flash") == FLASH == 16
    assert [event_key(c) for c in range(18)] == list("0123456789*#ABCD") + ["flash", None]
    for bad in ("E", "", "11", "x"):
        with raises(ValueError, match="no DTMF key"):
            event_code(bad)


def send_all(sender, rtp, ticks):
    """Tick the sender `ticks` times; [(tick, RtpPacket)] for the event packets."""
    buf = bytearray(40)
    out = []
    for t in range(ticks):
        n = sender.tick(rtp, buf, 4)
        if n:
            assert n == 16
            out.append((t, parse(bytes(buf[4 : 4 + n]))))
        else:
            rtp.pack(buf, 160)  # the audio packet of this tick
    return out


def test_sender_packets_follow_rfc_4733():
    rtp = RtpSender(0, ssrc=0xABCD, sequence=65533, timestamp=0xFFFFFE00)
    sender = DtmfSender(volume=7)
    sender.send("1", duration_ms=100)
    assert sender.busy
    packets = send_all(sender, rtp, 12)
    assert [t for t, _ in packets] == [0, 1, 2, 3, 4, 5, 6]
    fields = [unpack_event(p.payload) for _, p in packets]
    assert [f[3] for f in fields] == [160, 320, 480, 640, 800, 800, 800]
    assert [f[1] for f in fields] == [0, 0, 0, 0, 1, 1, 1]  # the end packet three times
    assert {(f[0], f[2]) for f in fields} == {(1, 7)}
    ps = [p for _, p in packets]
    assert [p.marker for p in ps] == [1, 0, 0, 0, 0, 0, 0]
    assert {p.timestamp for p in ps} == {0xFFFFFE00}  # the start, for every packet
    assert {(p.payload_type, p.ssrc) for p in ps} == {(101, 0xABCD)}
    assert [p.sequence for p in ps] == [65533, 65534, 65535, 0, 1, 2, 3]  # each copy new
    # The audio clock ran on through the event: 12 ticks, 7 of them telephone-events.
    assert rtp.timestamp == (0xFFFFFE00 + 12 * 160) & 0xFFFFFFFF
    assert rtp.sequence == 12 - 3
    assert not sender.busy


def test_sender_leaves_a_gap_between_presses_then_receiver_gets_them_all():
    rtp = RtpSender(0, timestamp=0xFFFFF000)  # wraps during the dialling
    sender = DtmfSender(gap_ms=60)
    sender.send("159#*AD")
    sender.send("flash", duration_ms=200)
    packets = send_all(sender, rtp, 120)
    assert not sender.busy
    starts = [t for t, p in packets if p.marker]
    assert len(starts) == 8
    for a, b in zip(starts, starts[1:]):
        assert b - a >= 7 + 3  # 7 event packets, then 3 ticks (60 ms) of audio
    receiver = DtmfReceiver()
    assert feed(receiver, [p for _, p in packets]) == list("159#*AD") + ["flash"]
    assert receiver.ended and receiver.duration == 1600


def test_sender_rejects_bad_requests():
    sender = DtmfSender(queue_size=4)
    with raises(ValueError, match="no DTMF key"):
        sender.send("12X")
    assert not sender.busy  # nothing half-queued
    with raises(ValueError, match="duration_ms"):
        sender.send("1", duration_ms=10)
    sender.send("1234")
    with raises(ValueError, match="queue full"):
        sender.send("5")
    with raises(ValueError, match="volume"):
        DtmfSender(volume=64)
    with raises(ValueError, match="segment"):
        DtmfSender(clock_rate=48000, samples_per_tick=960).send("1", duration_ms=2000)


def test_sender_and_receiver_allocate_nothing_per_packet_under_micropython():
    if not is_micropython():
        return
    import gc

    rtp = RtpSender(0, timestamp=0xFFFFC000)  # wraps after 10 presses of 10 ticks
    sender = DtmfSender(queue_size=32)
    buf = bytearray(16)
    receiver = DtmfReceiver()
    header = RtpHeader()
    sender.send("1234567890*#ABCD1234567890*#ABCD")

    def step():
        if sender.tick(rtp, buf):
            header.unpack_from(buf, 16)
            receiver.receive(header.marker, header.timestamp, buf, 12, 4)

    step()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(300):
        step()
    allocated = gc.mem_alloc() - before
    assert allocated == 0, allocated
    # 301 ticks: 30 presses of 7 packets and 3 quiet ticks, and the first packet of one more.
    assert (receiver.presses, receiver.repeats, receiver.stale) == (31, 30 * 6, 0)
