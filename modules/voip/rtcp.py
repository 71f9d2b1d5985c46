# voip.rtcp: minimal RTCP (RFC 3550 section 6): SR, RR, SDES CNAME and BYE, built and parsed,
# alone or in compound packets. MIT licence.
#
# Every RTCP packet starts with the same 4 bytes:
#    0                   1                   2                   3
#   |V=2|P|    RC   |   PT=SR=200   |             length            |
# length is the packet size in 32-bit words minus one. A compound packet is several of them
# back to back in one datagram. Types we do not interpret (APP, RTPFB, PSFB, XR) come back as
# RtcpPacket with their payload, so nothing is lost and serialize() round-trips them.
#
# RTCP goes out every few seconds, so these objects allocate freely; the per-packet receiver
# statistics live in voip.rtcp_stats (ReceiverStats, estimate_mos, also importable from here)
# and allocate nothing.
import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


SR = const(200)
RR = const(201)
SDES = const(202)
BYE = const(203)
APP = const(204)
RTPFB = const(205)
PSFB = const(206)

SDES_CNAME = const(1)

_HEADER = const(4)
_REPORT_BLOCK = const(24)
_SENDER_INFO = const(20)
_MAX_PACKETS = const(32)  # a compound packet holds a handful; more is not RTCP


class ReportBlock:
    """One reception report (RFC 3550 section 6.4.1) about the source `ssrc`.

    fraction_lost is 0..255 (lost/expected since the last report, times 256); packets_lost is
    the cumulative signed 24-bit count; highest_sequence the extended highest sequence number;
    jitter in timestamp units; lsr the middle 32 bits of the last SR's NTP time; dlsr the delay
    since that SR in 1/65536 s."""

    def __init__(
        self, ssrc, fraction_lost=0, packets_lost=0, highest_sequence=0, jitter=0, lsr=0, dlsr=0
    ):
        self.ssrc = ssrc
        self.fraction_lost = fraction_lost
        self.packets_lost = packets_lost
        self.highest_sequence = highest_sequence
        self.jitter = jitter
        self.lsr = lsr
        self.dlsr = dlsr

    @classmethod
    def unpack_from(cls, data, offset):
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from(">IIIIII", data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:  # a signed 24-bit field: duplicates can make it negative
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self):
        lost = self.packets_lost
        lost = -0x800000 if lost < -0x800000 else 0x7FFFFF if lost > 0x7FFFFF else lost
        return struct.pack(
            ">IIIIII",
            self.ssrc & 0xFFFFFFFF,
            ((self.fraction_lost & 0xFF) << 24) | (lost & 0xFFFFFF),
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    def __repr__(self):
        return "ReportBlock(ssrc=%d lost=%d/%d highest=%d jitter=%d lsr=%d dlsr=%d)" % (
            self.ssrc,
            self.fraction_lost,
            self.packets_lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _header(count, packet_type, body_length):
    if count > 31:
        raise ValueError("RTCP packet cannot carry %d items (max 31)" % count)
    if body_length % 4:
        raise ValueError("RTCP packet body must be a multiple of 4 bytes")
    return struct.pack(">BBH", 0x80 | count, packet_type, body_length // 4)


def _packet(count, packet_type, body):
    """Header + body, with RFC 3550 padding (P bit, zeros, then the pad count) when the body
    is not a multiple of 4 bytes: parse() strips padding before it keeps an extension or an
    unknown packet's payload, so what it returns must be able to carry it back."""
    pad = -len(body) % 4
    if not pad:
        return _header(count, packet_type, len(body)) + body
    body = body + bytes(pad - 1) + bytes([pad])
    head = bytearray(_header(count, packet_type, len(body)))
    head[0] |= 0x20
    return bytes(head) + body


def _blocks(reports):
    return b"".join([report.serialize() for report in reports])


def _parse_blocks(payload, offset, count, what):
    needed = offset + count * _REPORT_BLOCK
    if len(payload) < needed:
        raise ValueError(
            "RTCP %s truncated: %d report block(s) need %d bytes, it has %d"
            % (what, count, needed + _HEADER, len(payload) + _HEADER)
        )
    return [ReportBlock.unpack_from(payload, offset + i * _REPORT_BLOCK) for i in range(count)]


class SenderReport:
    """SR (RFC 3550 section 6.4.1): ntp_timestamp is the 64-bit NTP-format time."""

    packet_type = SR

    def __init__(
        self, ssrc, ntp_timestamp, rtp_timestamp, packet_count, octet_count, reports=(), ext=b""
    ):
        self.ssrc = ssrc
        self.ntp_timestamp = ntp_timestamp
        self.rtp_timestamp = rtp_timestamp
        self.packet_count = packet_count
        self.octet_count = octet_count
        self.reports = list(reports)
        self.extension = ext  # profile-specific extension after the blocks, kept as is

    @classmethod
    def _parse(cls, count, payload):
        if len(payload) < 4 + _SENDER_INFO:
            raise ValueError(
                "RTCP SR truncated: sender info needs 28 bytes, it has %d" % (len(payload) + 4)
            )
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from(">IQIII", payload, 0)
        reports = _parse_blocks(payload, 24, count, "SR")
        ext = bytes(payload[24 + count * _REPORT_BLOCK :])
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, ext)

    def serialize(self):
        body = (
            struct.pack(
                ">IQIII",
                self.ssrc & 0xFFFFFFFF,
                self.ntp_timestamp & 0xFFFFFFFFFFFFFFFF,
                self.rtp_timestamp & 0xFFFFFFFF,
                self.packet_count & 0xFFFFFFFF,
                self.octet_count & 0xFFFFFFFF,
            )
            + _blocks(self.reports)
            + self.extension
        )
        return _packet(len(self.reports), SR, body)

    def __repr__(self):
        return "SenderReport(ssrc=%d ntp=%d rtp=%d packets=%d octets=%d reports=%r)" % (
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
            self.reports,
        )


class ReceiverReport:
    """RR (RFC 3550 section 6.4.2): sent instead of an SR by a source that sent nothing."""

    packet_type = RR

    def __init__(self, ssrc, reports=(), ext=b""):
        self.ssrc = ssrc
        self.reports = list(reports)
        self.extension = ext

    @classmethod
    def _parse(cls, count, payload):
        if len(payload) < 4:
            raise ValueError("RTCP RR truncated: no SSRC")
        reports = _parse_blocks(payload, 4, count, "RR")
        ssrc = struct.unpack_from(">I", payload, 0)[0]
        return cls(ssrc, reports, bytes(payload[4 + count * _REPORT_BLOCK :]))

    def serialize(self):
        body = struct.pack(">I", self.ssrc & 0xFFFFFFFF) + _blocks(self.reports) + self.extension
        return _packet(len(self.reports), RR, body)

    def __repr__(self):
        return "ReceiverReport(ssrc=%d reports=%r)" % (self.ssrc, self.reports)


class SourceDescription:
    """SDES (RFC 3550 section 6.5): chunks of (ssrc, [(item type, value bytes), ...])."""

    packet_type = SDES

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def cname(self, ssrc=None):
        """The CNAME (bytes) of `ssrc`, or of the first chunk that has one; None if absent."""
        for chunk_ssrc, items in self.chunks:
            if ssrc is None or chunk_ssrc == ssrc:
                for item_type, value in items:
                    if item_type == SDES_CNAME:
                        return value
        return None

    @classmethod
    def _parse(cls, count, payload):
        chunks = []
        pos = 0
        end = len(payload)
        for number in range(1, count + 1):
            if pos + 4 > end:
                raise ValueError("RTCP SDES truncated: chunk %d has no SSRC" % number)
            ssrc = struct.unpack_from(">I", payload, pos)[0]
            pos += 4
            items = []
            while True:
                if pos >= end:
                    raise ValueError("RTCP SDES truncated: chunk %d has no end item" % number)
                item_type = payload[pos]
                if item_type == 0:
                    # the list ends with a zero octet, then zeros up to the next 32-bit boundary
                    pos = (pos + 4) & ~3
                    break
                if pos + 2 > end or pos + 2 + payload[pos + 1] > end:
                    raise ValueError(
                        "RTCP SDES truncated: item type %d in chunk %d" % (item_type, number)
                    )
                length = payload[pos + 1]
                items.append((item_type, bytes(payload[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append((ssrc, items))
        return cls(chunks)

    def serialize(self):
        parts = []
        for ssrc, items in self.chunks:
            chunk = struct.pack(">I", ssrc & 0xFFFFFFFF)
            for item_type, value in items:
                if not 0 < item_type < 256 or len(value) > 255:
                    raise ValueError("RTCP SDES item must have type 1..255 and <= 255 bytes")
                chunk += bytes((item_type, len(value))) + value
            chunk += bytes(4 - len(chunk) % 4)  # at least one zero: the end of the item list
            parts.append(chunk)
        body = b"".join(parts)
        return _header(len(self.chunks), SDES, len(body)) + body

    def __repr__(self):
        return "SourceDescription(%r)" % (self.chunks,)


class Bye:
    """BYE (RFC 3550 section 6.6): the sources leaving, and an optional reason (bytes)."""

    packet_type = BYE

    def __init__(self, sources, reason=None):
        self.sources = list(sources)
        self.reason = reason

    @classmethod
    def _parse(cls, count, payload):
        if len(payload) < 4 * count:
            raise ValueError(
                "RTCP BYE truncated: %d source(s) need %d bytes, it has %d"
                % (count, 4 * count + _HEADER, len(payload) + _HEADER)
            )
        sources = [struct.unpack_from(">I", payload, 4 * i)[0] for i in range(count)]
        reason = None
        pos = 4 * count
        if pos < len(payload):
            length = payload[pos]
            if pos + 1 + length > len(payload):
                raise ValueError("RTCP BYE truncated: reason of %d bytes" % length)
            reason = bytes(payload[pos + 1 : pos + 1 + length])
        return cls(sources, reason)

    def serialize(self):
        body = b"".join([struct.pack(">I", ssrc & 0xFFFFFFFF) for ssrc in self.sources])
        if self.reason is not None:
            if len(self.reason) > 255:
                raise ValueError("RTCP BYE reason longer than 255 bytes")
            body += bytes((len(self.reason),)) + self.reason
            body += bytes(-len(body) % 4)
        return _header(len(self.sources), BYE, len(body)) + body

    def __repr__(self):
        return "Bye(sources=%r reason=%r)" % (self.sources, self.reason)


class RtcpPacket:
    """Any other RTCP packet (APP, RTPFB, PSFB, XR...): header fields and raw payload."""

    def __init__(self, packet_type, count, payload):
        self.packet_type = packet_type
        self.count = count
        self.payload = payload

    @classmethod
    def _parse(cls, packet_type, count, payload):
        if packet_type in (RTPFB, PSFB) and len(payload) < 8:
            raise ValueError("RTCP feedback packet truncated: needs sender and media SSRC")
        return cls(packet_type, count, bytes(payload))

    def serialize(self):
        return _packet(self.count, self.packet_type, self.payload)

    def __repr__(self):
        return "RtcpPacket(type=%d count=%d %d bytes)" % (
            self.packet_type,
            self.count,
            len(self.payload),
        )


_PARSERS = {SR: SenderReport, RR: ReceiverReport, SDES: SourceDescription, BYE: Bye}


def parse(data):
    """Parse a compound RTCP packet into a list of packet objects. Raises ValueError, saying
    which packet and what is wrong, for anything truncated or malformed."""
    data = memoryview(data)
    packets = []
    pos = 0
    while pos < len(data):
        if len(packets) >= _MAX_PACKETS:
            raise ValueError("RTCP compound packet holds more than %d packets" % _MAX_PACKETS)
        remaining = len(data) - pos
        if remaining < _HEADER:
            raise ValueError("RTCP packet truncated: %d bytes, the header needs 4" % remaining)
        first, packet_type, words = struct.unpack_from(">BBH", data, pos)
        if first >> 6 != 2:
            raise ValueError("RTCP packet has version %d, not 2" % (first >> 6))
        if not 192 <= packet_type <= 223:
            raise ValueError("RTCP packet type %d is outside 192..223" % packet_type)
        length = (words + 1) * 4
        if length > remaining:
            raise ValueError(
                "RTCP packet type %d: length says %d bytes, %d remain"
                % (packet_type, length, remaining)
            )
        payload = data[pos + _HEADER : pos + length]
        if first & 0x20:
            padding = payload[-1] if len(payload) else 0
            if padding == 0 or padding > len(payload):
                raise ValueError(
                    "RTCP packet type %d: padding count %d invalid" % (packet_type, padding)
                )
            payload = payload[: len(payload) - padding]
        count = first & 0x1F
        parser = _PARSERS.get(packet_type)
        if parser is None:
            packets.append(RtcpPacket._parse(packet_type, count, payload))
        else:
            packets.append(parser._parse(count, payload))
        pos += length
    if not packets:
        raise ValueError("RTCP packet is empty")
    return packets


def serialize(packets):
    """A compound packet: the serialized packets back to back."""
    return b"".join([packet.serialize() for packet in packets])


def build_report(ssrc, cname, block=None, sender=None):
    """The compound packet for each RTCP interval (RFC 3550 section 6.1): an SR if we sent media
    since the last report (sender = (ntp_timestamp, rtp_timestamp, packet_count, octet_count))
    or else an RR, carrying our report block about the peer if there is one, then SDES CNAME."""
    reports = [block] if block is not None else []
    if sender is not None:
        ntp, rtp_ts, packets, octets = sender
        first = SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)
    else:
        first = ReceiverReport(ssrc, reports)
    if isinstance(cname, str):
        cname = cname.encode()
    return first.serialize() + SourceDescription([(ssrc, [(SDES_CNAME, cname)])]).serialize()


def build_bye(ssrc, cname, reason=None, block=None, sender=None):
    """The compound packet that ends our stream: a report, SDES CNAME, then BYE."""
    if isinstance(reason, str):
        reason = reason.encode()
    return build_report(ssrc, cname, block, sender) + Bye([ssrc], reason).serialize()


# ---- time in RTCP's NTP format -------------------------------------------------------------


def ntp_from_ms(ms):
    """A 64-bit NTP-format time from milliseconds. RFC 3550 section 4 lets a sender without
    wallclock use any steady clock, as long as its SRs and the RTT arithmetic agree."""
    seconds, millis = divmod(ms, 1000)
    return ((seconds & 0xFFFFFFFF) << 32) | ((millis << 32) // 1000)


def ntp_middle(ntp_timestamp):
    """The middle 32 bits of an NTP time: the LSR field of a report block."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


def round_trip_ms(block, now_ntp):
    """RTT in ms from a report block about our stream, received at NTP time now_ntp (same
    clock as our SRs): A - LSR - DLSR (RFC 3550 section 6.4.1). None without an LSR."""
    if block.lsr == 0:
        return None
    units = (ntp_middle(now_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if units & 0x80000000:  # a peer's bad DLSR would otherwise look like 18 hours
        return 0
    return (units * 1000) >> 16


# Receiver statistics and the MOS estimate, so `from voip.rtcp import ...` finds everything.
from .rtcp_stats import ReceiverStats, estimate_mos  # noqa: E402, F401
