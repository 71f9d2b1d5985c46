# voip.jitter under CPython and the MicroPython unix port: a playout clock ticking every frame
# time against packets arriving early, late, twice, out of order or not at all.
from checks import is_micropython, raises, skip
from pcap import udp_payloads

from voip.jitter import (
    AUDIO,
    CONCEALED,
    DUPLICATE,
    LATE,
    REJECTED,
    SILENCE,
    SILENCE_PCMA,
    STORED,
    JitterBuffer,
    fade_table,
    g711_fade_table,
)
from voip.rtp import RtpHeader, pack_header

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rpartition("/")[0].rpartition("/")[0] + "/data/rtp/"


def frame(n, size=160):
    """Frame n of a test stream: every code the same, 1..100, never a silence code."""
    return bytes([n % 100 + 1]) * size


def stream(count, seq0=1000, ts0=50000, delays=None, size=160, step_ms=20, start_ms=5):
    """[(arrival_ms, seq, ts, payload)] for frames 0..count-1 sent every step_ms."""
    packets = []
    for n in range(count):
        delay = delays[n] if delays else 0
        arrival = start_ms + n * step_ms + delay
        seq = (seq0 + n) & 0xFFFF
        ts = (ts0 + n * size) & 0xFFFFFFFF
        packets.append((arrival, seq, ts, frame(n, size)))
    return packets


def play(jb, packets, ticks, tick_ms=20):
    """Tick the playout clock `ticks` times from 0 ms; before each tick put every packet that
    has arrived. Returns [(status, first code of the frame)]."""
    packets = sorted(packets, key=lambda p: p[0])  # stable: equal arrivals keep their order
    out = bytearray(jb.frame_bytes)
    results = []
    p = 0
    for t in range(ticks):
        now = t * tick_ms
        while p < len(packets) and packets[p][0] <= now:
            arrival, seq, ts, payload = packets[p]
            jb.put(seq, ts, payload, arrival)
            p += 1
        status = jb.get(out)
        results.append((status, out[0]))
    return results


def audio_frames(results):
    return [code - 1 for status, code in results if status == AUDIO]


def test_steady_stream_plays_in_order_one_tick_after_arrival():
    jb = JitterBuffer()
    results = play(jb, stream(50), 51)
    assert results[0] == (SILENCE, 0xFF)
    assert results[1:] == [(AUDIO, n % 100 + 1) for n in range(50)]
    assert (jb.played, jb.lost, jb.late, jb.duplicates, jb.underruns) == (50, 0, 0, 0, 0)
    assert jb.jitter == 0 and jb.target_ms == 20


def test_reordered_packets_play_in_order():
    delays = [20 if n % 2 == 0 else -20 for n in range(40)]  # 1,0,3,2,5,4...
    jb = JitterBuffer(min_ms=40)
    results = play(jb, stream(40, delays=delays), 42)  # frames 0..39 play at ticks 2..41
    assert audio_frames(results) == list(range(40))
    assert (jb.lost, jb.late, jb.concealed, jb.underruns) == (0, 0, 0, 0)
    assert jb.jitter > 0
    # Starting at 20 ms, frame 1 arrives first and plays at once: frame 0 comes too late.
    # The buffer then rebuffers once and plays everything else in order.
    jb = JitterBuffer()
    results = play(jb, stream(40, delays=delays), 43)
    assert audio_frames(results) == list(range(1, 40))
    assert (jb.late, jb.underruns) == (1, 1)
    assert jb.target_ms > 20


def test_duplicates_are_dropped_and_counted():
    packets = stream(30)
    doubled = packets + [(a + 3, seq, ts, p) for a, seq, ts, p in packets]
    jb = JitterBuffer()
    results = play(jb, doubled, 32)
    assert audio_frames(results) == list(range(30))
    assert jb.duplicates == 30 and jb.lost == 0
    jb = JitterBuffer()
    assert jb.put(5000, 0, frame(1), 0) == STORED
    assert jb.put(5000, 0, frame(1), 0) == DUPLICATE


def test_a_lost_packet_is_concealed_by_repeating_the_frame_before():
    packets = [p for p in stream(20) if p[1] != 1010]
    jb = JitterBuffer(min_ms=40)
    results = play(jb, packets, 22)  # stop before the end of the stream
    statuses = [s for s, _ in results]
    assert statuses.count(CONCEALED) == 1 and jb.lost == 1 and jb.concealed == 1
    at = statuses.index(CONCEALED)
    assert results[at] == (CONCEALED, frame(9)[0])  # frame 9 again, in frame 10's place
    assert audio_frames(results) == [n for n in range(20) if n != 10]
    assert jb.underruns == 0


def test_a_late_packet_is_dropped_after_its_time_has_passed():
    delays = [0] * 20
    delays[10] = 75  # arrives after frames 11..13: its turn is long gone
    jb = JitterBuffer(min_ms=40, max_ms=40)
    results = play(jb, stream(20, delays=delays), 24)
    assert jb.late == 1 and jb.lost == 1
    assert audio_frames(results) == [n for n in range(20) if n != 10]
    jb = JitterBuffer()
    out = bytearray(160)
    assert jb.put(1, 0, frame(0), 0) == STORED and jb.get(out) == AUDIO
    assert jb.put(2, 160, frame(1), 20) == STORED and jb.get(out) == AUDIO
    assert jb.put(1, 0, frame(0), 41) == LATE  # a retransmitted copy, after its turn
    assert jb.late == 1 and jb.duplicates == 0


def test_a_slightly_late_packet_is_waited_for_when_the_buffer_is_shallow():
    # Target three frames. Frame 3 is missing at its turn while frame 4 is there, and the
    # buffer holds only two frame times: it waits a tick (concealing) instead of losing 3.
    jb = JitterBuffer(min_ms=60, max_ms=60)
    out = bytearray(160)
    for n in range(3):
        jb.put(n, 160 * n, frame(n), 20 * n)
    assert jb.get(out) == AUDIO and out[0] == frame(0)[0]
    assert jb.get(out) == AUDIO and out[0] == frame(1)[0]
    jb.put(4, 160 * 4, frame(4), 80)
    assert jb.get(out) == AUDIO and out[0] == frame(2)[0]
    assert jb.get(out) == CONCEALED and out[0] == frame(2)[0]
    assert jb.put(3, 160 * 3, frame(3), 101) == STORED
    assert jb.get(out) == AUDIO and out[0] == frame(3)[0]
    assert jb.get(out) == AUDIO and out[0] == frame(4)[0]
    assert (jb.lost, jb.late, jb.concealed, jb.underruns) == (0, 0, 1, 0)


def test_sequence_and_timestamp_wraparound():
    jb = JitterBuffer()
    packets = stream(40, seq0=65520, ts0=0xFFFFFFFF - 160 * 20 + 1)
    results = play(jb, packets, 41)
    assert audio_frames(results) == list(range(40))
    assert (jb.lost, jb.late, jb.rejected, jb.resyncs) == (0, 0, 0, 0)


def test_underrun_repeats_then_fades_then_goes_silent():
    table = fade_table(ulaw_decode, ulaw_encode, 50)
    jb = JitterBuffer(fade=table, fade_frames=3)
    loud = bytes([0x80]) * 160  # mu-law 0x80: +32124, full scale
    jb.put(1, 0, loud, 0)
    out = bytearray(160)
    assert jb.get(out) == AUDIO and out == loud
    levels = []
    for _ in range(6):
        status = jb.get(out)
        levels.append((status, ulaw_value(out[0])))
    assert jb.underruns == 1
    assert levels[0] == (CONCEALED, 32124)  # the same frame once
    assert [s for s, _ in levels] == [CONCEALED] * 4 + [SILENCE] * 2
    faded = [v for _, v in levels[1:4]]
    assert faded[0] < 32124 * 6 // 10 and faded[0] > 32124 * 4 // 10
    assert faded[0] > faded[1] > faded[2] > 0
    assert levels[4][1] == 0 and out == bytes([0xFF]) * 160
    assert jb.concealed == 4
    # The next packet starts playout again at once (target one frame).
    jb.put(2, 160 * 10, frame(3), 200)  # 200 ms later, timestamp 200 ms on: no jitter
    assert jb.get(out) == AUDIO and out == frame(3)


def test_without_a_fade_table_one_repeat_then_silence_in_the_law_s_code():
    jb = JitterBuffer(silence=SILENCE_PCMA)
    jb.put(1, 0, frame(4), 0)
    out = bytearray(160)
    assert jb.get(out) == AUDIO
    assert jb.get(out) == CONCEALED and out == frame(4)
    assert jb.get(out) == SILENCE and out == bytes([0xD5]) * 160


def test_target_depth_follows_jitter_between_20_and_100_ms():
    # A deterministic spread of network delays, 0..59 ms.
    delays = [(n * 37) % 60 for n in range(200)]
    jb = JitterBuffer()
    results = play(jb, stream(200, delays=delays), 210)
    assert 10 <= jb.jitter_ms <= 40, jb.jitter_ms
    assert 40 <= jb.target_ms <= 100, jb.target_ms
    # Once adapted, the buffer holds every frame: losses happen only while it deepens.
    assert audio_frames(results)[-100:] == [n % 100 for n in range(100, 200)]
    wild = [(n * 97) % 400 for n in range(100)]
    jb = JitterBuffer()
    play(jb, stream(100, delays=wild), 120)
    assert jb.target_ms == 100  # clamped at max_ms


def test_a_passed_jitter_spike_is_trimmed_back_to_target():
    # 100 frames arrive in a burst late by 160 ms, then the stream is steady again.
    delays = [160 - 20 * n if n < 8 else 0 for n in range(150)]
    jb = JitterBuffer(min_ms=20, max_ms=140)
    play(jb, stream(150, delays=delays), 152)
    assert jb.trimmed >= 1
    assert jb.depth_ms <= jb.target_ms + jb.frame_ms


def test_overrun_drops_the_oldest_frames():
    jb = JitterBuffer(slots=8)
    out = bytearray(160)
    for n in range(12):  # nobody calls get(): the ring holds 8
        jb.put(n, n * 160, frame(n), n)
    assert jb.overruns == 4 and jb.trimmed == 4
    played = []
    for _ in range(8):
        assert jb.get(out) == AUDIO
        played.append(out[0] - 1)
    assert played == list(range(4, 12))


def test_a_restarted_stream_is_followed():
    jb = JitterBuffer()
    first = stream(10, seq0=100, ts0=1000)
    # A new sender (re-INVITE to another media server): unrelated seq and timestamp.
    second = [(a + 200, (s + 30000) & 0xFFFF, ts + 3000000, p) for a, s, ts, p in stream(10)]
    results = play(jb, first + second, 25)
    assert jb.resyncs + jb.underruns >= 1
    assert audio_frames(results) == list(range(10)) + list(range(10))
    # One stray packet far away is ignored; a second one in a row re-anchors.
    jb = JitterBuffer()
    assert jb.put(1, 0, frame(0), 0) == STORED
    assert jb.put(9, 20000, frame(1), 1) == REJECTED
    assert jb.put(2, 160, frame(2), 20) == STORED
    assert jb.put(9, 20000, frame(1), 21) == REJECTED
    assert jb.put(10, 20160, frame(3), 22) == STORED  # in sequence with the stray: follow
    assert jb.resyncs == 1


def test_payloads_are_read_in_place_from_a_receive_buffer():
    rx = bytearray(1500)
    header = RtpHeader()
    jb = JitterBuffer()
    out = bytearray(160)
    for n in range(3):
        pack_header(rx, 0, 0, 7 + n, 160 * n, 1)
        rx[12:172] = frame(n)
        header.unpack_from(rx, 172)
        result = jb.put(
            header.sequence,
            header.timestamp_lo,
            rx,
            n * 20,
            header.payload_offset,
            header.payload_length,
        )
        assert result == STORED
    for n in range(3):
        assert jb.get(out) == AUDIO and out == frame(n)


def test_bad_sizes_are_rejected_not_raised():
    jb = JitterBuffer()
    assert jb.put(1, 0, b"", 0) == REJECTED
    assert jb.put(1, 0, bytes(100), 0) == REJECTED
    assert jb.put(1, 0, bytes(160 * 9), 0) == REJECTED  # more than the ring
    assert jb.put(1, 0, bytes(200), 0, 100, 160) == REJECTED  # past the end
    assert jb.rejected == 4 and jb.received == 0
    assert jb.put(1, 0, bytes(320), 0) == STORED  # two frames in one packet
    with raises(ValueError, match="160 bytes"):
        jb.get(bytearray(80))
    with raises(ValueError, match="power of two"):
        JitterBuffer(slots=6)
    with raises(ValueError, match="max_ms"):
        JitterBuffer(slots=4, max_ms=100)


def test_sipp_30ms_capture_through_10ms_frames_with_its_real_arrival_times():
    # 30 ms packets, 240 codes each, played as 10 ms frames: three frames per packet.
    jb = JitterBuffer(frame_bytes=80, frame_ms=10, slots=16, silence=SILENCE_PCMA)
    header = RtpHeader()
    packets = []
    for arrival, _, _, data in udp_payloads(DATA + "g711a.pcap"):
        header.unpack_from(data)
        packets.append((arrival + 1, header.sequence, header.timestamp, data))
    out = bytearray(80)
    played = 0  # frames played, each checked against the capture
    p = 0
    for t in range(236 * 3 + 20):
        now = t * 10
        while p < len(packets) and packets[p][0] <= now:
            arrival, seq, ts, data = packets[p]
            assert jb.put(seq, ts, data, arrival, 12, 240) == STORED
            p += 1
        if jb.get(out) == AUDIO:
            data = packets[played // 3][3]
            at = 12 + 80 * (played % 3)
            assert out == data[at : at + 80], played
            played += 1
    assert played == 236 * 3
    assert (jb.lost, jb.late, jb.underruns) == (0, 0, 1)  # the one underrun: end of stream
    assert jb.jitter_ms <= 2  # SIPp paced it well


def test_steady_state_allocates_nothing_under_micropython():
    if not is_micropython():
        return
    import gc

    jb = JitterBuffer(fade=fade_table(ulaw_decode, ulaw_encode, 60))
    header = RtpHeader()
    rx = bytearray(1500)
    out = bytearray(160)
    state = [0]  # the next packet's number; packets run two frames ahead of playout

    def receive(n, arrival):
        pack_header(rx, 0, 0, (65500 + n) & 0xFFFF, (0xFFFF0000 + 160 * n) & 0xFFFFFFFF, 9)
        length = header.unpack_from(rx, 172) + header.payload_length
        jb.put(header.sequence, header.timestamp_lo, rx, arrival, header.payload_offset, 160)
        if n % 7 == 0:  # a duplicate now and then
            jb.put(header.sequence, header.timestamp_lo, rx, arrival + 1, 12, length - 12)

    def tick():
        n = state[0]
        state[0] = n + 1
        if n % 10 != 3:  # every tenth packet is lost: the concealment path
            receive(n, n * 20)
        return jb.get(out)

    receive(0, 0)
    receive(1, 0)
    state[0] = 2
    for _ in range(50):
        tick()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(500):
        tick()
    assert gc.mem_alloc() - before == 0
    assert (jb.lost, jb.underruns) == (55, 0), (jb.lost, jb.underruns)
    # Packets 0..551: 55 with n % 10 == 3 lost, 72 duplicated (multiples of 7, less the 7
    # lost ones), and the last two still waiting their turn.
    assert (jb.duplicates, jb.concealed, jb.played) == (72, 55, 552 - 55 - 2)


# A compact mu-law reference (Sun's g711.c, 14-bit as in G.191) for building a fade table
# here without depending on voip.g711.
_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def ulaw_value(code):
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def ulaw_code(sample):
    sample >>= 2
    if sample < 0:
        sample, mask = -sample, 0x7F
    else:
        mask = 0xFF
    sample = min(sample, 8159) + 0x21
    seg = 0
    while seg < 8 and sample > _SEG_END[seg]:
        seg += 1
    return ((seg << 4) | ((sample >> (seg + 1)) & 0x0F)) ^ mask


def ulaw_decode(data, pcm):
    for i in range(len(data)):
        v = ulaw_value(data[i]) & 0xFFFF
        pcm[2 * i] = v & 0xFF
        pcm[2 * i + 1] = v >> 8
    return len(data)


def ulaw_encode(pcm, out):
    for i in range(len(out)):
        v = pcm[2 * i] | (pcm[2 * i + 1] << 8)
        out[i] = ulaw_code(v - 0x10000 if v >= 0x8000 else v)
    return len(out)


def test_fade_table_scales_every_code():
    table = fade_table(ulaw_decode, ulaw_encode, 50)
    assert len(table) == 256
    for code in range(256):
        value, faded = ulaw_value(code), ulaw_value(table[code])
        assert abs(faded) <= abs(value)
        assert (faded >= 0) == (value >= 0) or faded == 0
        assert abs(faded - value // 2) <= abs(value) // 16 + 8, (code, value, faded)
    assert table[0xFF] in (0xFF, 0x7F)  # silence stays silence


def test_fade_tables_from_voip_g711():
    with raises(ValueError, match="no G.711 law"):
        g711_fade_table("G722")
    try:
        from voip import g711
    except ImportError:
        skip("voip.g711 is not in the tree yet")
    ulaw = g711_fade_table("PCMU", 50)
    assert ulaw == fade_table(g711.ulaw_decode, g711.ulaw_encode, 50)
    for code in range(256):
        value, faded = ulaw_value(code), ulaw_value(ulaw[code])
        assert abs(faded) <= abs(value) and abs(faded - value // 2) <= abs(value) // 16 + 8
    alaw = g711_fade_table("PCMA", 50)
    pcm = bytearray(512)
    g711.alaw_decode(bytes(range(256)), pcm)
    faded = bytearray(512)
    g711.alaw_decode(alaw, faded)
    for code in range(256):
        v = pcm[2 * code] | pcm[2 * code + 1] << 8
        f = faded[2 * code] | faded[2 * code + 1] << 8
        v, f = (v - 65536 if v >= 32768 else v), (f - 65536 if f >= 32768 else f)
        assert abs(f) <= abs(v) and abs(f - v // 2) <= abs(v) // 16 + 16, (code, v, f)
