# The relay's agent playout driven by an invented clock: RTP sequence/timestamps continuous
# across silence, responses and barge-in, marker bits, pre-buffer bound, queue bound, and
# truncation positions equal to the audio actually sent.
import pytest

from sipmote.relay.playout import AgentPlayout
from voip import rtp

TICK = 0.020


class Clock:
    """Calls playout.tick() at exact 20 ms deadlines and records what went out."""

    def __init__(self, playout, t=100.0):
        self.playout = playout
        self.t = t
        self.ticks = 0
        self.sent = []  # (tick index, pt, marker, seq, ts, payload)

    def run(self, ticks):
        for _ in range(ticks):
            packet = self.playout.tick(self.t)
            if packet is not None:
                p = rtp.parse(bytes(packet))
                self.sent.append((self.ticks, p.payload_type, p.marker, p.sequence, p.timestamp,
                                  p.payload))
            self.t += TICK
            self.ticks += 1


def audio(n, value):
    return bytes([value]) * n


def playout(**kw):
    kw.setdefault("ssrc", 0x1234)
    kw.setdefault("seq", 65530)  # wraps during the test
    kw.setdefault("timestamp", 0xFFFFF000)
    return AgentPlayout("pcmu", 0, **kw)


def test_seq_and_timestamp_follow_the_clock_across_silence_and_responses():
    p = playout()
    c = Clock(p)
    p.push("a", audio(1600, 1), c.t, c.t)  # 200 ms
    p.end_item("a")
    c.run(20)  # 10 frames of audio, then 10 ticks of silence
    p.push("b", audio(800, 2), c.t, c.t)
    p.end_item("b")
    c.run(10)
    assert len(c.sent) == 15
    seqs = [s[3] for s in c.sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))  # across the wrap
    for (ta, *_, tsa, _), (tb, *_, tsb, _) in zip(c.sent, c.sent[1:]):
        assert (tsb - tsa) & 0xFFFFFFFF == 160 * (tb - ta)  # timestamp = media clock
    markers = [s[2] for s in c.sent]
    assert markers == [1] + [0] * 9 + [1] + [0] * 4
    assert b"".join(s[5] for s in c.sent[:10]) == audio(1600, 1)
    assert p.talkspurts == 2 and p.underruns == 0


def test_prebuffer_waits_at_most_40_ms():
    p = playout(prebuffer_ms=40)
    c = Clock(p)
    p.push("a", audio(160, 1), c.t, c.t)  # 20 ms: below the pre-buffer, item not complete
    c.run(2)
    assert c.sent == []  # waiting for more audio...
    c.run(1)
    assert len(c.sent) == 1 and c.sent[0][0] == 2  # ...but not longer than 40 ms
    assert c.sent[0][2] == 1


def test_prebuffer_starts_at_once_with_40_ms_queued_or_a_complete_item():
    p = playout(prebuffer_ms=40)
    c = Clock(p)
    p.push("a", audio(320, 1), c.t, c.t)
    c.run(1)
    assert len(c.sent) == 1
    q = playout(prebuffer_ms=40)
    d = Clock(q)
    q.push("b", audio(100, 1), d.t, d.t)
    q.end_item("b")
    d.run(1)
    assert len(d.sent) == 1 and d.sent[0][5] == audio(100, 1) + b"\xff" * 60  # padded


def test_bursty_arrival_is_paced_one_frame_per_tick():
    p = playout()
    c = Clock(p)
    data = bytes(range(256)) * 25  # 6400 bytes = 800 ms
    pos = 0
    for size in (3000, 7, 1, 1200, 2192):  # arrives in irregular bursts
        p.push("a", data[pos : pos + size], c.t, c.t)
        pos += size
    p.end_item("a")
    c.run(50)
    assert [s[0] for s in c.sent] == list(range(40))
    assert b"".join(s[5] for s in c.sent) == data


def test_underrun_mid_item_restarts_with_a_marker():
    p = playout(prebuffer_ms=0)
    c = Clock(p)
    p.push("a", audio(320, 1), c.t, c.t)
    c.run(4)  # 2 frames, then the queue runs dry: the item is not complete
    p.push("a", audio(320, 2), c.t, c.t)
    p.end_item("a")
    c.run(3)
    assert [s[2] for s in c.sent] == [1, 0, 1, 0]
    assert p.underruns == 1


def test_barge_in_stops_at_once_and_reports_what_was_sent():
    p = playout(prebuffer_ms=0)
    c = Clock(p)
    p.push("a", audio(8000, 1), c.t, c.t)  # one second
    c.run(7)
    cut = p.interrupt()
    assert cut == [("a", 7 * 20)]
    assert p.sent_ms("a") == 140
    c.run(5)
    assert len(c.sent) == 7  # nothing after the interrupt
    # late audio of the cut item is ignored; a new item starts a talkspurt
    assert p.push("a", audio(160, 1), c.t, c.t) == 0
    p.push("b", audio(320, 3), c.t, c.t)
    c.run(3)
    assert len(c.sent) == 9 and c.sent[7][2] == 1
    assert (c.sent[7][3] - c.sent[6][3]) & 0xFFFF == 1  # seq continuous across barge-in
    assert (c.sent[7][4] - c.sent[6][4]) & 0xFFFFFFFF == 160 * (c.sent[7][0] - c.sent[6][0])


def test_barge_in_counts_partial_frames_and_excludes_padding():
    p = playout(prebuffer_ms=0)
    c = Clock(p)
    p.push("a", audio(250, 1), c.t, c.t)  # item a ends mid-frame, b follows in that frame
    p.end_item("a")
    p.push("b", audio(1000, 2), c.t, c.t)
    c.run(2)
    assert c.sent[1][5] == audio(90, 1) + audio(70, 2)
    cut = p.interrupt()
    assert cut == [("b", 70 // 8)]  # a was complete and fully sent: nothing to truncate
    assert p.sent_ms("a") == 250 // 8


def test_barge_in_during_an_underrun_truncates_the_unfinished_item():
    p = playout(prebuffer_ms=0)
    c = Clock(p)
    p.push("a", audio(480, 1), c.t, c.t)
    c.run(5)  # 3 frames out, then starved: the server has not finished item a
    assert not p.playing
    assert p.interrupt() == [("a", 60)]
    assert p.interrupt() == []  # once only


def test_queue_is_bounded():
    p = playout(max_queue_ms=1000)
    assert p.push("a", audio(6000, 1)) == 6000
    assert p.push("a", audio(6000, 1)) == 2000
    assert p.push("a", audio(10, 1)) == 0
    assert p.queued_bytes == 8000 and p.dropped_bytes == 4010


def test_skip_keeps_the_timestamp_on_the_clock_and_marks_the_restart():
    p = playout(prebuffer_ms=0)
    c = Clock(p)
    p.push("a", audio(1600, 1), c.t, c.t)
    c.run(2)
    for _ in range(3):  # the host stalled for three deadlines
        p.skip()
        c.t += TICK
        c.ticks += 1
    c.run(2)
    assert [s[2] for s in c.sent] == [1, 0, 1, 0]
    assert (c.sent[2][4] - c.sent[1][4]) & 0xFFFFFFFF == 160 * 4


def test_send_silence_keeps_packets_flowing_between_talkspurts():
    p = playout(send_silence=True)
    c = Clock(p)
    c.run(3)
    p.push("a", audio(320, 1), c.t, c.t)
    p.end_item("a")
    c.run(3)
    assert len(c.sent) == 6
    assert [s[2] for s in c.sent] == [0, 0, 0, 1, 0, 0]
    assert c.sent[0][5] == b"\xff" * 160 and c.sent[5][5] == b"\xff" * 160


def test_prebuffer_range_is_checked():
    with pytest.raises(ValueError):
        AgentPlayout("pcmu", 0, prebuffer_ms=60)
