# RFC 3550 receiver statistics (A.1, A.3, A.8) and the E-model MOS estimate, on both runtimes.
# Jitter is checked against a separate, floating-point transcription of appendix A.8 fed the
# arrival times of SIPp's real PCMA capture.
import struct

from checks import is_micropython, raises
from pcap import udp_payloads

from voip.rtcp import ReceiverStats, estimate_mos, ntp_from_ms, parse
from voip.rtcp import build_report as build_rtcp_report
from voip.rtcp_stats import delay_impairment, r_to_mos

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rpartition("/")[0].rpartition("/")[0] + "/data/rtp/"


def feed(stats, seqs, ts_step=160, ms_step=20, start_ts=1000, start_ms=0):
    """Feed sequence numbers in arrival order; timestamps follow the sequence number."""
    first = seqs[0]
    results = []
    for i, seq in enumerate(seqs):
        offset = (seq - first) & 0xFFFF
        results.append(stats.receive(seq, start_ts + offset * ts_step, start_ms + i * ms_step))
    return results


def wrap(seq):
    return seq & 0xFFFF


# ---- A.1 sequence validation -------------------------------------------------------------


def test_probation_then_counting():
    stats = ReceiverStats(ssrc=5)
    assert stats.report_block(0) is None  # nothing valid yet
    assert feed(stats, [100, 101, 102, 103]) == [False, True, True, True]
    # A.1: the source becomes valid on its second packet, which restarts the counts there
    assert stats.base_seq == 101 and stats.received == 3
    assert stats.expected() == 3 and stats.lost() == 0


def test_probation_restarts_on_a_gap():
    stats = ReceiverStats()
    assert feed(stats, [10, 12, 13, 14]) == [False, False, True, True]
    assert stats.base_seq == 13 and stats.received == 2


def test_loss_and_fraction_lost_per_interval():
    stats = ReceiverStats(ssrc=0xABCDEF01)
    seqs = [s for s in range(1000, 1101) if s % 10 != 5]  # 10 of the 100 after 1000 lost
    feed(stats, seqs)
    assert stats.expected() == 100 and stats.received == 90 and stats.lost() == 10
    block = stats.report_block(2000)
    assert block.ssrc == 0xABCDEF01
    assert block.packets_lost == 10
    assert block.fraction_lost == 10 * 256 // 100  # 25
    assert block.highest_sequence == 1100
    # the next interval: 50 packets, none lost; the cumulative count stays, the fraction is 0
    for i, seq in enumerate(range(1101, 1151)):
        stats.receive(seq, 1000 + (seq - 1000) * 160, 3000 + 20 * i)
    block = stats.report_block(4000)
    assert block.fraction_lost == 0 and block.packets_lost == 10
    # and an interval with nothing at all received reports no loss fraction either
    assert stats.report_block(5000).fraction_lost == 0
    assert 0.06 < stats.loss_fraction() < 0.07  # 10 of 150


def test_sequence_wraparound_extends_the_highest_number():
    stats = ReceiverStats()
    seqs = [wrap(65530 + i) for i in range(20)]
    assert feed(stats, seqs)[1:] == [True] * 19
    assert stats.cycles == 65536 and stats.max_seq == 13
    assert stats.extended_max() == 65536 + 13
    assert stats.expected() == 19 and stats.lost() == 0
    assert stats.report_block(0).highest_sequence == 65549


def test_duplicates_make_lost_negative_and_reordering_is_not_loss():
    stats = ReceiverStats()
    feed(stats, [1, 2, 3, 4, 5])
    stats.receive(5, 1000 + 4 * 160, 200)  # a duplicate
    stats.receive(4, 1000 + 3 * 160, 210)  # late, within MAX_MISORDER
    assert stats.max_seq == 5 and stats.received == 6 and stats.expected() == 4
    assert stats.lost() == -2
    block = stats.report_block(300)
    assert block.packets_lost == -2 and block.fraction_lost == 0
    rr = parse(build_rtcp_report(1, b"c", block))[0]
    assert rr.reports[0].packets_lost == -2


def test_a_wild_jump_is_dropped_until_two_in_a_row_restart_the_source():
    stats = ReceiverStats()
    feed(stats, [100, 101, 102])
    assert stats.receive(40000, 999, 100) is False  # far beyond MAX_DROPOUT: dropped
    assert stats.receive(103, 1000 + 3 * 160, 120) is True  # the stream goes on
    assert stats.receive(30000, 999, 140) is False
    assert stats.receive(30001, 1159, 160) is True  # sequential after the jump: a restart
    assert stats.restarts == 1 and stats.base_seq == 30001 and stats.received == 1
    # a packet from just before the restart point is now "reordered", and not fatal
    assert stats.receive(29999, 840, 180) is True


def test_gap_within_max_dropout_counts_as_loss():
    stats = ReceiverStats()
    feed(stats, [1, 2])
    assert stats.receive(2 + 2999, 5000, 100) is True
    assert stats.lost() == 2998


# ---- A.8 interarrival jitter -------------------------------------------------------------


def reference_jitter(packets, clock_rate):
    """RFC 3550 A.8 in floating point, straight from the text: transit = arrival - timestamp,
    J += (|D| - J) / 16. packets: (arrival_ms, rtp timestamp)."""
    jitter = 0.0
    transit_prev = None
    for arrival_ms, ts in packets:
        transit = arrival_ms * clock_rate / 1000 - ts
        if transit_prev is not None:
            d = abs(transit - transit_prev)
            jitter += (d - jitter) / 16
        transit_prev = transit
    return jitter


def test_steady_stream_has_no_jitter():
    stats = ReceiverStats()
    feed(stats, list(range(500, 700)))
    assert stats.jitter() == 0 and stats.jitter_ms() == 0


def test_jitter_of_sipp_pcma_capture_matches_the_rfc_formula():
    packets = []
    stats = ReceiverStats()
    for arrival_ms, _, _, payload in udp_payloads(DATA + "g711a.pcap"):
        seq, ts = struct.unpack_from(">HI", payload, 2)
        if stats.receive(seq, ts, arrival_ms):
            packets.append((arrival_ms, ts))
    assert len(packets) == 235  # every packet but the first, which probation consumed
    expected = reference_jitter(packets, 8000)
    assert expected > 1.0  # the capture does jitter: 28..32 ms between 30 ms packets
    assert abs(stats.jitter() - expected) <= 1, (stats.jitter(), expected)
    assert abs(stats.jitter_ms() - expected / 8) < 0.2
    assert stats.lost() == 0


def test_jitter_follows_alternating_delay_and_survives_timestamp_wrap():
    stats = ReceiverStats()
    packets = []
    ts0 = 0xFFFFFFFF - 160 * 50  # the 32-bit timestamp wraps mid-stream
    for i in range(300):
        ts = (ts0 + 160 * i) & 0xFFFFFFFF
        arrival = 1000 + 20 * i + (6 if i % 2 else 0)  # every other packet 6 ms late
        if stats.receive(wrap(60000 + i), ts, arrival):
            packets.append((arrival, ts0 + 160 * i))  # unwrapped for the reference
    expected = reference_jitter(packets, 8000)
    assert 46 < expected < 49  # converges on |D| = 48 units
    assert abs(stats.jitter() - expected) <= 1, (stats.jitter(), expected)


def test_repeated_timestamps_do_not_count_as_jitter():
    # RFC 4733 event updates: same timestamp, 20 ms apart; they must not read as 160 units
    stats = ReceiverStats()
    for i in range(40):
        stats.receive(wrap(7000 + i), 13280, 20 * i)
    assert stats.jitter() == 0


def test_arrival_clock_wrapping_at_2_to_30_ms():
    # MicroPython's ticks_ms() wraps at 2**30; a steady stream across it shows no jitter
    stats = ReceiverStats()
    start = (1 << 30) - 200
    for i in range(30):
        stats.receive(i, 160 * i, (start + 20 * i) & ((1 << 30) - 1))
    assert stats.jitter() == 0


def test_receive_allocates_nothing_on_micropython():
    if not is_micropython():
        return  # CPython allocates ints everywhere; the budget is the device's
    import micropython

    stats = ReceiverStats()
    stats.receive(1, 160, 20)
    seq = 2
    ts = 320
    arrival = 40
    bitten = False
    probe = None
    micropython.heap_lock()
    try:
        try:
            probe = [seq]  # the lock must bite, or this test would prove nothing
        except MemoryError:
            bitten = True
        while seq < 400:
            stats.receive(seq, ts, arrival + (seq & 3))
            seq += 1
            ts += 160
            arrival += 20
    finally:
        micropython.heap_unlock()
    assert bitten and probe is None
    assert stats.received == 398  # 2..399: the first packet went to probation


# ---- LSR/DLSR ----------------------------------------------------------------------------


def test_report_block_echoes_the_last_sender_report():
    stats = ReceiverStats(ssrc=77)
    feed(stats, [1, 2, 3])
    stats.sender_report(ntp_from_ms(12345678), 1000)
    block = stats.report_block(1500)
    assert block.lsr == (ntp_from_ms(12345678) >> 16) & 0xFFFFFFFF
    assert block.dlsr == 32768  # 500 ms in 1/65536 s
    assert block.jitter == stats.jitter()


# ---- estimated MOS -----------------------------------------------------------------------


def close(a, b, tolerance=0.005):
    return abs(a - b) <= tolerance


def test_mos_anchor_points():
    # no loss, no jitter, a LAN: R = 93.2, the G.711 ceiling, MOS 4.41
    assert close(r_to_mos(93.2), 4.4094)
    assert close(estimate_mos(0.0, 0, 0), 4.4094)
    # 1% random loss: Ie_eff = 95 * 1 / 26.1 = 3.640, R = 89.560, MOS 4.328
    assert close(estimate_mos(0.01, 0, 0), 4.3283)
    # 5% loss: Ie_eff = 95 * 5 / 30.1 = 15.781, R = 77.419, MOS 3.923
    assert close(estimate_mos(0.05, 0, 0), 3.9228)
    # R to MOS boundaries (G.107 Annex B)
    assert r_to_mos(-5) == 1.0 and r_to_mos(0) == 1.0 and r_to_mos(100) == 4.5
    assert close(r_to_mos(50), 2.575)


def test_delay_impairment_follows_g107():
    assert delay_impairment(100) == 0.0
    assert close(delay_impairment(200), 3.0444, 0.001)  # X = 1
    assert close(delay_impairment(400), 24.070, 0.01)  # X = 2
    # Ta = 160 (network) + 20 (frame) + 2 * 10 (jitter buffer) = 200 ms: R = 93.2 - 3.044
    assert close(estimate_mos(0.0, 10, 160), r_to_mos(93.2 - 3.0444))


def test_mos_falls_with_loss_jitter_and_delay():
    previous = 5.0
    for loss in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
        mos = estimate_mos(loss, 5, 20)
        assert mos < previous, (loss, mos)
        previous = mos
    assert estimate_mos(0.0, 80, 50) < estimate_mos(0.0, 10, 50)
    assert estimate_mos(0.0, 10, 300) < estimate_mos(0.0, 10, 50)
    assert 1.0 <= estimate_mos(1.0, 500, 2000) < 1.6


def test_mos_rejects_nonsense():
    with raises(ValueError, match="0..1"):
        estimate_mos(1.5, 0, 0)
    with raises(ValueError, match="0..1"):
        estimate_mos(-0.1, 0, 0)
    with raises(ValueError, match="negative"):
        estimate_mos(0.0, -1, 0)


def test_stats_feed_the_mos():
    stats = ReceiverStats()
    seqs = [s for s in range(0, 1001) if s % 50 != 25]  # 2% loss
    feed(stats, seqs)
    assert close(stats.loss_fraction(), 0.02, 0.001)
    mos = estimate_mos(stats.loss_fraction(), stats.jitter_ms(), 20)
    # Ie_eff = 95 * 2 / 27.1 = 7.011 -> R = 86.19 -> MOS 4.235
    assert close(mos, 4.2348, 0.01)
