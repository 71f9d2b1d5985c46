"""The caller's RTP stream as the relay accepts it: what goes to the backend, what is dropped.

Sans-I/O: the media session passes its clock in milliseconds::

    caller = CallerRtp(remote, 0, 101, stats, log, reorder_ms=60)
    for kind, value, t_ms in caller.receive(data, addr, now_ms):   # AUDIO payload / KEY "5"
        ...                                                         # t_ms: when it arrived
    caller.deadline_ms          # None, or when expire() has audio to release
    for kind, value, t_ms in caller.expire(now_ms): ...

A datagram is dropped (and counted in the stats dict) when it comes from another host than
the caller's (unless ``symmetric`` latching is on and nothing was accepted yet), is not valid
RTP (``voip.rtp.RtpHeader``, reused: nothing is allocated to parse it), has a payload type the
call did not negotiate, or carries a stray SSRC (a new SSRC is followed once it persists for
three packets: the caller restarted its stream).

The backend must get the payloads in order, and once: they pass through a ReorderWindow
(reorder.py). In-order audio is returned by the receive() that brought it; audio after a gap
waits up to ``reorder_ms`` for the missing packet (released by a later receive() or by
expire()), then the gap is skipped. Duplicates and packets later than that are dropped
(``out_of_order``). ``reorder_ms=0`` forwards in arrival order and drops whatever comes late.
RFC 4733 telephone events become one key per press (``voip.dtmf.DtmfReceiver``), at once;
their sequence numbers (same SSRC) fill the window, so audio after a key press does not wait
for them. A payload type the call did not negotiate fills nothing: it is not part of the
stream (audio after one waits at most reorder_ms).
"""

import logging

from voip.dtmf import DtmfReceiver
from voip.rtp import RtpHeader

from .reorder import DEFAULT_HOLD_MS, ReorderWindow

AUDIO = 1
KEY = 2
_SSRC_SWITCH_PACKETS = 3
STAT_KEYS = ("rtp_in", "malformed", "foreign", "wrong_pt", "wrong_ssrc", "out_of_order", "dtmf",
             "reordered", "seq_gaps", "held", "hold_max_ms")
_NOTHING = ()


class CallerRtp:
    def __init__(self, remote, payload_type, dtmf_payload_type, stats, log, symmetric=False,
                 reorder_ms=DEFAULT_HOLD_MS):
        self.remote = tuple(remote)
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.stats = stats
        for key in STAT_KEYS:
            stats.setdefault(key, 0)
        self.log = log
        self.symmetric = symmetric
        self.latched = False
        self._header = RtpHeader()
        self._dtmf = DtmfReceiver()
        self._ssrc = None
        self._new_ssrc = None
        self._new_ssrc_count = 0
        self.window = ReorderWindow(reorder_ms, stats=stats)

    @property
    def deadline_ms(self):
        """When expire() has held audio to release (the gap before it is given up), or None."""
        return self.window.deadline_ms

    def expire(self, now_ms):
        """The list of what waited reorder_ms for a gap: (AUDIO, payload, arrival ms)."""
        if self.window.deadline_ms is None or self.window.deadline_ms > now_ms:
            return _NOTHING
        out = []
        self.window.expire(now_ms, out)
        return out

    def receive(self, data, addr, now_ms=0.0):
        """What this datagram lets through, as a list (often empty) of (AUDIO, payload,
        arrival ms) and (KEY, key, arrival ms), in order."""
        stats = self.stats
        stats["rtp_in"] += 1
        if addr[0] != self.remote[0] and not (self.symmetric and not self.latched):
            stats["foreign"] += 1
            return _NOTHING
        header = self._header
        try:
            start = header.unpack_from(data)
        except ValueError as e:
            stats["malformed"] += 1
            if stats["malformed"] in (1, 10, 100, 1000):
                self.log.event("malformed_rtp", say="malformed RTP from %s dropped: %s (%d so far)"
                               % (addr[0], e, stats["malformed"]), level=logging.WARNING,
                               count=stats["malformed"])
            return _NOTHING
        if header.payload_type == self.dtmf_payload_type:
            out = []
            if header.ssrc == self._ssrc:  # its number is used: audio after it must not wait
                self.window.fill(header.sequence, now_ms, out)
            key = self._dtmf.receive(header.marker, header.timestamp, data, start,
                                     header.payload_length)
            if key is not None:
                stats["dtmf"] += 1
                out.insert(0, (KEY, key, now_ms))
            return out
        if header.payload_type != self.payload_type:
            stats["wrong_pt"] += 1
            return _NOTHING
        out = []
        if not self._accept_ssrc(header.ssrc, now_ms, out):
            stats["wrong_ssrc"] += 1
            return out
        if not self.window.push(header.sequence,
                                (AUDIO, data[start : start + header.payload_length], now_ms),
                                now_ms, out):
            return out
        if self.symmetric and not self.latched:
            self.latched = True
            if tuple(addr[:2]) != self.remote[:2]:  # a NAT between us: answer where it came from
                self.log.event("rtp_latched", sdp="%s:%d" % self.remote[:2],
                               source="%s:%d" % tuple(addr[:2]))
                self.remote = tuple(addr[:2])
        return out

    def _accept_ssrc(self, ssrc, now_ms, out):
        if self._ssrc is None or ssrc == self._ssrc:
            self._ssrc = ssrc
            self._new_ssrc_count = 0
            return True
        if ssrc != self._new_ssrc:
            self._new_ssrc, self._new_ssrc_count = ssrc, 0
        self._new_ssrc_count += 1
        if self._new_ssrc_count < _SSRC_SWITCH_PACKETS:
            return False
        self.log.event("ssrc_change", old="%08x" % self._ssrc, new="%08x" % ssrc)
        self.window.flush(out, now_ms)  # the old stream's held audio goes first
        self.window.reset()
        self._ssrc, self._new_ssrc_count = ssrc, 0
        return True
