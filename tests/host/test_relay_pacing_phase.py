# The phase of the relay's pacing clock follows the agent's audio: a talkspurt's first packet
# goes as soon as its audio is there (not at the next 20 ms deadline), and a frame that is late
# mid-talkspurt is waited for (its deadline held) instead of ending the talkspurt with a hole
# in the timestamps. Sans-I/O with an invented clock first, then a MediaSession against the
# fake Realtime server with an agent that delivers in real time (the worst case for a pacer).
import asyncio
import random

from fake_realtime import FakeRealtimeServer
from rtp_peer import RtpPeer

from sipmote.relay import config as relay_config
from sipmote.relay.backends import SessionConfig, create_backend
from sipmote.relay.media import FRAME_S, MediaSession
from sipmote.relay.playout import DEFAULT_PREBUFFER_MS, AgentPlayout
from voip import rtp


def playout(**kw):
    kw.setdefault("ssrc", 0x1234)
    kw.setdefault("seq", 100)
    kw.setdefault("timestamp", 16000)
    return AgentPlayout("pcmu", 0, **kw)


def parse(packet):
    return rtp.parse(bytes(packet))


def test_a_talkspurt_starts_between_deadlines_with_the_nearer_deadlines_timestamp():
    p = playout()
    assert p.start_time() is None  # nothing queued
    assert p.tick(10.00) is None  # a silent deadline: timestamp 16000 unused
    p.push("a", bytes([1]) * 480, 10.004, 10.004)
    assert p.start_time() == 0.0  # a whole frame and the default pre-buffer: now
    first = parse(p.start(10.004, 10.02))  # 4 ms after the silent deadline: its timestamp
    assert (first.marker, first.sequence, first.timestamp) == (1, 100, 16000)
    # the grid continues one frame after the first packet, one frame of timestamp per packet
    second = parse(p.tick(10.024))
    assert (second.marker, second.sequence, second.timestamp) == (0, 101, 16160)
    assert p.early_starts == 1 and p.talkspurts == 1
    # nearer the next deadline: that deadline's timestamp
    q = playout()
    q.tick(10.00)
    q.push("a", bytes([1]) * 160, 10.015, 10.015)
    assert parse(q.start(10.015, 10.02)).timestamp == 16160


def test_no_early_start_right_after_a_packet_nor_without_a_whole_frame():
    p = playout(prebuffer_ms=0)
    p.push("a", bytes([1]) * 800, 0.0, 0.0)
    assert p.tick(1.00) is not None  # a packet at this deadline...
    assert p.interrupt() == [("a", 20)]  # barge-in 3 ms later; the next response follows
    p.push("b", bytes([2]) * 160, 1.005, 1.005)
    assert p.start_time() is None and p.start(1.005, 1.02) is None  # ...so not 5 ms later
    first_b = parse(p.tick(1.02))  # at the next deadline: never less than a frame apart
    assert first_b.marker == 1 and p.early_starts == 0
    q = playout(prebuffer_ms=0)
    q.push("c", bytes([3]) * 100, 0.0, 0.0)  # a partial frame of an item still arriving
    assert q.start_time() is None
    q.end_item("c")  # complete: padded and sent
    assert q.start_time() == 0.0


def test_the_prebuffer_by_time_says_when_the_talkspurt_may_start():
    p = playout(prebuffer_ms=40)
    p.push("a", bytes([1]) * 160, 5.0, 5.0)
    assert abs(p.start_time() - 5.04) < 1e-9  # one frame, not 40 ms: waits 40 ms at most
    assert p.start(5.02, 5.03) is None
    p.push("a", bytes([1]) * 160, 5.01, 5.01)
    assert p.start_time() == 0.0


def test_a_late_frame_mid_item_is_starving_not_the_end():
    p = playout()
    p.push("a", bytes([1]) * 320, 0.0, 0.0)
    p.tick(1.00)
    p.tick(1.02)
    assert p.starving  # talking, queue empty, item a still arriving
    p.push("a", bytes([2]) * 100, 1.03, 1.03)
    assert p.starving  # not a whole frame yet
    p.push("a", bytes([2]) * 60, 1.031, 1.031)
    assert not p.starving
    late = parse(p.tick(1.031))  # the held deadline's frame, sent when it came
    assert (late.marker, late.timestamp) == (0, 16000 + 2 * 160)
    p.end_item("a")
    assert not p.starving  # complete and all sent: the talkspurt is over, not late
    assert p.underruns == 0


def test_media_prebuffer_is_a_relay_setting():
    cfg = relay_config.from_dict({}, environ={})
    assert cfg.media.prebuffer_ms == DEFAULT_PREBUFFER_MS == 20
    cfg = relay_config.from_dict({"media": {"prebuffer_ms": 0}}, environ={})
    assert cfg.media.prebuffer_ms == 0
    for bad, why in (({"prebuffer_ms": 41}, "outside 0..40"), ({"prebuffer_ms": "x"}, "integer"),
                     ({"jitter": 1}, "jitter")):
        try:
            relay_config.from_dict({"media": bad}, environ={})
        except relay_config.ConfigError as e:
            assert why in str(e) and "media." in str(e)
        else:
            raise AssertionError("accepted %r" % bad)


def test_a_real_time_agent_is_paced_without_holes_markers_or_a_slot_to_wait_for():
    # Deltas of one frame every 20 ms, each 0-3 ms late on its own schedule: an agent that
    # answers every caller frame at once. The old fixed grid either queued a frame or more
    # (pre-buffer) or, with none, raced the arrivals and restarted talkspurts with holes.
    frames = 100
    audio = bytes((i * 7) % 200 + 1 for i in range(160 * frames))
    out = {}

    async def main():
        server = await FakeRealtimeServer().start()
        peer = await RtpPeer.open()
        backend = create_backend("openai", api_key="sk-test", url=server.url, model="m")
        session = MediaSession(("127.0.0.1", 0), peer.address, "pcmu", backend,
                               SessionConfig(codec="pcmu"), call_id="phase")
        await session.start()
        conn = await server.connection(0)
        queued_at_arrival = []
        push = session.playout.push

        def watched_push(*args):
            queued_at_arrival.append(session.playout.queued_bytes)
            return push(*args)

        session.playout.push = watched_push
        rng = random.Random(7)
        loop = asyncio.get_running_loop()
        response = await conn.begin_response()
        item = conn.next_id("item")
        await asyncio.sleep(0.013)  # any phase against the relay's clock
        t0 = loop.time()
        for k in range(frames):
            await asyncio.sleep(max(0.0, t0 + k * FRAME_S + rng.uniform(0, 0.003) - loop.time()))
            await conn.audio_delta(response, item, audio[160 * k : 160 * (k + 1)])
        await conn.audio_done(response, item)
        await peer.wait_packets(frames)
        await asyncio.sleep(0.1)
        out["got"] = list(peer.received)
        out["queued"] = queued_at_arrival
        out["playout"] = session.playout
        await session.stop("test over")
        peer.close()
        await server.stop()
        assert server.invalid == []

    asyncio.run(asyncio.wait_for(main(), 30))
    got, p = out["got"], out["playout"]
    assert b"".join(x.payload for x in got) == audio
    assert [x.marker for x in got] == [1] + [0] * (frames - 1)  # one talkspurt
    assert all((b.seq - a.seq) & 0xFFFF == 1 for a, b in zip(got, got[1:]))
    assert all((b.ts - a.ts) & 0xFFFFFFFF == 160 for a, b in zip(got, got[1:]))  # no hole
    assert p.early_starts == 1 and p.underruns == 0
    # each frame found the one before it sent already: nothing waits in the queue for a slot
    # (a frame arriving behind a queued one would mean the grid lags the audio)
    assert sum(1 for q in out["queued"] if q >= 160) <= frames // 10, out["queued"]
