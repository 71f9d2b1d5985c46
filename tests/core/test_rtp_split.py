# voip.rtp_split under CPython and the MicroPython unix port: what one MicroPython readinto
# of a UDP socket returns (modelled by tests/lib/udp_stream_model.py, which
# tests/device/test_media_burst.py checks against the unix port's real socket) is split back
# into its packets, the cut tail of the last is reported and concealed, and the peer's packet
# size is learned whether it is shorter or longer than SDP said. RtpHeader.unpack_from at an
# offset too.
import struct

from checks import raises, skip
from udp_stream_model import stream_read

from voip import rtp_split
from voip.rtp import RtpHeader, RtpPacket
from voip.rtp_split import RtpSplitter, extend_tail, find_header_python

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "2M"

SSRC = 0x1234ABCD
AUDIO_PT = 0
EVENT_PT = 101


def audio(seq, ts, samples, fill=None, marker=0, ssrc=SSRC):
    payload = bytes((fill if fill is not None else (seq + i) & 0x7F) for i in range(samples))
    return RtpPacket(AUDIO_PT, marker, seq, ts, ssrc, payload).serialize()


def event(seq, ts, key=5, end=0, duration=160, ssrc=SSRC):
    payload = struct.pack(">BBH", key, (0x80 if end else 0) | 10, duration)
    return RtpPacket(EVENT_PT, 0, seq, ts, ssrc, payload).serialize()


def splitter(ptime=20):
    s = RtpSplitter()
    s.set_stream(AUDIO_PT, EVENT_PT, ptime)
    return s


class Receiver:
    """Reads a queue of datagrams the way phone.media does and keeps what it found."""

    def __init__(self, split):
        self.split = split
        self.buf = bytearray(1024)
        self.header = RtpHeader()
        self.audio = []  # (seq, payload bytes as played, bytes concealed)
        self.events = []  # (seq, payload)
        self.malformed = 0
        self.reads = 0

    def drain(self, queue):
        while queue:
            data = stream_read(queue, self.split.read_size)
            self.reads += 1
            n = len(data)
            self.buf[:n] = data
            count = self.split.split(self.buf, n)
            for i in range(count):
                self.packet(self.split.starts[i], self.split.ends[i], i == count - 1)

    def packet(self, start, end, last):
        h = self.header
        try:
            h.unpack_from(self.buf, end - start, start)
        except ValueError:
            self.malformed += 1
            return
        at, length = h.payload_offset, h.payload_length
        if h.payload_type == AUDIO_PT:
            missing = self.split.audio(h, start, last)
            if missing:
                extend_tail(self.buf, at + length, length, missing)
            self.audio.append((h.sequence, bytes(self.buf[at : at + length + missing]), missing))
        elif h.payload_type == EVENT_PT:
            self.events.append((h.sequence, bytes(self.buf[at : at + length])))


def test_equal_size_packets_are_read_one_per_read():
    queue = [audio(seq, seq * 160, 160) for seq in range(8)]
    sent = list(queue)
    rx = Receiver(splitter())
    rx.drain(queue)
    assert rx.reads == 8 and rx.split.split_packets == 0 and rx.split.cut_packets == 0
    assert [bytes(p) for _, p, _ in rx.audio] == [d[12:] for d in sent]


def test_an_event_glued_to_audio_is_split_and_the_cut_tail_concealed():
    a1, a2 = audio(1, 160, 160), audio(3, 480, 160)
    e = event(2, 320)
    queue = [e, a1, a2]
    # what the unix port's readinto gave (see the device test): 16 + 156 bytes
    assert stream_read(list(queue), 172) == e + a1[:156]
    rx = Receiver(splitter())
    rx.drain(queue)
    assert rx.events == [(2, e[12:])]
    assert [seq for seq, _, _ in rx.audio] == [1, 3]
    seq, played, missing = rx.audio[0]
    assert missing == 16 and len(played) == 160
    assert played[:144] == a1[12:156]  # what arrived is kept as it was
    assert played[144:] == a1[12 + 128 : 12 + 144]  # the cut 2 ms: its last 16 bytes again
    assert rx.audio[1] == (3, a2[12:], 0)
    assert rx.split.split_packets == 1 and rx.split.cut_packets == 1


def test_events_between_audio_in_a_burst_all_arrive():
    queue = [audio(1, 160, 160), event(2, 320), event(3, 320), event(4, 320, end=1),
             event(4, 320, end=1), event(4, 320, end=1), audio(5, 800, 160),
             audio(6, 960, 160)]
    rx = Receiver(splitter())
    rx.drain(queue)
    assert [seq for seq, _ in rx.events] == [2, 3, 4, 4, 4]  # SIPp repeats end seqs
    assert [seq for seq, _, _ in rx.audio] == [1, 5, 6]
    # five 16-byte events ahead of packet 5 in one 172-byte read: it lost 80 bytes
    assert [missing for _, _, missing in rx.audio] == [0, 80, 0]
    assert rx.malformed == 0


def test_a_long_mixed_burst_loses_no_packet():
    # 400 packets: audio, with runs of events and single comfort-noise packets among them,
    # queued in bursts of 1 to 7. Every packet must come out; audio only ever loses the
    # tail of the last packet of a read, and by exactly what the read cut.
    seed = 12345
    queue, kinds = [], []
    seq, ts = 100, 0
    for _ in range(400):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        r = seed >> 16
        if r % 9 == 0:
            queue.append(event(seq, ts, key=r % 16, duration=160 * (1 + r % 3)))
            kinds.append("event")
        elif r % 23 == 0:
            queue.append(RtpPacket(13, 0, seq, ts, SSRC, bytes([40])).serialize())
            kinds.append("cn")
        else:
            queue.append(audio(seq, ts, 160))
            kinds.append("audio")
        seq += 1
        ts += 160
    sent = list(queue)
    rx = Receiver(splitter())
    bursts = 0
    while queue:
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        k = 1 + (seed >> 16) % 7
        rx.drain(queue[:k])
        del queue[:k]
        bursts += 1
    audio_sent = [d for d, kind in zip(sent, kinds) if kind == "audio"]
    events_sent = [d for d, kind in zip(sent, kinds) if kind == "event"]
    assert len(rx.audio) == len(audio_sent) and len(rx.events) == len(events_sent)
    assert [p for _, p in rx.events] == [d[12:] for d in events_sent]
    for (seq, played, missing), d in zip(rx.audio, audio_sent):
        kept = 160 - missing
        assert played[:kept] == d[12 : 12 + kept], seq
    assert rx.malformed == 0
    assert rx.split.split_packets > 20 and 0 < rx.split.cut_packets < bursts


def test_a_peer_with_a_shorter_ptime_is_learned_from_a_whole_packet():
    # SDP said nothing (20 ms) but the peer sends 10 ms packets, two at a time
    queue = [audio(seq, seq * 80, 80) for seq in range(10)]
    sent = list(queue)
    rx = Receiver(splitter(20))
    rx.drain(queue[:2])  # [92][80 of 92]: the first is whole, followed by another
    assert rx.split.payload_bytes == 80 and rx.split.read_size == 92
    assert rx.audio[1][2] == 12  # the second lost 12 bytes, concealed
    rx.drain(queue[2:])
    assert [p for _, p, _ in rx.audio[2:]] == [d[12:] for d in sent[2:]]
    assert rx.split.cut_packets == 1


def test_a_peer_with_a_longer_ptime_is_learned_from_its_timestamps():
    # SDP said 20 ms, the peer sends 30 ms: 252-byte packets read 172 at a time
    queue = [audio(seq, seq * 240, 240) for seq in range(8)]
    sent = list(queue)
    rx = Receiver(splitter(20))
    rx.drain(queue)
    assert rx.split.payload_bytes == 240 and rx.split.read_size == 252
    # packets 0 and 1 lost their last 10 ms unnoticed; 2 (the second delta of 240) had it
    # concealed; from 3 on every packet is read whole
    assert [missing for _, _, missing in rx.audio] == [0, 0, 80, 0, 0, 0, 0, 0]
    assert [len(p) for _, p, _ in rx.audio] == [160, 160, 240, 240, 240, 240, 240, 240]
    assert [p for _, p, _ in rx.audio[3:]] == [d[12:] for d in sent[3:]]


def test_announced_ptimes_of_10_and_30_are_read_whole_from_the_start():
    for ptime in (10, 30):
        size = 8 * ptime
        queue = [audio(seq, seq * size, size) for seq in range(6)]
        sent = list(queue)
        rx = Receiver(splitter(ptime))
        assert rx.split.read_size == 12 + size
        rx.drain(queue)
        assert rx.reads == 6 and rx.split.cut_packets == 0 and rx.split.resized == 0
        assert [p for _, p, _ in rx.audio] == [d[12:] for d in sent]


def test_a_silence_gap_is_not_taken_for_a_longer_ptime():
    rx = Receiver(splitter(20))
    # a talkspurt after 20 ms of silence (marked, as RFC 3551 asks), then one unmarked gap
    queue = [audio(1, 160, 160), audio(2, 320, 160), audio(3, 800, 160, marker=1),
             audio(4, 960, 160), audio(5, 1280, 160), audio(6, 1440, 160)]
    rx.drain(queue)
    assert rx.split.payload_bytes == 160 and rx.split.resized == 0
    assert all(missing == 0 for _, _, missing in rx.audio)


def test_a_header_lookalike_in_the_payload_is_no_boundary():
    split = splitter(20)
    other = bytearray(audio(7, 1120, 160))
    # another stream's header inside the payload, then ours with a far-off sequence number
    other[12 + 40 : 12 + 52] = audio(8, 0, 0, ssrc=0x55555555)
    far = bytearray(audio(5000, 0, 0))
    other[12 + 100 : 12 + 112] = far
    buf = bytearray(1024)
    buf[:172] = other
    assert split.split(buf, 172) == 1
    # the same with a sequence number that follows: that is a packet
    other[12 + 100 : 12 + 112] = audio(8, 1280, 0)
    buf[:172] = other
    assert split.split(buf, 172) == 2 and split.ends[0] == 112


def test_garbage_and_fragments_are_one_packet_each_read():
    split = splitter(20)
    buf = bytearray(1024)
    for n in (1, 11, 12, 23, 24, 172):
        for i in range(n):
            buf[i] = (i * 37) & 0xFF
        assert split.split(buf, n) == 1 and split.ends[0] == n
    with raises(ValueError):
        split.split(bytearray(10), 11)


def test_extend_tail_repeats_the_last_bytes():
    buf = bytearray(range(40)) + bytearray(40)
    extend_tail(buf, 40, 40, 16)
    assert buf[40:56] == bytearray(range(24, 40))
    buf = bytearray(range(1, 11)) + bytearray(30)
    extend_tail(buf, 10, 10, 25)  # more missing than there is: the 10 bytes, again and again
    assert buf[10:35] == bytearray(list(range(1, 11)) * 2 + list(range(1, 6)))
    with raises(ValueError):
        extend_tail(buf, 38, 10, 5)  # past the buffer
    with raises(ValueError):
        extend_tail(buf, 10, 0, 5)


def test_the_viper_scan_agrees_with_the_python_one():
    if not rtp_split.VIPER:
        skip("no viper kernel on this runtime: the Python scan is the only one")
    seed = 99
    buf = bytearray(300)
    outcomes = set()
    for trial in range(200):
        for i in range(300):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            if trial % 2:  # random bytes with headers planted here and there
                buf[i] = (seed >> 16) & 0xFF
            else:  # near misses everywhere: a pattern one byte off the SSRC
                buf[i] = (0x80, 0x12, 0x34, 0x56)[i % 4]
        buf[8:12] = b"\x12\x34\x56\x80"
        if trial % 2:
            at = 20 + trial
            buf[at] = 0x80 | (trial & 0x3F)
            buf[at + 8 : at + 12] = buf[8:12]
        start = trial % 40
        for at in (0, 1):  # the SSRC to look for: a match, or near misses only
            found = rtp_split._find_header(buf, start, 289, at)
            assert found == find_header_python(buf, start, 289, at), (trial, at)
            outcomes.add(found >= 0)
    assert outcomes == {True, False}


def test_unpack_from_reads_a_packet_at_an_offset():
    buf = bytearray(400)
    e = event(9, 1000, key=11, end=1)
    a = RtpPacket(0, 1, 10, 1160, SSRC, bytes(range(160)), csrc=[7, 8]).serialize()
    buf[:16] = e
    buf[16 : 16 + len(a)] = a
    h = RtpHeader()
    assert h.unpack_from(buf, 16) == 12
    assert (h.payload_type, h.sequence, h.payload_offset, h.payload_length) == (101, 9, 12, 4)
    assert h.unpack_from(buf, len(a), 16) == 16 + 20
    assert (h.payload_type, h.sequence, h.marker, h.timestamp) == (0, 10, 1, 1160)
    assert h.payload_length == 160 and h.csrc(buf, 1) == 8 and h.csrc_offset == 28
    assert buf[h.payload_offset : h.payload_offset + 3] == b"\x00\x01\x02"
    with raises(ValueError, match="exceeds"):
        h.unpack_from(buf, 390, 16)
    with raises(ValueError, match="outside"):
        h.unpack_from(buf, 12, 401)
    with raises(ValueError, match="truncated"):
        h.unpack_from(buf, 11, 16)
