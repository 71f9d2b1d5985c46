# voip.rtcp_stats: RFC 3550 receiver statistics for one RTP source (appendix A.1 sequence
# validation, A.3 loss, A.8 interarrival jitter) and an E-model MOS estimate. MIT licence.
#
# The caller feeds every packet of the source with its arrival time in milliseconds from its own
# clock: nothing here reads a clock. receive() runs once per packet on the device, so it works in
# small ints only (on the 32-bit ESP32 a small int has 31 bits) and allocates nothing: the RTP
# timestamp matters only through its low 30 bits, so a caller holding the header's 16-bit
# halves can pass ((timestamp_hi & 0x3FFF) << 16) | timestamp_lo without boxing an int.
import math

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_SEQ_MOD = const(0x10000)
_MAX_DROPOUT = const(3000)  # A.1: a jump this far ahead is still the same stream
_MAX_MISORDER = const(100)  # A.1: this far behind is a late packet, further is a restart
_MIN_SEQUENTIAL = const(2)  # A.1: packets in sequence before a source is valid
_MASK30 = const(0x3FFFFFFF)
_HALF30 = const(0x20000000)


def _diff30(a, b):
    """a - b for 30-bit wrapping counters, signed; small ints only."""
    d = (a - b) & _MASK30
    return d - _MASK30 - 1 if d >= _HALF30 else d


class ReceiverStats:
    """Reception statistics of one RTP source (one SSRC): create a new one when it changes."""

    def __init__(self, ssrc=0, clock_rate=8000):
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.probation = _MIN_SEQUENTIAL
        self.started = False
        self.base_seq = 0
        self.max_seq = 0
        self.bad_seq = _SEQ_MOD + 1  # A.1: "so seq == bad_seq is false"
        self.cycles = 0  # wraparounds, times 65536
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter_q4 = 0  # A.8 jitter in timestamp units, times 16
        self.restarts = 0  # how often A.1 decided the source restarted its sequence
        self._last_arrival = 0
        self._last_ts = 0
        self._have_transit = False
        self._sr_lsr = 0
        self._sr_arrival = 0

    def _init_seq(self, seq):
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def _update_seq(self, seq):
        """RFC 3550 appendix A.1, as written there. True if the packet counts."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            # a source is valid once MIN_SEQUENTIAL packets arrived in sequence
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = _MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < _MAX_DROPOUT:
            # in order, with a permissible gap
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD  # the sequence number wrapped
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            # a very large jump: two sequential packets there mean the source restarted
            if seq == self.bad_seq:
                self._init_seq(seq)
                self.restarts += 1
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: a duplicate or a reordered packet, counted as received (A.3 allows lost < 0)
        self.received += 1
        return True

    def receive(self, seq, timestamp, arrival_ms):
        """Account one RTP packet. Returns True when it counts (the source is past probation
        and the sequence number is plausible), False while probing or after a wild jump."""
        if not self.started:
            self.started = True
            self._init_seq(seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self.probation = _MIN_SEQUENTIAL
        if not self._update_seq(seq):
            return False
        ts = timestamp & _MASK30
        arrival = arrival_ms & _MASK30
        if self._have_transit and ts != self._last_ts:
            # A.8: D = (Rj - Ri) - (Sj - Si) in timestamp units, J += (|D| - J) / 16, kept
            # times 16 in an int. Packets repeating the previous timestamp (RFC 4733 event
            # updates, duplicates) say nothing about network jitter and are skipped.
            d = _diff30(arrival, self._last_arrival) * self.clock_rate // 1000
            d -= _diff30(ts, self._last_ts)
            if d < 0:
                d = -d
            self.jitter_q4 += d - ((self.jitter_q4 + 8) >> 4)
        self._last_arrival = arrival
        self._last_ts = ts
        self._have_transit = True
        return True

    # ---- A.3: what the counters mean ---------------------------------------------------------

    def extended_max(self):
        """The highest sequence number seen, extended by the wraparound count."""
        return self.cycles + self.max_seq

    def expected(self):
        return self.extended_max() - self.base_seq + 1 if self.received else 0

    def lost(self):
        """Cumulative packets lost: expected - received; negative when duplicates arrived."""
        return self.expected() - self.received

    def jitter(self):
        """Interarrival jitter in timestamp units, as a report block carries it."""
        return self.jitter_q4 >> 4

    def jitter_ms(self):
        return self.jitter_q4 * 1000 / (16 * self.clock_rate)

    def loss_fraction(self):
        """Cumulative loss, 0.0..1.0 (duplicates do not make it negative)."""
        expected = self.expected()
        if expected <= 0:
            return 0.0
        lost = expected - self.received
        return lost / expected if lost > 0 else 0.0

    # ---- reports -----------------------------------------------------------------------------

    def sender_report(self, ntp_timestamp, arrival_ms):
        """Note an SR from this source: its NTP time becomes the LSR of our next report."""
        self._sr_lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self._sr_arrival = arrival_ms

    def report_block(self, now_ms):
        """A report block for this source (A.3: fraction lost over the interval since the last
        call), or None while nothing valid was received."""
        if not self.received:
            return None
        expected = self.expected()
        expected_interval = expected - self.expected_prior
        self.expected_prior = expected
        received_interval = self.received - self.received_prior
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        from .rtcp import ReportBlock  # here, not at the top: voip.rtcp imports this module

        dlsr = 0
        if self._sr_lsr:
            dlsr = ((now_ms - self._sr_arrival) * 65536 // 1000) & 0xFFFFFFFF
        return ReportBlock(
            self.ssrc,
            fraction,
            self.lost(),
            self.extended_max() & 0xFFFFFFFF,
            self.jitter(),
            self._sr_lsr,
            dlsr,
        )


# ---- estimated MOS: a simplified ITU-T G.107 E-model for G.711 --------------------------------

_R_DEFAULT = 93.2  # R0 - Is with every G.107 default: the best G.711 can score
_BPL_G711_PLC = 25.1  # G.113 Appendix I: packet-loss robustness of G.711 with concealment
_FRAME_MS = 20  # packetization: a 20 ms frame waits to be filled before it is sent


def delay_impairment(one_way_ms):
    """G.107 Idd for absolute one-way delay Ta (ms), echo assumed cancelled (Idte=Idle=0)."""
    if one_way_ms <= 100:
        return 0.0
    x = math.log(one_way_ms / 100) / math.log(2)
    return 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def r_to_mos(r):
    """G.107 Annex B: the R factor to an estimated mean opinion score, 1.0..4.5."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def estimate_mos(loss_fraction, jitter_ms, delay_ms):
    """Estimated MOS of a G.711 call from packet loss (0..1, random), jitter and one-way
    network delay (ms, e.g. half an RTCP round trip).

    R = 93.2 - Id - Ie_eff, with Ie_eff = 95 * Ppl / (Ppl + 25.1) (Ie = 0 for G.711, BurstR = 1)
    and Id = Idd(Ta), where Ta adds to the network delay the 20 ms frame and a jitter buffer
    holding twice the jitter but never less than one frame."""
    if not 0 <= loss_fraction <= 1:
        raise ValueError("loss fraction must be within 0..1: %r" % (loss_fraction,))
    if jitter_ms < 0 or delay_ms < 0:
        raise ValueError("jitter and delay must not be negative")
    ppl = 100.0 * loss_fraction
    ie_eff = 95 * ppl / (ppl + _BPL_G711_PLC)
    buffer_ms = max(_FRAME_MS, 2 * jitter_ms)
    ta = delay_ms + _FRAME_MS + buffer_ms
    return r_to_mos(_R_DEFAULT - delay_impairment(ta) - ie_eff)
