# The relay's reorder window for caller RTP (relay/reorder.py, relay/caller_rtp.py) with an
# injected clock: in-order audio passes at once, a packet after a gap waits at most the
# deadline for the missing one, every payload reaches the backend once and in order, and
# duplicates, late packets and 16-bit wraparound are handled. Then the same through a
# MediaSession on loopback sockets, against the fake Realtime server.
import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipmote.relay.caller_rtp import AUDIO, KEY, CallerRtp
from sipmote.relay.reorder import DEFAULT_HOLD_MS, MAX_HOLD_MS, ReorderWindow

HOLD = 60
SLOTS = 16


def feed(window, arrivals, hold=HOLD):
    """Drive the window as the media session does: expire() exactly at deadline_ms between
    arrivals. arrivals: [(t_ms, seq, item)] in arrival order. Returns [(t_release, item)]."""
    got = []
    for t, seq, item in arrivals:
        while window.deadline_ms is not None and window.deadline_ms <= t:
            due = window.deadline_ms
            out = []
            window.expire(due, out)
            got += [(due, x) for x in out]
        out = []
        window.push(seq, item, t, out)
        got += [(t, x) for x in out]
    while window.deadline_ms is not None:
        due = window.deadline_ms
        out = []
        window.expire(due, out)
        got += [(due, x) for x in out]
    return got


def test_in_order_packets_pass_at_once_and_nothing_is_held():
    stats = {}
    w = ReorderWindow(HOLD, stats=stats)
    arrivals = [(20 * k, (65530 + k) & 0xFFFF, k) for k in range(40)]  # across the wrap
    got = feed(w, arrivals)
    assert got == [(20 * k, k) for k in range(40)]
    assert stats["held"] == 0 and stats["out_of_order"] == 0 and stats["seq_gaps"] == 0


def test_a_reordered_pair_is_put_back_in_order_when_the_missing_one_arrives():
    stats = {}
    w = ReorderWindow(HOLD, stats=stats)
    got = feed(w, [(0, 100, "a"), (20, 102, "c"), (35, 101, "b"), (60, 103, "d")])
    assert got == [(0, "a"), (35, "b"), (35, "c"), (60, "d")]
    assert stats["reordered"] == 1 and stats["held"] == 1 and stats["seq_gaps"] == 0
    assert stats["hold_max_ms"] == 15


def test_a_lost_packet_is_given_up_after_the_deadline_and_never_sooner():
    stats = {}
    w = ReorderWindow(HOLD, stats=stats)
    out = []
    w.push(10, "a", 0, out)
    w.push(12, "c", 40, out)
    w.push(13, "d", 60, out)
    assert out == ["a"] and w.deadline_ms == 40 + HOLD and w.held == 2
    w.expire(40 + HOLD - 1, out)
    assert out == ["a"]
    w.expire(40 + HOLD, out)
    assert out == ["a", "c", "d"] and w.deadline_ms is None and w.held == 0
    assert stats["seq_gaps"] == 1 and stats["hold_max_ms"] == HOLD
    w.push(11, "b", 105, out)  # too late: its followers went
    w.push(14, "e", 120, out)
    assert out == ["a", "c", "d", "e"] and stats["out_of_order"] == 1


def test_two_gaps_each_wait_their_own_deadline():
    w = ReorderWindow(HOLD)
    got = feed(w, [(0, 1, 1), (20, 3, 3), (50, 6, 6), (70, 2, 2)])
    # 2 fills the first gap at 70 (before 3's deadline at 80); 4 and 5 never come: 6 goes at
    # its own deadline, 50 + HOLD
    assert got == [(0, 1), (70, 2), (70, 3), (50 + HOLD, 6)]


def test_duplicates_are_dropped_and_counted_held_or_already_sent():
    stats = {}
    w = ReorderWindow(HOLD, stats=stats)
    got = feed(w, [(0, 7, "a"), (1, 7, "a2"), (20, 9, "c"), (21, 9, "c2"), (30, 8, "b"),
                   (31, 8, "b2")])
    assert [x for _t, x in got] == ["a", "b", "c"]
    assert stats["out_of_order"] == 3


def test_a_jump_beyond_the_window_is_a_loss_not_reordering():
    stats = {}
    w = ReorderWindow(HOLD, slots=SLOTS, stats=stats)
    got = feed(w, [(0, 500, "a"), (10, 502, "c"), (30, 600, "z"), (50, 601, "y")])
    # 98 numbers on: 600 goes at once (c, held before it, first), not after a deadline
    assert got == [(0, "a"), (30, "c"), (30, "z"), (50, "y")]
    assert stats["seq_gaps"] == 1 + 97


def test_a_restarted_numbering_is_followed_after_three_packets():
    stats = {}
    w = ReorderWindow(HOLD, stats=stats)
    got = feed(w, [(0, 40000, "a"), (20, 40001, "b"), (40, 9000, "x"), (60, 9001, "y"),
                   (80, 9002, "z"), (100, 9003, "w")])
    assert [x for _t, x in got] == ["a", "b", "z", "w"]
    assert stats["out_of_order"] == 2  # x and y, before the run said it was a restart


def test_a_filler_number_lets_the_next_audio_through_at_once():
    w = ReorderWindow(HOLD)
    out = []
    w.push(1, "a", 0, out)
    w.fill(2, 10, out)  # an RFC 4733 event used number 2
    w.push(3, "c", 20, out)
    assert out == ["a", "c"] and w.held == 0
    w.fill(5, 30, out)  # an event after a gap: its number waits like audio would
    w.push(4, "d", 40, out)
    w.push(6, "f", 60, out)
    assert out == ["a", "c", "d", "f"] and w.held == 0


def test_hold_zero_is_arrival_order_with_late_packets_dropped():
    stats = {}
    w = ReorderWindow(0, stats=stats)
    got = feed(w, [(0, 1, 1), (20, 3, 3), (25, 2, 2), (40, 4, 4)])
    assert got == [(0, 1), (20, 3), (40, 4)]
    assert stats["out_of_order"] == 1 and stats["seq_gaps"] == 1 and stats["held"] == 0


def test_flush_releases_in_order_and_reset_forgets():
    w = ReorderWindow(HOLD)
    out = []
    for seq in (10, 14, 12, 13):
        w.push(seq, seq, 0, out)
    w.flush(out, 5)
    assert out == [10, 12, 13, 14] and w.held == 0 and w.deadline_ms is None
    w.reset()
    w.push(3, 3, 6, out)
    assert out[-1] == 3


def test_settings_are_checked():
    with pytest.raises(ValueError, match="hold_ms"):
        ReorderWindow(MAX_HOLD_MS + 1)
    with pytest.raises(ValueError, match="power of two"):
        ReorderWindow(HOLD, slots=12)
    assert 40 <= DEFAULT_HOLD_MS <= 60


# -- property: a network that delays, loses, duplicates and reorders -------------------------

@st.composite
def networks(draw):
    n = draw(st.integers(1, 120))
    start = draw(st.sampled_from([0, 1000, 65535 - 30, 65535 - 5, 65535]))
    jitter = draw(st.integers(0, 90))
    hold = draw(st.sampled_from([0, 20, 40, 60, 100]))
    loss_pct = draw(st.sampled_from([0, 5, 20]))
    dup_pct = draw(st.sampled_from([0, 5]))
    arrivals = []
    for k in range(n):
        if draw(st.integers(0, 99)) < loss_pct:
            continue  # lost
        copies = 2 if draw(st.integers(0, 99)) < dup_pct else 1
        for _ in range(copies):
            arrivals.append((20 * k + draw(st.integers(0, jitter)), (start + k) & 0xFFFF, k))
    arrivals.sort(key=lambda a: a[0])  # arrival order; same-ms ties keep send order
    return hold, arrivals


@settings(max_examples=400, deadline=None)
@given(networks())
def test_every_payload_once_in_order_and_never_held_past_the_deadline(net):
    hold, arrivals = net
    stats = {}
    w = ReorderWindow(hold, slots=SLOTS, stats=stats)
    first_arrival = {}
    for t, _seq, k in arrivals:
        first_arrival.setdefault(k, t)
    got = []
    for t, seq, k in arrivals:
        while w.deadline_ms is not None and w.deadline_ms <= t:
            due = w.deadline_ms
            out = []
            w.expire(due, out)
            got += [(due, x) for x in out]
            assert w.held <= SLOTS
        out = []
        w.push(seq, k, t, out)
        got += [(t, x) for x in out]
        assert w.held <= SLOTS
    while w.deadline_ms is not None:
        due = w.deadline_ms
        out = []
        w.expire(due, out)
        got += [(due, x) for x in out]
    order = [k for _t, k in got]
    assert order == sorted(set(order)), "out of order or twice: %s" % order
    release = dict((k, t) for t, k in got)
    for k, t in release.items():
        assert 0 <= t - first_arrival[k] <= hold, (k, first_arrival[k], t)
    # whatever was not forwarded came after a later packet had gone
    for k, t_arr in first_arrival.items():
        if k not in release:
            assert any(j > k and t <= t_arr for j, t in release.items()), k
    # a gap is given up only at a held packet's deadline, or on a jump beyond the window:
    # check each batch released at one instant that skips a number
    prev, i = None, 0
    while i < len(got):
        t = got[i][0]
        batch = []
        while i < len(got) and got[i][0] == t:
            batch.append(got[i][1])
            i += 1
        before = batch[0] - 1 if prev is None else prev
        skips = any(b - a > 1 for a, b in zip([before] + batch, batch))
        if skips:
            deadline = any(first_arrival[j] == t - hold for j in batch)
            jump = batch[-1] - (before + 1) >= SLOTS
            assert deadline or jump, (before, batch, t)
        prev = batch[-1]
    assert stats["seq_gaps"] + len(release) == (order[-1] - order[0] + 1 if order else 0)


def test_in_order_arrivals_are_never_delayed_even_with_duplicates():
    w = ReorderWindow(HOLD)
    arrivals = []
    for k in range(200):
        arrivals.append((20 * k, (65500 + k) & 0xFFFF, k))
        if k % 7 == 0:
            arrivals.append((20 * k + 1, (65500 + k) & 0xFFFF, k))
    got = feed(w, arrivals)
    assert got == [(20 * k, k) for k in range(200)]


# -- CallerRtp: real RTP packets ---------------------------------------------------------------

class Log:
    def __init__(self):
        self.events = []

    def event(self, name, **fields):
        self.events.append((name, fields))


def rtp(seq, payload, pt=0, ssrc=0x1234, ts=None, marker=False):
    ts = seq * 160 if ts is None else ts
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


CALLER = ("192.0.2.7", 40000)


def caller(reorder_ms=HOLD):
    stats = {}
    return CallerRtp(CALLER, 0, 101, stats, Log(), reorder_ms=reorder_ms), stats


def test_caller_rtp_forwards_reordered_audio_in_order_with_arrival_times():
    c, stats = caller()
    out = []
    for t, seq in ((0, 65534), (20, 0), (30, 65535), (40, 1)):  # reordered across the wrap
        out += c.receive(rtp(seq, bytes([seq & 0xFF]) * 160), CALLER, t)
    assert [(k, v[0], t) for k, v, t in out] == [
        (AUDIO, 0xFE, 0), (AUDIO, 0xFF, 30), (AUDIO, 0x00, 20), (AUDIO, 0x01, 40)]
    assert stats["reordered"] == 1 and stats["out_of_order"] == 0


def test_caller_rtp_gives_up_a_gap_through_expire():
    c, stats = caller()
    assert c.receive(rtp(1, b"a" * 160), CALLER, 0)[0][1] == b"a" * 160
    assert c.receive(rtp(3, b"c" * 160), CALLER, 20) == []
    assert c.deadline_ms == 20 + HOLD
    assert c.expire(20 + HOLD - 1) == ()
    out = c.expire(20 + HOLD)
    assert [(v[:1], t) for _k, v, t in out] == [(b"c", 20)]
    assert c.deadline_ms is None and stats["seq_gaps"] == 1
    assert c.receive(rtp(2, b"b" * 160), CALLER, 90) == [] and stats["out_of_order"] == 1


def test_a_key_press_neither_waits_nor_makes_the_audio_after_it_wait():
    c, stats = caller()
    c.receive(rtp(10, b"a" * 160), CALLER, 0)
    got = []
    for seq, end in ((11, False), (12, False), (13, True), (14, True), (15, True)):
        got += c.receive(rtp(seq, bytes([5, 0x8A if end else 0x0A, 0, 0xA0]), pt=101,
                             ts=1600), CALLER, 20)
    got += c.receive(rtp(16, b"b" * 160), CALLER, 40)
    assert [(k, v if k == KEY else v[:1], t) for k, v, t in got] == [
        (KEY, "5", 20), (AUDIO, b"b", 40)]
    assert stats["dtmf"] == 1 and stats["held"] == 0


def test_a_new_ssrc_flushes_the_old_streams_held_audio_first():
    c, stats = caller()
    c.receive(rtp(100, b"a" * 160), CALLER, 0)
    c.receive(rtp(102, b"c" * 160), CALLER, 20)  # held: 101 missing
    got = []
    for i, t in enumerate((30, 40, 50)):
        got += c.receive(rtp(7000 + i, bytes([i + 1]) * 160, ssrc=0x9999), CALLER, t)
    assert [v[:1] for _k, v, _t in got] == [b"c", b"\x03"]
    assert stats["wrong_ssrc"] == 2 and c.deadline_ms is None
    got = c.receive(rtp(7003, b"n" * 160, ssrc=0x9999), CALLER, 60)
    assert [v[:1] for _k, v, _t in got] == [b"n"]


def test_a_stray_payload_type_fills_nothing_and_costs_no_audio():
    c, stats = caller()
    c.receive(rtp(1, b"a" * 160), CALLER, 0)
    assert c.receive(rtp(2, b"g" * 20, pt=18), CALLER, 10) == ()  # G.729: not negotiated
    got = c.receive(rtp(2, b"b" * 160), CALLER, 20)
    assert [v[:1] for _k, v, _t in got] == [b"b"] and stats["wrong_pt"] == 1


# -- through a MediaSession: the fake Realtime server gets every payload in order -------------

def test_media_session_forwards_a_reordered_stream_in_order_and_skips_a_lost_packet():
    from fake_realtime import FakeRealtimeServer
    from rtp_peer import RtpPeer

    from sipmote.relay.backends import SessionConfig, create_backend
    from sipmote.relay.media import MediaSession

    async def main():
        server = await FakeRealtimeServer().start()
        peer = await RtpPeer.open(pt=0)
        backend = create_backend("openai", api_key="sk-test", url=server.url,
                                 model="gpt-realtime")
        session = MediaSession(("127.0.0.1", 0), peer.address, "pcmu", backend,
                               SessionConfig(codec="pcmu"), call_id="reorder",
                               reorder_ms=50)
        await session.start()
        peer.dest = ("127.0.0.1", session.local_port)
        conn = await server.connection(0)
        try:
            base = peer.seq
            payloads = [bytes([k + 1]) * 160 for k in range(30)]
            order = list(range(30))
            for a in (3, 11, 20):  # swap neighbours: 4 before 3, 12 before 11, 21 before 20
                order[a], order[a + 1] = order[a + 1], order[a]
            order.remove(25)  # lost
            for k in order:
                peer.send_raw(peer.packet(payloads[k], seq=base + k, ts=160 * (base + k)))
                await asyncio.sleep(0.005)
            expected = [p for k, p in enumerate(payloads) if k != 25]
            await conn.wait_audio(len(expected) * 160)
            await asyncio.sleep(0.1)
            assert conn.appends == expected
            stats = session.stats
            assert stats["forwarded"] == 29 and stats["reordered"] == 3
            assert stats["seq_gaps"] == 1 and stats["out_of_order"] == 0
            assert stats["hold_max_ms"] <= 50 + 15  # the timer's own lateness, at most
        finally:
            await session.stop("test over")
            peer.close()
            await server.stop()
        assert server.invalid == []

    asyncio.run(asyncio.wait_for(main(), 30))


# -- the [media] reorder_ms setting --------------------------------------------------------------

def test_reorder_ms_is_read_checked_and_reaches_the_callers_window(tmp_path):
    from types import SimpleNamespace

    from sipmote.relay import config
    from sipmote.relay.config import ConfigError
    from sipmote.relay.service import Relay

    path = tmp_path / "relay.toml"
    path.write_text("[media]\nreorder_ms = 25\n")
    cfg = config.load(str(path), environ={})
    assert cfg.media.reorder_ms == 25
    path.write_text("")
    assert config.load(str(path), environ={}).media.reorder_ms == DEFAULT_HOLD_MS
    for bad in ("-1", "201", '"60"'):
        path.write_text("[media]\nreorder_ms = %s\n" % bad)
        with pytest.raises(ConfigError, match=r"media\.reorder_ms"):
            config.load(str(path), environ={})
    path.write_text("[media]\nreorder_ms = 25\n")
    cfg = config.load(str(path), environ={})
    relay = Relay(cfg, control=False)
    info = SimpleNamespace(codec="PCMU", address="127.0.0.1", port=40000, payload_type=0,
                           recv_telephone_event=101)
    call = SimpleNamespace(agent=cfg.agents[0], media_info=info, rtp_socket=("127.0.0.1", 0),
                           call_id="cfg-test", log=None)
    session = relay._default_media(call)
    assert session.caller.window.hold_ms == 25
    session.log.close()
