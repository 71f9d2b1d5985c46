"""RTP (RFC 3550) header parse and pack for the relay's media sessions.

Two small functions the media session calls per packet. They are kept here, behind this
interface, so that the relay can move onto ``voip.rtp`` (the shared core the device uses)
without touching the media code. Parsing is strict: a datagram that is not version 2, is
shorter than its header (CSRC list and extension included), or whose padding count is
impossible returns None and the caller drops and counts it.
"""

import struct

HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")


class RtpPacket:
    __slots__ = ("payload_type", "marker", "seq", "timestamp", "ssrc", "payload")

    def __init__(self, payload_type, marker, seq, timestamp, ssrc, payload):
        self.payload_type = payload_type
        self.marker = marker
        self.seq = seq
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload

    def __repr__(self):
        return "RtpPacket(pt=%d, m=%d, seq=%d, ts=%d, ssrc=%08x, %d bytes)" % (
            self.payload_type,
            self.marker,
            self.seq,
            self.timestamp,
            self.ssrc,
            len(self.payload),
        )


def parse(data):
    """An RtpPacket (payload as bytes, padding removed), or None when the datagram is malformed."""
    n = len(data)
    if n < HEADER_SIZE:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None
    offset = HEADER_SIZE + 4 * (b0 & 0x0F)  # CSRC list
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if n < offset + 4:
            return None
        offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
    end = n
    if b0 & 0x20:  # padding: the last byte counts the padding bytes, itself included
        pad = data[n - 1]
        if pad == 0:
            return None
        end -= pad
    if offset > end:
        return None
    return RtpPacket(b1 & 0x7F, b1 >> 7, seq, ts, ssrc, bytes(data[offset:end]))


def pack_header(buf, payload_type, marker, seq, timestamp, ssrc):
    """Write a 12-byte header (no CSRC, no extension, no padding) at the start of buf."""
    _HEADER.pack_into(
        buf,
        0,
        0x80,
        (payload_type & 0x7F) | (0x80 if marker else 0),
        seq & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
