"""The caller's RTP stream as the relay accepts it: what goes to the backend, what is dropped.

Sans-I/O: ``receive(data, addr)`` returns ``(AUDIO, payload)``, ``(KEY, "5")`` or None, and
counts every drop in the stats dict it was given. A datagram is dropped when it comes from
another host than the caller's (unless ``symmetric`` latching is on and nothing was accepted
yet), is not valid RTP (``voip.rtp.RtpHeader``, reused: nothing is allocated to parse it), has
a payload type the call did not negotiate, carries a stray SSRC (a new SSRC is followed once it
persists for three packets: the caller restarted its stream), or repeats or precedes a sequence
number already forwarded (no jitter buffer here: on a LAN reordering is rare, and the backend
must get the payloads in order). RFC 4733 telephone events become one key per press
(``voip.dtmf.DtmfReceiver``).
"""

import logging

from voip.dtmf import DtmfReceiver
from voip.rtp import RtpHeader

AUDIO = 1
KEY = 2
_SSRC_SWITCH_PACKETS = 3
STAT_KEYS = ("rtp_in", "malformed", "foreign", "wrong_pt", "wrong_ssrc", "out_of_order", "dtmf")


class CallerRtp:
    def __init__(self, remote, payload_type, dtmf_payload_type, stats, log, symmetric=False):
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
        self._last_seq = None

    def receive(self, data, addr):
        stats = self.stats
        stats["rtp_in"] += 1
        if addr[0] != self.remote[0] and not (self.symmetric and not self.latched):
            stats["foreign"] += 1
            return None
        header = self._header
        try:
            start = header.unpack_from(data)
        except ValueError as e:
            stats["malformed"] += 1
            if stats["malformed"] in (1, 10, 100, 1000):
                self.log.event("malformed_rtp", say="malformed RTP from %s dropped: %s (%d so far)"
                               % (addr[0], e, stats["malformed"]), level=logging.WARNING,
                               count=stats["malformed"])
            return None
        if header.payload_type == self.dtmf_payload_type:
            key = self._dtmf.receive(header.marker, header.timestamp, data, start,
                                     header.payload_length)
            if key is None:
                return None
            stats["dtmf"] += 1
            return KEY, key
        if header.payload_type != self.payload_type:
            stats["wrong_pt"] += 1
            return None
        if not self._accept_ssrc(header.ssrc):
            stats["wrong_ssrc"] += 1
            return None
        seq = header.sequence
        if self._last_seq is not None:
            step = (seq - self._last_seq) & 0xFFFF
            if step == 0 or step >= 0x8000:  # a duplicate, or older than what went out
                stats["out_of_order"] += 1
                return None
        self._last_seq = seq
        if self.symmetric and not self.latched:
            self.latched = True
            if tuple(addr[:2]) != self.remote[:2]:  # a NAT between us: answer where it came from
                self.log.event("rtp_latched", sdp="%s:%d" % self.remote[:2],
                               source="%s:%d" % tuple(addr[:2]))
                self.remote = tuple(addr[:2])
        return AUDIO, data[start : start + header.payload_length]

    def _accept_ssrc(self, ssrc):
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
        self._ssrc, self._last_seq, self._new_ssrc_count = ssrc, None, 0
        return True
